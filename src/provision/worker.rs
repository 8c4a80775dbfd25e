//! Drains the provisioning outbox: claims due jobs, provisions each person
//! through [`super::provision_person`], records every attempt.

use super::jobs::{self, Claimed, Finish};
use super::provider::AuthProvider;
use super::{provision_person, ProvisionError};
use crate::event::Email;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs provisioned at once by this process.
    pub concurrency: usize,
    /// How long a claim lasts without renewal; a dead worker's jobs are
    /// taken over after this.
    pub lease: Duration,
    /// Fallback when no notification arrives (missed, or another process
    /// without LISTEN wrote the job).
    pub poll_interval: Duration,
    /// Attempts before a job is `dead`.
    pub max_attempts: i32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(5),
            max_attempts: 12,
        }
    }
}

#[derive(Clone)]
pub struct Worker {
    db: PgPool,
    provider: Arc<dyn AuthProvider>,
    cfg: WorkerConfig,
}

/// What [`Worker::drain`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DrainReport {
    pub done: usize,
    pub retried: usize,
    pub dead: usize,
}

impl Worker {
    pub fn new(db: PgPool, provider: Arc<dyn AuthProvider>, cfg: WorkerConfig) -> Self {
        Self { db, provider, cfg }
    }

    /// Runs until `shutdown`, then lets the jobs in flight finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut listener = match self.listen().await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN failed; polling only");
                None
            }
        };
        let permits = Arc::new(Semaphore::new(self.cfg.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        tracing::info!(
            concurrency = self.cfg.concurrency,
            "provisioning worker started"
        );
        while !shutdown.is_cancelled() {
            let free = permits.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                match jobs::claim(&self.db, free as i64, self.cfg.lease).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming jobs failed");
                        Vec::new()
                    }
                }
            };
            let drained = claimed.len() < free;
            for job in claimed {
                let permit = permits.clone().acquire_owned().await.expect("never closed");
                let me = self.clone();
                tasks.spawn(async move {
                    me.run_job(job).await;
                    drop(permit);
                });
            }
            while tasks.try_join_next().is_some() {}
            if !drained {
                continue;
            }
            // Nothing more is due: sleep until told, polled, or a slot frees.
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = wait_notification(&mut listener) => {}
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() && permits.available_permits() == 0 => {}
            }
        }
        tracing::info!(
            in_flight = tasks.len(),
            "worker stopping; finishing jobs in flight"
        );
        while tasks.join_next().await.is_some() {}
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut l = PgListener::connect_with(&self.db).await?;
        l.listen(jobs::CHANNEL).await?;
        Ok(l)
    }

    /// Runs every due job, `concurrency` at a time, until none is due;
    /// jobs scheduled for later (backoff) are left. For `rosterd worker
    /// --once`, tests and benchmarks.
    pub async fn drain(&self) -> Result<DrainReport, sqlx::Error> {
        let mut report = DrainReport::default();
        let mut tasks = JoinSet::new();
        let slots = self.cfg.concurrency.max(1);
        loop {
            // Refill free slots as soon as they free up, as `run` does.
            if tasks.len() < slots {
                let claimed =
                    jobs::claim(&self.db, (slots - tasks.len()) as i64, self.cfg.lease).await?;
                for job in claimed {
                    let me = self.clone();
                    tasks.spawn(async move { me.run_job(job).await });
                }
            }
            let Some(done) = tasks.join_next().await else {
                return Ok(report);
            };
            match done.expect("a job task never panics") {
                Some(Finish::Done { .. }) => report.done += 1,
                Some(Finish::Retry { .. }) => report.retried += 1,
                Some(Finish::Dead { .. }) => report.dead += 1,
                None => {}
            }
        }
    }

    /// Provisions one claimed job while renewing its lease; records the
    /// result unless the claim was lost meanwhile.
    async fn run_job(&self, job: Claimed) -> Option<Finish> {
        let email = Email::from_trusted(job.email.clone());
        let work = provision_person(&self.db, self.provider.as_ref(), &email);
        tokio::pin!(work);
        let mut renew = tokio::time::interval(self.cfg.lease / 3);
        renew.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = renew.tick() => {
                    if let Ok(false) = jobs::renew(&self.db, &job, self.cfg.lease).await {
                        tracing::warn!(job = job.id, "lease lost; another worker has the job");
                    }
                }
            }
        };
        let finish = self.outcome(&job, result);
        let recorded = match jobs::finish(&self.db, &job, &finish).await {
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

    fn outcome(
        &self,
        job: &Claimed,
        result: Result<super::person::Action, ProvisionError>,
    ) -> Finish {
        match result {
            Ok(action) => Finish::Done {
                action: action.as_str(),
            },
            Err(e) if e.is_transient() && job.attempt < self.cfg.max_attempts => {
                let after = jobs::backoff(job.attempt, e.retry_after());
                tracing::warn!(job = job.id, attempt = job.attempt, retry_in = ?after, error = %e, "provisioning failed; will retry");
                Finish::Retry {
                    error: e.to_string(),
                    after,
                }
            }
            Err(e) => {
                tracing::error!(job = job.id, attempt = job.attempt, error = %e, "provisioning failed; job is dead");
                Finish::Dead {
                    transient: e.is_transient(),
                    error: e.to_string(),
                }
            }
        }
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
