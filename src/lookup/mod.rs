//! The login read-through (docs/contract.md §6): answer from the roster, provision
//! an active person whose auth user is missing or stale on the spot.

use crate::db::RunPool;
use crate::directory::DirectoryError;
use crate::event::{Email, EventRules};
use crate::outbox::Wakeup;
use crate::provision::provider::AuthProvider;
use crate::roles::RoleMap;
use crate::roster::store::{self, LoginRow};
use crate::state::RowStatus;
use readthrough::{ReadThrough, ReadThroughError};
use serde::Serialize;
use sqlx::PgPool;

mod first_logins;
mod key;
pub mod readthrough;
pub use first_logins::{FirstLogins, Refused};
pub(crate) use key::Key;

/// What a lookup works with; the HTTP handler lends it from the app's state.
pub(crate) struct Deps<'a> {
    pub(crate) db: &'a PgPool,
    pub(crate) runs: &'a RunPool,
    pub(crate) provider: &'a dyn AuthProvider,
    /// Admits inline provisioning runs, one per person at a time.
    pub(crate) first_logins: &'a FirstLogins,
    /// `None` when read-through is off or no directory is configured.
    pub(crate) readthrough: Option<&'a ReadThrough>,
    pub(crate) roles: &'a RoleMap,
    pub(crate) rules: &'a EventRules,
    /// Wakes the workers after a read-through queued a job.
    pub(crate) wakeup: &'a Wakeup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    Roster,
    Directory,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) name: Option<String>,
    pub(crate) status: String,
    pub(crate) roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Auth {
    pub(crate) user_id: uuid::Uuid,
    pub(crate) state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Active {
        user: User,
        auth: Auth,
        source: Source,
    },
    Inactive {
        status: String,
    },
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LookupError {
    #[error("directory unavailable: {0}")]
    DirectoryUnavailable(String),
    #[error("provisioning is pending: {0}")]
    ProvisioningPending(String),
    /// More first logins (or directory calls) than this process takes at
    /// once; nothing was done.
    #[error("overloaded; retry in {0:?}")]
    Overloaded(std::time::Duration),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

async fn fetch(state: &Deps<'_>, key: &Key) -> Result<Option<LoginRow>, sqlx::Error> {
    let mut conn = state.db.acquire().await?;
    match key {
        Key::Email(e) => store::login_row_by_email(&mut conn, e).await,
        Key::Id(id) => store::login_row_by_id(&mut conn, id).await,
    }
}

/// A roster hit never waits on the directory; a miss asks it (unless
/// read-through is off) and applies what it knows through the apply path.
pub(crate) async fn lookup(state: &Deps<'_>, key: &Key) -> Result<Answer, LookupError> {
    if let Some(row) = fetch(state, key).await? {
        return answer(state, key, row, Source::Roster).await;
    }
    let Some(readthrough) = state.readthrough else {
        return Ok(Answer::NotFound);
    };
    let found = readthrough
        .load(state.db, state.roles, state.rules, key)
        .await
        .map_err(|e| match e {
            ReadThroughError::Apply(e) => LookupError::Db(e),
            ReadThroughError::Directory(DirectoryError::Busy { retry_after }) => {
                LookupError::Overloaded(retry_after)
            }
            other => LookupError::DirectoryUnavailable(other.to_string()),
        })?;
    if !found {
        return Ok(Answer::NotFound);
    }
    state.wakeup.poke();
    match fetch(state, key).await? {
        Some(row) => answer(state, key, row, Source::Directory).await,
        None => Ok(Answer::NotFound),
    }
}

async fn answer(
    state: &Deps<'_>,
    key: &Key,
    row: LoginRow,
    source: Source,
) -> Result<Answer, LookupError> {
    if row.status != RowStatus::Active {
        return Ok(Answer::Inactive {
            status: row.status.as_str().into(),
        });
    }
    let Some(email) = row.email.clone() else {
        return Ok(Answer::Inactive {
            status: RowStatus::Deleted.as_str().into(),
        });
    };
    let row = if row.auth_user_id.is_none() || row.pending {
        // Missing or possibly stale: the one provisioning path, inline.
        let email = Email::from_trusted(email);
        state
            .first_logins
            .provision(state.runs, state.provider, &email)
            .await
            .map_err(|refused| match refused {
                Refused::Busy(busy) => LookupError::Overloaded(busy.retry_after),
                Refused::Failed(e) => LookupError::ProvisioningPending(e),
            })?;
        fetch(state, key).await?.unwrap_or(row)
    } else {
        row
    };
    let Some(user_id) = row.auth_user_id else {
        // Not this row's to hold (another live row holds the email).
        return Err(LookupError::ProvisioningPending(
            "the record does not hold its email's auth user".into(),
        ));
    };
    // Until they accept, an invited person's account is not theirs yet.
    let invited = state.runs.invitations().is_some()
        && crate::invite::store::is_invited(&mut *state.db.acquire().await?, user_id).await?;
    Ok(Answer::Active {
        user: User {
            id: row.id,
            email: row.email.unwrap_or_default(),
            name: row.name,
            status: row.status.as_str().into(),
            roles: row.roles,
        },
        auth: Auth {
            user_id,
            state: if invited { "invited" } else { "active" },
        },
        source,
    })
}
