-- Issue 13, items 2 and 3: texts that cannot be pumped, and unverified
-- accounts that are not a relay.

-- SMS is off for a page until its team turns it on (which takes an owner
-- whose address is verified), and texts go only to the countries the page
-- allows, by ITU-T E.164 calling code (digits, no `+`).
alter table pages alter column allow_sms_subscribers set default false,
    -- The page's own country: texts go there while the list below is empty.
    add column sms_calling_code text
        constraint pages_sms_calling_code_check check (sms_calling_code ~ '^[1-9][0-9]{0,2}$'),
    -- The countries texts may go to, replacing the page's own; empty: the page's own only.
    add column sms_allowed_calling_codes text[] not null default '{}'
        constraint pages_sms_allowed_calling_codes_check
            check (cardinality(sms_allowed_calling_codes) <= 50);
-- SMS was on by default. It stays on only where it is in use (a live SMS
-- subscriber) and an owner's address is verified; everywhere else the team
-- turns it on when it wants it.
update pages p set allow_sms_subscribers = false
 where p.allow_sms_subscribers
   and (not exists (select 1 from subscribers s
                     where s.tenant_id = p.tenant_id and s.page_id = p.id
                       and s.channel = 'sms' and s.unsubscribed_at is null)
        or not exists (select 1 from memberships m join users u on u.id = m.user_id
                        where m.tenant_id = p.tenant_id and m.role = 'owner'
                          and u.email_verified_at is not null));

-- The id the public SMS code form names: random (no time in it, unlike the
-- UUIDv7 row ids), so the answer to a subscription never tells a new
-- number from one seen before; and not the row's id, which stays the
-- team's to know.
alter table subscribers add column sms_handle uuid;
update subscribers set sms_handle = gen_random_uuid() where channel = 'sms';
alter table subscribers add constraint subscribers_sms_handle_check
    check ((channel = 'sms') = (sms_handle is not null));
create unique index subscribers_page_sms_handle_key on subscribers (page_id, sms_handle)
    where sms_handle is not null;

-- Confirmation codes have a monthly budget of their own, so strangers
-- asking for codes never use up the texts of a tenant's incidents. Null:
-- the operator's default (SMS_CONFIRMATION_MONTHLY_BUDGET).
alter table sms_usage add column confirmations integer not null default 0;
alter table tenants add column sms_confirmation_monthly_budget integer
    constraint tenants_sms_confirmation_monthly_budget_check
        check (sms_confirmation_monthly_budget >= 0);

-- Signup with an address that has an account answers as a new signup does
-- (so it tells nobody who has an account): it makes a tenant owned by a
-- shadow of the account, which can build a page but never sign in with a
-- password, never verify (its address is someone else's), and so never
-- send anything. The address stays unique among real accounts.
alter table users add column shadow_of uuid references users (id) on delete cascade;
alter table users drop constraint users_email_key;
create unique index users_email_key on users (email) where shadow_of is null;
create index users_shadow_of_idx on users (shadow_of) where shadow_of is not null;

-- "Someone tried to sign up with your address", to the account's owner,
-- through the same outbox as the other account emails (no link in it).
alter table account_tokens drop constraint account_tokens_kind_check,
    add constraint account_tokens_kind_check
        check (kind in ('verify_email', 'password_reset', 'signup_attempt'));
