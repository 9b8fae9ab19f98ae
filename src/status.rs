//! Read-only views: what runs where (`status`), what happened (`history`),
//! and what differs between two cycles or manifests (`diff`).
//!
//! Each view is a serializable struct (the `--json` output, a public
//! interface scripts rely on) with a human rendering next to it.

use crate::app::App;
use crate::engine::{LeaseReport, live_state};
use crate::error::input;
use greenroom_core::config::Instance;
use greenroom_core::manifest::{self, ComponentDiff, ManifestComponent, short_id};
use greenroom_core::time;
use greenroom_driver::ProcessDriver;
use greenroom_store::CycleRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One component in `status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ComponentStatus {
    /// Name.
    pub name: String,
    /// Commit running.
    pub commit: Option<String>,
    /// Ref it came from.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// `running`, `dead (...)`, `failed`, `stopped`, `not deployed`.
    pub state: String,
    /// How it was asked for.
    pub origin: Option<String>,
    /// Pull request.
    pub pr: Option<u64>,
    /// Image.
    pub image: Option<String>,
    /// Artifact.
    pub artifact: Option<String>,
    /// URL.
    pub url: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// Cycle that deployed it.
    pub cycle: Option<i64>,
    /// Since (RFC 3339).
    pub since: Option<String>,
    /// On a fleet (`targets`/`instances`): what each target runs, in
    /// rollout order (the blessed target first; it is also the component's
    /// own line above). Only the targets it runs on (a profile's
    /// `instances = { COMPONENT = N }`: the first N).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetStatus>,
}

/// One target of a fleet in `status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TargetStatus {
    /// Target name.
    pub target: String,
    /// Its wave: `blessed`, `canary`, `batch N`.
    pub wave: String,
    /// Commit running.
    pub commit: Option<String>,
    /// Image running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `running`, `dead (...)`, `failed`, `stopped`, `not deployed`.
    pub state: String,
    /// Port (process driver).
    pub port: Option<u16>,
    /// URL.
    pub url: Option<String>,
    /// Cycle that deployed it.
    pub cycle: Option<i64>,
}

/// What each target of a fleet runs, for one component.
async fn fleet_status(
    app: &App,
    driver: &ProcessDriver,
    cfg: &greenroom_core::config::Environment,
    inst: &Instance,
    component: &str,
) -> anyhow::Result<Vec<TargetStatus>> {
    let Some(fleet) = &cfg.fleet else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for wave in greenroom_core::fleet::plan(fleet) {
        for t in &wave.targets {
            let rows = app.store.deployed(&fleet.key(&inst.name, t)).await?;
            let d = rows.iter().find(|d| d.component == component);
            // A target the component does not run on (a profile's
            // `instances` count) is left out, unless a copy still runs there.
            if !fleet.runs_on(component, t) && d.is_none_or(|d| d.state == "stopped") {
                continue;
            }
            out.push(TargetStatus {
                target: t.clone(),
                wave: wave.label(),
                commit: d.and_then(|d| d.entry.commit.clone()),
                image: d.and_then(|d| d.entry.image.clone()),
                state: d
                    .map(|d| live_state(driver, d))
                    .unwrap_or_else(|| "not deployed".into()),
                port: d.and_then(|d| d.port),
                url: d.and_then(|d| d.url.clone()),
                cycle: d.map(|d| d.cycle_id),
            });
        }
    }
    Ok(out)
}

/// A pause of scheduled cycles (as `greenroom_store::PauseRecord`, readable
/// back from JSON by the CLI in `--server` mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PauseView {
    /// Environment.
    pub environment: String,
    /// Paused (true) or resumed (false).
    pub paused: bool,
    /// Who paused or resumed it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When (ms since the epoch).
    pub since: i64,
}

impl From<greenroom_store::PauseRecord> for PauseView {
    fn from(p: greenroom_store::PauseRecord) -> PauseView {
        PauseView {
            environment: p.environment,
            paused: p.paused,
            by: p.by,
            reason: p.reason,
            since: p.since,
        }
    }
}

/// One environment instance in `status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnvironmentStatus {
    /// Instance name.
    pub environment: String,
    /// The manifest it runs as a whole (null when nothing was deployed, or mixed after a failure).
    pub manifest: Option<String>,
    /// The lease, if held.
    pub lease: Option<LeaseReport>,
    /// `--wait` requests queued for it (by holder).
    pub queue: Vec<String>,
    /// Last cycle: id and result.
    pub last_cycle: Option<CycleSummary>,
    /// Components.
    pub components: Vec<ComponentStatus>,
    /// Set while scheduled cycles are paused: who, why, since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<PauseView>,
    /// The scheduler's next action and why (when `greenroom serve` drives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The scheduler's last decision and its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<String>,
}

/// A cycle in `history` and `status`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CycleSummary {
    /// Cycle number.
    pub id: i64,
    /// Environment instance.
    pub environment: String,
    /// `deploy` or `stop`.
    pub kind: String,
    /// Manifest id.
    pub manifest: Option<String>,
    /// `running`, `succeeded`, `failed`, `interrupted`, `fenced`.
    pub result: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub finished_at: Option<String>,
    /// Who asked.
    pub requested_by: String,
    /// The request as typed.
    pub request: String,
    /// Why it failed.
    pub error: Option<String>,
}

impl CycleSummary {
    /// From a stored cycle.
    pub fn of(c: &CycleRecord) -> CycleSummary {
        CycleSummary {
            id: c.id,
            environment: c.environment.clone(),
            kind: c.kind.clone(),
            manifest: c.manifest.clone(),
            result: c.result.clone(),
            started_at: time::format(c.started_at),
            finished_at: c.finished_at.map(time::format),
            requested_by: c.requested_by.clone(),
            request: c.request.clone(),
            error: c.error.clone(),
        }
    }
}

fn instances(app: &App, env: Option<&str>) -> anyhow::Result<Vec<Instance>> {
    match env {
        Some(e) => app.config.lookup_instances(e).map_err(input),
        None => Ok(app.config.instances()),
    }
}

/// `greenroom status`.
pub async fn status(app: &App, env: Option<&str>) -> anyhow::Result<Vec<EnvironmentStatus>> {
    let driver = ProcessDriver::new(app.supervisor.clone());
    let mut out = Vec::new();
    for inst in instances(app, env)? {
        let Some(cfg) = app.config.environment(&inst.environment) else {
            continue;
        };
        let deployed = app.store.deployed(&inst.name).await?;
        let mut components = Vec::new();
        for name in &cfg.components {
            let targets = fleet_status(app, &driver, cfg, &inst, name).await?;
            match deployed.iter().find(|d| &d.component == name) {
                Some(d) => components.push(ComponentStatus {
                    name: name.clone(),
                    commit: d.entry.commit.clone(),
                    reference: d.entry.reference.clone(),
                    state: live_state(&driver, d),
                    origin: Some(d.entry.origin.clone()),
                    pr: d.entry.pr,
                    image: d.entry.image.clone(),
                    artifact: d.artifact.clone(),
                    url: d.url.clone(),
                    port: d.port,
                    cycle: Some(d.cycle_id),
                    since: Some(time::format(d.updated_at)),
                    targets,
                }),
                None => components.push(ComponentStatus {
                    name: name.clone(),
                    commit: None,
                    reference: None,
                    state: "not deployed".into(),
                    origin: None,
                    pr: None,
                    image: None,
                    artifact: None,
                    url: None,
                    port: None,
                    cycle: None,
                    since: None,
                    targets,
                }),
            }
        }
        let manifest = app.store.environment_manifest(&inst.name).await?.and_then(|(m, _)| m);
        let lease = app.store.lease(&inst.name).await?.0;
        let queue = app
            .store
            .queue(None)
            .await?
            .into_iter()
            .filter(|q| q.queue_key == inst.name || q.queue_key == inst.environment)
            .map(|q| q.holder)
            .collect();
        let last = app.store.cycles(Some(std::slice::from_ref(&inst.name)), 1).await?;
        let next = match app.store.policy_state(&inst.name).await? {
            Some(json) => serde_json::from_str::<greenroom_core::policy::State>(&json)
                .ok()
                .map(|st| {
                    let n = st.next_action(&app.config.policy);
                    match n.at {
                        Some(at) => format!("{} (at {})", n.what, time::format(at)),
                        None => n.what,
                    }
                }),
            None => None,
        };
        let last_decision = app
            .store
            .decisions(Some(&inst.name), 1)
            .await?
            .first()
            .map(|d| format!("{} {}: {}", time::format(d.at), d.kind, d.reason));
        out.push(EnvironmentStatus {
            environment: inst.name.clone(),
            manifest,
            lease: lease.as_ref().map(LeaseReport::of),
            queue,
            last_cycle: last.first().map(CycleSummary::of),
            components,
            next,
            last_decision,
            paused: app
                .store
                .pause(&inst.name)
                .await?
                .filter(|p| p.paused)
                .map(PauseView::from),
        });
    }
    Ok(out)
}

/// Human rendering of `status`.
pub fn render_status(envs: &[EnvironmentStatus]) -> String {
    let mut s = String::new();
    for (i, e) in envs.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let manifest = e.manifest.as_deref().map(short_id).unwrap_or("-");
        let _ = writeln!(s, "{}  manifest {manifest}", e.environment);
        match &e.lease {
            Some(l) => {
                let _ = writeln!(s, "  lease: {} until {} — {}", l.holder, l.expires, l.reason);
            }
            None => {
                let _ = writeln!(s, "  lease: free");
            }
        }
        if !e.queue.is_empty() {
            let _ = writeln!(s, "  waiting: {}", e.queue.join(", "));
        }
        if let Some(c) = &e.last_cycle {
            let _ = writeln!(s, "  last cycle: {} {} ({}, {})", c.id, c.result, c.kind, c.started_at);
        }
        if let Some(p) = &e.paused {
            let _ = writeln!(s, "  PAUSED by {} since {}: {}", p.by, time::format(p.since), p.reason);
        }
        if let Some(d) = &e.last_decision {
            let _ = writeln!(s, "  last decision: {d}");
        }
        if let Some(n) = &e.next {
            let _ = writeln!(s, "  next: {n}");
        }
        let width = e.components.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &e.components {
            let what = match (&c.commit, &c.image) {
                (Some(commit), _) => commit.chars().take(12).collect::<String>(),
                (None, Some(img)) => img.clone(),
                _ => "-".into(),
            };
            let origin = c.origin.as_deref().unwrap_or("");
            let url = c.url.as_deref().unwrap_or("");
            let _ = writeln!(
                s,
                "  {:width$}  {:12}  {:18}  {:14}  {url}",
                c.name, what, origin, c.state
            );
            for t in &c.targets {
                let what = match (&t.commit, &t.image) {
                    (Some(commit), _) => commit.chars().take(12).collect::<String>(),
                    (None, Some(img)) => img.clone(),
                    _ => "-".into(),
                };
                let url = t.url.as_deref().unwrap_or("");
                let _ = writeln!(
                    s,
                    "  {:width$}    {:10} {:12}  {:14}  {:14}  {url}",
                    "", t.target, what, t.wave, t.state
                );
            }
        }
    }
    s
}

/// `greenroom history`.
pub async fn history(app: &App, env: Option<&str>, limit: i64) -> anyhow::Result<Vec<CycleSummary>> {
    let names: Option<Vec<String>> = match env {
        Some(e) => Some(instances(app, Some(e))?.into_iter().map(|i| i.name).collect()),
        None => None,
    };
    let cycles = app.store.cycles(names.as_deref(), limit).await?;
    Ok(cycles.iter().map(CycleSummary::of).collect())
}

/// Human rendering of `history`.
pub fn render_history(cycles: &[CycleSummary]) -> String {
    let mut s = String::new();
    if cycles.is_empty() {
        s.push_str("no cycles yet\n");
    }
    for c in cycles {
        let m = c.manifest.as_deref().map(short_id).unwrap_or("-");
        let _ = writeln!(
            s,
            "{:>5}  {:10}  {:6}  {:11}  {m:12}  {}  {}  {}",
            c.id, c.environment, c.kind, c.result, c.started_at, c.requested_by, c.request
        );
        if let Some(e) = &c.error {
            let first = e.lines().next().unwrap_or("");
            let _ = writeln!(s, "       {first}");
        }
    }
    s
}

/// `greenroom diff` result.
#[derive(Debug, Serialize)]
pub struct DiffReport {
    /// First side (cycle number or manifest id as given).
    pub a: String,
    /// Second side.
    pub b: String,
    /// Manifest ids.
    pub manifests: (String, String),
    /// Components that differ.
    pub changes: Vec<ComponentDiff>,
}

async fn side(app: &App, arg: &str) -> anyhow::Result<(String, BTreeMap<String, ManifestComponent>)> {
    let as_cycle = arg.trim_start_matches('#');
    if !as_cycle.is_empty() && as_cycle.bytes().all(|b| b.is_ascii_digit()) && as_cycle.len() < 10 {
        let id: i64 = as_cycle
            .parse()
            .map_err(|_| input(format!("`{arg}` is not a cycle number")))?;
        let Some(c) = app.store.cycle(id).await? else {
            return Err(input(format!("no cycle {id} (see `greenroom history`)")));
        };
        let Some(m) = c.manifest.clone() else {
            return Err(input(format!("cycle {id} is a `{}` cycle and has no manifest", c.kind)));
        };
        let manifest = app
            .store
            .manifest(&m)
            .await?
            .ok_or_else(|| input(format!("manifest {m} of cycle {id} is missing")))?;
        return Ok((manifest.id, manifest.components));
    }
    match app.store.manifest(arg).await? {
        Some(m) => Ok((m.id, m.components)),
        None => Err(input(format!(
            "`{arg}` is neither a cycle number nor a known manifest id"
        ))),
    }
}

/// `greenroom diff A B`: A and B are cycle numbers or manifest ids (prefixes).
pub async fn diff(app: &App, a: &str, b: &str) -> anyhow::Result<DiffReport> {
    let (ida, ca) = side(app, a).await?;
    let (idb, cb) = side(app, b).await?;
    Ok(DiffReport {
        a: a.into(),
        b: b.into(),
        changes: manifest::diff(&ca, &cb),
        manifests: (ida, idb),
    })
}

fn describe(c: &ManifestComponent) -> String {
    let pr = c.pr.map(|p| format!(" PR #{p}")).unwrap_or_default();
    format!("{} ({}{pr})", c.short(), c.origin)
}

/// Human rendering of `diff`.
pub fn render_diff(d: &DiffReport) -> String {
    let mut s = format!(
        "{} (manifest {}) -> {} (manifest {})\n",
        d.a,
        short_id(&d.manifests.0),
        d.b,
        short_id(&d.manifests.1)
    );
    if d.changes.is_empty() {
        s.push_str("no differences\n");
    }
    for c in &d.changes {
        let _ = match c {
            ComponentDiff::Added { component, to } => writeln!(s, "+ {component}: {}", describe(to)),
            ComponentDiff::Removed { component, from } => writeln!(s, "- {component}: {}", describe(from)),
            ComponentDiff::Changed { component, from, to } => {
                writeln!(s, "~ {component}: {} -> {}", describe(from), describe(to))
            }
        };
    }
    s
}
