//! Real servers on loopback for Heliograph's integration tests, fault tests
//! and benchmarks.
//!
//! The project's rule is that tests talk to real protocol implementations,
//! never to mocks: [`SmtpSink`] is an SMTP server that lettre's client talks
//! to as it would to any relay, and [`HttpReceiver`] is an actix-web server
//! that accepts whatever a webhook sender throws at it. Both record what they
//! receive and can be told, while a test runs, to fail in the ways real
//! servers fail (transient refusals, permanent rejections, error statuses,
//! slowness).
//!
//! [`SmsStandIn`] is an exception, and is named as such: a **stand-in**
//! for Twilio's Messages API, a paid service that cannot run here.
//! Stripe's API runs as [`LocalStripe`] (localstripe, a third-party
//! emulator from PyPI that `deploy/dev test` installs), behind
//! [`StripeStandIn`], a **stand-in** for only what localstripe lacks
//! (Checkout and Customer Portal sessions, subscription status changes and
//! their `customer.subscription.updated` events), which also relays
//! localstripe's own signed events to the test's endpoint.
//!
//! Every server binds `127.0.0.1:0` (localstripe a free port on every
//! interface: it binds no other way), so tests run in parallel, each with
//! its own servers. [`ScratchPostgres`] and [`ScratchRedis`] are real PostgreSQL
//! and Redis servers of one test's own, for tests that stop and restart them,
//! or freeze and thaw them (SIGSTOP/SIGCONT: a server that hangs);
//! [`TestPostgres`] is a database of one test's own on any server, reached
//! through the roles production uses; [`DnsServer`] is a real DNS server
//! (dnsmasq) answering the records a test gives it. [`captured_logs`] keeps
//! what the process logs (spans and events), for tests of what reaches the
//! logs. [`Browser`] is a headless Chromium driven over WebDriver, which
//! also runs axe-core in the pages it shows and screenshots them. This crate depends on no Heliograph crate, so any of them can use it
//! as a dev-dependency.

mod browser;
mod database;
mod dns;
mod log;
mod moto;
mod pgbouncer;
mod receiver;
mod rfc2047;
mod scratch;
mod server;
mod sms;
mod smtp;
mod stripe;
mod tracing_capture;

pub use browser::{Browser, BrowserOptions};
pub use database::{OWNER_ROLE, ROLES_SQL, SERVE_ROLE, TestPostgres};
pub use dns::DnsServer;
pub use moto::MotoServer;
pub use pgbouncer::ScratchPgBouncer;
pub use receiver::{HttpReceiver, ReceivedRequest, Reply, Script};
pub use scratch::{ScratchPostgres, ScratchRedis};
pub use sms::{ReceivedSms, SmsStandIn};
pub use smtp::{ReceivedMail, SinkOptions, SmtpMode, SmtpSink};
pub use stripe::{LocalStripe, StripeStandIn};
pub use tracing_capture::{CapturedLogs, captured_logs};
