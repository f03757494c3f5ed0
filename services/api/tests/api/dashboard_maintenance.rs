//! Maintenance, postmortems on the dashboard: a person schedules a
//! maintenance in the page's time zone and finds it placed in UTC as the
//! date's offset says; writes, previews and publishes a postmortem the
//! public page then shows. And the refusals, over HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp};

/// Sets the page's time zone through the REST API.
async fn zone(app: &TestApp, t: &Tenant, name: &str) {
    let res = app
        .client
        .patch(app.url(&format!("/v1/pages/{}", t.page_id)))
        .bearer_auth(&t.token)
        .json(&json!({"page": {"time_zone": name}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Sets a `datetime-local` field as the browser's picker would.
async fn set_local(browser: &heliograph_testkit::Browser, css: &str, value: &str) {
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

async fn get_json(app: &TestApp, t: &Tenant, path: &str) -> Value {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_schedules_maintenance_in_the_pages_zone_and_publishes_a_postmortem() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    zone(&app, &t, "Europe/Paris").await;
    // Mid-July next year: Paris is on summer time (UTC+2).
    let year = time::OffsetDateTime::now_utc().year() + 1;
    let browser = app.browser().await;
    app.sign_in(&browser, &t.email).await;
    let base = format!("/dashboard/pages/{}", t.page_id);

    // The list, empty; the form, its window in the page's zone.
    browser.goto(&app.url(&format!("{base}/maintenance"))).await;
    browser.wait_for_text("No maintenance scheduled.").await;
    browser.check_page("maintenance-list-empty").await;
    browser.click_text("Schedule maintenance").await;
    browser.wait_for_text("Starts (Europe/Paris)").await;
    browser.check_page("maintenance-new").await;
    browser.fill("#name", "Database upgrade").await;
    browser.fill("#body", "We upgrade the database.").await;
    // A start that never happens in Paris (the clocks skip 02:00–03:00 on
    // the last Sunday of March) is refused next to the field.
    set_local(
        &browser,
        "#scheduled_for",
        &format!("{}-03-{}T02:30", year, last_sunday_of_march(year)),
    )
    .await;
    set_local(&browser, "#scheduled_until", &format!("{year}-07-15T11:00")).await;
    browser.click(&format!("#affected-{api}")).await;
    browser.click_text("Schedule maintenance").await;
    browser
        .wait_for("#scheduled_for[aria-invalid='true']")
        .await;
    browser
        .wait_for_text("does not exist in Europe/Paris")
        .await;
    browser.check_page("maintenance-new-error").await;
    set_local(&browser, "#scheduled_for", &format!("{year}-07-15T10:00")).await;
    browser.click_text("Schedule maintenance").await;
    browser
        .wait_for_text("Maintenance “Database upgrade” scheduled.")
        .await;
    browser
        .wait_for_text(&format!(
            "{year}-07-15 10:00 – {year}-07-15 11:00 Europe/Paris ({year}-07-15 08:00 UTC – {year}-07-15 09:00 UTC)"
        ))
        .await;
    browser.check_page("maintenance-incident").await;

    // The API reads it back in UTC, as the date's offset says.
    let listed = get_json(&app, &t, &format!("/v1/pages/{}/incidents", t.page_id)).await;
    let m = &listed.as_array().unwrap()[0];
    assert_eq!(m["status"], "scheduled");
    assert_eq!(
        m["scheduled_for"],
        format!("{year}-07-15T08:00:00.000Z"),
        "{m}"
    );
    assert_eq!(
        m["scheduled_until"],
        format!("{year}-07-15T09:00:00.000Z"),
        "{m}"
    );
    assert_eq!(m["scheduled_auto_in_progress"], true);
    assert_eq!(m["scheduled_auto_completed"], true);

    // The list shows it under "Scheduled".
    browser.goto(&app.url(&format!("{base}/maintenance"))).await;
    browser.wait_for_text("Database upgrade").await;
    let text = browser.text().await;
    let scheduled = text.find("Scheduled\n").expect("a Scheduled heading");
    let past = text.find("Past\n").expect("a Past heading");
    let at = text.find("Database upgrade").unwrap();
    assert!(scheduled < at && at < past, "{text}");
    browser.check_page("maintenance-list").await;

    // A postmortem on a resolved incident: written, previewed, published.
    let (status, resolved) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Login outage", "status": "resolved", "body": "Fixed.", "deliver_notifications": false}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resolved}");
    let id = resolved["id"].as_str().unwrap().to_owned();
    browser
        .goto(&app.url(&format!("{base}/incidents/{id}")))
        .await;
    browser.wait_for_text("No postmortem yet.").await;
    browser
        .fill(
            "#body_draft",
            "A certificate expired.\nWe now renew them a month ahead.",
        )
        .await;
    browser.click_text("Save draft and preview").await;
    browser.wait_for_text("Postmortem draft saved.").await;
    browser.wait_for(".postmortem-preview br").await;
    browser
        .wait_for_text("Not public until you publish it.")
        .await;
    browser.check_page("maintenance-postmortem-draft").await;
    let public = format!("/status/{}/incidents/{id}", t.slug);
    browser.click_text("Publish postmortem").await;
    browser.wait_for_text("Postmortem published.").await;
    browser.wait_for_text("The public page shows it.").await;
    browser.check_page("maintenance-postmortem-published").await;
    let pm = get_json(
        &app,
        &t,
        &format!("/v1/pages/{}/incidents/{id}/postmortem", t.page_id),
    )
    .await;
    assert!(pm["published_at"].is_string(), "{pm}");
    assert_eq!(
        pm["body"].as_str().map(|b| b.replace("\r\n", "\n")),
        Some("A certificate expired.\nWe now renew them a month ahead.".to_owned())
    );
    let html = app.get(&public, None).await.text().await.unwrap();
    assert!(
        html.contains("A certificate expired.<br/>We now renew them a month ahead."),
        "{html}"
    );

    browser.close().await;
    app.drain().await;
    app.finish().await;
}

/// The day of the last Sunday of March in `year`.
fn last_sunday_of_march(year: i32) -> u8 {
    let last = time::Date::from_calendar_date(year, time::Month::March, 31).unwrap();
    31 - last.weekday().number_days_from_sunday()
}

#[tokio::test]
async fn viewers_cannot_schedule_and_a_time_the_clocks_skip_is_refused_at_its_field() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let viewer = app.signup().await;
    app.join(&t, &viewer, "viewer").await;
    zone(&app, &t, "Europe/Paris").await;
    let year = time::OffsetDateTime::now_utc().year() + 1;
    let day = last_sunday_of_march(year);
    let path = format!("/dashboard/pages/{}/maintenance", t.page_id);

    let (cookie, csrf) = app.form_session(&t.email, &t.tenant_id).await;
    let res = app
        .client
        .post(app.url(&path))
        .header("cookie", &cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "Night work"),
            ("scheduled_for", &format!("{year}-03-{day:02}T02:30")),
            ("scheduled_until", &format!("{year}-03-{day:02}T04:00")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"scheduled_for-error\""), "{html}");
    assert!(html.contains("does not exist in Europe/Paris"), "{html}");
    assert!(html.contains("value=\"Night work\""), "kept: {html}");
    // Without a window it is refused too, not opened as an incident.
    let res = app
        .client
        .post(app.url(&path))
        .header("cookie", &cookie)
        .form(&[("_csrf", csrf.as_str()), ("name", "No window")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("id=\"scheduled_for-error\"")
    );

    let (cookie, csrf) = app.form_session(&viewer.email, &t.tenant_id).await;
    let res = app
        .client
        .get(app.url(&format!("{path}/new")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .client
        .post(app.url(&path))
        .header("cookie", &cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "Not mine"),
            ("scheduled_for", &format!("{year}-07-15T10:00")),
            ("scheduled_until", &format!("{year}-07-15T11:00")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .client
        .get(app.url(&path))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let listed = get_json(&app, &t, &format!("/v1/pages/{}/incidents", t.page_id)).await;
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");

    // Postmortems: a viewer may not write one; an empty one is refused at
    // its field.
    let (_, resolved) = app
        .post(
            &format!("/v1/pages/{}/incidents", t.page_id),
            Some(&t.token),
            &json!({"incident": {"name": "Done", "status": "resolved", "deliver_notifications": false}}),
        )
        .await;
    let pm = format!(
        "/dashboard/pages/{}/incidents/{}/postmortem",
        t.page_id,
        resolved["id"].as_str().unwrap()
    );
    for action in [pm.clone(), format!("{pm}/publish"), format!("{pm}/delete")] {
        let res = app
            .client
            .post(app.url(&action))
            .header("cookie", &cookie)
            .form(&[("_csrf", csrf.as_str()), ("body_draft", "Mine")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{action}");
    }
    let (cookie, csrf) = app.form_session(&t.email, &t.tenant_id).await;
    let res = app
        .client
        .post(app.url(&pm))
        .header("cookie", &cookie)
        .form(&[("_csrf", csrf.as_str()), ("body_draft", "  ")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("id=\"body_draft-error\"")
    );
    app.finish().await;
}
