//! Provisioning: bringing each person's auth user to what the roster says.
//!
//! [`provision_person`] is the one path that changes auth users; the job
//! worker, the full reconcile, the login lookup and the operators' "provision
//! now" all call it.
//!
//! # Why it converges under any concurrency
//!
//! Jobs are per person (email), but people share auth users: a user follows
//! its record from one email to another, a re-created record adopts the
//! user of a deleted one, and two records can swap emails. The first design
//! let jobs of different people read, decide and act on a shared user at
//! the same time and patched each race it found (re-checks, re-queues after
//! a ban, parking while "in transit"). A black-box test with six concurrent
//! senders still found end states that in-order delivery never gives:
//!
//! - *a deleted person kept a login*: job A read "user U is linked to a live
//!   holder" and unbanned it while job B, which had read "U is linked to a
//!   deleted row", banned it first; A's unban landed last;
//! - *an active person locked out*: the mirror image, B's ban landing after
//!   A's adoption of U, on a user that meanwhile carried A's email;
//! - *an orphan that could log in*: A created a user and linked it to a row
//!   whose email had just moved, B re-linked the row, and nothing linked A's
//!   user any more, so no job and no reconcile considered it.
//!
//! Each is two read–decide–act sequences interleaving on one auth user or
//! one email. So now each sequence holds advisory locks on its email and on
//! every auth user it reads (see [`locks`]): it reads, takes the locks the
//! read names, reads again under them, and acts only when everything it
//! read was read under its lock. Whoever else could change those users
//! must take the same locks, so the facts hold until the acts are done.
//! Roster rows are not locked: a change to them queues the person's job
//! again, which then decides from the new rows. Every link written checks
//! that the row still is what was read (compare-and-set), and ownership is
//! marked at the provider (`app_metadata.managed_by`), so a user that lost
//! its link is still found and banned. Jobs of unrelated people take
//! disjoint locks and run in parallel, in any number of replicas.

pub(crate) mod locks;
pub(crate) mod person;
pub mod provider;
pub mod reconcile;
pub mod worker;

use crate::db::RunPool;
use crate::event::Email;
use crate::outbox::{self, Job};
use crate::roster::store::{has_override, link, link_new, link_row};
use crate::state::Action;
use locks::{Key, Locks};
use person::{decide, load, Decision, Facts, Occupant, Person, Step};
use provider::{AuthProvider, AuthUser, Profile, ProviderError, UserUpdate};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// Fixed namespace for the deterministic auth user ids (UUIDv5 of the
/// canonical email): a retried create can never make a second user.
pub(crate) const USER_ID_NAMESPACE: Uuid =
    Uuid::from_u128(0x6f1e_2c3a_8b4d_4e5f_9a0b_1c2d_3e4f_5a6b);

pub(crate) fn deterministic_id(email: &Email) -> Uuid {
    Uuid::new_v5(&USER_ID_NAMESPACE, email.as_str().as_bytes())
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProvisionError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl ProvisionError {
    /// Worth retrying later: provider 429/5xx/timeouts and our own database.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Provider(e) => e.is_transient(),
            Self::Db(_) => true,
        }
    }

    pub(crate) fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Provider(ProviderError::Transient { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }
}

/// Brings one person's auth user(s) to the state their holder row asks
/// for, and reports what it did. No database row lock or transaction is held
/// while the provider is called; the person's advisory locks are.
pub(crate) async fn provision_person(
    db: &RunPool,
    provider: &dyn AuthProvider,
    email: &Email,
) -> Result<Action, ProvisionError> {
    let result = provision(db, provider, email).await;
    crate::metrics::provisioned(result.as_ref().ok().copied());
    result
}

/// Rounds of read, lock, act; a handful settle any race, more means the
/// person is changing faster than we can follow: retry later.
const MAX_ROUNDS: usize = 8;

async fn provision(
    db: &RunPool,
    provider: &dyn AuthProvider,
    email: &Email,
) -> Result<Action, ProvisionError> {
    let turn = locks::turn(email.as_str()).await;
    let mut locks = Locks::new(db).await?;
    let mut invited = Invited::default();
    let result = converge(&mut locks, provider, email, db.invitations(), &mut invited).await;
    // Everything is written: the caller need not wait for the unlock. The
    // turn is kept until then, so this process's next run for the email
    // waits for it; another process's waits on the lock itself. Should
    // the unlock fail, the guard closes the connection, which drops the locks.
    tokio::spawn(async move {
        let _turn = turn;
        if let Err(e) = locks.release().await {
            tracing::warn!(error = %e, "releasing provisioning locks failed; closing the connection");
        }
    });
    if let Ok(action) = &result {
        tracing::info!(action = action.as_str(), "provisioned person");
    }
    invited.announce(db).await;
    result
}

/// Invitations a run issued (with invitations on).
#[derive(Default)]
struct Invited {
    issued: usize,
    mailed: bool,
}

impl Invited {
    fn count(&mut self, id: Option<i64>, policy: crate::config::InvitePolicy) {
        if id.is_some() {
            self.issued += 1;
            self.mailed |= policy.mail;
        }
    }

    /// Counts them, and wakes the workers for their mail now rather than at
    /// their next poll (a run outside the worker, such as a first login,
    /// queued it).
    async fn announce(self, db: &RunPool) {
        for _ in 0..self.issued {
            crate::metrics::invitation("issued");
        }
        if self.mailed {
            if let Err(e) = outbox::notify(db.pool()).await {
                tracing::debug!(error = %e, "NOTIFY after queueing an invitation failed; workers poll");
            }
        }
    }
}

async fn converge(
    locks: &mut Locks,
    provider: &dyn AuthProvider,
    email: &Email,
    invites: Option<crate::config::InvitePolicy>,
    invited: &mut Invited,
) -> Result<Action, ProvisionError> {
    let mut look_up = false;
    locks
        .take(&BTreeSet::from([Key::email(email.as_str())]))
        .await?;
    for _ in 0..MAX_ROUNDS {
        // The roster names the linked users: lock them before asking the
        // provider about them, so each is fetched once, under its lock.
        let person = load(locks.conn(), email).await?;
        let linked: BTreeSet<Key> = person.links().map(Key::user).collect();
        if !locks.holds_all(&linked) {
            locks.take(&linked).await?;
            continue;
        }
        let facts = read(locks, provider, person, look_up).await?;
        let want = keys(&facts);
        if !locks.holds_all(&want) {
            locks.take(&want).await?;
            continue;
        }
        let plan = match decide(&facts) {
            Decision::Act(plan) => plan,
            Decision::LookUp => {
                look_up = true;
                continue;
            }
            Decision::Blocked => {
                return Err(ProviderError::Permanent {
                    message: "the email belongs to an auth user rosterd does not manage".into(),
                }
                .into())
            }
        };
        match act(locks, provider, &facts, &plan.steps, invites, invited).await? {
            Acted::Done => {
                if let Some(policy) = invites {
                    settle_invitations(locks, email, policy, invited).await?;
                }
                return Ok(plan.action);
            }
            // The adopted user carries an operator's role override, which
            // the decision could not see before the link: decide again.
            Acted::Relinked => {}
            // Someone outside the locks had the email, or the roster moved
            // on: decide again from what is there now.
            Acted::Moved => look_up = true,
        }
    }
    Err(transient("the person kept changing while being provisioned; will retry").into())
}

/// The facts a decision reads: the person's rows (read under the locks of
/// the users they link), those users, and (when needed) who has the email
/// at the provider.
async fn read(
    locks: &mut Locks,
    provider: &dyn AuthProvider,
    person: Person,
    look_up: bool,
) -> Result<Facts, ProvisionError> {
    let email = &person.email;
    let mut linked = HashMap::new();
    for id in person.links() {
        if let Some(u) = provider.get_user(id).await? {
            linked.insert(id, u);
        }
    }
    let at_email = linked
        .values()
        .find(|u| u.email.eq_ignore_ascii_case(email.as_str()))
        .cloned();
    let found = match at_email {
        Some(u) => Some(Some(u)),
        // An active person's user is created or renamed optimistically: the
        // provider's unique email says when someone is there after all.
        None if look_up || person.desired().is_none() => {
            Some(provider.find_by_email(email.as_str()).await?)
        }
        None => None,
    };
    let occupant = match found {
        None => Occupant::Unknown,
        Some(None) => Occupant::Nobody,
        Some(Some(u)) => {
            let link = link_row(locks.conn(), u.id).await?;
            Occupant::User(u, link)
        }
    };
    Ok(Facts {
        person,
        linked,
        occupant,
    })
}

/// The locks that make `facts` stable: the email and every user in them.
fn keys(facts: &Facts) -> BTreeSet<Key> {
    let occupant = match &facts.occupant {
        Occupant::User(u, _) => Some(u.id),
        _ => None,
    };
    std::iter::once(Key::email(facts.person.email.as_str()))
        .chain(facts.person.links().chain(occupant).map(Key::user))
        .collect()
}

enum Acted {
    Done,
    Moved,
    Relinked,
}

async fn act(
    locks: &mut Locks,
    provider: &dyn AuthProvider,
    facts: &Facts,
    steps: &[Step],
    invites: Option<crate::config::InvitePolicy>,
    invited: &mut Invited,
) -> Result<Acted, ProvisionError> {
    let email = &facts.person.email;
    let holder = facts.person.holder.as_ref();
    let expected = holder.and_then(|h| h.auth_user_id);
    for step in steps {
        let done = match step {
            Step::Park { user, requeue, ban } => {
                tracing::info!(user = %user.id, "moving a user off an email that is another person's");
                let update = UserUpdate {
                    profile: Some(placeholder(user)),
                    banned: ban.then_some(true),
                };
                let done = settled(provider.update_user(user.id, &update).await)?;
                if let Some(e) = requeue {
                    outbox::enqueue(
                        locks.conn(),
                        [Job::Provision {
                            email: Email::from_trusted(e.clone()),
                        }],
                    )
                    .await?;
                }
                done
            }
            Step::Create(profile) => {
                let holder = holder.expect("only an active holder gets a user");
                match create(provider, email, profile).await? {
                    Some(user) => {
                        let linking = Linking {
                            row_id: &holder.row_id,
                            expected,
                            user: user.id,
                            fresh: true,
                        };
                        linking.link(locks.conn(), email, invites, invited).await?
                    }
                    None => false,
                }
            }
            Step::Adopt(user, update) => {
                let holder = holder.expect("only an active holder adopts");
                // A user of ours that no row links is one we created whose
                // answer (or link) was lost: the person is new all the same.
                let ours_unlinked = user.managed
                    && matches!(&facts.occupant, Occupant::User(u, None) if u.id == user.id);
                let linking = Linking {
                    row_id: &holder.row_id,
                    expected,
                    user: user.id,
                    fresh: false,
                };
                let done = linking
                    .link(
                        locks.conn(),
                        email,
                        invites.filter(|_| ours_unlinked),
                        invited,
                    )
                    .await?
                    && (*update == UserUpdate::default()
                        || settled(provider.update_user(user.id, update).await)?);
                if done && has_override(locks.conn(), user.id).await? {
                    return Ok(Acted::Relinked);
                }
                done
            }
            Step::Update(id, update) => settled(provider.update_user(*id, update).await)?,
            Step::Ban(id) => {
                let ban = UserUpdate {
                    profile: None,
                    banned: Some(true),
                };
                match provider.update_user(*id, &ban).await {
                    // A user deleted at the provider cannot log in either.
                    Ok(_) | Err(ProviderError::NotFound) => true,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if !done {
            return Ok(Acted::Moved);
        }
    }
    Ok(Acted::Done)
}

/// Linking the holder row to a user: a compare-and-set on what the run read
/// (`roster::store::link`).
struct Linking<'a> {
    row_id: &'a str,
    expected: Option<Uuid>,
    user: Uuid,
    /// Created just now: no other row can link it yet.
    fresh: bool,
}

impl Linking<'_> {
    /// `false` when the roster moved on. With `invite` (invitations on, and
    /// the user is one rosterd created for this person), the person's
    /// invitation is issued in the same transaction as the link.
    async fn link(
        &self,
        conn: &mut sqlx::PgConnection,
        email: &Email,
        invite: Option<crate::config::InvitePolicy>,
        invited: &mut Invited,
    ) -> Result<bool, sqlx::Error> {
        let Some(policy) = invite else {
            return self.write(conn, email).await;
        };
        let mut tx = sqlx::Acquire::begin(conn).await?;
        let linked = self.write(&mut tx, email).await?;
        if linked {
            let id = crate::invite::store::issue_new(&mut tx, self.user, email, policy).await?;
            tx.commit().await?;
            invited.count(id, policy);
        }
        Ok(linked)
    }

    async fn write(
        &self,
        conn: &mut sqlx::PgConnection,
        email: &Email,
    ) -> Result<bool, sqlx::Error> {
        if self.fresh {
            link_new(conn, email, self.row_id, self.expected, self.user).await
        } else {
            link(conn, email, self.row_id, self.expected, self.user).await
        }
    }
}

/// After a run that acted, from the rows as they are now: invitations of
/// users no active person holds are revoked, and a person who came back is
/// invited again unless they had accepted (`invite::store::settle`).
async fn settle_invitations(
    locks: &mut Locks,
    email: &Email,
    policy: crate::config::InvitePolicy,
    invited: &mut Invited,
) -> Result<(), sqlx::Error> {
    let person = load(locks.conn(), email).await?;
    let holder = person.desired().and(person.holder_link());
    let gone: Vec<Uuid> = person.links().filter(|id| Some(*id) != holder).collect();
    let id = crate::invite::store::settle(
        locks.conn(),
        holder.map(|user| (user, email)),
        &gone,
        policy,
    )
    .await?;
    invited.count(id, policy);
    Ok(())
}

/// `Ok(false)` for the answers that mean "not what we read": the email is
/// taken, or the user is gone.
fn settled(r: Result<AuthUser, ProviderError>) -> Result<bool, ProviderError> {
    match r {
        Ok(_) => Ok(true),
        Err(ProviderError::EmailExists | ProviderError::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates the person's user under the deterministic id, or a random one
/// when that id went with an earlier email. `None` when the email is
/// taken after all (an account from before rosterd, or our own create
/// whose answer was lost): the caller looks it up and adopts it.
async fn create(
    provider: &dyn AuthProvider,
    email: &Email,
    profile: &Profile,
) -> Result<Option<AuthUser>, ProviderError> {
    match provider.create_user(deterministic_id(email), profile).await {
        Err(ProviderError::IdExists) => match provider.create_user(Uuid::new_v4(), profile).await {
            Err(ProviderError::EmailExists) => Ok(None),
            r => r.map(Some),
        },
        Err(ProviderError::EmailExists) => Ok(None),
        r => r.map(Some),
    }
}

/// Where a user waits when its email is another person's: unique to it,
/// undeliverable by definition (`.invalid`).
fn placeholder(user: &AuthUser) -> Profile {
    Profile {
        email: format!("parked-{}@rosterd.invalid", user.id.simple()),
        name: user.name.clone(),
        roles: user.roles.clone(),
        roster_id: user.roster_id.clone().unwrap_or_default(),
    }
}

fn transient(message: &str) -> ProviderError {
    ProviderError::Transient {
        message: message.into(),
        retry_after: None,
    }
}
