//! The one apply path: webhook, replay, read-through and import all come
//! through here, so newest-wins and the outbox hold for every source.

use super::merge::merge;
use super::store;
use crate::event::{Change, Email, EventId, EventRules, EventType, ParsedBody, UserEvent};
use crate::outbox::{self, Job};
use crate::roles::RoleMap;
use crate::state::{EventOutcome, Source};
use sqlx::{PgConnection, PgPool};

/// The answer to one delivery: what its event came to, or that the event
/// was stored already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Stale,
    Duplicate,
    /// The database refused the change (a constraint, a trigger, a lock
    /// timeout): the event is stored with the error, for an operator to
    /// replay once the cause is fixed.
    Failed,
}

impl Outcome {
    /// What the event is stored with; `None` for a duplicate, which
    /// stores nothing.
    pub(crate) fn stored(self) -> Option<EventOutcome> {
        match self {
            Self::Applied => Some(EventOutcome::Applied),
            Self::Stale => Some(EventOutcome::Stale),
            Self::Failed => Some(EventOutcome::Failed),
            Self::Duplicate => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.stored().map_or("duplicate", EventOutcome::as_str)
    }
}

impl From<EventOutcome> for Outcome {
    fn from(o: EventOutcome) -> Self {
        match o {
            EventOutcome::Applied => Self::Applied,
            EventOutcome::Stale => Self::Stale,
            EventOutcome::Failed => Self::Failed,
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

/// Errors that say nothing about the event itself: retry the transaction,
/// or answer 503 with nothing written.
fn is_passing(e: &sqlx::Error) -> bool {
    is_retryable(e) || crate::db::is_unavailable(e)
}

/// What an operator needs to know about a refused change: Postgres's
/// message and SQLSTATE (our own database, never a secret).
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => match (d.code(), d.constraint()) {
            (Some(code), Some(c)) => format!("{} (SQLSTATE {code}, constraint {c})", d.message()),
            (Some(code), None) => format!("{} (SQLSTATE {code})", d.message()),
            _ => d.message().to_owned(),
        },
        other => other.to_string(),
    }
}

/// Records and applies one event in a single transaction: the event row,
/// the roster row and the provisioning jobs commit together or not at all.
/// When the database refuses the change itself, the event is stored as
/// `failed` instead; a redelivery of a failed event tries it again.
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
    crate::metrics::event(source, body.event.event_type.as_str(), outcome);
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
            // Raced with a delivery of the same event: look again.
            Ok(None) if attempt < 3 => continue,
            Ok(None) => return Ok(Outcome::Duplicate),
            Ok(Some(outcome)) => return Ok(outcome),
            Err(e) => return Err(e),
        }
    }
}

async fn try_ingest(
    pool: &PgPool,
    body: &ParsedBody,
    source: Source,
    roles: &RoleMap,
) -> Result<Option<Outcome>, ApplyError> {
    let event = &body.event;
    let mut tx = pool.begin().await?;
    let fresh = store::insert_event(
        &mut tx,
        event,
        &body.payload,
        &body.payload_hash,
        source,
        None,
    )
    .await?;
    if !fresh {
        let stored = store::stored_event(&mut tx, &event.key.event_id).await?;
        tx.rollback().await?;
        return match stored {
            Some(s) if s.payload_hash.as_slice() != body.payload_hash.as_slice() => {
                Err(ApplyError::Conflict)
            }
            Some(s) if s.outcome == EventOutcome::Failed => {
                let mut tx = pool.begin().await?;
                let again = reapply(
                    &mut tx,
                    &event.key.event_id,
                    source.as_str(),
                    roles,
                    &body.rules,
                )
                .await?;
                tx.commit().await?;
                Ok(again.map(|r| r.outcome.into()))
            }
            Some(_) => Ok(Some(Outcome::Duplicate)),
            None => Ok(None),
        };
    }
    match apply_recorded(&mut tx, event, roles).await {
        Ok(outcome) => {
            tx.commit().await?;
            Ok(Some(outcome.into()))
        }
        Err(e) if is_passing(&e) => Err(e.into()),
        Err(e) => {
            tx.rollback().await?;
            let error = describe(&e);
            tracing::error!(event_id = %event.key.event_id, %error, "event could not be applied; stored as failed");
            // The apply transaction is gone: the failure is stored on its own.
            let stored = store::insert_event(
                &mut *pool.acquire().await?,
                event,
                &body.payload,
                &body.payload_hash,
                source,
                Some(&error),
            )
            .await?;
            Ok(stored.then_some(Outcome::Failed))
        }
    }
}

/// The batch form of [`ingest`], for imports: events for distinct records,
/// folded in by the same [`merge`] rule, with one statement per kind of
/// write for the whole batch and one commit. A record another transaction
/// created meanwhile goes through [`apply_to_roster`] instead; a batch the
/// database refuses is applied again event by event through [`ingest`],
/// which stores the refused one as failed, as a single delivery would, and
/// stops there (the outcomes then end with it).
pub async fn ingest_batch(
    pool: &PgPool,
    bodies: &[ParsedBody],
    source: Source,
    roles: &RoleMap,
) -> Result<Vec<Outcome>, ApplyError> {
    match try_batch(pool, bodies, source, roles).await {
        Ok(outcomes) => {
            for (b, o) in bodies.iter().zip(&outcomes) {
                crate::metrics::event(source, b.event.event_type.as_str(), o.as_str());
            }
            Ok(outcomes)
        }
        Err(e) if crate::db::is_unavailable(&e) => Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %describe(&e), "batch refused; applying its events one by one");
            // In file order, up to the first refused one, as unbatched.
            let mut outcomes = Vec::with_capacity(bodies.len());
            for b in bodies {
                let outcome = ingest(pool, b, source, roles).await?;
                outcomes.push(outcome);
                if outcome == Outcome::Failed {
                    break;
                }
            }
            Ok(outcomes)
        }
    }
}

async fn try_batch(
    pool: &PgPool,
    bodies: &[ParsedBody],
    source: Source,
    roles: &RoleMap,
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut ids: Vec<String> = bodies.iter().map(|b| b.event.user_id.to_string()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        bodies.len(),
        "a batch holds one event per record"
    );
    let mut tx = pool.begin().await?;
    let current = store::lock_rows(&mut tx, &ids).await?;
    let merged: Vec<_> = bodies
        .iter()
        .map(|b| {
            let cur = current.get(b.event.user_id.as_str());
            (b, cur, merge(cur, &b.event, roles))
        })
        .collect();
    let new: Vec<_> = merged
        .iter()
        .filter(|(_, cur, m)| cur.is_none() && m.changed)
        .map(|(b, _, m)| (&b.event.user_id, &m.row))
        .collect();
    let inserted = store::insert_rows(&mut tx, &new).await?;
    let changed: Vec<_> = merged
        .iter()
        .filter(|(_, cur, m)| cur.is_some() && m.changed)
        .map(|(b, _, m)| (&b.event.user_id, &m.row))
        .collect();
    store::update_rows(&mut tx, &changed).await?;
    let mut emails: Vec<&Email> = Vec::new();
    let mut outcomes = Vec::with_capacity(bodies.len());
    for (b, cur, m) in &merged {
        let raced = cur.is_none() && !inserted.contains(b.event.user_id.as_str());
        let outcome = if raced {
            // Created by another transaction since we looked: the one
            // event path, which waits for and merges with that row.
            apply_to_roster(&mut tx, &b.event, roles).await?
        } else {
            if m.changed {
                emails.extend(cur.and_then(|c| c.email()));
                emails.extend(m.row.email());
            }
            if m.stale {
                EventOutcome::Stale
            } else {
                EventOutcome::Applied
            }
        };
        outcomes.push(outcome);
    }
    outbox::enqueue(&mut tx, provision_each(emails)).await?;
    let events: Vec<_> = bodies.iter().zip(outcomes.iter().copied()).collect();
    store::insert_events(&mut tx, &events, source).await?;
    tx.commit().await?;
    Ok(outcomes.into_iter().map(Outcome::from).collect())
}

/// Records and applies an event rosterd minted for `source` (SCIM) inside
/// the caller's transaction, which holds the row's lock and decided the
/// change from what it read: read, decide and write commit as one, and a
/// refused change rolls back with the request. The id is fresh, so there
/// is no duplicate to look for.
pub(crate) async fn apply_minted(
    conn: &mut PgConnection,
    body: &ParsedBody,
    source: Source,
    roles: &RoleMap,
) -> Result<EventOutcome, sqlx::Error> {
    let event = &body.event;
    let fresh =
        store::insert_event(conn, event, &body.payload, &body.payload_hash, source, None).await?;
    if !fresh {
        return Err(sqlx::Error::Protocol(format!(
            "minted event id {} is already stored",
            event.key.event_id
        )));
    }
    let outcome = apply_recorded(conn, event, roles).await?;
    crate::metrics::event(source, event.event_type.as_str(), outcome.as_str());
    Ok(outcome)
}

/// Applies an event just recorded (as `applied`) and corrects its stored
/// outcome when it turns out stale: the step after recording, for a
/// delivery and a minted event alike.
async fn apply_recorded(
    conn: &mut PgConnection,
    event: &UserEvent,
    roles: &RoleMap,
) -> Result<EventOutcome, sqlx::Error> {
    let outcome = apply_to_roster(conn, event, roles).await?;
    if outcome == EventOutcome::Stale {
        store::set_event_outcome(conn, &event.key.event_id, outcome).await?;
    }
    Ok(outcome)
}

/// The result of applying a stored event again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reapplied {
    pub(crate) event_type: EventType,
    pub(crate) user_id: String,
    pub(crate) outcome: EventOutcome,
    pub(crate) error: Option<String>,
}

/// Applies a stored event again through the apply path, with no signature
/// or dedup check (newest-wins still holds), queues provisioning for the
/// people it touches, and records the attempt under `actor`. Runs inside
/// the caller's transaction; `None` when no such event is stored.
///
/// The stored payload is parsed again under today's `rules`: an event
/// stored while it was dated too far in the future (before that rule, or
/// under a larger `MAX_EVENT_FUTURE_SECS`) is `failed` with the reason,
/// and changes nothing, until its time has come.
pub(crate) async fn reapply(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    event_id: &EventId,
    actor: &str,
    roles: &RoleMap,
    rules: &EventRules,
) -> Result<Option<Reapplied>, sqlx::Error> {
    let Some(stored) = store::lock_event(tx, event_id).await? else {
        return Ok(None);
    };
    let event_type =
        EventType::parse(&stored.event_type).map_err(|e| sqlx::Error::Decode(e.into()))?;
    let (outcome, error) = match UserEvent::parse(&stored.payload, rules) {
        Err(fields) => {
            let why: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect();
            let why = format!(
                "the stored payload no longer passes the event rules ({})",
                why.join("; ")
            );
            (EventOutcome::Failed, Some(why))
        }
        Ok(event) => {
            // A savepoint, so a refused change leaves the transaction usable
            // for recording the failure.
            let mut sp = sqlx::Acquire::begin(&mut **tx).await?;
            match apply_to_roster(&mut sp, &event, roles).await {
                Ok(outcome) => {
                    sp.commit().await?;
                    let stored = store::email_of(tx, &event.user_id)
                        .await?
                        .map(Email::from_trusted);
                    let emails = stored.iter().chain(match &event.change {
                        Change::Upsert(p) => Some(&p.email),
                        Change::Delete => None,
                    });
                    outbox::enqueue(tx, provision_each(emails)).await?;
                    (outcome, None)
                }
                Err(e) if is_passing(&e) => return Err(e),
                Err(e) => {
                    sp.rollback().await?;
                    (EventOutcome::Failed, Some(describe(&e)))
                }
            }
        }
    };
    store::record_reapply(tx, event_id, outcome, error.as_deref(), actor).await?;
    Ok(Some(Reapplied {
        event_type,
        user_id: stored.user_id,
        outcome,
        error,
    }))
}

/// Folds an event into its roster row and queues provisioning for every
/// person the change touches (both emails when an email moves).
pub(crate) async fn apply_to_roster(
    conn: &mut PgConnection,
    event: &UserEvent,
    roles: &RoleMap,
) -> Result<EventOutcome, sqlx::Error> {
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
            let emails = current
                .as_ref()
                .and_then(|c| c.email())
                .into_iter()
                .chain(merged.row.email());
            outbox::enqueue(conn, provision_each(emails)).await?;
        }
        return Ok(if merged.stale {
            EventOutcome::Stale
        } else {
            EventOutcome::Applied
        });
    }
}

/// A provisioning job for each person an event touched.
fn provision_each<'a>(emails: impl IntoIterator<Item = &'a Email>) -> Vec<Job> {
    emails
        .into_iter()
        .map(|email| Job::Provision {
            email: email.clone(),
        })
        .collect()
}
