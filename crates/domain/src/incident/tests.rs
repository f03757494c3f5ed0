//! Unit tests, one group per lifecycle decision.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};

use super::*;
use crate::TimeZoneName;

const T0: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);

fn cid(n: u128) -> ComponentId {
    ComponentId::from(Uuid::from_u128(n))
}

fn new_incident(status: IncidentStatus) -> NewIncident {
    NewIncident {
        name: Name::parse("name", "Errors", 255).unwrap(),
        status,
        body: "Looking".into(),
        impact_override: None,
        components: BTreeMap::from([(cid(1), ComponentStatus::PartialOutage)]),
        component_ids: vec![cid(2), cid(1)],
        deliver_notifications: true,
        at: None,
        schedule: None,
        backfilled: false,
        metadata: serde_json::json!({}),
    }
}

fn window(start: OffsetDateTime, end: OffsetDateTime) -> Schedule {
    Schedule {
        scheduled_for: start,
        scheduled_until: end,
        remind_prior: true,
        auto_in_progress: true,
        auto_completed: true,
    }
}

fn incident_from(new: &NewIncident, now: OffsetDateTime) -> Incident {
    let o = Opening::plan(new, now);
    let life = o
        .before
        .after_update(o.first.status, o.first.components.values().copied(), o.at)
        .unwrap();
    let s = new.schedule;
    Incident {
        id: IncidentId::new(),
        page_id: PageId::new(),
        kind: life.kind,
        name: new.name.as_str().to_owned(),
        status: life.status,
        impact: life.impact,
        impact_override: life.impact_override,
        started_at: life.started_at,
        monitoring_at: life.monitoring_at,
        resolved_at: life.resolved_at,
        scheduled_for: s.map(|s| s.scheduled_for),
        scheduled_until: s.map(|s| s.scheduled_until),
        scheduled_remind_prior: s.is_some_and(|s| s.remind_prior),
        scheduled_auto_in_progress: s.is_some_and(|s| s.auto_in_progress),
        scheduled_auto_completed: s.is_some_and(|s| s.auto_completed),
        reminded_at: None,
        backfilled: new.backfilled,
        metadata: new.metadata.clone(),
        postmortem_body: None,
        postmortem_body_last_updated_at: None,
        postmortem_published_at: None,
        created_at: o.at,
        updated_at: o.at,
        component_ids: o.component_ids,
    }
}

fn code(r: Refusal) -> &'static str {
    match r {
        Refusal::Invalid(f) => f.code,
        Refusal::Conflict(c) => c,
        Refusal::Missing => "missing",
    }
}

// --- status changes: transition, impact, timestamps

#[test]
fn an_incident_never_takes_a_maintenance_status_nor_the_reverse() {
    let i = incident_from(&new_incident(IncidentStatus::Investigating), T0).lifecycle();
    let refused = i
        .after_update(IncidentStatus::InProgress, [], T0)
        .unwrap_err();
    assert_eq!(code(refused), "invalid_transition");
    let mut new = new_incident(IncidentStatus::Scheduled);
    new.schedule = Some(window(T0 + Duration::hours(1), T0 + Duration::hours(2)));
    let m = incident_from(&new, T0).lifecycle();
    assert_eq!(m.kind, IncidentKind::Maintenance);
    assert!(m.after_update(IncidentStatus::Resolved, [], T0).is_err());
}

#[test]
fn impact_follows_the_worst_status_asked_and_never_falls() {
    let i = incident_from(&new_incident(IncidentStatus::Investigating), T0).lifecycle();
    assert_eq!(i.impact, Impact::Major);
    let worse = i
        .after_update(
            IncidentStatus::Identified,
            [ComponentStatus::MajorOutage],
            T0,
        )
        .unwrap();
    assert_eq!(worse.impact, Impact::Critical);
    let better = worse
        .after_update(IncidentStatus::Resolved, [ComponentStatus::Operational], T0)
        .unwrap();
    assert_eq!(
        better.impact,
        Impact::Critical,
        "a resolved incident keeps its impact"
    );
}

#[test]
fn an_override_wins_until_removed_and_a_maintenance_keeps_its_impact() {
    let i = incident_from(&new_incident(IncidentStatus::Investigating), T0).lifecycle();
    let chosen = i.with_override(Some(Impact::Minor));
    assert_eq!(chosen.impact, Impact::Minor);
    let after = chosen
        .after_update(
            IncidentStatus::Identified,
            [ComponentStatus::MajorOutage],
            T0,
        )
        .unwrap();
    assert_eq!(after.impact, Impact::Minor);
    let removed = after.with_override(None);
    assert_eq!(
        (removed.impact, removed.impact_override),
        (Impact::Minor, None)
    );

    let mut new = new_incident(IncidentStatus::Scheduled);
    new.schedule = Some(window(T0 + Duration::hours(1), T0 + Duration::hours(2)));
    let m = incident_from(&new, T0).lifecycle();
    assert_eq!(m.impact, Impact::Maintenance);
    let started = m
        .after_update(
            IncidentStatus::InProgress,
            [ComponentStatus::MajorOutage],
            T0,
        )
        .unwrap();
    assert_eq!(started.impact, Impact::Maintenance);
}

#[test]
fn timestamps_are_set_as_the_status_moves() {
    let i = incident_from(&new_incident(IncidentStatus::Investigating), T0).lifecycle();
    assert_eq!(
        (i.started_at, i.monitoring_at, i.resolved_at),
        (T0, None, None)
    );
    let t1 = T0 + Duration::minutes(10);
    let t2 = T0 + Duration::minutes(20);
    let t3 = T0 + Duration::minutes(30);
    let monitoring = i.after_update(IncidentStatus::Monitoring, [], t1).unwrap();
    assert_eq!(monitoring.monitoring_at, Some(t1));
    let again = monitoring
        .after_update(IncidentStatus::Monitoring, [], t2)
        .unwrap();
    assert_eq!(again.monitoring_at, Some(t1), "the first time counts");
    let resolved = again
        .after_update(IncidentStatus::Resolved, [], t2)
        .unwrap();
    assert_eq!(resolved.resolved_at, Some(t2));
    let postmortem = resolved
        .after_update(IncidentStatus::Postmortem, [], t3)
        .unwrap();
    assert_eq!(postmortem.resolved_at, Some(t2), "kept once closed");
    let reopened = resolved
        .after_update(IncidentStatus::Investigating, [], t3)
        .unwrap();
    assert_eq!(reopened.resolved_at, None);
    assert_eq!(reopened.monitoring_at, Some(t1), "never cleared");
}

#[test]
fn a_maintenance_started_by_hand_starts_now() {
    let start = T0 + Duration::hours(3);
    let mut new = new_incident(IncidentStatus::Scheduled);
    new.schedule = Some(window(start, start + Duration::hours(1)));
    let m = incident_from(&new, T0).lifecycle();
    assert_eq!(
        m.started_at, start,
        "until it starts, it starts at its window"
    );
    let now = T0 + Duration::hours(1);
    let started = m.after_update(IncidentStatus::InProgress, [], now).unwrap();
    assert_eq!(started.started_at, now);
    let verifying = started
        .after_update(IncidentStatus::Verifying, [], now + Duration::hours(1))
        .unwrap();
    let back = verifying
        .after_update(IncidentStatus::InProgress, [], now + Duration::hours(2))
        .unwrap();
    assert_eq!(back.started_at, now, "only the first start counts");
    let done = back
        .after_update(IncidentStatus::Completed, [], now + Duration::hours(3))
        .unwrap();
    assert_eq!(done.resolved_at, Some(now + Duration::hours(3)));
}

// --- opening

#[test]
fn a_maintenance_opens_scheduled_and_touches_nothing_until_it_begins() {
    let start = T0 + Duration::hours(1);
    let mut new = new_incident(IncidentStatus::Scheduled);
    new.schedule = Some(window(start, start + Duration::hours(1)));
    let o = Opening::plan(&new, T0);
    assert_eq!(o.before.kind, IncidentKind::Maintenance);
    assert_eq!(o.before.status, IncidentStatus::Scheduled);
    assert_eq!(o.before.impact, Impact::Maintenance);
    assert_eq!(o.before.started_at, start);
    assert!(o.first.components.is_empty());
    assert_eq!(o.component_ids, vec![cid(1), cid(2)]);

    new.status = IncidentStatus::InProgress;
    let o = Opening::plan(&new, T0);
    assert_eq!(
        o.first.components.len(),
        1,
        "a maintenance begun now moves them"
    );
}

#[test]
fn backfilled_history_changes_no_status_and_tells_nobody() {
    let mut new = new_incident(IncidentStatus::Resolved);
    new.backfilled = true;
    new.at = Some(T0 - Duration::days(2));
    let o = Opening::plan(&new, T0);
    assert!(o.first.components.is_empty());
    assert!(!o.first.deliver_notifications);
    assert_eq!(o.at, T0 - Duration::days(2));
    assert_eq!(
        o.before.impact,
        Impact::Major,
        "its impact is still its own"
    );
}

#[test]
fn an_override_wins_at_opening() {
    let mut new = new_incident(IncidentStatus::Investigating);
    new.impact_override = Some(Impact::Critical);
    assert_eq!(Opening::plan(&new, T0).before.impact, Impact::Critical);
}

// --- implied component moves

#[test]
fn a_maintenance_that_begins_or_ends_moves_its_components() {
    let change = |status| IncidentChange {
        status,
        body: String::new(),
        components: BTreeMap::new(),
        deliver_notifications: true,
        at: None,
        restore_components: false,
    };
    use IncidentStatus::*;
    assert_eq!(
        ImpliedMove::of(Some(Scheduled), &change(InProgress)),
        Some(ImpliedMove::Start)
    );
    assert_eq!(
        ImpliedMove::of(None, &change(InProgress)),
        Some(ImpliedMove::Start)
    );
    assert_eq!(ImpliedMove::of(Some(Verifying), &change(InProgress)), None);
    assert_eq!(
        ImpliedMove::of(Some(Verifying), &change(Completed)),
        Some(ImpliedMove::End)
    );
    assert_eq!(
        ImpliedMove::of(Some(Scheduled), &change(Completed)),
        None,
        "called off before it began: nothing to give back"
    );
    assert_eq!(ImpliedMove::of(Some(Monitoring), &change(Resolved)), None);
    let mut restore = change(Resolved);
    restore.restore_components = true;
    assert_eq!(
        ImpliedMove::of(Some(Monitoring), &restore),
        Some(ImpliedMove::Restore)
    );
    assert!(ImpliedMove::Start.remembers());
}

#[test]
fn an_ending_maintenance_gives_back_only_what_it_still_holds_and_asked_moves_win() {
    let rows = [
        (
            cid(1),
            ComponentStatus::UnderMaintenance,
            Some(ComponentStatus::DegradedPerformance),
        ),
        (
            cid(2),
            ComponentStatus::MajorOutage,
            Some(ComponentStatus::Operational),
        ),
        (cid(3), ComponentStatus::UnderMaintenance, None),
    ];
    let moves = ImpliedMove::moves(Some(ImpliedMove::End), &rows, &BTreeMap::new());
    assert_eq!(
        moves,
        BTreeMap::from([
            (cid(1), ComponentStatus::DegradedPerformance),
            (cid(3), ComponentStatus::Operational),
        ])
    );
    let asked = BTreeMap::from([(cid(1), ComponentStatus::PartialOutage)]);
    let moves = ImpliedMove::moves(Some(ImpliedMove::Start), &rows, &asked);
    assert_eq!(moves[&cid(1)], ComponentStatus::PartialOutage);
    assert_eq!(moves[&cid(2)], ComponentStatus::UnderMaintenance);
    assert!(ImpliedMove::moves(None, &rows, &BTreeMap::new()).is_empty());
}

// --- what a request to open may ask for

fn request() -> OpeningRequest {
    OpeningRequest {
        status: None,
        template_status: None,
        window: SchedulePatch::default(),
        backfilled: false,
        backfill_date: None,
        zone: TimeZoneName::utc(),
    }
}

fn refused_fields(r: &OpeningRequest) -> Vec<(&'static str, &'static str)> {
    r.judge(T0)
        .unwrap_err()
        .into_iter()
        .map(|e| (e.field, e.code))
        .collect()
}

#[test]
fn a_new_incident_starts_as_asked_else_as_its_template_else_investigating() {
    assert_eq!(
        request().judge(T0).unwrap().status,
        IncidentStatus::Investigating
    );
    let mut r = request();
    r.template_status = Some(IncidentStatus::Identified);
    assert_eq!(r.judge(T0).unwrap().status, IncidentStatus::Identified);
    r.status = Some(IncidentStatus::Monitoring);
    assert_eq!(r.judge(T0).unwrap().status, IncidentStatus::Monitoring);
    r.status = Some(IncidentStatus::Postmortem);
    assert_eq!(refused_fields(&r), [("status", "invalid")]);
}

#[test]
fn a_new_maintenance_needs_its_window_and_starts_scheduled_or_in_progress() {
    let mut r = request();
    r.status = Some(IncidentStatus::Scheduled);
    assert_eq!(refused_fields(&r), [("scheduled_for", "missing")]);
    r.window.scheduled_for = Some(T0);
    assert_eq!(refused_fields(&r), [("scheduled_until", "missing")]);
    r.window.scheduled_until = Some(T0);
    assert_eq!(refused_fields(&r), [("scheduled_until", "invalid")]);
    r.window.scheduled_until = Some(T0 + Duration::hours(1));
    r.window.auto_completed = Some(true);
    let shape = r.judge(T0).unwrap();
    assert_eq!(shape.status, IncidentStatus::Scheduled);
    let s = shape.schedule.unwrap();
    assert!(s.auto_completed && !s.auto_in_progress && !s.remind_prior);
    r.status = None;
    assert_eq!(
        r.judge(T0).unwrap().status,
        IncidentStatus::Scheduled,
        "a window alone makes a maintenance"
    );
    r.status = Some(IncidentStatus::Verifying);
    assert_eq!(refused_fields(&r), [("status", "invalid")]);
}

#[test]
fn a_backfilled_incident_is_resolved_on_a_past_day_in_the_pages_zone() {
    let mut r = request();
    r.backfilled = true;
    r.backfill_date = Some(date!(2026 - 02 - 27));
    r.zone = TimeZoneName::parse("time_zone", "Europe/Berlin").unwrap();
    let shape = r.judge(T0).unwrap();
    assert_eq!(shape.status, IncidentStatus::Resolved);
    assert_eq!(shape.at, Some(datetime!(2026-02-26 23:00 UTC)));
    r.backfill_date = Some(date!(2026 - 03 - 05));
    assert_eq!(refused_fields(&r), [("backfill_date", "invalid")]);
    r.backfill_date = Some(date!(2026 - 02 - 27));
    r.status = Some(IncidentStatus::Scheduled);
    assert_eq!(refused_fields(&r), [("backfilled", "invalid")]);
}

// --- editing

#[test]
fn a_window_patch_merges_into_the_maintenance_and_is_refused_on_an_incident() {
    let incident = incident_from(&new_incident(IncidentStatus::Investigating), T0);
    assert_eq!(SchedulePatch::default().merged_into(&incident), Ok(None));
    let patch = SchedulePatch {
        remind_prior: Some(false),
        ..SchedulePatch::default()
    };
    assert_eq!(patch.merged_into(&incident).unwrap_err().code, "invalid");

    let start = T0 + Duration::hours(1);
    let mut new = new_incident(IncidentStatus::Scheduled);
    new.schedule = Some(window(start, start + Duration::hours(1)));
    let m = incident_from(&new, T0);
    let merged = patch.merged_into(&m).unwrap().unwrap();
    assert_eq!(
        merged,
        Schedule {
            remind_prior: false,
            ..new.schedule.unwrap()
        }
    );
    let bad = SchedulePatch {
        scheduled_until: Some(start - Duration::minutes(1)),
        ..SchedulePatch::default()
    };
    assert_eq!(bad.merged_into(&m).unwrap_err().field, "scheduled_until");
}

#[test]
fn a_moved_window_earns_a_new_reminder() {
    let start = T0 + Duration::hours(1);
    let mut new = new_incident(IncidentStatus::Scheduled);
    new.schedule = Some(window(start, start + Duration::hours(1)));
    let mut m = incident_from(&new, T0);
    m.reminded_at = Some(T0);
    let same = m
        .clone()
        .after_edit(&IncidentEdit {
            schedule: Some(window(start, start + Duration::hours(2))),
            ..IncidentEdit::default()
        })
        .unwrap();
    assert_eq!(same.reminded_at, Some(T0));
    let moved = m
        .after_edit(&IncidentEdit {
            schedule: Some(window(
                start + Duration::hours(1),
                start + Duration::hours(2),
            )),
            name: Some(Name::parse("name", "Moved", 255).unwrap()),
            ..IncidentEdit::default()
        })
        .unwrap();
    assert_eq!(moved.reminded_at, None);
    assert_eq!(moved.name, "Moved");

    let incident = incident_from(&new_incident(IncidentStatus::Investigating), T0);
    let refused = incident
        .after_edit(&IncidentEdit {
            schedule: Some(window(start, start + Duration::hours(1))),
            ..IncidentEdit::default()
        })
        .unwrap_err();
    assert_eq!(code(refused), "invalid");
}

// --- the worker's clock

fn auto_maintenance(start: OffsetDateTime) -> Incident {
    let mut new = new_incident(IncidentStatus::Scheduled);
    new.schedule = Some(window(start, start + Duration::hours(1)));
    incident_from(&new, T0)
}

const LEAD: StdDuration = StdDuration::from_secs(3600);

#[test]
fn a_reminder_is_due_once_before_the_window() {
    let start = T0 + Duration::hours(3);
    let m = auto_maintenance(start);
    assert!(MaintenanceSteps::due(&m, start - Duration::hours(2), LEAD).is_empty());
    let due = MaintenanceSteps::due(&m, start - Duration::minutes(30), LEAD);
    assert_eq!(due.remind, Some(true));
    assert!(due.start.is_none());
    let late = MaintenanceSteps::due(&m, start + Duration::minutes(1), LEAD);
    assert_eq!(
        late.remind,
        Some(false),
        "past the start it is only marked done"
    );
    let mut reminded = m;
    reminded.reminded_at = Some(start - Duration::minutes(30));
    assert!(
        MaintenanceSteps::due(&reminded, start - Duration::minutes(10), LEAD)
            .remind
            .is_none()
    );
}

#[test]
fn a_maintenance_starts_and_completes_on_time_dated_at_its_window() {
    let start = T0 + Duration::hours(3);
    let m = auto_maintenance(start);
    let due = MaintenanceSteps::due(&m, start + Duration::hours(2), LEAD);
    let begun = due.start.unwrap();
    assert_eq!(begun.status, IncidentStatus::InProgress);
    assert_eq!(begun.at, Some(start));
    assert_eq!(begun.body, MAINTENANCE_STARTED_BODY);
    let ended = due.complete.unwrap();
    assert_eq!(ended.status, IncidentStatus::Completed);
    assert_eq!(ended.at, Some(start + Duration::hours(1)));

    let mut manual = auto_maintenance(start);
    manual.scheduled_auto_in_progress = false;
    manual.scheduled_auto_completed = false;
    manual.scheduled_remind_prior = false;
    assert!(MaintenanceSteps::due(&manual, start + Duration::hours(2), LEAD).is_empty());

    let incident = incident_from(&new_incident(IncidentStatus::Investigating), T0);
    assert!(MaintenanceSteps::due(&incident, T0 + Duration::days(9), LEAD).is_empty());
}

#[test]
fn a_window_entered_after_it_began_starts_at_its_creation() {
    let start = T0 - Duration::hours(1);
    let m = auto_maintenance(start);
    let due = MaintenanceSteps::due(&m, T0, LEAD);
    assert_eq!(due.start.unwrap().at, Some(T0));
}

// --- postmortem

#[test]
fn a_postmortem_is_drafted_once_resolved_published_once_and_removed_back_to_resolved() {
    let open = incident_from(&new_incident(IncidentStatus::Investigating), T0);
    assert_eq!(
        code(open.clone().with_postmortem_draft("x", T0).unwrap_err()),
        "not_resolved"
    );
    assert_eq!(
        code(open.clone().without_postmortem().unwrap_err()),
        "missing"
    );
    let mut resolved = open;
    resolved.status = IncidentStatus::Resolved;
    assert_eq!(
        code(resolved.postmortem_publication(false).unwrap_err()),
        "missing"
    );
    let drafted = resolved.with_postmortem_draft("Root cause", T0).unwrap();
    assert_eq!(drafted.postmortem_body_last_updated_at, Some(T0));
    let change = drafted.postmortem_publication(true).unwrap();
    assert_eq!(change.status, IncidentStatus::Postmortem);
    assert_eq!(change.body, "Root cause");
    assert!(change.deliver_notifications);
    let mut published = drafted;
    published.status = IncidentStatus::Postmortem;
    published.postmortem_published_at = Some(T0);
    assert_eq!(
        code(published.postmortem_publication(false).unwrap_err()),
        "postmortem_published"
    );
    let removed = published.without_postmortem().unwrap();
    assert_eq!(removed.status, IncidentStatus::Resolved);
    assert_eq!(removed.postmortem_body, None);
    assert_eq!(removed.postmortem_published_at, None);
}

#[test]
fn kinds_read_and_write_their_stored_form() {
    for kind in IncidentKind::ALL {
        assert_eq!(kind.as_str().parse::<IncidentKind>(), Ok(*kind));
        assert_eq!(IncidentKind::of_status(kind.initial_status()), *kind);
    }
    assert!("outage".parse::<IncidentKind>().is_err());
}
