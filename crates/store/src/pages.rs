//! Storing pages, and reading everything a public page shows in one go.
//!
//! What a page is and the rules its settings keep are
//! `heliograph_domain::page`'s; this module reads and writes rows.

use std::collections::HashMap;

use heliograph_domain::page::{HISTORY_LIMIT, PageData};
use heliograph_domain::{
    IncidentId, Name, Page, PageEdit, PageId, PageRef, PageRoute, Slug, TimeZoneName,
};
use sqlx::{Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{ListQuery, Listed, Result, Store, StoreError, TenantTx};
use heliograph_domain::{Incident, IncidentUpdate};

/// The columns of [`Page`], for `returning` and `select` clauses.
macro_rules! page_columns {
    () => {
        "id, tenant_id, slug, name, time_zone, headline, support_url, logo_url, brand_color,
         background_color, text_color, allow_email_subscribers, allow_sms_subscribers,
         allow_webhook_subscribers, sms_calling_code, sms_allowed_calling_codes,
         uptime_partial_weight, created_at, updated_at"
    };
}
pub(crate) use page_columns;

/// A page's row, before its values are checked.
#[derive(sqlx::FromRow)]
pub(crate) struct PageRow {
    id: Uuid,
    tenant_id: Uuid,
    slug: String,
    name: String,
    time_zone: String,
    headline: Option<String>,
    support_url: Option<String>,
    logo_url: Option<String>,
    brand_color: String,
    background_color: String,
    text_color: String,
    allow_email_subscribers: bool,
    allow_sms_subscribers: bool,
    allow_webhook_subscribers: bool,
    sms_calling_code: Option<String>,
    sms_allowed_calling_codes: Vec<String>,
    uptime_partial_weight: f64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<PageRow> for Page {
    type Error = StoreError;
    fn try_from(r: PageRow) -> Result<Self> {
        Ok(Self {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            slug: stored_slug(&r.slug)?,
            name: r.name,
            time_zone: TimeZoneName::stored(&r.time_zone),
            headline: r.headline,
            support_url: r.support_url,
            logo_url: r.logo_url,
            brand_color: r.brand_color,
            background_color: r.background_color,
            text_color: r.text_color,
            allow_email_subscribers: r.allow_email_subscribers,
            allow_sms_subscribers: r.allow_sms_subscribers,
            allow_webhook_subscribers: r.allow_webhook_subscribers,
            sms_calling_code: r.sms_calling_code,
            sms_allowed_calling_codes: r.sms_allowed_calling_codes,
            uptime_partial_weight: r.uptime_partial_weight,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A stored slug, which the domain must accept.
pub(crate) fn stored_slug(slug: &str) -> Result<Slug> {
    Slug::parse("slug", slug).map_err(|e| StoreError::Corrupt(format!("slug {slug:?}: {e}")))
}

/// A [`PageRef`]'s row.
#[derive(sqlx::FromRow)]
struct PageRefRow {
    tenant_id: Uuid,
    page_id: Uuid,
}

impl From<PageRefRow> for PageRef {
    fn from(r: PageRefRow) -> Self {
        Self {
            tenant_id: r.tenant_id.into(),
            page_id: r.page_id.into(),
        }
    }
}

/// A [`PageRoute`]'s row.
#[derive(sqlx::FromRow)]
struct PageRouteRow {
    slug: String,
    tenant_id: Uuid,
    page_id: Uuid,
}

impl TryFrom<PageRouteRow> for PageRoute {
    type Error = StoreError;
    fn try_from(r: PageRouteRow) -> Result<Self> {
        Ok(Self {
            slug: stored_slug(&r.slug)?,
            tenant_id: r.tenant_id.into(),
            page_id: r.page_id.into(),
        })
    }
}

impl Store {
    /// Every page's route, for the public pages' in-memory routing table.
    ///
    /// Cross-tenant by nature, like [`Store::page_ref_by_slug`].
    pub async fn page_routes(&self) -> Result<Vec<PageRoute>> {
        let rows: Vec<PageRouteRow> =
            sqlx::query_as("select slug, tenant_id, page_id from hg_page_routes()")
                .fetch_all(&self.pool)
                .await?;
        // One page whose stored slug today's rules refuse must not take
        // every other page off the air: it is left out, and said so.
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let page = row.page_id;
                PageRoute::try_from(row)
                    .inspect_err(
                        |e| tracing::warn!(page.id = %page, error = %e, "page left out of routing"),
                    )
                    .ok()
            })
            .collect())
    }

    /// Pages whose public content changed after `seq` (see the
    /// `page_changes` migration), and the newest seq among them.
    pub async fn page_changes_since(&self, seq: i64) -> Result<(Vec<PageId>, i64)> {
        let rows: Vec<(uuid::Uuid, i64)> =
            sqlx::query_as("select page_id, seq from hg_page_changes_since($1)")
                .bind(seq)
                .fetch_all(&self.pool)
                .await?;
        let newest = rows.iter().map(|(_, s)| *s).fold(seq, i64::max);
        Ok((
            rows.into_iter().map(|(p, _)| PageId::from(p)).collect(),
            newest,
        ))
    }

    /// The newest page change's seq (0 when none).
    pub async fn page_changes_head(&self) -> Result<i64> {
        let (seq,): (i64,) = sqlx::query_as("select hg_page_changes_head()")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq)
    }

    /// Forgets page changes older than `before`; answers how many.
    pub async fn prune_page_changes(&self, before: OffsetDateTime) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("select hg_prune_page_changes($1)")
            .bind(before)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Resolves a public page by slug.
    ///
    /// Cross-tenant by nature: the visitor names a page, not a tenant. Answers
    /// only the ids needed to open a tenant-scoped transaction.
    pub async fn page_ref_by_slug(&self, slug: &Slug) -> Result<Option<PageRef>> {
        let row: Option<PageRefRow> =
            sqlx::query_as("select tenant_id, page_id from hg_page_ref_by_slug($1)")
                .bind(slug.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(PageRef::from))
    }
}

impl TenantTx {
    /// A slice of the tenant's pages, by creation, matching `query`.
    pub async fn list_pages(&mut self, query: &ListQuery) -> Result<Listed<Page>> {
        let filter = |select: &str| {
            let mut qb = QueryBuilder::<Postgres>::new(select);
            qb.push(" from pages where tenant_id = ")
                .push_bind(self.tenant.as_uuid());
            if let Some(pattern) = query.pattern() {
                qb.push(" and name ilike ")
                    .push_bind(pattern)
                    .push(" escape '\\'");
            }
            qb
        };
        crate::listed::<PageRow, _>(
            &mut self.tx,
            filter,
            concat!("select ", page_columns!()),
            " order by created_at, id",
            query,
        )
        .await
    }

    /// Creates another page for the tenant.
    pub async fn create_page(
        &mut self,
        name: &Name,
        slug: &Slug,
        time_zone: &TimeZoneName,
    ) -> Result<Page> {
        let row: PageRow = sqlx::query_as(concat!(
            "insert into pages (id, tenant_id, slug, name, time_zone) values ($1, $2, $3, $4, $5) returning ",
            page_columns!()
        ))
        .bind(PageId::new().as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(slug.as_str())
        .bind(name.as_str())
        .bind(time_zone.as_str())
        .fetch_one(&mut *self.tx)
        .await?;
        row.try_into()
    }

    /// Changes a page's settings.
    pub async fn edit_page(&mut self, id: PageId, edit: &PageEdit) -> Result<Page> {
        let row: PageRow = sqlx::query_as(concat!(
            "update pages set
                 name = coalesce($3, name),
                 slug = coalesce($4, slug),
                 time_zone = coalesce($5, time_zone),
                 headline = case when $6 then $7 else headline end,
                 support_url = case when $8 then $9 else support_url end,
                 logo_url = case when $10 then $11 else logo_url end,
                 brand_color = coalesce($12, brand_color),
                 background_color = coalesce($13, background_color),
                 text_color = coalesce($14, text_color),
                 allow_email_subscribers = coalesce($15, allow_email_subscribers),
                 allow_sms_subscribers = coalesce($16, allow_sms_subscribers),
                 allow_webhook_subscribers = coalesce($17, allow_webhook_subscribers),
                 uptime_partial_weight = coalesce($18, uptime_partial_weight),
                 sms_calling_code = case when $19 then $20 else sms_calling_code end,
                 sms_allowed_calling_codes = coalesce($21, sms_allowed_calling_codes)
             where tenant_id = $1 and id = $2
             returning ",
            page_columns!()
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(edit.name.as_ref().map(Name::as_str))
        .bind(edit.slug.as_ref().map(Slug::as_str))
        .bind(edit.time_zone.as_ref().map(TimeZoneName::as_str))
        .bind(edit.headline.is_some())
        .bind(edit.headline.clone().flatten())
        .bind(edit.support_url.is_some())
        .bind(edit.support_url.clone().flatten())
        .bind(edit.logo_url.is_some())
        .bind(edit.logo_url.clone().flatten())
        .bind(edit.brand_color.as_deref())
        .bind(edit.background_color.as_deref())
        .bind(edit.text_color.as_deref())
        .bind(edit.allow_email_subscribers)
        .bind(edit.allow_sms_subscribers)
        .bind(edit.allow_webhook_subscribers)
        .bind(edit.uptime_partial_weight)
        .bind(edit.sms_calling_code.is_some())
        .bind(
            edit.sms_calling_code
                .as_ref()
                .and_then(|c| c.as_ref().map(|c| c.as_str().to_owned())),
        )
        .bind(edit.sms_allowed_calling_codes.as_ref().map(|codes| {
            codes
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect::<Vec<_>>()
        }))
        .fetch_one(&mut *self.tx)
        .await?;
        row.try_into()
    }

    /// Whether the tenant may send to addresses its team typed in: one of
    /// its owners has verified their email address. Until then it can build
    /// its pages, but adds no email or SMS subscriber, invites nobody and
    /// turns no SMS on: an unverified account must not be a relay.
    pub async fn tenant_verified(&mut self) -> Result<bool> {
        let (verified,): (bool,) = sqlx::query_as(
            "select exists (select 1 from memberships m join users u on u.id = m.user_id
                             where m.tenant_id = $1 and m.role = 'owner'
                               and u.email_verified_at is not null)",
        )
        .bind(self.tenant.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(verified)
    }

    /// One of this tenant's pages.
    pub async fn page(&mut self, id: PageId) -> Result<Page> {
        let row: PageRow = sqlx::query_as(concat!(
            "select ",
            page_columns!(),
            " from pages where tenant_id = $1 and id = $2"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        row.try_into()
    }

    /// Everything a public page shows.
    pub async fn page_data(&mut self, id: PageId) -> Result<PageData> {
        let page = self.page(id).await?;
        let groups = self.component_groups(id).await?;
        let components = self.components(id).await?;
        let active = self.active_incidents(id).await?;
        let history = self.recent_incidents(id, HISTORY_LIMIT).await?;
        let mut ids: Vec<IncidentId> = active.iter().chain(&history).map(|i| i.id).collect();
        ids.sort_unstable_by_key(|i| i.as_uuid());
        ids.dedup();
        let mut updates: HashMap<IncidentId, Vec<IncidentUpdate>> = HashMap::new();
        for update in self.incident_updates(&ids).await? {
            updates.entry(update.incident_id).or_default().push(update);
        }
        let with_updates = |incidents: Vec<Incident>| {
            incidents
                .into_iter()
                .map(|incident| {
                    let mine = updates.get(&incident.id).cloned().unwrap_or_default();
                    (incident, mine)
                })
                .collect()
        };
        Ok(PageData {
            page,
            groups,
            components,
            active_incidents: with_updates(active),
            history: with_updates(history),
        })
    }
}
