//! Bulk roster import (`rosterd push` and `rosterd sync`): rows from
//! a file become ordinary events applied through the one apply path.

use super::apply::{ingest, Source};
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
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
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
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| Malformed(format!("not valid CSV: {e}")))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let mut fields = Map::new();
        for (h, v) in headers.iter().zip(record.iter()) {
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
        rows.push(Row { line, fields });
    }
    Ok(rows)
}

/// Applies `rows` as of now; with `prune`, deletes live records missing
/// from them. With `dry_run`, only counts.
pub async fn import(
    db: &PgPool,
    roles: &RoleMap,
    rules: &EventRules,
    rows: &[Row],
    prune: bool,
    dry_run: bool,
) -> Result<Report, sqlx::Error> {
    let now = chrono::Utc::now();
    let stamp = now.timestamp_micros();
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut report = Report::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut to_apply = Vec::new();
    for row in rows {
        let id = row
            .fields
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let user = Value::Object(row.fields.clone());
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
        seen.insert(id.clone(), row.line);
        let mut conn = db.acquire().await?;
        let current = store::read_row(&mut conn, &parsed.event.user_id).await?;
        match store::compare(current.as_ref(), &parsed.event, roles) {
            store::Comparison::New => report.created += 1,
            store::Comparison::Same => {
                report.unchanged += 1;
                continue;
            }
            store::Comparison::Different => report.updated += 1,
        }
        to_apply.push(parsed);
    }
    if prune {
        let mut conn = db.acquire().await?;
        for id in store::live_ids(&mut conn).await? {
            if seen.contains_key(&id) {
                continue;
            }
            report.deleted += 1;
            let event = json!({
                "eventId": format!("import:{stamp}:{id}:deleted"),
                "eventType": "user.deleted",
                "occurredAt": at,
                "user": {"id": id},
            });
            to_apply.push(ParsedBody::parse(event, rules).map_err(|_| {
                sqlx::Error::Decode(format!("stored record id {id} is not a valid id").into())
            })?);
        }
    }
    if !dry_run {
        for body in &to_apply {
            let outcome = ingest(db, body, Source::Import, roles)
                .await
                .map_err(|e| match e {
                    super::ApplyError::Db(e) => e,
                    // Import event ids carry a fresh timestamp: never reused.
                    super::ApplyError::Conflict => {
                        sqlx::Error::Protocol("import event id reused".into())
                    }
                })?;
            if outcome == super::Outcome::Failed {
                return Err(sqlx::Error::Protocol(format!(
                    "the database refused record {}; event {} is stored as failed, replay it once the cause is fixed",
                    body.event.user_id, body.event.key.event_id
                )));
            }
        }
    }
    Ok(report)
}
