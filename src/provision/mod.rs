//! Provisioning: bringing each person's auth user to what the roster says.
//!
//! [`provision_person`] is the one path that changes auth users; the job
//! worker, the full reconcile and the login lookup all call it.

pub mod jobs;
pub mod person;
pub mod provider;
pub mod reconcile;
pub mod roles;
pub mod worker;

use crate::event::Email;
use person::{diff, load, plan, Action, Person};
use provider::{AuthProvider, AuthUser, Profile, ProviderError, UserUpdate};
use sqlx::PgPool;
use uuid::Uuid;

/// Fixed namespace for the deterministic auth user ids (UUIDv5 of the
/// canonical email): a retried create can never make a second user.
pub const USER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1e_2c3a_8b4d_4e5f_9a0b_1c2d_3e4f_5a6b);

pub fn deterministic_id(email: &Email) -> Uuid {
    Uuid::new_v5(&USER_ID_NAMESPACE, email.as_str().as_bytes())
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl ProvisionError {
    /// Worth retrying later: provider 429/5xx/timeouts and our own database.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Provider(e) => e.is_transient(),
            Self::Db(_) => true,
        }
    }

    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Provider(ProviderError::Transient { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }
}

/// Brings one person's auth user(s) to the state their holder row asks
/// for, and reports what it did. No database lock is held while the
/// provider is called.
pub async fn provision_person(
    db: &PgPool,
    provider: &dyn AuthProvider,
    email: &Email,
) -> Result<Action, ProvisionError> {
    let result = provision(db, provider, email).await;
    crate::metrics::provisioned(match &result {
        Ok(action) => action.as_str(),
        Err(_) => "failed",
    });
    result
}

async fn provision(
    db: &PgPool,
    provider: &dyn AuthProvider,
    email: &Email,
) -> Result<Action, ProvisionError> {
    let person = load(&mut *db.acquire().await?, email).await?;
    let mut others = Vec::new();
    for id in &person.other_links {
        if let Some(u) = provider.get_user(*id).await? {
            others.push(u);
        }
    }
    let action = match (&person.holder, person.desired()) {
        (Some(holder), Some(desired)) => {
            let (user, created) = find_or_create(db, provider, &person, &desired).await?;
            // Decide before acting, from the state we found.
            let action = if created {
                Action::Created
            } else {
                plan(&person, Some(&user), &others.iter().collect::<Vec<_>>())
            };
            let user = if holder.auth_user_id == Some(user.id) {
                user
            } else if created {
                // New: no other row can hold it, nobody else can ban it.
                person::link_new(&mut *db.acquire().await?, &holder.row_id, user.id).await?;
                user
            } else {
                person::link(&mut *db.acquire().await?, &holder.row_id, user.id).await?;
                // Read again after the link is committed: a job for the
                // user's previous row may have banned it meanwhile, and
                // `ban_all` re-queues us only for bans after this link.
                provider
                    .get_user(user.id)
                    .await?
                    .ok_or(ProviderError::NotFound)?
            };
            let update = diff(&user, &desired);
            if update.profile.is_some() || update.banned.is_some() {
                update_taking_email(db, provider, user.id, &update, &holder.row_id).await?;
            }
            ban_all(db, provider, others.iter().filter(|u| u.id != user.id)).await?;
            action
        }
        _ => {
            let mut linked = others;
            if let Some(id) = person.holder.as_ref().and_then(|h| h.auth_user_id) {
                linked.extend(provider.get_user(id).await?);
            }
            let action = plan(&person, None, &linked.iter().collect::<Vec<_>>());
            ban_all(db, provider, linked.iter()).await?;
            action
        }
    };
    tracing::info!(action = action.as_str(), "provisioned person");
    Ok(action)
}

/// Applies `update`; when another user still has the email, and that user
/// is one rosterd manages for a different row (two records swapping
/// emails, or a row that gave the email up), it is parked on a placeholder
/// address first — its own queued job gives it its right email later.
/// A user rosterd does not manage is never touched: that is an error for
/// an operator.
async fn update_taking_email(
    db: &PgPool,
    provider: &dyn AuthProvider,
    id: Uuid,
    update: &UserUpdate,
    holder_row: &str,
) -> Result<(), ProvisionError> {
    let Err(ProviderError::EmailExists) = provider.update_user(id, update).await else {
        return Ok(());
    };
    let email = &update
        .profile
        .as_ref()
        .expect("only an email change conflicts")
        .email;
    let blocker = provider.find_by_email(email).await?.filter(|b| b.id != id);
    let Some(blocker) = blocker else {
        return Err(transient("email reported taken but no other user has it").into());
    };
    let managed_elsewhere = sqlx::query_scalar!(
        r#"select exists(select 1 from roster where auth_user_id = $1 and id <> $2) as "x!""#,
        blocker.id,
        holder_row
    )
    .fetch_one(db)
    .await?;
    if !managed_elsewhere {
        return Err(ProviderError::Permanent {
            message: "the email belongs to an auth user rosterd does not manage".into(),
        }
        .into());
    }
    park(db, provider, &blocker).await?;
    provider.update_user(id, update).await?;
    Ok(())
}

/// Moves a managed user off an email it no longer has a right to, onto a
/// placeholder address, and queues its own person's job so it gets its
/// right email back (that job may already have run, racing this one).
async fn park(
    db: &PgPool,
    provider: &dyn AuthProvider,
    user: &AuthUser,
) -> Result<(), ProvisionError> {
    let placeholder = UserUpdate {
        profile: Some(Profile {
            email: format!("parked-{}@rosterd.invalid", user.id.simple()),
            name: user.name.clone(),
            roles: user.roles.clone(),
            roster_id: user.roster_id.clone().unwrap_or_default(),
        }),
        banned: None,
    };
    tracing::info!(user = %user.id, "parking a managed user to free its old email");
    provider.update_user(user.id, &placeholder).await?;
    let mut tx = db.begin().await?;
    let owners: Vec<String> = sqlx::query_scalar!(
        r#"select email as "email!" from roster
           where auth_user_id = $1 and email is not null order by email"#,
        user.id
    )
    .fetch_all(&mut *tx)
    .await?;
    let owners: Vec<&str> = owners.iter().map(String::as_str).collect();
    jobs::enqueue(&mut tx, &owners).await?;
    tx.commit().await?;
    Ok(())
}

/// A user linked to a live row whose email is now another one is following
/// its record there: it is not this person's to adopt.
async fn in_transit(db: &PgPool, user: &AuthUser, email: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from roster where auth_user_id = $1
                         and status <> 'deleted' and email is distinct from $2) as "x!""#,
        user.id,
        email
    )
    .fetch_one(db)
    .await
}

fn transient(message: &str) -> ProviderError {
    ProviderError::Transient {
        message: message.into(),
        retry_after: None,
    }
}

/// Bans users that no longer belong to a live holder. A ban decided from
/// a row read a moment ago can land after another person's job adopted the
/// user; checking the link after the ban and re-queueing its new holder
/// closes that race (see the re-read after `link` above).
async fn ban_all<'a>(
    db: &PgPool,
    provider: &dyn AuthProvider,
    users: impl Iterator<Item = &'a AuthUser>,
) -> Result<(), ProvisionError> {
    let ban = UserUpdate {
        profile: None,
        banned: Some(true),
    };
    for u in users.filter(|u| !u.banned) {
        provider.update_user(u.id, &ban).await?;
        let mut tx = db.begin().await?;
        let adopters: Vec<String> = sqlx::query_scalar!(
            r#"select r.email as "email!" from roster r
               where r.auth_user_id = $1 and r.status = 'active' and r.email is not null
                 and r.id = (select h.id from roster h
                             where h.email = r.email and h.status <> 'deleted'
                             order by h.profile_at desc, h.profile_event_id desc limit 1)"#,
            u.id
        )
        .fetch_all(&mut *tx)
        .await?;
        if !adopters.is_empty() {
            let adopters: Vec<&str> = adopters.iter().map(String::as_str).collect();
            jobs::enqueue(&mut tx, &adopters).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// The holder's auth user: the one linked to the row (it follows the
/// record through email changes), else the provider's user with the email
/// (adopted), else a new one. Returns whether it was created now.
///
/// A new person costs one provider call: the create is tried first, and
/// `email_exists` is what sends us looking for the user to adopt.
async fn find_or_create(
    db: &PgPool,
    provider: &dyn AuthProvider,
    person: &Person,
    desired: &Profile,
) -> Result<(AuthUser, bool), ProvisionError> {
    if let Some(id) = person.holder.as_ref().and_then(|h| h.auth_user_id) {
        if let Some(user) = provider.get_user(id).await? {
            return Ok((user, false));
        }
        // Deleted at the provider behind our back: find or make another.
    }
    let mut id = deterministic_id(&person.email);
    // Another person's job can move a user off this email between our
    // create and our lookup; a few rounds settle that without a backoff.
    for _ in 0..3 {
        match provider.create_user(id, desired).await {
            Ok(user) => return Ok((user, true)),
            // Someone has the email: a user from before rosterd, the
            // person's old account, or our own create whose answer was
            // lost. Adopt it; never make a second one.
            Err(ProviderError::EmailExists) => {
                let Some(user) = provider.find_by_email(&desired.email).await? else {
                    continue;
                };
                if !in_transit(db, &user, &desired.email).await? {
                    return Ok((user, false));
                }
                // Another record's account, moving with it: free the email
                // and make this person their own.
                park(db, provider, &user).await?;
            }
            // The deterministic id belongs to a user whose person changed
            // email; this person gets a random id instead.
            Err(ProviderError::IdExists) if id == deterministic_id(&person.email) => {
                id = Uuid::new_v4();
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(transient("the email kept changing hands; will retry").into())
}
