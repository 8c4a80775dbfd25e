//! The words the database stores for states and kinds, as Rust enums: a
//! job's state, what provisioning did, a roster row's status, and an
//! event's source and outcome.
//!
//! Each word is spelt once, here, and matches the column's CHECK (or, for
//! the generated `roster.status` and the unchecked `action` columns, what
//! the schema and the code write). Reading a word that is not listed is a
//! decode error, never a silent default: a value this code does not know
//! means the schema moved ahead of it, and guessing would act on a wrong
//! state.
//!
//! This module imports nothing of the crate, so every layer may use it.

use serde::{Serialize, Serializer};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};
use std::fmt;
use std::str::FromStr;

/// A word the enum does not list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (known: {known})")]
pub struct Unknown {
    pub(crate) what: &'static str,
    pub(crate) value: String,
    pub(crate) known: &'static str,
}

/// An enum stored as `text`: `as_str`/`FromStr` are the one spelling;
/// `Display`, `Serialize` and the sqlx traits go through them.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub(crate) enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the schema lists them.
            // Not every enum lists its values outside the tests yet.
            #[allow(dead_code)]
            pub(crate) const ALL: [Self; [$($word),+].len()] = [$(Self::$variant),+];

            /// The values as an error message lists them.
            pub(crate) const NAMES: &'static str = concat_names!($($word),+);

            pub(crate) const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = Unknown;

            fn from_str(s: &str) -> Result<Self, Unknown> {
                match s {
                    $($word => Ok(Self::$variant),)+
                    _ => Err(Unknown {
                        what: $what,
                        value: s.to_owned(),
                        known: Self::NAMES,
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <str as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <str as Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for $name {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as Decode<Postgres>>::decode(value)?.parse()?)
            }
        }
    };
}

/// `"a, b, c"` from the words, at compile time.
macro_rules! concat_names {
    ($first:literal $(, $rest:literal)*) => {
        concat!($first $(, ", ", $rest)*)
    };
}

text_enum! {
    /// `provisioning_jobs.state`.
    ///
    /// Queries bind these words (`as_str`) except where a predicate is one
    /// that a partial index of `provisioning_jobs` is built on
    /// (`state = 'pending'`, `state = 'running'`, `state in ('pending',
    /// 'running')`; see migrations/): those are written out in the SQL,
    /// because the planner matches a partial index only against a
    /// predicate it can read in the query, never against a bound
    /// parameter, and an `on conflict ... where` must name its index's
    /// predicate.
    pub(crate) enum JobState ("job state") {
        /// Waiting for `run_at`.
        Pending = "pending",
        /// Claimed by a worker until `lease_until`.
        Running = "running",
        Done = "done",
        /// Out of attempts, or failed for good: an operator must retry it.
        Dead = "dead",
    }
}

text_enum! {
    /// What provisioning did for one person (`provisioning_jobs.last_action`,
    /// `provisioning_attempts.action`), counted by name.
    pub(crate) enum Action ("provisioning action") {
        Created = "created",
        Restored = "restored",
        Decommissioned = "decommissioned",
        Updated = "updated",
        Unchanged = "unchanged",
        /// An invitation job's: the SMTP server took the message.
        Sent = "sent",
    }
}

text_enum! {
    /// `provisioning_jobs.kind`: what a job does (see `outbox::Job`).
    pub(crate) enum JobKind ("job kind") {
        Provision = "provision",
        Invite = "invite",
    }
}

text_enum! {
    /// What an operator's token may do (`ADMIN_TOKENS`' `name:token:role`).
    pub(crate) enum OperatorRole ("operator role") {
        /// Everything.
        Operator = "operator",
        /// Read everything, change nothing.
        Viewer = "viewer",
    }
}

text_enum! {
    /// `invitations.state`.
    pub(crate) enum InviteState ("invitation state") {
        Pending = "pending",
        Accepted = "accepted",
        Expired = "expired",
        Revoked = "revoked",
    }
}

text_enum! {
    /// `roster.status`, generated from the two registers.
    pub(crate) enum RowStatus ("roster status") {
        Active = "active",
        Disabled = "disabled",
        Deleted = "deleted",
    }
}

text_enum! {
    /// `inbound_events.source`: which way an event came in.
    pub(crate) enum Source ("event source") {
        Webhook = "webhook",
        Replay = "replay",
        Readthrough = "readthrough",
        Import = "import",
        Scim = "scim",
    }
}

text_enum! {
    /// `inbound_events.outcome` and `event_replays.outcome`: what applying
    /// a stored event came to. A duplicate delivery is an answer, never
    /// stored, so it is not one of these (see `roster::Outcome`).
    pub(crate) enum EventOutcome ("event outcome") {
        Applied = "applied",
        Stale = "stale",
        /// The database refused the change; an operator may replay it.
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + FromStr<Err = Unknown> + fmt::Display,
    {
        for v in all {
            assert_eq!(v.to_string().parse::<T>(), Ok(*v));
        }
    }

    #[test]
    fn every_word_reads_back_as_its_value() {
        round_trips(&JobState::ALL);
        round_trips(&Action::ALL);
        round_trips(&RowStatus::ALL);
        round_trips(&Source::ALL);
        round_trips(&EventOutcome::ALL);
        round_trips(&JobKind::ALL);
        round_trips(&InviteState::ALL);
        round_trips(&OperatorRole::ALL);
    }

    #[test]
    fn an_unknown_word_is_an_error_not_a_default() {
        assert_eq!(
            "archived".parse::<RowStatus>(),
            Err(Unknown {
                what: "roster status",
                value: "archived".into(),
                known: "active, disabled, deleted",
            })
        );
        assert!("Pending".parse::<JobState>().is_err());
        assert!("duplicate".parse::<EventOutcome>().is_err());
        assert!("".parse::<Source>().is_err());
    }

    #[test]
    fn names_list_every_value_in_schema_order() {
        assert_eq!(JobState::NAMES, "pending, running, done, dead");
        assert_eq!(EventOutcome::NAMES, "applied, stale, failed");
        assert_eq!(
            serde_json::to_value(Action::Decommissioned).unwrap(),
            serde_json::json!("decommissioned")
        );
    }
}
