//! The dashboard end to end, in headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver by fantoccini) against a real
//! `greenroom serve` with real cycles of the sample components:
//!
//! - signing in with an API token; the environments page shows the
//!   deployed commits;
//! - a running cycle's page updates live (server-sent events): its stages
//!   grow and its result turns `succeeded` while the page is not reloaded;
//! - a rollback through the UI asks for a reason (the form refuses to be
//!   sent without one), then shows the rollback cycle with the old manifest;
//! - a viewer sees no action button, and the dashboard and the API both
//!   refuse the action anyway; forged posts (no CSRF token, another
//!   origin) are refused; outside text is escaped.
//!
//! Screenshots of every page are kept in `target/dashboard-screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INDEX: u16 = 70;
const ALICE: &str = "alice-token-d45h80a4d";
const VIC: &str = "vic-token-v1ewer0nly";

fn server_port() -> u16 {
    21000 + 100 * INDEX + 90
}

fn driver_port() -> u16 {
    21000 + 100 * INDEX + 95
}

/// chromedriver, killed on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver() -> Driver {
    let bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromedriver is not installed: apt-get install chromium chromium-driver");
    let child = Command::new(bin)
        .arg(format!("--port={}", driver_port()))
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let d = Driver(child);
    wait_until("chromedriver to listen", || listening(driver_port()).then_some(()));
    d
}

async fn browser(profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let conn = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(conn)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver_port()))
        .await
        .expect("a WebDriver session in headless Chromium")
}

/// Polls an async condition until it holds, at most `DEADLINE`.
async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + DEADLINE;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {DEADLINE:?} waiting for {what}");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

fn shots() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
    std::fs::create_dir_all(&d).expect("screenshot dir");
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(shots().join(format!("{name}.png")), png).expect("write screenshot");
}

/// One raw HTTP/1.1 request: `(status, headers + body)`.
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", server_port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n",
        server_port(),
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

fn api(method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let mut h = vec![("Authorization", auth.as_str())];
    if !body.is_empty() {
        h.push(("Content-Type", "application/json"));
    }
    let (code, text) = request(method, path, &h, body);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn sandbox() -> Sandbox {
    let port = server_port();
    // `solo` waits for an approval before it deploys: a cycle that runs as
    // long as the test wants.
    let extra = format!(
        r#"
[[environment.stage]]
kind = "migrate"
run = "true"
approval = true

[[environment.stage]]
kind = "deploy"

[server]
listen = "127.0.0.1:{port}"

[[user]]
name = "alice"
token = "env:GREENROOM_E2E_ALICE"
role = "admin"

[[user]]
name = "vic"
token = "env:GREENROOM_E2E_VIC"
role = "viewer"

[[suite]]
name = "smoke"
environments = ["staging"]
run = "true"

[[suite]]
name = "old-ui"
tier = "quarantine"
environments = ["staging"]
run = 'echo "<b>broken</b> & co"; exit 1'
"#
    );
    let mut sb = Sandbox::with(
        INDEX,
        Options {
            extra,
            ..Options::default()
        },
    );
    // Nothing scheduled: every cycle here is asked for by the test.
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replacen("name = \"staging\"\n", "name = \"staging\"\nfollows = \"manual\"\n", 1)
        .replacen("name = \"solo\"\n", "name = \"solo\"\nfollows = \"manual\"\n", 1);
    sb.write_config(&text);
    sb.env.push(("GREENROOM_E2E_ALICE".into(), ALICE.into()));
    sb.env.push(("GREENROOM_E2E_VIC".into(), VIC.into()));
    sb
}

fn base() -> String {
    format!("http://127.0.0.1:{}", server_port())
}

async fn sign_in(c: &Client, token: &str) {
    c.goto(&format!("{}/login", base())).await.expect("login page");
    c.find(Locator::Id("token"))
        .await
        .expect("token field")
        .send_keys(token)
        .await
        .expect("type");
    c.find(Locator::Css("form[action='/login'] button[type=submit]"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("click");
    until("the environments page after signing in", || async {
        let src = c.source().await.ok()?;
        src.contains("Signed in as").then_some(())
    })
    .await;
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.map(|v| v.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let sb = sandbox();
    // Two deploys of staging: the second (a new ogr commit) is what a
    // rollback goes back from.
    let first = sb.json(&["--as", "alice", "deploy", "--env", "staging", "--release"]);
    assert_eq!(first["result"], "succeeded", "{first:#}");
    let ogr = sb.repo("ogr");
    std::fs::write(ogr.join("CHANGE"), "a change\n").expect("write");
    git(&ogr, &["add", "CHANGE"]);
    git(&ogr, &["commit", "-q", "-m", "a change"]);
    let second = sb.json(&["--as", "alice", "deploy", "--env", "staging", "--release"]);
    assert_eq!(second["result"], "succeeded", "{second:#}");
    assert_ne!(first["manifest"], second["manifest"]);
    // Outside text with markup, to be escaped on every page.
    sb.ok(&[
        "--as",
        "alice",
        "pause",
        "--env",
        "staging",
        "--reason",
        "<script>alert(1)</script> & co",
    ]);
    sb.ok(&["--as", "alice", "resume", "--env", "staging"]);

    let _server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("{}/healthz", base())).filter(|(c, _)| *c == 200)
    });
    let _driver = start_driver();
    let profile = tempfile::tempdir().expect("profile dir");
    let c = browser(profile.path()).await;

    // Not signed in: the sign-in page.
    c.goto(&format!("{}/", base())).await.expect("goto /");
    let url = c.current_url().await.expect("url");
    assert_eq!(url.path(), "/login", "{url}");
    shot(&c, "login").await;

    // The environments page shows the deployed commits.
    sign_in(&c, ALICE).await;
    let src = c.source().await.expect("source");
    for name in ["ogr", "packit-service", "dashboard"] {
        let head = sb.rev(name, "HEAD");
        assert!(src.contains(&head[..12]), "{name} at {head} not shown:\n{src}");
    }
    assert!(src.contains("id=\"env-staging\""), "{src}");
    assert!(!src.contains(ALICE), "the token must never reach a page");
    shot(&c, "environments").await;

    // A running cycle's stages update live.
    let deploy = sb.spawn(&["--as", "alice", "deploy", "--env", "solo", "--release"]);
    let running = wait_until("the solo cycle to start", || {
        let (code, list) = api("GET", "/api/v1/cycles?environment=solo", ALICE, "");
        assert_eq!(code, 200, "{list}");
        list.as_array()?
            .iter()
            .find(|x| x["result"] == "running")
            .and_then(|x| x["id"].as_i64())
    });
    c.goto(&format!("{}/cycles/{running}", base()))
        .await
        .expect("cycle page");
    until("the live connection", || async {
        let t = c.find(Locator::Id("live-status")).await.ok()?.text().await.ok()?;
        t.contains("connected").then_some(())
    })
    .await;
    c.execute("window.__greenroomMarker = 42;", vec![])
        .await
        .expect("marker");
    let stages_before = count(&c, "tr.stage").await;
    assert_eq!(count(&c, "#approve-cycle").await, 1, "an approve button while it runs");
    shot(&c, "cycle-running").await;
    // Approve only once the cycle waits for it (it may still be building).
    wait_until("the cycle to wait for its approval", || {
        let (_, detail) = api("GET", &format!("/api/v1/cycles/{running}"), ALICE, "");
        detail["stages"]
            .as_array()?
            .iter()
            .any(|s| s["result"] == "waiting")
            .then_some(())
    });
    sb.ok(&["--as", "alice", "approve", &running.to_string(), "--reason", "e2e"]);
    until("the cycle page to show the finished cycle without a reload", || async {
        let n = count(&c, "tr.stage").await;
        let text = c.find(Locator::Id("live")).await.ok()?.text().await.ok()?;
        (n > stages_before && text.contains("succeeded")).then_some(())
    })
    .await;
    let marker = c
        .execute("return window.__greenroomMarker;", vec![])
        .await
        .expect("marker");
    assert_eq!(marker, json!(42), "the page was reloaded instead of updated live");
    shot(&c, "cycle-live").await;
    let out = deploy.wait();
    assert_eq!(out.code, 0, "{}", out.all());

    // A rollback through the UI asks for a reason, then shows the new manifest.
    c.goto(&format!("{}/", base())).await.expect("goto /");
    c.find(Locator::Id("rollback-staging"))
        .await
        .expect("rollback button")
        .click()
        .await
        .expect("click");
    until("the confirmation page", || async {
        c.find(Locator::Id("reason")).await.ok().map(|_| ())
    })
    .await;
    let required = c
        .find(Locator::Id("reason"))
        .await
        .expect("reason")
        .attr("required")
        .await
        .expect("attr");
    assert!(required.is_some(), "the reason is required");
    shot(&c, "confirm-rollback").await;
    // Without a reason the browser does not send the form.
    c.find(Locator::Id("confirm"))
        .await
        .expect("confirm")
        .click()
        .await
        .expect("click");
    assert_eq!(c.current_url().await.expect("url").path(), "/confirm/rollback");
    let (code, _) = api("GET", "/api/v1/environments/staging", ALICE, "");
    assert_eq!(code, 200);
    c.find(Locator::Id("reason"))
        .await
        .expect("reason")
        .send_keys("dashboard e2e: the new ogr is bad")
        .await
        .expect("type");
    c.find(Locator::Id("confirm"))
        .await
        .expect("confirm")
        .click()
        .await
        .expect("click");
    let old = first["manifest"].as_str().expect("manifest").to_string();
    until("the rollback cycle's page with the old manifest", || async {
        let url = c.current_url().await.ok()?;
        let src = c.source().await.ok()?;
        (url.path().starts_with("/cycles/") && src.contains(&old) && src.contains("rollback")).then_some(())
    })
    .await;
    shot(&c, "rollback-cycle").await;
    let (_, env) = api("GET", "/api/v1/environments/staging", ALICE, "");
    assert_eq!(env["manifest"], first["manifest"], "{env:#}");
    assert_eq!(env["paused"], true, "a rollback locks continuous deployment: {env:#}");

    let (a, b) = (first["cycle"].as_i64().unwrap(), second["cycle"].as_i64().unwrap());
    // History, audit (escaped), diff and PR pages.
    c.goto(&format!("{}/cycles?environment=staging", base()))
        .await
        .expect("history");
    assert!(c.source().await.expect("source").contains("rollback"));
    shot(&c, "history").await;
    c.goto(&format!("{}/audit", base())).await.expect("audit");
    let src = c.source().await.expect("source");
    assert!(src.contains("dashboard e2e: the new ogr is bad"), "{src}");
    assert!(src.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"), "{src}");
    shot(&c, "audit").await;
    c.goto(&format!("{}/diff?a={a}&b={b}", base())).await.expect("diff");
    let src = c.source().await.expect("source");
    assert!(
        src.contains("changed") && src.contains(&sb.rev("ogr", "HEAD")[..12]),
        "{src}"
    );
    shot(&c, "diff").await;
    c.goto(&format!("{}/pr/packit/ogr/1", base())).await.expect("pr");
    assert!(c.source().await.expect("source").contains("Comment commands"));
    shot(&c, "pr").await;

    // Raw bytes: markup from outside is escaped, never interpreted.
    let cookies = c.get_all_cookies().await.expect("cookies");
    let alice_cookie = cookies
        .iter()
        .find(|k| k.name() == "greenroom_session")
        .map(|k| format!("greenroom_session={}", k.value()))
        .expect("session cookie");
    assert!(
        cookies.iter().all(|k| !k.value().contains(ALICE)),
        "the cookie is not the token"
    );
    // A cycle's suites by tier: the passing blocking one and the failing
    // quarantined one (apart), its output escaped.
    let (code, raw) = request("GET", &format!("/cycles/{a}"), &[("Cookie", &alice_cookie)], "");
    assert_eq!(code, 200, "{raw}");
    assert!(raw.contains("<h2 id=\"suites\">Suites</h2>"), "{raw}");
    assert!(raw.contains("<th scope=\"row\">smoke</th><td>blocking</td>"), "{raw}");
    assert!(
        raw.contains("<th scope=\"row\">old-ui</th><td>quarantine</td>"),
        "{raw}"
    );
    assert!(
        raw.find("<h3>Blocking</h3>") < raw.find("<h3>Quarantined</h3>"),
        "{raw}"
    );
    assert!(raw.contains("&lt;b&gt;broken&lt;/b&gt; &amp; co"), "{raw}");
    assert!(!raw.contains("<b>broken"), "{raw}");
    assert!(raw.contains("Metric gates") && raw.contains("New errors"), "{raw}");
    c.goto(&format!("{}/cycles/{a}", base())).await.expect("cycle page");
    c.execute("document.getElementById('suites').scrollIntoView();", vec![])
        .await
        .expect("scroll");
    shot(&c, "cycle-suites").await;
    let (code, raw) = request("GET", "/audit", &[("Cookie", &alice_cookie)], "");
    assert_eq!(code, 200);
    assert!(!raw.contains("<script>alert"), "{raw}");
    assert!(raw.contains("content-security-policy"), "{raw}");
    // Forged posts: a valid session without the CSRF token, or from another origin.
    let form = "env=staging&reason=forged&csrf=0000";
    let h = [
        ("Cookie", alice_cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let (code, raw) = request("POST", "/actions/resume", &h, form);
    assert_eq!(code, 403, "{raw}");
    let csrf = c
        .find(Locator::Css("form[action='/logout'] input[name=csrf]"))
        .await
        .expect("csrf field")
        .attr("value")
        .await
        .expect("attr")
        .expect("value");
    let form = format!("env=staging&reason=forged&csrf={csrf}");
    let h3 = [
        ("Cookie", alice_cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Origin", "http://evil.example"),
    ];
    let (code, raw) = request("POST", "/actions/resume", &h3, &form);
    assert_eq!(code, 403, "{raw}");
    let (_, env) = api("GET", "/api/v1/environments/staging", ALICE, "");
    assert_eq!(env["paused"], true, "nothing forged went through: {env:#}");
    // No session at all.
    let (code, _) = request(
        "POST",
        "/actions/pause",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(code, 401);

    // A viewer sees no action buttons, and both the dashboard and the API refuse.
    c.find(Locator::Css("form[action='/logout'] button"))
        .await
        .expect("sign out")
        .click()
        .await
        .expect("click");
    until("the sign-in page", || async {
        (c.current_url().await.ok()?.path() == "/login").then_some(())
    })
    .await;
    sign_in(&c, VIC).await;
    let src = c.source().await.expect("source");
    assert!(src.contains("id=\"env-staging\""), "{src}");
    assert_eq!(count(&c, "a.button").await, 0, "no action for a viewer:\n{src}");
    assert!(!src.contains("/confirm/"), "{src}");
    shot(&c, "viewer").await;
    c.goto(&format!("{}/cycles/{running}", base()))
        .await
        .expect("cycle page");
    assert_eq!(count(&c, "a.button").await, 0);
    let cookies = c.get_all_cookies().await.expect("cookies");
    let vic_cookie = cookies
        .iter()
        .find(|k| k.name() == "greenroom_session")
        .map(|k| format!("greenroom_session={}", k.value()))
        .expect("session cookie");
    let vic_csrf = c
        .find(Locator::Css("form[action='/logout'] input[name=csrf]"))
        .await
        .expect("csrf field")
        .attr("value")
        .await
        .expect("attr")
        .expect("value");
    let (code, _) = request("GET", "/confirm/pause?env=staging", &[("Cookie", &vic_cookie)], "");
    assert_eq!(code, 403);
    let form = format!("env=staging&reason=viewer&csrf={vic_csrf}");
    let h = [
        ("Cookie", vic_cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let (code, raw) = request("POST", "/actions/resume", &h, &form);
    assert_eq!(code, 403, "{raw}");
    let (code, e) = api("POST", "/api/v1/environments/staging/resume", VIC, "");
    assert_eq!(code, 403, "{e}");
    let (code, e) = api(
        "POST",
        "/api/v1/environments/staging/rollback",
        VIC,
        r#"{"reason": "viewer"}"#,
    );
    assert_eq!(code, 403, "{e}");
    let (_, env) = api("GET", "/api/v1/environments/staging", ALICE, "");
    assert_eq!(env["paused"], true, "{env:#}");

    // A resume through the UI: the API takes no reason, the dashboard
    // keeps the one it asked for as a note in the audit trail.
    sign_in(&c, ALICE).await;
    c.goto(&format!("{}/confirm/resume?env=staging", base()))
        .await
        .expect("confirm resume");
    c.find(Locator::Id("reason"))
        .await
        .expect("reason")
        .send_keys("dashboard e2e: <i>back</i> to normal")
        .await
        .expect("type");
    c.find(Locator::Id("confirm"))
        .await
        .expect("confirm")
        .click()
        .await
        .expect("click");
    let audit = wait_until("the resume and its reason in the audit trail", || {
        let (_, audit) = api("GET", "/api/v1/audit?environment=staging", ALICE, "");
        let rows = audit.as_array()?.clone();
        rows.iter()
            .any(|r| r["action"] == "note" && r["reason"] == "dashboard e2e: <i>back</i> to normal")
            .then_some(rows)
    });
    assert!(audit.iter().any(|r| r["action"] == "resume"), "{audit:?}");
    let (_, env) = api("GET", "/api/v1/environments/staging", ALICE, "");
    assert_eq!(env["paused"], false, "{env:#}");

    c.close().await.expect("close the browser");
    // The sandbox's drop releases the leases and stops what runs.
}
