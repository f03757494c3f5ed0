//! The team: invitations by email, roles, removal, and the last owner.
//!
//! What each role may then do is walked in `permissions`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, emails_to, token_in_email, unique_email};

async fn invite(app: &TestApp, token: &str, email: &str, role: &str) -> (StatusCode, Value) {
    app.post(
        "/v1/invitations",
        Some(token),
        &json!({"invitation": {"email": email, "role": role}}),
    )
    .await
}

/// The token of the newest invitation email to `to`.
async fn invitation_token(app: &TestApp, to: &str) -> String {
    app.drain().await;
    token_in_email(to, "Join Acme Cloud on Heliograph", 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_creates_an_account_that_joins_with_its_role() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let newcomer = unique_email("new");
    let (status, invitation) = invite(&app, &owner.token, &newcomer, "editor").await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    let token = invitation_token(&app, &newcomer).await;
    let mails = emails_to(&newcomer, 1).await;
    assert!(
        mails[0]["text"]
            .as_str()
            .unwrap()
            .contains("join Acme Cloud on Heliograph as editor")
    );

    let (status, session) = app
        .post(
            "/v1/invitations/accept",
            None,
            &json!({"token": token, "password": "a brand new password"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["tenant_id"], owner.tenant_id.as_str());
    let (_, me) = app
        .call(
            Method::GET,
            "/v1/me",
            Some(session["token"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(me["role"], "editor");
    assert_eq!(
        me["user"]["email_verified"], true,
        "the link proved the address"
    );

    let (_, members) = app
        .call(Method::GET, "/v1/members", Some(&owner.token), None)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 2);
    let (status, body) = app
        .post(
            "/v1/invitations/accept",
            None,
            &json!({"token": token, "password": "a brand new password"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a link works once"
    );
    assert_eq!(body["error"]["fields"][0]["code"], "used");
    let (_, pending) = app
        .call(Method::GET, "/v1/invitations", Some(&owner.token), None)
        .await;
    assert_eq!(pending, json!([]));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_account_joins_with_its_own_password() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let other = app.signup().await;
    invite(&app, &owner.token, &other.email, "viewer").await;
    let token = invitation_token(&app, &other.email).await;
    let (status, _) = app
        .post(
            "/v1/invitations/accept",
            None,
            &json!({"token": token, "password": "not their password"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an invitation does not take over an account"
    );
    let (status, session) = app
        .post(
            "/v1/invitations/accept",
            None,
            &json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["memberships"].as_array().unwrap().len(), 2);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_are_refused_when_revoked_expired_duplicated_or_beyond_the_inviters_role() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let admin_person = app.signup().await;
    let admin = app.join(&owner, &admin_person, "admin").await;
    let editor_person = app.signup().await;
    let editor = app.join(&owner, &editor_person, "editor").await;

    assert_eq!(
        invite(&app, &editor, &unique_email("x"), "viewer").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        invite(&app, &admin, &unique_email("x"), "owner").await.0,
        StatusCode::FORBIDDEN,
        "only owners make owners"
    );
    let (status, body) = invite(&app, &owner.token, &editor_person.email, "viewer").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("already_member"))
    );

    let revoked = unique_email("revoked");
    let (_, invitation) = invite(&app, &admin, &revoked, "viewer").await;
    let (status, body) = invite(&app, &admin, &revoked, "viewer").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("already_invited"))
    );
    let token = invitation_token(&app, &revoked).await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/invitations/{}", invitation["id"].as_str().unwrap()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .post(
            "/v1/invitations/accept",
            None,
            &json!({"token": token, "password": "a brand new password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"][0]["code"], "revoked");

    let late = unique_email("late");
    invite(&app, &admin, &late, "viewer").await;
    let token = invitation_token(&app, &late).await;
    sqlx::query("update invitations set expires_at = now() - interval '1 second' where email = $1")
        .bind(&late)
        .execute(&app.admin)
        .await
        .unwrap();
    let (status, body) = app
        .post(
            "/v1/invitations/accept",
            None,
            &json!({"token": token, "password": "a brand new password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"][0]["code"], "expired");
    assert_eq!(
        app.count("select count(*) from users where email like 'late-%' or email like 'revoked-%'")
            .await,
        0
    );
    app.finish().await;
}

#[tokio::test]
async fn role_changes_and_removals_take_effect_at_once_and_the_last_owner_stays() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let person = app.signup().await;
    let token = app.join(&owner, &person, "editor").await;
    let (_, me) = app.call(Method::GET, "/v1/me", Some(&token), None).await;
    let person_id = me["user"]["id"].as_str().unwrap().to_owned();
    let (_, owner_me) = app
        .call(Method::GET, "/v1/me", Some(&owner.token), None)
        .await;
    let owner_id = owner_me["user"]["id"].as_str().unwrap().to_owned();
    let component = || json!({"component": {"name": "C"}});
    let components = format!("/v1/pages/{}/components", owner.page_id);
    let role = |r: &str| json!({"member": {"role": r}});

    assert_eq!(
        app.post(&components, Some(&token), &component()).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/members/{person_id}"),
            Some(&owner.token),
            Some(&role("admin")),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.post(&components, Some(&token), &component()).await.0,
        StatusCode::CREATED,
        "promoted at once"
    );
    // An admin cannot touch an owner, nor make one.
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/members/{owner_id}"),
            Some(&token),
            Some(&role("viewer")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/members/{person_id}"),
            Some(&token),
            Some(&role("owner")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The last owner can be neither demoted nor removed.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/v1/members/{owner_id}"),
            Some(&owner.token),
            Some(&role("admin")),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("last_owner"))
    );
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/members/{owner_id}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/members/{person_id}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&token), None).await.0,
        StatusCode::UNAUTHORIZED,
        "removed at once"
    );

    // Another tenant's member and invitation ids are not found.
    let stranger = app.signup().await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/members/{owner_id}"),
            Some(&stranger.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, invitation) = invite(&app, &owner.token, &unique_email("i"), "viewer").await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/invitations/{}", invitation["id"].as_str().unwrap()),
            Some(&stranger.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, log) = app
        .call(Method::GET, "/v1/audit-log", Some(&owner.token), None)
        .await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"member.role_changed") && actions.contains(&"member.removed"),
        "{actions:?}"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_and_invitation_emails_lost_with_redis_are_sent_again_by_the_sweeper() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let invitee = unique_email("lost");
    invite(&app, &owner.token, &invitee, "viewer").await;
    app.drain().await;
    assert_eq!(emails_to(&invitee, 1).await.len(), 1);
    assert_eq!(
        emails_to(&owner.email, 1).await.len(),
        1,
        "the verification email"
    );
    // As if both jobs had been lost after being queued.
    sqlx::query("update invitations set sent_at = null")
        .execute(&app.admin)
        .await
        .unwrap();
    sqlx::query("update account_tokens set sent_at = null")
        .execute(&app.admin)
        .await
        .unwrap();
    let queued = heliograph_worker::sweep(&app.ctx, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(queued, 2);
    app.drain().await;
    assert_eq!(emails_to(&invitee, 2).await.len(), 2);
    assert_eq!(emails_to(&owner.email, 2).await.len(), 2);
    app.finish().await;
}

#[tokio::test]
async fn the_keys_of_a_removed_or_demoted_admin_stop_working() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let components = format!("/v1/pages/{}/components", owner.page_id);
    let mut keys = vec![];
    for _ in 0..2 {
        let person = app.signup().await;
        let token = app.join(&owner, &person, "admin").await;
        let (_, me) = app.call(Method::GET, "/v1/me", Some(&token), None).await;
        let (_, key) = app
            .post(
                "/v1/api-keys",
                Some(&token),
                &json!({"api_key": {"name": "mine", "scope": "read_write"}}),
            )
            .await;
        let key = key["key"].as_str().unwrap().to_owned();
        assert_eq!(
            app.post(
                &components,
                Some(&key),
                &json!({"component": {"name": "K"}})
            )
            .await
            .0,
            StatusCode::CREATED
        );
        keys.push((me["user"]["id"].as_str().unwrap().to_owned(), key));
    }
    let (demoted, demoted_key) = &keys[0];
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/members/{demoted}"),
            Some(&owner.token),
            Some(&json!({"member": {"role": "editor"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (removed, removed_key) = &keys[1];
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/members/{removed}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for key in [demoted_key, removed_key] {
        let (status, _) = app
            .post(&components, Some(key), &json!({"component": {"name": "K"}}))
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a key does not outlive its maker's power"
        );
    }
    app.finish().await;
}
