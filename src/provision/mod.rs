//! Provisioning: turning roster state into auth accounts.

pub mod roles;
