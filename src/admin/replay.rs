//! Replaying stored events: one, or every match of a filter in occurrence
//! order. Both go through `roster::apply::reapply`, the apply path.

use super::audit;
use super::events::{matching, EventFilter};
use super::AdminError;
use crate::event::{EventId, EventRules};
use crate::roles::RoleMap;
use crate::roster::apply::{reapply, Reapplied};
use crate::roster::store;
use crate::state::{EventOutcome, Source};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

/// Replays one event now and audits it in the same transaction.
pub(crate) async fn replay_one(
    db: &PgPool,
    roles: &RoleMap,
    rules: &EventRules,
    actor: &crate::audit::Actor,
    event_id: &str,
) -> Result<Reapplied, AdminError> {
    let id = EventId::parse(event_id).map_err(|m| AdminError::BadInput(format!("eventId {m}")))?;
    let mut tx = db.begin().await?;
    let Some(result) = reapply(&mut tx, &id, actor.name.as_str(), roles, rules).await? else {
        return Err(if store::is_pruned(&mut tx, &id).await? {
            AdminError::Conflict(
                "the event's payload was pruned (retention period); it cannot be replayed".into(),
            )
        } else {
            AdminError::NotFound
        });
    };
    audit::record(
        &mut tx,
        actor,
        "event.replay",
        Some(id.as_str()),
        &json!({"outcome": result.outcome.as_str(), "error": result.error}),
    )
    .await?;
    tx.commit().await?;
    count(&result);
    Ok(result)
}

fn count(r: &Reapplied) {
    crate::metrics::event(Source::Replay, r.event_type.as_str(), r.outcome.as_str());
}

/// Events a bulk replay takes when the caller does not say.
pub(crate) const DEFAULT_BULK_LIMIT: i64 = 1000;
pub(crate) const MAX_BULK_LIMIT: i64 = 10_000;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Outcomes {
    pub(crate) applied: u64,
    pub(crate) stale: u64,
    pub(crate) failed: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkReport {
    /// Events matching the filter, whatever the limit.
    pub(crate) matched: i64,
    /// Events replayed (in a dry run: that would be replayed).
    pub(crate) replayed: u64,
    pub(crate) outcomes: Outcomes,
    pub(crate) dry_run: bool,
}

impl BulkReport {
    fn count(&mut self, outcome: EventOutcome) {
        self.replayed += 1;
        match outcome {
            EventOutcome::Applied => self.outcomes.applied += 1,
            EventOutcome::Stale => self.outcomes.stale += 1,
            EventOutcome::Failed => self.outcomes.failed += 1,
        }
    }

    /// The block the CLI prints.
    pub(crate) fn render(&self) -> String {
        format!(
            "  Replaying events{}\n\n  matched: {}\n  replayed: {}\n  applied: {}\n  stale: {}\n  failed: {}\n\n  Replay complete\n",
            if self.dry_run { " (dry run: nothing changed)" } else { "" },
            self.matched,
            self.replayed,
            self.outcomes.applied,
            self.outcomes.stale,
            self.outcomes.failed
        )
    }
}

/// Replays the first `limit` matches of `filter`, oldest occurrence first.
/// Each event commits on its own, so a long replay holds no lock for
/// long. A dry run replays them all in one transaction and rolls it back,
/// so its counts are what a real run would give (later events see the
/// earlier ones applied) and nothing changes.
pub(crate) async fn replay_bulk(
    db: &PgPool,
    roles: &RoleMap,
    rules: &EventRules,
    actor: &crate::audit::Actor,
    filter: &EventFilter,
    limit: i64,
    dry_run: bool,
) -> Result<BulkReport, AdminError> {
    if filter.is_empty() {
        return Err(AdminError::BadInput(
            "give at least one of status, eventType, userId, since, until".into(),
        ));
    }
    if !(1..=MAX_BULK_LIMIT).contains(&limit) {
        return Err(AdminError::BadInput(format!(
            "limit must be a whole number from 1 to {MAX_BULK_LIMIT}"
        )));
    }
    let (ids, matched) = matching(db, filter, limit).await?;
    let mut report = BulkReport {
        matched,
        dry_run,
        ..BulkReport::default()
    };
    if dry_run {
        let mut tx = db.begin().await?;
        for id in &ids {
            if let Some(r) = reapply(&mut tx, id, actor.name.as_str(), roles, rules).await? {
                report.count(r.outcome);
            }
        }
        tx.rollback().await?;
        return Ok(report);
    }
    for id in &ids {
        let mut tx = db.begin().await?;
        let result = reapply(&mut tx, id, actor.name.as_str(), roles, rules).await?;
        tx.commit().await?;
        if let Some(r) = result {
            report.count(r.outcome);
            count(&r);
        }
    }
    audit::record(
        &mut *db.acquire().await?,
        actor,
        "events.replay",
        None,
        &json!({"filter": filter.to_json(), "limit": limit, "report": report}),
    )
    .await?;
    Ok(report)
}
