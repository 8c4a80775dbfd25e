-- Operators' roles (docs/contract.md §8): a console session keeps the role
-- of the token it was signed in with; the audit log says which role acted
-- where an operator's token did (null: rosterd itself, the CLI, SCIM, an
-- invitee).
alter table console_sessions
    add column role text not null default 'operator' check (role in ('operator', 'viewer'));
alter table audit_log
    add column actor_role text check (actor_role in ('operator', 'viewer'));
