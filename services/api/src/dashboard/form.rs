//! Forms: what a form that came back with errors shows next to each field,
//! and the small conversions HTML forms need (a checkbox is absent when
//! unticked; a blank field is nothing).
//!
//! The rules a form's values must follow are the API's (the same parse
//! functions and domain types); this module only carries their
//! [`FieldError`]s back to the fields.

use heliograph_domain::FieldError;
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// The errors of a form that came back, each tied to its field.
#[derive(Debug, Default)]
pub struct FormErrors(Vec<FieldError>);

impl FormErrors {
    /// No error: a form shown for the first time.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// One error on `field`.
    #[must_use]
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, "invalid", message)])
    }

    /// The field errors of a refusal, to show on the form; any other error
    /// is handed back, for [`crate::dashboard::guard::html_errors`] to
    /// answer.
    pub fn from_error(err: ApiError) -> Result<Self, ApiError> {
        match err {
            ApiError::Validation(fields) => Ok(Self(fields)),
            other => Err(other),
        }
    }

    /// Whether the form has any error.
    #[must_use]
    pub fn any(&self) -> bool {
        !self.0.is_empty()
    }

    /// The message for `field`, if it has one.
    #[must_use]
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    /// Whether `field` is the first with an error: it gets the focus.
    #[must_use]
    pub fn focus(&self, field: &str) -> bool {
        self.0.first().is_some_and(|e| e.field == field)
    }

    /// Every error, for the summary at the top of the form.
    #[must_use]
    pub fn all(&self) -> &[FieldError] {
        &self.0
    }
}

/// A ticked checkbox sends its value ("on" by default); an unticked one
/// sends nothing: absent is `false`.
pub fn checkbox<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    Ok(Option::<String>::deserialize(de)?.is_some_and(|v| !v.is_empty() && v != "off"))
}

#[expect(dead_code, reason = "for the forms being built")]
/// A blank field is no value.
pub fn blank_none<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(de)?.filter(|v| !v.trim().is_empty()))
}

/// `value` percent-encoded for a query string.
#[must_use]
pub fn encode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// Where to go after signing in: a path of ours (never another site's
/// address, which would make the sign-in form an open redirect).
#[must_use]
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") => p,
        _ => "/dashboard",
    }
}

/// A posted form whose parse waits for the handler: `into_inner` answers
/// the form or why it could not be read, as a field error on `form`.
///
/// Actix runs a handler's extractors together, so a plain `web::Form`
/// that fails to parse would answer before the page's role check (a viewer
/// sending a malformed form would be told 400, not 403) and in plain text.
/// With this one the role is checked first, and a malformed form is a
/// refusal like any other, shown as a page.
pub struct Posted<T>(Result<T, ApiError>);

impl<T> Posted<T> {
    /// The form, or why it could not be read.
    pub fn into_inner(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for Posted<T> {
    type Error = actix_web::Error;
    type Future = futures::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        let form = actix_web::web::Form::<T>::from_request(req, payload);
        Box::pin(async move {
            Ok(Self(
                form.await
                    .map(actix_web::web::Form::into_inner)
                    .map_err(|e| {
                        ApiError::field(FieldError::new(
                            "form",
                            "invalid",
                            format!("The form could not be read: {e}"),
                        ))
                    }),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{encode, local_path};

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/dashboard/pages/x")), "/dashboard/pages/x");
        assert_eq!(local_path(Some("//evil.example/")), "/dashboard");
        assert_eq!(local_path(Some("/\\evil.example/")), "/dashboard");
        assert_eq!(local_path(Some("https://evil.example/")), "/dashboard");
        assert_eq!(local_path(None), "/dashboard");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("/a b?c=d&e"), "%2Fa+b%3Fc%3Dd%26e");
    }
}
