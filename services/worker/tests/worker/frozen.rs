//! Dependencies that hang rather than refuse: the test's own Redis or
//! PostgreSQL frozen with SIGSTOP while the worker binary runs, then thawed.
//! The worker waits, loses nothing, sends nothing twice, and carries on
//! without a restart; the API answers meanwhile within its budgets.
//!
//! Refusals and crashes are `faults`'.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use heliograph_testkit::ScratchPostgres;
use reqwest::{Method, StatusCode};

use crate::world::{World, until};

/// How long a test keeps a server frozen: past the worker's own timeouts.
const FROZEN_FOR: Duration = Duration::from_secs(7);

/// `fut`'s output, failing the test if it takes longer than `bound`.
async fn within<T>(what: &str, bound: Duration, fut: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(bound, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {bound:?}"));
    eprintln!("{what}: answered in {:?}", started.elapsed());
    out
}

/// Each of `subscribers` got exactly one email about each of `incidents`.
fn each_heard_each_once(world: &World, subscribers: &HashSet<String>, incidents: &[&str]) {
    for to in subscribers {
        let subjects: Vec<String> = world
            .sink
            .messages()
            .into_iter()
            .filter(|m| m.is_for(to))
            .filter_map(|m| m.subject)
            .collect();
        assert_eq!(subjects.len(), incidents.len(), "{to}: {subjects:?}");
        for name in incidents {
            assert_eq!(
                subjects.iter().filter(|s| s.ends_with(name)).count(),
                1,
                "{to} hears of {name:?} once: {subjects:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_opened_while_redis_is_frozen_are_answered_at_once_and_delivered_once_after_the_thaw()
 {
    let mut world = World::start().await;
    let t = world.signup().await;
    let api = world.component(&t, "API").await;
    let subscribers = world.email_subscribers(&t, 3).await;
    let worker = world.worker(&[]);

    let (status, body) = world.open_incident(&t, &api, "Before").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    until(
        "the first incident is delivered",
        Duration::from_secs(30),
        async || subscribers.iter().all(|to| world.sink.count_for(to) == 1),
    )
    .await;

    world.redis.freeze();
    for name in ["During one", "During two"] {
        // Before the budget, each API request waited out two 5 s Redis calls.
        let (status, body) = within(
            &format!("opening {name:?} with Redis frozen"),
            Duration::from_secs(3),
            world.open_incident(&t, &api, name),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Frozen past the worker's own budget (5 s for an answer from Redis), so
    // its calls time out and it has to recover from that, not merely wait.
    tokio::time::sleep(FROZEN_FOR).await;
    assert!(
        subscribers.iter().all(|to| world.sink.count_for(to) == 1),
        "nothing is sent while the queues are frozen"
    );
    world.redis.thaw();

    until(
        "both incidents reach every subscriber after the thaw",
        Duration::from_secs(90),
        async || subscribers.iter().all(|to| world.sink.count_for(to) >= 3),
    )
    .await;
    until(
        "every delivery is marked sent",
        Duration::from_secs(30),
        async || {
            world
                .count("select count(*) from deliveries where status = 'sent'")
                .await
                == 9
        },
    )
    .await;
    each_heard_each_once(
        &world,
        &subscribers,
        &["Before", "During one", "During two"],
    );
    drop(worker);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_whose_postgres_freezes_midway_delivers_every_email_once_after_the_thaw() {
    const SUBSCRIBERS: usize = 300;
    let pg = tokio::task::spawn_blocking(ScratchPostgres::start)
        .await
        .expect("PostgreSQL starts");
    let world = World::start_on(Some(pg.url())).await;
    let t = world.signup().await;
    let api = world.component(&t, "API").await;
    let subscribers = world.email_subscribers(&t, SUBSCRIBERS as i32).await;
    let worker = world.worker(&[]);

    let (status, body) = world.open_incident(&t, &api, "Primary down").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    until(
        "the fan-out is under way",
        Duration::from_secs(60),
        async || world.sink.count() >= 10,
    )
    .await;

    tokio::task::block_in_place(|| pg.freeze());
    let at_freeze = world.sink.count();
    // The API says what is wrong, within its budget, instead of a 500.
    let (status, body) = within(
        "a management call with PostgreSQL frozen",
        Duration::from_secs(10),
        world.call(
            Method::GET,
            &format!("/v1/pages/{}/components", t.page_id),
            &t.token,
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    // Frozen past the worker's own budget (5 s for a pooled connection), so
    // its jobs fail and are retried rather than merely wait.
    tokio::time::sleep(FROZEN_FOR).await;
    // A send in flight at the freeze may still reach the sink; no more than
    // the worker's concurrency can be.
    assert!(
        world.sink.count() <= at_freeze + 16,
        "nothing is sent without the database"
    );
    tokio::task::block_in_place(|| pg.thaw());

    let repeated = world
        .until_everyone_heard(&subscribers, Duration::from_secs(120))
        .await;
    assert_eq!(repeated, 0, "every email sent once");
    drop(worker);
    world.finish().await;
    drop(pg);
}
