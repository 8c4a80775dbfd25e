//! What every handler can reach.

use crate::config::Config;
use crate::{db, lookup, metrics, outbox, provision};
use sqlx::PgPool;
use std::sync::Arc;

/// The live parts a request works with, built at start-up.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    /// Where provisioning runs started by a request take their connection
    /// (a separate tier, see [`db`]).
    pub runs: db::RunPool,
    /// Admits the login lookup's inline provisioning runs.
    pub first_logins: Arc<lookup::FirstLogins>,
    pub config: Arc<Config>,
    pub provider: Arc<dyn provision::provider::AuthProvider>,
    /// Wakes the provisioning workers after jobs were queued.
    pub wakeup: outbox::Wakeup,
    /// The directory behind the login lookup; `None` when not configured or
    /// switched off.
    pub readthrough: Option<Arc<lookup::readthrough::ReadThrough>>,
    /// The Airtable client (shared with the read-through, so one pace
    /// covers every call); `None` when not configured.
    pub directory: Option<Arc<crate::directory::AirtableDirectory>>,
    /// The database gauges of `/metrics`, cached so a scrape costs O(1).
    pub gauges: metrics::Gauges,
}
