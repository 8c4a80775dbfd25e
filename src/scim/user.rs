//! The SCIM `User` (RFC 7643 §4.1) as rosterd keeps it: how a roster
//! record is shown, and how a request body becomes the profile of an event.
//!
//! Attribute names are case-insensitive on the way in; unknown ones
//! (`password`, `locale`, `roles`, extensions) are accepted and ignored, as
//! identity providers send them whatever the schema says.

use super::error::ScimError;
use crate::event::{Details, EmailEntry, NameParts};
use crate::roster::store::PersonView;
use crate::state::RowStatus;
use chrono::SecondsFormat;
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The roster's longest `name` (docs/contract.md §2).
const ROSTER_NAME_MAX: usize = 200;

pub(crate) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The attributes a client may write, by their canonical names.
pub(crate) const WRITABLE: [&str; 6] = [
    "userName",
    "name",
    "displayName",
    "emails",
    "active",
    "externalId",
];
/// Sub-attributes of `name`.
pub(crate) const NAME_PARTS: [&str; 6] = [
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
];
/// Sub-attributes of one of `emails`.
pub(crate) const EMAIL_PARTS: [&str; 4] = ["value", "type", "primary", "display"];
/// What a client may read but never write.
pub(crate) const READ_ONLY: [&str; 4] = ["id", "meta", "groups", "schemas"];

/// A group's URL (a User's `groups.$ref`, a Group's `meta.location`).
pub(crate) fn group_ref(base: &str, id: Uuid) -> String {
    format!("{base}/Groups/{id}")
}

/// A record as a SCIM User. `groups` are the SCIM groups it is in.
pub(crate) fn resource(p: &PersonView, groups: &[(Uuid, String)], base: &str) -> Value {
    let scim_fed = p.details != Details::default();
    let d = &p.details;
    let mut u = Map::new();
    u.insert("schemas".into(), json!([USER_SCHEMA]));
    u.insert("id".into(), p.id.clone().into());
    if let Some(x) = &d.external_id {
        u.insert("externalId".into(), x.clone().into());
    }
    u.insert(
        "userName".into(),
        d.user_name
            .clone()
            .unwrap_or_else(|| p.email.clone())
            .into(),
    );
    let mut name = serde_json::to_value(&d.name).expect("name parts serialize");
    if !scim_fed {
        if let Some(n) = &p.name {
            name = json!({ "formatted": n });
        }
    }
    if name.as_object().is_some_and(|o| !o.is_empty()) {
        u.insert("name".into(), name);
    }
    match (&d.display_name, scim_fed, &p.name) {
        (Some(x), _, _) => {
            u.insert("displayName".into(), x.clone().into());
        }
        (None, false, Some(n)) => {
            u.insert("displayName".into(), n.clone().into());
        }
        _ => {}
    }
    u.insert("active".into(), (p.status == RowStatus::Active).into());
    let emails = if scim_fed {
        serde_json::to_value(&d.emails).expect("emails serialize")
    } else {
        json!([{ "value": p.email, "type": "work", "primary": true }])
    };
    if emails.as_array().is_some_and(|a| !a.is_empty()) {
        u.insert("emails".into(), emails);
    }
    if !groups.is_empty() {
        let gs: Vec<Value> = groups
            .iter()
            .map(|(id, name)| json!({ "value": id, "display": name, "$ref": group_ref(base, *id), "type": "direct" }))
            .collect();
        u.insert("groups".into(), gs.into());
    }
    u.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": p.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "lastModified": p.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "location": format!("{base}/Users/{}", p.id),
        }),
    );
    Value::Object(u)
}

/// The writable attributes of a record, as a PATCH starts from them.
pub(crate) fn writable(p: &PersonView) -> Map<String, Value> {
    let full = resource(p, &[], "");
    full.as_object()
        .expect("a resource is an object")
        .iter()
        .filter(|(k, _)| WRITABLE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What a request says a user looks like.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserInput {
    /// As sent; the roster keeps its canonical form as the email.
    pub(crate) user_name: String,
    pub(crate) active: bool,
    pub(crate) details: Details,
}

impl UserInput {
    /// The roster's one-line name: `name.formatted`, else the given and
    /// family names, else `displayName`; cut to the roster's 200
    /// characters (the parts themselves are kept whole in `details`).
    pub(crate) fn roster_name(&self) -> Option<String> {
        let n = &self.details.name;
        let parts: Vec<&str> = [&n.given_name, &n.family_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let name = match (&n.formatted, &self.details.display_name) {
            (Some(f), _) => f.clone(),
            _ if !parts.is_empty() => parts.join(" "),
            (None, Some(d)) => d.clone(),
            (None, None) => return None,
        };
        Some(name.chars().take(ROSTER_NAME_MAX).collect())
    }
}

/// Checks `schemas` of a request body: present, and holding `schema`.
pub(crate) fn check_schemas(body: &Map<String, Value>, schema: &str) -> Result<(), ScimError> {
    let found = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .map(|(_, v)| v);
    match found {
        Some(Value::Array(items))
            if items
                .iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(schema))) =>
        {
            Ok(())
        }
        _ => Err(ScimError::invalid_syntax(format!(
            "\"schemas\" must list {schema}"
        ))),
    }
}

/// The value of a (case-insensitively named) attribute; null is absent.
pub(crate) fn get<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn string(v: Option<&Value>, what: &str) -> Result<Option<String>, ScimError> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::invalid_value(format!("{what} must be a string"))),
    }
}

/// `true`, `false`, or the strings Entra ID sends for them.
pub(crate) fn boolean(v: &Value, what: &str) -> Result<bool, ScimError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::invalid_value(format!(
            "{what} must be a boolean"
        ))),
    }
}

/// A body (POST, PUT, or a PATCH's result) as a user.
pub(crate) fn parse_input(body: &Map<String, Value>) -> Result<UserInput, ScimError> {
    let user_name = string(get(body, "userName"), "userName")?
        .ok_or_else(|| ScimError::invalid_value("userName is required"))?;
    let active = match get(body, "active") {
        None => true,
        Some(v) => boolean(v, "active")?,
    };
    let name = match get(body, "name") {
        None => NameParts::default(),
        Some(Value::Object(n)) => NameParts {
            formatted: string(get(n, "formatted"), "name.formatted")?,
            family_name: string(get(n, "familyName"), "name.familyName")?,
            given_name: string(get(n, "givenName"), "name.givenName")?,
            middle_name: string(get(n, "middleName"), "name.middleName")?,
            honorific_prefix: string(get(n, "honorificPrefix"), "name.honorificPrefix")?,
            honorific_suffix: string(get(n, "honorificSuffix"), "name.honorificSuffix")?,
        },
        Some(_) => return Err(ScimError::invalid_value("name must be an object")),
    };
    let emails = match get(body, "emails") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|e| match e {
                Value::Object(e) => Ok(EmailEntry {
                    value: string(get(e, "value"), "emails.value")?
                        .ok_or_else(|| ScimError::invalid_value("emails.value is required"))?,
                    kind: string(get(e, "type"), "emails.type")?,
                    display: string(get(e, "display"), "emails.display")?,
                    primary: get(e, "primary")
                        .map(|p| boolean(p, "emails.primary"))
                        .transpose()?,
                }),
                _ => Err(ScimError::invalid_value("each of emails must be an object")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ScimError::invalid_value("emails must be an array")),
    };
    if emails.iter().filter(|e| e.primary == Some(true)).count() > 1 {
        return Err(ScimError::invalid_value(
            "at most one of emails may be primary",
        ));
    }
    Ok(UserInput {
        details: Details {
            user_name: Some(user_name.clone()),
            external_id: string(get(body, "externalId"), "externalId")?,
            display_name: string(get(body, "displayName"), "displayName")?,
            name,
            emails,
        },
        user_name,
        active,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn reads_what_identity_providers_send() {
        let okta = obj(json!({
            "schemas": [USER_SCHEMA], "userName": "Ann@X.io",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"primary": true, "value": "ann@x.io", "type": "work"}],
            "displayName": "Ann Lee", "locale": "en-US", "externalId": "00u1",
            "groups": [], "password": "t1meMa$heen", "active": true
        }));
        let u = parse_input(&okta).unwrap();
        assert_eq!(u.user_name, "Ann@X.io");
        assert!(u.active);
        assert_eq!(u.details.name.given_name.as_deref(), Some("Ann"));
        assert_eq!(u.roster_name().as_deref(), Some("Ann Lee"));
        let entra = obj(json!({"UserName": "b@x.io", "Active": "False", "externalId": "e1"}));
        let u = parse_input(&entra).unwrap();
        assert!(!u.active);
        assert_eq!(u.user_name, "b@x.io");
    }

    #[test]
    fn refuses_wrong_types() {
        for bad in [
            json!({}),
            json!({"userName": 5}),
            json!({"userName": "a@b.c", "active": "yes"}),
            json!({"userName": "a@b.c", "name": "Ann"}),
            json!({"userName": "a@b.c", "emails": [{"type": "work"}]}),
            json!({"userName": "a@b.c", "emails": [{"value": "x", "primary": true}, {"value": "y", "primary": true}]}),
        ] {
            assert!(parse_input(&obj(bad.clone())).is_err(), "{bad}");
        }
        assert!(check_schemas(&obj(json!({"schemas": ["urn:x"]})), USER_SCHEMA).is_err());
        assert!(check_schemas(&obj(json!({})), USER_SCHEMA).is_err());
    }
}
