//! Bounded storage (`rosterd prune`): past a retention period, stored
//! event payloads (names, emails) are dropped while their ids and hashes
//! stay, so deduplication is permanent; finished jobs and their attempts
//! are deleted; invitations past their expiry become `expired`, and old
//! finished ones are deleted. The audit log is kept whole.

use crate::state::JobState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

/// How old something must be to be pruned: `90d`, `36h`, `30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention(chrono::Duration);

impl Retention {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: i64 = n
            .parse()
            .ok()
            .filter(|n| *n > 0 && *n <= 36_500)
            .ok_or_else(|| format!("{s:?} is not a duration such as 90d, 36h or 30m"))?;
        let d = match unit {
            "d" => chrono::Duration::days(n),
            "h" => chrono::Duration::hours(n),
            "m" => chrono::Duration::minutes(n),
            _ => return Err(format!("{s:?} is not a duration such as 90d, 36h or 30m")),
        };
        Ok(Self(d))
    }

    pub(crate) fn cutoff(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.0
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PruneReport {
    /// Stored events whose payload was (or would be) dropped.
    pub(crate) payloads: u64,
    /// Finished jobs deleted with their attempts.
    pub(crate) jobs: u64,
    /// Open invitations past their expiry, marked `expired` (whatever
    /// their age: expiry is not retention).
    pub(crate) invitations_expired: u64,
    /// Expired, accepted and revoked invitations deleted.
    pub(crate) invitations_deleted: u64,
    pub(crate) cutoff: DateTime<Utc>,
    pub(crate) dry_run: bool,
}

/// Rows changed per statement: short transactions, so ingest and the
/// worker never wait long behind a prune.
const BATCH: i64 = 5_000;

pub(crate) async fn prune(
    db: &PgPool,
    retention: Retention,
    dry_run: bool,
) -> Result<PruneReport, sqlx::Error> {
    let cutoff = retention.cutoff(Utc::now());
    let mut report = PruneReport {
        cutoff,
        dry_run,
        ..PruneReport::default()
    };
    (report.invitations_expired, report.invitations_deleted) =
        crate::invite::manage::prune(&mut *db.acquire().await?, cutoff, dry_run).await?;
    if dry_run {
        report.payloads = sqlx::query_scalar!(
            r#"select count(*) as "n!" from inbound_events
               where received_at < $1 and pruned_at is null"#,
            cutoff
        )
        .fetch_one(db)
        .await? as u64;
        report.jobs = sqlx::query_scalar!(
            r#"select count(*) as "n!" from provisioning_jobs
               where state = $2 and updated_at < $1"#,
            cutoff,
            JobState::Done.as_str()
        )
        .fetch_one(db)
        .await? as u64;
        return Ok(report);
    }
    report.payloads = in_batches(|| async {
        Ok(sqlx::query!(
            "update inbound_events set payload = 'null'::jsonb, pruned_at = now()
             where event_id in (select event_id from inbound_events
                                where received_at < $1 and pruned_at is null
                                limit $2 for update skip locked)",
            cutoff,
            BATCH
        )
        .execute(db)
        .await?
        .rows_affected())
    })
    .await?;
    report.jobs = in_batches(|| async {
        Ok(sqlx::query!(
            "delete from provisioning_jobs
             where id in (select id from provisioning_jobs
                          where state = $3 and updated_at < $1
                          limit $2 for update skip locked)",
            cutoff,
            BATCH,
            JobState::Done.as_str()
        )
        .execute(db)
        .await?
        .rows_affected())
    })
    .await?;
    Ok(report)
}

/// Repeats `step` (which changes at most [`BATCH`] rows) until a short
/// batch; the total changed.
async fn in_batches<F, Fut>(mut step: F) -> Result<u64, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let n = step().await?;
        total += n;
        if n < BATCH as u64 {
            return Ok(total);
        }
    }
}

impl PruneReport {
    pub(crate) fn render(&self) -> String {
        let verb = if self.dry_run {
            "would prune"
        } else {
            "pruned"
        };
        format!(
            "  {verb} everything older than {}\n\n  event payloads: {}\n  finished jobs: {}\n  invitations expired: {}\n  old invitations: {}\n",
            self.cutoff
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.payloads,
            self.jobs,
            self.invitations_expired,
            self.invitations_deleted
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_once() {
        assert_eq!(
            Retention::parse("90d").unwrap(),
            Retention(chrono::Duration::days(90))
        );
        assert_eq!(
            Retention::parse("36h").unwrap(),
            Retention(chrono::Duration::hours(36))
        );
        assert_eq!(
            Retention::parse("30m").unwrap(),
            Retention(chrono::Duration::minutes(30))
        );
        for bad in [
            "",
            "d",
            "0d",
            "-1d",
            "90",
            "90x",
            "1.5d",
            "99999999d",
            "90 d",
        ] {
            assert!(Retention::parse(bad).is_err(), "{bad:?}");
        }
    }
}
