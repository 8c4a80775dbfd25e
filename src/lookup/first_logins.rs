//! Inline provisioning for the lookup: concurrent lookups of one person
//! share one run, and runs of different people are admitted by a
//! [`Gate`]. Without the sharing, twenty logins of one new person would
//! take twenty of the gate's places only to wait on each other's locks.

use crate::db::RunPool;
use crate::event::Email;
use crate::overload::{Busy, Gate};
use crate::provision::provider::AuthProvider;
use crate::provision::provision_person;
use crate::single_flight::SingleFlight;

/// How a shared run ended, for every caller that waited on it.
#[derive(Debug, Clone)]
pub enum Refused {
    /// The gate was full for longer than a lookup may wait.
    Busy(Busy),
    /// The run failed (provider or database); the job stays queued.
    Failed(String),
}

pub struct FirstLogins {
    gate: Gate,
    in_flight: SingleFlight<Email, Result<(), Refused>>,
}

impl FirstLogins {
    pub fn new(gate: Gate) -> Self {
        Self {
            gate,
            in_flight: SingleFlight::default(),
        }
    }

    /// Provisions `email`, or waits for the run already under way for it.
    pub(crate) async fn provision(
        &self,
        runs: &RunPool,
        provider: &dyn AuthProvider,
        email: &Email,
    ) -> Result<(), Refused> {
        self.in_flight
            .run(email, || async {
                let _pass = self.gate.enter().await.map_err(Refused::Busy)?;
                provision_person(runs, provider, email)
                    .await
                    .map(|_| ())
                    .map_err(|e| Refused::Failed(e.to_string()))
            })
            .await
    }
}
