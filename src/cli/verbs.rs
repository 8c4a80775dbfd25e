//! What each CLI verb does, once `super` has parsed its arguments: resolve
//! the configuration, take live parts from [`crate::startup`], call the
//! operation, print what it did.

use super::{
    InviteAction, InviteCmd, ProvisionCmd, PruneCmd, PushCmd, ReplayCmd, Scheme, SignArgs, SyncCmd,
    WorkerCmd,
};
use crate::config::DatabaseArgs;
use crate::signature::Key;
use crate::startup::{self, Failure};
use secrecy::ExposeSecret;
use std::io::Read;
use tokio_util::sync::CancellationToken;

pub(super) async fn migrate(args: DatabaseArgs) -> Result<(), Failure> {
    let cfg = args.resolve()?;
    startup::database(&cfg).await?;
    println!("migrations applied");
    Ok(())
}

pub(super) async fn worker(cmd: WorkerCmd) -> Result<(), Failure> {
    let (db_cfg, provider_cfg, worker_cfg) = (
        cmd.db.resolve()?,
        cmd.provider.resolve()?,
        cmd.worker.resolve()?,
    );
    let invitations = cmd.invite.resolve()?;
    startup::database(&db_cfg).await?;
    let provider = startup::provider(&provider_cfg, &db_cfg, invitations.as_ref())?;
    let worker = startup::worker(&db_cfg, provider, worker_cfg, invitations.as_ref()).await?;
    if cmd.once {
        let r = worker
            .drain()
            .await
            .map_err(|e| anyhow::anyhow!("draining the queue: {e}"))?;
        println!("done: {}  retried: {}  dead: {}", r.done, r.retried, r.dead);
    } else {
        let shutdown = CancellationToken::new();
        tokio::spawn(startup::stop_on_signal(shutdown.clone()));
        worker.run(shutdown).await;
    }
    Ok(())
}

pub(super) async fn provision(cmd: ProvisionCmd) -> Result<(), Failure> {
    let (db_cfg, provider_cfg) = (cmd.db.resolve()?, cmd.provider.resolve()?);
    let invitations = cmd.invite.resolve()?;
    let pool = startup::database(&db_cfg).await?;
    let provider = startup::provider(&provider_cfg, &db_cfg, invitations.as_ref())?;
    // One person at a time: one run's connection is enough.
    let runs = crate::db::connect_provisioning(&db_cfg, 1)
        .map_err(anyhow::Error::from)?
        .inviting(
            invitations
                .as_ref()
                .map(crate::config::InviteConfig::policy),
        );
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

pub(super) async fn push(cmd: PushCmd) -> Result<(), Failure> {
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
    let pool = startup::database(&db_cfg).await?;
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

pub(super) async fn sync(cmd: SyncCmd) -> Result<(), Failure> {
    use crate::roster::import;
    let (db_cfg, roles) = (cmd.db.resolve()?, cmd.roles.resolve()?);
    let rules = cmd.events.resolve()?;
    let dir = cmd
        .directory
        .resolve()?
        .ok_or_else(|| Failure::Config("AIRTABLE_BASE_ID: is required for sync".into()))?;
    // The whole table is read before anything is applied, so that a
    // page that fails changes nothing; it waits on disk, not in memory.
    let spooling = |e: std::io::Error| {
        anyhow::anyhow!("keeping the table in a temporary file: {e}; nothing was changed")
    };
    let mut spool = import::Spool::new().map_err(spooling)?;
    let airtable = crate::directory::AirtableDirectory::new(dir.airtable)
        .map_err(|e| Failure::Config(format!("AIRTABLE_BASE_ID: {e}")))?;
    let mut pages = crate::directory::Pages::new(&airtable, dir.timeout);
    while let Some(page) = pages
        .next_page()
        .await
        .map_err(|e| anyhow::anyhow!("reading the Airtable table: {e}; nothing was changed"))?
    {
        for record in &page {
            spool.push(&record.to_fields()).map_err(spooling)?;
        }
    }
    let (total, rows) = spool.into_rows().map_err(spooling)?;
    let pool = startup::database(&db_cfg).await?;
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
        let _ = crate::outbox::notify(pool).await;
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
fn cli_actor() -> crate::audit::Actor {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    crate::audit::Actor::named(format!("cli:{user}"))
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

pub(super) async fn replay(cmd: ReplayCmd) -> Result<(), Failure> {
    use crate::admin::events::{EventFilter, RawFilter};
    use crate::admin::replay::{replay_bulk, replay_one, DEFAULT_BULK_LIMIT};
    let (db_cfg, roles) = (cmd.db.resolve()?, cmd.roles.resolve()?);
    let rules = cmd.events.resolve()?;
    let actor = cli_actor();
    let filter = EventFilter::parse(&RawFilter {
        status: cmd.status,
        event_type: cmd.event_type,
        user_id: cmd.user_id,
        source: cmd.source,
        since: cmd.since,
        until: cmd.until,
    })
    .map_err(admin_failure)?;
    if cmd.event_id.is_none() && filter.is_empty() {
        return Err(Failure::Config(
            "give an event id, or a filter such as --status failed".into(),
        ));
    }
    let pool = startup::database(&db_cfg).await?;
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
        let _ = crate::outbox::notify(&pool).await;
    }
    if failed > 0 {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{failed} events failed again; see `GET /api/admin/events?status=failed`"
        )));
    }
    Ok(())
}

pub(super) async fn prune(cmd: PruneCmd) -> Result<(), Failure> {
    let pool = startup::database(&cmd.db.resolve()?).await?;
    let report = crate::retention::prune(&pool, cmd.older_than, cmd.dry_run)
        .await
        .map_err(|e| anyhow::anyhow!("pruning failed: {e}"))?;
    if !cmd.dry_run {
        let details = serde_json::to_value(&report).expect("plain fields");
        let mut conn = pool.acquire().await.map_err(anyhow::Error::from)?;
        crate::audit::record(&mut conn, &cli_actor(), "retention.prune", None, &details)
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

pub(super) fn sign(args: SignArgs) -> anyhow::Result<()> {
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

/// `rosterd invite resend|revoke EMAIL`: the person's latest invitation.
pub(super) async fn invite(cmd: InviteCmd) -> Result<(), Failure> {
    let db_cfg = cmd.db.resolve()?;
    let cfg = cmd.invite.resolve()?.ok_or_else(|| {
        Failure::Config("INVITATIONS_ENABLED: must be on to resend or revoke invitations".into())
    })?;
    let raw = match &cmd.action {
        InviteAction::Resend { email } | InviteAction::Revoke { email } => email,
    };
    let email =
        crate::event::Email::parse(raw).map_err(|e| Failure::Config(format!("EMAIL: {e}")))?;
    let pool = startup::database(&db_cfg).await?;
    let actor = cli_actor();
    let done = match cmd.action {
        InviteAction::Resend { .. } => {
            crate::admin::invitations::resend_for(&pool, &cfg, &actor, &email).await
        }
        InviteAction::Revoke { .. } => {
            crate::admin::invitations::revoke_for(&pool, &actor, &email).await
        }
    };
    let done = done.map_err(|e| match e {
        crate::admin::AdminError::NotFound => {
            Failure::Runtime(anyhow::anyhow!("{email} has no invitation"))
        }
        other => Failure::Runtime(anyhow::anyhow!("{other}")),
    })?;
    println!(
        "invitation {} for {}: {}",
        done.invitation.id, done.invitation.email, done.invitation.state
    );
    match done.link {
        Some(link) => println!("link (shown once; send it to the person): {link}"),
        None if done.mailed => println!("a new link is being mailed"),
        None => {}
    }
    Ok(())
}
