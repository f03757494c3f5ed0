//! Where a signed-in person lands: the platform's root sends them to the
//! dashboard, the dashboard to their first page, and a page's overview
//! shows its current state and, for a new team, the setup checklist.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{Incident, IncidentUpdate, PageId, PageStatus};
use heliograph_store::{ListQuery, Onboarding};

use super::components::Layout;
use super::frame::frame_at;
use super::frame::{self, Frame, Section};
use crate::auth::Member;
use crate::error::ApiError;
use crate::page_scope::{Admin, AtPage, Viewer};
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

/// One step of the setup checklist.
struct Step {
    /// What to do.
    label: &'static str,
    /// Where it is done.
    href: String,
    /// Whether it is done.
    done: bool,
}

/// A page's current state.
#[derive(Template)]
#[template(path = "dashboard/overview.html")]
struct Overview {
    frame: Frame,
    status: PageStatus,
    open: Vec<(Incident, Option<IncidentUpdate>)>,
    layout: Layout,
    /// The setup checklist, while it is neither done nor dismissed.
    steps: Option<Vec<Step>>,
}

impl Overview {
    fn tone(&self) -> &'static str {
        heliograph_web::impact_tone(self.status.indicator)
    }

    fn incident_tone(&self, i: &Incident) -> &'static str {
        heliograph_web::impact_tone(i.impact)
    }

    fn when(&self, u: &IncidentUpdate) -> String {
        heliograph_web::timestamp(u.display_at)
    }

    fn done_count(&self, steps: &[Step]) -> usize {
        steps.iter().filter(|s| s.done).count()
    }
}

/// The checklist's steps for `page`, or `None` once every step is done or
/// the team dismissed it.
fn steps(page: PageId, done: &Onboarding) -> Option<Vec<Step>> {
    let at = |suffix: &str| format!("/dashboard/pages/{page}{suffix}");
    let steps = vec![
        Step {
            label: "Add your components",
            href: at("/components"),
            done: done.components > 0,
        },
        Step {
            label: "Open a test incident",
            href: at("/incidents/new"),
            done: done.incidents > 0,
        },
        Step {
            label: "Add a subscriber",
            href: at("/subscribers"),
            done: done.subscribers > 0,
        },
        Step {
            label: "Map a custom domain",
            href: at("/domains"),
            done: done.domains > 0,
        },
        Step {
            label: "Invite a teammate",
            href: "/dashboard/team".to_owned(),
            done: done.people > 1,
        },
    ];
    (!done.dismissed && steps.iter().any(|s| !s.done)).then_some(steps)
}

/// `GET /dashboard/pages/{page_id}`: the page's current state (what its
/// public page shows, read the same way), and the setup checklist.
pub async fn overview(req: HttpRequest, mut at: AtPage<Viewer>) -> Result<HttpResponse, ApiError> {
    let data = at.tx.page_data(at.id()).await?;
    let onboarding = at.tx.onboarding(at.id()).await?;
    let frame = frame_at(&req, &mut at, Section::Overview).await?;
    at.tx.commit().await?;
    let status = heliograph_web::page_status(&data);
    let open = data
        .active_incidents
        .into_iter()
        .filter(|(i, _)| i.status.is_unresolved())
        .map(|(i, updates)| {
            let last = updates.into_iter().max_by_key(|u| u.created_at);
            (i, last)
        })
        .collect();
    let back = format!("/dashboard/pages/{}", at.page.id);
    frame::html(
        &frame,
        &Overview {
            frame: frame.clone(),
            status,
            open,
            layout: Layout::new(data.components, data.groups, false, back),
            steps: steps(at.page.id, &onboarding),
        },
    )
}

/// `POST /dashboard/pages/{page_id}/onboarding/dismiss`: hides the setup
/// checklist for the whole team (an admin's, as the page's settings are).
pub async fn dismiss_onboarding(mut at: AtPage<Admin>) -> Result<HttpResponse, ApiError> {
    at.tx.dismiss_onboarding().await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{}", at.page.id),
        "The setup checklist is dismissed.",
    ))
}
