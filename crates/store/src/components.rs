//! Storing components and component groups, and the queries about them.
//!
//! What a component or a group is, and the rules about them (a group's
//! status, who may change what, where a moved part lands), are
//! `heliograph_domain::component`'s; this module reads and writes rows.

use heliograph_domain::component::reorder;
use heliograph_domain::{
    Component, ComponentEdit, ComponentGroup, ComponentId, ComponentStatus, FieldError, GroupEdit,
    GroupId, Name, NewComponent, PageId, Visibility,
};
use sqlx::{Postgres, QueryBuilder};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::incidents::ChangeCause;

mod history;
use crate::{ListQuery, Listed, Result, StoreError, TenantTx};

/// The columns of a component group, for `returning` and `select` clauses.
macro_rules! group_columns {
    () => {
        "id, page_id, name, description, position, created_at, updated_at"
    };
}

macro_rules! component_columns {
    () => {
        "id, page_id, group_id, name, description, status, position, showcase, \
         only_show_if_degraded, start_date, visibility, created_at, updated_at"
    };
}

/// A component's row, before its values are checked.
#[derive(sqlx::FromRow)]
struct ComponentRow {
    id: Uuid,
    page_id: Uuid,
    group_id: Option<Uuid>,
    name: String,
    description: Option<String>,
    status: String,
    position: i32,
    showcase: bool,
    only_show_if_degraded: bool,
    start_date: Option<Date>,
    visibility: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<ComponentRow> for Component {
    type Error = StoreError;
    fn try_from(r: ComponentRow) -> Result<Self> {
        Ok(Self {
            id: r.id.into(),
            page_id: r.page_id.into(),
            group_id: r.group_id.map(GroupId::from),
            name: r.name,
            description: r.description,
            status: r.status.parse().map_err(corrupt)?,
            position: r.position,
            showcase: r.showcase,
            only_show_if_degraded: r.only_show_if_degraded,
            start_date: r.start_date,
            visibility: r.visibility.parse().map_err(corrupt)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A component group's row.
#[derive(sqlx::FromRow)]
struct GroupRow {
    id: Uuid,
    page_id: Uuid,
    name: String,
    description: Option<String>,
    position: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<GroupRow> for ComponentGroup {
    fn from(r: GroupRow) -> Self {
        Self {
            id: r.id.into(),
            page_id: r.page_id.into(),
            name: r.name,
            description: r.description,
            position: r.position,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Converts rows into components, refusing the lot on a corrupt one.
fn components_of(rows: Vec<ComponentRow>) -> Result<Vec<Component>> {
    rows.into_iter().map(Component::try_from).collect()
}

/// What a stored value the domain does not accept becomes.
fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The tables whose rows have a place on a page.
#[derive(Debug, Clone, Copy)]
enum Ordered {
    Components,
    Groups,
}

impl Ordered {
    const fn table(self) -> &'static str {
        match self {
            Self::Components => "components",
            Self::Groups => "component_groups",
        }
    }
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
        let row: ComponentRow = sqlx::query_as(concat!(
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
        .bind(new.group_id.map(|g| g.as_uuid()))
        .bind(new.name.as_str())
        .bind(new.description.as_deref())
        .bind(new.status.as_str())
        .bind(new.showcase)
        .bind(new.only_show_if_degraded)
        .bind(new.start_date)
        .bind(new.visibility.as_str())
        .fetch_one(&mut *self.tx)
        .await?;
        row.try_into()
    }

    /// Creates a component group at the end of the page.
    pub async fn create_component_group(
        &mut self,
        page: PageId,
        name: &Name,
        description: Option<&str>,
    ) -> Result<ComponentGroup> {
        self.lock_page(page).await?;
        let row: GroupRow = sqlx::query_as(concat!(
            "insert into component_groups (id, tenant_id, page_id, name, description, position)
             values ($1, $2, $3, $4, $5,
                     (select coalesce(max(position), 0) + 1 from component_groups
                       where tenant_id = $2 and page_id = $3))
             returning ",
            group_columns!()
        ))
        .bind(GroupId::new().as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(name.as_str())
        .bind(description)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.into())
    }

    /// The page's components, by position.
    pub async fn components(&mut self, page: PageId) -> Result<Vec<Component>> {
        components_of(
            sqlx::query_as(concat!(
                "select ",
                component_columns!(),
                " from components where tenant_id = $1 and page_id = $2 order by position, id"
            ))
            .bind(self.tenant.as_uuid())
            .bind(page.as_uuid())
            .fetch_all(&mut *self.tx)
            .await?,
        )
    }

    /// The page's component groups, by position.
    pub async fn component_groups(&mut self, page: PageId) -> Result<Vec<ComponentGroup>> {
        let rows: Vec<GroupRow> = sqlx::query_as(concat!(
            "select ",
            group_columns!(),
            " from component_groups where tenant_id = $1 and page_id = $2 order by position, id"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().map(ComponentGroup::from).collect())
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
        let row: ComponentRow = sqlx::query_as(concat!(
            "select ",
            component_columns!(),
            " from components where tenant_id = $1 and id = $2"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        row.try_into()
    }

    /// A slice of the page's components, by position, matching `query`.
    pub async fn list_components(
        &mut self,
        page: PageId,
        query: &ListQuery,
    ) -> Result<Listed<Component>> {
        let filter = |select: &str| {
            let mut qb = QueryBuilder::<Postgres>::new(select);
            qb.push(" from components where tenant_id = ")
                .push_bind(self.tenant.as_uuid())
                .push(" and page_id = ")
                .push_bind(page.as_uuid());
            if let Some(pattern) = query.pattern() {
                qb.push(" and name ilike ")
                    .push_bind(pattern)
                    .push(" escape '\\'");
            }
            if !query.statuses.is_empty() {
                qb.push(" and status = any(")
                    .push_bind(query.statuses.clone())
                    .push(")");
            }
            qb
        };
        crate::listed::<ComponentRow, _>(
            &mut self.tx,
            filter,
            concat!("select ", component_columns!()),
            " order by position, id",
            query,
        )
        .await
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
        .bind(edit.group_id.flatten().map(|g| g.as_uuid()))
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
            self.reorder(Ordered::Components, current.page_id, id.as_uuid(), position)
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
    pub async fn component_group(&mut self, id: GroupId) -> Result<ComponentGroup> {
        let row: GroupRow = sqlx::query_as(concat!(
            "select ",
            group_columns!(),
            " from component_groups where tenant_id = $1 and id = $2"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.into())
    }

    /// The ids of a group's components, by position.
    pub async fn group_members(&mut self, group: GroupId) -> Result<Vec<ComponentId>> {
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "select id from components where tenant_id = $1 and group_id = $2 order by position, id",
        )
        .bind(self.tenant.as_uuid())
        .bind(group.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id.into()).collect())
    }

    /// Changes a group: its name, description, members and place.
    pub async fn edit_component_group(
        &mut self,
        id: GroupId,
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
        .bind(id.as_uuid())
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
            .bind(id.as_uuid())
            .bind(&ids)
            .execute(&mut *self.tx)
            .await?;
        }
        if let Some(position) = edit.position {
            self.reorder(Ordered::Groups, group.page_id, id.as_uuid(), position)
                .await?;
        }
        self.component_group(id).await
    }

    /// Deletes a group; its components stay, ungrouped.
    pub async fn delete_component_group(&mut self, id: GroupId) -> Result<ComponentGroup> {
        let group = self.component_group(id).await?;
        sqlx::query("delete from component_groups where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(group)
    }

    /// Moves a row of `table` (on a locked page) to `position`, as
    /// [`reorder`] places it, renumbering the others 1..n.
    async fn reorder(
        &mut self,
        table: Ordered,
        page: PageId,
        id: Uuid,
        position: i32,
    ) -> Result<()> {
        let mut select = QueryBuilder::<Postgres>::new("select id from ");
        select
            .push(table.table())
            .push(" where tenant_id = ")
            .push_bind(self.tenant.as_uuid())
            .push(" and page_id = ")
            .push_bind(page.as_uuid())
            .push(" order by position, id");
        let rows: Vec<(Uuid,)> = select.build_query_as().fetch_all(&mut *self.tx).await?;
        let current: Vec<Uuid> = rows.into_iter().map(|(r,)| r).collect();
        let order = reorder(&current, id, position);
        let mut update = QueryBuilder::<Postgres>::new("update ");
        update
            .push(table.table())
            .push(" t set position = o.position::integer from unnest(")
            .push_bind(order)
            .push("::uuid[]) with ordinality as o(id, position) where t.tenant_id = ")
            .push_bind(self.tenant.as_uuid())
            .push(" and t.id = o.id and t.position <> o.position");
        update.build().execute(&mut *self.tx).await?;
        Ok(())
    }

    async fn check_group_on_page(&mut self, page: PageId, group: GroupId) -> Result<()> {
        let found: Option<(Uuid,)> = sqlx::query_as(
            "select id from component_groups where tenant_id = $1 and page_id = $2 and id = $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(group.as_uuid())
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
