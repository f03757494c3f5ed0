//! Single-use links (password reset, email verification, invitations).
//!
//! A link carries `<token id>.<HMAC-SHA256(secret, purpose:id)>`. Nothing
//! secret is stored: the API and the worker both derive the MAC from the
//! shared `LINK_SECRET`, so the worker can send (and re-send) a link it never
//! saw, and a database leak yields no usable link. Single use and expiry are
//! the token row's business.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

/// The purpose of a subscriber's unsubscribe link (signed by the worker
/// into every email, checked by the public page).
pub const UNSUBSCRIBE_PURPOSE: &str = "unsubscribe";

/// The purpose of the link in a confirmation email (double opt-in); the
/// worker signs it, the public page checks it.
pub const CONFIRM_PURPOSE: &str = "confirm-subscription";

/// The purpose of the code in a confirmation SMS.
pub const SMS_CODE_PURPOSE: &str = "sms-code";

/// Signs and checks link tokens.
#[derive(Clone)]
pub struct LinkSigner {
    secret: SecretString,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(***)")
    }
}

impl LinkSigner {
    /// A signer; `None` when the secret is shorter than 32 bytes.
    #[must_use]
    pub fn new(secret: SecretString) -> Option<Self> {
        (secret.expose_secret().len() >= 32).then_some(Self { secret })
    }

    fn mac(&self, purpose: &str, id: Uuid) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(purpose.as_bytes());
        mac.update(b":");
        mac.update(id.as_bytes());
        mac
    }

    /// The token for row `id`, for a link of `purpose`.
    #[must_use]
    pub fn sign(&self, purpose: &str, id: Uuid) -> String {
        let tag: String = self
            .mac(purpose, id)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{}.{tag}", id.simple())
    }

    /// A six-digit code for row `id`, valid for the confirmation sent at
    /// `sent_at` (Unix milliseconds): the worker texts it, the API recomputes
    /// it, nothing is stored, and sending a new confirmation changes it.
    /// Six digits are guessable in a million tries, so the API counts wrong
    /// ones and refuses after a few.
    #[must_use]
    pub fn code(&self, purpose: &str, id: Uuid, sent_at: i64) -> String {
        let mut mac = self.mac(purpose, id);
        mac.update(b":");
        mac.update(&sent_at.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        let n = u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]]) % 1_000_000;
        format!("{n:06}")
    }

    /// Whether `given` is the code for row `id` and the confirmation sent
    /// at `sent_at`, compared in constant time.
    #[must_use]
    pub fn code_matches(&self, purpose: &str, id: Uuid, sent_at: i64, given: &str) -> bool {
        let expected = self.code(purpose, id, sent_at);
        let given = given.trim();
        given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The row id a token names, if its MAC is right for `purpose`.
    #[must_use]
    pub fn verify(&self, purpose: &str, token: &str) -> Option<Uuid> {
        let (id, tag) = token.trim().split_once('.')?;
        let id = Uuid::parse_str(id).ok()?;
        if tag.len() != 64 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(tag.get(i..i + 2)?, 16).ok())
            .collect();
        self.mac(purpose, id)
            .verify_slice(&bytes?)
            .ok()
            .map(|()| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(s: &str) -> LinkSigner {
        LinkSigner::new(SecretString::from(s.to_owned())).unwrap()
    }

    #[test]
    fn a_code_is_six_digits_and_changes_with_each_confirmation_sent() {
        let s = signer("0123456789abcdef0123456789abcdef");
        let id = Uuid::new_v4();
        let code = s.code(SMS_CODE_PURPOSE, id, 1_000);
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert!(s.code_matches(SMS_CODE_PURPOSE, id, 1_000, &code));
        assert!(s.code_matches(SMS_CODE_PURPOSE, id, 1_000, &format!(" {code}\n")));
        assert!(
            !s.code_matches(SMS_CODE_PURPOSE, id, 1_001, &code),
            "a resend changes it"
        );
        assert!(!s.code_matches(SMS_CODE_PURPOSE, Uuid::new_v4(), 1_000, &code));
        assert!(!s.code_matches(CONFIRM_PURPOSE, id, 1_000, &code));
        assert!(!s.code_matches(SMS_CODE_PURPOSE, id, 1_000, "12345"));
    }

    #[test]
    fn a_token_verifies_for_its_purpose_only() {
        let s = signer("0123456789abcdef0123456789abcdef");
        let id = Uuid::new_v4();
        let token = s.sign("password_reset", id);
        assert_eq!(s.verify("password_reset", &token), Some(id));
        assert_eq!(
            s.verify("verify_email", &token),
            None,
            "not for another purpose"
        );
        assert_eq!(
            signer("another-secret-another-secret-xyz").verify("password_reset", &token),
            None
        );
    }

    #[test]
    fn tampered_or_malformed_tokens_are_refused() {
        let s = signer("0123456789abcdef0123456789abcdef");
        let id = Uuid::new_v4();
        let token = s.sign("password_reset", id);
        let other_id = s.sign("password_reset", Uuid::new_v4());
        let swapped = format!(
            "{}.{}",
            other_id.split('.').next().unwrap(),
            token.split('.').nth(1).unwrap()
        );
        for bad in [
            swapped.as_str(),
            "",
            "x.y",
            &token[..token.len() - 1],
            &format!("{token}0"),
        ] {
            assert_eq!(s.verify("password_reset", bad), None, "{bad}");
        }
        assert!(LinkSigner::new(SecretString::from("short".to_owned())).is_none());
    }
}
