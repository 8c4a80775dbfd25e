//! The provisioning queue for operators: list it, revive a dead job.

use super::audit;
use super::events::only_known;
use super::page::{listing_limit, parse_id_cursor, Page};
use super::AdminError;
use crate::state::{Action, JobKind, JobState};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub(crate) id: i64,
    pub(crate) kind: JobKind,
    pub(crate) email: String,
    /// The invitation an `invite` job sends (absent on other jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) invitation_id: Option<i64>,
    pub(crate) status: JobState,
    pub(crate) attempts: i32,
    pub(crate) run_at: DateTime<Utc>,
    pub(crate) lease_until: Option<DateTime<Utc>>,
    pub(crate) dirty: bool,
    pub(crate) last_action: Option<Action>,
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

/// `GET /api/admin/jobs?status=&limit=&cursor=`: newest first.
pub(crate) async fn list(
    db: &PgPool,
    params: &HashMap<String, String>,
) -> Result<Page<Job>, AdminError> {
    only_known(params, &["status", "limit", "cursor"])?;
    let status = params
        .get("status")
        .map(|s| {
            s.parse::<JobState>().map_err(|_| {
                AdminError::BadInput(format!("status must be one of {}", JobState::NAMES))
            })
        })
        .transpose()?;
    let limit = listing_limit(params.get("limit").map(String::as_str))?;
    let before =
        parse_id_cursor(params.get("cursor").map(String::as_str)).map_err(AdminError::BadInput)?;
    let mut tx = crate::db::planned_per_call(db).await?;
    let rows = sqlx::query_as!(
        Job,
        r#"select id, kind as "kind: JobKind", email, invitation_id, state as "status: JobState", attempts, run_at, lease_until, dirty,
                  last_action as "last_action: Action", last_error, created_at, updated_at
           from provisioning_jobs
           where ($1::text is null or state = $1) and ($2::bigint is null or id < $2)
           order by id desc limit $3"#,
        status.map(JobState::as_str),
        before,
        limit + 1
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, limit, |j| j.id.to_string()))
}

/// A person's latest jobs, for the user view.
pub async fn for_email(db: &PgPool, email: &str) -> Result<Vec<Job>, sqlx::Error> {
    sqlx::query_as!(
        Job,
        r#"select id, kind as "kind: JobKind", email, invitation_id, state as "status: JobState", attempts, run_at, lease_until, dirty,
                  last_action as "last_action: Action", last_error, created_at, updated_at
           from provisioning_jobs where email = $1 order by id desc limit 10"#,
        email
    )
    .fetch_all(db)
    .await
}

/// `POST /api/admin/jobs/{id}/retry`: a dead job goes back to pending, due
/// now, with a fresh attempt count. Only dead jobs, and only when no other
/// job for that person is queued (one active job per person).
pub(crate) async fn retry(
    db: &PgPool,
    actor: &crate::audit::Actor,
    raw_id: &str,
) -> Result<Job, AdminError> {
    let id: i64 = raw_id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| AdminError::BadInput("job id must be a positive whole number".into()))?;
    let mut tx = db.begin().await?;
    let job = sqlx::query!(
        r#"select email, kind as "kind: JobKind", invitation_id, state as "state: JobState"
           from provisioning_jobs where id = $1 for update"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AdminError::NotFound)?;
    if job.state != JobState::Dead {
        return Err(AdminError::Conflict(format!(
            "job {id} is {}; only dead jobs can be retried",
            job.state
        )));
    }
    let active = sqlx::query_scalar!(
        "select id from provisioning_jobs
         where state in ('pending', 'running') and kind = $2
           and (email = $1 and kind = 'provision' or invitation_id = $3)",
        job.email,
        job.kind.as_str(),
        job.invitation_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(other) = active {
        return Err(AdminError::Conflict(format!(
            "job {other} for the same person is already queued; it will run instead"
        )));
    }
    let revived = sqlx::query_as!(
        Job,
        r#"update provisioning_jobs
           set state = $2, attempts = 0, run_at = now(), dirty = false,
               lease_token = null, lease_until = null, updated_at = now()
           where id = $1
           returning id, kind as "kind: JobKind", email, invitation_id, state as "status: JobState", attempts, run_at, lease_until,
                     dirty, last_action as "last_action: Action", last_error, created_at,
                     updated_at"#,
        id,
        JobState::Pending.as_str()
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match &e {
        // A job for the person was queued between the check and the update.
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => {
            AdminError::Conflict("another job for the same person was just queued".into())
        }
        _ => AdminError::Db(e),
    })?;
    audit::record(
        &mut tx,
        actor,
        "job.retry",
        Some(&id.to_string()),
        &json!({"email": revived.email}),
    )
    .await?;
    tx.commit().await?;
    Ok(revived)
}

/// The queue at a glance: jobs per state, and the oldest job that is due
/// but not yet claimed (how far the workers are behind).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueueStats {
    /// Every state, in queue order, with its count (zero included).
    pub(crate) depth: Vec<(JobState, i64)>,
    pub(crate) oldest_due: Option<DateTime<Utc>>,
}

impl QueueStats {
    pub(crate) fn count(&self, state: JobState) -> i64 {
        self.depth
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    }
}

pub(crate) async fn stats(db: &PgPool) -> Result<QueueStats, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select state as "state!: JobState", count(*) as "count!" from provisioning_jobs group by state"#
    )
    .fetch_all(db)
    .await?;
    let oldest_due = sqlx::query_scalar!(
        "select min(run_at) from provisioning_jobs where state = 'pending' and run_at <= now()"
    )
    .fetch_one(db)
    .await?;
    let depth = JobState::ALL
        .into_iter()
        .map(|s| {
            let n = rows.iter().find(|r| r.state == s).map_or(0, |r| r.count);
            (s, n)
        })
        .collect();
    Ok(QueueStats { depth, oldest_due })
}
