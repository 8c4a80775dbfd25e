//! SCIM groups: a name (unique, compared case-insensitively) and an id.
//! Membership is not kept here but on the members' rows (`roster.groups`),
//! where `ROLE_MAP` reads it.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// Creates a group; `false` when its name is taken.
pub(crate) async fn insert_group(
    conn: &mut PgConnection,
    id: Uuid,
    display_name: &str,
    external_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query_scalar!(
        r#"insert into scim_groups (id, display_name, external_id) values ($1, $2, $3)
           on conflict do nothing returning true as "inserted!""#,
        id,
        display_name,
        external_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

/// Locks a group for a change of name or members: its name and id.
pub(crate) async fn lock_group(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select display_name from scim_groups where id = $1 for update",
        id
    )
    .fetch_optional(conn)
    .await
}

/// Whether another group than `id` has the name `display_name`.
pub(crate) async fn name_taken(
    conn: &mut PgConnection,
    display_name: &str,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from scim_groups
                          where lower(display_name) = lower($1) and id <> $2) as "taken!""#,
        display_name,
        id
    )
    .fetch_one(conn)
    .await
}

pub(crate) async fn update_group(
    conn: &mut PgConnection,
    id: Uuid,
    display_name: &str,
    external_id: Option<&str>,
) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar!(
        "update scim_groups set display_name = $2, external_id = $3, updated_at = now()
         where id = $1 returning updated_at",
        id,
        display_name,
        external_id
    )
    .fetch_one(conn)
    .await
}

pub(crate) async fn delete_group(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from scim_groups where id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ids of the live records in the group named exactly `display_name`, in id order
/// (the order their rows are locked in).
pub(crate) async fn member_ids(
    conn: &mut PgConnection,
    display_name: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select id from roster
           where status <> 'deleted' and groups @> array[$1::text]
           order by id"#,
        display_name
    )
    .fetch_all(conn)
    .await
}

/// The SCIM groups among `names`, as (id, name).
pub(crate) async fn groups_named(
    conn: &mut PgConnection,
    names: &[String],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query!(
        "select id, display_name from scim_groups where display_name = any($1) order by display_name",
        names
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.display_name)).collect())
}
