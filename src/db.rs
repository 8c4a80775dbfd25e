//! Pools, migrations and the outage test shared by every database caller.
//!
//! # Pools, and the rule that keeps them from deadlocking
//!
//! A task that holds a pooled connection and waits for another one can
//! deadlock with its peers: once every connection is held by a task waiting
//! for a second, all of them wait out the acquire timeout. So connections
//! come from pools in tiers, and a task holding a connection of one tier
//! only ever waits for a connection of a *later* tier, never its own or an
//! earlier one:
//!
//! 1. [`connect`], the main pool: queries, ingest, admin. A holder waits
//!    only for tier 2 or 3 (a full reconcile holds its lock here while it
//!    provisions).
//! 2. [`connect_provisioning`] and [`connect_worker`]: a provisioning run's
//!    one connection, which holds its advisory locks and does all its
//!    roster reads and writes. A holder waits only for tier 3.
//! 3. [`connect_accounts`]: the local provider's account store. One
//!    statement per checkout; a holder waits for nothing.
//!
//! Every wait then points down the tiers, and the lowest waiter always
//! gets its connection back from a holder that waits for nothing.

use crate::config::DatabaseConfig;
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub(crate) async fn connect(cfg: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(cfg.max_connections)
        .acquire_timeout(cfg.acquire_timeout)
        // A ping per checkout costs a round trip per request; a broken
        // connection fails its query instead, which answers 503.
        .test_before_acquire(false)
        .connect(cfg.url.expose_secret())
        .await
}

/// Tier 2 for the HTTP side: the login lookup's inline provisioning (at
/// most `runs` at once, see [`crate::overload::Gate`]), plus two for an
/// operator's "provision now" and a full reconcile.
pub(crate) fn connect_provisioning(
    cfg: &DatabaseConfig,
    runs: usize,
) -> Result<RunPool, sqlx::Error> {
    Ok(RunPool::new(
        PgPoolOptions::new()
            .max_connections(runs as u32 + 2)
            .acquire_timeout(cfg.acquire_timeout)
            .test_before_acquire(false)
            .connect_lazy_with(cfg.url.expose_secret().parse()?),
    ))
}

/// A tier-2 pool: the only kind a provisioning run takes its connection
/// from, so that no run can hold a main-pool connection while it waits.
/// It carries what every run from it does besides provisioning: whether
/// new people are invited.
#[derive(Debug, Clone)]
pub struct RunPool {
    pool: PgPool,
    invitations: Option<crate::config::InvitePolicy>,
}

impl RunPool {
    /// `pool` must not be the main pool of a serving process (tests and
    /// single-purpose CLI verbs may use one pool for everything).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            invitations: None,
        }
    }

    /// Runs from this pool issue invitations under `policy` (none: off).
    pub fn inviting(mut self, policy: Option<crate::config::InvitePolicy>) -> Self {
        self.invitations = policy;
        self
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn invitations(&self) -> Option<crate::config::InvitePolicy> {
        self.invitations
    }
}

/// Tier 2 for the provisioning worker. Its commits (claims, links,
/// results) do not wait for the disk: losing the last few of them in a
/// crash only means a job runs again, and provisioning is idempotent. The
/// flush per job was otherwise the worker's bottleneck.
pub(crate) async fn connect_worker(
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

/// Tier 3: the local provider's `auth_accounts`. Each checkout is one
/// short statement, so a quarter of the main pool serves every run.
pub(crate) fn connect_accounts(cfg: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    Ok(PgPoolOptions::new()
        .max_connections((cfg.max_connections / 4).max(2))
        .acquire_timeout(cfg.acquire_timeout)
        .test_before_acquire(false)
        .connect_lazy_with(cfg.url.expose_secret().parse()?))
}

pub fn worker_options(opts: PgConnectOptions) -> PgConnectOptions {
    opts.options([("synchronous_commit", "off")])
}

/// A read-only transaction whose statements are planned for their actual
/// parameters. The admin listings' filters are optional (`$1 is null or
/// ...`): a generic plan, which Postgres may switch a prepared statement to
/// after its fifth call, cannot use the index that a given filter needs,
/// and walks the whole table (seconds at 10 million events).
pub async fn planned_per_call(
    db: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query_scalar!("select set_config('plan_cache_mode', 'force_custom_plan', true)")
        .fetch_one(&mut *tx)
        .await?;
    Ok(tx)
}

/// True for errors that mean "the database is not answering right now"
/// (503 + Retry-After) rather than a fault in our SQL.
pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
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
pub(crate) async fn migrations_current(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let applied: Vec<i64> =
        sqlx::query_scalar("select version from _sqlx_migrations where success order by version")
            .fetch_all(pool)
            .await?;
    Ok(MIGRATOR
        .iter()
        .all(|m| applied.binary_search(&m.version).is_ok()))
}

/// Tables in rosterd's schema (`current_schema()`) with row-level security
/// off. Every table there counts, not only those of our migrations, so one
/// added later is covered too. sqlx's `_sqlx_migrations` is left out: it is
/// sqlx's, not ours to alter, and holds only migration names and checksums.
pub async fn tables_without_rls(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select c.relname::text from pg_catalog.pg_class c
          where c.relnamespace = (select oid from pg_catalog.pg_namespace
                                   where nspname = current_schema())
            and c.relkind in ('r', 'p')
            and c.relname <> '_sqlx_migrations'
            and not c.relrowsecurity
          order by 1",
    )
    .fetch_all(conn)
    .await
}

/// Tables in rosterd's schema whose policies would apply to rosterd's own
/// role: it neither owns them (nor has its owner's privileges) nor bypasses
/// RLS, or they force RLS on their owner. rosterd has no policy of its own,
/// so it would read none of their rows and every write would fail.
pub async fn tables_rls_restricts(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select c.relname::text from pg_catalog.pg_class c
          where c.relnamespace = (select oid from pg_catalog.pg_namespace
                                   where nspname = current_schema())
            and c.relkind in ('r', 'p')
            and c.relrowsecurity
            and (c.relforcerowsecurity or not pg_catalog.pg_has_role(c.relowner, 'USAGE'))
            and not (select r.rolsuper or r.rolbypassrls from pg_catalog.pg_roles r
                      where r.rolname = current_user)
          order by 1",
    )
    .fetch_all(conn)
    .await
}
