//! Airtable Web API client for one table of one base, read-only.
//!
//! Behaviour of Airtable that this module relies on:
//! - "The API is limited to 5 requests per second per base. If you exceed
//!   this rate, you will receive a 429 status code and will need to wait 30
//!   seconds before subsequent requests will succeed." (Airtable's API docs,
//!   rate limits). The 429 body is
//!   `{"errors":[{"error":"RATE_LIMIT_REACHED","message":"Rate limit
//!   exceeded. Please try again later"}]}`.
//! - Other errors are `{"error":{"type","message"}}`, except a bare
//!   `{"error":"NOT_FOUND"}` for a record id (or base) that does not exist.
//! - Formula string literals take backslash escapes: `\'` inside single
//!   quotes, `\\` for a backslash (pyAirtable's `quoted()` does exactly
//!   this). A field reference is `{name}`, with `\}` for a closing brace;
//!   Airtable cannot reference a name with more than one `}`, nor is it
//!   clear what a backslash means there, so such names are refused up front.
//! - Fields that are empty are left out of a record's `fields` altogether.
//! - `GET …/{table}/{recordId}` does not check that the record belongs to
//!   that table: record ids are unique per base, and a record of another
//!   table in the same base comes back as if it were ours.
//! - List offsets expire: a stale one is a 422
//!   `LIST_RECORDS_ITERATOR_NOT_AVAILABLE`, and the listing has to restart.
//!
//! No retries happen here apart from the one after a 429 that Airtable
//! itself asks for: the caller owns its deadline and decides what a failure
//! means for the person waiting on it.

use super::{DirectoryError, DirectoryRecord};
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

pub const DEFAULT_API_URL: &str = "https://api.airtable.com";
/// Airtable's documented limit per base.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 5;
/// How long Airtable wants callers to stay away after a 429.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Airtable's largest page.
const PAGE_SIZE: &str = "100";
/// Two, not one: a second match is worth a warning, since it means the
/// directory holds the same person twice.
const MAX_EMAIL_MATCHES: &str = "2";
/// No valid email is longer (RFC 5321 path limit); anything longer can only
/// miss, and would only make the URL longer.
const MAX_EMAIL_CHARS: usize = 254;
/// Error text from the server is for humans; a proxy's HTML page is not.
const MAX_MESSAGE_CHARS: usize = 300;

/// Column names in the Airtable table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldNames {
    pub email: String,
    pub name: String,
    pub status: String,
    pub groups: String,
}

impl Default for FieldNames {
    fn default() -> Self {
        Self {
            email: "Email".into(),
            name: "Name".into(),
            status: "Status".into(),
            groups: "Groups".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AirtableConfig {
    /// Without `/v0`; a path prefix (for a proxy) is kept.
    pub api_url: String,
    pub base_id: String,
    /// Table name or `tbl…` id, unencoded.
    pub table: String,
    pub api_key: SecretString,
    pub fields: FieldNames,
    pub requests_per_second: u32,
    pub rate_limit_wait: Duration,
    /// Bounds each request; a caller's deadline can cut it shorter.
    pub timeout: Duration,
}

impl AirtableConfig {
    /// Airtable's public API with the documented limits.
    pub fn new(base_id: &str, table: &str, api_key: SecretString) -> Self {
        Self {
            api_url: DEFAULT_API_URL.into(),
            base_id: base_id.into(),
            table: table.into(),
            api_key,
            fields: FieldNames::default(),
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            rate_limit_wait: DEFAULT_RATE_LIMIT_WAIT,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// governor's view of time, read from tokio's clock: deadlines are tokio
/// instants, and the limiter must agree with them about what "now" is
/// (including under a paused test clock).
#[derive(Debug, Clone)]
struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// How long a call may take. It is refused at once when its turn for a
/// request slot would come after `queue_until`, and cut at `deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub deadline: Instant,
    pub queue_until: Instant,
}

/// A bare deadline waits in line for as long as it lasts.
impl From<Instant> for Budget {
    fn from(deadline: Instant) -> Self {
        Self {
            deadline,
            queue_until: deadline,
        }
    }
}

/// The callers waiting for a request slot, in arrival order.
#[derive(Debug, Default)]
struct Line {
    /// Callers in line, the head included: what a newcomer waits behind.
    waiting: AtomicUsize,
    /// tokio's mutex is fair: the head passes to callers in arrival order.
    head: tokio::sync::Mutex<()>,
    /// The last slot promised to a refused caller. Each refusal is told a
    /// slot of its own, after those promised before: told "in a second"
    /// all at once, a herd would come back all at once.
    promised: Mutex<Option<Instant>>,
}

impl Line {
    /// A slot for a refused caller, no earlier than `earliest`.
    fn book(&self, earliest: Instant, slot: Duration) -> Instant {
        let mut promised = lock(&self.promised);
        let at = promised.map_or(earliest, |p| (p + slot).max(earliest));
        *promised = Some(at);
        at
    }
}

/// A caller's place in [`Line::waiting`], given up however the call ends.
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct AirtableDirectory {
    /// `{api_url}/v0/{base}/{table}`, segments percent-encoded.
    table_url: Url,
    /// The same, unencoded and without the host, for error messages.
    table_path: String,
    key: SecretString,
    fields: FieldNames,
    /// The email field reference, escaped once here.
    email_ref: String,
    http: reqwest::Client,
    timeout: Duration,
    rate_limit_wait: Duration,
    limiter: Limiter,
    /// The limiter's spacing between requests.
    slot: Duration,
    line: Line,
    /// Until when Airtable's post-429 pause runs. Shared by every call: the
    /// pause is per base, so any request sent during it would only be
    /// refused again.
    paused_until: Mutex<Option<Instant>>,
}

/// Written by hand so that neither the key nor the HTTP client's internals
/// can end up in a log line.
impl fmt::Debug for AirtableDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AirtableDirectory")
            .field("table", &self.table_path)
            .field("fields", &self.fields)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl AirtableDirectory {
    pub fn new(cfg: AirtableConfig) -> Result<Self, String> {
        let url = Url::parse(cfg.api_url.trim())
            .map_err(|e| format!("AIRTABLE_API_URL is not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "AIRTABLE_API_URL must be an http or https URL, not {}:",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("AIRTABLE_API_URL has no host".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("AIRTABLE_API_URL must not carry a query or fragment".into());
        }
        let base = cfg.base_id.trim();
        // Base ids are `app` + alphanumerics; this catches a pasted URL or
        // a base name before it turns into a confusing 404 per request.
        if base.is_empty() || !base.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err("AIRTABLE_BASE_ID must be an Airtable base id (app…)".into());
        }
        let table = cfg.table.trim();
        if table.is_empty() {
            return Err("AIRTABLE_TABLE is empty".into());
        }
        for (var, name) in [
            ("AIRTABLE_FIELD_EMAIL", &cfg.fields.email),
            ("AIRTABLE_FIELD_NAME", &cfg.fields.name),
            ("AIRTABLE_FIELD_STATUS", &cfg.fields.status),
            ("AIRTABLE_FIELD_GROUPS", &cfg.fields.groups),
        ] {
            if name.trim().is_empty() {
                return Err(format!("{var} is empty"));
            }
        }
        let email_ref = field_ref(&cfg.fields.email)
            .map_err(|why| format!("AIRTABLE_FIELD_EMAIL cannot be used in a formula: {why}"))?;
        let key = cfg.api_key.expose_secret();
        if key.is_empty() {
            return Err("AIRTABLE_API_KEY is empty".into());
        }
        // Checked here so that a bad key fails start-up instead of every request.
        if HeaderValue::from_str(key).is_err() || key.chars().any(char::is_whitespace) {
            return Err("AIRTABLE_API_KEY contains characters not allowed in a header".into());
        }
        if cfg.timeout.is_zero() {
            return Err("the Airtable request timeout must be greater than zero".into());
        }
        if cfg.requests_per_second == 0 {
            return Err("the Airtable request rate must be at least 1 per second".into());
        }

        let mut table_url = url;
        table_url
            .path_segments_mut()
            .map_err(|()| "AIRTABLE_API_URL cannot take a path".to_string())?
            .pop_if_empty()
            .extend(["v0", base, table]);
        let table_path = format!("/v0/{base}/{table}");

        let http = reqwest::Client::builder()
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;

        Ok(Self {
            table_url,
            table_path,
            key: cfg.api_key,
            fields: cfg.fields,
            email_ref,
            http,
            timeout: cfg.timeout,
            rate_limit_wait: cfg.rate_limit_wait,
            limiter: limiter(slot(cfg.requests_per_second)),
            slot: slot(cfg.requests_per_second),
            line: Line::default(),
            paused_until: Mutex::new(None),
        })
    }

    /// The record whose email field equals `email`, ignoring case and
    /// surrounding whitespace. Several matches: the first in Airtable's
    /// order, with a warning.
    pub async fn find_by_email(
        &self,
        email: &str,
        budget: impl Into<Budget>,
    ) -> Result<Option<DirectoryRecord>, DirectoryError> {
        observe(
            "find_by_email",
            self.find_by_email_uncounted(email, budget.into()),
            found,
        )
        .await
    }

    async fn find_by_email_uncounted(
        &self,
        email: &str,
        budget: Budget,
    ) -> Result<Option<DirectoryRecord>, DirectoryError> {
        let wanted = email.trim();
        // Nobody's email is empty, over-long or holds control characters, so
        // these cannot match; not sending them also keeps line breaks out of
        // the formula, whose escapes for them are not documented.
        if wanted.is_empty()
            || wanted.chars().count() > MAX_EMAIL_CHARS
            || wanted.chars().any(char::is_control)
        {
            return Ok(None);
        }
        let formula = email_formula(&self.email_ref, wanted);
        // The query holds the email; messages name only the path.
        let what = format!("GET {} (email filter)", self.table_path);
        let query = [
            ("filterByFormula", formula.as_str()),
            ("maxRecords", MAX_EMAIL_MATCHES),
        ];
        let body = self
            .fetch(&what, &self.table_url, &query, budget)
            .await
            .map_err(DirectoryError::from)?;
        let list: ListJson = parse_body(&what, &body)?;
        let returned = list.records.len();
        let wanted = wanted.to_lowercase();
        // Defence in depth: the formula should have done this already, but
        // whatever the server sends back is checked before it is believed.
        let mut matches = list
            .records
            .into_iter()
            .map(|r| self.to_record(r))
            .filter(|r| {
                r.email
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase() == wanted)
            });
        let first = matches.next();
        let others: Vec<String> = matches.map(|r| r.id).collect();
        match &first {
            Some(record) if !others.is_empty() => tracing::warn!(
                record = %record.id,
                others = ?others,
                "several directory records hold one email; using the first"
            ),
            None if returned > 0 => tracing::warn!(
                returned,
                "directory answered an email filter with records for other emails; ignored"
            ),
            _ => {}
        }
        Ok(first)
    }

    /// One record by id; `None` when Airtable has no such record. Airtable
    /// answers for any record of the base, whatever its table.
    pub async fn get(
        &self,
        record_id: &str,
        budget: impl Into<Budget>,
    ) -> Result<Option<DirectoryRecord>, DirectoryError> {
        observe("get", self.get_uncounted(record_id, budget.into()), found).await
    }

    async fn get_uncounted(
        &self,
        record_id: &str,
        budget: Budget,
    ) -> Result<Option<DirectoryRecord>, DirectoryError> {
        // Anything else cannot be a record id, and must not reach the path.
        if !is_record_id(record_id) {
            return Ok(None);
        }
        let mut url = self.table_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(record_id);
        }
        let what = format!("GET {}/{record_id}", self.table_path);
        match self.fetch(&what, &url, &[], budget).await {
            Ok(body) => {
                let record: RecordJson = parse_body(&what, &body)?;
                if record.id != record_id {
                    return Err(DirectoryError::Rejected(format!(
                        "{what}: answered with record {:?}",
                        record.id
                    )));
                }
                Ok(Some(self.to_record(record)))
            }
            Err(Failure::Api(e)) if e.is_record_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One page of up to 100 records in Airtable's order, and the offset of
    /// the next page (`None` after the last). An offset that has expired is
    /// `Rejected` with `LIST_RECORDS_ITERATOR_NOT_AVAILABLE` in the message:
    /// start again without one.
    pub async fn list_page(
        &self,
        offset: Option<&str>,
        budget: impl Into<Budget>,
    ) -> Result<(Vec<DirectoryRecord>, Option<String>), DirectoryError> {
        observe(
            "list",
            self.list_page_uncounted(offset, budget.into()),
            |_| "ok",
        )
        .await
    }

    async fn list_page_uncounted(
        &self,
        offset: Option<&str>,
        budget: Budget,
    ) -> Result<(Vec<DirectoryRecord>, Option<String>), DirectoryError> {
        let what = format!("GET {} (list)", self.table_path);
        let mut query = vec![("pageSize", PAGE_SIZE)];
        if let Some(offset) = offset {
            query.push(("offset", offset));
        }
        let body = self
            .fetch(&what, &self.table_url, &query, budget)
            .await
            .map_err(DirectoryError::from)?;
        let list: ListJson = parse_body(&what, &body)?;
        let next = list.offset.filter(|o| !o.is_empty());
        // A server that hands back the offset it was given would keep a
        // caller's listing loop going forever.
        if next.is_some() && next.as_deref() == offset {
            return Err(DirectoryError::Rejected(format!(
                "{what}: the next offset is the one just used"
            )));
        }
        let records = list
            .records
            .into_iter()
            .map(|r| self.to_record(r))
            .collect();
        Ok((records, next))
    }

    /// One request, paced and retried once after a 429 if the pause that
    /// Airtable asks for fits before the deadline. `what` names the request
    /// in errors; the query (an email, perhaps) never does.
    async fn fetch(
        &self,
        what: &str,
        url: &Url,
        query: &[(&str, &str)],
        budget: Budget,
    ) -> Result<Vec<u8>, Failure> {
        let deadline = budget.deadline;
        if Instant::now() >= deadline {
            // Checked first so that a call already too late takes no slot.
            return Err(unavailable(what, "deadline reached before sending"));
        }
        let mut retried = false;
        loop {
            self.sit_out_pause(what, deadline).await?;
            self.queue(what, budget).await?;
            match self.send(what, url, query, deadline).await {
                Err(Failure::Api(e)) if e.status == StatusCode::TOO_MANY_REQUESTS => {
                    crate::metrics::directory_rate_limited();
                    let until = self.pause_after_429();
                    if retried || until >= deadline {
                        return Err(Failure::Other(DirectoryError::Unavailable(format!(
                            "{}; Airtable asks for a {} s pause, {}",
                            e.describe(),
                            self.rate_limit_wait.as_secs_f32(),
                            if retried {
                                "and the one retry was refused too"
                            } else {
                                "which would pass the deadline"
                            }
                        ))));
                    }
                    retried = true;
                }
                other => return other,
            }
        }
    }

    async fn send(
        &self,
        what: &str,
        url: &Url,
        query: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(unavailable(what, "deadline reached before sending"));
        }
        let cut_by_deadline = remaining < self.timeout;
        let mut req = self
            .http
            .get(url.clone())
            .headers(self.secret_headers())
            .timeout(remaining.min(self.timeout));
        if !query.is_empty() {
            req = req.query(query);
        }
        let transport = |e: reqwest::Error| transport_error(what, &e, cut_by_deadline);
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        tracing::debug!(request = %what, status = status.as_u16(), "airtable call");
        if status.is_success() {
            Ok(bytes.to_vec())
        } else {
            Err(Failure::Api(ApiError::parse(
                what,
                status,
                &bytes,
                self.key.expose_secret(),
            )))
        }
    }

    fn secret_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        // Validated in `new`, so this cannot fail; `sensitive` keeps it out
        // of reqwest's and hyper's own debug output.
        if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {}", self.key.expose_secret())) {
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers
    }

    /// Waits in line for a request slot, first come first served, or is
    /// refused at once ([`DirectoryError::Busy`]) when the callers ahead
    /// would take every slot until `budget.queue_until`. Without a line,
    /// every waiter would wake at each slot, one would win, and a herd would
    /// wait out its deadlines in no order at all.
    async fn queue(&self, what: &str, budget: Budget) -> Result<(), Failure> {
        let ahead = self.line.waiting.fetch_add(1, Ordering::SeqCst);
        let _place = Place(&self.line.waiting);
        // Everyone ahead takes a slot before this caller's turn comes.
        let wait = self
            .slot
            .saturating_mul(u32::try_from(ahead).unwrap_or(u32::MAX));
        let now = Instant::now();
        if now + wait > budget.queue_until.min(budget.deadline) {
            let back_at = self.line.book(now + wait, self.slot);
            return Err(Failure::Other(DirectoryError::Busy {
                retry_after: back_at - now,
            }));
        }
        let _head = self.line.head.lock().await;
        self.acquire(what, budget.deadline).await
    }

    /// Waits for the next request slot, or fails at once if it would come
    /// after `deadline`.
    async fn acquire(&self, what: &str, deadline: Instant) -> Result<(), Failure> {
        loop {
            let Err(not_until) = self.limiter.check() else {
                return Ok(());
            };
            let at = Instant::now() + not_until.wait_time_from(self.limiter.clock().now());
            if at > deadline {
                return Err(unavailable(
                    what,
                    "the request rate limit leaves no slot before the deadline",
                ));
            }
            // Another caller may take the slot first; then check again.
            tokio::time::sleep_until(at).await;
        }
    }

    async fn sit_out_pause(&self, what: &str, deadline: Instant) -> Result<(), Failure> {
        let until = *lock(&self.paused_until);
        let Some(until) = until.filter(|u| *u > Instant::now()) else {
            return Ok(());
        };
        if until >= deadline {
            return Err(unavailable(
                what,
                "Airtable's pause after a 429 lasts past the deadline",
            ));
        }
        tokio::time::sleep_until(until).await;
        Ok(())
    }

    fn pause_after_429(&self) -> Instant {
        let until = Instant::now() + self.rate_limit_wait;
        let mut paused = lock(&self.paused_until);
        let until = paused.map_or(until, |p| p.max(until));
        *paused = Some(until);
        until
    }

    fn to_record(&self, r: RecordJson) -> DirectoryRecord {
        let f = &r.fields;
        DirectoryRecord {
            email: f
                .get(&self.fields.email)
                .and_then(text)
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty()),
            name: f.get(&self.fields.name).and_then(text).map(str::to_string),
            status: f.get(&self.fields.status).and_then(|v| match text(v) {
                Some(s) => Some(s.to_string()),
                None if v.is_null() => None,
                None => Some(v.to_string()),
            }),
            groups: f.get(&self.fields.groups).map(groups).unwrap_or_default(),
            id: r.id,
        }
    }
}

/// Counts and times one call by its operation and how it ended; what was
/// asked for (an email, a record id) never becomes a label.
async fn observe<T>(
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, DirectoryError>>,
    ok_label: fn(&T) -> &'static str,
) -> Result<T, DirectoryError> {
    let started = std::time::Instant::now();
    let r = call.await;
    let result = match &r {
        Ok(v) => ok_label(v),
        Err(DirectoryError::Unavailable(_)) => "unavailable",
        Err(DirectoryError::Rejected(_)) => "rejected",
        Err(DirectoryError::Busy { .. }) => "busy",
    };
    crate::metrics::directory_call(operation, result, started.elapsed());
    r
}

fn found(record: &Option<DirectoryRecord>) -> &'static str {
    if record.is_some() {
        "found"
    } else {
        "not_found"
    }
}

/// One request per slot, no bursts: with bursts, a sliding one-second
/// window could see more than the limit. Each slot is 5% longer than
/// 1/rate because Airtable counts arrivals, and requests sent exactly on
/// time can arrive closer together (the first of a series usually pays
/// for the connection) — a 429 costs a 30 s pause, 5% costs little.
fn slot(requests_per_second: u32) -> Duration {
    let slot = Duration::from_secs(1) / requests_per_second;
    slot + slot / 20
}

fn limiter(slot: Duration) -> Limiter {
    // `with_period` refuses only a zero slot, which takes a rate beyond a
    // billion per second.
    let quota = Quota::with_period(slot).unwrap_or(Quota::per_second(NonZeroU32::MAX));
    RateLimiter::direct_with_clock(
        quota,
        TokioClock {
            origin: Instant::now(),
        },
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded value is a plain instant, valid whatever a panicking
    // holder was doing.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `LOWER(TRIM({field})) = LOWER('email')`. TRIM on the field forgives
/// stray spaces typed into the directory; LOWER on both sides makes the
/// comparison Airtable's own case folding.
fn email_formula(field_ref: &str, email: &str) -> String {
    format!(
        "LOWER(TRIM({field_ref})) = LOWER({})",
        string_literal(email)
    )
}

/// A single-quoted formula string: every `\` and `'` escaped with a
/// backslash, so the literal ends exactly where we say it does.
fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if matches!(c, '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `{name}` with a closing brace escaped as `\}`. Names this cannot carry
/// faithfully are refused rather than guessed at.
fn field_ref(name: &str) -> Result<String, &'static str> {
    if name.chars().any(char::is_control) {
        return Err("it contains a control character");
    }
    if name.contains('\\') {
        return Err("it contains a backslash");
    }
    if name.matches('}').count() > 1 {
        return Err("Airtable cannot reference a field name with more than one '}'");
    }
    Ok(format!("{{{}}}", name.replace('}', "\\}")))
}

/// `rec` and 14 letters or digits: the shape of every Airtable record id.
fn is_record_id(s: &str) -> bool {
    s.len() == 17 && s.starts_with("rec") && s[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Text of a field: a string, or a lookup's single string.
fn text(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Array(items) if items.len() == 1 => items[0].as_str(),
        _ => None,
    }
}

/// A multiple select (array of names) or a comma-separated text field.
fn groups(v: &Value) -> Vec<String> {
    let items: Vec<&str> = match v {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => s.split(',').collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Deserialize)]
struct ListJson {
    records: Vec<RecordJson>,
    #[serde(default)]
    offset: Option<String>,
}

#[derive(Deserialize)]
struct RecordJson {
    id: String,
    #[serde(default)]
    fields: Map<String, Value>,
}

/// serde's own message quotes the offending value, which could be anything
/// in the body (an email, a token); only the kind and place of the fault
/// are kept.
fn parse_body<T: serde::de::DeserializeOwned>(
    what: &str,
    body: &[u8],
) -> Result<T, DirectoryError> {
    serde_json::from_slice(body).map_err(|e| {
        DirectoryError::Rejected(format!(
            "{what}: malformed response body ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

enum Failure {
    /// Airtable answered with a non-2xx status.
    Api(ApiError),
    /// Everything else, already classified.
    Other(DirectoryError),
}

impl From<Failure> for DirectoryError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Api(e) => e.into_directory_error(),
            Failure::Other(e) => e,
        }
    }
}

fn unavailable(what: &str, why: &str) -> Failure {
    Failure::Other(DirectoryError::Unavailable(format!("{what}: {why}")))
}

/// reqwest's own Display names the full URL, query included (an email for
/// look-ups); only the kind of failure is kept.
fn transport_error(what: &str, e: &reqwest::Error, cut_by_deadline: bool) -> Failure {
    let kind = if e.is_timeout() {
        if cut_by_deadline {
            "no answer before the deadline"
        } else {
            "timed out"
        }
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_builder() {
        return Failure::Other(DirectoryError::Rejected(format!(
            "{what}: could not build the request"
        )));
    } else if e.is_body() || e.is_decode() {
        "response body interrupted"
    } else {
        "request failed"
    };
    unavailable(what, kind)
}

/// A non-2xx answer: status plus Airtable's error type and message.
struct ApiError {
    what: String,
    status: StatusCode,
    code: Option<String>,
    message: Option<String>,
}

impl ApiError {
    fn parse(what: &str, status: StatusCode, body: &[u8], key: &str) -> Self {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let (code, message) = match (json.get("error"), json.get("errors")) {
            (Some(Value::String(code)), _) => (Some(code.as_str()), None),
            (Some(err @ Value::Object(_)), _) => (
                err.get("type").and_then(Value::as_str),
                err.get("message").and_then(Value::as_str),
            ),
            (_, Some(Value::Array(errors))) => {
                let first = errors.first();
                (
                    first.and_then(|e| e.get("error")).and_then(Value::as_str),
                    first.and_then(|e| e.get("message")).and_then(Value::as_str),
                )
            }
            _ => (None, None),
        };
        let clean = |s: &str| -> Option<String> {
            let s = s.trim();
            // Belt and braces: no server should echo the key, but if one
            // ever does it must not travel further in our errors.
            (!s.is_empty()).then(|| {
                s.replace(key, "[redacted]")
                    .chars()
                    .take(MAX_MESSAGE_CHARS)
                    .collect()
            })
        };
        Self {
            what: what.to_string(),
            status,
            code: code.and_then(clean),
            message: message.and_then(clean),
        }
    }

    /// Only Airtable's bare `NOT_FOUND` counts: a 404 with a body of any
    /// other shape (an unknown table, a proxy's page) must not read as "no
    /// such record", or a misconfiguration would look like an empty table.
    fn is_record_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND && self.code.as_deref() == Some("NOT_FOUND")
    }

    fn describe(&self) -> String {
        let mut message = format!("{}: HTTP {}", self.what, self.status.as_u16());
        if let Some(code) = &self.code {
            message.push_str(&format!(" {code}"));
        }
        if let Some(text) = &self.message {
            message.push_str(&format!(": {text}"));
        }
        message
    }

    fn into_directory_error(self) -> DirectoryError {
        let message = self.describe();
        if self.status.is_server_error()
            || self.status == StatusCode::REQUEST_TIMEOUT
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            DirectoryError::Unavailable(message)
        } else {
            DirectoryError::Rejected(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_escape_quotes_and_backslashes() {
        assert_eq!(string_literal("ada@x.io"), "'ada@x.io'");
        assert_eq!(string_literal("o'brien@x.io"), r"'o\'brien@x.io'");
        assert_eq!(string_literal(r#"a\"b@x.io"#), r#"'a\\"b@x.io'"#);
        assert_eq!(string_literal(r"x\"), r"'x\\'");
        assert_eq!(string_literal(r"\'"), r"'\\\''");
    }

    #[test]
    fn field_references_escape_one_brace_and_refuse_the_rest() {
        assert_eq!(field_ref("Email").unwrap(), "{Email}");
        assert_eq!(field_ref("Work {email}").unwrap(), r"{Work {email\}}");
        assert!(field_ref("a}}").is_err());
        assert!(field_ref(r"a\b").is_err());
        assert!(field_ref("a\nb").is_err());
    }

    #[test]
    fn the_formula_has_one_shape() {
        assert_eq!(
            email_formula("{Email}", "x') , TRUE() , ('@x.io"),
            r"LOWER(TRIM({Email})) = LOWER('x\') , TRUE() , (\'@x.io')"
        );
    }

    #[test]
    fn record_ids_are_rec_and_fourteen_alphanumerics() {
        assert!(is_record_id("rec0123456789abcD"));
        for bad in [
            "rec0123456789abc",
            "rec0123456789abcDE",
            "tbl0123456789abcD",
            "rec0123456789ab/D",
            "rec0123456789abü",
            "",
        ] {
            assert!(!is_record_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn groups_come_as_a_list_or_as_text() {
        use serde_json::json;
        assert_eq!(groups(&json!(["a", " b ", "", 3])), ["a", "b"]);
        assert_eq!(groups(&json!("a, b,,c ")), ["a", "b", "c"]);
        assert!(groups(&json!(true)).is_empty());
    }

    #[test]
    fn error_bodies_of_every_shape_are_read() {
        let parse =
            |body: &str| ApiError::parse("GET /x", StatusCode::BAD_REQUEST, body.as_bytes(), "k3y");
        let e = parse(r#"{"error":{"type":"INVALID_FILTER_BY_FORMULA","message":"bad"}}"#);
        assert_eq!(e.code.as_deref(), Some("INVALID_FILTER_BY_FORMULA"));
        assert_eq!(e.message.as_deref(), Some("bad"));
        let e = parse(r#"{"error":"NOT_FOUND"}"#);
        assert_eq!(e.code.as_deref(), Some("NOT_FOUND"));
        let e = parse(r#"{"errors":[{"error":"RATE_LIMIT_REACHED","message":"slow down k3y"}]}"#);
        assert_eq!(e.code.as_deref(), Some("RATE_LIMIT_REACHED"));
        assert_eq!(e.message.as_deref(), Some("slow down [redacted]"));
        let e = parse("<html>bad gateway</html>");
        assert_eq!((e.code, e.message), (None, None));
    }

    #[tokio::test]
    async fn the_limiter_spaces_requests_and_respects_deadlines() {
        let directory = AirtableDirectory::new(AirtableConfig {
            api_url: "http://127.0.0.1:9".into(),
            requests_per_second: 20,
            ..AirtableConfig::new("appX", "People", SecretString::from("k"))
        })
        .unwrap();
        let far = Instant::now() + Duration::from_secs(10);
        let mut at = Vec::new();
        for _ in 0..6 {
            assert!(directory.acquire("t", far).await.is_ok());
            at.push(Instant::now());
        }
        for pair in at.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(50), "{at:?}");
        }
        // The next slot is ~52 ms away: a 10 ms deadline fails at once.
        let start = Instant::now();
        let refused = directory
            .acquire("t", start + Duration::from_millis(10))
            .await;
        assert!(matches!(
            refused,
            Err(Failure::Other(DirectoryError::Unavailable(_)))
        ));
        assert!(start.elapsed() < Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_herd_waits_in_line_or_is_told_a_turn_of_its_own() {
        let directory = std::sync::Arc::new(
            AirtableDirectory::new(AirtableConfig {
                api_url: "http://127.0.0.1:9".into(),
                requests_per_second: 20,
                ..AirtableConfig::new("appX", "People", SecretString::from("k"))
            })
            .unwrap(),
        );
        let slot = directory.slot;
        let start = Instant::now();
        let budget = Budget {
            deadline: start + Duration::from_secs(10),
            queue_until: start + Duration::from_millis(100),
        };
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..6 {
            let d = directory.clone();
            calls.spawn(async move {
                let r = d.queue("t", budget).await.map_err(DirectoryError::from);
                (i, r, Instant::now())
            });
        }
        let mut answers: Vec<_> = calls.join_all().await;
        answers.sort_by_key(|a| a.0);
        // The first passes at once and the next two wait their slots: a
        // fourth would be served after queue_until.
        let served: Vec<Duration> = answers[..3]
            .iter()
            .map(|(_, r, at)| {
                assert!(r.is_ok(), "{r:?}");
                *at - start
            })
            .collect();
        for (k, at) in served.iter().enumerate() {
            // tokio's timer wakes on whole milliseconds.
            let due = slot * k as u32;
            assert!(
                *at >= due && *at <= due + Duration::from_millis(1),
                "{served:?}"
            );
        }
        // The others are refused at once, each told a later slot.
        let told: Vec<Duration> = answers[3..]
            .iter()
            .map(|(_, r, at)| {
                assert_eq!(*at, start, "refused at once");
                match r {
                    Err(DirectoryError::Busy { retry_after }) => *retry_after,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        assert_eq!(told, vec![slot * 2, slot * 3, slot * 4]);
    }
}
