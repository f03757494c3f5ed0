-- Team invitations: an admin invites an address with a role; the emailed,
-- signed, single-use link creates the account or attaches an existing one.
-- The row is its own outbox, like account_tokens.

create table invitations (
    id           uuid primary key,
    tenant_id    uuid not null references tenants (id) on delete cascade,
    email        citext not null,
    role         text not null constraint invitations_role_check check (role in ('owner', 'admin', 'editor', 'viewer')),
    invited_by   uuid references users (id) on delete set null,
    expires_at   timestamptz not null,
    accepted_at  timestamptz,
    revoked_at   timestamptz,
    queued_at    timestamptz,
    sent_at      timestamptz,
    created_at   timestamptz not null default now(),
    constraint invitations_tenant_id_key unique (tenant_id, id)
);
create unique index invitations_pending_key on invitations (tenant_id, email)
    where accepted_at is null and revoked_at is null;
create index invitations_unqueued_idx on invitations (created_at) where queued_at is null;

alter table invitations enable row level security;
create policy tenant_isolation on invitations using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());

create trigger invitations_notify after insert on invitations
    for each statement execute function outbox_notify();

-- Cross-tenant by nature: the relay serves every tenant; an accepted link
-- names an invitation before anyone knows its tenant.
create function hg_claim_invitations(p_limit integer)
returns table (id uuid, tenant_id uuid)
language sql volatile security definer set search_path = public as $$
    select i.id, i.tenant_id from invitations i
     where i.queued_at is null order by i.created_at limit p_limit for update skip locked
$$;

create function hg_mark_invitations_queued(p_ids uuid[])
returns void
language sql volatile security definer set search_path = public as $$
    update invitations set queued_at = now() where id = any(p_ids)
$$;

create function hg_invitation_tenant(p_id uuid)
returns uuid
language sql stable security definer set search_path = public as $$
    select tenant_id from invitations where id = p_id
$$;

create function hg_restart_stalled_invitations(p_stale_ms bigint, p_limit integer)
returns table (id uuid, tenant_id uuid)
language sql volatile security definer set search_path = public as $$
    update invitations set queued_at = now()
     where invitations.id in (select i.id from invitations i
                               where i.sent_at is null and i.accepted_at is null and i.revoked_at is null
                                 and i.expires_at > now()
                                 and i.queued_at < now() - p_stale_ms * interval '1 millisecond'
                               limit p_limit for update skip locked)
    returning invitations.id, invitations.tenant_id
$$;

do $$
declare f text;
begin
    foreach f in array array['hg_claim_invitations(integer)', 'hg_mark_invitations_queued(uuid[])',
                             'hg_invitation_tenant(uuid)', 'hg_restart_stalled_invitations(bigint, integer)']
    loop
        execute format('revoke all on function %s from public', f);
        execute format('grant execute on function %s to heliograph_app', f);
    end loop;
end $$;
