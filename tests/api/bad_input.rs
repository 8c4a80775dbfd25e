//! Input that once answered 5xx or froze a record: U+0000 anywhere a
//! string can be (Postgres stores it in neither `jsonb` nor `text`),
//! events dated far in the future, duplicate JSON keys. Every case is a
//! clear 4xx, or a rejected row, and writes nothing.

use crate::airtable::Airtable;
use crate::helpers::*;
use rosterd::directory::{AirtableConfig, AirtableDirectory};
use rosterd::event::EventRules;
use rosterd::lookup::readthrough::ReadThrough;
use rosterd::provision::provider::local::LocalProvider;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

const AT: &str = "2026-11-22T10:00:00Z";

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.expect("a JSON body")
}

fn event() -> Value {
    upsert_event("user.created", "evt_1", AT, "recA", "ada@example.com")
}

/// The event with `value` put at `pointer` (creating the last key).
fn with(pointer: &str, value: Value) -> Value {
    let mut ev = event();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    ev.pointer_mut(parent).unwrap()[key] = value;
    ev
}

/// (what, body, the field the 422 names): every class of place a NUL can be.
fn nul_events() -> Vec<(&'static str, Value, &'static str)> {
    let mut unknown_key = event();
    unknown_key["user"]["extra"] = json!({"a\u{0}b": 1});
    let mut top_key = event();
    top_key["\u{0}"] = json!(true);
    vec![
        (
            "ignored field",
            with("/user/note", json!("\u{0}")),
            "user.note",
        ),
        (
            "key of an unknown object",
            unknown_key,
            "user.extra.a\\u0000b",
        ),
        ("unknown top-level key", top_key, "\\u0000"),
        ("name", with("/user/name", json!("Ada\u{0}")), "user.name"),
        (
            "group",
            with("/user/groups", json!(["ok", "adm\u{0}ins"])),
            "user.groups[1]",
        ),
        (
            "deep in an ignored array",
            with("/user/meta", json!([{"x": ["\u{0}"]}])),
            "user.meta[0].x[0]",
        ),
        (
            "email",
            with("/user/email", json!("a\u{0}@example.com")),
            "user.email",
        ),
        ("record id", with("/user/id", json!("rec\u{0}")), "user.id"),
        ("event id", with("/eventId", json!("evt\u{0}")), "eventId"),
        (
            "occurredAt",
            with("/occurredAt", json!("2026-11-22T10:00:00Z\u{0}")),
            "occurredAt",
        ),
        (
            "status",
            with("/user/status", json!("active\u{0}")),
            "user.status",
        ),
    ]
}

#[sqlx::test]
async fn nul_anywhere_in_an_inbound_event_is_422_naming_it_and_writes_nothing(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let empty = db_state(&app.db).await;
    for (what, ev, field) in nul_events() {
        let resp = app.post_signed(&ev).await;
        assert_eq!(resp.status(), 422, "{what}");
        let b = body(resp).await;
        assert_eq!(b["error"], "validation_failed", "{what}: {b}");
        let fields: Vec<&str> = b["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, [field], "{what}: {b}");
        assert_eq!(db_state(&app.db).await, empty, "{what}");
    }
    // The same event without the NUL is fine.
    assert_eq!(app.post_signed(&event()).await.status(), 200);
}

#[sqlx::test]
async fn nul_in_admin_bodies_params_and_paths_is_4xx_and_writes_nothing(db: PgPool) {
    let app = TestApp::spawn(db).await;
    assert_eq!(app.post_signed(&event()).await.status(), 200);
    let before = db_state(&app.db).await;
    let audit = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from audit_log")
            .fetch_one(&app.db)
            .await
            .unwrap()
    };
    let audited = audit().await;
    let bulk = [
        json!({"status": "failed\u{0}"}),
        json!({"eventType": "\u{0}"}),
        json!({"userId": "recA\u{0}"}),
        json!({"since": "2026-11-22T10:00:00Z\u{0}"}),
        json!({"until": "\u{0}"}),
        json!({"status": "failed", "\u{0}": 1}),
        json!({"status": "failed", "extra": {"\u{0}": "\u{0}"}}),
    ];
    for b in &bulk {
        let resp = app.admin_post("/api/admin/events/replay", Some(b)).await;
        assert_eq!(resp.status(), 400, "{b}");
    }
    for b in [json!({"dryRun": "\u{0}"}), json!({"\u{0}": true})] {
        let resp = app.admin_post("/api/admin/provision", Some(&b)).await;
        assert_eq!(resp.status(), 400, "{b}");
    }
    for path in [
        "/api/admin/events?status=%00",
        "/api/admin/events?userId=rec%00",
        "/api/admin/events?cursor=%00",
        "/api/admin/events?%00=1",
        "/api/admin/events/evt%00",
        "/api/admin/users/rec%00",
        "/api/admin/jobs?status=%00",
        "/api/admin/jobs?cursor=%00",
        "/api/admin/audit?cursor=%00",
    ] {
        let status = app.admin_get(path).await.status();
        assert!(status.is_client_error(), "{path}: {status}");
    }
    for path in [
        "/api/admin/events/evt%00/replay",
        "/api/admin/users/rec%00/provision",
        "/api/admin/jobs/%00/retry",
    ] {
        let status = app.admin_post(path, None).await.status();
        assert!(status.is_client_error(), "{path}: {status}");
    }
    for query in ["email=%00", "email=ada%00@example.com", "id=rec%00"] {
        assert_eq!(app.lookup(query).await.status(), 400, "{query}");
    }
    assert_eq!(db_state(&app.db).await, before);
    assert_eq!(audit().await, audited);
}

#[sqlx::test]
async fn nul_in_a_pushed_file_rejects_that_row_only(db: PgPool) {
    use rosterd::roster::import::{import, rows, Row};
    let roles = config().roles;
    let csv = "id,email,name,groups,note\nrecA,ada@x.io,Ada,admins,\nrecB,bob@x.io,B\u{0}b,admins,\nrecC,cleo@x.io,Cleo,ad\u{0}mins,\nrecD,dan@x.io,Dan,,x\u{0}\n";
    let yaml = "- {id: recE, email: eve@x.io, note: \"\\0\"}\n- {id: recF, email: fay@x.io, \"k\\0\": 1}\n- {id: recG, email: gus@x.io}\n";
    for (name, text, rejected, applied) in [
        ("roster.csv", csv, vec![3, 4, 5], vec!["recA"]),
        ("roster.yaml", yaml, vec![1, 2], vec!["recA", "recG"]),
    ] {
        let read: Vec<Row> = rows(name, text.as_bytes())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let total = read.len();
        let report = import(
            &db,
            &roles,
            &EventRules::default(),
            read,
            total,
            false,
            false,
        )
        .await
        .unwrap();
        let lines: Vec<usize> = report.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, rejected, "{name}: {report:?}");
        assert!(
            report
                .rejected
                .iter()
                .all(|r| r.reason.contains("U+0000 (NUL)")),
            "{name}: {report:?}"
        );
        let ids: Vec<String> = sqlx::query_scalar("select id from roster order by id")
            .fetch_all(&db)
            .await
            .unwrap();
        assert_eq!(ids, applied, "{name}");
    }
}

#[sqlx::test]
async fn a_directory_record_with_nul_is_ignored_not_a_5xx(db: PgPool) {
    let at = Airtable::start().await;
    at.insert(json!({"Email": "nul@x.io", "Name": "N\u{0}l", "Status": "active"}));
    let mut cfg = AirtableConfig::new(
        crate::airtable::BASE,
        crate::airtable::TABLE,
        crate::airtable::KEY.to_string().into(),
    );
    cfg.api_url = at.url().to_string();
    let rt = ReadThrough::new(
        Arc::new(AirtableDirectory::new(cfg).unwrap()),
        Duration::from_secs(60),
        Duration::from_secs(5),
        Duration::from_secs(5),
    );
    let provider = Arc::new(LocalProvider::new(db.clone()));
    let app = TestApp::spawn_full(db, provider, Some(Arc::new(rt)), |_| {}).await;
    let resp = app.lookup("email=nul@x.io").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(body(resp).await, json!({"error": "user_not_found"}));
    let state = db_state(&app.db).await;
    assert!(
        state.events.is_empty() && state.roster.is_empty(),
        "{state:?}"
    );
}

fn in_future(secs: i64) -> String {
    (chrono::Utc::now() + chrono::TimeDelta::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[sqlx::test]
async fn a_future_event_is_422_and_the_record_still_takes_later_events(db: PgPool) {
    let app = TestApp::spawn(db).await;
    assert_eq!(app.post_signed(&event()).await.status(), 200);
    let before = db_state(&app.db).await;
    for at in ["9999-12-31T23:59:59Z", &in_future(3600)] {
        let ev = upsert_event("user.updated", "evt_future", at, "recA", "evil@example.com");
        let resp = app.post_signed(&ev).await;
        assert_eq!(resp.status(), 422, "{at}");
        let b = body(resp).await;
        assert_eq!(b["fields"][0]["field"], "occurredAt", "{b}");
        let message = b["fields"][0]["message"].as_str().unwrap();
        assert!(message.contains("MAX_EVENT_FUTURE_SECS"), "{message}");
        assert_eq!(db_state(&app.db).await, before, "{at}");
        let del = delete_event("evt_future_del", at, "recA");
        assert_eq!(app.post_signed(&del).await.status(), 422, "{at}");
    }
    // Within the allowed skew (clocks differ a little): applied.
    let near = upsert_event(
        "user.updated",
        "evt_near",
        &in_future(60),
        "recA",
        "near@example.com",
    );
    let b = body(app.post_signed(&near).await).await;
    assert_eq!(b["outcome"], "applied", "{b}");
    // A real later event still applies: nothing froze the record.
    let later = upsert_event(
        "user.updated",
        "evt_later",
        &in_future(120),
        "recA",
        "later@example.com",
    );
    assert_eq!(
        body(app.post_signed(&later).await).await["outcome"],
        "applied"
    );
    let email: String = sqlx::query_scalar("select email from roster where id = 'recA'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(email, "later@example.com");
}

#[sqlx::test]
async fn the_allowed_skew_is_configurable(db: PgPool) {
    let app = TestApp::spawn_with(db, |c| {
        c.events = EventRules::with_max_future_secs(0).unwrap();
    })
    .await;
    let ev = upsert_event("user.created", "evt_1", &in_future(60), "recA", "a@x.io");
    let b = body(app.post_signed(&ev).await).await;
    assert_eq!(b["error"], "validation_failed", "{b}");
    assert!(b["fields"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("must not be more than 0 s after"));
}

/// An event stored while it was allowed (before this rule, or under a
/// larger MAX_EVENT_FUTURE_SECS): a replay refuses it as failed, with the
/// reason, and changes nothing in the roster.
#[sqlx::test]
async fn replaying_a_stored_future_event_fails_and_changes_nothing(db: PgPool) {
    let app = TestApp::spawn_with(db.clone(), |c| {
        c.events = EventRules::with_max_future_secs(10 * 365 * 86400).unwrap();
    })
    .await;
    assert_eq!(app.post_signed(&event()).await.status(), 200);
    let far = upsert_event(
        "user.updated",
        "evt_far",
        &in_future(86400),
        "recA",
        "far@x.io",
    );
    assert_eq!(
        body(app.post_signed(&far).await).await["outcome"],
        "applied"
    );
    // Today's rule is the default (300 s).
    let app = TestApp::spawn(db).await;
    let roster_before = db_state(&app.db).await.roster;
    let resp = app
        .admin_post("/api/admin/events/evt_far/replay", None)
        .await;
    assert_eq!(resp.status(), 200);
    let b = body(resp).await;
    assert_eq!(b["outcome"], "failed", "{b}");
    let error = b["error"].as_str().unwrap();
    assert!(
        error.contains("occurredAt") && error.contains("MAX_EVENT_FUTURE_SECS"),
        "{error}"
    );
    assert_eq!(db_state(&app.db).await.roster, roster_before);
    let bulk = app
        .admin_post("/api/admin/events/replay", Some(&json!({"userId": "recA"})))
        .await;
    let report = body(bulk).await;
    assert_eq!(
        report["outcomes"],
        json!({"applied": 0, "stale": 1, "failed": 1}),
        "{report}"
    );
    assert_eq!(db_state(&app.db).await.roster, roster_before);
}

#[sqlx::test]
async fn duplicate_keys_are_400_and_write_nothing(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let empty = db_state(&app.db).await;
    for raw in [
        r#"{"eventId":"evt_1","eventId":"evt_2","eventType":"user.created","occurredAt":"2026-11-22T10:00:00Z","user":{"id":"recA","email":"a@x.io"}}"#,
        r#"{"eventId":"evt_1","eventType":"user.created","occurredAt":"2026-11-22T10:00:00Z","user":{"id":"recA","email":"a@x.io","status":"active","status":"disabled"}}"#,
        r#"{"eventId":"evt_1","eventType":"user.created","occurredAt":"2026-11-22T10:00:00Z","user":{"id":"recA","email":"a@x.io","x":{"k":1,"\u006b":2}}}"#,
    ] {
        let resp = app
            .post_inbound(
                raw.as_bytes(),
                &[("x-signature", plain_signature(SECRET, raw.as_bytes()))],
            )
            .await;
        assert_eq!(resp.status(), 400, "{raw}");
        let b = body(resp).await;
        assert_eq!(b["error"], "malformed_json", "{b}");
        assert!(
            b["detail"].as_str().unwrap().starts_with("duplicate key"),
            "{b}"
        );
    }
    assert_eq!(db_state(&app.db).await, empty);
    let resp = app
        .client
        .post(app.url("/api/admin/events/replay"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"status":"failed","status":"applied"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(body(resp).await["error"], "malformed_json");
}

/// Numbers at the edges of f64 in a stored payload: Postgres keeps them as
/// exact decimals, and reading them back must give the same numbers (not a
/// 500 on the event's page, nor a failed replay).
#[sqlx::test]
async fn extreme_numbers_in_a_payload_read_back_and_replay(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let mut ev = event();
    ev["user"]["extra"] = json!([
        f64::MAX,
        -f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        1.7976931348623155e308,
        u64::MAX,
        i64::MIN
    ]);
    assert_eq!(body(app.post_signed(&ev).await).await["outcome"], "applied");
    let resp = app.admin_get("/api/admin/events/evt_1").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body(resp).await["payload"], ev);
    let resp = app.admin_post("/api/admin/events/evt_1/replay", None).await;
    assert_eq!(resp.status(), 200);
    // Not newer than the row, which it wrote: stale, and no error.
    assert_eq!(
        body(resp).await,
        json!({"eventId": "evt_1", "userId": "recA", "outcome": "stale", "error": null})
    );
    // The same delivery again is the same body.
    assert_eq!(
        body(app.post_signed(&ev).await).await["outcome"],
        "duplicate"
    );
}

/// What openapi.yaml calls valid the server accepts (schemathesis's
/// "schema-valid request rejected"): cursors of the documented shape, an
/// empty `since`/`until` window, a whole-number `limit` written as 5.0.
#[sqlx::test]
async fn what_the_spec_calls_valid_is_accepted(db: PgPool) {
    let app = TestApp::spawn(db).await;
    assert_eq!(app.post_signed(&event()).await.status(), 200);
    for (path, list) in [
        ("/api/admin/jobs?cursor=0", "jobs"),
        ("/api/admin/audit?cursor=0", "entries"),
        ("/api/admin/events?cursor=0.0", "events"),
        (
            "/api/admin/events?since=2026-11-23T00:00:00Z&until=2026-11-22T00:00:00Z",
            "events",
        ),
        (
            "/api/admin/events?since=2026-11-22T00:00:00Z&until=2026-11-22T00:00:00Z",
            "events",
        ),
    ] {
        let resp = app.admin_get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let b = body(resp).await;
        assert_eq!(b[list], json!([]), "{path}: {b}");
        assert_eq!(b["nextCursor"], Value::Null, "{path}");
    }
    // A cursor names a position, whether or not a row is there.
    let all = body(app.admin_get("/api/admin/events").await).await;
    assert_eq!(all["events"].as_array().unwrap().len(), 1);
    let after = body(
        app.admin_get("/api/admin/events?cursor=9999999999999999.zzz")
            .await,
    )
    .await;
    assert_eq!(after["events"], all["events"]);
    let resp = app
        .admin_post(
            "/api/admin/events/replay",
            Some(&json!({"since": "2026-12-01T00:00:00Z", "until": "2026-11-01T00:00:00Z", "limit": 5.0})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let b = body(resp).await;
    assert_eq!(
        (b["matched"].clone(), b["replayed"].clone()),
        (json!(0), json!(0)),
        "{b}"
    );
    let resp = app
        .admin_post(
            "/api/admin/events/replay",
            Some(&json!({"userId": "recA", "limit": 5.5})),
        )
        .await;
    assert_eq!(resp.status(), 400);
    // Both keys of the lookup: the spec's oneOf refuses it too.
    let resp = app.lookup("email=ada@example.com&id=recA").await;
    assert_eq!(resp.status(), 400);
}
