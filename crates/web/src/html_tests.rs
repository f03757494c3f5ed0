//! The public HTML pages: what each audience sees, the uptime bars, times
//! in the page's zone, readable colours, links under the base path, and
//! markup that holds together.

use std::collections::{HashMap, HashSet};

use heliograph_domain::{
    AffectedComponent, Component, ComponentGroup, Incident, IncidentUpdate, Page, PageData,
};
use heliograph_domain::{
    ComponentId, ComponentStatus, Impact, IncidentId, IncidentStatus, IncidentUpdateId, PageId,
    TenantId, TimeZoneName, Visibility,
};
use time::macros::{date, datetime};
use time::{Date, Duration, OffsetDateTime};

use crate::colours::{Rgb, STATUS_COLOURS, Theme, WHITE, contrast};
use crate::{Audience, PublicPage, UptimeDay, render_history, render_incident, render_page};

use crate::tests::id;

const WEBSITE: u128 = 11;
const API: u128 = 12;
const DASHBOARD: u128 = 13;
const BILLING: u128 = 14;
const LEDGER: u128 = 15;
const PLATFORM: u128 = 10;
const INTERNAL: u128 = 20;

const OPEN: u128 = 50;
const SLOW: u128 = 60;
const LATE: u128 = 65;
const AUGUST: u128 = 70;
const DB_UPGRADE: u128 = 80;
const NETWORK: u128 = 85;
const SEPTEMBER_WORK: u128 = 90;

/// What no public output may hold: the private components' names and ids,
/// and the name of the group that holds only private ones.
const PRIVATE_WORDS: [&str; 3] = ["Billing job", "Ledger", "Internal tools"];

fn private_ids() -> [String; 3] {
    [id(BILLING), id(LEDGER), id(INTERNAL)].map(|u| u.to_string())
}

/// [`crate::tests::component`], created earlier (Aug 1): the bars need history.
fn component(
    n: u128,
    name: &str,
    group: Option<u128>,
    status: ComponentStatus,
    visibility: Visibility,
) -> Component {
    Component {
        created_at: datetime!(2026-08-01 09:00 UTC),
        ..crate::tests::component(n, name, group, status, visibility)
    }
}

fn group(n: u128, name: &str) -> ComponentGroup {
    ComponentGroup {
        id: id(n).into(),
        page_id: PageId::from(id(1)),
        name: name.to_owned(),
        description: None,
        position: i32::try_from(n).unwrap(),
        created_at: datetime!(2026-08-01 09:00 UTC),
        updated_at: datetime!(2026-08-01 09:00 UTC),
    }
}

fn incident(n: u128, name: &str, status: IncidentStatus, started_at: OffsetDateTime) -> Incident {
    Incident {
        id: IncidentId::from(id(n)),
        page_id: PageId::from(id(1)),
        kind: heliograph_domain::IncidentKind::of_status(status),
        name: name.to_owned(),
        status,
        impact: if status.is_maintenance() {
            Impact::Maintenance
        } else {
            Impact::Minor
        },
        impact_override: None,
        started_at,
        monitoring_at: None,
        resolved_at: None,
        scheduled_for: None,
        scheduled_until: None,
        scheduled_remind_prior: false,
        scheduled_auto_in_progress: false,
        scheduled_auto_completed: false,
        reminded_at: None,
        backfilled: false,
        metadata: serde_json::json!({}),
        postmortem_body: None,
        postmortem_body_last_updated_at: None,
        postmortem_published_at: None,
        created_at: started_at,
        updated_at: started_at,
        component_ids: vec![],
    }
}

fn update(
    incident: u128,
    n: u128,
    status: IncidentStatus,
    body: &str,
    at: OffsetDateTime,
    affected: Vec<AffectedComponent>,
) -> IncidentUpdate {
    IncidentUpdate {
        id: IncidentUpdateId::from(id(incident * 100 + n)),
        incident_id: IncidentId::from(id(incident)),
        status,
        body: body.to_owned(),
        display_at: at,
        deliver_notifications: true,
        created_at: at,
        updated_at: at,
        affected_components: affected,
    }
}

fn change(n: u128, name: &str, to: ComponentStatus, private: bool) -> AffectedComponent {
    AffectedComponent {
        code: id(n),
        name: name.to_owned(),
        old_status: ComponentStatus::Operational,
        new_status: to,
        private,
    }
}

/// A resolved incident over `span` with one update, when it ended.
fn resolved(
    n: u128,
    name: &str,
    span: (OffsetDateTime, OffsetDateTime),
    components: &[u128],
    body: &str,
) -> (Incident, Vec<IncidentUpdate>) {
    let mut i = incident(n, name, IncidentStatus::Resolved, span.0);
    i.resolved_at = Some(span.1);
    i.component_ids = components.iter().copied().map(|n| id(n).into()).collect();
    let updates = vec![update(n, 1, IncidentStatus::Resolved, body, span.1, vec![])];
    (i, updates)
}

/// A maintenance over `window`, entered a day before, with one update.
fn maintenance(
    n: u128,
    name: &str,
    status: IncidentStatus,
    window: (OffsetDateTime, OffsetDateTime),
    components: &[u128],
    (body, at): (&str, OffsetDateTime),
) -> (Incident, Vec<IncidentUpdate>) {
    let mut i = incident(n, name, status, window.0 - Duration::days(1));
    i.scheduled_for = Some(window.0);
    i.scheduled_until = Some(window.1);
    i.component_ids = components.iter().copied().map(|n| id(n).into()).collect();
    let updates = vec![update(n, 1, status, body, at, vec![])];
    (i, updates)
}

/// The last day of the bars: "today" in New York at [`AS_OF`].
const TODAY: Date = date!(2026 - 11 - 20);
const AS_OF: OffsetDateTime = datetime!(2026-11-20 12:30 UTC);

/// 90 days of a component ending [`TODAY`]: no data for the first
/// `missing` days, 100 % otherwise except where `outages` says.
fn days(missing: usize, outages: &[(Date, f64, i64)]) -> Vec<UptimeDay> {
    (0..90)
        .map(|k| {
            let date = TODAY - Duration::days(89 - i64::try_from(k).unwrap());
            let outage = outages.iter().find(|(d, _, _)| *d == date);
            UptimeDay {
                date,
                percentage: (k >= missing).then(|| outage.map_or(100.0, |o| o.1)),
                major_outage_s: outage.map_or(0, |o| o.2),
                partial_outage_s: 0,
            }
        })
        .collect()
}

/// A page in New York: a public ungrouped component, a group of two public
/// ones, a private ungrouped one, a group of one private one; an open
/// incident touching a public and a private component; a resolved one with
/// a postmortem; older incidents; maintenance under way, upcoming and past.
fn fixture() -> PublicPage {
    let mut open = incident(
        OPEN,
        "Elevated API errors",
        IncidentStatus::Identified,
        datetime!(2026-11-20 12:00 UTC),
    );
    open.impact = Impact::Critical; // derived from the private major outage too
    open.component_ids = vec![id(API).into(), id(BILLING).into()];
    let open_updates = vec![
        update(
            OPEN,
            2,
            IncidentStatus::Identified,
            "A bad deploy.\nRolling back <now>.",
            datetime!(2026-11-20 12:20 UTC),
            vec![
                change(API, "API", ComponentStatus::PartialOutage, false),
                change(BILLING, "Billing job", ComponentStatus::MajorOutage, true),
            ],
        ),
        update(
            OPEN,
            1,
            IncidentStatus::Investigating,
            "Looking into it.",
            datetime!(2026-11-20 12:00 UTC),
            vec![],
        ),
    ];

    let mut slow = incident(
        SLOW,
        "Slow dashboard",
        IncidentStatus::Resolved,
        datetime!(2026-11-18 15:00 UTC),
    );
    slow.component_ids = vec![id(API).into(), id(DASHBOARD).into(), id(LEDGER).into()];
    slow.resolved_at = Some(datetime!(2026-11-18 17:00 UTC));
    slow.postmortem_body = Some("What happened.\n\nWhat we changed.".into());
    slow.postmortem_published_at = Some(datetime!(2026-11-19 10:00 UTC));
    let slow_updates = vec![
        update(
            SLOW,
            2,
            IncidentStatus::Resolved,
            "Fixed.",
            datetime!(2026-11-18 17:00 UTC),
            vec![],
        ),
        update(
            SLOW,
            1,
            IncidentStatus::Investigating,
            "Pages load slowly.",
            datetime!(2026-11-18 15:00 UTC),
            vec![
                change(
                    DASHBOARD,
                    "Dashboard",
                    ComponentStatus::DegradedPerformance,
                    false,
                ),
                change(LEDGER, "Ledger", ComponentStatus::MajorOutage, true),
            ],
        ),
    ];

    // 02:00 UTC on October 1st is still September 30th in New York.
    let late = resolved(
        LATE,
        "Late-night login failures",
        (
            datetime!(2026-10-01 02:00 UTC),
            datetime!(2026-10-01 03:00 UTC),
        ),
        &[WEBSITE],
        "Logins failed for an hour.",
    );
    let mut august = resolved(
        AUGUST,
        "August blip",
        (
            datetime!(2026-08-12 16:00 UTC),
            datetime!(2026-08-12 16:30 UTC),
        ),
        &[],
        "Over.",
    );
    august.0.status = IncidentStatus::Postmortem;
    let db = maintenance(
        DB_UPGRADE,
        "Database upgrade",
        IncidentStatus::InProgress,
        (
            datetime!(2026-11-20 11:00 UTC),
            datetime!(2026-11-20 14:00 UTC),
        ),
        &[DASHBOARD],
        ("Under way.", datetime!(2026-11-20 11:00 UTC)),
    );
    let network = maintenance(
        NETWORK,
        "Network work",
        IncidentStatus::Scheduled,
        (
            datetime!(2026-11-25 03:00 UTC),
            datetime!(2026-11-25 05:00 UTC),
        ),
        &[],
        ("Switches are replaced.", datetime!(2026-11-19 09:00 UTC)),
    );
    let september = maintenance(
        SEPTEMBER_WORK,
        "September cleanup",
        IncidentStatus::Completed,
        (
            datetime!(2026-09-05 12:00 UTC),
            datetime!(2026-09-05 13:00 UTC),
        ),
        &[],
        ("Done.", datetime!(2026-09-05 13:00 UTC)),
    );

    let mut website = component(
        WEBSITE,
        "Website",
        None,
        ComponentStatus::Operational,
        Visibility::Public,
    );
    website.description = Some("Where customers sign in".into());
    let data = PageData {
        page: Page {
            id: PageId::from(id(1)),
            tenant_id: TenantId::from(id(2)),
            slug: heliograph_domain::Slug::parse("slug", "acme").unwrap(),
            name: "Acme <Cloud>".into(),
            time_zone: TimeZoneName::parse("time_zone", "America/New_York").unwrap(),
            headline: Some("Everything about Acme's services".into()),
            support_url: Some("https://help.acme.test/".into()),
            logo_url: Some("https://cdn.acme.test/logo.png".into()),
            brand_color: "#1f6feb".into(),
            background_color: "#ffffff".into(),
            text_color: "#1f2328".into(),
            allow_email_subscribers: true,
            allow_sms_subscribers: false,
            allow_webhook_subscribers: false,
            sms_calling_code: None,
            sms_allowed_calling_codes: Vec::new(),
            uptime_partial_weight: 0.3,
            created_at: datetime!(2026-08-01 09:00 UTC),
            updated_at: datetime!(2026-08-01 09:00 UTC),
        },
        groups: vec![
            group(PLATFORM, "Platform"),
            group(INTERNAL, "Internal tools"),
        ],
        components: vec![
            website,
            component(
                API,
                "API",
                Some(PLATFORM),
                ComponentStatus::PartialOutage,
                Visibility::Public,
            ),
            component(
                DASHBOARD,
                "Dashboard",
                Some(PLATFORM),
                ComponentStatus::UnderMaintenance,
                Visibility::Public,
            ),
            component(
                BILLING,
                "Billing job",
                None,
                ComponentStatus::MajorOutage,
                Visibility::Private,
            ),
            component(
                LEDGER,
                "Ledger",
                Some(INTERNAL),
                ComponentStatus::Operational,
                Visibility::Private,
            ),
        ],
        active_incidents: vec![
            (open.clone(), open_updates.clone()),
            db.clone(),
            network.clone(),
        ],
        history: vec![
            (open, open_updates),
            (slow, slow_updates),
            late,
            august,
            network,
            db,
            september,
        ],
    };
    let uptime = HashMap::from([
        (ComponentId::from(id(WEBSITE)), days(30, &[])),
        (
            ComponentId::from(id(API)),
            days(0, &[(date!(2026 - 11 - 18), 98.5, 1200)]),
        ),
        (ComponentId::from(id(DASHBOARD)), days(0, &[])),
        (
            ComponentId::from(id(BILLING)),
            days(0, &[(TODAY, 50.0, 1800)]),
        ),
        (ComponentId::from(id(LEDGER)), days(0, &[])),
    ]);
    PublicPage {
        data,
        url: "https://acme.status.test".into(),
        uptime,
        as_of: AS_OF,
    }
}

/// [`fixture`] with its bars cut to their last four days, so that the
/// snapshots stay short enough to read (the bars have tests of their own).
fn short_bars() -> PublicPage {
    let mut page = fixture();
    for days in page.uptime.values_mut() {
        days.drain(..days.len() - 4);
    }
    page
}

/// Every HTML document of the fixture for `audience` under `base`.
fn documents(page: &PublicPage, audience: Audience, base: &str) -> Vec<(String, String)> {
    let mut docs = vec![
        (
            "page".to_owned(),
            render_page(page, audience, base).unwrap(),
        ),
        (
            "history".to_owned(),
            render_history(page, audience, base).unwrap(),
        ),
    ];
    for n in [
        OPEN,
        SLOW,
        LATE,
        AUGUST,
        DB_UPGRADE,
        NETWORK,
        SEPTEMBER_WORK,
    ] {
        let html = render_incident(page, audience, base, id(n))
            .unwrap()
            .unwrap();
        docs.push((format!("incident {n}"), html));
    }
    docs
}

// --- a small reader of our own markup -------------------------------------

/// Elements that have no end tag.
const VOID: [&str; 8] = ["br", "img", "input", "meta", "link", "hr", "source", "wbr"];

/// One start or end tag of a document.
#[derive(Debug)]
struct Tag {
    name: String,
    end: bool,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The tags of a document as askama writes it (attribute values always
/// double-quoted, text escaped), skipping the stylesheet's text.
fn tags(html: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if rest.starts_with('!') {
            rest = &rest[rest.find('>').unwrap() + 1..];
            continue;
        }
        let close = rest.find('>').expect("every tag is closed");
        let inner = rest[..close].trim_end_matches('/');
        rest = &rest[close + 1..];
        let end = inner.starts_with('/');
        let inner = inner.trim_start_matches('/');
        let name_len = inner
            .find(|c: char| c.is_whitespace())
            .unwrap_or(inner.len());
        let name = inner[..name_len].to_ascii_lowercase();
        let mut attrs = Vec::new();
        let mut a = inner[name_len..].trim();
        while !a.is_empty() {
            let key_len = a
                .find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(a.len());
            let key = a[..key_len].to_owned();
            a = a[key_len..].trim_start();
            if let Some(v) = a.strip_prefix("=\"") {
                let q = v.find('"').expect("attribute values are quoted");
                attrs.push((key, v[..q].to_owned()));
                a = v[q + 1..].trim_start();
            } else {
                attrs.push((key, String::new()));
            }
        }
        if name == "style" && !end {
            rest = &rest[rest.find("</style>").expect("the stylesheet ends")..];
        }
        out.push(Tag { name, end, attrs });
    }
    out
}

/// Checks that every element is closed in order, ids are unique, and every
/// id an attribute points at exists.
fn assert_well_formed(what: &str, html: &str) {
    assert!(html.starts_with("<!doctype html>"), "{what}: no doctype");
    let tags = tags(html);
    let mut open: Vec<&str> = Vec::new();
    let mut ids = HashSet::new();
    for t in &tags {
        if t.end {
            let top = open.pop();
            assert_eq!(
                top,
                Some(t.name.as_str()),
                "{what}: </{}> closes {top:?}",
                t.name
            );
        } else {
            if !VOID.contains(&t.name.as_str()) {
                open.push(&t.name);
            }
            if let Some(id) = t.attr("id") {
                assert!(ids.insert(id.to_owned()), "{what}: duplicate id {id}");
            }
        }
    }
    assert!(open.is_empty(), "{what}: left open: {open:?}");
    for t in &tags {
        for attr in ["for", "aria-describedby", "aria-labelledby"] {
            if let Some(target) = t.attr(attr) {
                assert!(
                    ids.contains(target),
                    "{what}: {attr}={target} names no element"
                );
            }
        }
        if let Some(href) = t.attr("href").filter(|h| h.starts_with('#')) {
            assert!(ids.contains(&href[1..]), "{what}: {href} names no element");
        }
    }
    let h: Vec<u8> = tags
        .iter()
        .filter(|t| !t.end && t.name.len() == 2 && t.name.starts_with('h'))
        .filter_map(|t| t.name[1..].parse().ok())
        .collect();
    assert_eq!(h.first(), Some(&1), "{what}: starts with h1");
    assert_eq!(h.iter().filter(|l| **l == 1).count(), 1, "{what}: one h1");
    for pair in h.windows(2) {
        assert!(pair[1] <= pair[0] + 1, "{what}: heading levels skip: {h:?}");
    }
}

/// The text of the element with `id`, tags and all.
fn element_by_id<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id}"));
    let start = html[..at].rfind('<').unwrap();
    let end = html[at..].find("</div>").unwrap() + at;
    &html[start..end]
}

/// The uptime days of the bar whose list is labelled `name`.
fn bar<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let start = html
        .find(&format!("aria-label=\"{name}: uptime per day\""))
        .unwrap_or_else(|| panic!("no bar for {name}"));
    let end = html[start..].find("</ol>").unwrap() + start;
    html[start..end].split("<li class=\"day ").skip(1).collect()
}

// --- snapshots --------------------------------------------------------------

#[test]
fn the_page_matches_its_snapshot() {
    insta::assert_snapshot!(render_page(&short_bars(), Audience::Public, "/status/acme").unwrap());
}

#[test]
fn the_members_page_matches_its_snapshot() {
    insta::assert_snapshot!(render_page(&short_bars(), Audience::Members, "").unwrap());
}

#[test]
fn the_history_matches_its_snapshot() {
    insta::assert_snapshot!(render_history(&fixture(), Audience::Public, "/status/acme").unwrap());
}

#[test]
fn an_incident_page_matches_its_snapshot() {
    insta::assert_snapshot!(
        render_incident(&fixture(), Audience::Public, "/status/acme", id(SLOW))
            .unwrap()
            .unwrap()
    );
}

#[test]
fn a_maintenance_page_matches_its_snapshot() {
    insta::assert_snapshot!(
        render_incident(&fixture(), Audience::Public, "", id(DB_UPGRADE))
            .unwrap()
            .unwrap()
    );
}

// --- audiences ----------------------------------------------------------------

#[test]
fn private_components_leave_no_trace_in_any_public_html() {
    let page = fixture();
    for base in ["", "/status/acme"] {
        for (what, html) in documents(&page, Audience::Public, base) {
            for word in PRIVATE_WORDS
                .iter()
                .map(ToString::to_string)
                .chain(private_ids())
            {
                assert!(!html.contains(&word), "{what} shows {word:?} to the public");
            }
            assert!(!html.contains("Private"), "{what} marks something private");
        }
    }
    // The open incident's impact is what its public component went through,
    // not the private major outage.
    let html = render_page(&page, Audience::Public, "").unwrap();
    assert!(html.contains(">Major impact</span>"));
    assert!(!html.contains("Critical impact"));
}

#[test]
fn members_see_private_components_marked_private() {
    let page = fixture();
    let html = render_page(&page, Audience::Members, "/status/acme").unwrap();
    for name in ["Billing job", "Ledger"] {
        assert!(
            html.contains(&format!(
                "<span class=\"name\">{name} <span class=\"tag\">Private</span></span>"
            )),
            "{name}"
        );
    }
    // The group of private components is there, with the worst of them.
    assert!(html.contains("<span class=\"name\">Internal tools</span>"));
    // Their bars too.
    assert_eq!(bar(&html, "Billing job").len(), 90);
    // The members' view of the open incident keeps its stored impact.
    assert!(html.contains(">Critical impact</span>"));
    // Subscribers follow public components only, whoever fills the form in.
    let form = &html[html.find("<form").unwrap()..html.find("</form>").unwrap()];
    assert!(!form.contains("Billing job") && !form.contains(&id(BILLING).to_string()));

    let incident = render_incident(&page, Audience::Members, "", id(OPEN))
        .unwrap()
        .unwrap();
    assert!(incident.contains("<li>Billing job <span class=\"tag\">Private</span></li>"));
    assert!(incident.contains(
        "<li>Billing job <span class=\"tag\">Private</span>: Operational → Major Outage</li>"
    ));
}

#[test]
fn the_public_incident_page_names_only_public_components() {
    let html = render_incident(&fixture(), Audience::Public, "", id(SLOW))
        .unwrap()
        .unwrap();
    let affected = &html[html.find("id=\"affected-title\"").unwrap()..];
    let affected = &affected[..affected.find("</section>").unwrap()];
    assert!(affected.contains("<li>API</li>") && affected.contains("<li>Dashboard</li>"));
    assert!(html.contains("<li>Dashboard: Operational → Degraded Performance</li>"));
    assert!(!html.contains("Ledger"));
}

#[test]
fn an_unknown_incident_is_none() {
    assert_eq!(
        render_incident(&fixture(), Audience::Public, "", id(999)).unwrap(),
        None
    );
}

#[test]
fn components_hidden_from_the_page_stay_hidden() {
    let mut page = fixture();
    // Shown only when degraded, and operational: not listed.
    page.data.components[0].only_show_if_degraded = true;
    // Not showcased: not listed.
    page.data.components[2].showcase = false;
    let html = render_page(&page, Audience::Public, "").unwrap();
    assert!(!html.contains("<span class=\"name\">Website"));
    assert!(!html.contains("<span class=\"name\">Dashboard"));
    assert!(html.contains("<span class=\"name\">API</span>"));
    // Degraded, it shows.
    page.data.components[0].status = ComponentStatus::DegradedPerformance;
    let html = render_page(&page, Audience::Public, "").unwrap();
    assert!(html.contains("<span class=\"name\">Website</span>"));
}

#[test]
fn groups_are_collapsible_and_show_their_worst_status() {
    let html = render_page(&fixture(), Audience::Public, "").unwrap();
    assert!(html.contains(
        "<details open>\n<summary><span class=\"row\"><span class=\"name\">Platform</span> \
         <span class=\"pill tone-major\">Partial Outage</span></span></summary>"
    ));
    // Statuses are words, not colours alone.
    assert!(html.contains("data-status=\"under_maintenance\">Under Maintenance</span>"));
}

// --- the uptime bar -------------------------------------------------------------

#[test]
fn every_day_of_an_uptime_bar_is_focusable_and_tells_its_facts() {
    let html = render_page(&fixture(), Audience::Public, "").unwrap();
    let api = bar(&html, "API");
    assert_eq!(api.len(), 90);
    assert!(api.iter().all(|d| d.contains("tabindex=\"0\"")
        && d.contains("aria-describedby=\"")
        && d.contains("role=\"tooltip\"")));

    // November 18th: the outage, and the incident that touched the API that day.
    let day = api
        .iter()
        .find(|d| d.contains("datetime=\"2026-11-18\""))
        .unwrap();
    assert!(day.starts_with("tone-major"), "{day}");
    for fact in [
        "Nov 18, 2026",
        "98.50 % uptime",
        "Major outage 20 min",
        "<li>Slow dashboard</li>",
    ] {
        assert!(day.contains(fact), "{fact}: {day}");
    }
    assert!(
        day.contains(
            "aria-label=\"Nov 18, 2026: 98.50 % uptime, Major outage 20 min, 1 incident\""
        )
    );
    // The day before knew no incident; today has the open one (still open
    // at the snapshot, so it counts up to then).
    let before = api
        .iter()
        .find(|d| d.contains("datetime=\"2026-11-17\""))
        .unwrap();
    assert!(before.starts_with("tone-ok") && !before.contains("<ul>"));
    assert!(before.contains("100.00 % uptime"));
    let today = api.last().unwrap();
    assert!(
        today.contains("datetime=\"2026-11-20\"") && today.contains("<li>Elevated API errors</li>")
    );

    // Before the component existed: no data, in neutral.
    let website = bar(&html, "Website");
    assert!(website[0].starts_with("tone-none") && website[0].contains("<span>No data</span>"));
    assert!(website[0].contains("aria-label=\"Aug 23, 2026: No data\""));

    // A summary for the bar, which the list points at.
    assert!(html.contains(">99.98 % uptime over the last 90 days</span>"));
    assert!(html.contains(">100.00 % uptime over the last 90 days</span>"));
}

#[test]
fn a_day_counts_an_incident_by_the_pages_calendar_not_utcs() {
    let mut page = fixture();
    // 03:00 UTC on the 19th is the 18th, 22:00, in New York.
    let slow = &mut page.data.history[1].0;
    slow.started_at = datetime!(2026-11-19 03:00 UTC);
    slow.resolved_at = Some(datetime!(2026-11-19 04:00 UTC));
    let html = render_page(&page, Audience::Public, "").unwrap();
    let api = bar(&html, "API");
    let day = |d: &str| {
        *api.iter()
            .find(|day| day.contains(&format!("datetime=\"{d}\"")))
            .unwrap()
    };
    assert!(day("2026-11-18").contains("Slow dashboard"));
    assert!(!day("2026-11-19").contains("Slow dashboard"));
}

// --- times ----------------------------------------------------------------------

#[test]
fn times_are_shown_in_the_pages_zone_and_given_to_machines_in_utc() {
    let page = fixture();
    let html = render_page(&page, Audience::Public, "").unwrap();
    assert!(
        html.contains("<time datetime=\"2026-11-20T12:20:00.000Z\">Nov 20, 2026, 07:20 EST</time>")
    );
    assert!(html.contains("Times are shown in America/New_York."));
    // Summer time in the summer.
    let august = render_incident(&page, Audience::Public, "", id(AUGUST))
        .unwrap()
        .unwrap();
    assert!(august.contains(">Aug 12, 2026, 12:30 EDT</time>"));
    // The feeds too.
    assert!(crate::rss(&page).contains("Nov 20, 2026, 07:20 EST"));
}

#[test]
fn a_time_label_carries_the_zones_abbreviation_or_its_offset() {
    let at = datetime!(2026-11-20 12:00 UTC);
    let zone = |name| TimeZoneName::parse("time_zone", name).unwrap();
    assert_eq!(
        crate::html::time_label(at, &TimeZoneName::utc()),
        "Nov 20, 2026, 12:00 UTC"
    );
    assert_eq!(
        crate::html::time_label(at, &zone("Europe/Berlin")),
        "Nov 20, 2026, 13:00 CET"
    );
    assert_eq!(
        crate::html::time_label(at, &zone("Asia/Kolkata")),
        "Nov 20, 2026, 17:30 IST"
    );
    // The database has only "-03" for São Paulo.
    assert_eq!(
        crate::html::time_label(at, &zone("America/Sao_Paulo")),
        "Nov 20, 2026, 09:00 UTC-03:00"
    );
    assert_eq!(
        crate::html::time_label(at, &zone("Asia/Kathmandu")),
        "Nov 20, 2026, 17:45 UTC+05:45"
    );
}

#[test]
fn an_unknown_zone_falls_back_to_utc() {
    let mut page = fixture();
    page.data.page.time_zone = TimeZoneName::stored("Mars/Olympus_Mons");
    let html = render_page(&page, Audience::Public, "").unwrap();
    assert!(html.contains(">Nov 20, 2026, 12:20 UTC</time>"));
}

// --- history --------------------------------------------------------------------

#[test]
fn the_history_is_grouped_by_month_in_the_pages_zone_newest_first() {
    let html = render_history(&fixture(), Audience::Public, "").unwrap();
    let months: Vec<&str> = html
        .split("<h2 id=\"month-")
        .skip(1)
        .map(|s| &s[..7])
        .collect();
    assert_eq!(months, ["2026-11", "2026-10", "2026-09", "2026-08"]);
    let section = |m: &str| {
        let start = html.find(&format!("<h2 id=\"month-{m}\"")).unwrap();
        let end = html[start..].find("</section>").unwrap() + start;
        &html[start..end]
    };
    // A recent month with nothing in it says so.
    assert!(section("2026-10").contains("No incidents reported."));
    // 02:00 UTC on October 1st is September in New York.
    assert!(section("2026-09").contains("Late-night login failures"));
    assert!(section("2026-09").contains("September cleanup"));
    // Newest first within a month: the upcoming maintenance of the 25th, the
    // open incident, the maintenance of the 20th, the incident of the 18th.
    let november = section("2026-11");
    let order: Vec<usize> = [
        "Network work",
        "Elevated API errors",
        "Database upgrade",
        "Slow dashboard",
    ]
    .iter()
    .map(|name| november.find(name).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    // Each entry: impact, final status, its updates folded away.
    assert!(
        november
            .contains("<span class=\"pill tone-minor\">Minor impact</span> <span>Resolved</span>")
    );
    assert!(november.contains("<details>\n<summary>2 updates</summary>"));
    // Months older than three months ago appear only with something in them.
    assert!(!html.contains("July 2026"));
    assert!(section("2026-08").contains("August blip"));
}

// --- colours --------------------------------------------------------------------

#[test]
fn tenant_colours_that_do_not_read_fall_back_to_ones_that_do() {
    let hex = |s| Rgb::parse(s).unwrap();
    // Light grey text and yellow links on white.
    let theme = Theme::new("#ffffff", "#eeeeee", "#ffff00");
    let light = &theme.light;
    assert_eq!(light.bg, WHITE);
    assert_ne!(light.fg, hex("#eeeeee"));
    assert_ne!(light.accent, hex("#ffff00"));
    // A pair that reads is kept as the tenant set it.
    let kept = Theme::new("#ffffff", "#1f2328", "#0969da");
    assert_eq!(
        (kept.light.fg, kept.light.accent),
        (hex("#1f2328"), hex("#0969da"))
    );
    // A dark page keeps its own colours in dark mode too.
    assert_eq!(Theme::new("#101010", "#f0f0f0", "#58a6ff").dark, None);

    for theme in [
        theme.clone(),
        kept,
        Theme::new("#777777", "#888888", "#777777"),
        Theme::new("#000000", "#000000", "#000000"),
        Theme::new("#101010", "#303030", "#1f6feb"),
        Theme::new("not a colour", "#zzzzzz", ""),
    ] {
        for p in std::iter::once(&theme.light).chain(theme.dark.as_ref()) {
            for (what, fg, bg) in [
                ("text", p.fg, p.bg),
                ("secondary text", p.muted, p.bg),
                ("links", p.accent, p.bg),
                ("the button", p.on_accent, p.accent),
            ] {
                assert!(
                    contrast(fg, bg) >= 4.5,
                    "{what}: {fg} on {bg} is {:.2}:1 in {theme:?}",
                    contrast(fg, bg)
                );
            }
        }
    }
    // Statuses are white on fixed colours.
    for (tone, colour) in STATUS_COLOURS {
        assert!(contrast(WHITE, colour) >= 4.5, "{tone}");
    }

    // The page carries the fallback, not the tenant's unreadable colour.
    let mut page = fixture();
    page.data.page.text_color = "#eeeeee".into();
    let html = render_page(&page, Audience::Public, "").unwrap();
    assert!(!html.contains("--fg: #eeeeee"));
    assert!(html.contains(&format!("--fg: {};", light.fg)));
}

#[test]
fn contrast_is_wcags() {
    let hex = |s| Rgb::parse(s).unwrap();
    assert!((contrast(hex("#000000"), hex("#ffffff")) - 21.0).abs() < 1e-9);
    assert!((contrast(hex("#777777"), hex("#777777")) - 1.0).abs() < 1e-9);
    // WebAIM's checker: #767676 on white is 4.54:1.
    assert!((contrast(hex("#767676"), WHITE) - 4.54).abs() < 0.01);
    assert_eq!(Rgb::parse("#GGGGGG"), None);
    assert_eq!(Rgb::parse("1f2328"), None);
    assert_eq!(hex("#1F2328").to_string(), "#1f2328");
}

// --- links, branding, markup ------------------------------------------------------

#[test]
fn every_link_to_the_pages_own_documents_starts_with_the_base_path() {
    let page = fixture();
    for base in ["", "/status/acme"] {
        for audience in [Audience::Public, Audience::Members] {
            for (what, html) in documents(&page, audience, base) {
                let mut own = 0;
                for t in tags(&html) {
                    for attr in ["href", "action", "src"] {
                        let Some(url) = t.attr(attr) else { continue };
                        if url.starts_with('#')
                            || url == "https://help.acme.test/"
                            || url == "https://cdn.acme.test/logo.png"
                        {
                            continue;
                        }
                        own += 1;
                        assert!(
                            url.starts_with(&format!("{base}/")),
                            "{what} under {base:?}: {attr}={url}"
                        );
                    }
                }
                assert!(own >= 8, "{what}: {own} links");
                for path in [
                    "/history\"",
                    "/history.rss\"",
                    "/history.atom\"",
                    "/api/v2/summary.json\"",
                ] {
                    assert!(
                        html.contains(&format!("href=\"{base}{path}")),
                        "{what}: {path}"
                    );
                }
            }
            let html = render_page(&page, audience, base).unwrap();
            assert!(html.contains(&format!("action=\"{base}/subscriptions\"")));
            assert!(html.contains(&format!("href=\"{base}/incidents/{}\"", id(OPEN))));
        }
    }
}

#[test]
fn the_markup_is_well_formed_with_unique_ids_and_ordered_headings() {
    let page = fixture();
    for audience in [Audience::Public, Audience::Members] {
        for (what, html) in documents(&page, audience, "/status/acme") {
            assert_well_formed(&format!("{what} ({audience:?})"), &html);
        }
    }
}

#[test]
fn the_page_carries_the_tenants_branding_and_needs_no_one_elses_assets() {
    let page = fixture();
    let html = render_page(&page, Audience::Public, "").unwrap();
    // Escaped, never markup.
    assert!(html.contains("<title>Acme &#60;Cloud&#62; Status</title>"));
    assert!(
        html.contains("<img src=\"https://cdn.acme.test/logo.png\" alt=\"Acme &#60;Cloud&#62;\"")
    );
    assert!(html.contains("<p class=\"headline\">Everything about Acme&#39;s services</p>"));
    assert!(html.contains("<a href=\"https://help.acme.test/\" rel=\"noopener\">Support</a>"));
    assert!(html.contains("--accent: #1f6feb;"));
    assert!(html.contains("Powered by Heliograph"));
    // Landmarks, a skip link, and nothing to load but the logo.
    for needle in [
        "<html lang=\"en\">",
        "<a class=\"skip\" href=\"#main\">",
        "<header class=\"site\">",
        "<main id=\"main\"",
        "<footer class=\"site\">",
        "role=\"status\"",
        "prefers-color-scheme: dark",
        "prefers-reduced-motion",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    assert!(!html.contains("<script"));
    let remote: Vec<String> = tags(&html)
        .iter()
        .filter_map(|t| t.attr("src").map(str::to_owned))
        .collect();
    assert_eq!(remote, ["https://cdn.acme.test/logo.png"]);

    // Without a logo the name stands in; without a support URL no link.
    let mut page = fixture();
    page.data.page.logo_url = None;
    page.data.page.support_url = Some("javascript:alert(1)".into());
    let html = render_page(&page, Audience::Public, "").unwrap();
    assert!(html.contains("<a class=\"brand\" href=\"/\">Acme &#60;Cloud&#62;</a>"));
    assert!(!html.contains("<img") && !html.contains("javascript:"));
}

#[test]
fn the_subscribe_form_lists_public_components_when_email_subscribers_are_allowed() {
    let mut page = fixture();
    let html = render_page(&page, Audience::Public, "").unwrap();
    let form = &html[html.find("<form").unwrap()..html.find("</form>").unwrap()];
    assert!(form.contains("<label for=\"subscribe-email\">Email address</label>"));
    assert!(
        form.contains("type=\"email\" id=\"subscribe-email\" name=\"subscriber[email]\" required")
    );
    let values: Vec<String> = tags(form)
        .iter()
        .filter(|t| t.attr("type") == Some("checkbox"))
        .map(|t| t.attr("value").unwrap().to_owned())
        .collect();
    assert_eq!(
        values,
        [id(WEBSITE), id(API), id(DASHBOARD)].map(|u| u.to_string())
    );
    page.data.page.allow_email_subscribers = false;
    let html = render_page(&page, Audience::Public, "").unwrap();
    assert!(!html.contains("<form"));
}

#[test]
fn the_subscribe_form_offers_each_channel_the_page_takes() {
    let mut page = fixture();
    let form_of = |page: &PublicPage| {
        let html = render_page(page, Audience::Public, "").unwrap();
        html.find("<form").map(|start| {
            let end = html[start..].find("</form>").unwrap() + start;
            (html[start..end].to_owned(), html.clone())
        })
    };
    let (email_only, html) = form_of(&page).unwrap();
    assert!(html.contains(">Get updates by email</h2>"));
    assert!(email_only.contains("name=\"subscriber[email]\" required"));
    assert!(!email_only.contains("subscriber[phone_number]"));
    assert!(!email_only.contains("subscriber[endpoint]"));

    page.data.page.allow_sms_subscribers = true;
    page.data.page.allow_webhook_subscribers = true;
    let (all, html) = form_of(&page).unwrap();
    assert!(html.contains(">Get updates</h2>"));
    assert!(
        !all.contains("required"),
        "any one of the channels will do: {all}"
    );
    assert!(all.contains("type=\"tel\" id=\"subscribe-phone\" name=\"subscriber[phone_number]\""));
    assert!(all.contains("type=\"url\" id=\"subscribe-endpoint\" name=\"subscriber[endpoint]\""));
    let kinds: Vec<String> = tags(&all)
        .iter()
        .filter(|t| t.name == "option" && !t.end)
        .map(|t| t.attr("value").unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["webhook", "slack", "teams"]);

    page.data.page.allow_email_subscribers = false;
    page.data.page.allow_webhook_subscribers = false;
    let (sms_only, _) = form_of(&page).unwrap();
    assert!(!sms_only.contains("subscriber[email]"));
    assert!(sms_only.contains("Mobile number, for text messages"));
    page.data.page.allow_sms_subscribers = false;
    assert!(form_of(&page).is_none(), "no channel, no form");
}

#[test]
fn active_incidents_and_maintenance_show_with_their_updates_and_windows() {
    let html = render_page(&fixture(), Audience::Public, "").unwrap();
    let section = |title: &str| {
        let start = html.find(&format!(">{title}</h2>")).unwrap();
        let end = html[start..].find("</section>").unwrap() + start;
        &html[start..end]
    };
    let incidents = section("Active incidents");
    assert!(incidents.contains("Elevated API errors"));
    // Every update, line breaks kept, text escaped.
    assert!(incidents.contains("A bad deploy.<br/>Rolling back &#60;now&#62;."));
    assert!(incidents.contains("Looking into it."));
    let under_way = section("Maintenance under way");
    assert!(under_way.contains("Database upgrade"));
    assert!(under_way.contains(
        "Scheduled from <time datetime=\"2026-11-20T11:00:00.000Z\">Nov 20, 2026, 06:00 EST</time> \
         until <time datetime=\"2026-11-20T14:00:00.000Z\">Nov 20, 2026, 09:00 EST</time>"
    ));
    let upcoming = section("Upcoming maintenance");
    assert!(upcoming.contains("Network work") && !upcoming.contains("Database upgrade"));
    // Resolved incidents are history, not news.
    assert!(!incidents.contains("Slow dashboard"));
}

#[test]
fn a_published_postmortem_is_shown_and_a_draft_is_not() {
    let mut page = fixture();
    let html = render_incident(&page, Audience::Public, "", id(SLOW))
        .unwrap()
        .unwrap();
    assert!(html.contains("<h2 id=\"postmortem-title\">Postmortem</h2>"));
    assert!(html.contains("What happened.<br/><br/>What we changed."));
    page.data.history[1].0.postmortem_published_at = None;
    let html = render_incident(&page, Audience::Public, "", id(SLOW))
        .unwrap()
        .unwrap();
    assert!(!html.contains("Postmortem") && !html.contains("What happened."));
}

#[test]
fn a_tooltip_holds_what_its_label_says() {
    let html = render_page(&fixture(), Audience::Public, "").unwrap();
    let tip = element_by_id(&html, "bar2-day87");
    assert!(tip.contains("Nov 18, 2026") && tip.contains("Slow dashboard"));
}
