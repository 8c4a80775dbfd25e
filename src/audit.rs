//! Writing the audit log: who did what to what, in the change's own
//! transaction. A ground-floor helper, so that every room that changes
//! something on someone's behalf records it the same way; operators read
//! the log through `admin::audit`.

use crate::state::OperatorRole;
use serde_json::Value;
use sqlx::PgConnection;

/// Who asked for a change: a name (an operator token's, `cli:$USER`, an
/// identity provider's, `rosterd`) and, for an operator's token, its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Actor {
    pub(crate) name: String,
    pub(crate) role: Option<OperatorRole>,
}

impl Actor {
    /// An operator's token with the `operator` role.
    pub(crate) fn operator(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            role: Some(OperatorRole::Operator),
        }
    }

    /// Anyone else: the CLI, an identity provider, rosterd itself.
    pub(crate) fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            role: None,
        }
    }
}

/// Records one action. Pass the change's own transaction where there is
/// one, so the row and the change commit together.
pub(crate) async fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    details: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into audit_log (actor, actor_role, action, target, details)
         values ($1, $2, $3, $4, $5)",
        actor.name,
        actor.role.map(OperatorRole::as_str),
        action,
        target,
        details
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that a viewer's token was refused a change (`method path`), with
/// the role that asked.
pub(crate) async fn refused(
    conn: &mut PgConnection,
    actor: &str,
    role: crate::state::OperatorRole,
    what: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into audit_log (actor, actor_role, action, target, details)
         values ($1, $2, 'access.refused', $3, '{}'::jsonb)",
        actor,
        role.as_str(),
        what
    )
    .execute(conn)
    .await?;
    Ok(())
}
