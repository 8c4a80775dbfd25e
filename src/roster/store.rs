//! The roster's SQL: small functions named by verb, each taking a
//! connection so one transaction can span several.

use super::merge::{ProfileRegister, Registers};
use crate::event::{Change, Email, EventId, OrderKey, Profile, ProfileStatus, RecordId, UserEvent};
use crate::roles::RoleMap;
use crate::state::{EventOutcome, RowStatus, Source};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};

fn decode<T>(r: Result<T, String>) -> Result<T, sqlx::Error> {
    r.map_err(|e| sqlx::Error::Decode(e.into()))
}

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
                  profile_at, profile_event_id, deleted_at, deleted_event_id
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
                  profile_at, profile_event_id, deleted_at, deleted_event_id
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
                  profile_at, profile_event_id, deleted_at, deleted_event_id
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
                    "last_at": c.last_at, "last_event_id": c.last_event_id,
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
                               last_at, last_event_id)
           select id, email, name, profile_status, groups, roles,
                  profile_at, profile_event_id, deleted_at, deleted_event_id, last_at, last_event_id
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
                  last_event_id = v.last_event_id, updated_at = now()
           from jsonb_populate_recordset(null::roster, $1) v
           where r.id = v.id"#,
        rows_json(rows)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The batch form of [`insert_event`], each with its outcome.
pub async fn insert_events(
    conn: &mut PgConnection,
    events: &[(&crate::event::ParsedBody, EventOutcome)],
    source: Source,
) -> Result<(), sqlx::Error> {
    let rows: Vec<Value> = events
        .iter()
        .map(|(b, outcome)| {
            json!({
                "event_id": b.event.key.event_id.as_str(),
                "event_type": b.event.event_type.as_str(),
                "occurred_at": b.event.key.at,
                "user_id": b.event.user_id.as_str(),
                "payload": b.payload,
                "payload_hash": format!("\\x{}", hex::encode(b.payload_hash)),
                "source": source,
                "outcome": outcome,
            })
        })
        .collect();
    sqlx::query!(
        r#"insert into inbound_events (event_id, event_type, occurred_at, user_id, payload,
                                       payload_hash, source, outcome, processed_at)
           select event_id, event_type, occurred_at, user_id, payload, payload_hash, source,
                  outcome, now()
           from jsonb_populate_recordset(null::inbound_events, $1)
           on conflict (event_id) do nothing"#,
        Value::Array(rows)
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
                               last_at, last_event_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
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
                  last_at = $11, last_event_id = $12, updated_at = now()
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
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an event; `false` when its id is already stored (the caller
/// then compares hashes). Blocks behind a concurrent insert of the same id
/// until that transaction ends, which is what makes 20 simultaneous
/// deliveries apply once. With `failure`, the event is stored as `failed`
/// with that error (the database refused to apply it).
pub async fn insert_event(
    conn: &mut PgConnection,
    event: &UserEvent,
    payload: &serde_json::Value,
    payload_hash: &[u8],
    source: Source,
    failure: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let outcome = match failure {
        None => EventOutcome::Applied,
        Some(_) => EventOutcome::Failed,
    };
    let inserted = sqlx::query_scalar!(
        r#"insert into inbound_events (event_id, event_type, occurred_at, user_id, payload,
                                       payload_hash, source, outcome, error, processed_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
           on conflict (event_id) do nothing
           returning true as "inserted!""#,
        event.key.event_id.as_str(),
        event.event_type.as_str(),
        event.key.at,
        event.user_id.as_str(),
        payload,
        payload_hash,
        source.as_str(),
        outcome.as_str(),
        failure,
    )
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

/// What dedup needs to know about an event already stored.
pub struct StoredEvent {
    pub payload_hash: Vec<u8>,
    pub outcome: EventOutcome,
}

pub async fn stored_event(
    conn: &mut PgConnection,
    event_id: &EventId,
) -> Result<Option<StoredEvent>, sqlx::Error> {
    sqlx::query_as!(
        StoredEvent,
        r#"select payload_hash, outcome as "outcome: EventOutcome"
           from inbound_events where event_id = $1"#,
        event_id.as_str()
    )
    .fetch_optional(conn)
    .await
}

/// A stored event, locked so two replays of it run one after the other.
pub struct LockedEvent {
    pub event_type: String,
    pub user_id: String,
    pub payload: serde_json::Value,
}

pub async fn lock_event(
    conn: &mut PgConnection,
    event_id: &EventId,
) -> Result<Option<LockedEvent>, sqlx::Error> {
    sqlx::query_as!(
        LockedEvent,
        "select event_type, user_id, payload from inbound_events
         where event_id = $1 and pruned_at is null for update",
        event_id.as_str()
    )
    .fetch_optional(conn)
    .await
}

/// Whether a stored event's payload was dropped by `rosterd prune`.
pub async fn is_pruned(conn: &mut PgConnection, event_id: &EventId) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar!(
        r#"select pruned_at is not null as "pruned!" from inbound_events where event_id = $1"#,
        event_id.as_str()
    )
    .fetch_optional(conn)
    .await?
    .unwrap_or(false))
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

/// Writes a re-application's result onto the event and into its history.
pub async fn record_reapply(
    conn: &mut PgConnection,
    event_id: &EventId,
    outcome: EventOutcome,
    error: Option<&str>,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"with e as (
               update inbound_events
               set outcome = $2, error = $3, attempts = attempts + 1, processed_at = now()
               where event_id = $1
               returning event_id)
           insert into event_replays (event_id, actor, outcome, error)
           select event_id, $4, $2, $3 from e"#,
        event_id.as_str(),
        outcome.as_str(),
        error,
        actor
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_event_outcome(
    conn: &mut PgConnection,
    event_id: &EventId,
    outcome: EventOutcome,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update inbound_events set outcome = $2 where event_id = $1",
        event_id.as_str(),
        outcome.as_str()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Emails carried by more than one live row: the holder still answers,
/// operators are told (docs/contract.md §4).
pub async fn email_conflicts(conn: &mut PgConnection) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select email as "email!", count(*) as "rows!"
           from roster where status <> $1 and email is not null
           group by email having count(*) > 1 order by email"#,
        RowStatus::Deleted.as_str()
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.email, r.rows)).collect())
}

/// The person's holder: the newest live row carrying the email.
pub async fn holder_of(
    conn: &mut PgConnection,
    email: &Email,
) -> Result<Option<RecordId>, sqlx::Error> {
    let id = sqlx::query_scalar!(
        r#"select id from roster
           where email = $1 and status <> $2
           order by profile_at desc, profile_event_id desc limit 1"#,
        email.as_str(),
        RowStatus::Deleted.as_str()
    )
    .fetch_optional(conn)
    .await?;
    id.map(|id| decode(RecordId::parse(&id))).transpose()
}

/// What the login lookup needs about a record, in one indexed query.
#[derive(Debug, Clone)]
pub struct LoginRow {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub status: RowStatus,
    pub roles: Vec<String>,
    pub auth_user_id: Option<uuid::Uuid>,
    /// A provisioning job is queued or running for this person.
    pub pending: bool,
}

/// The holder of `email` (or, when no live row carries it, the newest
/// deleted one, so the answer can say "deleted").
pub async fn login_row_by_email(
    conn: &mut PgConnection,
    email: &Email,
) -> Result<Option<LoginRow>, sqlx::Error> {
    sqlx::query_as!(
        LoginRow,
        r#"select r.id, r.email, r.name, r.status as "status!: RowStatus", r.roles, r.auth_user_id,
                  exists(select 1 from provisioning_jobs j
                         where j.email = r.email and j.state in ('pending', 'running')) as "pending!"
           from roster r where r.email = $1
           order by (r.status <> $2) desc, r.profile_at desc, r.profile_event_id desc
           limit 1"#,
        email.as_str(),
        RowStatus::Deleted.as_str()
    )
    .fetch_optional(conn)
    .await
}

pub async fn login_row_by_id(
    conn: &mut PgConnection,
    id: &RecordId,
) -> Result<Option<LoginRow>, sqlx::Error> {
    sqlx::query_as!(
        LoginRow,
        r#"select r.id, r.email, r.name, r.status as "status!: RowStatus", r.roles, r.auth_user_id,
                  exists(select 1 from provisioning_jobs j
                         where j.email = r.email and j.state in ('pending', 'running')) as "pending!"
           from roster r where r.id = $1"#,
        id.as_str()
    )
    .fetch_optional(conn)
    .await
}
