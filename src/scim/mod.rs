//! SCIM 2.0 (RFC 7643, RFC 7644) under `/scim/v2` (docs/contract.md §13):
//! identity providers (Okta, Entra ID, ...) create, update, deactivate and
//! delete people and groups. The resource is the roster itself: every
//! record is a User, and every write is an event on the one apply path.
//!
//! - [`users`], [`groups`]: the resources' handlers;
//! - [`user`]: a record as a User and a body as a profile;
//! - [`patch`]: PATCH operations on a resource's JSON;
//! - [`discovery`]: what this service provider supports, as published;
//! - [`error`]: SCIM error bodies.
//!
//! Filters (`crate::filter`) are translated to SQL by the roster
//! (`roster::store::search`).

mod discovery;
mod error;
pub(crate) mod groups;
mod patch;
mod user;
mod users;

use crate::filter::Filter;
use crate::http::{AppState, Routes};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use error::{ScimError, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Largest SCIM request body: a group's PATCH may carry many members.
const MAX_BODY_BYTES: usize = 512 * 1024;
/// Most resources in one page (`maxResults` in ServiceProviderConfig).
pub(crate) const MAX_RESULTS: i64 = 200;
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

pub(crate) fn router() -> Routes {
    Routes::new()
        .get(
            "/scim/v2/ServiceProviderConfig",
            discovery::service_provider_config,
        )
        .get("/scim/v2/ResourceTypes", discovery::resource_types)
        .get("/scim/v2/ResourceTypes/{name}", discovery::resource_type)
        .get("/scim/v2/Schemas", discovery::schemas)
        .get("/scim/v2/Schemas/{id}", discovery::schema)
        .get("/scim/v2/Users", users::list)
        .post("/scim/v2/Users", users::create)
        .get("/scim/v2/Users/{id}", users::get_one)
        .put("/scim/v2/Users/{id}", users::replace)
        .patch("/scim/v2/Users/{id}", users::patch)
        .delete("/scim/v2/Users/{id}", users::delete)
        .get("/scim/v2/Groups", groups::list)
        .post("/scim/v2/Groups", groups::create)
        .get("/scim/v2/Groups/{id}", groups::get_one)
        .put("/scim/v2/Groups/{id}", groups::replace)
        .patch("/scim/v2/Groups/{id}", groups::patch)
        .delete("/scim/v2/Groups/{id}", groups::delete)
        .catch_all("/scim/v2/.search", discovery::search_not_supported)
        .catch_all("/scim/v2/{*rest}", discovery::unknown)
        .body_limit(MAX_BODY_BYTES)
}

/// A request from an identity provider: the name of its `SCIM_TOKENS`
/// entry (the audit log's actor) and the base URL resources are located at.
pub(crate) struct Scim {
    pub(crate) client: String,
    pub(crate) base: String,
}

impl FromRequestParts<AppState> for Scim {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ScimError> {
        let client = state
            .config
            .scim_tokens
            .identify(&parts.headers)
            .ok_or_else(ScimError::unauthorized)?
            .to_owned();
        Ok(Scim {
            client,
            base: base_url(parts),
        })
    }
}

/// `meta.location`'s prefix, from the request as the client made it (a
/// proxy's `X-Forwarded-Proto` says whether that was https).
fn base_url(parts: &Parts) -> String {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
            })
    };
    let scheme = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    let host = header("host").unwrap_or("localhost");
    format!("{scheme}://{host}/scim/v2")
}

/// A SCIM request body: a JSON object (duplicate keys refused), sent as
/// `application/scim+json` or `application/json`.
pub(crate) struct ScimJson(pub(crate) Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ScimError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        if let Some(ct) = &content_type {
            if ct != CONTENT_TYPE && ct != "application/json" {
                return Err(ScimError::unsupported_media_type());
            }
        }
        let body: Result<Bytes, BytesRejection> = Bytes::from_request(req, state).await;
        let body = body.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::too_large()
            } else {
                ScimError::invalid_syntax("could not read the request body")
            }
        })?;
        let value = crate::json::from_slice(&body)
            .map_err(|e| ScimError::invalid_syntax(format!("the body is not valid JSON: {e}")))?;
        if let Some(at) = find_nul(&value) {
            return Err(ScimError::invalid_value(format!(
                "{at} contains a NUL character"
            )));
        }
        match value {
            Value::Object(o) => Ok(ScimJson(o)),
            _ => Err(ScimError::invalid_syntax("the body must be a JSON object")),
        }
    }
}

/// The first string (or key) holding U+0000, which PostgreSQL cannot store.
fn find_nul(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some("a value".into()),
        Value::Array(a) => a.iter().find_map(find_nul),
        Value::Object(o) => o.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some("a key".into())
            } else {
                find_nul(v)
            }
        }),
        _ => None,
    }
}

/// A query string, or a SCIM 400 saying why it is not one (a parameter
/// given twice, a malformed escape).
pub(crate) struct ScimQuery<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ScimQuery<T> {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ScimError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ScimQuery(q.0))
            .map_err(|e| ScimError::invalid_value(format!("the query string: {}", e.body_text())))
    }
}

/// A SCIM response: JSON as `application/scim+json`.
pub(crate) struct Out(pub(crate) StatusCode, pub(crate) Value);

impl From<Value> for Out {
    fn from(v: Value) -> Self {
        Out(StatusCode::OK, v)
    }
}

impl IntoResponse for Out {
    fn into_response(self) -> Response {
        let location = self.1["meta"]["location"].as_str().map(str::to_owned);
        let mut res = (self.0, self.1.to_string()).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if self.0 == StatusCode::CREATED {
            if let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                res.headers_mut().insert(header::LOCATION, l);
            }
        }
        res
    }
}

/// `attributes` and `excludedAttributes` (RFC 7644 §3.9).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Projection {
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

/// Longest `attributes` or `excludedAttributes` list.
const MAX_ATTRIBUTE_LIST: usize = 1024;

impl Projection {
    /// `res` with only the asked-for attributes (`id` and `schemas` always).
    pub(crate) fn apply(&self, res: Value, schema: &str) -> Result<Out, ScimError> {
        self.check()?;
        Ok(Out::from(self.project(res, schema)))
    }

    fn check(&self) -> Result<(), ScimError> {
        let long = |l: &Option<String>| {
            l.as_ref()
                .is_some_and(|l| l.chars().count() > MAX_ATTRIBUTE_LIST)
        };
        if long(&self.attributes) || long(&self.excluded_attributes) {
            return Err(ScimError::invalid_value(format!(
                "attributes and excludedAttributes are at most {MAX_ATTRIBUTE_LIST} characters"
            )));
        }
        Ok(())
    }

    fn project(&self, res: Value, schema: &str) -> Value {
        let Value::Object(mut o) = res else {
            return res;
        };
        let names = |list: &Option<String>| -> Vec<(String, Option<String>)> {
            list.iter()
                .flat_map(|l| l.split(','))
                .map(|a| a.trim())
                .filter(|a| !a.is_empty())
                .map(|a| {
                    let prefix = format!("{schema}:");
                    // `get`, not indexing: the cut may fall inside a character.
                    let bare = match (a.get(..prefix.len()), a.get(prefix.len()..)) {
                        (Some(head), Some(rest)) if head.eq_ignore_ascii_case(&prefix) => rest,
                        _ => a,
                    };
                    match bare.split_once('.') {
                        Some((x, y)) => (x.to_ascii_lowercase(), Some(y.to_ascii_lowercase())),
                        None => (bare.to_ascii_lowercase(), None),
                    }
                })
                .collect()
        };
        let always = |k: &str| k == "id" || k == "schemas";
        let wanted = names(&self.attributes);
        if !wanted.is_empty() {
            o.retain(|k, _| always(k) || wanted.iter().any(|(a, _)| a == &k.to_ascii_lowercase()));
            for (k, v) in o.iter_mut() {
                let subs: Vec<&String> = wanted
                    .iter()
                    .filter(|(a, _)| a == &k.to_ascii_lowercase())
                    .filter_map(|(_, s)| s.as_ref())
                    .collect();
                let whole = wanted
                    .iter()
                    .any(|(a, s)| a == &k.to_ascii_lowercase() && s.is_none());
                if !whole && !subs.is_empty() {
                    keep_subs(v, &subs);
                }
            }
        }
        for (a, sub) in names(&self.excluded_attributes) {
            if always(&a) {
                continue;
            }
            let key = o.keys().find(|k| k.to_ascii_lowercase() == a).cloned();
            if let Some(key) = key {
                match sub {
                    None => {
                        o.remove(&key);
                    }
                    Some(s) => drop_sub(o.get_mut(&key).expect("found above"), &s),
                }
            }
        }
        Value::Object(o)
    }
}

fn keep_subs(v: &mut Value, subs: &[&String]) {
    match v {
        Value::Object(o) => o.retain(|k, _| subs.iter().any(|s| **s == k.to_ascii_lowercase())),
        Value::Array(items) => items.iter_mut().for_each(|i| keep_subs(i, subs)),
        _ => {}
    }
}

fn drop_sub(v: &mut Value, sub: &str) {
    match v {
        Value::Object(o) => o.retain(|k, _| k.to_ascii_lowercase() != sub),
        Value::Array(items) => items.iter_mut().for_each(|i| drop_sub(i, sub)),
        _ => {}
    }
}

/// A list request's query (RFC 7644 §3.4.2).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListParams {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

impl ListParams {
    /// The filter, offset (0-based) and page size.
    pub(crate) fn parse(&self) -> Result<(Option<Filter>, i64, i64), ScimError> {
        self.projection().check()?;
        let int = |v: &Option<String>, name: &str| -> Result<Option<i64>, ScimError> {
            v.as_deref()
                .map(|s| {
                    s.trim()
                        .parse::<i64>()
                        .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer")))
                })
                .transpose()
        };
        // RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a negative count 0.
        let start = int(&self.start_index, "startIndex")?.unwrap_or(1).max(1);
        let count = int(&self.count, "count")?
            .unwrap_or(MAX_RESULTS)
            .clamp(0, MAX_RESULTS);
        let filter = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(f) => Some(
                Filter::parse(f)
                    .map_err(|e| ScimError::invalid_filter(format!("the filter {e}")))?,
            ),
        };
        Ok((filter, start.saturating_sub(1), count))
    }

    pub(crate) fn projection(&self) -> Projection {
        Projection {
            attributes: self.attributes.clone(),
            excluded_attributes: self.excluded_attributes.clone(),
        }
    }
}

/// A ListResponse of one page.
pub(crate) fn list_response(
    total: i64,
    offset: i64,
    resources: Vec<Value>,
    projection: &Projection,
    schema: &str,
) -> Result<Out, ScimError> {
    let resources: Vec<Value> = resources
        .into_iter()
        .map(|r| projection.project(r, schema))
        .collect();
    Ok(Out::from(json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": offset + 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })))
}
