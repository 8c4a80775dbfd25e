//! rosterd keeps a company's people roster and its login accounts in step.
//!
//! Follow one event: [`http::inbound`] → [`signature`] → [`event`] →
//! [`roster::apply`] → (provisioning outbox).

pub mod admin;
pub mod cli;
pub mod config;
pub mod console;
pub mod db;
pub mod directory;
pub mod error;
pub mod event;
pub mod http;
mod http_client;
pub mod json;
pub mod lookup;
pub mod metrics;
pub mod overload;
pub mod provision;
pub mod retention;
pub mod roster;
pub mod signature;
pub mod telemetry;

use axum::Router;
use config::Config;
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    /// Where provisioning runs started by a request take their connection
    /// (a separate tier, see [`db`]).
    pub runs: db::RunPool,
    /// Admits the login lookup's inline provisioning runs.
    pub first_logins: overload::Gate,
    pub config: Arc<Config>,
    pub provider: Arc<dyn provision::provider::AuthProvider>,
    /// Wakes the provisioning workers after jobs were queued.
    pub wakeup: provision::jobs::Wakeup,
    /// The directory behind the login lookup; `None` when not configured or
    /// switched off.
    pub readthrough: Option<Arc<directory::readthrough::ReadThrough>>,
    /// The database gauges of `/metrics`, cached so a scrape costs O(1).
    pub gauges: metrics::Gauges,
}

/// The whole HTTP surface. Tests and the binary build the same thing.
pub fn build_app(state: AppState) -> Router {
    let app = routes(&state.config).into_router();
    telemetry::layer(app.fallback(not_found).with_state(state))
}

/// Every route the app serves under `config`: the JSON API, which
/// `openapi.yaml` documents exactly (`tests/api/openapi.rs`), and the
/// operator console's HTML pages under `/console`.
pub fn routes(config: &Config) -> http::Routes {
    let mut routes = http::ops::router()
        .merge(http::lookup::router())
        .merge(http::admin::router())
        .merge(console::router());
    if config.webhook_enabled {
        routes = routes.merge(http::inbound::router(config.max_body_bytes));
    }
    routes
}

async fn not_found() -> error::ApiError {
    error::ApiError::NotFound
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish.
pub async fn run_http(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
