//! The HTTP surfaces, one module each, assembled by [`crate::build_app`].

pub mod admin;
pub mod bearer;
pub mod inbound;
pub mod lookup;
pub mod ops;
pub mod routes;
pub mod server;

pub use routes::Routes;
