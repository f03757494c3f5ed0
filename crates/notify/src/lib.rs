//! Notifications: what they say and how they are sent.
//!
//! Renders subscriber emails from `frontend-templates/emails/` and sends them
//! over SMTP with lettre. Failures are classified here — permanent (the
//! server refused the message for good) or transient (try again later) — so
//! the worker can decide between giving up and scheduling a retry.
//!
//! Depends on `heliograph-domain` only.

pub mod account;
pub mod domain;
pub mod email;
pub mod retry;

pub use account::{AccountEmailKind, render_account_email, render_invitation_email};
pub use domain::DomainStoppedEmail;
pub use email::{ComponentLine, EmailMessage, IncidentEmail, Mailer, SendError};
pub use retry::RetryPolicy;
