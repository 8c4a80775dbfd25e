//! The rows of a roster file, read as they are taken: CSV or a YAML
//! block list, a person at a time.

use serde_json::{Map, Value};
use std::io::BufRead;

/// One row of a roster file, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: usize,
    pub fields: Map<String, Value>,
}

/// The file could not be read as a roster at all: nothing is applied.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// The rows of a roster file, read as they are taken: `.csv` (a header
/// row; groups separated by `;` or `|`) or `.yaml`/`.yml` (a block list of
/// mappings). `name` picks the format by its extension.
pub fn rows<'a>(
    name: &str,
    input: impl BufRead + Send + 'a,
) -> Result<Box<dyn Iterator<Item = Result<Row, Malformed>> + Send + 'a>, Malformed> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        Ok(Box::new(CsvRows::new(input)?))
    } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        Ok(Box::new(YamlRows::new(input)))
    } else {
        Err(Malformed(format!(
            "{name}: expected a .yaml, .yml or .csv file"
        )))
    }
}

/// A YAML roster read a person at a time, so a file of any length takes
/// the memory of one batch. The file must be one block list with each
/// item's `- ` in column 0: that lets lines alone say where an item ends,
/// and each item is parsed on its own (so an alias cannot name an anchor
/// in another item).
pub(crate) struct YamlRows<R: BufRead> {
    lines: std::io::Lines<R>,
    /// The number of the last line read.
    read: usize,
    /// The first line of the next item, met while reading the one before.
    ahead: Option<(usize, String)>,
    /// Past the optional `---`: another one would be a second document.
    begun: bool,
    done: bool,
}

/// What a line of a block list is, by its first characters.
#[derive(Debug, PartialEq)]
enum YamlLine {
    /// `- …` or `-` in column 0.
    Item,
    /// Blank, or only a comment.
    Blank,
    /// Part of the current item.
    Indented,
    DocumentStart,
    DocumentEnd,
    /// Anything else in column 0: not a block list.
    Other,
}

impl YamlLine {
    fn of(line: &str) -> Self {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            Self::Blank
        } else if trimmed.len() < line.len() {
            Self::Indented
        } else if line
            .strip_prefix('-')
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
        {
            Self::Item
        } else if Self::is_marker(line, "---") {
            Self::DocumentStart
        } else if Self::is_marker(line, "...") {
            Self::DocumentEnd
        } else {
            Self::Other
        }
    }

    /// `---` or `...` alone, or followed by a comment.
    fn is_marker(line: &str, marker: &str) -> bool {
        line.strip_prefix(marker)
            .is_some_and(|rest| rest.trim_start().is_empty() || rest.trim_start().starts_with('#'))
    }
}

impl<R: BufRead> YamlRows<R> {
    pub(crate) fn new(input: R) -> Self {
        Self {
            lines: input.lines(),
            read: 0,
            ahead: None,
            begun: false,
            done: false,
        }
    }

    fn read_line(&mut self) -> Result<Option<String>, Malformed> {
        let Some(line) = self.lines.next() else {
            return Ok(None);
        };
        self.read += 1;
        let line = line.map_err(|e| Malformed(format!("line {}: {e}", self.read)))?;
        // A byte order mark is not part of the first line's text.
        Ok(Some(match line.strip_prefix('\u{feff}') {
            Some(rest) if self.read == 1 => rest.to_owned(),
            _ => line,
        }))
    }

    /// The next item's first line and text, up to the line before the
    /// next item (or the end of the document).
    fn next_item(&mut self) -> Result<Option<(usize, String)>, Malformed> {
        let mut item = self.ahead.take();
        while !self.done {
            let Some(mut line) = self.read_line()? else {
                self.done = true;
                break;
            };
            let kind = YamlLine::of(&line);
            line.push('\n');
            match (&kind, &mut item) {
                (YamlLine::Item, Some(_)) => {
                    self.ahead = Some((self.read, line));
                    break;
                }
                (YamlLine::Item, None) => item = Some((self.read, line)),
                (YamlLine::Blank, None) => {}
                (YamlLine::Blank | YamlLine::Indented, Some((_, text))) => text.push_str(&line),
                (YamlLine::DocumentStart, _) if !self.begun => {}
                (YamlLine::DocumentEnd, _) => self.expect_no_more()?,
                _ => return Err(not_a_list(self.read, &line)),
            }
            self.begun |= kind != YamlLine::Blank;
        }
        Ok(item)
    }

    /// After `...`: comments and blank lines only, since a second
    /// document would be silently left out.
    fn expect_no_more(&mut self) -> Result<(), Malformed> {
        while let Some(line) = self.read_line()? {
            if YamlLine::of(&line) != YamlLine::Blank {
                return Err(Malformed(format!(
                    "line {}: only one YAML document is read, and it ended with `...`",
                    self.read
                )));
            }
        }
        self.done = true;
        Ok(())
    }
}

fn not_a_list(line: usize, text: &str) -> Malformed {
    let hint = match YamlLine::of(text) {
        YamlLine::Indented => " (items are not indented)",
        YamlLine::DocumentStart => " (only one YAML document is read)",
        _ if text.starts_with('[') => " (not a flow list `[...]`)",
        _ => "",
    };
    Malformed(format!(
        "line {line}: the YAML must be a list of people, one `- ` item per person at the start of a line{hint}"
    ))
}

/// One item's text (a one-item list), starting on line `start` of the file.
fn parse_yaml_item(start: usize, text: &str) -> Result<Row, Malformed> {
    let mut items: Vec<Value> = serde_norway::from_str(text).map_err(|e| {
        Malformed(format!(
            "not valid YAML in the person on line {start}: {}",
            shift_lines(&e.to_string(), start - 1)
        ))
    })?;
    match (items.pop(), items.is_empty()) {
        (Some(Value::Object(fields)), true) => Ok(Row {
            line: start,
            fields,
        }),
        _ => Err(Malformed(format!(
            "line {start}: each person must be a mapping"
        ))),
    }
}

/// The parser numbers lines from the item's start; `line N column`
/// becomes the file's line.
fn shift_lines(message: &str, by: usize) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("line ") {
        let (head, tail) = rest.split_at(at + "line ".len());
        out.push_str(head);
        let digits = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        rest = match tail[..digits].parse::<usize>() {
            Ok(n) if tail[digits..].starts_with(" column") => {
                out.push_str(&(n + by).to_string());
                &tail[digits..]
            }
            _ => tail,
        };
    }
    out.push_str(rest);
    out
}

impl<R: BufRead> Iterator for YamlRows<R> {
    type Item = Result<Row, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = match self.next_item() {
            Ok(item) => item.map(|(start, text)| parse_yaml_item(start, &text)),
            Err(e) => Some(Err(e)),
        };
        // Nothing after a malformed item is read: the file is refused.
        if matches!(row, Some(Err(_))) {
            self.done = true;
            self.ahead = None;
        }
        row
    }
}

/// A CSV roster read row by row, so a file of any length takes the memory
/// of one batch. Its header is checked when it is opened.
pub(crate) struct CsvRows<R: std::io::Read> {
    records: csv::StringRecordsIntoIter<R>,
    headers: Vec<String>,
}

impl<R: std::io::Read> CsvRows<R> {
    pub(crate) fn new(input: R) -> Result<Self, Malformed> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(input);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| Malformed(format!("not valid CSV: {e}")))?
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        for required in ["id", "email"] {
            if !headers.iter().any(|h| h == required) {
                return Err(Malformed(format!(
                    "the CSV header has no `{required}` column"
                )));
            }
        }
        Ok(Self {
            records: reader.into_records(),
            headers,
        })
    }
}

impl<R: std::io::Read> Iterator for CsvRows<R> {
    type Item = Result<Row, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = match self.records.next()? {
            Ok(r) => r,
            Err(e) => return Some(Err(Malformed(format!("not valid CSV: {e}")))),
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let mut fields = Map::new();
        for (h, v) in self.headers.iter().zip(record.iter()) {
            if v.is_empty() {
                continue;
            }
            let value = if h == "groups" {
                Value::Array(
                    v.split([';', '|'])
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(|g| Value::String(g.to_owned()))
                        .collect(),
                )
            } else {
                Value::String(v.to_owned())
            };
            fields.insert(h.clone(), value);
        }
        Some(Ok(Row { line, fields }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Vec<(usize, Value)>, String> {
        YamlRows::new(text.as_bytes())
            .map(|r| r.map(|row| (row.line, Value::Object(row.fields))))
            .collect::<Result<_, _>>()
            .map_err(|e| e.0)
    }

    #[test]
    fn items_start_at_dashes_in_column_0_and_keep_their_lines() {
        let text = "\
# the roster
---

- id: recA
  email: a@x.io
  # groups follow
  groups:
    - eng

    - admins
-   id: recB
    email: b@x.io
    note: |
      two lines
      - not an item
# between items
- {id: recC, email: c@x.io}
-
  id: recD
...
# done
";
        let rows = yaml(text).unwrap();
        assert_eq!(
            rows,
            [
                (
                    4,
                    serde_json::json!({"id": "recA", "email": "a@x.io", "groups": ["eng", "admins"]})
                ),
                (
                    11,
                    serde_json::json!({"id": "recB", "email": "b@x.io", "note": "two lines\n- not an item\n"})
                ),
                (17, serde_json::json!({"id": "recC", "email": "c@x.io"})),
                (18, serde_json::json!({"id": "recD"})),
            ]
        );
    }

    #[test]
    fn nothing_but_comments_and_markers_is_no_rows() {
        for text in [
            "",
            "\n\n",
            "# nobody yet\n",
            "---\n",
            "--- # empty\n...\n",
            "\u{feff}# bom\n",
        ] {
            assert_eq!(yaml(text), Ok(vec![]), "{text:?}");
        }
        assert_eq!(yaml("\u{feff}- id: recA\n").unwrap()[0].0, 1);
    }

    #[test]
    fn anything_but_a_block_list_names_its_line() {
        for (text, needle) in [
            (
                "[{id: recA}]\n",
                "line 1: the YAML must be a list of people",
            ),
            (
                "# c\n[{id: recA}]\n",
                "line 2: the YAML must be a list of people",
            ),
            (
                "id: recA\nemail: a@x.io\n",
                "line 1: the YAML must be a list of people",
            ),
            ("  - id: recA\n", "(items are not indented)"),
            ("- id: recA\nid: recB\n", "line 2: the YAML must be a list"),
            (
                "- id: recA\n---\n- id: recB\n",
                "(only one YAML document is read)",
            ),
            (
                "- id: recA\n...\n- id: recB\n",
                "line 3: only one YAML document is read",
            ),
            (
                "- id: recA\n- recB\n",
                "line 2: each person must be a mapping",
            ),
            ("- id: recA\n-\n", "line 2: each person must be a mapping"),
        ] {
            let err = yaml(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_parse_error_names_the_line_in_the_file() {
        let text = "- id: recA\n- id: recB\n  email: [unclosed\n  name: B\n";
        let err = yaml(text).unwrap_err();
        assert!(
            err.starts_with("not valid YAML in the person on line 2: "),
            "{err}"
        );
        assert!(err.contains("at line 4 column"), "{err}");
        assert!(!err.contains("at line 2 column"), "{err}");
    }

    #[test]
    fn an_alias_cannot_reach_into_another_item() {
        let err = yaml("- &a {id: recA}\n- *a\n").unwrap_err();
        assert!(err.contains("unknown anchor at line 2"), "{err}");
    }

    #[test]
    fn rows_stop_at_the_first_malformed_item() {
        let mut rows = YamlRows::new("- id: recA\n- [x]\n- id: recC\n".as_bytes());
        assert!(rows.next().unwrap().is_ok());
        assert!(rows.next().unwrap().is_err());
        assert!(rows.next().is_none());
    }

    #[test]
    fn shift_lines_moves_only_positions() {
        assert_eq!(
            shift_lines(
                "x at line 2 column 3, while y at line 1 column 1 (line 7)",
                10
            ),
            "x at line 12 column 3, while y at line 11 column 1 (line 7)"
        );
    }
}
