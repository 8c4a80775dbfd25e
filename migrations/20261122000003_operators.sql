-- What operators did, and to what: one row per mutating admin call or CLI
-- verb, written in the same transaction as the change where there is one.
create table audit_log (
    id       bigint generated always as identity primary key,
    at       timestamptz not null default now(),
    actor    text not null,
    action   text not null,
    target   text,
    details  jsonb not null default '{}'
);

-- Every replay of a stored event, so an event's history survives the
-- outcome being overwritten.
create table event_replays (
    id        bigint generated always as identity primary key,
    event_id  text collate "C" not null references inbound_events (event_id) on delete cascade,
    at        timestamptz not null default now(),
    actor     text not null,
    outcome   text not null check (outcome in ('applied', 'stale', 'failed')),
    error     text
);
create index event_replays_event_idx on event_replays (event_id, id);

-- Bulk replay walks matches in occurrence order.
create index inbound_events_occurred_idx on inbound_events (occurred_at, event_id);
-- The jobs list pages newest first within a state.
create index provisioning_jobs_state_idx on provisioning_jobs (state, id desc);
