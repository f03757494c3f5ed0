//! The permission matrix of docs/permissions.md, walked endpoint × role; the
//! same endpoints walked with another tenant's credentials; and a check that
//! the matrix names every route of the API, so a new route cannot go
//! unwalked.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Infra, PASSWORD, Tenant, TestApp, unique_email, unique_slug};

/// Every authenticated endpoint, and the least role it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Me,
    Refresh,
    ResendVerification,
    ChangePassword,
    CreateApiKey,
    ListApiKeys,
    RevokeApiKey,
    ReadAuditLog,
    ReadBilling,
    ListPlans,
    StartCheckout,
    OpenPortal,
    ListMembers,
    CreateInvitation,
    ListInvitations,
    RevokeInvitation,
    ChangeRole,
    RemoveMember,
    ListPages,
    CreatePage,
    GetPage,
    UpdatePage,
    PageUptime,
    ListComponents,
    CreateComponent,
    GetComponent,
    SetComponentStatus,
    UpdateComponent,
    DeleteComponent,
    ComponentUptime,
    ListGroups,
    CreateGroup,
    GetGroup,
    UpdateGroup,
    DeleteGroup,
    GroupUptime,
    CreateSubscriber,
    ListSubscribers,
    CountSubscribers,
    GetSubscriber,
    UpdateSubscriber,
    DeleteSubscriber,
    ResendConfirmation,
    TestSubscriber,
    ReactivateSubscribers,
    ListEvents,
    EventDeliveries,
    IncidentDeliveries,
    UpdateDeliveries,
    ListDeliveries,
    GetDelivery,
    RedriveDeliveries,
    ListIncidents,
    CreateIncident,
    UnresolvedIncidents,
    UpcomingMaintenance,
    ScheduledMaintenance,
    ActiveMaintenance,
    GetIncident,
    UpdateIncident,
    DeleteIncident,
    EditIncidentUpdate,
    GetPostmortem,
    DraftPostmortem,
    DeletePostmortem,
    PublishPostmortem,
    ListTemplates,
    CreateTemplate,
    DeleteTemplate,
    ListDomains,
    CreateDomain,
    GetDomain,
    DeleteDomain,
    VerifyDomain,
}

const ALL: [Endpoint; 74] = {
    use Endpoint::*;
    [
        Me,
        Refresh,
        ResendVerification,
        ChangePassword,
        CreateApiKey,
        ListApiKeys,
        RevokeApiKey,
        ReadAuditLog,
        ReadBilling,
        ListPlans,
        StartCheckout,
        OpenPortal,
        ListMembers,
        CreateInvitation,
        ListInvitations,
        RevokeInvitation,
        ChangeRole,
        RemoveMember,
        ListPages,
        CreatePage,
        GetPage,
        UpdatePage,
        PageUptime,
        ListComponents,
        CreateComponent,
        GetComponent,
        SetComponentStatus,
        UpdateComponent,
        DeleteComponent,
        ComponentUptime,
        ListGroups,
        CreateGroup,
        GetGroup,
        UpdateGroup,
        DeleteGroup,
        GroupUptime,
        CreateSubscriber,
        ListSubscribers,
        CountSubscribers,
        GetSubscriber,
        UpdateSubscriber,
        DeleteSubscriber,
        ResendConfirmation,
        TestSubscriber,
        ReactivateSubscribers,
        ListEvents,
        EventDeliveries,
        IncidentDeliveries,
        UpdateDeliveries,
        ListDeliveries,
        GetDelivery,
        RedriveDeliveries,
        ListIncidents,
        CreateIncident,
        UnresolvedIncidents,
        UpcomingMaintenance,
        ScheduledMaintenance,
        ActiveMaintenance,
        GetIncident,
        UpdateIncident,
        DeleteIncident,
        EditIncidentUpdate,
        GetPostmortem,
        DraftPostmortem,
        DeletePostmortem,
        PublishPostmortem,
        ListTemplates,
        CreateTemplate,
        DeleteTemplate,
        ListDomains,
        CreateDomain,
        GetDomain,
        DeleteDomain,
        VerifyDomain,
    ]
};

/// Routes the walk leaves out, and why.
const NOT_WALKED: [(&str, &str, &str); 8] = [
    (
        "POST",
        "/v1/billing/stripe-webhook",
        "public: Stripe's signature is the credential (billing::forged_stale_and_replayed_webhooks_change_nothing)",
    ),
    ("POST", "/v1/signup", "public"),
    ("POST", "/v1/sessions", "public"),
    ("POST", "/v1/password-resets", "public"),
    (
        "POST",
        "/v1/password-resets/confirm",
        "public: the link token is the credential",
    ),
    (
        "POST",
        "/v1/email-verifications/confirm",
        "public: the link token is the credential",
    ),
    (
        "POST",
        "/v1/invitations/accept",
        "public: the link token is the credential",
    ),
    (
        "DELETE",
        "/v1/sessions/current",
        "ends the session the walk goes on with; sessions::signing_out_stops_the_token_at_once covers it",
    ),
];

/// Ranks as in `Role::rank`: viewer 0, editor 1, admin 2, owner 3.
const ROLES: [(&str, u8); 4] = [("viewer", 0), ("editor", 1), ("admin", 2), ("owner", 3)];

const UPDATE: &[&str] = &["PATCH", "PUT"];

impl Endpoint {
    /// The methods and the path, as the route table spells them.
    fn route(self) -> (&'static [&'static str], &'static str) {
        use Endpoint::*;
        match self {
            Me => (&["GET"], "/v1/me"),
            Refresh => (&["POST"], "/v1/sessions/refresh"),
            ResendVerification => (&["POST"], "/v1/email-verifications"),
            ChangePassword => (&["PUT"], "/v1/me/password"),
            CreateApiKey => (&["POST"], "/v1/api-keys"),
            ListApiKeys => (&["GET"], "/v1/api-keys"),
            RevokeApiKey => (&["DELETE"], "/v1/api-keys/{id}"),
            ReadAuditLog => (&["GET"], "/v1/audit-log"),
            ReadBilling => (&["GET"], "/v1/billing"),
            ListPlans => (&["GET"], "/v1/billing/plans"),
            StartCheckout => (&["POST"], "/v1/billing/checkout"),
            OpenPortal => (&["POST"], "/v1/billing/portal"),
            ListMembers => (&["GET"], "/v1/members"),
            CreateInvitation => (&["POST"], "/v1/invitations"),
            ListInvitations => (&["GET"], "/v1/invitations"),
            RevokeInvitation => (&["DELETE"], "/v1/invitations/{id}"),
            ChangeRole => (&["PATCH"], "/v1/members/{user_id}"),
            RemoveMember => (&["DELETE"], "/v1/members/{user_id}"),
            ListPages => (&["GET"], "/v1/pages"),
            CreatePage => (&["POST"], "/v1/pages"),
            GetPage => (&["GET"], "/v1/pages/{page_id}"),
            UpdatePage => (UPDATE, "/v1/pages/{page_id}"),
            PageUptime => (&["GET"], "/v1/pages/{page_id}/uptime"),
            ListComponents => (&["GET"], "/v1/pages/{page_id}/components"),
            CreateComponent => (&["POST"], "/v1/pages/{page_id}/components"),
            GetComponent => (&["GET"], "/v1/pages/{page_id}/components/{id}"),
            SetComponentStatus | UpdateComponent => (UPDATE, "/v1/pages/{page_id}/components/{id}"),
            DeleteComponent => (&["DELETE"], "/v1/pages/{page_id}/components/{id}"),
            ComponentUptime => (&["GET"], "/v1/pages/{page_id}/components/{id}/uptime"),
            ListGroups => (&["GET"], "/v1/pages/{page_id}/component-groups"),
            CreateGroup => (&["POST"], "/v1/pages/{page_id}/component-groups"),
            GetGroup => (&["GET"], "/v1/pages/{page_id}/component-groups/{id}"),
            UpdateGroup => (UPDATE, "/v1/pages/{page_id}/component-groups/{id}"),
            DeleteGroup => (&["DELETE"], "/v1/pages/{page_id}/component-groups/{id}"),
            GroupUptime => (&["GET"], "/v1/pages/{page_id}/component-groups/{id}/uptime"),
            CreateSubscriber => (&["POST"], "/v1/pages/{page_id}/subscribers"),
            ListSubscribers => (&["GET"], "/v1/pages/{page_id}/subscribers"),
            CountSubscribers => (&["GET"], "/v1/pages/{page_id}/subscribers/count"),
            GetSubscriber => (&["GET"], "/v1/pages/{page_id}/subscribers/{id}"),
            UpdateSubscriber => (UPDATE, "/v1/pages/{page_id}/subscribers/{id}"),
            DeleteSubscriber => (&["DELETE"], "/v1/pages/{page_id}/subscribers/{id}"),
            ResendConfirmation => (
                &["POST"],
                "/v1/pages/{page_id}/subscribers/{id}/resend_confirmation",
            ),
            TestSubscriber => (&["POST"], "/v1/pages/{page_id}/subscribers/{id}/test"),
            ReactivateSubscribers => (&["POST"], "/v1/pages/{page_id}/subscribers/reactivate"),
            ListEvents => (&["GET"], "/v1/pages/{page_id}/events"),
            EventDeliveries => (&["GET"], "/v1/pages/{page_id}/events/{id}/deliveries"),
            IncidentDeliveries => (&["GET"], "/v1/pages/{page_id}/incidents/{id}/deliveries"),
            UpdateDeliveries => (
                &["GET"],
                "/v1/pages/{page_id}/incidents/{id}/incident_updates/{update_id}/deliveries",
            ),
            ListDeliveries => (&["GET"], "/v1/pages/{page_id}/deliveries"),
            GetDelivery => (&["GET"], "/v1/pages/{page_id}/deliveries/{id}"),
            RedriveDeliveries => (&["POST"], "/v1/pages/{page_id}/deliveries/redrive"),
            ListIncidents => (&["GET"], "/v1/pages/{page_id}/incidents"),
            CreateIncident => (&["POST"], "/v1/pages/{page_id}/incidents"),
            UnresolvedIncidents => (&["GET"], "/v1/pages/{page_id}/incidents/unresolved"),
            UpcomingMaintenance => (&["GET"], "/v1/pages/{page_id}/incidents/upcoming"),
            ScheduledMaintenance => (&["GET"], "/v1/pages/{page_id}/incidents/scheduled"),
            ActiveMaintenance => (&["GET"], "/v1/pages/{page_id}/incidents/active_maintenance"),
            GetIncident => (&["GET"], "/v1/pages/{page_id}/incidents/{id}"),
            UpdateIncident => (UPDATE, "/v1/pages/{page_id}/incidents/{id}"),
            DeleteIncident => (&["DELETE"], "/v1/pages/{page_id}/incidents/{id}"),
            EditIncidentUpdate => (
                UPDATE,
                "/v1/pages/{page_id}/incidents/{id}/incident_updates/{update_id}",
            ),
            GetPostmortem => (&["GET"], "/v1/pages/{page_id}/incidents/{id}/postmortem"),
            DraftPostmortem => (&["PUT"], "/v1/pages/{page_id}/incidents/{id}/postmortem"),
            DeletePostmortem => (&["DELETE"], "/v1/pages/{page_id}/incidents/{id}/postmortem"),
            PublishPostmortem => (
                &["PUT"],
                "/v1/pages/{page_id}/incidents/{id}/postmortem/publish",
            ),
            ListTemplates => (&["GET"], "/v1/pages/{page_id}/incident_templates"),
            CreateTemplate => (&["POST"], "/v1/pages/{page_id}/incident_templates"),
            DeleteTemplate => (&["DELETE"], "/v1/pages/{page_id}/incident_templates/{id}"),
            ListDomains => (&["GET"], "/v1/pages/{page_id}/domains"),
            CreateDomain => (&["POST"], "/v1/pages/{page_id}/domains"),
            GetDomain => (&["GET"], "/v1/pages/{page_id}/domains/{id}"),
            DeleteDomain => (&["DELETE"], "/v1/pages/{page_id}/domains/{id}"),
            VerifyDomain => (&["POST"], "/v1/pages/{page_id}/domains/{id}/verify"),
        }
    }

    /// The least role, as docs/permissions.md names it.
    fn least_rank(self) -> u8 {
        use Endpoint::*;
        match self {
            Me | Refresh | ListMembers | ResendVerification | ChangePassword | ListPages
            | ReadBilling | ListPlans | GetPage | PageUptime | ListComponents | GetComponent
            | ComponentUptime | ListGroups | GetGroup | GroupUptime | ListIncidents
            | UnresolvedIncidents | UpcomingMaintenance | ScheduledMaintenance
            | ActiveMaintenance | GetIncident | GetPostmortem | ListTemplates | ListDomains
            | GetDomain | ListSubscribers | CountSubscribers | GetSubscriber | ListEvents
            | EventDeliveries | IncidentDeliveries | UpdateDeliveries | ListDeliveries
            | GetDelivery => 0,
            CreateSubscriber
            | UpdateSubscriber
            | DeleteSubscriber
            | ResendConfirmation
            | TestSubscriber
            | ReactivateSubscribers
            | RedriveDeliveries
            | CreateIncident
            | SetComponentStatus
            | UpdateIncident
            | EditIncidentUpdate
            | DraftPostmortem
            | DeletePostmortem
            | PublishPostmortem
            | CreateTemplate
            | DeleteTemplate => 1,
            CreateApiKey | ListApiKeys | RevokeApiKey | ReadAuditLog | CreateInvitation
            | ListInvitations | RevokeInvitation | ChangeRole | RemoveMember | CreatePage
            | UpdatePage | CreateComponent | UpdateComponent | DeleteComponent | CreateGroup
            | UpdateGroup | DeleteGroup | DeleteIncident | CreateDomain | DeleteDomain
            | VerifyDomain => 2,
            StartCheckout | OpenPortal => 3,
        }
    }

    /// Whether only billing on lets it through: with billing off (as in
    /// the walk) a role it admits gets 409 `billing_off`, after the role
    /// check (billing.rs walks it with billing on).
    fn needs_billing(self) -> bool {
        matches!(self, Self::StartCheckout | Self::OpenPortal)
    }

    /// Whether it names a resource of the tenant in its path, so another
    /// tenant must get 404.
    fn names_a_resource(self) -> bool {
        self.route().1.contains('{')
    }

    /// Whether an API key is refused it whatever its scope (docs/permissions.md, *person*).
    fn person_only(self) -> bool {
        use Endpoint::*;
        matches!(
            self,
            CreateApiKey
                | ListApiKeys
                | RevokeApiKey
                | CreateInvitation
                | ListInvitations
                | RevokeInvitation
                | ChangeRole
                | RemoveMember
        )
    }

    /// A path and body that succeed for a role that may make the request,
    /// against `owner`'s tenant; resources it acts on are made fresh.
    async fn request(self, app: &TestApp, owner: &Tenant) -> (String, Option<Value>) {
        use Endpoint::*;
        let p = format!("/v1/pages/{}", owner.page_id);
        match self {
            Me | ListApiKeys | ReadAuditLog | ReadBilling | ListPlans | ListMembers
            | ListInvitations | ListPages | OpenPortal => (self.route().1.into(), None),
            StartCheckout => (
                self.route().1.into(),
                Some(json!({"checkout": {"plan": "team", "interval": "month"}})),
            ),
            Refresh | ResendVerification => (self.route().1.into(), None),
            ChangePassword => (
                "/v1/me/password".into(),
                Some(
                    json!({"current_password": PASSWORD, "new_password": "a fresh long password"}),
                ),
            ),
            CreateApiKey => (
                "/v1/api-keys".into(),
                Some(json!({"api_key": {"name": "m"}})),
            ),
            RevokeApiKey => {
                let id = create(
                    app,
                    owner,
                    "/v1/api-keys",
                    json!({"api_key": {"name": "v"}}),
                )
                .await;
                (format!("/v1/api-keys/{id}"), None)
            }
            CreateInvitation => (
                "/v1/invitations".into(),
                Some(json!({"invitation": {"email": unique_email("inv"), "role": "viewer"}})),
            ),
            RevokeInvitation => {
                let body =
                    json!({"invitation": {"email": unique_email("victim"), "role": "viewer"}});
                let id = create(app, owner, "/v1/invitations", body).await;
                (format!("/v1/invitations/{id}"), None)
            }
            ChangeRole | RemoveMember => {
                let person = app.signup().await;
                let token = app.join(owner, &person, "viewer").await;
                let (_, me) = app.call(Method::GET, "/v1/me", Some(&token), None).await;
                let path = format!("/v1/members/{}", me["user"]["id"].as_str().unwrap());
                let body = (self == ChangeRole).then(|| json!({"member": {"role": "editor"}}));
                (path, body)
            }
            CreatePage => (
                "/v1/pages".into(),
                Some(json!({"page": {"name": "Second", "subdomain": unique_slug("second")}})),
            ),
            GetPage | PageUptime => (self.concrete(&p, "", ""), None),
            UpdatePage => (p, Some(json!({"page": {"headline": "All good"}}))),
            ListComponents | ListGroups | ListIncidents | UnresolvedIncidents
            | UpcomingMaintenance | ScheduledMaintenance | ActiveMaintenance | ListTemplates
            | ListDomains => (self.concrete(&p, "", ""), None),
            CreateComponent => (
                format!("{p}/components"),
                Some(json!({"component": {"name": "Matrix"}})),
            ),
            GetComponent | DeleteComponent | ComponentUptime => {
                let id = app.component(owner, "Target").await;
                (self.concrete(&p, &id, ""), None)
            }
            SetComponentStatus | UpdateComponent => {
                let id = app.component(owner, "Target").await;
                let body = if self == SetComponentStatus {
                    json!({"component": {"status": "degraded_performance"}})
                } else {
                    json!({"component": {"name": "Renamed"}})
                };
                (self.concrete(&p, &id, ""), Some(body))
            }
            CreateGroup => (
                format!("{p}/component-groups"),
                Some(json!({"component_group": {"name": "Matrix"}})),
            ),
            GetGroup | UpdateGroup | DeleteGroup | GroupUptime => {
                let body = json!({"component_group": {"name": "Target"}});
                let id = create(app, owner, &format!("{p}/component-groups"), body).await;
                let body = (self == UpdateGroup)
                    .then(|| json!({"component_group": {"description": "Edge"}}));
                (self.concrete(&p, &id, ""), body)
            }
            CreateSubscriber => (
                format!("{p}/subscribers"),
                Some(
                    json!({"subscriber": {"email": unique_email("m"), "skip_confirmation_notification": true}}),
                ),
            ),
            ListSubscribers | CountSubscribers => (self.concrete(&p, "", ""), None),
            GetSubscriber | UpdateSubscriber | DeleteSubscriber => {
                let body = json!({"subscriber": {"email": unique_email("s"), "skip_confirmation_notification": true}});
                let id = create(app, owner, &format!("{p}/subscribers"), body).await;
                let body =
                    (self == UpdateSubscriber).then(|| json!({"subscriber": {"components": []}}));
                (self.concrete(&p, &id, ""), body)
            }
            ResendConfirmation => {
                let body = json!({"subscriber": {"email": unique_email("pending")}});
                let id = create(app, owner, &format!("{p}/subscribers"), body).await;
                // Its confirmation went out at creation; a resend is allowed a minute later.
                sqlx::query(
                    "update subscribers set confirmation_sent_at = now() - interval '2 minutes'
                      where id = $1::uuid",
                )
                .bind(&id)
                .execute(&app.admin)
                .await
                .unwrap();
                (self.concrete(&p, &id, ""), None)
            }
            TestSubscriber => {
                // Confirmed, so nothing is sent until a ping is asked for; a
                // private address, which the worker refuses at once (no retries to wait for).
                let endpoint = format!("http://10.255.255.1/{}", unique_slug("matrix"));
                let body = json!({"subscriber": {"endpoint": endpoint, "skip_confirmation_notification": true}});
                let id = create(app, owner, &format!("{p}/subscribers"), body).await;
                (self.concrete(&p, &id, ""), None)
            }
            ReactivateSubscribers => (self.concrete(&p, "", ""), Some(json!({"subscribers": []}))),
            ListEvents | ListDeliveries => (self.concrete(&p, "", ""), None),
            EventDeliveries => {
                open_incident(app, owner, &p, "investigating").await;
                let (_, events) = app
                    .call(
                        Method::GET,
                        &format!("{p}/events"),
                        Some(&owner.token),
                        None,
                    )
                    .await;
                let id = events[0]["id"].as_str().expect("an event").to_owned();
                (self.concrete(&p, &id, ""), None)
            }
            IncidentDeliveries | UpdateDeliveries => {
                let (id, update) = open_incident(app, owner, &p, "investigating").await;
                (self.concrete(&p, &id, &update), None)
            }
            GetDelivery => {
                let id = delivered(app, owner, &p).await;
                (self.concrete(&p, &id, ""), None)
            }
            RedriveDeliveries => (self.concrete(&p, "", ""), Some(json!({"deliveries": []}))),
            CreateIncident => (format!("{p}/incidents"), Some(incident("investigating"))),
            GetIncident | UpdateIncident | DeleteIncident | EditIncidentUpdate => {
                let (id, update) = open_incident(app, owner, &p, "investigating").await;
                let body = match self {
                    UpdateIncident => {
                        Some(json!({"incident": {"status": "identified", "body": "Found it"}}))
                    }
                    EditIncidentUpdate => Some(json!({"incident_update": {"body": "Corrected"}})),
                    _ => None,
                };
                (self.concrete(&p, &id, &update), body)
            }
            GetPostmortem | DraftPostmortem | DeletePostmortem | PublishPostmortem => {
                let (id, _) = open_incident(app, owner, &p, "resolved").await;
                let draft = json!({"postmortem": {"body_draft": "What happened"}});
                let (status, answer) = app
                    .call(
                        Method::PUT,
                        &format!("{p}/incidents/{id}/postmortem"),
                        Some(&owner.token),
                        Some(&draft),
                    )
                    .await;
                assert!(status.is_success(), "a draft is written: {answer}");
                let body = match self {
                    DraftPostmortem => Some(draft),
                    PublishPostmortem => Some(json!({"postmortem": {"notify_subscribers": false}})),
                    _ => None,
                };
                (self.concrete(&p, &id, ""), body)
            }
            CreateTemplate => (
                format!("{p}/incident_templates"),
                Some(json!({"template": {"name": unique_slug("t"), "title": "Down"}})),
            ),
            DeleteTemplate => {
                let body = json!({"template": {"name": unique_slug("t"), "title": "Down"}});
                let id = create(app, owner, &format!("{p}/incident_templates"), body).await;
                (self.concrete(&p, &id, ""), None)
            }
            CreateDomain => (format!("{p}/domains"), Some(domain())),
            GetDomain | DeleteDomain | VerifyDomain => {
                let id = create(app, owner, &format!("{p}/domains"), domain()).await;
                (self.concrete(&p, &id, ""), None)
            }
        }
    }

    /// The route's path with its parameters filled in.
    fn concrete(self, page_path: &str, id: &str, update_id: &str) -> String {
        self.route()
            .1
            .replace("/v1/pages/{page_id}", page_path)
            .replace("{update_id}", update_id)
            .replace("{id}", id)
    }
}

/// A custom domain of a hostname nobody has.
fn domain() -> Value {
    json!({"domain": {"hostname": format!("{}.customer.test", unique_slug("matrix"))}})
}

fn incident(status: &str) -> Value {
    json!({"incident": {"name": "Matrix", "status": status, "deliver_notifications": false}})
}

/// POSTs as the owner and answers the new resource's id.
async fn create(app: &TestApp, owner: &Tenant, path: &str, body: Value) -> String {
    let (status, answer) = app.post(path, Some(&owner.token), &body).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer["id"].as_str().expect("an id").to_owned()
}

/// Sends one email to a new subscriber of the owner's page, as the
/// notification tests do (subscribe, open an incident, drain); answers the
/// delivery's id.
async fn delivered(app: &TestApp, owner: &Tenant, p: &str) -> String {
    let body = json!({"subscriber": {"email": unique_email("logged"), "skip_confirmation_notification": true}});
    let subscriber = create(app, owner, &format!("{p}/subscribers"), body).await;
    let body = json!({"incident": {"name": "Logged", "status": "investigating"}});
    create(app, owner, &format!("{p}/incidents"), body).await;
    app.drain().await;
    let (status, log) = app
        .call(
            Method::GET,
            &format!("{p}/deliveries"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["subscriber_id"] == subscriber.as_str())
        .and_then(|d| d["id"].as_str())
        .expect("a delivery to the new subscriber")
        .to_owned()
}

/// Opens an incident as the owner; answers its id and its first update's id.
async fn open_incident(app: &TestApp, owner: &Tenant, p: &str, status: &str) -> (String, String) {
    let (code, answer) = app
        .post(
            &format!("{p}/incidents"),
            Some(&owner.token),
            &incident(status),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    (
        answer["id"].as_str().unwrap().to_owned(),
        answer["incident_updates"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("a method")
}

#[test]
fn the_matrix_names_every_route_of_the_api() {
    let walked: BTreeSet<(String, String)> = ALL
        .iter()
        .flat_map(|e| {
            let (methods, path) = e.route();
            methods
                .iter()
                .map(move |m| ((*m).to_owned(), path.to_owned()))
        })
        .chain(
            NOT_WALKED
                .iter()
                .map(|(m, path, _)| ((*m).to_owned(), (*path).to_owned())),
        )
        .collect();
    let routes: BTreeSet<(String, String)> = heliograph_api::v1_routes()
        .into_iter()
        .map(|(m, path)| (m.to_owned(), path.to_owned()))
        .collect();
    let missing: Vec<_> = routes.difference(&walked).collect();
    assert!(
        missing.is_empty(),
        "routes the matrix does not name: {missing:?}"
    );
    let stale: Vec<_> = walked.difference(&routes).collect();
    assert!(
        stale.is_empty(),
        "the matrix names routes that do not exist: {stale:?}"
    );
}

#[tokio::test]
async fn every_endpoint_admits_exactly_the_roles_the_matrix_names() {
    // One tenant adds a domain per role and endpoint: more than the
    // pending limit, which is not what this test is about.
    let app = TestApp::spawn_on(Infra {
        pending_domain_limit: Some(1000),
        ..Infra::default()
    })
    .await;
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
    // Every person calling is unverified, as asking for a verification link
    // needs; the tenant may still send (invitations, email subscribers)
    // through a second owner, whose address is verified.
    let co_owner = app.signup().await;
    app.join(&owner, &co_owner, "owner").await;
    sqlx::query(
        "update users set email_verified_at = null
          where id in (select user_id from memberships where tenant_id = $1::uuid)
            and id not in (select user_id from memberships where tenant_id = $2::uuid)",
    )
    .bind(&owner.tenant_id)
    .bind(&co_owner.tenant_id)
    .execute(&app.admin)
    .await
    .unwrap();
    for endpoint in ALL {
        for name in endpoint.route().0 {
            for (role, rank, token) in &tokens {
                let (path, body) = endpoint.request(&app, &owner).await;
                let (status, answer) = app
                    .call(method(name), &path, Some(token), body.as_ref())
                    .await;
                if *rank >= endpoint.least_rank() {
                    assert!(
                        status.is_success()
                            || (endpoint.needs_billing()
                                && answer["error"]["code"] == "billing_off"),
                        "{endpoint:?} {name} as {role}: {status} {answer}"
                    );
                } else {
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{endpoint:?} {name} as {role}: {answer}"
                    );
                    assert_eq!(answer["error"]["code"], "forbidden");
                }
            }
        }
    }
    app.finish().await;
}

/// Every row a tenant owns, as text, so a test can tell whether anything
/// changed; but an API key's `last_used_at` (the intruder's key is used),
/// an event's relay marks (the worker relays in the background) and a
/// domain's check state (the worker checks in the background; an
/// intruder's verify would show in the audit log).
const FINGERPRINT: &str = "select md5(concat_ws('|', \
    (select string_agg(t::text, ',' order by t::text) from pages t), \
    (select string_agg(t::text, ',' order by t::text) from components t), \
    (select string_agg(t::text, ',' order by t::text) from component_groups t), \
    (select string_agg(t::text, ',' order by t::text) from component_status_changes t), \
    (select string_agg(t::text, ',' order by t::text) from incidents t), \
    (select string_agg(t::text, ',' order by t::text) from incident_updates t), \
    (select string_agg(t::text, ',' order by t::text) from incident_components t), \
    (select string_agg(t::text, ',' order by t::text) from incident_templates t), \
    (select string_agg((t.id, t.tenant_id, t.page_id, t.hostname, t.token, t.created_at)::text, ',' order by t.id) from domains t), \
    (select string_agg(t::text, ',' order by t::text) from subscribers t), \
    (select string_agg((t.id, t.name, t.scope, t.revoked_at)::text, ',' order by t.id) from api_keys t), \
    (select string_agg(t::text, ',' order by t::text) from invitations t), \
    (select string_agg(t::text, ',' order by t::text) from memberships t), \
    (select string_agg(t::text, ',' order by t::text) from audit_log t), \
    (select string_agg((t.id, t.kind, t.payload)::text, ',' order by t.id) from outbox t)))";

async fn fingerprint(app: &TestApp) -> String {
    let (digest,): (String,) = sqlx::query_as(FINGERPRINT)
        .fetch_one(&app.admin)
        .await
        .expect("the fingerprint query runs");
    digest
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
    // The victim's resources are all made before the first look.
    let mut requests = vec![];
    for endpoint in ALL.into_iter().filter(|e| e.names_a_resource()) {
        let (path, body) = endpoint.request(&app, &victim).await;
        requests.push((endpoint, path, body));
    }
    let component = app.component(&victim, "Theirs").await;
    // The victim's background work (emails, confirmations) is done before the first look.
    app.drain().await;
    let before = fingerprint(&app).await;
    for (endpoint, path, body) in &requests {
        for name in endpoint.route().0 {
            for credential in [&intruder.token, &intruder_key] {
                let (status, answer) = app
                    .call(method(name), path, Some(credential), body.as_ref())
                    .await;
                if endpoint.person_only() && credential == &intruder_key {
                    // Keys never manage keys or the team, whoever's.
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{endpoint:?} {name}: {answer}"
                    );
                } else {
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "{endpoint:?} {name}: {answer}"
                    );
                    assert_eq!(answer["error"]["code"], "not_found");
                }
            }
        }
    }
    // The intruder's own page with the victim's component: still not found.
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/components/{component}", intruder.page_id),
            Some(&intruder.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(before, fingerprint(&app).await, "nothing changed");
    app.finish().await;
}

/// The endpoint a dashboard route's twin names: the one route of the
/// matrix with that method and path. The component's PATCH is two rows of
/// the matrix: the status change an editor may make (the dashboard's
/// one-click `/status`), and every other edit, an admin's (the component's
/// form, its save and its moves).
fn twin_endpoint(method: &str, path: &str, dashboard_path: &str) -> Endpoint {
    let matching: Vec<Endpoint> = ALL
        .into_iter()
        .filter(|e| e.route().1 == path && e.route().0.contains(&method))
        .collect();
    match matching.as_slice() {
        [one] => *one,
        [_, _] if dashboard_path.ends_with("/status") => Endpoint::SetComponentStatus,
        [_, _] => Endpoint::UpdateComponent,
        _ => panic!("{dashboard_path}: its twin {method} {path} is not a route of the matrix"),
    }
}

/// `pattern` (a route with `{name}`s) with the values `concrete` (the twin's
/// path, made by the matrix's walk) has for the names `twin` spells.
fn substitute(pattern: &str, twin: &str, concrete: &str) -> String {
    let values: Vec<(&str, &str)> = twin
        .split('/')
        .zip(concrete.split('/'))
        .filter(|(name, _)| name.starts_with('{'))
        .collect();
    pattern
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                values
                    .iter()
                    .find(|(name, _)| *name == segment)
                    .unwrap_or_else(|| panic!("{pattern}: {segment} is not in its twin {twin}"))
                    .1
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_dashboard_action_admits_exactly_the_roles_of_its_api_twin() {
    let app = TestApp::spawn_on(Infra {
        pending_domain_limit: Some(1000),
        ..Infra::default()
    })
    .await;
    let owner = app.signup().await;
    // Each role's browser session: the session token as the cookie, and
    // the session's CSRF token in each form (as the dashboard renders it).
    let keys = heliograph_auth::TokenKeys::new(
        &app.config.jwt_secret,
        app.config.urls.origin(),
        time::Duration::minutes(15),
    )
    .unwrap();
    let links = heliograph_auth::LinkSigner::new(secrecy::SecretString::from(
        crate::helpers::LINK_SECRET.to_owned(),
    ))
    .unwrap();
    let mut sessions = vec![];
    for (role, rank) in ROLES {
        let token = if role == "owner" {
            owner.token.clone()
        } else {
            let person = app.signup().await;
            app.join(&owner, &person, role).await
        };
        let session = keys.verify(&token).unwrap().sid;
        let csrf = links.sign("csrf", session.as_uuid());
        sessions.push((role, rank, token, csrf));
    }
    let mut walked = 0;
    for route in heliograph_api::dashboard_routes() {
        let heliograph_api::Twin::Api(twin_method, twin_path) = route.twin else {
            continue;
        };
        let endpoint = twin_endpoint(twin_method, twin_path, route.path);
        for (role, rank, token, csrf) in &sessions {
            let (concrete_twin, _) = endpoint.request(&app, &owner).await;
            let path = substitute(route.path, twin_path, &concrete_twin);
            let request = if route.method == "GET" {
                app.client.get(app.url(&path))
            } else {
                app.client.post(app.url(&path)).form(&[("_csrf", csrf)])
            };
            let response = request
                .header("cookie", format!("heliograph_session={token}"))
                .send()
                .await
                .unwrap();
            let status = response.status();
            if *rank >= endpoint.least_rank() {
                assert!(
                    !matches!(
                        status,
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::SEE_OTHER
                    ) || (status == StatusCode::SEE_OTHER
                        && !response.headers()["location"]
                            .to_str()
                            .unwrap()
                            .starts_with("/login")),
                    "{} {path} as {role} (twin {endpoint:?}): {status}",
                    route.method
                );
                assert!(
                    !status.is_server_error(),
                    "{} {path} as {role}: {status}",
                    route.method
                );
                if route.method == "GET" {
                    assert!(
                        status.is_success() || status.is_redirection(),
                        "{} {path} as {role}: {status}",
                        route.method
                    );
                }
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {path} as {role} (twin {endpoint:?})",
                    route.method
                );
                if route.method == "POST" {
                    // A form that cannot be read at all is still refused for
                    // the role first, as the API would refuse it.
                    let garbled = app
                        .client
                        .post(app.url(&format!("{path}?_csrf={csrf}")))
                        .header("cookie", format!("heliograph_session={token}"))
                        .header("content-type", "text/plain")
                        .body("position=%%%")
                        .send()
                        .await
                        .unwrap()
                        .status();
                    assert_eq!(
                        garbled,
                        StatusCode::FORBIDDEN,
                        "a garbled POST {path} as {role} (twin {endpoint:?})"
                    );
                }
            }
            walked += 1;
        }
    }
    assert!(walked > 0, "the dashboard has routes with API twins");
    app.finish().await;
}

#[test]
fn every_dashboard_twin_is_a_route_of_the_api() {
    let routes = heliograph_api::v1_routes();
    for route in heliograph_api::dashboard_routes() {
        if let heliograph_api::Twin::Api(method, path) = route.twin {
            assert!(
                routes.contains(&(method, path)),
                "{} {}: its twin {method} {path} is not an API route",
                route.method,
                route.path
            );
            assert!(
                matches!(route.method, "GET" | "POST"),
                "{} {}: the dashboard only gets and posts",
                route.method,
                route.path
            );
        }
    }
}
