//! Load generator for `POST /api/sync/users/inbound` (run by `make bench`).
//!
//! For each concurrency level C it posts N unique signed `user.created`
//! events over exactly C HTTP/1.1 connections (one `reqwest::Client` per
//! task, each task sending one request at a time), then replays the same N
//! events to measure the duplicate path. Every response is checked: a
//! request that does not answer 200 with the expected outcome is counted
//! and reported, so the figures never silently measure errors.
//!
//! This is a benchmark, not a test: it prints figures and asserts nothing.
//! It exits non-zero only when it cannot run at all (bad arguments, service
//! not reachable).
//!
//! ```text
//! cargo bench --bench ingest -- --url http://127.0.0.1:8080 \
//!     --secret dev-secret-0123456789abcdef --events 4000 --concurrency 1,4,16
//! ```

use clap::Parser;
use rosterd::signature::Key;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod load;
use load::{append_summary, chain, print_errors, PhaseResult, TaskResult};

const INBOUND_PATH: &str = "/api/sync/users/inbound";

#[derive(Parser, Debug)]
#[command(
    name = "ingest",
    about = "Load generator for the signed-event ingest endpoint"
)]
struct Args {
    /// Base URL of a running `rosterd serve`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The service's signing secret (its first key, as in AIRTABLE_USER_SYNC_SECRET).
    #[arg(long, env = "AIRTABLE_USER_SYNC_SECRET", hide_env_values = true)]
    secret: String,
    /// Unique events posted per concurrency level (then replayed as duplicates).
    #[arg(long, default_value_t = 4000)]
    events: usize,
    /// Comma-separated concurrency levels (connections).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    concurrency: Vec<usize>,
    /// Prefix of every event and record id, so runs against the same
    /// database never collide (A-Z a-z 0-9 _ -).
    #[arg(long, default_value = "bench")]
    seed_prefix: String,
    /// Unmeasured requests per connection before each level (opens the
    /// HTTP and database connections).
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Skip the duplicate-path replay.
    #[arg(long)]
    no_duplicates: bool,
    /// Also write one tab-separated line per measurement to this file:
    /// scenario, C, path, events, ev/s, p50 ms, p99 ms, max ms, errors.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One pre-built request.
struct Signed {
    event_id: String,
    body: Vec<u8>,
    signature: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ingest: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("ingest: {msg}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let key = Key::parse(&args.secret).map_err(|e| format!("--secret: {e}"))?;
    if args.seed_prefix.is_empty()
        || !args
            .seed_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        return Err("--seed-prefix must be non-empty A-Z a-z 0-9 _ -".into());
    }
    if args.events == 0 || args.concurrency.contains(&0) {
        return Err("--events and every --concurrency level must be at least 1".into());
    }
    let base = args.url.trim_end_matches('/').to_owned();
    check_ready(&base).await?;
    let url: Arc<str> = format!("{base}{INBOUND_PATH}").into();

    let mut summary = String::new();
    println!(
        "ingest: {} unique events per level, then the same events again (duplicates); {} warm-up requests per connection",
        args.events, args.warmup
    );
    for &c in &args.concurrency {
        let clients = (0..c).map(|_| client()).collect::<Result<Vec<_>, _>>()?;
        let tag = format!("{}_c{c}", args.seed_prefix);

        let warmup = Arc::new(make_events(&key, &format!("{tag}_w"), args.warmup * c));
        if !warmup.is_empty() {
            let w = run_phase(&clients, &url, warmup, "applied", Some(args.warmup)).await;
            if w.errors > 0 {
                println!(
                    "ingest  C={c:<3} warm-up: {} of {} requests failed",
                    w.errors, w.count
                );
                print_errors(&w);
            }
        }

        let events = Arc::new(make_events(&key, &tag, args.events));
        let unique = run_phase(&clients, &url, events.clone(), "applied", None).await;
        report(&mut summary, c, "unique", &unique);
        if !args.no_duplicates {
            let dup = run_phase(&clients, &url, events, "duplicate", None).await;
            report(&mut summary, c, "duplicate", &dup);
        }
    }
    append_summary(args.summary.as_deref(), &summary)?;
    Ok(())
}

async fn check_ready(base: &str) -> Result<(), String> {
    let url = format!("{base}/readyz");
    let res = client()?
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {}", chain(&e)))?;
    if res.status() != reqwest::StatusCode::OK {
        return Err(format!(
            "{url} answered {} (service not ready)",
            res.status()
        ));
    }
    Ok(())
}

/// One client per task, so C tasks hold exactly C keep-alive connections.
fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// `n` signed `user.created` events, each with its own event id, record id
/// and email, so every one is applied (never stale) and queues its own job.
fn make_events(key: &Key, tag: &str, n: usize) -> Vec<Signed> {
    (0..n)
        .map(|i| {
            let event_id = format!("evt_{tag}_{i}");
            let body = json!({
                "eventId": event_id,
                "eventType": "user.created",
                "occurredAt": "2026-11-22T10:00:00Z",
                "user": {
                    "id": format!("rec_{tag}_{i}"),
                    "email": format!("{}-{i}@bench.example", tag.to_ascii_lowercase()),
                    "name": "Bench User",
                    "status": "active",
                    "groups": ["engineering"],
                },
            });
            let body = serde_json::to_vec(&body).expect("a Value always serialises");
            let signature = key.sign_plain(&body);
            Signed {
                event_id,
                body,
                signature,
            }
        })
        .collect()
}

/// Sends `events` over `clients` (one task each) and checks every answer.
/// With `chunk`, task i sends exactly events[i*chunk..(i+1)*chunk] (warm-up:
/// every connection gets used); otherwise tasks pull from a shared queue.
async fn run_phase(
    clients: &[reqwest::Client],
    url: &Arc<str>,
    events: Arc<Vec<Signed>>,
    expect: &'static str,
    chunk: Option<usize>,
) -> PhaseResult {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(task, client)| {
            let client = client.clone();
            let url = url.clone();
            let events = events.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut out = TaskResult::default();
                let mut own = chunk.map(|k| task * k..(task + 1) * k);
                loop {
                    let i = match &mut own {
                        Some(range) => match range.next() {
                            Some(i) => i,
                            None => break,
                        },
                        None => next.fetch_add(1, Ordering::Relaxed),
                    };
                    let Some(event) = events.get(i) else { break };
                    send(&client, &url, event, expect, &mut out).await;
                }
                out
            })
        })
        .collect();

    let mut seen = Vec::with_capacity(tasks.len());
    for task in tasks {
        seen.push(task.await.map_err(|e| e.to_string()));
    }
    PhaseResult::gather(events.len(), started.elapsed(), seen)
}

/// One request, timed from just before sending to the last byte of the
/// response body; the answer is checked after the clock stops.
async fn send(
    client: &reqwest::Client,
    url: &str,
    event: &Signed,
    expect: &str,
    out: &mut TaskResult,
) {
    let body = event.body.clone();
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-signature", &event.signature)
        .body(body);
    let Some(answer) = load::send_for_json(request, out).await else {
        return;
    };
    let outcome = answer.get("outcome").and_then(|v| v.as_str());
    if outcome != Some(expect) {
        out.error(format!("outcome {outcome:?}, expected {expect:?}"));
    } else if answer.get("eventId").and_then(|v| v.as_str()) != Some(event.event_id.as_str()) {
        out.error("the answer names another eventId".into());
    }
}

fn report(summary: &mut String, c: usize, path: &str, r: &PhaseResult) {
    let flag = if r.errors > 0 {
        format!("  ERRORS {} of {} (figures invalid)", r.errors, r.count)
    } else {
        String::new()
    };
    println!(
        "ingest  C={c:<3} {path:<10} {:>8.0} ev/s  p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms  ({} events in {:.1} s){flag}",
        r.rate(),
        r.percentile_ms(0.50),
        r.percentile_ms(0.99),
        r.max_ms(),
        r.count,
        r.elapsed.as_secs_f64(),
    );
    print_errors(r);
    let _ = writeln!(
        summary,
        "ingest\t{c}\t{path}\t{}\t{:.1}\t{:.3}\t{:.3}\t{:.3}\t{}",
        r.count,
        r.rate(),
        r.percentile_ms(0.50),
        r.percentile_ms(0.99),
        r.max_ms(),
        r.errors
    );
}
