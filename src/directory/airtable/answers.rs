//! What Airtable sends back: records, and the bodies of its errors.

use super::FieldNames;
use crate::directory::{DirectoryError, DirectoryRecord};
use crate::http_client::{server_text, Refusal};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value};

/// One record as the caller sees it, read through the configured field
/// names.
pub(super) fn record(names: &FieldNames, r: RecordJson) -> DirectoryRecord {
    let f = &r.fields;
    DirectoryRecord {
        email: f
            .get(&names.email)
            .and_then(text)
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty()),
        name: f.get(&names.name).and_then(text).map(str::to_string),
        status: f.get(&names.status).and_then(|v| match text(v) {
            Some(s) => Some(s.to_string()),
            None if v.is_null() => None,
            None => Some(v.to_string()),
        }),
        groups: f.get(&names.groups).map(groups).unwrap_or_default(),
        id: r.id,
    }
}

/// Text of a field: a string, or a lookup's single string.
fn text(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Array(items) if items.len() == 1 => items[0].as_str(),
        _ => None,
    }
}

/// A multiple select (array of names) or a comma-separated text field.
fn groups(v: &Value) -> Vec<String> {
    let items: Vec<&str> = match v {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => s.split(',').collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Deserialize)]
pub(super) struct ListJson {
    pub(super) records: Vec<RecordJson>,
    #[serde(default)]
    pub(super) offset: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RecordJson {
    pub(super) id: String,
    #[serde(default)]
    fields: Map<String, Value>,
}

/// serde's own message quotes the offending value, which could be anything
/// in the body (an email, a token); only the kind and place of the fault
/// are kept.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(
    what: &str,
    body: &[u8],
) -> Result<T, DirectoryError> {
    serde_json::from_slice(body).map_err(|e| {
        DirectoryError::Rejected(format!(
            "{what}: malformed response body ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// A non-2xx answer: status plus Airtable's error type and message.
pub(super) fn refusal(what: &str, status: StatusCode, body: &[u8], key: &SecretString) -> Refusal {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (code, message) = match (json.get("error"), json.get("errors")) {
        (Some(Value::String(code)), _) => (Some(code.as_str()), None),
        (Some(err @ Value::Object(_)), _) => (
            err.get("type").and_then(Value::as_str),
            err.get("message").and_then(Value::as_str),
        ),
        (_, Some(Value::Array(errors))) => {
            let first = errors.first();
            (
                first.and_then(|e| e.get("error")).and_then(Value::as_str),
                first.and_then(|e| e.get("message")).and_then(Value::as_str),
            )
        }
        _ => (None, None),
    };
    let clean = |s: &str| -> Option<String> {
        let s = s.trim();
        (!s.is_empty()).then(|| server_text(s, key))
    };
    Refusal {
        what: what.to_string(),
        status,
        code: code.and_then(clean),
        message: message.and_then(clean),
        // Airtable's pause after a 429 is documented, not sent.
        retry_after: None,
    }
}

/// Only Airtable's bare `NOT_FOUND` counts: a 404 with a body of any other
/// shape (an unknown table, a proxy's page) must not read as "no such
/// record", or a misconfiguration would look like an empty table.
pub(super) fn is_record_not_found(e: &Refusal) -> bool {
    e.status == StatusCode::NOT_FOUND && e.code.as_deref() == Some("NOT_FOUND")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_as_a_list_or_as_text() {
        use serde_json::json;
        assert_eq!(groups(&json!(["a", " b ", "", 3])), ["a", "b"]);
        assert_eq!(groups(&json!("a, b,,c ")), ["a", "b", "c"]);
        assert!(groups(&json!(true)).is_empty());
    }

    #[test]
    fn error_bodies_of_every_shape_are_read() {
        let key = SecretString::from("k3y");
        let parse = |body: &str| refusal("GET /x", StatusCode::BAD_REQUEST, body.as_bytes(), &key);
        let e = parse(r#"{"error":{"type":"INVALID_FILTER_BY_FORMULA","message":"bad"}}"#);
        assert_eq!(e.code.as_deref(), Some("INVALID_FILTER_BY_FORMULA"));
        assert_eq!(e.message.as_deref(), Some("bad"));
        let e = parse(r#"{"error":"NOT_FOUND"}"#);
        assert_eq!(e.code.as_deref(), Some("NOT_FOUND"));
        let e = parse(r#"{"errors":[{"error":"RATE_LIMIT_REACHED","message":"slow down k3y"}]}"#);
        assert_eq!(e.code.as_deref(), Some("RATE_LIMIT_REACHED"));
        assert_eq!(e.message.as_deref(), Some("slow down [redacted]"));
        let e = parse("<html>bad gateway</html>");
        assert_eq!((e.code, e.message), (None, None));
    }
}
