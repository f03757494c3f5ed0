-- An event's deliveries are counted by state on the dashboard (the
-- notifications page, an update's delivery proof). Row-level security and
-- every query add `tenant_id = …`, which the old index on (event_id,
-- status) could not answer, so each count read every delivery's row from
-- the table. With tenant_id carried in the index, a count is an index-only
-- scan: on 2 cores, 50 events of 1,000 deliveries each went from 35 ms to
-- 10 ms (docs/benchmarks.md).
--
-- A plain (locking) build: on a large table, run `create index
-- concurrently deliveries_event_status_idx ...` by hand before deploying.
create index if not exists deliveries_event_status_idx
    on deliveries (event_id, status) include (tenant_id);
drop index if exists deliveries_event_idx;
