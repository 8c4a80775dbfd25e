//! Invitations: the list (pending first by default), resend and revoke,
//! and the card on a person's page. A resend without SMTP shows the new
//! link once, for the operator to hand over.

use super::session::{Post, Session};
use super::{
    badge, csrf_field, link, notice_block, opt_time, page, time, ConsoleError, Nav, Result,
};
use crate::admin;
use crate::http::AppState;
use crate::invite::manage::Invitation;
use crate::state::InviteState;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use std::collections::HashMap;

/// The table of invitations, with their buttons.
pub(crate) fn table(session: &Session, invitations: &[Invitation]) -> Markup {
    html! {
        @if invitations.is_empty() {
            p.empty { "No invitations." }
        } @else {
            table {
                thead { tr { th { "Invitation" } th { "Email" } th { "State" } th { "Expires" } th { "Last sent" } th { "Round" } th { "" } } }
                tbody {
                    @for i in invitations {
                        tr {
                            td.num { (i.id) }
                            td { (i.email) }
                            td { (badge(i.state)) @if let Some(r) = &i.revoked_reason { " " span.hint { "(" (r) ")" } } }
                            td { (time(&i.expires_at)) }
                            td { (opt_time(&i.sent_at)) }
                            td.num { (i.round) }
                            td {
                                @if matches!(i.state, InviteState::Pending | InviteState::Expired) {
                                    form.inline method="post" action={ "/console/invitations/" (i.id) "/resend" } {
                                        (csrf_field(session))
                                        button type="submit" { "Resend" }
                                    }
                                }
                                @if i.state == InviteState::Pending {
                                    form.inline method="post" action={ "/console/invitations/" (i.id) "/revoke" } {
                                        (csrf_field(session))
                                        button.danger type="submit" { "Revoke" }
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

/// `GET /console/invitations?state=&email=&cursor=` (state defaults to pending).
pub(crate) async fn list(
    session: Session,
    State(state): State<AppState>,
    Query(mut params): Query<HashMap<String, String>>,
) -> Result<Response> {
    params.retain(|_, v| !v.is_empty());
    let notice = params.remove("done");
    let shown = params
        .entry("state".to_owned())
        .or_insert_with(|| InviteState::Pending.as_str().to_owned())
        .clone();
    let page_of = admin::invitations::list(&state.db, &params).await?;
    let on = state.config.invitations.is_some();
    let body = html! {
        h1 { "Invitations" }
        (notice_block(notice.as_ref()))
        @if !on {
            p.notice role="status" { "Invitations are off (INVITATIONS_ENABLED): new people get their account without a message." }
        }
        p {
            @for s in InviteState::ALL {
                @if s.as_str() == shown { strong { (s.as_str()) } } @else { a href=(link("/console/invitations", &[("state", s.as_str())])) { (s.as_str()) } }
                " "
            }
        }
        (table(&session, &page_of.items))
        @if let Some(c) = &page_of.next_cursor {
            p.pager { a href=(link("/console/invitations", &[("state", &shown), ("cursor", c)])) { "Next page →" } }
        }
    };
    Ok(page(&session, Nav::Invitations, "Invitations", body))
}

/// `POST /console/invitations/{id}/resend`.
pub(crate) async fn resend(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Post,
) -> Result<Response> {
    let id = admin::invitations::parse_id(&id)?;
    let cfg = state
        .config
        .invitations
        .as_ref()
        .ok_or_else(|| ConsoleError {
            status: axum::http::StatusCode::CONFLICT,
            message: "Invitations are off (INVITATIONS_ENABLED); nothing can be resent.".into(),
        })?;
    let changed = admin::invitations::resend(&state.db, cfg, &post.session.actor(), id).await?;
    state.wakeup.poke();
    let Some(link) = changed.link else {
        return Ok(Redirect::to("/console/invitations?done=resent").into_response());
    };
    // No mailer: this page is the only place the link is ever shown.
    let body = html! {
        p.crumbs { a href="/console/invitations" { "Invitations" } " / " (id) }
        h1 { "New link for " (changed.invitation.email) }
        p.notice role="status" { "No SMTP server is configured, so nothing was mailed. Copy this link and send it to the person; it is shown only now, and works once until " (time(&changed.invitation.expires_at)) "." }
        p { input.copy type="text" readonly value=(link) size="80"; }
    };
    Ok(page(
        &post.session,
        Nav::Invitations,
        "New invitation link",
        body,
    ))
}

/// `POST /console/invitations/{id}/revoke`.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Post,
) -> Result<Redirect> {
    let id = admin::invitations::parse_id(&id)?;
    admin::invitations::revoke(&state.db, &post.session.actor(), id).await?;
    Ok(Redirect::to("/console/invitations?done=revoked"))
}
