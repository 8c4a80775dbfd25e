//! Provisioning on an operator's word: one record's person now, or a full
//! reconcile. Both go through the one provisioning path.

use super::audit;
use super::users::{load_row, parse_id};
use super::AdminError;
use crate::db::RunPool;
use crate::event::Email;
use crate::provision::provider::AuthProvider;
use crate::provision::reconcile::{reconcile, ReconcileError, Report};
use crate::provision::{provision_person, ProvisionError};
use crate::state::Action;
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Provisioned {
    pub(crate) user_id: String,
    pub(crate) email: String,
    pub(crate) action: Action,
}

/// `POST /api/admin/users/{id}/provision`: the record's person, now.
pub(crate) async fn provision_one(
    db: &PgPool,
    runs: &RunPool,
    provider: &dyn AuthProvider,
    actor: &crate::audit::Actor,
    raw_id: &str,
) -> Result<Provisioned, AdminError> {
    let id = parse_id(raw_id)?;
    let row = load_row(db, &id).await?;
    let email = row.email.ok_or_else(|| {
        AdminError::Conflict(format!(
            "record {id} has only a deletion and no email; there is nobody to provision"
        ))
    })?;
    let result = provision_person(runs, provider, &Email::from_trusted(email.clone())).await;
    let details = match &result {
        Ok(action) => json!({"email": email, "action": action.as_str()}),
        Err(e) => json!({"email": email, "action": "failed", "error": e.to_string()}),
    };
    audit::record(
        &mut *db.acquire().await?,
        actor,
        "user.provision",
        Some(id.as_str()),
        &details,
    )
    .await?;
    match result {
        Ok(action) => Ok(Provisioned {
            user_id: id.to_string(),
            email,
            action,
        }),
        Err(ProvisionError::Provider(e)) => Err(AdminError::Provider(e)),
        Err(ProvisionError::Db(e)) => Err(AdminError::Db(e)),
    }
}

/// One full reconcile at a time across every process sharing the database.
const RECONCILE_LOCK: i64 = 0x726f_7374_6572_6401;

/// `POST /api/admin/provision` and `rosterd provision`. A second reconcile
/// while one runs is refused rather than doubling the provider traffic.
/// The lock is transaction-scoped, so a caller that goes away releases it.
pub(crate) async fn reconcile_all(
    db: &PgPool,
    runs: &RunPool,
    provider: &dyn AuthProvider,
    actor: &crate::audit::Actor,
    dry_run: bool,
) -> Result<Report, AdminError> {
    let mut lock = db.begin().await?;
    let got = sqlx::query_scalar!("select pg_try_advisory_xact_lock($1)", RECONCILE_LOCK)
        .fetch_one(&mut *lock)
        .await?
        .unwrap_or(false);
    if !got {
        return Err(AdminError::Conflict(
            "a full reconcile is already running; try again when it has finished".into(),
        ));
    }
    let report = reconcile(&mut lock, runs, provider, dry_run)
        .await
        .map_err(|e| match e {
            ReconcileError::Provider(e) => AdminError::Provider(e),
            ReconcileError::Db(e) => AdminError::Db(e),
        })?;
    if !dry_run {
        audit::record(
            &mut lock,
            actor,
            "provision.reconcile",
            None,
            &json!(report),
        )
        .await?;
    }
    lock.commit().await?;
    Ok(report)
}
