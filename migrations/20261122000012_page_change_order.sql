-- Page changes, in commit order; and custom domains among them.
--
-- 1. Order. `page_changes.seq` is taken when the row is inserted, not when
--    its transaction commits, so a reader could see seq 11 before seq 10
--    (still uncommitted), move its cursor past 10, and never rebuild that
--    page. The triggers of 20261122000010 are replaced by constraint
--    triggers deferred to commit time, which take a transaction-level
--    advisory lock before they insert: the lock is released only after the
--    commit is visible, so seqs become visible in order. Page-changing
--    transactions serialize only their last few microseconds.
-- 2. Custom domains route pages: when one starts or stops routing
--    (verified, stopped, revived, deleted) the page's routes change and
--    every api replica must reload them. Routine re-checks that change
--    nothing that routes stay silent.

create function hg_log_page_change() returns trigger
language plpgsql security definer set search_path = public as $$
declare
    row record;
    pid uuid;
begin
    if tg_op = 'DELETE' then row := old; else row := new; end if;
    if tg_table_name in ('incident_updates', 'incident_components') then
        select i.page_id into pid from incidents i where i.id = row.incident_id;
    elsif tg_table_name = 'pages' then
        pid := row.id;
    else
        pid := row.page_id;
    end if;
    if pid is not null then
        -- Held to the end of the transaction (after its commit is visible).
        perform pg_advisory_xact_lock(7279390512440750080);
        insert into page_changes (page_id) values (pid);
    end if;
    return null;
end $$;

revoke all on function hg_log_page_change() from public;
grant execute on function hg_log_page_change() to heliograph_app;

do $$
declare
    t text;
begin
    foreach t in array array['pages', 'component_groups', 'components', 'incidents',
                             'incident_updates', 'incident_components']
    loop
        execute format('drop trigger touch_page on %I', t);
        execute format('create constraint trigger log_page_change after insert or update or delete on %I
                        deferrable initially deferred
                        for each row execute function hg_log_page_change()', t);
    end loop;
end $$;

drop function hg_touch_page();

create constraint trigger log_page_change_insert_delete after insert or delete on domains
    deferrable initially deferred
    for each row execute function hg_log_page_change();

create constraint trigger log_page_change_update after update on domains
    deferrable initially deferred
    for each row
    when (old.verified_at is distinct from new.verified_at
          or old.stopped_at is distinct from new.stopped_at
          or old.hostname is distinct from new.hostname
          or old.page_id is distinct from new.page_id)
    execute function hg_log_page_change();
