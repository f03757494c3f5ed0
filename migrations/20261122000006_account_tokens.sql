-- Single-use, expiring account links (email verification, password reset;
-- invitations later). The row is its own outbox: the worker's relay claims
-- rows not yet queued and a job sends the email; `sent_at` makes sending
-- idempotent. Links are signed (HMAC of the id), so no secret is stored.
-- Account rows belong to a person, not a tenant: no row-level security.

alter table users add column email_verified_at timestamptz;

create table account_tokens (
    id          uuid primary key,
    kind        text not null constraint account_tokens_kind_check
                    check (kind in ('verify_email', 'password_reset')),
    user_id     uuid not null references users (id) on delete cascade,
    expires_at  timestamptz not null,
    used_at     timestamptz,
    queued_at   timestamptz,
    sent_at     timestamptz,
    created_at  timestamptz not null default now()
);
create index account_tokens_unqueued_idx on account_tokens (created_at) where queued_at is null;
create index account_tokens_user_idx on account_tokens (user_id, kind);

create trigger account_tokens_notify after insert on account_tokens
    for each statement execute function outbox_notify();

-- Ends every session of a person, whatever the tenant, but `p_keep` (after
-- a password reset or change).
create function hg_revoke_sessions_of(p_user uuid, p_keep uuid)
returns void
language sql volatile security definer set search_path = public as $$
    update sessions set revoked_at = coalesce(revoked_at, now())
     where user_id = p_user and id is distinct from p_keep
$$;
revoke all on function hg_revoke_sessions_of(uuid, uuid) from public;
grant execute on function hg_revoke_sessions_of(uuid, uuid) to heliograph_app;
