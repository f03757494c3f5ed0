//! Custom domains: added, listed and removed through the API; checked by the
//! worker against a real DNS server (dnsmasq on loopback) on request and by
//! its clock; stopped after failing through the grace period, with the
//! tenant's owners and admins told.
//!
//! Who may hold a hostname is `domain_claims`'; serving it over HTTPS is
//! `caddy`'s.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::{
    CNAME_TARGET, DnsServer, Tenant, TestApp, cname_record, emails_to, txt_record, unique_slug,
};

/// A hostname no other test uses.
pub(crate) fn unique_host() -> String {
    format!("{}.customer.test", unique_slug("status"))
}

pub(crate) async fn add(app: &TestApp, t: &Tenant, hostname: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/v1/pages/{}/domains", t.page_id),
        Some(&t.token),
        &json!({"domain": {"hostname": hostname}}),
    )
    .await
}

pub(crate) async fn get(app: &TestApp, t: &Tenant, id: &str) -> Value {
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/domains/{id}", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

pub(crate) async fn verify(app: &TestApp, t: &Tenant, id: &str) {
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/domains/{id}/verify", t.page_id),
            Some(&t.token),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.drain().await;
}

/// The records that verify `domain` (an API answer).
pub(crate) fn right_records(domain: &Value) -> Vec<String> {
    let host = domain["hostname"].as_str().unwrap();
    vec![
        txt_record(
            &format!("_heliograph.{host}"),
            domain["records"][1]["value"].as_str().unwrap(),
        ),
        cname_record(host, CNAME_TARGET),
    ]
}

pub(crate) async fn routable(app: &TestApp) -> Vec<(String, String, String)> {
    app.store
        .routable_domains()
        .await
        .unwrap()
        .into_iter()
        .map(|d| {
            (
                d.hostname.to_string(),
                d.tenant_id.to_string(),
                d.page_id.to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn adding_a_domain_answers_the_records_to_create() {
    let dns = DnsServer::start(&[]);
    let app = TestApp::spawn_with_dns(dns.addr).await;
    let t = app.signup().await;
    let host = unique_host();
    let (status, d) = add(&app, &t, &format!(" {}. ", host.to_uppercase())).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    assert_eq!(d["hostname"], host, "lower-cased, without the final dot");
    assert_eq!(d["page_id"], t.page_id);
    assert_eq!(d["status"], "pending");
    assert!(d["verified_at"].is_null() && d["failing_since"].is_null());
    let token = d["records"][1]["value"].as_str().unwrap();
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        d["records"],
        json!([
            {"type": "CNAME", "name": host, "value": CNAME_TARGET},
            {"type": "TXT", "name": format!("_heliograph.{host}"), "value": token},
        ])
    );
    let id = d["id"].as_str().unwrap();

    // The first check runs at once, and finds nothing yet.
    app.drain().await;
    let d = get(&app, &t, id).await;
    assert_eq!(d["status"], "pending");
    assert_eq!(d["last_error"], "txt_missing");
    assert!(d["last_checked_at"].is_string());
    assert!(routable(&app).await.is_empty());

    // Listed like every other list; form bodies work too.
    let response = app
        .client
        .post(app.url(&format!("/v1/pages/{}/domains", t.page_id)))
        .bearer_auth(&t.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("domain%5Bhostname%5D={}", unique_host()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = app
        .client
        .get(app.url(&format!(
            "/v1/pages/{}/domains?per_page=1&q={}",
            t.page_id,
            &host[..10]
        )))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-total-count"], "1");
    let list: Value = response.json().await.unwrap();
    assert_eq!(list[0]["id"], id);
    assert_eq!(
        app.count("select count(*) from audit_log where action = 'domain.created'")
            .await,
        2
    );
    app.finish().await;
}

#[tokio::test]
async fn bad_hostnames_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    for (hostname, code) in [
        (json!(null), "missing"),
        (json!("   "), "blank"),
        (json!("192.0.2.1"), "ip_address"),
        (json!("2001:db8::1"), "ip_address"),
        (json!("localhost"), "invalid"),
        (json!("status..example.com"), "invalid"),
        (json!("-status.example.com"), "invalid"),
        (json!("*.example.com"), "invalid"),
        (json!("https://status.example.com/"), "invalid"),
        (json!("bücher.example"), "not_ascii"),
        (
            json!(format!("{}.io", vec!["a".repeat(60); 4].join("."))),
            "too_long",
        ),
        (json!("heliograph.test"), "reserved"),
        (json!("acme.heliograph.test"), "reserved"),
        (json!("PAGES.heliograph.test."), "reserved"),
    ] {
        let (status, body) = app
            .post(
                &format!("/v1/pages/{}/domains", t.page_id),
                Some(&t.token),
                &json!({"domain": {"hostname": hostname}}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{hostname}: {body}"
        );
        assert_eq!(body["error"]["code"], "validation_failed");
        assert_eq!(
            body["error"]["fields"],
            json!([{"field": "hostname", "code": code, "message": body["error"]["fields"][0]["message"]}]),
            "{hostname}"
        );
    }
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/domains", t.page_id),
            Some(&t.token),
            &json!({"hostname": "status.example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"][0]["field"], "domain");
    assert_eq!(app.count("select count(*) from domains").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn a_tenant_claims_a_hostname_once_and_other_tenants_may_claim_it_until_it_is_verified() {
    let app = TestApp::spawn().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let host = unique_host();
    let (status, first) = add(&app, &a, &host).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");

    let (status, page) = app
        .post(
            "/v1/pages",
            Some(&a.token),
            &json!({"page": {"name": "Second", "subdomain": unique_slug("second")}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{page}");
    let second = Tenant {
        token: a.token.clone(),
        page_id: page["id"].as_str().unwrap().to_owned(),
        slug: a.slug.clone(),
        tenant_id: a.tenant_id.clone(),
        email: a.email.clone(),
    };
    // One claim per tenant, whichever its page.
    let (status, body) = add(&app, &second, &host).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "domain_taken");

    // A claim nobody has verified holds nothing: another tenant may claim
    // the hostname too (before, this was 409 and let a squatter block it).
    let (status, body) = add(&app, &b, &format!("{}.", host.to_uppercase())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending");
    assert_ne!(
        body["records"][1]["value"], first["records"][1]["value"],
        "each claim has a token of its own"
    );

    // Removed, the tenant's claim is free for its other page.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!(
                "/v1/pages/{}/domains/{}",
                second.page_id,
                first["id"].as_str().unwrap()
            ),
            Some(&second.token),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another page's domain is not found"
    );
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!(
                "/v1/pages/{}/domains/{}",
                a.page_id,
                first["id"].as_str().unwrap()
            ),
            Some(&second.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = add(&app, &second, &host).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.finish().await;
}

#[tokio::test]
async fn a_domain_is_verified_once_both_records_are_right() {
    let mut dns = DnsServer::start(&[]);
    let app = TestApp::spawn_with_dns(dns.addr).await;
    let t = app.signup().await;
    let (_, d) = add(&app, &t, &unique_host()).await;
    let id = d["id"].as_str().unwrap();
    let host = d["hostname"].as_str().unwrap();
    let txt = format!("_heliograph.{host}");
    let right = right_records(&d);
    app.drain().await;

    // Each record wrong in turn: still pending, with the reason.
    for (records, reason) in [
        (vec![txt_record(&txt, "not-the-token")], "txt_mismatch"),
        (vec![right[0].clone()], "cname_missing"),
        (
            vec![right[0].clone(), cname_record(host, "elsewhere.test")],
            "cname_mismatch",
        ),
    ] {
        dns.set_records(&records);
        verify(&app, &t, id).await;
        let d = get(&app, &t, id).await;
        assert_eq!(d["status"], "pending", "{reason}");
        assert_eq!(d["last_error"], reason);
        assert!(
            d["failing_since"].is_null(),
            "a pending domain is not failing"
        );
        assert!(routable(&app).await.is_empty());
    }

    dns.set_records(&right);
    verify(&app, &t, id).await;
    let d = get(&app, &t, id).await;
    assert_eq!(d["status"], "verified", "{d}");
    assert!(d["verified_at"].is_string());
    assert!(d["last_error"].is_null());
    assert_eq!(
        routable(&app).await,
        vec![(host.to_owned(), t.tenant_id.clone(), t.page_id.clone())]
    );
    app.finish().await;
}

#[tokio::test]
async fn a_domain_failing_past_the_grace_period_stops_and_its_owners_and_admins_are_told() {
    let mut dns = DnsServer::start(&[]);
    let app = TestApp::spawn_with_dns(dns.addr).await;
    let t = app.signup().await;
    let admin = app.signup().await;
    app.join(&t, &admin, "admin").await;
    let viewer = app.signup().await;
    app.join(&t, &viewer, "viewer").await;
    let (_, d) = add(&app, &t, &unique_host()).await;
    let id = d["id"].as_str().unwrap();
    let host = d["hostname"].as_str().unwrap().to_owned();
    dns.set_records(&right_records(&d));
    verify(&app, &t, id).await;
    assert_eq!(get(&app, &t, id).await["status"], "verified");

    // The TXT record changes: the clock's next check finds it wrong.
    dns.set_records(&[
        txt_record(&format!("_heliograph.{host}"), "someone-elses-token"),
        cname_record(&host, CNAME_TARGET),
    ]);
    let tick = |at: OffsetDateTime| heliograph_worker::tick_domains(&app.ctx, at);
    let first_failure = OffsetDateTime::now_utc() + time::Duration::hours(7);
    assert_eq!(tick(first_failure).await.unwrap(), 1);
    let d = get(&app, &t, id).await;
    assert_eq!(d["status"], "failing");
    assert_eq!(d["last_error"], "txt_mismatch");
    assert_eq!(
        d["failing_since"],
        heliograph_web::timestamp(first_failure).as_str()
    );
    assert_eq!(
        routable(&app).await.len(),
        1,
        "it routes through the grace period"
    );
    assert_eq!(
        tick(first_failure + time::Duration::hours(1))
            .await
            .unwrap(),
        0,
        "not due yet"
    );

    assert_eq!(
        tick(first_failure + time::Duration::days(2)).await.unwrap(),
        1
    );
    let d = get(&app, &t, id).await;
    assert_eq!(d["status"], "failing");
    assert_eq!(
        d["failing_since"],
        heliograph_web::timestamp(first_failure).as_str(),
        "kept from the first failure"
    );

    let stop = first_failure + time::Duration::days(3);
    assert_eq!(tick(stop).await.unwrap(), 1);
    let d = get(&app, &t, id).await;
    assert_eq!(d["status"], "stopped");
    assert_eq!(d["stopped_at"], heliograph_web::timestamp(stop).as_str());
    assert!(
        routable(&app).await.is_empty(),
        "a stopped domain routes no more"
    );
    let subject = format!("{host} no longer shows Acme Cloud");
    // Signup sent each person an email of its own (verify your address) first.
    let notices = async |to: &str, wait_for: usize| -> Vec<Value> {
        emails_to(to, wait_for)
            .await
            .into_iter()
            .filter(|m| m["subject"] == subject.as_str())
            .collect()
    };
    for person in [&t, &admin] {
        let mails = notices(&person.email, 2).await;
        assert_eq!(mails.len(), 1, "one notice to {}", person.email);
        let text = mails[0]["text"].as_str().unwrap();
        assert!(
            text.contains("does not carry the verification token"),
            "{text}"
        );
        assert!(
            text.contains(&format!("{host}  CNAME  {CNAME_TARGET}")),
            "{text}"
        );
    }
    assert!(
        notices(&viewer.email, 0).await.is_empty(),
        "viewers are not told"
    );

    // Still failing later: still stopped, and nobody is told twice.
    assert_eq!(tick(stop + time::Duration::hours(7)).await.unwrap(), 1);
    assert_eq!(get(&app, &t, id).await["status"], "stopped");
    assert_eq!(notices(&t.email, 0).await.len(), 1);

    // Right again: it routes again.
    dns.set_records(&right_records(&d));
    assert_eq!(tick(stop + time::Duration::hours(14)).await.unwrap(), 1);
    let d = get(&app, &t, id).await;
    assert_eq!(d["status"], "verified");
    assert!(d["stopped_at"].is_null() && d["failing_since"].is_null());
    assert_eq!(routable(&app).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn a_deleted_domain_stops_routing() {
    let mut dns = DnsServer::start(&[]);
    let app = TestApp::spawn_with_dns(dns.addr).await;
    let t = app.signup().await;
    let (_, d) = add(&app, &t, &unique_host()).await;
    let id = d["id"].as_str().unwrap();
    dns.set_records(&right_records(&d));
    verify(&app, &t, id).await;
    assert_eq!(routable(&app).await.len(), 1);

    let path = format!("/v1/pages/{}/domains/{id}", t.page_id);
    let (status, _) = app.call(Method::DELETE, &path, Some(&t.token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(routable(&app).await.is_empty());
    let (status, body) = app.call(Method::GET, &path, Some(&t.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = app
        .post(&format!("{path}/verify"), Some(&t.token), &json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.count("select count(*) from audit_log where action = 'domain.deleted'")
            .await,
        1
    );
    app.finish().await;
}

#[tokio::test]
async fn another_tenants_domain_is_not_found_even_under_ones_own_page() {
    let app = TestApp::spawn().await;
    let victim = app.signup().await;
    let intruder = app.signup().await;
    let (_, d) = add(&app, &victim, &unique_host()).await;
    let id = d["id"].as_str().unwrap();
    let path = format!("/v1/pages/{}/domains/{id}", intruder.page_id);
    for (method, path) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::POST, format!("{path}/verify")),
    ] {
        let (status, body) = app
            .call(
                method.clone(),
                &path,
                Some(&intruder.token),
                Some(&json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let (_, list) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/domains", intruder.page_id),
            Some(&intruder.token),
            None,
        )
        .await;
    assert_eq!(list, json!([]));
    assert_eq!(get(&app, &victim, id).await["hostname"], d["hostname"]);
    app.finish().await;
}
