//! Admission for work that costs more than the machine can do at once.
//!
//! A login that must provision its person inline holds a provisioning
//! connection and a provider call for milliseconds; a thousand of them
//! arriving together would otherwise queue on the pool until its acquire
//! timeout and answer 503 only after seconds. A [`Gate`] lets a fixed
//! number in, keeps the next ones in line (first come, first served) for a
//! short while, and refuses the rest at once, so the caller can answer
//! `503` + `Retry-After` while it still means something.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Refused: the line was longer than the caller may wait. Retry after
/// `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("busy; retry in {retry_after:?}")]
pub struct Busy {
    pub(crate) retry_after: Duration,
}

/// At most `capacity` holders at once; others wait in arrival order (tokio's
/// semaphore is fair) for at most `max_wait`.
#[derive(Debug, Clone)]
pub struct Gate {
    slots: Arc<Semaphore>,
    max_wait: Duration,
}

/// Held while the work runs; dropping it lets the next one in.
pub(crate) type Pass = OwnedSemaphorePermit;

impl Gate {
    pub fn new(capacity: usize, max_wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(capacity.max(1))),
            max_wait,
        }
    }

    /// A pass, or [`Busy`] after at most `max_wait`.
    pub(crate) async fn enter(&self) -> Result<Pass, Busy> {
        let busy = Busy {
            // Work behind this gate takes milliseconds: one second is ample
            // for the line to move, and the least a Retry-After can say.
            retry_after: Duration::from_secs(1),
        };
        if let Ok(pass) = self.slots.clone().try_acquire_owned() {
            return Ok(pass);
        }
        match tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(pass)) => Ok(pass),
            // Never closed; a timeout is the refusal.
            Ok(Err(_)) | Err(_) => Err(busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn lets_capacity_in_queues_briefly_then_refuses() {
        let gate = Gate::new(2, Duration::from_millis(200));
        let a = gate.enter().await.unwrap();
        let _b = gate.enter().await.unwrap();
        // Full: a third waits, and gets in when a holder leaves in time.
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(a);
        let _c = waiting.await.unwrap().expect("in before max_wait");
        // Full again and nobody leaves: refused after max_wait, not later.
        let started = tokio::time::Instant::now();
        let refused = gate.enter().await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        assert_eq!(refused.retry_after, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn first_in_line_is_first_in() {
        let gate = Gate::new(1, Duration::from_secs(10));
        let holder = gate.enter().await.unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..5 {
            let (gate, order) = (gate.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let pass = gate.enter().await.unwrap();
                order.lock().unwrap().push(i);
                drop(pass);
            }));
            // Each is in line before the next arrives.
            tokio::task::yield_now().await;
        }
        drop(holder);
        for w in waiters {
            w.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }
}
