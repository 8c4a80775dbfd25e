//! Rows kept on disk until all of a paged source has been read.

use super::rows::Row;
use serde_json::{Map, Value};
use std::io::{BufRead, Seek, Write};

/// Rows kept in an anonymous temporary file, one JSON object a line, so
/// that a source read in pages (`rosterd sync`) takes the memory of one
/// page and is applied only once all of it has been read. The operating
/// system removes the file when it is dropped, however the run ends.
pub(crate) struct Spool {
    file: std::io::BufWriter<std::fs::File>,
    rows: usize,
}

impl Spool {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Self {
            file: std::io::BufWriter::new(tempfile::tempfile()?),
            rows: 0,
        })
    }

    pub(crate) fn push(&mut self, fields: &Map<String, Value>) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.file, fields)?;
        self.file.write_all(b"\n")?;
        self.rows += 1;
        Ok(())
    }

    /// How many rows were pushed, and the rows from the start, numbered
    /// from 1. A row that cannot be read back ends them early, which
    /// [`super::import`] refuses before it prunes anything.
    pub(crate) fn into_rows(self) -> std::io::Result<(usize, impl Iterator<Item = Row> + Send)> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(std::io::SeekFrom::Start(0))?;
        let rows = std::io::BufReader::new(file)
            .lines()
            .enumerate()
            .map_while(|(i, line)| {
                let fields = serde_json::from_str(&line.ok()?).ok()?;
                Some(Row {
                    line: i + 1,
                    fields,
                })
            });
        Ok((self.rows, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_spool_gives_back_what_it_was_given() {
        let mut spool = Spool::new().unwrap();
        let people = [
            serde_json::json!({"id": "recA", "groups": ["a\nb"]}),
            serde_json::json!({"id": "recB", "name": "B \u{2028}"}),
        ];
        for p in &people {
            spool.push(p.as_object().unwrap()).unwrap();
        }
        let (n, rows) = spool.into_rows().unwrap();
        let rows: Vec<(usize, Value)> = rows.map(|r| (r.line, Value::Object(r.fields))).collect();
        assert_eq!(n, 2);
        assert_eq!(rows, [(1, people[0].clone()), (2, people[1].clone())]);
    }
}
