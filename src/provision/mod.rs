//! Provisioning: turning roster state into auth accounts.

pub mod provider;
pub mod roles;
