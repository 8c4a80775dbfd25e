//! The command line: `serve`, `migrate`, `worker`, `provision`, `push`,
//! `sync`, `replay`, `prune`, `sign`. This module parses and dispatches;
//! [`verbs`] does each verb, [`crate::startup`] builds what they run on.

use crate::config::{
    DatabaseArgs, DirectoryArgs, EventArgs, ProviderArgs, RoleArgs, ServeArgs, WorkerArgs,
};
use crate::startup::{self, Failure};
use crate::telemetry::{self, LogFormat};
use clap::{Parser, Subcommand, ValueEnum};
use secrecy::SecretString;
use std::process::ExitCode;

mod verbs;
pub use verbs::signed_headers;

#[derive(Parser, Debug)]
#[command(
    name = "rosterd",
    version,
    about = "Keeps a people roster and its login accounts in step"
)]
pub(crate) struct Cli {
    /// Log line format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
    /// Resend or revoke a person's invitation.
    Invite(InviteCmd),
}

#[derive(clap::Args, Debug)]
pub(crate) struct InviteCmd {
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
    #[command(flatten)]
    pub(crate) invite: crate::config::InviteArgs,
    #[command(subcommand)]
    pub(crate) action: InviteAction,
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum InviteAction {
    /// A new link for the person's latest invitation (the old one stops
    /// working) and a fresh expiry; mailed, or printed without SMTP_URL.
    Resend {
        /// The person's email (or the address the invitation went to).
        email: String,
    },
    /// Revoke the person's open invitation.
    Revoke {
        /// The person's email (or the address the invitation went to).
        email: String,
    },
}

#[derive(clap::Args, Debug)]
pub(crate) struct PruneCmd {
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
    /// Retention period: payloads of events received, and jobs finished,
    /// longer ago than this are pruned (e.g. 90d, 36h, 30m).
    #[arg(long, value_parser = crate::retention::Retention::parse)]
    pub(crate) older_than: crate::retention::Retention,
    /// Count what would be pruned; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ReplayCmd {
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
    #[command(flatten)]
    pub(crate) roles: RoleArgs,
    #[command(flatten)]
    pub(crate) events: EventArgs,
    /// The stored event to replay.
    #[arg(conflicts_with_all = ["status", "event_type", "user_id", "since", "until", "limit", "dry_run"])]
    pub(crate) event_id: Option<String>,
    /// Replay events stored with this outcome: applied, stale or failed.
    #[arg(long)]
    pub(crate) status: Option<String>,
    /// Replay events of this type (user.created, user.updated, user.deleted).
    #[arg(long)]
    pub(crate) event_type: Option<String>,
    /// Replay the events of this upstream record id.
    #[arg(long)]
    pub(crate) user_id: Option<String>,
    /// Replay events that came in this way (webhook, replay, readthrough,
    /// import, scim).
    #[arg(long)]
    pub(crate) source: Option<String>,
    /// Replay events received at or after this RFC 3339 time.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Replay events received before this RFC 3339 time.
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// Replay at most this many (oldest occurrence first).
    #[arg(long)]
    pub(crate) limit: Option<i64>,
    /// Count what a replay would do; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SyncCmd {
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
    #[command(flatten)]
    pub(crate) roles: RoleArgs,
    #[command(flatten)]
    pub(crate) events: EventArgs,
    #[command(flatten)]
    pub(crate) directory: DirectoryArgs,
    /// Delete live records that are not in the table.
    #[arg(long)]
    pub(crate) prune: bool,
    /// Count what would change; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct PushCmd {
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
    #[command(flatten)]
    pub(crate) roles: RoleArgs,
    #[command(flatten)]
    pub(crate) events: EventArgs,
    /// roster.yaml / roster.yml / roster.csv (columns: id, email, name, status, groups)
    pub(crate) file: std::path::PathBuf,
    /// Delete live records that are not in the file.
    #[arg(long)]
    pub(crate) prune: bool,
    /// Count what would change; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct WorkerCmd {
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
    #[command(flatten)]
    pub(crate) provider: ProviderArgs,
    #[command(flatten)]
    pub(crate) worker: WorkerArgs,
    #[command(flatten)]
    pub(crate) invite: crate::config::InviteArgs,
    /// Run every job that is due, then exit.
    #[arg(long)]
    pub(crate) once: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ProvisionCmd {
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
    #[command(flatten)]
    pub(crate) provider: ProviderArgs,
    #[command(flatten)]
    pub(crate) invite: crate::config::InviteArgs,
    /// Report what would change without changing anything.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the counters as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scheme {
    /// `X-Signature: sha256=<hex>` (the Airtable script's scheme).
    Plain,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    Standard,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SignArgs {
    /// Signing secret (the first of a comma-separated list is used).
    #[arg(long, env = "AIRTABLE_USER_SYNC_SECRET", hide_env_values = true,
          value_parser = |s: &str| Ok::<_, String>(SecretString::from(s.to_owned())))]
    pub(crate) secret: SecretString,
    #[arg(long, value_enum, default_value = "plain")]
    pub(crate) scheme: Scheme,
    /// Standard scheme: message id (default: a random `msg_` id).
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// Standard scheme: Unix timestamp (default: now).
    #[arg(long)]
    pub(crate) timestamp: Option<i64>,
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

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve(args) => startup::serve(*args).await,
        Command::Migrate(args) => verbs::migrate(args).await,
        Command::Worker(cmd) => verbs::worker(cmd).await,
        Command::Provision(cmd) => verbs::provision(cmd).await,
        Command::Push(cmd) => verbs::push(cmd).await,
        Command::Sync(cmd) => verbs::sync(cmd).await,
        Command::Replay(cmd) => verbs::replay(cmd).await,
        Command::Prune(cmd) => verbs::prune(cmd).await,
        Command::Sign(args) => verbs::sign(args).map_err(Failure::from),
        Command::Invite(cmd) => verbs::invite(cmd).await,
    }
}
