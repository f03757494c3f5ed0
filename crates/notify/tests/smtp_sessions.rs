//! SMTP sessions against the testkit's real SMTP server on loopback: many
//! messages per session, pipelined, never a `NOOP`, no more sessions at
//! once than the pool allows, and refusals classified without breaking the
//! session for the next message.

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly where it stopped"
)]

use std::time::Duration;

use heliograph_domain::EmailAddress;
use heliograph_notify::{EmailMessage, Mailer, SendError, SmtpSettings};
use heliograph_testkit::SmtpSink;

fn mailer(sink: &SmtpSink, pool_size: usize, per_session: usize) -> Mailer {
    Mailer::with_settings(
        &sink.url(),
        "Acme Status <status@acme.test>".parse().unwrap(),
        SmtpSettings {
            pool_size,
            max_messages_per_session: per_session,
            timeout: Duration::from_secs(15),
        },
    )
    .unwrap()
}

fn message(n: usize) -> EmailMessage {
    EmailMessage {
        subject: format!("Update {n}"),
        text: "Investigating.".to_owned(),
        html: "<p>Investigating.</p>".to_owned(),
        unsubscribe: Some("https://status.acme.test/unsubscribe?token=t".to_owned()),
    }
}

fn to(n: usize) -> EmailAddress {
    EmailAddress::parse("email", &format!("reader{n}@example.com")).unwrap()
}

#[tokio::test]
async fn a_session_carries_its_messages_pipelined_without_a_noop_and_closes_after_its_quota() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer = mailer(&sink, 1, 3);
    for n in 0..7 {
        mailer
            .send(uuid::Uuid::from_u128(n as u128 + 1), &to(n), &message(n))
            .await
            .unwrap();
    }
    assert_eq!(sink.count(), 7);
    // Three messages a session: 3 + 3 + 1.
    assert_eq!(
        sink.connections(),
        3,
        "sessions are reused up to their quota"
    );
    assert_eq!(mailer.pool().sessions_opened(), 3);
    assert_eq!(sink.noops(), 0, "no NOOP before a reused session's message");
    // MAIL and RCPT of each message arrive with the commands after them.
    assert!(
        sink.pipelined_commands() >= 2 * 7,
        "MAIL, RCPT and DATA go in one write: {} pipelined",
        sink.pipelined_commands()
    );
    for n in 0..7 {
        assert_eq!(sink.count_for(&format!("reader{n}@example.com")), 1);
    }
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_sessions_are_open_at_once_than_the_pool_allows() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer = mailer(&sink, 2, 1_000);
    let sends = (0..40).map(|n| {
        let mailer = mailer.clone();
        async move {
            mailer
                .send(uuid::Uuid::from_u128(n as u128 + 1), &to(n), &message(n))
                .await
        }
    });
    for result in futures::future::join_all(sends).await {
        result.unwrap();
    }
    assert_eq!(sink.count(), 40);
    assert!(
        sink.connections() <= 2,
        "{} sessions for a pool of two",
        sink.connections()
    );
    sink.stop().await;
}

#[tokio::test]
async fn a_refused_recipient_fails_for_good_and_the_session_carries_the_next_message() {
    let sink = SmtpSink::start().await.unwrap();
    sink.reject_recipient("reader1@example.com");
    let mailer = mailer(&sink, 1, 100);
    let mut session = mailer.pool().session().await;
    let from = mailer.sender().clone();
    for n in 0..3 {
        let message = mailer
            .message(uuid::Uuid::from_u128(n as u128 + 1), &to(n), &message(n))
            .unwrap();
        let result = session
            .send(&from, &message.envelope().to()[0], &message.formatted())
            .await;
        if n == 1 {
            assert!(
                matches!(result, Err(SendError::Permanent(_))),
                "a 5xx recipient is permanent: {result:?}"
            );
        } else {
            result.unwrap();
        }
    }
    drop(session);
    assert_eq!(sink.count(), 2);
    assert_eq!(sink.count_for("reader1@example.com"), 0);
    assert_eq!(
        sink.connections(),
        1,
        "the refusal did not cost the session"
    );
    sink.stop().await;
}

/// `n` messages as `send_all` takes them.
fn run_of(mailer: &Mailer, n: usize) -> Vec<(lettre::Address, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let message = mailer
                .message(uuid::Uuid::from_u128(i as u128 + 1), &to(i), &message(i))
                .unwrap();
            (message.envelope().to()[0].clone(), message.formatted())
        })
        .collect()
}

#[tokio::test]
async fn a_run_of_messages_goes_one_round_trip_each_the_end_of_one_with_the_start_of_the_next() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer = mailer(&sink, 1, 100);
    let run = run_of(&mailer, 5);
    let results = mailer
        .pool()
        .session()
        .await
        .send_all(mailer.sender(), &run)
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(sink.count(), 5);
    for n in 0..5 {
        assert_eq!(sink.count_for(&format!("reader{n}@example.com")), 1);
    }
    // Each end of data but the last came with the next envelope behind it.
    assert_eq!(sink.pipelined_data_ends(), 4);
    assert_eq!(sink.connections(), 1);
    sink.stop().await;
}

#[tokio::test]
async fn a_refusal_in_a_run_fails_that_message_alone_and_a_quota_splits_the_run() {
    let sink = SmtpSink::start().await.unwrap();
    sink.reject_recipient("reader2@example.com");
    // Three messages a session: the run of seven takes three sessions.
    let mailer = mailer(&sink, 1, 3);
    let run = run_of(&mailer, 7);
    let results = mailer
        .pool()
        .session()
        .await
        .send_all(mailer.sender(), &run)
        .await;
    assert_eq!(results.len(), 7);
    for (n, result) in results.iter().enumerate() {
        if n == 2 {
            assert!(matches!(result, Err(SendError::Permanent(_))), "{result:?}");
        } else {
            assert!(result.is_ok(), "message {n}: {result:?}");
        }
    }
    assert_eq!(sink.count(), 6);
    assert_eq!(sink.count_for("reader2@example.com"), 0);
    assert_eq!(sink.connections(), 3);
    sink.stop().await;
}
