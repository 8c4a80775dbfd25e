//! Links: which roster row each auth user is linked to. An auth user is
//! linked to at most one row; every link written is a compare-and-set on
//! what provisioning read.

use crate::event::Email;
use crate::state::RowStatus;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// The roster row an auth user is linked to, as far as deciding needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkRow {
    pub(crate) email: Option<String>,
    pub(crate) live: bool,
}

/// Every roster link: which row (email, live) each linked user belongs to.
pub(crate) async fn all_links(
    db: &mut PgConnection,
) -> Result<HashMap<Uuid, LinkRow>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select auth_user_id as "id!", email, status <> $1 as "live!"
           from roster where auth_user_id is not null"#,
        RowStatus::Deleted.as_str()
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.id,
                LinkRow {
                    email: r.email,
                    live: r.live,
                },
            )
        })
        .collect())
}

/// The row an auth user is linked to, if any.
pub(crate) async fn link_row(
    conn: &mut PgConnection,
    user: Uuid,
) -> Result<Option<LinkRow>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select email, status <> $2 as "live!" from roster where auth_user_id = $1"#,
        user,
        RowStatus::Deleted.as_str()
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| LinkRow {
        email: r.email,
        live: r.live,
    }))
}

/// Links a user created just now, which no other row can link yet; the
/// same compare-and-set as [`link`], in one statement.
pub(crate) async fn link_new(
    conn: &mut PgConnection,
    person: &Email,
    row_id: &str,
    expected: Option<Uuid>,
    user: Uuid,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query!(
        "update roster set auth_user_id = $2, auth_linked_at = now()
         where id = $1 and email = $3 and status = $5
           and auth_user_id is not distinct from $4",
        row_id,
        user,
        person.as_str(),
        expected,
        RowStatus::Active.as_str()
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Makes `user` the holder row's auth user, taking the link from whichever
/// row had it (an auth user is linked to at most one row) — but only if
/// the row still carries the person's email, is active and links what the
/// decision saw. `false` when the roster moved on: decide again.
pub(crate) async fn link(
    conn: &mut PgConnection,
    person: &Email,
    row_id: &str,
    expected: Option<Uuid>,
    user: Uuid,
) -> Result<bool, sqlx::Error> {
    let mut tx = sqlx::Acquire::begin(conn).await?;
    sqlx::query!(
        "update roster set auth_user_id = null where auth_user_id = $2 and id <> $1",
        row_id,
        user
    )
    .execute(&mut *tx)
    .await?;
    let linked = link_new(&mut tx, person, row_id, expected, user).await?;
    if linked {
        tx.commit().await?;
    }
    Ok(linked)
}
