//! Incident templates and notifications on the dashboard: a person adds a
//! template (bad input refused at its field), opens the composer from it,
//! changes it and deletes it; an incident's notification shows on the
//! notifications page with its deliveries and a link to its proof. And the
//! refusals, over HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, unique_email};

async fn templates(app: &TestApp, t: &crate::helpers::Tenant) -> Vec<Value> {
    let (_, listed) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/pages/{}/incident_templates", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    listed.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_keeps_templates_and_sees_what_was_sent() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.component(&t, "API").await;
    let browser = app.browser().await;
    app.sign_in(&browser, &t.email).await;
    let base = format!("/dashboard/pages/{}", t.page_id);

    // From the incidents list to the templates.
    browser.goto(&app.url(&format!("{base}/incidents"))).await;
    browser.click_text("Templates").await;
    browser.wait_for_text("No template yet.").await;
    browser.check_page("templates-list-empty").await;
    browser.click_text("Add a template").await;
    browser.wait_for("#title").await;
    browser.check_page("templates-new").await;

    // No incident name: refused next to its field, the rest kept.
    browser.fill("#name", "API down").await;
    browser.fill("#body", "We are on it.").await;
    browser.click_text("Add template").await;
    browser.wait_for("#title[aria-invalid='true']").await;
    browser.wait_for("#title-error").await;
    browser.check_page("templates-new-error").await;
    browser.fill("#title", "The API is down").await;
    browser.click("input[name=component_ids]").await;
    browser.click_text("Add template").await;
    browser.wait_for_text("Template “API down” added.").await;
    browser.check_page("templates-list").await;
    let listed = templates(&app, &t).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["title"], "The API is down");
    assert_eq!(listed[0]["components"].as_array().unwrap().len(), 1);
    let id = listed[0]["id"].as_str().unwrap().to_owned();

    // The composer offers it, and `?template=` fills the composer.
    browser
        .goto(&app.url(&format!("{base}/incidents/new")))
        .await;
    browser
        .wait_for(&format!("#template option[value='{id}']"))
        .await;
    browser.wait_for_text("Manage templates").await;
    browser
        .goto(&app.url(&format!("{base}/incidents/new?template={id}")))
        .await;
    let name = browser.wait_for("#name").await;
    assert_eq!(
        name.prop("value").await.unwrap().as_deref(),
        Some("The API is down")
    );
    let body = browser.wait_for("#body").await;
    assert_eq!(
        body.prop("value").await.unwrap().as_deref(),
        Some("We are on it.")
    );

    // Changed: a bad change is refused and changes nothing.
    browser
        .goto(&app.url(&format!("{base}/incident_templates/{id}/edit")))
        .await;
    browser.wait_for("#title").await;
    browser.check_page("templates-edit").await;
    browser.fill("#title", "").await;
    browser.click_text("Save").await;
    browser.wait_for("#title[aria-invalid='true']").await;
    assert_eq!(
        templates(&app, &t).await[0]["id"].as_str(),
        Some(id.as_str())
    );
    browser.fill("#title", "The API is slow").await;
    browser.click_text("Save").await;
    browser.wait_for_text("Template “API down” saved.").await;
    let listed = templates(&app, &t).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["title"], "The API is slow");
    assert_eq!(listed[0]["body"], "We are on it.");
    assert_eq!(listed[0]["components"].as_array().unwrap().len(), 1);
    let id = listed[0]["id"].as_str().unwrap().to_owned();

    // Deleted, after a confirmation.
    browser
        .click(&format!(
            "form[action$='/incident_templates/{id}/delete'] button"
        ))
        .await;
    browser.client().accept_alert().await.unwrap();
    browser.wait_for_text("Template “API down” deleted.").await;
    assert!(templates(&app, &t).await.is_empty());

    // An incident told to a confirmed subscriber shows on the
    // notifications page, with its deliveries and its proof.
    let subscriber = unique_email("sub");
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
            &json!({"incident": {"name": "Slow API", "status": "investigating", "body": "Looking."}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{incident}");
    app.drain().await;
    browser.goto(&app.url(&format!("{base}/incidents"))).await;
    browser
        .click(&format!("a[href='{base}/notifications']"))
        .await;
    // Named by the incident it was about, not only by its kind.
    browser.wait_for_text("Incident opened: Slow API").await;
    browser.wait_for_text("1 sent").await;
    browser.check_page("notifications-list").await;
    browser.click("a[href$='/deliveries']").await;
    browser.wait_for_text("Sent: 1 of 1").await;
    browser.wait_for_text(&subscriber).await;
    browser.close().await;
    app.finish().await;
}

#[tokio::test]
async fn viewers_cannot_change_templates_and_other_tenants_are_not_found() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let other = app.signup().await;
    let viewer = app.signup().await;
    app.join(&t, &viewer, "viewer").await;
    let make = |t: &crate::helpers::Tenant| {
        let path = format!("/v1/pages/{}/incident_templates", t.page_id);
        let token = t.token.clone();
        let app = &app;
        async move {
            let (status, body) = app
                .post(
                    &path,
                    Some(&token),
                    &json!({"template": {"name": "Down", "title": "Down"}}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["id"].as_str().unwrap().to_owned()
        }
    };
    let mine = make(&t).await;
    let theirs = make(&other).await;
    let base = format!("/dashboard/pages/{}/incident_templates", t.page_id);

    // The owner: another tenant's template is not found, to edit or delete.
    let (cookie, csrf) = app.form_session(&t.email, &t.tenant_id).await;
    let get = |path: String, cookie: String| {
        let request = app.client.get(app.url(&path)).header("cookie", cookie);
        async move { request.send().await.unwrap().status() }
    };
    let post = |path: String, cookie: String, form: Vec<(&'static str, String)>| {
        let request = app
            .client
            .post(app.url(&path))
            .header("cookie", cookie)
            .form(&form);
        async move { request.send().await.unwrap().status() }
    };
    let filled = |csrf: &str| {
        vec![
            ("_csrf", csrf.to_owned()),
            ("name", "Mine now".to_owned()),
            ("title", "Mine now".to_owned()),
            ("update_status", "investigating".to_owned()),
        ]
    };
    assert_eq!(
        get(format!("{base}/{theirs}/edit"), cookie.clone()).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post(format!("{base}/{theirs}"), cookie.clone(), filled(&csrf)).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post(
            format!("{base}/{theirs}/delete"),
            cookie.clone(),
            vec![("_csrf", csrf.clone())]
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(templates(&app, &other).await.len(), 1);

    // A viewer reads the list, but may not add, change or delete.
    let (cookie, csrf) = app.form_session(&viewer.email, &t.tenant_id).await;
    assert_eq!(get(base.clone(), cookie.clone()).await, StatusCode::OK);
    assert_eq!(
        get(format!("{base}/new"), cookie.clone()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(base.clone(), cookie.clone(), filled(&csrf)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(format!("{base}/{mine}/edit"), cookie.clone()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(format!("{base}/{mine}"), cookie.clone(), filled(&csrf)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(
            format!("{base}/{mine}/delete"),
            cookie.clone(),
            vec![("_csrf", csrf.clone())]
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(templates(&app, &t).await[0]["name"], "Down");
    app.finish().await;
}
