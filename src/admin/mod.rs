//! What operators can see and do (docs/contract.md §8): stored events and their
//! replay, one person's whole state, the job queue, the audit log. The
//! HTTP routes (`http::admin`) and the CLI both call these.

pub(crate) mod audit;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod invitations;
pub mod jobs;
pub(crate) mod overrides;
pub(crate) mod page;
pub(crate) mod provision;
pub(crate) mod replay;
pub(crate) mod users;

/// Why an operator's call did nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// A filter, cursor, limit or body the caller must fix.
    #[error("{0}")]
    BadInput(String),
    #[error("not found")]
    NotFound,
    /// The request is fine but the state does not allow it.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Provider(#[from] crate::provision::provider::ProviderError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}
