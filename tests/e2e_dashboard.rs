//! The dashboard end to end, in headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver by fantoccini) against a real
//! `greenroom serve` with real cycles of the sample components:
//!
//! - signing in with an API token; the environments page shows the
//!   deployed commits;
//! - a running cycle's page updates live (server-sent events): its stages
//!   grow and its result turns `succeeded` while the page is not reloaded;
//! - a running cycle's log page receives a line appended to the log after
//!   it loaded (streamed, as text); the stream itself, read with reqwest,
//!   gives the lines in order with their byte offsets as ids, goes on from
//!   `Last-Event-ID`, ends with `end` once the cycle finished, and answers
//!   404 for an unknown component;
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

/// One server-sent event: (event, id, data).
type SseEvent = (String, Option<String>, String);

/// A server-sent event stream read with reqwest.
struct SseReader {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl SseReader {
    async fn open(path: &str, cookie: &str, extra: &[(&str, &str)]) -> (u16, Option<SseReader>) {
        let client = reqwest::Client::builder().no_proxy().build().expect("client");
        let mut req = client.get(format!("{}{path}", base())).header("Cookie", cookie);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let code = resp.status().as_u16();
        if code != 200 {
            return (code, None);
        }
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        (code, Some(SseReader { resp, buf: Vec::new() }))
    }

    /// The next event (keep-alive comments skipped); `None` when the stream ended.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8(self.buf[..i].to_vec()).expect("utf-8 event");
                self.buf.drain(..i + 2);
                let (mut event, mut id, mut data) = ("message".to_string(), None, Vec::new());
                for line in block.split('\n') {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => event = value.to_string(),
                        "id" => id = Some(value.to_string()),
                        "data" => data.push(value.to_string()),
                        _ => {}
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some((event, id, data.join("\n")));
            }
            let chunk = tokio::time::timeout(DEADLINE, self.resp.chunk())
                .await
                .expect("an event within the deadline")
                .expect("read the stream")?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The next `log` event (others skipped).
    async fn next_log(&mut self) -> (u64, String) {
        loop {
            let (event, id, data) = self.next().await.expect("the stream goes on");
            if event == "log" {
                return (id.expect("an id").parse().expect("an offset"), data);
            }
            assert!(event == "hello", "unexpected {event}: {data}");
        }
    }
}

/// Appends to a file (as a component writing its log).
fn append(path: &str, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open the log");
    f.write_all(text.as_bytes()).expect("append");
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
    // Approve only once the cycle waits for it (built by then, so its
    // build log exists).
    wait_until("the cycle to wait for its approval", || {
        let (_, detail) = api("GET", &format!("/api/v1/cycles/{running}"), ALICE, "");
        detail["stages"]
            .as_array()?
            .iter()
            .any(|s| s["result"] == "waiting")
            .then_some(())
    });
    let (_, detail) = api("GET", &format!("/api/v1/cycles/{running}"), ALICE, "");
    let (comp, log_file) = detail["components"]
        .as_array()
        .expect("components")
        .iter()
        .find_map(|x| {
            Some((
                x["component"].as_str()?.to_string(),
                x["build_log"].as_str()?.to_string(),
            ))
        })
        .unwrap_or_else(|| panic!("a build log in the running cycle: {detail:#}"));
    let log_page = format!("/cycles/{running}/logs/{comp}/build");
    let cookie = c
        .get_all_cookies()
        .await
        .expect("cookies")
        .iter()
        .find(|k| k.name() == "greenroom_session")
        .map(|k| format!("greenroom_session={}", k.value()))
        .expect("session cookie");

    // The log's stream, read over HTTP: every line from offset 0 in order,
    // each event's id the byte offset after it.
    // (A cached build's log may be empty: give it lines of its own first.)
    append(&log_file, "early one\nearly two é\nearly three\n");
    let before = std::fs::read_to_string(&log_file).expect("the build log");
    assert!(!before.contains('\r'), "{before}");
    let (code, sse) = SseReader::open(&format!("{log_page}/stream?from=0"), &cookie, &[]).await;
    assert_eq!(code, 200);
    let mut sse = sse.expect("a stream");
    let mut got = String::new();
    while got.len() < before.len() {
        let (id, data) = sse.next_log().await;
        got.push_str(&data);
        assert_eq!(id as usize, got.len(), "the id is the offset after the text");
    }
    assert_eq!(got, before);
    append(&log_file, "streamed line one\nstreamed line two\n");
    let mut more = String::new();
    let mut last = 0;
    while more.len() < "streamed line one\nstreamed line two\n".len() {
        let (id, data) = sse.next_log().await;
        more.push_str(&data);
        last = id;
    }
    assert_eq!(more, "streamed line one\nstreamed line two\n");
    assert_eq!(last as usize, before.len() + more.len());
    drop(sse);
    // A reconnection goes on from `Last-Event-ID` (which wins over `from`).
    let resume = (before.len() + "streamed line one\n".len()).to_string();
    let (_, sse) = SseReader::open(
        &format!("{log_page}/stream?from=0"),
        &cookie,
        &[("Last-Event-ID", resume.as_str())],
    )
    .await;
    let (id, data) = sse.expect("a stream").next_log().await;
    assert_eq!(
        (id as usize, data.as_str()),
        (before.len() + more.len(), "streamed line two\n")
    );
    // Unknown component or log: 404; not signed in: 401.
    let (code, _) = SseReader::open(&format!("/cycles/{running}/logs/nope/build/stream"), &cookie, &[]).await;
    assert_eq!(code, 404);
    let (code, _) = SseReader::open(&format!("/cycles/{running}/logs/{comp}/other/stream"), &cookie, &[]).await;
    assert_eq!(code, 404);
    let (code, _) = SseReader::open(&format!("{log_page}/stream"), "greenroom_session=forged", &[]).await;
    assert_eq!(code, 401);

    // The cycle page names its logs as live; the log page, opened while the
    // cycle runs, receives a line appended after it loaded, as text.
    c.goto(&format!("{}/cycles/{running}", base()))
        .await
        .expect("cycle page");
    let src = c.source().await.expect("source");
    assert!(src.contains("build log (live)") && src.contains(&log_page), "{src}");
    c.goto(&format!("{}{log_page}", base())).await.expect("log page");
    until("the live log connection", || async {
        let t = c.find(Locator::Id("log-status")).await.ok()?.text().await.ok()?;
        t.contains("connected").then_some(())
    })
    .await;
    c.execute("window.__greenroomLogMarker = 7;", vec![])
        .await
        .expect("marker");
    append(&log_file, "appended after the page loaded <b>not bold</b>\n");
    until("the appended line on the log page", || async {
        let t = c.find(Locator::Id("log")).await.ok()?.text().await.ok()?;
        t.contains("appended after the page loaded <b>not bold</b>")
            .then_some(())
    })
    .await;
    assert_eq!(count(&c, "#log b").await, 0, "log text is never markup");
    let text = c
        .find(Locator::Id("log"))
        .await
        .expect("log")
        .text()
        .await
        .expect("text");
    assert_eq!(text.matches("streamed line two").count(), 1, "nothing doubled:\n{text}");
    let marker = c
        .execute("return window.__greenroomLogMarker;", vec![])
        .await
        .expect("marker");
    assert_eq!(marker, json!(7), "the log page was reloaded instead of streamed");
    shot(&c, "log-live").await;

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
    // Once the cycle finished, its log's stream sends the rest, then `end`, and closes.
    let (_, sse) = SseReader::open(&format!("{log_page}/stream?from=0"), &cookie, &[]).await;
    let mut sse = sse.expect("a stream");
    let whole = std::fs::read_to_string(&log_file).expect("the build log");
    let mut got = String::new();
    loop {
        let (event, id, data) = sse.next().await.expect("events up to `end`");
        match event.as_str() {
            "hello" => {}
            "log" => got.push_str(&data),
            "end" => {
                assert_eq!(id, Some(whole.len().to_string()));
                break;
            }
            other => panic!("unexpected {other}: {data}"),
        }
    }
    assert_eq!(got, whole);
    assert!(sse.next().await.is_none(), "the stream closes after `end`");

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
