//! Parsed user input. Each type can only be built through its `parse`, so
//! holding one is proof the value passed the rule.

use std::fmt;

use serde::Serialize;

/// Why one input field was refused; rendered as one entry of a 422 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name in the request body.
    pub field: &'static str,
    /// A stable, machine-readable reason (`too_short`, `invalid`, `reserved`, …).
    pub code: &'static str,
    /// A sentence for a human.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Sub-domain labels a tenant may not take: they belong to the platform.
const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "app",
    "assets",
    "dashboard",
    "docs",
    "help",
    "internal",
    "mail",
    "static",
    "status",
    "support",
    "www",
];

/// A page or tenant slug: a DNS label, 3–63 characters of `a-z`, `0-9` and
/// inner hyphens, starting with a letter, not reserved by the platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// Parses a slug given in the field `field`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.len() < 3 || s.len() > 63 {
            return Err(FieldError::new(
                field,
                "invalid_length",
                "must be 3 to 63 characters long",
            ));
        }
        let charset_ok = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let starts_ok = s.as_bytes()[0].is_ascii_lowercase();
        if !charset_ok || !starts_ok || s.ends_with('-') || s.contains("--") {
            return Err(FieldError::new(
                field,
                "invalid",
                "must start with a letter and hold only lowercase letters, digits and single inner hyphens",
            ));
        }
        if RESERVED_SLUGS.contains(&s) {
            return Err(FieldError::new(
                field,
                "reserved",
                "is reserved; choose another",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The slug.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form: `+`, a country code and the number, 8 to
/// 15 digits in all, the first not 0. Spaces, dots, dashes and brackets
/// people type are dropped; anything else is refused (no local formats:
/// without a country code, a number is ambiguous).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a number given in the field `field`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let invalid = || {
            FieldError::new(
                field,
                "invalid",
                "must be an international number in E.164 form, e.g. +14155550123",
            )
        };
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').ok_or_else(invalid)?;
        let ok = (8..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self(compact))
        } else {
            Err(invalid())
        }
    }

    /// The number, `+` and digits.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but its last two digits hidden, for logs.
    #[must_use]
    pub fn masked(&self) -> String {
        let keep = self.0.len().saturating_sub(2);
        format!("+{}{}", "*".repeat(keep.saturating_sub(1)), &self.0[keep..])
    }
}

/// A syntactically valid email address (RFC 5322 addr-spec), at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an address given in the field `field`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        let invalid = || FieldError::new(field, "invalid", "is not a valid email address");
        if s.len() > 254 || s.chars().any(char::is_control) {
            return Err(invalid());
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            s,
            email_address::Options::default()
                .with_required_tld()
                .without_display_text(),
        )
        .map_err(|_| invalid())?;
        Ok(Self(parsed.as_str().to_owned()))
    }

    /// The address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address with its local part hidden, for logs: `j***@example.com`.
    #[must_use]
    pub fn masked(&self) -> String {
        match self.0.split_once('@') {
            Some((local, domain)) => {
                let first = local.chars().next().unwrap_or('*');
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        }
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name (tenant, page, component, incident): trimmed, 1 to `max` characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Parses a name of at most `max` characters given in the field `field`.
    pub fn parse(field: &'static str, raw: &str, max: usize) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(FieldError::new(field, "blank", "must not be blank"));
        }
        if s.chars().count() > max {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("must be at most {max} characters"),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                "invalid",
                "must not contain control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password: 10 to 256 characters. Never printed: `Debug` hides it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// The shortest password accepted.
    pub const MIN_CHARS: usize = 10;
    /// The longest, which bounds the work one hash costs.
    pub const MAX_CHARS: usize = 256;

    /// Parses a new password given in the field `field`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(FieldError::new(
                field,
                "too_short",
                format!("must be at least {} characters", Self::MIN_CHARS),
            ));
        }
        if n > Self::MAX_CHARS {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret itself, for hashing.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_dns_labels_that_start_with_a_letter() {
        for ok in ["acme", "acme-cloud", "a1b", "x".repeat(63).as_str()] {
            assert!(Slug::parse("slug", ok).is_ok(), "{ok}");
        }
        for (bad, code) in [
            ("ab", "invalid_length"),
            ("Acme", "invalid"),
            ("1acme", "invalid"),
            ("acme-", "invalid"),
            ("ac--me", "invalid"),
            ("ac me", "invalid"),
            ("acmé", "invalid"),
            ("www", "reserved"),
            ("status", "reserved"),
        ] {
            assert_eq!(
                Slug::parse("slug", bad).map_err(|e| e.code),
                Err(code),
                "{bad}"
            );
        }
        assert!(Slug::parse("slug", &"x".repeat(64)).is_err());
    }

    #[test]
    fn email_addresses_need_a_domain_with_a_dot() {
        assert_eq!(
            EmailAddress::parse("email", " jane@example.com ").map(|e| e.0),
            Ok("jane@example.com".to_owned())
        );
        for bad in [
            "jane",
            "jane@",
            "@example.com",
            "jane@localhost",
            "Jane <jane@example.com>",
            "ja\nne@example.com",
        ] {
            assert!(EmailAddress::parse("email", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn masked_email_hides_the_local_part() {
        let e = EmailAddress::parse("email", "jane.doe@example.com").unwrap();
        assert_eq!(e.masked(), "j***@example.com");
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(
            Name::parse("name", "  Acme  ", 10).map(|n| n.0),
            Ok("Acme".into())
        );
        assert_eq!(
            Name::parse("name", "   ", 10).map_err(|e| e.code),
            Err("blank")
        );
        assert_eq!(
            Name::parse("name", "abcdefghijk", 10).map_err(|e| e.code),
            Err("too_long")
        );
        assert_eq!(
            Name::parse("name", "a\u{7}b", 10).map_err(|e| e.code),
            Err("invalid")
        );
    }

    #[test]
    fn passwords_are_bounded_and_never_debug_printed() {
        assert!(Password::parse("password", "short").is_err());
        assert!(Password::parse("password", &"x".repeat(257)).is_err());
        let p = Password::parse("password", "correct horse battery").unwrap();
        assert_eq!(format!("{p:?}"), "Password(***)");
    }
}

#[cfg(test)]
mod phone_tests {
    use super::PhoneNumber;

    #[test]
    fn phone_numbers_are_e164_and_typed_separators_are_dropped() {
        assert_eq!(
            PhoneNumber::parse("p", " +1 (415) 555-0123 ")
                .unwrap()
                .as_str(),
            "+14155550123"
        );
        assert_eq!(
            PhoneNumber::parse("p", "+49.30.1234567").unwrap().as_str(),
            "+49301234567"
        );
        for bad in [
            "",
            "4155550123",
            "+0415555012",
            "+1234567",
            "+1234567890123456",
            "+1 415 555 O123",
            "++14155550123",
            "+1415555012x3",
        ] {
            let err = PhoneNumber::parse("phone_number", bad).unwrap_err();
            assert_eq!(err.field, "phone_number", "{bad}");
            assert_eq!(err.code, "invalid", "{bad}");
        }
        let masked = PhoneNumber::parse("p", "+14155550123").unwrap().masked();
        assert_eq!(masked, "+*********23");
        assert!(!masked.contains("415"));
    }
}

/// A subscriber's HTTP endpoint (webhook, Slack or Teams incoming webhook):
/// an absolute `http` or `https` URL with a host, no credentials in it, at
/// most 2,000 characters. Where it resolves to is the sender's business
/// (the SSRF guard checks the addresses it connects to).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    /// Parses a URL given in the field `field`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let invalid = |message: &str| FieldError::new(field, "invalid", message.to_owned());
        let url = raw.trim();
        if url.len() > 2000 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "must be a URL of at most 2,000 characters, without spaces",
            ));
        }
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| invalid("must be an http:// or https:// URL"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(invalid("must not carry a user name or password"));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map_or(("", ""), |(h, p)| (h, p)),
            None => authority
                .split_once(':')
                .map_or((authority, ""), |(h, p)| (h, p)),
        };
        let port = port.strip_prefix(':').unwrap_or(port);
        if !port.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("has a malformed port"));
        }
        if host.is_empty() {
            return Err(invalid("must name a host"));
        }
        Ok(Self(url.to_owned()))
    }

    /// The URL.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::EndpointUrl;

    #[test]
    fn endpoints_are_absolute_http_urls_with_a_host_and_no_credentials() {
        for ok in [
            "https://hooks.slack.com/services/T000/B000/XXX",
            "http://127.0.0.1:8080/hook?x=1",
            "https://[::1]:9000/",
            "https://example.com",
        ] {
            assert_eq!(EndpointUrl::parse("endpoint", ok).unwrap().as_str(), ok);
        }
        for bad in [
            "ftp://example.com/",
            "example.com/hook",
            "https://",
            "https://:80/",
            "https://user:pw@example.com/",
            "https://exa mple.com/",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                EndpointUrl::parse("endpoint", bad).unwrap_err().code,
                "invalid",
                "{bad}"
            );
        }
    }
}
