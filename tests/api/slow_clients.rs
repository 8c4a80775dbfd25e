//! Slow and idle clients against the real binary (docs/contract.md §9).
//! Sockets that hold half a request head, trickle a body a byte at a
//! time, or sit idle after a response are closed at the configured
//! time-outs while real requests keep being answered; beyond the
//! connection cap a new connection waits for a slot and is then served;
//! shutdown does not wait for slow clients; bad values stop start-up.
//!
//! Time-outs are asserted loosely, so that a loaded machine cannot fail
//! them: closed within [`GRACE`] after the time-out, and not before half
//! of it. (The server's clock for a head or a body starts after the
//! client's here, which starts before connecting; for an idle connection
//! it starts when the response leaves, a little before the client's.)

use crate::cli::{assert_config_error, rosterd, DB};
use crate::helpers::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long after its time-out a slow socket may still be open.
const GRACE: Duration = Duration::from_secs(30);

const HEADER: &str = "HTTP_HEADER_READ_TIMEOUT_SECS";
const BODY: &str = "HTTP_BODY_READ_TIMEOUT_SECS";
const IDLE: &str = "HTTP_IDLE_TIMEOUT_SECS";

struct Server {
    child: Child,
    addr: SocketAddr,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(opts: &PgConnectOptions, env: &[(&str, &str)]) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", url_of(opts))
            .env("BIND_ADDR", addr.to_string())
            .env("AIRTABLE_USER_SYNC_SECRET", SECRET)
            .env("LOGIN_API_TOKENS", LOGIN_TOKEN)
            .env("WORKER_ENABLED", "false")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            addr,
            base: format!("http://{addr}"),
        };
        wait_ready(&one_shot_client(), &server.base).await;
        server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The value of one series of `/metrics` (0 when absent).
    async fn metric(&self, client: &reqwest::Client, series: &str) -> f64 {
        let text = client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        series_value(&text, series)
    }
}

fn series_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn timeouts(kind: &str) -> String {
    format!("rosterd_http_client_timeouts_total{{timeout=\"{kind}\"}}")
}

/// Opens a new connection for every request, so that it holds no slot
/// once answered.
fn one_shot_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(GRACE)
        .build()
        .unwrap()
}

/// Reads one response (its head and a `Content-Length` body) and returns
/// its status.
async fn read_response(stream: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if buf.len() >= end + 4 + length {
                return head.split(' ').nth(1).unwrap().parse().unwrap();
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed before the response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until the server closes the connection (end of stream or reset),
/// for at most `limit`; returns what arrived, `None` if still open.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| got)
}

/// A connection that has been answered once and is now idle.
async fn kept_alive(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: rosterd\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await, 200);
    s
}

/// A connection holding half a request head.
async fn half_head(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: rosterd\r\nX-Slow: ")
        .await
        .unwrap();
    s
}

/// Sockets being opened: a few at a time, so that the test's own burst of
/// connects does not overflow the listen backlog (the kernel would then
/// drop or reset some of them, which is not what is tested here).
struct Opening {
    permits: tokio::sync::Semaphore,
    ready: AtomicUsize,
}

impl Opening {
    fn done(&self, _permit: tokio::sync::SemaphorePermit<'_>) {
        self.ready.fetch_add(1, Ordering::SeqCst);
    }
}

/// How one slow socket ended.
struct Ended {
    /// From the start of what the time-out bounds to the close; `None`:
    /// still open after the time-out and [`GRACE`].
    after: Option<Duration>,
    /// What the server answered before closing (empty: nothing).
    answer: String,
}

/// Connects, holds half a head, and waits for the close.
async fn slow_head(addr: SocketAddr, timeout: Duration, opening: Arc<Opening>) -> Ended {
    let permit = opening.permits.acquire().await.unwrap();
    let start = Instant::now();
    let mut s = half_head(addr).await;
    opening.done(permit);
    let closed = until_closed(&mut s, timeout + GRACE).await;
    Ended {
        after: closed.map(|_| start.elapsed()),
        answer: String::new(),
    }
}

/// Sends the whole head of a signed event, then its body at 4 bytes a
/// second, and waits for the close (after a 408, or not).
async fn slow_body(addr: SocketAddr, timeout: Duration, opening: Arc<Opening>) -> Ended {
    let body = serde_json::to_vec(&upsert_event(
        "user.created",
        "evt_slow",
        "2026-11-22T10:00:00Z",
        "recSlow",
        "slow@x.io",
    ))
    .unwrap();
    let permit = opening.permits.acquire().await.unwrap();
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/sync/users/inbound HTTP/1.1\r\nHost: rosterd\r\n\
         Content-Type: application/json\r\nX-Signature: {}\r\nContent-Length: {}\r\n\r\n",
        plain_signature(SECRET, &body),
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    opening.done(permit);
    let (mut reader, mut writer) = s.split();
    let mut trickle = tokio::time::interval(Duration::from_millis(250));
    let mut unsent = body.iter();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    let closed = tokio::time::timeout(timeout + GRACE, async {
        loop {
            tokio::select! {
                read = reader.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                },
                _ = trickle.tick() => {
                    if let Some(b) = unsent.next() {
                        // After the server closes, writes fail; the read says so.
                        let _ = writer.write_all(&[*b]).await;
                    }
                }
            }
        }
    })
    .await;
    assert!(
        unsent.len() > 0,
        "the whole body was sent: the test's body is too short for its time-out"
    );
    Ended {
        after: closed.ok().map(|()| start.elapsed()),
        answer: String::from_utf8_lossy(&got).into_owned(),
    }
}

/// Gets one answer, then idles and waits for the close.
async fn slow_idle(addr: SocketAddr, timeout: Duration, opening: Arc<Opening>) -> Ended {
    let permit = opening.permits.acquire().await.unwrap();
    let mut s = kept_alive(addr).await;
    opening.done(permit);
    let start = Instant::now();
    let closed = until_closed(&mut s, timeout + GRACE).await;
    Ended {
        after: closed.map(|_| start.elapsed()),
        answer: String::new(),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Head,
    Body,
    Idle,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Checks and prints how one kind of slow socket ended.
fn check(kind: &str, timeout: Duration, mut ended: Vec<Ended>) -> Vec<Ended> {
    let open = ended.iter().filter(|e| e.after.is_none()).count();
    assert_eq!(
        open,
        0,
        "{open} of {} {kind} sockets still open {:?} after their time-out",
        ended.len(),
        GRACE
    );
    ended.sort_by_key(|e| e.after);
    let times: Vec<Duration> = ended.iter().map(|e| e.after.unwrap()).collect();
    println!(
        "{} {kind} sockets, time-out {timeout:?}: closed after min {:?}, p50 {:?}, max {:?}",
        times.len(),
        times[0],
        percentile(&times, 0.5),
        times[times.len() - 1]
    );
    assert!(
        times[0] >= timeout / 2,
        "a {kind} socket was closed after {:?}, well before its time-out {timeout:?}",
        times[0]
    );
    ended
}

/// Prints the latency of the health checks (each on a new connection) and
/// of the lookups (on a kept-alive one).
fn report(when: &str, (health, lookups): (Vec<Duration>, Vec<Duration>)) {
    for (what, mut lat) in [
        ("GET /healthz (new connection)", health),
        ("lookup (kept-alive)", lookups),
    ] {
        assert!(!lat.is_empty());
        lat.sort();
        println!(
            "{when}: {} × {what}, all 200: p50 {:?}, p99 {:?}, max {:?}",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat[lat.len() - 1]
        );
    }
}

#[sqlx::test]
async fn slow_sockets_are_closed_at_their_time_outs_while_real_requests_are_answered(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    // Thousands of sockets, and latencies worth reading: not beside a herd.
    let _alone = HEAVY.write().await;
    let db = migrated(&opts).await;
    crate::provisioning::Harness::local(db.clone())
        .apply(&upsert_event(
            "user.created",
            "evt_1",
            "2026-11-22T10:00:00Z",
            "recA",
            "ada@x.io",
        ))
        .await;
    // Each socket is a descriptor here as well as in the server; leave room
    // for the test's own pools and clients.
    let limit = rosterd::descriptors::raise_limit().unwrap_or(1024);
    let sockets = usize::try_from(limit.saturating_sub(512))
        .unwrap()
        .min(2000);
    let (heads, bodies) = (sockets / 2, sockets / 4);
    let idles = sockets - heads - bodies;
    let timeout = Duration::from_secs(3);
    let secs = timeout.as_secs().to_string();
    let s = Server::start(&opts, &[(HEADER, &secs), (BODY, &secs), (IDLE, &secs)]).await;
    let kept = reqwest::Client::builder().timeout(GRACE).build().unwrap();
    let fresh = one_shot_client();
    let lookup = || {
        kept.get(s.url("/api/users/lookup?email=ada@x.io"))
            .bearer_auth(LOGIN_TOKEN)
            .send()
    };
    // The first lookup provisions; the ones measured below are roster hits.
    assert_eq!(lookup().await.unwrap().status(), 200);
    let mut quiet = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let t = Instant::now();
        assert_eq!(
            fresh.get(s.url("/healthz")).send().await.unwrap().status(),
            200
        );
        quiet.0.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(lookup().await.unwrap().status(), 200);
        quiet.1.push(t.elapsed());
    }
    report("before, with no slow sockets", quiet);

    let opening = Arc::new(Opening {
        permits: tokio::sync::Semaphore::new(64),
        ready: AtomicUsize::new(0),
    });
    let finished = Arc::new(AtomicUsize::new(0));
    let spawn = |kind: Kind, n: usize| {
        (0..n)
            .map(|_| {
                let (opening, finished, addr) = (opening.clone(), finished.clone(), s.addr);
                tokio::spawn(async move {
                    let ended = match kind {
                        Kind::Head => slow_head(addr, timeout, opening).await,
                        Kind::Body => slow_body(addr, timeout, opening).await,
                        Kind::Idle => slow_idle(addr, timeout, opening).await,
                    };
                    finished.fetch_add(1, Ordering::SeqCst);
                    ended
                })
            })
            .collect::<Vec<_>>()
    };
    let head_tasks = spawn(Kind::Head, heads);
    let body_tasks = spawn(Kind::Body, bodies);
    let idle_tasks = spawn(Kind::Idle, idles);

    // Real requests for as long as slow sockets are open: the health check
    // on a new connection each time, the lookup on a kept-alive one.
    let mut health = Vec::new();
    let mut lookups = Vec::new();
    let mut most_open = 0;
    let mut pace = tokio::time::interval(Duration::from_millis(50));
    let bound = Instant::now() + timeout + 2 * GRACE;
    while finished.load(Ordering::SeqCst) < sockets && Instant::now() < bound {
        let open = opening.ready.load(Ordering::SeqCst) - finished.load(Ordering::SeqCst);
        most_open = most_open.max(open);
        let t = Instant::now();
        let r = fresh.get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        health.push(t.elapsed());
        let t = Instant::now();
        let r = lookup().await.unwrap();
        assert_eq!(r.status(), 200);
        lookups.push(t.elapsed());
        pace.tick().await;
    }

    let join = |tasks: Vec<tokio::task::JoinHandle<Ended>>| async move {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    };
    println!(
        "{sockets} slow sockets ({heads} half heads, {bodies} trickled bodies, {idles} idle), \
         at most {most_open} open at once"
    );
    check("half-head", timeout, join(head_tasks).await);
    let trickled = check("trickled-body", timeout, join(body_tasks).await);
    check("idle", timeout, join(idle_tasks).await);
    let mut answered = 0;
    for e in trickled.iter().filter(|e| !e.answer.is_empty()) {
        let a = e.answer.to_ascii_lowercase();
        assert!(a.starts_with("http/1.1 408 "), "{a}");
        assert!(a.contains("\r\nconnection: close\r\n"), "{a}");
        assert!(a.ends_with(r#"{"error":"request_timeout"}"#), "{a}");
        answered += 1;
    }
    println!("{answered} of {bodies} trickled bodies got a 408 before the close (any others saw a reset)");
    report("meanwhile", (health, lookups));
    // The server closed them for the reason each was built to trip.
    for (kind, n) in [("header", heads), ("body", bodies), ("idle", idles)] {
        let counted = s.metric(&fresh, &timeouts(kind)).await;
        assert!(
            counted >= n as f64,
            "{counted} {kind} time-outs, {n} sockets"
        );
    }
}

#[sqlx::test]
async fn beyond_the_cap_a_connection_waits_for_a_slot_and_is_served(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let _db = migrated(&opts).await;
    const CAP: usize = 50;
    let s = Server::start(
        &opts,
        &[("HTTP_MAX_CONNECTIONS", "50"), (IDLE, "2"), (HEADER, "2")],
    )
    .await;
    let fresh = one_shot_client();
    let idle_before = s.metric(&fresh, &timeouts("idle")).await;
    // Every slot taken by a connection answered once and now idle. (A
    // connection of `fresh` may hold one for a moment after its answer;
    // its opener then waits in the backlog like anyone else.)
    let mut idle = Vec::new();
    for _ in 0..CAP {
        idle.push(tokio::spawn(kept_alive(s.addr)));
    }
    let mut held = Vec::new();
    for task in idle {
        held.push(tokio::time::timeout(GRACE, task).await.unwrap().unwrap());
    }

    // One more, on a new connection: it waits in the backlog, then is served.
    let t = Instant::now();
    let text = fresh
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("served, not refused")
        .text()
        .await
        .unwrap();
    println!(
        "with {CAP} idle connections at the cap of {CAP}, one more request was answered after {:?}",
        t.elapsed()
    );
    // It was served only once an idle one had been closed by its time-out.
    let closed = series_value(&text, &timeouts("idle")) - idle_before;
    assert!(
        closed >= 1.0,
        "{closed} idle time-outs before it was served"
    );
    assert!(series_value(&text, "rosterd_http_connections_open") <= CAP as f64);
    for mut s in held {
        assert!(until_closed(&mut s, GRACE).await.is_some());
    }
    let r = fresh
        .get(s.url("/api/users/lookup?email=nobody@x.io"))
        .bearer_auth(LOGIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[sqlx::test]
async fn shutdown_does_not_wait_for_slow_clients(_p: PgPoolOptions, opts: PgConnectOptions) {
    let _db = migrated(&opts).await;
    // Time-outs far beyond the bound below: only shutdown can close these.
    let mut s = Server::start(&opts, &[(HEADER, "600"), (IDLE, "600")]).await;
    let mut sockets = Vec::new();
    for _ in 0..100 {
        sockets.push(half_head(s.addr).await);
        sockets.push(kept_alive(s.addr).await);
    }
    let killed = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let t = Instant::now();
    let mut status = None;
    while status.is_none() && t.elapsed() < GRACE {
        status = s.child.try_wait().unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let status = status.expect("rosterd exits on SIGTERM while slow clients hold connections");
    assert_eq!(status.code(), Some(0));
    println!(
        "exited 0 {:?} after SIGTERM with 100 half heads and 100 idle connections open",
        t.elapsed()
    );
    for s in &mut sockets {
        assert!(until_closed(s, GRACE).await.is_some());
    }
}

#[sqlx::test]
async fn an_oversized_request_head_is_refused(db: sqlx::PgPool) {
    let app = TestApp::spawn(db).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let big = "a".repeat(40 * 1024);
    s.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: rosterd\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let answer = until_closed(&mut s, GRACE)
        .await
        .expect("closed after the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
}

#[test]
fn bad_http_limits_stop_start_up() {
    let cases = [
        (HEADER, "0"),
        (HEADER, "ten"),
        (BODY, "0"),
        (BODY, "-1"),
        (IDLE, "0"),
        (IDLE, "86401"),
        ("HTTP_MAX_CONNECTIONS", "0"),
        ("HTTP_MAX_CONNECTIONS", "lots"),
        // More than any open-file limit allows.
        ("HTTP_MAX_CONNECTIONS", "1000000000"),
    ];
    for (var, value) in cases {
        let env = [DB, ("AIRTABLE_USER_SYNC_SECRET", SECRET), (var, value)];
        let line = assert_config_error(&rosterd(&["serve"], &env, b""), var);
        println!("{var}={value}: {}", line.trim_end());
    }
    let env = [DB, ("AIRTABLE_USER_SYNC_SECRET", SECRET)];
    let flag = rosterd(&["serve", "--http-idle-timeout-secs", "0"], &env, b"");
    assert_config_error(&flag, IDLE);
}
