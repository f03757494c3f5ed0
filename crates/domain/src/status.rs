//! The Statuspage status vocabulary and how statuses combine.
//!
//! The string forms are the wire forms of Statuspage's APIs and are also what
//! the database stores, so they must never change.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Error for a string that is not one of an enumeration's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not one of: {allowed}")]
pub struct UnknownVariant {
    /// What was given.
    pub value: String,
    /// The accepted values, comma-separated.
    pub allowed: &'static str,
}

// `$wire` is a `tt`, not a `literal`: a `literal` fragment reaches the
// derives wrapped in an invisible group, and utoipa's derive then ignores
// `serde(rename)`, documenting the variants' Rust names instead of their wire forms.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $wire:tt),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire and storage form.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok(Self::$variant),)+
                    other => Err(UnknownVariant {
                        value: other.to_owned(),
                        allowed: concat!($($wire, ", "),+).trim_end_matches(", "),
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownVariant;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// Other modules of this crate spell their stored enumerations the same way
// (they import what the expansion names: `fmt`, `FromStr`, serde's derives).
pub(crate) use wire_enum;

wire_enum!(
    /// Who may see a component: everyone, or only signed-in members of the tenant.
    Visibility {
        Public => "public",
        Private => "private",
    }
);

wire_enum!(
    /// How a subscriber is reached.
    Channel {
        Email => "email",
        Sms => "sms",
        Webhook => "webhook",
        Slack => "slack",
        Teams => "teams",
    }
);

impl Channel {
    /// Whether the subscriber is an HTTP endpoint (a URL in `endpoint`).
    #[must_use]
    pub const fn is_http(self) -> bool {
        matches!(self, Self::Webhook | Self::Slack | Self::Teams)
    }

    /// How a subscriber's target is shown to the team. A Slack or Teams
    /// incoming-webhook URL is a credential (whoever holds one posts to that
    /// channel, often an end user's own), so only its origin and last four
    /// characters are shown; addresses, numbers and webhook URLs (which the
    /// receiver verifies by signature) are shown whole.
    #[must_use]
    pub fn shown_target(self, target: &str) -> String {
        if !matches!(self, Self::Slack | Self::Teams) {
            return target.to_owned();
        }
        let host_start = target.find("://").map_or(0, |i| i + 3);
        let path_start = target[host_start..]
            .find(['/', '?', '#'])
            .map_or(target.len(), |i| host_start + i);
        let rest = &target[path_start..];
        let tail_start = rest
            .char_indices()
            .rev()
            .nth(3)
            .map_or(rest.len(), |(i, _)| i);
        format!("{}/…{}", &target[..path_start], &rest[tail_start..])
    }
}

wire_enum!(
    /// What a tenant member may do; see docs/permissions.md.
    Role {
        Owner => "owner",
        Admin => "admin",
        Editor => "editor",
        Viewer => "viewer",
    }
);

wire_enum!(
    /// The state of one component.
    ComponentStatus {
        Operational => "operational",
        DegradedPerformance => "degraded_performance",
        PartialOutage => "partial_outage",
        MajorOutage => "major_outage",
        UnderMaintenance => "under_maintenance",
    }
);

wire_enum!(
    /// The state of an incident (the first five) or a scheduled maintenance (the last four).
    IncidentStatus {
        Investigating => "investigating",
        Identified => "identified",
        Monitoring => "monitoring",
        Resolved => "resolved",
        Postmortem => "postmortem",
        Scheduled => "scheduled",
        InProgress => "in_progress",
        Verifying => "verifying",
        Completed => "completed",
    }
);

wire_enum!(
    /// How bad an incident is; also the page's overall indicator.
    Impact {
        None => "none",
        Minor => "minor",
        Major => "major",
        Critical => "critical",
        Maintenance => "maintenance",
    }
);

wire_enum!(
    /// Where a custom domain stands (see `custom_domain::DomainState::status`).
    DomainStatus {
        /// Added, never verified yet: does not route.
        Pending => "pending",
        /// Its records check out: routes.
        Verified => "verified",
        /// Verified once, failing its checks since `failing_since`: still
        /// routes until the grace period is over.
        Failing => "failing",
        /// Failed its checks for longer than the grace period: routes no more
        /// until a check passes again.
        Stopped => "stopped",
        /// Another page's claim of the hostname was verified first: this one
        /// no longer counts and is not checked again.
        Taken => "taken",
        /// Not verified within the pending period: no longer checked, and no
        /// longer counted among the tenant's pending domains, until renewed.
        Expired => "expired",
    }
);

impl DomainStatus {
    /// What the status means for the tenant, in a sentence.
    #[must_use]
    pub const fn explanation(self) -> &'static str {
        match self {
            Self::Pending => {
                "Waiting for its DNS records: create both records below; checks run until they are found or the pending period ends."
            }
            Self::Verified => "Its DNS records check out: the page is served on this hostname.",
            Self::Failing => {
                "Its DNS records no longer check out: the page is still served on this hostname through the grace period, then stops."
            }
            Self::Stopped => {
                "Its DNS records failed for longer than the grace period: the page is no longer served on this hostname until a check passes again."
            }
            Self::Taken => {
                "Another account verified this hostname first, so it holds the name and this claim no longer counts or gets checked. If the hostname is yours, keep only your token in its TXT record and delete this domain; once the other account's domain stops, add it again."
            }
            Self::Expired => {
                "It was not verified within the pending period, so it is no longer checked and no longer counts among your pending domains. Create the records, then ask for a check to renew it."
            }
        }
    }
}

wire_enum!(
    /// Why a custom domain's last check failed: the stable codes of its
    /// `last_error` (resolver text never reaches the API).
    DomainCheckError {
        /// No TXT record at `_heliograph.<host>`.
        TxtMissing => "txt_missing",
        /// TXT records at `_heliograph.<host>`, none carrying the token.
        TxtMismatch => "txt_mismatch",
        /// No CNAME record at `<host>`.
        CnameMissing => "cname_missing",
        /// A CNAME at `<host>` that points elsewhere than the target.
        CnameMismatch => "cname_mismatch",
        /// The name server did not answer, or answered with an error.
        DnsError => "dns_error",
    }
);

impl DomainCheckError {
    /// What went wrong, for a sentence in an email ("… because {explanation}").
    #[must_use]
    pub const fn explanation(self) -> &'static str {
        match self {
            Self::TxtMissing => "its TXT record is missing",
            Self::TxtMismatch => "its TXT record does not carry the verification token",
            Self::CnameMissing => "its CNAME record is missing",
            Self::CnameMismatch => "its CNAME record points elsewhere",
            Self::DnsError => "its name servers did not answer",
        }
    }
}

impl Role {
    /// Power rank: owner > admin > editor > viewer.
    #[must_use]
    pub const fn rank(self) -> u8 {
        match self {
            Self::Viewer => 0,
            Self::Editor => 1,
            Self::Admin => 2,
            Self::Owner => 3,
        }
    }
}

impl ComponentStatus {
    /// The impact a component in this status implies.
    #[must_use]
    pub const fn impact(self) -> Impact {
        match self {
            Self::Operational => Impact::None,
            Self::DegradedPerformance => Impact::Minor,
            Self::PartialOutage => Impact::Major,
            Self::MajorOutage => Impact::Critical,
            Self::UnderMaintenance => Impact::Maintenance,
        }
    }

    /// Words for a human reader.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Operational => "Operational",
            Self::DegradedPerformance => "Degraded Performance",
            Self::PartialOutage => "Partial Outage",
            Self::MajorOutage => "Major Outage",
            Self::UnderMaintenance => "Under Maintenance",
        }
    }
}

impl IncidentStatus {
    /// Whether this is a scheduled-maintenance status.
    #[must_use]
    pub const fn is_maintenance(self) -> bool {
        matches!(
            self,
            Self::Scheduled | Self::InProgress | Self::Verifying | Self::Completed
        )
    }

    /// Whether an incident in this status is still open (shown as active on the page).
    #[must_use]
    pub const fn is_unresolved(self) -> bool {
        matches!(
            self,
            Self::Investigating | Self::Identified | Self::Monitoring
        )
    }

    /// Whether an incident (or maintenance) may move from `self` to `next`.
    ///
    /// - An open incident may move to any open status or to `resolved`
    ///   (teams skip steps, and go back when a fix does not hold).
    /// - A resolved incident may be reopened, or get its `postmortem`.
    /// - `postmortem` is final.
    /// - Maintenance: `scheduled` → `in_progress` or `completed` (called
    ///   off); `in_progress` ⇄ `verifying`; either → `completed`, which is final.
    /// - Staying in the same status is always allowed (a plain update), and
    ///   incidents and maintenances never cross into each other's statuses.
    #[must_use]
    pub const fn can_move_to(self, next: Self) -> bool {
        use IncidentStatus::*;
        if self as u8 == next as u8 {
            return true;
        }
        match self {
            Investigating | Identified | Monitoring => {
                matches!(next, Investigating | Identified | Monitoring | Resolved)
            }
            Resolved => matches!(next, Investigating | Identified | Monitoring | Postmortem),
            Postmortem | Completed => false,
            Scheduled => matches!(next, InProgress | Completed),
            InProgress => matches!(next, Verifying | Completed),
            Verifying => matches!(next, InProgress | Completed),
        }
    }

    /// Words for a human reader.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Investigating => "Investigating",
            Self::Identified => "Identified",
            Self::Monitoring => "Monitoring",
            Self::Resolved => "Resolved",
            Self::Postmortem => "Postmortem",
            Self::Scheduled => "Scheduled",
            Self::InProgress => "In progress",
            Self::Verifying => "Verifying",
            Self::Completed => "Completed",
        }
    }
}

impl Impact {
    /// Severity rank: maintenance outranks nothing but `none`, so a real outage always shows.
    #[must_use]
    pub const fn rank(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Maintenance => 1,
            Self::Minor => 2,
            Self::Major => 3,
            Self::Critical => 4,
        }
    }

    /// The worse of two impacts.
    #[must_use]
    pub const fn worst(self, other: Self) -> Self {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// The impact of an incident that puts components into these statuses.
    pub fn from_component_statuses(statuses: impl IntoIterator<Item = ComponentStatus>) -> Self {
        statuses
            .into_iter()
            .map(ComponentStatus::impact)
            .fold(Self::None, Self::worst)
    }
}

/// The page's overall status, as Statuspage's `status` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PageStatus {
    /// Worst impact among open incidents and current component statuses.
    pub indicator: Impact,
    /// The sentence shown in the page's banner.
    pub description: &'static str,
}

impl PageStatus {
    /// The page status: the worst of the open incidents' impacts and the components' statuses.
    pub fn compute(
        components: impl IntoIterator<Item = ComponentStatus>,
        open_incident_impacts: impl IntoIterator<Item = Impact>,
    ) -> Self {
        let indicator = open_incident_impacts
            .into_iter()
            .fold(Impact::from_component_statuses(components), Impact::worst);
        Self::from_indicator(indicator)
    }

    /// The status object for a given indicator.
    #[must_use]
    pub const fn from_indicator(indicator: Impact) -> Self {
        let description = match indicator {
            Impact::None => "All Systems Operational",
            Impact::Minor => "Minor Service Outage",
            Impact::Major => "Partial System Outage",
            Impact::Critical => "Major Service Outage",
            Impact::Maintenance => "Service Under Maintenance",
        };
        Self {
            indicator,
            description,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values an enumeration's OpenAPI schema documents.
    fn documented<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).expect("a schema serializes");
        schema["enum"]
            .as_array()
            .expect("an enumeration")
            .iter()
            .map(|v| v.as_str().expect("a string").to_owned())
            .collect()
    }

    fn wire<T: Copy + fmt::Display>(all: &[T]) -> Vec<String> {
        all.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn enumerations_are_documented_by_their_wire_forms() {
        assert_eq!(documented::<Role>(), ["owner", "admin", "editor", "viewer"]);
        assert_eq!(documented::<Visibility>(), wire(Visibility::ALL));
        assert_eq!(documented::<Channel>(), wire(Channel::ALL));
        assert_eq!(documented::<Role>(), wire(Role::ALL));
        assert_eq!(documented::<ComponentStatus>(), wire(ComponentStatus::ALL));
        assert_eq!(documented::<IncidentStatus>(), wire(IncidentStatus::ALL));
        assert_eq!(documented::<Impact>(), wire(Impact::ALL));
        assert_eq!(documented::<DomainStatus>(), wire(DomainStatus::ALL));
        assert_eq!(
            documented::<DomainCheckError>(),
            wire(DomainCheckError::ALL)
        );
    }

    #[test]
    fn chat_urls_are_shown_by_origin_and_last_four_characters_only() {
        let slack = "https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXXabcd";
        assert_eq!(
            Channel::Slack.shown_target(slack),
            "https://hooks.slack.com/…abcd"
        );
        assert_eq!(
            Channel::Teams.shown_target("https://acme.webhook.office.com/webhookb2/é-cdef"),
            "https://acme.webhook.office.com/…cdef"
        );
        assert_eq!(
            Channel::Teams.shown_target("https://a.example/x"),
            "https://a.example/…"
        );
        for (channel, target) in [
            (Channel::Webhook, "https://example.com/hooks/status?k=1"),
            (Channel::Email, "ann@example.com"),
            (Channel::Sms, "+14155550123"),
        ] {
            assert_eq!(channel.shown_target(target), target);
        }
    }

    #[test]
    fn every_wire_form_round_trips() {
        for s in ComponentStatus::ALL {
            assert_eq!(s.as_str().parse::<ComponentStatus>(), Ok(*s));
            assert_eq!(
                serde_json::to_string(s).ok(),
                Some(format!("\"{}\"", s.as_str()))
            );
        }
        for s in IncidentStatus::ALL {
            assert_eq!(s.as_str().parse::<IncidentStatus>(), Ok(*s));
        }
        for s in Impact::ALL {
            assert_eq!(s.as_str().parse::<Impact>(), Ok(*s));
        }
    }

    #[test]
    fn unknown_status_names_the_allowed_values() {
        let err = "broken".parse::<ComponentStatus>().unwrap_err();
        assert_eq!(err.value, "broken");
        assert_eq!(
            err.allowed,
            "operational, degraded_performance, partial_outage, major_outage, under_maintenance"
        );
    }

    #[test]
    fn the_page_indicator_is_the_worst_of_components_and_incidents() {
        use ComponentStatus::*;
        assert_eq!(
            PageStatus::compute([Operational, Operational], []).indicator,
            Impact::None
        );
        assert_eq!(
            PageStatus::compute([Operational, PartialOutage, DegradedPerformance], []).indicator,
            Impact::Major
        );
        assert_eq!(
            PageStatus::compute([Operational], [Impact::Minor]).indicator,
            Impact::Minor
        );
        assert_eq!(
            PageStatus::compute([MajorOutage], [Impact::Minor]).description,
            "Major Service Outage"
        );
    }

    #[test]
    fn maintenance_shows_only_when_nothing_is_broken() {
        use ComponentStatus::*;
        assert_eq!(
            PageStatus::compute([UnderMaintenance, Operational], []).indicator,
            Impact::Maintenance
        );
        assert_eq!(
            PageStatus::compute([UnderMaintenance, DegradedPerformance], []).indicator,
            Impact::Minor
        );
    }

    #[test]
    fn the_incident_lifecycle_allows_skipping_and_reopening_but_ends_at_postmortem() {
        use IncidentStatus::*;
        for (from, to) in [
            (Investigating, Identified),
            (Investigating, Monitoring),
            (Investigating, Resolved),
            (Monitoring, Identified),
            (Identified, Identified),
            (Resolved, Postmortem),
            (Resolved, Investigating),
        ] {
            assert!(from.can_move_to(to), "{from} → {to}");
        }
        for (from, to) in [
            (Investigating, Postmortem),
            (Postmortem, Resolved),
            (Postmortem, Investigating),
            (Investigating, Scheduled),
            (Resolved, Completed),
        ] {
            assert!(!from.can_move_to(to), "{from} → {to}");
        }
    }

    #[test]
    fn the_maintenance_lifecycle_runs_forward_and_ends_at_completed() {
        use IncidentStatus::*;
        for (from, to) in [
            (Scheduled, InProgress),
            (Scheduled, Completed),
            (InProgress, Verifying),
            (Verifying, InProgress),
            (Verifying, Completed),
        ] {
            assert!(from.can_move_to(to), "{from} → {to}");
        }
        for (from, to) in [
            (Completed, InProgress),
            (InProgress, Scheduled),
            (Scheduled, Investigating),
            (Scheduled, Verifying),
        ] {
            assert!(!from.can_move_to(to), "{from} → {to}");
        }
    }

    #[test]
    fn no_status_ever_crosses_between_incidents_and_maintenance() {
        for from in IncidentStatus::ALL {
            for to in IncidentStatus::ALL {
                if from.can_move_to(*to) {
                    assert_eq!(from.is_maintenance(), to.is_maintenance(), "{from} → {to}");
                }
            }
        }
    }

    #[test]
    fn statuses_split_into_incident_and_maintenance_families() {
        let maintenance: Vec<_> = IncidentStatus::ALL
            .iter()
            .filter(|s| s.is_maintenance())
            .collect();
        assert_eq!(maintenance.len(), 4);
        assert!(IncidentStatus::Monitoring.is_unresolved());
        assert!(!IncidentStatus::Resolved.is_unresolved());
        assert!(!IncidentStatus::InProgress.is_unresolved());
    }
}
