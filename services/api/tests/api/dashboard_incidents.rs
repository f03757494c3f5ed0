//! Incidents on the dashboard: a person opens one in the composer, the
//! subscriber hears of it, updates and corrections follow, resolving
//! restores the components, the delivery proof shows who was told; the
//! list searches and pages. And the refusals, over HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, emails_to, unique_email};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_opens_updates_resolves_an_incident_and_sees_who_was_told() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    app.component(&t, "Website").await;
    let subscriber = unique_email("sub");
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/subscribers", t.page_id),
            Some(&t.token),
            &json!({"subscriber": {"email": subscriber, "skip_confirmation_notification": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let browser = app.browser().await;
    app.sign_in(&browser, &t.email).await;

    // The composer: four statuses, every component, who will hear it.
    let base = format!("/dashboard/pages/{}", t.page_id);
    browser
        .goto(&app.url(&format!("{base}/incidents/new")))
        .await;
    browser
        .wait_for_text("1 subscriber (email 1) will hear of it.")
        .await;
    browser.check_page("incidents-composer").await;
    // A name is needed: said next to the field, what was typed kept.
    browser.fill("#body", "We are looking into it.").await;
    browser.click_text("Post incident").await;
    browser.wait_for("#name[aria-invalid='true']").await;
    browser.check_page("incidents-composer-error").await;
    browser.fill("#name", "Elevated API errors").await;
    browser.click("input[name=status][value=identified]").await;
    browser
        .click(&format!("#component-{api} option[value=major_outage]"))
        .await;
    browser.click_text("Post incident").await;
    browser.wait_for(".flash").await;
    browser
        .wait_for_text("Incident posted — 1 subscriber is being notified.")
        .await;

    // The subscriber hears of it.
    app.drain().await;
    let mails = emails_to(&subscriber, 1).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("We are looking into it."),
        "{}",
        mails[0]
    );
    let (_, listed) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    let incident = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["status"], "identified");
    assert_eq!(listed[0]["impact"], "critical");

    // The delivery proof (where posting led, once drained: sent).
    browser.goto(&browser.url().await).await;
    browser.wait_for_text("Sent: 1 of 1").await;
    browser.wait_for_text(&subscriber).await;
    browser.check_page("incidents-delivery-proof").await;

    // An update, then its text corrected.
    browser
        .goto(&app.url(&format!("{base}/incidents/{incident}")))
        .await;
    browser.check_page("incidents-page").await;
    browser.click("input[name=status][value=monitoring]").await;
    browser
        .fill("#body", "A fix is out; we are wathcing.")
        .await;
    browser.click_text("Post update").await;
    browser.wait_for(".flash").await;
    browser.wait_for_text("Incident posted").await;
    browser
        .goto(&app.url(&format!("{base}/incidents/{incident}")))
        .await;
    browser
        .click_text("Edit the text of the Monitoring update")
        .await;
    browser.wait_for("textarea#body").await;
    browser.check_page("incidents-edit-update").await;
    browser
        .fill("#body", "A fix is out; we are watching.")
        .await;
    browser.click_text("Save text").await;
    browser.wait_for(".flash").await;
    browser
        .wait_for_text("Update corrected. Nobody is told again.")
        .await;
    browser
        .wait_for_text("A fix is out; we are watching.")
        .await;

    // Resolved, restoring the components: the public page is all operational.
    // (Each action below starts from a page without a flash, so that the
    // flash says the next page has loaded.)
    browser
        .goto(&app.url(&format!("{base}/incidents/{incident}")))
        .await;
    browser.click("input[name=status][value=resolved]").await;
    browser.fill("#body", "Fixed.").await;
    browser.click_text("Post update").await;
    browser.wait_for(".flash").await;
    browser.wait_for_text("Incident posted").await;
    let slug = t.slug.clone();
    app.public_json(
        &format!("/status/{slug}/api/v2/summary.json"),
        None,
        |s: &Value| {
            s["components"]
                .as_array()
                .is_some_and(|cs| cs.iter().all(|c| c["status"] == "operational"))
                && s["incidents"].as_array().is_some_and(Vec::is_empty)
        },
    )
    .await;
    app.drain().await;
    assert_eq!(
        emails_to(&subscriber, 3).await.len(),
        3,
        "opened, monitoring, resolved"
    );

    // The list: past tab, searched.
    browser
        .goto(&app.url(&format!("{base}/incidents?tab=past&q=API")))
        .await;
    browser.wait_for_text("1 incident matching “API”.").await;
    browser.check_page("incidents-list").await;
    browser
        .goto(&app.url(&format!("{base}/incidents?tab=past&q=nothing-like-it")))
        .await;
    browser.wait_for_text("0 incidents").await;

    // Deleted, after a confirmation.
    browser
        .goto(&app.url(&format!("{base}/incidents/{incident}")))
        .await;
    browser
        .wait_for("form[data-confirm^='Delete the incident “Elevated API errors”']")
        .await;
    browser.close().await;
    app.finish().await;
}

#[tokio::test]
async fn the_incident_list_pages_through_many_incidents() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    for n in 0..55 {
        let (status, body) = app
            .post(
                &format!("/v1/pages/{}/incidents", t.page_id),
                Some(&t.token),
                &json!({"incident": {"name": format!("Blip {n:02}"), "status": "investigating", "deliver_notifications": false}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (cookie, _) = app.form_session(&t.email, &t.tenant_id).await;
    let list = |path: String| {
        let request = app
            .client
            .get(app.url(&path))
            .header("cookie", cookie.clone());
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let first = list(format!("/dashboard/pages/{}/incidents", t.page_id)).await;
    assert!(first.contains("55 incidents"), "{first}");
    assert!(first.contains("Page 1 of 2") && first.contains("Next page"));
    let second = list(format!(
        "/dashboard/pages/{}/incidents?tab=open&q=&page=2",
        t.page_id
    ))
    .await;
    assert_eq!(second.matches("class=\"name\"").count(), 5, "{second}");
    let searched = list(format!(
        "/dashboard/pages/{}/incidents?q=Blip+07",
        t.page_id
    ))
    .await;
    assert!(searched.contains("1 incident matching"), "{searched}");
    app.drain().await;
    app.finish().await;
}

#[tokio::test]
async fn viewers_cannot_post_other_tenants_incidents_are_not_found_and_a_nameless_incident_is_refused()
 {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let other = app.signup().await;
    let viewer = app.signup().await;
    app.join(&t, &viewer, "viewer").await;
    let (_, theirs) = app
        .post(
            &format!("/v1/pages/{}/incidents", other.page_id),
            Some(&other.token),
            &json!({"incident": {"name": "Theirs", "status": "investigating", "deliver_notifications": false}}),
        )
        .await;
    let theirs = theirs["id"].as_str().unwrap().to_owned();

    // The owner: another tenant's incident is not found; a nameless one is 422.
    let (cookie, csrf) = app.form_session(&t.email, &t.tenant_id).await;
    let res = app
        .client
        .get(app.url(&format!(
            "/dashboard/pages/{}/incidents/{theirs}",
            t.page_id
        )))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .client
        .post(app.url(&format!("/dashboard/pages/{}/incidents", t.page_id)))
        .header("cookie", &cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", ""),
            ("status", "investigating"),
            ("body", "Something"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"name-error\""), "{html}");
    assert!(html.contains("aria-invalid=\"true\""), "{html}");
    assert!(html.contains(">Something</textarea>"), "kept: {html}");

    // A viewer: the composer and the post are refused.
    let (cookie, csrf) = app.form_session(&viewer.email, &t.tenant_id).await;
    let res = app
        .client
        .get(app.url(&format!("/dashboard/pages/{}/incidents/new", t.page_id)))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .client
        .post(app.url(&format!("/dashboard/pages/{}/incidents", t.page_id)))
        .header("cookie", &cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "Not mine to post"),
            ("status", "investigating"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // But the list is the viewer's to read.
    let res = app
        .client
        .get(app.url(&format!("/dashboard/pages/{}/incidents", t.page_id)))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.finish().await;
}
