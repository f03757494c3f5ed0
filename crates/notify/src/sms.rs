//! Text messages: a provider interface, and its implementation for
//! Twilio's Messages API (or anything that speaks it; the base URL is
//! configurable, which is how the tests point it at a local stand-in).
//!
//! The provider's URL is the operator's, not a tenant's, so its client
//! allows loopback and private addresses (a gateway may run inside the
//! operator's network); it is still built by the SSRF guard, which refuses
//! metadata, link-local and reserved addresses whatever a name resolves
//! to: a mistyped or hijacked name must not carry our credentials there.

use std::future::Future;
use std::time::Duration;

use heliograph_domain::PhoneNumber;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::SendError;
use crate::guard::{AllowedTargets, Guard, Refusal, has_cause};

/// Something that sends a text message and answers the provider's id for it.
pub trait SmsProvider: Send + Sync {
    /// Sends `body` to `to`. Transient errors (rate limits, 5xx, timeouts)
    /// are worth a retry; permanent ones (an invalid or unreachable number,
    /// refused credentials) are not.
    fn send(
        &self,
        to: &PhoneNumber,
        body: &str,
    ) -> impl Future<Output = Result<String, SendError>> + Send;
}

/// Twilio's Messages API: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`
/// with HTTP basic auth (account SID, auth token) and a form body.
#[derive(Clone)]
pub struct TwilioSms {
    client: reqwest::Client,
    endpoint: String,
    account_sid: String,
    auth_token: SecretString,
    from: PhoneNumber,
}

impl std::fmt::Debug for TwilioSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSms")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Why an SMS client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SmsClientError {
    /// The guard refuses the provider's URL.
    #[error("the SMS provider's URL is refused: {0}")]
    Refused(#[from] Refusal),
    /// reqwest could not build its client.
    #[error("the HTTP client could not be built: {0}")]
    Client(#[from] reqwest::Error),
}

/// Twilio's error code for a recipient who answered STOP.
const UNSUBSCRIBED_RECIPIENT: i64 = 21610;

/// The body of a Twilio answer: a message's `sid`, or an error's `code`.
#[derive(Deserialize)]
struct Answer {
    sid: Option<String>,
    code: Option<i64>,
}

impl TwilioSms {
    /// A sender to `base_url` (`https://api.twilio.com` in production),
    /// guarded with [`AllowedTargets::OPERATOR`].
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: SecretString,
        from: PhoneNumber,
    ) -> Result<Self, SmsClientError> {
        let guard = Guard::new(AllowedTargets::OPERATOR);
        Self::with_guard(&guard, base_url, account_sid, auth_token, from)
    }

    /// As [`Self::new`], through `guard`. A base URL the guard refuses
    /// (not http(s), or a refused address) is an error here, at start.
    pub fn with_guard(
        guard: &Guard,
        base_url: &str,
        account_sid: &str,
        auth_token: SecretString,
        from: PhoneNumber,
    ) -> Result<Self, SmsClientError> {
        let endpoint = format!(
            "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
            base_url.trim().trim_end_matches('/')
        );
        guard.check_url(&endpoint)?;
        let client = guard
            .client_builder()
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Self {
            client,
            endpoint,
            account_sid: account_sid.to_owned(),
            auth_token,
            from,
        })
    }
}

impl SmsProvider for TwilioSms {
    async fn send(&self, to: &PhoneNumber, body: &str) -> Result<String, SendError> {
        let response = self
            .client
            .post(&self.endpoint)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&[
                ("To", to.as_str()),
                ("From", self.from.as_str()),
                ("Body", body),
            ])
            .send()
            .await
            // No URL or number in the error: the kind is enough.
            .map_err(|e| {
                if has_cause::<Refusal>(&e) {
                    return SendError::Permanent(
                        "the SMS provider's name resolves to an address that is not allowed \
                         (link-local/metadata/reserved)"
                            .to_owned(),
                    );
                }
                SendError::Transient(if e.is_timeout() {
                    "the SMS provider did not answer in time".to_owned()
                } else {
                    "the SMS provider could not be reached".to_owned()
                })
            })?;
        let status = response.status();
        let answer: Option<Answer> = response.json().await.ok();
        let code = answer
            .as_ref()
            .and_then(|a| a.code)
            .map_or_else(String::new, |c| format!(" (provider code {c})"));
        match status.as_u16() {
            // Twilio's "Attempt to send to unsubscribed recipient": they
            // texted STOP to our number, and carriers hold us to it.
            400 if answer.as_ref().and_then(|a| a.code) == Some(UNSUBSCRIBED_RECIPIENT) => {
                Err(SendError::Unsubscribed(format!(
                    "the recipient opted out of texts from this number{code}"
                )))
            }
            200..=299 => answer.and_then(|a| a.sid).ok_or_else(|| {
                SendError::Transient("the SMS provider answered without a message id".to_owned())
            }),
            429 | 500..=599 => Err(SendError::Transient(format!(
                "the SMS provider answered {status}{code}"
            ))),
            _ => Err(SendError::Permanent(format!(
                "the SMS provider refused the message: {status}{code}"
            ))),
        }
    }
}
