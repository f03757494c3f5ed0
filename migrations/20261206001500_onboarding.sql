-- A team's answer to the dashboard's setup checklist: the list is shown on
-- a page's overview until every step is done or the team dismisses it; a
-- row here is the dismissal. The steps themselves are derived from what the
-- team has (components, incidents, subscribers, domains, teammates), never
-- stored.
create table onboarding_dismissals (
    tenant_id    uuid primary key references tenants (id) on delete cascade,
    dismissed_at timestamptz not null default now()
);

alter table onboarding_dismissals enable row level security;
alter table onboarding_dismissals force row level security;
create policy tenant_isolation on onboarding_dismissals
    using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());
create policy definer_access on onboarding_dismissals to heliograph_definer
    using (current_user = 'heliograph_definer')
    with check (current_user = 'heliograph_definer');
