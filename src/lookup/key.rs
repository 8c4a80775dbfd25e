//! What the login service asks the lookup about.

use crate::event::{Email, RecordId};

/// What the login service asks about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Email(Email),
    Id(RecordId),
}
