//! Emails about a person's account: verify an address, reset a password.
//!
//! Only the words and the rendering: the link's token (signing, single use,
//! expiry) is `heliograph-auth`'s and the api's, and the worker sends the
//! message.

use askama::Template;

use crate::email::EmailMessage;

/// What the email is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEmailKind {
    /// Confirm the address given at signup.
    VerifyEmail,
    /// Choose a new password.
    PasswordReset,
}

struct View<'a> {
    heading: String,
    intro: String,
    action: &'static str,
    link: &'a str,
    expiry: &'a str,
    ignore: &'static str,
}

#[derive(Template)]
#[template(path = "emails/account.txt")]
struct Text<'a> {
    v: &'a View<'a>,
}

#[derive(Template)]
#[template(path = "emails/account.html")]
struct Html<'a> {
    v: &'a View<'a>,
}

/// Renders an account email carrying `link`, which expires as `expiry` says
/// ("in 1 hour"), for a person in the team `tenant_name` (their first one),
/// if they have one.
pub fn render_account_email(
    kind: AccountEmailKind,
    tenant_name: Option<&str>,
    link: &str,
    expiry: &str,
) -> Result<EmailMessage, askama::Error> {
    let v = match kind {
        AccountEmailKind::VerifyEmail => View {
            heading: tenant_name.map_or_else(
                || "Confirm your email address".to_owned(),
                |t| format!("Confirm your email address for {t}"),
            ),
            intro: tenant_name.map_or_else(
                || "Please confirm that this address is yours, so that Heliograph can reach you about your account.".to_owned(),
                |t| format!("Please confirm that this address is yours, so that Heliograph can reach you about {t}'s account."),
            ),
            action: "Confirm my address",
            link,
            expiry,
            ignore: "If you did not sign up for Heliograph, ignore this email.",
        },
        AccountEmailKind::PasswordReset => View {
            heading: "Reset your password".to_owned(),
            intro: tenant_name.map_or_else(
                || "Someone (hopefully you) asked to reset the password of your Heliograph account.".to_owned(),
                |t| format!("Someone (hopefully you) asked to reset the password of your Heliograph account, which you use for {t}."),
            ),
            action: "Choose a new password",
            link,
            expiry,
            ignore: "If you did not ask for this, ignore this email: your password stays as it is.",
        },
    };
    // The subject stays the same for everyone: mail filters and the
    // sign-up instructions quote it; the team is named inside.
    let subject = match kind {
        AccountEmailKind::VerifyEmail => "Confirm your email address",
        AccountEmailKind::PasswordReset => "Reset your password",
    };
    render(&v, subject.to_owned())
}

fn render(v: &View<'_>, subject: String) -> Result<EmailMessage, askama::Error> {
    Ok(EmailMessage {
        subject,
        text: Text { v }.render()?,
        html: Html { v }.render()?,
        unsubscribe: None,
    })
}

/// The note to an account's owner that someone tried to sign up with
/// their address (signup answers such an attempt as it answers a new
/// address, so this is how the owner hears of it).
#[derive(Debug, Clone)]
pub struct SignupAttemptEmail {
    /// The account's address.
    pub email: String,
    /// Where to sign in.
    pub sign_in_url: String,
}

#[derive(Template)]
#[template(path = "emails/signup_attempt.txt")]
struct AttemptText<'a> {
    v: &'a SignupAttemptEmail,
}

#[derive(Template)]
#[template(path = "emails/signup_attempt.html")]
struct AttemptHtml<'a> {
    v: &'a SignupAttemptEmail,
}

impl SignupAttemptEmail {
    /// Renders subject, text and HTML.
    pub fn render(&self) -> Result<EmailMessage, askama::Error> {
        Ok(EmailMessage {
            subject: "Someone tried to sign up with your address".to_owned(),
            text: AttemptText { v: self }.render()?,
            html: AttemptHtml { v: self }.render()?,
            unsubscribe: None,
        })
    }
}

/// The note to a team's owners that its payments are failing: the plan
/// keeps working through the grace period; the card is changed in Stripe's
/// customer portal, which the billing page opens.
#[derive(Debug, Clone)]
pub struct PastDueEmail {
    /// The team's name.
    pub tenant_name: String,
    /// How many days the plan keeps working without a payment.
    pub grace_days: i64,
    /// The dashboard's billing page (it opens the portal).
    pub billing_url: String,
}

#[derive(Template)]
#[template(path = "emails/past_due.txt")]
struct PastDueText<'a> {
    v: &'a PastDueEmail,
}

#[derive(Template)]
#[template(path = "emails/past_due.html")]
struct PastDueHtml<'a> {
    v: &'a PastDueEmail,
}

impl PastDueEmail {
    /// Renders subject, text and HTML.
    pub fn render(&self) -> Result<EmailMessage, askama::Error> {
        Ok(EmailMessage {
            subject: format!("Payment failed for {}", self.tenant_name),
            text: PastDueText { v: self }.render()?,
            html: PastDueHtml { v: self }.render()?,
            unsubscribe: None,
        })
    }
}

/// Renders the invitation to join `tenant_name` with `role`, sent by
/// `inviter` (their address), when that account still exists.
pub fn render_invitation_email(
    tenant_name: &str,
    inviter: Option<&str>,
    role: &str,
    link: &str,
    expiry: &str,
) -> Result<EmailMessage, askama::Error> {
    let v = View {
        heading: format!("You are invited to {tenant_name} on Heliograph"),
        intro: inviter.map_or_else(
            || format!("You are invited to join {tenant_name} on Heliograph as {role}."),
            |who| format!("{who} invited you to join {tenant_name} on Heliograph as {role}."),
        ),
        action: "Accept the invitation",
        link,
        expiry,
        ignore: "If you did not expect this, ignore this email.",
    };
    render(&v, format!("Join {tenant_name} on Heliograph"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_emails_match_their_snapshots() {
        let m = render_account_email(
            AccountEmailKind::PasswordReset,
            None,
            "https://heliograph.test/account/reset-password?token=abc.def",
            "in 1 hour",
        )
        .unwrap();
        assert_eq!(m.subject, "Reset your password");
        insta::assert_snapshot!("password_reset_text", m.text);
        insta::assert_snapshot!("password_reset_html", m.html);
    }

    #[test]
    fn the_signup_attempt_note_matches_its_snapshots() {
        let m = SignupAttemptEmail {
            email: "owner@example.com".to_owned(),
            sign_in_url: "https://heliograph.test/".to_owned(),
        }
        .render()
        .unwrap();
        assert_eq!(m.subject, "Someone tried to sign up with your address");
        assert!(!m.text.contains("token="), "no link that does anything");
        insta::assert_snapshot!("signup_attempt_text", m.text);
        insta::assert_snapshot!("signup_attempt_html", m.html);
    }

    #[test]
    fn the_verification_names_the_team() {
        let m = render_account_email(
            AccountEmailKind::VerifyEmail,
            Some("Acme <Cloud>"),
            "https://heliograph.test/account/verify-email?token=abc.def",
            "in 24 hours",
        )
        .unwrap();
        assert_eq!(m.subject, "Confirm your email address");
        assert!(
            m.text
                .starts_with("Confirm your email address for Acme <Cloud>")
        );
        assert!(m.text.contains("reach you about Acme <Cloud>'s account"));
        assert!(!m.html.contains("<Cloud>"), "tenant text is escaped");
        insta::assert_snapshot!("verify_email_text", m.text);
        insta::assert_snapshot!("verify_email_html", m.html);
    }

    #[test]
    fn the_invitation_names_the_team_and_the_inviter() {
        let m = render_invitation_email(
            "Acme Cloud",
            Some("ada@acme.test"),
            "editor",
            "https://heliograph.test/account/accept-invitation?token=abc.def",
            "in 7 days",
        )
        .unwrap();
        assert_eq!(m.subject, "Join Acme Cloud on Heliograph");
        assert!(
            m.text
                .contains("ada@acme.test invited you to join Acme Cloud on Heliograph as editor.")
        );
        insta::assert_snapshot!("invitation_text", m.text);
        insta::assert_snapshot!("invitation_html", m.html);
    }
}
