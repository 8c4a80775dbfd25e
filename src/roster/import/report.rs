//! What an import did, counted.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub line: usize,
    pub(crate) id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub created: u64,
    pub updated: u64,
    pub(crate) deleted: u64,
    pub unchanged: u64,
    pub rejected: Vec<Rejected>,
}

impl Report {
    /// The counters under `title` (e.g. "Pushing roster from roster.yaml").
    pub(crate) fn render(&self, title: &str, dry_run: bool) -> String {
        let mut out = format!(
            "  {title}\n\n  created: {}\n  updated: {}\n  deleted: {}\n  unchanged: {}\n  rejected: {}\n",
            self.created,
            self.updated,
            self.deleted,
            self.unchanged,
            self.rejected.len()
        );
        for r in &self.rejected {
            let id =
                r.id.as_deref()
                    .map(|i| format!(" ({i})"))
                    .unwrap_or_default();
            out.push_str(&format!("    line {}{id}: {}\n", r.line, r.reason));
        }
        out.push_str(if dry_run {
            "\n  Dry run: nothing was changed\n"
        } else {
            "\n  Complete\n"
        });
        out
    }
}
