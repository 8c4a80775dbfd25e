//! Invitations for operators: list them, resend (a new link, a fresh
//! expiry), revoke. The admin API, the console and `rosterd invite` call
//! these; every change is audited with the operator's name.

use super::events::{only_known, parse_time};
use super::page::{listing_limit, parse_id_cursor, Page};
use super::AdminError;
use crate::config::InviteConfig;
use crate::event::Email;
use crate::invite::manage::{self, Filter, Invitation, Refused};
use crate::state::InviteState;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::HashMap;

/// `GET /api/admin/invitations?state=&email=&userId=&since=&until=&limit=&cursor=`:
/// newest first; `since`/`until` bound when they were issued.
pub(crate) async fn list(
    db: &PgPool,
    params: &HashMap<String, String>,
) -> Result<Page<Invitation>, AdminError> {
    only_known(
        params,
        &[
            "state", "email", "userId", "since", "until", "limit", "cursor",
        ],
    )?;
    let bad = AdminError::BadInput;
    let state = params
        .get("state")
        .map(|s| {
            s.parse::<InviteState>()
                .map_err(|_| bad(format!("state must be one of {}", InviteState::NAMES)))
        })
        .transpose()?;
    let email = params
        .get("email")
        .map(|e| Email::parse(e).map_err(|m| bad(format!("email {m}"))))
        .transpose()?;
    let user_id = params
        .get("userId")
        .map(|u| u.parse().map_err(|_| bad("userId must be a UUID".into())))
        .transpose()?;
    let since = params
        .get("since")
        .map(|s| parse_time("since", s))
        .transpose()?;
    let until = params
        .get("until")
        .map(|s| parse_time("until", s))
        .transpose()?;
    let limit = listing_limit(params.get("limit").map(String::as_str))?;
    let before = parse_id_cursor(params.get("cursor").map(String::as_str)).map_err(bad)?;
    let filter = Filter {
        state,
        email: email.map(|e| e.as_str().to_owned()),
        user_id,
        since,
        until,
        before,
    };
    let mut tx = crate::db::planned_per_call(db).await?;
    let rows = manage::list(&mut tx, &filter, limit).await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, limit, |i| i.id.to_string()))
}

/// A person's invitations, newest first (the user view).
pub(crate) async fn for_user(
    db: &PgPool,
    user: uuid::Uuid,
) -> Result<Vec<Invitation>, sqlx::Error> {
    let filter = Filter {
        user_id: Some(user),
        ..Filter::default()
    };
    let mut rows = manage::list(&mut *db.acquire().await?, &filter, 10).await?;
    rows.truncate(10);
    Ok(rows)
}

/// What a resend or revoke did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Changed {
    pub(crate) invitation: Invitation,
    /// The new link, when no mailer is configured: shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) link: Option<String>,
    /// Whether the new link is being mailed.
    pub(crate) mailed: bool,
}

fn refused(r: Refused) -> AdminError {
    match r {
        Refused::NotFound => AdminError::NotFound,
        Refused::State(m) => AdminError::Conflict(m),
    }
}

pub(crate) fn parse_id(raw: &str) -> Result<i64, AdminError> {
    raw.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| AdminError::BadInput("invitation id must be a positive whole number".into()))
}

/// `POST /api/admin/invitations/{id}/resend`.
pub(crate) async fn resend(
    db: &PgPool,
    cfg: &InviteConfig,
    actor: &crate::audit::Actor,
    id: i64,
) -> Result<Changed, AdminError> {
    let policy = cfg.policy();
    let (invitation, token) = manage::resend(&mut *db.acquire().await?, id, actor, policy)
        .await?
        .map_err(refused)?;
    crate::metrics::invitation("resent");
    Ok(Changed {
        invitation,
        link: token.map(|t| crate::invite::link(&cfg.base_url, &t).to_string()),
        mailed: policy.mail,
    })
}

/// `POST /api/admin/invitations/{id}/revoke`.
pub(crate) async fn revoke(
    db: &PgPool,
    actor: &crate::audit::Actor,
    id: i64,
) -> Result<Changed, AdminError> {
    let invitation = manage::revoke(&mut *db.acquire().await?, id, actor)
        .await?
        .map_err(refused)?;
    crate::metrics::invitation("revoked");
    Ok(Changed {
        invitation,
        link: None,
        mailed: false,
    })
}

async fn latest(db: &PgPool, email: &Email) -> Result<i64, AdminError> {
    manage::latest_for_email(&mut *db.acquire().await?, email)
        .await?
        .ok_or(AdminError::NotFound)
}

/// `rosterd invite resend EMAIL`.
pub(crate) async fn resend_for(
    db: &PgPool,
    cfg: &InviteConfig,
    actor: &crate::audit::Actor,
    email: &Email,
) -> Result<Changed, AdminError> {
    resend(db, cfg, actor, latest(db, email).await?).await
}

/// `rosterd invite revoke EMAIL`.
pub(crate) async fn revoke_for(
    db: &PgPool,
    actor: &crate::audit::Actor,
    email: &Email,
) -> Result<Changed, AdminError> {
    revoke(db, actor, latest(db, email).await?).await
}
