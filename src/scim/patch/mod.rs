//! PATCH (RFC 7644 §3.5.2) applied to a resource's writable attributes as
//! JSON; the result is then read like a PUT body, so PATCH, PUT and POST
//! share one parser and one set of rules.
//!
//! Accepted as real clients send it: `op` in any case; no `path` with a
//! map value, including dotted keys (`"name.givenName"`); `add` on a
//! single-valued attribute replaces it; paths with a value filter
//! (`emails[type eq "work"].value`). Unknown attributes are ignored;
//! read-only ones (`id`, `meta`, `groups`) are a `mutability` error.

use super::error::ScimError;
use crate::filter::{attr_path, Filter};
use serde_json::{Map, Value};

/// Most operations in one PATCH.
const MAX_OPERATIONS: usize = 1000;

pub(crate) const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Add,
    Replace,
    Remove,
}

#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub(crate) op: OpKind,
    pub(crate) path: Option<String>,
    pub(crate) value: Option<Value>,
}

/// The attributes of one resource type, for resolving names and paths.
pub(crate) struct Schema {
    /// Writable attributes: (canonical name, sub-attributes if complex,
    /// multi-valued).
    pub(crate) attrs: &'static [(&'static str, &'static [&'static str], bool)],
    pub(crate) read_only: &'static [&'static str],
}

/// The operations of a PATCH body.
pub(crate) fn operations(body: &Map<String, Value>) -> Result<Vec<Operation>, ScimError> {
    super::user::check_schemas(body, PATCH_SCHEMA)?;
    let Some(Value::Array(ops)) = super::user::get(body, "Operations") else {
        return Err(ScimError::invalid_syntax(
            "\"Operations\" must be an array of operations",
        ));
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "at most {MAX_OPERATIONS} operations per request"
        )));
    }
    ops.iter()
        .map(|o| {
            let Value::Object(o) = o else {
                return Err(ScimError::invalid_syntax(
                    "each operation must be an object",
                ));
            };
            let op = match super::user::get(o, "op").and_then(Value::as_str) {
                Some(s) if s.eq_ignore_ascii_case("add") => OpKind::Add,
                Some(s) if s.eq_ignore_ascii_case("replace") => OpKind::Replace,
                Some(s) if s.eq_ignore_ascii_case("remove") => OpKind::Remove,
                _ => {
                    return Err(ScimError::invalid_syntax(
                        "\"op\" must be add, replace or remove",
                    ))
                }
            };
            let path = match super::user::get(o, "path") {
                None => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(s.trim().to_owned()),
                Some(_) => return Err(ScimError::invalid_path("\"path\" must be a string")),
            };
            let value = super::user::get(o, "value").cloned();
            if op != OpKind::Remove && value.is_none() {
                return Err(ScimError::invalid_syntax(format!(
                    "{op:?} needs a \"value\""
                )));
            }
            Ok(Operation { op, path, value })
        })
        .collect()
}

/// A parsed PATCH path.
#[derive(Debug)]
struct Target {
    attr: &'static str,
    multi: bool,
    filter: Option<Filter>,
    sub: Option<&'static str>,
}

enum Resolved {
    Target(Target),
    /// An attribute this resource does not keep: the operation is ignored.
    Ignored,
}

fn resolve(schema: &Schema, path: &str) -> Result<Resolved, ScimError> {
    let (head, filter, tail) = match path.find('[') {
        Some(open) => {
            let close = path
                .rfind(']')
                .filter(|&c| c > open)
                .ok_or_else(|| ScimError::invalid_path(format!("{path:?}: unclosed \"[\"")))?;
            let filter = Filter::parse(&path[open + 1..close])
                .map_err(|e| ScimError::invalid_path(format!("{path:?}: the filter {e}")))?;
            let tail = &path[close + 1..];
            let tail = match tail.strip_prefix('.') {
                Some(t) => Some(t),
                None if tail.is_empty() => None,
                None => return Err(ScimError::invalid_path(format!("{path:?} is not a path"))),
            };
            (&path[..open], Some(filter), tail)
        }
        None => (path, None, None),
    };
    let p = match attr_path(head) {
        Ok(p) => p,
        // An extension's attribute: not kept, not an error.
        Err(_) if head.contains(':') => return Ok(Resolved::Ignored),
        Err(e) => return Err(ScimError::invalid_path(e)),
    };
    if schema
        .read_only
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&p.attr))
    {
        return Err(ScimError::mutability(format!("{path:?} is read-only")));
    }
    let Some(&(attr, subs, multi)) = schema
        .attrs
        .iter()
        .find(|(a, _, _)| a.eq_ignore_ascii_case(&p.attr))
    else {
        return Ok(Resolved::Ignored);
    };
    let sub_name = match (p.sub.as_deref(), tail) {
        (Some(_), Some(_)) => {
            return Err(ScimError::invalid_path(format!("{path:?} is not a path")))
        }
        (Some(s), None) | (None, Some(s)) => Some(s),
        (None, None) => None,
    };
    let sub = match sub_name {
        None => None,
        Some(s) => match subs.iter().copied().find(|k| k.eq_ignore_ascii_case(s)) {
            Some(k) => Some(k),
            None => return Ok(Resolved::Ignored),
        },
    };
    if filter.is_some() && !multi {
        return Err(ScimError::invalid_path(format!(
            "{path:?}: a value filter needs a multi-valued attribute"
        )));
    }
    Ok(Resolved::Target(Target {
        attr,
        multi,
        filter,
        sub,
    }))
}

/// Applies `ops` in order to `res` (canonical attribute names).
pub(crate) fn apply(
    schema: &Schema,
    res: &mut Map<String, Value>,
    ops: &[Operation],
) -> Result<(), ScimError> {
    for op in ops {
        match &op.path {
            None => apply_pathless(schema, res, op)?,
            Some(path) => match resolve(schema, path)? {
                Resolved::Ignored => {}
                Resolved::Target(t) => apply_at(res, &t, op.op, op.value.as_ref())?,
            },
        }
    }
    Ok(())
}

/// No path: `value` is a map of attribute (or dotted sub-attribute) to value.
fn apply_pathless(
    schema: &Schema,
    res: &mut Map<String, Value>,
    op: &Operation,
) -> Result<(), ScimError> {
    if op.op == OpKind::Remove {
        return Err(ScimError::no_target("remove needs a \"path\""));
    }
    let Some(Value::Object(values)) = &op.value else {
        return Err(ScimError::invalid_syntax(
            "without a \"path\", \"value\" must be an object of attributes",
        ));
    };
    for (key, value) in values {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        match resolve(schema, key) {
            Ok(Resolved::Ignored) => {}
            Ok(Resolved::Target(t)) => {
                // A complex value without a path merges into the attribute
                // (RFC 7644 §3.5.2.1 "add"), so `{"name": {"givenName": …}}`
                // keeps the other name parts.
                match (t.sub, value) {
                    (None, Value::Object(parts)) if !t.multi => {
                        for (k, v) in parts {
                            let sub = Target {
                                attr: t.attr,
                                multi: false,
                                filter: None,
                                sub: schema.attrs.iter().find(|(a, _, _)| *a == t.attr).and_then(
                                    |(_, subs, _)| {
                                        subs.iter().copied().find(|s| s.eq_ignore_ascii_case(k))
                                    },
                                ),
                            };
                            if sub.sub.is_some() {
                                apply_at(res, &sub, OpKind::Replace, Some(v))?;
                            }
                        }
                    }
                    _ => apply_at(res, &t, op.op, Some(value))?,
                }
            }
            // Read-only attributes in a pathless map are ignored: clients
            // echo whole resources back.
            Err(e) if e.scim_type == Some("mutability") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn apply_at(
    res: &mut Map<String, Value>,
    t: &Target,
    op: OpKind,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if !t.multi {
        return apply_single(res, t, op, value);
    }
    let items = match res.get(t.attr) {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let selected: Vec<bool> = items
        .iter()
        .map(|item| t.filter.as_ref().is_none_or(|f| f.matches(item)))
        .collect();
    let new_items: Vec<Value> = match (op, &t.filter, t.sub) {
        (OpKind::Remove, None, None) => match value {
            // `{"op": "remove", "path": "members", "value": [{"value": id}]}`
            // (Entra ID): remove those elements only.
            Some(Value::Array(which)) => items
                .into_iter()
                .filter(|item| !which.iter().any(|w| same_value(item, w)))
                .collect(),
            _ => Vec::new(),
        },
        (OpKind::Remove, _, None) => items
            .into_iter()
            .zip(&selected)
            .filter(|(_, s)| !**s)
            .map(|(i, _)| i)
            .collect(),
        (OpKind::Remove, _, Some(sub)) => edit_selected(items, &selected, |o| {
            o.remove(sub);
        }),
        (OpKind::Add, None, None) => {
            let mut out = items;
            for v in as_list(value) {
                if !out.iter().any(|i| same_value(i, &v)) {
                    out.push(v);
                }
            }
            out
        }
        (OpKind::Replace, None, None) => as_list(value),
        (_, Some(_), None) => {
            if !selected.iter().any(|s| *s) {
                return Err(ScimError::no_target("the value filter matches no element"));
            }
            let Some(Value::Object(patch)) = value else {
                return Err(ScimError::invalid_value("the value must be an object"));
            };
            edit_selected(items, &selected, |o| {
                o.extend(patch.iter().map(|(k, v)| (k.clone(), v.clone())));
            })
        }
        // Add or replace of `attr[filter].sub`.
        (_, filter, Some(sub)) => {
            let value = value.cloned().unwrap_or(Value::Null);
            if filter.is_none() || selected.iter().any(|s| *s) {
                edit_selected(items, &selected, |o| {
                    o.insert(sub.to_owned(), value.clone());
                })
            } else {
                // Entra ID: `emails[type eq "work"].value` on a user without
                // one adds it, when the filter says what the new one is.
                let Some(Filter::Compare(p, crate::filter::Op::Eq, crate::filter::Literal::Str(s))) =
                    filter.as_ref()
                else {
                    return Err(ScimError::no_target("the value filter matches no element"));
                };
                let mut elem = Map::new();
                elem.insert(
                    p.sub.clone().unwrap_or_else(|| p.attr.clone()),
                    Value::String(s.clone()),
                );
                elem.insert(sub.to_owned(), value);
                let mut out = items;
                out.push(Value::Object(elem));
                out
            }
        }
    };
    if new_items.is_empty() {
        res.remove(t.attr);
    } else {
        res.insert(t.attr.to_owned(), Value::Array(new_items));
    }
    Ok(())
}

/// `items` with `change` made to each selected element (an object).
fn edit_selected(
    items: Vec<Value>,
    selected: &[bool],
    change: impl Fn(&mut Map<String, Value>),
) -> Vec<Value> {
    items
        .into_iter()
        .zip(selected)
        .map(|(mut item, s)| {
            if let (true, Value::Object(o)) = (*s, &mut item) {
                change(o);
            }
            item
        })
        .collect()
}

fn apply_single(
    res: &mut Map<String, Value>,
    t: &Target,
    op: OpKind,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    match (t.sub, op) {
        (None, OpKind::Remove) => {
            res.remove(t.attr);
        }
        (None, _) => {
            res.insert(t.attr.to_owned(), value.cloned().unwrap_or(Value::Null));
        }
        (Some(sub), op) => {
            let entry = res
                .entry(t.attr.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let o = entry.as_object_mut().expect("made an object above");
            if op == OpKind::Remove {
                o.remove(sub);
            } else {
                o.insert(sub.to_owned(), value.cloned().unwrap_or(Value::Null));
            }
            if o.is_empty() {
                res.remove(t.attr);
            }
        }
    }
    Ok(())
}

fn as_list(value: Option<&Value>) -> Vec<Value> {
    match value {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(v) => vec![v.clone()],
    }
}

/// Two elements are the same when their `value`s are (case-insensitively).
fn same_value(a: &Value, b: &Value) -> bool {
    let v = |x: &Value| {
        x.as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("value")))
            .map(|(_, v)| v.clone())
    };
    match (v(a), v(b)) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.eq_ignore_ascii_case(&y),
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests;
