//! `/v1/pages/{page_id}/components`.

use actix_web::{HttpRequest, HttpResponse, web};
use heliograph_domain::component::parse_description;
use heliograph_domain::{
    Component, ComponentEdit, ComponentId, ComponentStatus, FieldError, GroupId, Name,
    NewComponent, PageId, Visibility,
};
use heliograph_store::TenantTx;
use heliograph_web::V2Component;
use serde::{Deserialize, Serialize};

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, envelope, required};
use crate::input::{Input, ListParams, nullable, paginated};
use crate::openapi::{
    BadRequest, Forbidden, NotFound, PaymentRequired, TooManyRequests, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use crate::page_scope::{Admin, AtPage, Editor, Viewer};
use crate::startup::AppState;

/// `{"component": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ComponentEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = ComponentInput)]
    component: Option<ComponentInput>,
}

/// A component's fields. On update, absent fields stay as they are and null clears.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub(crate) struct ComponentInput {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub(crate) name: Option<String>,
    /// At most 1,000 characters; blank or null clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(max_length = 1000)]
    pub(crate) description: Option<Option<String>>,
    #[schema(value_type = Option<ComponentStatus>)]
    pub(crate) status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(format = Uuid)]
    pub(crate) group_id: Option<Option<String>>,
    pub(crate) showcase: Option<bool>,
    pub(crate) only_show_if_degraded: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(format = Date)]
    pub(crate) start_date: Option<Option<String>>,
    #[schema(value_type = Option<Visibility>)]
    pub(crate) visibility: Option<String>,
    /// Place on the page, from 1 (update only); the other components shift.
    #[schema(minimum = 1)]
    pub(crate) position: Option<i32>,
}

/// A component in management responses: Statuspage's object plus its visibility.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ComponentResponse {
    #[serde(flatten)]
    #[schema(inline)]
    component: V2Component,
    visibility: Visibility,
}

pub(crate) fn component_response(c: &Component) -> ComponentResponse {
    ComponentResponse {
        visibility: c.visibility,
        component: heliograph_web::component_object(c),
    }
}

fn parse_group(f: &mut Fields, raw: Option<String>) -> Option<GroupId> {
    raw.filter(|g| !g.is_empty()).and_then(|g| {
        f.check(
            g.parse::<GroupId>()
                .map_err(|_| FieldError::new("group_id", "invalid", "is not a component group id")),
        )
    })
}

fn parse_start_date(f: &mut Fields, raw: Option<String>) -> Option<time::Date> {
    raw.filter(|d| !d.is_empty()).and_then(|d| {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        f.check(
            time::Date::parse(&d, format).map_err(|_| {
                FieldError::new("start_date", "invalid", "must be a date, YYYY-MM-DD")
            }),
        )
    })
}

fn parse_wire<T: std::str::FromStr<Err = heliograph_domain::UnknownVariant>>(
    f: &mut Fields,
    field: &'static str,
    raw: Option<String>,
) -> Option<T> {
    raw.and_then(|s| {
        f.check(
            s.parse::<T>()
                .map_err(|e| FieldError::new(field, "invalid", e.to_string())),
        )
    })
}

fn parse_edit(input: ComponentInput) -> Result<ComponentEdit, ApiError> {
    let mut f = Fields::default();
    let edit = ComponentEdit {
        name: input
            .name
            .and_then(|n| f.check(Name::parse("name", &n, 255))),
        description: input
            .description
            .map(|d| f.check(parse_description("description", d)).flatten()),
        status: parse_wire(&mut f, "status", input.status),
        group_id: input.group_id.map(|g| parse_group(&mut f, g)),
        showcase: input.showcase,
        only_show_if_degraded: input.only_show_if_degraded,
        start_date: input.start_date.map(|d| parse_start_date(&mut f, d)),
        visibility: parse_wire(&mut f, "visibility", input.visibility),
        position: crate::input::position(&mut f, input.position),
    };
    f.finish()?;
    Ok(edit)
}

/// A component of this page (404 for any other, another tenant's included).
pub(crate) async fn component_on_page(
    tx: &mut TenantTx,
    page: PageId,
    id: ComponentId,
) -> Result<Component, ApiError> {
    let c = tx.component(id).await?;
    if c.page_id == page {
        Ok(c)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Lists a page's components, private ones included (viewer).
///
/// `status` filters on component statuses.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/components",
    tag = "components",
    operation_id = "list_components",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."), ListParams,
        ("status" = Option<Vec<ComponentStatus>>, Query, style = Form, explode = false,
            description = "Keep only these statuses (comma-separated)."),
    ),
    responses(
        crate::openapi::ComponentList,
        Unauthorized, NotFound, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn list(
    at: AtPage<Viewer>,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let AtPage { mut tx, page, .. } = at;
    let query = params.query(str::parse::<ComponentStatus>, ComponentStatus::as_str)?;
    let listed = tx.list_components(page.id, &query).await?;
    tx.commit().await?;
    Ok(paginated(
        &req,
        state.urls.origin(),
        &query,
        listed,
        component_response,
    ))
}

/// Gets a component (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/components/{id}",
    tag = "components",
    operation_id = "get_component",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The component's id."),
    ),
    responses(
        (status = 200, description = "The component.", body = ComponentResponse),
        Unauthorized, NotFound, TooManyRequests,
    ),
)]
pub async fn get(
    at: AtPage<Viewer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let AtPage { mut tx, page, .. } = at;
    let id: ComponentId = path_id(&path.1)?;
    let c = component_on_page(&mut tx, page.id, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(component_response(&c)))
}

/// Changes component `id` of `page` as `member` may (an editor the
/// status, an admin anything else), with its audit entry: what
/// `PATCH /v1/pages/{page_id}/components/{id}` and the dashboard do. The
/// component is looked up before the body, so another page's id is a 404
/// whatever the body holds.
pub(crate) async fn update_component(
    tx: &mut TenantTx,
    member: &Member,
    page: PageId,
    id: ComponentId,
    input: Result<ComponentInput, ApiError>,
) -> Result<Component, ApiError> {
    let before = component_on_page(tx, page, id).await?;
    let edit = parse_edit(input?)?;
    member.require(edit.required_role())?;
    let c = tx.edit_component(id, &edit).await?;
    tx.audit(&member.audit(
        "component.updated",
        "component",
        c.id.as_uuid(),
        serde_json::json!({"name": c.name, "status": c.status, "old_status": before.status, "visibility": c.visibility}),
    ))
    .await?;
    Ok(c)
}

/// Changes a component.
///
/// An editor may change the status; anything else is an admin's. Absent
/// fields stay as they are; null clears. PATCH and PUT do the same.
#[utoipa::path(
    method(patch, put),
    path = "/v1/pages/{page_id}/components/{id}",
    tag = "components",
    operation_id = "update_component",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The component's id."),
    ),
    request_body(content(
        (ComponentEnvelope = "application/json"),
        (ComponentEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The component.", body = ComponentResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed,
        TooManyRequests,
    ),
)]
pub async fn update(
    at: AtPage<Editor>,
    path: web::Path<(String, String)>,
    body: Input<ComponentEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let AtPage {
        member,
        mut tx,
        page,
        ..
    } = at;
    let id: ComponentId = path_id(&path.1)?;
    let input = envelope("component", body.0.component);
    let c = update_component(&mut tx, &member, page.id, id, input).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(component_response(&c)))
}

/// Deletes component `id` of `page`, with its audit entry (the caller
/// checked the admin role).
pub(crate) async fn delete_component(
    tx: &mut TenantTx,
    member: &Member,
    page: PageId,
    id: ComponentId,
) -> Result<Component, ApiError> {
    component_on_page(tx, page, id).await?;
    let c = tx.delete_component(id).await?;
    tx.audit(&member.audit(
        "component.deleted",
        "component",
        c.id.as_uuid(),
        serde_json::json!({"name": c.name}),
    ))
    .await?;
    Ok(c)
}

/// Deletes a component (admin).
#[utoipa::path(
    delete,
    path = "/v1/pages/{page_id}/components/{id}",
    tag = "components",
    operation_id = "delete_component",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The component's id."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        Unauthorized, Forbidden, NotFound, TooManyRequests,
    ),
)]
pub async fn delete(
    at: AtPage<Admin>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let AtPage {
        member,
        mut tx,
        page,
        ..
    } = at;
    let id: ComponentId = path_id(&path.1)?;
    delete_component(&mut tx, &member, page.id, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

fn parse(input: ComponentInput) -> Result<NewComponent, ApiError> {
    let mut f = Fields::default();
    let name = f.check(required("name", input.name).and_then(|n| Name::parse("name", &n, 255)));
    let description = f
        .check(parse_description(
            "description",
            input.description.flatten(),
        ))
        .flatten();
    let status = parse_wire(&mut f, "status", input.status);
    let visibility = parse_wire(&mut f, "visibility", input.visibility);
    let group_id = parse_group(&mut f, input.group_id.flatten());
    let start_date = parse_start_date(&mut f, input.start_date.flatten());
    let Some(name) = name else {
        return Err(f.into_error());
    };
    f.finish()?;
    let defaults = NewComponent::named(name);
    Ok(NewComponent {
        description,
        status: status.unwrap_or(defaults.status),
        group_id,
        showcase: input.showcase.unwrap_or(defaults.showcase),
        only_show_if_degraded: input
            .only_show_if_degraded
            .unwrap_or(defaults.only_show_if_degraded),
        start_date,
        visibility: visibility.unwrap_or(defaults.visibility),
        ..defaults
    })
}

/// Adds a component to `page`, with its audit entry (the caller checked
/// the admin role): what `POST /v1/pages/{page_id}/components` and the
/// dashboard do.
pub(crate) async fn create_component(
    state: &AppState,
    tx: &mut TenantTx,
    member: &Member,
    page: PageId,
    input: ComponentInput,
) -> Result<Component, ApiError> {
    let new = parse(input)?;
    crate::plan_limits::admit_one(
        state,
        tx,
        heliograph_domain::Limit::ComponentsPerPage,
        Some(page),
    )
    .await?;
    let component = tx.create_component(page, &new).await?;
    tx.audit(&member.audit(
        "component.created",
        "component",
        component.id.as_uuid(),
        serde_json::json!({"name": component.name, "status": component.status, "visibility": component.visibility}),
    ))
    .await?;
    Ok(component)
}

/// Adds a component to a page (admin).
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/components",
    tag = "components",
    operation_id = "create_component",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    request_body(content(
        (ComponentEnvelope = "application/json", example = json!({"component": {"name": "API", "status": "operational"}})),
        (ComponentEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "The new component.", body = ComponentResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed,
        TooManyRequests, PaymentRequired,
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    at: AtPage<Admin>,
    body: Input<ComponentEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let AtPage {
        member,
        mut tx,
        page,
        ..
    } = at;
    let input = envelope("component", body.0.component)?;
    let component = create_component(&state, &mut tx, &member, page.id, input).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(component_response(&component)))
}
