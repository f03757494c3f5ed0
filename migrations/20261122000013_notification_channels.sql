-- Issue 6: every channel (email, SMS, webhook, Slack, Teams), double opt-in,
-- quarantine, a log of failed attempts, and a per-tenant SMS budget.

-- Slack and Microsoft Teams are incoming-webhook URLs in `endpoint`, like webhooks.
alter table subscribers drop constraint subscribers_channel_check,
    add constraint subscribers_channel_check
        check (channel in ('email', 'sms', 'webhook', 'slack', 'teams')),
    drop constraint subscribers_target_check,
    add constraint subscribers_target_check check (
        (channel = 'email' and email is not null) or
        (channel = 'sms' and phone_number is not null) or
        (channel in ('webhook', 'slack', 'teams') and endpoint is not null)),
    -- The Standard Webhooks signing secret (`whsec_…`) of a webhook
    -- subscriber. Kept in clear because every delivery is signed with it; it
    -- is shown once, at creation, and never served again.
    add column webhook_secret text,
    -- When the last confirmation (email link, SMS code, webhook ping) was
    -- sent: an SMS code is derived from it (HMAC with the link secret), so a
    -- resend changes the code and nothing secret is stored.
    add column confirmation_sent_at timestamptz,
    -- Wrong SMS codes entered since the last code was sent.
    add column confirmation_attempts integer not null default 0,
    -- Deliveries that died in a row; at the threshold the subscriber is quarantined.
    add column dead_streak integer not null default 0,
    add constraint subscribers_webhook_secret_check
        check (webhook_secret is null or channel = 'webhook');

create unique index subscribers_page_phone_key on subscribers (page_id, phone_number)
    where channel = 'sms' and unsubscribed_at is null;
create unique index subscribers_page_endpoint_key on subscribers (page_id, channel, endpoint)
    where channel in ('webhook', 'slack', 'teams') and unsubscribed_at is null;
-- Fan-out pages through a page's live subscribers of a channel by id.
create index subscribers_fanout_idx on subscribers (page_id, channel, id)
    where unsubscribed_at is null and quarantined_at is null and confirmed_at is not null;

-- The delivery log by incident update (its events' payloads name it).
create index outbox_incident_update_idx on outbox ((payload ->> 'incident_update_id'))
    where payload ? 'incident_update_id';
create index outbox_page_idx on outbox (page_id, created_at);
-- Dead letters of a tenant, newest first.
create index deliveries_dead_idx on deliveries (tenant_id, updated_at) where status = 'dead';
create index deliveries_subscriber_idx on deliveries (subscriber_id);
alter table deliveries add column last_attempt_at timestamptz,
    add constraint deliveries_tenant_id_key unique (tenant_id, id);

-- Every failed attempt, with when and why: the backoff shows in the log.
-- (A successful attempt is the delivery's own `sent_at`.)
create table delivery_attempts (
    tenant_id    uuid not null,
    delivery_id  uuid not null,
    attempt      integer not null,
    at           timestamptz not null default now(),
    error        text not null,
    retry_at     timestamptz,
    constraint delivery_attempts_pkey primary key (delivery_id, attempt),
    constraint delivery_attempts_delivery_fkey foreign key (tenant_id, delivery_id)
        references deliveries (tenant_id, id) on delete cascade
);

-- SMS cost control: at most `sms_monthly_budget` messages per calendar
-- month (UTC); null means the operator's default (SMS_MONTHLY_BUDGET).
alter table tenants add column sms_monthly_budget integer
    constraint tenants_sms_monthly_budget_check check (sms_monthly_budget >= 0);
create table sms_usage (
    tenant_id  uuid not null references tenants (id) on delete cascade,
    month      date not null,
    sent       integer not null default 0,
    constraint sms_usage_pkey primary key (tenant_id, month)
);

do $$
declare t text;
begin
    foreach t in array array['delivery_attempts', 'sms_usage']
    loop
        execute format('alter table %I enable row level security', t);
        execute format('create policy tenant_isolation on %I using (tenant_id = app_tenant())
                        with check (tenant_id = app_tenant())', t);
    end loop;
end $$;

-- Queue metrics: deliveries by state and channel across tenants (the
-- worker's /metrics), without letting the app role read other tenants' rows.
create function hg_delivery_counts()
returns table (channel text, status text, n bigint)
language sql stable security definer set search_path = public as $$
    select channel, status, count(*) from deliveries group by channel, status
$$;
revoke all on function hg_delivery_counts() from public;
grant execute on function hg_delivery_counts() to heliograph_app;
