//! How requests come in: bodies (JSON or form-encoded, wrapped in the
//! resource's name), Statuspage's `.json` path suffix, and list parameters
//! with their `Link` and `X-Total-Count` answers.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use heliograph_domain::FieldError;
use heliograph_store::{ListQuery, Listed};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{ApiError, Fields};

/// Largest accepted body.
const BODY_LIMIT: usize = 64 * 1024;

/// A request body: `application/json`, or `application/x-www-form-urlencoded`
/// with Rails-style brackets (`component[name]=API&component[status]=major_outage`),
/// as Statuspage's clients send.
pub struct Input<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Input<T> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(|_| {
                ApiError::MalformedBody(format!("The body must be at most {BODY_LIMIT} bytes."))
            })?;
            if bytes.len() > BODY_LIMIT {
                return Err(ApiError::MalformedBody(format!(
                    "The body must be at most {BODY_LIMIT} bytes."
                ))
                .into());
            }
            let value = match content_type.as_str() {
                "application/x-www-form-urlencoded" => serde_qs::Config::new()
                    .max_depth(4)
                    .use_form_encoding(true)
                    .deserialize_bytes(&bytes)
                    .map_err(|e| {
                        ApiError::field(FieldError::new("body", "invalid", e.to_string()))
                    })?,
                "application/json" | "" => serde_json::from_slice(&bytes).map_err(|e| {
                    if e.is_data() {
                        ApiError::field(FieldError::new("body", "invalid", e.to_string()))
                    } else {
                        ApiError::MalformedBody("The body is not valid JSON.".to_owned())
                    }
                })?,
                _ => return Err(ApiError::UnsupportedMediaType.into()),
            };
            Ok(Self(value))
        })
    }
}

/// Deserializes a field that may be absent (`None`), null (`Some(None)`)
/// or set (`Some(Some(v))`), for PATCH bodies where null clears a value.
pub fn nullable<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// Lets older Statuspage clients append `.json` to any `/v1` path (but the
/// OpenAPI document's, whose name has it).
pub async fn strip_json_suffix(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let path = req.path();
    if path.starts_with("/v1/")
        && path != crate::openapi::DOCUMENT_PATH
        && let Some(stripped) = path.strip_suffix(".json")
    {
        let rewritten = match req.uri().query() {
            Some(q) => format!("{stripped}?{q}"),
            None => stripped.to_owned(),
        };
        if let Ok(uri) = rewritten.parse::<Uri>() {
            req.match_info_mut().get_mut().update(&uri);
            req.head_mut().uri = uri;
        }
    }
    next.call(req).await
}

/// `page`, `per_page` (or `limit`), `q` and `status` of a list request.
///
/// `status` is documented by each list that has one, with the values it
/// takes there (comma-separated: an array, `style=form`, `explode=false`);
/// elsewhere it is refused.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page number, from 1.
    #[param(minimum = 1)]
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
    /// Same as `per_page`, as some clients say it.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// Text the name contains (case-insensitive); no NUL characters.
    #[param(pattern = r"^[^\x00]*$")]
    q: Option<String>,
    #[param(ignore)]
    status: Option<String>,
}

/// The paging parameters of [`ListParams`] alone, as the lists without
/// search (events, the delivery log) document them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "documents the query that `ListParams` reads")]
pub struct PagingParams {
    /// Page number, from 1.
    #[param(minimum = 1)]
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
    /// Same as `per_page`, as some clients say it.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// Largest page of a list.
pub const MAX_PER_PAGE: u32 = 100;

impl ListParams {
    /// The store query, with `status` values checked by `parse_status`.
    pub fn query<S>(
        &self,
        parse_status: impl Fn(&str) -> Result<S, heliograph_domain::UnknownVariant>,
        as_str: impl Fn(S) -> &'static str,
    ) -> Result<ListQuery, ApiError> {
        let mut errors = Vec::new();
        let page = self.page.unwrap_or(1);
        if page == 0 {
            errors.push(FieldError::new("page", "invalid", "pages count from 1"));
        }
        let per_page = self.per_page.or(self.limit).unwrap_or(MAX_PER_PAGE);
        if per_page == 0 || per_page > MAX_PER_PAGE {
            errors.push(FieldError::new(
                "per_page",
                "invalid",
                format!("must be between 1 and {MAX_PER_PAGE}"),
            ));
        }
        // PostgreSQL text cannot hold NUL, so no name contains one; the
        // database would refuse the search as an error of its own.
        if self.q.as_deref().is_some_and(|q| q.contains('\0')) {
            errors.push(FieldError::new(
                "q",
                "invalid",
                "must not contain NUL characters",
            ));
        }
        let mut statuses = Vec::new();
        for raw in self
            .status
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match parse_status(raw) {
                Ok(s) => statuses.push(as_str(s).to_owned()),
                Err(e) => errors.push(FieldError::new("status", "invalid", e.to_string())),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(ListQuery {
            q: self
                .q
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(|q| q.chars().take(200).collect()),
            statuses,
            limit: i64::from(per_page),
            offset: i64::from(page - 1) * i64::from(per_page),
        })
    }

    /// The query for lists without a status filter.
    pub fn plain_query(&self) -> Result<ListQuery, ApiError> {
        if self.status.is_some() {
            return Err(ApiError::field(FieldError::new(
                "status",
                "invalid",
                "this list has no status to filter on",
            )));
        }
        self.query(
            |s| {
                Err::<(), _>(heliograph_domain::UnknownVariant {
                    value: s.to_owned(),
                    allowed: "",
                })
            },
            |()| "",
        )
    }
}

/// A list answer: the bare array Statuspage clients expect, with the total
/// in `X-Total-Count` and the neighbouring pages in `Link` (RFC 8288).
pub fn paginated<T, U: Serialize>(
    req: &HttpRequest,
    origin: &str,
    query: &ListQuery,
    listed: Listed<T>,
    render: impl Fn(&T) -> U,
) -> HttpResponse {
    let body: Vec<U> = listed.items.iter().map(render).collect();
    page_headers(req, origin, query, listed.total).json(body)
}

/// A 200 with the pagination headers of one page of a list of `total`
/// (`X-Total-Count`, `X-Per-Page`, `X-Page`, `Link`), for lists whose
/// answer is an object around the page (the delivery log).
pub fn page_headers(
    req: &HttpRequest,
    origin: &str,
    query: &ListQuery,
    total: i64,
) -> actix_web::HttpResponseBuilder {
    let per_page = query.limit.max(1);
    let page = query.offset / per_page + 1;
    let last = ((total + per_page - 1) / per_page).max(1);
    let mut params = query_pairs(req.query_string());
    params.retain(|(k, _)| k != "page");
    let link_to = |n: i64, rel: &str| {
        let mut p = params.clone();
        p.push(("page".to_owned(), n.to_string()));
        let qs = p
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        format!("<{origin}{}?{qs}>; rel=\"{rel}\"", req.path())
    };
    let mut links = vec![link_to(1, "first"), link_to(last, "last")];
    if page > 1 {
        links.push(link_to((page - 1).min(last), "prev"));
    }
    if page < last {
        links.push(link_to(page + 1, "next"));
    }
    let mut response = HttpResponse::Ok();
    response.insert_header(("X-Total-Count", total.to_string()));
    response.insert_header(("X-Per-Page", per_page.to_string()));
    response.insert_header(("X-Page", page.to_string()));
    if let Ok(value) = HeaderValue::from_str(&links.join(", ")) {
        response.insert_header((header::LINK, value));
    }
    response
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    serde_qs::Config::new()
        .max_depth(0)
        .deserialize_str::<std::collections::BTreeMap<String, String>>(query)
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// Percent-encodes a query component (RFC 3986 unreserved characters stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A place in an ordered list (`position`), counted from 1 as Statuspage does.
pub(crate) fn position(f: &mut Fields, raw: Option<i32>) -> Option<i32> {
    raw.and_then(|p| {
        f.check(if p >= 1 {
            Ok(p)
        } else {
            Err(FieldError::new(
                "position",
                "invalid",
                "positions count from 1",
            ))
        })
    })
}
