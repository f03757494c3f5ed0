//! The dashboard's custom domains, API keys and audit log: a person adds a
//! hostname, copies the records it shows, checks it against a real DNS
//! server and sees the page served on it; makes an API key (its secret
//! shown once), uses and revokes it; and finds that in the audit log.
//! Plus the refusals: an editor may not add a domain or see the keys, and
//! another tenant's domain is not found.

use heliograph_testkit::{Browser, BrowserOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::domains::unique_host;
use crate::helpers::{
    CNAME_TARGET, DnsServer, PASSWORD, Tenant, TestApp, cname_record, txt_record, unique_ip,
};

/// The text of the element `css`.
async fn text_of(browser: &Browser, css: &str) -> String {
    browser.wait_for(css).await.text().await.unwrap()
}

/// Opens `url` until the page says `needle` (a cache may serve the page
/// from before the change for a moment).
async fn open_until(browser: &Browser, url: &str, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        browser.goto(url).await;
        let text = browser.text().await;
        if text.contains(needle) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} never said {needle:?}; it says:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Accepts the confirm dialog a `data-confirm` form opens.
async fn accept_confirm(browser: &Browser) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match browser.client().accept_alert().await {
            Ok(()) => return,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "no dialog: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_custom_domain_is_verified_from_the_dashboard_and_an_api_key_is_made_used_and_revoked() {
    let mut dns = DnsServer::start(&[]);
    let app = TestApp::spawn_with_dns(dns.addr).await;
    let t = app.signup().await;
    let host = unique_host();
    let browser = Browser::start_with(BrowserOptions {
        host_rules: Some(format!("MAP {host} 127.0.0.1")),
    })
    .await;
    browser
        .send_headers(&[("x-forwarded-for", &unique_ip())])
        .await;
    app.sign_in(&browser, &t.email).await;

    // The list, empty; then a bad name is refused at its field.
    browser.click_text("Custom domain").await;
    browser.wait_for_text("No custom domain yet").await;
    browser.check_page("domains-list-empty").await;
    browser.fill("#hostname", "not a host").await;
    browser.click_text("Add hostname").await;
    browser.wait_for("#hostname[aria-invalid='true']").await;
    browser.check_page("domains-list-error").await;

    // Added: the two records, each part with its copy button.
    browser.fill("#hostname", &host).await;
    browser.click_text("Add hostname").await;
    browser.wait_for_text("create the two records below").await;
    assert_eq!(text_of(&browser, "#record-1-name").await, host);
    assert_eq!(text_of(&browser, "#record-1-value").await, CNAME_TARGET);
    let txt_name = text_of(&browser, "#record-2-name").await;
    assert_eq!(txt_name, format!("_heliograph.{host}"));
    let token = text_of(&browser, "#record-2-value").await;
    assert_eq!(token.len(), 32);
    // dashboard.js shows each copy button.
    for part in [
        "record-1-name",
        "record-1-value",
        "record-2-name",
        "record-2-value",
    ] {
        browser
            .wait_for(&format!("button[data-copy='{part}']:not([hidden])"))
            .await;
    }
    browser.wait_for_text("Waiting for the TXT record").await;
    let domain_url = browser.url().await;
    browser.check_page("domains-show-pending").await;

    // The first check finds nothing: said in words.
    app.drain().await;
    open_until(&browser, &domain_url, "TXT record not found").await;

    // The right records, "Check now": verified.
    dns.set_records(&[
        txt_record(&txt_name, &token),
        cname_record(&host, CNAME_TARGET),
    ]);
    browser.click_text("Check now").await;
    // The flash is on the next page (the old one may still be going away).
    browser.wait_for(".flash").await;
    browser.wait_for_text("Check requested").await;
    app.drain().await;
    open_until(
        &browser,
        &domain_url,
        "Verified — certificate issued on first visit",
    )
    .await;
    browser.wait_for_text("Both records found and right").await;
    browser.check_page("domains-show-verified").await;

    // And the public page is served on the hostname.
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let page: Value = app
        .client
        .get(app.url(&format!("/v1/pages/{}", t.page_id)))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page_name = page["name"].as_str().unwrap().to_owned();
    open_until(&browser, &format!("http://{host}:{port}/"), &page_name).await;
    assert!(!browser.text().await.contains("Custom domains"));

    // An API key: the secret shown once, with a copy button and a warning.
    browser.goto(&app.url("/dashboard/api-keys")).await;
    browser.wait_for_text("No API keys yet").await;
    browser.check_page("keys-list-empty").await;
    browser.fill("#name", "monitoring").await;
    browser.click_text("Create key").await;
    browser.wait_for_text("it is shown only this once").await;
    let secret = text_of(&browser, "#new-key-secret").await;
    assert!(secret.starts_with("hg_"), "{secret}");
    browser
        .wait_for("button[data-copy='new-key-secret']:not([hidden])")
        .await;
    browser.check_page("keys-created").await;
    let with_key = || async {
        app.client
            .get(app.url("/v1/pages"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(with_key().await, StatusCode::OK);

    // Shown once: the list never shows it again.
    browser.goto(&app.url("/dashboard/api-keys")).await;
    browser.wait_for_text("monitoring").await;
    assert!(!browser.text().await.contains(&secret));
    assert!(!browser.text().await.contains("shown only this once"));
    browser.check_page("keys-list").await;

    // Revoked (after the confirm dialog): the key no longer works.
    browser.click_text("Revoke monitoring").await;
    accept_confirm(&browser).await;
    browser.wait_for(".flash").await;
    browser
        .wait_for_text("revoked — it stops working at once")
        .await;
    assert_eq!(with_key().await, StatusCode::UNAUTHORIZED);

    // The audit log has it all, and filters by action.
    browser.goto(&app.url("/dashboard/audit-log")).await;
    browser.wait_for_text("api_key.created").await;
    browser.wait_for_text("domain.created").await;
    browser.check_page("audit-log").await;
    browser.fill("#action", "api_key.created").await;
    browser.click_text("Filter").await;
    browser.wait_for("#action[value='api_key.created']").await;
    let text = browser.text().await;
    assert!(text.contains("api_key.created"), "{text}");
    assert!(!text.contains("domain.created"), "{text}");
    assert!(!text.contains("api_key.revoked"), "{text}");
    assert_eq!(
        text_of(&browser, "tbody tr td:nth-child(2)").await,
        t.email,
        "the actor is named"
    );
    browser.check_page("audit-log-filtered").await;

    // Deleting the domain asks first.
    browser.goto(&domain_url).await;
    browser.click_text(&format!("Delete {host}")).await;
    accept_confirm(&browser).await;
    browser.wait_for_text("No custom domain yet").await;

    browser.close().await;
    app.finish().await;
}

/// A session of `person` in `tenant` (joined first with `role`, if
/// given): its cookie value and CSRF token.
async fn session_in(
    app: &TestApp,
    tenant: &Tenant,
    person: &Tenant,
    role: Option<&str>,
) -> (String, String) {
    if let Some(role) = role {
        app.join(tenant, person, role).await;
    }
    let (status, body) = app
        .post(
            "/v1/sessions",
            None,
            &json!({"email": person.email, "password": PASSWORD, "tenant_id": tenant.tenant_id}),
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
    session: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("cookie", format!("heliograph_session={session}"))
        .form(fields)
        .send()
        .await
        .unwrap()
}

async fn page_get(app: &TestApp, session: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("cookie", format!("heliograph_session={session}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn editors_may_not_add_domains_or_see_keys_and_another_tenants_domain_is_not_found() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let editor = app.signup().await;
    let (session, csrf) = session_in(&app, &t, &editor, Some("editor")).await;
    let domains = format!("/dashboard/pages/{}/domains", t.page_id);

    // An editor sees the list, without the form, and may not add.
    let list = page_get(&app, &session, &domains).await;
    assert_eq!(list.status(), StatusCode::OK);
    assert!(!list.text().await.unwrap().contains("Add hostname"));
    let res = form_post(
        &app,
        &session,
        &domains,
        &[("_csrf", &csrf), ("hostname", &unique_host())],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("Not allowed"));
    for res in [
        page_get(&app, &session, "/dashboard/api-keys").await,
        form_post(
            &app,
            &session,
            "/dashboard/api-keys",
            &[("_csrf", &csrf), ("name", "x")],
        )
        .await,
        page_get(&app, &session, "/dashboard/audit-log").await,
    ] {
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }

    // The owner adds one; a bad name comes back at its field (422).
    let (owner, owner_csrf) = session_in(&app, &t, &t, None).await;
    let res = form_post(
        &app,
        &owner,
        &domains,
        &[("_csrf", &owner_csrf), ("hostname", "localhost")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("hostname-error") && html.contains("at least two labels"),
        "{html}"
    );
    let res = form_post(
        &app,
        &owner,
        &domains,
        &[("_csrf", &owner_csrf), ("hostname", &unique_host())],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let at = res.headers()["location"].to_str().unwrap().to_owned();
    let id = at.rsplit('/').next().unwrap().to_owned();
    assert_eq!(page_get(&app, &owner, &at).await.status(), StatusCode::OK);

    // Another tenant: its own page with this id, or this page, is not found.
    let other = app.signup().await;
    let (stranger, stranger_csrf) = session_in(&app, &other, &other, None).await;
    for path in [
        format!("/dashboard/pages/{}/domains/{id}", other.page_id),
        format!("/dashboard/pages/{}/domains/{id}/state", other.page_id),
        format!("/dashboard/pages/{}/domains/{id}", t.page_id),
    ] {
        assert_eq!(
            page_get(&app, &stranger, &path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let res = form_post(
        &app,
        &stranger,
        &format!("/dashboard/pages/{}/domains/{id}/verify", other.page_id),
        &[("_csrf", &stranger_csrf)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = form_post(
        &app,
        &stranger,
        &format!("/dashboard/pages/{}/domains/{id}/delete", other.page_id),
        &[("_csrf", &stranger_csrf)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // The state the page polls: the words, as JSON.
    let state: Value = page_get(&app, &owner, &format!("{at}/state"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(state["status"], "pending");
    assert_eq!(state["pending"], true);
    // (Its first check may have run already: no DNS server answers here.)
    assert!(
        state["headline"]
            .as_str()
            .unwrap()
            .starts_with("Waiting for the "),
        "{state}"
    );
    app.drain().await;
    app.finish().await;
}

#[tokio::test]
async fn a_domain_page_says_where_a_wrong_cname_points_until_a_check_passes() {
    let mut dns = DnsServer::start(&[]);
    let app = TestApp::spawn_with_dns(dns.addr).await;
    let t = app.signup().await;
    let (_, d) = crate::domains::add(&app, &t, &unique_host()).await;
    let id = d["id"].as_str().unwrap();
    let host = d["hostname"].as_str().unwrap();
    let right = crate::domains::right_records(&d);
    app.drain().await;
    let (owner, _) = session_in(&app, &t, &t, None).await;
    let at = format!("/dashboard/pages/{}/domains/{id}", t.page_id);

    dns.set_records(&[right[0].clone(), cname_record(host, "elsewhere.test")]);
    crate::domains::verify(&app, &t, id).await;
    let res = page_get(&app, &owner, &at).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!(
            "CNAME points to elsewhere.test, not to {CNAME_TARGET}"
        )),
        "{html}"
    );

    // A passing check forgets the name it saw.
    dns.set_records(&right);
    crate::domains::verify(&app, &t, id).await;
    let html = page_get(&app, &owner, &at).await.text().await.unwrap();
    assert!(html.contains("Both records found and right"), "{html}");
    assert!(!html.contains("elsewhere.test"), "{html}");
    app.finish().await;
}
