//! The Twilio-compatible sender against the testkit's **stand-in** for
//! Twilio's Messages API (a paid service that cannot run here): a real HTTP
//! server on loopback that checks credentials, records what it was sent and
//! answers as Twilio does, including its error codes.
//!
//! The SSRF guard's address rules are `guard`'s.

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly where it stopped"
)]

use heliograph_domain::PhoneNumber;
use heliograph_notify::{
    AllowedTargets, Guard, Refusal, SendError, SmsClientError, SmsProvider, TwilioSms,
};
use heliograph_testkit::{DnsServer, ReceivedSms, SmsStandIn};
use secrecy::SecretString;

mod common;
use common::AskServer;

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

#[tokio::test]
async fn the_provider_is_never_reached_at_a_metadata_address_by_url_or_by_name() {
    drop(rustls::crypto::ring::default_provider().install_default());
    let token = || SecretString::from(SmsStandIn::AUTH_TOKEN.to_owned());
    let from = || PhoneNumber::parse("from", "+15005550006").unwrap();
    for url in ["http://169.254.169.254", "http://[fd00:ec2::254]:80/"] {
        let built = TwilioSms::new(url, SmsStandIn::ACCOUNT_SID, token(), from());
        assert!(
            matches!(built, Err(SmsClientError::Refused(Refusal::Address))),
            "{url}: {built:?}"
        );
    }

    // A name of the operator's that resolves to a metadata address (a typo,
    // a hijacked zone): the credentials never leave; beside it, a name for
    // the stand-in on loopback shows the lookup itself works.
    let stand_in = SmsStandIn::start().await.unwrap();
    let port = stand_in.addr().port();
    let dns = DnsServer::start(&[
        DnsServer::host_record("sms.guard.test", "127.0.0.1"),
        DnsServer::host_record("hijacked.guard.test", "169.254.169.254"),
    ]);
    let guard = Guard::new(AllowedTargets::OPERATOR).with_lookup(AskServer::new(dns.addr));
    let via = |host: &str| {
        TwilioSms::with_guard(
            &guard,
            &format!("http://{host}:{port}"),
            SmsStandIn::ACCOUNT_SID,
            token(),
            from(),
        )
        .unwrap()
    };
    let hijacked = via("hijacked.guard.test")
        .send(&number("+14155550123"), "x")
        .await;
    let Err(SendError::Permanent(message)) = hijacked else {
        panic!("a refused address is permanent: {hijacked:?}");
    };
    assert!(message.contains("not allowed"), "{message}");
    assert!(stand_in.messages().is_empty());
    assert!(
        via("sms.guard.test")
            .send(&number("+14155550123"), "x")
            .await
            .is_ok()
    );
    assert_eq!(stand_in.messages().len(), 1);
}
