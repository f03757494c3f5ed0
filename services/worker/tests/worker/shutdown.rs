//! Stopping the worker: SIGTERM in the middle of a fan-out neither loses nor
//! repeats a delivery, and the records of finished jobs do not pile up in
//! Redis.
//!
//! Crashes are `faults`'.

use std::time::Duration;

use redis::AsyncCommands as _;
use reqwest::StatusCode;

use crate::world::{World, until};

/// Jobs sitting in the in-flight set of a worker that is no longer
/// registered: nothing would ever run them again (only the sweeper, ten
/// minutes later, for deliveries).
async fn stranded_jobs(world: &World) -> u64 {
    let mut conn = heliograph_jobs::connect(&world.redis.url(), Duration::from_secs(5))
        .await
        .expect("Redis is reachable");
    let sets: Vec<String> = conn
        .keys(format!("{}:*:inflight:*", world.queues.namespace()))
        .await
        .expect("KEYS runs");
    let mut stranded = 0;
    for set in sets {
        let (queue, worker) = set.split_once(":inflight:").expect("an in-flight set");
        let registered: Option<f64> = conn
            .zscore(format!("{queue}:workers"), worker)
            .await
            .expect("ZSCORE runs");
        if registered.is_none() {
            let n: u64 = conn.scard(&set).await.expect("SCARD runs");
            stranded += n;
        }
    }
    stranded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_fan_out_finishes_the_sends_in_hand_and_a_restart_sends_the_rest_exactly_once()
{
    const SUBSCRIBERS: usize = 3_000;
    let world = World::start().await;
    let t = world.signup().await;
    let api = world.component(&t, "API").await;
    let subscribers = world.email_subscribers(&t, SUBSCRIBERS as i32).await;
    let told = |world: &World| world.heard(&subscribers).len();

    let worker = world.worker(&[]);
    let (status, body) = world.open_incident(&t, &api, "Storage degraded").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    until(
        "the fan-out is under way",
        Duration::from_secs(300),
        async || world.sink.count() >= 300,
    )
    .await;
    let exit = worker.terminate(Duration::from_secs(30)).await;
    assert!(exit.success(), "a clean exit on SIGTERM: {exit}");

    let at_stop = told(&world);
    assert!(at_stop < SUBSCRIBERS, "stopped mid fan-out ({at_stop})");
    // Every email the server accepted was recorded as sent before the exit:
    // nothing in hand was cut off between the send and the record.
    let sent = world
        .count("select count(*) from deliveries where status = 'sent'")
        .await;
    assert_eq!(sent as usize, at_stop, "the sink and the log agree");
    // And nothing taken from the queue was dropped on the way out.
    assert_eq!(stranded_jobs(&world).await, 0, "no job is stranded");

    let worker = world.worker(&[]);
    until(
        "every subscriber is told after the restart",
        Duration::from_secs(600),
        // The count first: it is cheap, and the test shares the cores with the worker.
        async || world.sink.count() >= SUBSCRIBERS && told(&world) == SUBSCRIBERS,
    )
    .await;
    for (to, ids) in world.heard(&subscribers) {
        assert_eq!(ids.len(), 1, "{to} is told exactly once");
    }
    drop(worker);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_of_finished_jobs_do_not_pile_up_in_redis() {
    const SUBSCRIBERS: usize = 2_000;
    let world = World::start().await;
    let t = world.signup().await;
    let api = world.component(&t, "API").await;
    world.email_subscribers(&t, SUBSCRIBERS as i32).await;
    let worker = world.worker(&[("JANITOR_INTERVAL_SECONDS", "1")]);

    let (status, body) = world.open_incident(&t, &api, "Queue pressure").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    until(
        "every email is sent",
        Duration::from_secs(300),
        async || {
            world
                .count("select count(*) from deliveries where status <> 'sent'")
                .await
                == 0
                && world.count("select count(*) from deliveries").await == SUBSCRIBERS as i64
        },
    )
    .await;
    // Over 2,000 jobs ran; what Redis keeps of them is purged by the
    // janitor, leaving the queues' few fixed keys and no job record. The
    // last jobs are still being acknowledged when the last delivery is
    // marked sent, so the test waits for the purge itself rather than
    // looking once after a fixed time (on a loaded machine, 20 records were
    // once still there).
    let mut conn = heliograph_jobs::connect(&world.redis.url(), Duration::from_secs(5))
        .await
        .expect("Redis is reachable");
    let pattern = format!("{}:*", world.queues.namespace());
    let mut keys: Vec<String> = Vec::new();
    let mut records = u64::MAX;
    until(
        "finished jobs are purged",
        Duration::from_secs(300),
        async || {
            keys = conn.keys(&pattern).await.expect("KEYS runs");
            records = 0;
            for key in keys.iter().filter(|k| k.ends_with(":data")) {
                let n: u64 = conn.hlen(key).await.expect("HLEN runs");
                records += n;
            }
            keys.len() < 50 && records == 0
        },
    )
    .await;
    assert_eq!(records, 0, "no job data is kept: {keys:?}");
    drop(worker);
    world.finish().await;
}
