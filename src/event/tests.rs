//! The rules of §2 and the minted events, without a database.

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

/// What `roster::import` and `lookup::readthrough` wrote out and parsed
/// back before [`ParsedBody::minted`]: the envelope of a webhook.
fn envelope(event_id: &str, event_type: EventType, at: DateTime<Utc>, user: &Value) -> Value {
    json!({
        "eventId": event_id,
        "eventType": event_type.as_str(),
        "occurredAt": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "user": user,
    })
}

fn minted_and_parsed(
    event_id: &str,
    event_type: EventType,
    at: DateTime<Utc>,
    user: Value,
) -> (
    Result<ParsedBody, Vec<FieldError>>,
    Result<ParsedBody, Vec<FieldError>>,
) {
    let rules = EventRules::default();
    let parsed = match ParsedBody::parse(envelope(event_id, event_type, at, &user), &rules) {
        Ok(body) => Ok(body),
        Err(BodyError::Invalid(errors)) => Err(errors),
        Err(BodyError::Malformed(e)) => panic!("a Value is JSON: {e}"),
    };
    let Value::Object(user) = user else {
        panic!("a user is an object")
    };
    let minted = ParsedBody::minted(event_id, event_type, at, user, &rules);
    (minted, parsed)
}

fn assert_same_body(minted: &ParsedBody, parsed: &ParsedBody) {
    assert_eq!(minted.event, parsed.event);
    assert_eq!(minted.payload, parsed.payload);
    assert_eq!(
        serde_json::to_vec(&minted.payload).unwrap(),
        serde_json::to_vec(&parsed.payload).unwrap()
    );
    assert_eq!(minted.payload_hash, parsed.payload_hash);
    assert_eq!(minted.rules, parsed.rules);
}

/// A time with nanoseconds, which the payload and the key truncate.
fn an_instant() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T08:00:00.123456789Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn a_minted_upsert_is_the_body_its_envelope_parses_to() {
    let user = json!({"id": "recA", "email": " Ada@Example.COM", "name": "Ada",
                      "status": "disabled", "groups": ["eng", "admins"], "note": "kept"});
    let (minted, parsed) = minted_and_parsed(
        "import:1764403200123456:recA",
        EventType::Updated,
        an_instant(),
        user,
    );
    let (minted, parsed) = (minted.unwrap(), parsed.unwrap());
    assert_same_body(&minted, &parsed);
    assert_eq!(
        minted.payload["occurredAt"],
        json!("2026-11-22T08:00:00.123456Z")
    );
}

#[test]
fn a_minted_delete_is_the_body_its_envelope_parses_to() {
    let (minted, parsed) = minted_and_parsed(
        "import:1764403200123456:recA:deleted",
        EventType::Deleted,
        an_instant(),
        json!({"id": "recA"}),
    );
    let (minted, parsed) = (minted.unwrap(), parsed.unwrap());
    assert_same_body(&minted, &parsed);
    assert_eq!(minted.event.change, Change::Delete);
}

#[test]
fn a_minted_event_breaks_the_rules_its_envelope_breaks() {
    for (event_id, user) in [
        (
            "import:1:bad id!",
            json!({"id": "bad id!", "email": "not-an-email", "status": "deleted",
                   "name": "x".repeat(201), "groups": [1, "y".repeat(101)]}),
        ),
        ("import:1:", json!({"id": 7, "groups": "eng"})),
        (
            "import:1:recA",
            json!({"id": "recA", "email": "a@x.io", "groups": (0..51).collect::<Vec<_>>()}),
        ),
        (
            "import:1:recA",
            json!({"id": "recA", "email": "a@x.io", "name": "A\u{0}da",
                   "note": "\u{0}", "x\u{0}": {"y": ["ok", {"z\u{0}": "\u{0}"}]}}),
        ),
        (
            "import:1:r\u{0}",
            json!({"id": "r\u{0}", "email": "a@x.io"}),
        ),
        (&"i".repeat(129), json!({"id": "recA", "email": null})),
    ] {
        for event_type in [EventType::Updated, EventType::Deleted] {
            let (minted, parsed) =
                minted_and_parsed(event_id, event_type, an_instant(), user.clone());
            let minted = minted.map(|_| ()).unwrap_err();
            assert!(!minted.is_empty(), "{user}");
            assert_eq!(minted, parsed.map(|_| ()).unwrap_err(), "{user}");
        }
    }
}

#[test]
fn a_minted_event_may_not_lead_this_clock_more_than_the_rules_allow() {
    let rules = EventRules::with_max_future_secs(300).unwrap();
    let now = an_instant();
    let user = || json!({"id": "recA"}).as_object().unwrap().clone();
    let at = |secs| now + TimeDelta::seconds(secs);
    assert!(ParsedBody::minted_at("e", EventType::Deleted, at(300), user(), &rules, now).is_ok());
    let errs = ParsedBody::minted_at("e", EventType::Deleted, at(301), user(), &rules, now)
        .map(|_| ())
        .unwrap_err();
    let parsed = UserEvent::parse_at(
        &envelope("e", EventType::Deleted, at(301), &json!({"id": "recA"})),
        &rules,
        now,
    )
    .unwrap_err();
    assert_eq!(errs, parsed);
    assert_eq!(errs[0].field, "occurredAt");
}
