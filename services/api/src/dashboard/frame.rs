//! What every signed-in page shows around its content: who is signed in,
//! for which team, the team's pages, the navigation (with the current
//! section marked), the message left by the last action (the "flash"), and
//! the CSRF token its forms carry. Plus the answers every page gives:
//! HTML, a redirect with a flash, an error page.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use askama::Template;
use heliograph_domain::{Page, PageId, Role, TenantId};
use heliograph_store::{ListQuery, TenantTx};

use super::guard::ErrorPage;
use crate::auth::Member;
use crate::error::ApiError;
use crate::startup::AppState;

/// The cookie that carries the message an action leaves for the next page.
pub const FLASH_COOKIE: &str = "heliograph_flash";

/// Which part of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// A page's current state.
    Overview,
    /// Incidents.
    Incidents,
    /// Scheduled maintenance.
    Maintenance,
    /// Components and groups.
    Components,
    /// Subscribers.
    Subscribers,
    /// Delivery proof.
    Notifications,
    /// Custom domains.
    Domains,
    /// The page's settings.
    Settings,
    /// The list of pages.
    Pages,
    /// The team.
    Team,
    /// API keys.
    ApiKeys,
    /// The audit log.
    Audit,
    /// The plan and its limits.
    Billing,
    /// The person's own account.
    Account,
}

/// A page of the team, as the navigation names it.
#[derive(Debug, Clone)]
pub struct PageLink {
    /// Its id.
    pub id: PageId,
    /// Its name.
    pub name: String,
    /// Where readers see it.
    pub public_url: String,
}

/// A team the person belongs to, for the switcher.
#[derive(Debug, Clone)]
pub struct TeamLink {
    /// The tenant.
    pub id: TenantId,
    /// Its name.
    pub name: String,
    /// The person's role there.
    pub role: Role,
}

/// What every signed-in page shows around its content.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The session's CSRF token, for the hidden `_csrf` field of every form.
    pub csrf: String,
    /// The team acted for.
    pub team: TeamLink,
    /// The other teams the person belongs to.
    pub other_teams: Vec<TeamLink>,
    /// The signed-in person's address.
    pub email: String,
    /// Whether that address is verified (if not, a banner says how).
    pub email_verified: bool,
    /// The team's pages.
    pub pages: Vec<PageLink>,
    /// The page being worked on, if any.
    pub page: Option<PageLink>,
    /// The section of the navigation this page is in.
    pub section: Section,
    /// The message the last action left, if any.
    pub flash: Option<String>,
}

impl Frame {
    /// The frame of a page `member` sees: `page` is the page being worked
    /// on (the first of the team's when `None` and the section is a page's).
    pub async fn load(
        state: &AppState,
        req: &HttpRequest,
        member: &Member,
        tx: &mut TenantTx,
        page: Option<&Page>,
        section: Section,
    ) -> Result<Self, ApiError> {
        let (user, session) = member.person()?;
        let teams = state.store.memberships_of(user).await?;
        let (email, email_verified) = state.store.person(user).await?;
        let pages: Vec<PageLink> = tx
            .list_pages(&ListQuery::all())
            .await?
            .items
            .iter()
            .map(|p| link(state, p))
            .collect();
        let mut team = None;
        let mut other_teams = Vec::new();
        for t in teams {
            let entry = TeamLink {
                id: t.tenant_id,
                name: t.name,
                role: t.role,
            };
            if t.tenant_id == member.tenant {
                team = Some(entry);
            } else {
                other_teams.push(entry);
            }
        }
        Ok(Self {
            csrf: crate::routes::sessions::csrf_token(state, session),
            team: team.ok_or(ApiError::Unauthorized)?,
            other_teams,
            email,
            email_verified,
            page: page.map(|p| link(state, p)),
            pages,
            section,
            flash: flash_of(req),
        })
    }

    /// Whether the signed-in person may edit (editors and above): what the
    /// page offers (a button the role may not press is not shown; the
    /// action checks again, as its API twin does).
    #[must_use]
    pub fn may_edit(&self) -> bool {
        self.team.role.rank() >= Role::Editor.rank()
    }

    /// Whether the signed-in person is an admin or an owner.
    #[must_use]
    pub fn may_admin(&self) -> bool {
        self.team.role.rank() >= Role::Admin.rank()
    }

    /// Whether this page is in the navigation's section named `key`
    /// (`"incidents"`, `"team"`, …; see [`Section::key`]).
    #[must_use]
    pub fn at(&self, key: &str) -> bool {
        self.section.key() == key
    }
}

impl Section {
    /// The section's name in templates.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Overview => "overview",
            Self::Incidents => "incidents",
            Self::Maintenance => "maintenance",
            Self::Components => "components",
            Self::Subscribers => "subscribers",
            Self::Notifications => "notifications",
            Self::Domains => "domains",
            Self::Settings => "settings",
            Self::Pages => "pages",
            Self::Team => "team",
            Self::ApiKeys => "api-keys",
            Self::Audit => "audit",
            Self::Billing => "billing",
            Self::Account => "account",
        }
    }
}

fn link(state: &AppState, p: &Page) -> PageLink {
    PageLink {
        id: p.id,
        name: p.name.clone(),
        public_url: state.urls.page_url(p.slug.as_str()),
    }
}

/// The message the last action left, if any.
pub fn flash_of(req: &HttpRequest) -> Option<String> {
    req.cookie(FLASH_COOKIE)
        .map(|c| c.value().to_owned())
        .and_then(|v| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("m={v}"))
                .ok()
                .and_then(|mut pairs| pairs.pop())
                .map(|(_, m)| m)
        })
        .filter(|m| !m.is_empty())
}

fn flash_cookie(value: String, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(FLASH_COOKIE, value)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// A rendered page (200); the flash it showed is cleared.
pub fn html(frame: &Frame, page: &impl Template) -> Result<HttpResponse, ApiError> {
    html_bare(page, frame.flash.is_some())
}

/// A rendered page (200) outside a team's frame (signing in, emailed
/// links); `showed_flash` clears the flash it showed.
pub fn html_bare(page: &impl Template, showed_flash: bool) -> Result<HttpResponse, ApiError> {
    let body = page.render().map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("Failed to render a page"))
    })?;
    let mut builder = HttpResponse::Ok();
    if showed_flash {
        builder.cookie(flash_cookie(String::new(), 0));
    }
    Ok(builder.content_type("text/html; charset=utf-8").body(body))
}

/// A page rendered with another status (a form that came back with errors: 422).
pub fn html_with(
    status: actix_web::http::StatusCode,
    page: &impl Template,
) -> Result<HttpResponse, ApiError> {
    let body = page.render().map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("Failed to render a page"))
    })?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// After an action: go to `location` (303, so the browser gets it), where
/// `message` is shown once.
#[must_use]
pub fn done(location: &str, message: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .cookie(flash_cookie(super::form::encode(message), 60))
        .finish()
}

/// Go to `location` (303), with nothing to say.
#[must_use]
pub fn go(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

/// An error page, outside any team's frame.
#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorView<'a> {
    page: &'a ErrorPage,
    reference: Option<&'a str>,
}

/// Renders `page` into `builder`; `reference` is the request id a person
/// can quote.
pub fn render_error(
    builder: &mut HttpResponseBuilder,
    page: &ErrorPage,
    reference: Option<&str>,
) -> HttpResponse {
    let body = ErrorView { page, reference }
        .render()
        .unwrap_or_else(|_| page.detail.clone());
    builder.content_type("text/html; charset=utf-8").body(body)
}

fn state_of(req: &HttpRequest) -> Result<actix_web::web::Data<AppState>, ApiError> {
    req.app_data::<actix_web::web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))
}

/// The frame of a page-scoped dashboard page, in `section`.
pub(crate) async fn frame_at<R: crate::page_scope::Needs>(
    req: &HttpRequest,
    at: &mut crate::page_scope::AtPage<R>,
    section: Section,
) -> Result<Frame, ApiError> {
    let state = state_of(req)?;
    Frame::load(&state, req, &at.member, &mut at.tx, Some(&at.page), section).await
}
