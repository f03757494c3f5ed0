//! The team of a tenant: members with roles, invitations and their life
//! (pending → accepted, revoked or expired), the rules that keep a tenant
//! owned, and what an API key's scope lets it do.
//!
//! It does not own how tokens, keys or passwords are made or checked (the
//! auth crate does), nor which route needs which role (the API's route table).

use time::OffsetDateTime;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::UnknownVariant;
use crate::status::wire_enum;
use crate::{ApiKeyId, InvitationId, Role, UserId};

/// A member of the team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    /// The person.
    pub user_id: UserId,
    /// Their address.
    pub email: String,
    /// Their role.
    pub role: Role,
    /// When they joined.
    pub joined_at: OffsetDateTime,
}

/// A pending (or past) invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Identifier (signed into the emailed link).
    pub id: InvitationId,
    /// Who is invited.
    pub email: String,
    /// With which role.
    pub role: Role,
    /// When the link stops working.
    pub expires_at: OffsetDateTime,
    /// When it was accepted.
    pub accepted_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// When it was made.
    pub created_at: OffsetDateTime,
}

/// Why an invitation cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationProblem {
    /// No such invitation.
    Unknown,
    /// Accepted already.
    Used,
    /// Revoked by the team.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl Invitation {
    /// Whether it can be accepted at `now`: not used, not revoked, and
    /// before its expiry (in that order of reasons).
    pub fn acceptable_at(&self, now: OffsetDateTime) -> Result<(), InvitationProblem> {
        if self.accepted_at.is_some() {
            Err(InvitationProblem::Used)
        } else if self.revoked_at.is_some() {
            Err(InvitationProblem::Revoked)
        } else if self.expires_at <= now {
            Err(InvitationProblem::Expired)
        } else {
            Ok(())
        }
    }

    /// Whether it is still open: neither accepted nor revoked (an expired
    /// one is still listed, so that the team sees it lapsed).
    #[must_use]
    pub const fn is_open(&self) -> bool {
        self.accepted_at.is_none() && self.revoked_at.is_none()
    }

    /// Whether its email is still to be sent at `now`: open and unexpired.
    #[must_use]
    pub fn is_sendable_at(&self, now: OffsetDateTime) -> bool {
        self.is_open() && now < self.expires_at
    }
}

/// Why a team change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamProblem {
    /// It would leave the tenant without an owner.
    LastOwner,
}

/// What a change of a member's role does beyond the role itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleChange {
    /// The keys the member made are revoked: a key must not outlive its
    /// maker's power to make it.
    pub revokes_keys: bool,
}

/// Whether a member with role `from` may become `to` while the tenant has
/// `owners` owners, and what it does: the last owner cannot step down, and
/// a member falling below admin loses the keys they made.
pub fn change_role(from: Role, to: Role, owners: usize) -> Result<RoleChange, TeamProblem> {
    if from == Role::Owner && to != Role::Owner && owners <= 1 {
        return Err(TeamProblem::LastOwner);
    }
    Ok(RoleChange {
        revokes_keys: !may_make_keys(to),
    })
}

/// Whether a member with role `role` may leave (or be removed) while the
/// tenant has `owners` owners: never the last owner. A removed member's
/// sessions end and the keys they made are revoked.
pub fn remove_member(role: Role, owners: usize) -> Result<(), TeamProblem> {
    if role == Role::Owner && owners <= 1 {
        return Err(TeamProblem::LastOwner);
    }
    Ok(())
}

/// Whether a member acting as `acting` may manage the team where `roles`
/// are concerned (the roles of the member or invitation touched, before and
/// after): admins manage the team, and anything touching an owner needs an
/// owner.
#[must_use]
pub fn may_manage_team(acting: Role, roles: &[Role]) -> bool {
    let needed = if roles.contains(&Role::Owner) {
        Role::Owner
    } else {
        Role::Admin
    };
    acting.rank() >= needed.rank()
}

/// The roles a member acting as `acting` may give: to an invitation
/// (`current` is `None`) or to a member whose role is `current`, by
/// [`may_manage_team`]. Empty when the member is not theirs to change (an
/// admin facing an owner); an admin is never offered the owner's role.
#[must_use]
pub fn grantable_roles(acting: Role, current: Option<Role>) -> Vec<Role> {
    Role::ALL
        .iter()
        .copied()
        .filter(|&to| match current {
            Some(from) => may_manage_team(acting, &[from, to]),
            None => may_manage_team(acting, &[to]),
        })
        .collect()
}

/// Whether a member with `role` may make API keys (admins and owners).
#[must_use]
pub const fn may_make_keys(role: Role) -> bool {
    role.rank() >= Role::Admin.rank()
}

wire_enum!(
    /// What an API key may do.
    ApiKeyScope {
        /// Read only: the key acts as a viewer.
        Read => "read",
        /// Read and write: the key acts as an admin (keys never manage keys
        /// or the team; the route table says so).
        ReadWrite => "read_write",
    }
);

impl ApiKeyScope {
    /// The role a key of this scope acts with.
    #[must_use]
    pub const fn role(self) -> Role {
        match self {
            Self::Read => Role::Viewer,
            Self::ReadWrite => Role::Admin,
        }
    }
}

impl Default for ApiKeyScope {
    /// A key made without a scope reads only.
    fn default() -> Self {
        Self::Read
    }
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Identifier.
    pub id: ApiKeyId,
    /// What people call it.
    pub name: String,
    /// The visible start of the key.
    pub prefix: String,
    /// What it may do.
    pub scope: ApiKeyScope,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it was last used (to the minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    #[test]
    fn an_admin_is_offered_no_owner_role_and_no_owner_to_change() {
        use Role::{Admin, Editor, Owner, Viewer};
        assert_eq!(grantable_roles(Owner, None), [Owner, Admin, Editor, Viewer]);
        assert_eq!(grantable_roles(Admin, None), [Admin, Editor, Viewer]);
        assert_eq!(
            grantable_roles(Admin, Some(Editor)),
            [Admin, Editor, Viewer]
        );
        assert!(grantable_roles(Admin, Some(Owner)).is_empty());
        assert_eq!(grantable_roles(Owner, Some(Owner)).len(), 4);
        assert!(grantable_roles(Editor, None).is_empty());
    }

    fn invitation() -> Invitation {
        Invitation {
            id: InvitationId::new(),
            email: "new@example.com".to_owned(),
            role: Role::Editor,
            expires_at: datetime!(2026-03-08 12:00 UTC),
            accepted_at: None,
            revoked_at: None,
            created_at: AT,
        }
    }

    #[test]
    fn an_open_invitation_is_accepted_until_it_expires() {
        let i = invitation();
        assert_eq!(i.acceptable_at(AT), Ok(()));
        assert!(i.is_sendable_at(AT));
        assert_eq!(
            i.acceptable_at(i.expires_at),
            Err(InvitationProblem::Expired)
        );
        assert!(!i.is_sendable_at(i.expires_at));
        assert!(i.is_open(), "an expired one is still listed");
    }

    #[test]
    fn a_used_or_revoked_invitation_says_so_before_its_expiry() {
        let late = datetime!(2027-01-01 00:00 UTC);
        let used = Invitation {
            accepted_at: Some(AT),
            revoked_at: Some(AT),
            ..invitation()
        };
        assert_eq!(used.acceptable_at(late), Err(InvitationProblem::Used));
        let revoked = Invitation {
            revoked_at: Some(AT),
            ..invitation()
        };
        assert_eq!(revoked.acceptable_at(late), Err(InvitationProblem::Revoked));
        assert!(!revoked.is_open() && !revoked.is_sendable_at(AT));
    }

    #[test]
    fn the_last_owner_neither_steps_down_nor_leaves() {
        assert_eq!(
            change_role(Role::Owner, Role::Admin, 1),
            Err(TeamProblem::LastOwner)
        );
        assert_eq!(remove_member(Role::Owner, 1), Err(TeamProblem::LastOwner));
        assert!(change_role(Role::Owner, Role::Owner, 1).is_ok());
        assert!(change_role(Role::Owner, Role::Admin, 2).is_ok());
        assert_eq!(remove_member(Role::Owner, 2), Ok(()));
        assert_eq!(remove_member(Role::Viewer, 1), Ok(()));
    }

    #[test]
    fn falling_below_admin_revokes_the_members_keys() {
        for role in Role::ALL {
            let change = change_role(Role::Admin, *role, 1).unwrap();
            assert_eq!(
                change.revokes_keys,
                matches!(role, Role::Editor | Role::Viewer),
                "{role}"
            );
        }
    }

    #[test]
    fn admins_manage_the_team_and_only_owners_touch_owners() {
        assert!(may_manage_team(Role::Admin, &[Role::Editor, Role::Viewer]));
        assert!(!may_manage_team(Role::Editor, &[Role::Viewer]));
        assert!(!may_manage_team(Role::Admin, &[Role::Owner]));
        assert!(!may_manage_team(Role::Admin, &[Role::Admin, Role::Owner]));
        assert!(may_manage_team(Role::Owner, &[Role::Owner]));
        assert!(may_manage_team(Role::Admin, &[]));
    }

    #[test]
    fn a_keys_scope_gives_its_role() {
        assert_eq!(ApiKeyScope::Read.role(), Role::Viewer);
        assert_eq!(ApiKeyScope::ReadWrite.role(), Role::Admin);
        assert_eq!(ApiKeyScope::default(), ApiKeyScope::Read);
        assert_eq!("read_write".parse(), Ok(ApiKeyScope::ReadWrite));
        assert!("write".parse::<ApiKeyScope>().is_err());
    }
}
