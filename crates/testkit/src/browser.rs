//! A real browser for the tests of what people see: headless Chromium
//! (Debian's `chromium`), driven over WebDriver by its own `chromedriver`
//! (Debian's `chromium-driver`), one of each per [`Browser`], so tests run
//! in parallel with separate cookies and windows.
//!
//! Besides driving pages, a browser checks them: [`Browser::check_page`]
//! runs axe-core (from npm, `AXE_CORE_JS`) inside the page and fails on any
//! WCAG 2.2 AA violation, and saves a screenshot of the whole page at
//! 1280 px and at 375 px wide under `target/screenshots/`.
//!
//! `deploy/dev test` installs all three and sets `CHROMIUM_BIN`,
//! `CHROMEDRIVER_BIN` and `AXE_CORE_JS`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// What a browser is started with.
#[derive(Debug, Default, Clone)]
pub struct BrowserOptions {
    /// Chromium's `--host-resolver-rules`: names the browser resolves to
    /// loopback, as the DNS of a custom domain would (`MAP status.example.com 127.0.0.1`).
    pub host_rules: Option<String>,
}

/// A headless Chromium and its driver, stopped on [`Browser::close`] (or drop).
pub struct Browser {
    driver: Child,
    client: Option<Client>,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Browser {
    /// Starts Chromium with the default options.
    pub async fn start() -> Self {
        Self::start_with(BrowserOptions::default()).await
    }

    /// Starts `chromedriver` on a free loopback port and a headless Chromium through it.
    pub async fn start_with(options: BrowserOptions) -> Self {
        let driver_bin = env_or("CHROMEDRIVER_BIN", "chromedriver");
        let chromium = env_or("CHROMIUM_BIN", "/usr/bin/chromium");
        // The port is chosen, then given to the driver: another process may
        // take it in between, so a failed start is tried again.
        for _ in 0..5 {
            let port = free_port();
            let mut driver = Command::new(&driver_bin)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run {driver_bin}: {e} (install chromium-driver, or run `deploy/dev test`)")
                });
            let mut args = vec![
                "--headless=new".to_owned(),
                "--no-sandbox".to_owned(),
                "--disable-gpu".to_owned(),
                "--disable-dev-shm-usage".to_owned(),
                "--disable-extensions".to_owned(),
                "--no-first-run".to_owned(),
                "--force-device-scale-factor=1".to_owned(),
                "--window-size=1280,900".to_owned(),
                "--lang=en-GB".to_owned(),
            ];
            if let Some(rules) = &options.host_rules {
                args.push(format!("--host-resolver-rules={rules}"));
            }
            let mut caps = Capabilities::new();
            caps.insert(
                "goog:chromeOptions".to_owned(),
                json!({ "binary": chromium, "args": args }),
            );
            caps.insert("pageLoadStrategy".to_owned(), json!("normal"));
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                match ClientBuilder::new(connector)
                    .capabilities(caps.clone())
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await
                {
                    Ok(client) => {
                        let browser = Self {
                            driver,
                            client: Some(client),
                        };
                        browser.viewport(1280, 900).await;
                        return browser;
                    }
                    Err(_)
                        if Instant::now() < deadline
                            && driver.try_wait().ok().flatten().is_none() =>
                    {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(_) => break,
                }
            }
            drop(driver.kill());
            drop(driver.wait());
        }
        panic!("chromedriver and chromium did not start (is `chromium` installed?)");
    }

    /// Sends `headers` with every request the browser makes from now on
    /// (through Chromium's DevTools, `Network.setExtraHTTPHeaders`): a test
    /// gives each browser an `X-Forwarded-For` of its own, so per-address
    /// limits do not couple tests running at once.
    pub async fn send_headers(&self, headers: &[(&str, &str)]) {
        let headers: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        for (cmd, params) in [
            ("Network.enable", json!({})),
            ("Network.setExtraHTTPHeaders", json!({ "headers": headers })),
        ] {
            self.client()
                .issue_cmd(DevTools { cmd, params })
                .await
                .unwrap_or_else(|e| panic!("Chromium refused {cmd}: {e}"));
        }
    }

    /// Sets the page's viewport to `width` × `height` CSS pixels, exactly
    /// (DevTools' device metrics: the window and the virtual screen of a
    /// headless browser are not the viewport), as a phone (`width` < 600:
    /// touch, the page's `viewport` meta honoured) or a desktop.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.client()
            .issue_cmd(DevTools {
                cmd: "Emulation.setDeviceMetricsOverride",
                params: json!({
                    "width": width, "height": height, "deviceScaleFactor": 1,
                    "mobile": width < 600,
                }),
            })
            .await
            .unwrap_or_else(|e| panic!("Chromium refused the viewport {width}x{height}: {e}"));
    }

    /// The WebDriver client, for anything the helpers below do not cover.
    #[must_use]
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is open")
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client()
            .current_url()
            .await
            .expect("a current URL")
            .to_string()
    }

    /// The text of the whole page, as shown (read by script, not through an
    /// element reference, which a page navigating meanwhile would make stale).
    pub async fn text(&self) -> String {
        self.client()
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Waits (up to 30 s) for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client()
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?} on {}: {e}", self.url_now()))
    }

    fn url_now(&self) -> String {
        // Only for a failure message: the URL is not worth failing twice for.
        String::from("the current page")
    }

    /// Types `value` into the field `css` (clearing it first).
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.expect("the field clears");
        field
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("cannot type into {css:?}: {e}"));
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        let element = self.wait_for(css).await;
        self.press(element, css).await;
    }

    /// Brings `element` to the middle of the window (a person scrolls to
    /// what they click; WebDriver's own scrolling stops at the edge, where
    /// another element may cover it) and clicks it.
    async fn press(&self, element: fantoccini::elements::Element, what: &str) {
        let arg = serde_json::to_value(&element).expect("an element is JSON");
        self.client()
            .execute("arguments[0].scrollIntoView({block: 'center'});", vec![arg])
            .await
            .unwrap_or_else(|e| panic!("cannot scroll to {what:?}: {e}"));
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {what:?}: {e}"));
    }

    /// Clicks the button or link whose text is `text`, as a person would find it.
    pub async fn click_text(&self, text: &str) {
        let xpath = format!(
            "//*[self::button or self::a or self::summary][normalize-space(.)={}]",
            xpath_literal(text)
        );
        let element = self
            .client()
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button or link {text:?}: {e}"));
        self.press(element, text).await;
    }

    /// Types `keys` into whatever has the focus, as a keyboard would
    /// (`\u{e004}` is Tab, `\u{e007}` Enter: WebDriver's key codes, see
    /// `fantoccini::key::Key`).
    pub async fn keys(&self, keys: &str) {
        self.client()
            .active_element()
            .await
            .expect("something has the focus")
            .send_keys(keys)
            .await
            .unwrap_or_else(|e| panic!("cannot type {keys:?}: {e}"));
    }

    /// The focused element: its id (or, without one, its tag and text), and
    /// whether its focus can be seen (a focus outline that is not `none`).
    pub async fn focused(&self) -> (String, bool) {
        let answer = self
            .client()
            .execute(
                "const e = document.activeElement; const s = getComputedStyle(e); \
                 return [e.id || (e.tagName + ':' + e.textContent.trim()), \
                         s.outlineStyle !== 'none' && s.outlineWidth !== '0px'];",
                vec![],
            )
            .await
            .expect("the page answers");
        (
            answer[0].as_str().unwrap_or_default().to_owned(),
            answer[1].as_bool().unwrap_or(false),
        )
    }

    /// Waits (up to 30 s) until the page's text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str) {
        self.wait_until(&format!("the page to say {needle:?}"), |b| async move {
            let text = b.text().await;
            text.contains(needle).then_some(()).ok_or(text)
        })
        .await;
    }

    /// Waits (up to 30 s) until the main heading (`main h1`) is `name`.
    pub async fn wait_for_heading(&self, name: &str) {
        self.wait_until(&format!("the heading to be {name:?}"), |b| async move {
            let h1 = b
                .client()
                .execute(
                    "const h = document.querySelector('main h1'); return h ? h.textContent : ''",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            (h1 == name).then_some(()).ok_or(h1)
        })
        .await;
    }

    /// Asks `check` until it answers `Ok` (up to 30 s), reading the page
    /// anew each time (a navigation under way cannot leave it holding a
    /// stale element); panics with `waiting_for` and the last answer.
    async fn wait_until<'a, F, Fut>(&'a self, waiting_for: &str, check: F)
    where
        F: Fn(&'a Self) -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let last = match check(self).await {
                Ok(()) => return,
                Err(last) => last,
            };
            assert!(
                Instant::now() < deadline,
                "waited in vain for {waiting_for}; the page says:\n{last}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs axe-core in the page: panics, listing them, on any violation of
    /// WCAG 2.0, 2.1 or 2.2 at levels A and AA.
    pub async fn check_accessibility(&self, name: &str) {
        let path = std::env::var("AXE_CORE_JS").unwrap_or_else(|_| {
            panic!("AXE_CORE_JS is not set: run the tests with `deploy/dev test`, which installs axe-core")
        });
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read axe-core at {path}: {e}"));
        // Injected through WebDriver (not a <script> tag), so the page's CSP
        // does not stand in the way, and is not loosened for it.
        self.client()
            .execute(&format!("{source}\nreturn typeof axe;"), vec![])
            .await
            .expect("axe-core loads into the page");
        let result = self
            .client()
            .execute_async(
                r"const done = arguments[arguments.length - 1];
                axe.run(document, { runOnly: { type: 'tag', values:
                    ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } })
                  .then(r => done(JSON.stringify(r.violations.map(v => ({
                      id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.map(n => ({ target: n.target, summary: n.failureSummary })) })))))
                  .catch(e => done(JSON.stringify([{ id: 'axe-error', help: String(e) }])));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        let violations: Value =
            serde_json::from_str(result.as_str().unwrap_or("[]")).expect("axe answers JSON");
        let list = violations.as_array().cloned().unwrap_or_default();
        assert!(
            list.is_empty(),
            "{name}: {} accessibility violation(s) at WCAG 2.2 AA:\n{}",
            list.len(),
            serde_json::to_string_pretty(&violations).unwrap_or_default()
        );
    }

    /// Saves a screenshot of the whole page at `width` px wide to
    /// `target/screenshots/<name>-<width>.png`; answers its path. The
    /// viewport is back at 1280 × 900 afterwards.
    pub async fn screenshot(&self, name: &str, width: u32) -> PathBuf {
        self.viewport(width, 900).await;
        let height = self
            .client()
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight);",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(900)
            .clamp(400, 8000);
        self.viewport(width, u32::try_from(height).unwrap_or(900))
            .await;
        let png = self.client().screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        let path = dir.join(format!("{name}-{width}.png"));
        std::fs::write(&path, png).expect("the screenshot is saved");
        self.viewport(1280, 900).await;
        path
    }

    /// What every page a test visits goes through: axe-core at 1280 px and
    /// at 375 px (the narrow layout is another page to a screen reader), and
    /// a screenshot at each width.
    pub async fn check_page(&self, name: &str) {
        self.check_accessibility(&format!("{name} (1280 px)")).await;
        self.screenshot(name, 1280).await;
        self.viewport(375, 812).await;
        self.check_accessibility(&format!("{name} (375 px)")).await;
        let overflow = self
            .client()
            .execute(
                "return document.documentElement.scrollWidth > document.documentElement.clientWidth + 1;",
                vec![],
            )
            .await
            .expect("the page answers");
        assert_eq!(
            overflow,
            Value::Bool(false),
            "{name}: the page is wider than a 375 px screen (it scrolls sideways)"
        );
        self.screenshot(name, 375).await;
    }

    /// Closes the browser and stops its driver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            drop(client.close().await);
        }
        drop(self.driver.kill());
        drop(self.driver.wait());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked never reached `close`: the driver goes, and
        // the browser with it (chromedriver ends the sessions it started).
        drop(self.driver.kill());
        drop(self.driver.wait());
    }
}

/// `target/screenshots` of the workspace (or `SCREENSHOT_DIR`).
fn screenshot_dir() -> PathBuf {
    std::env::var_os("SCREENSHOT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"),
        PathBuf::from,
    )
}

/// `text` as an XPath string literal (XPath 1.0 has no escapes).
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// A DevTools command through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct DevTools {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()),
        )
    }
}
