//! Invitations (docs/contract.md §14): the switch, the link's lifetime, and
//! the SMTP server that mails it.

use super::{parse_flag, read_secret, secret_parser, ConfigError};
use clap::Args;
use lettre::message::Mailbox;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use std::time::Duration;

/// The longest `INVITE_TTL`: a link is a credential, and a month is plenty
/// for a new hire's first week.
const MAX_TTL: Duration = Duration::from_secs(30 * 86_400);

#[derive(Args, Debug, Clone)]
pub(crate) struct InviteArgs {
    /// Invite people whose auth user rosterd creates, by e-mail, instead of
    /// creating their account silently.
    #[arg(long, env = "INVITATIONS_ENABLED", default_value = "false", value_parser = parse_flag, action = clap::ArgAction::Set)]
    pub(crate) invitations_enabled: bool,
    /// How long an invitation link stays good: `7d`, `36h`, `30m`, `45s`
    /// (at most 30 days).
    #[arg(long, env = "INVITE_TTL", default_value = "7d")]
    pub(crate) invite_ttl: String,
    /// The public URL of rosterd that links point to
    /// (`{INVITE_BASE_URL}/invite/{token}`).
    #[arg(long, env = "INVITE_BASE_URL")]
    pub(crate) invite_base_url: Option<String>,
    /// Where the browser goes once an invitation is accepted (the app's
    /// sign-in landing page).
    #[arg(long, env = "INVITE_REDIRECT_URL")]
    pub(crate) invite_redirect_url: Option<String>,
    /// What people are invited to, as the mail and the page name it.
    #[arg(
        long,
        env = "INVITE_PRODUCT_NAME",
        default_value = "your company's apps"
    )]
    pub(crate) invite_product_name: String,
    /// The SMTP server, as `smtps://user:pass@host:465` or
    /// `smtp://user:pass@host:587?tls=required`. Unset: invitations are
    /// issued but not mailed.
    #[arg(long, env = "SMTP_URL", hide_env_values = true, value_parser = secret_parser)]
    pub(crate) smtp_url: Option<SecretString>,
    /// Read the SMTP URL from this file instead.
    #[arg(long, env = "SMTP_URL_FILE")]
    pub(crate) smtp_url_file: Option<PathBuf>,
    /// The sender, e.g. `Acme Accounts <accounts@acme.example>`.
    #[arg(long, env = "SMTP_FROM")]
    pub(crate) smtp_from: Option<String>,
    /// Accept attempts per client address and minute on /invite/{token}.
    #[arg(long, env = "INVITE_ACCEPT_PER_MINUTE", default_value_t = 10)]
    pub(crate) invite_accept_per_minute: u32,
    /// Timeout of one SMTP conversation, in seconds.
    #[arg(long, env = "SMTP_TIMEOUT_SECS", default_value_t = 30)]
    pub(crate) smtp_timeout_secs: u64,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub url: SecretString,
    pub from: Mailbox,
    pub timeout: Duration,
}

/// Present only with `INVITATIONS_ENABLED`.
#[derive(Debug, Clone)]
pub struct InviteConfig {
    pub ttl: Duration,
    pub base_url: Url,
    pub redirect_url: Url,
    pub product: String,
    pub smtp: Option<SmtpConfig>,
    /// `INVITE_ACCEPT_PER_MINUTE`.
    pub accept_per_minute: u32,
}

/// How provisioning issues invitations: present only with
/// `INVITATIONS_ENABLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvitePolicy {
    /// `INVITE_TTL`: how long a link stays good from issue or resend.
    pub ttl: Duration,
    /// Whether a mailer is configured: without one, invitations are still
    /// issued, and an operator hands out the link (a resend shows it).
    pub mail: bool,
}

impl InviteConfig {
    pub fn policy(&self) -> InvitePolicy {
        InvitePolicy {
            ttl: self.ttl,
            mail: self.smtp.is_some(),
        }
    }
}

/// Checks `SMTP_URL` (scheme, host, TLS mode) as lettre reads it; the
/// message never repeats the URL, which holds the password.
pub(crate) fn check_smtp_url(url: &SecretString) -> Result<(), String> {
    use lettre::{AsyncSmtpTransport, Tokio1Executor};
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
        .map(|_| ())
        .map_err(|e| {
            let why = if e.is_tls() { "TLS parameters" } else { "scheme, host or parameters" };
            format!("not an SMTP URL such as smtps://user:pass@host:465 or smtp://host:587?tls=required (check its {why})")
        })
}

/// `7d`, `36h`, `30m`, `45s`: a whole number and a unit.
pub(crate) fn parse_ttl(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration such as 7d, 36h, 30m or 45s");
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        "s" => Some(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    let ttl = Duration::from_secs(secs);
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err("must be more than 0 and at most 30d".into());
    }
    Ok(ttl)
}

fn http_url(var: &'static str, raw: Option<&String>) -> Result<Url, ConfigError> {
    let raw = raw
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ConfigError::new(var, "is required while INVITATIONS_ENABLED is on"))?;
    let url =
        Url::parse(raw.trim()).map_err(|e| ConfigError::new(var, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(var, "must be an http(s) URL with a host"));
    }
    Ok(url)
}

impl InviteArgs {
    pub(crate) fn resolve(&self) -> Result<Option<InviteConfig>, ConfigError> {
        let url = read_secret(
            "SMTP_URL",
            self.smtp_url.as_ref(),
            self.smtp_url_file.as_ref(),
        )?;
        if !self.invitations_enabled {
            return Ok(None);
        }
        let ttl = parse_ttl(&self.invite_ttl).map_err(|m| ConfigError::new("INVITE_TTL", m))?;
        let base_url = http_url("INVITE_BASE_URL", self.invite_base_url.as_ref())?;
        let redirect_url = http_url("INVITE_REDIRECT_URL", self.invite_redirect_url.as_ref())?;
        let product = self.invite_product_name.trim().to_owned();
        if product.is_empty() || product.chars().count() > 100 {
            return Err(ConfigError::new(
                "INVITE_PRODUCT_NAME",
                "must be 1 to 100 characters",
            ));
        }
        let smtp = match url {
            None => None,
            Some(url) => {
                check_smtp_url(&url).map_err(|m| ConfigError::new("SMTP_URL", m))?;
                let from = self
                    .smtp_from
                    .as_deref()
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| ConfigError::new("SMTP_FROM", "is required with SMTP_URL"))?
                    .trim()
                    .parse::<Mailbox>()
                    .map_err(|e| ConfigError::new("SMTP_FROM", format!("not a mailbox: {e}")))?;
                if self.smtp_timeout_secs == 0 {
                    return Err(ConfigError::new("SMTP_TIMEOUT_SECS", "must be at least 1"));
                }
                Some(SmtpConfig {
                    url,
                    from,
                    timeout: Duration::from_secs(self.smtp_timeout_secs),
                })
            }
        };
        if self.invite_accept_per_minute == 0 {
            return Err(ConfigError::new(
                "INVITE_ACCEPT_PER_MINUTE",
                "must be at least 1",
            ));
        }
        Ok(Some(InviteConfig {
            accept_per_minute: self.invite_accept_per_minute,
            ttl,
            base_url,
            redirect_url,
            product,
            smtp,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_are_checked_without_echo() {
        let bad = SecretString::from("ftp://user:hunter2hunter2@mail.example".to_owned());
        let msg = check_smtp_url(&bad).unwrap_err();
        assert!(!msg.contains("hunter2"), "{msg}");
        for good in [
            "smtp://127.0.0.1:2525",
            "smtps://u:p@mail.example:465",
            "smtp://u:p@mail.example:587?tls=required",
        ] {
            assert!(
                check_smtp_url(&SecretString::from(good.to_owned())).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_ttl("36h"), Ok(Duration::from_secs(36 * 3_600)));
        assert_eq!(parse_ttl("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_ttl("30d"), Ok(MAX_TTL));
        for bad in [
            "",
            "7",
            "d",
            "0s",
            "31d",
            "1.5d",
            "-1d",
            "7 d",
            "99999999999999999999d",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }
}
