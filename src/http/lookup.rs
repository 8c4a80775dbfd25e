//! `GET /api/users/lookup?email=…|?id=…` for the login service.

use super::AppState;
use crate::error::ApiError;
use crate::event::{Email, RecordId};
use crate::lookup::{lookup, Answer, Deps, Key, LookupError, Source};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::collections::HashMap;

pub(crate) const PATH: &str = "/api/users/lookup";

pub(crate) fn router() -> super::Routes {
    super::Routes::new().get(PATH, handle)
}

fn parse_key(params: &HashMap<String, String>) -> Result<Key, ApiError> {
    let bad = |m: &str| ApiError::BadRequest(m.to_owned());
    if params.keys().any(|k| k != "email" && k != "id") {
        return Err(bad("only the email or id parameter is accepted"));
    }
    match (params.get("email"), params.get("id")) {
        (Some(e), None) => Email::parse(e)
            .map(Key::Email)
            .map_err(|m| bad(&format!("email {m}"))),
        (None, Some(id)) => RecordId::parse(id)
            .map(Key::Id)
            .map_err(|m| bad(&format!("id {m}"))),
        _ => Err(bad("give exactly one of email or id")),
    }
}

async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    if !state.config.login_tokens.admits(&headers) {
        return Err(ApiError::Unauthorized);
    }
    let Query(params) =
        params.map_err(|_| ApiError::BadRequest("malformed query string".into()))?;
    let key = parse_key(&params)?;
    let deps = Deps {
        db: &state.db,
        runs: &state.runs,
        provider: state.provider.as_ref(),
        first_logins: &state.first_logins,
        readthrough: state.readthrough.as_deref(),
        roles: &state.config.roles,
        rules: &state.config.events,
        wakeup: &state.wakeup,
    };
    let answer = lookup(&deps, &key).await;
    crate::metrics::lookup(outcome(&answer));
    let answer = answer.map_err(|e| match e {
        LookupError::ProvisioningPending(detail) => {
            tracing::warn!(%detail, "inline provisioning failed; the job stays queued");
            ApiError::ProvisioningPending
        }
        LookupError::DirectoryUnavailable(detail) => {
            tracing::warn!(%detail, "directory read-through failed");
            ApiError::DirectoryUnavailable
        }
        LookupError::Overloaded(retry_after) => ApiError::Overloaded(retry_after),
        LookupError::Db(e) => ApiError::from_db(e),
    })?;
    Ok(match answer {
        Answer::Active { user, auth, source } => {
            Json(json!({"user": user, "auth": auth, "source": source})).into_response()
        }
        Answer::Inactive { status } => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "user_inactive", "status": status})),
        )
            .into_response(),
        Answer::NotFound => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "user_not_found"})),
        )
            .into_response(),
    })
}

/// The metrics label of a lookup's result.
fn outcome(answer: &Result<Answer, LookupError>) -> &'static str {
    match answer {
        Ok(Answer::Active {
            source: Source::Roster,
            ..
        }) => "roster",
        Ok(Answer::Active {
            source: Source::Directory,
            ..
        }) => "directory",
        Ok(Answer::Inactive { .. }) => "inactive",
        Ok(Answer::NotFound) => "not_found",
        Err(LookupError::DirectoryUnavailable(_)) => "directory_unavailable",
        Err(LookupError::ProvisioningPending(_)) => "provisioning_pending",
        Err(LookupError::Overloaded(_)) => "overloaded",
        Err(LookupError::Db(_)) => "error",
    }
}
