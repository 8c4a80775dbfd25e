//! The invitation e-mail and the SMTP client that sends it (lettre).
//!
//! `SMTP_URL` is lettre's connection URL: `smtps://user:pass@host:465`
//! (TLS), `smtp://user:pass@host:587?tls=required` (STARTTLS), or plain
//! `smtp://host:25` for a relay on a trusted network. The URL carries the
//! password, so it is a secret: never logged, and errors name the server's
//! answer, not the URL.

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use maud::html;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// What a message says besides the link.
#[derive(Debug, Clone)]
pub struct Letter {
    /// `SMTP_FROM`, e.g. `Acme Accounts <accounts@acme.example>`.
    pub from: Mailbox,
    /// `INVITE_PRODUCT_NAME`: what the person is invited to.
    pub product: String,
}

/// Sends invitation mail over one pooled SMTP transport.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    letter: Letter,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.letter.from.to_string())
            .finish_non_exhaustive()
    }
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MailError {
    /// Worth trying again: the server is down, busy, or answered 4xx.
    #[error("SMTP server unavailable: {0}")]
    Transient(String),
    /// The server refused this message for good (5xx: no such mailbox, ...).
    #[error("SMTP server refused the message: {0}")]
    Permanent(String),
    #[error("the invitation e-mail could not be built: {0}")]
    Build(String),
}

impl MailError {
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// lettre's error text without anything of the URL in it.
fn redact(e: &SmtpError) -> String {
    if let Some(code) = e.status() {
        return format!("server answered {code}");
    }
    if e.is_timeout() {
        return "timed out".into();
    }
    if e.is_tls() {
        return "TLS failed".into();
    }
    if e.is_client() {
        return "bad URL or parameters".into();
    }
    "connection failed".into()
}

impl Mailer {
    pub fn new(url: &SecretString, timeout: Duration, letter: Letter) -> Result<Self, String> {
        crate::config::check_smtp_url(url)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|e| redact(&e))?
            .timeout(Some(timeout))
            .build();
        Ok(Self { transport, letter })
    }

    /// Sends one invitation; `Ok` once the server has taken it.
    pub(crate) async fn send(
        &self,
        to: &str,
        name: Option<&str>,
        link: &Url,
        expires_at: DateTime<Utc>,
    ) -> Result<(), MailError> {
        let message = compose(&self.letter, to, name, link, expires_at)?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| {
            if e.is_permanent() {
                MailError::Permanent(redact(&e))
            } else {
                MailError::Transient(redact(&e))
            }
        })
    }
}

/// What the message says: subject, plain text, and HTML saying the same.
pub(crate) fn body(
    letter: &Letter,
    name: Option<&str>,
    link: &Url,
    expires_at: DateTime<Utc>,
) -> (String, String, String) {
    let product = &letter.product;
    let until = expires_at.format("%-d %B %Y, %H:%M UTC").to_string();
    let greeting = match name {
        Some(n) if !n.trim().is_empty() => format!("Hello {},", n.trim()),
        _ => "Hello,".to_owned(),
    };
    let text = format!(
        "{greeting}\n\nYou have been invited to {product}. Open this link to accept the invitation and sign in:\n\n{link}\n\nThe link works once, until {until}. If it has expired, ask whoever manages your company's accounts to send a new one.\n\nIf you did not expect this invitation, you can ignore this message.\n"
    );
    let html = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Your invitation to " (product) } }
            body style="font-family: system-ui, sans-serif; color: #1f2933; max-width: 36rem; margin: 2rem auto; line-height: 1.5" {
                p { (greeting) }
                p { "You have been invited to " strong { (product) } "." }
                p {
                    a href=(link.as_str()) style="display: inline-block; background: #2457c5; color: #fff; padding: .6rem 1.2rem; border-radius: 6px; text-decoration: none; font-weight: 600" {
                        "Accept the invitation"
                    }
                }
                p style="color: #52606d; font-size: .9rem" {
                    "The link works once, until " (until) ". If it has expired, ask whoever manages your company's accounts to send a new one. "
                    "If the button does not work, copy this address into your browser: " br; (link.as_str())
                }
                p style="color: #52606d; font-size: .9rem" { "If you did not expect this invitation, you can ignore this message." }
            }
        }
    };
    (
        format!("Your invitation to {product}"),
        text,
        html.into_string(),
    )
}

/// The message: plain text and HTML alternatives saying the same.
pub(crate) fn compose(
    letter: &Letter,
    to: &str,
    name: Option<&str>,
    link: &Url,
    expires_at: DateTime<Utc>,
) -> Result<Message, MailError> {
    let address = to
        .parse()
        .map_err(|e| MailError::Permanent(format!("recipient address: {e}")))?;
    let (subject, text, html) = body(letter, name, link, expires_at);
    Message::builder()
        .from(letter.from.clone())
        .to(Mailbox::new(name.map(str::to_owned), address))
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter() -> Letter {
        Letter {
            from: "Acme Accounts <accounts@acme.example>".parse().unwrap(),
            product: "Acme <Intranet>".into(),
        }
    }

    #[test]
    fn both_parts_carry_the_link_and_the_html_is_escaped() {
        let link = Url::parse("https://rosterd.acme.example/invite/abc_DEF-123").unwrap();
        let at = DateTime::parse_from_rfc3339("2026-12-10T14:03:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let (subject, text, html) = body(&letter(), Some("Ada <b>"), &link, at);
        assert_eq!(subject, "Your invitation to Acme <Intranet>");
        let url = "https://rosterd.acme.example/invite/abc_DEF-123";
        assert!(
            text.contains(url) && text.contains("10 December 2026, 14:03 UTC"),
            "{text}"
        );
        assert!(text.starts_with("Hello Ada <b>,"), "{text}");
        assert_eq!(
            html.matches(url).count(),
            2,
            "the button and the copyable address"
        );
        assert!(
            html.contains("Ada &lt;b&gt;"),
            "the name is escaped in HTML: {html}"
        );
        assert!(
            html.contains("<strong>Acme &lt;Intranet&gt;</strong>"),
            "{html}"
        );
        let m = compose(&letter(), "ada@acme.example", Some("Ada"), &link, at).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            raw.contains("text/plain") && raw.contains("text/html"),
            "{raw}"
        );
    }

    #[test]
    fn a_bad_recipient_is_permanent() {
        let link = Url::parse("https://x.example/invite/t").unwrap();
        let err = compose(&letter(), "not an address", None, &link, Utc::now()).unwrap_err();
        assert!(!err.is_transient());
    }
}
