//! A stateful stand-in for the GoTrue (Supabase Auth) admin API, served on
//! 127.0.0.1:0 inside the test process.
//!
//! It follows what supabase/auth does, not what its clients assume:
//! - create checks the email first (422 `email_exists`), then inserts; an
//!   `id` that is already taken is not checked and fails the insert, which
//!   GoTrue reports as a bare 500 (`internal/api/admin.go`, adminUserCreate);
//! - update merges `user_metadata` / `app_metadata` key by key, `null`
//!   deleting a key (`internal/models/user.go`), and does not check email
//!   uniqueness, so a taken email is a 500 from the unique index;
//! - with [`GoTrue::set_conflict_shape`]`(`[`Shape::Status422`]`)` it acts
//!   as versions and proxies that check ids and emails themselves: a taken
//!   id on create is 422 `user_already_exists` ("User already registered",
//!   the code supabase/auth gives a taken email on `/signup`; its admin API
//!   does not check ids) and a taken email on update is 422
//!   `email_exists`, neither touching the store; a taken email on create is
//!   422 `email_exists` in both shapes;
//! - `ban_duration` is a Go duration or `"none"`; `banned_until` is omitted
//!   from the user JSON when unset;
//! - `?filter=` is `email LIKE '%f%' OR user_metadata.full_name ILIKE '%f%'`
//!   (case-sensitive on the lower-cased stored email; `%` and `_` are
//!   wildcards);
//! - users are listed newest first, `page` is 1-based, `per_page` defaults
//!   to 50 and is at most 1000, with `Link` (next, last) and `X-Total-Count`;
//! - error bodies are `{"code","message"}` for `X-Supabase-Api-Version:
//!   2024-01-01` and `{"code": status, "error_code", "msg"}` otherwise;
//! - `POST /admin/generate_link` (`adminGenerateLink`) answers the user's
//!   fields plus `action_link`, `email_otp`, `hashed_token`,
//!   `verification_type` and `redirect_to`; a `magiclink` for an email with
//!   no user signs one up (unconfirmed), as GoTrue does; the link is
//!   `{url}/auth/v1/verify?token=…&type=magiclink&redirect_to=…`, and
//!   `GET /verify` takes it once: it confirms the email and redirects to
//!   `redirect_to` with the session in the fragment (or an `otp_expired`
//!   error fragment for a used or unknown token).
//!
//! Test controls live on [`GoTrue`], a cheap `Clone` handle onto the state.

use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use uuid::Uuid;

/// The service-role key the stand-in accepts unless told otherwise.
pub const KEY: &str = "sb-service-role-test-key-7f3a9c";

const API_VERSION: &str = "x-supabase-api-version";
const DEFAULT_PER_PAGE: u64 = 50;
const MAX_PER_PAGE: u64 = 1000;

/// A user as the stand-in stores it.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub user_metadata: Map<String, Value>,
    pub app_metadata: Map<String, Value>,
    pub email_confirmed_at: Option<DateTime<Utc>>,
    pub banned_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Insertion order: the tie-breaker for "newest first".
    seq: u64,
}

impl User {
    pub fn is_banned(&self) -> bool {
        self.banned_until.is_some_and(|t| t > Utc::now())
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "aud": "authenticated",
            "role": "authenticated",
            "email": self.email,
            "phone": "",
            "app_metadata": self.app_metadata,
            "user_metadata": self.user_metadata,
            "identities": [],
            "created_at": ts(self.created_at),
            "updated_at": ts(self.updated_at),
            "is_anonymous": false,
        });
        if let Some(at) = self.email_confirmed_at {
            v["email_confirmed_at"] = json!(ts(at));
            v["confirmed_at"] = json!(ts(at));
        }
        if let Some(at) = self.banned_until {
            v["banned_until"] = json!(ts(at));
        }
        v
    }
}

/// How a taken id or email is answered (see the module comment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Shape {
    /// supabase/auth's admin API: a bare 500 from the unique index.
    #[default]
    Status500,
    /// A 422 with an error code, before anything is written.
    Status422,
}

/// A canned answer for the next request(s), whatever they are.
#[derive(Debug, Clone)]
pub enum Failure {
    /// 429 `over_request_rate_limit` with `Retry-After: secs`.
    RateLimited { retry_after_secs: u64 },
    /// 500 `unexpected_failure`.
    ServerError,
    /// Exactly this status, headers and body.
    Canned {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
}

#[derive(Default)]
struct Inner {
    users: BTreeMap<Uuid, User>,
    /// GoTrue's unique index on email: a lookup, not a scan, so the
    /// stand-in's cost per request does not grow with its users (it shares
    /// the machine with what the benchmarks measure).
    by_email: HashMap<String, Uuid>,
    seq: u64,
    requests: HashMap<(String, String), usize>,
    failures: VecDeque<Failure>,
    lose_next_create: bool,
    latency: Duration,
    legacy_errors: bool,
    omit_link_header: bool,
    last_api_version: Option<String>,
    conflict_shape: Shape,
    conflicts: Conflicts,
    links: Vec<IssuedLink>,
}

/// A sign-in link `generate_link` made.
#[derive(Debug, Clone)]
pub struct IssuedLink {
    pub email: String,
    pub hashed_token: String,
    pub redirect_to: String,
    pub action_link: String,
    pub used: bool,
}

/// Creates and updates refused so far because an id or email was taken,
/// whatever the shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conflicts {
    pub email_on_create: usize,
    pub id_on_create: usize,
    pub email_on_update: usize,
}

impl Conflicts {
    /// The answers that differ between the shapes.
    pub fn shaped(&self) -> usize {
        self.id_on_create + self.email_on_update
    }

    pub fn total(&self) -> usize {
        self.email_on_create + self.shaped()
    }
}

impl Inner {
    /// Adds a user (ids and emails are checked unique by the caller).
    fn put(&mut self, user: User) {
        if let Some(old) = self.users.get(&user.id) {
            self.by_email.remove(&old.email);
        }
        self.by_email.insert(user.email.clone(), user.id);
        self.users.insert(user.id, user);
    }
}

#[derive(Clone)]
pub struct GoTrue {
    url: String,
    key: Arc<str>,
    inner: Arc<Mutex<Inner>>,
}

impl GoTrue {
    /// Starts a stand-in that accepts [`KEY`].
    pub async fn start() -> Self {
        Self::start_with_key(KEY).await
    }

    pub async fn start_with_key(key: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let gotrue = Self {
            url,
            key: key.into(),
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/auth/v1/admin/users", get(list_users).post(create_user))
            .route("/auth/v1/admin/users/{id}", get(get_user).put(update_user))
            .route(
                "/auth/v1/admin/generate_link",
                axum::routing::post(generate_link),
            )
            .route_layer(middleware::from_fn_with_state(gotrue.clone(), gate))
            // What a browser follows: no key.
            .route("/auth/v1/verify", get(verify))
            .with_state(gotrue.clone());
        // Lives as long as the test's runtime.
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        gotrue
    }

    /// The project URL (what `SUPABASE_URL` would hold); the API is under `/auth/v1`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Puts a confirmed user straight into the store, as if created outside
    /// rosterd. `app_metadata` is merged over GoTrue's `provider(s)` keys.
    pub fn seed(&self, id: Uuid, email: &str, user_metadata: Value, app_metadata: Value) -> Uuid {
        let mut inner = self.lock();
        let now = Utc::now();
        let mut app = base_app_metadata();
        merge(&mut app, as_map(app_metadata));
        inner.seq += 1;
        let user = User {
            id,
            email: email.to_lowercase(),
            user_metadata: as_map(user_metadata),
            app_metadata: app,
            email_confirmed_at: Some(now),
            banned_until: None,
            created_at: now,
            updated_at: now,
            seq: inner.seq,
        };
        inner.put(user);
        id
    }

    /// A plain pre-existing user with a random id and no metadata.
    pub fn seed_email(&self, email: &str) -> Uuid {
        self.seed(Uuid::new_v4(), email, json!({}), json!({}))
    }

    /// Every user, newest first (GoTrue's listing order).
    /// Every sign-in link `generate_link` made, oldest first.
    pub fn links(&self) -> Vec<IssuedLink> {
        self.lock().links.clone()
    }

    pub fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = self.lock().users.values().cloned().collect();
        users.sort_by_key(|u| std::cmp::Reverse(u.seq));
        users
    }

    pub fn user(&self, id: Uuid) -> Option<User> {
        self.lock().users.get(&id).cloned()
    }

    pub fn user_by_email(&self, email: &str) -> Option<User> {
        let inner = self.lock();
        let id = inner.by_email.get(&email.to_lowercase())?;
        inner.users.get(id).cloned()
    }

    /// Requests seen for a method and route, e.g. `("GET", "/admin/users/{id}")`.
    pub fn requests(&self, method: &str, route: &str) -> usize {
        let key = (method.to_string(), route.to_string());
        self.lock().requests.get(&key).copied().unwrap_or(0)
    }

    pub fn total_requests(&self) -> usize {
        self.lock().requests.values().sum()
    }

    /// The next `n` requests get `failure` instead of reaching the API.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut inner = self.lock();
        inner.failures.extend(std::iter::repeat_n(failure, n));
    }

    /// The next successful create commits the user, then answers 500: the
    /// caller never learns that it worked.
    pub fn lose_next_create(&self) {
        self.lock().lose_next_create = true;
    }

    /// How long every request takes before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Behave like a GoTrue from before API versioning: old error bodies
    /// whatever `X-Supabase-Api-Version` says.
    pub fn set_legacy_errors(&self, on: bool) {
        self.lock().legacy_errors = on;
    }

    /// Drop the `Link` header from listings (as some proxies do), leaving
    /// only `X-Total-Count`.
    pub fn set_omit_link_header(&self, on: bool) {
        self.lock().omit_link_header = on;
    }

    /// How a taken id (create) or email (update) is answered from now on.
    pub fn set_conflict_shape(&self, shape: Shape) {
        self.lock().conflict_shape = shape;
    }

    /// How often a test met the answers it is about.
    pub fn conflicts(&self) -> Conflicts {
        self.lock().conflicts
    }

    /// The `X-Supabase-Api-Version` of the latest request.
    pub fn last_api_version(&self) -> Option<String> {
        self.lock().last_api_version.clone()
    }

    /// Whether error bodies use the 2024-01-01 shape for this request.
    fn versioned(&self, headers: &HeaderMap) -> bool {
        !self.lock().legacy_errors
            && headers
                .get(API_VERSION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v >= "2024-01-01")
    }
}

/// Counting, latency, injected failures, the lost-response switch and the
/// key check, in the order a real deployment would apply them (the gateway
/// and its rate limiter sit in front of GoTrue's own JWT check).
async fn gate(State(g): State<GoTrue>, matched: MatchedPath, req: Request, next: Next) -> Response {
    let route = matched.as_str().trim_start_matches("/auth/v1").to_string();
    let is_create = req.method() == Method::POST && route == "/admin/users";
    let (latency, failure) = {
        let mut inner = g.lock();
        *inner
            .requests
            .entry((req.method().to_string(), route))
            .or_default() += 1;
        inner.last_api_version = req
            .headers()
            .get(API_VERSION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (inner.latency, inner.failures.pop_front())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let versioned = g.versioned(req.headers());
    if let Some(failure) = failure {
        return failure_response(failure, versioned);
    }
    if let Err(denied) = authorize(&g.key, req.headers(), versioned) {
        return denied.into_response();
    }
    let response = next.run(req).await;
    if is_create && response.status().is_success() && std::mem::take(&mut g.lock().lose_next_create)
    {
        return api_error(
            versioned,
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Unexpected failure, please check server logs for more information",
        );
    }
    response
}

fn failure_response(failure: Failure, versioned: bool) -> Response {
    match failure {
        Failure::RateLimited { retry_after_secs } => {
            let mut r = api_error(
                versioned,
                StatusCode::TOO_MANY_REQUESTS,
                "over_request_rate_limit",
                "Request rate limit reached",
            );
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after_secs));
            r
        }
        Failure::ServerError => api_error(
            versioned,
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Unexpected failure, please check server logs for more information",
        ),
        Failure::Canned {
            status,
            headers,
            body,
        } => {
            let mut r = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (name, value) in headers {
                r.headers_mut()
                    .append(name, HeaderValue::from_str(&value).unwrap());
            }
            r
        }
    }
}

/// An early answer from a handler. Boxed: a `Response` is large, and the
/// happy path should not pay for carrying one around.
struct Reject(Box<Response>);

impl From<Response> for Reject {
    fn from(r: Response) -> Self {
        Self(Box::new(r))
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        *self.0
    }
}

fn reject(versioned: bool, status: StatusCode, code: &str, message: &str) -> Reject {
    api_error(versioned, status, code, message).into()
}

fn authorize(key: &str, headers: &HeaderMap, versioned: bool) -> Result<(), Reject> {
    let unauthorized =
        |body: Value| Reject::from((StatusCode::UNAUTHORIZED, Json(body)).into_response());
    // The API gateway (Kong) answers for `apikey`, in its own shape.
    match headers.get("apikey").and_then(|v| v.to_str().ok()) {
        None => {
            return Err(unauthorized(
                json!({"message": "No API key found in request"}),
            ))
        }
        Some(k) if k != key => return Err(unauthorized(json!({"message": "Invalid API key"}))),
        Some(_) => {}
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    match bearer {
        None => Err(reject(
            versioned,
            StatusCode::UNAUTHORIZED,
            "no_authorization",
            "This endpoint requires a Bearer token",
        )),
        Some(token) if token != key => Err(reject(
            versioned,
            StatusCode::UNAUTHORIZED,
            "bad_jwt",
            "invalid JWT: unable to parse or verify signature, signature is invalid",
        )),
        Some(_) => Ok(()),
    }
}

fn api_error(versioned: bool, status: StatusCode, code: &str, message: &str) -> Response {
    let body = if versioned {
        json!({"code": code, "message": message})
    } else {
        json!({"code": status.as_u16(), "error_code": code, "msg": message})
    };
    let mut r = (status, Json(body)).into_response();
    r.headers_mut()
        .insert("x-sb-error-code", HeaderValue::from_str(code).unwrap());
    if versioned {
        r.headers_mut()
            .insert(API_VERSION, HeaderValue::from_static("2024-01-01"));
    }
    r
}

/// A unique-index violation inside GoTrue's transaction. Versioned servers
/// hide it behind `unexpected_failure`; older ones pass the Postgres error
/// through (`utilities.NewPostgresError`), still as a 500.
fn unique_violation(versioned: bool, message: &str, constraint: &str, detail: String) -> Reject {
    if versioned {
        return reject(
            true,
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            message,
        );
    }
    let body = json!({
        "code": "23505",
        "message": format!("duplicate key value violates unique constraint \"{constraint}\""),
        "detail": detail,
    });
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body))
        .into_response()
        .into()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AdminUserParams {
    id: Option<String>,
    email: Option<String>,
    email_confirm: bool,
    user_metadata: Option<Map<String, Value>>,
    app_metadata: Option<Map<String, Value>>,
    ban_duration: Option<String>,
}

fn parse_params(body: &[u8], versioned: bool) -> Result<AdminUserParams, Reject> {
    serde_json::from_slice(body).map_err(|e| {
        reject(
            versioned,
            StatusCode::BAD_REQUEST,
            "bad_json",
            &format!("Could not parse request body as JSON: {e}"),
        )
    })
}

/// `Ok(None)` for no ban change, `Ok(Some(None))` to lift a ban.
fn parse_ban(ban: Option<&str>, versioned: bool) -> Result<Option<Option<DateTime<Utc>>>, Reject> {
    match ban {
        None | Some("") => Ok(None),
        Some("none") => Ok(Some(None)),
        Some(d) => match go_duration(d) {
            Some(dur) if dur.is_zero() => Ok(Some(None)),
            Some(dur) => Ok(Some(Some(Utc::now() + dur))),
            None => Err(reject(
                versioned,
                StatusCode::BAD_REQUEST,
                "validation_failed",
                &format!("invalid format for ban duration: time: invalid duration \"{d}\""),
            )),
        },
    }
}

fn validate_email(email: &str, versioned: bool) -> Result<String, Reject> {
    let valid = email.len() <= 255
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if valid {
        Ok(email.to_lowercase())
    } else {
        Err(reject(
            versioned,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "Unable to validate email address: invalid format",
        ))
    }
}

fn user_not_found(versioned: bool) -> Reject {
    reject(
        versioned,
        StatusCode::NOT_FOUND,
        "user_not_found",
        "User not found",
    )
}

fn parse_user_id(raw: &str, versioned: bool) -> Result<Uuid, Reject> {
    Uuid::parse_str(raw).map_err(|_| {
        reject(
            versioned,
            StatusCode::NOT_FOUND,
            "validation_failed",
            "user_id must be an UUID",
        )
    })
}

async fn create_user(
    State(g): State<GoTrue>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let v = g.versioned(&headers);
    let params = parse_params(&body, v)?;
    let email = params.email.unwrap_or_default();
    if email.is_empty() {
        return Err(reject(
            v,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "Cannot create a user without either an email or phone",
        ));
    }
    let email = validate_email(&email, v)?;
    let mut inner = g.lock();
    if inner.by_email.contains_key(&email) {
        inner.conflicts.email_on_create += 1;
        return Err(reject(
            v,
            StatusCode::UNPROCESSABLE_ENTITY,
            "email_exists",
            "A user with this email address has already been registered",
        ));
    }
    let id = match params.id.as_deref() {
        None | Some("") => Uuid::new_v4(),
        Some(raw) => {
            let id = Uuid::parse_str(raw).map_err(|_| {
                reject(
                    v,
                    StatusCode::BAD_REQUEST,
                    "validation_failed",
                    "ID must conform to the uuid v4 format",
                )
            })?;
            if id.is_nil() {
                return Err(reject(
                    v,
                    StatusCode::BAD_REQUEST,
                    "validation_failed",
                    "ID cannot be a nil uuid",
                ));
            }
            id
        }
    };
    let ban = parse_ban(params.ban_duration.as_deref(), v)?;
    if inner.users.contains_key(&id) {
        inner.conflicts.id_on_create += 1;
        return Err(match inner.conflict_shape {
            Shape::Status500 => unique_violation(
                v,
                "Database error creating new user",
                "users_pkey",
                format!("Key (id)=({id}) already exists."),
            ),
            Shape::Status422 => reject(
                v,
                StatusCode::UNPROCESSABLE_ENTITY,
                "user_already_exists",
                "User already registered",
            ),
        });
    }
    let now = Utc::now();
    let mut app_metadata = base_app_metadata();
    merge(&mut app_metadata, params.app_metadata.unwrap_or_default());
    let mut user_metadata = params.user_metadata.unwrap_or_default();
    let mut email_confirmed_at = None;
    if params.email_confirm {
        email_confirmed_at = Some(now);
        user_metadata.insert("email_verified".into(), json!(true));
    }
    inner.seq += 1;
    let user = User {
        id,
        email,
        user_metadata,
        app_metadata,
        email_confirmed_at,
        banned_until: ban.flatten(),
        created_at: now,
        updated_at: now,
        seq: inner.seq,
    };
    let body = user.to_json();
    inner.put(user);
    Ok(Json(body).into_response())
}

async fn get_user(
    State(g): State<GoTrue>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Reject> {
    let v = g.versioned(&headers);
    let user = g
        .user(parse_user_id(&id, v)?)
        .ok_or_else(|| user_not_found(v))?;
    Ok(Json(user.to_json()).into_response())
}

async fn update_user(
    State(g): State<GoTrue>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Reject> {
    let v = g.versioned(&headers);
    let id = parse_user_id(&id, v)?;
    if g.user(id).is_none() {
        return Err(user_not_found(v));
    }
    let params = parse_params(&body, v)?;
    let email = match params.email.as_deref() {
        None | Some("") => None,
        Some(e) => Some(validate_email(e, v)?),
    };
    let ban = parse_ban(params.ban_duration.as_deref(), v)?;
    let mut inner = g.lock();
    // One transaction in GoTrue: the unique index fails it as a whole.
    if let Some(email) = &email {
        if inner
            .by_email
            .get(email)
            .is_some_and(|holder| *holder != id)
        {
            inner.conflicts.email_on_update += 1;
            return Err(match inner.conflict_shape {
                Shape::Status500 => unique_violation(
                    v,
                    "Error updating user",
                    "users_email_partial_key",
                    format!("Key (email)=({email}) already exists."),
                ),
                Shape::Status422 => reject(
                    v,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "email_exists",
                    "A user with this email address has already been registered",
                ),
            });
        }
    }
    let Inner {
        users, by_email, ..
    } = &mut *inner;
    let user = users.get_mut(&id).ok_or_else(|| user_not_found(v))?;
    let now = Utc::now();
    if params.email_confirm {
        user.email_confirmed_at = Some(now);
        user.user_metadata
            .insert("email_verified".into(), json!(true));
    }
    if let Some(email) = email {
        by_email.remove(&user.email);
        by_email.insert(email.clone(), id);
        user.email = email;
    }
    if let Some(app) = params.app_metadata {
        merge(&mut user.app_metadata, app);
    }
    if let Some(meta) = params.user_metadata {
        merge(&mut user.user_metadata, meta);
    }
    if let Some(until) = ban {
        user.banned_until = until;
    }
    user.updated_at = now;
    Ok(Json(user.to_json()).into_response())
}

async fn list_users(
    State(g): State<GoTrue>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, Reject> {
    let v = g.versioned(&headers);
    let bad = |why: &str| {
        reject(
            v,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            &format!("Bad Pagination Parameters: {why}"),
        )
    };
    let page = match query.get("page").map(|p| p.parse::<u64>()) {
        None => 1,
        Some(Ok(0)) => return Err(bad("page must be greater than 0")),
        Some(Ok(p)) => p,
        Some(Err(e)) => return Err(bad(&e.to_string())),
    };
    let per_page = match query.get("per_page").map(|p| p.parse::<u64>()) {
        None => DEFAULT_PER_PAGE,
        Some(Ok(0)) => return Err(bad("per_page must be greater than 0")),
        Some(Ok(n)) if n > MAX_PER_PAGE => {
            return Err(bad(&format!("per_page must not exceed {MAX_PER_PAGE}")))
        }
        Some(Ok(n)) => n,
        Some(Err(e)) => return Err(bad(&e.to_string())),
    };
    let filter = query.get("filter").filter(|f| !f.is_empty());
    let matching: Vec<User> = g
        .users()
        .into_iter()
        .filter(|u| filter.is_none_or(|f| matches_filter(u, f)))
        .collect();
    let total = matching.len() as u64;
    let users: Vec<Value> = matching
        .iter()
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
        .map(User::to_json)
        .collect();

    let mut response = Json(json!({"users": users, "aud": "authenticated"})).into_response();
    let out = response.headers_mut();
    let total_pages = total.div_ceil(per_page).max(1);
    if !g.lock().omit_link_header {
        // As GoTrue builds it: the request URL with `page` replaced, query
        // re-encoded in key order; "next" only while pages remain.
        let link_to = |n: u64| {
            let mut q = query.clone();
            q.insert("page".into(), n.to_string());
            let url = reqwest::Url::parse_with_params("http://x", &q).unwrap();
            format!("<{}?{}>", uri.path(), url.query().unwrap_or(""))
        };
        let mut link = String::new();
        if total_pages > page {
            link.push_str(&format!("{}; rel=\"next\", ", link_to(page + 1)));
        }
        link.push_str(&format!("{}; rel=\"last\"", link_to(total_pages)));
        out.insert("link", HeaderValue::from_str(&link).unwrap());
    }
    out.insert("x-total-count", HeaderValue::from(total));
    Ok(response)
}

fn matches_filter(user: &User, filter: &str) -> bool {
    let pattern: Vec<char> = format!("%{filter}%").chars().collect();
    let email: Vec<char> = user.email.chars().collect();
    let full_name = user
        .user_metadata
        .get("full_name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let lower_pattern: Vec<char> = format!("%{filter}%").to_lowercase().chars().collect();
    let lower_name: Vec<char> = full_name.to_lowercase().chars().collect();
    like(&pattern, &email) || like(&lower_pattern, &lower_name)
}

/// SQL `LIKE`: `%` any run, `_` any one character, `\` escapes.
fn like(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('%', rest)) => (0..=text.len()).any(|i| like(rest, &text[i..])),
        Some(('_', rest)) => !text.is_empty() && like(rest, &text[1..]),
        Some(('\\', [escaped, rest @ ..])) => {
            text.first() == Some(escaped) && like(rest, &text[1..])
        }
        Some((c, rest)) => text.first() == Some(c) && like(rest, &text[1..]),
    }
}

fn base_app_metadata() -> Map<String, Value> {
    as_map(json!({"provider": "email", "providers": ["email"]}))
}

/// GoTrue's UpdateUserMetaData / UpdateAppMetaData: top-level keys are
/// set, `null` deletes, nested objects are replaced, not merged.
fn merge(target: &mut Map<String, Value>, updates: Map<String, Value>) {
    for (key, value) in updates {
        if value.is_null() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

fn as_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => panic!("metadata must be a JSON object, got {other}"),
    }
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Go's `time.ParseDuration` for whole numbers: `876000h`, `1h30m`, `90s`.
fn go_duration(s: &str) -> Option<chrono::TimeDelta> {
    let mut total = chrono::TimeDelta::zero();
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "h" => chrono::TimeDelta::try_hours(n)?,
            "m" => chrono::TimeDelta::try_minutes(n)?,
            "s" => chrono::TimeDelta::try_seconds(n)?,
            "ms" => chrono::TimeDelta::try_milliseconds(n)?,
            "us" | "µs" => chrono::TimeDelta::microseconds(n),
            "ns" => chrono::TimeDelta::nanoseconds(n),
            _ => return None,
        };
        total = total.checked_add(&part)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[derive(Deserialize)]
struct GenerateLinkParams {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    redirect_to: String,
}

async fn generate_link(
    State(g): State<GoTrue>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let v = g.versioned(&headers);
    let params: GenerateLinkParams = serde_json::from_slice(&body).map_err(|_| {
        reject(
            v,
            StatusCode::BAD_REQUEST,
            "bad_json",
            "Could not parse request body as JSON",
        )
    })?;
    if params.email.is_empty() {
        return Err(reject(
            v,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "An email address is required",
        ));
    }
    let email = validate_email(&params.email, v)?;
    if !matches!(params.kind.as_str(), "magiclink" | "recovery") {
        return Err(reject(
            v,
            StatusCode::BAD_REQUEST,
            "validation_failed",
            &format!("Invalid email action link type requested: {}", params.kind),
        ));
    }
    let mut inner = g.lock();
    let existing = inner.by_email.get(&email).copied();
    let user = match existing {
        Some(id) => inner.users[&id].clone(),
        None if params.kind == "recovery" => {
            return Err(reject(
                v,
                StatusCode::NOT_FOUND,
                "user_not_found",
                "User with this email not found",
            ))
        }
        // A magic link for nobody signs somebody up.
        None => {
            let now = Utc::now();
            inner.seq += 1;
            let user = User {
                id: Uuid::new_v4(),
                email: email.clone(),
                user_metadata: Map::new(),
                app_metadata: base_app_metadata(),
                email_confirmed_at: None,
                banned_until: None,
                created_at: now,
                updated_at: now,
                seq: inner.seq,
            };
            inner.put(user.clone());
            user
        }
    };
    let otp = format!("{:06}", rand_u32() % 1_000_000);
    let hashed_token =
        format!("{:x}", sha2::Sha256::digest(format!("{email}{otp}")))[..56].to_string();
    let redirect_to = if params.redirect_to.is_empty() {
        "http://localhost:3000".to_string()
    } else {
        params.redirect_to.clone()
    };
    let action_link = format!(
        "{}/auth/v1/verify?token={hashed_token}&type={}&redirect_to={}",
        g.url,
        params.kind,
        form_urlencoded::byte_serialize(redirect_to.as_bytes()).collect::<String>()
    );
    inner.links.push(IssuedLink {
        email,
        hashed_token: hashed_token.clone(),
        redirect_to: redirect_to.clone(),
        action_link: action_link.clone(),
        used: false,
    });
    let mut body = user.to_json();
    body["action_link"] = json!(action_link);
    body["email_otp"] = json!(otp);
    body["hashed_token"] = json!(hashed_token);
    body["verification_type"] = json!(params.kind);
    body["redirect_to"] = json!(redirect_to);
    Ok(Json(body).into_response())
}

fn rand_u32() -> u32 {
    u32::from_le_bytes(Uuid::new_v4().as_bytes()[..4].try_into().unwrap())
}

#[derive(Deserialize)]
struct VerifyParams {
    #[serde(default)]
    token: String,
    #[serde(default)]
    redirect_to: String,
}

/// The browser's end of a sign-in link: once per token.
async fn verify(State(g): State<GoTrue>, Query(q): Query<VerifyParams>) -> Response {
    let mut inner = g.lock();
    let found = inner
        .links
        .iter_mut()
        .find(|l| l.hashed_token == q.token && !l.used);
    let fragment = match found {
        Some(link) => {
            link.used = true;
            let email = link.email.clone();
            if let Some(id) = inner.by_email.get(&email).copied() {
                let user = inner.users.get_mut(&id).expect("indexed");
                user.email_confirmed_at.get_or_insert_with(Utc::now);
            }
            "access_token=stand-in-session&token_type=bearer&type=magiclink".to_string()
        }
        None => "error=access_denied&error_code=otp_expired".to_string(),
    };
    let to = if q.redirect_to.is_empty() {
        "http://localhost:3000".to_string()
    } else {
        q.redirect_to
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(
        axum::http::header::LOCATION,
        HeaderValue::from_str(&format!("{to}#{fragment}")).unwrap(),
    );
    r
}
