//! The HTTP surfaces, one module each, assembled into the app at start-up.

pub(crate) mod admin;
pub(crate) mod inbound;
pub(crate) mod invite;
pub(crate) mod lookup;
pub(crate) mod ops;
pub(crate) mod routes;
pub(crate) mod server;
mod state;

pub(crate) use routes::Routes;
pub use state::AppState;
