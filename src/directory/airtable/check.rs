//! What the Airtable client refuses in its configuration, checked once.

use super::formula::field_ref;
use super::AirtableConfig;
use crate::http_client;

/// What [`AirtableDirectory::new`] derives from a configuration it
/// accepts. Configuration checks a directory with it at start-up, without
/// building a client.
pub(super) struct Checked {
    pub(super) url: reqwest::Url,
    pub(super) base: String,
    pub(super) table: String,
    pub(super) email_ref: String,
}

impl AirtableConfig {
    /// Everything [`AirtableDirectory::new`] would refuse, in its words.
    pub(crate) fn check(&self) -> Result<(), String> {
        Checked::of(self).map(|_| ())
    }
}

impl Checked {
    pub(super) fn of(cfg: &AirtableConfig) -> Result<Self, String> {
        let url = http_client::base_url("AIRTABLE_API_URL", &cfg.api_url)?;
        let base = cfg.base_id.trim();
        // Base ids are `app` + alphanumerics; this catches a pasted URL or
        // a base name before it turns into a confusing 404 per request.
        if base.is_empty() || !base.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err("AIRTABLE_BASE_ID must be an Airtable base id (app…)".into());
        }
        let table = cfg.table.trim();
        if table.is_empty() {
            return Err("AIRTABLE_TABLE is empty".into());
        }
        for (var, name) in [
            ("AIRTABLE_FIELD_EMAIL", &cfg.fields.email),
            ("AIRTABLE_FIELD_NAME", &cfg.fields.name),
            ("AIRTABLE_FIELD_STATUS", &cfg.fields.status),
            ("AIRTABLE_FIELD_GROUPS", &cfg.fields.groups),
        ] {
            if name.trim().is_empty() {
                return Err(format!("{var} is empty"));
            }
        }
        let email_ref = field_ref(&cfg.fields.email)
            .map_err(|why| format!("AIRTABLE_FIELD_EMAIL cannot be used in a formula: {why}"))?;
        http_client::check_header_secret("AIRTABLE_API_KEY", &cfg.api_key)?;
        if cfg.timeout.is_zero() {
            return Err("the Airtable request timeout must be greater than zero".into());
        }
        if cfg.requests_per_second == 0 {
            return Err("the Airtable request rate must be at least 1 per second".into());
        }
        Ok(Self {
            url,
            base: base.to_owned(),
            table: table.to_owned(),
            email_ref,
        })
    }
}
