//! The emails a subscriber receives look like the page they follow: the
//! status and each affected component's state in the page's status colours,
//! the page's logo and brand colour, and a link to the incident's own page.
//! One incident email, as maildev received it, is also opened in Chromium
//! (accessibility checked, screenshot kept for review).

use heliograph_domain::{
    ComponentStatus, Impact, IncidentStatus, impact_tone, incident_tone, tone_hex,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, emails_to, token_in_email, unique_email};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_email_shows_states_in_colour_and_links_to_the_incident() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, page) = app
        .call(
            Method::PATCH,
            &format!("/v1/pages/{}", t.page_id),
            Some(&t.token),
            Some(
                &json!({"page": {"name": "Acme Status", "css_link_color": "#6f42c1",
                                  "logo_url": "https://acme.example/logo.svg"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let api = app.component(&t, "Payments API").await;
    let web = app.component(&t, "Website").await;
    let subscriber = unique_email("looks");
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/subscribers", t.page_id),
            Some(&t.token),
            &json!({"subscriber": {"email": subscriber, "skip_confirmation_notification": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, incident) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {
                "name": "Payments are failing",
                "status": "identified",
                "body": "Card payments fail for some customers.\nWe are rolling back.",
                "components": {api.clone(): "major_outage", web.clone(): "degraded_performance"},
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    let id = incident["id"].as_str().unwrap();
    let impact: Impact = serde_json::from_value(incident["impact"].clone()).unwrap();
    assert_ne!(impact, Impact::None);

    app.drain().await;
    let mails = emails_to(&subscriber, 1).await;
    assert_eq!(mails.len(), 1, "one email: {mails:?}");
    let html = mails[0]["html"].as_str().unwrap_or_default();
    let text = mails[0]["text"].as_str().unwrap_or_default();

    let incident_url = format!("http://{}.heliograph.test/incidents/{id}", t.slug);
    assert!(
        html.contains(&format!("href=\"{incident_url}\"")),
        "the incident's own page is linked: {html}"
    );
    assert!(html.contains("View this incident"));
    assert!(text.contains(&format!("View this incident: {incident_url}")));
    assert!(html.contains("<img src=\"https://acme.example/logo.svg\" alt=\"Acme Status\""));
    assert!(
        html.contains("border-top: 4px solid #6f42c1"),
        "brand colour"
    );
    let pill = |status: ComponentStatus| {
        format!("background: {};", tone_hex(impact_tone(status.impact())))
    };
    for (name, status) in [
        ("Payments API", ComponentStatus::MajorOutage),
        ("Website", ComponentStatus::DegradedPerformance),
    ] {
        let row = html
            .split("<tr>")
            .find(|row| row.contains(name))
            .unwrap_or_else(|| panic!("a row for {name}: {html}"));
        assert!(row.contains(&pill(status)), "{name} in its colour: {row}");
        assert!(row.contains(status.label()), "{name} in words: {row}");
        assert!(text.contains(&format!("  - {name}: {}", status.label())));
    }
    assert!(html.contains(&format!(
        "background: {};",
        tone_hex(incident_tone(IncidentStatus::Identified, impact))
    )));
    assert!(text.contains("Status: Identified"));
    assert!(text.contains("Unsubscribe: "));

    // Opened as a mail client would, from a file; the logo (a remote
    // https image, which the test browser cannot fetch) is replaced by a
    // local one so the screenshot shows the layout with a logo.
    let dir = std::env::temp_dir().join(format!("heliograph-email-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("logo.svg"),
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="128" height="32" viewBox="0 0 128 32"><rect width="32" height="32" rx="8" fill="#6f42c1"/><text x="40" y="23" font-family="Helvetica, Arial, sans-serif" font-size="18" font-weight="700" fill="#1f2328">Acme</text></svg>"##,
    )
    .unwrap();
    let file = dir.join("email-incident.html");
    std::fs::write(
        &file,
        html.replace("https://acme.example/logo.svg", "logo.svg"),
    )
    .unwrap();
    let browser = heliograph_testkit::Browser::start().await;
    browser.goto(&format!("file://{}", file.display())).await;
    browser.wait_for_text("Payments are failing").await;
    browser.check_accessibility("email-incident").await;
    let shot = browser.screenshot("email-incident", 800).await;
    browser.screenshot("email-incident", 375).await;
    assert!(shot.exists());
    browser.close().await;
    std::fs::remove_dir_all(&dir).ok();
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_emails_name_the_team_and_the_inviter() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    app.drain().await;
    token_in_email(&owner.email, "Confirm your email address", 1).await;
    let mails = emails_to(&owner.email, 1).await;
    let verification = mails
        .iter()
        .find(|m| m["subject"] == "Confirm your email address")
        .unwrap();
    assert!(
        verification["text"]
            .as_str()
            .unwrap()
            .starts_with("Confirm your email address for Acme Cloud"),
        "{verification}"
    );

    let newcomer = unique_email("invited");
    let (status, body) = app
        .post(
            "/v1/invitations",
            Some(&owner.token),
            &json!({"invitation": {"email": newcomer, "role": "viewer"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    token_in_email(&newcomer, "Join Acme Cloud on Heliograph", 1).await;
    let invitation = &emails_to(&newcomer, 1).await[0];
    let expected = format!(
        "{} invited you to join Acme Cloud on Heliograph as viewer.",
        owner.email
    );
    assert!(
        invitation["text"].as_str().unwrap().contains(&expected),
        "{invitation}"
    );
    assert!(
        invitation["html"].as_str().unwrap().contains(&expected),
        "{invitation}"
    );
    app.finish().await;
}
