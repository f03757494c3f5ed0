//! The emails telling a tenant's owners and admins that a custom domain
//! stopped routing, or that another account verified its hostname first.
//!
//! Only the emails: when a domain stops routing or is taken is decided by the
//! domain's state machine; the worker finds the recipients and sends them.

use askama::Template;

use crate::email::EmailMessage;

/// What the email says.
#[derive(Debug, Clone)]
pub struct DomainStoppedEmail {
    /// The custom hostname.
    pub hostname: String,
    /// The page it showed.
    pub page_name: String,
    /// Why its checks fail, to follow "because" (`DomainCheckError::explanation`).
    pub explanation: String,
    /// Since when, in words ("2026-11-22 14:05 UTC").
    pub failing_since: String,
    /// How long failures were tolerated, in words ("3 days").
    pub grace: String,
    /// Where the CNAME must point.
    pub cname_target: String,
    /// The TXT record's name.
    pub txt_name: String,
    /// What the TXT record must carry.
    pub token: String,
    /// The API endpoint that asks for a check now.
    pub verify_url: String,
}

#[derive(Template)]
#[template(path = "emails/domain_stopped.txt")]
struct Text<'a> {
    v: &'a DomainStoppedEmail,
}

#[derive(Template)]
#[template(path = "emails/domain_stopped.html")]
struct Html<'a> {
    v: &'a DomainStoppedEmail,
}

impl DomainStoppedEmail {
    /// Renders subject, text and HTML.
    pub fn render(&self) -> Result<EmailMessage, askama::Error> {
        Ok(EmailMessage {
            subject: format!("{} no longer shows {}", self.hostname, self.page_name),
            text: Text { v: self }.render()?,
            html: Html { v: self }.render()?,
            unsubscribe: None,
        })
    }
}

/// What the email telling a tenant that another account verified one of
/// its claimed hostnames first says. Nothing about that account is in it.
#[derive(Debug, Clone)]
pub struct DomainTakenEmail {
    /// The custom hostname.
    pub hostname: String,
    /// The page that claimed it.
    pub page_name: String,
    /// When the other claim was verified, in words ("2026-11-22 14:05 UTC").
    pub taken_at: String,
    /// The TXT record's name.
    pub txt_name: String,
    /// How long a verified domain may fail before it stops, in words ("3 days").
    pub grace: String,
}

#[derive(Template)]
#[template(path = "emails/domain_taken.txt")]
struct TakenText<'a> {
    v: &'a DomainTakenEmail,
}

#[derive(Template)]
#[template(path = "emails/domain_taken.html")]
struct TakenHtml<'a> {
    v: &'a DomainTakenEmail,
}

impl DomainTakenEmail {
    /// Renders subject, text and HTML.
    pub fn render(&self) -> Result<EmailMessage, askama::Error> {
        Ok(EmailMessage {
            subject: format!("{} was verified by another account", self.hostname),
            text: TakenText { v: self }.render()?,
            html: TakenHtml { v: self }.render()?,
            unsubscribe: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_stopped_email_matches_its_snapshots() {
        let m = DomainStoppedEmail {
            hostname: "status.acme.com".into(),
            page_name: "Acme <Cloud>".into(),
            explanation: "its TXT record does not carry the verification token".into(),
            failing_since: "2026-11-19 08:00 UTC".into(),
            grace: "3 days".into(),
            cname_target: "pages.heliograph.test".into(),
            txt_name: "_heliograph.status.acme.com".into(),
            token: "abcdefghijklmnopqrstuvwxyz012345".into(),
            verify_url: "https://heliograph.test/v1/pages/p/domains/d/verify".into(),
        }
        .render()
        .unwrap();
        assert_eq!(m.subject, "status.acme.com no longer shows Acme <Cloud>");
        assert!(m.html.contains("Acme &#60;Cloud&#62;"), "HTML is escaped");
        insta::assert_snapshot!("domain_stopped_text", m.text);
        insta::assert_snapshot!("domain_stopped_html", m.html);
    }

    #[test]
    fn the_domain_taken_email_matches_its_snapshots() {
        let m = DomainTakenEmail {
            hostname: "status.acme.com".into(),
            page_name: "Acme <Cloud>".into(),
            taken_at: "2026-11-19 08:00 UTC".into(),
            txt_name: "_heliograph.status.acme.com".into(),
            grace: "3 days".into(),
        }
        .render()
        .unwrap();
        assert_eq!(m.subject, "status.acme.com was verified by another account");
        assert!(m.html.contains("Acme &#60;Cloud&#62;"), "HTML is escaped");
        insta::assert_snapshot!("domain_taken_text", m.text);
        insta::assert_snapshot!("domain_taken_html", m.html);
    }
}
