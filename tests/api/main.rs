//! One integration binary. Tests talk to a real Postgres, except the
//! Supabase provider's, which run against an in-process GoTrue stand-in.

mod cli;
mod concurrency;
mod convergence;
mod gotrue;
mod helpers;
mod inbound;
mod lookup;
mod ops;
mod provisioning;
mod push;
mod reconcile;
mod signatures;
mod supabase_provider;
