//! The engine: runs a cycle (deploy or stop) on one environment instance,
//! stage by stage, recording each step as it goes.
//!
//! Order of a deploy: check the request (pure) -> resolve (mirrors) ->
//! take the lease -> record the cycle and manifest -> build (cache,
//! parallel) -> deploy in `depends_on` order (stop previous, clean run
//! directory, start, health) -> record what runs -> keep or release the
//! lease. Errors before the lease change nothing. Every stage and every
//! component checks the lease's fencing token first, so a cycle whose
//! lease was taken over stops instead of colliding. What runs is written
//! to the store after each component changes, so a crash never leaves it
//! half-recorded.

use crate::app::App;
use crate::build::{self, BuildJob, BuildOutcome};
use crate::error::input;
use crate::leasing::{self, Ask, Held};
use crate::progress::Reporter;
use crate::resolve::{self, Resolution, Vars};
use anyhow::Context;
use greenroom_core::compose::{self, Request, Selection};
use greenroom_core::config::{Component, DriverKind, Environment, Health, Instance, Stage, StageKind, Tier};
use greenroom_core::failure;
use greenroom_core::lease::Lease;
use greenroom_core::manifest::{Manifest, ManifestComponent};
use greenroom_core::plan;
use greenroom_core::template;
use greenroom_core::time::{self, Millis};
use greenroom_driver::{CommandSpec, HealthCheck, ProcState, ProcessDriver, ProcessHandle, StartSpec};
use greenroom_store::{CycleComponent, Deployed, NewCycle, StageRecord};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a component gets to stop after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// Lines of a log shown when something fails.
pub const LOG_TAIL_LINES: usize = 20;

/// A deploy as asked (`Default`: nothing composed, nothing set).
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    /// `--env` (an environment, a slot, or a pool).
    pub env: String,
    /// The composition.
    pub request: Request,
    /// The request as typed, for records.
    pub text: String,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--wait`.
    pub wait: bool,
    /// `--reason`.
    pub reason: Option<String>,
    /// `--release`: free the lease when the cycle ends.
    pub release_after: bool,
    /// Set to stop the cycle before its next step (the scheduler's restarts).
    pub cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Per component, the pull requests merged into the staging commit it
    /// runs (pending environments): recorded in the manifest for reports.
    pub merged: BTreeMap<String, Vec<String>>,
    /// A full cycle (every suite of the full cycles) rather than a partial one.
    pub full: bool,
    /// Run just these suites, whatever impact analysis says (culprit search
    /// runs re-run only the failing gate).
    pub suites_only: Option<Vec<String>>,
    /// This deploy is a rollback (`crate::rollback`): components go in
    /// rollback order and deploy commands are told.
    pub rollback: Option<RollbackOf>,
    /// Run the pipeline from this stage (`greenroom retry --from`): the
    /// stages before it are skipped, except the deploy.
    pub retry_from: Option<String>,
}

/// What a rollback replaces.
#[derive(Debug, Clone, Default)]
pub struct RollbackOf {
    /// The manifest running before the rollback (`GREENROOM_PREVIOUS_MANIFEST`).
    pub previous_manifest: Option<String>,
}

/// Lease as reported.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LeaseReport {
    /// Holder.
    pub holder: String,
    /// Why.
    pub reason: String,
    /// Since (RFC 3339).
    pub since: String,
    /// Until (RFC 3339).
    pub expires: String,
    /// Fencing token.
    pub token: i64,
    /// Pid of the holding process, when bound to one.
    pub pid: Option<i32>,
}

impl LeaseReport {
    /// From a lease.
    pub fn of(l: &Lease) -> LeaseReport {
        LeaseReport {
            holder: l.holder.clone(),
            reason: l.reason.clone(),
            since: time::format(l.since),
            expires: time::format(l.expires),
            token: l.token,
            pid: l.process.as_ref().map(|p| p.pid),
        }
    }
}

/// One component in a cycle report.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ComponentReport {
    /// Name.
    pub name: String,
    /// `deploy`, `keep` (already running that), or `carry` (not part of this cycle).
    pub action: String,
    /// How it was asked for.
    pub origin: String,
    /// Commit.
    pub commit: Option<String>,
    /// Ref it was resolved from.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// Pull request.
    pub pr: Option<u64>,
    /// Image reference.
    pub image: Option<String>,
    /// Artifact deployed.
    pub artifact: Option<String>,
    /// `built`, `cached`, `none`, `failed`, `pending`, `would-build`.
    pub build: String,
    /// `running`, `failed`, `not-reached`, `carried`, `planned`.
    pub outcome: String,
    /// Where people reach it.
    pub url: Option<String>,
    /// What ran before (short commit or image), if different.
    pub previous: Option<String>,
    /// Why this action (dry runs): what differs from what runs, and whether it is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// On a fleet (issue #5 point 2): what happened on each target, in
    /// rollout order, and what each runs now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetReport>,
}

/// One target of a fleet in a component's report.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TargetReport {
    /// Target name (`GREENROOM_TARGET`).
    pub target: String,
    /// Its wave: `blessed`, `canary`, `batch N`.
    pub wave: String,
    /// `running` (deployed now), `kept` (already ran it), `failed` (stopped),
    /// `not-reached` (the rollout halted before its wave: it runs what it ran),
    /// `cancelled`.
    pub outcome: String,
    /// The commit it runs after this cycle (none when nothing runs there).
    pub commit: Option<String>,
    /// The image it runs, for image components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The cycle that deployed what it runs (that cycle's manifest).
    pub cycle: Option<i64>,
    /// Wall time of its deploy (stop previous, start, health), ms.
    #[serde(default)]
    pub ms: u64,
    /// Of which waiting for the component itself (its shutdown, start-up
    /// and health; deploy commands on the command driver), ms.
    #[serde(default)]
    pub wait_ms: u64,
}

impl ComponentReport {
    /// A report for `entry`, before anything happened to it.
    fn new(name: &str, action: &str, entry: &ManifestComponent) -> ComponentReport {
        ComponentReport {
            name: name.to_string(),
            action: action.to_string(),
            origin: entry.origin.clone(),
            commit: entry.commit.clone(),
            reference: entry.reference.clone(),
            pr: entry.pr,
            image: entry.image.clone(),
            artifact: None,
            build: "none".into(),
            outcome: "pending".into(),
            url: None,
            previous: None,
            why: None,
            targets: Vec::new(),
        }
    }
}

/// Where the time went.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Timings {
    /// Wall time of the whole command.
    pub total_ms: u64,
    /// Resolution (mirrors, resolve commands).
    pub resolve_ms: u64,
    /// Build stage wall time.
    pub build_ms: u64,
    /// Deploy stage wall time.
    pub deploy_ms: u64,
    /// Time in user commands (builds that ran, resolve, deploy/stop commands).
    pub user_ms: u64,
    /// Time waiting for health checks (includes the components' start-up).
    pub health_ms: u64,
    /// Time waiting for previous versions to stop (their shutdown).
    pub stop_ms: u64,
    /// Orchestrator overhead: total minus user commands, health and stop waits.
    pub overhead_ms: u64,
    /// Peak resident memory of this greenroom process, in KiB.
    pub peak_rss_kib: u64,
}

/// Peak resident set size of this process (VmHWM), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The result of a deploy or stop, printed by the CLI.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CycleReport {
    /// Cycle number (none for a dry run).
    pub cycle: Option<i64>,
    /// `deploy` or `stop`.
    pub kind: String,
    /// Environment instance.
    pub environment: String,
    /// Manifest id.
    pub manifest: Option<String>,
    /// `succeeded`, `failed`, `fenced`, or `planned` (dry run).
    pub result: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Per component.
    pub components: Vec<ComponentReport>,
    /// Lease after the cycle.
    pub lease: Option<LeaseReport>,
    /// Timings.
    pub timings: Timings,
    /// The verify stage: every suite of the environment, run or skipped (and why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suites: Vec<crate::verify::SuiteReport>,
    /// Why it failed, classified: infrastructure or code (`core::failure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReport>,
    /// The verify stage's JUnit summary (every suite, the versions tested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit: Option<String>,
    /// What the automatic rollback did after this cycle (`auto_rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_rollback: Option<AutoRollback>,
    /// Metric gates evaluated after the deploy and after the tests, with
    /// their resolved queries and values (`gates`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<crate::gates::GateReport>,
    /// The error watch: components that logged errors during the cycle,
    /// new ones (vs the previous healthy cycle) with counts and first lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<crate::errorwatch::ErrorWatchReport>,
}

/// A cycle's first failure, classified (issue #4 point 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FailureReport {
    /// `infra` (retried, never blamed on a PR) or `code`.
    pub class: failure::Class,
    /// `build`, `deploy`, `health`, `verify`, or `cycle` (greenroom itself).
    pub stage: String,
    /// The component or suite that failed, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Why it is in that class.
    pub why: String,
}

impl FailureReport {
    fn of(stage: &str, subject: Option<&str>, observed: &failure::Observed<'_>) -> FailureReport {
        let (class, why) = failure::classify(observed);
        FailureReport {
            class,
            stage: stage.to_string(),
            subject: subject.map(String::from),
            why,
        }
    }
}

impl CycleReport {
    /// How the failure is classified, if it failed: a failure without a
    /// classification (greenroom itself) is infrastructure.
    pub fn failure_class(&self) -> Option<failure::Class> {
        match self.result.as_str() {
            "failed" => Some(self.failure.as_ref().map(|f| f.class).unwrap_or(failure::Class::Infra)),
            _ => None,
        }
    }

    /// Whether the command should exit 0.
    pub fn ok(&self) -> bool {
        matches!(self.result.as_str(), "succeeded" | "planned")
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The variables a component's commands and processes get.
pub struct ComponentVars<'a> {
    /// Instance.
    pub inst: &'a Instance,
    /// Component name.
    pub component: &'a str,
    /// Entry.
    pub entry: &'a ManifestComponent,
    /// Artifact.
    pub artifact: Option<&'a str>,
    /// Cycle.
    pub cycle: i64,
    /// Manifest id.
    pub manifest_id: &'a str,
    /// Manifest JSON file.
    pub manifest_file: &'a Path,
    /// Run directory.
    pub run_dir: &'a Path,
    /// Port, URL of every component of the instance.
    pub endpoints: &'a BTreeMap<String, (u16, Option<String>)>,
    /// Environment vars.
    pub vars: &'a Vars,
}

fn env_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl ComponentVars<'_> {
    /// As `NAME=value` pairs.
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self.vars.values.clone();
        let mut set = |k: &str, val: String| v.push((k.to_string(), val));
        set("GREENROOM_ENV", self.inst.name.clone());
        set("GREENROOM_ENVIRONMENT", self.inst.environment.clone());
        set(
            "GREENROOM_SLOT",
            self.inst.slot.map(|s| s.to_string()).unwrap_or_default(),
        );
        set("GREENROOM_COMPONENT", self.component.to_string());
        set("GREENROOM_COMMIT", self.entry.commit.clone().unwrap_or_default());
        set("GREENROOM_REF", self.entry.reference.clone().unwrap_or_default());
        set("GREENROOM_PR", self.entry.pr.map(|p| p.to_string()).unwrap_or_default());
        set("GREENROOM_IMAGE", self.entry.image.clone().unwrap_or_default());
        set("GREENROOM_ARTIFACT", self.artifact.unwrap_or_default().to_string());
        set("GREENROOM_CYCLE", self.cycle.to_string());
        set("GREENROOM_MANIFEST", self.manifest_file.display().to_string());
        set("GREENROOM_MANIFEST_ID", self.manifest_id.to_string());
        set("GREENROOM_RUN_DIR", self.run_dir.display().to_string());
        for (name, (port, url)) in self.endpoints {
            let k = env_key(name);
            if name == self.component {
                set("PORT", port.to_string());
                set("GREENROOM_PORT", port.to_string());
                set("GREENROOM_URL", url.clone().unwrap_or_default());
            }
            set(&format!("GREENROOM_PORT_{k}"), port.to_string());
            if let Some(u) = url {
                set(&format!("GREENROOM_URL_{k}"), u.clone());
            }
        }
        v
    }
}

/// Renders a `url`/`health` template for a component of an instance.
pub fn render_url(t: &str, inst: &Instance, component: &str, port: u16) -> String {
    let port = port.to_string();
    let slot = inst.slot.map(|s| s.to_string()).unwrap_or_default();
    template::render(
        t,
        &[
            ("port", &port),
            ("slot", &slot),
            ("environment", &inst.name),
            ("component", component),
            ("host", "127.0.0.1"),
        ],
    )
}

/// Ports for every component of an instance: the recorded ones, or newly
/// allocated free ones from `port_base` up.
pub async fn endpoints(
    app: &App,
    env: &Environment,
    inst: &Instance,
) -> anyhow::Result<BTreeMap<String, (u16, Option<String>)>> {
    endpoints_at(app, env, inst, &inst.name).await
}

/// Like [`endpoints`], for the place recorded under `key` (a fleet's
/// target, `core::fleet::target_key`): process-driver targets each have
/// their own ports; command-driver targets share the instance's. A
/// component that does not run on the target (a profile's `instances`
/// count, `Fleet::runs_on`) gets no port there: its endpoint is the
/// blessed target's copy (the instance's), which dependents reach.
async fn endpoints_at(
    app: &App,
    env: &Environment,
    inst: &Instance,
    key: &str,
) -> anyhow::Result<BTreeMap<String, (u16, Option<String>)>> {
    let key = if env.driver == DriverKind::Process {
        key
    } else {
        inst.name.as_str()
    };
    let target = greenroom_core::fleet::split_key(key).1;
    let mut out = BTreeMap::new();
    let mut used = app.store.ports_in_use().await?;
    for name in &env.components {
        let key = match (&env.fleet, target) {
            (Some(fleet), Some(t)) if !fleet.runs_on(name, t) => inst.name.as_str(),
            _ => key,
        };
        let port = match app.store.port(key, name).await? {
            Some(p) => p,
            None => {
                let mut candidate = app.config.port_base;
                loop {
                    if !used.contains(&candidate)
                        && std::net::TcpListener::bind(("127.0.0.1", candidate)).is_ok()
                        && app.store.set_port(key, name, candidate).await?
                    {
                        used.push(candidate);
                        break candidate;
                    }
                    candidate = candidate.checked_add(1).context("no free port left above port_base")?;
                }
            }
        };
        let url = app
            .config
            .component(name)
            .and_then(|c| c.url.as_ref())
            .map(|u| render_url(u, inst, name, port));
        out.insert(name.clone(), (port, url));
    }
    Ok(out)
}

/// The manifest JSON handed to deploy commands (`GREENROOM_MANIFEST`).
/// Versioned: `schema` is `greenroom.manifest/v1`. Variables are not in it.
#[derive(Serialize)]
struct ManifestFile<'a> {
    schema: &'static str,
    id: &'a str,
    environment: &'a str,
    slot: Option<u32>,
    cycle: i64,
    components: BTreeMap<&'a str, ManifestFileComponent<'a>>,
}

#[derive(Serialize)]
struct ManifestFileComponent<'a> {
    action: &'a str,
    origin: &'a str,
    commit: &'a Option<String>,
    #[serde(rename = "ref")]
    reference: &'a Option<String>,
    pr: Option<u64>,
    image: &'a Option<String>,
    artifact: Option<&'a str>,
    carried: bool,
    url: Option<&'a str>,
    port: Option<u16>,
}

fn tail(path: &Path) -> String {
    match greenroom_driver::log_tail(path, LOG_TAIL_LINES) {
        Ok(t) if !t.trim().is_empty() => format!("\nlast lines of {}:\n{}", path.display(), t.trim_end()),
        Ok(_) => format!("\n({} is empty)", path.display()),
        Err(e) => format!("\n(cannot read {}: {e})", path.display()),
    }
}

fn handle_of(d: &Deployed) -> Option<ProcessHandle> {
    Some(ProcessHandle {
        pid: d.pid?,
        start_time: d.pid_start?,
        log_path: PathBuf::from(d.log_path.as_ref()?),
        status_path: PathBuf::from(d.status_path.as_ref()?),
    })
}

/// The state of a recorded component, checked against /proc for the process driver.
pub fn live_state(driver: &ProcessDriver, d: &Deployed) -> String {
    match d.state.as_str() {
        "running" | "starting" => match handle_of(d) {
            Some(h) => match driver.state(&h) {
                ProcState::Running => d.state.clone(),
                ProcState::Exited { code: Some(c), .. } => format!("dead (exited with status {c})"),
                ProcState::Exited { signal: Some(s), .. } => format!("dead (killed by signal {s})"),
                _ => "dead".to_string(),
            },
            None => d.state.clone(),
        },
        other => other.to_string(),
    }
}

/// Records a new running cycle. The store refuses a second running cycle
/// on one instance (even under the same holder's lease); a running cycle
/// whose process died is reaped first. With `wait`, waits for the running
/// one to end.
async fn start_cycle(app: &App, new: &NewCycle<'_>, wait: bool) -> anyhow::Result<i64> {
    let mut delay = Duration::from_millis(50);
    let mut said = false;
    loop {
        match app.store.create_cycle(new).await {
            Ok(id) => return Ok(id),
            Err(greenroom_store::StoreError::CycleRunning(_)) => {
                if !app.reap_interrupted().await?.is_empty() {
                    continue;
                }
                let running = app.store.running_cycles().await?;
                let other = running.iter().find(|c| c.environment == new.environment);
                let what = match other {
                    Some(c) => format!(
                        "cycle {} ({} by {}, process {} on {}) is running on {} since {}",
                        c.id,
                        c.kind,
                        c.requested_by,
                        c.pid,
                        c.host,
                        c.environment,
                        time::format(c.started_at)
                    ),
                    None => format!("another cycle is running on {}", new.environment),
                };
                if !wait {
                    return Err(crate::error::UserError::Busy(format!("{what}; use --wait to run after it")).into());
                }
                if !said {
                    eprintln!("waiting: {what}");
                    said = true;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Per-cycle context shared by the stages.
struct Cycle<'a> {
    app: &'a App,
    reporter: &'a dyn Reporter,
    env: &'a Environment,
    inst: Instance,
    token: i64,
    id: i64,
    manifest: Manifest,
    manifest_file: PathBuf,
    vars: Vars,
    driver: ProcessDriver,
    user: Duration,
    health: Duration,
    stop: Duration,
    cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    kind: greenroom_core::policy::CycleKind,
    suites: Vec<crate::verify::SuiteReport>,
    suites_only: Option<Vec<String>>,
    /// Components impact analysis keeps running unrebuilt, with the reason.
    kept: BTreeMap<String, String>,
    /// The first failure, classified.
    failure: Option<FailureReport>,
    /// Set when the cycle is a rollback.
    rollback: Option<RollbackOf>,
    /// `greenroom retry --from`.
    retry_from: Option<String>,
    /// The cycle's JUnit summary, once the verify stage wrote it.
    junit: Option<String>,
    /// Metric gates evaluated by the verify stage.
    gates: Vec<crate::gates::GateReport>,
    /// What the error watch found.
    errors: Vec<crate::errorwatch::ErrorWatchReport>,
}

impl Cycle<'_> {
    /// Records the cycle's failure class; the first failure is the one that counts.
    fn failed(&mut self, stage: &str, subject: Option<&str>, observed: failure::Observed<'_>) {
        if self.failure.is_none() {
            self.failure = Some(FailureReport::of(stage, subject, &observed));
        }
    }

    /// Why the cycle must stop before its next step, if it must: its lease
    /// was taken over (`fenced`), or it was cancelled (`cancelled`).
    async fn halt(&self) -> anyhow::Result<Option<(&'static str, String)>> {
        if !self.app.store.holds(&self.inst.name, self.token).await? {
            let msg = format!(
                "the lease on {} was taken over (token {} is no longer current); this cycle stopped without touching anything more",
                self.inst.name, self.token
            );
            return Ok(Some(("fenced", msg)));
        }
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
        {
            return Ok(Some((
                "cancelled",
                "cancelled before its next step; what runs is recorded per component".into(),
            )));
        }
        // A cancel asked for from anywhere (CLI, API, another process) is in the store.
        if let Some(c) = self.app.store.cancel_requested(self.id).await? {
            return Ok(Some(("cancelled", cancel_message(&c))));
        }
        Ok(None)
    }

    /// Resolves with the reason once the cycle is asked to stop, checking the
    /// in-process flag and the store a few times a second. Raced against the
    /// long steps (builds, a component's start and health wait) so a cancel
    /// does not wait for them; the losing step's commands are killed when
    /// its future is dropped.
    fn stop_requested(&self) -> impl std::future::Future<Output = String> + use<> {
        let (store, id, flag) = (self.app.store.clone(), self.id, self.cancel.clone());
        async move {
            loop {
                if flag
                    .as_ref()
                    .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
                {
                    return "cancelled during its current step; what runs is recorded per component".to_string();
                }
                if let Ok(Some(c)) = store.cancel_requested(id).await {
                    return cancel_message(&c);
                }
                tokio::time::sleep(CANCEL_POLL).await;
            }
        }
    }
}

/// How often a long step checks for a cancel.
const CANCEL_POLL: Duration = Duration::from_millis(250);

fn cancel_message(c: &greenroom_store::CancelRequest) -> String {
    let why = if c.reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", c.reason)
    };
    format!(
        "cancelled by {}{why}; it stopped before finishing, what runs is recorded per component",
        c.by
    )
}

impl Cycle<'_> {
    async fn stage(
        &self,
        name: &str,
        component: Option<&str>,
        started: Millis,
        result: &str,
        detail: Option<String>,
    ) -> anyhow::Result<()> {
        self.app
            .store
            .add_stage(
                self.id,
                &StageRecord {
                    seq: 0,
                    name: name.into(),
                    component: component.map(String::from),
                    started_at: started,
                    finished_at: self.app.now(),
                    result: result.into(),
                    detail,
                },
            )
            .await?;
        Ok(())
    }
}

/// Runs a deploy: see the module documentation.
pub async fn deploy(app: &App, req: &DeployRequest, reporter: &dyn Reporter) -> anyhow::Result<CycleReport> {
    let t0 = Instant::now();
    let instances = app.config.lookup_instances(&req.env).map_err(input)?;
    let env = app
        .config
        .environment(&instances[0].environment)
        .with_context(|| format!("environment {} vanished from the config", instances[0].environment))?
        .clone();
    let selections = compose::select(&app.config, &env, &req.request)
        .map_err(|errs| input(errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")))?;
    // Secrets must be readable before anything is touched.
    resolve::vars_for(&env, &instances[0])?;
    // A person's deploy meets the deploy blockers (the schedule waits for
    // them in the scheduler; culprit-search runs are the search's own).
    if !req.dry_run && !is_scheduled(&req.text) && !req.text.starts_with("culprit search") {
        crate::blockers::refuse_if_blocked(app, &instances[0], &env).await?;
    }

    reporter.stage("resolve");
    let tr = Instant::now();
    let mut resolution = resolve::resolve(app, &env, &selections).await?;
    for r in &mut resolution.components {
        if let (Some(e), Some(prs)) = (r.entry.as_mut(), req.merged.get(&r.name))
            && !prs.is_empty()
        {
            e.merged = prs.clone();
            e.origin = "staging".into();
        }
    }
    let resolve_time = tr.elapsed();
    deploy_resolved(app, req, &env, &instances, &resolution, reporter, t0, resolve_time).await
}

/// Deploys recorded manifest entries as they are, without resolving
/// anything (a rollback: the refs may have moved or gone, the commits
/// stay). Carried entries keep what runs.
pub async fn deploy_entries(
    app: &App,
    req: &DeployRequest,
    entries: &BTreeMap<String, ManifestComponent>,
    reporter: &dyn Reporter,
) -> anyhow::Result<CycleReport> {
    let t0 = Instant::now();
    let instances = app.config.lookup_instances(&req.env).map_err(input)?;
    let env = app
        .config
        .environment(&instances[0].environment)
        .with_context(|| format!("environment {} vanished from the config", instances[0].environment))?
        .clone();
    resolve::vars_for(&env, &instances[0])?;
    // A retry meets the deploy blockers like any deploy; a rollback does
    // not (it is how a freeze's incident is fixed).
    if req.rollback.is_none() && !req.dry_run {
        crate::blockers::refuse_if_blocked(app, &instances[0], &env).await?;
    }
    let mut components = Vec::new();
    for name in &env.components {
        let r = match entries.get(name) {
            Some(e) if !e.carried && (e.commit.is_some() || e.image.is_some()) => {
                let selection = match (&e.commit, &e.image) {
                    (Some(c), _) => Selection::Git {
                        want: compose::GitWant::Commit(c.clone()),
                        origin: e.origin.clone(),
                    },
                    (None, Some(i)) => Selection::Image {
                        tag: i.clone(),
                        origin: e.origin.clone(),
                    },
                    (None, None) => Selection::Carry,
                };
                let mut entry = e.clone();
                entry.vars.clear();
                resolve::Resolved {
                    name: name.clone(),
                    selection,
                    entry: Some(entry),
                }
            }
            _ => resolve::Resolved {
                name: name.clone(),
                selection: Selection::Carry,
                entry: None,
            },
        };
        components.push(r);
    }
    let resolution = Resolution {
        components,
        user_time: Duration::ZERO,
    };
    deploy_resolved(app, req, &env, &instances, &resolution, reporter, t0, Duration::ZERO).await
}

#[allow(clippy::too_many_arguments)]
async fn deploy_resolved(
    app: &App,
    req: &DeployRequest,
    env: &Environment,
    instances: &[Instance],
    resolution: &Resolution,
    reporter: &dyn Reporter,
    t0: Instant,
    resolve_time: Duration,
) -> anyhow::Result<CycleReport> {
    for r in &resolution.components {
        if let Some(e) = &r.entry {
            reporter.finished(
                "resolve",
                &r.name,
                true,
                &format!("{} -> {}", e.origin, e.short()),
                Duration::ZERO,
            );
        }
    }

    if req.dry_run {
        return dry_run(app, env, instances, resolution, t0, resolve_time).await;
    }

    let reason = req.reason.clone().unwrap_or_else(|| format!("deploy {}", req.text));
    // An explicit deploy meeting a scheduled cycle: it restarts a partial
    // one (it counts as a trigger) and waits for a full one.
    let meets_schedule = if req.cancel.is_none() {
        yield_to_schedule(app, instances, reporter).await?
    } else {
        false
    };
    let held = leasing::acquire(
        app,
        &Ask {
            candidates: instances,
            queue_key: &req.env,
            reason: &reason,
            ttl: env.lease_ttl,
            bind_process: true,
            wait: req.wait || meets_schedule,
        },
    )
    .await?;
    let result = run_deploy(app, env, &held, resolution, req, reporter, t0, resolve_time).await;
    // Whatever happened, do not leave a process-bound lease behind.
    let lease = leasing::after_cycle(app, &held, env.lease_ttl, req.release_after).await;
    let mut report = result?;
    report.lease = lease?.as_ref().map(LeaseReport::of);
    let t = &mut report.timings;
    t.total_ms = ms(t0.elapsed());
    t.overhead_ms = t.total_ms.saturating_sub(t.user_ms + t.health_ms + t.stop_ms);
    t.peak_rss_kib = peak_rss_kib();
    report.auto_rollback = auto_rollback(app, env, req, &report, reporter).await;
    Ok(report)
}

/// What the automatic rollback did after a cycle (`auto_rollback = true`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct AutoRollback {
    /// The rollback's cycle, when it ran.
    pub cycle: Option<i64>,
    /// `succeeded`, `failed`, or `not-done`.
    pub result: String,
    /// What happened, or why it was not done.
    pub detail: String,
}

/// Issue #5 point 4's optional automatic rollback: a blocking verify failed
/// for the code, no irreversible stage ran, and the environment asks for it
/// (`auto_rollback = true`; not for pending environments, whose answer is
/// the culprit search). Goes through `rollback::rollback` like a person's
/// (continuous deployment locked, the manifest marked faulty).
async fn auto_rollback(
    app: &App,
    env: &Environment,
    req: &DeployRequest,
    report: &CycleReport,
    reporter: &dyn Reporter,
) -> Option<AutoRollback> {
    if !env.auto_rollback
        || req.dry_run
        || req.rollback.is_some()
        || req.suites_only.is_some()
        || env.follows == greenroom_core::config::Follows::Pending
    {
        return None;
    }
    let f = report.failure.as_ref()?;
    if f.stage != "verify" || f.class != failure::Class::Code {
        return None;
    }
    let cycle = report.cycle?;
    let irreversible = app
        .store
        .stages(cycle)
        .await
        .map(|s| s.iter().any(|s| s.name == IRREVERSIBLE && s.result == "ok"))
        .unwrap_or(true);
    if irreversible {
        return Some(AutoRollback {
            cycle: None,
            result: "not-done".into(),
            detail: "an irreversible stage ran in this cycle: roll forward instead".into(),
        });
    }
    reporter.note(&format!(
        "{}: blocking verify failed, rolling back (auto_rollback)",
        report.environment
    ));
    let why = format!(
        "automatic: {} in cycle {cycle}",
        f.subject
            .as_deref()
            .map(|s| format!("blocking suite `{s}` failed"))
            .unwrap_or_else(|| "a blocking check failed".into())
    );
    let rr = crate::rollback::RollbackRequest {
        env: report.environment.clone(),
        to: "previous".into(),
        reason: Some(why),
        dry_run: false,
        force: false,
    };
    Some(match Box::pin(crate::rollback::rollback(app, &rr, reporter)).await {
        Ok(r) => AutoRollback {
            cycle: r.cycle,
            result: r.result.clone(),
            detail: format!(
                "rolled back to {} (continuous deployment locked until resumed)",
                r.manifest
                    .as_deref()
                    .map(greenroom_core::manifest::short_id)
                    .unwrap_or("-")
            ),
        },
        Err(e) => AutoRollback {
            cycle: None,
            result: "not-done".into(),
            detail: format!("{e:#}"),
        },
    })
}

/// Whether a request is one the server scheduled.
pub fn is_scheduled(text: &str) -> bool {
    text.starts_with(SCHEDULED_PARTIAL) || text.starts_with(SCHEDULED_FULL)
}

/// The request text of cycles the server schedules, by kind.
pub const SCHEDULED_PARTIAL: &str = "scheduled partial cycle";
/// See [`SCHEDULED_PARTIAL`].
pub const SCHEDULED_FULL: &str = "scheduled full cycle";

/// Seed 002's rule for an explicit deploy (CLI, API) on an environment whose
/// scheduled cycle is running: a partial cycle is cancelled before its next
/// step (the deploy counts as a trigger: the restart rule), a full cycle is
/// never interrupted — the deploy waits for it. Either way the decision is
/// recorded with its reason, and the deploy then waits in the lease queue
/// (returns true) instead of failing as busy.
async fn yield_to_schedule(app: &App, instances: &[Instance], reporter: &dyn Reporter) -> anyhow::Result<bool> {
    let [inst] = instances else {
        return Ok(false);
    };
    let Some(running) = app
        .store
        .running_cycles()
        .await?
        .into_iter()
        .find(|c| c.environment == inst.name)
    else {
        return Ok(false);
    };
    let now = app.now();
    let (kind, reason) = if running.request.starts_with(SCHEDULED_PARTIAL) {
        let why = format!(
            "explicit deploy by {} restarts partial cycle {} (a deploy during a partial cycle counts as a trigger)",
            app.holder, running.id
        );
        app.store.request_cancel(running.id, &app.holder, &why, now).await?;
        ("restart", why)
    } else if running.request.starts_with(SCHEDULED_FULL) {
        (
            "queued",
            format!(
                "explicit deploy by {} waits for full cycle {}: a full cycle is never interrupted",
                app.holder, running.id
            ),
        )
    } else {
        // Someone's own deploy: the lease rules (busy, --wait) apply as usual.
        return Ok(false);
    };
    reporter.note(&reason);
    app.store
        .record_decision(&inst.name, now, kind, &reason, &[], Some(running.id))
        .await?;
    Ok(true)
}

async fn dry_run(
    app: &App,
    env: &Environment,
    instances: &[Instance],
    resolution: &Resolution,
    t0: Instant,
    resolve_time: Duration,
) -> anyhow::Result<CycleReport> {
    // Plan against the instance a deploy would most likely take: one the
    // holder has, else a free one, else the first.
    let mut chosen = &instances[0];
    for inst in instances {
        let (l, _) = app.store.lease(&inst.name).await?;
        match l {
            Some(l) if l.holder == app.holder => {
                chosen = inst;
                break;
            }
            None => {
                chosen = inst;
                break;
            }
            _ => {}
        }
    }
    let vars = resolve::vars_for(env, chosen)?;
    let running = app.store.deployed(&chosen.name).await?;
    let manifest = resolve::manifest_for(resolution, &vars, &running);
    let (manifest, kept) = crate::verify::keep_unaffected(app, env, manifest, &running).await;
    let paths = &app.paths;
    let mut components = Vec::new();
    for r in &resolution.components {
        let entry = &manifest.components[&r.name];
        let prev = running.iter().find(|d| d.component == r.name && d.state != "stopped");
        let running_what = prev.map(|p| format!("{} ({})", p.entry.short(), p.entry.origin));
        let (action, build, why) = match &r.selection {
            Selection::Carry => (
                "carry",
                "none".to_string(),
                match &running_what {
                    Some(w) => format!("excluded by --only/--skip: keeps running {w}"),
                    None => "excluded by --only/--skip: nothing runs there now".to_string(),
                },
            ),
            _ if prev.is_some_and(|p| p.entry.same_content(entry) && p.state == "running") => (
                "keep",
                "none".to_string(),
                kept.get(&r.name)
                    .cloned()
                    .unwrap_or_else(|| "already runs exactly this: left alone".to_string()),
            ),
            _ => {
                let (b, build_why) = match &entry.commit {
                    Some(c) => {
                        let cfg = app.config.component(&r.name);
                        let e = build::entry(
                            &paths.builds(),
                            &paths.logs(),
                            &r.name,
                            c,
                            cfg.and_then(|c| c.build.as_deref()),
                        );
                        if build::cached(&e).is_some() {
                            ("cached", "built before: reused")
                        } else {
                            ("would-build", "never built at this commit with this build command")
                        }
                    }
                    None => ("none", "prebuilt image: nothing to build"),
                };
                let replace = match (prev, &running_what) {
                    (Some(p), Some(w)) if p.entry.commit == entry.commit && p.entry.image == entry.image => {
                        format!("replaces {w}: same code, other commands or variables")
                    }
                    (Some(p), Some(w)) if p.state != "running" => format!("replaces {w} ({})", p.state),
                    (Some(_), Some(w)) => format!("replaces {w}"),
                    _ => "not running yet".to_string(),
                };
                ("deploy", b.to_string(), format!("{replace}; {build_why}"))
            }
        };
        components.push(ComponentReport {
            build,
            outcome: "planned".into(),
            previous: prev.filter(|p| !p.entry.same_content(entry)).map(|p| p.entry.short()),
            why: Some(why),
            ..ComponentReport::new(&r.name, action, entry)
        });
    }
    let lease = app.store.lease(&chosen.name).await?.0;
    Ok(CycleReport {
        cycle: None,
        kind: "deploy".into(),
        environment: chosen.name.clone(),
        manifest: Some(manifest.id.clone()),
        result: "planned".into(),
        error: None,
        components,
        lease: lease.as_ref().map(LeaseReport::of),
        timings: Timings {
            total_ms: ms(t0.elapsed()),
            resolve_ms: ms(resolve_time),
            ..Timings::default()
        },
        suites: Vec::new(),
        failure: None,
        junit: None,
        gates: Vec::new(),
        errors: Vec::new(),
        auto_rollback: None,
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_deploy(
    app: &App,
    env: &Environment,
    held: &Held,
    resolution: &Resolution,
    req: &DeployRequest,
    reporter: &dyn Reporter,
    t0: Instant,
    resolve_time: Duration,
) -> anyhow::Result<CycleReport> {
    let inst = held.instance.clone();
    let vars = resolve::vars_for(env, &inst)?;
    let running = app.store.deployed(&inst.name).await?;
    let manifest = resolve::manifest_for(resolution, &vars, &running);
    let (manifest, kept) = crate::verify::keep_unaffected(app, env, manifest, &running).await;
    let now = app.now();
    // A manifest rolled back as faulty is never deployed again by the
    // schedule; a person may still deploy it explicitly.
    if is_scheduled(&req.text)
        && let Some(f) = app.store.faulty(&manifest.id, &inst.name).await?
    {
        let why = format!(
            "manifest {} was rolled back on {} as faulty by {} ({}); the schedule does not deploy it again — deploy it explicitly to override",
            manifest.short_id(),
            inst.name,
            f.marked_by,
            f.reason
        );
        app.store
            .record_decision(&inst.name, now, "faulty", &why, &[], None)
            .await?;
        return Ok(CycleReport {
            cycle: None,
            kind: "deploy".into(),
            environment: inst.name.clone(),
            manifest: Some(manifest.id.clone()),
            result: "refused".into(),
            error: Some(why),
            components: Vec::new(),
            lease: None,
            timings: Timings::default(),
            suites: Vec::new(),
            failure: None,
            junit: None,
            gates: Vec::new(),
            errors: Vec::new(),
            auto_rollback: None,
        });
    }
    app.store.put_manifest(&manifest, now).await?;
    let id = start_cycle(
        app,
        &NewCycle {
            environment: &inst.name,
            kind: "deploy",
            manifest: Some(&manifest.id),
            request: &req.text,
            requested_by: &app.holder,
            started_at: now,
            process: &app.process,
            lease_token: held.lease.token,
        },
        req.wait,
    )
    .await?;
    crate::audit::record(
        app,
        if req.rollback.is_some() { "rollback" } else { "deploy" },
        &inst.name,
        &format!("cycle {id}: {} -> manifest {}", req.text, manifest.short_id()),
        req.reason.as_deref().unwrap_or(""),
        Some(id),
    )
    .await;
    reporter.note(&format!(
        "cycle {id} on {}: manifest {} (lease token {})",
        inst.name,
        manifest.short_id(),
        held.lease.token
    ));
    app.store
        .add_stage(
            id,
            &StageRecord {
                seq: 0,
                name: "resolve".into(),
                component: None,
                started_at: now - i64::try_from(resolve_time.as_millis()).unwrap_or(0),
                finished_at: now,
                result: "ok".into(),
                detail: None,
            },
        )
        .await?;
    let manifest_file = app.paths.cycle_dir(id).join("manifest.json");
    let mut cx = Cycle {
        app,
        reporter,
        env,
        inst,
        token: held.lease.token,
        id,
        manifest,
        manifest_file,
        vars,
        driver: ProcessDriver::new(app.supervisor.clone()),
        user: resolution.user_time,
        health: Duration::ZERO,
        stop: Duration::ZERO,
        cancel: req.cancel.clone(),
        kind: if req.full {
            greenroom_core::policy::CycleKind::Full
        } else {
            greenroom_core::policy::CycleKind::Partial
        },
        suites: Vec::new(),
        suites_only: req.suites_only.clone(),
        kept,
        failure: None,
        rollback: req.rollback.clone(),
        retry_from: req.retry_from.clone(),
        junit: None,
        gates: Vec::new(),
        errors: Vec::new(),
    };
    let outcome = cycle_stages(&mut cx, resolution, &running).await;
    let (result, error, components, build_ms, deploy_ms) = match outcome {
        Ok(o) => o,
        Err(e) => {
            let msg = format!("{e:#}");
            app.store.finish_cycle(id, "failed", Some(&msg), app.now()).await?;
            return Err(e);
        }
    };
    app.store.finish_cycle(id, &result, error.as_deref(), app.now()).await?;
    let result_failed = result == "failed";
    Ok(CycleReport {
        cycle: Some(id),
        kind: "deploy".into(),
        environment: cx.inst.name.clone(),
        manifest: Some(cx.manifest.id.clone()),
        result,
        error,
        components,
        lease: None,
        timings: Timings {
            total_ms: ms(t0.elapsed()),
            resolve_ms: ms(resolve_time),
            build_ms,
            deploy_ms,
            user_ms: ms(cx.user),
            health_ms: ms(cx.health),
            stop_ms: ms(cx.stop),
            overhead_ms: 0,
            peak_rss_kib: 0,
        },
        suites: std::mem::take(&mut cx.suites),
        failure: if result_failed { cx.failure.take() } else { None },
        junit: cx.junit.take(),
        gates: std::mem::take(&mut cx.gates),
        errors: std::mem::take(&mut cx.errors),
        auto_rollback: None,
    })
}

type StagesOutcome = (String, Option<String>, Vec<ComponentReport>, u64, u64);

async fn cycle_stages(
    cx: &mut Cycle<'_>,
    resolution: &Resolution,
    running: &[Deployed],
) -> anyhow::Result<StagesOutcome> {
    let app = cx.app;
    let endpoints = endpoints(app, cx.env, &cx.inst).await?;
    // Decide per component: deploy, keep (already runs exactly that), carry.
    let mut reports: BTreeMap<String, ComponentReport> = BTreeMap::new();
    let mut records: BTreeMap<String, CycleComponent> = BTreeMap::new();
    for r in &resolution.components {
        let entry = cx.manifest.components[&r.name].clone();
        let prev = running.iter().find(|d| d.component == r.name && d.state != "stopped");
        let alive = prev.is_some_and(|p| !live_state(&cx.driver, p).starts_with("dead"));
        let action = match &r.selection {
            Selection::Carry => "carry",
            _ if prev.is_some_and(|p| p.entry.same_content(&entry) && p.state == "running") && alive => "keep",
            _ => "deploy",
        };
        let outcome = match action {
            "carry" => "carried",
            "keep" => "running",
            _ => "pending",
        };
        let artifact = if action == "deploy" {
            entry.image.clone()
        } else {
            prev.and_then(|p| p.artifact.clone())
        };
        reports.insert(
            r.name.clone(),
            ComponentReport {
                artifact: artifact.clone(),
                build: if action == "deploy" && entry.commit.is_some() {
                    "pending".into()
                } else {
                    "none".into()
                },
                outcome: outcome.into(),
                url: endpoints.get(&r.name).and_then(|(_, u)| u.clone()),
                previous: prev.filter(|p| !p.entry.same_content(&entry)).map(|p| p.entry.short()),
                why: cx.kept.get(&r.name).cloned(),
                ..ComponentReport::new(&r.name, action, &entry)
            },
        );
        let rec = CycleComponent {
            component: r.name.clone(),
            action: action.into(),
            entry,
            artifact,
            build: if action == "deploy" {
                "pending".into()
            } else {
                "none".into()
            },
            build_log: None,
            run_log: None,
            outcome: outcome.into(),
        };
        app.store.set_cycle_component(cx.id, &rec).await?;
        records.insert(r.name.clone(), rec);
    }
    write_manifest_file(cx, &records, &endpoints)?;
    // Every skipped rebuild is listed with its reason (issue #4 point 3).
    for (name, why) in &cx.kept {
        cx.stage("impact", Some(name), cx.app.now(), "not-rebuilt", Some(why.clone()))
            .await?;
    }

    // Build.
    if let Some((result, msg)) = cx.halt().await? {
        return halted(cx, reports, result, msg).await;
    }
    let tb = Instant::now();
    let stop = cx.stop_requested();
    let build = tokio::select! {
        r = build_stage(cx, &mut reports, &mut records) => Ok(r),
        why = stop => Err(why),
    };
    let build_failure = match build {
        Ok(r) => r?,
        Err(why) => {
            for r in reports.values_mut().filter(|r| r.build == "pending") {
                r.build = "cancelled".into();
            }
            return halted(cx, reports, "cancelled", why).await;
        }
    };
    let build_ms = ms(tb.elapsed());
    if let Some(err) = build_failure {
        return Ok(("failed".into(), Some(err), in_order(cx, reports), build_ms, 0));
    }
    // Again, now with the built artifacts, for the deploy commands to read.
    write_manifest_file(cx, &records, &endpoints)?;

    // The pipeline (issue #5 point 1): the environment's stages in order,
    // by default deploy then verify.
    let pipeline = cx.env.pipeline();
    let mut deploy_ms = 0;
    let from = cx.retry_from.clone();
    let mut reached = from.is_none();
    for stage in &pipeline {
        if !reached && from.as_deref() == Some(stage.name.as_str()) {
            reached = true;
        }
        // A retry from a later stage skips the earlier ones, except the
        // deploy (with the same manifest it changes nothing, and it makes
        // sure everything runs).
        if !reached && stage.kind != StageKind::Deploy {
            cx.stage(
                &stage.name,
                None,
                app.now(),
                "skipped",
                Some(format!("retry from `{}`", from.as_deref().unwrap_or(""))),
            )
            .await?;
            continue;
        }
        if let Some((result, msg)) = cx.halt().await? {
            return halted(cx, reports, result, msg).await;
        }
        if stage.approval
            && let Err(why) = wait_for_approval(cx, stage).await?
        {
            return halted(cx, reports, "cancelled", why).await;
        }
        // Before a point of no return, the deploy blockers are asked again.
        if stage.irreversible
            && let Err(why) = wait_for_blockers(cx, stage).await?
        {
            return halted(cx, reports, "cancelled", why).await;
        }
        match stage.kind {
            StageKind::Deploy => {
                cx.reporter.stage("deploy");
                let td = Instant::now();
                let outcome = deploy_all(cx, &records, &mut reports, running, &endpoints).await?;
                deploy_ms = ms(td.elapsed());
                let now = app.now();
                match outcome {
                    DeployOutcome::All => {
                        app.store
                            .set_environment_manifest(&cx.inst.name, Some(&cx.manifest.id), cx.id, now)
                            .await?;
                    }
                    DeployOutcome::Failed(e) => {
                        app.store
                            .set_environment_manifest(&cx.inst.name, None, cx.id, now)
                            .await?;
                        return Ok(("failed".into(), Some(e), in_order(cx, reports), build_ms, deploy_ms));
                    }
                    DeployOutcome::Halted(result, msg) => return halted(cx, reports, result, msg).await,
                }
            }
            StageKind::Verify => {
                let stop = cx.stop_requested();
                let verified = tokio::select! {
                    v = verify_stage(cx, running, &endpoints) => Ok(v),
                    why = stop => Err(why),
                };
                match verified {
                    Ok(v) => {
                        if let Some(failure) = v? {
                            return Ok((
                                "failed".into(),
                                Some(failure),
                                in_order(cx, reports),
                                build_ms,
                                deploy_ms,
                            ));
                        }
                    }
                    Err(why) => {
                        return Ok((
                            "cancelled".into(),
                            Some(why),
                            in_order(cx, reports),
                            build_ms,
                            deploy_ms,
                        ));
                    }
                }
            }
            _ => match run_stage(cx, stage, &endpoints).await? {
                Ok(()) => {}
                Err((result, msg)) => {
                    return Ok((result.into(), Some(msg), in_order(cx, reports), build_ms, deploy_ms));
                }
            },
        }
        if stage.irreversible {
            cx.stage(
                IRREVERSIBLE,
                None,
                app.now(),
                "ok",
                Some(format!(
                    "stage `{}` ran: manifests deployed before cycle {} can no longer be restored by a rollback",
                    stage.name, cx.id
                )),
            )
            .await?;
        }
    }
    Ok(("succeeded".into(), None, in_order(cx, reports), build_ms, deploy_ms))
}

/// The stage record that marks a cycle past an irreversible stage.
pub const IRREVERSIBLE: &str = "irreversible";

/// How the deploy stage went.
enum DeployOutcome {
    /// Every component runs what it should.
    All,
    /// A component failed (the message says which and why).
    Failed(String),
    /// Fenced or cancelled.
    Halted(&'static str, String),
}

/// Targets that left the fleet (a smaller `instances`, a host removed from
/// `targets`, no fleet any more) stop what they ran, so nothing keeps
/// running that no target is responsible for.
async fn retire_dropped_targets(cx: &Cycle<'_>) -> anyhow::Result<()> {
    let app = cx.app;
    let prefix = format!("{}#", cx.inst.name);
    for place in app.store.deployed_places(&prefix).await? {
        let (_, target) = greenroom_core::fleet::split_key(&place);
        let kept = target.is_some_and(|t| cx.env.fleet.as_ref().is_some_and(|f| f.target(t).is_some()));
        if kept {
            continue;
        }
        for d in app.store.deployed(&place).await? {
            if d.state == "stopped" {
                continue;
            }
            let mut user = Duration::ZERO;
            stop_deployed(app, cx.env, &cx.driver, &d, &mut user)
                .await
                .with_context(|| {
                    format!(
                        "cannot stop {} on {place}, a target no longer in the fleet",
                        d.component
                    )
                })?;
            cx.reporter.note(&format!(
                "stopped {} on {place}: the target is no longer in the fleet",
                d.component
            ));
        }
        // Gone: its ports are free for others, and later deploys skip it.
        app.store.forget_place(&place).await?;
    }
    Ok(())
}

/// The deploy stage: every component whose action is `deploy`, in
/// dependency order (rollback order for a rollback); the first failure
/// stops it, the rest are recorded as not reached.
async fn deploy_all(
    cx: &mut Cycle<'_>,
    records: &BTreeMap<String, CycleComponent>,
    reports: &mut BTreeMap<String, ComponentReport>,
    running: &[Deployed],
    endpoints: &BTreeMap<String, (u16, Option<String>)>,
) -> anyhow::Result<DeployOutcome> {
    let app = cx.app;
    let order = match &cx.rollback {
        Some(_) => plan::rollback_order(&app.config, cx.env),
        None => plan::deploy_order(&app.config, cx.env),
    };
    retire_dropped_targets(cx).await?;
    if let Some(fleet) = &cx.env.fleet {
        return deploy_fleet(cx, fleet, &order, records, reports, endpoints).await;
    }
    let mut failure = None;
    for name in &order {
        let Some(rec) = records.get(name).cloned() else {
            continue;
        };
        if rec.action != "deploy" {
            continue;
        }
        if failure.is_some() {
            let mut rec = rec;
            rec.outcome = "not-reached".into();
            app.store.set_cycle_component(cx.id, &rec).await?;
            if let Some(r) = reports.get_mut(name) {
                r.outcome = "not-reached".into();
            }
            continue;
        }
        if let Some((result, msg)) = cx.halt().await? {
            return Ok(DeployOutcome::Halted(result, msg));
        }
        let component = app
            .config
            .component(name)
            .with_context(|| format!("component {name} vanished from the config"))?;
        let prev = running.iter().find(|d| &d.component == name && d.state != "stopped");
        let stop = cx.stop_requested();
        let mut tally = Tally::default();
        let key = cx.inst.name.clone();
        let result = tokio::select! {
            r = deploy_component(cx, &key, &mut tally, component, &rec, prev, endpoints) => Ok(r),
            why = stop => Err(why),
        };
        cx.absorb(tally);
        let (outcome, err) = match result {
            Ok(Ok(())) => ("running", None),
            Ok(Err(e)) => {
                cx.failed("deploy", Some(name), failure::Observed::CouldNotRun);
                ("failed", Some(format!("{e:#}")))
            }
            Err(why) => {
                // Started (perhaps) but not seen healthy: say so, and stop here.
                let mut rec = rec;
                rec.outcome = "cancelled".into();
                rec.run_log = Some(log_path(cx, name).display().to_string());
                app.store.set_cycle_component(cx.id, &rec).await?;
                if let Some(r) = reports.get_mut(name) {
                    r.outcome = "cancelled".into();
                }
                return Ok(DeployOutcome::Halted("cancelled", why));
            }
        };
        let mut rec = rec;
        rec.outcome = outcome.into();
        rec.run_log = Some(log_path(cx, name).display().to_string());
        app.store.set_cycle_component(cx.id, &rec).await?;
        if let Some(r) = reports.get_mut(name) {
            r.outcome = outcome.into();
        }
        if let Some(e) = err {
            failure = Some(e);
        }
    }
    Ok(match failure {
        None => DeployOutcome::All,
        Some(e) => DeployOutcome::Failed(e),
    })
}

/// Time and the first failure of one place's deploy steps, merged into the
/// cycle afterwards (`Cycle::absorb`): the targets of a wave deploy
/// concurrently, so none of them holds the cycle mutably.
#[derive(Default)]
struct Tally {
    user: Duration,
    health: Duration,
    stop: Duration,
    failure: Option<FailureReport>,
}

impl Tally {
    /// Like `Cycle::failed`: the first failure is the one that counts.
    fn failed(&mut self, stage: &str, subject: Option<&str>, observed: failure::Observed<'_>) {
        if self.failure.is_none() {
            self.failure = Some(FailureReport::of(stage, subject, &observed));
        }
    }
}

impl Cycle<'_> {
    /// Adds a place's time to the cycle's; its failure counts if none did before.
    fn absorb(&mut self, t: Tally) {
        self.user += t.user;
        self.health += t.health;
        self.stop += t.stop;
        if self.failure.is_none() {
            self.failure = t.failure;
        }
    }
}

/// The fleet target recorded under `key` (the blessed target is the
/// instance itself), if the environment has a fleet.
fn target_of<'e>(env: &'e Environment, key: &str) -> Option<&'e greenroom_core::fleet::Target> {
    let fleet = env.fleet.as_ref()?;
    let name = greenroom_core::fleet::split_key(key)
        .1
        .unwrap_or(fleet.blessed.as_str());
    fleet.target(name)
}

/// What a fleet target's commands and processes are told (values only as
/// environment variables): `GREENROOM_TARGET`, `GREENROOM_TARGET_ADDRESS`,
/// `GREENROOM_TARGET_WAVE`. Nothing outside a fleet.
fn target_vars(env: &Environment, key: &str) -> Vec<(String, String)> {
    let (Some(fleet), Some(t)) = (&env.fleet, target_of(env, key)) else {
        return Vec::new();
    };
    vec![
        ("GREENROOM_TARGET".into(), t.name.clone()),
        ("GREENROOM_TARGET_ADDRESS".into(), t.address.clone()),
        (
            "GREENROOM_TARGET_WAVE".into(),
            fleet.wave_of(&t.name).unwrap_or_default(),
        ),
    ]
}

/// A stage record's detail, saying which target it is about on a fleet.
fn on(target: Option<&greenroom_core::fleet::Target>, detail: &str) -> String {
    match target {
        Some(t) => format!("on {}: {detail}", t.name),
        None => detail.to_string(),
    }
}

/// One target's part of a wave.
struct TargetRun {
    /// Per rolled component, in order: `running`, `kept`, `failed` or
    /// `not-reached` (after the target's own failure), and the error.
    outcomes: Vec<(String, &'static str, Option<String>)>,
    tally: Tally,
    ms: u64,
}

/// Deploys the rolled components on one target in order (those that run
/// on it), leaving those it already runs (a retried rollout continues
/// where it halted); stops at the target's first failure. Components that
/// no longer run on it (`Fleet::runs_on`) are stopped first.
async fn deploy_target(
    cx: &Cycle<'_>,
    key: &str,
    rolled: &[&CycleComponent],
    running: &[Deployed],
    endpoints: &BTreeMap<String, (u16, Option<String>)>,
) -> TargetRun {
    let t0 = Instant::now();
    let mut run = TargetRun {
        outcomes: Vec::new(),
        tally: Tally::default(),
        ms: 0,
    };
    let mut failed = false;
    // Whether what runs here changes (a component comes or goes): then the
    // others restart too, since where they reach their dependencies (here
    // or on the blessed target) may have changed.
    let mut placement_changed = rolled.iter().any(|r| {
        !running
            .iter()
            .any(|d| d.component == r.component && d.state != "stopped")
    }) && running.iter().any(|d| d.state != "stopped");
    // What no longer runs here (a profile's `instances` count went down)
    // stops first, so no copy outside the counts keeps serving.
    if let (Some(fleet), Some(t)) = (&cx.env.fleet, target_of(cx.env, key)) {
        for d in running
            .iter()
            .filter(|d| d.state != "stopped" && !fleet.runs_on(&d.component, &t.name))
        {
            placement_changed = true;
            cx.reporter.note(&format!(
                "{} no longer runs on {} (profile instances): stopping it",
                d.component, t.name
            ));
            let mut user = Duration::ZERO;
            let r = stop_deployed(cx.app, cx.env, &cx.driver, d, &mut user).await;
            run.tally.user += user;
            if let Err(e) = r {
                run.tally
                    .failed("deploy", Some(&d.component), failure::Observed::CouldNotRun);
                run.outcomes.push((
                    d.component.clone(),
                    "failed",
                    Some(format!("cannot stop it where it no longer runs: {e:#}")),
                ));
                failed = true;
            }
        }
    }
    for rec in rolled {
        let name = rec.component.as_str();
        if failed {
            run.outcomes.push((name.into(), "not-reached", None));
            continue;
        }
        let prev = running.iter().find(|d| d.component == name && d.state != "stopped");
        if !placement_changed
            && prev.is_some_and(|p| {
                p.state == "running"
                    && p.entry.same_content(&rec.entry)
                    && !live_state(&cx.driver, p).starts_with("dead")
            })
        {
            run.outcomes.push((name.into(), "kept", None));
            continue;
        }
        let result = match cx.app.config.component(name) {
            Some(component) => deploy_component(cx, key, &mut run.tally, component, rec, prev, endpoints).await,
            None => Err(anyhow::anyhow!("component {name} vanished from the config")),
        };
        match result {
            Ok(()) => run.outcomes.push((name.into(), "running", None)),
            Err(e) => {
                run.tally.failed("deploy", Some(name), failure::Observed::CouldNotRun);
                run.outcomes.push((name.into(), "failed", Some(format!("{e:#}"))));
                failed = true;
            }
        }
    }
    run.ms = ms(t0.elapsed());
    run
}

/// The deploy stage on a fleet (issue #5 point 2): wave by wave
/// (`core::fleet::plan`: blessed, canaries, batches), the targets of a wave
/// concurrently, each target's components in order. A failure lets its
/// wave finish, then halts the rollout: later waves are never started and
/// keep what they ran. Every component's report says, per target, what
/// happened and what it runs now; each target's state is recorded under
/// its key (`core::fleet::target_key`) as it changes. A target deploys,
/// and reports, only the components that run on it (a profile's
/// `instances`, `Fleet::runs_on`); the others it reaches on the blessed
/// target (`endpoints_at`).
async fn deploy_fleet(
    cx: &mut Cycle<'_>,
    fleet: &greenroom_core::fleet::Fleet,
    order: &[String],
    records: &BTreeMap<String, CycleComponent>,
    reports: &mut BTreeMap<String, ComponentReport>,
    endpoints: &BTreeMap<String, (u16, Option<String>)>,
) -> anyhow::Result<DeployOutcome> {
    let app = cx.app;
    // A kept component may still lag on targets a halted rollout never
    // reached: those get it now (the artifact is the one that runs).
    let rolled: Vec<&CycleComponent> = order
        .iter()
        .filter_map(|n| records.get(n))
        .filter(|r| r.action == "deploy" || r.action == "keep")
        .collect();
    let mut per: BTreeMap<String, Vec<TargetReport>> = BTreeMap::new();
    let mut failure: Option<String> = None;
    let mut halted: Option<(&'static str, String)> = None;
    // Per target, in rollout order: how it went, for the summary.
    let mut summary: Vec<(String, &'static str)> = Vec::new();
    for wave in greenroom_core::fleet::plan(fleet) {
        let label = wave.label();
        if failure.is_none()
            && halted.is_none()
            && let Some(h) = cx.halt().await?
        {
            halted = Some(h);
        }
        if failure.is_some() || halted.is_some() {
            // Never started: these targets keep what they ran.
            for t in &wave.targets {
                let was = app.store.deployed(&fleet.key(&cx.inst.name, t)).await?;
                for rec in rolled.iter().filter(|r| fleet.runs_on(&r.component, t)) {
                    let d = was
                        .iter()
                        .find(|d| d.component == rec.component && d.state != "stopped");
                    per.entry(rec.component.clone()).or_default().push(TargetReport {
                        target: t.clone(),
                        wave: label.clone(),
                        outcome: "not-reached".into(),
                        commit: d.and_then(|d| d.entry.commit.clone()),
                        image: d.and_then(|d| d.entry.image.clone()),
                        cycle: d.map(|d| d.cycle_id),
                        ms: 0,
                        wait_ms: 0,
                    });
                }
                summary.push((t.clone(), "not-reached"));
            }
            continue;
        }
        let started = app.now();
        cx.reporter
            .note(&format!("rollout, {label}: {}", wave.targets.join(", ")));
        let mut jobs = Vec::new();
        for t in &wave.targets {
            let key = fleet.key(&cx.inst.name, t);
            let running = app.store.deployed(&key).await?;
            let eps = if key == cx.inst.name {
                endpoints.clone()
            } else {
                endpoints_at(app, cx.env, &cx.inst, &key).await?
            };
            // Only what runs there (a profile's per-component `instances`).
            let mine: Vec<&CycleComponent> = rolled
                .iter()
                .filter(|r| fleet.runs_on(&r.component, t))
                .copied()
                .collect();
            jobs.push((t.clone(), key, running, eps, mine));
        }
        let stop = cx.stop_requested();
        let ran = {
            let shared: &Cycle<'_> = cx;
            let all = futures_util::future::join_all(
                jobs.iter()
                    .map(|(_, key, running, eps, mine)| deploy_target(shared, key, mine, running, eps)),
            );
            tokio::select! {
                r = all => Ok(r),
                why = stop => Err(why),
            }
        };
        let runs = match ran {
            Ok(runs) => runs,
            Err(why) => {
                // Started (perhaps) but not seen healthy.
                for (t, _, _, _, mine) in &jobs {
                    for rec in mine {
                        per.entry(rec.component.clone()).or_default().push(TargetReport {
                            target: t.clone(),
                            wave: label.clone(),
                            outcome: "cancelled".into(),
                            commit: None,
                            image: None,
                            cycle: None,
                            ms: 0,
                            wait_ms: 0,
                        });
                    }
                    summary.push((t.clone(), "cancelled"));
                }
                halted = Some(("cancelled", why));
                continue;
            }
        };
        let mut errors = Vec::new();
        for ((t, _, running, _, _), run) in jobs.iter().zip(runs) {
            let wait_ms = ms(run.tally.health + run.tally.stop + run.tally.user);
            let target_ms = run.ms;
            cx.absorb(run.tally);
            let mut worst = "running";
            for (name, outcome, err) in run.outcomes {
                let prev = running.iter().find(|d| d.component == name && d.state != "stopped");
                let entry = records.get(&name).map(|r| &r.entry);
                let (commit, image, cycle) = match outcome {
                    "running" => (
                        entry.and_then(|e| e.commit.clone()),
                        entry.and_then(|e| e.image.clone()),
                        Some(cx.id),
                    ),
                    "failed" => (None, None, None),
                    _ => (
                        prev.and_then(|d| d.entry.commit.clone()),
                        prev.and_then(|d| d.entry.image.clone()),
                        prev.map(|d| d.cycle_id),
                    ),
                };
                if outcome == "failed" || (outcome == "not-reached" && worst != "failed") {
                    worst = outcome;
                }
                per.entry(name).or_default().push(TargetReport {
                    target: t.clone(),
                    wave: label.clone(),
                    outcome: outcome.into(),
                    commit,
                    image,
                    cycle,
                    ms: target_ms,
                    wait_ms,
                });
                if let Some(e) = err {
                    errors.push(format!("target {t}: {e}"));
                }
            }
            summary.push((t.clone(), worst));
        }
        let result = if errors.is_empty() { "ok" } else { "failed" };
        cx.stage(
            "deploy",
            None,
            started,
            result,
            Some(format!("rollout, {label}: {}", wave.targets.join(", "))),
        )
        .await?;
        if !errors.is_empty() {
            failure = Some(format!("the rollout halted at {label}: {}", errors.join("\n")));
        }
    }
    for rec in &rolled {
        let targets = per.remove(&rec.component).unwrap_or_default();
        let has = |o: &str| targets.iter().any(|t| t.outcome == o);
        let outcome = if has("failed") {
            "failed"
        } else if has("cancelled") {
            "cancelled"
        } else if targets.iter().all(|t| t.outcome == "not-reached") {
            "not-reached"
        } else if has("not-reached") {
            "partial"
        } else {
            "running"
        };
        let mut rec = (*rec).clone();
        rec.outcome = outcome.into();
        rec.run_log = Some(log_path(cx, &rec.component).display().to_string());
        app.store.set_cycle_component(cx.id, &rec).await?;
        if let Some(r) = reports.get_mut(&rec.component) {
            r.outcome = outcome.into();
            r.targets = targets;
        }
    }
    if let Some((result, msg)) = halted {
        return Ok(DeployOutcome::Halted(result, msg));
    }
    Ok(match failure {
        None => DeployOutcome::All,
        Some(e) => {
            let list = |want: &[&str]| {
                let v: Vec<&str> = summary
                    .iter()
                    .filter(|(_, o)| want.contains(o))
                    .map(|(t, _)| t.as_str())
                    .collect();
                if v.is_empty() { "none".to_string() } else { v.join(", ") }
            };
            DeployOutcome::Failed(format!(
                "{e}\nrunning manifest {}: {}; failed (stopped): {}; not reached (still run what they ran): {}",
                cx.manifest.short_id(),
                list(&["running"]),
                list(&["failed"]),
                list(&["not-reached"])
            ))
        }
    })
}

/// Waits until a person approves `stage` of this cycle (`greenroom approve
/// CYCLE --stage NAME`, or the API); `Err` with the reason when the cycle
/// is cancelled or fenced meanwhile. The wait and the approval are recorded.
async fn wait_for_approval(cx: &mut Cycle<'_>, stage: &Stage) -> anyhow::Result<Result<(), String>> {
    let app = cx.app;
    let started = app.now();
    let waiting = format!(
        "waiting for approval: greenroom approve {} --stage {}",
        cx.id, stage.name
    );
    cx.reporter.started(&stage.name, "", &waiting);
    cx.stage(
        &format!("approval:{}", stage.name),
        None,
        started,
        "waiting",
        Some(waiting.clone()),
    )
    .await?;
    app.store
        .record_decision(
            &cx.inst.name,
            started,
            "approval",
            &format!("cycle {}: {waiting}", cx.id),
            &[],
            Some(cx.id),
        )
        .await?;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(a) = app.store.approval(cx.id, &stage.name).await? {
            let detail = if a.reason.is_empty() {
                format!("approved by {}", a.approved_by)
            } else {
                format!("approved by {}: {}", a.approved_by, a.reason)
            };
            cx.reporter.finished(&stage.name, "", true, &detail, Duration::ZERO);
            cx.stage(
                &format!("approval:{}", stage.name),
                None,
                started,
                "approved",
                Some(detail),
            )
            .await?;
            return Ok(Ok(()));
        }
        if let Some((_, msg)) = cx.halt().await? {
            return Ok(Err(msg));
        }
        if let Ok(Some(c)) = app.store.cancel_requested(cx.id).await {
            return Ok(Err(cancel_message(&c)));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Waits while a deploy blocker holds before an irreversible stage (the
/// wait is recorded); `Err` with the reason when the cycle is cancelled
/// or fenced meanwhile.
async fn wait_for_blockers(cx: &mut Cycle<'_>, stage: &Stage) -> anyhow::Result<Result<(), String>> {
    let app = cx.app;
    let started = app.now();
    let mut said: Option<String> = None;
    loop {
        let why = match crate::blockers::check(app, &cx.inst, cx.env).await? {
            None => break,
            Some(why) => why,
        };
        if said.as_deref() != Some(why.as_str()) {
            cx.reporter.note(&format!("stage {} waits: {why}", stage.name));
            cx.stage(
                &format!("blocked:{}", stage.name),
                None,
                started,
                "waiting",
                Some(why.clone()),
            )
            .await?;
            said = Some(why);
        }
        if let Some((_, msg)) = cx.halt().await? {
            return Ok(Err(msg));
        }
        if let Ok(Some(c)) = app.store.cancel_requested(cx.id).await {
            return Ok(Err(cancel_message(&c)));
        }
        tokio::time::sleep(crate::blockers::POLL).await;
    }
    if said.is_some() {
        cx.stage(&format!("blocked:{}", stage.name), None, started, "lifted", None)
            .await?;
    }
    Ok(Ok(()))
}

/// Runs a command stage with its retries, timeout and backoff, racing a
/// cancel; `Err((result, message))` when it failed or was cancelled.
async fn run_stage(
    cx: &mut Cycle<'_>,
    stage: &Stage,
    endpoints: &BTreeMap<String, (u16, Option<String>)>,
) -> anyhow::Result<Result<(), (&'static str, String)>> {
    let app = cx.app;
    let started = app.now();
    cx.reporter.stage(&stage.name);
    let log = app
        .paths
        .logs()
        .join(&cx.inst.name)
        .join("stages")
        .join(&stage.name)
        .join(format!("cycle-{}.log", cx.id));
    let mut env: Vec<(String, String)> = cx.vars.values.clone();
    env.extend([
        ("GREENROOM_ENV".to_string(), cx.inst.name.clone()),
        ("GREENROOM_ENVIRONMENT".to_string(), cx.inst.environment.clone()),
        ("GREENROOM_TARGET".to_string(), cx.inst.name.clone()),
        ("GREENROOM_CYCLE".to_string(), cx.id.to_string()),
        ("GREENROOM_STAGE".to_string(), stage.name.clone()),
        ("GREENROOM_STAGE_KIND".to_string(), stage.kind.as_str().to_string()),
        ("GREENROOM_MANIFEST".to_string(), cx.manifest_file.display().to_string()),
        ("GREENROOM_MANIFEST_ID".to_string(), cx.manifest.id.clone()),
    ]);
    if let Some(r) = &cx.rollback {
        env.push(("GREENROOM_ROLLBACK".into(), "1".into()));
        env.push((
            "GREENROOM_PREVIOUS_MANIFEST".into(),
            r.previous_manifest.clone().unwrap_or_default(),
        ));
    }
    for (name, (port, url)) in endpoints {
        let k = env_key(name);
        env.push((format!("GREENROOM_PORT_{k}"), port.to_string()));
        env.push((format!("GREENROOM_URL_{k}"), url.clone().unwrap_or_default()));
    }
    let spec = CommandSpec {
        command: stage.run.clone().unwrap_or_default(),
        cwd: app.paths.cycle_dir(cx.id),
        env,
        secret_values: cx.vars.secrets.clone(),
        log_path: log.clone(),
        timeout: stage.timeout,
    };
    if let Err(e) = std::fs::create_dir_all(&spec.cwd) {
        anyhow::bail!("cannot create {}: {e}", spec.cwd.display());
    }
    let mut observed = failure::Observed::CouldNotRun;
    let mut why = String::new();
    let t = Instant::now();
    for attempt in 1..=stage.attempts {
        let ta = Instant::now();
        cx.reporter.started(
            &stage.name,
            "",
            &format!("{} (attempt {attempt} of {})", stage.kind, stage.attempts),
        );
        let stop = cx.stop_requested();
        let out = tokio::select! {
            r = greenroom_driver::run_command(&spec) => r,
            why = stop => return Ok(Err(("cancelled", why))),
        };
        cx.user += ta.elapsed();
        match out {
            Ok(o) if o.success => {
                let detail = if attempt == 1 {
                    format!("{} passed", stage.kind)
                } else {
                    format!("{} passed on attempt {attempt}", stage.kind)
                };
                cx.reporter.finished(&stage.name, "", true, &detail, t.elapsed());
                cx.stage(&stage.name, None, started, "ok", Some(detail)).await?;
                return Ok(Ok(()));
            }
            Ok(o) => {
                observed = failure::Observed::DeployCommand(failure::Exit {
                    code: o.code,
                    timed_out: o.timed_out,
                });
                why = if o.timed_out {
                    format!("timed out after {}", humantime::format_duration(stage.timeout))
                } else {
                    format!(
                        "exit status {}",
                        o.code.map(|c| c.to_string()).unwrap_or_else(|| "by signal".into())
                    )
                };
            }
            Err(e) => {
                observed = failure::Observed::CouldNotRun;
                why = format!("could not run: {e}");
            }
        }
        if attempt < stage.attempts {
            let wait = stage.backoff.saturating_mul(1 << (attempt - 1).min(10));
            cx.reporter.note(&format!(
                "stage {} failed ({why}); attempt {} in {}",
                stage.name,
                attempt + 1,
                humantime::format_duration(wait)
            ));
            let stop = cx.stop_requested();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                why = stop => return Ok(Err(("cancelled", why))),
            }
        }
    }
    cx.failed(&stage.name, None, observed);
    let detail = format!("{why} after {} attempt(s)", stage.attempts);
    cx.reporter.finished(&stage.name, "", false, &detail, t.elapsed());
    cx.stage(&stage.name, None, started, "failed", Some(detail.clone()))
        .await?;
    Ok(Err((
        "failed",
        format!("stage `{}` ({}) failed: {detail}{}", stage.name, stage.kind, tail(&log)),
    )))
}

/// Runs the environment's suites that this cycle selects (see `verify`);
/// returns the blocking failure, if any.
async fn verify_stage(
    cx: &mut Cycle<'_>,
    running: &[Deployed],
    endpoints: &BTreeMap<String, (u16, Option<String>)>,
) -> anyhow::Result<Option<String>> {
    let app = cx.app;
    // The error watch's window opens now; `when = "deploy"` gates are
    // evaluated before the suites (issue #6 points 4-5). A culprit search
    // reproduces the failing gate only (`suites_only`).
    let watch = match &cx.suites_only {
        Some(only) if !only.iter().any(|n| n == crate::errorwatch::SUBJECT) => None,
        _ => Some(crate::errorwatch::open(app, cx.env, &cx.inst, cx.id).await),
    };
    let gate_cx = crate::gates::GateContext {
        inst: &cx.inst,
        cycle: cx.id,
        manifest: &cx.manifest.id,
    };
    let deploy_gates = crate::gates::evaluate(
        app,
        cx.env,
        &gate_cx,
        greenroom_core::gate::When::Deploy,
        cx.suites_only.as_deref(),
    )
    .await;
    let mut suites = crate::verify::suites_of(app, cx.env);
    if let Some(only) = &cx.suites_only {
        suites.retain(|s| only.contains(&s.name));
    }
    if suites.is_empty() {
        return after_tests(cx, watch, deploy_gates, &[], &suites, None).await;
    }
    cx.reporter.stage("verify");
    let changes = crate::verify::changes(app, cx.env, running, &cx.manifest.components).await;
    let impact = crate::verify::select(app, cx.env, &changes, cx.kind)?;
    let ctx = crate::verify::SuiteContext {
        instance: &cx.inst.name,
        cycle: cx.id,
        kind: cx.kind,
        manifest_id: &cx.manifest.id,
        manifest_file: &cx.manifest_file,
        dir: app.paths.cycle_dir(cx.id),
        logs: app.paths.logs().join(&cx.inst.name).join("suites"),
        vars: &cx.vars.values,
        secrets: &cx.vars.secrets,
        urls: endpoints
            .iter()
            .filter_map(|(c, (_, u))| u.clone().map(|u| (c.clone(), u)))
            .collect(),
        versions: cx
            .manifest
            .components
            .iter()
            .map(|(c, e)| {
                let v = match (&e.commit, &e.image) {
                    (Some(c), _) => format!("commit {c}"),
                    (None, Some(i)) => format!("image {i}"),
                    (None, None) => "not running".to_string(),
                };
                (c.clone(), v)
            })
            .collect(),
    };
    let mut reports = Vec::new();
    for suite in &suites {
        let started = app.now();
        let asked = cx
            .suites_only
            .is_some()
            .then(|| "asked for by the culprit search".to_string());
        let selected = impact
            .suites
            .iter()
            .find(|s| s.name == suite.name)
            .map(|s| s.reasons.join("; "));
        let report = if let Some(why) = asked.or(selected) {
            cx.reporter.started("verify", &suite.name, "running");
            let r = crate::verify::run_suite(suite, &ctx, &why).await;
            cx.reporter.finished(
                "verify",
                &suite.name,
                r.result != "failed",
                &r.result,
                Duration::from_millis(r.duration_ms),
            );
            r
        } else {
            let reason = impact
                .skipped_suites
                .iter()
                .find(|s| s.name == suite.name)
                .map(|s| s.reason.clone())
                .unwrap_or_else(|| "not selected".into());
            crate::verify::SuiteReport {
                name: suite.name.clone(),
                tier: suite.tier.as_str().into(),
                result: "skipped".into(),
                reason,
                duration_ms: 0,
                log: None,
                class: None,
                junit: None,
                tests: 0,
                failed_tests: 0,
            }
        };
        cx.stage(
            &format!("verify:{}", suite.name),
            None,
            started,
            &report.result,
            Some(report.reason.clone()),
        )
        .await?;
        reports.push(report);
    }
    cx.junit = crate::verify::write_cycle_junit(&ctx, &reports);
    let failure = crate::verify::blocking_failure(&reports, &suites);
    if failure.is_some()
        && cx.failure.is_none()
        && let Some(r) = reports
            .iter()
            .find(|r| r.result == "failed" && suites.iter().any(|s| s.name == r.name && s.tier == Tier::Blocking))
    {
        let class = r.class.unwrap_or(failure::Class::Code);
        cx.failure = Some(FailureReport {
            class,
            stage: "verify".into(),
            subject: Some(r.name.clone()),
            why: match class {
                failure::Class::Infra => format!("blocking suite `{}` could not test (exit status 75)", r.name),
                failure::Class::Code => format!("blocking suite `{}` failed", r.name),
            },
        });
    }
    let failure = after_tests(cx, watch, deploy_gates, &reports, &suites, failure).await?;
    cx.suites = reports;
    Ok(failure)
}

/// The end of the verify stage: `when = "tests"` gates and the error watch
/// (issue #6 points 4-5), kept in the cycle's report. A blocking gate that
/// did not pass, or new errors where `new_errors = "blocking"` (the
/// environment, or a suite that ran), fail the cycle; the first failure
/// keeps its class (a gate that could not ask Prometheus is infrastructure).
async fn after_tests(
    cx: &mut Cycle<'_>,
    watch: Option<crate::errorwatch::Window>,
    mut gates: Vec<crate::gates::GateReport>,
    ran: &[crate::verify::SuiteReport],
    suites: &[&greenroom_core::config::Suite],
    failure: Option<String>,
) -> anyhow::Result<Option<String>> {
    use greenroom_core::config::NewErrors;
    let app = cx.app;
    let started = app.now();
    let gate_cx = crate::gates::GateContext {
        inst: &cx.inst,
        cycle: cx.id,
        manifest: &cx.manifest.id,
    };
    gates.extend(
        crate::gates::evaluate(
            app,
            cx.env,
            &gate_cx,
            greenroom_core::gate::When::Tests,
            cx.suites_only.as_deref(),
        )
        .await,
    );
    let errors = match &watch {
        Some(w) => {
            let vars = crate::errorwatch::LogsVars {
                values: &cx.vars.values,
                secrets: &cx.vars.secrets,
            };
            crate::errorwatch::check(app, &cx.inst, cx.id, w, &vars).await
        }
        None => Vec::new(),
    };
    let mut problems = Vec::new();
    for g in &gates {
        let took = Duration::from_millis(g.duration_ms);
        let what = format!("gate {}", g.name);
        cx.reporter
            .finished("verify", &what, g.result == "passed", &g.result, took);
        cx.stage(
            &format!("gate:{}", g.name),
            g.component.as_deref(),
            started,
            &g.result,
            Some(g.reason.clone()),
        )
        .await?;
        if g.blocks() {
            problems.push(g.describe());
            if cx.failure.is_none() {
                cx.failure = Some(FailureReport {
                    class: g.class(),
                    stage: "verify".into(),
                    subject: Some(g.name.clone()),
                    why: g.describe(),
                });
            }
        }
    }
    let new: Vec<String> = errors.iter().flat_map(|e| e.describe()).collect();
    if !new.is_empty() {
        let blocking = cx.env.new_errors == NewErrors::Blocking
            || ran.iter().any(|r| {
                r.result != "skipped"
                    && suites
                        .iter()
                        .any(|s| s.name == r.name && s.new_errors == NewErrors::Blocking)
            });
        let text = format!(
            "{} new error{} in the logs (vs the previous healthy cycle):\n  {}",
            new.len(),
            if new.len() == 1 { "" } else { "s" },
            new.join("\n  ")
        );
        cx.reporter.note(&text);
        if blocking {
            problems.push(format!("new_errors = \"blocking\": {text}"));
            if cx.failure.is_none() {
                cx.failure = Some(FailureReport {
                    class: failure::Class::Code,
                    stage: "verify".into(),
                    subject: Some(crate::errorwatch::SUBJECT.into()),
                    why: format!(
                        "{} new error{} in the components' logs",
                        new.len(),
                        if new.len() == 1 { "" } else { "s" }
                    ),
                });
            }
        }
    }
    cx.gates = gates;
    cx.errors = errors;
    Ok(match (failure, problems.is_empty()) {
        (f, true) => f,
        (None, false) => Some(problems.join("\n")),
        (Some(f), false) => Some(format!("{f}\n{}", problems.join("\n"))),
    })
}

/// Reports in deploy order (the order people think of the environment in).
fn in_order(cx: &Cycle<'_>, mut reports: BTreeMap<String, ComponentReport>) -> Vec<ComponentReport> {
    let mut out: Vec<ComponentReport> = plan::deploy_order(&cx.app.config, cx.env)
        .iter()
        .filter_map(|n| reports.remove(n))
        .collect();
    out.extend(reports.into_values());
    out
}

async fn halted(
    cx: &Cycle<'_>,
    reports: BTreeMap<String, ComponentReport>,
    result: &str,
    msg: String,
) -> anyhow::Result<StagesOutcome> {
    // Once a component was replaced the environment no longer runs one manifest.
    if reports.values().any(|r| r.action == "deploy" && r.outcome != "pending") {
        cx.app
            .store
            .set_environment_manifest(&cx.inst.name, None, cx.id, cx.app.now())
            .await?;
    }
    Ok((result.into(), Some(msg), in_order(cx, reports), 0, 0))
}

/// Where a component's log goes at a place (the instance, or a fleet's
/// target: `core::fleet::target_key`).
fn log_path_at(cx: &Cycle<'_>, key: &str, component: &str) -> PathBuf {
    cx.app
        .paths
        .logs()
        .join(key)
        .join(component)
        .join(format!("cycle-{}.log", cx.id))
}

fn log_path(cx: &Cycle<'_>, component: &str) -> PathBuf {
    cx.app
        .paths
        .logs()
        .join(&cx.inst.name)
        .join(component)
        .join(format!("cycle-{}.log", cx.id))
}

fn write_manifest_file(
    cx: &Cycle<'_>,
    records: &BTreeMap<String, CycleComponent>,
    endpoints: &BTreeMap<String, (u16, Option<String>)>,
) -> anyhow::Result<()> {
    let file = ManifestFile {
        schema: "greenroom.manifest/v1",
        id: &cx.manifest.id,
        environment: &cx.inst.name,
        slot: cx.inst.slot,
        cycle: cx.id,
        components: records
            .iter()
            .map(|(n, r)| {
                (
                    n.as_str(),
                    ManifestFileComponent {
                        action: &r.action,
                        origin: &r.entry.origin,
                        commit: &r.entry.commit,
                        reference: &r.entry.reference,
                        pr: r.entry.pr,
                        image: &r.entry.image,
                        artifact: r.artifact.as_deref(),
                        carried: r.entry.carried,
                        url: endpoints.get(n).and_then(|(_, u)| u.as_deref()),
                        port: endpoints.get(n).map(|(p, _)| *p),
                    },
                )
            })
            .collect(),
    };
    if let Some(dir) = cx.manifest_file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    build::write_atomically(
        &cx.manifest_file,
        &serde_json::to_vec_pretty(&file).context("encode manifest file")?,
    )
}

/// Builds every component being deployed from git, in parallel (bounded by
/// cores). Returns the failure message if any build failed.
async fn build_stage(
    cx: &mut Cycle<'_>,
    reports: &mut BTreeMap<String, ComponentReport>,
    records: &mut BTreeMap<String, CycleComponent>,
) -> anyhow::Result<Option<String>> {
    let app = cx.app;
    let jobs: Vec<(String, String, String)> = records
        .values()
        .filter(|r| r.action == "deploy")
        .filter_map(|r| {
            Some((
                r.component.clone(),
                r.entry.commit.clone()?,
                r.entry.reference.clone().unwrap_or_default(),
            ))
        })
        .collect();
    if jobs.is_empty() {
        return Ok(None);
    }
    cx.reporter.stage("build");
    let parallel = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let sem = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mirrors = greenroom_git::Mirrors::new(app.paths.mirrors());
    let mut set = tokio::task::JoinSet::new();
    let started_at = app.now();
    for (name, commit, reference) in jobs {
        let component = app
            .config
            .component(&name)
            .with_context(|| format!("component {name} vanished"))?
            .clone();
        let repo = component
            .repo
            .clone()
            .with_context(|| format!("component {name} has no repo"))?;
        let mut env = cx.vars.values.clone();
        env.push(("GREENROOM_ENV".into(), cx.inst.name.clone()));
        let job = BuildJob {
            component: name.clone(),
            commit,
            reference,
            command: component.build.clone(),
            env,
            secrets: cx.vars.secrets.clone(),
            timeout: component.timeout,
        };
        let (builds, logs) = (app.paths.builds(), app.paths.logs());
        let mirrors = mirrors.clone();
        let sem = sem.clone();
        cx.reporter.started(
            "build",
            &name,
            if job.command.is_some() {
                "building"
            } else {
                "checking out"
            },
        );
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let t = Instant::now();
            let result = async {
                let mirror = mirrors.open(&resolve::mirror_name(&repo), &repo).await?;
                build::build(&mirror, &builds, &logs, &job).await
            }
            .await;
            (name, result, t.elapsed())
        });
    }
    let mut failures = Vec::new();
    let mut any_built = false;
    let mut user = Duration::ZERO;
    while let Some(joined) = set.join_next().await {
        let (name, result, took) = joined.context("a build task failed")?;
        let (build, detail, artifact, log, ok) = match result {
            Ok(BuildOutcome::Cached(rec)) => ("cached", "cached".to_string(), Some(rec.artifact), rec.log, true),
            Ok(BuildOutcome::Built(rec)) => {
                any_built = true;
                user = user.max(took);
                (
                    "built",
                    format!(
                        "built in {}",
                        time::format_span(i64::try_from(rec.duration_ms).unwrap_or(0))
                    ),
                    Some(rec.artifact),
                    rec.log,
                    true,
                )
            }
            Ok(BuildOutcome::Failed { message, log, exit }) => {
                any_built = true;
                user = user.max(took);
                cx.failed("build", Some(&name), failure::Observed::Build(exit));
                failures.push(format!("build of {name} failed ({message}){}", tail(&log)));
                ("failed", message, None, Some(log), false)
            }
            Err(e) => {
                cx.failed("build", Some(&name), failure::Observed::CouldNotRun);
                failures.push(format!("build of {name} failed: {e:#}"));
                ("failed", format!("{e:#}"), None, None, false)
            }
        };
        cx.reporter.finished("build", &name, ok, &detail, took);
        if let Some(rec) = records.get_mut(&name) {
            rec.build = build.into();
            rec.artifact = artifact.clone().or(rec.artifact.clone());
            rec.build_log = log.map(|l| l.display().to_string());
            app.store.set_cycle_component(cx.id, rec).await?;
        }
        if let Some(r) = reports.get_mut(&name) {
            r.build = build.into();
            r.artifact = artifact;
        }
        cx.stage(
            "build",
            Some(&name),
            started_at,
            if ok { build } else { "failed" },
            Some(detail),
        )
        .await?;
    }
    if any_built {
        cx.user += user;
    }
    if failures.is_empty() {
        return Ok(None);
    }
    failures.sort();
    for r in records.values_mut().filter(|r| r.action == "deploy") {
        r.outcome = "not-reached".into();
        app.store.set_cycle_component(cx.id, r).await?;
        if let Some(rep) = reports.get_mut(&r.component) {
            rep.outcome = "not-reached".into();
        }
    }
    Ok(Some(format!("{}\nnothing was deployed", failures.join("\n"))))
}

/// Replaces one component: stop the previous, clean the run directory,
/// start the new, wait until healthy. Records what runs after every step.
/// Replaces one component at one place: the environment instance (`key`
/// is its name) or one target of its fleet (`core::fleet::target_key`),
/// which has its own run directory, log, ports and record, and whose
/// commands get `GREENROOM_TARGET`. Time and the failure class go to
/// `tally`, so the targets of a wave can run concurrently.
async fn deploy_component(
    cx: &Cycle<'_>,
    key: &str,
    tally: &mut Tally,
    component: &Component,
    rec: &CycleComponent,
    prev: Option<&Deployed>,
    endpoints: &BTreeMap<String, (u16, Option<String>)>,
) -> anyhow::Result<()> {
    let app = cx.app;
    let name = component.name.as_str();
    let target = target_of(cx.env, key);
    // What progress and stage records call it: `api`, or `api on web-2`.
    let shown = match target {
        Some(t) => format!("{name} on {}", t.name),
        None => name.to_string(),
    };
    let t = Instant::now();
    let started_at = app.now();
    cx.reporter.started("deploy", &shown, "deploying");
    if let Some(p) = prev {
        cx.reporter.started("deploy", &shown, "stopping previous");
        let ts = Instant::now();
        let mut user = Duration::ZERO;
        stop_deployed(cx.app, cx.env, &cx.driver, p, &mut user).await?;
        // A command driver's stop command is user time; otherwise the wait is the component's shutdown.
        tally.user += user;
        tally.stop += ts.elapsed().saturating_sub(user);
    }
    let run_dir = app.paths.run_dir(key, name);
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir).with_context(|| format!("cannot clean {}", run_dir.display()))?;
    }
    std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    let (port, url) = endpoints.get(name).cloned().unwrap_or((0, None));
    let artifact = rec.artifact.clone();
    let env_vars = ComponentVars {
        inst: &cx.inst,
        component: name,
        entry: &rec.entry,
        artifact: artifact.as_deref(),
        cycle: cx.id,
        manifest_id: &cx.manifest.id,
        manifest_file: &cx.manifest_file,
        run_dir: &run_dir,
        endpoints,
        vars: &cx.vars,
    }
    .to_env();
    let mut env_vars = env_vars;
    env_vars.extend(target_vars(cx.env, key));
    if let Some(r) = &cx.rollback {
        // Deploy tools often need a flag for a rollback (seed 003).
        env_vars.push(("GREENROOM_ROLLBACK".into(), "1".into()));
        env_vars.push((
            "GREENROOM_PREVIOUS_MANIFEST".into(),
            r.previous_manifest.clone().unwrap_or_default(),
        ));
    }
    let log = log_path_at(cx, key, name);
    let cwd = artifact
        .as_deref()
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| run_dir.clone());
    let mut deployed = Deployed {
        environment: key.to_string(),
        component: name.to_string(),
        cycle_id: cx.id,
        entry: rec.entry.clone(),
        artifact: artifact.clone(),
        state: "starting".into(),
        pid: None,
        pid_start: None,
        log_path: Some(log.display().to_string()),
        status_path: None,
        port: Some(port),
        url,
        updated_at: app.now(),
    };
    let check = component.health.as_ref().map(|h| match h {
        Health::Http(u) => HealthCheck::Http {
            url: render_url(u, &cx.inst, name, port),
        },
        Health::Command(c) => HealthCheck::Command {
            command: c.clone(),
            cwd: cwd.clone(),
            env: env_vars.clone(),
        },
    });

    let handle = match cx.env.driver {
        DriverKind::Process => {
            let command = component
                .run
                .clone()
                .with_context(|| format!("component {name} has no `run` command"))?;
            stop_leftover(&cx.driver, app, key, name).await?;
            if port != 0
                && let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port))
                && e.kind() == std::io::ErrorKind::AddrInUse
            {
                anyhow::bail!(
                    "port {port} of {shown} is taken by a process greenroom did not record (a leftover from outside, or another program): stop it, or move `port_base`"
                );
            }
            let h = cx
                .driver
                .start(&StartSpec {
                    environment: key.to_string(),
                    component: name.to_string(),
                    command,
                    cwd: cwd.clone(),
                    env: env_vars.clone(),
                    secret_values: cx.vars.secrets.clone(),
                    log_path: log.clone(),
                    pid_file: Some(pid_file(app, key, name)),
                })
                .await
                .with_context(|| format!("cannot start {name}"))?;
            deployed.pid = Some(h.pid);
            deployed.pid_start = Some(h.start_time);
            deployed.status_path = Some(h.status_path.display().to_string());
            deployed.log_path = Some(h.log_path.display().to_string());
            app.store.set_deployed(&deployed).await?;
            Some(h)
        }
        DriverKind::Command => {
            let command = component
                .deploy
                .clone()
                .with_context(|| format!("component {name} has no `deploy` command"))?;
            app.store.set_deployed(&deployed).await?;
            let out = greenroom_driver::run_command(&CommandSpec {
                command,
                cwd: cwd.clone(),
                env: env_vars.clone(),
                secret_values: cx.vars.secrets.clone(),
                log_path: log.clone(),
                timeout: component.timeout,
            })
            .await
            .with_context(|| format!("cannot run the deploy command of {shown}"))?;
            tally.user += out.duration;
            if !out.success {
                deployed.state = "failed".into();
                deployed.updated_at = app.now();
                app.store.set_deployed(&deployed).await?;
                let why = if out.timed_out {
                    format!("timed out after {}", humantime::format_duration(component.timeout))
                } else {
                    format!(
                        "exit status {}",
                        out.code.map(|c| c.to_string()).unwrap_or_else(|| "by signal".into())
                    )
                };
                cx.reporter.finished(
                    "deploy",
                    &shown,
                    false,
                    &format!("deploy command failed: {why}"),
                    t.elapsed(),
                );
                tally.failed(
                    "deploy",
                    Some(name),
                    failure::Observed::DeployCommand(failure::Exit {
                        code: out.code,
                        timed_out: out.timed_out,
                    }),
                );
                cx.stage("deploy", Some(name), started_at, "failed", Some(on(target, &why)))
                    .await?;
                anyhow::bail!("the deploy command of {shown} failed ({why}){}", tail(&log));
            }
            None
        }
    };

    if let Some(check) = check {
        let th = Instant::now();
        let driver = cx.driver.clone();
        let h2 = handle.clone();
        let alive = move || h2.as_ref().is_none_or(|h| driver.state(h) == ProcState::Running);
        let health = greenroom_driver::wait_healthy(&check, component.health_timeout, &alive).await;
        tally.health += th.elapsed();
        if let Err(e) = health {
            // An unhealthy component is stopped, not left half-up.
            if let Some(h) = &handle {
                let _ = cx.driver.stop(h, STOP_GRACE).await;
            }
            deployed.state = "failed".into();
            deployed.pid = None;
            deployed.pid_start = None;
            deployed.updated_at = app.now();
            app.store.set_deployed(&deployed).await?;
            cx.reporter.finished(
                "deploy",
                &shown,
                false,
                &format!("health check failed: {e}"),
                t.elapsed(),
            );
            let observed = match &e {
                greenroom_driver::HealthError::TimedOut { last, .. } => failure::Observed::HealthTimedOut { last },
                greenroom_driver::HealthError::ProcessExited { .. } => failure::Observed::ProcessExited,
                greenroom_driver::HealthError::InvalidCheck { .. } => failure::Observed::CouldNotRun,
            };
            tally.failed("health", Some(name), observed);
            cx.stage(
                "health",
                Some(name),
                started_at,
                "failed",
                Some(on(target, &e.to_string())),
            )
            .await?;
            anyhow::bail!("component {shown} failed its health check: {e}{}", tail(&log));
        }
    }
    deployed.state = "running".into();
    deployed.updated_at = app.now();
    app.store.set_deployed(&deployed).await?;
    let detail = match &rec.entry.commit {
        Some(c) => format!("{} ({})", &c[..c.len().min(12)], rec.entry.origin),
        None => format!("{} ({})", rec.entry.image.clone().unwrap_or_default(), rec.entry.origin),
    };
    cx.reporter.finished("deploy", &shown, true, &detail, t.elapsed());
    cx.stage("deploy", Some(name), started_at, "ok", Some(on(target, &detail)))
        .await?;
    Ok(())
}

/// Stops what runs for one component and records it as stopped.
/// Records one component's `stop` stage row of a stop cycle.
async fn stop_stage(
    app: &App,
    id: i64,
    component: &str,
    started: Millis,
    ok: bool,
    detail: &str,
) -> anyhow::Result<()> {
    app.store
        .add_stage(
            id,
            &StageRecord {
                seq: 0,
                name: "stop".into(),
                component: Some(component.to_string()),
                started_at: started,
                finished_at: app.now(),
                result: if ok { "ok" } else { "failed" }.into(),
                detail: Some(detail.to_string()),
            },
        )
        .await?;
    Ok(())
}

/// Where the process driver's supervisor of `component` at `key` (an
/// instance or a fleet target) writes its identity as it starts
/// (`StartSpec::pid_file`): next to the run directory, which is cleaned on
/// every deploy. Component names have no `.`, so it cannot be another
/// component's directory.
fn pid_file(app: &App, key: &str, component: &str) -> PathBuf {
    app.paths.root.join("run").join(key).join(format!("{component}.pid"))
}

/// Stops a component left running by a greenroom that was killed after
/// starting it and before recording it (found through its pid file):
/// otherwise it keeps the port, and its successor's health check and tests
/// would talk to the old code.
async fn stop_leftover(driver: &ProcessDriver, app: &App, key: &str, component: &str) -> anyhow::Result<()> {
    if let Some(pid) = driver
        .stop_leftover(&pid_file(app, key, component), STOP_GRACE)
        .await
        .with_context(|| format!("cannot stop what an interrupted run left of {component} on {key}"))?
    {
        tracing::warn!(
            "stopped {component} on {key} (pid {pid}), left running by an interrupted greenroom that never recorded it"
        );
    }
    Ok(())
}

async fn stop_deployed(
    app: &App,
    env: &Environment,
    driver: &ProcessDriver,
    d: &Deployed,
    user: &mut Duration,
) -> anyhow::Result<()> {
    match env.driver {
        DriverKind::Process => {
            if let Some(h) = handle_of(d) {
                driver
                    .stop(&h, STOP_GRACE)
                    .await
                    .with_context(|| format!("cannot stop {}", d.component))?;
            }
        }
        DriverKind::Command => {
            if let Some(cmd) = app.config.component(&d.component).and_then(|c| c.stop.clone()) {
                // A fleet's target is recorded as `INSTANCE#TARGET`.
                let (instance, _) = greenroom_core::fleet::split_key(&d.environment);
                let inst = app
                    .config
                    .instances()
                    .into_iter()
                    .find(|i| i.name == instance)
                    .with_context(|| format!("environment {} vanished from the config", d.environment))?;
                let (vars, env_vars, run_dir) = recorded_env(app, env, &inst, d).await?;
                let log = d
                    .log_path
                    .clone()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| run_dir.join("stop.log"));
                let cwd = if run_dir.is_dir() {
                    run_dir.clone()
                } else {
                    app.paths.root.clone()
                };
                let out = greenroom_driver::run_command(&CommandSpec {
                    command: cmd,
                    cwd,
                    env: env_vars,
                    secret_values: vars.secrets.clone(),
                    log_path: log.clone(),
                    timeout: app
                        .config
                        .component(&d.component)
                        .map(|c| c.timeout)
                        .unwrap_or(STOP_GRACE),
                })
                .await
                .with_context(|| format!("cannot run the stop command of {}", d.component))?;
                *user += out.duration;
                if !out.success {
                    anyhow::bail!("the stop command of {} failed{}", d.component, tail(&log));
                }
            }
        }
    }
    let stopped = Deployed {
        state: "stopped".into(),
        pid: None,
        pid_start: None,
        updated_at: app.now(),
        ..d.clone()
    };
    app.store.set_deployed(&stopped).await?;
    Ok(())
}

/// The variables a recorded component runs with (its entry, artifact, cycle,
/// port and the instance's variables), to stop or restart it as it was
/// started. Returns the instance's variables (for redaction), the component's
/// variables, and its run directory.
async fn recorded_env(
    app: &App,
    env: &Environment,
    inst: &Instance,
    d: &Deployed,
) -> anyhow::Result<(Vars, Vec<(String, String)>, PathBuf)> {
    let vars = resolve::vars_for(env, inst)?;
    // `d.environment` is the instance, or one target of its fleet.
    let endpoints = endpoints_at(app, env, inst, &d.environment).await?;
    let run_dir = app.paths.run_dir(&d.environment, &d.component);
    let manifest_file = app.paths.cycle_dir(d.cycle_id).join("manifest.json");
    let manifest_id = app
        .store
        .environment_manifest(&inst.name)
        .await?
        .and_then(|(m, _)| m)
        .unwrap_or_default();
    let env_vars = ComponentVars {
        inst,
        component: &d.component,
        entry: &d.entry,
        artifact: d.artifact.as_deref(),
        cycle: d.cycle_id,
        manifest_id: &manifest_id,
        manifest_file: &manifest_file,
        run_dir: &run_dir,
        endpoints: &endpoints,
        vars: &vars,
    }
    .to_env();
    let mut env_vars = env_vars;
    env_vars.extend(target_vars(env, &d.environment));
    Ok((vars, env_vars, run_dir))
}

/// `greenroom stop`: stops everything an instance runs, as a cycle, under its lease.
pub async fn stop(app: &App, env_name: &str, wait: bool, reporter: &dyn Reporter) -> anyhow::Result<CycleReport> {
    let t0 = Instant::now();
    let instances = app.config.lookup_instances(env_name).map_err(input)?;
    if instances.len() > 1 {
        return Err(input(format!(
            "`{env_name}` is a pool of {} slots: name one ({})",
            instances.len(),
            instances.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    let env = app
        .config
        .environment(&instances[0].environment)
        .with_context(|| format!("environment {} vanished", instances[0].environment))?
        .clone();
    let held = leasing::acquire(
        app,
        &Ask {
            candidates: &instances,
            queue_key: env_name,
            reason: "stop",
            ttl: env.lease_ttl,
            bind_process: true,
            wait,
        },
    )
    .await?;
    let inst = held.instance.clone();
    let result = async {
        let now = app.now();
        let id = start_cycle(
            app,
            &NewCycle {
                environment: &inst.name,
                kind: "stop",
                manifest: None,
                request: "stop",
                requested_by: &app.holder,
                started_at: now,
                process: &app.process,
                lease_token: held.lease.token,
            },
            wait,
        )
        .await?;
        reporter.stage("stop");
        let driver = ProcessDriver::new(app.supervisor.clone());
        let running = app.store.deployed(&inst.name).await?;
        // A fleet's other targets (recorded as `INSTANCE#TARGET`) stop first.
        let mut others = Vec::new();
        if let Some(fleet) = &env.fleet {
            for t in fleet.targets.iter().filter(|t| t.name != fleet.blessed) {
                others.extend(app.store.deployed(&fleet.key(&inst.name, &t.name)).await?);
            }
        }
        let mut components = Vec::new();
        let mut errors = Vec::new();
        let mut user = Duration::ZERO;
        for name in plan::stop_order(&app.config, &env) {
            for d in others.iter().filter(|d| d.component == name && d.state != "stopped") {
                let started = app.now();
                let r = stop_deployed(app, &env, &driver, d, &mut user).await;
                let detail = match &r {
                    Ok(()) => format!("stopped on {}", d.environment),
                    Err(e) => format!("on {}: {e:#}", d.environment),
                };
                stop_stage(app, id, &name, started, r.is_ok(), &detail).await?;
                if r.is_err() {
                    errors.push(detail);
                }
            }
            let Some(d) = running.iter().find(|d| d.component == name && d.state != "stopped") else {
                continue;
            };
            if !app.store.holds(&inst.name, held.lease.token).await? {
                errors.push(format!("the lease on {} was taken over; stopped early", inst.name));
                break;
            }
            let t = Instant::now();
            let started = app.now();
            reporter.started("stop", &name, "stopping");
            let r = stop_deployed(app, &env, &driver, d, &mut user).await;
            let ok = r.is_ok();
            let detail = match &r {
                Ok(()) => "stopped".to_string(),
                Err(e) => format!("{e:#}"),
            };
            reporter.finished("stop", &name, ok, &detail, t.elapsed());
            stop_stage(app, id, &name, started, ok, &detail).await?;
            if let Err(e) = r {
                errors.push(format!("{e:#}"));
            }
            components.push(ComponentReport {
                artifact: d.artifact.clone(),
                outcome: if ok { "stopped".into() } else { "failed".into() },
                url: d.url.clone(),
                ..ComponentReport::new(&name, "stop", &d.entry)
            });
        }
        let (result, error) = if errors.is_empty() {
            ("succeeded", None)
        } else {
            ("failed", Some(errors.join("\n")))
        };
        app.store
            .set_environment_manifest(&inst.name, None, id, app.now())
            .await?;
        app.store.finish_cycle(id, result, error.as_deref(), app.now()).await?;
        anyhow::Ok(CycleReport {
            cycle: Some(id),
            kind: "stop".into(),
            environment: inst.name.clone(),
            manifest: None,
            result: result.into(),
            error,
            components,
            lease: None,
            timings: Timings {
                total_ms: ms(t0.elapsed()),
                user_ms: ms(user),
                ..Timings::default()
            },
            suites: Vec::new(),
            failure: None,
            junit: None,
            gates: Vec::new(),
            errors: Vec::new(),
            auto_rollback: None,
        })
    }
    .await;
    // A stop frees the environment it took; a lease the holder had stays.
    let lease = leasing::after_cycle(app, &held, env.lease_ttl, true).await;
    let mut report = result?;
    report.lease = lease?.as_ref().map(LeaseReport::of);
    Ok(report)
}

/// Starts again a process-driver component that died, exactly as its cycle
/// recorded it (same entry, artifact, port and variables), and waits for
/// its health check. Not a cycle: what runs does not change. Used by
/// `greenroom serve`'s supervision; the caller makes sure no cycle runs on
/// the instance.
pub async fn restart_component(app: &App, inst: &Instance, d: &Deployed) -> anyhow::Result<()> {
    let env = app
        .config
        .environment(&inst.environment)
        .with_context(|| format!("environment {} vanished from the config", inst.environment))?;
    let component = app
        .config
        .component(&d.component)
        .with_context(|| format!("component {} vanished from the config", d.component))?;
    let command = component
        .run
        .clone()
        .with_context(|| format!("component {} has no `run` command", d.component))?;
    let (vars, env_vars, run_dir) = recorded_env(app, env, inst, d).await?;
    std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    let cwd = d
        .artifact
        .as_deref()
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| run_dir.clone());
    let log = d
        .log_path
        .clone()
        .map(PathBuf::from)
        .unwrap_or_else(|| app.paths.logs().join(&inst.name).join(&d.component).join("restart.log"));
    let driver = ProcessDriver::new(app.supervisor.clone());
    // Whatever is left of the old one (members of its group) goes first.
    if let Some(h) = handle_of(d) {
        let _ = driver.stop(&h, STOP_GRACE).await;
    }
    stop_leftover(&driver, app, &d.environment, &d.component).await?;
    let h = driver
        .start(&StartSpec {
            environment: inst.name.clone(),
            component: d.component.clone(),
            command,
            cwd: cwd.clone(),
            env: env_vars.clone(),
            secret_values: vars.secrets.clone(),
            log_path: log.clone(),
            pid_file: Some(pid_file(app, &d.environment, &d.component)),
        })
        .await
        .with_context(|| format!("cannot restart {}", d.component))?;
    let mut now = Deployed {
        pid: Some(h.pid),
        pid_start: Some(h.start_time),
        status_path: Some(h.status_path.display().to_string()),
        log_path: Some(h.log_path.display().to_string()),
        state: "starting".into(),
        updated_at: app.now(),
        ..d.clone()
    };
    app.store.set_deployed(&now).await?;
    if let Some(check) = component.health.as_ref().map(|hc| match hc {
        Health::Http(u) => HealthCheck::Http {
            url: render_url(u, inst, &d.component, d.port.unwrap_or(0)),
        },
        Health::Command(c) => HealthCheck::Command {
            command: c.clone(),
            cwd: cwd.clone(),
            env: env_vars.clone(),
        },
    }) {
        let (drv, h2) = (driver.clone(), h.clone());
        let alive = move || drv.state(&h2) == ProcState::Running;
        if let Err(e) = greenroom_driver::wait_healthy(&check, component.health_timeout, &alive).await {
            let _ = driver.stop(&h, STOP_GRACE).await;
            // `crashed`: supervision may try again (with backoff) or give up.
            now.state = "crashed".into();
            now.pid = None;
            now.pid_start = None;
            now.updated_at = app.now();
            app.store.set_deployed(&now).await?;
            anyhow::bail!(
                "{} did not become healthy after a restart: {e}{}",
                d.component,
                tail(&log)
            );
        }
    }
    now.state = "running".into();
    now.updated_at = app.now();
    app.store.set_deployed(&now).await?;
    Ok(())
}
