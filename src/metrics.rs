//! Prometheus metrics (docs/contract.md §9), served at `GET /metrics`.
//!
//! Two kinds live here. What the process does (events, signature failures,
//! request latency, provider and directory calls, jobs finished) is counted
//! where it happens, through the functions below, into one process-wide
//! `metrics` recorder. What the database holds (jobs by state, queue depth,
//! roster conflicts) is read at scrape time, so it is right whichever
//! replica did the work, and is left out of a scrape when the database does
//! not answer rather than shown stale.
//!
//! Labels only ever take values from small fixed sets (route templates,
//! status codes, outcome names): never an email, an id or a token.

use crate::state::{Action, JobState, RowStatus, Source};
use ::metrics::{counter, describe_counter, describe_histogram, histogram, Unit};
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub(crate) const EVENTS: &str = "rosterd_events_total";
pub(crate) const SIGNATURE_FAILURES: &str = "rosterd_signature_failures_total";
pub(crate) const HTTP_DURATION: &str = "rosterd_http_request_duration_seconds";
pub(crate) const LOOKUPS: &str = "rosterd_lookups_total";
pub(crate) const PROVIDER_CALLS: &str = "rosterd_provider_calls_total";
pub(crate) const PROVIDER_DURATION: &str = "rosterd_provider_call_duration_seconds";
pub(crate) const PROVISIONS: &str = "rosterd_provisions_total";
pub(crate) const JOBS_FINISHED: &str = "rosterd_jobs_finished_total";
pub(crate) const INVITATIONS: &str = "rosterd_invitations_total";
pub(crate) const DIRECTORY_CALLS: &str = "rosterd_directory_calls_total";
pub(crate) const DIRECTORY_DURATION: &str = "rosterd_directory_call_duration_seconds";
pub(crate) const DIRECTORY_RATE_LIMITED: &str = "rosterd_directory_rate_limited_total";

/// The Prometheus text format version scrapers expect.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// From a fast roster hit (sub-millisecond) to a provider or directory call
/// waiting out its timeout (10 s).
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Histogram samples pile up in memory until drained; scrapes drain them,
/// and this does when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// A scrape should answer within a scraper's timeout (10 s by default)
/// even when the database hangs.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(3);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder; later calls do nothing. Until it
/// runs, every count below is a no-op (as in the CLI commands, which have
/// no endpoint to show counts on).
pub(crate) fn install() {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
            .expect("the bucket list is not empty");
        match builder.install_recorder() {
            Ok(handle) => {
                describe();
                spawn_upkeep(handle.clone());
                Some(handle)
            }
            Err(e) => {
                // Only when something else installed a recorder first.
                tracing::warn!(error = %e, "metrics recorder not installed; /metrics shows database gauges only");
                None
            }
        }
    });
}

fn spawn_upkeep(handle: PrometheusHandle) {
    // A thread rather than a task: the recorder outlives any one runtime
    // (tests start many).
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread not started; scrapes still drain histograms");
    }
}

fn describe() {
    describe_counter!(
        EVENTS,
        "Events through the apply path, by type, outcome (applied, stale, duplicate, failed, conflict, error) and source"
    );
    describe_counter!(
        SIGNATURE_FAILURES,
        "Inbound requests refused for a missing, wrong or expired signature"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency until the response head, by method, route template and status"
    );
    describe_counter!(
        LOOKUPS,
        "Login lookups by outcome (roster, directory, inactive, not_found, directory_unavailable, provisioning_pending, error)"
    );
    describe_counter!(
        PROVIDER_CALLS,
        "Auth provider calls by action and result (ok, email_exists, id_exists, not_found, transient, permanent)"
    );
    describe_histogram!(
        PROVIDER_DURATION,
        Unit::Seconds,
        "Auth provider call latency by action"
    );
    describe_counter!(
        PROVISIONS,
        "People provisioned, by action (created, restored, decommissioned, updated, unchanged, failed)"
    );
    describe_counter!(
        JOBS_FINISHED,
        "Provisioning job attempts by result (done, retried, dead, discarded)"
    );
    describe_counter!(
        INVITATIONS,
        "Invitations by outcome (issued, sent, send_retry, send_refused, resent, revoked, accepted, rejected_link, expired)"
    );
    describe_counter!(
        DIRECTORY_CALLS,
        "Directory (Airtable) calls by operation and result (found, not_found, ok, unavailable, rejected)"
    );
    describe_histogram!(
        DIRECTORY_DURATION,
        Unit::Seconds,
        "Directory call latency by operation, including rate-limit waits"
    );
    describe_counter!(
        DIRECTORY_RATE_LIMITED,
        "429 answers from the directory (each pauses calls to it for 30 s)"
    );
    // Present from the start, so that rate() has a first sample.
    counter!(SIGNATURE_FAILURES).absolute(0);
}

/// One event through the apply path.
pub(crate) fn event(source: Source, event_type: &'static str, outcome: &'static str) {
    counter!(EVENTS, "type" => event_type, "outcome" => outcome, "source" => source.as_str())
        .increment(1);
}

pub(crate) fn signature_failure() {
    counter!(SIGNATURE_FAILURES).increment(1);
}

pub(crate) fn lookup(outcome: &'static str) {
    counter!(LOOKUPS, "outcome" => outcome).increment(1);
}

pub(crate) fn provider_call(action: &'static str, result: &'static str, took: Duration) {
    counter!(PROVIDER_CALLS, "action" => action, "result" => result).increment(1);
    histogram!(PROVIDER_DURATION, "action" => action).record(took.as_secs_f64());
}

/// One person provisioned; `None` when it failed.
pub(crate) fn provisioned(action: Option<Action>) {
    counter!(PROVISIONS, "action" => action.map_or("failed", Action::as_str)).increment(1);
}

/// One thing that happened to an invitation.
pub(crate) fn invitation(outcome: &'static str) {
    counter!(INVITATIONS, "outcome" => outcome).increment(1);
}

pub(crate) fn job_finished(result: &'static str) {
    counter!(JOBS_FINISHED, "result" => result).increment(1);
}

pub(crate) fn directory_call(operation: &'static str, result: &'static str, took: Duration) {
    counter!(DIRECTORY_CALLS, "operation" => operation, "result" => result).increment(1);
    histogram!(DIRECTORY_DURATION, "operation" => operation).record(took.as_secs_f64());
}

pub(crate) fn directory_rate_limited() {
    counter!(DIRECTORY_RATE_LIMITED).increment(1);
}

/// Middleware: times every request by its route template, so the series
/// stay bounded whatever paths clients try.
pub(crate) async fn track_requests(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    let route = route.map_or_else(|| "unmatched".to_owned(), |r| r.as_str().to_owned());
    histogram!(
        HTTP_DURATION,
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// Extension methods are any token a client likes; they share one series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The scrape: the process's counters, then the database's gauges.
pub(crate) async fn render(db: &PgPool, gauges: &Gauges) -> String {
    let mut out = HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    write_database(&mut out, gauges.get(db).await.as_ref());
    out
}

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

    async fn get(&self, db: &PgPool) -> Option<Snapshot> {
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
                        group by email having count(*) > 1) c) as "conflicts!"
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

    #[test]
    fn extension_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(
            method_label(&Method::from_bytes(b"PURGE").unwrap()),
            "other"
        );
        assert_eq!(
            method_label(&Method::from_bytes(b"X-EVT-123").unwrap()),
            "other"
        );
    }
}
