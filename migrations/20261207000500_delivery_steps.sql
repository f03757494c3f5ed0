-- A batch of deliveries' outcomes recorded in one round trip, each row
-- updated by its full key (issue 17: batched delivery).
--
-- One `update … from unnest(…)` would do it in one statement, but its plan
-- rests on the table's statistics: a table that grew fast since they were
-- taken (a new platform's first large fan-out, a tenant's first) looks tiny,
-- and the planner then reads every delivery of the tenant for each of the
-- batch's rows. Measured: a 100,000-email fan-out slowed from 2,500 to 400
-- emails a second as it went. Row by row by (tenant_id, id), the plan is an
-- index lookup whatever the statistics say.
--
-- Security invoker: row-level security applies, with the caller's tenant.
create function hg_record_delivery_steps(
    p_tenant uuid, p_ids uuid[], p_statuses text[], p_attempted boolean[],
    p_retry_ms bigint[], p_errors text[])
returns void
language plpgsql volatile set search_path = public, pg_temp as $$
declare
    i integer;
begin
    for i in 1 .. coalesce(array_length(p_ids, 1), 0) loop
        update deliveries d
           set status = p_statuses[i],
               attempts = d.attempts + case when p_attempted[i] then 1 else 0 end,
               sent_at = case when p_statuses[i] = 'sent' then now() else d.sent_at end,
               last_attempt_at = case when p_attempted[i] then now() else d.last_attempt_at end,
               next_attempt_at = now() + p_retry_ms[i] * interval '1 millisecond',
               last_error = case when p_statuses[i] = 'sent' then d.last_error else p_errors[i] end
         where d.tenant_id = p_tenant and d.id = p_ids[i];
    end loop;
end $$;

revoke all on function hg_record_delivery_steps(uuid, uuid[], text[], boolean[], bigint[], text[]) from public;
grant execute on function hg_record_delivery_steps(uuid, uuid[], text[], boolean[], bigint[], text[]) to heliograph_app;
