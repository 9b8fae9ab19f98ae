//! The scheduler: one serial consumer that turns stored deliveries into
//! policy events, steps each environment's policy state machine, and carries
//! out its actions (record a decision, set a timer, drain, start or restart
//! a cycle, poll the followed refs).
//!
//! All decisions come from `greenroom_core::policy`; this module only does
//! the I/O around them. Policy states are saved after every step, so a
//! restarted server resumes deferred triggers with their due times;
//! deliveries stored but not processed (a crash between answering and
//! processing) are processed first on start.

use crate::app::App;
use crate::engine::{self, DeployRequest};
use crate::progress::Silent;
use greenroom_core::compose::Request;
use greenroom_core::config::{ChannelSource, Component, Environment};
use greenroom_core::lease::{self, Standing};
use greenroom_core::policy::{self, Action, CycleKind, CycleResult, Event, State};
use greenroom_core::time::Millis;
use greenroom_store::DeliveryRecord;
use greenroom_webhook::{EventKind, Forge};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Work for the scheduler.
#[derive(Debug)]
pub enum Work {
    /// A stored delivery (row id) to process.
    Delivery(i64),
    /// A policy event for an environment (drain results, poll results).
    Policy {
        /// Environment instance.
        env: String,
        /// The event.
        event: Event,
    },
    /// A supervised restart of a crashed component ended.
    Restarted {
        /// Environment instance.
        env: String,
        /// Component.
        component: String,
        /// Whether it runs (healthy) again; the error otherwise.
        result: Result<(), String>,
    },
    /// A cycle the scheduler started has ended.
    CycleDone {
        /// Environment instance.
        env: String,
        /// Policy cycle id.
        cycle: u64,
        /// How it ended.
        result: CycleResult,
        /// When it failed for infrastructure (`core::failure`): the stored
        /// cycle, if one was recorded, and why.
        infra: Option<(Option<i64>, String)>,
    },
}

struct Running {
    cycle: u64,
    cancel: Arc<AtomicBool>,
    restart: Arc<AtomicBool>,
}

struct Scheduler {
    app: Arc<App>,
    tx: mpsc::UnboundedSender<Work>,
    states: BTreeMap<String, State>,
    wakes: BTreeMap<String, Millis>,
    leases: BTreeMap<String, Option<String>>,
    running: BTreeMap<String, Running>,
    next_cycle: u64,
    /// Every delivery with a row id up to this one has been processed.
    processed_up_to: i64,
    /// Supervision: failed restart attempts and when the next may happen.
    crashes: BTreeMap<(String, String), (u32, Millis)>,
    restarting: std::collections::BTreeSet<(String, String)>,
    /// Infrastructure failures in a row, per environment.
    infra_failures: BTreeMap<String, u32>,
    /// Ids for the triggers that retry after an infrastructure failure.
    next_retry: u64,
}

/// Restart attempts before supervision gives up on a component.
const MAX_RESTART_ATTEMPTS: u32 = 5;

/// Backoff before restart attempt `n` (0-based): 1 s, 2 s, 4 s, … at most 5 min.
fn backoff(n: u32) -> Millis {
    (1000i64 << n.min(9)).min(300_000)
}

/// Waits while a deploy blocker holds for `env`, recording each new reason
/// and the lift as decisions; true when the cycle was cancelled meanwhile
/// (a restart request only joins the waiting cycle).
async fn wait_for_blockers(app: &App, env: &Environment, cancel: &AtomicBool, restart: &AtomicBool) -> bool {
    let Some(inst) = env.instances().into_iter().next() else {
        return false;
    };
    let mut said: Option<String> = None;
    loop {
        if restart.swap(false, Ordering::SeqCst) {
            cancel.store(false, Ordering::SeqCst);
        }
        if cancel.load(Ordering::SeqCst) {
            return true;
        }
        let why = match crate::blockers::check(app, &inst, env).await {
            Ok(None) => break,
            Ok(Some(why)) => why,
            Err(e) => format!("cannot check the deploy blockers: {e:#}"),
        };
        if said.as_deref() != Some(why.as_str()) {
            tracing::info!(environment = %env.name, "cycle blocked: {why}");
            if let Err(e) = app
                .store
                .record_decision(
                    &env.name,
                    app.now(),
                    "blocked",
                    &format!("the cycle waits: {why}"),
                    &[],
                    None,
                )
                .await
            {
                tracing::error!("cannot record a decision: {e}");
            }
            said = Some(why);
        }
        tokio::time::sleep(crate::blockers::POLL).await;
    }
    if let Some(why) = said {
        let _ = app
            .store
            .record_decision(
                &env.name,
                app.now(),
                "unblocked",
                &format!("the blocker lifted ({why}): the cycle deploys what is newest now"),
                &[],
                None,
            )
            .await;
    }
    false
}

/// Environments the scheduler drives: the plain ones (pools of slots are
/// for people and previews).
/// The deploy a scheduled cycle (or a poll, as a dry run) makes: the base
/// channel, or for an environment that follows `pending`, its pending set
/// staged onto the base (`crate::pending`), with the PRs each component runs.
async fn scheduled_request(
    app: &App,
    env: &Environment,
    text: &str,
    dry_run: bool,
    full: bool,
) -> anyhow::Result<(DeployRequest, Option<crate::pending::Staged>)> {
    let mut req = DeployRequest {
        env: env.name.clone(),
        request: Request {
            base: "stg".into(),
            ..Request::default()
        },
        text: text.to_string(),
        dry_run,
        reason: Some(text.to_string()),
        release_after: true,
        full,
        ..Default::default()
    };
    // Components that follow a package feed: its newest version (`crate::feeds`).
    let (pins, skip) = crate::feeds::overrides(app, env).await?;
    for o in pins {
        req.request.overrides.push(
            greenroom_core::compose::parse_override(&o).map_err(|e| anyhow::anyhow!("feed override `{o}`: {e}"))?,
        );
    }
    req.request.skip.extend(skip);
    if env.follows != greenroom_core::config::Follows::Pending {
        return Ok((req, None));
    }
    let mut records = crate::pending::Records::default();
    for st in app.store.pr_states().await? {
        let pr = greenroom_core::pending::PrRef::new(st.repo.clone(), st.number);
        if let Some(by) = st.approved_by {
            records.approved.insert(pr.clone(), by);
        }
        if let Some(why) = st.excluded_reason {
            let by = st.excluded_by.unwrap_or_default();
            records.excluded.insert(pr, format!("{why} (excluded by {by})"));
        }
    }
    let staged = crate::pending::stage(app, env, &records).await?;
    for o in staged.overrides() {
        req.request.overrides.push(
            greenroom_core::compose::parse_override(&o).map_err(|e| anyhow::anyhow!("staging override `{o}`: {e}"))?,
        );
    }
    for r in &staged.repos {
        for c in &r.repo.components {
            req.merged.insert(c.clone(), r.merged.clone());
        }
    }
    if !staged.prs().is_empty() {
        req.text = format!("{text} (staging {})", staged.prs().join(" "));
    }
    if !dry_run {
        crate::pending::publish(app, &staged, &crate::pending::tag_stamp(app.now())).await;
    }
    Ok((req, Some(staged)))
}

/// Pull request actions that change an environment's pending set.
const PENDING_ACTIONS: &[&str] = &[
    "opened",
    "synchronize",
    "reopened",
    "closed",
    "labeled",
    "unlabeled",
    "edited",
    "ready_for_review",
    "converted_to_draft",
];

fn scheduled(app: &App) -> Vec<Environment> {
    app.config
        .environments
        .iter()
        .filter(|e| e.slots.is_none() && e.follows != greenroom_core::config::Follows::Manual)
        .cloned()
        .collect()
}

/// Runs until the channel closes.
pub async fn run(app: Arc<App>, mut rx: mpsc::UnboundedReceiver<Work>, tx: mpsc::UnboundedSender<Work>) {
    let mut s = Scheduler {
        app: app.clone(),
        tx,
        states: BTreeMap::new(),
        wakes: BTreeMap::new(),
        leases: BTreeMap::new(),
        running: BTreeMap::new(),
        next_cycle: u64::try_from(app.now()).unwrap_or(1),
        processed_up_to: 0,
        crashes: BTreeMap::new(),
        restarting: Default::default(),
        infra_failures: BTreeMap::new(),
        next_retry: 0,
    };
    if let Err(e) = s.resume().await {
        tracing::error!("scheduler cannot resume: {e:#}");
    }
    let mut lease_check = tokio::time::interval(Duration::from_secs(2));
    loop {
        let now = s.app.now();
        let next = s.wakes.values().min().copied();
        let sleep = next.map(|t| Duration::from_millis(u64::try_from((t - now).max(0)).unwrap_or(0)));
        tokio::select! {
            w = rx.recv() => match w {
                None => break,
                Some(w) => s.handle(w).await,
            },
            _ = async { match sleep { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => {
                s.tick_due().await;
            }
            _ = lease_check.tick() => {
                s.check_leases().await;
                s.check_pauses().await;
                s.supervise().await;
            }
        }
    }
}

impl Scheduler {
    async fn resume(&mut self) -> anyhow::Result<()> {
        for env in scheduled(&self.app) {
            let state = match self.app.store.policy_state(&env.name).await? {
                Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
                    tracing::warn!("policy state of {} unreadable ({e}); starting fresh", env.name);
                    State::new(&env.name)
                }),
                None => State::new(&env.name),
            };
            self.states.insert(env.name.clone(), state);
        }
        // Pauses written while no server ran apply before anything is scheduled.
        self.check_pauses().await;
        for env in scheduled(&self.app) {
            // A cycle that was running when the server died is over.
            let interrupted = self.states.get(&env.name).and_then(|s| s.running().map(|r| r.cycle));
            if let Some(cycle) = interrupted {
                self.step(
                    &env.name,
                    Event::CycleFinished {
                        cycle,
                        result: CycleResult::Interrupted,
                    },
                )
                .await;
            }
            self.step(&env.name, Event::Tick).await;
            if env.follows == greenroom_core::config::Follows::Pending {
                self.resume_unfinished_failure(&env.name).await?;
            }
        }
        // A promotion's soak the restart cut short goes on.
        crate::promote::resume_soaks(&self.app).await;
        self.process_deliveries(i64::MAX).await;
        Ok(())
    }

    /// What a restart loses of a failed pending cycle's follow-up — its
    /// culprit search (in memory while it runs) or its retry timer — is
    /// recovered by running the cycle again: a code failure fails again and
    /// starts a new search, an infrastructure error is retried. Not when
    /// the search reached a verdict (its trigger is in the policy state) or
    /// the retries were used up.
    async fn resume_unfinished_failure(&mut self, env: &str) -> anyhow::Result<()> {
        let names = [env.to_string()];
        let cycles = self.app.store.cycles(Some(&names), 20).await?;
        let Some(last) = cycles.iter().find(|c| {
            c.request.starts_with(engine::SCHEDULED_PARTIAL) || c.request.starts_with(engine::SCHEDULED_FULL)
        }) else {
            return Ok(());
        };
        if last.result != "failed" {
            return Ok(());
        }
        let decisions = self.app.store.decisions(Some(env), 200).await?;
        let settled = decisions.iter().any(|d| {
            d.cycle_id == Some(last.id)
                && ((d.kind == "search"
                    && [
                        "excluded",
                        "flaky",
                        "inconclusive",
                        "stopped after",
                        "no culprit search",
                    ]
                    .iter()
                    .any(|w| d.reason.contains(w)))
                    || (d.kind == "retry" && d.reason.contains("not retried"))
                    || d.kind == "resume")
        });
        if settled {
            return Ok(());
        }
        let reason = format!(
            "cycle {} failed and its follow-up (culprit search or retry) was cut short by a restart: it runs again",
            last.id
        );
        tracing::info!(environment = %env, "{reason}");
        self.app
            .store
            .record_decision(env, self.app.now(), "resume", &reason, &[], Some(last.id))
            .await?;
        let id = self.retry_trigger_id();
        self.step(
            env,
            Event::Trigger {
                id,
                source: format!("restart: cycle {} had failed", last.id),
                at: self.app.now(),
            },
        )
        .await;
        Ok(())
    }

    async fn handle(&mut self, w: Work) {
        match w {
            Work::Delivery(id) => {
                if id > self.processed_up_to {
                    self.process_deliveries(id).await;
                }
            }
            Work::Policy { env, event } => self.step(&env, event).await,
            Work::Restarted { env, component, result } => {
                let key = (env.clone(), component.clone());
                self.restarting.remove(&key);
                let now = self.app.now();
                let (kind, reason) = match result {
                    Ok(()) => {
                        // Keep the count: a component that dies again right away is
                        // restarted no faster than its backoff (no tight crash loop).
                        let attempts = self.crashes.get(&key).map(|(n, _)| *n).unwrap_or(0);
                        self.crashes.insert(key.clone(), (attempts, now + backoff(attempts)));
                        (
                            "supervise",
                            format!("restarted {component}: it had died; it is healthy again"),
                        )
                    }
                    Err(e) => {
                        let attempts = self.crashes.get(&key).map(|(n, _)| n + 1).unwrap_or(1);
                        self.crashes.insert(key.clone(), (attempts, now + backoff(attempts)));
                        if attempts >= MAX_RESTART_ATTEMPTS {
                            self.give_up(&env, &component).await;
                            (
                                "supervise",
                                format!("gave up restarting {component} after {attempts} attempts: {e}"),
                            )
                        } else {
                            let wait = greenroom_core::time::format_span(backoff(attempts));
                            (
                                "supervise",
                                format!("restart {attempts} of {component} failed; next try in {wait}: {e}"),
                            )
                        }
                    }
                };
                tracing::warn!(environment = %env, "{reason}");
                if let Err(e) = self
                    .app
                    .store
                    .record_decision(&env, now, kind, &reason, &[], None)
                    .await
                {
                    tracing::error!("cannot record a decision: {e}");
                }
            }
            Work::CycleDone {
                env,
                cycle,
                result,
                infra,
            } => {
                if self.running.get(&env).is_some_and(|r| r.cycle == cycle) {
                    self.running.remove(&env);
                }
                match (&result, infra) {
                    (CycleResult::Passed, _) => {
                        self.infra_failures.remove(&env);
                    }
                    (_, Some((stored, why))) => self.retry_infra(&env, stored, &why).await,
                    _ => {}
                }
                self.step(&env, Event::CycleFinished { cycle, result }).await;
            }
        }
    }

    async fn tick_due(&mut self) {
        let now = self.app.now();
        let due: Vec<String> = self
            .wakes
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(e, _)| e.clone())
            .collect();
        for env in due {
            self.wakes.remove(&env);
            self.step(&env, Event::Tick).await;
        }
    }

    /// A trigger id of greenroom's own (retries, resumes), unique across
    /// restarts: above webhook ids, below the culprit search's.
    fn retry_trigger_id(&mut self) -> u64 {
        self.next_retry += 1;
        let now = u64::try_from(self.app.now()).unwrap_or(0);
        u64::MAX / 4 + now.saturating_mul(64) + self.next_retry % 64
    }

    /// An infrastructure failure is retried with backoff (`[policy]
    /// retry_backoff`, doubled each time) up to `retry_attempts` times in a
    /// row, and never blamed on a PR: no culprit search, recorded as a
    /// decision.
    async fn retry_infra(&mut self, env: &str, stored: Option<i64>, why: &str) {
        let policy = self.app.config.policy;
        let n = self.infra_failures.get(env).copied().unwrap_or(0) + 1;
        self.infra_failures.insert(env.to_string(), n);
        let cycle = stored
            .map(|c| format!("cycle {c}"))
            .unwrap_or_else(|| "the cycle".into());
        let reason = if n > policy.retry_attempts {
            format!(
                "{cycle} failed for infrastructure ({why}); nobody is blamed; not retried: {} failure(s) in a row                  ([policy] retry_attempts = {}); the next trigger deploys again",
                n - 1,
                policy.retry_attempts
            )
        } else {
            let base = i64::try_from(policy.retry_backoff.as_millis()).unwrap_or(i64::MAX);
            let delay = greenroom_core::failure::retry_delay(base, base.saturating_mul(32), n);
            let id = self.retry_trigger_id();
            let (tx, name, app) = (self.tx.clone(), env.to_string(), self.app.clone());
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(u64::try_from(delay).unwrap_or(0))).await;
                let _ = tx.send(Work::Policy {
                    env: name,
                    event: Event::Trigger {
                        id,
                        source: "retry after an infrastructure error".into(),
                        at: app.now(),
                    },
                });
            });
            format!(
                "{cycle} failed for infrastructure ({why}); nobody is blamed; retry {n} of {} in {}",
                policy.retry_attempts,
                greenroom_core::time::format_span(delay)
            )
        };
        tracing::warn!(environment = %env, "{reason}");
        crate::notify::infra_error(&self.app, env, stored, why, &reason);
        if let Err(e) = self
            .app
            .store
            .record_decision(env, self.app.now(), "retry", &reason, &[], stored)
            .await
        {
            tracing::error!("cannot record a decision: {e}");
        }
    }

    /// Tells the policy when someone else's lease starts or ends blocking.
    async fn check_leases(&mut self) {
        for env in scheduled(&self.app) {
            let current = match self.app.store.lease(&env.name).await {
                Ok((l, _)) => l,
                Err(e) => {
                    tracing::warn!("cannot read the lease of {}: {e}", env.name);
                    continue;
                }
            };
            let alive = current
                .as_ref()
                .and_then(|l| l.process.as_ref())
                .and_then(crate::identity::alive);
            let held_by = match lease::assess(current.as_ref(), &self.app.holder, self.app.now(), alive) {
                Standing::Held => current.as_ref().map(|l| (l.holder.clone(), l.expires)),
                _ => None,
            };
            let seen = self.leases.get(&env.name).cloned().flatten();
            if seen.as_deref() != held_by.as_ref().map(|(h, _)| h.as_str()) {
                self.leases
                    .insert(env.name.clone(), held_by.as_ref().map(|(h, _)| h.clone()));
                let event = match held_by {
                    Some((holder, until)) => Event::LeaseHeldByOther {
                        holder,
                        until: Some(until),
                    },
                    None => Event::LeaseFree,
                };
                self.step(&env.name, event).await;
            }
        }
    }

    /// Feeds pauses and resumes written by the CLI or the API to the policy.
    async fn check_pauses(&mut self) {
        for env in scheduled(&self.app) {
            let wanted = match self.app.store.pause(&env.name).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("cannot read the pause state of {}: {e}", env.name);
                    continue;
                }
            };
            let Some(wanted) = wanted else { continue };
            let paused = self.states.get(&env.name).is_some_and(|s| s.paused.is_some());
            if wanted.paused && !paused {
                self.step(
                    &env.name,
                    Event::Pause {
                        by: wanted.by,
                        reason: wanted.reason,
                    },
                )
                .await;
            } else if !wanted.paused && paused {
                self.step(&env.name, Event::Resume { by: wanted.by }).await;
            }
        }
    }

    /// Restarts process-driver components that died, with backoff; never
    /// while a cycle runs on their environment.
    async fn supervise(&mut self) {
        let busy: Vec<String> = match self.app.store.running_cycles().await {
            Ok(c) => c.into_iter().map(|c| c.environment).collect(),
            Err(e) => {
                tracing::warn!("cannot read running cycles: {e}");
                return;
            }
        };
        let driver = greenroom_driver::ProcessDriver::new(self.app.supervisor.clone());
        let now = self.app.now();
        for inst in self.app.config.instances() {
            let Some(env) = self.app.config.environment(&inst.environment) else {
                continue;
            };
            if env.driver != greenroom_core::config::DriverKind::Process || busy.contains(&inst.name) {
                continue;
            }
            let Ok(deployed) = self.app.store.deployed(&inst.name).await else {
                continue;
            };
            for d in deployed {
                let dead = match d.state.as_str() {
                    "running" => engine::live_state(&driver, &d).starts_with("dead"),
                    "crashed" => true,
                    _ => false,
                };
                let key = (inst.name.clone(), d.component.clone());
                if !dead || self.restarting.contains(&key) {
                    continue;
                }
                if self.crashes.get(&key).is_some_and(|(_, next)| *next > now) {
                    continue;
                }
                self.restarting.insert(key);
                let (app, tx, inst) = (self.app.clone(), self.tx.clone(), inst.clone());
                tokio::spawn(async move {
                    let result = engine::restart_component(&app, &inst, &d)
                        .await
                        .map_err(|e| format!("{e:#}"));
                    let _ = tx.send(Work::Restarted {
                        env: inst.name.clone(),
                        component: d.component.clone(),
                        result,
                    });
                });
            }
        }
    }

    async fn give_up(&mut self, env: &str, component: &str) {
        if let Ok(rows) = self.app.store.deployed(env).await
            && let Some(d) = rows.into_iter().find(|d| d.component == component)
        {
            let failed = greenroom_store::Deployed {
                state: "failed".into(),
                updated_at: self.app.now(),
                ..d
            };
            if let Err(e) = self.app.store.set_deployed(&failed).await {
                tracing::error!("cannot record that {component} failed: {e}");
            }
        }
        self.crashes.remove(&(env.to_string(), component.to_string()));
    }

    /// Feeds one event to an environment's policy and carries out what it
    /// asks, including the events that follow at once (no drain configured).
    async fn step(&mut self, env_name: &str, event: Event) {
        let Some(env) = self.app.config.environment(env_name).cloned() else {
            return;
        };
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let now = self.app.now();
            let state = self
                .states
                .get(env_name)
                .cloned()
                .unwrap_or_else(|| State::new(env_name));
            let (next, actions) = policy::step(&state, &event, now, &self.app.config.policy);
            if let Ok(json) = serde_json::to_string(&next)
                && let Err(e) = self.app.store.save_policy_state(env_name, &json, now).await
            {
                tracing::error!("cannot save the policy state of {env_name}: {e}");
            }
            self.states.insert(env_name.to_string(), next);
            self.wakes.remove(env_name);
            for action in actions {
                match action {
                    Action::Record(d) => {
                        let kind = serde_json::to_value(d.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_else(|| format!("{:?}", d.kind));
                        tracing::info!(environment = env_name, "{kind}: {}", d.reason);
                        if let Err(e) = self
                            .app
                            .store
                            .record_decision(env_name, d.at, &kind, &d.reason, &d.triggers, None)
                            .await
                        {
                            tracing::error!("cannot record a decision: {e}");
                        }
                    }
                    Action::WakeAt(t) => {
                        self.wakes.insert(env_name.to_string(), t);
                    }
                    Action::Drain => match env.drain.clone() {
                        None => queue.push_back(Event::DrainDone),
                        Some(drain) => self.drain(&env, drain),
                    },
                    Action::StartCycle { kind, triggers, .. } => {
                        self.next_cycle += 1;
                        let cycle = self.next_cycle;
                        queue.push_back(Event::CycleStarted { cycle, kind });
                        self.start_cycle(&env, cycle, kind, &triggers);
                    }
                    Action::Restart { cycle, .. } => {
                        if let Some(r) = self.running.get(env_name).filter(|r| r.cycle == cycle) {
                            r.restart.store(true, Ordering::SeqCst);
                            r.cancel.store(true, Ordering::SeqCst);
                        }
                    }
                    Action::PollRefs => self.poll(&env),
                }
            }
        }
    }

    fn drain(&self, env: &Environment, drain: String) {
        let (app, tx, name, timeout) = (self.app.clone(), self.tx.clone(), env.name.clone(), env.drain_timeout);
        tokio::spawn(async move {
            let event = if drain.starts_with("http://") {
                let alive = || true;
                match greenroom_driver::wait_healthy(
                    &greenroom_driver::HealthCheck::Http { url: drain },
                    timeout,
                    &alive,
                )
                .await
                {
                    Ok(_) => Event::DrainDone,
                    Err(_) => Event::DrainTimedOut,
                }
            } else {
                let spec = greenroom_driver::CommandSpec {
                    command: drain,
                    cwd: app.paths.root.clone(),
                    env: vec![("GREENROOM_ENV".into(), name.clone())],
                    secret_values: vec![],
                    log_path: app.paths.logs().join(&name).join("drain.log"),
                    timeout,
                };
                match greenroom_driver::run_command(&spec).await {
                    Ok(o) if o.success => Event::DrainDone,
                    _ => Event::DrainTimedOut,
                }
            };
            let _ = tx.send(Work::Policy { env: name, event });
        });
    }

    fn start_cycle(&mut self, env: &Environment, cycle: u64, kind: CycleKind, triggers: &[u64]) {
        let cancel = Arc::new(AtomicBool::new(false));
        let restart = Arc::new(AtomicBool::new(false));
        self.running.insert(
            env.name.clone(),
            Running {
                cycle,
                cancel: cancel.clone(),
                restart: restart.clone(),
            },
        );
        let (app, tx, name) = (self.app.clone(), self.tx.clone(), env.name.clone());
        let text = format!(
            "{} for trigger(s) {}",
            if kind == CycleKind::Full {
                engine::SCHEDULED_FULL
            } else {
                engine::SCHEDULED_PARTIAL
            },
            triggers.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
        );
        let env = env.clone();
        let kind_text = if kind == CycleKind::Full { "full" } else { "partial" };
        tokio::spawn(async move {
            let mut infra = None;
            let result = loop {
                // Deploy blockers (freeze windows, firing alerts): wait,
                // saying why; stage and resolve only once they lift, so
                // what deploys then is what is newest.
                if wait_for_blockers(&app, &env, &cancel, &restart).await {
                    break CycleResult::Cancelled;
                }
                let (req, staged) = match scheduled_request(&app, &env, &text, false, kind == CycleKind::Full).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(environment = %name, "cannot stage the pending set: {e:#}");
                        infra = Some((None, format!("cannot stage the pending set: {e:#}")));
                        break CycleResult::Failed;
                    }
                };
                let mut req = req;
                req.cancel = Some(cancel.clone());
                let deployments = match &staged {
                    Some(s) => crate::feedback::started(&app, &name, s, kind_text).await,
                    None => Default::default(),
                };
                let outcome = engine::deploy(&app, &req, &Silent).await;
                let restarting = restart.swap(false, Ordering::SeqCst);
                if let (Ok(r), false) = (&outcome, restarting) {
                    crate::notify::cycle_ended(&app, kind_text, r);
                    // `promote_to`: a verified manifest moves on, after its soak.
                    crate::promote::after_cycle(&app, &env, r);
                }
                if let Some(s) = &staged
                    && !restarting
                {
                    let err = outcome.as_ref().err().map(|e| format!("{e:#}"));
                    let report = match (&outcome, &err) {
                        (Ok(r), _) => Ok(r),
                        (Err(_), Some(e)) => Err(e.as_str()),
                        (Err(_), None) => Err("unknown error"),
                    };
                    crate::feedback::finished(&app, &name, s, kind_text, report, &deployments).await;
                    // A blocking suite failed on several PRs at once: find the faulty one.
                    if let Ok(r) = &outcome
                        && s.set.units.len() > 1
                        && let (Some(suite), Some(cycle)) = (super::search::failing_gate(r), r.cycle)
                    {
                        let job = super::search::Job {
                            env: name.clone(),
                            staged: s.clone(),
                            suite,
                            cycle,
                            trigger: (u64::MAX / 2).saturating_add(u64::try_from(cycle).unwrap_or(0)),
                            gate_only: false,
                        };
                        tokio::spawn(super::search::run(app.clone(), tx.clone(), job));
                    } else if let Ok(r) = &outcome
                        && r.result == "succeeded"
                        && s.set.units.len() > 1
                        && let Some(cycle) = r.cycle
                    {
                        // Gates failed on several PRs: a search per gate, one
                        // after the other, decides who gets the red status.
                        let gates = super::search::failing_gates(r);
                        if !gates.is_empty() {
                            let (app, tx, staged, env) = (app.clone(), tx.clone(), s.clone(), name.clone());
                            tokio::spawn(async move {
                                for gate in gates {
                                    let job = super::search::Job {
                                        env: env.clone(),
                                        staged: staged.clone(),
                                        suite: Some(gate),
                                        cycle,
                                        trigger: 0,
                                        gate_only: true,
                                    };
                                    super::search::run(app.clone(), tx.clone(), job).await;
                                }
                            });
                        }
                    }
                }
                if restarting {
                    cancel.store(false, Ordering::SeqCst);
                    continue;
                }
                break match outcome {
                    Ok(r) if r.result == "succeeded" => CycleResult::Passed,
                    Ok(r) if r.result == "cancelled" => CycleResult::Cancelled,
                    Ok(r) => {
                        if r.failure_class() == Some(greenroom_core::failure::Class::Infra) {
                            let why = r
                                .failure
                                .as_ref()
                                .map(|f| match &f.subject {
                                    Some(s) => format!("{} of {s}: {}", f.stage, f.why),
                                    None => format!("{}: {}", f.stage, f.why),
                                })
                                .unwrap_or_else(|| "greenroom could not carry out the cycle".into());
                            infra = Some((r.cycle, why));
                        }
                        tracing::warn!(environment = %name, "cycle {:?} {}: {}", r.cycle, r.result, r.error.unwrap_or_default());
                        CycleResult::Failed
                    }
                    Err(e) => {
                        tracing::warn!(environment = %name, "scheduled cycle could not run: {e:#}");
                        infra = Some((None, format!("the cycle could not run: {e:#}")));
                        CycleResult::Failed
                    }
                };
            };
            let _ = tx.send(Work::CycleDone {
                env: name,
                cycle,
                result,
                infra,
            });
        });
    }

    fn poll(&self, env: &Environment) {
        let (app, tx, name, env) = (self.app.clone(), self.tx.clone(), env.name.clone(), env.clone());
        tokio::spawn(async move {
            let req = match scheduled_request(&app, &env, "poll", true, false).await {
                Ok((req, _)) => req,
                Err(e) => {
                    tracing::warn!(environment = %name, "cannot stage the pending set: {e:#}");
                    let _ = tx.send(Work::Policy {
                        env: name,
                        event: Event::PollResult { changed: false },
                    });
                    return;
                }
            };
            let current = app
                .store
                .environment_manifest(&name)
                .await
                .ok()
                .flatten()
                .and_then(|(m, _)| m);
            let changed = match engine::deploy(&app, &req, &Silent).await {
                Ok(plan) => plan.manifest != current,
                Err(e) => {
                    tracing::warn!(environment = %name, "cannot check the followed refs: {e:#}");
                    false
                }
            };
            let _ = tx.send(Work::Policy {
                env: name,
                event: Event::PollResult { changed },
            });
        });
    }

    /// Processes stored, unprocessed deliveries in order, a page at a time,
    /// up to row id `upto` (a delivery stored later is announced by its own
    /// message).
    async fn process_deliveries(&mut self, upto: i64) {
        const PAGE: i64 = 64;
        loop {
            let page = match self.app.store.unprocessed_deliveries(self.processed_up_to, PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("cannot read deliveries: {e}");
                    return;
                }
            };
            let full = page.len() as i64 == PAGE;
            let mut done = Vec::new();
            let mut past = false;
            for d in page {
                if d.id > upto {
                    past = true;
                    break;
                }
                let id = d.id;
                let (outcome, detail) = self.delivery(d).await;
                done.push((id, outcome, detail));
                self.processed_up_to = id;
            }
            // What each delivery led to, recorded for the page at once (a
            // crash before this re-processes the page: triggers are
            // recognised by id, at least once is the promise).
            if let Err(e) = self.app.store.finish_deliveries(&done, self.app.now()).await {
                tracing::error!("cannot record what was done with {} deliveries: {e}", done.len());
            }
            if past {
                return;
            }
            if !full {
                // Everything stored up to `upto` is processed (rows that were
                // not `accepted` had been processed before).
                if upto != i64::MAX {
                    self.processed_up_to = self.processed_up_to.max(upto);
                }
                return;
            }
        }
    }

    /// What a delivery means: triggers for the environments that follow what
    /// it changed, or just a record.
    async fn delivery(&mut self, d: DeliveryRecord) -> (&'static str, String) {
        // Parsed once: deliveries are large and arrive by the thousand.
        let forge = match d.source.as_str() {
            "github" => Forge::Github,
            "gitlab" => Forge::Gitlab,
            _ => Forge::Package,
        };
        let parsed = greenroom_webhook::parse(forge, &stored_headers(forge, &d), d.body.as_bytes());
        if let Some(c) = parsed.as_ref().ok().and_then(|p| self.command(&d, p)) {
            // Commands talk to the forge: they run beside the scheduler and
            // send their policy events back through the work queue.
            let detail = format!(
                "comment {} by {} on {}#{}: commands handled",
                c.comment_id, c.author, c.repo, c.number
            );
            tokio::spawn(super::commands::handle(self.app.clone(), self.tx.clone(), c));
            return ("command", detail);
        }
        // A pushed version of a feed component behind what is known or runs
        // triggers nothing (never backwards); a newer one becomes the newest.
        if let Ok(greenroom_webhook::Delivery {
            kind: EventKind::Package { name, version, .. },
            ..
        }) = &parsed
            && let Some(done) = crate::feeds::pushed(&self.app, name, version, &d.delivery_id).await
        {
            return done;
        }
        let (outcome, detail, envs) = match &parsed {
            Ok(p) => self.meaning(forge, p),
            Err(e) => ("failed", format!("cannot parse the stored delivery: {e}"), vec![]),
        };
        let trigger_id = u64::try_from(d.id).unwrap_or(0);
        for env in &envs {
            self.step(
                env,
                Event::Trigger {
                    id: trigger_id,
                    source: detail.clone(),
                    at: d.received_at,
                },
            )
            .await;
        }
        let detail = if envs.is_empty() {
            detail
        } else {
            format!("{detail}: trigger {trigger_id} for {}", envs.join(", "))
        };
        (outcome, detail)
    }

    /// A comment on a pull request that may hold commands, or the deploy
    /// label added to one (it acts like `@bot deploy` by the label's adder).
    fn command(&self, d: &DeliveryRecord, parsed: &greenroom_webhook::Delivery) -> Option<super::commands::Comment> {
        if !matches!(d.source.as_str(), "github" | "gitlab") {
            return None;
        }
        let repo = parsed.repo.clone()?;
        let delivery = u64::try_from(d.id).ok()?;
        match parsed.kind.clone() {
            EventKind::Comment {
                number: Some(number),
                is_pull_request: true,
                comment_id,
                author,
                body,
                action,
                ..
            } if action == "created" || action == "edited" => Some(super::commands::Comment {
                source: d.source.clone(),
                repo,
                number,
                comment_id,
                author,
                body,
                action,
                delivery,
            }),
            EventKind::PullRequest {
                number,
                labels_added,
                author,
                ..
            } if labels_added
                .iter()
                .any(|l| l.eq_ignore_ascii_case(&self.app.config.pending.deploy_label)) =>
            {
                // Only people who may label may add it: taken as a maintainer's
                // `deploy` (the label is removed by nobody: it stays a record).
                Some(super::commands::Comment {
                    source: d.source.clone(),
                    repo,
                    number,
                    comment_id: 0,
                    author: format!("label:{author}"),
                    body: format!("@{} deploy", self.app.config.pending.bot),
                    action: "label".into(),
                    delivery,
                })
            }
            _ => None,
        }
    }

    fn meaning(&self, forge: Forge, parsed: &greenroom_webhook::Delivery) -> (&'static str, String, Vec<String>) {
        let repo = parsed.repo.clone().unwrap_or_default();
        let owns = |c: &Component| match forge {
            Forge::Github => c.github.as_deref() == Some(repo.as_str()),
            Forge::Gitlab => c.gitlab.as_deref() == Some(repo.as_str()),
            Forge::Package => false,
        };
        let matching: Vec<&Component> = match &parsed.kind {
            EventKind::Push {
                git_ref,
                deleted: false,
                ..
            } => {
                let Some(branch) = git_ref.strip_prefix("refs/heads/") else {
                    return ("recorded", format!("push to {git_ref} of {repo}"), vec![]);
                };
                self.app
                    .config
                    .components
                    .iter()
                    .filter(|c| owns(c))
                    .filter(|c| matches!(c.channels.get("stg"), Some(ChannelSource::Branch(b)) if b == branch))
                    .collect()
            }
            EventKind::TagPush {
                tag, deleted: false, ..
            } => self
                .app
                .config
                .components
                .iter()
                .filter(|c| owns(c))
                .filter(|c| match c.channels.get("stg") {
                    Some(ChannelSource::TagPattern(p)) => globset::Glob::new(p)
                        .map(|g| g.compile_matcher().is_match(tag))
                        .unwrap_or(false),
                    _ => false,
                })
                .collect(),
            EventKind::Package { name, .. } if forge == Forge::Package => {
                self.app.config.components.iter().filter(|c| &c.name == name).collect()
            }
            EventKind::PullRequest {
                number,
                action,
                base_ref,
                ..
            } => {
                // A closed (or merged) PR's preview environments go.
                if action == "closed" {
                    let (app, repo, number) = (self.app.clone(), repo.clone(), *number);
                    tokio::spawn(async move {
                        for name in crate::ephemeral::close_previews(&app, &repo, number).await {
                            tracing::info!("preview {name} destroyed: {repo}#{number} closed");
                        }
                    });
                }
                // A push renews the PR's previews and deploys the new head there.
                if action == "synchronize" {
                    let (app, repo, number) = (self.app.clone(), repo.clone(), *number);
                    tokio::spawn(async move {
                        for name in crate::ephemeral::refresh_previews(&app, &repo, number).await {
                            tracing::info!("preview {name} renewed: {repo}#{number} was pushed to");
                        }
                    });
                }
                // Only environments that stage pending PRs care, and only for
                // what changes the pending set.
                if !PENDING_ACTIONS.contains(&action.as_str()) {
                    return (
                        "recorded",
                        format!("pull request {repo}#{number} {action}: stored"),
                        vec![],
                    );
                }
                let matching: Vec<&Component> = self
                    .app
                    .config
                    .components
                    .iter()
                    .filter(|c| owns(c))
                    .filter(|c| matches!(c.channels.get("stg"), Some(ChannelSource::Branch(b)) if b == base_ref))
                    .collect();
                let envs: Vec<String> = scheduled(&self.app)
                    .into_iter()
                    .filter(|e| e.follows == greenroom_core::config::Follows::Pending)
                    .filter(|e| matching.iter().any(|c| e.components.contains(&c.name)))
                    .map(|e| e.name)
                    .collect();
                let what = format!("pull request {repo}#{number} {action}");
                if envs.is_empty() {
                    return (
                        "recorded",
                        format!("{what}: no environment stages pending PRs of it"),
                        vec![],
                    );
                }
                return ("trigger", what, envs);
            }
            EventKind::Ping => return ("recorded", format!("ping from {repo}"), vec![]),
            EventKind::Other => {
                return (
                    "ignored",
                    format!("{} event: not used by greenroom", parsed.event),
                    vec![],
                );
            }
            _ => {
                return (
                    "recorded",
                    format!(
                        "{} {} of {repo}: stored",
                        parsed.event,
                        parsed.action.clone().unwrap_or_default()
                    ),
                    vec![],
                );
            }
        };
        let what = match &parsed.kind {
            EventKind::Push { git_ref, after, .. } => {
                format!(
                    "push {repo} {} {}",
                    git_ref.trim_start_matches("refs/heads/"),
                    &after[..after.len().min(12)]
                )
            }
            EventKind::TagPush { tag, .. } => format!("tag {repo} {tag}"),
            EventKind::Package { name, version, .. } => format!("package {name} {version}"),
            _ => parsed.event.clone(),
        };
        if matching.is_empty() {
            return ("recorded", format!("{what}: no component follows it"), vec![]);
        }
        let envs: Vec<String> = scheduled(&self.app)
            .into_iter()
            .filter(|e| matching.iter().any(|c| e.components.contains(&c.name)))
            .map(|e| e.name)
            .collect();
        if envs.is_empty() {
            return (
                "recorded",
                format!("{what}: no scheduled environment deploys it"),
                vec![],
            );
        }
        ("trigger", what, envs)
    }
}

/// The headers a stored delivery was parsed with (event name and id).
fn stored_headers(forge: Forge, d: &DeliveryRecord) -> Vec<(String, String)> {
    use greenroom_webhook::headers as h;
    match forge {
        Forge::Github => vec![
            (h::GITHUB_EVENT.into(), d.event.clone()),
            (h::GITHUB_DELIVERY.into(), d.delivery_id.clone()),
        ],
        Forge::Gitlab => vec![
            (h::GITLAB_EVENT.into(), d.event.clone()),
            (h::IDEMPOTENCY_KEY.into(), d.delivery_id.clone()),
        ],
        Forge::Package => vec![(h::GREENROOM_DELIVERY.into(), d.delivery_id.clone())],
    }
}
