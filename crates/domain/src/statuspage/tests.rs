//! Documents built from the typed shapes serialize to Statuspage's exact
//! bytes: its field names, its order, its nulls and absences.

use time::macros::{date, datetime};

use super::*;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn page() -> Page {
    Page {
        id: id(1),
        name: "Acme".into(),
        url: "https://status.acme.test".into(),
        time_zone: "Etc/UTC".into(),
        updated_at: datetime!(2026-06-24 08:07:14.473 +02:00),
    }
}

/// A component as the public documents show it.
fn api() -> Component {
    Component {
        id: id(10),
        name: "API".into(),
        status: ComponentStatus::PartialOutage,
        created_at: datetime!(2026-01-05 09:00 UTC),
        updated_at: datetime!(2026-06-24 06:00:00.5 UTC),
        position: 1,
        description: None,
        showcase: Some(true),
        start_date: Some(Some(date!(2026 - 01 - 05))),
        group_id: Some(id(9)),
        page_id: id(1),
        group: false,
        only_show_if_degraded: Some(false),
        components: None,
    }
}

fn incident() -> Incident {
    Incident {
        id: id(100),
        name: "Elevated errors".into(),
        status: IncidentStatus::Investigating,
        impact: Impact::Minor,
        created_at: datetime!(2026-06-24 06:00 UTC),
        updated_at: datetime!(2026-06-24 06:00 UTC),
        started_at: datetime!(2026-06-24 05:55 UTC),
        monitoring_at: None,
        resolved_at: None,
        shortlink: "https://status.acme.test/incidents/1".into(),
        page_id: id(1),
        incident_updates: vec![IncidentUpdate {
            id: id(101),
            incident_id: id(100),
            status: IncidentStatus::Investigating,
            body: "Looking".into(),
            created_at: datetime!(2026-06-24 06:00 UTC),
            updated_at: datetime!(2026-06-24 06:00 UTC),
            display_at: datetime!(2026-06-24 06:00 UTC),
            affected_components: vec![AffectedComponent {
                code: id(10),
                name: "API".into(),
                old_status: Some(ComponentStatus::Operational),
                new_status: ComponentStatus::PartialOutage,
            }],
            deliver_notifications: Some(true),
        }],
        components: vec![api()],
        scheduled_for: None,
        scheduled_until: None,
    }
}

const PAGE: &str = r#"{"id":"00000000-0000-0000-0000-000000000001","name":"Acme","url":"https://status.acme.test","time_zone":"Etc/UTC","updated_at":"2026-06-24T06:07:14.473Z"}"#;

const API: &str = r#"{"id":"00000000-0000-0000-0000-00000000000a","name":"API","status":"partial_outage","created_at":"2026-01-05T09:00:00.000Z","updated_at":"2026-06-24T06:00:00.500Z","position":1,"description":null,"showcase":true,"start_date":"2026-01-05","group_id":"00000000-0000-0000-0000-000000000009","page_id":"00000000-0000-0000-0000-000000000001","group":false,"only_show_if_degraded":false}"#;

#[test]
fn timestamps_are_utc_with_milliseconds() {
    assert_eq!(
        timestamp(datetime!(2026-11-22 08:24:21.1849 +02:00)),
        "2026-11-22T06:24:21.184Z"
    );
    assert_eq!(
        timestamp(datetime!(2026-11-22 06:00 UTC)),
        "2026-11-22T06:00:00.000Z"
    );
}

#[test]
fn a_status_document_is_statuspages_bytes() {
    let doc = StatusDoc {
        page: page(),
        status: PageStatus::from_indicator(Impact::None),
    };
    assert_eq!(
        serde_json::to_string(&doc).unwrap(),
        format!(
            r#"{{"page":{PAGE},"status":{{"indicator":"none","description":"All Systems Operational"}}}}"#
        )
    );
}

#[test]
fn a_components_document_lists_components_and_group_rows() {
    let group = Component {
        id: id(9),
        name: "Platform".into(),
        status: ComponentStatus::PartialOutage,
        created_at: datetime!(2026-01-01 00:00 UTC),
        updated_at: datetime!(2026-01-01 00:00 UTC),
        position: 1,
        description: Some("What customers use".into()),
        showcase: Some(false),
        start_date: Some(None),
        group_id: None,
        page_id: id(1),
        group: true,
        only_show_if_degraded: Some(false),
        components: Some(vec![id(10)]),
    };
    let doc = ComponentsDoc {
        page: page(),
        components: vec![group, api()],
    };
    let group_row = r#"{"id":"00000000-0000-0000-0000-000000000009","name":"Platform","status":"partial_outage","created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-01-01T00:00:00.000Z","position":1,"description":"What customers use","showcase":false,"start_date":null,"group_id":null,"page_id":"00000000-0000-0000-0000-000000000001","group":true,"only_show_if_degraded":false,"components":["00000000-0000-0000-0000-00000000000a"]}"#;
    assert_eq!(
        serde_json::to_string(&doc).unwrap(),
        format!(r#"{{"page":{PAGE},"components":[{group_row},{API}]}}"#)
    );
}

#[test]
fn an_incidents_document_carries_updates_and_full_components() {
    let doc = IncidentsDoc {
        page: page(),
        incidents: vec![incident()],
    };
    let update = r#"{"id":"00000000-0000-0000-0000-000000000065","incident_id":"00000000-0000-0000-0000-000000000064","status":"investigating","body":"Looking","created_at":"2026-06-24T06:00:00.000Z","updated_at":"2026-06-24T06:00:00.000Z","display_at":"2026-06-24T06:00:00.000Z","affected_components":[{"code":"00000000-0000-0000-0000-00000000000a","name":"API","old_status":"operational","new_status":"partial_outage"}],"deliver_notifications":true}"#;
    let incident = format!(
        r#"{{"id":"00000000-0000-0000-0000-000000000064","name":"Elevated errors","status":"investigating","impact":"minor","created_at":"2026-06-24T06:00:00.000Z","updated_at":"2026-06-24T06:00:00.000Z","started_at":"2026-06-24T05:55:00.000Z","monitoring_at":null,"resolved_at":null,"shortlink":"https://status.acme.test/incidents/1","page_id":"00000000-0000-0000-0000-000000000001","incident_updates":[{update}],"components":[{API}]}}"#
    );
    assert_eq!(
        serde_json::to_string(&doc).unwrap(),
        format!(r#"{{"page":{PAGE},"incidents":[{incident}]}}"#)
    );
}

#[test]
fn a_maintenance_carries_its_window_and_a_summary_every_list() {
    let mut maintenance = incident();
    maintenance.status = IncidentStatus::Scheduled;
    maintenance.impact = Impact::Maintenance;
    maintenance.incident_updates.clear();
    maintenance.components.clear();
    maintenance.scheduled_for = Some(datetime!(2026-06-28 06:00 UTC));
    maintenance.scheduled_until = Some(datetime!(2026-06-28 08:00 UTC));
    let json = serde_json::to_value(&maintenance).unwrap();
    assert_eq!(json["scheduled_for"], "2026-06-28T06:00:00.000Z");
    assert_eq!(json["scheduled_until"], "2026-06-28T08:00:00.000Z");
    let summary = Summary {
        page: page(),
        status: PageStatus::from_indicator(Impact::Minor),
        components: Vec::new(),
        incidents: Vec::new(),
        scheduled_maintenances: vec![maintenance],
    };
    let text = serde_json::to_string(&summary).unwrap();
    assert!(
        text.starts_with(&format!(
            r#"{{"page":{PAGE},"status":{{"indicator":"minor","description":"Minor Service Outage"}},"components":[],"incidents":[],"scheduled_maintenances":[{{"id""#
        )),
        "{text}"
    );
    assert!(
        text.ends_with(r#""components":[],"scheduled_for":"2026-06-28T06:00:00.000Z","scheduled_until":"2026-06-28T08:00:00.000Z"}]}"#),
        "{text}"
    );
}

#[test]
fn a_webhook_leaves_the_page_display_settings_out() {
    let mut component = api();
    component.showcase = None;
    component.start_date = None;
    component.only_show_if_degraded = None;
    let mut incident = incident();
    incident.components = vec![component.clone()];
    incident.incident_updates[0].deliver_notifications = None;
    incident.incident_updates[0].affected_components[0].old_status = None;
    let body = WebhookBody {
        meta: WebhookMeta {
            unsubscribe: "https://status.acme.test/u".into(),
            documentation: "https://docs.test/webhooks".into(),
            generated_at: datetime!(2026-06-24 06:00:01 UTC),
            event: "incident.created".into(),
        },
        page: WebhookPage {
            id: id(1),
            name: "Acme".into(),
            url: "https://status.acme.test".into(),
            status_indicator: Impact::Minor,
            status_description: "Minor Service Outage".into(),
        },
        event: WebhookEvent::Incident { incident },
    };
    let json = serde_json::to_value(&body).unwrap();
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&json), ["incident", "meta", "page"]);
    assert_eq!(json["meta"]["generated_at"], "2026-06-24T06:00:01.000Z");
    assert_eq!(
        keys(&json["incident"]["components"][0]),
        [
            "created_at",
            "description",
            "group",
            "group_id",
            "id",
            "name",
            "page_id",
            "position",
            "status",
            "updated_at"
        ]
    );
    let update = &json["incident"]["incident_updates"][0];
    assert!(update.get("deliver_notifications").is_none());
    assert_eq!(
        update["affected_components"][0]["old_status"],
        serde_json::Value::Null
    );

    let change = WebhookBody {
        event: WebhookEvent::Component {
            component_update: ComponentUpdate {
                id: id(300),
                component_id: id(10),
                created_at: datetime!(2026-06-24 06:00 UTC),
                old_status: ComponentStatus::Operational,
                new_status: ComponentStatus::PartialOutage,
            },
            component,
        },
        ..body.clone()
    };
    let json = serde_json::to_value(&change).unwrap();
    assert_eq!(
        keys(&json),
        ["component", "component_update", "meta", "page"]
    );
    assert_eq!(json["component_update"]["old_status"], "operational");

    let ping = WebhookBody {
        event: WebhookEvent::Ping {
            ping: Ping {
                message: "hello".into(),
            },
        },
        ..body
    };
    let json = serde_json::to_value(&ping).unwrap();
    assert_eq!(keys(&json), ["meta", "page", "ping"]);
    assert_eq!(json["ping"]["message"], "hello");
}
