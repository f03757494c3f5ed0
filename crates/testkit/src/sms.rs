//! `SmsStandIn`: a **stand-in** for Twilio's Messages API.
//!
//! Twilio is a paid service that cannot run here, so this is the one server
//! in the kit that imitates rather than implements: a real HTTP server on
//! loopback that checks credentials, records what it was sent and answers
//! as Twilio documents, with its error codes. It covers what Heliograph's
//! sender uses (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP
//! Basic auth, form fields `To`, `From`, `Body`) and nothing more.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use serde_json::json;

use crate::log::Log;
use crate::server::Running;

/// One message the stand-in accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSms {
    /// The `To` field, as sent.
    pub to: String,
    /// The `From` field, as sent.
    pub from: String,
    /// The `Body` field.
    pub body: String,
}

#[derive(Debug)]
struct Shared {
    account_sid: String,
    // The whole expected `Authorization` value, computed once.
    authorization: String,
    busy: AtomicU32,
    // Numbers that answered STOP.
    stopped: RwLock<HashSet<String>>,
    messages: Log<ReceivedSms>,
}

/// A **stand-in** for Twilio's Messages API (a paid service that cannot run
/// here), on `127.0.0.1`.
///
/// It answers `201` with `{"sid":"SM…","status":"queued"}` and records the
/// message; `401` (code 20003) on wrong credentials or account; `400` (code
/// 21211) for [`SmsStandIn::INVALID_NUMBER`], Twilio's magic test number for
/// an invalid `To`, and (codes 21604, 21603, 21602) when `To`, `From` or
/// `Body` is missing; `400` (code 21610, "unsubscribed recipient") for a
/// number [`SmsStandIn::stop_number`] named; `429` (code 20429) while
/// [`SmsStandIn::busy`] has answers left. Dropping it stops it.
#[derive(Debug)]
pub struct SmsStandIn {
    shared: Arc<Shared>,
    server: Running,
}

impl SmsStandIn {
    /// The account SID [`SmsStandIn::start`] accepts.
    pub const ACCOUNT_SID: &str = "ACtest0000000000000000000000000000";
    /// The auth token [`SmsStandIn::start`] accepts.
    pub const AUTH_TOKEN: &str = "stand-in-auth-token";
    /// Twilio's magic test number for "invalid `To` number" (error 21211).
    pub const INVALID_NUMBER: &str = "+15005550001";

    /// Starts a stand-in that accepts [`SmsStandIn::ACCOUNT_SID`] and
    /// [`SmsStandIn::AUTH_TOKEN`].
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start() -> io::Result<Self> {
        Self::start_with_credentials(Self::ACCOUNT_SID, Self::AUTH_TOKEN).await
    }

    /// Starts a stand-in that accepts this account SID and auth token.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start_with_credentials(account_sid: &str, auth_token: &str) -> io::Result<Self> {
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{auth_token}"))
        );
        let shared = Arc::new(Shared {
            account_sid: account_sid.to_owned(),
            authorization,
            busy: AtomicU32::new(0),
            stopped: RwLock::default(),
            messages: Log::default(),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                web::post().to(create_message),
            )
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .bind("127.0.0.1:0")?;
        let server = Running::new(&server.addrs(), server.run())?;
        Ok(Self { shared, server })
    }

    /// The base URL to configure the sender with: `http://127.0.0.1:PORT`
    /// (Twilio's is `https://api.twilio.com`).
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The address the stand-in listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Answers the next `n` authenticated requests `429 Too Many Requests`,
    /// as Twilio does past an account's rate. Replaces a previous count.
    pub fn busy(&self, n: u32) {
        self.shared.busy.store(n, Ordering::Release);
    }

    /// Refuses texts to `number` from now on, as Twilio does once its owner
    /// answered STOP (error 21610).
    pub fn stop_number(&self, number: &str) {
        self.shared
            .stopped
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(number.to_owned());
    }

    /// Every message accepted so far, in order.
    #[must_use]
    pub fn messages(&self) -> Vec<ReceivedSms> {
        self.shared.messages.snapshot()
    }

    /// How many messages were accepted.
    #[must_use]
    pub fn count(&self) -> usize {
        self.shared.messages.len()
    }

    /// Waits until at least `n` messages were accepted; false if `timeout`
    /// passed first.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        self.shared.messages.wait_for(n, timeout).await
    }

    /// Stops accepting, closes the connections, and waits for the server to end.
    pub async fn stop(&self) {
        self.server.stop().await;
    }
}

fn twilio_error(status: actix_web::http::StatusCode, code: u32, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    }))
}

async fn create_message(
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    use actix_web::http::StatusCode;

    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if path.as_str() != shared.account_sid || authorization != Some(shared.authorization.as_str()) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if shared
        .busy
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
    {
        return twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
    }
    let mut form = form.into_inner();
    let Some(to) = form.remove("To") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    let Some(from) = form.remove("From") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    };
    let Some(body) = form.remove("Body") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    if to == SmsStandIn::INVALID_NUMBER {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    if shared
        .stopped
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&to)
    {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21610,
            "Attempt to send to unsubscribed recipient",
        );
    }
    shared.messages.push(ReceivedSms { to, from, body });
    HttpResponse::Created().json(json!({
        "sid": format!("SM{}", uuid::Uuid::new_v4().simple()),
        "status": "queued",
    }))
}
