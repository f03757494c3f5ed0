//! The HTTP sender for webhook, Slack and Teams deliveries.
//!
//! Design note — the SSRF guard sits where the connection is made. A
//! subscriber's URL names a host; checking what that host resolves to and
//! then letting the HTTP client resolve it again would let a name answer a
//! public address to the check and `169.254.169.254` to the connection (DNS
//! rebinding). So the client's resolver is ours: it resolves the name once
//! and hands the client only the addresses [`address_allowed`] accepts; the
//! client connects to nothing else. A URL whose host is an IP literal never
//! reaches a resolver, so literals are checked before sending. Proxies are
//! off (a proxy would resolve the name on our behalf), and redirects are not
//! followed (a 3xx is an answer, and following it would reach a host nobody
//! checked).
//!
//! Every outcome is classified for the worker: delivered, gone (410: the
//! receiver asks to be unsubscribed), transient (retry later, honouring
//! `Retry-After`) or permanent. Error texts are short and safe to store and
//! show to the team: never the URL (Slack and Teams URLs carry their secret
//! in the path), never a header value, at most a short excerpt of an answer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::redirect::Policy;
use reqwest::{Response, Url};

use crate::payloads::truncate;
use crate::retry::{HttpOutcome, classify_status, parse_retry_after};
use crate::webhook::{AllowedTargets, address_allowed};

/// The longest error text kept for a delivery.
const ERROR_MAX: usize = 200;
/// The most of a receiver's answer read for an error excerpt.
const EXCERPT_BYTES: usize = 1024;
/// The most of that excerpt quoted.
const EXCERPT_MAX: usize = 120;

/// Why the guard refused a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the target resolves to an address that is not allowed (loopback/private/link-local/metadata)"
)]
struct RefusedTarget;

/// A name that resolved to no address at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the target's host name has no address")]
struct NoAddress;

/// The resolver that keeps only allowed addresses.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    allow: AllowedTargets,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = allowed_addresses(found, allow)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `found` that may be connected to; an error when there
/// were none, or when every one was refused.
fn allowed_addresses(
    found: Vec<SocketAddr>,
    allow: AllowedTargets,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    if found.is_empty() {
        return Err(Box::new(NoAddress));
    }
    let kept: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| address_allowed(a.ip(), allow))
        .collect();
    if kept.is_empty() {
        return Err(Box::new(RefusedTarget));
    }
    Ok(kept)
}

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
#[derive(Debug, Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
    allow: AllowedTargets,
    timeout: Duration,
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
    /// A rustls crypto provider must be installed first (reqwest panics
    /// otherwise; see `shared/reference/dependencies.md`).
    pub fn new(
        allow: AllowedTargets,
        timeout: Duration,
        user_agent: &str,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow }))
            .user_agent(user_agent)
            .build()?;
        Ok(Self {
            client,
            allow,
            timeout,
        })
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
        let url = match self.checked_url(url) {
            Ok(url) => url,
            Err(refusal) => return refusal,
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

    /// The URL, if it is one we may send to as far as can be told without
    /// resolving it.
    fn checked_url(&self, raw: &str) -> Result<Url, HttpDelivery> {
        let url = Url::parse(raw.trim())
            .map_err(|_| HttpDelivery::permanent("the target is not a valid URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpDelivery::permanent(
                "the target's scheme is not http or https",
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| HttpDelivery::permanent("the target URL has no host"))?;
        // The URL parser has already turned every IPv4 spelling (`0x7f.1`,
        // `2130706433`) into dotted form, as the connector will see it.
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if let Some(ip) = literal
            && !address_allowed(ip, self.allow)
        {
            return Err(HttpDelivery::permanent(RefusedTarget.to_string()));
        }
        Ok(url)
    }

    /// Classifies a request that got no answer.
    fn not_answered(&self, e: &reqwest::Error) -> HttpDelivery {
        if has_cause::<RefusedTarget>(e) {
            return HttpDelivery::permanent(RefusedTarget.to_string());
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

/// Whether an error of type `T` is in `e`'s chain of sources.
fn has_cause<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.is::<T>() {
            return true;
        }
        current = err.source();
    }
    false
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 0)
    }

    #[test]
    fn only_allowed_addresses_are_handed_to_the_connection() {
        let none = AllowedTargets::default();
        let kept = allowed_addresses(vec![addr("10.0.0.1"), addr("93.184.216.34")], none).unwrap();
        assert_eq!(kept, vec![addr("93.184.216.34")]);
        let refused =
            allowed_addresses(vec![addr("127.0.0.1"), addr("169.254.169.254")], none).unwrap_err();
        assert!(refused.downcast_ref::<RefusedTarget>().is_some());
        let nothing = allowed_addresses(vec![], none).unwrap_err();
        assert!(nothing.downcast_ref::<NoAddress>().is_some());
    }

    #[test]
    fn the_refusal_names_the_rule_and_nothing_else() {
        assert_eq!(
            RefusedTarget.to_string(),
            "the target resolves to an address that is not allowed (loopback/private/link-local/metadata)"
        );
    }
}
