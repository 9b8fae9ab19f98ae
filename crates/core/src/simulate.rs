//! The policy simulator behind `greenroom simulate --trace events.jsonl`.
//!
//! This module owns the trace format (JSON lines of triggers), replaying a
//! trace in virtual time against the *real* scheduling policy
//! ([`crate::policy::step`]) with modelled build/deploy/test/drain durations,
//! the two baselines a team compares against (a fixed `every:8h` full cycle,
//! and "deploy on every event"), the time-to-feedback report, and a
//! deterministic generator of plausible workday traces.
//!
//! It must never do I/O or read a clock: the caller reads the trace file and
//! prints the report. It must never carry its own copy of the policy rules:
//! every scheduling decision comes from [`crate::policy`].

use crate::policy::{self, Action, CycleKind, CycleResult, DecisionKind, Event, PolicyConfig, State};
use crate::time::{self, Millis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

/// What kind of trigger a trace line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A push to a followed branch.
    Push,
    /// A pull request opened or updated.
    PullRequest,
    /// A maintainer's `@bot deploy` comment: an admin deploy, kind per the rules.
    CommentDeploy,
    /// A maintainer's `@bot trigger` comment: an admin deploy asking for a full cycle.
    CommentTrigger,
}

impl TriggerKind {
    const NAMES: &'static str = "push, pull_request, comment_deploy, comment_trigger";

    fn parse(s: &str) -> Option<TriggerKind> {
        Some(match s {
            "push" => TriggerKind::Push,
            "pull_request" => TriggerKind::PullRequest,
            "comment_deploy" => TriggerKind::CommentDeploy,
            "comment_trigger" => TriggerKind::CommentTrigger,
            _ => return None,
        })
    }
}

/// One line of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// When it happened (ms since the epoch; RFC 3339 UTC or ms in the file).
    pub at: Millis,
    /// The repository.
    pub repo: String,
    /// The pull request, for PR events and comments.
    pub pr: Option<u64>,
    /// What happened.
    pub kind: TriggerKind,
}

impl TraceEvent {
    /// The event as one trace line (`at` in RFC 3339), readable by [`parse_trace`].
    pub fn to_json_line(&self) -> String {
        let mut obj = serde_json::Map::new();
        obj.insert("at".into(), time::format(self.at).into());
        obj.insert("repo".into(), self.repo.clone().into());
        if let Some(pr) = self.pr {
            obj.insert("pr".into(), pr.into());
        }
        let kind = match self.kind {
            TriggerKind::Push => "push",
            TriggerKind::PullRequest => "pull_request",
            TriggerKind::CommentDeploy => "comment_deploy",
            TriggerKind::CommentTrigger => "comment_trigger",
        };
        obj.insert("kind".into(), kind.into());
        serde_json::Value::Object(obj).to_string()
    }

    /// The policy event this trace line becomes, with trigger id `id`.
    fn to_event(&self, id: u64) -> Event {
        let pr = self.pr.map(|p| format!(" pr {p}")).unwrap_or_default();
        match self.kind {
            TriggerKind::Push => Event::Trigger {
                id,
                source: format!("push {}", self.repo),
                at: self.at,
            },
            TriggerKind::PullRequest => Event::Trigger {
                id,
                source: format!("{}{pr}", self.repo),
                at: self.at,
            },
            TriggerKind::CommentDeploy | TriggerKind::CommentTrigger => Event::Deploy {
                id,
                by: format!("maintainer ({}{pr})", self.repo),
                admin: true,
                full: self.kind == TriggerKind::CommentTrigger,
            },
        }
    }
}

/// A trace line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TraceError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads a JSONL trace: one object per line with `at` (RFC 3339 UTC string
/// or ms since the epoch), `repo`, `pr` (for PR events and comments) and
/// `kind` (`push`, `pull_request`, `comment_deploy`, `comment_trigger`).
/// Blank lines and lines starting with `#` are skipped. The events are
/// returned sorted by time (stable).
pub fn parse_trace(text: &str) -> Result<Vec<TraceEvent>, TraceError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        out.push(parse_line(trimmed).map_err(|message| TraceError { line, message })?);
    }
    out.sort_by_key(|e| e.at);
    Ok(out)
}

fn parse_line(text: &str) -> Result<TraceEvent, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let serde_json::Value::Object(obj) = value else {
        return Err("expected a JSON object like {\"at\": \"2026-11-23T10:00:00Z\", \"repo\": \"ogr\", \"pr\": 123, \"kind\": \"pull_request\"}".into());
    };
    for key in obj.keys() {
        if !["at", "repo", "pr", "kind"].contains(&key.as_str()) {
            return Err(format!("unknown field `{key}` (expected at, repo, pr, kind)"));
        }
    }
    let at = match obj.get("at") {
        None => return Err("missing `at` (RFC 3339 UTC time or milliseconds since the epoch)".into()),
        Some(serde_json::Value::String(s)) => {
            let t = humantime::parse_rfc3339_weak(s).map_err(|e| {
                format!("`at`: `{s}` is not an RFC 3339 UTC time ({e}); write e.g. \"2026-11-23T10:00:00Z\"")
            })?;
            let d = t
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| format!("`at`: `{s}` is before 1970"))?;
            i64::try_from(d.as_millis()).map_err(|_| format!("`at`: `{s}` is too far in the future"))?
        }
        Some(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(ms) if ms >= 0 => ms,
            _ => {
                return Err(format!(
                    "`at`: {n} is not a whole number of milliseconds since the epoch"
                ));
            }
        },
        Some(other) => return Err(format!("`at`: expected a time string or milliseconds, found {other}")),
    };
    let repo = match obj.get("repo") {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(serde_json::Value::String(_)) => return Err("`repo` must not be empty".into()),
        Some(other) => return Err(format!("`repo`: expected a string, found {other}")),
        None => return Err("missing `repo`".into()),
    };
    let kind = match obj.get("kind") {
        Some(serde_json::Value::String(s)) => TriggerKind::parse(s)
            .ok_or_else(|| format!("`kind`: unknown kind `{s}` (expected one of {})", TriggerKind::NAMES))?,
        Some(other) => return Err(format!("`kind`: expected a string, found {other}")),
        None => return Err(format!("missing `kind` ({})", TriggerKind::NAMES)),
    };
    let pr = match obj.get("pr") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(p) if p > 0 => Some(p),
            _ => return Err(format!("`pr`: {n} is not a pull request number")),
        },
        Some(other) => return Err(format!("`pr`: expected a number, found {other}")),
    };
    match (kind, pr) {
        (TriggerKind::Push, Some(_)) => return Err("`pr` given for a push (a push is to a branch)".into()),
        (TriggerKind::PullRequest | TriggerKind::CommentDeploy | TriggerKind::CommentTrigger, None) => {
            return Err("missing `pr`: pull_request and comment events belong to a pull request".into());
        }
        _ => {}
    }
    Ok(TraceEvent { at, repo, pr, kind })
}

/// Modelled durations of the work a cycle does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimModel {
    /// Building the images/artifacts.
    pub build: Duration,
    /// Deploying them.
    pub deploy: Duration,
    /// The smoke tests of a partial cycle.
    pub partial_tests: Duration,
    /// The full test suites of a full cycle.
    pub full_tests: Duration,
    /// Draining the environment before a (re)deploy.
    pub drain: Duration,
}

impl Default for SimModel {
    fn default() -> Self {
        SimModel {
            build: Duration::from_secs(4 * 60),
            deploy: Duration::from_secs(3 * 60),
            partial_tests: Duration::from_secs(5 * 60),
            full_tests: Duration::from_secs(90 * 60),
            drain: Duration::from_secs(60),
        }
    }
}

impl SimModel {
    /// How long a cycle of `kind` runs once started (the drain comes before).
    pub fn cycle(&self, kind: CycleKind) -> Duration {
        let tests = match kind {
            CycleKind::Full => self.full_tests,
            CycleKind::Partial => self.partial_tests,
        };
        self.build + self.deploy + tests
    }
}

/// Min, median, 90th percentile and max of a set of durations (ms),
/// by the nearest-rank method (the median of an even count is the lower middle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// How many values.
    pub count: usize,
    /// Smallest.
    pub min: i64,
    /// Nearest-rank 50th percentile.
    pub median: i64,
    /// Nearest-rank 90th percentile.
    pub p90: i64,
    /// Largest.
    pub max: i64,
}

impl Stats {
    /// The statistics of `values`, `None` when there are none.
    pub fn of(values: &[i64]) -> Option<Stats> {
        let mut v = values.to_vec();
        v.sort_unstable();
        let n = v.len();
        let rank = |p: usize| v[(p * n).div_ceil(100).clamp(1, n) - 1];
        let (&min, &max) = (v.first()?, v.last()?);
        Some(Stats {
            count: n,
            min,
            median: rank(50),
            p90: rank(90),
            max,
        })
    }
}

/// The outcome of replaying a trace under one strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimReport {
    /// The strategy: `policy`, `every 8h`, `every event`.
    pub label: String,
    /// Triggers in the trace.
    pub triggers: usize,
    /// Trigger -> end of the first cycle that started after it and includes it.
    pub any_feedback: Option<Stats>,
    /// Trigger -> end of the first full cycle that includes it.
    pub full_feedback: Option<Stats>,
    /// Triggers no full cycle covered before the simulation ended.
    pub without_full_feedback: usize,
    /// Full cycles started.
    pub full_cycles: usize,
    /// Partial cycles started.
    pub partial_cycles: usize,
    /// Restarts of running partial cycles.
    pub restarts: usize,
    /// Triggers deferred by the cooldown.
    pub deferred: usize,
    /// Full cycles run inside `full_interval` by an admin override.
    pub overrides: usize,
    /// Total time cycles ran (ms), drains excluded.
    pub busy_ms: i64,
}

impl SimReport {
    fn empty(label: String, triggers: usize) -> SimReport {
        SimReport {
            label,
            triggers,
            any_feedback: None,
            full_feedback: None,
            without_full_feedback: 0,
            full_cycles: 0,
            partial_cycles: 0,
            restarts: 0,
            deferred: 0,
            overrides: 0,
            busy_ms: 0,
        }
    }
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&comparison_table(std::slice::from_ref(self)))
    }
}

/// The reports side by side, one column each, as a small text table.
pub fn comparison_table(reports: &[SimReport]) -> String {
    fn span(v: Option<i64>) -> String {
        v.map(time::format_span).unwrap_or_else(|| "-".to_string())
    }
    fn stat(s: &Option<Stats>, pick: fn(&Stats) -> i64) -> String {
        span(s.as_ref().map(pick))
    }
    type Row = (&'static str, Box<dyn Fn(&SimReport) -> String>);
    let rows: Vec<Row> = vec![
        ("triggers", Box::new(|r| r.triggers.to_string())),
        ("feedback (any) min", Box::new(|r| stat(&r.any_feedback, |s| s.min))),
        ("  median", Box::new(|r| stat(&r.any_feedback, |s| s.median))),
        ("  p90", Box::new(|r| stat(&r.any_feedback, |s| s.p90))),
        ("  max", Box::new(|r| stat(&r.any_feedback, |s| s.max))),
        ("feedback (full) min", Box::new(|r| stat(&r.full_feedback, |s| s.min))),
        ("  median", Box::new(|r| stat(&r.full_feedback, |s| s.median))),
        ("  p90", Box::new(|r| stat(&r.full_feedback, |s| s.p90))),
        ("  max", Box::new(|r| stat(&r.full_feedback, |s| s.max))),
        ("  never full", Box::new(|r| r.without_full_feedback.to_string())),
        ("full cycles", Box::new(|r| r.full_cycles.to_string())),
        ("partial cycles", Box::new(|r| r.partial_cycles.to_string())),
        ("restarts", Box::new(|r| r.restarts.to_string())),
        ("deferred (cooldown)", Box::new(|r| r.deferred.to_string())),
        ("admin overrides", Box::new(|r| r.overrides.to_string())),
        ("busy", Box::new(|r| span(Some(r.busy_ms)))),
    ];
    let mut cells: Vec<Vec<String>> = vec![
        std::iter::once(String::new())
            .chain(reports.iter().map(|r| r.label.clone()))
            .collect(),
    ];
    for (name, get) in &rows {
        cells.push(
            std::iter::once(name.to_string())
                .chain(reports.iter().map(get))
                .collect(),
        );
    }
    let columns = reports.len() + 1;
    let widths: Vec<usize> = (0..columns)
        .map(|c| cells.iter().map(|row| row[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                line.push_str(&format!("  {cell:>w$}", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A cycle seen during a simulation.
struct SimCycle {
    kind: CycleKind,
    start: Millis,
    end: Option<Millis>,
}

/// The simulated server around the real policy.
struct World<'a> {
    cfg: &'a PolicyConfig,
    model: &'a SimModel,
    state: State,
    now: Millis,
    wake: Option<Millis>,
    drain_done_at: Option<Millis>,
    /// (cycle id, when it ends)
    running: Option<(u64, Millis)>,
    cycles: BTreeMap<u64, SimCycle>,
    next_cycle: u64,
    refs_changed: bool,
    served: BTreeMap<u64, u64>,
    restarts: usize,
    overrides: usize,
    deferred: BTreeSet<u64>,
}

impl World<'_> {
    fn feed(&mut self, first: Event) {
        let mut queue = VecDeque::from([first]);
        while let Some(event) = queue.pop_front() {
            let (state, actions) = policy::step(&self.state, &event, self.now, self.cfg);
            self.state = state;
            self.wake = None;
            for action in actions {
                match action {
                    Action::Drain if self.model.drain.is_zero() => queue.push_back(Event::DrainDone),
                    Action::Drain => self.drain_done_at = Some(time::add(self.now, self.model.drain)),
                    Action::StartCycle {
                        kind,
                        triggers,
                        override_,
                    } => {
                        let id = self.next_cycle;
                        self.next_cycle += 1;
                        for t in triggers {
                            self.served.insert(t, id);
                        }
                        if kind == CycleKind::Full {
                            self.refs_changed = false;
                        }
                        self.overrides += usize::from(override_);
                        self.cycles.insert(
                            id,
                            SimCycle {
                                kind,
                                start: self.now,
                                end: None,
                            },
                        );
                        self.running = Some((id, time::add(self.now, self.model.cycle(kind))));
                        self.drain_done_at = None;
                        queue.push_back(Event::CycleStarted { cycle: id, kind });
                    }
                    Action::Restart { cycle, triggers, .. } => {
                        self.restarts += 1;
                        for t in triggers {
                            self.served.insert(t, cycle);
                        }
                        if let Some(c) = self.cycles.get(&cycle) {
                            self.running = Some((cycle, time::add(self.now, self.model.cycle(c.kind))));
                        }
                        self.drain_done_at = None;
                    }
                    Action::WakeAt(at) => self.wake = Some(at),
                    Action::PollRefs => queue.push_back(Event::PollResult {
                        changed: self.refs_changed,
                    }),
                    Action::Record(d) => {
                        if d.kind == DecisionKind::Deferred {
                            self.deferred.extend(d.triggers);
                        }
                    }
                }
            }
        }
    }
}

/// Replays `trace` in virtual time against the real policy with `cfg`, the
/// work taking the durations of `model`. The environment starts fresh (no
/// full cycle has run, so the first cycle is full); every trigger changes
/// the followed refs; the simulation runs until every trigger got full
/// feedback and nothing is pending.
pub fn simulate(trace: &[TraceEvent], cfg: &PolicyConfig, model: &SimModel) -> SimReport {
    let mut trace = trace.to_vec();
    trace.sort_by_key(|e| e.at);
    let label = "policy".to_string();
    let Some(first) = trace.first() else {
        return SimReport::empty(label, 0);
    };
    let mut w = World {
        cfg,
        model,
        state: State::new("staging"),
        now: first.at,
        wake: None,
        drain_done_at: None,
        running: None,
        cycles: BTreeMap::new(),
        next_cycle: 1,
        refs_changed: false,
        served: BTreeMap::new(),
        restarts: 0,
        overrides: 0,
        deferred: BTreeSet::new(),
    };
    let mut next = 0usize;
    // A bound far above any real trace, so a policy bug cannot hang the CLI.
    let limit = 100 * trace.len() + 1_000_000;
    for _ in 0..limit {
        let quiet = next == trace.len()
            && w.running.is_none()
            && w.state.phase == policy::Phase::Idle
            && !w.state.has_work()
            && !w.refs_changed;
        if quiet {
            break;
        }
        // Earliest of: a cycle ends, a drain ends, a trace event, a wake-up
        // (in that order when simultaneous).
        let candidates = [
            w.running.map(|(_, end)| (end, 0)),
            w.drain_done_at.map(|t| (t, 1)),
            trace.get(next).map(|e| (e.at, 2)),
            w.wake.map(|t| (t, 3)),
        ];
        let Some((at, which)) = candidates.into_iter().flatten().min() else {
            break;
        };
        w.now = w.now.max(at);
        match which {
            0 => {
                if let Some((id, _)) = w.running.take() {
                    if let Some(c) = w.cycles.get_mut(&id) {
                        c.end = Some(w.now);
                    }
                    w.feed(Event::CycleFinished {
                        cycle: id,
                        result: CycleResult::Passed,
                    });
                }
            }
            1 => {
                w.drain_done_at = None;
                w.feed(Event::DrainDone);
            }
            2 => {
                let e = &trace[next];
                next += 1;
                w.refs_changed = true;
                w.feed(e.to_event(next as u64));
            }
            _ => {
                w.wake = None;
                w.feed(Event::Tick);
            }
        }
    }

    let mut any = Vec::new();
    let mut full = Vec::new();
    let mut without_full = 0;
    let fulls: Vec<&SimCycle> = w.cycles.values().filter(|c| c.kind == CycleKind::Full).collect();
    for (i, e) in trace.iter().enumerate() {
        let id = i as u64 + 1;
        let served = w.served.get(&id).and_then(|c| w.cycles.get(c));
        if let Some(end) = served.and_then(|c| c.end) {
            any.push(end - e.at);
        }
        let full_end = match served {
            Some(c) if c.kind == CycleKind::Full => c.end,
            _ => fulls.iter().find(|c| c.start > e.at).and_then(|c| c.end),
        };
        match full_end {
            Some(end) => full.push(end - e.at),
            None => without_full += 1,
        }
    }
    SimReport {
        label,
        triggers: trace.len(),
        any_feedback: Stats::of(&any),
        full_feedback: Stats::of(&full),
        without_full_feedback: without_full,
        full_cycles: fulls.len(),
        partial_cycles: w.cycles.len() - fulls.len(),
        restarts: w.restarts,
        deferred: w.deferred.len(),
        overrides: w.overrides,
        busy_ms: w.cycles.values().filter_map(|c| c.end.map(|end| end - c.start)).sum(),
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The fixed-interval baseline: a full cycle starts at every multiple of
/// `interval` since the epoch (00:00, 08:00, 16:00 UTC for 8h), whatever
/// happened, or when the previous one ends if it overran; a trigger is served
/// by the first cycle starting at or after it. Cycles are counted from the
/// first one after the first trigger to the one serving the last, including
/// those that served nothing.
pub fn baseline_every(trace: &[TraceEvent], interval: Duration, model: &SimModel) -> SimReport {
    let iv = ms(interval).max(1);
    let label = format!("every {}", time::format_span(iv));
    let mut trace = trace.to_vec();
    trace.sort_by_key(|e| e.at);
    let mut report = SimReport::empty(label, trace.len());
    let Some(first) = trace.first() else {
        return report;
    };
    let duration = ms(model.drain + model.cycle(CycleKind::Full));
    let mut slot = first.at.div_euclid(iv) * iv;
    if slot < first.at {
        slot += iv;
    }
    let mut feedback = Vec::new();
    let mut free = Millis::MIN;
    let mut i = 0;
    while i < trace.len() {
        let start = slot.max(free);
        let end = start.saturating_add(duration);
        while i < trace.len() && trace[i].at <= start {
            feedback.push(end - trace[i].at);
            i += 1;
        }
        report.full_cycles += 1;
        report.busy_ms += duration;
        free = end;
        slot = (start.div_euclid(iv) + 1) * iv;
    }
    report.any_feedback = Stats::of(&feedback);
    report.full_feedback = report.any_feedback;
    report
}

/// The "deploy on every event" baseline: no settle, no cooldown, no
/// restarts; as soon as the environment is free and a trigger waits, a full
/// cycle starts and serves every trigger waiting at that moment.
pub fn baseline_every_event(trace: &[TraceEvent], model: &SimModel) -> SimReport {
    let mut trace = trace.to_vec();
    trace.sort_by_key(|e| e.at);
    let mut report = SimReport::empty("every event".to_string(), trace.len());
    let duration = ms(model.drain + model.cycle(CycleKind::Full));
    let mut feedback = Vec::new();
    let mut free = Millis::MIN;
    let mut i = 0;
    while i < trace.len() {
        let start = free.max(trace[i].at);
        let end = start.saturating_add(duration);
        while i < trace.len() && trace[i].at <= start {
            feedback.push(end - trace[i].at);
            i += 1;
        }
        report.full_cycles += 1;
        report.busy_ms += duration;
        free = end;
    }
    report.any_feedback = Stats::of(&feedback);
    report.full_feedback = report.any_feedback;
    report
}

/// Monday 2026-11-23 00:00 UTC: where generated traces start.
pub const GENERATED_TRACE_START: Millis = 1_795_392_000_000;

/// A tiny deterministic pseudo-random generator (xorshift64*).
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0; 0 gives 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// A deterministic pseudo-random trace of workday activity on `repos` over
/// `days` days from [`GENERATED_TRACE_START`] (weekends are quiet): per repo
/// and workday a few PR sessions between 08:00 and 18:00 UTC, each a PR
/// update with 0-2 quick fixups, sometimes a maintainer's `deploy` (8%) or
/// `trigger` (3%) comment, and in 40% of sessions a merge (a push to the main
/// branch) 30 minutes to 4 hours later. The same arguments give the same trace.
pub fn generate_trace(repos: &[&str], days: u32, seed: u64) -> Vec<TraceEvent> {
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    let mut rng = XorShift::new(seed);
    let mut out = Vec::new();
    let mut event = |at: i64, repo: &str, pr: Option<u64>, kind| {
        out.push(TraceEvent {
            at: at - at.rem_euclid(1000),
            repo: repo.to_string(),
            pr,
            kind,
        })
    };
    for day in 0..i64::from(days) {
        if day % 7 >= 5 {
            continue;
        }
        let day0 = GENERATED_TRACE_START + day * 24 * HOUR;
        for (r, repo) in repos.iter().enumerate() {
            // Some repositories are busier than others: 1 to 4 sessions a day on average.
            let mean = 1 + (r % 4) as u64;
            let sessions = rng.below(2 * mean + 1);
            for _ in 0..sessions {
                let pr = 100 + rng.below(900);
                let mut at = day0 + 8 * HOUR + rng.below(10 * HOUR as u64) as i64;
                event(at, repo, Some(pr), TriggerKind::PullRequest);
                for _ in 0..rng.below(3) {
                    at += MIN + rng.below(20 * MIN as u64) as i64;
                    event(at, repo, Some(pr), TriggerKind::PullRequest);
                }
                match rng.below(100) {
                    0..8 => event(
                        at + 2 * MIN + rng.below(28 * MIN as u64) as i64,
                        repo,
                        Some(pr),
                        TriggerKind::CommentDeploy,
                    ),
                    8..11 => event(
                        at + 2 * MIN + rng.below(28 * MIN as u64) as i64,
                        repo,
                        Some(pr),
                        TriggerKind::CommentTrigger,
                    ),
                    _ => {}
                }
                if rng.below(10) < 4 {
                    let merged = at + 30 * MIN + rng.below(210 * MIN as u64) as i64;
                    event(merged, repo, None, TriggerKind::Push);
                }
            }
        }
    }
    out.sort_by_key(|e| e.at);
    out
}

#[cfg(test)]
mod tests;
