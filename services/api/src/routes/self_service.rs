//! Self-service subscription on a public page, without an account:
//!
//! - `POST {page}/subscriptions` subscribes an email address, a phone
//!   number or an endpoint (webhook, Slack, Teams), always unconfirmed
//!   (double opt-in): the worker sends a link, a code or a ping;
//! - `GET`/`POST {page}/subscriptions/confirm?token=` confirms by the
//!   emailed link (`GET` only asks: link scanners fetch links);
//! - `POST {page}/subscriptions/confirm_sms` confirms by the texted code;
//! - `GET`/`POST {page}/subscription?token=` lets a subscriber choose their
//!   components (the token is the one of the unsubscribe link).
//!
//! The subscribe answer never tells whether an address was subscribed
//! already: a pending one gets its confirmation again, a confirmed one
//! nothing, and both answer as a new one does. (A webhook URL is the
//! exception: its signing secret can be shown only once, so a second
//! subscription of the same URL is 409.) Requests are limited per client
//! address and per target. Form posts (the page's own form) get small HTML
//! pages; JSON requests get JSON.
//!
//! The words of the HTML answers are `notices`' (askama templates); the
//! team's side of subscribers is `subscribers`'.
//!
//! The file passes 700 lines because the four flows share their request
//! checks, their form-or-JSON answers and their limits, and read best side by
//! side; its HTML is in `notices`.

use std::collections::HashSet;

use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use heliograph_auth::{CONFIRM_PURPOSE, SMS_CODE_PURPOSE, UNSUBSCRIBE_PURPOSE};
use heliograph_domain::subscriber::code_verdict;
use heliograph_domain::{
    Audience, Channel, CodeVerdict, Component, ComponentId, FieldError, PageId, Subscriber,
    SubscriberId, Target, TenantId,
};
use heliograph_store::StoreError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::notices::{Choice, Link, Manage, Notice, answer};
use super::public::{not_found_page, unavailable};
use super::subscribers::{
    TargetFields, already_subscribed, check_allowed, component_ids, parse_target,
};
use crate::auth::client_ip;
use crate::error::{ApiError, Fields, envelope, required};
use crate::limits::Bucket;
use crate::public_pages::PageKey;
use crate::secrets::{endpoint_digests, sealed_subscriber};
use crate::startup::AppState;

/// Largest body taken.
const BODY_LIMIT: usize = 16 * 1024;

/// How a request came, and so how it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `application/json`: answered in JSON, as the API.
    Json,
    /// A form post (`application/x-www-form-urlencoded`, Rails brackets):
    /// answered with a small page.
    Form,
}

impl Format {
    fn of(req: &HttpRequest) -> Option<Self> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match content_type.as_str() {
            "application/json" => Some(Self::Json),
            "application/x-www-form-urlencoded" | "" => Some(Self::Form),
            _ => None,
        }
    }

    fn parse<T: DeserializeOwned>(self, body: &[u8]) -> Result<T, ApiError> {
        if body.len() > BODY_LIMIT {
            return Err(ApiError::MalformedBody(format!(
                "The body must be at most {BODY_LIMIT} bytes."
            )));
        }
        let invalid = |e: String| ApiError::field(FieldError::new("body", "invalid", e));
        match self {
            Self::Json => serde_json::from_slice(body).map_err(|e| {
                if e.is_data() {
                    invalid(e.to_string())
                } else {
                    ApiError::MalformedBody("The body is not valid JSON.".to_owned())
                }
            }),
            Self::Form => serde_qs::Config::new()
                .max_depth(4)
                .use_form_encoding(true)
                .deserialize_bytes(body)
                .map_err(|e| invalid(e.to_string())),
        }
    }

    /// The answer to a failure: the API's JSON error, or a small page.
    async fn failure(
        self,
        state: &AppState,
        route: Option<PageKey>,
        prefix: &str,
        err: &ApiError,
    ) -> HttpResponse {
        match self {
            Self::Json => visitor_facing(err).as_ref().unwrap_or(err).error_response(),
            Self::Form => {
                let shown = visitor_facing(err);
                failure_page(state, route, prefix, shown.as_ref().unwrap_or(err)).await
            }
        }
    }
}

/// What a visitor is answered instead of `err`, if not `err` itself: a
/// page whose team's plan is full is `page_full` (409), with no word of
/// the plan.
fn visitor_facing(err: &ApiError) -> Option<ApiError> {
    matches!(err, ApiError::PlanLimit { .. }).then_some(ApiError::Conflict {
        code: "page_full",
        detail: "This page is not taking new subscribers at the moment.",
    })
}

/// A failure as a small page, saying what a person can do about it.
async fn failure_page(
    state: &AppState,
    route: Option<PageKey>,
    prefix: &str,
    err: &ApiError,
) -> HttpResponse {
    let notice = match err {
        ApiError::Validation(fields) => Notice::CheckForm {
            problems: fields
                .iter()
                .map(|f| (field_label(f.field), f.message.as_str()))
                .collect(),
        },
        ApiError::RateLimited { .. } => Notice::TooManyRequests,
        ApiError::Conflict {
            code: "page_full", ..
        } => Notice::PageFull,
        ApiError::Conflict { detail, .. } => Notice::AlreadySubscribed { detail },
        ApiError::NotFound => return not_found_page(),
        ApiError::MalformedBody(_) | ApiError::UnsupportedMediaType => Notice::NotUnderstood,
        other => {
            if let ApiError::Internal(e) = other {
                tracing::error!(error = format!("{e:#}"), "self-service request failed");
            }
            return unavailable();
        }
    };
    let mut response = answer(state, route, prefix, err.status_code(), &notice).await;
    if let ApiError::RateLimited { retry_after_secs } = err
        && let Ok(value) = header::HeaderValue::from_str(&retry_after_secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// What a person calls a field.
fn field_label(field: &str) -> &'static str {
    match field {
        "email" => "Email address",
        "phone_number" => "Phone number",
        "endpoint" => "URL",
        "type" => "Kind of URL",
        "components" => "Components",
        "code" => "Code",
        "subscriber_id" => "Subscription",
        _ => "Form",
    }
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .finish()
}

/// `{"subscriber": {...}}`, or `subscriber[email]=…` from the page's form.
#[derive(Deserialize)]
struct SubscribeEnvelope {
    subscriber: Option<PublicSubscriber>,
}

/// What the public may give: one address and the components to follow.
#[derive(Deserialize)]
struct PublicSubscriber {
    email: Option<String>,
    phone_number: Option<String>,
    endpoint: Option<String>,
    /// With `endpoint`: `webhook` (default), `slack` or `teams`.
    r#type: Option<String>,
    mode: Option<String>,
    #[serde(default)]
    components: Vec<String>,
}

/// A subscription awaiting its confirmation, as the subscribe answer tells it.
struct Pending {
    channel: Channel,
    /// The id the SMS code form names: the subscriber's `sms_handle`, or a
    /// [`decoy_id`]; never the row's id.
    subscriber_id: Uuid,
    /// A new webhook subscriber's signing secret, shown once.
    webhook_secret: Option<String>,
}

/// What every public form POST checks first: the page exists, the method
/// is POST, and the body is a form or JSON.
fn public_post(
    req: &HttpRequest,
    route: Option<PageKey>,
) -> Result<(PageKey, Format), Box<HttpResponse>> {
    let Some(key) = route else {
        return Err(Box::new(not_found_page()));
    };
    if req.method() != Method::POST {
        return Err(Box::new(method_not_allowed("POST")));
    }
    let format =
        Format::of(req).ok_or_else(|| Box::new(ApiError::UnsupportedMediaType.error_response()))?;
    Ok((key, format))
}

/// `POST {page}/subscriptions`.
pub(super) async fn subscribe(
    req: &HttpRequest,
    state: &AppState,
    route: Option<PageKey>,
    prefix: &str,
    body: &web::Bytes,
) -> HttpResponse {
    let ((tenant, page), format) = match public_post(req, route) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    let outcome = async {
        state
            .limiter
            .hit_client(Bucket::SubscribeByIp, client_ip(req))
            .await?;
        let given: SubscribeEnvelope = format.parse(body)?;
        let input = envelope("subscriber", given.subscriber)?;
        subscribe_as(state, tenant, page, input).await
    };
    match outcome.await {
        Ok(pending) => pending.answer(state, route, format, prefix).await,
        Err(e) => format.failure(state, route, prefix, &e).await,
    }
}

async fn subscribe_as(
    state: &AppState,
    tenant: TenantId,
    page: PageId,
    input: PublicSubscriber,
) -> Result<Pending, ApiError> {
    let mut f = Fields::default();
    // The page's form sends its kind-of-URL choice whichever field was
    // filled in: it speaks only for an endpoint.
    let endpoint_given = input
        .endpoint
        .as_ref()
        .is_some_and(|e| !e.trim().is_empty());
    let kind = input.r#type.or(input.mode).filter(|_| endpoint_given);
    let target = parse_target(
        &mut f,
        TargetFields {
            email: input.email,
            phone_number: input.phone_number,
            endpoint: input.endpoint,
            kind,
        },
    );
    let components = component_ids(&mut f, Some(input.components));
    let Some(target) = target else {
        return Err(f.into_error());
    };
    f.finish()?;
    let mut tx = state.store.tenant_tx(tenant).await?;
    let p = tx.page(page).await?;
    check_allowed(&p, &target).map_err(ApiError::field)?;
    // Private components are not on the public page: to the public they do not exist.
    let public: HashSet<Uuid> = tx
        .components(page)
        .await?
        .into_iter()
        .filter(|c| Audience::Public.sees(c.visibility))
        .map(|c| c.id.as_uuid())
        .collect();
    if let Some(unknown) = components.iter().find(|c| !public.contains(&c.as_uuid())) {
        return Err(ApiError::field(FieldError::new(
            "components",
            "not_found",
            format!("no component {unknown} on this page"),
        )));
    }
    state
        .limiter
        .hit(Bucket::SubscribeByTarget, &target_key(state, page, &target))
        .await?;
    let channel = target.channel();
    let digests = endpoint_digests(&state.secrets, &target);
    let pending = match tx.subscriber_by_target(page, &target, &digests).await? {
        Some(_) if channel == Channel::Webhook => return Err(already_subscribed()),
        Some(s) if s.confirmed_at.is_none() => {
            // The latest request is what the confirmation will confirm.
            tx.set_subscriber_components(page, s.id, &components)
                .await?;
            tx.request_confirmation(page, s.id).await?;
            Pending {
                channel,
                subscriber_id: s.sms_handle.unwrap_or_default(),
                webhook_secret: None,
            }
        }
        // Confirmed already: nothing new is sent, and the answer is the same.
        Some(s) => Pending {
            channel,
            subscriber_id: decoy_id(state, &s),
            webhook_secret: None,
        },
        None => {
            crate::plan_limits::admit_one(
                state,
                &mut tx,
                heliograph_domain::Limit::SubscribersPerPage,
                Some(page),
            )
            .await?;
            let (new, webhook_secret) =
                sealed_subscriber(&state.secrets, target, components, false);
            let s = tx.create_subscriber(page, &new).await?;
            Pending {
                channel,
                subscriber_id: s.sms_handle.unwrap_or_default(),
                webhook_secret,
            }
        }
    };
    tx.commit().await?;
    tracing::info!(page.id = %page, channel = %channel, "self-service subscription requested");
    Ok(pending)
}

/// The key a target's subscription attempts are counted under: a keyed hash
/// (the link secret's), so Redis never holds an address, nor anything a
/// dictionary of addresses could reverse.
fn target_key(state: &AppState, page: PageId, target: &Target) -> String {
    let value = match target {
        Target::Email(e) => format!("email:{}", e.as_str().to_lowercase()),
        Target::Sms(p) => format!("sms:{}", p.as_str()),
        Target::Http(_, url) => format!("http:{}", url.as_str()),
    };
    let digest = Sha256::digest(value.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    let signed = state.links.sign("subscribe-limit", Uuid::from_bytes(id));
    let tag = signed.split_once('.').map_or("", |(_, tag)| tag);
    format!("{page}:{}", tag.get(..32).unwrap_or(tag))
}

/// The id the subscribe answer names for a number that is subscribed and
/// confirmed already. A pending number's answer names its code form's
/// handle (`sms_handle`: random, stable while it is pending); this one must
/// look the same: random-looking (a UUIDv4, no time in it) and stable, so
/// derived from the row's id with the link secret. It is not the row's id
/// (a stranger must not get hold of a subscriber's id, nor learn that the
/// number is subscribed). Codes entered for it are refused, and lock after
/// as many tries as a real one.
fn decoy_id(state: &AppState, s: &Subscriber) -> Uuid {
    let signed = state.links.sign("sms-decoy", s.id.as_uuid());
    let tag = signed.split_once('.').map_or("", |(_, tag)| tag);
    let mut random = [0u8; 16];
    for (i, byte) in random.iter_mut().enumerate() {
        *byte = tag
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or_default();
    }
    uuid::Builder::from_random_bytes(random).into_uuid()
}

impl Pending {
    async fn answer(
        &self,
        state: &AppState,
        route: Option<PageKey>,
        format: Format,
        prefix: &str,
    ) -> HttpResponse {
        if format == Format::Json {
            let mut body = serde_json::json!({"status": "confirmation_sent"});
            if self.channel == Channel::Sms {
                body["subscriber_id"] = serde_json::json!(self.subscriber_id);
            }
            if let Some(secret) = &self.webhook_secret {
                body["webhook_secret"] = serde_json::json!(secret);
            }
            return HttpResponse::Accepted()
                .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
                .json(body);
        }
        let notice = match self.channel {
            Channel::Email => Notice::CheckInbox,
            Channel::Sms => Notice::EnterCode {
                subscriber_id: self.subscriber_id,
            },
            Channel::Webhook => Notice::ConfirmEndpoint {
                webhook_secret: self.webhook_secret.as_deref(),
            },
            Channel::Slack | Channel::Teams => Notice::CheckChannel,
        };
        answer(state, route, prefix, StatusCode::OK, &notice).await
    }
}

/// The `token` of the query string.
fn token(req: &HttpRequest) -> Option<String> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("token").cloned())
}

/// The page after a subscription is confirmed, with the way to manage it.
async fn subscribed_page(
    state: &AppState,
    route: Option<PageKey>,
    prefix: &str,
    id: SubscriberId,
) -> HttpResponse {
    let token = state.links.sign(UNSUBSCRIBE_PURPOSE, id.as_uuid());
    answer(
        state,
        route,
        prefix,
        StatusCode::OK,
        &Notice::Subscribed { token },
    )
    .await
}

/// The answer to a link whose token is not valid (here).
async fn link_not_valid(
    state: &AppState,
    route: Option<PageKey>,
    prefix: &str,
    link: Link,
) -> HttpResponse {
    let notice = Notice::LinkNotValid { link };
    answer(state, route, prefix, StatusCode::BAD_REQUEST, &notice).await
}

/// `{page}/subscriptions/confirm?token=…`, the link in the confirmation
/// email. `GET` asks (with a button); `POST` confirms. A token of another
/// page's subscriber, or of one who left, is as invalid as a forged one.
pub(super) async fn confirm(
    req: &HttpRequest,
    state: &AppState,
    route: Option<PageKey>,
    prefix: &str,
) -> HttpResponse {
    let Some((tenant, page)) = route else {
        return not_found_page();
    };
    let asks = req.method() == Method::GET || req.method() == Method::HEAD;
    if !asks && req.method() != Method::POST {
        return method_not_allowed("GET, HEAD, POST");
    }
    let Some(id) = token(req)
        .as_deref()
        .and_then(|t| state.links.verify(CONFIRM_PURPOSE, t))
        .map(SubscriberId::from)
    else {
        return link_not_valid(state, route, prefix, Link::Confirm).await;
    };
    let done = async {
        let mut tx = state.store.tenant_tx(tenant).await?;
        let s = match tx.subscriber_on_page(page, id).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !asks && s.confirmed_at.is_none() {
            tx.confirm_subscriber(page, id).await?;
        }
        tx.commit().await?;
        Ok(Some(s))
    };
    match done.await {
        Ok(None) => link_not_valid(state, route, prefix, Link::Confirm).await,
        Ok(Some(s)) if asks && s.confirmed_at.is_none() => {
            // Our own token for the id, so nothing from the request reaches the page.
            let token = state.links.sign(CONFIRM_PURPOSE, id.as_uuid());
            answer(
                state,
                route,
                prefix,
                StatusCode::OK,
                &Notice::ConfirmAsk { token },
            )
            .await
        }
        Ok(Some(_)) => subscribed_page(state, route, prefix, id).await,
        Err(e) => {
            tracing::warn!(error = %e, "confirmation failed");
            unavailable()
        }
    }
}

/// An SMS code as entered.
#[derive(Deserialize)]
struct CodeInput {
    subscriber_id: Option<String>,
    code: Option<String>,
}

/// What became of an SMS code.
enum CodeOutcome {
    Confirmed(SubscriberId),
    Wrong(Uuid),
    /// Too many wrong codes: a new code must be sent.
    Locked,
}

/// `POST {page}/subscriptions/confirm_sms` with `subscriber_id` and
/// `code`. Each try is counted before the code is checked (the count's row
/// lock makes tries on one subscriber take turns, so parallel guesses get
/// no more than [`heliograph_domain::MAX_WRONG_CODES`]); a new code (subscribing again, or the
/// team's resend) starts the count over.
pub(super) async fn confirm_sms(
    req: &HttpRequest,
    state: &AppState,
    route: Option<PageKey>,
    prefix: &str,
    body: &web::Bytes,
) -> HttpResponse {
    let ((tenant, page), format) = match public_post(req, route) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    let outcome = async {
        state
            .limiter
            .hit_client(Bucket::SmsCodeByIp, client_ip(req))
            .await?;
        let input: CodeInput = format.parse(body)?;
        let mut f = Fields::default();
        let id = f.check(
            required("subscriber_id", input.subscriber_id).and_then(|raw| {
                raw.trim()
                    .parse::<Uuid>()
                    .map_err(|_| FieldError::new("subscriber_id", "invalid", "is not an id"))
            }),
        );
        let code = f.check(required("code", input.code));
        let (Some(id), Some(code)) = (id, code) else {
            return Err(f.into_error());
        };
        check_code(state, tenant, page, id, &code).await
    };
    match (outcome.await, format) {
        (Ok(CodeOutcome::Confirmed(_)), Format::Json) => {
            HttpResponse::Ok().json(serde_json::json!({"status": "confirmed"}))
        }
        (Ok(CodeOutcome::Confirmed(id)), Format::Form) => {
            subscribed_page(state, route, prefix, id).await
        }
        (Ok(CodeOutcome::Wrong(_)), Format::Json) => ApiError::field(FieldError::new(
            "code",
            "wrong_code",
            "is not the code we sent",
        ))
        .error_response(),
        (Ok(CodeOutcome::Wrong(id)), Format::Form) => {
            let notice = Notice::WrongCode { subscriber_id: id };
            answer(state, route, prefix, StatusCode::UNPROCESSABLE_ENTITY, &notice).await
        }
        (Ok(CodeOutcome::Locked), Format::Json) => HttpResponse::TooManyRequests().json(
            serde_json::json!({"error": {
                "code": "too_many_attempts",
                "detail": "Too many wrong codes: this code no longer works. Subscribe again to get a new one.",
            }}),
        ),
        (Ok(CodeOutcome::Locked), Format::Form) => {
            answer(state, route, prefix, StatusCode::TOO_MANY_REQUESTS, &Notice::Locked).await
        }
        (Err(e), format) => format.failure(state, route, prefix, &e).await,
    }
}

async fn check_code(
    state: &AppState,
    tenant: TenantId,
    page: PageId,
    handle: Uuid,
    code: &str,
) -> Result<CodeOutcome, ApiError> {
    let mut tx = state.store.tenant_tx(tenant).await?;
    let Some(s) = tx.subscriber_by_sms_handle(page, handle).await? else {
        tx.commit().await?;
        // No such SMS subscriber (or a decoy id): wrong, and locked after as many tries.
        return Ok(
            match state
                .limiter
                .hit(Bucket::SmsCodeUnknown, &handle.to_string())
                .await
            {
                Ok(()) => CodeOutcome::Wrong(handle),
                Err(_) => CodeOutcome::Locked,
            },
        );
    };
    let tries = tx.count_wrong_code(page, s.id).await?;
    let right = s.confirmation_sent_at.is_some_and(|sent| {
        let sent_ms = i64::try_from(sent.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        state
            .links
            .code_matches(SMS_CODE_PURPOSE, s.id.as_uuid(), sent_ms, code)
    });
    let outcome = match code_verdict(tries, right) {
        CodeVerdict::Confirm => {
            tx.confirm_subscriber(page, s.id).await?;
            CodeOutcome::Confirmed(s.id)
        }
        CodeVerdict::Wrong => CodeOutcome::Wrong(handle),
        CodeVerdict::Locked => CodeOutcome::Locked,
    };
    tx.commit().await?;
    Ok(outcome)
}

/// The manage page's form: `scope` (`all` or `some`) and the ticked
/// `components[]`.
#[derive(Deserialize)]
struct ManageForm {
    scope: Option<String>,
    #[serde(default)]
    components: Vec<String>,
}

/// `{page}/subscription?token=…` (the unsubscribe link's token): `GET`
/// shows the subscriber's choice of the page's public components and an
/// unsubscribe button; `POST` saves a new choice. Private components the
/// team chose for them stay chosen (they are not shown, so cannot be
/// unticked).
pub(super) async fn manage(
    req: &HttpRequest,
    state: &AppState,
    route: Option<PageKey>,
    prefix: &str,
    body: &web::Bytes,
) -> HttpResponse {
    let Some((tenant, page)) = route else {
        return not_found_page();
    };
    let saves = req.method() == Method::POST;
    if !saves && req.method() != Method::GET && req.method() != Method::HEAD {
        return method_not_allowed("GET, HEAD, POST");
    }
    let Some(id) = token(req)
        .as_deref()
        .and_then(|t| state.links.verify(UNSUBSCRIBE_PURPOSE, t))
        .map(SubscriberId::from)
    else {
        return link_not_valid(state, route, prefix, Link::Manage).await;
    };
    let form: Option<ManageForm> = if saves {
        match Format::Form.parse(body) {
            Ok(form) => Some(form),
            Err(e) => return Format::Form.failure(state, route, prefix, &e).await,
        }
    } else {
        None
    };
    let done = async {
        let mut tx = state.store.tenant_tx(tenant).await?;
        let mut s = match tx.subscriber_on_page(page, id).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let components = tx.components(page).await?;
        let groups = tx.component_groups(page).await?;
        let mut notice = None;
        if let Some(form) = form {
            match chosen(&form, &components, &s) {
                Ok(choice) => {
                    tx.set_subscriber_components(page, id, &choice).await?;
                    s = tx.subscriber(id).await?;
                    notice = Some(Ok("Saved."));
                }
                Err(problem) => notice = Some(Err(problem)),
            }
        }
        tx.commit().await?;
        let public: Vec<(Uuid, String, Option<String>)> = components
            .iter()
            .filter(|c| Audience::Public.sees(c.visibility))
            .map(|c| {
                let group = c
                    .group_id
                    .and_then(|g| groups.iter().find(|x| x.id == g))
                    .map(|g| g.name.clone());
                (c.id.as_uuid(), c.name.clone(), group)
            })
            .collect();
        Ok(Some((s, public, notice)))
    };
    match done.await {
        Ok(None) => link_not_valid(state, route, prefix, Link::Manage).await,
        Ok(Some((s, public, notice))) => {
            let status = match notice {
                Some(Err(_)) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::OK,
            };
            let page = Notice::Manage(manage_view(state, &s, public, notice));
            answer(state, route, prefix, status, &page).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "managing a subscription failed");
            unavailable()
        }
    }
}

/// The components a manage form chooses, or what is wrong with it.
fn chosen(
    form: &ManageForm,
    components: &[Component],
    s: &Subscriber,
) -> Result<Vec<ComponentId>, &'static str> {
    if form.scope.as_deref() != Some("some") {
        return Ok(Vec::new());
    }
    let mut choice = Vec::new();
    for raw in &form.components {
        let public = raw.trim().parse::<Uuid>().ok().and_then(|id| {
            components
                .iter()
                .find(|c| c.id.as_uuid() == id && Audience::Public.sees(c.visibility))
        });
        match public {
            Some(c) => choice.push(c.id),
            None => return Err("One of the components ticked is not on this page."),
        }
    }
    if choice.is_empty() {
        return Err("Tick at least one component, or choose all of them.");
    }
    // Private components the team chose for them stay chosen.
    choice.extend(
        components
            .iter()
            .filter(|c| !Audience::Public.sees(c.visibility))
            .filter(|c| s.component_ids.contains(&c.id))
            .map(|c| c.id),
    );
    Ok(choice)
}

/// What the manage page shows a subscriber.
fn manage_view<'a>(
    state: &AppState,
    s: &Subscriber,
    public: Vec<(Uuid, String, Option<String>)>,
    notice: Option<Result<&'a str, &'a str>>,
) -> Manage<'a> {
    let all = s.component_ids.is_empty();
    Manage {
        how: match s.channel {
            Channel::Email => "by email",
            Channel::Sms => "by text message",
            Channel::Webhook => "at your webhook",
            Channel::Slack => "in Slack",
            Channel::Teams => "in Microsoft Teams",
        },
        notice,
        choices: public
            .into_iter()
            .map(|(id, name, group)| Choice {
                ticked: !all && s.component_ids.contains(&id.into()),
                id,
                name,
                group,
            })
            .collect(),
        all,
        // Our own token for the id: nothing from the request reaches the page.
        token: state.links.sign(UNSUBSCRIBE_PURPOSE, s.id.as_uuid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_rails_brackets_parse() {
        let body = "subscriber%5Bemail%5D=a%2Bb%40example.com&subscriber%5Bcomponents%5D%5B%5D=x&subscriber%5Bcomponents%5D%5B%5D=y";
        let parsed: SubscribeEnvelope = Format::Form.parse(body.as_bytes()).unwrap();
        let s = parsed.subscriber.unwrap();
        assert_eq!(s.email.as_deref(), Some("a+b@example.com"));
        assert_eq!(s.components, ["x", "y"]);
        let one: SubscribeEnvelope = Format::Form
            .parse(b"subscriber[phone_number]=%2B14155550123&subscriber[components][]=x")
            .unwrap();
        assert_eq!(one.subscriber.unwrap().components, ["x"]);
        let manage: ManageForm = Format::Form
            .parse(b"scope=some&components%5B%5D=x")
            .unwrap();
        assert_eq!(manage.components, ["x"]);
    }
}
