-- Operators' browser sessions for /console. The cookie carries a random
-- session id; only its SHA-256 is stored, so a copy of this table signs
-- nobody in. Each session has its own CSRF token, written into every form
-- and checked on every POST. Signing out deletes the row; expired rows are
-- refused and swept at the next sign-in.
create table console_sessions (
    id_hash     bytea primary key check (length(id_hash) = 32),
    operator    text not null,
    csrf_token  text not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null
);
create index console_sessions_expires_idx on console_sessions (expires_at);

-- Like every other table (migration 0004): RLS on, nothing granted.
alter table console_sessions enable row level security;
revoke all on console_sessions from public, authenticated;
