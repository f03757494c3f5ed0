//! The one list of the job kinds a worker runs. What goes over every queue
//! reads it: the run loop starts one worker per kind, the janitor purges
//! each kind's finished records, `/metrics` counts each queue, and a test's
//! drain waits on each queue and fails on a job left behind or dead. A kind
//! missing from the list is thus missing everywhere at once, which its
//! tests see, rather than from one of four copies. What a job does is its
//! own [`Job::run`]; this module only enumerates.

use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{HeldJob, Job, QueueDepth, QueueError, Queues};

/// Runs one kind's workers on the queues until shutdown.
type RunFn<C> = fn(Queues, usize, C, CancellationToken) -> BoxFuture<'static, ()>;

/// One kind of job in a [`Registry`]: its queue and how to run it.
pub struct JobKind<C> {
    queue: &'static str,
    run: RunFn<C>,
}

impl<C> JobKind<C> {
    /// The kind of job `J`.
    #[must_use]
    pub const fn of<J: Job<Context = C>>() -> Self {
        Self {
            queue: J::QUEUE,
            run: run_kind::<J>,
        }
    }

    /// Its queue's name.
    #[must_use]
    pub const fn queue(&self) -> &'static str {
        self.queue
    }
}

fn run_kind<J: Job>(
    queues: Queues,
    concurrency: usize,
    ctx: J::Context,
    shutdown: CancellationToken,
) -> BoxFuture<'static, ()> {
    Box::pin(async move { queues.run::<J>(concurrency, ctx, shutdown).await })
}

/// Every kind of job a worker runs, in a fixed order (the order `/metrics`
/// lists the queues in), all sharing the context `C`.
pub struct Registry<C: 'static> {
    kinds: &'static [JobKind<C>],
}

impl<C: Clone + Send + Sync + 'static> Registry<C> {
    /// The registry of `kinds`. Queue names must be unique: two kinds on one
    /// queue would each take the other's jobs (checked at compile time when
    /// the registry is a `static` or `const`).
    #[must_use]
    pub const fn new(kinds: &'static [JobKind<C>]) -> Self {
        let mut i = 0;
        while i < kinds.len() {
            let mut j = i + 1;
            while j < kinds.len() {
                assert!(
                    !same(kinds[i].queue, kinds[j].queue),
                    "two job kinds share a queue"
                );
                j += 1;
            }
            i += 1;
        }
        Self { kinds }
    }

    /// The kinds, in order.
    #[must_use]
    pub const fn kinds(&self) -> &'static [JobKind<C>] {
        self.kinds
    }

    /// The queues' names, in order.
    pub fn queues(&self) -> impl Iterator<Item = &'static str> + use<C> {
        self.kinds.iter().map(JobKind::queue)
    }

    /// Starts one worker per kind on `queues`, each running at most
    /// `concurrency` jobs at once until `shutdown`; answers the tasks, by queue.
    pub fn spawn(
        &self,
        queues: &Queues,
        concurrency: usize,
        ctx: &C,
        shutdown: &CancellationToken,
    ) -> Vec<(&'static str, JoinHandle<()>)> {
        self.kinds
            .iter()
            .map(|kind| {
                let run = (kind.run)(queues.clone(), concurrency, ctx.clone(), shutdown.clone());
                (kind.queue, tokio::spawn(run))
            })
            .collect()
    }

    /// Purges the finished records of every queue; answers each outcome, by queue.
    pub async fn purge_finished(
        &self,
        queues: &Queues,
    ) -> Vec<(&'static str, Result<usize, QueueError>)> {
        let mut out = Vec::with_capacity(self.kinds.len());
        for queue in self.queues() {
            out.push((queue, queues.purge_finished_of(queue).await));
        }
        out
    }

    /// The counts of every queue, by queue.
    pub async fn depths(
        &self,
        queues: &Queues,
    ) -> Vec<(&'static str, Result<QueueDepth, QueueError>)> {
        let mut out = Vec::with_capacity(self.kinds.len());
        for queue in self.queues() {
            out.push((queue, queues.depth_of(queue).await));
        }
        out
    }

    /// Whether no queue has a job ready, scheduled or in flight.
    pub async fn drained(&self, queues: &Queues) -> Result<bool, QueueError> {
        for queue in self.queues() {
            if !queues.depth_of(queue).await?.is_drained() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The dead jobs of every queue, not yet purged.
    pub async fn dead_jobs(&self, queues: &Queues) -> Result<Vec<HeldJob>, QueueError> {
        let mut out = Vec::new();
        for queue in self.queues() {
            out.extend(queues.dead_jobs(queue).await?);
        }
        Ok(out)
    }

    /// The unfinished jobs of every queue.
    pub async fn unfinished_jobs(&self, queues: &Queues) -> Result<Vec<HeldJob>, QueueError> {
        let mut out = Vec::new();
        for queue in self.queues() {
            out.extend(queues.unfinished_jobs(queue).await?);
        }
        Ok(out)
    }
}

/// String equality in a `const fn`.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::JobError;

    /// Always succeeds.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Succeeds {
        marker: u32,
    }

    impl Job for Succeeds {
        const QUEUE: &'static str = "succeeds";
        type Context = ();
        type Error = JobError;
        async fn run(self, (): ()) -> Result<(), JobError> {
            Ok(())
        }
    }

    /// Always fails for good.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Dies {
        marker: u32,
    }

    impl Job for Dies {
        const QUEUE: &'static str = "dies";
        type Context = ();
        type Error = JobError;
        async fn run(self, (): ()) -> Result<(), JobError> {
            Err(JobError::Permanent(anyhow::anyhow!("never works")))
        }
    }

    static KINDS: Registry<()> = Registry::new(&[JobKind::of::<Succeeds>(), JobKind::of::<Dies>()]);

    #[test]
    #[should_panic(expected = "two job kinds share a queue")]
    fn two_kinds_on_one_queue_are_refused() {
        static TWICE: [JobKind<()>; 2] = [JobKind::of::<Dies>(), JobKind::of::<Dies>()];
        let _registry = Registry::new(&TWICE);
    }

    /// Every kind of the list is run, waited for, counted and purged, and a
    /// job that died is named with its queue: what the worker's run loop,
    /// its janitor, `/metrics` and the tests' drain rely on.
    #[tokio::test]
    async fn every_kind_of_a_registry_is_run_drained_counted_and_purged() {
        let url = std::env::var("REDIS_URL").expect("REDIS_URL is set");
        let conn = crate::connect(&url, Duration::from_secs(5))
            .await
            .expect("Redis answers");
        let queues = Queues::new(
            conn,
            format!("test-registry-{}", uuid::Uuid::now_v7().simple()),
        );
        assert_eq!(KINDS.queues().collect::<Vec<_>>(), ["succeeds", "dies"]);
        queues.push(Succeeds { marker: 41 }).await.expect("a push");
        queues.push(Dies { marker: 42 }).await.expect("a push");
        assert!(!KINDS.drained(&queues).await.expect("the depths"));
        assert_eq!(
            KINDS
                .unfinished_jobs(&queues)
                .await
                .expect("the jobs")
                .len(),
            2,
            "both jobs wait"
        );

        let shutdown = CancellationToken::new();
        let workers = KINDS.spawn(&queues, 2, &(), &shutdown);
        assert_eq!(workers.len(), 2, "one worker per kind");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !KINDS.drained(&queues).await.expect("the depths") {
            assert!(Instant::now() < deadline, "the queues drain");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let dead = KINDS.dead_jobs(&queues).await.expect("the dead jobs");
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(dead[0].queue, "dies");
        let shown = dead[0].to_string();
        assert!(
            shown.contains("queue `dies`") && shown.contains("\"marker\":42"),
            "{shown}"
        );
        let depths: Vec<_> = KINDS
            .depths(&queues)
            .await
            .into_iter()
            .map(|(queue, d)| (queue, d.expect("a depth")))
            .collect();
        assert_eq!(depths[0].0, "succeeds");
        assert_eq!((depths[0].1.done, depths[0].1.dead), (1, 0));
        assert_eq!(depths[1].0, "dies");
        assert_eq!((depths[1].1.done, depths[1].1.dead), (0, 1));

        let purged: Vec<_> = KINDS
            .purge_finished(&queues)
            .await
            .into_iter()
            .map(|(queue, n)| (queue, n.expect("a purge")))
            .collect();
        assert_eq!(purged, [("succeeds", 1), ("dies", 1)]);
        assert!(
            KINDS
                .dead_jobs(&queues)
                .await
                .expect("the dead jobs")
                .is_empty()
        );

        shutdown.cancel();
        for (_, worker) in workers {
            worker.await.expect("the worker stops");
        }
        queues
            .delete_all()
            .await
            .expect("the test's keys are deleted");
    }
}
