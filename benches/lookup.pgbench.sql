-- pgbench script for the lookup section of scripts/bench.sh: the query of
-- login_row_by_email (src/roster/store/people.rs) for one known person drawn
-- uniformly from p1..p{people}@bench.example (-D people=N).
\set i random(1, :people)
select r.id, r.email, r.name, r.status, r.roles, r.auth_user_id,
       exists(select 1 from provisioning_jobs j
              where j.email = r.email and j.state in ('pending', 'running')) as pending
from roster r where r.email = 'p' || :i || '@bench.example'
order by r.profile_at desc, r.profile_event_id desc;
