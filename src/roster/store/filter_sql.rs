//! A [`Filter`] as SQL over the roster (`r`, a record) or SCIM groups
//! (`g`): attribute names map to fixed SQL from the table in [`column`],
//! every value is a bound parameter, so no part of a filter is spliced in.

use crate::filter::{parse_time, AttrPath, Filter, Literal, Op};
use sqlx::{Postgres, QueryBuilder};

/// A filter that names an attribute rosterd does not keep, or compares
/// one in a way its type does not allow (a 400 `invalidFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadFilter(pub(crate) String);

/// Where an attribute name is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Person,
    Group,
    /// Inside `emails[...]`: `e` is one address (a JSON object).
    Email,
    /// Inside `groups[...]` of a person: `gname` is one group name.
    PersonGroup,
    /// Inside `members[...]` of a group: `m` is one member row.
    Member,
}

/// What an attribute is in SQL.
enum Column {
    /// A text expression; `ci`: compared case-insensitively.
    Text {
        sql: &'static str,
        ci: bool,
    },
    Bool(&'static str),
    Time(&'static str),
    /// A multi-valued attribute: some element (named by the inner scope's
    /// alias) from the `from` set.
    Multi {
        from: &'static str,
        scope: Scope,
        default_sub: &'static str,
    },
    /// An attribute rosterd publishes but keeps no value of for this
    /// resource (always absent).
    Absent,
}

/// A record's `userName`: as a SCIM client sent it, else its email;
/// `lower()` of it is indexed (`roster_user_name_idx`).
pub(crate) const USER_NAME: &str = "coalesce(r.details->>'userName', r.email)";

/// A record's addresses: as a SCIM client sent them, or for a record from
/// another source its email as the one work address.
const EMAILS_FROM: &str = "jsonb_array_elements(case when r.details is null \
     then jsonb_build_array(jsonb_build_object('value', r.email, 'type', 'work', 'primary', true)) \
     else coalesce(r.details->'emails', '[]'::jsonb) end) e";

fn column(scope: Scope, dotted: &str) -> Option<Column> {
    use Column::*;
    Some(match (scope, dotted) {
        (Scope::Person, "id") => Text {
            sql: "r.id",
            ci: false,
        },
        (Scope::Person, "username") => Text {
            sql: USER_NAME,
            ci: true,
        },
        (Scope::Person, "externalid") => Text {
            sql: "(r.details->>'externalId')",
            ci: false,
        },
        (Scope::Person, "displayname") => Text {
            sql: "(case when r.details is null then r.name else r.details->>'displayName' end)",
            ci: true,
        },
        (Scope::Person, "name.formatted") => Text {
            sql:
                "(case when r.details is null then r.name else r.details->'name'->>'formatted' end)",
            ci: true,
        },
        (Scope::Person, "name.givenname") => Text {
            sql: "(r.details->'name'->>'givenName')",
            ci: true,
        },
        (Scope::Person, "name.familyname") => Text {
            sql: "(r.details->'name'->>'familyName')",
            ci: true,
        },
        (Scope::Person, "name.middlename") => Text {
            sql: "(r.details->'name'->>'middleName')",
            ci: true,
        },
        (Scope::Person, "name.honorificprefix") => Text {
            sql: "(r.details->'name'->>'honorificPrefix')",
            ci: true,
        },
        (Scope::Person, "name.honorificsuffix") => Text {
            sql: "(r.details->'name'->>'honorificSuffix')",
            ci: true,
        },
        (Scope::Person, "active") => Bool("(r.status = 'active')"),
        (Scope::Person, "meta.created") => Time("r.created_at"),
        (Scope::Person, "meta.lastmodified") => Time("r.updated_at"),
        (Scope::Person, "meta.resourcetype") => Text {
            sql: "'User'",
            ci: false,
        },
        (Scope::Person, "emails") => Multi {
            from: EMAILS_FROM,
            scope: Scope::Email,
            default_sub: "value",
        },
        (Scope::Person, "groups") => Multi {
            from: "unnest(r.groups) gname",
            scope: Scope::PersonGroup,
            default_sub: "value",
        },
        (Scope::Email, "value") => Text {
            sql: "(e->>'value')",
            ci: true,
        },
        (Scope::Email, "type") => Text {
            sql: "(e->>'type')",
            ci: true,
        },
        (Scope::Email, "display") => Text {
            sql: "(e->>'display')",
            ci: true,
        },
        (Scope::Email, "primary") => Bool("coalesce((e->>'primary')::boolean, false)"),
        (Scope::PersonGroup, "display") => Text {
            sql: "gname",
            ci: true,
        },
        (Scope::PersonGroup, "value") => Text {
            sql: "(select sg.id::text from scim_groups sg where sg.display_name = gname)",
            ci: true,
        },
        (Scope::PersonGroup, "type") => Absent,
        (Scope::Group, "id") => Text {
            sql: "g.id::text",
            ci: true,
        },
        (Scope::Group, "displayname") => Text {
            sql: "g.display_name",
            ci: true,
        },
        (Scope::Group, "externalid") => Text {
            sql: "g.external_id",
            ci: false,
        },
        (Scope::Group, "meta.created") => Time("g.created_at"),
        (Scope::Group, "meta.lastmodified") => Time("g.updated_at"),
        (Scope::Group, "meta.resourcetype") => Text {
            sql: "'Group'",
            ci: false,
        },
        (Scope::Group, "members") => Multi {
            from: "roster m",
            scope: Scope::Member,
            default_sub: "value",
        },
        (Scope::Member, "value") => Text {
            sql: "m.id",
            ci: false,
        },
        (Scope::Member, "display") => Text {
            sql: "coalesce(m.details->>'displayName', m.name, m.email)",
            ci: true,
        },
        (Scope::Member, "type") => Text {
            sql: "'User'",
            ci: false,
        },
        _ => return None,
    })
}

/// The condition every row of a scope's `from` set meets before any filter.
fn elem_guard(scope: Scope) -> &'static str {
    match scope {
        Scope::Member => "m.status <> 'deleted' and m.groups @> array[g.display_name]",
        _ => "true",
    }
}

fn resolve(scope: Scope, path: &AttrPath) -> Result<(Column, Option<String>), BadFilter> {
    let unknown = || BadFilter(format!("unknown attribute {:?}", path.dotted()));
    // Inside brackets, `emails[emails.type eq ...]` and `[type eq ...]` mean the same.
    let dotted = path.dotted();
    if let Some(c) = column(scope, &dotted) {
        return Ok((c, None));
    }
    if let Some(sub) = &path.sub {
        if let Some(Column::Multi { .. }) = column(scope, &path.attr) {
            return Ok((
                column(scope, &path.attr).ok_or_else(unknown)?,
                Some(sub.clone()),
            ));
        }
    }
    Err(unknown())
}

pub(super) fn push(
    q: &mut QueryBuilder<'_, Postgres>,
    f: &Filter,
    scope: Scope,
) -> Result<(), BadFilter> {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            q.push("(");
            push(q, a, scope)?;
            q.push(if matches!(f, Filter::And(..)) {
                ") and ("
            } else {
                ") or ("
            });
            push(q, b, scope)?;
            q.push(")");
        }
        Filter::Not(a) => {
            q.push("not coalesce((");
            push(q, a, scope)?;
            q.push("), false)");
        }
        Filter::Present(path) => {
            let (col, sub) = resolve(scope, path)?;
            push_present(q, col, sub)?;
        }
        Filter::Compare(path, op, lit) => {
            let (col, sub) = resolve(scope, path)?;
            push_compare(q, col, sub, *op, lit)?;
        }
        Filter::Elem { attr, filter, then } => {
            let path = AttrPath {
                attr: attr.clone(),
                sub: None,
            };
            let Column::Multi {
                from, scope: inner, ..
            } = resolve(scope, &path)?.0
            else {
                return Err(BadFilter(format!("{attr:?} is not multi-valued")));
            };
            q.push(format!(
                "exists (select 1 from {from} where {} and (",
                elem_guard(inner)
            ));
            push(q, filter, inner)?;
            q.push(")");
            if let Some(then) = then {
                q.push(" and (");
                push(q, then, inner)?;
                q.push(")");
            }
            q.push(")");
        }
    }
    Ok(())
}

fn push_present(
    q: &mut QueryBuilder<'_, Postgres>,
    col: Column,
    sub: Option<String>,
) -> Result<(), BadFilter> {
    match col {
        Column::Text { sql, .. } => q.push(format!("coalesce({sql} <> '', false)")),
        Column::Bool(_) | Column::Time(_) => q.push("true"),
        Column::Absent => q.push("false"),
        Column::Multi {
            from,
            scope,
            default_sub,
        } => {
            return push_some(
                q,
                from,
                scope,
                sub.as_deref().unwrap_or(default_sub),
                |q, inner| push_present(q, inner, None),
            )
        }
    };
    Ok(())
}

/// `exists (…)`: some element of a multi-valued attribute (its `from` set)
/// whose sub-attribute `sub` meets the condition `each` writes.
fn push_some(
    q: &mut QueryBuilder<'_, Postgres>,
    from: &str,
    scope: Scope,
    sub: &str,
    each: impl FnOnce(&mut QueryBuilder<'_, Postgres>, Column) -> Result<(), BadFilter>,
) -> Result<(), BadFilter> {
    let path = AttrPath {
        attr: sub.to_owned(),
        sub: None,
    };
    let (inner, _) = resolve(scope, &path)?;
    q.push(format!(
        "exists (select 1 from {from} where {} and ",
        elem_guard(scope)
    ));
    each(q, inner)?;
    q.push(")");
    Ok(())
}

/// `like` pattern characters in a value stand for themselves.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn push_compare(
    q: &mut QueryBuilder<'_, Postgres>,
    col: Column,
    sub: Option<String>,
    op: Op,
    lit: &Literal,
) -> Result<(), BadFilter> {
    let bad = |what: &str| Err(BadFilter(what.to_owned()));
    match col {
        Column::Multi {
            from,
            scope,
            default_sub,
        } => push_some(
            q,
            from,
            scope,
            sub.as_deref().unwrap_or(default_sub),
            |q, inner| push_compare(q, inner, None, op, lit),
        )?,
        Column::Absent => {
            q.push(if op == Op::Ne { "true" } else { "false" });
        }
        Column::Text { sql, ci } => {
            let value = match lit {
                Literal::Str(s) => s.clone(),
                Literal::Null if op == Op::Eq => {
                    q.push(format!("not coalesce({sql} <> '', false)"));
                    return Ok(());
                }
                Literal::Null if op == Op::Ne => {
                    q.push(format!("coalesce({sql} <> '', false)"));
                    return Ok(());
                }
                _ => return bad("a string attribute compares with a quoted string"),
            };
            let (lhs, value) = if ci {
                (format!("lower({sql})"), value.to_lowercase())
            } else {
                (sql.to_owned(), value)
            };
            match op {
                Op::Eq => q.push(format!("{lhs} = ")).push_bind(value),
                Op::Ne => q.push(format!("{lhs} is distinct from ")).push_bind(value),
                Op::Co | Op::Sw | Op::Ew => {
                    let pattern = match op {
                        Op::Co => format!("%{}%", like_escape(&value)),
                        Op::Sw => format!("{}%", like_escape(&value)),
                        _ => format!("%{}", like_escape(&value)),
                    };
                    q.push(format!("{lhs} like ")).push_bind(pattern)
                }
                Op::Gt => q.push(format!("{lhs} > ")).push_bind(value),
                Op::Ge => q.push(format!("{lhs} >= ")).push_bind(value),
                Op::Lt => q.push(format!("{lhs} < ")).push_bind(value),
                Op::Le => q.push(format!("{lhs} <= ")).push_bind(value),
            };
        }
        Column::Bool(sql) => {
            let Literal::Bool(b) = lit else {
                return bad("a boolean attribute compares with true or false");
            };
            match op {
                Op::Eq => q.push(format!("{sql} = ")).push_bind(*b),
                Op::Ne => q.push(format!("{sql} <> ")).push_bind(*b),
                _ => return bad("a boolean attribute takes only eq and ne"),
            };
        }
        Column::Time(sql) => {
            let at = match lit {
                Literal::Str(s) => match parse_time(s) {
                    Some(at) => at,
                    None => return bad("a dateTime attribute compares with an RFC 3339 timestamp"),
                },
                _ => return bad("a dateTime attribute compares with a quoted timestamp"),
            };
            let sym = match op {
                Op::Eq => "=",
                Op::Ne => "<>",
                Op::Gt => ">",
                Op::Ge => ">=",
                Op::Lt => "<",
                Op::Le => "<=",
                _ => return bad("a dateTime attribute takes eq, ne, gt, ge, lt and le"),
            };
            q.push(format!("{sql} {sym} ")).push_bind(at);
        }
    }
    Ok(())
}
