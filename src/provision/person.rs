//! A person (canonical email) as the roster and the provider see it, and
//! the pure decision of what to do about it. The provisioning function and
//! the full reconcile both decide through [`decide`], so a dry run counts
//! exactly what a real run would do.

use super::provider::{AuthUser, Profile, UserUpdate};
use crate::event::Email;
use crate::roster::store::{self, LinkRow, PersonRow};
use crate::state::{Action, RowStatus};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// The newest live row carrying the email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) row_id: String,
    pub(crate) status: RowStatus,
    pub(crate) name: Option<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) auth_user_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    pub(crate) email: Email,
    pub(crate) holder: Option<Holder>,
    /// Auth users linked to rows that carry this email but do not hold it
    /// (deleted rows, older conflicting rows): none of them may log in as
    /// this person.
    pub(crate) other_links: Vec<Uuid>,
    seen_rows: bool,
}

impl Person {
    /// The profile the auth user must have when the person is active.
    pub(crate) fn desired(&self) -> Option<Profile> {
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

    /// Every auth user linked to a row carrying this email.
    pub(crate) fn links(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.holder_link()
            .into_iter()
            .chain(self.other_links.iter().copied())
    }

    pub(crate) fn holder_link(&self) -> Option<Uuid> {
        self.holder.as_ref().and_then(|h| h.auth_user_id)
    }
}

/// Who holds the person's email at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Occupant {
    /// Not looked up: the person is active and the provider's uniqueness
    /// check on create or email change will tell if someone is there (a
    /// new person then costs one provider call, not two).
    Unknown,
    Nobody,
    User(AuthUser, Option<LinkRow>),
}

/// Everything a decision about one person reads. In the worker it is read
/// under the person's locks (see `super::locks`), so nothing in it changes
/// between the decision and the acts.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub(crate) person: Person,
    /// The provider's state of every user in `person.links()`; a user the
    /// provider no longer has is absent.
    pub(crate) linked: HashMap<Uuid, AuthUser>,
    pub(crate) occupant: Occupant,
}

/// One act on the provider or the links, in the order [`Plan::steps`]
/// lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Moves a user off the person's email onto a placeholder address, so
    /// the person's own user can have it. A user following its record to
    /// another email keeps its login and that email's job is queued; any
    /// other user is banned too.
    Park {
        user: AuthUser,
        requeue: Option<String>,
        ban: bool,
    },
    /// Creates the holder's user, then links it.
    Create(Profile),
    /// Links the holder row to this user (taking the link from any other
    /// row), then brings it to the profile.
    Adopt(AuthUser, UserUpdate),
    /// Brings the holder's linked user to the profile.
    Update(Uuid, UserUpdate),
    Ban(Uuid),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) action: Action,
    pub(crate) steps: Vec<Step>,
}

/// What deciding needs first, when the facts are not enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    Act(Plan),
    /// Ask the provider who has the email, then decide again.
    LookUp,
    /// The email belongs to a user rosterd does not manage and the person's
    /// own user needs it: an operator must decide.
    Blocked,
}

/// The changes that bring an existing user to the desired profile.
pub(crate) fn diff(user: &AuthUser, desired: &Profile) -> UserUpdate {
    let same_profile = user.email.eq_ignore_ascii_case(&desired.email)
        && user.name == desired.name
        && user.roles == desired.roles
        && user.roster_id.as_deref() == Some(desired.roster_id.as_str())
        && user.managed;
    UserUpdate {
        profile: (!same_profile).then(|| desired.clone()),
        banned: user.banned.then_some(false),
    }
}

/// A user linked to a live row whose email is another one is following
/// its record there: that email's job owns it.
fn in_transit(link: Option<&LinkRow>, email: &Email) -> Option<String> {
    link.filter(|l| l.live)
        .and_then(|l| l.email.clone())
        .filter(|e| e != email.as_str())
}

/// The contract's rules for one person, as a list of acts:
/// an active holder's user is the one linked to it, else the one with the
/// email (adopted), else a new one; every other user linked to a row
/// carrying the email is banned; with no active holder, every such user
/// is banned, and so is a user of ours that sits on the email unlinked.
pub(crate) fn decide(f: &Facts) -> Decision {
    let person = &f.person;
    let linked = f
        .person
        .holder_link()
        .and_then(|id| f.linked.get(&id))
        .cloned();
    let occupant = &f.occupant;
    let mut steps = Vec::new();
    // Users linked to the email's other rows, unless handled already.
    let others = |handled: &[Uuid]| {
        person
            .other_links
            .iter()
            .filter_map(|id| f.linked.get(id))
            .filter(|u| !u.banned && !handled.contains(&u.id))
            .map(|u| Step::Ban(u.id))
            .collect::<Vec<_>>()
    };

    let Some(desired) = person.desired() else {
        if *occupant == Occupant::Unknown {
            return Decision::LookUp;
        }
        // A disabled holder's user is banned like the others.
        let holder = linked
            .as_ref()
            .filter(|u| !u.banned)
            .map(|u| Step::Ban(u.id));
        steps.extend(holder);
        steps.extend(others(&[]));
        if let Occupant::User(u, link) = occupant {
            let ours = u.managed || link.is_some();
            let counted = f.linked.contains_key(&u.id);
            if ours && !u.banned && !counted && in_transit(link.as_ref(), &person.email).is_none() {
                steps.push(Step::Ban(u.id));
            }
        }
        let action = if steps.is_empty() {
            Action::Unchanged
        } else {
            Action::Decommissioned
        };
        return Decision::Act(Plan { action, steps });
    };

    // The target: linked, else adopted from the email, else created.
    let (target, adopted) = match (&linked, occupant) {
        (Some(u), _) => (Some(u.clone()), false),
        (None, Occupant::User(u, link)) if in_transit(link.as_ref(), &person.email).is_none() => {
            (Some(u.clone()), true)
        }
        _ => (None, false),
    };
    // Someone else on the email must make room.
    if let Occupant::User(u, link) = occupant {
        if target.as_ref().is_none_or(|t| t.id != u.id) {
            let requeue = in_transit(link.as_ref(), &person.email);
            if requeue.is_none() && !u.managed && link.is_none() {
                return Decision::Blocked;
            }
            let ban = requeue.is_none();
            steps.push(Step::Park {
                user: u.clone(),
                requeue,
                ban,
            });
        }
    }
    let action = match &target {
        None => {
            steps.push(Step::Create(desired));
            Action::Created
        }
        Some(t) => {
            let update = diff(t, &desired);
            let action = if update.banned.is_some() {
                Action::Restored
            } else if update.profile.is_some() || adopted {
                Action::Updated
            } else {
                Action::Unchanged
            };
            if adopted {
                steps.push(Step::Adopt(t.clone(), update));
            } else if update != UserUpdate::default() {
                steps.push(Step::Update(t.id, update));
            }
            action
        }
    };
    let mut handled: Vec<Uuid> = target.iter().map(|t| t.id).collect();
    if let Occupant::User(u, _) = occupant {
        handled.push(u.id);
    }
    steps.extend(others(&handled));
    // Unchanged pushed no step of its own: anything here is a park or a ban.
    let action = if action == Action::Unchanged && !steps.is_empty() {
        Action::Decommissioned
    } else {
        action
    };
    Decision::Act(Plan { action, steps })
}

impl Person {
    pub(crate) fn new(email: Email) -> Self {
        Self {
            email,
            holder: None,
            other_links: Vec::new(),
            seen_rows: false,
        }
    }

    /// The person from the rows carrying its email, holder first (as
    /// `roster::store` reads them).
    pub(crate) fn from_rows(email: Email, rows: Vec<PersonRow>) -> Self {
        let mut person = Self::new(email);
        rows.into_iter().for_each(|r| person.push(r));
        person
    }

    /// Adds a row carrying this email. Rows must come holder first, as
    /// the roster's holder rule orders them (`roster::store::person_rows`).
    pub(crate) fn push(&mut self, r: PersonRow) {
        let first = self.holder.is_none() && !self.seen_rows;
        self.seen_rows = true;
        if first && r.status != RowStatus::Deleted {
            self.holder = Some(Holder {
                row_id: r.id,
                status: r.status,
                name: r.name,
                roles: r.roles,
                auth_user_id: r.auth_user_id,
            });
        } else if let Some(link) = r.auth_user_id {
            self.other_links.push(link);
        }
    }
}

/// Reads the person through the roster: its rows, holder first.
pub(crate) async fn load(conn: &mut PgConnection, email: &Email) -> Result<Person, sqlx::Error> {
    let rows = store::person_rows(conn, email).await?;
    Ok(Person::from_rows(email.clone(), rows))
}
