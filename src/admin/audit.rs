//! The audit log: who did what to what, written with the change.

use super::page::{listing_limit, parse_id_cursor, Page};
use super::AdminError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

pub(crate) use crate::audit::record;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    pub(crate) id: i64,
    pub(crate) at: DateTime<Utc>,
    pub(crate) actor: String,
    /// `operator` or `viewer` for an operator's token; null for rosterd
    /// itself, the CLI, an identity provider or an invitee.
    pub(crate) actor_role: Option<String>,
    pub(crate) action: String,
    pub(crate) target: Option<String>,
    pub(crate) details: Value,
}

/// Newest first.
pub(crate) async fn list(
    db: &PgPool,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<Page<Entry>, AdminError> {
    let limit = listing_limit(limit)?;
    let before = parse_id_cursor(cursor).map_err(AdminError::BadInput)?;
    let mut tx = crate::db::planned_per_call(db).await?;
    let rows = sqlx::query_as!(
        Entry,
        r#"select id, at, actor, actor_role, action, target, details from audit_log
           where ($1::bigint is null or id < $1)
           order by id desc limit $2"#,
        before,
        limit + 1
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, limit, |e| e.id.to_string()))
}
