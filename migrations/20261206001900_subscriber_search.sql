-- A search of a page's subscribers (`?q=` on the REST list and the
-- dashboard) matches a substring of what answers show of the address:
-- `ilike '%…%'`, which a btree cannot serve, so each search read every
-- subscriber of the page, twice (the tab counts, then the rows). A trigram
-- index serves any pattern of three characters or more; shorter ones still
-- read the page's rows. The expression is the one `subscribers_where`
-- (crates/store/src/subscribers.rs) matches, character for character in
-- meaning: change one, change both.
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: the
-- database's owner may create it, as managed services allow.
create extension if not exists pg_trgm;

create index if not exists subscribers_search_idx on subscribers using gin (
    (coalesce(email::text, phone_number,
              case when channel not in ('slack', 'teams') or endpoint_sealed is not null
                   then endpoint end)) gin_trgm_ops);
