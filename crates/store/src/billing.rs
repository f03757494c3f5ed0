//! A tenant's billing, as stored: where its subscription stands, and how
//! much of each limited thing it has. Whether one more fits is the domain's
//! (`Limits::admit`); the plan in force is the billing crate's.

use heliograph_domain::{Limit, PageId, Standing, SubscriptionStatus};
use time::OffsetDateTime;

use crate::{Result, StoreError, TenantTx};

/// A tenant's billing row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BillingRecord {
    /// The plan subscribed to.
    pub plan: String,
    /// `month` or `year`.
    pub billing_interval: Option<String>,
    /// Stripe's subscription status.
    pub status: Option<String>,
    /// The tenant's Stripe customer.
    pub stripe_customer_id: Option<String>,
    /// Its subscription.
    pub stripe_subscription_id: Option<String>,
    /// When the period paid for ends (the next renewal).
    pub current_period_end: Option<OffsetDateTime>,
    /// Whether it ends then rather than renewing.
    pub cancel_at_period_end: bool,
    /// Since when payments have been failing.
    pub past_due_since: Option<OffsetDateTime>,
}

impl BillingRecord {
    /// Where the subscription stands, for the plan in force.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a status the domain does not know.
    pub fn standing(&self) -> Result<Standing> {
        let status = self
            .status
            .as_deref()
            .map(str::parse::<SubscriptionStatus>)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Standing {
            plan: self.plan.clone(),
            status,
            past_due_since: self.past_due_since,
        })
    }
}

/// The key of the lock that serializes a tenant's additions under `limit`.
const fn lock_class(limit: Limit) -> i32 {
    // A range of its own (0x4842 = "HB"), one key per limit.
    0x4842_0000
        + match limit {
            Limit::Pages => 1,
            Limit::ComponentsPerPage => 2,
            Limit::SubscribersPerPage => 3,
            Limit::TeamMembers => 4,
            Limit::CustomDomains => 5,
            Limit::TextsPerMonth => 6,
            Limit::EmailsPerMonth => 7,
            Limit::ApiRequestsPerMinute => 8,
            Limit::AuditRetentionDays => 9,
        }
}

/// What one page has of the per-page limits.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PageUsage {
    /// The page.
    #[sqlx(try_from = "uuid::Uuid")]
    pub page_id: PageId,
    /// Its components.
    pub components: i64,
    /// Its current subscribers.
    pub subscribers: i64,
}

impl TenantTx {
    /// What each page has of the per-page limits, oldest page first.
    pub async fn page_usage(&mut self) -> Result<Vec<PageUsage>> {
        Ok(sqlx::query_as(
            "select p.id as page_id,
                    (select count(*) from components c
                      where c.tenant_id = p.tenant_id and c.page_id = p.id) as components,
                    (select count(*) from subscribers s
                      where s.tenant_id = p.tenant_id and s.page_id = p.id
                        and s.unsubscribed_at is null) as subscribers
               from pages p where p.tenant_id = $1 order by p.created_at, p.id",
        )
        .bind(self.tenant.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// The tenant's billing row, if it ever subscribed.
    pub async fn billing(&mut self) -> Result<Option<BillingRecord>> {
        Ok(sqlx::query_as(
            "select plan, billing_interval, status, stripe_customer_id, stripe_subscription_id,
                    current_period_end, cancel_at_period_end, past_due_since
               from tenant_billing where tenant_id = $1",
        )
        .bind(self.tenant.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// Takes (until this transaction ends) the tenant's lock for adding
    /// under `limit`, then answers how much it has: another transaction
    /// adding under the same limit waits here until this one commits, and
    /// then counts what this one added, so two cannot both take the last
    /// slot. `page` scopes the per-page limits (ignored by the others).
    ///
    /// The monthly and per-minute limits are counted where they are spent
    /// (the worker, the rate limiter), not here: they answer 0.
    pub async fn claim_usage(&mut self, limit: Limit, page: Option<PageId>) -> Result<u64> {
        sqlx::query("select pg_advisory_xact_lock($1, hashtext($2::text))")
            .bind(lock_class(limit))
            .bind(self.tenant.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        self.usage(limit, page).await
    }

    /// How much of `limit` the tenant has (for a per-page limit, on `page`).
    pub async fn usage(&mut self, limit: Limit, page: Option<PageId>) -> Result<u64> {
        let query = match limit {
            Limit::Pages => "select count(*) from pages where tenant_id = $1",
            Limit::ComponentsPerPage => {
                "select count(*) from components where tenant_id = $1 and page_id = $2"
            }
            Limit::SubscribersPerPage => {
                "select count(*) from subscribers
                  where tenant_id = $1 and page_id = $2 and unsubscribed_at is null"
            }
            Limit::TeamMembers => {
                "select (select count(*) from memberships where tenant_id = $1)
                      + (select count(*) from invitations
                          where tenant_id = $1 and accepted_at is null and revoked_at is null
                            and expires_at > now())"
            }
            Limit::CustomDomains => "select count(*) from domains where tenant_id = $1",
            Limit::TextsPerMonth
            | Limit::EmailsPerMonth
            | Limit::ApiRequestsPerMinute
            | Limit::AuditRetentionDays => return Ok(0),
        };
        let mut count = sqlx::query_as::<_, (i64,)>(query).bind(self.tenant.as_uuid());
        // Only a per-page count has a `$2`: a statement is bound exactly the
        // parameters it names (a cached statement refuses any more).
        if query.contains("$2") {
            count = count.bind(page.map(|p| p.as_uuid()));
        }
        let (n,) = count.fetch_one(&mut *self.tx).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
