//! Components and component groups.

use heliograph_domain::{ComponentId, ComponentStatus, FieldError, Name, PageId, Visibility};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::incidents::ChangeCause;
use crate::{ListQuery, Listed, Result, StoreError, TenantTx};

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
            self.check_group_on_page(page, group).await?;
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

/// Changes to a component; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentEdit {
    /// New name.
    pub name: Option<Name>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// New status (recorded in the history, cause `manual`, and announced).
    pub status: Option<ComponentStatus>,
    /// New group; `Some(None)` takes it out of its group.
    pub group_id: Option<Option<Uuid>>,
    /// Whether the page shows it.
    pub showcase: Option<bool>,
    /// Whether the page shows it only while not operational.
    pub only_show_if_degraded: Option<bool>,
    /// New start date; `Some(None)` clears it.
    pub start_date: Option<Option<Date>>,
    /// New visibility.
    pub visibility: Option<Visibility>,
    /// New place on the page, from 1; the others shift.
    pub position: Option<i32>,
}

/// Changes to a component group; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct GroupEdit {
    /// New name.
    pub name: Option<Name>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// The group's members, replacing the current ones.
    pub components: Option<Vec<ComponentId>>,
    /// New place on the page, from 1; the others shift.
    pub position: Option<i32>,
}

/// A component's status history, for uptime.
#[derive(Debug, Clone)]
pub struct ComponentHistory {
    /// The component.
    pub component: Component,
    /// Each change before the range's end: when, from what, to what.
    pub changes: Vec<(OffsetDateTime, ComponentStatus, ComponentStatus)>,
    /// Windows of the maintenances that concerned it and began.
    pub maintenance: Vec<(OffsetDateTime, OffsetDateTime)>,
}

impl TenantTx {
    /// One component.
    pub async fn component(&mut self, id: ComponentId) -> Result<Component> {
        Ok(sqlx::query_as(concat!(
            "select ",
            component_columns!(),
            " from components where tenant_id = $1 and id = $2"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// A slice of the page's components, by position, matching `query`.
    pub async fn list_components(
        &mut self,
        page: PageId,
        query: &ListQuery,
    ) -> Result<Listed<Component>> {
        const WHERE: &str = " from components where tenant_id = $1 and page_id = $2
             and ($3::text is null or name ilike $3 escape '\\')
             and (cardinality($4::text[]) = 0 or status = any($4))";
        let (total,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("select count(*){WHERE}")))
                .bind(self.tenant.as_uuid())
                .bind(page.as_uuid())
                .bind(query.pattern())
                .bind(&query.statuses)
                .fetch_one(&mut *self.tx)
                .await?;
        let items = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {}{WHERE} order by position, id limit $5 offset $6",
            component_columns!()
        )))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(query.pattern())
        .bind(&query.statuses)
        .bind(query.limit)
        .bind(query.offset)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(Listed { items, total })
    }

    /// Changes a component. A status change is recorded in its history
    /// (cause `manual`) and announced, in this transaction.
    pub async fn edit_component(
        &mut self,
        id: ComponentId,
        edit: &ComponentEdit,
    ) -> Result<Component> {
        let current = self.component(id).await?;
        self.lock_page(current.page_id).await?;
        if let Some(Some(group)) = edit.group_id {
            self.check_group_on_page(current.page_id, group).await?;
        }
        sqlx::query(
            "update components set
                 name = coalesce($3, name),
                 description = case when $4 then $5 else description end,
                 group_id = case when $6 then $7 else group_id end,
                 showcase = coalesce($8, showcase),
                 only_show_if_degraded = coalesce($9, only_show_if_degraded),
                 start_date = case when $10 then $11 else start_date end,
                 visibility = coalesce($12, visibility)
             where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(edit.name.as_ref().map(Name::as_str))
        .bind(edit.description.is_some())
        .bind(edit.description.clone().flatten())
        .bind(edit.group_id.is_some())
        .bind(edit.group_id.flatten())
        .bind(edit.showcase)
        .bind(edit.only_show_if_degraded)
        .bind(edit.start_date.is_some())
        .bind(edit.start_date.flatten())
        .bind(edit.visibility.map(Visibility::as_str))
        .execute(&mut *self.tx)
        .await?;
        if let Some(status) = edit.status {
            self.set_component_status(
                current.page_id,
                id,
                status,
                ChangeCause::Manual,
                None,
                OffsetDateTime::now_utc(),
            )
            .await?;
        }
        if let Some(position) = edit.position {
            self.reorder("components", current.page_id, id.as_uuid(), position)
                .await?;
        }
        self.component(id).await
    }

    /// Deletes a component; its history goes with it.
    pub async fn delete_component(&mut self, id: ComponentId) -> Result<Component> {
        let component = self.component(id).await?;
        sqlx::query("delete from components where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(component)
    }

    /// One component group.
    pub async fn component_group(&mut self, id: Uuid) -> Result<ComponentGroup> {
        Ok(sqlx::query_as(
            "select id, page_id, name, description, position, created_at, updated_at
               from component_groups where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// The ids of a group's components, by position.
    pub async fn group_members(&mut self, group: Uuid) -> Result<Vec<ComponentId>> {
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "select id from components where tenant_id = $1 and group_id = $2 order by position, id",
        )
        .bind(self.tenant.as_uuid())
        .bind(group)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id.into()).collect())
    }

    /// Changes a group: its name, description, members and place.
    pub async fn edit_component_group(
        &mut self,
        id: Uuid,
        edit: &GroupEdit,
    ) -> Result<ComponentGroup> {
        let group = self.component_group(id).await?;
        self.lock_page(group.page_id).await?;
        sqlx::query(
            "update component_groups set name = coalesce($3, name),
                    description = case when $4 then $5 else description end
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id)
        .bind(edit.name.as_ref().map(Name::as_str))
        .bind(edit.description.is_some())
        .bind(edit.description.clone().flatten())
        .execute(&mut *self.tx)
        .await?;
        if let Some(members) = &edit.components {
            self.check_components_on_page("components", group.page_id, members)
                .await?;
            let ids: Vec<Uuid> = members.iter().map(ComponentId::as_uuid).collect();
            sqlx::query(
                "update components set group_id = case when id = any($3) then $2 else null end
                  where tenant_id = $1 and (group_id = $2 or id = any($3))",
            )
            .bind(self.tenant.as_uuid())
            .bind(id)
            .bind(&ids)
            .execute(&mut *self.tx)
            .await?;
        }
        if let Some(position) = edit.position {
            self.reorder("component_groups", group.page_id, id, position)
                .await?;
        }
        self.component_group(id).await
    }

    /// Deletes a group; its components stay, ungrouped.
    pub async fn delete_component_group(&mut self, id: Uuid) -> Result<ComponentGroup> {
        let group = self.component_group(id).await?;
        sqlx::query("delete from component_groups where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(group)
    }

    /// Moves a row of `table` (components or groups, on a locked page) to
    /// `position` (from 1, clamped), renumbering the others 1..n.
    async fn reorder(
        &mut self,
        table: &'static str,
        page: PageId,
        id: Uuid,
        position: i32,
    ) -> Result<()> {
        let rows: Vec<(Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select id from {table} where tenant_id = $1 and page_id = $2 order by position, id"
        )))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        let mut order: Vec<Uuid> = rows
            .into_iter()
            .map(|(r,)| r)
            .filter(|r| *r != id)
            .collect();
        let at = usize::try_from(position.max(1) - 1)
            .unwrap_or(0)
            .min(order.len());
        order.insert(at, id);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "update {table} t set position = o.position::integer
               from unnest($2::uuid[]) with ordinality as o(id, position)
              where t.tenant_id = $1 and t.id = o.id and t.position <> o.position"
        )))
        .bind(self.tenant.as_uuid())
        .bind(&order)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn check_group_on_page(&mut self, page: PageId, group: Uuid) -> Result<()> {
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
        Ok(())
    }

    /// A component's status changes before `end` and the maintenance
    /// windows that concerned it: what its uptime is computed from.
    pub async fn component_history(
        &mut self,
        id: ComponentId,
        end: OffsetDateTime,
    ) -> Result<ComponentHistory> {
        let component = self.component(id).await?;
        let rows: Vec<(OffsetDateTime, String, String)> = sqlx::query_as(
            "select changed_at, old_status, new_status from component_status_changes
              where tenant_id = $1 and component_id = $2 and changed_at < $3
              order by changed_at, id",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(end)
        .fetch_all(&mut *self.tx)
        .await?;
        let parse = |s: &str| -> Result<ComponentStatus> {
            s.parse()
                .map_err(|e: heliograph_domain::UnknownVariant| StoreError::Corrupt(e.to_string()))
        };
        let changes = rows
            .iter()
            .map(|(at, old, new)| Ok((*at, parse(old)?, parse(new)?)))
            .collect::<Result<Vec<_>>>()?;
        // A maintenance excludes time only once it began (one called off
        // before its window never did).
        let maintenance = sqlx::query_as(
            "select i.started_at, coalesce(i.resolved_at, greatest(i.scheduled_until, now()))
               from incidents i
               join incident_components ic on ic.tenant_id = i.tenant_id and ic.incident_id = i.id
              where i.tenant_id = $1 and ic.component_id = $2 and i.kind = 'maintenance'
                and i.started_at < $3
                and exists (select 1 from incident_updates u where u.tenant_id = i.tenant_id
                              and u.incident_id = i.id and u.status = 'in_progress')",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(end)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(ComponentHistory {
            component,
            changes,
            maintenance,
        })
    }
}

impl TenantTx {
    /// Incidents and maintenances that concerned a component and overlap
    /// `[start, end)`: id and name, oldest first.
    pub async fn component_events(
        &mut self,
        id: ComponentId,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<Vec<(Uuid, String)>> {
        Ok(sqlx::query_as(
            "select i.id, i.name from incidents i
               join incident_components ic on ic.tenant_id = i.tenant_id and ic.incident_id = i.id
              where i.tenant_id = $1 and ic.component_id = $2
                and i.started_at < $4 and coalesce(i.resolved_at, 'infinity') > $3
              order by i.started_at, i.id limit 100",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(start)
        .bind(end)
        .fetch_all(&mut *self.tx)
        .await?)
    }
}
