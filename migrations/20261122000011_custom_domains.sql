-- Custom domains (issue #5, item 5): a hostname a tenant maps to one of its
-- pages. A TXT record `_heliograph.<hostname>` carrying `token` proves the
-- name is the tenant's; a CNAME points it at the platform. The worker checks
-- both (first on request, then periodically); only verified hostnames that
-- have not been stopped route (hg_routable_domains).

create table domains (
    id                  uuid primary key,
    tenant_id           uuid not null,
    page_id             uuid not null,
    -- Lower-cased by the application; the check makes a mixed-case copy
    -- impossible, so the unique constraint is case-insensitive in effect.
    hostname            text not null constraint domains_hostname_check
                            check (hostname = lower(hostname) and hostname <> ''),
    token               text not null,
    -- When a check first passed.
    verified_at         timestamptz,
    -- When the last recorded check began (the worker's clock; a late check
    -- older than this is dropped).
    last_checked_at     timestamptz,
    -- Since when a verified domain fails its checks.
    failing_since       timestamptz,
    last_error          text constraint domains_last_error_check
                            check (last_error in ('txt_missing', 'txt_mismatch', 'cname_missing',
                                                  'cname_mismatch', 'dns_error')),
    -- Routing stopped: failing for longer than the grace period.
    stopped_at          timestamptz,
    -- The tenant's owners and admins were told of the stop.
    stop_notified_at    timestamptz,
    -- A check was asked for (on creation, or by the API's verify) and not yet
    -- queued: the row is its own outbox, relayed like invitations.
    check_requested_at  timestamptz,
    -- A worker's clock took the domain for a periodic check (a lease, so
    -- that several workers do not check the same domain at once).
    check_claimed_at    timestamptz,
    created_at          timestamptz not null default now(),
    -- One hostname, one page, across every tenant: routing needs one answer.
    constraint domains_hostname_key unique (hostname),
    constraint domains_tenant_id_key unique (tenant_id, id),
    constraint domains_page_fkey foreign key (tenant_id, page_id)
        references pages (tenant_id, id) on delete cascade,
    constraint domains_state_check check (
        (failing_since is null or verified_at is not null)
        and (stopped_at is null or failing_since is not null)
        and (stop_notified_at is null or stopped_at is not null))
);
create index domains_page_idx on domains (page_id, hostname);
create index domains_check_requested_idx on domains (check_requested_at) where check_requested_at is not null;

alter table domains enable row level security;
create policy tenant_isolation on domains using (tenant_id = app_tenant()) with check (tenant_id = app_tenant());

-- A requested check wakes the relay, as a new outbox row does.
create trigger domains_notify after insert or update of check_requested_at on domains
    for each row when (new.check_requested_at is not null) execute function outbox_notify();

-- Cross-tenant questions.

-- Hostnames that route, for the public site's routing table and for Caddy's
-- on-demand TLS: verified and not stopped (a failing domain still routes
-- through its grace period).
create function hg_routable_domains()
returns table (hostname text, tenant_id uuid, page_id uuid)
language sql stable security definer set search_path = public as $$
    select d.hostname, d.tenant_id, d.page_id from domains d
     where d.verified_at is not null and d.stopped_at is null
     order by d.hostname
$$;

-- Takes (for ten minutes) the domains due for a periodic check at p_now:
-- never checked; a domain added in the last day and not verified yet, every
-- p_pending_ms; any other, every p_recheck_ms; and a stopped domain whose
-- notice is not sent yet, at once (the check sends it).
create function hg_domains_due(p_now timestamptz, p_recheck_ms bigint, p_pending_ms bigint, p_limit integer)
returns table (tenant_id uuid, id uuid)
language sql volatile security definer set search_path = public as $$
    update domains set check_claimed_at = p_now
     where domains.id in (
        select d.id from domains d
         where (d.check_claimed_at is null or d.check_claimed_at <= p_now - interval '10 minutes')
           and (d.last_checked_at is null
                or (d.stopped_at is not null and d.stop_notified_at is null)
                or d.last_checked_at <= p_now - make_interval(secs =>
                       case when d.verified_at is null and d.created_at > p_now - interval '1 day'
                            then p_pending_ms else p_recheck_ms end / 1000.0))
         order by d.last_checked_at nulls first, d.id
         limit p_limit
           for update skip locked)
    returning domains.tenant_id, domains.id
$$;

-- Locks (in the caller's transaction) and answers domains with a check requested.
create function hg_claim_domain_checks(p_limit integer)
returns table (id uuid, tenant_id uuid)
language sql volatile security definer set search_path = public as $$
    select d.id, d.tenant_id from domains d
     where d.check_requested_at is not null
     order by d.check_requested_at
     limit p_limit
       for update skip locked
$$;

create function hg_mark_domain_checks_queued(p_ids uuid[])
returns void
language sql volatile security definer set search_path = public as $$
    update domains set check_requested_at = null where id = any(p_ids)
$$;

do $$
declare f text;
begin
    foreach f in array array['hg_routable_domains()', 'hg_domains_due(timestamptz, bigint, bigint, integer)',
                             'hg_claim_domain_checks(integer)', 'hg_mark_domain_checks_queued(uuid[])']
    loop
        execute format('revoke all on function %s from public', f);
        execute format('grant execute on function %s to heliograph_app', f);
    end loop;
end $$;
