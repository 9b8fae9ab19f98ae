//! Fleets (issue #5 point 2; seed 003): an environment with several
//! targets — hosts for the `command` driver (`targets = [...]`), or N
//! copies on loopback ports for the `process` driver (`instances = N`).
//!
//! A rollout goes in waves: the blessed target alone first, then the canary
//! targets, then the rest in batches (`batch = 2` or `batch = "25%"` of the
//! whole fleet, rounded up, at least one). The engine deploys a wave's
//! targets concurrently and never starts the next wave after a failure.
//! Pure: [`plan`] only orders names; property-tested below (every target
//! exactly once, blessed first, canaries before batches, batch sizes).
//!
//! What runs on a target is recorded under a key derived from the
//! environment instance ([`target_key`]): the blessed target *is* the
//! instance (`staging`), the others are `staging#web-2`. Instance names
//! never contain `#`, so the keys cannot collide with a real instance.
//!
//! Per-component counts (issue #5 point 3; a profile's `instances = { api
//! = 3, db = 1 }`): a listed component runs on the first `count` targets in
//! rollout order ([`Fleet::order`]: the blessed target, the canaries, the
//! rest), so the blessed target runs every component; a component not
//! listed runs on every target ([`Fleet::runs_on`]).

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// One target of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Name (`GREENROOM_TARGET`): a host name, or `t1`..`tN` for instances.
    pub name: String,
    /// Where it is (`GREENROOM_TARGET_ADDRESS`): the name unless given
    /// (`{ name = "web-1", address = "10.0.0.1" }`); `127.0.0.1` for
    /// process instances.
    pub address: String,
}

/// How many targets a batch takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// This many (at least 1).
    Count(u32),
    /// This percentage of the whole fleet, rounded up (1..=100).
    Percent(u32),
}

impl Batch {
    /// The batch size for a fleet of `fleet` targets: at least 1.
    pub fn size(self, fleet: usize) -> usize {
        let n = match self {
            Batch::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Batch::Percent(p) => (fleet * usize::try_from(p).unwrap_or(100)).div_ceil(100),
        };
        n.max(1)
    }
}

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Batch::Count(n) => write!(f, "{n}"),
            Batch::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// An environment's fleet, validated (`config::fleet`): target names are
/// unique, `blessed` and every canary are targets, the blessed target is
/// no canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// Every target, in config order.
    pub targets: Vec<Target>,
    /// The target deployed first, alone (migrations run against it).
    pub blessed: String,
    /// Deployed after the blessed target, before the batches.
    pub canary: Vec<String>,
    /// Size of the batches after the canaries.
    pub batch: Batch,
    /// Component -> on how many targets it runs (1..=the number of
    /// targets; a profile's `instances` table): the first that many in
    /// rollout order ([`Fleet::order`]). A component not listed runs on
    /// every target.
    pub counts: BTreeMap<String, usize>,
}

/// Which part of the rollout a wave is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveKind {
    /// The blessed target, alone.
    Blessed,
    /// The canary targets, together.
    Canary,
    /// One batch of the rest (numbered from 1).
    Batch,
}

/// One wave of a rollout: targets deployed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    /// Blessed, canary or batch.
    pub kind: WaveKind,
    /// For batches, the batch number from 1; 0 otherwise.
    pub number: usize,
    /// Target names, in config order.
    pub targets: Vec<String>,
}

impl Wave {
    /// `blessed`, `canary`, `batch 2`.
    pub fn label(&self) -> String {
        match self.kind {
            WaveKind::Blessed => "blessed".into(),
            WaveKind::Canary => "canary".into(),
            WaveKind::Batch => format!("batch {}", self.number),
        }
    }
}

impl Fleet {
    /// `instances = n` for the process driver: targets `t1`..`tN` on loopback.
    pub fn instances(n: u32) -> Vec<Target> {
        (1..=n)
            .map(|i| Target {
                name: format!("t{i}"),
                address: "127.0.0.1".into(),
            })
            .collect()
    }

    /// The target called `name`.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// Where what runs on `target` of `instance` is recorded (see the module
    /// documentation).
    pub fn key(&self, instance: &str, target: &str) -> String {
        target_key(instance, target, target == self.blessed)
    }

    /// Every target name in rollout order: the blessed target, then the
    /// canaries, then the rest (the waves of [`plan`], flattened).
    pub fn order(&self) -> Vec<String> {
        plan(self).into_iter().flat_map(|w| w.targets).collect()
    }

    /// Whether `component` runs on `target`: always when the component has
    /// no count; otherwise when the target is among the first `count` in
    /// rollout order (so the blessed target runs every component).
    pub fn runs_on(&self, component: &str, target: &str) -> bool {
        match self.counts.get(component) {
            None => true,
            Some(n) => self.order().iter().take(*n).any(|t| t == target),
        }
    }

    /// The targets `component` runs on, in rollout order.
    pub fn targets_of(&self, component: &str) -> Vec<String> {
        let n = self.counts.get(component).copied().unwrap_or(usize::MAX);
        self.order().into_iter().take(n).collect()
    }

    /// The wave a target is in, by label.
    pub fn wave_of(&self, target: &str) -> Option<String> {
        plan(self)
            .into_iter()
            .find(|w| w.targets.iter().any(|t| t == target))
            .map(|w| w.label())
    }
}

/// The key of a target: the instance itself for the blessed target,
/// `INSTANCE#TARGET` for the others.
pub fn target_key(instance: &str, target: &str, blessed: bool) -> String {
    if blessed {
        instance.to_string()
    } else {
        format!("{instance}#{target}")
    }
}

/// The instance and target of a key (`staging#web-2` -> `staging`,
/// `web-2`); a plain instance name has no target part.
pub fn split_key(key: &str) -> (&str, Option<&str>) {
    match key.split_once('#') {
        Some((i, t)) => (i, Some(t)),
        None => (key, None),
    }
}

/// The rollout: the blessed target alone, then the canaries together, then
/// the rest in batches of `fleet.batch`, each in config order. Every target
/// is in exactly one wave; empty waves are left out.
pub fn plan(fleet: &Fleet) -> Vec<Wave> {
    let mut waves = vec![Wave {
        kind: WaveKind::Blessed,
        number: 0,
        targets: vec![fleet.blessed.clone()],
    }];
    let canary: Vec<String> = fleet
        .targets
        .iter()
        .filter(|t| t.name != fleet.blessed && fleet.canary.contains(&t.name))
        .map(|t| t.name.clone())
        .collect();
    if !canary.is_empty() {
        waves.push(Wave {
            kind: WaveKind::Canary,
            number: 0,
            targets: canary,
        });
    }
    let rest: Vec<String> = fleet
        .targets
        .iter()
        .filter(|t| t.name != fleet.blessed && !fleet.canary.contains(&t.name))
        .map(|t| t.name.clone())
        .collect();
    let size = fleet.batch.size(fleet.targets.len());
    for (i, chunk) in rest.chunks(size).enumerate() {
        waves.push(Wave {
            kind: WaveKind::Batch,
            number: i + 1,
            targets: chunk.to_vec(),
        });
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fleet(n: u32, blessed: usize, canary: &[usize], batch: Batch) -> Fleet {
        let targets = Fleet::instances(n);
        Fleet {
            blessed: targets[blessed].name.clone(),
            canary: canary.iter().map(|i| targets[*i].name.clone()).collect(),
            targets,
            batch,
            counts: BTreeMap::new(),
        }
    }

    fn names(w: &Wave) -> Vec<&str> {
        w.targets.iter().map(String::as_str).collect()
    }

    #[test]
    fn blessed_then_canary_then_batches() {
        let f = fleet(4, 0, &[1], Batch::Count(2));
        let w = plan(&f);
        let labels: Vec<String> = w.iter().map(Wave::label).collect();
        assert_eq!(labels, ["blessed", "canary", "batch 1"]);
        assert_eq!(names(&w[0]), ["t1"]);
        assert_eq!(names(&w[1]), ["t2"]);
        assert_eq!(names(&w[2]), ["t3", "t4"]);
    }

    #[test]
    fn percentages_are_of_the_whole_fleet_rounded_up() {
        assert_eq!(Batch::Percent(25).size(50), 13);
        assert_eq!(Batch::Percent(25).size(4), 1);
        assert_eq!(Batch::Percent(1).size(3), 1);
        assert_eq!(Batch::Percent(100).size(7), 7);
        assert_eq!(Batch::Count(0).size(7), 1);
        let w = plan(&fleet(50, 0, &[], Batch::Count(10)));
        let sizes: Vec<usize> = w.iter().map(|w| w.targets.len()).collect();
        assert_eq!(sizes, [1, 10, 10, 10, 10, 9]);
        assert_eq!(w[5].label(), "batch 5");
    }

    #[test]
    fn a_single_target_is_one_wave_and_blessed_need_not_be_first_in_the_file() {
        assert_eq!(plan(&fleet(1, 0, &[], Batch::Count(3))).len(), 1);
        let w = plan(&fleet(3, 2, &[0], Batch::Count(1)));
        assert_eq!(names(&w[0]), ["t3"]);
        assert_eq!(names(&w[1]), ["t1"]);
        assert_eq!(names(&w[2]), ["t2"]);
    }

    #[test]
    fn keys_and_their_parts() {
        let f = fleet(3, 1, &[], Batch::Count(1));
        assert_eq!(f.key("staging", "t2"), "staging");
        assert_eq!(f.key("staging", "t3"), "staging#t3");
        assert_eq!(split_key("staging#t3"), ("staging", Some("t3")));
        assert_eq!(split_key("dev-2"), ("dev-2", None));
        assert_eq!(f.wave_of("t3").as_deref(), Some("batch 2"));
        assert_eq!(f.wave_of("nope"), None);
    }

    #[test]
    fn counted_components_run_on_the_first_targets_of_the_rollout() {
        let mut f = fleet(4, 0, &[], Batch::Count(1));
        f.counts = BTreeMap::from([("api".to_string(), 3), ("db".to_string(), 1)]);
        let on = |c: &str| -> Vec<&str> {
            ["t1", "t2", "t3", "t4"]
                .into_iter()
                .filter(|t| f.runs_on(c, t))
                .collect()
        };
        assert_eq!(on("api"), ["t1", "t2", "t3"]);
        assert_eq!(on("db"), ["t1"]);
        assert_eq!(on("web"), ["t1", "t2", "t3", "t4"], "not listed: everywhere");
        assert_eq!(f.targets_of("db"), ["t1"]);
        assert_eq!(f.targets_of("web").len(), 4);
        // Rollout order: the blessed target (t3) and the canary (t4) first.
        let mut g = fleet(4, 2, &[3], Batch::Count(1));
        g.counts = BTreeMap::from([("api".to_string(), 2), ("db".to_string(), 1)]);
        assert_eq!(g.order(), ["t3", "t4", "t1", "t2"]);
        assert_eq!(g.targets_of("api"), ["t3", "t4"]);
        assert!(g.runs_on("db", "t3") && !g.runs_on("db", "t1"));
    }

    fn arb_fleet() -> impl Strategy<Value = Fleet> {
        (
            1u32..60,
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<bool>(), 60),
            any::<bool>(),
            1u32..120,
        )
            .prop_map(|(n, b, canary_mask, percent, size)| {
                let targets = Fleet::instances(n);
                let blessed = targets[b.index(targets.len())].name.clone();
                let canary = targets
                    .iter()
                    .zip(&canary_mask)
                    .filter(|(t, c)| **c && t.name != blessed)
                    .map(|(t, _)| t.name.clone())
                    .collect();
                let batch = if percent {
                    Batch::Percent(size.min(100))
                } else {
                    Batch::Count(size)
                };
                Fleet {
                    targets,
                    blessed,
                    canary,
                    batch,
                    counts: BTreeMap::new(),
                }
            })
    }

    /// A fleet with a count for `api` and `db` (1..=its size).
    fn arb_counted() -> impl Strategy<Value = Fleet> {
        (arb_fleet(), any::<prop::sample::Index>(), any::<prop::sample::Index>()).prop_map(|(mut f, a, d)| {
            let n = f.targets.len();
            f.counts = BTreeMap::from([("api".to_string(), a.index(n) + 1), ("db".to_string(), d.index(n) + 1)]);
            f
        })
    }

    proptest! {
        #[test]
        fn a_counted_component_runs_on_exactly_count_targets_blessed_first(f in arb_counted()) {
            let order = f.order();
            prop_assert_eq!(order.len(), f.targets.len());
            prop_assert_eq!(&order[0], &f.blessed);
            for (c, n) in &f.counts {
                let on: Vec<&String> = order.iter().filter(|t| f.runs_on(c, t)).collect();
                prop_assert_eq!(on.len(), *n);
                prop_assert!(f.runs_on(c, &f.blessed), "the blessed target runs {}", c);
                // The first `n` in rollout order, and `targets_of` says the same.
                prop_assert!(on.iter().zip(&order).all(|(a, b)| *a == b));
                prop_assert_eq!(f.targets_of(c), order[..*n].to_vec());
            }
            prop_assert!(f.targets.iter().all(|t| f.runs_on("unlisted", &t.name)));
        }

        #[test]
        fn every_target_exactly_once_blessed_first_canaries_before_batches(f in arb_fleet()) {
            let waves = plan(&f);
            let all: Vec<&String> = waves.iter().flat_map(|w| &w.targets).collect();
            prop_assert_eq!(all.len(), f.targets.len());
            for t in &f.targets {
                prop_assert_eq!(all.iter().filter(|n| **n == &t.name).count(), 1);
            }
            prop_assert_eq!(&waves[0].targets, &vec![f.blessed.clone()]);
            prop_assert_eq!(waves[0].kind, WaveKind::Blessed);
            prop_assert!(waves.iter().all(|w| !w.targets.is_empty()));
            // Kinds never go backwards: blessed, canary, batch, batch...
            let rank = |k: WaveKind| match k { WaveKind::Blessed => 0, WaveKind::Canary => 1, WaveKind::Batch => 2 };
            prop_assert!(waves.windows(2).all(|p| rank(p[0].kind) <= rank(p[1].kind)));
            prop_assert!(waves.iter().filter(|w| w.kind != WaveKind::Batch).count() <= 2);
            for w in waves.iter().filter(|w| w.kind == WaveKind::Canary) {
                prop_assert!(w.targets.iter().all(|t| f.canary.contains(t)));
                prop_assert_eq!(w.targets.len(), f.canary.len());
            }
            let size = f.batch.size(f.targets.len());
            let batches: Vec<&Wave> = waves.iter().filter(|w| w.kind == WaveKind::Batch).collect();
            for (i, w) in batches.iter().enumerate() {
                prop_assert_eq!(w.number, i + 1);
                prop_assert!(w.targets.iter().all(|t| !f.canary.contains(t) && *t != f.blessed));
                if i + 1 < batches.len() {
                    prop_assert_eq!(w.targets.len(), size);
                } else {
                    prop_assert!(w.targets.len() <= size);
                }
            }
        }
    }
}
