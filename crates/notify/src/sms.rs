//! Text messages: a provider interface, and its implementation for
//! Twilio's Messages API (or anything that speaks it; the base URL is
//! configurable, which is how the tests point it at a local stand-in).

use std::future::Future;
use std::time::Duration;

use heliograph_domain::PhoneNumber;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::SendError;

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

/// Twilio's error code for a recipient who answered STOP.
const UNSUBSCRIBED_RECIPIENT: i64 = 21610;

/// The body of a Twilio answer: a message's `sid`, or an error's `code`.
#[derive(Deserialize)]
struct Answer {
    sid: Option<String>,
    code: Option<i64>,
}

impl TwilioSms {
    /// A sender to `base_url` (`https://api.twilio.com` in production).
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: SecretString,
        from: PhoneNumber,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            endpoint: format!(
                "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
                base_url.trim_end_matches('/')
            ),
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
