//! Launch day, from outside: the real binary (worker on, the default pool
//! of 20) and a herd of first logins, each a person in the roster whom no
//! job has provisioned yet, so every lookup provisions inline. Then the same
//! with people only the directory (the Airtable stand-in) knows.
//!
//! Each login behaves as the README tells the login service to: ask, and on
//! a 503 come back after `Retry-After` seconds. Every answer must be a 200
//! or a 503 with `Retry-After`, the server must answer every request before
//! it could have waited out the pool's acquire timeout (the old failure:
//! every request waited it out, then got a 503), every login must end in a
//! 200, each person must end with exactly
//! one auth user (the one the lookup named), and a dry-run reconcile must
//! find nothing to do. Meanwhile people already provisioned keep being
//! answered.

use crate::airtable::{self, Airtable};
use crate::binary::*;
use crate::gotrue::GoTrue;
use crate::helpers::*;
use rosterd::provision::provider::local::LocalProvider;
use rosterd::provision::provider::AuthProvider;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The server must answer every lookup before it could have waited out
/// `DATABASE_ACQUIRE_TIMEOUT_SECS` (3 s by default, which the service runs
/// with): read from the server's own request histogram, whose bucket below
/// 3 s ends at 2.5 s. What the clients see adds this machine's scheduling
/// of two thousand clients beside the server, which [`CLIENT_PATIENCE`]
/// bounds.
const SERVER_BUCKET_BELOW_IT: &str = "2.5";
/// The old failure was every answer after 3–6 s, and client time-outs.
const CLIENT_PATIENCE: Duration = Duration::from_secs(10);
/// Provisioned before the herd, then looked up throughout it.
const KNOWN: usize = 50;
const WAVES: [usize; 2] = [200, 2_000];

fn email(i: usize) -> String {
    format!("first{i:05}@herd.example")
}

/// `n` active people, imported with `rosterd push` as an operator would,
/// whose provisioning jobs are then taken away: the worker has not got to
/// them yet, so their first login provisions them.
async fn seed(url: &str, db: &PgPool, n: usize) {
    let dir = std::env::temp_dir().join(format!("rosterd-herd-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("people.csv");
    let mut csv = String::from("id,email,name,status,groups\n");
    for i in 0..n {
        csv.push_str(&format!("herd-{i:05},{},Person {i},active,\n", email(i)));
    }
    std::fs::write(&file, csv).unwrap();
    cli(&["push", file.to_str().unwrap()], url, vec![]).await;
    std::fs::remove_dir_all(&dir).unwrap();
    sqlx::query("delete from provisioning_jobs")
        .execute(db)
        .await
        .unwrap();
}

/// What one login saw: every answer's status and how long it took, and the
/// auth user id it ended with.
#[derive(Debug, Default)]
struct Login {
    answers: Vec<(u16, Duration)>,
    user_id: Option<String>,
}

/// Logs `email` in as the login service should: on 503, wait the
/// `Retry-After` it was given and ask again.
async fn login(client: &reqwest::Client, base: &str, email: &str) -> Login {
    let mut seen = Login::default();
    for _ in 0..120 {
        let started = Instant::now();
        let r = client
            .get(format!("{base}/api/users/lookup"))
            .query(&[("email", email)])
            .bearer_auth(LOGIN_TOKEN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{email}: no answer after {:?}: {e}", started.elapsed()));
        let status = r.status().as_u16();
        seen.answers.push((status, started.elapsed()));
        match status {
            200 => {
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["user"]["email"], email, "{body}");
                seen.user_id = Some(body["auth"]["userId"].as_str().unwrap().to_owned());
                return seen;
            }
            503 => {
                let after: u64 = r
                    .headers()
                    .get("retry-after")
                    .unwrap_or_else(|| panic!("{email}: a 503 without Retry-After"))
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(after >= 1, "{email}: Retry-After {after}");
                let body: Value = r.json().await.unwrap();
                assert!(
                    [
                        "overloaded",
                        "provisioning_pending",
                        "directory_unavailable"
                    ]
                    .contains(&body["error"].as_str().unwrap_or("")),
                    "{email}: {body}"
                );
                // What the header asks of a client, not a wait for a state.
                tokio::time::sleep(Duration::from_secs(after)).await;
            }
            other => panic!("{email}: answered {other}: {}", r.text().await.unwrap()),
        }
    }
    panic!("{email}: still refused after 120 tries: {:?}", seen.answers);
}

/// Everyone at once, each over a connection of their own.
async fn herd(base: &str, emails: Vec<String>) -> Vec<(String, Login)> {
    let start = Arc::new(tokio::sync::Barrier::new(emails.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for email in emails {
        let (start, base) = (start.clone(), base.to_owned());
        tasks.spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            start.wait().await;
            let seen = login(&client, &base, &email).await;
            (email, seen)
        });
    }
    let mut logins = Vec::new();
    while let Some(r) = tasks.join_next().await {
        logins.push(r.unwrap());
    }
    logins
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Checks every answer of a wave and reports it; returns each person's
/// auth user id.
fn judge(label: &str, logins: &[(String, Login)]) -> BTreeMap<String, String> {
    let mut waits: Vec<Duration> = Vec::new();
    let (mut first_ok, mut shed) = (0, 0);
    for (email, seen) in logins {
        for (status, took) in &seen.answers {
            assert!(
                *took < CLIENT_PATIENCE,
                "{label}: {email} waited {took:?} for a {status}"
            );
            waits.push(*took);
            shed += usize::from(*status == 503);
        }
        first_ok += usize::from(seen.answers.len() == 1);
    }
    waits.sort();
    println!(
        "{label}: {} logins, {} answered 200 at once, {shed} × 503 (all retried to 200); per answer p50 {:?}, p99 {:?}, max {:?}",
        logins.len(),
        first_ok,
        percentile(&waits, 0.50),
        percentile(&waits, 0.99),
        waits.last().unwrap(),
    );
    logins
        .iter()
        .map(|(e, s)| (e.clone(), s.user_id.clone().expect("ended in a 200")))
        .collect()
}

/// Every lookup the server answered, and how many of them within the
/// histogram bucket below the acquire timeout.
async fn server_lookup_times(base: &str) -> (u64, u64) {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (mut all, mut quick) = (0, 0);
    for line in text.lines() {
        if !line.contains(r#"route="/api/users/lookup""#) {
            continue;
        }
        let value = || line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64;
        if line.starts_with("rosterd_http_request_duration_seconds_count") {
            all += value();
        } else if line.contains(&format!(r#"le="{SERVER_BUCKET_BELOW_IT}""#)) {
            quick += value();
        }
    }
    (all, quick)
}

/// Lookups of people already provisioned, one after another on each of
/// four connections, until told to stop: they must all be 200s.
fn keep_asking(base: &str, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Duration>> {
    let base = base.to_owned();
    tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..4 {
            let (base, stop) = (base.clone(), stop.clone());
            tasks.spawn(async move {
                let client = reqwest::Client::new();
                let mut took = Vec::new();
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let email = email(i % KNOWN);
                    let started = Instant::now();
                    let r = client
                        .get(format!("{base}/api/users/lookup"))
                        .query(&[("email", &email)])
                        .bearer_auth(LOGIN_TOKEN)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200, "{email}: {}", r.text().await.unwrap());
                    took.push(started.elapsed());
                    i += 4;
                }
                took
            });
        }
        let mut all = Vec::new();
        while let Some(t) = tasks.join_next().await {
            all.extend(t.unwrap());
        }
        all.sort();
        all
    })
}

async fn auth_users(reader: &dyn AuthProvider) -> BTreeMap<String, Vec<String>> {
    let mut by_email: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut page = Some(1);
    while let Some(n) = page {
        let got = reader.list_users(n, 1000).await.unwrap();
        for u in got.users {
            by_email.entry(u.email).or_default().push(u.id.to_string());
        }
        page = got.next;
    }
    by_email
}

/// Each person ends with exactly one auth user, the one their lookup named
/// and their roster row links.
async fn assert_one_user_each(
    db: &PgPool,
    reader: &dyn AuthProvider,
    named: &BTreeMap<String, String>,
) {
    let users = auth_users(reader).await;
    let links: BTreeMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "select email, auth_user_id::text from roster where auth_user_id is not null",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    for (email, id) in named {
        assert_eq!(users.get(email), Some(&vec![id.clone()]), "{email}");
        assert_eq!(links.get(email), Some(id), "{email}'s roster link");
    }
}

async fn first_logins(opts: &PgConnectOptions, supabase: bool) {
    let _alone = HEAVY.write().await;
    let db = migrated(opts).await;
    let url = url_of(opts);
    let g = if supabase {
        Some(GoTrue::start().await)
    } else {
        None
    };
    let reader = reader(g.as_ref(), &db);
    let total = KNOWN + WAVES.iter().sum::<usize>();
    seed(&url, &db, total).await;
    let service = serve(&url, provider_vars(g.as_ref())).await;

    let client = reqwest::Client::new();
    let mut known = Vec::new();
    for i in 0..KNOWN {
        known.push((email(i), login(&client, &service.base, &email(i)).await));
    }
    let mut named = judge("known people, provisioned one by one", &known);
    let stop = Arc::new(AtomicBool::new(false));
    let asking = keep_asking(&service.base, stop.clone());
    let mut from = KNOWN;
    for wave in WAVES {
        let started = Instant::now();
        let logins = herd(&service.base, (from..from + wave).map(email).collect()).await;
        let took = started.elapsed();
        named.extend(judge(&format!("herd of {wave}"), &logins));
        println!(
            "herd of {wave}: everyone in after {took:?} ({:.0} first logins/s)",
            wave as f64 / took.as_secs_f64()
        );
        from += wave;
    }
    stop.store(true, Ordering::Relaxed);
    let known = asking.await.unwrap();
    let (all, quick) = server_lookup_times(&service.base).await;
    assert!(all >= total as u64, "{all} lookups counted");
    assert_eq!(
        quick, all,
        "lookups the server answered after more than {SERVER_BUCKET_BELOW_IT} s"
    );
    assert!(!known.is_empty());
    println!(
        "provisioned people during the herds: {} lookups, all 200; p50 {:?}, p99 {:?}",
        known.len(),
        percentile(&known, 0.50),
        percentile(&known, 0.99)
    );

    assert_eq!(named.len(), total);
    assert_one_user_each(&db, reader.as_ref(), &named).await;
    drop(service);
    assert_no_drift(&url, g.as_ref(), "after the herd").await;
    db.close().await;
}

#[sqlx::test]
async fn first_logins_local(_p: PgPoolOptions, opts: PgConnectOptions) {
    first_logins(&opts, false).await;
}

#[sqlx::test]
async fn first_logins_supabase(_p: PgPoolOptions, opts: PgConnectOptions) {
    first_logins(&opts, true).await;
}

/// 200 people only the directory knows log in at once. Airtable takes 5
/// requests a second per base: the first few wait their turn in line, the
/// rest are told at once when to come back, and the stand-in never sees
/// more than 5 requests in a second.
#[sqlx::test]
async fn first_logins_from_the_directory(_p: PgPoolOptions, opts: PgConnectOptions) {
    const PEOPLE: usize = 200;
    // Light itself, but its answer times mean nothing beside a herd.
    let _shared = HEAVY.read().await;
    let db = migrated(&opts).await;
    let url = url_of(&opts);
    let at = Airtable::start().await;
    for i in 0..PEOPLE {
        at.insert_person(&email(i), &format!("Person {i}"));
    }
    let service = serve(
        &url,
        vec![
            ("AIRTABLE_API_URL", at.url().to_owned()),
            ("AIRTABLE_BASE_ID", airtable::BASE.to_owned()),
            ("AIRTABLE_TABLE", airtable::TABLE.to_owned()),
            ("AIRTABLE_API_KEY", airtable::KEY.to_owned()),
        ],
    )
    .await;
    let started = Instant::now();
    let logins = herd(&service.base, (0..PEOPLE).map(email).collect()).await;
    let took = started.elapsed();
    let named = judge("herd of 200 from the directory", &logins);
    let (all, quick) = server_lookup_times(&service.base).await;
    assert_eq!(
        quick, all,
        "lookups the server answered after more than {SERVER_BUCKET_BELOW_IT} s"
    );
    println!(
        "directory herd: everyone in after {took:?}; {} directory requests, at most {} in one second",
        at.total_requests(),
        at.max_requests_in_one_second()
    );
    assert_eq!(at.rate_limited(), 0, "Airtable's rate limit was hit");
    assert!(at.max_requests_in_one_second() <= airtable::REQUESTS_PER_SECOND);
    assert_eq!(named.len(), PEOPLE);
    assert_one_user_each(&db, &LocalProvider::new(db.clone()), &named).await;
    drop(service);
    assert_no_drift(&url, None, "after the directory herd").await;
    db.close().await;
}
