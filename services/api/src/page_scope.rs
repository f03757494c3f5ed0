//! The page a request acts on, resolved before its handler runs.
//!
//! Every route under `/v1/pages/{page_id}/…` acts on one of the caller's
//! pages. [`AtPage`] is the extractor for them: it authenticates the caller
//! (the [`Member`] extractor), opens the tenant's transaction, loads the
//! page — another tenant's page, or a malformed id, is 404 — and only then
//! checks the role the route needs, so a page the caller cannot see is
//! never answered 403. The role is part of the handler's signature
//! (`AtPage<Editor>`), so a handler cannot forget the check or make it in
//! the wrong order.
//!
//! This module owns that order and nothing else: what a role may do is
//! `heliograph_domain::Role`'s, and what a page is, the domain's.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use heliograph_domain::{Page, PageId, Role};
use heliograph_store::TenantTx;

use crate::auth::Member;
use crate::error::ApiError;
use crate::startup::AppState;

/// The least role a route needs, as a type.
pub trait Needs {
    /// The role.
    const ROLE: Role;
}

/// Anyone of the tenant: reads.
#[derive(Debug)]
pub struct Viewer;
/// Editors and above: incidents, maintenance, component status.
#[derive(Debug)]
pub struct Editor;
/// Admins and above: the page's structure, subscribers, settings.
#[derive(Debug)]
pub struct Admin;

impl Needs for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl Needs for Editor {
    const ROLE: Role = Role::Editor;
}
impl Needs for Admin {
    const ROLE: Role = Role::Admin;
}

/// A member acting on one of their tenant's pages with at least role `R`,
/// and the open tenant transaction the page was read in (the handler
/// commits it).
pub struct AtPage<R: Needs> {
    /// Who acts.
    pub member: Member,
    /// The tenant's transaction.
    pub tx: TenantTx,
    /// The page, as it was when the request began.
    pub page: Page,
    role: PhantomData<R>,
}

impl<R: Needs> AtPage<R> {
    /// The page's id.
    #[must_use]
    pub fn id(&self) -> PageId {
        self.page.id
    }
}

impl<R: Needs + 'static> FromRequest for AtPage<R> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let member = Member::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let page_id = req.match_info().get("page_id").map(str::parse::<PageId>);
        Box::pin(async move {
            let member = member.await?;
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))?;
            let id = match page_id {
                Some(Ok(id)) => id,
                Some(Err(_)) => return Err(ApiError::NotFound),
                None => {
                    return Err(ApiError::Internal(anyhow::anyhow!(
                        "AtPage on a route without {{page_id}}"
                    )));
                }
            };
            let mut tx = state.store.tenant_tx(member.tenant).await?;
            let page = tx.page(id).await?;
            member.require(R::ROLE)?;
            tracing::Span::current().record("page.id", tracing::field::display(id));
            Ok(Self {
                member,
                tx,
                page,
                role: PhantomData,
            })
        })
    }
}
