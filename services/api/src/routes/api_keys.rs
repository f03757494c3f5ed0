//! `/v1/api-keys`: made, listed and revoked by admins (people, not keys).

use actix_web::{HttpResponse, web};
use heliograph_domain::{ApiKeyId, FieldError, Name, Role};
use heliograph_store::ApiKey;
use serde::Deserialize;
use serde_json::{Value, json};

use super::path_id;
use crate::auth::Member;
use crate::error::{ApiError, Fields, required};
use crate::startup::AppState;

/// `{"api_key": {"name", "scope"}}`.
#[derive(Deserialize)]
pub struct ApiKeyEnvelope {
    api_key: Option<ApiKeyInput>,
}

#[derive(Deserialize)]
struct ApiKeyInput {
    name: Option<String>,
    scope: Option<String>,
}

fn key_json(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "prefix": format!("hg_{}", k.prefix),
        "scope": k.scope,
        "created_at": heliograph_web::timestamp(k.created_at),
        "last_used_at": k.last_used_at.map(heliograph_web::timestamp),
        "revoked_at": k.revoked_at.map(heliograph_web::timestamp),
    })
}

/// Admins only, and only people: a key cannot mint or revoke keys.
fn key_manager(member: &Member) -> Result<heliograph_domain::UserId, ApiError> {
    member.require(Role::Admin)?;
    member.person().map(|(user, _)| user)
}

/// `POST /v1/api-keys`: answers the key itself, this once.
pub async fn create(
    member: Member,
    state: web::Data<AppState>,
    body: web::Json<ApiKeyEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let user = key_manager(&member)?;
    let input = body
        .into_inner()
        .api_key
        .ok_or_else(|| ApiError::field(FieldError::new("api_key", "missing", "is required")))?;
    let mut f = Fields::default();
    let name = f.check(required("name", input.name).and_then(|n| Name::parse("name", &n, 100)));
    let scope = f.check(match input.scope.as_deref().unwrap_or("read") {
        s @ ("read" | "read_write") => Ok(s.to_owned()),
        _ => Err(FieldError::new(
            "scope",
            "invalid",
            "must be `read` or `read_write`",
        )),
    });
    let (Some(name), Some(scope)) = (name, scope) else {
        return Err(f.into_error());
    };
    f.finish()?;
    let new = heliograph_auth::generate_api_key();
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let key = tx
        .create_api_key(name.as_str(), &scope, &new.prefix, &new.hash, user)
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
    let mut body = key_json(&key);
    body["key"] = Value::String(new.key);
    Ok(HttpResponse::Created().json(body))
}

/// `GET /v1/api-keys`: every key, revoked ones included, never a secret.
pub async fn list(member: Member, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    key_manager(&member)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let keys = tx.api_keys().await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(keys.iter().map(key_json).collect::<Vec<_>>()))
}

/// `DELETE /v1/api-keys/{id}`: the key stops working at once.
pub async fn revoke(
    member: Member,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ApiKeyId = path_id(&id)?;
    key_manager(&member)?;
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
    Ok(HttpResponse::NoContent().finish())
}
