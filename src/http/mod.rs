//! The HTTP surfaces, one module each, assembled by [`crate::build_app`].

pub mod inbound;
pub mod ops;
