//! Health, readiness and metrics (docs/contract.md §9).

use super::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

pub(crate) fn router() -> super::Routes {
    super::Routes::new()
        .get("/healthz", healthz)
        .get("/readyz", readyz)
        .get("/metrics", metrics)
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 only when the database answers and every migration is applied.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match crate::db::migrations_current(&state.db).await {
        Ok(true) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "not_ready", "detail": "migrations pending"})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "not_ready", "detail": "database unavailable"})),
            )
        }
    }
}

/// Prometheus text. Unauthenticated, like most scrape endpoints: it names
/// no person, but keep it on the internal network.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(&state.db, &state.gauges).await,
    )
}
