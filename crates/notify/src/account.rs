//! Emails about a person's account: verify an address, reset a password.

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
    heading: &'static str,
    intro: &'static str,
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

/// Renders an account email carrying `link`, which expires as `expiry` says ("in 1 hour").
pub fn render_account_email(
    kind: AccountEmailKind,
    link: &str,
    expiry: &str,
) -> Result<EmailMessage, askama::Error> {
    let v = match kind {
        AccountEmailKind::VerifyEmail => View {
            heading: "Confirm your email address",
            intro: "Please confirm that this address is yours, so that Heliograph can reach you about your account.",
            action: "Confirm my address",
            link,
            expiry,
            ignore: "If you did not sign up for Heliograph, ignore this email.",
        },
        AccountEmailKind::PasswordReset => View {
            heading: "Reset your password",
            intro: "Someone (hopefully you) asked to reset the password of your Heliograph account.",
            action: "Choose a new password",
            link,
            expiry,
            ignore: "If you did not ask for this, ignore this email: your password stays as it is.",
        },
    };
    Ok(EmailMessage {
        subject: v.heading.to_owned(),
        text: Text { v: &v }.render()?,
        html: Html { v: &v }.render()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_emails_match_their_snapshots() {
        let m = render_account_email(
            AccountEmailKind::PasswordReset,
            "https://heliograph.test/account/reset-password?token=abc.def",
            "in 1 hour",
        )
        .unwrap();
        assert_eq!(m.subject, "Reset your password");
        insta::assert_snapshot!("password_reset_text", m.text);
        insta::assert_snapshot!("password_reset_html", m.html);
    }
}
