//! `docs/airtable-automation.js`, run by Node in a context that holds only
//! what Airtable's "Run a script" sandbox offers (`tests/node/run-automation.mjs`),
//! against the real service: the event it signs lands, with WebCrypto and
//! with the embedded HMAC, and a refusal fails the run.

use crate::helpers::*;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::VecDeque;
use std::process::Command;
use std::sync::{Arc, Mutex};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/airtable-automation.js");
const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/run-automation.mjs");
/// A hung script or harness is killed, and the test fails, after this.
const DEADLINE_SECS: &str = "60";
const RECORD: &str = "recA1b2C3d4E5f6G7";

/// What one run of the script reported.
struct Run {
    ok: bool,
    output: Value,
    error: String,
    /// Everything Node and the script printed, for "the secret never
    /// appears" checks and for failure messages.
    printed: String,
}

/// Runs the harness under coreutils `timeout`, on a blocking thread so the
/// in-process service keeps answering.
async fn node(args: Vec<String>, input: &Value) -> Run {
    let input = input.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args(["--kill-after=5", DEADLINE_SECS, "node", HARNESS, SCRIPT])
            .args(&args)
            .env("AIRTABLE_INPUT", input)
            .output()
            .expect("coreutils timeout runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(124) | Some(137) | None => panic!("node did not finish within {DEADLINE_SECS} s\n{stderr}"),
        Some(126) | Some(127) => panic!(
            "cannot run node ({stderr}); `make test` (scripts/test.sh) installs it, or install Node.js 18+"
        ),
        _ => {}
    }
    let line = stdout.lines().last().unwrap_or_default();
    let report: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("harness printed no JSON ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(
        out.status.success(),
        report["ok"] == true,
        "exit status agrees with the report: {stdout}"
    );
    Run {
        ok: report["ok"] == true,
        output: report["output"].clone(),
        error: report["error"].as_str().unwrap_or_default().to_owned(),
        printed: format!("{stdout}{stderr}"),
    }
}

async fn run_script(sandbox: &str, input: &Value) -> Run {
    let run = node(vec!["--sandbox".into(), sandbox.into()], input).await;
    let secret = input["secret"].as_str().unwrap();
    assert!(
        !run.printed.contains(secret),
        "the secret was printed:\n{}",
        run.printed
    );
    run
}

/// The input variables an automation on a people table would map.
fn inputs(url: &str, secret: &str) -> Value {
    json!({
        "rosterdUrl": url,
        "secret": secret,
        "recordId": RECORD,
        "occurredAt": "2026-11-22T10:00:00.000Z",
        "email": "Ada@Example.com",
        "name": "Ada Lovelace",
        "status": "Active",
        "groups": ["engineering", "admins"],
    })
}

async fn roster_row(db: &PgPool) -> (String, Option<String>, String, Vec<String>) {
    sqlx::query_as("select email, name, status, groups from roster where id = $1")
        .bind(RECORD)
        .fetch_one(db)
        .await
        .expect("the record is in the roster")
}

async fn stored_event(db: &PgPool, event_id: &str) -> (String, String) {
    sqlx::query_as("select outcome, source from inbound_events where event_id = $1")
        .bind(event_id)
        .fetch_one(db)
        .await
        .expect("the event is stored")
}

#[sqlx::test]
async fn event_signed_with_webcrypto_lands_and_a_rerun_is_a_duplicate(db: PgPool) {
    let app = TestApp::spawn(db).await;
    // A base URL: the script appends the inbound path.
    let input = inputs(&app.url("/"), SECRET);

    let run = run_script("full", &input).await;
    assert!(run.ok, "{}", run.error);
    let event_id = format!("airtable:{RECORD}:updated:2026-11-22T10:00:00.000Z");
    assert_eq!(
        run.output,
        json!({"outcome": "applied", "eventId": event_id, "httpStatus": 200,
               "attempts": 1, "hmac": "webcrypto"})
    );
    assert_eq!(
        stored_event(&app.db, &event_id).await,
        ("applied".into(), "webhook".into())
    );
    assert_eq!(
        roster_row(&app.db).await,
        (
            "ada@example.com".into(),
            Some("Ada Lovelace".into()),
            "active".into(),
            vec!["engineering".into(), "admins".into()]
        )
    );
    let before = db_state(&app.db).await;

    // Airtable re-running the automation for the same change.
    let again = run_script("full", &input).await;
    assert!(again.ok, "{}", again.error);
    assert_eq!(again.output["outcome"], "duplicate");
    assert_eq!(again.output["eventId"], event_id.as_str());
    assert_eq!(db_state(&app.db).await, before);
}

#[sqlx::test]
async fn event_signed_by_the_embedded_hmac_lands_when_there_is_no_subtle(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let mut input = inputs(&app.url("/api/sync/users/inbound"), SECRET);
    // Non-ASCII text is signed as the UTF-8 bytes sent; groups as a text field.
    input["name"] = json!("Zoë Ångström 李 👩‍💻");
    input["groups"] = json!(" engineering, admins ,");
    input["eventType"] = json!("created");

    let run = run_script("no-subtle", &input).await;
    assert!(run.ok, "{}", run.error);
    assert_eq!(run.output["hmac"], "embedded");
    assert_eq!(run.output["outcome"], "applied");
    let event_id = format!("airtable:{RECORD}:created:2026-11-22T10:00:00.000Z");
    assert_eq!(run.output["eventId"], event_id.as_str());
    assert_eq!(stored_event(&app.db, &event_id).await.0, "applied");
    let (email, name, status, groups) = roster_row(&app.db).await;
    assert_eq!(email, "ada@example.com");
    assert_eq!(name.as_deref(), Some("Zoë Ångström 李 👩‍💻"));
    assert_eq!(status, "active");
    assert_eq!(groups, ["engineering", "admins"]);

    let again = run_script("no-subtle", &input).await;
    assert_eq!(again.output["outcome"], "duplicate", "{}", again.error);
}

#[sqlx::test]
async fn bare_sandbox_with_a_whsec_secret_creates_then_deletes(db: PgPool) {
    let app = TestApp::spawn(db).await;
    // No crypto, TextEncoder, timers or AbortController at all.
    let mut input = inputs(&app.url(""), WHSEC);
    let run = run_script("bare", &input).await;
    assert!(run.ok, "{}", run.error);
    assert_eq!(run.output["hmac"], "embedded");
    assert_eq!(run.output["outcome"], "applied");

    // Status "Deleted" sends user.deleted; the offset is normalised to UTC.
    input["status"] = json!("Deleted");
    input["occurredAt"] = json!("2026-11-22T12:30:00+01:00");
    let run = run_script("bare", &input).await;
    assert!(run.ok, "{}", run.error);
    let event_id = format!("airtable:{RECORD}:deleted:2026-11-22T11:30:00.000Z");
    assert_eq!(run.output["eventId"], event_id.as_str());
    assert_eq!(run.output["outcome"], "applied");
    assert_eq!(stored_event(&app.db, &event_id).await.0, "applied");
    assert_eq!(roster_row(&app.db).await.2, "deleted");
}

#[sqlx::test]
async fn wrong_secret_fails_the_run_and_nothing_lands(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let before = db_state(&app.db).await;
    for sandbox in ["full", "no-subtle"] {
        let run = run_script(sandbox, &inputs(&app.url("/"), "another-secret-0123456789")).await;
        assert!(!run.ok, "{sandbox}");
        assert!(
            run.error.contains("rosterd answered 401 invalid_signature"),
            "{sandbox}: {}",
            run.error
        );
        assert_eq!(run.output, json!({}), "{sandbox}: no outcome is output");
    }
    assert_eq!(db_state(&app.db).await, before);
    assert!(before.events.is_empty() && before.roster.is_empty());
}

#[sqlx::test]
async fn bad_inputs_fail_the_run_naming_the_field(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let before = db_state(&app.db).await;

    // Checked by rosterd: the 422 names the field.
    let mut input = inputs(&app.url("/"), SECRET);
    input["email"] = json!("not-an-email");
    let run = run_script("full", &input).await;
    assert!(!run.ok);
    assert!(
        run.error.contains("422 validation_failed: user.email"),
        "{}",
        run.error
    );

    // Checked by the script before anything is sent.
    let mut input = inputs(&app.url("/"), SECRET);
    input["occurredAt"] = json!("2026-11-22 10:00");
    let run = run_script("full", &input).await;
    assert!(!run.ok);
    assert!(run.error.contains("\"occurredAt\""), "{}", run.error);
    let mut input = inputs(&app.url("/"), SECRET);
    input.as_object_mut().unwrap().remove("recordId");
    let run = run_script("full", &input).await;
    assert!(
        run.error.contains("\"recordId\" is missing"),
        "{}",
        run.error
    );

    assert_eq!(db_state(&app.db).await, before);
}

/// A stand-in for rosterd that answers from a script (the last answer
/// repeats) and records every request.
#[derive(Clone)]
struct Upstream {
    answers: Arc<Mutex<VecDeque<(u16, Value)>>>,
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Upstream {
    async fn spawn(answers: Vec<(u16, Value)>) -> (String, Self) {
        let up = Self {
            answers: Arc::new(Mutex::new(answers.into())),
            seen: Arc::default(),
        };
        let app = axum::Router::new().route(
            "/api/sync/users/inbound",
            axum::routing::post({
                let up = up.clone();
                move |headers: HeaderMap, body: Bytes| async move { up.answer(headers, body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, up)
    }

    fn answer(&self, headers: HeaderMap, body: Bytes) -> axum::response::Response {
        self.seen.lock().unwrap().push((headers, body));
        let mut answers = self.answers.lock().unwrap();
        let (status, body) = if answers.len() > 1 {
            answers.pop_front().unwrap()
        } else {
            answers[0].clone()
        };
        let status = StatusCode::from_u16(status).unwrap();
        // Retry-After: 0 keeps the test fast; the script still waits on it.
        ([("retry-after", "0")], (status, axum::Json(body))).into_response()
    }

    fn seen(&self) -> Vec<(HeaderMap, Bytes)> {
        self.seen.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn transient_refusals_are_retried_with_the_same_signed_bytes() {
    let (url, up) = Upstream::spawn(vec![
        (503, json!({"error": "unavailable"})),
        (429, json!({"error": "rate_limited"})),
        (
            200,
            json!({"eventId": "x", "outcome": "applied", "userId": RECORD}),
        ),
    ])
    .await;
    let run = run_script("full", &inputs(&url, SECRET)).await;
    assert!(run.ok, "{}", run.error);
    assert_eq!(run.output["attempts"], 3);
    assert_eq!(run.output["outcome"], "applied");

    let seen = up.seen();
    assert_eq!(seen.len(), 3);
    let (headers, body) = &seen[0];
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["x-signature"].to_str().unwrap(),
        plain_signature(SECRET, body),
        "signed with the plain scheme over the exact bytes sent"
    );
    for (h, b) in &seen[1..] {
        assert_eq!(b, body);
        assert_eq!(h["x-signature"], headers["x-signature"]);
    }
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        event,
        json!({
            "eventId": format!("airtable:{RECORD}:updated:2026-11-22T10:00:00.000Z"),
            "eventType": "user.updated",
            "occurredAt": "2026-11-22T10:00:00.000Z",
            "user": {"id": RECORD, "email": "Ada@Example.com", "name": "Ada Lovelace",
                     "status": "active", "groups": ["engineering", "admins"]}
        })
    );
}

#[tokio::test]
async fn lasting_unavailability_gives_up_after_three_attempts() {
    let (url, up) = Upstream::spawn(vec![(503, json!({"error": "unavailable"}))]).await;
    let run = run_script("bare", &inputs(&url, SECRET)).await;
    assert!(!run.ok);
    assert!(
        run.error
            .contains("rosterd answered 503 unavailable; gave up after 3 attempts"),
        "{}",
        run.error
    );
    assert_eq!(up.seen().len(), 3);
}

#[tokio::test]
async fn a_refusal_that_is_not_transient_is_not_retried() {
    let (url, up) = Upstream::spawn(vec![(409, json!({"error": "event_id_conflict"}))]).await;
    let run = run_script("full", &inputs(&url, SECRET)).await;
    assert!(!run.ok);
    assert!(
        run.error.contains("409 event_id_conflict") && run.error.contains("Last modified time"),
        "{}",
        run.error
    );
    assert_eq!(up.seen().len(), 1);
}

#[tokio::test]
async fn embedded_hmac_matches_rfc_4231_webcrypto_and_node_crypto() {
    let run = node(vec!["--selftest".into()], &json!({})).await;
    assert!(run.ok, "{}", run.printed);
}
