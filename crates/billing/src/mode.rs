//! Whether billing is on, and what it needs when it is: `BILLING` (`off`,
//! the default, or `on`), `PLANS_FILE` (default: the shipped
//! `deploy/plans.toml`), `BILLING_GRACE_DAYS` (how long a tenant whose
//! payments fail keeps its plan, default 14).

use std::sync::Arc;

use heliograph_domain::{Limits, Standing};
use heliograph_runtime::{SettingError, Settings};
use time::{Duration, OffsetDateTime};

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
                Ok(Self::On(Arc::new(BillingOn {
                    plans,
                    grace: Duration::days(i64::from(days)),
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

    #[test]
    fn billing_is_off_unless_turned_on_and_a_bad_setting_is_named() {
        let off = Billing::from_settings(&Settings::from_pairs([])).unwrap();
        assert!(!off.is_on());
        let e = off.entitlement(None, OffsetDateTime::now_utc());
        assert_eq!(e.limits, Limits::UNLIMITED);
        assert!(e.plan.is_none());
        let on = Billing::from_settings(&Settings::from_pairs([("BILLING", "on")])).unwrap();
        assert!(on.is_on());
        for (pairs, name) in [
            (vec![("BILLING", "yes")], "BILLING"),
            (
                vec![("BILLING", "on"), ("PLANS_FILE", "/nonexistent/plans.toml")],
                "PLANS_FILE",
            ),
            (
                vec![("BILLING", "on"), ("BILLING_GRACE_DAYS", "0")],
                "BILLING_GRACE_DAYS",
            ),
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
        let on = Billing::from_settings(&Settings::from_pairs([("BILLING", "on")])).unwrap();
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
