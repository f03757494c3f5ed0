//! The demo tenant that `deploy/dev up` shows: a page with grouped
//! components, a resolved past incident, an open one, and a subscriber.
//!
//! Demo data only, written through the store as a handler would; nothing but
//! `seed-demo` calls it.

use std::collections::BTreeMap;

use anyhow::Context;
use heliograph_domain::{
    ComponentStatus, EmailAddress, IncidentChange, IncidentStatus, Name, NewComponent, NewIncident,
    Password, Slug, Target, Visibility,
};
use heliograph_store::{NewSignup, NewSubscriber, SignupRecord, Store};
use time::{Duration, OffsetDateTime};

/// The demo owner's sign-in, printed by `deploy/dev up`.
pub const DEMO_EMAIL: &str = "demo@example.com";
/// The demo owner's password (a local demo only).
pub const DEMO_PASSWORD: &str = "demo-password-1";

fn name(s: &str) -> anyhow::Result<Name> {
    Name::parse("name", s, 255).map_err(|e| anyhow::anyhow!("{e}"))
}

fn component(n: &str, group: Option<heliograph_domain::GroupId>) -> anyhow::Result<NewComponent> {
    Ok(NewComponent {
        name: name(n)?,
        description: None,
        status: ComponentStatus::Operational,
        group_id: group,
        showcase: true,
        only_show_if_degraded: false,
        start_date: None,
        visibility: Visibility::Public,
    })
}

/// Creates the demo tenant unless it exists; answers whether it created it.
pub async fn demo(store: &Store) -> anyhow::Result<bool> {
    let slug = Slug::parse("slug", "demo").map_err(|e| anyhow::anyhow!("{e}"))?;
    if store.tenant_by_slug(&slug).await?.is_some() {
        return Ok(false);
    }
    let password =
        Password::parse("password", DEMO_PASSWORD).map_err(|e| anyhow::anyhow!("{e}"))?;
    let record = store
        .signup(NewSignup {
            name: name("Demo Cloud")?,
            slug,
            email: EmailAddress::parse("email", DEMO_EMAIL).map_err(|e| anyhow::anyhow!("{e}"))?,
            password_hash: heliograph_auth::hash_password(&password)?,
            ip: None,
        })
        .await
        .context("Failed to create the demo tenant")?;
    // Signup commits on its own; should the rest fail, the half-made tenant
    // goes, so that the next run starts over instead of finding it "done".
    // The README signs in as the demo owner, and the demo sends to the
    // address it adds: both need a verified address (example.com receives
    // nothing, so no link could prove it).
    store.mark_email_verified(record.user_id).await?;
    if let Err(err) = populate(store, &record).await {
        store.delete_tenant(record.tenant.id).await?;
        return Err(err);
    }
    Ok(true)
}

async fn populate(store: &Store, record: &SignupRecord) -> anyhow::Result<()> {
    let page = record.page.id;
    let mut tx = store.tenant_tx(record.tenant.id).await?;
    tx.create_component(page, &component("Website", None)?)
        .await?;
    let platform = tx
        .create_component_group(page, &name("Platform")?, Some("What our customers use"))
        .await?;
    let api = tx
        .create_component(page, &component("API", Some(platform.id))?)
        .await?;
    tx.create_component(page, &component("Dashboard", Some(platform.id))?)
        .await?;
    let delivery = tx
        .create_component_group(page, &name("Notifications")?, None)
        .await?;
    let email = tx
        .create_component(page, &component("Email delivery", Some(delivery.id))?)
        .await?;
    tx.create_component(page, &component("Webhooks", Some(delivery.id))?)
        .await?;

    let three_days_ago = OffsetDateTime::now_utc() - Duration::days(3);
    let (past, _) = tx
        .create_incident(
            page,
            &NewIncident {
                name: name("Delayed email notifications")?,
                status: IncidentStatus::Investigating,
                body: "Emails are arriving up to 20 minutes late. We are investigating.".into(),
                impact_override: None,
                components: BTreeMap::from([(email.id, ComponentStatus::DegradedPerformance)]),
                component_ids: vec![],
                deliver_notifications: false,
                at: Some(three_days_ago),
                schedule: None,
                backfilled: false,
                metadata: serde_json::json!({}),
            },
        )
        .await?;
    tx.update_incident(
        past.id,
        &IncidentChange {
            status: IncidentStatus::Resolved,
            body: "A stuck queue consumer was restarted; all delayed emails have been delivered."
                .into(),
            components: BTreeMap::from([(email.id, ComponentStatus::Operational)]),
            deliver_notifications: false,
            at: Some(three_days_ago + Duration::minutes(47)),
            restore_components: false,
        },
    )
    .await?;
    tx.create_subscriber(
        page,
        &NewSubscriber {
            id: heliograph_domain::SubscriberId::new(),
            target: Target::Email(
                EmailAddress::parse("email", "subscriber@example.com")
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            // An email subscriber has nothing to seal.
            secrets: heliograph_store::SealedSecrets::default(),
            component_ids: vec![],
            confirmed: true,
        },
    )
    .await?;
    tx.create_incident(
        page,
        &NewIncident {
            name: name("Elevated API error rates")?,
            status: IncidentStatus::Identified,
            body: "A faulty deploy raised 5xx rates on the API. We are rolling it back.".into(),
            impact_override: None,
            components: BTreeMap::from([(api.id, ComponentStatus::PartialOutage)]),
            component_ids: vec![],
            deliver_notifications: true,
            at: None,
            schedule: None,
            backfilled: false,
            metadata: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
