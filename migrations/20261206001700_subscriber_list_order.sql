-- The dashboard's subscriber list walks a page's subscribers in the order
-- they were added (created_at, then id) from a cursor. This index makes
-- that a range scan however deep the list is read, where the page's id
-- index alone would sort every row of the page for each screen.
--
-- A plain (locking) build: on a table of millions of rows, run
-- `create index concurrently` by hand before deploying, and this statement
-- finds it there.
create index if not exists subscribers_page_created_idx on subscribers (page_id, created_at, id);
