//! Subscribers of a page.

use heliograph_domain::{Channel, ComponentId, EmailAddress, PageId, SubscriberId};
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
    /// When they confirmed (or were added confirmed by the team).
    pub confirmed_at: Option<OffsetDateTime>,
    /// When deliveries to them were suspended for failing.
    pub quarantined_at: Option<OffsetDateTime>,
    /// Components followed; empty means all.
    pub component_ids: Vec<Uuid>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// An email subscriber to add.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    /// The address.
    pub email: EmailAddress,
    /// Components to follow; empty means all.
    pub component_ids: Vec<ComponentId>,
    /// Whether the subscription is active at once (added by the team) or awaits confirmation.
    pub confirmed: bool,
}

/// The columns of [`Subscriber`].
macro_rules! subscriber_columns {
    () => {
        "s.id, s.page_id, s.channel, s.email::text as email, s.confirmed_at, s.quarantined_at,
         array(select sc.component_id from subscriber_components sc
                where sc.subscriber_id = s.id order by sc.component_id) as component_ids,
         s.created_at, s.updated_at"
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
       and ($3::text is null or s.email::text ilike $3 escape '\\')
       and (cardinality($4::text[]) = 0 or s.channel = any($4))
       and case $5::text
             when 'active' then s.confirmed_at is not null and s.quarantined_at is null
             when 'unconfirmed' then s.confirmed_at is null and s.quarantined_at is null
             when 'quarantined' then s.quarantined_at is not null
             else true end";

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

    /// Adds an email subscriber to a page.
    pub async fn create_email_subscriber(
        &mut self,
        page: PageId,
        new: &NewSubscriber,
    ) -> Result<Subscriber> {
        let id = SubscriberId::new();
        let components: Vec<Uuid> = new.component_ids.iter().map(ComponentId::as_uuid).collect();
        // The insert selects from pages, so another tenant's page inserts nothing (→ NotFound).
        sqlx::query(
            "insert into subscribers (id, tenant_id, page_id, channel, email, confirmed_at)
             select $1, p.tenant_id, p.id, 'email', $4, case when $5 then now() end
               from pages p where p.tenant_id = $2 and p.id = $3
             returning id",
        )
        .bind(id.as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(new.email.as_str())
        .bind(new.confirmed)
        .fetch_one(&mut *self.tx)
        .await?;
        if !components.is_empty() {
            self.check_components_on_page("components", page, &new.component_ids)
                .await?;
            sqlx::query(
                "insert into subscriber_components (tenant_id, subscriber_id, component_id)
                 select $1, $2, unnest($3::uuid[]) on conflict do nothing",
            )
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(&components)
            .execute(&mut *self.tx)
            .await?;
        }
        self.subscriber(id).await
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
