//! The inbound events: recorded once each, deduplicated, replayed.

use crate::event::{EventId, ParsedBody, UserEvent};
use crate::state::{EventOutcome, Source};
use serde_json::{json, Value};
use sqlx::PgConnection;

/// The batch form of [`insert_event`], each with its outcome.
pub(crate) async fn insert_events(
    conn: &mut PgConnection,
    events: &[(&ParsedBody, EventOutcome)],
    source: Source,
) -> Result<(), sqlx::Error> {
    let rows: Vec<Value> = events
        .iter()
        .map(|(b, outcome)| {
            json!({
                "event_id": b.event.key.event_id.as_str(),
                "event_type": b.event.event_type.as_str(),
                "occurred_at": b.event.key.at,
                "user_id": b.event.user_id.as_str(),
                "payload": b.payload,
                "payload_hash": format!("\\x{}", hex::encode(b.payload_hash)),
                "source": source,
                "outcome": outcome,
            })
        })
        .collect();
    sqlx::query!(
        r#"insert into inbound_events (event_id, event_type, occurred_at, user_id, payload,
                                       payload_hash, source, outcome, processed_at)
           select event_id, event_type, occurred_at, user_id, payload, payload_hash, source,
                  outcome, now()
           from jsonb_populate_recordset(null::inbound_events, $1)
           on conflict (event_id) do nothing"#,
        Value::Array(rows)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an event; `false` when its id is already stored (the caller
/// then compares hashes). Blocks behind a concurrent insert of the same id
/// until that transaction ends, which is what makes 20 simultaneous
/// deliveries apply once. With `failure`, the event is stored as `failed`
/// with that error (the database refused to apply it).
pub(crate) async fn insert_event(
    conn: &mut PgConnection,
    event: &UserEvent,
    payload: &serde_json::Value,
    payload_hash: &[u8],
    source: Source,
    failure: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let outcome = match failure {
        None => EventOutcome::Applied,
        Some(_) => EventOutcome::Failed,
    };
    let inserted = sqlx::query_scalar!(
        r#"insert into inbound_events (event_id, event_type, occurred_at, user_id, payload,
                                       payload_hash, source, outcome, error, processed_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
           on conflict (event_id) do nothing
           returning true as "inserted!""#,
        event.key.event_id.as_str(),
        event.event_type.as_str(),
        event.key.at,
        event.user_id.as_str(),
        payload,
        payload_hash,
        source.as_str(),
        outcome.as_str(),
        failure,
    )
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

/// What dedup needs to know about an event already stored.
pub(crate) struct StoredEvent {
    pub(crate) payload_hash: Vec<u8>,
    pub(crate) outcome: EventOutcome,
}

pub(crate) async fn stored_event(
    conn: &mut PgConnection,
    event_id: &EventId,
) -> Result<Option<StoredEvent>, sqlx::Error> {
    sqlx::query_as!(
        StoredEvent,
        r#"select payload_hash, outcome as "outcome: EventOutcome"
           from inbound_events where event_id = $1"#,
        event_id.as_str()
    )
    .fetch_optional(conn)
    .await
}

/// A stored event, locked so two replays of it run one after the other.
pub(crate) struct LockedEvent {
    pub(crate) event_type: String,
    pub(crate) user_id: String,
    pub(crate) payload: serde_json::Value,
}

pub(crate) async fn lock_event(
    conn: &mut PgConnection,
    event_id: &EventId,
) -> Result<Option<LockedEvent>, sqlx::Error> {
    sqlx::query_as!(
        LockedEvent,
        "select event_type, user_id, payload from inbound_events
         where event_id = $1 and pruned_at is null for update",
        event_id.as_str()
    )
    .fetch_optional(conn)
    .await
}

/// Whether a stored event's payload was dropped by `rosterd prune`.
pub(crate) async fn is_pruned(
    conn: &mut PgConnection,
    event_id: &EventId,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar!(
        r#"select pruned_at is not null as "pruned!" from inbound_events where event_id = $1"#,
        event_id.as_str()
    )
    .fetch_optional(conn)
    .await?
    .unwrap_or(false))
}

/// Writes a re-application's result onto the event and into its history.
pub(crate) async fn record_reapply(
    conn: &mut PgConnection,
    event_id: &EventId,
    outcome: EventOutcome,
    error: Option<&str>,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"with e as (
               update inbound_events
               set outcome = $2, error = $3, attempts = attempts + 1, processed_at = now()
               where event_id = $1
               returning event_id)
           insert into event_replays (event_id, actor, outcome, error)
           select event_id, $4, $2, $3 from e"#,
        event_id.as_str(),
        outcome.as_str(),
        error,
        actor
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn set_event_outcome(
    conn: &mut PgConnection,
    event_id: &EventId,
    outcome: EventOutcome,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update inbound_events set outcome = $2 where event_id = $1",
        event_id.as_str(),
        outcome.as_str()
    )
    .execute(conn)
    .await?;
    Ok(())
}
