-- Row-level security for the database rosterd shares with other apps
-- (Supabase, PostgREST): the `authenticated` role — whoever holds a valid
-- JWT — may read its own roster row and nothing else; other apps' policies
-- may ask `is_user_active(email)`.
--
-- rosterd itself is not restricted: it connects as the role that ran these
-- migrations, which owns the tables, and owners bypass RLS. FORCE ROW LEVEL
-- SECURITY is deliberately not used: it would hold the owner to the policies
-- below and rosterd would see no rows at all. `rosterd serve` refuses to
-- start when RLS is off on one of its tables, or when RLS would apply to its
-- own role (src/db.rs).

-- Supabase has this role; a plain Postgres gets a NOLOGIN stand-in, so the
-- grants below mean the same everywhere. Roles are cluster-wide and several
-- databases of one cluster may be migrated at once (the test suite does), so
-- losing the race to another creator is success.
do $$
begin
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticated') then
        create role authenticated nologin;
    end if;
exception
    when duplicate_object or unique_violation then
        null;
    when insufficient_privilege then
        raise exception 'role "authenticated" does not exist and this role may not create it'
            using hint = 'create it once as a superuser: create role authenticated nologin';
end
$$;

-- With RLS on and no policy, a table shows no row to anyone but its owner,
-- whatever else is granted; Supabase grants every role everything on new
-- tables in `public` by default, so this is what actually protects them.
alter table roster enable row level security;
alter table inbound_events enable row level security;
alter table provisioning_jobs enable row level security;
alter table provisioning_attempts enable row level security;
alter table auth_accounts enable row level security;
alter table audit_log enable row level security;
alter table event_replays enable row level security;

-- And the grants themselves: `authenticated` gets a permission error, not an
-- empty answer, for everything but the columns granted below, so a later
-- policy added by mistake cannot expose a table on its own.
revoke all on roster, inbound_events, provisioning_jobs, provisioning_attempts,
              auth_accounts, audit_log, event_replays
    from public, authenticated;
revoke all on sequence provisioning_jobs_id_seq, provisioning_attempts_id_seq,
                       audit_log_id_seq, event_replays_id_seq
    from public, authenticated;

-- Only the person-facing columns: the registers and event ids are rosterd's
-- bookkeeping, and a column added later stays private until granted here.
-- (So `select *` is refused; name the columns.)
grant select (id, email, name, status, groups, roles, auth_user_id, updated_at)
    on roster to authenticated;

-- "Own" is the JWT's email claim (PostgREST and Supabase put the claims in
-- request.jwt.claims), canonicalised like stored emails. Only live rows:
-- a deleted record is gone for its person as for everyone else. Normally
-- that is one row; while two live records carry one email (a conflict,
-- CONTRACT §4) it is both, as both are that person's. No claim, an empty
-- claim set or one without an email matches nothing. The sub-select makes
-- the claim a per-query constant, so the email index is used.
create policy roster_own_row on roster
    for select
    to authenticated
    using (
        status <> 'deleted'
        and email = (select lower(btrim(
            nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')))
    );

-- Whether a person (canonical email, any case on input) may use other apps:
-- their holder — the newest live row carrying the email, as everywhere in
-- rosterd — is active. Unknown, disabled, deleted → false; never null, so
-- it can be used in a policy as is. SECURITY DEFINER so callers need no
-- access to the roster; it answers this one question about any email, which
-- is what other apps' policies need.
create function is_user_active(email text) returns boolean
    language sql
    stable
    security definer
as $$
    select coalesce(
        (select r.status = 'active'
           from roster r
          where r.email = lower(btrim($1)) and r.status <> 'deleted'
          order by r.profile_at desc, r.profile_event_id desc
          limit 1),
        false)
$$;

-- A SECURITY DEFINER function must not resolve names through a search path
-- its caller controls: pin it to the catalog and the schema these tables
-- were created in, temporary objects last.
do $$
begin
    execute format(
        'alter function is_user_active(text) set search_path = pg_catalog, %I, pg_temp',
        current_schema());
end
$$;

-- Functions are executable by PUBLIC by default, and Supabase also grants
-- new ones to `anon`; anyone who may call it can probe which emails belong
-- to active people, so only signed-in users may.
revoke all on function is_user_active(text) from public;
do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'anon') then
        revoke all on function is_user_active(text) from anon;
    end if;
end
$$;
grant execute on function is_user_active(text) to authenticated;
