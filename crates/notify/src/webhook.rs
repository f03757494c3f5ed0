//! Outgoing webhooks: signing per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>), and the address guard that keeps a
//! subscriber's URL from reaching into our own network (SSRF).
//!
//! Signing: the signed content is `{webhook-id}.{webhook-timestamp}.{body}`;
//! the signature is `v1,` + base64(HMAC-SHA256(key, content)), where the key
//! is the base64 part of the subscriber's `whsec_…` secret. Receivers verify
//! with any Standard Webhooks library.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

/// Whether a webhook may be sent to `ip`: not to loopback, private,
/// link-local (cloud metadata lives at 169.254.169.254 and fd00:ec2::254),
/// shared, unspecified, multicast, broadcast or documentation addresses —
/// unless the operator allows loopback (tests do) or private ranges.
#[must_use]
pub fn address_allowed(ip: IpAddr, allow: AllowedTargets) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4, allow),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_allowed(v4, allow),
            None => v6_allowed(v6, allow),
        },
    }
}

/// What the operator lets webhooks reach besides the public internet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowedTargets {
    /// 127.0.0.0/8 and ::1 (for tests and single-machine setups).
    pub loopback: bool,
    /// RFC 1918 and unique-local addresses (for receivers inside a private network).
    pub private: bool,
}

fn v4_allowed(ip: Ipv4Addr, allow: AllowedTargets) -> bool {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        return allow.loopback;
    }
    if ip.is_private() {
        return allow.private;
    }
    let shared = a == 100 && (64..=127).contains(&b); // 100.64.0.0/10, carrier-grade NAT
    let reserved = a >= 240 || a == 0; // 240/4 and 0/8
    let benchmarking = a == 198 && (b == 18 || b == 19); // 198.18.0.0/15
    !(ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || shared
        || reserved
        || benchmarking)
}

fn v6_allowed(ip: Ipv6Addr, allow: AllowedTargets) -> bool {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        return allow.loopback;
    }
    let unique_local = (first & 0xfe00) == 0xfc00; // fc00::/7 (includes fd00:ec2::254)
    if unique_local {
        return allow.private;
    }
    let link_local = (first & 0xffc0) == 0xfe80; // fe80::/10
    let documentation = first == 0x2001 && ip.segments()[1] == 0x0db8; // 2001:db8::/32
    let nat64 = first == 0x0064 && ip.segments()[1] == 0xff9b; // 64:ff9b::/96 may reach v4 privates
    !(ip.is_unspecified() || ip.is_multicast() || link_local || documentation || nat64)
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

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let none = AllowedTargets::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!address_allowed(ip, none), "{ip} must be refused");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(address_allowed(ip, none), "{ip} is public");
        }
        let loopback = AllowedTargets {
            loopback: true,
            private: false,
        };
        assert!(address_allowed("127.0.0.1".parse().unwrap(), loopback));
        assert!(address_allowed("::1".parse().unwrap(), loopback));
        assert!(!address_allowed("10.0.0.1".parse().unwrap(), loopback));
        assert!(!address_allowed(
            "169.254.169.254".parse().unwrap(),
            AllowedTargets {
                loopback: true,
                private: true
            }
        ));
    }
}
