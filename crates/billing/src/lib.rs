//! Billing: the plans (data, read from a file), and Stripe's side of it
//! (the webhook signature). The rules that read plans (does one more fit,
//! which plan is in force) are the domain's (`heliograph_domain::plan`).
//!
//! With billing off (`BILLING=off`, the default), nothing here is asked:
//! every tenant is served on `Limits::UNLIMITED` and Stripe is never called.

pub mod mode;
pub mod plans;
pub mod stripe;
pub mod webhook;

pub use mode::{Billing, BillingOn, Entitlement};
pub use plans::{Interval, Plan, Plans, PlansError};
pub use webhook::{Event, SignatureError, Subject, verify_signature};
