//! Logging: `tracing` to stderr, JSON when `LOG_FORMAT=json`, and a request
//! id on every line of a request; and request metrics ([`crate::metrics`]).

use axum::http::{Request, StatusCode};
use axum::Router;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

pub(crate) fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless, so its error is ignored.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// A 503 is an answer rosterd chose (overloaded, or a dependency down,
/// which its handler logs with the cause) and is counted in `/metrics`; a
/// herd of first logins must not write thousands of error lines. Other
/// failures stay errors.
fn on_failure(class: ServerErrorsFailureClass, latency: Duration, _span: &tracing::Span) {
    let ms = latency.as_millis();
    match class {
        ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE) => {
            tracing::debug!(latency_ms = ms, "answered 503")
        }
        other => tracing::error!(classification = %other, latency_ms = ms, "response failed"),
    }
}

/// Request ids (generated unless the caller sent `x-request-id`), echoed
/// back, and a span per request carrying the id and the matched route —
/// never headers or bodies, which hold signatures and tokens. Installs the
/// metrics recorder, so that every app built has a working `/metrics`.
pub(crate) fn layer(app: Router) -> Router {
    crate::metrics::install();
    // Outermost first: the id is set before the span that carries it.
    app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request<_>| {
                        let request_id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        let route = req
                            .extensions()
                            .get::<axum::extract::MatchedPath>()
                            .map(|p| p.as_str())
                            .unwrap_or("-");
                        tracing::info_span!("request", request_id, method = %req.method(), route)
                    })
                    .on_failure(on_failure),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(axum::middleware::from_fn(crate::metrics::track_requests)),
    )
}
