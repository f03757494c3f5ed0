-- Who did what to which object, when, from where: written in the same
-- transaction as the change it records.

create table audit_log (
    id           bigint generated always as identity primary key,
    tenant_id    uuid not null references tenants (id) on delete cascade,
    actor_type   text not null constraint audit_log_actor_type_check check (actor_type in ('user', 'api_key')),
    actor_id     uuid not null,
    action       text not null,
    object_type  text not null,
    object_id    uuid not null,
    ip           text,
    details      jsonb not null default '{}',
    at           timestamptz not null default now()
);
create index audit_log_tenant_at_idx on audit_log (tenant_id, at desc, id desc);

alter table audit_log enable row level security;
create policy tenant_isolation on audit_log using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());
