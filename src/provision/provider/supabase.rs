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

mod answers;
mod paging;

use super::{AuthProvider, AuthUser, Page, Profile, ProviderError, UserUpdate, BAN_DURATION};
use crate::http_client::{self, HttpClient, Refusal, Transport};
use answers::{
    is_conflict, is_user_not_found, permanent, provider_error, unexplained, ListJson, Reply,
    UserJson,
};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
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

pub struct SupabaseProvider {
    /// `{SUPABASE_URL}/auth/v1`.
    api: Url,
    key: SecretString,
    http: HttpClient,
    /// Users are created unconfirmed: the magic link of an accepted
    /// invitation confirms them (invitations on).
    inviting: bool,
}

/// Written by hand so that neither the key nor the HTTP client's internals
/// (which would list default headers) can ever end up in a log line.
impl fmt::Debug for SupabaseProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupabaseProvider")
            .field("api", &self.api.as_str())
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
        let url = http_client::base_url("SUPABASE_URL", base_url)?;
        http_client::check_header_secret("SUPABASE_SERVICE_ROLE_KEY", &service_role_key)?;
        Ok(Self {
            api: http_client::join(&url, ["auth", "v1"]),
            key: service_role_key,
            http: HttpClient::new("Supabase", timeout)?,
            inviting: false,
        })
    }

    /// With invitations on: new users wait for their person to accept.
    pub fn inviting(mut self, on: bool) -> Self {
        self.inviting = on;
        self
    }

    fn secret_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        // Validated in `new`, so these cannot fail.
        if let Some(v) = http_client::bearer(&self.key) {
            headers.insert(AUTHORIZATION, v);
        }
        if let Some(v) = http_client::sensitive(self.key.expose_secret()) {
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
        let url = http_client::join(&self.api, path.split('/').filter(|s| !s.is_empty()));
        let mut req = self
            .http
            .request(method, url)
            .headers(self.secret_headers());
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let answer = self
            .http
            .send(req, None)
            .await
            .map_err(|t| transport(&what, t))?;
        tracing::debug!(request = %what, status = answer.status.as_u16(), "supabase admin call");
        if answer.status.is_success() {
            Ok(Reply {
                what,
                headers: answer.headers,
                body: answer.body,
            })
        } else {
            Err(CallError::Api(answers::refusal(what, &answer, &self.key)))
        }
    }

    async fn fetch_user(&self, id: Uuid) -> Result<Option<AuthUser>, CallError> {
        match self
            .call(Method::GET, &format!("/admin/users/{id}"), &[], None)
            .await
        {
            Ok(reply) => Ok(Some(reply.json::<UserJson>()?.into_auth_user()?)),
            Err(CallError::Api(e)) if is_user_not_found(&e) => Ok(None),
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
        let next = paging::next_page(&reply.headers, page, per_page, users.len())
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
        original: Refusal,
    ) -> ProviderError {
        let conflict = is_conflict(&original);
        match self.fetch_user(id).await {
            Ok(Some(holder)) if !holder.email.eq_ignore_ascii_case(profile.email.trim()) => {
                ProviderError::IdExists
            }
            Ok(_) if conflict => ProviderError::EmailExists,
            // Which of the two clashed is unknown: try again later rather
            // than call a conflict permanent.
            Err(e) if conflict => unexplained(&original, &ProviderError::from(e)),
            _ => provider_error(original),
        }
    }

    /// After a 5xx on an email change: GoTrue does not check uniqueness on
    /// update, so a taken email surfaces as a bare 500 that would otherwise
    /// be retried forever.
    async fn explain_update_failure(
        &self,
        id: Uuid,
        email: &str,
        original: Refusal,
    ) -> ProviderError {
        match self.find_by_email(email).await {
            Ok(Some(holder)) if holder.id != id => ProviderError::EmailExists,
            _ => provider_error(original),
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
            "email_confirm": !self.inviting,
            "user_metadata": user_metadata,
            "app_metadata": app_metadata(profile),
        });
        match self
            .call(Method::POST, "/admin/users", &[], Some(&body))
            .await
        {
            Ok(reply) => Ok(reply.json::<UserJson>()?.into_auth_user()?),
            Err(CallError::Api(e)) if is_conflict(&e) || e.status.is_server_error() => {
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
            Err(CallError::Api(e)) if is_user_not_found(&e) => Err(ProviderError::NotFound),
            // An update names no new id, so a conflict can only be the
            // email; the caller looks it up and decides again.
            Err(CallError::Api(e)) if is_conflict(&e) && update.profile.is_some() => {
                Err(ProviderError::EmailExists)
            }
            Err(CallError::Api(e)) if e.status.is_server_error() => match &update.profile {
                Some(profile) => Err(self.explain_update_failure(id, &profile.email, e).await),
                None => Err(provider_error(e)),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn list_users(&self, page: u32, per_page: u32) -> Result<Page, ProviderError> {
        self.list_page(page.max(1), per_page, None).await
    }

    /// `POST /admin/generate_link` with type `magiclink` (supabase/auth
    /// `adminGenerateLink`): GoTrue answers the user's fields plus
    /// `action_link`, its `/verify` URL, which signs the person in, confirms
    /// an unconfirmed email, and ends at `redirect_to` (when GoTrue's
    /// allow-list admits it; otherwise at its site URL). For an email with
    /// no user GoTrue would sign one up, so this is only asked for a user
    /// that exists; a 404 means it is gone.
    async fn welcome(&self, _id: Uuid, email: &str, redirect: &Url) -> Result<Url, ProviderError> {
        let body = json!({"type": "magiclink", "email": email, "redirect_to": redirect.as_str()});
        #[derive(serde::Deserialize)]
        struct Link {
            action_link: String,
        }
        match self
            .call(Method::POST, "/admin/generate_link", &[], Some(&body))
            .await
        {
            Ok(reply) => {
                let link: Link = reply.json()?;
                Url::parse(&link.action_link).map_err(|e| {
                    answers::permanent(
                        "POST /admin/generate_link",
                        &format!("action_link is not a URL: {e}"),
                    )
                })
            }
            Err(CallError::Api(e)) if is_user_not_found(&e) => Err(ProviderError::NotFound),
            Err(e) => Err(e.into()),
        }
    }
}

fn app_metadata(profile: &Profile) -> Value {
    json!({ "roles": profile.roles, "roster_id": profile.roster_id, "managed_by": super::MANAGED_BY })
}

enum CallError {
    /// The server answered with a non-2xx status.
    Api(Refusal),
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
            CallError::Api(e) => provider_error(e),
            CallError::Other(e) => e,
        }
    }
}

fn transport(what: &str, t: Transport) -> CallError {
    CallError::Other(match t {
        Transport::Build => permanent(what, &t.to_string()),
        _ => ProviderError::Transient {
            message: format!("{what}: {t}"),
            retry_after: None,
        },
    })
}
