//! Start-up: the one place that turns checked configuration (plain data,
//! [`crate::config`]) into live parts — pools, the auth provider, the
//! worker, the HTTP app — and runs `serve`. The CLI verbs take their live
//! parts from here too.

use crate::config::Config;
use crate::config::{DatabaseConfig, InviteConfig, ProviderConfig, ServeArgs, WorkerConfig};
use crate::directory::AirtableDirectory;
use crate::http::AppState;
use crate::invite::deliver::Delivery;
use crate::invite::mail::{Letter, Mailer};
use crate::lookup::readthrough::ReadThrough;
use crate::provision::provider::local::LocalProvider;
use crate::provision::provider::supabase::SupabaseProvider;
use crate::provision::provider::{metered::Metered, AuthProvider};
use crate::provision::worker::Worker;
use crate::{console, db, error, http, telemetry};
use axum::Router;
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How a command failed: bad usage or configuration (exit 2), or at run
/// time (exit 1).
pub(crate) enum Failure {
    Config(String),
    Runtime(anyhow::Error),
}

impl From<crate::config::ConfigError> for Failure {
    fn from(e: crate::config::ConfigError) -> Self {
        Self::Config(e.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Runtime(e)
    }
}

/// sqlx's connect errors name the failure, never the URL or password.
fn unreachable_db(e: sqlx::Error) -> Failure {
    Failure::Runtime(anyhow::anyhow!(
        "cannot connect to the database (DATABASE_URL): {e}"
    ))
}

/// The main pool, with every migration applied: where each command that
/// touches the database starts.
pub(crate) async fn database(cfg: &DatabaseConfig) -> Result<PgPool, Failure> {
    let pool = db::connect(cfg).await.map_err(unreachable_db)?;
    db::MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
    Ok(pool)
}

/// The auth provider, counted in `/metrics`. The local one gets a pool of
/// its own (tier 3 in [`crate::db`]), connected on first use. With
/// invitations on, new users are created unconfirmed.
pub(crate) fn provider(
    cfg: &ProviderConfig,
    db: &DatabaseConfig,
    invitations: Option<&InviteConfig>,
) -> Result<Arc<dyn AuthProvider>, Failure> {
    let inviting = invitations.is_some();
    let provider: Arc<dyn AuthProvider> = match cfg {
        ProviderConfig::Local => Arc::new(
            LocalProvider::new(db::connect_accounts(db).map_err(unreachable_db)?)
                .inviting(inviting),
        ),
        ProviderConfig::Supabase { url, key, timeout } => Arc::new(
            SupabaseProvider::new(url, key.clone(), *timeout)
                .expect("validated when the configuration was resolved")
                .inviting(inviting),
        ),
    };
    Ok(Metered::wrap(provider))
}

/// The mailer for invitations, when invitations are on and SMTP is set.
fn delivery(invitations: Option<&InviteConfig>) -> Result<Option<Delivery>, Failure> {
    let Some((cfg, smtp)) = invitations.and_then(|i| i.smtp.as_ref().map(|s| (i, s))) else {
        return Ok(None);
    };
    let letter = Letter {
        from: smtp.from.clone(),
        product: cfg.product.clone(),
    };
    let mailer = Mailer::new(&smtp.url, smtp.timeout, letter)
        .map_err(|m| Failure::Config(format!("SMTP_URL: {m}")))?;
    Ok(Some(Delivery {
        mailer,
        base: cfg.base_url.clone(),
    }))
}

/// A worker on a pool of its own (tier 2 in [`crate::db`]): provisioning,
/// and with invitations on, their mail.
pub(crate) async fn worker(
    db: &DatabaseConfig,
    provider: Arc<dyn AuthProvider>,
    cfg: WorkerConfig,
    invitations: Option<&InviteConfig>,
) -> Result<Worker, Failure> {
    let delivery = delivery(invitations)?;
    let pool = db::connect_worker(db, cfg.concurrency)
        .await
        .map_err(unreachable_db)?;
    Ok(Worker::new(pool, provider, cfg).inviting(invitations.map(InviteConfig::policy), delivery))
}

pub(crate) async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let config = args.resolve()?;
    let limits = http_limits(&args, &config)?;
    // Before the worker starts, so that its first jobs are counted too.
    crate::metrics::install();
    let pool = database(&config.db).await?;
    if args.rls_check_enabled {
        check_rls(&pool).await?;
    }
    let listener = crate::http::server::listen(config.bind_addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (BIND_ADDR): {e}", config.bind_addr))?;
    tracing::info!(addr = %config.bind_addr, webhook = config.webhook_enabled,
                   max_connections = limits.max_connections, "rosterd listening");
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let invitations = config.invitations.as_ref();
    let provider = provider(&config.provider, &config.db, invitations)?;
    let runs = db::connect_provisioning(&config.db, config.lookup.provision_concurrency)
        .map_err(unreachable_db)?
        .inviting(invitations.map(InviteConfig::policy));
    let worker = match config.worker.clone() {
        Some(cfg) => {
            let worker = worker(&config.db, provider.clone(), cfg, invitations).await?;
            Some(tokio::spawn(worker.run(shutdown.clone())))
        }
        None => None,
    };
    // One client, so that every call to Airtable keeps to one pace.
    let directory = config.directory.as_ref().map(|d| {
        Arc::new(
            AirtableDirectory::new(d.airtable.clone())
                .expect("checked when the configuration was resolved"),
        )
    });
    let app = build_app(AppState {
        gauges: crate::metrics::Gauges::new(config.metrics_gauges_max_age),
        readthrough: config
            .directory
            .as_ref()
            .zip(directory.clone())
            .and_then(|(cfg, d)| ReadThrough::enabled(d, cfg, config.lookup.queue_wait)),
        directory,
        first_logins: Arc::new(crate::lookup::FirstLogins::new(crate::overload::Gate::new(
            config.lookup.provision_concurrency,
            config.lookup.queue_wait,
        ))),
        runs,
        wakeup: crate::outbox::Wakeup::spawn(pool.clone()),
        db: pool.clone(),
        config: Arc::new(config),
        provider,
    });
    let served =
        crate::http::server::serve(listener, app, limits, shutdown.clone().cancelled_owned()).await;
    // The HTTP server only returns early on an error: stop the worker too.
    shutdown.cancel();
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    served.map_err(|e| anyhow::anyhow!("server error: {e}"))?;
    pool.close().await;
    tracing::info!("rosterd stopped");
    Ok(())
}

/// The client time-outs and connection cap, the cap fitted under the
/// open-file limit (raised to its hard limit first) beside the database
/// pools.
fn http_limits(
    args: &ServeArgs,
    config: &crate::config::Config,
) -> Result<crate::http::server::Limits, Failure> {
    use crate::descriptors;
    // Every pool of crate::db: main, inline provisioning, the local
    // provider's accounts (counted whatever the provider), the worker's.
    let pools = u64::from(config.db.max_connections)
        + config.lookup.provision_concurrency as u64
        + 2
        + u64::from((config.db.max_connections / 4).max(2))
        + config
            .worker
            .as_ref()
            .map_or(0, |w| w.concurrency as u64 + 2);
    let limit = descriptors::raise_limit();
    let available = limit.map(|l| l.saturating_sub(pools + descriptors::HEADROOM));
    Ok(args.http.resolve(available, limit)?)
}

/// Other roles (Supabase's `authenticated`) read this database under the
/// policies of our migrations; a table with RLS off would be open to them,
/// so `serve` stops before listening. RLS that applies to rosterd itself
/// would hide every row from it, so that stops it too.
async fn check_rls(pool: &sqlx::PgPool) -> Result<(), Failure> {
    let failed = |e: sqlx::Error| anyhow::anyhow!("checking row-level security: {e}");
    let mut conn = pool.acquire().await.map_err(failed)?;
    let off = db::tables_without_rls(&mut conn).await.map_err(failed)?;
    if !off.is_empty() {
        return Err(Failure::Config(format!(
            "RLS_CHECK: row-level security is off on table(s) {}; run \"alter table <name> enable row level security\" for each, or set RLS_CHECK_ENABLED=false",
            off.join(", ")
        )));
    }
    let restricted = db::tables_rls_restricts(&mut conn).await.map_err(failed)?;
    if !restricted.is_empty() {
        return Err(Failure::Config(format!(
            "RLS_CHECK: row-level security applies to rosterd's own database role on table(s) {}, so it would see none of their rows; connect as the tables' owner (without FORCE ROW LEVEL SECURITY) or as a role with BYPASSRLS, or set RLS_CHECK_ENABLED=false",
            restricted.join(", ")
        )));
    }
    Ok(())
}

/// SIGTERM or Ctrl-C: stop accepting, let in-flight work finish.
pub(crate) async fn stop_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    token.cancel();
}

/// The whole HTTP surface. Tests and the binary build the same thing.
pub fn build_app(state: AppState) -> Router {
    let app = routes(&state.config).into_router();
    telemetry::layer(app.fallback(not_found).with_state(state))
}

/// Every route the app serves under `config`: the JSON API, which
/// `openapi.yaml` documents exactly (`tests/api/openapi.rs`), and the
/// operator console's HTML pages under `/console`.
pub fn routes(config: &Config) -> http::Routes {
    let mut routes = http::ops::router()
        .merge(http::lookup::router())
        .merge(http::admin::router())
        .merge(crate::scim::router())
        .merge(console::router());
    if config.webhook_enabled {
        routes = routes.merge(http::inbound::router(config.max_body_bytes));
    }
    if let Some(invitations) = &config.invitations {
        routes = routes.merge(http::invite::router(invitations));
    }
    routes
}

async fn not_found() -> error::ApiError {
    error::ApiError::NotFound
}

/// Serves `app` on `listener` with the default client time-outs and
/// connection cap until `shutdown` resolves, then lets the requests in
/// flight finish ([`http::server::serve`] takes the configured ones).
pub async fn run_http(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    http::server::serve(listener, app, http::server::Limits::default(), shutdown).await
}
