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
use heliograph_store::TenantTx;
use serde::Deserialize;

use super::form::{self, FormErrors};
use super::frame::{self, Frame, Section};
use crate::error::ApiError;
use crate::input::ListParams;
use crate::page_scope::{AtPage, Editor, Viewer};
use crate::routes::subscribers::{self as rest, SubscriberFilter, SubscriberInput, shown_address};
use crate::startup::AppState;

/// Rows a page of the list shows.
pub(crate) const PER_PAGE: u32 = 50;

/// What the list's address carries: the page of the list, the search, the
/// channel and the state.
#[derive(Debug, Default, Deserialize)]
pub struct ListArgs {
    page: Option<u32>,
    q: Option<String>,
    r#type: Option<String>,
    state: Option<String>,
}

impl ListArgs {
    /// The REST list's parameters for `per_page` rows.
    pub(crate) fn params(&self, per_page: u32) -> Result<ListParams, ApiError> {
        serde_json::from_value(serde_json::json!({
            "page": self.page.unwrap_or(1),
            "per_page": per_page,
            "q": self.q,
        }))
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("Failed to build a query")))
    }

    fn filter(&self, kind: Option<&str>, state: Option<&str>) -> SubscriberFilter {
        SubscriberFilter::new(kind.map(str::to_owned), state.map(str::to_owned))
    }

    /// The list's address with `kind`, `state` and `page` in place of the
    /// current ones (the search kept).
    fn href(&self, page: &Page, kind: Option<&str>, state: &str, number: u32) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(q) = self.q.as_deref().filter(|q| !q.trim().is_empty()) {
            pairs.push(("q", q.to_owned()));
        }
        if let Some(kind) = kind {
            pairs.push(("type", kind.to_owned()));
        }
        pairs.push(("state", state.to_owned()));
        if number > 1 {
            pairs.push(("page", number.to_string()));
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
    state: &'static str,
    channel_tabs: Vec<Tab>,
    state_tabs: Vec<Tab>,
    rows: Vec<Row>,
    total: i64,
    number: u32,
    previous: Option<String>,
    next: Option<String>,
    last: i64,
    export: String,
}

impl ListView {
    fn quarantined_tab(&self) -> bool {
        self.state == "quarantined"
    }
}

const STATES: [(&str, &str); 4] = [
    ("active", "Active"),
    ("unconfirmed", "Awaiting confirmation"),
    ("quarantined", "Quarantined"),
    ("all", "All"),
];

/// `GET /dashboard/pages/{page_id}/subscribers`: the list, as
/// `GET /v1/pages/{page_id}/subscribers` filters it.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Viewer>,
    args: web::Query<ListArgs>,
) -> Result<HttpResponse, ApiError> {
    let args = args.into_inner();
    let params = args.params(PER_PAGE)?;
    let (query, which) = args
        .filter(args.r#type.as_deref(), args.state.as_deref())
        .parse(&params)?;
    let kind = args
        .r#type
        .as_deref()
        .and_then(|k| k.parse::<Channel>().ok())
        .map(Channel::as_str);
    let state_key = STATES
        .iter()
        .map(|(k, _)| *k)
        .find(|k| Some(*k) == args.state.as_deref())
        .unwrap_or("active");
    let listed = at.tx.list_subscribers(at.id(), &query, which).await?;
    let page = at.page.clone();
    let mut channel_tabs =
        vec![tab(&mut at.tx, &args, &page, None, state_key, "All channels").await?];
    for c in accepted_channels(&page) {
        channel_tabs.push(
            tab(
                &mut at.tx,
                &args,
                &page,
                Some(c),
                state_key,
                channel_label(c),
            )
            .await?,
        );
    }
    let mut state_tabs = Vec::new();
    for (key, label) in STATES {
        let (q, w) = args.filter(kind, Some(key)).parse(&params)?;
        state_tabs.push(Tab {
            label,
            href: args.href(&page, kind, key, 1),
            count: at.tx.count_subscribers(page.id, &q, w).await?,
            current: key == state_key,
        });
    }
    let frame = Frame::load(
        &state,
        &req,
        &at.member,
        &mut at.tx,
        Some(&page),
        Section::Subscribers,
    )
    .await?;
    at.tx.commit().await?;
    let number = args.page.unwrap_or(1).max(1);
    let last = ((listed.total + i64::from(PER_PAGE) - 1) / i64::from(PER_PAGE)).max(1);
    let mut export = args.href(&page, kind, state_key, 1);
    export = export.replacen("/subscribers?", "/subscribers/export.csv?", 1);
    let view = ListView {
        frame: frame.clone(),
        page_id: page.id.to_string(),
        q: args.q.clone().unwrap_or_default(),
        kind,
        state: state_key,
        channel_tabs,
        state_tabs,
        rows: listed.items.iter().map(Row::of).collect(),
        total: listed.total,
        number,
        previous: (number > 1).then(|| args.href(&page, kind, state_key, number - 1)),
        next: (i64::from(number) < last).then(|| args.href(&page, kind, state_key, number + 1)),
        last,
        export,
    };
    frame::html(&frame, &view)
}

async fn tab(
    tx: &mut TenantTx,
    args: &ListArgs,
    page: &Page,
    channel: Option<Channel>,
    state_key: &str,
    label: &'static str,
) -> Result<Tab, ApiError> {
    let kind = channel.map(Channel::as_str);
    let params = args.params(1)?;
    let (query, which) = args.filter(kind, Some(state_key)).parse(&params)?;
    Ok(Tab {
        label,
        href: args.href(page, kind, state_key, 1),
        count: tx.count_subscribers(page.id, &query, which).await?,
        current: kind
            == args
                .r#type
                .as_deref()
                .and_then(|k| k.parse::<Channel>().ok())
                .map(Channel::as_str),
    })
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
pub async fn new(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Editor>,
) -> Result<HttpResponse, ApiError> {
    let frame = Frame::load(
        &state,
        &req,
        &at.member,
        &mut at.tx,
        Some(&at.page),
        Section::Subscribers,
    )
    .await?;
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
    form: web::Form<NewForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
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
    let (errors, unverified, status) =
        match rest::add(&state, &at.member, &mut at.tx, &page, input).await {
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
    let frame = Frame::load(
        &state,
        &req,
        &at.member,
        &mut at.tx,
        Some(&page),
        Section::Subscribers,
    )
    .await?;
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
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let page = at.id();
    let raw: Vec<String> = form
        .into_inner()
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
