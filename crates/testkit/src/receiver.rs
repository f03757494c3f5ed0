//! `HttpReceiver`: a real HTTP server (actix-web) that takes any request on
//! any path, records it, and answers as a test scripts it: the far end of a
//! webhook, or any HTTP endpoint a service calls.
//!
//! It checks nothing about what it receives (signatures, bodies): the tests
//! do, from its records.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::log::{Log, lock};
use crate::server::Running;

/// Bodies up to this size are recorded; larger ones are refused with 413 by
/// actix-web, as a real receiver would.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One request the receiver got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path with its query string, as sent: `/hooks/a?x=1`.
    pub path: String,
    /// Every header in order, names lower-cased, values lossily UTF-8.
    pub headers: Vec<(String, String)>,
    /// The body as received.
    pub body: Vec<u8>,
    /// The status the receiver answered (or began to answer, when the client
    /// gave up during a scripted delay).
    pub status: u16,
    /// When the request arrived, for measuring intervals (retry schedules).
    pub received_at: Instant,
    /// When the request arrived, as wall-clock time.
    pub received_at_system: SystemTime,
}

impl ReceivedRequest {
    /// The first header named `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without its query string.
    #[must_use]
    pub fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(&self.path, |(p, _)| p)
    }

    /// The body as text (lossy).
    #[must_use]
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    ///
    /// # Errors
    /// When the body is not JSON.
    pub fn json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
    }
}

/// One answer: a status, headers, a body, and how long to wait before
/// sending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code; one that HTTP cannot carry is sent as 500.
    pub status: u16,
    /// Headers to add.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How long to wait before answering (the request is recorded first).
    pub delay: Duration,
}

impl Default for Reply {
    /// `200 OK` with `{"ok":true}`: what the receiver answers when no script
    /// says otherwise.
    fn default() -> Self {
        Self::ok()
    }
}

impl Reply {
    /// `200 OK` with the JSON body `{"ok":true}`.
    #[must_use]
    pub fn ok() -> Self {
        Self::status(200)
            .header("content-type", "application/json")
            .body(br#"{"ok":true}"#.as_slice())
    }

    /// `status` with an empty body.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// `410 Gone`: the endpoint is gone for good.
    #[must_use]
    pub fn gone() -> Self {
        Self::status(410)
    }

    /// `302 Found` to `location`.
    #[must_use]
    pub fn redirect(location: &str) -> Self {
        Self::status(302).header("location", location)
    }

    /// Adds a header, e.g. `.header("retry-after", "1")`.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Waits `delay` before answering: longer than a client's timeout, it
    /// makes the client time out.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// How the receiver answers the requests a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// The same reply to every request.
    Always(Reply),
    /// `reply` to the next `count` requests, then the default reply.
    FailFirst {
        /// How many requests are still to get `reply`.
        count: usize,
        /// What they get.
        reply: Reply,
    },
    /// The replies in order, one per request, then the default reply.
    Queue(VecDeque<Reply>),
}

impl Script {
    /// Always `reply`.
    #[must_use]
    pub fn always(reply: Reply) -> Self {
        Self::Always(reply)
    }

    /// Always `status` with an empty body.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self::Always(Reply::status(status))
    }

    /// `reply` to the first `count` requests, then the default `200`.
    #[must_use]
    pub fn fail_first(count: usize, reply: Reply) -> Self {
        Self::FailFirst { count, reply }
    }

    /// These replies in order, then the default `200`.
    #[must_use]
    pub fn queue(replies: impl IntoIterator<Item = Reply>) -> Self {
        Self::Queue(replies.into_iter().collect())
    }

    /// These statuses (empty bodies) in order, then the default `200`.
    #[must_use]
    pub fn statuses(statuses: impl IntoIterator<Item = u16>) -> Self {
        Self::queue(statuses.into_iter().map(Reply::status))
    }

    /// Always `410 Gone`.
    #[must_use]
    pub fn gone() -> Self {
        Self::Always(Reply::gone())
    }

    /// Always the default `200`, after `delay`.
    #[must_use]
    pub fn delay(delay: Duration) -> Self {
        Self::Always(Reply::ok().delay(delay))
    }

    /// Always `302` to `location`.
    #[must_use]
    pub fn redirect(location: &str) -> Self {
        Self::Always(Reply::redirect(location))
    }

    /// The reply for the next request, moving the script on.
    fn next(&mut self) -> Option<Reply> {
        match self {
            Self::Always(reply) => Some(reply.clone()),
            Self::FailFirst { count, reply } => {
                let left = count.checked_sub(1)?;
                *count = left;
                Some(reply.clone())
            }
            Self::Queue(replies) => replies.pop_front(),
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    requests: Log<ReceivedRequest>,
    // (path prefix, script); the longest matching prefix wins.
    scripts: Mutex<Vec<(String, Script)>>,
}

impl Shared {
    fn reply_for(&self, path: &str) -> Reply {
        let mut scripts = lock(&self.scripts);
        scripts
            .iter_mut()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .and_then(|(_, script)| script.next())
            .unwrap_or_default()
    }
}

/// A real HTTP server on `127.0.0.1` that accepts any method on any path,
/// records every request, and answers as scripted (by default `200` with
/// `{"ok":true}`).
///
/// It runs on actix-web's own worker threads, so it keeps answering while
/// the test's runtime is busy. Dropping it stops it.
#[derive(Debug)]
pub struct HttpReceiver {
    shared: Arc<Shared>,
    server: Running,
}

impl HttpReceiver {
    /// Starts a receiver with two workers.
    ///
    /// Must be called within a tokio runtime, which drives the server's
    /// control task.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start() -> io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .default_service(web::to(record))
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(0)
        .bind("127.0.0.1:0")?;
        let server = Running::new(&server.addrs(), server.run())?;
        Ok(Self { shared, server })
    }

    /// The address the receiver listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT` followed by `path` (a `/` is put in front
    /// when missing).
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.addr())
    }

    /// Answers requests whose path (without query) starts with
    /// `path_prefix` as `script` says, replacing the script for that exact
    /// prefix. When several prefixes match, the longest wins; `""` or `"/"`
    /// matches every path.
    pub fn respond_with(&self, path_prefix: &str, script: Script) {
        let mut scripts = lock(&self.shared.scripts);
        scripts.retain(|(prefix, _)| prefix != path_prefix);
        scripts.push((path_prefix.to_owned(), script));
    }

    /// Answers every request as `script` says, unless a longer prefix has
    /// its own script.
    pub fn respond_to_all(&self, script: Script) {
        self.respond_with("", script);
    }

    /// Drops every script: back to `200` for all.
    pub fn clear_scripts(&self) {
        lock(&self.shared.scripts).clear();
    }

    /// Every request so far, in order of arrival.
    #[must_use]
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.requests.snapshot()
    }

    /// How many requests arrived.
    #[must_use]
    pub fn count(&self) -> usize {
        self.shared.requests.len()
    }

    /// The requests to `path`: compared with the path and query when `path`
    /// has a `?`, otherwise with the path alone.
    #[must_use]
    pub fn requests_to(&self, path: &str) -> Vec<ReceivedRequest> {
        let with_query = path.contains('?');
        self.shared.requests.with(|requests| {
            requests
                .iter()
                .filter(|r| {
                    if with_query {
                        r.path == path
                    } else {
                        r.path_only() == path
                    }
                })
                .cloned()
                .collect()
        })
    }

    /// Waits until at least `n` requests arrived; false if `timeout` passed first.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        self.shared.requests.wait_for(n, timeout).await
    }

    /// Stops accepting, closes the connections, and waits for the server to end.
    pub async fn stop(&self) {
        self.server.stop().await;
    }
}

async fn record(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let received_at = Instant::now();
    let received_at_system = SystemTime::now();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let reply = shared.reply_for(req.path());
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    // Recorded before the delay: a client that times out has still sent it.
    shared.requests.push(ReceivedRequest {
        method: req.method().as_str().to_owned(),
        path,
        headers,
        body: body.to_vec(),
        status: reply.status,
        received_at,
        received_at_system,
    });
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in &reply.headers {
        response.append_header((name.as_str(), value.as_str()));
    }
    response.body(reply.body)
}
