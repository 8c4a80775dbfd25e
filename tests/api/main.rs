//! One integration binary. Tests talk to a real Postgres, except the
//! Supabase provider's and the Airtable directory client's, which run
//! against in-process stand-ins (GoTrue, Airtable).

mod admin;
mod airtable;
mod airtable_script;
mod bad_input;
mod binary;
mod cli;
mod concurrency;
mod console;
mod convergence;
mod directory_client;
mod gotrue;
mod helpers;
mod herd;
mod inbound;
mod invitations;
mod logs;
mod lookup;
mod metrics;
mod openapi;
mod ops;
mod overrides;
mod provisioning;
mod prune;
mod push;
mod readthrough;
mod reconcile;
mod rls;
mod scim;
mod scim_mixed;
mod shutdown;
mod signatures;
mod slow_clients;
mod smtp;
mod stress;
mod supabase_provider;
mod webdriver;
