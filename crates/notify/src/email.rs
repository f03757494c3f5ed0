//! Email: rendering and SMTP delivery.
//!
//! Not here: who receives what, and whether a failed send is tried again (the
//! worker decides that from the [`SendError`] this module answers).

use askama::Template;
use heliograph_domain::{
    ComponentStatus, EmailAddress, Impact, IncidentStatus, impact_tone, incident_tone, tone_hex,
};
use std::sync::Arc;

use lettre::message::{Mailbox, Mailboxes, MultiPart, header};
use lettre::{Address, Message};
use uuid::Uuid;

use crate::smtp::{SmtpPool, SmtpSettings, SmtpUrlError};

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
#[derive(Debug, Clone, thiserror::Error)]
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

/// What stands for each recipient's own unsubscribe link in an email
/// rendered once for many ([`Mailer::prepare`]): letters and digits only,
/// so that no template escaping changes it.
pub const UNSUBSCRIBE_SLOT: &str = "hgUnsubscribeSlot7c1e0f";

/// An email rendered once for every recipient of an event, in the form it
/// goes on the wire: what every copy shares is encoded once, and what
/// differs (the recipient, the Message-ID, the unsubscribe link) is put in
/// per copy by [`Mailer::personal`], which costs a few hundred bytes of
/// copying instead of rendering two templates and encoding two bodies.
///
/// The bodies are quoted-printable. Where a recipient's link goes, each
/// piece ends with a soft line break (`=` CRLF), so that the link starts a
/// line of its own and is encoded on its own; a decoder joins the pieces
/// back into the text as rendered.
#[derive(Debug, Clone)]
pub struct PreparedEmail {
    /// Header lines every copy shares, CRLF-terminated.
    head: String,
    /// The multipart boundary.
    boundary: String,
    /// The text body, encoded, in pieces around the links.
    text: Vec<String>,
    /// The HTML body, encoded, in pieces around the links.
    html: Vec<String>,
    /// Whether copies carry `List-Unsubscribe`.
    unsubscribe: bool,
}

/// Sends email through one SMTP server, over reused sessions ([`SmtpPool`]).
#[derive(Clone)]
pub struct Mailer {
    pool: Arc<SmtpPool>,
    from: Mailbox,
    message_id_domain: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for an `smtp://` or `smtps://` URL (credentials may be in
    /// the URL), sending from `from`, with the default [`SmtpSettings`].
    /// Message-IDs use the domain of `from`.
    pub fn new(smtp_url: &str, from: Mailbox) -> Result<Self, SmtpUrlError> {
        Self::with_settings(smtp_url, from, SmtpSettings::default())
    }

    /// As [`Mailer::new`], with the sessions shared as `settings` say.
    pub fn with_settings(
        smtp_url: &str,
        from: Mailbox,
        settings: SmtpSettings,
    ) -> Result<Self, SmtpUrlError> {
        let message_id_domain = from.email.domain().to_owned();
        Ok(Self {
            pool: Arc::new(SmtpPool::new(smtp_url, settings)?),
            from,
            message_id_domain,
        })
    }

    /// The sessions.
    #[must_use]
    pub fn pool(&self) -> &SmtpPool {
        &self.pool
    }

    /// The envelope's sender.
    #[must_use]
    pub const fn sender(&self) -> &Address {
        &self.from.email
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
        let to = mailbox(to)?.email;
        let bytes = email.formatted();
        self.pool
            .session()
            .await
            .send(&self.from.email, &to, &bytes)
            .await
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
        let to = mailbox(to)?;
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

    /// `message`, rendered with [`UNSUBSCRIBE_SLOT`] as its unsubscribe
    /// link, made ready for any number of recipients: the same headers and
    /// parts as [`Mailer::message`] builds, encoded once.
    #[must_use]
    pub fn prepare(&self, message: &EmailMessage) -> PreparedEmail {
        let mut headers = header::Headers::new();
        headers.set(header::From::from(Mailboxes::from(self.from.clone())));
        headers.set(header::Subject::from(message.subject.clone()));
        headers.set(header::Date::now());
        headers.insert_raw(header::HeaderValue::new(
            header::HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ));
        if message.unsubscribe.is_some() {
            headers.insert_raw(header::HeaderValue::new(
                header::HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
        }
        headers.set(header::MIME_VERSION_1_0);
        let boundary = format!("hg{}", Uuid::new_v4().simple());
        let head = format!(
            "{headers}Content-Type: multipart/alternative;\r\n boundary=\"{boundary}\"\r\n"
        );
        PreparedEmail {
            head,
            boundary,
            text: encoded_pieces(&message.text),
            html: encoded_pieces(&message.html),
            unsubscribe: message.unsubscribe.is_some(),
        }
    }

    /// The copy of `prepared` for `to`: its envelope recipient and its
    /// bytes, with the Message-ID from `delivery` and `unsubscribe_url` in
    /// every place the slot held (HTML-escaped in the HTML part).
    pub fn personal(
        &self,
        prepared: &PreparedEmail,
        delivery: Uuid,
        to: &EmailAddress,
        unsubscribe_url: &str,
    ) -> Result<(Address, Vec<u8>), SendError> {
        let to = mailbox(to)?;
        let text_link =
            String::from_utf8(quoted_printable::encode(unsubscribe_url)).unwrap_or_default();
        let html_link = String::from_utf8(quoted_printable::encode(
            html_escaped(unsubscribe_url).as_bytes(),
        ))
        .unwrap_or_default();
        let mut out = Vec::with_capacity(prepared.len_hint() + 256);
        let mut to_header = header::Headers::new();
        to_header.set(header::To::from(Mailboxes::from(to.clone())));
        out.extend_from_slice(to_header.to_string().as_bytes());
        out.extend_from_slice(
            format!("Message-ID: <{delivery}@{}>\r\n", self.message_id_domain).as_bytes(),
        );
        if prepared.unsubscribe {
            out.extend_from_slice(format!("List-Unsubscribe: <{unsubscribe_url}>\r\n").as_bytes());
        }
        out.extend_from_slice(prepared.head.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (content_type, pieces, link) in [
            ("text/plain", &prepared.text, &text_link),
            ("text/html", &prepared.html, &html_link),
        ] {
            out.extend_from_slice(
                format!(
                    "--{}\r\nContent-Type: {content_type}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
                    prepared.boundary
                )
                .as_bytes(),
            );
            for (i, piece) in pieces.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(link.as_bytes());
                    // A soft break, so the next piece starts a line; none
                    // at the very end (a part may not end in `=`).
                    if !(piece.is_empty() && i == pieces.len() - 1) {
                        out.extend_from_slice(b"=\r\n");
                    }
                }
                out.extend_from_slice(piece.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{}--\r\n", prepared.boundary).as_bytes());
        Ok((to.email, out))
    }
}

impl PreparedEmail {
    /// About how long a copy is.
    fn len_hint(&self) -> usize {
        self.head.len()
            + self.text.iter().map(String::len).sum::<usize>()
            + self.html.iter().map(String::len).sum::<usize>()
    }
}

/// `to` as a mailbox, or a permanent failure.
fn mailbox(to: &EmailAddress) -> Result<Mailbox, SendError> {
    to.as_str()
        .parse()
        .map_err(|e: lettre::address::AddressError| SendError::Permanent(e.to_string()))
}

/// `body` (lines ending CRLF) cut at each [`UNSUBSCRIBE_SLOT`], each piece
/// quoted-printable encoded; every piece but the last ends in a soft line
/// break, where the link goes.
fn encoded_pieces(body: &str) -> Vec<String> {
    let body = body.replace("\r\n", "\n").replace('\n', "\r\n");
    let pieces: Vec<&str> = body.split(UNSUBSCRIBE_SLOT).collect();
    let last = pieces.len() - 1;
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut encoded =
                String::from_utf8(quoted_printable::encode(piece.as_bytes())).unwrap_or_default();
            if i < last {
                encoded.push_str("=\r\n");
            }
            encoded
        })
        .collect()
}

/// `s` as the templates write a value into HTML.
fn html_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&#38;"),
            '<' => out.push_str("&#60;"),
            '>' => out.push_str("&#62;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

    /// The part of `message` whose `Content-Type` is `content_type`, decoded.
    fn part(message: &str, content_type: &str) -> String {
        let start = message
            .find(&format!("Content-Type: {content_type}"))
            .unwrap_or_else(|| panic!("no {content_type} part in {message}"));
        let rest = &message[start..];
        let body_at = rest
            .find("\r\n\r\n")
            .expect("a blank line after the part's headers")
            + 4;
        let body = &rest[body_at..];
        let body = &body[..body.find("\r\n--").expect("the part ends at a boundary")];
        String::from_utf8(
            quoted_printable::decode(body.as_bytes(), quoted_printable::ParseMode::Strict)
                .unwrap_or_else(|e| panic!("{e:?} in:\n{body}")),
        )
        .expect("UTF-8")
    }

    #[test]
    fn a_prepared_email_carries_each_recipients_own_parts_and_decodes_to_the_email_rendered_for_them()
     {
        let mailer = Mailer::new(
            "smtp://127.0.0.1:2525",
            "Acme Status <status@acme.test>".parse().unwrap(),
        )
        .unwrap();
        let mut template = sample();
        // Tenant text that stresses the encoding: non-ASCII, a long line, `=`.
        template.body = format!("Déjà vu = {} fin", "x".repeat(300));
        template.unsubscribe_url = UNSUBSCRIBE_SLOT.to_owned();
        let prepared = mailer.prepare(&template.render().unwrap());
        for (n, url) in [
            "https://status.acme.test/unsubscribe?token=abc.def",
            "https://status.acme.test/unsubscribe?token=a&b=<c>",
        ]
        .into_iter()
        .enumerate()
        {
            let delivery = Uuid::from_u128(n as u128 + 1);
            let to = EmailAddress::parse("email", &format!("reader{n}@example.com")).unwrap();
            let (envelope_to, bytes) = mailer.personal(&prepared, delivery, &to, url).unwrap();
            assert_eq!(envelope_to.to_string(), format!("reader{n}@example.com"));
            let message = String::from_utf8(bytes).unwrap();
            let mut own = template.clone();
            own.unsubscribe_url = url.to_owned();
            let expected = own.render().unwrap();
            let crlf = |s: &str| s.replace("\r\n", "\n").replace('\n', "\r\n");
            assert_eq!(part(&message, "text/plain"), crlf(&expected.text));
            assert_eq!(part(&message, "text/html"), crlf(&expected.html));
            assert!(message.contains(&format!("To: reader{n}@example.com\r\n")));
            assert!(message.contains(&format!("Message-ID: <{delivery}@acme.test>\r\n")));
            assert!(message.contains(&format!("List-Unsubscribe: <{url}>\r\n")));
            assert!(message.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
            assert!(message.contains("Subject: "));
            assert!(!message.contains(UNSUBSCRIBE_SLOT));
            assert!(
                message.lines().all(|l| l.len() <= 78),
                "every line fits SMTP's and quoted-printable's limits"
            );
        }
    }
}
