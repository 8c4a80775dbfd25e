//! The user event of docs/contract.md §2, parsed once into domain types.
//!
//! Everything downstream takes these types, so nothing after this module
//! re-checks lengths, character sets or email syntax. A webhook's body is
//! parsed ([`ParsedBody::from_slice`]); a source without one (import,
//! read-through) mints its events with the same checks (`minted.rs`).
//! `ids.rs` holds the checked values, `parse.rs` the rules field by field,
//! `nul.rs` the one rule that covers every string.

mod details;
mod ids;
mod minted;
mod nul;
mod parse;
#[cfg(test)]
mod tests;

pub use details::{Details, EmailEntry, NameParts};
pub use ids::{Email, EventId, EventType, ProfileStatus, RecordId};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `MAX_EVENT_FUTURE_SECS`'s default.
pub(crate) const DEFAULT_MAX_FUTURE_SECS: u64 = 300;

/// Rules of an event that depend on configuration and on this server's
/// clock rather than on the event alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRules {
    /// How far past this server's clock `occurredAt` may be. Newest wins
    /// per record, so an event dated in the far future would win forever:
    /// every real event after it would be `stale`.
    pub(crate) max_future: TimeDelta,
}

impl Default for EventRules {
    fn default() -> Self {
        Self::with_max_future_secs(DEFAULT_MAX_FUTURE_SECS).expect("the default is in range")
    }
}

impl EventRules {
    /// `None` when `secs` is too large for a timestamp offset.
    pub fn with_max_future_secs(secs: u64) -> Option<Self> {
        let max_future = i64::try_from(secs).ok().and_then(TimeDelta::try_seconds)?;
        Some(Self { max_future })
    }

    fn check_occurred_at(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
        match now.checked_add_signed(self.max_future) {
            Some(latest) if at > latest => Err(format!(
                "must not be more than {} s after this server's clock (MAX_EVENT_FUTURE_SECS); it is {}",
                self.max_future.num_seconds(),
                at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )),
            _ => Ok(()),
        }
    }
}

/// One rule of §2 that the input broke, reported as `{field, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub(crate) field: String,
    pub(crate) message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// (`occurredAt`, `eventId`), compared as a pair: the only notion of "newer".
///
/// The timestamp is truncated to microseconds at parse time because that is
/// what Postgres stores; comparing anything finer here would disagree with
/// the database.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct OrderKey {
    pub(crate) at: DateTime<Utc>,
    pub(crate) event_id: EventId,
}

/// What a created/updated event says the person looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Profile {
    pub email: Email,
    pub name: Option<String>,
    pub(crate) status: ProfileStatus,
    pub(crate) groups: Vec<String>,
    /// Everything else the source said about the person (`user.details`).
    pub(crate) details: Option<Box<Details>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// `user.created` / `user.updated`: writes the profile register.
    Upsert(Profile),
    /// `user.deleted`: writes the deletion register. The email, when sent,
    /// is kept in the stored payload only; the row's profile says who it was.
    Delete,
}

/// A fully parsed and validated user event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEvent {
    pub(crate) event_type: EventType,
    pub(crate) key: OrderKey,
    pub user_id: RecordId,
    pub(crate) change: Change,
}

/// The parsed event together with what dedup needs from its body.
#[derive(Debug, Clone)]
pub struct ParsedBody {
    pub event: UserEvent,
    pub(crate) payload: Value,
    /// SHA-256 of the canonical JSON (keys sorted, no whitespace), so two
    /// deliveries that differ only in formatting are the same body.
    pub(crate) payload_hash: [u8; 32],
    /// The rules it was checked with (a redelivery of a failed event is
    /// applied again under them).
    pub(crate) rules: EventRules,
}

/// Why a body was refused: not JSON at all (400) or JSON that breaks §2 (422).
#[derive(Debug)]
pub enum BodyError {
    Malformed(String),
    Invalid(Vec<FieldError>),
}

impl ParsedBody {
    /// A request body: JSON without duplicate keys ([`crate::json`]), then
    /// the event rules.
    pub(crate) fn from_slice(raw: &[u8], rules: &EventRules) -> Result<Self, BodyError> {
        let payload =
            crate::json::from_slice(raw).map_err(|e| BodyError::Malformed(e.to_string()))?;
        Self::parse(payload, rules)
    }

    pub(crate) fn parse(payload: Value, rules: &EventRules) -> Result<Self, BodyError> {
        let event = UserEvent::parse(&payload, rules).map_err(BodyError::Invalid)?;
        let payload_hash = hash_payload(&payload);
        Ok(Self {
            event,
            payload,
            payload_hash,
            rules: *rules,
        })
    }

    /// [`ParsedBody::parse`] under the default rules.
    pub fn from_value(payload: Value) -> Result<Self, BodyError> {
        Self::parse(payload, &EventRules::default())
    }
}

pub(crate) fn hash_payload(payload: &Value) -> [u8; 32] {
    // serde_json's Map is a BTreeMap (no `preserve_order`), so this
    // serialisation is canonical: sorted keys, no whitespace.
    let canonical = serde_json::to_vec(payload).expect("a Value always serialises");
    Sha256::digest(&canonical).into()
}
