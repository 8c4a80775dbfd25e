//! rosterd keeps a company's people roster and its login accounts in step.
//!
//! Follow one event: [`http::inbound`] → [`signature`] → [`event`] →
//! [`roster::apply`] → the [`outbox`] →
//! [`provision::worker`] → [`provision::provision_person`] →
//! [`provision::provider`]. [`startup`] builds the live parts from
//! [`config`]; [`cli`] parses and dispatches.
//!
//! A second source, SCIM 2.0 ([`scim`]), mints its events
//! ([`event::ParsedBody::minted`]) and applies them through the same
//! [`roster::apply`]; its filters ([`filter`]) become SQL in
//! `roster::store`.
//!
//! With invitations on, provisioning also issues an [`invite`] when it
//! creates a person's auth user; the outbox's second job kind mails it
//! ([`invite::deliver`]), and `http::invite` serves the link it carries.

pub mod admin;
mod audit;
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
pub mod invite;
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
