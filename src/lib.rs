//! rosterd keeps a company's people roster and its login accounts in step.
//!
//! Follow one event: [`http::inbound`] → [`signature`] → [`event`] →
//! [`roster::apply`] → the [`outbox`] →
//! [`provision::worker`] → [`provision::provision_person`] →
//! [`provision::provider`]. [`startup`] builds the live parts from
//! [`config`]; [`cli`] parses and dispatches.

pub mod admin;
pub mod bearer;
pub mod cli;
pub mod config;
mod console;
pub mod db;
pub mod descriptors;
pub mod directory;
pub mod error;
pub mod event;
mod filter;
mod http;
mod http_client;
mod json;
pub mod lookup;
pub mod metrics;
pub mod outbox;
pub mod overload;
pub mod provision;
mod retention;
pub mod roles;
pub mod roster;
mod scim;
pub mod signature;
mod single_flight;
mod startup;
pub mod state;
mod telemetry;

pub use http::AppState;
pub use startup::{build_app, routes, run_http};
