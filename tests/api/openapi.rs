//! `openapi.yaml` against the server: the same routes as the router's own
//! table (`rosterd::routes`, filled as handlers are registered), each one
//! really served, and only error codes the server can send, with the
//! headers it sends them with.

use crate::helpers::*;
use reqwest::Method;
use rosterd::error::ApiError;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};

/// Documented but served by a branch not merged yet. An entry is refused
/// once the router serves it, so it cannot outlive its reason.
const PENDING: &[(&str, &str)] = &[];

/// Error codes handlers write themselves rather than through `ApiError`.
const HANDLER_CODES: &[(u16, &str)] = &[
    (403, "user_inactive"),  // http::lookup
    (404, "user_not_found"), // http::lookup
    (503, "not_ready"),      // http::ops::readyz
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

type Route = (String, String);

fn spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("openapi.yaml is readable");
    serde_norway::from_str(&text).expect("openapi.yaml is valid YAML")
}

/// Follows local `$ref`s to what they name.
fn resolve<'a>(spec: &'a Value, mut v: &'a Value) -> &'a Value {
    while let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let pointer = r.strip_prefix('#').expect("only local $refs");
        v = spec
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {r}"));
    }
    v
}

/// Every operation: (METHOD, path) → the operation object.
fn operations(spec: &Value) -> BTreeMap<Route, &Value> {
    let paths = spec["paths"].as_object().expect("paths is a map");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item is a map");
            item.iter()
                .filter(|(k, _)| METHODS.contains(&k.as_str()))
                .map(move |(m, op)| ((m.to_uppercase(), path.clone()), op))
        })
        .collect()
}

fn routed(config: &rosterd::config::Config) -> BTreeSet<Route> {
    rosterd::routes(config)
        .table()
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

fn pending() -> BTreeSet<Route> {
    PENDING
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

fn listing<'a>(title: &str, routes: impl IntoIterator<Item = &'a Route>) -> Option<String> {
    let lines: Vec<String> = routes
        .into_iter()
        .map(|(m, p)| format!("  {m} {p}"))
        .collect();
    (!lines.is_empty()).then(|| format!("{title}:\n{}", lines.join("\n")))
}

#[test]
fn the_spec_documents_exactly_the_routes_the_router_serves() {
    let spec = spec();
    let documented: BTreeSet<Route> = operations(&spec).into_keys().collect();
    // The full surface: the inbound route exists only with webhooks on.
    let served = routed(&config());
    let pending = pending();
    let problems: Vec<String> = [
        listing(
            "served by the router but missing from openapi.yaml",
            served.difference(&documented),
        ),
        listing(
            "in openapi.yaml but not served by the router",
            documented
                .difference(&served)
                .filter(|r| !pending.contains(*r)),
        ),
        listing(
            "served now: remove from PENDING in tests/api/openapi.rs",
            pending.intersection(&served),
        ),
        listing(
            "in PENDING but not in openapi.yaml",
            pending.difference(&documented),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_inbound_route_is_served_only_with_webhooks_on() {
    let inbound = ("POST".to_owned(), "/api/sync/users/inbound".to_owned());
    assert!(routed(&config()).contains(&inbound));
    let mut off = config();
    off.webhook_enabled = false;
    let served = routed(&off);
    assert!(!served.contains(&inbound));
    assert_eq!(served.len(), routed(&config()).len() - 1);
}

/// A request with no credentials reaches every handler (each answers for
/// itself: a 401 or a 200), never the 404 fallback or a 405; and what it
/// answers is documented for that operation.
#[sqlx::test]
async fn every_documented_operation_is_served(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let spec = spec();
    let pending = pending();
    // The check below can tell a served route from an unknown one.
    let unknown = app.client.get(app.url("/api/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    for ((method, path), op) in operations(&spec) {
        if pending.contains(&(method.clone(), path.clone())) {
            continue;
        }
        let concrete = path.replace(['{', '}'], "");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let r = app
            .client
            .request(method.clone(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status != 404 && status != 405,
            "{method} {path}: {status} {body}"
        );
        assert!(
            op["responses"].get(status.to_string()).is_some(),
            "{method} {path} answered {status}, which the spec does not list"
        );
    }
}

/// The (status, code) pairs the server can answer with.
fn known_codes() -> BTreeSet<(u16, String)> {
    ApiError::codes()
        .into_iter()
        .map(|(s, c)| (s.as_u16(), c.to_owned()))
        .chain(HANDLER_CODES.iter().map(|(s, c)| (*s, c.to_string())))
        .collect()
}

/// The example bodies of a response, from `example` and `examples`.
fn examples<'a>(spec: &'a Value, response: &'a Value) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for media in response["content"].as_object().into_iter().flatten() {
        let media = resolve(spec, media.1);
        out.extend(media.get("example"));
        for ex in media["examples"].as_object().into_iter().flatten() {
            out.extend(resolve(spec, ex.1).get("value"));
        }
    }
    out
}

#[test]
fn the_error_codes_are_those_the_server_sends() {
    let spec = spec();
    let known = known_codes();
    let enumerated: BTreeSet<&str> = spec["components"]["schemas"]["Error"]["properties"]["error"]
        ["enum"]
        .as_array()
        .expect("Error.error has an enum")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let sent: BTreeSet<&str> = known.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(
        enumerated, sent,
        "Error.error's enum in openapi.yaml differs from the codes in src/error.rs and HANDLER_CODES"
    );

    let mut problems = Vec::new();
    for ((method, path), op) in operations(&spec) {
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let code: u16 = status.parse().expect("explicit status codes only");
            if code < 400 {
                continue;
            }
            let response = resolve(&spec, response);
            let where_ = format!("{method} {path} {status}");
            // SCIM answers in its own vocabulary (RFC 7644 §3.12).
            if path.starts_with("/scim/v2/") {
                for media in response["content"].as_object().into_iter().flatten() {
                    if media.1["schema"]["$ref"] != "#/components/schemas/ScimError" {
                        problems.push(format!("{where_}: {} is not a ScimError", media.0));
                    }
                }
                if code == 401 && response["headers"].get("WWW-Authenticate").is_none() {
                    problems.push(format!(
                        "{where_}: 401 comes with WWW-Authenticate; document it"
                    ));
                }
                continue;
            }
            let codes: Vec<&str> = examples(&spec, response)
                .iter()
                .filter_map(|e| e["error"].as_str())
                .collect();
            if codes.is_empty() {
                problems.push(format!("{where_}: no example with an error code"));
            }
            let header = |name: &str| response["headers"].get(name).is_some();
            for c in codes {
                if !known.contains(&(code, c.to_owned())) {
                    problems.push(format!(
                        "{where_}: the server never answers {c} with {code}"
                    ));
                }
                let from_api_error = ApiError::codes().iter().any(|(_, k)| *k == c);
                if code == 503 && from_api_error && !header("Retry-After") {
                    problems.push(format!("{where_}: {c} comes with Retry-After; document it"));
                }
                if c == "unauthorized" && !header("WWW-Authenticate") {
                    problems.push(format!(
                        "{where_}: {c} comes with WWW-Authenticate; document it"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn every_operation_is_described_and_secured() {
    let spec = spec();
    let mut ids = BTreeSet::new();
    let mut problems = Vec::new();
    for ((method, path), op) in operations(&spec) {
        let where_ = format!("{method} {path}");
        for field in ["summary", "description", "operationId"] {
            if op[field].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{where_}: no {field}"));
            }
        }
        if let Some(id) = op["operationId"].as_str() {
            if !ids.insert(id) {
                problems.push(format!("{where_}: operationId {id} is used twice"));
            }
        }
        let expected = if path.starts_with("/scim/v2/") {
            serde_json::json!([{"scimBearer": []}])
        } else if path.starts_with("/api/admin/") {
            serde_json::json!([{"adminBearer": []}])
        } else if path == "/api/users/lookup" {
            serde_json::json!([{"loginBearer": []}])
        } else {
            serde_json::json!([])
        };
        if op["security"] != expected {
            problems.push(format!(
                "{where_}: security should be {expected}, is {}",
                op["security"]
            ));
        }
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(&spec, p))
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        if declared != templated {
            problems.push(format!(
                "{where_}: path parameters {templated:?} but declared {declared:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The console's HTML pages are not part of the JSON API: they live under
/// `/console`, are kept in the router's separate page table, and are not
/// in `openapi.yaml`; no JSON route lives under `/console`.
#[test]
fn console_pages_are_kept_apart_from_the_json_api() {
    let routes = rosterd::routes(&config());
    let documented: BTreeSet<Route> = operations(&spec()).into_keys().collect();
    assert!(!routes.pages().is_empty());
    for (m, p) in routes.pages() {
        assert!(p.starts_with("/console"), "{m} {p}");
        assert!(
            !documented.contains(&(m.to_string(), p.to_string())),
            "{m} {p} is a console page, not a JSON API operation"
        );
    }
    for (m, p) in routes.table() {
        assert!(!p.starts_with("/console"), "{m} {p}");
    }
}
