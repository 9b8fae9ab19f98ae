//! Contract check: every request the GitHub adapter makes is valid according
//! to GitHub's published OpenAPI description (`@octokit/openapi`,
//! `generated/api.github.com.json`), and every route the fake GitHub serves
//! exists in it.
//!
//! The adapter talks to Prism (`@stoplight/prism-cli`) running
//! `prism mock --errors` on the spec, through a small recording proxy in
//! this test. Prism reports a request that breaks the spec either with an
//! `sl-violations` header (when the operation documents an error response)
//! or with an `application/problem+json` answer (422/400 with a
//! `validation` list, 404 for an unknown route, 406 for an unknown media
//! type); any of those fails the test, with what Prism said. A deliberately
//! invalid request is sent first to prove the check can fail.
//!
//! One adjustment: GitHub documents `Accept: application/vnd.github+json`,
//! but its OpenAPI description lists the media type as `application/json`,
//! so Prism would answer 406. The proxy checks the adapter sent exactly the
//! documented value and forwards `application/json`.
//!
//! Prism and the spec come from npm: `npm ci --prefix contract` (CI runs it,
//! see `.ci/run`). Prism is started on a free port, waited for with a
//! deadline, and killed (process group) when the test ends, panics included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use greenroom::forge::github::Github;
use greenroom::forge::{CommitStatus, DeploymentState, Forge, STICKY_MARKER, StatusState};
use greenroom_fakeforge::FakeGithub;

/// How long Prism may take to load the spec and listen.
const STARTUP_DEADLINE: Duration = Duration::from_secs(150);

fn contract_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contract")
}

fn prism_bin() -> PathBuf {
    contract_dir().join("node_modules/.bin/prism")
}

fn spec_path() -> PathBuf {
    contract_dir().join("node_modules/@octokit/openapi/generated/api.github.com.json")
}

/// Fails (never skips) when the npm packages are not installed.
fn require_installed() {
    for p in [prism_bin(), spec_path()] {
        assert!(
            p.exists(),
            "{} is missing: run `npm ci --prefix contract` (CI does, in .ci/run) to install Prism and GitHub's OpenAPI description",
            p.display()
        );
    }
}

/// A running Prism; killed (its whole process group) when dropped.
struct Prism {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Prism {
    fn start(dir: &Path) -> (Prism, Duration) {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let log = dir.join("prism.log");
        let out = std::fs::File::create(&log).unwrap();
        let started = Instant::now();
        let child = Command::new(prism_bin())
            .args([
                "mock",
                "--errors",
                "-v",
                "warn",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .arg(spec_path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (is node on PATH?): {e}", prism_bin().display()));
        let mut prism = Prism { child, port, log };
        let deadline = started + STARTUP_DEADLINE;
        loop {
            if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Some(status) = prism.child.try_wait().unwrap() {
                panic!("prism exited ({status}) before listening:\n{}", prism.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "prism did not listen within {STARTUP_DEADLINE:?}:\n{}",
                prism.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let took = started.elapsed();
        (prism, took)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let Ok(pid) = i32::try_from(self.child.id()) else {
            return;
        };
        let group = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// One request through the proxy and Prism's answer.
#[derive(Debug, Clone)]
struct Exchange {
    method: String,
    path: String,
    query: String,
    accept: Option<String>,
    api_version: Option<String>,
    user_agent: Option<String>,
    status: u16,
    violations: Option<String>,
    content_type: String,
    body: String,
    /// Prism accepted the request but found the spec's own example answer
    /// invalid against the spec's schema (what it said); the proxy then
    /// answered with that example itself.
    example_defect: Option<String>,
}

impl Exchange {
    /// What Prism found wrong with the request, if anything.
    fn violation(&self) -> Option<String> {
        if self.example_defect.is_some() {
            return None;
        }
        if let Some(v) = &self.violations {
            return Some(format!("sl-violations: {v}"));
        }
        if self.content_type.starts_with("application/problem+json") || self.status >= 400 {
            return Some(format!("{} {}", self.status, self.body));
        }
        None
    }
}

/// Prism's 500 "Request/Response not valid" when every violation is about
/// the response (the spec's example), none about the request.
fn response_only_violations(status: u16, body: &str) -> Option<String> {
    if status != 500 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if !v["type"].as_str()?.ends_with("#VIOLATIONS") {
        return None;
    }
    let list = v["validation"].as_array()?;
    let all_response = !list.is_empty() && list.iter().all(|x| x["location"][0] == "response");
    all_response.then(|| {
        list.iter()
            .map(|x| x["message"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Follows a local `$ref`.
fn resolve<'a>(spec: &'a serde_json::Value, v: &'a serde_json::Value) -> &'a serde_json::Value {
    match v.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => spec.pointer(r.trim_start_matches('#')).unwrap_or(v),
        None => v,
    }
}

/// The spec's example answer (first 2xx, `application/json`) of the
/// operation `method path`.
fn spec_example(spec: &serde_json::Value, method: &str, path: &str) -> Option<(u16, serde_json::Value)> {
    let (_, ops) = spec["paths"]
        .as_object()?
        .iter()
        .filter(|(t, _)| matches_template(t, path))
        .max_by_key(|(t, _)| t.split('/').filter(|s| !s.starts_with('{')).count())?;
    let op = ops.get(method.to_ascii_lowercase())?;
    let (code, resp) = op["responses"]
        .as_object()?
        .iter()
        .filter(|(c, _)| c.starts_with('2'))
        .min_by_key(|(c, _)| c.to_string())?;
    let content = &resolve(spec, resp)["content"]["application/json"];
    let example = match content["examples"].as_object().and_then(|m| m.values().next()) {
        Some(e) => resolve(spec, e)["value"].clone(),
        None => content.get("example")?.clone(),
    };
    Some((code.parse().ok()?, example))
}

#[derive(Clone)]
struct Proxy {
    spec: Arc<serde_json::Value>,
    target: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<Exchange>>>,
    /// Makes the first listed issue comment carry the sticky marker, so that
    /// the adapter's edit path runs against the mock.
    inject_marker: Arc<AtomicBool>,
}

async fn forward(State(p): State<Proxy>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(String::from);
    let accept = header("accept");
    let mut out = p.client.request(
        reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap(),
        format!(
            "{}{}",
            p.target,
            parts.uri.path_and_query().map(|x| x.as_str()).unwrap_or("/")
        ),
    );
    for (k, v) in &parts.headers {
        if matches!(k.as_str(), "host" | "content-length" | "accept") {
            continue;
        }
        out = out.header(k.as_str(), v.as_bytes());
    }
    // GitHub's documented media type -> the spec's.
    let forwarded_accept = match accept.as_deref() {
        Some("application/vnd.github+json") => "application/json".to_string(),
        Some(other) => other.to_string(),
        None => "*/*".to_string(),
    };
    out = out.header("accept", forwarded_accept);
    let resp = out.body(body.to_vec()).send().await.unwrap();
    let status = resp.status().as_u16();
    let violations = resp
        .headers()
        .get("sl-violations")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut text = resp.text().await.unwrap();
    let mut status = status;
    let mut content_type = content_type;
    let example_defect = response_only_violations(status, &text);
    if example_defect.is_some() {
        let (code, example) = spec_example(&p.spec, parts.method.as_str(), &path)
            .unwrap_or_else(|| panic!("no example in the spec for {} {path}", parts.method));
        status = code;
        content_type = "application/json".into();
        text = example.to_string();
    }
    let is_comment_list = parts.method == axum::http::Method::GET
        && path.ends_with("/comments")
        && path.contains("/issues/")
        && !path.contains("/issues/comments");
    if is_comment_list && p.inject_marker.load(Ordering::SeqCst) {
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v[0]["body"] = serde_json::json!(format!("{STICKY_MARKER}\nan older status"));
        text = v.to_string();
    }
    p.seen.lock().unwrap().push(Exchange {
        method: parts.method.to_string(),
        path,
        query,
        accept,
        api_version: header("x-github-api-version"),
        user_agent: header("user-agent"),
        status,
        violations,
        content_type: content_type.clone(),
        body: text.clone(),
        example_defect,
    });
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Body::from(text))
        .unwrap()
}

async fn start_proxy(target: String, spec: Arc<serde_json::Value>) -> (String, Proxy) {
    let proxy = Proxy {
        spec,
        target,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        seen: Arc::new(Mutex::new(Vec::new())),
        inject_marker: Arc::new(AtomicBool::new(false)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(forward).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, proxy)
}

/// `/repos/{owner}/{repo}/pulls` matches `/repos/a/b/pulls`.
fn matches_template(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let p: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

/// `/repos/{owner}/{repo}` -> `/repos/{}/{}`.
fn shape(template: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn load_spec() -> serde_json::Value {
    let started = Instant::now();
    let file = std::fs::File::open(spec_path()).unwrap();
    let spec = serde_json::from_reader(std::io::BufReader::new(file)).unwrap();
    eprintln!("spec parsed in {:.1}s", started.elapsed().as_secs_f64());
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_requests_are_valid_against_the_published_openapi() {
    require_installed();
    let tmp = tempfile::tempdir().unwrap();
    let (prism, took) = Prism::start(tmp.path());
    eprintln!(
        "prism: listening after {:.1}s (spec {} MB)",
        took.as_secs_f64(),
        std::fs::metadata(spec_path()).unwrap().len() / 1_000_000
    );
    let (proxy_url, proxy) = start_proxy(prism.url(), Arc::new(load_spec())).await;

    // The check can fail: a state GitHub does not know, a bad query value.
    let client = reqwest::Client::new();
    client
        .post(format!(
            "{proxy_url}/repos/acme/api/statuses/6dcb09b5b57875f334f61aebed695e2e4193db5e"
        ))
        .header("content-type", "application/json")
        .header("accept", "application/vnd.github+json")
        .body(r#"{"state":"bogus","context":"greenroom/staging"}"#)
        .send()
        .await
        .unwrap();
    client
        .get(format!("{proxy_url}/repos/acme/api/pulls?state=opened"))
        .header("accept", "application/vnd.github+json")
        .send()
        .await
        .unwrap();
    {
        let seen = std::mem::take(&mut *proxy.seen.lock().unwrap());
        assert_eq!(seen.len(), 2);
        for e in &seen {
            assert!(e.violation().is_some(), "Prism did not flag an invalid request: {e:#?}");
        }
        assert!(seen[0].body.contains("state"), "{:#?}", seen[0]);
        assert!(
            seen[1].violations.as_deref().is_some_and(|v| v.contains("state")),
            "{:#?}",
            seen[1]
        );
    }

    // Every method of the adapter, against the mock.
    let f = Forge::Github(Github::new(&proxy_url, Some("ghp_contract_token".into())).unwrap());
    let repo = "octocat/Hello-World";
    let sha = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
    let prs = f.open_prs(repo, "main").await.unwrap();
    assert!(!prs.is_empty(), "the spec's example lists a pull request");
    assert!(prs[0].created_at > 0);
    f.changed_files(repo, 1347).await.unwrap();
    let mut st = CommitStatus {
        context: "greenroom/staging".into(),
        state: StatusState::Pending,
        target_url: Some("https://greenroom.example/cycles/1".into()),
        description: "é".repeat(200),
    };
    f.set_status(repo, sha, &st).await.unwrap();
    st.target_url = None;
    st.state = StatusState::Error;
    f.set_status(repo, sha, &st).await.unwrap();
    f.upsert_sticky(repo, 1347, "Staging: building").await.unwrap(); // creates
    proxy.inject_marker.store(true, Ordering::SeqCst);
    f.upsert_sticky(repo, 1347, "Staging: deployed").await.unwrap(); // edits
    f.comment(repo, 1347, "@octocat deployed").await.unwrap();
    assert!(f.permission(repo, "octocat").await.unwrap().is_some());
    let id = f
        .create_deployment(repo, sha, "staging", "greenroom cycle 1")
        .await
        .unwrap();
    let id = id.expect("the spec's example deployment has an id");
    for (state, env_url, log_url) in [
        (
            DeploymentState::InProgress,
            None,
            Some("https://greenroom.example/cycles/1"),
        ),
        (
            DeploymentState::Success,
            Some("https://staging.example"),
            Some("https://greenroom.example/cycles/1"),
        ),
        (DeploymentState::Failure, None, None),
        (DeploymentState::Error, None, None),
        (DeploymentState::Inactive, None, None),
    ] {
        f.deployment_status(repo, id, state, env_url, log_url).await.unwrap();
    }

    let seen = proxy.seen.lock().unwrap().clone();
    let bad: Vec<String> = seen
        .iter()
        .filter_map(|e| {
            e.violation()
                .map(|v| format!("{} {}?{}: {v}", e.method, e.path, e.query))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "requests GitHub's OpenAPI description rejects:\n{}",
        bad.join("\n")
    );
    for e in seen.iter().filter(|e| e.example_defect.is_some()) {
        eprintln!(
            "note: the spec's own example for {} {} fails its schema ({}); answered with it anyway",
            e.method,
            e.path,
            e.example_defect.as_deref().unwrap_or_default()
        );
    }
    for e in &seen {
        assert_eq!(e.accept.as_deref(), Some("application/vnd.github+json"), "{e:#?}");
        assert_eq!(e.api_version.as_deref(), Some("2022-11-28"), "{e:#?}");
        assert!(
            e.user_agent.as_deref().is_some_and(|u| u.starts_with("greenroom/")),
            "{e:#?}"
        );
    }

    // Every route the adapter uses was exercised (the fake serves the same).
    let used: BTreeSet<(String, String)> = seen
        .iter()
        .filter_map(|e| {
            FakeGithub::ROUTES
                .iter()
                .find(|(m, t)| *m == e.method && matches_template(t, &e.path))
                .map(|(m, t)| (m.to_string(), t.to_string()))
        })
        .collect();
    let all: BTreeSet<(String, String)> = FakeGithub::ROUTES
        .iter()
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect();
    assert_eq!(
        used, all,
        "routes the adapter did not use, or used without the fake serving them"
    );
    assert_eq!(
        seen.iter()
            .filter(|e| FakeGithub::ROUTES
                .iter()
                .any(|(m, t)| *m == e.method && matches_template(t, &e.path)))
            .count(),
        seen.len(),
        "every request the adapter made is one the fake serves: {seen:#?}"
    );
    drop(prism);
}

#[test]
fn the_fake_githubs_routes_exist_in_the_published_openapi() {
    require_installed();
    let spec = load_spec();
    let paths = spec["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (method, template) in FakeGithub::ROUTES {
        let found = paths
            .iter()
            .any(|(p, ops)| shape(p) == shape(template) && ops.get(method.to_ascii_lowercase()).is_some());
        if !found {
            missing.push(format!("{method} {template}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes of the fake GitHub not in the spec: {missing:?}"
    );
    // The parameter names too, as GitHub spells them.
    for (method, template) in FakeGithub::ROUTES {
        assert!(
            paths
                .get(*template)
                .and_then(|ops| ops.get(method.to_ascii_lowercase()))
                .is_some(),
            "{method} {template}: spelled differently in the spec"
        );
    }
}
