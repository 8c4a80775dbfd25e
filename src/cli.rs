//! The command line: `serve`, `migrate`, `worker`, `provision`, `push`,
//! `sync`, `replay`, `sign`.

use crate::config::{
    DatabaseArgs, DirectoryArgs, EventArgs, ProviderArgs, RoleArgs, ServeArgs, WorkerArgs,
};
use crate::directory::readthrough::ReadThrough;
use crate::provision::worker::Worker;
use crate::signature::Key;
use crate::telemetry::LogFormat;
use crate::{build_app, db, run_http, telemetry, AppState};
use clap::{Parser, Subcommand, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(
    name = "rosterd",
    version,
    about = "Keeps a people roster and its login accounts in step"
)]
pub struct Cli {
    /// Log line format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (applies pending migrations first).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Run the provisioning worker on its own (no HTTP).
    Worker(WorkerCmd),
    /// Reconcile every person in the roster with the auth provider.
    Provision(ProvisionCmd),
    /// Apply a roster file (YAML or CSV) through the same path as events.
    Push(PushCmd),
    /// Apply every record of the Airtable table (first load, drift repair).
    Sync(SyncCmd),
    /// Apply stored events again: one by id, or every match of a filter.
    Replay(ReplayCmd),
    /// Drop stored event payloads and finished jobs older than a period.
    Prune(PruneCmd),
    /// Print the headers that sign a body read from stdin.
    Sign(SignArgs),
}

#[derive(clap::Args, Debug)]
pub struct PruneCmd {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Retention period: payloads of events received, and jobs finished,
    /// longer ago than this are pruned (e.g. 90d, 36h, 30m).
    #[arg(long, value_parser = crate::retention::Retention::parse)]
    pub older_than: crate::retention::Retention,
    /// Count what would be pruned; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ReplayCmd {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub roles: RoleArgs,
    #[command(flatten)]
    pub events: EventArgs,
    /// The stored event to replay.
    #[arg(conflicts_with_all = ["status", "event_type", "user_id", "since", "until", "limit", "dry_run"])]
    pub event_id: Option<String>,
    /// Replay events stored with this outcome: applied, stale or failed.
    #[arg(long)]
    pub status: Option<String>,
    /// Replay events of this type (user.created, user.updated, user.deleted).
    #[arg(long)]
    pub event_type: Option<String>,
    /// Replay the events of this upstream record id.
    #[arg(long)]
    pub user_id: Option<String>,
    /// Replay events received at or after this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Replay events received before this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// Replay at most this many (oldest occurrence first).
    #[arg(long)]
    pub limit: Option<i64>,
    /// Count what a replay would do; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct SyncCmd {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub roles: RoleArgs,
    #[command(flatten)]
    pub events: EventArgs,
    #[command(flatten)]
    pub directory: DirectoryArgs,
    /// Delete live records that are not in the table.
    #[arg(long)]
    pub prune: bool,
    /// Count what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct PushCmd {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub roles: RoleArgs,
    #[command(flatten)]
    pub events: EventArgs,
    /// roster.yaml / roster.yml / roster.csv (columns: id, email, name, status, groups)
    pub file: std::path::PathBuf,
    /// Delete live records that are not in the file.
    #[arg(long)]
    pub prune: bool,
    /// Count what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct WorkerCmd {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub provider: ProviderArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Run every job that is due, then exit.
    #[arg(long)]
    pub once: bool,
}

#[derive(clap::Args, Debug)]
pub struct ProvisionCmd {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// Report what would change without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the counters as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scheme {
    /// `X-Signature: sha256=<hex>` (the Airtable script's scheme).
    Plain,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    Standard,
}

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// Signing secret (the first of a comma-separated list is used).
    #[arg(long, env = "AIRTABLE_USER_SYNC_SECRET", hide_env_values = true,
          value_parser = |s: &str| Ok::<_, String>(SecretString::from(s.to_owned())))]
    pub secret: SecretString,
    #[arg(long, value_enum, default_value = "plain")]
    pub scheme: Scheme,
    /// Standard scheme: message id (default: a random `msg_` id).
    #[arg(long)]
    pub id: Option<String>,
    /// Standard scheme: Unix timestamp (default: now).
    #[arg(long)]
    pub timestamp: Option<i64>,
}

/// Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("rosterd: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rosterd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(msg)) => {
            eprintln!("rosterd: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("rosterd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub enum Failure {
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

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(args) => {
            let cfg = args.resolve()?;
            let pool = connect(&cfg).await?;
            migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Worker(cmd) => {
            let (db_cfg, provider_cfg, worker_cfg) = (
                cmd.db.resolve()?,
                cmd.provider.resolve()?,
                cmd.worker.resolve()?,
            );
            let pool = connect(&db_cfg).await?;
            migrate(&pool).await?;
            let worker_pool = db::connect_worker(&db_cfg, worker_cfg.concurrency)
                .await
                .map_err(|e| {
                    anyhow::anyhow!("cannot connect to the database (DATABASE_URL): {e}")
                })?;
            let worker = Worker::new(
                worker_pool,
                build_provider(&provider_cfg, &db_cfg)?,
                worker_cfg,
            );
            if cmd.once {
                let r = worker
                    .drain()
                    .await
                    .map_err(|e| anyhow::anyhow!("draining the queue: {e}"))?;
                println!("done: {}  retried: {}  dead: {}", r.done, r.retried, r.dead);
            } else {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                worker.run(shutdown).await;
            }
            Ok(())
        }
        Command::Provision(cmd) => {
            let (db_cfg, provider_cfg) = (cmd.db.resolve()?, cmd.provider.resolve()?);
            let pool = connect(&db_cfg).await?;
            migrate(&pool).await?;
            let provider = build_provider(&provider_cfg, &db_cfg)?;
            // One person at a time: one run's connection is enough.
            let runs = db::connect_provisioning(&db_cfg, 1).map_err(anyhow::Error::from)?;
            let report = crate::admin::provision::reconcile_all(
                &pool,
                &runs,
                provider.as_ref(),
                &cli_actor(),
                cmd.dry_run,
            )
            .await
            .map_err(|e| anyhow::anyhow!("reconcile failed: {e}"))?;
            if cmd.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("plain counters")
                );
            } else {
                print!("{}", report.render());
            }
            if report.failed > 0 {
                return Err(Failure::Runtime(anyhow::anyhow!(
                    "{} people could not be provisioned; see the log",
                    report.failed
                )));
            }
            Ok(())
        }
        Command::Push(cmd) => {
            use crate::roster::import;
            let (db_cfg, roles) = (cmd.db.resolve()?, cmd.roles.resolve()?);
            let rules = cmd.events.resolve()?;
            let name = cmd.file.display().to_string();
            // Read twice, a row at a time: first every row is checked, so a
            // malformed one anywhere changes nothing; then applied.
            let open = || {
                let file = std::fs::File::open(&cmd.file)
                    .map_err(|e| anyhow::anyhow!("cannot read {name}: {e}"))?;
                import::rows(&name, std::io::BufReader::new(file))
                    .map_err(|e| anyhow::anyhow!("{name}: {e}; nothing was changed"))
            };
            let total = open()?
                .try_fold(0, |n, row| row.map(|_| n + 1))
                .map_err(|e| anyhow::anyhow!("{name}: {e}; nothing was changed"))?;
            let pool = connect(&db_cfg).await?;
            migrate(&pool).await?;
            let rows = open()?.map_while(Result::ok);
            let report = import::import(&pool, &roles, &rules, rows, total, cmd.prune, cmd.dry_run)
                .await
                .map_err(|e| anyhow::anyhow!("push failed: {e}"))?;
            finish(
                &pool,
                &report,
                &format!("Pushing roster from {name}"),
                cmd.dry_run,
                "rows",
            )
            .await
        }
        Command::Sync(cmd) => {
            use crate::roster::import;
            let (db_cfg, roles) = (cmd.db.resolve()?, cmd.roles.resolve()?);
            let rules = cmd.events.resolve()?;
            let dir = cmd
                .directory
                .resolve()?
                .ok_or_else(|| Failure::Config("AIRTABLE_BASE_ID: is required for sync".into()))?;
            let directory =
                ReadThrough::new(dir.airtable, dir.negative_ttl, dir.timeout, dir.timeout);
            // The whole table is read before anything is applied, so that a
            // page that fails changes nothing; it waits on disk, not in memory.
            let spooling = |e: std::io::Error| {
                anyhow::anyhow!("keeping the table in a temporary file: {e}; nothing was changed")
            };
            let mut spool = import::Spool::new().map_err(spooling)?;
            let mut pages = directory.pages();
            while let Some(page) = pages.next_page().await.map_err(|e| {
                anyhow::anyhow!("reading the Airtable table: {e}; nothing was changed")
            })? {
                for record in &page {
                    spool
                        .push(&crate::directory::readthrough::to_fields(record))
                        .map_err(spooling)?;
                }
            }
            let (total, rows) = spool.into_rows().map_err(spooling)?;
            let pool = connect(&db_cfg).await?;
            migrate(&pool).await?;
            let report = import::import(&pool, &roles, &rules, rows, total, cmd.prune, cmd.dry_run)
                .await
                .map_err(|e| anyhow::anyhow!("sync failed: {e}"))?;
            finish(
                &pool,
                &report,
                "Syncing roster from Airtable",
                cmd.dry_run,
                "records",
            )
            .await
        }
        Command::Replay(cmd) => replay(cmd).await,
        Command::Prune(cmd) => prune(cmd).await,
        Command::Sign(args) => sign(args).map_err(Failure::from),
    }
}

/// After `push` or `sync`: wakes the workers, prints the report, and fails
/// when any of the `what` (rows, records) was rejected.
async fn finish(
    pool: &sqlx::PgPool,
    report: &crate::roster::import::Report,
    title: &str,
    dry_run: bool,
    what: &str,
) -> Result<(), Failure> {
    if !dry_run {
        // Wake the workers of running services; they poll anyway.
        let _ = crate::provision::jobs::notify(pool).await;
    }
    print!("{}", report.render(title, dry_run));
    if !report.rejected.is_empty() {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{} {what} were rejected",
            report.rejected.len()
        )));
    }
    Ok(())
}

/// The actor the audit log records for a CLI verb.
fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// Operator errors from the CLI: bad input is a usage error (exit 2),
/// the rest are runtime failures (exit 1).
fn admin_failure(e: crate::admin::AdminError) -> Failure {
    use crate::admin::AdminError;
    match e {
        AdminError::BadInput(m) => Failure::Config(m),
        AdminError::NotFound => Failure::Runtime(anyhow::anyhow!("no such stored event")),
        other => Failure::Runtime(other.into()),
    }
}

async fn replay(cmd: ReplayCmd) -> Result<(), Failure> {
    use crate::admin::events::{EventFilter, RawFilter};
    use crate::admin::replay::{replay_bulk, replay_one, DEFAULT_BULK_LIMIT};
    let (db_cfg, roles) = (cmd.db.resolve()?, cmd.roles.resolve()?);
    let rules = cmd.events.resolve()?;
    let actor = cli_actor();
    let filter = EventFilter::parse(&RawFilter {
        status: cmd.status,
        event_type: cmd.event_type,
        user_id: cmd.user_id,
        since: cmd.since,
        until: cmd.until,
    })
    .map_err(admin_failure)?;
    if cmd.event_id.is_none() && filter.is_empty() {
        return Err(Failure::Config(
            "give an event id, or a filter such as --status failed".into(),
        ));
    }
    let pool = connect(&db_cfg).await?;
    migrate(&pool).await?;
    let failed = if let Some(event_id) = cmd.event_id {
        let r = replay_one(&pool, &roles, &rules, &actor, &event_id)
            .await
            .map_err(admin_failure)?;
        if cmd.json {
            let out = serde_json::json!({"eventId": event_id, "userId": r.user_id,
                                         "outcome": r.outcome.as_str(), "error": r.error});
            println!("{out}");
        } else {
            println!("{event_id}: {}", r.outcome.as_str());
            if let Some(error) = &r.error {
                println!("  error: {error}");
            }
        }
        u64::from(r.outcome == crate::state::EventOutcome::Failed)
    } else {
        let limit = cmd.limit.unwrap_or(DEFAULT_BULK_LIMIT);
        let report = replay_bulk(&pool, &roles, &rules, &actor, &filter, limit, cmd.dry_run)
            .await
            .map_err(admin_failure)?;
        if cmd.json {
            println!(
                "{}",
                serde_json::to_string(&report).expect("plain counters")
            );
        } else {
            print!("{}", report.render());
        }
        report.outcomes.failed
    };
    if !cmd.dry_run {
        let _ = crate::provision::jobs::notify(&pool).await;
    }
    if failed > 0 {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{failed} events failed again; see `GET /api/admin/events?status=failed`"
        )));
    }
    Ok(())
}

async fn prune(cmd: PruneCmd) -> Result<(), Failure> {
    let pool = connect(&cmd.db.resolve()?).await?;
    migrate(&pool).await?;
    let report = crate::retention::prune(&pool, cmd.older_than, cmd.dry_run)
        .await
        .map_err(|e| anyhow::anyhow!("pruning failed: {e}"))?;
    if !cmd.dry_run {
        let details = serde_json::to_value(&report).expect("plain fields");
        let mut conn = pool.acquire().await.map_err(anyhow::Error::from)?;
        crate::admin::audit::record(&mut conn, &cli_actor(), "retention.prune", None, &details)
            .await
            .map_err(anyhow::Error::from)?;
    }
    if cmd.json {
        println!("{}", serde_json::to_string(&report).expect("plain fields"));
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

async fn connect(cfg: &crate::config::DatabaseConfig) -> anyhow::Result<sqlx::PgPool> {
    // sqlx's connect errors name the failure, never the URL or password.
    db::connect(cfg)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database (DATABASE_URL): {e}"))
}

/// A listening socket whose accept queue holds a launch-day herd: with
/// tokio's default of 1,024, the 1,025th simultaneous connect is dropped
/// and its client waits a second (then three) before trying again. The
/// kernel caps the backlog at `net.core.somaxconn` (4,096 by default).
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As std's and tokio's own bind: a restart need not wait out TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

fn build_provider(
    provider: &crate::config::ProviderConfig,
    db: &crate::config::DatabaseConfig,
) -> anyhow::Result<std::sync::Arc<dyn crate::provision::provider::AuthProvider>> {
    provider
        .build(db)
        .map_err(|e| anyhow::anyhow!("cannot connect to the database (DATABASE_URL): {e}"))
}

async fn migrate(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    db::MIGRATOR
        .run(pool)
        .await
        .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))
}

async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let config = args.resolve()?;
    // Before the worker starts, so that its first jobs are counted too.
    crate::metrics::install();
    let pool = connect(&config.db).await?;
    migrate(&pool).await?;
    if args.rls_check_enabled {
        check_rls(&pool).await?;
    }
    let listener = listen(config.bind_addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (BIND_ADDR): {e}", config.bind_addr))?;
    tracing::info!(addr = %config.bind_addr, webhook = config.webhook_enabled, "rosterd listening");
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let provider = build_provider(&config.provider, &config.db)?;
    let runs = db::connect_provisioning(&config.db, config.lookup.provision_concurrency)
        .map_err(anyhow::Error::from)?;
    let worker = match config.worker.clone() {
        Some(cfg) => {
            let worker_pool = db::connect_worker(&config.db, cfg.concurrency)
                .await
                .map_err(|e| {
                    anyhow::anyhow!("cannot connect to the database (DATABASE_URL): {e}")
                })?;
            let worker = Worker::new(worker_pool, provider.clone(), cfg);
            Some(tokio::spawn(worker.run(shutdown.clone())))
        }
        None => None,
    };
    let app = build_app(AppState {
        gauges: crate::metrics::Gauges::new(config.metrics_gauges_max_age),
        readthrough: ReadThrough::from_config(config.directory.as_ref(), config.lookup.queue_wait),
        first_logins: crate::overload::Gate::new(
            config.lookup.provision_concurrency,
            config.lookup.queue_wait,
        ),
        runs,
        wakeup: crate::provision::jobs::Wakeup::spawn(pool.clone()),
        db: pool.clone(),
        config: Arc::new(config),
        provider,
    });
    let served = run_http(listener, app, shutdown.clone().cancelled_owned()).await;
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
async fn stop_on_signal(token: CancellationToken) {
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

fn sign(args: SignArgs) -> anyhow::Result<()> {
    let first = args
        .secret
        .expose_secret()
        .split(',')
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .to_owned();
    let key = Key::parse(&first).map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .map_err(|e| anyhow::anyhow!("cannot read the body from stdin: {e}"))?;
    for line in signed_headers(&key, args.scheme, args.id, args.timestamp, &body) {
        println!("{line}");
    }
    Ok(())
}

/// The header lines (`Name: value`) that sign `body`; usable with
/// `curl -H @file`.
pub fn signed_headers(
    key: &Key,
    scheme: Scheme,
    id: Option<String>,
    timestamp: Option<i64>,
    body: &[u8],
) -> Vec<String> {
    match scheme {
        Scheme::Plain => vec![format!("X-Signature: {}", key.sign_plain(body))],
        Scheme::Standard => {
            let id = id.unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
            let ts = timestamp.unwrap_or_else(|| chrono::Utc::now().timestamp());
            vec![
                format!("webhook-id: {id}"),
                format!("webhook-timestamp: {ts}"),
                format!("webhook-signature: {}", key.sign_standard(&id, ts, body)),
            ]
        }
    }
}
