//! The roster driving login accounts: each action, re-created records,
//! email moves, adoption, the queue's guarantees, convergence.

use crate::gotrue::{self, Failure, GoTrue, Shape};
use crate::helpers::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};
use rosterd::config::WorkerConfig;
use rosterd::event::ParsedBody;
use rosterd::provision::provider::local::LocalProvider;
use rosterd::provision::provider::supabase::SupabaseProvider;
use rosterd::provision::provider::{AuthProvider, AuthUser};
use rosterd::provision::worker::{DrainReport, Worker};
use rosterd::roles::RoleMap;
use rosterd::roster::{ingest, Source};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The roster, the queue and a provider, driven step by step.
pub struct Harness {
    pub db: PgPool,
    pub provider: Arc<dyn AuthProvider>,
    pub roles: RoleMap,
    /// Set when the provider is Supabase, talking to the stand-in.
    pub gotrue: Option<GoTrue>,
    seq: u32,
}

/// What a login service would see: who can log in, and as what.
pub type LoginState = BTreeMap<String, (Option<String>, Vec<String>, Option<String>)>;

impl Harness {
    pub fn local(db: PgPool) -> Self {
        let provider = Arc::new(LocalProvider::new(db.clone()));
        Self::new(db, provider)
    }

    /// The Supabase provider against a fresh GoTrue stand-in.
    pub async fn gotrue(db: PgPool) -> Self {
        let g = GoTrue::start().await;
        let provider = SupabaseProvider::new(
            g.url(),
            gotrue::KEY.to_string().into(),
            Duration::from_secs(5),
        )
        .unwrap();
        let mut h = Self::new(db, Arc::new(provider));
        h.gotrue = Some(g);
        h
    }

    pub fn new(db: PgPool, provider: Arc<dyn AuthProvider>) -> Self {
        Self {
            db,
            provider,
            roles: RoleMap::parse("admins=admin", "reader").unwrap(),
            gotrue: None,
            seq: 0,
        }
    }

    /// Time passes for jobs waiting out a backoff (moved, not slept).
    pub async fn make_due(&self) {
        sqlx::query("update provisioning_jobs set run_at = now() where state = 'pending'")
            .execute(&self.db)
            .await
            .unwrap();
    }

    /// A worker with its own pool of `concurrency + 2` connections, as
    /// `rosterd serve` gives it (each running job holds one for its locks).
    pub fn worker(&self, concurrency: usize) -> Worker {
        let opts = (*self.db.connect_options()).clone();
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(concurrency as u32 + 2)
            .connect_lazy_with(rosterd::db::worker_options(opts));
        Worker::new(
            pool,
            self.provider.clone(),
            WorkerConfig {
                concurrency,
                lease: Duration::from_secs(30),
                poll_interval: Duration::from_millis(200),
                max_attempts: 12,
            },
        )
    }

    pub async fn apply(&self, event: &Value) -> String {
        let body = ParsedBody::from_value(event.clone()).expect("valid test event");
        let outcome = ingest(&self.db, &body, Source::Webhook, &self.roles)
            .await
            .unwrap();
        outcome.as_str().to_owned()
    }

    /// An event with the next timestamp, so calls apply in call order.
    pub async fn send(&mut self, kind: &str, record: &str, email: &str, status: &str) {
        self.seq += 1;
        let at = format!(
            "2026-11-22T{:02}:{:02}:{:02}Z",
            10 + self.seq / 3600,
            self.seq / 60 % 60,
            self.seq % 60
        );
        let id = format!("evt_{:04}", self.seq);
        let ev = if kind == "user.deleted" {
            delete_event(&id, &at, record)
        } else {
            let mut e = upsert_event(kind, &id, &at, record, email);
            e["user"]["status"] = status.into();
            e
        };
        self.apply(&ev).await;
    }

    pub async fn drain(&self) -> DrainReport {
        self.worker(4).drain().await.unwrap()
    }

    /// Drains until no job is left, moving backoffs forward instead of
    /// waiting them out: "once the queue is drained".
    pub async fn drain_all(&self) -> DrainReport {
        let mut total = DrainReport::default();
        for _ in 0..20 {
            let r = self.drain().await;
            total.done += r.done;
            total.retried += r.retried;
            total.dead += r.dead;
            let left: i64 = sqlx::query_scalar(
                "select count(*) from provisioning_jobs where state in ('pending', 'running')",
            )
            .fetch_one(&self.db)
            .await
            .unwrap();
            if left == 0 {
                return total;
            }
            self.make_due().await;
        }
        panic!("the queue did not drain in 20 rounds: {total:?}");
    }

    /// A user made outside rosterd (no `managed_by` marker), as an admin
    /// or another app would make it.
    pub async fn foreign_user(&self, email: &str, name: &str) -> AuthUser {
        let id = uuid::Uuid::new_v4();
        match &self.gotrue {
            Some(g) => {
                g.seed(
                    id,
                    email,
                    serde_json::json!({ "name": name }),
                    serde_json::json!({}),
                );
            }
            None => {
                sqlx::query(
                    "insert into auth_accounts (id, email, user_metadata, email_confirmed_at)
                     values ($1, lower($2), jsonb_build_object('name', $3::text), now())",
                )
                .bind(id)
                .bind(email)
                .bind(name)
                .execute(&self.db)
                .await
                .unwrap();
            }
        }
        let user = self.provider.get_user(id).await.unwrap().unwrap();
        assert!(!user.managed);
        user
    }

    pub async fn user(&self, email: &str) -> Option<AuthUser> {
        self.provider.find_by_email(email).await.unwrap()
    }

    pub async fn all_users(&self) -> Vec<AuthUser> {
        let mut users = Vec::new();
        let mut page = Some(1);
        while let Some(p) = page {
            let got = self.provider.list_users(p, 100).await.unwrap();
            users.extend(got.users);
            page = got.next;
        }
        users
    }

    pub async fn login_state(&self) -> LoginState {
        self.all_users()
            .await
            .into_iter()
            .filter(|u| !u.banned)
            .map(|u| (u.email, (u.name, u.roles, u.roster_id)))
            .collect()
    }

    pub async fn last_actions(&self) -> Vec<(String, String)> {
        sqlx::query_as(
            "select email, coalesce(last_action, '') from provisioning_jobs
             where state = 'done' order by updated_at desc, id desc",
        )
        .fetch_all(&self.db)
        .await
        .unwrap()
    }

    /// The action of the latest finished job for `email`.
    pub async fn action_for(&self, email: &str) -> String {
        self.last_actions()
            .await
            .into_iter()
            .find(|(e, _)| e == email)
            .map(|(_, a)| a)
            .unwrap_or_default()
    }
}

async fn each_action_once_with_a_stable_id(mut h: Harness) {
    h.send("user.created", "recA", "ada@x.io", "active").await;
    assert_eq!(h.drain().await.done, 1);
    let created = h.user("ada@x.io").await.expect("created");
    assert_eq!(h.action_for("ada@x.io").await, "created");
    assert!(!created.banned);
    assert_eq!(created.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(created.roles, ["admin", "reader"]);
    assert_eq!(created.roster_id.as_deref(), Some("recA"));

    // Metadata change.
    let mut ev = upsert_event(
        "user.updated",
        "evt_9001",
        "2026-11-22T11:00:00Z",
        "recA",
        "ada@x.io",
    );
    ev["user"]["name"] = "Ada King".into();
    ev["user"]["groups"] = serde_json::json!([]);
    h.apply(&ev).await;
    h.drain().await;
    let updated = h.user("ada@x.io").await.unwrap();
    assert_eq!(h.action_for("ada@x.io").await, "updated");
    assert_eq!(
        (updated.name.as_deref(), updated.roles.clone()),
        (Some("Ada King"), vec!["reader".to_string()])
    );

    // Disabled: banned, same id.
    h.seq = 3600;
    h.send("user.updated", "recA", "ada@x.io", "disabled").await;
    h.drain().await;
    assert_eq!(h.action_for("ada@x.io").await, "decommissioned");
    assert!(h.user("ada@x.io").await.unwrap().banned);

    // Back to active: restored.
    h.send("user.updated", "recA", "ada@x.io", "active").await;
    h.drain().await;
    assert_eq!(h.action_for("ada@x.io").await, "restored");
    assert!(!h.user("ada@x.io").await.unwrap().banned);

    // Deleted: banned again; nothing is ever deleted at the provider.
    h.send("user.deleted", "recA", "", "").await;
    h.drain().await;
    assert_eq!(h.action_for("ada@x.io").await, "decommissioned");
    let gone = h.user("ada@x.io").await.unwrap();
    assert!(gone.banned);
    for u in [&updated, &gone] {
        assert_eq!(u.id, created.id, "one auth user id throughout");
    }
    assert_eq!(h.all_users().await.len(), 1);
}

async fn recreated_record_keeps_the_persons_auth_user(mut h: Harness) {
    h.send("user.created", "recOld", "ada@x.io", "active").await;
    h.drain().await;
    let original = h.user("ada@x.io").await.unwrap();
    h.send("user.deleted", "recOld", "", "").await;
    h.drain().await;
    assert!(h.user("ada@x.io").await.unwrap().banned);

    h.send("user.created", "recNew", "ada@x.io", "active").await;
    h.drain().await;
    let back = h.user("ada@x.io").await.unwrap();
    assert_eq!(back.id, original.id);
    assert!(!back.banned);
    assert_eq!(back.roster_id.as_deref(), Some("recNew"));
    assert_eq!(h.action_for("ada@x.io").await, "restored");

    // The old row's deletion, delivered again later (a replay, a retry),
    // never bans the person again.
    h.send("user.deleted", "recOld", "", "").await;
    sqlx::query("insert into provisioning_jobs (email) values ('ada@x.io') on conflict do nothing")
        .execute(&h.db)
        .await
        .unwrap();
    h.drain().await;
    assert!(!h.user("ada@x.io").await.unwrap().banned);
    let link: Option<uuid::Uuid> =
        sqlx::query_scalar("select auth_user_id from roster where id = 'recOld'")
            .fetch_one(&h.db)
            .await
            .unwrap();
    assert_eq!(link, None, "the link moved to the new record");
    assert_eq!(h.all_users().await.len(), 1);
}

async fn email_change_follows_the_record(mut h: Harness) {
    h.send("user.created", "recA", "old@x.io", "active").await;
    h.drain().await;
    let before = h.user("old@x.io").await.unwrap();
    h.send("user.updated", "recA", "new@x.io", "active").await;
    h.drain().await;
    let after = h
        .user("new@x.io")
        .await
        .expect("the same user has the new email");
    assert_eq!(after.id, before.id);
    assert!(h.user("old@x.io").await.is_none());
    assert_eq!(h.all_users().await.len(), 1);
}

async fn two_records_swapping_emails_both_end_right(mut h: Harness) {
    h.send("user.created", "recA", "x@x.io", "active").await;
    h.send("user.created", "recB", "y@x.io", "active").await;
    h.drain().await;
    let (ua, ub) = (
        h.user("x@x.io").await.unwrap(),
        h.user("y@x.io").await.unwrap(),
    );
    h.send("user.updated", "recA", "y@x.io", "active").await;
    h.send("user.updated", "recB", "x@x.io", "active").await;
    let r = h.drain().await;
    assert_eq!(r.dead, 0, "{r:?}");
    let (x, y) = (
        h.user("x@x.io").await.unwrap(),
        h.user("y@x.io").await.unwrap(),
    );
    assert_eq!((x.id, x.roster_id.as_deref()), (ub.id, Some("recB")));
    assert_eq!((y.id, y.roster_id.as_deref()), (ua.id, Some("recA")));
    assert!(!x.banned && !y.banned);
}

async fn a_user_that_existed_before_rosterd_is_adopted(mut h: Harness) {
    let existing = h.foreign_user("ada@x.io", "Pre-existing").await;
    h.send("user.created", "recA", "ADA@x.io", "active").await;
    h.drain().await;
    let users = h.all_users().await;
    assert_eq!(users.len(), 1, "adopted, not duplicated");
    assert_eq!(users[0].id, existing.id);
    assert_eq!(users[0].roster_id.as_deref(), Some("recA"));
    assert!(users[0].managed, "adopted users carry the marker");
    assert_eq!(h.action_for("ada@x.io").await, "updated");
}

async fn an_inactive_person_never_gets_an_account(mut h: Harness) {
    h.send("user.created", "recA", "ada@x.io", "disabled").await;
    h.send("user.deleted", "recB", "", "").await;
    h.drain().await;
    assert!(h.all_users().await.is_empty());
    assert_eq!(h.action_for("ada@x.io").await, "unchanged");
}

#[sqlx::test]
async fn an_event_during_a_running_job_runs_it_again(db: PgPool) {
    let mut h = Harness::local(db);
    h.send("user.created", "recA", "ada@x.io", "active").await;
    let claimed = rosterd::outbox::claim(&h.db, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // While it runs, the person changes: no second active job appears…
    h.send("user.updated", "recA", "ada@x.io", "disabled").await;
    let active: i64 = sqlx::query_scalar(
        "select count(*) from provisioning_jobs where state in ('pending', 'running')",
    )
    .fetch_one(&h.db)
    .await
    .unwrap();
    assert_eq!(active, 1);
    // …and finishing the stale run puts the job back to pending.
    let finish = rosterd::outbox::Finish::Done {
        action: rosterd::state::Action::Created,
    };
    assert_eq!(
        rosterd::outbox::finish(&h.db, &[(&claimed[0], &finish)])
            .await
            .unwrap(),
        [true]
    );
    let state: String = sqlx::query_scalar("select state from provisioning_jobs")
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert_eq!(state, "pending");
    h.drain().await;
    assert!(
        h.all_users().await.is_empty(),
        "disabled before ever being created"
    );
}

#[sqlx::test]
async fn an_expired_lease_is_taken_over_and_the_old_claim_cannot_finish(db: PgPool) {
    let mut h = Harness::local(db);
    h.send("user.created", "recA", "ada@x.io", "active").await;
    let first = rosterd::outbox::claim(&h.db, 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // Still leased: nobody else gets it.
    assert!(rosterd::outbox::claim(&h.db, 1, Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
    // The worker died: its lease runs out (moved into the past, not waited for).
    sqlx::query("update provisioning_jobs set lease_until = now() - interval '1 second'")
        .execute(&h.db)
        .await
        .unwrap();
    let report = h.drain().await;
    assert_eq!(report.done, 1);
    assert!(h.user("ada@x.io").await.is_some());
    let attempts: i32 = sqlx::query_scalar("select attempts from provisioning_jobs")
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert_eq!(attempts, 2);
    // The dead worker's late result is discarded.
    let late = rosterd::outbox::Finish::Dead {
        error: "late".into(),
        transient: false,
    };
    assert_eq!(
        rosterd::outbox::finish(&h.db, &[(&first[0], &late)])
            .await
            .unwrap(),
        [false]
    );
    let state: String = sqlx::query_scalar("select state from provisioning_jobs")
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert_eq!(state, "done");
}

/// Results are written in batches: each is recorded or discarded on its
/// own claim, whatever else is in its batch.
#[sqlx::test]
async fn a_batch_of_results_records_only_the_claims_still_held(db: PgPool) {
    use rosterd::outbox::{claim, finish, Finish};
    let mut h = Harness::local(db);
    for (rec, email) in [
        ("recA", "ada@x.io"),
        ("recB", "bob@x.io"),
        ("recC", "cy@x.io"),
    ] {
        h.send("user.created", rec, email, "active").await;
    }
    let lease = Duration::from_secs(30);
    let mut claimed = claim(&h.db, 3, lease).await.unwrap();
    claimed.sort_by(|a, b| a.job.cmp(&b.job));
    // bob's lease ran out and another worker took the job over.
    sqlx::query("update provisioning_jobs set lease_until = now() - interval '1 second' where email = 'bob@x.io'")
        .execute(&h.db)
        .await
        .unwrap();
    let taken = claim(&h.db, 3, lease).await.unwrap();
    assert_eq!(taken.len(), 1);
    let done = Finish::Done {
        action: rosterd::state::Action::Created,
    };
    let retry = Finish::Retry {
        error: "provider said 503\0".into(),
        after: Duration::from_secs(60),
    };
    let written = finish(
        &h.db,
        &[
            (&claimed[0], &done),
            (&claimed[1], &done),
            (&claimed[2], &retry),
        ],
    )
    .await
    .unwrap();
    assert_eq!(written, [true, false, true]);
    let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
        "select j.email, j.state, count(a.id), max(a.error)
           from provisioning_jobs j left join provisioning_attempts a on a.job_id = j.id
          group by j.email, j.state order by j.email",
    )
    .fetch_all(&h.db)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("ada@x.io".into(), "done".into(), 1, None),
            ("bob@x.io".into(), "running".into(), 0, None),
            (
                "cy@x.io".into(),
                "pending".into(),
                1,
                Some("provider said 503\u{fffd}".into())
            ),
        ]
    );
}

#[sqlx::test]
async fn two_workers_run_each_of_500_jobs_exactly_once(db: PgPool) {
    let h = Harness::local(db);
    sqlx::raw_sql(
        "insert into roster (id, email, profile_status, profile_at, profile_event_id, last_at, last_event_id)
         select 'rec' || i, 'p' || i || '@x.io', 'active', now(), 'e' || i, now(), 'e' || i
         from generate_series(1, 500) i;
         insert into provisioning_jobs (email) select 'p' || i || '@x.io' from generate_series(1, 500) i",
    )
    .execute(&h.db)
    .await
    .unwrap();
    let (a, b) = (h.worker(8), h.worker(8));
    let (ra, rb) = tokio::join!(a.drain(), b.drain());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.done + rb.done, 500, "{ra:?} {rb:?}");
    assert!(
        ra.done > 0 && rb.done > 0,
        "both workers took part: {ra:?} {rb:?}"
    );
    let attempts: Vec<(i64, i64)> =
        sqlx::query_as("select count(*), count(distinct job_id) from provisioning_attempts")
            .fetch_all(&h.db)
            .await
            .unwrap();
    assert_eq!(attempts, [(500, 500)]);
    assert_eq!(h.all_users().await.len(), 500);
}

#[sqlx::test]
async fn the_worker_wakes_on_notify_and_stops_cleanly(db: PgPool) {
    let h = Harness::local(db);
    // Polling far slower than the test may take: only NOTIFY can wake it.
    let worker = Worker::new(
        h.db.clone(),
        h.provider.clone(),
        WorkerConfig {
            poll_interval: Duration::from_secs(3600),
            ..WorkerConfig::default()
        },
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let mut listener = sqlx::postgres::PgListener::connect_with(&h.db)
        .await
        .unwrap();
    listener.listen("rosterd_test_done").await.unwrap();
    sqlx::raw_sql(
        "create function tell() returns trigger language plpgsql as
           $$ begin perform pg_notify('rosterd_test_done', new.email); return new; end $$;
         create trigger tell after insert on auth_accounts for each row execute function tell();",
    )
    .execute(&h.db)
    .await
    .unwrap();
    // Through the service: the inbound handler pokes the wakeup after commit.
    let app = TestApp::spawn(h.db.clone()).await;
    let ev = upsert_event(
        "user.created",
        "evt_1",
        "2026-11-22T10:00:00Z",
        "recA",
        "ada@x.io",
    );
    assert_eq!(app.post_signed(&ev).await.status(), 200);
    let n = tokio::time::timeout(Duration::from_secs(20), listener.recv()).await;
    assert_eq!(
        n.expect("provisioned without polling").unwrap().payload(),
        "ada@x.io"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .unwrap()
        .unwrap();
}

/// The worker claims jobs ahead, in batches; when it stops, the jobs it
/// claimed but never started go back to the queue at once, untouched,
/// instead of waiting out their lease.
#[sqlx::test]
async fn a_stopping_worker_gives_back_the_jobs_it_claimed_ahead(db: PgPool) {
    let mut h = Harness::local(db);
    for i in 0..5 {
        h.send(
            "user.created",
            &format!("rec{i}"),
            &format!("p{i}@x.io"),
            "active",
        )
        .await;
    }
    // Every job but p0's stops at linking its row until this rolls back.
    let mut hold = h.db.begin().await.unwrap();
    sqlx::query("select 1 from roster where id <> 'rec0' for update")
        .execute(&mut *hold)
        .await
        .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(h.worker(2).run(shutdown.clone()));
    let count = |state: &'static str| {
        let db = h.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select count(*) from provisioning_jobs where state = $1")
                .bind(state)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    // p0 done, p1 and p2 in flight, p3 claimed ahead; nothing moves now.
    assert!(
        poll(Duration::from_secs(30), || async {
            count("done").await == 1 && count("running").await == 3
        })
        .await,
        "the worker claims ahead"
    );
    shutdown.cancel();
    // p1 and p2 are still held, so the worker cannot finish stopping; p3
    // must be back in the queue meanwhile (its lease has 30 s to run).
    let given_back = poll(Duration::from_secs(20), || async {
        count("pending").await == 2
    })
    .await;
    hold.rollback().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap()
        .unwrap();
    assert!(
        given_back,
        "the job claimed ahead is back in the queue while the others run"
    );
    // p3 is as if never claimed: no attempt counted, no lease, no attempt row.
    let jobs: Vec<(String, String, i32, bool)> = sqlx::query_as(
        "select email, state, attempts, lease_token is null from provisioning_jobs order by email",
    )
    .fetch_all(&h.db)
    .await
    .unwrap();
    let expect = |e: &str, s: &str, a: i32| (e.to_owned(), s.to_owned(), a, true);
    assert_eq!(
        jobs,
        [
            expect("p0@x.io", "done", 1),
            expect("p1@x.io", "done", 1),
            expect("p2@x.io", "done", 1),
            expect("p3@x.io", "pending", 0),
            expect("p4@x.io", "pending", 0),
        ]
    );
    let attempts: i64 = sqlx::query_scalar("select count(*) from provisioning_attempts")
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert_eq!(attempts, 3);
    assert_eq!(h.drain().await.done, 2);
}

/// Who called the provider about whom, for telling which worker ran which
/// person: one log shared by every worker's [`Logged`] provider.
type CallLog = Arc<std::sync::Mutex<Vec<(&'static str, &'static str, String)>>>;

/// A provider that records each call as (worker, call, email or user id)
/// and holds the creates of `gated` emails until `open` turns true.
struct Logged {
    inner: Arc<dyn AuthProvider>,
    worker: &'static str,
    log: CallLog,
    gated: Vec<String>,
    open: tokio::sync::watch::Receiver<bool>,
}

impl Logged {
    fn note(&self, call: &'static str, subject: String) {
        self.log.lock().unwrap().push((self.worker, call, subject));
    }
}

#[async_trait::async_trait]
impl AuthProvider for Logged {
    async fn get_user(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<AuthUser>, rosterd::provision::provider::ProviderError> {
        self.note("get_user", id.to_string());
        self.inner.get_user(id).await
    }

    async fn find_by_email(
        &self,
        email: &str,
    ) -> Result<Option<AuthUser>, rosterd::provision::provider::ProviderError> {
        self.note("find_by_email", email.to_string());
        self.inner.find_by_email(email).await
    }

    async fn create_user(
        &self,
        id: uuid::Uuid,
        profile: &rosterd::provision::provider::Profile,
    ) -> Result<AuthUser, rosterd::provision::provider::ProviderError> {
        self.note("create_user", profile.email.clone());
        if self.gated.contains(&profile.email) {
            let mut open = self.open.clone();
            open.wait_for(|open| *open).await.unwrap();
        }
        self.inner.create_user(id, profile).await
    }

    async fn update_user(
        &self,
        id: uuid::Uuid,
        update: &rosterd::provision::provider::UserUpdate,
    ) -> Result<AuthUser, rosterd::provision::provider::ProviderError> {
        self.note("update_user", id.to_string());
        self.inner.update_user(id, update).await
    }

    async fn list_users(
        &self,
        page: u32,
        per_page: u32,
    ) -> Result<rosterd::provision::provider::Page, rosterd::provision::provider::ProviderError>
    {
        self.inner.list_users(page, per_page).await
    }

    async fn welcome(
        &self,
        id: uuid::Uuid,
        email: &str,
        redirect: &reqwest::Url,
    ) -> Result<reqwest::Url, rosterd::provision::provider::ProviderError> {
        self.note("welcome", id.to_string());
        self.inner.welcome(id, email, redirect).await
    }
}

/// A job claimed ahead waits for a slot without its lease being renewed.
/// When every slot is held past the lease, another worker takes the job
/// over; the first worker must then not run it as well.
#[sqlx::test]
async fn a_job_claimed_ahead_whose_lease_passed_to_another_worker_is_not_run(db: PgPool) {
    let mut h = Harness::local(db);
    for i in 0..5 {
        h.send(
            "user.created",
            &format!("rec{i}"),
            &format!("p{i}@x.io"),
            "active",
        )
        .await;
    }
    let log = CallLog::default();
    let (open, gate) = tokio::sync::watch::channel(false);
    // Short, so that waiting it out is quick; renewals of the jobs that run
    // come every third of it.
    let lease = Duration::from_secs(3);
    let worker = |name: &'static str, gated: &[&str]| {
        let provider = Logged {
            inner: h.provider.clone(),
            worker: name,
            log: log.clone(),
            gated: gated.iter().map(|e| e.to_string()).collect(),
            open: gate.clone(),
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy_with((*h.db.connect_options()).clone());
        Worker::new(
            pool,
            Arc::new(provider),
            WorkerConfig {
                concurrency: 2,
                lease,
                poll_interval: Duration::from_millis(200),
                max_attempts: 12,
            },
        )
    };
    let job = |email: &'static str| {
        let db = h.db.clone();
        async move {
            sqlx::query_as::<_, (String, bool)>(
                "select state, coalesce(lease_until < now(), false) from provisioning_jobs
                 where email = $1",
            )
            .bind(email)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let calls = |worker: &str, call: &str| -> Vec<String> {
        let log = log.lock().unwrap();
        let mut v: Vec<String> = log
            .iter()
            .filter(|(w, c, _)| *w == worker && *c == call)
            .map(|(_, _, s)| s.clone())
            .collect();
        v.sort();
        v
    };

    // A: p0 runs through, p1 and p2 then hold both slots (their creates
    // wait at the gate) and p3 is claimed ahead behind them.
    let a = worker("A", &["p1@x.io", "p2@x.io"]);
    let a = tokio::spawn(async move { a.drain().await });
    assert!(
        poll(Duration::from_secs(30), || async {
            calls("A", "create_user") == ["p0@x.io", "p1@x.io", "p2@x.io"]
                && job("p0@x.io").await.0 == "done"
                && job("p3@x.io").await.0 == "running"
                && job("p4@x.io").await.0 == "pending"
        })
        .await,
        "A holds both slots with p3 claimed ahead: {:?}",
        log.lock().unwrap()
    );
    // p3's lease runs out while it waits (p1's and p2's are renewed).
    assert!(
        poll(Duration::from_secs(30), || async { job("p3@x.io").await.1 }).await,
        "p3's lease ran out"
    );
    assert_eq!(job("p1@x.io").await, ("running".to_string(), false));
    assert_eq!(job("p2@x.io").await, ("running".to_string(), false));

    // B takes p3 over (and p4, which was due) and runs both.
    let b = tokio::time::timeout(Duration::from_secs(30), worker("B", &[]).drain())
        .await
        .expect("B is not held by anything")
        .unwrap();
    assert_eq!(b.done, 2, "{b:?}");
    assert_eq!(calls("B", "create_user"), ["p3@x.io", "p4@x.io"]);

    // A's slots free up: p3 is next in line there.
    open.send(true).unwrap();
    let a = tokio::time::timeout(Duration::from_secs(30), a)
        .await
        .expect("A finishes once the gate opens")
        .unwrap()
        .unwrap();
    assert_eq!((a.done, a.retried, a.dead), (3, 0, 0), "{a:?}");

    // Each person was created once, and A never acted on p3: no call of
    // A's names p3's email or p3's user.
    let users = h.all_users().await;
    let email_of = |subject: &str| {
        users
            .iter()
            .find(|u| u.id.to_string() == subject)
            .map_or(subject.to_string(), |u| u.email.clone())
    };
    let mut creates: Vec<String> = [calls("A", "create_user"), calls("B", "create_user")].concat();
    creates.sort();
    assert_eq!(
        creates,
        ["p0@x.io", "p1@x.io", "p2@x.io", "p3@x.io", "p4@x.io"]
    );
    let touched_by_a: std::collections::BTreeSet<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(w, _, _)| *w == "A")
        .map(|(_, _, s)| email_of(s))
        .collect();
    assert_eq!(
        touched_by_a.into_iter().collect::<Vec<_>>(),
        ["p0@x.io", "p1@x.io", "p2@x.io"],
        "A ran p3 after its lease passed to B: {:?}",
        log.lock().unwrap()
    );
    assert_eq!(users.len(), 5);
    let attempts: Vec<(String, i64)> = sqlx::query_as(
        "select j.email, count(a.id) from provisioning_jobs j
           left join provisioning_attempts a on a.job_id = j.id
          where j.state = 'done' group by j.email order by j.email",
    )
    .fetch_all(&h.db)
    .await
    .unwrap();
    let once = |e: &str| (e.to_string(), 1);
    assert_eq!(
        attempts,
        [
            once("p0@x.io"),
            once("p1@x.io"),
            once("p2@x.io"),
            once("p3@x.io"),
            once("p4@x.io")
        ]
    );
}

/// A user of ours whose roster link was removed by hand is an orphan: the
/// next job for its email bans it (no active holder) or links it back (an
/// active holder), keeping its id; a user without the marker is never
/// touched.
async fn an_orphan_is_banned_or_relinked_and_a_foreign_user_left_alone(mut h: Harness) {
    h.send("user.created", "recA", "ada@x.io", "active").await;
    h.send("user.created", "recB", "bob@x.io", "active").await;
    h.drain_all().await;
    let stranger = h.foreign_user("eve@x.io", "Eve").await;
    let (ada, bob) = (
        h.user("ada@x.io").await.unwrap(),
        h.user("bob@x.io").await.unwrap(),
    );
    sqlx::query("update roster set auth_user_id = null")
        .execute(&h.db)
        .await
        .unwrap();
    h.send("user.deleted", "recA", "", "").await;
    h.send("user.updated", "recB", "bob@x.io", "active").await;
    h.drain_all().await;
    let ada_now = h.user("ada@x.io").await.unwrap();
    assert_eq!(ada_now.id, ada.id);
    assert!(ada_now.banned, "the deleted person's orphan is banned");
    let bob_now = h.user("bob@x.io").await.unwrap();
    assert_eq!(
        bob_now.id, bob.id,
        "the active person's orphan is linked back"
    );
    assert!(!bob_now.banned);
    let linked: Option<uuid::Uuid> =
        sqlx::query_scalar("select auth_user_id from roster where id = 'recB'")
            .fetch_one(&h.db)
            .await
            .unwrap();
    assert_eq!(linked, Some(bob.id));
    assert_eq!(h.user("eve@x.io").await.unwrap(), stranger);
}

/// Runs a scenario against the local provider and against Supabase (the
/// GoTrue stand-in): the same semantics on both.
macro_rules! on_both_providers {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[sqlx::test]
            async fn local(db: PgPool) {
                super::$name(Harness::local(db)).await
            }
            #[sqlx::test]
            async fn supabase(db: PgPool) {
                super::$name(Harness::gotrue(db).await).await
            }
        }
    )*};
}

on_both_providers!(
    each_action_once_with_a_stable_id,
    recreated_record_keeps_the_persons_auth_user,
    email_change_follows_the_record,
    two_records_swapping_emails_both_end_right,
    a_user_that_existed_before_rosterd_is_adopted,
    an_inactive_person_never_gets_an_account,
    an_orphan_is_banned_or_relinked_and_a_foreign_user_left_alone,
);

// --- convergence -----------------------------------------------------------

fn history() -> impl Strategy<Value = (Vec<Value>, Vec<usize>, Vec<bool>)> {
    let ev = (0u8..3, 0u8..4, 0u8..4, any::<bool>(), 0u8..12);
    prop::collection::vec(ev, 1..24)
        .prop_map(|evs| {
            evs.iter()
                .enumerate()
                .map(|(i, &(kind, rec, email, active, secs))| {
                    let id = format!("evt_{:03}", 999 - i);
                    let at = format!("2026-11-22T10:00:{secs:02}Z");
                    let rec = format!("rec{rec}");
                    if kind == 2 {
                        delete_event(&id, &at, &rec)
                    } else {
                        let kind = if kind == 0 {
                            "user.created"
                        } else {
                            "user.updated"
                        };
                        let mut e = upsert_event(kind, &id, &at, &rec, &format!("p{email}@x.io"));
                        e["user"]["status"] = if active { "active" } else { "disabled" }.into();
                        e["user"]["groups"] = serde_json::json!(if email % 2 == 0 {
                            vec!["admins"]
                        } else {
                            vec![]
                        });
                        e
                    }
                })
                .collect::<Vec<_>>()
        })
        .prop_flat_map(|events| {
            let n = events.len();
            (Just(events), prop::collection::vec(1usize..=2, n))
        })
        .prop_flat_map(|(events, copies)| {
            let delivery: Vec<usize> = copies
                .iter()
                .enumerate()
                .flat_map(|(i, &c)| std::iter::repeat_n(i, c))
                .collect();
            let n = delivery.len();
            (
                Just(events),
                Just(delivery).prop_shuffle(),
                prop::collection::vec(prop::bool::weighted(0.3), n),
            )
        })
}

async fn reset(db: &PgPool) {
    sqlx::query(
        "truncate roster, inbound_events, event_replays, provisioning_jobs, provisioning_attempts, auth_accounts",
    )
    .execute(db)
    .await
    .unwrap();
}

/// Delivering `history` in order and then draining, or shuffled with
/// duplicates and drains at random points, gives the same logins.
fn logins_converge(supabase: bool, default_cases: u32) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(fresh_database());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default_cases);
    let mut runner = TestRunner::new(PropConfig {
        cases,
        failure_persistence: None,
        ..PropConfig::default()
    });
    // A fresh provider per delivery: its users are the state compared.
    let fresh = || async {
        let h = if supabase {
            Harness::gotrue(db.clone()).await
        } else {
            Harness::local(db.clone())
        };
        reset(&h.db).await;
        h
    };
    runner
        .run(&history(), |(events, delivery, drain_after)| {
            rt.block_on(async {
                let mut in_order: Vec<&Value> = events.iter().collect();
                in_order.sort_by_key(|e| (e["occurredAt"].to_string(), e["eventId"].to_string()));
                let h = fresh().await;
                for e in &in_order {
                    h.apply(e).await;
                }
                prop_assert_eq!(h.drain_all().await.dead, 0);
                let expected = h.login_state().await;

                // Shuffled, from three concurrent senders, while a worker
                // at concurrency 8 runs; a sender also drains at random
                // points, so two workers overlap as two replicas would.
                let h = Arc::new(fresh().await);
                let shutdown = tokio_util::sync::CancellationToken::new();
                let running = tokio::spawn(h.worker(8).run(shutdown.clone()));
                let mut senders = tokio::task::JoinSet::new();
                for s in 0..3 {
                    let h = h.clone();
                    let mine: Vec<(Value, bool)> = delivery
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % 3 == s)
                        .map(|(i, &k)| (events[k].clone(), drain_after[i]))
                        .collect();
                    senders.spawn(async move {
                        for (e, drain) in mine {
                            h.apply(&e).await;
                            if drain {
                                h.drain().await;
                            }
                        }
                    });
                }
                while let Some(r) = senders.join_next().await {
                    r.unwrap();
                }
                shutdown.cancel();
                running.await.unwrap();
                prop_assert_eq!(h.drain_all().await.dead, 0);
                prop_assert_eq!(h.login_state().await, expected);
                Ok::<(), TestCaseError>(())
            })
        })
        .unwrap();
}

#[test]
fn any_order_with_the_worker_at_any_point_gives_the_same_logins() {
    logins_converge(false, 48);
}

#[test]
fn supabase_converges_like_in_order_delivery() {
    logins_converge(true, 16);
}

// --- Supabase failure handling, against the stand-in ------------------------

#[sqlx::test]
async fn a_create_whose_answer_was_lost_links_the_same_user(db: PgPool) {
    let mut h = Harness::gotrue(db).await;
    let g = h.gotrue.clone().unwrap();
    g.lose_next_create();
    h.send("user.created", "recA", "ada@x.io", "active").await;
    let first = h.drain().await;
    assert_eq!(
        first.retried, 1,
        "the lost answer looks transient: {first:?}"
    );
    assert_eq!(g.users().len(), 1, "the create did commit");
    h.make_due().await;
    assert_eq!(h.drain().await.done, 1);
    let users = g.users();
    assert_eq!(users.len(), 1, "linked, never a second user");
    let link: Option<uuid::Uuid> =
        sqlx::query_scalar("select auth_user_id from roster where id = 'recA'")
            .fetch_one(&h.db)
            .await
            .unwrap();
    assert_eq!(link, Some(users[0].id));
}

// --- a taken id or email, in either shape GoTrue versions answer it -------

/// The Supabase harness with the stand-in answering taken ids and emails
/// in `shape`.
async fn gotrue_answering(db: PgPool, shape: Shape) -> (Harness, GoTrue) {
    let h = Harness::gotrue(db).await;
    let g = h.gotrue.clone().unwrap();
    g.set_conflict_shape(shape);
    (h, g)
}

/// One drain settles it: no retry, no dead job, and the answer under test
/// was met (`met` picks its count from what the stand-in refused).
fn assert_settled_in_one_go(
    r: &DrainReport,
    g: &GoTrue,
    shape: Shape,
    met: fn(&gotrue::Conflicts) -> usize,
) {
    assert_eq!((r.retried, r.dead), (0, 0), "{shape:?}: {r:?}");
    assert!(
        met(&g.conflicts()) >= 1,
        "{shape:?}: the answer under test never came: {:?}",
        g.conflicts()
    );
}

/// A re-created record under an email whose deterministic id went with
/// the old record's new email: the create meets a taken id.
async fn create_onto_a_taken_id_uses_another(db: PgPool, shape: Shape) {
    let (mut h, g) = gotrue_answering(db, shape).await;
    h.send("user.created", "recA", "old@x.io", "active").await;
    h.drain_all().await;
    h.send("user.updated", "recA", "new@x.io", "active").await;
    h.drain_all().await;
    let moved = h.user("new@x.io").await.unwrap();
    assert_eq!(g.conflicts().total(), 0);

    h.send("user.created", "recB", "old@x.io", "active").await;
    let r = h.drain().await;
    assert_settled_in_one_go(&r, &g, shape, |c| c.id_on_create);
    assert_eq!(r.done, 1, "{shape:?}");
    let old = h.user("old@x.io").await.expect("created under another id");
    assert_ne!(old.id, moved.id);
    assert_eq!(old.roster_id.as_deref(), Some("recB"));
    assert!(!old.banned);
    assert_eq!(h.user("new@x.io").await.unwrap(), moved, "{shape:?}");
    assert_eq!(g.users().len(), 2);
}

/// A user from before rosterd holds the email: the create meets a taken
/// email, and the run adopts the user.
async fn create_onto_a_taken_email_adopts(db: PgPool, shape: Shape) {
    let (mut h, g) = gotrue_answering(db, shape).await;
    let existing = h.foreign_user("ada@x.io", "Pre-existing").await;
    h.send("user.created", "recA", "ada@x.io", "active").await;
    let r = h.drain().await;
    assert_settled_in_one_go(&r, &g, shape, |c| c.email_on_create);
    assert_eq!(r.done, 1, "{shape:?}");
    let users = g.users();
    assert_eq!(users.len(), 1, "adopted, not duplicated");
    assert_eq!(users[0].id, existing.id);
    assert_eq!(h.action_for("ada@x.io").await, "updated");
    assert_eq!(
        h.user("ada@x.io").await.unwrap().roster_id.as_deref(),
        Some("recA")
    );
}

/// A person moves to an email on which an unlinked user of ours sits: the
/// email change meets a taken email, the run parks (and bans) that user
/// and moves the person's own user there.
async fn an_email_change_onto_a_taken_email_parks_the_holder(db: PgPool, shape: Shape) {
    let (mut h, g) = gotrue_answering(db, shape).await;
    h.send("user.created", "recA", "ada@x.io", "active").await;
    h.drain_all().await;
    let ada = h.user("ada@x.io").await.unwrap();
    // Ours (the marker) but linked to no row, as a crash could leave it.
    let stray = h
        .provider
        .create_user(
            uuid::Uuid::new_v4(),
            &rosterd::provision::provider::Profile {
                email: "grace@x.io".into(),
                name: None,
                roles: vec![],
                roster_id: "recGone".into(),
            },
        )
        .await
        .unwrap();
    h.send("user.updated", "recA", "grace@x.io", "active").await;
    let r = h.drain().await;
    assert_settled_in_one_go(&r, &g, shape, |c| c.email_on_update);
    let grace = h.user("grace@x.io").await.unwrap();
    assert_eq!(grace.id, ada.id, "the person's own user has the email");
    assert!(!grace.banned);
    let parked = g.user(stray.id).unwrap();
    assert!(parked.email.ends_with("@rosterd.invalid"), "{parked:?}");
    assert!(parked.is_banned());
    assert!(h.user("ada@x.io").await.is_none());
}

/// `user_already_exists` for a taken email, as some versions send it: the
/// run reads what is taken and adopts, as for `email_exists`.
#[sqlx::test]
async fn user_already_exists_for_a_taken_email_adopts(db: PgPool) {
    let mut h = Harness::gotrue(db).await;
    let g = h.gotrue.clone().unwrap();
    let existing = h.foreign_user("ada@x.io", "Pre-existing").await;
    g.fail_next(
        1,
        Failure::Canned {
            status: 422,
            headers: vec![("content-type", "application/json".into())],
            body: r#"{"code":"user_already_exists","message":"User already registered"}"#.into(),
        },
    );
    h.send("user.created", "recA", "ada@x.io", "active").await;
    let r = h.drain().await;
    assert_eq!((r.done, r.retried, r.dead), (1, 0, 0), "{r:?}");
    assert_eq!(
        g.requests("POST", "/admin/users"),
        1,
        "the canned answer was the create"
    );
    let users = g.users();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id, existing.id);
    assert_eq!(
        h.user("ada@x.io").await.unwrap().roster_id.as_deref(),
        Some("recA")
    );
}

macro_rules! in_both_shapes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[sqlx::test]
            async fn status_500(db: PgPool) {
                super::$name(db, Shape::Status500).await
            }
            #[sqlx::test]
            async fn status_422(db: PgPool) {
                super::$name(db, Shape::Status422).await
            }
        }
    )*};
}

in_both_shapes!(
    create_onto_a_taken_id_uses_another,
    create_onto_a_taken_email_adopts,
    an_email_change_onto_a_taken_email_parks_the_holder,
);

#[sqlx::test]
async fn rate_limited_job_waits_at_least_retry_after(db: PgPool) {
    let mut h = Harness::gotrue(db).await;
    h.gotrue.as_ref().unwrap().fail_next(
        1,
        Failure::RateLimited {
            retry_after_secs: 7,
        },
    );
    h.send("user.created", "recA", "ada@x.io", "active").await;
    assert_eq!(h.drain().await.retried, 1);
    let (state, wait, error): (String, f64, String) = sqlx::query_as(
        "select state, extract(epoch from run_at - updated_at)::float8, last_error from provisioning_jobs",
    )
    .fetch_one(&h.db)
    .await
    .unwrap();
    assert_eq!(state, "pending");
    assert!(wait >= 7.0, "scheduled {wait}s after the 429");
    assert!(
        error.contains("429") || error.to_lowercase().contains("rate"),
        "{error}"
    );
    // Nothing runs before its time.
    assert_eq!(h.drain().await, DrainReport::default());
    h.make_due().await;
    assert_eq!(h.drain().await.done, 1);
    assert!(h.user("ada@x.io").await.is_some());
}

#[sqlx::test]
async fn three_server_errors_then_success_ends_created(db: PgPool) {
    let mut h = Harness::gotrue(db).await;
    h.gotrue
        .as_ref()
        .unwrap()
        .fail_next(3, Failure::ServerError);
    h.send("user.created", "recA", "ada@x.io", "active").await;
    let mut rounds = 0;
    loop {
        let r = h.drain().await;
        rounds += 1;
        if r.done == 1 {
            break;
        }
        assert_eq!((r.retried, r.dead), (1, 0), "{r:?}");
        assert!(rounds < 5, "should have succeeded by now");
        h.make_due().await;
    }
    assert_eq!(h.action_for("ada@x.io").await, "created");
    assert_eq!(h.gotrue.as_ref().unwrap().users().len(), 1);
    let failed: i64 = sqlx::query_scalar(
        "select count(*) from provisioning_attempts where error is not null and transient",
    )
    .fetch_one(&h.db)
    .await
    .unwrap();
    assert!(
        failed >= 1 && failed == rounds - 1,
        "{failed} transient failures recorded over {rounds} rounds"
    );
}

#[sqlx::test]
async fn a_bad_request_is_dead_after_one_attempt(db: PgPool) {
    let mut h = Harness::gotrue(db).await;
    h.gotrue.as_ref().unwrap().fail_next(
        1,
        Failure::Canned {
            status: 400,
            headers: vec![],
            body: r#"{"code":"validation_failed","message":"Unable to validate email address: invalid format"}"#.into(),
        },
    );
    h.send("user.created", "recA", "ada@x.io", "active").await;
    let r = h.drain().await;
    assert_eq!((r.done, r.retried, r.dead), (0, 0, 1));
    let (state, attempts, error): (String, i32, String) =
        sqlx::query_as("select state, attempts, last_error from provisioning_jobs")
            .fetch_one(&h.db)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("dead", 1));
    assert!(
        error.contains("400") || error.contains("validat"),
        "{error}"
    );
    assert!(h.gotrue.as_ref().unwrap().users().is_empty());
}

/// A provider error whose text carries a NUL (Postgres `text` refuses it)
/// is still recorded: the job goes dead with the error, not back to its
/// lease.
#[sqlx::test]
async fn a_provider_error_with_a_nul_is_recorded(db: PgPool) {
    let mut h = Harness::gotrue(db).await;
    h.gotrue.as_ref().unwrap().fail_next(
        1,
        Failure::Canned {
            status: 400,
            headers: vec![("content-type", "application/json".into())],
            body: r#"{"code":400,"error_code":"validation_failed","msg":"bad\u0000byte"}"#.into(),
        },
    );
    h.send("user.created", "recA", "ada@x.io", "active").await;
    assert_eq!(h.drain().await.dead, 1);
    let (state, error): (String, String) =
        sqlx::query_as("select state, last_error from provisioning_jobs")
            .fetch_one(&h.db)
            .await
            .unwrap();
    assert_eq!(state, "dead");
    assert!(error.contains("bad\u{fffd}byte"), "{error}");
}
