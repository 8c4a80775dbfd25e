//! Provisioning drain benchmark: N queued people provisioned through the
//! Supabase provider against the GoTrue stand-in answering after a fixed
//! latency, at several worker concurrencies. Prints jobs/s and the ratio to
//! the ideal (concurrency / latency). Needs DATABASE_URL (a server where it
//! may create databases); `make bench` provides one.

#[allow(dead_code)]
#[path = "../tests/api/gotrue.rs"]
mod gotrue;

use rosterd::provision::provider::supabase::SupabaseProvider;
use rosterd::provision::worker::{Worker, WorkerConfig};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

async fn fresh_db(url: &str, name: &str, connections: u32) -> PgPool {
    let admin = PgPool::connect(url).await.expect("DATABASE_URL reachable");
    sqlx::query(&format!("drop database if exists {name}"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    // The same connection settings as the service's worker pool.
    let opts = rosterd::db::worker_options(url.parse::<PgConnectOptions>().unwrap().database(name));
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect_with(opts)
        .await
        .unwrap();
    rosterd::db::MIGRATOR.run(&pool).await.unwrap();
    pool
}

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
    let levels: Vec<usize> = arg("--concurrency", "1,8,32")
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        println!(
            "provisioning drain: stand-in latency {} ms per request",
            latency.as_millis()
        );
        for c in levels {
            let n = if c == 1 { jobs_c1 } else { jobs };
            let db = fresh_db(&url, "rosterd_bench_provision", (c as u32 + 4).max(8)).await;
            seed(&db, n).await;
            let g = gotrue::GoTrue::start().await;
            g.set_latency(latency);
            let provider = SupabaseProvider::new(
                g.url(),
                gotrue::KEY.to_string().into(),
                Duration::from_secs(30),
            )
            .unwrap();
            let worker = Worker::new(
                db.clone(),
                Arc::new(provider),
                WorkerConfig {
                    concurrency: c,
                    ..WorkerConfig::default()
                },
            );
            let started = Instant::now();
            let report = worker.drain().await.unwrap();
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
            db.close().await;
        }
    });
}
