//! `history.rss` and `history.atom`: the page's recent incidents and
//! maintenances, one entry each, its updates as the entry's HTML content.

use askama::Template;
use heliograph_domain::TimeZoneName;
use heliograph_domain::{Incident, IncidentUpdate};
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

use crate::{PublicPage, V2_LIST_LIMIT};

/// An entry's content: its updates, newest first.
#[derive(Template)]
#[template(
    source = "{% for u in updates %}<p><small>{{ u.0 }}</small><br><strong>{{ u.1 }}</strong> - {{ u.2 }}</p>{% endfor %}",
    ext = "html"
)]
struct EntryContent<'a> {
    updates: Vec<(String, &'static str, &'a str)>,
}

/// The incidents a feed carries, newest first: incidents and maintenances
/// together, by when they began.
fn entries(page: &PublicPage) -> Vec<&(Incident, Vec<IncidentUpdate>)> {
    let mut all: Vec<_> = page.data.history.iter().collect();
    all.sort_by_key(|(i, _)| std::cmp::Reverse(began(i)));
    all.truncate(V2_LIST_LIMIT);
    all
}

/// When an incident began: a maintenance by its window.
pub(crate) fn began(i: &Incident) -> OffsetDateTime {
    i.scheduled_for.unwrap_or(i.started_at)
}

/// An entry's content, its times in the page's zone.
fn content(updates: &[IncidentUpdate], zone: &TimeZoneName) -> String {
    EntryContent {
        updates: updates
            .iter()
            .map(|u| {
                (
                    crate::html::time_label(u.display_at, zone),
                    u.status.label(),
                    u.body.as_str(),
                )
            })
            .collect(),
    }
    .render()
    .unwrap_or_default()
}

fn link(page: &PublicPage, i: &Incident) -> String {
    format!("{}/incidents/{}", page.url, i.id)
}

/// When the feed last changed: its newest entry's update, or the page's creation.
fn updated(page: &PublicPage, entries: &[&(Incident, Vec<IncidentUpdate>)]) -> OffsetDateTime {
    entries
        .iter()
        .map(|(i, _)| i.updated_at)
        .max()
        .unwrap_or(page.data.page.created_at)
}

/// `history.rss` (RSS 2.0).
#[must_use]
pub fn rss(page: &PublicPage) -> String {
    let chosen = entries(page);
    let zone = crate::html::page_zone(page);
    let name = &page.data.page.name;
    let channel = rss::Channel {
        title: format!("{name} Status - Incident History"),
        link: page.url.clone(),
        description: format!("Statuspage for {name}"),
        language: Some("en".into()),
        last_build_date: updated(page, &chosen).format(&Rfc2822).ok(),
        items: chosen
            .iter()
            .map(|(i, updates)| rss::Item {
                title: Some(i.name.clone()),
                link: Some(link(page, i)),
                description: Some(content(updates, &zone)),
                pub_date: began(i).format(&Rfc2822).ok(),
                guid: Some(rss::Guid {
                    value: link(page, i),
                    permalink: true,
                }),
                ..rss::Item::default()
            })
            .collect(),
        ..rss::Channel::default()
    };
    channel.to_string()
}

fn atom_time(t: OffsetDateTime) -> atom_syndication::FixedDateTime {
    t.format(&Rfc3339)
        .ok()
        .and_then(|s| atom_syndication::FixedDateTime::parse_from_rfc3339(&s).ok())
        .unwrap_or_default()
}

/// `history.atom` (Atom 1.0).
#[must_use]
pub fn atom(page: &PublicPage) -> String {
    let chosen = entries(page);
    let zone = crate::html::page_zone(page);
    let name = &page.data.page.name;
    let alternate = |href: String| atom_syndication::Link {
        href,
        rel: "alternate".into(),
        mime_type: Some("text/html".into()),
        ..atom_syndication::Link::default()
    };
    let feed = atom_syndication::Feed {
        title: format!("{name} Status - Incident History").into(),
        id: format!("{}/history", page.url),
        updated: atom_time(updated(page, &chosen)),
        links: vec![
            alternate(page.url.clone()),
            atom_syndication::Link {
                href: format!("{}/history.atom", page.url),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..atom_syndication::Link::default()
            },
        ],
        authors: vec![atom_syndication::Person {
            name: name.clone(),
            ..atom_syndication::Person::default()
        }],
        entries: chosen
            .iter()
            .map(|(i, updates)| atom_syndication::Entry {
                title: i.name.clone().into(),
                id: link(page, i),
                updated: atom_time(i.updated_at),
                published: Some(atom_time(began(i))),
                links: vec![alternate(link(page, i))],
                content: Some(atom_syndication::Content {
                    value: Some(content(updates, &zone)),
                    content_type: Some("html".into()),
                    ..atom_syndication::Content::default()
                }),
                ..atom_syndication::Entry::default()
            })
            .collect(),
        ..atom_syndication::Feed::default()
    };
    feed.to_string()
}
