-- Invitations (docs/contract.md §14): a person whose auth user rosterd
-- creates is invited by e-mail with a link that lasts INVITE_TTL (7 days by
-- default), longer than any sign-in link of the auth provider may.
create table invitations (
    id            bigint generated always as identity primary key,
    -- The auth user the invitation is for: it stays the same through an
    -- email change and a re-created record, unlike the email or the row.
    user_id       uuid not null,
    -- The address the invitation was issued to (the person's at the time).
    email         text not null,
    state         text not null default 'pending'
                  check (state in ('pending', 'accepted', 'expired', 'revoked')),
    -- SHA-256 of the link's token. The token itself is made when the link
    -- is sent (or shown to an operator) and is stored nowhere; null until
    -- then, and after a resend until the new link is sent.
    token_hash    bytea unique,
    expires_at    timestamptz not null,
    -- Bumped by a resend; the mail job sends when `sent_round` lags it, so
    -- a retried job never mails a round twice once it was recorded.
    round         integer not null default 1,
    sent_round    integer not null default 0,
    sent_at       timestamptz,
    accepted_at   timestamptz,
    revoked_at    timestamptz,
    -- Why: the person left (deleted or disabled; they get a new invitation
    -- if they come back, unless they had accepted one), or an operator
    -- revoked it (which sticks).
    revoked_reason text check (revoked_reason in ('left', 'operator')),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
-- One open invitation per person.
create unique index invitations_one_pending on invitations (user_id) where state = 'pending';
create index invitations_user_idx on invitations (user_id, id);
create index invitations_expiry_idx on invitations (expires_at) where state = 'pending';

-- The outbox gains a second kind of job: sending an invitation. A job is
-- one per active (kind, subject): the person's email for provisioning, the
-- invitation for its mail.
alter table provisioning_jobs
    add column kind text not null default 'provision' check (kind in ('provision', 'invite')),
    add column invitation_id bigint references invitations (id) on delete cascade,
    add constraint provisioning_jobs_kind_subject check (
        (kind = 'provision') = (invitation_id is null));
drop index provisioning_jobs_one_active;
create unique index provisioning_jobs_one_active on provisioning_jobs (email)
    where kind = 'provision' and state in ('pending', 'running');
create unique index provisioning_jobs_one_active_invite on provisioning_jobs (invitation_id)
    where kind = 'invite' and state in ('pending', 'running');

-- Like every other table: hidden from other apps' roles.
alter table invitations enable row level security;
revoke all on invitations from public, authenticated;
revoke all on sequence invitations_id_seq from public, authenticated;
