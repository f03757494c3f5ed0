//! A tenant's billing, as stored: where its subscription stands, and how
//! much of each limited thing it has. Whether one more fits is the domain's
//! (`Limits::admit`); the plan in force is the billing crate's.

use heliograph_domain::{
    DeliveryId, DeliveryStatus, Limit, PageId, Standing, SubscriptionStatus, TenantId,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Claimed, Result, Store, StoreError, TenantTx};

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

/// A subscription as Stripe stated it, mapped onto the plans file (by the
/// billing crate), to apply.
#[derive(Debug, Clone)]
pub struct StatedSubscription<'a> {
    /// `sub_…`.
    pub subscription_id: &'a str,
    /// `cus_…`.
    pub customer_id: &'a str,
    /// The plan its price is of.
    pub plan: &'a str,
    /// `month` or `year`.
    pub interval: &'a str,
    /// Its status.
    pub status: SubscriptionStatus,
    /// The end of the period paid for.
    pub current_period_end: Option<OffsetDateTime>,
    /// Whether it ends then.
    pub cancel_at_period_end: bool,
}

/// What applying a stated subscription did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The plan or the status moved (and the audit log says so).
    Changed {
        /// The plan before (none: never subscribed).
        from_plan: Option<String>,
        /// The status before.
        from_status: Option<String>,
    },
    /// Stored; neither the plan nor the status moved.
    Unchanged,
    /// Not applied: the state held is newer, or is of a live subscription
    /// this (ended) one must not replace.
    Stale,
}

#[derive(sqlx::FromRow)]
struct HeldState {
    plan: String,
    status: Option<String>,
    stripe_subscription_id: Option<String>,
    past_due_since: Option<OffsetDateTime>,
    stated_at: Option<OffsetDateTime>,
}

/// Whether a status is of a subscription that still runs (or may yet).
fn is_live(status: Option<&str>) -> bool {
    !matches!(status, None | Some("canceled" | "incomplete_expired"))
}

/// A billing notice to email, with whom to.
#[derive(Debug, Clone)]
pub struct BillingNoticeWork {
    /// The notice.
    pub id: Uuid,
    /// `past_due`.
    pub kind: String,
    /// The tenant's name.
    pub tenant_name: String,
    /// Its owners' addresses.
    pub owners: Vec<String>,
}

/// What came of asking for an email's place under the plan's monthly limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailPlace {
    /// Not counted: not an email, not its first attempt, or no longer to be sent.
    NotCounted,
    /// Taken (and committed).
    Taken,
    /// None left this month.
    Refused,
}

impl Store {
    /// Where `tenant`'s subscription stands (none: it never subscribed),
    /// in one statement: the worker reads it for every delivery.
    pub async fn billing_standing(&self, tenant: TenantId) -> Result<Option<Standing>> {
        let row: Option<(String, Option<String>, Option<OffsetDateTime>)> =
            sqlx::query_as("select plan, status, past_due_since from hg_billing_standing($1)")
                .bind(tenant.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(plan, status, past_due_since)| {
            Ok(Standing {
                plan,
                status: status
                    .as_deref()
                    .map(str::parse::<SubscriptionStatus>)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                past_due_since,
            })
        })
        .transpose()
    }

    /// Takes places under `limit` (the plan's `emails_per_month`) for those
    /// of `deliveries` that are emails still to be sent at their first
    /// attempt, as many as the month leaves (in id order), in one statement
    /// of its own: the month's row is locked for that statement only, never
    /// across a send, and two batches racing for the last places cannot
    /// both have them. Answers every delivery of `deliveries` with its place.
    pub async fn take_email_places(
        &self,
        tenant: TenantId,
        deliveries: &[DeliveryId],
        limit: u32,
    ) -> Result<Vec<(DeliveryId, EmailPlace)>> {
        let sendable: Vec<&'static str> = DeliveryStatus::SENDABLE
            .iter()
            .map(|s| s.as_str())
            .collect();
        let ids: Vec<Uuid> = deliveries.iter().map(DeliveryId::as_uuid).collect();
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as("select delivery_id, place from hg_take_emails($1, $2, $3, $4)")
                .bind(tenant.as_uuid())
                .bind(&ids)
                .bind(sendable)
                .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(id, place)| {
                let place = match place.as_str() {
                    "taken" => EmailPlace::Taken,
                    "refused" => EmailPlace::Refused,
                    "not_counted" => EmailPlace::NotCounted,
                    other => {
                        return Err(StoreError::Corrupt(format!(
                            "hg_take_emails answered {other:?}"
                        )));
                    }
                };
                Ok((DeliveryId::from(id), place))
            })
            .collect()
    }

    /// Whether the Stripe event `id` was received already.
    pub async fn stripe_event_seen(&self, id: &str) -> Result<bool> {
        let (seen,): (bool,) =
            sqlx::query_as("select exists (select from stripe_events where id = $1)")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        Ok(seen)
    }

    /// Records a Stripe event that concerns no tenant (a type or a customer
    /// billing does not follow); answers whether it was new.
    pub async fn record_stripe_event(&self, id: &str, kind: &str, outcome: &str) -> Result<bool> {
        let done = sqlx::query(
            "insert into stripe_events (id, type, outcome) values ($1, $2, $3)
             on conflict (id) do nothing",
        )
        .bind(id)
        .bind(kind)
        .bind(outcome)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The tenant whose Stripe customer `customer` is.
    ///
    /// Cross-tenant by nature: a webhook names a customer, not a tenant.
    pub async fn billing_tenant_of_customer(&self, customer: &str) -> Result<Option<TenantId>> {
        let (tenant,): (Option<Uuid>,) = sqlx::query_as("select hg_billing_tenant_of_customer($1)")
            .bind(customer)
            .fetch_one(&self.pool)
            .await?;
        Ok(tenant.map(TenantId::from))
    }

    /// Up to `limit` tenants with a Stripe customer after `after`, in id
    /// order, with the customer.
    ///
    /// Cross-tenant by nature: reconciliation serves every tenant.
    pub async fn billing_customers(
        &self,
        after: Option<TenantId>,
        limit: i32,
    ) -> Result<Vec<(TenantId, String)>> {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "select tenant_id, stripe_customer_id from hg_billing_customers($1, $2)",
        )
        .bind(after.map(|t| t.as_uuid()))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(t, c)| (t.into(), c)).collect())
    }

    /// Claims up to `limit` billing notices not yet queued.
    ///
    /// Cross-tenant by nature: the relay serves every tenant.
    pub async fn claim_billing_notices(&self, limit: i64) -> Result<Claimed<(Uuid, TenantId)>> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select id, tenant_id from hg_claim_billing_notices($1)")
                .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                .fetch_all(&mut *tx)
                .await?;
        Ok(Claimed::new(
            tx,
            rows.into_iter().map(|(id, t)| (id, t.into())).collect(),
            |(id, _)| *id,
            "select hg_mark_billing_notices_queued($1)",
        ))
    }

    /// Billing notices queued more than `stale` ago and still unsent (their
    /// job was lost): touches them, answers them for re-queueing.
    pub async fn restart_stalled_billing_notices(
        &self,
        stale: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<(Uuid, TenantId)>> {
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select id, tenant_id from hg_restart_stalled_billing_notices($1, $2)")
                .bind(i64::try_from(stale.as_millis()).unwrap_or(i64::MAX))
                .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id, t)| (id, t.into())).collect())
    }
}

impl TenantTx {
    /// Records the Stripe event `id` as this tenant's, in this transaction;
    /// answers whether it is new (a replay answers false, and the caller
    /// applies nothing).
    pub async fn record_stripe_event(
        &mut self,
        id: &str,
        kind: &str,
        outcome: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "insert into stripe_events (id, type, outcome) values ($1, $2, $3)
             on conflict (id) do nothing",
        )
        .bind(id)
        .bind(kind)
        .bind(outcome)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets what came of the Stripe event `id` (recorded in this transaction).
    pub async fn set_stripe_event_outcome(&mut self, id: &str, outcome: &str) -> Result<()> {
        sqlx::query("update stripe_events set outcome = $2 where id = $1")
            .bind(id)
            .bind(outcome)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Gives the tenant its Stripe customer (a billing row on the free plan
    /// when it has none); answers the customer it has, which is `customer`
    /// unless it had one already.
    pub async fn set_stripe_customer(&mut self, customer: &str, free_plan: &str) -> Result<String> {
        let (held,): (String,) = sqlx::query_as(
            "insert into tenant_billing (tenant_id, plan, stripe_customer_id) values ($1, $2, $3)
             on conflict (tenant_id) do update
                set stripe_customer_id = coalesce(tenant_billing.stripe_customer_id,
                                                  excluded.stripe_customer_id),
                    updated_at = now()
             returning stripe_customer_id",
        )
        .bind(self.tenant.as_uuid())
        .bind(free_plan)
        .bind(customer)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(held)
    }

    /// Applies a subscription as Stripe stated it at `stated_at`, unless
    /// the state held is newer (events out of order never move it back) or
    /// is of a live subscription this ended one must not replace. A move of
    /// plan or status goes into the audit log as `billing.subscription_changed`
    /// (`cause`: the Stripe event, or `reconciliation`); a move into
    /// `past_due` also leaves a notice for the owners.
    pub async fn apply_subscription(
        &mut self,
        stated: &StatedSubscription<'_>,
        stated_at: OffsetDateTime,
        cause: &str,
    ) -> Result<Applied> {
        let held: Option<HeldState> = sqlx::query_as(
            "select plan, status, stripe_subscription_id, past_due_since, stated_at
               from tenant_billing where tenant_id = $1 for update",
        )
        .bind(self.tenant.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await?;
        let status = stated.status.as_str();
        if let Some(held) = &held {
            let newer_held = held.stated_at.is_some_and(|at| at > stated_at);
            let live_replaced_by_ended = held
                .stripe_subscription_id
                .as_deref()
                .is_some_and(|id| id != stated.subscription_id)
                && is_live(held.status.as_deref())
                && !is_live(Some(status));
            if newer_held || live_replaced_by_ended {
                return Ok(Applied::Stale);
            }
        }
        let was_past_due = held
            .as_ref()
            .is_some_and(|h| h.status.as_deref() == Some("past_due"));
        let past_due_since = (stated.status == SubscriptionStatus::PastDue).then(|| {
            held.as_ref()
                .and_then(|h| h.past_due_since)
                .filter(|_| was_past_due)
                .unwrap_or(stated_at)
        });
        sqlx::query(
            "insert into tenant_billing
                    (tenant_id, plan, billing_interval, status, stripe_customer_id,
                     stripe_subscription_id, current_period_end, cancel_at_period_end,
                     past_due_since, stated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             on conflict (tenant_id) do update
                set plan = excluded.plan, billing_interval = excluded.billing_interval,
                    status = excluded.status, stripe_customer_id = excluded.stripe_customer_id,
                    stripe_subscription_id = excluded.stripe_subscription_id,
                    current_period_end = excluded.current_period_end,
                    cancel_at_period_end = excluded.cancel_at_period_end,
                    past_due_since = excluded.past_due_since, stated_at = excluded.stated_at,
                    updated_at = now()",
        )
        .bind(self.tenant.as_uuid())
        .bind(stated.plan)
        .bind(stated.interval)
        .bind(status)
        .bind(stated.customer_id)
        .bind(stated.subscription_id)
        .bind(stated.current_period_end)
        .bind(stated.cancel_at_period_end)
        .bind(past_due_since)
        .bind(stated_at)
        .execute(&mut *self.tx)
        .await?;
        let from_plan = held
            .as_ref()
            .filter(|h| h.status.is_some())
            .map(|h| h.plan.clone());
        let from_status = held.as_ref().and_then(|h| h.status.clone());
        if from_plan.as_deref() == Some(stated.plan) && from_status.as_deref() == Some(status) {
            return Ok(Applied::Unchanged);
        }
        self.audit(&crate::AuditEntry {
            actor: crate::AuditActor {
                kind: "stripe",
                id: Uuid::nil(),
            },
            action: "billing.subscription_changed",
            object_type: "subscription",
            object_id: self.tenant.as_uuid(),
            ip: None,
            details: serde_json::json!({
                "subscription": stated.subscription_id,
                "cause": cause,
                "plan": { "from": from_plan, "to": stated.plan },
                "status": { "from": from_status, "to": status },
                "interval": stated.interval,
            }),
        })
        .await?;
        if stated.status == SubscriptionStatus::PastDue && !was_past_due {
            sqlx::query(
                "insert into billing_notices (id, tenant_id, kind) values ($1, $2, 'past_due')",
            )
            .bind(Uuid::now_v7())
            .bind(self.tenant.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(Applied::Changed {
            from_plan,
            from_status,
        })
    }

    /// Sends the billing notice `id` with `send` (given the work, unless
    /// it was sent already), then marks it sent, in this transaction: the
    /// row is locked meanwhile, so two workers never both send it.
    pub async fn send_billing_notice<F, Fut, E>(
        &mut self,
        id: Uuid,
        send: F,
    ) -> Result<std::result::Result<bool, E>>
    where
        F: FnOnce(BillingNoticeWork) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
    {
        let row: Option<(String, String, Option<OffsetDateTime>)> = sqlx::query_as(
            "select n.kind, t.name, n.sent_at from billing_notices n
               join tenants t on t.id = n.tenant_id
              where n.tenant_id = $1 and n.id = $2 for update of n",
        )
        .bind(self.tenant.as_uuid())
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some((kind, tenant_name, None)) = row else {
            return Ok(Ok(false));
        };
        let owners: Vec<(String,)> = sqlx::query_as(
            "select u.email::text from memberships m join users u on u.id = m.user_id
              where m.tenant_id = $1 and m.role = 'owner' order by u.email",
        )
        .bind(self.tenant.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        let work = BillingNoticeWork {
            id,
            kind,
            tenant_name,
            owners: owners.into_iter().map(|(e,)| e).collect(),
        };
        if let Err(e) = send(work).await {
            return Ok(Err(e));
        }
        sqlx::query("update billing_notices set sent_at = now() where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(Ok(true))
    }

    /// Records a billing event from Stripe that changes no subscription
    /// (an invoice paid or failed) in the audit log.
    pub async fn audit_billing_event(
        &mut self,
        action: &str,
        details: serde_json::Value,
    ) -> Result<()> {
        self.audit(&crate::AuditEntry {
            actor: crate::AuditActor {
                kind: "stripe",
                id: Uuid::nil(),
            },
            action,
            object_type: "subscription",
            object_id: self.tenant.as_uuid(),
            ip: None,
            details,
        })
        .await
    }
}
