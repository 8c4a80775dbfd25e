//! One roster record with everything an operator asks about it: the row,
//! its auth user as the provider sees it, its person's jobs, its events.

use super::events::only_known;
use super::events::{recent_for_user, EventSummary};
use super::jobs::{for_email, Job};
use super::page::{listing_limit, Page};
use super::AdminError;
use crate::event::RecordId;
use crate::provision::provider::AuthProvider;
use crate::state::{RowStatus, Source};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RosterRow {
    pub(crate) id: String,
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) status: RowStatus,
    pub(crate) groups: Vec<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) profile_at: Option<DateTime<Utc>>,
    pub(crate) profile_event_id: Option<String>,
    pub(crate) deleted_at: Option<DateTime<Utc>>,
    pub(crate) deleted_event_id: Option<String>,
    pub(crate) auth_user_id: Option<Uuid>,
    pub(crate) auth_linked_at: Option<DateTime<Utc>>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    /// Which way the event that wrote the profile came in (`None` when it
    /// was pruned, or for a tombstone).
    pub(crate) source: Option<Source>,
}

/// Where a roster row's auth user stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthUserState {
    Active,
    Banned,
    /// Linked, but the provider no longer has the user.
    Missing,
    Unlinked,
    /// The provider did not answer.
    Unknown,
}

impl AuthUserState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Banned => "banned",
            Self::Missing => "missing",
            Self::Unlinked => "unlinked",
            Self::Unknown => "unknown",
        }
    }
}

impl Serialize for AuthUserState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The linked auth user as the provider reports it now.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthState {
    pub(crate) state: AuthUserState,
    pub(crate) user_id: Option<Uuid>,
    pub(crate) email: Option<String>,
    pub(crate) roles: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct UserDetail {
    pub(crate) user: RosterRow,
    pub(crate) auth: AuthState,
    pub(crate) jobs: Vec<Job>,
    pub(crate) events: Vec<EventSummary>,
    /// The linked auth user's invitations, newest first.
    pub(crate) invitations: Vec<crate::invite::manage::Invitation>,
}

pub(crate) async fn load_row(db: &PgPool, id: &RecordId) -> Result<RosterRow, AdminError> {
    sqlx::query_as!(
        RosterRow,
        r#"select id, email, name, status as "status!: RowStatus", groups, roles, profile_at,
                  profile_event_id, deleted_at, deleted_event_id, auth_user_id,
                  auth_linked_at, created_at, updated_at,
                  (select e.source from inbound_events e where e.event_id = roster.profile_event_id)
                      as "source?: Source"
           from roster where id = $1"#,
        id.as_str()
    )
    .fetch_optional(db)
    .await?
    .ok_or(AdminError::NotFound)
}

pub(crate) fn parse_id(raw: &str) -> Result<RecordId, AdminError> {
    RecordId::parse(raw).map_err(|m| AdminError::BadInput(format!("user id {m}")))
}

/// `GET /api/admin/users/{id}`.
pub(crate) async fn detail(
    db: &PgPool,
    provider: &dyn AuthProvider,
    raw_id: &str,
) -> Result<UserDetail, AdminError> {
    let id = parse_id(raw_id)?;
    let user = load_row(db, &id).await?;
    let auth = match user.auth_user_id {
        None => AuthState {
            state: AuthUserState::Unlinked,
            user_id: None,
            email: None,
            roles: None,
        },
        Some(uid) => match provider.get_user(uid).await {
            Ok(Some(u)) => AuthState {
                state: if u.banned {
                    AuthUserState::Banned
                } else {
                    AuthUserState::Active
                },
                user_id: Some(uid),
                email: Some(u.email),
                roles: Some(u.roles),
            },
            Ok(None) => AuthState {
                state: AuthUserState::Missing,
                user_id: Some(uid),
                email: None,
                roles: None,
            },
            Err(e) => {
                tracing::warn!(error = %e, "auth provider did not answer for the user view");
                AuthState {
                    state: AuthUserState::Unknown,
                    user_id: Some(uid),
                    email: None,
                    roles: None,
                }
            }
        },
    };
    let jobs = match &user.email {
        Some(email) => for_email(db, email).await?,
        None => Vec::new(),
    };
    let events = recent_for_user(db, &id).await?;
    let invitations = match user.auth_user_id {
        Some(uid) => super::invitations::for_user(db, uid).await?,
        None => Vec::new(),
    };
    Ok(UserDetail {
        user,
        auth,
        jobs,
        events,
        invitations,
    })
}

/// One roster row in the people list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PersonSummary {
    pub(crate) id: String,
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) status: RowStatus,
    pub(crate) auth_user_id: Option<Uuid>,
    pub(crate) updated_at: DateTime<Utc>,
}

/// The longest search text accepted.
const MAX_QUERY_CHARS: usize = 200;

/// `q` as a case-insensitive `LIKE` pattern matching it anywhere, with its
/// own `%`, `_` and `\` taken literally.
fn contains_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The roster, in record-id order: `q` finds a record id exactly or any
/// part of an email or name (ignoring case); `status` is `active`,
/// `disabled` or `deleted`; `overrides=true` keeps only people whose roles
/// an operator overrides.
pub(crate) async fn list(
    db: &PgPool,
    params: &HashMap<String, String>,
) -> Result<Page<PersonSummary>, AdminError> {
    only_known(params, &["q", "status", "overrides", "limit", "cursor"])?;
    let overrides = match params.get("overrides").map(String::as_str) {
        None | Some("" | "false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(AdminError::BadInput(
                "overrides must be true or false".into(),
            ))
        }
    };
    let q = params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
        return Err(AdminError::BadInput(format!(
            "q must be at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let status = params
        .get("status")
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<RowStatus>().map_err(|_| {
                AdminError::BadInput(format!("status must be one of {}", RowStatus::NAMES))
            })
        })
        .transpose()?;
    let limit = listing_limit(params.get("limit").map(String::as_str))?;
    // The cursor is the last record id seen; any string is a position.
    let after = params.get("cursor").filter(|c| !c.is_empty()).cloned();
    let mut tx = crate::db::planned_per_call(db).await?;
    let rows = sqlx::query_as!(
        PersonSummary,
        r#"select id, email, name, status as "status!: RowStatus", auth_user_id, updated_at
           from roster
           where ($1::text is null or status = $1)
             and ($2::text is null or id = $2
                  or email ilike $3 escape '\' or name ilike $3 escape '\')
             and ($4::text is null or id > $4)
             and (not $6 or exists(select 1 from role_overrides o
                                   where o.user_id = roster.auth_user_id))
           order by id
           limit $5"#,
        status.map(RowStatus::as_str),
        q,
        q.map(contains_pattern),
        after,
        limit + 1,
        overrides
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, limit, |p| p.id.clone()))
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_text_is_taken_literally() {
        assert_eq!(contains_pattern("ada"), "%ada%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
