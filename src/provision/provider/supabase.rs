//! Supabase Auth (GoTrue) admin API client. (Placeholder until merged.)

use super::{AuthProvider, AuthUser, Page, Profile, ProviderError, UserUpdate};
use secrecy::SecretString;
use std::time::Duration;
use uuid::Uuid;

pub struct SupabaseProvider;

impl SupabaseProvider {
    pub fn new(_base_url: &str, _key: SecretString, _timeout: Duration) -> Result<Self, String> {
        Err("not built yet".into())
    }
}

#[async_trait::async_trait]
impl AuthProvider for SupabaseProvider {
    async fn get_user(&self, _id: Uuid) -> Result<Option<AuthUser>, ProviderError> {
        unimplemented!()
    }
    async fn find_by_email(&self, _email: &str) -> Result<Option<AuthUser>, ProviderError> {
        unimplemented!()
    }
    async fn create_user(&self, _id: Uuid, _p: &Profile) -> Result<AuthUser, ProviderError> {
        unimplemented!()
    }
    async fn update_user(&self, _id: Uuid, _u: &UserUpdate) -> Result<AuthUser, ProviderError> {
        unimplemented!()
    }
    async fn list_users(&self, _page: u32, _per_page: u32) -> Result<Page, ProviderError> {
        unimplemented!()
    }
}
