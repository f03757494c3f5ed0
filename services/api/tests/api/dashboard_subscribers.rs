//! A page's subscribers in the dashboard: the list with its tabs, counts,
//! search and pages; adding one; importing a CSV through its preview;
//! exporting CSV; removing, resending a confirmation; and the refusals
//! (a viewer's, another tenant's ids, a tenant whose owner is unverified).

use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, SET_COOKIE};

use crate::helpers::{PASSWORD, Tenant, TestApp, emails_to, unique_email};

/// A cookie session on the dashboard: the session cookie and the token its
/// forms carry.
struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    /// Signs in through the form.
    async fn sign_in(app: &TestApp, email: &str) -> Self {
        let res = app
            .client
            .post(app.url("/login"))
            .form(&[("email", email), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let cookie = |name: &str| {
            res.headers()
                .get_all(SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .find(|c| c.starts_with(&format!("{name}=")))
                .map(|c| c[name.len() + 1..].split(';').next().unwrap().to_owned())
                .unwrap_or_else(|| panic!("no {name} cookie"))
        };
        Self {
            cookie: cookie("heliograph_session"),
            csrf: cookie("heliograph_csrf"),
        }
    }

    /// A session from an API token (a signup's, or a teammate's), its form
    /// token read from a page it may see.
    async fn of_token(app: &TestApp, token: &str, page: &str) -> Self {
        let mut s = Self {
            cookie: token.to_owned(),
            csrf: String::new(),
        };
        let html = s.get(app, page).await.text().await.unwrap();
        let start = html.find("name=\"_csrf\" value=\"").expect("a form") + 20;
        s.csrf = html[start..].split('"').next().unwrap().to_owned();
        s
    }

    async fn get(&self, app: &TestApp, path: &str) -> reqwest::Response {
        app.client
            .get(app.url(path))
            .header("cookie", format!("heliograph_session={}", self.cookie))
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all = vec![("_csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        app.client
            .post(app.url(path))
            .header("cookie", format!("heliograph_session={}", self.cookie))
            .form(&all)
            .send()
            .await
            .unwrap()
    }
}

fn subscribers(t: &Tenant) -> String {
    format!("/dashboard/pages/{}/subscribers", t.page_id)
}

/// The id of the live subscriber at `email`.
async fn subscriber_id(app: &TestApp, email: &str) -> String {
    let (id,): (uuid::Uuid,) = sqlx::query_as(
        "select id from subscribers where email = $1::citext and unsubscribed_at is null",
    )
    .bind(email)
    .fetch_one(&app.admin)
    .await
    .unwrap();
    id.to_string()
}

#[tokio::test]
async fn a_team_adds_imports_finds_exports_removes_and_reminds_subscribers() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let browser = app.browser().await;
    app.sign_in(&browser, &t.email).await;

    browser.goto(&app.url(&subscribers(&t))).await;
    browser.wait_for_text("No subscribers here").await;
    browser.check_page("subscribers-empty").await;

    // One by hand, active at once. Its address starts with `=`, as a
    // formula would: the export must not hand it to a spreadsheet as one.
    let ann = format!("={}", unique_email("ann"));
    browser.click_text("Add a subscriber").await;
    browser.wait_for("#address").await;
    browser.check_page("subscribers-new").await;
    browser.fill("#address", "not an address").await;
    browser.click_text("Add subscriber").await;
    let said = browser
        .wait_for("#address-error")
        .await
        .text()
        .await
        .unwrap();
    assert!(said.contains("is not a valid email address"), "{said}");
    browser.check_page("subscribers-new-error").await;
    browser.fill("#address", &ann).await;
    browser.click("#skip_confirmation").await;
    browser.click_text("Add subscriber").await;
    browser.wait_for_text("added: active now").await;
    browser.wait_for_text(&ann).await;

    // Search finds it, and only it.
    browser.fill("#q", &ann[1..8]).await;
    browser.click_text("Search").await;
    browser.wait_for_text("1 subscriber.").await;
    browser.wait_for_text(&ann).await;

    // Import: three valid, one invalid, one duplicate, one already subscribed.
    let (b, c, d) = (
        unique_email("bea"),
        unique_email("cid"),
        unique_email("dot"),
    );
    let csv = format!(
        "email,name\n{b},Bea\n\"{c}\",Cid\nnot-an-address\n{d}\n{},Bea again\n{ann}\n",
        b.to_uppercase()
    );
    browser.click_text("Import a CSV").await;
    browser.wait_for("#csv").await;
    browser.check_page("subscribers-import").await;
    browser.fill("#csv", &csv).await;
    browser.click_text("Preview").await;
    browser.wait_for_text("3 of 6 rows will be added").await;
    let preview = browser.text().await;
    assert!(
        preview.contains("Invalid: is not a valid email address"),
        "{preview}"
    );
    assert!(preview.contains("Duplicate of line 2"), "{preview}");
    assert!(preview.contains("Already subscribed"), "{preview}");
    assert_eq!(preview.matches("Valid").count(), 3, "{preview}");
    browser.check_page("subscribers-import-preview").await;
    browser.click_text("Import 3 subscribers").await;
    browser.wait_for_text("Imported 3 subscribers.").await;

    // The tabs count what each holds.
    let tabs = browser
        .text()
        .await
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for count in [
        "All channels 4",
        "Email 4",
        "Active 1",
        "Awaiting confirmation 3",
        "All 4",
    ] {
        assert!(tabs.contains(count), "{count}: {tabs}");
    }
    browser.check_page("subscribers-list").await;

    // The export, as the browser's session downloads it.
    let cookie = browser
        .client()
        .get_named_cookie("heliograph_session")
        .await
        .unwrap();
    let res = app
        .client
        .get(app.url(&format!("{}/export.csv?state=all", subscribers(&t))))
        .header("cookie", format!("heliograph_session={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("id,type,address,state"), "{csv}");
    assert!(csv.contains(&format!(",email,'{ann},Active,")), "{csv}");
    for addr in [&b, &c, &d] {
        assert!(
            csv.contains(&format!(",email,{addr},Awaiting confirmation,")),
            "{csv}"
        );
    }

    // Remove one, accepting the confirm dialog.
    browser
        .goto(&app.url(&format!("{}?state=all", subscribers(&t))))
        .await;
    browser
        .click(&format!("button[aria-label='Remove {d}']"))
        .await;
    browser.client().accept_alert().await.unwrap();
    browser
        .wait_for_text(&format!("Subscriber {d} removed."))
        .await;

    // Remind another: its first confirmation went out, and a minute passes.
    emails_to(&c, 1).await;
    sqlx::query(
        "update subscribers set confirmation_sent_at = now() - interval '2 minutes' where email = $1",
    )
    .bind(&c)
    .execute(&app.admin)
    .await
    .unwrap();
    browser
        .click(&format!("button[aria-label='Resend confirmation to {c}']"))
        .await;
    browser
        .wait_for_text(&format!("Confirmation sent again to {c}."))
        .await;
    assert_eq!(emails_to(&c, 2).await.len(), 2);

    browser.close().await;
    app.finish().await;
}

/// The `href` of the link marked `rel="<rel>"`, unescaped.
fn link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\""))?;
    let start = html[..at].rfind("href=\"")? + "href=\"".len();
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&amp;", "&"))
}

/// The addresses `pNNNN@example.com` a screen of the list shows, in order.
fn shown(html: &str) -> Vec<u32> {
    html.match_indices("<th scope=\"row\" class=\"address\">p")
        .filter_map(|(at, m)| html[at + m.len()..at + m.len() + 4].parse().ok())
        .collect()
}

#[tokio::test]
async fn the_list_pages_fifty_at_a_time_and_reactivates_quarantined_subscribers() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    // 1,201 subscribers, two to a second: the list's order (when added, then
    // id) must break ties, and the export must read several slices.
    sqlx::query(
        "insert into subscribers (id, tenant_id, page_id, channel, email, confirmed_at, created_at)
         select ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, $1::uuid, $2::uuid,
                'email', 'p' || lpad(g::text, 4, '0') || '@example.com', now(),
                now() - interval '1 hour' + (g / 2) * interval '1 second'
           from generate_series(1, 1201) g",
    )
    .bind(&t.tenant_id)
    .bind(&t.page_id)
    .execute(&app.admin)
    .await
    .unwrap();
    sqlx::query("update subscribers set quarantined_at = now() where email = 'p1201@example.com'")
        .execute(&app.admin)
        .await
        .unwrap();
    let s = Session::sign_in(&app, &t.email).await;
    let screen = |path: String| {
        let s = &s;
        let app = &app;
        async move { s.get(app, &path).await.text().await.unwrap() }
    };

    let first = screen(subscribers(&t)).await;
    assert!(first.contains("1200 subscribers, 50 shown."), "{first}");
    assert!(
        first.contains("Quarantined <span class=\"count\">1</span>"),
        "{first}"
    );
    assert!(
        first.contains("All <span class=\"count\">1201</span>"),
        "{first}"
    );
    assert_eq!(shown(&first), (1..=50).collect::<Vec<_>>());
    assert!(link(&first, "prev").is_none());

    // Next, Next, ... to the end: every active subscriber once, in order.
    let mut seen = shown(&first);
    let mut html = first.clone();
    let mut screens = 1;
    while let Some(next) = link(&html, "next") {
        html = screen(next).await;
        seen.extend(shown(&html));
        screens += 1;
        assert!(link(&html, "prev").is_some());
    }
    assert_eq!(screens, 24);
    assert_eq!(seen, (1..=1200).collect::<Vec<_>>());

    // Previous from the second screen is the first again; a screen whose
    // row was removed meanwhile still pages from where it was.
    let second = screen(link(&first, "next").unwrap()).await;
    assert_eq!(shown(&second), (51..=100).collect::<Vec<_>>());
    assert_eq!(
        shown(&screen(link(&second, "prev").unwrap()).await),
        (1..=50).collect::<Vec<_>>()
    );
    sqlx::query("delete from subscribers where email = 'p0050@example.com'")
        .execute(&app.admin)
        .await
        .unwrap();
    assert_eq!(
        shown(&screen(link(&first, "next").unwrap()).await),
        (51..=100).collect::<Vec<_>>()
    );
    assert_eq!(
        shown(&screen(link(&second, "prev").unwrap()).await),
        (1..=49).collect::<Vec<_>>()
    );
    // A place that is not one is refused (as the API refuses a bad
    // filter), not read as the start.
    let bad = s
        .get(&app, &format!("{}?after=yesterday", subscribers(&t)))
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("is not a place in this list")
    );

    // A search pages the same way, from one read of what it matches, and
    // its tabs count what it matches.
    let found = screen(format!("{}?q=p00", subscribers(&t))).await;
    assert!(found.contains("98 subscribers, 50 shown."), "{found}");
    assert!(
        found.contains("All <span class=\"count\">98</span>"),
        "{found}"
    );
    assert!(
        found.contains("Quarantined <span class=\"count\">0</span>"),
        "{found}"
    );
    let first_found: Vec<u32> = (1..=49).chain([51]).collect();
    assert_eq!(shown(&found), first_found);
    let next = link(&found, "next").unwrap();
    assert!(next.contains("q=p00"), "{next}");
    let rest = screen(next).await;
    assert_eq!(shown(&rest), (52..=99).collect::<Vec<_>>());
    assert!(link(&rest, "next").is_none());
    assert_eq!(
        shown(&screen(link(&rest, "prev").unwrap()).await),
        first_found
    );

    // The export streams them all, slice after slice, each once.
    let csv = s
        .get(&app, &format!("{}/export.csv?state=all", subscribers(&t)))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 1 + 1200);
    let mut exported: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    exported.dedup();
    assert_eq!(exported.len(), 1200);
    assert_eq!(exported[0], "p0001@example.com");
    assert_eq!(exported[1199], "p1201@example.com");

    let quarantined = screen(format!("{}?state=quarantined", subscribers(&t))).await;
    assert!(quarantined.contains("p1201@example.com"), "{quarantined}");
    let id = subscriber_id(&app, "p1201@example.com").await;
    let res = s
        .post(
            &app,
            &format!("{}/reactivate", subscribers(&t)),
            &[("subscribers", &id)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let left = app
        .count("select count(*) from subscribers where quarantined_at is not null")
        .await;
    assert_eq!(left, 0);
    app.finish().await;
}

#[tokio::test]
async fn viewers_cannot_change_subscribers_and_other_tenants_ids_are_not_found() {
    let app = TestApp::spawn().await;
    let t = app.signup().await;
    let other = app.signup().await;
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/subscribers", other.page_id),
            Some(&other.token),
            &serde_json::json!({"subscriber": {"email": unique_email("x"), "skip_confirmation_notification": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let theirs = body["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post(
            &format!("/v1/pages/{}/subscribers", t.page_id),
            Some(&t.token),
            &serde_json::json!({"subscriber": {"email": unique_email("y"), "skip_confirmation_notification": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ours = body["id"].as_str().unwrap().to_owned();

    // A viewer sees the list and the export, and changes nothing.
    let viewer_token = app.join(&t, &other, "viewer").await;
    let viewer = Session::of_token(&app, &viewer_token, &subscribers(&t)).await;
    assert_eq!(
        viewer
            .get(&app, &format!("{}/export.csv", subscribers(&t)))
            .await
            .status(),
        StatusCode::OK
    );
    for path in ["/new", "/import"] {
        let res = viewer
            .get(&app, &format!("{}{path}", subscribers(&t)))
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let email = unique_email("z");
    for (path, fields) in [
        (
            String::new(),
            vec![("type", "email"), ("address", email.as_str())],
        ),
        ("/import".to_owned(), vec![("csv", email.as_str())]),
        (format!("/{ours}/delete"), vec![]),
        (format!("/{ours}/resend_confirmation"), vec![]),
    ] {
        let res = viewer
            .post(&app, &format!("{}{path}", subscribers(&t)), &fields)
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(res.text().await.unwrap().contains("Not allowed"), "{path}");
    }

    // The owner, on their page, naming the other tenant's subscriber.
    let owner = Session::sign_in(&app, &t.email).await;
    for path in [
        format!("/{theirs}/delete"),
        format!("/{theirs}/resend_confirmation"),
    ] {
        let res = owner
            .post(&app, &format!("{}{path}", subscribers(&t)), &[])
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let res = owner
        .get(
            &app,
            &format!("/dashboard/pages/{}/subscribers", other.page_id),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.finish().await;
}

#[tokio::test]
async fn a_team_whose_owner_is_unverified_is_told_on_the_form_what_to_do() {
    let app = TestApp::spawn().await;
    let t = app.signup_unverified().await;
    let s = Session::of_token(&app, &t.token, &format!("{}/new", subscribers(&t))).await;
    let email = unique_email("u");
    let res = s
        .post(
            &app,
            &subscribers(&t),
            &[
                ("type", "email"),
                ("address", &email),
                ("skip_confirmation", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let html = res.text().await.unwrap();
    assert!(html.contains("Verify your email address first"), "{html}");
    assert!(
        html.contains("Open the link in the email we sent"),
        "{html}"
    );
    // The form is there again, with what was typed.
    assert!(html.contains(&format!("value=\"{email}\"")), "{html}");

    let res = s
        .post(
            &app,
            &format!("{}/import", subscribers(&t)),
            &[("csv", &email)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Verify your email address first")
    );
    assert_eq!(app.count("select count(*) from subscribers").await, 0);
    app.finish().await;
}
