-- The claim walks due jobs in (run_at, id) order; an index in that order,
-- on pending rows only, makes a claim read the few rows it takes whatever
-- the queue's length (before: a sort of every pending job per claim).
create index provisioning_jobs_due_order on provisioning_jobs (run_at, id) where state = 'pending';
drop index provisioning_jobs_due;

-- Retention (`rosterd prune`): a stored payload holds a person's name and
-- email, so past the retention period it is replaced by JSON null and the
-- time recorded here; the event id and the payload's hash stay, so a
-- redelivery is still answered `duplicate` (or 409 for another body).
alter table inbound_events add column pruned_at timestamptz;
