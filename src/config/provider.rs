//! The auth provider: local, or Supabase Auth with its URL and key.

use super::{read_secret, secret_parser, ConfigError};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// Accounts in rosterd's own database (`auth_accounts`).
    Local,
    /// Supabase Auth's admin API.
    Supabase,
}

#[derive(Args, Debug, Clone)]
pub struct ProviderArgs {
    /// Where login accounts live.
    #[arg(long, env = "AUTH_PROVIDER", value_enum, default_value = "local")]
    pub(crate) auth_provider: ProviderKind,
    /// Supabase project URL (the admin API is under `/auth/v1`).
    #[arg(long, env = "SUPABASE_URL")]
    pub(crate) supabase_url: Option<String>,
    /// Supabase service-role key.
    #[arg(long, env = "SUPABASE_SERVICE_ROLE_KEY", hide_env_values = true, value_parser = secret_parser)]
    pub(crate) supabase_service_role_key: Option<SecretString>,
    /// Read the service-role key from this file instead.
    #[arg(long, env = "SUPABASE_SERVICE_ROLE_KEY_FILE")]
    pub(crate) supabase_service_role_key_file: Option<PathBuf>,
    /// Timeout of one Supabase request, in seconds.
    #[arg(long, env = "SUPABASE_TIMEOUT_SECS", default_value_t = 10)]
    pub(crate) supabase_timeout_secs: u64,
}

#[derive(Debug, Clone)]
pub enum ProviderConfig {
    Local,
    Supabase {
        url: String,
        key: SecretString,
        timeout: Duration,
    },
}

impl ProviderArgs {
    pub(crate) fn resolve(&self) -> Result<ProviderConfig, ConfigError> {
        match self.auth_provider {
            ProviderKind::Local => Ok(ProviderConfig::Local),
            ProviderKind::Supabase => {
                let url = self
                    .supabase_url
                    .clone()
                    .filter(|u| !u.trim().is_empty())
                    .ok_or_else(|| {
                        ConfigError::new("SUPABASE_URL", "is required with AUTH_PROVIDER=supabase")
                    })?;
                let key = read_secret(
                    "SUPABASE_SERVICE_ROLE_KEY",
                    self.supabase_service_role_key.as_ref(),
                    self.supabase_service_role_key_file.as_ref(),
                )?
                .filter(|k| !k.expose_secret().is_empty())
                .ok_or_else(|| {
                    ConfigError::new(
                        "SUPABASE_SERVICE_ROLE_KEY",
                        "is required with AUTH_PROVIDER=supabase",
                    )
                })?;
                if self.supabase_timeout_secs == 0 {
                    return Err(ConfigError::new(
                        "SUPABASE_TIMEOUT_SECS",
                        "must be at least 1",
                    ));
                }
                let timeout = Duration::from_secs(self.supabase_timeout_secs);
                // Checked here so a bad URL stops start-up, not the first job.
                crate::http_client::base_url("SUPABASE_URL", &url)
                    .and_then(|_| {
                        crate::http_client::check_header_secret("SUPABASE_SERVICE_ROLE_KEY", &key)
                    })
                    .map_err(|e| ConfigError::new("SUPABASE_URL", e))?;
                Ok(ProviderConfig::Supabase { url, key, timeout })
            }
        }
    }
}
