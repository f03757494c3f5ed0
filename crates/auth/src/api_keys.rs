//! API keys: `hg_<prefix>_<secret>`, shown once, stored as a SHA-256 hash.
//!
//! The prefix (8 characters) is stored in clear: it finds the key's row and
//! lets people tell their keys apart. The secret carries 190 bits of
//! randomness, so a fast hash is as safe as a slow one and costs nothing per
//! request.
//!
//! Not here: what a key's scope allows (the api checks it on each request)
//! and keeping the key rows (`heliograph-store`).

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

const PREFIX_LEN: usize = 8;
const SECRET_LEN: usize = 32;

/// A key just made: show `key` once, store `prefix` and `hash`.
#[derive(Clone)]
pub struct NewApiKey {
    /// The whole key, for the one response that shows it.
    pub key: String,
    /// The lookup prefix.
    pub prefix: String,
    /// SHA-256 of the whole key.
    pub hash: Vec<u8>,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn random(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Makes a new key.
#[must_use]
pub fn generate_api_key() -> NewApiKey {
    let prefix = random(PREFIX_LEN);
    let key = format!("hg_{prefix}_{}", random(SECRET_LEN));
    let hash = hash_api_key(&key);
    NewApiKey { key, prefix, hash }
}

/// The prefix of something shaped like a key, or `None`.
#[must_use]
pub fn api_key_prefix(candidate: &str) -> Option<&str> {
    let rest = candidate.strip_prefix("hg_")?;
    let (prefix, secret) = rest.split_once('_')?;
    let shaped = prefix.len() == PREFIX_LEN
        && secret.len() == SECRET_LEN
        && prefix
            .bytes()
            .chain(secret.bytes())
            .all(|b| b.is_ascii_alphanumeric());
    shaped.then_some(prefix)
}

/// SHA-256 of a key.
#[must_use]
pub fn hash_api_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// A SHA-256 hex fingerprint, for keying counters by something personal
/// (an email address) without storing it.
#[must_use]
pub fn fingerprint(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `candidate` hashes to `stored`, compared in constant time.
#[must_use]
pub fn api_key_matches(candidate: &str, stored: &[u8]) -> bool {
    let hash = hash_api_key(candidate);
    hash.len() == stored.len()
        && hash
            .iter()
            .zip(stored)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_shaped_and_matches_only_its_hash() {
        let k = generate_api_key();
        assert_eq!(api_key_prefix(&k.key), Some(k.prefix.as_str()));
        assert!(api_key_matches(&k.key, &k.hash));
        let other = generate_api_key();
        assert!(!api_key_matches(&other.key, &k.hash));
        assert_ne!(k.prefix, other.prefix);
        assert!(
            !format!("{k:?}").contains(&k.key),
            "Debug never shows the key"
        );
    }

    #[test]
    fn only_key_shaped_strings_have_a_prefix() {
        for bad in [
            "",
            "hg_",
            "hg_short_x",
            "eyJhbGciOi.x.y",
            "hg_abcdefgh_tooshort",
            "hg_abcdefg!_0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(api_key_prefix(bad), None, "{bad}");
        }
    }
}
