//! Caddy (the Debian package's binary, with its internal CA) in front of the
//! api, running the sites of `deploy/heliograph.caddy` as they are: a
//! verified custom domain gets a certificate on demand and its page over
//! HTTPS; a hostname the api has not verified gets no certificate; the
//! operators' endpoints are not reachable through it.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::domains::{add, right_records, unique_host, verify};
use crate::helpers::{DnsServer, Infra, TestApp};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `CADDY_BIN`, or what `deploy/dev test` unpacked, or `caddy` on the PATH.
fn caddy_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CADDY_BIN") {
        return bin.into();
    }
    let unpacked =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local/tools/caddy/usr/bin/caddy");
    if unpacked.exists() {
        unpacked
    } else {
        "caddy".into()
    }
}

/// The platform host of the tests (`PUBLIC_URL`'s host).
const PLATFORM_HOST: &str = "heliograph.test";

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// A Caddy of the test's own: the deployed sites, with global options for
/// a test (its own ports on loopback, its internal CA, on-demand TLS asking
/// the api's admin listener).
struct Caddy {
    child: Child,
    dir: PathBuf,
    https: SocketAddr,
}

impl Caddy {
    fn start(api: &str, admin: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hg-caddy-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let (http, https) = (free_port(), free_port());
        let (api, admin) = (
            api.trim_start_matches("http://"),
            admin.trim_start_matches("http://"),
        );
        let config = format!(
            "{{
	admin off
	http_port {http}
	https_port {https}
	default_bind 127.0.0.1
	local_certs
	skip_install_trust
	storage file_system {data}
	on_demand_tls {{
		ask http://{admin}/internal/tls/ask
	}}
}}

import {sites}
",
            data = dir.join("data").display(),
            sites = deploy_dir().join("heliograph.caddy").display(),
        );
        let caddyfile = dir.join("Caddyfile");
        std::fs::write(&caddyfile, config).unwrap();
        let child = Command::new(caddy_bin())
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", dir.join("xdg-data"))
            .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
            .env("PLATFORM_HOST", PLATFORM_HOST)
            .env("HELIOGRAPH_API", api)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("caddy.log")).unwrap(),
            ))
            .spawn()
            .expect("caddy runs (deploy/dev test unpacks it into .local/tools)");
        let caddy = Self {
            child,
            dir,
            https: SocketAddr::from(([127, 0, 0, 1], https)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(caddy.https).is_err() || !caddy.root().exists() {
            assert!(
                Instant::now() < deadline,
                "caddy did not start: {}",
                std::fs::read_to_string(caddy.dir.join("caddy.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        caddy
    }

    /// The internal CA's root certificate.
    fn root(&self) -> PathBuf {
        self.dir.join("data/pki/authorities/local/root.crt")
    }

    /// A client that trusts the internal CA and finds `hosts` at Caddy.
    fn client(&self, hosts: &[&str]) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(&std::fs::read(self.root()).unwrap()).unwrap();
        let mut builder = reqwest::Client::builder()
            .add_root_certificate(root)
            .timeout(Duration::from_secs(20));
        for host in hosts {
            builder = builder.resolve(host, self.https);
        }
        builder.build().unwrap()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn caddy_serves_a_verified_custom_domain_over_https_and_nothing_else() {
    let mut dns = DnsServer::start(&[]);
    let app = TestApp::spawn_on(Infra {
        nameserver: Some(dns.addr),
        admin_listener: true,
        ..Infra::default()
    })
    .await;
    let admin = app.admin_address.clone().expect("ADMIN_ADDR is bound");
    let t = app.signup().await;
    app.component(&t, "Checkout").await;
    let (host, stranger) = (unique_host(), unique_host());
    let (_, domain) = add(&app, &t, &host).await;
    add(&app, &t, &stranger).await;
    dns.set_records(&right_records(&domain));
    verify(&app, &t, domain["id"].as_str().unwrap()).await;

    // The api routes it once it hears of the verification (the worker's
    // nudge), and says so on its admin listener.
    let ask = |name: String| {
        let (app, admin) = (&app, &admin);
        async move {
            app.client
                .get(format!("{admin}/internal/tls/ask?domain={name}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while ask(host.clone()).await != StatusCode::OK {
        if Instant::now() > deadline {
            let (_, now) = app
                .call(
                    reqwest::Method::GET,
                    &format!(
                        "/v1/pages/{}/domains/{}",
                        t.page_id,
                        domain["id"].as_str().unwrap()
                    ),
                    Some(&t.token),
                    None,
                )
                .await;
            panic!("the verified domain never routed: {now}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ask(stranger.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(ask("example.com".into()).await, StatusCode::NOT_FOUND);

    let caddy = Caddy::start(&app.address, &admin);
    let client = caddy.client(&[&host, &stranger, PLATFORM_HOST]);
    let port = caddy.https.port();
    let page = client
        .get(format!("https://{host}:{port}/"))
        .send()
        .await
        .expect("HTTPS to the verified domain");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Checkout"), "{html}");
    let summary: Value = client
        .get(format!("https://{host}:{port}/api/v2/summary.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["page"]["url"], format!("https://{host}"));
    assert_eq!(summary["components"][0]["name"], "Checkout");

    // No certificate for a hostname the api has not verified.
    let refused = client
        .get(format!("https://{stranger}:{port}/"))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");

    // The platform host through Caddy: the API, the pages and the health
    // check, proxied (the api's X-Request-Id on each answer). Its
    // certificate comes from the internal CA shortly after Caddy starts.
    let platform = format!("https://{PLATFORM_HOST}:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let healthz = loop {
        match client.get(format!("{platform}/healthz")).send().await {
            Ok(r) => break r,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no HTTPS on the platform host: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(healthz.status(), StatusCode::OK);
    assert!(healthz.headers().contains_key("x-request-id"));
    let page = client
        .get(format!("{platform}/status/{}/", t.slug))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);

    // The operators' endpoints: Caddy itself answers 404 (nothing reaches
    // the api, so no X-Request-Id), by either name, whatever the spelling.
    let ask_path = format!("/internal/tls/ask?domain={host}");
    for origin in [platform.clone(), format!("https://{host}:{port}")] {
        for path in [
            "/metrics",
            ask_path.as_str(),
            "/internal/",
            "/METRICS",
            "/%6Detrics",
            "/Internal/tls/ask",
        ] {
            let r = client.get(format!("{origin}{path}")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{origin}{path}");
            assert!(
                !r.headers().contains_key("x-request-id"),
                "{origin}{path} reached the api"
            );
        }
        // Spellings Caddy passes on still find nothing on the api's public listener.
        for path in ["//metrics", "/./metrics"] {
            let r = client.get(format!("{origin}{path}")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{origin}{path}");
        }
    }
    // … while the admin listener answers them.
    assert_eq!(ask(host.clone()).await, StatusCode::OK);
    let metrics = app
        .client
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("heliograph_page_snapshots ")
    );
    drop(caddy);
    app.finish().await;
}

/// `caddy adapt` of `deploy/Caddyfile` with the given environment: its JSON.
fn adapt_deployed(env: &[(&str, &str)]) -> Value {
    let out = Command::new(caddy_bin())
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(deploy_dir().join("Caddyfile"))
        .envs(env.iter().copied())
        .output()
        .expect("caddy runs");
    assert!(
        out.status.success(),
        "deploy/Caddyfile does not adapt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("caddy adapt prints JSON")
}

#[test]
fn the_deployed_caddyfile_asks_the_admin_listener_and_answers_operator_paths_itself() {
    let config = adapt_deployed(&[
        ("PLATFORM_HOST", "status.example.com"),
        ("HELIOGRAPH_API", "10.0.0.5:8080"),
        ("HELIOGRAPH_ADMIN", "10.0.0.5:9465"),
        ("ACME_EMAIL", "ops@example.com"),
    ]);
    assert_eq!(
        config["apps"]["tls"]["automation"]["on_demand"]["ask"],
        "http://10.0.0.5:9465/internal/tls/ask"
    );
    // Every site (the platform host and the custom domains) first answers
    // the operators' paths with a 404 of its own, then proxies to BIND_ADDR.
    let sites = config["apps"]["http"]["servers"]["srv0"]["routes"]
        .as_array()
        .unwrap();
    assert_eq!(sites.len(), 2, "{sites:?}");
    for site in sites {
        let routes = site["handle"][0]["routes"].as_array().unwrap();
        let guard = routes
            .iter()
            .position(|r| r["handle"][0]["handler"] == "static_response")
            .expect("a route that answers itself");
        assert_eq!(routes[guard]["handle"][0]["status_code"], 404);
        let paths = &routes[guard]["match"][0]["path"];
        for p in ["/metrics", "/metrics/*", "/internal", "/internal/*"] {
            assert!(paths.as_array().unwrap().iter().any(|x| x == p), "{p}");
        }
        let proxy = routes
            .iter()
            .position(|r| r["handle"][0]["handler"] == "reverse_proxy")
            .expect("a proxy");
        assert!(guard < proxy);
        assert_eq!(
            routes[proxy]["handle"][0]["upstreams"][0]["dial"],
            "10.0.0.5:8080"
        );
    }
}
