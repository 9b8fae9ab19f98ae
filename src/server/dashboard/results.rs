//! A cycle's gate results on its page (issue #7 point 3): the suites by
//! tier with their failing test cases (a matrix case's request and response
//! in a `<details>`), the metric gates, the new error lines, and the
//! culprit searches of a failed cycle with their runs.
//!
//! What is read: the cycle's stage rows (`verify:SUITE`, `gate:NAME`), its
//! JUnit summary (`CYCLE_DIR/junit.xml`, written by
//! `verify::write_cycle_junit`), the metric gates as evaluated
//! (`CYCLE_DIR/gates.json`, written by `gates::evaluate`: the query as
//! sent and the values seen), the error watch's record
//! (`CYCLE_DIR/errors.json`, `errorwatch::Seen`), the `search` decisions
//! that name the cycle and the cycles whose request is `culprit search for
//! cycle N run M`. [`load`] reads; the `render_*` functions are pure.
//!
//! Cycles from before those files kept their detail still show: a gate's
//! query is then rebuilt from the current configuration (and said so),
//! and new errors are the signatures the previous healthy cycle's file
//! lacks, with a count and first line only where the cycle's error has
//! them (new errors that failed it, `COMPONENT: Nx LINE`).

use super::html::Html;
use super::{PageError, Viewer};
use crate::server::Shared;
use greenroom_core::junit::{self, Outcome, TestCase, TestSuite};
use greenroom_core::time::{self, Millis};
use greenroom_store::{CycleRecord, DecisionRecord, StageRecord};
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
    /// `deploy` or `tests`, when recorded.
    pub when: Option<String>,
    /// The query: as sent (recorded), or rebuilt from the current
    /// configuration for an older cycle (`None`: not configured any more).
    pub query: Option<String>,
    /// Whether `query` and `values` are what the cycle recorded.
    pub recorded: bool,
    /// `passed`, `failed`, `error`.
    pub result: String,
    /// The verdict (or why Prometheus could not be asked).
    pub detail: String,
    /// The series seen (labels, value), when recorded.
    pub values: Vec<(String, String)>,
}

/// Labels as Prometheus writes them: `{job="a", le="0.5"}`.
fn labels(metric: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = metric
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// The gates a cycle recorded in its `gates.json`, in evaluation order.
pub(crate) fn recorded_gate_rows(rec: &crate::gates::Recorded) -> Vec<GateRow> {
    rec.gates
        .iter()
        .map(|g| GateRow {
            name: g.name.clone(),
            component: g.component.clone(),
            when: Some(g.when.clone()),
            query: Some(g.query.clone()),
            recorded: true,
            result: g.result.clone(),
            detail: g.reason.clone(),
            values: g.values.iter().map(|v| (labels(&v.metric), v.value.clone())).collect(),
        })
        .collect()
}

/// The `gate:NAME` stage rows (a cycle from before `gates.json`), with the
/// query `query(name, component)` rebuilds from the current configuration.
pub(crate) fn gate_rows(stages: &[StageRecord], query: impl Fn(&str, Option<&str>) -> Option<String>) -> Vec<GateRow> {
    stages
        .iter()
        .filter_map(|st| {
            let name = st.name.strip_prefix("gate:")?;
            Some(GateRow {
                name: name.to_string(),
                component: st.component.clone(),
                when: None,
                query: query(name, st.component.as_deref()),
                recorded: false,
                result: st.result.clone(),
                detail: st.detail.clone().unwrap_or_default(),
                values: Vec::new(),
            })
        })
        .collect()
}

/// The "Metric gates" section; `note` says why the record could not be read.
pub(crate) fn render_gates(h: &mut Html, rows: &[GateRow], note: Option<&str>) {
    h.raw("<h2 id=\"gates\">Metric gates</h2>");
    if let Some(n) = note {
        h.raw("<p class=\"muted\">").text(n).raw("</p>");
    }
    if rows.is_empty() {
        h.raw("<p>None: no metric gate was evaluated in this cycle.</p>");
        return;
    }
    if rows.iter().any(|g| !g.recorded) {
        h.raw("<p class=\"muted\">This cycle predates recorded gate queries: a query is rebuilt from the current configuration, which may have changed since.</p>");
    }
    h.raw("<table class=\"gates\"><caption>Metric gates asked of Prometheus</caption><thead><tr>")
        .raw("<th scope=\"col\">Gate</th><th scope=\"col\">Component</th><th scope=\"col\">Query as sent</th>")
        .raw("<th scope=\"col\">Values and verdict</th><th scope=\"col\">Result</th></tr></thead><tbody>");
    for g in rows {
        h.raw("<tr class=\"gate\"><th scope=\"row\">").text(&g.name);
        if let Some(w) = &g.when {
            h.raw(" <span class=\"muted\">(after ").text(w).raw(")</span>");
        }
        h.raw("</th><td>")
            .text(g.component.as_deref().unwrap_or("—"))
            .raw("</td><td>");
        match (&g.query, g.recorded) {
            (Some(q), true) => {
                h.raw("<code class=\"query\">").text(q).raw("</code>");
            }
            (Some(q), false) => {
                h.raw("<code class=\"query\">")
                    .text(q)
                    .raw("</code> <span class=\"muted\">(from the current configuration)</span>");
            }
            (None, _) => {
                h.raw("<span class=\"muted\">not recorded, and not configured any more</span>");
            }
        }
        h.raw("</td><td>");
        if !g.values.is_empty() {
            h.raw("<ul class=\"values\">");
            for (l, v) in &g.values {
                h.raw("<li><code>").text(l).raw("</code> ").text(v).raw("</li>");
            }
            h.raw("</ul>");
        }
        h.raw("<span class=\"detail\">")
            .text(&g.detail)
            .raw("</span></td><td>")
            .badge(&g.result)
            .raw("</td></tr>");
    }
    h.raw("</tbody></table>");
}

use crate::errorwatch::Seen;

/// One new error signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewError {
    /// The component that logged it.
    pub component: String,
    /// Its signature.
    pub signature: String,
    /// How many lines in this cycle, when recorded.
    pub count: Option<u64>,
    /// The first of them, when recorded.
    pub first_line: Option<String>,
}

/// One component's errors in a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ComponentErrors {
    /// The component.
    pub component: String,
    /// Its new signatures, in order of first appearance.
    pub new: Vec<NewError>,
    /// Error lines whose signature the baseline had (`None`: not recorded).
    pub known: Option<u64>,
    /// Why its window could not be read.
    pub error: Option<String>,
}

/// The error watch's findings for a cycle, per component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorsView {
    /// The previous healthy cycle compared with (none: every error is new).
    pub baseline: Option<i64>,
    /// Per watched component.
    pub components: Vec<ComponentErrors>,
    /// Whether counts, first lines and known totals were recorded by the
    /// cycle (or reconstructed for an older one).
    pub recorded: bool,
}

impl ErrorsView {
    /// Every new signature, component by component.
    pub fn new_errors(&self) -> impl Iterator<Item = &NewError> {
        self.components.iter().flat_map(|c| c.new.iter())
    }
}

/// The view of a cycle whose `errors.json` has the detail (`None` for an
/// older file).
pub(crate) fn recorded_errors(seen: &Seen) -> Option<ErrorsView> {
    let detail = seen.detail.as_ref()?;
    Some(ErrorsView {
        baseline: seen.baseline,
        recorded: true,
        components: detail
            .iter()
            .map(|(comp, d)| ComponentErrors {
                component: comp.clone(),
                new: d
                    .groups
                    .iter()
                    .filter(|g| g.new)
                    .map(|g| NewError {
                        component: comp.clone(),
                        signature: g.signature.clone(),
                        count: Some(g.count),
                        first_line: Some(g.first_line.clone()),
                    })
                    .collect(),
                known: Some(d.known),
                error: d.error.clone(),
            })
            .collect(),
    })
}

/// For an older `errors.json` (signatures only): the signatures of `now`
/// that `before` (the previous healthy cycle's file, `baseline`) lacks, all
/// of them without one, with counts and first lines from the cycle's error
/// text (`COMPONENT: Nx LINE` lines) where it has them.
pub(crate) fn new_errors(now: &Seen, before: Option<(i64, &Seen)>, error: Option<&str>) -> ErrorsView {
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
    let mut components = Vec::new();
    for (comp, sigs) in &now.components {
        let old: BTreeSet<&String> = before
            .and_then(|b| b.1.components.get(comp))
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let new = sigs
            .iter()
            .filter(|s| !old.contains(s))
            .map(|sig| {
                let rec = known.get(&(comp.clone(), sig.clone()));
                NewError {
                    component: comp.clone(),
                    signature: sig.clone(),
                    count: rec.map(|r| r.0),
                    first_line: rec.map(|r| r.1.clone()),
                }
            })
            .collect();
        components.push(ComponentErrors {
            component: comp.clone(),
            new,
            known: None,
            error: None,
        });
    }
    ErrorsView {
        baseline: before.map(|b| b.0),
        components,
        recorded: false,
    }
}

fn or_not_recorded(h: &mut Html, n: Option<u64>) {
    match n {
        Some(n) => {
            h.num(i64::try_from(n).unwrap_or(i64::MAX));
        }
        None => {
            h.raw("<span class=\"muted\">not recorded</span>");
        }
    }
}

/// The "New errors" section: `None` when the error watch did not run;
/// `note` says why its record could not be read.
pub(crate) fn render_new_errors(h: &mut Html, view: Option<&ErrorsView>, note: Option<&str>) {
    h.raw("<h2 id=\"new-errors\">New errors</h2>");
    if let Some(n) = note {
        h.raw("<p class=\"muted\">").text(n).raw("</p>");
    }
    let Some(view) = view else {
        h.raw("<p>None: the error watch did not run in this cycle (no watched component, or no verify stage).</p>");
        return;
    };
    let against = match view.baseline {
        Some(b) => format!("the previous healthy cycle #{b}"),
        None => "no previous healthy cycle, so every error is new".to_string(),
    };
    let total = view.new_errors().count();
    if total == 0 {
        match view.baseline {
            Some(b) => {
                h.raw("<p>None: every error line's signature was seen in the previous healthy cycle #")
                    .num(b)
                    .raw(".</p>");
            }
            None => {
                h.raw("<p>None: no error line in the watched logs.</p>");
            }
        }
    } else {
        h.raw("<table class=\"new-errors\"><caption>Error signatures in the logs that are new (compared with ")
            .text(&against)
            .raw(")</caption><thead><tr><th scope=\"col\">Component</th><th scope=\"col\">Count</th>")
            .raw("<th scope=\"col\">First line</th><th scope=\"col\">Signature</th></tr></thead><tbody>");
        for e in view.new_errors() {
            h.raw("<tr class=\"new-error\"><th scope=\"row\">")
                .text(&e.component)
                .raw("</th><td>");
            or_not_recorded(h, e.count);
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
    if view.components.is_empty() {
        return;
    }
    h.raw("<table class=\"error-watch\"><caption>Per watched component</caption><thead><tr>")
        .raw("<th scope=\"col\">Component</th><th scope=\"col\">New signatures</th>")
        .raw("<th scope=\"col\">Lines of new errors</th><th scope=\"col\">Known error lines (total)</th></tr></thead><tbody>");
    for c in &view.components {
        h.raw("<tr class=\"watched\"><th scope=\"row\">")
            .text(&c.component)
            .raw("</th><td>")
            .num(i64::try_from(c.new.len()).unwrap_or(i64::MAX))
            .raw("</td><td>");
        let lines: Option<u64> = c.new.iter().map(|e| e.count).sum();
        or_not_recorded(h, if c.new.is_empty() { Some(0) } else { lines });
        h.raw("</td><td>");
        or_not_recorded(h, c.known);
        if let Some(e) = &c.error {
            h.raw(" <span class=\"bad\">window unreadable: ").text(e).raw("</span>");
        }
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table>");
    if !view.recorded {
        h.raw("<p class=\"muted\">This cycle predates recorded error counts: counts and first lines are known only where the cycle's error lists them.</p>");
    }
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

/// The gate rows of a cycle from before `gates.json`: its `gate:NAME`
/// stage rows, each query rebuilt as the engine resolves it from the gate
/// as configured now.
fn config_gate_rows(s: &Shared, c: &CycleRecord, stages: &[StageRecord]) -> Vec<GateRow> {
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
    gate_rows(stages, |name, component| {
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
    })
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

    // Metric gates: as the cycle recorded them, or (an older cycle) from
    // its stage rows with the query rebuilt from the configuration.
    let (recorded, gates_note) = match crate::gates::read_recorded(&crate::gates::recorded_path(&dir)) {
        Ok(r) => (r, None),
        Err(e) => (None, Some(format!("The cycle's gate record cannot be shown: {e}"))),
    };
    let gates = match &recorded {
        Some(r) => recorded_gate_rows(r),
        None => config_gate_rows(s, c, stages),
    };
    render_gates(&mut h, &gates, gates_note.as_deref());

    // New errors: as the cycle recorded them, or (an older file) against
    // the previous healthy cycle's signatures.
    let read_seen = |id: i64| crate::errorwatch::read_seen(&crate::errorwatch::seen_path(&s.app.paths.cycle_dir(id)));
    match read_seen(c.id) {
        Ok(Some(seen)) => {
            let view = match recorded_errors(&seen) {
                Some(v) => v,
                None => {
                    let earlier = s
                        .app
                        .store
                        .cycles(Some(std::slice::from_ref(&c.environment)), LOOK_BACK)
                        .await?;
                    let baseline = earlier
                        .iter()
                        .filter(|x| x.id < c.id && x.kind == "deploy" && x.result == "succeeded")
                        .find_map(|x| read_seen(x.id).ok().flatten().map(|b| (x.id, b)));
                    new_errors(&seen, baseline.as_ref().map(|(id, b)| (*id, b)), c.error.as_deref())
                }
            };
            render_new_errors(&mut h, Some(&view), None);
        }
        Ok(None) => render_new_errors(&mut h, None, None),
        Err(e) => render_new_errors(
            &mut h,
            None,
            Some(&format!("The cycle's error watch record cannot be shown: {e}")),
        ),
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
        assert!(!rows[0].recorded);
        let s = rendered(|h| render_gates(h, &rows, None));
        assert!(s.contains("rate(x{c=&quot;ogr&quot;}[5m])"), "{s}");
        assert!(s.contains("{job=&quot;a&quot;} 0.9"), "{s}");
        assert!(s.contains("not configured any more"), "{s}");
        assert!(s.contains("from the current configuration"), "{s}");
        assert!(s.contains("badge bad"), "{s}");
        let none = rendered(|h| render_gates(h, &[], None));
        assert!(none.contains("None"), "{none}");
    }

    #[test]
    fn recorded_gates_show_the_query_as_sent_and_the_values() {
        use crate::gates::{GateReport, Recorded};
        use greenroom_core::gate::Sample;
        let rec: Recorded = serde_json::from_value(serde_json::json!({
            "cycle": 4,
            "gates": [{
                "name": "errors", "tier": "blocking", "when": "deploy", "component": "ogr",
                "query": "sum(rate(e{env=\"dev-1\"}[5m]))", "pass": "< 1",
                "values": [{"metric": {"job": "o\"gr"}, "value": "3"}],
                "result": "failed", "reason": "1 of 1 series not < 1", "duration_ms": 12
            }]
        }))
        .expect("recorded");
        let rows = recorded_gate_rows(&rec);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].recorded);
        assert_eq!(rows[0].when.as_deref(), Some("deploy"));
        assert_eq!(rows[0].values, vec![("{job=\"o\\\"gr\"}".to_string(), "3".to_string())]);
        let s = rendered(|h| render_gates(h, &rows, Some("note <x>")));
        assert!(s.contains("sum(rate(e{env=&quot;dev-1&quot;}[5m]))"), "{s}");
        assert!(!s.contains("current configuration"), "{s}");
        assert!(
            s.contains("<ul class=\"values\"><li><code>{job=&quot;o\\&quot;gr&quot;}</code> 3</li></ul>"),
            "{s}"
        );
        assert!(s.contains("note &lt;x&gt;"), "{s}");
        // The same report type the engine writes.
        let back = GateReport {
            values: vec![Sample {
                metric: BTreeMap::new(),
                value: "1".into(),
            }],
            ..rec.gates[0].clone()
        };
        assert_eq!(labels(&back.values[0].metric), "{}");
    }

    #[test]
    fn new_errors_of_an_old_file_are_the_signatures_the_baseline_lacks() {
        let now: Seen = serde_json::from_str(
            r#"{"cycle": 9, "components": {"ogr": ["ERROR old", "ERROR Foreign key <n> <x>"], "db": ["FATAL y"]}}"#,
        )
        .expect("seen");
        let before: Seen = serde_json::from_str(r#"{"cycle": 7, "components": {"ogr": ["ERROR old"]}}"#).expect("seen");
        assert!(recorded_errors(&now).is_none(), "an old file has no detail");
        let error = "1 new error in the logs (vs the previous healthy cycle):\n  ogr: 3x ERROR Foreign key 42 <x>";
        let view = new_errors(&now, Some((7, &before)), Some(error));
        let new: Vec<&NewError> = view.new_errors().collect();
        assert_eq!(new.len(), 2, "{new:?}");
        assert_eq!(new[0].component, "db");
        assert_eq!(new[0].count, None);
        assert_eq!(new[1].count, Some(3));
        assert_eq!(new[1].first_line.as_deref(), Some("ERROR Foreign key 42 <x>"));
        let s = rendered(|h| render_new_errors(h, Some(&view), None));
        assert!(
            s.contains("cycle #7") && s.contains("ERROR Foreign key 42 &lt;x&gt;"),
            "{s}"
        );
        assert!(
            s.contains("not recorded") && s.contains("predates recorded error counts"),
            "{s}"
        );
        // Without a baseline every signature is new.
        assert_eq!(new_errors(&now, None, None).new_errors().count(), 3);
        let off = rendered(|h| render_new_errors(h, None, None));
        assert!(off.contains("None"), "{off}");
    }

    #[test]
    fn new_errors_of_a_new_file_have_counts_first_lines_and_known_totals() {
        let seen: Seen = serde_json::from_value(serde_json::json!({
            "cycle": 9,
            "components": {"ogr": ["ERROR old", "ERROR fk <n>"], "db": ["FATAL y"]},
            "baseline": 7,
            "detail": {
                "ogr": {"window": "tests", "known": 14, "groups": [
                    {"signature": "ERROR old", "count": 14, "first_line": "ERROR old", "new": false},
                    {"signature": "ERROR fk <n>", "count": 2, "first_line": "ERROR fk 42 <script>", "new": true}
                ]},
                "db": {"window": "deploy+tests", "known": 0, "groups": [
                    {"signature": "FATAL y", "count": 1, "first_line": "FATAL y", "new": true}
                ]},
                "api": {"window": "tests", "error": "`logs` exited with status 1"}
            }
        }))
        .expect("seen");
        let view = recorded_errors(&seen).expect("detail");
        assert!(view.recorded);
        assert_eq!(view.baseline, Some(7));
        let new: Vec<&NewError> = view.new_errors().collect();
        assert_eq!(new.len(), 2);
        assert_eq!((new[1].component.as_str(), new[1].count), ("ogr", Some(2)));
        let ogr = view.components.iter().find(|c| c.component == "ogr").expect("ogr");
        assert_eq!(ogr.known, Some(14));
        let s = rendered(|h| render_new_errors(h, Some(&view), None));
        assert!(
            s.contains("ERROR fk 42 &lt;script&gt;") && !s.contains("<script>"),
            "{s}"
        );
        assert!(
            s.contains("<tr class=\"watched\"><th scope=\"row\">ogr</th><td>1</td><td>2</td><td>14</td></tr>"),
            "{s}"
        );
        assert!(s.contains("window unreadable: `logs` exited with status 1"), "{s}");
        assert!(!s.contains("not recorded"), "{s}");
        // Nothing new: the known totals are still shown.
        let quiet: Seen = serde_json::from_value(serde_json::json!({
            "cycle": 10, "components": {"ogr": ["ERROR old"]}, "baseline": 9,
            "detail": {"ogr": {"window": "tests", "known": 5, "groups": [
                {"signature": "ERROR old", "count": 5, "first_line": "ERROR old", "new": false}]}}
        }))
        .expect("seen");
        let s = rendered(|h| render_new_errors(h, recorded_errors(&quiet).as_ref(), None));
        assert!(s.contains("None: every error line") && s.contains("<td>5</td>"), "{s}");
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
