//! Counts and times every call to an auth provider, whichever it is, so the
//! providers themselves stay about their APIs.

use super::{AuthProvider, AuthUser, Page, Profile, ProviderError, UserUpdate};
use reqwest::Url;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

pub(crate) struct Metered {
    inner: Arc<dyn AuthProvider>,
}

impl Metered {
    pub(crate) fn wrap(inner: Arc<dyn AuthProvider>) -> Arc<dyn AuthProvider> {
        Arc::new(Self { inner })
    }
}

/// The `result` label: `ok`, or the kind of error (never its message).
fn result_label<T>(r: &Result<T, ProviderError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(ProviderError::EmailExists) => "email_exists",
        Err(ProviderError::IdExists) => "id_exists",
        Err(ProviderError::NotFound) => "not_found",
        Err(ProviderError::Transient { .. }) => "transient",
        Err(ProviderError::Permanent { .. }) => "permanent",
    }
}

async fn observe<T>(
    action: &'static str,
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    let started = Instant::now();
    let r = call.await;
    crate::metrics::provider_call(action, result_label(&r), started.elapsed());
    r
}

#[async_trait::async_trait]
impl AuthProvider for Metered {
    async fn get_user(&self, id: Uuid) -> Result<Option<AuthUser>, ProviderError> {
        observe("get_user", self.inner.get_user(id)).await
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<AuthUser>, ProviderError> {
        observe("find_by_email", self.inner.find_by_email(email)).await
    }

    async fn create_user(&self, id: Uuid, profile: &Profile) -> Result<AuthUser, ProviderError> {
        observe("create_user", self.inner.create_user(id, profile)).await
    }

    async fn update_user(&self, id: Uuid, update: &UserUpdate) -> Result<AuthUser, ProviderError> {
        observe("update_user", self.inner.update_user(id, update)).await
    }

    async fn list_users(&self, page: u32, per_page: u32) -> Result<Page, ProviderError> {
        observe("list_users", self.inner.list_users(page, per_page)).await
    }

    async fn welcome(&self, id: Uuid, email: &str, redirect: &Url) -> Result<Url, ProviderError> {
        observe("welcome", self.inner.welcome(id, email, redirect)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_labels_name_the_kind_not_the_message() {
        let transient: Result<(), _> = Err(ProviderError::Transient {
            message: "ada@example.com timed out".into(),
            retry_after: None,
        });
        assert_eq!(result_label(&transient), "transient");
        let permanent: Result<(), _> = Err(ProviderError::Permanent {
            message: "nope".into(),
        });
        assert_eq!(result_label(&permanent), "permanent");
        assert_eq!(
            result_label(&Ok::<_, ProviderError>(None::<AuthUser>)),
            "ok"
        );
        assert_eq!(
            result_label::<()>(&Err(ProviderError::EmailExists)),
            "email_exists"
        );
        assert_eq!(
            result_label::<()>(&Err(ProviderError::IdExists)),
            "id_exists"
        );
        assert_eq!(
            result_label::<()>(&Err(ProviderError::NotFound)),
            "not_found"
        );
    }
}
