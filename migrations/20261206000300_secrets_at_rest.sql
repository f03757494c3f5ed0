-- Issue 13, item 4: secrets at rest. A webhook subscriber's signing secret
-- and a Slack or Teams subscriber's URL (whoever holds it can post to the
-- channel) are sealed by the application with the operator's key ring
-- (SECRETS_KEY; crates/auth/src/sealed.rs) before they are written, and
-- opened only by the worker, where a delivery is signed or sent. The
-- database never sees the key: SQL cannot seal, so this migration moves no
-- data. Rows written before it keep their plaintext in `webhook_secret` and
-- `endpoint` and keep working; `heliograph-api secrets reencrypt` seals
-- them (and re-seals rows of an older key after a rotation).

alter table subscribers
    -- A Slack or Teams URL, sealed: `v1:<key id>:<base64url>`. With it,
    -- `endpoint` holds only what answers show of the URL (its origin and
    -- last four characters), so a search cannot reach the rest.
    add column endpoint_sealed text,
    -- A keyed digest (HMAC, from the sealing key) of that URL: how "already
    -- subscribed" is told without opening every row.
    add column endpoint_digest text,
    -- A webhook's signing secret, sealed; `webhook_secret` stays null.
    add column webhook_secret_sealed text,
    add constraint subscribers_endpoint_sealed_check
        check ((endpoint_sealed is null and endpoint_digest is null)
            or (channel in ('slack', 'teams') and endpoint_sealed is not null
                and endpoint_digest is not null)),
    add constraint subscribers_webhook_secret_sealed_check
        check (webhook_secret_sealed is null or channel = 'webhook');

-- One live subscription per URL and page: a sealed URL is told by its
-- digest (the shown part of two URLs may be the same), the others by the URL.
drop index subscribers_page_endpoint_key;
create unique index subscribers_page_endpoint_key on subscribers (page_id, channel, endpoint)
    where channel in ('webhook', 'slack', 'teams') and unsubscribed_at is null
      and endpoint_sealed is null;
create unique index subscribers_page_endpoint_digest_key
    on subscribers (page_id, channel, endpoint_digest)
    where endpoint_digest is not null and unsubscribed_at is null;

-- What `secrets reencrypt` has left to do, across tenants (it serves them
-- all): subscribers holding a plaintext secret, or one sealed under a key
-- other than `p_key_id`, after `p_after` in id order. Ids only; the rows
-- themselves are read and written in each tenant's own transaction.
create function hg_subscribers_to_reseal(p_key_id text, p_after uuid, p_limit integer)
returns table (tenant_id uuid, id uuid)
language sql stable security definer set search_path = public as $$
    select s.tenant_id, s.id from subscribers s
     where (p_after is null or s.id > p_after)
       and ((s.channel in ('slack', 'teams')
             and (s.endpoint_sealed is null or split_part(s.endpoint_sealed, ':', 2) <> p_key_id))
         or s.webhook_secret is not null
         or split_part(s.webhook_secret_sealed, ':', 2) <> p_key_id)
     order by s.id
     limit p_limit
$$;
revoke all on function hg_subscribers_to_reseal(text, uuid, integer) from public;
grant execute on function hg_subscribers_to_reseal(text, uuid, integer) to heliograph_app;
