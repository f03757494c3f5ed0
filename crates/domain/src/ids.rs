//! Typed identifiers, so a page id can never be passed where a tenant id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) identifier.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The underlying UUID, for storage.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type!(
    /// A tenant: one customer company, owner of every other row.
    TenantId,
    /// A person who can sign in.
    UserId,
    /// A public status page.
    PageId,
    /// A component on a page.
    ComponentId,
    /// A group of components on a page.
    GroupId,
    /// An incident or scheduled maintenance.
    IncidentId,
    /// One update posted on an incident.
    IncidentUpdateId,
    /// Someone who asked to be notified.
    SubscriberId,
    /// An event in the transactional outbox.
    EventId,
    /// One notification to one subscriber over one channel.
    DeliveryId,
    /// A signed-in session, revocable server-side.
    SessionId,
    /// A tenant's API key.
    ApiKeyId,
    /// A custom domain (hostname) of a page.
    DomainId,
    /// An invitation to join a tenant's team.
    InvitationId,
    /// An incident template of a page.
    TemplateId,
);
