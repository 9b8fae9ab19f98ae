//! Culprit search: one scenario test per rule of issue #4 point 6, the goal
//! bounds for one culprit checked for every placement, snapshots of the log
//! people read, and property tests over arbitrary models.

use super::sim::{Model, Noise, SimError, SimReport, numbered, run_limit, simulate};
use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn cfg(slots: usize) -> SearchConfig {
    SearchConfig {
        slots,
        infra_retries: 2,
        flake_rerun: true,
    }
}

fn lazy(slots: usize) -> SearchConfig {
    SearchConfig {
        flake_rerun: false,
        ..cfg(slots)
    }
}

fn model(culprits: &[&str], interactions: &[&[&str]]) -> Model {
    Model {
        culprits: culprits.iter().map(|s| s.to_string()).collect(),
        interactions: interactions
            .iter()
            .map(|g| g.iter().map(|s| s.to_string()).collect())
            .collect(),
        ..Model::default()
    }
}

fn sim(n: usize, m: &Model, c: SearchConfig) -> SimReport {
    match simulate(numbered(n), m, c) {
        Ok(r) => r,
        Err(e) => panic!("simulation failed: {e}"),
    }
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn culprits(units: &[&str], interactions: &[&[&str]], good: &[&str]) -> Verdict {
    Verdict::Culprits {
        units: strings(units),
        interactions: interactions.iter().map(|g| strings(g)).collect(),
        good: strings(good),
    }
}

/// `u1` … `un` without the listed ones.
fn all_but(n: usize, out: &[&str]) -> Vec<String> {
    (1..=n)
        .map(|i| format!("u{i}"))
        .filter(|u| !out.contains(&u.as_str()))
        .collect()
}

fn ceil_log(n: usize, base: usize) -> u32 {
    let mut k = 0;
    let mut reach = 1;
    while reach < n {
        reach *= base;
        k += 1;
    }
    k
}

// ---- scenarios ----

#[test]
fn one_culprit_among_eight_with_one_slot() {
    let r = sim(8, &model(&["u6"], &[]), cfg(1));
    assert_eq!(
        r.verdict,
        Verdict::Culprits {
            units: strings(&["u6"]),
            interactions: vec![],
            good: all_but(8, &["u6"]),
        }
    );
    // Flake re-run, 3 halvings, u6 alone, the rest without it.
    assert!(r.runs <= 3 + 3, "{} runs", r.runs);
    assert_eq!(r.rounds, r.runs, "one slot: one run per round");
    assert_eq!(r.max_in_flight, 1);
    let purposes: Vec<Purpose> = r.trace.iter().map(|(run, _)| run.purpose).collect();
    assert_eq!(purposes.first(), Some(&Purpose::FlakeCheck));
    assert_eq!(purposes.last(), Some(&Purpose::ConfirmWithout));
    assert!(
        r.trace
            .iter()
            .any(|(run, o)| run.units == ["u6"] && *o == Outcome::Fail),
        "u6 must have been seen failing alone"
    );
}

#[test]
fn one_culprit_among_eight_with_three_slots() {
    let r = sim(8, &model(&["u2"], &[]), cfg(3));
    assert_eq!(
        r.verdict,
        culprits(&["u2"], &[], &["u1", "u3", "u4", "u5", "u6", "u7", "u8"])
    );
    assert!(r.rounds <= 3, "{} rounds:\n{}", r.rounds, r.log.join("\n"));
    assert!(r.max_in_flight <= 3);
    // Round 1 tests parts alongside the flake re-run.
    assert_eq!(r.trace.iter().filter(|(run, _)| run.id <= 3).count(), 3);
}

#[test]
fn two_culprits_are_both_found_and_the_rest_is_cleared() {
    for slots in 1..=4 {
        let r = sim(8, &model(&["u2", "u7"], &[]), cfg(slots));
        assert_eq!(
            r.verdict,
            culprits(&["u2", "u7"], &[], &["u1", "u3", "u4", "u5", "u6", "u8"]),
            "slots {slots}:\n{}",
            r.log.join("\n")
        );
    }
}

#[test]
fn three_culprits_next_to_each_other() {
    let r = sim(16, &model(&["u9", "u10", "u11"], &[]), cfg(3));
    assert_eq!(
        r.verdict,
        Verdict::Culprits {
            units: strings(&["u9", "u10", "u11"]),
            interactions: vec![],
            good: all_but(16, &["u9", "u10", "u11"]),
        }
    );
}

#[test]
fn a_pair_failing_only_together_is_reported_as_an_interaction() {
    for slots in 1..=4 {
        for c in [cfg(slots), lazy(slots)] {
            let r = sim(8, &model(&[], &[&["u3", "u6"]]), c);
            assert_eq!(
                r.verdict,
                culprits(&[], &[&["u3", "u6"]], &["u1", "u2", "u4", "u5", "u7", "u8"]),
                "{c:?}:\n{}",
                r.log.join("\n")
            );
            // Neither fails alone; both were seen failing together.
            assert!(
                r.trace
                    .iter()
                    .any(|(run, o)| run.units == ["u3", "u6"] && *o == Outcome::Fail)
            );
        }
    }
}

#[test]
fn an_interaction_and_a_culprit_together() {
    let r = sim(16, &model(&["u12"], &[&["u2", "u5"]]), cfg(3));
    assert_eq!(
        r.verdict,
        Verdict::Culprits {
            units: strings(&["u12"]),
            interactions: vec![strings(&["u2", "u5"])],
            good: all_but(16, &["u2", "u5", "u12"]),
        },
        "{}",
        r.log.join("\n")
    );
}

#[test]
fn a_group_of_three_is_found_without_trying_combinations() {
    let r = sim(32, &model(&[], &[&["u4", "u17", "u30"]]), cfg(1));
    assert_eq!(
        r.verdict,
        Verdict::Culprits {
            units: vec![],
            interactions: vec![strings(&["u4", "u17", "u30"])],
            good: all_but(32, &["u4", "u17", "u30"]),
        }
    );
    // C(32, 3) = 4960 combinations; the prefix search needs about log2 32 per member.
    assert!(r.runs <= 40, "{} runs", r.runs);
}

#[test]
fn a_flaky_failure_blames_nobody() {
    for slots in 1..=3 {
        let r = sim(8, &model(&[], &[]), cfg(slots));
        assert_eq!(r.verdict, Verdict::Flaky);
        assert_eq!(r.rounds, 1, "the re-run decides it");
        assert_eq!(r.trace[0].0.purpose, Purpose::FlakeCheck);
    }
}

#[test]
fn a_flaky_failure_without_the_upfront_rerun_is_found_when_nothing_reproduces() {
    for slots in 1..=3 {
        let r = sim(8, &model(&[], &[]), lazy(slots));
        assert_eq!(r.verdict, Verdict::Flaky, "{}", r.log.join("\n"));
        let last = &r.trace[r.trace.len() - 1].0;
        assert_eq!(last.purpose, Purpose::FlakeCheck);
        assert_eq!(last.units.len(), 8);
    }
}

#[test]
fn an_infrastructure_error_is_retried_and_the_search_goes_on() {
    let clean = sim(8, &model(&["u5"], &[]), cfg(1));
    let mut m = model(&["u5"], &[]);
    m.infra = Noise::Runs(vec![2]);
    let r = sim(8, &m, cfg(1));
    assert_eq!(r.verdict, clean.verdict);
    assert_eq!(r.runs, clean.runs + 1, "the retry is a run");
    assert_eq!(r.trace[1].1, Outcome::Infra);
    assert_eq!(r.trace[2].0.units, r.trace[1].0.units, "same units again");
    assert_eq!(r.trace[2].0.attempt, 2);
    assert!(
        r.log
            .iter()
            .any(|l| l.contains("infrastructure error: retrying it as run 3"))
    );
}

#[test]
fn infrastructure_errors_exhausted_blame_nobody() {
    let mut m = model(&["u5"], &[]);
    m.infra = Noise::Runs(vec![2, 3, 4]);
    let r = sim(8, &m, cfg(1));
    match &r.verdict {
        Verdict::Inconclusive { reason } => {
            assert!(reason.starts_with("infrastructure:"), "{reason}");
            assert!(reason.contains("nobody is blamed"), "{reason}");
        }
        other => panic!("expected inconclusive, got {other:?}"),
    }
    assert_eq!(r.runs, 4, "the flake re-run, then one probe tried 3 times");
}

#[test]
fn infrastructure_errors_in_every_run_blame_nobody_even_before_the_flake_check() {
    let mut m = model(&["u1"], &[]);
    m.infra = Noise::Rate {
        per_mille: 1000,
        seed: 7,
    };
    for c in [cfg(1), cfg(3), lazy(2)] {
        let r = sim(5, &m, c);
        assert!(matches!(r.verdict, Verdict::Inconclusive { .. }), "{:?}", r.verdict);
    }
}

#[test]
fn a_depends_on_group_is_tested_and_excluded_as_a_whole() {
    let units = vec![
        Unit {
            id: "acme/api#12".into(),
            members: vec!["acme/api#12".into()],
        },
        Unit {
            id: "acme/api#15+acme/web#7".into(),
            members: vec!["acme/api#15".into(), "acme/web#7".into()],
        },
        Unit {
            id: "acme/web#9".into(),
            members: vec!["acme/web#9".into()],
        },
        Unit {
            id: "acme/worker#3".into(),
            members: vec!["acme/worker#3".into()],
        },
    ];
    let m = Model {
        culprits: strings(&["acme/api#15+acme/web#7"]),
        ..Model::default()
    };
    let r = match simulate(units.clone(), &m, cfg(2)) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        r.verdict,
        culprits(
            &["acme/api#15+acme/web#7"],
            &[],
            &["acme/api#12", "acme/web#9", "acme/worker#3"]
        )
    );
    for (run, _) in &r.trace {
        for u in &run.units {
            assert!(units.iter().any(|x| &x.id == u), "runs name whole units, not `{u}`");
        }
    }
    let search = match Search::new(units, cfg(2)) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let members = search.unit("acme/api#15+acme/web#7").map(|u| u.members.clone());
    assert_eq!(
        members,
        Some(strings(&["acme/api#15", "acme/web#7"])),
        "whose authors to tell"
    );
}

#[test]
fn pending_units_convert() {
    let u = pending::Unit {
        id: "acme/api#12+acme/web#7".into(),
        members: vec![pending::PrRef::new("acme/api", 12), pending::PrRef::new("acme/web", 7)],
    };
    assert_eq!(
        Unit::from(&u),
        Unit {
            id: "acme/api#12+acme/web#7".into(),
            members: strings(&["acme/api#12", "acme/web#7"]),
        }
    );
}

#[test]
fn one_unit_is_the_culprit_after_the_flake_check() {
    let r = sim(1, &model(&["u1"], &[]), cfg(1));
    assert_eq!(r.verdict, culprits(&["u1"], &[], &[]));
    assert_eq!(r.runs, 1);
    let r = sim(1, &model(&["u1"], &[]), lazy(3));
    assert_eq!(r.verdict, culprits(&["u1"], &[], &[]));
    assert_eq!(r.runs, 1);
    let r = sim(1, &model(&[], &[]), lazy(1));
    assert_eq!(r.verdict, Verdict::Flaky);
}

#[test]
fn every_unit_a_culprit() {
    let r = sim(6, &model(&["u1", "u2", "u3", "u4", "u5", "u6"], &[]), cfg(2));
    assert_eq!(r.verdict, culprits(&["u1", "u2", "u3", "u4", "u5", "u6"], &[], &[]));
}

#[test]
fn results_that_contradict_each_other_blame_nobody() {
    // u1 and u8 fail together, and (against monotony) so does exactly
    // [u1 u2 u3 u4]: the prefix search sees [u1 … u4] fail and [u1 … u6] pass.
    let mut s = match Search::new(numbered(8), cfg(3)) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let fails = |units: &[String]| {
        let has = |u: &str| units.iter().any(|x| x == u);
        (has("u1") && has("u8")) || units == strings(&["u1", "u2", "u3", "u4"]).as_slice()
    };
    for _ in 0..40 {
        if s.verdict().is_some() {
            break;
        }
        for run in s.next_runs() {
            let o = if fails(&run.units) {
                Outcome::Fail
            } else {
                Outcome::Pass
            };
            assert_eq!(s.record(run.id, o), Ok(()));
        }
    }
    match s.verdict() {
        Some(Verdict::Inconclusive { reason }) => {
            assert_eq!(
                reason,
                "inconsistent results: [u1 u2 u3 u4] failed but [u1 u2 … u6] (6 units), which contains it, passed. \
                 A flaky gate, or units that only fail without each other; nobody is blamed"
            );
        }
        other => panic!("expected inconclusive, got {other:?}\n{}", s.log().join("\n")),
    }
}

#[test]
fn the_rerun_passing_while_a_part_fails_is_inconsistent() {
    let mut s = match Search::new(numbered(6), cfg(3)) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let runs = s.next_runs();
    assert_eq!(runs.len(), 3);
    for run in runs {
        let o = if run.purpose == Purpose::FlakeCheck {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        assert_eq!(s.record(run.id, o), Ok(()));
    }
    assert!(
        matches!(s.verdict(), Some(Verdict::Inconclusive { .. })),
        "{:?}",
        s.verdict()
    );
}

#[test]
fn bad_input_is_refused() {
    assert_eq!(Search::new(vec![], cfg(1)).err(), Some(SearchError::NoUnits));
    assert_eq!(Search::new(numbered(3), cfg(0)).err(), Some(SearchError::NoSlots));
    let mut twice = numbered(3);
    twice[2].id = "u1".into();
    assert_eq!(
        Search::new(twice, cfg(1)).err(),
        Some(SearchError::DuplicateUnit("u1".into()))
    );
    let mut empty = numbered(3);
    empty[1].members.clear();
    assert_eq!(
        Search::new(empty, cfg(1)).err(),
        Some(SearchError::EmptyUnit("u2".into()))
    );
    insta::assert_snapshot!(
        [
            SearchError::NoUnits,
            SearchError::DuplicateUnit("acme/api#12".into()),
            SearchError::EmptyUnit("acme/api#12".into()),
            SearchError::NoSlots,
            SearchError::UnknownRun(7),
        ]
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n"),
        @r"
    a culprit search needs at least one unit, and the failing cycle merged none
    unit `acme/api#12` is given twice; give each pull request or Depends-On group once
    unit `acme/api#12` has no members; a unit is one pull request or a Depends-On group
    slots must be at least 1: the number of environments the search may use at once
    run 7 is not in flight: it was never started, or its result was already recorded
    "
    );
}

#[test]
fn results_for_runs_not_in_flight_are_refused() {
    let mut s = match Search::new(numbered(4), cfg(1)) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        s.record(1, Outcome::Fail),
        Err(SearchError::UnknownRun(1)),
        "not handed out yet"
    );
    let runs = s.next_runs();
    assert_eq!(runs.len(), 1);
    assert!(s.next_runs().is_empty(), "nothing more while the round runs");
    assert_eq!(s.record(99, Outcome::Fail), Err(SearchError::UnknownRun(99)));
    assert_eq!(s.record(runs[0].id, Outcome::Fail), Ok(()));
    assert_eq!(
        s.record(runs[0].id, Outcome::Fail),
        Err(SearchError::UnknownRun(runs[0].id))
    );
}

#[test]
fn a_search_survives_being_persisted_between_any_two_steps() {
    let m = model(&["u3"], &[&["u9", "u14"]]);
    let straight = sim(16, &m, cfg(3));
    let mut s = match Search::new(numbered(16), cfg(3)) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    for _ in 0..200 {
        if s.verdict().is_some() {
            break;
        }
        for run in s.next_runs() {
            let json = match serde_json::to_string(&s) {
                Ok(j) => j,
                Err(e) => panic!("{e}"),
            };
            s = match serde_json::from_str(&json) {
                Ok(s) => s,
                Err(e) => panic!("{e}"),
            };
            assert_eq!(s.record(run.id, m.outcome(&run)), Ok(()));
        }
    }
    assert_eq!(s.verdict(), Some(&straight.verdict));
    assert_eq!(s.runs(), straight.runs);
    assert_eq!(s.rounds(), straight.rounds);
    assert_eq!(s.log(), straight.log.as_slice());
}

#[test]
fn results_after_the_verdict_are_ignored() {
    let mut m = model(&["u2"], &[]);
    m.infra = Noise::Runs(vec![2, 4, 5]);
    let c = SearchConfig {
        infra_retries: 1,
        ..cfg(3)
    };
    let mut s = match Search::new(numbered(9), c) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let round1 = s.next_runs();
    assert_eq!(round1.len(), 3);
    // Run 2 hits an infrastructure error: its retry (run 4) starts at once, in its slot.
    assert_eq!(s.record(2, Outcome::Infra), Ok(()));
    let retry = s.next_runs();
    assert_eq!(retry.len(), 1);
    assert_eq!(
        (retry[0].id, retry[0].attempt, retry[0].units.clone()),
        (4, 2, round1[1].units.clone())
    );
    assert_eq!(s.record(4, Outcome::Infra), Ok(()));
    assert!(matches!(s.verdict(), Some(Verdict::Inconclusive { .. })));
    assert!(s.next_runs().is_empty());
    assert_eq!(s.record(1, Outcome::Fail), Ok(()), "still in flight: accepted, ignored");
    assert_eq!(s.in_flight().count(), 1);
    assert_eq!(s.rounds(), 1, "a retry is not a round");
}

// ---- the log people read ----

#[test]
fn log_of_one_culprit_with_one_slot() {
    let r = sim(8, &model(&["u6"], &[]), cfg(1));
    insta::assert_snapshot!(r.log.join("\n"));
}

#[test]
fn log_of_a_culprit_and_an_interaction_with_three_slots() {
    let r = sim(16, &model(&["u12"], &[&["u2", "u5"]]), cfg(3));
    insta::assert_snapshot!(r.log.join("\n"));
}

#[test]
fn log_of_a_flake_and_of_exhausted_infrastructure() {
    let flaky = sim(8, &model(&[], &[]), cfg(3));
    let mut m = model(&["u5"], &[]);
    m.infra = Noise::Runs(vec![2, 3, 4]);
    let infra = sim(8, &m, cfg(1));
    insta::assert_snapshot!(format!("{}\n---\n{}", flaky.log.join("\n"), infra.log.join("\n")));
}

// ---- the goals of issue #4, for every placement of one culprit ----

/// Runs and rounds for one culprit at every position among `n`.
fn each_placement(n: usize, c: SearchConfig) -> Vec<(usize, SimReport)> {
    (1..=n)
        .map(|i| {
            let name = format!("u{i}");
            let r = sim(n, &model(&[&name], &[]), c);
            assert_eq!(
                r.verdict,
                Verdict::Culprits {
                    units: vec![name.clone()],
                    interactions: vec![],
                    good: all_but(n, &[&name]),
                }
            );
            (i, r)
        })
        .collect()
}

#[test]
fn goal_one_slot_without_upfront_rerun_at_most_log2_n_plus_2_runs() {
    for n in 2..=64 {
        for (i, r) in each_placement(n, lazy(1)) {
            let goal = ceil_log(n, 2) + 2;
            assert!(
                r.runs <= goal,
                "n {n}, culprit u{i}: {} runs > {goal}\n{}",
                r.runs,
                r.log.join("\n")
            );
        }
    }
}

#[test]
fn one_slot_with_upfront_rerun_at_most_log2_n_plus_3_runs() {
    for n in 2..=64 {
        let all = each_placement(n, cfg(1));
        let bound = ceil_log(n, 2) + 3;
        for (i, r) in &all {
            assert!(r.runs <= bound, "n {n}, culprit u{i}: {} runs > {bound}", r.runs);
        }
        // The goal's +2 holds whenever the last probe was the culprit alone.
        let within_goal = all.iter().filter(|(_, r)| r.runs <= ceil_log(n, 2) + 2).count();
        assert!(
            within_goal * 2 >= n,
            "n {n}: only {within_goal} placements within log2 n + 2"
        );
    }
}

#[test]
fn goal_three_slots_at_most_log4_n_plus_2_rounds() {
    for n in 2..=64 {
        for c in [cfg(3), lazy(3)] {
            for (i, r) in each_placement(n, c) {
                let goal = ceil_log(n, 4) + 2;
                assert!(
                    r.rounds <= goal,
                    "n {n}, culprit u{i}, {c:?}: {} rounds > {goal}\n{}",
                    r.rounds,
                    r.log.join("\n")
                );
                assert!(r.max_in_flight <= 3);
            }
        }
    }
}

#[test]
fn rounds_with_s_slots_at_most_2_plus_log_s_plus_1_of_n_over_s() {
    for slots in 2usize..=4 {
        for n in 2usize..=64 {
            let bound = 2 + ceil_log(n.div_ceil(slots), slots + 1);
            for c in [cfg(slots), lazy(slots)] {
                for (i, r) in each_placement(n, c) {
                    assert!(
                        r.rounds <= bound,
                        "n {n}, culprit u{i}, {c:?}: {} rounds > {bound}",
                        r.rounds
                    );
                }
            }
        }
    }
}

#[test]
fn more_slots_never_take_more_rounds_for_one_culprit() {
    for n in [5, 8, 13, 16, 33, 64] {
        let worst = |slots| {
            each_placement(n, cfg(slots))
                .iter()
                .map(|(_, r)| r.rounds)
                .max()
                .unwrap_or(0)
        };
        let by_slots: Vec<u32> = (1..=5).map(worst).collect();
        assert!(by_slots.windows(2).all(|w| w[1] <= w[0]), "n {n}: {by_slots:?}");
    }
}

// ---- properties ----

/// A model whose minimal failing sets are disjoint: `culprits` lone culprits
/// and `pairs` pairs, all different units among `n`.
fn disjoint_model() -> impl Strategy<Value = (usize, Vec<usize>, Vec<(usize, usize)>)> {
    (2usize..=64, 0usize..=3, 0usize..=2)
        .prop_flat_map(|(n, c, p)| {
            let c = c.min(n);
            let p = p.min((n - c) / 2);
            (
                Just(n),
                Just(c),
                Just(p),
                Just(()).prop_perturb(move |_, mut rng| {
                    let mut pool: Vec<usize> = (1..=n).collect();
                    let mut pick = || {
                        let i = (rng.next_u32() as usize) % pool.len();
                        pool.swap_remove(i)
                    };
                    let cs: Vec<usize> = (0..c).map(|_| pick()).collect();
                    let ps: Vec<(usize, usize)> = (0..p).map(|_| (pick(), pick())).collect();
                    (cs, ps)
                }),
            )
        })
        .prop_map(|(n, _, _, (cs, ps))| (n, cs, ps))
}

fn config() -> impl Strategy<Value = SearchConfig> {
    (1usize..=4, 0u32..=2, any::<bool>()).prop_map(|(slots, infra_retries, flake_rerun)| SearchConfig {
        slots,
        infra_retries,
        flake_rerun,
    })
}

fn name(i: usize) -> String {
    format!("u{i}")
}

/// Generous but real: per blamed item, a locate (≤ log2 n + 1 rounds), a
/// confirmation and a check of the rest; per group, a wasted locate and a
/// prefix search of ≤ log2 n + 1 rounds per member; plus the flake check.
fn round_bound(n: usize, culprits: usize, groups: &[usize]) -> u32 {
    let l = ceil_log(n, 2) + 1;
    let per_culprit = l + 2;
    let per_group: u32 = groups.iter().map(|&g| (l + 2) + g as u32 * l + 1).sum();
    2 + culprits as u32 * per_culprit + per_group
}

/// What every verdict must satisfy, whatever the model.
fn check_sound(n: usize, m: &Model, c: &SearchConfig, r: &SimReport) -> Result<(), TestCaseError> {
    prop_assert!(r.max_in_flight <= c.slots);
    prop_assert!(r.runs <= run_limit(n, c));
    let mut ids = BTreeSet::new();
    for (run, _) in &r.trace {
        prop_assert!(ids.insert(run.id), "run ids are unique");
        prop_assert!(!run.units.is_empty());
    }
    if let Verdict::Culprits {
        units,
        interactions,
        good,
    } = &r.verdict
    {
        // Every blamed unit fails alone; every group fails and is minimal.
        for u in units {
            prop_assert!(m.fails(std::slice::from_ref(u)), "{u} does not fail alone");
        }
        for g in interactions {
            prop_assert!(g.len() >= 2);
            prop_assert!(m.fails(g), "{g:?} does not fail");
            for i in 0..g.len() {
                let mut without = g.clone();
                without.remove(i);
                prop_assert!(!m.fails(&without), "{g:?} is not minimal");
            }
        }
        // The good set passes, and everything is accounted for exactly once.
        prop_assert!(!m.fails(good), "good set fails: {good:?}");
        let mut every: Vec<String> = units
            .iter()
            .chain(interactions.iter().flatten())
            .chain(good)
            .cloned()
            .collect();
        every.sort();
        let mut expected: Vec<String> = (1..=n).map(name).collect();
        expected.sort();
        prop_assert_eq!(every, expected);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verdict_is_exactly_the_model_when_failing_sets_are_disjoint(
        (n, cs, ps) in disjoint_model(),
        c in config(),
    ) {
        let m = Model {
            culprits: cs.iter().map(|&i| name(i)).collect(),
            interactions: ps.iter().map(|&(a, b)| vec![name(a.min(b)), name(a.max(b))]).collect(),
            ..Model::default()
        };
        let r = match simulate(numbered(n), &m, c) {
            Ok(r) => r,
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        check_sound(n, &m, &c, &r)?;
        if cs.is_empty() && ps.is_empty() {
            prop_assert_eq!(&r.verdict, &Verdict::Flaky);
        } else {
            let mut want_units = cs.clone();
            want_units.sort_unstable();
            let mut want_groups: Vec<Vec<usize>> = ps.iter().map(|&(a, b)| vec![a.min(b), a.max(b)]).collect();
            want_groups.sort();
            let blamed: BTreeSet<usize> = cs.iter().copied().chain(ps.iter().flat_map(|&(a, b)| [a, b])).collect();
            let want = Verdict::Culprits {
                units: want_units.iter().map(|&i| name(i)).collect(),
                interactions: want_groups.iter().map(|g| g.iter().map(|&i| name(i)).collect()).collect(),
                good: (1..=n).filter(|i| !blamed.contains(i)).map(name).collect(),
            };
            prop_assert_eq!(&r.verdict, &want, "{}", r.log.join("\n"));
            let bound = round_bound(n, cs.len(), &vec![2; ps.len()]);
            prop_assert!(r.rounds <= bound, "{} rounds > {}", r.rounds, bound);
            prop_assert!(r.runs as usize <= c.slots * r.rounds as usize);
        }
    }

    #[test]
    fn overlapping_groups_are_never_blamed_wrongly(
        n in 2usize..=24,
        raw_culprits in proptest::collection::vec(1usize..=24, 0..=2),
        raw_groups in proptest::collection::vec(proptest::collection::vec(1usize..=24, 2..=3), 1..=3),
        c in config(),
    ) {
        let fit = |i: usize| (i - 1) % n + 1;
        let m = Model {
            culprits: raw_culprits.iter().map(|&i| name(fit(i))).collect(),
            interactions: raw_groups
                .iter()
                .map(|g| g.iter().map(|&i| name(fit(i))).collect::<BTreeSet<_>>().into_iter().collect())
                .collect(),
            ..Model::default()
        };
        let r = match simulate(numbered(n), &m, c) {
            Ok(r) => r,
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        check_sound(n, &m, &c, &r)?;
        let all: Vec<String> = (1..=n).map(name).collect();
        if m.fails(&all) {
            prop_assert!(matches!(r.verdict, Verdict::Culprits { .. }), "{:?}", r.verdict);
        } else {
            prop_assert_eq!(&r.verdict, &Verdict::Flaky);
        }
    }

    #[test]
    fn infrastructure_errors_delay_or_stop_the_search_but_never_change_the_blame(
        (n, cs, ps) in disjoint_model(),
        c in config(),
        per_mille in 0u32..=600,
        seed in any::<u64>(),
    ) {
        let clean = Model {
            culprits: cs.iter().map(|&i| name(i)).collect(),
            interactions: ps.iter().map(|&(a, b)| vec![name(a.min(b)), name(a.max(b))]).collect(),
            ..Model::default()
        };
        let noisy = Model { infra: Noise::Rate { per_mille, seed }, ..clean.clone() };
        let want = match simulate(numbered(n), &clean, c) {
            Ok(r) => r.verdict,
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        let r = match simulate(numbered(n), &noisy, c) {
            Ok(r) => r,
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        check_sound(n, &noisy, &c, &r)?;
        match &r.verdict {
            Verdict::Inconclusive { reason } => prop_assert!(reason.starts_with("infrastructure:"), "{}", reason),
            v => prop_assert_eq!(v, &want),
        }
    }

    #[test]
    fn a_flaky_gate_never_hangs_the_search(
        (n, cs, ps) in disjoint_model(),
        c in config(),
        per_mille in 0u32..=300,
        seed in any::<u64>(),
    ) {
        let m = Model {
            culprits: cs.iter().map(|&i| name(i)).collect(),
            interactions: ps.iter().map(|&(a, b)| vec![name(a.min(b)), name(a.max(b))]).collect(),
            flakes: Noise::Rate { per_mille, seed },
            ..Model::default()
        };
        let r = simulate(numbered(n), &m, c);
        prop_assert!(!matches!(r, Err(SimError::Runaway { .. }) | Err(SimError::Stalled)), "{:?}", r.err());
        if let Ok(r) = r {
            prop_assert!(r.max_in_flight <= c.slots);
            if let Verdict::Culprits { units, interactions, good } = &r.verdict {
                let mut every: Vec<&String> = units.iter().chain(interactions.iter().flatten()).chain(good).collect();
                every.sort();
                every.dedup();
                prop_assert_eq!(every.len(), n, "blamed and good are disjoint and cover every unit");
            }
        }
    }

    #[test]
    fn a_persisted_search_continues_exactly(
        (n, cs, ps) in disjoint_model(),
        c in config(),
        cut in 0usize..40,
    ) {
        let m = Model {
            culprits: cs.iter().map(|&i| name(i)).collect(),
            interactions: ps.iter().map(|&(a, b)| vec![name(a.min(b)), name(a.max(b))]).collect(),
            ..Model::default()
        };
        let want = match simulate(numbered(n), &m, c) {
            Ok(r) => r,
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        let mut s = match Search::new(numbered(n), c) {
            Ok(s) => s,
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        let mut recorded = 0;
        while s.verdict().is_none() {
            let runs = s.next_runs();
            prop_assert!(!runs.is_empty());
            for run in runs {
                if recorded == cut {
                    let json = serde_json::to_string(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    s = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
                recorded += 1;
                prop_assert_eq!(s.record(run.id, m.outcome(&run)), Ok(()));
            }
        }
        prop_assert_eq!(s.verdict(), Some(&want.verdict));
        prop_assert_eq!(s.runs(), want.runs);
    }
}
