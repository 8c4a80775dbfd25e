//! The `invitations` table as provisioning, the mail job and the link use
//! it (operators' side: [`super::manage`]). Every change is audited in the
//! same statement or transaction: actor `rosterd` for what provisioning and
//! the mail job do, `invitee` for an acceptance.
//!
//! Some statements read `roster` (never write it): whether the invited
//! user is still an active holder's, and that person's current name and
//! email, are checked in the statement that acts on them, so that an
//! acceptance or a mail cannot slip past a person leaving meanwhile.

use super::token::{Token, TokenHash};
use super::Policy;
use crate::event::Email;
use crate::outbox::{self, Job};
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

pub(super) async fn queue_mail(
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
