//! The Twilio-compatible sender against a local **stand-in** for Twilio's
//! Messages API (a paid service that cannot run here): a real HTTP server on
//! loopback that checks credentials, records what it was sent and answers
//! as Twilio does, including its error codes.

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly where it stopped"
)]

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use heliograph_domain::PhoneNumber;
use heliograph_notify::{SendError, SmsProvider, TwilioSms};
use secrecy::SecretString;
use serde_json::json;

const SID: &str = "ACtest0000000000000000000000000000";
const TOKEN: &str = "stand-in-auth-token";
/// Twilio's magic test number for "invalid number".
const INVALID: &str = "+15005550001";

#[derive(Default)]
struct StandIn {
    received: Mutex<Vec<HashMap<String, String>>>,
    /// Answers 429 this many times before accepting.
    busy: Mutex<u32>,
}

async fn messages(
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
    state: web::Data<StandIn>,
) -> HttpResponse {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if path.as_str() != SID || auth != Some(expected.as_str()) {
        return HttpResponse::Unauthorized()
            .json(json!({"code": 20003, "message": "Authenticate", "status": 401}));
    }
    {
        let mut busy = state.busy.lock().unwrap();
        if *busy > 0 {
            *busy -= 1;
            return HttpResponse::TooManyRequests()
                .json(json!({"code": 20429, "message": "Too Many Requests", "status": 429}));
        }
    }
    if form.get("To").map(String::as_str) == Some(INVALID) {
        return HttpResponse::BadRequest().json(json!({
            "code": 21211, "message": "The 'To' number +15005550001 is not a valid phone number.", "status": 400
        }));
    }
    state.received.lock().unwrap().push(form.into_inner());
    HttpResponse::Created()
        .json(json!({"sid": format!("SM{}", uuid::Uuid::new_v4().simple()), "status": "queued"}))
}

async fn stand_in() -> (String, web::Data<StandIn>) {
    let state = web::Data::new(StandIn::default());
    let shared = state.clone();
    let server = HttpServer::new(move || {
        App::new().app_data(shared.clone()).route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            web::post().to(messages),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    (address, state)
}

fn sender(base: &str, token: &str) -> TwilioSms {
    drop(rustls::crypto::ring::default_provider().install_default());
    TwilioSms::new(
        base,
        SID,
        SecretString::from(token.to_owned()),
        PhoneNumber::parse("from", "+15005550006").unwrap(),
    )
    .unwrap()
}

fn number(raw: &str) -> PhoneNumber {
    PhoneNumber::parse("to", raw).unwrap()
}

#[actix_web::test]
async fn a_message_reaches_the_provider_with_its_number_sender_and_text() {
    let (base, state) = stand_in().await;
    let sid = sender(&base, TOKEN)
        .send(
            &number("+14155550123"),
            "Acme: Elevated errors - investigating",
        )
        .await
        .unwrap();
    assert!(sid.starts_with("SM"));
    let received = state.received.lock().unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["To"], "+14155550123");
    assert_eq!(received[0]["From"], "+15005550006");
    assert_eq!(received[0]["Body"], "Acme: Elevated errors - investigating");
}

#[actix_web::test]
async fn refusals_are_permanent_and_busy_answers_transient_without_naming_the_number() {
    let (base, state) = stand_in().await;
    let invalid = sender(&base, TOKEN).send(&number(INVALID), "x").await;
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

    *state.busy.lock().unwrap() = 1;
    let busy = sender(&base, TOKEN)
        .send(&number("+14155550123"), "x")
        .await;
    assert!(matches!(busy, Err(SendError::Transient(_))), "{busy:?}");
    assert!(
        sender(&base, TOKEN)
            .send(&number("+14155550123"), "x")
            .await
            .is_ok()
    );

    let unreachable = sender("http://127.0.0.1:9", TOKEN)
        .send(&number("+14155550123"), "x")
        .await;
    assert!(
        matches!(unreachable, Err(SendError::Transient(_))),
        "{unreachable:?}"
    );
}
