//! Snapshots of what visitors see, from a fixed page.

use heliograph_domain::{
    AffectedComponent, Component, ComponentGroup, Incident, IncidentUpdate, Page, PageData,
};
use heliograph_domain::{
    ComponentId, ComponentStatus, Impact, IncidentId, IncidentStatus, IncidentUpdateId, PageId,
    TenantId, Visibility,
};
use std::collections::HashMap;

use time::macros::datetime;

use crate::{Audience, PublicPage};
use uuid::Uuid;

pub(crate) fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// A component of page 1, created on Nov 1, 2026.
pub(crate) fn component(
    n: u128,
    name: &str,
    group: Option<u128>,
    status: ComponentStatus,
    visibility: Visibility,
) -> Component {
    Component {
        id: ComponentId::from(id(n)),
        page_id: PageId::from(id(1)),
        group_id: group.map(|g| id(g).into()),
        name: name.to_owned(),
        description: None,
        status,
        position: i32::try_from(n).unwrap(),
        showcase: true,
        only_show_if_degraded: false,
        start_date: None,
        visibility,
        created_at: datetime!(2026-11-01 09:00 UTC),
        updated_at: datetime!(2026-11-20 12:00 UTC),
    }
}

/// A page with a public ungrouped component, a group of two, a private
/// component in an outage, and an open incident.
fn sample_data() -> PageData {
    let at = datetime!(2026-11-20 12:00 UTC);
    let incident_id = IncidentId::from(id(50));
    PageData {
        page: Page {
            id: PageId::from(id(1)),
            tenant_id: TenantId::from(id(2)),
            slug: heliograph_domain::Slug::parse("slug", "acme").unwrap(),
            name: "Acme <Cloud>".into(),
            time_zone: heliograph_domain::TimeZoneName::utc(),
            headline: None,
            support_url: None,
            logo_url: None,
            brand_color: "#1f6feb".into(),
            background_color: "#ffffff".into(),
            text_color: "#1f2328".into(),
            allow_email_subscribers: true,
            allow_sms_subscribers: true,
            allow_webhook_subscribers: true,
            sms_calling_code: None,
            sms_allowed_calling_codes: Vec::new(),
            uptime_partial_weight: 0.3,
            created_at: datetime!(2026-11-01 09:00 UTC),
            updated_at: datetime!(2026-11-01 09:00 UTC),
        },
        groups: vec![ComponentGroup {
            id: id(10).into(),
            page_id: PageId::from(id(1)),
            name: "Platform".into(),
            description: Some("What customers use".into()),
            position: 1,
            created_at: datetime!(2026-11-01 09:00 UTC),
            updated_at: datetime!(2026-11-01 09:00 UTC),
        }],
        components: vec![
            component(
                11,
                "Website",
                None,
                ComponentStatus::Operational,
                Visibility::Public,
            ),
            component(
                12,
                "API",
                Some(10),
                ComponentStatus::PartialOutage,
                Visibility::Public,
            ),
            component(
                13,
                "Dashboard",
                Some(10),
                ComponentStatus::Operational,
                Visibility::Public,
            ),
            component(
                14,
                "Billing job",
                None,
                ComponentStatus::MajorOutage,
                Visibility::Private,
            ),
        ],
        active_incidents: vec![(
            Incident {
                id: incident_id,
                page_id: PageId::from(id(1)),
                kind: heliograph_domain::IncidentKind::Incident,
                name: "Elevated API errors".into(),
                status: IncidentStatus::Identified,
                impact: Impact::Major,
                impact_override: None,
                started_at: at,
                monitoring_at: None,
                resolved_at: None,
                scheduled_for: None,
                scheduled_until: None,
                scheduled_remind_prior: false,
                scheduled_auto_in_progress: false,
                scheduled_auto_completed: false,
                reminded_at: None,
                backfilled: false,
                metadata: serde_json::json!({}),
                postmortem_body: None,
                postmortem_body_last_updated_at: None,
                postmortem_published_at: None,
                created_at: at,
                updated_at: at,
                component_ids: vec![id(12).into(), id(14).into()],
            },
            vec![IncidentUpdate {
                id: IncidentUpdateId::from(id(51)),
                incident_id,
                status: IncidentStatus::Identified,
                body: "A bad deploy; rolling back.".into(),
                display_at: at,
                deliver_notifications: true,
                created_at: at,
                updated_at: at,
                affected_components: vec![
                    AffectedComponent {
                        code: id(12),
                        name: "API".into(),
                        old_status: ComponentStatus::Operational,
                        new_status: ComponentStatus::PartialOutage,
                        private: false,
                    },
                    AffectedComponent {
                        code: id(14),
                        name: "Billing job".into(),
                        old_status: ComponentStatus::Operational,
                        new_status: ComponentStatus::MajorOutage,
                        private: true,
                    },
                ],
            }],
        )],
        history: vec![],
    }
}

/// [`sample_data`] as the page's snapshot reads it, its history holding the open incident.
pub(crate) fn sample() -> PublicPage {
    let mut data = sample_data();
    data.history = data.active_incidents.clone();
    PublicPage {
        data,
        url: "https://acme.status.test".into(),
        uptime: HashMap::new(),
        as_of: datetime!(2026-11-20 12:30 UTC),
    }
}

#[test]
fn summary_json_matches_its_snapshot() {
    insta::assert_json_snapshot!(crate::summary(&sample()));
}

#[test]
fn the_public_page_matches_its_snapshot() {
    insta::assert_snapshot!(
        crate::render_page(&sample(), Audience::Public, "/status/acme").unwrap()
    );
}

#[test]
fn private_components_leave_no_trace_in_public_output() {
    let json = serde_json::to_string(&crate::summary(&sample())).unwrap();
    let html = crate::render_page(&sample(), Audience::Public, "").unwrap();
    for output in [&json, &html] {
        assert!(!output.contains("Billing job"));
        assert!(!output.contains(&id(14).to_string()));
    }
    // The private outage does not darken the public indicator beyond the incident's own impact.
    assert_eq!(crate::page_status(&sample().data).indicator, Impact::Major);
}

#[test]
fn a_private_outage_does_not_raise_the_public_impact() {
    let mut page = sample();
    // Derived from every component, the private major outage included.
    page.data.active_incidents[0].0.impact = Impact::Critical;
    assert_eq!(crate::page_status(&page.data).indicator, Impact::Major);
    let summary = serde_json::to_value(crate::summary(&page)).unwrap();
    assert_eq!(summary["incidents"][0]["impact"], "major");
    // The team's own override is its public word, and stands.
    page.data.active_incidents[0].0.impact_override = Some(Impact::Critical);
    assert_eq!(crate::page_status(&page.data).indicator, Impact::Critical);
}
