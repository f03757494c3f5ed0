//! Plans and their limits: what a tenant may have, and how a subscription's
//! state decides which plan's limits apply.
//!
//! The plans themselves are data (`heliograph_billing` reads them from a
//! file); the rules that read them live here, with no I/O: whether one more
//! of something fits ([`Limits::admit`]), and which plan a subscription in
//! a given state is served on ([`Standing::plan_in_force`]). With billing
//! off, every tenant is served on [`Limits::UNLIMITED`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::UnknownVariant;
use crate::status::wire_enum;

wire_enum!(
    /// What a plan limits. The wire name is what a `plan_limit` refusal
    /// names, and the key of the plans file.
    Limit {
        /// Status pages.
        Pages => "pages",
        /// Components (not groups) on one page.
        ComponentsPerPage => "components_per_page",
        /// Current subscribers (not those who left) of one page.
        SubscribersPerPage => "subscribers_per_page",
        /// Members of the team, with the invitations still open.
        TeamMembers => "team_members",
        /// Custom domains, whatever their state.
        CustomDomains => "custom_domains",
        /// Notification texts sent in a calendar month (UTC); confirmation
        /// codes have a budget of their own and are not counted.
        TextsPerMonth => "texts_per_month",
        /// Emails sent to subscribers in a calendar month (UTC).
        EmailsPerMonth => "emails_per_month",
        /// API requests a minute, by each person or key.
        ApiRequestsPerMinute => "api_requests_per_minute",
        /// Days the audit log keeps.
        AuditRetentionDays => "audit_retention_days",
    }
);

impl Limit {
    /// What the limit counts, as a sentence names it ("the limit on status
    /// pages is 1").
    #[must_use]
    pub const fn counted(self) -> &'static str {
        match self {
            Self::Pages => "status pages",
            Self::ComponentsPerPage => "components on a page",
            Self::SubscribersPerPage => "subscribers on a page",
            Self::TeamMembers => "team members (open invitations included)",
            Self::CustomDomains => "custom domains",
            Self::TextsPerMonth => "texts a month",
            Self::EmailsPerMonth => "emails a month",
            Self::ApiRequestsPerMinute => "API requests a minute",
            Self::AuditRetentionDays => "days of audit log",
        }
    }
}

/// A plan's limits; `None` (null) is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// [`Limit::Pages`].
    #[serde(default)]
    pub pages: Option<u32>,
    /// [`Limit::ComponentsPerPage`].
    #[serde(default)]
    pub components_per_page: Option<u32>,
    /// [`Limit::SubscribersPerPage`].
    #[serde(default)]
    pub subscribers_per_page: Option<u32>,
    /// [`Limit::TeamMembers`].
    #[serde(default)]
    pub team_members: Option<u32>,
    /// [`Limit::CustomDomains`].
    #[serde(default)]
    pub custom_domains: Option<u32>,
    /// [`Limit::TextsPerMonth`]; `Some(0)` means no SMS at all.
    #[serde(default)]
    pub texts_per_month: Option<u32>,
    /// [`Limit::EmailsPerMonth`].
    #[serde(default)]
    pub emails_per_month: Option<u32>,
    /// [`Limit::ApiRequestsPerMinute`].
    #[serde(default)]
    pub api_requests_per_minute: Option<u32>,
    /// [`Limit::AuditRetentionDays`].
    #[serde(default)]
    pub audit_retention_days: Option<u32>,
}

/// A refusal: one more would pass a plan's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanLimit {
    /// What is limited.
    pub limit: Limit,
    /// The plan's value for it.
    pub allowed: u32,
    /// The plan in force (its id in the plans file).
    pub plan: String,
}

impl Limits {
    /// No limit at all: every tenant's, with billing off.
    pub const UNLIMITED: Self = Self {
        pages: None,
        components_per_page: None,
        subscribers_per_page: None,
        team_members: None,
        custom_domains: None,
        texts_per_month: None,
        emails_per_month: None,
        api_requests_per_minute: None,
        audit_retention_days: None,
    };

    /// The plan's value for `limit`.
    #[must_use]
    pub const fn of(&self, limit: Limit) -> Option<u32> {
        match limit {
            Limit::Pages => self.pages,
            Limit::ComponentsPerPage => self.components_per_page,
            Limit::SubscribersPerPage => self.subscribers_per_page,
            Limit::TeamMembers => self.team_members,
            Limit::CustomDomains => self.custom_domains,
            Limit::TextsPerMonth => self.texts_per_month,
            Limit::EmailsPerMonth => self.emails_per_month,
            Limit::ApiRequestsPerMinute => self.api_requests_per_minute,
            Limit::AuditRetentionDays => self.audit_retention_days,
        }
    }

    /// Whether `adding` more fit under `limit` when `used` are already
    /// there. What is already over a limit (after a move to a smaller plan)
    /// stays; only adding is refused.
    ///
    /// # Errors
    /// [`PlanLimit`] when they do not fit, naming `plan`.
    pub fn admit(&self, plan: &str, limit: Limit, used: u64, adding: u64) -> Result<(), PlanLimit> {
        match self.of(limit) {
            Some(allowed) if adding > 0 && used.saturating_add(adding) > u64::from(allowed) => {
                Err(PlanLimit {
                    limit,
                    allowed,
                    plan: plan.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }
}

wire_enum!(
    /// A Stripe subscription's status, as Stripe names it.
    SubscriptionStatus {
        /// In its free trial.
        Trialing => "trialing",
        /// Paid up.
        Active => "active",
        /// The first payment has not gone through yet (Checkout is finishing).
        Incomplete => "incomplete",
        /// The first payment never went through.
        IncompleteExpired => "incomplete_expired",
        /// A renewal failed; Stripe is retrying.
        PastDue => "past_due",
        /// Stripe gave up retrying; the subscription is kept but unpaid.
        Unpaid => "unpaid",
        /// Ended.
        Canceled => "canceled",
        /// Paused (a trial ended without a payment method).
        Paused => "paused",
    }
);

/// Where a tenant's subscription stands: what the plan in force is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The plan subscribed to (its id), or the free plan's without a subscription.
    pub plan: String,
    /// The subscription's status, if there is a subscription.
    pub status: Option<SubscriptionStatus>,
    /// Since when its payments have been failing (`past_due` first seen).
    pub past_due_since: Option<OffsetDateTime>,
}

impl Standing {
    /// The plan the tenant is served on at `now`: the plan subscribed to
    /// while the subscription is trialing or active, and through `grace`
    /// after payments start failing; the free plan otherwise (unpaid,
    /// canceled, never paid). Moving to the free plan deletes nothing.
    #[must_use]
    pub fn plan_in_force<'a>(
        &'a self,
        free: &'a str,
        now: OffsetDateTime,
        grace: Duration,
    ) -> &'a str {
        match self.status {
            None => free,
            Some(SubscriptionStatus::Trialing | SubscriptionStatus::Active) => &self.plan,
            Some(SubscriptionStatus::PastDue) => {
                let since = self.past_due_since.unwrap_or(now);
                if now - since < grace {
                    &self.plan
                } else {
                    free
                }
            }
            Some(
                SubscriptionStatus::Incomplete
                | SubscriptionStatus::IncompleteExpired
                | SubscriptionStatus::Unpaid
                | SubscriptionStatus::Canceled
                | SubscriptionStatus::Paused,
            ) => free,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            pages: Some(1),
            subscribers_per_page: Some(100),
            texts_per_month: Some(0),
            ..Limits::UNLIMITED
        }
    }

    #[test]
    fn one_more_fits_up_to_the_limit_and_no_further() {
        let l = small();
        assert_eq!(l.admit("free", Limit::Pages, 0, 1), Ok(()));
        assert_eq!(
            l.admit("free", Limit::Pages, 1, 1),
            Err(PlanLimit {
                limit: Limit::Pages,
                allowed: 1,
                plan: "free".to_owned()
            })
        );
        // An import of 30 into 80 of 100 is refused whole.
        assert!(l.admit("free", Limit::SubscribersPerPage, 80, 30).is_err());
        assert_eq!(l.admit("free", Limit::SubscribersPerPage, 80, 20), Ok(()));
        // No SMS at all on a plan whose texts are 0.
        assert!(l.admit("free", Limit::TextsPerMonth, 0, 1).is_err());
        // Unlimited is unlimited.
        assert_eq!(
            Limits::UNLIMITED.admit("x", Limit::Pages, u64::MAX, 1),
            Ok(())
        );
    }

    #[test]
    fn what_is_over_a_limit_stays_and_only_adding_is_refused() {
        // A tenant with 5 pages moved to a plan of 1: checking nothing new passes.
        assert_eq!(small().admit("free", Limit::Pages, 5, 0), Ok(()));
        assert!(small().admit("free", Limit::Pages, 5, 1).is_err());
    }

    #[test]
    fn every_limit_has_its_field() {
        let mut l = Limits::UNLIMITED;
        for (n, limit) in Limit::ALL.iter().enumerate() {
            assert_eq!(l.of(*limit), None);
            let value = Some(u32::try_from(n).unwrap() + 1);
            match limit {
                Limit::Pages => l.pages = value,
                Limit::ComponentsPerPage => l.components_per_page = value,
                Limit::SubscribersPerPage => l.subscribers_per_page = value,
                Limit::TeamMembers => l.team_members = value,
                Limit::CustomDomains => l.custom_domains = value,
                Limit::TextsPerMonth => l.texts_per_month = value,
                Limit::EmailsPerMonth => l.emails_per_month = value,
                Limit::ApiRequestsPerMinute => l.api_requests_per_minute = value,
                Limit::AuditRetentionDays => l.audit_retention_days = value,
            }
            assert_eq!(l.of(*limit), value);
        }
    }

    #[test]
    fn the_plan_in_force_follows_the_subscription_and_its_grace() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1000);
        let grace = Duration::days(14);
        let standing = |status, since| Standing {
            plan: "team".to_owned(),
            status,
            past_due_since: since,
        };
        assert_eq!(
            standing(None, None).plan_in_force("free", now, grace),
            "free"
        );
        for status in [SubscriptionStatus::Trialing, SubscriptionStatus::Active] {
            assert_eq!(
                standing(Some(status), None).plan_in_force("free", now, grace),
                "team"
            );
        }
        let failing = |days| {
            standing(
                Some(SubscriptionStatus::PastDue),
                Some(now - Duration::days(days)),
            )
        };
        assert_eq!(failing(13).plan_in_force("free", now, grace), "team");
        assert_eq!(failing(14).plan_in_force("free", now, grace), "free");
        for status in [
            SubscriptionStatus::Incomplete,
            SubscriptionStatus::IncompleteExpired,
            SubscriptionStatus::Unpaid,
            SubscriptionStatus::Canceled,
            SubscriptionStatus::Paused,
        ] {
            assert_eq!(
                standing(Some(status), None).plan_in_force("free", now, grace),
                "free"
            );
        }
    }
}
