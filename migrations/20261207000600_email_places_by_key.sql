-- `hg_take_emails` (20261207000400) finds a group's emails with
-- `d.id = any(p_deliveries)`, a plan that rests on the table's statistics:
-- a table that grew fast since they were taken looks tiny, and the planner
-- then reads every delivery of the tenant for each group (measured: with
-- billing on, a 100,000-email fan-out went at 1,648 emails a second, against
-- 8,105 with billing off). Each id is now looked up on its own, by full key,
-- as `hg_record_delivery_steps` does (20261207000500).
create or replace function hg_take_emails(p_tenant uuid, p_deliveries uuid[], p_sendable text[], p_limit integer)
returns table (delivery_id uuid, place text)
language plpgsql volatile security definer set search_path = public, pg_temp as $$
declare
    v_month date := date_trunc('month', now() at time zone 'utc')::date;
    v_counted uuid[];
    v_before integer;
    v_taken integer := 0;
begin
    select coalesce(array_agg(d.id order by d.id), '{}') into v_counted
      from unnest(p_deliveries) as wanted(id)
     cross join lateral (
           select d.id from deliveries d
            where d.tenant_id = p_tenant and d.id = wanted.id and d.channel = 'email'
              and d.attempts = 0 and d.status = any(p_sendable)
          ) d;
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
