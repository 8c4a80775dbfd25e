//! A person (canonical email) as the roster sees it, and the pure decision
//! of what their auth user should look like. The provisioning function and
//! the full reconcile both decide through [`plan`].

use super::provider::{AuthUser, Profile, UserUpdate};
use crate::event::Email;
use crate::roster::RowStatus;
use sqlx::PgConnection;
use uuid::Uuid;

/// The newest live row carrying the email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub row_id: String,
    pub status: RowStatus,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub auth_user_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub email: Email,
    pub holder: Option<Holder>,
    /// Auth users linked to rows that carry this email but do not hold it
    /// (deleted rows, older conflicting rows): none of them may log in as
    /// this person.
    pub other_links: Vec<Uuid>,
    seen_rows: bool,
}

impl Person {
    /// The profile the auth user must have when the person is active.
    pub fn desired(&self) -> Option<Profile> {
        let h = self
            .holder
            .as_ref()
            .filter(|h| h.status == RowStatus::Active)?;
        Some(Profile {
            email: self.email.as_str().to_owned(),
            name: h.name.clone(),
            roles: h.roles.clone(),
            roster_id: h.row_id.clone(),
        })
    }

    /// Every auth user rosterd manages for this email.
    pub fn links(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.holder
            .as_ref()
            .and_then(|h| h.auth_user_id)
            .into_iter()
            .chain(self.other_links.iter().copied())
    }
}

/// What provisioning did for one person, counted by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Restored,
    Decommissioned,
    Updated,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Restored => "restored",
            Self::Decommissioned => "decommissioned",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
        }
    }
}

/// The changes that bring an existing user to the desired profile.
pub fn diff(user: &AuthUser, desired: &Profile) -> UserUpdate {
    let same_profile = user.email.eq_ignore_ascii_case(&desired.email)
        && user.name == desired.name
        && user.roles == desired.roles
        && user.roster_id.as_deref() == Some(desired.roster_id.as_str());
    UserUpdate {
        profile: (!same_profile).then(|| desired.clone()),
        banned: user.banned.then_some(false),
    }
}

/// The action provisioning will take, given the user found for the person
/// (`target`) and the state of every other user linked to the email.
pub fn plan(person: &Person, target: Option<&AuthUser>, others: &[&AuthUser]) -> Action {
    let must_ban = |u: &&AuthUser| !u.banned && target.is_none_or(|t| t.id != u.id);
    match person.desired() {
        Some(desired) => match target {
            None => Action::Created,
            Some(user) => {
                let update = diff(user, &desired);
                let linked = person.holder.as_ref().and_then(|h| h.auth_user_id) == Some(user.id);
                if update.banned.is_some() {
                    Action::Restored
                } else if update.profile.is_some() || !linked {
                    Action::Updated
                } else if others.iter().any(must_ban) {
                    Action::Decommissioned
                } else {
                    Action::Unchanged
                }
            }
        },
        None => {
            let any_unbanned =
                target.is_some_and(|t| !t.banned) || others.iter().any(|u| !u.banned);
            if any_unbanned {
                Action::Decommissioned
            } else {
                Action::Unchanged
            }
        }
    }
}

/// A roster row as provisioning reads it.
pub struct PersonRow {
    pub id: String,
    pub email: String,
    pub status: String,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub auth_user_id: Option<Uuid>,
}

impl Person {
    pub fn new(email: Email) -> Self {
        Self {
            email,
            holder: None,
            other_links: Vec::new(),
            seen_rows: false,
        }
    }

    /// Adds a row carrying this email. Rows must come holder first: live
    /// before deleted, then newest profile first.
    pub fn push(&mut self, r: PersonRow) {
        let status = match r.status.as_str() {
            "active" => RowStatus::Active,
            "disabled" => RowStatus::Disabled,
            _ => RowStatus::Deleted,
        };
        let first = self.holder.is_none() && !self.seen_rows;
        self.seen_rows = true;
        if first && status != RowStatus::Deleted {
            self.holder = Some(Holder {
                row_id: r.id,
                status,
                name: r.name,
                roles: r.roles,
                auth_user_id: r.auth_user_id,
            });
        } else if let Some(link) = r.auth_user_id {
            self.other_links.push(link);
        }
    }
}

/// Reads the rows carrying `email`, holder first.
pub async fn load(conn: &mut PgConnection, email: &Email) -> Result<Person, sqlx::Error> {
    let rows = sqlx::query_as!(
        PersonRow,
        r#"select id, email as "email!", status as "status!", name, roles, auth_user_id
           from roster where email = $1
           order by (status <> 'deleted') desc, profile_at desc, profile_event_id desc"#,
        email.as_str()
    )
    .fetch_all(conn)
    .await?;
    let mut person = Person::new(email.clone());
    rows.into_iter().for_each(|r| person.push(r));
    Ok(person)
}

/// Links a user created just now, which no other row can hold yet.
pub async fn link_new(
    conn: &mut PgConnection,
    row_id: &str,
    user: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update roster set auth_user_id = $2, auth_linked_at = now() where id = $1",
        row_id,
        user
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes `user` the holder row's auth user, taking the link from whichever
/// row had it (an auth user is linked to at most one row).
pub async fn link(conn: &mut PgConnection, row_id: &str, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update roster set auth_user_id = null where auth_user_id = $2 and id <> $1",
        row_id,
        user
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "update roster set auth_user_id = $2, auth_linked_at = now()
         where id = $1 and auth_user_id is distinct from $2",
        row_id,
        user
    )
    .execute(conn)
    .await?;
    Ok(())
}
