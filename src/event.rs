//! The user event of docs/contract.md §2, parsed once into domain types.
//!
//! Everything downstream takes these types, so nothing after this module
//! re-checks lengths, character sets or email syntax.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use validator::ValidateEmail;

const MAX_EVENT_ID: usize = 128;
const MAX_RECORD_ID: usize = 64;
const MAX_EMAIL: usize = 254;
const MAX_NAME: usize = 200;
const MAX_GROUPS: usize = 50;
const MAX_GROUP: usize = 100;

/// `MAX_EVENT_FUTURE_SECS`'s default.
pub const DEFAULT_MAX_FUTURE_SECS: u64 = 300;

/// Rules of an event that depend on configuration and on this server's
/// clock rather than on the event alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRules {
    /// How far past this server's clock `occurredAt` may be. Newest wins
    /// per record, so an event dated in the far future would win forever:
    /// every real event after it would be `stale`.
    pub max_future: TimeDelta,
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
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// `eventId`: 1–128 chars of `A-Z a-z 0-9 . _ : -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(String);
string_newtype!(EventId);

impl EventId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > MAX_EVENT_ID {
            return Err(format!("must be 1 to {MAX_EVENT_ID} characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err("may contain only A-Z a-z 0-9 . _ : -".into());
        }
        Ok(Self(s.to_owned()))
    }
}

/// `user.id`: the upstream record id, 1–64 chars of `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(String);
string_newtype!(RecordId);

impl RecordId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > MAX_RECORD_ID {
            return Err(format!("must be 1 to {MAX_RECORD_ID} characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        {
            return Err("may contain only A-Z a-z 0-9 _ -".into());
        }
        Ok(Self(s.to_owned()))
    }
}

/// A canonical email: trimmed, lower-cased, syntactically valid, ≤ 254 chars.
/// A person *is* one of these (docs/contract.md §4).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);
string_newtype!(Email);

impl Email {
    pub fn parse(s: &str) -> Result<Self, String> {
        let canonical = s.trim().to_lowercase();
        if canonical.is_empty() {
            return Err("must not be empty".into());
        }
        if canonical.chars().count() > MAX_EMAIL {
            return Err(format!("must be at most {MAX_EMAIL} characters"));
        }
        if !canonical.validate_email() {
            return Err("must be a valid email address".into());
        }
        Ok(Self(canonical))
    }

    /// For values read back from our own database, which only ever holds
    /// canonical emails written through [`Email::parse`].
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Created,
    Updated,
    Deleted,
}

impl EventType {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "user.created" => Ok(Self::Created),
            "user.updated" => Ok(Self::Updated),
            "user.deleted" => Ok(Self::Deleted),
            _ => Err("must be user.created, user.updated or user.deleted".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "user.created",
            Self::Updated => "user.updated",
            Self::Deleted => "user.deleted",
        }
    }
}

/// The profile's own status; `deleted` is never sent, it is derived from the
/// deletion register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileStatus {
    Active,
    Disabled,
}

impl ProfileStatus {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            _ => Err("must be active or disabled".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

/// (`occurredAt`, `eventId`), compared as a pair: the only notion of "newer".
///
/// The timestamp is truncated to microseconds at parse time because that is
/// what Postgres stores; comparing anything finer here would disagree with
/// the database.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderKey {
    pub at: DateTime<Utc>,
    pub event_id: EventId,
}

/// What a created/updated event says the person looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub email: Email,
    pub name: Option<String>,
    pub status: ProfileStatus,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `user.created` / `user.updated`: writes the profile register.
    Upsert(Profile),
    /// `user.deleted`: writes the deletion register. The email, when sent,
    /// is kept in the stored payload only; the row's profile says who it was.
    Delete,
}

/// A fully parsed and validated user event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEvent {
    pub event_type: EventType,
    pub key: OrderKey,
    pub user_id: RecordId,
    pub change: Change,
}

/// The parsed event together with what dedup needs from its body.
#[derive(Debug, Clone)]
pub struct ParsedBody {
    pub event: UserEvent,
    pub payload: Value,
    /// SHA-256 of the canonical JSON (keys sorted, no whitespace), so two
    /// deliveries that differ only in formatting are the same body.
    pub payload_hash: [u8; 32],
    /// The rules it was checked with (a redelivery of a failed event is
    /// applied again under them).
    pub rules: EventRules,
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
    pub fn from_slice(raw: &[u8], rules: &EventRules) -> Result<Self, BodyError> {
        let payload =
            crate::json::from_slice(raw).map_err(|e| BodyError::Malformed(e.to_string()))?;
        Self::parse(payload, rules)
    }

    pub fn parse(payload: Value, rules: &EventRules) -> Result<Self, BodyError> {
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

pub fn hash_payload(payload: &Value) -> [u8; 32] {
    // serde_json's Map is a BTreeMap (no `preserve_order`), so this
    // serialisation is canonical: sorted keys, no whitespace.
    let canonical = serde_json::to_vec(payload).expect("a Value always serialises");
    Sha256::digest(&canonical).into()
}

struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// A required string field, run through `parse`.
    fn required<T>(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        field: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                self.fail(field, "is required");
                None
            }
            Some(v) => self.string(v, field, parse),
        }
    }

    /// An optional string field: absent and null both mean "not given".
    fn optional<T>(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        field: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match obj.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(v) => self.string(v, field, parse).map(Some),
        }
    }

    fn string<T>(
        &mut self,
        v: &Value,
        field: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let Some(s) = v.as_str() else {
            self.fail(field, "must be a string");
            return None;
        };
        match parse(s) {
            Ok(t) => Some(t),
            Err(message) => {
                self.fail(field, message);
                None
            }
        }
    }
}

fn parse_occurred_at(s: &str) -> Result<DateTime<Utc>, String> {
    let parsed = DateTime::parse_from_rfc3339(s)
        .map_err(|_| "must be an RFC 3339 timestamp with an offset".to_string())?;
    DateTime::from_timestamp_micros(parsed.timestamp_micros())
        .ok_or_else(|| "is out of range".to_string())
}

fn parse_name(s: &str) -> Result<String, String> {
    if s.chars().count() > MAX_NAME {
        return Err(format!("must be at most {MAX_NAME} characters"));
    }
    Ok(s.to_owned())
}

impl UserEvent {
    /// Checks every rule of §2, and `rules` against this server's clock, and
    /// reports all broken ones at once.
    pub fn parse(v: &Value, rules: &EventRules) -> Result<Self, Vec<FieldError>> {
        Self::parse_at(v, rules, Utc::now())
    }

    fn parse_at(
        v: &Value,
        rules: &EventRules,
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<FieldError>> {
        let Some(obj) = v.as_object() else {
            return Err(vec![FieldError::new("", "the body must be a JSON object")]);
        };
        let mut f = Fields { errors: Vec::new() };
        let event_id = f.required(obj, "eventId", "eventId", EventId::parse);
        let event_type = f.required(obj, "eventType", "eventType", EventType::parse);
        let at = f.required(obj, "occurredAt", "occurredAt", |s| {
            let at = parse_occurred_at(s)?;
            rules.check_occurred_at(at, now)?;
            Ok(at)
        });

        let user = match obj.get("user") {
            Some(Value::Object(u)) => Some(u),
            None | Some(Value::Null) => {
                f.fail("user", "is required");
                None
            }
            Some(_) => {
                f.fail("user", "must be an object");
                None
            }
        };

        let mut user_id = None;
        let mut profile = None;
        if let Some(u) = user {
            user_id = f.required(u, "id", "user.id", RecordId::parse);
            let email = if event_type == Some(EventType::Deleted) {
                f.optional(u, "email", "user.email", Email::parse).flatten()
            } else {
                f.required(u, "email", "user.email", Email::parse)
            };
            let name = f.optional(u, "name", "user.name", parse_name);
            let status = f.optional(u, "status", "user.status", ProfileStatus::parse);
            let groups = parse_groups(&mut f, u.get("groups"));
            if let (Some(email), Some(name), Some(status), Some(groups)) =
                (email, name, status, groups)
            {
                profile = Some(Profile {
                    email,
                    name,
                    status: status.unwrap_or(ProfileStatus::Active),
                    groups,
                });
            }
        }

        find_nul(v, &mut String::new(), &mut f);
        if !f.errors.is_empty() {
            return Err(f.errors);
        }
        let (Some(event_id), Some(event_type), Some(at), Some(user_id)) =
            (event_id, event_type, at, user_id)
        else {
            unreachable!("every missing field recorded an error");
        };
        let change = match event_type {
            EventType::Deleted => Change::Delete,
            EventType::Created | EventType::Updated => Change::Upsert(
                profile.expect("created/updated require an email, recorded above if missing"),
            ),
        };
        Ok(Self {
            event_type,
            key: OrderKey { at, event_id },
            user_id,
            change,
        })
    }
}

/// Postgres stores neither the payload (`jsonb`) nor a `text` column with
/// U+0000 in it, so no string of the event may hold one: not a value, not
/// a key, not in a field rosterd otherwise ignores. Reported once per
/// place, unless that field already broke another rule.
fn find_nul(v: &Value, path: &mut String, f: &mut Fields) {
    const MESSAGE: &str = "must not contain U+0000 (NUL)";
    let report = |f: &mut Fields, field: &str, message: &str| {
        if !f.errors.iter().any(|e| e.field == field) {
            f.fail(field, message);
        }
    };
    match v {
        Value::String(s) if s.contains('\0') => report(f, path, MESSAGE),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                find_nul(item, path, f);
                path.truncate(len);
            }
        }
        Value::Object(obj) => {
            for (key, item) in obj {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.replace('\0', "\\u0000"));
                if key.contains('\0') {
                    report(f, path, "is a key that contains U+0000 (NUL)");
                }
                find_nul(item, path, f);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn parse_groups(f: &mut Fields, v: Option<&Value>) -> Option<Vec<String>> {
    let items = match v {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            f.fail("user.groups", "must be an array of strings");
            return None;
        }
    };
    if items.len() > MAX_GROUPS {
        f.fail(
            "user.groups",
            format!("must have at most {MAX_GROUPS} entries"),
        );
        return None;
    }
    let mut groups = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(s) if s.chars().count() <= MAX_GROUP => groups.push(s.to_owned()),
            Some(_) => {
                f.fail(
                    &format!("user.groups[{i}]"),
                    format!("must be at most {MAX_GROUP} characters"),
                );
                ok = false;
            }
            None => {
                f.fail(&format!("user.groups[{i}]"), "must be a string");
                ok = false;
            }
        }
    }
    ok.then_some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "eventId": "evt_1",
            "eventType": "user.created",
            "occurredAt": "2026-11-22T10:00:00.123456789+02:00",
            "user": {"id": "recA", "email": "  Ada@Example.COM ", "name": "Ada", "groups": ["admins"]}
        })
    }

    #[test]
    fn parses_and_canonicalises() {
        let e = UserEvent::parse(&base(), &EventRules::default()).unwrap();
        assert_eq!(e.key.event_id.as_str(), "evt_1");
        assert_eq!(e.key.at.to_rfc3339(), "2026-11-22T08:00:00.123456+00:00");
        let Change::Upsert(p) = e.change else {
            panic!("expected upsert")
        };
        assert_eq!(p.email.as_str(), "ada@example.com");
        assert_eq!(p.status, ProfileStatus::Active);
        assert_eq!(p.groups, vec!["admins".to_string()]);
    }

    #[test]
    fn reports_every_broken_field() {
        let v = json!({
            "eventId": "bad id!",
            "eventType": "user.renamed",
            "occurredAt": "2026-11-22 10:00:00",
            "user": {"id": "", "email": "not-an-email", "status": "deleted",
                     "name": "x".repeat(201), "groups": [1]}
        });
        let errs = UserEvent::parse(&v, &EventRules::default()).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "eventId",
                "eventType",
                "occurredAt",
                "user.id",
                "user.email",
                "user.name",
                "user.status",
                "user.groups[0]"
            ]
        );
    }

    #[test]
    fn deleted_needs_no_email_but_created_does() {
        let mut v = base();
        v["user"].as_object_mut().unwrap().remove("email");
        let errs = UserEvent::parse(&v, &EventRules::default()).unwrap_err();
        assert_eq!(errs[0].field, "user.email");
        v["eventType"] = json!("user.deleted");
        assert_eq!(
            UserEvent::parse(&v, &EventRules::default()).unwrap().change,
            Change::Delete
        );
    }

    #[test]
    fn limits_are_inclusive() {
        assert!(EventId::parse(&"a".repeat(128)).is_ok());
        assert!(EventId::parse(&"a".repeat(129)).is_err());
        assert!(RecordId::parse(&"a".repeat(64)).is_ok());
        assert!(RecordId::parse(&"a".repeat(65)).is_err());
        let local = "a".repeat(64);
        // DNS labels are at most 63 characters, so the domain is three of them.
        let long = format!(
            "{local}@{}.{}.{}.com",
            "b".repeat(61),
            "c".repeat(61),
            "d".repeat(61)
        );
        assert_eq!(long.len(), 254);
        assert!(Email::parse(&long).is_ok());
        assert!(Email::parse(&format!("{long}m")).is_err());
        let groups: Vec<_> = (0..51).map(|i| i.to_string()).collect();
        let mut v = base();
        v["user"]["groups"] = json!(groups);
        assert_eq!(
            UserEvent::parse(&v, &EventRules::default()).unwrap_err()[0].field,
            "user.groups"
        );
    }

    #[test]
    fn hash_ignores_formatting_but_not_content() {
        let a = ParsedBody::from_slice(br#"{"eventId":"e","eventType":"user.deleted","occurredAt":"2026-01-01T00:00:00Z","user":{"id":"r"}}"#, &EventRules::default()).unwrap();
        let b = ParsedBody::from_slice(br#"{ "user": {"id":"r"}, "occurredAt":"2026-01-01T00:00:00Z", "eventType":"user.deleted", "eventId":"e" }"#, &EventRules::default()).unwrap();
        let c = ParsedBody::from_slice(br#"{"eventId":"e","eventType":"user.deleted","occurredAt":"2026-01-01T00:00:01Z","user":{"id":"r"}}"#, &EventRules::default()).unwrap();
        assert_eq!(a.payload_hash, b.payload_hash);
        assert_ne!(a.payload_hash, c.payload_hash);
    }

    #[test]
    fn occurred_at_may_lead_this_clock_by_the_allowed_skew_only() {
        let rules = EventRules::with_max_future_secs(300).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-22T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |t: &str| {
            let mut v = base();
            v["occurredAt"] = json!(t);
            UserEvent::parse_at(&v, &rules, now)
        };
        assert!(at("2026-11-22T08:05:00Z").is_ok());
        assert!(at("1970-01-01T00:00:00Z").is_ok());
        for t in ["2026-11-22T08:05:00.000001Z", "9999-12-31T23:59:59Z"] {
            let errs = at(t).unwrap_err();
            assert_eq!(errs.len(), 1, "{t}");
            assert_eq!(errs[0].field, "occurredAt");
            assert!(errs[0]
                .message
                .starts_with("must not be more than 300 s after"));
        }
        assert!(EventRules::with_max_future_secs(u64::MAX).is_none());
        let huge = EventRules::with_max_future_secs(i64::MAX as u64 / 1000).unwrap();
        assert!(UserEvent::parse_at(&base(), &huge, now).is_ok());
    }

    #[test]
    fn nul_is_refused_wherever_it_is() {
        let mut v = base();
        v["user"]["note"] = json!("\u{0}");
        v["user"]["name"] = json!("A\u{0}da");
        v["x\u{0}"] = json!({"y": ["ok", {"z\u{0}": "\u{0}"}]});
        v["eventId"] = json!("e\u{0}");
        let fields: Vec<_> = UserEvent::parse(&v, &EventRules::default())
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "eventId",
                "user.name",
                "user.note",
                "x\\u0000",
                "x\\u0000.y[1].z\\u0000"
            ]
        );
    }

    #[test]
    fn not_json_and_not_an_object() {
        assert!(matches!(
            ParsedBody::from_slice(b"{", &EventRules::default()),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            ParsedBody::from_slice(b"[1]", &EventRules::default()),
            Err(BodyError::Invalid(_))
        ));
    }
}
