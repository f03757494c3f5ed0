//! Storing an incident's postmortem; the rules are the domain's.

use heliograph_domain::{Incident, IncidentId, IncidentUpdate};
use time::OffsetDateTime;

use crate::{Result, TenantTx};

impl TenantTx {
    /// Writes (or replaces) the postmortem draft of a resolved incident.
    pub async fn set_postmortem(&mut self, id: IncidentId, body: &str) -> Result<Incident> {
        let after = self
            .lock_incident(id)
            .await?
            .with_postmortem_draft(body, OffsetDateTime::now_utc())?;
        sqlx::query(
            "update incidents set postmortem_body = $3, postmortem_body_last_updated_at = $4
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(&after.postmortem_body)
        .bind(after.postmortem_body_last_updated_at)
        .execute(&mut *self.tx)
        .await?;
        self.incident(id).await
    }

    /// Removes the postmortem (draft or published); a published one takes
    /// the incident back to `resolved`.
    pub async fn delete_postmortem(&mut self, id: IncidentId) -> Result<Incident> {
        let after = self.lock_incident(id).await?.without_postmortem()?;
        sqlx::query(
            "update incidents set postmortem_body = $3, postmortem_body_last_updated_at = $4,
                    postmortem_published_at = $5, status = $6
              where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(&after.postmortem_body)
        .bind(after.postmortem_body_last_updated_at)
        .bind(after.postmortem_published_at)
        .bind(after.status.as_str())
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
        let change = self
            .lock_incident(id)
            .await?
            .postmortem_publication(notify)?;
        let (_, update) = self.update_incident(id, &change).await?;
        sqlx::query(
            "update incidents set postmortem_published_at = $3 where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(OffsetDateTime::now_utc())
        .execute(&mut *self.tx)
        .await?;
        Ok((self.incident(id).await?, update))
    }
}
