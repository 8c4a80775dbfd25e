//! Configuration (docs/contract.md §9): environment variables with a matching flag
//! each, `NAME_FILE` for every secret, and one clear line per bad value.

use crate::roles::RoleMap;
use crate::signature::{Key, Verifier};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;

mod database;
mod directory;
mod http;
mod invite;
mod lookup;
mod provider;
mod rules;
mod worker;

pub use database::{DatabaseArgs, DatabaseConfig};
pub use directory::{DirectoryArgs, DirectoryConfig};
pub(crate) use http::{HttpArgs, HttpLimits};
pub(crate) use invite::check_smtp_url;
pub(crate) use invite::InviteArgs;
pub use invite::{InviteConfig, InvitePolicy, SmtpConfig};
pub use lookup::{LookupArgs, LookupConfig};
pub use provider::{ProviderArgs, ProviderConfig, ProviderKind};
pub(crate) use rules::{EventArgs, RoleArgs};
pub use worker::{WorkerArgs, WorkerConfig};

/// `1/true/yes/on` → true, `0/false/no/off/""` → false, case-insensitive.
pub(crate) fn parse_flag(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("expected one of 1/true/yes/on or 0/false/no/off".into()),
    }
}

/// A bad configuration value, always naming the variable it came from and
/// never echoing a secret.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub(crate) var: &'static str,
    pub(crate) message: String,
}

impl ConfigError {
    pub(crate) fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

/// A secret given directly (`NAME`) or through a file (`NAME_FILE`).
pub(crate) fn read_secret(
    var: &'static str,
    direct: Option<&SecretString>,
    file: Option<&PathBuf>,
) -> Result<Option<SecretString>, ConfigError> {
    match (direct, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            var,
            format!("set either {var} or {var}_FILE, not both"),
        )),
        (Some(s), None) => Ok(Some(s.clone())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    var,
                    format!("cannot read {var}_FILE {}: {e}", path.display()),
                )
            })?;
            // Files written by editors and `echo` end in a newline that is
            // not part of the secret.
            Ok(Some(SecretString::from(
                text.trim_end_matches(['\n', '\r']).to_owned(),
            )))
        }
        (None, None) => Ok(None),
    }
}

fn secret_parser(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

#[derive(Args, Debug, Clone)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
    #[command(flatten)]
    pub(crate) provider: ProviderArgs,
    #[command(flatten)]
    pub(crate) worker: WorkerArgs,
    /// Run the provisioning worker inside `serve`.
    #[arg(long, env = "WORKER_ENABLED", default_value = "true", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub(crate) worker_enabled: bool,
    /// Address to listen on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) bind_addr: SocketAddr,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
    /// Refuse to start while row-level security is off on a table in
    /// rosterd's schema (or applies to rosterd's own role).
    #[arg(long, env = "RLS_CHECK_ENABLED", default_value = "true", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub(crate) rls_check_enabled: bool,
    /// Webhook signing secrets, comma-separated (several during a rotation).
    /// `whsec_` secrets are base64; others are their UTF-8 bytes (≥ 16).
    #[arg(long, env = "AIRTABLE_USER_SYNC_SECRET", hide_env_values = true, value_parser = secret_parser)]
    pub(crate) airtable_user_sync_secret: Option<SecretString>,
    /// Read the signing secrets from this file instead.
    #[arg(long, env = "AIRTABLE_USER_SYNC_SECRET_FILE")]
    pub(crate) airtable_user_sync_secret_file: Option<PathBuf>,
    /// Serve POST /api/sync/users/inbound (404 when off).
    #[arg(long, env = "USER_WEBHOOK_SYNC_ENABLED", default_value = "true", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub(crate) user_webhook_sync_enabled: bool,
    /// Standard Webhooks timestamp tolerance, in seconds either side.
    #[arg(long, env = "WEBHOOK_TOLERANCE_SECS", default_value_t = 300)]
    pub(crate) webhook_tolerance_secs: u64,
    /// Largest accepted inbound body, in bytes.
    #[arg(long, env = "INBOUND_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub(crate) inbound_max_body_bytes: usize,
    /// How old the database gauges of `/metrics` may be before a scrape
    /// refreshes them (in the background); 0 reads them on every scrape.
    #[arg(long, env = "METRICS_GAUGES_MAX_AGE_SECS", default_value_t = 15)]
    pub(crate) metrics_gauges_max_age_secs: u64,
    /// Bearer tokens the login service uses for the lookup, comma-separated.
    #[arg(long, env = "LOGIN_API_TOKENS", hide_env_values = true, value_parser = secret_parser)]
    pub(crate) login_api_tokens: Option<SecretString>,
    /// Read the login tokens from this file instead.
    #[arg(long, env = "LOGIN_API_TOKENS_FILE")]
    pub(crate) login_api_tokens_file: Option<PathBuf>,
    /// Operators' tokens for /api/admin and the console, comma-separated
    /// `name:token` (the name is the actor in the audit log; tokens ≥ 16
    /// characters); `name:token:viewer` may read everything and change
    /// nothing.
    #[arg(long, env = "ADMIN_TOKENS", hide_env_values = true, value_parser = secret_parser)]
    pub(crate) admin_tokens: Option<SecretString>,
    /// Read the operators' tokens from this file instead.
    #[arg(long, env = "ADMIN_TOKENS_FILE")]
    pub(crate) admin_tokens_file: Option<PathBuf>,
    /// Identity providers' tokens for /scim/v2, comma-separated
    /// `name:token` (the name is the actor in the audit log; tokens ≥ 32
    /// characters). None configured: /scim/v2 answers 401.
    #[arg(long, env = "SCIM_TOKENS", hide_env_values = true, value_parser = secret_parser)]
    pub(crate) scim_tokens: Option<SecretString>,
    /// Read the SCIM tokens from this file instead.
    #[arg(long, env = "SCIM_TOKENS_FILE")]
    pub(crate) scim_tokens_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) roles: RoleArgs,
    #[command(flatten)]
    pub(crate) events: EventArgs,
    #[command(flatten)]
    pub(crate) directory: DirectoryArgs,
    #[command(flatten)]
    pub(crate) lookup: LookupArgs,
    #[command(flatten)]
    pub(crate) invite: InviteArgs,
}

/// SCIM tokens are long-lived machine credentials: hard to guess.
const MIN_SCIM_TOKEN_LEN: usize = 32;

/// Everything `serve` needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: DatabaseConfig,
    pub bind_addr: SocketAddr,
    pub webhook_enabled: bool,
    pub verifier: Verifier,
    pub max_body_bytes: usize,
    pub roles: RoleMap,
    /// `MAX_EVENT_FUTURE_SECS`: what every source's events are checked with.
    pub events: crate::event::EventRules,
    pub provider: ProviderConfig,
    /// Tokens admitted by the login lookup; none configured admits nobody.
    pub login_tokens: crate::bearer::BearerTokens,
    /// Operators' named tokens; none configured admits nobody.
    pub admin_tokens: crate::bearer::BearerTokens,
    /// Identity providers' named tokens for SCIM; none admits nobody.
    pub scim_tokens: crate::bearer::BearerTokens,
    pub directory: Option<DirectoryConfig>,
    /// `None` when the worker is switched off.
    pub worker: Option<WorkerConfig>,
    /// `METRICS_GAUGES_MAX_AGE_SECS`.
    pub metrics_gauges_max_age: std::time::Duration,
    pub lookup: LookupConfig,
    /// `None` unless `INVITATIONS_ENABLED`.
    pub invitations: Option<InviteConfig>,
}

impl ServeArgs {
    pub(crate) fn resolve(&self) -> Result<Config, ConfigError> {
        let db = self.db.resolve()?;
        let secrets = read_secret(
            "AIRTABLE_USER_SYNC_SECRET",
            self.airtable_user_sync_secret.as_ref(),
            self.airtable_user_sync_secret_file.as_ref(),
        )?;
        let keys = parse_keys(secrets.as_ref())?;
        if self.user_webhook_sync_enabled && keys.is_empty() {
            return Err(ConfigError::new(
                "AIRTABLE_USER_SYNC_SECRET",
                "is required while USER_WEBHOOK_SYNC_ENABLED is on",
            ));
        }
        if self.inbound_max_body_bytes == 0 {
            return Err(ConfigError::new(
                "INBOUND_MAX_BODY_BYTES",
                "must be at least 1",
            ));
        }
        let roles = self.roles.resolve()?;
        let events = self.events.resolve()?;
        let provider = self.provider.resolve()?;
        let worker = self.worker.resolve()?;
        let login_tokens = crate::bearer::BearerTokens::parse(
            read_secret(
                "LOGIN_API_TOKENS",
                self.login_api_tokens.as_ref(),
                self.login_api_tokens_file.as_ref(),
            )?
            .as_ref(),
        );
        let admin_tokens = crate::bearer::BearerTokens::parse_named(
            read_secret(
                "ADMIN_TOKENS",
                self.admin_tokens.as_ref(),
                self.admin_tokens_file.as_ref(),
            )?
            .as_ref(),
        )
        .map_err(|m| ConfigError::new("ADMIN_TOKENS", m))?;
        let scim_tokens = crate::bearer::BearerTokens::parse_named_min(
            read_secret(
                "SCIM_TOKENS",
                self.scim_tokens.as_ref(),
                self.scim_tokens_file.as_ref(),
            )?
            .as_ref(),
            MIN_SCIM_TOKEN_LEN,
        )
        .map_err(|m| ConfigError::new("SCIM_TOKENS", m))?;
        let directory = self.directory.resolve()?;
        let lookup = self.lookup.resolve()?;
        let invitations = self.invite.resolve()?;
        Ok(Config {
            lookup,
            invitations,
            metrics_gauges_max_age: std::time::Duration::from_secs(
                self.metrics_gauges_max_age_secs,
            ),
            admin_tokens,
            scim_tokens,
            directory,
            login_tokens,
            provider,
            worker: self.worker_enabled.then_some(worker),
            db,
            bind_addr: self.bind_addr,
            webhook_enabled: self.user_webhook_sync_enabled,
            verifier: Verifier::new(keys, self.webhook_tolerance_secs),
            max_body_bytes: self.inbound_max_body_bytes,
            roles,
            events,
        })
    }
}

/// Splits the comma-separated secret list into keys; the message names the
/// position of a bad key, never its value.
pub(crate) fn parse_keys(secrets: Option<&SecretString>) -> Result<Vec<Key>, ConfigError> {
    let Some(secrets) = secrets else {
        return Ok(Vec::new());
    };
    secrets
        .expose_secret()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| {
            Key::parse(s).map_err(|e| {
                ConfigError::new(
                    "AIRTABLE_USER_SYNC_SECRET",
                    format!("secret #{}: {e}", i + 1),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_role_map_entry_names_the_variable() {
        for bad in ["admins", "=admin", "admins=", "a=b=c"] {
            let args = RoleArgs {
                role_map: bad.into(),
                role_defaults: String::new(),
            };
            assert_eq!(args.resolve().unwrap_err().var, "ROLE_MAP", "{bad}");
        }
    }

    #[test]
    fn flags() {
        for t in ["1", "true", "YES", "On", " true "] {
            assert_eq!(parse_flag(t), Ok(true), "{t}");
        }
        for f in ["0", "false", "No", "OFF", ""] {
            assert_eq!(parse_flag(f), Ok(false), "{f}");
        }
        assert!(parse_flag("maybe").is_err());
    }

    #[test]
    fn short_secret_is_named_not_echoed() {
        let s = SecretString::from("good-secret-0123456789, tiny-secret".to_owned());
        let err = parse_keys(Some(&s)).unwrap_err().to_string();
        assert!(
            err.starts_with("AIRTABLE_USER_SYNC_SECRET: secret #2"),
            "{err}"
        );
        assert!(!err.contains("tiny-secret"), "{err}");
    }

    #[test]
    fn secret_file_trims_newline_and_conflicts_with_direct() {
        let dir = std::env::temp_dir().join(format!("rosterd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "from-file-0123456789\n").unwrap();
        let got = read_secret("X", None, Some(&path)).unwrap().unwrap();
        assert_eq!(got.expose_secret(), "from-file-0123456789");
        let direct = SecretString::from("d".to_owned());
        assert!(read_secret("X", Some(&direct), Some(&path)).is_err());
        let missing = read_secret("X", None, Some(&dir.join("nope"))).unwrap_err();
        assert_eq!(missing.var, "X");
    }
}
