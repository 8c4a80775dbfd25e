//! The service's health as an operator sees it: the database and its
//! migrations, whether the auth provider and the directory answer, and
//! how far behind the provisioning queue is.

use super::jobs::{stats, QueueStats};
use crate::directory::AirtableDirectory;
use crate::provision::provider::AuthProvider;
use crate::state::JobState;
use chrono::Utc;
use sqlx::PgPool;
use std::time::Duration;

/// How long one probe may take before it counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// A due job waiting longer than this means the workers are behind.
const QUEUE_AGE_WARN_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Ok,
    Warn,
    Down,
    /// Not configured, so not checked.
    Off,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warning",
            Level::Down => "down",
            Level::Off => "not configured",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) level: Level,
    pub(crate) detail: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Health {
    pub(crate) checks: Vec<Check>,
    pub(crate) queue: Option<QueueStats>,
}

fn check(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
    Check {
        name,
        level,
        detail: detail.into(),
    }
}

pub(crate) async fn report(
    db: &PgPool,
    provider: &dyn AuthProvider,
    directory: Option<&AirtableDirectory>,
) -> Health {
    let mut checks = Vec::new();
    let database = sqlx::query_scalar!("select 1 as \"one!\"")
        .fetch_one(db)
        .await;
    checks.push(match &database {
        Ok(_) => check("database", Level::Ok, "answers"),
        Err(e) => check("database", Level::Down, e.to_string()),
    });
    checks.push(match crate::db::migrations_current(db).await {
        Ok(true) => check("migrations", Level::Ok, "every migration is applied"),
        Ok(false) => check("migrations", Level::Down, "migrations pending"),
        Err(e) => check("migrations", Level::Down, e.to_string()),
    });
    checks.push(
        match tokio::time::timeout(PROBE_TIMEOUT, provider.list_users(1, 1)).await {
            Ok(Ok(_)) => check("auth provider", Level::Ok, "answers"),
            Ok(Err(e)) => check("auth provider", Level::Down, e.to_string()),
            Err(_) => check(
                "auth provider",
                Level::Down,
                format!("no answer within {}s", PROBE_TIMEOUT.as_secs()),
            ),
        },
    );
    checks.push(match directory {
        None => check("directory", Level::Off, "no AIRTABLE_BASE_ID"),
        Some(d) => {
            let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
            match d
                .find_by_email("health-probe@rosterd.invalid", deadline)
                .await
            {
                Ok(_) => check("directory", Level::Ok, "answers"),
                Err(e) => check("directory", Level::Down, e.to_string()),
            }
        }
    });
    let queue = stats(db).await;
    match &queue {
        Ok(q) => {
            let age = q.oldest_due.map(|t| (Utc::now() - t).num_seconds().max(0));
            checks.push(match age {
                None => check("queue age", Level::Ok, "no job waiting"),
                Some(s) if s > QUEUE_AGE_WARN_SECS => check(
                    "queue age",
                    Level::Warn,
                    format!("the oldest due job has waited {s}s"),
                ),
                Some(s) => check(
                    "queue age",
                    Level::Ok,
                    format!("the oldest due job has waited {s}s"),
                ),
            });
            let dead = q.count(JobState::Dead);
            checks.push(if dead > 0 {
                check("dead jobs", Level::Warn, format!("{dead} dead job(s)"))
            } else {
                check("dead jobs", Level::Ok, "none")
            });
        }
        Err(e) => checks.push(check("queue age", Level::Down, e.to_string())),
    }
    Health {
        checks,
        queue: queue.ok(),
    }
}
