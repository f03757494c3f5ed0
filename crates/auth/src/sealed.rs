//! Secrets at rest: what the platform must keep in order to use it later —
//! a webhook subscriber's signing secret, a Slack or Teams incoming-webhook
//! URL (whoever has the URL can post to the channel) — is sealed with an
//! operator key before it reaches the database, and opened only where it is
//! used (the worker, signing or sending a delivery).
//!
//! The key ring comes from `SECRETS_KEY`: `id:<base64 of 32 bytes>`
//! entries, comma-separated, the first being the current key (it seals),
//! all of them opening. Rotation: add the new key after the current one
//! everywhere, then put it first, then re-seal every row
//! (`heliograph-api secrets reencrypt`), then drop the old key.
//!
//! A sealed value is `v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`,
//! XChaCha20-Poly1305 with a random 192-bit nonce, and additional data
//! that names where the value belongs (column and row), so a sealed value
//! copied into another row does not open there. Each key's AEAD key and
//! its digest key are derived from it with HMAC-SHA256 under fixed labels,
//! so no key serves two algorithms.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::Sha256;

/// The version tag of the sealed form.
const VERSION: &str = "v1";
/// Nonce length of XChaCha20-Poly1305.
const NONCE_LEN: usize = 24;

/// A `SECRETS_KEY` that cannot be used; the message names the entry, never
/// the key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyringError(String);

/// A sealed value that does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not a sealed value at all.
    #[error("not a sealed value")]
    Malformed,
    /// Sealed under a key the ring does not hold (dropped too early?).
    #[error("sealed under key `{0}`, which SECRETS_KEY does not hold")]
    UnknownKey(String),
    /// The key is right but the value does not authenticate: altered, or
    /// moved from another row.
    #[error("the sealed value does not authenticate under key `{0}`")]
    Forged(String),
}

struct RingKey {
    id: String,
    cipher: XChaCha20Poly1305,
    digest: Hmac<Sha256>,
}

/// The operator's keys for secrets at rest; the first seals.
pub struct SecretsKeyring {
    keys: Vec<RingKey>,
}

impl fmt::Debug for SecretsKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsKeyring")
            .field(
                "key_ids",
                &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA256 of `label` under `key`: a 32-byte key for one purpose.
fn derive(key: &[u8], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

fn valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl SecretsKeyring {
    /// Parses `id:<base64 of 32 bytes>[,id:<base64>…]`, current key first.
    pub fn parse(spec: &str) -> Result<Self, KeyringError> {
        let mut keys: Vec<RingKey> = Vec::new();
        for (n, entry) in spec.split(',').map(str::trim).enumerate() {
            let Some((id, material)) = entry.split_once(':') else {
                return Err(KeyringError(format!(
                    "entry {} is not `id:<base64 of 32 bytes>`",
                    n + 1
                )));
            };
            let id = id.trim();
            if !valid_id(id) {
                return Err(KeyringError(format!(
                    "entry {}: a key id is 1 to 32 letters, digits, `_` or `-`",
                    n + 1
                )));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyringError(format!("key id `{id}` appears twice")));
            }
            let bytes = STANDARD
                .decode(material.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    KeyringError(format!(
                        "key `{id}` must be 32 random bytes in base64 (e.g. `head -c 32 /dev/urandom | base64`)"
                    ))
                })?;
            let cipher =
                XChaCha20Poly1305::new_from_slice(&derive(&bytes, "heliograph secrets v1 seal"))
                    .expect("a 32-byte key");
            let digest = <Hmac<Sha256> as Mac>::new_from_slice(&derive(
                &bytes,
                "heliograph secrets v1 digest",
            ))
            .expect("HMAC takes any key length");
            keys.push(RingKey {
                id: id.to_owned(),
                cipher,
                digest,
            });
        }
        if keys.is_empty() {
            return Err(KeyringError("no key".to_owned()));
        }
        Ok(Self { keys })
    }

    /// A new random key entry, `id:<base64>`, for `SECRETS_KEY`.
    #[must_use]
    pub fn generate_entry(id: &str) -> String {
        format!("{id}:{}", STANDARD.encode(rand::random::<[u8; 32]>()))
    }

    /// The id of the key that seals.
    #[must_use]
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Seals `plaintext` for the place `context` names (column and row):
    /// it opens only with the same context.
    #[must_use]
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let key = &self.keys[0];
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let sealed = key
            .cipher
            .encrypt(
                &XNonce::from(nonce_bytes),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any message of this size");
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&sealed);
        format!("{VERSION}:{}:{}", key.id, URL_SAFE_NO_PAD.encode(blob))
    }

    /// Opens a value [`Self::seal`] made for `context`, with whichever key
    /// of the ring sealed it.
    pub fn open(&self, context: &str, sealed: &str) -> Result<SecretString, OpenError> {
        let (id, blob) = parts(sealed).ok_or(OpenError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(blob)
            .map_err(|_| OpenError::Malformed)?;
        if blob.len() < NONCE_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        let plain = key
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Forged(id.to_owned()))?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| OpenError::Forged(id.to_owned()))
    }

    /// Whether `sealed` is sealed under the current key (nothing to re-seal).
    #[must_use]
    pub fn is_current(&self, sealed: &str) -> bool {
        parts(sealed).is_some_and(|(id, _)| id == self.current_key_id())
    }

    /// A keyed digest of `value` under the current key: what a lookup of a
    /// sealed value compares (the same value always gives the same digest,
    /// and nobody without the key can compute or reverse it).
    #[must_use]
    pub fn digest(&self, value: &str) -> String {
        digest_with(&self.keys[0], value)
    }

    /// The digests of `value` under every key of the ring, current first:
    /// a row not yet re-sealed after a rotation carries an older key's.
    #[must_use]
    pub fn digests(&self, value: &str) -> Vec<String> {
        self.keys.iter().map(|k| digest_with(k, value)).collect()
    }
}

fn digest_with(key: &RingKey, value: &str) -> String {
    let mut mac = key.digest.clone();
    mac.update(value.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The key id and payload of a sealed value.
fn parts(sealed: &str) -> Option<(&str, &str)> {
    let rest = sealed.strip_prefix(VERSION)?.strip_prefix(':')?;
    rest.split_once(':')
}

/// The id of the key `sealed` was sealed under, if it is a sealed value.
#[must_use]
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    parts(sealed).map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn ring(spec: &str) -> SecretsKeyring {
        SecretsKeyring::parse(spec).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_in_its_own_place_only() {
        let keys = ring(&SecretsKeyring::generate_entry("k1"));
        let sealed = keys.seal(
            "subscribers.endpoint:1",
            "https://hooks.slack.com/services/T/B/x",
        );
        assert!(sealed.starts_with("v1:k1:"), "{sealed}");
        assert!(!sealed.contains("hooks.slack.com"));
        assert_eq!(
            keys.open("subscribers.endpoint:1", &sealed)
                .unwrap()
                .expose_secret(),
            "https://hooks.slack.com/services/T/B/x"
        );
        assert_eq!(
            keys.open("subscribers.endpoint:2", &sealed).unwrap_err(),
            OpenError::Forged("k1".to_owned()),
            "moved to another row, it does not open"
        );
        // Two seals of one value differ (random nonces), and both open.
        let again = keys.seal(
            "subscribers.endpoint:1",
            "https://hooks.slack.com/services/T/B/x",
        );
        assert_ne!(sealed, again);
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.open("subscribers.endpoint:1", &tampered).is_err());
        assert_eq!(
            keys.open("c", "whsec_plain").unwrap_err(),
            OpenError::Malformed
        );
    }

    #[test]
    fn a_rotated_ring_opens_old_values_and_seals_under_the_new_key() {
        let old = SecretsKeyring::generate_entry("k1");
        let new = SecretsKeyring::generate_entry("k2");
        let before = ring(&old);
        let sealed = before.seal("ctx", "whsec_abc");
        let after = ring(&format!("{new}, {old}"));
        assert_eq!(after.current_key_id(), "k2");
        assert!(!after.is_current(&sealed));
        assert_eq!(
            after.open("ctx", &sealed).unwrap().expose_secret(),
            "whsec_abc"
        );
        let resealed = after.seal("ctx", "whsec_abc");
        assert!(after.is_current(&resealed));
        assert_eq!(sealed_key_id(&resealed), Some("k2"));
        // Once the old key is dropped, what it sealed no longer opens.
        assert_eq!(
            ring(&new).open("ctx", &sealed).unwrap_err(),
            OpenError::UnknownKey("k1".to_owned())
        );
        // Digests: stable per key, and every key's is offered for lookups.
        assert_eq!(before.digest("x"), before.digest("x"));
        assert_ne!(before.digest("x"), before.digest("y"));
        assert_eq!(
            after.digests("x"),
            vec![after.digest("x"), before.digest("x")]
        );
    }

    #[test]
    fn a_bad_key_ring_is_refused_without_showing_the_key() {
        let good = SecretsKeyring::generate_entry("k1");
        for spec in [
            "",
            "k1",
            "k1:c2hvcnQ=",
            "bad id:AAAA",
            &format!("{good},{good}"),
            "k1:not base64!",
        ] {
            let err = SecretsKeyring::parse(spec).unwrap_err();
            assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
        }
        assert!(!format!("{:?}", ring(&good)).contains(&good[3..]));
    }
}
