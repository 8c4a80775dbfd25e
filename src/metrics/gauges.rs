//! The database's gauges of `/metrics`: read at scrape time (cached for
//! `METRICS_GAUGES_MAX_AGE_SECS`), so they are right whichever replica did
//! the work, and left out when the database does not answer.

use crate::state::{JobState, RowStatus};
use sqlx::PgPool;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A scrape should answer within a scraper's timeout (10 s by default)
/// even when the database hangs.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(3);

/// The database gauges, read at most once per `max_age` whatever the
/// scrape rate: counting a million roster rows (and the conflicts among
/// them) takes a second, which no scrape should wait for. A scrape gets
/// the last reading and, when it is older than `max_age`, starts one new
/// reading in the background; only a scrape with no usable reading (the
/// first, or after a long outage) waits for one. Readings older than four
/// times `max_age` are not shown: a dashboard shows a gap, not old numbers.
/// With `max_age` zero every scrape reads the database.
#[derive(Clone)]
pub struct Gauges {
    max_age: Duration,
    last: Arc<std::sync::Mutex<Option<(Instant, Snapshot)>>>,
    refreshing: Arc<AtomicBool>,
}

impl Gauges {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            last: Arc::default(),
            refreshing: Arc::default(),
        }
    }

    pub(super) async fn get(&self, db: &PgPool) -> Option<Snapshot> {
        let last = self.last.lock().expect("never poisoned").clone();
        match last {
            Some((at, s)) if at.elapsed() <= self.max_age => Some(s.aged(at)),
            Some((at, s)) if at.elapsed() <= self.max_age * 4 => {
                if !self.refreshing.swap(true, Ordering::AcqRel) {
                    let (me, db) = (self.clone(), db.clone());
                    tokio::spawn(async move {
                        me.read(&db).await;
                        me.refreshing.store(false, Ordering::Release);
                    });
                }
                Some(s.aged(at))
            }
            _ => self.read(db).await,
        }
    }

    async fn read(&self, db: &PgPool) -> Option<Snapshot> {
        match tokio::time::timeout(SNAPSHOT_TIMEOUT, Snapshot::read(db)).await {
            Ok(Ok(s)) => {
                *self.last.lock().expect("never poisoned") = Some((Instant::now(), s.clone()));
                Some(s)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics: database gauges unavailable");
                None
            }
            Err(_) => {
                tracing::warn!("metrics: database gauges timed out");
                None
            }
        }
    }
}

/// What the database says at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    /// Jobs by state, every state.
    pub(crate) jobs: [(JobState, i64); JobState::ALL.len()],
    /// Jobs a worker may claim now: pending and due, or running with a
    /// lapsed lease (the same rule as the claim).
    pub(crate) queue_depth: i64,
    /// How long the longest-waiting of those has been claimable.
    pub(crate) queue_oldest_secs: f64,
    /// Roster rows by status, every status.
    pub(crate) roster: [(RowStatus, i64); RowStatus::ALL.len()],
    /// Emails held by more than one live row.
    pub(crate) conflicts: i64,
    /// People whose roles an operator overrides.
    pub(crate) role_overrides: i64,
    /// How long ago these were read.
    pub(crate) age_secs: f64,
}

impl Snapshot {
    fn aged(mut self, read_at: Instant) -> Self {
        self.age_secs = read_at.elapsed().as_secs_f64();
        self
    }

    /// One statement: scalar counts that use the state and due indexes,
    /// and one pass over the roster.
    pub(crate) async fn read(db: &PgPool) -> Result<Self, sqlx::Error> {
        let r = sqlx::query!(
            r#"select
                   (select count(*) from provisioning_jobs where state = 'pending') as "pending!",
                   (select count(*) from provisioning_jobs where state = 'running') as "running!",
                   (select count(*) from provisioning_jobs where state = $1) as "done!",
                   (select count(*) from provisioning_jobs where state = $2) as "dead!",
                   due.n as "due!",
                   coalesce(extract(epoch from now() - due.since), 0)::float8 as "oldest!",
                   r.active as "active!",
                   r.disabled as "disabled!",
                   r.deleted as "deleted!",
                   (select count(*) from (
                        select 1 from roster
                        where status <> $5 and email is not null
                        group by email having count(*) > 1) c) as "conflicts!",
                   (select count(*) from role_overrides) as "role_overrides!"
               from (select d.n + e.n as n, least(d.since, e.since) as since
                     from (select count(*) as n, min(run_at) as since from provisioning_jobs
                           where state = 'pending' and run_at <= now()) d,
                          (select count(*) as n, min(lease_until) as since from provisioning_jobs
                           where state = 'running' and lease_until < now()) e) due,
                    (select count(*) filter (where status = $3) as active,
                            count(*) filter (where status = $4) as disabled,
                            count(*) filter (where status = $5) as deleted
                     from roster) r"#,
            JobState::Done.as_str(),
            JobState::Dead.as_str(),
            RowStatus::Active.as_str(),
            RowStatus::Disabled.as_str(),
            RowStatus::Deleted.as_str()
        )
        .fetch_one(db)
        .await?;
        Ok(Self {
            jobs: [
                (JobState::Pending, r.pending),
                (JobState::Running, r.running),
                (JobState::Done, r.done),
                (JobState::Dead, r.dead),
            ],
            queue_depth: r.due,
            queue_oldest_secs: r.oldest.max(0.0),
            roster: [
                (RowStatus::Active, r.active),
                (RowStatus::Disabled, r.disabled),
                (RowStatus::Deleted, r.deleted),
            ],
            conflicts: r.conflicts,
            role_overrides: r.role_overrides,
            age_secs: 0.0,
        })
    }
}

/// The database's gauges in the text format; without a snapshot only
/// `rosterd_database_up 0`, so a dashboard shows a gap, not stale numbers.
pub(crate) fn write_database(out: &mut String, snapshot: Option<&Snapshot>) {
    family(
        out,
        "rosterd_database_up",
        "1 when the database gauges below are from a reading at most 4 x METRICS_GAUGES_MAX_AGE_SECS old, else 0 (and they are left out)",
    );
    let _ = writeln!(out, "rosterd_database_up {}", u8::from(snapshot.is_some()));
    let Some(s) = snapshot else {
        return;
    };
    family(
        out,
        "rosterd_database_gauges_age_seconds",
        "How long ago the database gauges below were read (METRICS_GAUGES_MAX_AGE_SECS)",
    );
    let _ = writeln!(out, "rosterd_database_gauges_age_seconds {}", s.age_secs);
    family(out, "rosterd_jobs", "Provisioning jobs by state");
    for (state, n) in s.jobs {
        let _ = writeln!(out, "rosterd_jobs{{state=\"{}\"}} {n}", state.as_str());
    }
    family(
        out,
        "rosterd_queue_depth",
        "Provisioning jobs a worker may claim now (pending and due, or with a lapsed lease)",
    );
    let _ = writeln!(out, "rosterd_queue_depth {}", s.queue_depth);
    family(
        out,
        "rosterd_queue_oldest_seconds",
        "How long the longest-waiting claimable job has waited; 0 when none",
    );
    let _ = writeln!(out, "rosterd_queue_oldest_seconds {}", s.queue_oldest_secs);
    family(out, "rosterd_roster_rows", "Roster rows by status");
    for (status, n) in s.roster {
        let _ = writeln!(
            out,
            "rosterd_roster_rows{{status=\"{}\"}} {n}",
            status.as_str()
        );
    }
    family(
        out,
        "rosterd_roster_conflicts",
        "Emails held by more than one live roster row (the newest answers; no event is refused for it)",
    );
    let _ = writeln!(out, "rosterd_roster_conflicts {}", s.conflicts);
    family(
        out,
        "rosterd_role_overrides",
        "People whose roles an operator overrides (preserve, suppress or freeze)",
    );
    let _ = writeln!(out, "rosterd_role_overrides {}", s.role_overrides);
}

fn family(out: &mut String, name: &str, help: &str) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_gauges_render_as_text_format_families() {
        let s = Snapshot {
            jobs: [
                (JobState::Pending, 2),
                (JobState::Running, 1),
                (JobState::Done, 7),
                (JobState::Dead, 0),
            ],
            queue_depth: 1,
            queue_oldest_secs: 1.5,
            roster: [
                (RowStatus::Active, 5),
                (RowStatus::Disabled, 1),
                (RowStatus::Deleted, 2),
            ],
            conflicts: 1,
            role_overrides: 3,
            age_secs: 2.0,
        };
        let mut out = String::from("# TYPE other counter\nother 1\n");
        write_database(&mut out, Some(&s));
        let expected = "# TYPE other counter\nother 1\n\n\
            # HELP rosterd_database_up 1 when the database gauges below are from a reading at most 4 x METRICS_GAUGES_MAX_AGE_SECS old, else 0 (and they are left out)\n\
            # TYPE rosterd_database_up gauge\nrosterd_database_up 1\n\n";
        assert!(out.starts_with(expected), "{out}");
        for line in [
            "# TYPE rosterd_jobs gauge\n",
            "rosterd_jobs{state=\"pending\"} 2\n",
            "rosterd_jobs{state=\"dead\"} 0\n",
            "rosterd_queue_depth 1\n",
            "rosterd_queue_oldest_seconds 1.5\n",
            "rosterd_roster_rows{status=\"deleted\"} 2\n",
            "rosterd_roster_conflicts 1\n",
            "rosterd_role_overrides 3\n",
            "rosterd_database_gauges_age_seconds 2\n",
        ] {
            assert!(out.contains(line), "{line:?} in {out}");
        }
        // Every family is announced exactly once, before its samples.
        for name in [
            "rosterd_jobs",
            "rosterd_queue_depth",
            "rosterd_roster_rows",
            "rosterd_roster_conflicts",
        ] {
            assert_eq!(out.matches(&format!("# TYPE {name} gauge")).count(), 1);
            let type_at = out.find(&format!("# TYPE {name} ")).unwrap();
            let first_sample = out.find(&format!("\n{name}")).unwrap();
            assert!(type_at < first_sample, "{name}");
        }
    }

    #[test]
    fn without_a_snapshot_only_database_up_zero_is_written() {
        let mut out = String::new();
        write_database(&mut out, None);
        assert!(out.ends_with("rosterd_database_up 0\n"), "{out}");
        assert!(!out.contains("rosterd_jobs"), "{out}");
        assert!(!out.contains("rosterd_roster_conflicts"), "{out}");
    }
}
