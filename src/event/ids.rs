//! The values an event is made of, each checked when it is made: ids,
//! the canonical email, the event type and the profile status.

use serde::Serialize;
use std::fmt;
use validator::ValidateEmail;

const MAX_EVENT_ID: usize = 128;
const MAX_RECORD_ID: usize = 64;
const MAX_EMAIL: usize = 254;

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// `eventId`: 1–128 chars of `A-Z a-z 0-9 . _ : -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(String);
string_newtype!(EventId);

impl EventId {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > MAX_EVENT_ID {
            return Err(format!("must be 1 to {MAX_EVENT_ID} characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err("may contain only A-Z a-z 0-9 . _ : -".into());
        }
        Ok(Self(s.to_owned()))
    }
}

/// `user.id`: the upstream record id, 1–64 chars of `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(String);
string_newtype!(RecordId);

impl RecordId {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > MAX_RECORD_ID {
            return Err(format!("must be 1 to {MAX_RECORD_ID} characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        {
            return Err("may contain only A-Z a-z 0-9 _ -".into());
        }
        Ok(Self(s.to_owned()))
    }
}

/// A canonical email: trimmed, lower-cased, syntactically valid, ≤ 254 chars.
/// A person *is* one of these (docs/contract.md §4).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);
string_newtype!(Email);

impl Email {
    pub fn parse(s: &str) -> Result<Self, String> {
        let canonical = s.trim().to_lowercase();
        if canonical.is_empty() {
            return Err("must not be empty".into());
        }
        if canonical.chars().count() > MAX_EMAIL {
            return Err(format!("must be at most {MAX_EMAIL} characters"));
        }
        if !canonical.validate_email() {
            return Err("must be a valid email address".into());
        }
        Ok(Self(canonical))
    }

    /// For values read back from our own database, which only ever holds
    /// canonical emails written through [`Email::parse`].
    pub(crate) fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Created,
    Updated,
    Deleted,
}

impl EventType {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        match s {
            "user.created" => Ok(Self::Created),
            "user.updated" => Ok(Self::Updated),
            "user.deleted" => Ok(Self::Deleted),
            _ => Err("must be user.created, user.updated or user.deleted".into()),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Created => "user.created",
            Self::Updated => "user.updated",
            Self::Deleted => "user.deleted",
        }
    }
}

/// The profile's own status; `deleted` is never sent, it is derived from the
/// deletion register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileStatus {
    Active,
    Disabled,
}

impl ProfileStatus {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            _ => Err("must be active or disabled".into()),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}
