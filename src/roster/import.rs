//! Bulk roster import (`rosterd push` and `rosterd sync`): rows from
//! a file become ordinary events applied through the one apply path.

use super::apply::{ingest_batch, Source};
use super::store;
use crate::event::{BodyError, EventRules, ParsedBody};
use crate::provision::roles::RoleMap;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use std::collections::HashMap;

/// One row of a roster file, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: usize,
    pub fields: Map<String, Value>,
}

/// The file could not be read as a roster at all: nothing is applied.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub line: usize,
    pub id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub rejected: Vec<Rejected>,
}

impl Report {
    /// The counters under `title` (e.g. "Pushing roster from roster.yaml").
    pub fn render(&self, title: &str, dry_run: bool) -> String {
        let mut out = format!(
            "  {title}\n\n  created: {}\n  updated: {}\n  deleted: {}\n  unchanged: {}\n  rejected: {}\n",
            self.created,
            self.updated,
            self.deleted,
            self.unchanged,
            self.rejected.len()
        );
        for r in &self.rejected {
            let id =
                r.id.as_deref()
                    .map(|i| format!(" ({i})"))
                    .unwrap_or_default();
            out.push_str(&format!("    line {}{id}: {}\n", r.line, r.reason));
        }
        out.push_str(if dry_run {
            "\n  Dry run: nothing was changed\n"
        } else {
            "\n  Complete\n"
        });
        out
    }
}

/// Parses a roster file by its extension: `.yaml`/`.yml` (a list of
/// mappings) or `.csv` (a header row; groups separated by `;` or `|`).
pub fn parse_file(name: &str, text: &str) -> Result<Vec<Row>, Malformed> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        parse_csv(text)
    } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        parse_yaml(text)
    } else {
        Err(Malformed(format!(
            "{name}: expected a .yaml, .yml or .csv file"
        )))
    }
}

fn parse_yaml(text: &str) -> Result<Vec<Row>, Malformed> {
    let value: Value =
        serde_norway::from_str(text).map_err(|e| Malformed(format!("not valid YAML: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        _ => return Err(Malformed("the YAML must be a list of people".into())),
    };
    // serde gives no positions for list items; block lists start each item
    // with `- ` in column 0, which is where operators look.
    let mut starts = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("- ") || *l == "-")
        .map(|(i, _)| i + 1);
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let line = starts.next().unwrap_or(i + 1);
            match item {
                Value::Object(fields) => Ok(Row { line, fields }),
                _ => Err(Malformed(format!(
                    "line {line}: each person must be a mapping"
                ))),
            }
        })
        .collect()
}

fn parse_csv(text: &str) -> Result<Vec<Row>, Malformed> {
    CsvRows::new(text.as_bytes())?.collect()
}

/// A CSV roster read row by row, so a file of any length takes the memory
/// of one batch. Its header is checked when it is opened.
pub struct CsvRows<R: std::io::Read> {
    records: csv::StringRecordsIntoIter<R>,
    headers: Vec<String>,
}

impl<R: std::io::Read> CsvRows<R> {
    pub fn new(input: R) -> Result<Self, Malformed> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(input);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| Malformed(format!("not valid CSV: {e}")))?
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        for required in ["id", "email"] {
            if !headers.iter().any(|h| h == required) {
                return Err(Malformed(format!(
                    "the CSV header has no `{required}` column"
                )));
            }
        }
        Ok(Self {
            records: reader.into_records(),
            headers,
        })
    }
}

impl<R: std::io::Read> Iterator for CsvRows<R> {
    type Item = Result<Row, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = match self.records.next()? {
            Ok(r) => r,
            Err(e) => return Some(Err(Malformed(format!("not valid CSV: {e}")))),
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let mut fields = Map::new();
        for (h, v) in self.headers.iter().zip(record.iter()) {
            if v.is_empty() {
                continue;
            }
            let value = if h == "groups" {
                Value::Array(
                    v.split([';', '|'])
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(|g| Value::String(g.to_owned()))
                        .collect(),
                )
            } else {
                Value::String(v.to_owned())
            };
            fields.insert(h.clone(), value);
        }
        Some(Ok(Row { line, fields }))
    }
}

/// Rows applied per transaction: one set of statements and one commit
/// per batch instead of per row.
const BATCH: usize = 1_000;

/// Files longer than this report their progress on stderr.
const PROGRESS_ABOVE: usize = 10_000;

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
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
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
            let user = Value::Object(row.fields);
            let event = json!({
                "eventId": format!("import:{stamp}:{}", id.as_deref().unwrap_or("")),
                "eventType": "user.updated",
                "occurredAt": at,
                "user": user,
            });
            let parsed = match ParsedBody::parse(event, rules) {
                Ok(parsed) => parsed,
                Err(BodyError::Malformed(_)) => unreachable!("a Value is JSON"),
                Err(BodyError::Invalid(errors)) => {
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
    if prune {
        let live = store::live_ids(&mut *db.acquire().await?).await?;
        let mut deletes = Vec::new();
        for id in live.into_iter().filter(|id| !seen.contains_key(id)) {
            report.deleted += 1;
            let event = json!({
                "eventId": format!("import:{stamp}:{id}:deleted"),
                "eventType": "user.deleted",
                "occurredAt": at,
                "user": {"id": id},
            });
            deletes.push(ParsedBody::parse(event, rules).map_err(|_| {
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
