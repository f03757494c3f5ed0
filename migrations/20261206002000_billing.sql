-- Billing (docs/billing.md): where each tenant's subscription stands. A
-- tenant without a row has never subscribed and is served on the free
-- plan (with BILLING=on; with billing off nothing here is read).
--
-- The row holds the subscription as Stripe last stated it (`stated_at`,
-- the time of the Stripe object or event it was read from): a state older
-- than the one held is never applied, so events arriving out of order
-- cannot move a subscription backwards.
create table tenant_billing (
    tenant_id              uuid primary key references tenants (id) on delete cascade,
    -- The plan subscribed to (an id of the plans file).
    plan                   text not null,
    billing_interval       text check (billing_interval in ('month', 'year')),
    -- Stripe's subscription status; null without a subscription.
    status                 text check (status in ('trialing', 'active', 'incomplete',
                                                  'incomplete_expired', 'past_due', 'unpaid',
                                                  'canceled', 'paused')),
    stripe_customer_id     text unique,
    stripe_subscription_id text unique,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean not null default false,
    -- When payments started failing (past_due first seen); cleared when paid.
    past_due_since         timestamptz,
    stated_at              timestamptz,
    updated_at             timestamptz not null default now()
);

alter table tenant_billing enable row level security;
alter table tenant_billing force row level security;
create policy tenant_isolation on tenant_billing
    using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());
create policy definer_access on tenant_billing to heliograph_definer
    using (current_user = 'heliograph_definer')
    with check (current_user = 'heliograph_definer');
