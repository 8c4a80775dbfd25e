//! Spawns the real app on port 0 against a real Postgres database and
//! signs requests the way the upstream does.

use rosterd::config::{Config, DatabaseConfig, ProviderConfig};
use rosterd::provision::provider::local::LocalProvider;
use rosterd::roles::RoleMap;
use rosterd::signature::{Key, Verifier};
use rosterd::{build_app, run_http, AppState};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Tests that load the machine on purpose (a herd of thousands of
/// clients) take this for writing, so that no other such test shares the
/// two cores with them; the black-box stress tests and the directory herd
/// take it for reading.
pub static HEAVY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A plain (UTF-8) secret, as the Airtable script uses.
pub const SECRET: &str = "test-secret-0123456789";
/// The login service's bearer token in tests.
pub const LOGIN_TOKEN: &str = "login-token-0123456789";
/// The operator's admin token in tests; its name is `ops`.
pub const ADMIN_TOKEN: &str = "admin-token-0123456789";
/// The identity provider's SCIM token in tests; its name is `okta`.
pub const SCIM_TOKEN: &str = "scim-token-0123456789abcdef0123456789";
/// A Standard Webhooks secret: base64 of 24 key bytes.
pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn config() -> Config {
    Config {
        db: DatabaseConfig {
            url: "postgres://unused".to_string().into(),
            max_connections: 5,
            acquire_timeout: std::time::Duration::from_secs(2),
        },
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        webhook_enabled: true,
        verifier: verifier(&[SECRET, WHSEC]),
        max_body_bytes: 64 * 1024,
        roles: RoleMap::parse("admins=admin\nops=publisher\nops=auditor", "reader").unwrap(),
        events: rosterd::event::EventRules::default(),
        provider: ProviderConfig::Local,
        login_tokens: rosterd::bearer::BearerTokens::parse(Some(&LOGIN_TOKEN.to_string().into())),
        admin_tokens: rosterd::bearer::BearerTokens::parse_named(Some(
            &format!("ops:{ADMIN_TOKEN}").into(),
        ))
        .unwrap(),
        scim_tokens: rosterd::bearer::BearerTokens::parse_named(Some(
            &format!("okta:{SCIM_TOKEN}").into(),
        ))
        .unwrap(),
        directory: None,
        worker: None,
        // Tests read what they just wrote: no caching.
        metrics_gauges_max_age: std::time::Duration::ZERO,
        lookup: rosterd::config::LookupConfig {
            provision_concurrency: 8,
            queue_wait: std::time::Duration::from_millis(250),
        },
        invitations: None,
    }
}

pub fn verifier(secrets: &[&str]) -> Verifier {
    Verifier::new(
        secrets.iter().map(|s| Key::parse(s).unwrap()).collect(),
        300,
    )
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub db: PgPool,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    pub async fn spawn(db: PgPool) -> Self {
        Self::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: PgPool, tweak: impl FnOnce(&mut Config)) -> Self {
        let provider = Arc::new(LocalProvider::new(db.clone()));
        Self::spawn_with_provider(db, provider, tweak).await
    }

    pub async fn spawn_with_provider(
        db: PgPool,
        provider: Arc<dyn rosterd::provision::provider::AuthProvider>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::spawn_full(db, provider, None, tweak).await
    }

    pub async fn spawn_full(
        db: PgPool,
        provider: Arc<dyn rosterd::provision::provider::AuthProvider>,
        readthrough: Option<Arc<rosterd::lookup::readthrough::ReadThrough>>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = config();
        tweak(&mut config);
        let app = build_app(AppState {
            // In-process tests run a handful of requests: one pool will do.
            runs: rosterd::db::RunPool::new(db.clone())
                .inviting(config.invitations.as_ref().map(|i| i.policy())),
            first_logins: Arc::new(rosterd::lookup::FirstLogins::new(
                rosterd::overload::Gate::new(
                    config.lookup.provision_concurrency,
                    config.lookup.queue_wait,
                ),
            )),
            gauges: rosterd::metrics::Gauges::new(config.metrics_gauges_max_age),
            readthrough,
            directory: None,
            provider,
            wakeup: rosterd::outbox::Wakeup::spawn(db.clone()),
            db: db.clone(),
            config: Arc::new(config),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(run_http(listener, app, shutdown.clone().cancelled_owned()));
        Self {
            addr,
            db,
            client: reqwest::Client::new(),
            shutdown,
        }
    }

    /// The login lookup with the test token.
    pub async fn lookup(&self, query: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/api/users/lookup?{query}")))
            .bearer_auth(LOGIN_TOKEN)
            .send()
            .await
            .expect("request reaches the app")
    }

    /// An admin GET with the operator's token.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request reaches the app")
    }

    /// An admin POST with the operator's token and an optional JSON body.
    pub async fn admin_post(&self, path: &str, body: Option<&Value>) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.expect("request reaches the app")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Posts raw bytes with exactly the given headers.
    pub async fn post_inbound(&self, body: &[u8], headers: &[(&str, String)]) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/api/sync/users/inbound"))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.expect("request reaches the app")
    }

    /// Posts a body signed with the plain scheme and the default secret.
    pub async fn post_signed(&self, body: &Value) -> reqwest::Response {
        post_signed_to(&self.client, &self.url(""), body).await
    }
}

pub fn plain_signature(secret: &str, body: &[u8]) -> String {
    Key::parse(secret).unwrap().sign_plain(body)
}

/// A `user.created`/`user.updated` event body.
pub fn upsert_event(kind: &str, event_id: &str, at: &str, user_id: &str, email: &str) -> Value {
    json!({
        "eventId": event_id,
        "eventType": kind,
        "occurredAt": at,
        "user": {"id": user_id, "email": email, "name": "Ada Lovelace",
                 "status": "active", "groups": ["engineering", "admins"]}
    })
}

pub fn delete_event(event_id: &str, at: &str, user_id: &str) -> Value {
    json!({"eventId": event_id, "eventType": "user.deleted", "occurredAt": at, "user": {"id": user_id}})
}

/// Everything the ingest path can write, for "nothing changed" assertions.
#[derive(Debug, PartialEq)]
pub struct DbState {
    pub events: Vec<(String, String)>,
    pub roster: Vec<String>,
    pub jobs: Vec<(String, String)>,
}

pub async fn db_state(db: &PgPool) -> DbState {
    let events = sqlx::query_as::<_, (String, String)>(
        "select event_id, outcome from inbound_events order by event_id",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let roster = sqlx::query_scalar::<_, String>(
        "select row(r.*)::text from (select id, email, name, status, groups, roles, profile_at,
                profile_event_id, deleted_at, deleted_event_id, last_at, last_event_id
           from roster order by id) r",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let jobs = sqlx::query_as::<_, (String, String)>(
        "select email, state from provisioning_jobs order by email, id",
    )
    .fetch_all(db)
    .await
    .unwrap();
    DbState {
        events,
        roster,
        jobs,
    }
}

/// A brand-new migrated database, for tests that manage their own runtime
/// (property tests) and so cannot use `#[sqlx::test]`.
pub async fn fresh_database() -> PgPool {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is set by `make test`");
    let admin = PgPool::connect(&url).await.unwrap();
    let name = format!("rosterd_prop_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let opts: PgConnectOptions = url.parse::<PgConnectOptions>().unwrap().database(&name);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(opts)
        .await
        .unwrap();
    rosterd::db::MIGRATOR.run(&pool).await.unwrap();
    pool
}

/// A URL for the binary to reach the same test database.
pub fn url_of(opts: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap()
    )
}

/// A port nobody listens on right now, for a spawned `rosterd serve`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `#[sqlx::test]` database as a pool, with every migration applied
/// (for tests that take `PgConnectOptions` to hand the URL to the binary).
pub async fn migrated(opts: &PgConnectOptions) -> PgPool {
    let db = sqlx::postgres::PgPoolOptions::new()
        .connect_with(opts.clone())
        .await
        .unwrap();
    rosterd::db::MIGRATOR.run(&db).await.unwrap();
    db
}

/// Polls `/readyz` of a spawned service until it answers 200 (bounded).
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..400 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{base} did not become ready");
}

/// A password for database URLs handed to the binary: the test cluster
/// trusts loopback and ignores it, so a test can tell it is never printed.
pub const DB_PASSWORD: &str = "db-hunter2-password";

pub fn url_with_password(opts: &PgConnectOptions) -> String {
    format!(
        "postgres://{}:{DB_PASSWORD}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap()
    )
}

/// Polls `check` until it holds (true) or `limit` passes (false).
pub async fn poll<F, Fut>(limit: std::time::Duration, check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}

/// Makes the database refuse any change to records whose id starts with
/// `recBlocked`, the way a constraint or trigger added by a DBA would.
pub async fn block_records(db: &PgPool) {
    sqlx::query(
        r#"create function block_rec() returns trigger language plpgsql as $$
           begin
               if new.id like 'recBlocked%' then
                   raise exception 'record % is on hold', new.id;
               end if;
               return new;
           end $$"#,
    )
    .execute(db)
    .await
    .unwrap();
    sqlx::query("create trigger block_rec before insert or update on roster for each row execute function block_rec()")
        .execute(db)
        .await
        .unwrap();
}

pub async fn unblock_records(db: &PgPool) {
    sqlx::query("drop trigger block_rec on roster")
        .execute(db)
        .await
        .unwrap();
}

/// POSTs `body` to the inbound endpoint of a service at `base` (a real
/// binary), signed with [`SECRET`].
pub async fn post_signed_to(
    client: &reqwest::Client,
    base: &str,
    body: &Value,
) -> reqwest::Response {
    let raw = serde_json::to_vec(body).unwrap();
    client
        .post(format!("{base}/api/sync/users/inbound"))
        .header("content-type", "application/json")
        .header("x-signature", plain_signature(SECRET, &raw))
        .body(raw)
        .send()
        .await
        .unwrap()
}
