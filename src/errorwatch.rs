//! The error watch (issue #6 point 4): errors the components logged while a
//! cycle deployed and tested them, compared with the previous healthy
//! cycle's, by `engine::verify_stage`.
//!
//! The window: [`open`] is called as the verify stage starts. With the
//! process driver, a component this cycle (re)started has a log of its own
//! (`logs/INSTANCE/COMPONENT/cycle-N.log`), read from its start, so the
//! window covers its deploy and the tests; a component kept running is read
//! from the size its log had when the verify stage started (the tests
//! only). With the command driver, a component's `logs` command is run
//! after the tests with `GREENROOM_LOGS_SINCE` (RFC 3339) and
//! `GREENROOM_LOGS_SINCE_UNIX` set to the cycle's start; its output (kept,
//! redacted, in `cycles/N/errorwatch/COMPONENT.log`) is the window. A
//! component without either is not watched.
//!
//! [`check`] scans each window (`core::errorwatch`), keeps every
//! signature seen in `cycles/N/errors.json` ([`Seen`], written atomically
//! for every cycle whose watch ran, failing or not), and compares with the
//! file of the newest earlier cycle on the instance that succeeded (the
//! previous healthy cycle; none: every error is new). At most the last
//! 16 MiB of a window are read. Beside the signatures the file keeps, per
//! component, each signature's count in this cycle, its first line
//! (redacted again with the environment's secrets, cut to 500
//! characters), whether it was new, and the known lines' total
//! ([`ComponentErrors`]); files from before have only the signatures and
//! still read ([`read_seen`]).

use crate::app::App;
use greenroom_core::config::{DriverKind, Environment, Instance};
use greenroom_core::errorwatch::{self, ErrorGroup, Patterns};
use greenroom_core::time::{self, Millis};
use greenroom_driver::{CommandSpec, Redactor, run_command};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The failure subject of a cycle failed by new errors (a culprit search
/// asks for it back in `suites_only`).
pub const SUBJECT: &str = "error-watch";

/// Most bytes of a window that are read.
const MAX_WINDOW: u64 = 16 * 1024 * 1024;
/// Longest a `logs` command may take.
const LOGS_TIMEOUT: Duration = Duration::from_secs(120);
/// Earlier cycles looked at for the previous healthy one.
const LOOK_BACK: i64 = 100;
/// Most new signatures reported per component.
const MAX_NEW: usize = 50;
/// Most signatures kept with their detail per component in `errors.json`.
const MAX_KEPT: usize = 200;
/// Longest first line kept in `errors.json` (characters, after redaction).
const MAX_KEPT_LINE: usize = 500;

/// What the error watch found in one component's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorWatchReport {
    /// The component.
    pub component: String,
    /// `deploy+tests` or `tests`: what the window covered.
    pub window: String,
    /// Errors whose signature the previous healthy cycle did not have, in
    /// order of first appearance, with their counts and first lines.
    #[serde(default)]
    pub new: Vec<ErrorGroup>,
    /// Error lines whose signature it had.
    pub known: u64,
    /// The previous healthy cycle compared with (none: every error is new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<i64>,
    /// Why the window could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ErrorWatchReport {
    /// `ogr: 2x ERROR ForeignKeyViolation …` lines, for the cycle's error.
    pub fn describe(&self) -> Vec<String> {
        self.new
            .iter()
            .map(|g| format!("{}: {}x {}", self.component, g.count, g.first_line))
            .collect()
    }
}

/// Where a component's window starts.
#[derive(Debug, Clone)]
enum Start {
    /// A process driver log, from this byte.
    File { path: PathBuf, offset: u64, whole: bool },
    /// The command driver: run the `logs` command.
    Command(String),
}

/// The windows of a cycle, opened as its verify stage starts.
#[derive(Debug, Clone, Default)]
pub struct Window {
    since: Millis,
    starts: BTreeMap<String, Start>,
}

/// What each cycle's `errors.json` keeps. `components` (every signature
/// seen, per component) is what a later cycle compares with; the rest is
/// the detail the dashboard shows, absent from files written before it was
/// kept (every field has a default, so both read).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The cycle.
    #[serde(default)]
    pub cycle: i64,
    /// Component -> every signature seen in its window.
    #[serde(default)]
    pub components: BTreeMap<String, Vec<String>>,
    /// The previous healthy cycle compared with (none: every error was new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<i64>,
    /// Component -> its errors with counts and first lines; `None` in files
    /// from before the detail was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<BTreeMap<String, ComponentErrors>>,
}

/// One component's errors in a cycle, as `errors.json` keeps them.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentErrors {
    /// `deploy+tests` or `tests`: what the window covered.
    #[serde(default)]
    pub window: String,
    /// Every signature (at most 200, in order of first appearance) with its
    /// count in this cycle and its first line.
    #[serde(default)]
    pub groups: Vec<SeenGroup>,
    /// Error lines whose signature the baseline had.
    #[serde(default)]
    pub known: u64,
    /// Signatures seen but not kept in `groups` (over the limit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more: u64,
    /// Why the window could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One signature of a component's window.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenGroup {
    /// The signature.
    pub signature: String,
    /// How many lines had it in this cycle.
    #[serde(default)]
    pub count: u64,
    /// The first of them (redacted, at most 500 characters).
    #[serde(default)]
    pub first_line: String,
    /// Whether the baseline lacked it.
    #[serde(default)]
    pub new: bool,
}

/// `CYCLE_DIR/errors.json`.
pub fn seen_path(cycle_dir: &Path) -> PathBuf {
    cycle_dir.join("errors.json")
}

fn seen_file(app: &App, cycle: i64) -> PathBuf {
    seen_path(&app.paths.cycle_dir(cycle))
}

/// Reads a cycle's `errors.json` (old or new format): `Ok(None)` when the
/// watch did not run (no file).
pub fn read_seen(path: &Path) -> Result<Option<Seen>, String> {
    crate::build::read_json_if_present(path)
}

/// A first line as kept: secrets redacted (again: the driver redacted the
/// log as it wrote it, but the window may be older than a secret's
/// rotation), then cut.
fn kept_line(line: &str, redactor: &Redactor) -> String {
    let clean = redactor.redact(line);
    match clean.char_indices().nth(MAX_KEPT_LINE) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean.into_owned(),
    }
}

/// The detail kept for one component: every group, marked new or not.
fn component_errors(
    window: &str,
    groups: &[ErrorGroup],
    before: Option<&BTreeSet<String>>,
    redactor: &Redactor,
) -> ComponentErrors {
    let cmp = errorwatch::compare(groups, before);
    let new: BTreeSet<&str> = cmp.new.iter().map(|g| g.signature.as_str()).collect();
    ComponentErrors {
        window: window.to_string(),
        groups: groups
            .iter()
            .take(MAX_KEPT)
            .map(|g| SeenGroup {
                signature: g.signature.clone(),
                count: g.count,
                first_line: kept_line(&g.first_line, redactor),
                new: new.contains(g.signature.as_str()),
            })
            .collect(),
        known: cmp.known,
        more: u64::try_from(groups.len().saturating_sub(MAX_KEPT)).unwrap_or(u64::MAX),
        error: None,
    }
}

/// Writes `errors.json` so that readers see the old file or the new, never half.
fn write_seen(file: &Path, seen: &Seen) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(seen)?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::build::write_atomically(file, &bytes)
}

/// Opens the windows of cycle `cycle` on `inst` (see the module doc).
pub async fn open(app: &App, env: &Environment, inst: &Instance, cycle: i64) -> Window {
    let since = match app.store.cycle(cycle).await {
        Ok(Some(c)) => c.started_at,
        _ => app.now(),
    };
    let mut starts = BTreeMap::new();
    let watched = |name: &str| app.config.component(name).filter(|c| !c.error_patterns.is_empty());
    match env.driver {
        DriverKind::Process => {
            let deployed = match app.store.deployed(&inst.name).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("error watch: cannot read what runs on {}: {e}", inst.name);
                    Vec::new()
                }
            };
            for d in deployed {
                if watched(&d.component).is_none() || !matches!(d.state.as_str(), "running" | "starting") {
                    continue;
                }
                let Some(path) = d.log_path.map(PathBuf::from) else {
                    continue;
                };
                let whole = d.cycle_id == cycle;
                let offset = if whole {
                    0
                } else {
                    std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
                };
                starts.insert(d.component.clone(), Start::File { path, offset, whole });
            }
        }
        DriverKind::Command => {
            for name in &env.components {
                if let Some(c) = watched(name)
                    && let Some(cmd) = &c.logs
                {
                    starts.insert(name.clone(), Start::Command(cmd.clone()));
                }
            }
        }
    }
    Window { since, starts }
}

/// Reads `path` from `offset` (at most the last [`MAX_WINDOW`] bytes).
fn read_from(path: &Path, offset: u64) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = offset.max(len.saturating_sub(MAX_WINDOW)).min(len);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(MAX_WINDOW).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Variables and secrets a `logs` command gets.
pub struct LogsVars<'a> {
    /// The environment's variables.
    pub values: &'a [(String, String)],
    /// Secret values, redacted from the output.
    pub secrets: &'a [String],
}

/// Reads every window, compares with the previous healthy cycle, keeps
/// this cycle's signatures; reports the components that logged errors (or
/// whose window could not be read).
pub async fn check(
    app: &App,
    inst: &Instance,
    cycle: i64,
    window: &Window,
    vars: &LogsVars<'_>,
) -> Vec<ErrorWatchReport> {
    if window.starts.is_empty() {
        return Vec::new();
    }
    let baseline = previous_healthy(app, inst, cycle).await;
    let redactor = Redactor::new(vars.secrets);
    let mut seen = Seen {
        cycle,
        components: BTreeMap::new(),
        baseline: baseline.as_ref().map(|b| b.cycle),
        detail: None,
    };
    let mut detail = BTreeMap::new();
    let mut out = Vec::new();
    for (name, start) in &window.starts {
        let Some(component) = app.config.component(name) else {
            continue;
        };
        let (text, label) = match start {
            Start::File { path, offset, whole } => {
                let (path, offset) = (path.clone(), *offset);
                let text = tokio::task::spawn_blocking(move || read_from(&path, offset))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                (text, if *whole { "deploy+tests" } else { "tests" })
            }
            Start::Command(cmd) => (
                run_logs(app, inst, cycle, name, cmd, window.since, vars).await,
                "deploy+tests",
            ),
        };
        let mut report = ErrorWatchReport {
            component: name.clone(),
            window: label.into(),
            new: Vec::new(),
            known: 0,
            baseline: baseline.as_ref().map(|b| b.cycle),
            error: None,
        };
        let unreadable = |report: ErrorWatchReport, e: String, detail: &mut BTreeMap<String, ComponentErrors>| {
            detail.insert(
                name.clone(),
                ComponentErrors {
                    window: label.into(),
                    error: Some(redactor.redact(&e).into_owned()),
                    ..ComponentErrors::default()
                },
            );
            ErrorWatchReport {
                error: Some(e),
                ..report
            }
        };
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                out.push(unreadable(report, e, &mut detail));
                continue;
            }
        };
        let patterns = match Patterns::new(&component.error_patterns) {
            Ok(p) => p,
            Err(e) => {
                out.push(unreadable(report, e.to_string(), &mut detail));
                continue;
            }
        };
        let groups = errorwatch::scan(&text, &patterns);
        seen.components
            .insert(name.clone(), groups.iter().map(|g| g.signature.clone()).collect());
        let before: Option<BTreeSet<String>> = baseline
            .as_ref()
            .and_then(|b| b.components.get(name))
            .map(|s| s.iter().cloned().collect());
        detail.insert(
            name.clone(),
            component_errors(label, &groups, before.as_ref(), &redactor),
        );
        let cmp = errorwatch::compare(&groups, before.as_ref());
        report.known = cmp.known;
        report.new = cmp.new;
        report.new.truncate(MAX_NEW);
        if !report.new.is_empty() || report.known > 0 {
            out.push(report);
        }
    }
    seen.detail = Some(detail);
    let file = seen_file(app, cycle);
    if let Err(e) = write_seen(&file, &seen) {
        tracing::warn!("error watch: cannot write {}: {e:#}", file.display());
    }
    out
}

/// The signatures of the newest earlier cycle on `inst` that succeeded and
/// kept them.
async fn previous_healthy(app: &App, inst: &Instance, cycle: i64) -> Option<Seen> {
    let cycles = app
        .store
        .cycles(Some(std::slice::from_ref(&inst.name)), LOOK_BACK)
        .await
        .ok()?;
    for c in cycles
        .iter()
        .filter(|c| c.id < cycle && c.kind == "deploy" && c.result == "succeeded")
    {
        match read_seen(&seen_file(app, c.id)) {
            Ok(Some(s)) => return Some(s),
            Ok(None) => {}
            Err(e) => tracing::warn!("error watch: {e}"),
        }
    }
    None
}

/// Runs a component's `logs` command; its output is the window.
async fn run_logs(
    app: &App,
    inst: &Instance,
    cycle: i64,
    component: &str,
    command: &str,
    since: Millis,
    vars: &LogsVars<'_>,
) -> Result<String, String> {
    let dir = app.paths.cycle_dir(cycle).join("errorwatch");
    let log = dir.join(format!("{component}.log"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // A fresh file: the window is this run's output only.
    let _ = std::fs::remove_file(&log);
    let mut env: Vec<(String, String)> = vars.values.to_vec();
    env.extend([
        ("GREENROOM_COMPONENT".to_string(), component.to_string()),
        ("GREENROOM_ENV".to_string(), inst.name.clone()),
        ("GREENROOM_CYCLE".to_string(), cycle.to_string()),
        ("GREENROOM_LOGS_SINCE".to_string(), time::format(since)),
        ("GREENROOM_LOGS_SINCE_UNIX".to_string(), (since / 1000).to_string()),
    ]);
    let spec = CommandSpec {
        command: command.to_string(),
        cwd: dir.clone(),
        env,
        secret_values: vars.secrets.to_vec(),
        log_path: log.clone(),
        timeout: LOGS_TIMEOUT,
    };
    let outcome = run_command(&spec)
        .await
        .map_err(|e| format!("`logs` could not run: {e}"))?;
    let text = read_from(&log, 0).unwrap_or_default();
    if !outcome.success {
        let how = match (outcome.timed_out, outcome.code) {
            (true, _) => format!("timed out after {}", humantime::format_duration(LOGS_TIMEOUT)),
            (false, Some(c)) => format!("exited with status {c}"),
            (false, None) => "was killed".to_string(),
        };
        return Err(format!("`logs` {how} (output in {})", log.display()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(sig: &str, count: u64, first: &str) -> ErrorGroup {
        ErrorGroup {
            signature: sig.into(),
            count,
            first_line: first.into(),
        }
    }

    #[test]
    fn old_errors_json_reads_without_detail() {
        let old: Seen =
            serde_json::from_str(r#"{"cycle": 7, "components": {"ogr": ["ERROR a <n>"]}}"#).expect("old format");
        assert_eq!(old.cycle, 7);
        assert_eq!(old.components["ogr"], vec!["ERROR a <n>".to_string()]);
        assert_eq!(old.baseline, None);
        assert_eq!(old.detail, None);
        // Even an empty object (or unknown fields) reads.
        let empty: Seen = serde_json::from_str(r#"{"future": 1}"#).expect("empty");
        assert!(empty.components.is_empty() && empty.detail.is_none());
    }

    #[test]
    fn new_errors_json_round_trips_and_old_readers_keep_their_field() {
        let r = Redactor::new(&["s3cret-value".to_string()]);
        let groups = vec![
            group("ERROR old", 4, "ERROR old"),
            group("ERROR token <x>", 2, "ERROR token s3cret-value leaked"),
        ];
        let before: BTreeSet<String> = ["ERROR old".to_string()].into();
        let c = component_errors("tests", &groups, Some(&before), &r);
        assert_eq!(c.known, 4);
        assert_eq!(c.groups.len(), 2);
        assert!(!c.groups[0].new && c.groups[1].new);
        assert_eq!(c.groups[1].count, 2);
        assert_eq!(c.groups[1].first_line, "ERROR token [redacted] leaked");
        let seen = Seen {
            cycle: 9,
            components: [("ogr".to_string(), groups.iter().map(|g| g.signature.clone()).collect())].into(),
            baseline: Some(7),
            detail: Some([("ogr".to_string(), c)].into()),
        };
        let text = serde_json::to_string_pretty(&seen).expect("encode");
        assert!(!text.contains("s3cret"), "{text}");
        let back: Seen = serde_json::from_str(&text).expect("decode");
        assert_eq!(back, seen);
        // What an older reader looks at is still there, in its old shape.
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["components"]["ogr"][1], "ERROR token <x>");
        // Written atomically and read back through the same path.
        let dir = tempfile::tempdir().expect("tmp");
        let file = seen_path(&dir.path().join("cycles/9"));
        write_seen(&file, &seen).expect("write");
        assert_eq!(read_seen(&file).expect("read"), Some(seen));
        assert_eq!(read_seen(&dir.path().join("nothing.json")).expect("absent"), None);
        std::fs::write(&file, "{not json").expect("write");
        assert!(read_seen(&file).is_err());
    }

    #[test]
    fn kept_lines_are_cut_and_groups_capped() {
        let r = Redactor::new(&[]);
        let long = "é".repeat(MAX_KEPT_LINE + 10);
        let kept = kept_line(&long, &r);
        assert_eq!(kept.chars().count(), MAX_KEPT_LINE + 1);
        assert!(kept.ends_with('…'));
        let many: Vec<ErrorGroup> = (0..MAX_KEPT + 3).map(|i| group(&format!("E{i}"), 1, "E")).collect();
        let c = component_errors("deploy+tests", &many, None, &r);
        assert_eq!(c.groups.len(), MAX_KEPT);
        assert_eq!(c.more, 3);
        assert!(c.groups.iter().all(|g| g.new), "no baseline: every error is new");
        assert_eq!(c.known, 0);
    }
}
