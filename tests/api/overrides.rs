//! Role overrides (docs/contract.md §7), over the admin API with the worker
//! draining as `rosterd serve` runs it, on both providers: what the provider
//! holds, what the lookup answers, and what the reconcile counts.

use super::gotrue::{self, GoTrue};
use super::helpers::{upsert_event, TestApp, ADMIN_TOKEN};
use rosterd::config::WorkerConfig;
use rosterd::provision::provider::local::LocalProvider;
use rosterd::provision::provider::supabase::SupabaseProvider;
use rosterd::provision::provider::AuthProvider;
use rosterd::provision::worker::Worker;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

struct Setup {
    app: TestApp,
    provider: Arc<dyn AuthProvider>,
    worker: Worker,
    seq: u32,
    _gotrue: Option<GoTrue>,
}

async fn setup(db: PgPool, supabase: bool) -> Setup {
    let (provider, g): (Arc<dyn AuthProvider>, _) = if supabase {
        let g = GoTrue::start().await;
        let p = SupabaseProvider::new(
            g.url(),
            gotrue::KEY.to_string().into(),
            Duration::from_secs(5),
        )
        .unwrap();
        (Arc::new(p), Some(g))
    } else {
        (Arc::new(LocalProvider::new(db.clone())), None)
    };
    let app = TestApp::spawn_with_provider(db.clone(), provider.clone(), |_| {}).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(6)
        .connect_lazy_with(rosterd::db::worker_options((*db.connect_options()).clone()));
    let worker = Worker::new(
        pool,
        provider.clone(),
        WorkerConfig {
            concurrency: 4,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
            max_attempts: 12,
        },
    );
    Setup {
        app,
        provider,
        worker,
        seq: 0,
        _gotrue: g,
    }
}

impl Setup {
    /// A newer event for `record`, then the queue drained.
    async fn event(&mut self, kind: &str, record: &str, email: &str, groups: &[&str]) {
        self.seq += 1;
        let at = format!("2026-11-22T10:{:02}:{:02}Z", self.seq / 60, self.seq % 60);
        let mut ev = upsert_event(kind, &format!("e{}", self.seq), &at, record, email);
        if kind == "user.deleted" {
            ev = super::helpers::delete_event(&format!("e{}", self.seq), &at, record);
        } else {
            ev["user"]["groups"] = json!(groups);
        }
        assert_eq!(self.app.post_signed(&ev).await.status(), 200);
        self.drain().await;
    }

    async fn drain(&self) {
        let r = self.worker.drain().await.unwrap();
        assert_eq!(r.dead, 0);
    }

    async fn put(&self, record: &str, body: Value) -> reqwest::Response {
        self.app
            .client
            .put(
                self.app
                    .url(&format!("/api/admin/users/{record}/role-overrides")),
            )
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// The auth user's roles at the provider, by email.
    async fn provider_roles(&self, email: &str) -> Vec<String> {
        let user = self.provider.find_by_email(email).await.unwrap().unwrap();
        let mut roles = user.roles;
        roles.sort();
        roles
    }

    async fn lookup_roles(&self, email: &str) -> Vec<String> {
        let body: Value = self
            .app
            .lookup(&format!("email={email}"))
            .await
            .json()
            .await
            .unwrap();
        serde_json::from_value(body["user"]["roles"].clone()).unwrap()
    }

    async fn user_id(&self, email: &str) -> uuid::Uuid {
        self.provider
            .find_by_email(email)
            .await
            .unwrap()
            .unwrap()
            .id
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Preserve survives losing the group; suppress beats a group's grant;
/// the lookup says what the provider holds.
async fn preserve_and_suppress(supabase: bool, db: PgPool) {
    let mut s = setup(db, supabase).await;
    s.event("user.created", "rec1", "ada@x.io", &["admins"])
        .await;
    assert_eq!(
        s.provider_roles("ada@x.io").await,
        strings(&["admin", "reader"])
    );

    let r = s
        .put(
            "rec1",
            json!({"preserve": ["admin"], "suppress": ["reader"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["mapped"], json!(["admin", "reader"]));
    assert_eq!(body["effective"], json!(["admin"]));
    s.drain().await;
    assert_eq!(s.provider_roles("ada@x.io").await, strings(&["admin"]));

    // The group goes; the preserved role stays, the suppressed default stays out.
    s.event("user.updated", "rec1", "ada@x.io", &["ops"]).await;
    assert_eq!(
        s.provider_roles("ada@x.io").await,
        strings(&["admin", "auditor", "publisher"])
    );
    assert_eq!(
        s.lookup_roles("ada@x.io").await,
        strings(&["admin", "auditor", "publisher"])
    );

    // Lifted: the groups alone decide again.
    let r = s
        .app
        .client
        .delete(s.app.url("/api/admin/users/rec1/role-overrides"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.drain().await;
    assert_eq!(
        s.provider_roles("ada@x.io").await,
        strings(&["auditor", "publisher", "reader"])
    );
}

#[sqlx::test]
async fn preserve_and_suppress_local(db: PgPool) {
    preserve_and_suppress(false, db).await;
}

#[sqlx::test]
async fn preserve_and_suppress_supabase(db: PgPool) {
    preserve_and_suppress(true, db).await;
}

/// Freeze keeps what the person had through a sync that would revoke it
/// and lets new roles in; lifting it revokes on the next run.
#[sqlx::test]
async fn freeze_keeps_roles_until_lifted(db: PgPool) {
    let mut s = setup(db, true).await;
    s.event("user.created", "rec1", "ada@x.io", &["admins"])
        .await;
    let r = s.put("rec1", json!({"freeze": true})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["frozenRoles"], json!(["admin", "reader"]));
    s.event("user.updated", "rec1", "ada@x.io", &["ops"]).await;
    assert_eq!(
        s.provider_roles("ada@x.io").await,
        strings(&["admin", "auditor", "publisher", "reader"])
    );
    // Still frozen after another change: the kept roles do not move.
    let r: Value = s
        .put("rec1", json!({"freeze": true, "preserve": ["x"]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["frozenRoles"], json!(["admin", "reader"]));
    s.drain().await;
    let r = s.put("rec1", json!({"freeze": false})).await;
    assert_eq!(r.status(), 200);
    s.drain().await;
    assert_eq!(
        s.provider_roles("ada@x.io").await,
        strings(&["auditor", "publisher", "reader"])
    );
}

/// The override belongs to the auth user: it follows an email change and
/// a deleted-then-re-created record.
#[sqlx::test]
async fn an_override_follows_the_person(db: PgPool) {
    let mut s = setup(db, false).await;
    s.event("user.created", "rec1", "ada@x.io", &[]).await;
    let id = s.user_id("ada@x.io").await;
    assert_eq!(
        s.put("rec1", json!({"preserve": ["auditor"]}))
            .await
            .status(),
        200
    );
    s.drain().await;
    s.event("user.updated", "rec1", "ada.l@x.io", &[]).await;
    assert_eq!(s.user_id("ada.l@x.io").await, id);
    assert_eq!(
        s.provider_roles("ada.l@x.io").await,
        strings(&["auditor", "reader"])
    );
    assert_eq!(
        s.lookup_roles("ada.l@x.io").await,
        strings(&["auditor", "reader"])
    );
    s.event("user.deleted", "rec1", "", &[]).await;
    s.event("user.created", "rec2", "ada.l@x.io", &[]).await;
    assert_eq!(
        s.user_id("ada.l@x.io").await,
        id,
        "the re-created record keeps the user"
    );
    assert_eq!(
        s.provider_roles("ada.l@x.io").await,
        strings(&["auditor", "reader"])
    );
    let view: Value = s
        .app
        .admin_get("/api/admin/users/rec2/role-overrides")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["preserve"], json!(["auditor"]));
    assert_eq!(view["userId"], json!(id));
}

/// Drift from an override (set while nothing ran) is counted by the dry
/// run as `updated` and fixed by the reconcile.
#[sqlx::test]
async fn the_reconcile_counts_and_fixes_drift_from_overrides(db: PgPool) {
    let mut s = setup(db.clone(), false).await;
    s.event("user.created", "rec1", "ada@x.io", &["admins"])
        .await;
    let id = s.user_id("ada@x.io").await;
    sqlx::query(
        "insert into role_overrides (user_id, suppress, updated_by) values ($1, '{admin}', 'test')",
    )
    .bind(id)
    .execute(&db)
    .await
    .unwrap();
    let dry: Value = s
        .app
        .admin_post("/api/admin/provision", Some(&json!({"dryRun": true})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (dry["updated"].clone(), dry["unchanged"].clone()),
        (json!(1), json!(0))
    );
    let run: Value = s
        .app
        .admin_post("/api/admin/provision", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["updated"], json!(1));
    assert_eq!(s.provider_roles("ada@x.io").await, strings(&["reader"]));
    let again: Value = s
        .app
        .admin_post("/api/admin/provision", Some(&json!({"dryRun": true})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["unchanged"], json!(1));
}

/// Bad input changes nothing; changes are audited with before and after.
#[sqlx::test]
async fn bad_overrides_are_refused_and_changes_audited(db: PgPool) {
    let mut s = setup(db.clone(), false).await;
    s.event("user.created", "rec1", "ada@x.io", &[]).await;
    // A record whose person has no auth user yet.
    let ev = upsert_event(
        "user.created",
        "e99",
        "2026-11-22T11:00:00Z",
        "rec9",
        "bo@x.io",
    );
    assert_eq!(s.app.post_signed(&ev).await.status(), 200);
    let overrides = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from role_overrides")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    for (record, body, status) in [
        ("rec1", json!({"preserve": "admin"}), 400),
        (
            "rec1",
            json!({"preserve": ["admin"], "suppress": ["admin"]}),
            400,
        ),
        ("rec1", json!({"preserve": [" admin"]}), 400),
        ("rec1", json!({"preserve": ["a,b"]}), 400),
        ("rec1", json!({"colour": true}), 400),
        ("rec1", json!([]), 400),
        ("nope", json!({}), 404),
        ("bad id!", json!({}), 400),
        ("rec9", json!({"preserve": ["admin"]}), 409),
    ] {
        let r = s.put(record, body.clone()).await;
        assert_eq!(r.status(), status, "{record} {body}");
    }
    let huge = json!({"preserve": vec!["r".repeat(60); 5000]});
    assert_eq!(s.put("rec1", huge).await.status(), 413);
    let anonymous = s
        .app
        .client
        .put(s.app.url("/api/admin/users/rec1/role-overrides"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let none = s
        .app
        .client
        .delete(s.app.url("/api/admin/users/rec1/role-overrides"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404, "no override to lift");
    assert_eq!(overrides().await, 0);

    assert_eq!(
        s.put("rec1", json!({"preserve": ["admin"]})).await.status(),
        200
    );
    let (actor, role, details): (String, Option<String>, Value) = sqlx::query_as(
        "select actor, actor_role, details from audit_log where action = 'user.role_overrides.set'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((actor.as_str(), role.as_deref()), ("ops", Some("operator")));
    assert_eq!(details["before"]["preserve"], json!([]));
    assert_eq!(details["after"]["preserve"], json!(["admin"]));
    assert_eq!(details["after"]["effective"], json!(["admin", "reader"]));
    let metrics = s
        .app
        .client
        .get(s.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\nrosterd_role_overrides 1\n"),
        "{metrics}"
    );
}
