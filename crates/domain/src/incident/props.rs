//! Property tests over the incident planner: no sequence of changes reaches
//! a state the rules forbid.

use std::collections::BTreeMap;

use proptest::prelude::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;

const T0: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);

/// One change a team (or the worker's clock) may make.
#[derive(Debug, Clone)]
enum Step {
    /// Post an update moving to a status, setting components, some minutes later.
    Update(IncidentStatus, Vec<ComponentStatus>, i64),
    /// Set or remove the override.
    Override(Option<Impact>),
}

fn status() -> impl Strategy<Value = IncidentStatus> {
    prop::sample::select(IncidentStatus::ALL)
}

fn component_status() -> impl Strategy<Value = ComponentStatus> {
    prop::sample::select(ComponentStatus::ALL)
}

fn impact() -> impl Strategy<Value = Impact> {
    prop::sample::select(Impact::ALL)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (status(), prop::collection::vec(component_status(), 0..3), 0..600_i64)
            .prop_map(|(s, c, m)| Step::Update(s, c, m)),
        1 => prop::option::of(impact()).prop_map(Step::Override),
    ]
}

/// A new incident or maintenance, as a request may open it.
fn opening() -> impl Strategy<Value = NewIncident> {
    (
        any::<bool>(),
        prop::sample::select(
            &[
                IncidentStatus::Investigating,
                IncidentStatus::Identified,
                IncidentStatus::Monitoring,
                IncidentStatus::Resolved,
            ][..],
        ),
        prop::sample::select(&[IncidentStatus::Scheduled, IncidentStatus::InProgress][..]),
        prop::collection::vec(component_status(), 0..3),
        prop::option::of(impact()),
        any::<bool>(),
        -600_i64..600,
    )
        .prop_map(
            |(
                maintenance,
                incident_status,
                maintenance_status,
                statuses,
                chosen,
                backfilled,
                lead,
            )| {
                let schedule = maintenance.then(|| Schedule {
                    scheduled_for: T0 + Duration::minutes(lead),
                    scheduled_until: T0 + Duration::minutes(lead + 60),
                    remind_prior: true,
                    auto_in_progress: true,
                    auto_completed: true,
                });
                NewIncident {
                    name: crate::Name::parse("name", "x", 255).unwrap(),
                    status: if maintenance {
                        maintenance_status
                    } else if backfilled {
                        IncidentStatus::Resolved
                    } else {
                        incident_status
                    },
                    body: String::new(),
                    impact_override: chosen,
                    components: statuses
                        .into_iter()
                        .enumerate()
                        .map(|(n, s)| (ComponentId::from(Uuid::from_u128(n as u128 + 1)), s))
                        .collect(),
                    component_ids: Vec::new(),
                    deliver_notifications: true,
                    at: None,
                    schedule,
                    backfilled: backfilled && !maintenance,
                    metadata: serde_json::json!({}),
                }
            },
        )
}

/// What must hold of every state the planner reaches.
fn check_invariants(life: &Lifecycle, kind: IncidentKind) -> Result<(), TestCaseError> {
    prop_assert_eq!(life.kind, kind, "the kind never changes");
    prop_assert_eq!(
        IncidentKind::of_status(life.status),
        kind,
        "only the kind's own statuses"
    );
    prop_assert_eq!(
        life.resolved_at.is_some(),
        is_closed(life.status),
        "resolved_at iff closed"
    );
    if kind == IncidentKind::Incident {
        if let Some(m) = life.monitoring_at {
            prop_assert!(life.started_at <= m);
        }
        if let Some(r) = life.resolved_at {
            prop_assert!(life.started_at <= r);
            if let Some(m) = life.monitoring_at {
                prop_assert!(m <= r, "monitoring before resolving");
            }
        }
    }
    if let Some(chosen) = life.impact_override {
        prop_assert_eq!(life.impact, chosen, "an override wins");
    }
    Ok(())
}

proptest! {
    #[test]
    fn no_sequence_of_changes_reaches_a_forbidden_state(
        new in opening(),
        steps in prop::collection::vec(step(), 0..24),
    ) {
        let o = Opening::plan(&new, T0);
        let kind = o.before.kind;
        prop_assert_eq!(kind == IncidentKind::Maintenance, new.schedule.is_some());
        let mut life = o
            .before
            .after_update(o.first.status, o.first.components.values().copied(), o.at)
            .expect("every status a request may open in is allowed");
        check_invariants(&life, kind)?;
        let mut now = o.at;
        for step in steps {
            let before = life;
            match step {
                Step::Update(next, asked, minutes) => {
                    now += Duration::minutes(minutes);
                    match life.after_update(next, asked, now) {
                        Ok(after) => {
                            prop_assert!(before.status.can_move_to(next));
                            prop_assert!(
                                after.impact.rank() >= before.impact.rank(),
                                "impact never falls on an update: {:?} -> {:?}",
                                before.impact,
                                after.impact
                            );
                            if before.monitoring_at.is_some() {
                                prop_assert_eq!(after.monitoring_at, before.monitoring_at);
                            }
                            if is_closed(before.status) && is_closed(next) {
                                prop_assert_eq!(after.resolved_at, before.resolved_at);
                            }
                            life = after;
                        }
                        Err(Refusal::Invalid(e)) => {
                            prop_assert!(!before.status.can_move_to(next));
                            prop_assert_eq!(e.code, "invalid_transition");
                        }
                        Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
                    }
                }
                Step::Override(chosen) => {
                    life = life.with_override(chosen);
                    if chosen.is_none() {
                        prop_assert_eq!(life.impact, before.impact);
                    }
                }
            }
            check_invariants(&life, kind)?;
        }
    }

    #[test]
    fn what_the_clock_did_is_not_due_again(
        lead in -600_i64..600,
        remind_prior in any::<bool>(),
        auto_in_progress in any::<bool>(),
        auto_completed in any::<bool>(),
        ticks in prop::collection::vec(0_i64..120, 1..8),
    ) {
        let start = T0 + Duration::minutes(lead);
        let mut m = Incident {
            id: IncidentId::new(),
            page_id: PageId::new(),
            kind: IncidentKind::Maintenance,
            name: "m".into(),
            status: IncidentStatus::Scheduled,
            impact: Impact::Maintenance,
            impact_override: None,
            started_at: start,
            monitoring_at: None,
            resolved_at: None,
            scheduled_for: Some(start),
            scheduled_until: Some(start + Duration::minutes(60)),
            scheduled_remind_prior: remind_prior,
            scheduled_auto_in_progress: auto_in_progress,
            scheduled_auto_completed: auto_completed,
            reminded_at: None,
            backfilled: false,
            metadata: serde_json::json!({}),
            postmortem_body: None,
            postmortem_body_last_updated_at: None,
            postmortem_published_at: None,
            created_at: T0,
            updated_at: T0,
            component_ids: Vec::new(),
        };
        let lead_time = std::time::Duration::from_secs(30 * 60);
        let mut now = T0;
        for tick in ticks {
            now += Duration::minutes(tick);
            let due = MaintenanceSteps::due(&m, now, lead_time);
            if due.remind.is_some() {
                m.reminded_at = Some(now);
            }
            let mut life = m.lifecycle();
            for change in due.start.iter().chain(due.complete.iter()) {
                let at = change.at.unwrap();
                prop_assert!(at <= now, "a step is never dated in the future");
                life = life
                    .after_update(change.status, change.components.values().copied(), at)
                    .expect("the clock only takes allowed moves");
            }
            m.status = life.status;
            m.started_at = life.started_at;
            m.resolved_at = life.resolved_at;
            prop_assert!(MaintenanceSteps::due(&m, now, lead_time).is_empty());
            prop_assert!(m.status.is_maintenance());
        }
    }
}

#[test]
fn an_opening_without_components_has_no_impact() {
    let new = NewIncident {
        name: crate::Name::parse("name", "x", 255).unwrap(),
        status: IncidentStatus::Investigating,
        body: String::new(),
        impact_override: None,
        components: BTreeMap::new(),
        component_ids: Vec::new(),
        deliver_notifications: true,
        at: None,
        schedule: None,
        backfilled: false,
        metadata: serde_json::json!({}),
    };
    assert_eq!(Opening::plan(&new, T0).before.impact, Impact::None);
}
