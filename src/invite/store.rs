//! The `invitations` table. Every change is audited in the same statement
//! or transaction (actor `rosterd` for what provisioning and the mail job
//! do, `invitee` for an acceptance, the operator's name otherwise).
//!
//! Some statements read `roster` (never write it): whether the invited
//! user is still an active holder's, and that person's current name and
//! email, are checked in the statement that acts on them, so that an
//! acceptance or a mail cannot slip past a person leaving meanwhile.

use super::token::{Token, TokenHash};
use super::Policy;
use crate::event::Email;
use crate::outbox::{self, Job};
use crate::state::InviteState;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// Issues the first invitation of a user rosterd has just created, unless
/// it already has one, and queues its mail if there is a mailer; the new
/// invitation's id. Called inside the transaction that links the user.
pub(crate) async fn issue_new(
    tx: &mut PgConnection,
    user: Uuid,
    email: &Email,
    policy: Policy,
) -> Result<Option<i64>, sqlx::Error> {
    let id = sqlx::query_scalar!(
        r#"with issued as (
               insert into invitations (user_id, email, expires_at)
               select $1, $2, now() + make_interval(secs => $3)
               where not exists (select 1 from invitations where user_id = $1)
               on conflict (user_id) where state = 'pending' do nothing
               returning id, user_id, email),
           audited as (
               insert into audit_log (actor, action, target, details)
               select 'rosterd', 'invitation.issue', id::text,
                      jsonb_build_object('email', email, 'userId', user_id)
               from issued)
           select id as "id!" from issued"#,
        user,
        email.as_str(),
        policy.ttl.as_secs_f64()
    )
    .fetch_optional(&mut *tx)
    .await?;
    queue_mail(tx, id, email, policy).await?;
    Ok(id)
}

async fn queue_mail(
    tx: &mut PgConnection,
    id: Option<i64>,
    email: &Email,
    policy: Policy,
) -> Result<(), sqlx::Error> {
    if let Some(invitation) = id.filter(|_| policy.mail) {
        let job = Job::Invite {
            invitation,
            email: email.clone(),
        };
        outbox::enqueue(tx, [job]).await?;
    }
    Ok(())
}

/// After a provisioning run: the open (or lapsed) invitations of users that
/// no active person holds any more are revoked, and an active holder whose
/// last invitation was revoked that way, and who never accepted one, is
/// invited again (the id of that invitation).
pub(crate) async fn settle(
    conn: &mut PgConnection,
    holder: Option<(Uuid, &Email)>,
    gone: &[Uuid],
    policy: Policy,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = sqlx::Acquire::begin(conn).await?;
    if !gone.is_empty() {
        sqlx::query!(
            r#"with revoked as (
                   update invitations set state = 'revoked', revoked_reason = 'left',
                          revoked_at = now(), token_hash = null, updated_at = now()
                   where user_id = any($1) and state in ('pending', 'expired')
                   returning id, user_id, email)
               insert into audit_log (actor, action, target, details)
               select 'rosterd', 'invitation.revoke', id::text,
                      jsonb_build_object('email', email, 'userId', user_id, 'reason', 'left')
               from revoked"#,
            gone
        )
        .execute(&mut *tx)
        .await?;
    }
    let mut issued = None;
    if let Some((user, email)) = holder {
        let id = sqlx::query_scalar!(
            r#"with last as (
                   select state, revoked_reason from invitations
                   where user_id = $1 order by id desc limit 1),
               issued as (
                   insert into invitations (user_id, email, expires_at)
                   select $1, $2, now() + make_interval(secs => $3)
                   where exists (select 1 from last
                                 where state = 'revoked' and revoked_reason = 'left')
                     and not exists (select 1 from invitations
                                     where user_id = $1 and state = 'accepted')
                   on conflict (user_id) where state = 'pending' do nothing
                   returning id, user_id, email),
               audited as (
                   insert into audit_log (actor, action, target, details)
                   select 'rosterd', 'invitation.issue', id::text,
                          jsonb_build_object('email', email, 'userId', user_id,
                                             'reason', 'returned')
                   from issued)
               select id as "id!" from issued"#,
            user,
            email.as_str(),
            policy.ttl.as_secs_f64()
        )
        .fetch_optional(&mut *tx)
        .await?;
        queue_mail(&mut tx, id, email, policy).await?;
        issued = id;
    }
    tx.commit().await?;
    Ok(issued)
}

/// An open invitation as its link shows it.
#[derive(Debug, Clone)]
pub(crate) struct Open {
    pub(crate) id: i64,
    pub(crate) user_id: Uuid,
    /// The person's email and name now (from their roster row).
    pub(crate) email: String,
    pub(crate) name: Option<String>,
}

/// The pending, unexpired invitation with this token, while its user is an
/// active person's.
pub(crate) async fn open(
    conn: &mut PgConnection,
    token: &TokenHash,
) -> Result<Option<Open>, sqlx::Error> {
    sqlx::query_as!(
        Open,
        r#"select i.id, i.user_id, r.email as "email!", r.name
           from invitations i join roster r on r.auth_user_id = i.user_id
           where i.token_hash = $1 and i.state = 'pending' and i.expires_at > now()
             and r.status = 'active' and r.email is not null"#,
        &token.0
    )
    .fetch_optional(conn)
    .await
}

/// Accepts the invitation: once, whoever asks at the same time, and only
/// while it is open (see [`open`]). `None` when it is not.
pub(crate) async fn accept(
    conn: &mut PgConnection,
    token: &TokenHash,
) -> Result<Option<Open>, sqlx::Error> {
    sqlx::query_as!(
        Open,
        r#"with accepted as (
               update invitations i set state = 'accepted', accepted_at = now(),
                      token_hash = null, updated_at = now()
               from roster r
               where i.token_hash = $1 and i.state = 'pending' and i.expires_at > now()
                 and r.auth_user_id = i.user_id and r.status = 'active'
                 and r.email is not null
               returning i.id, i.user_id, r.email, r.name),
           audited as (
               insert into audit_log (actor, action, target, details)
               select 'invitee', 'invitation.accept', id::text,
                      jsonb_build_object('email', email, 'userId', user_id)
               from accepted)
           select id as "id!", user_id as "user_id!", email as "email!", name from accepted"#,
        &token.0
    )
    .fetch_optional(conn)
    .await
}

/// What the mail job sends: a fresh link for the invitation's current round.
#[derive(Debug)]
pub(crate) struct ToSend {
    pub(crate) token: Token,
    pub(crate) round: i32,
    pub(crate) email: String,
    pub(crate) name: Option<String>,
    pub(crate) expires_at: DateTime<Utc>,
}

/// Makes the link for the round not yet sent, replacing any earlier token;
/// `None` when there is nothing to send (sent already, accepted, revoked,
/// expired, or the person is no longer active).
pub(crate) async fn mint(
    conn: &mut PgConnection,
    invitation: i64,
) -> Result<Option<ToSend>, sqlx::Error> {
    let token = Token::random();
    let row = sqlx::query!(
        r#"update invitations i set token_hash = $2, updated_at = now()
           from roster r
           where i.id = $1 and i.state = 'pending' and i.sent_round < i.round
             and i.expires_at > now()
             and r.auth_user_id = i.user_id and r.status = 'active' and r.email is not null
           returning i.round, r.email as "email!", r.name, i.expires_at"#,
        invitation,
        &token.hash().0
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| ToSend {
        token,
        round: r.round,
        email: r.email,
        name: r.name,
        expires_at: r.expires_at,
    }))
}

/// Records that the SMTP server took the round's mail.
pub(crate) async fn sent(
    conn: &mut PgConnection,
    invitation: i64,
    round: i32,
    to: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"with marked as (
               update invitations set sent_round = greatest(sent_round, $2), sent_at = now(),
                      updated_at = now()
               where id = $1
               returning id, user_id)
           insert into audit_log (actor, action, target, details)
           select 'rosterd', 'invitation.send', id::text,
                  jsonb_build_object('email', $3::text, 'userId', user_id, 'round', $2)
           from marked"#,
        invitation,
        round,
        to
    )
    .execute(conn)
    .await?;
    Ok(())
}

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
    actor: &str,
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
    actor: &str,
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

/// Whether the user has an open invitation (the login lookup's
/// `auth.state: "invited"`).
pub(crate) async fn is_invited(conn: &mut PgConnection, user: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from invitations
                         where user_id = $1 and state = 'pending' and expires_at > now()) as "x!""#,
        user
    )
    .fetch_one(conn)
    .await
}
