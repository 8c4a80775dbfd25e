-- Role overrides per person (docs/contract.md §7): roles an operator
-- preserves (always granted), suppresses (never granted), or freezes (none
-- revoked by sync until lifted). Keyed by the auth user id, which stays
-- the same through an email change and a re-created record.
create table role_overrides (
    user_id       uuid primary key,
    preserve      text[] not null default '{}',
    suppress      text[] not null default '{}',
    -- Null: not frozen. Else the roles the person had when it was frozen,
    -- which sync may add to but not take from.
    frozen_roles  text[],
    updated_at    timestamptz not null default now(),
    updated_by    text not null
);

-- The rule, written once: (mapped ∪ preserved) − suppressed, plus the
-- roles held when frozen; sorted bytewise, as rosterd sorts mapped roles.
create function effective_roles(mapped text[], preserve text[], suppress text[], frozen text[])
returns text[] language sql immutable as $$
    select coalesce(array_agg(r order by r collate "C"), '{}') from (
        select unnest(mapped || coalesce(preserve, '{}')) as r
        except
        select unnest(coalesce(suppress, '{}'))
        union
        select unnest(coalesce(frozen, '{}'))
    ) roles
$$;

alter table role_overrides enable row level security;
revoke all on role_overrides from public, authenticated;
