//! The double opt-in email: a new email subscriber confirms before anything
//! else is sent to the address.
//!
//! Only the email: whether a subscriber must confirm, and confirming them,
//! are decided by the domain and the api; the worker sends it.

use askama::Template;

use crate::email::EmailMessage;

/// The email asking a new subscriber to confirm their subscription.
#[derive(Debug, Clone)]
pub struct ConfirmationEmail {
    /// The status page's name.
    pub page_name: String,
    /// The status page's public URL.
    pub page_url: String,
    /// The signed link that confirms the subscription.
    pub confirm_url: String,
    /// Where the subscriber picks components, when the page offers that.
    pub manage_url: Option<String>,
}

#[derive(Template)]
#[template(path = "emails/confirm.txt")]
struct Text<'a> {
    v: &'a ConfirmationEmail,
}

#[derive(Template)]
#[template(path = "emails/confirm.html")]
struct Html<'a> {
    v: &'a ConfirmationEmail,
}

impl ConfirmationEmail {
    /// Renders subject, text and HTML. There is no unsubscribe link: the
    /// address is not subscribed until the link is followed, and ignoring the
    /// email is how one declines.
    pub fn render(&self) -> Result<EmailMessage, askama::Error> {
        Ok(EmailMessage {
            subject: format!("[{}] Confirm your subscription", self.page_name),
            text: Text { v: self }.render()?,
            html: Html { v: self }.render()?,
            unsubscribe: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(manage_url: Option<&str>) -> ConfirmationEmail {
        ConfirmationEmail {
            page_name: "Acme <Cloud>".into(),
            page_url: "https://status.acme.test".into(),
            confirm_url: "https://status.acme.test/subscriptions/confirm?token=c0nf1rm".into(),
            manage_url: manage_url.map(Into::into),
        }
    }

    #[test]
    fn the_confirmation_email_links_to_the_confirmation_and_offers_no_unsubscribe() {
        let m = sample(None).render().unwrap();
        assert_eq!(m.subject, "[Acme <Cloud>] Confirm your subscription");
        assert_eq!(m.unsubscribe, None);
        assert!(
            m.text
                .contains("\nhttps://status.acme.test/subscriptions/confirm?token=c0nf1rm\n")
        );
        assert!(
            m.html
                .contains("href=\"https://status.acme.test/subscriptions/confirm?token=c0nf1rm\"")
        );
        assert!(!m.text.contains("Choose which components"));
        assert!(!m.html.contains("Choose which components"));
        assert!(m.html.contains("Acme &#60;Cloud&#62;"), "HTML is escaped");
        assert!(!m.html.contains("<Cloud>"));
    }

    #[test]
    fn the_confirmation_email_offers_the_component_choice_when_there_is_one() {
        let m = sample(Some(
            "https://status.acme.test/subscriptions/manage?token=m",
        ))
        .render()
        .unwrap();
        assert!(m.text.contains(
            "Choose which components you hear about: https://status.acme.test/subscriptions/manage?token=m"
        ));
        assert!(
            m.html
                .contains("href=\"https://status.acme.test/subscriptions/manage?token=m\"")
        );
    }

    #[test]
    fn the_confirmation_email_matches_its_snapshots() {
        let m = sample(Some(
            "https://status.acme.test/subscriptions/manage?token=m",
        ))
        .render()
        .unwrap();
        insta::assert_snapshot!("confirm_text", m.text);
        insta::assert_snapshot!("confirm_html", m.html);
    }
}
