//! `/v1/pages`: a tenant's status pages and their settings.

use actix_web::{HttpRequest, HttpResponse, web};
use heliograph_domain::page::{parse_calling_codes, parse_partial_weight};
use heliograph_domain::{CallingCode, FieldError, Name, Role, Slug, SmsCheck, TimeZoneName};
use heliograph_domain::{Page, PageEdit};
use serde::{Deserialize, Serialize};

use crate::auth::Member;
use crate::error::{ApiError, Fields, envelope, required};
use crate::input::{Input, ListParams, nullable, paginated};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PaymentRequired, TooManyRequests, Unauthorized,
    UnsupportedMediaType, ValidationFailed,
};
use crate::page_scope::{Admin, AtPage, Viewer};
use crate::startup::AppState;

/// A page in management responses (Statuspage's page object, the fields Heliograph has).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PageResponse {
    id: String,
    name: String,
    /// The sub-domain label, also the `/status/<subdomain>/` path.
    subdomain: String,
    url: String,
    time_zone: String,
    headline: Option<String>,
    support_url: Option<String>,
    /// `basic`: Heliograph's branding is the colours and the logo below.
    branding: &'static str,
    logo_url: Option<String>,
    css_link_color: String,
    css_body_background_color: String,
    css_font_color: String,
    allow_email_subscribers: bool,
    /// Whether the page texts at all (readers subscribing by SMS, the team
    /// adding numbers, texts going out). Off until the team turns it on,
    /// which takes an owner whose email address is verified.
    allow_sms_subscribers: bool,
    allow_webhook_subscribers: bool,
    /// The calling code of the page's own country (`"44"`): texts go there
    /// while `sms_allowed_calling_codes` is empty.
    sms_calling_code: Option<String>,
    /// The countries texts may go to, by calling code, replacing the page's
    /// own; empty: the page's own only.
    sms_allowed_calling_codes: Vec<String>,
    /// Share of partial-outage time counted as down in uptime (docs/uptime.md).
    uptime_partial_weight: f64,
    created_at: String,
    updated_at: String,
}

pub(crate) fn page_response(state: &AppState, p: &Page) -> PageResponse {
    PageResponse {
        id: p.id.to_string(),
        name: p.name.clone(),
        subdomain: p.slug.to_string(),
        url: state.urls.page_url(p.slug.as_str()),
        time_zone: p.time_zone.to_string(),
        headline: p.headline.clone(),
        support_url: p.support_url.clone(),
        branding: "basic",
        logo_url: p.logo_url.clone(),
        css_link_color: p.brand_color.clone(),
        css_body_background_color: p.background_color.clone(),
        css_font_color: p.text_color.clone(),
        allow_email_subscribers: p.allow_email_subscribers,
        allow_sms_subscribers: p.allow_sms_subscribers,
        allow_webhook_subscribers: p.allow_webhook_subscribers,
        sms_calling_code: p.sms_calling_code.clone(),
        sms_allowed_calling_codes: p.sms_allowed_calling_codes.clone(),
        uptime_partial_weight: p.uptime_partial_weight,
        created_at: heliograph_web::timestamp(p.created_at),
        updated_at: heliograph_web::timestamp(p.updated_at),
    }
}

/// `{"page": {...}}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PageEnvelope {
    // Required: a body without it is 422 on the envelope.
    #[schema(required = true, value_type = PageInput)]
    page: Option<PageInput>,
}

/// The settings of a page; absent fields stay as they are, null clears.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub(crate) struct PageInput {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub(crate) name: Option<String>,
    /// 3 to 63 lowercase letters, digits and single inner hyphens, starting
    /// with a letter (a few names are reserved).
    #[schema(min_length = 3, max_length = 63, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub(crate) subdomain: Option<String>,
    /// An IANA time zone name, such as `Europe/London`.
    #[schema(max_length = 64, pattern = r"^[A-Za-z0-9_+\-/]+$")]
    pub(crate) time_zone: Option<String>,
    /// At most 255 characters; blank or null clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub(crate) headline: Option<Option<String>>,
    /// An `https://` URL of at most 2,000 characters; blank or null clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(
        max_length = 2000,
        pattern = r"^(\s*|(https://|http://localhost|http://127\.0\.0\.1)[^\s\x00-\x1f\x7f-\x9f]*)$"
    )]
    pub(crate) support_url: Option<Option<String>>,
    /// An `https://` URL of at most 2,000 characters; blank or null clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(
        max_length = 2000,
        pattern = r"^(\s*|(https://|http://localhost|http://127\.0\.0\.1)[^\s\x00-\x1f\x7f-\x9f]*)$"
    )]
    pub(crate) logo_url: Option<Option<String>>,
    /// `#rrggbb`.
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    pub(crate) css_link_color: Option<String>,
    /// `#rrggbb`.
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    pub(crate) css_body_background_color: Option<String>,
    /// `#rrggbb`.
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    pub(crate) css_font_color: Option<String>,
    pub(crate) allow_email_subscribers: Option<bool>,
    pub(crate) allow_sms_subscribers: Option<bool>,
    pub(crate) allow_webhook_subscribers: Option<bool>,
    /// The calling code of the page's own country, with or without `+`
    /// (`"44"`, `"+1"`); null clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(pattern = r"^\s*(\+?[1-9][0-9]{0,2})?\s*$")]
    pub(crate) sms_calling_code: Option<Option<String>>,
    /// The countries texts may go to (calling codes), at most 50; `[]`: the
    /// page's own only.
    #[schema(max_items = 50)]
    pub(crate) sms_allowed_calling_codes: Option<Vec<String>>,
    /// How much of a partial outage counts as downtime in uptime, 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub(crate) uptime_partial_weight: Option<f64>,
}

fn colour(f: &mut Fields, field: &'static str, raw: Option<String>) -> Option<String> {
    raw.and_then(|c| {
        let ok =
            c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit());
        f.check(if ok {
            Ok(c.to_ascii_lowercase())
        } else {
            Err(FieldError::new(
                field,
                "invalid",
                "must be a colour, #rrggbb",
            ))
        })
    })
}

/// An absolute https URL (http on localhost), at most 2,000 characters.
pub(crate) fn web_url(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let raw = raw.trim();
    let ok = raw.len() <= 2000
        && (raw.starts_with("https://")
            || raw.starts_with("http://localhost")
            || raw.starts_with("http://127.0.0.1"))
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::new(field, "invalid", "must be an https URL"))
    }
}

fn optional_text(
    f: &mut Fields,
    field: &'static str,
    raw: Option<Option<String>>,
    check: impl Fn(&'static str, &str) -> Result<String, FieldError>,
) -> Option<Option<String>> {
    raw.map(|v| {
        v.filter(|s| !s.trim().is_empty())
            .and_then(|s| f.check(check(field, &s)))
    })
}

/// Applies the SMS rules a page change must keep (see
/// [`PageEdit::sms_check`]), asking the store whether the tenant has a
/// verified owner only when the rules need to know.
async fn check_sms(
    state: &AppState,
    tx: &mut heliograph_store::TenantTx,
    before: Option<&Page>,
    edit: &PageEdit,
) -> Result<(), ApiError> {
    if edit.turns_sms_on(before) {
        // A plan without texts cannot turn SMS on (402 `plan_limit`).
        crate::plan_limits::admit_one(state, tx, heliograph_domain::Limit::TextsPerMonth, None)
            .await?;
    }
    match edit.sms_check(before) {
        SmsCheck::Free => Ok(()),
        SmsCheck::VerifiedOwner(_) if !tx.tenant_verified().await? => {
            Err(ApiError::EmailUnverified)
        }
        SmsCheck::VerifiedOwner(countries) => countries.map_err(ApiError::field),
    }
}

fn parse_edit(input: PageInput) -> Result<PageEdit, ApiError> {
    let mut f = Fields::default();
    let edit = PageEdit {
        name: input
            .name
            .and_then(|n| f.check(Name::parse("name", &n, 255))),
        slug: input
            .subdomain
            .and_then(|s| f.check(Slug::parse("subdomain", &s))),
        time_zone: input
            .time_zone
            .and_then(|z| f.check(TimeZoneName::parse("time_zone", &z))),
        headline: optional_text(&mut f, "headline", input.headline, |field, s| {
            Name::parse(field, s, 255).map(|n| n.as_str().to_owned())
        }),
        support_url: optional_text(&mut f, "support_url", input.support_url, web_url),
        logo_url: optional_text(&mut f, "logo_url", input.logo_url, web_url),
        brand_color: colour(&mut f, "css_link_color", input.css_link_color),
        background_color: colour(
            &mut f,
            "css_body_background_color",
            input.css_body_background_color,
        ),
        text_color: colour(&mut f, "css_font_color", input.css_font_color),
        allow_email_subscribers: input.allow_email_subscribers,
        allow_sms_subscribers: input.allow_sms_subscribers,
        allow_webhook_subscribers: input.allow_webhook_subscribers,
        sms_calling_code: input.sms_calling_code.map(|code| {
            code.filter(|c| !c.trim().is_empty())
                .and_then(|c| f.check(CallingCode::parse("sms_calling_code", &c)))
        }),
        sms_allowed_calling_codes: input.sms_allowed_calling_codes.and_then(|codes| {
            parse_calling_codes("sms_allowed_calling_codes", &codes)
                .map_err(|errors| errors.into_iter().for_each(|e| f.push(e)))
                .ok()
        }),
        uptime_partial_weight: input
            .uptime_partial_weight
            .and_then(|w| f.check(parse_partial_weight("uptime_partial_weight", w))),
    };
    f.finish()?;
    Ok(edit)
}

/// Adds a page from `input` (name and subdomain required; the time zone
/// UTC when absent; the other settings as an update gives them), with its
/// audit entry: what `POST /v1/pages` and the dashboard's form do. Refusals
/// of the input come before any write.
pub(crate) async fn create_page(
    state: &AppState,
    tx: &mut heliograph_store::TenantTx,
    member: &Member,
    input: PageInput,
) -> Result<Page, ApiError> {
    let mut f = Fields::default();
    let name =
        f.check(required("name", input.name.clone()).and_then(|n| Name::parse("name", &n, 255)));
    let slug = f.check(
        required("subdomain", input.subdomain.clone()).and_then(|s| Slug::parse("subdomain", &s)),
    );
    let zone = input
        .time_zone
        .clone()
        .map_or(Ok(TimeZoneName::utc()), |z| {
            TimeZoneName::parse("time_zone", &z)
        });
    let zone = f.check(zone);
    let (Some(name), Some(slug), Some(zone)) = (name, slug, zone) else {
        return Err(f.into_error());
    };
    f.finish()?;
    let edit = parse_edit(PageInput {
        name: None,
        subdomain: None,
        time_zone: None,
        ..input
    })?;
    check_sms(state, tx, None, &edit).await?;
    crate::plan_limits::admit_one(state, tx, heliograph_domain::Limit::Pages, None).await?;
    let page = tx.create_page(&name, &slug, &zone).await?;
    let page = tx.edit_page(page.id, &edit).await?;
    tx.audit(&member.audit(
        "page.created",
        "page",
        page.id.as_uuid(),
        serde_json::json!({"name": page.name, "subdomain": page.slug}),
    ))
    .await?;
    Ok(page)
}

/// Lists the tenant's pages (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages",
    tag = "pages",
    operation_id = "list_pages",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(ListParams),
    responses(
        crate::openapi::PageList,
        Unauthorized, ValidationFailed, TooManyRequests,
    ),
)]
pub async fn list(
    member: Member,
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params.plain_query()?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let listed = tx.list_pages(&query).await?;
    tx.commit().await?;
    Ok(paginated(&req, state.urls.origin(), &query, listed, |p| {
        page_response(&state, p)
    }))
}

/// Adds a page to the tenant (admin).
#[utoipa::path(
    post,
    path = "/v1/pages",
    tag = "pages",
    operation_id = "create_page",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    request_body(content(
        (PageEnvelope = "application/json", example = json!({"page": {"name": "Acme Cloud", "subdomain": "acme-cloud"}})),
        (PageEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "The new page.", body = PageResponse),
        BadRequest, Unauthorized, Forbidden, Conflict, UnsupportedMediaType, ValidationFailed,
        TooManyRequests, PaymentRequired,
    ),
)]
pub async fn create(
    member: Member,
    state: web::Data<AppState>,
    body: Input<PageEnvelope>,
) -> Result<HttpResponse, ApiError> {
    member.require(Role::Admin)?;
    let input = envelope("page", body.0.page)?;
    let mut tx = state.store.tenant_tx(member.tenant).await?;
    let page = create_page(&state, &mut tx, &member, input).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(page_response(&state, &page)))
}

/// Gets a page (viewer).
#[utoipa::path(
    get,
    path = "/v1/pages/{page_id}",
    tag = "pages",
    operation_id = "get_page",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    responses(
        (status = 200, description = "The page.", body = PageResponse),
        Unauthorized, NotFound, TooManyRequests,
    ),
)]
pub async fn get(at: AtPage<Viewer>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let AtPage { tx, page, .. } = at;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(page_response(&state, &page)))
}

/// Changes a page's settings (admin).
///
/// Absent fields stay as they are; null clears. PATCH and PUT do the same.
#[utoipa::path(
    method(patch, put),
    path = "/v1/pages/{page_id}",
    tag = "pages",
    operation_id = "update_page",
    security(("bearer" = []), ("oauth" = []), ("cookie" = [])),
    params(("page_id" = Uuid, Path, description = "The page's id.")),
    request_body(content(
        (PageEnvelope = "application/json"),
        (PageEnvelope = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The page.", body = PageResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, UnsupportedMediaType,
        ValidationFailed, TooManyRequests,
    ),
)]
pub async fn update(
    at: AtPage<Admin>,
    state: web::Data<AppState>,
    body: Input<PageEnvelope>,
) -> Result<HttpResponse, ApiError> {
    let AtPage {
        member,
        mut tx,
        page: before,
        ..
    } = at;
    let input = envelope("page", body.0.page)?;
    let page = update_page(&state, &mut tx, &member, &before, input).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(page_response(&state, &page)))
}

/// Changes the settings `input` gives of the page `before` (absent fields
/// stay, null clears), with its audit entry: what `PATCH /v1/pages/{id}`
/// and the dashboard's settings form do. Refusals of the input (422, and
/// 403 `email_unverified` for SMS) come before any write.
pub(crate) async fn update_page(
    state: &AppState,
    tx: &mut heliograph_store::TenantTx,
    member: &Member,
    before: &Page,
    input: PageInput,
) -> Result<Page, ApiError> {
    let id = before.id;
    let edit = parse_edit(input)?;
    check_sms(state, tx, Some(before), &edit).await?;
    let page = tx.edit_page(id, &edit).await?;
    tx.audit(&member.audit(
        "page.updated",
        "page",
        page.id.as_uuid(),
        serde_json::json!({
            "name": page.name, "subdomain": page.slug, "time_zone": page.time_zone,
            "allow_sms_subscribers": page.allow_sms_subscribers,
            "sms_calling_code": page.sms_calling_code,
            "sms_allowed_calling_codes": page.sms_allowed_calling_codes,
        }),
    ))
    .await?;
    Ok(page)
}
