//! The team dashboard's frame, as a browser and as HTTP see it: signing in
//! and out, the headers every page carries, the CSRF and origin checks of
//! form posts, the renewal of an expired session token, errors as pages,
//! and the dashboard's absence from page hosts. The journeys through each
//! section have modules of their own (`dashboard_*`).

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, HOST, LOCATION, SET_COOKIE};

use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn a_person_signs_in_sees_the_page_overview_and_signs_out() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    app.component(&t, "Website").await;
    let browser = app.browser().await;

    // Not signed in: the dashboard asks for it, and comes back afterwards.
    browser.goto(&app.url("/dashboard")).await;
    browser.wait_for("form[action='/login']").await;
    assert!(browser.url().await.contains("/login?next=%2Fdashboard"));
    browser.check_page("sign-in").await;

    // A wrong password is said next to the field, and the address is kept.
    browser.fill("#email", &t.email).await;
    browser.fill("#password", "not the password").await;
    browser.click_text("Sign in").await;
    browser.wait_for("#password[aria-invalid='true']").await;
    browser
        .wait_for_text("The email or the password is wrong")
        .await;
    let kept = browser
        .wait_for("#email")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept, t.email);
    browser.check_page("sign-in-error").await;

    browser.fill("#password", PASSWORD).await;
    browser.click_text("Sign in").await;
    browser.wait_for("nav.side").await;
    assert!(
        browser
            .url()
            .await
            .ends_with(&format!("/dashboard/pages/{}", t.page_id)),
        "{}",
        browser.url().await
    );
    browser.wait_for_text("Website").await;
    browser.check_page("overview").await;

    browser.click_text("Sign out").await;
    browser.wait_for_text("You are signed out.").await;
    browser.goto(&app.url("/dashboard")).await;
    browser.wait_for("form[action='/login']").await;
    // And in again.
    app.sign_in(&browser, &t.email).await;
    browser.wait_for_text("Website").await;
    browser.close().await;
    app.finish().await;
}

#[tokio::test]
async fn the_dashboard_works_from_the_keyboard_alone_with_a_visible_focus() {
    const TAB: &str = "\u{e004}";
    const ENTER: &str = "\u{e007}";
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let browser = app.browser().await;
    browser.goto(&app.url("/login")).await;
    // The sign-in form's first field takes the focus (autofocus), or is
    // reached by Tab after the skip link and the brand; Tab goes from field
    // to field, Enter sends.
    for _ in 0..3 {
        if browser.focused().await.0 == "email" {
            break;
        }
        browser.keys(TAB).await;
    }
    assert_eq!(browser.focused().await.0, "email");
    browser.keys(&t.email).await;
    browser.keys(TAB).await;
    assert_eq!(browser.focused().await.0, "password");
    browser.keys(PASSWORD).await;
    browser.keys(ENTER).await;
    browser.wait_for("nav.side").await;
    // The first Tab reaches "Skip to content", which takes the focus to the content.
    browser.keys(TAB).await;
    let (skip, visible) = browser.focused().await;
    assert_eq!(skip, "A:Skip to content");
    assert!(visible, "the focus is visible on the skip link");
    // Every link and button of the header and the navigation shows where the focus is.
    for _ in 0..12 {
        browser.keys(TAB).await;
        let (what, visible) = browser.focused().await;
        assert!(visible, "the focus on {what} cannot be seen");
    }
    browser
        .goto(&app.url(&format!("/dashboard/pages/{}", t.page_id)))
        .await;
    browser.keys(TAB).await;
    browser.keys(ENTER).await;
    assert_eq!(browser.focused().await.0, "main");
    browser.keys(TAB).await;
    let (first, visible) = browser.focused().await;
    assert_eq!(
        first, "A:Open an incident",
        "the content's first control follows"
    );
    assert!(visible);
    browser.close().await;
    app.finish().await;
}

#[tokio::test]
async fn every_dashboard_answer_carries_a_strict_policy_and_is_never_cached() {
    let app = TestApp::spawn().await;
    for path in [
        "/login",
        "/dashboard/assets/dashboard.css",
        "/dashboard/nothing-here",
    ] {
        let res = app.get(path, None).await;
        let csp = res
            .headers()
            .get(CONTENT_SECURITY_POLICY)
            .unwrap_or_else(|| panic!("{path} has no CSP"))
            .to_str()
            .unwrap()
            .to_owned();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(res.headers()["x-frame-options"], "DENY", "{path}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{path}");
    }
    let login = app.get("/login", None).await;
    assert_eq!(login.headers()["cache-control"], "no-store");
    let html = login.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains(" style=") && !html.contains("<style"),
        "no inline script or style: {html}"
    );
    app.finish().await;
}

/// Signs in through the form; answers the session and CSRF cookies.
async fn form_sign_in(app: &TestApp, email: &str) -> (String, String) {
    form_sign_in_with(app, email, PASSWORD).await
}

/// Signs in through the form with `password`.
async fn form_sign_in_with(app: &TestApp, email: &str, password: &str) -> (String, String) {
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = |name: &str| {
        res.headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c[name.len() + 1..].split(';').next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {name} cookie"))
    };
    (cookie("heliograph_session"), cookie("heliograph_csrf"))
}

#[tokio::test]
async fn a_form_post_needs_the_sessions_csrf_field_and_our_own_origin() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (session, csrf) = form_sign_in(&app, &t.email).await;
    let post = |fields: Vec<(&'static str, String)>, origin: Option<&'static str>| {
        let mut req = app
            .client
            .post(app.url("/logout"))
            .header("cookie", format!("heliograph_session={session}"))
            .form(&fields);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send()
    };
    // No token, a wrong token, another site: refused, with a page that says so.
    for (fields, origin) in [
        (vec![], None),
        (vec![("_csrf", "forged".to_owned())], None),
        (vec![("_csrf", csrf.clone())], Some("https://evil.example")),
    ] {
        let res = post(fields, origin).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let page = res.text().await.unwrap();
        assert!(page.contains("This form has expired"), "{page}");
    }
    // The session survived them all; the genuine form ends it.
    let res = post(vec![("_csrf", csrf.clone())], None).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/login");
    let after = app
        .client
        .get(app.url("/dashboard"))
        .header("cookie", format!("heliograph_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert!(
        after.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login?next=")
    );
    app.finish().await;
}

#[tokio::test]
async fn a_form_that_cannot_be_read_is_a_page_that_says_so_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (session, csrf) = form_sign_in(&app, &t.email).await;
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/components", t.page_id),
            Some(&t.token),
            &serde_json::json!({"component": {"name": "API"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    let path = format!("/dashboard/pages/{}/components/{id}", t.page_id);
    for (action, content_type, form) in [
        // A position that is not a number; a body that is not a form.
        (
            format!("{path}/position"),
            "application/x-www-form-urlencoded",
            format!("_csrf={csrf}&position=first"),
        ),
        (path.clone(), "text/plain", "name=Renamed".to_owned()),
    ] {
        let res = app
            .client
            .post(app.url(&format!("{action}?_csrf={csrf}")))
            .header("cookie", format!("heliograph_session={session}"))
            .header("content-type", content_type)
            .body(form.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{content_type}"
        );
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let page = res.text().await.unwrap();
        assert!(page.contains("The form could not be read"), "{page}");
    }
    let (_, component) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/pages/{}/components/{id}", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(component["name"], "API");
    app.finish().await;
}

#[tokio::test]
async fn an_expired_session_token_is_renewed_while_its_session_is_open() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (session, _) = form_sign_in(&app, &t.email).await;
    // The same session, in a token that expired twenty minutes ago.
    let keys = heliograph_auth::TokenKeys::new(
        &app.config.jwt_secret,
        app.config.urls.origin(),
        time::Duration::minutes(-20),
    )
    .unwrap();
    let fresh = heliograph_auth::TokenKeys::new(
        &app.config.jwt_secret,
        app.config.urls.origin(),
        time::Duration::minutes(15),
    )
    .unwrap();
    let claims = fresh.verify(&session).unwrap();
    let expired = keys.issue(claims.sub, claims.tid, claims.sid).unwrap();
    let res = app
        .client
        .get(app.url(&format!("/dashboard/pages/{}", t.page_id)))
        .header("cookie", format!("heliograph_session={expired}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let renewed = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("heliograph_session="))
        .expect("a renewed session cookie");
    let token = renewed["heliograph_session=".len()..]
        .split(';')
        .next()
        .unwrap();
    assert_eq!(fresh.verify(token).unwrap().sid, claims.sid);

    // Once the session is ended, an expired token is not renewed.
    sqlx::query("update sessions set revoked_at = now() where id = $1")
        .bind(claims.sid.as_uuid())
        .execute(&app.admin)
        .await
        .unwrap();
    let res = app
        .client
        .get(app.url(&format!("/dashboard/pages/{}", t.page_id)))
        .header("cookie", format!("heliograph_session={expired}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.finish().await;
}

#[tokio::test]
async fn another_tenants_page_is_not_found_and_the_dashboard_is_not_on_page_hosts() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let other = app.signup().await;
    let (session, _) = form_sign_in(&app, &t.email).await;
    let res = app
        .client
        .get(app.url(&format!("/dashboard/pages/{}", other.page_id)))
        .header("cookie", format!("heliograph_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("Not found"));

    // A page host answers its public page's own not-found, never a sign-in form.
    let res = app
        .client
        .get(app.url("/login"))
        .header(HOST, format!("{}.heliograph.test", t.slug))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(!res.text().await.unwrap().contains("form"));
    app.finish().await;
}

#[tokio::test]
async fn the_demo_tenant_signs_in_with_the_credentials_up_prints() {
    let app = TestApp::spawn().await;
    assert!(heliograph_api::seed::demo(&app.store).await.unwrap());
    // What `deploy/dev up` prints: demo@example.com and the seed's password.
    let (session, _) = form_sign_in_with(
        &app,
        "demo@example.com",
        heliograph_api::seed::DEMO_PASSWORD,
    )
    .await;
    let landing = app
        .client
        .get(app.url("/dashboard"))
        .header("cookie", format!("heliograph_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(landing.status(), StatusCode::SEE_OTHER);
    let overview = landing.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(overview.starts_with("/dashboard/pages/"), "{overview}");
    let page = app
        .client
        .get(app.url(&overview))
        .header("cookie", format!("heliograph_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Open incidents"));
    app.finish().await;
}
