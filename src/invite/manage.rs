//! Invitations for operators, over the `invitations` table: the listing,
//! a resend (a new round), a revoke, and what `rosterd prune` does to
//! them. Each change is audited in its own transaction.

use super::store::queue_mail;
use super::token::Token;
use super::Policy;
use crate::event::Email;
use crate::state::InviteState;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// One invitation for operators.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub(crate) id: i64,
    pub(crate) user_id: Uuid,
    pub(crate) email: String,
    pub(crate) state: InviteState,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) sent_at: Option<DateTime<Utc>>,
    /// Times a link was sent or rotated (1 until the first resend).
    pub(crate) round: i32,
    pub(crate) accepted_at: Option<DateTime<Utc>>,
    pub(crate) revoked_at: Option<DateTime<Utc>>,
    pub(crate) revoked_reason: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

/// `GET /api/admin/invitations` filters, parsed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filter {
    pub(crate) state: Option<InviteState>,
    pub(crate) email: Option<String>,
    pub(crate) user_id: Option<Uuid>,
    pub(crate) since: Option<DateTime<Utc>>,
    pub(crate) until: Option<DateTime<Utc>>,
    /// Only ids below this one (the cursor).
    pub(crate) before: Option<i64>,
}

/// Newest first; `limit + 1` rows, so the caller knows if there is more.
pub(crate) async fn list(
    conn: &mut PgConnection,
    f: &Filter,
    limit: i64,
) -> Result<Vec<Invitation>, sqlx::Error> {
    sqlx::query_as!(
        Invitation,
        r#"select id, user_id, email, state as "state: InviteState", expires_at, sent_at, round,
                  accepted_at, revoked_at, revoked_reason, created_at, updated_at
           from invitations
           where ($1::text is null or state = $1) and ($2::text is null or email = $2)
             and ($3::uuid is null or user_id = $3)
             and ($4::timestamptz is null or created_at >= $4)
             and ($5::timestamptz is null or created_at < $5)
             and ($6::bigint is null or id < $6)
           order by id desc limit $7"#,
        f.state.map(InviteState::as_str),
        f.email,
        f.user_id,
        f.since,
        f.until,
        f.before,
        limit + 1
    )
    .fetch_all(conn)
    .await
}

/// The latest invitation of whoever `email` names: the address it was
/// issued to, or the person who holds that email now.
pub(crate) async fn latest_for_email(
    conn: &mut PgConnection,
    email: &Email,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select id from invitations
           where email = $1
              or user_id in (select auth_user_id from roster
                             where email = $1 and auth_user_id is not null)
           order by id desc limit 1"#,
        email.as_str()
    )
    .fetch_optional(conn)
    .await
}

/// Why an operator's change was refused.
#[derive(Debug)]
pub(crate) enum Refused {
    NotFound,
    /// Not in a state the change applies to; the message says which.
    State(String),
}

/// A resend: a new round (the old link stops working at once), the expiry
/// reset, pending again if it had lapsed. With a mailer the link is sent by
/// the mail job; without one it is made here and returned, the one time it
/// is shown.
pub(crate) async fn resend(
    conn: &mut PgConnection,
    id: i64,
    actor: &crate::audit::Actor,
    policy: Policy,
) -> Result<Result<(Invitation, Option<Token>), Refused>, sqlx::Error> {
    let mut tx = sqlx::Acquire::begin(conn).await?;
    let Some(current) = locked(&mut tx, id).await? else {
        return Ok(Err(Refused::NotFound));
    };
    if !matches!(current.state, InviteState::Pending | InviteState::Expired) {
        return Ok(Err(Refused::State(format!(
            "invitation {id} is {}; only pending or expired invitations can be resent",
            current.state
        ))));
    }
    let token = (!policy.mail).then(Token::random);
    let updated = sqlx::query_as!(
        Invitation,
        r#"update invitations set
               round = round + 1, token_hash = $2, state = 'pending',
               expires_at = now() + make_interval(secs => $3),
               sent_round = case when $4 then round + 1 else sent_round end,
               sent_at = case when $4 then now() else sent_at end,
               updated_at = now()
           where id = $1
           returning id, user_id, email, state as "state: InviteState", expires_at, sent_at,
                     round, accepted_at, revoked_at, revoked_reason, created_at, updated_at"#,
        id,
        token.as_ref().map(|t| t.hash().0),
        policy.ttl.as_secs_f64(),
        token.is_some()
    )
    .fetch_one(&mut *tx)
    .await;
    let updated = match updated {
        Ok(u) => u,
        // Lapsed, and the person has another open invitation meanwhile.
        Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("23505") => {
            return Ok(Err(Refused::State(format!(
                "the person already has an open invitation; resend that one instead of {id}"
            ))))
        }
        Err(e) => return Err(e),
    };
    crate::audit::record(
        &mut tx,
        actor,
        "invitation.resend",
        Some(&id.to_string()),
        &serde_json::json!({"email": updated.email, "userId": updated.user_id,
                            "round": updated.round, "mailed": policy.mail}),
    )
    .await?;
    let email = Email::from_trusted(updated.email.clone());
    queue_mail(&mut tx, Some(id), &email, policy).await?;
    tx.commit().await?;
    Ok(Ok((updated, token)))
}

/// An operator's revoke: only an open invitation, and it sticks (the
/// person is not invited again on their own).
pub(crate) async fn revoke(
    conn: &mut PgConnection,
    id: i64,
    actor: &crate::audit::Actor,
) -> Result<Result<Invitation, Refused>, sqlx::Error> {
    let mut tx = sqlx::Acquire::begin(conn).await?;
    let Some(current) = locked(&mut tx, id).await? else {
        return Ok(Err(Refused::NotFound));
    };
    if current.state != InviteState::Pending {
        return Ok(Err(Refused::State(format!(
            "invitation {id} is {}; only pending invitations can be revoked",
            current.state
        ))));
    }
    let updated = sqlx::query_as!(
        Invitation,
        r#"update invitations set state = 'revoked', revoked_reason = 'operator',
                  revoked_at = now(), token_hash = null, updated_at = now()
           where id = $1
           returning id, user_id, email, state as "state: InviteState", expires_at, sent_at,
                     round, accepted_at, revoked_at, revoked_reason, created_at, updated_at"#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    crate::audit::record(
        &mut tx,
        actor,
        "invitation.revoke",
        Some(&id.to_string()),
        &serde_json::json!({"email": updated.email, "userId": updated.user_id,
                            "reason": "operator"}),
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(updated))
}

async fn locked(tx: &mut PgConnection, id: i64) -> Result<Option<Invitation>, sqlx::Error> {
    sqlx::query_as!(
        Invitation,
        r#"select id, user_id, email, state as "state: InviteState", expires_at, sent_at, round,
                  accepted_at, revoked_at, revoked_reason, created_at, updated_at
           from invitations where id = $1 for update"#,
        id
    )
    .fetch_optional(tx)
    .await
}

/// `rosterd prune`: open invitations past their expiry become `expired`
/// (audited); `expired`, `accepted` and `revoked` ones untouched since
/// `cutoff` are deleted. Returns (expired, deleted).
pub(crate) async fn prune(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
    dry_run: bool,
) -> Result<(u64, u64), sqlx::Error> {
    if dry_run {
        let r = sqlx::query!(
            r#"select count(*) filter (where state = 'pending' and expires_at <= now()) as "expired!",
                      count(*) filter (where state <> 'pending' and updated_at < $1) as "deleted!"
               from invitations"#,
            cutoff
        )
        .fetch_one(conn)
        .await?;
        return Ok((r.expired as u64, r.deleted as u64));
    }
    let expired = sqlx::query_scalar!(
        r#"with lapsed as (
               update invitations set state = 'expired', token_hash = null, updated_at = now()
               where state = 'pending' and expires_at <= now()
               returning id, user_id, email),
           audited as (
               insert into audit_log (actor, action, target, details)
               select 'rosterd', 'invitation.expire', id::text,
                      jsonb_build_object('email', email, 'userId', user_id)
               from lapsed)
           select count(*) as "n!" from lapsed"#
    )
    .fetch_one(&mut *conn)
    .await?;
    let deleted = sqlx::query!(
        "delete from invitations where state <> 'pending' and updated_at < $1",
        cutoff
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok((expired as u64, deleted))
}
