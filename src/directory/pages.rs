//! The whole table, a page at a time.

use super::{AirtableDirectory, DirectoryError, DirectoryRecord};
use std::time::Duration;
use tokio::time::Instant;

/// A listing of the whole table; each page is asked for only when the one
/// before has been taken.
pub(crate) struct Pages<'a> {
    directory: &'a AirtableDirectory,
    timeout: Duration,
    offset: Option<String>,
    done: bool,
}

impl<'a> Pages<'a> {
    /// Every record of `directory`'s table, a page at a time (for `rosterd
    /// sync`); each page may take `timeout`.
    pub(crate) fn new(directory: &'a AirtableDirectory, timeout: Duration) -> Self {
        Self {
            directory,
            timeout,
            offset: None,
            done: false,
        }
    }

    /// The next page, or `None` after the last.
    pub(crate) async fn next_page(
        &mut self,
    ) -> Result<Option<Vec<DirectoryRecord>>, DirectoryError> {
        if self.done {
            return Ok(None);
        }
        let deadline = Instant::now() + self.timeout;
        let (page, next) = self
            .directory
            .list_page(self.offset.as_deref(), deadline)
            .await?;
        self.done = next.is_none();
        self.offset = next;
        Ok(Some(page))
    }
}
