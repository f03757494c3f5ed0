//! The kit's servers against real clients: lettre for the SMTP sink,
//! reqwest for the HTTP receiver and the SMS stand-in.

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly where it stopped"
)]

mod http;
mod sms;
mod smtp;

/// reqwest is built without a TLS provider of its own and panics without one.
fn http_client(timeout: std::time::Duration) -> reqwest::Client {
    drop(rustls::crypto::ring::default_provider().install_default());
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
