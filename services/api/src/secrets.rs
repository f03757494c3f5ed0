//! Subscribers' secrets at rest: sealing them as a subscriber is added
//! ([`sealed_subscriber`]), and `heliograph-api secrets reencrypt`
//! ([`reencrypt`]), which seals every subscriber secret still
//! kept in clear (rows written before secrets were sealed) and re-seals
//! those of an older key under the current one (the first of
//! `SECRETS_KEY`), so that a key rotated out can then be dropped.
//!
//! Idempotent and resumable: it walks only the rows that still need it (a
//! `SECURITY DEFINER` function answers their ids across tenants, in id
//! order) and writes each batch in one transaction per tenant, so a row
//! done is never picked again and a run stopped half way is finished by the
//! next. A row whose sealed value opens with no key of the ring is reported
//! and left as it is; the command then fails, so that nobody drops a key
//! still needed.

use anyhow::Context as _;
use heliograph_auth::{OpenError, SecretsKeyring};
use heliograph_domain::{Channel, ComponentId, HttpChannel, SubscriberId, Target, TenantId};
use heliograph_notify::WebhookSecret;
use heliograph_store::{
    NewSubscriber, SealedEndpoint, SealedSecrets, Store, StoredSecrets, endpoint_seal_context,
    webhook_secret_seal_context,
};
use secrecy::{ExposeSecret, SecretString};

/// A new subscriber at `target`, its secrets sealed with `keyring`: a
/// webhook gets a new signing secret (answered in clear once, the second
/// value), a Slack or Teams URL is kept sealed, with its digest and what
/// answers show of it.
pub fn sealed_subscriber(
    keyring: &SecretsKeyring,
    target: Target,
    component_ids: Vec<ComponentId>,
    confirmed: bool,
) -> (NewSubscriber, Option<String>) {
    let id = SubscriberId::new();
    let mut secrets = SealedSecrets::default();
    let mut webhook_secret = None;
    match &target {
        Target::Http(HttpChannel::Webhook, _) => {
            let secret = WebhookSecret::generate().expose();
            secrets.webhook_secret = Some(keyring.seal(&webhook_secret_seal_context(id), &secret));
            webhook_secret = Some(secret);
        }
        Target::Http(HttpChannel::Slack | HttpChannel::Teams, url) => {
            secrets.endpoint = Some(SealedEndpoint {
                sealed: keyring.seal(&endpoint_seal_context(id), url.as_str()),
                digest: keyring.digest(url.as_str()),
                shown: target.channel().shown_target(url.as_str()),
            });
        }
        Target::Email(_) | Target::Sms(_) => {}
    }
    let new = NewSubscriber {
        id,
        target,
        secrets,
        component_ids,
        confirmed,
    };
    (new, webhook_secret)
}

/// The digests a sealed URL at `target` may be stored under (one per key
/// of the ring), for `TenantTx::subscriber_by_target`.
pub fn endpoint_digests(keyring: &SecretsKeyring, target: &Target) -> Vec<String> {
    match target {
        Target::Http(HttpChannel::Slack | HttpChannel::Teams, url) => keyring.digests(url.as_str()),
        _ => Vec::new(),
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReencryptReport {
    /// Rows sealed (from clear) or re-sealed under the current key.
    pub resealed: u64,
    /// Rows whose sealed value opens with no key of the ring.
    pub unreadable: u64,
}

/// Seals or re-seals under the current key every subscriber secret that is
/// not yet, `batch` rows at a time; stops after `max_batches` if given (a
/// run cut short, which the next one finishes).
pub async fn reencrypt(
    store: &Store,
    keyring: &SecretsKeyring,
    batch: i32,
    max_batches: Option<usize>,
) -> anyhow::Result<ReencryptReport> {
    let mut report = ReencryptReport::default();
    let mut after: Option<SubscriberId> = None;
    let mut batches = 0;
    loop {
        if max_batches.is_some_and(|max| batches >= max) {
            break;
        }
        let due = store
            .subscribers_to_reseal(keyring.current_key_id(), after, batch)
            .await
            .context("Failed to list the subscribers to re-seal")?;
        let Some(&(_, last)) = due.last() else {
            break;
        };
        after = Some(last);
        batches += 1;
        // One transaction per tenant of the batch, rows in id order.
        let mut tenants: Vec<(TenantId, Vec<SubscriberId>)> = Vec::new();
        for (tenant, id) in due {
            match tenants.iter_mut().find(|(t, _)| *t == tenant) {
                Some((_, ids)) => ids.push(id),
                None => tenants.push((tenant, vec![id])),
            }
        }
        for (tenant, ids) in tenants {
            let mut tx = store
                .tenant_tx(tenant)
                .await
                .context("Failed to open a tenant's transaction")?;
            for id in ids {
                let row = tx
                    .lock_subscriber_secrets(id)
                    .await
                    .with_context(|| format!("Failed to read subscriber {id}"))?;
                match resealed(keyring, &row) {
                    Ok(None) => {}
                    Ok(Some(secrets)) => {
                        tx.store_subscriber_secrets(id, &secrets)
                            .await
                            .with_context(|| format!("Failed to write subscriber {id}"))?;
                        report.resealed += 1;
                    }
                    Err(error) => {
                        tracing::warn!(tenant.id = %tenant, subscriber.id = %id, %error,
                            "a subscriber's secret does not open with SECRETS_KEY; left as it is");
                        report.unreadable += 1;
                    }
                }
            }
            tx.commit()
                .await
                .context("Failed to commit re-sealed secrets")?;
        }
        tracing::info!(
            resealed = report.resealed,
            unreadable = report.unreadable,
            "secrets re-sealed so far"
        );
    }
    Ok(report)
}

/// What `row` keeps, sealed under the current key; `None` when it is
/// already.
fn resealed(
    keyring: &SecretsKeyring,
    row: &StoredSecrets,
) -> Result<Option<SealedSecrets>, OpenError> {
    let mut secrets = SealedSecrets::default();
    if matches!(row.channel, Channel::Slack | Channel::Teams) {
        let context = endpoint_seal_context(row.id);
        let url = match (&row.endpoint_sealed, &row.endpoint) {
            (Some(sealed), _) if keyring.is_current(sealed) => None,
            (Some(sealed), _) => Some(keyring.open(&context, sealed)?),
            (None, plain) => plain.clone().map(SecretString::from),
        };
        secrets.endpoint = url.map(|url| {
            let url = url.expose_secret();
            SealedEndpoint {
                sealed: keyring.seal(&context, url),
                digest: keyring.digest(url),
                shown: row.channel.shown_target(url),
            }
        });
    }
    if row.channel == Channel::Webhook {
        let context = webhook_secret_seal_context(row.id);
        let secret = match (&row.webhook_secret_sealed, &row.webhook_secret) {
            (Some(sealed), None) if keyring.is_current(sealed) => None,
            (Some(sealed), _) => Some(keyring.open(&context, sealed)?),
            (None, plain) => plain.clone().map(SecretString::from),
        };
        secrets.webhook_secret = secret.map(|s| keyring.seal(&context, s.expose_secret()));
    }
    Ok((secrets.endpoint.is_some() || secrets.webhook_secret.is_some()).then_some(secrets))
}
