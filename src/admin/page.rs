//! Cursor paging: a list answers one page and an opaque cursor for the
//! next. Cursors are base64url text so clients treat them as tokens, not
//! as something to build.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

/// Items per page when the caller does not say.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest page a caller may ask for.
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only says
    /// that another page exists; the cursor points after the last kept row.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = more
            .then(|| rows.last().map(|r| URL_SAFE_NO_PAD.encode(cursor_of(r))))
            .flatten();
        Self {
            items: rows,
            next_cursor,
        }
    }
}

/// `limit` from a query string: 1 to `max`, `default` when absent.
pub fn parse_limit(raw: Option<&str>, default: i64, max: i64) -> Result<i64, String> {
    match raw {
        None => Ok(default),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("limit must be a whole number from 1 to {max}")),
        },
    }
}

/// The text inside a cursor this service issued.
pub fn decode_cursor(raw: &str) -> Result<String, String> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| "cursor is not one this service issued".to_owned())
}

/// A cursor over rows ordered by a numeric id, newest first.
pub fn parse_id_cursor(raw: Option<&str>) -> Result<Option<i64>, String> {
    raw.map(|c| {
        decode_cursor(c)?
            .parse::<i64>()
            .map_err(|_| "cursor is not one this service issued".to_owned())
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_say_whether_more_follow() {
        let p = Page::from_rows(vec![5, 4, 3], 2, |n| n.to_string());
        assert_eq!(p.items, vec![5, 4]);
        assert_eq!(parse_id_cursor(p.next_cursor.as_deref()), Ok(Some(4)));
        let last = Page::from_rows(vec![2, 1], 2, |n| n.to_string());
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(parse_limit(None, 50, 500), Ok(50));
        assert_eq!(parse_limit(Some("500"), 50, 500), Ok(500));
        for bad in ["0", "501", "-1", "ten", "1.5", ""] {
            assert!(parse_limit(Some(bad), 50, 500).is_err(), "{bad}");
        }
        assert!(parse_id_cursor(Some("not base64!")).is_err());
        assert!(parse_id_cursor(Some(&URL_SAFE_NO_PAD.encode("abc"))).is_err());
    }
}
