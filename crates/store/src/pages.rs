//! Pages, and everything a public page shows, read in one go.

use std::collections::HashMap;

use heliograph_domain::{IncidentId, PageId, Slug, TenantId};
use time::OffsetDateTime;

use crate::components::{Component, ComponentGroup};
use crate::incidents::{Incident, IncidentUpdate};
use crate::{Result, Store, TenantTx};

/// The columns of [`Page`], for `returning` and `select` clauses.
macro_rules! page_columns {
    () => {
        "id, tenant_id, slug, name, time_zone, created_at, updated_at"
    };
}
pub(crate) use page_columns;

/// A public status page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Page {
    /// Identifier.
    #[sqlx(try_from = "uuid::Uuid")]
    pub id: PageId,
    /// Owner.
    #[sqlx(try_from = "uuid::Uuid")]
    pub tenant_id: TenantId,
    /// Sub-domain label and `/status/<slug>` path.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// IANA time zone the page shows times in.
    pub time_zone: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change to the page row itself.
    pub updated_at: OffsetDateTime,
}

/// Where a public page lives: enough to open a [`TenantTx`] for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct PageRef {
    /// Owner.
    #[sqlx(try_from = "uuid::Uuid")]
    pub tenant_id: TenantId,
    /// The page.
    #[sqlx(try_from = "uuid::Uuid")]
    pub page_id: PageId,
}

/// Everything the public page and its JSON show.
#[derive(Debug, Clone)]
pub struct PageData {
    /// The page.
    pub page: Page,
    /// Its component groups, by position.
    pub groups: Vec<ComponentGroup>,
    /// Its components, by position.
    pub components: Vec<Component>,
    /// Open incidents, and maintenances scheduled or under way, newest first.
    pub active_incidents: Vec<(Incident, Vec<IncidentUpdate>)>,
}

impl Store {
    /// Resolves a public page by slug.
    ///
    /// Cross-tenant by nature: the visitor names a page, not a tenant. Answers
    /// only the ids needed to open a tenant-scoped transaction.
    pub async fn page_ref_by_slug(&self, slug: &Slug) -> Result<Option<PageRef>> {
        Ok(
            sqlx::query_as("select tenant_id, page_id from hg_page_ref_by_slug($1)")
                .bind(slug.as_str())
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

impl TenantTx {
    /// One of this tenant's pages.
    pub async fn page(&mut self, id: PageId) -> Result<Page> {
        Ok(sqlx::query_as(concat!(
            "select ",
            page_columns!(),
            " from pages where tenant_id = $1 and id = $2"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Everything a public page shows.
    pub async fn page_data(&mut self, id: PageId) -> Result<PageData> {
        let page = self.page(id).await?;
        let groups = self.component_groups(id).await?;
        let components = self.components(id).await?;
        let incidents = self.active_incidents(id).await?;
        let ids: Vec<IncidentId> = incidents.iter().map(|i| i.id).collect();
        let mut updates: HashMap<IncidentId, Vec<IncidentUpdate>> = HashMap::new();
        for update in self.incident_updates(&ids).await? {
            updates.entry(update.incident_id).or_default().push(update);
        }
        let active_incidents = incidents
            .into_iter()
            .map(|incident| {
                let mine = updates.remove(&incident.id).unwrap_or_default();
                (incident, mine)
            })
            .collect();
        Ok(PageData {
            page,
            groups,
            components,
            active_incidents,
        })
    }
}
