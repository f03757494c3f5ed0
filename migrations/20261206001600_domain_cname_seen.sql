-- The name a domain's CNAME pointed to when its last check found it
-- pointing somewhere other than the target, so that the dashboard can say
-- where it points ("CNAME points to x") rather than only that it is wrong.
-- Null when the last check saw no CNAME, saw the right one, or has not run;
-- it is what the check saw, written by each check, never by the tenant.
alter table domains add column last_cname_seen text;
