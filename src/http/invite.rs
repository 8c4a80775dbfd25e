//! `/invite/{token}` (docs/contract.md §14): the page an invitation link
//! opens, and its Accept button.
//!
//! `GET` only shows the page — mail scanners open links, so opening one
//! changes nothing. `POST` accepts: the provider is asked where to send the
//! person first (a sign-in link from Supabase, made now; the local provider
//! confirms the account), then the invitation is accepted in one statement
//! that only one of any number of concurrent requests can win, and only
//! that one is sent on. An unknown, expired, revoked or used link gets one
//! and the same page and status, so a link tells nothing about others.
//! Attempts are limited per client address.

use super::AppState;
use crate::config::InviteConfig;
use crate::invite::store;
use crate::invite::token::Token;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use governor::{DefaultKeyedRateLimiter, Quota};
use maud::{html, Markup, DOCTYPE};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

/// Accept attempts per client address and minute (a burst of as many).
#[derive(Clone)]
struct Attempts(Arc<DefaultKeyedRateLimiter<IpAddr>>);

pub(crate) fn router(cfg: &InviteConfig) -> super::Routes {
    let per_minute = NonZeroU32::new(cfg.accept_per_minute).unwrap_or(NonZeroU32::MIN);
    super::Routes::new()
        .public_page("/invite/{token}", show, accept)
        .extension(Attempts(Arc::new(DefaultKeyedRateLimiter::hashmap(
            Quota::per_minute(per_minute),
        ))))
}

fn invitations(state: &AppState) -> &InviteConfig {
    state
        .config
        .invitations
        .as_ref()
        .expect("the routes exist only with invitations on")
}

async fn show(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let cfg = invitations(&state);
    let Some(token) = Token::parse(&raw) else {
        return invalid(cfg);
    };
    let open = match state.db.acquire().await {
        Ok(mut conn) => store::open(&mut conn, &token.hash()).await,
        Err(e) => Err(e),
    };
    match open {
        Ok(Some(open)) => page(
            StatusCode::OK,
            &format!("Your invitation to {}", cfg.product),
            html! {
                h1 { "Welcome" @if let Some(n) = &open.name { ", " (n) } }
                p { "You have been invited to " strong { (cfg.product) } " as " strong { (open.email) } "." }
                form method="post" {
                    button type="submit" { "Accept the invitation" }
                }
                p.small { "Accepting signs you in. The link works once." }
            },
        ),
        Ok(None) => invalid(cfg),
        Err(e) => unavailable(cfg, &e),
    }
}

async fn accept(
    State(state): State<AppState>,
    Extension(attempts): Extension<Attempts>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Response {
    let cfg = invitations(&state);
    if attempts.0.check_key(&client(peer, &headers)).is_err() {
        crate::metrics::invitation("rate_limited");
        let mut r = page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            html! {
                h1 { "Too many attempts" }
                p { "Please wait a minute, then open the link from your invitation again." }
            },
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return r;
    }
    let Some(token) = Token::parse(&raw) else {
        return rejected(cfg);
    };
    let hash = token.hash();
    // No connection is held across the provider's call below.
    let open = match state.db.acquire().await {
        Ok(mut conn) => store::open(&mut conn, &hash).await,
        Err(e) => Err(e),
    };
    let open = match open {
        Ok(Some(open)) => open,
        Ok(None) => return rejected(cfg),
        Err(e) => return unavailable(cfg, &e),
    };
    // Asked before accepting, so that a provider outage leaves the link
    // usable; made for whoever wins below, and dropped for the others.
    let landing = match state
        .provider
        .welcome(open.user_id, &open.email, &cfg.redirect_url)
        .await
    {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(invitation = open.id, error = %e, "the auth provider could not sign an invited person in");
            return unavailable_page(cfg);
        }
    };
    let accepted = match state.db.acquire().await {
        Ok(mut conn) => store::accept(&mut conn, &hash).await,
        Err(e) => Err(e),
    };
    match accepted {
        Ok(Some(accepted)) => {
            crate::metrics::invitation("accepted");
            tracing::info!(invitation = accepted.id, "invitation accepted");
            let mut r = StatusCode::SEE_OTHER.into_response();
            match HeaderValue::from_str(landing.as_str()) {
                Ok(location) => {
                    r.headers_mut().insert(header::LOCATION, location);
                    r.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    r.headers_mut().insert(
                        header::REFERRER_POLICY,
                        HeaderValue::from_static("no-referrer"),
                    );
                    r
                }
                Err(_) => unavailable_page(cfg),
            }
        }
        Ok(None) => rejected(cfg),
        Err(e) => unavailable(cfg, &e),
    }
}

/// The client's address: the connection's peer, or, when that peer is a
/// proxy on a private or loopback address, the address the proxy appended
/// last to `X-Forwarded-For` (the client as the proxy saw it).
fn client(peer: Option<Extension<ConnectInfo<SocketAddr>>>, headers: &HeaderMap) -> IpAddr {
    let peer = peer.map_or(IpAddr::from([0, 0, 0, 0]), |Extension(ConnectInfo(a))| {
        a.ip()
    });
    let behind_proxy = match peer {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    if !behind_proxy {
        return peer;
    }
    // Only the nearest proxy's own entry: anything before it came from
    // the client and could say anything.
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(peer)
}

/// The one answer for every link that does not lead anywhere.
fn invalid(cfg: &InviteConfig) -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This link does not work",
        html! {
            h1 { "This link does not work" }
            p { "The invitation may have expired, been used already, or been replaced by a newer one." }
            p { "Ask whoever manages your company's accounts to send you a new invitation to " (cfg.product) "." }
        },
    )
}

fn rejected(cfg: &InviteConfig) -> Response {
    crate::metrics::invitation("rejected_link");
    invalid(cfg)
}

fn unavailable(cfg: &InviteConfig, e: &sqlx::Error) -> Response {
    tracing::warn!(error = %e, "invitation page: database unavailable");
    unavailable_page(cfg)
}

fn unavailable_page(cfg: &InviteConfig) -> Response {
    let mut r = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        html! {
            h1 { "Please try again in a moment" }
            p { "We could not complete your invitation to " (cfg.product) " just now. Your link still works." }
        },
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;color:#1f2933;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}\
h1{font-size:1.5rem}button{background:#2457c5;color:#fff;border:0;border-radius:6px;padding:.7rem 1.4rem;font-size:1rem;font-weight:600;cursor:pointer}\
.small{color:#52606d;font-size:.9rem}";

fn page(status: StatusCode, title: &str, main: Markup) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { (STYLE) }
            }
            body { main { (main) } }
        }
    };
    let mut r = (status, body.into_string()).into_response();
    let h = r.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        // No script at all; the form posts here and is then sent on to the
        // provider's sign-in link, which is why form-action is not 'self'.
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        // The token is in the URL: it must not leave in a Referer.
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}
