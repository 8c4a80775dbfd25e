//! One integration binary: every test talks to a real Postgres.

mod cli;
mod concurrency;
mod convergence;
mod helpers;
mod inbound;
mod ops;
mod provisioning;
mod reconcile;
mod signatures;
