//! The operator console: server-rendered HTML under `/console`, for the
//! people who run rosterd. Every page and form calls the same operator
//! functions as `/api/admin` (`crate::admin`); this module only turns
//! them into HTML. Sessions and CSRF are in [`session`].
//!
//! Pages are built with `maud`, which HTML-escapes every interpolated
//! value; the one stylesheet is compiled into the binary. No JavaScript.

pub(crate) mod events;
pub(crate) mod invitations;
pub(crate) mod jobs;
pub(crate) mod ops;
pub(crate) mod people;
pub(crate) mod session;

use crate::admin::health::Level;
use crate::admin::users::AuthUserState;
use crate::admin::AdminError;
use crate::state::{EventOutcome, JobState, RowStatus};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use session::Session;

/// Console form bodies are a few fields.
const MAX_BODY_BYTES: usize = 16 * 1024;

const CSS: &str = include_str!("console.css");

pub(crate) fn router() -> crate::http::Routes {
    crate::http::Routes::new()
        .page_get("/console", home)
        .page_get("/console/assets/console.css", stylesheet)
        .page_get("/console/sign-in", session::sign_in_form)
        .page_post("/console/sign-in", session::sign_in)
        .page_post("/console/sign-out", session::sign_out)
        .page_get("/console/people", people::list)
        .page_get("/console/people/{id}", people::detail)
        .page_post("/console/people/{id}/provision", people::provision)
        .page_post("/console/people/{id}/role-overrides", people::set_overrides)
        .page_post(
            "/console/people/{id}/role-overrides/delete",
            people::lift_overrides,
        )
        .page_get("/console/events", events::list)
        .page_post("/console/events/replay", events::replay_bulk)
        .page_get("/console/events/{eventId}", events::detail)
        .page_post("/console/events/{eventId}/replay", events::replay_one)
        .page_get("/console/jobs", jobs::list)
        .page_post("/console/jobs/{id}/retry", jobs::retry)
        .page_get("/console/invitations", invitations::list)
        .page_post("/console/invitations/{id}/resend", invitations::resend)
        .page_post("/console/invitations/{id}/revoke", invitations::revoke)
        .page_get("/console/reconcile", ops::reconcile_form)
        .page_post("/console/reconcile", ops::reconcile)
        .page_get("/console/audit", ops::audit)
        .page_get("/console/health", ops::health)
        .body_limit(MAX_BODY_BYTES)
}

async fn home(_: Session) -> Redirect {
    Redirect::to("/console/people")
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// The sections in the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    People,
    Events,
    Jobs,
    Invitations,
    Reconcile,
    Audit,
    Health,
}

const NAV: [(Nav, &str, &str); 7] = [
    (Nav::People, "/console/people", "People"),
    (Nav::Events, "/console/events", "Events"),
    (Nav::Jobs, "/console/jobs", "Jobs"),
    (Nav::Invitations, "/console/invitations", "Invitations"),
    (Nav::Reconcile, "/console/reconcile", "Reconcile"),
    (Nav::Audit, "/console/audit", "Audit log"),
    (Nav::Health, "/console/health", "Health"),
];

/// An HTML response with the console's headers: never cached, never
/// framed, no script, forms only to this origin, no referrer leaves.
pub(crate) fn html_response(status: StatusCode, body: Markup) -> Response {
    let mut r = (status, body.into_string()).into_response();
    let h = r.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}

fn document(title: &str, header: Markup, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · rosterd console" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                (header)
                main { (main) }
            }
        }
    }
}

/// A signed-in page: navigation, the operator's name, sign-out.
pub(crate) fn page(session: &Session, current: Nav, title: &str, main: Markup) -> Response {
    let header = html! {
        header {
            a.brand href="/console/people" { "rosterd" }
            nav {
                @for (nav, href, label) in NAV {
                    @if nav == current {
                        a.current href=(href) aria-current="page" { (label) }
                    } @else {
                        a href=(href) { (label) }
                    }
                }
            }
            form.signout method="post" action="/console/sign-out" {
                span.operator {
                    "Signed in as " strong { (session.operator) }
                    @if session.role == crate::state::OperatorRole::Viewer { " (viewer: read only)" }
                }
                (csrf_field(session))
                button type="submit" { "Sign out" }
            }
        }
    };
    // A viewer is shown no action buttons; the server refuses their
    // changes whatever the page shows (session::Post).
    let main = match session.role {
        crate::state::OperatorRole::Viewer => html! { div.viewer { (main) } },
        crate::state::OperatorRole::Operator => main,
    };
    html_response(StatusCode::OK, document(title, header, main))
}

/// A page for someone not signed in (sign-in, errors before a session).
pub(crate) fn bare_page(status: StatusCode, title: &str, main: Markup) -> Response {
    let header = html! { header { span.brand { "rosterd" } } };
    html_response(status, document(title, header, main))
}

/// The hidden field every console form carries.
pub(crate) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// Why a console request did nothing, as a page.
#[derive(Debug)]
pub(crate) struct ConsoleError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ConsoleError {
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<AdminError> for ConsoleError {
    fn from(e: AdminError) -> Self {
        let (status, message) = match e {
            AdminError::BadInput(m) => (StatusCode::BAD_REQUEST, m),
            AdminError::NotFound => (StatusCode::NOT_FOUND, "Not found.".to_owned()),
            AdminError::Conflict(m) => (StatusCode::CONFLICT, m),
            // As the admin API answers: the provider's own words go to
            // the log, not the page.
            AdminError::Provider(e) => {
                tracing::warn!(error = %e, "auth provider call failed");
                if e.is_transient() {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The auth provider is not answering; try again shortly.".to_owned(),
                    )
                } else {
                    (
                        StatusCode::BAD_GATEWAY,
                        "The auth provider refused the request; the service log has its answer."
                            .to_owned(),
                    )
                }
            }
            AdminError::Db(e) => return e.into(),
        };
        Self { status, message }
    }
}

impl From<sqlx::Error> for ConsoleError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable");
            Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "The database is not answering; try again shortly.".into(),
            }
        } else {
            tracing::error!(error = %e, "console request failed");
            Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "Something went wrong; the service log has the details.".into(),
            }
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        bare_page(
            self.status,
            title,
            html! {
                h1 { (title) }
                p.error role="alert" { (self.message) }
                p { a href="/console/people" { "Back to the console" } }
            },
        )
    }
}

pub(crate) type Result<T, E = ConsoleError> = std::result::Result<T, E>;

pub(crate) fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub(crate) fn opt_time(t: &Option<DateTime<Utc>>) -> String {
    t.as_ref().map(time).unwrap_or_else(|| "—".to_owned())
}

/// `s` as one URL path segment.
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?k=v&…` from the non-empty pairs, form-encoded.
pub(crate) fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    let q = q.finish();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

/// How a badge is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Good,
    Bad,
    Warn,
    Plain,
}

/// A value the console shows as a coloured badge: each vocabulary says
/// which of its values are good, bad or worth a look.
pub(crate) trait Badge: Copy {
    fn word(self) -> &'static str;
    fn tone(self) -> Tone;
}

/// A value as a coloured badge (the class comes from its tone, never from
/// text).
pub(crate) fn badge(value: impl Badge) -> Markup {
    let class = match value.tone() {
        Tone::Good => "badge good",
        Tone::Bad => "badge bad",
        Tone::Warn => "badge warn",
        Tone::Plain => "badge",
    };
    html! { span class=(class) { (value.word()) } }
}

impl Badge for EventOutcome {
    fn word(self) -> &'static str {
        self.as_str()
    }
    fn tone(self) -> Tone {
        match self {
            Self::Applied => Tone::Good,
            Self::Stale => Tone::Warn,
            Self::Failed => Tone::Bad,
        }
    }
}

impl Badge for crate::state::InviteState {
    fn word(self) -> &'static str {
        self.as_str()
    }
    fn tone(self) -> Tone {
        match self {
            Self::Pending => Tone::Warn,
            Self::Accepted => Tone::Good,
            Self::Expired | Self::Revoked => Tone::Plain,
        }
    }
}

impl Badge for JobState {
    fn word(self) -> &'static str {
        self.as_str()
    }
    fn tone(self) -> Tone {
        match self {
            Self::Pending | Self::Running => Tone::Warn,
            Self::Done => Tone::Good,
            Self::Dead => Tone::Bad,
        }
    }
}

impl Badge for RowStatus {
    fn word(self) -> &'static str {
        self.as_str()
    }
    fn tone(self) -> Tone {
        match self {
            Self::Active => Tone::Good,
            Self::Disabled => Tone::Warn,
            Self::Deleted => Tone::Plain,
        }
    }
}

impl Badge for AuthUserState {
    fn word(self) -> &'static str {
        self.as_str()
    }
    fn tone(self) -> Tone {
        match self {
            Self::Active => Tone::Good,
            Self::Banned | Self::Missing => Tone::Bad,
            Self::Unknown => Tone::Warn,
            Self::Unlinked => Tone::Plain,
        }
    }
}

impl Badge for Level {
    fn word(self) -> &'static str {
        self.as_str()
    }
    fn tone(self) -> Tone {
        match self {
            Self::Ok => Tone::Good,
            Self::Down => Tone::Bad,
            Self::Warn => Tone::Warn,
            Self::Off => Tone::Plain,
        }
    }
}

/// A message a redirect after a POST asks the next page to show. Only
/// these fixed texts can appear, whatever the query string says.
pub(crate) fn notice(key: Option<&String>) -> Option<&'static str> {
    Some(match key?.as_str() {
        "replayed" => "Event replayed; its outcome and history are below.",
        "retried" => "Job retried: it is pending again with a fresh attempt count.",
        "provisioned" => "Provisioned now; the auth user below is the provider's answer.",
        "signed-out" => "Signed out.",
        "resent" => "Invitation resent: a new link is on its way, and the old one no longer works.",
        "revoked" => "Invitation revoked: its link no longer works.",
        "overrides" => {
            "Role overrides saved; the person is being provisioned with the effective roles."
        }
        _ => return None,
    })
}

pub(crate) fn notice_block(key: Option<&String>) -> Markup {
    html! {
        @if let Some(text) = notice(key) {
            p.notice role="status" { (text) }
        }
    }
}
