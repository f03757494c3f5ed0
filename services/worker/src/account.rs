//! Account emails: a verification or password-reset link, or the note that
//! someone tried to sign up with the address, to one person.

use heliograph_domain::EmailAddress;
use heliograph_notify::{
    AccountEmailKind, SendError, SignupAttemptEmail, render_account_email, render_invitation_email,
};
use time::OffsetDateTime;

use crate::{AccountEmail, Context, Error, InvitationEmail};

/// "in 45 minutes", "in 24 hours".
fn expiry_label(expires_at: OffsetDateTime) -> String {
    let minutes = (expires_at - OffsetDateTime::now_utc())
        .whole_minutes()
        .max(1);
    if minutes < 120 {
        format!("in {minutes} minutes")
    } else {
        format!("in {} hours", (minutes + 30) / 60)
    }
}

/// Idempotent: the link's row is locked while the email goes out and marked
/// sent in the same transaction; a sent, used or expired link is left alone.
/// The link itself is re-derived (signed), so a re-send carries the same one.
pub async fn handle(job: AccountEmail, ctx: Context) -> Result<(), Error> {
    let outcome = ctx
        .store
        .send_account_email(job.link_id, |work| {
            let ctx = ctx.clone();
            async move {
                let to = EmailAddress::parse("email", &work.email)
                    .map_err(|e| SendError::Permanent(e.to_string()))?;
                if work.kind == "signup_attempt" {
                    // A note, with no link that does anything.
                    let message = SignupAttemptEmail {
                        email: work.email.clone(),
                        sign_in_url: format!("{}/", ctx.urls.origin()),
                    }
                    .render()
                    .map_err(|e| SendError::Permanent(e.to_string()))?;
                    return ctx.mailer.send(work.id, &to, &message).await;
                }
                let (kind, path) = match work.kind.as_str() {
                    "verify_email" => (AccountEmailKind::VerifyEmail, "verify-email"),
                    _ => (AccountEmailKind::PasswordReset, "reset-password"),
                };
                let link = format!(
                    "{}/account/{path}?token={}",
                    ctx.urls.origin(),
                    ctx.links.sign(&work.kind, work.id)
                );
                let message = render_account_email(
                    kind,
                    work.tenant_name.as_deref(),
                    &link,
                    &expiry_label(work.expires_at),
                )
                .map_err(|e| SendError::Permanent(e.to_string()))?;
                ctx.mailer.send(work.id, &to, &message).await
            }
        })
        .await?;
    outcome?;
    Ok(())
}

/// Idempotent, as [`handle`]: the invitation is locked while its email goes
/// out and marked sent in the same transaction.
pub async fn handle_invitation(job: InvitationEmail, ctx: Context) -> Result<(), Error> {
    let mut tx = ctx.store.tenant_tx(job.tenant_id).await?;
    let outcome = tx
        .send_invitation_email(job.invitation_id, |work| {
            let ctx = ctx.clone();
            async move {
                let link = format!(
                    "{}/account/accept-invitation?token={}",
                    ctx.urls.origin(),
                    ctx.links.sign("invitation", work.id)
                );
                let message = render_invitation_email(
                    &work.tenant_name,
                    work.inviter_email.as_deref(),
                    work.role.as_str(),
                    &link,
                    &expiry_label(work.expires_at),
                )
                .map_err(|e| SendError::Permanent(e.to_string()))?;
                let to = EmailAddress::parse("email", &work.email)
                    .map_err(|e| SendError::Permanent(e.to_string()))?;
                ctx.mailer.send(work.id, &to, &message).await
            }
        })
        .await?;
    tx.commit().await?;
    outcome?;
    Ok(())
}
