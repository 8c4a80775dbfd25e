//! The auth provider seam: Supabase Auth (GoTrue admin API) or the local
//! `auth_accounts` table. Both keep the same semantics, so everything above
//! this trait is written once.

pub mod local;
pub(crate) mod metered;
pub mod supabase;

use reqwest::Url;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// How long a ban lasts: ~100 years, the convention for "decommissioned".
pub(crate) const BAN_DURATION: &str = "876000h";

/// `app_metadata.managed_by` on every auth user rosterd creates or adopts:
/// ownership is recorded at the provider too, so a user that lost its
/// roster link (a crash between create and link, an operator's SQL) is
/// still known to be rosterd's to ban. Users without it are never touched
/// unless the contract's adoption rule hands them to a person.
pub(crate) const MANAGED_BY: &str = "rosterd";

/// An auth user as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub id: Uuid,
    /// Lower-cased by the provider.
    pub email: String,
    pub banned: bool,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub roster_id: Option<String>,
    /// Carries `app_metadata.managed_by = "rosterd"`.
    pub managed: bool,
}

/// What rosterd writes about a person: `user_metadata.name`,
/// `app_metadata.roles`, `app_metadata.roster_id` (and always
/// `app_metadata.managed_by`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub email: String,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub roster_id: String,
}

/// A change to an existing user; `None` fields are left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    pub profile: Option<Profile>,
    /// `Some(true)` bans for [`BAN_DURATION`], `Some(false)` lifts a ban.
    pub banned: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Another user has the email (GoTrue 422 `email_exists`), on create or
    /// on an email change.
    #[error("a user with this email already exists")]
    EmailExists,
    /// Create refused because the id is taken.
    #[error("a user with this id already exists")]
    IdExists,
    /// The user id does not exist (GoTrue 404 `user_not_found`).
    #[error("user not found")]
    NotFound,
    /// Worth retrying: 429, 5xx, timeouts, connection errors.
    #[error("transient provider error: {message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying will not help: other 4xx, malformed answers.
    #[error("permanent provider error: {message}")]
    Permanent { message: String },
}

impl ProviderError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// One page of users and whether another follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub users: Vec<AuthUser>,
    pub next: Option<u32>,
}

#[async_trait::async_trait]
pub trait AuthProvider: Send + Sync + 'static {
    /// `None` when no user has this id.
    async fn get_user(&self, id: Uuid) -> Result<Option<AuthUser>, ProviderError>;
    /// The user whose email equals `email` exactly (case-insensitively).
    async fn find_by_email(&self, email: &str) -> Result<Option<AuthUser>, ProviderError>;
    /// Creates a confirmed, unbanned user with this id and profile.
    async fn create_user(&self, id: Uuid, profile: &Profile) -> Result<AuthUser, ProviderError>;
    async fn update_user(&self, id: Uuid, update: &UserUpdate) -> Result<AuthUser, ProviderError>;
    /// Page `page` (1-based) of every user, `per_page` at a time.
    async fn list_users(&self, page: u32, per_page: u32) -> Result<Page, ProviderError>;
    /// Where an invited person goes once they accept: a sign-in link made
    /// for them now that ends at `redirect` (Supabase), or `redirect`
    /// itself once their account's email is marked confirmed (local).
    async fn welcome(&self, id: Uuid, email: &str, redirect: &Url) -> Result<Url, ProviderError>;
}
