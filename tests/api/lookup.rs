//! `GET /api/users/lookup`: roster answers, inline provisioning, the 401 /
//! 400 / 403 / 404 / 503 answers.

use crate::gotrue::{self, Failure, GoTrue};
use crate::helpers::*;
use crate::provisioning::Harness;
use rosterd::provision::provider::supabase::SupabaseProvider;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

async fn body(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

#[sqlx::test]
async fn known_active_person_is_answered_from_the_roster(db: PgPool) {
    let mut h = Harness::local(db.clone());
    h.send("user.created", "recA", "Ada@x.io", "active").await;
    h.drain().await;
    let auth_id = h.user("ada@x.io").await.unwrap().id;
    let app = TestApp::spawn(db).await;
    for query in ["email=ada@x.io", "email=%20ADA@X.IO%20", "id=recA"] {
        let resp = app.lookup(query).await;
        assert_eq!(resp.status(), 200, "{query}");
        assert_eq!(
            body(resp).await,
            json!({
                "user": {"id": "recA", "email": "ada@x.io", "name": "Ada Lovelace",
                         "status": "active", "roles": ["admin", "reader"]},
                "auth": {"userId": auth_id, "state": "active"},
                "source": "roster"
            }),
            "{query}"
        );
    }
}

#[sqlx::test]
async fn active_person_without_an_account_is_provisioned_inline(db: PgPool) {
    let mut h = Harness::local(db.clone());
    h.send("user.created", "recA", "ada@x.io", "active").await;
    assert!(h.user("ada@x.io").await.is_none(), "the worker has not run");
    let app = TestApp::spawn(db).await;
    let resp = app.lookup("email=ada@x.io").await;
    assert_eq!(resp.status(), 200);
    let b = body(resp).await;
    let made = h
        .user("ada@x.io")
        .await
        .expect("provisioned before answering");
    assert_eq!(b["auth"]["userId"], json!(made.id));
    // The queued job later finds nothing to do.
    h.drain().await;
    assert_eq!(h.action_for("ada@x.io").await, "unchanged");
    assert_eq!(h.all_users().await.len(), 1);
}

/// One place at the gate and no waiting in line: twenty logins of one new
/// person at once share one provisioning run instead of refusing nineteen.
#[sqlx::test]
async fn concurrent_first_logins_of_one_person_share_one_run(db: PgPool) {
    let mut h = Harness::local(db.clone());
    h.send("user.created", "recA", "crowd@x.io", "active").await;
    let app = Arc::new(
        TestApp::spawn_with(db, |c| {
            c.lookup.provision_concurrency = 1;
            c.lookup.queue_wait = Duration::ZERO;
        })
        .await,
    );
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (app, barrier) = (app.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            let r = app.lookup("email=crowd@x.io").await;
            (r.status().as_u16(), body(r).await["auth"]["userId"].clone())
        });
    }
    let answers = tasks.join_all().await;
    let made = h.user("crowd@x.io").await.expect("provisioned");
    for (status, user_id) in &answers {
        assert_eq!(*status, 200, "{answers:?}");
        assert_eq!(*user_id, json!(made.id));
    }
    assert_eq!(h.all_users().await.len(), 1);
}

#[sqlx::test]
async fn provider_down_during_inline_provisioning_is_503_and_the_job_stays(db: PgPool) {
    let mut h = Harness::local(db.clone());
    h.send("user.created", "recA", "ada@x.io", "active").await;
    let g = GoTrue::start().await;
    g.fail_next(5, Failure::ServerError);
    let provider = SupabaseProvider::new(
        g.url(),
        gotrue::KEY.to_string().into(),
        Duration::from_secs(5),
    )
    .unwrap();
    let app = TestApp::spawn_with_provider(db, Arc::new(provider), |_| {}).await;
    let resp = app.lookup("email=ada@x.io").await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(body(resp).await, json!({"error": "provisioning_pending"}));
    let state: String =
        sqlx::query_scalar("select state from provisioning_jobs where email = 'ada@x.io'")
            .fetch_one(&h.db)
            .await
            .unwrap();
    assert_eq!(state, "pending");
}

#[sqlx::test]
async fn disabled_and_deleted_people_are_403_with_their_status(db: PgPool) {
    let mut h = Harness::local(db.clone());
    h.send("user.created", "recA", "off@x.io", "disabled").await;
    h.send("user.created", "recB", "gone@x.io", "active").await;
    h.send("user.deleted", "recB", "", "").await;
    h.send("user.deleted", "recT", "", "").await;
    let app = TestApp::spawn(db).await;
    for (query, status) in [
        ("email=off@x.io", "disabled"),
        ("id=recA", "disabled"),
        ("email=gone@x.io", "deleted"),
        ("id=recB", "deleted"),
        ("id=recT", "deleted"),
    ] {
        let resp = app.lookup(query).await;
        assert_eq!(resp.status(), 403, "{query}");
        assert_eq!(
            body(resp).await,
            json!({"error": "user_inactive", "status": status}),
            "{query}"
        );
    }
    assert!(
        h.all_users().await.is_empty(),
        "nothing is created for inactive people"
    );
}

#[sqlx::test]
async fn unknown_person_is_404(db: PgPool) {
    let app = TestApp::spawn(db).await;
    for query in ["email=nobody@x.io", "id=recNobody"] {
        let resp = app.lookup(query).await;
        assert_eq!(resp.status(), 404);
        assert_eq!(body(resp).await, json!({"error": "user_not_found"}));
    }
}

#[sqlx::test]
async fn missing_or_wrong_token_is_401(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let url = app.url("/api/users/lookup?email=a@x.io");
    for auth in [
        None,
        Some("Bearer wrong-token"),
        Some("Basic bG9naW4="),
        Some("Bearer "),
    ] {
        let mut req = app.client.get(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        assert_eq!(body(resp).await, json!({"error": "unauthorized"}));
    }
    // No token configured admits nobody.
    let closed = TestApp::spawn_with(app.db.clone(), |c| c.login_tokens = Default::default()).await;
    assert_eq!(closed.lookup("email=a@x.io").await.status(), 401);
}

#[sqlx::test]
async fn malformed_queries_are_400(db: PgPool) {
    let app = TestApp::spawn(db).await;
    for query in [
        "",
        "email=a@x.io&id=recA",
        "email=not-an-email",
        "id=bad%20id",
        "email=a@x.io&extra=1",
        "id=",
    ] {
        let resp = app.lookup(query).await;
        assert_eq!(resp.status(), 400, "{query:?}");
        let b = body(resp).await;
        assert_eq!(b["error"], "bad_request", "{query:?}");
        assert!(b["detail"].as_str().is_some(), "{query:?}");
    }
}
