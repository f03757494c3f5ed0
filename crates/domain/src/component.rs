//! Components and component groups: the parts a page is made of, the
//! changes that can be asked of them, and their rules: what a group's
//! status is, who may make which change, where a moved part lands, how long
//! a description may be.
//!
//! Storing them and answering queries about them is the store's; the
//! status history a status change leaves belongs to the incident lifecycle.

use time::{Date, OffsetDateTime};

use crate::{ComponentId, ComponentStatus, FieldError, GroupId, Name, PageId, Role, Visibility};

/// A component of a page.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Identifier.
    pub id: ComponentId,
    /// The page it is on.
    pub page_id: PageId,
    /// The group it is in, if any.
    pub group_id: Option<GroupId>,
    /// Display name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Current status.
    pub status: ComponentStatus,
    /// Order on the page.
    pub position: i32,
    /// Whether the page shows it.
    pub showcase: bool,
    /// Whether the page shows it only while it is not operational.
    pub only_show_if_degraded: bool,
    /// When the component started to exist, for uptime.
    pub start_date: Option<Date>,
    /// Public, or shown only to the tenant's members.
    pub visibility: Visibility,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A group of components on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentGroup {
    /// Identifier.
    pub id: GroupId,
    /// The page it is on.
    pub page_id: PageId,
    /// Display name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Order on the page.
    pub position: i32,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A component to create.
#[derive(Debug, Clone)]
pub struct NewComponent {
    /// Display name.
    pub name: Name,
    /// Optional description.
    pub description: Option<String>,
    /// Initial status.
    pub status: ComponentStatus,
    /// Group to put it in (must be on the same page).
    pub group_id: Option<GroupId>,
    /// Whether the page shows it.
    pub showcase: bool,
    /// Whether the page shows it only while it is not operational.
    pub only_show_if_degraded: bool,
    /// When it started to exist.
    pub start_date: Option<Date>,
    /// Who may see it.
    pub visibility: Visibility,
}

impl NewComponent {
    /// A component with what a request left out as Statuspage defaults it:
    /// operational, public, shown, shown even while operational.
    #[must_use]
    pub fn named(name: Name) -> Self {
        Self {
            name,
            description: None,
            status: ComponentStatus::Operational,
            group_id: None,
            showcase: true,
            only_show_if_degraded: false,
            start_date: None,
            visibility: Visibility::Public,
        }
    }
}

/// Changes to a component; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentEdit {
    /// New name.
    pub name: Option<Name>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// New status (recorded in the history, cause `manual`, and announced).
    pub status: Option<ComponentStatus>,
    /// New group; `Some(None)` takes it out of its group.
    pub group_id: Option<Option<GroupId>>,
    /// Whether the page shows it.
    pub showcase: Option<bool>,
    /// Whether the page shows it only while not operational.
    pub only_show_if_degraded: Option<bool>,
    /// New start date; `Some(None)` clears it.
    pub start_date: Option<Option<Date>>,
    /// New visibility.
    pub visibility: Option<Visibility>,
    /// New place on the page, from 1; the others shift.
    pub position: Option<i32>,
}

impl ComponentEdit {
    /// The least role that may make this change: an editor may flip a
    /// component's status (that is what incidents are about), anything else
    /// about a component is an admin's.
    #[must_use]
    pub fn required_role(&self) -> Role {
        let without_status = Self {
            status: None,
            ..self.clone()
        };
        if without_status == Self::default() {
            Role::Editor
        } else {
            Role::Admin
        }
    }
}

/// Changes to a component group; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupEdit {
    /// New name.
    pub name: Option<Name>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// The group's members, replacing the current ones.
    pub components: Option<Vec<ComponentId>>,
    /// New place on the page, from 1; the others shift.
    pub position: Option<i32>,
}

/// Longest description of a component or group, in characters.
pub const MAX_DESCRIPTION: usize = 1000;

/// A description as given in `field`: blank means none; longer than
/// [`MAX_DESCRIPTION`] characters is refused.
pub fn parse_description(
    field: &'static str,
    raw: Option<String>,
) -> Result<Option<String>, FieldError> {
    let description = raw.filter(|d| !d.trim().is_empty());
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(description)
}

/// A group's status: the worst of its members' (by the impact each
/// implies; of equally bad ones, the last), operational when it has none.
#[must_use]
pub fn group_status(members: impl IntoIterator<Item = ComponentStatus>) -> ComponentStatus {
    members
        .into_iter()
        .max_by_key(|s| s.impact().rank())
        .unwrap_or(ComponentStatus::Operational)
}

/// The page's order after moving `id` to `position` (from 1; below 1 is
/// first, past the end is last) in `order`, the current order of the
/// page's components (or groups). The others keep their relative order; an
/// `id` not yet in `order` is inserted.
#[must_use]
pub fn reorder<T: Copy + PartialEq>(order: &[T], id: T, position: i32) -> Vec<T> {
    let mut order: Vec<T> = order.iter().copied().filter(|r| *r != id).collect();
    let at = usize::try_from(position.max(1) - 1)
        .unwrap_or(0)
        .min(order.len());
    order.insert(at, id);
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentStatus::{
        DegradedPerformance, MajorOutage, Operational, PartialOutage, UnderMaintenance,
    };

    #[test]
    fn a_group_without_members_is_operational() {
        assert_eq!(group_status([]), Operational);
    }

    #[test]
    fn a_group_shows_its_worst_member() {
        assert_eq!(
            group_status([Operational, PartialOutage, DegradedPerformance]),
            PartialOutage
        );
        assert_eq!(group_status([MajorOutage, PartialOutage]), MajorOutage);
    }

    #[test]
    fn an_outage_in_a_group_outranks_maintenance() {
        assert_eq!(
            group_status([UnderMaintenance, DegradedPerformance]),
            DegradedPerformance
        );
        assert_eq!(
            group_status([Operational, UnderMaintenance]),
            UnderMaintenance
        );
    }

    fn name() -> Name {
        Name::parse("name", "API", 255).unwrap()
    }

    #[test]
    fn a_status_change_alone_is_an_editors_to_make() {
        let status = ComponentEdit {
            status: Some(MajorOutage),
            ..ComponentEdit::default()
        };
        assert_eq!(status.required_role(), Role::Editor);
        assert_eq!(ComponentEdit::default().required_role(), Role::Editor);
    }

    #[test]
    fn any_other_component_change_is_an_admins_to_make() {
        let edits = [
            ComponentEdit {
                name: Some(name()),
                ..ComponentEdit::default()
            },
            ComponentEdit {
                status: Some(MajorOutage),
                visibility: Some(Visibility::Private),
                ..ComponentEdit::default()
            },
            ComponentEdit {
                group_id: Some(None),
                ..ComponentEdit::default()
            },
            ComponentEdit {
                position: Some(1),
                ..ComponentEdit::default()
            },
        ];
        for edit in edits {
            assert_eq!(edit.required_role(), Role::Admin, "{edit:?}");
        }
    }

    #[test]
    fn a_new_component_defaults_as_statuspage_does() {
        let new = NewComponent::named(name());
        assert_eq!(new.status, Operational);
        assert_eq!(new.visibility, Visibility::Public);
        assert!(new.showcase);
        assert!(!new.only_show_if_degraded);
        assert_eq!(
            (new.group_id, new.description, new.start_date),
            (None, None, None)
        );
    }

    #[test]
    fn a_blank_description_is_none_and_a_long_one_is_refused() {
        assert_eq!(parse_description("description", None), Ok(None));
        assert_eq!(
            parse_description("description", Some("  ".into())),
            Ok(None)
        );
        assert_eq!(
            parse_description("description", Some("é".repeat(1000))),
            Ok(Some("é".repeat(1000)))
        );
        let err = parse_description("description", Some("x".repeat(1001))).unwrap_err();
        assert_eq!((err.field, err.code), ("description", "too_long"));
    }

    #[test]
    fn a_moved_part_lands_at_its_position_and_the_others_shift() {
        assert_eq!(reorder(&[1, 2, 3, 4], 4, 2), vec![1, 4, 2, 3]);
        assert_eq!(reorder(&[1, 2, 3, 4], 1, 3), vec![2, 3, 1, 4]);
        assert_eq!(reorder(&[1, 2, 3], 2, 2), vec![1, 2, 3]);
    }

    #[test]
    fn a_position_out_of_range_is_clamped_to_the_ends() {
        assert_eq!(reorder(&[1, 2, 3], 3, 0), vec![3, 1, 2]);
        assert_eq!(reorder(&[1, 2, 3], 3, -5), vec![3, 1, 2]);
        assert_eq!(reorder(&[1, 2, 3], 1, 99), vec![2, 3, 1]);
        assert_eq!(reorder(&[1, 2], 9, 1), vec![9, 1, 2]);
        assert_eq!(reorder(&[], 9, 4), vec![9]);
    }
}
