//! The mission, end to end, as a new customer lives it in a browser and
//! nowhere else: sign up, verify the address from the emailed link, add
//! components, add a subscriber, open an incident, update it and resolve
//! it — and the subscriber's emails arrive, one per step. Each section's
//! own journeys (and refusals) are in the `dashboard_*` modules.

use crate::helpers::{PASSWORD, TestApp, emails_to, token_in_email, unique_email, unique_slug};

#[tokio::test]
async fn a_new_customer_signs_up_builds_a_page_and_runs_an_incident_their_subscriber_hears_of() {
    let app = TestApp::spawn().await;
    let browser = app.browser().await;

    // Sign up.
    let email = unique_email("founder");
    browser.goto(&app.url("/signup")).await;
    browser.fill("#name", "Northwind Status").await;
    browser.fill("#slug", &unique_slug("northwind")).await;
    browser.fill("#email", &email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_text("Create my account").await;
    browser.wait_for("nav.side").await;
    browser.wait_for_text("Verify your email address").await;

    // Verify the address from the email.
    app.drain().await;
    let token = token_in_email(&email, "Confirm your email address", 1).await;
    browser
        .goto(&app.url(&format!("/account/verify-email?token={token}")))
        .await;
    browser.click_text("Verify my address").await;
    browser.wait_for_text("Address verified").await;

    // The overview's checklist leads to the components.
    browser.goto(&app.url("/dashboard")).await;
    browser.wait_for_text("Add your components").await;
    browser.check_page("journey-overview-new").await;
    browser.click_text("Add your components").await;
    for name in ["Website", "API"] {
        browser.click_text("Add a component").await;
        browser.fill("#name", name).await;
        browser.click_text("Add component").await;
        browser.wait_for(".flash").await;
    }
    browser.wait_for_text("API").await;
    browser.check_page("journey-components").await;
    let base = browser
        .url()
        .await
        .trim_end_matches("/components")
        .split("/dashboard/")
        .nth(1)
        .map(|rest| format!("/dashboard/{rest}"))
        .expect("the components page is a page's");

    // A subscriber, added by the team (the address is verified now).
    let reader = unique_email("reader");
    browser.goto(&app.url(&format!("{base}/subscribers"))).await;
    browser.click_text("Add a subscriber").await;
    browser.fill("#address", &reader).await;
    browser.click("#skip_confirmation").await;
    browser.click_text("Add subscriber").await;
    browser.wait_for(".flash").await;

    // Open an incident: the API is down.
    browser
        .goto(&app.url(&format!("{base}/incidents/new")))
        .await;
    browser.wait_for_text("will hear of it").await;
    browser.fill("#name", "API unavailable").await;
    browser
        .click("input[name=status][value=investigating]")
        .await;
    browser
        .fill("#body", "Requests to the API fail; we are on it.")
        .await;
    let api_select = browser
        .client()
        .execute(
            "return [...document.querySelectorAll('select[id^=component-]')]
                .find(s => s.closest('tr, li, div, p').textContent.includes('API')).id;",
            vec![],
        )
        .await
        .unwrap();
    browser
        .click(&format!(
            "#{} option[value=major_outage]",
            api_select.as_str().unwrap()
        ))
        .await;
    browser.click_text("Post incident").await;
    browser.wait_for(".flash").await;
    browser.wait_for_text("being notified").await;
    app.drain().await;
    let mails = emails_to(&reader, 1).await;
    assert_eq!(mails.len(), 1, "the subscriber heard of the incident");
    assert!(
        mails[0]["subject"]
            .as_str()
            .unwrap()
            .contains("API unavailable")
    );
    let incident_page = browser.url().await;
    let incident = incident_page
        .split("/incidents/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the delivery proof is the incident's")
        .to_owned();

    // An update, then the resolution (components restored).
    for (status, body) in [
        ("identified", "A bad deploy; rolling back."),
        ("resolved", "The API is back."),
    ] {
        browser
            .goto(&app.url(&format!("{base}/incidents/{incident}")))
            .await;
        browser
            .click(&format!("input[name=status][value={status}]"))
            .await;
        browser.fill("#body", body).await;
        browser.click_text("Post update").await;
        browser.wait_for(".flash").await;
    }
    app.drain().await;
    let mails = emails_to(&reader, 3).await;
    assert_eq!(mails.len(), 3, "one email per step: {mails:#?}");
    let texts: Vec<&str> = mails.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("A bad deploy; rolling back."))
    );
    assert!(texts.iter().any(|t| t.contains("The API is back.")));
    browser
        .goto(&app.url(&format!("{base}/incidents/{incident}")))
        .await;
    browser.wait_for_text("Resolved").await;
    // Closed, it is shown in the calm colour, whatever its impact was.
    browser
        .wait_for("h1 + .pill.tone-ok, .heading-row .pill.tone-ok")
        .await;
    browser.check_page("journey-incident-resolved").await;
    browser.goto(&app.url(&base)).await;
    browser.wait_for_text("All Systems Operational").await;
    browser.close().await;
    app.finish().await;
}
