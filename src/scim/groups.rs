//! `/scim/v2/Groups`: a group is a roster group. It has an id and a name
//! of its own (`scim_groups`); its members are the live records whose
//! `groups` carry that name, so a membership change is an event on each
//! member (and `ROLE_MAP` follows). Renaming or deleting a group rewrites
//! its members' `groups` the same way.
//!
//! Lock order: the group first, then members in id order, so two changes
//! to overlapping groups cannot deadlock.

use super::error::ScimError;
use super::patch::{self, Schema};
use super::user::{check_schemas, get, group_ref};
use super::users::{lock_live, write, NewProfile};
use super::{list_response, ListParams, Out, Projection, Scim, ScimJson, ScimQuery};
use crate::event::{Email, RecordId};
use crate::http::AppState;
use crate::roster::store::{self, GroupView};
use crate::state::RowStatus;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::SecondsFormat;
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use std::collections::BTreeSet;
use uuid::Uuid;

pub(crate) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Longest group name (the roster's limit on a group).
const MAX_NAME: usize = 100;

const GROUP_ATTRS: Schema = Schema {
    attrs: &[
        ("displayName", &[], false),
        ("externalId", &[], false),
        ("members", &["value", "display", "type", "$ref"], true),
    ],
    read_only: &["id", "meta", "schemas"],
};

/// What a request says a group is.
struct GroupInput {
    display_name: String,
    external_id: Option<String>,
    /// Member record ids.
    members: BTreeSet<String>,
}

fn parse_input(body: &Map<String, Value>) -> Result<GroupInput, ScimError> {
    let display_name = match get(body, "displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None => {
            return Err(ScimError::invalid_value("displayName is required"))
        }
        Some(_) => return Err(ScimError::invalid_value("displayName must be a string")),
    };
    if display_name.chars().count() > MAX_NAME {
        return Err(ScimError::invalid_value(format!(
            "displayName must be at most {MAX_NAME} characters"
        )));
    }
    let external_id = match get(body, "externalId") {
        None => None,
        Some(Value::String(s)) if s.chars().count() <= 256 => Some(s.clone()),
        Some(_) => {
            return Err(ScimError::invalid_value(
                "externalId must be a string of at most 256 characters",
            ))
        }
    };
    let members = match get(body, "members") {
        None => BTreeSet::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|m| match m.as_object().and_then(|m| get(m, "value")) {
                Some(Value::String(id)) => Ok(id.clone()),
                _ => Err(ScimError::invalid_value(
                    "each member must be an object with a string \"value\"",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ScimError::invalid_value("members must be an array")),
    };
    Ok(GroupInput {
        display_name,
        external_id,
        members,
    })
}

/// A group as a SCIM Group, with its members.
async fn resource(conn: &mut PgConnection, g: &GroupView, base: &str) -> Result<Value, ScimError> {
    let ids = store::member_ids(conn, &g.display_name).await?;
    let mut members = Vec::with_capacity(ids.len());
    for id in ids {
        members.push(json!({
            "value": id,
            "$ref": format!("{base}/Users/{id}"),
            "type": "User",
        }));
    }
    let mut o = Map::new();
    o.insert("schemas".into(), json!([GROUP_SCHEMA]));
    o.insert("id".into(), g.id.to_string().into());
    o.insert("displayName".into(), g.display_name.clone().into());
    if let Some(x) = &g.external_id {
        o.insert("externalId".into(), x.clone().into());
    }
    if !members.is_empty() {
        o.insert("members".into(), members.into());
    }
    o.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": g.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "lastModified": g.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "location": group_ref(base, g.id),
        }),
    );
    Ok(Value::Object(o))
}

fn parse_id(id: &str) -> Result<Uuid, ScimError> {
    Uuid::parse_str(id).map_err(|_| ScimError::not_found("group"))
}

pub(crate) async fn create(
    scim: Scim,
    State(state): State<AppState>,
    body: ScimJson,
) -> Result<Out, ScimError> {
    check_schemas(&body.0, GROUP_SCHEMA)?;
    let input = parse_input(&body.0)?;
    let id = Uuid::new_v4();
    let mut tx = state.db.begin().await?;
    if !store::insert_group(
        &mut tx,
        id,
        &input.display_name,
        input.external_id.as_deref(),
    )
    .await?
    {
        return Err(ScimError::uniqueness(
            "a group with this displayName already exists",
        ));
    }
    store::lock_group(&mut tx, id).await?;
    set_members(
        &mut tx,
        &state,
        &scim,
        None,
        &input.display_name,
        &BTreeSet::new(),
        &input.members,
    )
    .await?;
    audit(&mut tx, &scim, "scim.group.create", id, &input.display_name).await?;
    let g = store::group(&mut tx, id).await?.expect("inserted above");
    let res = resource(&mut tx, &g, &scim.base).await?;
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
    let id = parse_id(&id)?;
    let mut conn = state.db.acquire().await?;
    let g = store::group(&mut conn, id)
        .await?
        .ok_or_else(|| ScimError::not_found("group"))?;
    let res = resource(&mut conn, &g, &scim.base).await?;
    p.apply(res, GROUP_SCHEMA)
}

pub(crate) async fn list(
    scim: Scim,
    State(state): State<AppState>,
    ScimQuery(p): ScimQuery<ListParams>,
) -> Result<Out, ScimError> {
    let (filter, offset, limit) = p.parse()?;
    let mut conn = state.db.acquire().await?;
    let (total, groups) = store::groups(&mut conn, filter.as_ref(), offset, limit)
        .await?
        .map_err(|e| ScimError::invalid_filter(e.0))?;
    let mut resources = Vec::with_capacity(groups.len());
    for g in &groups {
        resources.push(resource(&mut conn, g, &scim.base).await?);
    }
    list_response(total, offset, resources, &p.projection(), GROUP_SCHEMA)
}

pub(crate) async fn replace(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: ScimJson,
) -> Result<Out, ScimError> {
    check_schemas(&body.0, GROUP_SCHEMA)?;
    let input = parse_input(&body.0)?;
    update(&state, &scim, &id, |_| Ok(input)).await
}

pub(crate) async fn patch(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: ScimJson,
) -> Result<Out, ScimError> {
    let ops = patch::operations(&body.0)?;
    update(&state, &scim, &id, |current| {
        let mut res = current.clone();
        patch::apply(&GROUP_ATTRS, &mut res, &ops)?;
        parse_input(&res)
    })
    .await
}

pub(crate) async fn delete(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ScimError> {
    let id = parse_id(&id)?;
    let mut tx = state.db.begin().await?;
    let Some(name) = store::lock_group(&mut tx, id).await? else {
        return Err(ScimError::not_found("group"));
    };
    let members: BTreeSet<String> = store::member_ids(&mut tx, &name)
        .await?
        .into_iter()
        .collect();
    set_members(
        &mut tx,
        &state,
        &scim,
        Some(&name),
        "",
        &members,
        &BTreeSet::new(),
    )
    .await?;
    store::delete_group(&mut tx, id).await?;
    audit(&mut tx, &scim, "scim.group.delete", id, &name).await?;
    tx.commit().await?;
    state.wakeup.poke();
    Ok(StatusCode::NO_CONTENT)
}

/// PUT and PATCH: lock the group, decide its new state from the current
/// one (as the writable JSON a PATCH applies to), and write the difference.
async fn update(
    state: &AppState,
    scim: &Scim,
    id: &str,
    decide: impl FnOnce(&Map<String, Value>) -> Result<GroupInput, ScimError>,
) -> Result<Out, ScimError> {
    let id = parse_id(id)?;
    let mut tx = state.db.begin().await?;
    let Some(name) = store::lock_group(&mut tx, id).await? else {
        return Err(ScimError::not_found("group"));
    };
    let g = store::group(&mut tx, id).await?.expect("locked above");
    let members: BTreeSet<String> = store::member_ids(&mut tx, &name)
        .await?
        .into_iter()
        .collect();
    let mut current = Map::new();
    current.insert("displayName".into(), name.clone().into());
    if let Some(x) = &g.external_id {
        current.insert("externalId".into(), x.clone().into());
    }
    if !members.is_empty() {
        let list: Vec<Value> = members.iter().map(|m| json!({ "value": m })).collect();
        current.insert("members".into(), list.into());
    }
    let input = decide(&current)?;
    if input.display_name != name && store::name_taken(&mut tx, &input.display_name, id).await? {
        return Err(ScimError::uniqueness(
            "a group with this displayName already exists",
        ));
    }
    if input.display_name != name || input.external_id != g.external_id {
        store::update_group(
            &mut tx,
            id,
            &input.display_name,
            input.external_id.as_deref(),
        )
        .await?;
    }
    set_members(
        &mut tx,
        state,
        scim,
        Some(&name),
        &input.display_name,
        &members,
        &input.members,
    )
    .await?;
    audit(&mut tx, scim, "scim.group.update", id, &input.display_name).await?;
    let g = store::group(&mut tx, id).await?.expect("locked above");
    let res = resource(&mut tx, &g, &scim.base).await?;
    tx.commit().await?;
    state.wakeup.poke();
    Ok(Out::from(res))
}

/// Rewrites the `groups` of everyone in `before` ∪ `after`: the old name
/// (if any) out, the new name in for those in `after`. One event per
/// record whose groups change, in id order (the lock order).
async fn set_members(
    conn: &mut PgConnection,
    state: &AppState,
    scim: &Scim,
    old_name: Option<&str>,
    new_name: &str,
    before: &BTreeSet<String>,
    after: &BTreeSet<String>,
) -> Result<(), ScimError> {
    let everyone: BTreeSet<&String> = before.union(after).collect();
    for id in everyone {
        // A member that is not a live user is skipped, not refused: RFC
        // 7644 does not ask for the check, and clients that send a group
        // before its users expect the rest of the change to stand.
        let Ok(record) = RecordId::parse(id) else {
            continue;
        };
        let Some((row, person)) = lock_live(conn, &record).await? else {
            if after.contains(id) {
                tracing::warn!(member = %record, "SCIM group member is not a live user; skipped");
            }
            continue;
        };
        let mut groups: Vec<String> = person
            .groups
            .iter()
            .filter(|g| Some(g.as_str()) != old_name)
            .cloned()
            .collect();
        if !after.contains(id) {
            groups.retain(|g| g != new_name);
        } else if !groups.iter().any(|g| g == new_name) {
            groups.push(new_name.to_owned());
        }
        if groups == person.groups {
            continue;
        }
        let email = Email::from_trusted(person.email.clone());
        let profile = NewProfile {
            email: &email,
            name: person.name.clone(),
            active: person.status == RowStatus::Active,
            groups: &groups,
            details: &person.details,
        };
        write(conn, state, scim, &record, Some(profile), Some(&row)).await?;
    }
    Ok(())
}

async fn audit(
    conn: &mut PgConnection,
    scim: &Scim,
    action: &str,
    id: Uuid,
    name: &str,
) -> Result<(), ScimError> {
    crate::audit::record(
        conn,
        &crate::audit::Actor::named(scim.client.clone()),
        action,
        Some(&id.to_string()),
        &json!({ "displayName": name }),
    )
    .await?;
    Ok(())
}
