//! Role overrides per person (docs/contract.md §7): roles to preserve,
//! roles to suppress, and a freeze that stops sync from revoking any. Kept
//! per auth user, so they follow the person through an email change and a
//! re-created record. Every change is audited with before and after, and
//! queues provisioning so the provider, the lookup and the reconcile agree.

use super::users::parse_id;
use super::AdminError;
use crate::audit::{self, Actor};
use crate::event::Email;
use crate::outbox::{self, Job};
use crate::roster::store::{self, RolesView};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeSet;

/// Roles named in one list, at most.
const MAX_ROLES: usize = 50;

/// What `GET`/`PUT`/`DELETE /api/admin/users/{id}/role-overrides` answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Overrides {
    pub(crate) user_id: Option<uuid::Uuid>,
    /// What the groups (and `ROLE_DEFAULTS`) grant.
    pub(crate) mapped: Vec<String>,
    pub(crate) preserve: Vec<String>,
    pub(crate) suppress: Vec<String>,
    pub(crate) freeze: bool,
    /// While frozen: the roles held when the freeze began, never revoked.
    pub(crate) frozen_roles: Option<Vec<String>>,
    /// What the person gets: (mapped ∪ preserve) − suppress, ∪ frozen roles.
    pub(crate) effective: Vec<String>,
    pub(crate) updated_at: Option<DateTime<Utc>>,
    pub(crate) updated_by: Option<String>,
}

impl From<RolesView> for Overrides {
    fn from(v: RolesView) -> Self {
        Self {
            user_id: v.user_id,
            mapped: v.mapped,
            preserve: v.preserve,
            suppress: v.suppress,
            freeze: v.frozen_roles.is_some(),
            frozen_roles: v.frozen_roles,
            effective: v.effective,
            updated_at: v.updated_at,
            updated_by: v.updated_by,
        }
    }
}

/// A `PUT` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Change {
    #[serde(default)]
    pub(crate) preserve: Vec<String>,
    #[serde(default)]
    pub(crate) suppress: Vec<String>,
    #[serde(default)]
    pub(crate) freeze: bool,
}

/// Role names as `ROLE_MAP` takes them (case kept, no `,` `=` or control
/// characters, 1 to 64 characters) and with nothing to trim, as
/// `openapi.yaml`'s `RoleName` says; sorted and deduplicated.
fn names(list: &[String], field: &str) -> Result<Vec<String>, AdminError> {
    if list.len() > MAX_ROLES {
        return Err(AdminError::BadInput(format!(
            "{field} names at most {MAX_ROLES} roles"
        )));
    }
    let mut out = BTreeSet::new();
    let space = |c: Option<char>| c.is_some_and(|c| c.is_whitespace() || c == '\u{feff}');
    for r in list {
        let ok = (1..=64).contains(&r.chars().count())
            && !space(r.chars().next())
            && !space(r.chars().next_back())
            && !r
                .chars()
                .any(|c| c == ',' || c == '=' || c < ' ' || c == '\u{7f}');
        if !ok {
            return Err(AdminError::BadInput(format!(
                "{field}: {r:?} is not a role name (1-64 characters, no comma, = or control characters)"
            )));
        }
        out.insert(r.clone());
    }
    Ok(out.into_iter().collect())
}

async fn view(db: &PgPool, raw_id: &str) -> Result<Overrides, AdminError> {
    let id = parse_id(raw_id)?;
    let mut conn = db.acquire().await?;
    store::roles_view(&mut conn, id.as_str(), false)
        .await?
        .map(Overrides::from)
        .ok_or(AdminError::NotFound)
}

/// `GET /api/admin/users/{id}/role-overrides`.
pub(crate) async fn get(db: &PgPool, raw_id: &str) -> Result<Overrides, AdminError> {
    view(db, raw_id).await
}

/// `PUT` (a `Change`) or `DELETE` (`None`): sets or lifts the override of
/// the record's person, audits before and after, queues their provisioning.
pub(crate) async fn set(
    db: &PgPool,
    actor: &Actor,
    raw_id: &str,
    change: Option<&Change>,
) -> Result<Overrides, AdminError> {
    let id = parse_id(raw_id)?;
    let wanted = change
        .map(|c| {
            let (preserve, suppress) = (
                names(&c.preserve, "preserve")?,
                names(&c.suppress, "suppress")?,
            );
            if let Some(both) = preserve.iter().find(|r| suppress.contains(r)) {
                return Err(AdminError::BadInput(format!(
                    "{both:?} cannot be both preserved and suppressed"
                )));
            }
            Ok((preserve, suppress, c.freeze))
        })
        .transpose()?;
    let mut tx = db.begin().await?;
    let before = store::roles_view(&mut tx, id.as_str(), true)
        .await?
        .ok_or(AdminError::NotFound)?;
    let (Some(user), Some(email)) = (before.user_id, before.email.clone()) else {
        return Err(AdminError::Conflict(format!(
            "record {id} has no auth user yet; overrides are kept per auth user, so provision the person first"
        )));
    };
    match &wanted {
        Some((preserve, suppress, freeze)) => {
            // A new freeze keeps what the person has now; a standing one
            // keeps what it kept.
            let frozen = match (freeze, &before.frozen_roles) {
                (false, _) => None,
                (true, Some(kept)) => Some(kept.clone()),
                (true, None) => Some(before.effective.clone()),
            };
            store::put_override(
                &mut tx,
                user,
                preserve,
                suppress,
                frozen.as_deref(),
                &actor.name,
            )
            .await?;
        }
        None => {
            if !store::delete_override(&mut tx, user).await? {
                return Err(AdminError::NotFound);
            }
        }
    }
    let after = store::roles_view(&mut tx, id.as_str(), false)
        .await?
        .ok_or(AdminError::NotFound)?;
    let (before, after) = (Overrides::from(before), Overrides::from(after));
    let action = match wanted {
        Some(_) => "user.role_overrides.set",
        None => "user.role_overrides.delete",
    };
    audit::record(
        &mut tx,
        actor,
        action,
        Some(id.as_str()),
        &json!({"userId": user, "before": before, "after": after}),
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        [Job::Provision {
            email: Email::from_trusted(email),
        }],
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn role_names_are_taken_as_role_map_takes_them() {
        let given = ["publisher", "Admin", "admin", "Admin", "ops lead"].map(String::from);
        let got = names(&given, "preserve").unwrap();
        assert_eq!(got, ["Admin", "admin", "ops lead", "publisher"]);
        let long = "x".repeat(65);
        for bad in [
            "",
            " admin",
            "admin ",
            "a,b",
            "a=b",
            "tab\there",
            "del\u{7f}",
            &long,
        ] {
            assert!(names(&[bad.to_string()], "suppress").is_err(), "{bad:?}");
        }
        assert!(names(&vec!["r".to_string(); 51], "preserve").is_err());
    }
}
