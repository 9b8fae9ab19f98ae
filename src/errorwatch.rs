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
//! signature seen in `cycles/N/errors.json`, and compares with the file of
//! the newest earlier cycle on the instance that succeeded (the previous
//! healthy cycle; none: every error is new). At most the last 16 MiB of a
//! window are read.

use crate::app::App;
use greenroom_core::config::{DriverKind, Environment, Instance};
use greenroom_core::errorwatch::{self, ErrorGroup, Patterns};
use greenroom_core::time::{self, Millis};
use greenroom_driver::{CommandSpec, run_command};
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

/// What each cycle's file keeps: every signature seen, per component.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Seen {
    cycle: i64,
    components: BTreeMap<String, Vec<String>>,
}

fn seen_file(app: &App, cycle: i64) -> PathBuf {
    app.paths.cycle_dir(cycle).join("errors.json")
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
    let mut seen = Seen {
        cycle,
        components: BTreeMap::new(),
    };
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
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                report.error = Some(e);
                out.push(report);
                continue;
            }
        };
        let patterns = match Patterns::new(&component.error_patterns) {
            Ok(p) => p,
            Err(e) => {
                report.error = Some(e.to_string());
                out.push(report);
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
        let cmp = errorwatch::compare(&groups, before.as_ref());
        report.known = cmp.known;
        report.new = cmp.new;
        report.new.truncate(MAX_NEW);
        if !report.new.is_empty() || report.known > 0 {
            out.push(report);
        }
    }
    let file = seen_file(app, cycle);
    let written = serde_json::to_vec_pretty(&seen)
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&file, bytes)
        });
    if let Err(e) = written {
        tracing::warn!("error watch: cannot write {}: {e}", file.display());
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
        let Ok(text) = std::fs::read_to_string(seen_file(app, c.id)) else {
            continue;
        };
        match serde_json::from_str::<Seen>(&text) {
            Ok(s) => return Some(s),
            Err(e) => tracing::warn!("error watch: {} is unreadable: {e}", seen_file(app, c.id).display()),
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
