-- A year of history for one page: what issue 17 item 7 sizes a page at.
-- Shared by `load-tests/page-rebuild` (psql) and the api test
-- `page_history::a_year_of_history_gives_the_uptime_of_the_per_component_reads`
-- (sqlx), so that the benchmark and the test read the same data.
--
-- Parameters, as custom settings of the session (set_config / SET):
--   bench.tenant_id, bench.page_id   the page (it exists; its components are added here)
--   bench.components                 components added (e.g. 50)
--   bench.changes                    status changes, over all of them (e.g. 10000)
--   bench.incidents                  incidents and maintenances (e.g. 1000; one in ten a maintenance)
-- Run as a role that bypasses row-level security (the owner or a superuser).

create temporary table bench_components on commit drop as
select gen_random_uuid() as id, n as position
  from generate_series(1, current_setting('bench.components')::int) n;

insert into components (id, tenant_id, page_id, name, status, position, created_at, updated_at)
select id, current_setting('bench.tenant_id')::uuid, current_setting('bench.page_id')::uuid,
       'Service ' || position,
       -- The status after its last change (below, the k-th change sets statuses[k % 4]).
       (array['operational', 'degraded_performance', 'partial_outage', 'major_outage'])
           [(current_setting('bench.changes')::int / current_setting('bench.components')::int) % 4 + 1],
       1000 + position, now() - interval '400 days', now() - interval '400 days'
  from bench_components;

-- Evenly over the last 365 days, per component; each change's old status is
-- the previous one's new status.
insert into component_status_changes (tenant_id, component_id, old_status, new_status, cause, changed_at)
select current_setting('bench.tenant_id')::uuid, c.id,
       (array['operational', 'degraded_performance', 'partial_outage', 'major_outage'])[(k - 1) % 4 + 1],
       (array['operational', 'degraded_performance', 'partial_outage', 'major_outage'])[k % 4 + 1],
       'manual',
       now() - interval '365 days'
           + (interval '365 days' / (current_setting('bench.changes')::int
                                     / current_setting('bench.components')::int + 1)) * k
           + interval '1 second' * c.position
  from bench_components c,
       generate_series(1, current_setting('bench.changes')::int
                          / current_setting('bench.components')::int) k;

create temporary table bench_incidents on commit drop as
select gen_random_uuid() as id, n,
       case when n % 10 = 0 then 'maintenance' else 'incident' end as kind,
       now() - interval '365 days'
           + (interval '365 days' / (current_setting('bench.incidents')::int + 1)) * n as started_at
  from generate_series(1, current_setting('bench.incidents')::int) n;

insert into incidents (id, tenant_id, page_id, kind, name, status, impact, started_at,
                       resolved_at, scheduled_for, scheduled_until, created_at, updated_at)
select id, current_setting('bench.tenant_id')::uuid, current_setting('bench.page_id')::uuid, kind,
       case when kind = 'maintenance' then 'Planned work ' else 'Elevated errors ' end || n,
       case when kind = 'maintenance' then 'completed' else 'resolved' end,
       case when kind = 'maintenance' then 'maintenance' else 'minor' end,
       started_at, started_at + interval '2 hours',
       case when kind = 'maintenance' then started_at end,
       case when kind = 'maintenance' then started_at + interval '2 hours' end,
       started_at, started_at
  from bench_incidents;

insert into incident_components (tenant_id, incident_id, component_id)
select current_setting('bench.tenant_id')::uuid, i.id, c.id
  from bench_incidents i
  join bench_components c
    on c.position = i.n % current_setting('bench.components')::int + 1
    or c.position = (i.n * 7) % current_setting('bench.components')::int + 1;

insert into incident_updates (id, tenant_id, incident_id, status, body, display_at, created_at, updated_at)
select gen_random_uuid(), current_setting('bench.tenant_id')::uuid, i.id,
       case when i.kind = 'maintenance'
            then (array['scheduled', 'in_progress', 'completed'])[u]
            else (array['investigating', 'monitoring', 'resolved'])[u] end,
       'Update ' || u || ' of ' || i.n || ': we are looking into it and will post again within the hour.',
       i.started_at + interval '1 hour' * (u - 1), i.started_at + interval '1 hour' * (u - 1),
       i.started_at + interval '1 hour' * (u - 1)
  from bench_incidents i, generate_series(1, 3) u;
