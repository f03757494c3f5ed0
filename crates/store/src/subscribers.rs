//! Subscribers of a page.

use heliograph_domain::{
    Channel, ComponentId, EmailAddress, EndpointUrl, EventKind, PageId, PhoneNumber, SubscriberId,
    TenantId,
};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{ListQuery, Listed, Result, StoreError, TenantTx};

/// Someone who asked to be notified.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Subscriber {
    /// Identifier.
    #[sqlx(try_from = "Uuid")]
    pub id: SubscriberId,
    /// The page.
    #[sqlx(try_from = "Uuid")]
    pub page_id: PageId,
    /// How they are reached.
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    /// Email address, for the email channel.
    pub email: Option<String>,
    /// Phone number (E.164), for the SMS channel.
    pub phone_number: Option<String>,
    /// URL, for the webhook, Slack and Teams channels.
    pub endpoint: Option<String>,
    /// When the last confirmation (link, code, ping) was sent.
    pub confirmation_sent_at: Option<OffsetDateTime>,
    /// Wrong SMS codes entered since then.
    pub confirmation_attempts: i32,
    /// When they confirmed (or were added confirmed by the team).
    pub confirmed_at: Option<OffsetDateTime>,
    /// When deliveries to them were suspended for failing.
    pub quarantined_at: Option<OffsetDateTime>,
    /// Components followed; empty means all.
    pub component_ids: Vec<Uuid>,
    /// The id the public SMS code form names (SMS subscribers only): random,
    /// unlike the row's id, and never shown to the team.
    pub sms_handle: Option<Uuid>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// Where a subscriber is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An inbox.
    Email(EmailAddress),
    /// A phone, by SMS.
    Sms(PhoneNumber),
    /// An HTTP endpoint: a signed webhook, or a Slack or Teams incoming webhook.
    Http(HttpChannel, EndpointUrl),
}

/// The channels that post to a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpChannel {
    /// Statuspage's webhook envelope, signed (Standard Webhooks).
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams incoming webhook.
    Teams,
}

impl Target {
    /// The channel it is reached on.
    #[must_use]
    pub const fn channel(&self) -> Channel {
        match self {
            Self::Email(_) => Channel::Email,
            Self::Sms(_) => Channel::Sms,
            Self::Http(HttpChannel::Webhook, _) => Channel::Webhook,
            Self::Http(HttpChannel::Slack, _) => Channel::Slack,
            Self::Http(HttpChannel::Teams, _) => Channel::Teams,
        }
    }

    fn columns(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        match self {
            Self::Email(e) => (Some(e.as_str()), None, None),
            Self::Sms(p) => (None, Some(p.as_str()), None),
            Self::Http(_, url) => (None, None, Some(url.as_str())),
        }
    }
}

/// A subscriber to add.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    /// Its id, chosen by the caller: sealed secrets name it.
    pub id: SubscriberId,
    /// Where they are reached.
    pub target: Target,
    /// What is kept sealed: a Slack or Teams URL (required for those
    /// channels), a webhook's signing secret.
    pub secrets: SealedSecrets,
    /// Components to follow; empty means all.
    pub component_ids: Vec<ComponentId>,
    /// Whether the subscription is active at once (added by the team) or awaits confirmation.
    pub confirmed: bool,
}

/// A subscriber's secrets as the database keeps them, sealed by the caller
/// with the operator's key ring (`heliograph_auth::SecretsKeyring`) for the
/// places [`endpoint_seal_context`] and [`webhook_secret_seal_context`] name.
/// The store never sees a key, nor these values in clear.
#[derive(Debug, Clone, Default)]
pub struct SealedSecrets {
    /// A Slack or Teams URL.
    pub endpoint: Option<SealedEndpoint>,
    /// A webhook's signing secret, sealed.
    pub webhook_secret: Option<String>,
}

/// A sealed Slack or Teams URL.
#[derive(Debug, Clone)]
pub struct SealedEndpoint {
    /// The URL, sealed.
    pub sealed: String,
    /// Its keyed digest (what "already subscribed" compares).
    pub digest: String,
    /// What answers show of it (`Channel::shown_target`): kept in
    /// `endpoint`, the only part a search can match.
    pub shown: String,
}

/// Where a sealed Slack or Teams URL belongs: it opens only there.
#[must_use]
pub fn endpoint_seal_context(id: SubscriberId) -> String {
    format!("subscribers.endpoint:{id}")
}

/// Where a sealed webhook signing secret belongs: it opens only there.
#[must_use]
pub fn webhook_secret_seal_context(id: SubscriberId) -> String {
    format!("subscribers.webhook_secret:{id}")
}

/// A subscriber's secrets as stored, for re-sealing them: the sealed
/// columns, and the plaintext of a row written before sealing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredSecrets {
    /// The subscriber.
    #[sqlx(try_from = "Uuid")]
    pub id: SubscriberId,
    /// Its channel.
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    /// The URL (a plaintext Slack or Teams URL on a row not yet sealed).
    pub endpoint: Option<String>,
    /// The sealed Slack or Teams URL.
    pub endpoint_sealed: Option<String>,
    /// A webhook's signing secret in clear, on a row not yet sealed.
    pub webhook_secret: Option<String>,
    /// A webhook's signing secret, sealed.
    pub webhook_secret_sealed: Option<String>,
}

/// The columns of [`Subscriber`].
macro_rules! subscriber_columns {
    () => {
        "s.id, s.page_id, s.channel, s.email::text as email, s.phone_number, s.endpoint,
         s.confirmation_sent_at, s.confirmation_attempts, s.confirmed_at, s.quarantined_at,
         array(select sc.component_id from subscriber_components sc
                where sc.subscriber_id = s.id order by sc.component_id) as component_ids,
         s.sms_handle, s.created_at, s.updated_at"
    };
}

/// Which subscribers a list keeps (Statuspage's `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberState {
    /// Confirmed and not quarantined.
    Active,
    /// Awaiting confirmation.
    Unconfirmed,
    /// Suspended for failing deliveries.
    Quarantined,
    /// All of the above.
    All,
}

impl SubscriberState {
    const fn as_sql(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Unconfirmed => "unconfirmed",
            Self::Quarantined => "quarantined",
            Self::All => "all",
        }
    }
}

/// The filter of a subscriber list: past subscribers (unsubscribed) are
/// never listed; `$3` is a name pattern, `$4` channels, `$5` the state.
///
/// The pattern matches what answers show of the address, nothing more: of
/// a sealed Slack or Teams URL, `endpoint` holds only that; a Slack or Teams
/// row from before sealing (plaintext until `secrets reencrypt` runs) is
/// not searchable at all, and the sealed columns never are.
const SUBSCRIBERS_WHERE: &str = " from subscribers s
     where s.tenant_id = $1 and s.page_id = $2 and s.unsubscribed_at is null
       and ($3::text is null or coalesce(s.email::text, s.phone_number,
             case when s.channel not in ('slack', 'teams') or s.endpoint_sealed is not null
                  then s.endpoint end) ilike $3 escape '\\')
       and (cardinality($4::text[]) = 0 or s.channel = any($4))
       and case $5::text
             when 'active' then s.confirmed_at is not null and s.quarantined_at is null
             when 'unconfirmed' then s.confirmed_at is null and s.quarantined_at is null
             when 'quarantined' then s.quarantined_at is not null
             else true end";

/// What an addressed event (a confirmation, a ping) carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AddressedEventPayload {
    /// The one subscriber it goes to.
    pub subscriber_id: SubscriberId,
}

impl TenantTx {
    /// A page's subscribers, oldest first, with how many match in all.
    pub async fn list_subscribers(
        &mut self,
        page: PageId,
        query: &ListQuery,
        state: SubscriberState,
    ) -> Result<Listed<Subscriber>> {
        let total = self.count_subscribers(page, query, state).await?;
        let items = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {}{SUBSCRIBERS_WHERE} order by s.created_at, s.id limit $6 offset $7",
            subscriber_columns!()
        )))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(query.pattern())
        .bind(&query.statuses)
        .bind(state.as_sql())
        .bind(query.limit)
        .bind(query.offset)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(Listed { items, total })
    }

    /// How many of a page's subscribers match.
    pub async fn count_subscribers(
        &mut self,
        page: PageId,
        query: &ListQuery,
        state: SubscriberState,
    ) -> Result<i64> {
        let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select count(*){SUBSCRIBERS_WHERE}"
        )))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(query.pattern())
        .bind(&query.statuses)
        .bind(state.as_sql())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(total)
    }

    /// A current subscriber of `page` (not one who left).
    pub async fn subscriber_on_page(
        &mut self,
        page: PageId,
        id: SubscriberId,
    ) -> Result<Subscriber> {
        Ok(sqlx::query_as(concat!(
            "select ",
            subscriber_columns!(),
            " from subscribers s where s.tenant_id = $1 and s.page_id = $2 and s.id = $3
                and s.unsubscribed_at is null"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Adds a subscriber to a page. A subscriber who is not confirmed gets
    /// a confirmation (link, code or ping) through the outbox.
    pub async fn create_subscriber(
        &mut self,
        page: PageId,
        new: &NewSubscriber,
    ) -> Result<Subscriber> {
        let id = new.id;
        let (email, phone, endpoint) = new.target.columns();
        let sealed = new.secrets.endpoint.as_ref();
        if matches!(new.target.channel(), Channel::Slack | Channel::Teams) && sealed.is_none() {
            return Err(StoreError::Corrupt(
                "a Slack or Teams URL must be sealed before it is stored".to_owned(),
            ));
        }
        // The insert selects from pages, so another tenant's page inserts nothing (→ NotFound).
        sqlx::query(
            "insert into subscribers (id, tenant_id, page_id, channel, email, phone_number, endpoint,
                                      endpoint_sealed, endpoint_digest, webhook_secret_sealed,
                                      confirmed_at, sms_handle)
             select $1, p.tenant_id, p.id, $4, $5, $6, $7, $8, $9, $10, case when $11 then now() end,
                    case when $4 = 'sms' then gen_random_uuid() end
               from pages p where p.tenant_id = $2 and p.id = $3
             returning id",
        )
        .bind(id.as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(new.target.channel().as_str())
        .bind(email)
        .bind(phone)
        .bind(sealed.map_or(endpoint, |e| Some(e.shown.as_str())))
        .bind(sealed.map(|e| e.sealed.as_str()))
        .bind(sealed.map(|e| e.digest.as_str()))
        .bind(new.secrets.webhook_secret.as_deref())
        .bind(new.confirmed)
        .fetch_one(&mut *self.tx)
        .await?;
        self.set_subscriber_components(page, id, &new.component_ids)
            .await?;
        if !new.confirmed {
            self.request_confirmation(page, id).await?;
        }
        self.subscriber(id).await
    }

    /// Replaces the components a subscriber follows (empty: all).
    pub async fn set_subscriber_components(
        &mut self,
        page: PageId,
        id: SubscriberId,
        components: &[ComponentId],
    ) -> Result<()> {
        self.check_components_on_page("components", page, components)
            .await?;
        let ids: Vec<Uuid> = components.iter().map(ComponentId::as_uuid).collect();
        sqlx::query(
            "delete from subscriber_components where tenant_id = $1 and subscriber_id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "insert into subscriber_components (tenant_id, subscriber_id, component_id)
             select $1, $2, unnest($3::uuid[]) on conflict do nothing",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(&ids)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("update subscribers set updated_at = now() where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The live (not unsubscribed) subscriber of `page` at `target`, if any.
    /// A sealed Slack or Teams URL is found by its digest: `endpoint_digests`
    /// are the URL's under every key of the ring (a row not yet re-sealed
    /// after a rotation carries an older key's); a row from before sealing,
    /// by the URL itself.
    pub async fn subscriber_by_target(
        &mut self,
        page: PageId,
        target: &Target,
        endpoint_digests: &[String],
    ) -> Result<Option<Subscriber>> {
        let (email, phone, endpoint) = target.columns();
        Ok(sqlx::query_as(concat!(
            "select ",
            subscriber_columns!(),
            " from subscribers s where s.tenant_id = $1 and s.page_id = $2 and s.channel = $3
                and s.unsubscribed_at is null
                and (s.email = $4::citext or s.phone_number = $5
                     or (s.endpoint = $6 and s.endpoint_sealed is null)
                     or s.endpoint_digest = any($7))"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(target.channel().as_str())
        .bind(email)
        .bind(phone)
        .bind(endpoint)
        .bind(endpoint_digests)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// Locks a subscriber's secrets as stored, for re-sealing them.
    pub async fn lock_subscriber_secrets(&mut self, id: SubscriberId) -> Result<StoredSecrets> {
        Ok(sqlx::query_as(
            "select id, channel, endpoint, endpoint_sealed, webhook_secret, webhook_secret_sealed
               from subscribers where tenant_id = $1 and id = $2 for update",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Replaces a subscriber's secrets with `secrets`, sealed anew (its
    /// plaintext, if any, is cleared). A part left `None` is left as it is.
    pub async fn store_subscriber_secrets(
        &mut self,
        id: SubscriberId,
        secrets: &SealedSecrets,
    ) -> Result<()> {
        let endpoint = secrets.endpoint.as_ref();
        sqlx::query(
            "update subscribers
                set endpoint = coalesce($3, endpoint),
                    endpoint_sealed = coalesce($4, endpoint_sealed),
                    endpoint_digest = coalesce($5, endpoint_digest),
                    webhook_secret_sealed = coalesce($6, webhook_secret_sealed),
                    webhook_secret = case when $6 is null then webhook_secret end
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(endpoint.map(|e| e.shown.as_str()))
        .bind(endpoint.map(|e| e.sealed.as_str()))
        .bind(endpoint.map(|e| e.digest.as_str()))
        .bind(secrets.webhook_secret.as_deref())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The live SMS subscriber of `page` whose code form names `handle`.
    pub async fn subscriber_by_sms_handle(
        &mut self,
        page: PageId,
        handle: Uuid,
    ) -> Result<Option<Subscriber>> {
        Ok(sqlx::query_as(concat!(
            "select ",
            subscriber_columns!(),
            " from subscribers s where s.tenant_id = $1 and s.page_id = $2 and s.sms_handle = $3
                and s.channel = 'sms' and s.unsubscribed_at is null"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(handle)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// Sends (again) a subscriber's confirmation: a new SMS code replaces the
    /// last one (the code derives from the time it was sent) and the count
    /// of wrong codes starts over.
    pub async fn request_confirmation(&mut self, page: PageId, id: SubscriberId) -> Result<()> {
        sqlx::query(
            "update subscribers set confirmation_sent_at = now(), confirmation_attempts = 0
              where tenant_id = $1 and page_id = $2 and id = $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        self.record_event(
            page,
            EventKind::SubscriptionConfirmation,
            &AddressedEventPayload { subscriber_id: id },
        )
        .await?;
        Ok(())
    }

    /// Queues a test ping to a subscriber.
    pub async fn request_ping(&mut self, page: PageId, id: SubscriberId) -> Result<()> {
        self.record_event(
            page,
            EventKind::SubscriptionPing,
            &AddressedEventPayload { subscriber_id: id },
        )
        .await?;
        Ok(())
    }

    /// Confirms a live subscriber of `page`; answers whether this call did.
    pub async fn confirm_subscriber(&mut self, page: PageId, id: SubscriberId) -> Result<bool> {
        let done = sqlx::query(
            "update subscribers set confirmed_at = now()
              where tenant_id = $1 and page_id = $2 and id = $3
                and unsubscribed_at is null and confirmed_at is null",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Confirms a live subscriber (its endpoint answered the confirmation
    /// ping); answers whether this call did.
    pub async fn confirm_subscriber_by_id(&mut self, id: SubscriberId) -> Result<bool> {
        let done = sqlx::query(
            "update subscribers set confirmed_at = now()
              where tenant_id = $1 and id = $2 and unsubscribed_at is null and confirmed_at is null",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts a wrong SMS code; answers how many there have been since the
    /// code was sent.
    pub async fn count_wrong_code(&mut self, page: PageId, id: SubscriberId) -> Result<i32> {
        let (n,): (i32,) = sqlx::query_as(
            "update subscribers set confirmation_attempts = confirmation_attempts + 1
              where tenant_id = $1 and page_id = $2 and id = $3
             returning confirmation_attempts",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(n)
    }

    /// Lifts the quarantine of subscribers of `page`; answers those it lifted.
    pub async fn reactivate_subscribers(
        &mut self,
        page: PageId,
        ids: &[SubscriberId],
    ) -> Result<Vec<SubscriberId>> {
        let ids: Vec<Uuid> = ids.iter().map(SubscriberId::as_uuid).collect();
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "update subscribers set quarantined_at = null, dead_streak = 0
              where tenant_id = $1 and page_id = $2 and id = any($3)
                and unsubscribed_at is null and quarantined_at is not null
             returning id",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(&ids)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id.into()).collect())
    }

    /// One subscriber.
    pub async fn subscriber(&mut self, id: SubscriberId) -> Result<Subscriber> {
        Ok(sqlx::query_as(concat!(
            "select ",
            subscriber_columns!(),
            " from subscribers s where s.tenant_id = $1 and s.id = $2"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Ends a subscription to `page` (the unsubscribe link's); answers
    /// whether this call ended it (false when it had ended already, or is
    /// not of this page).
    pub async fn unsubscribe(&mut self, page: PageId, id: SubscriberId) -> Result<bool> {
        let done = sqlx::query(
            "update subscribers set unsubscribed_at = now()
              where tenant_id = $1 and page_id = $2 and id = $3 and unsubscribed_at is null",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl crate::Store {
    /// Subscribers holding a plaintext secret, or one sealed under a key
    /// other than `key_id`, after `after` in id order, at most `limit`.
    ///
    /// Cross-tenant by nature: re-sealing serves every tenant. It answers
    /// ids only; each row is re-read and written in its tenant's transaction.
    pub async fn subscribers_to_reseal(
        &self,
        key_id: &str,
        after: Option<SubscriberId>,
        limit: i32,
    ) -> Result<Vec<(TenantId, SubscriberId)>> {
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select tenant_id, id from hg_subscribers_to_reseal($1, $2, $3)")
                .bind(key_id)
                .bind(after.map(|a| a.as_uuid()))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(tenant, id)| (tenant.into(), id.into()))
            .collect())
    }
}
