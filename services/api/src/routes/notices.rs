//! The pages a person sees after a self-service subscription form or an
//! emailed link (form posts and link clicks; JSON requests get JSON from
//! the handlers): what each answer says, as one askama template
//! (`frontend-templates/public/self_service.html`), framed in the page's
//! own layout by [`heliograph_web::render_notice`], with the headers every
//! such answer carries.
//!
//! This module does not decide which answer a request gets (the handlers in
//! `self_service` and `public` do), nor how the page looks (`heliograph_web`
//! does). Everything from a request or a tenant reaches the HTML through
//! askama's escaping only.

use std::fmt;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use askama::Template;
use uuid::Uuid;

use super::public::unavailable;
use crate::public_pages::{Lookup, PageKey};
use crate::startup::AppState;

/// Which emailed link was not valid.
#[derive(Debug, Clone, Copy)]
pub(super) enum Link {
    /// The confirmation link.
    Confirm,
    /// The manage link (the unsubscribe link's token).
    Manage,
    /// The unsubscribe link.
    Unsubscribe,
}

/// A public component on the manage page.
#[derive(Debug)]
pub(super) struct Choice {
    pub id: Uuid,
    pub name: String,
    /// The name of its group, if it is in one.
    pub group: Option<String>,
    /// Whether the subscriber follows it (never when they follow everything).
    pub ticked: bool,
}

/// What the manage page shows.
#[derive(Debug)]
pub(super) struct Manage<'a> {
    /// "by email", "in Slack", …
    pub how: &'static str,
    /// What became of a saved choice: said (`Ok`) or refused (`Err`).
    pub notice: Option<Result<&'a str, &'a str>>,
    /// The page's public components; empty when it lists none.
    pub choices: Vec<Choice>,
    /// Whether the subscriber follows every component.
    pub all: bool,
    /// The subscriber's unsubscribe token, signed by us (never the request's).
    pub token: String,
}

/// One answer, with what it needs to say.
#[derive(Debug)]
pub(super) enum Notice<'a> {
    /// An email subscription awaits its link.
    CheckInbox,
    /// A text subscription awaits its code; `subscriber_id` is the id the
    /// code form names (never the subscriber row's).
    EnterCode { subscriber_id: Uuid },
    /// A wrong code, with the form again.
    WrongCode { subscriber_id: Uuid },
    /// A webhook awaits its answer to the ping; a new one's secret is shown once.
    ConfirmEndpoint { webhook_secret: Option<&'a str> },
    /// A Slack or Teams webhook awaits its test message.
    CheckChannel,
    /// What is wrong with the form, field by field (label, message).
    CheckForm {
        problems: Vec<(&'static str, &'a str)>,
    },
    /// Rate limited.
    TooManyRequests,
    /// Subscribed already (a webhook URL is subscribed once).
    AlreadySubscribed { detail: &'a str },
    /// A body that could not be read.
    NotUnderstood,
    /// The page takes no more subscribers (its team's plan is full).
    PageFull,
    /// A link whose token is forged, expired, or of someone who left.
    LinkNotValid { link: Link },
    /// The confirmation link asks before it confirms (link scanners fetch links).
    ConfirmAsk { token: String },
    /// Confirmed, with the way to manage the subscription.
    Subscribed { token: String },
    /// Too many wrong codes.
    Locked,
    /// The manage page.
    Manage(Manage<'a>),
    /// The unsubscribe link asks before it unsubscribes.
    UnsubscribeAsk { token: String },
    /// Unsubscribed.
    Unsubscribed,
}

impl Notice<'_> {
    /// The answer's heading (and the start of its title).
    const fn title(&self) -> &'static str {
        match self {
            Self::CheckInbox => "Check your inbox",
            Self::EnterCode { .. } | Self::WrongCode { .. } => "Enter your code",
            Self::ConfirmEndpoint { .. } => "Confirm your endpoint",
            Self::CheckChannel => "Check your channel",
            Self::CheckForm { .. } => "Check the form",
            Self::TooManyRequests => "Too many requests",
            Self::AlreadySubscribed { .. } => "Already subscribed",
            Self::NotUnderstood => "Not understood",
            Self::PageFull => "Not taking subscribers",
            Self::LinkNotValid { .. } => "Link not valid",
            Self::ConfirmAsk { .. } => "Confirm your subscription",
            Self::Subscribed { .. } => "Subscribed",
            Self::Locked => "Too many wrong codes",
            Self::Manage(_) => "Your subscription",
            Self::UnsubscribeAsk { .. } => "Unsubscribe",
            Self::Unsubscribed => "Unsubscribed",
        }
    }
}

/// The answer's body, below its heading.
#[derive(Template)]
#[template(path = "public/self_service.html", whitespace = "minimize")]
struct Body<'a> {
    /// Where the page's documents are: `""` on the page's host,
    /// `/status/<slug>` on the platform's.
    prefix: &'a str,
    notice: &'a Notice<'a>,
}

/// Renders `notice` in the look of the page `route` names (the default look
/// when its data cannot be read now). Never cached, never framed, sending
/// no `Referer` (its links may carry a token), posting forms only to the
/// page itself.
pub(super) async fn answer(
    state: &AppState,
    route: Option<PageKey>,
    prefix: &str,
    status: StatusCode,
    notice: &Notice<'_>,
) -> HttpResponse {
    let snapshot = match state.pages.get(route).await {
        Lookup::Found(snapshot) => Some(snapshot),
        Lookup::NoSuchPage | Lookup::Unavailable => None,
    };
    let page = snapshot.as_ref().map(|s| &*s.page);
    let body = Body { prefix, notice };
    match heliograph_web::render_notice(page, prefix, notice.title(), &body) {
        Ok(html) => HttpResponse::build(status)
            .insert_header(CacheControl(vec![CacheDirective::NoStore]))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "a self-service page failed to render");
            unavailable()
        }
    }
}

/// The escaper of the api's templates (see `askama.toml`): HTML's named
/// entities, as these answers have always been written (askama's own
/// escaper writes `&#60;`), safe in text and in quoted attributes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NamedEntities;

impl askama::filters::Escaper for NamedEntities {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, string: &str) -> fmt::Result {
        for c in string.chars() {
            match c {
                '&' => dest.write_str("&amp;")?,
                '<' => dest.write_str("&lt;")?,
                '>' => dest.write_str("&gt;")?,
                '"' => dest.write_str("&quot;")?,
                '\'' => dest.write_str("&#39;")?,
                c => dest.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use askama::Template;
    use uuid::Uuid;

    use super::{Body, Choice, Link, Manage, Notice};

    fn body(prefix: &str, notice: &Notice<'_>) -> String {
        Body { prefix, notice }.render().unwrap()
    }

    #[test]
    fn what_a_tenant_or_a_request_wrote_is_escaped() {
        let manage = Notice::Manage(Manage {
            how: "by email",
            notice: Some(Err("Tick <one>")),
            choices: vec![Choice {
                id: Uuid::nil(),
                name: "<script>alert(1)</script>".to_owned(),
                group: Some("\" onmouseover=\"alert(2)".to_owned()),
                ticked: true,
            }],
            all: false,
            token: "abc.def".to_owned(),
        });
        let html = body("/status/acme", &manage);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("(&quot; onmouseover=&quot;alert(2))"),
            "{html}"
        );
        assert!(html.contains("Tick &lt;one&gt;"), "{html}");
        assert!(html.contains("value=\"some\" checked"), "{html}");
        assert!(html.contains(&format!("value=\"{}\" checked", Uuid::nil())));
        assert!(html.contains("action=\"/status/acme/unsubscribe?token=abc.def\""));

        let form = Notice::CheckForm {
            problems: vec![("Email address", "<img src=x onerror=alert(3)>")],
        };
        let html = body("", &form);
        assert!(html.contains("<li>Email address: &lt;img src=x onerror=alert(3)&gt;</li>"));

        let secret = Notice::ConfirmEndpoint {
            webhook_secret: Some("whsec_a+b/c='d'"),
        };
        assert!(body("", &secret).contains("<code>whsec_a+b/c=&#39;d&#39;</code>"));
    }

    #[test]
    fn every_answer_renders_with_its_links_under_the_prefix() {
        let id = Uuid::nil();
        for notice in [
            Notice::CheckInbox,
            Notice::EnterCode { subscriber_id: id },
            Notice::WrongCode { subscriber_id: id },
            Notice::ConfirmEndpoint {
                webhook_secret: None,
            },
            Notice::CheckChannel,
            Notice::TooManyRequests,
            Notice::AlreadySubscribed {
                detail: "Subscribed.",
            },
            Notice::NotUnderstood,
            Notice::PageFull,
            Notice::LinkNotValid {
                link: Link::Confirm,
            },
            Notice::LinkNotValid { link: Link::Manage },
            Notice::LinkNotValid {
                link: Link::Unsubscribe,
            },
            Notice::ConfirmAsk {
                token: "t.1".to_owned(),
            },
            Notice::Subscribed {
                token: "t.1".to_owned(),
            },
            Notice::Locked,
            Notice::UnsubscribeAsk {
                token: "t.1".to_owned(),
            },
            Notice::Unsubscribed,
        ] {
            let html = body("/status/acme", &notice);
            assert!(!notice.title().is_empty());
            for link in html.split("href=\"").skip(1) {
                assert!(link.starts_with("/status/acme/"), "{notice:?}: {html}");
            }
            for action in html.split("action=\"").skip(1) {
                assert!(action.starts_with("/status/acme/"), "{notice:?}: {html}");
            }
        }
        let code = body("", &Notice::WrongCode { subscriber_id: id });
        assert!(code.contains(&format!("name=\"subscriber_id\" value=\"{id}\"")));
        assert!(code.contains("<p role=\"alert\">"));
    }
}
