//! What a queue holds, read by its name: counts by state, the records of
//! finished jobs (purged here), and the jobs themselves for a report (the
//! dead ones, and the ones still waiting, which a test's drain names when
//! it fails). Reads and removes only; running jobs is `Queues::run`'s.

use redis::AsyncCommands as _;

use crate::{QueueDepth, QueueError, Queues};

/// A job a queue holds, as stored: for a failure message or an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldJob {
    /// The queue's name.
    pub queue: String,
    /// The job's id in the queue.
    pub id: String,
    /// The job as queued (JSON: the job and its attempt number), if its
    /// record is still there.
    pub job: Option<String>,
    /// What its last run answered (a dead job's error), if it ran.
    pub result: Option<String>,
}

impl std::fmt::Display for HeldJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "queue `{}`, job {}: {}",
            self.queue,
            self.id,
            self.job.as_deref().unwrap_or("(record gone)")
        )?;
        if let Some(result) = &self.result {
            write!(f, " — {result}")?;
        }
        Ok(())
    }
}

impl Queues {
    /// The counts of the queue named `queue`.
    pub async fn depth_of(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        let cfg = self.config_of(queue);
        let mut conn = self.conn.clone();
        let ready: u64 = conn.llen(cfg.active_jobs_list()).await?;
        let scheduled: u64 = conn.zcard(cfg.scheduled_jobs_set()).await?;
        let mut in_flight = 0;
        for set in self.inflight_sets(queue).await? {
            let n: u64 = conn.scard(set).await?;
            in_flight += n;
        }
        Ok(QueueDepth {
            ready,
            scheduled,
            in_flight,
            done: conn.scard(cfg.done_jobs_set()).await?,
            dead: conn.scard(cfg.dead_jobs_set()).await?,
        })
    }

    /// The names of the workers registered on the queue named `queue`.
    pub async fn registered_workers(&self, queue: &str) -> Result<Vec<String>, QueueError> {
        let mut conn = self.conn.clone();
        Ok(conn
            .zrange(self.config_of(queue).workers_set(), 0, -1)
            .await?)
    }

    /// The in-flight sets of the workers registered on `queue`.
    async fn inflight_sets(&self, queue: &str) -> Result<Vec<String>, QueueError> {
        let cfg = self.config_of(queue);
        Ok(self
            .registered_workers(queue)
            .await?
            .into_iter()
            .map(|worker| format!("{}:{worker}", cfg.inflight_jobs_set()))
            .collect())
    }

    /// Removes the records of finished (done and dead) jobs of `J`'s queue;
    /// answers how many. Dead jobs were logged when they died, and the state
    /// that matters (deliveries) lives in PostgreSQL.
    pub async fn purge_finished<J: crate::Job>(&self) -> Result<usize, QueueError> {
        self.purge_finished_of(J::QUEUE).await
    }

    /// [`Queues::purge_finished`] of the queue named `queue`.
    pub async fn purge_finished_of(&self, queue: &str) -> Result<usize, QueueError> {
        let cfg = self.config_of(queue);
        Ok(self.purge(queue, &cfg.done_jobs_set()).await?
            + self.purge(queue, &cfg.dead_jobs_set()).await?)
    }

    /// Removes the records of the dead jobs of the queue named `queue` only;
    /// answers how many (a test that expected them to die).
    pub async fn forget_dead(&self, queue: &str) -> Result<usize, QueueError> {
        self.purge(queue, &self.config_of(queue).dead_jobs_set())
            .await
    }

    /// Removes every job in `set` of `queue`, with its data and metadata.
    async fn purge(&self, queue: &str, set: &str) -> Result<usize, QueueError> {
        let cfg = self.config_of(queue);
        let mut conn = self.conn.clone();
        let mut purged = 0;
        loop {
            let ids: Vec<String> = conn.srandmember_multiple(set, 1000).await?;
            if ids.is_empty() {
                return Ok(purged);
            }
            let mut pipe = redis::pipe();
            pipe.hdel(cfg.job_data_hash(), &ids).ignore();
            for id in &ids {
                pipe.del(format!("{}:{id}", cfg.job_meta_hash())).ignore();
            }
            pipe.srem(set, &ids).ignore();
            let () = pipe.query_async(&mut conn).await?;
            purged += ids.len();
        }
    }

    /// The dead jobs of the queue named `queue` not yet purged.
    pub async fn dead_jobs(&self, queue: &str) -> Result<Vec<HeldJob>, QueueError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.smembers(self.config_of(queue).dead_jobs_set()).await?;
        self.held(queue, ids).await
    }

    /// The jobs of the queue named `queue` that have not finished: ready,
    /// scheduled for later, or claimed by a worker.
    pub async fn unfinished_jobs(&self, queue: &str) -> Result<Vec<HeldJob>, QueueError> {
        let cfg = self.config_of(queue);
        let mut conn = self.conn.clone();
        let mut ids: Vec<String> = conn.lrange(cfg.active_jobs_list(), 0, -1).await?;
        let scheduled: Vec<String> = conn.zrange(cfg.scheduled_jobs_set(), 0, -1).await?;
        ids.extend(scheduled);
        for set in self.inflight_sets(queue).await? {
            let claimed: Vec<String> = conn.smembers(set).await?;
            ids.extend(claimed);
        }
        self.held(queue, ids).await
    }

    /// The records of the jobs `ids` of `queue`.
    async fn held(&self, queue: &str, ids: Vec<String>) -> Result<Vec<HeldJob>, QueueError> {
        let cfg = self.config_of(queue);
        let mut conn = self.conn.clone();
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            let data: Option<Vec<u8>> = conn.hget(cfg.job_data_hash(), &id).await?;
            let result: Option<String> = conn
                .hget(format!("{}:{id}", cfg.job_meta_hash()), "result")
                .await?;
            jobs.push(HeldJob {
                queue: queue.to_owned(),
                job: data.map(|d| String::from_utf8_lossy(&d).into_owned()),
                result,
                id,
            });
        }
        Ok(jobs)
    }
}
