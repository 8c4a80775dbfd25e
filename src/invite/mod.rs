//! Invitations (docs/contract.md §14): with `INVITATIONS_ENABLED`, a person
//! whose auth user rosterd creates is invited by e-mail, with a link of
//! their own that lasts `INVITE_TTL` (7 days by default) — far longer than
//! the auth provider's own sign-in links may — instead of silently getting
//! an account they know nothing about.
//!
//! - Issued by provisioning, in the transaction that links the new user
//!   ([`store::issue_new`]); revoked when the person leaves and issued
//!   again when they come back unless they had accepted ([`store::settle`]).
//! - Mailed by the outbox's second job kind ([`deliver`]), which makes the
//!   link's token at send time: the database only ever holds its SHA-256.
//! - Accepted at `/invite/{token}` (`http::invite`): once, atomically, and
//!   only while the person is still active.

pub mod deliver;
pub mod mail;
pub(crate) mod manage;
pub(crate) mod store;
pub(crate) mod token;

pub use crate::config::InvitePolicy as Policy;

/// `INVITE_BASE_URL` joined with the link's path.
pub(crate) fn link(base: &reqwest::Url, token: &token::Token) -> reqwest::Url {
    let s = format!(
        "{}/invite/{}",
        base.as_str().trim_end_matches('/'),
        token.as_str()
    );
    reqwest::Url::parse(&s).expect("a valid base URL and a base64url token make a valid URL")
}
