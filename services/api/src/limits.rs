//! Rate limits, shared by every API replica through Redis.
//!
//! Fixed windows counted with one atomic `INCR` (+ `PEXPIRE` on the first
//! hit) per request. Limits key on the client address and on the account or
//! key; self-service subscriptions also on a hash of the address, number or
//! URL (never the address itself). An IPv6 client counts by its /64 (one
//! subscriber's network) and by its /48 (one site, which may hand out
//! 65,536 /64s), the /48 allowed [`NET48_FACTOR`] times a /64's: moving
//! between the /64s of one site buys no more than that. Sign-in failures are
//! limited per (email, address) and per address, never per email alone: an
//! attacker elsewhere must not be able to lock a victim out of their own
//! account.
//!
//! **Redis slow or away.** A request never waits on Redis beyond a short
//! budget (`REDIS_TIMEOUT_MS`, 100 ms by default): a status page must stay
//! usable when a dependency breaks, and a frozen Redis (a partition, an
//! overloaded server) refuses nothing, it just never answers. Every request
//! is also counted in this process (keyed GCRA limiters from `governor`,
//! with the same limits), and that count decides whenever Redis does not
//! answer in time: the limits then hold per replica instead of across
//! replicas, rather than not at all. The first call that misses the budget
//! opens a circuit breaker: later requests skip Redis entirely (paying
//! nothing) while a background probe pings it every second, within the same
//! budget, and closes the breaker once it answers. Counting goes back to
//! Redis then, without a restart.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
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
    /// "Someone tried to sign up with your address" notes to one address: 3 an hour.
    SignupAttemptByEmail,
    /// Verification links asked for by one person: 5 an hour.
    VerifyByUser,
    /// Live slug checks of the sign-up form from one address: 60 a minute
    /// (a typist's pace; each tells whether a slug is in use, as its
    /// public page would, so guessing in bulk is paced too).
    SlugCheckByIp,
}

impl Bucket {
    /// Every bucket, in declaration order (so `ALL[b as usize] == b`).
    const ALL: [Self; 17] = [
        Self::SignupByIp,
        Self::LoginByIp,
        Self::LoginByEmailAndIp,
        Self::ResetByIp,
        Self::ResetByEmail,
        Self::InviteByActor,
        Self::ApiByIp,
        Self::ApiByActor,
        Self::SubscribeByIp,
        Self::SubscribeByTarget,
        Self::SmsCodeByIp,
        Self::SmsCodeUnknown,
        Self::ResendBySubscriber,
        Self::PingBySubscriber,
        Self::SignupAttemptByEmail,
        Self::VerifyByUser,
        Self::SlugCheckByIp,
    ];

    /// The same limit (times `factor`) for the in-process count: a burst of
    /// the whole limit, refilled evenly over the window (GCRA). It lets
    /// through what the fixed window does, except twice the limit straddling
    /// a window's end.
    fn quota(self, factor: u64) -> Quota {
        let (limit, window) = self.limit();
        let limit = limit.saturating_mul(factor);
        let burst =
            NonZeroU32::new(u32::try_from(limit).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(window / burst.get())
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst)
    }

    const fn name(self) -> &'static str {
        match self {
            Self::SignupByIp => "signup-ip",
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
            Self::SignupAttemptByEmail => "signup-attempt-email",
            Self::VerifyByUser => "verify-user",
            Self::SlugCheckByIp => "slug-check-ip",
        }
    }

    const fn limit(self) -> (u64, Duration) {
        match self {
            Self::SignupByIp => (10, Duration::from_secs(3600)),
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
            Self::SignupAttemptByEmail => (3, Duration::from_secs(3600)),
            Self::VerifyByUser => (5, Duration::from_secs(3600)),
            Self::SlugCheckByIp => (60, Duration::from_secs(60)),
        }
    }
}

/// How many times a /64's allowance a whole IPv6 /48 gets.
pub const NET48_FACTOR: u64 = 4;

/// Whom a count is for.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// One client (an IPv4 address or an IPv6 /64), account, key or target.
    One,
    /// A whole IPv6 /48 (one site), allowed [`NET48_FACTOR`] times as much.
    Site,
}

const SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
";

/// How often a background probe asks a Redis that missed its budget
/// whether it answers again.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How often the in-process counts forget keys that are back to a full
/// allowance (they grow with every new address otherwise).
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Counts requests in Redis within a time budget, and in this process too,
/// which decides while Redis does not answer in time (see the module note).
#[derive(Clone)]
pub struct Limiter {
    redis: ConnectionManager,
    script: redis::Script,
    budget: Duration,
    breaker: Arc<Breaker>,
    local: Arc<LocalCounts>,
}

/// Open while Redis is missing its budget: requests then skip it.
#[derive(Default)]
struct Breaker {
    open: AtomicBool,
    /// A probe task is running (one at a time).
    probing: AtomicBool,
    /// Decisions taken in this process because Redis did not answer in time.
    local_decisions: AtomicU64,
}

/// One keyed limiter per bucket and scope, with the bucket's own limit.
struct LocalCounts {
    buckets: [DefaultKeyedRateLimiter<String>; Bucket::ALL.len()],
    sites: [DefaultKeyedRateLimiter<String>; Bucket::ALL.len()],
    clock: DefaultClock,
    last_pruned: Mutex<Instant>,
}

impl LocalCounts {
    fn new() -> Self {
        Self {
            buckets: Bucket::ALL.map(|b| RateLimiter::keyed(b.quota(1))),
            sites: Bucket::ALL.map(|b| RateLimiter::keyed(b.quota(NET48_FACTOR))),
            clock: DefaultClock::default(),
            last_pruned: Mutex::new(Instant::now()),
        }
    }

    /// Counts one request; `Err(seconds to wait)` when over the limit.
    fn hit(&self, bucket: Bucket, scope: Scope, key: &String) -> Result<(), u64> {
        self.prune_now_and_then();
        let limiters = match scope {
            Scope::One => &self.buckets,
            Scope::Site => &self.sites,
        };
        limiters[bucket as usize]
            .check_key(key)
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
    }

    fn prune_now_and_then(&self) {
        // One request a minute does it; the others never wait for the lock.
        let Ok(mut last) = self.last_pruned.try_lock() else {
            return;
        };
        if last.elapsed() < PRUNE_INTERVAL {
            return;
        }
        *last = Instant::now();
        for limiter in self.buckets.iter().chain(&self.sites) {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

impl Limiter {
    /// A limiter on this connection, waiting at most `budget` for Redis on
    /// any request.
    #[must_use]
    pub fn new(redis: ConnectionManager, budget: Duration) -> Self {
        Self {
            redis,
            script: redis::Script::new(SCRIPT),
            budget,
            breaker: Arc::default(),
            local: Arc::new(LocalCounts::new()),
        }
    }

    /// Decisions taken in this process because Redis did not answer in
    /// time, since start (for `/metrics`).
    #[must_use]
    pub fn local_decisions(&self) -> u64 {
        self.breaker.local_decisions.load(Ordering::Relaxed)
    }

    /// Whether Redis is currently skipped (it missed its budget and has not
    /// answered a probe since).
    #[must_use]
    pub fn redis_skipped(&self) -> bool {
        self.breaker.open.load(Ordering::Acquire)
    }

    /// Counts one request against `bucket` for `who`; 429 (`rate_limited`,
    /// with the seconds to wait) once over the limit.
    pub async fn hit(&self, bucket: Bucket, who: &str) -> Result<(), ApiError> {
        self.count(bucket, Scope::One, who).await
    }

    /// As [`Self::hit`], with `limit` (a plan's, for its window) in place of
    /// the bucket's when given. Counted in Redis against that limit; the
    /// in-process fallback (Redis away) keeps the bucket's own.
    pub async fn hit_at(
        &self,
        bucket: Bucket,
        who: &str,
        limit: Option<u32>,
    ) -> Result<(), ApiError> {
        match limit {
            None => self.hit(bucket, who).await,
            Some(limit) => {
                self.count_with(bucket, Scope::One, who, Some(u64::from(limit)))
                    .await
            }
        }
    }

    /// Counts one request of the client at `ip` against `bucket`: by its
    /// address (IPv4) or its /64, and for IPv6 by its /48 too.
    pub async fn hit_client(&self, bucket: Bucket, ip: Option<IpAddr>) -> Result<(), ApiError> {
        self.count(bucket, Scope::One, &client_key(ip)).await?;
        if let Some(site) = net48_key(ip) {
            self.count(bucket, Scope::Site, &site).await?;
        }
        Ok(())
    }

    async fn count(&self, bucket: Bucket, scope: Scope, who: &str) -> Result<(), ApiError> {
        self.count_with(bucket, scope, who, None).await
    }

    async fn count_with(
        &self,
        bucket: Bucket,
        scope: Scope,
        who: &str,
        instead: Option<u64>,
    ) -> Result<(), ApiError> {
        let (limit, window) = bucket.limit();
        let limit = instead.unwrap_or(limit);
        let (key, limit) = match scope {
            Scope::One => (format!("heliograph:rl:{}:{who}", bucket.name()), limit),
            Scope::Site => (
                format!("heliograph:rl:{}/48:{who}", bucket.name()),
                limit.saturating_mul(NET48_FACTOR),
            ),
        };
        let local = self.local.hit(bucket, scope, &key);
        if !self.redis_skipped() {
            match self.count_in_redis(limit, window, &key).await {
                Ok(verdict) => return verdict,
                Err(problem) => self.trip(bucket, &problem),
            }
        }
        self.breaker.local_decisions.fetch_add(1, Ordering::Relaxed);
        local.map_err(|secs| ApiError::RateLimited {
            retry_after_secs: secs.max(1),
        })
    }

    /// The count in Redis, within the budget; `Err` says why there is none.
    async fn count_in_redis(
        &self,
        limit: u64,
        window: Duration,
        key: &str,
    ) -> Result<Result<(), ApiError>, String> {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let mut conn = self.redis.clone();
        let counted = tokio::time::timeout(
            self.budget,
            self.script
                .key(key)
                .arg(window_ms)
                .invoke_async::<(u64, i64)>(&mut conn),
        )
        .await;
        match counted {
            Ok(Ok((n, _))) if n <= limit => Ok(Ok(())),
            Ok(Ok((_, ttl_ms))) => Ok(Err(ApiError::RateLimited {
                retry_after_secs: u64::try_from(ttl_ms).unwrap_or(0).div_ceil(1000).max(1),
            })),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.budget.as_millis())),
        }
    }

    /// Opens the breaker (once) and starts the probe that closes it.
    fn trip(&self, bucket: Bucket, problem: &str) {
        if !self.breaker.open.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error = problem,
                bucket = bucket.name(),
                "Redis does not answer in time; rate limits are counted in this process until it does"
            );
        }
        if self.breaker.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let limiter = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                let mut conn = limiter.redis.clone();
                let pong = tokio::time::timeout(
                    limiter.budget,
                    redis::cmd("PING").query_async::<String>(&mut conn),
                )
                .await;
                if matches!(pong, Ok(Ok(_))) {
                    // In this order: a request that finds the breaker closed
                    // and trips it again must be able to start a new probe.
                    limiter.breaker.probing.store(false, Ordering::Release);
                    limiter.breaker.open.store(false, Ordering::Release);
                    tracing::info!("Redis answers again; rate limits are counted there again");
                    return;
                }
            }
        });
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
    fn every_bucket_is_at_its_own_place_in_the_list() {
        for (i, bucket) in Bucket::ALL.into_iter().enumerate() {
            assert_eq!(bucket as usize, i, "{}", bucket.name());
        }
    }

    #[test]
    fn the_in_process_count_refuses_past_the_limit_and_says_how_long_to_wait() {
        let local = LocalCounts::new();
        let key = "heliograph:rl:login-email-ip:someone".to_owned();
        for n in 1..=10 {
            assert_eq!(
                local.hit(Bucket::LoginByEmailAndIp, Scope::One, &key),
                Ok(()),
                "{n}"
            );
        }
        let wait = local
            .hit(Bucket::LoginByEmailAndIp, Scope::One, &key)
            .expect_err("the eleventh is refused");
        // One of ten per minute comes back every 6 s.
        assert!((1..=6).contains(&wait), "{wait}");
        let other = "heliograph:rl:login-email-ip:someone-else".to_owned();
        assert_eq!(
            local.hit(Bucket::LoginByEmailAndIp, Scope::One, &other),
            Ok(())
        );
        let hourly = "heliograph:rl:resend-subscriber:x".to_owned();
        assert_eq!(
            local.hit(Bucket::ResendBySubscriber, Scope::One, &hourly),
            Ok(())
        );
        assert!(
            local
                .hit(Bucket::ResendBySubscriber, Scope::One, &hourly)
                .is_err()
        );
    }

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

    #[test]
    fn a_site_is_allowed_the_factor_times_a_clients_count_in_process_too() {
        let local = LocalCounts::new();
        let key = "heliograph:rl:login-ip/48:2001:db8:1::/48".to_owned();
        for n in 1..=30 * NET48_FACTOR {
            assert_eq!(
                local.hit(Bucket::LoginByIp, Scope::Site, &key),
                Ok(()),
                "{n}"
            );
        }
        assert!(local.hit(Bucket::LoginByIp, Scope::Site, &key).is_err());
    }
}
