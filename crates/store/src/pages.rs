//! Pages, and everything a public page shows, read in one go.

use std::collections::HashMap;

use heliograph_domain::{CallingCode, IncidentId, Name, PageId, Slug, TenantId, TimeZoneName};
use time::OffsetDateTime;

use crate::components::{Component, ComponentGroup};
use crate::incidents::{Incident, IncidentUpdate};
use crate::{ListQuery, Listed, Result, Store, TenantTx};

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
    /// A line shown under the page's name.
    pub headline: Option<String>,
    /// Where the page's readers get help.
    pub support_url: Option<String>,
    /// The tenant's logo (an https URL).
    pub logo_url: Option<String>,
    /// Accent colour, `#rrggbb`.
    pub brand_color: String,
    /// Background colour, `#rrggbb`.
    pub background_color: String,
    /// Text colour, `#rrggbb`.
    pub text_color: String,
    /// Whether readers may subscribe by email.
    pub allow_email_subscribers: bool,
    /// Whether readers may subscribe by SMS.
    pub allow_sms_subscribers: bool,
    /// Whether readers may subscribe with a webhook.
    pub allow_webhook_subscribers: bool,
    /// The calling code of the page's own country (`"44"`): where texts go
    /// while `sms_allowed_calling_codes` is empty.
    pub sms_calling_code: Option<String>,
    /// The countries texts may go to, by calling code; empty: the page's own.
    pub sms_allowed_calling_codes: Vec<String>,
    /// The share of partial-outage time counted as down in uptime.
    pub uptime_partial_weight: f64,
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
    /// The page's history: its [`HISTORY_LIMIT`] most recent incidents and
    /// as many maintenances, any status, newest first within each kind.
    pub history: Vec<(Incident, Vec<IncidentUpdate>)>,
}

/// How many incidents (and, apart, maintenances) a page's public history holds.
pub const HISTORY_LIMIT: i64 = 100;

/// A public page's address: its slug, and where it lives.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PageRoute {
    /// The page's slug.
    pub slug: String,
    /// Owner.
    #[sqlx(try_from = "uuid::Uuid")]
    pub tenant_id: TenantId,
    /// The page.
    #[sqlx(try_from = "uuid::Uuid")]
    pub page_id: PageId,
}

impl Store {
    /// Every page's route, for the public pages' in-memory routing table.
    ///
    /// Cross-tenant by nature, like [`Store::page_ref_by_slug`].
    pub async fn page_routes(&self) -> Result<Vec<PageRoute>> {
        Ok(
            sqlx::query_as("select slug, tenant_id, page_id from hg_page_routes()")
                .fetch_all(&self.pool)
                .await?,
        )
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
        Ok(
            sqlx::query_as("select tenant_id, page_id from hg_page_ref_by_slug($1)")
                .bind(slug.as_str())
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

/// Changes to a page; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct PageEdit {
    /// New name.
    pub name: Option<Name>,
    /// New slug (sub-domain and path).
    pub slug: Option<Slug>,
    /// New IANA time zone.
    pub time_zone: Option<TimeZoneName>,
    /// New headline.
    pub headline: Option<Option<String>>,
    /// New support URL.
    pub support_url: Option<Option<String>>,
    /// New logo URL.
    pub logo_url: Option<Option<String>>,
    /// New accent colour.
    pub brand_color: Option<String>,
    /// New background colour.
    pub background_color: Option<String>,
    /// New text colour.
    pub text_color: Option<String>,
    /// Email subscriptions on or off.
    pub allow_email_subscribers: Option<bool>,
    /// SMS subscriptions on or off.
    pub allow_sms_subscribers: Option<bool>,
    /// Webhook subscriptions on or off.
    pub allow_webhook_subscribers: Option<bool>,
    /// New calling code of the page's own country, or none.
    pub sms_calling_code: Option<Option<CallingCode>>,
    /// New list of the countries texts may go to.
    pub sms_allowed_calling_codes: Option<Vec<CallingCode>>,
    /// New partial-outage weight, in `[0, 1]`.
    pub uptime_partial_weight: Option<f64>,
}

impl TenantTx {
    /// A slice of the tenant's pages, by creation, matching `query`.
    pub async fn list_pages(&mut self, query: &ListQuery) -> Result<Listed<Page>> {
        const WHERE: &str = " from pages where tenant_id = $1
             and ($2::text is null or name ilike $2 escape '\\')";
        let (total,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("select count(*){WHERE}")))
                .bind(self.tenant.as_uuid())
                .bind(query.pattern())
                .fetch_one(&mut *self.tx)
                .await?;
        let items = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {}{WHERE} order by created_at, id limit $3 offset $4",
            page_columns!()
        )))
        .bind(self.tenant.as_uuid())
        .bind(query.pattern())
        .bind(query.limit)
        .bind(query.offset)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(Listed { items, total })
    }

    /// Creates another page for the tenant.
    pub async fn create_page(
        &mut self,
        name: &Name,
        slug: &Slug,
        time_zone: &TimeZoneName,
    ) -> Result<Page> {
        Ok(sqlx::query_as(concat!(
            "insert into pages (id, tenant_id, slug, name, time_zone) values ($1, $2, $3, $4, $5) returning ",
            page_columns!()
        ))
        .bind(PageId::new().as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(slug.as_str())
        .bind(name.as_str())
        .bind(time_zone.as_str())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Changes a page's settings.
    pub async fn edit_page(&mut self, id: PageId, edit: &PageEdit) -> Result<Page> {
        Ok(sqlx::query_as(concat!(
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
        .await?)
    }

    /// Whether the tenant may send to addresses its team typed in: one of
    /// its owners has verified their email address. Until then it can build
    /// its pages, but adds no email or SMS subscriber, invites nobody and
    /// turns no SMS on (issue 13: unverified accounts are not a relay).
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
