//! The outbox: jobs queued inside the transaction that makes them due,
//! claimed with a lease by a worker, and their attempts recorded.
//!
//! A ground-floor module: `roster` enqueues into it as it applies an event,
//! `provision::worker` claims from it; it knows neither. What a job does is
//! its [`Job`] kind, which the worker dispatches on.

use crate::event::Email;
use crate::state::{Action, JobKind, JobState};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// One job: its kind and what it needs, in the way crates.io's
/// `BackgroundJob` and svix's `QueueTask` name theirs.
///
/// Stored in `provisioning_jobs` with its [`JobKind`], one active (pending
/// or running) job per kind and subject: the person's email for
/// provisioning, the invitation for its mail. That is the conflict target
/// of [`enqueue`]; [`claim`] decodes the kind, and an unknown kind is an
/// error, never a default.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Job {
    /// Bring one person's auth user(s) to what the roster says.
    Provision { email: Email },
    /// Send an invitation's link to its person (`email` is where it was
    /// addressed when queued, for operators; the job reads it again).
    Invite { invitation: i64, email: Email },
}

impl Job {
    pub(crate) fn kind(&self) -> JobKind {
        match self {
            Self::Provision { .. } => JobKind::Provision,
            Self::Invite { .. } => JobKind::Invite,
        }
    }

    /// The job's `email` column.
    fn email(&self) -> &str {
        match self {
            Self::Provision { email } | Self::Invite { email, .. } => email.as_str(),
        }
    }

    /// A job read back from its row.
    fn from_row(
        kind: JobKind,
        email: String,
        invitation: Option<i64>,
    ) -> Result<Self, sqlx::Error> {
        let email = Email::from_trusted(email);
        match (kind, invitation) {
            (JobKind::Provision, None) => Ok(Self::Provision { email }),
            (JobKind::Invite, Some(invitation)) => Ok(Self::Invite { invitation, email }),
            // The table's check constraint rules this out.
            _ => Err(sqlx::Error::Decode(
                format!("a {kind} job with invitation {invitation:?}").into(),
            )),
        }
    }
}

/// The channel workers LISTEN on; a notification only says "look".
pub(crate) const CHANNEL: &str = "rosterd_jobs";

/// Queues `jobs` inside the caller's transaction, each once; none is no
/// statement. A pending job is reused; a running one is marked dirty so it
/// runs again when it finishes. Jobs are queued sorted, so concurrent
/// transactions lock job rows in one order (no deadlocks).
///
/// No NOTIFY here: a transaction that notifies holds a cluster-wide lock
/// until its commit is flushed, which would serialise every ingest. The
/// caller pokes a [`Wakeup`] after committing instead.
pub(crate) async fn enqueue(
    conn: &mut PgConnection,
    jobs: impl IntoIterator<Item = Job>,
) -> Result<(), sqlx::Error> {
    let mut jobs: Vec<Job> = jobs.into_iter().collect();
    jobs.sort_unstable();
    jobs.dedup();
    // sqlx binds `text[]` from a slice of `String`.
    let mut emails: Vec<String> = Vec::new();
    let (mut invitations, mut addressed): (Vec<i64>, Vec<String>) = (Vec::new(), Vec::new());
    for job in &jobs {
        match job {
            Job::Provision { email } => emails.push(email.as_str().to_owned()),
            Job::Invite { invitation, .. } => {
                invitations.push(*invitation);
                addressed.push(job.email().to_owned());
            }
        }
    }
    if !emails.is_empty() {
        sqlx::query!(
            r#"insert into provisioning_jobs (email)
               select unnest($1::text[])
               on conflict (email) where kind = 'provision' and state in ('pending', 'running')
               do update set
                   dirty = provisioning_jobs.state = $2,
                   run_at = case when provisioning_jobs.state = $3
                                 then least(provisioning_jobs.run_at, now())
                                 else provisioning_jobs.run_at end,
                   updated_at = now()"#,
            &emails,
            JobState::Running.as_str(),
            JobState::Pending.as_str()
        )
        .execute(&mut *conn)
        .await?;
    }
    if !invitations.is_empty() {
        sqlx::query!(
            r#"insert into provisioning_jobs (kind, invitation_id, email)
               select $4, i, e from unnest($1::bigint[], $5::text[]) as j(i, e)
               on conflict (invitation_id) where kind = 'invite' and state in ('pending', 'running')
               do update set
                   dirty = provisioning_jobs.state = $2,
                   run_at = case when provisioning_jobs.state = $3
                                 then least(provisioning_jobs.run_at, now())
                                 else provisioning_jobs.run_at end,
                   updated_at = now()"#,
            &invitations,
            JobState::Running.as_str(),
            JobState::Pending.as_str(),
            JobKind::Invite.as_str(),
            &addressed
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Tells every worker (in any process) that jobs were queued, outside the
/// queueing transaction.
pub(crate) async fn notify(db: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_notify($1, '')", CHANNEL)
        .execute(db)
        .await?;
    Ok(())
}

/// Coalesces "jobs were queued" pokes into at most one NOTIFY per
/// [`Wakeup::WINDOW`], sent by one background task.
#[derive(Clone)]
pub struct Wakeup {
    poke: std::sync::Arc<tokio::sync::Notify>,
}

impl Wakeup {
    const WINDOW: Duration = Duration::from_millis(10);

    /// Starts the notifying task; it lives as long as the runtime.
    pub fn spawn(db: PgPool) -> Self {
        let poke = std::sync::Arc::new(tokio::sync::Notify::new());
        let waiting = poke.clone();
        tokio::spawn(async move {
            loop {
                waiting.notified().await;
                if let Err(e) = notify(&db).await {
                    // Workers still poll; a lost wakeup only delays a job.
                    tracing::debug!(error = %e, "NOTIFY failed");
                }
                tokio::time::sleep(Self::WINDOW).await;
            }
        });
        Self { poke }
    }

    /// Non-blocking; many pokes before the next NOTIFY make one.
    pub(crate) fn poke(&self) {
        self.poke.notify_one();
    }
}

/// A job a worker holds the lease of.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub(crate) id: i64,
    pub job: Job,
    /// This attempt's number, from 1.
    pub(crate) attempt: i32,
    pub(crate) token: Uuid,
    pub(crate) started_at: DateTime<Utc>,
}

/// Claims up to `limit` due jobs for `lease`. Jobs whose lease ran out
/// (their worker died) are due again. The claim commits at once: no row
/// lock is held while the provider is called.
pub async fn claim(db: &PgPool, limit: i64, lease: Duration) -> Result<Vec<Claimed>, sqlx::Error> {
    let token = Uuid::new_v4();
    let lease_secs = lease.as_secs_f64();
    let rows = sqlx::query!(
        r#"with
           -- Each side walks its own partial index in claim order, so a claim
           -- reads the rows it takes, not the whole queue (an OR of the two
           -- would sort every pending job on every claim).
           due as (
               select id from provisioning_jobs
               where state = 'pending' and run_at <= now()
               order by run_at, id limit $1
               for update skip locked),
           -- A dead worker's jobs, once its lease ran out.
           expired as (
               select id from provisioning_jobs
               where state = 'running' and lease_until < now()
               order by lease_until limit $1
               for update skip locked)
           update provisioning_jobs j set
               state = $4,
               attempts = j.attempts + 1,
               lease_token = $2,
               lease_until = now() + make_interval(secs => $3),
               updated_at = now()
           where j.id in (
               select id from expired union all select id from due limit $1)
           returning j.id, j.kind as "kind: JobKind", j.email, j.invitation_id, j.attempts,
                     now() as "started_at!""#,
        limit,
        token,
        lease_secs,
        JobState::Running.as_str()
    )
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Claimed {
                id: r.id,
                job: Job::from_row(r.kind, r.email, r.invitation_id)?,
                attempt: r.attempts,
                token,
                started_at: r.started_at,
            })
        })
        .collect()
}

/// Gives claimed jobs that never started back to the queue as they were
/// (a stopping worker's prefetched jobs), so no one waits for their lease.
pub(crate) async fn unclaim(db: &PgPool, jobs: &[Claimed]) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let tokens: Vec<Uuid> = jobs.iter().map(|j| j.token).collect();
    sqlx::query!(
        "update provisioning_jobs j set
             state = $3, attempts = j.attempts - 1, dirty = false,
             lease_token = null, lease_until = null, updated_at = now()
         from unnest($1::bigint[], $2::uuid[]) as c(id, token)
         where j.id = c.id and j.lease_token = c.token and j.state = $4",
        &ids,
        &tokens,
        JobState::Pending.as_str(),
        JobState::Running.as_str()
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Extends a claim; `false` when it was lost (lease expired and taken).
pub(crate) async fn renew(
    db: &PgPool,
    job: &Claimed,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query!(
        "update provisioning_jobs set lease_until = now() + make_interval(secs => $3)
         where id = $1 and lease_token = $2 and state = $4",
        job.id,
        job.token,
        lease.as_secs_f64(),
        JobState::Running.as_str()
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    Done { action: Action },
    Retry { error: String, after: Duration },
    Dead { error: String, transient: bool },
}

impl Finish {
    /// The state the attempt leaves its job in (unless the person changed
    /// meanwhile: see [`finish`]).
    pub(crate) fn state(&self) -> JobState {
        match self {
            Self::Done { .. } => JobState::Done,
            Self::Retry { .. } => JobState::Pending,
            Self::Dead { .. } => JobState::Dead,
        }
    }
}

/// Records attempts and moves their jobs on, many in one statement: the
/// worker's results are written by one task that takes whatever has
/// finished meanwhile, so a busy worker pays one round trip and one commit
/// per batch rather than per job. A dirty job (the person changed while it
/// ran) goes back to pending, due now, with a fresh attempt count. Returns,
/// per result, `false` when its claim had been lost, in which case nothing
/// is written for it.
pub async fn finish(
    db: &PgPool,
    results: &[(&Claimed, &Finish)],
) -> Result<Vec<bool>, sqlx::Error> {
    let mut cols = FinishColumns::default();
    for (job, result) in results {
        cols.push(job, result);
    }
    // The state words are spelt out, not bound: with `j.state = $n` and
    // real statistics PostgreSQL re-plans this statement on every call
    // (its generic plan guesses most rows match), which cost ~8% of the
    // drain rate. `state_words_in_sql` holds them to `JobState`.
    let recorded: Vec<i64> = sqlx::query_scalar!(
        r#"with result as (
               select * from unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                                    $6::bool[], $7::float8[], $8::int[], $9::timestamptz[])
                   as r(id, token, state, action, error, transient, delay, attempt, started_at)),
           job as (
               update provisioning_jobs j set
                   state = case when j.dirty and r.state <> 'pending' then 'pending' else r.state end,
                   attempts = case when j.dirty and r.state <> 'pending' then 0 else j.attempts end,
                   run_at = case when j.dirty then now() else now() + make_interval(secs => r.delay) end,
                   dirty = false,
                   lease_token = null,
                   lease_until = null,
                   last_action = coalesce(r.action, j.last_action),
                   last_error = r.error,
                   updated_at = now()
               from result r
               where j.id = r.id and j.lease_token = r.token and j.state = 'running'
               returning r.*)
           insert into provisioning_attempts (job_id, attempt, started_at, action, error, transient)
           select id, attempt, started_at, action, error, transient from job
           returning job_id as "job_id!""#,
        &cols.id,
        &cols.token,
        &cols.state as &[JobState],
        &cols.action as &[Option<Action>],
        &cols.error as &[Option<String>],
        &cols.transient as &[Option<bool>],
        &cols.delay,
        &cols.attempt,
        &cols.started_at,
    )
    .fetch_all(db)
    .await?;
    Ok(results
        .iter()
        .map(|(job, _)| recorded.contains(&job.id))
        .collect())
}

/// [`finish`]'s parameters, a column each.
#[derive(Default)]
struct FinishColumns {
    id: Vec<i64>,
    token: Vec<Uuid>,
    state: Vec<JobState>,
    action: Vec<Option<Action>>,
    error: Vec<Option<String>>,
    transient: Vec<Option<bool>>,
    delay: Vec<f64>,
    attempt: Vec<i32>,
    started_at: Vec<DateTime<Utc>>,
}

impl FinishColumns {
    fn push(&mut self, job: &Claimed, result: &Finish) {
        let (action, error, transient, delay) = match result {
            Finish::Done { action } => (Some(*action), None, None, 0.0),
            Finish::Retry { error, after } => (None, Some(error), Some(true), after.as_secs_f64()),
            Finish::Dead { error, transient } => (None, Some(error), Some(*transient), 0.0),
        };
        self.id.push(job.id);
        self.token.push(job.token);
        self.state.push(result.state());
        self.action.push(action);
        // Provider error text is not ours: Postgres `text` refuses NUL, and a
        // refused result would leave the job to its lease.
        self.error.push(error.map(|e| e.replace('\0', "\u{fffd}")));
        self.transient.push(transient);
        self.delay.push(delay);
        self.attempt.push(job.attempt);
        self.started_at.push(job.started_at);
    }
}

/// Full-jitter exponential backoff: uniform in [0, min(cap, base·2^(n-1))],
/// never shorter than the provider's `Retry-After`. The schedule lives in
/// the database (`run_at`), so it is computed here rather than by an
/// in-process retry loop.
pub(crate) fn backoff(attempt: i32, retry_after: Option<Duration>) -> Duration {
    const BASE: f64 = 1.0;
    const CAP: f64 = 600.0;
    let exp = BASE * 2f64.powi(attempt.clamp(1, 30) - 1);
    let jittered = Duration::from_secs_f64(rand::random::<f64>() * exp.min(CAP));
    match retry_after {
        Some(ra) => jittered.max(ra.min(Duration::from_secs(CAP as u64))),
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `finish` spells these words in its SQL (see there).
    #[test]
    fn state_words_in_sql() {
        assert_eq!(JobState::Pending.as_str(), "pending");
        assert_eq!(JobState::Running.as_str(), "running");
    }

    #[test]
    fn backoff_is_capped_jittered_and_honours_retry_after() {
        for attempt in 1..=12 {
            let cap = (2f64.powi(attempt - 1)).min(600.0);
            for _ in 0..50 {
                assert!(backoff(attempt, None).as_secs_f64() <= cap);
            }
        }
        let ra = Duration::from_secs(30);
        for _ in 0..50 {
            assert!(backoff(1, Some(ra)) >= ra);
        }
        // A huge Retry-After is clamped to the cap.
        assert_eq!(
            backoff(1, Some(Duration::from_secs(86_400))),
            Duration::from_secs(600)
        );
        // Full jitter: not always the maximum.
        let spread: std::collections::BTreeSet<u128> =
            (0..50).map(|_| backoff(10, None).as_millis()).collect();
        assert!(spread.len() > 10);
    }
}
