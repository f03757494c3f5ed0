//! Importing a CSV of email addresses, and exporting a page's subscribers
//! as CSV.
//!
//! An import goes in two steps. The addresses are pasted (or read from a
//! file by `dashboard.js` into the same box) and posted; the answer is a
//! preview with each row's verdict (valid, invalid and why, a duplicate of
//! an earlier row, already subscribed). Its "Import N subscribers" button
//! posts the valid addresses again, in a hidden field: nothing is kept on
//! the server between the steps, and every row is checked again when it
//! is created, through `routes::subscribers::add`, the REST API's own.
//!
//! The export reads the list through the store's list query, a slice at a
//! time, and streams it: a page of twenty thousand subscribers is never
//! held in memory at once. A cell that a spreadsheet would take for a
//! formula (`=`, `+`, `-`, `@`) is prefixed with `'`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use heliograph_domain::{Limit, Page, Subscriber};
use heliograph_store::{SubscriberCursor, SubscriberKey, TenantTx};
use serde::Deserialize;

use super::super::form::{self, FormErrors, Posted};
use super::super::frame::{self, Frame, Section, frame_at};
use super::{ListArgs, channel_label, shown_address, state_label};
use crate::error::ApiError;
use crate::page_scope::{AtPage, Editor, Viewer};
use crate::plan_limits::Claim;
use crate::routes::subscribers::{self as rest, SubscriberInput};
use crate::secrets::endpoint_digests;
use crate::startup::AppState;

/// Most rows one import takes.
const MAX_ROWS: usize = 1000;

/// A row's verdict.
pub enum Verdict {
    /// Will be added.
    Valid,
    /// Not an address the page takes, and why.
    Invalid(String),
    /// The same address as an earlier row (its line).
    Duplicate(usize),
    /// Already a subscriber of the page.
    AlreadySubscribed,
}

/// One row of the pasted CSV.
pub struct Row {
    line: usize,
    value: String,
    verdict: Verdict,
}

impl Row {
    fn valid(&self) -> bool {
        matches!(self.verdict, Verdict::Valid)
    }

    fn verdict(&self) -> String {
        match &self.verdict {
            Verdict::Valid => "Valid".to_owned(),
            Verdict::Invalid(why) => format!("Invalid: {why}"),
            Verdict::Duplicate(line) => format!("Duplicate of line {line}"),
            Verdict::AlreadySubscribed => "Already subscribed".to_owned(),
        }
    }

    fn tone(&self) -> &'static str {
        match self.verdict {
            Verdict::Valid => "ok",
            Verdict::Invalid(_) => "critical",
            Verdict::Duplicate(_) | Verdict::AlreadySubscribed => "neutral",
        }
    }
}

/// The import form, its preview, or what an import could not add.
#[derive(Template)]
#[template(path = "dashboard/subscribers/import.html")]
struct ImportView {
    frame: Frame,
    page_id: String,
    csv: String,
    skip: bool,
    errors: FormErrors,
    unverified: bool,
    /// The preview's rows (none on the form itself).
    rows: Vec<Row>,
    /// The valid addresses, one a line, for the import step.
    valid: String,
    valid_count: usize,
    /// After an import: how many were added (the rows are those that were not).
    added: Option<usize>,
}

/// What the import form sends.
#[derive(Debug, Default, Deserialize)]
pub struct ImportForm {
    #[serde(default)]
    csv: String,
    #[serde(default, deserialize_with = "form::checkbox")]
    skip_confirmation: bool,
    /// `import` on the preview's button; anything else previews.
    #[serde(default)]
    step: String,
}

fn view(frame: Frame, page: &Page, form: &ImportForm) -> ImportView {
    ImportView {
        frame,
        page_id: page.id.to_string(),
        csv: form.csv.clone(),
        skip: form.skip_confirmation,
        errors: FormErrors::none(),
        unverified: false,
        rows: Vec::new(),
        valid: String::new(),
        valid_count: 0,
        added: None,
    }
}

/// `GET /dashboard/pages/{page_id}/subscribers/import`.
pub async fn form(req: HttpRequest, mut at: AtPage<Editor>) -> Result<HttpResponse, ApiError> {
    let frame = frame_at(&req, &mut at, Section::Subscribers).await?;
    at.tx.commit().await?;
    let v = view(frame.clone(), &at.page, &ImportForm::default());
    frame::html(&frame, &v)
}

/// The first cell of each non-blank line, with its line number; a first
/// line that holds no address (a header such as `email`) is skipped.
fn cells(csv: &str) -> Vec<(usize, String)> {
    csv.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let cell = line
                .split([',', ';', '\t'])
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .trim()
                .to_owned();
            (!cell.is_empty()).then_some((i + 1, cell))
        })
        .enumerate()
        .filter(|(n, (_, cell))| *n != 0 || cell.contains('@'))
        .map(|(_, row)| row)
        .collect()
}

fn input(address: &str, skip: bool) -> SubscriberInput {
    SubscriberInput {
        email: Some(address.to_owned()),
        skip_confirmation_notification: Some(skip),
        ..SubscriberInput::default()
    }
}

/// Each row's verdict, by the REST API's parse and its "already
/// subscribed" check.
async fn verdicts(
    state: &AppState,
    tx: &mut TenantTx,
    page: &Page,
    cells: Vec<(usize, String)>,
    skip: bool,
) -> Result<Vec<Row>, ApiError> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut rows = Vec::with_capacity(cells.len());
    for (line, value) in cells {
        let verdict = match rest::parse(&state.secrets, input(&value, skip), page) {
            Err(ApiError::Validation(fields)) => Verdict::Invalid(
                fields
                    .iter()
                    .map(|f| f.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Err(other) => return Err(other),
            Ok((new, _)) => {
                let key = shown_target_key(&new.target);
                if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                    Verdict::Duplicate(*first)
                } else {
                    seen.push((key, line));
                    let digests = endpoint_digests(&state.secrets, &new.target);
                    if tx
                        .subscriber_by_target(page.id, &new.target, &digests)
                        .await?
                        .is_some()
                    {
                        Verdict::AlreadySubscribed
                    } else {
                        Verdict::Valid
                    }
                }
            }
        };
        rows.push(Row {
            line,
            value,
            verdict,
        });
    }
    Ok(rows)
}

/// Addresses compare without regard to case, as the database compares them.
fn shown_target_key(target: &heliograph_domain::Target) -> String {
    match target {
        heliograph_domain::Target::Email(e) => e.as_str().to_lowercase(),
        other => format!("{other:?}"),
    }
}

/// `POST /dashboard/pages/{page_id}/subscribers/import`: the preview, or
/// (`step=import`) the import.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Editor>,
    form: Posted<ImportForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner()?;
    let page = at.page.clone();
    let cells = cells(&form.csv);
    let mut errors = FormErrors::none();
    if cells.is_empty() {
        errors = FormErrors::field("csv", "Paste at least one email address, one a line.");
    } else if cells.len() > MAX_ROWS {
        errors = FormErrors::field(
            "csv",
            format!("At most {MAX_ROWS} rows at a time: split the file and import each part."),
        );
    }
    // Nothing an import adds is sent to before an owner is verified: say
    // so before the preview, rather than refusing every row.
    let unverified = !errors.any() && !at.tx.tenant_verified().await?;
    if errors.any() || unverified {
        let frame = frame_at(&req, &mut at, Section::Subscribers).await?;
        at.tx.commit().await?;
        let mut v = view(frame, &page, &form);
        v.errors = errors;
        v.unverified = unverified;
        let status = if unverified {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        return frame::html_with(status, &v);
    }
    if form.step == "import" {
        return import(req, state, at, form, cells).await;
    }
    let rows = verdicts(&state, &mut at.tx, &page, cells, form.skip_confirmation).await?;
    let frame = frame_at(&req, &mut at, Section::Subscribers).await?;
    at.tx.commit().await?;
    let valid: Vec<&str> = rows
        .iter()
        .filter(|r| r.valid())
        .map(|r| r.value.as_str())
        .collect();
    let mut v = view(frame.clone(), &page, &form);
    v.valid = valid.join("\n");
    v.valid_count = valid.len();
    v.rows = rows;
    frame::html(&frame, &v)
}

/// Adds each address through the REST API's `add`; a row it refuses is
/// reported and the others go on.
async fn import(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut at: AtPage<Editor>,
    form: ImportForm,
    cells: Vec<(usize, String)>,
) -> Result<HttpResponse, ApiError> {
    let page = at.page.clone();
    // One hold on the page's subscribers for the whole import, checked once
    // at the end: an import that would pass the plan's limit adds nothing.
    let claim = Claim::take(&state, &mut at.tx, Limit::SubscribersPerPage, Some(page.id)).await?;
    let mut added = 0;
    let mut refused = Vec::new();
    for (line, value) in cells {
        let verdict = match rest::add(
            &state,
            &at.member,
            &mut at.tx,
            &page,
            input(&value, form.skip_confirmation),
            rest::Admission::Held,
        )
        .await
        {
            Ok(_) => {
                added += 1;
                continue;
            }
            Err(ApiError::Conflict {
                code: "already_subscribed",
                ..
            }) => Verdict::AlreadySubscribed,
            Err(ApiError::Validation(fields)) => Verdict::Invalid(
                fields
                    .iter()
                    .map(|f| f.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Err(other) => return Err(other),
        };
        refused.push(Row {
            line,
            value,
            verdict,
        });
    }
    claim.admit(u64::try_from(added).unwrap_or(u64::MAX))?;
    let summary = format!(
        "Imported {added} {}{}.",
        if added == 1 {
            "subscriber"
        } else {
            "subscribers"
        },
        if refused.is_empty() {
            String::new()
        } else {
            format!("; {} not imported", refused.len())
        }
    );
    if refused.is_empty() {
        at.tx.commit().await?;
        return Ok(frame::done(
            &format!("/dashboard/pages/{}/subscribers?state=all", page.id),
            &summary,
        ));
    }
    let mut frame = frame_at(&req, &mut at, Section::Subscribers).await?;
    at.tx.commit().await?;
    frame.flash = Some(summary);
    let mut v = view(frame.clone(), &page, &ImportForm::default());
    v.rows = refused;
    v.added = Some(added);
    frame::html_bare(&v, false)
}

/// Rows the export reads at a time.
const EXPORT_SLICE: u32 = 500;

/// `GET /dashboard/pages/{page_id}/subscribers/export.csv`: the list (its
/// channel, state and search) as CSV, streamed a slice at a time, each
/// slice read from where the last one ended.
pub async fn export(
    at: AtPage<Viewer>,
    args: web::Query<ListArgs>,
) -> Result<HttpResponse, ApiError> {
    let (query, which) = args.filter()?;
    let AtPage { tx, page, .. } = at;
    let header_row =
        web::Bytes::from_static(b"id,type,address,state,components,confirmed_at,created_at\r\n");
    let first = futures::stream::once(async move { Ok::<_, ApiError>(header_row) });
    let slices =
        futures::stream::try_unfold((Some(tx), SubscriberCursor::First), move |(tx, cursor)| {
            let query = query.clone();
            async move {
                let Some(mut tx) = tx else {
                    return Ok(None);
                };
                let slice = tx
                    .subscriber_window(page.id, &query, which, cursor, EXPORT_SLICE)
                    .await?;
                let body: String = slice.items.iter().map(csv_line).collect();
                let after = slice.items.last().map(SubscriberKey::of);
                let next = match after.filter(|_| slice.more_after) {
                    Some(key) => (Some(tx), SubscriberCursor::After(key)),
                    None => {
                        tx.commit().await?;
                        (None, cursor)
                    }
                };
                Ok(Some((web::Bytes::from(body), next)))
            }
        });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"subscribers-{}.csv\"",
                page.slug.as_str()
            ),
        ))
        .streaming(futures::StreamExt::chain(first, slices)))
}

/// One subscriber as a CSV line.
fn csv_line(s: &Subscriber) -> String {
    let components: Vec<String> = s.component_ids.iter().map(ToString::to_string).collect();
    let cells = [
        s.id.to_string(),
        channel_label(s.channel).to_lowercase(),
        shown_address(s),
        state_label(s.state()).to_owned(),
        components.join(" "),
        s.confirmed_at
            .map(heliograph_web::timestamp)
            .unwrap_or_default(),
        heliograph_web::timestamp(s.created_at),
    ];
    let mut line = cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// A CSV cell: one a spreadsheet would read as a formula gets a leading
/// `'`; one with a comma, a quote or a line break is quoted.
fn cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::{cell, cells};

    #[test]
    fn cells_a_spreadsheet_would_run_are_defused() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+14155550123"), "'+14155550123");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("ann@example.com"), "ann@example.com");
        assert_eq!(cell("a,b"), "\"a,b\"");
    }

    #[test]
    fn the_first_cell_of_each_line_is_read_and_a_header_skipped() {
        let read =
            cells("email,name\n\"ann@example.com\",Ann\n\n bob@example.com ;x\nnot-an-address");
        assert_eq!(
            read,
            vec![
                (2, "ann@example.com".to_owned()),
                (4, "bob@example.com".to_owned()),
                (5, "not-an-address".to_owned()),
            ]
        );
    }
}
