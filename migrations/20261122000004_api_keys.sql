-- API keys: a tenant's machines act through them (`Authorization: OAuth <key>`
-- or `Bearer <key>`). Only a SHA-256 of the key is stored; the prefix finds it.

create table api_keys (
    id            uuid primary key,
    tenant_id     uuid not null references tenants (id) on delete cascade,
    name          text not null,
    prefix        text not null constraint api_keys_prefix_key unique,
    key_hash      bytea not null,
    scope         text not null constraint api_keys_scope_check check (scope in ('read', 'read_write')),
    created_by    uuid references users (id) on delete set null,
    created_at    timestamptz not null default now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    constraint api_keys_tenant_id_key unique (tenant_id, id)
);
create index api_keys_tenant_idx on api_keys (tenant_id, created_at);

alter table api_keys enable row level security;
create policy tenant_isolation on api_keys using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());

-- Cross-tenant by nature: a key arrives before anyone knows its tenant.
create function hg_api_key_by_prefix(p_prefix text)
returns table (id uuid, tenant_id uuid, key_hash bytea, scope text)
language sql stable security definer set search_path = public as $$
    select k.id, k.tenant_id, k.key_hash, k.scope from api_keys k
     where k.prefix = p_prefix and k.revoked_at is null
$$;
revoke all on function hg_api_key_by_prefix(text) from public;
grant execute on function hg_api_key_by_prefix(text) to heliograph_app;
