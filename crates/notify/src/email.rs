//! Email: rendering and SMTP delivery.
//!
//! Not here: who receives what, and whether a failed send is tried again (the
//! worker decides that from the [`SendError`] this module answers).

use askama::Template;
use heliograph_domain::{
    ComponentStatus, EmailAddress, Impact, IncidentStatus, impact_tone, incident_tone, tone_hex,
};
use lettre::message::{Mailbox, MultiPart, header};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

/// The accent when a page's brand colour is not a `#rrggbb` colour.
const DEFAULT_BRAND: &str = "#0969da";

/// One line of the affected-components list.
#[derive(Debug, Clone)]
pub struct ComponentLine {
    /// Component name.
    pub name: String,
    /// Its status, in words.
    pub status_label: &'static str,
    /// The fixed colour its status is shown in on the page (`#rrggbb`).
    pub colour: String,
}

impl ComponentLine {
    /// A line for a component in `status`.
    #[must_use]
    pub fn new(name: impl Into<String>, status: ComponentStatus) -> Self {
        Self {
            name: name.into(),
            status_label: status.label(),
            colour: tone_hex(impact_tone(status.impact())),
        }
    }
}

/// The email sent to a subscriber when an incident or maintenance is opened
/// or updated.
#[derive(Debug, Clone)]
pub struct IncidentEmail {
    /// The status page's name.
    pub page_name: String,
    /// The status page's public URL.
    pub page_url: String,
    /// The incident's own public page.
    pub incident_url: String,
    /// The page's logo (shown only when it is `https`).
    pub logo_url: Option<String>,
    /// The page's brand colour (`#rrggbb`; anything else gives the default).
    pub brand_color: String,
    /// The incident's title.
    pub incident_name: String,
    /// The incident's status as of this update.
    pub status: IncidentStatus,
    /// Its impact, as the public page gives it (the status pill's colour
    /// while it is open).
    pub impact: Impact,
    /// The update's message.
    pub body: String,
    /// Components the update changed.
    pub components: Vec<ComponentLine>,
    /// The subscriber's own signed unsubscribe link (one click, RFC 8058).
    pub unsubscribe_url: String,
}

/// What both incident templates show.
struct IncidentView<'a> {
    page_name: &'a str,
    page_url: &'a str,
    incident_url: &'a str,
    logo_url: Option<&'a str>,
    brand: &'a str,
    incident_name: &'a str,
    what: &'static str,
    status_label: &'a str,
    status_colour: String,
    body: &'a str,
    components: &'a [ComponentLine],
    unsubscribe_url: &'a str,
}

#[derive(Template)]
#[template(path = "emails/incident.txt")]
struct IncidentText<'a> {
    v: &'a IncidentView<'a>,
}

#[derive(Template)]
#[template(path = "emails/incident.html")]
struct IncidentHtml<'a> {
    v: &'a IncidentView<'a>,
}

/// `colour` if it is `#rrggbb` (so nothing else reaches a style attribute).
fn hex_colour(colour: &str) -> Option<&str> {
    let hex = colour.strip_prefix('#')?;
    (hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(colour)
}

/// A rendered email, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
    /// A one-click unsubscribe URL: sent as `List-Unsubscribe` with
    /// `List-Unsubscribe-Post` (RFC 8058), so mail clients offer the button.
    pub unsubscribe: Option<String>,
}

impl IncidentEmail {
    /// Renders subject, text and HTML.
    pub fn render(&self) -> Result<EmailMessage, askama::Error> {
        let status_label = self.status.label();
        let v = IncidentView {
            page_name: &self.page_name,
            page_url: &self.page_url,
            incident_url: &self.incident_url,
            logo_url: self
                .logo_url
                .as_deref()
                .filter(|u| u.starts_with("https://")),
            brand: hex_colour(&self.brand_color).unwrap_or(DEFAULT_BRAND),
            incident_name: &self.incident_name,
            what: if self.status.is_maintenance() {
                "maintenance"
            } else {
                "incident"
            },
            status_label,
            status_colour: tone_hex(incident_tone(self.status, self.impact)),
            body: &self.body,
            components: &self.components,
            unsubscribe_url: &self.unsubscribe_url,
        };
        let text = IncidentText { v: &v }.render()?;
        let html = IncidentHtml { v: &v }.render()?;
        Ok(EmailMessage {
            subject: format!(
                "[{}] {}: {}",
                self.page_name, status_label, self.incident_name
            ),
            text,
            html,
            unsubscribe: Some(self.unsubscribe_url.clone()),
        })
    }
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server refused for good (5xx, bad address): do not retry.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Anything that may succeed later (4xx, connection, timeout).
    #[error("transient: {0}")]
    Transient(String),
    /// The recipient told the provider to send them nothing more (a text
    /// answered STOP): never send again.
    #[error("unsubscribed: {0}")]
    Unsubscribed(String),
}

impl SendError {
    /// The error with anything that looks like an email address masked, for
    /// logs (SMTP servers quote the recipient in their refusals).
    #[must_use]
    pub fn redacted(&self) -> String {
        self.to_string()
            .split_whitespace()
            .map(|word| {
                if word.contains('@') {
                    "<address>"
                } else {
                    word
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether a retry may succeed.
    #[must_use]
    pub const fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// Sends email through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    message_id_domain: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for an `smtp://` or `smtps://` URL (credentials may be in the URL),
    /// sending from `from`. Message-IDs use the domain of `from`.
    pub fn new(smtp_url: &str, from: Mailbox) -> Result<Self, lettre::transport::smtp::Error> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)?
            .timeout(Some(std::time::Duration::from_secs(15)))
            .build();
        let message_id_domain = from.email.domain().to_owned();
        Ok(Self {
            transport,
            from,
            message_id_domain,
        })
    }

    /// Sends `message` to `to`. The Message-ID derives from `delivery` (the
    /// id of what is sent), so a re-send carries the same one and mail
    /// clients can collapse it.
    pub async fn send(
        &self,
        delivery: Uuid,
        to: &EmailAddress,
        message: &EmailMessage,
    ) -> Result<(), SendError> {
        let email = self.message(delivery, to, message)?;
        self.transport.send(email).await.map(drop).map_err(|e| {
            if e.is_permanent() {
                SendError::Permanent(e.to_string())
            } else {
                SendError::Transient(e.to_string())
            }
        })
    }

    /// The message [`Mailer::send`] sends: headers (Message-ID from
    /// `delivery`, one-click unsubscribe, `Auto-Submitted`) and the text and
    /// HTML parts. Public for the benchmark, which sends the very same bytes
    /// without the pipeline.
    pub fn message(
        &self,
        delivery: Uuid,
        to: &EmailAddress,
        message: &EmailMessage,
    ) -> Result<Message, SendError> {
        let to: Mailbox = to
            .as_str()
            .parse()
            .map_err(|e: lettre::address::AddressError| SendError::Permanent(e.to_string()))?;
        let mut builder = Message::builder();
        if let Some(url) = &message.unsubscribe {
            builder = builder
                .raw_header(header::HeaderValue::new(
                    header::HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(header::HeaderValue::new(
                    header::HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        builder
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .message_id(Some(format!("<{delivery}@{}>", self.message_id_domain)))
            .raw_header(header::HeaderValue::new(
                header::HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IncidentEmail {
        IncidentEmail {
            page_name: "Acme".into(),
            page_url: "https://status.acme.test/".into(),
            incident_url: "https://status.acme.test/incidents/42".into(),
            logo_url: Some("https://cdn.acme.test/logo.png".into()),
            brand_color: "#6f42c1".into(),
            incident_name: "Elevated <errors>".into(),
            status: IncidentStatus::Investigating,
            impact: Impact::Major,
            body: "We are looking into it.".into(),
            components: vec![
                ComponentLine::new("API", ComponentStatus::PartialOutage),
                ComponentLine::new("Dashboard", ComponentStatus::Operational),
            ],
            unsubscribe_url: "https://status.acme.test/unsubscribe?token=t".into(),
        }
    }

    #[test]
    fn incident_email_names_page_status_and_incident() {
        let m = sample().render().unwrap();
        assert_eq!(m.subject, "[Acme] Investigating: Elevated <errors>");
        assert!(m.text.contains("We are looking into it."));
        assert!(m.text.contains("  - API: Partial Outage"));
        assert!(m.text.contains("https://status.acme.test/"));
        assert!(
            m.text
                .contains("Unsubscribe: https://status.acme.test/unsubscribe?token=t")
        );
        assert!(
            m.html
                .contains("href=\"https://status.acme.test/unsubscribe?token=t\"")
        );
        assert_eq!(
            m.unsubscribe.as_deref(),
            Some("https://status.acme.test/unsubscribe?token=t")
        );
    }

    #[test]
    fn redacted_errors_hide_addresses() {
        let e =
            SendError::Permanent("550 5.1.1 <jane@example.com>: Recipient address rejected".into());
        assert_eq!(
            e.redacted(),
            "permanent: 550 5.1.1 <address> Recipient address rejected"
        );
    }

    #[test]
    fn incident_email_matches_its_snapshots() {
        let m = sample().render().unwrap();
        insta::assert_snapshot!("incident_text", m.text);
        insta::assert_snapshot!("incident_html", m.html);
    }

    #[test]
    fn incident_email_html_escapes_tenant_text() {
        let m = sample().render().unwrap();
        assert!(
            m.html.contains("Elevated &#60;errors&#62;")
                || m.html.contains("Elevated &lt;errors&gt;")
        );
        assert!(!m.html.contains("<errors>"));
    }

    #[test]
    fn incident_email_shows_states_in_the_page_colours_and_links_to_the_incident() {
        let m = sample().render().unwrap();
        let link = m
            .html
            .split("<a ")
            .find(|a| a.contains(">View this incident</a>"))
            .unwrap();
        assert!(link.starts_with("href=\"https://status.acme.test/incidents/42\""));
        assert!(
            m.text
                .contains("View this incident: https://status.acme.test/incidents/42")
        );
        // The pill: the open incident's impact, white on the fixed colour.
        let status = tone_hex(impact_tone(Impact::Major));
        assert!(
            m.html
                .contains(&format!("background: {status}; color: #ffffff"))
        );
        for (name, state) in [
            ("API", ComponentStatus::PartialOutage),
            ("Dashboard", ComponentStatus::Operational),
        ] {
            let colour = tone_hex(impact_tone(state.impact()));
            let row = m.html.split("<tr>").find(|r| r.contains(name)).unwrap();
            assert!(row.contains(&format!("background: {colour};")), "{row}");
            assert!(row.contains(state.label()), "{row}");
        }
        assert!(
            m.html
                .contains("<img src=\"https://cdn.acme.test/logo.png\" alt=\"Acme\"")
        );
        assert!(m.html.contains("border-top: 4px solid #6f42c1"));
    }

    #[test]
    fn a_closed_incident_is_green_and_a_maintenance_says_so() {
        let mut e = sample();
        e.status = IncidentStatus::Completed;
        e.impact = Impact::Maintenance;
        let m = e.render().unwrap();
        assert!(m.html.contains(&format!("background: {};", tone_hex("ok"))));
        assert!(m.html.contains(">View this maintenance</a>"));
    }

    #[test]
    fn only_https_logos_and_hex_brand_colours_reach_the_html() {
        let mut e = sample();
        e.logo_url = Some("http://cdn.acme.test/logo.png".into());
        e.brand_color = "red; background: url(x)".into();
        let m = e.render().unwrap();
        assert!(!m.html.contains("<img"));
        assert!(!m.html.contains("url(x)"));
        assert!(
            m.html
                .contains(&format!("border-top: 4px solid {DEFAULT_BRAND}"))
        );
    }
}
