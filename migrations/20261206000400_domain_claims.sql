-- Custom domains cannot be squatted (issue 13, item 5).
--
-- A hostname was held from the moment a tenant added it, verified or not.
-- Now adding it is only a claim: several tenants may claim one hostname, and
-- it is held exclusively once a claim is verified. The first verified claim
-- wins; the others become `taken` (their owners and admins are emailed).
-- A claim not verified within the pending period (DOMAIN_PENDING_DAYS)
-- expires; a tenant may have only DOMAIN_PENDING_LIMIT pending claims. The
-- rules are `heliograph_domain::DomainState`; this holds the rows and the
-- integrity: one verified claim per hostname, one live claim per tenant.

alter table domains drop constraint domains_hostname_key;

alter table domains
    -- Since when the claim waits for verification: added, or renewed after
    -- it expired (the pending period counts from here).
    add column pending_since timestamptz,
    -- Another claim of the hostname was verified: this one is over.
    add column taken_at timestamptz,
    -- Its owners and admins were told it was taken.
    add column taken_notified_at timestamptz,
    -- Not verified within the pending period: no longer checked or counted.
    add column expired_at timestamptz;

update domains set pending_since = created_at;
alter table domains alter column pending_since set default now();
alter table domains alter column pending_since set not null;

alter table domains add constraint domains_claim_check check (
    (taken_at is null or expired_at is null)
    and (taken_notified_at is null or taken_at is not null)
    and (expired_at is null or verified_at is null));

-- One verified claim per hostname: routing needs one answer. A stopped
-- holder keeps it until a newer claim is verified and takes it.
create unique index domains_verified_hostname_key on domains (hostname)
    where verified_at is not null and taken_at is null;
-- One live claim of a hostname per tenant (taken and expired ones may stay
-- listed beside a new one).
create unique index domains_tenant_hostname_key on domains (tenant_id, hostname)
    where taken_at is null and expired_at is null;
-- Every claim of a hostname, across tenants.
create index domains_hostname_idx on domains (hostname);

-- Routing: the verified holder only.
create or replace function hg_routable_domains()
returns table (hostname text, tenant_id uuid, page_id uuid)
language sql stable security definer set search_path = public as $$
    select d.hostname, d.tenant_id, d.page_id from domains d
     where d.verified_at is not null and d.stopped_at is null and d.taken_at is null
     order by d.hostname
$$;

-- The due domains now also know the pending period: a claim whose period
-- ended since its last check gets one last check at once (it expires unless
-- that passes); expired claims are not checked; taken ones only until their
-- owners are told.
drop function hg_domains_due(timestamptz, bigint, bigint, integer);
create function hg_domains_due(p_now timestamptz, p_recheck_ms bigint, p_pending_ms bigint,
                               p_pending_period_ms bigint, p_limit integer)
returns table (tenant_id uuid, id uuid)
language sql volatile security definer set search_path = public as $$
    update domains set check_claimed_at = p_now
     where domains.id in (
        select d.id from domains d
         where (d.check_claimed_at is null or d.check_claimed_at <= p_now - interval '10 minutes')
           and d.expired_at is null
           and (d.taken_at is null or d.taken_notified_at is null)
           and (d.last_checked_at is null
                or d.taken_at is not null
                or (d.stopped_at is not null and d.stop_notified_at is null)
                or (d.verified_at is null
                    and d.pending_since + make_interval(secs => p_pending_period_ms / 1000.0) <= p_now
                    and d.last_checked_at < d.pending_since + make_interval(secs => p_pending_period_ms / 1000.0))
                or d.last_checked_at <= p_now - make_interval(secs =>
                       case when d.verified_at is null and d.pending_since > p_now - interval '1 day'
                            then p_pending_ms else p_recheck_ms end / 1000.0))
         order by d.last_checked_at nulls first, d.id
         limit p_limit
           for update skip locked)
    returning domains.tenant_id, domains.id
$$;

-- The claims of a hostname, across tenants, for deciding whether it is held.
create function hg_hostname_claims(p_hostname text)
returns table (verified_at timestamptz, stopped_at timestamptz, taken_at timestamptz,
               expired_at timestamptz)
language sql stable security definer set search_path = public as $$
    select d.verified_at, d.stopped_at, d.taken_at, d.expired_at
      from domains d where d.hostname = p_hostname
$$;

-- Locks (in the caller's transaction, in id order, so that two checks of
-- one hostname never deadlock) every claim of p_domain's hostname, and
-- answers their states.
create function hg_lock_hostname_claims(p_domain uuid)
returns table (id uuid, tenant_id uuid, pending_since timestamptz, verified_at timestamptz,
               stopped_at timestamptz, taken_at timestamptz, expired_at timestamptz)
language sql volatile security definer set search_path = public as $$
    select d.id, d.tenant_id, d.pending_since, d.verified_at, d.stopped_at, d.taken_at, d.expired_at
      from domains d
     where d.hostname = (select o.hostname from domains o where o.id = p_domain)
     order by d.id
       for update
$$;

-- Marks p_ids taken at p_at, as `DomainState::taken` decided for them once
-- p_winner was verified: only claims of the winner's hostname, never the
-- winner, never one that routes or is over already. Answers those marked.
create function hg_mark_domains_taken(p_winner uuid, p_ids uuid[], p_at timestamptz)
returns table (tenant_id uuid, id uuid)
language sql volatile security definer set search_path = public as $$
    update domains d set taken_at = p_at
     where d.id = any(p_ids)
       and d.id <> p_winner
       and d.hostname = (select w.hostname from domains w where w.id = p_winner)
       and d.taken_at is null and d.expired_at is null
       and (d.verified_at is null or d.stopped_at is not null)
    returning d.tenant_id, d.id
$$;

do $$
declare f text;
begin
    foreach f in array array['hg_domains_due(timestamptz, bigint, bigint, bigint, integer)',
                             'hg_hostname_claims(text)', 'hg_lock_hostname_claims(uuid)',
                             'hg_mark_domains_taken(uuid, uuid[], timestamptz)']
    loop
        execute format('revoke all on function %s from public', f);
        execute format('grant execute on function %s to heliograph_app', f);
    end loop;
end $$;
