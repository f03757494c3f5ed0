//! Plan limits with billing on: each limit refused at each entry point
//! (REST, dashboard form, CSV import, the public subscription form) with
//! one answer (402 `plan_limit`, naming the limit, the plan's value and
//! where to upgrade); two requests racing for the last slot; the plan in
//! force following the subscription, and nothing deleted when it falls.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Infra, Tenant, TestApp, unique_email, unique_ip, unique_slug};

fn new_page(name: &str) -> Value {
    json!({"page": {"name": name, "subdomain": unique_slug("plan")}})
}

/// Tiny limits, so that each is reached in a step or two.
const PLANS: &str = r#"
free = "free"

[plans.free]
name = "Free"
limits = { pages = 1, components_per_page = 2, subscribers_per_page = 2, team_members = 1, custom_domains = 0, texts_per_month = 0 }

[plans.team]
name = "Team"
limits = { pages = 2, components_per_page = 5, subscribers_per_page = 10, team_members = 5, custom_domains = 1 }
prices = { month = "price_team_month", year = "price_team_year" }
"#;

async fn spawn() -> TestApp {
    TestApp::spawn_on(Infra {
        plans: Some(PLANS),
        ..Infra::default()
    })
    .await
}

/// Asserts the one answer of a limit reached.
fn refused(status: StatusCode, body: &Value, limit: &str, plan: &str, allowed: u64) {
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    let e = &body["error"];
    assert_eq!(e["code"], "plan_limit", "{body}");
    assert_eq!(e["limit"]["name"], limit, "{body}");
    assert_eq!(e["limit"]["plan"], plan, "{body}");
    assert_eq!(e["limit"]["allowed"], allowed, "{body}");
    assert!(
        e["limit"]["upgrade_url"]
            .as_str()
            .unwrap()
            .ends_with("/dashboard/billing"),
        "{body}"
    );
    assert!(e["detail"].as_str().unwrap().contains("upgrade"), "{body}");
}

async fn post(app: &TestApp, t: &Tenant, path: &str, body: Value) -> (StatusCode, Value) {
    app.post(path, Some(&t.token), &body).await
}

fn subscriber(email: &str) -> Value {
    json!({"subscriber": {"email": email, "skip_confirmation_notification": true}})
}

#[tokio::test]
async fn each_limit_is_refused_through_the_api_with_one_answer() {
    let app = spawn().await;
    let t = app.signup().await;
    let page = format!("/v1/pages/{}", t.page_id);

    // Pages: the signup made the one the free plan allows.
    let (status, body) = post(&app, &t, "/v1/pages", new_page("Second")).await;
    refused(status, &body, "pages", "free", 1);

    // Components on a page: 2.
    for name in ["API", "Website"] {
        let (status, body) = post(
            &app,
            &t,
            &format!("{page}/components"),
            json!({"component": {"name": name}}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = post(
        &app,
        &t,
        &format!("{page}/components"),
        json!({"component": {"name": "Third"}}),
    )
    .await;
    refused(status, &body, "components_per_page", "free", 2);

    // Subscribers on a page: 2; one who left frees a place.
    let mut ids = vec![];
    for _ in 0..2 {
        let (status, body) = post(
            &app,
            &t,
            &format!("{page}/subscribers"),
            subscriber(&unique_email("s")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let third = unique_email("third");
    let (status, body) = post(&app, &t, &format!("{page}/subscribers"), subscriber(&third)).await;
    refused(status, &body, "subscribers_per_page", "free", 2);
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{page}/subscribers/{}", ids[0]),
            Some(&t.token),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    let (status, body) = post(&app, &t, &format!("{page}/subscribers"), subscriber(&third)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Team members, open invitations included: the owner is the one.
    let (status, body) = post(
        &app,
        &t,
        "/v1/invitations",
        json!({"invitation": {"email": unique_email("mate"), "role": "editor"}}),
    )
    .await;
    refused(status, &body, "team_members", "free", 1);

    // Custom domains: none on the free plan.
    let (status, body) = post(
        &app,
        &t,
        &format!("{page}/domains"),
        json!({"domain": {"hostname": "status.example.com"}}),
    )
    .await;
    refused(status, &body, "custom_domains", "free", 0);

    // Nothing refused was added.
    let count = |sql: &'static str| {
        let app = &app;
        let tenant = t.tenant_id.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(sql)
                .bind(uuid::Uuid::parse_str(&tenant).unwrap())
                .fetch_one(&app.admin)
                .await
                .unwrap();
            n
        }
    };
    assert_eq!(
        count("select count(*) from pages where tenant_id = $1").await,
        1
    );
    assert_eq!(
        count("select count(*) from components where tenant_id = $1").await,
        2
    );
    assert_eq!(
        count("select count(*) from invitations where tenant_id = $1").await,
        0
    );
    assert_eq!(
        count("select count(*) from domains where tenant_id = $1").await,
        0
    );
    app.finish().await;
}

#[tokio::test]
async fn two_requests_racing_for_the_last_slots_cannot_both_take_one() {
    let app = spawn().await;
    let t = app.signup().await;
    let path = format!("/v1/pages/{}/components", t.page_id);
    // Eight at once for the free plan's two components.
    let answers = futures::future::join_all((0..8).map(|n| {
        let app = &app;
        let t = &t;
        let path = path.clone();
        async move {
            post(
                app,
                t,
                &path,
                json!({"component": {"name": format!("C{n}")}}),
            )
            .await
            .0
        }
    }))
    .await;
    let created = answers
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|s| **s == StatusCode::PAYMENT_REQUIRED)
        .count();
    assert_eq!((created, refused), (2, 6), "{answers:?}");
    let (n,): (i64,) = sqlx::query_as("select count(*) from components where tenant_id = $1::uuid")
        .bind(&t.tenant_id)
        .fetch_one(&app.admin)
        .await
        .unwrap();
    assert_eq!(n, 2);
    app.finish().await;
}

#[tokio::test]
async fn the_dashboard_the_import_and_the_public_form_meet_the_same_limit() {
    let app = spawn().await;
    let t = app.signup().await;
    let session = app.form_session(&t.email, &t.tenant_id).await;
    let base = format!("/dashboard/pages/{}", t.page_id);

    // The dashboard's forms: a refusal page that says what the plan allows.
    let (status, html) = app
        .form_post(
            &session,
            "/dashboard/pages",
            &[("name", "Second"), ("subdomain", "second-page")],
        )
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{html}");
    assert!(
        html.contains("limit on status pages is 1. Nothing was added"),
        "{html}"
    );

    // The import is refused whole: three new addresses do not fit in two.
    let csv = format!(
        "{}\n{}\n{}\n",
        unique_email("a"),
        unique_email("b"),
        unique_email("c")
    );
    let (status, html) = app
        .form_post(
            &session,
            &format!("{base}/subscribers/import"),
            &[
                ("csv", &csv),
                ("skip_confirmation", "on"),
                ("step", "import"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{html}");
    assert!(html.contains("subscribers on a page"), "{html}");
    let subscribers = || async {
        let (n,): (i64,) =
            sqlx::query_as("select count(*) from subscribers where tenant_id = $1::uuid")
                .bind(&t.tenant_id)
                .fetch_one(&app.admin)
                .await
                .unwrap();
        n
    };
    assert_eq!(subscribers().await, 0);

    // Two fit; the public form then turns a visitor away without a word
    // about the team's plan.
    let (status, html) = app
        .form_post(
            &session,
            &format!("{base}/subscribers"),
            &[
                ("type", "email"),
                ("address", &unique_email("one")),
                ("skip_confirmation", "on"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/subscribers", t.page_id),
            Some(&t.token),
            &subscriber(&unique_email("two")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let visitor = app
        .client
        .post(app.url(&format!("/status/{}/subscriptions", t.slug)))
        .header("x-forwarded-for", unique_ip())
        .json(&json!({"subscriber": {"email": unique_email("visitor")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(visitor.status(), StatusCode::CONFLICT);
    let body: Value = visitor.json().await.unwrap();
    assert_eq!(body["error"]["code"], "page_full", "{body}");
    assert!(!body.to_string().contains("plan"), "{body}");
    let form = app
        .client
        .post(app.url(&format!("/status/{}/subscriptions", t.slug)))
        .header("x-forwarded-for", unique_ip())
        .form(&[("subscriber[email]", unique_email("visitor").as_str())])
        .send()
        .await
        .unwrap();
    let status = form.status();
    let html = form.text().await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("not taking new subscribers"), "{html}");
    assert!(!html.contains("plan"), "{html}");
    assert_eq!(subscribers().await, 2);
    app.finish().await;
}

#[tokio::test]
async fn the_plan_in_force_follows_the_subscription_and_nothing_is_deleted_when_it_falls() {
    let app = spawn().await;
    let t = app.signup().await;
    let (status, _) = post(&app, &t, "/v1/pages", new_page("Second")).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);

    // An active subscription to the team plan: two pages.
    let standing = |status: &'static str| {
        let app = &app;
        let tenant = t.tenant_id.clone();
        async move {
            sqlx::query(
                "insert into tenant_billing (tenant_id, plan, status) values ($1::uuid, 'team', $2)
                 on conflict (tenant_id) do update set status = excluded.status",
            )
            .bind(&tenant)
            .bind(status)
            .execute(&app.admin)
            .await
            .unwrap();
        }
    };
    standing("active").await;
    let (status, body) = post(&app, &t, "/v1/pages", new_page("Second")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post(&app, &t, "/v1/pages", new_page("Third")).await;
    refused(status, &body, "pages", "team", 2);

    // Canceled: the free plan again. Both pages stay and still serve;
    // adding is refused at the free plan's value.
    standing("canceled").await;
    let (status, body) = post(&app, &t, "/v1/pages", new_page("Third")).await;
    refused(status, &body, "pages", "free", 1);
    let (n,): (i64,) = sqlx::query_as("select count(*) from pages where tenant_id = $1::uuid")
        .bind(&t.tenant_id)
        .fetch_one(&app.admin)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let public = app.get(&format!("/status/{}/", t.slug), None).await;
    assert_eq!(public.status(), StatusCode::OK);
    app.finish().await;
}

#[tokio::test]
async fn the_billing_answer_shows_the_plan_its_limits_and_what_the_tenant_has() {
    let app = spawn().await;
    let t = app.signup().await;
    app.component(&t, "API").await;
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/subscribers", t.page_id),
            Some(&t.token),
            &subscriber(&unique_email("s")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let viewer = app.signup().await;
    let viewer_token = app.join(&t, &viewer, "viewer").await;
    // Any member reads it.
    let (status, b) = app
        .call(
            reqwest::Method::GET,
            "/v1/billing",
            Some(&viewer_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["billing"], "on");
    assert_eq!(b["plan"], json!({"id": "free", "name": "Free"}));
    assert_eq!(b["limits"]["pages"], 1);
    assert_eq!(b["limits"]["emails_per_month"], Value::Null);
    assert_eq!(b["usage"]["pages"], 1);
    assert_eq!(b["usage"]["team_members"], 2);
    assert_eq!(b["usage"]["custom_domains"], 0);
    assert_eq!(
        b["usage"]["per_page"],
        json!([{"page_id": t.page_id, "components": 1, "subscribers": 1}])
    );
    assert_eq!(b["subscription"], Value::Null);
    app.finish().await;

    // With billing off: no plan, no limit.
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let (status, b) = app
        .call(reqwest::Method::GET, "/v1/billing", Some(&t.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["billing"], "off");
    assert_eq!(b["plan"], Value::Null);
    assert!(
        b["limits"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_null),
        "{b}"
    );
    app.finish().await;
}

#[tokio::test]
async fn reading_the_billing_answer_again_and_again_leaves_the_connections_sound() {
    // A statement bound more parameters than it names worked once, then
    // failed from the statement cache on the same connection.

    let app = TestApp::spawn().await;
    let t = app.signup().await;
    for i in 0..30 {
        let (status, b) = app
            .call(reqwest::Method::GET, "/v1/billing", Some(&t.token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{i} {b}");
        let (status, b) = app
            .call(reqwest::Method::GET, "/v1/pages", Some(&t.token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{i} {b}");
    }
    app.finish().await;
}

#[tokio::test]
async fn sms_needs_a_plan_with_texts_and_a_page_already_texting_keeps_its_subscribers() {
    let app = spawn().await;
    let t = app.signup().await;
    let page = format!("/v1/pages/{}", t.page_id);
    let sms_on = json!({"page": {"allow_sms_subscribers": true, "sms_calling_code": "1"}});
    let patch = |body: Value| {
        let app = &app;
        let token = t.token.clone();
        let page = page.clone();
        async move {
            app.call(reqwest::Method::PATCH, &page, Some(&token), Some(&body))
                .await
        }
    };

    // The free plan sends no texts: SMS cannot be turned on, through the API
    // or the dashboard (said at the switch).
    let (status, body) = patch(sms_on.clone()).await;
    refused(status, &body, "texts_per_month", "free", 0);
    let session = app.form_session(&t.email, &t.tenant_id).await;
    let (status, html) = app
        .form_post(
            &session,
            &format!("/dashboard/pages/{}/settings", t.page_id),
            &[
                ("name", "Acme"),
                ("time_zone", "Etc/UTC"),
                ("css_link_color", "#0969da"),
                ("css_body_background_color", "#ffffff"),
                ("css_font_color", "#1f2328"),
                ("allow_email_subscribers", "on"),
                ("allow_sms_subscribers", "on"),
                ("sms_calling_code", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("SMS needs a paid plan"), "{html}");
    assert!(html.contains("allow_sms_subscribers-error"), "{html}");

    // On the team plan it turns on, and takes a texting subscriber.
    sqlx::query(
        "insert into tenant_billing (tenant_id, plan, status) values ($1::uuid, 'team', 'active')",
    )
    .bind(&t.tenant_id)
    .execute(&app.admin)
    .await
    .unwrap();
    let (status, body) = patch(sms_on.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let texting = json!({"subscriber": {"phone_number": "+1 415 555 0123", "skip_confirmation_notification": true}});
    let (status, body) = post(&app, &t, &format!("{page}/subscribers"), texting).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Canceled: the page keeps texting its subscriber; no new one is taken.
    sqlx::query("update tenant_billing set status = 'canceled' where tenant_id = $1::uuid")
        .bind(&t.tenant_id)
        .execute(&app.admin)
        .await
        .unwrap();
    let another = json!({"subscriber": {"phone_number": "+1 415 555 0199", "skip_confirmation_notification": true}});
    let (status, body) = post(&app, &t, &format!("{page}/subscribers"), another).await;
    refused(status, &body, "texts_per_month", "free", 0);
    let (status, body) = app
        .call(reqwest::Method::GET, &page, Some(&t.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["allow_sms_subscribers"], true, "{body}");
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from subscribers where tenant_id = $1::uuid and phone_number is not null",
    )
    .bind(&t.tenant_id)
    .fetch_one(&app.admin)
    .await
    .unwrap();
    assert_eq!(n, 1);
    app.finish().await;
}

/// A plan's API rate and audit-log retention.
const PACED: &str = r#"
free = "free"

[plans.free]
name = "Free"
limits = { api_requests_per_minute = 5, audit_retention_days = 1 }

[plans.team]
name = "Team"
limits = { api_requests_per_minute = 1000, audit_retention_days = 30 }
prices = { month = "price_team_month" }
"#;

#[tokio::test]
async fn a_plan_sets_the_api_rate_of_each_person_or_key() {
    let app = TestApp::spawn_on(Infra {
        plans: Some(PACED),
        ..Infra::default()
    })
    .await;
    let t = app.signup().await;
    let other = app.signup().await;
    // A key of its own: an actor nothing else has counted yet.
    let (status, created) = post(
        &app,
        &t,
        "/v1/api-keys",
        json!({"api_key": {"name": "paced", "scope": "read"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let mut answers = Vec::new();
    for _ in 0..6 {
        let (status, _) = app
            .call(reqwest::Method::GET, "/v1/pages", Some(&key), None)
            .await;
        answers.push(status);
    }
    // The first five pass; the sixth is over the free plan's five a minute.
    assert!(
        answers[..5].iter().all(StatusCode::is_success),
        "{answers:?}"
    );
    assert_eq!(answers[5], StatusCode::TOO_MANY_REQUESTS, "{answers:?}");
    // Another tenant's person is counted on their own.
    let (status, _) = app
        .call(reqwest::Method::GET, "/v1/pages", Some(&other.token), None)
        .await;
    assert!(status.is_success(), "{status}");
    app.finish().await;
}

#[tokio::test]
async fn the_audit_log_shows_what_the_plan_keeps_and_hides_nothing_it_deleted() {
    let app = TestApp::spawn_on(Infra {
        plans: Some(PACED),
        ..Infra::default()
    })
    .await;
    let t = app.signup().await;
    // An entry from three days ago, and one from now.
    let (status, _) = post(
        &app,
        &t,
        "/v1/api-keys",
        json!({"api_key": {"name": "old"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    sqlx::query(
        "update audit_log set at = now() - interval '3 days'
          where tenant_id = $1::uuid and action = 'api_key.created'",
    )
    .bind(&t.tenant_id)
    .execute(&app.admin)
    .await
    .unwrap();
    let (status, _) = post(
        &app,
        &t,
        "/v1/api-keys",
        json!({"api_key": {"name": "new"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let names = |log: &Value| -> Vec<String> {
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "api_key.created")
            .map(|e| e["details"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // The free plan keeps a day: the old entry is not shown, even asked for.
    let (status, log) = app
        .call(
            reqwest::Method::GET,
            "/v1/audit-log?since=2000-01-01T00:00:00Z",
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(names(&log), ["new"]);
    // On a plan that keeps thirty days it is there again: nothing was deleted.
    sqlx::query(
        "insert into tenant_billing (tenant_id, plan, status) values ($1::uuid, 'team', 'active')",
    )
    .bind(&t.tenant_id)
    .execute(&app.admin)
    .await
    .unwrap();
    let (_, log) = app
        .call(reqwest::Method::GET, "/v1/audit-log", Some(&t.token), None)
        .await;
    assert_eq!(names(&log), ["new", "old"]);
    app.finish().await;
}
