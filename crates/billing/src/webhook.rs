//! Stripe's webhook signature: `Stripe-Signature: t=<unix time>,v1=<hex
//! HMAC-SHA256 of "<t>.<raw body>">[,v1=…]`, checked on the raw body before
//! anything parses it. Several secrets are accepted at once (a rotation:
//! the old endpoint secret and the new), and a signature older or newer
//! than the tolerance is refused, so a captured request cannot be replayed
//! later (an event replayed within it is stored once, by its id).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

/// Why a webhook's signature was refused. Each is answered the same way
/// (400, nothing applied); the kinds are for the log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// No `Stripe-Signature` header, or one without `t=` or `v1=`.
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    /// Signed too long ago (or in the future) for the tolerance.
    #[error("the signature's time is outside the tolerance")]
    Stale,
    /// No `v1` signature matches any of the secrets.
    #[error("no signature matches")]
    Mismatch,
}

/// Checks `header` (the `Stripe-Signature` value) against the raw `body`
/// with each of `secrets` (endpoint secrets, `whsec_…`), at `now`, within
/// `tolerance` either way.
///
/// # Errors
/// [`SignatureError`] when the header is malformed, stale, or no signature
/// matches.
pub fn verify_signature<S: AsRef<[u8]>>(
    header: Option<&str>,
    body: &[u8],
    secrets: &[S],
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Malformed)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", hex)) => {
                if let Ok(bytes) = hex::decode(hex) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let signed_at =
        OffsetDateTime::from_unix_timestamp(timestamp).map_err(|_| SignatureError::Malformed)?;
    if (now - signed_at).abs() > tolerance {
        return Err(SignatureError::Stale);
    }
    for secret in secrets {
        for signature in &signatures {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_ref())
                .expect("HMAC takes a key of any length");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            // Constant-time comparison.
            if mac.verify_slice(signature).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// A `Stripe-Signature` header for `body`, signed with `secret` at `at`:
/// what Stripe sends (for the tests and the stand-in that play Stripe).
#[must_use]
pub fn sign(body: &[u8], secret: &[u8], at: OffsetDateTime) -> String {
    let t = at.unix_timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A Stripe event, as the webhook reads it (after its signature passed).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Event {
    /// `evt_…`: what a replay is known by.
    pub id: String,
    /// `customer.subscription.updated`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// What it is about.
    pub data: EventData,
}

/// An event's object.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct EventData {
    /// The object (a subscription, an invoice, a Checkout Session).
    pub object: serde_json::Value,
}

/// What an event concerns, read from its object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// The subscription.
    pub subscription: Option<String>,
    /// The customer.
    pub customer: Option<String>,
    /// The tenant the object's metadata (or Checkout's reference) names.
    pub tenant: Option<String>,
}

/// The event types billing follows; every other is recorded and ignored.
pub const FOLLOWED: [&str; 8] = [
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "customer.subscription.paused",
];

fn id_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(id) => Some(id.clone()),
        serde_json::Value::Object(o) => o.get("id").and_then(|v| v.as_str()).map(str::to_owned),
        _ => None,
    }
}

impl Event {
    /// Whether billing follows this type of event.
    #[must_use]
    pub fn is_followed(&self) -> bool {
        FOLLOWED.contains(&self.kind.as_str())
    }

    /// Whether it is about an invoice (paid or failed).
    #[must_use]
    pub fn is_invoice(&self) -> bool {
        self.kind.starts_with("invoice.")
    }

    /// What it concerns: a subscription event's object is the subscription;
    /// a Checkout Session and an invoice name theirs (an invoice where its
    /// API version puts it: `subscription`, or since 2025
    /// `parent.subscription_details.subscription`).
    #[must_use]
    pub fn subject(&self) -> Subject {
        let o = &self.data.object;
        let field = |name: &str| o.get(name).and_then(id_of);
        let metadata_tenant = o
            .get("metadata")
            .and_then(|m| m.get("tenant_id"))
            .and_then(|t| t.as_str())
            .map(str::to_owned);
        let subscription = if self.kind.starts_with("customer.subscription.") {
            field("id")
        } else {
            field("subscription").or_else(|| {
                o.pointer("/parent/subscription_details/subscription")
                    .and_then(id_of)
            })
        };
        Subject {
            subscription,
            customer: field("customer"),
            tenant: metadata_tenant.or_else(|| field("client_reference_id")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn an_event_names_its_subscription_customer_and_tenant_in_each_shape() {
        let read = |json: &str| serde_json::from_str::<Event>(json).unwrap().subject();
        assert_eq!(
            read(
                r#"{"id":"evt_1","type":"customer.subscription.updated","data":{"object":
                {"id":"sub_1","customer":"cus_1","metadata":{"tenant_id":"t1"}}}}"#
            ),
            Subject {
                subscription: Some("sub_1".into()),
                customer: Some("cus_1".into()),
                tenant: Some("t1".into())
            }
        );
        assert_eq!(
            read(
                r#"{"id":"evt_2","type":"checkout.session.completed","data":{"object":
                {"id":"cs_1","customer":"cus_1","subscription":"sub_2","client_reference_id":"t2"}}}"#
            ),
            Subject {
                subscription: Some("sub_2".into()),
                customer: Some("cus_1".into()),
                tenant: Some("t2".into())
            }
        );
        assert_eq!(
            read(
                r#"{"id":"evt_3","type":"invoice.payment_failed","data":{"object":
                {"id":"in_1","customer":{"id":"cus_3"},"parent":{"subscription_details":{"subscription":"sub_3"}}}}}"#
            ),
            Subject {
                subscription: Some("sub_3".into()),
                customer: Some("cus_3".into()),
                tenant: None
            }
        );
    }

    #[test]
    fn a_signature_of_any_current_secret_passes_within_the_tolerance() {
        let header = sign(BODY, b"whsec_new", at(0));
        let tolerance = Duration::minutes(5);
        let secrets: [&[u8]; 2] = [b"whsec_old", b"whsec_new"];
        assert_eq!(
            verify_signature(Some(&header), BODY, &secrets, at(299), tolerance),
            Ok(())
        );
        // Stripe signs with both secrets during its own rotation window.
        let old = sign(BODY, b"whsec_old", at(0));
        let both = format!("{header},v1={}", old.split_once(",v1=").unwrap().1);
        assert_eq!(
            verify_signature(Some(&both), BODY, &[b"whsec_old"], at(0), tolerance),
            Ok(())
        );
    }

    #[test]
    fn forged_stale_altered_or_malformed_signatures_are_refused() {
        let tolerance = Duration::minutes(5);
        let header = sign(BODY, b"whsec_right", at(0));
        let check = |header: Option<&str>, body: &[u8], now| {
            verify_signature(header, body, &[b"whsec_right"], now, tolerance)
        };
        assert_eq!(
            verify_signature(Some(&header), BODY, &[b"whsec_wrong"], at(0), tolerance),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(Some(&header), b"{\"id\":\"evt_2\"}", at(0)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(Some(&header), BODY, at(301)),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(Some(&header), BODY, at(-301)),
            Err(SignatureError::Stale)
        );
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "garbage"] {
            assert_eq!(
                check(Some(bad), BODY, at(0)),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(check(None, BODY, at(0)), Err(SignatureError::Malformed));
    }
}
