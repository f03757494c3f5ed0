//! The team's API keys: the list (name, scope, created, last used), making
//! a key (its secret shown once, on the answer to the form itself, never
//! through a redirect or a flash that could be shown again), and revoking
//! one. Admins only, and only people, as `/v1/api-keys`: the rules and
//! writes are `routes::api_keys`'.

use crate::dashboard::form::Posted;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::custom_domain::utc_minute;
use heliograph_domain::{ApiKey, ApiKeyId, ApiKeyScope};
use serde::Deserialize;

use super::form::FormErrors;
use super::frame::{self, Frame, Section};
use crate::auth::Member;
use crate::error::ApiError;
use crate::routes::api_keys::{key_manager, make, revoke_key};
use crate::routes::path_id;
use crate::startup::AppState;

/// A key as its row shows it.
struct Row {
    key: ApiKey,
}

impl Row {
    fn scope(&self) -> &'static str {
        match self.key.scope {
            ApiKeyScope::Read => "Read only (acts as a viewer)",
            ApiKeyScope::ReadWrite => "Read and write (acts as an admin)",
        }
    }

    fn created(&self) -> String {
        utc_minute(self.key.created_at)
    }

    fn created_iso(&self) -> String {
        heliograph_web::timestamp(self.key.created_at)
    }

    fn last_used(&self) -> Option<(String, String)> {
        self.key
            .last_used_at
            .map(|t| (heliograph_web::timestamp(t), utc_minute(t)))
    }

    fn revoked(&self) -> Option<String> {
        self.key.revoked_at.map(utc_minute)
    }
}

/// A key just made, and its secret.
struct Created {
    name: String,
    secret: String,
}

/// The keys page.
#[derive(Template)]
#[template(path = "dashboard/keys/list.html")]
struct KeysView {
    frame: Frame,
    keys: Vec<Row>,
    created: Option<Created>,
    name: String,
    read_write: bool,
    errors: FormErrors,
}

async fn view(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    created: Option<Created>,
    form: (String, bool, FormErrors),
) -> Result<KeysView, ApiError> {
    key_manager(member)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let keys = tx.api_keys().await?;
    let frame = Frame::load(state, req, member, &mut tx, None, Section::ApiKeys).await?;
    tx.commit().await?;
    let (name, read_write, errors) = form;
    Ok(KeysView {
        frame,
        keys: keys.into_iter().map(|key| Row { key }).collect(),
        created,
        name,
        read_write,
        errors,
    })
}

/// `GET /dashboard/api-keys`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
) -> Result<HttpResponse, ApiError> {
    let v = view(
        &state,
        &req,
        &member,
        None,
        (String::new(), false, FormErrors::none()),
    )
    .await?;
    frame::html(&v.frame, &v)
}

/// The form that makes a key.
#[derive(Deserialize)]
pub struct KeyForm {
    name: Option<String>,
    scope: Option<String>,
}

/// `POST /dashboard/api-keys`: makes a key, as `POST /v1/api-keys` does,
/// and shows its secret on this answer only (not stored by the browser).
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: Member,
    form: Posted<KeyForm>,
) -> Result<HttpResponse, ApiError> {
    // The REST twin's check, before the form is read: a malformed form
    // from a viewer is refused for the role.
    key_manager(&member)?;
    let KeyForm { name, scope } = form.into_inner()?;
    let read_write = scope.as_deref() == Some(ApiKeyScope::ReadWrite.as_str());
    match make(&state, &member, name.clone(), scope).await {
        Ok((key, secret)) => {
            let v = view(
                &state,
                &req,
                &member,
                Some(Created {
                    name: key.name,
                    secret,
                }),
                (String::new(), false, FormErrors::none()),
            )
            .await?;
            let mut res = frame::html_with(StatusCode::OK, &v)?;
            // Neither kept nor shown again from the history.
            res.headers_mut().insert(
                CACHE_CONTROL,
                HeaderValue::from_static("no-store, max-age=0"),
            );
            Ok(res)
        }
        Err(err) => {
            let errors = FormErrors::from_error(err)?;
            let v = view(
                &state,
                &req,
                &member,
                None,
                (name.unwrap_or_default(), read_write, errors),
            )
            .await?;
            frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &v)
        }
    }
}

/// `POST /dashboard/api-keys/{id}/revoke`: as `DELETE /v1/api-keys/{id}`.
pub async fn revoke(
    state: web::Data<AppState>,
    member: Member,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ApiKeyId = path_id(&id)?;
    let key = revoke_key(&state, &member, id).await?;
    Ok(frame::done(
        "/dashboard/api-keys",
        &format!("Key “{}” revoked — it stops working at once.", key.name),
    ))
}
