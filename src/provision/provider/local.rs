//! The built-in provider: auth accounts in rosterd's own database
//! (`auth_accounts`), with Supabase Auth's semantics — unique emails,
//! caller-chosen ids, bans as a `banned_until` far in the future — so
//! `make run` provisions with nothing else configured.

use super::{AuthProvider, AuthUser, Page, Profile, ProviderError, UserUpdate};
use chrono::{DateTime, Utc};
use reqwest::Url;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone)]
pub struct LocalProvider {
    db: PgPool,
    /// Accounts are created with their email unconfirmed until the person
    /// accepts their invitation ([`AuthProvider::welcome`]).
    inviting: bool,
}

impl LocalProvider {
    pub fn new(db: PgPool) -> Self {
        Self {
            db,
            inviting: false,
        }
    }

    /// With invitations on: new accounts wait for their person to accept.
    pub fn inviting(mut self, on: bool) -> Self {
        self.inviting = on;
        self
    }
}

struct Row {
    id: Uuid,
    email: String,
    user_metadata: Value,
    app_metadata: Value,
    banned_until: Option<DateTime<Utc>>,
}

impl From<Row> for AuthUser {
    fn from(r: Row) -> Self {
        AuthUser {
            id: r.id,
            email: r.email,
            banned: r.banned_until.is_some_and(|t| t > Utc::now()),
            name: r.user_metadata["name"].as_str().map(str::to_owned),
            roles: r.app_metadata["roles"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            roster_id: r.app_metadata["roster_id"].as_str().map(str::to_owned),
            managed: r.app_metadata["managed_by"].as_str() == Some(super::MANAGED_BY),
        }
    }
}

/// Our own database failing is worth a retry, like a provider 5xx.
fn transient(e: sqlx::Error) -> ProviderError {
    ProviderError::Transient {
        message: format!("local auth store: {e}"),
        retry_after: None,
    }
}

fn metadata(p: &Profile) -> (Value, Value) {
    (
        json!({"name": p.name}),
        json!({"roles": p.roles, "roster_id": p.roster_id, "managed_by": super::MANAGED_BY}),
    )
}

#[async_trait::async_trait]
impl AuthProvider for LocalProvider {
    async fn get_user(&self, id: Uuid) -> Result<Option<AuthUser>, ProviderError> {
        let row = sqlx::query_as!(
            Row,
            "select id, email, user_metadata, app_metadata, banned_until
             from auth_accounts where id = $1",
            id
        )
        .fetch_optional(&self.db)
        .await
        .map_err(transient)?;
        Ok(row.map(Into::into))
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<AuthUser>, ProviderError> {
        let row = sqlx::query_as!(
            Row,
            "select id, email, user_metadata, app_metadata, banned_until
             from auth_accounts where lower(email) = lower($1)",
            email
        )
        .fetch_optional(&self.db)
        .await
        .map_err(transient)?;
        Ok(row.map(Into::into))
    }

    async fn create_user(&self, id: Uuid, profile: &Profile) -> Result<AuthUser, ProviderError> {
        let (user_meta, app_meta) = metadata(profile);
        let row = sqlx::query_as!(
            Row,
            "insert into auth_accounts (id, email, user_metadata, app_metadata, email_confirmed_at)
             values ($1, lower($2), $3, $4, case when $5 then null else now() end)
             returning id, email, user_metadata, app_metadata, banned_until",
            id,
            profile.email,
            user_meta,
            app_meta,
            self.inviting
        )
        .fetch_one(&self.db)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.constraint() == Some("auth_accounts_email_key") => {
                ProviderError::EmailExists
            }
            sqlx::Error::Database(d) if d.constraint() == Some("auth_accounts_pkey") => {
                ProviderError::IdExists
            }
            _ => transient(e),
        })?;
        Ok(row.into())
    }

    async fn update_user(&self, id: Uuid, update: &UserUpdate) -> Result<AuthUser, ProviderError> {
        let (email, user_meta, app_meta) = match &update.profile {
            Some(p) => {
                let (u, a) = metadata(p);
                (Some(p.email.as_str()), Some(u), Some(a))
            }
            None => (None, None, None),
        };
        // Supabase's admin update merges the metadata objects it is sent.
        let row = sqlx::query_as!(
            Row,
            r#"update auth_accounts set
                   email = coalesce(lower($2), email),
                   user_metadata = user_metadata || coalesce($3, '{}'::jsonb),
                   app_metadata = app_metadata || coalesce($4, '{}'::jsonb),
                   banned_until = case $5::boolean
                       when true then now() + interval '876000 hours'
                       when false then null
                       else banned_until end,
                   updated_at = now()
               where id = $1
               returning id, email, user_metadata, app_metadata, banned_until"#,
            id,
            email,
            user_meta,
            app_meta,
            update.banned
        )
        .fetch_optional(&self.db)
        .await
        .map_err(|e| match &e {
            // As GoTrue: 422 email_exists when the new email is taken.
            sqlx::Error::Database(d) if d.constraint() == Some("auth_accounts_email_key") => {
                ProviderError::EmailExists
            }
            _ => transient(e),
        })?;
        row.map(Into::into).ok_or(ProviderError::NotFound)
    }

    async fn list_users(&self, page: u32, per_page: u32) -> Result<Page, ProviderError> {
        let per_page = per_page.clamp(1, 1000);
        let offset = i64::from(page.max(1) - 1) * i64::from(per_page);
        // One extra row tells whether another page follows.
        let mut rows = sqlx::query_as!(
            Row,
            "select id, email, user_metadata, app_metadata, banned_until
             from auth_accounts order by created_at, id limit $1 offset $2",
            i64::from(per_page) + 1,
            offset
        )
        .fetch_all(&self.db)
        .await
        .map_err(transient)?;
        let more = rows.len() > per_page as usize;
        rows.truncate(per_page as usize);
        Ok(Page {
            users: rows.into_iter().map(Into::into).collect(),
            next: more.then_some(page.max(1) + 1),
        })
    }

    /// There is no sign-in link to make here: accepting confirms the
    /// account's email, and the person goes on to `redirect`.
    async fn welcome(&self, id: Uuid, _email: &str, redirect: &Url) -> Result<Url, ProviderError> {
        let confirmed = sqlx::query!(
            "update auth_accounts set email_confirmed_at = coalesce(email_confirmed_at, now()),
                    updated_at = now()
             where id = $1 and (banned_until is null or banned_until <= now())",
            id
        )
        .execute(&self.db)
        .await
        .map_err(transient)?;
        if confirmed.rows_affected() == 0 {
            return Err(ProviderError::NotFound);
        }
        Ok(redirect.clone())
    }
}
