//! `/scim/v2/Users`: every write is one event on the apply path (source
//! `scim`, an id rosterd mints), decided and applied in one transaction
//! that holds the record's lock, so concurrent writes to one user queue
//! up and none is lost.

use super::error::ScimError;
use super::patch::{self, Schema};
use super::user::{self, parse_input, UserInput, USER_SCHEMA};
use super::{list_response, ListParams, Out, Projection, Scim, ScimJson, ScimQuery};
use crate::event::{Details, Email, EventType, ParsedBody, RecordId};
use crate::roster::store::{self, PersonView};
use crate::roster::{apply, merge::Registers};
use crate::state::{RowStatus, Source};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::http::AppState;

pub(crate) const USER_ATTRS: Schema = Schema {
    attrs: &[
        ("userName", &[], false),
        ("name", &user::NAME_PARTS, false),
        ("displayName", &[], false),
        ("emails", &user::EMAIL_PARTS, true),
        ("active", &[], false),
        ("externalId", &[], false),
    ],
    read_only: &user::READ_ONLY,
};

pub(crate) async fn create(
    scim: Scim,
    State(state): State<AppState>,
    body: ScimJson,
) -> Result<Out, ScimError> {
    let body = body.0;
    user::check_schemas(&body, USER_SCHEMA)?;
    let input = parse_input(&body)?;
    let email = parse_email(&input)?;
    let mut tx = state.db.begin().await?;
    claim(&mut tx, &input, &email, None).await?;
    let id = Uuid::new_v4().to_string();
    let record = RecordId::parse(&id).expect("a UUID is a record id");
    write(
        &mut tx,
        &state,
        &scim,
        &record,
        Some(NewProfile::of_input(&input, &email, &[])),
        None,
    )
    .await?;
    let res = read_back(&mut tx, &id, &scim.base).await?;
    tx.commit().await?;
    state.wakeup.poke();
    Ok(Out(StatusCode::CREATED, res))
}

pub(crate) async fn get_one(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ScimQuery(p): ScimQuery<Projection>,
) -> Result<Out, ScimError> {
    let mut conn = state.db.acquire().await?;
    let res = read_back(&mut conn, &id, &scim.base).await?;
    p.apply(res, USER_SCHEMA)
}

pub(crate) async fn list(
    scim: Scim,
    State(state): State<AppState>,
    ScimQuery(p): ScimQuery<ListParams>,
) -> Result<Out, ScimError> {
    let (filter, offset, limit) = p.parse()?;
    let mut conn = state.db.acquire().await?;
    let (total, people) = store::people(&mut conn, filter.as_ref(), offset, limit)
        .await?
        .map_err(|e| ScimError::invalid_filter(e.0))?;
    // The page's SCIM groups in one query, not one per user.
    let mut names: Vec<String> = people.iter().flat_map(|p| p.groups.clone()).collect();
    names.sort_unstable();
    names.dedup();
    let known = store::groups_named(&mut conn, &names).await?;
    let resources = people
        .iter()
        .map(|p| {
            let groups: Vec<(Uuid, String)> = known
                .iter()
                .filter(|(_, name)| p.groups.contains(name))
                .cloned()
                .collect();
            user::resource(p, &groups, &scim.base)
        })
        .collect();
    list_response(total, offset, resources, &p.projection(), USER_SCHEMA)
}

pub(crate) async fn replace(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: ScimJson,
) -> Result<Out, ScimError> {
    let body = body.0;
    user::check_schemas(&body, USER_SCHEMA)?;
    let input = parse_input(&body)?;
    update(&state, &scim, &id, |_| Ok(input))
        .await
        .map(Out::from)
}

pub(crate) async fn patch(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: ScimJson,
) -> Result<Out, ScimError> {
    let ops = patch::operations(&body.0)?;
    update(&state, &scim, &id, |current| {
        let mut res = user::writable(current);
        patch::apply(&USER_ATTRS, &mut res, &ops)?;
        parse_input(&res)
    })
    .await
    .map(Out::from)
}

pub(crate) async fn delete(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ScimError> {
    let record = RecordId::parse(&id).map_err(|_| ScimError::not_found("user"))?;
    let mut tx = state.db.begin().await?;
    let Some((row, _)) = lock_live(&mut tx, &record).await? else {
        return Err(ScimError::not_found("user"));
    };
    write(&mut tx, &state, &scim, &record, None, Some(&row)).await?;
    tx.commit().await?;
    state.wakeup.poke();
    Ok(StatusCode::NO_CONTENT)
}

/// PUT and PATCH: lock the record, work out the new input from the current
/// one, and write it if anything changed.
async fn update(
    state: &AppState,
    scim: &Scim,
    id: &str,
    decide: impl FnOnce(&PersonView) -> Result<UserInput, ScimError>,
) -> Result<Value, ScimError> {
    let record = RecordId::parse(id).map_err(|_| ScimError::not_found("user"))?;
    let mut tx = state.db.begin().await?;
    let Some((row, current)) = lock_live(&mut tx, &record).await? else {
        return Err(ScimError::not_found("user"));
    };
    let input = decide(&current)?;
    let email = parse_email(&input)?;
    claim(&mut tx, &input, &email, Some(id)).await?;
    let unchanged = input.details == current.details
        && email.as_str() == current.email
        && input.active == (current.status == RowStatus::Active)
        && input.roster_name() == current.name;
    if !unchanged {
        let groups = current.groups.clone();
        let profile = NewProfile::of_input(&input, &email, &groups);
        write(&mut tx, state, scim, &record, Some(profile), Some(&row)).await?;
    }
    let res = read_back(&mut tx, id, &scim.base).await?;
    tx.commit().await?;
    state.wakeup.poke();
    Ok(res)
}

/// The person's email: `userName` when it is an address (Okta and Entra ID
/// send the sign-in address there), else the primary of `emails`, else
/// the first.
fn parse_email(input: &UserInput) -> Result<Email, ScimError> {
    if let Ok(e) = Email::parse(&input.user_name) {
        return Ok(e);
    }
    let emails = &input.details.emails;
    let pick = emails
        .iter()
        .find(|e| e.primary == Some(true))
        .or_else(|| emails.first());
    match pick {
        Some(e) => {
            Email::parse(&e.value).map_err(|why| ScimError::invalid_value(format!("emails: {why}")))
        }
        None => Err(ScimError::invalid_value(
            "userName must be an email address, or emails must hold one",
        )),
    }
}

/// Takes the claims on the input's `userName` and email (until the
/// transaction ends) and checks no other live record holds either.
async fn claim(
    conn: &mut PgConnection,
    input: &UserInput,
    email: &Email,
    except: Option<&str>,
) -> Result<(), ScimError> {
    store::lock_claims(conn, &input.user_name, email).await?;
    if store::user_name_taken(conn, &input.user_name, except).await? {
        return Err(ScimError::uniqueness(
            "a user with this userName already exists",
        ));
    }
    if store::held_elsewhere(conn, email, except).await? {
        return Err(ScimError::uniqueness(
            "a user with this email address already exists",
        ));
    }
    Ok(())
}

/// The record's registers (locked until the transaction ends) and its SCIM
/// view, when it is live.
pub(super) async fn lock_live(
    conn: &mut PgConnection,
    record: &RecordId,
) -> Result<Option<(Registers, PersonView)>, ScimError> {
    let Some(row) = store::lock_row(conn, record).await? else {
        return Ok(None);
    };
    if row.status() == RowStatus::Deleted {
        return Ok(None);
    }
    Ok(store::person(conn, record.as_str())
        .await?
        .map(|p| (row, p)))
}

/// When a SCIM write happens: now, but never at or before the newest
/// order key the record has seen, so a SCIM write is never stale.
fn occurred_at(row: Option<&Registers>) -> DateTime<Utc> {
    let now =
        DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now is in range");
    match row {
        Some(r) if r.newest().at >= now => r.newest().at + TimeDelta::microseconds(1),
        _ => now,
    }
}

/// What a write says the record looks like (`None` for a deletion).
pub(super) struct NewProfile<'a> {
    pub(super) email: &'a Email,
    pub(super) name: Option<String>,
    pub(super) active: bool,
    pub(super) groups: &'a [String],
    pub(super) details: &'a Details,
}

impl<'a> NewProfile<'a> {
    fn of_input(input: &'a UserInput, email: &'a Email, groups: &'a [String]) -> Self {
        Self {
            email,
            name: input.roster_name(),
            active: input.active,
            groups,
            details: &input.details,
        }
    }
}

/// Mints the event for a write, applies it and records it in the audit
/// log. `row` is the record's current registers (locked by the caller).
pub(super) async fn write(
    conn: &mut PgConnection,
    state: &AppState,
    scim: &Scim,
    record: &RecordId,
    profile: Option<NewProfile<'_>>,
    row: Option<&Registers>,
) -> Result<(), ScimError> {
    let event_type = match (&profile, row) {
        (None, _) => EventType::Deleted,
        (Some(_), None) => EventType::Created,
        (Some(_), Some(_)) => EventType::Updated,
    };
    let mut user = Map::new();
    user.insert("id".into(), record.as_str().into());
    if let Some(p) = profile {
        user.insert("email".into(), p.email.as_str().into());
        if let Some(n) = p.name {
            user.insert("name".into(), n.into());
        }
        let status = if p.active { "active" } else { "disabled" };
        user.insert("status".into(), status.into());
        user.insert("groups".into(), json!(p.groups));
        user.insert(
            "details".into(),
            serde_json::to_value(p.details).expect("details serialize"),
        );
    }
    let event_id = format!("scim:{}", Uuid::new_v4());
    let body = ParsedBody::minted(
        &event_id,
        event_type,
        occurred_at(row),
        user,
        &state.config.events,
    )
    .map_err(|errors| {
        let why: Vec<String> = errors
            .iter()
            .map(|f| format!("{}: {}", f.field.trim_start_matches("user."), f.message))
            .collect();
        ScimError::invalid_value(why.join("; "))
    })?;
    apply::apply_minted(conn, &body, Source::Scim, &state.config.roles).await?;
    crate::audit::record(
        conn,
        &crate::audit::Actor::named(scim.client.clone()),
        match event_type {
            EventType::Created => "scim.user.create",
            EventType::Updated => "scim.user.update",
            EventType::Deleted => "scim.user.delete",
        },
        Some(record.as_str()),
        &json!({ "eventId": event_id }),
    )
    .await?;
    Ok(())
}

/// The user as it stands now (404 when it is not live).
async fn read_back(conn: &mut PgConnection, id: &str, base: &str) -> Result<Value, ScimError> {
    let p = store::person(conn, id)
        .await?
        .ok_or_else(|| ScimError::not_found("user"))?;
    let groups = store::groups_named(conn, &p.groups).await?;
    Ok(user::resource(&p, &groups, base))
}
