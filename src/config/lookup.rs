//! How the login lookup sheds load it cannot take.

use super::ConfigError;
use clap::Args;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct LookupArgs {
    /// First logins provisioned inline at once by this process; more wait
    /// in line (LOOKUP_QUEUE_WAIT_MS), then get 503 overloaded.
    #[arg(long, env = "LOOKUP_PROVISION_CONCURRENCY", default_value_t = 8)]
    pub(crate) lookup_provision_concurrency: usize,
    /// Milliseconds a lookup may wait in line for an inline-provisioning
    /// slot or an Airtable request slot before answering 503 overloaded.
    #[arg(long, env = "LOOKUP_QUEUE_WAIT_MS", default_value_t = 250)]
    pub(crate) lookup_queue_wait_ms: u64,
}

/// How the login lookup sheds load it cannot take.
#[derive(Debug, Clone, Copy)]
pub struct LookupConfig {
    pub provision_concurrency: usize,
    pub queue_wait: Duration,
}

impl LookupArgs {
    pub(crate) fn resolve(&self) -> Result<LookupConfig, ConfigError> {
        if self.lookup_provision_concurrency == 0 {
            return Err(ConfigError::new(
                "LOOKUP_PROVISION_CONCURRENCY",
                "must be at least 1",
            ));
        }
        if self.lookup_provision_concurrency > 1000 {
            return Err(ConfigError::new(
                "LOOKUP_PROVISION_CONCURRENCY",
                "must be at most 1000 (each run holds a database connection)",
            ));
        }
        if self.lookup_queue_wait_ms > 60_000 {
            return Err(ConfigError::new(
                "LOOKUP_QUEUE_WAIT_MS",
                "must be at most 60000; a login waiting longer is better told to retry",
            ));
        }
        Ok(LookupConfig {
            provision_concurrency: self.lookup_provision_concurrency,
            queue_wait: Duration::from_millis(self.lookup_queue_wait_ms),
        })
    }
}
