-- The application's role may not rewrite migration history: the blanket
-- grant of migration 3 reached sqlx's own bookkeeping table too.
revoke all on _sqlx_migrations from heliograph_app;
