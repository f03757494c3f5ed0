//! Authentication: password hashing and session tokens.
//!
//! Passwords are hashed with argon2id (the crate's defaults, OWASP's
//! minimum: 19 MiB, 2 passes). Hashing is deliberately slow: callers run it
//! on a blocking thread, never on the async executor.
//!
//! Session tokens are HS256 JWTs whose algorithm, issuer, audience and
//! expiry are all checked; nothing in a token chooses how it is verified.
//!
//! Secrets kept at rest (webhook signing secrets, Slack and Teams URLs) are
//! sealed with the operator's key ring ([`SecretsKeyring`], `SECRETS_KEY`).
//!
//! Depends on `heliograph-domain` only.
//!
//! It decides nothing about who may do what (roles and scopes are the
//! domain's, checked by the api) and stores nothing: session rows, link
//! tokens and sealed values are kept by `heliograph-store`.

mod api_keys;
mod links;
mod sealed;

pub use api_keys::{
    NewApiKey, api_key_matches, api_key_prefix, fingerprint, generate_api_key, hash_api_key,
};
pub use links::{CONFIRM_PURPOSE, LinkSigner, SMS_CODE_PURPOSE, UNSUBSCRIBE_PURPOSE};
pub use sealed::{KeyringError, OpenError, SecretsKeyring, sealed_key_id};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use heliograph_domain::{Password, SessionId, TenantId, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// What can go wrong here.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token is malformed, forged, expired, or meant for someone else.
    #[error("invalid token")]
    InvalidToken(#[source] jsonwebtoken::errors::Error),
    /// Hashing failed (never for a valid input; kept for completeness).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The signing secret is unusable.
    #[error("the signing secret must be at least 32 bytes")]
    WeakSecret,
    /// Signing failed.
    #[error("token signing failed")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Hashes a new password with argon2id and a random salt; answers a PHC string.
pub fn hash_password(password: &Password) -> Result<String, AuthError> {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// A hash of a random password that nobody knows. Verifying against it
/// costs what verifying a real password costs, so a sign-in for an unknown
/// email takes as long as one with a wrong password.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let secret: String = (0..32)
            .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
            .collect();
        Password::parse("password", &secret)
            .ok()
            .and_then(|p| hash_password(&p).ok())
            .unwrap_or_default()
    })
}

/// Whether `candidate` matches the PHC string `hash`. A malformed hash matches nothing.
#[must_use]
pub fn verify_password(hash: &str, candidate: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The claims of a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: UserId,
    /// The tenant the session acts for.
    pub tid: TenantId,
    /// The server-side session, checked on every request so revocation is immediate.
    pub sid: SessionId,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
}

/// Issues and verifies session tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// The audience of session tokens for the management API.
    pub const AUDIENCE: &'static str = "heliograph-api";

    /// Keys from a secret of at least 32 bytes; tokens name `issuer` and live `ttl`.
    pub fn new(secret: &SecretString, issuer: &str, ttl: Duration) -> Result<Self, AuthError> {
        let bytes = secret.expose_secret().as_bytes();
        if bytes.len() < 32 {
            return Err(AuthError::WeakSecret);
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            issuer: issuer.to_owned(),
            audience: Self::AUDIENCE.to_owned(),
            ttl,
        })
    }

    /// How long a token lives.
    #[must_use]
    pub const fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `user` acting for `tenant` within `session`.
    pub fn issue(
        &self,
        user: UserId,
        tenant: TenantId,
        session: SessionId,
    ) -> Result<String, AuthError> {
        let now = OffsetDateTime::now_utc();
        let claims = Claims {
            sub: user,
            tid: tenant,
            sid: session,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now.unix_timestamp(),
            exp: (now + self.ttl).unix_timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AuthError::Sign)
    }

    /// The claims of a valid token: HS256 only, signature, expiry, issuer and audience checked.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(AuthError::InvalidToken)
    }

    /// The claims of a token that is valid in every way but its expiry, and
    /// has expired: for renewing a browser's session cookie, whose server-side
    /// session (checked by the caller) outlives each token. A token that has
    /// not expired is refused here (use [`TokenKeys::verify`]).
    pub fn verify_expired(&self, token: &str) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(AuthError::InvalidToken)?;
        if claims.exp + 5 < OffsetDateTime::now_utc().unix_timestamp() {
            Ok(claims)
        } else {
            Err(AuthError::InvalidToken(
                jsonwebtoken::errors::ErrorKind::InvalidToken.into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> TokenKeys {
        TokenKeys::new(
            &SecretString::from(secret.to_owned()),
            "https://heliograph.test",
            Duration::minutes(15),
        )
        .unwrap()
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn only_an_expired_but_genuine_token_verifies_as_expired() {
        let fresh = keys(SECRET);
        let stale = TokenKeys::new(
            &SecretString::from(SECRET.to_owned()),
            "https://heliograph.test",
            Duration::minutes(-20),
        )
        .unwrap();
        let (user, tenant, session) = (UserId::new(), TenantId::new(), SessionId::new());
        let expired = stale.issue(user, tenant, session).unwrap();
        assert!(fresh.verify(&expired).is_err());
        assert_eq!(fresh.verify_expired(&expired).unwrap().sid, session);
        let live = fresh.issue(user, tenant, session).unwrap();
        assert!(fresh.verify_expired(&live).is_err());
        assert!(
            keys("another-secret-another-secret-xx")
                .verify_expired(&expired)
                .is_err()
        );
    }

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let password = Password::parse("password", "correct horse battery").unwrap();
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse batterY"));
        assert!(!verify_password("not a hash", "correct horse battery"));
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let (user, tenant) = (UserId::new(), TenantId::new());
        let k = keys(SECRET);
        let claims = k
            .verify(&k.issue(user, tenant, SessionId::new()).unwrap())
            .unwrap();
        assert_eq!((claims.sub, claims.tid), (user, tenant));
        assert_eq!(claims.exp - claims.iat, 15 * 60);
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let token = keys("another-secret-another-secret-xx")
            .issue(UserId::new(), TenantId::new(), SessionId::new())
            .unwrap();
        assert!(keys(SECRET).verify(&token).is_err());
    }

    #[test]
    fn a_token_with_alg_none_is_refused() {
        let k = keys(SECRET);
        let token = k
            .issue(UserId::new(), TenantId::new(), SessionId::new())
            .unwrap();
        let payload = token.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"}, unsigned.
        let forged = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(k.verify(&forged).is_err());
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let k = keys(SECRET);
        let token = k
            .issue(UserId::new(), TenantId::new(), SessionId::new())
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        // Another tenant's id in an otherwise untouched token.
        let other = keys(SECRET)
            .issue(UserId::new(), TenantId::new(), SessionId::new())
            .unwrap();
        let forged_payload = other.split('.').nth(1).unwrap();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(k.verify(&forged).is_err());
    }

    #[test]
    fn a_token_claiming_another_algorithm_is_refused() {
        // HS/RS confusion: a token whose header says RS256 (or HS512), signed
        // with our secret used as if it were the key, must not verify.
        let k = keys(SECRET);
        let claims = k
            .verify(
                &k.issue(UserId::new(), TenantId::new(), SessionId::new())
                    .unwrap(),
            )
            .unwrap();
        for alg in [Algorithm::HS512, Algorithm::HS384] {
            let token = jsonwebtoken::encode(
                &Header::new(alg),
                &claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .unwrap();
            assert!(k.verify(&token).is_err(), "{alg:?}");
        }
        let rs_header = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"; // {"alg":"RS256","typ":"JWT"}
        let token = k
            .issue(UserId::new(), TenantId::new(), SessionId::new())
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert!(
            k.verify(&format!("{rs_header}.{}.{}", parts[1], parts[2]))
                .is_err()
        );
    }

    #[test]
    fn a_token_missing_a_required_claim_is_refused() {
        #[derive(Serialize)]
        struct NoExpiry {
            sub: UserId,
            tid: TenantId,
            sid: SessionId,
            iss: &'static str,
            aud: &'static str,
        }
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoExpiry {
                sub: UserId::new(),
                tid: TenantId::new(),
                sid: SessionId::new(),
                iss: "https://heliograph.test",
                aud: TokenKeys::AUDIENCE,
            },
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(keys(SECRET).verify(&token).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let k = TokenKeys {
            ttl: Duration::minutes(-10),
            ..keys(SECRET)
        };
        let token = k
            .issue(UserId::new(), TenantId::new(), SessionId::new())
            .unwrap();
        assert!(k.verify(&token).is_err());
    }

    #[test]
    fn a_token_for_another_issuer_or_audience_is_refused() {
        let k = keys(SECRET);
        let token = k
            .issue(UserId::new(), TenantId::new(), SessionId::new())
            .unwrap();
        let other_issuer = TokenKeys {
            issuer: "https://elsewhere.test".into(),
            ..keys(SECRET)
        };
        assert!(other_issuer.verify(&token).is_err());
        let other_audience = TokenKeys {
            audience: "another-service".into(),
            ..keys(SECRET)
        };
        assert!(other_audience.verify(&token).is_err());
    }

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash_that_nothing_matches() {
        assert!(dummy_hash().starts_with("$argon2id$"));
        assert!(!verify_password(dummy_hash(), ""));
        assert!(!verify_password(dummy_hash(), "correct horse battery"));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(
            TokenKeys::new(
                &SecretString::from("short".to_owned()),
                "x",
                Duration::minutes(1)
            ),
            Err(AuthError::WeakSecret)
        ));
    }
}
