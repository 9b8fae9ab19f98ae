//! The runner of `kind = "http-matrix"` suites (issue #6 point 3, seed
//! 004): the I/O half of `core::matrix`.
//!
//! Every combination of the axes runs on its own (at most `concurrency` at
//! a time): its setup steps, then its steps in order, values captured from
//! responses flowing into later steps. A failed setup step or step stops
//! the combination; the steps after it are reported as not run. Fixture
//! commands (`run`) are shell commands from the config that get the axis
//! values and captures only as environment variables (`MATRIX_<NAME>`),
//! never in their text.
//!
//! Requests go through reqwest (rustls, no proxy, no redirects followed),
//! each timed from sending to the end of the body. Every exchange is kept
//! (method, URL, headers with credentials redacted, bodies up to
//! [`BODY_LIMIT`]); a failing case carries its whole exchange in its
//! JUnit `system-out`. The result is one JUnit test case per combination ×
//! step (`group_type/stale verify`, class = the suite's name), plus one
//! per failed setup step, and a one-line summary (`core::matrix::summary`).

use greenroom_core::config::Suite;
use greenroom_core::junit::{self, Outcome, TestCase, TestSuite};
use greenroom_core::matrix::{self as m, Action, Combination, Escape, Matrix, Step};
use greenroom_driver::{CommandSpec, Redactor, run_command};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most bytes of a body kept in a report.
pub const BODY_LIMIT: usize = 16 * 1024;

/// Longest a single request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What fixture commands get and where their output goes.
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// Directory they run in.
    pub cwd: PathBuf,
    /// Variables (the suite's: URLs, manifest, cycle, the environment's vars).
    pub env: Vec<(String, String)>,
    /// Values redacted from logs and reports.
    pub secrets: Vec<String>,
    /// The suite's log, which fixture output and the request lines are appended to.
    pub log: PathBuf,
    /// Limit of one fixture command.
    pub timeout: Duration,
}

/// How a matrix run went.
#[derive(Debug, Clone)]
pub struct Run {
    /// One case per combination × step (plus failed setup steps), in combination order.
    pub cases: Vec<TestCase>,
    /// The failed ones, for the summary.
    pub failures: Vec<m::Failure>,
    /// `1 of 24 failed: group_type/stale verify -> 500 ...`.
    pub summary: String,
    /// How many requests were made.
    pub requests: usize,
}

impl Run {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The cases as a JUnit suite named after the matrix suite.
    pub fn junit(&self, suite: &str, time: f64) -> TestSuite {
        TestSuite {
            name: suite.to_string(),
            timestamp: None,
            time,
            properties: vec![("greenroom.matrix.summary".into(), junit::xml_safe(&self.summary))],
            cases: self.cases.clone(),
        }
    }
}

/// One request and what came back, as kept for the report.
#[derive(Debug, Clone, Default)]
struct Exchange {
    method: String,
    url: String,
    request_headers: Vec<(String, String)>,
    request_body: Option<String>,
    status: Option<u16>,
    response_headers: Vec<(String, String)>,
    response_body: String,
    latency_ms: u64,
    error: Option<String>,
}

impl Exchange {
    fn transcript(&self, redactor: &Redactor) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "> {} {}", self.method, self.url);
        for (k, v) in &self.request_headers {
            let _ = writeln!(s, "> {k}: {}", shown_header(k, v));
        }
        if let Some(b) = &self.request_body {
            let _ = writeln!(s, ">\n{}", m::truncate(b, BODY_LIMIT));
        }
        match (&self.status, &self.error) {
            (_, Some(e)) => {
                let _ = writeln!(s, "\n< no response after {} ms: {e}", self.latency_ms);
            }
            (Some(code), None) => {
                let _ = writeln!(s, "\n< {code} ({} ms)", self.latency_ms);
                for (k, v) in &self.response_headers {
                    let _ = writeln!(s, "< {k}: {}", shown_header(k, v));
                }
                if !self.response_body.is_empty() {
                    let _ = writeln!(s, "<\n{}", m::truncate(&self.response_body, BODY_LIMIT));
                }
            }
            (None, None) => {}
        }
        junit::xml_safe(&redactor.redact(&s))
    }
}

fn shown_header<'a>(name: &str, value: &'a str) -> &'a str {
    if m::secret_header(name) { "<redacted>" } else { value }
}

/// What one step did.
struct StepResult {
    failures: Vec<String>,
    exchange: Option<Exchange>,
    captured: Vec<(String, String)>,
    time: f64,
}

/// The base URL of a matrix in an environment: `component`'s URL there or `base_url`.
pub fn base_url(matrix: &Matrix, urls: &std::collections::BTreeMap<String, String>) -> Result<String, String> {
    match &matrix.target {
        m::Target::BaseUrl(u) => Ok(u.trim_end_matches('/').to_string()),
        m::Target::Component(c) => urls
            .get(c)
            .map(|u| u.trim_end_matches('/').to_string())
            .ok_or_else(|| format!("component `{c}` has no URL in this environment (is it part of it, with a `url`?)")),
    }
}

/// Runs every combination of `matrix` against `base`.
pub async fn run(suite: &Suite, matrix: &Matrix, base: &str, fixtures: &Fixtures) -> anyhow::Result<Run> {
    let combos = m::combinations(&matrix.axes)?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let shared = Arc::new(Shared {
        suite: suite.name.clone(),
        matrix: matrix.clone(),
        base: base.to_string(),
        fixtures: fixtures.clone(),
        client,
        redactor: Redactor::new(&fixtures.secrets),
        log: tokio::sync::Mutex::new(()),
    });
    let limit = Arc::new(tokio::sync::Semaphore::new(matrix.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for combo in combos {
        let (shared, limit) = (shared.clone(), limit.clone());
        set.spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = limit.acquire_owned().await.ok();
            let index = combo.index;
            (index, run_combination(&shared, combo).await)
        });
    }
    let mut done: Vec<(usize, CombinationResult)> = Vec::new();
    while let Some(r) = set.join_next().await {
        done.push(r?);
    }
    done.sort_by_key(|(i, _)| *i);
    let mut out = Run {
        cases: Vec::new(),
        failures: Vec::new(),
        summary: String::new(),
        requests: 0,
    };
    for (_, r) in done {
        out.cases.extend(r.cases);
        out.failures.extend(r.failures);
        out.requests += r.requests;
    }
    out.summary = m::summary(out.cases.len(), &out.failures);
    Ok(out)
}

struct Shared {
    suite: String,
    matrix: Matrix,
    base: String,
    fixtures: Fixtures,
    client: reqwest::Client,
    redactor: Redactor,
    /// Serializes appends to the suite's log.
    log: tokio::sync::Mutex<()>,
}

struct CombinationResult {
    cases: Vec<TestCase>,
    failures: Vec<m::Failure>,
    requests: usize,
}

async fn run_combination(sh: &Shared, combo: Combination) -> CombinationResult {
    let label = combo.label();
    let mut values = combo.values.clone();
    values.push((m::COMBINATION.to_string(), label.clone()));
    let mut out = CombinationResult {
        cases: Vec::new(),
        failures: Vec::new(),
        requests: 0,
    };
    // Why the rest of this combination does not run, once something failed.
    let mut stopped: Option<String> = None;
    for step in &sh.matrix.setup {
        let r = run_step(sh, step, &values, &label).await;
        out.requests += usize::from(r.exchange.is_some());
        if r.failures.is_empty() {
            values.extend(r.captured);
            continue;
        }
        let name = format!("setup:{}", step.name);
        out.cases.push(failed_case(sh, &label, &name, &values, &r));
        out.failures.push(failure(&label, &name, &r));
        stopped = Some(format!("not run: setup step `{}` failed", step.name));
        break;
    }
    for step in &sh.matrix.steps {
        let case_name = format!("{label} {}", step.name);
        if let Some(why) = &stopped {
            out.cases.push(TestCase {
                name: case_name,
                classname: sh.suite.clone(),
                time: 0.0,
                outcome: Outcome::Skipped { message: why.clone() },
                system_out: None,
            });
            continue;
        }
        let r = run_step(sh, step, &values, &label).await;
        out.requests += usize::from(r.exchange.is_some());
        if r.failures.is_empty() {
            values.extend(r.captured);
            out.cases.push(TestCase {
                name: case_name,
                classname: sh.suite.clone(),
                time: r.time,
                outcome: Outcome::Passed,
                system_out: None,
            });
        } else {
            out.cases.push(failed_case(sh, &label, &step.name, &values, &r));
            out.failures.push(failure(&label, &step.name, &r));
            stopped = Some(format!("not run: `{}` failed before it", step.name));
        }
    }
    out
}

fn failure(label: &str, step: &str, r: &StepResult) -> m::Failure {
    m::Failure {
        combination: label.to_string(),
        step: step.to_string(),
        detail: r.failures.first().cloned().unwrap_or_default(),
    }
}

fn failed_case(sh: &Shared, label: &str, step: &str, values: &[(String, String)], r: &StepResult) -> TestCase {
    let mut out = String::new();
    let _ = writeln!(out, "combination {label}:");
    for (k, v) in values {
        let _ = writeln!(out, "  {k} = {v}");
    }
    let _ = writeln!(out, "\nfailed:");
    for f in &r.failures {
        let _ = writeln!(out, "  - {f}");
    }
    if let Some(x) = &r.exchange {
        let _ = writeln!(out, "\n{}", x.transcript(&sh.redactor));
    }
    let first = r.failures.first().cloned().unwrap_or_default();
    TestCase {
        name: format!("{label} {step}"),
        classname: sh.suite.clone(),
        time: r.time,
        outcome: Outcome::Failed {
            message: junit::xml_safe(&sh.redactor.redact(&m::truncate(&first, 300))),
            text: junit::xml_safe(&sh.redactor.redact(&r.failures.join("\n"))),
        },
        system_out: Some(junit::xml_safe(&sh.redactor.redact(&out))),
    }
}

async fn run_step(sh: &Shared, step: &Step, values: &[(String, String)], label: &str) -> StepResult {
    let t = Instant::now();
    match &step.action {
        Action::Run(command) => {
            let mut env = sh.fixtures.env.clone();
            for (k, v) in values {
                env.push((m::env_var(k), v.clone()));
            }
            let spec = CommandSpec {
                command: command.clone(),
                cwd: sh.fixtures.cwd.clone(),
                env,
                secret_values: sh.fixtures.secrets.clone(),
                log_path: sh.fixtures.log.clone(),
                timeout: sh.fixtures.timeout,
            };
            let failures = match run_command(&spec).await {
                Ok(o) if o.success => vec![],
                Ok(o) if o.timed_out => vec![format!(
                    "fixture command timed out after {}",
                    humantime::format_duration(sh.fixtures.timeout)
                )],
                Ok(o) => vec![format!(
                    "fixture command exited with status {} (its output is in the suite's log)",
                    o.code.map(|c| c.to_string()).unwrap_or_else(|| "?".into())
                )],
                Err(e) => vec![format!("fixture command could not run: {e}")],
            };
            StepResult {
                failures,
                exchange: None,
                captured: vec![],
                time: t.elapsed().as_secs_f64(),
            }
        }
        Action::Request(req) => {
            let url = format!("{}{}", sh.base, m::render(&req.path, values, Escape::Url));
            let headers: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), m::render(v, values, Escape::None)))
                .collect();
            let body = req.body.as_ref().map(|b| m::render(b, values, Escape::Json));
            let mut x = exchange(sh, &req.method, &url, headers, body).await;
            let mut failures = Vec::new();
            let mut captured = Vec::new();
            match (x.status, &x.error) {
                (Some(status), None) => {
                    let resp = m::Response {
                        status,
                        body: std::mem::take(&mut x.response_body),
                        latency_ms: x.latency_ms,
                    };
                    failures = m::check(&step.expect, &resp, values);
                    if failures.is_empty() {
                        match m::capture(&step.capture, &resp.body) {
                            Ok(c) => captured = c,
                            Err(e) => failures.push(e),
                        }
                    }
                    x.response_body = resp.body;
                }
                (_, Some(e)) => failures.push(format!("no response: {e}")),
                (None, None) => failures.push("no response".into()),
            }
            let line = format!(
                "{label} {}: {} {} -> {} ({} ms){}\n",
                step.name,
                req.method,
                url,
                x.status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                x.latency_ms,
                failures.first().map(|f| format!(" FAILED: {f}")).unwrap_or_default()
            );
            append_log(sh, &line).await;
            StepResult {
                failures,
                exchange: Some(x),
                captured,
                time: t.elapsed().as_secs_f64(),
            }
        }
    }
}

async fn exchange(
    sh: &Shared,
    method: &str,
    url: &str,
    headers: Vec<(String, String)>,
    body: Option<String>,
) -> Exchange {
    let mut x = Exchange {
        method: method.to_string(),
        url: url.to_string(),
        request_headers: headers.clone(),
        request_body: body.clone(),
        ..Default::default()
    };
    let method = match reqwest::Method::from_bytes(method.as_bytes()) {
        Ok(mth) => mth,
        Err(e) => {
            x.error = Some(format!("invalid method: {e}"));
            return x;
        }
    };
    let mut rb = sh.client.request(method, url);
    for (k, v) in &headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    if let Some(b) = body {
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            rb = rb.header("content-type", "application/json");
            x.request_headers
                .push(("content-type".into(), "application/json".into()));
        }
        rb = rb.body(b);
    }
    let t = Instant::now();
    let result = match rb.send().await {
        Ok(resp) => {
            x.status = Some(resp.status().as_u16());
            x.response_headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).to_string()))
                .collect();
            resp.text().await.map(|t| x.response_body = t)
        }
        Err(e) => Err(e),
    };
    x.latency_ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
    if let Err(e) = result {
        // reqwest's message names the URL, which is ours: nothing secret.
        x.error = Some(error_chain(&e));
    }
    x
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let _ = write!(s, ": {c}");
        src = c.source();
    }
    s
}

async fn append_log(sh: &Shared, line: &str) {
    use tokio::io::AsyncWriteExt;
    let _guard = sh.log.lock().await;
    let line = sh.redactor.redact(line).into_owned();
    if let Some(dir) = sh.fixtures.log.parent() {
        let _ = tokio::fs::create_dir_all(dir).await;
    }
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&sh.fixtures.log)
        .await;
    if let Ok(mut f) = file {
        let _ = f.write_all(line.as_bytes()).await;
    }
}

/// Writes a run's cases as a JUnit file into `dir` (the suite's
/// `GREENROOM_JUNIT_DIR`, which `verify::write_junit` merges).
pub fn write_junit(dir: &Path, suite: &str, run: &Run, time: f64) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("http-matrix.xml");
    std::fs::write(&path, junit::render(suite, &[run.junit(suite, time)]))?;
    Ok(path)
}
