//! The Airtable directory behind read-through and `sync`.

use super::{parse_flag, read_secret, secret_parser, ConfigError};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct DirectoryArgs {
    /// Airtable API root.
    #[arg(long, env = "AIRTABLE_API_URL", default_value = crate::directory::airtable::DEFAULT_API_URL)]
    pub airtable_api_url: String,
    /// The base holding the people table; read-through needs it.
    #[arg(long, env = "AIRTABLE_BASE_ID")]
    pub airtable_base_id: Option<String>,
    /// Table name or `tbl…` id.
    #[arg(long, env = "AIRTABLE_TABLE")]
    pub airtable_table: Option<String>,
    /// Airtable personal access token.
    #[arg(long, env = "AIRTABLE_API_KEY", hide_env_values = true, value_parser = secret_parser)]
    pub airtable_api_key: Option<SecretString>,
    /// Read the Airtable token from this file instead.
    #[arg(long, env = "AIRTABLE_API_KEY_FILE")]
    pub airtable_api_key_file: Option<PathBuf>,
    #[arg(long, env = "AIRTABLE_FIELD_EMAIL", default_value = "Email")]
    pub airtable_field_email: String,
    #[arg(long, env = "AIRTABLE_FIELD_NAME", default_value = "Name")]
    pub airtable_field_name: String,
    #[arg(long, env = "AIRTABLE_FIELD_STATUS", default_value = "Status")]
    pub airtable_field_status: String,
    #[arg(long, env = "AIRTABLE_FIELD_GROUPS", default_value = "Groups")]
    pub airtable_field_groups: String,
    /// Ask the directory about people the roster does not know.
    #[arg(long, env = "USER_READTHROUGH_FALLBACK_ENABLED", default_value = "true", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub user_readthrough_fallback_enabled: bool,
    /// Seconds a directory miss is remembered.
    #[arg(long, env = "READTHROUGH_NEGATIVE_TTL_SECS", default_value_t = 60)]
    pub readthrough_negative_ttl_secs: u64,
    /// Seconds a lookup may wait on the directory before answering 503.
    #[arg(long, env = "READTHROUGH_TIMEOUT_SECS", default_value_t = 5)]
    pub readthrough_timeout_secs: u64,
}

/// The directory, checked; `None` when no base is configured.
#[derive(Clone)]
pub struct DirectoryConfig {
    /// Checked: start-up builds the one client from it.
    pub airtable: crate::directory::AirtableConfig,
    pub(crate) negative_ttl: Duration,
    pub(crate) timeout: Duration,
    pub(crate) readthrough_enabled: bool,
}

impl std::fmt::Debug for DirectoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryConfig")
            .field("readthrough_enabled", &self.readthrough_enabled)
            .finish_non_exhaustive()
    }
}

impl DirectoryArgs {
    pub fn resolve(&self) -> Result<Option<DirectoryConfig>, ConfigError> {
        let Some(base) = self
            .airtable_base_id
            .clone()
            .filter(|b| !b.trim().is_empty())
        else {
            return Ok(None);
        };
        let table = self
            .airtable_table
            .clone()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                ConfigError::new("AIRTABLE_TABLE", "is required with AIRTABLE_BASE_ID")
            })?;
        let key = read_secret(
            "AIRTABLE_API_KEY",
            self.airtable_api_key.as_ref(),
            self.airtable_api_key_file.as_ref(),
        )?
        .filter(|k| !k.expose_secret().is_empty())
        .ok_or_else(|| ConfigError::new("AIRTABLE_API_KEY", "is required with AIRTABLE_BASE_ID"))?;
        if self.readthrough_timeout_secs == 0 {
            return Err(ConfigError::new(
                "READTHROUGH_TIMEOUT_SECS",
                "must be at least 1",
            ));
        }
        let mut cfg = crate::directory::AirtableConfig::new(&base, &table, key);
        cfg.api_url = self.airtable_api_url.clone();
        cfg.fields = crate::directory::FieldNames {
            email: self.airtable_field_email.clone(),
            name: self.airtable_field_name.clone(),
            status: self.airtable_field_status.clone(),
            groups: self.airtable_field_groups.clone(),
        };
        cfg.check()
            .map_err(|e| ConfigError::new("AIRTABLE_BASE_ID", e))?;
        Ok(Some(DirectoryConfig {
            airtable: cfg,
            negative_ttl: Duration::from_secs(self.readthrough_negative_ttl_secs),
            timeout: Duration::from_secs(self.readthrough_timeout_secs),
            readthrough_enabled: self.user_readthrough_fallback_enabled,
        }))
    }
}
