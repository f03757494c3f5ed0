//! The dashboard's page overview (current state, setup checklist) and its
//! components and groups: a browser journey through them, and the
//! refusals over HTTP (roles, another tenant's ids, bad input).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Tenant, TestApp};

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
    browser.wait_for_text("All Systems Operational").await;
    browser.check_page("pages-overview-new").await;

    browser.click_text("Add your components").await;
    browser.wait_for("h1").await;
    browser.wait_for_text("No components yet").await;
    browser.check_page("pages-components-empty").await;

    // A group, then components: a blank name comes back next to the field.
    browser.click_text("Add a group").await;
    browser.fill("#name", "Platform").await;
    browser.click_text("Add group").await;
    browser.wait_for_text("Group “Platform” added.").await;

    browser.click_text("Add a component").await;
    browser.check_page("pages-component-new").await;
    browser.click_text("Add component").await;
    browser.wait_for("#name[aria-invalid='true']").await;
    browser.wait_for("#name-error").await;
    browser.check_page("pages-component-error").await;
    browser.fill("#name", "Website").await;
    browser.click_text("Add component").await;
    browser.wait_for_text("Component “Website” added.").await;

    browser.click_text("Add a component").await;
    browser.fill("#name", "API").await;
    browser
        .wait_for("#group_id")
        .await
        .select_by_label("Platform")
        .await
        .unwrap();
    browser.click_text("Add component").await;
    browser.wait_for_text("Component “API” added.").await;

    browser.click_text("Add a component").await;
    browser.fill("#name", "Billing").await;
    browser
        .click("input[name='visibility'][value='private']")
        .await;
    browser.click_text("Add component").await;
    browser.wait_for_text("Component “Billing” added.").await;
    browser.wait_for_text("Private").await;
    browser.check_page("pages-components").await;

    // Reorder: Billing moves above Website.
    let list = components(&app, &t).await;
    let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Website", "API", "Billing"]);
    browser.click_text("Move up Billing").await;
    browser.wait_for_text("“Billing” moved.").await;
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
    browser.wait_for_text("“API” is now Major Outage.").await;
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
    browser.wait_for_text("Component “Web app” saved.").await;
    browser.click_text("Edit Billing").await;
    browser.click_text("Delete “Billing”").await;
    browser.client().accept_alert().await.unwrap();
    browser.wait_for_text("Component “Billing” deleted.").await;
    let names: Vec<String> = components(&app, &t)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["Web app", "API"]);

    // The overview: the outage, the components' step ticked.
    browser.goto(&app.url(&page)).await;
    browser.wait_for_text("Done: Add your components").await;
    browser
        .wait_for_text("Set up your page (1 of 5 done)")
        .await;
    browser.wait_for_text("Major Service Outage").await;
    browser.check_page("pages-overview").await;

    // Dismissed, the checklist stays away.
    browser.click_text("Dismiss the checklist").await;
    browser
        .wait_for_text("The setup checklist is dismissed.")
        .await;
    browser.goto(&app.url(&page)).await;
    browser.wait_for_text("Web app").await;
    assert!(!browser.text().await.contains("Set up your page"));
    browser.close().await;
    app.finish().await;
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
    let as_viewer = app.form_session(&viewer.email, &t.tenant_id).await;
    let as_owner = app.form_session(&t.email, &t.tenant_id).await;
    let base = format!("/dashboard/pages/{}/components", t.page_id);

    // A viewer may neither change a status nor add a component.
    let (status, html) = app
        .form_post(
            &as_viewer,
            &format!("{base}/{website}/status"),
            &[("status", "major_outage")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    let (status, _) = app.form_post(&as_viewer, &base, &[("name", "Nope")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Another tenant's component is not found through this page.
    for path in [
        format!("{base}/{theirs}/status"),
        format!("{base}/{theirs}/delete"),
    ] {
        let (status, _) = app
            .form_post(&as_owner, &path, &[("status", "major_outage")])
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let res = app
        .client
        .get(app.url(&format!("{base}/{theirs}/edit")))
        .header("cookie", &as_owner.0)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // A blank name: 422, the message next to the field, the rest kept.
    let (status, html) = app
        .form_post(
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
    let (status, html) = app
        .form_post(
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
