//! The plans a platform sells, as data: `deploy/plans.toml` by default
//! (compiled in), or the file `PLANS_FILE` names. One plan is the free plan:
//! a tenant without a subscription, or whose subscription lapsed, is served
//! on it. Each paid plan names a Stripe price per interval.

use std::collections::BTreeMap;

use heliograph_domain::Limits;
use serde::{Deserialize, Serialize};

/// The plans file that ships with Heliograph.
pub const DEFAULT_PLANS: &str = include_str!("../../../deploy/plans.toml");

/// How often a paid plan is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// Every month.
    Month,
    /// Every year.
    Year,
}

impl Interval {
    /// The wire form (`month`, `year`), as Stripe names it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Year => "year",
        }
    }
}

/// One plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Its id (the key in the file): what is stored and answered.
    #[serde(skip_deserializing)]
    pub id: String,
    /// Its name, as people read it.
    pub name: String,
    /// Its limits (a limit left out is no limit).
    #[serde(default)]
    pub limits: Limits,
    /// Its Stripe price per interval (none for the free plan).
    #[serde(default)]
    pub prices: BTreeMap<Interval, String>,
}

impl Plan {
    /// Whether it is paid for (has a price).
    #[must_use]
    pub fn is_paid(&self) -> bool {
        !self.prices.is_empty()
    }
}

/// Every plan, and which is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    free: String,
    plans: Vec<Plan>,
}

/// Why a plans file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlansError {
    /// Not TOML of the expected shape.
    #[error("the plans file does not parse: {0}")]
    Parse(String),
    /// `free` names no plan of the file.
    #[error("the free plan {0:?} is not one of the file's plans")]
    NoFreePlan(String),
    /// The free plan has a price.
    #[error("the free plan {0:?} has a price")]
    PricedFreePlan(String),
    /// A plan other than the free one has no price: nobody could buy it.
    #[error("the plan {0:?} has no price: only the free plan may have none")]
    Unpriced(String),
    /// Two plans share a price: a subscription to it could not be told apart.
    #[error("the price {0:?} belongs to two plans")]
    SharedPrice(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    free: String,
    /// In the file's order (toml's `preserve_order`): the order plans are
    /// offered in.
    plans: toml::Table,
}

impl Plans {
    /// The plans of a plans file's text.
    ///
    /// # Errors
    /// [`PlansError`] when it does not parse, or does not hold together.
    pub fn parse(text: &str) -> Result<Self, PlansError> {
        let file: File = toml::from_str(text).map_err(|e| PlansError::Parse(e.to_string()))?;
        let plans = file
            .plans
            .into_iter()
            .map(|(id, plan)| {
                plan.try_into::<Plan>()
                    .map(|plan| Plan {
                        id: id.clone(),
                        ..plan
                    })
                    .map_err(|e| PlansError::Parse(format!("plans.{id}: {e}")))
            })
            .collect::<Result<Vec<Plan>, PlansError>>()?;
        let free = plans
            .iter()
            .find(|p| p.id == file.free)
            .ok_or_else(|| PlansError::NoFreePlan(file.free.clone()))?;
        if free.is_paid() {
            return Err(PlansError::PricedFreePlan(free.id.clone()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for plan in &plans {
            if plan.id != file.free && !plan.is_paid() {
                return Err(PlansError::Unpriced(plan.id.clone()));
            }
            for price in plan.prices.values() {
                if !seen.insert(price.clone()) {
                    return Err(PlansError::SharedPrice(price.clone()));
                }
            }
        }
        Ok(Self {
            free: file.free,
            plans,
        })
    }

    /// The plans that ship with Heliograph.
    ///
    /// # Panics
    /// Never: the shipped file is checked by this crate's tests.
    #[must_use]
    pub fn shipped() -> Self {
        Self::parse(DEFAULT_PLANS).expect("deploy/plans.toml holds together")
    }

    /// The free plan.
    #[must_use]
    pub fn free(&self) -> &Plan {
        self.get(&self.free).unwrap_or(&self.plans[0])
    }

    /// The plan `id`, if there is one.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// The plan `id`, or the free plan when the file no longer has it (a
    /// plan retired from the file serves its tenants as the free plan until
    /// their subscription moves).
    #[must_use]
    pub fn get_or_free(&self, id: &str) -> &Plan {
        self.get(id).unwrap_or_else(|| self.free())
    }

    /// The plan and interval a Stripe price is of.
    #[must_use]
    pub fn by_price(&self, price: &str) -> Option<(&Plan, Interval)> {
        self.plans.iter().find_map(|p| {
            p.prices
                .iter()
                .find(|(_, id)| id.as_str() == price)
                .map(|(interval, _)| (p, *interval))
        })
    }

    /// Every plan, the free one first, then as the file orders them.
    pub fn all(&self) -> impl Iterator<Item = &Plan> {
        std::iter::once(self.free()).chain(self.plans.iter().filter(|p| p.id != self.free))
    }
}

#[cfg(test)]
mod tests {
    use heliograph_domain::Limit;

    use super::*;

    #[test]
    fn plans_are_offered_in_the_files_order() {
        let plans = Plans::shipped();
        let ids: Vec<&str> = plans.all().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["free", "team", "business"]);
    }

    #[test]
    fn the_shipped_plans_hold_together() {
        let plans = Plans::shipped();
        let free = plans.free();
        assert!(!free.is_paid());
        assert_eq!(
            free.limits.of(Limit::TextsPerMonth),
            Some(0),
            "SMS needs a paid plan"
        );
        assert!(plans.all().count() >= 3);
        for plan in plans.all().skip(1) {
            assert!(plan.prices.contains_key(&Interval::Month), "{}", plan.id);
            assert!(plan.prices.contains_key(&Interval::Year), "{}", plan.id);
            let (found, _) = plans.by_price(&plan.prices[&Interval::Month]).unwrap();
            assert_eq!(found.id, plan.id);
        }
    }

    #[test]
    fn a_file_that_does_not_hold_together_is_refused_with_its_reason() {
        let refuse = |text: &str| Plans::parse(text).unwrap_err();
        assert!(matches!(refuse("free = 3"), PlansError::Parse(_)));
        assert_eq!(
            refuse("free = \"gratis\"\n[plans.free]\nname = \"Free\""),
            PlansError::NoFreePlan("gratis".to_owned())
        );
        assert_eq!(
            refuse("free = \"free\"\n[plans.free]\nname = \"Free\"\nprices = { month = \"p\" }"),
            PlansError::PricedFreePlan("free".to_owned())
        );
        assert_eq!(
            refuse("free = \"free\"\n[plans.free]\nname = \"Free\"\n[plans.pro]\nname = \"Pro\""),
            PlansError::Unpriced("pro".to_owned())
        );
        assert_eq!(
            refuse(
                "free = \"free\"\n[plans.free]\nname = \"Free\"\n[plans.a]\nname = \"A\"\nprices = { month = \"p\" }\n[plans.b]\nname = \"B\"\nprices = { year = \"p\" }"
            ),
            PlansError::SharedPrice("p".to_owned())
        );
        // A misspelt limit is an error, not a silent "no limit".
        assert!(matches!(
            refuse("free = \"free\"\n[plans.free]\nname = \"Free\"\nlimits = { page = 1 }"),
            PlansError::Parse(_)
        ));
    }

    #[test]
    fn a_plan_retired_from_the_file_serves_as_the_free_plan() {
        let plans = Plans::shipped();
        assert_eq!(plans.get_or_free("retired").id, plans.free().id);
    }
}
