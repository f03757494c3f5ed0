-- Heliograph's database roles (README § Database roles). Roles belong to the
-- whole PostgreSQL cluster, not to one database. Run this once per cluster as
-- a superuser (or, on managed PostgreSQL, the administrator role), before the
-- first migration; running it again changes nothing. Then give the two login
-- roles passwords (`\password heliograph_owner`, `\password heliograph_serve`)
-- unless the server trusts them otherwise, and create the database owned by
-- the owner: `create database heliograph owner heliograph_owner`.
--
--   heliograph_owner    LOGIN: owns the schema and runs the migrations
--                       (MIGRATION_DATABASE_URL). CREATEROLE because an early
--                       migration runs `create role heliograph_app`, which
--                       PostgreSQL checks for that privilege even when the
--                       role exists. Never a superuser: FORCE ROW LEVEL
--                       SECURITY binds it, but not a superuser.
--   heliograph_serve    LOGIN: what the api and the worker connect as
--                       (DATABASE_URL). Owns nothing; a member of heliograph_app
--                       only, so it can neither SET ROLE to the owner nor
--                       RESET ROLE into it.
--   heliograph_app      NOLOGIN: the privileges the processes need (granted by
--                       the migrations); RLS binds it to app.tenant_id.
--   heliograph_definer  NOLOGIN: owns the cross-tenant hg_* functions and
--                       nothing else; the owner is a member, to hand them over.
--
-- deploy/dev and the tests run this same file against their local clusters.

do $roles$
begin
    -- Concurrent runs (parallel tests) take turns. The lock is this
    -- database's only, hence the second look below.
    perform pg_advisory_xact_lock(7279390512440750081);
    for attempt in 1..3 loop
        begin
            if not exists (select from pg_roles where rolname = 'heliograph_owner') then
                create role heliograph_owner login createrole;
            end if;
            if not exists (select from pg_roles where rolname = 'heliograph_app') then
                create role heliograph_app nologin;
            end if;
            if not exists (select from pg_roles where rolname = 'heliograph_definer') then
                create role heliograph_definer nologin;
            end if;
            if not exists (select from pg_roles where rolname = 'heliograph_serve') then
                create role heliograph_serve login;
            end if;
            if not pg_has_role('heliograph_owner', 'heliograph_definer', 'MEMBER') then
                grant heliograph_definer to heliograph_owner;
            end if;
            if not pg_has_role('heliograph_serve', 'heliograph_app', 'MEMBER') then
                grant heliograph_app to heliograph_serve;
            end if;
            exit;
        exception
            -- Another database's run made the same role or grant meanwhile: look again.
            when duplicate_object or unique_violation then
                if attempt = 3 then
                    raise;
                end if;
        end;
    end loop;
end
$roles$;
