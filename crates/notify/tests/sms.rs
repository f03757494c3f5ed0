//! The Twilio-compatible sender against the testkit's **stand-in** for
//! Twilio's Messages API (a paid service that cannot run here): a real HTTP
//! server on loopback that checks credentials, records what it was sent and
//! answers as Twilio does, including its error codes.

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly where it stopped"
)]

use heliograph_domain::PhoneNumber;
use heliograph_notify::{SendError, SmsProvider, TwilioSms};
use heliograph_testkit::{ReceivedSms, SmsStandIn};
use secrecy::SecretString;

fn sender(base: &str, token: &str) -> TwilioSms {
    drop(rustls::crypto::ring::default_provider().install_default());
    TwilioSms::new(
        base,
        SmsStandIn::ACCOUNT_SID,
        SecretString::from(token.to_owned()),
        PhoneNumber::parse("from", "+15005550006").unwrap(),
    )
    .unwrap()
}

fn number(raw: &str) -> PhoneNumber {
    PhoneNumber::parse("to", raw).unwrap()
}

#[tokio::test]
async fn a_message_reaches_the_provider_with_its_number_sender_and_text() {
    let stand_in = SmsStandIn::start().await.unwrap();
    let sid = sender(&stand_in.base_url(), SmsStandIn::AUTH_TOKEN)
        .send(
            &number("+14155550123"),
            "Acme: Elevated errors - investigating",
        )
        .await
        .unwrap();
    assert!(sid.starts_with("SM"));
    assert_eq!(
        stand_in.messages(),
        [ReceivedSms {
            to: "+14155550123".into(),
            from: "+15005550006".into(),
            body: "Acme: Elevated errors - investigating".into(),
        }]
    );
}

#[tokio::test]
async fn refusals_are_permanent_and_busy_answers_transient_without_naming_the_number() {
    let stand_in = SmsStandIn::start().await.unwrap();
    let base = stand_in.base_url();
    let invalid = sender(&base, SmsStandIn::AUTH_TOKEN)
        .send(&number(SmsStandIn::INVALID_NUMBER), "x")
        .await;
    let Err(SendError::Permanent(message)) = invalid else {
        panic!("an invalid number is permanent: {invalid:?}");
    };
    assert!(message.contains("21211"), "{message}");
    assert!(
        !message.contains("5550001"),
        "the number stays out: {message}"
    );

    let refused = sender(&base, "wrong-token")
        .send(&number("+14155550123"), "x")
        .await;
    assert!(
        matches!(refused, Err(SendError::Permanent(_))),
        "{refused:?}"
    );

    stand_in.busy(1);
    let busy = sender(&base, SmsStandIn::AUTH_TOKEN)
        .send(&number("+14155550123"), "x")
        .await;
    assert!(matches!(busy, Err(SendError::Transient(_))), "{busy:?}");
    assert!(
        sender(&base, SmsStandIn::AUTH_TOKEN)
            .send(&number("+14155550123"), "x")
            .await
            .is_ok()
    );

    stand_in.stop_number("+14155550199");
    let stopped = sender(&base, SmsStandIn::AUTH_TOKEN)
        .send(&number("+14155550199"), "x")
        .await;
    let Err(SendError::Unsubscribed(message)) = stopped else {
        panic!("a number that answered STOP is unsubscribed: {stopped:?}");
    };
    assert!(message.contains("21610"), "{message}");

    let unreachable = sender("http://127.0.0.1:9", SmsStandIn::AUTH_TOKEN)
        .send(&number("+14155550123"), "x")
        .await;
    assert!(
        matches!(unreachable, Err(SendError::Transient(_))),
        "{unreachable:?}"
    );
}
