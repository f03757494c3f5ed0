//! `/v1/pages/{page_id}/component-groups`.

use actix_web::{HttpRequest, HttpResponse, web};
use heliograph_domain::component::parse_description;
use heliograph_domain::{
    ComponentGroup, ComponentId, FieldError, GroupEdit, GroupId, Name, PageId,
};
use heliograph_store::TenantTx;
use serde::{Deserialize, Serialize};

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, envelope, required};
use crate::input::{Input, ListParams, nullable, paginated};
use crate::openapi::{
    BadRequest, Forbidden, NotFound, TooManyRequests, Unauthorized, UnsupportedMediaType,
    ValidationFailed,
};
use crate::page_scope::{Admin, AtPage, Viewer};
use crate::startup::AppState;

/// A component group, as Statuspage's management API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GroupResponse {
    id: String,
    page_id: String,
    name: String,
    description: Option<String>,
    /// Member component ids, in page order.
    components: Vec<String>,
    position: i32,
    created_at: String,
    updated_at: String,
}

fn group_response(g: &ComponentGroup, members: &[ComponentId]) -> GroupResponse {
    GroupResponse {
        id: g.id.to_string(),
        page_id: g.page_id.to_string(),
        name: g.name.clone(),
        description: g.description.clone(),
        components: members.iter().map(ToString::to_string).collect(),
        position: g.position,
        created_at: heliograph_web::timestamp(g.created_at),
        updated_at: heliograph_web::timestamp(g.updated_at),
    }
}

/// `{"component_group": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct GroupEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = GroupInput)]
    component_group: Option<GroupInput>,
}

/// A group's fields; on update, absent fields stay as they are.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub(crate) struct GroupInput {
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
    /// Member component ids; on update they replace the current members.
    #[schema(value_type = Option<Vec<Uuid>>)]
    pub(crate) components: Option<Vec<String>>,
    /// Place among the page's groups, from 1 (update only).
    #[schema(minimum = 1)]
    pub(crate) position: Option<i32>,
}

fn parse(input: GroupInput) -> Result<GroupEdit, ApiError> {
    let mut f = Fields::default();
    let edit = GroupEdit {
        name: input
            .name
            .and_then(|n| f.check(Name::parse("name", &n, 255))),
        description: input
            .description
            .map(|d| f.check(parse_description("description", d)).flatten()),
        components: input.components.map(|ids| {
            ids.iter()
                .filter_map(|id| {
                    f.check(id.parse::<ComponentId>().map_err(|_| {
                        FieldError::new(
                            "components",
                            "invalid",
                            format!("`{id}` is not a component id"),
                        )
                    }))
                })
                .collect()
        }),
        position: crate::input::position(&mut f, input.position),
    };
    f.finish()?;
    Ok(edit)
}

pub(crate) async fn group_on_page(
    tx: &mut TenantTx,
    page: PageId,
    id: GroupId,
) -> Result<ComponentGroup, ApiError> {
    let g = tx.component_group(id).await?;
    if g.page_id == page {
        Ok(g)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Lists a page's component groups (viewer).
///
/// `q` filters on the name; there is no `status` filter.
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/component-groups",
    tag = "component groups",
    operation_id = "list_component_groups",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id."), ListParams),
    responses(
        crate::openapi::GroupList,
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
    let query = params.plain_query()?;
    let groups = tx.component_groups(page.id).await?;
    let components = tx.components(page.id).await?;
    tx.commit().await?;
    let matching: Vec<ComponentGroup> = groups
        .into_iter()
        .filter(|g| {
            query
                .q
                .as_deref()
                .is_none_or(|q| g.name.to_lowercase().contains(&q.to_lowercase()))
        })
        .collect();
    let total = i64::try_from(matching.len()).unwrap_or(i64::MAX);
    let items = matching
        .into_iter()
        .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(query.limit).unwrap_or(usize::MAX))
        .collect();
    let listed = heliograph_store::Listed { items, total };
    Ok(paginated(&req, state.urls.origin(), &query, listed, |g| {
        let members: Vec<ComponentId> = components
            .iter()
            .filter(|c| c.group_id == Some(g.id))
            .map(|c| c.id)
            .collect();
        group_response(g, &members)
    }))
}

/// Adds a group to `page`, with its audit entry (the caller checked the
/// admin role); answers it and its members.
pub(crate) async fn create_group(
    tx: &mut TenantTx,
    member: &Member,
    page: PageId,
    input: GroupInput,
) -> Result<(ComponentGroup, Vec<ComponentId>), ApiError> {
    let mut edit = parse(input)?;
    let name = required("name", edit.name.take()).map_err(ApiError::field)?;
    let created = tx
        .create_component_group(page, &name, edit.description.clone().flatten().as_deref())
        .await?;
    edit.description = None;
    let g = tx.edit_component_group(created.id, &edit).await?;
    let members = tx.group_members(g.id).await?;
    tx.audit(&member.audit(
        "component_group.created",
        "component_group",
        g.id.as_uuid(),
        serde_json::json!({"name": g.name}),
    ))
    .await?;
    Ok((g, members))
}

/// Adds a component group to a page (admin).
#[utoipa::path(
    post,
    path = "/v1/pages/{page_id}/component-groups",
    tag = "component groups",
    operation_id = "create_component_group",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    request_body(content(
        (GroupEnvelope = "application/json", example = json!({"component_group": {"name": "Platform"}})),
        (GroupEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "The new group.", body = GroupResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed,
        TooManyRequests,
    ),
)]
pub async fn create(
    at: AtPage<Admin>,
    body: Input<GroupEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let AtPage {
        member,
        mut tx,
        page,
        ..
    } = at;
    let input = envelope("component_group", body.0.component_group)?;
    let (g, members) = create_group(&mut tx, &member, page.id, input).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(group_response(&g, &members)))
}

/// Gets a component group (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}/component-groups/{id}",
    tag = "component groups",
    operation_id = "get_component_group",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The group's id."),
    ),
    responses(
        (status = 200, description = "The group.", body = GroupResponse),
        Unauthorized, NotFound, TooManyRequests,
    ),
)]
pub async fn get(
    at: AtPage<Viewer>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let AtPage { mut tx, page, .. } = at;
    let id: GroupId = path_id(&path.1)?;
    let g = group_on_page(&mut tx, page.id, id).await?;
    let members = tx.group_members(id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(group_response(&g, &members)))
}

/// Changes group `id` of `page`, with its audit entry (the caller checked
/// the admin role); another page's id is a 404 whatever the body holds.
pub(crate) async fn update_group(
    tx: &mut TenantTx,
    member: &Member,
    page: PageId,
    id: GroupId,
    input: Result<GroupInput, ApiError>,
) -> Result<(ComponentGroup, Vec<ComponentId>), ApiError> {
    group_on_page(tx, page, id).await?;
    let edit = parse(input?)?;
    let g = tx.edit_component_group(id, &edit).await?;
    let members = tx.group_members(id).await?;
    tx.audit(&member.audit(
        "component_group.updated",
        "component_group",
        g.id.as_uuid(),
        serde_json::json!({"name": g.name, "components": members.len()}),
    ))
    .await?;
    Ok((g, members))
}

/// Changes a component group (admin).
///
/// Absent fields stay as they are; `components` replaces the members.
/// PATCH and PUT do the same.
#[utoipa::path(
    method(patch, put),
    path = "/v1/pages/{page_id}/component-groups/{id}",
    tag = "component groups",
    operation_id = "update_component_group",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The group's id."),
    ),
    request_body(content(
        (GroupEnvelope = "application/json"),
        (GroupEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The group.", body = GroupResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed,
        TooManyRequests,
    ),
)]
pub async fn update(
    at: AtPage<Admin>,
    path: web::Path<(String, String)>,
    body: Input<GroupEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let AtPage {
        member,
        mut tx,
        page,
        ..
    } = at;
    let id: GroupId = path_id(&path.1)?;
    let input = envelope("component_group", body.0.component_group);
    let (g, members) = update_group(&mut tx, &member, page.id, id, input).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(group_response(&g, &members)))
}

/// Deletes group `id` of `page`, with its audit entry (the caller checked
/// the admin role); answers it with the members it had, which stay,
/// ungrouped.
pub(crate) async fn delete_group(
    tx: &mut TenantTx,
    member: &Member,
    page: PageId,
    id: GroupId,
) -> Result<(ComponentGroup, Vec<ComponentId>), ApiError> {
    group_on_page(tx, page, id).await?;
    let members = tx.group_members(id).await?;
    let g = tx.delete_component_group(id).await?;
    tx.audit(&member.audit(
        "component_group.deleted",
        "component_group",
        g.id.as_uuid(),
        serde_json::json!({"name": g.name}),
    ))
    .await?;
    Ok((g, members))
}

/// Deletes a component group (admin); its components stay, ungrouped.
#[utoipa::path(
    delete,
    path = "/v1/pages/{page_id}/component-groups/{id}",
    tag = "component groups",
    operation_id = "delete_component_group",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(
        ("page_id" = Uuid, Path, description = "The page's id."),
        ("id" = Uuid, Path, description = "The group's id."),
    ),
    responses(
        (status = 200, description = "The group, now deleted (as Statuspage answers).", body = GroupResponse),
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
    let id: GroupId = path_id(&path.1)?;
    let (g, members) = delete_group(&mut tx, &member, page.id, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(group_response(&g, &members)))
}
