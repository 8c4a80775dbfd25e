//! Pool, migrations and the outage test shared by every database caller.

use crate::config::DatabaseConfig;
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub async fn connect(cfg: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(cfg.max_connections)
        .acquire_timeout(cfg.acquire_timeout)
        // A ping per checkout costs a round trip per request; a broken
        // connection fails its query instead, which answers 503.
        .test_before_acquire(false)
        .connect(cfg.url.expose_secret())
        .await
}

/// A pool for the provisioning worker. Its commits (claims, links,
/// results) do not wait for the disk: losing the last few of them in a
/// crash only means a job runs again, and provisioning is idempotent. The
/// flush per job was otherwise the worker's bottleneck.
pub async fn connect_worker(
    cfg: &DatabaseConfig,
    concurrency: usize,
) -> Result<PgPool, sqlx::Error> {
    let opts: PgConnectOptions = cfg.url.expose_secret().parse()?;
    PgPoolOptions::new()
        .max_connections(concurrency as u32 + 2)
        .acquire_timeout(cfg.acquire_timeout)
        .test_before_acquire(false)
        .connect_with(worker_options(opts))
        .await
}

pub fn worker_options(opts: PgConnectOptions) -> PgConnectOptions {
    opts.options([("synchronous_commit", "off")])
}

/// True for errors that mean "the database is not answering right now"
/// (503 + Retry-After) rather than a fault in our SQL.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 53: insufficient resources;
        // 57P0x: the server is shutting down or was restarted.
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("53") || c.starts_with("57P")),
        _ => false,
    }
}

/// Every migration this binary knows is applied successfully.
pub async fn migrations_current(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let applied: Vec<i64> =
        sqlx::query_scalar("select version from _sqlx_migrations where success order by version")
            .fetch_all(pool)
            .await?;
    Ok(MIGRATOR
        .iter()
        .all(|m| applied.binary_search(&m.version).is_ok()))
}
