-- Many tenants, each with one page of a few components: what
-- `load-tests/page-scale` reads one page of each of (issue 17, item 7).
-- Rows go in directly (a signup hashes a password, which would make 10,000
-- tenants take a quarter of an hour); public pages need nothing more.
--
-- Parameters, as custom settings of the session (PGOPTIONS='-c bench.tenants=…'):
--   bench.tenants      tenants (and pages), slugs p-1 … p-<n>
--   bench.components   components per page
-- Run as a role that bypasses row-level security (a superuser).

create temporary table bench_tenants on commit drop as
select gen_random_uuid() as tenant_id, gen_random_uuid() as page_id, n
  from generate_series(1, current_setting('bench.tenants')::int) n;

insert into tenants (id, slug, name)
select tenant_id, 'p-' || n, 'Tenant ' || n from bench_tenants;

insert into pages (id, tenant_id, slug, name)
select page_id, tenant_id, 'p-' || n, 'Tenant ' || n || ' status' from bench_tenants;

insert into components (id, tenant_id, page_id, name, status, position, created_at, updated_at)
select gen_random_uuid(), t.tenant_id, t.page_id, 'Service ' || c,
       case when c = 1 and t.n % 7 = 0 then 'degraded_performance' else 'operational' end,
       c, now() - interval '120 days', now() - interval '120 days'
  from bench_tenants t, generate_series(1, current_setting('bench.components')::int) c;
