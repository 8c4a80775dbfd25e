//! Provisioning drain benchmark. Two parts, both printing jobs/s:
//!
//! - `drain`: N queued people drained whole through the Supabase provider
//!   against the GoTrue stand-in answering after a fixed latency, at several
//!   worker concurrencies, with the ratio to the ideal (concurrency /
//!   latency);
//! - `queue`: the rate of the first `--measure` jobs with 10k, 100k and 1M
//!   people queued, through the local provider and through the stand-in: a
//!   queue whose speed does not depend on its length shows the same rate on
//!   every line.
//!
//! Needs DATABASE_URL (a server where it may create databases); `make
//! bench` provides one.

mod drain;

#[allow(dead_code)]
#[path = "../tests/api/gotrue.rs"]
mod gotrue;

use drain::{arg, fresh_db};
use rosterd::config::WorkerConfig;
use rosterd::provision::provider::local::LocalProvider;
use rosterd::provision::provider::supabase::SupabaseProvider;
use rosterd::provision::provider::{AuthProvider, Profile};
use rosterd::provision::worker::Worker;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn seed(db: &PgPool, n: i64) {
    sqlx::raw_sql(&format!(
        "insert into roster (id, email, name, profile_status, roles, profile_at, profile_event_id,
                             last_at, last_event_id)
         select 'rec' || i, 'p' || i || '@bench.io', 'Person ' || i, 'active', '{{reader}}',
                now(), 'e' || i, now(), 'e' || i
         from generate_series(1, {n}) i;
         insert into provisioning_jobs (email) select 'p' || i || '@bench.io' from generate_series(1, {n}) i;"
    ))
    .execute(db)
    .await
    .unwrap();
}

/// Where the machine's CPU goes during a drain: this process (the worker
/// and the GoTrue stand-in) and everything else (PostgreSQL, mostly), read
/// from /proc. At C=32 the machine is saturated, so this, not the stand-in's
/// latency, bounds the rate.
struct CpuMark {
    at: Instant,
    machine: f64,
    this: f64,
}

impl CpuMark {
    fn now() -> Self {
        let ticks = 100.0; // USER_HZ on Linux
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let machine = stat
            .lines()
            .next()
            .map(|l| {
                let f: Vec<f64> = l
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                // user, nice, system, irq, softirq, steal
                [0, 1, 2, 5, 6, 7]
                    .iter()
                    .filter_map(|&i| f.get(i))
                    .sum::<f64>()
                    / ticks
            })
            .unwrap_or(0.0);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let this = own
            .rsplit_once(") ")
            .map(|(_, rest)| {
                let f: Vec<f64> = rest
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                // utime, stime (fields 14 and 15; 12 and 13 after the name)
                (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / ticks
            })
            .unwrap_or(0.0);
        Self {
            at: Instant::now(),
            machine,
            this,
        }
    }

    /// "machine N% of M00%: this process N% (ms per job), rest N% (ms per job)".
    fn report(&self, jobs: usize) -> String {
        let end = Self::now();
        let wall = end.at.duration_since(self.at).as_secs_f64();
        let machine = end.machine - self.machine;
        let this = end.this - self.this;
        let rest = (machine - this).max(0.0);
        let per_job = |cpu: f64| cpu * 1000.0 / jobs.max(1) as f64;
        format!(
            "cpu: machine {:.0}% of {}00%; worker and stand-in {:.0}% ({:.2} ms/job); PostgreSQL and the rest {:.0}% ({:.2} ms/job)",
            100.0 * machine / wall,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            100.0 * this / wall,
            per_job(this),
            100.0 * rest / wall,
            per_job(rest)
        )
    }
}

fn levels(name: &str, default: &str) -> Vec<usize> {
    arg(name, default)
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect()
}

fn stand_in_provider(g: &gotrue::GoTrue) -> Arc<dyn AuthProvider> {
    Arc::new(
        SupabaseProvider::new(
            g.url(),
            gotrue::KEY.to_string().into(),
            Duration::from_secs(30),
        )
        .unwrap(),
    )
}

fn worker(db: &PgPool, provider: Arc<dyn AuthProvider>, c: usize) -> Worker {
    Worker::new(
        db.clone(),
        provider,
        WorkerConfig {
            concurrency: c,
            ..WorkerConfig::default()
        },
    )
}

/// The provider path alone: `n` creates against the stand-in, `c` at a
/// time, no database. On a machine as small as the benchmark's, the
/// stand-in, the HTTP client and their scheduling already cost part of
/// the ideal; this is the most a drain could reach here.
async fn provider_only(g: &gotrue::GoTrue, c: usize, n: usize) -> f64 {
    let provider = stand_in_provider(g);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..c {
        let (provider, next) = (provider.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let profile = Profile {
                    email: format!("alone{i}@bench.io"),
                    name: None,
                    roles: vec!["reader".into()],
                    roster_id: format!("alone{i}"),
                };
                provider
                    .create_user(uuid::Uuid::new_v4(), &profile)
                    .await
                    .expect("the stand-in creates");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    n as f64 / started.elapsed().as_secs_f64()
}

/// Runs the worker as `serve` does until `measure` jobs are done; jobs/s.
async fn rate_of_first(worker: Worker, db: &PgPool, measure: i64) -> f64 {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    loop {
        let done: i64 =
            sqlx::query_scalar("select count(*) from provisioning_jobs where state = 'done'")
                .fetch_one(db)
                .await
                .unwrap();
        if done >= measure {
            let secs = started.elapsed().as_secs_f64();
            shutdown.cancel();
            running.await.unwrap();
            return done as f64 / secs;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --benches` runs bench targets without `--bench`: nothing to do.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL must be set (make bench sets it)");
    let jobs: i64 = arg("--jobs", "10000").parse().unwrap();
    let jobs_c1: i64 = arg("--jobs-at-1", "1000").parse().unwrap();
    let latency = Duration::from_millis(arg("--latency-ms", "10").parse().unwrap());
    let drain_levels = levels("--concurrency", "1,8,32");
    let queued = levels("--queued", "10000,100000,1000000");
    let measure: i64 = arg("--measure", "5000").parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        println!(
            "provisioning drain: stand-in latency {} ms per request",
            latency.as_millis()
        );
        for c in drain_levels {
            let n = if c == 1 { jobs_c1 } else { jobs };
            let db = fresh_db(&url, "rosterd_bench_provision", (c as u32 + 4).max(8)).await;
            seed(&db, n).await;
            let g = gotrue::GoTrue::start().await;
            g.set_latency(latency);
            let started = Instant::now();
            let cpu = CpuMark::now();
            let report = worker(&db, stand_in_provider(&g), c).drain().await.unwrap();
            let cpu = cpu.report(report.done);
            let secs = started.elapsed().as_secs_f64();
            let rate = report.done as f64 / secs;
            let ideal = c as f64 / latency.as_secs_f64();
            let calls = g.total_requests();
            println!(
                "drain  C={c:<3} jobs={n:<6} {rate:>8.1} jobs/s  ideal {ideal:>7.1}  ratio {:.2}  \
                 ({} done, {} retried, {} dead, {:.2} provider calls/job, {secs:.1} s)",
                rate / ideal,
                report.done,
                report.retried,
                report.dead,
                calls as f64 / n as f64
            );
            println!("       {cpu}");
            let alone = provider_only(&g, c, n as usize).await;
            println!(
                "       provider calls alone (no database), C={c}: {alone:.1} calls/s, ratio {:.2}; the drain reaches {:.2} of that",
                alone / ideal,
                rate / alone
            );
            db.close().await;
        }
        println!("queue length: the first {measure} jobs with N people queued");
        for &n in &queued {
            let db = fresh_db(&url, "rosterd_bench_provision", 40).await;
            let seeding = Instant::now();
            seed(&db, n as i64).await;
            sqlx::query("analyze").execute(&db).await.unwrap();
            let seeded = seeding.elapsed().as_secs_f64();
            // The local provider keeps its accounts in the same database,
            // through a pool of its own, as `serve` does.
            let local_pool = PgPoolOptions::new()
                .max_connections(8)
                .connect_with(db.connect_options().as_ref().clone())
                .await
                .unwrap();
            let local: Arc<dyn AuthProvider> = Arc::new(LocalProvider::new(local_pool.clone()));
            let rate = rate_of_first(worker(&db, local, 8), &db, measure).await;
            println!("queue  local    C=8  queued={n:<8} {rate:>8.1} jobs/s  (seeded in {seeded:.1} s)");
            sqlx::query("update provisioning_jobs set state = 'pending' where state = 'done'")
                .execute(&db)
                .await
                .unwrap();
            sqlx::query("truncate auth_accounts").execute(&db).await.unwrap();
            sqlx::query("update roster set auth_user_id = null").execute(&db).await.unwrap();
            let g = gotrue::GoTrue::start().await;
            g.set_latency(latency);
            let rate = rate_of_first(worker(&db, stand_in_provider(&g), 32), &db, measure).await;
            let ideal = 32.0 / latency.as_secs_f64();
            println!(
                "queue  stand-in C=32 queued={n:<8} {rate:>8.1} jobs/s  ideal {ideal:.0}  ratio {:.2}",
                rate / ideal
            );
            local_pool.close().await;
            db.close().await;
        }
    });
}
