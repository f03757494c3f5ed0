//! The OpenAPI document of the API, generated from the handlers'
//! `#[utoipa::path]` annotations: served at `/v1/openapi.json`, and
//! browsable with Swagger UI at `/v1/docs/` (vendored into the binary: no
//! CDN). The API tests check that it covers every route of the route tables
//! in `routes`.

use std::sync::LazyLock;

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpResponse, http::StatusCode};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{IntoResponses, Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::error::{ApiError, ErrorBody};
use crate::routes::{
    SESSION_COOKIE, accounts, api_keys, audit, billing, components, deliveries, domains, groups,
    health, incidents, pages, sessions, signup, subscribers, team, templates, uptime,
};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/v1/openapi.json";

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Heliograph API",
        version = env!("CARGO_PKG_VERSION"),
        description = "Heliograph's management API: status pages, their components, \
incidents and maintenances, the team and its keys. Bodies are JSON (or, where said, \
form-encoded with Rails-style brackets), wrapped in the resource's singular name as \
Statuspage does; any `/v1` path also answers with `.json` appended. Every error is \
`{\"error\": {\"code\", \"detail\", \"fields\"?}}` (`ErrorBody`).",
        license(name = "AGPL-3.0-only", identifier = "AGPL-3.0-only"),
    ),
    paths(
        health::healthz,
        health::readyz,
        signup::signup,
        sessions::login,
        sessions::refresh,
        sessions::logout,
        sessions::me,
        accounts::change_password,
        accounts::request_reset,
        accounts::confirm_reset,
        accounts::resend_verification,
        accounts::confirm_verification,
        api_keys::create,
        api_keys::list,
        api_keys::revoke,
        audit::list,
        billing::get,
        billing::plans,
        billing::checkout,
        billing::portal,
        billing::stripe_webhook,
        team::invite,
        team::invitations,
        team::accept,
        team::revoke_invitation,
        team::members,
        team::change_role,
        team::remove,
        pages::list,
        pages::create,
        pages::get,
        pages::update,
        uptime::daily,
        uptime::component,
        uptime::group,
        components::list,
        components::create,
        components::get,
        components::update,
        components::delete,
        groups::list,
        groups::create,
        groups::get,
        groups::update,
        groups::delete,
        subscribers::create,
        subscribers::list,
        subscribers::count,
        subscribers::get,
        subscribers::update,
        subscribers::delete,
        subscribers::resend_confirmation,
        subscribers::test,
        subscribers::reactivate,
        deliveries::events,
        deliveries::event_deliveries,
        deliveries::incident_deliveries,
        deliveries::update_deliveries,
        deliveries::list,
        deliveries::get,
        deliveries::redrive,
        incidents::list,
        incidents::create,
        incidents::unresolved,
        incidents::upcoming,
        incidents::scheduled,
        incidents::active_maintenance,
        incidents::get,
        incidents::update,
        incidents::delete,
        incidents::edit_update,
        incidents::get_postmortem,
        incidents::put_postmortem,
        incidents::delete_postmortem,
        incidents::publish_postmortem,
        templates::list,
        templates::create,
        templates::delete,
        domains::list,
        domains::create,
        domains::get,
        domains::delete,
        domains::verify,
    ),
    // Schemas that only a list (`page_of!`) or a query parameter names are
    // not collected from it.
    components(schemas(
        ErrorBody,
        deliveries::EventResponse,
        deliveries::DeliveryStatus,
        heliograph_domain::ApiKeyScope,
        EventKind,
        TemplateStatus
    )),
    modifiers(&SecuritySchemes, &DistinctOperationIds, &RequiredFields),
    tags(
        (name = "health", description = "Liveness and readiness, for orchestrators."),
        (name = "sessions", description = "Signing up, in and out."),
        (name = "accounts", description = "Passwords and email verification."),
        (name = "api keys", description = "Keys for machines; managed by admins, as people."),
        (name = "audit log", description = "Who changed what."),
        (name = "billing", description = "The plan, its limits and what the tenant has of each (docs/billing.md)."),
        (name = "team", description = "Invitations and members."),
        (name = "pages", description = "Status pages and their settings."),
        (name = "components", description = "What a page reports on."),
        (name = "component groups", description = "Components shown together."),
        (name = "subscribers", description = "Who is notified."),
        (name = "deliveries", description = "The delivery log: events, what became of each notification, and the redrive of dead letters."),
        (name = "incidents", description = "Incidents and scheduled maintenances, and their updates."),
        (name = "postmortems", description = "An incident's postmortem."),
        (name = "incident templates", description = "Ready-made incidents."),
        (name = "uptime", description = "Uptime per component and group, and per day."),
        (name = "custom domains", description = "A page's own hostnames, their DNS records and checks."),
    ),
)]
pub struct ApiDoc;

/// The three ways to authenticate (any one will do, where the operation lists it).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <token>` with the token from signup, sign-in or \
                         refresh, or `Bearer <key>` with an API key (`hg_…`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "oauth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Authorization: OAuth <key>`, Statuspage's form, with an API key. A `read` key \
                 acts as a viewer, a `read_write` key as an admin; keys never manage keys or \
                 the team.",
            ))),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The browser's session cookie, set by sign-in. A change (any method but GET, \
                 HEAD, OPTIONS) made with it must also send the session's CSRF token in \
                 `X-CSRF-Token`, or get 403 `csrf_failed`.",
            ))),
        );
    }
}

/// Operation ids are unique: where one handler serves both PATCH and PUT,
/// the PUT operation's id gets a `_put` suffix.
struct DistinctOperationIds;

impl Modify for DistinctOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let patch_id = item.patch.as_ref().and_then(|op| op.operation_id.clone());
            if let Some(put) = item.put.as_mut()
                && put.operation_id.is_some()
                && put.operation_id == patch_id
            {
                put.operation_id = patch_id.map(|id| format!("{id}_put"));
            }
        }
    }
}

/// The statuses an incident template may open an incident in.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "documents the `update_status` strings templates take"
)]
pub(crate) enum TemplateStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

/// The kind of an outbox event, as the delivery log and webhooks spell it.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "documents the stored kinds of `heliograph_domain::EventKind`"
)]
pub(crate) enum EventKind {
    #[schema(rename = "incident.created")]
    IncidentCreated,
    #[schema(rename = "incident.updated")]
    IncidentUpdated,
    #[schema(rename = "incident.resolved")]
    IncidentResolved,
    #[schema(rename = "maintenance.scheduled")]
    MaintenanceScheduled,
    #[schema(rename = "maintenance.reminder")]
    MaintenanceReminder,
    #[schema(rename = "maintenance.started")]
    MaintenanceStarted,
    #[schema(rename = "maintenance.updated")]
    MaintenanceUpdated,
    #[schema(rename = "maintenance.completed")]
    MaintenanceCompleted,
    #[schema(rename = "component.updated")]
    ComponentUpdated,
    #[schema(rename = "subscription.confirmation")]
    SubscriptionConfirmation,
    #[schema(rename = "subscription.ping")]
    SubscriptionPing,
    #[schema(rename = "deliveries.redriven")]
    DeliveriesRedriven,
}

/// Body fields the server requires, which the input types cannot say
/// themselves: they read every field as optional, to answer a missing one
/// with 422 `missing` rather than a parse error. A required field is also
/// not nullable (null is refused as missing).
///
/// Where one input type serves both create and update (absent fields of an
/// update stay as they are), the create operation gets a schema of its own,
/// `<Type>Create` inside `<Type>CreateEnvelope`, with the fields creating
/// needs required; the update keeps the type's own schema.
struct RequiredFields;

/// `(schema, required fields)`: input types used by one kind of operation.
const REQUIRED: &[(&str, &[&str])] = &[
    ("SignupBody", &["name", "slug", "email", "password"]),
    ("LoginBody", &["email", "password"]),
    ("ResetRequest", &["email"]),
    ("ResetConfirm", &["token", "password"]),
    ("VerifyConfirm", &["token"]),
    ("PasswordChange", &["current_password", "new_password"]),
    ("ApiKeyInput", &["name"]),
    ("InvitationInput", &["email", "role"]),
    ("AcceptBody", &["token", "password"]),
    ("MemberInput", &["role"]),
    ("TemplateInput", &["name", "title"]),
    ("DomainInput", &["hostname"]),
];

/// `(create operation, envelope key, input schema, required fields)`:
/// input types shared by create and update.
const REQUIRED_ON_CREATE: &[(&str, &str, &str, &[&str])] = &[
    ("create_page", "page", "PageInput", &["name", "subdomain"]),
    ("create_component", "component", "ComponentInput", &["name"]),
    (
        "create_component_group",
        "component_group",
        "GroupInput",
        &["name"],
    ),
    ("create_incident", "incident", "IncidentInput", &["name"]),
];

/// `schema` (an object) with `fields` required and not nullable.
fn require(schema: &mut RefOr<Schema>, fields: &[&str]) {
    let RefOr::T(Schema::Object(object)) = schema else {
        return;
    };
    for field in fields {
        let Some(property) = object.properties.get_mut(*field) else {
            continue;
        };
        match property {
            // `["string", "null"]` becomes `"string"`.
            RefOr::T(Schema::Object(p)) => {
                if let SchemaType::Array(types) = &p.schema_type {
                    let kept: Vec<Type> = types
                        .iter()
                        .filter(|t| **t != Type::Null)
                        .cloned()
                        .collect();
                    p.schema_type = match kept.as_slice() {
                        [only] => SchemaType::Type(only.clone()),
                        _ => SchemaType::Array(kept),
                    };
                }
            }
            // `oneOf [X, null]` becomes X.
            RefOr::T(Schema::OneOf(one_of)) => {
                let kept: Vec<&RefOr<Schema>> = one_of
                    .items
                    .iter()
                    .filter(|item| {
                        !matches!(item, RefOr::T(Schema::Object(o))
                            if o.schema_type == SchemaType::Type(Type::Null))
                    })
                    .collect();
                if let [only] = kept.as_slice() {
                    *property = (*only).clone();
                }
            }
            _ => {}
        }
        if !object.required.iter().any(|r| r == field) {
            object.required.push((*field).to_owned());
        }
    }
}

impl Modify for RequiredFields {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, fields) in REQUIRED {
            if let Some(schema) = components.schemas.get_mut(*name) {
                require(schema, fields);
            }
        }
        for (operation, key, input, fields) in REQUIRED_ON_CREATE {
            let Some(mut created) = components.schemas.get(*input).cloned() else {
                continue;
            };
            require(&mut created, fields);
            if let RefOr::T(Schema::Object(object)) = &mut created {
                object.description = Some(format!(
                    "The fields of a new one ({} required).",
                    fields.join(", ")
                ));
            }
            let base = input.strip_suffix("Input").unwrap_or(input);
            let (name, envelope) = (format!("{base}Create"), format!("{base}CreateEnvelope"));
            components.schemas.insert(name.clone(), created);
            components.schemas.insert(
                envelope.clone(),
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some(format!("`{{\"{key}\": {{...}}}}`, creating.")))
                    .property(*key, Ref::from_schema_name(name))
                    .required(*key)
                    .into(),
            );
            for item in openapi.paths.paths.values_mut() {
                let operations = [
                    &mut item.get,
                    &mut item.put,
                    &mut item.post,
                    &mut item.delete,
                    &mut item.patch,
                ];
                for op in operations.into_iter().flatten() {
                    if op.operation_id.as_deref() != Some(*operation) {
                        continue;
                    }
                    let Some(RefOr::T(body)) = op.request_body.as_mut() else {
                        continue;
                    };
                    for content in body.content.values_mut() {
                        if let RefOr::T(content) = content {
                            content.schema = Some(Ref::from_schema_name(envelope.clone()).into());
                        }
                    }
                }
            }
        }
    }
}

/// `malformed_body`: the body is not valid JSON (or, where only JSON is
/// taken, not sent as `application/json`), or is larger than 64 KiB; at
/// Stripe's webhook, `invalid_signature`: the `Stripe-Signature` header is
/// missing, stale, or signed by no current secret (nothing applied).
#[derive(IntoResponses)]
#[response(status = 400)]
pub struct BadRequest(pub ErrorBody<'static>);

/// `unauthorized`: missing or invalid credentials; or, where a password
/// is asked for, `invalid_credentials`: the email or the password is wrong.
#[derive(IntoResponses)]
#[response(
    status = 401,
    headers(("WWW-Authenticate" = String, description = "`Bearer`, with `unauthorized`."))
)]
pub struct Unauthorized(pub ErrorBody<'static>);

/// `forbidden`: the role does not allow this (or an API key asks for
/// what only a person may do); `email_unverified`: no owner of the tenant
/// has verified their email address yet, and the request would send to an
/// address the team typed in (an email or SMS subscriber, an invitation)
/// or turn SMS on; `csrf_failed`: a change authenticated by the session
/// cookie came without `X-CSRF-Token`.
#[derive(IntoResponses)]
#[response(status = 403)]
pub struct Forbidden(pub ErrorBody<'static>);

/// `not_found`: nothing here, or nothing this caller may know about
/// (another tenant's ids are not found either).
#[derive(IntoResponses)]
#[response(status = 404)]
pub struct NotFound(pub ErrorBody<'static>);

/// The request conflicts with existing data; `code` says how
/// (`slug_taken`, `email_taken`, `already_member`, `already_invited`,
/// `last_owner`, `already_verified`, `template_name_taken`,
/// `postmortem_published`, `already_subscribed`, `already_confirmed`,
/// `domain_taken`, `pending_domain_limit`, `billing_off`,
/// `subscription_exists`, `no_subscription`, `conflict`).
#[derive(IntoResponses)]
#[response(status = 409)]
pub struct Conflict(pub ErrorBody<'static>);

/// `unsupported_media_type`: the body is neither `application/json` nor
/// `application/x-www-form-urlencoded`.
#[derive(IntoResponses)]
#[response(status = 415)]
pub struct UnsupportedMediaType(pub ErrorBody<'static>);

/// `validation_failed`: `fields` names every invalid field of the body
/// or the query, each with its own `code` and `message`.
#[derive(IntoResponses)]
#[response(status = 422)]
pub struct ValidationFailed(pub ErrorBody<'static>);

/// `plan_limit` (billing on only): one more would pass the plan's limit;
/// `limit` names it, the plan, its value and where an owner upgrades.
/// Nothing was added.
#[derive(IntoResponses)]
#[response(status = 402)]
pub struct PaymentRequired(pub ErrorBody<'static>);

/// `stripe_unavailable`: Stripe could not be reached (or answered an
/// error of its own); nothing was changed: try again shortly.
#[derive(IntoResponses)]
#[response(status = 503)]
pub struct StripeUnavailable(pub ErrorBody<'static>);

/// `stripe_error`: Stripe refused the request (the platform's Stripe
/// settings need the operator); nothing was changed.
#[derive(IntoResponses)]
#[response(status = 502)]
pub struct StripeRefused(pub ErrorBody<'static>);

/// `rate_limited`: too many requests; retry after `Retry-After` seconds.
#[derive(IntoResponses)]
#[response(
    status = 429,
    headers(("Retry-After" = u64, description = "Seconds until the limit resets."))
)]
pub struct TooManyRequests(pub ErrorBody<'static>);

/// A 200 answering one page of a list (a bare array, as Statuspage's
/// clients expect), with the pagination headers of `input::paginated`.
macro_rules! page_of {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(IntoResponses)]
        #[response(
            status = 200,
            headers(
                ("Link" = String, description = "`first`, `last`, `prev` and `next` pages (RFC 8288)."),
                ("X-Total-Count" = i64, description = "How many match, over all pages."),
                ("X-Per-Page" = i64, description = "Items per page."),
                ("X-Page" = i64, description = "This page's number."),
            )
        )]
        pub struct $name(pub Vec<$item>);
    };
}

page_of!(
    /// One page of pages.
    PageList,
    pages::PageResponse
);
page_of!(
    /// One page of components.
    ComponentList,
    components::ComponentResponse
);
page_of!(
    /// One page of component groups.
    GroupList,
    groups::GroupResponse
);
page_of!(
    /// One page of incidents.
    IncidentList,
    incidents::IncidentResponse
);
page_of!(
    /// One page of subscribers.
    SubscriberList,
    subscribers::SubscriberResponse
);
page_of!(
    /// One page of outbox events.
    EventList,
    deliveries::EventResponse
);
page_of!(
    /// One page of incident templates.
    TemplateList,
    templates::TemplateResponse
);
page_of!(
    /// One page of custom domains.
    DomainList,
    domains::DomainResponse
);

static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| ApiDoc::openapi().to_json().map_err(|e| e.to_string()));

/// `GET /v1/openapi.json`: the document (no authentication).
pub async fn document() -> Result<HttpResponse, ApiError> {
    match &*DOCUMENT {
        Ok(json) => Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(json.as_str())),
        Err(e) => Err(ApiError::Internal(anyhow::anyhow!(
            "cannot serialize the OpenAPI document: {e}"
        ))),
    }
}

/// `GET /v1/docs`: Swagger UI lives at `/v1/docs/`.
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::build(StatusCode::PERMANENT_REDIRECT)
        .insert_header((header::LOCATION, "/v1/docs/"))
        .finish()
}

/// Swagger UI at `/docs/` of the scope it is added to (`/v1`), reading the
/// document from [`DOCUMENT_PATH`]. Its online validator is off: the page
/// calls nothing but this server.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").config(Config::new([DOCUMENT_PATH]).validator_url("none"))
}

#[cfg(test)]
mod tests {
    use heliograph_domain::IncidentStatus;

    /// The values an enumeration's schema documents.
    fn documented<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).expect("a schema serializes");
        schema["enum"]
            .as_array()
            .expect("an enumeration")
            .iter()
            .map(|v| v.as_str().expect("a string").to_owned())
            .collect()
    }

    #[test]
    fn documentation_only_enumerations_match_the_domain() {
        let kinds: Vec<String> = heliograph_domain::EventKind::ALL
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect();
        assert_eq!(documented::<super::EventKind>(), kinds);
        let opening: Vec<String> = IncidentStatus::ALL
            .iter()
            .filter(|s| s.is_unresolved() || **s == IncidentStatus::Resolved)
            .map(ToString::to_string)
            .collect();
        assert_eq!(documented::<super::TemplateStatus>(), opening);
        assert_eq!(
            documented::<heliograph_domain::ApiKeyScope>(),
            ["read", "read_write"]
        );
    }
}
