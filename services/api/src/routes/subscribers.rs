//! `/v1/pages/{page_id}/subscribers`.
//!
//! It runs past 700 lines because Statuspage's subscriber API has many
//! operations (list, count, create, read, update, delete, resend, test,
//! reactivate), each with its OpenAPI description beside it.

use actix_web::{HttpRequest, HttpResponse, web};
use heliograph_auth::SecretsKeyring;
use heliograph_domain::{
    Channel, ComponentId, EmailAddress, EndpointUrl, FieldError, HttpChannel, Page, PageId,
    PhoneNumber, ResendRefusal, SmsCountries, Subscriber, SubscriberId, Target,
};
use heliograph_store::{ListQuery, NewSubscriber, SubscriberState, TenantTx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, envelope};
use crate::idempotency::ShownOnce;
use crate::input::{Input, ListParams, paginated};
use crate::limits::Bucket;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PaymentRequired, TooManyRequests, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use crate::page_scope::{AtPage, Editor, Viewer};
use crate::secrets::{endpoint_digests, sealed_subscriber};
use crate::startup::AppState;

/// `{"subscriber": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SubscriberEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = SubscriberInput)]
    subscriber: Option<SubscriberInput>,
}

/// A subscriber to add: exactly one of `email`, `phone_number` and `endpoint`.
#[derive(Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct SubscriberInput {
    /// An email address.
    #[schema(format = Email)]
    pub(crate) email: Option<String>,
    /// A mobile number in international (E.164) form, e.g. `+14155550123`
    /// (spaces, dots, hyphens and brackets between the digits are taken).
    #[schema(pattern = r"^\s*\+[ .()-]*[1-9]([ .()-]*[0-9]){7,14}[ .()-]*\s*$")]
    pub(crate) phone_number: Option<String>,
    /// Accepted for Statuspage's clients and ignored: `phone_number` must
    /// carry its country code.
    pub(crate) phone_country: Option<String>,
    /// A URL that takes a POST: a webhook, or a Slack or Teams incoming
    /// webhook; `http://` or `https://`, at most 2,000 characters.
    #[schema(
        max_length = 2000,
        pattern = r"^https?://(\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]]+)(:[0-9]*)?([/?#]\S*)?$"
    )]
    pub(crate) endpoint: Option<String>,
    /// With `endpoint`: `webhook` (default), `slack` or `teams`. With the
    /// other fields it may name their channel (`email`, `sms`).
    #[schema(value_type = Option<Channel>)]
    pub(crate) r#type: Option<String>,
    /// Same as `type`, as Statuspage's answers call it.
    #[schema(value_type = Option<Channel>)]
    pub(crate) mode: Option<String>,
    /// Component ids to follow; none means all.
    #[schema(value_type = Option<Vec<Uuid>>)]
    pub(crate) components: Option<Vec<String>>,
    /// `true`: the subscriber is active at once, the team vouching for them.
    /// `false` or absent: a confirmation goes out (a link by email, a code
    /// by SMS, a ping to an endpoint) and nothing else is sent until it is
    /// answered.
    pub(crate) skip_confirmation_notification: Option<bool>,
}

/// A subscriber.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriberResponse {
    id: Uuid,
    /// How they are reached.
    mode: Channel,
    /// With `mode` `email`.
    email: Option<String>,
    /// With `mode` `sms` (E.164).
    phone_number: Option<String>,
    /// With `mode` `webhook`, `slack` or `teams`.
    endpoint: Option<String>,
    /// Component ids followed; empty means all.
    components: Vec<Uuid>,
    /// When they confirmed, or were added confirmed; null while a
    /// confirmation is awaited.
    confirmed_at: Option<String>,
    /// When the last confirmation (link, code or ping) was sent.
    confirmation_sent_at: Option<String>,
    /// When deliveries to them were suspended after three dead deliveries
    /// in a row; `POST …/subscribers/reactivate` lifts it.
    quarantined_at: Option<String>,
    /// Always null: quarantined subscribers are kept until reactivated or removed.
    purge_at: Option<String>,
    created_at: String,
    updated_at: String,
    /// The Standard Webhooks signing secret (`whsec_…`) of a `webhook`
    /// subscriber: in the answer that creates it, and never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_secret: Option<String>,
}

/// The address fields of a subscriber body, as given (the team's or the
/// public form's).
pub(crate) struct TargetFields {
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub endpoint: Option<String>,
    /// `type`, or else `mode`.
    pub kind: Option<String>,
}

/// Which of the address fields a channel uses.
pub(crate) const fn target_field(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "phone_number",
        Channel::Webhook | Channel::Slack | Channel::Teams => "endpoint",
    }
}

/// Parses exactly one address (blank fields count as absent, as a form
/// sends them), recording what is wrong in `f`.
pub(crate) fn parse_target(f: &mut Fields, given: TargetFields) -> Option<Target> {
    let present = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let (email, phone, endpoint) = (
        present(given.email),
        present(given.phone_number),
        present(given.endpoint),
    );
    let kind = present(given.kind);
    let given_count = [email.is_some(), phone.is_some(), endpoint.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given_count == 0 {
        f.push(FieldError::new(
            "email",
            "missing",
            "give an email address, a phone number or an endpoint",
        ));
        return None;
    }
    if given_count > 1 {
        f.push(FieldError::new(
            "subscriber",
            "ambiguous",
            "give only one of email, phone_number and endpoint",
        ));
        return None;
    }
    let kind = match kind.as_deref().map(str::parse::<Channel>) {
        None => None,
        Some(Ok(channel)) => Some(channel),
        Some(Err(_)) => {
            f.push(FieldError::new(
                "type",
                "invalid",
                "must be email, sms, webhook, slack or teams",
            ));
            return None;
        }
    };
    let mismatch = |f: &mut Fields| {
        f.push(FieldError::new(
            "type",
            "mismatch",
            "does not match the address given (an endpoint is a webhook, slack or teams)",
        ));
    };
    if let Some(raw) = email {
        if kind.is_some_and(|k| k != Channel::Email) {
            mismatch(f);
            return None;
        }
        return f
            .check(EmailAddress::parse("email", &raw))
            .map(Target::Email);
    }
    if let Some(raw) = phone {
        if kind.is_some_and(|k| k != Channel::Sms) {
            mismatch(f);
            return None;
        }
        return f
            .check(PhoneNumber::parse("phone_number", &raw))
            .map(Target::Sms);
    }
    let raw = endpoint.unwrap_or_default();
    let http = match kind.unwrap_or(Channel::Webhook) {
        Channel::Webhook => HttpChannel::Webhook,
        Channel::Slack => HttpChannel::Slack,
        Channel::Teams => HttpChannel::Teams,
        Channel::Email | Channel::Sms => {
            mismatch(f);
            return None;
        }
    };
    f.check(EndpointUrl::parse("endpoint", &raw))
        .map(|url| Target::Http(http, url))
}

/// Refuses a channel the page does not take (`allow_*_subscribers`; the
/// webhook setting covers Slack and Teams), and a number in a country the
/// page does not text.
pub(crate) fn check_allowed(page: &Page, target: &Target) -> Result<(), FieldError> {
    let channel = target.channel();
    let allowed = match channel {
        Channel::Email => page.allow_email_subscribers,
        Channel::Sms => page.allow_sms_subscribers,
        Channel::Webhook | Channel::Slack | Channel::Teams => page.allow_webhook_subscribers,
    };
    if !allowed {
        return Err(FieldError::new(
            target_field(channel),
            "channel_not_allowed",
            format!("this page does not take {channel} subscribers"),
        ));
    }
    if let Target::Sms(number) = target {
        check_country(page, number)?;
    }
    Ok(())
}

/// Refuses a number in a country the page does not text.
pub(crate) fn check_country(page: &Page, number: &PhoneNumber) -> Result<(), FieldError> {
    let countries = SmsCountries {
        home: page.sms_calling_code.as_deref(),
        allowed: &page.sms_allowed_calling_codes,
    };
    if countries.allow(number) {
        Ok(())
    } else {
        Err(countries.refusal("phone_number"))
    }
}

/// Component ids from a body, recording those that are not ids in `f`.
pub(crate) fn component_ids(f: &mut Fields, raw: Option<Vec<String>>) -> Vec<ComponentId> {
    raw.unwrap_or_default()
        .iter()
        .filter_map(|c| {
            f.check(c.trim().parse().map_err(|_| {
                FieldError::new(
                    "components",
                    "invalid",
                    format!("`{c}` is not a component id"),
                )
            }))
        })
        .collect()
}

/// 409 `already_subscribed`.
pub(crate) const fn already_subscribed() -> ApiError {
    ApiError::Conflict {
        code: "already_subscribed",
        detail: "This address is already subscribed to this page.",
    }
}

/// The subscriber a body describes, checked against what the page takes;
/// and a webhook's signing secret, to show once.
pub(crate) fn parse(
    keyring: &SecretsKeyring,
    input: SubscriberInput,
    page: &Page,
) -> Result<(NewSubscriber, Option<String>), ApiError> {
    let mut f = Fields::default();
    // `phone_country` is accepted and ignored: numbers carry their country code.
    let _ = input.phone_country;
    let target = parse_target(
        &mut f,
        TargetFields {
            email: input.email,
            phone_number: input.phone_number,
            endpoint: input.endpoint,
            kind: input.r#type.or(input.mode),
        },
    );
    let component_ids = component_ids(&mut f, input.components);
    if let Some(target) = &target {
        f.check(check_allowed(page, target));
    }
    let Some(target) = target else {
        return Err(f.into_error());
    };
    f.finish()?;
    Ok(sealed_subscriber(
        keyring,
        target,
        component_ids,
        input.skip_confirmation_notification == Some(true),
    ))
}

/// Adds a subscriber to a page (editor): confirmed at once with
/// `skip_confirmation_notification`, otherwise after answering the
/// confirmation sent to them. An email or SMS subscriber needs an owner of
/// the tenant whose address is verified (403 `email_unverified`); a number
/// must be in a country the page texts (422 `country_not_allowed`).
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/subscribers",
    tag = "subscribers",
    operation_id = "create_subscriber",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    request_body(content(
        (SubscriberEnvelope = "application/json", example = json!({"subscriber": {"email": "ops@example.com", "skip_confirmation_notification": true}})),
        (SubscriberEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "The subscriber; a webhook subscriber's `webhook_secret` is shown here only.", body = SubscriberResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, UnsupportedMediaType,
        ValidationFailed, TooManyRequests, PaymentRequired,
    ),
)]
pub async fn create(
    at: AtPage<Editor>,
    state: web::Data<AppState>,
    body: Input<SubscriberEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let AtPage {
        member,
        mut tx,
        page: p,
        ..
    } = at;
    let input = envelope("subscriber", body.0.subscriber)?;
    let (s, webhook_secret) = add(&state, &member, &mut tx, &p, input, Admission::One).await?;
    tx.commit().await?;
    let mut response = subscriber_response(&s);
    response.webhook_secret = webhook_secret;
    let shows_secret = response.webhook_secret.is_some();
    let response = HttpResponse::Created().json(response);
    // The signing secret is shown this once: an idempotent replay answers without it.
    Ok(if shows_secret {
        ShownOnce::mark(response, &["webhook_secret"])
    } else {
        response
    })
}

/// How an addition is held to the plan's limit on subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Checked here, alone.
    One,
    /// Checked by the caller, which holds the page's claim
    /// ([`crate::plan_limits::Claim`]) and checks all it added at once (an
    /// import, refused whole).
    Held,
}

/// Adds the subscriber `input` describes to `page`, as the team's (the
/// REST API's and the dashboard's form and import): parsed, checked against
/// the page, refused while no owner of the tenant is verified (for email
/// and SMS), refused if already subscribed, held to the plan's limit,
/// created and audited. Answers the subscriber and a webhook's signing
/// secret; the caller commits.
pub(crate) async fn add(
    state: &AppState,
    member: &Member,
    tx: &mut TenantTx,
    page: &Page,
    input: SubscriberInput,
    admission: Admission,
) -> Result<(Subscriber, Option<String>), ApiError> {
    let (new, webhook_secret) = parse(&state.secrets, input, page)?;
    // An address the team typed in gets a confirmation, or notifications at
    // once: not from an account nobody has proven to be anyone's.
    if matches!(new.target, Target::Email(_) | Target::Sms(_)) && !tx.tenant_verified().await? {
        return Err(ApiError::EmailUnverified);
    }
    let digests = endpoint_digests(&state.secrets, &new.target);
    if tx
        .subscriber_by_target(page.id, &new.target, &digests)
        .await?
        .is_some()
    {
        return Err(already_subscribed());
    }
    if matches!(new.target, Target::Sms(_)) {
        // A plan without texts takes no SMS subscriber (402 `plan_limit`).
        crate::plan_limits::admit_one(state, tx, heliograph_domain::Limit::TextsPerMonth, None)
            .await?;
    }
    if admission == Admission::One {
        crate::plan_limits::admit_one(
            state,
            tx,
            heliograph_domain::Limit::SubscribersPerPage,
            Some(page.id),
        )
        .await?;
    }
    let s = tx.create_subscriber(page.id, &new).await?;
    // The address itself stays out of the log: it names a person.
    tx.audit(&member.audit(
        "subscriber.created",
        "subscriber",
        s.id.as_uuid(),
        json!({"mode": s.channel, "confirmed": new.confirmed, "components": s.component_ids}),
    ))
    .await?;
    Ok((s, webhook_secret))
}

/// A subscriber's address as answers show it: an email address or a
/// number whole, a Slack or Teams URL cut to its origin and last characters.
pub(crate) fn shown_address(s: &Subscriber) -> String {
    s.email
        .clone()
        .or_else(|| s.phone_number.clone())
        .or_else(|| s.endpoint.as_deref().map(|e| s.channel.shown_target(e)))
        .unwrap_or_default()
}

fn subscriber_response(s: &Subscriber) -> SubscriberResponse {
    SubscriberResponse {
        id: s.id.as_uuid(),
        mode: s.channel,
        email: s.email.clone(),
        phone_number: s.phone_number.clone(),
        endpoint: s.endpoint.as_deref().map(|e| s.channel.shown_target(e)),
        components: s.component_ids.iter().map(ComponentId::as_uuid).collect(),
        confirmed_at: s.confirmed_at.map(heliograph_web::timestamp),
        confirmation_sent_at: s.confirmation_sent_at.map(heliograph_web::timestamp),
        quarantined_at: s.quarantined_at.map(heliograph_web::timestamp),
        purge_at: None,
        created_at: heliograph_web::timestamp(s.created_at),
        updated_at: heliograph_web::timestamp(s.updated_at),
        webhook_secret: None,
    }
}

/// Statuspage's subscriber filters: `type` (channel) and `state`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscriberFilter {
    /// `email`, `sms`, `webhook`, `slack` or `teams`; all when absent.
    #[param(value_type = Option<Channel>)]
    r#type: Option<String>,
    /// `active` (default), `unconfirmed`, `quarantined` or `all`.
    #[param(pattern = "^(active|unconfirmed|quarantined|all)$")]
    state: Option<String>,
}

impl SubscriberFilter {
    /// The filter of a list: `type` as the store query's channels, and the state.
    pub(crate) fn new(kind: Option<String>, state: Option<String>) -> Self {
        Self {
            r#type: kind,
            state,
        }
    }

    /// The store query and the state kept.
    pub(crate) fn parse(
        &self,
        params: &ListParams,
    ) -> Result<(ListQuery, SubscriberState), ApiError> {
        let mut query = params.plain_query()?;
        let mut f = Fields::default();
        if let Some(kind) = self.r#type.as_deref() {
            match kind.parse::<Channel>() {
                Ok(channel) => query.statuses = vec![channel.as_str().to_owned()],
                Err(_) => f.push(FieldError::new(
                    "type",
                    "invalid",
                    "must be email, sms, webhook, slack or teams",
                )),
            }
        }
        let state = match self.state.as_deref() {
            None | Some("active") => Some(SubscriberState::Active),
            Some("unconfirmed") => Some(SubscriberState::Unconfirmed),
            Some("quarantined") => Some(SubscriberState::Quarantined),
            Some("all") => Some(SubscriberState::All),
            Some(_) => {
                f.push(FieldError::new(
                    "state",
                    "invalid",
                    "must be active, unconfirmed, quarantined or all",
                ));
                None
            }
        };
        f.finish()?;
        Ok((query, state.unwrap_or(SubscriberState::Active)))
    }
}

/// Lists a page's subscribers (viewer): `q` matches the address.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/subscribers",
    tag = "subscribers",
    operation_id = "list_subscribers",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ListParams, SubscriberFilter),
    responses(
        crate::openapi::SubscriberList,
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn list(
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
    filter: web::Query<SubscriberFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let (query, which) = filter.parse(&params)?;
    let listed = tx.list_subscribers(page, &query, which).await?;
    tx.commit().await?;
    Ok(paginated(
        &req,
        state.urls.origin(),
        &query,
        listed,
        subscriber_response,
    ))
}

/// `{"count": n}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriberCount {
    count: i64,
}

/// Counts a page's subscribers (viewer), with the list's filters.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/subscribers/count",
    tag = "subscribers",
    operation_id = "count_subscribers",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ListParams, SubscriberFilter),
    responses(
        (status = 200, description = "How many match.", body = SubscriberCount),
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn count(
    at: AtPage<Viewer>,
    params: web::Query<ListParams>,
    filter: web::Query<SubscriberFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let (query, which) = filter.parse(&params)?;
    let count = tx.count_subscribers(page, &query, which).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SubscriberCount { count }))
}

/// One subscriber (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/subscribers/{id}",
    tag = "subscribers",
    operation_id = "get_subscriber",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The subscriber's id."),
    ),
    responses(
        (status = 200, description = "The subscriber.", body = SubscriberResponse),
        Unauthorized, NotFound, TooManyRequests,
    ),
)]
pub async fn get(
    at: AtPage<Viewer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let id: SubscriberId = path_id(&path.1)?;
    let s = tx.subscriber_on_page(page, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(subscriber_response(&s)))
}

/// Unsubscribes a subscriber (editor), as Statuspage's delete does; answers
/// it as it was.
#[utoipa::path(
    delete,
    path = "/v1/pages/{page_id}/subscribers/{id}",
    tag = "subscribers",
    operation_id = "delete_subscriber",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The subscriber's id."),
    ),
    responses(
        (status = 200, description = "The subscriber, now unsubscribed.", body = SubscriberResponse),
        Unauthorized, Forbidden, NotFound, TooManyRequests,
    ),
)]
pub async fn delete(
    at: AtPage<Editor>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { member, mut tx, .. } = at;
    let id: SubscriberId = path_id(&path.1)?;
    let s = remove(&member, &mut tx, page, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(subscriber_response(&s)))
}

/// A subscriber id from a path (404 if it is not one).
pub(crate) fn subscriber_id(raw: &str) -> Result<SubscriberId, ApiError> {
    path_id(raw)
}

/// Unsubscribes subscriber `id` of `page` (404 if it is not a live one of
/// the page) and audits it; answers it as it was. The caller commits.
pub(crate) async fn remove(
    member: &Member,
    tx: &mut TenantTx,
    page: PageId,
    id: SubscriberId,
) -> Result<Subscriber, ApiError> {
    let s = tx.subscriber_on_page(page, id).await?;
    tx.unsubscribe(page, id).await?;
    tx.audit(&member.audit(
        "subscriber.deleted",
        "subscriber",
        s.id.as_uuid(),
        json!({"mode": s.channel}),
    ))
    .await?;
    Ok(s)
}

/// `{"subscriber": {"components": [...]}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SubscriberEditEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = SubscriberEdit)]
    subscriber: Option<SubscriberEdit>,
}

/// What may change of a subscriber: the components followed. (Their
/// address is who they are: a new address is a new subscriber.)
#[derive(Deserialize, utoipa::ToSchema)]
struct SubscriberEdit {
    /// Component ids to follow, replacing the current choice; empty means
    /// all; absent leaves it as it is. `component_ids` is taken too.
    #[serde(alias = "component_ids")]
    #[schema(value_type = Option<Vec<Uuid>>)]
    components: Option<Vec<String>>,
}

/// Changes which components a subscriber follows (editor). PATCH and PUT do the same.
#[utoipa::path(
    method(patch, put),
    path = "/v1/pages/{page_id}/subscribers/{id}",
    tag = "subscribers",
    operation_id = "update_subscriber",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The subscriber's id."),
    ),
    request_body(content(
        (SubscriberEditEnvelope = "application/json"),
        (SubscriberEditEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The subscriber.", body = SubscriberResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed,
        TooManyRequests,
    ),
)]
pub async fn update(
    at: AtPage<Editor>,
    path: web::Path<(String, String)>,
    body: Input<SubscriberEditEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { member, mut tx, .. } = at;
    let id: SubscriberId = path_id(&path.1)?;
    let before = tx.subscriber_on_page(page, id).await?;
    let input = envelope("subscriber", body.0.subscriber)?;
    let Some(raw) = input.components else {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(subscriber_response(&before)));
    };
    let mut f = Fields::default();
    let components = component_ids(&mut f, Some(raw));
    f.finish()?;
    tx.set_subscriber_components(page, id, &components).await?;
    let s = tx.subscriber(id).await?;
    tx.audit(&member.audit(
        "subscriber.updated",
        "subscriber",
        s.id.as_uuid(),
        json!({"mode": s.channel, "components": s.component_ids, "old_components": before.component_ids}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(subscriber_response(&s)))
}

/// How long a confirmation must be left alone before another is sent.
const RESEND_AFTER: time::Duration = time::Duration::seconds(60);

/// Sends a subscriber's confirmation again (editor): a new link, a new SMS
/// code (the old one stops working) or a new ping. Only while unconfirmed,
/// and at most once a minute.
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/subscribers/{id}/resend_confirmation",
    tag = "subscribers",
    operation_id = "resend_subscriber_confirmation",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The subscriber's id."),
    ),
    responses(
        (status = 202, description = "The confirmation is on its way; the subscriber.", body = SubscriberResponse),
        Unauthorized, Forbidden, NotFound, Conflict, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn resend_confirmation(
    at: AtPage<Editor>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let AtPage {
        mut tx, page: p, ..
    } = at;
    let id: SubscriberId = path_id(&path.1)?;
    let s = resend(&state, &mut tx, &p, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Accepted().json(subscriber_response(&s)))
}

/// Sends subscriber `id`'s confirmation again: 409 `already_confirmed`,
/// 422 if the page no longer texts their number, 429 within a minute of
/// the last. Answers the subscriber; the caller commits.
pub(crate) async fn resend(
    state: &AppState,
    tx: &mut TenantTx,
    p: &Page,
    id: SubscriberId,
) -> Result<Subscriber, ApiError> {
    let page = p.id;
    let s = tx.subscriber_on_page(page, id).await?;
    let resend = s.resend_confirmation(time::OffsetDateTime::now_utc(), RESEND_AFTER);
    if resend == Err(ResendRefusal::AlreadyConfirmed) {
        return Err(ApiError::Conflict {
            code: "already_confirmed",
            detail: "This subscriber has confirmed already.",
        });
    }
    if let Some(Ok(number)) = s
        .phone_number
        .as_deref()
        .map(|n| PhoneNumber::parse("phone_number", n))
    {
        // The page may have stopped texting, or texting this country, since.
        let target = Target::Sms(number);
        check_allowed(p, &target).map_err(ApiError::field)?;
    }
    if let Err(ResendRefusal::TooSoon(wait)) = resend {
        return Err(ApiError::RateLimited {
            retry_after_secs: u64::try_from(wait.whole_seconds()).unwrap_or(0) + 1,
        });
    }
    // The row's time covers the usual case; the counter closes the race of
    // two resends read at the same time.
    state
        .limiter
        .hit(Bucket::ResendBySubscriber, &id.to_string())
        .await?;
    tx.request_confirmation(page, id).await?;
    Ok(tx.subscriber(id).await?)
}

/// Queues a test ping to a webhook, Slack or Teams subscriber (editor); it
/// shows in the delivery log as a `subscription.ping` event.
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/subscribers/{id}/test",
    tag = "subscribers",
    operation_id = "test_subscriber",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The subscriber's id."),
    ),
    responses(
        (status = 202, description = "The ping is queued; the subscriber.", body = SubscriberResponse),
        Unauthorized, Forbidden, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn test(
    at: AtPage<Editor>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { mut tx, .. } = at;
    let id: SubscriberId = path_id(&path.1)?;
    let s = tx.subscriber_on_page(page, id).await?;
    if !s.channel.is_http() {
        return Err(ApiError::field(FieldError::new(
            "mode",
            "not_an_endpoint",
            "only webhook, Slack and Teams subscribers can be pinged",
        )));
    }
    state
        .limiter
        .hit(Bucket::PingBySubscriber, &id.to_string())
        .await?;
    tx.request_ping(page, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Accepted().json(subscriber_response(&s)))
}

/// `{"subscribers": [ids]}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReactivateBody {
    /// Subscriber ids, at most 1,000.
    #[schema(value_type = Option<Vec<Uuid>>, max_items = 1000)]
    subscribers: Option<Vec<String>>,
}

/// `{"reactivated": [ids]}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Reactivated {
    /// The subscribers whose quarantine this lifted (others were not
    /// quarantined, or are not live subscribers of the page).
    reactivated: Vec<Uuid>,
}

/// Most ids one request may name.
const MAX_IDS: usize = 1000;

/// Parses a list of ids given in `field`.
pub(crate) fn ids_in<T: std::str::FromStr>(
    field: &'static str,
    raw: Option<Vec<String>>,
) -> Result<Vec<T>, ApiError> {
    let raw = raw.unwrap_or_default();
    if raw.len() > MAX_IDS {
        return Err(ApiError::field(FieldError::new(
            field,
            "too_many",
            format!("name at most {MAX_IDS}"),
        )));
    }
    let mut f = Fields::default();
    let ids = raw
        .iter()
        .filter_map(|r| {
            f.check(
                r.trim()
                    .parse()
                    .map_err(|_| FieldError::new(field, "invalid", format!("`{r}` is not an id"))),
            )
        })
        .collect();
    f.finish()?;
    Ok(ids)
}

/// Lifts the quarantine of subscribers (editor): deliveries reach them again.
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/subscribers/reactivate",
    tag = "subscribers",
    operation_id = "reactivate_subscribers",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    request_body(content(
        (ReactivateBody = "application/json"),
        (ReactivateBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The subscribers reactivated.", body = Reactivated),
        BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed,
        TooManyRequests,
    ),
)]
pub async fn reactivate(
    at: AtPage<Editor>,
    body: Input<ReactivateBody>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let AtPage { member, mut tx, .. } = at;
    let ids: Vec<SubscriberId> = ids_in("subscribers", body.0.subscribers)?;
    let lifted = reactivate_ids(&member, &mut tx, page, &ids).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Reactivated {
        reactivated: lifted.iter().map(SubscriberId::as_uuid).collect(),
    }))
}

/// Lifts the quarantine of those of `ids` that are quarantined on `page`,
/// auditing each; answers them. The caller commits.
pub(crate) async fn reactivate_ids(
    member: &Member,
    tx: &mut TenantTx,
    page: PageId,
    ids: &[SubscriberId],
) -> Result<Vec<SubscriberId>, ApiError> {
    let lifted = tx.reactivate_subscribers(page, ids).await?;
    for id in &lifted {
        tx.audit(&member.audit(
            "subscriber.reactivated",
            "subscriber",
            id.as_uuid(),
            json!({}),
        ))
        .await?;
    }
    Ok(lifted)
}
