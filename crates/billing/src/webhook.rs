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

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
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
