//! `SmsStandIn` as an HTTP client sees it: a message queued and answered as
//! Twilio answers, and other credentials chosen. The SMS sender's own
//! behaviour is tested in `heliograph-notify`, not here.

use std::time::Duration;

use heliograph_testkit::{ReceivedSms, SmsStandIn};
use serde_json::Value;

use crate::http_client;

/// A bound for a loaded machine; every wait returns as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(30);

async fn post(
    stand_in: &SmsStandIn,
    sid: &str,
    token: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = http_client(WAIT)
        .post(format!(
            "{}/2010-04-01/Accounts/{sid}/Messages.json",
            stand_in.base_url()
        ))
        .basic_auth(sid, Some(token))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    (status, body)
}

const MESSAGE: [(&str, &str); 3] = [
    ("To", "+14155550123"),
    ("From", "+15005550006"),
    ("Body", "Acme: investigating"),
];

#[tokio::test]
async fn the_stand_in_queues_a_message_and_answers_like_twilio_otherwise() {
    let stand_in = SmsStandIn::start().await.unwrap();
    let (sid, token) = (SmsStandIn::ACCOUNT_SID, SmsStandIn::AUTH_TOKEN);

    let (status, body) = post(&stand_in, sid, token, &MESSAGE).await;
    assert_eq!(status, 201);
    assert!(body["sid"].as_str().unwrap().starts_with("SM"), "{body}");
    assert_eq!(body["status"], "queued");
    assert!(stand_in.wait_for(1, WAIT).await);
    assert_eq!(
        stand_in.messages(),
        [ReceivedSms {
            to: "+14155550123".into(),
            from: "+15005550006".into(),
            body: "Acme: investigating".into(),
        }]
    );

    let (status, body) = post(&stand_in, sid, "wrong", &MESSAGE).await;
    assert_eq!((status, &body["code"]), (401, &Value::from(20003)));
    let (status, body) = post(&stand_in, "ACother", token, &MESSAGE).await;
    assert_eq!((status, &body["code"]), (401, &Value::from(20003)));

    let invalid = [MESSAGE[1], MESSAGE[2], ("To", SmsStandIn::INVALID_NUMBER)];
    let (status, body) = post(&stand_in, sid, token, &invalid).await;
    assert_eq!((status, &body["code"]), (400, &Value::from(21211)));
    let (status, body) = post(&stand_in, sid, token, &MESSAGE[1..]).await;
    assert_eq!((status, &body["code"]), (400, &Value::from(21604)));

    stand_in.busy(2);
    for _ in 0..2 {
        let (status, body) = post(&stand_in, sid, token, &MESSAGE).await;
        assert_eq!((status, &body["code"]), (429, &Value::from(20429)));
    }
    assert_eq!(post(&stand_in, sid, token, &MESSAGE).await.0, 201);
    assert_eq!(stand_in.count(), 2);
}

#[tokio::test]
async fn other_credentials_can_be_chosen() {
    let stand_in = SmsStandIn::start_with_credentials("ACmine", "secret")
        .await
        .unwrap();
    assert_eq!(post(&stand_in, "ACmine", "secret", &MESSAGE).await.0, 201);
    assert_eq!(
        post(
            &stand_in,
            SmsStandIn::ACCOUNT_SID,
            SmsStandIn::AUTH_TOKEN,
            &MESSAGE
        )
        .await
        .0,
        401
    );
}
