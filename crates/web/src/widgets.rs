//! What a tenant puts on its own site: the SVG badge, and the embeddable
//! widget (a small HTML page meant for an iframe, and a script that adds
//! that iframe where it is included). Public components only.

use askama::Template;
use heliograph_domain::Impact;

use crate::{PublicPage, page_status};

/// The indicator's colour on the badge and the widget.
const fn colour(indicator: Impact) -> &'static str {
    match indicator {
        Impact::None => "#1a7f37",
        Impact::Minor => "#9a6700",
        Impact::Major => "#bc4c00",
        Impact::Critical => "#cf222e",
        Impact::Maintenance => "#0969da",
    }
}

/// Width in pixels of `text` in 11px Verdana, near enough for a badge
/// (shields.io's approach without its font tables).
fn text_width(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 4,
            'm' | 'w' | 'M' | 'W' => 10,
            c if c.is_ascii_uppercase() => 8,
            _ => 7,
        })
        .sum()
}

#[derive(Template)]
#[template(
    source = r##"<svg xmlns="http://www.w3.org/2000/svg" width="{{ width }}" height="20" role="img" aria-label="{{ label }}: {{ text }}"><title>{{ label }}: {{ text }}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{{ width }}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{{ left }}" height="20" fill="#555"/><rect x="{{ left }}" width="{{ right }}" height="20" fill="{{ colour }}"/><rect width="{{ width }}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11"><text x="{{ left_mid }}" y="14">{{ label }}</text><text x="{{ right_mid }}" y="14">{{ text }}</text></g></svg>"##,
    ext = "xml"
)]
struct Badge<'a> {
    label: &'a str,
    text: &'a str,
    colour: &'static str,
    width: usize,
    left: usize,
    right: usize,
    left_mid: usize,
    right_mid: usize,
}

/// `badge.svg`: "status | All Systems Operational", coloured by indicator.
#[must_use]
pub fn badge(page: &PublicPage) -> String {
    let status = page_status(&page.data);
    let label = "status";
    let left = text_width(label) + 12;
    let right = text_width(status.description) + 12;
    Badge {
        label,
        text: status.description,
        colour: colour(status.indicator),
        width: left + right,
        left,
        right,
        left_mid: left / 2,
        right_mid: left + right / 2,
    }
    .render()
    .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "public/embed.html")]
struct Embed<'a> {
    name: &'a str,
    url: &'a str,
    indicator: &'static str,
    description: &'static str,
    colour: &'static str,
    incidents: Vec<&'a str>,
}

/// `embed`: the widget's iframe content (public components only).
pub fn embed(page: &PublicPage) -> Result<String, askama::Error> {
    let status = page_status(&page.data);
    Embed {
        name: &page.data.page.name,
        url: &page.url,
        indicator: status.indicator.as_str(),
        description: status.description,
        colour: colour(status.indicator),
        incidents: page
            .data
            .active_incidents
            .iter()
            .filter(|(i, _)| i.status.is_unresolved())
            .map(|(i, _)| i.name.as_str())
            .take(3)
            .collect(),
    }
    .render()
}

#[derive(Template)]
#[template(path = "public/embed.js", escape = "none")]
struct EmbedScript {
    /// A JSON string literal (quoted and escaped), safe inside the script.
    src: String,
}

/// `embed.js`: `<script src="…/embed.js" async></script>` on the tenant's
/// site puts the widget's iframe where the script tag is.
#[must_use]
pub fn embed_script(page: &PublicPage) -> String {
    EmbedScript {
        src: serde_json::to_string(&format!("{}/embed", page.url)).unwrap_or_default(),
    }
    .render()
    .unwrap_or_default()
}
