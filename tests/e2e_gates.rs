//! Metric gates and the error watch (issue #6 points 4-5), end to end: a
//! real Prometheus (Debian's `prometheus` package, installed by `.ci/run`)
//! scrapes a real `greenroom serve`, and `greenroom deploy` evaluates
//! `[[gate]]`s against it:
//!
//! - passing gates (`up`, `greenroom_paused == 0` with a soak, a running
//!   cycle seen with `on_empty = "wait"`) are kept in the report with their
//!   resolved queries and values;
//! - a failing blocking gate fails the cycle (class `code`) with the query
//!   and values in the report, a `wait` gate that never gets data fails
//!   after its timeout (non-blocking: reported only), `on_empty = "pass"`
//!   passes;
//! - the sample service logs `ERROR ForeignKeyViolation …` lines while a
//!   suite runs (`GET /api/log?line=…`): reported as new with the count and
//!   first line, not new when the previous healthy cycle had the same
//!   signature, and blocking with `new_errors = "blocking"`.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};

fn prometheus_binary() -> String {
    let path = "/usr/bin/prometheus";
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: install Debian's `prometheus` package (.ci/run does)"
    );
    path.to_string()
}

/// The gate report named `name` (and evaluated `when`).
fn gate<'a>(report: &'a Value, name: &str, when: &str) -> &'a Value {
    report["gates"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == name && g["when"] == when))
        .unwrap_or_else(|| panic!("no gate {name} ({when}) in {report:#}"))
}

/// The config: the sandbox's, every environment deployed by hand only (the
/// server must not start cycles of its own), plus `extra`.
fn config(sb: &Sandbox, port: u16, prom_port: u16, extra: &str) -> String {
    let base = sb
        .default_config(&Options::default())
        .replace("name = \"staging\"\n", "name = \"staging\"\nfollows = \"manual\"\n")
        .replace("name = \"dev\"\n", "name = \"dev\"\nfollows = \"manual\"\n")
        .replace("name = \"solo\"\n", "name = \"solo\"\nfollows = \"manual\"\n");
    format!(
        "{base}\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n[prometheus]\nurl = \"http://127.0.0.1:{prom_port}\"\ntimeout = \"5s\"\n{extra}"
    )
}

const PASSING: &str = r#"
[[gate]]
name = "greenroom-up"
query = 'up{job="greenroom"}'
pass = "== 1"
when = ["deploy", "tests"]

[[gate]]
name = "not-paused"
query = 'greenroom_paused{environment="{environment}"}'
pass = "== 0"
soak = "1s"

[[gate]]
name = "cycle-seen"
query = 'greenroom_cycle_started_timestamp_seconds{environment="{environment}"}'
pass = "> 0"
on_empty = "wait"
timeout = "20s"
"#;

const FAILING: &str = r#"
[[gate]]
name = "must-be-paused"
query = 'greenroom_paused{environment="{environment}"}'
pass = "== 1"

[[gate]]
name = "no-data-yet"
query = 'greenroom_no_such_metric{environment="{environment}"}'
pass = "> 0"
on_empty = "wait"
timeout = "2s"
tier = "non-blocking"

[[gate]]
name = "no-data-is-fine"
query = 'greenroom_no_such_metric{environment="{environment}"}'
pass = "> 0"
on_empty = "pass"
"#;

/// A suite that makes the sample service log `lines` (its captured output).
fn logging_suite(lines: &[&str]) -> String {
    let calls: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                "curl -fsS \"${{GREENROOM_URL_OGR%/}}/api/log?line={}\"",
                l.replace(' ', "+")
            )
        })
        .collect();
    format!(
        "\n[[suite]]\nname = \"smoke\"\nenvironments = [\"solo\"]\nrun = {}\n",
        toml_str(&calls.join(" && "))
    )
}

#[test]
fn gates_against_a_real_prometheus_and_the_error_watch() {
    let index = 63;
    let port = 21000 + 100 * index + 90;
    let prom_port = port + 1;
    let sb = Sandbox::with(index, Options::default());
    sb.write_config(&config(&sb, port, prom_port, ""));

    // greenroom serve, scraped by a real Prometheus every second.
    let mut server = sb.spawn(&["serve"]);
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    wait_until("/metrics to answer", || {
        assert!(!server.exited(), "greenroom serve exited");
        http_get(&metrics_url).filter(|(c, _)| *c == 200)
    });
    let dir = sb.root.join("prometheus");
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: greenroom\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .expect("prometheus config");
    let log = dir.join("prometheus.log");
    let _prom = Prometheus {
        child: Command::new(prometheus_binary())
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
    let up = format!("http://127.0.0.1:{prom_port}/api/v1/query?query=greenroom_paused%7Benvironment%3D%22solo%22%7D");
    wait_until("Prometheus to have scraped greenroom", || {
        let v: Value = serde_json::from_str(&http_get(&up).filter(|(c, _)| *c == 200)?.1).ok()?;
        v["data"]["result"].as_array().filter(|r| !r.is_empty()).map(|_| ())
    });

    // Passing gates: resolved queries and values kept.
    sb.write_config(&config(&sb, port, prom_port, PASSING));
    let r = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(r["result"], "succeeded", "{r:#}");
    let first_cycle = r["cycle"].as_i64().expect("cycle");
    assert_eq!(r["gates"].as_array().map(Vec::len), Some(4), "{r:#}");
    for g in r["gates"].as_array().into_iter().flatten() {
        assert_eq!(g["result"], "passed", "{g:#}");
    }
    let up_deploy = gate(&r, "greenroom-up", "deploy");
    assert_eq!(up_deploy["query"], "up{job=\"greenroom\"}");
    assert_eq!(up_deploy["values"][0]["metric"]["job"], "greenroom");
    assert_eq!(up_deploy["values"][0]["value"], "1");
    gate(&r, "greenroom-up", "tests");
    let np = gate(&r, "not-paused", "tests");
    assert_eq!(np["query"], "greenroom_paused{environment=\"solo\"}", "{np:#}");
    assert_eq!(np["values"][0]["value"], "0", "{np:#}");
    assert_eq!(np["pass"], "== 0");
    assert!(np["duration_ms"].as_u64().is_some_and(|d| d >= 1000), "soaked: {np:#}");
    let seen = gate(&r, "cycle-seen", "tests");
    assert_eq!(seen["values"][0]["metric"]["environment"], "solo", "{seen:#}");

    // A failing blocking gate fails the cycle, with the query and values.
    sb.write_config(&config(&sb, port, prom_port, FAILING));
    let out = sb.run(&["--json", "deploy", "--env", "solo", "--release"]).expect(1);
    let r = out.json();
    assert_eq!(r["result"], "failed", "{r:#}");
    assert_eq!(r["failure"]["class"], "code", "{r:#}");
    assert_eq!(r["failure"]["subject"], "must-be-paused", "{r:#}");
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("blocking gate `must-be-paused` failed")
            && error.contains("greenroom_paused{environment=\"solo\"}"),
        "{error}"
    );
    let bad = gate(&r, "must-be-paused", "tests");
    assert_eq!(bad["result"], "failed");
    assert_eq!(bad["values"][0]["value"], "0");
    assert!(
        bad["reason"].as_str().is_some_and(|s| s.contains("not == 1")),
        "{bad:#}"
    );
    let waited = gate(&r, "no-data-yet", "tests");
    assert_eq!(waited["result"], "failed", "{waited:#}");
    assert_eq!(waited["tier"], "non-blocking");
    assert!(
        waited["reason"]
            .as_str()
            .is_some_and(|s| s.contains("still no data after waiting 2s")),
        "{waited:#}"
    );
    assert!(waited["duration_ms"].as_u64().is_some_and(|d| d >= 1500), "{waited:#}");
    assert_eq!(gate(&r, "no-data-is-fine", "tests")["result"], "passed");

    // The error watch: errors logged while the suite runs are new (the
    // previous healthy cycle, the first, logged none)...
    let fk = [
        "ERROR ForeignKeyViolation runner 41684082 not found",
        "ERROR ForeignKeyViolation runner 7 not found",
    ];
    sb.write_config(&config(&sb, port, prom_port, &logging_suite(&fk)));
    let r = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(r["result"], "succeeded", "report only by default: {r:#}");
    let errors = r["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{r:#}");
    assert_eq!(errors[0]["component"], "ogr");
    assert_eq!(errors[0]["baseline"], first_cycle);
    let new = &errors[0]["new"];
    assert_eq!(new.as_array().map(Vec::len), Some(1), "{r:#}");
    assert_eq!(new[0]["signature"], "ERROR ForeignKeyViolation runner <n> not found");
    assert_eq!(new[0]["count"], 2);
    assert_eq!(new[0]["first_line"], fk[0]);
    assert_eq!(errors[0]["known"], 0);

    // ...not new when the previous healthy cycle had the same signature...
    let r = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(r["result"], "succeeded", "{r:#}");
    let errors = r["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{r:#}");
    assert_eq!(errors[0]["new"], serde_json::json!([]), "{r:#}");
    assert_eq!(errors[0]["known"], 2);

    // ...and a new one blocks where `new_errors = "blocking"`.
    let pg = "PG::ForeignKeyViolation: ERROR: insert or update on table group_type_ci_runner_machines_687967fa8a";
    let text = config(&sb, port, prom_port, &logging_suite(&[fk[0], pg]))
        .replace("name = \"solo\"\n", "name = \"solo\"\nnew_errors = \"blocking\"\n");
    sb.write_config(&text);
    let out = sb.run(&["--json", "deploy", "--env", "solo", "--release"]).expect(1);
    let r = out.json();
    assert_eq!(r["result"], "failed", "{r:#}");
    assert_eq!(r["failure"]["subject"], "error-watch", "{r:#}");
    assert_eq!(r["failure"]["class"], "code", "{r:#}");
    let errors = r["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors[0]["new"].as_array().map(Vec::len), Some(1), "{r:#}");
    assert_eq!(errors[0]["new"][0]["first_line"], pg);
    assert_eq!(errors[0]["known"], 1);
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("new_errors = \"blocking\"") && e.contains(pg)),
        "{r:#}"
    );

    server.kill9();
    sb.ok(&["stop", "--env", "solo"]);
}
