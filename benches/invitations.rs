//! Invitation mail rate: N invitations queued (as provisioning queues
//! them), drained by the worker at concurrency C through a real SMTP
//! server (tests/smtp/smtpd.py, aiosmtpd) on loopback. Prints mails/s.
//!
//!   DATABASE_URL=… ROSTERD_SMTPD_PYTHON=python3-with-aiosmtpd \
//!     target/release/deps/invitations-… --bench [--mails 2000] [--concurrency 1,8,32]

mod drain;

use drain::{arg, fresh_db};
use rosterd::config::WorkerConfig;
use rosterd::invite::deliver::Delivery;
use rosterd::invite::mail::{Letter, Mailer};
use rosterd::provision::provider::local::LocalProvider;
use rosterd::provision::worker::Worker;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `n` active people, each with an auth user and an unsent invitation
/// whose mail job is queued.
async fn seed(db: &PgPool, n: i64) {
    sqlx::raw_sql(&format!(
        "insert into roster (id, email, name, profile_status, roles, profile_at, profile_event_id,
                             last_at, last_event_id, auth_user_id)
         select 'rec' || i, 'p' || i || '@bench.io', 'Person ' || i, 'active', '{{reader}}',
                now(), 'e' || i, now(), 'e' || i, md5(i::text)::uuid
         from generate_series(1, {n}) i;
         insert into invitations (user_id, email, expires_at)
         select md5(i::text)::uuid, 'p' || i || '@bench.io', now() + interval '7 days'
         from generate_series(1, {n}) i;
         insert into provisioning_jobs (kind, invitation_id, email)
         select 'invite', id, email from invitations;"
    ))
    .execute(db)
    .await
    .unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL must be set (make bench sets it)");
    let python =
        std::env::var("ROSTERD_SMTPD_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let mails: i64 = arg("--mails", "2000").parse().unwrap();
    let levels: Vec<usize> = arg("--concurrency", "1,8,32")
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("rosterd-bench-smtp-{}", std::process::id()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/smtpd.py");
        let mut smtpd = tokio::process::Command::new(&python)
            .arg(script)
            .arg(port.to_string())
            .arg(&dir)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with aiosmtpd (ROSTERD_SMTPD_PYTHON)");
        {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(smtpd.stdout.take().unwrap()).lines();
            assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));
        }
        println!("invitation mail: {mails} queued invitations per level, SMTP on loopback (aiosmtpd)");
        for c in levels {
            let db = fresh_db(&url, "rosterd_bench_invitations", c as u32 + 4).await;
            seed(&db, mails).await;
            let mailer = Mailer::new(
                &format!("smtp://127.0.0.1:{port}").into(),
                Duration::from_secs(30),
                Letter {
                    from: "accounts@bench.io".parse().unwrap(),
                    product: "Bench".into(),
                },
            )
            .unwrap();
            let worker = Worker::new(
                db.clone(),
                Arc::new(LocalProvider::new(db.clone())),
                WorkerConfig {
                    concurrency: c,
                    ..WorkerConfig::default()
                },
            )
            .inviting(
                Some(rosterd::invite::Policy {
                    ttl: Duration::from_secs(7 * 86_400),
                    mail: true,
                }),
                Some(Delivery {
                    mailer,
                    base: "https://rosterd.bench.io".parse().unwrap(),
                }),
            );
            let started = Instant::now();
            let report = worker.drain().await.unwrap();
            let secs = started.elapsed().as_secs_f64();
            let sent: i64 = sqlx::query_scalar("select count(*) from invitations where sent_round = round")
                .fetch_one(&db)
                .await
                .unwrap();
            assert_eq!(sent, mails, "every invitation mailed");
            println!(
                "mail  C={c:<3} mails={mails:<6} {:>8.1} mails/s  ({} done, {} retried, {} dead, {secs:.1} s)",
                report.done as f64 / secs,
                report.done,
                report.retried,
                report.dead
            );
            db.close().await;
        }
        let _ = smtpd.kill().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
