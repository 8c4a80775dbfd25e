-- At most one *active* (pending or running) job per person. An event that
-- arrives while the person's job runs marks it dirty instead of queueing a
-- second one, so two workers can never provision one person at once.
drop index provisioning_jobs_one_pending;
create unique index provisioning_jobs_one_active on provisioning_jobs (email)
    where state in ('pending', 'running');
create index provisioning_jobs_expired on provisioning_jobs (lease_until) where state = 'running';

alter table provisioning_jobs
    add column dirty boolean not null default false,
    -- Identifies the current claim; a worker whose lease expired and was
    -- taken over cannot record a result any more.
    add column lease_token uuid;

-- Every attempt's result, for operators.
create table provisioning_attempts (
    id           bigint generated always as identity primary key,
    job_id       bigint not null references provisioning_jobs (id) on delete cascade,
    attempt      integer not null,
    started_at   timestamptz not null,
    finished_at  timestamptz not null default now(),
    action       text,
    error        text,
    transient    boolean
);
create index provisioning_attempts_job_idx on provisioning_attempts (job_id, attempt);

-- The local auth provider's accounts (AUTH_PROVIDER=local): the same shape
-- as Supabase Auth's users, so both providers behave alike.
create table auth_accounts (
    id                  uuid primary key,
    email               text not null,
    user_metadata       jsonb not null default '{}',
    app_metadata        jsonb not null default '{}',
    banned_until        timestamptz,
    email_confirmed_at  timestamptz,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now()
);
create unique index auth_accounts_email_key on auth_accounts (lower(email));
create index auth_accounts_list_idx on auth_accounts (created_at, id);
