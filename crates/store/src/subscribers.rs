//! Subscribers of a page.

use heliograph_domain::{
    Channel, ComponentId, EmailAddress, EndpointUrl, EventKind, PageId, PhoneNumber, SubscriberId,
};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{ListQuery, Listed, Result, TenantTx};

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
    /// Where they are reached.
    pub target: Target,
    /// The signing secret, for a webhook subscriber.
    pub webhook_secret: Option<String>,
    /// Components to follow; empty means all.
    pub component_ids: Vec<ComponentId>,
    /// Whether the subscription is active at once (added by the team) or awaits confirmation.
    pub confirmed: bool,
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
const SUBSCRIBERS_WHERE: &str = " from subscribers s
     where s.tenant_id = $1 and s.page_id = $2 and s.unsubscribed_at is null
       and ($3::text is null or coalesce(s.email::text, s.phone_number, s.endpoint) ilike $3 escape '\\')
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
        let id = SubscriberId::new();
        let (email, phone, endpoint) = new.target.columns();
        // The insert selects from pages, so another tenant's page inserts nothing (→ NotFound).
        sqlx::query(
            "insert into subscribers (id, tenant_id, page_id, channel, email, phone_number, endpoint,
                                      webhook_secret, confirmed_at, sms_handle)
             select $1, p.tenant_id, p.id, $4, $5, $6, $7, $8, case when $9 then now() end,
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
        .bind(endpoint)
        .bind(new.webhook_secret.as_deref())
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
    pub async fn subscriber_by_target(
        &mut self,
        page: PageId,
        target: &Target,
    ) -> Result<Option<Subscriber>> {
        let (email, phone, endpoint) = target.columns();
        Ok(sqlx::query_as(concat!(
            "select ",
            subscriber_columns!(),
            " from subscribers s where s.tenant_id = $1 and s.page_id = $2 and s.channel = $3
                and s.unsubscribed_at is null
                and (s.email = $4::citext or s.phone_number = $5 or s.endpoint = $6)"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(target.channel().as_str())
        .bind(email)
        .bind(phone)
        .bind(endpoint)
        .fetch_optional(&mut *self.tx)
        .await?)
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
