-- The worker's /metrics: how long the oldest unsent notification has waited,
-- across tenants, without letting the app role read other tenants' rows.
create function hg_oldest_unsent_delivery_seconds()
returns double precision
language sql stable security definer set search_path = public as $$
    select coalesce(extract(epoch from now() - min(created_at)), 0)::double precision
      from deliveries where status in ('pending', 'failed')
$$;
revoke all on function hg_oldest_unsent_delivery_seconds() from public;
grant execute on function hg_oldest_unsent_delivery_seconds() to heliograph_app;
