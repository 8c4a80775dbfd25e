//! What GoTrue sends back: users, and the bodies of its errors.

use crate::http_client::{retry_after, server_text, Answer, Refusal};
use crate::provision::provider::{AuthUser, ProviderError, MANAGED_BY};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;
use uuid::Uuid;

pub(super) struct Reply {
    pub(super) what: String,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

impl Reply {
    pub(super) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| permanent(&self.what, &format!("malformed response body: {e}")))
    }
}

/// A non-2xx answer: status plus GoTrue's error code and message, nothing
/// else from the exchange.
pub(super) fn refusal(what: String, answer: &Answer, key: &SecretString) -> Refusal {
    let json: Option<Map<String, Value>> = serde_json::from_slice(&answer.body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let headers = &answer.headers;
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
        .map(|m| server_text(m, key));
    Refusal {
        what,
        status: answer.status,
        code,
        message,
        retry_after: retry_after(headers),
    }
}

/// "Something you asked for is taken", in any of the shapes servers
/// and proxies use: 422 `email_exists` / `user_already_exists`, the
/// same 422 with only a message (servers from before error codes), or
/// 409. Which thing is taken is for the caller to find out.
pub(super) fn is_conflict(e: &Refusal) -> bool {
    match e.status {
        StatusCode::CONFLICT => true,
        StatusCode::UNPROCESSABLE_ENTITY => match e.code.as_deref() {
            Some(code) => matches!(code, "email_exists" | "user_already_exists"),
            None => e.message.as_deref().is_some_and(|m| {
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
pub(super) fn is_user_not_found(e: &Refusal) -> bool {
    e.status == StatusCode::NOT_FOUND
        && (e.code.as_deref() == Some("user_not_found")
            || (e.code.is_none() && e.message.as_deref() == Some("User not found")))
}

/// A conflict that could not be explained because the look-up failed:
/// transient, with both reasons.
pub(super) fn unexplained(e: &Refusal, lookup: &ProviderError) -> ProviderError {
    ProviderError::Transient {
        message: format!(
            "{}; looking up what is taken failed: {lookup}",
            e.headline()
        ),
        retry_after: lookup_retry_after(lookup),
    }
}

pub(super) fn provider_error(e: Refusal) -> ProviderError {
    let message = e.describe();
    if e.is_transient() {
        ProviderError::Transient {
            message,
            retry_after: e.retry_after,
        }
    } else {
        ProviderError::Permanent { message }
    }
}

fn lookup_retry_after(e: &ProviderError) -> Option<Duration> {
    match e {
        ProviderError::Transient { retry_after, .. } => *retry_after,
        _ => None,
    }
}

pub(super) fn permanent(what: &str, detail: &str) -> ProviderError {
    ProviderError::Permanent {
        message: format!("{what}: {detail}"),
    }
}

#[derive(Deserialize)]
pub(super) struct ListJson {
    pub(super) users: Vec<UserJson>,
}

#[derive(Deserialize)]
pub(super) struct UserJson {
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
    pub(super) fn into_auth_user(self) -> Result<AuthUser, ProviderError> {
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
            managed: app_meta.get("managed_by").and_then(Value::as_str) == Some(MANAGED_BY),
        })
    }
}
