//! The monitoring shipped in `ops/` (issue #6, point 8), checked with the
//! real tools of Debian's `prometheus` package (installed by `.ci/run`):
//!
//! - `promtool check rules` and `promtool test rules` (the unit tests beside
//!   the rules, in virtual time);
//! - a real Prometheus loads the rules while scraping a real `greenroom
//!   serve`: every group and rule of the file is listed and evaluates
//!   without error, `greenroom pause` raises GreenroomEnvironmentPaused
//!   (pending with the shipped 6 h `for:`, firing in a copy with `for: 0s`),
//!   and a killed server raises GreenroomDown;
//! - the Grafana dashboard is well formed, each of its queries runs in that
//!   Prometheus, and it only names metrics greenroom exports (scraped from
//!   the server), recording rules of the rules file, or Prometheus's own
//!   `up` and `ALERTS`; and every exported metric has a panel. So neither
//!   can drift from `src/server/metrics.rs`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The alerting rules of `ops/prometheus/greenroom.rules.yml`.
const ALERTS: &[&str] = &[
    "GreenroomCycleFailures",
    "GreenroomCycleInterrupted",
    "GreenroomCycleStuck",
    "GreenroomWebhookErrors",
    "GreenroomWebhookRejected",
    "GreenroomWebhookBacklog",
    "GreenroomLeaseNearExpiry",
    "GreenroomLeaseQueueWaiting",
    "GreenroomEnvironmentPaused",
    "GreenroomDown",
    "GreenroomDiskUsageHigh",
];

/// Its recording rules (the dashboard may use them).
const RECORDS: &[&str] = &["greenroom:cycles:increase1h", "greenroom:webhook_deliveries:increase1h"];

/// Its groups.
const GROUPS: &[&str] = &[
    "greenroom-cycles",
    "greenroom-webhooks",
    "greenroom-leases",
    "greenroom-environments",
    "greenroom-server",
];

/// Metrics the rules and the dashboard use that `greenroom serve` does not
/// export yet (ops/README.md, "Metrics not exported yet"). Once metrics.rs
/// exports one, this test fails until it is removed from here and from the
/// README's table.
const NOT_EXPORTED_YET: &[&str] = &[];

/// Series Prometheus makes itself.
const PROMETHEUS_OWN: &[&str] = &["up", "ALERTS"];

const SECRET: &str = "e2e ops webhook secret";

fn ops(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ops").join(rel)
}

fn tool(name: &str) -> String {
    let path = format!("/usr/bin/{name}");
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: install Debian's `prometheus` package (.ci/run does)"
    );
    path
}

/// Runs a tool to completion; panics with its output unless it succeeds.
#[track_caller]
fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The body of a chunked HTTP/1.1 response (`http_get` returns it as sent:
/// Prometheus chunks its larger answers). A JSON body never starts with a
/// hexadecimal chunk size, so other bodies are returned as they are.
fn dechunk(body: &str) -> String {
    let mut rest = body;
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].strip_prefix("\r\n").unwrap_or(&tail[n..]);
    }
    out
}

/// GET a Prometheus API URL: the JSON document if it answers 200.
fn api(url: &str) -> Option<Value> {
    let (code, body) = http_get(url)?;
    let body = if body.starts_with('{') { body } else { dechunk(&body) };
    let v: Value = serde_json::from_str(&body).ok()?;
    (code == 200 && v["status"] == "success").then_some(v)
}

/// POSTs to the server on loopback: `(status, body)`.
fn post(port: u16, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write headers");
    s.write_all(body).expect("write body");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// Names of the samples of an OpenMetrics / Prometheus text exposition.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Metric families (`# TYPE` lines) of an exposition.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The metric names a PromQL expression selects: identifiers that are not
/// functions or aggregations (followed by `(`), keywords, label names
/// (inside `{}` or the label list of `by`, `without`, `on`, `ignoring`,
/// `group_left`, `group_right`), durations, numbers, strings or Grafana
/// variables (`$name`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &["and", "or", "unless", "offset", "bool", "inf", "nan", "atan2"];
    // Aggregations may be followed by `by (...)` rather than `(`.
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let (mut braces, mut brackets) = (0usize, 0usize);
    let mut label_list = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c == '$' || c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // A variable, a number or a duration: skip the whole word.
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.:".contains(chars[i])) {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if LABEL_LISTS.contains(&word.as_str()) {
                label_list = next == Some(&'(');
            } else if braces == 0
                && brackets == 0
                && !label_list
                && next != Some(&'(')
                && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
                && !AGGREGATIONS.contains(&word.as_str())
            {
                names.insert(word);
            }
            continue;
        }
        match c {
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            ')' => label_list = false,
            _ => {}
        }
        i += 1;
    }
    names
}

#[test]
fn metric_names_of_promql() {
    let got = metric_names(
        "sum by (le, stage) (rate(greenroom_x_bucket{environment=~\"$environment\", a=\"b c\"}[$__rate_interval])) \
         / on (job) group_left () up offset 1h > 0.5 and greenroom:y:increase1h or vector(0) * 1e9",
    );
    let want: BTreeSet<String> = ["greenroom_x_bucket", "up", "greenroom:y:increase1h"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let promtool = tool("promtool");
    let rules = ops("prometheus/greenroom.rules.yml");
    let out = run_ok(&promtool, &["check", "rules", &rules.display().to_string()]);
    let n = ALERTS.len() + RECORDS.len();
    assert!(out.contains(&format!("SUCCESS: {n} rules found")), "{out}");
    let tests = ops("prometheus/greenroom.rules.test.yml");
    let out = run_ok(&promtool, &["test", "rules", &tests.display().to_string()]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// `GET /api/v1/rules`: the groups of `file`.
fn groups_of(prom: u16, file: &Path) -> Vec<Value> {
    let url = format!("http://127.0.0.1:{prom}/api/v1/rules");
    let v = api(&url).unwrap_or_else(|| panic!("GET {url} fails"));
    v["data"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|g| g["file"].as_str() == Some(&file.display().to_string()))
        .collect()
}

/// The rule named `name` of `file` (any group).
fn rule(prom: u16, file: &Path, name: &str) -> Value {
    groups_of(prom, file)
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no rule {name} in {}", file.display()))
}

/// The active alert of rule `name` in `file` whose label `label` is `value`:
/// its state ("pending", "firing") and annotations.
fn alert_for(prom: u16, file: &Path, name: &str, label: &str, value: &str) -> Option<(String, Value)> {
    rule(prom, file, name)["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"][label] == value)
        .map(|a| (a["state"].as_str().unwrap_or("").to_string(), a["annotations"].clone()))
}

#[test]
fn prometheus_loads_the_rules_and_the_dashboard_matches_the_metrics() {
    let prometheus = tool("prometheus");
    let promtool = tool("promtool");
    let index = 52;
    let port = 21000 + 100 * index + 90;
    let prom_port = port + 1;
    let extra = format!(
        "\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n[github]\nwebhook_secret = \"env:GREENROOM_E2E_HOOK_SECRET\"\n"
    );
    let mut sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    sb.env.push(("GREENROOM_E2E_HOOK_SECRET".into(), SECRET.into()));

    // Something in every metric family: a cycle with its stages and what it
    // deployed, and a webhook delivery.
    sb.ok(&["deploy", "--env", "solo", "--release"]);
    let mut server = sb.spawn(&["serve"]);
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    wait_until("/metrics to answer", || {
        assert!(!server.exited(), "greenroom serve exited");
        http_get(&metrics_url).filter(|(c, _)| *c == 200)
    });
    let body = br#"{"zen":"Design for failure.","hook_id":1,"repository":{"full_name":"Codertocat/Hello-World"}}"#;
    let headers = [
        ("X-GitHub-Event", "ping".to_string()),
        ("X-GitHub-Delivery", "ops-ping-1".to_string()),
        (
            "X-Hub-Signature-256",
            greenroom_webhook::sign_github(SECRET.as_bytes(), body),
        ),
    ];
    let (code, resp) = post(port, "/webhooks/github", &headers, body);
    assert_eq!(code, 200, "{resp}");
    // A webhook refused (wrong signature), counted though not stored.
    let bad = [
        ("X-GitHub-Event", "ping".to_string()),
        ("X-GitHub-Delivery", "ops-ping-bad".to_string()),
        ("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64))),
    ];
    let (code, resp) = post(port, "/webhooks/github", &bad, body);
    assert_eq!(code, 401, "{resp}");
    // A cycle in progress, holding its lease: ogr's build sleeps (`SLOW`).
    let repo = sb.repo("ogr");
    git(&repo, &["checkout", "-q", "-b", "slow"]);
    std::fs::write(repo.join("SLOW"), "").expect("SLOW");
    git(&repo, &["add", "SLOW"]);
    git(&repo, &["commit", "-q", "-m", "slow build"]);
    git(&repo, &["checkout", "-q", "main"]);
    let slow = sb.spawn(&["deploy", "--env", "staging", "ogr=branch:slow"]);
    let scrape = wait_until("the ping, the refusal and the running cycle to show", || {
        let text = http_get(&metrics_url).filter(|(c, _)| *c == 200)?.1;
        [
            "greenroom_webhook_deliveries_total{source=\"github\",event=\"ping\",outcome=\"recorded\"}",
            "greenroom_webhook_rejections_total{source=\"github\",status=\"401\"} 1",
            "greenroom_webhook_rejections_total{source=\"package\",status=\"413\"} 0",
            "greenroom_cycle_started_timestamp_seconds{environment=\"staging\"}",
            "greenroom_lease_expires_timestamp_seconds{environment=\"staging\"}",
        ]
        .iter()
        .all(|m| text.contains(m))
        .then_some(text)
    });

    // A real Prometheus scrapes the server and loads the shipped rules, and
    // a copy of them with every `for:` at 0s (to see them fire now).
    let dir = sb.root.join("prometheus");
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    let rules = ops("prometheus/greenroom.rules.yml");
    let shipped = std::fs::read_to_string(&rules).expect("rules file");
    let fast: String = shipped
        .lines()
        .map(|l| match l.split_once("for: ") {
            Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: 0s\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    assert_ne!(fast, shipped, "the rules have `for:` durations");
    let fast_rules = dir.join("fast.rules.yml");
    std::fs::write(&fast_rules, fast).expect("fast rules");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n  - {}\n\
             scrape_configs:\n  - job_name: greenroom\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            rules.display(),
            fast_rules.display()
        ),
    )
    .expect("prometheus config");
    run_ok(&promtool, &["check", "config", &cfg.display().to_string()]);
    let log = dir.join("prometheus.log");
    let _prom = Prometheus {
        child: Command::new(&prometheus)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("prometheus log"))
            .spawn()
            .expect("start prometheus"),
        log,
    };

    // Every group and rule of the file is loaded and evaluates without error.
    let rules_url = format!("http://127.0.0.1:{prom_port}/api/v1/rules");
    let groups = wait_until("Prometheus to evaluate every rule", || {
        api(&rules_url)?;
        let groups = groups_of(prom_port, &rules);
        let all: Vec<Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        for r in &all {
            assert_ne!(r["health"], "err", "rule {} fails: {}", r["name"], r["lastError"]);
        }
        (!all.is_empty() && all.iter().all(|r| r["health"] == "ok")).then_some(groups)
    });
    let names: BTreeSet<&str> = groups.iter().filter_map(|g| g["name"].as_str()).collect();
    assert_eq!(names, GROUPS.iter().copied().collect(), "groups");
    let (mut alerts, mut records) = (BTreeSet::new(), BTreeSet::new());
    for r in groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
    {
        let name = r["name"].as_str().unwrap_or_default().to_string();
        match r["type"].as_str() {
            Some("alerting") => {
                assert!(
                    ["critical", "warning", "info"].contains(&r["labels"]["severity"].as_str().unwrap_or("")),
                    "{name}: severity label: {r}"
                );
                for a in ["summary", "description"] {
                    assert!(
                        r["annotations"][a].as_str().is_some_and(|s| !s.trim().is_empty()),
                        "{name}: {a} annotation: {r}"
                    );
                }
                assert!(alerts.insert(name.clone()), "two alerts named {name}");
            }
            Some("recording") => assert!(records.insert(name.clone()), "two recording rules named {name}"),
            other => panic!("rule {name} of type {other:?}"),
        }
    }
    assert_eq!(alerts, ALERTS.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    assert_eq!(records, RECORDS.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());

    // Every metric the rules select is exported, recorded, Prometheus's own,
    // or known not to be exported yet (the scrape was taken while a cycle
    // ran on staging under its lease, so every family has series).
    let exported = sample_names(&scrape);
    let known = |n: &str| {
        exported.contains(n) || RECORDS.contains(&n) || PROMETHEUS_OWN.contains(&n) || NOT_EXPORTED_YET.contains(&n)
    };
    let mut used = BTreeSet::new();
    for r in groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
    {
        let q = r["query"].as_str().unwrap_or_default();
        for n in metric_names(q) {
            assert!(
                known(&n),
                "rule {} uses {n}, which greenroom does not export:\n{scrape}",
                r["name"]
            );
            used.insert(n);
        }
    }

    // The dashboard: well formed, its queries run, its metrics exist.
    let text = std::fs::read_to_string(ops("grafana/greenroom-dashboard.json")).expect("dashboard");
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    for key in ["title", "uid"] {
        assert!(dash[key].as_str().is_some_and(|s| !s.is_empty()), "dashboard {key}");
    }
    assert!(dash["schemaVersion"].as_u64().is_some_and(|v| v >= 30), "schemaVersion");
    let mut panels: Vec<Value> = Vec::new();
    for p in dash["panels"].as_array().expect("dashboard panels") {
        panels.push(p.clone());
        panels.extend(p["panels"].as_array().cloned().unwrap_or_default());
    }
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {p}");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "two panels with id {}",
            p["id"]
        );
        for k in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][k].is_u64(), "{title}: gridPos.{k}");
        }
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().filter(|t| !t.is_empty());
        for t in targets.unwrap_or_else(|| panic!("{title}: no targets")) {
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{title}: a target without expr"));
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}: datasource");
            exprs.push((title.to_string(), expr.to_string()));
        }
    }
    for v in dash["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .map_or(q, |s| s.split(',').next().unwrap_or(s));
            exprs.push((format!("variable {}", v["name"]), inner.to_string()));
        }
    }
    for (title, expr) in &exprs {
        for n in metric_names(expr) {
            assert!(
                known(&n),
                "dashboard panel {title:?} uses {n}, which greenroom does not export:\n{scrape}"
            );
            used.insert(n);
        }
        let q = expr
            .replace("$__rate_interval", "1m")
            .replace("$__range", "1h")
            .replace("$environment", ".*");
        let url = format!("http://127.0.0.1:{prom_port}/api/v1/query?query={}", encode(&q));
        assert!(
            api(&url).is_some(),
            "{title:?}: Prometheus refuses {q}: {:?}",
            http_get(&url)
        );
    }
    // Every exported metric is on the dashboard or in a rule; every name
    // not exported yet is used, and really not exported.
    for f in families(&scrape) {
        assert!(
            used.iter().any(|u| u
                .strip_prefix(f.as_str())
                .is_some_and(|s| ["", "_total", "_bucket", "_sum", "_count", "_info"].contains(&s))),
            "greenroom exports {f}, which neither the dashboard nor the rules show"
        );
    }
    for n in NOT_EXPORTED_YET {
        assert!(
            used.contains(*n),
            "{n} is listed as not exported yet but nothing uses it"
        );
        assert!(
            !exported.contains(*n),
            "greenroom exports {n} now: remove it from NOT_EXPORTED_YET and from ops/README.md's table"
        );
    }

    // A paused environment: pending with the shipped `for:`, firing at once
    // in the copy. (Prometheus has seen solo unpaused first.)
    let paused_query = format!(
        "http://127.0.0.1:{prom_port}/api/v1/query?query={}",
        encode("greenroom_paused{environment=\"solo\"}")
    );
    let unpaused = wait_until("Prometheus to scrape greenroom_paused", || {
        api(&paused_query)?["data"]["result"]
            .as_array()
            .filter(|r| r.len() == 1)
            .map(|r| r[0]["value"][1].clone())
    });
    assert_eq!(unpaused, "0");
    assert_eq!(
        alert_for(
            prom_port,
            &fast_rules,
            "GreenroomEnvironmentPaused",
            "environment",
            "solo"
        ),
        None,
        "solo is not paused yet"
    );
    sb.ok(&["pause", "--env", "solo", "--reason", "ops monitoring test"]);
    let annotations = wait_until("GreenroomEnvironmentPaused to fire for solo", || {
        let (state, annotations) = alert_for(
            prom_port,
            &fast_rules,
            "GreenroomEnvironmentPaused",
            "environment",
            "solo",
        )?;
        (state == "firing").then_some(annotations)
    });
    assert_eq!(annotations["summary"], "solo has been paused for over 6 hours");
    assert!(
        annotations["description"]
            .as_str()
            .is_some_and(|d| d.contains("greenroom resume --env solo")),
        "{annotations}"
    );
    let (state, _) = wait_until("the shipped GreenroomEnvironmentPaused to be pending", || {
        alert_for(prom_port, &rules, "GreenroomEnvironmentPaused", "environment", "solo")
    });
    assert_eq!(state, "pending", "the shipped rule waits 6 hours");
    for name in ALERTS.iter().filter(|a| **a != "GreenroomEnvironmentPaused") {
        let r = rule(prom_port, &rules, name);
        assert_ne!(r["state"], "firing", "{name} fires against a healthy greenroom: {r}");
    }

    // The server killed: GreenroomDown.
    slow.kill9();
    server.kill9();
    let instance = format!("127.0.0.1:{port}");
    wait_until("GreenroomDown to fire", || {
        let (state, _) = alert_for(prom_port, &fast_rules, "GreenroomDown", "instance", &instance)?;
        (state == "firing").then_some(())
    });
    sb.ok(&["resume", "--env", "solo"]);
    sb.ok(&["stop", "--env", "solo"]);
}
