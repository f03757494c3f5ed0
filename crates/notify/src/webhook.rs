//! Outgoing webhooks: signing per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>). The address guard that keeps a
//! subscriber's URL from reaching into our own network (SSRF) is
//! [`crate::guard`].
//!
//! Signing: the signed content is `{webhook-id}.{webhook-timestamp}.{body}`;
//! the signature is `v1,` + base64(HMAC-SHA256(key, content)), where the key
//! is the base64 part of the subscriber's `whsec_…` secret. Receivers verify
//! with any Standard Webhooks library.
//!
//! Not here: sending (`http`) and what the body says (`payloads`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A subscriber's signing secret, `whsec_<base64 of 32 random bytes>`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// A secret that is not `whsec_` followed by base64 of at least 24 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a webhook secret (whsec_ and base64 of at least 24 bytes)")]
pub struct InvalidSecret;

impl WebhookSecret {
    /// A new random secret.
    #[must_use]
    pub fn generate() -> Self {
        Self {
            key: rand::random::<[u8; 32]>().to_vec(),
        }
    }

    /// Reads a stored `whsec_…` secret.
    pub fn parse(raw: &str) -> Result<Self, InvalidSecret> {
        let encoded = raw.strip_prefix(SECRET_PREFIX).ok_or(InvalidSecret)?;
        let key = STANDARD.decode(encoded).map_err(|_| InvalidSecret)?;
        if key.len() < 24 {
            return Err(InvalidSecret);
        }
        Ok(Self { key })
    }

    /// The secret as it is shown once to the subscriber and stored.
    #[must_use]
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// The `webhook-signature` header value for a message.
    #[must_use]
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The three headers of a signed webhook: `webhook-id` (stable per
/// delivery, so a receiver can drop a retry it already handled),
/// `webhook-timestamp` (seconds) and `webhook-signature`.
///
/// Sign every attempt anew with the time of that attempt: receivers refuse
/// a timestamp more than a few minutes old (replay protection), so a retry
/// hours later keeps the delivery's id but not its first timestamp. The
/// result goes straight to [`crate::WebhookClient::post_json`].
#[must_use]
pub fn signed_headers(
    secret: &WebhookSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", secret.sign(id, timestamp, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference tests.
    #[test]
    fn signatures_match_the_specifications_example() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_generated_secret_reads_back_and_signs_the_same() {
        let secret = WebhookSecret::generate();
        let shown = secret.expose();
        assert!(shown.starts_with("whsec_"));
        let again = WebhookSecret::parse(&shown).unwrap();
        assert_eq!(again, secret);
        assert_eq!(again.sign("id", 1, b"x"), secret.sign("id", 1, b"x"));
        assert_ne!(secret.sign("id", 1, b"x"), secret.sign("id", 2, b"x"));
        assert!(!format!("{secret:?}").contains(&shown[6..]));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for raw in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!",
            "whsec_c2hvcnQ=",
        ] {
            assert_eq!(WebhookSecret::parse(raw), Err(InvalidSecret), "{raw}");
        }
    }
}
