//! Rules every source's events are checked with: event dates, roles.

use super::ConfigError;
use crate::roles::RoleMap;
use clap::Args;

#[derive(Args, Debug, Clone)]
pub(crate) struct EventArgs {
    /// Refuse events dated more than this many seconds after this server's
    /// clock (422 naming `occurredAt`); replaying such a stored event fails.
    #[arg(long, env = "MAX_EVENT_FUTURE_SECS", default_value_t = crate::event::DEFAULT_MAX_FUTURE_SECS)]
    pub(crate) max_event_future_secs: u64,
}

impl EventArgs {
    pub(crate) fn resolve(&self) -> Result<crate::event::EventRules, ConfigError> {
        crate::event::EventRules::with_max_future_secs(self.max_event_future_secs)
            .ok_or_else(|| ConfigError::new("MAX_EVENT_FUTURE_SECS", "is too large"))
    }
}

#[derive(Args, Debug, Clone)]
pub(crate) struct RoleArgs {
    /// Group-to-role map: `group=role` entries, comma- or newline-separated.
    #[arg(long, env = "ROLE_MAP", default_value = "")]
    pub(crate) role_map: String,
    /// Roles every person has.
    #[arg(long, env = "ROLE_DEFAULTS", default_value = "")]
    pub(crate) role_defaults: String,
}

impl RoleArgs {
    pub(crate) fn resolve(&self) -> Result<RoleMap, ConfigError> {
        RoleMap::parse(&self.role_map, &self.role_defaults)
            .map_err(|m| ConfigError::new("ROLE_MAP", m))
    }
}
