//! The rules of §2, field by field: every broken one is recorded, so a
//! sender hears of all of them at once.

use super::nul::find_nul;
use super::{
    Change, Details, Email, EventId, EventRules, EventType, FieldError, OrderKey, Profile,
    ProfileStatus, RecordId, UserEvent,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

const MAX_NAME: usize = 200;
const MAX_GROUPS: usize = 50;
const MAX_GROUP: usize = 100;

/// The rules broken so far.
#[derive(Default)]
pub(super) struct Fields {
    pub(super) errors: Vec<FieldError>,
}

impl Fields {
    pub(super) fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// A value already checked: kept, or its error recorded under `field`.
    pub(super) fn checked<T>(&mut self, field: &str, checked: Result<T, String>) -> Option<T> {
        match checked {
            Ok(t) => Some(t),
            Err(message) => {
                self.fail(field, message);
                None
            }
        }
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
        self.checked(field, parse(s))
    }

    /// The `user` object: its record id, and for created/updated the
    /// profile it describes (`None` where a field broke a rule).
    pub(super) fn user(
        &mut self,
        u: &Map<String, Value>,
        event_type: Option<EventType>,
    ) -> (Option<RecordId>, Option<Profile>) {
        let user_id = self.required(u, "id", "user.id", RecordId::parse);
        let email = if event_type == Some(EventType::Deleted) {
            self.optional(u, "email", "user.email", Email::parse)
                .flatten()
        } else {
            self.required(u, "email", "user.email", Email::parse)
        };
        let name = self.optional(u, "name", "user.name", parse_name);
        let status = self.optional(u, "status", "user.status", ProfileStatus::parse);
        let groups = parse_groups(self, u.get("groups"));
        let details = self.checked(
            "user.details",
            Details::parse(u.get("details").unwrap_or(&Value::Null)).map(|d| d.map(Box::new)),
        );
        let profile = match (email, name, status, groups, details) {
            (Some(email), Some(name), Some(status), Some(groups), Some(details)) => Some(Profile {
                email,
                name,
                status: status.unwrap_or(ProfileStatus::Active),
                groups,
                details,
            }),
            _ => None,
        };
        (user_id, profile)
    }

    /// The event, when no rule was broken.
    pub(super) fn finish(
        self,
        event_id: Option<EventId>,
        event_type: Option<EventType>,
        at: Option<DateTime<Utc>>,
        user_id: Option<RecordId>,
        profile: Option<Profile>,
    ) -> Result<UserEvent, Vec<FieldError>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
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
        Ok(UserEvent {
            event_type,
            key: OrderKey { at, event_id },
            user_id,
            change,
        })
    }
}

/// `at` as Postgres keeps it: truncated to microseconds.
pub(super) fn to_micros(at: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_micros(at.timestamp_micros())
        .ok_or_else(|| "is out of range".to_string())
}

fn parse_occurred_at(s: &str) -> Result<DateTime<Utc>, String> {
    let parsed = DateTime::parse_from_rfc3339(s)
        .map_err(|_| "must be an RFC 3339 timestamp with an offset".to_string())?;
    to_micros(parsed.with_timezone(&Utc))
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
    pub(crate) fn parse(v: &Value, rules: &EventRules) -> Result<Self, Vec<FieldError>> {
        Self::parse_at(v, rules, Utc::now())
    }

    pub(super) fn parse_at(
        v: &Value,
        rules: &EventRules,
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<FieldError>> {
        let Some(obj) = v.as_object() else {
            return Err(vec![FieldError::new("", "the body must be a JSON object")]);
        };
        let mut f = Fields::default();
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
        let (user_id, profile) = match user {
            Some(u) => f.user(u, event_type),
            None => (None, None),
        };

        find_nul(v, &mut String::new(), &mut f.errors);
        f.finish(event_id, event_type, at, user_id, profile)
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
