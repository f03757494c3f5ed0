-- Tenant isolation, defence in depth (issue 13, item 8).
--
-- Until now the processes connected as DATABASE_URL's role (the owner, or a
-- superuser) and ran `SET ROLE heliograph_app` on each connection: any code
-- path, or an injected statement, could `RESET ROLE` and be the owner again,
-- to whom row-level security did not apply. From here on (README § Database
-- roles):
--
-- 1. The api and the worker log in as a role of their own that owns nothing
--    and is a member of `heliograph_app` only; migrations run as the schema's
--    owner through MIGRATION_DATABASE_URL. The processes refuse to serve as
--    a superuser, a BYPASSRLS role or a role that can act as an owner.
-- 2. Every tenant table FORCEs row-level security: its owner, too, sees only
--    the rows of `app.tenant_id`. (Superusers bypass RLS whatever the table
--    says: the owner must not be one.)
-- 3. The cross-tenant `hg_*` functions (SECURITY DEFINER) no longer run as
--    the owner, whom FORCE now binds, but as `heliograph_definer`: NOLOGIN,
--    no BYPASSRLS, owner of those functions and nothing else, let through by
--    one explicit policy per table (`definer_access`) while it is the one
--    acting. Nobody logs in as it, and the serving role cannot SET ROLE to
--    it.
-- 4. Every SECURITY DEFINER function searches its schema, then pg_temp, last,
--    explicitly: a temporary table or function of the caller's can never
--    stand in for one of ours while the function runs with the definer's
--    rights.
--
-- The loops below take every table and function there is, so that tables
-- and functions of migrations written alongside this one are covered too.
-- A later migration that adds a tenant table or a definer function follows
-- the recipe in docs/architecture.md § Tenancy; the tests in
-- services/api/tests/api/database_roles.rs fail when it does not.

-- The definer role. An operator may have made it already (deploy/postgres-roles.sql):
-- then this migration needs no CREATEROLE.
do $$
begin
    if not exists (select from pg_roles where rolname = 'heliograph_definer') then
        create role heliograph_definer nologin;
    end if;
exception
    -- Roles are cluster-wide: another database's migration made it meanwhile.
    when duplicate_object or unique_violation then null;
end $$;

do $$
begin
    if exists (select from pg_roles
                where rolname = 'heliograph_definer' and (rolcanlogin or rolsuper or rolbypassrls)) then
        raise exception 'heliograph_definer must be NOLOGIN NOSUPERUSER NOBYPASSRLS (it runs the cross-tenant functions)';
    end if;
    -- Handing a function to a role takes membership in it (a superuser has it).
    if not pg_has_role(current_user, 'heliograph_definer', 'MEMBER') then
        execute format('grant heliograph_definer to %I', current_user);
    end if;
end $$;

-- Only the owner creates objects in the schema (already so on a cluster made
-- with PostgreSQL 15 or later; an older one granted CREATE to everybody).
revoke create on schema public from public;

-- CREATE on the schema: PostgreSQL asks it of a function's new owner. The
-- definer runs only the fixed bodies of the hg_* functions, none of which creates anything.
grant usage, create on schema public to heliograph_definer;
grant select, insert, update, delete on all tables in schema public to heliograph_definer;
grant usage, select on all sequences in schema public to heliograph_definer;
revoke all on _sqlx_migrations from heliograph_definer;
alter default privileges in schema public grant select, insert, update, delete on tables to heliograph_definer;
alter default privileges in schema public grant usage, select on sequences to heliograph_definer;

-- Every tenant table (a `tenant_id` column, or `tenants` itself) and every
-- table already under row-level security: enabled, forced, the tenant policy
-- (made here should an earlier migration have forgotten it), and the
-- definer's policy.
do $$
declare
    t regclass;
    keyed boolean;
begin
    for t, keyed in
        select c.oid::regclass,
               exists (select from pg_attribute a
                        where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
          from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
           and (c.relrowsecurity or c.relname = 'tenants'
                or exists (select from pg_attribute a
                            where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped))
    loop
        if keyed and not exists (select from pg_policy p where p.polrelid = t and p.polname = 'tenant_isolation') then
            execute format('create policy tenant_isolation on %s using (tenant_id = app_tenant())
                            with check (tenant_id = app_tenant())', t);
        end if;
        execute format('alter table %s enable row level security', t);
        execute format('alter table %s force row level security', t);
        -- TO names whom the policy is for; the condition checks who is acting.
        -- A policy applies to every role that inherits from the one it names,
        -- and the owner is a member of heliograph_definer (to hand functions
        -- to it): without the condition, FORCE would bind the owner in name
        -- only. As it is, the owner sees every row only after `SET ROLE
        -- heliograph_definer`, as code inside an hg_* function does.
        if not exists (select from pg_policy p where p.polrelid = t and p.polname = 'definer_access') then
            execute format('create policy definer_access on %s to heliograph_definer
                            using (current_user = ''heliograph_definer'')
                            with check (current_user = ''heliograph_definer'')', t);
        end if;
    end loop;
end $$;

-- Every SECURITY DEFINER routine: run by the definer, with pg_temp last.
do $$
declare
    f regprocedure;
begin
    for f in select p.oid::regprocedure from pg_proc p
              where p.pronamespace = 'public'::regnamespace and p.prosecdef
    loop
        execute format('alter routine %s owner to heliograph_definer', f);
        execute format('alter routine %s set search_path = public, pg_temp', f);
    end loop;
end $$;
