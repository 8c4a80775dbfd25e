//! People: the roster with search, status filter and paging; one person's
//! row, auth user (live from the provider), jobs and events; provision now.

use super::session::{Post, Session};
use super::{badge, csrf_field, link, notice_block, opt_time, page, segment, time, Nav, Result};
use crate::admin;
use crate::http::AppState;
use crate::state::{Action, JobState, RowStatus};
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use maud::{html, Markup};
use std::collections::HashMap;

/// `GET /console/people?q=&status=&cursor=`.
pub(crate) async fn list(
    session: Session,
    State(state): State<AppState>,
    Query(mut params): Query<HashMap<String, String>>,
) -> Result<Response> {
    params.retain(|_, v| !v.is_empty());
    let q = params.get("q").cloned().unwrap_or_default();
    let status = params.get("status").cloned().unwrap_or_default();
    let found = admin::users::list(&state.db, &params).await?;
    let body = html! {
        h1 { "People" }
        form.filters method="get" action="/console/people" role="search" {
            label { "Search" input type="search" name="q" value=(q) placeholder="email, name or record id"; }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for s in RowStatus::ALL.map(RowStatus::as_str) {
                        option value=(s) selected[status == s] { (s) }
                    }
                }
            }
            label { input type="checkbox" name="overrides" value="true" checked[params.get("overrides").is_some_and(|v| v == "true")]; " only role overrides" }
            button type="submit" { "Search" }
        }
        @if found.items.is_empty() {
            p.empty { "Nobody matches." }
        } @else {
            table {
                thead { tr { th { "Record" } th { "Email" } th { "Name" } th { "Status" } th { "Auth user" } th { "Updated" } } }
                tbody {
                    @for p in &found.items {
                        tr {
                            td { a href={ "/console/people/" (segment(&p.id)) } { code { (p.id) } } }
                            td { (p.email.as_deref().unwrap_or("—")) }
                            td { (p.name.as_deref().unwrap_or("—")) }
                            td { (badge(p.status)) }
                            td { @match p.auth_user_id { Some(u) => code { (u) }, None => "unlinked" } }
                            td { (time(&p.updated_at)) }
                        }
                    }
                }
            }
        }
        @if let Some(c) = &found.next_cursor {
            p.pager { a href=(link("/console/people", &[("q", &q), ("status", &status), ("cursor", c)])) { "Next page →" } }
        }
    };
    Ok(page(&session, Nav::People, "People", body))
}

pub(crate) fn events_table(events: &[admin::events::EventSummary]) -> Markup {
    html! {
        @if events.is_empty() {
            p.empty { "No events." }
        } @else {
            table {
                thead { tr { th { "Event" } th { "Type" } th { "Record" } th { "Occurred" } th { "Received" } th { "Source" } th { "Outcome" } th { "Attempts" } th { "Error" } } }
                tbody {
                    @for e in events {
                        tr {
                            td { a href={ "/console/events/" (segment(&e.event_id)) } { code { (e.event_id) } } }
                            td { (e.event_type) }
                            td { a href={ "/console/people/" (segment(&e.user_id)) } { code { (e.user_id) } } }
                            td { (time(&e.occurred_at)) }
                            td { (time(&e.received_at)) }
                            td { (e.source) }
                            td { (badge(e.outcome)) }
                            td.num { (e.attempts) }
                            td.errtext { (e.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) fn jobs_table(session: &Session, jobs: &[admin::jobs::Job]) -> Markup {
    html! {
        @if jobs.is_empty() {
            p.empty { "No jobs." }
        } @else {
            table {
                thead { tr { th { "Job" } th { "Email" } th { "State" } th { "Attempts" } th { "Run at" } th { "Last action" } th { "Last error" } th { "" } } }
                tbody {
                    @for j in jobs {
                        tr {
                            td.num { (j.id) }
                            td { (j.email) }
                            td { (badge(j.status)) }
                            td.num { (j.attempts) }
                            td { (time(&j.run_at)) }
                            td { (j.last_action.map_or("—", Action::as_str)) }
                            td.errtext { (j.last_error.as_deref().unwrap_or("")) }
                            td {
                                @if j.status == JobState::Dead {
                                    form.inline method="post" action={ "/console/jobs/" (j.id) "/retry" } {
                                        (csrf_field(session))
                                        button type="submit" { "Retry" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/people/{id}`.
pub(crate) async fn detail(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let d = admin::users::detail(&state.db, state.provider.as_ref(), &id).await?;
    let overrides = admin::overrides::get(&state.db, &id).await?;
    let u = &d.user;
    let title = u.email.clone().unwrap_or_else(|| u.id.clone());
    let body = html! {
        p.crumbs { a href="/console/people" { "People" } " / " code { (u.id) } }
        h1 { (title) }
        (notice_block(q.get("done")))
        div.cards {
            section.card {
                h2 { "Roster row" }
                dl {
                    dt { "Record id" } dd { code { (u.id) } }
                    dt { "Email" } dd { (u.email.as_deref().unwrap_or("—")) }
                    dt { "Name" } dd { (u.name.as_deref().unwrap_or("—")) }
                    dt { "Status" } dd { (badge(u.status)) }
                    dt { "Groups" } dd { (u.groups.join(", ")) }
                    dt { "Roles" } dd { (u.roles.join(", ")) }
                    dt { "Profile at" } dd { (opt_time(&u.profile_at)) " " code { (u.profile_event_id.as_deref().unwrap_or("")) } }
                    dt { "Source" } dd { (u.source.map_or("—", |s| s.as_str())) }
                    dt { "Deleted at" } dd { (opt_time(&u.deleted_at)) " " code { (u.deleted_event_id.as_deref().unwrap_or("")) } }
                    dt { "Updated" } dd { (time(&u.updated_at)) }
                }
            }
            section.card {
                h2 { "Auth user" span.hint { " (live from the provider)" } }
                dl {
                    dt { "State" } dd { (badge(d.auth.state)) }
                    dt { "Auth user id" } dd { @match d.auth.user_id { Some(id) => code { (id) }, None => "—" } }
                    dt { "Email" } dd { (d.auth.email.as_deref().unwrap_or("—")) }
                    dt { "Roles" } dd { (d.auth.roles.as_ref().map(|r| r.join(", ")).unwrap_or_else(|| "—".into())) }
                    dt { "Linked at" } dd { (opt_time(&u.auth_linked_at)) }
                }
                form method="post" action={ "/console/people/" (segment(&u.id)) "/provision" } {
                    (csrf_field(&session))
                    button type="submit" { "Provision now" }
                }
            }
        }
        (overrides_card(&session, &u.id, &overrides))
        h2 { "Invitations" }
        (super::invitations::table(&session, &d.invitations))
        h2 { "Jobs" }
        (jobs_table(&session, &d.jobs))
        h2 { "Recent events" }
        (events_table(&d.events))
    };
    Ok(page(&session, Nav::People, &title, body))
}

/// `POST /console/people/{id}/provision`.
pub(crate) async fn provision(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Post,
) -> Result<Redirect> {
    let done = admin::provision::provision_one(
        &state.db,
        &state.runs,
        state.provider.as_ref(),
        &post.session.actor(),
        &id,
    )
    .await?;
    Ok(Redirect::to(&format!(
        "/console/people/{}?done=provisioned",
        segment(&done.user_id)
    )))
}

/// Mapped roles, the override and the effective roles side by side, with a
/// form that replaces the override (comma-separated role names) and one
/// that lifts it.
fn overrides_card(session: &Session, id: &str, o: &admin::overrides::Overrides) -> Markup {
    let action = format!("/console/people/{}/role-overrides", segment(id));
    html! {
        section.card.overrides {
            h2 { "Role overrides" }
            dl {
                dt { "Mapped (groups, defaults)" } dd { (o.mapped.join(", ")) }
                dt { "Preserved" } dd { (o.preserve.join(", ")) }
                dt { "Suppressed" } dd { (o.suppress.join(", ")) }
                dt { "Freeze" } dd { @match &o.frozen_roles { Some(kept) => { "on, keeping " (kept.join(", ")) }, None => "off" } }
                dt { "Effective" } dd { strong { (o.effective.join(", ")) } }
            }
            @if o.user_id.is_some() {
                form method="post" action=(action) {
                    (csrf_field(session))
                    label { "Preserve " input type="text" name="preserve" value=(o.preserve.join(", ")) placeholder="role, role"; }
                    label { "Suppress " input type="text" name="suppress" value=(o.suppress.join(", ")) placeholder="role, role"; }
                    label { input type="checkbox" name="freeze" value="true" checked[o.frozen_roles.is_some()]; " Freeze (sync revokes nothing)" }
                    button type="submit" { "Save overrides" }
                }
                @if o.updated_by.is_some() {
                    form.inline method="post" action={ (action) "/delete" } {
                        (csrf_field(session))
                        button.danger type="submit" { "Lift overrides" }
                    }
                }
            } @else {
                p.hint { "Overrides are kept per auth user: provision this person first." }
            }
        }
    }
}

fn role_list(post: &Post, field: &str) -> Vec<String> {
    post.field(field)
        .map(|v| {
            v.split(',')
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /console/people/{id}/role-overrides`.
pub(crate) async fn set_overrides(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Post,
) -> Result<Redirect> {
    let change = admin::overrides::Change {
        preserve: role_list(&post, "preserve"),
        suppress: role_list(&post, "suppress"),
        freeze: post.field("freeze").as_deref() == Some("true"),
    };
    admin::overrides::set(&state.db, &post.session.actor(), &id, Some(&change)).await?;
    state.wakeup.poke();
    Ok(Redirect::to(&format!(
        "/console/people/{}?done=overrides",
        segment(&id)
    )))
}

/// `POST /console/people/{id}/role-overrides/delete`.
pub(crate) async fn lift_overrides(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Post,
) -> Result<Redirect> {
    admin::overrides::set(&state.db, &post.session.actor(), &id, None).await?;
    state.wakeup.poke();
    Ok(Redirect::to(&format!(
        "/console/people/{}?done=overrides",
        segment(&id)
    )))
}
