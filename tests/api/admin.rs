//! The operators' API (docs/contract.md §8): tokens, lists and their filters,
//! replay of failed and stale events, provisioning on demand, the job
//! queue, and an audit row for every change.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// Every admin route, with a request that is valid once authorised.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/admin/events"),
    ("GET", "/api/admin/events/evt_1"),
    ("POST", "/api/admin/events/evt_1/replay"),
    ("POST", "/api/admin/events/replay"),
    ("GET", "/api/admin/users/recA"),
    ("POST", "/api/admin/users/recA/provision"),
    ("POST", "/api/admin/provision"),
    ("GET", "/api/admin/jobs"),
    ("POST", "/api/admin/jobs/1/retry"),
    ("GET", "/api/admin/audit"),
];

async fn send(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = match method {
        "GET" => app.client.get(app.url(path)),
        _ => app
            .client
            .post(app.url(path))
            .json(&json!({"status": "failed", "dryRun": true})),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn audit_rows(db: &PgPool) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as("select actor, action, target from audit_log order by id")
        .fetch_all(db)
        .await
        .unwrap()
}

async fn body(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

#[sqlx::test]
async fn every_admin_call_needs_an_operator_token(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    for (method, path) in ROUTES {
        for token in [None, Some("wrong-token-0123456789"), Some(LOGIN_TOKEN)] {
            let r = send(&app, method, path, token).await;
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert_eq!(r.headers()["www-authenticate"], "Bearer");
            assert_eq!(body(r).await, json!({"error": "unauthorized"}));
        }
        let r = send(&app, method, path, Some(ADMIN_TOKEN)).await;
        assert_ne!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(
            !r.status().is_server_error(),
            "{method} {path}: {}",
            r.status()
        );
    }
    // No admin token configured: nobody gets in.
    let closed = TestApp::spawn_with(db.clone(), |c| c.admin_tokens = Default::default()).await;
    let r = send(&closed, "GET", "/api/admin/events", Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Refused calls change nothing and are not audited as anyone.
    assert!(audit_rows(&db).await.is_empty());
}

#[sqlx::test]
async fn events_list_pages_newest_first_and_filters(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    for i in 0..5 {
        let e = upsert_event(
            "user.created",
            &format!("evt_{i}"),
            &format!("2026-11-22T10:0{i}:00Z"),
            &format!("rec{i}"),
            &format!("p{i}@example.com"),
        );
        assert_eq!(app.post_signed(&e).await.status(), StatusCode::OK);
    }
    let stale = upsert_event(
        "user.updated",
        "evt_old",
        "2026-11-21T00:00:00Z",
        "rec0",
        "p0@example.com",
    );
    assert_eq!(
        body(app.post_signed(&stale).await).await["outcome"],
        "stale"
    );
    let deleted = delete_event("evt_del", "2026-11-22T11:00:00Z", "rec1");
    assert_eq!(
        body(app.post_signed(&deleted).await).await["outcome"],
        "applied"
    );

    // Page through everything two at a time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/admin/events?limit=2&cursor={c}"),
            None => "/api/admin/events?limit=2".to_owned(),
        };
        let page = body(app.admin_get(&path).await).await;
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        seen.extend(
            events
                .iter()
                .map(|e| e["eventId"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = sqlx::query_scalar(
        "select event_id from inbound_events order by received_at desc, event_id desc",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(seen, expected);
    assert_eq!(seen.len(), 7);

    let ids = |v: Value| -> Vec<String> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["eventId"].as_str().unwrap().to_owned())
            .collect()
    };
    let stale_only = body(app.admin_get("/api/admin/events?status=stale").await).await;
    assert_eq!(ids(stale_only.clone()), vec!["evt_old"]);
    assert_eq!(stale_only["events"][0]["outcome"], "stale");
    assert_eq!(stale_only["events"][0]["source"], "webhook");
    let deletes = body(
        app.admin_get("/api/admin/events?eventType=user.deleted")
            .await,
    )
    .await;
    assert_eq!(ids(deletes), vec!["evt_del"]);
    let mut rec0 = ids(body(app.admin_get("/api/admin/events?userId=rec0").await).await);
    rec0.sort();
    assert_eq!(rec0, vec!["evt_0", "evt_old"]);
    // Time bounds are on receipt: everything was received before now.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let before = body(
        app.admin_get(&format!("/api/admin/events?until={now}"))
            .await,
    )
    .await;
    assert_eq!(before["events"].as_array().unwrap().len(), 7);
    let after = body(
        app.admin_get(&format!("/api/admin/events?since={now}"))
            .await,
    )
    .await;
    assert_eq!(after["events"], json!([]));
    assert_eq!(after["nextCursor"], Value::Null);
}

#[sqlx::test]
async fn bad_filters_and_cursors_are_400_with_a_clear_message(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    for (query, needle) in [
        (
            "status=duplicate",
            "status must be one of applied, stale, failed",
        ),
        ("eventType=user.renamed", "eventType"),
        ("userId=has%20space", "userId"),
        ("since=yesterday", "since must be an RFC 3339 timestamp"),
        (
            "until=2026-13-01T00:00:00Z",
            "until must be an RFC 3339 timestamp",
        ),
        ("limit=0", "limit must be a whole number from 1 to 500"),
        ("limit=501", "limit must be a whole number from 1 to 500"),
        ("limit=ten", "limit must be a whole number"),
        (
            "cursor=not-a-cursor",
            "cursor is not one this service issued",
        ),
        (
            "cursor=MTIzfGJhZCBpZA",
            "cursor is not one this service issued",
        ),
        (
            "cursor=123.bad%20id",
            "cursor is not one this service issued",
        ),
        (
            "cursor=12345678901234567.evt_1",
            "cursor is not one this service issued",
        ),
        ("statuss=failed", "unknown parameter statuss"),
    ] {
        let r = app.admin_get(&format!("/api/admin/events?{query}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let b = body(r).await;
        assert_eq!(b["error"], "bad_request", "{query}");
        assert!(
            b["detail"].as_str().unwrap().contains(needle),
            "{query}: {b}"
        );
    }
    for (path, needle) in [
        (
            "/api/admin/jobs?status=stuck",
            "status must be one of pending, running, done, dead",
        ),
        ("/api/admin/jobs?cursor=%21%21", "cursor"),
        ("/api/admin/jobs?limit=-3", "limit"),
        ("/api/admin/audit?limit=100000", "limit"),
        ("/api/admin/audit?cursor=eA", "cursor"),
        ("/api/admin/audit?actor=ops", "unknown parameter actor"),
        ("/api/admin/events/bad%20id", "eventId"),
        ("/api/admin/users/bad%20id", "user id"),
    ] {
        let r = app.admin_get(path).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let b = body(r).await;
        assert!(
            b["detail"].as_str().unwrap().contains(needle),
            "{path}: {b}"
        );
    }
    for path in ["/api/admin/events/evt_nope", "/api/admin/users/recNope"] {
        let r = app.admin_get(path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body(r).await, json!({"error": "not_found"}));
    }
}

#[sqlx::test]
async fn a_failed_event_replays_to_applied_once_the_cause_is_fixed(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    block_records(&db).await;
    let event = upsert_event(
        "user.created",
        "evt_blocked",
        "2026-11-22T10:00:00Z",
        "recBlocked1",
        "grace@example.com",
    );
    let r = app.post_signed(&event).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let b = body(r).await;
    assert_eq!(b["error"], "apply_failed");
    assert!(!b.to_string().contains("on hold"), "no internals: {b}");
    let (outcome, error, attempts): (String, Option<String>, i32) = sqlx::query_as(
        "select outcome, error, attempts from inbound_events where event_id = 'evt_blocked'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((outcome.as_str(), attempts), ("failed", 1));
    assert!(error.unwrap().contains("record recBlocked1 is on hold"));
    assert_eq!(db_state(&db).await.roster, Vec::<String>::new());
    assert_eq!(db_state(&db).await.jobs, vec![]);

    // The operator finds it...
    let failed = body(app.admin_get("/api/admin/events?status=failed").await).await;
    assert_eq!(failed["events"][0]["eventId"], "evt_blocked");
    assert!(failed["events"][0]["error"]
        .as_str()
        .unwrap()
        .contains("on hold"));
    // ...a redelivery while the cause remains fails again, and is counted...
    assert_eq!(
        app.post_signed(&event).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // ...a replay too, answered 200 with the outcome...
    let r = app
        .admin_post("/api/admin/events/evt_blocked/replay", None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["outcome"], "failed");
    // ...the cause is fixed, and the replay applies it.
    unblock_records(&db).await;
    let r = app
        .admin_post("/api/admin/events/evt_blocked/replay", None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        body(r).await,
        json!({"eventId": "evt_blocked", "userId": "recBlocked1", "outcome": "applied", "error": null})
    );
    let state = db_state(&db).await;
    assert_eq!(state.roster.len(), 1);
    assert!(state.roster[0].contains("grace@example.com"));
    assert_eq!(
        state.jobs,
        vec![("grace@example.com".into(), "pending".into())]
    );

    let detail = body(app.admin_get("/api/admin/events/evt_blocked").await).await;
    assert_eq!(detail["outcome"], "applied");
    assert_eq!(detail["error"], Value::Null);
    assert_eq!(detail["attempts"], 4);
    assert_eq!(detail["payload"], event);
    let replays: Vec<(&str, &str)> = detail["replays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["actor"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        replays,
        vec![("webhook", "failed"), ("ops", "failed"), ("ops", "applied")]
    );
    // A redelivery now is a plain duplicate.
    assert_eq!(
        body(app.post_signed(&event).await).await["outcome"],
        "duplicate"
    );
    assert_eq!(
        audit_rows(&db).await,
        vec![
            (
                "ops".into(),
                "event.replay".into(),
                Some("evt_blocked".into())
            ),
            (
                "ops".into(),
                "event.replay".into(),
                Some("evt_blocked".into())
            ),
        ]
    );
}

#[sqlx::test]
async fn replaying_an_event_older_than_the_roster_is_stale(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let old = upsert_event(
        "user.created",
        "evt_a",
        "2026-11-22T10:00:00Z",
        "recA",
        "ada@example.com",
    );
    let mut new = upsert_event(
        "user.updated",
        "evt_b",
        "2026-11-22T11:00:00Z",
        "recA",
        "ada@example.com",
    );
    new["user"]["name"] = json!("Ada King");
    app.post_signed(&old).await;
    app.post_signed(&new).await;
    let before = db_state(&db).await;
    let r = app.admin_post("/api/admin/events/evt_a/replay", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["outcome"], "stale");
    let after = db_state(&db).await;
    assert_eq!(after.roster, before.roster, "newest wins");
    assert!(after.roster[0].contains("Ada King"));
    assert_eq!(
        after.events,
        vec![
            ("evt_a".into(), "stale".into()),
            ("evt_b".into(), "applied".into())
        ]
    );
    // Unknown or malformed ids change nothing.
    let r = app
        .admin_post("/api/admin/events/evt_zzz/replay", None)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .admin_post("/api/admin/events/bad%20id/replay", None)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(db_state(&db).await, after);
    assert_eq!(audit_rows(&db).await.len(), 1);
}

#[sqlx::test]
async fn bulk_replay_dry_run_counts_right_and_changes_nothing(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    block_records(&db).await;
    // Three failed events: two for one record (the older one will be stale
    // once the newer applies, since replay runs in occurrence order) and
    // one for another record.
    let events = [
        upsert_event(
            "user.updated",
            "evt_2",
            "2026-11-22T12:00:00Z",
            "recBlockedA",
            "a@example.com",
        ),
        upsert_event(
            "user.created",
            "evt_1",
            "2026-11-22T11:00:00Z",
            "recBlockedA",
            "a@example.com",
        ),
        upsert_event(
            "user.created",
            "evt_3",
            "2026-11-22T10:00:00Z",
            "recBlockedB",
            "b@example.com",
        ),
    ];
    for e in &events {
        assert_eq!(
            app.post_signed(e).await.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    let ok = upsert_event(
        "user.created",
        "evt_ok",
        "2026-11-22T09:00:00Z",
        "recOk",
        "ok@example.com",
    );
    assert_eq!(app.post_signed(&ok).await.status(), StatusCode::OK);
    unblock_records(&db).await;
    let before = db_state(&db).await;
    let replays_before: i64 = sqlx::query_scalar("select count(*) from event_replays")
        .fetch_one(&db)
        .await
        .unwrap();

    let dry = app
        .admin_post(
            "/api/admin/events/replay",
            Some(&json!({"status": "failed", "dryRun": true})),
        )
        .await;
    assert_eq!(dry.status(), StatusCode::OK);
    // Occurrence order: evt_3 applies, evt_1 (11:00) applies, then evt_2
    // (12:00) applies over it. In receipt order evt_1 would have been stale.
    assert_eq!(
        body(dry).await,
        json!({"matched": 3, "replayed": 3, "dryRun": true,
               "outcomes": {"applied": 3, "stale": 0, "failed": 0}})
    );
    assert_eq!(db_state(&db).await, before, "a dry run changes nothing");
    let replays_after: i64 = sqlx::query_scalar("select count(*) from event_replays")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(replays_after, replays_before);
    assert!(audit_rows(&db).await.is_empty());

    // A limit replays the oldest first and says how many matched.
    let one = body(
        app.admin_post(
            "/api/admin/events/replay",
            Some(&json!({"status": "failed", "limit": 1})),
        )
        .await,
    )
    .await;
    assert_eq!(
        one,
        json!({"matched": 3, "replayed": 1, "dryRun": false,
               "outcomes": {"applied": 1, "stale": 0, "failed": 0}})
    );
    let outcome: String =
        sqlx::query_scalar("select outcome from inbound_events where event_id = 'evt_3'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(outcome, "applied");
    let rest = body(
        app.admin_post(
            "/api/admin/events/replay",
            Some(&json!({"status": "failed"})),
        )
        .await,
    )
    .await;
    assert_eq!(
        rest,
        json!({"matched": 2, "replayed": 2, "dryRun": false,
               "outcomes": {"applied": 2, "stale": 0, "failed": 0}})
    );
    let state = db_state(&db).await;
    assert!(
        state.events.iter().all(|(_, o)| o == "applied"),
        "{state:?}"
    );
    // Both again: evt_1 is older than the row, evt_2 no newer than it.
    let again = body(
        app.admin_post(
            "/api/admin/events/replay",
            Some(&json!({"userId": "recBlockedA"})),
        )
        .await,
    )
    .await;
    assert_eq!(
        again["outcomes"],
        json!({"applied": 0, "stale": 2, "failed": 0})
    );
    let audit = audit_rows(&db).await;
    assert_eq!(audit.len(), 3);
    assert!(audit
        .iter()
        .all(|(actor, action, _)| actor == "ops" && action == "events.replay"));
}

#[sqlx::test]
async fn bulk_replay_refuses_bad_bodies(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let url = app.url("/api/admin/events/replay");
    let post = |raw: Vec<u8>| {
        app.client
            .post(&url)
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(raw)
            .send()
    };
    for (raw, status, error, needle) in [
        (&b"{"[..], 400, "malformed_json", "EOF"),
        (b"[]", 400, "bad_request", "JSON object"),
        (b"{}", 400, "bad_request", "give at least one of"),
        (
            b"{\"status\":\"failed\",\"limit\":0}",
            400,
            "bad_request",
            "limit",
        ),
        (
            b"{\"status\":\"failed\",\"limit\":\"ten\"}",
            400,
            "bad_request",
            "invalid type",
        ),
        (
            b"{\"status\":\"failed\",\"dryrun\":true}",
            400,
            "bad_request",
            "unknown field",
        ),
        (
            b"{\"status\":\"nope\"}",
            400,
            "bad_request",
            "status must be one of",
        ),
    ] {
        let r = post(raw.to_vec()).await.unwrap();
        assert_eq!(
            r.status().as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(raw)
        );
        let b = body(r).await;
        assert_eq!(b["error"], error);
        assert!(b["detail"].as_str().unwrap().contains(needle), "{b}");
    }
    let big = format!(
        "{{\"status\":\"failed\",\"userId\":\"{}\"}}",
        "x".repeat(20_000)
    );
    let r = post(big.into_bytes()).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(audit_rows(&db).await.is_empty());
}

#[sqlx::test]
async fn user_view_and_provisioning_one_user(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    app.post_signed(&upsert_event(
        "user.created",
        "evt_1",
        "2026-11-22T10:00:00Z",
        "recA",
        "ada@example.com",
    ))
    .await;
    let view = body(app.admin_get("/api/admin/users/recA").await).await;
    assert_eq!(view["user"]["email"], "ada@example.com");
    assert_eq!(view["user"]["status"], "active");
    assert_eq!(view["user"]["roles"], json!(["admin", "reader"]));
    assert_eq!(view["auth"]["state"], "unlinked");
    assert_eq!(view["jobs"][0]["status"], "pending");
    assert_eq!(view["events"][0]["eventId"], "evt_1");

    let r = app
        .admin_post("/api/admin/users/recA/provision", None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        body(r).await,
        json!({"userId": "recA", "email": "ada@example.com", "action": "created"})
    );
    let again = body(
        app.admin_post("/api/admin/users/recA/provision", None)
            .await,
    )
    .await;
    assert_eq!(again["action"], "unchanged");
    let view = body(app.admin_get("/api/admin/users/recA").await).await;
    assert_eq!(view["auth"]["state"], "active");
    assert_eq!(view["auth"]["email"], "ada@example.com");
    assert_eq!(view["auth"]["userId"], view["user"]["authUserId"]);

    // A leaver is banned on demand, keeping the id.
    app.post_signed(&delete_event("evt_2", "2026-11-22T11:00:00Z", "recA"))
        .await;
    let off = body(
        app.admin_post("/api/admin/users/recA/provision", None)
            .await,
    )
    .await;
    assert_eq!(off["action"], "decommissioned");
    let view2 = body(app.admin_get("/api/admin/users/recA").await).await;
    assert_eq!(view2["auth"]["state"], "banned");
    assert_eq!(view2["auth"]["userId"], view["auth"]["userId"]);

    // A tombstone has nobody to provision; unknown ids are 404.
    app.post_signed(&delete_event("evt_3", "2026-11-22T11:00:00Z", "recGone"))
        .await;
    let r = app
        .admin_post("/api/admin/users/recGone/provision", None)
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(body(r).await["detail"]
        .as_str()
        .unwrap()
        .contains("no email"));
    let r = app
        .admin_post("/api/admin/users/recNope/provision", None)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let audit = audit_rows(&db).await;
    assert_eq!(
        audit,
        vec![
            ("ops".into(), "user.provision".into(), Some("recA".into())),
            ("ops".into(), "user.provision".into(), Some("recA".into())),
            ("ops".into(), "user.provision".into(), Some("recA".into())),
        ]
    );
}

#[sqlx::test]
async fn full_reconcile_reports_audits_and_runs_one_at_a_time(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    for (i, email) in ["a@example.com", "b@example.com"].iter().enumerate() {
        let e = upsert_event(
            "user.created",
            &format!("evt_{i}"),
            "2026-11-22T10:00:00Z",
            &format!("rec{i}"),
            email,
        );
        app.post_signed(&e).await;
    }
    let dry = body(
        app.admin_post("/api/admin/provision", Some(&json!({"dryRun": true})))
            .await,
    )
    .await;
    assert_eq!(dry["created"], 2);
    assert_eq!(dry["dryRun"], true);
    let accounts: i64 = sqlx::query_scalar("select count(*) from auth_accounts")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(accounts, 0, "a dry run creates nobody");
    assert!(audit_rows(&db).await.is_empty());

    // An empty body is a real run.
    let r = app
        .client
        .post(app.url("/api/admin/provision"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let real = body(r).await;
    assert_eq!(
        (real["created"].clone(), real["dryRun"].clone()),
        (json!(2), json!(false))
    );
    let second = body(
        app.admin_post("/api/admin/provision", Some(&json!({})))
            .await,
    )
    .await;
    assert_eq!(
        (second["unchanged"].clone(), second["created"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(
        audit_rows(&db).await,
        vec![
            ("ops".into(), "provision.reconcile".into(), None),
            ("ops".into(), "provision.reconcile".into(), None),
        ]
    );

    // While another process reconciles, a second one is refused.
    let mut other = db.begin().await.unwrap();
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(0x726f_7374_6572_6401_i64)
        .execute(&mut *other)
        .await
        .unwrap();
    let r = app
        .admin_post("/api/admin/provision", Some(&json!({})))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(body(r).await["detail"]
        .as_str()
        .unwrap()
        .contains("already running"));
    other.rollback().await.unwrap();

    let r = app
        .admin_post("/api/admin/provision", Some(&json!({"dryRun": "yes"})))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(audit_rows(&db).await.len(), 2);
}

#[sqlx::test]
async fn jobs_list_and_retry_of_a_dead_job(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    for (i, email) in ["a@example.com", "b@example.com", "c@example.com"]
        .iter()
        .enumerate()
    {
        let e = upsert_event(
            "user.created",
            &format!("evt_{i}"),
            "2026-11-22T10:00:00Z",
            &format!("rec{i}"),
            email,
        );
        app.post_signed(&e).await;
    }
    // One job died (as after a permanent provider error), one is done.
    sqlx::query("update provisioning_jobs set state = 'dead', attempts = 12, last_error = 'permanent provider error: 400' where email = 'a@example.com'")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("update provisioning_jobs set state = 'done' where email = 'b@example.com'")
        .execute(&db)
        .await
        .unwrap();
    let dead = body(app.admin_get("/api/admin/jobs?status=dead").await).await;
    let jobs = dead["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["email"], "a@example.com");
    assert_eq!(jobs[0]["attempts"], 12);
    let dead_id = jobs[0]["id"].as_i64().unwrap();
    let all = body(app.admin_get("/api/admin/jobs?limit=2").await).await;
    assert_eq!(all["jobs"].as_array().unwrap().len(), 2);
    let rest = body(
        app.admin_get(&format!(
            "/api/admin/jobs?limit=2&cursor={}",
            all["nextCursor"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    assert_eq!(rest["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(rest["nextCursor"], Value::Null);

    let r = app
        .admin_post(&format!("/api/admin/jobs/{dead_id}/retry"), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let job = body(r).await;
    assert_eq!(
        (job["status"].clone(), job["attempts"].clone()),
        (json!("pending"), json!(0))
    );
    // Not dead any more: a second retry is a conflict and changes nothing.
    let before = db_state(&db).await;
    let r = app
        .admin_post(&format!("/api/admin/jobs/{dead_id}/retry"), None)
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(body(r).await["detail"]
        .as_str()
        .unwrap()
        .contains("only dead jobs"));
    // A dead job whose person already has a queued job is not revived.
    sqlx::query("update provisioning_jobs set state = 'dead' where email = 'c@example.com'")
        .execute(&db)
        .await
        .unwrap();
    let c_id: i64 =
        sqlx::query_scalar("select id from provisioning_jobs where email = 'c@example.com'")
            .fetch_one(&db)
            .await
            .unwrap();
    app.post_signed(&upsert_event(
        "user.updated",
        "evt_c2",
        "2026-11-22T11:00:00Z",
        "rec2",
        "c@example.com",
    ))
    .await;
    let r = app
        .admin_post(&format!("/api/admin/jobs/{c_id}/retry"), None)
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(body(r).await["detail"]
        .as_str()
        .unwrap()
        .contains("already queued"));
    for (path, status) in [
        ("/api/admin/jobs/999999/retry", StatusCode::NOT_FOUND),
        ("/api/admin/jobs/abc/retry", StatusCode::BAD_REQUEST),
        ("/api/admin/jobs/-1/retry", StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(app.admin_post(path, None).await.status(), status, "{path}");
    }
    let after = db_state(&db).await;
    assert_eq!(after.events.len(), before.events.len() + 1);
    assert_eq!(
        audit_rows(&db).await,
        vec![("ops".into(), "job.retry".into(), Some(dead_id.to_string()))]
    );
}

#[sqlx::test]
async fn audit_log_pages_newest_first(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    app.post_signed(&upsert_event(
        "user.created",
        "evt_1",
        "2026-11-22T10:00:00Z",
        "recA",
        "ada@example.com",
    ))
    .await;
    for _ in 0..3 {
        app.admin_post("/api/admin/events/evt_1/replay", None).await;
    }
    app.admin_post("/api/admin/users/recA/provision", None)
        .await;
    let first = body(app.admin_get("/api/admin/audit?limit=3").await).await;
    let entries = first["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["action"], "user.provision");
    assert_eq!(entries[0]["actor"], "ops");
    assert_eq!(entries[0]["target"], "recA");
    assert_eq!(entries[0]["details"]["action"], "created");
    assert_eq!(entries[1]["action"], "event.replay");
    assert_eq!(entries[1]["details"]["outcome"], "stale");
    let next = first["nextCursor"].as_str().unwrap();
    let second = body(
        app.admin_get(&format!("/api/admin/audit?cursor={next}"))
            .await,
    )
    .await;
    assert_eq!(second["entries"].as_array().unwrap().len(), 1);
    assert_eq!(second["nextCursor"], Value::Null);
    assert!(second["entries"][0]["id"].as_i64() < entries[2]["id"].as_i64());
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn replay_cli(url: &str, args: &[&str]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("replay")
        .args(args)
        .env_clear()
        .env("DATABASE_URL", url)
        .env("ROLE_MAP", "admins=admin")
        .env("ROLE_DEFAULTS", "reader")
        .env("USER", "night-shift")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        out: String::from_utf8(out.stdout).unwrap(),
        err: String::from_utf8(out.stderr).unwrap(),
    }
}

#[sqlx::test]
async fn cli_replay_by_id_and_by_status(
    _p: sqlx::postgres::PgPoolOptions,
    opts: sqlx::postgres::PgConnectOptions,
) {
    let db = sqlx::postgres::PgPoolOptions::new()
        .connect_with(opts.clone())
        .await
        .unwrap();
    rosterd::db::MIGRATOR.run(&db).await.unwrap();
    let url = url_of(&opts);
    let app = TestApp::spawn(db.clone()).await;
    block_records(&db).await;
    for (id, rec) in [("evt_1", "recBlocked1"), ("evt_2", "recBlocked2")] {
        let e = upsert_event(
            "user.created",
            id,
            "2026-11-22T10:00:00Z",
            rec,
            &format!("{rec}@example.com"),
        );
        assert_eq!(
            app.post_signed(&e).await.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    // Usage errors: exit 2, one line, nothing changed.
    let before = db_state(&db).await;
    for (args, needle) in [
        (&[][..], "give an event id, or a filter"),
        (&["--status", "broken"][..], "status must be one of"),
        (
            &["--since", "last tuesday"][..],
            "since must be an RFC 3339",
        ),
        (&["evt_1", "--status", "failed"][..], "cannot be used with"),
    ] {
        let r = replay_cli(&url, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.err);
        assert!(r.err.contains(needle), "{args:?}: {}", r.err);
        assert_eq!(r.err.trim_end().lines().count(), 1, "{}", r.err);
    }
    let r = replay_cli(&url, &["evt_nope"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("no such stored event"), "{}", r.err);
    // Still blocked: the replay fails again, and says so.
    let r = replay_cli(&url, &["evt_1"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.out.contains("evt_1: failed"), "{}", r.out);
    assert!(r.out.contains("on hold"), "{}", r.out);
    let mut after = db_state(&db).await;
    assert_eq!(after.roster, before.roster);
    after.events.sort();
    assert_eq!(after.events, before.events);

    unblock_records(&db).await;
    let dry = replay_cli(&url, &["--status", "failed", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.err);
    assert!(
        dry.out.contains("matched: 2") && dry.out.contains("applied: 2"),
        "{}",
        dry.out
    );
    assert!(dry.out.contains("dry run"), "{}", dry.out);
    assert_eq!(db_state(&db).await.roster, before.roster);

    let one = replay_cli(&url, &["evt_1"]);
    assert_eq!(
        (one.code, one.out.trim()),
        (0, "evt_1: applied"),
        "{}",
        one.err
    );
    let rest = replay_cli(
        &url,
        &[
            "--status",
            "failed",
            "--since",
            "2000-01-01T00:00:00Z",
            "--json",
        ],
    );
    assert_eq!(rest.code, 0, "{}", rest.err);
    let report: Value = serde_json::from_str(&rest.out).unwrap();
    assert_eq!(
        report,
        json!({"matched": 1, "replayed": 1, "dryRun": false,
               "outcomes": {"applied": 1, "stale": 0, "failed": 0}})
    );
    assert_eq!(db_state(&db).await.roster.len(), 2);
    let audit = audit_rows(&db).await;
    assert_eq!(
        audit,
        vec![
            (
                "cli:night-shift".into(),
                "event.replay".into(),
                Some("evt_1".into())
            ),
            (
                "cli:night-shift".into(),
                "event.replay".into(),
                Some("evt_1".into())
            ),
            ("cli:night-shift".into(), "events.replay".into(), None),
        ]
    );
}

/// The listings' optional filters are planned per call (a generic plan
/// cannot use the index a filter needs), and only inside their own
/// transaction: ingest keeps its cached plans.
#[sqlx::test]
async fn listings_are_planned_for_their_own_filters_only(db: PgPool) {
    let db = PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*db.connect_options()).clone())
        .await
        .unwrap();
    let mut tx = rosterd::db::planned_per_call(&db).await.unwrap();
    assert_eq!(plan_cache_mode(&mut tx).await, "force_custom_plan");
    tx.commit().await.unwrap();
    // The pool's one connection, after the transaction.
    let mut conn = db.acquire().await.unwrap();
    assert_eq!(plan_cache_mode(&mut conn).await, "auto");
}

async fn plan_cache_mode(conn: &mut sqlx::PgConnection) -> String {
    sqlx::query_scalar("select current_setting('plan_cache_mode')")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// A word the code does not know, in a column without a CHECK (as a newer
/// release could write it), is a decode error: never a guessed value.
#[sqlx::test]
async fn an_unknown_stored_word_is_an_error_not_a_default(db: PgPool) {
    sqlx::query(
        "insert into provisioning_jobs (email, state, last_action)
         values ('a@example.com', 'dead', 'archived')",
    )
    .execute(&db)
    .await
    .unwrap();
    match rosterd::admin::jobs::for_email(&db, "a@example.com").await {
        Err(sqlx::Error::ColumnDecode { source, .. }) => {
            assert!(source.to_string().contains("\"archived\""), "{source}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}
