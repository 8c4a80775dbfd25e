-- The roster: one row per upstream record id, holding two last-writer-wins
-- registers (profile, deletion) so the row is the same whatever the delivery
-- order. Order keys are (occurred_at, event_id); event ids compare bytewise
-- (collate "C") so Postgres and Rust agree on "newer".
create table roster (
    id                text collate "C" primary key,
    -- profile register, written by user.created / user.updated
    email             text,
    name              text,
    profile_status    text check (profile_status in ('active', 'disabled')),
    groups            text[] not null default '{}',
    roles             text[] not null default '{}',
    profile_at        timestamptz,
    profile_event_id  text collate "C",
    -- deletion register, written by user.deleted
    deleted_at        timestamptz,
    deleted_event_id  text collate "C",
    -- the newest order key seen for this record (either register)
    last_at           timestamptz not null,
    last_event_id     text collate "C" not null,
    status            text not null generated always as (
        case
            when deleted_at is not null
                 and (profile_at is null
                      or (deleted_at, deleted_event_id) > (profile_at, profile_event_id))
                then 'deleted'
            else profile_status
        end
    ) stored,
    -- auth link: the auth user this row owns (filled by provisioning)
    auth_user_id      uuid,
    auth_linked_at    timestamptz,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    constraint roster_profile_complete check (
        (profile_at is null) = (profile_event_id is null)
        and (profile_at is null) = (email is null)
        and (profile_at is null) = (profile_status is null)
    ),
    constraint roster_deletion_complete check ((deleted_at is null) = (deleted_event_id is null)),
    constraint roster_has_a_register check (profile_at is not null or deleted_at is not null)
);

-- Person lookups: the holder of an email is its newest live row.
create index roster_email_idx on roster (email, profile_at desc, profile_event_id desc);
-- An auth user is linked to at most one roster row.
create unique index roster_auth_user_idx on roster (auth_user_id) where auth_user_id is not null;

create table inbound_events (
    event_id      text collate "C" primary key,
    event_type    text not null check (event_type in ('user.created', 'user.updated', 'user.deleted')),
    occurred_at   timestamptz not null,
    user_id       text collate "C" not null,
    payload       jsonb not null,
    payload_hash  bytea not null,
    source        text not null default 'webhook'
                  check (source in ('webhook', 'replay', 'readthrough', 'import')),
    outcome       text not null check (outcome in ('applied', 'stale', 'failed')),
    error         text,
    attempts      integer not null default 1,
    received_at   timestamptz not null default now(),
    processed_at  timestamptz
);

create index inbound_events_received_idx on inbound_events (received_at desc, event_id desc);
create index inbound_events_user_idx on inbound_events (user_id, occurred_at desc);
create index inbound_events_outcome_idx on inbound_events (outcome, received_at desc);

-- The provisioning outbox: at most one pending job per person (canonical
-- email), so a burst of events for one person costs one provider round.
create table provisioning_jobs (
    id            bigint generated always as identity primary key,
    email         text not null,
    state         text not null default 'pending'
                  check (state in ('pending', 'running', 'done', 'dead')),
    attempts      integer not null default 0,
    run_at        timestamptz not null default now(),
    lease_until   timestamptz,
    last_error    text,
    last_action   text,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);

create unique index provisioning_jobs_one_pending on provisioning_jobs (email) where state = 'pending';
create index provisioning_jobs_due on provisioning_jobs (run_at) where state = 'pending';
