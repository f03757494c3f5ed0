//! Incident templates: prepared names, messages and components for the
//! incidents a team opens again and again. The entity is the domain's
//! (`IncidentTemplate`); this module only stores and reads it.

use heliograph_domain::{
    ComponentId, IncidentStatus, IncidentTemplate, Name, PageId, TemplateId, TenantId,
};
use sqlx::{Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{ListQuery, Listed, Result, TenantTx};

/// An incident template row.
#[derive(Debug, Clone, sqlx::FromRow)]
struct TemplateRow {
    /// Identifier.
    #[sqlx(try_from = "Uuid")]
    pub id: TemplateId,
    /// The page it is for.
    #[sqlx(try_from = "Uuid")]
    pub page_id: PageId,
    /// The template's own name, unique on the page.
    pub name: String,
    /// The incident's name.
    pub title: String,
    /// The first update's message.
    pub body: String,
    /// The incident's first status.
    #[sqlx(try_from = "String")]
    pub update_status: IncidentStatus,
    /// Whether subscribers are told.
    pub should_send_notifications: bool,
    /// The components it concerns.
    pub component_ids: Vec<Uuid>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl From<TemplateRow> for IncidentTemplate {
    fn from(r: TemplateRow) -> Self {
        Self {
            id: r.id,
            page_id: r.page_id,
            name: r.name,
            title: r.title,
            body: r.body,
            update_status: r.update_status,
            should_send_notifications: r.should_send_notifications,
            component_ids: r.component_ids.into_iter().map(ComponentId::from).collect(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A template to create.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    /// The template's own name.
    pub name: Name,
    /// The incident's name.
    pub title: Name,
    /// The first update's message.
    pub body: String,
    /// The incident's first status (an incident status).
    pub update_status: IncidentStatus,
    /// Whether subscribers are told.
    pub should_send_notifications: bool,
    /// The components it concerns.
    pub component_ids: Vec<ComponentId>,
}

macro_rules! template_columns {
    () => {
        "t.id, t.page_id, t.name, t.title, t.body, t.update_status, t.should_send_notifications,
         array(select tc.component_id from incident_template_components tc
                where tc.template_id = t.id order by tc.component_id) as component_ids,
         t.created_at, t.updated_at"
    };
}

impl TenantTx {
    /// Creates a template.
    pub async fn create_template(
        &mut self,
        page: PageId,
        new: &NewTemplate,
    ) -> Result<IncidentTemplate> {
        self.page(page).await?;
        self.check_components_on_page("component_ids", page, &new.component_ids)
            .await?;
        let id = TemplateId::new();
        sqlx::query(
            "insert into incident_templates (id, tenant_id, page_id, name, title, body,
                                             update_status, should_send_notifications)
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(new.name.as_str())
        .bind(new.title.as_str())
        .bind(&new.body)
        .bind(new.update_status.as_str())
        .bind(new.should_send_notifications)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "insert into incident_template_components (tenant_id, template_id, component_id)
             select $1, $2, unnest($3::uuid[]) on conflict do nothing",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(
            new.component_ids
                .iter()
                .map(ComponentId::as_uuid)
                .collect::<Vec<_>>(),
        )
        .execute(&mut *self.tx)
        .await?;
        self.template(page, id).await
    }

    /// One template of a page.
    pub async fn template(&mut self, page: PageId, id: TemplateId) -> Result<IncidentTemplate> {
        let row: TemplateRow = sqlx::query_as(concat!(
            "select ",
            template_columns!(),
            " from incident_templates t where t.tenant_id = $1 and t.page_id = $2 and t.id = $3"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.into())
    }

    /// A slice of a page's templates, by name, matching `query`.
    pub async fn list_templates(
        &mut self,
        page: PageId,
        query: &ListQuery,
    ) -> Result<Listed<IncidentTemplate>> {
        let tenant = self.tenant;
        crate::listed::<TemplateRow, _>(
            &mut self.tx,
            |select| templates_where(QueryBuilder::new(select), tenant, page, query),
            concat!("select ", template_columns!()),
            " order by lower(t.name), t.id",
            query,
        )
        .await
    }

    /// Deletes a template; incidents opened from it stay.
    pub async fn delete_template(
        &mut self,
        page: PageId,
        id: TemplateId,
    ) -> Result<IncidentTemplate> {
        let template = self.template(page, id).await?;
        sqlx::query("delete from incident_templates where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(template)
    }
}

/// `select` followed by the templates of `page` that `query` keeps: by
/// name or title containing its text.
fn templates_where(
    mut select: QueryBuilder<Postgres>,
    tenant: TenantId,
    page: PageId,
    query: &ListQuery,
) -> QueryBuilder<Postgres> {
    select
        .push(" from incident_templates t where t.tenant_id = ")
        .push_bind(tenant.as_uuid())
        .push(" and t.page_id = ")
        .push_bind(page.as_uuid());
    if let Some(pattern) = query.pattern() {
        select
            .push(" and (t.name ilike ")
            .push_bind(pattern.clone())
            .push(" escape '\\' or t.title ilike ")
            .push_bind(pattern)
            .push(" escape '\\')");
    }
    select
}
