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
        let (mut millis, mut rows, mut errors) = (Vec::new(), 0usize, 0usize);
        for i in 0..args.requests + 5 {
            let mut url = format!("{}/api/admin/events?{query}", args.url);
            if let Some(c) = cursor.as_deref().filter(|_| args.walk) {
                url.push_str("&cursor=");
                url.extend(form_urlencoded::byte_serialize(c.as_bytes()));
            }
            let started = Instant::now();
            let page = fetch(&client, &url, &args.token).await;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            match page {
                Ok((n, next)) => {
                    cursor = next;
                    if i >= 5 {
                        millis.push(elapsed);
                        rows += n;
                    }
                }
                Err(e) => {
                    if errors == 0 {
                        eprintln!("listing: {name}: {e}");
                    }
                    errors += 1;
                }
            }
        }
        millis.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            let rank = ((p * millis.len() as f64).ceil() as usize).clamp(1, millis.len().max(1));
            millis.get(rank - 1).copied().unwrap_or(f64::NAN)
        };
        let per_page = rows as f64 / millis.len().max(1) as f64;
        println!(
            "listing {name:<12} {:>5} requests  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({per_page:.0} rows/page, {errors} errors)",
            millis.len(),
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
        let _ = writeln!(
            summary,
            "{name}\t{}\t{:.3}\t{:.3}\t{:.3}\t{per_page:.0}\t{errors}",
            millis.len(),
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
    }
    if let Some(path) = &args.summary {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_all(summary.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The page's row count and its `nextCursor`.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<(usize, Option<String>), String> {
    let res = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    let body: serde_json::Value = res.json().await.map_err(|e| e.to_string())?;
    let short = || body.to_string().chars().take(200).collect::<String>();
    if status != reqwest::StatusCode::OK {
        return Err(format!("{status}: {}", short()));
    }
    let items = body["events"]
        .as_array()
        .ok_or_else(|| format!("no events array in {}", short()))?;
    Ok((items.len(), body["nextCursor"].as_str().map(str::to_owned)))
}
