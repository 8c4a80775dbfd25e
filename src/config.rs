//! Configuration (docs/contract.md §9): environment variables with a matching flag
//! each, `NAME_FILE` for every secret, and one clear line per bad value.

use crate::provision::provider::supabase::SupabaseProvider;
use crate::roles::RoleMap;
use crate::signature::{Key, Verifier};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `1/true/yes/on` → true, `0/false/no/off/""` → false, case-insensitive.
pub fn parse_flag(s: &str) -> Result<bool, String> {
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
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

/// A secret given directly (`NAME`) or through a file (`NAME_FILE`).
pub fn read_secret(
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
pub struct DatabaseArgs {
    /// Postgres connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = secret_parser)]
    pub database_url: Option<SecretString>,
    /// Read the database URL from this file instead.
    #[arg(long, env = "DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,
    /// Largest number of pooled database connections.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_max_connections: u32,
    /// Seconds to wait for a pooled connection before answering 503.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_SECS", default_value_t = 3)]
    pub database_acquire_timeout_secs: u64,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
}

impl DatabaseArgs {
    pub fn resolve(&self) -> Result<DatabaseConfig, ConfigError> {
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
    pub auth_provider: ProviderKind,
    /// Supabase project URL (the admin API is under `/auth/v1`).
    #[arg(long, env = "SUPABASE_URL")]
    pub supabase_url: Option<String>,
    /// Supabase service-role key.
    #[arg(long, env = "SUPABASE_SERVICE_ROLE_KEY", hide_env_values = true, value_parser = secret_parser)]
    pub supabase_service_role_key: Option<SecretString>,
    /// Read the service-role key from this file instead.
    #[arg(long, env = "SUPABASE_SERVICE_ROLE_KEY_FILE")]
    pub supabase_service_role_key_file: Option<PathBuf>,
    /// Timeout of one Supabase request, in seconds.
    #[arg(long, env = "SUPABASE_TIMEOUT_SECS", default_value_t = 10)]
    pub supabase_timeout_secs: u64,
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
    pub fn resolve(&self) -> Result<ProviderConfig, ConfigError> {
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
                SupabaseProvider::new(&url, key.clone(), timeout)
                    .map_err(|e| ConfigError::new("SUPABASE_URL", e))?;
                Ok(ProviderConfig::Supabase { url, key, timeout })
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs provisioned at once by this process.
    pub concurrency: usize,
    /// How long a claim lasts without renewal; a dead worker's jobs are
    /// taken over after this.
    pub lease: Duration,
    /// Fallback when no notification arrives (missed, or another process
    /// without LISTEN wrote the job).
    pub poll_interval: Duration,
    /// Attempts before a job is `dead`.
    pub max_attempts: i32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(5),
            max_attempts: 12,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Provisioning jobs run at once by this process.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 8)]
    pub worker_concurrency: usize,
    /// Seconds a claimed job stays ours without renewal.
    #[arg(long, env = "JOB_LEASE_SECS", default_value_t = 60)]
    pub job_lease_secs: u64,
    /// Seconds between queue polls when no notification arrives.
    #[arg(long, env = "WORKER_POLL_SECS", default_value_t = 5)]
    pub worker_poll_secs: u64,
    /// Attempts before a job is dead.
    #[arg(long, env = "JOB_MAX_ATTEMPTS", default_value_t = 12)]
    pub job_max_attempts: i32,
}

impl WorkerArgs {
    pub fn resolve(&self) -> Result<WorkerConfig, ConfigError> {
        if self.worker_concurrency == 0 {
            return Err(ConfigError::new("WORKER_CONCURRENCY", "must be at least 1"));
        }
        if self.job_lease_secs < 3 {
            return Err(ConfigError::new("JOB_LEASE_SECS", "must be at least 3"));
        }
        if self.job_max_attempts < 1 {
            return Err(ConfigError::new("JOB_MAX_ATTEMPTS", "must be at least 1"));
        }
        Ok(WorkerConfig {
            concurrency: self.worker_concurrency,
            lease: Duration::from_secs(self.job_lease_secs),
            poll_interval: Duration::from_secs(self.worker_poll_secs.max(1)),
            max_attempts: self.job_max_attempts,
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub provider: ProviderArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Run the provisioning worker inside `serve`.
    #[arg(long, env = "WORKER_ENABLED", default_value = "true", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub worker_enabled: bool,
    /// Address to listen on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: SocketAddr,
    #[command(flatten)]
    pub http: HttpArgs,
    /// Refuse to start while row-level security is off on a table in
    /// rosterd's schema (or applies to rosterd's own role).
    #[arg(long, env = "RLS_CHECK_ENABLED", default_value = "true", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub rls_check_enabled: bool,
    /// Webhook signing secrets, comma-separated (several during a rotation).
    /// `whsec_` secrets are base64; others are their UTF-8 bytes (≥ 16).
    #[arg(long, env = "AIRTABLE_USER_SYNC_SECRET", hide_env_values = true, value_parser = secret_parser)]
    pub airtable_user_sync_secret: Option<SecretString>,
    /// Read the signing secrets from this file instead.
    #[arg(long, env = "AIRTABLE_USER_SYNC_SECRET_FILE")]
    pub airtable_user_sync_secret_file: Option<PathBuf>,
    /// Serve POST /api/sync/users/inbound (404 when off).
    #[arg(long, env = "USER_WEBHOOK_SYNC_ENABLED", default_value = "true", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub user_webhook_sync_enabled: bool,
    /// Standard Webhooks timestamp tolerance, in seconds either side.
    #[arg(long, env = "WEBHOOK_TOLERANCE_SECS", default_value_t = 300)]
    pub webhook_tolerance_secs: u64,
    /// Largest accepted inbound body, in bytes.
    #[arg(long, env = "INBOUND_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub inbound_max_body_bytes: usize,
    /// How old the database gauges of `/metrics` may be before a scrape
    /// refreshes them (in the background); 0 reads them on every scrape.
    #[arg(long, env = "METRICS_GAUGES_MAX_AGE_SECS", default_value_t = 15)]
    pub metrics_gauges_max_age_secs: u64,
    /// Bearer tokens the login service uses for the lookup, comma-separated.
    #[arg(long, env = "LOGIN_API_TOKENS", hide_env_values = true, value_parser = secret_parser)]
    pub login_api_tokens: Option<SecretString>,
    /// Read the login tokens from this file instead.
    #[arg(long, env = "LOGIN_API_TOKENS_FILE")]
    pub login_api_tokens_file: Option<PathBuf>,
    /// Operators' tokens for /api/admin, comma-separated `name:token` (the
    /// name is the actor in the audit log; tokens ≥ 16 characters).
    #[arg(long, env = "ADMIN_TOKENS", hide_env_values = true, value_parser = secret_parser)]
    pub admin_tokens: Option<SecretString>,
    /// Read the operators' tokens from this file instead.
    #[arg(long, env = "ADMIN_TOKENS_FILE")]
    pub admin_tokens_file: Option<PathBuf>,
    #[command(flatten)]
    pub roles: RoleArgs,
    #[command(flatten)]
    pub events: EventArgs,
    #[command(flatten)]
    pub directory: DirectoryArgs,
    #[command(flatten)]
    pub lookup: LookupArgs,
}

#[derive(Args, Debug, Clone)]
pub struct LookupArgs {
    /// First logins provisioned inline at once by this process; more wait
    /// in line (LOOKUP_QUEUE_WAIT_MS), then get 503 overloaded.
    #[arg(long, env = "LOOKUP_PROVISION_CONCURRENCY", default_value_t = 8)]
    pub lookup_provision_concurrency: usize,
    /// Milliseconds a lookup may wait in line for an inline-provisioning
    /// slot or an Airtable request slot before answering 503 overloaded.
    #[arg(long, env = "LOOKUP_QUEUE_WAIT_MS", default_value_t = 250)]
    pub lookup_queue_wait_ms: u64,
}

/// How the login lookup sheds load it cannot take.
#[derive(Debug, Clone, Copy)]
pub struct LookupConfig {
    pub provision_concurrency: usize,
    pub queue_wait: Duration,
}

impl LookupArgs {
    pub fn resolve(&self) -> Result<LookupConfig, ConfigError> {
        if self.lookup_provision_concurrency == 0 {
            return Err(ConfigError::new(
                "LOOKUP_PROVISION_CONCURRENCY",
                "must be at least 1",
            ));
        }
        if self.lookup_provision_concurrency > 1000 {
            return Err(ConfigError::new(
                "LOOKUP_PROVISION_CONCURRENCY",
                "must be at most 1000 (each run holds a database connection)",
            ));
        }
        if self.lookup_queue_wait_ms > 60_000 {
            return Err(ConfigError::new(
                "LOOKUP_QUEUE_WAIT_MS",
                "must be at most 60000; a login waiting longer is better told to retry",
            ));
        }
        Ok(LookupConfig {
            provision_concurrency: self.lookup_provision_concurrency,
            queue_wait: Duration::from_millis(self.lookup_queue_wait_ms),
        })
    }
}

/// Slow and idle clients (src/http/server): time-outs and the connection cap.
#[derive(Args, Debug, Clone)]
pub struct HttpArgs {
    /// Seconds a client has to send a request's headers, from the
    /// connection opening or from the first byte of a later request.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_SECS", default_value_t = crate::http::server::DEFAULT_HEADER_READ_TIMEOUT_SECS)]
    pub http_header_read_timeout_secs: u64,
    /// Seconds a client has to send a whole request body, from the end of
    /// its headers (then 408).
    #[arg(long, env = "HTTP_BODY_READ_TIMEOUT_SECS", default_value_t = crate::http::server::DEFAULT_BODY_READ_TIMEOUT_SECS)]
    pub http_body_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_SECS", default_value_t = crate::http::server::DEFAULT_IDLE_TIMEOUT_SECS)]
    pub http_idle_timeout_secs: u64,
    /// Connections open at once; more wait in the listen backlog
    /// [default: 10000, lowered to what the open-file limit allows].
    #[arg(long, env = "HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,
}

impl HttpArgs {
    /// `available`: file descriptors left for connections under the
    /// open-file limit `limit` (`None`: unknown).
    pub fn resolve(
        &self,
        available: Option<u64>,
        limit: Option<u64>,
    ) -> Result<crate::http::server::Limits, ConfigError> {
        use crate::http::server::{descriptors, DEFAULT_MAX_CONNECTIONS};
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
        Ok(crate::http::server::Limits {
            header_read_timeout: secs(
                "HTTP_HEADER_READ_TIMEOUT_SECS",
                self.http_header_read_timeout_secs,
            )?,
            body_read_timeout: secs(
                "HTTP_BODY_READ_TIMEOUT_SECS",
                self.http_body_read_timeout_secs,
            )?,
            idle_timeout: secs("HTTP_IDLE_TIMEOUT_SECS", self.http_idle_timeout_secs)?,
            max_connections: descriptors::fit(
                self.http_max_connections,
                DEFAULT_MAX_CONNECTIONS,
                available,
                limit,
            )
            .map_err(|m| ConfigError::new("HTTP_MAX_CONNECTIONS", m))?,
        })
    }
}

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
    pub airtable: std::sync::Arc<crate::directory::AirtableDirectory>,
    pub negative_ttl: Duration,
    pub timeout: Duration,
    pub readthrough_enabled: bool,
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
        let airtable = crate::directory::AirtableDirectory::new(cfg)
            .map_err(|e| ConfigError::new("AIRTABLE_BASE_ID", e))?;
        Ok(Some(DirectoryConfig {
            airtable: std::sync::Arc::new(airtable),
            negative_ttl: Duration::from_secs(self.readthrough_negative_ttl_secs),
            timeout: Duration::from_secs(self.readthrough_timeout_secs),
            readthrough_enabled: self.user_readthrough_fallback_enabled,
        }))
    }
}

#[derive(Args, Debug, Clone)]
pub struct EventArgs {
    /// Refuse events dated more than this many seconds after this server's
    /// clock (422 naming `occurredAt`); replaying such a stored event fails.
    #[arg(long, env = "MAX_EVENT_FUTURE_SECS", default_value_t = crate::event::DEFAULT_MAX_FUTURE_SECS)]
    pub max_event_future_secs: u64,
}

impl EventArgs {
    pub fn resolve(&self) -> Result<crate::event::EventRules, ConfigError> {
        crate::event::EventRules::with_max_future_secs(self.max_event_future_secs)
            .ok_or_else(|| ConfigError::new("MAX_EVENT_FUTURE_SECS", "is too large"))
    }
}

#[derive(Args, Debug, Clone)]
pub struct RoleArgs {
    /// Group-to-role map: `group=role` entries, comma- or newline-separated.
    #[arg(long, env = "ROLE_MAP", default_value = "")]
    pub role_map: String,
    /// Roles every person has.
    #[arg(long, env = "ROLE_DEFAULTS", default_value = "")]
    pub role_defaults: String,
}

impl RoleArgs {
    pub fn resolve(&self) -> Result<RoleMap, ConfigError> {
        RoleMap::parse(&self.role_map, &self.role_defaults)
            .map_err(|m| ConfigError::new("ROLE_MAP", m))
    }
}

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
    pub login_tokens: crate::http::bearer::BearerTokens,
    /// Operators' named tokens; none configured admits nobody.
    pub admin_tokens: crate::http::bearer::BearerTokens,
    pub directory: Option<DirectoryConfig>,
    /// `None` when the worker is switched off.
    pub worker: Option<WorkerConfig>,
    /// `METRICS_GAUGES_MAX_AGE_SECS`.
    pub metrics_gauges_max_age: std::time::Duration,
    pub lookup: LookupConfig,
}

impl ServeArgs {
    pub fn resolve(&self) -> Result<Config, ConfigError> {
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
        let login_tokens = crate::http::bearer::BearerTokens::parse(
            read_secret(
                "LOGIN_API_TOKENS",
                self.login_api_tokens.as_ref(),
                self.login_api_tokens_file.as_ref(),
            )?
            .as_ref(),
        );
        let admin_tokens = crate::http::bearer::BearerTokens::parse_named(
            read_secret(
                "ADMIN_TOKENS",
                self.admin_tokens.as_ref(),
                self.admin_tokens_file.as_ref(),
            )?
            .as_ref(),
        )
        .map_err(|m| ConfigError::new("ADMIN_TOKENS", m))?;
        let directory = self.directory.resolve()?;
        let lookup = self.lookup.resolve()?;
        Ok(Config {
            lookup,
            metrics_gauges_max_age: std::time::Duration::from_secs(
                self.metrics_gauges_max_age_secs,
            ),
            admin_tokens,
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
pub fn parse_keys(secrets: Option<&SecretString>) -> Result<Vec<Key>, ConfigError> {
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
