//! The HTTP surfaces, one module each, assembled into the app at start-up.

pub mod admin;
pub mod inbound;
pub mod lookup;
pub mod ops;
pub mod routes;
pub mod server;
mod state;

pub use routes::Routes;
pub use state::AppState;
