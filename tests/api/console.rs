//! The operator console (`/console`): sessions, CSRF and escaping over
//! plain HTTP against the in-process app, then the whole console in a real
//! headless Chromium against the real `rosterd serve` binary.

use crate::helpers::*;
use crate::webdriver::Browser;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::process::{Command, Stdio};
use std::time::Duration;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value a response sets for cookie `name`, with its attributes.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    let first = set_cookie.split(';').next().unwrap();
    first.split_once('=').unwrap().1.to_owned()
}

/// The CSRF token in a page's first form.
fn csrf_in(html: &str) -> String {
    let start = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with a csrf field")
        + 19;
    html[start..start + 64].to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

struct Console {
    base: String,
    client: reqwest::Client,
}

impl Console {
    fn new(base: String) -> Self {
        Self {
            base,
            client: no_redirects(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req.send().await.unwrap()
    }

    async fn post(&self, path: &str, cookie: Option<&str>, body: String) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req.send().await.unwrap()
    }

    /// Submits the sign-in form with `token`, as a browser would.
    async fn try_sign_in(&self, token: &str) -> reqwest::Response {
        let form_page = self.get("/console/sign-in", None).await;
        assert_eq!(form_page.status(), StatusCode::OK);
        let pre = set_cookie(&form_page, "rosterd_console_signin").expect("a sign-in cookie");
        let pre = cookie_value(&pre);
        let html = form_page.text().await.unwrap();
        let csrf = csrf_in(&html);
        assert_eq!(csrf, pre, "double-submit: the form repeats the cookie");
        self.post(
            "/console/sign-in",
            Some(&format!("rosterd_console_signin={pre}")),
            form(&[("csrf", &csrf), ("token", token)]),
        )
        .await
    }

    /// Signs in; the session cookie header and the session's CSRF token.
    async fn sign_in(&self) -> (String, String) {
        let r = self.try_sign_in(ADMIN_TOKEN).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let id = cookie_value(&set_cookie(&r, "rosterd_console").expect("a session cookie"));
        let cookie = format!("rosterd_console={id}");
        let page = self.get("/console/people", Some(&cookie)).await;
        assert_eq!(page.status(), StatusCode::OK);
        let csrf = csrf_in(&page.text().await.unwrap());
        (cookie, csrf)
    }
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "recA").replace("{eventId}", "evt_1")
}

fn console_routes() -> Vec<(Method, String)> {
    rosterd::routes(&config())
        .pages()
        .iter()
        .map(|(m, p)| {
            (
                Method::from_bytes(m.as_str().as_bytes()).unwrap(),
                p.to_string(),
            )
        })
        .collect()
}

/// Console routes anyone may reach: the sign-in form and the stylesheet.
const OPEN: &[&str] = &["/console/sign-in", "/console/assets/console.css"];

async fn audit_actions(db: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("select actor, action from audit_log order by id")
        .fetch_all(db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn without_a_session_every_console_route_goes_to_sign_in(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let c = Console::new(app.url(""));
    let routes = console_routes();
    assert!(routes.len() >= 15, "{routes:?}");
    for (method, path) in &routes {
        if OPEN.contains(&path.as_str()) {
            continue;
        }
        let url = concrete(path);
        let r = match *method {
            Method::GET => c.get(&url, None).await,
            _ => c.post(&url, None, String::new()).await,
        };
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{method} {path}");
        assert_eq!(r.headers()[LOCATION], "/console/sign-in", "{method} {path}");
        // A made-up or expired session is no session.
        let fake = format!("rosterd_console={}", "ab".repeat(32));
        let r = match *method {
            Method::GET => c.get(&url, Some(&fake)).await,
            _ => c.post(&url, Some(&fake), String::new()).await,
        };
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{method} {path} (fake)");
    }
    assert!(audit_actions(&db).await.is_empty());
}

#[sqlx::test]
async fn every_console_post_without_the_csrf_token_is_refused(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let c = Console::new(app.url(""));
    let (cookie, csrf) = c.sign_in().await;
    let posts: Vec<String> = console_routes()
        .into_iter()
        .filter(|(m, p)| *m == Method::POST && !OPEN.contains(&p.as_str()))
        .map(|(_, p)| concrete(&p))
        .collect();
    assert!(posts.len() >= 6, "{posts:?}");
    let wrong = "0".repeat(64);
    for path in &posts {
        for body in [
            String::new(),
            form(&[("mode", "dry-run")]),
            form(&[("csrf", &wrong), ("mode", "dry-run")]),
            form(&[("csrf", &csrf[..63]), ("mode", "dry-run")]),
        ] {
            let r = c.post(path, Some(&cookie), body.clone()).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} {body}");
            assert!(r
                .text()
                .await
                .unwrap()
                .contains("did not come from the console"));
        }
    }
    // A token is per session: another session's does not do.
    let (_, other_csrf) = c.sign_in().await;
    let r = c
        .post(
            "/console/sign-out",
            Some(&cookie),
            form(&[("csrf", &other_csrf)]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Nothing was done: only the two sign-ins are in the audit log.
    let ops = |a: &str| ("ops".to_owned(), a.to_owned());
    assert_eq!(
        audit_actions(&db).await,
        vec![ops("console.sign_in"), ops("console.sign_in")]
    );
    // The right token works.
    let r = c
        .post("/console/sign-out", Some(&cookie), form(&[("csrf", &csrf)]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[sqlx::test]
async fn a_wrong_token_cannot_sign_in(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let c = Console::new(app.url(""));
    for token in ["wrong-token-0123456789", LOGIN_TOKEN, "", &ADMIN_TOKEN[1..]] {
        let r = c.try_sign_in(token).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{token}");
        assert!(set_cookie(&r, "rosterd_console").is_none());
        let html = r.text().await.unwrap();
        assert!(html.contains("That is not an operator token."));
        assert!(
            token.is_empty() || !html.contains(token),
            "the page repeats the token"
        );
    }
    // The sign-in form is CSRF-protected too: no matching cookie, no entry.
    let r = c
        .post(
            "/console/sign-in",
            None,
            form(&[("csrf", &"a".repeat(64)), ("token", ADMIN_TOKEN)]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(
            "/console/sign-in",
            Some(&format!("rosterd_console_signin={}", "b".repeat(64))),
            form(&[("csrf", &"a".repeat(64)), ("token", ADMIN_TOKEN)]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let sessions: i64 = sqlx::query_scalar("select count(*) from console_sessions")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
    assert!(audit_actions(&db).await.is_empty());
    // No operator tokens configured: nobody signs in.
    let closed = TestApp::spawn_with(db.clone(), |c| c.admin_tokens = Default::default()).await;
    let r = Console::new(closed.url("")).try_sign_in(ADMIN_TOKEN).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test]
async fn sessions_are_strict_cookies_that_expire_and_sign_out_revokes(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let c = Console::new(app.url(""));
    let r = c.try_sign_in(ADMIN_TOKEN).await;
    let set = set_cookie(&r, "rosterd_console").unwrap();
    let id = cookie_value(&set);
    assert_eq!(id.len(), 64);
    assert_eq!(
        set,
        format!("rosterd_console={id}; HttpOnly; SameSite=Strict; Path=/console; Max-Age=28800")
    );
    // Only the id's SHA-256 is stored; the row names the operator.
    let (hash, operator): (Vec<u8>, String) =
        sqlx::query_as("select id_hash, operator from console_sessions")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(operator, "ops");
    use sha2::Digest;
    assert_eq!(hash, sha2::Sha256::digest(id.as_bytes()).to_vec());
    // Behind a TLS-terminating proxy the cookie is Secure.
    let page = c
        .client
        .get(app.url("/console/sign-in"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&page, "rosterd_console_signin")
        .unwrap()
        .ends_with("; Secure"));
    // Pages are not cached, framed or scripted.
    let cookie = format!("rosterd_console={id}");
    let people = c.get("/console/people", Some(&cookie)).await;
    assert_eq!(people.headers()["cache-control"], "no-store");
    assert_eq!(people.headers()["x-frame-options"], "DENY");
    assert!(people.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let csrf = csrf_in(&people.text().await.unwrap());
    // Sign-out deletes the session: the same cookie no longer works.
    let r = c
        .post("/console/sign-out", Some(&cookie), form(&[("csrf", &csrf)]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&r, "rosterd_console")
        .unwrap()
        .contains("Max-Age=0"));
    let again = c.get("/console/people", Some(&cookie)).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    // An expired session is refused.
    let (cookie, _) = c.sign_in().await;
    sqlx::query("update console_sessions set expires_at = now() - interval '1 second'")
        .execute(&db)
        .await
        .unwrap();
    let expired = c.get("/console/people", Some(&cookie)).await;
    assert_eq!(expired.status(), StatusCode::SEE_OTHER);
    let ops = |a: &str| ("ops".to_owned(), a.to_owned());
    assert_eq!(
        audit_actions(&db).await,
        vec![
            ops("console.sign_in"),
            ops("console.sign_out"),
            ops("console.sign_in")
        ]
    );
}

#[sqlx::test]
async fn what_the_roster_says_is_escaped(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let mut e = upsert_event(
        "user.created",
        "evt_x",
        "2026-11-22T10:00:00Z",
        "recX",
        "x@example.com",
    );
    e["user"]["name"] = json!("<script>alert('x')</script> & \"co\"");
    assert_eq!(app.post_signed(&e).await.status(), 200);
    let c = Console::new(app.url(""));
    let (cookie, _) = c.sign_in().await;
    for path in [
        "/console/people?q=alert",
        "/console/people/recX",
        "/console/events/evt_x",
    ] {
        let r = c.get(path, Some(&cookie)).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<script>"), "{path}");
        assert!(html.contains("&lt;script&gt;"), "{path}");
    }
    // Query text comes back escaped too.
    let r = c
        .get("/console/people?q=%22%3E%3Cb%3Ehi", Some(&cookie))
        .await;
    let html = r.text().await.unwrap();
    assert!(!html.contains("\"><b>hi"));
    // Bad filters are a 400 page, not a 500.
    let r = c
        .get("/console/events?since=yesterday", Some(&cookie))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("RFC 3339"));
}

/// The `rosterd serve` child, killed when the test ends however it ends.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes the page's screenshot to `docs/console/{name}.png` when
/// `CONSOLE_SCREENSHOTS=1` (README.md shows them); otherwise only checks
/// that the browser produced a PNG.
async fn shot(b: &Browser, name: &str) {
    let png = b.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    if std::env::var("CONSOLE_SCREENSHOTS").as_deref() == Ok("1") {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/console");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

async fn post_event(client: &reqwest::Client, base: &str, body: &serde_json::Value) -> u16 {
    post_signed_to(client, base, body).await.status().as_u16()
}

async fn job_state(db: &PgPool, id: i64) -> (String, i32) {
    sqlx::query_as("select state, attempts from provisioning_jobs where id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

/// An operator's night in the console, in headless Chromium against the
/// real binary with the local auth provider: no session → sign-in; a
/// wrong token is refused; sign in; find a person; replay a failed event
/// and see it applied; preview a bulk replay; retry a dead job and see
/// the worker run it; dry-run a reconcile; read the audit log and health;
/// a form stripped of its CSRF token is refused; sign out.
#[sqlx::test]
async fn an_operator_works_the_console_in_a_real_browser(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let db = migrated(&opts).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("rosterd-console-{port}.log"));
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", url_of(&opts))
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("AIRTABLE_USER_SYNC_SECRET", SECRET)
            .env("ADMIN_TOKENS", format!("ops:{ADMIN_TOKEN}"))
            .env("AUTH_PROVIDER", "local")
            .env("ROLE_MAP", "admins=admin")
            .env("ROLE_DEFAULTS", "reader")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;

    // A small roster, provisioned by the service's own worker.
    let people = [
        ("recA", "ada@example.com", "Ada Lovelace"),
        ("recG", "grace@example.com", "Grace Hopper"),
        ("recK", "katherine@example.com", "Katherine Johnson"),
        ("recM", "margaret@example.com", "Margaret Hamilton"),
    ];
    for (i, (id, email, name)) in people.iter().enumerate() {
        let mut e = upsert_event(
            "user.created",
            &format!("evt_{id}"),
            &format!("2026-11-22T10:0{i}:00Z"),
            id,
            email,
        );
        e["user"]["name"] = json!(name);
        assert_eq!(post_event(&client, &base, &e).await, 200);
    }
    // One event fails: the database refuses its record for now.
    block_records(&db).await;
    let blocked = upsert_event(
        "user.created",
        "evt_blocked",
        "2026-11-22T11:00:00Z",
        "recBlocked1",
        "hedy@example.com",
    );
    let mut blocked = blocked;
    blocked["user"]["name"] = json!("Hedy Lamarr");
    assert_eq!(post_event(&client, &base, &blocked).await, 500);
    unblock_records(&db).await;
    // Every job done, then one of Grace's dies (as after a long outage).
    let drained = poll(Duration::from_secs(30), || async {
        let busy: i64 = sqlx::query_scalar(
            "select count(*) from provisioning_jobs where state in ('pending', 'running')",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        busy == 0
    })
    .await;
    assert!(drained, "the worker did not drain the queue");
    let dead: i64 = sqlx::query_scalar(
        "insert into provisioning_jobs (email, state, attempts, last_action, last_error)
         values ('grace@example.com', 'dead', 12, 'updated',
                 'auth provider: 503 Service Unavailable (gave up after 12 attempts)')
         returning id",
    )
    .fetch_one(&db)
    .await
    .unwrap();

    let b = Browser::start().await;
    let at = |path: &str| format!("{base}{path}");

    // No session: any page sends the browser to sign-in.
    b.goto(&at("/console/jobs")).await;
    b.wait_url("/console/sign-in").await;
    b.find("input#token").await;
    shot(&b, "sign-in").await;

    // A wrong token is refused.
    b.type_into("#token", "not-an-operator-token-123").await;
    b.click("section.signin button[type=submit]").await;
    b.wait_text("That is not an operator token.").await;
    assert!(b.url().await.ends_with("/console/sign-in"));

    // The right one signs in.
    b.type_into("#token", ADMIN_TOKEN).await;
    b.click("section.signin button[type=submit]").await;
    b.wait_url("/console/people").await;
    b.wait_text("Signed in as ops").await;
    b.wait_text("katherine@example.com").await;
    shot(&b, "people").await;

    // Find a person.
    b.type_into("input[name=q]", "grace").await;
    b.click("form.filters button").await;
    b.wait_url("/console/people?q=grace&status=").await;
    let rows = b.text("tbody").await;
    assert!(rows.contains("grace@example.com"), "{rows}");
    assert!(!rows.contains("ada@example.com"), "{rows}");
    b.click("tbody a[href='/console/people/recG']").await;
    b.wait_url("/console/people/recG").await;
    b.wait_text("Auth user (live from the provider)").await;
    let auth = b.text("section.card:nth-of-type(2) dl").await;
    assert!(auth.contains("active"), "{auth}");
    assert!(auth.contains("grace@example.com"), "{auth}");
    b.click("form[action='/console/people/recG/provision'] button")
        .await;
    b.wait_url("/console/people/recG?done=provisioned").await;
    b.wait_text("Provisioned now").await;
    shot(&b, "person").await;

    // Replay a failed event and see it applied.
    b.goto(&at("/console/events?status=failed")).await;
    b.wait_text("evt_blocked").await;
    shot(&b, "events").await;
    b.click("tbody a[href='/console/events/evt_blocked']").await;
    b.wait_text("record recBlocked1 is on hold").await;
    assert!(b.text("dl").await.contains("failed"));
    b.click("form[action='/console/events/evt_blocked/replay'] button")
        .await;
    b.wait_url("/console/events/evt_blocked?done=replayed")
        .await;
    b.wait_text("Event replayed").await;
    let outcome = b.text("section.card dl").await;
    assert!(outcome.contains("applied"), "{outcome}");
    let history = b.text("table tbody").await;
    assert!(
        history.contains("ops") && history.contains("applied"),
        "{history}"
    );
    shot(&b, "event").await;
    let stored: String =
        sqlx::query_scalar("select outcome from inbound_events where event_id = 'evt_blocked'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(stored, "applied");

    // Bulk replay shows its dry run first and changes nothing.
    let before = db_state(&db).await;
    b.goto(&at("/console/events?eventType=user.created")).await;
    b.click("form[action='/console/events/replay'] button")
        .await;
    b.wait_text("Dry run: nothing changed").await;
    b.wait_text("Replay 5 event(s) now").await;
    shot(&b, "bulk-replay-preview").await;
    assert_eq!(db_state(&db).await.events, before.events);

    // Retry a dead job; the worker then runs it.
    b.goto(&at("/console/jobs")).await;
    b.wait_text("gave up after 12 attempts").await;
    shot(&b, "jobs").await;
    b.click(&format!("form[action='/console/jobs/{dead}/retry'] button"))
        .await;
    b.wait_url("/console/jobs?done=retried").await;
    b.wait_text("Job retried").await;
    assert_ne!(job_state(&db, dead).await.0, "dead");
    let ran = poll(Duration::from_secs(30), || async {
        job_state(&db, dead).await.0 == "done"
    })
    .await;
    assert!(
        ran,
        "the retried job never ran: {:?}",
        job_state(&db, dead).await
    );

    // A dry-run reconcile, with its counters.
    b.goto(&at("/console/reconcile")).await;
    b.click("form[action='/console/reconcile'] button").await;
    b.wait_text("Dry run: nothing changed").await;
    let counters = b.text("dl.counters").await;
    for k in ["created", "updated", "unchanged", "orphaned", "failed"] {
        assert!(counters.contains(k), "{counters}");
    }
    b.find("form[action='/console/reconcile'] button.danger")
        .await;
    shot(&b, "reconcile").await;

    // Health and the audit log.
    b.goto(&at("/console/health")).await;
    b.wait_text("every migration is applied").await;
    let health = b.text("table.health").await;
    assert!(
        health.contains("database") && health.contains("auth provider"),
        "{health}"
    );
    shot(&b, "health").await;
    b.goto(&at("/console/audit")).await;
    b.wait_text("job.retry").await;
    shot(&b, "audit").await;

    // A form whose CSRF token was stripped is refused and does nothing.
    let audited = audit_actions(&db).await.len();
    b.goto(&at("/console/people/recA")).await;
    b.find("form[action='/console/people/recA/provision']")
        .await;
    b.execute("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
        .await;
    b.click("form[action='/console/people/recA/provision'] button")
        .await;
    b.wait_text("did not come from the console").await;
    assert_eq!(audit_actions(&db).await.len(), audited);

    // Sign out: back to sign-in, and the console is closed again.
    b.goto(&at("/console/people")).await;
    b.click("form.signout button").await;
    b.wait_url("/console/sign-in?done=signed-out").await;
    b.wait_text("Signed out.").await;
    b.goto(&at("/console/health")).await;
    b.wait_url("/console/sign-in").await;

    // Everything was done, and audited, as the token's name.
    let ops = |a: &str| ("ops".to_owned(), a.to_owned());
    assert_eq!(
        audit_actions(&db).await,
        vec![
            ops("console.sign_in"),
            ops("user.provision"),
            ops("event.replay"),
            ops("job.retry"),
            ops("console.sign_out"),
        ]
    );
    let sessions: i64 = sqlx::query_scalar("select count(*) from console_sessions")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
}

/// The Invitations page and the person's card: list, resend (without SMTP
/// the new link is shown once, and works), revoke; audited under the
/// operator's name.
#[sqlx::test]
async fn operators_resend_and_revoke_invitations_in_the_console(db: PgPool) {
    let cfg = rosterd::config::InviteConfig {
        ttl: Duration::from_secs(86_400),
        base_url: "https://rosterd.acme.example".parse().unwrap(),
        redirect_url: "https://app.acme.example/".parse().unwrap(),
        product: "Acme Intranet".into(),
        smtp: None,
        accept_per_minute: 100,
    };
    let provider = std::sync::Arc::new(
        rosterd::provision::provider::local::LocalProvider::new(db.clone()).inviting(true),
    );
    let app =
        TestApp::spawn_with_provider(db.clone(), provider, move |c| c.invitations = Some(cfg))
            .await;
    let ev = upsert_event(
        "user.created",
        "e1",
        "2026-11-22T10:00:00Z",
        "rec1",
        "ada@acme.example",
    );
    assert!(app.post_signed(&ev).await.status().is_success());
    // The lookup provisions inline, which issues the invitation.
    assert_eq!(
        app.lookup("email=ada@acme.example").await.status(),
        StatusCode::OK
    );
    let id: i64 = sqlx::query_scalar("select id from invitations")
        .fetch_one(&db)
        .await
        .unwrap();

    let console = Console::new(app.url(""));
    let (cookie, csrf) = console.sign_in().await;
    let list = console.get("/console/invitations", Some(&cookie)).await;
    assert_eq!(list.status(), StatusCode::OK);
    let html = list.text().await.unwrap();
    assert!(
        html.contains("ada@acme.example") && html.contains("pending"),
        "{html}"
    );
    assert!(
        html.contains(&format!("/console/invitations/{id}/resend")),
        "{html}"
    );
    let person = console.get("/console/people/rec1", Some(&cookie)).await;
    let html = person.text().await.unwrap();
    assert!(
        html.contains("<h2>Invitations</h2>")
            && html.contains(&format!("/console/invitations/{id}/revoke")),
        "{html}"
    );

    let resent = console
        .post(
            &format!("/console/invitations/{id}/resend"),
            Some(&cookie),
            form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(resent.status(), StatusCode::OK);
    let html = resent.text().await.unwrap();
    let start = html
        .find("https://rosterd.acme.example/invite/")
        .expect("the new link is shown");
    let link: String = html[start..].chars().take_while(|c| *c != '"').collect();
    let path = link.strip_prefix("https://rosterd.acme.example").unwrap();
    assert_eq!(
        console.get(path, None).await.status(),
        StatusCode::OK,
        "the shown link works"
    );

    let revoked = console
        .post(
            &format!("/console/invitations/{id}/revoke"),
            Some(&cookie),
            form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        revoked.headers()[LOCATION],
        "/console/invitations?done=revoked"
    );
    assert_eq!(
        console.get(path, None).await.status(),
        StatusCode::NOT_FOUND
    );
    let actions = audit_actions(&db).await;
    for action in ["invitation.resend", "invitation.revoke"] {
        assert!(
            actions.contains(&("ops".to_string(), action.to_string())),
            "{actions:?}"
        );
    }
    // Revoked: no buttons are offered any more, and a second revoke is refused.
    let again = console
        .post(
            &format!("/console/invitations/{id}/revoke"),
            Some(&cookie),
            form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

/// A viewer's token (`name:token:viewer`): walking every route of the admin
/// API and the console, each read answers 200 and each change 403 — also
/// for routes added later, since the list comes from the router — with the
/// refusal audited, and nothing changed.
#[sqlx::test]
async fn a_viewer_reads_every_route_and_changes_nothing(db: PgPool) {
    const VIEWER_TOKEN: &str = "viewer-token-0123456789";
    let app = TestApp::spawn_with(db.clone(), |c| {
        c.admin_tokens = rosterd::bearer::BearerTokens::parse_named(Some(
            &format!("ops:{ADMIN_TOKEN},eve:{VIEWER_TOKEN}:viewer").into(),
        ))
        .unwrap();
    })
    .await;
    let ev = upsert_event(
        "user.created",
        "evt_1",
        "2026-11-22T10:00:00Z",
        "recA",
        "ada@x.io",
    );
    assert_eq!(app.post_signed(&ev).await.status(), StatusCode::OK);
    let before = db_state(&db).await;

    let api: Vec<(Method, String)> = rosterd::routes(&config())
        .table()
        .iter()
        .filter(|(_, p)| p.starts_with("/api/admin"))
        .map(|(m, p)| {
            (
                Method::from_bytes(m.as_str().as_bytes()).unwrap(),
                p.to_string(),
            )
        })
        .collect();
    let changes = api.iter().filter(|(m, _)| *m != Method::GET).count();
    assert!(api.len() >= 13 && changes >= 7, "{api:?}");
    for (method, path) in &api {
        let r = app
            .client
            .request(method.clone(), app.url(&concrete(path)))
            .bearer_auth(VIEWER_TOKEN)
            .send()
            .await
            .unwrap();
        if *method == Method::GET {
            assert_eq!(r.status(), StatusCode::OK, "{method} {path}");
        } else {
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "forbidden", "{method} {path}");
        }
    }

    let c = Console::new(app.url(""));
    let r = c.try_sign_in(VIEWER_TOKEN).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = format!(
        "rosterd_console={}",
        cookie_value(&set_cookie(&r, "rosterd_console").unwrap())
    );
    let people = c
        .get("/console/people", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        people.contains("(viewer: read only)") && people.contains("class=\"viewer\""),
        "{people}"
    );
    let csrf = csrf_in(&people);
    let mut refused = 0;
    for (method, path) in console_routes() {
        let url = concrete(&path);
        if method == Method::GET {
            let mut r = c.get(&url, Some(&cookie)).await;
            if r.status() == StatusCode::SEE_OTHER {
                let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
                assert!(
                    to.starts_with("/console/") && to != "/console/sign-in",
                    "{path} → {to}"
                );
                r = c.get(&to, Some(&cookie)).await;
            }
            assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        } else if !OPEN.contains(&path.as_str()) && path != "/console/sign-out" {
            let r = c
                .post(
                    &url,
                    Some(&cookie),
                    form(&[("csrf", &csrf), ("mode", "dry-run")]),
                )
                .await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "POST {path}");
            assert!(
                r.text().await.unwrap().contains("signed in as a viewer"),
                "{path}"
            );
            refused += 1;
        }
    }
    assert!(refused >= 7, "{refused}");
    assert_eq!(db_state(&db).await, before, "a viewer changed nothing");
    let audited: Vec<(String, Option<String>, String)> = sqlx::query_as(
        "select actor, actor_role, target from audit_log where action = 'access.refused'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(audited.len(), changes + refused, "{audited:?}");
    assert!(audited
        .iter()
        .all(|(a, r, _)| a == "eve" && r.as_deref() == Some("viewer")));
    // The audit log says which role acted: a viewer's refusal, an
    // operator's change.
    let r = app
        .admin_post("/api/admin/provision", Some(&json!({"dryRun": false})))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let log: serde_json::Value = app
        .admin_get("/api/admin/audit")
        .await
        .json()
        .await
        .unwrap();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries[0]["action"], "provision.reconcile");
    assert_eq!(
        (
            entries[0]["actor"].as_str(),
            entries[0]["actorRole"].as_str()
        ),
        (Some("ops"), Some("operator"))
    );
    assert!(entries
        .iter()
        .any(|e| e["action"] == "access.refused" && e["actorRole"] == "viewer"));
}

/// In headless Chromium, a viewer's pages show no action buttons (an
/// operator's do), and the sign-out still works.
#[sqlx::test]
async fn a_viewer_sees_no_action_buttons_in_a_real_browser(db: PgPool) {
    const VIEWER_TOKEN: &str = "viewer-token-0123456789";
    let app = TestApp::spawn_with(db.clone(), |c| {
        c.admin_tokens = rosterd::bearer::BearerTokens::parse_named(Some(
            &format!("ops:{ADMIN_TOKEN},eve:{VIEWER_TOKEN}:viewer").into(),
        ))
        .unwrap();
    })
    .await;
    let ev = upsert_event(
        "user.created",
        "evt_1",
        "2026-11-22T10:00:00Z",
        "recA",
        "ada@x.io",
    );
    assert_eq!(app.post_signed(&ev).await.status(), StatusCode::OK);
    let visible_buttons = "return [...document.querySelectorAll('main form[method=post] button')]
                           .filter(b => b.offsetParent !== null).length";
    for (token, role) in [(ADMIN_TOKEN, "operator"), (VIEWER_TOKEN, "viewer")] {
        let b = Browser::start().await;
        b.goto(&app.url("/console/sign-in")).await;
        b.type_into("#token", token).await;
        b.click("button[type=submit]").await;
        b.wait_url("/console/people").await;
        let mut seen = 0;
        for page in [
            "/console/people/recA",
            "/console/events/evt_1",
            "/console/reconcile",
        ] {
            b.goto(&app.url(page)).await;
            b.find("main").await;
            seen += b.execute(visible_buttons).await.as_u64().unwrap();
        }
        if role == "viewer" {
            assert_eq!(seen, 0, "a viewer sees no action buttons");
            b.wait_text("(viewer: read only)").await;
            b.click("form.signout button").await;
            b.wait_url("/console/sign-in?done=signed-out").await;
        } else {
            assert!(seen >= 3, "an operator sees the buttons: {seen}");
        }
    }
}

/// In headless Chromium: an operator preserves a role on a person's page;
/// once provisioning has run, the person's auth user has it, and the card
/// shows mapped, override and effective roles side by side.
#[sqlx::test]
async fn an_operator_preserves_a_role_in_a_real_browser(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let ev = upsert_event(
        "user.created",
        "evt_1",
        "2026-11-22T10:00:00Z",
        "recA",
        "ada@x.io",
    );
    assert_eq!(app.post_signed(&ev).await.status(), StatusCode::OK);
    let provider = std::sync::Arc::new(rosterd::provision::provider::local::LocalProvider::new(
        db.clone(),
    ));
    let worker = rosterd::provision::worker::Worker::new(
        db.clone(),
        provider,
        rosterd::config::WorkerConfig::default(),
    );
    worker.drain().await.unwrap();

    let b = Browser::start().await;
    b.goto(&app.url("/console/sign-in")).await;
    b.type_into("#token", ADMIN_TOKEN).await;
    b.click("button[type=submit]").await;
    b.wait_url("/console/people").await;
    b.goto(&app.url("/console/people/recA")).await;
    b.wait_text("Role overrides").await;
    b.type_into("input[name=preserve]", "publisher").await;
    b.click("section.overrides form button[type=submit]").await;
    b.wait_text("Role overrides saved").await;
    worker.drain().await.unwrap();
    b.goto(&app.url("/console/people/recA")).await;
    let card = b.text("section.overrides").await;
    assert!(card.contains("Preserved\npublisher"), "{card}");
    assert!(
        card.contains("Effective\nadmin, publisher, reader"),
        "{card}"
    );
    let roles: Vec<String> = sqlx::query_scalar(
        "select jsonb_array_elements_text(app_metadata->'roles') from auth_accounts where email = 'ada@x.io'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(roles.contains(&"publisher".to_string()), "{roles:?}");
    let auth = b.text("main").await;
    assert!(auth.contains("admin, publisher, reader"), "{auth}");
    // The people list can show only those with an override.
    b.goto(&app.url("/console/people?overrides=true")).await;
    let listed = b.text("main").await;
    assert!(
        listed.contains("ada@x.io") && !listed.contains("bo@x.io"),
        "{listed}"
    );
}
