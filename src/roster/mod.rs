//! The roster: one row per upstream record, two last-writer-wins registers
//! each (docs/contract.md §4). `merge` is the pure rule, `apply` the one transaction
//! every event source goes through, `store` its SQL: the only code that writes
//! the `roster` table, and the way provisioning and the lookup read it.

pub mod apply;
pub mod import;
pub(crate) mod merge;
pub mod store;

pub use crate::state::Source;
pub use apply::{ingest, ApplyError, Outcome};
