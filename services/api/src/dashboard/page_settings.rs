//! A page's settings: its name, headline and time zone, its branding (logo
//! and colours, with what the public page will change of colours that do
//! not read), its support link, and which ways readers may subscribe,
//! texting included. Admins only, as `PATCH /v1/pages/{page_id}`: the
//! form becomes the same input and goes through
//! `routes::pages::update_page`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use heliograph_domain::Page;
use serde::Deserialize;

use super::form::{FormErrors, Posted, checkbox};
use super::frame::frame_at;
use super::frame::{self, Frame, Section};
use crate::error::ApiError;
use crate::page_scope::{Admin, AtPage};
use crate::routes::pages::{PageInput, update_page};

/// Time zones offered as suggestions; any IANA name typed is accepted (the
/// domain's `TimeZoneName` judges).
pub(crate) const COMMON_ZONES: &[&str] = &[
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Helsinki",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Africa/Lagos",
    "Africa/Cairo",
    "Africa/Johannesburg",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Jakarta",
    "Asia/Singapore",
    "Asia/Hong_Kong",
    "Asia/Shanghai",
    "Asia/Seoul",
    "Asia/Tokyo",
    "Australia/Perth",
    "Australia/Adelaide",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Phoenix",
    "America/Chicago",
    "America/New_York",
    "America/Toronto",
    "America/Halifax",
    "America/Mexico_City",
    "America/Bogota",
    "America/Lima",
    "America/Santiago",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
];

/// What the settings form sends (the API's field names, so each refusal
/// lands next to its field).
#[derive(Deserialize, Default)]
pub struct SettingsForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    headline: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    logo_url: String,
    #[serde(default)]
    css_link_color: String,
    #[serde(default)]
    css_body_background_color: String,
    #[serde(default)]
    css_font_color: String,
    #[serde(default)]
    support_url: String,
    #[serde(default, deserialize_with = "checkbox")]
    allow_email_subscribers: bool,
    #[serde(default, deserialize_with = "checkbox")]
    allow_sms_subscribers: bool,
    #[serde(default, deserialize_with = "checkbox")]
    allow_webhook_subscribers: bool,
    #[serde(default)]
    sms_calling_code: String,
    /// Calling codes, separated by commas or spaces.
    #[serde(default)]
    sms_allowed_calling_codes: String,
}

fn codes(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

impl SettingsForm {
    fn of(p: &Page) -> Self {
        Self {
            name: p.name.clone(),
            headline: p.headline.clone().unwrap_or_default(),
            time_zone: p.time_zone.to_string(),
            logo_url: p.logo_url.clone().unwrap_or_default(),
            css_link_color: p.brand_color.clone(),
            css_body_background_color: p.background_color.clone(),
            css_font_color: p.text_color.clone(),
            support_url: p.support_url.clone().unwrap_or_default(),
            allow_email_subscribers: p.allow_email_subscribers,
            allow_sms_subscribers: p.allow_sms_subscribers,
            allow_webhook_subscribers: p.allow_webhook_subscribers,
            sms_calling_code: p.sms_calling_code.clone().unwrap_or_default(),
            sms_allowed_calling_codes: p.sms_allowed_calling_codes.join(", "),
        }
    }

    /// The API's input. Texting settings go only when changed: they ask
    /// for a verified owner, which saving the page's name must not.
    fn input(&self, before: &Page) -> PageInput {
        let code = self.sms_calling_code.trim();
        let listed = codes(&self.sms_allowed_calling_codes);
        PageInput {
            name: Some(self.name.clone()),
            time_zone: Some(self.time_zone.trim().to_owned()),
            headline: Some(Some(self.headline.clone())),
            support_url: Some(Some(self.support_url.clone())),
            logo_url: Some(Some(self.logo_url.clone())),
            css_link_color: Some(self.css_link_color.clone()),
            css_body_background_color: Some(self.css_body_background_color.clone()),
            css_font_color: Some(self.css_font_color.clone()),
            allow_email_subscribers: Some(self.allow_email_subscribers),
            allow_webhook_subscribers: Some(self.allow_webhook_subscribers),
            allow_sms_subscribers: (self.allow_sms_subscribers != before.allow_sms_subscribers)
                .then_some(self.allow_sms_subscribers),
            sms_calling_code: (Some(code) != before.sms_calling_code.as_deref()
                && !(code.is_empty() && before.sms_calling_code.is_none()))
            .then(|| Some(code.to_owned())),
            sms_allowed_calling_codes: (listed != before.sms_allowed_calling_codes)
                .then_some(listed),
            ..PageInput::default()
        }
    }
}

/// The settings page.
#[derive(Template)]
#[template(path = "dashboard/settings/settings.html")]
struct SettingsView {
    frame: Frame,
    form: SettingsForm,
    errors: FormErrors,
    /// What the public page changes of the colours shown, in words.
    warnings: Vec<String>,
    zones: &'static [&'static str],
}

async fn settings_form(
    req: &HttpRequest,
    mut at: AtPage<Admin>,
    form: SettingsForm,
    errors: FormErrors,
) -> Result<HttpResponse, ApiError> {
    let frame = frame_at(req, &mut at, Section::Settings).await?;
    at.tx.commit().await?;
    let warnings = heliograph_web::contrast_warnings(
        &form.css_body_background_color,
        &form.css_font_color,
        &form.css_link_color,
    );
    let failed = errors.any();
    let view = SettingsView {
        frame: frame.clone(),
        form,
        errors,
        warnings,
        zones: COMMON_ZONES,
    };
    if failed {
        frame::html_with(StatusCode::UNPROCESSABLE_ENTITY, &view)
    } else {
        frame::html(&frame, &view)
    }
}

/// `GET /dashboard/pages/{page_id}/settings`.
pub async fn show(req: HttpRequest, at: AtPage<Admin>) -> Result<HttpResponse, ApiError> {
    let form = SettingsForm::of(&at.page);
    settings_form(&req, at, form, FormErrors::none()).await
}

/// `POST /dashboard/pages/{page_id}/settings`: saves the form.
pub async fn save(
    req: HttpRequest,
    state: actix_web::web::Data<crate::startup::AppState>,
    mut at: AtPage<Admin>,
    form: Posted<SettingsForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let input = form.input(&at.page);
    let before = at.page.clone();
    match update_page(&state, &mut at.tx, &at.member, &before, input).await {
        Ok(page) => {
            at.tx.commit().await?;
            Ok(frame::done(
                &format!("/dashboard/pages/{}/settings", page.id),
                "Settings saved.",
            ))
        }
        Err(err) => {
            // Refusals come before any write: the transaction still reads.
            let errors = match err {
                // Said at the switch that asked for it, not as a page of its own.
                ApiError::EmailUnverified => FormErrors::field(
                    "allow_sms_subscribers",
                    "An owner of this team must verify their email address before the page \
                     can send texts: SMS stays off until then.",
                ),
                ApiError::PlanLimit { refusal, .. }
                    if refusal.limit == heliograph_domain::Limit::TextsPerMonth =>
                {
                    FormErrors::field(
                        "allow_sms_subscribers",
                        format!(
                            "The {} plan sends no texts: SMS needs a paid plan, which an owner \
                             of the team can choose.",
                            refusal.plan
                        ),
                    )
                }
                other => FormErrors::from_error(other)?,
            };
            settings_form(&req, at, form, errors).await
        }
    }
}
