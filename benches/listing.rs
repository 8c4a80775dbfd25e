//! Latency of the admin event listing, `GET /api/admin/events` (run by
//! `make bench` on a table of millions of stored events).
//!
//! For each `--query NAME=QUERYSTRING` it sends `--requests` listings one
//! at a time over one connection, after 5 unmeasured ones. With `--walk`,
//! each request asks for the page after the previous one (its
//! `nextCursor`), so the figures cover pages deep into the table, not only
//! the first. Every response must be 200 with an `events` array; others are
//! counted and reported, so the figures never silently measure errors.
//! Prints one line per query (p50, p99, max) and, with `--summary`, appends
//! them as tab-separated lines: name, requests, p50 ms, p99 ms, max ms,
//! rows per page (mean), errors.
//!
//! A benchmark, not a test: it asserts nothing. Without `--bench` (as
//! `cargo test` runs bench targets) it exits at once.

use clap::Parser;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

mod load;
use load::{append_summary, print_errors, send_for_json, PhaseResult, TaskResult};

/// Unmeasured requests before each query's.
const WARMUP: usize = 5;

#[derive(Parser, Debug)]
#[command(name = "listing", about = "Latency of the admin event listing")]
struct Args {
    /// Base URL of a running `rosterd serve`.
    #[arg(long)]
    url: String,
    /// An admin bearer token (a value of the service's ADMIN_TOKENS).
    #[arg(long, env = "BENCH_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// NAME=QUERYSTRING, e.g. `failed=status=failed&limit=50`; repeatable.
    #[arg(long = "query", required = true)]
    queries: Vec<String>,
    /// Measured requests per query.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Follow `nextCursor` from one request to the next.
    #[arg(long)]
    walk: bool,
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Passed by `cargo bench`; without it the program exits at once.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    if !std::env::args().skip(1).any(|a| a == "--bench") {
        return ExitCode::SUCCESS;
    }
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("listing: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .map_err(|e| e.to_string())?;
    let mut summary = String::new();
    for q in &args.queries {
        let (name, query) = q
            .split_once('=')
            .ok_or_else(|| format!("--query {q}: expected NAME=QUERYSTRING"))?;
        let mut cursor: Option<String> = None;
        let (mut out, mut rows, mut started) = (TaskResult::default(), 0usize, Instant::now());
        for i in 0..args.requests + WARMUP {
            if i == WARMUP {
                (out, rows, started) = (TaskResult::default(), 0, Instant::now());
            }
            let mut url = format!("{}/api/admin/events?{query}", args.url);
            if let Some(c) = cursor.as_deref().filter(|_| args.walk) {
                url.push_str("&cursor=");
                url.extend(form_urlencoded::byte_serialize(c.as_bytes()));
            }
            let request = client.get(&url).bearer_auth(&args.token);
            let Some(page) = send_for_json(request, &mut out).await else {
                continue;
            };
            match page["events"].as_array() {
                Some(events) => {
                    rows += events.len();
                    cursor = page["nextCursor"].as_str().map(str::to_owned);
                }
                None => out.error("200 without an `events` array".into()),
            }
        }
        let r = PhaseResult::gather(out.latencies.len(), started.elapsed(), [Ok(out)]);
        let per_page = rows as f64 / r.count.max(1) as f64;
        println!(
            "listing {name:<12} {:>5} requests  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({:.0} req/s, {per_page:.0} rows/page, {} errors)",
            r.count,
            r.percentile_ms(0.5),
            r.percentile_ms(0.99),
            r.max_ms(),
            r.rate(),
            r.errors
        );
        print_errors(&r);
        let _ = writeln!(
            summary,
            "{name}\t{}\t{:.3}\t{:.3}\t{:.3}\t{per_page:.0}\t{}",
            r.count,
            r.percentile_ms(0.5),
            r.percentile_ms(0.99),
            r.max_ms(),
            r.errors
        );
    }
    append_summary(args.summary.as_deref(), &summary)
}
