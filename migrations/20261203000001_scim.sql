-- SCIM 2.0 (docs/contract.md §13): identity providers write the roster
-- through the same apply path as the webhook, with events of their own
-- source, and keep groups of their own.

-- What a profile says beyond email, name, status and groups (a SCIM
-- User's name parts, displayName, externalId, emails, userName as sent):
-- part of the profile register, written and replaced with it.
alter table roster add column details jsonb;

alter table inbound_events drop constraint inbound_events_source_check;
alter table inbound_events add constraint inbound_events_source_check
    check (source in ('webhook', 'replay', 'readthrough', 'import', 'scim'));

-- `userName eq …`, the filter identity providers send before every create.
create index roster_user_name_idx on roster (lower(coalesce(details->>'userName', email)));

-- A group's members are the live records whose `groups` hold its name.
create index roster_groups_idx on roster using gin (groups);

-- SCIM Groups: an id and a name; membership lives on the members' rows.
create table scim_groups (
    id            uuid primary key,
    display_name  text not null,
    external_id   text,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
-- displayName is unique, compared as SCIM compares it (case-insensitively).
create unique index scim_groups_name_idx on scim_groups (lower(display_name));

alter table scim_groups enable row level security;
revoke all on scim_groups from public, authenticated;
