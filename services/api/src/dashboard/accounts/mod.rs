//! A person's own account on the dashboard: signing up (with a live check
//! of the slug), the emailed links (verify an address, reset a password),
//! and the account page (password, sessions, switching teams).
//!
//! Each action calls the function its `/v1` twin calls (`routes::signup`,
//! `routes::accounts`, `routes::sessions`); this module only turns forms
//! into their inputs and their answers into pages.

pub(crate) mod links;
pub(crate) mod page;
pub(crate) mod signup;

use actix_web::HttpResponse;
use actix_web::http::header::SET_COOKIE;

/// `done` (a redirect with a flash), carrying the cookies `opened` sets
/// too: a session just opened, landing with a message.
fn with_session_cookies(mut done: HttpResponse, opened: &HttpResponse) -> HttpResponse {
    for value in opened.headers().get_all(SET_COOKIE) {
        done.headers_mut().append(SET_COOKIE, value.clone());
    }
    done
}

/// A blank field is absent: the API's "is required" says so.
fn given(value: String) -> Option<String> {
    Some(value).filter(|v| !v.trim().is_empty())
}
