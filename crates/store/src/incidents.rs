//! Incidents, their updates, and the component changes they carry.

use std::collections::BTreeMap;

use heliograph_domain::{
    ComponentId, ComponentStatus, EventId, EventKind, FieldError, Impact, IncidentId,
    IncidentStatus, IncidentUpdateId, Name, PageId,
};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::notifications::IncidentEventPayload;
use crate::{ListQuery, Listed, Result, StoreError, TenantTx};

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
    /// The impact set by hand, which wins over the derived one.
    pub impact_override: Option<String>,
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
    /// Whether subscribers are reminded before the window.
    pub scheduled_remind_prior: bool,
    /// Whether the worker starts the maintenance at `scheduled_for`.
    pub scheduled_auto_in_progress: bool,
    /// Whether the worker completes the maintenance at `scheduled_until`.
    pub scheduled_auto_completed: bool,
    /// When the reminder went out.
    pub reminded_at: Option<OffsetDateTime>,
    /// Whether it was entered after the fact.
    pub backfilled: bool,
    /// Free-form data of the team's tooling.
    pub metadata: Json<serde_json::Value>,
    /// The postmortem, draft or published.
    pub postmortem_body: Option<String>,
    /// When the postmortem was last edited.
    pub postmortem_body_last_updated_at: Option<OffsetDateTime>,
    /// When the postmortem was published.
    pub postmortem_published_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// The components it concerns.
    pub component_ids: Vec<Uuid>,
}

impl Incident {
    /// Whether this is a scheduled maintenance.
    #[must_use]
    pub fn is_maintenance(&self) -> bool {
        self.kind == "maintenance"
    }
}

/// One component's change within an incident update (Statuspage's `affected_components`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// A maintenance window and what the worker does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Window start.
    pub scheduled_for: OffsetDateTime,
    /// Window end (after the start).
    pub scheduled_until: OffsetDateTime,
    /// Remind subscribers before the window.
    pub remind_prior: bool,
    /// Start it at `scheduled_for`.
    pub auto_in_progress: bool,
    /// Complete it at `scheduled_until`.
    pub auto_completed: bool,
}

/// An incident, or with a schedule a maintenance, to open.
#[derive(Debug, Clone)]
pub struct NewIncident {
    /// Title.
    pub name: Name,
    /// Initial status (a maintenance status when `schedule` is set).
    pub status: IncidentStatus,
    /// The first update's message.
    pub body: String,
    /// Impact to show instead of the one derived from the components.
    pub impact_override: Option<Impact>,
    /// New status per affected component.
    pub components: BTreeMap<ComponentId, ComponentStatus>,
    /// Further affected components whose status does not change now.
    pub component_ids: Vec<ComponentId>,
    /// Whether subscribers are told.
    pub deliver_notifications: bool,
    /// When it happened, if not now (backfilled history, demo data).
    pub at: Option<OffsetDateTime>,
    /// For a scheduled maintenance: its window.
    pub schedule: Option<Schedule>,
    /// Entered after the fact: no component changes, nobody told.
    pub backfilled: bool,
    /// Free-form data of the team's tooling.
    pub metadata: serde_json::Value,
}

/// An update to post on an incident or maintenance.
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
    /// On resolving: put the incident's components back to operational
    /// (those `components` does not name).
    pub restore_components: bool,
}

/// Changes to an incident's own fields (not an update).
#[derive(Debug, Clone, Default)]
pub struct IncidentEdit {
    /// New title.
    pub name: Option<Name>,
    /// New override; `Some(None)` removes it.
    pub impact_override: Option<Option<Impact>>,
    /// New window and flags, for a maintenance.
    pub schedule: Option<Schedule>,
    /// New metadata.
    pub metadata: Option<serde_json::Value>,
    /// Further affected components.
    pub component_ids: Vec<ComponentId>,
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
    const fn condition(self) -> &'static str {
        match self {
            Self::All => "true",
            Self::Unresolved => "i.status in ('investigating', 'identified', 'monitoring')",
            Self::Upcoming => "i.status = 'scheduled'",
            Self::Scheduled => "i.kind = 'maintenance'",
            Self::ActiveMaintenance => "i.status in ('in_progress', 'verifying')",
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

fn transition_error(from: IncidentStatus, to: IncidentStatus) -> StoreError {
    StoreError::Invalid(FieldError::new(
        "status",
        "invalid_transition",
        format!("cannot move from {from} to {to}"),
    ))
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
        let mut all_ids: Vec<ComponentId> = new.components.keys().copied().collect();
        all_ids.extend(new.component_ids.iter().copied());
        all_ids.sort();
        all_ids.dedup();
        self.check_components_on_page("components", page, &all_ids)
            .await?;

        let maintenance = new.schedule.is_some();
        let impact = new.impact_override.unwrap_or_else(|| {
            if maintenance {
                Impact::Maintenance
            } else {
                Impact::from_component_statuses(new.components.values().copied())
            }
        });
        let id = IncidentId::new();
        let at = new.at.unwrap_or_else(OffsetDateTime::now_utc);
        let schedule = new.schedule;
        sqlx::query(
            "insert into incidents (id, tenant_id, page_id, kind, name, status, impact, impact_override,
                                    started_at, created_at, updated_at, scheduled_for, scheduled_until,
                                    scheduled_remind_prior, scheduled_auto_in_progress,
                                    scheduled_auto_completed, backfilled, metadata)
             values ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($10, $9), $9, $9, $10, $11,
                     $12, $13, $14, $15, $16)",
        )
        .bind(id.as_uuid())
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(if maintenance { "maintenance" } else { "incident" })
        .bind(new.name.as_str())
        // The status is set by the first update below.
        .bind(if maintenance { "scheduled" } else { "investigating" })
        .bind(impact.as_str())
        .bind(new.impact_override.map(Impact::as_str))
        .bind(at)
        .bind(schedule.map(|s| s.scheduled_for))
        .bind(schedule.map(|s| s.scheduled_until))
        .bind(schedule.is_some_and(|s| s.remind_prior))
        .bind(schedule.is_some_and(|s| s.auto_in_progress))
        .bind(schedule.is_some_and(|s| s.auto_completed))
        .bind(new.backfilled)
        .bind(Json(&new.metadata))
        .execute(&mut *self.tx)
        .await?;
        self.add_incident_components(id, &all_ids).await?;
        let change = IncidentChange {
            status: new.status,
            body: new.body.clone(),
            // History entered after the fact changes no current status, and
            // a maintenance touches its components when it begins.
            components: if new.backfilled || new.status == IncidentStatus::Scheduled {
                BTreeMap::new()
            } else {
                new.components.clone()
            },
            deliver_notifications: new.deliver_notifications && !new.backfilled,
            at: Some(at),
            restore_components: false,
        };
        let update = self.post_update(page, id, None, &change).await?;
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
        if !current.status.can_move_to(change.status) {
            return Err(transition_error(current.status, change.status));
        }
        let ids: Vec<ComponentId> = change.components.keys().copied().collect();
        self.check_components_on_page("components", current.page_id, &ids)
            .await?;
        self.add_incident_components(id, &ids).await?;
        let update = self
            .post_update(current.page_id, id, Some(current.status), change)
            .await?;
        Ok((self.incident(id).await?, update))
    }

    /// Changes an incident's own fields; posts no update.
    pub async fn edit_incident(&mut self, id: IncidentId, edit: &IncidentEdit) -> Result<Incident> {
        let current = self.lock_incident(id).await?;
        if edit.schedule.is_some() && !current.is_maintenance() {
            return Err(StoreError::Invalid(FieldError::new(
                "scheduled_for",
                "invalid",
                "only a maintenance has a window",
            )));
        }
        self.check_components_on_page("component_ids", current.page_id, &edit.component_ids)
            .await?;
        self.add_incident_components(id, &edit.component_ids)
            .await?;
        let schedule = edit.schedule;
        sqlx::query(
            "update incidents set
                 name = coalesce($3, name),
                 impact_override = case when $4 then $5 else impact_override end,
                 impact = case when $4 then coalesce($5, impact) else impact end,
                 scheduled_for = coalesce($6, scheduled_for),
                 scheduled_until = coalesce($7, scheduled_until),
                 scheduled_remind_prior = coalesce($8, scheduled_remind_prior),
                 scheduled_auto_in_progress = coalesce($9, scheduled_auto_in_progress),
                 scheduled_auto_completed = coalesce($10, scheduled_auto_completed),
                 -- A moved window earns a new reminder.
                 reminded_at = case when $6 is distinct from scheduled_for and $6 is not null
                                    then null else reminded_at end,
                 metadata = coalesce($11, metadata)
             where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(edit.name.as_ref().map(Name::as_str))
        .bind(edit.impact_override.is_some())
        .bind(edit.impact_override.flatten().map(Impact::as_str))
        .bind(schedule.map(|s| s.scheduled_for))
        .bind(schedule.map(|s| s.scheduled_until))
        .bind(schedule.map(|s| s.remind_prior))
        .bind(schedule.map(|s| s.auto_in_progress))
        .bind(schedule.map(|s| s.auto_completed))
        .bind(edit.metadata.as_ref().map(Json))
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
        let condition = format!(
            " from incidents i where i.tenant_id = $1 and i.page_id = $2 and {}
                and ($3::text is null or i.name ilike $3 escape '\\')
                and (cardinality($4::text[]) = 0 or i.status = any($4))",
            scope.condition()
        );
        let (total,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("select count(*) {condition}")))
                .bind(self.tenant.as_uuid())
                .bind(page.as_uuid())
                .bind(query.pattern())
                .bind(&query.statuses)
                .fetch_one(&mut *self.tx)
                .await?;
        let order = if matches!(scope, IncidentScope::Upcoming) {
            "i.scheduled_for asc, i.id"
        } else {
            "coalesce(i.scheduled_for, i.started_at) desc, i.id desc"
        };
        let items = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {} {condition} order by {order} limit $5 offset $6",
            incident_columns!()
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

    /// Writes (or replaces) the postmortem draft of a resolved incident.
    pub async fn set_postmortem(&mut self, id: IncidentId, body: &str) -> Result<Incident> {
        let incident = self.lock_incident(id).await?;
        if !matches!(
            incident.status,
            IncidentStatus::Resolved | IncidentStatus::Postmortem
        ) {
            return Err(StoreError::Invalid(FieldError::new(
                "status",
                "not_resolved",
                "a postmortem is written once the incident is resolved",
            )));
        }
        sqlx::query(
            "update incidents set postmortem_body = $3, postmortem_body_last_updated_at = now()
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(body)
        .execute(&mut *self.tx)
        .await?;
        self.incident(id).await
    }

    /// Removes the postmortem (draft or published); a published one takes
    /// the incident back to `resolved`.
    pub async fn delete_postmortem(&mut self, id: IncidentId) -> Result<Incident> {
        let incident = self.lock_incident(id).await?;
        if incident.postmortem_body.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "update incidents set postmortem_body = null, postmortem_body_last_updated_at = null,
                    postmortem_published_at = null,
                    status = case when status = 'postmortem' then 'resolved' else status end
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        self.incident(id).await
    }

    /// Publishes the postmortem draft: the incident moves to `postmortem`
    /// with an update carrying the text; subscribers are told if asked.
    pub async fn publish_postmortem(
        &mut self,
        id: IncidentId,
        notify: bool,
    ) -> Result<(Incident, IncidentUpdate)> {
        let incident = self.lock_incident(id).await?;
        let Some(body) = incident.postmortem_body.clone() else {
            return Err(StoreError::Invalid(FieldError::new(
                "postmortem",
                "missing",
                "write the postmortem before publishing it",
            )));
        };
        if incident.postmortem_published_at.is_some() {
            return Err(StoreError::Conflict {
                constraint: "postmortem_published".to_owned(),
            });
        }
        let change = IncidentChange {
            status: IncidentStatus::Postmortem,
            body,
            components: BTreeMap::new(),
            deliver_notifications: notify,
            at: None,
            restore_components: false,
        };
        let (_, update) = self.update_incident(id, &change).await?;
        sqlx::query(
            "update incidents set postmortem_published_at = now() where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok((self.incident(id).await?, update))
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

    /// The `limit` most recent incidents and the `limit` most recent
    /// maintenances of a page, any status: the page's public history.
    pub(crate) async fn recent_incidents(
        &mut self,
        page: PageId,
        limit: i64,
    ) -> Result<Vec<Incident>> {
        Ok(sqlx::query_as(concat!(
            "(select ",
            incident_columns!(),
            " from incidents i
              where i.tenant_id = $1 and i.page_id = $2 and i.kind = 'incident'
              order by i.started_at desc, i.id desc limit $3)
             union all
             (select ",
            incident_columns!(),
            " from incidents i
              where i.tenant_id = $1 and i.page_id = $2 and i.kind = 'maintenance'
              order by i.scheduled_for desc nulls last, i.id desc limit $3)"
        ))
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    /// The updates of these incidents, newest first.
    pub async fn incident_updates(
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

    /// The component moves a status change implies beyond those asked for:
    /// a maintenance that begins puts its components under maintenance
    /// (remembering their status); one that ends gives each back what it
    /// had; a resolved incident may put its components back to operational.
    async fn implied_moves(
        &mut self,
        incident: IncidentId,
        before: Option<IncidentStatus>,
        change: &IncidentChange,
    ) -> Result<BTreeMap<ComponentId, ComponentStatus>> {
        use IncidentStatus::{Completed, InProgress, Resolved, Verifying};
        let after = change.status;
        let starts = after == InProgress && !matches!(before, Some(InProgress | Verifying));
        let ends = after == Completed && matches!(before, Some(InProgress | Verifying));
        let restores = change.restore_components && after == Resolved;
        if !(starts || ends || restores) {
            return Ok(BTreeMap::new());
        }
        if starts {
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
        let mut moves = BTreeMap::new();
        for (id, status, before_status) in rows {
            let target = if starts {
                Some(ComponentStatus::UnderMaintenance)
            } else if ends {
                // Only what is still under this maintenance goes back; a
                // status set by hand in between stands.
                (status == ComponentStatus::UnderMaintenance.as_str()).then(|| {
                    before_status
                        .and_then(|b| b.parse().ok())
                        .unwrap_or(ComponentStatus::Operational)
                })
            } else {
                Some(ComponentStatus::Operational)
            };
            if let Some(target) = target {
                moves.insert(ComponentId::from(id), target);
            }
        }
        Ok(moves)
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
        let old_status: ComponentStatus = old_status
            .parse()
            .map_err(|e: heliograph_domain::UnknownVariant| StoreError::Corrupt(e.to_string()))?;
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

    /// Writes an update, applies its component changes and records the events.
    async fn post_update(
        &mut self,
        page: PageId,
        incident: IncidentId,
        before: Option<IncidentStatus>,
        change: &IncidentChange,
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
        let mut moves = self.implied_moves(incident, before, change).await?;
        // What was asked for explicitly wins over what the lifecycle implies.
        moves.extend(change.components.iter().map(|(c, s)| (*c, *s)));
        let cause = if change.status.is_maintenance() {
            ChangeCause::Maintenance
        } else {
            ChangeCause::Incident
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
        // Impact follows the worst status an update sets and never falls on
        // its own (a resolved incident keeps the impact it had); an override
        // wins, and a maintenance stays a maintenance.
        let (current, overridden, kind): (String, Option<String>, String) = sqlx::query_as(
            "select impact, impact_override, kind from incidents where tenant_id = $1 and id = $2 for update",
        )
        .bind(self.tenant.as_uuid())
        .bind(incident.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        let current: Impact = current
            .parse()
            .map_err(|e: heliograph_domain::UnknownVariant| StoreError::Corrupt(e.to_string()))?;
        let impact = if overridden.is_some() || kind == "maintenance" {
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
                 started_at = case when $3 = 'in_progress' and status = 'scheduled' then $4 else started_at end,
                 monitoring_at = case when $3 = 'monitoring' then coalesce(monitoring_at, $4) else monitoring_at end,
                 resolved_at = case when $3 in ('resolved', 'postmortem', 'completed')
                                    then coalesce(resolved_at, $4) else null end
             where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(incident.as_uuid())
        .bind(change.status.as_str())
        .bind(at)
        .bind(impact.as_str())
        .execute(&mut *self.tx)
        .await?;
        self.record_event(
            page,
            EventKind::for_update(before, change.status),
            &IncidentEventPayload {
                incident_id: incident,
                incident_update_id: update_id,
                deliver_notifications: change.deliver_notifications,
            },
        )
        .await?;
        self.incident_update(incident, update_id).await
    }
}

/// The message of the update the worker posts when a maintenance begins on time.
pub const MAINTENANCE_STARTED_BODY: &str =
    "Scheduled maintenance is currently in progress. We will provide updates as necessary.";
/// The message of the update the worker posts when a maintenance ends on time.
pub const MAINTENANCE_COMPLETED_BODY: &str = "The scheduled maintenance has been completed.";

impl crate::Store {
    /// Maintenances with a reminder, a start or a completion due at `now`.
    ///
    /// Cross-tenant by nature: the worker's clock serves every tenant.
    pub async fn due_maintenances(
        &self,
        now: OffsetDateTime,
        remind_before: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<(heliograph_domain::TenantId, IncidentId)>> {
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
            Ok(m) if m.is_maintenance() => m,
            // Deleted meanwhile, or not a maintenance: nothing is due.
            Ok(_) | Err(StoreError::NotFound) => return Ok(done),
            Err(err) => return Err(err),
        };
        let (Some(start), Some(end)) = (m.scheduled_for, m.scheduled_until) else {
            return Ok(done);
        };
        let lead = time::Duration::try_from(remind_before).unwrap_or(time::Duration::ZERO);
        let mut status = m.status;
        if status == IncidentStatus::Scheduled
            && m.scheduled_remind_prior
            && m.reminded_at.is_none()
            && start - lead <= now
        {
            // Past the start, a reminder is pointless; it is marked done all the same.
            if now < start {
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
        let step = |next: IncidentStatus, body: &str, at: OffsetDateTime| IncidentChange {
            status: next,
            body: body.to_owned(),
            components: BTreeMap::new(),
            deliver_notifications: true,
            at: Some(at),
            restore_components: false,
        };
        if status == IncidentStatus::Scheduled && m.scheduled_auto_in_progress && start <= now {
            let change = step(
                IncidentStatus::InProgress,
                MAINTENANCE_STARTED_BODY,
                start.max(m.created_at),
            );
            self.post_update(m.page_id, id, Some(status), &change)
                .await?;
            status = IncidentStatus::InProgress;
            done.push(EventKind::MaintenanceStarted);
        }
        if matches!(
            status,
            IncidentStatus::Scheduled | IncidentStatus::InProgress | IncidentStatus::Verifying
        ) && m.scheduled_auto_completed
            && end <= now
        {
            let change = step(
                IncidentStatus::Completed,
                MAINTENANCE_COMPLETED_BODY,
                end.max(m.created_at),
            );
            self.post_update(m.page_id, id, Some(status), &change)
                .await?;
            done.push(EventKind::MaintenanceCompleted);
        }
        Ok(done)
    }
}
