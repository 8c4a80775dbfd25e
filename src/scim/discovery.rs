//! What this service provider supports (RFC 7644 §4), published exactly as
//! the endpoints behave: testers read these documents and exercise every
//! attribute and feature they list.

use super::error::ScimError;
use super::groups::GROUP_SCHEMA;
use super::user::USER_SCHEMA;
use super::{Out, Scim, MAX_RESULTS};
use axum::extract::Path;
use serde_json::{json, Value};

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

pub(crate) async fn service_provider_config(scim: Scim) -> Out {
    Out::from(json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/rosterd/rosterd/blob/main/docs/contract.md",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A token from SCIM_TOKENS in the Authorization header",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", scim.base),
        },
    }))
}

fn resource_type_doc(name: &str, base: &str) -> Option<Value> {
    let (endpoint, schema, description) = match name {
        "User" => ("/Users", USER_SCHEMA, "A person on the roster"),
        "Group" => (
            "/Groups",
            GROUP_SCHEMA,
            "A roster group; ROLE_MAP maps it to roles",
        ),
        _ => return None,
    };
    Some(json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": name,
        "name": name,
        "endpoint": endpoint,
        "description": description,
        "schema": schema,
        "schemaExtensions": [],
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{name}")},
    }))
}

pub(crate) async fn resource_types(scim: Scim) -> Out {
    let all: Vec<Value> = ["User", "Group"]
        .iter()
        .filter_map(|n| resource_type_doc(n, &scim.base))
        .collect();
    list(all)
}

pub(crate) async fn resource_type(scim: Scim, Path(name): Path<String>) -> Result<Out, ScimError> {
    resource_type_doc(&name, &scim.base)
        .map(Out::from)
        .ok_or_else(|| ScimError::not_found("resource type"))
}

fn list(resources: Vec<Value>) -> Out {
    Out::from(json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    }))
}

/// One attribute of a schema document.
fn attr(name: &str, kind: &str, extra: Value) -> Value {
    let mut a = json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": "",
        "required": false,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    });
    if kind == "complex" || kind == "boolean" {
        a.as_object_mut().expect("an object").remove("caseExact");
    }
    for (k, v) in extra.as_object().expect("extra is an object") {
        a[k] = v.clone();
    }
    a
}

fn user_schema(base: &str) -> Value {
    let name_parts: Vec<Value> = [
        ("formatted", "The full name"),
        ("familyName", "The family name"),
        ("givenName", "The given name"),
        ("middleName", "The middle name"),
        ("honorificPrefix", "The honorific prefix"),
        ("honorificSuffix", "The honorific suffix"),
    ]
    .iter()
    .map(|(n, d)| attr(n, "string", json!({ "description": d })))
    .collect();
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A person on the roster",
        "attributes": [
            attr("userName", "string", json!({
                "required": true, "uniqueness": "server",
                "description": "The person's sign-in name, compared case-insensitively: their email address, or when it is not one, the primary of emails is",
            })),
            attr("name", "complex", json!({"subAttributes": name_parts, "description": "The person's name"})),
            attr("displayName", "string", json!({"description": "The name to display"})),
            attr("active", "boolean", json!({
                "required": true,
                "description": "false disables the person's sign-in (true when not sent)",
            })),
            attr("emails", "complex", json!({
                "multiValued": true,
                "required": true,
                "description": "Email addresses (may be left out when userName is one)",
                "subAttributes": [
                    attr("value", "string", json!({"required": true, "description": "An email address"})),
                    attr("display", "string", json!({"description": "A label for the address"})),
                    attr("type", "string", json!({
                        "description": "The kind of address",
                        "canonicalValues": ["work", "home", "other"],
                    })),
                    attr("primary", "boolean", json!({"description": "The primary address"})),
                ],
            })),
            attr("groups", "complex", json!({
                "multiValued": true, "mutability": "readOnly",
                "description": "The groups the person is in (change them through Groups)",
                "subAttributes": [
                    attr("value", "string", json!({"mutability": "readOnly", "description": "The group's id"})),
                    attr("$ref", "reference", json!({
                        "mutability": "readOnly", "referenceTypes": ["Group"], "caseExact": true,
                        "description": "The group's URI",
                    })),
                    attr("display", "string", json!({"mutability": "readOnly", "description": "The group's name"})),
                    attr("type", "string", json!({
                        "mutability": "readOnly", "canonicalValues": ["direct"],
                        "description": "Always direct",
                    })),
                ],
            })),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{USER_SCHEMA}")},
    })
}

fn group_schema(base: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A roster group",
        "attributes": [
            attr("displayName", "string", json!({
                "required": true, "uniqueness": "server",
                "description": "The group's name, as ROLE_MAP names it",
            })),
            attr("members", "complex", json!({
                "multiValued": true,
                "description": "The people in the group",
                "subAttributes": [
                    attr("value", "string", json!({"mutability": "immutable", "caseExact": true, "description": "A user's id"})),
                    attr("$ref", "reference", json!({
                        "mutability": "immutable", "referenceTypes": ["User"], "caseExact": true,
                        "description": "The user's URI",
                    })),
                    attr("type", "string", json!({
                        "mutability": "immutable", "canonicalValues": ["User"],
                        "description": "Always User",
                    })),
                ],
            })),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{GROUP_SCHEMA}")},
    })
}

pub(crate) async fn schemas(scim: Scim) -> Out {
    list(vec![user_schema(&scim.base), group_schema(&scim.base)])
}

pub(crate) async fn schema(scim: Scim, Path(id): Path<String>) -> Result<Out, ScimError> {
    if id.eq_ignore_ascii_case(USER_SCHEMA) {
        Ok(Out::from(user_schema(&scim.base)))
    } else if id.eq_ignore_ascii_case(GROUP_SCHEMA) {
        Ok(Out::from(group_schema(&scim.base)))
    } else {
        Err(ScimError::not_found("schema"))
    }
}

/// `POST /.search` across resource types (RFC 7644 §3.4.3) is not
/// offered; RFC 7644 §3.12 names 501 for an unsupported operation.
pub(crate) async fn search_not_supported() -> ScimError {
    ScimError::not_implemented("searching across resource types (/.search) is not supported")
}

/// Anything else under `/scim/v2`: a SCIM 404, not the JSON API's.
pub(crate) async fn unknown() -> ScimError {
    ScimError::not_found("resource")
}
