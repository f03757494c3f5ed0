//! Where a signed-in person lands: the platform's root sends them to the
//! dashboard, the dashboard to their first page, and a page's overview
//! shows its current state.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{Component, Visibility};
use heliograph_store::ListQuery;

use super::frame::{self, Frame, Section};
use crate::auth::Member;
use crate::error::ApiError;
use crate::page_scope::{AtPage, Viewer};
use crate::startup::AppState;

/// `GET /`: the dashboard (which asks whoever is not signed in to sign in).
pub async fn root() -> HttpResponse {
    frame::go("/dashboard")
}

/// `GET /dashboard`: the team's first page.
pub async fn landing(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    member.person()?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let first = tx
        .list_pages(&ListQuery::all())
        .await?
        .items
        .into_iter()
        .next();
    tx.commit().await?;
    Ok(match first {
        Some(page) => frame::go(&format!("/dashboard/pages/{}", page.id)),
        None => frame::go("/dashboard/pages"),
    })
}

/// A page's current state.
#[derive(Template)]
#[template(path = "dashboard/overview.html")]
struct Overview {
    frame: Frame,
    components: Vec<Component>,
}

impl Overview {
    fn label(c: &Component) -> &'static str {
        c.status.label()
    }

    fn tone(c: &Component) -> &'static str {
        heliograph_web::impact_tone(c.status.impact())
    }

    fn private(c: &Component) -> bool {
        c.visibility == Visibility::Private
    }
}

/// `GET /dashboard/pages/{page_id}`: the page's current state.
pub async fn overview(req: HttpRequest, mut at: AtPage<Viewer>) -> Result<HttpResponse, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))?;
    let components = at.tx.components(at.id()).await?;
    let frame = Frame::load(
        &state,
        &req,
        &at.member,
        &mut at.tx,
        Some(&at.page),
        Section::Overview,
    )
    .await?;
    at.tx.commit().await?;
    frame::html(
        &frame,
        &Overview {
            frame: frame.clone(),
            components,
        },
    )
}
