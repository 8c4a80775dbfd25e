//! Reconcile (dry run, then run), the audit log, and health.

use super::session::{Post, Session};
use super::{badge, csrf_field, link, page, time, ConsoleError, Nav, Result};
use crate::admin;
use crate::http::AppState;
use crate::provision::reconcile::Report;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{html, Markup};
use std::collections::HashMap;

fn reconcile_button(session: &Session, mode: &str, label: &str, danger: bool) -> Markup {
    html! {
        form.inline method="post" action="/console/reconcile" {
            (csrf_field(session))
            input type="hidden" name="mode" value=(mode);
            @if danger {
                button.danger type="submit" { (label) }
            } @else {
                button type="submit" { (label) }
            }
        }
    }
}

/// `GET /console/reconcile`.
pub(crate) async fn reconcile_form(session: Session) -> Response {
    let session = &session;
    let body = html! {
        h1 { "Reconcile" }
        p { "Compares every roster person with the auth provider and fixes what differs, through the one provisioning path. Start with a dry run: it counts what a run would do and changes nothing." }
        (reconcile_button(session, "dry-run", "Dry run", false))
    };
    page(session, Nav::Reconcile, "Reconcile", body)
}

fn report_counters(r: &Report) -> Markup {
    let value = serde_json::to_value(r).unwrap_or_default();
    html! {
        dl.counters {
            @for (k, v) in value.as_object().into_iter().flatten() {
                dt { (k) } dd { (v) }
            }
        }
    }
}

/// `POST /console/reconcile` with `mode=dry-run` or `mode=run`.
pub(crate) async fn reconcile(State(state): State<AppState>, post: Post) -> Result<Response> {
    let dry_run = match post.field("mode").as_deref() {
        Some("dry-run") => true,
        Some("run") => false,
        _ => return Err(ConsoleError::bad_input("mode must be dry-run or run")),
    };
    let actor = post.session.actor();
    // Runs to the end even if the browser goes away, like the API's.
    let task = tokio::spawn(async move {
        admin::provision::reconcile_all(
            &state.db,
            &state.runs,
            state.provider.as_ref(),
            &actor,
            dry_run,
        )
        .await
    });
    let report = task.await.map_err(|e| ConsoleError {
        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("the reconcile task failed: {e}"),
    })??;
    let session = &post.session;
    let body = html! {
        h1 { @if dry_run { "Reconcile: dry run" } @else { "Reconcile: done" } }
        @if dry_run {
            p.notice role="status" { "Dry run: nothing changed. A run now would do this:" }
        } @else {
            p.notice role="status" { "Reconciled. The audit log records this run under your name." }
        }
        (report_counters(&report))
        @if dry_run {
            (reconcile_button(session, "run", "Run reconcile now", true))
            " "
            (reconcile_button(session, "dry-run", "Dry run again", false))
        } @else {
            (reconcile_button(session, "dry-run", "Dry run again", false))
        }
    };
    Ok(page(session, Nav::Reconcile, "Reconcile", body))
}

/// `GET /console/audit?cursor=`.
pub(crate) async fn audit(
    session: Session,
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response> {
    let cursor = params.get("cursor").filter(|c| !c.is_empty());
    let entries = admin::audit::list(&state.db, None, cursor.map(String::as_str)).await?;
    let body = html! {
        h1 { "Audit log" }
        @if entries.items.is_empty() {
            p.empty { "Nothing yet." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Actor" } th { "Role" } th { "Action" } th { "Target" } th { "Details" } } }
                tbody {
                    @for e in &entries.items {
                        tr {
                            td { (time(&e.at)) }
                            td { (e.actor) }
                            td { (e.actor_role.as_deref().unwrap_or("—")) }
                            td { code { (e.action) } }
                            td { code { (e.target.as_deref().unwrap_or("")) } }
                            td.details { code { (e.details) } }
                        }
                    }
                }
            }
        }
        @if let Some(c) = &entries.next_cursor {
            p.pager { a href=(link("/console/audit", &[("cursor", c)])) { "Older entries →" } }
        }
    };
    Ok(page(&session, Nav::Audit, "Audit log", body))
}

/// `GET /console/health`.
pub(crate) async fn health(session: Session, State(state): State<AppState>) -> Response {
    let directory = state.directory.as_deref();
    let h = admin::health::report(&state.db, state.provider.as_ref(), directory).await;
    let body = html! {
        h1 { "Health" }
        table.health {
            thead { tr { th { "Check" } th { "State" } th { "Detail" } } }
            tbody {
                @for c in &h.checks {
                    tr {
                        td { (c.name) }
                        td { (badge(c.level)) }
                        td { (c.detail) }
                    }
                }
            }
        }
        @if let Some(q) = &h.queue {
            h2 { "Queue depth" }
            table.depth {
                thead { tr { @for (s, _) in &q.depth { th { (s) } } } }
                tbody { tr { @for (_, n) in &q.depth { td.num { (n) } } } }
            }
        }
    };
    page(&session, Nav::Health, "Health", body)
}
