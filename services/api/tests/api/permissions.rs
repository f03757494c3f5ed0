//! The permission matrix of docs/permissions.md, walked endpoint × role, and
//! the same endpoints walked with another tenant's credentials.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Tenant, TestApp, unique_email};

/// Every authenticated endpoint, and the least role it needs.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Me,
    Refresh,
    CreateSubscriber,
    CreateIncident,
    CreateComponent,
    CreateApiKey,
    ListApiKeys,
    RevokeApiKey,
    ReadAuditLog,
    ListMembers,
    CreateInvitation,
    ListInvitations,
    RevokeInvitation,
    ChangeRole,
    RemoveMember,
    ResendVerification,
    ChangePassword,
}

/// Signing out is left out of the walk (it would end the session the walk
/// goes on with); `sessions::signing_out_stops_the_token_at_once` covers it.
const ALL: [Endpoint; 17] = [
    Endpoint::Me,
    Endpoint::Refresh,
    Endpoint::CreateSubscriber,
    Endpoint::CreateIncident,
    Endpoint::CreateComponent,
    Endpoint::CreateApiKey,
    Endpoint::ListApiKeys,
    Endpoint::RevokeApiKey,
    Endpoint::ReadAuditLog,
    Endpoint::ListMembers,
    Endpoint::CreateInvitation,
    Endpoint::ListInvitations,
    Endpoint::RevokeInvitation,
    Endpoint::ChangeRole,
    Endpoint::RemoveMember,
    Endpoint::ResendVerification,
    Endpoint::ChangePassword,
];

/// Ranks as in `Role::rank`: viewer 0, editor 1, admin 2, owner 3.
const ROLES: [(&str, u8); 4] = [("viewer", 0), ("editor", 1), ("admin", 2), ("owner", 3)];

impl Endpoint {
    fn least_rank(self) -> u8 {
        match self {
            Self::Me
            | Self::Refresh
            | Self::ListMembers
            | Self::ResendVerification
            | Self::ChangePassword => 0,
            Self::CreateSubscriber | Self::CreateIncident => 1,
            Self::CreateComponent
            | Self::CreateApiKey
            | Self::ListApiKeys
            | Self::RevokeApiKey
            | Self::ReadAuditLog
            | Self::CreateInvitation
            | Self::ListInvitations
            | Self::RevokeInvitation
            | Self::ChangeRole
            | Self::RemoveMember => 2,
        }
    }

    /// Whether it names a resource of the tenant in its path (so another tenant gets 404).
    fn names_a_resource(self) -> bool {
        matches!(
            self,
            Self::CreateSubscriber
                | Self::CreateIncident
                | Self::CreateComponent
                | Self::RevokeApiKey
        )
    }

    /// A request that succeeds for a role that may make it, against `owner`'s tenant.
    async fn request(self, app: &TestApp, owner: &Tenant) -> (Method, String, Option<Value>) {
        let page = &owner.page_id;
        match self {
            Self::Me => (Method::GET, "/v1/me".into(), None),
            Self::Refresh => (Method::POST, "/v1/sessions/refresh".into(), None),
            Self::CreateSubscriber => (
                Method::POST,
                format!("/v1/pages/{page}/subscribers"),
                Some(
                    json!({"subscriber": {"email": unique_email("m"), "skip_confirmation_notification": true}}),
                ),
            ),
            Self::CreateIncident => (
                Method::POST,
                format!("/v1/pages/{page}/incidents"),
                Some(json!({"incident": {"name": "Matrix", "deliver_notifications": false}})),
            ),
            Self::CreateComponent => (
                Method::POST,
                format!("/v1/pages/{page}/components"),
                Some(json!({"component": {"name": "Matrix"}})),
            ),
            Self::CreateApiKey => (
                Method::POST,
                "/v1/api-keys".into(),
                Some(json!({"api_key": {"name": "m"}})),
            ),
            Self::ListApiKeys => (Method::GET, "/v1/api-keys".into(), None),
            Self::ReadAuditLog => (Method::GET, "/v1/audit-log".into(), None),
            Self::ListMembers => (Method::GET, "/v1/members".into(), None),
            Self::ChangeRole | Self::RemoveMember => {
                let person = app.signup().await;
                let token = app.join(owner, &person, "viewer").await;
                let (_, me) = app.call(Method::GET, "/v1/me", Some(&token), None).await;
                let path = format!("/v1/members/{}", me["user"]["id"].as_str().unwrap());
                if matches!(self, Self::ChangeRole) {
                    (
                        Method::PATCH,
                        path,
                        Some(json!({"member": {"role": "editor"}})),
                    )
                } else {
                    (Method::DELETE, path, None)
                }
            }
            Self::ResendVerification => (Method::POST, "/v1/email-verifications".into(), None),
            Self::ChangePassword => (
                Method::PUT,
                "/v1/me/password".into(),
                Some(
                    json!({"current_password": PASSWORD, "new_password": "a fresh long password"}),
                ),
            ),
            Self::CreateInvitation => (
                Method::POST,
                "/v1/invitations".into(),
                Some(json!({"invitation": {"email": unique_email("inv"), "role": "viewer"}})),
            ),
            Self::ListInvitations => (Method::GET, "/v1/invitations".into(), None),
            Self::RevokeInvitation => {
                let (_, invitation) = app
                    .post(
                        "/v1/invitations",
                        Some(&owner.token),
                        &json!({"invitation": {"email": unique_email("victim"), "role": "viewer"}}),
                    )
                    .await;
                (
                    Method::DELETE,
                    format!("/v1/invitations/{}", invitation["id"].as_str().unwrap()),
                    None,
                )
            }
            Self::RevokeApiKey => {
                let (_, key) = app
                    .post(
                        "/v1/api-keys",
                        Some(&owner.token),
                        &json!({"api_key": {"name": "victim"}}),
                    )
                    .await;
                (
                    Method::DELETE,
                    format!("/v1/api-keys/{}", key["id"].as_str().unwrap()),
                    None,
                )
            }
        }
    }
}

#[tokio::test]
async fn every_endpoint_admits_exactly_the_roles_the_matrix_names() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let mut tokens = vec![];
    for (role, rank) in ROLES {
        let token = if role == "owner" {
            owner.token.clone()
        } else {
            let person = app.signup().await;
            app.join(&owner, &person, role).await
        };
        tokens.push((role, rank, token));
    }
    for endpoint in ALL {
        for (role, rank, token) in &tokens {
            let (method, path, body) = endpoint.request(&app, &owner).await;
            let (status, answer) = app.call(method, &path, Some(token), body.as_ref()).await;
            if *rank >= endpoint.least_rank() {
                assert!(
                    status.is_success(),
                    "{endpoint:?} as {role}: {status} {answer}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{endpoint:?} as {role}: {answer}"
                );
                assert_eq!(answer["error"]["code"], "forbidden");
            }
        }
    }
    app.finish().await;
}

#[tokio::test]
async fn another_tenants_ids_are_not_found_on_every_endpoint() {
    let app = TestApp::spawn().await;
    let victim = app.signup().await;
    let intruder = app.signup().await;
    let (_, key) = app
        .post(
            "/v1/api-keys",
            Some(&intruder.token),
            &json!({"api_key": {"name": "k", "scope": "read_write"}}),
        )
        .await;
    let intruder_key = key["key"].as_str().unwrap().to_owned();
    let before = app.count("select (select count(*) from components) + (select count(*) from subscribers) + (select count(*) from incidents) + (select count(*) from api_keys where revoked_at is not null)").await;
    for endpoint in ALL.into_iter().filter(|e| e.names_a_resource()) {
        for credential in [&intruder.token, &intruder_key] {
            let (method, path, body) = endpoint.request(&app, &victim).await;
            let (status, answer) = app
                .call(method, &path, Some(credential), body.as_ref())
                .await;
            let expected =
                if matches!(endpoint, Endpoint::RevokeApiKey) && credential == &intruder_key {
                    StatusCode::FORBIDDEN // keys never manage keys, whoever's
                } else {
                    StatusCode::NOT_FOUND
                };
            assert_eq!(status, expected, "{endpoint:?}: {answer}");
        }
    }
    let after = app.count("select (select count(*) from components) + (select count(*) from subscribers) + (select count(*) from incidents) + (select count(*) from api_keys where revoked_at is not null)").await;
    assert_eq!(before, after, "nothing changed");
    app.finish().await;
}
