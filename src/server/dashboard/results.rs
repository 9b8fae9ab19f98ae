//! A cycle's gate results on its page (issue #7 point 3): the suites by
//! tier with their failing test cases (a matrix case's request and response
//! in a `<details>`), the metric gates, the new error lines, and the
//! culprit searches of a failed cycle with their runs.
//!
//! What is read: the cycle's stage rows (`verify:SUITE`, `gate:NAME`), its
//! JUnit summary (`CYCLE_DIR/junit.xml`, written by
//! `verify::write_cycle_junit`), the error watch's signatures
//! (`CYCLE_DIR/errors.json`) against those of the previous healthy cycle
//! (as `errorwatch::check` compares them), the `search` decisions that name
//! the cycle and the cycles whose request is `culprit search for cycle N
//! run M`. [`load`] reads; the `render_*` functions are pure.
//!
//! The error watch keeps only signatures per cycle: a new error's count
//! and first line are known when they were written into the cycle's error
//! (new errors that failed it, `COMPONENT: Nx LINE`), shown as "not
//! recorded" otherwise.

use super::html::Html;
use super::{PageError, Viewer};
use crate::server::Shared;
use greenroom_core::junit::{self, Outcome, TestCase, TestSuite};
use greenroom_core::time::{self, Millis};
use greenroom_store::{CycleRecord, DecisionRecord, StageRecord};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The tiers shown in their own tables, in this order (quarantine apart).
const TIERS: [(&str, &str, &str); 3] = [
    ("blocking", "Blocking", "a failure fails the cycle"),
    ("gate", "Gate", "reported to pull requests as a required status"),
    ("non-blocking", "Non-blocking", "reported only"),
];
/// Failing test cases shown per suite.
const MAX_FAILURES: usize = 50;
/// Characters of a test case's output shown.
const MAX_OUTPUT: usize = 16 * 1024;
/// Largest JUnit summary read.
const MAX_JUNIT: u64 = 16 * 1024 * 1024;
/// Earlier cycles looked at for the previous healthy one.
const LOOK_BACK: i64 = 100;
/// Cycles looked at for a culprit search's runs.
const RUNS_LOOK_BACK: i64 = 1000;

/// One suite as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SuiteRow {
    /// Its name.
    pub name: String,
    /// `blocking`, `gate`, `non-blocking`, `quarantine` (or `unknown`).
    pub tier: String,
    /// `passed`, `failed`, `skipped`, …
    pub result: String,
    /// Why (the stage's detail, or the JUnit reason).
    pub why: String,
    /// Test cases in its report.
    pub tests: usize,
    /// Its failed or errored test cases.
    pub failing: Vec<TestCase>,
}

fn prop<'a>(s: &'a TestSuite, key: &str) -> Option<&'a str> {
    s.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn suite_stage<'a>(stages: &'a [StageRecord], suite: &str) -> Option<&'a StageRecord> {
    stages
        .iter()
        .rev()
        .find(|st| st.name.strip_prefix("verify:") == Some(suite))
}

/// The suites of a cycle: its JUnit summary, with the result and reason of
/// its `verify:SUITE` stage rows; a suite with a stage row only (no
/// summary) has an unknown tier.
pub(crate) fn suite_rows(summary: &[TestSuite], stages: &[StageRecord]) -> Vec<SuiteRow> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for s in summary {
        let stage = suite_stage(stages, &s.name);
        let failing: Vec<TestCase> = s
            .cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed { .. } | Outcome::Errored { .. }))
            .cloned()
            .collect();
        let result = stage
            .map(|st| st.result.clone())
            .or_else(|| prop(s, "greenroom.suite.result").map(str::to_string))
            .unwrap_or_else(|| if failing.is_empty() { "passed" } else { "failed" }.to_string());
        let why = stage
            .and_then(|st| st.detail.clone())
            .or_else(|| prop(s, "greenroom.suite.reason").map(str::to_string))
            .unwrap_or_default();
        seen.insert(s.name.clone());
        out.push(SuiteRow {
            name: s.name.clone(),
            tier: prop(s, "greenroom.suite.tier").unwrap_or("unknown").to_string(),
            result,
            why,
            tests: s.cases.len(),
            failing,
        });
    }
    for st in stages {
        if let Some(n) = st.name.strip_prefix("verify:")
            && seen.insert(n.to_string())
            && let Some(last) = suite_stage(stages, n)
        {
            out.push(SuiteRow {
                name: n.to_string(),
                tier: "unknown".into(),
                result: last.result.clone(),
                why: last.detail.clone().unwrap_or_default(),
                tests: 0,
                failing: Vec::new(),
            });
        }
    }
    out
}

/// At most `max` characters of `s`, with a note when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}\n… (cut: {} more bytes in junit.xml)", &s[..i], s.len() - i),
        None => s.to_string(),
    }
}

fn suite_table(h: &mut Html, caption: &str, rows: &[&SuiteRow]) {
    h.raw("<table class=\"suites\"><caption>")
        .text(caption)
        .raw("</caption><thead><tr><th scope=\"col\">Suite</th><th scope=\"col\">Tier</th>")
        .raw("<th scope=\"col\">Result</th><th scope=\"col\">Tests</th><th scope=\"col\">Why</th></tr></thead><tbody>");
    for r in rows {
        h.raw("<tr class=\"suite\"><th scope=\"row\">")
            .text(&r.name)
            .raw("</th><td>")
            .text(&r.tier)
            .raw("</td><td>")
            .badge(&r.result)
            .raw("</td><td>");
        let tests = i64::try_from(r.tests).unwrap_or(i64::MAX);
        h.num(tests);
        if !r.failing.is_empty() {
            h.raw(" (")
                .num(i64::try_from(r.failing.len()).unwrap_or(i64::MAX))
                .raw(" failing)");
        }
        h.raw("</td><td><span class=\"detail\">")
            .text(&r.why)
            .raw("</span></td></tr>");
    }
    h.raw("</tbody></table>");
    for r in rows.iter().filter(|r| !r.failing.is_empty()) {
        h.raw("<h4>Failing in ")
            .text(&r.name)
            .raw("</h4><ul class=\"failures\">");
        for c in r.failing.iter().take(MAX_FAILURES) {
            failure_item(h, c);
        }
        if r.failing.len() > MAX_FAILURES {
            h.raw("<li>… and ")
                .num(i64::try_from(r.failing.len() - MAX_FAILURES).unwrap_or(i64::MAX))
                .raw(" more (see the cycle's junit.xml)</li>");
        }
        h.raw("</ul>");
    }
}

fn failure_item(h: &mut Html, c: &TestCase) {
    let (word, message, text) = match &c.outcome {
        Outcome::Failed { message, text } => ("failed", message, text),
        Outcome::Errored { message, text } => ("error", message, text),
        _ => return,
    };
    h.raw("<li class=\"failure\"><strong>").text(&c.name).raw("</strong>");
    if !c.classname.is_empty() {
        h.raw(" <span class=\"muted\">(").text(&c.classname).raw(")</span>");
    }
    h.raw(" ").badge(word);
    if !message.is_empty() {
        h.raw(" ").text(message);
    }
    if !text.trim().is_empty() && text.trim() != message.trim() {
        h.raw("<details><summary>Failure output</summary><pre>")
            .text(&clip(text, MAX_OUTPUT))
            .raw("</pre></details>");
    }
    if let Some(out) = c.system_out.as_deref().filter(|o| !o.trim().is_empty()) {
        h.raw("<details><summary>Request and response (system-out)</summary><pre>")
            .text(&clip(out, MAX_OUTPUT))
            .raw("</pre></details>");
    }
    h.raw("</li>");
}

/// The "Suites" section: a table per tier, quarantined suites apart.
pub(crate) fn render_suites(h: &mut Html, rows: &[SuiteRow], note: Option<&str>) {
    h.raw("<h2 id=\"suites\">Suites</h2>");
    if let Some(n) = note {
        h.raw("<p class=\"muted\">").text(n).raw("</p>");
    }
    if rows.is_empty() {
        h.raw("<p>None: no suite ran in this cycle.</p>");
        return;
    }
    for (tier, label, meaning) in TIERS {
        let these: Vec<&SuiteRow> = rows.iter().filter(|r| r.tier == tier).collect();
        if !these.is_empty() {
            h.raw("<h3>").text(label).raw("</h3>");
            suite_table(h, &format!("{label} suites: {meaning}"), &these);
        }
    }
    let other: Vec<&SuiteRow> = rows
        .iter()
        .filter(|r| r.tier != "quarantine" && TIERS.iter().all(|(t, _, _)| *t != r.tier))
        .collect();
    if !other.is_empty() {
        h.raw("<h3>Tier not recorded</h3>");
        suite_table(h, "Suites whose tier the cycle did not record", &other);
    }
    let quarantined: Vec<&SuiteRow> = rows.iter().filter(|r| r.tier == "quarantine").collect();
    if !quarantined.is_empty() {
        h.raw("<h3>Quarantined</h3>");
        suite_table(h, "Quarantined suites: they run, but never fail anything", &quarantined);
    }
}

/// One metric gate evaluated in the cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GateRow {
    /// The gate.
    pub name: String,
    /// The component, for a gate per component.
    pub component: Option<String>,
    /// The query (resolved as the engine sends it), when the gate is still configured.
    pub query: Option<String>,
    /// `passed`, `failed`, `error`.
    pub result: String,
    /// The values seen and the verdict (or why Prometheus could not be asked).
    pub detail: String,
}

/// The `gate:NAME` stage rows, with the query `query(name, component)` gives.
pub(crate) fn gate_rows(stages: &[StageRecord], query: impl Fn(&str, Option<&str>) -> Option<String>) -> Vec<GateRow> {
    stages
        .iter()
        .filter_map(|st| {
            let name = st.name.strip_prefix("gate:")?;
            Some(GateRow {
                name: name.to_string(),
                component: st.component.clone(),
                query: query(name, st.component.as_deref()),
                result: st.result.clone(),
                detail: st.detail.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// The "Metric gates" section.
pub(crate) fn render_gates(h: &mut Html, rows: &[GateRow]) {
    h.raw("<h2 id=\"gates\">Metric gates</h2>");
    if rows.is_empty() {
        h.raw("<p>None: no metric gate was evaluated in this cycle.</p>");
        return;
    }
    h.raw("<table class=\"gates\"><caption>Metric gates asked of Prometheus</caption><thead><tr>")
        .raw("<th scope=\"col\">Gate</th><th scope=\"col\">Component</th><th scope=\"col\">Query as sent</th>")
        .raw("<th scope=\"col\">Values and verdict</th><th scope=\"col\">Result</th></tr></thead><tbody>");
    for g in rows {
        h.raw("<tr class=\"gate\"><th scope=\"row\">")
            .text(&g.name)
            .raw("</th><td>")
            .text(g.component.as_deref().unwrap_or("—"))
            .raw("</td><td>");
        match &g.query {
            Some(q) => {
                h.raw("<code>").text(q).raw("</code>");
            }
            None => {
                h.raw("<span class=\"muted\">not configured any more</span>");
            }
        }
        h.raw("</td><td><span class=\"detail\">")
            .text(&g.detail)
            .raw("</span></td><td>")
            .badge(&g.result)
            .raw("</td></tr>");
    }
    h.raw("</tbody></table>");
}

/// What `errors.json` keeps (`errorwatch::Seen`): every signature seen, per component.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Seen {
    /// Component -> signatures.
    #[serde(default)]
    pub components: BTreeMap<String, Vec<String>>,
}

/// One new error signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewError {
    /// The component that logged it.
    pub component: String,
    /// Its signature.
    pub signature: String,
    /// How many lines, when recorded.
    pub count: Option<u64>,
    /// The first of them, when recorded.
    pub first_line: Option<String>,
}

/// The signatures of `now` that `before` lacks (all of them without a
/// previous healthy cycle), with counts and first lines from the cycle's
/// error text (`COMPONENT: Nx LINE` lines) where it has them.
pub(crate) fn new_errors(now: &Seen, before: Option<&Seen>, error: Option<&str>) -> Vec<NewError> {
    let mut known: BTreeMap<(String, String), (u64, String)> = BTreeMap::new();
    for line in error.unwrap_or("").lines() {
        let Some((comp, rest)) = line.trim().split_once(": ") else {
            continue;
        };
        let Some((n, first)) = rest.split_once("x ") else {
            continue;
        };
        if let Ok(n) = n.parse::<u64>()
            && now.components.contains_key(comp)
        {
            known
                .entry((comp.to_string(), greenroom_core::errorwatch::signature(first)))
                .or_insert((n, first.to_string()));
        }
    }
    let mut out = Vec::new();
    for (comp, sigs) in &now.components {
        let old: BTreeSet<&String> = before
            .and_then(|b| b.components.get(comp))
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        for sig in sigs.iter().filter(|s| !old.contains(s)) {
            let rec = known.get(&(comp.clone(), sig.clone()));
            out.push(NewError {
                component: comp.clone(),
                signature: sig.clone(),
                count: rec.map(|r| r.0),
                first_line: rec.map(|r| r.1.clone()),
            });
        }
    }
    out
}

/// The "New errors" section: `None` when the error watch did not run.
pub(crate) fn render_new_errors(h: &mut Html, errors: Option<&[NewError]>, baseline: Option<i64>) {
    h.raw("<h2 id=\"new-errors\">New errors</h2>");
    let Some(errors) = errors else {
        h.raw("<p>None: the error watch did not run in this cycle (no watched component, or no verify stage).</p>");
        return;
    };
    let against = match baseline {
        Some(b) => format!("the previous healthy cycle #{b}"),
        None => "no previous healthy cycle, so every error is new".to_string(),
    };
    if errors.is_empty() {
        match baseline {
            Some(b) => {
                h.raw("<p>None: every error line's signature was seen in the previous healthy cycle #")
                    .num(b)
                    .raw(".</p>");
            }
            None => {
                h.raw("<p>None: no error line in the watched logs.</p>");
            }
        }
        return;
    }
    h.raw("<table class=\"new-errors\"><caption>Error signatures in the logs that are new (compared with ")
        .text(&against)
        .raw(")</caption><thead><tr><th scope=\"col\">Component</th><th scope=\"col\">Count</th>")
        .raw("<th scope=\"col\">First line</th><th scope=\"col\">Signature</th></tr></thead><tbody>");
    for e in errors {
        h.raw("<tr><th scope=\"row\">").text(&e.component).raw("</th><td>");
        match e.count {
            Some(n) => {
                h.num(i64::try_from(n).unwrap_or(i64::MAX));
            }
            None => {
                h.raw("<span class=\"muted\">not recorded</span>");
            }
        }
        h.raw("</td><td>");
        match &e.first_line {
            Some(l) => {
                h.raw("<code>").text(l).raw("</code>");
            }
            None => {
                h.raw("<span class=\"muted\">not recorded</span>");
            }
        }
        h.raw("</td><td><code>").text(&e.signature).raw("</code></td></tr>");
    }
    h.raw("</tbody></table>");
}

/// One run of a culprit search: its run number, the units it deployed, its cycle.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SearchRun<'a> {
    /// The run's number in the search.
    pub run: u64,
    /// What it deployed (`base only`, or the units).
    pub units: String,
    /// Its cycle.
    pub cycle: &'a CycleRecord,
}

/// The runs of the culprit search for cycle `failed`, in run order.
pub(crate) fn search_runs(failed: i64, cycles: &[CycleRecord]) -> Vec<SearchRun<'_>> {
    let prefix = format!("culprit search for cycle {failed} run ");
    let mut out: Vec<SearchRun<'_>> = cycles
        .iter()
        .filter_map(|c| {
            let rest = c.request.strip_prefix(&prefix)?;
            let (n, units) = rest.split_once(':').unwrap_or((rest, ""));
            Some(SearchRun {
                run: n.trim().parse().ok()?,
                units: units.trim().to_string(),
                cycle: c,
            })
        })
        .collect();
    out.sort_by_key(|r| (r.run, r.cycle.id));
    out
}

/// The "Culprit search" section; nothing when there was none and the cycle did not fail.
pub(crate) fn render_search(
    h: &mut Html,
    failed: bool,
    decisions: &[&DecisionRecord],
    runs: &[SearchRun<'_>],
    now: Millis,
) {
    if decisions.is_empty() && runs.is_empty() {
        if failed {
            h.raw("<h2 id=\"culprit-search\">Culprit search</h2><p>None: no culprit search was started for this cycle.</p>");
        }
        return;
    }
    h.raw("<h2 id=\"culprit-search\">Culprit search</h2>");
    if !decisions.is_empty() {
        let mut ds: Vec<&DecisionRecord> = decisions.to_vec();
        ds.sort_by_key(|d| (d.at, d.id));
        h.raw("<h3>Decisions</h3><ol class=\"search-decisions\">");
        for d in ds {
            h.raw("<li>").time(d.at, now).raw(": ").text(&d.reason).raw("</li>");
        }
        h.raw("</ol>");
    }
    h.raw("<h3>Runs</h3>");
    if runs.is_empty() {
        h.raw("<p>None yet (or on environments you may not view).</p>");
        return;
    }
    h.raw("<table class=\"search-runs\"><caption>Runs of the search, each a cycle on a free slot</caption><thead><tr>")
        .raw("<th scope=\"col\">Run</th><th scope=\"col\">Cycle</th><th scope=\"col\">Environment</th>")
        .raw("<th scope=\"col\">Deployed</th><th scope=\"col\">Result</th><th scope=\"col\">Started</th>")
        .raw("<th scope=\"col\">Duration</th></tr></thead><tbody>");
    for r in runs {
        let c = r.cycle;
        h.raw("<tr><th scope=\"row\">")
            .num(i64::try_from(r.run).unwrap_or(i64::MAX))
            .raw("</th><td>")
            .link(&format!("/cycles/{}", c.id), &format!("#{}", c.id))
            .raw("</td><td>")
            .text(&c.environment)
            .raw("</td><td>")
            .text(&r.units)
            .raw("</td><td>")
            .badge(&c.result)
            .raw("</td><td>")
            .time(c.started_at, now)
            .raw("</td><td>");
        match c.finished_at {
            Some(f) => {
                h.text(&time::format_span(f - c.started_at));
            }
            None => {
                h.raw("running");
            }
        }
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table>");
}

fn read_small(path: &std::path::Path, max: u64) -> Result<Option<String>, String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
        Ok(m) if m.len() > max => Err(format!("{} bytes, too large to show", m.len())),
        Ok(_) => std::fs::read_to_string(path).map(Some).map_err(|e| e.to_string()),
    }
}

/// The gate-result sections of cycle `c` (suites, metric gates, new
/// errors, culprit search), read and rendered. `search` are the `search`
/// decisions that name the cycle.
pub(crate) async fn load(
    s: &Shared,
    v: &Viewer,
    c: &CycleRecord,
    stages: &[StageRecord],
    search: &[&DecisionRecord],
    now: Millis,
) -> Result<Html, PageError> {
    let mut h = Html::new();
    let dir = s.app.paths.cycle_dir(c.id);

    // Suites.
    let (summary, note) = match read_small(&dir.join("junit.xml"), MAX_JUNIT) {
        Ok(Some(text)) => match junit::parse(&text) {
            Ok(suites) => (suites, None),
            Err(e) => (Vec::new(), Some(format!("The cycle's junit.xml is unreadable: {e}"))),
        },
        Ok(None) => (Vec::new(), None),
        Err(e) => (Vec::new(), Some(format!("The cycle's junit.xml cannot be shown: {e}"))),
    };
    render_suites(&mut h, &suite_rows(&summary, stages), note.as_deref());

    // Metric gates, with the query as the engine resolves it.
    let slot = s
        .app
        .config
        .lookup_instances(&c.environment)
        .ok()
        .and_then(|i| i.into_iter().find(|i| i.name == c.environment))
        .and_then(|i| i.slot)
        .map(|n| n.to_string())
        .unwrap_or_default();
    let cycle = c.id.to_string();
    let manifest = c.manifest.clone().unwrap_or_default();
    let gates = gate_rows(stages, |name, component| {
        let g = s.app.config.gates.iter().find(|g| g.name == name)?;
        Some(greenroom_core::gate::resolve_query(
            &g.query,
            &[
                ("environment", c.environment.as_str()),
                ("instance", c.environment.as_str()),
                ("slot", slot.as_str()),
                ("cycle", cycle.as_str()),
                ("manifest", manifest.as_str()),
                ("component", component.unwrap_or_default()),
            ],
        ))
    });
    render_gates(&mut h, &gates);

    // New errors, against the previous healthy cycle's signatures.
    let read_seen = |id: i64| -> Option<Seen> {
        let text = read_small(&s.app.paths.cycle_dir(id).join("errors.json"), MAX_JUNIT).ok()??;
        serde_json::from_str(&text).ok()
    };
    match read_seen(c.id) {
        Some(seen) => {
            let earlier = s
                .app
                .store
                .cycles(Some(std::slice::from_ref(&c.environment)), LOOK_BACK)
                .await?;
            let baseline = earlier
                .iter()
                .filter(|x| x.id < c.id && x.kind == "deploy" && x.result == "succeeded")
                .find_map(|x| read_seen(x.id).map(|b| (x.id, b)));
            let errors = new_errors(&seen, baseline.as_ref().map(|b| &b.1), c.error.as_deref());
            render_new_errors(&mut h, Some(&errors), baseline.map(|b| b.0));
        }
        None => render_new_errors(&mut h, None, None),
    }

    // Culprit search: its decisions and its runs (on environments the viewer may view).
    let runs_of: Vec<CycleRecord> = if search.is_empty() && c.result != "failed" {
        Vec::new()
    } else {
        let names: Vec<String> = s
            .app
            .config
            .instances()
            .into_iter()
            .filter(|i| v.may_view(s, &i.name))
            .map(|i| i.name)
            .collect();
        if names.is_empty() {
            Vec::new()
        } else {
            s.app.store.cycles(Some(&names), RUNS_LOOK_BACK).await?
        }
    };
    let runs = search_runs(c.id, &runs_of);
    render_search(&mut h, c.result == "failed", search, &runs, now);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, result: &str, detail: &str) -> StageRecord {
        StageRecord {
            seq: 1,
            name: name.into(),
            component: None,
            started_at: 0,
            finished_at: 1000,
            result: result.into(),
            detail: Some(detail.into()),
        }
    }

    fn suite(name: &str, tier: &str, result: &str, cases: Vec<TestCase>) -> TestSuite {
        TestSuite {
            name: name.into(),
            properties: vec![
                ("greenroom.suite.tier".into(), tier.into()),
                ("greenroom.suite.result".into(), result.into()),
            ],
            cases,
            ..TestSuite::default()
        }
    }

    fn case(name: &str, outcome: Outcome, out: Option<&str>) -> TestCase {
        TestCase {
            name: name.into(),
            classname: "matrix".into(),
            time: 0.0,
            outcome,
            system_out: out.map(String::from),
        }
    }

    fn rendered(f: impl FnOnce(&mut Html)) -> String {
        let mut h = Html::new();
        f(&mut h);
        h.into_string()
    }

    #[test]
    fn suites_are_grouped_by_tier_with_quarantine_apart_and_escaped() {
        let failed = Outcome::Failed {
            message: "status 500 <b>".into(),
            text: "expected 200".into(),
        };
        let summary = vec![
            suite("q<x>", "quarantine", "failed", vec![case("old", failed.clone(), None)]),
            suite(
                "api",
                "blocking",
                "failed",
                vec![
                    case("GET /a", Outcome::Passed, None),
                    case("POST /b", failed, Some("POST /b\n{\"x\":\"<y>\"}\n500")),
                ],
            ),
            suite(
                "smoke",
                "non-blocking",
                "passed",
                vec![case("smoke", Outcome::Passed, None)],
            ),
        ];
        let stages = vec![
            stage("verify:api", "failed", "1 of 2 cases failed & more"),
            stage("verify:late", "skipped", "not affected"),
        ];
        let rows = suite_rows(&summary, &stages);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[1].why, "1 of 2 cases failed & more", "the stage's detail wins");
        assert_eq!(rows[1].failing.len(), 1);
        assert_eq!(rows[3].tier, "unknown");
        let s = rendered(|h| render_suites(h, &rows, None));
        let at = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle} not in {s}"));
        assert!(at("<h3>Blocking</h3>") < at("<h3>Non-blocking</h3>"));
        assert!(at("<h3>Non-blocking</h3>") < at("<h3>Tier not recorded</h3>"));
        assert!(at("<h3>Tier not recorded</h3>") < at("<h3>Quarantined</h3>"));
        assert!(at("<h3>Quarantined</h3>") < at("q&lt;x&gt;"));
        assert!(s.contains("status 500 &lt;b&gt;") && !s.contains("<b>"), "{s}");
        assert!(s.contains("<details><summary>Request and response"), "{s}");
        assert!(s.contains("{&quot;x&quot;:&quot;&lt;y&gt;&quot;}"), "{s}");
        assert!(s.contains("1 of 2 cases failed &amp; more"), "{s}");
        assert!(s.contains("2 (1 failing)"), "{s}");
        assert!(s.contains("<caption>"), "{s}");
    }

    #[test]
    fn no_suites_says_none() {
        let s = rendered(|h| render_suites(h, &[], None));
        assert!(s.contains("None"), "{s}");
    }

    #[test]
    fn long_output_is_clipped_on_a_char_boundary() {
        let s = "é".repeat(10);
        let c = clip(&s, 3);
        assert!(c.starts_with("ééé\n… (cut: 14 more bytes"), "{c}");
        assert_eq!(clip("short", 10), "short");
    }

    #[test]
    fn gates_come_from_their_stage_rows_with_the_query() {
        let mut g = stage("gate:latency", "failed", "1 of 1 series not < 0.5: {job=\"a\"} 0.9");
        g.component = Some("ogr".into());
        let stages = vec![
            stage("verify:api", "passed", ""),
            g,
            stage("gate:gone", "error", "refused"),
        ];
        let rows = gate_rows(&stages, |name, comp| {
            (name == "latency").then(|| format!("rate(x{{c=\"{}\"}}[5m])", comp.unwrap_or("")))
        });
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].query.as_deref(), Some("rate(x{c=\"ogr\"}[5m])"));
        let s = rendered(|h| render_gates(h, &rows));
        assert!(s.contains("rate(x{c=&quot;ogr&quot;}[5m])"), "{s}");
        assert!(s.contains("{job=&quot;a&quot;} 0.9"), "{s}");
        assert!(s.contains("not configured any more"), "{s}");
        assert!(s.contains("badge bad"), "{s}");
        let none = rendered(|h| render_gates(h, &[]));
        assert!(none.contains("None"), "{none}");
    }

    #[test]
    fn new_errors_are_the_signatures_the_baseline_lacks() {
        let now: Seen = serde_json::from_str(
            r#"{"cycle": 9, "components": {"ogr": ["ERROR old", "ERROR Foreign key <n> <x>"], "db": ["FATAL y"]}}"#,
        )
        .expect("seen");
        let before: Seen = serde_json::from_str(r#"{"cycle": 7, "components": {"ogr": ["ERROR old"]}}"#).expect("seen");
        let error = "1 new error in the logs (vs the previous healthy cycle):\n  ogr: 3x ERROR Foreign key 42 <x>";
        let new = new_errors(&now, Some(&before), Some(error));
        assert_eq!(new.len(), 2, "{new:?}");
        assert_eq!(new[0].component, "db");
        assert_eq!(new[0].count, None);
        assert_eq!(new[1].count, Some(3));
        assert_eq!(new[1].first_line.as_deref(), Some("ERROR Foreign key 42 <x>"));
        let s = rendered(|h| render_new_errors(h, Some(&new), Some(7)));
        assert!(
            s.contains("cycle #7") && s.contains("ERROR Foreign key 42 &lt;x&gt;"),
            "{s}"
        );
        assert!(s.contains("not recorded"), "{s}");
        // Without a baseline every signature is new.
        assert_eq!(new_errors(&now, None, None).len(), 3);
        let off = rendered(|h| render_new_errors(h, None, None));
        assert!(off.contains("None"), "{off}");
    }

    fn cycle(id: i64, request: &str) -> CycleRecord {
        CycleRecord {
            id,
            environment: "dev-1".into(),
            kind: "deploy".into(),
            manifest: None,
            request: request.into(),
            requested_by: "greenroom".into(),
            result: "failed".into(),
            error: None,
            started_at: 0,
            finished_at: Some(60_000),
            host: String::new(),
            pid: 0,
            pid_start: 0,
            lease_token: 0,
            cancel: None,
        }
    }

    #[test]
    fn search_runs_are_found_by_request_in_run_order() {
        let cycles = vec![
            cycle(12, "culprit search for cycle 5 run 2: packit/ogr#2"),
            cycle(11, "culprit search for cycle 5 run 1: base only"),
            cycle(13, "culprit search for cycle 50 run 1: base only"),
            cycle(14, "deploy staging"),
        ];
        let runs = search_runs(5, &cycles);
        assert_eq!(runs.iter().map(|r| r.cycle.id).collect::<Vec<_>>(), vec![11, 12]);
        assert_eq!(runs[1].units, "packit/ogr#2");
        let d = DecisionRecord {
            id: 1,
            environment: "staging".into(),
            at: 0,
            kind: "search".into(),
            reason: "culprit search for cycle 5: <api> failed".into(),
            triggers: String::new(),
            cycle_id: Some(5),
        };
        let s = rendered(|h| render_search(h, true, &[&d], &runs, 120_000));
        assert!(s.contains("&lt;api&gt; failed"), "{s}");
        assert!(s.contains("<a href=\"/cycles/11\">#11</a>"), "{s}");
        assert!(s.find("/cycles/11").unwrap_or(0) < s.find("/cycles/12").unwrap_or(0));
        let none = rendered(|h| render_search(h, true, &[], &[], 0));
        assert!(none.contains("None"), "{none}");
        assert!(rendered(|h| render_search(h, false, &[], &[], 0)).is_empty());
    }
}
