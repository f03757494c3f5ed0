//! Who is calling: the `Member` extractor.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use heliograph_domain::{Role, SessionId, TenantId, UserId};

use crate::error::ApiError;
use crate::startup::AppState;

/// A signed-in member of a tenant. Extracting it checks the bearer token,
/// that its session is open and that the membership still exists, so logout
/// and removal take effect at once.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    /// The user.
    pub user: UserId,
    /// The tenant the session acts for.
    pub tenant: TenantId,
    /// The session the token belongs to.
    pub session: SessionId,
    /// The user's role there.
    pub role: Role,
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
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

impl FromRequest for Member {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))?;
            let token = token.ok_or(ApiError::Unauthorized)?;
            let claims = state
                .tokens
                .verify(&token)
                .map_err(|_| ApiError::Unauthorized)?;
            let mut tx = state.store.tenant_tx(claims.tid).await?;
            let role = tx.session_role(claims.sid, claims.sub).await?;
            tx.commit().await?;
            let role = role.ok_or(ApiError::Unauthorized)?;
            tracing::Span::current().record("tenant.id", tracing::field::display(claims.tid));
            Ok(Self {
                user: claims.sub,
                tenant: claims.tid,
                session: claims.sid,
                role,
            })
        })
    }
}
