//! A person's own account on the dashboard: signing up (with the live slug
//! check), the emailed links (verify an address, reset a password), the
//! account page (password, sessions) and switching teams; as a browser
//! walks them, and the refusals as HTTP sees them.

use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, token_in_email, unique_email, unique_ip, unique_slug};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_up_verifies_their_address_and_changes_their_password() {
    let app = TestApp::spawn().await;
    let taken = app.signup().await;
    let browser = app.browser().await;

    browser.goto(&app.url("/signup")).await;
    browser.wait_for("form[action='/signup']").await;
    browser.check_page("accounts-signup").await;
    // The live check says a slug is taken before the form is sent.
    browser.fill("#slug", &taken.slug).await;
    browser.wait_for_text("is taken").await;
    browser.wait_for("#slug-status.taken").await;
    browser.check_page("accounts-signup-taken").await;
    let slug = unique_slug("new");
    browser.fill("#slug", &slug).await;
    browser.wait_for_text("is available").await;

    let email = unique_email("signup");
    browser.fill("#name", "Umbrella Status").await;
    browser.fill("#email", &email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_text("Create my account").await;
    browser.wait_for("nav.side").await;
    browser.wait_for_text("We have emailed").await;
    browser.wait_for_text("Verify your email address").await;

    // The emailed link opens a page that asks for the click (a scanner
    // fetching the link uses nothing).
    app.drain().await;
    let token = token_in_email(&email, "Confirm your email address", 1).await;
    let link = app.url(&format!("/account/verify-email?token={token}"));
    browser.goto(&link).await;
    browser.wait_for_text("One click confirms").await;
    browser.check_page("accounts-verify").await;
    browser.goto(&link).await;
    browser.click_text("Verify my address").await;
    browser.wait_for_text("Address verified").await;
    browser.check_page("accounts-verified").await;
    // Once only.
    browser.goto(&link).await;
    browser.click_text("Verify my address").await;
    browser
        .wait_for_text("This link has been used already")
        .await;
    browser.check_page("accounts-link-used").await;

    browser.goto(&app.url("/account")).await;
    browser.wait_for_text(&email).await;
    browser.wait_for_text("Verified").await;
    assert!(!browser.text().await.contains("Send the link again"));
    browser.check_page("accounts-account").await;

    // A wrong current password is said next to its field.
    let new_password = "a brand new password 42";
    browser.fill("#current_password", "not my password").await;
    browser.fill("#new_password", new_password).await;
    browser.click_text("Change my password").await;
    browser
        .wait_for("#current_password[aria-invalid='true']")
        .await;
    browser
        .wait_for_text("This is not your current password.")
        .await;
    browser.check_page("accounts-account-error").await;
    browser.fill("#current_password", PASSWORD).await;
    browser.fill("#new_password", new_password).await;
    browser.click_text("Change my password").await;
    browser.wait_for_text("Your password is changed").await;

    browser.click_text("Sign out").await;
    browser.wait_for_text("You are signed out.").await;
    browser.fill("#email", &email).await;
    browser.fill("#password", new_password).await;
    browser.click_text("Sign in").await;
    browser.wait_for("nav.side").await;
    browser.wait_for_text("Umbrella Status").await;
    browser.close().await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_who_forgot_their_password_chooses_a_new_one_by_email() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let browser = app.browser().await;
    browser.goto(&app.url("/login")).await;
    browser.click_text("Forgot your password?").await;
    browser
        .wait_for("form[action='/account/forgot-password']")
        .await;
    browser.check_page("accounts-forgot").await;
    browser.fill("#email", &t.email).await;
    browser.click_text("Email me a link").await;
    browser
        .wait_for_text("If an account has that address")
        .await;
    browser.check_page("accounts-forgot-sent").await;

    app.drain().await;
    let token = token_in_email(&t.email, "Reset your password", 2).await;
    let link = app.url(&format!("/account/reset-password?token={token}"));
    browser.goto(&link).await;
    browser
        .wait_for("form[action='/account/reset-password']")
        .await;
    browser.check_page("accounts-reset").await;
    // Too short: said next to the field; the link is not used up.
    browser.fill("#password", "short").await;
    browser.click_text("Save my new password").await;
    browser.wait_for("#password[aria-invalid='true']").await;
    browser.check_page("accounts-reset-error").await;
    let new_password = "remembered at last 2026";
    browser.fill("#password", new_password).await;
    browser.click_text("Save my new password").await;
    browser.wait_for_text("Your password is changed").await;
    browser.fill("#email", &t.email).await;
    browser.fill("#password", new_password).await;
    browser.click_text("Sign in").await;
    browser.wait_for("nav.side").await;

    // The link worked once.
    browser.goto(&link).await;
    browser.fill("#password", "yet another password").await;
    browser.click_text("Save my new password").await;
    browser
        .wait_for_text("This link has been used already")
        .await;
    browser.check_page("accounts-reset-used").await;
    browser.close().await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_in_two_teams_switches_between_them() {
    let app = TestApp::spawn().await;
    let home = app.signup().await;
    let other = app.signup().await;
    sqlx::query("update tenants set name = 'Globex Status' where id = $1::uuid")
        .bind(&other.tenant_id)
        .execute(&app.admin)
        .await
        .unwrap();
    app.join(&other, &home, "editor").await;
    let browser = app.browser().await;
    app.sign_in(&browser, &home.email).await;
    browser.goto(&app.url("/account")).await;
    browser.wait_for_text("Your other teams").await;
    browser.check_page("accounts-account-teams").await;
    browser.click_text("Switch to Globex Status").await;
    browser
        .wait_for_text("You now act for Globex Status.")
        .await;
    assert!(
        browser
            .url()
            .await
            .ends_with(&format!("/dashboard/pages/{}", other.page_id)),
        "{}",
        browser.url().await
    );
    browser.wait_for_text("(editor)").await;
    // And back, through the switcher at the top.
    browser
        .wait_for("#switch-team")
        .await
        .select_by_value(&home.tenant_id)
        .await
        .unwrap();
    browser.click_text("Switch").await;
    browser.wait_for_text("You now act for Acme Cloud.").await;
    browser.wait_for_text("(owner)").await;
    browser.close().await;
    app.finish().await;
}

/// Signs in through the form; answers the session and CSRF cookies.
async fn form_sign_in(app: &TestApp, email: &str, password: &str) -> (String, String) {
    let res = app
        .client
        .post(app.url("/login"))
        .header("x-forwarded-for", unique_ip())
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    (
        cookie(&res, "heliograph_session"),
        cookie(&res, "heliograph_csrf"),
    )
}

fn cookie(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c[name.len() + 1..].split(';').next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// The session id behind a session cookie's token.
async fn session_id(app: &TestApp, token: &str) -> String {
    let (status, me) = app
        .call(reqwest::Method::GET, "/v1/me", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me["session_id"].as_str().unwrap().to_owned()
}

async fn get_as(app: &TestApp, path: &str, session: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("cookie", format!("heliograph_session={session}"))
        .send()
        .await
        .unwrap()
}

async fn post_as(
    app: &TestApp,
    path: &str,
    (session, csrf): &(String, String),
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = vec![("_csrf", csrf)];
    form.extend_from_slice(fields);
    app.client
        .post(app.url(path))
        .header("cookie", format!("heliograph_session={session}"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ending_a_session_signs_it_out_and_touches_nobody_elses() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let stranger = app.signup().await;
    let here = form_sign_in(&app, &t.email, PASSWORD).await;
    let laptop = form_sign_in(&app, &t.email, PASSWORD).await;
    let phone = form_sign_in(&app, &t.email, PASSWORD).await;
    let theirs = form_sign_in(&app, &stranger.email, PASSWORD).await;

    let page = get_as(&app, "/account", &here.0).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let laptop_id = session_id(&app, &laptop.0).await;
    assert!(html.contains(&laptop_id), "the laptop's session is listed");
    assert!(html.contains("This session"));

    // Someone else's session id: nothing of theirs ends.
    let their_id = session_id(&app, &theirs.0).await;
    let res = post_as(
        &app,
        &format!("/account/sessions/{their_id}/end"),
        &here,
        &[],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get_as(&app, "/account", &theirs.0).await.status(),
        StatusCode::OK
    );

    // The laptop's ends: its cookie no longer opens anything.
    let res = post_as(
        &app,
        &format!("/account/sessions/{laptop_id}/end"),
        &here,
        &[],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = get_as(&app, "/account", &laptop.0).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    assert_eq!(
        get_as(&app, "/account", &phone.0).await.status(),
        StatusCode::OK
    );

    // Everywhere else: the phone too, but not here.
    let res = post_as(&app, "/account/sessions/end-others", &here, &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get_as(&app, "/account", &phone.0).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get_as(&app, "/account", &here.0).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get_as(&app, "/account", &theirs.0).await.status(),
        StatusCode::OK
    );

    // Switching to a team one is not in: nothing there (and this session stays).
    let res = post_as(
        &app,
        "/account/switch",
        &here,
        &[("tenant_id", &stranger.tenant_id)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        get_as(&app, "/account", &here.0).await.status(),
        StatusCode::OK
    );
    app.finish().await;
}

#[tokio::test]
async fn the_public_account_forms_refuse_what_does_not_work() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let ip = unique_ip();

    // The live check, for each answer.
    for (slug, state) in [
        (t.slug.as_str(), "taken"),
        ("x", "invalid"),
        ("free-one-here-42", "available"),
    ] {
        let res = app
            .client
            .get(app.url(&format!("/signup/slug?slug={slug}")))
            .header("x-forwarded-for", &ip)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["state"], state, "{slug}: {body}");
    }

    // Without the script, a taken slug comes back as the field's error.
    let res = app
        .client
        .post(app.url("/signup"))
        .header("x-forwarded-for", &ip)
        .form(&[
            ("name", "Copycat"),
            ("slug", t.slug.as_str()),
            ("email", &unique_email("copy")),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(html.contains("This slug is taken"), "{html}");
    assert!(html.contains("id=\"slug-error\""), "{html}");
    assert!(html.contains("value=\"Copycat\""), "what was typed is kept");

    // A link that never was one.
    for path in ["/account/verify-email", "/account/reset-password"] {
        let res = app
            .client
            .post(app.url(path))
            .form(&[
                ("token", "forged.token"),
                ("password", "long enough password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("This link does not work")
        );
    }

    // A malformed address asking for a reset is said next to the field.
    let res = app
        .client
        .post(app.url("/account/forgot-password"))
        .form(&[("email", "not an address")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("email-error"));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_verification_link_says_so_and_the_account_page_sends_another() {
    let app = TestApp::spawn().await;
    let t = app.signup_unverified().await;
    app.drain().await;
    let token = token_in_email(&t.email, "Confirm your email address", 1).await;
    sqlx::query("update account_tokens set expires_at = now() - interval '1 minute' where kind = 'verify_email'")
        .execute(&app.admin)
        .await
        .unwrap();
    let res = app
        .client
        .post(app.url("/account/verify-email"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    assert!(res.text().await.unwrap().contains("This link has expired"));

    // The signup's session still works; its account page sends a new link.
    let res = app
        .client
        .get(app.url("/account"))
        .header("cookie", format!("heliograph_session={}", t.token))
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains("Not verified") && html.contains("Send the link again"));
    let csrf = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let res = post_as(&app, "/account/verification", &(t.token.clone(), csrf), &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.drain().await;
    let fresh = token_in_email(&t.email, "Confirm your email address", 2).await;
    assert_ne!(fresh, token);
    app.finish().await;
}

#[tokio::test]
async fn the_live_slug_check_has_a_budget_of_its_own() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let ip = unique_ip();
    let check = || {
        app.client
            .get(app.url("/signup/slug?slug=free-one-here-42"))
            .header("x-forwarded-for", &ip)
            .send()
    };
    // Sixty checks a minute from one address: more than sign-in's thirty.
    for n in 1..=60 {
        let res = check().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "check {n}");
    }
    let res = check().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    // Typing a slug spent nothing of the address's sign-in budget.
    let res = app
        .client
        .post(app.url("/login"))
        .header("x-forwarded-for", &ip)
        .form(&[("email", t.email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.finish().await;
}
