//! Load generator for `GET /api/users/lookup` (run by `make bench`), and
//! with `--scim` for what an identity provider asks of the same data:
//! `GET /scim/v2/Users?filter=userName eq "p{i}@bench.example"` (each answer
//! must find exactly that person), and `--scim-list`, one full paged
//! listing (`count=100`) of every person, as a provider's import does.
//!
//! For each concurrency level C it sends R lookups of known people (emails
//! `p{i}@bench.example`, i drawn uniformly from 1..=N, all seeded beforehand
//! by scripts/bench.sh) over exactly C HTTP/1.1 connections (one
//! `reqwest::Client` per task, each task sending one request at a time),
//! after 10 unmeasured requests per connection. Every response is checked:
//! one that is not 200 with `"source":"roster"` is counted and reported, so
//! the figures never silently measure errors.
//!
//! This is a benchmark, not a test: it prints figures and asserts nothing.
//! It exits non-zero only when it cannot run at all (bad arguments, service
//! not reachable). Without `--bench` (as `cargo test` runs bench targets)
//! it exits at once.
//!
//! ```text
//! BENCH_LOOKUP_TOKEN=dev-login-token cargo bench --bench lookup -- \
//!     --url http://127.0.0.1:8080 --people 100000 --requests 20000 --concurrency 1,16,64
//! ```

use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod load;
use load::{append_summary, chain, print_errors, PhaseResult, TaskResult};

const LOOKUP_PATH: &str = "/api/users/lookup";
const SCIM_USERS_PATH: &str = "/scim/v2/Users";

#[derive(Parser, Debug)]
#[command(
    name = "lookup",
    about = "Load generator for the login lookup endpoint"
)]
struct Args {
    /// Base URL of a running `rosterd serve`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A bearer token from the service's LOGIN_API_TOKENS.
    #[arg(long, env = "BENCH_LOOKUP_TOKEN", hide_env_values = true)]
    token: String,
    /// People seeded as p1@bench.example ..= p{N}@bench.example.
    #[arg(long, default_value_t = 100_000)]
    people: u64,
    /// Measured requests per concurrency level.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Comma-separated concurrency levels (connections).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Unmeasured requests per connection before each level.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Also append one tab-separated line per level to this file:
    /// scenario, C, requests, req/s, p50 ms, p99 ms, max ms, errors.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Ask SCIM's `userName eq` filter instead of the lookup; the token is
    /// then one of SCIM_TOKENS.
    #[arg(long)]
    scim: bool,
    /// Page through every SCIM User (`count=100`) once and report the rate.
    #[arg(long)]
    scim_list: bool,
    /// Passed by `cargo bench`; without it the program exits at once.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    // `cargo test` runs harness-less bench targets without `--bench`.
    if !std::env::args().skip(1).any(|a| a == "--bench") {
        return ExitCode::SUCCESS;
    }
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lookup: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("lookup: {msg}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if args.people == 0 || args.requests == 0 || args.concurrency.contains(&0) {
        return Err("--people, --requests and every --concurrency level must be at least 1".into());
    }
    let base = args.url.trim_end_matches('/').to_owned();
    check_ready(&base).await?;
    let target = Arc::new(Target {
        url: if args.scim || args.scim_list {
            format!("{base}{SCIM_USERS_PATH}")
        } else {
            format!("{base}{LOOKUP_PATH}")
        },
        auth: format!("Bearer {}", args.token),
        people: args.people,
        scim: args.scim,
    });
    if args.scim_list {
        return list_all(&target).await;
    }
    let name = target.name();

    let mut summary = String::new();
    println!(
        "{name}: {} requests per level over {} known people; {} warm-up requests per connection",
        args.requests, args.people, args.warmup
    );
    for &c in &args.concurrency {
        let clients = (0..c).map(|_| client()).collect::<Result<Vec<_>, _>>()?;
        if args.warmup > 0 {
            let w = run_phase(&clients, &target, args.warmup * c, Some(args.warmup)).await;
            if w.errors > 0 {
                println!(
                    "{name}  C={c:<3} warm-up: {} of {} requests failed",
                    w.errors, w.count
                );
                print_errors(&w);
            }
        }
        let r = run_phase(&clients, &target, args.requests, None).await;
        report(&mut summary, name, c, &r);
    }
    append_summary(args.summary.as_deref(), &summary)
}

/// Where and how to ask.
struct Target {
    url: String,
    auth: String,
    people: u64,
    scim: bool,
}

impl Target {
    fn name(&self) -> &'static str {
        if self.scim {
            "scim-filter"
        } else {
            "lookup"
        }
    }
}

/// Pages through every SCIM User, 100 at a time, each page checked.
async fn list_all(target: &Target) -> Result<(), String> {
    let client = client()?;
    let started = Instant::now();
    let (mut start, mut seen, mut pages) = (1u64, 0u64, 0u64);
    let mut slowest = Duration::ZERO;
    loop {
        let asked = Instant::now();
        let page: serde_json::Value = client
            .get(&target.url)
            .query(&[("startIndex", start.to_string()), ("count", "100".into())])
            .header("authorization", &target.auth)
            .send()
            .await
            .map_err(|e| format!("page at {start}: {}", chain(&e)))?
            .json()
            .await
            .map_err(|e| format!("page at {start}: {e}"))?;
        slowest = slowest.max(asked.elapsed());
        let got = page["Resources"].as_array().map_or(0, Vec::len) as u64;
        let total = page["totalResults"].as_u64().unwrap_or(0);
        pages += 1;
        seen += got;
        if got == 0 || seen >= total {
            if seen != target.people || total != target.people {
                return Err(format!(
                    "listed {seen} of {total} users; expected {}",
                    target.people
                ));
            }
            break;
        }
        start += got;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "scim-list  {seen} users in {pages} pages of 100: {secs:.1} s, {:.0} users/s, {:.1} ms/page, slowest page {:.1} ms",
        seen as f64 / secs,
        secs * 1000.0 / pages as f64,
        slowest.as_secs_f64() * 1000.0
    );
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

/// Sends `total` lookups over `clients` (one task each) and checks every
/// answer. With `chunk`, every task sends exactly `chunk` requests (warm-up:
/// every connection gets used); otherwise tasks pull from a shared counter.
async fn run_phase(
    clients: &[reqwest::Client],
    target: &Arc<Target>,
    total: usize,
    chunk: Option<usize>,
) -> PhaseResult {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .map(|client| {
            let client = client.clone();
            let target = target.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut out = TaskResult::default();
                let mut rng = StdRng::from_entropy();
                let mut own = chunk.unwrap_or(0);
                loop {
                    if chunk.is_some() {
                        if own == 0 {
                            break;
                        }
                        own -= 1;
                    } else if next.fetch_add(1, Ordering::Relaxed) >= total {
                        break;
                    }
                    let i = rng.gen_range(1..=target.people);
                    send(&client, &target, i, &mut out).await;
                }
                out
            })
        })
        .collect();

    let mut seen = Vec::with_capacity(tasks.len());
    for task in tasks {
        seen.push(task.await.map_err(|e| e.to_string()));
    }
    PhaseResult::gather(total, started.elapsed(), seen)
}

/// One lookup, timed from just before sending to the last byte of the
/// response body; the answer is checked after the clock stops.
async fn send(client: &reqwest::Client, target: &Target, i: u64, out: &mut TaskResult) {
    let email = format!("p{i}@bench.example");
    if target.scim {
        let filter = format!("userName eq \"{email}\"");
        let request = client
            .get(&target.url)
            .query(&[("filter", filter.as_str())])
            .header("authorization", &target.auth);
        let Some(answer) = load::send_for_json(request, out).await else {
            return;
        };
        if answer
            .pointer("/Resources/0/userName")
            .and_then(|v| v.as_str())
            != Some(email.as_str())
            || answer["totalResults"] != 1
        {
            out.error("the filter did not find exactly that person".into());
        }
        return;
    }
    let request = client
        .get(&target.url)
        .query(&[("email", email.as_str())])
        .header("authorization", &target.auth);
    let Some(answer) = load::send_for_json(request, out).await else {
        return;
    };
    let source = answer.get("source").and_then(|v| v.as_str());
    if source != Some("roster") {
        out.error(format!("source {source:?}, expected \"roster\""));
    } else if answer.pointer("/user/email").and_then(|v| v.as_str()) != Some(email.as_str()) {
        out.error("the answer names another person".into());
    }
}

fn report(summary: &mut String, name: &str, c: usize, r: &PhaseResult) {
    let flag = if r.errors > 0 {
        format!("  ERRORS {} of {} (figures invalid)", r.errors, r.count)
    } else {
        String::new()
    };
    println!(
        "{name}  C={c:<3} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.1} ms  ({} requests in {:.1} s){flag}",
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
        "{name}\t{c}\t{}\t{:.1}\t{:.3}\t{:.3}\t{:.3}\t{}",
        r.count,
        r.rate(),
        r.percentile_ms(0.50),
        r.percentile_ms(0.99),
        r.max_ms(),
        r.errors
    );
}
