//! Events: the list with the admin API's filters, one event with its
//! payload and replay history, replay one, and bulk replay of a filter
//! (always previewed as a dry run before it runs).

use super::people::events_table;
use super::session::{Post, Session};
use super::{
    badge, csrf_field, link, notice_block, opt_time, page, segment, time, ConsoleError, Nav, Result,
};
use crate::admin::events::{EventFilter, RawFilter};
use crate::admin::{self, replay::BulkReport};
use crate::http::AppState;
use crate::state::{EventOutcome, Source};
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use maud::{html, Markup};
use std::collections::HashMap;

/// The list's filters, as the API names them.
const FILTERS: [&str; 6] = ["status", "eventType", "userId", "source", "since", "until"];
const TYPES: [&str; 3] = ["user.created", "user.updated", "user.deleted"];

fn filter_form(f: &HashMap<String, String>) -> Markup {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    html! {
        form.filters method="get" action="/console/events" {
            label { "Outcome"
                select name="status" {
                    option value="" { "any" }
                    @for s in EventOutcome::ALL.map(EventOutcome::as_str) { option value=(s) selected[get("status") == s] { (s) } }
                }
            }
            label { "Type"
                select name="eventType" {
                    option value="" { "any" }
                    @for t in TYPES { option value=(t) selected[get("eventType") == t] { (t) } }
                }
            }
            label { "Record id" input type="text" name="userId" value=(get("userId")) size="14"; }
            label { "Source"
                select name="source" {
                    option value="" { "any" }
                    @for s in Source::ALL.map(Source::as_str) { option value=(s) selected[get("source") == s] { (s) } }
                }
            }
            label { "Received since" input type="text" name="since" value=(get("since")) placeholder="2026-11-22T10:00:00Z" size="20"; }
            label { "until" input type="text" name="until" value=(get("until")) placeholder="RFC 3339" size="20"; }
            button type="submit" { "Filter" }
        }
    }
}

/// Hidden copies of the filter, for the bulk replay forms.
fn filter_fields(f: &HashMap<String, String>) -> Markup {
    html! {
        @for k in FILTERS {
            @if let Some(v) = f.get(k) {
                input type="hidden" name=(k) value=(v);
            }
        }
    }
}

/// `GET /console/events?status=&eventType=&userId=&since=&until=&cursor=`.
pub(crate) async fn list(
    session: Session,
    State(state): State<AppState>,
    Query(mut params): Query<HashMap<String, String>>,
) -> Result<Response> {
    params.retain(|_, v| !v.is_empty());
    let found = admin::events::list(&state.db, &params).await?;
    let mut filter = params.clone();
    filter.retain(|k, _| FILTERS.contains(&k.as_str()));
    let next = found.next_cursor.as_ref().map(|c| {
        let mut pairs: Vec<(&str, &str)> = FILTERS
            .iter()
            .filter_map(|k| filter.get(*k).map(|v| (*k, v.as_str())))
            .collect();
        pairs.push(("cursor", c));
        link("/console/events", &pairs)
    });
    let body = html! {
        h1 { "Events" }
        (filter_form(&filter))
        (events_table(&found.items))
        @if let Some(n) = next {
            p.pager { a href=(n) { "Next page →" } }
        }
        @if !filter.is_empty() {
            section.card {
                h2 { "Bulk replay" }
                p { "Replays every event matching the filter above, oldest first. You see a dry run first; nothing changes until you confirm." }
                form method="post" action="/console/events/replay" {
                    (csrf_field(&session))
                    (filter_fields(&filter))
                    input type="hidden" name="mode" value="preview";
                    button type="submit" { "Preview bulk replay (dry run)" }
                }
            }
        }
    };
    Ok(page(&session, Nav::Events, "Events", body))
}

/// `GET /console/events/{eventId}`.
pub(crate) async fn detail(
    session: Session,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let d = admin::events::detail(&state.db, &event_id).await?;
    let e = &d.summary;
    let payload = serde_json::to_string_pretty(&d.payload).unwrap_or_default();
    let body = html! {
        p.crumbs { a href="/console/events" { "Events" } " / " code { (e.event_id) } }
        h1 { "Event " code { (e.event_id) } }
        (notice_block(q.get("done")))
        div.cards {
            section.card {
                h2 { "Outcome" }
                dl {
                    dt { "Outcome" } dd { (badge(e.outcome)) }
                    dt { "Error" } dd.errtext { (e.error.as_deref().unwrap_or("—")) }
                    dt { "Attempts" } dd { (e.attempts) }
                    dt { "Type" } dd { (e.event_type) }
                    dt { "Record" } dd { a href={ "/console/people/" (segment(&e.user_id)) } { code { (e.user_id) } } }
                    dt { "Occurred" } dd { (time(&e.occurred_at)) }
                    dt { "Received" } dd { (time(&e.received_at)) " via " (e.source) }
                    dt { "Processed" } dd { (opt_time(&e.processed_at)) }
                }
                form method="post" action={ "/console/events/" (segment(&e.event_id)) "/replay" } {
                    (csrf_field(&session))
                    button type="submit" { "Replay this event" }
                }
            }
            section.card {
                h2 { "Payload" }
                pre { (payload) }
            }
        }
        h2 { "Replay history" }
        @if d.replays.is_empty() {
            p.empty { "Never replayed." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Operator" } th { "Outcome" } th { "Error" } } }
                tbody {
                    @for r in &d.replays {
                        tr { td { (time(&r.at)) } td { (r.actor) } td { (badge(r.outcome)) } td.errtext { (r.error.as_deref().unwrap_or("")) } }
                    }
                }
            }
        }
    };
    Ok(page(
        &session,
        Nav::Events,
        &format!("Event {}", e.event_id),
        body,
    ))
}

/// `POST /console/events/{eventId}/replay`.
pub(crate) async fn replay_one(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    post: Post,
) -> Result<Redirect> {
    admin::replay::replay_one(
        &state.db,
        &state.config.roles,
        &state.config.events,
        &post.session.actor(),
        &event_id,
    )
    .await?;
    state.wakeup.poke();
    Ok(Redirect::to(&format!(
        "/console/events/{}?done=replayed",
        segment(&event_id)
    )))
}

fn report_table(r: &BulkReport) -> Markup {
    html! {
        dl.counters {
            dt { "matched" } dd { (r.matched) }
            dt { @if r.dry_run { "would replay" } @else { "replayed" } } dd { (r.replayed) }
            dt { (EventOutcome::Applied) } dd { (r.outcomes.applied) }
            dt { (EventOutcome::Stale) } dd { (r.outcomes.stale) }
            dt { (EventOutcome::Failed) } dd { (r.outcomes.failed) }
        }
    }
}

/// `POST /console/events/replay` with `mode=preview` (a dry run, nothing
/// changes) or `mode=run`, and the list's filter fields.
pub(crate) async fn replay_bulk(State(state): State<AppState>, post: Post) -> Result<Response> {
    let dry_run = match post.field("mode").as_deref() {
        Some("preview") => true,
        Some("run") => false,
        _ => return Err(ConsoleError::bad_input("mode must be preview or run")),
    };
    let mut filter: HashMap<String, String> = HashMap::new();
    for k in FILTERS {
        if let Some(v) = post.field(k) {
            filter.insert(k.to_owned(), v);
        }
    }
    let parsed = EventFilter::parse(&RawFilter {
        status: filter.get("status").cloned(),
        event_type: filter.get("eventType").cloned(),
        user_id: filter.get("userId").cloned(),
        source: filter.get("source").cloned(),
        since: filter.get("since").cloned(),
        until: filter.get("until").cloned(),
    })?;
    let session = &post.session;
    let report = admin::replay::replay_bulk(
        &state.db,
        &state.config.roles,
        &state.config.events,
        &session.actor(),
        &parsed,
        admin::replay::DEFAULT_BULK_LIMIT,
        dry_run,
    )
    .await?;
    if !dry_run {
        state.wakeup.poke();
    }
    let back: Vec<(&str, &str)> = FILTERS
        .iter()
        .filter_map(|k| filter.get(*k).map(|v| (*k, v.as_str())))
        .collect();
    let back = link("/console/events", &back);
    let body = html! {
        p.crumbs { a href=(back) { "Events" } " / bulk replay" }
        @if dry_run {
            h1 { "Bulk replay: dry run" }
            p.notice role="status" { "Dry run: nothing changed. This is what replaying the filter would do now." }
        } @else {
            h1 { "Bulk replay: done" }
            p.notice role="status" { "Replayed. Each event's history records it under your name." }
        }
        (report_table(&report))
        p { "Filter: "
            @for (k, v) in &filter { code { (k) "=" (v) } " " }
            @if report.matched > admin::replay::DEFAULT_BULK_LIMIT {
                "(only the oldest " (admin::replay::DEFAULT_BULK_LIMIT) " are replayed per run)"
            }
        }
        @if dry_run && report.replayed > 0 {
            form method="post" action="/console/events/replay" {
                (csrf_field(session))
                (filter_fields(&filter))
                input type="hidden" name="mode" value="run";
                button.danger type="submit" { "Replay " (report.replayed) " event(s) now" }
            }
        }
        p { a href=(back) { "Back to the events" } }
    };
    Ok(page(session, Nav::Events, "Bulk replay", body))
}
