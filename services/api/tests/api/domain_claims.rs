//! Custom domains cannot be squatted: a hostname is held only once a claim of
//! it is verified, the first verified claim wins and the others are taken
//! (their owners and admins told), pending claims expire, a tenant has only
//! so many, and only the verified holder routes. Checked against a real DNS
//! server (dnsmasq on loopback).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::domains::{add, get, right_records, routable, unique_host, verify};
use crate::helpers::{
    CNAME_TARGET, DnsServer, Tenant, TestApp, cname_record, emails_to, txt_record,
};

/// The answer to `POST …/verify` (which the helper `verify` insists is 202).
async fn ask_verify(app: &TestApp, t: &Tenant, id: &str) -> (StatusCode, Value) {
    let answer = app
        .post(
            &format!("/v1/pages/{}/domains/{id}/verify", t.page_id),
            Some(&t.token),
            &json!({}),
        )
        .await;
    app.drain().await;
    answer
}

/// Waits until the api routes `host` to `page` (it hears of a verification
/// through the worker's nudge), answering `/internal/tls/ask` 200.
async fn wait_until_routed(app: &TestApp, host: &str, page: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ask = app
            .get(&format!("/internal/tls/ask?domain={host}"), None)
            .await
            .status();
        let summary = app.get("/api/v2/summary.json", Some(host)).await;
        if ask == StatusCode::OK && summary.status() == StatusCode::OK {
            let summary: Value = summary.json().await.unwrap();
            if summary["page"]["id"] == page {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{host} never routed to page {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Emails to `to` with `subject`, once at least `wait_for` emails reached `to`.
async fn mails(to: &str, subject: &str, wait_for: usize) -> Vec<Value> {
    emails_to(to, wait_for)
        .await
        .into_iter()
        .filter(|m| m["subject"] == subject)
        .collect()
}

#[tokio::test]
async fn a_hostname_is_held_only_once_verified_and_the_first_verified_claim_wins() {
    let mut dns = DnsServer::start(&[]);
    let app = TestApp::spawn_with_dns(dns.addr).await;
    let owner = app.signup().await;
    let squatter = app.signup().await;
    let squatter_admin = app.signup().await;
    app.join(&squatter, &squatter_admin, "admin").await;
    let squatter_viewer = app.signup().await;
    app.join(&squatter, &squatter_viewer, "viewer").await;
    let host = unique_host();

    // The squatter claims the name first: that holds nothing.
    let (status, squat) = add(&app, &squatter, &host).await;
    assert_eq!(status, StatusCode::CREATED, "{squat}");
    let (status, claim) = add(&app, &owner, &host).await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    app.drain().await;
    let squat_id = squat["id"].as_str().unwrap();
    let claim_id = claim["id"].as_str().unwrap();
    assert!(routable(&app).await.is_empty());
    assert_eq!(
        app.get(&format!("/internal/tls/ask?domain={host}"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND,
        "no certificate for a name nobody has verified"
    );

    // The real owner creates its records and passes its check first.
    dns.set_records(&right_records(&claim));
    verify(&app, &owner, claim_id).await;
    assert_eq!(get(&app, &owner, claim_id).await["status"], "verified");
    let lost = get(&app, &squatter, squat_id).await;
    assert_eq!(lost["status"], "taken", "{lost}");
    assert!(lost["taken_at"].is_string());
    assert!(lost["verified_at"].is_null() && lost["expires_at"].is_null());
    assert!(
        lost["explanation"]
            .as_str()
            .unwrap()
            .starts_with("Another account verified this hostname first"),
        "{lost}"
    );

    // Only the verified holder routes: the routing table, Caddy's ask, and
    // the public page on that host.
    assert_eq!(
        routable(&app).await,
        vec![(host.clone(), owner.tenant_id.clone(), owner.page_id.clone())]
    );
    wait_until_routed(&app, &host, &owner.page_id).await;

    // The losing tenant's owners and admins are told, and nobody else.
    let subject = format!("{host} was verified by another account");
    for person in [&squatter, &squatter_admin] {
        let told = mails(&person.email, &subject, 2).await;
        assert_eq!(told.len(), 1, "one notice to {}", person.email);
        let text = told[0]["text"].as_str().unwrap();
        assert!(text.contains(&format!("_heliograph.{host}")), "{text}");
        assert!(
            !text.contains(&owner.slug) && !text.contains(&owner.email),
            "nothing about the holder: {text}"
        );
    }
    assert!(mails(&squatter_viewer.email, &subject, 0).await.is_empty());
    assert!(mails(&owner.email, &subject, 0).await.is_empty());

    // A taken claim is over: asking for a check says why.
    let (status, body) = ask_verify(&app, &squatter, squat_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "domain_taken");
    assert_eq!(get(&app, &squatter, squat_id).await["status"], "taken");

    // A verified hostname is held: nobody may claim it now.
    let third = app.signup().await;
    for who in [&squatter, &third] {
        let (status, body) = add(&app, who, &host).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "domain_taken");
        assert_eq!(
            body["error"]["detail"],
            "This hostname is verified for another page."
        );
    }
    // Checking the holder again changes nothing, and tells nobody twice.
    verify(&app, &owner, claim_id).await;
    assert_eq!(get(&app, &squatter, squat_id).await["status"], "taken");
    assert_eq!(mails(&squatter.email, &subject, 0).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn two_claims_passing_their_checks_at_once_leave_exactly_one_holder() {
    let mut dns = DnsServer::start(&[]);
    let app = TestApp::spawn_with_dns(dns.addr).await;
    let (a, b) = (app.signup().await, app.signup().await);
    let host = unique_host();
    let (_, first) = add(&app, &a, &host).await;
    let (_, second) = add(&app, &b, &host).await;
    app.drain().await;
    // Both tokens in the TXT record: both claims' checks pass.
    let txt = format!("_heliograph.{host}");
    dns.set_records(&[
        txt_record(&txt, first["records"][1]["value"].as_str().unwrap()),
        txt_record(&txt, second["records"][1]["value"].as_str().unwrap()),
        cname_record(&host, CNAME_TARGET),
    ]);

    // The clock checks both at the same moment, side by side.
    let tick = OffsetDateTime::now_utc() + time::Duration::minutes(6);
    assert_eq!(
        heliograph_worker::tick_domains(&app.ctx, tick)
            .await
            .unwrap(),
        2
    );
    let mut statuses = vec![
        get(&app, &a, first["id"].as_str().unwrap()).await["status"].clone(),
        get(&app, &b, second["id"].as_str().unwrap()).await["status"].clone(),
    ];
    statuses.sort_by_key(ToString::to_string);
    assert_eq!(statuses, [json!("taken"), json!("verified")]);
    let holders = routable(&app).await;
    assert_eq!(holders.len(), 1, "{holders:?}");
    let loser = if holders[0].1 == a.tenant_id { &b } else { &a };
    let subject = format!("{host} was verified by another account");
    assert_eq!(
        mails(&loser.email, &subject, 2).await.len(),
        1,
        "the other one is told"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_stopped_holder_loses_the_hostname_to_the_next_verified_claim() {
    let mut dns = DnsServer::start(&[]);
    let app = TestApp::spawn_with_dns(dns.addr).await;
    let (old, new) = (app.signup().await, app.signup().await);
    let host = unique_host();
    let (_, held) = add(&app, &old, &host).await;
    let held_id = held["id"].as_str().unwrap();
    dns.set_records(&right_records(&held));
    verify(&app, &old, held_id).await;

    // While it routes, even failing, nobody else may claim it.
    dns.set_records(&[]);
    let tick = |at: OffsetDateTime| heliograph_worker::tick_domains(&app.ctx, at);
    let failing = OffsetDateTime::now_utc() + time::Duration::hours(7);
    assert_eq!(tick(failing).await.unwrap(), 1);
    assert_eq!(get(&app, &old, held_id).await["status"], "failing");
    let (status, body) = add(&app, &new, &host).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    tick(failing + time::Duration::days(3)).await.unwrap();
    assert_eq!(get(&app, &old, held_id).await["status"], "stopped");

    // Stopped, it holds the name no more: a new claim can be verified, and
    // takes it.
    let (status, claim) = add(&app, &new, &host).await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    dns.set_records(&right_records(&claim));
    verify(&app, &new, claim["id"].as_str().unwrap()).await;
    assert_eq!(
        get(&app, &new, claim["id"].as_str().unwrap()).await["status"],
        "verified"
    );
    assert_eq!(get(&app, &old, held_id).await["status"], "taken");
    assert_eq!(
        routable(&app).await,
        vec![(host.clone(), new.tenant_id.clone(), new.page_id.clone())]
    );
    wait_until_routed(&app, &host, &new.page_id).await;
    let subject = format!("{host} was verified by another account");
    assert_eq!(mails(&old.email, &subject, 3).await.len(), 1);

    // Its records right again, the old holder cannot take the name back.
    dns.set_records(&right_records(&held));
    let (status, body) = ask_verify(&app, &old, held_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(get(&app, &old, held_id).await["status"], "taken");
    assert_eq!(routable(&app).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn pending_domains_expire_and_a_tenant_may_have_only_so_many_at_once() {
    let mut dns = DnsServer::start(&[]);
    let app = TestApp::spawn_with_dns(dns.addr).await;
    let t = app.signup().await;
    let limit = heliograph_domain::PendingClaims::DEFAULT.per_tenant;
    let mut claims = Vec::new();
    for _ in 0..limit {
        let (status, d) = add(&app, &t, &unique_host()).await;
        assert_eq!(status, StatusCode::CREATED, "{d}");
        assert!(d["expires_at"].is_string(), "{d}");
        claims.push(d);
    }
    app.drain().await;
    let (status, body) = add(&app, &t, &unique_host()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "pending_domain_limit");

    // A verified domain is no longer pending: room for one more.
    let verified = claims.remove(0);
    dns.set_records(&right_records(&verified));
    verify(&app, &t, verified["id"].as_str().unwrap()).await;
    let (status, extra) = add(&app, &t, &unique_host()).await;
    assert_eq!(status, StatusCode::CREATED, "{extra}");
    claims.push(extra);
    app.drain().await;
    let (status, _) = add(&app, &t, &unique_host()).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // At the end of the pending period the clock checks each pending claim
    // once more; failing, they expire, and are checked no more.
    let tick = |at: OffsetDateTime| heliograph_worker::tick_domains(&app.ctx, at);
    let past = OffsetDateTime::now_utc() + time::Duration::days(7) + time::Duration::hours(1);
    let checked = tick(past).await.unwrap();
    assert_eq!(
        checked,
        limit + 1,
        "every pending claim, and the verified one's recheck"
    );
    for d in &claims {
        let d = get(&app, &t, d["id"].as_str().unwrap()).await;
        assert_eq!(d["status"], "expired", "{d}");
        assert!(d["expired_at"].is_string() && d["expires_at"].is_null());
        assert!(
            d["explanation"]
                .as_str()
                .unwrap()
                .contains("not verified within the pending period")
        );
    }
    assert_eq!(
        tick(past + time::Duration::days(1)).await.unwrap(),
        1,
        "only the verified domain is checked"
    );
    assert_eq!(routable(&app).await.len(), 1);

    // Expired claims release the limit…
    let (status, fresh) = add(&app, &t, &unique_host()).await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    // …and asking for a check renews one: pending again, with a new period.
    let renewed_id = claims[0]["id"].as_str().unwrap();
    let (status, renewed) = ask_verify(&app, &t, renewed_id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{renewed}");
    assert_eq!(renewed["status"], "pending");
    assert!(renewed["expired_at"].is_null());
    let renewed = get(&app, &t, renewed_id).await;
    assert_eq!(
        renewed["status"], "pending",
        "its records are still missing"
    );
    assert_eq!(renewed["last_error"], "txt_missing");
    // Renewing counts against the limit like adding.
    for _ in 0..limit - 2 {
        let (status, body) = add(&app, &t, &unique_host()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = ask_verify(&app, &t, claims[1]["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "pending_domain_limit");
    assert_eq!(
        get(&app, &t, claims[1]["id"].as_str().unwrap()).await["status"],
        "expired"
    );
    let (status, list) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/domains?per_page=100", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1 + limit + 1 + (limit - 2));
    app.finish().await;
}
