//! Stripe, as Heliograph asks it: async-stripe's client (hyper, rustls with
//! ring; its retries and idempotency keys) sending the few requests billing
//! makes, and reading from each answer only the fields billing uses.
//!
//! The answers are read leniently on purpose (through miniserde's JSON value
//! into small serde types of our own, every field we do not need ignored,
//! every field Stripe may leave out optional) rather than into the crate's
//! generated types: those require every field of the API version they were
//! generated from, so a field Stripe adds, moves (`current_period_end` moved
//! onto the subscription's items in 2025) or an emulator leaves out would
//! make an answer unreadable. What billing needs of a subscription is small:
//! [`Subscription`].

use std::collections::BTreeMap;
use std::time::Duration;

use heliograph_domain::{SubscriptionStatus, TenantId};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError};
use stripe_client_core::{RequestBuilder, StripeMethod};
use time::OffsetDateTime;

use crate::{Interval, Plans};

/// How long one attempt of a Stripe request may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Stripe's API, with the platform's secret key.
#[derive(Clone)]
pub struct StripeApi {
    client: Client,
    /// The origin of a base URL other than Stripe's (an emulator's).
    other_origin: Option<String>,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the secret key: never printed.
        f.write_str("StripeApi")
    }
}

/// Why a Stripe request did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum StripeCallError {
    /// Stripe could not be reached, or did not answer in time (worth trying again).
    #[error("Stripe could not be reached: {0}")]
    Unreachable(String),
    /// Stripe refused the request (a bad id, a bad parameter, a bad key).
    #[error("Stripe refused the request ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Stripe's message.
        message: String,
    },
    /// The object asked for does not exist.
    #[error("Stripe has no such object")]
    NotFound,
    /// Stripe answered something that could not be read.
    #[error("Stripe's answer could not be read: {0}")]
    Unreadable(String),
}

impl StripeCallError {
    /// Whether trying again later may succeed.
    #[must_use]
    pub const fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Refused { status, .. } => *status == 429 || *status >= 500,
            Self::NotFound | Self::Unreadable(_) => false,
        }
    }
}

impl From<StripeError> for StripeCallError {
    fn from(e: StripeError) -> Self {
        match e {
            StripeError::Stripe(_, 404) => Self::NotFound,
            StripeError::Stripe(errors, status) => Self::Refused {
                status,
                message: errors.message.unwrap_or_default(),
            },
            StripeError::ClientError(e) => Self::Unreachable(e),
            StripeError::Timeout => Self::Unreachable("no answer in time".to_owned()),
            StripeError::JSONDeserialize(e) | StripeError::ConfigError(e) => Self::Unreadable(e),
        }
    }
}

/// A Checkout Session, as billing uses it.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckoutSession {
    /// `cs_…`.
    pub id: String,
    /// Where the customer pays.
    pub url: Option<String>,
}

/// A Customer Portal session, as billing uses it.
#[derive(Debug, Clone, Deserialize)]
pub struct PortalSession {
    /// Where the customer manages the subscription.
    pub url: String,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: String,
}

#[derive(Debug, Deserialize)]
struct List<T> {
    data: Vec<T>,
}

/// A subscription, as Stripe states it, reduced to what billing reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    /// `sub_…`.
    pub id: String,
    /// The customer (an id, or the customer when expanded).
    #[serde(deserialize_with = "id_or_object")]
    pub customer: String,
    /// Stripe's status (`active`, `past_due`, …).
    pub status: String,
    /// Whether it ends at the end of the period rather than renewing.
    #[serde(default)]
    pub cancel_at_period_end: bool,
    /// The end of the period paid for (on the subscription before Stripe's
    /// 2025 API versions, on each item since).
    #[serde(default)]
    pub current_period_end: Option<i64>,
    /// When it was created.
    #[serde(default)]
    pub created: Option<i64>,
    /// Its metadata (`tenant_id`, set at checkout).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// What it bills for.
    #[serde(default)]
    pub items: Items,
}

/// A subscription's items.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Items {
    /// The items.
    #[serde(default)]
    pub data: Vec<Item>,
}

/// One item: a price (or, for accounts and emulators that still use them,
/// a plan, whose id stands where a price id goes).
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    /// Its price.
    #[serde(default)]
    pub price: Option<PriceRef>,
    /// Its plan (the older form of a price).
    #[serde(default)]
    pub plan: Option<PriceRef>,
    /// The end of this item's period (Stripe's 2025 API versions).
    #[serde(default)]
    pub current_period_end: Option<i64>,
}

/// A price's (or plan's) id.
#[derive(Debug, Clone, Deserialize)]
pub struct PriceRef {
    /// `price_…` (or a plan id).
    pub id: String,
}

fn id_or_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IdOrObject {
        Id(String),
        Object { id: String },
    }
    Ok(match IdOrObject::deserialize(d)? {
        IdOrObject::Id(id) | IdOrObject::Object { id } => id,
    })
}

/// A subscription as the platform keeps it: what Stripe stated, mapped onto
/// the plans file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// `sub_…`.
    pub subscription_id: String,
    /// `cus_…`.
    pub customer_id: String,
    /// The plan its price is of.
    pub plan: String,
    /// The interval its price bills.
    pub interval: Interval,
    /// Its status.
    pub status: SubscriptionStatus,
    /// The end of the period paid for.
    pub current_period_end: Option<OffsetDateTime>,
    /// Whether it ends then.
    pub cancel_at_period_end: bool,
    /// The tenant its metadata names (set at checkout), if any.
    pub tenant: Option<TenantId>,
}

/// Why a subscription could not be mapped onto the plans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Its price is in no plan of the plans file.
    #[error(
        "the subscription {subscription} bills price {price}, which no plan in the plans file names"
    )]
    UnknownPrice {
        /// The subscription.
        subscription: String,
        /// The price.
        price: String,
    },
    /// It has no item (no price).
    #[error("the subscription {0} bills no price")]
    NoPrice(String),
    /// Its status is not one Stripe documents.
    #[error("the subscription {subscription} has a status Stripe does not document: {status}")]
    UnknownStatus {
        /// The subscription.
        subscription: String,
        /// The status.
        status: String,
    },
}

impl Subscription {
    /// The price it bills (its first item's).
    #[must_use]
    pub fn price(&self) -> Option<&str> {
        self.items
            .data
            .first()
            .and_then(|i| i.price.as_ref().or(i.plan.as_ref()))
            .map(|p| p.id.as_str())
    }

    /// The subscription mapped onto `plans`.
    ///
    /// # Errors
    /// A [`StateError`] when its price is in no plan, or its status is unknown.
    pub fn state(&self, plans: &Plans) -> Result<SubscriptionState, StateError> {
        let price = self
            .price()
            .ok_or_else(|| StateError::NoPrice(self.id.clone()))?;
        let (plan, interval) = plans
            .by_price(price)
            .ok_or_else(|| StateError::UnknownPrice {
                subscription: self.id.clone(),
                price: price.to_owned(),
            })?;
        let status =
            self.status
                .parse::<SubscriptionStatus>()
                .map_err(|_| StateError::UnknownStatus {
                    subscription: self.id.clone(),
                    status: self.status.clone(),
                })?;
        let period_end = self.current_period_end.or_else(|| {
            self.items
                .data
                .iter()
                .filter_map(|i| i.current_period_end)
                .max()
        });
        Ok(SubscriptionState {
            subscription_id: self.id.clone(),
            customer_id: self.customer.clone(),
            plan: plan.id.clone(),
            interval,
            status,
            current_period_end: period_end
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
            cancel_at_period_end: self.cancel_at_period_end,
            tenant: self
                .metadata
                .get("tenant_id")
                .and_then(|t| t.parse::<uuid::Uuid>().ok())
                .map(TenantId::from),
        })
    }

    /// How much a subscription matters when a customer has several: a live
    /// one over an ended one, then the newest.
    #[must_use]
    pub fn rank(&self) -> (bool, i64) {
        let live = !matches!(self.status.as_str(), "canceled" | "incomplete_expired");
        (live, self.created.unwrap_or(0))
    }
}

/// What a Checkout Session is made of.
#[derive(Debug, Clone)]
pub struct CheckoutRequest<'a> {
    /// The tenant's customer.
    pub customer: &'a str,
    /// The price to subscribe to.
    pub price: &'a str,
    /// The tenant.
    pub tenant: TenantId,
    /// The plan (kept in the session's metadata).
    pub plan: &'a str,
    /// Where Stripe sends the customer after paying.
    pub success_url: &'a str,
    /// Where Stripe sends the customer who turns back.
    pub cancel_url: &'a str,
}

#[derive(Serialize)]
struct CustomerForm<'a> {
    name: &'a str,
    email: &'a str,
    metadata: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct LineItem<'a> {
    price: &'a str,
    quantity: u32,
}

#[derive(Serialize)]
struct SubscriptionData {
    metadata: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct CheckoutForm<'a> {
    mode: &'static str,
    customer: &'a str,
    line_items: Vec<LineItem<'a>>,
    success_url: &'a str,
    cancel_url: &'a str,
    client_reference_id: String,
    metadata: BTreeMap<&'static str, String>,
    subscription_data: SubscriptionData,
}

#[derive(Serialize)]
struct PortalForm<'a> {
    customer: &'a str,
    return_url: &'a str,
}

#[derive(Serialize)]
struct SubscriptionQuery<'a> {
    customer: &'a str,
    status: &'static str,
    limit: u32,
}

impl StripeApi {
    /// A client with `secret_key`, at `api_base` (Stripe's own by default;
    /// an emulator's in tests).
    ///
    /// # Errors
    /// When the key cannot be sent as a header.
    pub fn new(secret_key: &SecretString, api_base: Option<&str>) -> Result<Self, StripeCallError> {
        let mut builder = ClientBuilder::new(secret_key.expose_secret())
            .timeout(ATTEMPT_TIMEOUT)
            .request_strategy(RequestStrategy::ExponentialBackoff(3));
        let other_origin = api_base.map(|base| {
            let after_scheme = base.find("://").map_or(0, |i| i + 3);
            let end = base[after_scheme..]
                .find('/')
                .map_or(base.len(), |i| after_scheme + i);
            base[..end].to_owned()
        });
        if let Some(base) = api_base {
            let base = if base.ends_with('/') {
                base.to_owned()
            } else {
                format!("{base}/")
            };
            builder = builder.url(base);
        }
        let client = builder.build().map_err(StripeCallError::from)?;
        Ok(Self {
            client,
            other_origin,
        })
    }

    /// Where Checkout and the Customer Portal send people: Stripe's hosted
    /// pages, or the origin of the server `STRIPE_API_BASE` names (an
    /// emulator serves its own). For the dashboard's CSP `form-action`.
    #[must_use]
    pub fn hosted_pages(&self) -> String {
        self.other_origin
            .clone()
            .unwrap_or_else(|| "https://checkout.stripe.com https://billing.stripe.com".to_owned())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        idempotency: Option<String>,
    ) -> Result<T, StripeCallError> {
        let mut request = request.customize::<miniserde::json::Value>();
        if let Some(key) = idempotency {
            let key =
                IdempotencyKey::new(key).map_err(|e| StripeCallError::Unreadable(e.to_string()))?;
            request = request.request_strategy(RequestStrategy::Idempotent(key));
        }
        let value = request.send(&self.client).await?;
        serde_json::from_str(&miniserde::json::to_string(&value))
            .map_err(|e| StripeCallError::Unreadable(e.to_string()))
    }

    /// Creates the tenant's customer; answers its id. Idempotent per tenant
    /// (within Stripe's 24 hours of idempotency keys): two owners starting
    /// a checkout at once make one customer.
    ///
    /// # Errors
    /// A [`StripeCallError`].
    pub async fn create_customer(
        &self,
        tenant: TenantId,
        name: &str,
        email: &str,
    ) -> Result<String, StripeCallError> {
        let form = CustomerForm {
            name,
            email,
            metadata: BTreeMap::from([("tenant_id", tenant.to_string())]),
        };
        let created: Created = self
            .call(
                RequestBuilder::new(StripeMethod::Post, "/customers").form(&form),
                Some(format!("heliograph-customer-{tenant}")),
            )
            .await?;
        Ok(created.id)
    }

    /// Creates a Checkout Session in subscription mode.
    ///
    /// # Errors
    /// A [`StripeCallError`].
    pub async fn create_checkout_session(
        &self,
        request: &CheckoutRequest<'_>,
    ) -> Result<CheckoutSession, StripeCallError> {
        let metadata = BTreeMap::from([
            ("tenant_id", request.tenant.to_string()),
            ("plan", request.plan.to_owned()),
        ]);
        let form = CheckoutForm {
            mode: "subscription",
            customer: request.customer,
            line_items: vec![LineItem {
                price: request.price,
                quantity: 1,
            }],
            success_url: request.success_url,
            cancel_url: request.cancel_url,
            client_reference_id: request.tenant.to_string(),
            metadata: metadata.clone(),
            subscription_data: SubscriptionData { metadata },
        };
        self.call(
            RequestBuilder::new(StripeMethod::Post, "/checkout/sessions").form(&form),
            None,
        )
        .await
    }

    /// Creates a Customer Portal session.
    ///
    /// # Errors
    /// A [`StripeCallError`].
    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<PortalSession, StripeCallError> {
        self.call(
            RequestBuilder::new(StripeMethod::Post, "/billing_portal/sessions").form(&PortalForm {
                customer,
                return_url,
            }),
            None,
        )
        .await
    }

    /// The subscription `id` as Stripe states it now.
    ///
    /// # Errors
    /// [`StripeCallError::NotFound`] when Stripe has none, or another.
    pub async fn subscription(&self, id: &str) -> Result<Subscription, StripeCallError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StripeCallError::NotFound);
        }
        self.call(
            RequestBuilder::new(StripeMethod::Get, format!("/subscriptions/{id}")),
            None,
        )
        .await
    }

    /// The customer's subscriptions (of any status), the one that matters
    /// most first ([`Subscription::rank`]).
    ///
    /// # Errors
    /// A [`StripeCallError`].
    pub async fn customer_subscriptions(
        &self,
        customer: &str,
    ) -> Result<Vec<Subscription>, StripeCallError> {
        let list: List<Subscription> = self
            .call(
                RequestBuilder::new(StripeMethod::Get, "/subscriptions").query(
                    &SubscriptionQuery {
                        customer,
                        status: "all",
                        limit: 20,
                    },
                ),
                None,
            )
            .await?;
        let mut subs = list.data;
        subs.sort_by_key(|s| std::cmp::Reverse(s.rank()));
        Ok(subs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(json: &str) -> Subscription {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_subscription_is_read_in_either_api_shape_and_mapped_onto_the_plans() {
        let plans = Plans::parse(crate::plans::DEFAULT_PLANS).unwrap();
        // The older shape: a plan on the item, the period on the subscription.
        let old = subscription(
            r#"{"id":"sub_1","object":"subscription","customer":"cus_1","status":"active",
                "current_period_end":1800000000,"metadata":{"tenant_id":"0192f5a4-0000-7000-8000-000000000001"},
                "items":{"data":[{"plan":{"id":"price_team_monthly","interval":"month"}}]},
                "unknown_field":{"nested":true}}"#,
        );
        let state = old.state(&plans).unwrap();
        assert_eq!(state.plan, "team");
        assert_eq!(state.interval, Interval::Month);
        assert_eq!(state.status, SubscriptionStatus::Active);
        assert_eq!(
            state.current_period_end.unwrap().unix_timestamp(),
            1_800_000_000
        );
        assert!(state.tenant.is_some());
        // The 2025 shape: a price, the period on the item, an expanded customer.
        let new = subscription(
            r#"{"id":"sub_2","customer":{"id":"cus_2","object":"customer"},"status":"past_due",
                "cancel_at_period_end":true,
                "items":{"data":[{"price":{"id":"price_business_yearly"},"current_period_end":1900000000}]}}"#,
        );
        let state = new.state(&plans).unwrap();
        assert_eq!(
            (state.plan.as_str(), state.interval),
            ("business", Interval::Year)
        );
        assert_eq!(state.customer_id, "cus_2");
        assert!(state.cancel_at_period_end);
        assert_eq!(
            state.current_period_end.unwrap().unix_timestamp(),
            1_900_000_000
        );
        assert_eq!(state.tenant, None);
        // A price of no plan, and a status Stripe does not have, are named.
        let stray = subscription(
            r#"{"id":"sub_3","customer":"cus_3","status":"active","items":{"data":[{"price":{"id":"price_other"}}]}}"#,
        );
        assert!(
            matches!(stray.state(&plans), Err(StateError::UnknownPrice { price, .. }) if price == "price_other")
        );
        let odd = subscription(
            r#"{"id":"sub_4","customer":"cus_4","status":"frozen","items":{"data":[{"price":{"id":"price_team_monthly"}}]}}"#,
        );
        assert!(matches!(
            odd.state(&plans),
            Err(StateError::UnknownStatus { .. })
        ));
    }

    #[test]
    fn a_live_subscription_ranks_over_an_ended_newer_one() {
        let ended =
            subscription(r#"{"id":"sub_a","customer":"c","status":"canceled","created":200}"#);
        let live =
            subscription(r#"{"id":"sub_b","customer":"c","status":"past_due","created":100}"#);
        assert!(live.rank() > ended.rank());
    }
}
