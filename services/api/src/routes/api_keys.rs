//! `/v1/api-keys`: made, listed and revoked by admins (people, not keys).

use actix_web::{HttpResponse, web};
use heliograph_domain::{ApiKey, ApiKeyId, ApiKeyScope, FieldError, Name, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, envelope, required};
use crate::idempotency::ShownOnce;
use crate::openapi::{
    BadRequest, Forbidden, NotFound, TooManyRequests, Unauthorized, ValidationFailed,
};
use crate::startup::AppState;

/// `{"api_key": {"name", "scope"}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ApiKeyEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = ApiKeyInput)]
    api_key: Option<ApiKeyInput>,
}

/// A new key.
#[derive(Deserialize, utoipa::ToSchema)]
struct ApiKeyInput {
    /// A name for people, 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: Option<String>,
    /// `read` (acts as a viewer, the default) or `read_write` (as an admin).
    #[schema(value_type = Option<ApiKeyScope>)]
    scope: Option<String>,
}

/// An API key, without its secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiKeyResponse {
    id: Uuid,
    name: String,
    /// The key's visible start.
    prefix: String,
    /// `read` or `read_write`.
    scope: ApiKeyScope,
    created_at: String,
    /// To the minute.
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

/// A key just made, with its secret: shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewApiKeyResponse {
    #[serde(flatten)]
    #[schema(inline)]
    api_key: ApiKeyResponse,
    /// The key itself, for `Authorization: OAuth <key>` or `Bearer <key>`.
    key: String,
}

fn key_json(k: &ApiKey) -> ApiKeyResponse {
    ApiKeyResponse {
        id: k.id.as_uuid(),
        name: k.name.clone(),
        prefix: format!("hg_{}", k.prefix),
        scope: k.scope,
        created_at: heliograph_web::timestamp(k.created_at),
        last_used_at: k.last_used_at.map(heliograph_web::timestamp),
        revoked_at: k.revoked_at.map(heliograph_web::timestamp),
    }
}

/// Admins only, and only people: a key cannot mint or revoke keys.
pub(crate) fn key_manager(member: &Member) -> Result<heliograph_domain::UserId, ApiError> {
    member.require(Role::Admin)?;
    member.person().map(|(user, _)| user)
}

/// Makes an API key; answers the key itself, this once.
///
/// Admins only, and only people: a key cannot make keys.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api keys",
    operation_id = "create_api_key",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = ApiKeyEnvelope, content_type = "application/json",
        example = json!({"api_key": {"name": "monitoring", "scope": "read_write"}})),
    responses(
        (status = 201, description = "The key, with its secret.", body = NewApiKeyResponse),
        BadRequest, Unauthorized, Forbidden, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn create(
    member: Member,
    state: web::Data<AppState>,
    body: web::Json<ApiKeyEnvelope>,
) -> Result<HttpResponse, ApiError> {
    key_manager(&member)?;
    let input = envelope("api_key", body.into_inner().api_key)?;
    let (key, secret) = make(&state, &member, input.name, input.scope).await?;
    // Shown this once: an idempotent replay answers without it.
    Ok(ShownOnce::mark(
        HttpResponse::Created().json(NewApiKeyResponse {
            api_key: key_json(&key),
            key: secret,
        }),
        &["key"],
    ))
}

/// Makes a key named `name` with `scope` (`read` when absent) for an admin
/// person; answers it and its secret, which nothing keeps.
pub(crate) async fn make(
    state: &AppState,
    member: &Member,
    name: Option<String>,
    scope: Option<String>,
) -> Result<(ApiKey, String), ApiError> {
    let user = key_manager(member)?;
    let mut f = Fields::default();
    let name = f.check(required("name", name).and_then(|n| Name::parse("name", &n, 100)));
    let scope = f.check(scope.as_deref().map_or(Ok(ApiKeyScope::default()), |s| {
        s.parse::<ApiKeyScope>()
            .map_err(|_| FieldError::new("scope", "invalid", "must be `read` or `read_write`"))
    }));
    let (Some(name), Some(scope)) = (name, scope) else {
        return Err(f.into_error());
    };
    f.finish()?;
    let new = heliograph_auth::generate_api_key();
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let key = tx
        .create_api_key(name.as_str(), scope, &new.prefix, &new.hash, user)
        .await?;
    tx.audit(&member.audit(
        "api_key.created",
        "api_key",
        key.id.as_uuid(),
        json!({"name": key.name, "scope": key.scope, "prefix": key.prefix}),
    ))
    .await?;
    tx.commit().await?;
    tracing::info!(tenant.id = %member.tenant, api_key.id = %key.id, "API key created");
    Ok((key, new.key))
}

/// Revokes key `id` for an admin person (404 for another tenant's);
/// answers it.
pub(crate) async fn revoke_key(
    state: &AppState,
    member: &Member,
    id: ApiKeyId,
) -> Result<ApiKey, ApiError> {
    key_manager(member)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let key = tx.revoke_api_key(id).await?;
    tx.audit(&member.audit(
        "api_key.revoked",
        "api_key",
        id.as_uuid(),
        json!({"name": key.name}),
    ))
    .await?;
    tx.commit().await?;
    tracing::info!(tenant.id = %member.tenant, api_key.id = %id, "API key revoked");
    Ok(key)
}

/// Lists every key, revoked ones included, never a secret.
///
/// Admins only, and only people.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api keys",
    operation_id = "list_api_keys",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The keys.", body = Vec<ApiKeyResponse>),
        Unauthorized, Forbidden, TooManyRequests,
    ),
)]
pub async fn list(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    key_manager(&member)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let keys = tx.api_keys().await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(keys.iter().map(key_json).collect::<Vec<_>>()))
}

/// Revokes a key: it stops working at once.
///
/// Admins only, and only people.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "api keys",
    operation_id = "revoke_api_key",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "The key's id.")),
    responses(
        (status = 204, description = "Revoked."),
        Unauthorized, Forbidden, NotFound, TooManyRequests,
    ),
)]
pub async fn revoke(
    member: Member,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ApiKeyId = path_id(&id)?;
    revoke_key(&state, &member, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
