//! One test per row of docs/contract.md §4's table: status, body, and what the
//! database holds afterwards.

use crate::helpers::*;
use serde_json::{json, Value};
use sqlx::PgPool;

const AT: &str = "2026-11-22T10:00:00Z";

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.expect("a JSON body")
}

#[sqlx::test]
async fn applied_writes_event_roster_row_and_one_job(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let ev = upsert_event("user.created", "evt_1", AT, "recA", "  Ada@Example.COM ");
    let resp = app.post_signed(&ev).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        body(resp).await,
        json!({"eventId": "evt_1", "outcome": "applied", "userId": "recA"})
    );

    let row: (String, String, Vec<String>, Vec<String>) =
        sqlx::query_as("select email, status, groups, roles from roster where id = 'recA'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(row.0, "ada@example.com");
    assert_eq!(row.1, "active");
    assert_eq!(row.2, ["engineering", "admins"]);
    assert_eq!(row.3, ["admin", "reader"]);
    let state = db_state(&app.db).await;
    assert_eq!(state.events, [("evt_1".into(), "applied".into())]);
    assert_eq!(state.jobs, [("ada@example.com".into(), "pending".into())]);
    let source: String = sqlx::query_scalar("select source from inbound_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(source, "webhook");
}

#[sqlx::test]
async fn duplicate_same_body_changes_nothing(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let ev = upsert_event("user.created", "evt_1", AT, "recA", "ada@example.com");
    assert_eq!(app.post_signed(&ev).await.status(), 200);
    let before = db_state(&app.db).await;

    // Same JSON, different formatting: still the same body.
    let pretty = serde_json::to_vec_pretty(&ev).unwrap();
    let resp = app
        .post_inbound(
            &pretty,
            &[("x-signature", plain_signature(SECRET, &pretty))],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        body(resp).await,
        json!({"eventId": "evt_1", "outcome": "duplicate", "userId": "recA"})
    );
    assert_eq!(db_state(&app.db).await, before);
}

#[sqlx::test]
async fn stale_event_is_stored_not_applied(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let newer = upsert_event(
        "user.updated",
        "evt_2",
        "2026-11-22T11:00:00Z",
        "recA",
        "new@example.com",
    );
    let older = upsert_event("user.updated", "evt_1", AT, "recA", "old@example.com");
    assert_eq!(
        body(app.post_signed(&newer).await).await["outcome"],
        "applied"
    );
    let roster_before = db_state(&app.db).await.roster;

    let resp = app.post_signed(&older).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        body(resp).await,
        json!({"eventId": "evt_1", "outcome": "stale", "userId": "recA"})
    );
    let state = db_state(&app.db).await;
    assert_eq!(state.roster, roster_before);
    assert_eq!(
        state.events,
        [
            ("evt_1".into(), "stale".into()),
            ("evt_2".into(), "applied".into())
        ]
    );
    assert_eq!(state.jobs, [("new@example.com".into(), "pending".into())]);
}

#[sqlx::test]
async fn same_event_id_different_body_is_409(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let ev = upsert_event("user.created", "evt_1", AT, "recA", "ada@example.com");
    assert_eq!(app.post_signed(&ev).await.status(), 200);
    let before = db_state(&app.db).await;

    let other = upsert_event("user.created", "evt_1", AT, "recA", "eve@example.com");
    let resp = app.post_signed(&other).await;
    assert_eq!(resp.status(), 409);
    assert_eq!(body(resp).await, json!({"error": "event_id_conflict"}));
    assert_eq!(db_state(&app.db).await, before);
}

#[sqlx::test]
async fn bad_signature_is_401_without_detail(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let raw =
        serde_json::to_vec(&upsert_event("user.created", "evt_1", AT, "recA", "a@x.io")).unwrap();
    for headers in [
        vec![],
        vec![(
            "x-signature",
            plain_signature("some-other-secret-0000", &raw),
        )],
        vec![("x-signature", "sha256=zz".to_string())],
    ] {
        let resp = app.post_inbound(&raw, &headers).await;
        assert_eq!(resp.status(), 401);
        assert_eq!(body(resp).await, json!({"error": "invalid_signature"}));
    }
    assert_eq!(db_state(&app.db).await, empty());
}

#[sqlx::test]
async fn body_not_json_is_400(db: PgPool) {
    let app = TestApp::spawn(db).await;
    for raw in [&b"{\"eventId\": "[..], b"not json", b"", b"\xff\xfe"] {
        let resp = app
            .post_inbound(raw, &[("x-signature", plain_signature(SECRET, raw))])
            .await;
        assert_eq!(resp.status(), 400, "{raw:?}");
        let b = body(resp).await;
        assert_eq!(b["error"], "malformed_json");
        assert!(b["detail"].as_str().is_some_and(|d| !d.is_empty()), "{b}");
    }
    assert_eq!(db_state(&app.db).await, empty());
}

#[sqlx::test]
async fn rule_violations_are_422_with_every_field(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let ev = json!({
        "eventId": "evt 1",
        "eventType": "user.created",
        "occurredAt": "yesterday",
        "user": {"id": "recA", "email": "nope", "groups": "admins"}
    });
    let resp = app.post_signed(&ev).await;
    assert_eq!(resp.status(), 422);
    let b = body(resp).await;
    assert_eq!(b["error"], "validation_failed");
    let fields: Vec<&str> = b["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["eventId", "occurredAt", "user.email", "user.groups"]
    );
    assert!(b["fields"][0]["message"].as_str().is_some());

    for not_an_event in [json!([1, 2]), json!({"eventId": "e"}), json!("x")] {
        let resp = app.post_signed(&not_an_event).await;
        assert_eq!(resp.status(), 422, "{not_an_event}");
    }
    assert_eq!(db_state(&app.db).await, empty());
}

#[sqlx::test]
async fn oversized_body_is_413(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let mut ev = upsert_event("user.created", "evt_1", AT, "recA", "a@x.io");
    ev["padding"] = json!("x".repeat(64 * 1024));
    let resp = app.post_signed(&ev).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(body(resp).await, json!({"error": "payload_too_large"}));
    assert_eq!(db_state(&app.db).await, empty());

    // The limit is configurable, and a body just under it is fine.
    let small = TestApp::spawn_with(app.db.clone(), |c| c.max_body_bytes = 400).await;
    let ev = upsert_event("user.created", "evt_1", AT, "recA", "a@x.io");
    assert!(serde_json::to_vec(&ev).unwrap().len() < 400);
    assert_eq!(small.post_signed(&ev).await.status(), 200);
    let mut big = ev.clone();
    big["padding"] = json!("x".repeat(400));
    assert_eq!(small.post_signed(&big).await.status(), 413);
}

#[sqlx::test]
async fn disabled_webhook_is_404(db: PgPool) {
    let app = TestApp::spawn_with(db, |c| c.webhook_enabled = false).await;
    let resp = app
        .post_signed(&upsert_event("user.created", "evt_1", AT, "recA", "a@x.io"))
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(body(resp).await, json!({"error": "not_found"}));
    assert_eq!(db_state(&app.db).await, empty());
}

#[sqlx::test]
async fn unreachable_database_is_503_with_retry_after(_db: PgPool) {
    // Nothing listens on port 1.
    let dead = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect_lazy("postgres://rosterd@127.0.0.1:1/rosterd")
        .unwrap();
    let app = TestApp::spawn(dead).await;
    let resp = app
        .post_signed(&upsert_event("user.created", "evt_1", AT, "recA", "a@x.io"))
        .await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(body(resp).await, json!({"error": "unavailable"}));
}

#[sqlx::test]
async fn connection_lost_mid_transaction_is_503_and_writes_nothing(db: PgPool) {
    // The roster write kills its own connection: the event row inserted
    // just before it in the same transaction must not survive.
    sqlx::raw_sql(
        "create function die() returns trigger language plpgsql as
           $$ begin perform pg_terminate_backend(pg_backend_pid()); return new; end $$;
         create trigger die before insert on roster for each row execute function die();",
    )
    .execute(&db)
    .await
    .unwrap();
    let app = TestApp::spawn(db).await;
    let resp = app
        .post_signed(&upsert_event("user.created", "evt_1", AT, "recA", "a@x.io"))
        .await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(body(resp).await, json!({"error": "unavailable"}));
    assert_eq!(db_state(&app.db).await, empty());
}

#[sqlx::test]
async fn delete_before_create_and_tombstones(db: PgPool) {
    let app = TestApp::spawn(db).await;
    // A delete for an id nobody has seen leaves a tombstone and no job.
    let del = delete_event("evt_2", "2026-11-22T11:00:00Z", "recA");
    assert_eq!(
        body(app.post_signed(&del).await).await["outcome"],
        "applied"
    );
    let state = db_state(&app.db).await;
    assert_eq!(state.roster.len(), 1);
    assert!(state.jobs.is_empty());

    // The older create arrives late: stale, but it fills the profile.
    let create = upsert_event("user.created", "evt_1", AT, "recA", "ada@example.com");
    assert_eq!(
        body(app.post_signed(&create).await).await["outcome"],
        "stale"
    );
    let (email, status): (String, String) =
        sqlx::query_as("select email, status from roster where id = 'recA'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        (email.as_str(), status.as_str()),
        ("ada@example.com", "deleted")
    );
    assert_eq!(
        db_state(&app.db).await.jobs,
        [("ada@example.com".into(), "pending".into())]
    );
}

#[sqlx::test]
async fn email_move_queues_both_people_once(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let a = upsert_event("user.created", "evt_1", AT, "recA", "old@example.com");
    let b = upsert_event(
        "user.updated",
        "evt_2",
        "2026-11-22T10:05:00Z",
        "recA",
        "new@example.com",
    );
    let c = upsert_event(
        "user.updated",
        "evt_3",
        "2026-11-22T10:06:00Z",
        "recA",
        "new@example.com",
    );
    for ev in [&a, &b, &c] {
        assert_eq!(app.post_signed(ev).await.status(), 200);
    }
    // Coalesced: one pending job per person however many events touched it.
    assert_eq!(
        db_state(&app.db).await.jobs,
        [
            ("new@example.com".into(), "pending".into()),
            ("old@example.com".into(), "pending".into())
        ]
    );
}

#[sqlx::test]
async fn two_live_rows_with_one_email_are_a_conflict_not_a_refusal(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let a = upsert_event("user.created", "evt_1", AT, "recA", "ada@example.com");
    let b = upsert_event(
        "user.created",
        "evt_2",
        "2026-11-22T10:01:00Z",
        "recB",
        "ada@example.com",
    );
    assert_eq!(body(app.post_signed(&a).await).await["outcome"], "applied");
    assert_eq!(body(app.post_signed(&b).await).await["outcome"], "applied");

    let mut conn = app.db.acquire().await.unwrap();
    let conflicts = rosterd::roster::store::email_conflicts(&mut conn)
        .await
        .unwrap();
    assert_eq!(conflicts, [("ada@example.com".to_string(), 2)]);
    let email = rosterd::event::Email::parse("ada@example.com").unwrap();
    let holder = rosterd::roster::store::holder_of(&mut conn, &email)
        .await
        .unwrap();
    assert_eq!(
        holder.unwrap().as_str(),
        "recB",
        "the newest live row holds the email"
    );
}

fn empty() -> DbState {
    DbState {
        events: vec![],
        roster: vec![],
        jobs: vec![],
    }
}
