//! Incidents, their updates, and the component changes they carry.

use std::collections::BTreeMap;

use heliograph_domain::{
    ComponentId, ComponentStatus, EventId, Impact, IncidentId, IncidentStatus, IncidentUpdateId,
    Name, PageId,
};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::notifications::{EVENT_INCIDENT_CREATED, EVENT_INCIDENT_UPDATED, IncidentEventPayload};
use crate::{Result, StoreError, TenantTx};

macro_rules! incident_columns {
    () => {
        "i.id, i.page_id, i.kind, i.name, i.status, i.impact, i.started_at, i.monitoring_at,
         i.resolved_at, i.scheduled_for, i.scheduled_until, i.created_at, i.updated_at,
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

/// An incident or a scheduled maintenance.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Incident {
    /// Identifier.
    #[sqlx(try_from = "Uuid")]
    pub id: IncidentId,
    /// The page it is on.
    #[sqlx(try_from = "Uuid")]
    pub page_id: PageId,
    /// `incident` or `maintenance`.
    pub kind: String,
    /// Title.
    pub name: String,
    /// Current status.
    #[sqlx(try_from = "String")]
    pub status: IncidentStatus,
    /// Current impact.
    #[sqlx(try_from = "String")]
    pub impact: Impact,
    /// When it began.
    pub started_at: OffsetDateTime,
    /// When it first entered `monitoring`.
    pub monitoring_at: Option<OffsetDateTime>,
    /// When it was resolved.
    pub resolved_at: Option<OffsetDateTime>,
    /// Maintenance window start.
    pub scheduled_for: Option<OffsetDateTime>,
    /// Maintenance window end.
    pub scheduled_until: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// The components it concerns.
    pub component_ids: Vec<Uuid>,
}

/// One component's change within an incident update (Statuspage's `affected_components`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedComponent {
    /// The component's id.
    pub code: Uuid,
    /// The component's name.
    pub name: String,
    /// Status before the update.
    pub old_status: ComponentStatus,
    /// Status after the update.
    pub new_status: ComponentStatus,
    /// Whether the component is private: never shown to the public or to subscribers.
    #[serde(default, skip_serializing)]
    pub private: bool,
}

/// One update posted on an incident.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IncidentUpdate {
    /// Identifier.
    #[sqlx(try_from = "Uuid")]
    pub id: IncidentUpdateId,
    /// The incident.
    #[sqlx(try_from = "Uuid")]
    pub incident_id: IncidentId,
    /// The incident's status as of this update.
    #[sqlx(try_from = "String")]
    pub status: IncidentStatus,
    /// The message.
    pub body: String,
    /// The time shown for it.
    pub display_at: OffsetDateTime,
    /// Whether subscribers are told.
    pub deliver_notifications: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Component changes carried by this update.
    pub affected_components: Json<Vec<AffectedComponent>>,
}

/// An incident to open.
#[derive(Debug, Clone)]
pub struct NewIncident {
    /// Title.
    pub name: Name,
    /// Initial status.
    pub status: IncidentStatus,
    /// The first update's message.
    pub body: String,
    /// Impact to show instead of the one derived from the components.
    pub impact_override: Option<Impact>,
    /// New status per affected component.
    pub components: BTreeMap<ComponentId, ComponentStatus>,
    /// Further affected components whose status does not change.
    pub component_ids: Vec<ComponentId>,
    /// Whether subscribers are told.
    pub deliver_notifications: bool,
    /// When it happened, if not now (backfilled history, demo data).
    pub at: Option<OffsetDateTime>,
}

/// An update to post on an open incident.
#[derive(Debug, Clone)]
pub struct IncidentChange {
    /// New status.
    pub status: IncidentStatus,
    /// The update's message.
    pub body: String,
    /// New status per component.
    pub components: BTreeMap<ComponentId, ComponentStatus>,
    /// Whether subscribers are told.
    pub deliver_notifications: bool,
    /// When it happened, if not now.
    pub at: Option<OffsetDateTime>,
}

impl TenantTx {
    /// Opens an incident: the incident, its first update, the component status
    /// changes and the outbox event, all in this transaction.
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
        let mut all_ids: Vec<ComponentId> = new.components.keys().copied().collect();
        all_ids.extend(new.component_ids.iter().copied());
        all_ids.sort();
        all_ids.dedup();
        self.check_components_on_page("components", page, &all_ids)
            .await?;

        let impact = new
            .impact_override
            .unwrap_or_else(|| Impact::from_component_statuses(new.components.values().copied()));
        let id = IncidentId::new();
        let at = new.at.unwrap_or_else(OffsetDateTime::now_utc);
        sqlx::query(
            "insert into incidents (id, tenant_id, page_id, kind, name, status, impact, impact_override,
                                    started_at, created_at, updated_at)
             values ($1, $2, $3, 'incident', $4, $5, $6, $7, $8, $8, $8)",
        )
        .bind(id.as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(new.name.as_str())
        .bind(new.status.as_str())
        .bind(impact.as_str())
        .bind(new.impact_override.map(Impact::as_str))
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "insert into incident_components (tenant_id, incident_id, component_id)
             select $1, $2, unnest($3::uuid[])",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(all_ids.iter().map(ComponentId::as_uuid).collect::<Vec<_>>())
        .execute(&mut *self.tx)
        .await?;
        let change = IncidentChange {
            status: new.status,
            body: new.body.clone(),
            components: new.components.clone(),
            deliver_notifications: new.deliver_notifications,
            at: Some(at),
        };
        let update = self
            .post_update(page, id, &change, EVENT_INCIDENT_CREATED)
            .await?;
        let incident = self.incident(id).await?;
        Ok((incident, update))
    }

    /// Posts an update on an incident: new status, message and component
    /// changes, and the outbox event, all in this transaction.
    pub async fn update_incident(
        &mut self,
        id: IncidentId,
        change: &IncidentChange,
    ) -> Result<(Incident, IncidentUpdate)> {
        let current = self.incident(id).await?;
        let ids: Vec<ComponentId> = change.components.keys().copied().collect();
        self.check_components_on_page("components", current.page_id, &ids)
            .await?;
        sqlx::query(
            "insert into incident_components (tenant_id, incident_id, component_id)
             select $1, $2, unnest($3::uuid[]) on conflict do nothing",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(ids.iter().map(ComponentId::as_uuid).collect::<Vec<_>>())
        .execute(&mut *self.tx)
        .await?;
        let update = self
            .post_update(current.page_id, id, change, EVENT_INCIDENT_UPDATED)
            .await?;
        Ok((self.incident(id).await?, update))
    }

    /// One incident.
    pub async fn incident(&mut self, id: IncidentId) -> Result<Incident> {
        Ok(sqlx::query_as(concat!(
            "select ",
            incident_columns!(),
            " from incidents i where i.tenant_id = $1 and i.id = $2"
        ))
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// One update of an incident.
    pub async fn incident_update(
        &mut self,
        incident: IncidentId,
        id: IncidentUpdateId,
    ) -> Result<IncidentUpdate> {
        Ok(sqlx::query_as(concat!(
            "select ",
            update_columns!(),
            " from incident_updates u where u.tenant_id = $1 and u.incident_id = $2 and u.id = $3"
        ))
        .bind(self.tenant.as_uuid())
        .bind(incident.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Open incidents, and maintenances scheduled or under way, newest first.
    pub(crate) async fn active_incidents(&mut self, page: PageId) -> Result<Vec<Incident>> {
        Ok(sqlx::query_as(concat!(
            "select ",
            incident_columns!(),
            " from incidents i
              where i.tenant_id = $1 and i.page_id = $2
                and i.status in ('investigating', 'identified', 'monitoring',
                                 'scheduled', 'in_progress', 'verifying')
              order by i.started_at desc, i.id desc"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// The updates of these incidents, newest first.
    pub(crate) async fn incident_updates(
        &mut self,
        incidents: &[IncidentId],
    ) -> Result<Vec<IncidentUpdate>> {
        Ok(sqlx::query_as(concat!(
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
        .await?)
    }

    /// Writes an update, applies its component changes and records the event.
    async fn post_update(
        &mut self,
        page: PageId,
        incident: IncidentId,
        change: &IncidentChange,
        event_kind: &str,
    ) -> Result<IncidentUpdate> {
        let at = change.at.unwrap_or_else(OffsetDateTime::now_utc);
        let update_id = IncidentUpdateId::new();
        sqlx::query(
            "insert into incident_updates (id, tenant_id, incident_id, status, body, display_at,
                                           deliver_notifications, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $6, $6)",
        )
        .bind(update_id.as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(incident.as_uuid())
        .bind(change.status.as_str())
        .bind(&change.body)
        .bind(at)
        .bind(change.deliver_notifications)
        .execute(&mut *self.tx)
        .await?;
        for (component, new_status) in &change.components {
            // The old status is read under the row lock, so concurrent updates
            // record a consistent history.
            let (old_status,): (String,) = sqlx::query_as(
                "select status from components where tenant_id = $1 and id = $2 for update",
            )
            .bind(self.tenant.as_uuid())
            .bind(component.as_uuid())
            .fetch_one(&mut *self.tx)
            .await?;
            sqlx::query(
                "insert into incident_update_components
                     (tenant_id, incident_update_id, component_id, old_status, new_status)
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(self.tenant.as_uuid())
            .bind(update_id.as_uuid())
            .bind(component.as_uuid())
            .bind(&old_status)
            .bind(new_status.as_str())
            .execute(&mut *self.tx)
            .await?;
            if old_status != new_status.as_str() {
                sqlx::query("update components set status = $3 where tenant_id = $1 and id = $2")
                    .bind(self.tenant.as_uuid())
                    .bind(component.as_uuid())
                    .bind(new_status.as_str())
                    .execute(&mut *self.tx)
                    .await?;
                sqlx::query(
                    "insert into component_status_changes
                         (tenant_id, component_id, old_status, new_status, cause, incident_id, changed_at)
                     values ($1, $2, $3, $4, 'incident', $5, $6)",
                )
                .bind(self.tenant.as_uuid())
                .bind(component.as_uuid())
                .bind(&old_status)
                .bind(new_status.as_str())
                .bind(incident.as_uuid())
                .bind(at)
                .execute(&mut *self.tx)
                .await?;
            }
        }
        // Impact follows the worst status an update sets and never falls on
        // its own (a resolved incident keeps the impact it had); an override wins.
        let (current, overridden): (String, Option<String>) = sqlx::query_as(
            "select impact, impact_override from incidents where tenant_id = $1 and id = $2 for update",
        )
        .bind(self.tenant.as_uuid())
        .bind(incident.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        let current: Impact = current
            .parse()
            .map_err(|e: heliograph_domain::UnknownVariant| StoreError::Corrupt(e.to_string()))?;
        let impact = if overridden.is_some() {
            current
        } else {
            current.worst(Impact::from_component_statuses(
                change.components.values().copied(),
            ))
        };
        sqlx::query(
            "update incidents set
                 impact = $5,
                 status = $3,
                 monitoring_at = case when $3 = 'monitoring' then coalesce(monitoring_at, $4) else monitoring_at end,
                 resolved_at = case when $3 in ('resolved', 'postmortem') then coalesce(resolved_at, $4) else null end
             where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(incident.as_uuid())
        .bind(change.status.as_str())
        .bind(at)
        .bind(impact.as_str())
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "insert into outbox (id, tenant_id, page_id, kind, payload)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(EventId::new().as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(event_kind)
        .bind(Json(IncidentEventPayload {
            incident_id: incident,
            incident_update_id: update_id,
            deliver_notifications: change.deliver_notifications,
        }))
        .execute(&mut *self.tx)
        .await?;
        self.incident_update(incident, update_id).await
    }
}
