use heliograph_domain::{ComponentStatus, EventKind, Impact, IncidentStatus};
use serde_json::{Value, json};
use time::macros::datetime;
use uuid::Uuid;

use super::*;

const UNSUBSCRIBE: &str = "https://status.acme.test/unsubscribe?token=t0k";
const SHORT: &str = "https://status.acme.test/i/3f2a";

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn page() -> PageInfo {
    PageInfo {
        id: id(1),
        name: "Acme".into(),
        url: "https://status.acme.test".into(),
        status_indicator: Impact::Major,
        status_description: "Partial System Outage".into(),
        logo_url: None,
        brand_color: "#0969da".into(),
    }
}

fn api(status: ComponentStatus) -> ComponentInfo {
    ComponentInfo {
        id: id(10),
        name: "Payments API".into(),
        status,
        description: Some("Card and wallet payments".into()),
        position: 1,
        group_id: None,
        created_at: datetime!(2026-01-05 09:00:00 UTC),
        updated_at: datetime!(2026-11-22 06:24:21.184 UTC),
    }
}

fn incident() -> IncidentInfo {
    IncidentInfo {
        id: id(100),
        name: "Payments failing".into(),
        status: IncidentStatus::Identified,
        impact: Impact::Major,
        shortlink: SHORT.into(),
        created_at: datetime!(2026-11-22 06:10:00.5 UTC),
        updated_at: datetime!(2026-11-22 06:24:21.184 UTC),
        started_at: datetime!(2026-11-22 06:05:00 UTC),
        monitoring_at: None,
        resolved_at: None,
        scheduled_for: None,
        scheduled_until: None,
        updates: vec![
            UpdateInfo {
                id: id(102),
                status: IncidentStatus::Identified,
                body: "Card payments time out.\nA fix is being deployed.".into(),
                created_at: datetime!(2026-11-22 06:24:21.184 UTC),
                updated_at: datetime!(2026-11-22 06:24:21.184 UTC),
                display_at: datetime!(2026-11-22 06:24:21.184 UTC),
                affected_components: vec![AffectedComponent {
                    id: id(10),
                    name: "Payments API".into(),
                    old_status: Some(ComponentStatus::DegradedPerformance),
                    new_status: ComponentStatus::PartialOutage,
                }],
            },
            UpdateInfo {
                id: id(101),
                status: IncidentStatus::Investigating,
                body: "We are looking into failed payments.".into(),
                created_at: datetime!(2026-11-22 06:10:00.5 UTC),
                updated_at: datetime!(2026-11-22 06:10:00.5 UTC),
                display_at: datetime!(2026-11-22 06:10:00.5 UTC),
                affected_components: vec![AffectedComponent {
                    id: id(10),
                    name: "Payments API".into(),
                    old_status: Some(ComponentStatus::Operational),
                    new_status: ComponentStatus::DegradedPerformance,
                }],
            },
        ],
        components: vec![api(ComponentStatus::PartialOutage)],
    }
}

fn incident_notice() -> Notice {
    Notice::Incident {
        kind: EventKind::IncidentUpdated,
        incident: incident(),
    }
}

fn maintenance_notice() -> Notice {
    Notice::Incident {
        kind: EventKind::MaintenanceScheduled,
        incident: IncidentInfo {
            id: id(200),
            name: "Database upgrade".into(),
            status: IncidentStatus::Scheduled,
            impact: Impact::Maintenance,
            shortlink: "https://status.acme.test/i/9c1d".into(),
            created_at: datetime!(2026-11-20 10:00:00 UTC),
            updated_at: datetime!(2026-11-20 10:00:00 UTC),
            started_at: datetime!(2026-11-20 10:00:00 UTC),
            monitoring_at: None,
            resolved_at: None,
            scheduled_for: Some(datetime!(2026-11-28 06:00:00 UTC)),
            scheduled_until: Some(datetime!(2026-11-28 08:00:00 UTC)),
            updates: vec![UpdateInfo {
                id: id(201),
                status: IncidentStatus::Scheduled,
                body: "Payments may be slow for a few minutes.".into(),
                created_at: datetime!(2026-11-20 10:00:00 UTC),
                updated_at: datetime!(2026-11-20 10:00:00 UTC),
                display_at: datetime!(2026-11-20 10:00:00 UTC),
                affected_components: vec![],
            }],
            components: vec![api(ComponentStatus::Operational)],
        },
    }
}

fn component_notice() -> Notice {
    Notice::Component(ComponentChange {
        component: api(ComponentStatus::MajorOutage),
        old_status: ComponentStatus::Operational,
        new_status: ComponentStatus::MajorOutage,
        // Given in another offset: the payloads speak UTC.
        at: datetime!(2026-11-22 08:24:21.184 +02:00),
        change_id: id(300),
    })
}

fn meta() -> WebhookMeta<'static> {
    WebhookMeta {
        unsubscribe_url: UNSUBSCRIBE,
        documentation_url: "https://heliograph.test/docs/webhooks",
        generated_at: datetime!(2026-11-22 06:24:22 UTC),
    }
}

fn section_texts(slack: &Value) -> Vec<String> {
    slack["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "section")
        .map(|b| b["text"]["text"].as_str().unwrap().to_owned())
        .collect()
}

// ------------------------------------------------------------ webhook

#[test]
fn an_incident_webhook_is_statuspages_envelope_with_the_newest_update_first() {
    let body = webhook_body(&page(), &incident_notice(), &meta());
    assert_eq!(
        body["meta"],
        json!({
            "unsubscribe": UNSUBSCRIBE,
            "documentation": "https://heliograph.test/docs/webhooks",
            "generated_at": "2026-11-22T06:24:22.000Z",
            "event": "incident.updated",
        })
    );
    assert_eq!(body["page"]["id"], id(1).to_string());
    assert_eq!(body["page"]["status_indicator"], "major");
    assert_eq!(body["page"]["status_description"], "Partial System Outage");
    let incident = &body["incident"];
    assert_eq!(incident["status"], "identified");
    assert_eq!(incident["impact"], "major");
    assert_eq!(incident["shortlink"], SHORT);
    assert_eq!(incident["updated_at"], "2026-11-22T06:24:21.184Z");
    assert_eq!(incident["resolved_at"], Value::Null);
    assert!(
        incident.get("scheduled_for").is_none(),
        "no window on an incident"
    );
    let updates = incident["incident_updates"].as_array().unwrap();
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0]["status"], "identified");
    assert_eq!(updates[0]["incident_id"], id(100).to_string());
    assert_eq!(
        updates[0]["affected_components"],
        json!([{
            "code": id(10).to_string(),
            "name": "Payments API",
            "old_status": "degraded_performance",
            "new_status": "partial_outage",
        }])
    );
    assert_eq!(incident["components"][0]["status"], "partial_outage");
    assert_eq!(incident["components"][0]["page_id"], id(1).to_string());
    assert!(body.get("component_update").is_none());
    insta::assert_json_snapshot!("webhook_incident", body);
}

#[test]
fn a_maintenance_webhook_carries_its_window() {
    let body = webhook_body(&page(), &maintenance_notice(), &meta());
    assert_eq!(body["meta"]["event"], "maintenance.scheduled");
    assert_eq!(
        body["incident"]["scheduled_for"],
        "2026-11-28T06:00:00.000Z"
    );
    assert_eq!(
        body["incident"]["scheduled_until"],
        "2026-11-28T08:00:00.000Z"
    );
    assert_eq!(body["incident"]["impact"], "maintenance");
}

#[test]
fn a_component_webhook_carries_the_update_and_the_component_in_utc() {
    let body = webhook_body(&page(), &component_notice(), &meta());
    assert_eq!(body["meta"]["event"], "component.updated");
    assert_eq!(
        body["component_update"],
        json!({
            "id": id(300).to_string(),
            "component_id": id(10).to_string(),
            "created_at": "2026-11-22T06:24:21.184Z",
            "old_status": "operational",
            "new_status": "major_outage",
        })
    );
    assert_eq!(body["component"]["name"], "Payments API");
    assert_eq!(body["component"]["status"], "major_outage");
    assert!(body.get("incident").is_none());
    insta::assert_json_snapshot!("webhook_component", body);
}

#[test]
fn a_ping_webhook_says_it_is_a_test() {
    let body = webhook_body(&page(), &Notice::Ping, &meta());
    assert_eq!(body["meta"]["event"], "ping");
    assert_eq!(body["meta"]["unsubscribe"], UNSUBSCRIBE);
    assert!(
        body["ping"]["message"]
            .as_str()
            .unwrap()
            .contains("test notification from Acme")
    );
    assert!(body.get("incident").is_none() && body.get("component").is_none());
    insta::assert_json_snapshot!("webhook_ping", body);
}

// ------------------------------------------------------------ Slack

#[test]
fn a_slack_incident_message_has_a_fallback_header_update_components_and_links() {
    let body = slack_body(&page(), &incident_notice(), UNSUBSCRIBE);
    assert_eq!(body["text"], "[Acme] Identified: Payments failing");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "Payments failing");
    let sections = section_texts(&body);
    assert!(sections[0].starts_with(
        "*Identified* · Incident update · <https://status.acme.test/i/3f2a|View incident>"
    ));
    assert!(sections[0].contains("Card payments time out.\nA fix is being deployed."));
    assert!(
        sections[0].contains("<!date^1795328661^{date_short_pretty} {time}|22 Nov 2026 06:24 UTC>")
    );
    assert_eq!(
        sections[1],
        "*Affected components*\n• Payments API: Degraded Performance → Partial Outage"
    );
    let context = blocks.last().unwrap();
    assert_eq!(context["type"], "context");
    assert_eq!(
        context["elements"][0]["text"],
        format!("<https://status.acme.test|Acme status page> · <{UNSUBSCRIBE}|Unsubscribe>")
    );
    insta::assert_json_snapshot!("slack_incident", body);
}

#[test]
fn slack_control_sequences_in_tenant_text_are_escaped() {
    let Notice::Incident { kind, mut incident } = incident_notice() else {
        unreachable!()
    };
    incident.name = "Errors <!channel>".into();
    incident.updates[0].body = "See <https://evil.test|here> & retry".into();
    let body = slack_body(&page(), &Notice::Incident { kind, incident }, UNSUBSCRIBE);
    assert_eq!(body["text"], "[Acme] Identified: Errors &lt;!channel&gt;");
    let sections = section_texts(&body);
    assert!(sections[0].contains("See &lt;https://evil.test|here&gt; &amp; retry"));
    let blocks = body["blocks"].as_array().unwrap();
    assert!(
        !blocks[1..]
            .iter()
            .any(|b| b.to_string().contains("<!channel>")),
        "no mrkdwn block carries the raw mention"
    );
    // Headers are plain text: shown as written, never interpreted.
    assert_eq!(body["blocks"][0]["text"]["text"], "Errors <!channel>");
}

#[test]
fn a_slack_header_is_cut_to_slacks_limit() {
    let Notice::Incident { kind, mut incident } = incident_notice() else {
        unreachable!()
    };
    incident.name = "é".repeat(400);
    let body = slack_body(&page(), &Notice::Incident { kind, incident }, UNSUBSCRIBE);
    let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(header.chars().count(), 150);
    assert!(header.ends_with("..."));
}

#[test]
fn a_slack_maintenance_message_shows_its_window() {
    let body = slack_body(&page(), &maintenance_notice(), UNSUBSCRIBE);
    assert_eq!(body["text"], "[Acme] Scheduled: Database upgrade");
    let sections = section_texts(&body);
    assert!(sections[0].contains("<https://status.acme.test/i/9c1d|View maintenance>"));
    assert_eq!(
        sections[1],
        "*Scheduled:* <!date^1795845600^{date_short_pretty} {time}|28 Nov 2026 06:00 UTC> until <!date^1795852800^{date_short_pretty} {time}|28 Nov 2026 08:00 UTC>"
    );
    assert_eq!(sections.len(), 2, "no affected components listed");
}

#[test]
fn a_slack_component_message_names_old_and_new_status() {
    let body = slack_body(&page(), &component_notice(), UNSUBSCRIBE);
    assert_eq!(
        body["text"],
        "[Acme] Payments API: Major Outage (was Operational)"
    );
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "Payments API: Major Outage"
    );
    assert!(section_texts(&body)[0].starts_with(
        "*Payments API* is now *Major Outage* (was Operational) since <!date^1795328661^"
    ));
    insta::assert_json_snapshot!("slack_component", body);
}

#[test]
fn a_slack_ping_says_it_is_a_test() {
    let body = slack_body(&page(), &Notice::Ping, UNSUBSCRIBE);
    assert_eq!(body["text"], "[Acme] Test notification");
    assert_eq!(body["blocks"][0]["text"]["text"], "Test notification");
    assert!(section_texts(&body)[0].contains("reach this channel"));
    insta::assert_json_snapshot!("slack_ping", body);
}

// ------------------------------------------------------------ Teams

fn card(body: &Value) -> &Value {
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    card
}

fn texts(card: &Value) -> Vec<&str> {
    card["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect()
}

#[test]
fn a_teams_incident_card_shows_status_update_components_and_buttons() {
    let body = teams_body(&page(), &incident_notice(), UNSUBSCRIBE);
    let card = card(&body);
    let texts = texts(card);
    assert_eq!(texts[0], "Acme");
    assert_eq!(texts[1], "Payments failing");
    assert_eq!(texts[2], "**Identified** · Incident update");
    assert_eq!(
        texts[3],
        "Card payments time out.\nA fix is being deployed."
    );
    assert_eq!(card["body"][2]["color"], "Attention");
    let facts = card["body"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "FactSet")
        .unwrap();
    assert_eq!(
        facts["facts"][0],
        json!({"title": "Payments API", "value": "Degraded Performance → Partial Outage"})
    );
    assert_eq!(
        facts["facts"][1]["value"],
        "{{DATE(2026-11-22T06:24:21Z, SHORT)}} {{TIME(2026-11-22T06:24:21Z)}}"
    );
    assert!(
        texts
            .last()
            .unwrap()
            .ends_with(&format!("[Unsubscribe]({UNSUBSCRIBE})"))
    );
    assert_eq!(
        card["actions"],
        json!([
            {"type": "Action.OpenUrl", "title": "View incident", "url": SHORT},
            {"type": "Action.OpenUrl", "title": "View status page", "url": "https://status.acme.test"},
        ])
    );
    insta::assert_json_snapshot!("teams_incident", body);
}

#[test]
fn a_teams_maintenance_card_shows_its_window() {
    let body = teams_body(&page(), &maintenance_notice(), UNSUBSCRIBE);
    let card = card(&body);
    assert_eq!(card["body"][2]["color"], "Accent");
    let facts = &card["body"][4]["facts"];
    assert_eq!(facts[0]["title"], "Starts");
    assert_eq!(
        facts[0]["value"],
        "{{DATE(2026-11-28T06:00:00Z, SHORT)}} {{TIME(2026-11-28T06:00:00Z)}}"
    );
    assert_eq!(facts[1]["title"], "Ends");
    assert_eq!(card["actions"][0]["title"], "View maintenance");
}

#[test]
fn a_teams_component_card_names_old_and_new_status() {
    let body = teams_body(&page(), &component_notice(), UNSUBSCRIBE);
    let card = card(&body);
    let texts = texts(card);
    assert_eq!(texts[1], "Payments API: Major Outage");
    assert!(texts[2].starts_with("Payments API is now **Major Outage** (was Operational) since {{DATE(2026-11-22T06:24:21Z, SHORT)}}"));
    assert_eq!(card["body"][2]["color"], "Attention");
    assert_eq!(card["actions"].as_array().unwrap().len(), 1);
    insta::assert_json_snapshot!("teams_component", body);
}

#[test]
fn a_teams_ping_says_it_is_a_test() {
    let body = teams_body(&page(), &Notice::Ping, UNSUBSCRIBE);
    let texts = texts(card(&body));
    assert_eq!(texts[1], "Test notification");
    assert!(texts[2].contains("reach this channel"));
    insta::assert_json_snapshot!("teams_ping", body);
}

// ------------------------------------------------------------ SMS

#[test]
fn sms_texts_match_their_snapshots() {
    let incident = sms_text("Acme", &incident_notice(), SHORT);
    assert_eq!(
        incident,
        "[Acme] Identified: Payments failing. Card payments time out. A fix is being deployed. https://status.acme.test/i/3f2a Reply STOP to unsubscribe."
    );
    let maintenance = sms_text(
        "Acme",
        &maintenance_notice(),
        "https://status.acme.test/i/9c1d",
    );
    assert_eq!(
        maintenance,
        "[Acme] Scheduled: Database upgrade (28 Nov 2026 06:00-08:00 UTC). Payments may be slow for a few minutes. https://status.acme.test/i/9c1d Reply STOP to unsubscribe."
    );
    let component = sms_text("Acme", &component_notice(), "https://status.acme.test");
    let ping = sms_text("Acme", &Notice::Ping, "");
    insta::assert_snapshot!("sms_incident", incident);
    insta::assert_snapshot!("sms_maintenance", maintenance);
    insta::assert_snapshot!("sms_component", component);
    insta::assert_snapshot!("sms_ping", ping);
}

#[test]
fn a_long_sms_is_cut_in_the_middle_on_a_character_boundary() {
    let Notice::Incident { kind, mut incident } = incident_notice() else {
        unreachable!()
    };
    incident.updates[0].body = "Zahlungen schlagen fehl — 💳 ".repeat(40);
    let text = sms_text("Acme", &Notice::Incident { kind, incident }, SHORT);
    assert!(
        text.chars().count() <= SMS_MAX_CHARS,
        "{}",
        text.chars().count()
    );
    assert!(text.starts_with("[Acme] Identified: Payments failing. Zahlungen schlagen fehl"));
    assert!(
        text.ends_with(&format!("... {SHORT} Reply STOP to unsubscribe.")),
        "{text}"
    );
}

#[test]
fn a_long_page_name_is_shortened_in_the_prefix() {
    let text = sms_text(&"Acme ".repeat(30), &Notice::Ping, "");
    assert!(text.starts_with("[Acme Acme Acme Acme Acme Acme Acme Ac...] Test message"));
    assert!(text.chars().count() <= SMS_MAX_CHARS);
}

#[test]
fn an_absurdly_long_link_still_yields_one_bounded_message() {
    let link = format!("https://status.acme.test/{}", "x".repeat(400));
    let text = sms_text("Acme", &incident_notice(), &link);
    assert_eq!(text.chars().count(), SMS_MAX_CHARS);
    assert!(text.ends_with("..."));
}

#[test]
fn the_sms_confirmation_carries_the_code() {
    let text = sms_confirmation_text("Acme", "482913");
    assert_eq!(
        text,
        "[Acme] Your code to confirm SMS status updates is 482913. If you did not ask for it, ignore this message."
    );
    let long = sms_confirmation_text(&"Ä".repeat(500), "482913");
    assert!(long.contains("is 482913."));
    assert!(long.chars().count() <= SMS_MAX_CHARS);
}

#[test]
fn truncation_counts_characters_not_bytes() {
    assert_eq!(truncate("héllo", 5), "héllo");
    assert_eq!(truncate("héllo wörld", 8), "héllo...");
    assert_eq!(truncate("ab", 1), "...");
}
