//! Components and component groups.

use heliograph_domain::{ComponentId, ComponentStatus, FieldError, Name, PageId, Visibility};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::{Result, StoreError, TenantTx};

macro_rules! component_columns {
    () => {
        "id, page_id, group_id, name, description, status, position, showcase, \
         only_show_if_degraded, start_date, visibility, created_at, updated_at"
    };
}

/// A component of a page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Component {
    /// Identifier.
    #[sqlx(try_from = "Uuid")]
    pub id: ComponentId,
    /// The page it is on.
    #[sqlx(try_from = "Uuid")]
    pub page_id: PageId,
    /// The group it is in, if any.
    pub group_id: Option<Uuid>,
    /// Display name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Current status.
    #[sqlx(try_from = "String")]
    pub status: ComponentStatus,
    /// Order on the page.
    pub position: i32,
    /// Whether the page shows it.
    pub showcase: bool,
    /// Whether the page shows it only while it is not operational.
    pub only_show_if_degraded: bool,
    /// When the component started to exist, for uptime.
    pub start_date: Option<Date>,
    /// Public, or shown only to the tenant's members.
    #[sqlx(try_from = "String")]
    pub visibility: Visibility,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A group of components on a page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ComponentGroup {
    /// Identifier.
    pub id: Uuid,
    /// The page it is on.
    #[sqlx(try_from = "Uuid")]
    pub page_id: PageId,
    /// Display name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Order on the page.
    pub position: i32,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A component to create.
#[derive(Debug, Clone)]
pub struct NewComponent {
    /// Display name.
    pub name: Name,
    /// Optional description.
    pub description: Option<String>,
    /// Initial status.
    pub status: ComponentStatus,
    /// Group to put it in (must be on the same page).
    pub group_id: Option<Uuid>,
    /// Whether the page shows it.
    pub showcase: bool,
    /// Whether the page shows it only while it is not operational.
    pub only_show_if_degraded: bool,
    /// When it started to exist.
    pub start_date: Option<Date>,
    /// Who may see it.
    pub visibility: Visibility,
}

impl TenantTx {
    /// Locks one of the tenant's pages (NotFound for any other), so that
    /// concurrent creations on it get distinct positions.
    async fn lock_page(&mut self, page: PageId) -> Result<()> {
        sqlx::query("select 1 from pages where tenant_id = $1 and id = $2 for update")
            .bind(self.tenant.as_uuid())
            .bind(page.as_uuid())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Creates a component at the end of the page.
    pub async fn create_component(
        &mut self,
        page: PageId,
        new: &NewComponent,
    ) -> Result<Component> {
        self.lock_page(page).await?;
        if let Some(group) = new.group_id {
            let found: Option<(Uuid,)> = sqlx::query_as(
                "select id from component_groups where tenant_id = $1 and page_id = $2 and id = $3",
            )
            .bind(self.tenant.as_uuid())
            .bind(page.as_uuid())
            .bind(group)
            .fetch_optional(&mut *self.tx)
            .await?;
            if found.is_none() {
                return Err(StoreError::Invalid(FieldError::new(
                    "group_id",
                    "not_found",
                    "no such component group on this page",
                )));
            }
        }
        Ok(sqlx::query_as(concat!(
            "insert into components (id, tenant_id, page_id, group_id, name, description, status,
                 position, showcase, only_show_if_degraded, start_date, visibility)
             values ($1, $2, $3, $4, $5, $6, $7,
                 (select coalesce(max(position), 0) + 1 from components where tenant_id = $2 and page_id = $3),
                 $8, $9, $10, $11)
             returning ",
            component_columns!()
        ))
        .bind(ComponentId::new().as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(new.group_id)
        .bind(new.name.as_str())
        .bind(new.description.as_deref())
        .bind(new.status.as_str())
        .bind(new.showcase)
        .bind(new.only_show_if_degraded)
        .bind(new.start_date)
        .bind(new.visibility.as_str())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Creates a component group at the end of the page.
    pub async fn create_component_group(
        &mut self,
        page: PageId,
        name: &Name,
        description: Option<&str>,
    ) -> Result<ComponentGroup> {
        self.lock_page(page).await?;
        Ok(sqlx::query_as(
            "insert into component_groups (id, tenant_id, page_id, name, description, position)
             values ($1, $2, $3, $4, $5,
                     (select coalesce(max(position), 0) + 1 from component_groups
                       where tenant_id = $2 and page_id = $3))
             returning id, page_id, name, description, position, created_at, updated_at",
        )
        .bind(Uuid::now_v7())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(name.as_str())
        .bind(description)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// The page's components, by position.
    pub async fn components(&mut self, page: PageId) -> Result<Vec<Component>> {
        Ok(sqlx::query_as(concat!(
            "select ",
            component_columns!(),
            " from components where tenant_id = $1 and page_id = $2 order by position, id"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// The page's component groups, by position.
    pub async fn component_groups(&mut self, page: PageId) -> Result<Vec<ComponentGroup>> {
        Ok(sqlx::query_as(
            "select id, page_id, name, description, position, created_at, updated_at
               from component_groups where tenant_id = $1 and page_id = $2 order by position, id",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// Refuses component ids that are not on `page` (which includes another tenant's).
    pub(crate) async fn check_components_on_page(
        &mut self,
        field: &'static str,
        page: PageId,
        ids: &[ComponentId],
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let found: Vec<(Uuid,)> = sqlx::query_as(
            "select id from components where tenant_id = $1 and page_id = $2 and id = any($3)",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(ids.iter().map(ComponentId::as_uuid).collect::<Vec<_>>())
        .fetch_all(&mut *self.tx)
        .await?;
        if let Some(missing) = ids
            .iter()
            .find(|id| !found.iter().any(|(f,)| *f == id.as_uuid()))
        {
            return Err(StoreError::Invalid(FieldError::new(
                field,
                "not_found",
                format!("no component {missing} on this page"),
            )));
        }
        Ok(())
    }
}
