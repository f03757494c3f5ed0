-- The plan's monthly email limit (`emails_per_month`, docs/billing.md §
-- Monthly limits in the worker): how many emails each tenant has sent to
-- subscribers in each calendar month (UTC). The worker takes one with a
-- conditional upsert (`… on conflict do update … where sent < limit
-- returning`), in the transaction that sends, so two workers at the limit
-- cannot both send. Counted only with billing on; account emails are not.
--
-- A table of its own rather than a column of `sms_usage`: the texts'
-- counts are the operator's cost control as well as the plan's, the
-- emails' only the plan's, and a row lock on one never waits on the other.
create table email_usage (
    tenant_id  uuid not null references tenants (id) on delete cascade,
    month      date not null,
    sent       integer not null default 0,
    constraint email_usage_pkey primary key (tenant_id, month)
);

alter table email_usage enable row level security;
alter table email_usage force row level security;
create policy tenant_isolation on email_usage
    using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());
create policy definer_access on email_usage to heliograph_definer
    using (current_user = 'heliograph_definer')
    with check (current_user = 'heliograph_definer');
