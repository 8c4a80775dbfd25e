//! Console sessions: sign-in with an operator token from `ADMIN_TOKENS`
//! (checked by the admin API's own constant-time comparison), a
//! server-side session row, and a CSRF token per session that every POST
//! must carry.
//!
//! The cookie is `rosterd_console=<64 hex>; HttpOnly; SameSite=Strict;
//! Path=/console; Max-Age=…`, plus `Secure` when the request came over
//! TLS as the proxy in front reports it (`X-Forwarded-Proto: https`).
//! Only the SHA-256 of the id is stored. The sign-in form itself is
//! protected by a double-submit token: a short-lived cookie whose value
//! the form must repeat.

use super::{bare_page, notice_block, ConsoleError};
use crate::http::AppState;
use axum::extract::{Form, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

pub(crate) const COOKIE: &str = "rosterd_console";
/// The sign-in form's double-submit cookie.
const SIGN_IN_COOKIE: &str = "rosterd_console_signin";
/// How long a session lasts from sign-in; there is no sliding renewal.
pub(crate) const SESSION_SECS: i64 = 8 * 3600;
/// How long a sign-in form stays usable.
const SIGN_IN_SECS: i64 = 600;
const SIGN_IN_PATH: &str = "/console/sign-in";

/// 32 random bytes from the OS, as 64 hex characters.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn is_token(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the client reached us over TLS: the proxy in front says so in
/// `X-Forwarded-Proto`. (rosterd itself serves plain HTTP.)
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}{secure}"
    ))
    .expect("cookie text is ASCII")
}

/// A signed-in operator.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The name of the token they signed in with: the audit log's actor.
    pub(crate) operator: String,
    /// What that token may do: a viewer changes nothing.
    pub(crate) role: crate::state::OperatorRole,
    pub(crate) csrf: String,
    id: String,
}

impl Session {
    /// The audit log's actor for what this session does.
    pub(crate) fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor {
            name: self.operator.clone(),
            role: Some(self.role),
        }
    }

    async fn load(db: &sqlx::PgPool, id: &str) -> Result<Option<Session>, sqlx::Error> {
        if !is_token(id) {
            return Ok(None);
        }
        let row = sqlx::query!(
            r#"select operator, csrf_token, role as "role: crate::state::OperatorRole"
               from console_sessions where id_hash = $1 and expires_at > now()"#,
            hash(id)
        )
        .fetch_optional(db)
        .await?;
        Ok(row.map(|r| Session {
            operator: r.operator,
            role: r.role,
            csrf: r.csrf_token,
            id: id.to_owned(),
        }))
    }
}

/// A page asked for without a live session goes to the sign-in form.
impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(id) = cookie(&parts.headers, COOKIE) else {
            return Err(Redirect::to(SIGN_IN_PATH).into_response());
        };
        match Session::load(&state.db, id).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(Redirect::to(SIGN_IN_PATH).into_response()),
            Err(e) => Err(ConsoleError::from(e).into_response()),
        }
    }
}

/// A console form submission: a live session, and the session's CSRF
/// token in the `csrf` field. Every console POST but sign-in takes this,
/// so none can run without the token (403).
pub(crate) struct Post {
    pub(crate) session: Session,
    pub(crate) form: HashMap<String, String>,
}

impl Post {
    /// A field, trimmed; empty counts as absent.
    pub(crate) fn field(&self, name: &str) -> Option<String> {
        self.form
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// A viewer's change refused (403), and the refusal audited.
async fn refuse_viewer(state: &AppState, session: &Session, path: &str) -> Response {
    tracing::warn!(operator = %session.operator, path, "a viewer was refused a console change");
    let audited = match state.db.acquire().await {
        Ok(mut conn) => {
            crate::audit::refused(
                &mut conn,
                &session.operator,
                session.role,
                &format!("POST {path}"),
            )
            .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = audited {
        return ConsoleError::from(e).into_response();
    }
    ConsoleError {
        status: StatusCode::FORBIDDEN,
        message: "You are signed in as a viewer: you can look at everything and change nothing."
            .into(),
    }
    .into_response()
}

fn forbidden() -> Response {
    ConsoleError {
        status: StatusCode::FORBIDDEN,
        message:
            "This form has expired or did not come from the console. Reload the page and try again."
                .into(),
    }
    .into_response()
}

impl FromRequest<AppState> for Post {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        // A body that is not a form carries no token either.
        let form = Form::<HashMap<String, String>>::from_request(req, state)
            .await
            .map(|Form(f)| f)
            .unwrap_or_default();
        let given = form.get("csrf").map(String::as_str).unwrap_or("");
        if !same(given, &session.csrf) {
            tracing::warn!(operator = %session.operator, "console POST without a valid CSRF token");
            return Err(forbidden());
        }
        // A viewer may sign out, and change nothing else.
        if session.role == crate::state::OperatorRole::Viewer && path != "/console/sign-out" {
            return Err(refuse_viewer(state, &session, &path).await);
        }
        Ok(Post { session, form })
    }
}

fn sign_in_page(
    status: StatusCode,
    secure: bool,
    error: Option<&str>,
    notice: Option<&String>,
) -> Response {
    let token = random_token();
    let mut r = bare_page(
        status,
        "Sign in",
        html! {
            section.signin {
                h1 { "Operator sign-in" }
                (notice_block(notice))
                @if let Some(e) = error {
                    p.error role="alert" { (e) }
                }
                form method="post" action=(SIGN_IN_PATH) {
                    input type="hidden" name="csrf" value=(token);
                    label for="token" { "Operator token" }
                    input id="token" type="password" name="token" autocomplete="off" required autofocus;
                    p.hint { "One of the tokens in ADMIN_TOKENS. Its name is recorded in the audit log for everything you do." }
                    button type="submit" { "Sign in" }
                }
            }
        },
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, &token, SIGN_IN_PATH, SIGN_IN_SECS, secure),
    );
    r
}

/// `GET /console/sign-in`.
pub(crate) async fn sign_in_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(id) = cookie(&headers, COOKIE) {
        if let Ok(Some(_)) = Session::load(&state.db, id).await {
            return Redirect::to("/console/people").into_response();
        }
    }
    sign_in_page(StatusCode::OK, over_tls(&headers), None, q.get("done"))
}

/// `POST /console/sign-in`: token → session. Audited as `console.sign_in`
/// under the token's name; a wrong token is logged, not audited (like a
/// refused admin API call).
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ConsoleError> {
    let secure = over_tls(&headers);
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or("");
    let given = form.get("csrf").map(String::as_str).unwrap_or("");
    if !is_token(expected) || !same(given, expected) {
        return Ok(forbidden());
    }
    let token = form.get("token").map(String::as_str).unwrap_or("");
    let Some((operator, role)) = state.config.admin_tokens.identify_token(token) else {
        tracing::warn!("console sign-in with a token that is not an operator token");
        return Ok(sign_in_page(
            StatusCode::UNAUTHORIZED,
            secure,
            Some("That is not an operator token."),
            None,
        ));
    };
    let id = random_token();
    let csrf = random_token();
    let mut tx = state.db.begin().await?;
    sqlx::query!("delete from console_sessions where expires_at <= now()")
        .execute(&mut *tx)
        .await?;
    let expires_at = sqlx::query_scalar!(
        "insert into console_sessions (id_hash, operator, csrf_token, expires_at, role)
         values ($1, $2, $3, now() + make_interval(secs => $4), $5)
         returning expires_at",
        hash(&id),
        operator,
        csrf,
        SESSION_SECS as f64,
        role.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    crate::audit::record(
        &mut tx,
        &crate::audit::Actor {
            name: operator.to_owned(),
            role: Some(role),
        },
        "console.sign_in",
        None,
        &json!({"expiresAt": expires_at, "role": role}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(operator, "console sign-in");
    let mut r = Redirect::to("/console/people").into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(COOKIE, &id, "/console", SESSION_SECS, secure),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, "", SIGN_IN_PATH, 0, secure),
    );
    Ok(r)
}

/// `POST /console/sign-out`: the session row goes, so the cookie is dead
/// even if a copy of it survives.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    post: Post,
) -> Result<Response, ConsoleError> {
    let s = &post.session;
    let mut tx = state.db.begin().await?;
    sqlx::query!(
        "delete from console_sessions where id_hash = $1",
        hash(&s.id)
    )
    .execute(&mut *tx)
    .await?;
    crate::audit::record(&mut tx, &s.actor(), "console.sign_out", None, &json!({})).await?;
    tx.commit().await?;
    let mut r = Redirect::to("/console/sign-in?done=signed-out").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, "", "/console", 0, over_tls(&headers)),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; rosterd_console_signin=x; rosterd_console=abc"
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, SIGN_IN_COOKIE), Some("x"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn session_cookies_are_strict_and_secure_over_tls() {
        let plain = set_cookie(COOKIE, "v", "/console", 60, false);
        assert_eq!(
            plain,
            "rosterd_console=v; HttpOnly; SameSite=Strict; Path=/console; Max-Age=60"
        );
        let tls = set_cookie(COOKIE, "v", "/console", 60, true);
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
        let mut h = HeaderMap::new();
        assert!(!over_tls(&h));
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(over_tls(&h));
    }

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token(), random_token());
        assert!(is_token(&a) && is_token(&b) && a != b);
        assert!(!is_token("zz") && !is_token(&"g".repeat(64)));
    }
}
