-- Which public pages changed, and in what order, so every api replica can
-- rebuild its in-memory snapshot of a page when anything a visitor sees of it
-- changes, whoever wrote the change (api, worker, a migration, psql).
--
-- An append-only log rather than a counter on `pages`: writers never wait on
-- each other's page row, and a replica asks "what changed since seq N" with
-- one indexed range scan. Redis carries the same news faster (pub/sub); this
-- log is what makes a lost message, or a replica that was down, harmless.
-- The worker's clock prunes rows older than an hour.

create table page_changes (
    seq         bigint generated always as identity primary key,
    page_id     uuid not null,
    changed_at  timestamptz not null default clock_timestamp()
);
create index page_changes_changed_at_idx on page_changes (changed_at);

-- No policy: the application role reads and writes this table only through
-- the security-definer functions below.
alter table page_changes enable row level security;
alter table page_changes force row level security;

create function hg_touch_page() returns trigger
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
        insert into page_changes (page_id) values (pid);
    end if;
    return null;
end $$;

do $$
declare
    t text;
begin
    foreach t in array array['pages', 'component_groups', 'components', 'incidents',
                             'incident_updates', 'incident_components']
    loop
        execute format('create trigger touch_page after insert or update or delete on %I
                        for each row execute function hg_touch_page()', t);
    end loop;
end $$;

-- Every page's route: its slug, its tenant and its id.
create function hg_page_routes()
returns table (slug text, tenant_id uuid, page_id uuid)
language sql stable security definer set search_path = public as $$
    select p.slug, p.tenant_id, p.id from pages p
$$;

-- Pages changed after p_seq, and the newest seq seen (p_seq when none).
create function hg_page_changes_since(p_seq bigint)
returns table (page_id uuid, seq bigint)
language sql stable security definer set search_path = public as $$
    select c.page_id, max(c.seq) from page_changes c where c.seq > p_seq group by c.page_id
$$;

-- The newest seq, so a replica starting up knows where "since" begins.
create function hg_page_changes_head()
returns bigint
language sql stable security definer set search_path = public as $$
    select coalesce(max(seq), 0) from page_changes
$$;

create function hg_prune_page_changes(p_before timestamptz)
returns bigint
language sql volatile security definer set search_path = public as $$
    with gone as (delete from page_changes where changed_at < p_before returning 1)
    select count(*) from gone
$$;

do $$
declare
    f text;
begin
    foreach f in array array['hg_touch_page()', 'hg_page_routes()', 'hg_page_changes_since(bigint)',
                             'hg_page_changes_head()', 'hg_prune_page_changes(timestamptz)']
    loop
        execute format('revoke all on function %s from public', f);
        execute format('grant execute on function %s to heliograph_app', f);
    end loop;
end $$;
