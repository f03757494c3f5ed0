-- Heliograph's first schema: tenants, their users and pages, components,
-- incidents, subscribers, and the notification pipeline (outbox → deliveries).
--
-- Every tenant-owned table carries tenant_id, and references between
-- tenant-owned rows are composite (tenant_id, id) foreign keys, so a row can
-- never point at another tenant's row, whatever the application does.
-- Constraints are named: the store maps those names to API errors.

create extension if not exists citext;

create function set_updated_at() returns trigger language plpgsql as $$
begin
    new.updated_at := now();
    return new;
end $$;

create table tenants (
    id          uuid primary key,
    slug        text not null constraint tenants_slug_key unique,
    name        text not null,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

create table users (
    id             uuid primary key,
    email          citext not null constraint users_email_key unique,
    password_hash  text not null,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now()
);

create table memberships (
    tenant_id   uuid not null references tenants (id) on delete cascade,
    user_id     uuid not null references users (id) on delete cascade,
    role        text not null constraint memberships_role_check
                    check (role in ('owner', 'admin', 'editor', 'viewer')),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint memberships_pkey primary key (tenant_id, user_id)
);
create index memberships_user_idx on memberships (user_id);

create table pages (
    id          uuid primary key,
    tenant_id   uuid not null references tenants (id) on delete cascade,
    slug        text not null constraint pages_slug_key unique,
    name        text not null,
    time_zone   text not null default 'Etc/UTC',
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint pages_tenant_id_key unique (tenant_id, id)
);

create table component_groups (
    id           uuid primary key,
    tenant_id    uuid not null,
    page_id      uuid not null,
    name         text not null,
    description  text,
    position     integer not null,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    constraint component_groups_tenant_id_key unique (tenant_id, id),
    constraint component_groups_page_fkey foreign key (tenant_id, page_id)
        references pages (tenant_id, id) on delete cascade
);
create index component_groups_page_idx on component_groups (page_id, position);

create table components (
    id                     uuid primary key,
    tenant_id              uuid not null,
    page_id                uuid not null,
    group_id               uuid,
    name                   text not null,
    description            text,
    status                 text not null default 'operational' constraint components_status_check
                               check (status in ('operational', 'degraded_performance', 'partial_outage',
                                                 'major_outage', 'under_maintenance')),
    position               integer not null,
    showcase               boolean not null default true,
    only_show_if_degraded  boolean not null default false,
    start_date             date,
    visibility             text not null default 'public' constraint components_visibility_check
                               check (visibility in ('public', 'private')),
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now(),
    constraint components_tenant_id_key unique (tenant_id, id),
    constraint components_page_fkey foreign key (tenant_id, page_id)
        references pages (tenant_id, id) on delete cascade,
    constraint components_group_fkey foreign key (tenant_id, group_id)
        references component_groups (tenant_id, id) on delete set null (group_id)
);
create index components_page_idx on components (page_id, position);

-- The history uptime is computed from.
create table component_status_changes (
    id            bigint generated always as identity primary key,
    tenant_id     uuid not null,
    component_id  uuid not null,
    old_status    text not null,
    new_status    text not null,
    cause         text not null constraint component_status_changes_cause_check
                      check (cause in ('manual', 'incident', 'maintenance')),
    incident_id   uuid,
    changed_at    timestamptz not null default now(),
    constraint component_status_changes_component_fkey foreign key (tenant_id, component_id)
        references components (tenant_id, id) on delete cascade
);
create index component_status_changes_component_idx on component_status_changes (component_id, changed_at);

create table incidents (
    id               uuid primary key,
    tenant_id        uuid not null,
    page_id          uuid not null,
    kind             text not null constraint incidents_kind_check check (kind in ('incident', 'maintenance')),
    name             text not null,
    status           text not null constraint incidents_status_check
                         check (status in ('investigating', 'identified', 'monitoring', 'resolved', 'postmortem',
                                           'scheduled', 'in_progress', 'verifying', 'completed')),
    impact           text not null constraint incidents_impact_check
                         check (impact in ('none', 'minor', 'major', 'critical', 'maintenance')),
    impact_override  text constraint incidents_impact_override_check
                         check (impact_override in ('none', 'minor', 'major', 'critical', 'maintenance')),
    started_at       timestamptz not null default now(),
    monitoring_at    timestamptz,
    resolved_at      timestamptz,
    scheduled_for    timestamptz,
    scheduled_until  timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint incidents_tenant_id_key unique (tenant_id, id),
    constraint incidents_page_fkey foreign key (tenant_id, page_id)
        references pages (tenant_id, id) on delete cascade
);
create index incidents_page_idx on incidents (page_id, created_at desc);

alter table component_status_changes add constraint component_status_changes_incident_fkey
    foreign key (tenant_id, incident_id) references incidents (tenant_id, id) on delete set null (incident_id);

create table incident_components (
    tenant_id     uuid not null,
    incident_id   uuid not null,
    component_id  uuid not null,
    constraint incident_components_pkey primary key (incident_id, component_id),
    constraint incident_components_incident_fkey foreign key (tenant_id, incident_id)
        references incidents (tenant_id, id) on delete cascade,
    constraint incident_components_component_fkey foreign key (tenant_id, component_id)
        references components (tenant_id, id) on delete cascade
);

create table incident_updates (
    id                     uuid primary key,
    tenant_id              uuid not null,
    incident_id            uuid not null,
    status                 text not null constraint incident_updates_status_check
                               check (status in ('investigating', 'identified', 'monitoring', 'resolved', 'postmortem',
                                                 'scheduled', 'in_progress', 'verifying', 'completed')),
    body                   text not null,
    display_at             timestamptz not null default now(),
    deliver_notifications  boolean not null default true,
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now(),
    constraint incident_updates_tenant_id_key unique (tenant_id, id),
    constraint incident_updates_incident_fkey foreign key (tenant_id, incident_id)
        references incidents (tenant_id, id) on delete cascade
);
create index incident_updates_incident_idx on incident_updates (incident_id, display_at desc);

-- Statuspage's affected_components of one update: what changed, from what, to what.
create table incident_update_components (
    tenant_id           uuid not null,
    incident_update_id  uuid not null,
    component_id        uuid not null,
    old_status          text not null,
    new_status          text not null,
    constraint incident_update_components_pkey primary key (incident_update_id, component_id),
    constraint incident_update_components_update_fkey foreign key (tenant_id, incident_update_id)
        references incident_updates (tenant_id, id) on delete cascade,
    constraint incident_update_components_component_fkey foreign key (tenant_id, component_id)
        references components (tenant_id, id) on delete cascade
);

create table subscribers (
    id               uuid primary key,
    tenant_id        uuid not null,
    page_id          uuid not null,
    channel          text not null constraint subscribers_channel_check check (channel in ('email', 'sms', 'webhook')),
    email            citext,
    phone_number     text,
    endpoint         text,
    confirmed_at     timestamptz,
    unsubscribed_at  timestamptz,
    quarantined_at   timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint subscribers_tenant_id_key unique (tenant_id, id),
    constraint subscribers_page_fkey foreign key (tenant_id, page_id)
        references pages (tenant_id, id) on delete cascade,
    constraint subscribers_target_check check (
        (channel = 'email' and email is not null) or
        (channel = 'sms' and phone_number is not null) or
        (channel = 'webhook' and endpoint is not null))
);
-- One live subscription per address and page.
create unique index subscribers_page_email_key on subscribers (page_id, email)
    where channel = 'email' and unsubscribed_at is null;
create index subscribers_page_idx on subscribers (page_id, id);

-- Which components a subscriber follows; none means all.
create table subscriber_components (
    tenant_id      uuid not null,
    subscriber_id  uuid not null,
    component_id   uuid not null,
    constraint subscriber_components_pkey primary key (subscriber_id, component_id),
    constraint subscriber_components_subscriber_fkey foreign key (tenant_id, subscriber_id)
        references subscribers (tenant_id, id) on delete cascade,
    constraint subscriber_components_component_fkey foreign key (tenant_id, component_id)
        references components (tenant_id, id) on delete cascade
);

-- Transactional outbox: written in the same transaction as the change it
-- announces, relayed to the queue by the worker.
create table outbox (
    id          uuid primary key,
    tenant_id   uuid not null references tenants (id) on delete cascade,
    page_id     uuid not null,
    kind        text not null,
    payload     jsonb not null,
    created_at     timestamptz not null default now(),
    relayed_at     timestamptz,
    -- Set when fan-out has created every delivery; a relayed event without it
    -- after a while lost its job (Redis) and is relayed again by the sweeper.
    fanned_out_at  timestamptz,
    constraint outbox_tenant_id_key unique (tenant_id, id)
);
create index outbox_pending_idx on outbox (created_at) where relayed_at is null;
create index outbox_unfanned_idx on outbox (relayed_at) where relayed_at is not null and fanned_out_at is null;

create function outbox_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('heliograph_outbox', '');
    return null;
end $$;
create trigger outbox_notify after insert on outbox
    for each statement execute function outbox_notify();

create table deliveries (
    id               uuid primary key,
    tenant_id        uuid not null,
    event_id         uuid not null,
    subscriber_id    uuid not null,
    channel          text not null,
    status           text not null default 'pending' constraint deliveries_status_check
                         check (status in ('pending', 'sent', 'failed', 'dead', 'skipped')),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz,
    last_error       text,
    sent_at          timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    constraint deliveries_event_subscriber_channel_key unique (event_id, subscriber_id, channel),
    constraint deliveries_event_fkey foreign key (tenant_id, event_id)
        references outbox (tenant_id, id) on delete cascade,
    constraint deliveries_subscriber_fkey foreign key (tenant_id, subscriber_id)
        references subscribers (tenant_id, id) on delete cascade
);
create index deliveries_event_idx on deliveries (event_id, status);
-- For the sweeper, which re-queues deliveries whose job was lost.
create index deliveries_unfinished_idx on deliveries ((coalesce(next_attempt_at, updated_at)))
    where status in ('pending', 'failed');

do $$
declare t text;
begin
    foreach t in array array['tenants', 'users', 'memberships', 'pages', 'component_groups', 'components',
                             'incidents', 'incident_updates', 'subscribers', 'deliveries']
    loop
        execute format('create trigger set_updated_at before update on %I
                        for each row execute function set_updated_at()', t);
    end loop;
end $$;
