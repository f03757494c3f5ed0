//! Reading what uptime is computed from: a component's status changes and
//! the maintenance windows that excused its time, for one component (the
//! API's uptime over any range) or for all of a page's at once (the public
//! page's bars, in a constant number of queries).

use heliograph_domain::uptime::MaintenanceSpan;
use heliograph_domain::{ComponentId, ComponentStatus, IncidentKind, IncidentStatus, PageId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ComponentHistory;
use crate::{Result, StoreError, TenantTx};

impl TenantTx {
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
        // Which maintenances excuse time, and how much, is the domain's
        // rule (`MaintenanceSpan::excused`); this reads the facts it needs.
        let spans: Vec<(
            OffsetDateTime,
            Option<OffsetDateTime>,
            Option<OffsetDateTime>,
            bool,
        )> = sqlx::query_as(
            "select i.started_at, i.resolved_at, i.scheduled_until,
                        exists (select 1 from incident_updates u where u.tenant_id = i.tenant_id
                                  and u.incident_id = i.id and u.status = $5)
                   from incidents i
                   join incident_components ic
                     on ic.tenant_id = i.tenant_id and ic.incident_id = i.id
                  where i.tenant_id = $1 and ic.component_id = $2 and i.kind = $4
                    and i.started_at < $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(end)
        .bind(IncidentKind::Maintenance.as_str())
        .bind(IncidentStatus::InProgress.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        let now = OffsetDateTime::now_utc();
        let maintenance = spans
            .into_iter()
            .filter_map(|(started_at, resolved_at, scheduled_until, began)| {
                MaintenanceSpan {
                    started_at,
                    resolved_at,
                    scheduled_until,
                    began,
                }
                .excused(now)
            })
            .collect();
        Ok(ComponentHistory {
            component,
            changes,
            maintenance,
        })
    }

    /// The histories of all of a page's components, as
    /// [`TenantTx::component_history`] reads them one at a time, but in a
    /// constant number of queries (three, whatever the page holds), and with
    /// only the changes that matter from `from` on: those at or after it,
    /// plus each component's last change before it (which says the status
    /// the window starts in). A page with a year of history rebuilds its
    /// snapshot without reading the year.
    ///
    /// The uptime of any instant from `from` on is the same as from the
    /// whole history; earlier instants are not meant to be asked of it.
    pub async fn page_histories(
        &mut self,
        page: PageId,
        from: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<Vec<ComponentHistory>> {
        let components = self.components(page).await?;
        let ids: Vec<Uuid> = components.iter().map(|c| c.id.as_uuid()).collect();
        let rows: Vec<(Uuid, OffsetDateTime, i64, String, String)> = sqlx::query_as(
            "(select component_id, changed_at, id, old_status, new_status
                from component_status_changes
               where tenant_id = $1 and component_id = any($2)
                 and changed_at >= $3 and changed_at < $4)
             union all
             (select distinct on (component_id) component_id, changed_at, id, old_status, new_status
                from component_status_changes
               where tenant_id = $1 and component_id = any($2) and changed_at < $3
                 and changed_at < $4
               order by component_id, changed_at desc, id desc)",
        )
        .bind(self.tenant.as_uuid())
        .bind(&ids)
        .bind(from)
        .bind(end)
        .fetch_all(&mut *self.tx)
        .await?;
        /// A maintenance's component, start, end, planned end, and whether it began.
        type SpanRow = (
            Uuid,
            OffsetDateTime,
            Option<OffsetDateTime>,
            Option<OffsetDateTime>,
            bool,
        );
        let spans: Vec<SpanRow> = sqlx::query_as(
            "select ic.component_id, i.started_at, i.resolved_at, i.scheduled_until,
                        exists (select 1 from incident_updates u where u.tenant_id = i.tenant_id
                                  and u.incident_id = i.id and u.status = $5)
                   from incidents i
                   join incident_components ic
                     on ic.tenant_id = i.tenant_id and ic.incident_id = i.id
                  where i.tenant_id = $1 and ic.component_id = any($2) and i.kind = $4
                    and i.started_at < $3",
        )
        .bind(self.tenant.as_uuid())
        .bind(&ids)
        .bind(end)
        .bind(IncidentKind::Maintenance.as_str())
        .bind(IncidentStatus::InProgress.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        let parse = |s: &str| -> Result<ComponentStatus> {
            s.parse()
                .map_err(|e: heliograph_domain::UnknownVariant| StoreError::Corrupt(e.to_string()))
        };
        let mut changes: std::collections::HashMap<
            Uuid,
            Vec<(OffsetDateTime, i64, ComponentStatus, ComponentStatus)>,
        > = std::collections::HashMap::with_capacity(ids.len());
        for (component, at, id, old, new) in &rows {
            changes
                .entry(*component)
                .or_default()
                .push((*at, *id, parse(old)?, parse(new)?));
        }
        let now = OffsetDateTime::now_utc();
        let mut maintenance: std::collections::HashMap<
            Uuid,
            Vec<(OffsetDateTime, OffsetDateTime)>,
        > = std::collections::HashMap::new();
        for (component, started_at, resolved_at, scheduled_until, began) in spans {
            if let Some(window) = (MaintenanceSpan {
                started_at,
                resolved_at,
                scheduled_until,
                began,
            })
            .excused(now)
            {
                maintenance.entry(component).or_default().push(window);
            }
        }
        Ok(components
            .into_iter()
            .map(|component| {
                let mut mine = changes.remove(&component.id.as_uuid()).unwrap_or_default();
                // The order `component_history` reads them in.
                mine.sort_unstable_by_key(|(at, id, _, _)| (*at, *id));
                ComponentHistory {
                    maintenance: maintenance
                        .remove(&component.id.as_uuid())
                        .unwrap_or_default(),
                    changes: mine
                        .into_iter()
                        .map(|(at, _, old, new)| (at, old, new))
                        .collect(),
                    component,
                }
            })
            .collect())
    }
}
