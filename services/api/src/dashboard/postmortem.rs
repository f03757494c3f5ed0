//! An incident's postmortem on the dashboard, written, previewed,
//! published and deleted from the incident's page.
//!
//! Each action calls what `/v1/pages/{page_id}/incidents/{id}/postmortem`
//! calls (`routes::incidents::save_postmortem`, `release_postmortem`,
//! `remove_postmortem`): the rules and audit entries live there, once. The
//! preview is the incident page's, which shows the saved text as the public
//! page does.

use crate::dashboard::form::Posted;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::form::FormErrors;
use super::frame;
use super::incidents::page::show_view;
use super::incidents::{field, ticked};
use crate::error::ApiError;
use crate::page_scope::{AtPage, Editor};
use crate::routes::incidents::{
    incident_at, release_postmortem, remove_postmortem, save_postmortem,
};
use crate::startup::AppState;

fn incident_page(page: heliograph_domain::PageId, id: impl std::fmt::Display) -> String {
    format!("/dashboard/pages/{page}/incidents/{id}")
}

/// `POST …/incidents/{id}/postmortem`: saves the draft as
/// `PUT /v1/…/postmortem` does; the incident page then previews it.
pub async fn save(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
    form: Posted<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let pairs = form.into_inner()?;
    let incident = incident_at(&mut at, &path.1).await?;
    let text = field(&pairs, "body_draft").map(str::to_owned);
    match save_postmortem(&at.member, &mut at.tx, incident.id, text).await {
        Ok(saved) => {
            at.tx.commit().await?;
            Ok(frame::done(
                &format!("{}#postmortem-title", incident_page(at.page.id, saved.id)),
                "Postmortem draft saved. The preview shows it as the public page will; it is not public until you publish it.",
            ))
        }
        Err(err) => {
            let errors = FormErrors::from_error(err)?;
            let view = show_view(&state, &req, &mut at, incident, &pairs, errors).await?;
            // Not committed: a refusal keeps nothing it may have begun.
            drop(at.tx);
            frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
        }
    }
}

/// `POST …/incidents/{id}/postmortem/publish`: as
/// `PUT /v1/…/postmortem/publish`.
pub async fn publish(
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
    form: Posted<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let incident = incident_at(&mut at, &path.1).await?;
    let notify = ticked(&form, "notify_subscribers");
    release_postmortem(&at.member, &mut at.tx, incident.id, notify).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!(
            "{}#postmortem-title",
            incident_page(at.page.id, incident.id)
        ),
        if notify {
            "Postmortem published; subscribers are being told."
        } else {
            "Postmortem published."
        },
    ))
}

/// `POST …/incidents/{id}/postmortem/delete`: as
/// `DELETE /v1/…/postmortem`.
pub async fn delete(
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let incident = incident_at(&mut at, &path.1).await?;
    remove_postmortem(&at.member, &mut at.tx, incident.id).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &incident_page(at.page.id, incident.id),
        "Postmortem deleted.",
    ))
}
