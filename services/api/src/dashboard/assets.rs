//! The dashboard's two static files, compiled into the binary: its
//! stylesheet and its one script (progressive enhancement only: confirm
//! dialogs, copy buttons, live checks). Served from our own origin, as the
//! CSP demands; nothing is ever loaded from a third party.

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};

use crate::error::ApiError;

const CSS: &str = include_str!("../../../../frontend-templates/dashboard/dashboard.css");
const JS: &str = include_str!("../../../../frontend-templates/dashboard/dashboard.js");

/// `GET /dashboard/assets/{name}`: `dashboard.css` or `dashboard.js`.
pub async fn serve(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (body, content_type) = match name.as_str() {
        "dashboard.css" => (CSS, "text/css; charset=utf-8"),
        "dashboard.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return Err(ApiError::NotFound),
    };
    Ok(HttpResponse::Ok()
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(300),
        ]))
        .insert_header((header::CONTENT_TYPE, content_type))
        .body(body))
}
