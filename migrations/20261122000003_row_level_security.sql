-- Tenant isolation, the second time: row-level security.
--
-- The application runs as `heliograph_app` (it connects with DATABASE_URL
-- and then `SET ROLE heliograph_app`): not the tables' owner, no BYPASSRLS.
-- Every tenant-owned table lets it see and write only the rows of the tenant
-- named by `app.tenant_id`, which the store sets per transaction; with no
-- tenant set, it sees nothing.
--
-- The few questions that are cross-tenant by nature (which page has this
-- slug, which tenants does this user belong to, which events await the
-- relay) are SECURITY DEFINER functions owned by the migration role, each
-- answering exactly that question and nothing more.

do $$
begin
    create role heliograph_app nologin;
exception
    -- Roles are cluster-wide: another database (or a concurrent test) made it.
    when duplicate_object or unique_violation then null;
end $$;

grant usage on schema public to heliograph_app;
grant select, insert, update, delete on all tables in schema public to heliograph_app;
grant usage, select on all sequences in schema public to heliograph_app;
alter default privileges in schema public grant select, insert, update, delete on tables to heliograph_app;
alter default privileges in schema public grant usage, select on sequences to heliograph_app;

create function app_tenant() returns uuid language sql stable as $$
    select nullif(current_setting('app.tenant_id', true), '')::uuid
$$;

alter table tenants enable row level security;
create policy tenant_isolation on tenants using (id = app_tenant()) with check (id = app_tenant());

do $$
declare t text;
begin
    foreach t in array array['memberships', 'pages', 'component_groups', 'components', 'component_status_changes',
                             'incidents', 'incident_components', 'incident_updates', 'incident_update_components',
                             'subscribers', 'subscriber_components', 'outbox', 'deliveries', 'sessions']
    loop
        execute format('alter table %I enable row level security', t);
        execute format('create policy tenant_isolation on %I using (tenant_id = app_tenant())
                        with check (tenant_id = app_tenant())', t);
    end loop;
end $$;

-- Cross-tenant questions.

create function hg_page_ref_by_slug(p_slug text)
returns table (tenant_id uuid, page_id uuid)
language sql stable security definer set search_path = public as $$
    select p.tenant_id, p.id from pages p where p.slug = p_slug
$$;

create function hg_tenant_by_slug(p_slug text)
returns table (id uuid, slug text, name text, created_at timestamptz)
language sql stable security definer set search_path = public as $$
    select t.id, t.slug, t.name, t.created_at from tenants t where t.slug = p_slug
$$;

create function hg_memberships_of(p_user uuid)
returns table (tenant_id uuid, slug text, name text, role text)
language sql stable security definer set search_path = public as $$
    select t.id, t.slug, t.name, m.role
      from memberships m join tenants t on t.id = m.tenant_id
     where m.user_id = p_user
     order by m.created_at, t.id
$$;

-- Locks (in the caller's transaction) and answers unrelayed events.
create function hg_claim_outbox(p_limit integer)
returns table (id uuid, tenant_id uuid)
language sql volatile security definer set search_path = public as $$
    select o.id, o.tenant_id from outbox o
     where o.relayed_at is null
     order by o.created_at, o.id
     limit p_limit
       for update skip locked
$$;

create function hg_mark_relayed(p_ids uuid[])
returns void
language sql volatile security definer set search_path = public as $$
    update outbox set relayed_at = now() where id = any(p_ids)
$$;

create function hg_unrelayed_events()
returns bigint
language sql stable security definer set search_path = public as $$
    select count(*) from outbox where relayed_at is null
$$;

create function hg_restart_stalled_fanouts(p_stale_ms bigint, p_limit integer)
returns table (id uuid, tenant_id uuid)
language sql volatile security definer set search_path = public as $$
    update outbox set relayed_at = now()
     where outbox.id in (select o.id from outbox o
                          where o.relayed_at < now() - p_stale_ms * interval '1 millisecond'
                            and o.fanned_out_at is null
                          order by o.relayed_at limit p_limit for update skip locked)
    returning outbox.id, outbox.tenant_id
$$;

create function hg_restart_stalled_deliveries(p_stale_ms bigint, p_limit integer)
returns table (tenant_id uuid, id uuid)
language sql volatile security definer set search_path = public as $$
    update deliveries set updated_at = now(),
           next_attempt_at = case when next_attempt_at is null then null else now() end
     where deliveries.id in (select d.id from deliveries d
                              where d.status in ('pending', 'failed')
                                and coalesce(d.next_attempt_at, d.updated_at) < now() - p_stale_ms * interval '1 millisecond'
                              order by coalesce(d.next_attempt_at, d.updated_at) limit p_limit for update skip locked)
    returning deliveries.tenant_id, deliveries.id
$$;

do $$
declare f text;
begin
    foreach f in array array['hg_page_ref_by_slug(text)', 'hg_tenant_by_slug(text)', 'hg_memberships_of(uuid)',
                             'hg_claim_outbox(integer)', 'hg_mark_relayed(uuid[])', 'hg_unrelayed_events()',
                             'hg_restart_stalled_fanouts(bigint, integer)', 'hg_restart_stalled_deliveries(bigint, integer)']
    loop
        execute format('revoke all on function %s from public', f);
        execute format('grant execute on function %s to heliograph_app', f);
    end loop;
end $$;
