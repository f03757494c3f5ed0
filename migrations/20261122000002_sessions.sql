-- Server-side sessions: every bearer token names one, and every request
-- checks it, so logout, a password change or a removal takes effect at once.

create table sessions (
    id            uuid primary key,
    user_id       uuid not null references users (id) on delete cascade,
    tenant_id     uuid not null references tenants (id) on delete cascade,
    created_at    timestamptz not null default now(),
    expires_at    timestamptz not null,
    last_seen_at  timestamptz not null default now(),
    revoked_at    timestamptz
);
create index sessions_user_idx on sessions (user_id);
