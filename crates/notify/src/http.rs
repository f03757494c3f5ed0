//! The HTTP sender for webhook, Slack and Teams deliveries.
//!
//! Every request goes through the SSRF guard ([`crate::guard`]): the URL's
//! host is checked if it is an address, and names are resolved by the
//! guard's resolver, which hands the client only allowed addresses; no
//! proxy, no redirects (a 3xx is an answer, and following it would reach a
//! host nobody checked).
//!
//! Every outcome is classified for the worker: delivered, gone (410: the
//! receiver asks to be unsubscribed), transient (retry later, honouring
//! `Retry-After`) or permanent. Error texts are short and safe to store and
//! show to the team: never the URL (Slack and Teams URLs carry their secret
//! in the path), never a header value, at most a short excerpt of an answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::Response;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::guard::{AllowedTargets, Guard, NoAddress, Refusal, has_cause};
use crate::payloads::truncate;
use crate::retry::{HttpOutcome, classify_status, parse_retry_after};

/// The longest error text kept for a delivery.
const ERROR_MAX: usize = 200;
/// The most of a receiver's answer read for an error excerpt.
const EXCERPT_BYTES: usize = 1024;
/// The most of that excerpt quoted.
const EXCERPT_MAX: usize = 120;

/// What became of one HTTP delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpDelivery {
    /// What it means for the delivery.
    pub outcome: HttpOutcome,
    /// The receiver's status code, when it answered.
    pub status: Option<u16>,
    /// How long the receiver asked us to wait (`Retry-After`), on transient answers.
    pub retry_after: Option<Duration>,
    /// Why it was not delivered: short, with no URL, header value or long
    /// answer in it. `None` when delivered.
    pub error: Option<String>,
}

impl HttpDelivery {
    fn failed(outcome: HttpOutcome, error: impl Into<String>) -> Self {
        Self {
            outcome,
            status: None,
            retry_after: None,
            error: Some(truncate(&error.into(), ERROR_MAX)),
        }
    }

    fn permanent(error: impl Into<String>) -> Self {
        Self::failed(HttpOutcome::Permanent, error)
    }
}

/// Sends JSON to subscribers' URLs, through the SSRF guard.
///
/// One reqwest client holds the connections: per origin, kept alive
/// (HTTP/1.1) or multiplexed (HTTP/2, where a TLS receiver offers it). At
/// most [`WebhookClient::per_origin`] requests are in flight to one origin
/// (scheme, host and port) at once, so a slow receiver holds only its own
/// share of the worker, never the others'.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
    guard: Guard,
    timeout: Duration,
    origins: Arc<Origins>,
}

/// The requests in flight per origin.
#[derive(Debug)]
struct Origins {
    per_origin: usize,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Origins remembered at most; beyond, those with nothing in flight are forgotten.
const ORIGINS_KEPT: usize = 10_000;

impl Origins {
    /// A place in `origin`'s share, waiting while it is full.
    async fn enter(&self, origin: String) -> OwnedSemaphorePermit {
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if slots.len() >= ORIGINS_KEPT {
                let full = self.per_origin;
                slots.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < full);
            }
            Arc::clone(
                slots
                    .entry(origin)
                    .or_insert_with(|| Arc::new(Semaphore::new(self.per_origin))),
            )
        };
        slot.acquire_owned()
            .await
            .expect("an origin's semaphore is never closed")
    }
}

impl WebhookClient {
    /// How long a receiver gets to answer, by default. Statuspage allows
    /// 30 s; most receivers answer in well under a second, and a shorter wait
    /// keeps a slow receiver from holding a worker.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

    /// A client that reaches what `allow` lets it (besides public addresses),
    /// gives each receiver `timeout` ([`Self::DEFAULT_TIMEOUT`] unless there is a
    /// reason) for the whole exchange, and introduces itself as `user_agent`.
    ///
    /// A rustls crypto provider must be installed first: reqwest is built
    /// with `rustls-no-provider`, and panics when it finds none installed.
    pub fn new(
        allow: AllowedTargets,
        timeout: Duration,
        user_agent: &str,
    ) -> Result<Self, reqwest::Error> {
        Self::with_guard(Guard::new(allow), timeout, user_agent)
    }

    /// As [`Self::new`], with a guard of the caller's (one that resolves
    /// names through a DNS server of a test's own, say).
    pub fn with_guard(
        guard: Guard,
        timeout: Duration,
        user_agent: &str,
    ) -> Result<Self, reqwest::Error> {
        Self::with_guard_and_roots(guard, timeout, user_agent, [])
    }

    /// As [`Self::with_guard`], trusting the certificate authorities
    /// `roots` besides the system's (receivers behind a private CA; a
    /// test's own receiver).
    pub fn with_guard_and_roots(
        guard: Guard,
        timeout: Duration,
        user_agent: &str,
        roots: impl IntoIterator<Item = reqwest::Certificate>,
    ) -> Result<Self, reqwest::Error> {
        let client = guard
            .client_builder()
            .timeout(timeout)
            .user_agent(user_agent)
            .tls_certs_merge(roots)
            .build()?;
        Ok(Self {
            client,
            guard,
            timeout,
            origins: Arc::new(Origins {
                per_origin: Self::DEFAULT_PER_ORIGIN,
                slots: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Requests in flight to one origin at once, by default.
    pub const DEFAULT_PER_ORIGIN: usize = 32;

    /// This client with at most `limit` requests in flight per origin (at least one).
    #[must_use]
    pub fn per_origin(mut self, limit: usize) -> Self {
        self.origins = Arc::new(Origins {
            per_origin: limit.max(1),
            slots: Mutex::new(HashMap::new()),
        });
        self
    }

    /// POSTs `body` as `application/json` to `url` with `headers` (the
    /// Standard Webhooks headers from [`crate::signed_headers`], for one) and
    /// classifies what happened:
    ///
    /// - 2xx: delivered; 410: gone; 408, 429, 5xx: transient, with the
    ///   receiver's `Retry-After`; redirects (not followed) and other 4xx as
    ///   [`classify_status`] says;
    /// - no connection, no answer in time, a name that does not resolve:
    ///   transient;
    /// - a malformed URL or header, a scheme other than `http`/`https`, a
    ///   target the guard refuses: permanent (no retry will change them).
    pub async fn post_json<K, V>(
        &self,
        url: &str,
        headers: impl IntoIterator<Item = (K, V)>,
        body: &[u8],
    ) -> HttpDelivery
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let url = match self.guard.check_url(url) {
            Ok(url) => url,
            Err(refusal) => return HttpDelivery::permanent(refusal.to_string()),
        };
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = name.as_ref();
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                return HttpDelivery::permanent("a header name is not valid");
            };
            let Ok(value) = HeaderValue::from_str(value.as_ref()) else {
                // The value may be a secret: only the name is named.
                return HttpDelivery::permanent(format!("the value of header {name} is not valid"));
            };
            map.append(header, value);
        }
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let _place = self.origins.enter(url.origin().ascii_serialization()).await;
        let sent = self
            .client
            .post(url)
            .headers(map)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(response) => answered(response).await,
            Err(e) => self.not_answered(&e.without_url()),
        }
    }

    /// Classifies a request that got no answer.
    fn not_answered(&self, e: &reqwest::Error) -> HttpDelivery {
        if has_cause::<Refusal>(e) {
            return HttpDelivery::permanent(Refusal::Address.to_string());
        }
        if e.is_timeout() {
            return HttpDelivery::failed(
                HttpOutcome::Transient,
                format!(
                    "the receiver did not answer within {} ms",
                    self.timeout.as_millis()
                ),
            );
        }
        if has_cause::<NoAddress>(e) {
            return HttpDelivery::failed(HttpOutcome::Transient, NoAddress.to_string());
        }
        if e.is_builder() {
            return HttpDelivery::permanent(format!(
                "the request could not be built: {}",
                root_cause(e)
            ));
        }
        let what = if e.is_connect() {
            "could not connect"
        } else {
            "the request failed"
        };
        HttpDelivery::failed(HttpOutcome::Transient, format!("{what}: {}", root_cause(e)))
    }
}

/// Classifies an answer.
async fn answered(response: Response) -> HttpDelivery {
    let status = response.status();
    let outcome = classify_status(status.as_u16());
    if outcome == HttpOutcome::Delivered {
        return HttpDelivery {
            outcome,
            status: Some(status.as_u16()),
            retry_after: None,
            error: None,
        };
    }
    let retry_after = (outcome == HttpOutcome::Transient)
        .then(|| response.headers().get(RETRY_AFTER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let mut error = format!("the receiver answered {status}");
    if status.is_redirection() {
        error.push_str(" (redirects are not followed)");
    } else {
        let excerpt = excerpt(response).await;
        if !excerpt.is_empty() {
            error.push_str(": ");
            error.push_str(&excerpt);
        }
    }
    HttpDelivery {
        outcome,
        status: Some(status.as_u16()),
        retry_after,
        error: Some(truncate(&error, ERROR_MAX)),
    }
}

/// The start of an answer's body, on one line: receivers often say there
/// why they refused (Slack answers `invalid_payload`, `no_service`, …).
/// Reads at most [`EXCERPT_BYTES`], so a huge answer costs nothing.
async fn excerpt(mut response: Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(EXCERPT_BYTES);
    let text = String::from_utf8_lossy(&bytes);
    let line = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    truncate(&line, EXCERPT_MAX)
}

/// The innermost error's text ("Connection refused (os error 111)"): the
/// outer layers only repeat that a request failed.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
