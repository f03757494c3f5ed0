//! Caddy (the Debian package's binary, with its internal CA) in front of the
//! api: a verified custom domain gets a certificate on demand and its page
//! over HTTPS; a hostname the api has not verified gets no certificate.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::domains::{add, right_records, unique_host, verify};
use crate::helpers::{DnsServer, TestApp};

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

/// A Caddy of the test's own: on-demand TLS from its internal CA, asking
/// the api, proxying to it.
struct Caddy {
    child: Child,
    dir: PathBuf,
    https: SocketAddr,
}

impl Caddy {
    fn start(api: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hg-caddy-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let (http, https) = (free_port(), free_port());
        let api = api.trim_start_matches("http://");
        let config = format!(
            "{{
	admin off
	http_port {http}
	https_port {https}
	local_certs
	skip_install_trust
	storage file_system {data}
	on_demand_tls {{
		ask http://{api}/internal/tls/ask
	}}
}}

https:// {{
	bind 127.0.0.1
	tls {{
		on_demand
	}}
	reverse_proxy {api}
}}
",
            data = dir.join("data").display()
        );
        let caddyfile = dir.join("Caddyfile");
        std::fs::write(&caddyfile, config).unwrap();
        let child = Command::new(caddy_bin())
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", dir.join("xdg-data"))
            .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
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
    let app = TestApp::spawn_with_dns(dns.addr).await;
    let t = app.signup().await;
    app.component(&t, "Checkout").await;
    let (host, stranger) = (unique_host(), unique_host());
    let (_, domain) = add(&app, &t, &host).await;
    add(&app, &t, &stranger).await;
    dns.set_records(&right_records(&domain));
    verify(&app, &t, domain["id"].as_str().unwrap()).await;

    // The api routes it once it hears of the verification (the worker's nudge).
    let ask = |name: String| {
        let app = &app;
        async move {
            app.get(&format!("/internal/tls/ask?domain={name}"), None)
                .await
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

    let caddy = Caddy::start(&app.address);
    let client = caddy.client(&[&host, &stranger]);
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
    drop(caddy);
    app.finish().await;
}
