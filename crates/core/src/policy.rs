//! The scheduling policy of one environment (seed 002), as a pure state machine.
//!
//! This module owns *when* cycles start on an environment and *what kind* they
//! are: full cycles at most once per `full_interval`, partial cycles for
//! triggers in between, polling followed refs once a full cycle is due,
//! restarting a running partial cycle on new triggers (at most `max_restarts`
//! times, never a full cycle), settle and cooldown windows, draining before
//! every (re)deploy, pause/resume, waiting for someone else's lease, and admin
//! overrides. Every decision carries a human reason ([`Decision`]).
//!
//! It must never do I/O, read a clock, sleep or spawn anything: [`step`] takes
//! the current [`State`], one [`Event`] and `now`, and returns the next state
//! and the [`Action`]s the server must carry out. The state is plain data
//! (serde) so the server persists it after every step and resumes from it
//! after a restart.
//!
//! The conversation with the server:
//!
//! - [`Action::WakeAt`]: call [`step`] with [`Event::Tick`] at that time (each
//!   `WakeAt` replaces the previous one; none means "nothing timed").
//! - [`Action::Drain`]: drain the environment, then answer
//!   [`Event::DrainDone`] (at once when no drain is configured) or
//!   [`Event::DrainTimedOut`]. The policy also gives up by itself after
//!   `drain_timeout`.
//! - [`Action::StartCycle`]: create and run the cycle, answer
//!   [`Event::CycleStarted`] with its id, later [`Event::CycleFinished`].
//! - [`Action::Restart`]: stop the running cycle's current stage and run it
//!   again from its first stage, now including the listed triggers.
//! - [`Action::PollRefs`]: check the followed refs, answer
//!   [`Event::PollResult`].
//! - [`Action::Record`]: store the decision (API, `greenroom status`).

use crate::time::{self, Millis};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Default minimum time between two full cycles (seed 002: 6 hours).
pub const DEFAULT_FULL_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// Default time between two checks of the followed refs once a full cycle is due.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// Default number of times one partial cycle may be restarted by new triggers.
pub const DEFAULT_MAX_RESTARTS: u32 = 1;
/// Default throttle after a cycle finished (seed 002: 30 minutes).
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30 * 60);
/// Default wait after a trigger for last-minute fixups (seed 002: 5 minutes).
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(5 * 60);
/// Default time a drain may take before the cycle starts anyway.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The first wait before a cycle that failed for infrastructure is retried.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(60);
/// How many infrastructure failures in a row are retried.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 5;

/// The numbers of the policy (`[policy]` in `greenroom.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyConfig {
    /// Minimum time between the starts of two full cycles (admin overrides excepted).
    pub full_interval: Duration,
    /// How often the followed refs are checked once a full cycle is due.
    pub poll_interval: Duration,
    /// How many times a running partial cycle may be restarted by new triggers.
    pub max_restarts: u32,
    /// After a cycle finished, triggers wait until this much time has passed.
    pub cooldown: Duration,
    /// A trigger outside the cooldown starts a cycle after this long.
    pub settle: Duration,
    /// How long a drain may take before the (re)deploy goes ahead anyway.
    pub drain_timeout: Duration,
    /// A scheduled cycle that failed for infrastructure (`core::failure`) is
    /// retried after this long, doubled for each failure in a row (at most
    /// 32 times it).
    pub retry_backoff: Duration,
    /// How many infrastructure failures in a row are retried (0: none).
    pub retry_attempts: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            full_interval: DEFAULT_FULL_INTERVAL,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_restarts: DEFAULT_MAX_RESTARTS,
            cooldown: DEFAULT_COOLDOWN,
            settle: DEFAULT_SETTLE,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            retry_attempts: DEFAULT_RETRY_ATTEMPTS,
        }
    }
}

/// Full (deploy + the full test suites) or partial (deploy + smoke tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CycleKind {
    /// Deploy and run every test suite; at most once per `full_interval`.
    Full,
    /// Deploy and run the smoke tests only.
    Partial,
}

impl fmt::Display for CycleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CycleKind::Full => "full",
            CycleKind::Partial => "partial",
        })
    }
}

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CycleResult {
    /// Every stage passed.
    Passed,
    /// A stage or gate failed.
    Failed,
    /// Someone cancelled it.
    Cancelled,
    /// The server died while it ran.
    Interrupted,
}

impl fmt::Display for CycleResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CycleResult::Passed => "passed",
            CycleResult::Failed => "failed",
            CycleResult::Cancelled => "cancelled",
            CycleResult::Interrupted => "interrupted",
        })
    }
}

/// Something that happened to the environment; the input of [`step`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A change the environment follows (push to a followed branch, a pending
    /// PR updated, ...). `id` is unique per environment; `source` is for
    /// people ("push ogr main", "pr 614 synchronize"); `at` is when it happened.
    Trigger {
        /// Unique id (the server's delivery/trigger id).
        id: u64,
        /// What happened, for people.
        source: String,
        /// When it happened (the policy schedules from `now`).
        at: Millis,
    },
    /// An explicit deploy request (CLI, API, `@bot deploy` / `@bot trigger`).
    Deploy {
        /// Unique id, from the same space as trigger ids.
        id: u64,
        /// Who asked.
        by: String,
        /// Whether they are an admin: admins skip settle and cooldown, and
        /// may run a full cycle inside `full_interval` (an override).
        admin: bool,
        /// A full cycle was asked for (`--full`, `@bot trigger`); otherwise the
        /// kind follows the `full_interval` rule.
        full: bool,
    },
    /// Time passed: the server's timer (see [`Action::WakeAt`]).
    Tick,
    /// A cycle started, normally in answer to [`Action::StartCycle`]; a cycle
    /// the scheduler did not ask for is adopted as the running one.
    CycleStarted {
        /// The server's cycle id.
        cycle: u64,
        /// What kind it is.
        kind: CycleKind,
    },
    /// A cycle ended.
    CycleFinished {
        /// The server's cycle id.
        cycle: u64,
        /// How it ended.
        result: CycleResult,
    },
    /// The drain asked for by [`Action::Drain`] finished.
    DrainDone,
    /// The drain asked for by [`Action::Drain`] gave up.
    DrainTimedOut,
    /// Nothing new may start until [`Event::Resume`].
    Pause {
        /// Who paused.
        by: String,
        /// Why.
        reason: String,
    },
    /// Lift a pause.
    Resume {
        /// Who resumed.
        by: String,
    },
    /// Someone else holds the environment's lease: scheduled cycles wait.
    LeaseHeldByOther {
        /// The holder.
        holder: String,
        /// When the lease expires, if it does.
        until: Option<Millis>,
    },
    /// The lease was released or expired.
    LeaseFree,
    /// The answer to [`Action::PollRefs`].
    PollResult {
        /// Whether a followed ref moved since the last full cycle.
        changed: bool,
    },
}

/// What the server must do; the output of [`step`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Drain the environment, then answer [`Event::DrainDone`] or [`Event::DrainTimedOut`].
    Drain,
    /// Start a cycle, then answer [`Event::CycleStarted`].
    StartCycle {
        /// Full or partial.
        kind: CycleKind,
        /// The triggers and deploy requests it serves.
        triggers: Vec<u64>,
        /// A full cycle inside `full_interval`, allowed by an admin.
        #[serde(rename = "override")]
        override_: bool,
    },
    /// Run the running (partial) cycle again from its first stage.
    Restart {
        /// The cycle.
        cycle: u64,
        /// Triggers added to the cycle by this restart.
        triggers: Vec<u64>,
        /// 1 for the first restart of this cycle, 2 for the second, ...
        attempt: u32,
    },
    /// Call [`step`] with [`Event::Tick`] at this time (replaces earlier wake-ups).
    WakeAt(Millis),
    /// Check the followed refs and answer [`Event::PollResult`].
    PollRefs,
    /// Store this decision.
    Record(Decision),
}

/// What a decision was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// A trigger starts a cycle after the settle time.
    Scheduled,
    /// A trigger waits for the cooldown after the last cycle.
    Deferred,
    /// A trigger joined a pending, starting or restarting cycle.
    Joined,
    /// A trigger waits for the running cycle to finish.
    Queued,
    /// A trigger is kept while the environment is paused.
    Held,
    /// A cycle waits for someone else's lease.
    Waiting,
    /// An admin skipped settle/cooldown or ran a full cycle early.
    Override,
    /// Draining before a (re)deploy.
    Drain,
    /// The drain took longer than `drain_timeout`; going ahead.
    DrainTimedOut,
    /// A cycle starts (the reason says why full or partial).
    Start,
    /// A running partial cycle restarts (decided, or carried out).
    Restart,
    /// A cycle finished.
    Finished,
    /// The followed refs were checked.
    Poll,
    /// The environment was paused.
    Paused,
    /// The environment was resumed.
    Resumed,
    /// Someone else's lease was taken or released.
    Lease,
    /// An event that changes nothing (duplicate, stale, unexpected).
    Ignored,
}

/// One decision of the policy, with the reason people read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// When it was taken.
    pub at: Millis,
    /// What it was about.
    pub kind: DecisionKind,
    /// Why, in words: "partial: last full cycle 2h 10m ago, next full allowed ...".
    pub reason: String,
    /// The triggers it concerns.
    pub triggers: Vec<u64>,
    /// The cycle it concerns, if one has an id.
    pub cycle: Option<u64>,
}

/// Who asked for an explicit deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explicit {
    /// The person.
    pub by: String,
    /// Whether they are an admin.
    pub admin: bool,
    /// Whether they asked for a full cycle.
    pub full: bool,
}

/// A trigger or deploy request not yet part of a started cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Its id.
    pub id: u64,
    /// What happened, for people.
    pub source: String,
    /// When it happened.
    pub at: Millis,
    /// When the policy learnt of it.
    pub received: Millis,
    /// Set for explicit deploy requests.
    pub explicit: Option<Explicit>,
}

impl Request {
    fn is_admin(&self) -> bool {
        self.explicit.as_ref().is_some_and(|e| e.admin)
    }

    /// An admin asking for a full cycle: a restart of a partial cycle cannot serve it.
    fn is_admin_full(&self) -> bool {
        self.explicit.as_ref().is_some_and(|e| e.admin && e.full)
    }

    fn describe(&self) -> String {
        match &self.explicit {
            None => format!("trigger {} ({})", self.id, self.source),
            Some(e) => format!(
                "deploy {} by {}{}",
                self.id,
                e.by,
                match (e.admin, e.full) {
                    (true, true) => " (admin, full)",
                    (true, false) => " (admin)",
                    (false, true) => " (full)",
                    (false, false) => "",
                }
            ),
        }
    }
}

/// Who paused the environment, why and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseInfo {
    /// Who.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub since: Millis,
}

/// Someone else's lease on the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// Who holds it.
    pub holder: String,
    /// When it expires, if it does.
    pub until: Option<Millis>,
    /// Since when the policy knows of it.
    pub since: Millis,
}

/// The start of the last full cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullMark {
    /// When it was started.
    pub at: Millis,
    /// Its id, once the server reported it.
    pub cycle: Option<u64>,
    /// Whether it was an admin override.
    pub override_: bool,
}

/// The last cycle that finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedMark {
    /// Its id.
    pub cycle: u64,
    /// Its kind.
    pub kind: CycleKind,
    /// How it ended.
    pub result: CycleResult,
    /// When it ended.
    pub at: Millis,
}

/// A drain the policy is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainWait {
    /// When it was asked for.
    pub since: Millis,
    /// When the policy stops waiting.
    pub deadline: Millis,
}

/// The cycle running on the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningCycle {
    /// The server's id.
    pub cycle: u64,
    /// Full or partial.
    pub kind: CycleKind,
    /// Every trigger it serves (including those added by restarts).
    pub triggers: Vec<u64>,
    /// Restarts decided so far.
    pub restarts: u32,
    /// When it started.
    pub started_at: Millis,
    /// Whether it is an admin's full override.
    pub override_: bool,
    /// Set while a decided restart waits for its drain.
    pub restart_drain: Option<DrainWait>,
}

/// Where the environment is in its cycle life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// No cycle running; maybe one pending (see [`State::due`]).
    Idle,
    /// Draining before starting a cycle.
    Draining(DrainWait),
    /// [`Action::StartCycle`] was sent; waiting for [`Event::CycleStarted`].
    Starting {
        /// Kind asked for.
        kind: CycleKind,
        /// Triggers it serves.
        triggers: Vec<u64>,
        /// Admin override.
        override_: bool,
        /// When it was asked for.
        since: Millis,
    },
    /// A cycle runs.
    Running(RunningCycle),
}

/// The policy's state for one environment: plain data, persisted by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The environment's name (used in reasons).
    pub environment: String,
    /// The cycle life.
    pub phase: Phase,
    /// Triggers not yet part of a started cycle, in arrival order.
    pub pending: Vec<Request>,
    /// When the pending cycle starts (set only while idle, unpaused, with work).
    pub due: Option<Millis>,
    /// Why it starts then.
    pub due_reason: Option<String>,
    /// Set when a poll found changes: the next cycle is full.
    pub full_wanted: Option<String>,
    /// The start of the last full cycle.
    pub last_full: Option<FullMark>,
    /// The last cycle that finished.
    pub last_finished: Option<FinishedMark>,
    /// Set while paused.
    pub paused: Option<PauseInfo>,
    /// Set while someone else holds the lease.
    pub lease: Option<LeaseInfo>,
    /// When the followed refs were last checked.
    pub last_poll: Option<Millis>,
    /// The due time for which "waiting for the lease" was already recorded.
    pub blocked_at_due: Option<Millis>,
}

/// The next thing the policy will do, and why (for the API and `greenroom status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextAction {
    /// When, if it is timed; `None` when it waits for an event (a cycle to
    /// finish, a drain, a resume, a lease).
    pub at: Option<Millis>,
    /// What and why.
    pub what: String,
}

impl State {
    /// A fresh environment: nothing ran yet, so the first poll is due at once.
    pub fn new(environment: impl Into<String>) -> State {
        State {
            environment: environment.into(),
            phase: Phase::Idle,
            pending: Vec::new(),
            due: None,
            due_reason: None,
            full_wanted: None,
            last_full: None,
            last_finished: None,
            paused: None,
            lease: None,
            last_poll: None,
            blocked_at_due: None,
        }
    }

    /// Whether something waits to be deployed.
    pub fn has_work(&self) -> bool {
        !self.pending.is_empty() || self.full_wanted.is_some()
    }

    /// The running cycle, if any.
    pub fn running(&self) -> Option<&RunningCycle> {
        match &self.phase {
            Phase::Running(r) => Some(r),
            _ => None,
        }
    }

    /// When the next full cycle is allowed without an override (`None`: now).
    pub fn full_allowed_at(&self, cfg: &PolicyConfig) -> Option<Millis> {
        self.last_full.as_ref().map(|f| time::add(f.at, cfg.full_interval))
    }

    /// When the followed refs will next be checked, if polling is active.
    pub fn next_poll(&self, cfg: &PolicyConfig) -> Option<Millis> {
        if self.phase != Phase::Idle || self.paused.is_some() || self.lease.is_some() || self.has_work() {
            return None;
        }
        let allowed = self.full_allowed_at(cfg).unwrap_or(Millis::MIN);
        let interval = cfg.poll_interval.max(Duration::from_secs(1));
        let next = self.last_poll.map(|p| time::add(p, interval)).unwrap_or(Millis::MIN);
        Some(allowed.max(next))
    }

    /// The next scheduled action and why.
    pub fn next_action(&self, cfg: &PolicyConfig) -> NextAction {
        let waiting = |what: String| NextAction { at: None, what };
        match &self.phase {
            Phase::Draining(d) => NextAction {
                at: Some(d.deadline),
                what: format!(
                    "draining {} before a cycle (gives up at {}); then start it for {}",
                    self.environment,
                    time::format(d.deadline),
                    ids_or_none(&self.pending)
                ),
            },
            Phase::Starting { kind, .. } => waiting(format!("a {kind} cycle is starting")),
            Phase::Running(r) => match r.restart_drain {
                Some(d) => NextAction {
                    at: Some(d.deadline),
                    what: format!(
                        "restart {}/{} of cycle {} after the drain (gives up at {}) for {}",
                        r.restarts,
                        cfg.max_restarts,
                        r.cycle,
                        time::format(d.deadline),
                        ids_or_none(&self.pending)
                    ),
                },
                None if !self.pending.is_empty() => waiting(format!(
                    "waiting for {} cycle {} to finish: {}",
                    r.kind,
                    r.cycle,
                    ids_or_none(&self.pending)
                )),
                None => waiting(format!(
                    "{} cycle {} running since {}",
                    r.kind,
                    r.cycle,
                    time::format(r.started_at)
                )),
            },
            Phase::Idle => {
                if let Some(p) = &self.paused {
                    return waiting(format!(
                        "paused by {} since {} ({}); held: {}",
                        p.by,
                        time::format(p.since),
                        p.reason,
                        ids_or_none(&self.pending)
                    ));
                }
                if let Some(due) = self.due {
                    let why = self.due_reason.clone().unwrap_or_default();
                    if let Some(l) = &self.lease {
                        return waiting(format!(
                            "waiting: {}; then a cycle ({why})",
                            lease_text(&self.environment, l)
                        ));
                    }
                    return NextAction {
                        at: Some(due),
                        what: format!("start a cycle at {}: {why}", time::format(due)),
                    };
                }
                if let Some(l) = &self.lease {
                    return waiting(format!("idle; {}", lease_text(&self.environment, l)));
                }
                match self.next_poll(cfg) {
                    Some(at) => NextAction {
                        at: Some(at),
                        what: format!(
                            "check the followed refs at {} ({}); a full cycle runs if they changed",
                            time::format(at),
                            self.since_full_text(at)
                        ),
                    },
                    None => waiting("idle".to_string()),
                }
            }
        }
    }

    fn since_full_text(&self, now: Millis) -> String {
        match &self.last_full {
            None => "no full cycle has run yet".to_string(),
            Some(f) => format!(
                "last full cycle {} ago{}",
                time::format_span(now - f.at),
                f.cycle.map(|c| format!(" (cycle {c})")).unwrap_or_default()
            ),
        }
    }
}

fn lease_text(env: &str, l: &LeaseInfo) -> String {
    match l.until {
        Some(u) => format!("{env} leased by {} until {}", l.holder, time::format(u)),
        None => format!("{env} leased by {}", l.holder),
    }
}

fn ids_text(ids: &[u64]) -> String {
    let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    match ids.len() {
        0 => "no triggers".to_string(),
        1 => format!("trigger {}", list[0]),
        _ => format!("triggers {}", list.join(", ")),
    }
}

fn ids_or_none(reqs: &[Request]) -> String {
    ids_text(&reqs.iter().map(|r| r.id).collect::<Vec<_>>())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Applies one event at `now`: returns the next state and what the server must do.
///
/// Pure and deterministic: the same inputs always give the same outputs.
pub fn step(state: &State, event: &Event, now: Millis, cfg: &PolicyConfig) -> (State, Vec<Action>) {
    let mut m = Machine {
        s: state.clone(),
        now,
        cfg,
        out: Vec::new(),
    };
    m.handle(event);
    m.run_timers();
    if let Some(at) = m.wake() {
        m.out.push(Action::WakeAt(at));
    }
    (m.s, m.out)
}

struct Machine<'a> {
    s: State,
    now: Millis,
    cfg: &'a PolicyConfig,
    out: Vec<Action>,
}

impl Machine<'_> {
    fn record(&mut self, kind: DecisionKind, reason: String, triggers: Vec<u64>, cycle: Option<u64>) {
        self.out.push(Action::Record(Decision {
            at: self.now,
            kind,
            reason,
            triggers,
            cycle,
        }));
    }

    fn pending_ids(&self) -> Vec<u64> {
        self.s.pending.iter().map(|r| r.id).collect()
    }

    fn handle(&mut self, event: &Event) {
        match event {
            Event::Trigger { id, source, at } => self.request(Request {
                id: *id,
                source: source.clone(),
                at: *at,
                received: self.now,
                explicit: None,
            }),
            Event::Deploy { id, by, admin, full } => self.request(Request {
                id: *id,
                source: format!("deploy by {by}"),
                at: self.now,
                received: self.now,
                explicit: Some(Explicit {
                    by: by.clone(),
                    admin: *admin,
                    full: *full,
                }),
            }),
            Event::Tick => {}
            Event::CycleStarted { cycle, kind } => self.cycle_started(*cycle, *kind),
            Event::CycleFinished { cycle, result } => self.cycle_finished(*cycle, *result),
            Event::DrainDone => self.drain_over(false),
            Event::DrainTimedOut => self.drain_over(true),
            Event::Pause { by, reason } => self.pause(by, reason),
            Event::Resume { by } => self.resume(by),
            Event::LeaseHeldByOther { holder, until } => self.lease_taken(holder, *until),
            Event::LeaseFree => self.lease_free(),
            Event::PollResult { changed } => self.poll_result(*changed),
        }
    }

    // -- triggers ------------------------------------------------------------

    fn request(&mut self, req: Request) {
        let id = req.id;
        let known = self.s.pending.iter().any(|r| r.id == id)
            || match &self.s.phase {
                Phase::Running(r) => r.triggers.contains(&id),
                Phase::Starting { triggers, .. } => triggers.contains(&id),
                _ => false,
            };
        if known {
            self.record(
                DecisionKind::Ignored,
                format!("{} is already scheduled", req.describe()),
                vec![id],
                None,
            );
            return;
        }
        let what = req.describe();
        let admin = req.is_admin();
        let admin_full = req.is_admin_full();
        self.s.pending.push(req);

        if let Some(p) = &self.s.paused {
            let reason = format!(
                "held: {} paused by {} since {} ({}); {what} is kept until resumed",
                self.s.environment,
                p.by,
                time::format(p.since),
                p.reason
            );
            self.record(DecisionKind::Held, reason, vec![id], None);
            return;
        }
        match self.s.phase.clone() {
            Phase::Running(r) => {
                if r.kind == CycleKind::Full {
                    let reason = format!("full cycle {} running: {what} waits", r.cycle);
                    self.record(DecisionKind::Queued, reason, vec![id], Some(r.cycle));
                } else if admin_full {
                    let reason = format!(
                        "{what} waits for partial cycle {} to finish: a restart cannot make it full",
                        r.cycle
                    );
                    self.record(DecisionKind::Queued, reason, vec![id], Some(r.cycle));
                } else if r.restart_drain.is_some() {
                    let reason = format!(
                        "{what} joins restart {}/{} of cycle {} (draining)",
                        r.restarts, self.cfg.max_restarts, r.cycle
                    );
                    self.record(DecisionKind::Joined, reason, vec![id], Some(r.cycle));
                } else if !self.try_restart(&format!("new {what}")) {
                    let reason = if self.cfg.max_restarts == 0 {
                        format!("partial cycle {} running (restarts disabled): {what} waits", r.cycle)
                    } else {
                        format!(
                            "cycle {} already restarted {}/{}: {what} waits for the next cycle",
                            r.cycle, r.restarts, self.cfg.max_restarts
                        )
                    };
                    self.record(DecisionKind::Queued, reason, vec![id], Some(r.cycle));
                }
            }
            Phase::Starting { kind, .. } => {
                let reason = format!("a {kind} cycle is starting: {what} waits for it to start");
                self.record(DecisionKind::Queued, reason, vec![id], None);
            }
            Phase::Draining(d) => {
                let reason = format!(
                    "{what} joins the cycle about to start (draining since {})",
                    time::format(d.since)
                );
                self.record(DecisionKind::Joined, reason, vec![id], None);
            }
            Phase::Idle => match self.s.due {
                Some(due) if admin && due > self.now => {
                    self.s.due = Some(self.now);
                    let reason = format!(
                        "override: {what} starts the pending cycle now instead of at {} ({})",
                        time::format(due),
                        self.s.due_reason.clone().unwrap_or_default()
                    );
                    self.s.due_reason = Some(format!("{what} asked to start now"));
                    let ids = self.pending_ids();
                    self.record(DecisionKind::Override, reason, ids, None);
                }
                Some(due) => {
                    let mut reason = format!(
                        "{what} joins the cycle due {} ({})",
                        time::format(due),
                        ids_or_none(&self.s.pending)
                    );
                    if let Some(l) = &self.s.lease {
                        reason.push_str(&format!("; waiting: {}", lease_text(&self.s.environment, l)));
                    }
                    let ids = self.pending_ids();
                    self.record(DecisionKind::Joined, reason, ids, None);
                }
                None => self.schedule(what, true),
            },
        }
    }

    /// Sets `due` for the pending work per the rules: admins now; inside the
    /// cooldown at its end; otherwise after the settle time (`settle`) or now.
    fn schedule(&mut self, what: String, settle: bool) {
        let now = self.now;
        let ids = self.pending_ids();
        let cooldown_end = self
            .s
            .last_finished
            .as_ref()
            .map(|f| (f.cycle, f.at, time::add(f.at, self.cfg.cooldown)))
            .filter(|(_, _, end)| now < *end);
        let lease_note = self
            .s
            .lease
            .as_ref()
            .map(|l| format!("; it will wait: {}", lease_text(&self.s.environment, l)))
            .unwrap_or_default();
        if let Some(admin) = self.s.pending.iter().find(|r| r.is_admin()) {
            let skipped = match cooldown_end {
                Some((cycle, _, end)) => format!(
                    "skipping the cooldown after cycle {cycle} (until {})",
                    time::format(end)
                ),
                None => "skipping the settle time".to_string(),
            };
            let reason = format!("override: {} starts now, {skipped}{lease_note}", admin.describe());
            self.s.due = Some(now);
            self.s.due_reason = Some(format!("{} asked to start now", admin.describe()));
            self.record(DecisionKind::Override, reason, ids, None);
        } else if let Some((cycle, finished, end)) = cooldown_end {
            let ago = if finished < now {
                format!(" (finished {} ago)", time::format_span(now - finished))
            } else {
                String::new()
            };
            let reason = format!(
                "deferred to {}: cooldown after cycle {cycle}{ago}: {what}{lease_note}",
                time::format(end)
            );
            self.s.due = Some(end);
            self.s.due_reason = Some(format!("cooldown after cycle {cycle}"));
            self.record(DecisionKind::Deferred, reason, ids, None);
        } else if settle && !self.cfg.settle.is_zero() {
            let due = time::add(now, self.cfg.settle);
            let reason = format!(
                "scheduled for {} (settle {}): {what}{lease_note}",
                time::format(due),
                time::format_span(ms(self.cfg.settle))
            );
            self.s.due = Some(due);
            self.s.due_reason = Some(format!(
                "{what}, after settling {}",
                time::format_span(ms(self.cfg.settle))
            ));
            self.record(DecisionKind::Scheduled, reason, ids, None);
        } else {
            let reason = format!("starting now: {what}{lease_note}");
            self.s.due = Some(now);
            self.s.due_reason = Some(what);
            self.record(DecisionKind::Scheduled, reason, ids, None);
        }
    }

    /// Decides a restart of the running partial cycle for the pending
    /// triggers, if the rules allow one. Returns whether it did.
    fn try_restart(&mut self, why: &str) -> bool {
        let max = self.cfg.max_restarts;
        let restartable: Vec<u64> = self
            .s
            .pending
            .iter()
            .filter(|r| !r.is_admin_full())
            .map(|r| r.id)
            .collect();
        let deadline = time::add(self.now, self.cfg.drain_timeout);
        let now = self.now;
        let Phase::Running(r) = &mut self.s.phase else {
            return false;
        };
        if r.kind != CycleKind::Partial || r.restart_drain.is_some() || r.restarts >= max || restartable.is_empty() {
            return false;
        }
        r.restarts += 1;
        r.restart_drain = Some(DrainWait { since: now, deadline });
        let reason = format!(
            "restart {}/{max} of cycle {}: {why}; draining first",
            r.restarts, r.cycle
        );
        let cycle = r.cycle;
        self.out.push(Action::Drain);
        self.record(DecisionKind::Restart, reason, restartable, Some(cycle));
        true
    }

    // -- cycles --------------------------------------------------------------

    fn cycle_started(&mut self, cycle: u64, kind: CycleKind) {
        match self.s.phase.clone() {
            Phase::Starting {
                kind: asked,
                triggers,
                override_,
                since: _,
            } => {
                if kind == CycleKind::Full {
                    match &mut self.s.last_full {
                        Some(f) if asked == CycleKind::Full => f.cycle = Some(cycle),
                        _ => {
                            self.s.last_full = Some(FullMark {
                                at: self.now,
                                cycle: Some(cycle),
                                override_,
                            })
                        }
                    }
                }
                self.s.phase = Phase::Running(RunningCycle {
                    cycle,
                    kind,
                    triggers,
                    restarts: 0,
                    started_at: self.now,
                    override_,
                    restart_drain: None,
                });
                if !self.s.pending.is_empty() && self.s.paused.is_none() {
                    self.queue_or_restart(cycle, kind);
                }
            }
            Phase::Idle | Phase::Draining(_) => {
                if kind == CycleKind::Full {
                    self.s.last_full = Some(FullMark {
                        at: self.now,
                        cycle: Some(cycle),
                        override_: false,
                    });
                }
                self.s.phase = Phase::Running(RunningCycle {
                    cycle,
                    kind,
                    triggers: Vec::new(),
                    restarts: 0,
                    started_at: self.now,
                    override_: false,
                    restart_drain: None,
                });
                self.s.due = None;
                self.s.due_reason = None;
                let mut reason = format!("{kind} cycle {cycle} started outside the scheduler");
                if !self.s.pending.is_empty() {
                    reason.push_str(&format!("; {} wait for it", ids_or_none(&self.s.pending)));
                }
                let ids = self.pending_ids();
                self.record(DecisionKind::Queued, reason, ids, Some(cycle));
            }
            Phase::Running(r) if r.cycle == cycle => {}
            Phase::Running(r) => {
                let reason = format!(
                    "cycle {cycle} reported started while cycle {} runs: ignored (one cycle at a time)",
                    r.cycle
                );
                self.record(DecisionKind::Ignored, reason, vec![], Some(cycle));
            }
        }
    }

    /// Pending triggers meet a running cycle: restart it if allowed, else they wait.
    fn queue_or_restart(&mut self, cycle: u64, kind: CycleKind) {
        let list = ids_or_none(&self.s.pending);
        let wait = if self.s.pending.len() == 1 { "waits" } else { "wait" };
        if kind == CycleKind::Partial && self.try_restart(&format!("{list} arrived while it was starting")) {
            return;
        }
        let restarts = self.s.running().map(|r| r.restarts).unwrap_or(0);
        let reason = match kind {
            CycleKind::Full => format!("full cycle {cycle} running: {list} {wait}"),
            CycleKind::Partial if self.cfg.max_restarts == 0 || restarts < self.cfg.max_restarts => {
                format!("partial cycle {cycle} running: {list} {wait} for the next cycle")
            }
            CycleKind::Partial => format!(
                "cycle {cycle} already restarted {restarts}/{}: {list} {wait} for the next cycle",
                self.cfg.max_restarts
            ),
        };
        let ids = self.pending_ids();
        self.record(DecisionKind::Queued, reason, ids, Some(cycle));
    }

    fn cycle_finished(&mut self, cycle: u64, result: CycleResult) {
        let (kind, started, restarts, restart_drain, served) = match &self.s.phase {
            Phase::Running(r) if r.cycle == cycle => (
                r.kind,
                Some(r.started_at),
                r.restarts,
                r.restart_drain,
                r.triggers.clone(),
            ),
            Phase::Starting { kind, triggers, .. } => (*kind, None, 0, None, triggers.clone()),
            _ => {
                let reason = format!("cycle {cycle} finished ({result}) but it is not the running cycle: ignored");
                self.record(DecisionKind::Ignored, reason, vec![], Some(cycle));
                return;
            }
        };
        self.s.last_finished = Some(FinishedMark {
            cycle,
            kind,
            result,
            at: self.now,
        });
        let took = started
            .map(|s| format!(" after {}", time::format_span(self.now - s)))
            .unwrap_or_else(|| " before it was reported started".to_string());
        let restarts_text = match restarts {
            0 => String::new(),
            1 => ", 1 restart".to_string(),
            n => format!(", {n} restarts"),
        };
        // An interrupted cycle (its process died) served nobody: its
        // triggers are due again, in a new cycle.
        if result == CycleResult::Interrupted {
            for id in served {
                if !self.s.pending.iter().any(|r| r.id == id) {
                    self.s.pending.push(Request {
                        id,
                        source: format!("trigger {id} again (cycle {cycle} was interrupted)"),
                        at: self.now,
                        received: self.now,
                        explicit: None,
                    });
                }
            }
        }
        let ids = self.pending_ids();
        if let Some(d) = restart_drain {
            // The restart was decided but had not happened yet: its triggers
            // get a fresh cycle as soon as the drain already under way ends.
            self.s.phase = Phase::Draining(d);
            let reason = format!(
                "{kind} cycle {cycle} {result}{took}{restarts_text}, before its restart: a new cycle follows the drain for {}",
                ids_or_none(&self.s.pending)
            );
            self.record(DecisionKind::Finished, reason, ids, Some(cycle));
            return;
        }
        self.s.phase = Phase::Idle;
        let reason = format!("{kind} cycle {cycle} {result}{took}{restarts_text}");
        self.record(DecisionKind::Finished, reason, vec![], Some(cycle));
        if self.s.has_work() && self.s.paused.is_none() {
            let what = if self.s.pending.is_empty() {
                "followed refs changed".to_string()
            } else {
                format!("{} waited for it", ids_or_none(&self.s.pending))
            };
            self.schedule(what, false);
        }
    }

    fn drain_over(&mut self, timed_out: bool) {
        let (since, restart) = match &self.s.phase {
            Phase::Draining(d) => (d.since, false),
            Phase::Running(r) if r.restart_drain.is_some() => {
                (r.restart_drain.map(|d| d.since).unwrap_or(self.now), true)
            }
            _ => {
                let reason = if timed_out {
                    "drain timed out but nothing was waiting for it: ignored"
                } else {
                    "drain done but nothing was waiting for it: ignored"
                };
                self.record(DecisionKind::Ignored, reason.to_string(), vec![], None);
                return;
            }
        };
        if timed_out {
            let reason = format!(
                "drain of {} timed out after {}: going ahead",
                self.s.environment,
                time::format_span(self.now - since)
            );
            let ids = self.pending_ids();
            self.record(DecisionKind::DrainTimedOut, reason, ids, None);
        }
        if restart {
            self.do_restart();
        } else {
            self.start_cycle();
        }
    }

    fn start_cycle(&mut self) {
        let now = self.now;
        let requests = std::mem::take(&mut self.s.pending);
        let triggers: Vec<u64> = requests.iter().map(|r| r.id).collect();
        let allowed_at = self.s.full_allowed_at(self.cfg);
        let allowed = allowed_at.is_none_or(|a| now >= a);
        let since_full = self.s.since_full_text(now);
        let for_text = if triggers.is_empty() {
            String::new()
        } else {
            format!("; {}", ids_text(&triggers))
        };
        let admin_full = requests.iter().find(|r| r.is_admin_full());
        let asked_full = requests
            .iter()
            .find(|r| r.explicit.as_ref().is_some_and(|e| e.full && !e.admin));
        let (kind, override_, reason) = if allowed {
            let polled = self
                .s
                .full_wanted
                .as_ref()
                .map(|w| format!("; {w}"))
                .unwrap_or_default();
            (CycleKind::Full, false, format!("full: {since_full}{polled}{for_text}"))
        } else if let Some(a) = admin_full {
            let by = a.explicit.as_ref().map(|e| e.by.clone()).unwrap_or_default();
            let next = allowed_at.map(time::format).unwrap_or_default();
            (
                CycleKind::Full,
                true,
                format!("full (override by {by}): {since_full}, next full normally allowed {next}{for_text}"),
            )
        } else {
            let next = allowed_at.map(time::format).unwrap_or_default();
            let asked = asked_full
                .and_then(|r| r.explicit.as_ref())
                .map(|e| format!("; full asked by {}, but only an admin may run one before then", e.by))
                .unwrap_or_default();
            (
                CycleKind::Partial,
                false,
                format!("partial: {since_full}, next full allowed {next}{asked}{for_text}"),
            )
        };
        self.s.full_wanted = None;
        self.s.due = None;
        self.s.due_reason = None;
        self.s.blocked_at_due = None;
        if kind == CycleKind::Full {
            self.s.last_full = Some(FullMark {
                at: now,
                cycle: None,
                override_,
            });
        }
        self.s.phase = Phase::Starting {
            kind,
            triggers: triggers.clone(),
            override_,
            since: now,
        };
        self.out.push(Action::StartCycle {
            kind,
            triggers: triggers.clone(),
            override_,
        });
        let dk = if override_ {
            DecisionKind::Override
        } else {
            DecisionKind::Start
        };
        self.record(dk, reason, triggers, None);
    }

    fn do_restart(&mut self) {
        let (take, keep): (Vec<Request>, Vec<Request>) = std::mem::take(&mut self.s.pending)
            .into_iter()
            .partition(|r| !r.is_admin_full());
        self.s.pending = keep;
        let new: Vec<u64> = take.iter().map(|r| r.id).collect();
        let max = self.cfg.max_restarts;
        let Phase::Running(r) = &mut self.s.phase else {
            return;
        };
        r.triggers.extend(new.iter().copied());
        r.restart_drain = None;
        let (cycle, attempt) = (r.cycle, r.restarts);
        self.out.push(Action::Restart {
            cycle,
            triggers: new.clone(),
            attempt,
        });
        let reason = format!(
            "restarting cycle {cycle} from the beginning (restart {attempt}/{max}) with {}",
            ids_text(&new)
        );
        self.record(DecisionKind::Restart, reason, new, Some(cycle));
    }

    // -- pause, lease, poll --------------------------------------------------

    fn pause(&mut self, by: &str, why: &str) {
        if let Some(p) = &self.s.paused {
            let reason = format!(
                "pause by {by} ignored: already paused by {} since {}",
                p.by,
                time::format(p.since)
            );
            self.record(DecisionKind::Ignored, reason, vec![], None);
            return;
        }
        self.s.paused = Some(PauseInfo {
            by: by.to_string(),
            reason: why.to_string(),
            since: self.now,
        });
        let mut reason = format!("paused by {by}: {why}");
        let mut cycle = None;
        match &mut self.s.phase {
            Phase::Draining(_) => {
                self.s.phase = Phase::Idle;
                reason.push_str("; the cycle about to start is called off");
            }
            Phase::Running(r) => {
                cycle = Some(r.cycle);
                if r.restart_drain.take().is_some() {
                    r.restarts = r.restarts.saturating_sub(1);
                    reason.push_str(&format!("; the restart of cycle {} is called off", r.cycle));
                }
                reason.push_str(&format!("; {} cycle {} keeps running", r.kind, r.cycle));
            }
            Phase::Starting { kind, .. } => reason.push_str(&format!("; the {kind} cycle being started goes ahead")),
            Phase::Idle => {}
        }
        self.s.due = None;
        self.s.due_reason = None;
        self.s.blocked_at_due = None;
        if !self.s.pending.is_empty() {
            reason.push_str(&format!("; held: {}", ids_or_none(&self.s.pending)));
        }
        let ids = self.pending_ids();
        self.record(DecisionKind::Paused, reason, ids, cycle);
    }

    fn resume(&mut self, by: &str) {
        let Some(p) = self.s.paused.take() else {
            self.record(
                DecisionKind::Ignored,
                format!("resume by {by} ignored: not paused"),
                vec![],
                None,
            );
            return;
        };
        let mut reason = format!(
            "resumed by {by} after {} (paused by {}: {})",
            time::format_span(self.now - p.since),
            p.by,
            p.reason
        );
        if !self.s.pending.is_empty() {
            reason.push_str(&format!("; held: {}", ids_or_none(&self.s.pending)));
        }
        let ids = self.pending_ids();
        self.record(DecisionKind::Resumed, reason, ids, None);
        match self.s.phase.clone() {
            Phase::Idle if self.s.has_work() => {
                let what = if self.s.pending.is_empty() {
                    "followed refs changed".to_string()
                } else {
                    format!("{} held while paused", ids_or_none(&self.s.pending))
                };
                self.schedule(what, !self.s.pending.is_empty());
            }
            Phase::Running(r) if !self.s.pending.is_empty() => self.queue_or_restart(r.cycle, r.kind),
            _ => {}
        }
    }

    fn lease_taken(&mut self, holder: &str, until: Option<Millis>) {
        let lease = LeaseInfo {
            holder: holder.to_string(),
            until,
            since: self.s.lease.as_ref().map(|l| l.since).unwrap_or(self.now),
        };
        let mut reason = format!(
            "waiting: {}: scheduled cycles wait",
            lease_text(&self.s.environment, &lease)
        );
        if matches!(self.s.phase, Phase::Draining(_)) {
            self.s.phase = Phase::Idle;
            self.s.due = Some(self.now);
            self.s.due_reason = Some(format!("{} waited for the lease", ids_or_none(&self.s.pending)));
            reason.push_str("; the cycle about to start waits too");
        }
        if !self.s.pending.is_empty() {
            reason.push_str(&format!(" ({} pending)", ids_or_none(&self.s.pending)));
        }
        self.s.lease = Some(lease);
        self.s.blocked_at_due = self.s.due.filter(|d| *d <= self.now);
        let ids = self.pending_ids();
        self.record(DecisionKind::Lease, reason, ids, None);
    }

    fn lease_free(&mut self) {
        let Some(l) = self.s.lease.take() else { return };
        self.s.blocked_at_due = None;
        let mut reason = format!(
            "lease of {} by {} ended after {}",
            self.s.environment,
            l.holder,
            time::format_span(self.now - l.since)
        );
        if self.s.due.is_some() && !self.s.pending.is_empty() {
            reason.push_str(&format!("; {} can go ahead", ids_or_none(&self.s.pending)));
        }
        let ids = self.pending_ids();
        self.record(DecisionKind::Lease, reason, ids, None);
    }

    fn poll_result(&mut self, changed: bool) {
        let now = self.now;
        let since_full = self.s.since_full_text(now);
        if !changed {
            let next = time::add(now, self.cfg.poll_interval.max(Duration::from_secs(1)));
            let reason = format!(
                "followed refs unchanged; {since_full}; next check {}",
                time::format(next)
            );
            self.record(DecisionKind::Poll, reason, vec![], None);
            return;
        }
        let full_under_way = match &self.s.phase {
            Phase::Running(r) if r.kind == CycleKind::Full => Some(format!("full cycle {}", r.cycle)),
            Phase::Starting {
                kind: CycleKind::Full, ..
            } => Some("the full cycle being started".to_string()),
            _ => None,
        };
        if let Some(full) = full_under_way {
            let reason = format!("followed refs changed, but {full} is under way: ignored");
            self.record(DecisionKind::Ignored, reason, vec![], None);
            return;
        }
        if let Some(a) = self.s.full_allowed_at(self.cfg).filter(|a| now < *a) {
            let reason = format!(
                "followed refs changed, but the next full cycle is allowed only at {}: ignored",
                time::format(a)
            );
            self.record(DecisionKind::Ignored, reason, vec![], None);
            return;
        }
        self.s.full_wanted = Some(format!("followed refs changed (checked {})", time::format(now)));
        if self.s.phase == Phase::Idle && self.s.paused.is_none() && self.s.due.is_none() {
            self.schedule(
                format!("followed refs changed and a full cycle is due; {since_full}"),
                false,
            );
        } else {
            let reason = format!("followed refs changed; {since_full}: the next cycle is full");
            self.record(DecisionKind::Poll, reason, vec![], None);
        }
    }

    // -- timers ----------------------------------------------------------------

    fn run_timers(&mut self) {
        let now = self.now;
        match &self.s.phase {
            Phase::Draining(d) if d.deadline <= now => self.drain_over(true),
            Phase::Running(r) if r.restart_drain.is_some_and(|d| d.deadline <= now) => self.drain_over(true),
            _ => {}
        }
        if self.s.phase == Phase::Idle
            && self.s.paused.is_none()
            && self.s.has_work()
            && let Some(due) = self.s.due.filter(|d| *d <= now)
        {
            if let Some(l) = self.s.lease.clone() {
                if self.s.blocked_at_due != Some(due) {
                    self.s.blocked_at_due = Some(due);
                    let reason = format!(
                        "waiting: {}: the cycle due {} waits ({})",
                        lease_text(&self.s.environment, &l),
                        time::format(due),
                        ids_or_none(&self.s.pending)
                    );
                    let ids = self.pending_ids();
                    self.record(DecisionKind::Waiting, reason, ids, None);
                }
            } else {
                self.begin_drain();
            }
        }
        if self.s.next_poll(self.cfg).is_some_and(|at| at <= now) {
            self.s.last_poll = Some(now);
            self.out.push(Action::PollRefs);
        }
    }

    fn begin_drain(&mut self) {
        let deadline = time::add(self.now, self.cfg.drain_timeout);
        self.s.phase = Phase::Draining(DrainWait {
            since: self.now,
            deadline,
        });
        let why = self.s.due_reason.take().unwrap_or_default();
        self.s.due = None;
        self.s.blocked_at_due = None;
        let reason = format!(
            "draining {} before the next cycle (gives up at {}): {why}",
            self.s.environment,
            time::format(deadline)
        );
        let ids = self.pending_ids();
        self.out.push(Action::Drain);
        self.record(DecisionKind::Drain, reason, ids, None);
    }

    fn wake(&self) -> Option<Millis> {
        match &self.s.phase {
            Phase::Draining(d) => Some(d.deadline),
            Phase::Running(r) => r.restart_drain.map(|d| d.deadline),
            Phase::Starting { .. } => None,
            Phase::Idle => {
                if self.s.paused.is_some() {
                    return None;
                }
                if let Some(due) = self.s.due.filter(|_| self.s.has_work()) {
                    return if self.s.lease.is_some() && due <= self.now {
                        None
                    } else {
                        Some(due)
                    };
                }
                self.s.next_poll(self.cfg)
            }
        }
    }
}

#[cfg(test)]
mod tests;
