//! The database: where it is, and how many connections the main pool holds.

use super::{read_secret, secret_parser, ConfigError};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// Postgres connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = secret_parser)]
    pub(crate) database_url: Option<SecretString>,
    /// Read the database URL from this file instead.
    #[arg(long, env = "DATABASE_URL_FILE")]
    pub(crate) database_url_file: Option<PathBuf>,
    /// Largest number of pooled database connections.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub(crate) database_max_connections: u32,
    /// Seconds to wait for a pooled connection before answering 503.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_SECS", default_value_t = 3)]
    pub(crate) database_acquire_timeout_secs: u64,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
}

impl DatabaseArgs {
    pub(crate) fn resolve(&self) -> Result<DatabaseConfig, ConfigError> {
        let url = read_secret(
            "DATABASE_URL",
            self.database_url.as_ref(),
            self.database_url_file.as_ref(),
        )?
        .filter(|u| !u.expose_secret().trim().is_empty())
        .ok_or_else(|| {
            ConfigError::new("DATABASE_URL", "is required (e.g. postgres://user@host/db)")
        })?;
        let scheme_ok = ["postgres://", "postgresql://"]
            .iter()
            .any(|p| url.expose_secret().starts_with(p));
        if !scheme_ok {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError::new(
                "DATABASE_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        Ok(DatabaseConfig {
            url,
            max_connections: self.database_max_connections,
            acquire_timeout: std::time::Duration::from_secs(
                self.database_acquire_timeout_secs.max(1),
            ),
        })
    }
}
