//! Supabase Auth (GoTrue) admin API client.
//!
//! Behaviour of the real server that this module relies on (supabase/auth,
//! `internal/api/admin.go`, `internal/api/apierrors/errorcode.go`,
//! `internal/api/errors.go`, `internal/api/signup.go`, `internal/models/user.go`;
//! read at an early `supabase/gotrue` module version and at a 2025 one):
//! - Admin create (`adminUserCreate`) checks the email before it inserts, so
//!   a taken email is a 422 `email_exists` with "A user with this email
//!   address has already been registered" (`DuplicateEmailMsg`); versions
//!   from before error codes send the same 422 with the message alone. A
//!   taken *id* (a custom `id` is accepted by later versions) is not checked
//!   at all: the insert violates the primary key and the answer is a bare
//!   500 (`unexpected_failure`, "Database error creating new user").
//! - Admin update (`adminUserUpdate`) does not check email uniqueness
//!   either; moving a user onto a taken email violates the unique index and
//!   is a bare 500 ("Error updating user").
//! - `user_already_exists` (422 "User already registered") is what `/signup`
//!   answers for a taken email; the admin endpoints of supabase/auth never
//!   send it, but other versions and proxies in front of GoTrue answer 422
//!   `email_exists` or `user_already_exists` (or 409), for a taken id or a
//!   taken email alike. So the code only says "something is taken": a
//!   refused create is told apart by reading the id, and every such answer
//!   becomes [`ProviderError::EmailExists`] or [`ProviderError::IdExists`],
//!   from which the provisioning run decides again with what the provider
//!   holds, instead of retrying the same request.
//! - `app_metadata` and `user_metadata` are merged key by key on update, and
//!   a `null` value deletes its key.
//! - `?filter=` is `email LIKE '%f%' OR user_metadata.full_name ILIKE '%f%'`:
//!   case-sensitive on the (lower-cased) stored email, with `%`/`_` acting as
//!   wildcards — so results are only candidates, never answers.
//! - Error bodies are `{"code": "<error code>", "message"}` when the request
//!   carries `X-Supabase-Api-Version: 2024-01-01`, and
//!   `{"code": <status>, "error_code", "msg"}` from servers that predate it.
//!
//! No retries happen here: the job worker owns retry and backoff, and gets a
//! `Retry-After` hint through [`ProviderError::Transient`].

use super::{AuthProvider, AuthUser, Page, Profile, ProviderError, UserUpdate, BAN_DURATION};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

const API_VERSION_HEADER: &str = "x-supabase-api-version";
const API_VERSION: &str = "2024-01-01";
/// Page size for email look-ups: the filter usually yields a handful of
/// candidates, so one page nearly always settles it.
const FILTER_PER_PAGE: u32 = 200;
/// A server that keeps announcing "next" must not hold a look-up forever.
const MAX_FILTER_PAGES: u32 = 1_000;
/// Error text from the server is for humans; a proxy's HTML page is not.
const MAX_MESSAGE_CHARS: usize = 300;

pub struct SupabaseProvider {
    /// `{SUPABASE_URL}/auth/v1`, without a trailing slash.
    api: String,
    key: SecretString,
    http: reqwest::Client,
}

/// Written by hand so that neither the key nor the HTTP client's internals
/// (which would list default headers) can ever end up in a log line.
impl fmt::Debug for SupabaseProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupabaseProvider")
            .field("api", &self.api)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl SupabaseProvider {
    /// `base_url` is the project URL (`https://xyz.supabase.co`); the admin
    /// API lives under `/auth/v1`. `timeout` bounds each request end to end.
    pub fn new(
        base_url: &str,
        service_role_key: SecretString,
        timeout: Duration,
    ) -> Result<Self, String> {
        let url = Url::parse(base_url.trim())
            .map_err(|e| format!("SUPABASE_URL is not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "SUPABASE_URL must be an http or https URL, not {}:",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("SUPABASE_URL has no host".to_string());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("SUPABASE_URL must not carry a query or fragment".to_string());
        }
        let key = service_role_key.expose_secret();
        if key.is_empty() {
            return Err("SUPABASE_SERVICE_ROLE_KEY is empty".to_string());
        }
        // Checked here so that a bad key fails start-up instead of every request.
        if HeaderValue::from_str(key).is_err() || key.chars().any(char::is_whitespace) {
            return Err(
                "SUPABASE_SERVICE_ROLE_KEY contains characters not allowed in a header".to_string(),
            );
        }
        if timeout.is_zero() {
            return Err("the Supabase request timeout must be greater than zero".to_string());
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut root = url.as_str().trim_end_matches('/').to_string();
        root.push_str("/auth/v1");
        Ok(Self {
            api: root,
            key: service_role_key,
            http,
        })
    }

    fn secret_headers(&self) -> HeaderMap {
        let key = self.key.expose_secret();
        let mut headers = HeaderMap::new();
        // Validated in `new`, so these cannot fail; `sensitive` keeps them out
        // of reqwest's and hyper's own debug output.
        if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {key}")) {
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        if let Ok(mut v) = HeaderValue::from_str(key) {
            v.set_sensitive(true);
            headers.insert("apikey", v);
        }
        headers.insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers
    }

    /// One request. `path` is relative to `/auth/v1` and is what error
    /// messages name: the query can hold an email, which stays out of them.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Reply, CallError> {
        let what = format!("{method} {path}");
        let mut req = self
            .http
            .request(method, format!("{}{}", self.api, path))
            .headers(self.secret_headers());
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| transport_error(&what, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| transport_error(&what, &e))?;
        tracing::debug!(request = %what, status = status.as_u16(), "supabase admin call");
        if status.is_success() {
            Ok(Reply {
                what,
                headers,
                body: bytes.to_vec(),
            })
        } else {
            Err(CallError::Api(ApiError::parse(
                what,
                status,
                &headers,
                &bytes,
                self.key.expose_secret(),
            )))
        }
    }

    async fn fetch_user(&self, id: Uuid) -> Result<Option<AuthUser>, CallError> {
        match self
            .call(Method::GET, &format!("/admin/users/{id}"), &[], None)
            .await
        {
            Ok(reply) => Ok(Some(reply.json::<UserJson>()?.into_auth_user()?)),
            Err(CallError::Api(e)) if e.is_user_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_page(
        &self,
        page: u32,
        per_page: u32,
        filter: Option<&str>,
    ) -> Result<Page, ProviderError> {
        let mut query = vec![
            ("page", page.to_string()),
            ("per_page", per_page.to_string()),
        ];
        if let Some(f) = filter {
            query.push(("filter", f.to_string()));
        }
        let reply = self.call(Method::GET, "/admin/users", &query, None).await?;
        let list: ListJson = reply.json()?;
        let users = list
            .users
            .into_iter()
            .map(UserJson::into_auth_user)
            .collect::<Result<Vec<_>, _>>()?;
        let next = next_page(&reply.headers, page, per_page, users.len())
            .map_err(|m| permanent(&reply.what, &m))?;
        Ok(Page { users, next })
    }

    /// After a create refused as a conflict (422 `email_exists` /
    /// `user_already_exists`, 409) or failed with a 5xx: did it trip over
    /// an id that another user already holds? For a conflict, an id that is
    /// free (or held by a user with our email) leaves only the email, so
    /// the answer is [`ProviderError::EmailExists`] and the caller looks the
    /// email up. For a 5xx, anything short of a clear "yes" keeps the
    /// original error, so the caller's retry (which then meets
    /// `email_exists` if our insert did commit) settles it.
    async fn explain_create_failure(
        &self,
        id: Uuid,
        profile: &Profile,
        original: ApiError,
    ) -> ProviderError {
        let conflict = original.is_conflict();
        match self.fetch_user(id).await {
            Ok(Some(holder)) if !holder.email.eq_ignore_ascii_case(profile.email.trim()) => {
                ProviderError::IdExists
            }
            Ok(_) if conflict => ProviderError::EmailExists,
            // Which of the two clashed is unknown: try again later rather
            // than call a conflict permanent.
            Err(e) if conflict => original.unexplained(&ProviderError::from(e)),
            _ => original.into_provider_error(),
        }
    }

    /// After a 5xx on an email change: GoTrue does not check uniqueness on
    /// update, so a taken email surfaces as a bare 500 that would otherwise
    /// be retried forever.
    async fn explain_update_failure(
        &self,
        id: Uuid,
        email: &str,
        original: ApiError,
    ) -> ProviderError {
        match self.find_by_email(email).await {
            Ok(Some(holder)) if holder.id != id => ProviderError::EmailExists,
            _ => original.into_provider_error(),
        }
    }
}

#[async_trait::async_trait]
impl AuthProvider for SupabaseProvider {
    async fn get_user(&self, id: Uuid) -> Result<Option<AuthUser>, ProviderError> {
        Ok(self.fetch_user(id).await?)
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<AuthUser>, ProviderError> {
        let wanted = email.trim();
        if wanted.is_empty() {
            return Ok(None);
        }
        // Stored emails are lower-case and the email half of the filter is a
        // case-sensitive LIKE, so the filter must be lower-case to match.
        let filter = wanted.to_lowercase();
        let mut page = 1;
        for _ in 0..MAX_FILTER_PAGES {
            let found = self.list_page(page, FILTER_PER_PAGE, Some(&filter)).await?;
            if let Some(user) = found
                .users
                .into_iter()
                .find(|u| u.email.eq_ignore_ascii_case(wanted))
            {
                return Ok(Some(user));
            }
            match found.next {
                Some(next) => page = next,
                None => return Ok(None),
            }
        }
        Err(ProviderError::Permanent {
            message: format!(
                "GET /admin/users: email filter still paging after {MAX_FILTER_PAGES} pages"
            ),
        })
    }

    async fn create_user(&self, id: Uuid, profile: &Profile) -> Result<AuthUser, ProviderError> {
        let mut user_metadata = Map::new();
        // Omitted rather than null: create stores user_metadata as given.
        if let Some(name) = &profile.name {
            user_metadata.insert("name".into(), json!(name));
        }
        let body = json!({
            "id": id,
            "email": profile.email,
            "email_confirm": true,
            "user_metadata": user_metadata,
            "app_metadata": app_metadata(profile),
        });
        match self
            .call(Method::POST, "/admin/users", &[], Some(&body))
            .await
        {
            Ok(reply) => Ok(reply.json::<UserJson>()?.into_auth_user()?),
            Err(CallError::Api(e)) if e.is_conflict() || e.status.is_server_error() => {
                Err(self.explain_create_failure(id, profile, e).await)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn update_user(&self, id: Uuid, update: &UserUpdate) -> Result<AuthUser, ProviderError> {
        let mut body = Map::new();
        if let Some(profile) = &update.profile {
            body.insert("email".into(), json!(profile.email));
            // Metadata is merged server-side; an explicit null is what
            // removes a name that the roster no longer has.
            body.insert("user_metadata".into(), json!({ "name": profile.name }));
            body.insert("app_metadata".into(), app_metadata(profile));
        }
        if let Some(banned) = update.banned {
            let duration = if banned { BAN_DURATION } else { "none" };
            body.insert("ban_duration".into(), json!(duration));
        }
        let body = Value::Object(body);
        match self
            .call(Method::PUT, &format!("/admin/users/{id}"), &[], Some(&body))
            .await
        {
            Ok(reply) => Ok(reply.json::<UserJson>()?.into_auth_user()?),
            Err(CallError::Api(e)) if e.is_user_not_found() => Err(ProviderError::NotFound),
            // An update names no new id, so a conflict can only be the
            // email; the caller looks it up and decides again.
            Err(CallError::Api(e)) if e.is_conflict() && update.profile.is_some() => {
                Err(ProviderError::EmailExists)
            }
            Err(CallError::Api(e)) if e.status.is_server_error() => match &update.profile {
                Some(profile) => Err(self.explain_update_failure(id, &profile.email, e).await),
                None => Err(e.into_provider_error()),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn list_users(&self, page: u32, per_page: u32) -> Result<Page, ProviderError> {
        self.list_page(page.max(1), per_page, None).await
    }
}

fn app_metadata(profile: &Profile) -> Value {
    json!({ "roles": profile.roles, "roster_id": profile.roster_id, "managed_by": super::MANAGED_BY })
}

struct Reply {
    what: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| permanent(&self.what, &format!("malformed response body: {e}")))
    }
}

enum CallError {
    /// The server answered with a non-2xx status.
    Api(ApiError),
    /// Transport trouble or an unusable answer, already classified.
    Other(ProviderError),
}

impl From<ProviderError> for CallError {
    fn from(e: ProviderError) -> Self {
        Self::Other(e)
    }
}

impl From<CallError> for ProviderError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Api(e) => e.into_provider_error(),
            CallError::Other(e) => e,
        }
    }
}

/// A non-2xx answer: status plus GoTrue's error code and message, nothing
/// else from the exchange.
struct ApiError {
    what: String,
    status: StatusCode,
    code: Option<String>,
    message: Option<String>,
    retry_after: Option<Duration>,
}

impl ApiError {
    fn parse(
        what: String,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        key: &str,
    ) -> Self {
        let json: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
        let field = |name: &str| {
            json.as_ref()
                .and_then(|m| m.get(name))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        // 2024-01-01 shape: `code` is the error code. Older shape: `code` is
        // the numeric status and `error_code` the error code. Postgres errors
        // passed through by old servers put the SQLSTATE in `code`.
        let code = field("error_code")
            .or_else(|| field("code"))
            .or_else(|| headers.get("x-sb-error-code").and_then(|v| v.to_str().ok()))
            .map(str::to_string);
        let message = field("message")
            .or_else(|| field("msg"))
            .or_else(|| field("error_description"))
            .or_else(|| field("error"))
            .map(|m| {
                // Belt and braces: no server should echo the key, but if one
                // ever does it must not travel further in our errors.
                let m = m.replace(key, "[redacted]");
                m.chars().take(MAX_MESSAGE_CHARS).collect()
            });
        Self {
            what,
            status,
            code,
            message,
            retry_after: retry_after(headers),
        }
    }

    /// "Something you asked for is taken", in any of the shapes servers
    /// and proxies use: 422 `email_exists` / `user_already_exists`, the
    /// same 422 with only a message (servers from before error codes), or
    /// 409. Which thing is taken is for the caller to find out.
    fn is_conflict(&self) -> bool {
        match self.status {
            StatusCode::CONFLICT => true,
            StatusCode::UNPROCESSABLE_ENTITY => match self.code.as_deref() {
                Some(code) => matches!(code, "email_exists" | "user_already_exists"),
                None => self.message.as_deref().is_some_and(|m| {
                    let m = m.to_ascii_lowercase();
                    m.contains("already been registered")
                        || m.contains("already registered")
                        || m.contains("already exists")
                }),
            },
            _ => false,
        }
    }

    /// Only GoTrue's own "no such user" counts: a 404 from a wrong base URL
    /// or a gateway must not read as "the user does not exist", or a
    /// misconfiguration would look like an empty user base.
    fn is_user_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
            && (self.code.as_deref() == Some("user_not_found")
                || (self.code.is_none() && self.message.as_deref() == Some("User not found")))
    }

    /// A conflict that could not be explained because the look-up failed:
    /// transient, with both reasons.
    fn unexplained(&self, lookup: &ProviderError) -> ProviderError {
        let mut message = format!("{}: HTTP {}", self.what, self.status.as_u16());
        if let Some(code) = &self.code {
            message.push_str(&format!(" {code}"));
        }
        message.push_str(&format!("; looking up what is taken failed: {lookup}"));
        ProviderError::Transient {
            message,
            retry_after: lookup_retry_after(lookup),
        }
    }

    fn into_provider_error(self) -> ProviderError {
        let mut message = format!("{}: HTTP {}", self.what, self.status.as_u16());
        if let Some(code) = &self.code {
            message.push_str(&format!(" {code}"));
        }
        if let Some(text) = &self.message {
            message.push_str(&format!(": {text}"));
        }
        let transient = self.status == StatusCode::TOO_MANY_REQUESTS
            || self.status == StatusCode::REQUEST_TIMEOUT
            || self.status.is_server_error();
        if transient {
            ProviderError::Transient {
                message,
                retry_after: self.retry_after,
            }
        } else {
            ProviderError::Permanent { message }
        }
    }
}

fn lookup_retry_after(e: &ProviderError) -> Option<Duration> {
    match e {
        ProviderError::Transient { retry_after, .. } => *retry_after,
        _ => None,
    }
}

fn permanent(what: &str, detail: &str) -> ProviderError {
    ProviderError::Permanent {
        message: format!("{what}: {detail}"),
    }
}

/// reqwest's own Display names the full URL, query included (an email for
/// look-ups); only the kind of failure is kept.
fn transport_error(what: &str, e: &reqwest::Error) -> CallError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_builder() {
        return CallError::Other(permanent(what, "could not build the request"));
    } else if e.is_body() || e.is_decode() {
        "response body interrupted"
    } else {
        "request failed"
    };
    CallError::Other(ProviderError::Transient {
        message: format!("{what}: {kind}"),
        retry_after: None,
    })
}

/// `Retry-After` as delta-seconds, or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The page after `page`: from `Link: <…?page=N…>; rel="next"` when present
/// (its absence means this is the last page), else from `X-Total-Count`,
/// else guessed from whether the page came back full.
fn next_page(
    headers: &HeaderMap,
    page: u32,
    per_page: u32,
    returned: usize,
) -> Result<Option<u32>, String> {
    let links: Vec<&str> = headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !links.is_empty() {
        let next = links.iter().find_map(|l| link_target(l, "next"));
        return match next {
            None => Ok(None),
            Some(target) => match page_param(target) {
                Some(n) if n > page => Ok(Some(n)),
                // A "next" that does not move forward would loop forever.
                Some(n) => Err(format!(
                    "Link header points back to page {n} from page {page}"
                )),
                None => Err(format!("Link header has no page number in {target:?}")),
            },
        };
    }
    if let Some(total) = headers
        .get("x-total-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        let pages = total.div_ceil(u64::from(per_page.max(1)));
        return Ok((u64::from(page) < pages).then_some(page + 1));
    }
    Ok((returned > 0 && returned >= per_page as usize).then_some(page + 1))
}

/// The target of the first link whose `rel` includes `rel` (RFC 8288: a
/// comma-separated list of `<target>; param=value` entries, where `rel` may
/// hold several space-separated relation types).
fn link_target<'a>(header: &'a str, rel: &str) -> Option<&'a str> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let target = &after[..close];
        let tail = &after[close + 1..];
        // Parameters run up to the next entry's `<` (a `<` cannot appear
        // unquoted in parameters, unlike `,` inside a target).
        let params_end = tail.find('<').unwrap_or(tail.len());
        let matches = tail[..params_end].split([';', ',']).any(|param| {
            param.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case(rel))
            })
        });
        if matches {
            return Some(target);
        }
        rest = &tail[params_end..];
    }
    None
}

/// The whole `page` query parameter of a link target, absolute or relative.
fn page_param(target: &str) -> Option<u32> {
    let base = Url::parse("http://link.invalid/").ok()?;
    let url = base.join(target.trim()).ok()?;
    let value = url
        .query_pairs()
        .find(|(k, _)| k == "page")
        .map(|(_, v)| v.into_owned())?;
    value.trim().parse().ok()
}

#[derive(Deserialize)]
struct ListJson {
    users: Vec<UserJson>,
}

#[derive(Deserialize)]
struct UserJson {
    id: Uuid,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    banned_until: Option<String>,
    #[serde(default)]
    user_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    app_metadata: Option<Map<String, Value>>,
}

impl UserJson {
    fn into_auth_user(self) -> Result<AuthUser, ProviderError> {
        let banned = match self.banned_until.as_deref().map(str::trim) {
            None | Some("") => false,
            Some(at) => {
                let until = chrono::DateTime::parse_from_rfc3339(at).map_err(|e| {
                    permanent(
                        "user JSON",
                        &format!("banned_until {at:?} is not a timestamp: {e}"),
                    )
                })?;
                until > chrono::Utc::now()
            }
        };
        let user_meta = self.user_metadata.unwrap_or_default();
        let app_meta = self.app_metadata.unwrap_or_default();
        // Lenient on metadata shape: users rosterd does not manage may carry
        // anything there, and one odd user must not break a whole listing.
        let roles = app_meta
            .get("roles")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(AuthUser {
            id: self.id,
            email: self.email.unwrap_or_default().to_lowercase(),
            banned,
            name: user_meta
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string),
            roles,
            roster_id: app_meta
                .get("roster_id")
                .and_then(Value::as_str)
                .map(str::to_string),
            managed: app_meta.get("managed_by").and_then(Value::as_str) == Some(super::MANAGED_BY),
        })
    }
}
