//! The public HTML pages: the page, its incident history and one incident's
//! page, from `frontend-templates/public/` (one layout, one inline
//! stylesheet, no script, no asset of anyone else's but the tenant's logo).
//!
//! What a reader may see is asked of the domain's visibility rules before
//! any template runs: the views hold only components the [`Audience`] sees,
//! so a template cannot show a private component to the public by mistake.
//! Times are shown in the page's time zone (with its abbreviation) and given
//! to machines in UTC.
//!
//! The file is long because the three pages share one set of view structs
//! (and the uptime bars' arithmetic); apart, each page's view would need the
//! others' to make sense.

pub(crate) mod notice;

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use heliograph_domain::{Component, Incident, IncidentUpdate};
use heliograph_domain::{
    ComponentStatus, Impact, IncidentStatus, Sight, TimeZoneName, Visibility, day_bounds,
    local_date, offset_at,
};
use time::{Date, OffsetDateTime};

use crate::colours::{Rgb, STATUS_COLOURS, Theme};
use crate::feeds::began;
use crate::{Audience, PublicPage, UptimeDay, group_status, layout, page_status, timestamp};

/// The page's time zone.
pub(crate) fn page_zone(page: &PublicPage) -> TimeZoneName {
    page.data.page.time_zone.clone()
}

/// "Nov 20, 2026, 07:00 EST": an instant as the page's readers read it.
/// Zones whose abbreviations are numbers (`-03`) show the offset instead
/// ("UTC-03:00").
pub(crate) fn time_label(t: OffsetDateTime, zone: &TimeZoneName) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[month repr:short] [day padding:none], [year], [hour]:[minute]"
    );
    let (offset, abbreviation) = offset_at(t, zone);
    let local = t.to_offset(offset).format(FORMAT).unwrap_or_default();
    let zone_label = if abbreviation.chars().any(|c| c.is_ascii_alphabetic()) {
        abbreviation
    } else {
        let (h, m, _) = offset.as_hms();
        let sign = if offset.is_negative() { '-' } else { '+' };
        format!("UTC{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
    };
    format!("{local} {zone_label}")
}

/// "Nov 20, 2026".
fn date_label(d: Date) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[month repr:short] [day padding:none], [year]");
    d.format(FORMAT).unwrap_or_default()
}

/// "2026-11-20", for `<time datetime>`.
fn date_iso(d: Date) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]");
    d.format(FORMAT).unwrap_or_default()
}

/// A percentage with two decimals, rounded down so that a day with any
/// downtime never reads 100.00 %.
fn percent_label(p: f64) -> String {
    // The nudge keeps binary fractions (99.95 as 99.9499…) from losing a hundredth.
    format!("{:.2} %", (p.mul_add(100.0, 1e-6)).floor() / 100.0)
}

/// An instant for people and for machines.
struct TimeView {
    /// `2026-11-20T12:00:00.000Z`, for `<time datetime>`.
    at: String,
    /// In the page's zone.
    label: String,
}

impl TimeView {
    fn new(t: OffsetDateTime, zone: &TimeZoneName) -> Self {
        Self {
            at: timestamp(t),
            label: time_label(t, zone),
        }
    }
}

fn impact_label(i: Impact) -> &'static str {
    match i {
        Impact::None => "No impact",
        Impact::Minor => "Minor impact",
        Impact::Major => "Major impact",
        Impact::Critical => "Critical impact",
        Impact::Maintenance => "Maintenance",
    }
}

/// The fixed colour (see [`STATUS_COLOURS`]) a component status is shown in.
const fn status_tone(s: ComponentStatus) -> &'static str {
    impact_tone(s.impact())
}

pub use heliograph_domain::impact_tone;

/// What the layout needs: who the page is, where its documents live, its colours.
struct Site<'a> {
    name: &'a str,
    headline: Option<&'a str>,
    logo_url: Option<&'a str>,
    support_url: Option<&'a str>,
    base_path: &'a str,
    theme: Theme,
    status_colours: &'static [(&'static str, Rgb)],
    zone: String,
}

/// A tenant's URL, if it is one a page may point at (they are checked when
/// set; this keeps anything else, such as `javascript:`, out regardless).
fn web_url(url: Option<&str>) -> Option<&str> {
    url.filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}

impl<'a> Site<'a> {
    fn new(page: &'a PublicPage, base_path: &'a str, zone: &TimeZoneName) -> Self {
        let p = &page.data.page;
        Self {
            name: &p.name,
            headline: p.headline.as_deref().filter(|h| !h.trim().is_empty()),
            logo_url: web_url(p.logo_url.as_deref()).filter(|u| u.starts_with("https://")),
            support_url: web_url(p.support_url.as_deref()),
            base_path,
            theme: Theme::new(&p.background_color, &p.text_color, &p.brand_color),
            status_colours: &STATUS_COLOURS,
            zone: zone.to_string(),
        }
    }
}

/// One day of an uptime bar.
struct DayView<'a> {
    /// The tooltip's id (unique in the document).
    id: String,
    /// `ok`, `minor`, `major`, `critical` or `none` (no data).
    tone: &'static str,
    /// Where the tooltip is pinned so that it stays on screen: `start`, `middle`, `end`.
    anchor: &'static str,
    date: String,
    date_label: String,
    /// "99.95 % uptime" or "No data".
    uptime: String,
    /// "Major outage 12 min", "Partial outage 3 min"; empty when none.
    outages: Vec<String>,
    /// Incidents that touched the component that day.
    incidents: Vec<&'a str>,
    /// The day's facts in one line, for screen readers.
    label: String,
}

/// A component's uptime bar.
struct BarView<'a> {
    /// Unique in the document.
    id: String,
    /// "99.95 % uptime over the last 90 days".
    summary: String,
    first: String,
    first_label: String,
    last: String,
    last_label: String,
    days: Vec<DayView<'a>>,
}

struct ComponentView<'a> {
    name: &'a str,
    description: Option<&'a str>,
    status: &'static str,
    tone: &'static str,
    status_label: &'static str,
    private: bool,
    bar: Option<BarView<'a>>,
}

struct GroupView<'a> {
    name: &'a str,
    description: Option<&'a str>,
    tone: &'static str,
    status_label: &'static str,
    components: Vec<ComponentView<'a>>,
}

/// A component named by an incident.
struct AffectedView<'a> {
    name: &'a str,
    private: bool,
}

/// A component change carried by an update.
struct ChangeView<'a> {
    name: &'a str,
    private: bool,
    from: &'static str,
    to: &'static str,
}

struct UpdateView<'a> {
    status_label: &'static str,
    body: &'a str,
    time: TimeView,
    changes: Vec<ChangeView<'a>>,
}

struct IncidentView<'a> {
    id: String,
    name: &'a str,
    impact: &'static str,
    impact_tone: &'static str,
    status_label: &'static str,
    began: TimeView,
    resolved: Option<TimeView>,
    window_from: Option<TimeView>,
    window_until: Option<TimeView>,
    updates: Vec<UpdateView<'a>>,
    affected: Vec<AffectedView<'a>>,
    /// The published postmortem and when it was published.
    postmortem: Option<(&'a str, TimeView)>,
}

/// An incident and its updates, newest first, as the page's data holds them.
type WithUpdates = (Incident, Vec<IncidentUpdate>);

/// Everything a render needs to know besides the template: whose eyes, which zone.
struct Ctx<'a> {
    page: &'a PublicPage,
    zone: TimeZoneName,
    /// What this audience may see.
    sight: Sight,
    /// Components this audience may see, in page order (shown or not).
    visible: Vec<&'a Component>,
}

impl<'a> Ctx<'a> {
    fn new(page: &'a PublicPage, audience: Audience) -> Self {
        let sight = crate::sight(&page.data, audience);
        Self {
            page,
            zone: page_zone(page),
            visible: page
                .data
                .components
                .iter()
                .filter(|c| sight.sees(c.id.as_uuid()))
                .collect(),
            sight,
        }
    }

    fn time(&self, t: OffsetDateTime) -> TimeView {
        TimeView::new(t, &self.zone)
    }

    fn component(&self, id: uuid::Uuid) -> Option<&'a Component> {
        self.page
            .data
            .components
            .iter()
            .find(|c| c.id.as_uuid() == id)
    }

    fn incident(&self, (i, updates): &'a WithUpdates) -> IncidentView<'a> {
        let impact = self.sight.impact(&i.facts(updates));
        IncidentView {
            id: i.id.to_string(),
            name: &i.name,
            impact: impact_label(impact),
            impact_tone: impact_tone(impact),
            status_label: i.status.label(),
            began: self.time(i.started_at),
            resolved: i.resolved_at.map(|t| self.time(t)),
            window_from: i.scheduled_for.map(|t| self.time(t)),
            window_until: i.scheduled_until.map(|t| self.time(t)),
            updates: updates
                .iter()
                .map(|u| UpdateView {
                    status_label: u.status.label(),
                    body: &u.body,
                    time: self.time(u.display_at),
                    changes: u
                        .affected_components
                        .iter()
                        .filter(|a| self.sight.shows_change(a.code, a.private))
                        .map(|a| ChangeView {
                            name: &a.name,
                            private: a.private
                                || self
                                    .component(a.code)
                                    .is_some_and(|c| c.visibility == Visibility::Private),
                            from: a.old_status.label(),
                            to: a.new_status.label(),
                        })
                        .collect(),
                })
                .collect(),
            affected: self
                .visible
                .iter()
                .filter(|c| i.component_ids.contains(&c.id))
                .map(|c| AffectedView {
                    name: &c.name,
                    private: c.visibility == Visibility::Private,
                })
                .collect(),
            postmortem: i
                .postmortem_published_at
                .zip(i.postmortem_body.as_deref())
                .map(|(at, body)| (body, self.time(at))),
        }
    }
}

/// Whether the page lists a component (as it is configured to).
fn shown(c: &Component) -> bool {
    c.showcase && (!c.only_show_if_degraded || c.status != ComponentStatus::Operational)
}

/// Builds the components' uptime bars, sharing the days' bounds and the
/// incidents between them.
struct Bars<'a> {
    zone: &'a TimeZoneName,
    /// Incidents (not maintenances) with the span they were open.
    incidents: Vec<(&'a Incident, OffsetDateTime, OffsetDateTime)>,
    bounds: HashMap<Date, (OffsetDateTime, OffsetDateTime)>,
    /// How many bars so far, for unique ids.
    count: usize,
}

impl<'a> Bars<'a> {
    fn new(ctx: &Ctx<'a>, zone: &'a TimeZoneName) -> Self {
        let data = &ctx.page.data;
        let mut incidents: Vec<_> = data
            .history
            .iter()
            .chain(&data.active_incidents)
            .map(|(i, _)| i)
            .filter(|i| !i.is_maintenance() && !i.status.is_maintenance())
            .map(|i| {
                let end = i.resolved_at.unwrap_or(ctx.page.as_of).max(i.started_at);
                (i, i.started_at, end)
            })
            .collect();
        // The history and the open incidents overlap.
        incidents.sort_by_key(|(i, start, _)| (*start, i.id.as_uuid()));
        incidents.dedup_by_key(|(i, _, _)| i.id);
        Self {
            zone,
            incidents,
            bounds: HashMap::new(),
            count: 0,
        }
    }

    fn bar(&mut self, c: &Component, days: &[UptimeDay]) -> BarView<'a> {
        self.count += 1;
        let n = self.count;
        let len = days.len();
        let known: Vec<f64> = days.iter().filter_map(|d| d.percentage).collect();
        let summary = if known.is_empty() {
            format!("No uptime data over the last {len} days")
        } else {
            #[expect(
                clippy::cast_precision_loss,
                reason = "a count of days is far below 2^52"
            )]
            let mean = known.iter().sum::<f64>() / known.len() as f64;
            format!("{} uptime over the last {len} days", percent_label(mean))
        };
        let zone = self.zone;
        let views: Vec<DayView<'a>> = days
            .iter()
            .enumerate()
            .map(|(k, d)| {
                let (start, end) = *self
                    .bounds
                    .entry(d.date)
                    .or_insert_with(|| day_bounds(d.date, zone));
                let incidents = self
                    .incidents
                    .iter()
                    .filter(|(i, from, to)| {
                        i.component_ids.contains(&c.id)
                            && *from < end
                            && (*to > start || *from >= start)
                    })
                    .map(|(i, _, _)| i.name.as_str())
                    .collect();
                day_view(n, k, len, d, incidents)
            })
            .collect();
        let ends = |d: Option<&DayView<'_>>| {
            d.map(|d| (d.date.clone(), d.date_label.clone()))
                .unwrap_or_default()
        };
        let (first, first_label) = ends(views.first());
        let (last, last_label) = ends(views.last());
        BarView {
            id: format!("bar{n}"),
            summary,
            first,
            first_label,
            last,
            last_label,
            days: views,
        }
    }
}

fn day_view<'a>(
    bar: usize,
    k: usize,
    len: usize,
    d: &UptimeDay,
    incidents: Vec<&'a str>,
) -> DayView<'a> {
    let minutes = |s: i64| (s.max(0) + 59) / 60;
    let mut outages = Vec::new();
    if d.major_outage_s > 0 {
        outages.push(format!("Major outage {} min", minutes(d.major_outage_s)));
    }
    if d.partial_outage_s > 0 {
        outages.push(format!(
            "Partial outage {} min",
            minutes(d.partial_outage_s)
        ));
    }
    let (tone, uptime) = match d.percentage {
        None => ("none", "No data".to_owned()),
        Some(p) => {
            let tone = if p >= 100.0 && outages.is_empty() {
                "ok"
            } else if p >= 99.0 {
                "minor"
            } else if p >= 95.0 {
                "major"
            } else {
                "critical"
            };
            (tone, format!("{} uptime", percent_label(p)))
        }
    };
    let date_label = date_label(d.date);
    let mut label = format!("{date_label}: {uptime}");
    for o in &outages {
        label.push_str(", ");
        label.push_str(o);
    }
    match incidents.len() {
        0 => {}
        1 => label.push_str(", 1 incident"),
        n => label.push_str(&format!(", {n} incidents")),
    }
    DayView {
        id: format!("bar{bar}-day{k}"),
        tone,
        anchor: if k < len / 3 {
            "start"
        } else if k >= len - len / 3 {
            "end"
        } else {
            "middle"
        },
        date: date_iso(d.date),
        date_label,
        uptime,
        outages,
        incidents,
        label,
    }
}

fn component_view<'a>(
    c: &'a Component,
    page: &PublicPage,
    bars: &mut Bars<'a>,
) -> ComponentView<'a> {
    ComponentView {
        name: &c.name,
        description: c.description.as_deref().filter(|d| !d.trim().is_empty()),
        status: c.status.as_str(),
        tone: status_tone(c.status),
        status_label: c.status.label(),
        private: c.visibility == Visibility::Private,
        bar: page.uptime.get(&c.id).map(|days| bars.bar(c, days)),
    }
}

/// A section of incidents on the page.
struct NewsView<'a> {
    /// Its heading's id is `{id}-title`.
    id: &'static str,
    title: &'static str,
    incidents: Vec<IncidentView<'a>>,
}

/// A component to tick in the subscribe form.
struct SubscribeOption<'a> {
    id: String,
    name: &'a str,
    group: Option<&'a str>,
}

/// The subscribe form: the channels the page takes, and the components.
struct SubscribeForm<'a> {
    email: bool,
    sms: bool,
    webhook: bool,
    /// Whether email is the only channel (its field is then required).
    email_only: bool,
    options: Vec<SubscribeOption<'a>>,
}

#[derive(Template)]
#[template(path = "public/page.html", whitespace = "minimize")]
struct PageTemplate<'a> {
    site: Site<'a>,
    banner_tone: &'static str,
    description: &'static str,
    ungrouped: Vec<ComponentView<'a>>,
    groups: Vec<GroupView<'a>>,
    /// Active incidents, maintenance under way, upcoming maintenance: those
    /// that have any.
    news: Vec<NewsView<'a>>,
    /// `None` when the page takes no subscribers at all.
    subscribe: Option<SubscribeForm<'a>>,
}

/// Renders the page for `audience`. `base_path` is the prefix of the page's
/// own links (`""` on its host, `/status/<slug>` on the platform host).
pub fn render_page(
    page: &PublicPage,
    audience: Audience,
    base_path: &str,
) -> Result<String, askama::Error> {
    let ctx = Ctx::new(page, audience);
    let data = &page.data;
    let status = page_status(data);
    let listed: Vec<&Component> = ctx.visible.iter().copied().filter(|c| shown(c)).collect();
    let (ungrouped, groups) = layout(data, &listed);
    let mut bars = Bars::new(&ctx, &ctx.zone);
    let mut component_view = |c| component_view(c, page, &mut bars);
    let ungrouped = ungrouped.into_iter().map(&mut component_view).collect();
    let groups = groups
        .into_iter()
        .map(|(g, members)| {
            let worst = group_status(members.iter().copied());
            GroupView {
                name: &g.name,
                description: g.description.as_deref().filter(|d| !d.trim().is_empty()),
                tone: status_tone(worst),
                status_label: worst.label(),
                components: members.into_iter().map(&mut component_view).collect(),
            }
        })
        .collect();
    let active = |keep: fn(IncidentStatus) -> bool| {
        data.active_incidents
            .iter()
            .filter(move |(i, _)| keep(i.status))
    };
    let mut upcoming: Vec<&WithUpdates> = active(|s| s == IncidentStatus::Scheduled).collect();
    // Soonest first.
    upcoming.sort_by_key(|(i, _)| (began(i), i.id.as_uuid()));
    let news = [
        (
            "incidents",
            "Active incidents",
            active(|s| !s.is_maintenance()).collect::<Vec<_>>(),
        ),
        (
            "maintenance-active",
            "Maintenance under way",
            active(|s| matches!(s, IncidentStatus::InProgress | IncidentStatus::Verifying))
                .collect(),
        ),
        ("maintenance-upcoming", "Upcoming maintenance", upcoming),
    ]
    .into_iter()
    .filter(|(_, _, list)| !list.is_empty())
    .map(|(id, title, list)| NewsView {
        id,
        title,
        incidents: list.into_iter().map(|pair| ctx.incident(pair)).collect(),
    })
    .collect();
    let (email, sms, webhook) = (
        data.page.allow_email_subscribers,
        data.page.allow_sms_subscribers,
        data.page.allow_webhook_subscribers,
    );
    let subscribe = (email || sms || webhook).then(|| {
        // Subscribers follow public components only, whoever fills the form in.
        let public: Vec<&Component> = data
            .components
            .iter()
            .filter(|c| Audience::Public.sees(c.visibility))
            .collect();
        let (ungrouped, groups) = layout(data, &public);
        let options = ungrouped
            .into_iter()
            .map(|c| (c, None))
            .chain(groups.into_iter().flat_map(|(g, members)| {
                members.into_iter().map(move |c| (c, Some(g.name.as_str())))
            }))
            .map(|(c, group)| SubscribeOption {
                id: c.id.to_string(),
                name: &c.name,
                group,
            })
            .collect();
        SubscribeForm {
            email,
            sms,
            webhook,
            email_only: email && !sms && !webhook,
            options,
        }
    });
    PageTemplate {
        site: Site::new(page, base_path, &ctx.zone),
        banner_tone: impact_tone(status.indicator),
        description: status.description,
        ungrouped,
        groups,
        news,
        subscribe,
    }
    .render()
}

/// A month of the history.
struct MonthView<'a> {
    /// `2026-11`, for `<time datetime>` and the section's id.
    id: String,
    /// "November 2026".
    label: String,
    incidents: Vec<IncidentView<'a>>,
}

/// How many of the most recent months the history always shows, even empty.
const RECENT_MONTHS: usize = 3;

fn month_label(year: i32, month: time::Month) -> String {
    format!("{month} {year}")
}

fn previous_month(year: i32, month: time::Month) -> (i32, time::Month) {
    if month == time::Month::January {
        (year - 1, time::Month::December)
    } else {
        (year, month.previous())
    }
}

#[derive(Template)]
#[template(path = "public/history.html", whitespace = "minimize")]
struct HistoryTemplate<'a> {
    site: Site<'a>,
    months: Vec<MonthView<'a>>,
}

/// The page's incidents and maintenances by month in the page's time zone,
/// newest first; the last [`RECENT_MONTHS`] months are shown even when empty.
pub fn render_history(
    page: &PublicPage,
    audience: Audience,
    base_path: &str,
) -> Result<String, askama::Error> {
    let ctx = Ctx::new(page, audience);
    let mut by_month: BTreeMap<(i32, u8), Vec<&WithUpdates>> = BTreeMap::new();
    let today = local_date(page.as_of, &ctx.zone);
    let mut month = (today.year(), today.month());
    for _ in 0..RECENT_MONTHS {
        by_month.entry((month.0, u8::from(month.1))).or_default();
        month = previous_month(month.0, month.1);
    }
    for pair in &page.data.history {
        let day = local_date(began(&pair.0), &ctx.zone);
        by_month
            .entry((day.year(), u8::from(day.month())))
            .or_default()
            .push(pair);
    }
    let months = by_month
        .into_iter()
        .rev()
        .map(|((year, month), mut items)| {
            items.sort_by_key(|(i, _)| std::cmp::Reverse((began(i), i.id.as_uuid())));
            let month = time::Month::try_from(month).unwrap_or(time::Month::January);
            MonthView {
                id: format!("{year:04}-{:02}", u8::from(month)),
                label: month_label(year, month),
                incidents: items.into_iter().map(|pair| ctx.incident(pair)).collect(),
            }
        })
        .collect();
    HistoryTemplate {
        site: Site::new(page, base_path, &ctx.zone),
        months,
    }
    .render()
}

#[derive(Template)]
#[template(path = "public/incident.html", whitespace = "minimize")]
struct IncidentTemplate<'a> {
    site: Site<'a>,
    incident: IncidentView<'a>,
}

/// One incident's (or maintenance's) page; `None` when the page's data
/// does not hold it.
pub fn render_incident(
    page: &PublicPage,
    audience: Audience,
    base_path: &str,
    id: uuid::Uuid,
) -> Result<Option<String>, askama::Error> {
    let Some(pair) = page
        .data
        .history
        .iter()
        .chain(&page.data.active_incidents)
        .find(|(i, _)| i.id.as_uuid() == id)
    else {
        return Ok(None);
    };
    let ctx = Ctx::new(page, audience);
    IncidentTemplate {
        site: Site::new(page, base_path, &ctx.zone),
        incident: ctx.incident(pair),
    }
    .render()
    .map(Some)
}
