//! Rate limits, shared by every API replica through Redis.
//!
//! Fixed windows counted with one atomic `INCR` (+ `PEXPIRE` on the first
//! hit) per request. Limits key on the client address and on the account or
//! key; self-service subscriptions also on a hash of the address, number or
//! URL (never the address itself). An IPv6 client counts by its /64 (one
//! subscriber's network) and by its /48 (one site, which may hand out
//! 65,536 /64s), the /48 allowed [`NET48_FACTOR`] times a /64's: moving
//! between the /64s of one site buys no more than that. Sign-in failures are limited per (email,
//! address) and per address, never per email alone: an attacker elsewhere
//! must not be able to lock a victim out of their own account. Should Redis be unreachable, requests
//! pass (and a warning is logged): a status page must stay usable when a
//! dependency breaks.

use std::net::IpAddr;
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::error::ApiError;

/// What is being limited, and how much.
#[derive(Debug, Clone, Copy)]
pub enum Bucket {
    /// Signups from one address: 10 an hour.
    SignupByIp,
    /// Sign-in attempts from one address: 30 a minute.
    LoginByIp,
    /// Sign-in attempts for one email from one address: 10 a minute.
    LoginByEmailAndIp,
    /// "Someone tried to sign up with your address" notes to one address: 3 an hour.
    SignupAttemptByEmail,
    /// Verification links asked for by one person: 5 an hour.
    VerifyByUser,
    /// Password-reset requests from one address: 10 an hour.
    ResetByIp,
    /// Password-reset emails to one address: 5 an hour.
    ResetByEmail,
    /// Invitations sent by one person: 50 an hour.
    InviteByActor,
    /// Authenticated API requests from one address: 1,200 a minute.
    ApiByIp,
    /// API requests by one person or key: 600 a minute.
    ApiByActor,
    /// Self-service subscriptions from one address: 10 an hour.
    SubscribeByIp,
    /// Self-service subscriptions of one address, number or URL to one
    /// page (confirmations sent to it): 3 an hour.
    SubscribeByTarget,
    /// SMS codes entered from one address: 30 an hour.
    SmsCodeByIp,
    /// Codes entered for a subscriber id that has no pending SMS
    /// confirmation: 4 an hour, so such an id locks on the fifth try, as a
    /// real one does.
    SmsCodeUnknown,
    /// Confirmations re-sent to one subscriber by the team: 1 a minute.
    ResendBySubscriber,
    /// Test pings to one subscriber: 6 a minute.
    PingBySubscriber,
}

impl Bucket {
    const fn name(self) -> &'static str {
        match self {
            Self::SignupByIp => "signup-ip",
            Self::SignupAttemptByEmail => "signup-attempt-email",
            Self::VerifyByUser => "verify-user",
            Self::LoginByIp => "login-ip",
            Self::LoginByEmailAndIp => "login-email-ip",
            Self::ResetByIp => "reset-ip",
            Self::ResetByEmail => "reset-email",
            Self::InviteByActor => "invite-actor",
            Self::ApiByIp => "api-ip",
            Self::ApiByActor => "api-actor",
            Self::SubscribeByIp => "subscribe-ip",
            Self::SubscribeByTarget => "subscribe-target",
            Self::SmsCodeByIp => "sms-code-ip",
            Self::SmsCodeUnknown => "sms-code-unknown",
            Self::ResendBySubscriber => "resend-subscriber",
            Self::PingBySubscriber => "ping-subscriber",
        }
    }

    const fn limit(self) -> (u64, Duration) {
        match self {
            Self::SignupByIp => (10, Duration::from_secs(3600)),
            Self::SignupAttemptByEmail => (3, Duration::from_secs(3600)),
            Self::VerifyByUser => (5, Duration::from_secs(3600)),
            Self::LoginByIp => (30, Duration::from_secs(60)),
            Self::LoginByEmailAndIp => (10, Duration::from_secs(60)),
            Self::ResetByIp => (10, Duration::from_secs(3600)),
            Self::ResetByEmail => (5, Duration::from_secs(3600)),
            Self::InviteByActor => (50, Duration::from_secs(3600)),
            Self::ApiByIp => (1200, Duration::from_secs(60)),
            Self::ApiByActor => (600, Duration::from_secs(60)),
            Self::SubscribeByIp => (10, Duration::from_secs(3600)),
            Self::SubscribeByTarget => (3, Duration::from_secs(3600)),
            Self::SmsCodeUnknown => (4, Duration::from_secs(3600)),
            Self::SmsCodeByIp => (30, Duration::from_secs(3600)),
            Self::ResendBySubscriber => (1, Duration::from_secs(60)),
            Self::PingBySubscriber => (6, Duration::from_secs(60)),
        }
    }
}

/// How many times a /64's allowance a whole IPv6 /48 gets.
pub const NET48_FACTOR: u64 = 4;

const SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
";

/// Counts requests in Redis.
#[derive(Clone)]
pub struct Limiter {
    redis: ConnectionManager,
    script: redis::Script,
}

impl Limiter {
    /// A limiter on this connection.
    #[must_use]
    pub fn new(redis: ConnectionManager) -> Self {
        Self {
            redis,
            script: redis::Script::new(SCRIPT),
        }
    }

    /// Counts one request against `bucket` for `who`; 429 (`rate_limited`,
    /// with the seconds to wait) once over the limit.
    pub async fn hit(&self, bucket: Bucket, who: &str) -> Result<(), ApiError> {
        let (limit, window) = bucket.limit();
        self.count(bucket.name(), limit, window, who).await
    }

    /// Counts one request of the client at `ip` against `bucket`: by its
    /// address (IPv4) or its /64, and for IPv6 by its /48 too.
    pub async fn hit_client(&self, bucket: Bucket, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let (limit, window) = bucket.limit();
        self.count(bucket.name(), limit, window, &client_key(ip))
            .await?;
        if let Some(net) = net48_key(ip) {
            let name = format!("{}/48", bucket.name());
            self.count(&name, limit.saturating_mul(NET48_FACTOR), window, &net)
                .await?;
        }
        Ok(())
    }

    async fn count(
        &self,
        name: &str,
        limit: u64,
        window: Duration,
        who: &str,
    ) -> Result<(), ApiError> {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let key = format!("heliograph:rl:{name}:{who}");
        let mut conn = self.redis.clone();
        let counted: Result<(u64, i64), _> = self
            .script
            .key(&key)
            .arg(window_ms)
            .invoke_async(&mut conn)
            .await;
        match counted {
            Ok((n, _)) if n <= limit => Ok(()),
            Ok((_, ttl_ms)) => Err(ApiError::RateLimited {
                retry_after_secs: u64::try_from(ttl_ms).unwrap_or(0).div_ceil(1000).max(1),
            }),
            Err(err) => {
                tracing::warn!(error = %err, bucket = name, "rate limiter unavailable; letting the request through");
                Ok(())
            }
        }
    }
}

/// The part of an address that identifies a client: the whole IPv4 address,
/// or the /64 of an IPv6 one (one subscriber's network).
#[must_use]
pub fn client_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".to_owned(),
    }
}

/// The /48 of an IPv6 address (one site); none for IPv4.
#[must_use]
pub fn net48_key(ip: Option<IpAddr>) -> Option<String> {
    match ip {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(client_key(Some(a)), client_key(Some(b)));
        assert_eq!(client_key(Some("192.0.2.7".parse().unwrap())), "192.0.2.7");
    }

    #[test]
    fn ipv6_sites_are_counted_by_their_slash_48_too() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:ffff::1".parse().unwrap();
        assert_ne!(client_key(Some(a)), client_key(Some(b)));
        assert_eq!(net48_key(Some(a)), net48_key(Some(b)));
        assert_eq!(net48_key(Some(a)).unwrap(), "2001:db8:1::/48");
        assert_eq!(net48_key(Some("192.0.2.7".parse().unwrap())), None);
    }
}
