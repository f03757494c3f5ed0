//! The one error type of the HTTP API: every failure becomes
//! `{"error": {"code", "detail", "fields"?}}` with a stable `code`, and nothing
//! internal reaches the client.
//!
//! Which error a request gets is its handler's decision; the domain's field
//! errors are converted here, not defined here.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use heliograph_domain::FieldError;
use heliograph_store::StoreError;
use serde::Serialize;

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or a field is invalid (422).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// The body is not JSON (400).
    #[error("malformed body: {0}")]
    MalformedBody(String),
    /// The body is neither JSON nor form-encoded (415).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Nothing here, or nothing this caller may know about (404).
    #[error("not found")]
    NotFound,
    /// No valid credentials (401).
    #[error("unauthorized")]
    Unauthorized,
    /// Wrong email or password, said the same way for both (401).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Valid credentials, insufficient role (403).
    #[error("forbidden")]
    Forbidden,
    /// Sending to addresses the team typed in (or turning SMS on) before an
    /// owner of the tenant has verified their email address (403).
    #[error("email unverified")]
    EmailUnverified,
    /// A cookie-authenticated change without the session's CSRF token (403).
    #[error("CSRF check failed")]
    CsrfFailed,
    /// The request conflicts with existing data (409).
    #[error("conflict: {detail}")]
    Conflict {
        /// Stable code, e.g. `slug_taken`.
        code: &'static str,
        /// Sentence for a human.
        detail: &'static str,
    },
    /// The path exists but does not serve this method (405, with `Allow`).
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The methods the path serves, comma-separated (the `Allow` header).
        allow: String,
    },
    /// Too many requests (429, with `Retry-After`).
    #[error("rate limited")]
    RateLimited {
        /// Seconds until the window resets.
        retry_after_secs: u64,
    },
    /// One more would pass the plan's limit (402): what, how many the plan
    /// allows, and where to upgrade.
    #[error("plan limit")]
    PlanLimit {
        /// The refusal, as the domain states it.
        refusal: heliograph_domain::PlanLimit,
        /// The dashboard's billing page.
        upgrade_url: String,
    },
    /// A dependency is down (503).
    #[error("unavailable")]
    Unavailable,
    /// A Stripe request failed: Stripe could not be reached (503
    /// `stripe_unavailable`) or refused it (502 `stripe_error`).
    #[error("stripe")]
    Stripe {
        /// Whether trying again may succeed.
        transient: bool,
    },
    /// A Stripe webhook whose signature does not hold (400).
    #[error("invalid signature")]
    InvalidSignature,
    /// PostgreSQL did not answer within its budget: no connection within the
    /// acquire timeout, a statement cancelled by `statement_timeout`, a lost
    /// connection, or the request deadline passed (503, with `Retry-After`).
    #[error("database unavailable")]
    DatabaseUnavailable,
    /// A bug or an outage; logged, never shown (500).
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// Seconds a client is told to wait after `database_unavailable`: about what
/// a failover or a restart of PostgreSQL takes.
const DATABASE_RETRY_AFTER_SECS: u64 = 5;

impl From<anyhow::Error> for ApiError {
    /// An error that says the database did not answer, wherever in the
    /// chain, is `database_unavailable`; anything else is `internal`.
    fn from(err: anyhow::Error) -> Self {
        if err.chain().any(heliograph_store::is_unavailable) {
            tracing::warn!(error = format!("{err:#}"), "database unavailable");
            Self::DatabaseUnavailable
        } else {
            Self::Internal(err)
        }
    }
}

/// The body of every error answer: `{"error": {"code", "detail", "fields"?}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable, machine-readable: `validation_failed`, `malformed_body`,
    /// `unsupported_media_type`, `not_found`, `unauthorized`,
    /// `invalid_credentials`, `forbidden`, `email_unverified`, `csrf_failed`,
    /// `method_not_allowed`, `rate_limited`, `plan_limit`, `unavailable`,
    /// `stripe_unavailable`, `stripe_error`, `invalid_signature`,
    /// `database_unavailable`, `internal`, or a conflict's own code
    /// (`slug_taken`, `last_owner`, …).
    code: &'a str,
    /// A sentence for a human.
    detail: &'a str,
    /// With `validation_failed` only: every invalid field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<FieldError>>)]
    fields: Option<&'a [FieldError]>,
    /// With `plan_limit` only: the limit reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<LimitReached<'a>>,
}

/// The limit a `plan_limit` refusal reached.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LimitReached<'a> {
    /// What is limited: `pages`, `components_per_page`,
    /// `subscribers_per_page`, `team_members`, `custom_domains`,
    /// `texts_per_month`, `emails_per_month`, `api_requests_per_minute`.
    #[schema(value_type = String)]
    name: &'a str,
    /// The plan in force.
    plan: &'a str,
    /// How many the plan allows.
    allowed: u32,
    /// Where an owner upgrades.
    upgrade_url: &'a str,
}

impl ApiError {
    /// One invalid field.
    pub fn field(err: FieldError) -> Self {
        Self::Validation(vec![err])
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::MalformedBody(_) => "malformed_body",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::NotFound => "not_found",
            Self::Unauthorized => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden => "forbidden",
            Self::EmailUnverified => "email_unverified",
            Self::CsrfFailed => "csrf_failed",
            Self::Conflict { code, .. } => code,
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::RateLimited { .. } => "rate_limited",
            Self::PlanLimit { .. } => "plan_limit",
            Self::Unavailable => "unavailable",
            Self::Stripe { transient: true } => "stripe_unavailable",
            Self::Stripe { transient: false } => "stripe_error",
            Self::InvalidSignature => "invalid_signature",
            Self::DatabaseUnavailable => "database_unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthorized | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::EmailUnverified | Self::CsrfFailed => StatusCode::FORBIDDEN,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PlanLimit { .. } => StatusCode::PAYMENT_REQUIRED,
            Self::Unavailable | Self::DatabaseUnavailable | Self::Stripe { transient: true } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Stripe { transient: false } => StatusCode::BAD_GATEWAY,
            Self::InvalidSignature => StatusCode::BAD_REQUEST,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let limit_sentence;
        let detail: &str = match self {
            Self::PlanLimit { refusal, .. } => {
                limit_sentence = format!(
                    "The {} plan's limit on {} is {}; upgrade to add more.",
                    refusal.plan,
                    refusal.limit.counted(),
                    refusal.allowed
                );
                &limit_sentence
            }
            Self::Validation(_) => "One or more fields are invalid.",
            Self::MalformedBody(reason) => reason,
            Self::UnsupportedMediaType => {
                "Send the body as application/json or application/x-www-form-urlencoded."
            }
            Self::NotFound => "Not found.",
            Self::Unauthorized => "Missing or invalid credentials.",
            Self::InvalidCredentials => {
                "The email or the password is wrong, or the address is not verified yet."
            }
            Self::Forbidden => "Your role does not allow this.",
            Self::EmailUnverified => {
                "Verify your email address first: until an owner of this account has, nothing \
                 goes to addresses the team types in (email and SMS subscribers, invitations) \
                 and SMS stays off."
            }
            Self::CsrfFailed => "Send the session's CSRF token in X-CSRF-Token.",
            Self::Conflict { detail, .. } => detail,
            Self::MethodNotAllowed { .. } => {
                "This path does not serve this method; Allow names the ones it does."
            }
            Self::RateLimited { .. } => "Too many requests; retry after the time in Retry-After.",
            Self::Unavailable => "A dependency is unavailable; try again shortly.",
            Self::Stripe { transient: true } => {
                "Stripe could not be reached; nothing was changed. Try again shortly."
            }
            Self::Stripe { transient: false } => {
                "Stripe refused the request; nothing was changed. The operator has the details."
            }
            Self::InvalidSignature => {
                "The Stripe-Signature header is missing, stale, or signed by no current secret."
            }
            Self::DatabaseUnavailable => {
                "The database did not answer in time; retry after the time in Retry-After."
            }
            Self::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "request failed");
                "Something went wrong on our side."
            }
        };
        let fields = match self {
            Self::Validation(fields) => Some(fields.as_slice()),
            _ => None,
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unauthorized) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Self::MethodNotAllowed { allow } = self
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            response.insert_header((header::ALLOW, value));
        }
        if let Self::RateLimited { retry_after_secs } = self {
            response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        if matches!(self, Self::DatabaseUnavailable) {
            response.insert_header((header::RETRY_AFTER, DATABASE_RETRY_AFTER_SECS.to_string()));
        }
        let limit = match self {
            Self::PlanLimit {
                refusal,
                upgrade_url,
            } => Some(LimitReached {
                name: refusal.limit.as_str(),
                plan: &refusal.plan,
                allowed: refusal.allowed,
                upgrade_url,
            }),
            _ => None,
        };
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                detail,
                fields,
                limit,
            },
        })
    }
}

impl From<heliograph_domain::ClaimRefusal> for ApiError {
    fn from(refusal: heliograph_domain::ClaimRefusal) -> Self {
        use heliograph_domain::ClaimRefusal;
        match refusal {
            ClaimRefusal::Held => Self::Conflict {
                code: "domain_taken",
                detail: "This hostname is verified for another page.",
            },
            ClaimRefusal::Taken => Self::Conflict {
                code: "domain_taken",
                detail: "Another account verified this hostname first; this claim no longer counts. Delete it, and add the hostname again once the other account's domain has stopped.",
            },
            ClaimRefusal::PendingLimit => Self::Conflict {
                code: "pending_domain_limit",
                detail: "This team has as many custom domains waiting for verification as it may have; verify or delete one first (pending domains also expire).",
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound,
            StoreError::Invalid(field) => Self::field(field),
            StoreError::Conflict { constraint } => match constraint.as_str() {
                "tenants_slug_key" | "pages_slug_key" => Self::Conflict {
                    code: "slug_taken",
                    detail: "This slug is already taken.",
                },
                "users_email_key" => Self::Conflict {
                    code: "email_taken",
                    detail: "An account with this email already exists.",
                },
                "memberships_pkey" => Self::Conflict {
                    code: "already_member",
                    detail: "This address is a member of the team already.",
                },
                "invitations_pending_key" => Self::Conflict {
                    code: "already_invited",
                    detail: "This address has a pending invitation; revoke it to invite again.",
                },
                "incident_templates_page_name_key" => Self::Conflict {
                    code: "template_name_taken",
                    detail: "This page has a template of this name already.",
                },
                "postmortem_published" => Self::Conflict {
                    code: "postmortem_published",
                    detail: "The postmortem is published already; delete it to start over.",
                },
                "domains_tenant_hostname_key" => Self::Conflict {
                    code: "domain_taken",
                    detail: "One of your pages has claimed this hostname already.",
                },
                "domains_verified_hostname_key" => Self::Conflict {
                    code: "domain_taken",
                    detail: "This hostname is verified for another page.",
                },
                "subscribers_page_email_key"
                | "subscribers_page_phone_key"
                | "subscribers_page_endpoint_key" => Self::Conflict {
                    code: "already_subscribed",
                    detail: "This address is already subscribed to this page.",
                },
                _ => Self::Conflict {
                    code: "conflict",
                    detail: "This conflicts with existing data.",
                },
            },
            StoreError::Unavailable { source, at } => {
                tracing::warn!(error = %source, at = %at, "database unavailable");
                Self::DatabaseUnavailable
            }
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

/// Collects field errors while parsing a body, so one response lists them all.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// Keeps the value, or records the error and answers `None`.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }

    /// Records an error.
    pub fn push(&mut self, err: FieldError) {
        self.0.push(err);
    }

    /// The recorded errors as a response; for when a required value is missing.
    #[must_use]
    pub fn into_error(self) -> ApiError {
        ApiError::Validation(self.0)
    }

    /// `Ok` when no error was recorded.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// A required field, or a `missing` error for it.
pub fn required<T>(field: &'static str, value: Option<T>) -> Result<T, FieldError> {
    value.ok_or_else(|| FieldError::new(field, "missing", "is required"))
}

/// The resource object a body is wrapped in (`{"component": {...}}`), or a
/// 422 naming it as missing.
pub fn envelope<T>(name: &'static str, value: Option<T>) -> Result<T, ApiError> {
    required(name, value).map_err(ApiError::field)
}

/// Turns actix's JSON extraction failures into API errors: syntax → 400, shape → 422.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    let api = match err {
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::field(FieldError::new(
            "body",
            "invalid",
            // serde's message names the field and the expected type; it holds no server internals.
            e.to_string(),
        )),
        JsonPayloadError::ContentType => {
            ApiError::MalformedBody("Content-Type must be application/json.".to_owned())
        }
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::MalformedBody("The body is too large.".to_owned())
        }
        _ => ApiError::MalformedBody("The body is not valid JSON.".to_owned()),
    };
    api.into()
}
