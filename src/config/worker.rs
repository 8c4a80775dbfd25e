//! The provisioning worker: concurrency, lease, poll, attempts.

use super::ConfigError;
use clap::Args;
use std::time::Duration;

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

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Provisioning jobs run at once by this process.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 8)]
    pub(crate) worker_concurrency: usize,
    /// Seconds a claimed job stays ours without renewal.
    #[arg(long, env = "JOB_LEASE_SECS", default_value_t = 60)]
    pub(crate) job_lease_secs: u64,
    /// Seconds between queue polls when no notification arrives.
    #[arg(long, env = "WORKER_POLL_SECS", default_value_t = 5)]
    pub(crate) worker_poll_secs: u64,
    /// Attempts before a job is dead.
    #[arg(long, env = "JOB_MAX_ATTEMPTS", default_value_t = 12)]
    pub(crate) job_max_attempts: i32,
}

impl WorkerArgs {
    pub(crate) fn resolve(&self) -> Result<WorkerConfig, ConfigError> {
        if self.worker_concurrency == 0 {
            return Err(ConfigError::new("WORKER_CONCURRENCY", "must be at least 1"));
        }
        if self.job_lease_secs < 3 {
            return Err(ConfigError::new("JOB_LEASE_SECS", "must be at least 3"));
        }
        if self.job_max_attempts < 1 {
            return Err(ConfigError::new("JOB_MAX_ATTEMPTS", "must be at least 1"));
        }
        Ok(WorkerConfig {
            concurrency: self.worker_concurrency,
            lease: Duration::from_secs(self.job_lease_secs),
            poll_interval: Duration::from_secs(self.worker_poll_secs.max(1)),
            max_attempts: self.job_max_attempts,
        })
    }
}
