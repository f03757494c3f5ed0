//! The OpenAPI document: served, covering every route of the route tables
//! (and nothing else), with the error schema on every API operation; a
//! valid OpenAPI 3.1 document, which real answers match; and Swagger UI,
//! served from the binary. Also: a method a path does not serve answers 405.
//!
//! Requests generated from it are `fuzz`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, unique_email, unique_ip};

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

/// The Python of the virtualenv holding the document's validators:
/// `OPENAPI_VALIDATOR_PYTHON`, or the one `deploy/dev test` installs under
/// `.local/openapi-validator` (pinned in `load-tests/openapi/requirements.txt`).
fn validator_python() -> PathBuf {
    if let Some(python) = std::env::var_os("OPENAPI_VALIDATOR_PYTHON") {
        return python.into();
    }
    let installed = workspace().join(".local/openapi-validator/bin/python");
    assert!(
        installed.exists(),
        "the OpenAPI validators are not installed: run `deploy/dev test`, which installs \
         load-tests/openapi/requirements.txt into .local/openapi-validator (or set \
         OPENAPI_VALIDATOR_PYTHON to a Python that has them)"
    );
    installed
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `load-tests/openapi/check.py` with `args` (files written to a
/// folder of the call's own); fails the test with its report unless it passes.
async fn check(args: &[&str], files: &[(&str, &Value)]) {
    let dir = std::env::temp_dir().join(format!("hg-openapi-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, value) in files {
        std::fs::write(dir.join(name), serde_json::to_vec(value).unwrap()).unwrap();
    }
    let mut command = Command::new(validator_python());
    command
        .current_dir(&dir)
        .arg(workspace().join("load-tests/openapi/check.py"))
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("the validator runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "check.py {args:?}:\n{printed}");
    drop(std::fs::remove_dir_all(&dir));
}

#[tokio::test]
async fn openapi_document_is_a_valid_openapi_3_1_document() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .get("/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    check(&["document", "doc.json"], &[("doc.json", &doc)]).await;
    app.finish().await;
}

/// Every method a route table does not give a path answers 405 there, with
/// `Allow` naming exactly the methods it does, and the JSON error body.
#[tokio::test]
async fn openapi_undeclared_methods_answer_405_with_the_methods_allowed() {
    let app = TestApp::spawn().await;
    let mut served: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (method, path) in heliograph_api::health_routes()
        .into_iter()
        .chain(heliograph_api::v1_routes())
    {
        served.entry(path).or_default().insert(method);
    }
    let id = Uuid::new_v4().to_string();
    let mut tried = 0;
    for (path, methods) in &served {
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { id.as_str() } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if methods.contains(method) {
                continue;
            }
            let response = app
                .client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(&concrete),
                )
                .header("x-forwarded-for", unique_ip())
                .json(&json!({}))
                .send()
                .await
                .expect("the API answers");
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let allow: BTreeSet<String> = response.headers()[reqwest::header::ALLOW]
                .to_str()
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            let expected: BTreeSet<String> = methods.iter().map(|m| (*m).to_owned()).collect();
            assert_eq!(allow, expected, "{method} {path}: Allow");
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body["error"]["code"], "method_not_allowed",
                "{method} {path}"
            );
            tried += 1;
        }
    }
    assert!(
        tried > 150,
        "every path was tried with every other method ({tried})"
    );
    app.finish().await;
}

/// Real answers, recorded as `{method, path, status, body}` with the path
/// as the document names it.
struct Samples {
    page: String,
    token: String,
    taken: Vec<Value>,
}

impl Samples {
    /// Sends `method` to `template` (its `{page_id}` and the `ids` in
    /// order filled in), records the answer and returns its body.
    async fn take(
        &mut self,
        app: &TestApp,
        method: Method,
        template: &str,
        ids: &[&str],
        body: Option<&Value>,
    ) -> Value {
        let mut path = template.replace("{page_id}", &self.page);
        for id in ids {
            let start = path.find('{').expect("a parameter per id");
            let end = start + path[start..].find('}').unwrap();
            path.replace_range(start..=end, id);
        }
        let (status, answer) = app
            .call(method.clone(), &path, Some(&self.token), body)
            .await;
        assert!(status.as_u16() < 500, "{method} {path}: {status} {answer}");
        self.taken.push(json!({
            "method": method.as_str(),
            "path": template,
            "status": status.as_u16(),
            "body": answer,
        }));
        answer
    }
}

#[tokio::test]
async fn openapi_real_answers_match_the_documented_schemas() {
    let app = TestApp::spawn().await;
    let owner = app.signup().await;
    let mut s = Samples {
        page: owner.page_id.clone(),
        token: owner.token.clone(),
        taken: vec![],
    };
    let p = "/v1/pages/{page_id}";
    // Pages.
    s.take(&app, Method::GET, "/v1/pages", &[], None).await;
    s.take(&app, Method::GET, p, &[], None).await;
    // Components and groups.
    let component = s
        .take(
            &app,
            Method::POST,
            &format!("{p}/components"),
            &[],
            Some(&json!({"component": {"name": "API", "description": "The API"}})),
        )
        .await;
    let component = component["id"].as_str().unwrap().to_owned();
    s.take(&app, Method::GET, &format!("{p}/components"), &[], None)
        .await;
    s.take(
        &app,
        Method::GET,
        &format!("{p}/components/{{id}}"),
        &[&component],
        None,
    )
    .await;
    s.take(
        &app,
        Method::GET,
        &format!("{p}/components/{{id}}/uptime"),
        &[&component],
        None,
    )
    .await;
    let group = s
        .take(
            &app,
            Method::POST,
            &format!("{p}/component-groups"),
            &[],
            Some(&json!({"component_group": {"name": "Core", "components": [component]}})),
        )
        .await;
    let group = group["id"].as_str().unwrap().to_owned();
    s.take(
        &app,
        Method::GET,
        &format!("{p}/component-groups"),
        &[],
        None,
    )
    .await;
    s.take(
        &app,
        Method::DELETE,
        &format!("{p}/component-groups/{{id}}"),
        &[&group],
        None,
    )
    .await;
    s.take(&app, Method::GET, &format!("{p}/uptime"), &[], None)
        .await;
    // Subscribers.
    let subscriber = s
        .take(
            &app,
            Method::POST,
            &format!("{p}/subscribers"),
            &[],
            Some(&json!({"subscriber": {"email": unique_email("sampled"),
                "skip_confirmation_notification": true}})),
        )
        .await;
    let subscriber = subscriber["id"].as_str().unwrap().to_owned();
    s.take(&app, Method::GET, &format!("{p}/subscribers"), &[], None)
        .await;
    s.take(
        &app,
        Method::GET,
        &format!("{p}/subscribers/count"),
        &[],
        None,
    )
    .await;
    // Incidents and their updates.
    let incident = s
        .take(
            &app,
            Method::POST,
            &format!("{p}/incidents"),
            &[],
            Some(
                &json!({"incident": {"name": "Errors", "status": "investigating",
                "body": "Looking", "components": {component.clone(): "major_outage"}}}),
            ),
        )
        .await;
    let incident_id = incident["id"].as_str().unwrap().to_owned();
    let update = incident["incident_updates"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.take(
        &app,
        Method::PATCH,
        &format!("{p}/incidents/{{id}}"),
        &[&incident_id],
        Some(&json!({"incident": {"status": "identified", "body": "Found it"}})),
    )
    .await;
    s.take(
        &app,
        Method::PATCH,
        &format!("{p}/incidents/{{id}}/incident_updates/{{update_id}}"),
        &[&incident_id, &update],
        Some(&json!({"incident_update": {"body": "Looking hard"}})),
    )
    .await;
    s.take(&app, Method::GET, &format!("{p}/incidents"), &[], None)
        .await;
    s.take(
        &app,
        Method::GET,
        &format!("{p}/incidents/unresolved"),
        &[],
        None,
    )
    .await;
    s.take(
        &app,
        Method::POST,
        &format!("{p}/incidents"),
        &[],
        Some(
            &json!({"incident": {"name": "Upgrade", "status": "scheduled",
            "scheduled_for": "2099-01-01T00:00:00Z", "scheduled_until": "2099-01-01T02:00:00Z"}}),
        ),
    )
    .await;
    // Templates.
    s.take(
        &app,
        Method::POST,
        &format!("{p}/incident_templates"),
        &[],
        Some(&json!({"template": {"name": "Down", "title": "Down", "body": "We are down"}})),
    )
    .await;
    s.take(
        &app,
        Method::GET,
        &format!("{p}/incident_templates"),
        &[],
        None,
    )
    .await;
    // The team and its keys.
    s.take(&app, Method::GET, "/v1/me", &[], None).await;
    s.take(&app, Method::GET, "/v1/members", &[], None).await;
    s.take(
        &app,
        Method::POST,
        "/v1/invitations",
        &[],
        Some(&json!({"invitation": {"email": unique_email("invited"), "role": "editor"}})),
    )
    .await;
    s.take(&app, Method::GET, "/v1/invitations", &[], None)
        .await;
    s.take(
        &app,
        Method::POST,
        "/v1/api-keys",
        &[],
        Some(&json!({"api_key": {"name": "CI", "scope": "read_write"}})),
    )
    .await;
    s.take(&app, Method::GET, "/v1/api-keys", &[], None).await;
    s.take(&app, Method::GET, "/v1/audit-log", &[], None).await;
    // Deliveries, once the worker has sent the notifications.
    app.drain().await;
    let events = s
        .take(&app, Method::GET, &format!("{p}/events"), &[], None)
        .await;
    let event = events[0]["id"].as_str().unwrap().to_owned();
    s.take(
        &app,
        Method::GET,
        &format!("{p}/events/{{id}}/deliveries"),
        &[&event],
        None,
    )
    .await;
    let log = s
        .take(&app, Method::GET, &format!("{p}/deliveries"), &[], None)
        .await;
    let delivery = log["deliveries"][0]["id"].as_str().unwrap().to_owned();
    s.take(
        &app,
        Method::GET,
        &format!("{p}/deliveries/{{id}}"),
        &[&delivery],
        None,
    )
    .await;
    s.take(
        &app,
        Method::DELETE,
        &format!("{p}/subscribers/{{id}}"),
        &[&subscriber],
        None,
    )
    .await;
    // Errors: not found, invalid, conflict.
    s.take(
        &app,
        Method::GET,
        &format!("{p}/components/{{id}}"),
        &[&group],
        None,
    )
    .await;
    s.take(
        &app,
        Method::POST,
        &format!("{p}/components"),
        &[],
        Some(&json!({"component": {"name": ""}})),
    )
    .await;
    s.take(
        &app,
        Method::POST,
        &format!("{p}/incident_templates"),
        &[],
        Some(&json!({"template": {"name": "Down", "title": "Again"}})),
    )
    .await;
    let statuses: BTreeSet<u64> = s
        .taken
        .iter()
        .filter_map(|t| t["status"].as_u64())
        .collect();
    for expected in [200, 201, 404, 409, 422] {
        assert!(
            statuses.contains(&expected),
            "a {expected} is sampled: {statuses:?}"
        );
    }

    let doc: Value = app
        .get("/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let samples = Value::Array(s.taken);
    check(
        &["responses", "doc.json", "samples.json"],
        &[("doc.json", &doc), ("samples.json", &samples)],
    )
    .await;
    app.finish().await;
}

/// The schema a `$ref` names, or the node itself.
fn schema_of<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    let node = resolve(doc, node);
    if node["$ref"].is_string() {
        schema_of(doc, node)
    } else {
        node
    }
}

/// A body left empty is refused naming each missing field; every field the
/// server names so is one the document declares required (in the resource's
/// own object for wrapped bodies), on every operation with a body and no id
/// in its path but the page's.
#[tokio::test]
async fn openapi_required_body_fields_are_those_the_server_requires() {
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
        let concrete = path.replace("{page_id}", &owner.page_id);
        if concrete.contains('{') {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let Some(media) = op["requestBody"]["content"].get("application/json") else {
                continue;
            };
            let outer = schema_of(&doc, &media["schema"]);
            // A wrapped body (`{"component": {...}}`) is checked inside its wrapper.
            let wrapper = outer["required"]
                .as_array()
                .filter(|r| r.len() == 1)
                .and_then(|r| r[0].as_str())
                .filter(|key| schema_of(&doc, &outer["properties"][key])["type"] == "object");
            let (inner, body) = match wrapper {
                Some(key) => (schema_of(&doc, &outer["properties"][key]), json!({key: {}})),
                None => (outer, json!({})),
            };
            let required: BTreeSet<&str> = inner["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            // A subscriber is one of an address, a number or an endpoint: a
            // choice its schema's description states, not a required field.
            if op["operationId"] == "create_subscriber" {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(method.clone(), app.url(&concrete))
                .bearer_auth(&owner.token)
                .header("x-forwarded-for", unique_ip())
                .json(&body)
                .send()
                .await
                .expect("the API answers");
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            let missing: BTreeSet<&str> = answer["error"]["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|f| f["code"] == "missing")
                .filter_map(|f| f["field"].as_str())
                .collect();
            let undeclared: Vec<&&str> = missing.difference(&required).collect();
            assert!(
                undeclared.is_empty(),
                "{method} {path}: the server requires {undeclared:?}, the document only \
                 {required:?} ({status} {answer})"
            );
            tried += 1;
        }
    }
    assert!(
        tried >= 15,
        "every operation with a body was tried ({tried})"
    );
    app.finish().await;
}
