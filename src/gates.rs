//! Metric gates (issue #6 point 5): the `[[gate]]`s of an environment,
//! evaluated against Prometheus after the deploy (`when = "deploy"`, before
//! the suites) and after the suites (`when = "tests"`, the default), by
//! `engine::verify_stage`.
//!
//! Each gate waits its `soak`, then asks `GET /api/v1/query?query=…` with
//! its query resolved (`core::gate::resolve_query`; with `{component}`,
//! once per component of the environment); `core::gate::evaluate` judges
//! the answer. With `on_empty = "wait"`, no data means ask again (backing
//! off from 0.5 s to 5 s) until the gate's `timeout`, then fail. Gates run
//! concurrently, so soaks overlap. Every request has a connect and a total
//! timeout, ignores proxy variables (Prometheus is ours to reach), and a
//! connection error or a refused query is an `error` (infrastructure, never
//! blamed on a PR), distinct from a `failed` gate (the deployed software).
//! The report keeps the resolved query and the values seen; every report
//! is also recorded in `CYCLE_DIR/gates.json` ([`Recorded`], written
//! atomically, `deploy` gates then `tests` gates), so that a cycle's page
//! shows the query that was sent even after the gate changed or went.

use crate::app::App;
use greenroom_core::config::{Environment, Gate, Instance, Prometheus, Tier};
use greenroom_core::failure::Class;
use greenroom_core::gate::{self, Sample, Verdict, When};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most series kept in a report per gate.
const MAX_VALUES: usize = 50;
/// First pause between two queries of a waiting gate.
const FIRST_POLL: Duration = Duration::from_millis(500);
/// Longest pause between two queries of a waiting gate.
const MAX_POLL: Duration = Duration::from_secs(5);
/// Attempts at reaching Prometheus before a query is an error.
const ATTEMPTS: u32 = 3;

/// One gate evaluated once (per component, with `{component}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateReport {
    /// The gate.
    pub name: String,
    /// Its tier (`blocking`, `gate`, `non-blocking`, `quarantine`).
    pub tier: String,
    /// `deploy` or `tests`.
    pub when: String,
    /// The component, for a gate whose query has `{component}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The query as sent.
    pub query: String,
    /// The comparison every series had to satisfy.
    pub pass: String,
    /// The series of the last answer (at most 50).
    pub values: Vec<Sample>,
    /// `passed`, `failed` (the values say no) or `error` (Prometheus could not be asked).
    pub result: String,
    /// Why.
    pub reason: String,
    /// Soak and waits included.
    pub duration_ms: u64,
}

impl GateReport {
    /// Whether this report fails the cycle: a blocking gate that failed or could not be evaluated.
    pub fn blocks(&self) -> bool {
        self.tier == Tier::Blocking.as_str() && self.result != "passed"
    }

    /// The failure class of a blocking report: an error asking Prometheus is
    /// infrastructure, values that say no are the code's.
    pub fn class(&self) -> Class {
        if self.result == "error" {
            Class::Infra
        } else {
            Class::Code
        }
    }

    /// One line for the cycle's error.
    pub fn describe(&self) -> String {
        let on = self.component.as_ref().map(|c| format!(" for {c}")).unwrap_or_default();
        format!(
            "blocking gate `{}`{on} {} after {}: {} (query: {})",
            self.name, self.result, self.when, self.reason, self.query
        )
    }
}

/// The gates of `env` evaluated at `when`; with `only` (the culprit search),
/// those named there only.
pub fn gates_for<'a>(app: &'a App, env: &Environment, when: When, only: Option<&[String]>) -> Vec<&'a Gate> {
    app.config
        .gates
        .iter()
        .filter(|g| g.when.contains(&when))
        .filter(|g| g.environments.is_empty() || g.environments.contains(&env.name))
        .filter(|g| only.is_none_or(|o| o.contains(&g.name)))
        .collect()
}

/// What a query's placeholders stand for.
pub struct GateContext<'a> {
    /// The environment instance.
    pub inst: &'a Instance,
    /// Cycle number.
    pub cycle: i64,
    /// Manifest id.
    pub manifest: &'a str,
}

/// What a cycle's `gates.json` keeps: every gate evaluated, as evaluated.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The cycle.
    #[serde(default)]
    pub cycle: i64,
    /// Its gates in evaluation order (`deploy`, then `tests`), each with the
    /// query as sent and the values seen.
    #[serde(default)]
    pub gates: Vec<GateReport>,
}

/// `CYCLE_DIR/gates.json`.
pub fn recorded_path(cycle_dir: &Path) -> PathBuf {
    cycle_dir.join("gates.json")
}

/// Reads a cycle's `gates.json`: `Ok(None)` when no gate was recorded
/// (no gate, or a cycle from before it was kept).
pub fn read_recorded(path: &Path) -> Result<Option<Recorded>, String> {
    crate::build::read_json_if_present(path)
}

/// Adds `reports` to the cycle's `gates.json` (the two evaluations of a
/// cycle run one after the other, never at once), atomically.
pub fn record(cycle_dir: &Path, cycle: i64, reports: &[GateReport]) -> anyhow::Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let file = recorded_path(cycle_dir);
    let mut rec = match read_recorded(&file) {
        Ok(Some(r)) if r.cycle == cycle => r,
        Ok(_) => Recorded {
            cycle,
            gates: Vec::new(),
        },
        Err(e) => {
            tracing::warn!("gates: {e}; starting it again");
            Recorded {
                cycle,
                gates: Vec::new(),
            }
        }
    };
    rec.gates.extend(reports.iter().cloned());
    std::fs::create_dir_all(cycle_dir)?;
    crate::build::write_atomically(&file, &serde_json::to_vec_pretty(&rec)?)
}

/// Evaluates the gates of `env` for `when` (none configured: nothing to
/// do) and records them in the cycle's `gates.json`.
pub async fn evaluate(
    app: &App,
    env: &Environment,
    cx: &GateContext<'_>,
    when: When,
    only: Option<&[String]>,
) -> Vec<GateReport> {
    let reports = evaluate_all(app, env, cx, when, only).await;
    let dir = app.paths.cycle_dir(cx.cycle);
    if let Err(e) = record(&dir, cx.cycle, &reports) {
        tracing::warn!("gates: cannot record {}: {e:#}", recorded_path(&dir).display());
    }
    reports
}

async fn evaluate_all(
    app: &App,
    env: &Environment,
    cx: &GateContext<'_>,
    when: When,
    only: Option<&[String]>,
) -> Vec<GateReport> {
    let gates = gates_for(app, env, when, only);
    if gates.is_empty() {
        return Vec::new();
    }
    let Some(prom) = app.config.prometheus.clone() else {
        // Validation refuses gates without [prometheus]; say so all the same.
        return gates
            .iter()
            .map(|g| GateReport {
                name: g.name.clone(),
                tier: g.tier.as_str().into(),
                when: when.as_str().into(),
                component: None,
                query: g.query.clone(),
                pass: g.pass.to_string(),
                values: Vec::new(),
                result: "error".into(),
                reason: "no [prometheus] url is configured".into(),
                duration_ms: 0,
            })
            .collect();
    };
    let client = match reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5).min(prom.timeout))
        .timeout(prom.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot build the Prometheus client: {e}");
            return Vec::new();
        }
    };
    let slot = cx.inst.slot.map(|s| s.to_string()).unwrap_or_default();
    let cycle = cx.cycle.to_string();
    let mut tasks = tokio::task::JoinSet::new();
    let mut order = 0usize;
    for g in gates {
        let components: Vec<Option<&str>> = if g.query.contains("{component}") {
            env.components.iter().map(|c| Some(c.as_str())).collect()
        } else {
            vec![None]
        };
        for component in components {
            let query = gate::resolve_query(
                &g.query,
                &[
                    ("environment", cx.inst.name.as_str()),
                    ("instance", cx.inst.name.as_str()),
                    ("slot", slot.as_str()),
                    ("cycle", cycle.as_str()),
                    ("manifest", cx.manifest),
                    ("component", component.unwrap_or_default()),
                ],
            );
            let (client, prom, gate, component) =
                (client.clone(), prom.clone(), g.clone(), component.map(String::from));
            let n = order;
            order += 1;
            tasks.spawn(async move { (n, run_gate(&client, &prom, &gate, query, component, when).await) });
        }
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(r) => out.push(r),
            Err(e) => tracing::error!("a gate task failed: {e}"),
        }
    }
    out.sort_by_key(|(n, _)| *n);
    out.into_iter().map(|(_, r)| r).collect()
}

async fn run_gate(
    client: &reqwest::Client,
    prom: &Prometheus,
    g: &Gate,
    query: String,
    component: Option<String>,
    when: When,
) -> GateReport {
    let t0 = Instant::now();
    let mut report = GateReport {
        name: g.name.clone(),
        tier: g.tier.as_str().into(),
        when: when.as_str().into(),
        component,
        query,
        pass: g.pass.to_string(),
        values: Vec::new(),
        result: "error".into(),
        reason: String::new(),
        duration_ms: 0,
    };
    tokio::time::sleep(g.soak).await;
    let deadline = Instant::now() + g.timeout;
    let mut pause = FIRST_POLL;
    loop {
        match ask(client, prom, &report.query).await {
            Err(e) => {
                report.result = "error".into();
                report.reason = e;
                break;
            }
            Ok(samples) => {
                let verdict = gate::evaluate(&g.pass, g.on_empty, &samples);
                let total = samples.len();
                report.values = samples.into_iter().take(MAX_VALUES).collect();
                let more = if total > MAX_VALUES {
                    format!(" ({total} series; the first {MAX_VALUES} kept)")
                } else {
                    String::new()
                };
                match verdict {
                    Verdict::Pass(r) => {
                        report.result = "passed".into();
                        report.reason = format!("{r}{more}");
                        break;
                    }
                    Verdict::Fail(r) => {
                        report.result = "failed".into();
                        report.reason = format!("{r}{more}");
                        break;
                    }
                    Verdict::Wait(r) => {
                        if Instant::now() + pause > deadline {
                            report.result = "failed".into();
                            report.reason = format!(
                                "{r}; still no data after waiting {}",
                                humantime::format_duration(g.timeout)
                            );
                            break;
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(MAX_POLL);
                    }
                }
            }
        }
    }
    report.duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

/// One instant query: its samples, or why Prometheus could not answer.
/// Connection errors and 5xx answers are tried [`ATTEMPTS`] times.
async fn ask(client: &reqwest::Client, prom: &Prometheus, query: &str) -> Result<Vec<Sample>, String> {
    let url = format!("{}/api/v1/query", prom.url);
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
        let resp = match client.get(&url).query(&[("query", query)]).send().await {
            Ok(r) => r,
            Err(e) => {
                // Without the URL's query: the error says what failed.
                last = format!("cannot reach Prometheus at {}: {}", prom.url, e.without_url());
                continue;
            }
        };
        let status = resp.status();
        let body = match resp.text().await {
            Ok(b) => b,
            Err(e) => {
                last = format!("cannot read Prometheus's answer: {}", e.without_url());
                continue;
            }
        };
        if status.is_server_error() {
            last = format!(
                "Prometheus answered {status}: {}",
                body.chars().take(200).collect::<String>()
            );
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(&body).map_err(|_| {
            format!(
                "Prometheus answered {status} with something that is not JSON: {}",
                body.chars().take(200).collect::<String>()
            )
        })?;
        return gate::parse_answer(&json).map_err(|e| e.to_string());
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(tier: &str, result: &str) -> GateReport {
        GateReport {
            name: "g".into(),
            tier: tier.into(),
            when: "tests".into(),
            component: None,
            query: "up".into(),
            pass: "== 1".into(),
            values: Vec::new(),
            result: result.into(),
            reason: "r".into(),
            duration_ms: 0,
        }
    }

    #[test]
    fn only_blocking_gates_block_and_errors_are_infrastructure() {
        assert!(report("blocking", "failed").blocks());
        assert!(report("blocking", "error").blocks());
        assert!(!report("blocking", "passed").blocks());
        assert!(!report("non-blocking", "failed").blocks());
        assert!(!report("quarantine", "error").blocks());
        assert_eq!(report("blocking", "error").class(), Class::Infra);
        assert_eq!(report("blocking", "failed").class(), Class::Code);
    }

    #[test]
    fn gates_json_round_trips_and_accumulates() {
        let dir = tempfile::tempdir().expect("tmp");
        let cycle_dir = dir.path().join("cycles").join("12");
        assert_eq!(read_recorded(&recorded_path(&cycle_dir)).expect("absent"), None);
        record(&cycle_dir, 12, &[]).expect("nothing to record");
        assert!(!recorded_path(&cycle_dir).exists(), "no gate, no file");
        let mut deploy = report("blocking", "passed");
        deploy.when = "deploy".into();
        deploy.component = Some("ogr".into());
        deploy.query = "rate(http_errors{env=\"dev-1\",component=\"ogr\"}[5m])".into();
        deploy.values = vec![Sample {
            metric: [("job".to_string(), "ogr".to_string())].into(),
            value: "0.01".into(),
        }];
        record(&cycle_dir, 12, std::slice::from_ref(&deploy)).expect("record deploy");
        let tests = report("non-blocking", "failed");
        record(&cycle_dir, 12, std::slice::from_ref(&tests)).expect("record tests");
        let back = read_recorded(&recorded_path(&cycle_dir))
            .expect("read")
            .expect("recorded");
        assert_eq!(back.cycle, 12);
        assert_eq!(back.gates, vec![deploy, tests]);
        // A file of another cycle (a reused directory) is replaced, not added to.
        record(&cycle_dir, 13, &[report("gate", "error")]).expect("record");
        let back = read_recorded(&recorded_path(&cycle_dir))
            .expect("read")
            .expect("recorded");
        assert_eq!((back.cycle, back.gates.len()), (13, 1));
        // Unknown fields and missing lists read.
        let r: Recorded = serde_json::from_str(r#"{"cycle": 3, "later": true}"#).expect("lenient");
        assert!(r.gates.is_empty());
    }
}
