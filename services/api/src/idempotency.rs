//! `Idempotency-Key` on POST: the first response to a key is stored and
//! replayed, byte for byte, to the same actor for 24 hours, so a client that
//! retries after a timeout never opens the incident twice.
//!
//! The key is reserved in PostgreSQL before the handler runs (a concurrent
//! retry gets 409 `idempotency_in_progress`); the same key with another
//! body or path is refused (422). A 5xx is not stored, so a retry runs
//! again. Keys are scoped per tenant and actor; the worker's clock deletes
//! them after 24 hours.
//!
//! A response that shows a secret once (a new API key, a webhook signing
//! secret, a session token) is marked by its handler with [`ShownOnce`]: the
//! stored copy leaves those fields out and names them in
//! `secrets_withheld` (and the `Secrets-Withheld` header), so the database
//! never holds the secret and a replay says why it is missing.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};
use heliograph_domain::FieldError;
use heliograph_store::{IdempotencyKey, IdempotencyRecord};
use sha2::{Digest, Sha256};

use crate::auth::Member;
use crate::error::ApiError;
use crate::startup::AppState;

/// How long a response is replayed.
const WINDOW: time::Duration = time::Duration::hours(24);

/// The mark of a response whose JSON body shows secrets once: the names of
/// its top-level fields that carry them. Its stored (replayed) copy goes
/// without them.
#[derive(Debug, Clone, Copy)]
pub struct ShownOnce(pub &'static [&'static str]);

impl ShownOnce {
    /// Marks `response` as showing `fields` once.
    pub fn mark(mut response: HttpResponse, fields: &'static [&'static str]) -> HttpResponse {
        response.extensions_mut().insert(Self(fields));
        response
    }
}

/// The header a replay names withheld secrets in.
const WITHHELD_HEADER: &str = "secrets-withheld";

/// What is kept of a body showing `fields` once: the body without them, and
/// `secrets_withheld` naming them. A body that is not a JSON object (none
/// is, today) is kept as that field alone: nothing of it can be vouched for.
fn withhold(body: &[u8], fields: &[&str]) -> Vec<u8> {
    let mut value = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(object) = value.as_object_mut() {
        for field in fields {
            object.remove(*field);
        }
        object.insert("secrets_withheld".to_owned(), serde_json::json!(fields));
    }
    serde_json::to_vec(&value).unwrap_or_default()
}

/// The middleware, for the `/v1` scope.
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let key = match req.headers().get("idempotency-key") {
        Some(value) if req.method() == Method::POST => value.to_str().ok().map(str::to_owned),
        _ => return next.call(req).await,
    };
    let Some(key) =
        key.filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
    else {
        return Err(ApiError::field(FieldError::new(
            "Idempotency-Key",
            "invalid",
            "must be 1 to 255 visible ASCII characters",
        ))
        .into());
    };
    // Who asks: without valid credentials the handler answers 401 itself.
    let Ok(member) = req.extract::<Member>().await else {
        return next.call(req).await;
    };
    req.extensions_mut().insert(member);
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let body = req.extract::<web::Bytes>().await?;
    req.set_payload(Payload::from(body.clone()));
    let actor = member.actor.to_string();
    let hash = Sha256::digest(&body);
    let path = req.path().to_owned();
    let record = {
        let mut tx = state
            .store
            .tenant_tx(member.tenant)
            .await
            .map_err(ApiError::from)?;
        let record = tx
            .reserve_idempotency_key(
                &IdempotencyKey {
                    actor: &actor,
                    key: &key,
                    method: "POST",
                    path: &path,
                    request_hash: &hash,
                },
                time::OffsetDateTime::now_utc() - WINDOW,
            )
            .await
            .map_err(ApiError::from)?;
        tx.commit().await.map_err(ApiError::from)?;
        record
    };
    match record {
        IdempotencyRecord::Reserved => {}
        IdempotencyRecord::Mismatch => {
            return Err(ApiError::field(FieldError::new(
                "Idempotency-Key",
                "reused",
                "this key came with another request; use a new key",
            ))
            .into());
        }
        IdempotencyRecord::InProgress => {
            return Err(ApiError::Conflict {
                code: "idempotency_in_progress",
                detail: "A request with this key is still running; retry shortly.",
            }
            .into());
        }
        IdempotencyRecord::Done {
            status,
            headers,
            body,
        } => {
            let mut replay =
                HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
            for (name, value) in headers {
                replay.insert_header((name, value));
            }
            replay.insert_header(("Idempotency-Replayed", "true"));
            return Ok(req.into_response(replay.body(body)));
        }
    }

    let response = next.call(req).await;
    let (req, response) = match response {
        Ok(r) => r.into_parts(),
        Err(err) => {
            release(&state, &member, &actor, &key).await;
            return Err(err);
        }
    };
    let status = response.status();
    if status.is_server_error() {
        release(&state, &member, &actor, &key).await;
        return Ok(ServiceResponse::new(req, response));
    }
    let (head, body) = response.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("Failed to read a response body")))?;
    let mut headers: Vec<(String, String)> = [header::CONTENT_TYPE, header::LOCATION]
        .iter()
        .filter_map(|name| {
            head.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| (name.to_string(), v.to_owned()))
        })
        .collect();
    let shown_once = head.extensions().get::<ShownOnce>().copied();
    let stored = match shown_once {
        Some(ShownOnce(fields)) => {
            headers.push((WITHHELD_HEADER.to_owned(), fields.join(", ")));
            withhold(&bytes, fields)
        }
        None => bytes.to_vec(),
    };
    let saved = async {
        let mut tx = state.store.tenant_tx(member.tenant).await?;
        tx.save_idempotent_response(&actor, &key, status.as_u16(), &headers, &stored)
            .await?;
        tx.commit().await
    }
    .await;
    if let Err(err) = saved {
        // The change is made; only the replay is lost. Free the key rather
        // than leave it "in progress" for a day.
        tracing::error!(error = %err, "could not store an idempotent response");
        release(&state, &member, &actor, &key).await;
    }
    let response = head.set_body(bytes.boxed());
    Ok(ServiceResponse::new(req, response))
}

async fn release(state: &AppState, member: &Member, actor: &str, key: &str) {
    let result = async {
        let mut tx = state.store.tenant_tx(member.tenant).await?;
        tx.release_idempotency_key(actor, key).await?;
        tx.commit().await
    }
    .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "could not release an idempotency key");
    }
}
