//! The plan's monthly limits, kept by the worker binary: with billing on, a
//! tenant's notification emails and texts stop at its plan's
//! `emails_per_month` and `texts_per_month` (the texts at the SMS budget too,
//! whichever is smaller); the rest are skipped, saying why, and counted on
//! `/metrics`. One tenant's limit holds back no other, two workers racing
//! for the last ones cannot both send, and with billing off nothing changes.

use std::collections::HashSet;
use std::net::TcpListener;
use std::time::Duration;

use heliograph_testkit::SmsStandIn;
use reqwest::StatusCode;

use crate::world::{Process, Tenant, World, until};

/// A free plan of 3 emails and 2 texts a month, and a bigger one.
const PLANS: &str = r#"
free = "small"

[plans.small]
name = "Small"
limits = { texts_per_month = 2, emails_per_month = 3 }

[plans.big]
name = "Big"
limits = { texts_per_month = 100, emails_per_month = 100 }
prices = { month = "price_big_monthly" }
"#;

/// What the delivery log says of an email over the plan's limit.
const EMAILS_OVER_PLAN: &str = "the plan's emails_per_month limit is reached this month";
/// What the delivery log says of a text over the plan's limit.
const TEXTS_OVER_PLAN: &str = "the plan's texts_per_month limit is reached this month";
/// What the delivery log says of a text over the SMS budget.
const TEXTS_OVER_BUDGET: &str = "this month's SMS budget is spent";

/// Long enough for a loaded two-core machine.
const WAIT: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a local address").port()
}

/// Starts a worker serving `/metrics` on a port of its own, with `extra`
/// settings; answers it and the metrics URL.
fn worker_with_metrics(world: &World, extra: &[(&str, &str)]) -> (Process, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut settings = vec![("METRICS_ADDR", addr.as_str())];
    settings.extend_from_slice(extra);
    (world.worker(&settings), format!("http://{addr}/metrics"))
}

/// The settings that point a worker at `sms`.
fn sms_settings(sms: &SmsStandIn) -> [(&'static str, String); 4] {
    [
        ("SMS_PROVIDER_URL", sms.base_url()),
        ("SMS_ACCOUNT_SID", SmsStandIn::ACCOUNT_SID.to_owned()),
        ("SMS_AUTH_TOKEN", SmsStandIn::AUTH_TOKEN.to_owned()),
        ("SMS_FROM", "+15005550006".to_owned()),
    ]
}

/// Whether `t` has `n` deliveries on `channel` and none is left to send.
async fn settled(world: &World, t: &Tenant, channel: &str, n: i64) -> bool {
    let (all, open): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where status in ('pending', 'failed'))
           from deliveries where tenant_id = $1::uuid and channel = $2",
    )
    .bind(&t.tenant_id)
    .bind(channel)
    .fetch_one(&world.admin)
    .await
    .expect("the deliveries are counted");
    all == n && open == 0
}

/// `t`'s deliveries on `channel`: how many by status and recorded reason.
async fn outcomes(world: &World, t: &Tenant, channel: &str) -> Vec<(String, Option<String>, i64)> {
    sqlx::query_as(
        "select status, last_error, count(*) from deliveries
          where tenant_id = $1::uuid and channel = $2
          group by status, last_error order by status, last_error",
    )
    .bind(&t.tenant_id)
    .bind(channel)
    .fetch_all(&world.admin)
    .await
    .expect("the deliveries are read")
}

/// The emails `t` has counted this month (none: no row).
async fn emails_counted(world: &World, t: &Tenant) -> Option<i32> {
    sqlx::query_scalar(
        "select sent from email_usage
          where tenant_id = $1::uuid and month = date_trunc('month', now() at time zone 'utc')::date",
    )
    .bind(&t.tenant_id)
    .fetch_optional(&world.admin)
    .await
    .expect("the count is read")
}

/// The value of the metric line that starts with `series`, once the
/// worker answers `/metrics`.
async fn metric(world: &World, url: &str, series: &str) -> u64 {
    let mut text = String::new();
    until("the worker answers /metrics", WAIT, async || {
        match world.client.get(url).send().await {
            Ok(r) if r.status() == StatusCode::OK => {
                text = r.text().await.unwrap_or_default();
                true
            }
            _ => false,
        }
    })
    .await;
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .expect("a count")
}

/// Opens an incident on `t`'s page (a component of its own).
async fn incident(world: &World, t: &Tenant, name: &str) {
    let component = world.component(t, name).await;
    let (status, body) = world.open_incident(t, &component, name).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sends_no_more_emails_a_month_than_its_plan_allows_and_the_rest_are_skipped_saying_why()
 {
    let world = World::start_with_plans(PLANS).await;
    let t = world.signup().await;
    let subscribers = world.email_subscribers(&t, 8).await;
    let (worker, metrics) = worker_with_metrics(&world, &[]);
    // The owner's verification email (an account email) goes first: it
    // must take no place of the plan's.
    until("the owner's verification email is sent", WAIT, async || {
        world.sink.count() >= 1
    })
    .await;

    incident(&world, &t, "Database failover").await;
    until("every email delivery is settled", WAIT, async || {
        settled(&world, &t, "email", 8).await
    })
    .await;
    let heard = world.heard(&subscribers);
    assert_eq!(heard.len(), 3, "the plan's three: {heard:?}");
    assert!(heard.values().all(|ids| ids.len() == 1), "{heard:?}");
    assert_eq!(
        outcomes(&world, &t, "email").await,
        [
            ("sent".to_owned(), None, 3),
            ("skipped".to_owned(), Some(EMAILS_OVER_PLAN.to_owned()), 5),
        ]
    );
    assert_eq!(emails_counted(&world, &t).await, Some(3));
    assert_eq!(
        metric(
            &world,
            &metrics,
            "heliograph_emails_refused_total{reason=\"plan_limit\"}"
        )
        .await,
        5
    );

    // The month's are spent: the next incident emails nobody.
    incident(&world, &t, "Failover again").await;
    until(
        "the second incident's deliveries are settled",
        WAIT,
        async || settled(&world, &t, "email", 16).await,
    )
    .await;
    assert_eq!(world.heard(&subscribers).values().flatten().count(), 3);
    assert_eq!(emails_counted(&world, &t).await, Some(3));
    drop(worker);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_at_its_plans_limit_holds_back_no_other_and_a_bigger_plan_sends_more() {
    let world = World::start_with_plans(PLANS).await;
    let spent = world.signup().await;
    let spent_subscribers = world.email_subscribers(&spent, 5).await;
    let other = world.signup().await;
    let other_subscribers = world.email_subscribers(&other, 2).await;
    let big = world.signup().await;
    world.subscribe_to_plan(&big, "big").await;
    let big_subscribers = world.email_subscribers(&big, 8).await;
    let worker = world.worker(&[]);

    incident(&world, &spent, "Outage").await;
    until(
        "the first tenant's deliveries are settled",
        WAIT,
        async || settled(&world, &spent, "email", 5).await,
    )
    .await;
    assert_eq!(world.heard(&spent_subscribers).len(), 3);

    // The same plan, another tenant: a month of its own.
    incident(&world, &other, "Outage").await;
    // A bigger plan: eight is within its hundred.
    incident(&world, &big, "Outage").await;
    until(
        "the other tenants' deliveries are settled",
        WAIT,
        async || {
            settled(&world, &other, "email", 2).await && settled(&world, &big, "email", 8).await
        },
    )
    .await;
    assert_eq!(world.heard(&other_subscribers).len(), 2);
    assert_eq!(world.heard(&big_subscribers).len(), 8);
    assert_eq!(
        outcomes(&world, &big, "email").await,
        [("sent".to_owned(), None, 8)]
    );
    assert_eq!(emails_counted(&world, &other).await, Some(2));
    assert_eq!(emails_counted(&world, &big).await, Some(8));
    assert_eq!(world.heard(&spent_subscribers).len(), 3, "still three");
    drop(worker);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_racing_for_the_last_emails_of_the_month_send_no_more_than_the_plan_allows() {
    const SUBSCRIBERS: i64 = 60;
    let world = World::start_with_plans(PLANS).await;
    let t = world.signup().await;
    let subscribers = world.email_subscribers(&t, SUBSCRIBERS as i32).await;
    // Two processes, each sending sixteen at once, pulling from one queue.
    let workers = [
        world.worker(&[("WORKER_CONCURRENCY", "16")]),
        world.worker(&[("WORKER_CONCURRENCY", "16")]),
    ];

    incident(&world, &t, "Everything at once").await;
    until("every email delivery is settled", WAIT, async || {
        settled(&world, &t, "email", SUBSCRIBERS).await
    })
    .await;
    assert_eq!(world.heard(&subscribers).values().flatten().count(), 3);
    assert_eq!(
        outcomes(&world, &t, "email").await,
        [
            ("sent".to_owned(), None, 3),
            (
                "skipped".to_owned(),
                Some(EMAILS_OVER_PLAN.to_owned()),
                SUBSCRIBERS - 3
            ),
        ]
    );
    assert_eq!(emails_counted(&world, &t).await, Some(3));
    drop(workers);
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_stop_at_the_smaller_of_the_plans_limit_and_the_sms_budget_saying_which() {
    let world = World::start_with_plans(PLANS).await;
    let sms = SmsStandIn::start().await.expect("the SMS stand-in starts");
    let small = world.signup().await;
    let small_numbers = world.sms_subscribers(&small, 5).await;
    // A plan of a hundred, a budget of three: the budget is the smaller.
    let big = world.signup().await;
    world.subscribe_to_plan(&big, "big").await;
    sqlx::query("update tenants set sms_monthly_budget = 3 where id = $1::uuid")
        .bind(&big.tenant_id)
        .execute(&world.admin)
        .await
        .expect("the budget is set");
    let big_numbers = world.sms_subscribers(&big, 5).await;
    let settings = sms_settings(&sms);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (worker, metrics) = worker_with_metrics(&world, &settings);

    incident(&world, &small, "Texting outage").await;
    incident(&world, &big, "Texting outage").await;
    until("every text delivery is settled", WAIT, async || {
        settled(&world, &small, "sms", 5).await && settled(&world, &big, "sms", 5).await
    })
    .await;
    let texted = |numbers: &HashSet<String>| {
        sms.messages()
            .iter()
            .filter(|m| numbers.contains(&m.to))
            .count()
    };
    assert_eq!(texted(&small_numbers), 2, "the plan's two");
    assert_eq!(
        outcomes(&world, &small, "sms").await,
        [
            ("sent".to_owned(), None, 2),
            ("skipped".to_owned(), Some(TEXTS_OVER_PLAN.to_owned()), 3),
        ]
    );
    assert_eq!(texted(&big_numbers), 3, "the budget's three");
    assert_eq!(
        outcomes(&world, &big, "sms").await,
        [
            ("sent".to_owned(), None, 3),
            ("skipped".to_owned(), Some(TEXTS_OVER_BUDGET.to_owned()), 2),
        ]
    );
    assert_eq!(
        metric(
            &world,
            &metrics,
            "heliograph_sms_refused_total{reason=\"plan_limit\"}"
        )
        .await,
        3
    );
    assert_eq!(
        metric(
            &world,
            &metrics,
            "heliograph_sms_refused_total{reason=\"notification_budget\"}"
        )
        .await,
        2
    );
    drop(worker);
    sms.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_billing_off_every_email_and_text_goes_out_and_nothing_is_counted_for_a_plan() {
    let world = World::start().await;
    let sms = SmsStandIn::start().await.expect("the SMS stand-in starts");
    let t = world.signup().await;
    let subscribers = world.email_subscribers(&t, 8).await;
    let numbers = world.sms_subscribers(&t, 5).await;
    let settings = sms_settings(&sms);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (worker, metrics) = worker_with_metrics(&world, &settings);

    incident(&world, &t, "Outage").await;
    until("every delivery is settled", WAIT, async || {
        settled(&world, &t, "email", 8).await && settled(&world, &t, "sms", 5).await
    })
    .await;
    assert_eq!(world.heard(&subscribers).len(), 8);
    assert_eq!(
        sms.messages()
            .iter()
            .filter(|m| numbers.contains(&m.to))
            .count(),
        5
    );
    assert_eq!(emails_counted(&world, &t).await, None, "no plan, no count");
    assert_eq!(
        metric(
            &world,
            &metrics,
            "heliograph_emails_refused_total{reason=\"plan_limit\"}"
        )
        .await,
        0
    );
    drop(worker);
    sms.stop().await;
    world.finish().await;
}
