//! The logs of a real `rosterd serve` (JSON, debug level) while every
//! endpoint is exercised: each line is JSON, lines logged while serving a
//! request carry its request id, and no configured secret, token or
//! signature appears anywhere.

use crate::airtable::{self, Airtable};
use crate::gotrue::{self, GoTrue};
use crate::helpers::*;
use rosterd::cli::{signed_headers, Scheme};
use rosterd::signature::Key;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Sends `body` with `headers` ("Name: value" lines, as `sign` prints them).
async fn post_with(
    client: &reqwest::Client,
    url: &str,
    headers: &[String],
    body: &[u8],
) -> reqwest::StatusCode {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for h in headers {
        let (k, v) = h.split_once(": ").unwrap();
        req = req.header(k, v);
    }
    req.send().await.unwrap().status()
}

#[sqlx::test]
async fn logs_carry_request_ids_and_no_secrets(_p: PgPoolOptions, opts: PgConnectOptions) {
    let db = migrated(&opts).await;
    let g = GoTrue::start().await;
    let at = Airtable::start().await;
    at.insert_person("grace@example.com", "Grace Hopper");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let secrets = format!("{SECRET},{WHSEC}");
    let admin_tokens = format!("ops:{ADMIN_TOKEN}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("serve")
        .env_clear()
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .env("DATABASE_URL", url_with_password(&opts))
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("AIRTABLE_USER_SYNC_SECRET", &secrets)
        .env("LOGIN_API_TOKENS", LOGIN_TOKEN)
        .env("ADMIN_TOKENS", &admin_tokens)
        .env("AUTH_PROVIDER", "supabase")
        .env("SUPABASE_URL", g.url())
        .env("SUPABASE_SERVICE_ROLE_KEY", gotrue::KEY)
        .env("AIRTABLE_API_URL", at.url())
        .env("AIRTABLE_BASE_ID", airtable::BASE)
        .env("AIRTABLE_TABLE", airtable::TABLE)
        .env("AIRTABLE_API_KEY", airtable::KEY)
        .env("ROLE_MAP", "admins=admin")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain both pipes as the service writes, or it blocks once a pipe's
    // buffer is full.
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = String::new();
            r.read_to_string(&mut buf).unwrap();
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let inbound = format!("{base}/api/sync/users/inbound");
    let mut signatures = Vec::new();

    // Inbound: both schemes, a duplicate, a bad signature, bad bodies.
    let ada = serde_json::to_vec(&upsert_event(
        "user.created",
        "evt_1",
        "2026-11-22T10:00:00Z",
        "recA",
        "ada@example.com",
    ))
    .unwrap();
    let plain = signed_headers(
        &Key::parse(SECRET).unwrap(),
        Scheme::Plain,
        None,
        None,
        &ada,
    );
    assert_eq!(post_with(&client, &inbound, &plain, &ada).await, 200);
    assert_eq!(post_with(&client, &inbound, &plain, &ada).await, 200);
    let bob = serde_json::to_vec(&upsert_event(
        "user.created",
        "evt_2",
        "2026-11-22T10:00:00Z",
        "recB",
        "bob@example.com",
    ))
    .unwrap();
    let standard = signed_headers(
        &Key::parse(WHSEC).unwrap(),
        Scheme::Standard,
        None,
        None,
        &bob,
    );
    assert_eq!(post_with(&client, &inbound, &standard, &bob).await, 200);
    let forged = vec![format!("X-Signature: sha256={}", "ab".repeat(32))];
    assert_eq!(post_with(&client, &inbound, &forged, &bob).await, 401);
    let junk = b"{not json".to_vec();
    let junk_sig = signed_headers(
        &Key::parse(SECRET).unwrap(),
        Scheme::Plain,
        None,
        None,
        &junk,
    );
    assert_eq!(post_with(&client, &inbound, &junk_sig, &junk).await, 400);
    signatures.extend(
        plain
            .iter()
            .chain(&standard)
            .chain(&forged)
            .chain(&junk_sig)
            .cloned(),
    );

    // Lookup: a roster hit, a directory read-through, a wrong token.
    for (q, token, status) in [
        ("email=ada@example.com", LOGIN_TOKEN, 200),
        ("email=grace@example.com", LOGIN_TOKEN, 200),
        ("email=nobody@example.com", LOGIN_TOKEN, 404),
        ("email=ada@example.com", "wrong-login-token-123", 401),
    ] {
        let r = client
            .get(format!("{base}/api/users/lookup?{q}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{q}");
    }

    // Every admin call, authorised and not.
    let admin = |method: &str, path: &str, token: &str| {
        let url = format!("{base}{path}");
        let req = if method == "GET" {
            client.get(url)
        } else {
            client
                .post(url)
                .json(&json!({"userId": "recA", "dryRun": true}))
        };
        req.bearer_auth(token.to_owned()).send()
    };
    for (method, path) in crate::admin::ROUTES {
        let ok = admin(method, path, ADMIN_TOKEN).await.unwrap();
        assert!(
            !ok.status().is_server_error() && ok.status() != 401,
            "{path}: {}",
            ok.status()
        );
        let refused = admin(method, path, "wrong-admin-token-0123").await.unwrap();
        assert_eq!(refused.status(), 401, "{path}");
    }
    for path in ["/healthz", "/readyz", "/nowhere"] {
        client.get(format!("{base}{path}")).send().await.unwrap();
    }
    // The worker provisions Bob through the provider.
    let provisioned = poll(Duration::from_secs(10), || async {
        g.user_by_email("bob@example.com").is_some()
    })
    .await;
    assert!(provisioned, "the worker ran");

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let logs = format!("{}{}", stdout.join().unwrap(), stderr.join().unwrap());

    let mut forbidden: Vec<String> = [
        SECRET,
        WHSEC,
        LOGIN_TOKEN,
        ADMIN_TOKEN,
        gotrue::KEY,
        airtable::KEY,
        DB_PASSWORD,
        "wrong-login-token-123",
        "wrong-admin-token-0123",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The signature values, and the Standard Webhooks key in base64.
    forbidden.extend(
        signatures
            .iter()
            .map(|h| h.split_once(": ").unwrap().1.to_owned()),
    );
    forbidden.push(WHSEC.trim_start_matches("whsec_").to_owned());
    for s in &forbidden {
        assert!(!logs.contains(s.as_str()), "a secret is in the logs: {s}");
    }

    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(
        lines.len() > 20,
        "debug logs of a busy run: {}",
        lines.len()
    );
    // Lines logged inside a request's span carry its id.
    let in_requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "inbound event")
        .collect();
    assert_eq!(
        in_requests.len(),
        3,
        "Ada applied and duplicate, Bob applied: {in_requests:?}"
    );
    for l in in_requests {
        let id = l["span"]["request_id"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "request id on {l}");
    }
    let responses: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"].is_string())
        .collect();
    assert!(
        responses.len() >= 30,
        "every request logs under its id: {}",
        responses.len()
    );
    drop(db);
}
