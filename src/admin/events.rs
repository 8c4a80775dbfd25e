//! Stored events for operators: filters parsed once, cursor-paged lists,
//! one event with its replay history.

use super::page::{listing_limit, parse_digits, Page, BAD_CURSOR};
use super::AdminError;
use crate::event::{EventId, EventType, RecordId};
use crate::state::{EventOutcome, Source};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashMap;

/// Which stored events a list or bulk replay covers, as the caller wrote it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawFilter {
    pub(crate) status: Option<String>,
    pub(crate) event_type: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
}

/// A checked filter. `since`/`until` bound when rosterd received the event
/// (`since` inclusive, `until` exclusive); a `since` not before `until` is
/// an empty window, which matches nothing.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct EventFilter {
    pub(crate) status: Option<EventOutcome>,
    pub(crate) event_type: Option<EventType>,
    pub(crate) user_id: Option<RecordId>,
    pub(crate) source: Option<Source>,
    pub(crate) since: Option<DateTime<Utc>>,
    pub(crate) until: Option<DateTime<Utc>>,
}

pub(crate) fn parse_time(name: &str, raw: &str) -> Result<DateTime<Utc>, AdminError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            AdminError::BadInput(format!(
                "{name} must be an RFC 3339 timestamp such as 2026-11-22T10:00:00Z"
            ))
        })
}

impl EventFilter {
    pub(crate) fn parse(raw: &RawFilter) -> Result<Self, AdminError> {
        let bad = |m: String| AdminError::BadInput(m);
        let status = raw
            .status
            .as_deref()
            .map(|s| {
                s.parse::<EventOutcome>()
                    .map_err(|_| bad(format!("status must be one of {}", EventOutcome::NAMES)))
            })
            .transpose()?;
        let event_type = raw
            .event_type
            .as_deref()
            .map(|t| EventType::parse(t).map_err(|m| bad(format!("eventType {m}"))))
            .transpose()?;
        let user_id = raw
            .user_id
            .as_deref()
            .map(|u| RecordId::parse(u).map_err(|m| bad(format!("userId {m}"))))
            .transpose()?;
        let source = raw
            .source
            .as_deref()
            .map(|s| {
                s.parse::<Source>()
                    .map_err(|_| bad(format!("source must be one of {}", Source::NAMES)))
            })
            .transpose()?;
        let since = raw
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?;
        let until = raw
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?;
        Ok(Self {
            status,
            event_type,
            user_id,
            source,
            since,
            until,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The filter as the audit log records it.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "status": self.status,
            "eventType": self.event_type.map(|t| t.as_str()),
            "userId": self.user_id.as_ref().map(|u| u.as_str()),
            "source": self.source,
            "since": self.since,
            "until": self.until,
        })
    }

    fn binds(&self) -> (Option<&str>, Option<&str>, Option<&str>, Option<&str>) {
        (
            self.status.map(EventOutcome::as_str),
            self.event_type.map(|t| t.as_str()),
            self.user_id.as_ref().map(|u| u.as_str()),
            self.source.map(Source::as_str),
        )
    }
}

/// Rejects query parameters the call does not know, so a typo is an error
/// rather than a silently wider answer.
pub(crate) fn only_known(
    params: &HashMap<String, String>,
    known: &[&str],
) -> Result<(), AdminError> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(AdminError::BadInput(format!(
            "unknown parameter {k}; known: {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventSummary {
    pub(crate) event_id: String,
    pub(crate) event_type: String,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) user_id: String,
    pub(crate) source: Source,
    pub(crate) outcome: EventOutcome,
    pub(crate) error: Option<String>,
    pub(crate) attempts: i32,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) processed_at: Option<DateTime<Utc>>,
}

/// `GET /api/admin/events`: newest received first.
pub(crate) async fn list(
    db: &PgPool,
    params: &HashMap<String, String>,
) -> Result<Page<EventSummary>, AdminError> {
    only_known(
        params,
        &[
            "status",
            "eventType",
            "userId",
            "source",
            "since",
            "until",
            "limit",
            "cursor",
        ],
    )?;
    let get = |k: &str| params.get(k).cloned();
    let filter = EventFilter::parse(&RawFilter {
        status: get("status"),
        event_type: get("eventType"),
        user_id: get("userId"),
        source: get("source"),
        since: get("since"),
        until: get("until"),
    })?;
    let limit = listing_limit(params.get("limit").map(String::as_str))?;
    let after = params
        .get("cursor")
        .map(|c| parse_event_cursor(c))
        .transpose()?;
    let (status, event_type, user_id, source) = filter.binds();
    let mut tx = crate::db::planned_per_call(db).await?;
    let rows = sqlx::query_as!(
        EventSummary,
        r#"select event_id, event_type, occurred_at, user_id, source as "source: Source",
                  outcome as "outcome: EventOutcome", error, attempts, received_at, processed_at
           from inbound_events
           where ($1::text is null or outcome = $1)
             and ($2::text is null or event_type = $2)
             and ($3::text is null or user_id = $3)
             and ($4::timestamptz is null or received_at >= $4)
             and ($5::timestamptz is null or received_at < $5)
             and ($6::timestamptz is null or (received_at, event_id) < ($6, $7::text))
             and ($9::text is null or source = $9)
           order by received_at desc, event_id desc
           limit $8"#,
        status,
        event_type,
        user_id,
        filter.since,
        filter.until,
        after.as_ref().map(|(at, _)| *at),
        after.as_ref().map(|(_, id)| id.as_str()),
        limit + 1,
        source
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, limit, |e| {
        format!("{}.{}", e.received_at.timestamp_micros(), e.event_id)
    }))
}

/// `EventCursor`: `<received_at, µs since 1970, 1–16 digits>.<eventId>`,
/// the last event of the previous page.
fn parse_event_cursor(raw: &str) -> Result<(DateTime<Utc>, String), AdminError> {
    let bad = || AdminError::BadInput(BAD_CURSOR.into());
    let (micros, id) = raw.split_once('.').ok_or_else(bad)?;
    let at = parse_digits(micros, 16)
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    EventId::parse(id).map_err(|_| bad())?;
    Ok((at, id.to_owned()))
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReplayEntry {
    pub(crate) at: DateTime<Utc>,
    pub(crate) actor: String,
    pub(crate) outcome: EventOutcome,
    pub(crate) error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventDetail {
    #[serde(flatten)]
    pub(crate) summary: EventSummary,
    /// JSON null once pruned.
    pub(crate) payload: Value,
    /// When `rosterd prune` dropped the payload.
    pub(crate) pruned_at: Option<DateTime<Utc>>,
    pub(crate) replays: Vec<ReplayEntry>,
}

/// `GET /api/admin/events/{eventId}`.
pub(crate) async fn detail(db: &PgPool, event_id: &str) -> Result<EventDetail, AdminError> {
    let id = EventId::parse(event_id).map_err(|m| AdminError::BadInput(format!("eventId {m}")))?;
    let row = sqlx::query!(
        r#"select event_id, event_type, occurred_at, user_id, source as "source: Source",
                  outcome as "outcome: EventOutcome", error, attempts, received_at, processed_at,
                  payload, pruned_at
           from inbound_events where event_id = $1"#,
        id.as_str()
    )
    .fetch_optional(db)
    .await?
    .ok_or(AdminError::NotFound)?;
    let replays = sqlx::query_as!(
        ReplayEntry,
        r#"select at, actor, outcome as "outcome: EventOutcome", error
           from event_replays where event_id = $1 order by id"#,
        id.as_str()
    )
    .fetch_all(db)
    .await?;
    Ok(EventDetail {
        summary: EventSummary {
            event_id: row.event_id,
            event_type: row.event_type,
            occurred_at: row.occurred_at,
            user_id: row.user_id,
            source: row.source,
            outcome: row.outcome,
            error: row.error,
            attempts: row.attempts,
            received_at: row.received_at,
            processed_at: row.processed_at,
        },
        payload: row.payload,
        pruned_at: row.pruned_at,
        replays,
    })
}

/// A record's newest events, for the user view.
pub(crate) async fn recent_for_user(
    db: &PgPool,
    user_id: &RecordId,
) -> Result<Vec<EventSummary>, sqlx::Error> {
    sqlx::query_as!(
        EventSummary,
        r#"select event_id, event_type, occurred_at, user_id, source as "source: Source",
                  outcome as "outcome: EventOutcome", error, attempts, received_at, processed_at
           from inbound_events where user_id = $1
           order by occurred_at desc, event_id desc limit 20"#,
        user_id.as_str()
    )
    .fetch_all(db)
    .await
}

/// The events a bulk replay covers, oldest occurrence first, at most
/// `limit` of them, and how many match in all.
pub(crate) async fn matching(
    db: &PgPool,
    filter: &EventFilter,
    limit: i64,
) -> Result<(Vec<EventId>, i64), sqlx::Error> {
    let (status, event_type, user_id, source) = filter.binds();
    // The window count is taken before the limit applies.
    let mut tx = crate::db::planned_per_call(db).await?;
    let rows = sqlx::query!(
        r#"select event_id, count(*) over () as "matched!"
           from inbound_events
           where ($1::text is null or outcome = $1)
             and ($2::text is null or event_type = $2)
             and ($3::text is null or user_id = $3)
             and ($4::timestamptz is null or received_at >= $4)
             and ($5::timestamptz is null or received_at < $5)
             and pruned_at is null
             and ($7::text is null or source = $7)
           order by occurred_at, event_id
           limit $6"#,
        status,
        event_type,
        user_id,
        filter.since,
        filter.until,
        limit,
        source
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let matched = rows.first().map_or(0, |r| r.matched);
    let ids = rows
        .into_iter()
        .map(|r| EventId::parse(&r.event_id).map_err(|e| sqlx::Error::Decode(e.into())))
        .collect::<Result<_, _>>()?;
    Ok((ids, matched))
}
