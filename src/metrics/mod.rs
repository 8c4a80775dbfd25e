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

mod gauges;

pub(crate) use gauges::write_database;
pub use gauges::Gauges;

use crate::state::{Action, Source};
use ::metrics::{counter, describe_counter, describe_histogram, histogram, Unit};
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use std::sync::OnceLock;
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

#[cfg(test)]
mod tests {
    use super::*;

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
