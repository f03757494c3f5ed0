//! A page's components and groups on the dashboard: the list laid out as
//! the public page lays it out, with a status control on each row and
//! move up / move down buttons; the forms that add, change and delete
//! components and groups.
//!
//! Each action parses its form into the REST handler's input
//! (`routes::components::ComponentInput`, `routes::groups::GroupInput`) and
//! calls the same orchestration (`create_component`, `update_component`,
//! …), so the roles, rules and audit entries are the API's.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{
    Component, ComponentGroup, ComponentId, ComponentStatus, GroupId, Visibility,
};
use serde::Deserialize;

use super::form::{FormErrors, Posted, local_path};
use super::frame::{self, Frame, Section, frame_at};
use crate::error::ApiError;
use crate::page_scope::{Admin, AtPage, Editor, Needs, Viewer};
use crate::routes::components::{self as rest, ComponentInput};
use crate::routes::groups::{self as rest_groups, GroupInput};
use crate::routes::path_id;
use crate::startup::AppState;

/// One component row: the component and where its move buttons send it.
pub struct Row {
    /// The component.
    pub c: Component,
    /// The position "Move up" posts (the previous sibling's place).
    pub up: Option<i32>,
    /// The position "Move down" posts (the next sibling's place).
    pub down: Option<i32>,
}

/// A group with its rows.
pub struct GroupRows {
    /// The group.
    pub g: ComponentGroup,
    /// Its components, in page order.
    pub rows: Vec<Row>,
    /// The position "Move up" posts.
    pub up: Option<i32>,
    /// The position "Move down" posts.
    pub down: Option<i32>,
}

/// Components as the public page lays them out (ungrouped first, then each
/// group), every one shown (private ones are marked).
pub struct Layout {
    /// Components in no group.
    pub ungrouped: Vec<Row>,
    /// The groups, empty ones included (they can be filled).
    pub groups: Vec<GroupRows>,
    /// Whether rows offer move buttons (the components page does).
    pub reorder: bool,
    /// Where the status control comes back to.
    pub back: String,
}

/// Places of the siblings before and after index `i` among `places`.
fn neighbours(places: &[i32], i: usize) -> (Option<i32>, Option<i32>) {
    let up = i.checked_sub(1).and_then(|j| places.get(j)).copied();
    (up, places.get(i + 1).copied())
}

impl Layout {
    /// Lays `components` (by position) out in `groups` (by position).
    #[must_use]
    pub fn new(
        components: Vec<Component>,
        groups: Vec<ComponentGroup>,
        reorder: bool,
        back: String,
    ) -> Self {
        // A component's place is its 1-based index among all the page's
        // components, which is what the API's `position` means.
        let placed: Vec<(i32, Component)> = components
            .into_iter()
            .enumerate()
            .map(|(i, c)| (i32::try_from(i + 1).unwrap_or(i32::MAX), c))
            .collect();
        let rows_of = |members: Vec<(i32, Component)>| -> Vec<Row> {
            let places: Vec<i32> = members.iter().map(|(p, _)| *p).collect();
            members
                .into_iter()
                .enumerate()
                .map(|(i, (_, c))| {
                    let (up, down) = neighbours(&places, i);
                    Row { c, up, down }
                })
                .collect()
        };
        let (ungrouped, mut grouped): (Vec<_>, Vec<_>) =
            placed.into_iter().partition(|(_, c)| c.group_id.is_none());
        let group_places: Vec<i32> = (1..=groups.len())
            .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
            .collect();
        let groups = groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| {
                let (members, others): (Vec<_>, Vec<_>) = std::mem::take(&mut grouped)
                    .into_iter()
                    .partition(|(_, c)| c.group_id == Some(g.id));
                grouped = others;
                let (up, down) = neighbours(&group_places, i);
                GroupRows {
                    g,
                    rows: rows_of(members),
                    up,
                    down,
                }
            })
            .collect();
        Self {
            ungrouped: rows_of(ungrouped),
            groups,
            reorder,
            back,
        }
    }

    /// Whether the page has no component.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ungrouped.is_empty() && self.groups.iter().all(|g| g.rows.is_empty())
    }

    /// Every status, for the status control.
    #[must_use]
    pub fn statuses(&self) -> &'static [ComponentStatus] {
        ComponentStatus::ALL
    }

    /// Whether `c` is seen only by the team.
    #[must_use]
    pub fn private(&self, c: &Component) -> bool {
        c.visibility == Visibility::Private
    }

    /// The colour family of `c`'s status pill (its words say the same).
    #[must_use]
    pub fn tone(&self, c: &Component) -> &'static str {
        heliograph_web::impact_tone(c.status.impact())
    }
}

/// The components page.
#[derive(Template)]
#[template(path = "dashboard/pages/components.html")]
struct ListView {
    frame: Frame,
    layout: Layout,
}

/// `GET /dashboard/pages/{page_id}/components`.
pub async fn list(req: HttpRequest, mut at: AtPage<Viewer>) -> Result<HttpResponse, ApiError> {
    let components = at.tx.components(at.id()).await?;
    let groups = at.tx.component_groups(at.id()).await?;
    let frame = frame_at(&req, &mut at, Section::Components).await?;
    at.tx.commit().await?;
    let back = format!("/dashboard/pages/{}/components", at.page.id);
    frame::html(
        &frame,
        &ListView {
            frame: frame.clone(),
            layout: Layout::new(components, groups, true, back),
        },
    )
}

/// What the component form sends.
#[derive(Deserialize, Default)]
pub struct ComponentForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    group_id: String,
    #[serde(default)]
    visibility: String,
    #[serde(default, deserialize_with = "super::form::checkbox")]
    showcase: bool,
    #[serde(default, deserialize_with = "super::form::checkbox")]
    only_show_if_degraded: bool,
    /// `YYYY-MM-DD`, or blank for none.
    #[serde(default)]
    start_date: String,
}

impl ComponentForm {
    fn of(c: &Component) -> Self {
        Self {
            name: c.name.clone(),
            description: c.description.clone().unwrap_or_default(),
            status: c.status.as_str().to_owned(),
            group_id: c.group_id.map(|g| g.to_string()).unwrap_or_default(),
            visibility: c.visibility.as_str().to_owned(),
            showcase: c.showcase,
            only_show_if_degraded: c.only_show_if_degraded,
            start_date: c.start_date.map(|d| d.to_string()).unwrap_or_default(),
        }
    }

    /// The REST input: every field present (blank clears, as in the API).
    fn input(&self) -> ComponentInput {
        ComponentInput {
            name: Some(self.name.clone()),
            description: Some(Some(self.description.clone())),
            status: Some(self.status.clone()),
            group_id: Some(Some(self.group_id.clone())),
            visibility: Some(self.visibility.clone()),
            showcase: Some(self.showcase),
            only_show_if_degraded: Some(self.only_show_if_degraded),
            start_date: Some(Some(self.start_date.trim().to_owned())),
            ..ComponentInput::default()
        }
    }
}

/// The form that adds or changes a component.
#[derive(Template)]
#[template(path = "dashboard/pages/component_form.html")]
struct ComponentFormView {
    frame: Frame,
    /// The component changed, or `None` for a new one.
    id: Option<ComponentId>,
    form: ComponentForm,
    groups: Vec<ComponentGroup>,
    errors: FormErrors,
}

impl ComponentFormView {
    fn statuses(&self) -> &'static [ComponentStatus] {
        ComponentStatus::ALL
    }

    fn visibilities(&self) -> &'static [Visibility] {
        Visibility::ALL
    }

    fn visibility_label(&self, v: &Visibility) -> &'static str {
        match v {
            Visibility::Public => "Public: everyone",
            Visibility::Private => "Private: only your team",
        }
    }
}

async fn component_form<R: Needs>(
    req: &HttpRequest,
    mut at: AtPage<R>,
    id: Option<ComponentId>,
    form: ComponentForm,
    errors: FormErrors,
) -> Result<HttpResponse, ApiError> {
    let groups = at.tx.component_groups(at.id()).await?;
    let frame = frame_at(req, &mut at, Section::Components).await?;
    at.tx.commit().await?;
    let status = if errors.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let view = ComponentFormView {
        frame: frame.clone(),
        id,
        form,
        groups,
        errors,
    };
    if status == StatusCode::OK {
        frame::html(&frame, &view)
    } else {
        frame::html_with(status, &view)
    }
}

/// `GET /dashboard/pages/{page_id}/components/new`.
pub async fn new(req: HttpRequest, at: AtPage<Admin>) -> Result<HttpResponse, ApiError> {
    let form = ComponentForm {
        status: ComponentStatus::Operational.as_str().to_owned(),
        visibility: Visibility::Public.as_str().to_owned(),
        showcase: true,
        ..ComponentForm::default()
    };
    component_form(&req, at, None, form, FormErrors::none()).await
}

/// `POST /dashboard/pages/{page_id}/components`.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Admin>,
    form: Posted<ComponentForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    match rest::create_component(&state, &mut at.tx, &at.member, at.page.id, form.input()).await {
        Ok(c) => {
            at.tx.commit().await?;
            Ok(frame::done(
                &format!("/dashboard/pages/{}/components", at.page.id),
                &format!("Component “{}” added.", c.name),
            ))
        }
        Err(err) => {
            // Refusals of the input come before any write: the
            // transaction is still good for reading the form's choices.
            let errors = FormErrors::from_error(err)?;
            component_form(&req, at, None, form, errors).await
        }
    }
}

fn component_id(path: &web::Path<(String, String)>) -> Result<ComponentId, ApiError> {
    path_id(&path.1)
}

/// `GET /dashboard/pages/{page_id}/components/{id}/edit` (admins, as
/// changing anything but the status is in the API).
pub async fn edit(
    req: HttpRequest,
    mut at: AtPage<Admin>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = component_id(&path)?;
    let c = rest::component_on_page(&mut at.tx, at.page.id, id).await?;
    component_form(
        &req,
        at,
        Some(id),
        ComponentForm::of(&c),
        FormErrors::none(),
    )
    .await
}

/// `POST /dashboard/pages/{page_id}/components/{id}`: saves the form.
pub async fn update(
    req: HttpRequest,
    mut at: AtPage<Admin>,
    path: web::Path<(String, String)>,
    form: Posted<ComponentForm>,
) -> Result<HttpResponse, ApiError> {
    let id = component_id(&path)?;
    let form = form.into_inner()?;
    match rest::update_component(&mut at.tx, &at.member, at.page.id, id, Ok(form.input())).await {
        Ok(c) => {
            at.tx.commit().await?;
            Ok(frame::done(
                &format!("/dashboard/pages/{}/components", at.page.id),
                &format!("Component “{}” saved.", c.name),
            ))
        }
        Err(err) => {
            let errors = FormErrors::from_error(err)?;
            component_form(&req, at, Some(id), form, errors).await
        }
    }
}

/// What a row's status control sends.
#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    back: Option<String>,
}

/// `POST /dashboard/pages/{page_id}/components/{id}/status`: the one-click
/// status change (an editor's, as in the API).
pub async fn set_status(
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
    form: Posted<StatusForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let id = component_id(&path)?;
    let input = ComponentInput {
        status: Some(form.status.clone()),
        ..ComponentInput::default()
    };
    let c = rest::update_component(&mut at.tx, &at.member, at.page.id, id, Ok(input)).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        local_path(form.back.as_deref()),
        &format!("“{}” is now {}.", c.name, c.status.label()),
    ))
}

/// What a move button sends: the new place, from 1.
#[derive(Deserialize)]
pub struct MoveForm {
    // Optional, so that a form without it is refused by the role check
    // first (403), as the API would, and then as a change that moves nothing.
    #[serde(default)]
    position: Option<i32>,
}

/// `POST /dashboard/pages/{page_id}/components/{id}/position`.
pub async fn move_component(
    mut at: AtPage<Admin>,
    path: web::Path<(String, String)>,
    form: Posted<MoveForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let id = component_id(&path)?;
    let input = ComponentInput {
        position: form.position,
        ..ComponentInput::default()
    };
    let c = rest::update_component(&mut at.tx, &at.member, at.page.id, id, Ok(input)).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{}/components", at.page.id),
        &format!("“{}” moved.", c.name),
    ))
}

/// `POST /dashboard/pages/{page_id}/components/{id}/delete`.
pub async fn delete(
    mut at: AtPage<Admin>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = component_id(&path)?;
    let c = rest::delete_component(&mut at.tx, &at.member, at.page.id, id).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{}/components", at.page.id),
        &format!("Component “{}” deleted.", c.name),
    ))
}

/// What the group form sends.
#[derive(Deserialize, Default)]
pub struct GroupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

impl GroupForm {
    fn input(&self) -> GroupInput {
        GroupInput {
            name: Some(self.name.clone()),
            description: Some(Some(self.description.clone())),
            ..GroupInput::default()
        }
    }
}

/// The form that adds or changes a group.
#[derive(Template)]
#[template(path = "dashboard/pages/group_form.html")]
struct GroupFormView {
    frame: Frame,
    id: Option<GroupId>,
    form: GroupForm,
    errors: FormErrors,
}

async fn group_form(
    req: &HttpRequest,
    mut at: AtPage<Admin>,
    id: Option<GroupId>,
    form: GroupForm,
    errors: FormErrors,
) -> Result<HttpResponse, ApiError> {
    let frame = frame_at(req, &mut at, Section::Components).await?;
    at.tx.commit().await?;
    let failed = errors.any();
    let view = GroupFormView {
        frame: frame.clone(),
        id,
        form,
        errors,
    };
    if failed {
        frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
    } else {
        frame::html(&frame, &view)
    }
}

/// `GET /dashboard/pages/{page_id}/component-groups/new`.
pub async fn new_group(req: HttpRequest, at: AtPage<Admin>) -> Result<HttpResponse, ApiError> {
    group_form(&req, at, None, GroupForm::default(), FormErrors::none()).await
}

/// `POST /dashboard/pages/{page_id}/component-groups`.
pub async fn create_group(
    req: HttpRequest,
    mut at: AtPage<Admin>,
    form: Posted<GroupForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    match rest_groups::create_group(&mut at.tx, &at.member, at.page.id, form.input()).await {
        Ok((g, _)) => {
            at.tx.commit().await?;
            Ok(frame::done(
                &format!("/dashboard/pages/{}/components", at.page.id),
                &format!("Group “{}” added.", g.name),
            ))
        }
        Err(err) => {
            let errors = FormErrors::from_error(err)?;
            group_form(&req, at, None, form, errors).await
        }
    }
}

/// `GET /dashboard/pages/{page_id}/component-groups/{id}/edit`.
pub async fn edit_group(
    req: HttpRequest,
    mut at: AtPage<Admin>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id: GroupId = path_id(&path.1)?;
    let g = rest_groups::group_on_page(&mut at.tx, at.page.id, id).await?;
    let form = GroupForm {
        name: g.name,
        description: g.description.unwrap_or_default(),
    };
    group_form(&req, at, Some(id), form, FormErrors::none()).await
}

/// `POST /dashboard/pages/{page_id}/component-groups/{id}`.
pub async fn update_group(
    req: HttpRequest,
    mut at: AtPage<Admin>,
    path: web::Path<(String, String)>,
    form: Posted<GroupForm>,
) -> Result<HttpResponse, ApiError> {
    let id: GroupId = path_id(&path.1)?;
    let form = form.into_inner()?;
    let input = Ok(form.input());
    match rest_groups::update_group(&mut at.tx, &at.member, at.page.id, id, input).await {
        Ok((g, _)) => {
            at.tx.commit().await?;
            Ok(frame::done(
                &format!("/dashboard/pages/{}/components", at.page.id),
                &format!("Group “{}” saved.", g.name),
            ))
        }
        Err(err) => {
            let errors = FormErrors::from_error(err)?;
            group_form(&req, at, Some(id), form, errors).await
        }
    }
}

/// `POST /dashboard/pages/{page_id}/component-groups/{id}/position`.
pub async fn move_group(
    mut at: AtPage<Admin>,
    path: web::Path<(String, String)>,
    form: Posted<MoveForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let id: GroupId = path_id(&path.1)?;
    let input = GroupInput {
        position: form.position,
        ..GroupInput::default()
    };
    let (g, _) =
        rest_groups::update_group(&mut at.tx, &at.member, at.page.id, id, Ok(input)).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{}/components", at.page.id),
        &format!("Group “{}” moved.", g.name),
    ))
}

/// `POST /dashboard/pages/{page_id}/component-groups/{id}/delete`.
pub async fn delete_group(
    mut at: AtPage<Admin>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id: GroupId = path_id(&path.1)?;
    let (g, _) = rest_groups::delete_group(&mut at.tx, &at.member, at.page.id, id).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{}/components", at.page.id),
        &format!(
            "Group “{}” deleted; its components stay, ungrouped.",
            g.name
        ),
    ))
}
