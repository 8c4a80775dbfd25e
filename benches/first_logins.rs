//! Launch day (run by `make bench`, section `first_logins`): people who are
//! in the roster but were never provisioned all log in, so every lookup
//! provisions inline.
//!
//! For each provider (the local one, and the GoTrue stand-in answering after
//! `--latency-ms`) it loads a fresh database with `--logins` people per
//! level, starts the real `rosterd serve` (release build, worker on, default
//! pool), and for each level C keeps C clients busy, each over a
//! connection of its own, logging in the next person not yet logged in. A
//! client does what the README asks of the login service: on a 503 it waits
//! `Retry-After` seconds and asks again. Printed per level: people
//! provisioned per second (wall time until the last is in), per-answer
//! latency p50 / p99 / max, and the share of answers that were 503.
//!
//! This is a benchmark, not a test: it prints figures and asserts nothing.
//! Without `--bench` (as `cargo test` runs bench targets) it exits at once.
//!
//! ```text
//! cargo bench --bench first_logins -- --rosterd target/release/rosterd \
//!     --cluster-url postgres://rosterd@127.0.0.1:5432 --levels 16,200,2000
//! ```

#[path = "../tests/api/gotrue.rs"]
#[allow(dead_code)]
mod gotrue;

use sqlx::PgPool;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-login-token-0123456789";

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn fresh_db(cluster: &str, name: &str, people: usize) -> PgPool {
    let admin = PgPool::connect(&format!("{cluster}/postgres"))
        .await
        .expect("--cluster-url reachable");
    for sql in [
        format!("drop database if exists {name}"),
        format!("create database {name}"),
    ] {
        sqlx::query(&sql).execute(&admin).await.unwrap();
    }
    admin.close().await;
    let db = PgPool::connect(&format!("{cluster}/{name}")).await.unwrap();
    rosterd::db::MIGRATOR.run(&db).await.unwrap();
    // Active people with no auth user and no job: as after a `push` whose
    // jobs the worker has not reached yet.
    sqlx::query(
        "insert into roster (id, email, name, profile_status, roles, profile_at, profile_event_id,
                             last_at, last_event_id)
         select 'rec' || i, 'p' || i || '@bench.io', 'Person ' || i, 'active', '{reader}',
                now(), 'e' || i, now(), 'e' || i
         from generate_series(1, $1) i",
    )
    .bind(people as i64)
    .execute(&db)
    .await
    .unwrap();
    sqlx::query("analyze").execute(&db).await.unwrap();
    db
}

async fn serve(rosterd: &str, db_url: &str, provider: &[(&str, String)]) -> (Service, String) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(rosterd)
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", db_url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("USER_WEBHOOK_SYNC_ENABLED", "false")
        .env("LOGIN_API_TOKENS", TOKEN)
        .env("RUST_LOG", "warn")
        .envs(provider.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .spawn()
        .expect("--rosterd runs");
    let service = Service(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return (service, base);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("rosterd did not become ready");
}

#[derive(Default)]
struct Seen {
    answers: Vec<Duration>,
    shed: usize,
    errors: usize,
}

/// Logs people `first..first + n` in, `c` clients at a time.
async fn level(base: &str, c: usize, first: usize, n: usize) -> (Duration, Seen) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..c {
        let (next, base) = (next.clone(), base.to_owned());
        tasks.spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            let mut seen = Seen::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return seen;
                }
                let email = format!("p{}@bench.io", first + i + 1);
                loop {
                    let sent = Instant::now();
                    let r = client
                        .get(format!("{base}/api/users/lookup"))
                        .query(&[("email", &email)])
                        .bearer_auth(TOKEN)
                        .send()
                        .await;
                    seen.answers.push(sent.elapsed());
                    match r {
                        Ok(r) if r.status() == 200 => break,
                        Ok(r) if r.status() == 503 => {
                            seen.shed += 1;
                            let after = r
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(1);
                            tokio::time::sleep(Duration::from_secs(after)).await;
                        }
                        _ => {
                            seen.errors += 1;
                            break;
                        }
                    }
                }
            }
        });
    }
    let mut all = Seen::default();
    while let Some(t) = tasks.join_next().await {
        let t = t.unwrap();
        all.answers.extend(t.answers);
        all.shed += t.shed;
        all.errors += t.errors;
    }
    let took = started.elapsed();
    all.answers.sort();
    (took, all)
}

fn ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rosterd = arg("--rosterd", "target/release/rosterd");
    let cluster = arg("--cluster-url", "postgres://rosterd@127.0.0.1:5432");
    let levels: Vec<usize> = arg("--levels", "16,200,2000")
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect();
    let logins: usize = arg("--logins", "4000").parse().unwrap();
    let latency = Duration::from_millis(arg("--latency-ms", "10").parse().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for provider in ["local", "stand-in"] {
            let name = format!("rosterd_bench_first_logins_{}", provider.replace('-', "_"));
            let per_level = levels.iter().map(|&c| logins.max(c)).collect::<Vec<_>>();
            let db = fresh_db(&cluster, &name, per_level.iter().sum()).await;
            let g = gotrue::GoTrue::start().await;
            g.set_latency(latency);
            let vars = match provider {
                "local" => vec![("AUTH_PROVIDER", "local".to_string())],
                _ => vec![
                    ("AUTH_PROVIDER", "supabase".to_string()),
                    ("SUPABASE_URL", g.url().to_string()),
                    ("SUPABASE_SERVICE_ROLE_KEY", gotrue::KEY.to_string()),
                ],
            };
            let (service, base) = serve(&rosterd, &format!("{cluster}/{name}"), &vars).await;
            let mut first = 0;
            for (&c, &n) in levels.iter().zip(&per_level) {
                let (took, seen) = level(&base, c, first, n).await;
                first += n;
                let answers = seen.answers.len();
                println!(
                    "first  {provider:<8} C={c:<5} logins={n:<5} {:>7.1} provisioned/s  \
                     p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  503 share {:>5.1}% ({} of {answers}){}",
                    n as f64 / took.as_secs_f64(),
                    ms(&seen.answers, 0.50),
                    ms(&seen.answers, 0.99),
                    ms(&seen.answers, 1.0),
                    100.0 * seen.shed as f64 / answers as f64,
                    seen.shed,
                    if seen.errors > 0 {
                        format!("  INVALID: {} errors", seen.errors)
                    } else {
                        String::new()
                    },
                );
            }
            drop(service);
            db.close().await;
            let admin = PgPool::connect(&format!("{cluster}/postgres")).await.unwrap();
            sqlx::query(&format!("drop database {name}"))
                .execute(&admin)
                .await
                .unwrap();
        }
    });
}
