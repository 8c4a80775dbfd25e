//! The people directory that login read-through falls back to when the
//! roster does not know an email or id (docs/contract.md §6). Airtable is the only
//! directory so far; the types here say nothing about it, so callers do not
//! either.

pub(crate) mod airtable;
mod pages;

pub use airtable::{AirtableConfig, AirtableDirectory, Budget, FieldNames};
pub(crate) use pages::Pages;

/// One person as the directory holds them, before any validation: the
/// caller decides what a missing email or an unknown status means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRecord {
    /// The directory's own record id (Airtable: `rec` + 14 characters).
    pub id: String,
    /// Trimmed; `None` when the field is empty or not text.
    pub email: Option<String>,
    pub name: Option<String>,
    /// As the directory gives it ("active", "disabled" or anything else).
    /// A value that is not text comes as its JSON text, so that an odd
    /// field type reads as an unknown status rather than as no status.
    pub status: Option<String>,
    pub groups: Vec<String>,
}

impl DirectoryRecord {
    /// The record as the fields of a roster row / event user.
    pub(crate) fn to_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut user = serde_json::Map::new();
        user.insert("id".into(), serde_json::json!(self.id));
        if let Some(e) = &self.email {
            user.insert("email".into(), serde_json::json!(e));
        }
        if let Some(n) = &self.name {
            user.insert("name".into(), serde_json::json!(n));
        }
        if let Some(s) = &self.status {
            user.insert("status".into(), serde_json::json!(s.to_ascii_lowercase()));
        }
        user.insert("groups".into(), serde_json::json!(self.groups));
        user
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Worth trying again later: 5xx, timeouts, connection errors, a rate
    /// limit whose pause would pass the caller's deadline.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// Trying again will not help until someone changes the configuration
    /// or the directory: 401/403, unknown base or table, a formula or field
    /// Airtable refuses, answers that make no sense.
    #[error("directory rejected the request: {0}")]
    Rejected(String),
    /// Not sent: more callers are in line for the directory's request rate
    /// than would get a turn in the time the caller may wait.
    #[error("directory busy; retry in {retry_after:?}")]
    Busy { retry_after: std::time::Duration },
}
