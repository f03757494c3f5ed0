//! Writes an update and what it decides: the component moves, the
//! incident's new status, impact and timestamps, and the outbox events.

use heliograph_domain::incident::{ImpliedMove, Lifecycle};
use heliograph_domain::{
    ComponentId, ComponentStatus, EventId, EventKind, IncidentChange, IncidentId, IncidentKind,
    IncidentStatus, IncidentUpdate, IncidentUpdateId, PageId,
};
use serde::Serialize;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ChangeCause, ComponentEventPayload, corrupt};
use crate::notifications::IncidentEventPayload;
use crate::{Result, TenantTx};

impl TenantTx {
    /// Writes an update moving `incident` from `before` (its status `was`,
    /// `None` for a new record) by `change`: the update row, the component
    /// moves, the incident's new lifecycle fields and the events. Answers
    /// the update and the lifecycle after it.
    pub(super) async fn post_update(
        &mut self,
        page: PageId,
        incident: IncidentId,
        before: Lifecycle,
        was: Option<IncidentStatus>,
        change: &IncidentChange,
    ) -> Result<(IncidentUpdate, Lifecycle)> {
        let at = change.at.unwrap_or_else(OffsetDateTime::now_utc);
        let after = before.after_update(change.status, change.components.values().copied(), at)?;
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
        let implied = ImpliedMove::of(was, change);
        let components = match implied {
            Some(m) => self.incident_component_statuses(incident, m).await?,
            None => Vec::new(),
        };
        let moves = ImpliedMove::moves(implied, &components, &change.components);
        let cause = match IncidentKind::of_status(change.status) {
            IncidentKind::Maintenance => ChangeCause::Maintenance,
            IncidentKind::Incident => ChangeCause::Incident,
        };
        for (component, new_status) in &moves {
            let old_status = self
                .set_component_status(page, *component, *new_status, cause, Some(incident), at)
                .await?;
            sqlx::query(
                "insert into incident_update_components
                     (tenant_id, incident_update_id, component_id, old_status, new_status)
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(self.tenant.as_uuid())
            .bind(update_id.as_uuid())
            .bind(component.as_uuid())
            .bind(old_status.unwrap_or(*new_status).as_str())
            .bind(new_status.as_str())
            .execute(&mut *self.tx)
            .await?;
        }
        sqlx::query(
            "update incidents set impact = $3, status = $4, started_at = $5, monitoring_at = $6,
                    resolved_at = $7
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(incident.as_uuid())
        .bind(after.impact.as_str())
        .bind(after.status.as_str())
        .bind(after.started_at)
        .bind(after.monitoring_at)
        .bind(after.resolved_at)
        .execute(&mut *self.tx)
        .await?;
        self.record_event(
            page,
            EventKind::for_update(was, change.status),
            &IncidentEventPayload {
                incident_id: incident,
                incident_update_id: update_id,
                deliver_notifications: change.deliver_notifications,
            },
        )
        .await?;
        Ok((self.incident_update(incident, update_id).await?, after))
    }

    /// The incident's components with their current status and the status
    /// they had when its maintenance began; first remembers the current
    /// ones when `implied` asks for that.
    async fn incident_component_statuses(
        &mut self,
        incident: IncidentId,
        implied: ImpliedMove,
    ) -> Result<Vec<(ComponentId, ComponentStatus, Option<ComponentStatus>)>> {
        if implied.remembers() {
            sqlx::query(
                "update incident_components ic set status_before = c.status
                   from components c
                  where ic.tenant_id = $1 and ic.incident_id = $2
                    and c.tenant_id = ic.tenant_id and c.id = ic.component_id",
            )
            .bind(self.tenant.as_uuid())
            .bind(incident.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        }
        let rows: Vec<(Uuid, String, Option<String>)> = sqlx::query_as(
            "select c.id, c.status, ic.status_before
               from incident_components ic
               join components c on c.tenant_id = ic.tenant_id and c.id = ic.component_id
              where ic.tenant_id = $1 and ic.incident_id = $2
              order by c.id",
        )
        .bind(self.tenant.as_uuid())
        .bind(incident.as_uuid())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter()
            .map(|(id, status, remembered)| {
                Ok((
                    ComponentId::from(id),
                    status.parse().map_err(corrupt)?,
                    remembered
                        .map(|r| r.parse::<ComponentStatus>())
                        .transpose()
                        .map_err(corrupt)?,
                ))
            })
            .collect()
    }

    /// Sets a component's status, recording the change in its history and
    /// announcing it; answers the old status, or `None` when nothing changed.
    pub(crate) async fn set_component_status(
        &mut self,
        page: PageId,
        component: ComponentId,
        new_status: ComponentStatus,
        cause: ChangeCause,
        incident: Option<IncidentId>,
        at: OffsetDateTime,
    ) -> Result<Option<ComponentStatus>> {
        // The old status is read under the row lock, so concurrent changes
        // record a consistent history.
        let (old_status,): (String,) = sqlx::query_as(
            "select status from components where tenant_id = $1 and id = $2 for update",
        )
        .bind(self.tenant.as_uuid())
        .bind(component.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        let old_status: ComponentStatus = old_status.parse().map_err(corrupt)?;
        if old_status == new_status {
            return Ok(None);
        }
        sqlx::query("update components set status = $3 where tenant_id = $1 and id = $2")
            .bind(self.tenant.as_uuid())
            .bind(component.as_uuid())
            .bind(new_status.as_str())
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "insert into component_status_changes
                 (tenant_id, component_id, old_status, new_status, cause, incident_id, changed_at)
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.tenant.as_uuid())
        .bind(component.as_uuid())
        .bind(old_status.as_str())
        .bind(new_status.as_str())
        .bind(cause.as_str())
        .bind(incident.map(|i| i.as_uuid()))
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        self.record_event(
            page,
            EventKind::ComponentUpdated,
            &ComponentEventPayload {
                component_id: component,
                old_status,
                new_status,
                cause,
                incident_id: incident,
            },
        )
        .await?;
        Ok(Some(old_status))
    }

    /// Writes an outbox event, to be relayed once this transaction commits.
    pub(crate) async fn record_event(
        &mut self,
        page: PageId,
        kind: EventKind,
        payload: &impl Serialize,
    ) -> Result<EventId> {
        let id = EventId::new();
        sqlx::query(
            "insert into outbox (id, tenant_id, page_id, kind, payload)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(id.as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(kind.as_str())
        .bind(Json(payload))
        .execute(&mut *self.tx)
        .await?;
        Ok(id)
    }
}
