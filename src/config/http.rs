//! Slow and idle clients: time-outs and the connection cap.

use super::ConfigError;
use clap::Args;
use std::time::Duration;

/// Slow and idle clients (src/http/server): time-outs and the connection cap.
#[derive(Args, Debug, Clone)]
pub(crate) struct HttpArgs {
    /// Seconds a client has to send a request's headers, from the
    /// connection opening or from the first byte of a later request.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT_SECS)]
    pub(crate) http_header_read_timeout_secs: u64,
    /// Seconds a client has to send a whole request body, from the end of
    /// its headers (then 408).
    #[arg(long, env = "HTTP_BODY_READ_TIMEOUT_SECS", default_value_t = DEFAULT_BODY_READ_TIMEOUT_SECS)]
    pub(crate) http_body_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_SECS", default_value_t = DEFAULT_IDLE_TIMEOUT_SECS)]
    pub(crate) http_idle_timeout_secs: u64,
    /// Connections open at once; more wait in the listen backlog
    /// [default: 10000, lowered to what the open-file limit allows].
    #[arg(long, env = "HTTP_MAX_CONNECTIONS")]
    pub(crate) http_max_connections: Option<usize>,
}

impl HttpArgs {
    /// `available`: file descriptors left for connections under the
    /// open-file limit `limit` (`None`: unknown).
    pub(crate) fn resolve(
        &self,
        available: Option<u64>,
        limit: Option<u64>,
    ) -> Result<HttpLimits, ConfigError> {
        // A day is far beyond any useful time-out, and keeps deadlines
        // far from overflowing the clock.
        const MAX_SECS: u64 = 86_400;
        let secs = |var: &'static str, secs: u64| {
            if (1..=MAX_SECS).contains(&secs) {
                Ok(Duration::from_secs(secs))
            } else {
                Err(ConfigError::new(
                    var,
                    format!("must be between 1 and {MAX_SECS}"),
                ))
            }
        };
        if self.http_max_connections == Some(0) {
            return Err(ConfigError::new(
                "HTTP_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        Ok(HttpLimits {
            header_read_timeout: secs(
                "HTTP_HEADER_READ_TIMEOUT_SECS",
                self.http_header_read_timeout_secs,
            )?,
            body_read_timeout: secs(
                "HTTP_BODY_READ_TIMEOUT_SECS",
                self.http_body_read_timeout_secs,
            )?,
            idle_timeout: secs("HTTP_IDLE_TIMEOUT_SECS", self.http_idle_timeout_secs)?,
            max_connections: crate::descriptors::fit(
                self.http_max_connections,
                DEFAULT_MAX_CONNECTIONS,
                available,
                limit,
            )
            .map_err(|m| ConfigError::new("HTTP_MAX_CONNECTIONS", m))?,
        })
    }
}

/// The defaults of the settings above (README, Configuration).
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
pub(crate) const DEFAULT_BODY_READ_TIMEOUT_SECS: u64 = 30;
pub(crate) const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 75;
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// How long clients may take, and how many may be connected at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpLimits {
    /// A request's headers must be complete this long after the connection
    /// opened, or after the first byte of a later request on it.
    pub(crate) header_read_timeout: Duration,
    /// A request's body must be complete this long after its headers.
    pub(crate) body_read_timeout: Duration,
    /// A kept-alive connection is closed after waiting this long for the
    /// first byte of its next request.
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            body_read_timeout: Duration::from_secs(DEFAULT_BODY_READ_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}
