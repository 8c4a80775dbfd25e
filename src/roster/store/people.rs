//! People: the rows carrying one email, and which of them holds it.

use super::decode;
use crate::event::{Email, RecordId};
use crate::state::RowStatus;
use futures_util::TryStreamExt;
use sqlx::PgConnection;
use uuid::Uuid;

/// The holder rule, written out once (docs/contract.md §4): of the rows
/// carrying an email, the holder is the newest live one (not deleted),
/// newest by its profile's `(profile_at, profile_event_id)`.
///
/// Every query below reads an email's rows in one order, newest first,
/// which is the order of `roster_email_idx`: the database walks the index
/// and sorts nothing, and says nothing about liveness. This puts the live
/// rows ahead of the deleted ones, each group still newest first (the sort
/// is stable). The first row then is the holder when it is live; when it
/// is not, no live row carries the email and it is the newest deleted one.
fn holder_first<T>(rows: &mut [T], status: impl Fn(&T) -> RowStatus) {
    rows.sort_by_key(|r| status(r) == RowStatus::Deleted);
}

/// A roster row as provisioning reads it.
pub(crate) struct PersonRow {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) status: RowStatus,
    pub(crate) name: Option<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) auth_user_id: Option<Uuid>,
}

/// The rows carrying `email`, holder first.
pub(crate) async fn person_rows(
    conn: &mut PgConnection,
    email: &Email,
) -> Result<Vec<PersonRow>, sqlx::Error> {
    let mut rows = sqlx::query_as!(
        PersonRow,
        r#"select r.id, r.email as "email!", r.status as "status!: RowStatus", r.name,
                  case when o.user_id is null then r.roles
                       else effective_roles(r.roles, o.preserve, o.suppress, o.frozen_roles) end as "roles!", r.auth_user_id
           from roster r left join role_overrides o on o.user_id = r.auth_user_id
           where r.email = $1
           order by r.profile_at desc, r.profile_event_id desc"#,
        email.as_str()
    )
    .fetch_all(conn)
    .await?;
    holder_first(&mut rows, |r| r.status);
    Ok(rows)
}

/// Every person the roster knows, one email at a time in email order, each
/// with its rows holder first. Rows are streamed, not loaded at once.
pub(crate) async fn each_person(
    conn: &mut PgConnection,
    mut each: impl FnMut(Email, Vec<PersonRow>),
) -> Result<(), sqlx::Error> {
    let mut rows = sqlx::query_as!(
        PersonRow,
        r#"select r.id, r.email as "email!", r.status as "status!: RowStatus", r.name,
                  case when o.user_id is null then r.roles
                       else effective_roles(r.roles, o.preserve, o.suppress, o.frozen_roles) end as "roles!", r.auth_user_id
           from roster r left join role_overrides o on o.user_id = r.auth_user_id
           where r.email is not null
           order by r.email, r.profile_at desc, r.profile_event_id desc"#
    )
    .fetch(conn);
    let mut person: Vec<PersonRow> = Vec::new();
    let mut done = |mut rows: Vec<PersonRow>| {
        if let Some(first) = rows.first() {
            let email = Email::from_trusted(first.email.clone());
            holder_first(&mut rows, |r| r.status);
            each(email, rows);
        }
    };
    while let Some(r) = rows.try_next().await? {
        if person.first().is_some_and(|p| p.email != r.email) {
            done(std::mem::take(&mut person));
        }
        person.push(r);
    }
    done(person);
    Ok(())
}

/// Emails carried by more than one live row: the holder still answers,
/// operators are told (docs/contract.md §4).
pub async fn email_conflicts(conn: &mut PgConnection) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select email as "email!", count(*) as "rows!"
           from roster where status <> $1 and email is not null
           group by email having count(*) > 1 order by email"#,
        RowStatus::Deleted.as_str()
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.email, r.rows)).collect())
}

/// The person's holder: the newest live row carrying the email.
pub async fn holder_of(
    conn: &mut PgConnection,
    email: &Email,
) -> Result<Option<RecordId>, sqlx::Error> {
    let rows = person_rows(conn, email).await?;
    rows.into_iter()
        .next()
        .filter(|r| r.status != RowStatus::Deleted)
        .map(|r| decode(RecordId::parse(&r.id)))
        .transpose()
}

/// What the login lookup needs about a record, in one indexed query.
#[derive(Debug, Clone)]
pub(crate) struct LoginRow {
    pub(crate) id: String,
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) status: RowStatus,
    pub(crate) roles: Vec<String>,
    pub(crate) auth_user_id: Option<uuid::Uuid>,
    /// A provisioning job is queued or running for this person.
    pub(crate) pending: bool,
}

/// The holder of `email` (or, when no live row carries it, the newest
/// deleted one, so the answer can say "deleted").
pub(crate) async fn login_row_by_email(
    conn: &mut PgConnection,
    email: &Email,
) -> Result<Option<LoginRow>, sqlx::Error> {
    let mut rows = sqlx::query_as!(
        LoginRow,
        r#"select r.id, r.email, r.name, r.status as "status!: RowStatus",
                  case when o.user_id is null then r.roles
                       else effective_roles(r.roles, o.preserve, o.suppress, o.frozen_roles) end as "roles!", r.auth_user_id,
                  exists(select 1 from provisioning_jobs j
                         where j.email = r.email and j.kind = 'provision'
                           and j.state in ('pending', 'running')) as "pending!"
           from roster r left join role_overrides o on o.user_id = r.auth_user_id
           where r.email = $1
           order by r.profile_at desc, r.profile_event_id desc"#,
        email.as_str()
    )
    .fetch_all(conn)
    .await?;
    holder_first(&mut rows, |r| r.status);
    Ok(rows.into_iter().next())
}

pub(crate) async fn login_row_by_id(
    conn: &mut PgConnection,
    id: &RecordId,
) -> Result<Option<LoginRow>, sqlx::Error> {
    sqlx::query_as!(
        LoginRow,
        r#"select r.id, r.email, r.name, r.status as "status!: RowStatus",
                  case when o.user_id is null then r.roles
                       else effective_roles(r.roles, o.preserve, o.suppress, o.frozen_roles) end as "roles!", r.auth_user_id,
                  exists(select 1 from provisioning_jobs j
                         where j.email = r.email and j.kind = 'provision'
                           and j.state in ('pending', 'running')) as "pending!"
           from roster r left join role_overrides o on o.user_id = r.auth_user_id
           where r.id = $1"#,
        id.as_str()
    )
    .fetch_optional(conn)
    .await
}

/// Serialises claims on a SCIM `userName` and email until the transaction
/// ends, so two requests cannot both find them free. Keys are taken in
/// one order (no deadlock between two claims), in a key space of their
/// own (two-part keys), apart from provisioning's locks.
pub(crate) async fn lock_claims(
    conn: &mut PgConnection,
    user_name: &str,
    email: &Email,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "select pg_advisory_xact_lock(1396915529, k)
         from (select distinct hashtext(lower(x)) as k from unnest(array[$1, $2]) x order by 1) keys",
        user_name,
        email.as_str()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a live record other than `except` has the SCIM `userName`
/// (its own, else its email), compared case-insensitively.
pub(crate) async fn user_name_taken(
    conn: &mut PgConnection,
    user_name: &str,
    except: Option<&str>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (
               select 1 from roster
               where lower(coalesce(details->>'userName', email)) = lower($1)
                 and status <> 'deleted' and id is distinct from $2) as "taken!""#,
        user_name,
        except
    )
    .fetch_one(conn)
    .await
}

/// Whether a live record other than `except` carries `email`.
pub(crate) async fn held_elsewhere(
    conn: &mut PgConnection,
    email: &Email,
    except: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let rows = person_rows(conn, email).await?;
    Ok(rows
        .iter()
        .any(|r| r.status != RowStatus::Deleted && Some(r.id.as_str()) != except))
}
