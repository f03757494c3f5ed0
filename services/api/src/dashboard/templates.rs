//! A page's incident templates on the dashboard: the list, the form that
//! adds one, the form that changes one and the delete button.
//!
//! Each action fills `routes::templates::TemplateInput` from its form and
//! calls the orchestration `/v1` calls (`create_template`,
//! `delete_template`); a change, which the API has no endpoint for, is
//! `replace_template`: that delete and that create in one transaction.

use crate::dashboard::form::Posted;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{Component, IncidentStatus, IncidentTemplate, TemplateId};
use heliograph_store::ListQuery;

use super::form::FormErrors;
use super::frame::frame_at;
use super::frame::{self, Frame, Section};
use super::incidents::{field, ticked};
use crate::error::ApiError;
use crate::page_scope::{AtPage, Editor, Viewer};
use crate::routes::path_id;
use crate::routes::templates::{TemplateInput, create_template, delete_template, replace_template};

/// The templates page.
#[derive(Template)]
#[template(path = "dashboard/templates/list.html")]
struct ListView {
    frame: Frame,
    page_id: String,
    templates: Vec<IncidentTemplate>,
}

/// `GET /dashboard/pages/{page_id}/incident_templates`: every template of
/// the page (a page has few), as `GET /v1/…/incident_templates` lists them.
pub async fn list(req: HttpRequest, mut at: AtPage<Viewer>) -> Result<HttpResponse, ApiError> {
    let templates = at
        .tx
        .list_templates(at.page.id, &ListQuery::all())
        .await?
        .items;
    let frame = frame_at(&req, &mut at, Section::Incidents).await?;
    at.tx.commit().await?;
    frame::html(
        &frame,
        &ListView {
            frame: frame.clone(),
            page_id: at.page.id.to_string(),
            templates,
        },
    )
}

/// What the template form holds.
#[derive(Default)]
struct TemplateForm {
    name: String,
    title: String,
    body: String,
    update_status: String,
    notify: bool,
    component_ids: Vec<String>,
}

impl TemplateForm {
    fn of(t: &IncidentTemplate) -> Self {
        Self {
            name: t.name.clone(),
            title: t.title.clone(),
            body: t.body.clone(),
            update_status: t.update_status.as_str().to_owned(),
            notify: t.should_send_notifications,
            component_ids: t.component_ids.iter().map(ToString::to_string).collect(),
        }
    }

    fn posted(pairs: &[(String, String)]) -> Self {
        Self {
            name: field(pairs, "name").unwrap_or_default().to_owned(),
            title: field(pairs, "title").unwrap_or_default().to_owned(),
            body: field(pairs, "body").unwrap_or_default().to_owned(),
            update_status: field(pairs, "update_status").unwrap_or_default().to_owned(),
            notify: ticked(pairs, "notify"),
            component_ids: pairs
                .iter()
                .filter(|(k, _)| k == "component_ids")
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    /// The REST input: every field present, as the API's JSON would carry it.
    fn input(&self) -> TemplateInput {
        TemplateInput {
            name: Some(self.name.clone()),
            title: Some(self.title.clone()),
            body: Some(self.body.clone()),
            update_status: Some(self.update_status.clone()),
            should_send_notifications: Some(self.notify),
            component_ids: Some(self.component_ids.clone()),
        }
    }
}

/// The form that adds or changes a template.
#[derive(Template)]
#[template(path = "dashboard/templates/form.html")]
struct FormView {
    frame: Frame,
    page_id: String,
    /// The template changed, or `None` for a new one.
    id: Option<TemplateId>,
    form: TemplateForm,
    components: Vec<Component>,
    errors: FormErrors,
}

impl FormView {
    fn statuses(&self) -> [IncidentStatus; 4] {
        [
            IncidentStatus::Investigating,
            IncidentStatus::Identified,
            IncidentStatus::Monitoring,
            IncidentStatus::Resolved,
        ]
    }

    fn chosen(&self, c: &Component) -> bool {
        self.form.component_ids.contains(&c.id.to_string())
    }
}

async fn form_page(
    req: &HttpRequest,
    at: &mut AtPage<Editor>,
    id: Option<TemplateId>,
    form: TemplateForm,
    errors: FormErrors,
) -> Result<(FormView, StatusCode), ApiError> {
    let components = at.tx.components(at.page.id).await?;
    let frame = frame_at(req, at, Section::Incidents).await?;
    let status = if errors.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((
        FormView {
            frame,
            page_id: at.page.id.to_string(),
            id,
            form,
            components,
            errors,
        },
        status,
    ))
}

fn respond(view: &FormView, status: StatusCode) -> Result<HttpResponse, ApiError> {
    if status == StatusCode::OK {
        frame::html(&view.frame.clone(), view)
    } else {
        frame::html_with(status, view)
    }
}

/// `GET /dashboard/pages/{page_id}/incident_templates/new`.
pub async fn new(req: HttpRequest, mut at: AtPage<Editor>) -> Result<HttpResponse, ApiError> {
    let form = TemplateForm {
        update_status: IncidentStatus::Investigating.as_str().to_owned(),
        notify: true,
        ..TemplateForm::default()
    };
    let (view, status) = form_page(&req, &mut at, None, form, FormErrors::none()).await?;
    at.tx.commit().await?;
    respond(&view, status)
}

/// `POST /dashboard/pages/{page_id}/incident_templates`: as
/// `POST /v1/pages/{page_id}/incident_templates` adds it.
pub async fn create(
    req: HttpRequest,
    mut at: AtPage<Editor>,
    form: Posted<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let form = TemplateForm::posted(&form);
    match create_template(&mut at.tx, &at.member, at.page.id, form.input()).await {
        Ok(t) => {
            at.tx.commit().await?;
            Ok(frame::done(
                &format!("/dashboard/pages/{}/incident_templates", at.page.id),
                &format!("Template “{}” added.", t.name),
            ))
        }
        Err(err) => {
            let errors = FormErrors::from_error(err)?;
            let (view, status) = form_page(&req, &mut at, None, form, errors).await?;
            drop(at.tx);
            respond(&view, status)
        }
    }
}

/// `GET /dashboard/pages/{page_id}/incident_templates/{id}/edit`.
pub async fn edit(
    req: HttpRequest,
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id: TemplateId = path_id(&path.1)?;
    let t = at.tx.template(at.page.id, id).await?;
    let (view, status) = form_page(
        &req,
        &mut at,
        Some(id),
        TemplateForm::of(&t),
        FormErrors::none(),
    )
    .await?;
    at.tx.commit().await?;
    respond(&view, status)
}

/// `POST /dashboard/pages/{page_id}/incident_templates/{id}`: replaces the
/// template, as deleting it and adding the new one through `/v1` would.
pub async fn update(
    req: HttpRequest,
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
    form: Posted<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let id: TemplateId = path_id(&path.1)?;
    let form = TemplateForm::posted(&form);
    match replace_template(&mut at.tx, &at.member, at.page.id, id, form.input()).await {
        Ok(t) => {
            at.tx.commit().await?;
            Ok(frame::done(
                &format!("/dashboard/pages/{}/incident_templates", at.page.id),
                &format!("Template “{}” saved.", t.name),
            ))
        }
        Err(err) => {
            let errors = FormErrors::from_error(err)?;
            let (view, status) = form_page(&req, &mut at, Some(id), form, errors).await?;
            drop(at.tx);
            respond(&view, status)
        }
    }
}

/// `POST /dashboard/pages/{page_id}/incident_templates/{id}/delete`: as
/// `DELETE /v1/pages/{page_id}/incident_templates/{id}` does.
pub async fn delete(
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id: TemplateId = path_id(&path.1)?;
    let t = delete_template(&mut at.tx, &at.member, at.page.id, id).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{}/incident_templates", at.page.id),
        &format!("Template “{}” deleted.", t.name),
    ))
}
