-- The status model behind the management API (issue #4): page settings and
-- branding, maintenance scheduling, postmortems, incident templates, and
-- the Idempotency-Key replay store.

-- Pages: branding, which subscription channels the page offers, and the
-- weight of partial outages in uptime (docs/uptime.md).
alter table pages
    add column headline text,
    add column support_url text,
    add column logo_url text,
    add column brand_color text not null default '#1f6feb'
        constraint pages_brand_color_check check (brand_color ~ '^#[0-9a-fA-F]{6}$'),
    add column background_color text not null default '#ffffff'
        constraint pages_background_color_check check (background_color ~ '^#[0-9a-fA-F]{6}$'),
    add column text_color text not null default '#1f2328'
        constraint pages_text_color_check check (text_color ~ '^#[0-9a-fA-F]{6}$'),
    add column allow_email_subscribers boolean not null default true,
    add column allow_sms_subscribers boolean not null default true,
    add column allow_webhook_subscribers boolean not null default true,
    add column uptime_partial_weight double precision not null default 0.3
        constraint pages_uptime_partial_weight_check check (uptime_partial_weight between 0 and 1);

-- Incidents and maintenances.
alter table incidents
    add column scheduled_remind_prior boolean not null default false,
    add column scheduled_auto_in_progress boolean not null default false,
    add column scheduled_auto_completed boolean not null default false,
    -- When the reminder event was written; at most one per window.
    add column reminded_at timestamptz,
    add column backfilled boolean not null default false,
    add column metadata jsonb not null default '{}',
    add column postmortem_body text,
    add column postmortem_body_last_updated_at timestamptz,
    add column postmortem_published_at timestamptz,
    add constraint incidents_window_check check (
        (kind = 'incident' and scheduled_for is null and scheduled_until is null) or
        (kind = 'maintenance' and scheduled_for is not null and scheduled_until is not null
         and scheduled_until > scheduled_for));

-- The worker's clock looks for maintenances due to remind, start or complete.
create index incidents_maintenance_due_idx on incidents (scheduled_for, scheduled_until)
    where kind = 'maintenance' and status in ('scheduled', 'in_progress', 'verifying');

-- A maintenance puts its components under maintenance and, when it ends,
-- gives each back the status it had before.
alter table incident_components
    add column status_before text constraint incident_components_status_before_check
        check (status_before in ('operational', 'degraded_performance', 'partial_outage',
                                 'major_outage', 'under_maintenance'));

create table incident_templates (
    id                         uuid primary key,
    tenant_id                  uuid not null,
    page_id                    uuid not null,
    name                       text not null,
    title                      text not null,
    body                       text not null default '',
    update_status              text not null default 'investigating'
                                   constraint incident_templates_update_status_check
                                   check (update_status in ('investigating', 'identified', 'monitoring', 'resolved')),
    should_send_notifications  boolean not null default true,
    created_at                 timestamptz not null default now(),
    updated_at                 timestamptz not null default now(),
    constraint incident_templates_tenant_id_key unique (tenant_id, id),
    constraint incident_templates_page_fkey foreign key (tenant_id, page_id)
        references pages (tenant_id, id) on delete cascade
);
create unique index incident_templates_page_name_key on incident_templates (page_id, lower(name));

create table incident_template_components (
    tenant_id     uuid not null,
    template_id   uuid not null,
    component_id  uuid not null,
    constraint incident_template_components_pkey primary key (template_id, component_id),
    constraint incident_template_components_template_fkey foreign key (tenant_id, template_id)
        references incident_templates (tenant_id, id) on delete cascade,
    constraint incident_template_components_component_fkey foreign key (tenant_id, component_id)
        references components (tenant_id, id) on delete cascade
);

-- Idempotency-Key: the first response to a POST, replayed for 24 hours to
-- the same actor sending the same key. A row without a response is a
-- request still running.
create table idempotency_keys (
    tenant_id         uuid not null references tenants (id) on delete cascade,
    actor             text not null,
    key               text not null,
    method            text not null,
    path              text not null,
    request_hash      bytea not null,
    response_status   smallint,
    response_headers  jsonb,
    response_body     bytea,
    created_at        timestamptz not null default now(),
    constraint idempotency_keys_pkey primary key (tenant_id, actor, key)
);
create index idempotency_keys_created_idx on idempotency_keys (created_at);

create trigger set_updated_at before update on incident_templates
    for each row execute function set_updated_at();

do $$
declare t text;
begin
    foreach t in array array['incident_templates', 'incident_template_components', 'idempotency_keys']
    loop
        execute format('alter table %I enable row level security', t);
        execute format('create policy tenant_isolation on %I using (tenant_id = app_tenant())
                        with check (tenant_id = app_tenant())', t);
    end loop;
end $$;

-- Cross-tenant questions of the worker's clock.

-- Maintenances with something due at p_now: a reminder, a start or a completion.
create function hg_due_maintenances(p_now timestamptz, p_remind_before_ms bigint, p_limit integer)
returns table (tenant_id uuid, id uuid)
language sql stable security definer set search_path = public as $$
    select i.tenant_id, i.id from incidents i
     where i.kind = 'maintenance'
       and ((i.status = 'scheduled' and i.scheduled_remind_prior and i.reminded_at is null
             and i.scheduled_for - make_interval(secs => p_remind_before_ms / 1000.0) <= p_now)
         or (i.status = 'scheduled' and i.scheduled_auto_in_progress and i.scheduled_for <= p_now)
         or (i.status in ('scheduled', 'in_progress', 'verifying') and i.scheduled_auto_completed
             and i.scheduled_until <= p_now))
     order by i.scheduled_for
     limit p_limit
$$;

-- Idempotency records older than the replay window, across tenants.
create function hg_expire_idempotency_keys(p_before timestamptz)
returns bigint
language sql volatile security definer set search_path = public as $$
    with gone as (delete from idempotency_keys where created_at < p_before returning 1)
    select count(*) from gone
$$;

revoke all on function hg_due_maintenances(timestamptz, bigint, integer) from public;
grant execute on function hg_due_maintenances(timestamptz, bigint, integer) to heliograph_app;
revoke all on function hg_expire_idempotency_keys(timestamptz) from public;
grant execute on function hg_expire_idempotency_keys(timestamptz) to heliograph_app;
