//! Where things live on the web: the platform's origin and each page's host.

use std::fmt;

/// The platform's public origin (`PUBLIC_URL`) and the domain under which each
/// page gets a host of its own (`BASE_DOMAIN`: `<slug>.<base domain>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrls {
    scheme: &'static str,
    origin: String,
    base_domain: String,
}

/// Why a URL setting was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(&'static str);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl PublicUrls {
    /// From the platform's origin (`http(s)://host[:port]`, no path) and the
    /// page base domain (`host[:port]`); without a base domain, the origin's host is used.
    pub fn new(public_url: &str, base_domain: Option<&str>) -> Result<Self, UrlError> {
        let trimmed = public_url.trim().trim_end_matches('/');
        let (scheme, authority) = if let Some(rest) = trimmed.strip_prefix("https://") {
            ("https", rest)
        } else if let Some(rest) = trimmed.strip_prefix("http://") {
            ("http", rest)
        } else {
            return Err(UrlError("must start with http:// or https://"));
        };
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(UrlError(
                "must be an origin: scheme, host and optional port, no path",
            ));
        }
        let base = base_domain
            .map(|b| b.trim().trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_else(|| authority.to_ascii_lowercase());
        if base.is_empty() || base.contains(['/', '?', '#', '@', ' ']) {
            return Err(UrlError("must be a host name with an optional port"));
        }
        Ok(Self {
            scheme,
            origin: format!("{scheme}://{authority}"),
            base_domain: base,
        })
    }

    /// The platform's origin, without a trailing slash.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The public URL of the page with this slug, without a trailing slash.
    #[must_use]
    pub fn page_url(&self, slug: &str) -> String {
        format!("{}://{slug}.{}", self.scheme, self.base_domain)
    }

    /// The base domain's host name, without a port.
    #[must_use]
    pub fn base_host(&self) -> &str {
        strip_port(&self.base_domain)
    }

    /// The platform origin's host name, without a port.
    #[must_use]
    pub fn origin_host(&self) -> &str {
        let authority = self
            .origin
            .split_once("://")
            .map_or(self.origin.as_str(), |(_, a)| a);
        strip_port(authority)
    }

    /// Whether a `Host` header names the platform itself (where the
    /// dashboard lives): the origin's host, or an address or `localhost`
    /// (a person reaching one machine directly). Never a page host, and
    /// never anyone else's name pointed at us.
    #[must_use]
    pub fn is_platform_host(&self, host: &str) -> bool {
        let bare = host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        let bare = bare.trim_start_matches('[').trim_end_matches(']');
        bare.eq_ignore_ascii_case(self.origin_host())
            || bare.eq_ignore_ascii_case("localhost")
            || bare.parse::<std::net::IpAddr>().is_ok()
    }

    /// The page slug a `Host` header names, if it is `<slug>.<base domain>`
    /// (ports ignored on both sides).
    #[must_use]
    pub fn slug_for_host<'h>(&self, host: &'h str) -> Option<&'h str> {
        let host = strip_port(host);
        let base = strip_port(&self.base_domain);
        let label = host.strip_suffix(base)?.strip_suffix('.')?;
        let valid = !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then_some(label)
    }
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_host_is_the_origins_or_a_direct_address() {
        let urls = PublicUrls::new("https://heliograph.example", Some("status.example")).unwrap();
        for host in [
            "heliograph.example",
            "HELIOGRAPH.example:443",
            "127.0.0.1:8080",
            "[::1]:80",
            "localhost:8080",
        ] {
            assert!(urls.is_platform_host(host), "{host}");
        }
        for host in [
            "acme.status.example",
            "status.acme.test",
            "heliograph.example.evil.test",
        ] {
            assert!(!urls.is_platform_host(host), "{host}");
        }
    }

    #[test]
    fn page_urls_use_the_origin_scheme_and_the_base_domain() {
        let u = PublicUrls::new("http://localhost:8080/", None).unwrap();
        assert_eq!(u.origin(), "http://localhost:8080");
        assert_eq!(u.page_url("acme"), "http://acme.localhost:8080");
        let u = PublicUrls::new("https://heliograph.example", Some("status.example")).unwrap();
        assert_eq!(u.page_url("acme"), "https://acme.status.example");
    }

    #[test]
    fn the_slug_is_read_from_a_single_label_under_the_base_domain() {
        let u = PublicUrls::new("http://localhost:8080", None).unwrap();
        assert_eq!(u.slug_for_host("acme.localhost:8080"), Some("acme"));
        assert_eq!(u.slug_for_host("acme.localhost"), Some("acme"));
        assert_eq!(u.slug_for_host("localhost:8080"), None);
        assert_eq!(u.slug_for_host("a.b.localhost"), None);
        assert_eq!(u.slug_for_host("acme.otherlocalhost"), None);
        assert_eq!(u.slug_for_host("evil.com"), None);
    }

    #[test]
    fn host_names_come_without_their_ports() {
        let u = PublicUrls::new("http://app.localhost:8080", Some("pages.localhost:8080")).unwrap();
        assert_eq!(u.base_host(), "pages.localhost");
        assert_eq!(u.origin_host(), "app.localhost");
    }

    #[test]
    fn origins_with_paths_or_other_schemes_are_refused() {
        assert!(PublicUrls::new("ftp://x", None).is_err());
        assert!(PublicUrls::new("https://x/app", None).is_err());
        assert!(PublicUrls::new("https://", None).is_err());
    }
}
