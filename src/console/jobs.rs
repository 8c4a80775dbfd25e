//! Jobs: queue depth by state, the jobs of one state (dead by default)
//! with their last error, and retry of a dead job.

use super::people::jobs_table;
use super::session::{Post, Session};
use super::{link, notice_block, opt_time, page, Nav, Result};
use crate::admin;
use crate::http::AppState;
use crate::state::JobState;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use maud::html;
use std::collections::HashMap;

/// `GET /console/jobs?status=&cursor=` (status defaults to dead).
pub(crate) async fn list(
    session: Session,
    State(state): State<AppState>,
    Query(mut params): Query<HashMap<String, String>>,
) -> Result<Response> {
    params.retain(|_, v| !v.is_empty());
    let notice = params.remove("done");
    let status = params
        .entry("status".to_owned())
        .or_insert_with(|| JobState::Dead.as_str().to_owned())
        .clone();
    let stats = admin::jobs::stats(&state.db).await?;
    let jobs = admin::jobs::list(&state.db, &params).await?;
    let body = html! {
        h1 { "Jobs" }
        (notice_block(notice.as_ref()))
        section.card {
            h2 { "Queue depth" }
            table.depth {
                thead { tr { @for (s, _) in &stats.depth { th { (s.as_str()) } } } }
                tbody { tr {
                    @for (s, n) in &stats.depth {
                        td.num { a href=(link("/console/jobs", &[("status", s.as_str())])) { (n) } }
                    }
                } }
            }
            p.hint { "Oldest due job waiting since: " (opt_time(&stats.oldest_due)) }
        }
        h2 { @if status == JobState::Dead.as_str() { "Dead jobs" } @else { "Jobs: " (status) } }
        (jobs_table(&session, &jobs.items))
        @if let Some(c) = &jobs.next_cursor {
            p.pager { a href=(link("/console/jobs", &[("status", &status), ("cursor", c)])) { "Next page →" } }
        }
    };
    Ok(page(&session, Nav::Jobs, "Jobs", body))
}

/// `POST /console/jobs/{id}/retry`.
pub(crate) async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Post,
) -> Result<Redirect> {
    admin::jobs::retry(&state.db, &post.session.actor(), &id).await?;
    state.wakeup.poke();
    Ok(Redirect::to("/console/jobs?done=retried"))
}
