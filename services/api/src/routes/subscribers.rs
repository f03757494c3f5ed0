//! `/v1/pages/{page_id}/subscribers`.

use actix_web::{HttpRequest, HttpResponse, web};
use heliograph_domain::{Channel, ComponentId, EmailAddress, FieldError, PageId, Role};
use heliograph_store::{ListQuery, NewSubscriber, Subscriber, SubscriberState, Target};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{path_id, path_ids};
use crate::auth::Member;
use crate::error::{ApiError, Fields, envelope, required};
use crate::input::{ListParams, paginated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized, ValidationFailed,
};
use crate::startup::AppState;

/// `{"subscriber": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SubscriberEnvelope {
    subscriber: Option<SubscriberInput>,
}

/// A subscriber to add.
#[derive(Deserialize, utoipa::ToSchema)]
struct SubscriberInput {
    email: Option<String>,
    /// Not supported yet (SMS subscribers).
    phone_number: Option<String>,
    /// Not supported yet (webhook subscribers).
    endpoint: Option<String>,
    /// Component ids to follow; none means all.
    components: Option<Vec<String>>,
    /// Must be `true` for now: no confirmation email is sent.
    skip_confirmation_notification: Option<bool>,
}

/// A subscriber.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriberResponse {
    id: Uuid,
    /// How they are reached.
    mode: Channel,
    email: Option<String>,
    /// Component ids followed; empty means all.
    components: Vec<Uuid>,
    skip_confirmation_notification: bool,
    confirmed_at: Option<String>,
    /// Always null for now.
    quarantined_at: Option<String>,
    /// Always null for now.
    purge_at: Option<String>,
    created_at: String,
    updated_at: String,
}

fn parse(input: SubscriberInput) -> Result<NewSubscriber, ApiError> {
    let mut f = Fields::default();
    // SMS and webhook subscribers arrive with the notification channels (issue 6).
    for (field, given) in [
        ("phone_number", input.phone_number.is_some()),
        ("endpoint", input.endpoint.is_some()),
    ] {
        if given {
            f.push(FieldError::new(
                field,
                "unsupported_channel",
                "only email subscribers are supported so far",
            ));
        }
    }
    // Double opt-in (confirmation emails) arrives with self-service subscription;
    // until then a team member vouches for the address explicitly.
    if input.skip_confirmation_notification != Some(true) {
        f.push(FieldError::new(
            "skip_confirmation_notification",
            "unsupported",
            "must be true: confirmation emails are not available yet",
        ));
    }
    let email =
        f.check(required("email", input.email).and_then(|e| EmailAddress::parse("email", &e)));
    let component_ids: Vec<ComponentId> = input
        .components
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            f.check(c.parse().map_err(|_| {
                FieldError::new(
                    "components",
                    "invalid",
                    format!("`{c}` is not a component id"),
                )
            }))
        })
        .collect();
    let Some(email) = email else {
        return Err(f.into_error());
    };
    f.finish()?;
    Ok(NewSubscriber {
        target: Target::Email(email),
        webhook_secret: None,
        component_ids,
        confirmed: true,
    })
}

/// Adds a confirmed email subscriber to a page (editor).
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/subscribers",
    tag = "subscribers",
    operation_id = "create_subscriber",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    request_body(content = SubscriberEnvelope, content_type = "application/json"),
    responses(
        (status = 201, description = "The subscriber.", body = SubscriberResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn create(
    member: Member,
    state: web::Data<AppState>,
    page_id: web::Path<String>,
    body: web::Json<SubscriberEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let page: PageId = path_id(&page_id)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    tx.page(page).await?;
    member.require(Role::Editor)?;
    let input = envelope("subscriber", body.into_inner().subscriber)?;
    let new = parse(input)?;
    let s = tx.create_subscriber(page, &new).await?;
    // The address itself stays out of the log: it names a person.
    tx.audit(&member.audit(
        "subscriber.created",
        "subscriber",
        s.id.as_uuid(),
        json!({"mode": s.channel}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(subscriber_response(&s)))
}

fn subscriber_response(s: &Subscriber) -> SubscriberResponse {
    SubscriberResponse {
        id: s.id.as_uuid(),
        mode: s.channel,
        email: s.email.clone(),
        components: s.component_ids.clone(),
        skip_confirmation_notification: s.confirmed_at.is_some(),
        confirmed_at: s.confirmed_at.map(heliograph_web::timestamp),
        quarantined_at: s.quarantined_at.map(heliograph_web::timestamp),
        purge_at: None,
        created_at: heliograph_web::timestamp(s.created_at),
        updated_at: heliograph_web::timestamp(s.updated_at),
    }
}

/// Statuspage's subscriber filters: `type` (channel) and `state`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscriberFilter {
    /// `email`, `sms` or `webhook`; all when absent.
    r#type: Option<String>,
    /// `active` (default), `unconfirmed`, `quarantined` or `all`.
    state: Option<String>,
}

impl SubscriberFilter {
    fn parse(&self, params: &ListParams) -> Result<(ListQuery, SubscriberState), ApiError> {
        let mut query = params.plain_query()?;
        let mut f = Fields::default();
        if let Some(kind) = self.r#type.as_deref() {
            match kind.parse::<Channel>() {
                Ok(channel) => query.statuses = vec![channel.as_str().to_owned()],
                Err(_) => f.push(FieldError::new(
                    "type",
                    "invalid",
                    "must be email, sms or webhook",
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
    member: Member,
    state: web::Data<AppState>,
    req: HttpRequest,
    page_id: web::Path<String>,
    params: web::Query<ListParams>,
    filter: web::Query<SubscriberFilter>,
) -> Result<HttpResponse, ApiError> {
    let page: PageId = path_id(&page_id)?;
    let (query, which) = filter.parse(&params)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    tx.page(page).await?;
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
    member: Member,
    state: web::Data<AppState>,
    page_id: web::Path<String>,
    params: web::Query<ListParams>,
    filter: web::Query<SubscriberFilter>,
) -> Result<HttpResponse, ApiError> {
    let page: PageId = path_id(&page_id)?;
    let (query, which) = filter.parse(&params)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    tx.page(page).await?;
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
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (page, id): (PageId, heliograph_domain::SubscriberId) = path_ids(&path)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
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
    member: Member,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (page, id): (PageId, heliograph_domain::SubscriberId) = path_ids(&path)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let s = tx.subscriber_on_page(page, id).await?;
    member.require(Role::Editor)?;
    tx.unsubscribe(page, id).await?;
    tx.audit(&member.audit(
        "subscriber.deleted",
        "subscriber",
        s.id.as_uuid(),
        json!({"mode": s.channel}),
    ))
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(subscriber_response(&s)))
}
