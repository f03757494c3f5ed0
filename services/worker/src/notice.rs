//! What an event says, read once per event and worker rather than once per
//! delivery: a fan-out to 100,000 subscribers would otherwise read the same
//! page, incident and updates 100,000 times.
//!
//! The view is built from the rows as they are when first read, in the
//! state the event announced (updates after the event's own are left out),
//! with what the public may not see (the domain's visibility rules: private
//! components, their changes, the impact they would give away) left out
//! everywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use heliograph_domain::IncidentUpdate;
use heliograph_domain::{Audience, EventId, EventKind, Sight, TenantId};
use heliograph_notify::PreparedEmail;
use heliograph_notify::payloads::{
    AffectedComponent, ComponentChange, ComponentInfo, IncidentInfo, Notice, PageInfo, Spliced,
    UpdateInfo,
};
use heliograph_store::{ComponentEventPayload, IncidentEventPayload, TenantTx};
use time::OffsetDateTime;

use crate::{Context, Error};

/// How long a view is reused.
const TTL: Duration = Duration::from_secs(60);

/// Views kept at most; beyond, the cache starts over.
const CAPACITY: usize = 4_096;

/// An event as its deliveries tell it.
#[derive(Debug)]
pub struct EventView {
    /// Its kind.
    pub kind: EventKind,
    /// The page, for every payload.
    pub page: PageInfo,
    /// What happened.
    pub notice: Notice,
    /// When the event was recorded (the webhook's `generated_at`, so that
    /// every retry sends the same body).
    pub created_at: OffsetDateTime,
    /// The incident email, rendered and encoded once for every recipient
    /// (`deliver`); none when the event has no such email.
    pub email: OnceLock<Option<PreparedEmail>>,
    /// The webhook, Slack and Teams bodies, serialized once, cut where each
    /// recipient's own unsubscribe link goes (`deliver`).
    pub bodies: [OnceLock<Spliced>; 3],
}

/// A cached view and when it was read.
type Entry = (Instant, Arc<EventView>);

/// Views by event, shared by a worker's jobs.
#[derive(Debug, Default)]
pub struct EventCache(Mutex<HashMap<(TenantId, EventId), Entry>>);

impl EventCache {
    fn get(&self, key: (TenantId, EventId)) -> Option<Arc<EventView>> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&key)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, view)| Arc::clone(view))
    }

    fn put(&self, key: (TenantId, EventId), view: Arc<EventView>) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= CAPACITY {
            map.retain(|_, (at, _)| at.elapsed() < TTL);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), view));
    }
}

/// The view of `event`, from the cache or read in `tx`.
pub async fn event_view(
    ctx: &Context,
    tx: &mut TenantTx,
    tenant: TenantId,
    event: EventId,
) -> Result<Arc<EventView>, Error> {
    if let Some(view) = ctx.events.get((tenant, event)) {
        return Ok(view);
    }
    let view = Arc::new(read(ctx, tx, event).await?);
    ctx.events.put((tenant, event), Arc::clone(&view));
    Ok(view)
}

async fn read(ctx: &Context, tx: &mut TenantTx, id: EventId) -> Result<EventView, Error> {
    let event = tx.event(id).await?;
    let kind = EventKind::parse(&event.kind)
        .ok_or_else(|| Error::Permanent(anyhow::anyhow!("Unknown event kind {}", event.kind)))?;
    let data = tx.page_data(event.page_id).await?;
    // Subscribers read what the public page shows.
    let sight = Sight::new(
        Audience::Public,
        data.components
            .iter()
            .map(|c| (c.id.as_uuid(), c.visibility)),
    );
    let status = sight.page_status(
        data.components.iter().map(|c| (c.id.as_uuid(), c.status)),
        data.active_incidents.iter().map(|(i, u)| i.facts(u)),
    );
    let page_url = ctx.urls.page_url(data.page.slug.as_str());
    let page = PageInfo {
        id: data.page.id.as_uuid(),
        name: data.page.name.clone(),
        url: page_url.clone(),
        status_indicator: status.indicator,
        status_description: status.description.to_owned(),
        logo_url: data.page.logo_url.clone(),
        brand_color: data.page.brand_color.clone(),
    };
    let public: HashMap<uuid::Uuid, ComponentInfo> = data
        .components
        .iter()
        .filter(|c| sight.sees(c.id.as_uuid()))
        .map(|c| {
            (
                c.id.as_uuid(),
                ComponentInfo {
                    id: c.id.as_uuid(),
                    name: c.name.clone(),
                    status: c.status,
                    description: c.description.clone(),
                    position: c.position,
                    group_id: c.group_id.map(|g| g.as_uuid()),
                    created_at: c.created_at,
                    updated_at: c.updated_at,
                },
            )
        })
        .collect();
    let notice = if kind.is_incident_event() {
        let p: IncidentEventPayload = serde_json::from_value(event.payload.0.clone())?;
        let incident = tx.incident(p.incident_id).await?;
        let mut updates = tx.incident_updates(&[p.incident_id]).await?;
        // As of the event: its own update first, later ones left out.
        let own = updates
            .iter()
            .find(|u| u.id == p.incident_update_id)
            .map(|u| (u.display_at, u.created_at));
        if let Some(own) = own {
            updates.retain(|u| (u.display_at, u.created_at) <= own);
        }
        updates.sort_by_key(|u| std::cmp::Reverse((u.display_at, u.created_at)));
        if let Some(pos) = updates.iter().position(|u| u.id == p.incident_update_id) {
            let own = updates.remove(pos);
            updates.insert(0, own);
        }
        Notice::Incident {
            kind,
            incident: IncidentInfo {
                id: incident.id.as_uuid(),
                name: incident.name.clone(),
                status: updates.first().map_or(incident.status, |u| u.status),
                // As the public page gives it: a private outage does not show through.
                impact: sight.impact(&incident.facts(&updates)),
                shortlink: format!("{page_url}/incidents/{}", incident.id),
                created_at: incident.created_at,
                updated_at: incident.updated_at,
                started_at: incident.started_at,
                monitoring_at: incident.monitoring_at,
                resolved_at: incident.resolved_at,
                scheduled_for: incident.scheduled_for,
                scheduled_until: incident.scheduled_until,
                updates: updates.iter().map(|u| update_info(&sight, u)).collect(),
                components: incident
                    .component_ids
                    .iter()
                    .filter_map(|id| public.get(&id.as_uuid()).cloned())
                    .collect(),
            },
        }
    } else if kind == EventKind::ComponentUpdated {
        let p: ComponentEventPayload = serde_json::from_value(event.payload.0.clone())?;
        let component = public
            .get(&p.component_id.as_uuid())
            .cloned()
            .ok_or_else(|| {
                Error::Permanent(anyhow::anyhow!(
                    "The component is private or gone; its change is not announced"
                ))
            })?;
        Notice::Component(ComponentChange {
            component,
            old_status: p.old_status,
            new_status: p.new_status,
            at: event.created_at,
            change_id: event.id.as_uuid(),
        })
    } else {
        Notice::Ping
    };
    Ok(EventView {
        kind,
        page,
        notice,
        created_at: event.created_at,
        email: OnceLock::new(),
        bodies: Default::default(),
    })
}

/// An update as a notice tells it: only the changes the public may see.
fn update_info(sight: &Sight, u: &IncidentUpdate) -> UpdateInfo {
    UpdateInfo {
        id: u.id.as_uuid(),
        status: u.status,
        body: u.body.clone(),
        created_at: u.created_at,
        updated_at: u.updated_at,
        display_at: u.display_at,
        affected_components: u
            .affected_components
            .iter()
            .filter(|c| sight.shows_change(c.code, c.private))
            .map(|c| AffectedComponent {
                id: c.code,
                name: c.name.clone(),
                old_status: Some(c.old_status),
                new_status: c.new_status,
            })
            .collect(),
    }
}
