//! The worker's side of scheduled maintenance: which are due, and doing
//! what the domain says is due on one.

use heliograph_domain::incident::MaintenanceSteps;
use heliograph_domain::{EventKind, IncidentId, IncidentStatus, TenantId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::notifications::IncidentEventPayload;
use crate::{Result, StoreError, TenantTx};

impl crate::Store {
    /// Maintenances with a reminder, a start or a completion due at `now`.
    ///
    /// Cross-tenant by nature: the worker's clock serves every tenant. The
    /// database function only narrows the candidates (it runs past the
    /// row-level policies); what is due on each is decided again by
    /// [`MaintenanceSteps::due`] under lock.
    pub async fn due_maintenances(
        &self,
        now: OffsetDateTime,
        remind_before: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<(TenantId, IncidentId)>> {
        let rows: Vec<(Uuid, Uuid)> =
            sqlx::query_as("select tenant_id, id from hg_due_maintenances($1, $2, $3)")
                .bind(now)
                .bind(i64::try_from(remind_before.as_millis()).unwrap_or(i64::MAX))
                .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(t, i)| (t.into(), i.into()))
            .collect())
    }
}

impl TenantTx {
    /// Does what is due on a maintenance at `now`: the reminder event, the
    /// start, the completion (each as its own update and event). Safe to
    /// repeat: it re-reads the maintenance under lock, and what is done is
    /// not due any more. Answers the events written.
    pub async fn advance_maintenance(
        &mut self,
        id: IncidentId,
        now: OffsetDateTime,
        remind_before: std::time::Duration,
    ) -> Result<Vec<EventKind>> {
        let mut done = Vec::new();
        let m = match self.lock_incident(id).await {
            Ok(m) => m,
            // Deleted meanwhile: nothing is due.
            Err(StoreError::NotFound) => return Ok(done),
            Err(err) => return Err(err),
        };
        let steps = MaintenanceSteps::due(&m, now, remind_before);
        if let Some(send) = steps.remind {
            if send {
                let latest: (Uuid,) = sqlx::query_as(
                    "select id from incident_updates where tenant_id = $1 and incident_id = $2
                      order by display_at desc, id desc limit 1",
                )
                .bind(self.tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_one(&mut *self.tx)
                .await?;
                self.record_event(
                    m.page_id,
                    EventKind::MaintenanceReminder,
                    &IncidentEventPayload {
                        incident_id: id,
                        incident_update_id: latest.0.into(),
                        deliver_notifications: true,
                    },
                )
                .await?;
                done.push(EventKind::MaintenanceReminder);
            }
            sqlx::query("update incidents set reminded_at = $3 where tenant_id = $1 and id = $2")
                .bind(self.tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(now)
                .execute(&mut *self.tx)
                .await?;
        }
        let mut life = m.lifecycle();
        let mut was = m.status;
        if let Some(change) = &steps.start {
            life = self
                .post_update(m.page_id, id, life, Some(was), change)
                .await?
                .1;
            was = IncidentStatus::InProgress;
            done.push(EventKind::MaintenanceStarted);
        }
        if let Some(change) = &steps.complete {
            self.post_update(m.page_id, id, life, Some(was), change)
                .await?;
            done.push(EventKind::MaintenanceCompleted);
        }
        Ok(done)
    }
}
