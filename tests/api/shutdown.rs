//! SIGTERM while a slow request is in flight: the request completes, the
//! process exits 0.

use crate::gotrue::{self, GoTrue};
use crate::helpers::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::process::{Command, Stdio};
use std::time::Duration;

#[sqlx::test]
async fn sigterm_lets_the_request_in_flight_finish(_p: PgPoolOptions, opts: PgConnectOptions) {
    let db = migrated(&opts).await;
    let h = crate::provisioning::Harness::local(db.clone());
    h.apply(&upsert_event(
        "user.created",
        "evt_1",
        "2026-11-22T10:00:00Z",
        "recA",
        "ada@x.io",
    ))
    .await;
    // The lookup will provision inline against a provider that takes 1.5 s.
    let g = GoTrue::start().await;
    g.set_latency(Duration::from_millis(1500));
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", url_of(&opts))
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("AIRTABLE_USER_SYNC_SECRET", SECRET)
        .env("LOGIN_API_TOKENS", LOGIN_TOKEN)
        .env("AUTH_PROVIDER", "supabase")
        .env("SUPABASE_URL", g.url())
        .env("SUPABASE_SERVICE_ROLE_KEY", gotrue::KEY)
        .env("WORKER_ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &base).await;

    let request = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/api/users/lookup?email=ada@x.io");
        async move { client.get(url).bearer_auth(LOGIN_TOKEN).send().await }
    });
    // Signal only once the request is at the provider, i.e. truly in flight.
    let mut in_flight = false;
    for _ in 0..200 {
        if g.requests("POST", "/admin/users") > 0 {
            in_flight = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(in_flight, "the lookup reached the provider");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let resp = request
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["source"], "roster");
    assert!(body["auth"]["userId"].is_string());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "exits 0 after SIGTERM");
    // And it no longer accepts connections.
    assert!(client.get(format!("{base}/healthz")).send().await.is_err());
}
