//! The OpenAPI document: served, covering every route of the route tables
//! (and nothing else), with the error schema on every API operation; and
//! Swagger UI, served from the binary.
//!
//! Requests generated from it are `fuzz`'s.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// The keys of a path item that are operations.
const OPERATIONS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

const ERROR_SCHEMA: &str = "#/components/schemas/ErrorBody";

/// Follows a `$ref` into `components` (`#/components/<kind>/<name>`).
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => reference.strip_prefix("#/").map_or(&Value::Null, |path| {
            path.split('/').fold(doc, |node, key| &node[key])
        }),
        None => value,
    }
}

/// Every `$ref` in `value`, wherever it is.
fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                found.push(reference);
            }
            map.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

/// `(METHOD, path)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .flat_map(|(path, item)| {
            OPERATIONS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn openapi_document_covers_every_route_with_error_schemas() {
    let app = TestApp::spawn().await;
    let response = app.get("/v1/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(doc["info"]["title"], "Heliograph API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let routes: BTreeSet<(String, String)> = heliograph_api::health_routes()
        .into_iter()
        .chain(heliograph_api::v1_routes())
        .map(|(method, path)| (method.to_owned(), path.to_owned()))
        .collect();
    assert!(routes.len() > 60, "the route tables are read whole");
    let documented = operations(&doc);
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        unrouted.is_empty(),
        "operations in the OpenAPI document that no route serves: {unrouted:?}"
    );

    assert!(
        doc["components"]["schemas"]["ErrorBody"].is_object(),
        "the error schema is a component"
    );
    let mut refs = vec![];
    references(&doc, &mut refs);
    assert!(refs.len() > 100, "the document is read whole");
    let unresolved: BTreeSet<&str> = refs
        .into_iter()
        .filter(|r| resolve(&doc, &json!({"$ref": r})).is_null())
        .collect();
    assert!(
        unresolved.is_empty(),
        "unresolvable references: {unresolved:?}"
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["oauth"]["in"], "header");
    assert_eq!(schemes["oauth"]["name"], "Authorization");

    let mut operation_ids = BTreeSet::new();
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(
            operation_ids.insert(id.to_owned()),
            "{method} {path}: operationId `{id}` is not unique"
        );
        assert!(
            op["responses"]
                .as_object()
                .is_some_and(|r| r.keys().any(|s| s.starts_with('2'))),
            "{method} {path} documents no success response"
        );
        // Every `{param}` of the path is a documented path parameter.
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(&doc, p))
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(declared, in_path, "{method} {path}: path parameters");
        // Security requirements name declared schemes.
        for requirement in op["security"].as_array().into_iter().flatten() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(
                    schemes[scheme].is_object(),
                    "{method} {path}: unknown security scheme `{scheme}`"
                );
            }
        }
        if !path.starts_with("/v1/") {
            continue;
        }
        let error_responses: Vec<&str> = op["responses"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(status, _)| status.starts_with('4'))
            .filter(|(_, response)| {
                resolve(&doc, response)["content"]["application/json"]["schema"]["$ref"]
                    == ERROR_SCHEMA
            })
            .map(|(status, _)| status.as_str())
            .collect();
        assert!(
            !error_responses.is_empty(),
            "{method} {path} documents no 4xx response with the error schema"
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn openapi_swagger_ui_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let page = app.get("/v1/docs/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page loads nothing from elsewhere: {html}"
    );

    let script = app.get("/v1/docs/swagger-ui-bundle.js", None).await;
    assert_eq!(script.status(), StatusCode::OK);
    let init = app.get("/v1/docs/swagger-initializer.js", None).await;
    assert_eq!(init.status(), StatusCode::OK);
    let init = init.text().await.unwrap();
    assert!(init.contains("/v1/openapi.json"), "{init}");
    assert!(init.contains(r#""validatorUrl": "none""#), "{init}");

    let bare = app.get("/v1/docs", None).await;
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()[reqwest::header::LOCATION], "/v1/docs/");
    app.finish().await;
}

#[tokio::test]
async fn openapi_request_examples_are_accepted_as_they_stand() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let doc: Value = app
        .get("/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(example) = op["requestBody"]["content"]["application/json"].get("example")
            else {
                continue;
            };
            let concrete = path.replace("{page_id}", &owner.page_id);
            assert!(
                !concrete.contains('{'),
                "{method} {path}: an example on a path with ids"
            );
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = app
                .call(method.clone(), &concrete, Some(&owner.token), Some(example))
                .await;
            assert!(
                status.is_success(),
                "{method} {path}: the documented example is refused: {status} {body}"
            );
            tried += 1;
        }
    }
    assert!(
        tried >= 10,
        "the creating operations carry examples ({tried})"
    );
    app.finish().await;
}
