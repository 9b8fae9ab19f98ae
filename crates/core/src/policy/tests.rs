//! The scheduling policy: one scenario test per rule, snapshots of the
//! reasons people read, and property tests over arbitrary event sequences.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
/// 2026-11-23T00:00:00Z.
const DAY0: Millis = 1_795_392_000_000;

fn at(h: i64, m: i64) -> Millis {
    DAY0 + h * HOUR + m * MIN
}

/// One environment driven by hand.
struct Env {
    s: State,
    cfg: PolicyConfig,
    /// Every decision so far, as `HH:MM kind: reason`.
    journal: Vec<String>,
}

impl Env {
    fn new() -> Env {
        Env::with(PolicyConfig::default())
    }

    fn with(cfg: PolicyConfig) -> Env {
        Env {
            s: State::new("staging"),
            cfg,
            journal: Vec::new(),
        }
    }

    fn ev(&mut self, now: Millis, e: Event) -> Vec<Action> {
        let (s, actions) = step(&self.s, &e, now, &self.cfg);
        self.s = s;
        for a in &actions {
            if let Action::Record(d) = a {
                let hm = (d.at - DAY0).rem_euclid(24 * HOUR);
                self.journal.push(format!(
                    "{:02}:{:02} {:?}: {}",
                    hm / HOUR,
                    hm % HOUR / MIN,
                    d.kind,
                    d.reason
                ));
            }
        }
        actions
    }

    fn trigger(&mut self, now: Millis, id: u64, source: &str) -> Vec<Action> {
        self.ev(
            now,
            Event::Trigger {
                id,
                source: source.into(),
                at: now,
            },
        )
    }

    fn deploy(&mut self, now: Millis, id: u64, by: &str, admin: bool, full: bool) -> Vec<Action> {
        self.ev(
            now,
            Event::Deploy {
                id,
                by: by.into(),
                admin,
                full,
            },
        )
    }

    /// Drain done, cycle reported started with id `cycle`; returns what started.
    fn start(&mut self, now: Millis, cycle: u64) -> (CycleKind, Vec<u64>, bool) {
        let actions = self.ev(now, Event::DrainDone);
        let started = started(&actions).unwrap_or_else(|| panic!("no cycle started: {actions:?}"));
        self.ev(now, Event::CycleStarted { cycle, kind: started.0 });
        started
    }

    fn finish(&mut self, now: Millis, cycle: u64) -> Vec<Action> {
        self.ev(
            now,
            Event::CycleFinished {
                cycle,
                result: CycleResult::Passed,
            },
        )
    }

    /// Full cycle 1 ran 08:00-09:40 (an admin deploy at 08:00 on a fresh environment).
    fn after_full() -> Env {
        let mut env = Env::new();
        env.deploy(at(8, 0), 1, "root", true, false);
        assert_eq!(env.start(at(8, 0), 1), (CycleKind::Full, vec![1], false));
        env.finish(at(9, 40), 1);
        env.journal.clear();
        env
    }

    /// After [`Env::after_full`], partial cycle 2 for trigger 2 runs since 10:26.
    fn partial_running() -> Env {
        let mut env = Env::after_full();
        env.trigger(at(10, 20), 2, "push ogr main");
        env.ev(at(10, 25), Event::Tick);
        assert_eq!(env.start(at(10, 26), 2), (CycleKind::Partial, vec![2], false));
        env.journal.clear();
        env
    }

    fn running(&self) -> &RunningCycle {
        self.s
            .running()
            .unwrap_or_else(|| panic!("no running cycle: {:?}", self.s.phase))
    }
}

fn started(actions: &[Action]) -> Option<(CycleKind, Vec<u64>, bool)> {
    actions.iter().find_map(|a| match a {
        Action::StartCycle {
            kind,
            triggers,
            override_,
        } => Some((*kind, triggers.clone(), *override_)),
        _ => None,
    })
}

fn decisions(actions: &[Action]) -> Vec<&Decision> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Record(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn decision(actions: &[Action], kind: DecisionKind) -> &Decision {
    decisions(actions)
        .into_iter()
        .find(|d| d.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} decision in {actions:?}"))
}

fn wake(actions: &[Action]) -> Option<Millis> {
    actions.iter().find_map(|a| match a {
        Action::WakeAt(t) => Some(*t),
        _ => None,
    })
}

fn drains(actions: &[Action]) -> bool {
    actions.contains(&Action::Drain)
}

// -- scenarios, one per rule ---------------------------------------------------

#[test]
fn first_trigger_settles_then_drains_then_runs_a_full_cycle_because_none_ran_yet() {
    let mut env = Env::new();
    let a = env.trigger(at(10, 0), 1, "push ogr main");
    assert_eq!(decision(&a, DecisionKind::Scheduled).triggers, vec![1]);
    assert_eq!(wake(&a), Some(at(10, 5)));
    assert!(!drains(&a));

    assert!(!drains(&env.ev(at(10, 4), Event::Tick)), "too early");
    let a = env.ev(at(10, 5), Event::Tick);
    assert!(drains(&a));
    assert_eq!(wake(&a), Some(at(10, 15)), "drain timeout");

    let a = env.ev(at(10, 6), Event::DrainDone);
    assert_eq!(started(&a), Some((CycleKind::Full, vec![1], false)));
    assert!(
        decision(&a, DecisionKind::Start)
            .reason
            .starts_with("full: no full cycle has run yet")
    );
}

#[test]
fn trigger_inside_full_interval_gets_a_partial_cycle_saying_when_the_next_full_is_allowed() {
    let mut env = Env::after_full();
    env.trigger(at(10, 20), 2, "push ogr main");
    env.ev(at(10, 25), Event::Tick);
    let a = env.ev(at(10, 26), Event::DrainDone);
    assert_eq!(started(&a), Some((CycleKind::Partial, vec![2], false)));
    assert_eq!(
        decision(&a, DecisionKind::Start).reason,
        "partial: last full cycle 2h 26m ago (cycle 1), next full allowed 2026-11-23T14:00:00Z; trigger 2"
    );
}

#[test]
fn trigger_after_full_interval_gets_a_full_cycle() {
    let mut env = Env::after_full();
    env.trigger(at(14, 30), 2, "pr 614 synchronize");
    env.ev(at(14, 35), Event::Tick);
    let a = env.ev(at(14, 36), Event::DrainDone);
    assert_eq!(started(&a), Some((CycleKind::Full, vec![2], false)));
}

#[test]
fn trigger_soon_after_a_cycle_finished_is_deferred_to_the_end_of_the_cooldown() {
    let mut env = Env::after_full();
    let a = env.trigger(at(9, 50), 2, "push ogr main");
    let d = decision(&a, DecisionKind::Deferred);
    assert_eq!(
        d.reason,
        "deferred to 2026-11-23T10:10:00Z: cooldown after cycle 1 (finished 10m ago): trigger 2 (push ogr main)"
    );
    assert_eq!(wake(&a), Some(at(10, 10)));
    assert!(!drains(&env.ev(at(10, 9), Event::Tick)));
    assert!(
        drains(&env.ev(at(10, 10), Event::Tick)),
        "no settle on top of the cooldown"
    );
}

#[test]
fn triggers_during_the_settle_window_join_the_same_pending_cycle() {
    let mut env = Env::after_full();
    env.trigger(at(10, 20), 2, "push ogr main");
    let a = env.trigger(at(10, 23), 3, "pr 614 synchronize");
    assert_eq!(decision(&a, DecisionKind::Joined).triggers, vec![2, 3]);
    assert_eq!(wake(&a), Some(at(10, 25)), "joining does not push the start back");
    env.ev(at(10, 25), Event::Tick);
    let a = env.trigger(at(10, 25), 4, "push packit main");
    assert_eq!(
        decision(&a, DecisionKind::Joined).kind,
        DecisionKind::Joined,
        "joins during the drain too"
    );
    assert_eq!(env.start(at(10, 26), 2).1, vec![2, 3, 4]);
}

#[test]
fn trigger_during_a_partial_cycle_restarts_it_once_then_later_triggers_wait() {
    let mut env = Env::partial_running();
    let a = env.trigger(at(10, 30), 3, "push ogr main");
    assert!(drains(&a), "drain before the redeploy");
    assert_eq!(
        decision(&a, DecisionKind::Restart).reason,
        "restart 1/1 of cycle 2: new trigger 3 (push ogr main); draining first"
    );
    let a = env.trigger(at(10, 30), 4, "pr 7 synchronize");
    assert_eq!(decision(&a, DecisionKind::Joined).kind, DecisionKind::Joined);
    let a = env.ev(at(10, 31), Event::DrainDone);
    assert!(a.contains(&Action::Restart {
        cycle: 2,
        triggers: vec![3, 4],
        attempt: 1
    }));
    assert_eq!(env.running().triggers, vec![2, 3, 4]);

    let a = env.trigger(at(10, 35), 5, "push ogr main");
    assert!(!drains(&a) && !a.iter().any(|x| matches!(x, Action::Restart { .. })));
    assert_eq!(
        decision(&a, DecisionKind::Queued).reason,
        "cycle 2 already restarted 1/1: trigger 5 (push ogr main) waits for the next cycle"
    );
    let a = env.finish(at(10, 43), 2);
    let d = decision(&a, DecisionKind::Deferred);
    assert_eq!(d.triggers, vec![5]);
    assert_eq!(wake(&a), Some(at(11, 13)));
}

#[test]
fn a_full_cycle_is_never_interrupted_triggers_wait_for_it() {
    let mut env = Env::new();
    env.deploy(at(8, 0), 1, "root", true, false);
    env.start(at(8, 0), 1);
    let a = env.trigger(at(8, 30), 2, "push ogr main");
    assert!(!drains(&a) && !a.iter().any(|x| matches!(x, Action::Restart { .. })));
    assert_eq!(
        decision(&a, DecisionKind::Queued).reason,
        "full cycle 1 running: trigger 2 (push ogr main) waits"
    );
    let a = env.finish(at(9, 40), 1);
    assert_eq!(decision(&a, DecisionKind::Deferred).triggers, vec![2]);
    env.ev(at(10, 10), Event::Tick);
    assert_eq!(env.start(at(10, 11), 2), (CycleKind::Partial, vec![2], false));
}

#[test]
fn with_max_restarts_zero_a_partial_cycle_is_not_restarted() {
    let mut env = Env::with(PolicyConfig {
        max_restarts: 0,
        ..PolicyConfig::default()
    });
    env.deploy(at(8, 0), 1, "root", true, false);
    env.start(at(8, 0), 1);
    env.finish(at(9, 40), 1);
    env.trigger(at(10, 20), 2, "push ogr main");
    env.ev(at(10, 25), Event::Tick);
    env.start(at(10, 26), 2);
    let a = env.trigger(at(10, 30), 3, "push ogr main");
    assert_eq!(
        decision(&a, DecisionKind::Queued).reason,
        "partial cycle 2 running (restarts disabled): trigger 3 (push ogr main) waits"
    );
}

#[test]
fn polls_followed_refs_once_a_full_cycle_is_due_and_runs_one_when_they_changed() {
    let mut env = Env::after_full();
    let a = env.ev(at(13, 0), Event::Tick);
    assert!(!a.contains(&Action::PollRefs), "no polling inside full_interval");
    assert_eq!(wake(&a), Some(at(14, 0)));
    let a = env.ev(at(14, 0), Event::Tick);
    assert!(a.contains(&Action::PollRefs));
    let a = env.ev(at(14, 0), Event::PollResult { changed: false });
    assert!(
        decision(&a, DecisionKind::Poll)
            .reason
            .starts_with("followed refs unchanged; last full cycle 6h ago (cycle 1); next check")
    );
    assert_eq!(wake(&a), Some(at(14, 10)), "every poll_interval");
    assert!(env.ev(at(14, 10), Event::Tick).contains(&Action::PollRefs));
    let a = env.ev(at(14, 10), Event::PollResult { changed: true });
    assert!(drains(&a), "no settle for a poll: the change is already there");
    let a = env.ev(at(14, 11), Event::DrainDone);
    assert_eq!(started(&a), Some((CycleKind::Full, vec![], false)));
    assert!(
        decision(&a, DecisionKind::Start)
            .reason
            .contains("followed refs changed")
    );
}

#[test]
fn a_late_poll_answer_during_a_full_cycle_does_not_queue_another_cycle() {
    let mut env = Env::new();
    env.deploy(at(8, 0), 1, "root", true, false);
    env.start(at(8, 0), 1);
    let a = env.ev(at(8, 5), Event::PollResult { changed: true });
    assert_eq!(
        decision(&a, DecisionKind::Ignored).reason,
        "followed refs changed, but full cycle 1 is under way: ignored"
    );
    env.finish(at(9, 40), 1);
    assert!(!env.s.has_work());
}

#[test]
fn a_drain_that_takes_too_long_is_given_up_and_the_cycle_starts_anyway() {
    let mut env = Env::after_full();
    env.trigger(at(10, 20), 2, "push ogr main");
    env.ev(at(10, 25), Event::Tick);
    let a = env.ev(at(10, 35), Event::Tick);
    assert_eq!(
        decision(&a, DecisionKind::DrainTimedOut).reason,
        "drain of staging timed out after 10m: going ahead"
    );
    assert_eq!(started(&a).map(|s| s.1), Some(vec![2]));
    // The server's own timeout answer afterwards changes nothing.
    let a = env.ev(at(10, 36), Event::DrainTimedOut);
    assert_eq!(decision(&a, DecisionKind::Ignored).kind, DecisionKind::Ignored);
    assert!(started(&a).is_none());
}

#[test]
fn triggers_while_paused_are_held_and_reported_then_scheduled_on_resume() {
    let mut env = Env::after_full();
    env.ev(
        at(10, 0),
        Event::Pause {
            by: "alice".into(),
            reason: "DB migration".into(),
        },
    );
    let a = env.trigger(at(10, 10), 2, "push ogr main");
    assert_eq!(decision(&a, DecisionKind::Held).triggers, vec![2]);
    assert_eq!(wake(&a), None);
    assert!(!drains(&env.ev(at(12, 0), Event::Tick)));
    assert_eq!(
        env.s.next_action(&env.cfg).what,
        "paused by alice since 2026-11-23T10:00:00Z (DB migration); held: trigger 2"
    );
    let a = env.ev(at(12, 0), Event::Resume { by: "bob".into() });
    assert!(decision(&a, DecisionKind::Resumed).reason.contains("held: trigger 2"));
    assert_eq!(decision(&a, DecisionKind::Scheduled).triggers, vec![2]);
    assert_eq!(wake(&a), Some(at(12, 5)));
}

#[test]
fn pausing_during_a_drain_calls_the_cycle_off_until_resumed() {
    let mut env = Env::after_full();
    env.trigger(at(10, 20), 2, "push ogr main");
    env.ev(at(10, 25), Event::Tick);
    let a = env.ev(
        at(10, 26),
        Event::Pause {
            by: "alice".into(),
            reason: "incident".into(),
        },
    );
    assert!(decision(&a, DecisionKind::Paused).reason.contains("called off"));
    assert_eq!(env.s.phase, Phase::Idle);
    assert!(started(&env.ev(at(10, 27), Event::DrainDone)).is_none());
    env.ev(at(11, 0), Event::Resume { by: "alice".into() });
    env.ev(at(11, 5), Event::Tick);
    assert_eq!(env.start(at(11, 6), 2).1, vec![2]);
}

#[test]
fn someone_elses_lease_blocks_scheduled_cycles_and_says_so() {
    let mut env = Env::after_full();
    env.ev(
        at(10, 0),
        Event::LeaseHeldByOther {
            holder: "alice".into(),
            until: Some(at(15, 0)),
        },
    );
    let a = env.trigger(at(10, 20), 2, "push ogr main");
    assert!(
        decision(&a, DecisionKind::Scheduled)
            .reason
            .ends_with("it will wait: staging leased by alice until 2026-11-23T15:00:00Z")
    );
    let a = env.ev(at(10, 25), Event::Tick);
    assert!(!drains(&a));
    assert_eq!(
        decision(&a, DecisionKind::Waiting).reason,
        "waiting: staging leased by alice until 2026-11-23T15:00:00Z: the cycle due 2026-11-23T10:25:00Z waits (trigger 2)"
    );
    assert!(decisions(&env.ev(at(10, 40), Event::Tick)).is_empty(), "said once");
    assert_eq!(env.s.next_action(&env.cfg).at, None);
    assert!(
        env.s
            .next_action(&env.cfg)
            .what
            .starts_with("waiting: staging leased by alice")
    );
    let a = env.ev(at(11, 0), Event::LeaseFree);
    assert!(drains(&a));
}

#[test]
fn an_admin_deploy_skips_settle_and_cooldown_and_is_recorded_as_an_override() {
    let mut env = Env::after_full();
    let a = env.deploy(at(9, 50), 2, "alice", true, false);
    assert_eq!(
        decision(&a, DecisionKind::Override).reason,
        "override: deploy 2 by alice (admin) starts now, skipping the cooldown after cycle 1 (until 2026-11-23T10:10:00Z)"
    );
    assert!(drains(&a));
    assert_eq!(env.start(at(9, 51), 2), (CycleKind::Partial, vec![2], false));
}

#[test]
fn an_admin_deploy_moves_a_pending_cycle_to_now() {
    let mut env = Env::after_full();
    env.trigger(at(9, 50), 2, "push ogr main");
    let a = env.deploy(at(9, 55), 3, "alice", true, false);
    assert_eq!(decision(&a, DecisionKind::Override).triggers, vec![2, 3]);
    assert!(drains(&a));
}

#[test]
fn an_admin_full_deploy_inside_full_interval_runs_full_as_an_override() {
    let mut env = Env::after_full();
    env.deploy(at(10, 30), 2, "alice", true, true);
    let a = env.ev(at(10, 31), Event::DrainDone);
    assert_eq!(started(&a), Some((CycleKind::Full, vec![2], true)));
    assert_eq!(
        decision(&a, DecisionKind::Override).reason,
        "full (override by alice): last full cycle 2h 31m ago (cycle 1), next full normally allowed 2026-11-23T14:00:00Z; trigger 2"
    );
}

#[test]
fn a_non_admin_full_request_inside_full_interval_gets_partial_and_says_why() {
    let mut env = Env::after_full();
    let a = env.deploy(at(10, 30), 2, "bob", false, true);
    assert_eq!(
        wake(&a),
        Some(at(10, 35)),
        "non-admins wait for the settle time like any trigger"
    );
    env.ev(at(10, 35), Event::Tick);
    let a = env.ev(at(10, 36), Event::DrainDone);
    assert_eq!(started(&a), Some((CycleKind::Partial, vec![2], false)));
    assert!(
        decision(&a, DecisionKind::Start)
            .reason
            .contains("full asked by bob, but only an admin may run one before then")
    );
}

#[test]
fn a_deploy_during_a_partial_cycle_counts_as_a_trigger_and_restarts_it() {
    let mut env = Env::partial_running();
    let a = env.deploy(at(10, 30), 3, "alice", true, false);
    assert_eq!(decision(&a, DecisionKind::Restart).triggers, vec![3]);
}

#[test]
fn an_admin_full_deploy_during_a_partial_cycle_waits_then_runs_full_without_cooldown() {
    let mut env = Env::partial_running();
    let a = env.deploy(at(10, 30), 3, "alice", true, true);
    assert!(!drains(&a));
    assert_eq!(
        decision(&a, DecisionKind::Queued).reason,
        "deploy 3 by alice (admin, full) waits for partial cycle 2 to finish: a restart cannot make it full"
    );
    let a = env.finish(at(10, 38), 2);
    assert!(drains(&a), "admins skip the cooldown");
    assert_eq!(env.start(at(10, 39), 3), (CycleKind::Full, vec![3], true));
}

#[test]
fn a_deploy_during_a_full_cycle_waits_for_it() {
    let mut env = Env::new();
    env.deploy(at(8, 0), 1, "root", true, false);
    env.start(at(8, 0), 1);
    let a = env.deploy(at(8, 10), 2, "alice", true, false);
    assert_eq!(decision(&a, DecisionKind::Queued).triggers, vec![2]);
    let a = env.finish(at(9, 40), 1);
    assert_eq!(decision(&a, DecisionKind::Override).triggers, vec![2]);
    assert!(drains(&a));
}

#[test]
fn a_cycle_that_finishes_before_its_restart_gives_the_new_triggers_a_fresh_cycle() {
    let mut env = Env::partial_running();
    env.trigger(at(10, 36), 3, "push ogr main");
    let a = env.finish(at(10, 38), 2);
    assert!(
        decision(&a, DecisionKind::Finished)
            .reason
            .contains("before its restart")
    );
    let a = env.ev(at(10, 39), Event::DrainDone);
    assert_eq!(started(&a), Some((CycleKind::Partial, vec![3], false)));
    assert!(!a.iter().any(|x| matches!(x, Action::Restart { .. })));
}

#[test]
fn triggers_arriving_while_a_cycle_starts_restart_it_once_it_is_running() {
    let mut env = Env::after_full();
    env.trigger(at(10, 20), 2, "push ogr main");
    env.ev(at(10, 25), Event::Tick);
    env.ev(at(10, 26), Event::DrainDone);
    env.trigger(at(10, 26), 3, "push ogr main");
    let a = env.ev(
        at(10, 27),
        Event::CycleStarted {
            cycle: 2,
            kind: CycleKind::Partial,
        },
    );
    assert_eq!(decision(&a, DecisionKind::Restart).triggers, vec![3]);
}

#[test]
fn a_cycle_started_outside_the_scheduler_is_adopted_and_counts_as_the_last_full() {
    let mut env = Env::new();
    let a = env.ev(
        at(8, 0),
        Event::CycleStarted {
            cycle: 40,
            kind: CycleKind::Full,
        },
    );
    assert_eq!(decision(&a, DecisionKind::Queued).cycle, Some(40));
    assert_eq!(env.running().cycle, 40);
    env.finish(at(9, 40), 40);
    env.trigger(at(10, 20), 2, "push ogr main");
    env.ev(at(10, 25), Event::Tick);
    assert_eq!(env.start(at(10, 26), 41).0, CycleKind::Partial);
}

#[test]
fn duplicate_and_stale_events_change_nothing() {
    let mut env = Env::partial_running();
    let a = env.trigger(at(10, 30), 2, "push ogr main");
    assert_eq!(
        decision(&a, DecisionKind::Ignored).reason,
        "trigger 2 (push ogr main) is already scheduled"
    );
    let a = env.finish(at(10, 31), 99);
    assert_eq!(
        decision(&a, DecisionKind::Ignored).reason,
        "cycle 99 finished (passed) but it is not the running cycle: ignored"
    );
    let before = env.s.clone();
    env.ev(at(10, 32), Event::DrainDone);
    env.ev(at(10, 32), Event::LeaseFree);
    env.ev(at(10, 32), Event::Resume { by: "x".into() });
    assert_eq!(env.s, before);
}

#[test]
fn next_action_says_what_happens_next_and_why() {
    let mut env = Env::after_full();
    let n = env.s.next_action(&env.cfg);
    assert_eq!(n.at, Some(at(14, 0)));
    assert!(n.what.starts_with("check the followed refs at 2026-11-23T14:00:00Z"));
    env.trigger(at(9, 50), 2, "push ogr main");
    let n = env.s.next_action(&env.cfg);
    assert_eq!(n.at, Some(at(10, 10)));
    assert_eq!(n.what, "start a cycle at 2026-11-23T10:10:00Z: cooldown after cycle 1");
    let env = Env::partial_running();
    assert_eq!(
        env.s.next_action(&env.cfg).what,
        "partial cycle 2 running since 2026-11-23T10:26:00Z"
    );
}

#[test]
fn the_state_survives_a_restart_of_the_server_through_json() {
    let mut env = Env::partial_running();
    env.trigger(at(10, 30), 3, "push ogr main");
    let json = serde_json::to_string(&env.s).expect("serializes");
    let back: State = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, env.s);
    let (_, a1) = step(&env.s, &Event::DrainDone, at(10, 31), &env.cfg);
    let (_, a2) = step(&back, &Event::DrainDone, at(10, 31), &env.cfg);
    assert_eq!(a1, a2);
    let actions = serde_json::to_string(&a1).expect("actions serialize");
    assert!(actions.contains(r#""action":"restart""#), "{actions}");
}

// -- the reasons people read -------------------------------------------------------

#[test]
fn decision_reasons_of_a_busy_day() {
    let mut env = Env::new();
    env.trigger(at(7, 55), 1, "push ogr main");
    env.ev(at(8, 0), Event::Tick);
    env.start(at(8, 1), 1);
    env.trigger(at(8, 30), 2, "pr 614 synchronize");
    env.finish(at(9, 40), 1);
    env.ev(at(10, 10), Event::Tick);
    env.start(at(10, 11), 2);
    env.trigger(at(10, 15), 3, "pr 614 synchronize");
    env.ev(at(10, 16), Event::DrainDone);
    env.trigger(at(10, 20), 4, "push packit-service main");
    env.finish(at(10, 28), 2);
    env.trigger(at(10, 40), 5, "pr 12 opened");
    env.ev(at(10, 58), Event::Tick);
    env.start(at(10, 59), 3);
    env.finish(at(11, 11), 3);
    env.trigger(at(12, 0), 6, "pr 12 synchronize");
    env.trigger(at(12, 3), 7, "pr 12 synchronize");
    env.ev(at(12, 5), Event::Tick);
    env.start(at(12, 6), 4);
    env.finish(at(12, 18), 4);
    env.ev(at(14, 1), Event::Tick);
    env.ev(at(14, 1), Event::PollResult { changed: true });
    env.start(at(14, 2), 5);
    env.finish(at(15, 40), 5);
    insta::assert_snapshot!(env.journal.join("\n"));
}

#[test]
fn decision_reasons_of_pause_lease_and_overrides() {
    let mut env = Env::after_full();
    env.ev(
        at(10, 0),
        Event::LeaseHeldByOther {
            holder: "alice".into(),
            until: Some(at(11, 0)),
        },
    );
    env.trigger(at(10, 10), 2, "push ogr main");
    env.ev(at(10, 15), Event::Tick);
    env.ev(at(11, 0), Event::LeaseFree);
    env.ev(at(11, 0), Event::DrainTimedOut);
    env.ev(
        at(11, 1),
        Event::CycleStarted {
            cycle: 2,
            kind: CycleKind::Partial,
        },
    );
    env.ev(
        at(11, 2),
        Event::Pause {
            by: "bob".into(),
            reason: "release freeze".into(),
        },
    );
    env.trigger(at(11, 5), 3, "pr 614 synchronize");
    env.ev(
        at(11, 13),
        Event::CycleFinished {
            cycle: 2,
            result: CycleResult::Failed,
        },
    );
    env.ev(at(13, 0), Event::Resume { by: "bob".into() });
    env.deploy(at(13, 1), 4, "carol", true, true);
    env.ev(at(13, 2), Event::DrainDone);
    insta::assert_snapshot!(env.journal.join("\n"));
}

// -- properties ------------------------------------------------------------------------

/// What the simulated server does next.
#[derive(Debug, Clone)]
enum Op {
    Trigger,
    Deploy {
        admin: bool,
        full: bool,
    },
    Tick,
    Pause,
    Resume,
    Lease,
    LeaseFree,
    Poll(bool),
    AckStart,
    Finish,
    DrainDone,
    DrainTimedOut,
    /// A finish for a cycle id nobody knows.
    StrayFinish(u64),
    /// A cycle started by something other than the scheduler.
    ForeignStart(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Trigger),
        2 => (any::<bool>(), any::<bool>()).prop_map(|(admin, full)| Op::Deploy { admin, full }),
        3 => Just(Op::Tick),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
        1 => Just(Op::Lease),
        1 => Just(Op::LeaseFree),
        2 => any::<bool>().prop_map(Op::Poll),
        4 => Just(Op::AckStart),
        4 => Just(Op::Finish),
        3 => Just(Op::DrainDone),
        1 => Just(Op::DrainTimedOut),
        1 => (0u64..5).prop_map(Op::StrayFinish),
        1 => any::<bool>().prop_map(Op::ForeignStart),
    ]
}

fn config() -> impl Strategy<Value = PolicyConfig> {
    (
        prop_oneof![Just(1u64), Just(6)],
        0u32..3,
        prop_oneof![Just(0u64), Just(30)],
        prop_oneof![Just(0u64), Just(5)],
        prop_oneof![Just(1u64), Just(10)],
    )
        .prop_map(|(full_h, max_restarts, cooldown_m, settle_m, drain_m)| PolicyConfig {
            full_interval: Duration::from_secs(full_h * 3600),
            poll_interval: Duration::from_secs(600),
            max_restarts,
            cooldown: Duration::from_secs(cooldown_m * 60),
            settle: Duration::from_secs(settle_m * 60),
            drain_timeout: Duration::from_secs(drain_m * 60),
            ..PolicyConfig::default()
        })
}

/// Minutes before each op, and the op.
fn scenario() -> impl Strategy<Value = Vec<(i64, Op)>> {
    prop::collection::vec((prop_oneof![3 => 0i64..15, 1 => 0i64..400], op()), 0..60)
}

/// A server around the policy that checks the invariants as it goes.
struct World {
    s: State,
    cfg: PolicyConfig,
    now: Millis,
    wake: Option<Millis>,
    /// Round-trip the state through JSON after every step (a server restart).
    reload: bool,
    /// The server's view: a start was asked for / a cycle runs.
    starting: Option<CycleKind>,
    running: Option<(u64, CycleKind)>,
    next_cycle: u64,
    next_trigger: u64,
    trigger_times: BTreeMap<u64, Millis>,
    /// trigger -> when a StartCycle/Restart included it
    served: BTreeMap<u64, Millis>,
    full_starts: Vec<(Millis, bool)>,
    restarts: BTreeMap<u64, u32>,
    held_reported: BTreeSet<u64>,
    log: Vec<(Millis, Action)>,
    violations: Vec<String>,
}

impl World {
    fn new(cfg: PolicyConfig, reload: bool) -> World {
        World {
            s: State::new("staging"),
            cfg,
            now: DAY0,
            wake: None,
            reload,
            starting: None,
            running: None,
            next_cycle: 1,
            next_trigger: 1,
            trigger_times: BTreeMap::new(),
            served: BTreeMap::new(),
            full_starts: Vec::new(),
            restarts: BTreeMap::new(),
            held_reported: BTreeSet::new(),
            log: Vec::new(),
            violations: Vec::new(),
        }
    }

    fn feed(&mut self, e: Event) {
        let (s, actions) = step(&self.s, &e, self.now, &self.cfg);
        self.s = if self.reload {
            match serde_json::to_string(&s).map(|j| serde_json::from_str::<State>(&j)) {
                Ok(Ok(back)) => back,
                other => panic!("state does not round-trip: {other:?}"),
            }
        } else {
            s
        };
        self.wake = None;
        for a in actions {
            self.check(&a);
            self.log.push((self.now, a));
        }
    }

    fn check(&mut self, a: &Action) {
        let now = self.now;
        match a {
            Action::StartCycle {
                kind,
                triggers,
                override_,
            } => {
                if self.starting.is_some() || self.running.is_some() {
                    self.violations
                        .push(format!("{now}: a cycle starts while another one runs"));
                }
                self.starting = Some(*kind);
                if *kind == CycleKind::Full {
                    self.full_starts.push((now, *override_));
                }
                for t in triggers {
                    self.serve(*t);
                }
            }
            Action::Restart { cycle, triggers, .. } => {
                match self.running {
                    Some((c, CycleKind::Partial)) if c == *cycle => {}
                    other => self
                        .violations
                        .push(format!("{now}: restart of cycle {cycle} while running {other:?}")),
                }
                let n = self.restarts.entry(*cycle).or_default();
                *n += 1;
                if *n > self.cfg.max_restarts {
                    self.violations
                        .push(format!("{now}: cycle {cycle} restarted {n} times"));
                }
                for t in triggers {
                    self.serve(*t);
                }
            }
            Action::Drain => {
                if matches!(self.running, Some((_, CycleKind::Full))) {
                    self.violations.push(format!("{now}: drain while a full cycle runs"));
                }
            }
            Action::WakeAt(t) => {
                if *t <= now {
                    self.violations
                        .push(format!("{now}: wake-up at {t} is not in the future"));
                }
                self.wake = Some(*t);
            }
            Action::PollRefs => {}
            Action::Record(d) => {
                if matches!(d.kind, DecisionKind::Held | DecisionKind::Paused) {
                    self.held_reported.extend(d.triggers.iter().copied());
                }
            }
        }
    }

    fn serve(&mut self, t: u64) {
        if self.served.insert(t, self.now).is_some() {
            self.violations.push(format!("{}: trigger {t} served twice", self.now));
        }
        if !self.trigger_times.contains_key(&t) {
            self.violations
                .push(format!("{}: unknown trigger {t} served", self.now));
        }
    }

    /// Lets time pass, ticking at the wake-ups asked for.
    fn advance(&mut self, to: Millis) {
        while let Some(w) = self.wake.filter(|w| *w <= to) {
            self.now = w;
            self.feed(Event::Tick);
        }
        self.now = self.now.max(to);
    }

    fn new_trigger(&mut self) -> u64 {
        let id = self.next_trigger;
        self.next_trigger += 1;
        self.trigger_times.insert(id, self.now);
        id
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Trigger => {
                let id = self.new_trigger();
                let now = self.now;
                self.feed(Event::Trigger {
                    id,
                    source: format!("push repo{} main", id % 3),
                    at: now,
                });
            }
            Op::Deploy { admin, full } => {
                let id = self.new_trigger();
                self.feed(Event::Deploy {
                    id,
                    by: "someone".into(),
                    admin: *admin,
                    full: *full,
                });
            }
            Op::Tick => self.feed(Event::Tick),
            Op::Pause => self.feed(Event::Pause {
                by: "alice".into(),
                reason: "testing".into(),
            }),
            Op::Resume => self.feed(Event::Resume { by: "alice".into() }),
            Op::Lease => {
                let until = Some(self.now + HOUR);
                self.feed(Event::LeaseHeldByOther {
                    holder: "bob".into(),
                    until,
                })
            }
            Op::LeaseFree => self.feed(Event::LeaseFree),
            Op::Poll(changed) => self.feed(Event::PollResult { changed: *changed }),
            Op::AckStart => {
                if let Some(kind) = self.starting.take() {
                    let cycle = self.next_cycle;
                    self.next_cycle += 1;
                    self.running = Some((cycle, kind));
                    self.feed(Event::CycleStarted { cycle, kind });
                }
            }
            Op::Finish => {
                if let Some((cycle, _)) = self.running.take() {
                    self.feed(Event::CycleFinished {
                        cycle,
                        result: CycleResult::Passed,
                    });
                }
            }
            Op::DrainDone => self.feed(Event::DrainDone),
            Op::DrainTimedOut => self.feed(Event::DrainTimedOut),
            Op::StrayFinish(n) => {
                if self.starting.is_none() {
                    self.feed(Event::CycleFinished {
                        cycle: 1000 + n,
                        result: CycleResult::Failed,
                    });
                }
            }
            Op::ForeignStart(full) => {
                if self.starting.is_none() && self.running.is_none() {
                    let kind = if *full { CycleKind::Full } else { CycleKind::Partial };
                    let cycle = self.next_cycle;
                    self.next_cycle += 1;
                    self.running = Some((cycle, kind));
                    if kind == CycleKind::Full {
                        // Not the policy's decision, so exempt like an
                        // override, but later full cycles must keep their distance.
                        self.full_starts.push((self.now, true));
                    }
                    self.feed(Event::CycleStarted { cycle, kind });
                }
            }
        }
    }

    /// Plays the ops, then drives the environment to quiescence: the lease
    /// is released, started cycles finish, drains end, timers fire.
    fn run(&mut self, ops: &[(i64, Op)]) {
        for (gap, op) in ops {
            self.advance(self.now + gap * MIN);
            self.apply(op);
        }
        self.feed(Event::LeaseFree);
        for _ in 0..10_000 {
            if self.starting.is_some() {
                self.advance(self.now + MIN);
                self.apply(&Op::AckStart);
            } else if self.running.is_some() {
                self.advance(self.now + 10 * MIN);
                self.apply(&Op::Finish);
            } else if matches!(self.s.phase, Phase::Draining(_)) {
                self.feed(Event::DrainDone);
            } else if self.s.has_work() && self.s.paused.is_none() {
                match self.wake {
                    Some(w) => self.advance(w),
                    None => {
                        self.violations
                            .push(format!("stuck with work and no wake-up: {:?}", self.s));
                        return;
                    }
                }
            } else {
                return;
            }
        }
        self.violations.push("did not come to rest".into());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn invariants_hold_for_arbitrary_event_sequences(cfg in config(), ops in scenario()) {
        let mut w = World::new(cfg, false);
        w.run(&ops);
        prop_assert!(w.violations.is_empty(), "{:#?}", w.violations);

        // Never two full cycles within full_interval, except marked overrides.
        let interval = ms(cfg.full_interval);
        for (i, (t, override_)) in w.full_starts.iter().enumerate() {
            if *override_ {
                continue;
            }
            for (prev, _) in &w.full_starts[..i] {
                prop_assert!(t - prev >= interval, "full cycles at {prev} and {t} ({:?})", w.full_starts);
            }
        }

        // No trigger lost: served by a cycle started after it, or held while paused.
        for (id, t) in &w.trigger_times {
            match w.served.get(id) {
                Some(s) => prop_assert!(s >= t, "trigger {id} at {t} served by a cycle started at {s}"),
                None => {
                    let held = w.s.paused.is_some()
                        && w.s.pending.iter().any(|r| r.id == *id)
                        && w.held_reported.contains(id);
                    prop_assert!(held, "trigger {id} lost; state {:?}", w.s);
                }
            }
        }
    }

    #[test]
    fn the_policy_is_deterministic_and_survives_restarts(cfg in config(), ops in scenario()) {
        let mut a = World::new(cfg, false);
        a.run(&ops);
        let mut b = World::new(cfg, false);
        b.run(&ops);
        prop_assert_eq!(&a.log, &b.log);
        prop_assert_eq!(&a.s, &b.s);
        let mut c = World::new(cfg, true);
        c.run(&ops);
        prop_assert_eq!(&a.log, &c.log);
        prop_assert_eq!(&a.s, &c.s);
    }
}

#[test]
fn an_interrupted_cycle_serves_nobody_its_triggers_get_a_new_cycle() {
    let mut env = Env::partial_running();
    // The server died while partial cycle 2 ran; the restarted server reports it interrupted.
    let a = env.ev(
        at(10, 40),
        Event::CycleFinished {
            cycle: 2,
            result: CycleResult::Interrupted,
        },
    );
    assert!(
        decision(&a, DecisionKind::Finished).reason.contains("interrupted"),
        "{:?}",
        env.journal
    );
    assert_eq!(env.s.pending.iter().map(|r| r.id).collect::<Vec<_>>(), vec![2]);
    // It is scheduled again (after the cooldown of the interrupted cycle), not forgotten.
    let due = wake(&a).expect("a wake-up for the re-run");
    env.ev(due, Event::Tick);
    let (kind, triggers, _) = env.start(due, 3);
    assert_eq!((kind, triggers), (CycleKind::Partial, vec![2]));
    // A cancelled cycle, by contrast, was stopped on purpose: nothing comes back.
    env.ev(
        due + MIN,
        Event::CycleFinished {
            cycle: 3,
            result: CycleResult::Cancelled,
        },
    );
    assert!(env.s.pending.is_empty());
}
