//! Notifications: what they say and how they are sent.
//!
//! Renders subscriber emails from `frontend-templates/emails/` and sends them
//! over SMTP with lettre. Failures are classified here — permanent (the
//! server refused the message for good) or transient (try again later) — so
//! the worker can decide between giving up and scheduling a retry.
//!
//! What each channel says is decided here too (`payloads`): webhook bodies in
//! Statuspage's envelope, Slack and Microsoft Teams messages, SMS text; and
//! the double opt-in email (`confirm`).
//!
//! Webhooks are signed here (Standard Webhooks, `webhook`); `http` sends
//! them (and Slack and Teams messages) and classifies each answer for the
//! retry policy (`retry`). Every HTTP client here, the SMS provider's
//! included, is built by the SSRF guard (`guard`), which connects only to
//! allowed addresses.
//!
//! Depends on `heliograph-domain` only.
//!
//! It does not choose recipients, schedule retries or record deliveries: the
//! worker does that, with the job queue and the store.

pub mod account;
pub mod confirm;
pub mod domain;
pub mod email;
pub mod guard;
pub mod http;
pub mod payloads;
pub mod retry;
pub mod sms;
pub mod smtp;
pub mod webhook;

pub use account::{
    AccountEmailKind, PastDueEmail, SignupAttemptEmail, render_account_email,
    render_invitation_email,
};
pub use confirm::ConfirmationEmail;
pub use domain::{DomainStoppedEmail, DomainTakenEmail};
pub use email::{
    ComponentLine, EmailMessage, IncidentEmail, Mailer, PreparedEmail, SendError, UNSUBSCRIBE_SLOT,
};
pub use guard::{AddressClass, AllowedTargets, Guard, Refusal, address_allowed, classify};
pub use http::{HttpDelivery, WebhookClient};
pub use payloads::{
    AffectedComponent, ComponentChange, ComponentInfo, IncidentInfo, Notice, PageInfo, UpdateInfo,
    WebhookMeta, slack_body, sms_confirmation_text, sms_text, teams_body, webhook_body,
};
pub use retry::{HttpOutcome, RetryPolicy, classify_status, parse_retry_after};
pub use sms::{SmsClientError, SmsProvider, TwilioSms};
pub use smtp::{Session, SmtpPool, SmtpSettings, SmtpUrlError};
pub use webhook::{WebhookSecret, signed_headers};
