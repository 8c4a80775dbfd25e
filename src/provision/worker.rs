//! Works the outbox: claims due jobs, runs each by its kind — provisions a
//! person through [`super::provision_person`], or mails an invitation
//! through [`crate::invite::deliver`] — and records every attempt. One
//! loop, which runs until shutdown ([`Worker::run`]) or until nothing is
//! due ([`Worker::drain`]).

use super::provider::AuthProvider;
use super::{provision_person, ProvisionError};
use crate::config::WorkerConfig;
use crate::invite::deliver::{deliver, DeliverError, Delivery};
use crate::outbox::{self, Claimed, Finish, Job};
use crate::state::Action;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Worker {
    db: PgPool,
    provider: Arc<dyn AuthProvider>,
    cfg: WorkerConfig,
    invitations: Option<crate::config::InvitePolicy>,
    delivery: Option<Arc<Delivery>>,
}

/// What [`Worker::drain`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DrainReport {
    pub done: usize,
    pub retried: usize,
    pub dead: usize,
}

impl DrainReport {
    /// Counts a job task that ended. A drain treats a task that panicked
    /// as a bug to surface; a run goes on with its other jobs.
    fn count(&mut self, ended: Result<Option<Finish>, JoinError>, until: Until) {
        let finished = match ended {
            Ok(finished) => finished,
            Err(e) if until == Until::Drained => panic!("a job task never panics: {e}"),
            Err(_) => return,
        };
        match finished {
            Some(Finish::Done { .. }) => self.done += 1,
            Some(Finish::Retry { .. }) => self.retried += 1,
            Some(Finish::Dead { .. }) => self.dead += 1,
            None => {}
        }
    }
}

/// When the worker's loop stops: the drain flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// At shutdown; meanwhile it waits for jobs, and a failed claim is
    /// logged and tried again.
    Shutdown,
    /// Once nothing is due and nothing runs; a failed claim ends it.
    Drained,
}

impl Worker {
    pub fn new(db: PgPool, provider: Arc<dyn AuthProvider>, cfg: WorkerConfig) -> Self {
        Self {
            db,
            provider,
            cfg,
            invitations: None,
            delivery: None,
        }
    }

    /// Provisioning issues invitations under `policy`, and invitation jobs
    /// are mailed through `delivery` (without one they fail for good).
    pub fn inviting(
        mut self,
        policy: Option<crate::config::InvitePolicy>,
        delivery: Option<Delivery>,
    ) -> Self {
        self.invitations = policy;
        self.delivery = delivery.map(Arc::new);
        self
    }

    /// Runs until `shutdown`, then lets the jobs in flight finish.
    pub async fn run(self, shutdown: CancellationToken) {
        // Only a drain stops at an error; a run logs it and claims again.
        let _ = self.work(Until::Shutdown, &shutdown).await;
    }

    /// Runs every due job, `concurrency` at a time, until none is due;
    /// jobs scheduled for later (backoff) are left. For `rosterd worker
    /// --once`, tests and benchmarks.
    pub async fn drain(&self) -> Result<DrainReport, sqlx::Error> {
        // Nothing cancels it: it ends when the queue has nothing due.
        self.work(Until::Drained, &CancellationToken::new()).await
    }

    /// The one loop of [`Worker::run`] and [`Worker::drain`]: claims due
    /// jobs in batches, runs them `concurrency` at a time, and stops as
    /// `until` says; then gives back jobs claimed ahead and lets those in
    /// flight finish.
    async fn work(
        &self,
        until: Until,
        shutdown: &CancellationToken,
    ) -> Result<DrainReport, sqlx::Error> {
        let draining = until == Until::Drained;
        let mut listener = match until {
            Until::Drained => None,
            Until::Shutdown => match self.listen().await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN failed; polling only");
                    None
                }
            },
        };
        let slots = Arc::new(Semaphore::new(self.cfg.concurrency.max(1)));
        let recorder = Recorder::spawn(self.db.clone());
        let mut ready = Prefetch::new(self.cfg.concurrency.max(1));
        let mut tasks = JoinSet::new();
        let mut report = DrainReport::default();
        if !draining {
            tracing::info!(
                concurrency = self.cfg.concurrency,
                "provisioning worker started"
            );
        }
        while !shutdown.is_cancelled() {
            // Jobs already claimed start before the claim's round trip.
            self.start(&mut ready, &slots, &recorder, &mut tasks);
            let mut drained = self.refill(&mut ready, until).await?;
            if self.start(&mut ready, &slots, &recorder, &mut tasks) && !drained {
                // Claim again for the jobs just started, so their
                // successors are ready the moment a slot frees rather than
                // a claim's round trip later.
                drained = self.refill(&mut ready, until).await?;
            }
            // Every job that ended did so before the claim, so one it put
            // back (its person changed meanwhile) would have been claimed.
            if draining && tasks.is_empty() {
                break;
            }
            while let Some(ended) = tasks.try_join_next() {
                report.count(ended, until);
            }
            if slots.available_permits() == 0 {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = slots.acquire() => {}
                }
                continue;
            }
            if !drained || (draining && tasks.is_empty()) {
                continue;
            }
            // Nothing more is due: sleep until told, polled, or a job ends
            // (a person who changed while provisioned is due again then).
            // A drain only waits for its jobs.
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = wait_notification(&mut listener) => {}
                _ = tokio::time::sleep(self.cfg.poll_interval), if !draining => {}
                Some(ended) = tasks.join_next(), if !tasks.is_empty() => report.count(ended, until),
            }
        }
        if !draining {
            tracing::info!(
                in_flight = tasks.len(),
                "worker stopping; finishing jobs in flight"
            );
        }
        if let Err(e) = ready.give_back(&self.db).await {
            tracing::warn!(error = %e, "returning prefetched jobs failed; their leases will run out");
        }
        while let Some(ended) = tasks.join_next().await {
            report.count(ended, until);
        }
        Ok(report)
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut l = PgListener::connect_with(&self.db).await?;
        l.listen(outbox::CHANNEL).await?;
        Ok(l)
    }

    /// Tops up the claimed jobs; `true` when nothing more is due. A failed
    /// claim ends a drain; a run logs it and treats the queue as drained,
    /// so it waits before claiming again.
    async fn refill(&self, ready: &mut Prefetch, until: Until) -> Result<bool, sqlx::Error> {
        match ready.refill(&self.db, self.cfg.lease).await {
            Ok(drained) => Ok(drained),
            Err(e) if until == Until::Drained => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "claiming jobs failed");
                Ok(true)
            }
        }
    }

    /// Starts claimed jobs while slots are free; `true` if it started any.
    fn start(
        &self,
        ready: &mut Prefetch,
        slots: &Arc<Semaphore>,
        recorder: &Recorder,
        tasks: &mut JoinSet<Option<Finish>>,
    ) -> bool {
        let mut started = false;
        while let Ok(slot) = slots.clone().try_acquire_owned() {
            let Some((job, claimed)) = ready.next() else {
                break;
            };
            let (me, recorder) = (self.clone(), recorder.clone());
            tasks.spawn(async move { me.run_job(job, claimed, slot, &recorder).await });
            started = true;
        }
        started
    }

    /// Provisions one claimed job in `slot` while renewing its lease; frees
    /// the slot, then records the result unless the claim was lost
    /// meanwhile. A slot bounds calls to the provider; recording waits for
    /// the next batch write, which the next job need not wait for.
    async fn run_job(
        &self,
        job: Claimed,
        claimed: Instant,
        slot: OwnedSemaphorePermit,
        recorder: &Recorder,
    ) -> Option<Finish> {
        if !self.still_ours(&job, claimed).await {
            crate::metrics::job_finished("discarded");
            return None;
        }
        let work = async {
            match &job.job {
                Job::Provision { email } => {
                    // The worker's pool is tier 2 (crate::db): claims and
                    // results never wait for another connection while
                    // holding one.
                    let runs = crate::db::RunPool::new(self.db.clone()).inviting(self.invitations);
                    provision_person(&runs, self.provider.as_ref(), email)
                        .await
                        .map_err(Failed::from)
                }
                Job::Invite { invitation, .. } => {
                    deliver(&self.db, self.delivery.as_deref(), *invitation)
                        .await
                        .map_err(Failed::from)
                }
            }
        };
        tokio::pin!(work);
        let mut renew = tokio::time::interval(self.cfg.lease / 3);
        renew.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = renew.tick() => {
                    if let Ok(false) = outbox::renew(&self.db, &job, self.cfg.lease).await {
                        tracing::warn!(job = job.id, "lease lost; another worker has the job");
                    }
                }
            }
        };
        drop(slot);
        let finish = self.outcome(&job, result);
        let recorded = match recorder.record(job.clone(), finish.clone()).await {
            Ok(true) => Some(finish),
            Ok(false) => {
                tracing::warn!(job = job.id, "result discarded: the claim was lost");
                None
            }
            Err(e) => {
                // The lease runs out and another attempt picks the job up.
                tracing::warn!(job = job.id, error = %e, "recording the result failed");
                None
            }
        };
        crate::metrics::job_finished(match &recorded {
            Some(Finish::Done { .. }) => "done",
            Some(Finish::Retry { .. }) => "retried",
            Some(Finish::Dead { .. }) => "dead",
            None => "discarded",
        });
        recorded
    }

    /// Whether a job claimed ahead may still run. Nothing renews it while
    /// it waits for a slot, and once it runs its first renewal comes a third
    /// of the lease later; so a job that waited less than a third still has
    /// a third of its lease to spare when that renewal lands (room for a
    /// slow round trip), and runs as it is. One that waited longer (every
    /// slot held by slow provider calls) is renewed first: if the lease ran
    /// out and another worker claimed the job, it is that worker's to run,
    /// and running it here too would act on the person twice. Renewing once
    /// at the start, rather than every waiting job on a timer, costs one
    /// statement and only when a job did wait that long.
    async fn still_ours(&self, job: &Claimed, claimed: Instant) -> bool {
        if claimed.elapsed() < self.cfg.lease / 3 {
            return true;
        }
        match outbox::renew(&self.db, job, self.cfg.lease).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(
                    job = job.id,
                    "a job claimed ahead waited out its lease and another worker has it; not running it"
                );
                false
            }
            Err(e) => {
                // Unknown whether it is still ours: leave it to its lease
                // rather than risk running it beside another worker.
                tracing::warn!(job = job.id, error = %e, "renewing a job claimed ahead failed; not running it");
                false
            }
        }
    }

    fn outcome(&self, job: &Claimed, result: Result<Action, Failed>) -> Finish {
        let kind = job.job.kind().as_str();
        match result {
            Ok(action) => Finish::Done { action },
            Err(e) if e.transient && job.attempt < self.cfg.max_attempts => {
                let after = outbox::backoff(job.attempt, e.retry_after);
                tracing::warn!(job = job.id, kind, attempt = job.attempt, retry_in = ?after, error = %e.message, "job failed; will retry");
                Finish::Retry {
                    error: e.message,
                    after,
                }
            }
            Err(e) => {
                tracing::error!(job = job.id, kind, attempt = job.attempt, error = %e.message, "job failed; it is dead");
                Finish::Dead {
                    transient: e.transient,
                    error: e.message,
                }
            }
        }
    }
}

/// A job's failure, whatever its kind, as retrying sees it.
struct Failed {
    message: String,
    transient: bool,
    retry_after: Option<Duration>,
}

impl From<ProvisionError> for Failed {
    fn from(e: ProvisionError) -> Self {
        Self {
            transient: e.is_transient(),
            retry_after: e.retry_after(),
            message: e.to_string(),
        }
    }
}

impl From<DeliverError> for Failed {
    fn from(e: DeliverError) -> Self {
        Self {
            transient: e.is_transient(),
            retry_after: None,
            message: e.to_string(),
        }
    }
}

/// Claimed jobs waiting for a slot. Claiming a slot's worth at a time
/// cost a claim statement per job; this claims in batches once it runs
/// low, so at most `slots` jobs wait here, usually for less than one job's
/// time. Each is kept with when it was claimed, for
/// [`Worker::still_ours`].
struct Prefetch {
    slots: usize,
    jobs: VecDeque<(Claimed, Instant)>,
}

impl Prefetch {
    fn new(slots: usize) -> Self {
        Self {
            slots,
            jobs: VecDeque::new(),
        }
    }

    /// Claims more when a quarter of a batch or less is left; `true` when
    /// the queue had fewer due jobs than asked for.
    async fn refill(&mut self, db: &PgPool, lease: Duration) -> Result<bool, sqlx::Error> {
        if self.jobs.len() > self.slots / 4 {
            return Ok(false);
        }
        let want = self.slots - self.jobs.len();
        // Taken before the claim, whose lease starts later: a job's wait is
        // never underestimated.
        let at = Instant::now();
        let claimed = outbox::claim(db, want as i64, lease).await?;
        let drained = claimed.len() < want;
        self.jobs.extend(claimed.into_iter().map(|job| (job, at)));
        Ok(drained)
    }

    fn next(&mut self) -> Option<(Claimed, Instant)> {
        self.jobs.pop_front()
    }

    async fn give_back(&mut self, db: &PgPool) -> Result<(), sqlx::Error> {
        let jobs: Vec<Claimed> = self.jobs.drain(..).map(|(job, _)| job).collect();
        if jobs.is_empty() {
            return Ok(());
        }
        outbox::unclaim(db, &jobs).await
    }
}

type Reply = oneshot::Sender<Result<bool, Arc<sqlx::Error>>>;

/// Writes job results, one statement for whatever finished meanwhile.
#[derive(Clone)]
struct Recorder {
    results: mpsc::UnboundedSender<(Claimed, Finish, Reply)>,
}

impl Recorder {
    /// Results written per statement, at most.
    const BATCH: usize = 256;

    /// The writing task ends when the last clone is dropped.
    fn spawn(db: PgPool) -> Self {
        let (results, mut pending) = mpsc::unbounded_channel::<(Claimed, Finish, Reply)>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(Self::BATCH);
            while pending.recv_many(&mut batch, Self::BATCH).await > 0 {
                let rows: Vec<_> = batch.iter().map(|(j, f, _)| (j, f)).collect();
                let written = outbox::finish(&db, &rows).await.map_err(Arc::new);
                for (i, (_, _, reply)) in batch.drain(..).enumerate() {
                    // A dropped receiver is a job task that was cancelled.
                    let _ = reply.send(written.as_ref().map(|w| w[i]).map_err(Arc::clone));
                }
            }
        });
        Self { results }
    }

    /// `false` when the claim had been lost and nothing was written.
    async fn record(&self, job: Claimed, result: Finish) -> Result<bool, Arc<sqlx::Error>> {
        let (reply, written) = oneshot::channel();
        self.results
            .send((job, result, reply))
            .expect("the recorder lives while a clone does");
        written.await.expect("the recorder answers every result")
    }
}

async fn wait_notification(listener: &mut Option<PgListener>) {
    match listener {
        Some(l) => {
            if let Err(e) = l.recv().await {
                tracing::warn!(error = %e, "LISTEN connection lost; it reconnects on the next wait");
                // Avoid spinning while the database is down.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        None => std::future::pending().await,
    }
}
