//! Cursor paging: a list answers one page and a cursor for the next.
//! Clients pass cursors back unchanged, but every string of a cursor's
//! documented shape (`openapi.yaml`: `IdCursor`, `EventCursor`) is a valid
//! position, so the spec can say exactly which cursors are accepted: one
//! that names no row just starts the page there.

use serde::Serialize;

/// Items per page when the caller does not say.
pub(crate) const DEFAULT_LIMIT: i64 = 50;
/// The largest page a caller may ask for.
pub(crate) const MAX_LIMIT: i64 = 500;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page<T> {
    pub(crate) items: Vec<T>,
    /// Pass back as `cursor` for the next page; `null` on the last one.
    pub(crate) next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only says
    /// that another page exists; the cursor points after the last kept row.
    pub(crate) fn from_rows(
        mut rows: Vec<T>,
        limit: i64,
        cursor_of: impl Fn(&T) -> String,
    ) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = more.then(|| rows.last().map(cursor_of)).flatten();
        Self {
            items: rows,
            next_cursor,
        }
    }
}

/// `limit` from a query string: 1 to `max`, `default` when absent.
pub(crate) fn parse_limit(raw: Option<&str>, default: i64, max: i64) -> Result<i64, String> {
    match raw {
        None => Ok(default),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("limit must be a whole number from 1 to {max}")),
        },
    }
}

/// A listing's `limit` parameter: [`DEFAULT_LIMIT`] when absent, at most
/// [`MAX_LIMIT`].
pub(crate) fn listing_limit(raw: Option<&str>) -> Result<i64, super::AdminError> {
    parse_limit(raw, DEFAULT_LIMIT, MAX_LIMIT).map_err(super::AdminError::BadInput)
}

pub(crate) const BAD_CURSOR: &str = "cursor is not one this service issued";

/// 1 to `max` ASCII digits, as a number (no sign, no spaces).
pub(crate) fn parse_digits(s: &str, max: usize) -> Option<i64> {
    (1..=max)
        .contains(&s.len())
        .then_some(())
        .filter(|()| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|()| s.parse().ok())
}

/// A cursor over rows ordered by a numeric id, newest first: the last id
/// seen, 1 to 18 digits (`IdCursor`).
pub(crate) fn parse_id_cursor(raw: Option<&str>) -> Result<Option<i64>, String> {
    raw.map(|c| parse_digits(c, 18).ok_or_else(|| BAD_CURSOR.to_owned()))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_say_whether_more_follow() {
        let p = Page::from_rows(vec![5, 4, 3], 2, |n| n.to_string());
        assert_eq!(p.items, vec![5, 4]);
        assert_eq!(p.next_cursor.as_deref(), Some("4"));
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
        assert_eq!(parse_id_cursor(Some("0")), Ok(Some(0)));
        assert_eq!(
            parse_id_cursor(Some("999999999999999999")),
            Ok(Some(999_999_999_999_999_999))
        );
        for bad in [
            "",
            "abc",
            "+5",
            "-1",
            " 1",
            "1 ",
            "1234567890123456789",
            "\0",
        ] {
            assert!(parse_id_cursor(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
