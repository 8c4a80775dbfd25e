//! Bulk roster import (`rosterd push` and `rosterd sync`): rows from
//! a file become ordinary events applied through the one apply path.

mod report;
mod rows;
mod spool;

pub use report::{Rejected, Report};
pub use rows::{rows, Malformed, Row};
pub(crate) use spool::Spool;

use super::apply::ingest_batch;
use super::store;
use crate::event::{EventRules, EventType, ParsedBody};
use crate::roles::RoleMap;
use crate::state::Source;
use serde_json::{Map, Value};
use sqlx::PgPool;
use std::collections::HashMap;

/// Rows applied per transaction: one set of statements and one commit
/// per batch instead of per row.
const BATCH: usize = 1_000;

/// Applies `rows` as of now, a batch at a time through the batch form of
/// the apply path; with `prune`, deletes live records missing from them.
/// With `dry_run`, only counts.
pub async fn import(
    db: &PgPool,
    roles: &RoleMap,
    rules: &EventRules,
    rows: impl IntoIterator<Item = Row>,
    total: usize,
    prune: bool,
    dry_run: bool,
) -> Result<Report, sqlx::Error> {
    let now = chrono::Utc::now();
    let stamp = now.timestamp_micros();
    let mut report = Report::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let progress = Progress::new(total);
    let mut rows = rows.into_iter().peekable();
    let mut done = 0;
    while rows.peek().is_some() {
        let chunk: Vec<Row> = rows.by_ref().take(BATCH).collect();
        done += chunk.len();
        let mut parsed_rows = Vec::with_capacity(chunk.len());
        for row in chunk {
            let id = row
                .fields
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let event_id = format!("import:{stamp}:{}", id.as_deref().unwrap_or(""));
            let minted = ParsedBody::minted(&event_id, EventType::Updated, now, row.fields, rules);
            let parsed = match minted {
                Ok(parsed) => parsed,
                Err(errors) => {
                    let reason = errors
                        .iter()
                        .map(|e| format!("{} {}", e.field, e.message))
                        .collect::<Vec<_>>()
                        .join("; ");
                    report.rejected.push(Rejected {
                        line: row.line,
                        id: id.clone(),
                        reason,
                    });
                    if let Some(id) = id {
                        seen.entry(id).or_insert(row.line);
                    }
                    continue;
                }
            };
            let id = parsed.event.user_id.to_string();
            if let Some(first) = seen.get(&id) {
                report.rejected.push(Rejected {
                    line: row.line,
                    id: Some(id),
                    reason: format!("duplicate id, first on line {first}"),
                });
                continue;
            }
            seen.insert(id, row.line);
            parsed_rows.push(parsed);
        }
        let ids: Vec<String> = parsed_rows
            .iter()
            .map(|p| p.event.user_id.to_string())
            .collect();
        let current = store::read_rows(&mut *db.acquire().await?, &ids).await?;
        let mut to_apply = Vec::with_capacity(parsed_rows.len());
        for parsed in parsed_rows {
            let row = current.get(parsed.event.user_id.as_str());
            match store::compare(row, &parsed.event, roles) {
                store::Comparison::New => report.created += 1,
                store::Comparison::Same => {
                    report.unchanged += 1;
                    continue;
                }
                store::Comparison::Different => report.updated += 1,
            }
            to_apply.push(parsed);
        }
        if !dry_run {
            apply(db, &to_apply, roles).await?;
        }
        progress.report(done);
    }
    if done != total {
        // The input changed between counting and applying: pruning by a
        // shorter list would delete people who are still there.
        return Err(sqlx::Error::Protocol(format!(
            "the input changed while it was read ({done} rows, not {total}); nothing was pruned"
        )));
    }
    if prune {
        let live = store::live_ids(&mut *db.acquire().await?).await?;
        let mut deletes = Vec::new();
        for id in live.into_iter().filter(|id| !seen.contains_key(id)) {
            report.deleted += 1;
            let event_id = format!("import:{stamp}:{id}:deleted");
            let user = Map::from_iter([("id".to_owned(), Value::String(id.clone()))]);
            let minted = ParsedBody::minted(&event_id, EventType::Deleted, now, user, rules);
            deletes.push(minted.map_err(|_| {
                sqlx::Error::Decode(format!("stored record id {id} is not a valid id").into())
            })?);
        }
        if !dry_run {
            for chunk in deletes.chunks(BATCH) {
                apply(db, chunk, roles).await?;
            }
        }
    }
    Ok(report)
}

/// One batch through the apply path; a row the database refused is stored
/// as a failed event and stops the import.
async fn apply(db: &PgPool, bodies: &[ParsedBody], roles: &RoleMap) -> Result<(), sqlx::Error> {
    if bodies.is_empty() {
        return Ok(());
    }
    let outcomes = ingest_batch(db, bodies, Source::Import, roles)
        .await
        .map_err(|e| match e {
            super::ApplyError::Db(e) => e,
            // Import event ids carry a fresh timestamp: never reused.
            super::ApplyError::Conflict => sqlx::Error::Protocol("import event id reused".into()),
        })?;
    for (body, outcome) in bodies.iter().zip(outcomes) {
        if outcome == super::Outcome::Failed {
            return Err(sqlx::Error::Protocol(format!(
                "the database refused record {}; event {} is stored as failed, replay it once the cause is fixed",
                body.event.user_id, body.event.key.event_id
            )));
        }
    }
    Ok(())
}

/// Files longer than this report their progress on stderr.
const PROGRESS_ABOVE: usize = 10_000;

/// Rows per second and the time left, on stderr, for long imports.
struct Progress {
    total: usize,
    started: std::time::Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            started: std::time::Instant::now(),
        }
    }

    fn report(&self, done: usize) {
        let done = done.min(self.total);
        if self.total <= PROGRESS_ABOVE || (!done.is_multiple_of(10 * BATCH) && done != self.total)
        {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let left = (self.total - done) as f64 / rate.max(1.0);
        eprintln!(
            "  {done}/{} rows, {rate:.0} rows/s, about {left:.0} s left",
            self.total
        );
    }
}
