//! The page's look around a short answer of the api's own: the pages a
//! visitor lands on after a self-service form or an emailed link ("Check
//! your inbox", "Subscribed", "Your subscription"), in the page's layout,
//! colours and stylesheet.
//!
//! This module owns only the frame (`frontend-templates/public/notice.html`,
//! which extends the page's layout). The words and forms inside it are
//! askama templates of the api, which decides what each answer says; this
//! module takes them as a rendered [`Template`], never as a string, so
//! everything in the answer has gone through askama's escaping.

use askama::Template;

use super::{STATUS_COLOURS, Site, Theme, TimeZoneName, page_zone};
use crate::PublicPage;

#[derive(Template)]
#[template(path = "public/notice.html", whitespace = "minimize")]
struct NoticeTemplate<'a> {
    site: Site<'a>,
    title: &'a str,
    /// The answer's body, rendered (and so escaped) by askama.
    body: String,
}

/// A short answer in the page's look: `title` as its heading (escaped) and
/// `body` below it. `page` is the page's public data; without it (it could
/// not be read) the answer has the default colours and no name.
///
/// # Errors
///
/// When a template fails to render.
pub fn render_notice(
    page: Option<&PublicPage>,
    base_path: &str,
    title: &str,
    body: &impl Template,
) -> Result<String, askama::Error> {
    let site = match page {
        Some(page) => Site::new(page, base_path, &page_zone(page)),
        None => Site::plain(base_path),
    };
    NoticeTemplate {
        site,
        title,
        body: body.render()?,
    }
    .render()
}

impl<'a> Site<'a> {
    /// The layout without a page to take a name and colours from: the
    /// default colours, no name, no links of the tenant's.
    fn plain(base_path: &'a str) -> Self {
        Self {
            name: "",
            headline: None,
            logo_url: None,
            support_url: None,
            base_path,
            theme: Theme::new("", "", ""),
            status_colours: &STATUS_COLOURS,
            zone: TimeZoneName::utc().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use askama::Template;

    use super::render_notice;
    use crate::tests::sample;

    /// An answer's body as the api gives it: a template of its own.
    #[derive(Template)]
    #[template(source = "<p class=\"said\">{{ text }}</p>", ext = "html")]
    struct Said<'a> {
        text: &'a str,
    }

    #[test]
    fn the_page_and_the_answer_are_escaped_and_the_answer_is_not_escaped_twice() {
        let mut page = sample();
        page.data.page.name = "<script>alert(1)</script>".to_owned();
        page.data.page.headline = Some("\"><img src=x onerror=alert(2)>".to_owned());
        let said = Said {
            text: "<script>alert(3)</script>",
        };
        let html = render_notice(Some(&page), "/status/acme", "Check <b>this</b>", &said).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("&#60;script&#62;alert(1)"), "{html}");
        assert!(html.contains("&#60;script&#62;alert(3)"), "{html}");
        assert!(
            html.contains("<p class=\"said\">"),
            "the answer's own markup stays"
        );
        assert!(
            html.contains("<h1>Check &#60;b&#62;this&#60;/b&#62;</h1>"),
            "{html}"
        );
        assert!(
            html.contains("href=\"/status/acme/history\""),
            "the page's own links"
        );
        assert!(html.contains("--bg:"), "the page's colours and stylesheet");
    }

    #[test]
    fn without_the_page_the_answer_has_the_default_look() {
        let said = Said { text: "Saved." };
        let html = render_notice(None, "", "Your subscription", &said).unwrap();
        assert!(html.contains("<title>Your subscription</title>"), "{html}");
        assert!(html.contains("<p class=\"said\">Saved.</p>"), "{html}");
        assert!(html.contains("--bg: #ffffff"), "{html}");
    }
}
