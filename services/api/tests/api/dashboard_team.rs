//! The team on the dashboard: inviting by email, the emailed link that makes
//! an account (or asks an existing one's password) and signs in, roles and
//! the last owner, removal, and resending and withdrawing invitations; as
//! two browsers see it, and the refusals as HTTP sees them.

use heliograph_testkit::Browser;
use reqwest::header::SET_COOKIE;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    PASSWORD, TestApp, assert_tables_fit_a_phone, emails_to, unique_email, unique_ip, unique_slug,
};

const SUBJECT: &str = "Join Acme Cloud on Heliograph";

/// The invitation links emailed to `to` so far (after the jobs ran), as
/// this test's server serves them, oldest first; waits for at least `n`.
async fn invitation_links(app: &TestApp, to: &str, n: usize) -> Vec<String> {
    app.drain().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let links: Vec<String> = emails_to(to, 1)
            .await
            .iter()
            .filter(|m| m["subject"] == SUBJECT)
            .filter_map(|m| m["text"].as_str())
            .filter_map(|text| {
                let start = text.find("http://heliograph.test/account/accept-invitation")?;
                text[start..].split_whitespace().next().map(str::to_owned)
            })
            .map(|link| link.replace("http://heliograph.test", &app.address))
            .collect();
        if links.len() >= n {
            return links;
        }
        assert!(std::time::Instant::now() < deadline, "{links:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The user id of the member `email` of `t`.
async fn user_id(app: &TestApp, token: &str, email: &str) -> String {
    let (_, members) = app
        .call(Method::GET, "/v1/members", Some(token), None)
        .await;
    members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == email)
        .unwrap_or_else(|| panic!("{email} in {members}"))["user_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits for the page an action leads to, with its flash message: the
/// page shown before had none (a page's text read while the next one loads
/// would be read from a page that is going away).
async fn after_action(browser: &Browser, message: &str) {
    browser.wait_for(".flash").await;
    browser.wait_for_text(message).await;
}

async fn invite_in_browser(app: &TestApp, browser: &Browser, email: &str, role: &str) {
    browser.goto(&app.url("/dashboard/team")).await;
    browser.fill("#email", email).await;
    browser
        .click(&format!("input[name=role][value={role}]"))
        .await;
    browser.click_text("Send invitation").await;
    after_action(browser, &format!("Invitation sent to {email} as {role}.")).await;
}

#[tokio::test]
async fn an_owner_invites_a_teammate_who_joins_changes_role_and_is_removed() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let owner = app.browser().await;
    app.sign_in(&owner, &t.email).await;
    owner.goto(&app.url("/dashboard/team")).await;
    owner.wait_for_text("Invite someone").await;
    owner.check_page("team").await;

    // Invite a teammate as editor.
    let mate = unique_email("mate");
    invite_in_browser(&app, &owner, &mate, "editor").await;
    owner.wait_for_text("Pending invitations").await;
    owner.check_page("team-invited").await;
    // On a phone the members and invitations stack, a card a row.
    assert_tables_fit_a_phone(&owner, "team-invited").await;

    // The teammate opens the emailed link in a browser of their own, sets
    // a password, and lands on the dashboard signed in as editor.
    let link = invitation_links(&app, &mate, 1).await.remove(0);
    let teammate = app.browser().await;
    teammate.goto(&link).await;
    teammate.wait_for_text("Join Acme Cloud").await;
    teammate.wait_for_text("as editor").await;
    teammate.check_page("team-accept").await;
    // Too short a password is said next to the field.
    teammate.fill("#password", "short").await;
    teammate.click_text("Create my account and join").await;
    teammate.wait_for("#password[aria-invalid='true']").await;
    teammate.check_page("team-accept-error").await;
    teammate.fill("#password", PASSWORD).await;
    teammate.click_text("Create my account and join").await;
    teammate.wait_for("nav.side").await;
    teammate.wait_for_text("(editor)").await;
    // Landing says where they are and as what.
    teammate
        .wait_for_text("Welcome to Acme Cloud: you are an editor.")
        .await;
    // The link is used up.
    let used = app.client.get(&link).send().await.unwrap();
    assert_eq!(used.status(), StatusCode::GONE);
    assert!(
        used.text()
            .await
            .unwrap()
            .contains("This invitation has been accepted")
    );
    // And the new account signs out and in again.
    teammate.click_text("Sign out").await;
    teammate.wait_for("form[action='/login']").await;
    teammate.wait_for_text("You are signed out.").await;
    app.sign_in(&teammate, &mate).await;
    teammate.wait_for_text("(editor)").await;

    // The owner's team page lists them; the owner makes them a viewer.
    owner.goto(&app.url("/dashboard/team")).await;
    owner.wait_for_text(&mate).await;
    let mate_id = user_id(&app, &t.token, &mate).await;
    owner
        .wait_for(&format!("#role-{mate_id}"))
        .await
        .select_by_value("viewer")
        .await
        .unwrap();
    owner.click_text(&format!("Change role of {mate}")).await;
    after_action(&owner, "Role changed.").await;
    teammate.goto(&app.url("/dashboard/team")).await;
    teammate.wait_for_text("(viewer)").await;
    assert!(!teammate.text().await.contains("Invite someone"));
    teammate.check_page("team-as-viewer").await;

    // The last owner stays one: the refusal is said on the team page.
    let owner_id = user_id(&app, &t.token, &t.email).await;
    owner
        .wait_for(&format!("#role-{owner_id}"))
        .await
        .select_by_value("admin")
        .await
        .unwrap();
    owner
        .click_text(&format!("Change role of {}", t.email))
        .await;
    owner.wait_for(".error-summary").await;
    owner
        .wait_for_text("A tenant keeps at least one owner.")
        .await;
    owner.check_page("team-last-owner").await;

    // Removing asks first; then the teammate's session here is over.
    owner.click_text(&format!("Remove {mate}")).await;
    owner.client().accept_alert().await.unwrap();
    after_action(&owner, "Member removed").await;
    assert!(!owner.text().await.contains(&mate));
    teammate.goto(&app.url("/dashboard/team")).await;
    teammate.wait_for("form[action='/login']").await;

    // A withdrawn invitation's link says so.
    let gone = unique_email("gone");
    invite_in_browser(&app, &owner, &gone, "viewer").await;
    let gone_link = invitation_links(&app, &gone, 1).await.remove(0);
    owner.goto(&app.url("/dashboard/team")).await;
    owner
        .click_text(&format!("Revoke the invitation to {gone}"))
        .await;
    owner.client().accept_alert().await.unwrap();
    after_action(&owner, "is withdrawn").await;
    teammate.goto(&gone_link).await;
    teammate
        .wait_for_text("This invitation was withdrawn")
        .await;
    teammate.check_page("team-invitation-gone").await;

    // An existing account is asked for its own password; a resent
    // invitation's new link works and the old one does not.
    let other = app.signup().await;
    invite_in_browser(&app, &owner, &other.email, "viewer").await;
    let first = invitation_links(&app, &other.email, 1).await.remove(0);
    owner.goto(&app.url("/dashboard/team")).await;
    owner
        .click_text(&format!("Resend the invitation to {}", other.email))
        .await;
    after_action(&owner, "A new invitation is on its way").await;
    let second = invitation_links(&app, &other.email, 2).await.remove(1);
    assert_ne!(first, second);
    teammate.goto(&first).await;
    teammate
        .wait_for_text("This invitation was withdrawn")
        .await;
    teammate.goto(&second).await;
    teammate
        .wait_for_text("You already have a Heliograph account")
        .await;
    teammate.check_page("team-accept-existing").await;
    teammate.fill("#password", "not the password at all").await;
    teammate.click_text("Join Acme Cloud").await;
    teammate.wait_for("#password[aria-invalid='true']").await;
    teammate
        .wait_for_text("That is not this account's password")
        .await;
    teammate.fill("#password", PASSWORD).await;
    teammate.click_text("Join Acme Cloud").await;
    teammate.wait_for("nav.side").await;
    teammate.wait_for_text("(viewer)").await;

    owner.close().await;
    teammate.close().await;
    app.finish().await;
}

/// A browser-less dashboard session: the session cookie and the form's
/// CSRF token.
struct FormSession {
    cookie: String,
    csrf: String,
}

impl FormSession {
    fn from(res: &reqwest::Response) -> Self {
        let cookie = |name: &str| {
            res.headers()
                .get_all(SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .find(|c| c.starts_with(&format!("{name}=")))
                .map(|c| c[name.len() + 1..].split(';').next().unwrap().to_owned())
                .unwrap_or_else(|| panic!("no {name} cookie"))
        };
        Self {
            cookie: format!("heliograph_session={}", cookie("heliograph_session")),
            csrf: cookie("heliograph_csrf"),
        }
    }

    async fn sign_in(app: &TestApp, email: &str) -> Self {
        let res = app
            .client
            .post(app.url("/login"))
            .form(&[("email", email), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        Self::from(&res)
    }

    async fn post(
        &self,
        app: &TestApp,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let mut all = vec![("_csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let res = app
            .client
            .post(app.url(path))
            .header("cookie", &self.cookie)
            .form(&all)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }
}

#[tokio::test]
async fn team_forms_refuse_editors_other_tenants_ids_bad_input_and_unverified_teams() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let other = app.signup().await;

    // An editor (joined through an invitation) may not invite.
    let editor = unique_email("editor");
    let (status, _) = app
        .post(
            "/v1/invitations",
            Some(&t.token),
            &json!({"invitation": {"email": editor, "role": "editor"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let link = invitation_links(&app, &editor, 1).await.remove(0);
    let token = link.split("token=").nth(1).unwrap();
    let res = app
        .client
        .post(app.url("/account/accept-invitation"))
        .form(&[("token", token), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/dashboard");
    let as_editor = FormSession::from(&res);
    let (status, page) = as_editor
        .post(
            &app,
            "/dashboard/team/invitations",
            &[("email", &unique_email("x")), ("role", "viewer")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("Not allowed"), "{page}");

    // Another tenant's member and invitation are not found.
    let owner = FormSession::sign_in(&app, &t.email).await;
    let stranger = user_id(&app, &other.token, &other.email).await;
    let (status, _) = owner
        .post(
            &app,
            &format!("/dashboard/team/members/{stranger}/role"),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = owner
        .post(
            &app,
            &format!("/dashboard/team/members/{stranger}/remove"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, theirs) = app
        .post(
            "/v1/invitations",
            Some(&other.token),
            &json!({"invitation": {"email": unique_email("theirs"), "role": "viewer"}}),
        )
        .await;
    let theirs = theirs["id"].as_str().unwrap();
    for action in ["revoke", "resend"] {
        let (status, _) = owner
            .post(
                &app,
                &format!("/dashboard/team/invitations/{theirs}/{action}"),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}");
    }

    // A bad address comes back with the message and what was typed.
    let (status, page) = owner
        .post(
            &app,
            "/dashboard/team/invitations",
            &[("email", "not-an-address"), ("role", "viewer")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("id=\"email-error\""), "{page}");
    assert!(page.contains("value=\"not-an-address\""), "{page}");

    // An unverified team's invitation is refused on the form, in words.
    // (An unverified address signs in with its signup's session only.)
    let res = app
        .client
        .post(app.url("/v1/signup"))
        .header("x-forwarded-for", unique_ip())
        .json(&json!({"name": "Acme Cloud", "slug": unique_slug("t"),
            "email": unique_email("owner"), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let fresh = FormSession::from(&res);
    let (status, page) = fresh
        .post(
            &app,
            "/dashboard/team/invitations",
            &[("email", &unique_email("y")), ("role", "viewer")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("Invitations go out once an owner of this team has verified"),
        "{page}"
    );
    assert!(
        page.contains("Invite someone"),
        "the form, not an error page: {page}"
    );

    // A link that was never ours says so.
    let res = app
        .client
        .get(app.url("/account/accept-invitation?token=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    let page: String = res.text().await.unwrap();
    assert!(
        page.contains("This invitation link does not work"),
        "{page}"
    );
    app.finish().await;
}

#[tokio::test]
async fn an_admin_is_offered_only_the_roles_an_admin_may_give() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let admin = unique_email("admin");
    let (status, _) = app
        .post(
            "/v1/invitations",
            Some(&t.token),
            &json!({"invitation": {"email": admin, "role": "admin"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let link = invitation_links(&app, &admin, 1).await.remove(0);
    let token = link.split("token=").nth(1).unwrap();
    let res = app
        .client
        .post(app.url("/account/accept-invitation"))
        .form(&[("token", token), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let as_admin = FormSession::from(&res);
    let res = app
        .client
        .get(app.url("/dashboard/team"))
        .header("cookie", &as_admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    // Neither in the invitation form nor for any member: an admin may not
    // give the owner's role (the action would answer 403).
    assert!(!page.contains("value=\"owner\""), "{page}");
    assert!(
        page.contains("type=\"radio\" name=\"role\" value=\"admin\""),
        "{page}"
    );
    assert!(page.contains("<option value=\"viewer\""), "{page}");
    // The owner's row is not theirs to change: its role is plain text.
    let owner_id = user_id(&app, &t.token, &t.email).await;
    assert!(!page.contains(&format!("id=\"role-{owner_id}\"")), "{page}");
    // Nor is removing the owner offered (that too would answer 403); removing
    // themselves is.
    assert!(
        !page.contains(&format!("/dashboard/team/members/{owner_id}/remove")),
        "{page}"
    );
    assert_eq!(page.matches("/remove\"").count(), 1, "{page}");
    app.finish().await;
}
