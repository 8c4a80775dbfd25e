//! People and groups as a SCIM client sees them: one record or group, or a
//! page of those matching a [`Filter`], which `filter_sql` turns into SQL so
//! the database does the filtering (an index serves `userName eq`).

use super::filter_sql::{push, BadFilter, Scope};
use crate::event::Details;
use crate::filter::Filter;
use crate::state::RowStatus;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

/// A live record as the SCIM `User` resource shows it.
#[derive(Debug, Clone)]
pub(crate) struct PersonView {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) name: Option<String>,
    pub(crate) status: RowStatus,
    pub(crate) groups: Vec<String>,
    pub(crate) details: Details,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PersonRecord {
    id: String,
    email: Option<String>,
    name: Option<String>,
    status: String,
    groups: Vec<String>,
    details: Option<Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<PersonRecord> for PersonView {
    type Error = sqlx::Error;

    fn try_from(r: PersonRecord) -> Result<Self, sqlx::Error> {
        let decode = |e: String| sqlx::Error::Decode(e.into());
        Ok(Self {
            id: r.id,
            email: r
                .email
                .ok_or_else(|| decode("a live row without an email".into()))?,
            name: r.name,
            status: r.status.parse().map_err(|e| decode(format!("{e}")))?,
            groups: r.groups,
            details: r
                .details
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| decode(format!("roster.details: {e}")))?
                .unwrap_or_default(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A SCIM group: its name; its members are the live records whose
/// `groups` hold that name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct GroupView {
    pub(crate) id: Uuid,
    pub(crate) display_name: String,
    pub(crate) external_id: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

const PERSON_COLUMNS: &str =
    "r.id, r.email, r.name, r.status, r.groups, r.details, r.created_at, r.updated_at";

/// A live record (active or disabled) by id.
pub(crate) async fn person(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<PersonView>, sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "select {PERSON_COLUMNS} from roster r where r.id = "
    ));
    q.push_bind(id)
        .push(" and r.status <> ")
        .push_bind(RowStatus::Deleted.as_str());
    q.build_query_as::<PersonRecord>()
        .fetch_optional(conn)
        .await?
        .map(PersonView::try_from)
        .transpose()
}

/// The live records matching `filter`, ordered by id: how many match in
/// all, and the page of `limit` from `offset`.
pub(crate) async fn people(
    conn: &mut PgConnection,
    filter: Option<&Filter>,
    offset: i64,
    limit: i64,
) -> Result<Result<(i64, Vec<PersonView>), BadFilter>, sqlx::Error> {
    // The count and the page are two statements: one with `count(*) over ()`
    // would carry every match's columns through the window, which made a
    // full listing half again as slow (measured with `make bench`).
    let mut count = QueryBuilder::<Postgres>::new("select count(*) from roster r where ");
    if let Err(e) = people_where(&mut count, filter) {
        return Ok(Err(e));
    }
    let total: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;
    if limit == 0 || offset >= total {
        return Ok(Ok((total, Vec::new())));
    }
    let mut page =
        QueryBuilder::<Postgres>::new(format!("select {PERSON_COLUMNS} from roster r where "));
    people_where(&mut page, filter).expect("checked by the count");
    page.push(" order by r.id limit ")
        .push_bind(limit)
        .push(" offset ")
        .push_bind(offset);
    let rows = page
        .build_query_as::<PersonRecord>()
        .fetch_all(conn)
        .await?;
    let people = rows
        .into_iter()
        .map(PersonView::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Ok((total, people)))
}

fn people_where(
    q: &mut QueryBuilder<'_, Postgres>,
    filter: Option<&Filter>,
) -> Result<(), BadFilter> {
    q.push("r.status <> ")
        .push_bind(RowStatus::Deleted.as_str());
    if let Some(f) = filter {
        q.push(" and (");
        push(q, f, Scope::Person)?;
        q.push(")");
    }
    Ok(())
}

/// A group by id.
pub(crate) async fn group(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<GroupView>, sqlx::Error> {
    sqlx::query_as!(
        GroupView,
        "select id, display_name, external_id, created_at, updated_at from scim_groups where id = $1",
        id
    )
    .fetch_optional(conn)
    .await
}

/// The groups matching `filter`, ordered by name then id.
pub(crate) async fn groups(
    conn: &mut PgConnection,
    filter: Option<&Filter>,
    offset: i64,
    limit: i64,
) -> Result<Result<(i64, Vec<GroupView>), BadFilter>, sqlx::Error> {
    let mut count = QueryBuilder::<Postgres>::new("select count(*) from scim_groups g where ");
    if let Err(e) = groups_where(&mut count, filter) {
        return Ok(Err(e));
    }
    let total: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;
    if limit == 0 || offset >= total {
        return Ok(Ok((total, Vec::new())));
    }
    let mut page = QueryBuilder::<Postgres>::new(
        "select g.id, g.display_name, g.external_id, g.created_at, g.updated_at from scim_groups g where ",
    );
    groups_where(&mut page, filter).expect("checked by the count");
    page.push(" order by g.id limit ")
        .push_bind(limit)
        .push(" offset ")
        .push_bind(offset);
    Ok(Ok((
        total,
        page.build_query_as::<GroupView>().fetch_all(conn).await?,
    )))
}

fn groups_where(
    q: &mut QueryBuilder<'_, Postgres>,
    filter: Option<&Filter>,
) -> Result<(), BadFilter> {
    q.push("true");
    if let Some(f) = filter {
        q.push(" and (");
        push(q, f, Scope::Group)?;
        q.push(")");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter identity providers send before every create is served by
    /// `roster_user_name_idx`: the SQL written for `userName eq` matches
    /// the index's expression. (Seq scans are switched off, as the tiny test
    /// table would otherwise be scanned whatever the indexes.)
    #[sqlx::test]
    async fn user_name_eq_uses_its_index(db: sqlx::PgPool) {
        let mut conn = db.acquire().await.unwrap();
        sqlx::query("set enable_seqscan = off")
            .execute(&mut *conn)
            .await
            .unwrap();
        let filter = Filter::parse(r#"userName eq "Ada@Example.com""#).unwrap();
        let mut q = QueryBuilder::<Postgres>::new("explain select count(*) from roster r where ");
        people_where(&mut q, Some(&filter)).unwrap();
        let plan: Vec<String> = q.build_query_scalar().fetch_all(&mut *conn).await.unwrap();
        assert!(
            plan.iter().any(|l| l.contains("roster_user_name_idx")),
            "{}",
            plan.join("\n")
        );
    }
}
