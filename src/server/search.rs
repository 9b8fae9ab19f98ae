//! Finding the faulty PR (issue #4 point 6): when a pending environment's
//! cycle that merged several PRs fails a blocking suite, the server drives
//! the pure search (`core::culprit`) with real runs.
//!
//! A run deploys the base plus a subset of the staged units (the same heads
//! the failing cycle had, `pending::stage_units`) and runs only the failing
//! gate: the blocking suite, or none when the deploy itself failed for the
//! code (a build, deploy command or health check, `core::failure`). Runs go to every slot of `[pending] search_pool` in parallel, or,
//! without a pool, to the failing environment itself one at a time. They
//! are ordinary recorded cycles (request "culprit search …"), not subject to
//! the policy's settle, cooldown or full-cycle interval. A run whose suite
//! failed is a code failure; a run that could not deploy (build, health,
//! lease) is an infrastructure error: retried by the search, never blamed.
//!
//! The verdict: culprits and interacting groups are excluded from the
//! pending set (recorded by "culprit search" with the reason), their
//! authors are told on the PR, and the environment gets a trigger so the
//! rest is redeployed; a flaky failure blames nobody and redeploys them
//! all; an inconclusive search blames nobody and is recorded as a decision.
//! A search lives in memory: after a restart the scheduler runs the failed
//! cycle again (`Scheduler::resume_unfinished_failure`), which searches anew.

use super::scheduler::Work;
use crate::app::App;
use crate::engine::{self, DeployRequest};
use crate::pending::Staged;
use crate::progress::Silent;
use greenroom_core::compose::{self, Request};
use greenroom_core::culprit::{Outcome, Search, SearchConfig, Unit, Verdict};
use greenroom_core::failure::Class;
use greenroom_core::policy::Event;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// Search runs are at most this many, whatever the search asks (a bound
/// against a search that would not converge).
const MAX_RUNS: u32 = 200;

/// A failed cycle to search.
pub struct Job {
    /// The pending environment.
    pub env: String,
    /// What its cycle staged.
    pub staged: Staged,
    /// The blocking suite that failed; `None` when the deploy itself failed
    /// for the code (a build, a deploy command, a health check).
    pub suite: Option<String>,
    /// The failed cycle.
    pub cycle: i64,
    /// An id for the trigger that redeploys the rest.
    pub trigger: u64,
    /// The suite is a `gate` (issue #6 point 1): the cycle passed, nobody is
    /// excluded; the verdict only decides which PRs get the gate's red
    /// status (`feedback::gate_verdict`).
    pub gate_only: bool,
}

/// The gate a cycle failed for the code, if it did (`core::failure`): the
/// blocking suite (`Some(Some(name))`) or the deploy itself
/// (`Some(None)`). An infrastructure failure is no gate's: `None`.
pub fn failing_gate(report: &engine::CycleReport) -> Option<Option<String>> {
    if report.failure_class() != Some(Class::Code) {
        return None;
    }
    let f = report.failure.as_ref()?;
    Some(match f.stage.as_str() {
        "verify" => Some(f.subject.clone()?),
        _ => None,
    })
}

/// The gate suites a passed cycle failed for the code, in order.
pub fn failing_gates(report: &engine::CycleReport) -> Vec<String> {
    report
        .suites
        .iter()
        .filter(|s| s.tier == "gate" && s.result == "failed" && s.class != Some(Class::Infra))
        .map(|s| s.name.clone())
        .collect()
}

impl Job {
    /// The failing gate in words.
    fn gate(&self) -> String {
        match &self.suite {
            Some(s) if self.gate_only => format!("gate suite `{s}`"),
            Some(s) => format!("blocking suite `{s}`"),
            None => "the deploy (build, deploy or health check)".into(),
        }
    }
}

async fn record(app: &App, env: &str, kind: &str, reason: &str, cycle: Option<i64>) {
    if let Err(e) = app
        .store
        .record_decision(env, app.now(), kind, reason, &[], cycle)
        .await
    {
        tracing::warn!("cannot record a decision: {e}");
    }
}

/// One search run: deploy the units on `instance`, run the failing suite.
async fn run_once(
    app: Arc<App>,
    job: Arc<Job>,
    instance: String,
    run: u32,
    units: Vec<String>,
) -> (u32, Outcome, String) {
    let staged = match crate::pending::stage_units(&app, &job.staged, &units).await {
        Ok(s) => s,
        Err(e) => return (run, Outcome::Infra, format!("cannot stage: {e:#}")),
    };
    let mut overrides = Vec::new();
    for o in &staged.0 {
        match compose::parse_override(o) {
            Ok(o) => overrides.push(o),
            Err(e) => return (run, Outcome::Infra, format!("override {o}: {e}")),
        }
    }
    let only: Vec<String> = job
        .staged
        .repos
        .iter()
        .flat_map(|r| r.repo.components.clone())
        .collect();
    let text = format!(
        "culprit search for cycle {} run {run}: {}",
        job.cycle,
        if units.is_empty() {
            "base only".to_string()
        } else {
            units.join(" ")
        }
    );
    let req = DeployRequest {
        env: instance,
        request: Request {
            base: "stg".into(),
            overrides,
            only,
            skip: Vec::new(),
        },
        text: text.clone(),
        wait: true,
        reason: Some(text),
        release_after: true,
        merged: staged.1,
        suites_only: Some(job.suite.iter().cloned().collect()),
        ..Default::default()
    };
    let outcome = engine::deploy(&app, &req, &Silent).await;
    if job.gate_only {
        // A gate never fails the cycle: its own result is the run's.
        let gate = job.suite.as_deref().unwrap_or_default();
        return match outcome {
            Ok(r) if r.result == "succeeded" => match r.suites.iter().find(|s| s.name == gate) {
                Some(s) if s.result == "failed" && s.class != Some(Class::Infra) => (
                    run,
                    Outcome::Fail,
                    format!("cycle {:?}: {} failed", r.cycle, job.gate()),
                ),
                Some(s) if s.result == "passed" || s.result == "flaky" => (
                    run,
                    Outcome::Pass,
                    format!("cycle {:?}: {} passed", r.cycle, job.gate()),
                ),
                _ => (run, Outcome::Infra, format!("cycle {:?}: {gate} did not run", r.cycle)),
            },
            Ok(r) => (
                run,
                Outcome::Infra,
                format!("cycle {:?} {}: {}", r.cycle, r.result, r.error.unwrap_or_default()),
            ),
            Err(e) => (run, Outcome::Infra, format!("{e:#}")),
        };
    }
    match outcome {
        Ok(r) if r.result == "succeeded" => (run, Outcome::Pass, format!("cycle {:?} passed", r.cycle)),
        Ok(r) if failing_gate(&r).as_ref() == Some(&job.suite) => (
            run,
            Outcome::Fail,
            format!("cycle {:?}: {} failed", r.cycle, job.gate()),
        ),
        Ok(r) => (
            run,
            Outcome::Infra,
            format!("cycle {:?} {}: {}", r.cycle, r.result, r.error.unwrap_or_default()),
        ),
        Err(e) => (run, Outcome::Infra, format!("{e:#}")),
    }
}

/// The lock that keeps searches one at a time, per state directory.
fn search_lock(app: &App) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::Mutex<std::collections::BTreeMap<std::path::PathBuf, Arc<tokio::sync::Mutex<()>>>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks
        .entry(app.paths.root.clone())
        .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
        .clone()
}

/// Runs the search and acts on its verdict (see the module documentation).
pub async fn run(app: Arc<App>, tx: UnboundedSender<Work>, job: Job) {
    // One search at a time per state directory: two searches sharing the
    // search pool's slots would deploy over each other's runs and read
    // each other's results. A search that waited is dropped when a newer
    // scheduled cycle of its environment ran meanwhile (that cycle's own
    // failure, if any, is searched instead).
    let lock = search_lock(&app);
    let _one = lock.lock().await;
    if let Ok(cycles) = app.store.cycles(Some(std::slice::from_ref(&job.env)), 20).await
        && let Some(newer) = cycles
            .iter()
            .find(|c| c.id > job.cycle && engine::is_scheduled(&c.request) && c.result != "running")
    {
        record(
            &app,
            &job.env,
            "search",
            &format!(
                "no culprit search for cycle {}: cycle {} ran since ({}), its result stands",
                job.cycle, newer.id, newer.result
            ),
            Some(job.cycle),
        )
        .await;
        return;
    }
    let units: Vec<Unit> = job.staged.set.units.iter().map(Unit::from).collect();
    let instances: Vec<String> = match &app.config.pending.search_pool {
        Some(pool) => app
            .config
            .lookup_instances(pool)
            .map(|i| i.into_iter().map(|i| i.name).collect())
            .unwrap_or_default(),
        None => vec![job.env.clone()],
    };
    let cfg = SearchConfig {
        slots: instances.len().max(1),
        flake_rerun: app.config.pending.flake_rerun,
        ..SearchConfig::default()
    };
    let mut search = match Search::new(units, cfg) {
        Ok(s) => s,
        Err(e) => {
            record(
                &app,
                &job.env,
                "search",
                &format!("no culprit search: {e}"),
                Some(job.cycle),
            )
            .await;
            return;
        }
    };
    record(
        &app,
        &job.env,
        "search",
        &format!(
            "culprit search for cycle {}: {} failed with {} units staged; {} slot(s)",
            job.cycle,
            job.gate(),
            job.staged.set.units.len(),
            instances.len()
        ),
        Some(job.cycle),
    )
    .await;
    let job = Arc::new(job);
    let mut free: Vec<String> = instances.clone();
    let mut busy: std::collections::BTreeMap<u32, String> = std::collections::BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut started = 0u32;
    loop {
        if search.verdict().is_some() {
            break;
        }
        for r in search.next_runs() {
            let Some(instance) = free.pop() else { break };
            started += 1;
            busy.insert(r.id, instance.clone());
            tasks.spawn(run_once(app.clone(), job.clone(), instance, r.id, r.units.clone()));
        }
        if started > MAX_RUNS {
            break;
        }
        let Some(done) = tasks.join_next().await else { break };
        let Ok((id, outcome, detail)) = done else { continue };
        if let Some(i) = busy.remove(&id) {
            free.push(i);
        }
        tracing::info!(environment = %job.env, run = id, ?outcome, "culprit search run: {detail}");
        if let Err(e) = search.record(id, outcome) {
            tracing::warn!("culprit search: {e}");
        }
    }
    tasks.abort_all();
    let log = search.log().join("; ");
    let verdict = search.verdict().cloned();
    if job.gate_only {
        gate_verdict(&app, &job, &search, verdict.as_ref(), &log).await;
        return;
    }
    match verdict {
        Some(Verdict::Culprits {
            units, interactions, ..
        }) => {
            let mut blamed: Vec<(Vec<String>, String)> = Vec::new();
            for u in &units {
                let members = search.unit(u).map(|u| u.members.clone()).unwrap_or_default();
                blamed.push((
                    members,
                    format!(
                        "fails {} on its own (culprit search for cycle {}, {} runs)",
                        job.gate(),
                        job.cycle,
                        search.runs()
                    ),
                ));
            }
            for group in &interactions {
                let members: Vec<String> = group
                    .iter()
                    .flat_map(|u| search.unit(u).map(|u| u.members.clone()).unwrap_or_default())
                    .collect();
                let reason = format!(
                    "fails {} only together with {} (an interaction; culprit search for cycle {})",
                    job.gate(),
                    members.join(", "),
                    job.cycle
                );
                blamed.push((members, reason));
            }
            for (members, reason) in &blamed {
                for m in members {
                    let Some((repo, n)) = m.rsplit_once('#') else { continue };
                    let Ok(number) = n.parse::<u64>() else { continue };
                    if let Err(e) = app
                        .store
                        .exclude_pr(repo, number, Some(("culprit search", reason)), app.now())
                        .await
                    {
                        tracing::warn!("cannot exclude {m}: {e}");
                    }
                    tell(&app, &job, repo, number, reason).await;
                }
            }
            let names: Vec<String> = blamed.iter().flat_map(|(m, _)| m.clone()).collect();
            crate::notify::culprits(&app, &job.env, job.cycle, &blamed, &job.staged);
            record(
                &app,
                &job.env,
                "search",
                &format!(
                    "culprit search for cycle {} excluded {} after {} runs in {} rounds ({log})",
                    job.cycle,
                    names.join(", "),
                    search.runs(),
                    search.rounds()
                ),
                Some(job.cycle),
            )
            .await;
            let _ = tx.send(Work::Policy {
                env: job.env.clone(),
                event: Event::Trigger {
                    id: job.trigger,
                    source: format!("culprit search excluded {}", names.join(", ")),
                    at: app.now(),
                },
            });
        }
        Some(Verdict::Flaky) => {
            record(
                &app,
                &job.env,
                "search",
                &format!(
                    "culprit search for cycle {}: {} passed on a re-run: flaky, nobody is blamed; the environment is deployed again",
                    job.cycle,
                    job.gate()
                ),
                Some(job.cycle),
            )
            .await;
            let _ = tx.send(Work::Policy {
                env: job.env.clone(),
                event: Event::Trigger {
                    id: job.trigger,
                    source: format!("cycle {} failed on a flaky gate", job.cycle),
                    at: app.now(),
                },
            });
        }
        Some(Verdict::Inconclusive { reason }) => {
            record(
                &app,
                &job.env,
                "search",
                &format!(
                    "culprit search for cycle {} inconclusive, nobody is blamed: {reason}",
                    job.cycle
                ),
                Some(job.cycle),
            )
            .await;
        }
        None => {
            record(
                &app,
                &job.env,
                "search",
                &format!(
                    "culprit search for cycle {} stopped after {started} runs without a verdict",
                    job.cycle
                ),
                Some(job.cycle),
            )
            .await;
        }
    }
}

/// A gate's verdict: statuses only, nobody excluded, nothing redeployed.
async fn gate_verdict(app: &App, job: &Job, search: &Search, verdict: Option<&Verdict>, log: &str) {
    let gate = job.suite.clone().unwrap_or_default();
    let (failing, flaky, said): (Option<Vec<String>>, bool, String) = match verdict {
        Some(Verdict::Culprits {
            units, interactions, ..
        }) => {
            let members: Vec<String> = units
                .iter()
                .chain(interactions.iter().flatten())
                .flat_map(|u| search.unit(u).map(|u| u.members.clone()).unwrap_or_default())
                .collect();
            let said = format!(
                "culprit search for cycle {}: gate suite `{gate}` fails with {} ({} runs; {log}); their status is red, the others' green",
                job.cycle,
                members.join(", "),
                search.runs()
            );
            (Some(members), false, said)
        }
        Some(Verdict::Flaky) => (
            None,
            true,
            format!(
                "culprit search for cycle {}: gate suite `{gate}` passed on a re-run: flaky, nobody is blamed",
                job.cycle
            ),
        ),
        Some(Verdict::Inconclusive { reason }) => (
            None,
            false,
            format!(
                "culprit search for cycle {} inconclusive for gate suite `{gate}`, nobody is blamed: {reason}",
                job.cycle
            ),
        ),
        None => (
            None,
            false,
            format!(
                "culprit search for cycle {} stopped without a verdict for gate suite `{gate}`",
                job.cycle
            ),
        ),
    };
    crate::feedback::gate_verdict(app, &job.env, &job.staged, &gate, failing.as_deref(), flaky, job.cycle).await;
    record(app, &job.env, "search", &said, Some(job.cycle)).await;
}

/// Tells a PR's author why it was excluded.
async fn tell(app: &App, job: &Job, repo: &str, number: u64, reason: &str) {
    let Some(r) = job.staged.repos.iter().find(|r| r.repo.id.eq_ignore_ascii_case(repo)) else {
        return;
    };
    let Ok(forge) = crate::pending::forge_for(app, &r.repo) else {
        return;
    };
    let bot = &app.config.pending.bot;
    let body = format!(
        "greenroom excluded {repo}#{number} from the staging of {}: it {reason}.\n\n\
         The other pull requests are redeployed without it. Push a fix, then `@{bot} include` \
         (a maintainer) to stage it again.",
        job.env
    );
    if let Err(e) = forge.comment(&r.repo.id, number, &body).await {
        tracing::warn!(%repo, number, "cannot tell the author: {e}");
    }
}
