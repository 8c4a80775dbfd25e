//! Airtable's request rate, kept on our side: a fair line for request
//! slots, the limiter that spaces them, and the pause after a 429.

use super::{unavailable, Failure};
use crate::directory::DirectoryError;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// governor's view of time, read from tokio's clock: deadlines are tokio
/// instants, and the limiter must agree with them about what "now" is
/// (including under a paused test clock).
#[derive(Debug, Clone)]
struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// How long a call may take. It is refused at once when its turn for a
/// request slot would come after `queue_until`, and cut at `deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub(crate) deadline: Instant,
    pub(crate) queue_until: Instant,
}

/// A bare deadline waits in line for as long as it lasts.
impl From<Instant> for Budget {
    fn from(deadline: Instant) -> Self {
        Self {
            deadline,
            queue_until: deadline,
        }
    }
}

/// The callers waiting for a request slot, in arrival order.
#[derive(Debug, Default)]
struct Line {
    /// Callers in line, the head included: what a newcomer waits behind.
    waiting: AtomicUsize,
    /// tokio's mutex is fair: the head passes to callers in arrival order.
    head: tokio::sync::Mutex<()>,
    /// The last slot promised to a refused caller. Each refusal is told a
    /// slot of its own, after those promised before: told "in a second"
    /// all at once, a herd would come back all at once.
    promised: Mutex<Option<Instant>>,
}

impl Line {
    /// A slot for a refused caller, no earlier than `earliest`.
    fn book(&self, earliest: Instant, slot: Duration) -> Instant {
        let mut promised = lock(&self.promised);
        let at = promised.map_or(earliest, |p| (p + slot).max(earliest));
        *promised = Some(at);
        at
    }
}

/// A caller's place in [`Line::waiting`], given up however the call ends.
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The pacing shared by every call of one client.
pub(super) struct Pace {
    limiter: Limiter,
    /// The limiter's spacing between requests.
    slot: Duration,
    line: Line,
    /// How long Airtable wants callers to stay away after a 429.
    pub(super) rate_limit_wait: Duration,
    /// Until when Airtable's post-429 pause runs. Shared by every call: the
    /// pause is per base, so any request sent during it would only be
    /// refused again.
    paused_until: Mutex<Option<Instant>>,
}

impl Pace {
    pub(super) fn new(requests_per_second: u32, rate_limit_wait: Duration) -> Self {
        Self {
            limiter: limiter(slot(requests_per_second)),
            slot: slot(requests_per_second),
            line: Line::default(),
            rate_limit_wait,
            paused_until: Mutex::new(None),
        }
    }

    /// Waits in line for a request slot, first come first served, or is
    /// refused at once ([`DirectoryError::Busy`]) when the callers ahead
    /// would take every slot until `budget.queue_until`. Without a line,
    /// every waiter would wake at each slot, one would win, and a herd would
    /// wait out its deadlines in no order at all.
    pub(super) async fn queue(&self, what: &str, budget: Budget) -> Result<(), Failure> {
        let ahead = self.line.waiting.fetch_add(1, Ordering::SeqCst);
        let _place = Place(&self.line.waiting);
        // Everyone ahead takes a slot before this caller's turn comes.
        let wait = self
            .slot
            .saturating_mul(u32::try_from(ahead).unwrap_or(u32::MAX));
        let now = Instant::now();
        if now + wait > budget.queue_until.min(budget.deadline) {
            let back_at = self.line.book(now + wait, self.slot);
            return Err(Failure::Other(DirectoryError::Busy {
                retry_after: back_at - now,
            }));
        }
        let _head = self.line.head.lock().await;
        self.acquire(what, budget.deadline).await
    }

    /// Waits for the next request slot, or fails at once if it would come
    /// after `deadline`.
    pub(super) async fn acquire(&self, what: &str, deadline: Instant) -> Result<(), Failure> {
        loop {
            let Err(not_until) = self.limiter.check() else {
                return Ok(());
            };
            let at = Instant::now() + not_until.wait_time_from(self.limiter.clock().now());
            if at > deadline {
                return Err(unavailable(
                    what,
                    "the request rate limit leaves no slot before the deadline",
                ));
            }
            // Another caller may take the slot first; then check again.
            tokio::time::sleep_until(at).await;
        }
    }

    pub(super) async fn sit_out_pause(&self, what: &str, deadline: Instant) -> Result<(), Failure> {
        let until = *lock(&self.paused_until);
        let Some(until) = until.filter(|u| *u > Instant::now()) else {
            return Ok(());
        };
        if until >= deadline {
            return Err(unavailable(
                what,
                "Airtable's pause after a 429 lasts past the deadline",
            ));
        }
        tokio::time::sleep_until(until).await;
        Ok(())
    }

    pub(super) fn pause_after_429(&self) -> Instant {
        let until = Instant::now() + self.rate_limit_wait;
        let mut paused = lock(&self.paused_until);
        let until = paused.map_or(until, |p| p.max(until));
        *paused = Some(until);
        until
    }
}

/// One request per slot, no bursts: with bursts, a sliding one-second
/// window could see more than the limit. Each slot is 5% longer than
/// 1/rate because Airtable counts arrivals, and requests sent exactly on
/// time can arrive closer together (the first of a series usually pays
/// for the connection) — a 429 costs a 30 s pause, 5% costs little.
fn slot(requests_per_second: u32) -> Duration {
    let slot = Duration::from_secs(1) / requests_per_second;
    slot + slot / 20
}

fn limiter(slot: Duration) -> Limiter {
    // `with_period` refuses only a zero slot, which takes a rate beyond a
    // billion per second.
    let quota = Quota::with_period(slot).unwrap_or(Quota::per_second(NonZeroU32::MAX));
    RateLimiter::direct_with_clock(
        quota,
        TokioClock {
            origin: Instant::now(),
        },
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded value is a plain instant, valid whatever a panicking
    // holder was doing.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::airtable::DEFAULT_RATE_LIMIT_WAIT;

    #[tokio::test]
    async fn the_limiter_spaces_requests_and_respects_deadlines() {
        let pace = Pace::new(20, DEFAULT_RATE_LIMIT_WAIT);
        let far = Instant::now() + Duration::from_secs(10);
        let mut at = Vec::new();
        for _ in 0..6 {
            assert!(pace.acquire("t", far).await.is_ok());
            at.push(Instant::now());
        }
        for pair in at.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(50), "{at:?}");
        }
        // The next slot is ~52 ms away: a 10 ms deadline fails at once.
        let start = Instant::now();
        let refused = pace.acquire("t", start + Duration::from_millis(10)).await;
        assert!(matches!(
            refused,
            Err(Failure::Other(DirectoryError::Unavailable(_)))
        ));
        assert!(start.elapsed() < Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_herd_waits_in_line_or_is_told_a_turn_of_its_own() {
        let pace = std::sync::Arc::new(Pace::new(20, DEFAULT_RATE_LIMIT_WAIT));
        let slot = pace.slot;
        let start = Instant::now();
        let budget = Budget {
            deadline: start + Duration::from_secs(10),
            queue_until: start + Duration::from_millis(100),
        };
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..6 {
            let pace = pace.clone();
            calls.spawn(async move {
                let r = pace.queue("t", budget).await.map_err(DirectoryError::from);
                (i, r, Instant::now())
            });
        }
        let mut answers: Vec<_> = calls.join_all().await;
        answers.sort_by_key(|a| a.0);
        // The first passes at once and the next two wait their slots: a
        // fourth would be served after queue_until.
        let served: Vec<Duration> = answers[..3]
            .iter()
            .map(|(_, r, at)| {
                assert!(r.is_ok(), "{r:?}");
                *at - start
            })
            .collect();
        for (k, at) in served.iter().enumerate() {
            // tokio's timer wakes on whole milliseconds.
            let due = slot * k as u32;
            assert!(
                *at >= due && *at <= due + Duration::from_millis(1),
                "{served:?}"
            );
        }
        // The others are refused at once, each told a later slot.
        let told: Vec<Duration> = answers[3..]
            .iter()
            .map(|(_, r, at)| {
                assert_eq!(*at, start, "refused at once");
                match r {
                    Err(DirectoryError::Busy { retry_after }) => *retry_after,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        assert_eq!(told, vec![slot * 2, slot * 3, slot * 4]);
    }
}
