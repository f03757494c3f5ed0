-- Stripe's side of billing (docs/billing.md): the webhook events received,
-- the notices owners are emailed, and the cross-tenant lookups the webhook
-- and the reconciliation job need.

-- Every Stripe event received, by Stripe's id: an event is applied in the
-- transaction that records it, so a replay (Stripe retries; anyone may
-- resend a captured request within the signature's tolerance) finds it here
-- and changes nothing. Platform-wide: an event names a tenant only once it
-- is read, and some name none (another product on the same Stripe account).
create table stripe_events (
    id          text primary key,
    type        text not null,
    -- What came of it: applied, stale (older than the state held), ignored
    -- (a type or a customer billing does not follow).
    outcome     text not null check (outcome in ('applied', 'stale', 'ignored')),
    received_at timestamptz not null default now()
);

-- Webhook events that a Stripe event wrote into a tenant's audit log are
-- from Stripe, not from a user or a key.
alter table audit_log drop constraint audit_log_actor_type_check;
alter table audit_log add constraint audit_log_actor_type_check
    check (actor_type in ('user', 'api_key', 'stripe'));

-- Notices to a tenant's owners about its billing (payments failing): an
-- outbox of its own, relayed to the worker like invitations.
create table billing_notices (
    id         uuid primary key,
    tenant_id  uuid not null references tenants (id) on delete cascade,
    kind       text not null check (kind in ('past_due')),
    created_at timestamptz not null default now(),
    queued_at  timestamptz,
    sent_at    timestamptz
);
create index billing_notices_unqueued_idx on billing_notices (created_at) where queued_at is null;
create index billing_notices_tenant_idx on billing_notices (tenant_id, created_at);

alter table billing_notices enable row level security;
alter table billing_notices force row level security;
create policy tenant_isolation on billing_notices
    using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());
create policy definer_access on billing_notices to heliograph_definer
    using (current_user = 'heliograph_definer')
    with check (current_user = 'heliograph_definer');

create index tenant_billing_customer_idx on tenant_billing (stripe_customer_id)
    where stripe_customer_id is not null;

-- The tenant whose Stripe customer this is (a webhook names a customer).
create function hg_billing_tenant_of_customer(p_customer text)
returns uuid
language sql stable security definer set search_path = public, pg_temp as $$
    select tenant_id from tenant_billing where stripe_customer_id = p_customer
$$;

-- Tenants with a Stripe customer, after `p_after`, in id order: what the
-- reconciliation job re-reads from Stripe.
create function hg_billing_customers(p_after uuid, p_limit integer)
returns table (tenant_id uuid, stripe_customer_id text)
language sql stable security definer set search_path = public, pg_temp as $$
    select b.tenant_id, b.stripe_customer_id from tenant_billing b
     where b.stripe_customer_id is not null
       and (p_after is null or b.tenant_id > p_after)
     order by b.tenant_id limit p_limit
$$;

create function hg_claim_billing_notices(p_limit integer)
returns table (id uuid, tenant_id uuid)
language sql volatile security definer set search_path = public, pg_temp as $$
    select n.id, n.tenant_id from billing_notices n
     where n.queued_at is null order by n.created_at limit p_limit for update skip locked
$$;

create function hg_mark_billing_notices_queued(p_ids uuid[])
returns void
language sql volatile security definer set search_path = public, pg_temp as $$
    update billing_notices set queued_at = now() where id = any(p_ids)
$$;

create function hg_restart_stalled_billing_notices(p_stale_ms bigint, p_limit integer)
returns table (id uuid, tenant_id uuid)
language sql volatile security definer set search_path = public, pg_temp as $$
    update billing_notices set queued_at = now()
     where billing_notices.id in (select n.id from billing_notices n
                                   where n.sent_at is null
                                     and n.queued_at < now() - p_stale_ms * interval '1 millisecond'
                                   limit p_limit for update skip locked)
    returning billing_notices.id, billing_notices.tenant_id
$$;

do $$
declare f text;
begin
    foreach f in array array['hg_billing_tenant_of_customer(text)', 'hg_billing_customers(uuid, integer)',
                             'hg_claim_billing_notices(integer)', 'hg_mark_billing_notices_queued(uuid[])',
                             'hg_restart_stalled_billing_notices(bigint, integer)']
    loop
        execute format('revoke all on function %s from public', f);
        execute format('grant execute on function %s to heliograph_app', f);
        execute format('alter function %s owner to heliograph_definer', f);
    end loop;
end $$;
