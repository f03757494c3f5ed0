//! Incidents on the dashboard: the list (open, scheduled, past; searched and
//! paginated), the composer that opens one, and — in [`page`] — an
//! incident's own page (updates, their corrections, deletion) and — in
//! [`proof`] — who was told of an update and how that went.
//!
//! Every action fills the REST API's own input (`IncidentInput`) from its
//! form and calls the orchestration `/v1` calls (`routes::incidents::open`,
//! `change`, `correct_update`, `remove`; `routes::deliveries::read_log`,
//! `redrive_dead`): the rules live there, once.

pub(crate) mod page;
pub(crate) mod proof;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{Channel, Component, ComponentStatus, Incident, IncidentStatus};
use heliograph_store::{IncidentScope, ListQuery, SubscriberState, TenantTx};
use serde::Deserialize;
use time::OffsetDateTime;

use super::form::{FormErrors, Posted, encode};
use super::frame::{self, Frame, Section, frame_at};
use crate::error::ApiError;
use crate::page_scope::{AtPage, Editor, Viewer};
use crate::routes::incidents::IncidentInput;

/// Rows a list shows at once.
const PER_PAGE: i64 = 50;

/// An instant as a person reads it (UTC; `<time>` carries the exact one).
pub(crate) fn shown(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// The first value of `key` in a posted form.
pub(crate) fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Whether the checkbox `key` is ticked.
pub(crate) fn ticked(pairs: &[(String, String)], key: &str) -> bool {
    field(pairs, key).is_some_and(|v| !v.is_empty() && v != "off")
}

/// A component's row in a form: its current status and the one chosen.
pub(crate) struct ComponentRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) current: ComponentStatus,
    pub(crate) chosen: ComponentStatus,
}

impl ComponentRow {
    /// Every component, each preset to its current status or what the form
    /// chose (`component.<id>`).
    pub(crate) fn all(components: &[Component], pairs: &[(String, String)]) -> Vec<Self> {
        components
            .iter()
            .map(|c| {
                let id = c.id.to_string();
                let chosen = field(pairs, &format!("component.{id}"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(c.status);
                Self {
                    id,
                    name: c.name.clone(),
                    current: c.status,
                    chosen,
                }
            })
            .collect()
    }

    /// The statuses a select offers.
    pub(crate) fn options(&self) -> &'static [ComponentStatus] {
        ComponentStatus::ALL
    }

    /// The components whose chosen status differs from the current one:
    /// the `components` of the API's input (a row left alone is no change).
    pub(crate) fn changes(rows: &[Self]) -> Option<HashMap<String, String>> {
        let changed: HashMap<String, String> = rows
            .iter()
            .filter(|r| r.chosen != r.current)
            .map(|r| (r.id.clone(), r.chosen.as_str().to_owned()))
            .collect();
        (!changed.is_empty()).then_some(changed)
    }
}

/// Who hears of an update: the page's active subscribers, per channel.
pub(crate) struct Audience {
    pub(crate) total: i64,
    pub(crate) by_channel: Vec<(&'static str, i64)>,
}

impl Audience {
    /// Counted as `GET /v1/pages/{page_id}/subscribers/count?channel=…` counts.
    pub(crate) async fn of(
        tx: &mut TenantTx,
        page: heliograph_domain::PageId,
    ) -> Result<Self, ApiError> {
        let tally = tx.tally_subscribers(page, &ListQuery::all()).await?;
        let by_channel = Channel::ALL
            .iter()
            .map(|c| (c.as_str(), tally.count(Some(*c), SubscriberState::Active)))
            .collect();
        Ok(Self {
            total: tally.count(None, SubscriberState::Active),
            by_channel,
        })
    }

    /// "3 subscribers (email 2, webhook 1)".
    pub(crate) fn summary(&self) -> String {
        let parts: Vec<String> = self
            .by_channel
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        let noun = if self.total == 1 {
            "subscriber"
        } else {
            "subscribers"
        };
        if parts.is_empty() {
            format!("{} {noun}", self.total)
        } else {
            format!("{} {noun} ({})", self.total, parts.join(", "))
        }
    }
}

/// The list's tabs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Open,
    Scheduled,
    Past,
}

impl Tab {
    fn parse(raw: Option<&str>) -> Self {
        match raw {
            Some("scheduled") => Self::Scheduled,
            Some("past") => Self::Past,
            _ => Self::Open,
        }
    }

    const fn key(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Scheduled => "scheduled",
            Self::Past => "past",
        }
    }

    /// The store's scope and statuses for the tab.
    fn scope(self) -> (IncidentScope, Vec<IncidentStatus>) {
        match self {
            Self::Open => (IncidentScope::Unresolved, Vec::new()),
            Self::Scheduled => (
                IncidentScope::Scheduled,
                vec![
                    IncidentStatus::Scheduled,
                    IncidentStatus::InProgress,
                    IncidentStatus::Verifying,
                ],
            ),
            Self::Past => (
                IncidentScope::All,
                vec![
                    IncidentStatus::Resolved,
                    IncidentStatus::Postmortem,
                    IncidentStatus::Completed,
                ],
            ),
        }
    }
}

/// The list's query string.
#[derive(Deserialize)]
pub struct ListParams {
    tab: Option<String>,
    q: Option<String>,
    page: Option<i64>,
}

/// The incidents of a page, one tab and one slice at a time.
#[derive(Template)]
#[template(path = "dashboard/incidents/list.html")]
struct List {
    frame: Frame,
    page_id: String,
    tab: &'static str,
    q: String,
    incidents: Vec<Incident>,
    total: i64,
    number: i64,
    pages: i64,
}

impl List {
    fn label(i: &Incident) -> &'static str {
        i.status.label()
    }

    fn tone(i: &Incident) -> &'static str {
        heliograph_domain::incident_tone(i.status, i.impact)
    }

    fn when(i: &Incident) -> String {
        shown(i.started_at)
    }

    fn stamp(i: &Incident) -> String {
        heliograph_web::timestamp(i.started_at)
    }

    /// The link to another slice, keeping the tab and the search.
    fn slice(&self, number: i64) -> String {
        format!(
            "/dashboard/pages/{}/incidents?tab={}&q={}&page={number}",
            self.page_id,
            self.tab,
            encode(&self.q)
        )
    }

    fn tab_link(&self, tab: &str) -> String {
        format!(
            "/dashboard/pages/{}/incidents?tab={tab}&q={}",
            self.page_id,
            encode(&self.q)
        )
    }
}

/// `GET /dashboard/pages/{page_id}/incidents`: open, scheduled or past
/// incidents, searched by name, 50 at a time.
pub async fn list(
    req: HttpRequest,
    mut at: AtPage<Viewer>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let tab = Tab::parse(params.tab.as_deref());
    let q = params.q.clone().unwrap_or_default();
    let number = params.page.unwrap_or(1).max(1);
    let (scope, statuses) = tab.scope();
    let query = ListQuery {
        q: Some(q.trim().to_owned()).filter(|q| !q.is_empty()),
        statuses: statuses.iter().map(|s| s.as_str().to_owned()).collect(),
        limit: PER_PAGE,
        offset: (number - 1).saturating_mul(PER_PAGE),
    };
    let listed = at.tx.list_incidents(at.page.id, scope, &query).await?;
    let frame = frame_at(&req, &mut at, Section::Incidents).await?;
    at.tx.commit().await?;
    frame::html(
        &frame,
        &List {
            frame: frame.clone(),
            page_id: at.page.id.to_string(),
            tab: tab.key(),
            q,
            incidents: listed.items,
            total: listed.total,
            number,
            pages: ((listed.total + PER_PAGE - 1) / PER_PAGE).max(1),
        },
    )
}

/// The incident composer.
#[derive(Template)]
#[template(path = "dashboard/incidents/composer.html")]
struct Composer {
    frame: Frame,
    errors: FormErrors,
    page_id: String,
    name: String,
    status: IncidentStatus,
    body: String,
    notify: bool,
    rows: Vec<ComponentRow>,
    templates: Vec<(String, String)>,
    template: String,
    audience: Audience,
}

impl Composer {
    fn statuses(&self) -> [IncidentStatus; 4] {
        [
            IncidentStatus::Investigating,
            IncidentStatus::Identified,
            IncidentStatus::Monitoring,
            IncidentStatus::Resolved,
        ]
    }
}

/// `?template=<id>`: the composer filled from a template.
#[derive(Deserialize)]
pub struct ComposerParams {
    template: Option<String>,
}

async fn composer(
    req: &HttpRequest,
    at: &mut AtPage<Editor>,
    pairs: &[(String, String)],
    errors: FormErrors,
) -> Result<Composer, ApiError> {
    let components = at.tx.components(at.page.id).await?;
    let templates = at
        .tx
        .list_templates(at.page.id, &ListQuery::all())
        .await?
        .items;
    let audience = Audience::of(&mut at.tx, at.page.id).await?;
    let frame = frame_at(req, at, Section::Incidents).await?;
    Ok(Composer {
        frame,
        errors,
        page_id: at.page.id.to_string(),
        name: field(pairs, "name").unwrap_or_default().to_owned(),
        status: field(pairs, "status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(IncidentStatus::Investigating),
        body: field(pairs, "body").unwrap_or_default().to_owned(),
        notify: pairs.is_empty() || ticked(pairs, "notify"),
        rows: ComponentRow::all(&components, pairs),
        templates: templates
            .iter()
            .map(|t| (t.id.to_string(), t.name.clone()))
            .collect(),
        template: field(pairs, "template_id").unwrap_or_default().to_owned(),
        audience,
    })
}

/// `GET /dashboard/pages/{page_id}/incidents/new`: the composer, empty or
/// filled from the template `?template=` names (without script: choosing
/// one reloads the form through this query).
pub async fn new(
    req: HttpRequest,
    mut at: AtPage<Editor>,
    params: web::Query<ComposerParams>,
) -> Result<HttpResponse, ApiError> {
    let mut pairs = Vec::new();
    if let Some(raw) = params.template.as_deref().filter(|t| !t.is_empty()) {
        let id = raw.parse().map_err(|_| ApiError::NotFound)?;
        let t = at.tx.template(at.page.id, id).await?;
        pairs.push(("template_id".to_owned(), raw.to_owned()));
        pairs.push(("name".to_owned(), t.title.clone()));
        pairs.push(("body".to_owned(), t.body.clone()));
        pairs.push(("status".to_owned(), t.update_status.as_str().to_owned()));
        if t.should_send_notifications {
            pairs.push(("notify".to_owned(), "on".to_owned()));
        }
    }
    let view = composer(&req, &mut at, &pairs, FormErrors::none()).await?;
    at.tx.commit().await?;
    frame::html(&view.frame.clone(), &view)
}

/// The API's input for a composer's or an update's form.
pub(crate) fn input_of(pairs: &[(String, String)], rows: &[ComponentRow]) -> IncidentInput {
    IncidentInput {
        name: field(pairs, "name").map(str::to_owned),
        status: field(pairs, "status").map(str::to_owned),
        body: field(pairs, "body").map(str::to_owned),
        components: ComponentRow::changes(rows),
        deliver_notifications: Some(ticked(pairs, "notify")),
        restore_components: Some(ticked(pairs, "restore_components")),
        template_id: field(pairs, "template_id")
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        ..IncidentInput::default()
    }
}

/// The flash after posting: who is being told, and where to watch it.
pub(crate) fn posted_message(audience: &Audience, notify: bool) -> String {
    if notify && audience.total > 0 {
        format!(
            "Incident posted — {} {} being notified.",
            audience.total,
            if audience.total == 1 {
                "subscriber is"
            } else {
                "subscribers are"
            }
        )
    } else {
        "Incident posted — nobody is being notified.".to_owned()
    }
}

/// `POST /dashboard/pages/{page_id}/incidents`: opens the incident as
/// `POST /v1/pages/{page_id}/incidents` does, then shows its delivery proof.
pub async fn create(
    req: HttpRequest,
    mut at: AtPage<Editor>,
    form: Posted<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let pairs = form.into_inner()?;
    let components = at.tx.components(at.page.id).await?;
    let rows = ComponentRow::all(&components, &pairs);
    let input = input_of(&pairs, &rows);
    let notify = ticked(&pairs, "notify");
    let opened = crate::routes::incidents::open(&at.member, &mut at.tx, &at.page, input).await;
    match opened {
        Ok((incident, update)) => {
            let audience = Audience::of(&mut at.tx, at.page.id).await?;
            at.tx.commit().await?;
            let location = format!(
                "/dashboard/pages/{}/incidents/{}/incident_updates/{}/deliveries",
                at.page.id, incident.id, update.id
            );
            Ok(frame::done(&location, &posted_message(&audience, notify)))
        }
        Err(err) => {
            let errors = FormErrors::from_error(err)?;
            let view = composer(&req, &mut at, &pairs, errors).await?;
            // Not committed: a refusal keeps nothing it may have begun.
            drop(at.tx);
            frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
        }
    }
}
