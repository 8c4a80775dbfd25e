-- The database cost of one fresh webhook event, as pgbench sees it: the
-- statements rosterd runs for a `user.created` event with a new record id
-- (src/roster/apply.rs try_ingest + apply_to_roster; statements from
-- src/roster/store/ insert_event, lock_row, insert_row and
-- src/outbox.rs enqueue), in one transaction, each statement as the
-- service sends it.  Keep it in step with those files.
--
-- Run by scripts/bench.sh, after the service has migrated the database:
--   pgbench -n -M prepared -D prefix=X -D i=0 -c C -j J -T SECS -f benches/ingest.pgbench.sql URL
-- -M prepared because sqlx prepares and caches every statement per
-- connection.  Ids are unique per transaction: prefix (per run and level),
-- client id and a per-client counter `i` (pgbench variables live as long as
-- the client session; -D i=0 starts it).  The service's bound parameters are
-- written here as expressions over those variables; computing them costs the
-- server next to nothing.  Not mirrored: the round trip sqlx's pool spends
-- testing a connection before handing it out (test_before_acquire).

\set i :i + 1

begin;

-- store::insert_event
insert into inbound_events (event_id, event_type, occurred_at, user_id, payload,
                            payload_hash, source, outcome, processed_at)
values ('evt_' || :prefix::text || '_' || :client_id::text || '_' || :i::text,
        'user.created',
        '2026-11-22T10:00:00Z'::timestamptz,
        'rec_' || :prefix::text || '_' || :client_id::text || '_' || :i::text,
        jsonb_build_object(
            'eventId', 'evt_' || :prefix::text || '_' || :client_id::text || '_' || :i::text,
            'eventType', 'user.created',
            'occurredAt', '2026-11-22T10:00:00Z',
            'user', jsonb_build_object(
                'id', 'rec_' || :prefix::text || '_' || :client_id::text || '_' || :i::text,
                'email', :prefix::text || '-' || :client_id::text || '-' || :i::text || '@bench.example',
                'name', 'Bench User',
                'status', 'active',
                'groups', jsonb_build_array('engineering'))),
        sha256(convert_to('evt_' || :prefix::text || '_' || :client_id::text || '_' || :i::text, 'UTF8')),
        'webhook', 'applied', now())
on conflict (event_id) do nothing
returning true as "inserted!";

-- store::lock_row (no row yet: the record id is new)
select email, name, profile_status, groups, roles,
       profile_at, profile_event_id, deleted_at, deleted_event_id
from roster where id = 'rec_' || :prefix::text || '_' || :client_id::text || '_' || :i::text for update;

-- store::insert_row
insert into roster (id, email, name, profile_status, groups, roles,
                    profile_at, profile_event_id, deleted_at, deleted_event_id,
                    last_at, last_event_id)
values ('rec_' || :prefix::text || '_' || :client_id::text || '_' || :i::text,
        :prefix::text || '-' || :client_id::text || '-' || :i::text || '@bench.example',
        'Bench User', 'active', '{engineering}'::text[], '{}'::text[],
        '2026-11-22T10:00:00Z'::timestamptz,
        'evt_' || :prefix::text || '_' || :client_id::text || '_' || :i::text,
        null, null,
        '2026-11-22T10:00:00Z'::timestamptz,
        'evt_' || :prefix::text || '_' || :client_id::text || '_' || :i::text)
on conflict (id) do nothing
returning true as "inserted!";

-- outbox::enqueue (one email: the new row's). The NOTIFY is sent
-- after commit, coalesced, by outbox::Wakeup: not part of this transaction.
insert into provisioning_jobs (email)
    select unnest(array[:prefix::text || '-' || :client_id::text || '-' || :i::text || '@bench.example']::text[])
    on conflict (email) where state in ('pending', 'running')
    do update set
        dirty = provisioning_jobs.state = 'running',
        run_at = case when provisioning_jobs.state = 'pending'
                      then least(provisioning_jobs.run_at, now())
                      else provisioning_jobs.run_at end,
        updated_at = now();

commit;
