//! `POST /api/sync/users/inbound` (docs/contract.md §4): verify the raw body, parse
//! it once, apply it through the one apply path.

use super::AppState;
use crate::error::ApiError;
use crate::event::{BodyError, ParsedBody};
use crate::roster::{ingest, ApplyError, Outcome, Source};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;

pub(crate) const PATH: &str = "/api/sync/users/inbound";

pub(crate) fn router(max_body_bytes: usize) -> super::Routes {
    super::Routes::new()
        .post(PATH, inbound)
        .body_limit(max_body_bytes)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InboundResponse {
    pub(crate) event_id: String,
    pub(crate) outcome: &'static str,
    pub(crate) user_id: String,
}

async fn inbound(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<InboundResponse>, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("could not read the request body".into())
        }
    })?;
    let now = chrono::Utc::now().timestamp();
    if state.config.verifier.verify(&headers, &body, now).is_err() {
        tracing::warn!("inbound event with an invalid signature");
        crate::metrics::signature_failure();
        return Err(ApiError::InvalidSignature);
    }
    let parsed = ParsedBody::from_slice(&body, &state.config.events).map_err(|e| match e {
        BodyError::Malformed(detail) => ApiError::MalformedJson(detail),
        BodyError::Invalid(fields) => ApiError::Validation(fields),
    })?;
    let outcome = ingest(&state.db, &parsed, Source::Webhook, &state.config.roles)
        .await
        .map_err(|e| match e {
            ApplyError::Conflict => ApiError::EventIdConflict,
            ApplyError::Db(e) => ApiError::from_db(e),
        })?;
    let event = &parsed.event;
    match outcome {
        Outcome::Duplicate => {}
        Outcome::Failed => return Err(ApiError::ApplyFailed),
        Outcome::Applied | Outcome::Stale => state.wakeup.poke(),
    }
    tracing::info!(
        event_id = %event.key.event_id,
        event_type = event.event_type.as_str(),
        user_id = %event.user_id,
        outcome = outcome.as_str(),
        "inbound event"
    );
    Ok(Json(InboundResponse {
        event_id: event.key.event_id.to_string(),
        outcome: outcome.as_str(),
        user_id: event.user_id.to_string(),
    }))
}
