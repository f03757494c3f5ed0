//! Statuspage's API conventions: form bodies, `.json` paths, pagination
//! and filters; and the uptime endpoints built on the status history.
//!
//! Each resource's own rules are tested with it (`status_model`,
//! `lifecycle`).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn form_bodies_and_json_suffixes_work_as_json_does() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let response = app
        .client
        .post(app.url(&format!("/v1/pages/{}/components.json", t.page_id)))
        .bearer_auth(&t.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("component[name]=Web+app&component[status]=partial_outage&component[showcase]=false")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], "Web app");
    assert_eq!(body["status"], "partial_outage");
    assert_eq!(body["showcase"], false);
    let id = body["id"].as_str().unwrap();

    let response = app
        .client
        .post(app.url(&format!("/v1/pages/{}/incidents.json", t.page_id)))
        .bearer_auth(&t.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("incident[name]=Slow&incident[components][{id}]=degraded_performance&incident[deliver_notifications]=false"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let (status, one) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/components/{id}.json", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["status"], "degraded_performance");

    let response = app
        .client
        .post(app.url(&format!("/v1/pages/{}/components", t.page_id)))
        .bearer_auth(&t.token)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    app.finish().await;
}

#[tokio::test]
async fn lists_are_paginated_with_a_link_header_and_a_total_and_filtered() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    for name in ["Alpha API", "Beta", "Gamma API", "Delta", "Epsilon API"] {
        app.component(&t, name).await;
    }
    let base = format!("/v1/pages/{}/components", t.page_id);
    let response = app
        .client
        .get(app.url(&format!("{base}?per_page=2&page=2")))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-total-count"], "5");
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    assert!(link.contains("page=3>; rel=\"next\""), "{link}");
    assert!(link.contains("page=1>; rel=\"prev\""), "{link}");
    assert!(link.contains("page=3>; rel=\"last\""), "{link}");
    assert!(link.contains("per_page=2"), "{link}");
    let page: Value = response.json().await.unwrap();
    let names: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Gamma API", "Delta"]);

    let (_, found) = app
        .call(Method::GET, &format!("{base}?q=api"), Some(&t.token), None)
        .await;
    assert_eq!(found.as_array().unwrap().len(), 3);
    let (_, none) = app
        .call(Method::GET, &format!("{base}?q=%25"), Some(&t.token), None)
        .await;
    assert_eq!(none.as_array().unwrap().len(), 0, "wildcards are literal");
    app.call(
        Method::PATCH,
        &format!("{base}/{}", found[0]["id"].as_str().unwrap()),
        Some(&t.token),
        Some(&json!({"component": {"status": "major_outage"}})),
    )
    .await;
    let (_, down) = app
        .call(
            Method::GET,
            &format!("{base}?status=major_outage,partial_outage"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(down.as_array().unwrap().len(), 1);

    for query in ["per_page=0", "per_page=101", "page=0", "status=fine"] {
        let (status, body) = app
            .call(
                Method::GET,
                &format!("{base}?{query}"),
                Some(&t.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    }
    let (_, incidents) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/incidents?status=resolved", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(incidents, json!([]));
    app.finish().await;
}

#[tokio::test]
async fn uptime_counts_outages_from_the_history_and_leaves_maintenance_out() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let api = app.component(&t, "API").await;
    let web = app.component(&t, "Website").await;
    let (_, group) = app
        .post(
            &format!("/v1/pages/{}/component-groups", t.page_id),
            Some(&t.token),
            &json!({"component_group": {"name": "Platform", "components": [api, web]}}),
        )
        .await;
    // A history written as if it had happened: both components since
    // 2026-10-01; the API down for 2 hours on 10-10 and partially for 10
    // hours on 10-11.
    sqlx::query("update components set created_at = '2026-10-01T00:00:00Z'")
        .execute(&app.admin)
        .await
        .unwrap();
    for (at, old, new) in [
        ("2026-10-10T10:00:00Z", "operational", "major_outage"),
        ("2026-10-10T12:00:00Z", "major_outage", "operational"),
        ("2026-10-11T00:00:00Z", "operational", "partial_outage"),
        ("2026-10-11T10:00:00Z", "partial_outage", "operational"),
    ] {
        sqlx::query(
            "insert into component_status_changes (tenant_id, component_id, old_status, new_status, cause, changed_at)
             values ($1::uuid, $2::uuid, $3, $4, 'manual', $5::timestamptz)",
        )
        .bind(&t.tenant_id)
        .bind(&api)
        .bind(old)
        .bind(new)
        .bind(at)
        .execute(&app.admin)
        .await
        .unwrap();
    }
    let path = format!(
        "/v1/pages/{}/components/{api}/uptime?start=2026-10-10&end=2026-10-11",
        t.page_id
    );
    let (status, u) = app.call(Method::GET, &path, Some(&t.token), None).await;
    assert_eq!(status, StatusCode::OK, "{u}");
    assert_eq!(u["range_start"], "2026-10-10T00:00:00.000Z");
    assert_eq!(u["range_end"], "2026-10-12T00:00:00.000Z");
    assert_eq!(u["major_outage"], 7200);
    assert_eq!(u["partial_outage"], 36000);
    // 48 h considered; down = 2 h + 0.3 × 10 h = 5 h.
    let expected = 100.0 * (1.0 - 5.0 / 48.0);
    assert!(
        (u["uptime_percentage"].as_f64().unwrap() - expected).abs() < 1e-3,
        "{u}"
    );

    // The group adds its members up: 96 h considered, 5 h down.
    let (status, g) = app
        .call(
            Method::GET,
            &format!(
                "/v1/pages/{}/component-groups/{}/uptime?start=2026-10-10&end=2026-10-11",
                t.page_id,
                group["id"].as_str().unwrap()
            ),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    let expected = 100.0 * (1.0 - 5.0 / 96.0);
    assert!(
        (g["uptime_percentage"].as_f64().unwrap() - expected).abs() < 1e-3,
        "{g}"
    );

    // A page weight of 0 makes partial outage count as up.
    app.call(
        Method::PATCH,
        &format!("/v1/pages/{}", t.page_id),
        Some(&t.token),
        Some(&json!({"page": {"uptime_partial_weight": 0}})),
    )
    .await;
    let (_, u) = app.call(Method::GET, &path, Some(&t.token), None).await;
    let expected = 100.0 * (1.0 - 2.0 / 48.0);
    assert!(
        (u["uptime_percentage"].as_f64().unwrap() - expected).abs() < 1e-3,
        "{u}"
    );

    let (_, daily) = app
        .call(
            Method::GET,
            &format!("/v1/pages/{}/uptime", t.page_id),
            Some(&t.token),
            None,
        )
        .await;
    let days = daily["components"][0]["days"].as_array().unwrap();
    assert_eq!(days.len(), 90);
    assert_eq!(daily["components"].as_array().unwrap().len(), 2);

    for query in [
        "start=2026-10-12&end=2026-10-11",
        "start=2024-01-01&end=2026-01-02",
        "start=yesterday",
    ] {
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/v1/pages/{}/components/{api}/uptime?{query}", t.page_id),
                Some(&t.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    }
    app.finish().await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_opens_nothing_twice() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let path = format!("/v1/pages/{}/incidents", t.page_id);
    let send = |key: &'static str, name: &'static str| {
        app.client
            .post(app.url(&path))
            .bearer_auth(&t.token)
            .header("idempotency-key", key)
            .json(&json!({"incident": {"name": name}}))
            .send()
    };
    let first = send("retry-1", "Down").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_body = first.text().await.unwrap();
    let again = send("retry-1", "Down").await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body, "the same bytes");
    assert_eq!(app.count("select count(*) from incidents").await, 1);

    // The same key with another body is refused; a new key is a new request.
    let other = send("retry-1", "Different").await.unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["error"]["fields"][0]["code"], "reused");
    assert_eq!(
        send("retry-2", "Down").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(app.count("select count(*) from incidents").await, 2);

    // A refused request is replayed as refused, and changes nothing.
    let bad = app
        .client
        .post(app.url(&path))
        .bearer_auth(&t.token)
        .header("idempotency-key", "retry-3")
        .json(&json!({"incident": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Another tenant's actor with the same key is another request.
    let u = app.signup().await;
    let theirs = app
        .client
        .post(app.url(&format!("/v1/pages/{}/incidents", u.page_id)))
        .bearer_auth(&u.token)
        .header("idempotency-key", "retry-1")
        .json(&json!({"incident": {"name": "Down"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), StatusCode::CREATED);
    assert!(theirs.headers().get("idempotency-replayed").is_none());

    let garbage = app
        .client
        .post(app.url(&path))
        .bearer_auth(&t.token)
        .header("idempotency-key", "")
        .json(&json!({"incident": {"name": "Down"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("select count(*) from incidents").await, 3);

    // Past the window the worker's clock forgets the keys.
    sqlx::query("update idempotency_keys set created_at = now() - interval '25 hours'")
        .execute(&app.admin)
        .await
        .unwrap();
    heliograph_worker::tick_maintenance(&app.ctx, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(app.count("select count(*) from idempotency_keys").await, 0);
    app.finish().await;
}
