//! Whether billing is on, and what it needs when it is: `BILLING` (`off`,
//! the default, or `on`), `PLANS_FILE` (default: the shipped
//! `deploy/plans.toml`), `BILLING_GRACE_DAYS` (how long a tenant whose
//! payments fail keeps its plan, default 14), and Stripe's:
//! `STRIPE_SECRET_KEY`, `STRIPE_WEBHOOK_SECRET` (one signing secret, or
//! several separated by commas while one is rotated out) and
//! `STRIPE_API_BASE` (Stripe's own unless set: an emulator's in tests).

use std::sync::Arc;

use heliograph_domain::{Limits, Standing};
use heliograph_runtime::{SettingError, Settings};
use secrecy::{ExposeSecret, SecretString};
use time::{Duration, OffsetDateTime};

use crate::stripe::StripeApi;
use crate::{Plan, Plans};

/// Billing, off or on.
#[derive(Debug, Clone)]
pub enum Billing {
    /// No plans, no limits, no Stripe: self-hosting and local runs.
    Off,
    /// Plans and their limits apply.
    On(Arc<BillingOn>),
}

/// What billing needs when it is on.
#[derive(Debug)]
pub struct BillingOn {
    /// The plans.
    pub plans: Plans,
    /// How long a tenant whose payments fail keeps its plan.
    pub grace: Duration,
    /// Stripe's API.
    pub stripe: StripeApi,
    /// The secrets Stripe signs webhooks with (several during a rotation).
    pub webhook_secrets: Vec<SecretString>,
}

/// The plan a tenant is served on now and its limits (with billing off,
/// no plan and no limit).
#[derive(Debug, Clone, Copy)]
pub struct Entitlement<'a> {
    /// The plan in force, with billing on.
    pub plan: Option<&'a Plan>,
    /// Its limits ([`Limits::UNLIMITED`] with billing off).
    pub limits: Limits,
}

impl Entitlement<'_> {
    /// The plan's id, as a refusal names it (`unlimited` with billing off,
    /// where nothing is refused).
    #[must_use]
    pub fn plan_id(&self) -> &str {
        self.plan.map_or("unlimited", |p| p.id.as_str())
    }
}

impl Billing {
    /// From `BILLING`, `PLANS_FILE` and `BILLING_GRACE_DAYS`.
    ///
    /// # Errors
    /// A [`SettingError`] naming the setting that is malformed, or the
    /// plans file that cannot be read or does not hold together.
    pub fn from_settings(s: &Settings) -> Result<Self, SettingError> {
        match s.or("BILLING", "off").trim() {
            "off" => Ok(Self::Off),
            "on" => {
                let plans = match s.or("PLANS_FILE", "").trim() {
                    "" => Plans::parse(crate::plans::DEFAULT_PLANS),
                    path => {
                        let text = std::fs::read_to_string(path).map_err(|e| {
                            SettingError::new("PLANS_FILE", format!("cannot be read: {e}"))
                        })?;
                        Plans::parse(&text)
                    }
                }
                .map_err(|e| SettingError::new("PLANS_FILE", e.to_string()))?;
                let days: u16 = s.parsed_or("BILLING_GRACE_DAYS", 14)?;
                if !(1..=60).contains(&days) {
                    return Err(SettingError::new(
                        "BILLING_GRACE_DAYS",
                        "must be between 1 and 60",
                    ));
                }
                let key = s.secret("STRIPE_SECRET_KEY")?;
                let webhook_secrets: Vec<SecretString> = s
                    .secret("STRIPE_WEBHOOK_SECRET")?
                    .expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(SecretString::from)
                    .collect();
                if webhook_secrets.is_empty() {
                    return Err(SettingError::new(
                        "STRIPE_WEBHOOK_SECRET",
                        "must name at least one signing secret (whsec_…)",
                    ));
                }
                let base = s.or("STRIPE_API_BASE", "");
                let base = base.trim();
                if !(base.is_empty() || base.starts_with("https://") || base.starts_with("http://"))
                {
                    return Err(SettingError::new(
                        "STRIPE_API_BASE",
                        "must be an http(s) URL",
                    ));
                }
                let stripe = StripeApi::new(&key, (!base.is_empty()).then_some(base))
                    .map_err(|e| SettingError::new("STRIPE_SECRET_KEY", e.to_string()))?;
                Ok(Self::On(Arc::new(BillingOn {
                    plans,
                    grace: Duration::days(i64::from(days)),
                    stripe,
                    webhook_secrets,
                })))
            }
            _ => Err(SettingError::new("BILLING", "must be `off` or `on`")),
        }
    }

    /// Whether billing is on.
    #[must_use]
    pub const fn is_on(&self) -> bool {
        matches!(self, Self::On(_))
    }

    /// What a tenant standing as `standing` (none: never subscribed) is
    /// served on at `now`.
    #[must_use]
    pub fn entitlement(&self, standing: Option<&Standing>, now: OffsetDateTime) -> Entitlement<'_> {
        match self {
            Self::Off => Entitlement {
                plan: None,
                limits: Limits::UNLIMITED,
            },
            Self::On(on) => {
                let free = on.plans.free();
                let plan = standing.map_or(free, |s| {
                    on.plans
                        .get_or_free(s.plan_in_force(&free.id, now, on.grace))
                });
                Entitlement {
                    plan: Some(plan),
                    limits: plan.limits,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use heliograph_domain::SubscriptionStatus;

    use super::*;

    /// Billing on, with Stripe settings.
    const STRIPE: [(&str, &str); 4] = [
        ("BILLING", "on"),
        ("STRIPE_SECRET_KEY", "sk_test_1"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new"),
        ("STRIPE_API_BASE", "http://127.0.0.1:9"),
    ];

    #[test]
    fn billing_is_off_unless_turned_on_and_a_bad_setting_is_named() {
        let off = Billing::from_settings(&Settings::from_pairs([])).unwrap();
        assert!(!off.is_on());
        let e = off.entitlement(None, OffsetDateTime::now_utc());
        assert_eq!(e.limits, Limits::UNLIMITED);
        assert!(e.plan.is_none());
        let on = Billing::from_settings(&Settings::from_pairs(STRIPE)).unwrap();
        let Billing::On(settings) = &on else {
            panic!("billing is on")
        };
        let secrets: Vec<&str> = settings
            .webhook_secrets
            .iter()
            .map(ExposeSecret::expose_secret)
            .collect();
        assert_eq!(secrets, ["whsec_old", "whsec_new"]);
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = STRIPE.to_vec();
            pairs.retain(|(k, _)| *k != extra.0);
            pairs.push(extra);
            pairs
        };
        for (pairs, name) in [
            (vec![("BILLING", "yes")], "BILLING"),
            (
                with(("PLANS_FILE", "/nonexistent/plans.toml")),
                "PLANS_FILE",
            ),
            (with(("BILLING_GRACE_DAYS", "0")), "BILLING_GRACE_DAYS"),
            (vec![("BILLING", "on")], "STRIPE_SECRET_KEY"),
            (
                with(("STRIPE_WEBHOOK_SECRET", " , ")),
                "STRIPE_WEBHOOK_SECRET",
            ),
            (with(("STRIPE_API_BASE", "ftp://x")), "STRIPE_API_BASE"),
        ] {
            assert_eq!(
                Billing::from_settings(&Settings::from_pairs(pairs))
                    .unwrap_err()
                    .name,
                name
            );
        }
    }

    #[test]
    fn a_tenant_is_served_on_its_plan_while_paid_and_on_the_free_plan_after() {
        let on = Billing::from_settings(&Settings::from_pairs(STRIPE)).unwrap();
        let now = OffsetDateTime::now_utc();
        assert_eq!(on.entitlement(None, now).plan_id(), "free");
        let mut standing = Standing {
            plan: "team".to_owned(),
            status: Some(SubscriptionStatus::Active),
            past_due_since: None,
        };
        let team = on.entitlement(Some(&standing), now);
        assert_eq!(team.plan_id(), "team");
        assert_eq!(team.limits.pages, Some(3));
        standing.status = Some(SubscriptionStatus::Canceled);
        assert_eq!(on.entitlement(Some(&standing), now).plan_id(), "free");
    }
}
