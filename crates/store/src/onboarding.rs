//! The dashboard's setup checklist: what a team has done so far, counted
//! in one query, and whether it dismissed the list.

use heliograph_domain::PageId;

use crate::{Result, TenantTx};

/// What a team has done of its setup, for one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Onboarding {
    /// The page's components.
    pub components: i64,
    /// The page's incidents and maintenances, any status.
    pub incidents: i64,
    /// The page's subscribers, any state.
    pub subscribers: i64,
    /// The page's custom domains.
    pub domains: i64,
    /// The team's members plus its pending invitations.
    pub people: i64,
    /// Whether the team dismissed the checklist.
    pub dismissed: bool,
}

impl TenantTx {
    /// What the team has done of its setup, for `page`.
    pub async fn onboarding(&mut self, page: PageId) -> Result<Onboarding> {
        let row: (i64, i64, i64, i64, i64, bool) = sqlx::query_as(
            "select
               (select count(*) from components where tenant_id = $1 and page_id = $2),
               (select count(*) from incidents where tenant_id = $1 and page_id = $2),
               (select count(*) from subscribers where tenant_id = $1 and page_id = $2),
               (select count(*) from domains where tenant_id = $1 and page_id = $2),
               (select count(*) from memberships where tenant_id = $1)
                 + (select count(*) from invitations
                     where tenant_id = $1 and accepted_at is null and revoked_at is null
                       and expires_at > now()),
               exists (select from onboarding_dismissals where tenant_id = $1)",
        )
        .bind(self.tenant.as_uuid())
        .bind(page.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Onboarding {
            components: row.0,
            incidents: row.1,
            subscribers: row.2,
            domains: row.3,
            people: row.4,
            dismissed: row.5,
        })
    }

    /// Dismisses the team's setup checklist (again is harmless).
    pub async fn dismiss_onboarding(&mut self) -> Result<()> {
        sqlx::query(
            "insert into onboarding_dismissals (tenant_id) values ($1)
             on conflict (tenant_id) do nothing",
        )
        .bind(self.tenant.as_uuid())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
