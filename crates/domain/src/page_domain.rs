//! A page's custom domain as an entity: which hostname shows which page,
//! the token that proves it, and where its verification stands.
//!
//! The rules of that state (what a check changes, who holds a hostname)
//! are [`crate::custom_domain`]'s; storing domains is the store's.

use time::OffsetDateTime;

use crate::{DomainId, DomainState, Hostname, PageId, TenantId};

/// A custom domain of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomDomain {
    /// Identifier.
    pub id: DomainId,
    /// The page it shows.
    pub page_id: PageId,
    /// The hostname.
    pub hostname: Hostname,
    /// What the TXT record `_heliograph.<hostname>` must carry.
    pub token: String,
    /// Where verification stands.
    pub state: DomainState,
    /// The name the hostname's CNAME pointed to when the last check found
    /// it pointing elsewhere than the target (`None` otherwise).
    pub last_cname_seen: Option<String>,
    /// When it was added.
    pub created_at: OffsetDateTime,
}

/// A hostname that routes, and the page it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutableDomain {
    /// The hostname.
    pub hostname: Hostname,
    /// The page's tenant.
    pub tenant_id: TenantId,
    /// The page.
    pub page_id: PageId,
}
