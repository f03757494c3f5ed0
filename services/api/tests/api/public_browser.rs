//! The public page as its readers meet it, in a real browser: the page on
//! its own host, an incident's page and the history, and an end user
//! subscribing from the page — the form, the confirmation email's link, the
//! confirmed page, and the manage page its emails link to. Every page passes
//! axe-core at WCAG 2.2 AA, at 1280 and 375 px.

use heliograph_testkit::{Browser, BrowserOptions};
use serde_json::json;

use crate::helpers::{TestApp, emails_to, unique_email, unique_ip};

#[tokio::test]
async fn an_end_user_subscribes_from_the_public_page_and_confirms_by_email() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.component(&t, "Website").await;
    let (status, incident) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Slow logins", "status": "investigating",
                     "body": "We are looking into slow sign-ins.", "deliver_notifications": false}}),
        )
        .await;
    assert!(status.is_success(), "{incident}");
    app.drain().await;

    // The browser resolves every page host to the api, as DNS would.
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let browser = Browser::start_with(BrowserOptions {
        host_rules: Some("MAP *.heliograph.test 127.0.0.1".to_owned()),
    })
    .await;
    browser
        .send_headers(&[("x-forwarded-for", &unique_ip())])
        .await;
    let origin = format!("http://{}.heliograph.test:{port}", t.slug);

    browser.goto(&format!("{origin}/")).await;
    browser.wait_for_text("Slow logins").await;
    browser.check_page("public-page").await;

    browser
        .goto(&format!(
            "{origin}/incidents/{}",
            incident["id"].as_str().unwrap()
        ))
        .await;
    browser
        .wait_for_text("We are looking into slow sign-ins.")
        .await;
    browser.check_page("public-incident").await;

    browser.goto(&format!("{origin}/history")).await;
    browser.wait_for_text("Slow logins").await;
    browser.check_page("public-history").await;

    // Subscribing: the form, then the email's link, then one button.
    let address = unique_email("reader");
    browser.goto(&format!("{origin}/")).await;
    browser.fill("#subscribe-email", &address).await;
    browser.click("form.subscribe button[type='submit']").await;
    browser.wait_for_text("Check your inbox").await;
    browser.check_page("public-subscribe-sent").await;

    app.drain().await;
    let mails = emails_to(&address, 1).await;
    assert_eq!(mails.len(), 1, "the confirmation email arrived");
    let text = mails[0]["text"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/subscriptions/confirm?token="))
        .expect("a confirmation link")
        .replace(&format!("http://{}.heliograph.test", t.slug), &origin);
    browser.goto(&link).await;
    browser
        .wait_for("form[action*='subscriptions/confirm']")
        .await;
    browser.check_page("public-subscribe-confirm").await;
    browser
        .click("form[action*='subscriptions/confirm'] button")
        .await;
    browser.wait_for_text("confirmed").await;
    browser.check_page("public-subscribe-confirmed").await;
    let (confirmed,): (bool,) =
        sqlx::query_as("select confirmed_at is not null from subscribers where email = $1")
            .bind(&address)
            .fetch_one(&app.admin)
            .await
            .unwrap();
    assert!(confirmed, "the subscriber is confirmed");

    // The manage page the emails link to.
    let manage = text
        .split_whitespace()
        .find(|w| w.contains("/subscription?token="))
        .expect("a manage link")
        .replace(&format!("http://{}.heliograph.test", t.slug), &origin);
    browser.goto(&manage).await;
    browser.wait_for("input#scope-all").await;
    browser.check_page("public-subscription-manage").await;

    browser.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_postmortem_published_from_the_dashboard_reaches_an_incident_page_read_while_a_draft() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (_, incident) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Slow logins", "status": "resolved",
                     "body": "Fixed.", "deliver_notifications": false}}),
        )
        .await;
    let id = incident["id"].as_str().unwrap().to_owned();
    let pm = format!("/v1/pages/{}/incidents/{id}/postmortem", t.page_id);
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            &pm,
            Some(&t.token),
            Some(&json!({"postmortem": {"body_draft": "Root cause: a bad index."}})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let page = format!("/status/{}/incidents/{id}", t.slug);
    let before = app.get(&page, None).await.text().await.unwrap();
    assert!(
        !before.contains("Root cause: a bad index."),
        "a draft is not public"
    );
    // Published from the dashboard, whose answer is a redirect.
    let (cookie, csrf) = app.dashboard_session(&t.token);
    let published = app
        .client
        .post(app.url(&format!(
            "/dashboard/pages/{}/incidents/{id}/postmortem/publish",
            t.page_id
        )))
        .header("cookie", cookie)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), reqwest::StatusCode::SEE_OTHER);
    // The answer waits for the pages to catch up: the next read shows it.
    let after = app.get(&page, None).await.text().await.unwrap();
    assert!(
        after.contains("Root cause: a bad index."),
        "the published postmortem is on the incident's page: {after}"
    );
    app.finish().await;
}
