//! `GET /metrics`: counters move with the traffic that should move them,
//! and the database gauges say what the database holds.
//!
//! Counters are process-wide and this binary runs its tests in parallel, so
//! exact deltas are measured on the real binary in a process of its own.
//! The database gauges are read per scrape from the app's own database,
//! so in-process apps are fine for those.

use crate::airtable::{self, Airtable, Failure};
use crate::helpers::*;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// One scrape: every sample, keyed by name and sorted labels.
#[derive(Debug, Clone)]
struct Scrape {
    text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let mut samples = HashMap::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            let (name, labels) = parse_series(series);
            let prev = samples.insert(key(&name, &labels), value);
            assert!(prev.is_none(), "one sample per series: {line}");
        }
        Self { text, samples }
    }

    /// The sample's value; a series not (yet) rendered counts as 0.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .get(&key(name, &labels))
            .copied()
            .unwrap_or(0.0)
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples.contains_key(&key(name, &labels))
    }

    /// Every series of `name` with its labels.
    fn series(&self, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        self.samples
            .iter()
            .filter_map(|(k, v)| {
                let (n, labels) = parse_series(k);
                (n == name).then_some((labels, *v))
            })
            .collect()
    }

    /// Sum of every series of `name`.
    fn total(&self, name: &str) -> f64 {
        self.series(name).iter().map(|(_, v)| v).sum()
    }
}

fn key(name: &str, labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    if inner.is_empty() {
        return name.to_string();
    }
    format!("{name}{{{}}}", inner.join(","))
}

/// `name{a="x",b="y"}` → name and labels, honouring the format's escapes
/// (route templates hold braces).
fn parse_series(series: &str) -> (String, BTreeMap<String, String>) {
    let Some((name, rest)) = series.split_once('{') else {
        return (series.to_string(), BTreeMap::new());
    };
    let mut labels = BTreeMap::new();
    if rest == "}" {
        return (name.to_string(), BTreeMap::new());
    }
    let mut chars = rest.chars().peekable();
    loop {
        let label: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if label.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "{series}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("dangling escape in {series}"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(label.trim_start_matches(',').to_string(), value);
        match chars.next() {
            Some(',') if chars.peek() == Some(&'}') => {
                chars.next();
                break;
            }
            Some(',') => {}
            Some('}') | None => break,
            Some(c) => panic!("unexpected {c:?} in {series}"),
        }
    }
    (name.to_string(), labels)
}

#[test]
fn the_series_parser_reads_labels_with_braces_escapes_and_order() {
    let s = Scrape::parse(
        "# HELP x y\n# TYPE x counter\nx 3\n\
         h_bucket{route=\"/a/{id}\",le=\"0.5\"} 2\n\
         q{b=\"2\",a=\"say \\\"hi\\\"\"} 1.5\n"
            .to_string(),
    );
    assert_eq!(s.get("x", &[]), 3.0);
    assert_eq!(
        s.get("h_bucket", &[("le", "0.5"), ("route", "/a/{id}")]),
        2.0
    );
    assert_eq!(s.get("q", &[("a", "say \"hi\""), ("b", "2")]), 1.5);
    assert!(!s.has("q", &[("a", "say")]));
    assert_eq!(s.get("absent", &[]), 0.0);
}

/// `after - before` for one series.
fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.get(name, labels) - before.get(name, labels)
}

/// Every series of `name` that moved, as (labels, delta).
fn moved(before: &Scrape, after: &Scrape, name: &str) -> BTreeMap<String, f64> {
    after
        .series(name)
        .into_iter()
        .filter_map(|(labels, v)| {
            let d = v - before
                .samples
                .get(&key(name, &labels))
                .copied()
                .unwrap_or(0.0);
            (d != 0.0).then(|| (key(name, &labels), d))
        })
        .collect()
}

/// The real binary, serving on its own port; killed when dropped.
struct Service {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    async fn start(opts: &PgConnectOptions, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", url_of(opts))
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("AIRTABLE_USER_SYNC_SECRET", SECRET)
            .env("LOGIN_API_TOKENS", LOGIN_TOKEN)
            // Read the database gauges on every scrape unless a test says.
            .env("METRICS_GAUGES_MAX_AGE_SECS", "0")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let svc = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        wait_ready(&svc.client, &svc.base).await;
        svc
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn scrape(&self) -> Scrape {
        let resp = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        Scrape::parse(resp.text().await.unwrap())
    }

    async fn post(&self, body: &[u8], headers: &[(&str, String)]) -> u16 {
        let mut req = self
            .client
            .post(self.url("/api/sync/users/inbound"))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.unwrap().status().as_u16()
    }

    async fn post_signed(&self, event: &serde_json::Value) -> u16 {
        let raw = serde_json::to_vec(event).unwrap();
        let sig = plain_signature(SECRET, &raw);
        self.post(&raw, &[("x-signature", sig)]).await
    }

    async fn lookup(&self, query: &str) -> u16 {
        self.client
            .get(self.url(&format!("/api/users/lookup?{query}")))
            .bearer_auth(LOGIN_TOKEN)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Scrapes until `done` holds for a scrape, or the deadline passes.
    async fn scrape_until(&self, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.scrape().await;
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn jobs_by_state(db: &PgPool) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "select state, count(*) from provisioning_jobs group by state",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

const EVENTS: &str = "rosterd_events_total";
const HTTP_COUNT: &str = "rosterd_http_request_duration_seconds_count";
const INBOUND: &str = "/api/sync/users/inbound";
const LOOKUP: &str = "/api/users/lookup";

#[sqlx::test]
async fn counters_move_with_the_traffic_that_should_move_them(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let db = migrated(&opts).await;
    let at = Airtable::start().await;
    let grace = at.insert(json!({"Email": "grace@x.io", "Name": "Grace", "Status": "disabled"}));
    let svc = Service::start(
        &opts,
        &[
            ("WORKER_ENABLED", "true"),
            ("AIRTABLE_API_URL", at.url()),
            ("AIRTABLE_BASE_ID", airtable::BASE),
            ("AIRTABLE_TABLE", airtable::TABLE),
            ("AIRTABLE_API_KEY", airtable::KEY),
        ],
    )
    .await;
    let before = svc.scrape().await;

    // Webhook traffic: one of each outcome, and refusals before the apply path.
    let created = upsert_event(
        "user.created",
        "evt_a1",
        "2026-11-22T10:00:00Z",
        "recA",
        "ada@x.io",
    );
    assert_eq!(svc.post_signed(&created).await, 200, "applied");
    assert_eq!(svc.post_signed(&created).await, 200, "duplicate");
    let older = upsert_event(
        "user.updated",
        "evt_a0",
        "2026-11-22T09:00:00Z",
        "recA",
        "ada@x.io",
    );
    assert_eq!(svc.post_signed(&older).await, 200, "stale");
    let mut changed = created.clone();
    changed["user"]["name"] = json!("Someone Else");
    assert_eq!(svc.post_signed(&changed).await, 409, "event id conflict");
    let raw = serde_json::to_vec(&created).unwrap();
    let wrong = plain_signature("another-secret-0123456789", &raw);
    assert_eq!(svc.post(&raw, &[("x-signature", wrong)]).await, 401);
    assert_eq!(svc.post(&raw, &[]).await, 401, "unsigned");
    let junk = b"{not json".to_vec();
    let sig = plain_signature(SECRET, &junk);
    assert_eq!(svc.post(&junk, &[("x-signature", sig)]).await, 400);
    let invalid = upsert_event(
        "user.created",
        "evt_b1",
        "2026-11-22T10:00:00Z",
        "recB",
        "not-an-email",
    );
    assert_eq!(svc.post_signed(&invalid).await, 422);

    // The worker provisions ada (one job).
    let provisioned = svc
        .scrape_until("ada's job", |s| {
            delta(
                &before,
                s,
                "rosterd_jobs_finished_total",
                &[("result", "done")],
            ) >= 1.0
        })
        .await;
    assert_eq!(
        moved(&before, &provisioned, "rosterd_jobs_finished_total"),
        BTreeMap::from([(
            "rosterd_jobs_finished_total{result=\"done\"}".to_string(),
            1.0
        )])
    );

    // Login lookups: a roster hit, directory misses, hits and failures.
    assert_eq!(svc.lookup("email=ada@x.io").await, 200);
    assert_eq!(svc.lookup("email=nobody@x.io").await, 404);
    assert_eq!(
        svc.lookup("email=grace@x.io").await,
        403,
        "disabled in the directory"
    );
    assert_eq!(svc.lookup("id=recZZZZZZZZZZZZZZ").await, 404);
    at.fail_next(1, Failure::ServerError);
    assert_eq!(svc.lookup("email=down@x.io").await, 503);
    // Last: a 429 pauses the directory for 30 s, past the lookup's deadline.
    at.fail_next(1, Failure::RateLimited);
    assert_eq!(svc.lookup("email=limited@x.io").await, 503);
    let unauthorized = svc
        .client
        .get(svc.url("/api/users/lookup?email=ada@x.io"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let unmatched = svc
        .client
        .get(svc.url("/no/such/path/evt_secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(unmatched.status(), 404);

    // Grace's row came from the directory and queued a job of its own.
    let after = svc
        .scrape_until("grace's job", |s| {
            delta(
                &before,
                s,
                "rosterd_jobs_finished_total",
                &[("result", "done")],
            ) >= 2.0
        })
        .await;

    let d = |name: &str, labels: &[(&str, &str)]| delta(&before, &after, name, labels);
    let ev = |t: &str, o: &str, s: &str| d(EVENTS, &[("type", t), ("outcome", o), ("source", s)]);
    assert_eq!(ev("user.created", "applied", "webhook"), 1.0);
    assert_eq!(ev("user.created", "duplicate", "webhook"), 1.0);
    assert_eq!(ev("user.updated", "stale", "webhook"), 1.0);
    assert_eq!(ev("user.created", "conflict", "webhook"), 1.0);
    assert_eq!(ev("user.updated", "applied", "readthrough"), 1.0);
    // Refused requests never reach the apply path.
    assert_eq!(
        after.total(EVENTS) - before.total(EVENTS),
        5.0,
        "{:?}",
        moved(&before, &after, EVENTS)
    );
    assert_eq!(d("rosterd_signature_failures_total", &[]), 2.0);

    // Ada was created; grace, disabled with no account, needed nothing.
    assert_eq!(
        moved(&before, &after, "rosterd_provisions_total"),
        BTreeMap::from([
            (
                "rosterd_provisions_total{action=\"created\"}".to_string(),
                1.0
            ),
            (
                "rosterd_provisions_total{action=\"unchanged\"}".to_string(),
                1.0
            ),
        ])
    );
    // Ada cost one create; grace one look-up (is a user of ours on her
    // email, left behind by a crash, that must be banned?).
    assert_eq!(
        moved(&before, &after, "rosterd_provider_calls_total"),
        BTreeMap::from([
            (
                "rosterd_provider_calls_total{action=\"create_user\",result=\"ok\"}".to_string(),
                1.0
            ),
            (
                "rosterd_provider_calls_total{action=\"find_by_email\",result=\"ok\"}".to_string(),
                1.0
            ),
        ])
    );
    assert_eq!(
        d(
            "rosterd_provider_call_duration_seconds_count",
            &[("action", "create_user")]
        ),
        1.0
    );
    assert_eq!(
        moved(&before, &after, "rosterd_jobs_finished_total"),
        BTreeMap::from([(
            "rosterd_jobs_finished_total{result=\"done\"}".to_string(),
            2.0
        )])
    );

    let dir = |op: &str, r: &str| {
        d(
            "rosterd_directory_calls_total",
            &[("operation", op), ("result", r)],
        )
    };
    assert_eq!(dir("find_by_email", "not_found"), 1.0);
    assert_eq!(dir("find_by_email", "found"), 1.0);
    assert_eq!(dir("get", "not_found"), 1.0);
    assert_eq!(dir("find_by_email", "unavailable"), 2.0);
    assert_eq!(
        after.total("rosterd_directory_calls_total")
            - before.total("rosterd_directory_calls_total"),
        5.0
    );
    assert_eq!(at.total_requests(), 5, "one upstream request per call");
    assert_eq!(d("rosterd_directory_rate_limited_total", &[]), 1.0);
    assert_eq!(
        d(
            "rosterd_directory_call_duration_seconds_count",
            &[("operation", "find_by_email")]
        ),
        4.0
    );

    let lookups = |o: &str| d("rosterd_lookups_total", &[("outcome", o)]);
    assert_eq!(lookups("roster"), 1.0);
    assert_eq!(lookups("not_found"), 2.0);
    assert_eq!(lookups("inactive"), 1.0);
    assert_eq!(lookups("directory_unavailable"), 2.0);
    assert_eq!(
        after.total("rosterd_lookups_total") - before.total("rosterd_lookups_total"),
        6.0,
        "a refused token is not a lookup"
    );

    // Latency histograms by route template and status.
    let req = |method: &str, route: &str, status: &str| {
        d(
            HTTP_COUNT,
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(req("POST", INBOUND, "200"), 3.0);
    assert_eq!(req("POST", INBOUND, "409"), 1.0);
    assert_eq!(req("POST", INBOUND, "401"), 2.0);
    assert_eq!(req("POST", INBOUND, "400"), 1.0);
    assert_eq!(req("POST", INBOUND, "422"), 1.0);
    assert_eq!(req("GET", LOOKUP, "200"), 1.0);
    assert_eq!(req("GET", LOOKUP, "404"), 2.0);
    assert_eq!(req("GET", LOOKUP, "403"), 1.0);
    assert_eq!(req("GET", LOOKUP, "503"), 2.0);
    assert_eq!(req("GET", LOOKUP, "401"), 1.0);
    assert_eq!(req("GET", "unmatched", "404"), 1.0);
    let ok_inbound = [("method", "POST"), ("route", INBOUND), ("status", "200")];
    let buckets: Vec<_> = after
        .series("rosterd_http_request_duration_seconds_bucket")
        .into_iter()
        .filter(|(l, _)| {
            ok_inbound
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(
        buckets.len() > 5,
        "real buckets, not a summary: {buckets:?}"
    );
    let mut inf = ok_inbound.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        after.get("rosterd_http_request_duration_seconds_bucket", &inf),
        after.get(HTTP_COUNT, &ok_inbound)
    );
    assert!(after.has("rosterd_http_request_duration_seconds_sum", &ok_inbound));
    assert!(after
        .text
        .contains("# TYPE rosterd_http_request_duration_seconds histogram"));
    assert!(after
        .text
        .contains("# HELP rosterd_events_total Events through the apply path"));

    // The database gauges agree with the database once the queue is drained.
    let jobs = jobs_by_state(&db).await;
    for state in ["pending", "running", "done", "dead"] {
        let want = jobs.get(state).copied().unwrap_or(0) as f64;
        assert_eq!(
            after.get("rosterd_jobs", &[("state", state)]),
            want,
            "{state}"
        );
    }
    assert_eq!(after.get("rosterd_jobs", &[("state", "done")]), 2.0);
    assert_eq!(after.get("rosterd_queue_depth", &[]), 0.0);
    assert_eq!(after.get("rosterd_database_up", &[]), 1.0);

    // Nothing that names a person, an event or a secret is ever a label.
    for needle in [
        "@",
        "evt_",
        "recA",
        "recZ",
        grace.as_str(),
        "/no/such",
        SECRET,
        LOGIN_TOKEN,
    ] {
        assert!(!after.text.contains(needle), "{needle} in the scrape");
    }
}

#[sqlx::test]
async fn database_gauges_match_the_database(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let events = [
        upsert_event(
            "user.created",
            "e1",
            "2026-11-22T10:00:00Z",
            "recA",
            "ada@x.io",
        ),
        upsert_event(
            "user.created",
            "e2",
            "2026-11-22T10:00:00Z",
            "recB",
            "bob@x.io",
        ),
        upsert_event(
            "user.created",
            "e3",
            "2026-11-22T10:00:00Z",
            "recC",
            "twin@x.io",
        ),
        upsert_event(
            "user.created",
            "e4",
            "2026-11-22T10:01:00Z",
            "recD",
            "twin@x.io",
        ),
        delete_event("e5", "2026-11-22T10:00:00Z", "recE"),
        json!({"eventId": "e6", "eventType": "user.created", "occurredAt": "2026-11-22T10:00:00Z",
               "user": {"id": "recF", "email": "fay@x.io", "status": "disabled"}}),
    ];
    for e in &events {
        assert_eq!(app.post_signed(e).await.status(), 200);
    }
    // A retry scheduled for later is pending but not claimable; a dead job
    // is neither.
    sqlx::raw_sql(
        "insert into provisioning_jobs (email, run_at) values ('later@x.io', now() + interval '1 hour');
         insert into provisioning_jobs (email, state) values ('gone@x.io', 'dead')",
    )
    .execute(&db)
    .await
    .unwrap();

    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let s = Scrape::parse(resp.text().await.unwrap());
    assert_eq!(s.get("rosterd_database_up", &[]), 1.0);

    let jobs = jobs_by_state(&db).await;
    for state in ["pending", "running", "done", "dead"] {
        let want = jobs.get(state).copied().unwrap_or(0) as f64;
        assert_eq!(s.get("rosterd_jobs", &[("state", state)]), want, "{state}");
    }
    // ada, bob, twin, fay and the later one; no worker runs here.
    assert_eq!(s.get("rosterd_jobs", &[("state", "pending")]), 5.0);
    assert_eq!(s.get("rosterd_jobs", &[("state", "dead")]), 1.0);
    let due: i64 = sqlx::query_scalar(
        "select count(*) from provisioning_jobs where state = 'pending' and run_at <= now()",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(due, 4);
    assert_eq!(s.get("rosterd_queue_depth", &[]), due as f64);
    let oldest = s.get("rosterd_queue_oldest_seconds", &[]);
    assert!(s.has("rosterd_queue_oldest_seconds", &[]) && oldest >= 0.0);

    let rows = |status: &str| s.get("rosterd_roster_rows", &[("status", status)]);
    assert_eq!(
        (rows("active"), rows("disabled"), rows("deleted")),
        (4.0, 1.0, 1.0)
    );
    // recC and recD are both live with twin@x.io.
    assert_eq!(s.get("rosterd_roster_conflicts", &[]), 1.0);

    // Resolving it (deleting the newer record) clears the gauge.
    let resolve = delete_event("e7", "2026-11-22T10:02:00Z", "recD");
    assert_eq!(app.post_signed(&resolve).await.status(), 200);
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    let s = Scrape::parse(resp.text().await.unwrap());
    assert_eq!(s.get("rosterd_roster_conflicts", &[]), 0.0);
    assert!(s.has("rosterd_roster_conflicts", &[]));
}

#[tokio::test]
async fn a_scrape_without_the_database_still_answers_with_the_process_counters() {
    // Nothing listens on port 1: every connection attempt is refused.
    let db = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://rosterd@127.0.0.1:1/nothing")
        .unwrap();
    let app = TestApp::spawn(db).await;
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let s = Scrape::parse(resp.text().await.unwrap());
    assert_eq!(s.get("rosterd_database_up", &[]), 0.0);
    assert!(s.has("rosterd_database_up", &[]));
    assert!(s.series("rosterd_jobs").is_empty(), "no stale gauges");
    assert!(!s.has("rosterd_queue_depth", &[]));
    assert!(s
        .text
        .contains("# TYPE rosterd_signature_failures_total counter"));
}

#[sqlx::test]
async fn operator_replays_are_counted_and_dry_runs_are_not(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let _db = migrated(&opts).await;
    let tokens = format!("ops:{ADMIN_TOKEN}");
    let svc = Service::start(&opts, &[("ADMIN_TOKENS", tokens.as_str())]).await;
    let event = upsert_event(
        "user.created",
        "evt_r1",
        "2026-11-22T10:00:00Z",
        "recR",
        "r@x.io",
    );
    assert_eq!(svc.post_signed(&event).await, 200);
    let before = svc.scrape().await;
    let replay = |path: &str, body: serde_json::Value| {
        svc.client
            .post(svc.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let r = replay("/api/admin/events/evt_r1/replay", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let dry = replay(
        "/api/admin/events/replay",
        json!({"userId": "recR", "dryRun": true}),
    )
    .await
    .unwrap();
    assert_eq!(dry.status(), 200);
    let after = svc.scrape().await;
    assert_eq!(
        moved(&before, &after, EVENTS),
        BTreeMap::from([(
            format!("{EVENTS}{{outcome=\"stale\",source=\"replay\",type=\"user.created\"}}"),
            1.0
        )])
    );
}

/// With a max age, scrapes answer from the last reading of the database
/// gauges (a scrape costs no roster scan) and say how old it is; with the
/// max age at zero (the other tests) every scrape reads them.
#[sqlx::test]
async fn database_gauges_are_read_at_most_once_per_max_age(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let db = migrated(&opts).await;
    let svc = Service::start(
        &opts,
        &[
            ("METRICS_GAUGES_MAX_AGE_SECS", "3600"),
            ("WORKER_ENABLED", "false"),
        ],
    )
    .await;
    let first = svc.scrape().await;
    assert_eq!(first.get("rosterd_database_up", &[]), 1.0);
    assert_eq!(
        first.get("rosterd_roster_rows", &[("status", "active")]),
        0.0
    );
    sqlx::query(
        "insert into roster (id, email, profile_status, profile_at, profile_event_id, last_at, last_event_id)
         values ('recA', 'ada@x.io', 'active', now(), 'e1', now(), 'e1')",
    )
    .execute(&db)
    .await
    .unwrap();
    let second = svc.scrape().await;
    assert_eq!(
        second.get("rosterd_roster_rows", &[("status", "active")]),
        0.0,
        "the reading is reused within the max age"
    );
    let (a, b) = (
        first.get("rosterd_database_gauges_age_seconds", &[]),
        second.get("rosterd_database_gauges_age_seconds", &[]),
    );
    assert!(a >= 0.0 && b >= a, "the age grows: {a} then {b}");
    drop(svc);

    // Past the max age a scrape still answers at once and refreshes the
    // reading behind it: a later scrape shows the new count.
    let svc = Service::start(
        &opts,
        &[
            ("METRICS_GAUGES_MAX_AGE_SECS", "1"),
            ("WORKER_ENABLED", "false"),
        ],
    )
    .await;
    let active = |s: &Scrape| s.get("rosterd_roster_rows", &[("status", "active")]);
    assert_eq!(active(&svc.scrape().await), 1.0);
    sqlx::query(
        "insert into roster (id, email, profile_status, profile_at, profile_event_id, last_at, last_event_id)
         values ('recB', 'bob@x.io', 'active', now(), 'e2', now(), 'e2')",
    )
    .execute(&db)
    .await
    .unwrap();
    let refreshed = svc
        .scrape_until("the refreshed reading", |s| active(s) == 2.0)
        .await;
    assert!(refreshed.get("rosterd_database_gauges_age_seconds", &[]) <= 4.0);
}

/// SCIM requests are counted by operation (route and method) and status,
/// and SCIM writes as events of source `scim`.
#[sqlx::test]
async fn scim_requests_are_counted_by_operation_and_status(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let token = format!("idp:{SCIM_TOKEN}");
    let svc = Service::start(&opts, &[("SCIM_TOKENS", token.as_str())]).await;
    let user = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "metrics@example.com",
    });
    let post = |body: String| {
        svc.client
            .post(svc.url("/scim/v2/Users"))
            .bearer_auth(SCIM_TOKEN)
            .header("content-type", "application/scim+json")
            .body(body)
            .send()
    };
    assert_eq!(post(user.to_string()).await.unwrap().status(), 201);
    assert_eq!(post(user.to_string()).await.unwrap().status(), 409);
    assert_eq!(post("{".into()).await.unwrap().status(), 400);
    let s = svc.scrape().await;
    let count = |status: &str| {
        s.get(
            "rosterd_http_request_duration_seconds_count",
            &[
                ("method", "POST"),
                ("route", "/scim/v2/Users"),
                ("status", status),
            ],
        )
    };
    assert_eq!((count("201"), count("409"), count("400")), (1.0, 1.0, 1.0));
    assert_eq!(
        s.get(
            "rosterd_events_total",
            &[
                ("source", "scim"),
                ("type", "user.created"),
                ("outcome", "applied")
            ]
        ),
        1.0
    );
}
