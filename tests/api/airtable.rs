//! A stateful stand-in for the Airtable Web API — one base, one table —
//! served on 127.0.0.1:0 inside the test process.
//!
//! It follows what Airtable does, not what its clients assume:
//! - records are `{"id": "rec…", "createdTime", "fields"}`, ids `rec` + 14
//!   alphanumerics, and empty fields (`""`, `[]`, `false`, `null`) are left
//!   out of `fields`;
//! - listing pages hold `pageSize` records (default and maximum 100); an
//!   opaque `offset` leads to the next page and is absent on the last one;
//!   an offset the server does not know is a 422
//!   `LIST_RECORDS_ITERATOR_NOT_AVAILABLE`; `maxRecords` caps the total;
//! - `GET …/{recordId}` of a missing record is a 404 `{"error":"NOT_FOUND"}`
//!   — as is any request to an unknown base; an unknown table is a 404
//!   `TABLE_NOT_FOUND`;
//! - a wrong token is a 401 `AUTHENTICATION_REQUIRED`;
//! - more than 5 requests to a base within one second is a 429
//!   `{"errors":[{"error":"RATE_LIMIT_REACHED",…}]}`, and so is every
//!   request to that base for the next 30 seconds.
//!
//! `filterByFormula` understands exactly the one formula rosterd sends,
//! `LOWER(TRIM({field})) = LOWER('value')`, with its escapes (`\}` in the
//! field reference, a backslash before any character in the string) and
//! Airtable's 422 `INVALID_FILTER_BY_FORMULA` for anything else, including
//! a field the table does not have. A client that escapes wrongly therefore
//! gets a 422 or a wrong answer here, as it would from Airtable.
//!
//! Test controls live on [`Airtable`], a cheap `Clone` handle onto the state.

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// The token the stand-in accepts.
pub const KEY: &str = "patStandIn0123.abcdef0123456789";
pub const BASE: &str = "appStandInBase001";
pub const TABLE: &str = "People";
pub const TABLE_ID: &str = "tblStandInPeople1";
/// Airtable's limit per base.
pub const REQUESTS_PER_SECOND: usize = 5;
const PENALTY: Duration = Duration::from_secs(30);
const MAX_PAGE_SIZE: usize = 100;

/// What a request asked for, as counted by [`Airtable::requests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A listing with `filterByFormula`.
    Filter,
    /// One record by id.
    Get,
    /// A listing without a formula.
    List,
}

/// A canned answer for the next request(s), whatever they are.
#[derive(Debug, Clone)]
pub enum Failure {
    /// 500 `SERVER_ERROR`.
    ServerError,
    /// 503 `SERVICE_UNAVAILABLE`.
    Unavailable,
    /// Airtable's 429 body, without starting the 30 s pause.
    RateLimited,
    /// Exactly this status and JSON body.
    Canned { status: u16, body: String },
}

#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub created_time: DateTime<Utc>,
    pub fields: Map<String, Value>,
}

impl Record {
    fn to_json(&self) -> Value {
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .filter(|(_, v)| !is_empty(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        json!({
            "id": self.id,
            "createdTime": self.created_time.to_rfc3339_opts(SecondsFormat::Millis, true),
            "fields": fields,
        })
    }
}

/// A listing in progress: the ids it will still hand out.
struct Iteration {
    ids: VecDeque<String>,
}

#[derive(Default)]
struct Inner {
    /// In Airtable's order (creation order, with no view or sort).
    records: Vec<Record>,
    /// Field names the table has; a formula naming another one is a 422.
    schema: Vec<String>,
    iterations: HashMap<String, Iteration>,
    requests: HashMap<Kind, usize>,
    /// Arrival of every request, whatever became of it.
    arrivals: Vec<Instant>,
    /// Per base: arrivals within the last second, and the end of the pause.
    windows: HashMap<String, VecDeque<Instant>>,
    paused_until: HashMap<String, Instant>,
    rate_limited: usize,
    invalid_formulas: Vec<String>,
    /// How many records each formula matched (up to `maxRecords`).
    filter_matches: Vec<usize>,
    /// Canned answers for the next requests in turn; `None` lets one through.
    failures: VecDeque<Option<Failure>>,
    latency: Duration,
}

#[derive(Clone)]
pub struct Airtable {
    url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Airtable {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let inner = Inner {
            schema: ["Email", "Name", "Status", "Groups"]
                .map(String::from)
                .into(),
            ..Inner::default()
        };
        let airtable = Self {
            url,
            inner: Arc::new(Mutex::new(inner)),
        };
        let app = Router::new()
            .route("/v0/{base}/{table}", get(list_records))
            .route("/v0/{base}/{table}/{record}", get(get_record))
            .route_layer(middleware::from_fn_with_state(airtable.clone(), gate))
            .with_state(airtable.clone());
        // Lives as long as the test's runtime.
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        airtable
    }

    /// What `AIRTABLE_API_URL` would hold.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Adds a record after all others; its field names join the table.
    pub fn insert(&self, fields: Value) -> String {
        let Value::Object(fields) = fields else {
            panic!("fields must be a JSON object, got {fields}");
        };
        let id = format!(
            "rec{}",
            Alphanumeric.sample_string(&mut rand::thread_rng(), 14)
        );
        let mut inner = self.lock();
        for name in fields.keys() {
            if !inner.schema.contains(name) {
                inner.schema.push(name.clone());
            }
        }
        inner.records.push(Record {
            id: id.clone(),
            created_time: Utc::now(),
            fields,
        });
        id
    }

    /// A record with just an email and a name.
    pub fn insert_person(&self, email: &str, name: &str) -> String {
        self.insert(json!({"Email": email, "Name": name}))
    }

    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    /// Requests of one kind that reached the stand-in, answered or not.
    pub fn requests(&self, kind: Kind) -> usize {
        self.lock().requests.get(&kind).copied().unwrap_or(0)
    }

    pub fn total_requests(&self) -> usize {
        self.lock().requests.values().sum()
    }

    /// The most requests that arrived within any one second.
    pub fn max_requests_in_one_second(&self) -> usize {
        let arrivals = self.lock().arrivals.clone();
        (0..arrivals.len())
            .map(|i| {
                arrivals[i..]
                    .iter()
                    .take_while(|t| t.duration_since(arrivals[i]) < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// 429s the stand-in's own rate limit answered (not injected ones).
    pub fn rate_limited(&self) -> usize {
        self.lock().rate_limited
    }

    /// Formulas answered with 422 `INVALID_FILTER_BY_FORMULA`.
    pub fn invalid_formulas(&self) -> Vec<String> {
        self.lock().invalid_formulas.clone()
    }

    /// How many records each accepted formula matched, in order.
    pub fn filter_matches(&self) -> Vec<usize> {
        self.lock().filter_matches.clone()
    }

    /// The next `n` requests get `failure` instead of reaching the API.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut inner = self.lock();
        inner.failures.extend(std::iter::repeat_n(Some(failure), n));
    }

    /// The next `ok` requests reach the API; the one after gets `failure`
    /// (a listing that breaks on a later page).
    pub fn fail_after(&self, ok: usize, failure: Failure) {
        let mut inner = self.lock();
        inner.failures.extend(std::iter::repeat_n(None, ok));
        inner.failures.push_back(Some(failure));
    }

    /// How long every request takes before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }
}

/// Counting, latency, injected failures, the token check and the rate
/// limit, in front of the handlers as Airtable's front door is.
async fn gate(State(at): State<Airtable>, req: Request, next: Next) -> Response {
    let now = Instant::now();
    let segments: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    let kind = match segments.len() {
        4 => Kind::Get,
        _ if req.uri().query().unwrap_or("").contains("filterByFormula=") => Kind::Filter,
        _ => Kind::List,
    };
    // Base ids are plain alphanumerics: the raw segment is the id.
    let base = segments.get(1).copied().unwrap_or("").to_string();
    let (latency, failure) = {
        let mut inner = at.lock();
        *inner.requests.entry(kind).or_default() += 1;
        inner.arrivals.push(now);
        (inner.latency, inner.failures.pop_front().flatten())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(failure) = failure {
        return failure_response(failure);
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(KEY) {
        return error(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_REQUIRED",
            "Authentication required",
        );
    }
    if at.over_rate_limit(&base, now) {
        return rate_limit_response();
    }
    next.run(req).await
}

impl Airtable {
    /// Counts the request against its base's last second; true when it is
    /// one too many, or the base is still paused after an earlier excess.
    fn over_rate_limit(&self, base: &str, now: Instant) -> bool {
        let mut inner = self.lock();
        let paused = inner
            .paused_until
            .get(base)
            .is_some_and(|until| now < *until);
        let window = inner.windows.entry(base.to_string()).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            window.pop_front();
        }
        window.push_back(now);
        let excess = window.len() > REQUESTS_PER_SECOND;
        if excess && !paused {
            inner.paused_until.insert(base.to_string(), now + PENALTY);
        }
        if paused || excess {
            inner.rate_limited += 1;
        }
        paused || excess
    }
}

fn failure_response(failure: Failure) -> Response {
    match failure {
        Failure::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SERVER_ERROR",
            "Try again. If the problem persists, contact support.",
        ),
        Failure::Unavailable => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "The server could not process your request in time.",
        ),
        Failure::RateLimited => rate_limit_response(),
        Failure::Canned { status, body } => (
            StatusCode::from_u16(status).unwrap(),
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body,
        )
            .into_response(),
    }
}

fn rate_limit_response() -> Response {
    let body = json!({"errors": [{
        "error": "RATE_LIMIT_REACHED",
        "message": "Rate limit exceeded. Please try again later",
    }]});
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"type": kind, "message": message}})),
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "NOT_FOUND"}))).into_response()
}

fn unprocessable(kind: &str, message: &str) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, kind, message)
}

/// The answer for a base or table that is not ours, if it is not.
fn wrong_table(base: &str, table: &str) -> Option<Response> {
    if base != BASE {
        return Some(not_found());
    }
    if table != TABLE && table != TABLE_ID {
        return Some(error(
            StatusCode::NOT_FOUND,
            "TABLE_NOT_FOUND",
            &format!("Could not find table {table} in application {base}"),
        ));
    }
    None
}

async fn get_record(
    State(at): State<Airtable>,
    Path((base, table, record)): Path<(String, String, String)>,
) -> Response {
    if let Some(denied) = wrong_table(&base, &table) {
        return denied;
    }
    let inner = at.lock();
    match inner.records.iter().find(|r| r.id == record) {
        Some(r) => Json(r.to_json()).into_response(),
        None => not_found(),
    }
}

async fn list_records(
    State(at): State<Airtable>,
    Path((base, table)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(denied) = wrong_table(&base, &table) {
        return denied;
    }
    let page_size = match query.get("pageSize").map(|s| s.parse::<usize>()) {
        None => MAX_PAGE_SIZE,
        Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
        Some(_) => {
            return unprocessable(
                "INVALID_REQUEST_UNKNOWN",
                "pageSize must be a number from 1 to 100",
            )
        }
    };
    let mut inner = at.lock();
    let mut iteration = match query.get("offset") {
        Some(offset) => match inner.iterations.remove(offset) {
            Some(it) => it,
            None => {
                return unprocessable(
                    "LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
                    "The iterator is not available. Restart the listing.",
                )
            }
        },
        None => {
            let matcher = match query.get("filterByFormula") {
                None => None,
                Some(formula) => match parse_email_formula(formula) {
                    Ok((field, _)) if !inner.schema.contains(&field) => {
                        inner.invalid_formulas.push(formula.clone());
                        return unprocessable(
                            "INVALID_FILTER_BY_FORMULA",
                            &format!(
                                "The formula for filtering records is invalid: Unknown field names: {field}"
                            ),
                        );
                    }
                    Ok(parsed) => Some(parsed),
                    Err(why) => {
                        inner.invalid_formulas.push(formula.clone());
                        return unprocessable(
                            "INVALID_FILTER_BY_FORMULA",
                            &format!("The formula for filtering records is invalid: {why}"),
                        );
                    }
                },
            };
            let max_records = query
                .get("maxRecords")
                .and_then(|m| m.parse::<usize>().ok())
                .unwrap_or(usize::MAX);
            let ids: VecDeque<String> = inner
                .records
                .iter()
                .filter(|r| {
                    matcher
                        .as_ref()
                        .is_none_or(|(field, value)| lower_trim_equals(r, field, value))
                })
                .take(max_records)
                .map(|r| r.id.clone())
                .collect();
            if matcher.is_some() {
                inner.filter_matches.push(ids.len());
            }
            Iteration { ids }
        }
    };
    let mut records = Vec::new();
    while records.len() < page_size {
        let Some(id) = iteration.ids.pop_front() else {
            break;
        };
        // Records deleted since the listing began are skipped.
        if let Some(r) = inner.records.iter().find(|r| r.id == id) {
            records.push(r.to_json());
        }
    }
    let mut body = json!({ "records": records });
    if !iteration.ids.is_empty() {
        let last = records.last().and_then(|r| r["id"].as_str()).unwrap_or("");
        let token = format!(
            "itr{}/{last}",
            Alphanumeric.sample_string(&mut rand::thread_rng(), 14)
        );
        body["offset"] = json!(token);
        inner.iterations.insert(token, iteration);
    }
    Json(body).into_response()
}

/// `LOWER(TRIM({field}))` of the record, compared with `LOWER('value')`.
/// Airtable reads a list (a lookup) as its items joined by ", " and a
/// missing field as empty text.
fn lower_trim_equals(record: &Record, field: &str, value: &str) -> bool {
    let text = match record.fields.get(field) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    };
    text.trim().to_lowercase() == value.to_lowercase()
}

/// `LOWER(TRIM({field})) = LOWER('value')` → `(field, value)`, unescaped.
/// Spaces between tokens are free; everything else is exact.
fn parse_email_formula(formula: &str) -> Result<(String, String), String> {
    let mut p = Parser {
        rest: formula.chars().collect::<Vec<_>>().into(),
    };
    for token in ["LOWER", "(", "TRIM", "("] {
        p.token(token)?;
    }
    let field = p.field_ref()?;
    for token in [")", ")", "=", "LOWER", "("] {
        p.token(token)?;
    }
    let value = p.string()?;
    p.token(")")?;
    p.skip_spaces();
    if !p.rest.is_empty() {
        return Err(format!(
            "unexpected {:?} after the comparison",
            p.rest.iter().collect::<String>()
        ));
    }
    Ok((field, value))
}

struct Parser {
    rest: VecDeque<char>,
}

impl Parser {
    fn skip_spaces(&mut self) {
        while self.rest.front().is_some_and(|c| *c == ' ') {
            self.rest.pop_front();
        }
    }

    fn token(&mut self, token: &str) -> Result<(), String> {
        self.skip_spaces();
        for want in token.chars() {
            match self.rest.pop_front() {
                Some(c) if c == want => {}
                Some(c) => return Err(format!("expected {token:?}, found {c:?}")),
                None => return Err(format!("expected {token:?}, found the end")),
            }
        }
        Ok(())
    }

    /// `{name}`; `\}` is a brace within the name, and no other escape exists.
    fn field_ref(&mut self) -> Result<String, String> {
        self.token("{")?;
        let mut name = String::new();
        loop {
            match self.rest.pop_front() {
                Some('}') => return Ok(name),
                Some('\\') => match self.rest.pop_front() {
                    Some('}') => name.push('}'),
                    other => return Err(format!("unexpected escape \\{other:?} in a field name")),
                },
                Some(c) => name.push(c),
                None => return Err("unterminated field reference".into()),
            }
        }
    }

    /// `'text'`; a backslash takes the next character literally.
    fn string(&mut self) -> Result<String, String> {
        self.token("'")?;
        let mut value = String::new();
        loop {
            match self.rest.pop_front() {
                Some('\'') => return Ok(value),
                Some('\\') => match self.rest.pop_front() {
                    Some(c) => value.push(c),
                    None => return Err("unterminated string".into()),
                },
                Some(c) => value.push(c),
                None => return Err("unterminated string".into()),
            }
        }
    }
}

/// Airtable leaves these out of `fields`.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}
