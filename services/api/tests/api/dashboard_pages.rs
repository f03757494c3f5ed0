//! The dashboard's page overview (current state, setup checklist) and its
//! components and groups: a browser journey through them, and the
//! refusals over HTTP (roles, another tenant's ids, bad input).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Tenant, TestApp};

/// A page's components through the API, in page order: (name, id).
async fn components(app: &TestApp, t: &Tenant) -> Vec<(String, String)> {
    let (status, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/pages/{}/components", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Waits until the page says `needle`, across the navigation a click
/// starts (the old page's body may go stale while it is read).
async fn says(browser: &heliograph_testkit::Browser, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = browser
            .client()
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never said {needle:?}; it says:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn id_of(list: &[(String, String)], name: &str) -> String {
    list.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no component {name}: {list:?}"))
        .1
        .clone()
}

#[tokio::test]
async fn a_team_sets_up_its_components_from_the_overview_checklist() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let browser = app.browser().await;
    app.sign_in(&browser, &t.email).await;
    let page = format!("/dashboard/pages/{}", t.page_id);

    // A new team: the checklist, nothing ticked.
    browser
        .wait_for_text("Set up your page (0 of 5 done)")
        .await;
    assert!(!browser.text().await.contains("Done:"));
    says(&browser, "All Systems Operational").await;
    browser.check_page("pages-overview-new").await;

    browser.click_text("Add your components").await;
    browser.wait_for("h1").await;
    says(&browser, "No components yet").await;
    browser.check_page("pages-components-empty").await;

    // A group, then components: a blank name comes back next to the field.
    browser.click_text("Add a group").await;
    browser.fill("#name", "Platform").await;
    browser.click_text("Add group").await;
    says(&browser, "Group “Platform” added.").await;

    browser.click_text("Add a component").await;
    browser.check_page("pages-component-new").await;
    browser.click_text("Add component").await;
    browser.wait_for("#name[aria-invalid='true']").await;
    browser.wait_for("#name-error").await;
    browser.check_page("pages-component-error").await;
    browser.fill("#name", "Website").await;
    browser.click_text("Add component").await;
    says(&browser, "Component “Website” added.").await;

    browser.click_text("Add a component").await;
    browser.fill("#name", "API").await;
    browser
        .wait_for("#group_id")
        .await
        .select_by_label("Platform")
        .await
        .unwrap();
    browser.click_text("Add component").await;
    says(&browser, "Component “API” added.").await;

    browser.click_text("Add a component").await;
    browser.fill("#name", "Billing").await;
    browser
        .click("input[name='visibility'][value='private']")
        .await;
    browser.click_text("Add component").await;
    says(&browser, "Component “Billing” added.").await;
    says(&browser, "Private").await;
    browser.check_page("pages-components").await;

    // Reorder: Billing moves above Website.
    let list = components(&app, &t).await;
    let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Website", "API", "Billing"]);
    browser.click_text("Move up Billing").await;
    says(&browser, "“Billing” moved.").await;
    let list = components(&app, &t).await;
    let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Billing", "Website", "API"]);

    // One click: the API is down, and the public page says so.
    let api = id_of(&list, "API");
    browser
        .wait_for(&format!("#status-{api}"))
        .await
        .select_by_value("major_outage")
        .await
        .unwrap();
    browser.click_text("Set status of API").await;
    says(&browser, "“API” is now Major Outage.").await;
    let doc = app
        .public_json(
            &format!("/status/{}/api/v2/components.json", t.slug),
            None,
            |b: &Value| {
                b["components"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["name"] == "API" && c["status"] == "major_outage")
                })
            },
        )
        .await;
    // The private component is not on the public page.
    assert!(
        !doc["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "Billing")
    );

    // Edit, then delete with the confirm dialog accepted.
    browser.click_text("Edit Website").await;
    browser.wait_for("#name").await;
    browser.check_page("pages-component-edit").await;
    browser.fill("#name", "Web app").await;
    browser.click_text("Save").await;
    says(&browser, "Component “Web app” saved.").await;
    browser.click_text("Edit Billing").await;
    browser.click_text("Delete “Billing”").await;
    browser.client().accept_alert().await.unwrap();
    says(&browser, "Component “Billing” deleted.").await;
    let names: Vec<String> = components(&app, &t)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["Web app", "API"]);

    // The overview: the outage, the components' step ticked.
    browser.goto(&app.url(&page)).await;
    says(&browser, "Done: Add your components").await;
    browser
        .wait_for_text("Set up your page (1 of 5 done)")
        .await;
    says(&browser, "Major Service Outage").await;
    browser.check_page("pages-overview").await;

    // Dismissed, the checklist stays away.
    browser.click_text("Dismiss the checklist").await;
    browser
        .wait_for_text("The setup checklist is dismissed.")
        .await;
    browser.goto(&app.url(&page)).await;
    says(&browser, "Web app").await;
    assert!(!browser.text().await.contains("Set up your page"));
    browser.close().await;
    app.finish().await;
}

/// A dashboard session for `email` on `tenant`: (session cookie, CSRF field).
async fn session(app: &TestApp, email: &str, tenant: &Tenant) -> (String, String) {
    let (status, body) = app
        .post(
            "/v1/sessions",
            None,
            &json!({"email": email, "password": PASSWORD, "tenant_id": tenant.tenant_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["token"].as_str().unwrap().to_owned(),
        body["csrf_token"].as_str().unwrap().to_owned(),
    )
}

async fn form_post(
    app: &TestApp,
    (token, csrf): &(String, String),
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut form: Vec<(&str, &str)> = vec![("_csrf", csrf)];
    form.extend_from_slice(fields);
    let res = app
        .client
        .post(app.url(path))
        .header("cookie", format!("heliograph_session={token}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test]
async fn component_forms_refuse_viewers_other_tenants_ids_and_blank_names() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let other = app.signup().await;
    let website = app.component(&t, "Website").await;
    let theirs = app.component(&other, "Theirs").await;
    let viewer = app.signup().await;
    app.join(&t, &viewer, "viewer").await;
    let as_viewer = session(&app, &viewer.email, &t).await;
    let as_owner = session(&app, &t.email, &t).await;
    let base = format!("/dashboard/pages/{}/components", t.page_id);

    // A viewer may neither change a status nor add a component.
    let (status, html) = form_post(
        &app,
        &as_viewer,
        &format!("{base}/{website}/status"),
        &[("status", "major_outage")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    let (status, _) = form_post(&app, &as_viewer, &base, &[("name", "Nope")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Another tenant's component is not found through this page.
    for path in [
        format!("{base}/{theirs}/status"),
        format!("{base}/{theirs}/delete"),
    ] {
        let (status, _) = form_post(&app, &as_owner, &path, &[("status", "major_outage")]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let res = app
        .client
        .get(app.url(&format!("{base}/{theirs}/edit")))
        .header("cookie", format!("heliograph_session={}", as_owner.0))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // A blank name: 422, the message next to the field, the rest kept.
    let (status, html) = form_post(
        &app,
        &as_owner,
        &base,
        &[
            ("name", " "),
            ("description", "Kept text"),
            ("status", "operational"),
            ("visibility", "public"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains(r#"id="name-error""#), "{html}");
    assert!(html.contains("Kept text"), "{html}");
    let (status, html) = form_post(
        &app,
        &as_owner,
        &format!("/dashboard/pages/{}/component-groups", t.page_id),
        &[("name", "")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains(r#"id="name-error""#), "{html}");

    // Nothing changed for the other tenant.
    let (_, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/pages/{}/components/{theirs}", other.page_id),
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(body["status"], "operational");
    app.finish().await;
}
