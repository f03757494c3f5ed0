-- Email places taken for a whole batch of deliveries at once (issue 17:
-- batched delivery). `hg_take_email` took one place per call, so every
-- email of a tenant updated the month's row once and queued on its lock;
-- a batch now takes all its places in one update of that row.

-- Takes places for those of `p_deliveries` (tenant `p_tenant`) that are
-- emails still to be sent at their first attempt (a retry is the same
-- email), as many as the month's `p_limit` leaves, in id order. Answers
-- each delivery with `taken`, `refused` (none was left for it) or
-- `not_counted` (not an email, not a first attempt, or no longer sendable).
-- One round trip; the month's row is locked until the caller's statement
-- commits (called outside any transaction of the caller's, that is at once).
create function hg_take_emails(p_tenant uuid, p_deliveries uuid[], p_sendable text[], p_limit integer)
returns table (delivery_id uuid, place text)
language plpgsql volatile security definer set search_path = public, pg_temp as $$
declare
    v_month date := date_trunc('month', now() at time zone 'utc')::date;
    v_counted uuid[];
    v_before integer;
    v_taken integer := 0;
begin
    select coalesce(array_agg(d.id order by d.id), '{}') into v_counted
      from deliveries d
     where d.tenant_id = p_tenant and d.id = any(p_deliveries) and d.channel = 'email'
       and d.attempts = 0 and d.status = any(p_sendable);
    if cardinality(v_counted) > 0 and p_limit > 0 then
        insert into email_usage (tenant_id, month, sent) values (p_tenant, v_month, 0)
        on conflict (tenant_id, month) do nothing;
        select u.sent into v_before from email_usage u
         where u.tenant_id = p_tenant and u.month = v_month for update;
        v_taken := greatest(0, least(cardinality(v_counted), p_limit - v_before));
        if v_taken > 0 then
            update email_usage u set sent = u.sent + v_taken
             where u.tenant_id = p_tenant and u.month = v_month;
        end if;
    end if;
    return query
        select t.id, case when t.ord <= v_taken then 'taken' else 'refused' end
          from unnest(v_counted) with ordinality as t(id, ord)
        union all
        select x, 'not_counted' from unnest(p_deliveries) as x where not (x = any(v_counted));
end $$;

revoke all on function hg_take_emails(uuid, uuid[], text[], integer) from public;
grant execute on function hg_take_emails(uuid, uuid[], text[], integer) to heliograph_app;
alter function hg_take_emails(uuid, uuid[], text[], integer) owner to heliograph_definer;
