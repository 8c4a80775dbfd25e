//! Role overrides (`role_overrides`), keyed by the auth user a record is
//! linked to. The rule that combines them with the mapped roles is the
//! database function `effective_roles` (migrations/), which every read of a
//! person's roles uses.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A record's roles as sync maps them, its override, and the result.
#[derive(Debug, Clone)]
pub(crate) struct RolesView {
    pub(crate) email: Option<String>,
    pub(crate) user_id: Option<Uuid>,
    pub(crate) mapped: Vec<String>,
    pub(crate) preserve: Vec<String>,
    pub(crate) suppress: Vec<String>,
    pub(crate) frozen_roles: Option<Vec<String>>,
    pub(crate) effective: Vec<String>,
    pub(crate) updated_at: Option<DateTime<Utc>>,
    pub(crate) updated_by: Option<String>,
}

/// The record's roles and override; locks the record's row for the
/// transaction when `lock` (a change of the override).
pub(crate) async fn roles_view(
    conn: &mut PgConnection,
    record: &str,
    lock: bool,
) -> Result<Option<RolesView>, sqlx::Error> {
    if lock {
        sqlx::query!(
            "select 1 as one from roster where id = $1 for update",
            record
        )
        .fetch_optional(&mut *conn)
        .await?;
    }
    sqlx::query_as!(
        RolesView,
        r#"select r.email, r.auth_user_id as user_id, r.roles as mapped,
                  coalesce(o.preserve, '{}') as "preserve!", coalesce(o.suppress, '{}') as "suppress!",
                  o.frozen_roles as "frozen_roles?",
                  case when o.user_id is null then r.roles
                       else effective_roles(r.roles, o.preserve, o.suppress, o.frozen_roles)
                  end as "effective!",
                  o.updated_at as "updated_at?", o.updated_by as "updated_by?"
           from roster r left join role_overrides o on o.user_id = r.auth_user_id
           where r.id = $1"#,
        record
    )
    .fetch_optional(conn)
    .await
}

/// Sets the user's override (replacing any).
pub(crate) async fn put_override(
    conn: &mut PgConnection,
    user: Uuid,
    preserve: &[String],
    suppress: &[String],
    frozen_roles: Option<&[String]>,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into role_overrides (user_id, preserve, suppress, frozen_roles, updated_by)
         values ($1, $2, $3, $4, $5)
         on conflict (user_id) do update set
             preserve = excluded.preserve, suppress = excluded.suppress,
             frozen_roles = excluded.frozen_roles, updated_by = excluded.updated_by,
             updated_at = now()",
        user,
        preserve,
        suppress,
        frozen_roles,
        by
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the user's override; `false` when there was none.
pub(crate) async fn delete_override(
    conn: &mut PgConnection,
    user: Uuid,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query!("delete from role_overrides where user_id = $1", user)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Whether the user has an override (a run that just linked it decides
/// again, now seeing it).
pub(crate) async fn has_override(conn: &mut PgConnection, user: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from role_overrides where user_id = $1) as "x!""#,
        user
    )
    .fetch_one(conn)
    .await
}
