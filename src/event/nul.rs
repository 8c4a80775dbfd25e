//! No string of an event may hold U+0000.

use super::FieldError;
use serde_json::Value;

/// Postgres stores neither the payload (`jsonb`) nor a `text` column with
/// U+0000 in it, so no string of the event may hold one: not a value, not
/// a key, not in a field rosterd otherwise ignores. Reported once per
/// place, unless that field already broke another rule.
pub(super) fn find_nul(v: &Value, path: &mut String, errors: &mut Vec<FieldError>) {
    const MESSAGE: &str = "must not contain U+0000 (NUL)";
    let report = |errors: &mut Vec<FieldError>, field: &str, message: &str| {
        if !errors.iter().any(|e| e.field == field) {
            errors.push(FieldError::new(field, message));
        }
    };
    match v {
        Value::String(s) if s.contains('\0') => report(errors, path, MESSAGE),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                find_nul(item, path, errors);
                path.truncate(len);
            }
        }
        Value::Object(obj) => {
            for (key, item) in obj {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.replace('\0', "\\u0000"));
                if key.contains('\0') {
                    report(errors, path, "is a key that contains U+0000 (NUL)");
                }
                find_nul(item, path, errors);
                path.truncate(len);
            }
        }
        _ => {}
    }
}
