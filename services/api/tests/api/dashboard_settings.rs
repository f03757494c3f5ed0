//! The dashboard's pages list, creating a page and a page's settings: a
//! browser journey through them, and the refusals over HTTP (roles,
//! another tenant's page, bad input).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

/// Sets the colour input `css` to `value` (a colour picker takes no typing).
async fn set_colour(browser: &heliograph_testkit::Browser, css: &str, value: &str) {
    browser.wait_for(css).await;
    browser
        .client()
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1];",
            vec![json!(css), json!(value)],
        )
        .await
        .unwrap();
}

async fn public_page(app: &TestApp, slug: &str) -> String {
    let res = app.get(&format!("/status/{slug}/"), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

#[tokio::test]
async fn a_team_adds_a_page_and_brands_it_in_the_settings() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let browser = app.browser().await;
    app.sign_in(&browser, &t.email).await;

    // The list: the signup's page, with its public address.
    browser.goto(&app.url("/dashboard/pages")).await;
    browser.wait_for_text("Public address").await;
    assert!(
        browser
            .text()
            .await
            .contains(&format!("/status/{}", t.slug))
            || browser.text().await.contains(&t.slug)
    );
    browser.check_page("settings-pages-list").await;

    // A second page; a bad address is refused next to its field.
    browser.click_text("Create a page").await;
    browser.wait_for("#subdomain").await;
    browser.check_page("settings-page-new").await;
    browser.fill("#name", "Second Cloud").await;
    browser.fill("#subdomain", "Bad Address!").await;
    browser.click_text("Create page").await;
    browser.wait_for("#subdomain[aria-invalid='true']").await;
    browser.wait_for("#subdomain-error").await;
    browser.check_page("settings-page-new-error").await;
    let second_slug = format!("second-{}", &t.slug);
    browser.fill("#subdomain", &second_slug).await;
    browser.fill("#time_zone", "Europe/Paris").await;
    browser.click_text("Create page").await;
    browser.wait_for_text("Page “Second Cloud” created.").await;
    assert!(browser.url().await.contains("/dashboard/pages/"));
    browser.check_page("settings-second-overview").await;

    // The navigation lists both pages and switches between them.
    browser.wait_for("ul[aria-labelledby=nav-pages]").await;
    let first_name = browser
        .client()
        .execute(
            "return document.querySelector('nav.side ul[aria-labelledby=nav-pages] li a:not([aria-current])').textContent",
            vec![],
        )
        .await
        .unwrap();
    let first_name = first_name.as_str().unwrap().to_owned();
    browser.click_text(&first_name).await;
    browser.wait_for_heading(&first_name).await;
    browser.click_text("Second Cloud").await;
    browser.wait_for_heading("Second Cloud").await;

    // Settings: name, headline, time zone, and colours that do not read.
    browser.click_text("Page settings").await;
    browser.wait_for("#headline").await;
    assert!(!browser.text().await.contains("do not read well"));
    browser.check_page("settings-settings").await;
    browser.fill("#name", "Second Cloud Status").await;
    browser
        .fill("#headline", "Everything about the second cloud")
        .await;
    browser.fill("#time_zone", "America/Chicago").await;
    set_colour(&browser, "#css_body_background_color", "#ffffff").await;
    set_colour(&browser, "#css_font_color", "#eeeeee").await;
    browser.click_text("Save settings").await;
    browser.wait_for_text("Settings saved.").await;
    browser.wait_for_text("Some colours do not read well").await;
    assert!(browser.text().await.contains("The text colour #eeeeee"));
    let zone = browser
        .client()
        .execute("return document.querySelector('#time_zone').value", vec![])
        .await
        .unwrap();
    assert_eq!(zone, json!("America/Chicago"));
    browser.check_page("settings-settings-warning").await;
    // Still there when the page is opened again.
    browser.goto(&browser.url().await).await;
    browser.wait_for_text("Some colours do not read well").await;
    set_colour(&browser, "#css_font_color", "#1f2328").await;
    browser.click_text("Save settings").await;
    browser.wait_for_text("Settings saved.").await;
    assert!(!browser.text().await.contains("do not read well"));

    // Readers see the new name and headline.
    let html = public_page(&app, &second_slug).await;
    assert!(html.contains("Second Cloud Status"), "{html}");
    assert!(html.contains("Everything about the second cloud"));
    assert!(html.contains("subscriber[endpoint]"));

    // No more webhooks: the public subscribe form asks for no URL. The page
    // is opened afresh first, so that the "Settings saved." waited for next
    // is this save's, not the last one's still shown.
    browser.goto(&browser.url().await).await;
    browser.wait_for("#allow_webhook_subscribers").await;
    assert!(!browser.text().await.contains("Settings saved."));
    browser.click("#allow_webhook_subscribers").await;
    browser.click_text("Save settings").await;
    browser.wait_for_text("Settings saved.").await;
    let html = public_page(&app, &second_slug).await;
    assert!(!html.contains("subscriber[endpoint]"), "{html}");
    assert!(html.contains("subscriber[email]"));

    // Texting takes a verified owner: said at the switch, not as an error page.
    sqlx::query(
        "update users set email_verified_at = null
          where id in (select user_id from memberships where tenant_id = $1::uuid)",
    )
    .bind(&t.tenant_id)
    .execute(&app.admin)
    .await
    .unwrap();
    browser.goto(&browser.url().await).await;
    browser.click("#allow_sms_subscribers").await;
    browser.fill("#sms_calling_code", "44").await;
    browser.click_text("Save settings").await;
    browser.wait_for("#allow_sms_subscribers-error").await;
    assert!(
        browser
            .text()
            .await
            .contains("must verify their email address before the page can send texts")
    );
    assert_eq!(
        browser.wait_for("h1").await.text().await.unwrap(),
        "Page settings"
    );
    browser.check_page("settings-settings-sms-refused").await;

    browser.close().await;
    app.finish().await;
}

#[tokio::test]
async fn page_forms_refuse_editors_other_tenants_pages_and_unknown_time_zones_and_components_keep_their_display_settings()
 {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let other = app.signup().await;
    let editor = app.signup().await;
    app.join(&t, &editor, "editor").await;
    let as_editor = app.form_session(&editor.email, &t.tenant_id).await;
    let as_owner = app.form_session(&t.email, &t.tenant_id).await;
    let settings = format!("/dashboard/pages/{}/settings", t.page_id);

    // An editor sees the list, but may neither create a page nor change settings.
    let (status, html) = app.page_get(&as_editor, "/dashboard/pages").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(!html.contains("Create a page"));
    let (status, _) = app.page_get(&as_editor, "/dashboard/pages/new").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .form_post(
            &as_editor,
            "/dashboard/pages",
            &[("name", "Nope"), ("subdomain", "nope-page-x")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.page_get(&as_editor, &settings).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .form_post(&as_editor, &settings, &[("name", "Nope")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Another tenant's page is not found.
    let theirs = format!("/dashboard/pages/{}/settings", other.page_id);
    let (status, _) = app.page_get(&as_owner, &theirs).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .form_post(&as_owner, &theirs, &[("name", "Mine now")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An unknown time zone: 422, said at the field, what was typed kept.
    let (status, html) = app.page_get(&as_owner, &settings).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let (status, html) = app
        .form_post(
            &as_owner,
            &settings,
            &[
                ("name", "Kept name"),
                ("time_zone", "Mars/Olympus_Mons"),
                ("css_link_color", "#0969da"),
                ("css_body_background_color", "#ffffff"),
                ("css_font_color", "#1f2328"),
                ("allow_email_subscribers", "on"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains(r#"id="time_zone-error""#), "{html}");
    assert!(html.contains("Mars/Olympus_Mons"));
    assert!(html.contains("Kept name"));
    let (status, html) = app
        .form_post(
            &as_owner,
            "/dashboard/pages",
            &[
                ("name", "Third"),
                ("subdomain", "third-page-zz"),
                ("time_zone", "Nowhere/Here"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains(r#"id="time_zone-error""#), "{html}");

    // The component form carries the showcase, "only when degraded" and
    // start date settings to the API's rules: a bad date is refused at its
    // field, good ones are kept and shown again.
    let components = format!("/dashboard/pages/{}/components", t.page_id);
    let (status, html) = app
        .form_post(
            &as_owner,
            &components,
            &[
                ("name", "Batch jobs"),
                ("status", "operational"),
                ("visibility", "public"),
                ("start_date", "2026-02-30"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains(r#"id="start_date-error""#), "{html}");
    let (status, html) = app
        .form_post(
            &as_owner,
            &components,
            &[
                ("name", "Batch jobs"),
                ("status", "operational"),
                ("visibility", "public"),
                ("only_show_if_degraded", "on"),
                ("start_date", "2026-01-15"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let (_, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/pages/{}/components", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    let batch = body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Batch jobs")
        .unwrap()
        .clone();
    assert_eq!(batch["showcase"], false, "{batch}");
    assert_eq!(batch["only_show_if_degraded"], true, "{batch}");
    assert_eq!(batch["start_date"], "2026-01-15", "{batch}");
    let (status, html) = app
        .page_get(
            &as_owner,
            &format!("{components}/{}/edit", batch["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"value="2026-01-15""#), "{html}");
    assert!(
        html.contains(r#"id="only_show_if_degraded" name="only_show_if_degraded" aria-describedby="only_show_if_degraded-hint" checked"#),
        "{html}"
    );

    // Nothing changed.
    let (_, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/pages/{}", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(body["time_zone"], "Etc/UTC", "{body}");
    assert_ne!(body["name"], "Kept name");
    let (_, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/pages/{}", other.page_id),
            Some(&other.token),
            None,
        )
        .await;
    assert_ne!(body["name"], "Mine now");
    app.finish().await;
}
