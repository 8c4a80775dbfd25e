//! Black-box convergence under concurrent delivery: the real binary (one
//! or two replicas of `rosterd serve` on one database, worker on at
//! concurrency 8), six senders posting shuffled histories with duplicates
//! over HTTP while the workers run, against both providers, and with the
//! GoTrue stand-in answering taken ids and emails in both shapes GoTrue
//! versions use (a bare 500, or a 422 with a code).
//!
//! Each history is delivered twice into the same service, under two
//! namespaces of record ids and emails: shuffled with duplicates by the six
//! senders, and once in order by a seventh (the reference). After the queues
//! drain, both namespaces must show the same roster and the same logins
//! (which emails can log in, with what metadata); every login must belong to
//! its email's active holder through the row's link; no user of ours may be
//! orphaned; no job may die; and a dry-run reconcile must find nothing to
//! do.
//!
//! `STRESS_HISTORIES` sets the number of histories per provider and replica
//! count (default 13, so 52 in `make test`); the Supabase cases split theirs
//! between the two shapes (13 histories per shape by default), so the shapes
//! cost no more than one Supabase run did. `make soak` runs many more.

use crate::binary::*;
use crate::gotrue::{GoTrue, Shape};
use crate::helpers::*;
use crate::smtp::Smtp;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rosterd::provision::provider::{AuthProvider, AuthUser};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const EVENTS: usize = 80;
const RECORDS: u32 = 6;
const EMAILS: u32 = 4;
const SENDERS: usize = 6;

/// One history: events over a few records sharing a few emails, with few
/// distinct timestamps (ties are ordered by event id), records re-created
/// under old emails, emails moving between records, deletes of unknown ids.
fn history(rng: &mut StdRng) -> Vec<(u8, u32, u32, bool, bool, u32)> {
    (0..EVENTS)
        .map(|_| {
            (
                rng.gen_range(0..3u8),
                // One id beyond the others only ever gets deletes: unknown ids.
                rng.gen_range(0..=RECORDS),
                rng.gen_range(0..EMAILS),
                rng.gen_bool(0.75),
                rng.gen_bool(0.5),
                rng.gen_range(0..20u32),
            )
        })
        .collect()
}

/// The history's events under namespace `ns`.
fn events(h: &[(u8, u32, u32, bool, bool, u32)], ns: &str) -> Vec<Value> {
    h.iter()
        .enumerate()
        .map(|(i, &(kind, rec, email, active, admin, secs))| {
            let id = format!("{ns}-evt-{i:03}");
            let at = format!("2026-11-22T10:00:{secs:02}Z");
            let rec_id = format!("{ns}-rec{rec}");
            if kind == 2 || rec == RECORDS {
                return delete_event(&id, &at, &rec_id);
            }
            let kind = ["user.created", "user.updated"][kind as usize];
            let mut e = upsert_event(kind, &id, &at, &rec_id, &format!("{ns}-p{email}@X.io"));
            e["user"]["status"] = json!(if active { "active" } else { "disabled" });
            e["user"]["groups"] = json!(if admin { vec!["admins"] } else { vec![] });
            e["user"]["name"] = json!(format!("name {i}"));
            e
        })
        .collect()
}

async fn start(
    url: &str,
    replicas: usize,
    gotrue: Option<&GoTrue>,
    smtp: Option<&Smtp>,
) -> Vec<Served> {
    let mut served = Vec::new();
    for _ in 0..replicas {
        let mut vars = provider_vars(gotrue);
        if let Some(smtp) = smtp {
            vars.extend([
                ("INVITATIONS_ENABLED", "true".to_owned()),
                ("INVITE_BASE_URL", "https://rosterd.acme.example".to_owned()),
                (
                    "INVITE_REDIRECT_URL",
                    "https://app.acme.example/".to_owned(),
                ),
                ("SMTP_URL", smtp.url()),
                ("SMTP_FROM", "accounts@acme.example".to_owned()),
            ]);
        }
        vars.extend([
            ("ADMIN_TOKENS", format!("ops:{ADMIN_TOKEN}")),
            ("ROLE_MAP", "admins=admin".to_owned()),
            ("ROLE_DEFAULTS", "reader".to_owned()),
            ("WORKER_CONCURRENCY", "8".to_owned()),
            ("WORKER_POLL_SECS", "1".to_owned()),
        ]);
        served.push(serve(url, vars).await);
    }
    served
}

/// Posts every body in `queue`, `senders` at a time, each to a random
/// replica; every answer must be a 200.
async fn send_all(bases: &[String], queue: Vec<Value>, senders: usize, seed: u64) {
    let queue = Arc::new(Mutex::new(VecDeque::from(queue)));
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..senders {
        let (queue, client, bases) = (queue.clone(), client.clone(), bases.to_vec());
        let mut rng = StdRng::seed_from_u64(seed ^ s as u64);
        tasks.spawn(async move {
            loop {
                let Some(body) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                let base = &bases[rng.gen_range(0..bases.len())];
                let r = post_signed_to(&client, base, &body).await;
                assert_eq!(r.status(), 200, "{body}: {}", r.text().await.unwrap());
            }
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
}

async fn all_users(p: &dyn AuthProvider) -> Vec<AuthUser> {
    let mut users = Vec::new();
    let mut page = Some(1);
    while let Some(n) = page {
        let got = p.list_users(n, 500).await.unwrap();
        users.extend(got.users);
        page = got.next;
    }
    users
}

/// What a namespace ends as, with the namespace stripped: the roster, and
/// who can log in as what.
#[derive(Debug, PartialEq)]
struct End {
    roster: Vec<Row>,
    logins: BTreeMap<String, Login>,
}

/// id, email, status, name, roles
type Row = (String, Option<String>, String, Option<String>, Vec<String>);
/// name, roles, roster id
type Login = (Option<String>, Vec<String>, Option<String>);

async fn end_state(db: &PgPool, users: &[AuthUser], ns: &str) -> End {
    let strip = |s: &str| s.replacen(&format!("{ns}-"), "", 1);
    let rows: Vec<Row> = sqlx::query_as(
        "select id, email, status, name, roles from roster where id like $1 || '-%' order by id",
    )
    .bind(ns)
    .fetch_all(db)
    .await
    .unwrap();
    let roster = rows
        .into_iter()
        .map(|(id, email, status, name, roles)| {
            (strip(&id), email.map(|e| strip(&e)), status, name, roles)
        })
        .collect();
    let logins = users
        .iter()
        .filter(|u| !u.banned && u.email.starts_with(&format!("{ns}-")))
        .map(|u| {
            (
                strip(&u.email),
                (
                    u.name.clone(),
                    u.roles.clone(),
                    u.roster_id.as_deref().map(strip),
                ),
            )
        })
        .collect();
    End { roster, logins }
}

/// Every user that can log in is linked to the active holder of its email,
/// every active holder's user can log in, and no user of ours is unlinked
/// yet able to log in.
async fn check_links(db: &PgPool, users: &[AuthUser]) -> Result<(), String> {
    let holders: Vec<(String, String, Option<uuid::Uuid>)> = sqlx::query_as(
        "select distinct on (email) email, status, auth_user_id from roster
         where email is not null and status <> 'deleted'
         order by email, profile_at desc, profile_event_id desc",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let links: BTreeMap<uuid::Uuid, String> = sqlx::query_as::<_, (uuid::Uuid, String)>(
        "select auth_user_id, id from roster where auth_user_id is not null",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let by_id: BTreeMap<uuid::Uuid, &AuthUser> = users.iter().map(|u| (u.id, u)).collect();
    for (email, status, link) in &holders {
        let user = link.and_then(|id| by_id.get(&id));
        match (status.as_str(), user) {
            ("active", Some(u)) if !u.banned && u.email == *email => {}
            ("active", u) => return Err(format!("active holder of {email} has {u:?}")),
            (_, Some(u)) if !u.banned => {
                return Err(format!("inactive holder of {email} can log in as {u:?}"))
            }
            _ => {}
        }
    }
    let active: BTreeMap<&str, Option<uuid::Uuid>> = holders
        .iter()
        .filter(|h| h.1 == "active")
        .map(|h| (h.0.as_str(), h.2))
        .collect();
    for u in users.iter().filter(|u| !u.banned) {
        if active.get(u.email.as_str()) != Some(&Some(u.id)) {
            return Err(format!(
                "{u:?} can log in but is not its email's active holder's user (linked to {:?})",
                links.get(&u.id)
            ));
        }
    }
    Ok(())
}

/// Dead jobs with their last errors; checked while draining (a dead job
/// never drains, so waiting on would only hide it) and once more after.
async fn dead_jobs(db: &PgPool) -> Vec<(String, Option<String>)> {
    sqlx::query_as("select email, last_error from provisioning_jobs where state = 'dead'")
        .fetch_all(db)
        .await
        .unwrap()
}

pub(crate) async fn queue_drained(db: &PgPool) -> bool {
    let left: i64 = sqlx::query_scalar(
        "select count(*) from provisioning_jobs where state in ('pending', 'running')",
    )
    .fetch_one(db)
    .await
    .unwrap();
    let dead = dead_jobs(db).await;
    assert!(dead.is_empty(), "no job may die: {dead:?}");
    left == 0
}

/// Which auth provider a case runs against.
#[derive(Debug, Clone, Copy)]
pub enum Provider {
    Local,
    /// The GoTrue stand-in, answering taken ids and emails in this shape.
    Supabase(Shape),
}

/// `STRESS_HISTORIES`, or 13.
fn histories_per_case() -> usize {
    std::env::var("STRESS_HISTORIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(13)
}

pub async fn converge(opts: &PgConnectOptions, provider: Provider, replicas: usize, seed: u64) {
    converge_n(opts, provider, replicas, seed, histories_per_case()).await
}

pub async fn converge_n(
    opts: &PgConnectOptions,
    provider: Provider,
    replicas: usize,
    seed: u64,
    histories: usize,
) {
    converge_with(opts, provider, replicas, seed, histories, false, false).await
}

/// As [`converge_n`]; with `inviting`, the replicas invite people by mail
/// through a real SMTP server, and the end state's invitations are checked
/// too.
async fn converge_with(
    opts: &PgConnectOptions,
    provider: Provider,
    replicas: usize,
    seed: u64,
    histories: usize,
    inviting: bool,
    overriding: bool,
) {
    // Several stress cases may run at once, but not beside a herd.
    let _shared = HEAVY.read().await;
    let started = std::time::Instant::now();
    let db = migrated(opts).await;
    let url = url_of(opts);
    let g = match provider {
        Provider::Local => None,
        Provider::Supabase(shape) => {
            let g = GoTrue::start().await;
            g.set_conflict_shape(shape);
            // A little latency widens the windows in which jobs interleave.
            g.set_latency(Duration::from_millis(2));
            Some(g)
        }
    };
    let reader = reader(g.as_ref(), &db);
    let smtp = match inviting {
        true => Some(Smtp::start().await),
        false => None,
    };
    let service = start(&url, replicas, g.as_ref(), smtp.as_ref()).await;
    let bases: Vec<String> = service.iter().map(|s| s.base.clone()).collect();

    let mut rng = StdRng::seed_from_u64(seed);
    let mut shuffled = Vec::new();
    let mut in_order = Vec::new();
    for n in 0..histories {
        let h = history(&mut rng);
        for e in events(&h, &format!("h{n}s")) {
            let copies = rng.gen_range(1..=2);
            shuffled.extend(std::iter::repeat_n(e, copies));
        }
        let mut reference = events(&h, &format!("h{n}r"));
        reference.sort_by_key(|e| (e["occurredAt"].to_string(), e["eventId"].to_string()));
        in_order.extend(reference);
    }
    shuffled.shuffle(&mut rng);
    let sent = std::sync::atomic::AtomicBool::new(false);
    tokio::join!(
        async {
            tokio::join!(
                send_all(&bases, shuffled, SENDERS, seed),
                send_all(&bases, in_order, 1, seed),
            );
            sent.store(true, std::sync::atomic::Ordering::Relaxed);
        },
        async {
            if overriding {
                override_meanwhile(&bases, histories, seed, &sent).await;
            }
        },
    );
    assert!(
        poll(Duration::from_secs(120 + histories as u64), || {
            queue_drained(&db)
        })
        .await,
        "the queue did not drain"
    );
    let dead = dead_jobs(&db).await;
    assert_eq!(dead, [], "seed {seed}: dead jobs");

    let users = all_users(reader.as_ref()).await;
    let mut diverged = Vec::new();
    for n in 0..histories {
        let mut got = end_state(&db, &users, &format!("h{n}s")).await;
        let mut want = end_state(&db, &users, &format!("h{n}r")).await;
        if overriding {
            // Only the shuffled namespace has overrides: its roles are
            // checked against them below instead.
            for end in [&mut got, &mut want] {
                end.logins.values_mut().for_each(|l| l.1.clear());
                end.roster.iter_mut().for_each(|r| r.4.clear());
            }
        }
        assert_eq!(got.roster, want.roster, "history {n}: rosters differ");
        if got.logins != want.logins {
            diverged.push(format!(
                "history {n}: logins {:?}\n  in order: {:?}",
                got.logins, want.logins
            ));
        }
    }
    assert!(
        diverged.is_empty(),
        "seed {seed}: {} of {histories} histories diverged:\n{}",
        diverged.len(),
        diverged.join("\n")
    );
    check_links(&db, &users)
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert_no_drift(&url, g.as_ref(), &format!("seed {seed}")).await;
    if overriding {
        check_overrides(&db, &users)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    if let Some(smtp) = &smtp {
        check_invitations(&db, smtp)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        // Each replica counts what it did; together they issued and sent.
        let mut text = String::new();
        for b in &bases {
            let m = reqwest::get(format!("{b}/metrics")).await.unwrap();
            text.push_str(&m.text().await.unwrap());
        }
        for outcome in ["issued", "sent"] {
            let line = format!("rosterd_invitations_total{{outcome=\"{outcome}\"}}");
            assert!(text.contains(&line), "{line} in /metrics");
        }
    }
    let (failed, retried_jobs, most): (i64, i64, i32) = sqlx::query_as(
        "select (select count(*) from provisioning_attempts where error is not null),
                (select count(distinct job_id) from provisioning_attempts where error is not null),
                (select coalesce(max(attempt), 0) from provisioning_attempts)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let errors: Vec<String> = sqlx::query_scalar(
        "select distinct error from provisioning_attempts where error is not null limit 3",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let conflicts = g.as_ref().map(GoTrue::conflicts).unwrap_or_default();
    if g.is_some() {
        // Else the case would pass without testing the shape it is about.
        assert!(
            conflicts.shaped() > 0,
            "seed {seed}: no taken id or email was ever answered: {conflicts:?}"
        );
    }
    eprintln!(
        "stress {provider:?}, {replicas} replica(s), {histories} histories: {conflicts:?}, \
         {failed} failed attempts over {retried_jobs} jobs (at most attempt {most}) {errors:?}, \
         0 dead, {:.1}s",
        started.elapsed().as_secs_f64()
    );
    drop(service);
    db.close().await;
}

/// An operator changing role overrides of the shuffled namespace's records
/// over the admin API, on random replicas, until the senders are done.
async fn override_meanwhile(
    bases: &[String],
    histories: usize,
    seed: u64,
    sent: &std::sync::atomic::AtomicBool,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0e11);
    let client = reqwest::Client::new();
    let roles = ["admin", "reader", "auditor", "x1"];
    let mut set = 0;
    while !sent.load(std::sync::atomic::Ordering::Relaxed) {
        let base = &bases[rng.gen_range(0..bases.len())];
        let record = format!(
            "h{}s-rec{}",
            rng.gen_range(0..histories),
            rng.gen_range(0..RECORDS)
        );
        let url = format!("{base}/api/admin/users/{record}/role-overrides");
        let pick = |rng: &mut StdRng| -> Vec<&str> {
            roles
                .iter()
                .copied()
                .filter(|_| rng.gen_bool(0.3))
                .collect()
        };
        let req = if rng.gen_bool(0.2) {
            client.delete(&url)
        } else {
            let preserve = pick(&mut rng);
            let suppress: Vec<&str> = pick(&mut rng)
                .into_iter()
                .filter(|r| !preserve.contains(r))
                .collect();
            let body =
                json!({"preserve": preserve, "suppress": suppress, "freeze": rng.gen_bool(0.3)});
            client.put(&url).json(&body)
        };
        let status = req.bearer_auth(ADMIN_TOKEN).send().await.unwrap().status();
        // Not there yet, or no auth user yet: both fine mid-history.
        assert!(
            matches!(status.as_u16(), 200 | 404 | 409),
            "{url}: {status}"
        );
        set += usize::from(status == 200);
    }
    assert!(set > 0, "no override was ever set: the case tests nothing");
}

/// Every user that can log in has exactly the effective roles of the row
/// it is linked to: its mapped roles with its override applied.
async fn check_overrides(db: &PgPool, users: &[AuthUser]) -> Result<(), String> {
    let mut checked = 0;
    for u in users.iter().filter(|u| !u.banned) {
        let want: Option<Vec<String>> = sqlx::query_scalar(
            "select case when o.user_id is null then r.roles
                         else effective_roles(r.roles, o.preserve, o.suppress, o.frozen_roles) end
               from roster r left join role_overrides o on o.user_id = r.auth_user_id
              where r.auth_user_id = $1",
        )
        .bind(u.id)
        .fetch_optional(db)
        .await
        .unwrap();
        let mut have = u.roles.clone();
        have.sort();
        if let Some(mut want) = want {
            want.sort();
            if have != want {
                return Err(format!(
                    "{} has roles {have:?}, its override says {want:?}",
                    u.email
                ));
            }
            checked += 1;
        }
    }
    let overridden: i64 = sqlx::query_scalar("select count(*) from role_overrides")
        .fetch_one(db)
        .await
        .unwrap();
    eprintln!("stress overrides: {checked} logins checked, {overridden} overrides in force");
    Ok(())
}

/// Holders (docs/contract.md §4: the newest live row of each email) that
/// are active, and their auth users.
const ACTIVE_HOLDERS: &str = "select auth_user_id from (
        select distinct on (email) email, status, auth_user_id from roster
         where email is not null and status <> 'deleted'
         order by email, profile_at desc, profile_event_id desc) h
     where h.status = 'active' and h.auth_user_id is not null";

/// Every user an active person holds has exactly one invitation that is
/// pending or accepted (each was created by rosterd here), mailed once per
/// round; no user nobody active holds has a pending one.
async fn check_invitations(db: &PgPool, smtp: &Smtp) -> Result<(), String> {
    let held: Vec<(uuid::Uuid, i64)> = sqlx::query_as(&format!(
        "select u.auth_user_id,
                (select count(*) from invitations i
                  where i.user_id = u.auth_user_id and i.state in ('pending', 'accepted'))
           from ({ACTIVE_HOLDERS}) u"
    ))
    .fetch_all(db)
    .await
    .unwrap();
    if held.is_empty() {
        return Err("no active person: the case tests nothing".into());
    }
    if let Some((user, n)) = held.iter().find(|(_, n)| *n != 1) {
        let theirs: Vec<(String, Option<String>, String)> = sqlx::query_as(
            "select state, revoked_reason, email from invitations where user_id = $1 order by id",
        )
        .bind(user)
        .fetch_all(db)
        .await
        .unwrap();
        let rows: Vec<(String, Option<String>, String)> =
            sqlx::query_as("select id, email, status from roster where auth_user_id = $1")
                .bind(user)
                .fetch_all(db)
                .await
                .unwrap();
        let audit: Vec<(String, String, Value)> = sqlx::query_as(
            "select to_char(at, 'MI:SS.US'), action, details from audit_log where details->>'userId' = $1 order by id",
        )
        .bind(user.to_string())
        .fetch_all(db)
        .await
        .unwrap();
        let attempts: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "select to_char(a.finished_at, 'MI:SS.US'), j.email, a.action from provisioning_attempts a
               join provisioning_jobs j on j.id = a.job_id
              where j.email in (select email from roster where auth_user_id = $1)
                 or j.email in (select e.payload->'user'->>'email' from inbound_events e
                                 where e.payload->'user'->>'id' in (select id from roster where auth_user_id = $1))
              order by a.finished_at",
        )
        .bind(user)
        .fetch_all(db)
        .await
        .unwrap();
        let events: Vec<(String, Value)> = sqlx::query_as(
            "select to_char(received_at, 'MI:SS.US'), payload from inbound_events
              where payload->'user'->>'id' in (select id from roster where auth_user_id = $1)
              order by received_at",
        )
        .bind(user)
        .fetch_all(db)
        .await
        .unwrap();
        return Err(format!(
            "active user {user} has {n} open or accepted invitations: {theirs:?}; rows {rows:?}; audit {audit:?}\nattempts {attempts:?}\nevents {events:?}"
        ));
    }
    let stray: Vec<(uuid::Uuid, String)> = sqlx::query_as(&format!(
        "select i.user_id, i.email from invitations i
          where i.state = 'pending' and i.user_id not in ({ACTIVE_HOLDERS})"
    ))
    .fetch_all(db)
    .await
    .unwrap();
    if !stray.is_empty() {
        return Err(format!("pending invitations of people who left: {stray:?}"));
    }
    let rounds: i64 = sqlx::query_scalar("select coalesce(sum(sent_round), 0) from invitations")
        .fetch_one(db)
        .await
        .unwrap();
    let mails = smtp.messages().len() as i64;
    if mails != rounds {
        return Err(format!(
            "{mails} mails for {rounds} rounds recorded as sent"
        ));
    }
    eprintln!(
        "stress invitations: {} active people invited once each, {mails} mails",
        held.len()
    );
    Ok(())
}

fn seed() -> u64 {
    let seed = std::env::var("STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("stress seed {seed} (STRESS_SEED reruns it)");
    seed
}

#[sqlx::test]
async fn local_one_replica(_p: PgPoolOptions, opts: PgConnectOptions) {
    converge(&opts, Provider::Local, 1, seed()).await;
}

#[sqlx::test]
async fn local_two_replicas(_p: PgPoolOptions, opts: PgConnectOptions) {
    converge(&opts, Provider::Local, 2, seed()).await;
}

#[sqlx::test]
async fn local_two_replicas_inviting(_p: PgPoolOptions, opts: PgConnectOptions) {
    converge_with(
        &opts,
        Provider::Local,
        2,
        seed(),
        histories_per_case(),
        true,
        false,
    )
    .await;
}

/// A Supabase case's share of `STRESS_HISTORIES` in one shape: the two
/// shapes split it, the larger half alternating with the replica count so
/// each shape gets half of the total.
async fn supabase(opts: &PgConnectOptions, shape: Shape, replicas: usize) {
    let n = histories_per_case();
    let larger = matches!(
        (shape, replicas),
        (Shape::Status500, 1) | (Shape::Status422, 2)
    );
    let share = if larger { n.div_ceil(2) } else { n / 2 };
    converge_n(
        opts,
        Provider::Supabase(shape),
        replicas,
        seed(),
        share.max(1),
    )
    .await;
}

#[sqlx::test]
async fn supabase_500_one_replica(_p: PgPoolOptions, opts: PgConnectOptions) {
    supabase(&opts, Shape::Status500, 1).await;
}

#[sqlx::test]
async fn supabase_422_one_replica(_p: PgPoolOptions, opts: PgConnectOptions) {
    supabase(&opts, Shape::Status422, 1).await;
}

#[sqlx::test]
async fn supabase_500_two_replicas(_p: PgPoolOptions, opts: PgConnectOptions) {
    supabase(&opts, Shape::Status500, 2).await;
}

#[sqlx::test]
async fn supabase_422_two_replicas(_p: PgPoolOptions, opts: PgConnectOptions) {
    supabase(&opts, Shape::Status422, 2).await;
}

#[sqlx::test]
async fn supabase_two_replicas_inviting(_p: PgPoolOptions, opts: PgConnectOptions) {
    let shape = Provider::Supabase(Shape::Status500);
    converge_with(&opts, shape, 2, seed(), histories_per_case(), true, false).await;
}

#[sqlx::test]
async fn local_two_replicas_overriding(_p: PgPoolOptions, opts: PgConnectOptions) {
    converge_with(
        &opts,
        Provider::Local,
        2,
        seed(),
        histories_per_case(),
        false,
        true,
    )
    .await;
}

#[sqlx::test]
async fn supabase_two_replicas_overriding(_p: PgPoolOptions, opts: PgConnectOptions) {
    let shape = Provider::Supabase(Shape::Status422);
    converge_with(&opts, shape, 2, seed(), histories_per_case(), false, true).await;
}
