//! Events that rosterd mints itself for a source that sends no webhook
//! (a roster import, a directory read-through, next SCIM): the same checks
//! and the same stored payload as a webhook carrying those values, without
//! writing an envelope out and parsing it back.

use super::nul::find_nul;
use super::parse::{to_micros, Fields};
use super::{hash_payload, EventId, EventRules, EventType, FieldError, ParsedBody};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

impl ParsedBody {
    /// The event `event_id` (an id the source minted) of `event_type` at
    /// `at`, about the record whose fields are `user` (unchecked: a row of
    /// a file, a directory record), checked against §2 and `rules` field by
    /// field with the errors a webhook would get. The stored payload is
    /// the one such a webhook would carry: `eventId`, `eventType`,
    /// `occurredAt` (RFC 3339, microseconds, `Z`) and `user`.
    pub(crate) fn minted(
        event_id: &str,
        event_type: EventType,
        at: DateTime<Utc>,
        user: Map<String, Value>,
        rules: &EventRules,
    ) -> Result<Self, Vec<FieldError>> {
        Self::minted_at(event_id, event_type, at, user, rules, Utc::now())
    }

    pub(super) fn minted_at(
        event_id: &str,
        event_type: EventType,
        at: DateTime<Utc>,
        user: Map<String, Value>,
        rules: &EventRules,
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::default();
        let id = f.checked("eventId", EventId::parse(event_id));
        let kept_at = f.checked(
            "occurredAt",
            to_micros(at).and_then(|at| rules.check_occurred_at(at, now).map(|()| at)),
        );
        let (user_id, profile) = f.user(&user, Some(event_type));
        let user = Value::Object(user);
        find_nul(&user, &mut "user".to_owned(), &mut f.errors);
        let event = f.finish(id, Some(event_type), kept_at, user_id, profile)?;

        let mut payload = Map::new();
        payload.insert("eventId".into(), event_id.into());
        payload.insert("eventType".into(), event_type.as_str().into());
        payload.insert(
            "occurredAt".into(),
            at.to_rfc3339_opts(SecondsFormat::Micros, true).into(),
        );
        payload.insert("user".into(), user);
        let payload = Value::Object(payload);
        Ok(Self {
            event,
            payload_hash: hash_payload(&payload),
            payload,
            rules: *rules,
        })
    }
}
