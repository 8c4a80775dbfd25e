//! A record's row: its two registers read, locked, inserted and updated,
//! one at a time or as a batch.

use super::decode;
use crate::event::{Change, Email, EventId, OrderKey, Profile, ProfileStatus, RecordId, UserEvent};
use crate::roles::RoleMap;
use crate::roster::merge::{ProfileRegister, Registers};
use crate::state::RowStatus;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};

/// A roster row's columns as read; [`RowRecord::split`] parses them once.
struct RowRecord {
    id: String,
    email: Option<String>,
    name: Option<String>,
    profile_status: Option<String>,
    groups: Vec<String>,
    roles: Vec<String>,
    profile_at: Option<DateTime<Utc>>,
    profile_event_id: Option<String>,
    deleted_at: Option<DateTime<Utc>>,
    deleted_event_id: Option<String>,
    details: Option<Value>,
}

impl RowRecord {
    fn split(self) -> Result<(String, Registers), sqlx::Error> {
        let profile = match (self.profile_at, self.profile_event_id, self.email) {
            (Some(at), Some(id), Some(email)) => Some(ProfileRegister {
                profile: Profile {
                    email: Email::from_trusted(email),
                    name: self.name,
                    status: decode(ProfileStatus::parse(
                        self.profile_status.as_deref().unwrap_or_default(),
                    ))?,
                    groups: self.groups,
                    details: self
                        .details
                        .map(serde_json::from_value)
                        .transpose()
                        .map_err(|e| sqlx::Error::Decode(format!("roster.details: {e}").into()))?
                        .map(Box::new),
                },
                roles: self.roles,
                key: OrderKey {
                    at,
                    event_id: decode(EventId::parse(&id))?,
                },
            }),
            _ => None,
        };
        let deletion = match (self.deleted_at, self.deleted_event_id) {
            (Some(at), Some(id)) => Some(OrderKey {
                at,
                event_id: decode(EventId::parse(&id))?,
            }),
            _ => None,
        };
        Ok((self.id, Registers { profile, deletion }))
    }

    fn into_registers(self) -> Result<Registers, sqlx::Error> {
        self.split().map(|(_, row)| row)
    }
}

/// Reads a row and holds its lock until the transaction ends.
pub async fn lock_row(
    conn: &mut PgConnection,
    id: &RecordId,
) -> Result<Option<Registers>, sqlx::Error> {
    sqlx::query_as!(
        RowRecord,
        r#"select id, email, name, profile_status, groups, roles,
                  profile_at, profile_event_id, deleted_at, deleted_event_id, details
           from roster where id = $1 for update"#,
        id.as_str()
    )
    .fetch_optional(conn)
    .await?
    .map(RowRecord::into_registers)
    .transpose()
}

/// Reads the rows of `ids` (sorted, so concurrent batches lock in one
/// order) and holds their locks until the transaction ends.
pub async fn lock_rows(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<HashMap<String, Registers>, sqlx::Error> {
    sqlx::query_as!(
        RowRecord,
        r#"select id, email, name, profile_status, groups, roles,
                  profile_at, profile_event_id, deleted_at, deleted_event_id, details
           from roster where id = any($1) order by id for update"#,
        ids
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(RowRecord::split)
    .collect()
}

/// Reads the rows of `ids` without locking them (imports compare first).
pub async fn read_rows(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<HashMap<String, Registers>, sqlx::Error> {
    sqlx::query_as!(
        RowRecord,
        r#"select id, email, name, profile_status, groups, roles,
                  profile_at, profile_event_id, deleted_at, deleted_event_id, details
           from roster where id = any($1)"#,
        ids
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(RowRecord::split)
    .collect()
}

/// Rows as one JSON array of objects named like the table's columns: a
/// batch travels as one parameter, expanded by `jsonb_populate_recordset`.
fn rows_json(rows: &[(&RecordId, &Registers)]) -> Value {
    Value::Array(
        rows.iter()
            .map(|(id, row)| {
                let c = columns(row);
                json!({
                    "id": id.as_str(), "email": c.email, "name": c.name,
                    "profile_status": c.status, "groups": c.groups, "roles": c.roles,
                    "profile_at": c.profile_at, "profile_event_id": c.profile_event_id,
                    "deleted_at": c.deleted_at, "deleted_event_id": c.deleted_event_id,
                    "last_at": c.last_at, "last_event_id": c.last_event_id, "details": c.details,
                })
            })
            .collect(),
    )
}

/// The batch form of [`insert_row`]: the ids actually inserted (the rest
/// were created by another transaction first).
pub async fn insert_rows(
    conn: &mut PgConnection,
    rows: &[(&RecordId, &Registers)],
) -> Result<HashSet<String>, sqlx::Error> {
    let inserted = sqlx::query_scalar!(
        r#"insert into roster (id, email, name, profile_status, groups, roles,
                               profile_at, profile_event_id, deleted_at, deleted_event_id,
                               last_at, last_event_id, details)
           select id, email, name, profile_status, groups, roles,
                  profile_at, profile_event_id, deleted_at, deleted_event_id, last_at, last_event_id,
                  details
           from jsonb_populate_recordset(null::roster, $1)
           on conflict (id) do nothing
           returning id"#,
        rows_json(rows)
    )
    .fetch_all(conn)
    .await?;
    Ok(inserted.into_iter().collect())
}

/// The batch form of [`update_row`].
pub async fn update_rows(
    conn: &mut PgConnection,
    rows: &[(&RecordId, &Registers)],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"update roster r set email = v.email, name = v.name, profile_status = v.profile_status,
                  groups = v.groups, roles = v.roles, profile_at = v.profile_at,
                  profile_event_id = v.profile_event_id, deleted_at = v.deleted_at,
                  deleted_event_id = v.deleted_event_id, last_at = v.last_at,
                  last_event_id = v.last_event_id, details = v.details, updated_at = now()
           from jsonb_populate_recordset(null::roster, $1) v
           where r.id = v.id"#,
        rows_json(rows)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// How an incoming profile relates to what the roster holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// No live record: applying it creates (or brings back) the person.
    New,
    Same,
    Different,
}

pub fn compare(current: Option<&Registers>, event: &UserEvent, roles: &RoleMap) -> Comparison {
    let Change::Upsert(incoming) = &event.change else {
        return Comparison::Different;
    };
    match current {
        Some(row) if row.status() != RowStatus::Deleted => {
            let p = row.profile.as_ref().expect("a live row has a profile");
            if &p.profile == incoming && p.roles == roles.roles_for(&incoming.groups) {
                Comparison::Same
            } else {
                Comparison::Different
            }
        }
        _ => Comparison::New,
    }
}

/// Ids of every record that is not deleted.
pub async fn live_ids(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select id from roster where status <> $1 order by id",
        RowStatus::Deleted.as_str()
    )
    .fetch_all(conn)
    .await
}

/// The columns of a row's registers, as bound parameters.
struct Columns<'a> {
    email: Option<&'a str>,
    name: Option<&'a str>,
    status: Option<&'a str>,
    groups: &'a [String],
    roles: &'a [String],
    profile_at: Option<DateTime<Utc>>,
    profile_event_id: Option<&'a str>,
    deleted_at: Option<DateTime<Utc>>,
    deleted_event_id: Option<&'a str>,
    last_at: DateTime<Utc>,
    last_event_id: &'a str,
    details: Option<Value>,
}

fn columns(row: &Registers) -> Columns<'_> {
    let p = row.profile.as_ref();
    let newest = row.newest();
    Columns {
        email: p.map(|p| p.profile.email.as_str()),
        name: p.and_then(|p| p.profile.name.as_deref()),
        status: p.map(|p| p.profile.status.as_str()),
        groups: p.map_or(&[], |p| &p.profile.groups),
        roles: p.map_or(&[], |p| &p.roles),
        profile_at: p.map(|p| p.key.at),
        profile_event_id: p.map(|p| p.key.event_id.as_str()),
        deleted_at: row.deletion.as_ref().map(|d| d.at),
        deleted_event_id: row.deletion.as_ref().map(|d| d.event_id.as_str()),
        last_at: newest.at,
        last_event_id: newest.event_id.as_str(),
        details: p
            .and_then(|p| p.profile.details.as_ref())
            .map(|d| serde_json::to_value(d).expect("details serialize")),
    }
}

/// Inserts a new row; `false` when another transaction created it first.
pub async fn insert_row(
    conn: &mut PgConnection,
    id: &RecordId,
    row: &Registers,
) -> Result<bool, sqlx::Error> {
    let c = columns(row);
    let inserted = sqlx::query_scalar!(
        r#"insert into roster (id, email, name, profile_status, groups, roles,
                               profile_at, profile_event_id, deleted_at, deleted_event_id,
                               last_at, last_event_id, details)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           on conflict (id) do nothing
           returning true as "inserted!""#,
        id.as_str(),
        c.email,
        c.name,
        c.status,
        c.groups,
        c.roles,
        c.profile_at,
        c.profile_event_id,
        c.deleted_at,
        c.deleted_event_id,
        c.last_at,
        c.last_event_id,
        c.details,
    )
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

pub async fn update_row(
    conn: &mut PgConnection,
    id: &RecordId,
    row: &Registers,
) -> Result<(), sqlx::Error> {
    let c = columns(row);
    sqlx::query!(
        r#"update roster set email = $2, name = $3, profile_status = $4, groups = $5, roles = $6,
                  profile_at = $7, profile_event_id = $8, deleted_at = $9, deleted_event_id = $10,
                  last_at = $11, last_event_id = $12, details = $13, updated_at = now()
           where id = $1"#,
        id.as_str(),
        c.email,
        c.name,
        c.status,
        c.groups,
        c.roles,
        c.profile_at,
        c.profile_event_id,
        c.deleted_at,
        c.deleted_event_id,
        c.last_at,
        c.last_event_id,
        c.details,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The email a record's profile carries now, if any.
pub async fn email_of(
    conn: &mut PgConnection,
    id: &RecordId,
) -> Result<Option<String>, sqlx::Error> {
    Ok(
        sqlx::query_scalar!("select email from roster where id = $1", id.as_str())
            .fetch_optional(conn)
            .await?
            .flatten(),
    )
}
