//! A page's subscribers in the dashboard: the list (tabs by channel and by
//! state with their counts, search, pages of 50), adding one by hand,
//! removing one, sending a confirmation again and lifting a quarantine.
//! Importing a CSV and exporting one are [`import`]'s.
//!
//! Every action is `routes::subscribers`' (the same parse, checks, store
//! calls and audit entries as `/v1/pages/{page_id}/subscribers`); the list
//! and its counts are the store's list and count queries, filtered as the
//! REST list filters.

pub(crate) mod import;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{Channel, FieldError, Page, Subscriber, SubscriberId, SubscriptionState};
use heliograph_store::{ListQuery, SubscriberCursor, SubscriberKey, SubscriberState};
use serde::Deserialize;

use super::form::{self, FormErrors, Posted};
use super::frame::{self, Frame, Section, frame_at};
use crate::error::ApiError;
use crate::input::ListParams;
use crate::page_scope::{AtPage, Editor, Viewer};
use crate::routes::subscribers::{self as rest, SubscriberFilter, SubscriberInput, shown_address};
use crate::startup::AppState;

/// Rows a page of the list shows.
pub(crate) const PER_PAGE: u32 = 50;

/// What the list's address carries: the search, the channel, the state,
/// and where the screen starts (`after` or `before` a row's key, as the
/// Next and Previous links write it).
#[derive(Debug, Default, Deserialize)]
pub struct ListArgs {
    q: Option<String>,
    r#type: Option<String>,
    state: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

/// The list's address, parsed: the REST list's filter (the same checks,
/// the same errors), and the screen's start.
struct Listing {
    query: ListQuery,
    state: SubscriberState,
    kind: Option<Channel>,
    cursor: SubscriberCursor,
}

impl ListArgs {
    /// The store query, the state and the channel, as
    /// `GET /v1/pages/{page_id}/subscribers` parses `q`, `type` and `state`.
    pub(crate) fn filter(&self) -> Result<(ListQuery, SubscriberState), ApiError> {
        let params: ListParams = serde_json::from_value(serde_json::json!({ "q": self.q }))
            .map_err(|e| {
                ApiError::Internal(anyhow::Error::new(e).context("Failed to build a query"))
            })?;
        SubscriberFilter::new(self.r#type.clone(), self.state.clone()).parse(&params)
    }

    fn listing(&self) -> Result<Listing, ApiError> {
        let (query, state) = self.filter()?;
        let key = |name: &'static str, value: &str| {
            value.parse::<SubscriberKey>().map_err(|()| {
                ApiError::field(FieldError::new(
                    name,
                    "invalid",
                    "is not a place in this list",
                ))
            })
        };
        let cursor = match (self.after.as_deref(), self.before.as_deref()) {
            (Some(after), _) => SubscriberCursor::After(key("after", after)?),
            (None, Some(before)) => SubscriberCursor::Before(key("before", before)?),
            (None, None) => SubscriberCursor::First,
        };
        let kind = self.r#type.as_deref().and_then(|k| k.parse().ok());
        Ok(Listing {
            query,
            state,
            kind,
            cursor,
        })
    }

    /// The list's address with `kind`, `state` and `at` (`("after", key)`
    /// or `("before", key)`) in place of the current ones, the search kept.
    fn href(
        &self,
        page: &Page,
        kind: Option<Channel>,
        state: SubscriberState,
        at: Option<(&str, SubscriberKey)>,
    ) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(q) = self.q.as_deref().filter(|q| !q.trim().is_empty()) {
            pairs.push(("q", q.to_owned()));
        }
        if let Some(kind) = kind {
            pairs.push(("type", kind.as_str().to_owned()));
        }
        pairs.push(("state", state.as_str().to_owned()));
        if let Some((side, key)) = at {
            pairs.push((side, key.to_string()));
        }
        format!(
            "/dashboard/pages/{}/subscribers?{}",
            page.id,
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    }
}

/// A tab: its label, where it leads, how many it holds, whether it is open.
pub struct Tab {
    label: &'static str,
    href: String,
    count: i64,
    current: bool,
}

/// A subscriber as a row of the list.
pub struct Row {
    id: SubscriberId,
    channel: &'static str,
    address: String,
    state: SubscriptionState,
    created_at: String,
}

impl Row {
    fn of(s: &Subscriber) -> Self {
        Self {
            id: s.id,
            channel: channel_label(s.channel),
            address: shown_address(s),
            state: s.state(),
            created_at: heliograph_web::timestamp(s.created_at),
        }
    }

    fn state_label(&self) -> &'static str {
        state_label(self.state)
    }

    fn tone(&self) -> &'static str {
        match self.state {
            SubscriptionState::Active => "ok",
            SubscriptionState::Unconfirmed => "neutral",
            SubscriptionState::Quarantined => "major",
            SubscriptionState::Unsubscribed => "none",
        }
    }

    fn unconfirmed(&self) -> bool {
        self.state == SubscriptionState::Unconfirmed
    }

    fn quarantined(&self) -> bool {
        self.state == SubscriptionState::Quarantined
    }
}

/// How the dashboard names a channel.
pub(crate) const fn channel_label(c: Channel) -> &'static str {
    match c {
        Channel::Email => "Email",
        Channel::Sms => "SMS",
        Channel::Webhook => "Webhook",
        Channel::Slack => "Slack",
        Channel::Teams => "Teams",
    }
}

/// How the dashboard names a state.
pub(crate) const fn state_label(s: SubscriptionState) -> &'static str {
    match s {
        SubscriptionState::Active => "Active",
        SubscriptionState::Unconfirmed => "Awaiting confirmation",
        SubscriptionState::Quarantined => "Quarantined",
        SubscriptionState::Unsubscribed => "Unsubscribed",
    }
}

/// How the dashboard names a state tab.
const fn tab_label(s: SubscriberState) -> &'static str {
    match s {
        SubscriberState::Active => "Active",
        SubscriberState::Unconfirmed => "Awaiting confirmation",
        SubscriberState::Quarantined => "Quarantined",
        SubscriberState::All => "All",
    }
}

/// The channels a page takes (the webhook setting covers Slack and Teams).
pub(crate) fn accepted_channels(page: &Page) -> Vec<Channel> {
    Channel::ALL
        .iter()
        .copied()
        .filter(|c| match c {
            Channel::Email => page.allow_email_subscribers,
            Channel::Sms => page.allow_sms_subscribers,
            Channel::Webhook | Channel::Slack | Channel::Teams => page.allow_webhook_subscribers,
        })
        .collect()
}

/// The list of a page's subscribers.
#[derive(Template)]
#[template(path = "dashboard/subscribers/list.html")]
struct ListView {
    frame: Frame,
    page_id: String,
    q: String,
    kind: Option<&'static str>,
    state: SubscriberState,
    channel_tabs: Vec<Tab>,
    state_tabs: Vec<Tab>,
    rows: Vec<Row>,
    total: i64,
    previous: Option<String>,
    next: Option<String>,
    export: String,
}

impl ListView {
    fn quarantined_tab(&self) -> bool {
        self.state == SubscriberState::Quarantined
    }
}

/// `GET /dashboard/pages/{page_id}/subscribers`: the list, filtered as
/// `GET /v1/pages/{page_id}/subscribers` filters it, 50 rows a screen from
/// a cursor; every tab's count from the same read (`subscriber_screen`).
pub async fn list(
    req: HttpRequest,
    mut at: AtPage<Viewer>,
    args: web::Query<ListArgs>,
) -> Result<HttpResponse, ApiError> {
    let args = args.into_inner();
    let Listing {
        query,
        state: which,
        kind,
        cursor,
    } = args.listing()?;
    let page = at.page.clone();
    let (window, tally) = at
        .tx
        .subscriber_screen(page.id, &query, which, cursor, PER_PAGE)
        .await?;
    let frame = frame_at(&req, &mut at, Section::Subscribers).await?;
    at.tx.commit().await?;
    let channel_tabs = std::iter::once(None)
        .chain(accepted_channels(&page).into_iter().map(Some))
        .map(|c| Tab {
            label: c.map_or("All channels", channel_label),
            href: args.href(&page, c, which, None),
            count: tally.count(c, which),
            current: c == kind,
        })
        .collect();
    let state_tabs = SubscriberState::ALL
        .into_iter()
        .map(|s| Tab {
            label: tab_label(s),
            href: args.href(&page, kind, s, None),
            count: tally.count(kind, s),
            current: s == which,
        })
        .collect();
    let first = window.items.first().map(SubscriberKey::of);
    let last = window.items.last().map(SubscriberKey::of);
    let export = args.href(&page, kind, which, None).replacen(
        "/subscribers?",
        "/subscribers/export.csv?",
        1,
    );
    let view = ListView {
        frame: frame.clone(),
        page_id: page.id.to_string(),
        q: args.q.clone().unwrap_or_default(),
        kind: kind.map(Channel::as_str),
        state: which,
        channel_tabs,
        state_tabs,
        rows: window.items.iter().map(Row::of).collect(),
        total: tally.count(kind, which),
        previous: first
            .filter(|_| window.more_before)
            .map(|k| args.href(&page, kind, which, Some(("before", k)))),
        next: last
            .filter(|_| window.more_after)
            .map(|k| args.href(&page, kind, which, Some(("after", k)))),
        export,
    };
    frame::html(&frame, &view)
}

/// The form that adds one subscriber.
#[derive(Template)]
#[template(path = "dashboard/subscribers/new.html")]
struct NewView {
    frame: Frame,
    page_id: String,
    channels: Vec<(&'static str, &'static str)>,
    kind: String,
    address: String,
    skip: bool,
    errors: FormErrors,
    unverified: bool,
}

impl NewView {
    fn checked(&self, key: &str) -> bool {
        self.kind == key
    }
}

/// What the add form sends.
#[derive(Debug, Default, Deserialize)]
pub struct NewForm {
    #[serde(default)]
    r#type: String,
    #[serde(default)]
    address: String,
    #[serde(default, deserialize_with = "form::checkbox")]
    skip_confirmation: bool,
}

fn new_view(
    frame: Frame,
    page: &Page,
    form: &NewForm,
    errors: FormErrors,
    unverified: bool,
) -> NewView {
    let channels: Vec<_> = accepted_channels(page)
        .into_iter()
        .map(|c| (c.as_str(), channel_label(c)))
        .collect();
    let kind = if form.r#type.is_empty() {
        channels
            .first()
            .map(|(k, _)| (*k).to_owned())
            .unwrap_or_default()
    } else {
        form.r#type.clone()
    };
    NewView {
        frame,
        page_id: page.id.to_string(),
        channels,
        kind,
        address: form.address.clone(),
        skip: form.skip_confirmation,
        errors,
        unverified,
    }
}

/// `GET /dashboard/pages/{page_id}/subscribers/new`.
pub async fn new(req: HttpRequest, mut at: AtPage<Editor>) -> Result<HttpResponse, ApiError> {
    let frame = frame_at(&req, &mut at, Section::Subscribers).await?;
    at.tx.commit().await?;
    let view = new_view(
        frame.clone(),
        &at.page,
        &NewForm::default(),
        FormErrors::none(),
        false,
    );
    frame::html(&frame, &view)
}

/// `POST /dashboard/pages/{page_id}/subscribers`: adds one, as
/// `POST /v1/pages/{page_id}/subscribers` does.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Editor>,
    form: Posted<NewForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let channel = form.r#type.parse::<Channel>().ok();
    let address = Some(form.address.clone());
    let input = SubscriberInput {
        email: address.clone().filter(|_| channel == Some(Channel::Email)),
        phone_number: address.clone().filter(|_| channel == Some(Channel::Sms)),
        endpoint: address.filter(|_| channel.is_some_and(Channel::is_http)),
        r#type: Some(form.r#type.clone()),
        skip_confirmation_notification: Some(form.skip_confirmation),
        ..SubscriberInput::default()
    };
    let page = at.page.clone();
    let (errors, unverified, status) = match rest::add(
        &state,
        &at.member,
        &mut at.tx,
        &page,
        input,
        rest::Admission::One,
    )
    .await
    {
        Ok((s, _)) => {
            at.tx.commit().await?;
            let how = if s.confirmed_at.is_some() {
                "active now"
            } else {
                "a confirmation is on its way to them"
            };
            return Ok(frame::done(
                &format!("/dashboard/pages/{}/subscribers?state=all", page.id),
                &format!("Subscriber {} added: {how}.", shown_address(&s)),
            ));
        }
        Err(ApiError::EmailUnverified) => (FormErrors::none(), true, StatusCode::FORBIDDEN),
        Err(err) => (
            address_errors(err)?,
            false,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    };
    let frame = frame_at(&req, &mut at, Section::Subscribers).await?;
    at.tx.commit().await?;
    let view = new_view(frame, &page, &form, errors, unverified);
    frame::html_with(status, &view)
}

/// The errors of the REST body's fields, on the form's: the address is one
/// field whichever channel it is for; `already_subscribed` is said there too.
fn address_errors(err: ApiError) -> Result<FormErrors, ApiError> {
    let fields = match err {
        ApiError::Conflict {
            code: "already_subscribed",
            detail,
        } => {
            vec![FieldError::new("address", "already_subscribed", detail)]
        }
        ApiError::Validation(fields) => fields
            .into_iter()
            .map(|f| match f.field {
                "type" => f,
                _ => FieldError::new("address", f.code, f.message),
            })
            .collect(),
        other => return Err(other),
    };
    FormErrors::from_error(ApiError::Validation(fields))
}

/// `POST /dashboard/pages/{page_id}/subscribers/{id}/delete`, as
/// `DELETE /v1/pages/{page_id}/subscribers/{id}`.
pub async fn delete(
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let id: SubscriberId = rest::subscriber_id(&path.1)?;
    let s = rest::remove(&at.member, &mut at.tx, page, id).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{page}/subscribers?state=all"),
        &format!("Subscriber {} removed.", shown_address(&s)),
    ))
}

/// `POST /dashboard/pages/{page_id}/subscribers/{id}/resend_confirmation`.
pub async fn resend(
    state: web::Data<AppState>,
    mut at: AtPage<Editor>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let page = at.page.clone();
    let id: SubscriberId = rest::subscriber_id(&path.1)?;
    let s = rest::resend(&state, &mut at.tx, &page, id).await?;
    at.tx.commit().await?;
    Ok(frame::done(
        &format!("/dashboard/pages/{}/subscribers?state=unconfirmed", page.id),
        &format!("Confirmation sent again to {}.", shown_address(&s)),
    ))
}

/// `POST /dashboard/pages/{page_id}/subscribers/reactivate`: the ids in
/// the form's `subscribers` fields, as `POST …/subscribers/reactivate`.
pub async fn reactivate(
    mut at: AtPage<Editor>,
    form: Posted<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let raw: Vec<String> = form
        .into_inner()?
        .into_iter()
        .filter(|(k, _)| k == "subscribers")
        .map(|(_, v)| v)
        .collect();
    let ids: Vec<SubscriberId> = rest::ids_in("subscribers", Some(raw))?;
    let lifted = rest::reactivate_ids(&at.member, &mut at.tx, page, &ids).await?;
    at.tx.commit().await?;
    let n = lifted.len();
    Ok(frame::done(
        &format!("/dashboard/pages/{page}/subscribers?state=quarantined"),
        &format!(
            "{n} {} reactivated: deliveries reach {} again.",
            if n == 1 { "subscriber" } else { "subscribers" },
            if n == 1 { "it" } else { "them" }
        ),
    ))
}
