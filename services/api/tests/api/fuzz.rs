//! The whole management API, fuzzed from its own OpenAPI document by
//! schemathesis, a property-based tester from PyPI (`deploy/dev test`
//! installs the version pinned in `load-tests/fuzz/requirements.txt` into
//! `.local/schemathesis` and names it in `SCHEMATHESIS_BIN`).
//!
//! Two runs, each against a tenant stocked with data of every kind:
//! - every operation, with the tenant's own tokens and real ids in the path:
//!   no 5xx, and every status, content type and body as documented (errors
//!   included: every 4xx is the JSON `ErrorBody`);
//! - every operation with path parameters, with tenant A's tokens and
//!   tenant B's real ids: never a 2xx.
//!
//! Examples per operation are bounded and the seed is fixed, so a run takes
//! minutes and generates the same requests each time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use heliograph_testkit::SmtpSink;

use crate::helpers::{Infra, PASSWORD, Tenant, TestApp, unique_email, unique_ip, unique_slug};

/// Cases generated per operation and phase (the coverage phase adds its
/// boundary cases on top).
const EXAMPLES_PER_OPERATION: u32 = 20;

/// The fuzzer's seed: the same requests on every run.
const SEED: &str = "13009";

/// People with the owner's role whose tokens take turns across operations:
/// the API lets one person make 600 requests a minute, and the coverage
/// phase sends an operation's cases in a burst.
const OWNERS: usize = 20;

/// The checks of the run over the tenant's own resources: no 5xx; every
/// status, content type, body and header as documented. Not
/// `positive_data_acceptance`: the document does not hold every rule of the
/// bodies (lengths, formats of ids in them) nor uptime's range rules
/// (`start` before `end`, a year at most), so a schema-valid request may
/// rightly get 422; GET operations are held to it through the
/// `validation_mismatch` warning instead (see `run`).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

/// The check of `load-tests/fuzz/hooks.py` for the cross-tenant run.
const CROSS_TENANT_CHECK: &str = "another_tenants_ids_never_succeed";

/// The keys of a path item that are operations.
const OPERATIONS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// How many routes the route tables hold (`filter`ed), which the OpenAPI
/// test checks the document covers one to one.
fn routes(filter: impl Fn(&str) -> bool) -> u64 {
    let all = heliograph_api::health_routes()
        .into_iter()
        .chain(heliograph_api::v1_routes());
    all.filter(|(_, path)| filter(path)).count() as u64
}

/// One operation of the document.
struct Operation {
    id: String,
    method: String,
    path: String,
}

/// Every operation of the document the API serves.
async fn operations(app: &TestApp) -> Vec<Operation> {
    let response = app.get("/v1/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    let mut all = vec![];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in OPERATIONS {
            if let Some(op) = item.get(method) {
                all.push(Operation {
                    id: op["operationId"]
                        .as_str()
                        .expect("an operationId")
                        .to_owned(),
                    method: method.to_uppercase(),
                    path: path.clone(),
                });
            }
        }
    }
    all
}

/// The ids of a stocked tenant, by kind: `component` is kept for reading
/// and changing, `component!` is there to be deleted.
struct Stock(BTreeMap<&'static str, String>);

impl Stock {
    fn get(&self, kind: &str) -> &str {
        self.0
            .get(kind)
            .unwrap_or_else(|| panic!("the stock has no {kind}"))
    }

    /// The value of every path parameter of an operation: the resource the
    /// path names, or, where the operation deletes it, one made to be deleted.
    fn path_values(&self, op: &Operation) -> Vec<(String, String)> {
        let segments: Vec<&str> = op.path.split('/').collect();
        let last = segments.len() - 1;
        let mut values = vec![];
        for (i, segment) in segments.iter().enumerate() {
            let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                continue;
            };
            let kind = match (name, segments[i - 1]) {
                ("page_id", _) => "page",
                ("user_id", _) => "member",
                ("update_id", _) => "update",
                ("id", "incidents") if op.path.contains("/postmortem") => "postmortem_incident",
                ("id", "api-keys") => "api_key",
                ("id", "invitations") => "invitation",
                ("id", "components") => "component",
                ("id", "component-groups") => "group",
                ("id", "subscribers") => "subscriber",
                ("id", "deliveries") => "delivery",
                ("id", "events") => "event",
                ("id", "incidents") => "incident",
                ("id", "incident_templates") => "template",
                ("id", "domains") => "domain",
                (name, before) => panic!(
                    "{} {}: no stocked resource for {{{name}}} after `{before}`; add one to `stock`",
                    op.method, op.path
                ),
            };
            let doomed = format!("{kind}!");
            let value = if op.method == "DELETE" && i == last && self.0.contains_key(&*doomed) {
                self.get(&doomed)
            } else {
                self.get(kind)
            };
            values.push((name.to_owned(), value.to_owned()));
        }
        values
    }
}

/// The API and worker, sending email to an SMTP server of the test's own:
/// the fuzzer's addresses are whatever it generates, and the mail catcher
/// the other tests share is not for them.
async fn spawn() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await.expect("an SMTP sink");
    let app = TestApp::spawn_on(Infra {
        smtp_url: Some(sink.url()),
        ..Infra::default()
    })
    .await;
    (app, sink)
}

/// POSTs as the tenant's owner; answers the new resource.
async fn create(app: &TestApp, t: &Tenant, path: &str, body: Value) -> Value {
    let (status, answer) = app.post(path, Some(&t.token), &body).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// A user id, from the token of its session.
async fn user_id(app: &TestApp, token: &str) -> String {
    let (status, me) = app.call(Method::GET, "/v1/me", Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me["user"]["id"].as_str().unwrap().to_owned()
}

/// Stocks `t` with every kind of resource a path can name (two of each
/// kind that can be deleted), with notifications delivered and logged.
async fn stock(app: &TestApp, t: &Tenant) -> Stock {
    let p = format!("/v1/pages/{}", t.page_id);
    let mut ids = BTreeMap::new();
    let id = |v: &Value| v["id"].as_str().expect("an id").to_owned();
    ids.insert("page", t.page_id.clone());
    let component = app.component(t, "API").await;
    ids.insert("component!", app.component(t, "Doomed").await);
    for (kind, name) in [("group", "Platform"), ("group!", "Doomed")] {
        let body = json!({"component_group": {"name": name}});
        let group = create(app, t, &format!("{p}/component-groups"), body).await;
        ids.insert(kind, id(&group));
    }
    for kind in ["subscriber", "subscriber!"] {
        let email = unique_email("fuzzed");
        let body = json!({"subscriber": {"email": email, "skip_confirmation_notification": true}});
        let subscriber = create(app, t, &format!("{p}/subscribers"), body).await;
        ids.insert(kind, id(&subscriber));
    }
    // Notifies the subscribers: events and deliveries to look at.
    let body = json!({"incident": {"name": "Errors", "status": "investigating", "body": "Looking",
        "components": {component.clone(): "major_outage"}}});
    let incident = create(app, t, &format!("{p}/incidents"), body).await;
    ids.insert("incident", id(&incident));
    ids.insert(
        "update",
        incident["incident_updates"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let body = json!({"incident": {"name": "Doomed", "deliver_notifications": false}});
    ids.insert(
        "incident!",
        id(&create(app, t, &format!("{p}/incidents"), body).await),
    );
    let body =
        json!({"incident": {"name": "Past", "status": "resolved", "deliver_notifications": false}});
    let past = id(&create(app, t, &format!("{p}/incidents"), body).await);
    let (status, answer) = app
        .call(
            Method::PUT,
            &format!("{p}/incidents/{past}/postmortem"),
            Some(&t.token),
            Some(&json!({"postmortem": {"body_draft": "What happened"}})),
        )
        .await;
    assert!(status.is_success(), "a postmortem draft: {answer}");
    ids.insert("postmortem_incident", past);
    ids.insert("component", component);
    for kind in ["template", "template!"] {
        let body = json!({"template": {"name": unique_slug("tpl"), "title": "Down"}});
        let template = create(app, t, &format!("{p}/incident_templates"), body).await;
        ids.insert(kind, id(&template));
    }
    for kind in ["domain", "domain!"] {
        let hostname = format!("{}.customer.test", unique_slug("fuzz"));
        let body = json!({"domain": {"hostname": hostname}});
        let domain = create(app, t, &format!("{p}/domains"), body).await;
        ids.insert(kind, id(&domain));
    }
    for kind in ["api_key", "api_key!"] {
        let key = create(
            app,
            t,
            "/v1/api-keys",
            json!({"api_key": {"name": kind, "scope": "read"}}),
        )
        .await;
        ids.insert(kind, id(&key));
    }
    for kind in ["invitation", "invitation!"] {
        let email = unique_email("invited");
        let body = json!({"invitation": {"email": email, "role": "viewer"}});
        let invitation = create(app, t, "/v1/invitations", body).await;
        ids.insert(kind, id(&invitation));
    }
    for kind in ["member", "member!"] {
        let person = app.signup().await;
        let token = app.join(t, &person, "viewer").await;
        ids.insert(kind, user_id(app, &token).await);
    }
    app.drain().await;
    let (status, events) = app
        .call(Method::GET, &format!("{p}/events"), Some(&t.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    ids.insert("event", id(&events[0]));
    let (status, log) = app
        .call(
            Method::GET,
            &format!("{p}/deliveries"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    ids.insert("delivery", id(&log["deliveries"][0]));
    Stock(ids)
}

/// Session tokens of `t`'s owner and of `OWNERS - 1` more people made
/// owners of `t` (each signing in from an address of its own: sign-ins are
/// limited per address).
async fn owner_tokens(app: &TestApp, t: &Tenant) -> Vec<String> {
    let mut tokens = vec![t.token.clone()];
    for _ in 1..OWNERS {
        let person = app.signup().await;
        sqlx::query(
            "insert into memberships (tenant_id, user_id, role)
             select $1::uuid, user_id, 'owner' from memberships where tenant_id = $2::uuid",
        )
        .bind(&t.tenant_id)
        .bind(&person.tenant_id)
        .execute(&app.admin)
        .await
        .unwrap();
        tokens.push(sign_in(app, &person, Some(&t.tenant_id)).await);
    }
    tokens
}

/// A new session of `person`, for `tenant` (or their own), from an
/// address of its own.
async fn sign_in(app: &TestApp, person: &Tenant, tenant: Option<&str>) -> String {
    let response = app
        .client
        .post(app.url("/v1/sessions"))
        .header("x-forwarded-for", unique_ip())
        .json(&json!({"email": person.email, "password": PASSWORD,
            "tenant_id": tenant.unwrap_or(&person.tenant_id)}))
        .send()
        .await
        .expect("the API answers");
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// A TOML string (a JSON string is one, for what ids and tokens hold).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// Where the subscribers the fuzzer makes point their webhooks: a closed
/// port on loopback. The worker sends their confirmation pings, and a
/// generated URL could name any host: the run must reach nothing off this
/// machine (not even a name server).
const LOOPBACK_ENDPOINTS: [&str; 3] = [
    "http://127.0.0.1:9/fuzz/a",
    "http://127.0.0.1:9/fuzz/b",
    "http://[::1]:9/fuzz/c",
];

/// A schemathesis configuration: per operation, its token (they take turns),
/// a client address of its own (the API limits requests per address), the
/// values of its path parameters, and [`LOOPBACK_ENDPOINTS`] for any webhook.
fn config(
    ops: &[&Operation],
    token_of: impl Fn(usize, &Operation) -> String,
    values_of: impl Fn(&Operation) -> Vec<(String, String)>,
) -> String {
    let mut toml = String::new();
    let endpoints: Vec<String> = LOOPBACK_ENDPOINTS.iter().map(|e| toml_str(e)).collect();
    writeln!(toml, "[dictionaries.loopback]").unwrap();
    writeln!(toml, "values = [{}]\n", endpoints.join(", ")).unwrap();
    for (i, op) in ops.iter().enumerate() {
        let mut parameters: Vec<String> = values_of(op)
            .iter()
            .map(|(name, value)| {
                format!(
                    "{} = {}",
                    toml_str(&format!("path.{name}")),
                    toml_str(value)
                )
            })
            .collect();
        if op.id == "create_subscriber" {
            parameters
                .push(r#""body.subscriber.endpoint" = { dictionary = "loopback" }"#.to_owned());
        }
        writeln!(toml, "[[operations]]").unwrap();
        writeln!(toml, "include-operation-id = {}", toml_str(&op.id)).unwrap();
        writeln!(
            toml,
            "headers = {{ Authorization = {}, X-Forwarded-For = {} }}",
            toml_str(&format!("Bearer {}", token_of(i, op))),
            toml_str(&unique_ip()),
        )
        .unwrap();
        if !parameters.is_empty() {
            writeln!(toml, "parameters = {{ {} }}", parameters.join(", ")).unwrap();
        }
        writeln!(toml).unwrap();
    }
    toml
}

/// The schemathesis executable: `SCHEMATHESIS_BIN`, or the one
/// `deploy/dev test` installed under `.local`.
fn schemathesis() -> PathBuf {
    if let Some(bin) = std::env::var_os("SCHEMATHESIS_BIN") {
        return bin.into();
    }
    let installed = workspace().join(".local/schemathesis/bin/schemathesis");
    assert!(
        installed.exists(),
        "schemathesis is not installed: run `deploy/dev test`, which installs it into \
         .local/schemathesis (or set SCHEMATHESIS_BIN to a schemathesis {} executable)",
        pinned_version()
    );
    installed
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The version `load-tests/fuzz/requirements.txt` pins.
fn pinned_version() -> String {
    let pins = std::fs::read_to_string(workspace().join("load-tests/fuzz/requirements.txt"))
        .expect("load-tests/fuzz/requirements.txt");
    pins.lines()
        .find_map(|l| l.strip_prefix("schemathesis=="))
        .expect("schemathesis is pinned")
        .to_owned()
}

/// What one run found.
struct Outcome {
    operations: u64,
    cases: u64,
}

/// Runs schemathesis over `ops` with `checks`; fails the test, with the
/// fuzzer's own report, on any failure, error or untested operation.
async fn run(
    app: &TestApp,
    label: &str,
    ops: &[&Operation],
    config: String,
    checks: &str,
) -> Outcome {
    let dir = std::env::temp_dir().join(format!("hg-fuzz-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("schemathesis.toml"), config).unwrap();
    let bin = schemathesis();
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} does not run ({e}): run `deploy/dev test`",
                bin.display()
            )
        });
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    assert!(
        version.ends_with(&pinned_version()),
        "{} is `{version}`, not the pinned {}: run `deploy/dev test`",
        bin.display(),
        pinned_version()
    );
    let ids: Vec<String> = ops.iter().map(|op| op.id.clone()).collect();
    let mut command = Command::new(&bin);
    command
        .current_dir(&dir)
        .env(
            "SCHEMATHESIS_HOOKS",
            workspace().join("load-tests/fuzz/hooks.py"),
        )
        .args(["--config-file", "schemathesis.toml", "--no-color", "run"])
        .arg(app.url("/v1/openapi.json"))
        .args(["--checks", checks])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &EXAMPLES_PER_OPERATION.to_string()])
        .args(["--seed", SEED, "--generation-deterministic"])
        .args(["--workers", "1", "--request-timeout", "30"])
        .args(["--report", "json", "--report-json-path", "report.json"]);
    for id in &ids {
        command.args(["--include-operation-id", id]);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("schemathesis runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = std::fs::read(dir.join("report.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| panic!("{label}: schemathesis wrote no report:\n{printed}"));
    let operations = report["operations"]["tested"].as_u64().unwrap_or(0);
    let cases = report["test_cases"]["generated"].as_u64().unwrap_or(0);
    // Straight to stderr, past the test harness's capture: the counts are
    // the run's report (nextest shows them for this test, see .config/nextest.toml).
    drop(writeln!(
        std::io::stderr().lock(),
        "fuzz, {label}: {operations} operations, {cases} cases, {} failing; {version}",
        report["test_cases"]["with_failures"]
    ));
    assert!(
        output.status.success()
            && report["failures"].as_array().is_some_and(Vec::is_empty)
            && report["errors"].as_array().is_some_and(Vec::is_empty)
            && operations == ops.len() as u64
            && report["operations"]["errored"] == 0
            && report["operations"]["skipped"] == 0,
        "{label}: the fuzzer found failures or left operations untested \
         ({operations} of {} tested; its configuration and report are in {}):\n{printed}",
        ops.len(),
        dir.display()
    );
    // Warnings that mean part of the API went untested, or was documented
    // wrongly: a reference that does not resolve, requests refused as
    // unauthenticated or rate limited throughout, and query strings the
    // document allows but the API refuses (GET operations take no body,
    // whose rules are not all in the document). The rest may stand: a
    // resource made to be deleted is not found after the first case.
    let warnings = &report["warnings"];
    let mut untested: Vec<String> = [
        "missing_auth",
        "rate_limited",
        "unresolvable_reference",
        "unsupported_regex",
        "missing_deserializer",
        "method_not_allowed",
        "unmatched_filter",
        "dictionary_mismatch",
    ]
    .iter()
    .filter(|w| warnings[**w].as_array().is_some_and(|a| !a.is_empty()))
    .map(|w| format!("{w}: {}", warnings[*w]))
    .collect();
    untested.extend(
        warnings["validation_mismatch"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|op| op.as_str().is_some_and(|op| op.starts_with("GET ")))
            .map(|op| format!("validation_mismatch: {op}")),
    );
    assert!(
        untested.is_empty(),
        "{label}: the fuzzer warns that part of the API went untested or is documented wrongly \
         ({}):\n{untested:#?}\n{printed}",
        dir.display()
    );
    drop(std::fs::remove_dir_all(&dir));
    Outcome { operations, cases }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_every_operation_finds_no_server_error_and_nothing_undocumented() {
    let (app, _sink) = spawn().await;
    let tenant = app.signup().await;
    let stock = stock(&app, &tenant).await;
    let tokens = owner_tokens(&app, &tenant).await;
    // Signing out ends the session it is made with: that operation has a session of its own.
    let spare = sign_in(&app, &tenant, None).await;
    let all = operations(&app).await;
    let ops: Vec<&Operation> = all.iter().collect();
    let config = config(
        &ops,
        |i, op| {
            if op.id == "delete_current_session" {
                spare.clone()
            } else {
                tokens[i % tokens.len()].clone()
            }
        },
        |op| stock.path_values(op),
    );
    let outcome = run(&app, "own tenant", &ops, config, CHECKS).await;
    let (elsewhere,): (i64,) = sqlx::query_as(
        "select count(*) from subscribers where endpoint is not null and endpoint <> all($1)",
    )
    .bind(LOOPBACK_ENDPOINTS.map(str::to_owned).to_vec())
    .fetch_one(&app.admin)
    .await
    .unwrap();
    assert_eq!(
        elsewhere, 0,
        "every webhook the fuzzer made points to loopback"
    );
    assert_eq!(
        outcome.operations,
        routes(|_| true),
        "every route was fuzzed"
    );
    assert!(outcome.cases >= outcome.operations * u64::from(EXAMPLES_PER_OPERATION));
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_with_another_tenants_ids_never_succeeds() {
    let (app, _sink) = spawn().await;
    let intruder = app.signup().await;
    let victim = app.signup().await;
    let stock = stock(&app, &victim).await;
    let tokens = owner_tokens(&app, &intruder).await;
    let all = operations(&app).await;
    let ops: Vec<&Operation> = all.iter().filter(|op| op.path.contains('{')).collect();
    let config = config(
        &ops,
        |i, _| tokens[i % tokens.len()].clone(),
        |op| stock.path_values(op),
    );
    let checks = format!("not_a_server_error,{CROSS_TENANT_CHECK}");
    let outcome = run(&app, "another tenant's ids", &ops, config, &checks).await;
    assert_eq!(
        outcome.operations,
        routes(|path| path.contains('{')),
        "every route with path parameters was fuzzed"
    );
    assert!(outcome.cases >= outcome.operations * u64::from(EXAMPLES_PER_OPERATION));
    app.teardown().await;
}
