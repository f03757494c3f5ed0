-- An email's place under the plan's `emails_per_month` in one round trip
-- (docs/billing.md § Monthly limits in the worker). The worker took it in a
-- transaction of its own (begin, the tenant, the delivery's state, the
-- plan, the upsert, commit: six round trips, the month's row locked for
-- the last two), which cost a third of the email throughput; now it reads
-- the plan with `hg_billing_standing` and takes the place with
-- `hg_take_email`, each one statement, outside any transaction of its own:
-- the month's row is locked for the upsert alone.

-- Where a tenant's subscription stands (the plan in force is the billing
-- crate's rule, applied by the caller).
create function hg_billing_standing(p_tenant uuid)
returns table (plan text, status text, past_due_since timestamptz)
language sql stable security definer set search_path = public, pg_temp as $$
    select b.plan, b.status, b.past_due_since from tenant_billing b where b.tenant_id = p_tenant
$$;

-- Takes a place for delivery `p_delivery` of tenant `p_tenant` when it is an
-- email still to be sent at its first attempt (a retry is the same email):
-- `taken`, `refused` (the month's `p_limit` is reached) or `not_counted`.
create function hg_take_email(p_tenant uuid, p_delivery uuid, p_sendable text[], p_limit integer)
returns text
language plpgsql volatile security definer set search_path = public, pg_temp as $$
begin
    if not exists (select from deliveries d
                    where d.tenant_id = p_tenant and d.id = p_delivery and d.channel = 'email'
                      and d.attempts = 0 and d.status = any(p_sendable)) then
        return 'not_counted';
    end if;
    insert into email_usage as u (tenant_id, month, sent)
    select p_tenant, date_trunc('month', now() at time zone 'utc')::date, 1 where p_limit > 0
    on conflict (tenant_id, month) do update set sent = u.sent + 1 where u.sent < p_limit;
    if found then
        return 'taken';
    end if;
    return 'refused';
end $$;

do $$
declare f text;
begin
    foreach f in array array['hg_billing_standing(uuid)', 'hg_take_email(uuid, uuid, text[], integer)']
    loop
        execute format('revoke all on function %s from public', f);
        execute format('grant execute on function %s to heliograph_app', f);
        execute format('alter function %s owner to heliograph_definer', f);
    end loop;
end $$;
