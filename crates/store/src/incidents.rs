//! Incidents, their updates, and the component changes they carry: how
//! they are stored and read.
//!
//! Every rule of their lifecycle (which status a change may take, the
//! impact, the timestamps, the component moves a change implies, what is
//! due on a maintenance, the postmortem) is decided in
//! `heliograph_domain::incident`; this module reads the state before, asks
//! the domain, and writes what it answers.

use heliograph_domain::incident::{ACTIVE_MAINTENANCE, Opening, is_closed};
use heliograph_domain::{
    ComponentId, ComponentStatus, Impact, IncidentId, IncidentKind, IncidentStatus,
    IncidentUpdateId, PageId, Refusal,
};
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{ListQuery, Listed, Result, StoreError, TenantTx};

mod apply;
mod maintenance;
mod postmortem;

// The entities moved to the domain; these names keep the store's old paths working.
use heliograph_domain::{
    AffectedComponent, Incident, IncidentChange, IncidentEdit, IncidentUpdate, NewIncident,
};

macro_rules! incident_columns {
    () => {
        "i.id, i.page_id, i.kind, i.name, i.status, i.impact, i.impact_override, i.started_at,
         i.monitoring_at, i.resolved_at, i.scheduled_for, i.scheduled_until,
         i.scheduled_remind_prior, i.scheduled_auto_in_progress, i.scheduled_auto_completed,
         i.reminded_at, i.backfilled, i.metadata, i.postmortem_body,
         i.postmortem_body_last_updated_at, i.postmortem_published_at, i.created_at, i.updated_at,
         array(select ic.component_id from incident_components ic
                where ic.incident_id = i.id order by ic.component_id) as component_ids"
    };
}

macro_rules! update_columns {
    () => {
        "u.id, u.incident_id, u.status, u.body, u.display_at, u.deliver_notifications,
         u.created_at, u.updated_at,
         coalesce((select json_agg(json_build_object(
                          'code', iuc.component_id, 'name', c.name,
                          'old_status', iuc.old_status, 'new_status', iuc.new_status,
                          'private', c.visibility = 'private') order by c.position)
                     from incident_update_components iuc
                     join components c on c.tenant_id = iuc.tenant_id and c.id = iuc.component_id
                    where iuc.incident_update_id = u.id), '[]'::json) as affected_components"
    };
}

/// An `incidents` row as stored.
#[derive(sqlx::FromRow)]
struct IncidentRow {
    id: Uuid,
    page_id: Uuid,
    kind: String,
    name: String,
    status: String,
    impact: String,
    impact_override: Option<String>,
    started_at: OffsetDateTime,
    monitoring_at: Option<OffsetDateTime>,
    resolved_at: Option<OffsetDateTime>,
    scheduled_for: Option<OffsetDateTime>,
    scheduled_until: Option<OffsetDateTime>,
    scheduled_remind_prior: bool,
    scheduled_auto_in_progress: bool,
    scheduled_auto_completed: bool,
    reminded_at: Option<OffsetDateTime>,
    backfilled: bool,
    metadata: Json<serde_json::Value>,
    postmortem_body: Option<String>,
    postmortem_body_last_updated_at: Option<OffsetDateTime>,
    postmortem_published_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    component_ids: Vec<Uuid>,
}

/// A stored enumeration value the domain does not know: the row is corrupt.
fn corrupt(e: heliograph_domain::UnknownVariant) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl TryFrom<IncidentRow> for Incident {
    type Error = StoreError;
    fn try_from(r: IncidentRow) -> Result<Self> {
        Ok(Self {
            id: r.id.into(),
            page_id: r.page_id.into(),
            kind: r.kind.parse().map_err(corrupt)?,
            name: r.name,
            status: r.status.parse().map_err(corrupt)?,
            impact: r.impact.parse().map_err(corrupt)?,
            impact_override: r
                .impact_override
                .map(|o| o.parse::<Impact>())
                .transpose()
                .map_err(corrupt)?,
            started_at: r.started_at,
            monitoring_at: r.monitoring_at,
            resolved_at: r.resolved_at,
            scheduled_for: r.scheduled_for,
            scheduled_until: r.scheduled_until,
            scheduled_remind_prior: r.scheduled_remind_prior,
            scheduled_auto_in_progress: r.scheduled_auto_in_progress,
            scheduled_auto_completed: r.scheduled_auto_completed,
            reminded_at: r.reminded_at,
            backfilled: r.backfilled,
            metadata: r.metadata.0,
            postmortem_body: r.postmortem_body,
            postmortem_body_last_updated_at: r.postmortem_body_last_updated_at,
            postmortem_published_at: r.postmortem_published_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            component_ids: r.component_ids.into_iter().map(ComponentId::from).collect(),
        })
    }
}

/// An `incident_updates` row as stored, with its component changes.
#[derive(sqlx::FromRow)]
struct UpdateRow {
    id: Uuid,
    incident_id: Uuid,
    status: String,
    body: String,
    display_at: OffsetDateTime,
    deliver_notifications: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    affected_components: Json<Vec<AffectedComponent>>,
}

impl TryFrom<UpdateRow> for IncidentUpdate {
    type Error = StoreError;
    fn try_from(r: UpdateRow) -> Result<Self> {
        Ok(Self {
            id: r.id.into(),
            incident_id: r.incident_id.into(),
            status: r.status.parse().map_err(corrupt)?,
            body: r.body,
            display_at: r.display_at,
            deliver_notifications: r.deliver_notifications,
            created_at: r.created_at,
            updated_at: r.updated_at,
            affected_components: r.affected_components.0,
        })
    }
}

fn incidents(rows: Vec<IncidentRow>) -> Result<Vec<Incident>> {
    rows.into_iter().map(Incident::try_from).collect()
}

fn updates(rows: Vec<UpdateRow>) -> Result<Vec<IncidentUpdate>> {
    rows.into_iter().map(IncidentUpdate::try_from).collect()
}

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid(field) => Self::Invalid(field),
            Refusal::Conflict(code) => Self::Conflict {
                constraint: code.to_owned(),
            },
            Refusal::Missing => Self::NotFound,
        }
    }
}

/// Which incidents a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentScope {
    /// Incidents and maintenances.
    All,
    /// Incidents investigating, identified or monitoring.
    Unresolved,
    /// Maintenances not yet begun.
    Upcoming,
    /// All maintenances.
    Scheduled,
    /// Maintenances in progress or verifying.
    ActiveMaintenance,
}

impl IncidentScope {
    /// Adds this scope's condition (after an `and`) to `query`.
    fn push_condition(self, query: &mut QueryBuilder<sqlx::Postgres>) {
        let statuses = |keep: fn(IncidentStatus) -> bool| -> Vec<&'static str> {
            IncidentStatus::ALL
                .iter()
                .copied()
                .filter(|s| keep(*s))
                .map(IncidentStatus::as_str)
                .collect()
        };
        match self {
            Self::All => {
                query.push("true");
            }
            Self::Unresolved => {
                query
                    .push("i.status = any(")
                    .push_bind(statuses(IncidentStatus::is_unresolved))
                    .push(")");
            }
            Self::Upcoming => {
                query
                    .push("i.status = ")
                    .push_bind(IncidentStatus::Scheduled.as_str());
            }
            Self::Scheduled => {
                query
                    .push("i.kind = ")
                    .push_bind(IncidentKind::Maintenance.as_str());
            }
            Self::ActiveMaintenance => {
                query
                    .push("i.status = any(")
                    .push_bind(statuses(|s| ACTIVE_MAINTENANCE.contains(&s)))
                    .push(")");
            }
        }
    }
}

/// What a component event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentEventPayload {
    /// The component.
    pub component_id: ComponentId,
    /// Its status before.
    pub old_status: ComponentStatus,
    /// Its status after.
    pub new_status: ComponentStatus,
    /// `manual`, `incident` or `maintenance`.
    pub cause: ChangeCause,
    /// The incident or maintenance that changed it, if any.
    pub incident_id: Option<IncidentId>,
}

/// Why a component's status changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeCause {
    /// Someone set it.
    Manual,
    /// An incident update set it.
    Incident,
    /// A maintenance began or ended.
    Maintenance,
}

impl ChangeCause {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Incident => "incident",
            Self::Maintenance => "maintenance",
        }
    }
}

impl TenantTx {
    /// Opens an incident or schedules a maintenance: the row, its first
    /// update, the component status changes and the outbox events, all in
    /// this transaction.
    pub async fn create_incident(
        &mut self,
        page: PageId,
        new: &NewIncident,
    ) -> Result<(Incident, IncidentUpdate)> {
        // Fails with NotFound for another tenant's page.
        sqlx::query("select 1 from pages where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(page.as_uuid())
            .fetch_one(&mut *self.tx)
            .await?;
        let opening = Opening::plan(new, OffsetDateTime::now_utc());
        self.check_components_on_page("components", page, &opening.component_ids)
            .await?;
        let id = IncidentId::new();
        let before = opening.before;
        let created_at = opening.at;
        let schedule = new.schedule;
        sqlx::query(
            "insert into incidents (id, tenant_id, page_id, kind, name, status, impact, impact_override,
                                    started_at, created_at, updated_at, scheduled_for, scheduled_until,
                                    scheduled_remind_prior, scheduled_auto_in_progress,
                                    scheduled_auto_completed, backfilled, metadata)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(id.as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(before.kind.as_str())
        .bind(new.name.as_str())
        .bind(before.status.as_str())
        .bind(before.impact.as_str())
        .bind(before.impact_override.map(Impact::as_str))
        .bind(before.started_at)
        .bind(created_at)
        .bind(schedule.map(|s| s.scheduled_for))
        .bind(schedule.map(|s| s.scheduled_until))
        .bind(schedule.is_some_and(|s| s.remind_prior))
        .bind(schedule.is_some_and(|s| s.auto_in_progress))
        .bind(schedule.is_some_and(|s| s.auto_completed))
        .bind(new.backfilled)
        .bind(Json(&new.metadata))
        .execute(&mut *self.tx)
        .await?;
        self.add_incident_components(id, &opening.component_ids)
            .await?;
        let (update, _) = self
            .post_update(page, id, before, None, &opening.first)
            .await?;
        let incident = self.incident(id).await?;
        Ok((incident, update))
    }

    /// Posts an update on an incident or maintenance: new status, message
    /// and component changes, and the outbox events, all in this
    /// transaction. Refuses a move the lifecycle does not allow.
    pub async fn update_incident(
        &mut self,
        id: IncidentId,
        change: &IncidentChange,
    ) -> Result<(Incident, IncidentUpdate)> {
        let current = self.lock_incident(id).await?;
        let life = current.lifecycle();
        // Refused before anything is written.
        life.after_update(change.status, [], OffsetDateTime::now_utc())?;
        let ids: Vec<ComponentId> = change.components.keys().copied().collect();
        self.check_components_on_page("components", current.page_id, &ids)
            .await?;
        self.add_incident_components(id, &ids).await?;
        let (update, _) = self
            .post_update(current.page_id, id, life, Some(current.status), change)
            .await?;
        Ok((self.incident(id).await?, update))
    }

    /// Changes an incident's own fields; posts no update.
    pub async fn edit_incident(&mut self, id: IncidentId, edit: &IncidentEdit) -> Result<Incident> {
        let current = self.lock_incident(id).await?;
        let page = current.page_id;
        let after = current.after_edit(edit)?;
        self.check_components_on_page("component_ids", page, &edit.component_ids)
            .await?;
        self.add_incident_components(id, &edit.component_ids)
            .await?;
        sqlx::query(
            "update incidents set name = $3, impact_override = $4, impact = $5,
                    scheduled_for = $6, scheduled_until = $7, scheduled_remind_prior = $8,
                    scheduled_auto_in_progress = $9, scheduled_auto_completed = $10,
                    reminded_at = $11, metadata = $12
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(&after.name)
        .bind(after.impact_override.map(Impact::as_str))
        .bind(after.impact.as_str())
        .bind(after.scheduled_for)
        .bind(after.scheduled_until)
        .bind(after.scheduled_remind_prior)
        .bind(after.scheduled_auto_in_progress)
        .bind(after.scheduled_auto_completed)
        .bind(after.reminded_at)
        .bind(Json(&after.metadata))
        .execute(&mut *self.tx)
        .await?;
        self.incident(id).await
    }

    /// Deletes an incident with its updates. Component statuses stay as they
    /// are; their history keeps the changes (without the incident's id).
    pub async fn delete_incident(&mut self, id: IncidentId) -> Result<Incident> {
        let incident = self.lock_incident(id).await?;
        sqlx::query("delete from incidents where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        Ok(incident)
    }

    /// One incident.
    pub async fn incident(&mut self, id: IncidentId) -> Result<Incident> {
        let row: IncidentRow = sqlx::query_as(concat!(
            "select ",
            incident_columns!(),
            " from incidents i where i.tenant_id = $1 and i.id = $2"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        row.try_into()
    }

    /// One incident, locked for a change.
    async fn lock_incident(&mut self, id: IncidentId) -> Result<Incident> {
        sqlx::query("select 1 from incidents where tenant_id = $1 and id = $2 for update")
            .bind(self.tenant.as_uuid())
            .bind(id.as_uuid())
            .fetch_one(&mut *self.tx)
            .await?;
        self.incident(id).await
    }

    /// A page's incidents in `scope`, newest first, matching `query`.
    pub async fn list_incidents(
        &mut self,
        page: PageId,
        scope: IncidentScope,
        query: &ListQuery,
    ) -> Result<Listed<Incident>> {
        let tenant = self.tenant.as_uuid();
        let filter = |select: &str| {
            let mut q = QueryBuilder::<sqlx::Postgres>::new(select);
            q.push(" from incidents i where i.tenant_id = ")
                .push_bind(tenant)
                .push(" and i.page_id = ")
                .push_bind(page.as_uuid())
                .push(" and ");
            scope.push_condition(&mut q);
            q.push(" and (")
                .push_bind(query.pattern())
                .push("::text is null or i.name ilike ")
                .push_bind(query.pattern())
                .push(" escape '\\') and (cardinality(")
                .push_bind(query.statuses.clone())
                .push("::text[]) = 0 or i.status = any(")
                .push_bind(query.statuses.clone())
                .push("))");
            q
        };
        let order = if matches!(scope, IncidentScope::Upcoming) {
            " order by i.scheduled_for asc, i.id"
        } else {
            " order by coalesce(i.scheduled_for, i.started_at) desc, i.id desc"
        };
        crate::listed::<IncidentRow, _>(
            &mut self.tx,
            filter,
            concat!("select ", incident_columns!()),
            order,
            query,
        )
        .await
    }

    /// One update of an incident.
    pub async fn incident_update(
        &mut self,
        incident: IncidentId,
        id: IncidentUpdateId,
    ) -> Result<IncidentUpdate> {
        let row: UpdateRow = sqlx::query_as(concat!(
            "select ",
            update_columns!(),
            " from incident_updates u where u.tenant_id = $1 and u.incident_id = $2 and u.id = $3"
        ))
        .bind(self.tenant.as_uuid())
        .bind(incident.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        row.try_into()
    }

    /// Edits a posted update's text, shown time or notification flag. What
    /// was already sent stays sent.
    pub async fn edit_incident_update(
        &mut self,
        incident: IncidentId,
        id: IncidentUpdateId,
        body: Option<&str>,
        display_at: Option<OffsetDateTime>,
        deliver_notifications: Option<bool>,
    ) -> Result<IncidentUpdate> {
        sqlx::query(
            "update incident_updates set body = coalesce($4, body),
                    display_at = coalesce($5, display_at),
                    deliver_notifications = coalesce($6, deliver_notifications)
              where tenant_id = $1 and incident_id = $2 and id = $3
              returning id",
        )
        .bind(self.tenant.as_uuid())
        .bind(incident.as_uuid())
        .bind(id.as_uuid())
        .bind(body)
        .bind(display_at)
        .bind(deliver_notifications)
        .fetch_one(&mut *self.tx)
        .await?;
        self.incident_update(incident, id).await
    }

    /// Open incidents, and maintenances scheduled or under way, newest first.
    pub(crate) async fn active_incidents(&mut self, page: PageId) -> Result<Vec<Incident>> {
        let open: Vec<&str> = IncidentStatus::ALL
            .iter()
            .filter(|s| !is_closed(**s))
            .map(|s| s.as_str())
            .collect();
        let rows: Vec<IncidentRow> = sqlx::query_as(concat!(
            "select ",
            incident_columns!(),
            " from incidents i
              where i.tenant_id = $1 and i.page_id = $2 and i.status = any($3)
              order by i.started_at desc, i.id desc"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(open)
        .fetch_all(&mut *self.tx)
        .await?;
        incidents(rows)
    }

    /// The `limit` most recent incidents and the `limit` most recent
    /// maintenances of a page, any status: the page's public history.
    pub(crate) async fn recent_incidents(
        &mut self,
        page: PageId,
        limit: i64,
    ) -> Result<Vec<Incident>> {
        let rows: Vec<IncidentRow> = sqlx::query_as(concat!(
            "(select ",
            incident_columns!(),
            " from incidents i
              where i.tenant_id = $1 and i.page_id = $2 and i.kind = $4
              order by i.started_at desc, i.id desc limit $3)
             union all
             (select ",
            incident_columns!(),
            " from incidents i
              where i.tenant_id = $1 and i.page_id = $2 and i.kind = $5
              order by i.scheduled_for desc nulls last, i.id desc limit $3)"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(limit)
        .bind(IncidentKind::Incident.as_str())
        .bind(IncidentKind::Maintenance.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        incidents(rows)
    }

    /// The updates of these incidents, newest first.
    pub async fn incident_updates(
        &mut self,
        incidents: &[IncidentId],
    ) -> Result<Vec<IncidentUpdate>> {
        let rows: Vec<UpdateRow> = sqlx::query_as(concat!(
            "select ",
            update_columns!(),
            " from incident_updates u
              where u.tenant_id = $1 and u.incident_id = any($2)
              order by u.display_at desc, u.id desc"
        ))
        .bind(self.tenant.as_uuid())
        .bind(
            incidents
                .iter()
                .map(IncidentId::as_uuid)
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *self.tx)
        .await?;
        updates(rows)
    }

    async fn add_incident_components(
        &mut self,
        incident: IncidentId,
        ids: &[ComponentId],
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "insert into incident_components (tenant_id, incident_id, component_id)
             select $1, $2, unnest($3::uuid[]) on conflict do nothing",
        )
        .bind(self.tenant.as_uuid())
        .bind(incident.as_uuid())
        .bind(ids.iter().map(ComponentId::as_uuid).collect::<Vec<_>>())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
