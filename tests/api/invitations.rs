//! Invitations (docs/contract.md §14), end to end: a `user.created` event,
//! the mail on a real SMTP server, the page its link opens, the accept,
//! and where the browser is sent, on both providers; and what must never
//! happen: two acceptances, a link that tells one failure from another, a
//! leaver with an open invitation, a mail lost or sent twice.

use super::gotrue::{self, GoTrue};
use super::helpers::{db_state, poll, upsert_event, TestApp, ADMIN_TOKEN};
use super::smtp::{self, Smtp};
use rosterd::config::{InviteConfig, SmtpConfig, WorkerConfig};
use rosterd::invite::deliver::Delivery;
use rosterd::invite::mail::{Letter, Mailer};
use rosterd::provision::provider::local::LocalProvider;
use rosterd::provision::provider::supabase::SupabaseProvider;
use rosterd::provision::provider::AuthProvider;
use rosterd::provision::worker::Worker;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

const REDIRECT: &str = "https://app.acme.example/welcome";
const PRODUCT: &str = "Acme Intranet";

fn invite_config(smtp: Option<&Smtp>, ttl: Duration, per_minute: u32) -> InviteConfig {
    InviteConfig {
        ttl,
        base_url: "https://rosterd.acme.example".parse().unwrap(),
        redirect_url: REDIRECT.parse().unwrap(),
        product: PRODUCT.into(),
        smtp: smtp.map(|s| SmtpConfig {
            url: s.url().into(),
            from: "Acme Accounts <accounts@acme.example>".parse().unwrap(),
            timeout: Duration::from_secs(5),
        }),
        accept_per_minute: per_minute,
    }
}

struct Setup {
    app: TestApp,
    smtp: Smtp,
    worker: Worker,
    gotrue: Option<GoTrue>,
}

async fn setup(db: PgPool, supabase: bool) -> Setup {
    setup_with(db, supabase, Duration::from_secs(7 * 86_400), 1_000).await
}

async fn setup_with(db: PgPool, supabase: bool, ttl: Duration, per_minute: u32) -> Setup {
    let smtp = Smtp::start().await;
    let cfg = invite_config(Some(&smtp), ttl, per_minute);
    let (provider, gotrue): (Arc<dyn AuthProvider>, _) = if supabase {
        let g = GoTrue::start().await;
        let p = SupabaseProvider::new(
            g.url(),
            gotrue::KEY.to_string().into(),
            Duration::from_secs(5),
        )
        .unwrap()
        .inviting(true);
        (Arc::new(p), Some(g))
    } else {
        (
            Arc::new(LocalProvider::new(db.clone()).inviting(true)),
            None,
        )
    };
    let c = cfg.clone();
    let app = TestApp::spawn_with_provider(db.clone(), provider.clone(), move |config| {
        config.invitations = Some(c);
    })
    .await;
    let worker = worker(&db, provider, &cfg, &app);
    Setup {
        app,
        smtp,
        worker,
        gotrue,
    }
}

/// A worker as `rosterd serve` runs it, mailing links that point at `app`.
fn worker(
    db: &PgPool,
    provider: Arc<dyn AuthProvider>,
    cfg: &InviteConfig,
    app: &TestApp,
) -> Worker {
    let smtp = cfg.smtp.as_ref().unwrap();
    let mailer = Mailer::new(
        &smtp.url,
        smtp.timeout,
        Letter {
            from: smtp.from.clone(),
            product: cfg.product.clone(),
        },
    )
    .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(6)
        .connect_lazy_with(rosterd::db::worker_options((*db.connect_options()).clone()));
    Worker::new(
        pool,
        provider,
        WorkerConfig {
            concurrency: 4,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
            max_attempts: 12,
        },
    )
    .inviting(
        Some(cfg.policy()),
        Some(Delivery {
            mailer,
            base: app.url("").parse().unwrap(),
        }),
    )
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn invitations(db: &PgPool) -> Vec<(i64, String, String)> {
    sqlx::query_as("select id, email, state from invitations order by id")
        .fetch_all(db)
        .await
        .unwrap()
}

async fn create(s: &Setup, event: &str, record: &str, email: &str) {
    let r = s
        .app
        .post_signed(&upsert_event(
            "user.created",
            event,
            "2026-11-22T10:00:00Z",
            record,
            email,
        ))
        .await;
    assert!(r.status().is_success(), "{}", r.status());
}

async fn send(
    s: &Setup,
    kind: &str,
    event: &str,
    at: &str,
    record: &str,
    email: &str,
    status: &str,
) {
    let mut ev = upsert_event(kind, event, at, record, email);
    ev["user"]["status"] = json!(status);
    if kind == "user.deleted" {
        ev = super::helpers::delete_event(event, at, record);
    }
    let r = s.app.post_signed(&ev).await;
    assert!(r.status().is_success(), "{}", r.status());
}

async fn auth_state(s: &Setup, email: &str) -> String {
    let body: Value = s
        .app
        .lookup(&format!("email={email}"))
        .await
        .json()
        .await
        .unwrap();
    body["auth"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The mail arrives, its page changes nothing, the accept confirms the
/// local account and sends the browser to INVITE_REDIRECT_URL; the link
/// then works no more.
#[sqlx::test]
async fn local_provider_end_to_end(db: PgPool) {
    let s = setup(db.clone(), false).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(s.worker.clone().run(stop.clone()));
    let sent = Instant::now();
    create(&s, "evt_1", "rec1", "ada@acme.example").await;
    let mails = s.smtp.wait_for(1, Duration::from_secs(20)).await;
    eprintln!("event to mail: {} ms", sent.elapsed().as_millis());
    stop.cancel();
    running.await.unwrap();

    let mail = &mails[0];
    assert!(
        smtp::header(mail, "To")
            .unwrap()
            .contains("ada@acme.example"),
        "{mail}"
    );
    assert_eq!(
        smtp::header(mail, "Subject").unwrap(),
        "Your invitation to Acme Intranet"
    );
    assert!(smtp::part(mail, "text/html").contains("Accept the invitation"));
    let link = smtp::link_in(mail);
    assert!(link.starts_with(&s.app.url("/invite/")), "{link}");
    assert_eq!(auth_state(&s, "ada@acme.example").await, "invited");
    let confirmed = || async {
        sqlx::query_scalar::<_, bool>(
            "select email_confirmed_at is not null from auth_accounts where email = 'ada@acme.example'",
        )
        .fetch_one(&db)
        .await
        .unwrap()
    };
    assert!(
        !confirmed().await,
        "an invited account waits for its person"
    );

    // Opening the link (as a person or a mail scanner) changes nothing.
    let before = (db_state(&db).await, invitations(&db).await);
    let page = no_redirects().get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Ada Lovelace") && html.contains(PRODUCT),
        "{html}"
    );
    assert!(html.contains("<form method=\"post\">"), "{html}");
    assert_eq!((db_state(&db).await, invitations(&db).await), before);
    assert!(!confirmed().await);

    let accepted = no_redirects().post(&link).send().await.unwrap();
    assert_eq!(accepted.status(), 303);
    assert_eq!(accepted.headers()["location"], REDIRECT);
    assert!(confirmed().await);
    assert_eq!(invitations(&db).await[0].2, "accepted");
    assert_eq!(auth_state(&s, "ada@acme.example").await, "active");
    let audit: Vec<String> = sqlx::query_scalar("select action from audit_log order by id")
        .fetch_all(&db)
        .await
        .unwrap();
    for action in ["invitation.issue", "invitation.send", "invitation.accept"] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }

    // Used: the one page for every dead link.
    let again = no_redirects().post(&link).send().await.unwrap();
    assert_eq!(again.status(), 404);
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("This link does not work"));
}

/// On Supabase the user is created unconfirmed, and the accept redirects to
/// a sign-in link the stand-in issued through `generate_link`, which signs
/// the person in once and confirms them.
#[sqlx::test]
async fn supabase_end_to_end(db: PgPool) {
    let s = setup(db.clone(), true).await;
    create(&s, "evt_1", "rec1", "grace@acme.example").await;
    let report = s.worker.drain().await.unwrap();
    assert_eq!(
        (report.done, report.dead),
        (2, 0),
        "a provisioning job and a mail job"
    );
    let g = s.gotrue.as_ref().unwrap();
    let user = g.user_by_email("grace@acme.example").unwrap();
    assert!(user.email_confirmed_at.is_none(), "created unconfirmed");
    let link = smtp::link_in(&s.smtp.wait_for(1, Duration::from_secs(10)).await[0]);

    assert_eq!(
        no_redirects().get(&link).send().await.unwrap().status(),
        200
    );
    assert!(
        g.links().is_empty(),
        "opening the page asks GoTrue for nothing"
    );
    let accepted = no_redirects().post(&link).send().await.unwrap();
    assert_eq!(accepted.status(), 303);
    let location = accepted.headers()["location"].to_str().unwrap().to_string();
    let issued = g.links();
    assert_eq!(issued.len(), 1);
    assert_eq!(location, issued[0].action_link);
    assert_eq!(issued[0].email, "grace@acme.example");
    assert_eq!(issued[0].redirect_to, REDIRECT);

    // The browser follows it: GoTrue signs them in and confirms the email.
    let verified = no_redirects().get(&location).send().await.unwrap();
    assert_eq!(verified.status(), 303);
    let landed = verified.headers()["location"].to_str().unwrap();
    assert!(
        landed.starts_with(&format!("{REDIRECT}#access_token=")),
        "{landed}"
    );
    assert!(g
        .user_by_email("grace@acme.example")
        .unwrap()
        .email_confirmed_at
        .is_some());
}

/// Twenty browsers post one link at once: exactly one is let in.
#[sqlx::test]
async fn twenty_concurrent_accepts_let_one_in(db: PgPool) {
    let s = setup(db.clone(), false).await;
    create(&s, "evt_1", "rec1", "ada@acme.example").await;
    s.worker.drain().await.unwrap();
    let link = smtp::link_in(&s.smtp.wait_for(1, Duration::from_secs(10)).await[0]);
    let client = no_redirects();
    let answers = futures_util::future::join_all((0..20).map(|_| {
        let (client, link) = (client.clone(), link.clone());
        async move { client.post(&link).send().await.unwrap().status().as_u16() }
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|s| **s == 303).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|s| **s == 404).count(),
        19,
        "{answers:?}"
    );
    let state: String = sqlx::query_scalar("select state from invitations")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(state, "accepted");
    let accepts: i64 =
        sqlx::query_scalar("select count(*) from audit_log where action = 'invitation.accept'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(accepts, 1);
}

/// Unknown, malformed, expired, revoked and used links all get one page
/// and one status, on GET and on POST.
#[sqlx::test]
async fn every_dead_link_looks_the_same(db: PgPool) {
    let s = setup_with(db.clone(), false, Duration::from_secs(2), 1_000).await;
    for (i, email) in ["a@acme.example", "b@acme.example", "c@acme.example"]
        .iter()
        .enumerate()
    {
        create(&s, &format!("evt_{i}"), &format!("rec{i}"), email).await;
    }
    s.worker.drain().await.unwrap();
    let mails = s.smtp.wait_for(3, Duration::from_secs(10)).await;
    let link_of = |email: &str| {
        smtp::link_in(
            mails
                .iter()
                .find(|m| smtp::header(m, "To").unwrap().contains(email))
                .unwrap(),
        )
    };
    let (used, revoked, expired) = (
        link_of("a@acme.example"),
        link_of("b@acme.example"),
        link_of("c@acme.example"),
    );
    let client = no_redirects();
    assert_eq!(client.post(&used).send().await.unwrap().status(), 303);
    let id: i64 = sqlx::query_scalar("select id from invitations where email = 'b@acme.example'")
        .fetch_one(&db)
        .await
        .unwrap();
    let r = s
        .app
        .admin_post(&format!("/api/admin/invitations/{id}/revoke"), None)
        .await;
    assert_eq!(r.status(), 200);
    // The third lapses on its own (INVITE_TTL=2s).
    let lapsed = poll(Duration::from_secs(10), || async {
        client.get(&expired).send().await.unwrap().status() == 404
    })
    .await;
    assert!(lapsed, "the link stops working once INVITE_TTL has passed");
    let unknown = s.app.url(&format!("/invite/{}", "A".repeat(43)));
    let malformed = s.app.url("/invite/not-a-token");
    let mut answers = Vec::new();
    for link in [&used, &revoked, &expired, &unknown, &malformed] {
        for post in [false, true] {
            let req = if post {
                client.post(link)
            } else {
                client.get(link)
            };
            let r = req.send().await.unwrap();
            answers.push((r.status().as_u16(), r.text().await.unwrap()));
        }
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 404);
}

/// Leaving (disabled, deleted) revokes the open invitation; coming back
/// brings a new one, unless an earlier one was accepted.
#[sqlx::test]
async fn leaving_revokes_and_returning_reinvites_unless_accepted(db: PgPool) {
    let s = setup(db.clone(), false).await;
    let at = |n: u32| format!("2026-11-22T10:00:{n:02}Z");
    send(
        &s,
        "user.created",
        "e1",
        &at(1),
        "rec1",
        "ada@acme.example",
        "active",
    )
    .await;
    s.worker.drain().await.unwrap();
    send(
        &s,
        "user.updated",
        "e2",
        &at(2),
        "rec1",
        "ada@acme.example",
        "disabled",
    )
    .await;
    s.worker.drain().await.unwrap();
    let states = |db: PgPool| async move {
        sqlx::query_as::<_, (String, Option<String>)>(
            "select state, revoked_reason from invitations order by id",
        )
        .fetch_all(&db)
        .await
        .unwrap()
    };
    assert_eq!(
        states(db.clone()).await,
        vec![("revoked".into(), Some("left".into()))]
    );
    let first = smtp::link_in(&s.smtp.wait_for(1, Duration::from_secs(10)).await[0]);
    assert_eq!(
        no_redirects().post(&first).send().await.unwrap().status(),
        404
    );

    send(
        &s,
        "user.updated",
        "e3",
        &at(3),
        "rec1",
        "ada@acme.example",
        "active",
    )
    .await;
    s.worker.drain().await.unwrap();
    assert_eq!(states(db.clone()).await.last().unwrap().0, "pending");
    let second = smtp::link_in(&s.smtp.wait_for(2, Duration::from_secs(10)).await[1]);
    assert_eq!(
        no_redirects().post(&second).send().await.unwrap().status(),
        303
    );

    // Deleted and re-created: the person keeps their user and, having
    // accepted, gets no new invitation.
    send(&s, "user.deleted", "e4", &at(4), "rec1", "", "").await;
    s.worker.drain().await.unwrap();
    send(
        &s,
        "user.created",
        "e5",
        &at(5),
        "rec2",
        "ada@acme.example",
        "active",
    )
    .await;
    s.worker.drain().await.unwrap();
    let all = states(db.clone()).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].0, "accepted");
    assert_eq!(s.smtp.messages().len(), 2);
    assert_eq!(auth_state(&s, "ada@acme.example").await, "active");
}

/// A resend rotates the link: the old one stops working at once, the new
/// mail's works, and the expiry starts again.
#[sqlx::test]
async fn resend_rotates_the_link(db: PgPool) {
    let s = setup(db.clone(), false).await;
    create(&s, "evt_1", "rec1", "ada@acme.example").await;
    s.worker.drain().await.unwrap();
    let old = smtp::link_in(&s.smtp.wait_for(1, Duration::from_secs(10)).await[0]);
    let id: i64 = sqlx::query_scalar("select id from invitations")
        .fetch_one(&db)
        .await
        .unwrap();
    let r = s
        .app
        .admin_post(&format!("/api/admin/invitations/{id}/resend"), None)
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["invitation"]["round"], 2);
    assert_eq!(body["mailed"], true);
    assert!(body.get("link").is_none(), "a mailed link is never shown");
    assert_eq!(no_redirects().get(&old).send().await.unwrap().status(), 404);
    s.worker.drain().await.unwrap();
    let new = smtp::link_in(&s.smtp.wait_for(2, Duration::from_secs(10)).await[1]);
    assert_ne!(new, old);
    assert_eq!(
        no_redirects().post(&old).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        no_redirects().post(&new).send().await.unwrap().status(),
        303
    );
    // Nothing more to resend once accepted.
    let r = s
        .app
        .admin_post(&format!("/api/admin/invitations/{id}/resend"), None)
        .await;
    assert_eq!(r.status(), 409);
}

/// SMTP down, then refusing: the mail job retries with backoff, nothing
/// holds up provisioning, and the mail arrives once the server takes it —
/// exactly once.
#[sqlx::test]
async fn smtp_trouble_retries_and_delivers_once(db: PgPool) {
    let mut s = setup(db.clone(), false).await;
    s.smtp.stop().await;
    create(&s, "evt_1", "rec1", "ada@acme.example").await;
    let r = s.worker.drain().await.unwrap();
    assert_eq!((r.done, r.retried), (1, 1), "provisioned; the mail waits");
    let linked: bool = sqlx::query_scalar("select auth_user_id is not null from roster")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(linked, "a mail problem never holds up provisioning");
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("select attempts, last_error from provisioning_jobs where kind = 'invite'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(attempts, 1);
    assert!(error.unwrap().contains("SMTP server unavailable"));

    s.smtp.restart().await;
    s.smtp.refuse_next(2);
    for _ in 0..3 {
        make_due(&db).await;
        s.worker.drain().await.unwrap();
    }
    let mails = s.smtp.wait_for(1, Duration::from_secs(10)).await;
    // Further runs find nothing to send.
    make_due(&db).await;
    s.worker.drain().await.unwrap();
    assert_eq!(s.smtp.messages().len(), 1, "{mails:?}");
    let (state, attempts): (String, i32) =
        sqlx::query_as("select state, attempts from provisioning_jobs where kind = 'invite'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("done", 4));
}

/// Time passes for jobs waiting out a backoff (moved, not slept).
async fn make_due(db: &PgPool) {
    sqlx::query("update provisioning_jobs set run_at = now() where state = 'pending'")
        .execute(db)
        .await
        .unwrap();
}

/// Accept attempts are limited per client address.
#[sqlx::test]
async fn accepting_is_rate_limited_per_client(db: PgPool) {
    let s = setup_with(db.clone(), false, Duration::from_secs(86_400), 3).await;
    let client = no_redirects();
    let bogus = s.app.url(&format!("/invite/{}", "B".repeat(43)));
    for _ in 0..3 {
        assert_eq!(client.post(&bogus).send().await.unwrap().status(), 404);
    }
    let limited = client.post(&bogus).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "60");
    // Another client behind the same proxy has its own allowance.
    let other = client
        .post(&bogus)
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

/// The operators' API: filters, paging, and every bad request refused
/// with nothing changed.
#[sqlx::test]
async fn operators_list_resend_and_revoke(db: PgPool) {
    let s = setup(db.clone(), false).await;
    for (i, email) in ["a@acme.example", "b@acme.example"].iter().enumerate() {
        create(&s, &format!("evt_{i}"), &format!("rec{i}"), email).await;
    }
    s.worker.drain().await.unwrap();
    let list: Value = s
        .app
        .admin_get("/api/admin/invitations?state=pending&limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["invitations"].as_array().unwrap().len(), 1);
    let cursor = list["nextCursor"].as_str().unwrap();
    let next: Value = s
        .app
        .admin_get(&format!(
            "/api/admin/invitations?state=pending&limit=1&cursor={cursor}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["invitations"].as_array().unwrap().len(), 1);
    assert!(next["nextCursor"].is_null());
    let by_email: Value = s
        .app
        .admin_get("/api/admin/invitations?email=B@acme.example")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_email["invitations"][0]["email"], "b@acme.example");
    let id = by_email["invitations"][0]["id"].as_i64().unwrap();

    let before = invitations(&db).await;
    for (path, status) in [
        ("/api/admin/invitations?state=bogus", 400),
        ("/api/admin/invitations?email=nope", 400),
        ("/api/admin/invitations?since=yesterday", 400),
        ("/api/admin/invitations?until=2026-13-01T00:00:00Z", 400),
        ("/api/admin/invitations?userId=ada", 400),
        ("/api/admin/invitations?colour=red", 400),
        ("/api/admin/invitations?limit=0", 400),
    ] {
        assert_eq!(s.app.admin_get(path).await.status(), status, "{path}");
    }
    for (path, status) in [
        ("/api/admin/invitations/abc/resend".to_string(), 400),
        ("/api/admin/invitations/0/revoke".to_string(), 400),
        ("/api/admin/invitations/999999/revoke".to_string(), 404),
        ("/api/admin/invitations/999999/resend".to_string(), 404),
    ] {
        assert_eq!(
            s.app.admin_post(&path, None).await.status(),
            status,
            "{path}"
        );
    }
    let anonymous = s
        .app
        .client
        .post(s.app.url(&format!("/api/admin/invitations/{id}/revoke")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = s
        .app
        .client
        .get(s.app.url("/api/admin/invitations"))
        .bearer_auth(format!("{ADMIN_TOKEN}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        invitations(&db).await,
        before,
        "refused calls change nothing"
    );

    let revoked = s
        .app
        .admin_post(&format!("/api/admin/invitations/{id}/revoke"), None)
        .await;
    assert_eq!(revoked.status(), 200);
    let twice = s
        .app
        .admin_post(&format!("/api/admin/invitations/{id}/revoke"), None)
        .await;
    assert_eq!(twice.status(), 409);
    let audit: (String, Value) = sqlx::query_as(
        "select actor, details from audit_log where action = 'invitation.revoke' order by id desc limit 1",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(audit.0, "ops");
    assert_eq!(audit.1["reason"], "operator");
    // An operator's revoke sticks through later provisioning.
    s.app.admin_post("/api/admin/provision", None).await;
    let open: i64 = sqlx::query_scalar(
        "select count(*) from invitations where email = 'b@acme.example' and state = 'pending'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(open, 0);
    // The user view lists the person's invitations.
    let detail: Value = s
        .app
        .admin_get("/api/admin/users/rec1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["invitations"][0]["state"], "revoked");
}

/// Without SMTP, invitations are still issued; a resend shows the new link
/// once, for the operator to hand over.
#[sqlx::test]
async fn without_smtp_a_resend_shows_the_link(db: PgPool) {
    let cfg = invite_config(None, Duration::from_secs(86_400), 1_000);
    let provider = Arc::new(LocalProvider::new(db.clone()).inviting(true));
    let c = cfg.clone();
    let app = TestApp::spawn_with_provider(db.clone(), provider, move |config| {
        config.invitations = Some(c);
    })
    .await;
    let r = app
        .post_signed(&upsert_event(
            "user.created",
            "e1",
            "2026-11-22T10:00:00Z",
            "rec1",
            "ada@acme.example",
        ))
        .await;
    assert!(r.status().is_success());
    // The lookup provisions inline: the invitation is issued, nothing queued to mail.
    let body: Value = app
        .lookup("email=ada@acme.example")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["auth"]["state"], "invited");
    let jobs: i64 =
        sqlx::query_scalar("select count(*) from provisioning_jobs where kind = 'invite'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(jobs, 0);
    let id: i64 = sqlx::query_scalar("select id from invitations")
        .fetch_one(&db)
        .await
        .unwrap();
    let r: Value = app
        .admin_post(&format!("/api/admin/invitations/{id}/resend"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["mailed"], false);
    let link = r["link"].as_str().unwrap();
    let path = link.strip_prefix("https://rosterd.acme.example").unwrap();
    let accepted = no_redirects().post(app.url(path)).send().await.unwrap();
    assert_eq!(accepted.status(), 303);
}

/// In headless Chromium: the mail's button opens the page, Accept lands on
/// the app. `CONSOLE_SCREENSHOTS=1` saves the mail and the page for the
/// README (docs/console/).
#[sqlx::test]
async fn in_a_browser_the_mail_leads_to_the_app(db: PgPool) {
    // The app people land in.
    let landing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let welcome = format!("http://{}/welcome", landing.local_addr().unwrap());
    let app_router = axum::Router::new().route(
        "/welcome",
        axum::routing::get(|| async { axum::response::Html("<h1>Welcome aboard</h1>") }),
    );
    tokio::spawn(async move { axum::serve(landing, app_router).await.unwrap() });

    let smtp = Smtp::start().await;
    let mut cfg = invite_config(Some(&smtp), Duration::from_secs(7 * 86_400), 1_000);
    cfg.redirect_url = welcome.parse().unwrap();
    let provider: Arc<dyn AuthProvider> = Arc::new(LocalProvider::new(db.clone()).inviting(true));
    let c = cfg.clone();
    let app = TestApp::spawn_with_provider(db.clone(), provider.clone(), move |config| {
        config.invitations = Some(c);
    })
    .await;
    let r = app
        .post_signed(&upsert_event(
            "user.created",
            "e1",
            "2026-11-22T10:00:00Z",
            "rec1",
            "ada@acme.example",
        ))
        .await;
    assert!(r.status().is_success());
    worker(&db, provider, &cfg, &app).drain().await.unwrap();
    let mail = &smtp.wait_for(1, Duration::from_secs(10)).await[0];
    let html = smtp::part(mail, "text/html");
    let file = std::env::temp_dir().join(format!("rosterd-mail-{}.html", uuid::Uuid::new_v4()));
    std::fs::write(&file, &html).unwrap();

    let b = super::webdriver::Browser::start().await;
    b.goto(&format!("file://{}", file.display())).await;
    b.wait_text("You have been invited to Acme Intranet").await;
    shot(&b, "invitation-mail").await;
    b.click("a").await;
    b.wait_text("Accept the invitation").await;
    assert!(b.url().await.contains("/invite/"));
    shot(&b, "invitation-page").await;
    b.click("button[type=submit]").await;
    b.wait_url("/welcome").await;
    b.wait_text("Welcome aboard").await;
    let _ = std::fs::remove_file(&file);
    let confirmed: bool = sqlx::query_scalar(
        "select email_confirmed_at is not null from auth_accounts where email = 'ada@acme.example'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(confirmed);
    assert_eq!(invitations(&db).await[0].2, "accepted");
}

async fn shot(b: &super::webdriver::Browser, name: &str) {
    let png = b.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    if std::env::var("CONSOLE_SCREENSHOTS").as_deref() == Ok("1") {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/console");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

/// A create whose answer was lost still makes a new person: the run that
/// finds (and adopts) the user rosterd made invites them, once; a user
/// that existed before rosterd is adopted without an invitation.
#[sqlx::test]
async fn a_lost_create_still_invites_and_an_old_account_does_not(db: PgPool) {
    let s = setup(db.clone(), true).await;
    let g = s.gotrue.as_ref().unwrap();
    g.lose_next_create();
    create(&s, "evt_1", "rec1", "ada@acme.example").await;
    g.seed_email("grace@acme.example");
    create(&s, "evt_2", "rec2", "grace@acme.example").await;
    for _ in 0..3 {
        make_due(&db).await;
        s.worker.drain().await.unwrap();
    }
    let lost: i64 = sqlx::query_scalar(
        "select count(*) from provisioning_attempts a join provisioning_jobs j on j.id = a.job_id
          where j.email = 'ada@acme.example' and a.error is not null",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(lost, 1, "the first create's answer was lost");
    let all = invitations(&db).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        (all[0].1.as_str(), all[0].2.as_str()),
        ("ada@acme.example", "pending")
    );
    let mails = s.smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    assert!(smtp::header(&mails[0], "To")
        .unwrap()
        .contains("ada@acme.example"));
    assert_eq!(auth_state(&s, "grace@acme.example").await, "active");
}

/// Deleted before accepting: the open invitation is revoked at once, its
/// link stops working, and the lookup no longer finds the person.
#[sqlx::test]
async fn deleting_the_person_revokes_the_open_invitation(db: PgPool) {
    let mut s = setup(db.clone(), false).await;
    let at = |n: u32| format!("2026-11-22T10:00:{n:02}Z");
    send(
        &s,
        "user.created",
        "e1",
        &at(1),
        "rec1",
        "ada@acme.example",
        "active",
    )
    .await;
    s.worker.drain().await.unwrap();
    let link = smtp::link_in(&s.smtp.wait_for(1, Duration::from_secs(10)).await[0]);
    assert_eq!(
        no_redirects().get(&link).send().await.unwrap().status(),
        200
    );
    send(&s, "user.deleted", "e2", &at(2), "rec1", "", "").await;
    s.worker.drain().await.unwrap();
    let state: (String, Option<String>) =
        sqlx::query_as("select state, revoked_reason from invitations")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(state, ("revoked".into(), Some("left".into())));
    assert_eq!(
        no_redirects().get(&link).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        no_redirects().post(&link).send().await.unwrap().status(),
        404
    );
    assert_eq!(s.app.lookup("email=ada@acme.example").await.status(), 403);
    s.smtp.stop().await;
}
