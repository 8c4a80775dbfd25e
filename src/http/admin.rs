//! `/api/admin/...` (docs/contract.md §8): operators' calls, each behind a named
//! bearer token whose name is the actor in the audit log. Handlers only
//! translate HTTP; the work is in `crate::admin`.

use super::AppState;
use crate::admin::{self, AdminError};
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Admin request bodies are small filters; anything bigger is a mistake.
const MAX_BODY_BYTES: usize = 16 * 1024;

pub(crate) fn router() -> super::Routes {
    super::Routes::new()
        .get("/api/admin/events", list_events)
        .post("/api/admin/events/replay", replay_bulk)
        .get("/api/admin/events/{eventId}", event_detail)
        .post("/api/admin/events/{eventId}/replay", replay_one)
        .get("/api/admin/users/{id}", user_detail)
        .post("/api/admin/users/{id}/provision", provision_user)
        .get("/api/admin/users/{id}/role-overrides", get_overrides)
        .put("/api/admin/users/{id}/role-overrides", put_overrides)
        .delete("/api/admin/users/{id}/role-overrides", delete_overrides)
        .post("/api/admin/provision", reconcile)
        .get("/api/admin/jobs", list_jobs)
        .post("/api/admin/jobs/{id}/retry", retry_job)
        .get("/api/admin/audit", audit_log)
        .get("/api/admin/invitations", list_invitations)
        .post("/api/admin/invitations/{id}/resend", resend_invitation)
        .post("/api/admin/invitations/{id}/revoke", revoke_invitation)
        .body_limit(MAX_BODY_BYTES)
}

/// The operator a request comes from: the name of its admin token. Every
/// handler takes it first, so an unauthorised caller learns nothing, not
/// even whether its filters were valid.
pub(crate) struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state
            .config
            .admin_tokens
            .identify(&parts.headers)
            .map(|_| Operator)
            .ok_or(ApiError::Unauthorized)
    }
}

/// An operator whose token may change things: a viewer's token is refused
/// with 403, and the refusal audited. Every handler that changes something
/// takes this instead of [`Operator`] (a test walks the routes to hold it).
pub(crate) struct Writer(pub crate::audit::Actor);

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (name, role) = state
            .config
            .admin_tokens
            .identify_role(&parts.headers)
            .ok_or(ApiError::Unauthorized)?;
        if role == crate::state::OperatorRole::Viewer {
            let what = format!("{} {}", parts.method, parts.uri.path());
            tracing::warn!(operator = name, %what, "a viewer was refused a change");
            let mut conn = state.db.acquire().await.map_err(ApiError::from_db)?;
            crate::audit::refused(&mut conn, name, role, &what)
                .await
                .map_err(ApiError::from_db)?;
            return Err(ApiError::Forbidden);
        }
        Ok(Writer(crate::audit::Actor::operator(name)))
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::BadInput(m) => ApiError::BadRequest(m),
            AdminError::NotFound => ApiError::NotFound,
            AdminError::Conflict(m) => ApiError::Conflict(m),
            AdminError::Provider(e) => {
                tracing::warn!(error = %e, "auth provider call failed");
                if e.is_transient() {
                    ApiError::ProviderUnavailable
                } else {
                    ApiError::ProviderFailed
                }
            }
            AdminError::Db(e) => ApiError::from_db(e),
        }
    }
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(p: Params) -> Result<HashMap<String, String>, ApiError> {
    p.map(|Query(p)| p)
        .map_err(|_| ApiError::BadRequest("malformed query string".into()))
}

/// A JSON object body; an empty body means `{}` where that is allowed.
fn json_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    empty_ok: bool,
) -> Result<T, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("could not read the request body".into())
        }
    })?;
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) && empty_ok {
        b"{}"
    } else {
        &body
    };
    let value =
        crate::json::from_slice(text).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::BadRequest(e.to_string()))
}

async fn list_events(
    _: Operator,
    State(state): State<AppState>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let page = admin::events::list(&state.db, &params(p)?).await?;
    Ok(Json(
        json!({"events": page.items, "nextCursor": page.next_cursor}),
    ))
}

async fn event_detail(
    _: Operator,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Json<admin::events::EventDetail>, ApiError> {
    Ok(Json(admin::events::detail(&state.db, &event_id).await?))
}

async fn replay_one(
    Writer(actor): Writer,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = admin::replay::replay_one(
        &state.db,
        &state.config.roles,
        &state.config.events,
        &actor,
        &event_id,
    )
    .await?;
    state.wakeup.poke();
    Ok(Json(json!({
        "eventId": event_id,
        "userId": r.user_id,
        "outcome": r.outcome.as_str(),
        "error": r.error,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BulkRequest {
    status: Option<String>,
    event_type: Option<String>,
    user_id: Option<String>,
    source: Option<String>,
    since: Option<String>,
    until: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default, deserialize_with = "whole_number")]
    limit: Option<i64>,
}

/// A JSON integer, as JSON Schema's `integer` means it: `624` and `624.0`
/// alike (a number whose fraction is zero); anything else is refused.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        _ => Err(D::Error::custom(format!(
            "invalid limit {n}, expected a whole number"
        ))),
    }
}

async fn replay_bulk(
    Writer(actor): Writer,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<admin::replay::BulkReport>, ApiError> {
    let req: BulkRequest = json_body(body, false)?;
    let filter = admin::events::EventFilter::parse(&admin::events::RawFilter {
        status: req.status,
        event_type: req.event_type,
        user_id: req.user_id,
        source: req.source,
        since: req.since,
        until: req.until,
    })?;
    let report = admin::replay::replay_bulk(
        &state.db,
        &state.config.roles,
        &state.config.events,
        &actor,
        &filter,
        req.limit.unwrap_or(admin::replay::DEFAULT_BULK_LIMIT),
        req.dry_run,
    )
    .await?;
    if !req.dry_run {
        state.wakeup.poke();
    }
    Ok(Json(report))
}

async fn user_detail(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::users::UserDetail>, ApiError> {
    Ok(Json(
        admin::users::detail(&state.db, state.provider.as_ref(), &id).await?,
    ))
}

async fn provision_user(
    Writer(actor): Writer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::provision::Provisioned>, ApiError> {
    Ok(Json(
        admin::provision::provision_one(
            &state.db,
            &state.runs,
            state.provider.as_ref(),
            &actor,
            &id,
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReconcileRequest {
    #[serde(default)]
    dry_run: bool,
}

async fn reconcile(
    Writer(actor): Writer,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let req: ReconcileRequest = json_body(body, true)?;
    // Runs to the end even if the caller hangs up, so the audit row and
    // the report always match what was done.
    let task = tokio::spawn(async move {
        admin::provision::reconcile_all(
            &state.db,
            &state.runs,
            state.provider.as_ref(),
            &actor,
            req.dry_run,
        )
        .await
    });
    let report = task
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("reconcile task: {e}")))??;
    let mut body = json!(report);
    body["dryRun"] = json!(req.dry_run);
    Ok(Json(body))
}

async fn list_jobs(
    _: Operator,
    State(state): State<AppState>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let page = admin::jobs::list(&state.db, &params(p)?).await?;
    Ok(Json(
        json!({"jobs": page.items, "nextCursor": page.next_cursor}),
    ))
}

async fn retry_job(
    Writer(actor): Writer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::jobs::Job>, ApiError> {
    let job = admin::jobs::retry(&state.db, &actor, &id).await?;
    state.wakeup.poke();
    Ok(Json(job))
}

async fn audit_log(
    _: Operator,
    State(state): State<AppState>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let p = params(p)?;
    admin::events::only_known(&p, &["limit", "cursor"])?;
    let page = admin::audit::list(
        &state.db,
        p.get("limit").map(String::as_str),
        p.get("cursor").map(String::as_str),
    )
    .await?;
    Ok(Json(
        json!({"entries": page.items, "nextCursor": page.next_cursor}),
    ))
}

async fn list_invitations(
    _: Operator,
    State(state): State<AppState>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let page = admin::invitations::list(&state.db, &params(p)?).await?;
    Ok(Json(
        json!({"invitations": page.items, "nextCursor": page.next_cursor}),
    ))
}

async fn resend_invitation(
    Writer(actor): Writer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::invitations::Changed>, ApiError> {
    let id = admin::invitations::parse_id(&id)?;
    let cfg = state.config.invitations.as_ref().ok_or_else(|| {
        ApiError::Conflict(
            "invitations are off (INVITATIONS_ENABLED); nothing can be resent".into(),
        )
    })?;
    let changed = admin::invitations::resend(&state.db, cfg, &actor, id).await?;
    state.wakeup.poke();
    Ok(Json(changed))
}

async fn revoke_invitation(
    Writer(actor): Writer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::invitations::Changed>, ApiError> {
    let id = admin::invitations::parse_id(&id)?;
    Ok(Json(
        admin::invitations::revoke(&state.db, &actor, id).await?,
    ))
}

async fn get_overrides(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::overrides::Overrides>, ApiError> {
    Ok(Json(admin::overrides::get(&state.db, &id).await?))
}

async fn put_overrides(
    Writer(actor): Writer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<admin::overrides::Overrides>, ApiError> {
    let change: admin::overrides::Change = json_body(body, false)?;
    let done = admin::overrides::set(&state.db, &actor, &id, Some(&change)).await?;
    state.wakeup.poke();
    Ok(Json(done))
}

async fn delete_overrides(
    Writer(actor): Writer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<admin::overrides::Overrides>, ApiError> {
    let done = admin::overrides::set(&state.db, &actor, &id, None).await?;
    state.wakeup.poke();
    Ok(Json(done))
}
