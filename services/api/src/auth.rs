//! Who is calling: the `Member` extractor.
//!
//! Two kinds of credentials, both in `Authorization`:
//! - a session token (`Bearer <jwt>`), whose session must be open and whose
//!   membership must still exist, so logout and removal take effect at once;
//! - an API key (`OAuth <key>`, Statuspage's form, or `Bearer <key>`), which
//!   must exist unrevoked, so revocation takes effect at once;
//! - in a browser, the session token in an HttpOnly, Secure, SameSite=Lax
//!   cookie; a state-changing request made with it must also carry the
//!   session's CSRF token in `X-CSRF-Token` (SameSite alone leaves gaps, and
//!   an API on a page's own domain must not rely on it).

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use heliograph_domain::{ApiKeyId, Role, SessionId, TenantId, UserId};
use heliograph_store::{AuditActor, AuditEntry};

use crate::error::ApiError;
use crate::limits::Bucket;
use crate::startup::AppState;

/// Who acts: a person in a session, or a machine with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user.
    User {
        /// The user.
        user: UserId,
        /// The session the token belongs to.
        session: SessionId,
    },
    /// An API key.
    ApiKey {
        /// The key.
        key: ApiKeyId,
    },
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User { user, .. } => write!(f, "user:{user}"),
            Self::ApiKey { key } => write!(f, "api_key:{key}"),
        }
    }
}

/// Someone acting for a tenant, with a role there.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    /// The tenant.
    pub tenant: TenantId,
    /// The role: a user's membership role, or a key's scope (read → viewer,
    /// read-write → admin).
    pub role: Role,
    /// Who acts.
    pub actor: Actor,
    /// From which address (the peer, or the client a trusted proxy names).
    pub ip: Option<IpAddr>,
}

impl Member {
    /// Refuses (403) a member whose role ranks below `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.role.rank() >= needed.rank() {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// An audit log entry for a change this member made.
    pub fn audit<'a>(
        &self,
        action: &'a str,
        object_type: &'a str,
        object_id: uuid::Uuid,
        details: serde_json::Value,
    ) -> AuditEntry<'a> {
        let actor = match self.actor {
            Actor::User { user, .. } => AuditActor {
                kind: "user",
                id: user.as_uuid(),
            },
            Actor::ApiKey { key } => AuditActor {
                kind: "api_key",
                id: key.as_uuid(),
            },
        };
        AuditEntry {
            actor,
            action,
            object_type,
            object_id,
            ip: self.ip.map(|ip| ip.to_string()),
            details,
        }
    }

    /// The user and session, for what only a person may do (sessions, keys,
    /// the team); an API key is refused (403).
    pub fn person(&self) -> Result<(UserId, SessionId), ApiError> {
        match self.actor {
            Actor::User { user, session } => Ok((user, session)),
            Actor::ApiKey { .. } => Err(ApiError::Forbidden),
        }
    }
}

/// The client's address: the TCP peer, or, when `TRUST_PROXY_HEADERS` is
/// on (one proxy in front: Caddy or a load balancer), the last entry of
/// `X-Forwarded-For` — the one that proxy added. Earlier entries come from
/// the client and could say anything.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let trust = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.trust_proxy_headers);
    let forwarded = trust
        .then(|| {
            req.headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .last()
                .and_then(|last| last.trim().parse::<IpAddr>().ok())
        })
        .flatten();
    forwarded.or_else(|| req.peer_addr().map(|a| a.ip()))
}

enum Credential {
    Token(String),
    Key(String),
    /// The browser's session cookie, with the `X-CSRF-Token` header if any
    /// (needed, and checked, on state-changing requests).
    Cookie {
        token: String,
        csrf: Option<String>,
        unsafe_method: bool,
    },
}

fn credential(req: &HttpRequest) -> Option<Credential> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        let cookie = req.cookie(crate::routes::SESSION_COOKIE)?;
        return Some(Credential::Cookie {
            token: cookie.value().to_owned(),
            csrf: req
                .headers()
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            unsafe_method: !req.method().is_safe(),
        });
    };
    let value = value.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    let secret = secret.trim().to_owned();
    if scheme.eq_ignore_ascii_case("oauth") {
        Some(Credential::Key(secret))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        if heliograph_auth::api_key_prefix(&secret).is_some() {
            Some(Credential::Key(secret))
        } else {
            Some(Credential::Token(secret))
        }
    } else {
        None
    }
}

async fn by_token(state: &AppState, token: &str) -> Result<Member, ApiError> {
    let claims = state
        .tokens
        .verify(token)
        .map_err(|_| ApiError::Unauthorized)?;
    let mut tx = state.store.tenant_tx(claims.tid).await?;
    let role = tx.session_role(claims.sid, claims.sub).await?;
    tx.commit().await?;
    Ok(Member {
        tenant: claims.tid,
        role: role.ok_or(ApiError::Unauthorized)?,
        actor: Actor::User {
            user: claims.sub,
            session: claims.sid,
        },
        ip: None,
    })
}

async fn by_key(state: &AppState, key: &str) -> Result<Member, ApiError> {
    let prefix = heliograph_auth::api_key_prefix(key).ok_or(ApiError::Unauthorized)?;
    let stored = state
        .store
        .api_key_by_prefix(prefix)
        .await?
        .filter(|k| heliograph_auth::api_key_matches(key, &k.key_hash))
        .ok_or(ApiError::Unauthorized)?;
    let mut tx = state.store.tenant_tx(stored.tenant_id).await?;
    tx.touch_api_key(stored.id).await?;
    tx.commit().await?;
    Ok(Member {
        tenant: stored.tenant_id,
        role: stored.scope.role(),
        actor: Actor::ApiKey { key: stored.id },
        ip: None,
    })
}

/// The member of `tenant` a browser's session cookie names, if any: for the
/// members' view of a public page. A token of another tenant (or none, or a
/// forged one) is answered without touching the database.
pub(crate) async fn cookie_member_of(
    req: &HttpRequest,
    state: &AppState,
    tenant: TenantId,
) -> Option<Member> {
    let cookie = req.cookie(crate::routes::SESSION_COOKIE)?;
    let claims = state.tokens.verify(cookie.value()).ok()?;
    if claims.tid != tenant {
        return None;
    }
    by_token(state, cookie.value()).await.ok()
}

impl FromRequest for Member {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Checked once per request: a middleware that needed the caller
        // (Idempotency-Key) left it here, and limits are not counted twice.
        if let Some(member) = req.extensions().get::<Self>().copied() {
            return Box::pin(async move { Ok(member) });
        }
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let credential = credential(req);
        let ip = client_ip(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))?;
            let limiter = &state.limiter;
            limiter.hit_client(Bucket::ApiByIp, ip).await?;
            let mut member = match credential.ok_or(ApiError::Unauthorized)? {
                Credential::Token(token) => by_token(&state, &token).await?,
                Credential::Key(key) => by_key(&state, &key).await?,
                Credential::Cookie {
                    token,
                    csrf,
                    unsafe_method,
                } => {
                    let member = by_token(&state, &token).await?;
                    if unsafe_method {
                        let Actor::User { session, .. } = member.actor else {
                            return Err(ApiError::Unauthorized);
                        };
                        // The token is an HMAC of the session id: it verifies to exactly that id.
                        let valid = csrf
                            .and_then(|c| state.links.verify("csrf", &c))
                            .is_some_and(|id| id == session.as_uuid());
                        if !valid {
                            return Err(ApiError::CsrfFailed);
                        }
                    }
                    member
                }
            };
            member.ip = ip;
            let rate = state.api_rates.of(&state, member.tenant).await?;
            limiter
                .hit_at(Bucket::ApiByActor, &member.actor.to_string(), rate)
                .await?;
            let span = tracing::Span::current();
            span.record("tenant.id", tracing::field::display(member.tenant));
            span.record("actor", tracing::field::display(member.actor));
            Ok(member)
        })
    }
}
