//! One error type for every route: `{"error": code, "detail"?}`. 5xx are
//! logged with their cause chain and answered without internals.

use crate::event::FieldError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("invalid signature")]
    InvalidSignature,
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("event id already used for a different body")]
    EventIdConflict,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// A viewer's token on a call that changes something.
    #[error("forbidden")]
    Forbidden,
    #[error("provisioning pending")]
    ProvisioningPending,
    #[error("directory unavailable")]
    DirectoryUnavailable,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the event is stored as failed")]
    ApplyFailed,
    #[error("the auth provider is unavailable")]
    ProviderUnavailable,
    #[error("the auth provider refused the request")]
    ProviderFailed,
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// More work arrived than this process takes at once; retry after the
    /// given time.
    #[error("overloaded")]
    Overloaded(std::time::Duration),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "5";

impl ApiError {
    /// Sorts a database error into "try again later" (503) and "our bug" (500).
    pub(crate) fn from_db(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Internal(e.into())
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::InvalidSignature => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            Self::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::EventIdConflict => (StatusCode::CONFLICT, "event_id_conflict"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Self::ProvisioningPending => (StatusCode::SERVICE_UNAVAILABLE, "provisioning_pending"),
            Self::DirectoryUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "directory_unavailable")
            }
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::ApplyFailed => (StatusCode::INTERNAL_SERVER_ERROR, "apply_failed"),
            Self::ProviderUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable"),
            Self::ProviderFailed => (StatusCode::BAD_GATEWAY, "provider_failed"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// Every `(status, code)` an `ApiError` is answered with, so that
    /// `openapi.yaml` can be checked against what the server really sends.
    pub fn codes() -> Vec<(StatusCode, &'static str)> {
        let every = [
            Self::NotFound,
            Self::InvalidSignature,
            Self::MalformedJson(String::new()),
            Self::Validation(Vec::new()),
            Self::PayloadTooLarge,
            Self::BadRequest(String::new()),
            Self::EventIdConflict,
            Self::Unauthorized,
            Self::ProvisioningPending,
            Self::DirectoryUnavailable,
            Self::Conflict(String::new()),
            Self::Forbidden,
            Self::ApplyFailed,
            Self::ProviderUnavailable,
            Self::ProviderFailed,
            Self::Unavailable(sqlx::Error::PoolTimedOut),
            Self::Overloaded(std::time::Duration::ZERO),
            Self::Internal(anyhow::anyhow!("")),
        ];
        every
            .iter()
            .map(|e| {
                // No catch-all arm: a new variant stops the build here until
                // it is added to `every` as well.
                match e {
                    Self::NotFound
                    | Self::InvalidSignature
                    | Self::MalformedJson(_)
                    | Self::Validation(_)
                    | Self::PayloadTooLarge
                    | Self::BadRequest(_)
                    | Self::EventIdConflict
                    | Self::Unauthorized
                    | Self::Forbidden
                    | Self::ProvisioningPending
                    | Self::DirectoryUnavailable
                    | Self::Conflict(_)
                    | Self::ApplyFailed
                    | Self::ProviderUnavailable
                    | Self::ProviderFailed
                    | Self::Unavailable(_)
                    | Self::Overloaded(_)
                    | Self::Internal(_) => e.status_and_code(),
                }
            })
            .collect()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = match &self {
            Self::MalformedJson(detail) | Self::BadRequest(detail) | Self::Conflict(detail) => {
                json!({"error": code, "detail": detail})
            }
            Self::Validation(fields) => json!({"error": code, "fields": fields}),
            Self::ApplyFailed => json!({
                "error": code,
                "detail": "the event is stored as failed; an operator can replay it once the cause is fixed"
            }),
            _ => json!({"error": code}),
        };
        match &self {
            Self::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            Self::Internal(e) => tracing::error!(error = format!("{e:#}"), "internal error"),
            _ => {}
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED && matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let retry_after = match &self {
                // Whole seconds, rounded up, at least one: a client that
                // comes back exactly on time finds the line moved on.
                Self::Overloaded(d) => HeaderValue::from(d.as_secs_f64().ceil().max(1.0) as u64),
                _ => HeaderValue::from_static(RETRY_AFTER_SECS),
            };
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after);
        }
        response
    }
}
