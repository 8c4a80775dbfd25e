//! Writing the audit log: who did what to what, in the change's own
//! transaction. A ground-floor helper, so that every room that changes
//! something on someone's behalf records it the same way; operators read
//! the log through `admin::audit`.

use serde_json::Value;
use sqlx::PgConnection;

/// Records one operator action. Pass the change's own transaction where
/// there is one, so the row and the change commit together.
pub(crate) async fn record(
    conn: &mut PgConnection,
    actor: &str,
    action: &str,
    target: Option<&str>,
    details: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into audit_log (actor, action, target, details) values ($1, $2, $3, $4)",
        actor,
        action,
        target,
        details
    )
    .execute(conn)
    .await?;
    Ok(())
}
