//! The job queue, behind a small interface of our own.
//!
//! Jobs are JSON values on Redis queues (apalis-redis 1.0, pinned exactly;
//! no other crate names apalis). This crate owns what apalis gets wrong or
//! leaves open, found by reading its Lua scripts (the behaviours below are
//! apalis-redis 1.0's; a new version must be read again before the pin moves):
//!
//! - **Retries are ours.** apalis-redis re-runs any failed job on its own
//!   linear schedule and ignores `max_attempts`. A handler here answers
//!   [`JobError::Transient`] or [`JobError::Permanent`]; a transient failure
//!   is re-pushed as a new job after exponential backoff with jitter and the
//!   current one finishes, so the backend never retries implicitly; a
//!   permanent one (or the last transient one) goes to the dead set.
//! - **Finished jobs are purged.** Done and dead job records are removed by
//!   [`Queues::purge_finished`], which the worker runs periodically; apalis
//!   keeps them forever, and turning result persistence off makes it re-run
//!   finished jobs instead.
//! - **Workers are named per run** and deregistered at shutdown: apalis'
//!   own shutdown leaves the name registered, which blocks a restart.
//! - **Queues are polled** every 200 ms, since apalis otherwise notices a
//!   new job only on its heartbeat; and a job pushed by this process wakes
//!   this process' worker for its queue at once. Every hop of a
//!   notification (relay → fan-out → deliver) is pushed by the worker that
//!   runs the next one, so an idle system starts each hop without waiting
//!   for a poll (two polls were about 200 ms of an incident's first
//!   delivery). Other processes still notice the job at their next poll.
//!
//! Jobs are delivered at least once (a crashed worker's jobs are re-queued
//! after its heartbeats stop), so every handler must be idempotent.
//!
//! Each kind of job is declared once ([`Job`]: its queue and its handler),
//! and a worker's kinds are listed once ([`Registry`]). This crate knows
//! nothing of the jobs themselves, nor of what their handlers touch.

mod inspect;
mod registry;

pub use inspect::HeldJob;
pub use registry::{JobKind, Registry};

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use apalis::prelude::{
    AbortError, BackendExt, Data, IntervalStrategy, PollSnapshot, PollStrategy, TaskBuilder,
    TaskSink, WorkerBuilder, WorkerBuilderExt,
};
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use futures::task::AtomicWaker;
use redis::AsyncCommands;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A kind of job, declared once: a serialisable value, the queue it goes
/// to and the handler that runs it. A [`Registry`] lists the kinds a worker
/// runs; everything that goes over every queue (the run loop, the purge of
/// finished records, `/metrics`, a test's drain) reads that list.
pub trait Job: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static {
    /// The queue's name, unique among job kinds.
    const QUEUE: &'static str;
    /// What the handler is given besides the job: the worker's shared state.
    type Context: Clone + Send + Sync + 'static;
    /// How the handler fails; its conversion into [`JobError`] decides
    /// whether the job is retried.
    type Error: Into<JobError>;
    /// Runs the job once. Jobs are delivered at least once, so this must be
    /// idempotent: running it twice does no more than running it once.
    fn run(self, ctx: Self::Context) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// May succeed later (a dependency is down): retried after backoff.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Will never succeed: not retried.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

/// Errors of the queue itself.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis refused or is unreachable.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// apalis refused a push.
    #[error("push failed: {0}")]
    Push(String),
    /// Redis did not answer in time.
    #[error("no answer in time")]
    Timeout,
    /// A worker stopped on a backend error.
    #[error("worker failed: {0}")]
    Worker(String),
}

/// Connects to Redis, giving up after `timeout` instead of retrying forever
/// (the queues and the API's readiness check share this).
pub async fn connect(url: &str, timeout: Duration) -> Result<ConnectionManager, QueueError> {
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1);
    tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config))
        .await
        .map_err(|_| QueueError::Timeout)?
        .map_err(QueueError::from)
}

/// How many attempts a job gets before it is dead.
pub const MAX_ATTEMPTS: u32 = 10;

/// What is actually queued: the job and how many attempts it has had.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope<J> {
    job: J,
    attempt: u32,
}

/// Delay before retry number `attempt` (1-based): 1 s doubling to at most
/// 5 min, spread ±20 % by `jitter` in `[0, 1)`.
#[must_use]
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let base =
        Duration::from_secs(1u64 << attempt.saturating_sub(1).min(9)).min(Duration::from_secs(300));
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// Counts of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Waiting to run now.
    pub ready: u64,
    /// Waiting for a later time.
    pub scheduled: u64,
    /// Claimed by a worker, running or about to.
    pub in_flight: u64,
    /// Finished and not yet purged.
    pub done: u64,
    /// Given up on and not yet purged.
    pub dead: u64,
}

impl QueueDepth {
    /// Nothing left to run.
    #[must_use]
    pub const fn is_drained(&self) -> bool {
        self.ready == 0 && self.scheduled == 0 && self.in_flight == 0
    }
}

/// The pub/sub channel of page-change nudges for a queue namespace.
#[must_use]
pub fn page_changes_channel(namespace: &str) -> String {
    format!("{namespace}:page-changes")
}

/// The queues of one deployment (or one test): every key is under `namespace`.
#[derive(Clone)]
pub struct Queues {
    conn: ConnectionManager,
    namespace: String,
    poll_interval: Duration,
    pushed: Arc<PushSignals>,
}

/// One [`PushSignal`] per queue, shared by the clones of a [`Queues`].
#[derive(Default)]
struct PushSignals(Mutex<HashMap<&'static str, Arc<PushSignal>>>);

impl PushSignals {
    fn of(&self, queue: &'static str) -> Arc<PushSignal> {
        let mut signals = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(signals.entry(queue).or_default())
    }
}

/// "A job was pushed here": set by a push, taken by the queue's worker.
#[derive(Default)]
struct PushSignal {
    pushed: AtomicBool,
    waker: AtomicWaker,
}

impl PushSignal {
    fn notify(&self) {
        self.pushed.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// When a worker fetches: at once after a push by this process, otherwise
/// every poll interval. A signal that arrives while the worker is busy is
/// kept, and costs at most one fetch that finds nothing. One that arrives
/// while a fetch is on its way back (which finds nothing, having run before
/// the push) is spent on that fetch: the job then waits for the next poll,
/// as it would have without the signal.
#[derive(Clone)]
struct PushOrInterval {
    signal: Arc<PushSignal>,
    interval: IntervalStrategy,
}

impl PollStrategy for PushOrInterval {
    fn poll_drive(
        &mut self,
        cx: &mut std::task::Context<'_>,
        snapshot: &PollSnapshot,
    ) -> Poll<Option<()>> {
        // Registered before the flag is read, so a push in between still wakes us.
        self.signal.waker.register(cx.waker());
        let pushed = self.signal.pushed.swap(false, Ordering::AcqRel);
        // Polled every time, pushed or not: a tick re-arms the interval's
        // timer, and a timer that is never polled never wakes the worker,
        // which would then sleep until the next push.
        let tick = self.interval.poll_drive(cx, snapshot);
        if pushed || tick.is_ready() {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

const POLL_INTERVAL: Duration = Duration::from_millis(200);
const HEARTBEAT: Duration = Duration::from_secs(5);

impl Queues {
    /// Queues on an existing Redis connection.
    #[must_use]
    pub fn new(conn: ConnectionManager, namespace: impl Into<String>) -> Self {
        Self {
            conn,
            namespace: namespace.into(),
            poll_interval: POLL_INTERVAL,
            pushed: Arc::default(),
        }
    }

    /// The same queues, with workers that poll Redis every `interval`
    /// instead of every 200 ms (jobs pushed by this process still wake them
    /// at once).
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The key prefix.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The pub/sub channel on which replicas nudge each other when public
    /// pages changed (`<namespace>:page-changes`; the api derives the same
    /// name from the same `QUEUE_NAMESPACE`).
    #[must_use]
    pub fn page_changes_channel(&self) -> String {
        page_changes_channel(&self.namespace)
    }

    /// Nudges every api replica to re-read which public pages changed.
    pub async fn nudge_page_changes(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.publish(self.page_changes_channel(), "changed").await?;
        Ok(())
    }

    /// Counts one more event under `key` in the current fixed window of
    /// length `window` (the first count starts the window) and answers the
    /// count so far. For limits the workers share (how many texts went to a
    /// number range this hour); the key lives under the namespace, so tests
    /// and deployments never count each other's.
    pub async fn count_in_window(&self, key: &str, window: Duration) -> Result<u64, QueueError> {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let mut conn = self.conn.clone();
        // One script: the count and its expiry are set together (a client
        // dying between the two must not leave a count that never expires).
        let n: u64 = redis::Script::new(
            "local n = redis.call('INCR', KEYS[1])
             if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
             return n",
        )
        .key(format!("{}:window:{key}", self.namespace))
        .arg(window_ms)
        .invoke_async(&mut conn)
        .await?;
        Ok(n)
    }

    fn config<J: Job>(&self) -> Config {
        self.config_of(J::QUEUE)
    }

    /// The settings of the queue named `queue` (the keys depend on the name only).
    fn config_of(&self, queue: &str) -> Config {
        Config::default()
            .queue(format!("{}:{queue}", self.namespace))
            .batch_size(4)
            .heartbeat_interval(HEARTBEAT)
            .missed_heartbeats(3)
            .persist_results(true)
            .emit_events(false)
    }

    fn storage<J: Job>(&self) -> RedisStorage<Envelope<J>> {
        RedisStorage::new(self.conn.clone()).with_config(self.config::<J>())
    }

    /// Queues `job` to run now.
    pub async fn push<J: Job>(&self, job: J) -> Result<(), QueueError> {
        self.push_envelope(Envelope { job, attempt: 0 }, None).await
    }

    /// Queues `jobs` to run now, all in one round trip to Redis (one script
    /// that pushes them all, or none).
    pub async fn push_all<J: Job>(
        &self,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<(), QueueError> {
        let envelopes: Vec<Envelope<J>> = jobs
            .into_iter()
            .map(|job| Envelope { job, attempt: 0 })
            .collect();
        if envelopes.is_empty() {
            return Ok(());
        }
        self.storage::<J>()
            .push_bulk(envelopes)
            .await
            .map_err(|e| QueueError::Push(e.to_string()))?;
        self.pushed.of(J::QUEUE).notify();
        Ok(())
    }

    /// Queues `job` to run after `delay` (one-second resolution).
    pub async fn push_after<J: Job>(&self, job: J, delay: Duration) -> Result<(), QueueError> {
        self.push_envelope(Envelope { job, attempt: 0 }, Some(delay))
            .await
    }

    async fn push_envelope<J: Job>(
        &self,
        envelope: Envelope<J>,
        delay: Option<Duration>,
    ) -> Result<(), QueueError> {
        let mut storage = self.storage::<J>();
        let result = match delay {
            None => storage.push(envelope).await,
            Some(d) => {
                storage
                    .push_task(TaskBuilder::new(envelope).run_after(d).build())
                    .await
            }
        };
        result.map_err(|e| QueueError::Push(e.to_string()))?;
        if delay.is_none() {
            self.pushed.of(J::QUEUE).notify();
        }
        Ok(())
    }

    /// The counts of `J`'s queue.
    pub async fn depth<J: Job>(&self) -> Result<QueueDepth, QueueError> {
        self.depth_of(J::QUEUE).await
    }

    /// Deletes every key under the namespace (test teardown).
    pub async fn delete_all(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = conn.keys(format!("{}:*", self.namespace)).await?;
        if !keys.is_empty() {
            let () = conn.del(keys).await?;
        }
        Ok(())
    }

    /// Runs `J`'s handler on its queue with at most `concurrency` jobs at
    /// once, until `shutdown` fires; then finishes the jobs in hand and
    /// returns. A worker that stops on a backend error is restarted after a
    /// pause.
    pub async fn run<J: Job>(
        &self,
        concurrency: usize,
        ctx: J::Context,
        shutdown: CancellationToken,
    ) {
        while !shutdown.is_cancelled() {
            match self
                .run_once::<J>(concurrency, ctx.clone(), shutdown.clone())
                .await
            {
                Ok(()) => break,
                Err(err) => {
                    tracing::error!(job.name = J::QUEUE, error = %err, "worker stopped; restarting");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn run_once<J: Job>(
        &self,
        concurrency: usize,
        ctx: J::Context,
        shutdown: CancellationToken,
    ) -> Result<(), QueueError> {
        let name = format!("{}-{}", J::QUEUE, uuid::Uuid::now_v7());
        let queues = self.clone();
        let task = move |envelope: Envelope<J>, data: Data<J::Context>| {
            let queues = queues.clone();
            let ctx: J::Context = (*data).clone();
            async move { queues.handle(envelope, ctx).await }
        };
        let worker = WorkerBuilder::new(name.clone())
            .backend(self.storage::<J>().poll_with_strategy(PushOrInterval {
                signal: self.pushed.of(J::QUEUE),
                interval: IntervalStrategy::new(self.poll_interval),
            }))
            .data(ctx)
            .concurrency(concurrency)
            .build(task);
        let result = worker
            .run_until(async move {
                shutdown.cancelled().await;
                Ok::<(), std::io::Error>(())
            })
            .await;
        self.deregister::<J>(&name).await;
        result.map_err(|e| QueueError::Worker(e.to_string()))
    }

    /// Takes a stopped worker out of the registry, and puts the jobs it had
    /// fetched but not run back at the head of the queue. apalis fetches in
    /// batches, so a worker stopping holds a few jobs it never started; it
    /// leaves them in its in-flight set and itself registered, and once it is
    /// deregistered nothing looks at that set again. (A worker that dies
    /// without stopping stays registered, and the others re-queue its jobs
    /// when its heartbeats stop.) A job that did finish but whose
    /// acknowledgement was not yet written runs again, which handlers absorb.
    async fn deregister<J: Job>(&self, name: &str) {
        let cfg = self.config::<J>();
        let script = redis::Script::new(
            r#"
            local jobs = redis.call("smembers", KEYS[4])
            if #jobs > 0 then
                redis.call("lpush", KEYS[2], unpack(jobs))
                redis.call("del", KEYS[4])
                redis.call("del", KEYS[3])
                redis.call("lpush", KEYS[3], 1)
            end
            redis.call("zrem", KEYS[1], ARGV[1])
            return #jobs
            "#,
        );
        let mut conn = self.conn.clone();
        let requeued: Result<u64, _> = script
            .key(cfg.workers_set())
            .key(cfg.active_jobs_list())
            .key(cfg.signal_list())
            .key(format!("{}:{name}", cfg.inflight_jobs_set()))
            .arg(name)
            .invoke_async(&mut conn)
            .await;
        match requeued {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                job.name = J::QUEUE,
                jobs = n,
                "returned unstarted jobs to the queue"
            ),
            // Redis is gone: the worker's entry stays, and the other workers
            // re-queue its jobs as they would a crashed worker's.
            Err(err) => {
                tracing::warn!(job.name = J::QUEUE, error = %err, "could not deregister the worker")
            }
        }
    }

    /// Runs one job and applies our retry policy to its outcome.
    async fn handle<J: Job>(
        &self,
        envelope: Envelope<J>,
        ctx: J::Context,
    ) -> Result<(), AbortError> {
        let attempt = envelope.attempt + 1;
        let span = tracing::info_span!("job", job.name = J::QUEUE, job.attempt = attempt);
        let outcome = J::run(envelope.job.clone(), ctx)
            .instrument(span.clone())
            .await
            .map_err(Into::into);
        match outcome {
            Ok(()) => Ok(()),
            Err(JobError::Permanent(err)) => {
                tracing::error!(parent: &span, error = format!("{err:#}"), "job failed permanently");
                Err(AbortError::new(format!("{err:#}")))
            }
            Err(JobError::Transient(err)) if attempt >= MAX_ATTEMPTS => {
                tracing::error!(parent: &span, error = format!("{err:#}"), "job failed on its last attempt");
                Err(AbortError::new(format!("{err:#}")))
            }
            Err(JobError::Transient(err)) => {
                let delay = backoff(attempt, rand::random());
                tracing::warn!(parent: &span, error = format!("{err:#}"), retry_in_ms = delay.as_millis() as u64, "job failed; will retry");
                let retry = Envelope {
                    job: envelope.job,
                    attempt,
                };
                // apalis' own retries are never used (see above); should Redis
                // refuse the re-push, the job dies here, logged, and the state
                // in PostgreSQL (pending deliveries) still says what is left.
                self.push_envelope(retry, Some(delay)).await.map_err(|e| {
                    tracing::error!(parent: &span, error = %e, "could not re-queue a failed job");
                    AbortError::new(e.to_string())
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_and_caps_at_five_minutes() {
        assert_eq!(backoff(1, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(2, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(5, 0.5), Duration::from_secs(16));
        assert_eq!(backoff(30, 0.5), Duration::from_secs(300));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(800));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(1200));
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Ping(u32);

    impl Job for Ping {
        const QUEUE: &'static str = "ping";
        type Context = ();
        type Error = JobError;
        async fn run(self, (): ()) -> Result<(), JobError> {
            Ok(())
        }
    }

    /// Counts its wake-ups.
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A push by this process wakes its queue's worker at once and makes it
    /// fetch, though the poll interval is an hour; a queue nobody pushed to
    /// stays asleep. Checked on the poll strategy the worker runs with, driven
    /// by hand: an end-to-end version has to push while the worker is idle,
    /// which only a clock can arrange (a push that meets a fetch on its way
    /// back waits for the next poll, as the strategy's comment says), and so
    /// it failed now and then on a loaded machine.
    #[tokio::test]
    async fn a_job_pushed_by_this_process_wakes_the_worker_without_waiting_for_a_poll() {
        let url = std::env::var("REDIS_URL").expect("REDIS_URL is set");
        let conn = connect(&url, Duration::from_secs(5))
            .await
            .expect("Redis answers");
        let queues = Queues::new(conn, format!("test-wake-{}", uuid::Uuid::now_v7().simple()))
            .with_poll_interval(Duration::from_secs(3600));
        let strategy = |queues: &Queues, queue| PushOrInterval {
            signal: queues.pushed.of(queue),
            interval: IntervalStrategy::new(queues.poll_interval),
        };
        let mut ping = strategy(&queues, Ping::QUEUE);
        let mut other = strategy(&queues, "other");
        let wakes = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
        let waker = std::task::Waker::from(Arc::clone(&wakes));
        let mut cx = std::task::Context::from_waker(&waker);
        let snapshot = PollSnapshot::default();
        // The interval's first tick comes at once (the fetch at start); after
        // it, both sleep for the hour.
        while ping.poll_drive(&mut cx, &snapshot).is_ready() {}
        while other.poll_drive(&mut cx, &snapshot).is_ready() {}
        let asleep = wakes.0.load(Ordering::SeqCst);

        // A clone of the queues, as a handler elsewhere in the process holds.
        queues.clone().push(Ping(1)).await.expect("a push");
        assert!(
            wakes.0.load(Ordering::SeqCst) > asleep,
            "the push woke the worker"
        );
        assert!(
            ping.poll_drive(&mut cx, &snapshot).is_ready(),
            "woken, the worker fetches"
        );
        assert!(
            ping.poll_drive(&mut cx, &snapshot).is_pending(),
            "one push, one fetch"
        );
        assert!(
            other.poll_drive(&mut cx, &snapshot).is_pending(),
            "another queue's worker sleeps on"
        );
        // Several at once, and a push that comes while the worker is busy
        // (not polling): kept, and fetched for once.
        queues
            .push_all((10..13).map(Ping))
            .await
            .expect("a push of three");
        assert!(ping.poll_drive(&mut cx, &snapshot).is_ready());
        assert!(ping.poll_drive(&mut cx, &snapshot).is_pending());
        let depth = queues.depth::<Ping>().await.expect("the depth");
        assert_eq!(
            depth.ready + depth.scheduled,
            4,
            "every job pushed waits in Redis: {depth:?}"
        );
        queues
            .delete_all()
            .await
            .expect("the test's keys are deleted");
    }
}
