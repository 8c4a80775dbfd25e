//! The one apply path: webhook, replay, read-through and import all come
//! through here, so newest-wins and the outbox hold for every source.

use super::merge::merge;
use super::store;
use crate::event::{ParsedBody, UserEvent};
use crate::provision::roles::RoleMap;
use sqlx::{PgConnection, PgPool};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Webhook,
    Replay,
    Readthrough,
    Import,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Replay => "replay",
            Self::Readthrough => "readthrough",
            Self::Import => "import",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Stale,
    Duplicate,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Stale => "stale",
            Self::Duplicate => "duplicate",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("event id already stored with a different body")]
    Conflict,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Postgres asks us to retry these; they carry no information about the event.
fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001" | "40P01")))
}

/// Records and applies one event in a single transaction: the event row,
/// the roster row and the provisioning jobs commit together or not at all.
pub async fn ingest(
    pool: &PgPool,
    body: &ParsedBody,
    source: Source,
    roles: &RoleMap,
) -> Result<Outcome, ApplyError> {
    let result = ingest_retrying(pool, body, source, roles).await;
    let outcome = match &result {
        Ok(outcome) => outcome.as_str(),
        Err(ApplyError::Conflict) => "conflict",
        Err(ApplyError::Db(_)) => "error",
    };
    crate::metrics::event(source.as_str(), body.event.event_type.as_str(), outcome);
    result
}

async fn ingest_retrying(
    pool: &PgPool,
    body: &ParsedBody,
    source: Source,
    roles: &RoleMap,
) -> Result<Outcome, ApplyError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_ingest(pool, body, source, roles).await {
            Err(ApplyError::Db(e)) if attempt < 3 && is_retryable(&e) => continue,
            other => return other,
        }
    }
}

async fn try_ingest(
    pool: &PgPool,
    body: &ParsedBody,
    source: Source,
    roles: &RoleMap,
) -> Result<Outcome, ApplyError> {
    let event = &body.event;
    let mut tx = pool.begin().await?;
    let fresh = store::insert_event(
        &mut tx,
        event,
        &body.payload,
        &body.payload_hash,
        source.as_str(),
    )
    .await?;
    if !fresh {
        let stored = store::event_hash(&mut tx, &event.key.event_id).await?;
        tx.rollback().await?;
        return match stored {
            Some(h) if h.as_slice() == body.payload_hash.as_slice() => Ok(Outcome::Duplicate),
            _ => Err(ApplyError::Conflict),
        };
    }
    let outcome = apply_to_roster(&mut tx, event, roles).await?;
    if outcome == Outcome::Stale {
        store::set_event_outcome(&mut tx, &event.key.event_id, outcome.as_str()).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Folds an event into its roster row and queues provisioning for every
/// person the change touches (both emails when an email moves).
pub async fn apply_to_roster(
    conn: &mut PgConnection,
    event: &UserEvent,
    roles: &RoleMap,
) -> Result<Outcome, sqlx::Error> {
    loop {
        let current = store::lock_row(conn, &event.user_id).await?;
        let merged = merge(current.as_ref(), event, roles);
        let saved = match &current {
            None => store::insert_row(conn, &event.user_id, &merged.row).await?,
            Some(_) if merged.changed => {
                store::update_row(conn, &event.user_id, &merged.row).await?;
                true
            }
            Some(_) => true,
        };
        if !saved {
            // A concurrent transaction created the row first; its insert has
            // committed by now, so the next lock sees it.
            continue;
        }
        if merged.changed {
            let mut emails: Vec<&str> = current
                .as_ref()
                .and_then(|c| c.email())
                .into_iter()
                .chain(merged.row.email())
                .map(|e| e.as_str())
                .collect();
            emails.sort_unstable();
            emails.dedup();
            if !emails.is_empty() {
                crate::provision::jobs::enqueue(conn, &emails).await?;
            }
        }
        return Ok(if merged.stale {
            Outcome::Stale
        } else {
            Outcome::Applied
        });
    }
}
