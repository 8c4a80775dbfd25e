//! The invitation job: makes the link for the round not yet sent and mails
//! it. Nothing here holds a database connection while the SMTP server is
//! talked to.

use super::mail::{MailError, Mailer};
use super::store;
use crate::state::Action;
use reqwest::Url;
use sqlx::PgPool;

/// What sending needs: the mailer and the public URL links point to.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub mailer: Mailer,
    /// `INVITE_BASE_URL`.
    pub base: Url,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliverError {
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("no SMTP_URL is configured, so invitations cannot be mailed")]
    NoMailer,
}

impl DeliverError {
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Mail(e) => e.is_transient(),
            Self::Db(_) => true,
            Self::NoMailer => false,
        }
    }
}

/// Sends the invitation's current round, once the server takes it;
/// `Unchanged` when there is nothing to send (already sent, accepted,
/// revoked, lapsed, or the person left).
pub(crate) async fn deliver(
    db: &PgPool,
    delivery: Option<&Delivery>,
    invitation: i64,
) -> Result<Action, DeliverError> {
    let delivery = delivery.ok_or(DeliverError::NoMailer)?;
    let Some(m) = store::mint(&mut *db.acquire().await?, invitation).await? else {
        return Ok(Action::Unchanged);
    };
    let link = super::link(&delivery.base, &m.token);
    let sent = delivery
        .mailer
        .send(&m.email, m.name.as_deref(), &link, m.expires_at)
        .await;
    crate::metrics::invitation(match &sent {
        Ok(()) => "sent",
        Err(e) if e.is_transient() => "send_retry",
        Err(_) => "send_refused",
    });
    sent?;
    store::sent(&mut *db.acquire().await?, invitation, m.round, &m.email).await?;
    tracing::info!(invitation, "invitation mailed");
    Ok(Action::Sent)
}
