//! What each channel says: the JSON of webhooks (Statuspage's envelope,
//! built from the same typed shapes as the public v2 documents,
//! `heliograph_domain::statuspage`), Slack and Microsoft Teams messages, and
//! the text of SMS.
//!
//! The inputs are plain structs that the worker fills from the store, so this
//! module knows nothing of the database; they must hold public components
//! only (the worker asks the domain's visibility rules which, as the public
//! page does).
//!
//! Every function is pure: times come in as arguments and are never read from
//! the clock, so a retried delivery sends the same bytes (and the same
//! signature) and the snapshots are stable.
//!
//! Tenant text (names, update bodies) is escaped where the format gives it a
//! meaning: Slack's `<…>` control sequences (`<!channel>` would ping a whole
//! channel). Teams text is shown as Markdown, which is the tenant's own
//! formatting, and JSON encoding is serde's.
//!
//! The file is long because every channel's wording sits side by side, so
//! that a change to what one channel says is seen against the others.

use heliograph_domain::statuspage;
use heliograph_domain::{ComponentStatus, EventKind, Impact, IncidentStatus};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// The status page a notice comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageInfo {
    /// The page's id.
    pub id: Uuid,
    /// The page's name.
    pub name: String,
    /// The page's public URL, without a trailing slash.
    pub url: String,
    /// The page's overall indicator now (`none` … `critical`, `maintenance`).
    pub status_indicator: Impact,
    /// The sentence for it ("Partial System Outage"; `PageStatus::description`).
    pub status_description: String,
    /// The page's logo, shown in its emails.
    pub logo_url: Option<String>,
    /// The page's brand colour (`#rrggbb`), the accent of its emails.
    pub brand_color: String,
}

/// A component, as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// The component's id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its status now.
    pub status: ComponentStatus,
    /// Its public description.
    pub description: Option<String>,
    /// Its place on the page.
    pub position: i32,
    /// The group it belongs to.
    pub group_id: Option<Uuid>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// One component's change within an incident update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffectedComponent {
    /// The component's id (Statuspage calls it `code`).
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its status before the update, when known.
    pub old_status: Option<ComponentStatus>,
    /// Its status after the update.
    pub new_status: ComponentStatus,
}

/// One update posted on an incident or maintenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateInfo {
    /// The update's id.
    pub id: Uuid,
    /// The incident's status as of this update.
    pub status: IncidentStatus,
    /// The message.
    pub body: String,
    /// When it was posted.
    pub created_at: OffsetDateTime,
    /// When it was last edited.
    pub updated_at: OffsetDateTime,
    /// The time shown for it (may be backdated).
    pub display_at: OffsetDateTime,
    /// The components it changed.
    pub affected_components: Vec<AffectedComponent>,
}

/// An incident or a scheduled maintenance, with its updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentInfo {
    /// The incident's id.
    pub id: Uuid,
    /// Its title.
    pub name: String,
    /// Its status now.
    pub status: IncidentStatus,
    /// Its impact.
    pub impact: Impact,
    /// Its public URL.
    pub shortlink: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// When the trouble began.
    pub started_at: OffsetDateTime,
    /// When it entered `monitoring`.
    pub monitoring_at: Option<OffsetDateTime>,
    /// When it was resolved (or the maintenance completed).
    pub resolved_at: Option<OffsetDateTime>,
    /// A maintenance's planned start.
    pub scheduled_for: Option<OffsetDateTime>,
    /// A maintenance's planned end.
    pub scheduled_until: Option<OffsetDateTime>,
    /// Its updates, newest first (as Statuspage lists them): the first one is
    /// what the notice announces.
    pub updates: Vec<UpdateInfo>,
    /// The components it concerns, with their current status.
    pub components: Vec<ComponentInfo>,
}

/// A component's status change outside any incident update's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentChange {
    /// The component, with its status now.
    pub component: ComponentInfo,
    /// Its status before.
    pub old_status: ComponentStatus,
    /// Its status after.
    pub new_status: ComponentStatus,
    /// When it changed.
    pub at: OffsetDateTime,
    /// The change's own id (Statuspage's `component_update.id`).
    pub change_id: Uuid,
}

/// What a notification announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An incident or maintenance event.
    Incident {
        /// Which event (`incident.created`, `maintenance.started`, …).
        kind: EventKind,
        /// The incident as it is after the event.
        incident: IncidentInfo,
    },
    /// A component changed status.
    Component(ComponentChange),
    /// A test message that a subscriber or the team asked for, to see that
    /// the channel works.
    Ping,
}

impl Notice {
    /// The event's wire name: an [`EventKind`] string, or `ping`.
    #[must_use]
    pub const fn event(&self) -> &'static str {
        match self {
            Self::Incident { kind, .. } => kind.as_str(),
            Self::Component(_) => EventKind::ComponentUpdated.as_str(),
            Self::Ping => "ping",
        }
    }
}

/// The webhook envelope's `meta` fields besides the event name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookMeta<'a> {
    /// The subscriber's own signed unsubscribe link.
    pub unsubscribe_url: &'a str,
    /// Where the payload is documented.
    pub documentation_url: &'a str,
    /// When the notification was made. Pass the event's creation time rather
    /// than the clock, so every attempt of one delivery carries the same body.
    pub generated_at: OffsetDateTime,
}

/// The longest SMS, in characters: two GSM-7 segments (153 each) leave a
/// little room for the provider's own additions.
pub const SMS_MAX_CHARS: usize = 300;

/// The most of an update body a Slack section carries (Slack refuses a
/// section text longer than 3000 characters).
const SLACK_BODY_MAX: usize = 2800;
/// Slack refuses a header longer than 150 characters.
const SLACK_HEADER_MAX: usize = 150;
/// Teams refuses cards larger than about 28 KB; an update body is kept well under.
const TEAMS_BODY_MAX: usize = 8000;
/// A page name inside a short message's `[…]` prefix.
const PREFIX_NAME_MAX: usize = 40;

// ---------------------------------------------------------------- webhook

/// The JSON body of a webhook, in Statuspage's envelope:
///
/// - `meta`: `unsubscribe`, `documentation`, and two fields of ours,
///   `generated_at` and `event` (`incident.created`, `component.updated`,
///   `ping`, …);
/// - `page`: `id`, `status_indicator`, `status_description` as on Statuspage,
///   plus `name` and `url`;
/// - then `incident` (Statuspage's incident object with `incident_updates`,
///   newest first, each with `affected_components`, and `components`), or
///   `component_update` and `component`, or — for a test — `ping` with a
///   `message`.
#[must_use]
pub fn webhook_body(page: &PageInfo, notice: &Notice, meta: &WebhookMeta<'_>) -> Value {
    let event = match notice {
        Notice::Incident { incident, .. } => statuspage::WebhookEvent::Incident {
            incident: incident_object(page, incident),
        },
        Notice::Component(change) => statuspage::WebhookEvent::Component {
            component_update: statuspage::ComponentUpdate {
                id: change.change_id,
                component_id: change.component.id,
                created_at: change.at,
                old_status: change.old_status,
                new_status: change.new_status,
            },
            component: component_object(page, &change.component),
        },
        Notice::Ping => statuspage::WebhookEvent::Ping {
            ping: statuspage::Ping {
                message: format!(
                    "This is a test notification from {}: webhooks from this status page reach this URL.",
                    page.name
                ),
            },
        },
    };
    let body = statuspage::WebhookBody {
        meta: statuspage::WebhookMeta {
            unsubscribe: meta.unsubscribe_url.to_owned(),
            documentation: meta.documentation_url.to_owned(),
            generated_at: meta.generated_at,
            event: notice.event().to_owned(),
        },
        page: statuspage::WebhookPage {
            id: page.id,
            name: page.name.clone(),
            url: page.url.clone(),
            status_indicator: page.status_indicator,
            status_description: page.status_description.clone(),
        },
        event,
    };
    serde_json::to_value(body)
        .expect("strings, numbers and enumerations under string keys always make a JSON value")
}

/// A component as webhooks carry it: without the page's display settings.
fn component_object(page: &PageInfo, c: &ComponentInfo) -> statuspage::Component {
    statuspage::Component {
        id: c.id,
        name: c.name.clone(),
        status: c.status,
        created_at: c.created_at,
        updated_at: c.updated_at,
        position: c.position,
        description: c.description.clone(),
        showcase: None,
        start_date: None,
        group_id: c.group_id,
        page_id: page.id,
        group: false,
        only_show_if_degraded: None,
        components: None,
    }
}

fn incident_object(page: &PageInfo, i: &IncidentInfo) -> statuspage::Incident {
    statuspage::Incident {
        id: i.id,
        name: i.name.clone(),
        status: i.status,
        impact: i.impact,
        created_at: i.created_at,
        updated_at: i.updated_at,
        started_at: i.started_at,
        monitoring_at: i.monitoring_at,
        resolved_at: i.resolved_at,
        shortlink: i.shortlink.clone(),
        page_id: page.id,
        incident_updates: i
            .updates
            .iter()
            .map(|u| statuspage::IncidentUpdate {
                id: u.id,
                incident_id: i.id,
                status: u.status,
                body: u.body.clone(),
                created_at: u.created_at,
                updated_at: u.updated_at,
                display_at: u.display_at,
                affected_components: u
                    .affected_components
                    .iter()
                    .map(|a| statuspage::AffectedComponent {
                        code: a.id,
                        name: a.name.clone(),
                        old_status: a.old_status,
                        new_status: a.new_status,
                    })
                    .collect(),
                deliver_notifications: None,
            })
            .collect(),
        components: i
            .components
            .iter()
            .map(|c| component_object(page, c))
            .collect(),
        // Maintenance windows only on maintenances, as in the v2 API.
        scheduled_for: i.scheduled_for,
        scheduled_until: i.scheduled_until,
    }
}

// ---------------------------------------------------------------- Slack

/// A Slack incoming-webhook message: `text` (the notification and fallback
/// line) and `blocks` — a header, the status and update, the affected
/// components, and a context line linking the page and the unsubscribe URL.
/// Times use Slack's `<!date^…>` so each reader sees their own time zone.
#[must_use]
pub fn slack_body(page: &PageInfo, notice: &Notice, unsubscribe_url: &str) -> Value {
    let footer = json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            "text": format!(
                "<{}|{} status page> · <{}|Unsubscribe>",
                page.url,
                slack_escape(&page.name),
                unsubscribe_url
            ),
        }],
    });
    let (text, header, mut blocks) = match notice {
        Notice::Incident { kind, incident } => slack_incident(page, *kind, incident),
        Notice::Component(change) => slack_component(page, change),
        Notice::Ping => (
            format!("[{}] Test notification", prefix_name(&page.name)),
            "Test notification".to_owned(),
            vec![mrkdwn_section(&format!(
                "This is a test notification from *<{}|{}>*: notifications from this status page reach this channel.",
                page.url,
                slack_escape(&page.name)
            ))],
        ),
    };
    blocks.insert(
        0,
        json!({
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(&header, SLACK_HEADER_MAX), "emoji": true},
        }),
    );
    blocks.push(footer);
    json!({ "text": slack_escape(&text), "blocks": blocks })
}

fn slack_incident(
    page: &PageInfo,
    kind: EventKind,
    incident: &IncidentInfo,
) -> (String, String, Vec<Value>) {
    let latest = incident.updates.first();
    let status = incident.status.label();
    let mut lines = format!(
        "*{status}* · {} · <{}|View {}>",
        event_label(kind),
        incident.shortlink,
        if incident.status.is_maintenance() {
            "maintenance"
        } else {
            "incident"
        }
    );
    if let Some(update) = latest {
        lines.push_str(&format!(
            "\n{} at {}",
            if incident.status.is_maintenance() {
                "Posted"
            } else {
                "Updated"
            },
            slack_date(update.display_at)
        ));
        if !update.body.trim().is_empty() {
            lines.push_str("\n\n");
            lines.push_str(&slack_escape(&truncate(update.body.trim(), SLACK_BODY_MAX)));
        }
    }
    let mut blocks = vec![mrkdwn_section(&lines)];
    if let Some(from) = maintenance_window_start(incident) {
        let until = incident
            .scheduled_until
            .map(|t| format!(" until {}", slack_date(t)))
            .unwrap_or_default();
        blocks.push(mrkdwn_section(&format!(
            "*Scheduled:* {}{until}",
            slack_date(from)
        )));
    }
    let affected = latest.map_or(&[][..], |u| &u.affected_components[..]);
    if !affected.is_empty() {
        let list: Vec<String> = affected
            .iter()
            .map(|a| format!("• {}: {}", slack_escape(&a.name), change_words(a)))
            .collect();
        blocks.push(mrkdwn_section(&format!(
            "*Affected components*\n{}",
            list.join("\n")
        )));
    }
    let text = format!("[{}] {status}: {}", prefix_name(&page.name), incident.name);
    (text, incident.name.clone(), blocks)
}

fn slack_component(page: &PageInfo, change: &ComponentChange) -> (String, String, Vec<Value>) {
    let name = &change.component.name;
    let new = change.new_status.label();
    let old = change.old_status.label();
    let blocks = vec![mrkdwn_section(&format!(
        "*{}* is now *{new}* (was {old}) since {}.",
        slack_escape(name),
        slack_date(change.at)
    ))];
    let text = format!("[{}] {name}: {new} (was {old})", prefix_name(&page.name));
    (text, format!("{name}: {new}"), blocks)
}

fn mrkdwn_section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// Slack gives `&`, `<` and `>` a meaning (links, mentions); the rest of its
/// markup is the tenant's own formatting.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A time Slack shows in the reader's own time zone, with UTC as fallback.
fn slack_date(t: OffsetDateTime) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
        t.unix_timestamp(),
        utc_words(t)
    )
}

// ---------------------------------------------------------------- Teams

/// A Microsoft Teams message (incoming webhook or a Workflows "post to a
/// channel" trigger): one Adaptive Card 1.4 with the page name, the title,
/// the status (coloured by severity), the update, the affected components as
/// facts, an unsubscribe line, and buttons to the incident and the page.
/// Times use the card's `{{DATE()}}`/`{{TIME()}}` so each reader sees their
/// own time zone.
#[must_use]
pub fn teams_body(page: &PageInfo, notice: &Notice, unsubscribe_url: &str) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": page.name,
        "size": "Small",
        "isSubtle": true,
        "wrap": true,
    })];
    let mut actions = Vec::new();
    match notice {
        Notice::Incident { kind, incident } => {
            teams_incident(&mut body, *kind, incident);
            actions.push(open_url(
                if incident.status.is_maintenance() {
                    "View maintenance"
                } else {
                    "View incident"
                },
                &incident.shortlink,
            ));
        }
        Notice::Component(change) => {
            body.push(title_block(&format!(
                "{}: {}",
                change.component.name,
                change.new_status.label()
            )));
            body.push(json!({
                "type": "TextBlock",
                "text": format!(
                    "{} is now **{}** (was {}) since {}.",
                    change.component.name,
                    change.new_status.label(),
                    change.old_status.label(),
                    teams_date(change.at)
                ),
                "color": component_colour(change.new_status),
                "wrap": true,
            }));
        }
        Notice::Ping => {
            body.push(title_block("Test notification"));
            body.push(json!({
                "type": "TextBlock",
                "text": format!(
                    "This is a test notification from {}: notifications from this status page reach this channel.",
                    page.name
                ),
                "wrap": true,
            }));
        }
    }
    body.push(json!({
        "type": "TextBlock",
        "text": format!(
            "You receive this because this channel subscribed to {}. [Unsubscribe]({unsubscribe_url})",
            page.name
        ),
        "size": "Small",
        "isSubtle": true,
        "wrap": true,
        "spacing": "Large",
    }));
    actions.push(open_url("View status page", &page.url));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
                "actions": actions,
            },
        }],
    })
}

fn teams_incident(body: &mut Vec<Value>, kind: EventKind, incident: &IncidentInfo) {
    let latest = incident.updates.first();
    body.push(title_block(&incident.name));
    body.push(json!({
        "type": "TextBlock",
        "text": format!("**{}** · {}", incident.status.label(), event_label(kind)),
        "color": incident_colour(incident),
        "wrap": true,
        "spacing": "Small",
    }));
    if let Some(update) = latest
        && !update.body.trim().is_empty()
    {
        body.push(json!({
            "type": "TextBlock",
            "text": truncate(update.body.trim(), TEAMS_BODY_MAX),
            "wrap": true,
        }));
    }
    let mut facts = Vec::new();
    if let Some(from) = maintenance_window_start(incident) {
        facts.push(json!({"title": "Starts", "value": teams_date(from)}));
        if let Some(until) = incident.scheduled_until {
            facts.push(json!({"title": "Ends", "value": teams_date(until)}));
        }
    }
    for a in latest.map_or(&[][..], |u| &u.affected_components[..]) {
        facts.push(json!({"title": a.name, "value": change_words(a)}));
    }
    if let Some(update) = latest {
        facts.push(json!({
            "title": if incident.status.is_maintenance() { "Posted" } else { "Updated" },
            "value": teams_date(update.display_at),
        }));
    }
    body.push(json!({"type": "FactSet", "facts": facts}));
}

fn title_block(text: &str) -> Value {
    json!({
        "type": "TextBlock",
        "text": text,
        "size": "Large",
        "weight": "Bolder",
        "wrap": true,
        "spacing": "None",
    })
}

fn open_url(title: &str, url: &str) -> Value {
    json!({"type": "Action.OpenUrl", "title": title, "url": url})
}

/// A time the card shows in the reader's own time zone.
fn teams_date(t: OffsetDateTime) -> String {
    let at = rfc3339_seconds(t);
    format!("{{{{DATE({at}, SHORT)}}}} {{{{TIME({at})}}}}")
}

/// The colour of an incident's status line: good once it is over, accent
/// for maintenance, then by impact.
const fn incident_colour(incident: &IncidentInfo) -> &'static str {
    match incident.status {
        IncidentStatus::Resolved | IncidentStatus::Postmortem | IncidentStatus::Completed => "Good",
        IncidentStatus::Scheduled | IncidentStatus::InProgress | IncidentStatus::Verifying => {
            "Accent"
        }
        _ => match incident.impact {
            Impact::Critical | Impact::Major => "Attention",
            Impact::Minor => "Warning",
            Impact::Maintenance => "Accent",
            Impact::None => "Default",
        },
    }
}

const fn component_colour(status: ComponentStatus) -> &'static str {
    match status {
        ComponentStatus::Operational => "Good",
        ComponentStatus::DegradedPerformance => "Warning",
        ComponentStatus::PartialOutage | ComponentStatus::MajorOutage => "Attention",
        ComponentStatus::UnderMaintenance => "Accent",
    }
}

// ---------------------------------------------------------------- SMS

/// One text message for a notice, at most [`SMS_MAX_CHARS`] characters:
/// `[Page] Status: Title. Latest update. <link> Reply STOP to unsubscribe.`
/// Only the middle is shortened (with `...`, on a character boundary), so the
/// link and the opt-out always survive. Our own words stay in the GSM-7
/// alphabet (`...`, `-`), so they alone never push a message into the
/// costlier UCS-2 encoding.
#[must_use]
pub fn sms_text(page_name: &str, notice: &Notice, short_url: &str) -> String {
    let prefix = format!("[{}]", prefix_name(page_name));
    let head = match notice {
        Notice::Incident { incident, .. } => {
            let mut head = format!("{prefix} {}: {}", incident.status.label(), incident.name);
            if let Some(from) = maintenance_window_start(incident) {
                head.push_str(&format!(
                    " ({})",
                    window_words(from, incident.scheduled_until)
                ));
            }
            head.push('.');
            if let Some(update) = incident.updates.first() {
                let body = one_line(&update.body);
                if !body.is_empty() {
                    head.push(' ');
                    head.push_str(&body);
                }
            }
            head
        }
        Notice::Component(change) => format!(
            "{prefix} {}: {} (was {}).",
            change.component.name,
            change.new_status.label(),
            change.old_status.label()
        ),
        Notice::Ping => {
            format!(
                "{prefix} Test message: SMS notifications from this status page reach this number."
            )
        }
    };
    let tail = if short_url.is_empty() {
        " Reply STOP to unsubscribe.".to_owned()
    } else {
        format!(" {short_url} Reply STOP to unsubscribe.")
    };
    fit_sms(&head, &tail)
}

/// The text carrying an SMS subscription's confirmation code.
#[must_use]
pub fn sms_confirmation_text(page_name: &str, code: &str) -> String {
    fit_sms(
        &format!(
            "[{}] Your code to confirm SMS status updates is {code}.",
            prefix_name(page_name)
        ),
        " If you did not ask for it, ignore this message.",
    )
}

/// `head` shortened so that `head + tail` fits in an SMS; if even `tail` is
/// too long (an absurd link), the whole is cut.
fn fit_sms(head: &str, tail: &str) -> String {
    let tail_len = tail.chars().count();
    if tail_len + 10 > SMS_MAX_CHARS {
        return truncate(&format!("{head}{tail}"), SMS_MAX_CHARS);
    }
    format!("{}{tail}", truncate(head, SMS_MAX_CHARS - tail_len))
}

/// Newlines and runs of spaces become one space: a text message is one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------- shared

/// At most `max` characters of `s`; when cut, the last three are `...`.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let kept: String = s.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", kept.trim_end())
}

/// A page name short enough for a `[…]` prefix.
fn prefix_name(name: &str) -> String {
    truncate(name, PREFIX_NAME_MAX)
}

const fn event_label(kind: EventKind) -> &'static str {
    match kind {
        EventKind::IncidentCreated => "New incident",
        EventKind::IncidentUpdated => "Incident update",
        EventKind::IncidentResolved => "Incident resolved",
        EventKind::MaintenanceScheduled => "Maintenance scheduled",
        EventKind::MaintenanceReminder => "Maintenance reminder",
        EventKind::MaintenanceStarted => "Maintenance started",
        EventKind::MaintenanceUpdated => "Maintenance update",
        EventKind::MaintenanceCompleted => "Maintenance completed",
        EventKind::ComponentUpdated => "Component update",
        EventKind::SubscriptionConfirmation => "Confirm your subscription",
        EventKind::SubscriptionPing => "Test message",
        EventKind::DeliveriesRedriven => "Redelivery",
    }
}

/// "Operational → Partial Outage", or just the new status when the old one is unknown.
fn change_words(a: &AffectedComponent) -> String {
    match a.old_status {
        Some(old) if old != a.new_status => {
            format!("{} → {}", old.label(), a.new_status.label())
        }
        _ => a.new_status.label().to_owned(),
    }
}

/// A maintenance's start, when the notice should show its window: only
/// before it is over.
fn maintenance_window_start(incident: &IncidentInfo) -> Option<OffsetDateTime> {
    matches!(
        incident.status,
        IncidentStatus::Scheduled | IncidentStatus::InProgress | IncidentStatus::Verifying
    )
    .then_some(incident.scheduled_for)
    .flatten()
}

/// RFC 3339 in UTC to the second: the form Adaptive Cards' `DATE()` reads.
fn rfc3339_seconds(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

/// "22 Nov 2026 06:00 UTC".
fn utc_words(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[day padding:none] [month repr:short] [year] [hour]:[minute] UTC"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

/// "22 Nov 2026 06:00-08:00 UTC", or both dates when the window spans days.
fn window_words(from: OffsetDateTime, until: Option<OffsetDateTime>) -> String {
    const TIME: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[hour]:[minute]");
    let from = from.to_offset(time::UtcOffset::UTC);
    match until.map(|t| t.to_offset(time::UtcOffset::UTC)) {
        Some(until) if until.date() == from.date() => {
            let start = utc_words(from);
            let end = until.format(TIME).unwrap_or_default();
            start.replacen(" UTC", &format!("-{end} UTC"), 1)
        }
        Some(until) => format!("{} - {}", utc_words(from), utc_words(until)),
        None => utc_words(from),
    }
}

/// A body serialized once for many recipients, cut wherever a slot (a
/// marker no escaping changes) stood: [`Spliced::with`] puts one
/// recipient's value in every place, for the cost of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spliced(Vec<Vec<u8>>);

impl Spliced {
    /// `whole` cut at every `slot`.
    #[must_use]
    pub fn new(whole: &[u8], slot: &str) -> Self {
        let slot = slot.as_bytes();
        let mut pieces = Vec::new();
        let mut rest = whole;
        while let Some(at) = rest.windows(slot.len()).position(|w| w == slot) {
            pieces.push(rest[..at].to_vec());
            rest = &rest[at + slot.len()..];
        }
        pieces.push(rest.to_vec());
        Self(pieces)
    }

    /// The body with `value` in every slot.
    #[must_use]
    pub fn with(&self, value: &[u8]) -> Vec<u8> {
        let size = self.0.iter().map(Vec::len).sum::<usize>() + value.len() * (self.0.len() - 1);
        let mut out = Vec::with_capacity(size);
        for (i, piece) in self.0.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(value);
            }
            out.extend_from_slice(piece);
        }
        out
    }
}

#[cfg(test)]
mod tests;
