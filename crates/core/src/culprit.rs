//! Culprit search (issue #4, point 6): when a cycle that merged several units
//! fails a blocking gate on a code failure, find which unit, or which
//! combination of units, broke it, using the environment pool's free slots.
//!
//! This module owns the decisions of that search: the flake check, which
//! subsets of the units to test on top of the base and how many at once, what
//! each result means, when a suspect counts as confirmed, how several culprits
//! and interactions (units that fail only together) are told apart, and the
//! verdict, with a human log of every round. A *unit* is one pull request or a
//! `Depends-On` group of pull requests that are always tested and excluded
//! together ([`crate::pending::Unit`]); the search never splits a unit.
//!
//! It must never do I/O, read a clock or start anything: [`Search`] is a state
//! machine the server drives, and plain data (serde) the server persists after
//! every step. [`sim`] drives it against a model of which subsets fail, for the
//! tests and the benchmark (`cargo bench -p greenroom-core --bench culprit`).
//!
//! # The conversation with the server
//!
//! 1. [`Search::new`] with the units of the failing cycle, in merge order.
//! 2. [`Search::next_runs`]: start these runs. A run deploys the base plus
//!    `run.units` on a free environment of the pool and runs the failing gate.
//!    Never more than [`SearchConfig::slots`] runs are in flight.
//! 3. [`Search::record`] each result as it comes: [`Outcome::Pass`],
//!    [`Outcome::Fail`], or [`Outcome::Infra`] (an infrastructure error: the
//!    same units are retried as a new run, up to `infra_retries` times, then
//!    the search ends [`Verdict::Inconclusive`]). Then call `next_runs` again.
//! 4. [`Search::verdict`] is `Some` once the search is over. For
//!    [`Verdict::Culprits`]: exclude `units` and every `interactions` group from
//!    the pending set, tell their authors, and redeploy `good`.
//!
//! # Assumptions and what a verdict guarantees
//!
//! The search assumes the base alone passes, and that adding units to a failing
//! set never makes it pass (*monotone*). It reuses results that follow from
//! earlier runs (a subset of a passing set passes, a superset of a failing set
//! fails) instead of running them again. A result that contradicts an earlier
//! one (a set fails, a larger set containing it passes) ends the search
//! inconclusive: a flaky gate, or units that only fail without each other.
//! Under these assumptions:
//!
//! - every unit in `Culprits::units` failed alone on the base, in a run of
//!   this search (*a run with it that fails*);
//! - every group in `Culprits::interactions` failed together in a run of this
//!   search, and passes without any one of its members (each such subset is
//!   inside a passing run): a minimal failing group, reported as a whole;
//! - `Culprits::good` passed together, without any blamed unit, in a run of
//!   this search (*a run without it that passes*, for every blamed unit at
//!   once), so excluding the blamed units is enough;
//! - blamed units, groups and `good` are disjoint and cover every unit;
//! - when the minimal failing sets of the real system are disjoint (lone
//!   culprits, and groups that neither overlap nor contain a culprit), the
//!   verdict names exactly them. When groups overlap, each reported group is
//!   one of them and the reported ones are enough to make the rest pass; a
//!   unit whose every failing combination involves an excluded unit is not
//!   blamed;
//! - nobody is blamed on a flake that did not reproduce, on an infrastructure
//!   error (no result of an `Infra` run is ever used) or on contradictory
//!   results.
//!
//! # The algorithm
//!
//! With `flake_rerun`, round 1 re-runs every unit (if that passes:
//! [`Verdict::Flaky`]) and uses the other free slots to test parts of the units
//! already. Then it narrows the suspects with a k-ary split: with `b` slots it
//! cuts the suspects into `b + 1` parts, tests `b` of them alone on the base,
//! and goes on with the smallest part that failed; when all tested parts
//! pass, it goes on with the untested one *provisionally* (right when a lone
//! culprit is in there; wrong when the failure needs units from two parts).
//! Units already seen passing alone are dropped from the suspects. At one
//! suspect it confirms: the suspect alone (unless a run already showed it
//! failing alone) and, in the same round when a slot is free, every unit not
//! blamed yet without it; slots still free test parts of that rest, in case
//! it fails. If the suspect fails alone it is a culprit; if the rest fails
//! too, the search goes on with the smallest failing set seen among the rest
//! (parts that failed earlier are reused), until the rest passes. If the
//! suspect passes alone, the failure needs a combination: a prefix search
//! over the last set seen failing alone finds the shortest prefix (in merge
//! order) that fails, whose last unit is needed; it repeats with the needed
//! units kept and only the units before that one, until the needed units
//! fail alone: a minimal failing group, found with about `log2 n` runs per
//! member (`log_(s+1) n` rounds with `s` slots), never by trying combinations.
//! Without `flake_rerun`, the cycle's failure is not re-run up front: the
//! culprit failing alone is the reproduction, and only if nothing reproduces
//! the failure are all units re-run (a pass there is [`Verdict::Flaky`]).
//! Failing sets found in the same round are narrowed one after the other,
//! not in parallel.
//!
//! # What is counted
//!
//! [`Search::runs`] counts every run the search asked for: the flake re-run,
//! probes, confirmations, runs on spare slots that turn out not to be needed,
//! and infrastructure retries. It does not count the cycle's own failing run,
//! nor results implied by earlier runs (they are reused, not run again: a
//! confirmation already shown by an earlier run of exactly that subset, or of
//! a subset or superset that implies it, costs nothing). [`Search::rounds`]
//! counts batches: a round is the runs planned together and started at once
//! (at most `slots`); the next round is planned when every run of the round
//! has its result. A retry after an infrastructure error takes its run's
//! freed slot at once and is not a new round.
//!
//! # Cost with one culprit among `n` units
//!
//! - one slot, `flake_rerun`: at most `ceil(log2 n) + 3` runs, `+ 2` when the
//!   last probe was the culprit alone. Issue #4's goal, `ceil(log2 n) + 2`,
//!   cannot be met by any search that re-runs the failing set first *and*
//!   tells a lone culprit from a pair failing only together: for `n = 4`, an
//!   exhaustive search over every adaptive strategy needs 5 runs, not 4.
//! - one slot, no `flake_rerun`: at most `ceil(log2 n) + 2` runs (the goal);
//!   a flaky failure then costs about as many runs instead of one.
//! - `s >= 2` slots: at most `2 + ceil(log_(s+1) ceil(n / s))` rounds, within
//!   the goal `ceil(log4 n) + 2` with three slots, in either mode.

use crate::pending;
use serde::{Deserialize, Serialize};

/// One thing the search blames or clears as a whole: a pull request, or a
/// `Depends-On` group of pull requests that are always tested together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Unique among the units of one search: `acme/api#12`, `acme/api#12+acme/web#7`.
    pub id: String,
    /// Its pull requests (`owner/repo#12`), whose authors hear about a verdict.
    pub members: Vec<String>,
}

impl From<&pending::Unit> for Unit {
    fn from(u: &pending::Unit) -> Unit {
        Unit {
            id: u.id.clone(),
            members: u.members.iter().map(|m| m.to_string()).collect(),
        }
    }
}

/// How the search may use the environment pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// Runs in flight at once: the free environments of the pool (at least 1).
    pub slots: usize,
    /// How many times a run that ended in an infrastructure error is retried
    /// before the search gives up, inconclusive.
    pub infra_retries: u32,
    /// Re-run every unit first to rule out a flake (issue #4). Without it, the
    /// culprit failing alone is the reproduction, and a flaky failure is only
    /// recognised once nothing reproduces it.
    pub flake_rerun: bool,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            slots: 1,
            infra_retries: 2,
            flake_rerun: true,
        }
    }
}

/// Why the search asks for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Every unit again, to rule out a flake.
    FlakeCheck,
    /// A subset, to narrow the suspects down.
    Probe,
    /// The suspect alone on the base: it must fail.
    ConfirmWith,
    /// The units not blamed yet, without the blamed ones: they must pass.
    ConfirmWithout,
}

/// One deployment of the base plus some units, and a run of the failing gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Unique within the search; pass it back to [`Search::record`].
    pub id: u32,
    /// Unit ids to merge onto the base, in merge order.
    pub units: Vec<String>,
    /// Why the search asks for it.
    pub purpose: Purpose,
    /// 1 for the first try; more for retries after infrastructure errors.
    pub attempt: u32,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The gate passed.
    Pass,
    /// The gate failed on a code failure.
    Fail,
    /// An infrastructure error: says nothing about the units.
    Infra,
}

/// The result of a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Verdict {
    /// The failure did not reproduce: nobody is blamed.
    Flaky,
    /// Who broke it, and what is fine to redeploy.
    Culprits {
        /// Units that fail alone on the base, in merge order.
        units: Vec<String>,
        /// Groups of units that fail only together, each in merge order.
        interactions: Vec<Vec<String>>,
        /// Units that passed together without the blamed ones, in merge order.
        good: Vec<String>,
    },
    /// The search gave up without blaming anybody.
    Inconclusive {
        /// What happened, and what to do next.
        reason: String,
    },
}

/// A search that cannot start, or a result it cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// No units to search.
    #[error("a culprit search needs at least one unit, and the failing cycle merged none")]
    NoUnits,
    /// The same unit id twice.
    #[error("unit `{0}` is given twice; give each pull request or Depends-On group once")]
    DuplicateUnit(String),
    /// A unit without pull requests.
    #[error("unit `{0}` has no members; a unit is one pull request or a Depends-On group")]
    EmptyUnit(String),
    /// `slots` is 0.
    #[error("slots must be at least 1: the number of environments the search may use at once")]
    NoSlots,
    /// A result for a run that is not in flight.
    #[error("run {0} is not in flight: it was never started, or its result was already recorded")]
    UnknownRun(u32),
}

/// Unit indices (into [`Search::units`]), ascending: merge order.
type Set = Vec<usize>;

/// A result of this search, reused for everything it implies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    set: Set,
    fails: bool,
}

/// One subset the current step needs a result for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Question {
    set: Set,
    purpose: Purpose,
}

/// The questions of the round in flight, and their answers so far (`true`: fails).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Round {
    questions: Vec<Question>,
    answers: Vec<Option<bool>>,
}

/// A run handed out (or about to be) and the question it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Flight {
    run: Run,
    question: usize,
}

/// Where the search is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// Re-run every unit; `parts[..tested]` are tested alone alongside.
    Start { parts: Vec<Set>, tested: usize },
    /// Narrow `cand` down; `known` is the last set seen failing alone (none
    /// yet without `flake_rerun`); `cand` is provisional when it differs.
    Locate {
        known: Option<Set>,
        cand: Set,
        parts: Vec<Set>,
        tested: usize,
    },
    /// One suspect left; `without`: the rest without it is asked this round,
    /// with `parts[..tested]` of that rest tested alone on the slots left.
    Confirm {
        suspect: usize,
        known: Option<Set>,
        without: bool,
        parts: Vec<Set>,
        tested: usize,
    },
    /// Run the units not blamed yet, without the blamed ones, with
    /// `parts[..tested]` of them tested alone on the other slots.
    Rest { parts: Vec<Set>, tested: usize },
    /// Nothing reproduced the failure yet: run every unit. `needed`: a unit
    /// the rest passed without.
    Recheck { needed: Option<usize> },
    /// Prefix search for a minimal failing group: `req ∪ order[..hi]` fails;
    /// `req ∪ order[..lo]` passes (`None`: not even `req` alone is known).
    Group {
        req: Set,
        order: Set,
        lo: Option<usize>,
        hi: usize,
        asked: Vec<usize>,
    },
}

/// One culprit search: see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Search {
    units: Vec<Unit>,
    cfg: SearchConfig,
    phase: Phase,
    seen: Vec<Seen>,
    /// Units not blamed yet.
    rest: Set,
    culprits: Set,
    groups: Vec<Set>,
    round: Option<Round>,
    queued: Vec<Flight>,
    in_flight: Vec<Flight>,
    next_id: u32,
    runs: u32,
    rounds: u32,
    log: Vec<String>,
    verdict: Option<Verdict>,
}

impl Phase {
    fn rest() -> Phase {
        Phase::Rest {
            parts: Vec::new(),
            tested: 0,
        }
    }
}

impl Search {
    /// A search over `units` (merge order) of a cycle whose blocking gate failed.
    ///
    /// One unit is fine: after the flake check it is the culprit (the base is
    /// assumed to pass).
    pub fn new(units: Vec<Unit>, cfg: SearchConfig) -> Result<Search, SearchError> {
        if units.is_empty() {
            return Err(SearchError::NoUnits);
        }
        if cfg.slots == 0 {
            return Err(SearchError::NoSlots);
        }
        for (i, u) in units.iter().enumerate() {
            if u.members.is_empty() {
                return Err(SearchError::EmptyUnit(u.id.clone()));
            }
            if units[..i].iter().any(|o| o.id == u.id) {
                return Err(SearchError::DuplicateUnit(u.id.clone()));
            }
        }
        let all: Set = (0..units.len()).collect();
        let phase = if cfg.flake_rerun {
            let (parts, tested) = if units.len() > 1 {
                partition(&all, cfg.slots - 1)
            } else {
                (Vec::new(), 0)
            };
            Phase::Start { parts, tested }
        } else {
            Phase::Locate {
                known: None,
                cand: all.clone(),
                parts: Vec::new(),
                tested: 0,
            }
        };
        let mut s = Search {
            units,
            cfg,
            phase,
            seen: Vec::new(),
            rest: all,
            culprits: Vec::new(),
            groups: Vec::new(),
            round: None,
            queued: Vec::new(),
            in_flight: Vec::new(),
            next_id: 1,
            runs: 0,
            rounds: 0,
            log: Vec::new(),
            verdict: None,
        };
        let n = s.units.len();
        let how = if cfg.flake_rerun {
            "re-run first to rule out a flake"
        } else {
            "no separate flake re-run: the culprit failing alone reproduces the failure"
        };
        s.note(format!(
            "culprit search over {n} unit{} on {} slot{}; {how}",
            plural(n),
            cfg.slots,
            plural(cfg.slots)
        ));
        if let Phase::Locate { cand, .. } = &s.phase
            && cand.len() == 1
        {
            s.phase = Phase::Confirm {
                suspect: cand[0],
                known: None,
                without: false,
                parts: Vec::new(),
                tested: 0,
            };
        }
        s.plan();
        Ok(s)
    }

    /// Runs to start now: the next round once every run of the previous one
    /// has its result, and retries after infrastructure errors. Empty while
    /// runs are in flight, and once there is a verdict.
    pub fn next_runs(&mut self) -> Vec<Run> {
        if self.verdict.is_some() {
            return Vec::new();
        }
        let free = self.cfg.slots.saturating_sub(self.in_flight.len());
        let take = free.min(self.queued.len());
        let started: Vec<Flight> = self.queued.drain(..take).collect();
        let runs = started.iter().map(|f| f.run.clone()).collect();
        self.in_flight.extend(started);
        runs
    }

    /// The result of a run handed out by [`Search::next_runs`]. Results that
    /// arrive after the verdict (other runs of a round that ended on an
    /// infrastructure error or a contradiction) are accepted and ignored.
    pub fn record(&mut self, run_id: u32, outcome: Outcome) -> Result<(), SearchError> {
        let at = self
            .in_flight
            .iter()
            .position(|f| f.run.id == run_id)
            .ok_or(SearchError::UnknownRun(run_id))?;
        let flight = self.in_flight.remove(at);
        if self.verdict.is_some() {
            self.note(format!("run {run_id} ended after the verdict: ignored"));
            return Ok(());
        }
        let Some(round) = &self.round else {
            return Ok(());
        };
        let Some(question) = round.questions.get(flight.question).cloned() else {
            return Ok(());
        };
        let fails = match outcome {
            Outcome::Infra => {
                let tries = self.cfg.infra_retries + 1;
                if flight.run.attempt < tries {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.runs += 1;
                    self.note(format!(
                        "run {run_id} ({}) hit an infrastructure error: retrying it as run {id} (attempt {} of {tries})",
                        self.show(&question.set),
                        flight.run.attempt + 1
                    ));
                    self.queued.push(Flight {
                        run: Run {
                            id,
                            attempt: flight.run.attempt + 1,
                            ..flight.run
                        },
                        question: flight.question,
                    });
                } else {
                    let reason = format!(
                        "infrastructure: {} ended in an infrastructure error {tries} time{} in a row (last: run {run_id}); \
                         nobody is blamed. Fix the environment pool and start the search again",
                        self.show(&question.set),
                        plural(tries as usize)
                    );
                    self.conclude(Verdict::Inconclusive { reason });
                }
                return Ok(());
            }
            Outcome::Pass => false,
            Outcome::Fail => true,
        };
        if let Some(clash) = self.contradiction(&question.set, fails) {
            let reason = format!(
                "inconsistent results: {clash}. A flaky gate, or units that only fail without each other; \
                 nobody is blamed"
            );
            self.conclude(Verdict::Inconclusive { reason });
            return Ok(());
        }
        self.seen.push(Seen {
            set: question.set,
            fails,
        });
        if let Some(round) = &mut self.round
            && let Some(slot) = round.answers.get_mut(flight.question)
        {
            *slot = Some(fails);
        }
        let complete = self
            .round
            .as_ref()
            .is_some_and(|r| r.answers.iter().all(Option::is_some));
        if complete && self.in_flight.is_empty() && self.queued.is_empty() {
            if let Some(round) = self.round.take() {
                let fails: Vec<bool> = round.answers.iter().map(|a| a.unwrap_or(false)).collect();
                self.advance(&round.questions, &fails);
            }
            self.plan();
        }
        Ok(())
    }

    /// The result, once the search is over.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    /// Runs asked for so far (see "What is counted" in the module documentation).
    pub fn runs(&self) -> u32 {
        self.runs
    }

    /// Rounds planned so far (see "What is counted" in the module documentation).
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// What the search did and why, one entry per round and per conclusion.
    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// Runs handed out whose results are not recorded yet.
    pub fn in_flight(&self) -> impl Iterator<Item = &Run> {
        self.in_flight.iter().map(|f| &f.run)
    }

    /// The units searched, in merge order.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// The unit with this id (to find the pull requests whose authors to tell).
    pub fn unit(&self, id: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.id == id)
    }

    /// How the search uses the pool.
    pub fn config(&self) -> SearchConfig {
        self.cfg
    }

    // ---- planning ----

    /// Answers what earlier results imply and moves on, until the search
    /// needs real runs (queued as the next round) or has a verdict.
    fn plan(&mut self) {
        let guard = 64 * (self.units.len() + 4);
        for _ in 0..guard {
            if self.verdict.is_some() {
                return;
            }
            let (questions, what) = self.questions();
            let answers: Vec<Option<bool>> = questions.iter().map(|q| self.implied(&q.set)).collect();
            if answers.iter().all(Option::is_some) {
                let fails: Vec<bool> = answers.iter().map(|a| a.unwrap_or(false)).collect();
                self.advance(&questions, &fails);
                continue;
            }
            self.rounds += 1;
            let count = answers.iter().filter(|a| a.is_none()).count();
            let known = questions.len() - count;
            let reused = if known > 0 {
                format!(" ({known} result{} known from earlier runs)", plural(known))
            } else {
                String::new()
            };
            self.note(format!(
                "round {} ({count} run{}): {what}{reused}",
                self.rounds,
                plural(count)
            ));
            for (i, q) in questions.iter().enumerate() {
                if answers[i].is_some() {
                    continue;
                }
                let id = self.next_id;
                self.next_id += 1;
                self.runs += 1;
                self.queued.push(Flight {
                    run: Run {
                        id,
                        units: self.ids(&q.set),
                        purpose: q.purpose,
                        attempt: 1,
                    },
                    question: i,
                });
            }
            self.round = Some(Round { questions, answers });
            return;
        }
        self.conclude(Verdict::Inconclusive {
            reason: "internal: the search did not settle; nobody is blamed. Please report this as a bug".into(),
        });
    }

    /// The subsets the current phase needs results for, and what the round does.
    fn questions(&mut self) -> (Vec<Question>, String) {
        let slots = self.cfg.slots;
        let q = |set: Set, purpose: Purpose| Question { set, purpose };
        let mut phase = self.phase.clone();
        let asked = match &mut phase {
            Phase::Start { parts, tested } => {
                let (parts, tested) = (parts.clone(), *tested);
                let all: Set = (0..self.units.len()).collect();
                let n = all.len();
                let mut qs = vec![q(all, Purpose::FlakeCheck)];
                qs.extend(parts[..tested].iter().map(|p| q(p.clone(), Purpose::Probe)));
                let mut what = format!("re-run all {n} unit{} to rule out a flake", plural(n));
                if tested > 0 {
                    what.push_str(&format!(
                        "; meanwhile, on the other {} slot{}, ",
                        slots - 1,
                        plural(slots - 1)
                    ));
                    what.push_str(&self.describe_split(n, &parts, tested, None));
                }
                (qs, what)
            }
            Phase::Locate {
                cand, parts, tested, ..
            } => {
                let (p, t) = partition(cand, slots);
                *parts = p.clone();
                *tested = t;
                let n = cand.len();
                let mut qs: Vec<Question> = p[..t].iter().map(|s| q(s.clone(), Purpose::Probe)).collect();
                let mut what = self.describe_split(n, &p, t, Some(slots));
                if t == p.len() && t < slots {
                    // Every suspect is tested alone: spare slots run the rest
                    // without a suspect, so a culprit is confirmed this round.
                    let spare: Vec<usize> = p
                        .iter()
                        .map(|s| s[0])
                        .filter(|&c| self.implied(&minus(&self.rest, &[c])).is_none())
                        .take(slots - t)
                        .collect();
                    if !spare.is_empty() {
                        let names: Vec<&str> = spare.iter().map(|&c| self.units[c].id.as_str()).collect();
                        what.push_str(&format!(
                            "; on the spare slot{}, the units not blamed without {}",
                            plural(spare.len()),
                            names.join(", without ")
                        ));
                        qs.extend(
                            spare
                                .iter()
                                .map(|&c| q(minus(&self.rest, &[c]), Purpose::ConfirmWithout)),
                        );
                    }
                }
                (qs, what)
            }
            Phase::Confirm {
                suspect,
                without,
                parts,
                tested,
                ..
            } => {
                let c = *suspect;
                let alone = vec![c];
                let known = self.implied(&alone);
                let ask_without = slots >= 2 || known == Some(true);
                let others = minus(&self.rest, &[c]);
                // Slots left over test parts of the others, in case they still fail.
                let spare = slots.saturating_sub(if known.is_some() { 1 } else { 2 });
                let (p, t) = if ask_without && others.len() > 1 && self.implied(&others).is_none() {
                    partition(&others, spare)
                } else {
                    (Vec::new(), 0)
                };
                (*without, *parts, *tested) = (ask_without, p.clone(), t);
                let mut qs = vec![q(alone, Purpose::ConfirmWith)];
                let name = self.units[c].id.clone();
                let mut what = match known {
                    Some(true) => format!("confirm {name}, already seen failing alone on the base"),
                    _ => format!("confirm {name}: alone on the base, it must fail"),
                };
                if ask_without {
                    what.push_str(&format!(
                        "; the {} other unit{} without it must pass",
                        others.len(),
                        plural(others.len())
                    ));
                    qs.push(q(others.clone(), Purpose::ConfirmWithout));
                }
                if t > 0 {
                    what.push_str("; in case they do not, ");
                    what.push_str(&self.describe_split(others.len(), &p, t, None));
                    qs.extend(p[..t].iter().map(|s| q(s.clone(), Purpose::Probe)));
                }
                (qs, what)
            }
            Phase::Rest { parts, tested } => {
                let n = self.rest.len();
                let mut what = format!(
                    "run the {n} unit{} not blamed, without the blamed ones: they must pass",
                    plural(n)
                );
                let mut qs = vec![q(self.rest.clone(), Purpose::ConfirmWithout)];
                let (p, t) = if self.implied(&self.rest).is_none() && n > 1 {
                    partition(&self.rest, slots - 1)
                } else {
                    (Vec::new(), 0)
                };
                (*parts, *tested) = (p.clone(), t);
                if t > 0 {
                    what.push_str("; in case they do not, ");
                    what.push_str(&self.describe_split(n, &p, t, None));
                    qs.extend(p[..t].iter().map(|s| q(s.clone(), Purpose::Probe)));
                }
                (qs, what)
            }
            Phase::Recheck { .. } => {
                let n = self.rest.len();
                let what = format!(
                    "nothing has reproduced the failure yet: re-run all {n} unit{} to rule out a flake",
                    plural(n)
                );
                (vec![q(self.rest.clone(), Purpose::FlakeCheck)], what)
            }
            Phase::Group {
                req,
                order,
                lo,
                hi,
                asked,
            } => {
                let positions = prefix_probes(*lo, *hi, slots);
                *asked = positions.clone();
                let (req, order) = (req.clone(), order.clone());
                let qs = positions
                    .iter()
                    .map(|&p| q(union(&req, &order[..p]), Purpose::Probe))
                    .collect();
                let counts: Vec<String> = positions.iter().filter(|&&p| p > 0).map(|p| p.to_string()).collect();
                let what = if req.is_empty() {
                    format!(
                        "find the first unit in merge order the failure needs among {}: test the first {} of them",
                        self.show(&order),
                        counts.join(", ")
                    )
                } else {
                    let mut what = format!(
                        "find another unit the failure needs besides {}, among {}: test {}",
                        self.show(&req),
                        self.show(&order),
                        self.show(&req)
                    );
                    if positions.contains(&0) {
                        what.push_str(" alone");
                        if !counts.is_empty() {
                            what.push_str(", and");
                        }
                    }
                    if !counts.is_empty() {
                        what.push_str(&format!(" with the first {} of them", counts.join(", ")));
                    }
                    what
                };
                (qs, what)
            }
        };
        self.phase = phase;
        asked
    }

    /// Moves on from the answers (`true`: fails) to `questions`.
    fn advance(&mut self, questions: &[Question], fails: &[bool]) {
        let phase = std::mem::replace(&mut self.phase, Phase::rest());
        match phase {
            Phase::Start { parts, tested } => {
                let n = self.units.len();
                if !fails.first().copied().unwrap_or(false) {
                    self.note(format!(
                        "all {n} unit{} passed on re-run: the failure was flaky; nobody is blamed",
                        plural(n)
                    ));
                    self.conclude(Verdict::Flaky);
                    return;
                }
                self.note(format!("all {n} unit{} failed again: not a flake", plural(n)));
                let all: Set = (0..n).collect();
                self.after_split(Some(all.clone()), all, parts, tested, &fails[1..]);
            }
            Phase::Locate {
                known,
                cand,
                parts,
                tested,
            } => self.after_split(known, cand, parts, tested, fails),
            Phase::Confirm {
                suspect,
                known,
                without,
                parts,
                tested,
            } => {
                let name = self.units[suspect].id.clone();
                let alone = fails.first().copied().unwrap_or(false);
                let rest_fails = if without { fails.get(1).copied() } else { None };
                if alone {
                    self.note(format!("{name} fails alone on the base: a culprit"));
                    self.blame(vec![suspect]);
                    match rest_fails {
                        Some(false) => self.finish(),
                        Some(true) => {
                            self.note(format!(
                                "the {} other unit{} still fail without {name}: looking for more",
                                self.rest.len(),
                                plural(self.rest.len())
                            ));
                            self.locate_in_rest(parts, tested, fails.get(2..).unwrap_or(&[]));
                        }
                        None => self.phase = Phase::rest(),
                    }
                } else {
                    let needed = (rest_fails == Some(false)).then_some(suspect);
                    let mut line = format!("{name} passes alone: not a lone culprit");
                    if needed.is_some() {
                        line.push_str(&format!(
                            ", but the others pass without it: the failure needs {name} together with other units"
                        ));
                    } else {
                        line.push_str("; the failure needs a combination of units");
                    }
                    self.note(line);
                    self.group_or_recheck(known, needed);
                }
            }
            Phase::Rest { parts, tested } => {
                if fails.first().copied().unwrap_or(true) {
                    let n = self.rest.len();
                    self.note(format!(
                        "the {n} unit{} not blamed still fail{}: looking for more",
                        plural(n),
                        if n == 1 { "s" } else { "" }
                    ));
                    self.locate_in_rest(parts, tested, fails.get(1..).unwrap_or(&[]));
                } else {
                    self.finish();
                }
            }
            Phase::Recheck { needed } => {
                let n = self.rest.len();
                if fails.first().copied().unwrap_or(false) {
                    self.note(format!("all {n} unit{} failed again: not a flake", plural(n)));
                    let all = self.rest.clone();
                    self.start_group(all, needed);
                } else {
                    self.note(format!(
                        "all {n} unit{} passed on re-run and nothing reproduced the failure: it was flaky; \
                         nobody is blamed",
                        plural(n)
                    ));
                    self.conclude(Verdict::Flaky);
                }
            }
            Phase::Group {
                req,
                order,
                lo,
                hi,
                asked,
            } => {
                let mut new_lo = lo;
                let mut new_hi = hi;
                for (&p, &f) in asked.iter().zip(fails) {
                    if f {
                        new_hi = new_hi.min(p);
                    } else if new_lo.is_none_or(|l| p > l) {
                        new_lo = Some(p);
                    }
                }
                if new_lo.is_some_and(|l| l >= new_hi) {
                    let pass = new_lo.and_then(|l| asked.iter().position(|&p| p == l));
                    let fail = asked.iter().position(|&p| p == new_hi);
                    let clash = match (pass, fail) {
                        (Some(p), Some(f)) => format!(
                            "{} failed but {}, which contains it, passed",
                            self.show(&questions[f].set),
                            self.show(&questions[p].set)
                        ),
                        _ => "a prefix failed while a longer one passed".to_string(),
                    };
                    self.conclude(Verdict::Inconclusive {
                        reason: format!(
                            "inconsistent results: {clash}. A flaky gate, or units that only fail without each other; \
                             nobody is blamed"
                        ),
                    });
                    return;
                }
                self.set_group(req, order, new_lo, new_hi);
            }
        }
    }

    /// Moves on after testing `parts[..tested]` of `cand` alone.
    fn after_split(&mut self, known: Option<Set>, cand: Set, parts: Vec<Set>, tested: usize, fails: &[bool]) {
        if tested == 0 {
            self.enter_locate(known, cand);
            return;
        }
        let failing: Vec<&Set> = parts[..tested]
            .iter()
            .zip(fails)
            .filter(|(_, f)| **f)
            .map(|(p, _)| p)
            .collect();
        if let Some(first) = failing.iter().min_by_key(|p| p.len()) {
            let part = (*first).clone();
            let mut line = format!(
                "{} fails alone: {} suspect{} left",
                self.show(&part),
                part.len(),
                plural(part.len())
            );
            let others: Vec<String> = failing.iter().filter(|p| ***p != part).map(|p| self.show(p)).collect();
            if !others.is_empty() {
                line.push_str(&format!(" (also failing alone, kept for later: {})", others.join(", ")));
            }
            self.note(line);
            self.enter_locate(Some(part.clone()), part);
        } else if tested < parts.len() {
            let untested = parts[tested..].concat();
            self.note(format!(
                "every tested part passes alone: assuming the culprit is in {} (to be confirmed)",
                self.show(&untested)
            ));
            self.enter_locate(known, untested);
        } else {
            self.note(
                "every tested part passes alone: the failure needs units from different parts together".to_string(),
            );
            self.group_or_recheck(known, None);
        }
    }

    /// Goes on narrowing `cand`, or confirms its one suspect. Units already
    /// seen passing alone cannot be lone culprits and are dropped; when none
    /// is left, the failure needs a combination.
    fn enter_locate(&mut self, known: Option<Set>, cand: Set) {
        let (cleared, open): (Set, Set) = cand.iter().partition(|&&u| self.implied(&[u]) == Some(false));
        if !cleared.is_empty() {
            self.note(format!(
                "{} already passed alone: {} suspect{} left",
                self.show(&cleared),
                open.len(),
                plural(open.len())
            ));
        }
        if open.is_empty() {
            self.note("every suspect passes alone: the failure needs a combination of units".to_string());
            self.group_or_recheck(known, None);
            return;
        }
        self.phase = if open.len() == 1 {
            Phase::Confirm {
                suspect: open[0],
                known,
                without: false,
                parts: Vec::new(),
                tested: 0,
            }
        } else {
            Phase::Locate {
                known,
                cand: open,
                parts: Vec::new(),
                tested: 0,
            }
        };
    }

    /// After a blame, when the rest still fails: narrow the smallest failing
    /// set seen among the rest, or go on from `parts[..tested]` of the rest,
    /// tested alongside.
    fn locate_in_rest(&mut self, parts: Vec<Set>, tested: usize, fails: &[bool]) {
        let smallest = self
            .seen
            .iter()
            .filter(|s| s.fails && is_subset(&s.set, &self.rest))
            .min_by_key(|s| s.set.len())
            .map(|s| s.set.clone())
            .unwrap_or_else(|| self.rest.clone());
        if tested > 0 && fails.len() >= tested && smallest == self.rest {
            let rest = self.rest.clone();
            self.after_split(Some(rest.clone()), rest, parts, tested, fails);
        } else {
            self.enter_locate(Some(smallest.clone()), smallest);
        }
    }

    /// The failure needs a combination: search `known` for a minimal failing
    /// group, or first re-run everything when nothing reproduced the failure.
    fn group_or_recheck(&mut self, known: Option<Set>, needed: Option<usize>) {
        match known {
            Some(f) => self.start_group(f, needed),
            None => self.phase = Phase::Recheck { needed },
        }
    }

    /// Starts the prefix search on `f` (seen failing), with `needed` (a unit the
    /// failure needs) kept in every probe.
    fn start_group(&mut self, f: Set, needed: Option<usize>) {
        match needed.filter(|c| f.contains(c)) {
            Some(c) => {
                let order = minus(&f, &[c]);
                let hi = order.len();
                // `c` alone passed, and `c` plus the rest of `f` is `f`: it fails.
                self.set_group(vec![c], order, Some(0), hi);
            }
            None => {
                let hi = f.len();
                self.set_group(Vec::new(), f, Some(0), hi);
            }
        }
    }

    /// Settles the prefix search as far as its bounds allow: the threshold is
    /// known when nothing is left between them.
    fn set_group(&mut self, mut req: Set, mut order: Set, mut lo: Option<usize>, mut hi: usize) {
        loop {
            let start = lo.map_or(0, |l| l + 1);
            if start < hi {
                break;
            }
            if hi == 0 {
                self.found_group(req);
                return;
            }
            let u = order[hi - 1];
            let before: Set = order[..hi - 1].to_vec();
            let line = if req.is_empty() {
                format!(
                    "{} fails and {} passes: the failure needs {}",
                    self.show(&order[..hi]),
                    if before.is_empty() {
                        "the base".to_string()
                    } else {
                        self.show(&before)
                    },
                    self.units[u].id
                )
            } else {
                format!(
                    "{} fails with {} and passes with {}: the failure also needs {}",
                    self.show(&req),
                    self.show(&order[..hi]),
                    if before.is_empty() {
                        "nothing else".to_string()
                    } else {
                        self.show(&before)
                    },
                    self.units[u].id
                )
            };
            self.note(line);
            req.push(u);
            req.sort_unstable();
            order.truncate(hi - 1);
            hi = order.len();
            lo = None;
        }
        self.phase = Phase::Group {
            req,
            order,
            lo,
            hi,
            asked: Vec::new(),
        };
    }

    /// `group` fails together and passes without any one of its members.
    fn found_group(&mut self, group: Set) {
        if group.len() == 1 {
            self.note(format!(
                "{} fails alone on the base: a culprit",
                self.units[group[0]].id
            ));
        } else {
            self.note(format!(
                "interaction: {} fail together, and pass without any one of them",
                self.show(&group)
            ));
        }
        self.blame(group);
        self.phase = Phase::rest();
    }

    fn blame(&mut self, group: Set) {
        self.rest = minus(&self.rest, &group);
        if group.len() == 1 {
            self.culprits.push(group[0]);
            self.culprits.sort_unstable();
        } else {
            self.groups.push(group);
            self.groups.sort();
        }
    }

    /// The rest passed without the blamed units.
    fn finish(&mut self) {
        let verdict = Verdict::Culprits {
            units: self.ids(&self.culprits),
            interactions: self.groups.iter().map(|g| self.ids(g)).collect(),
            good: self.ids(&self.rest),
        };
        let n = self.rest.len();
        self.note(format!(
            "the {n} unit{} not blamed pass{} without the blamed ones: done after {} run{} in {} round{}",
            plural(n),
            if n == 1 { "es" } else { "" },
            self.runs,
            plural(self.runs as usize),
            self.rounds,
            plural(self.rounds as usize)
        ));
        self.conclude(verdict);
    }

    fn conclude(&mut self, verdict: Verdict) {
        if let Verdict::Inconclusive { reason } = &verdict {
            self.note(format!("inconclusive: {reason}"));
        }
        self.verdict = Some(verdict);
        self.round = None;
        self.queued.clear();
    }

    // ---- knowledge ----

    /// What earlier results say about `set` (`Some(true)`: it fails).
    fn implied(&self, set: &[usize]) -> Option<bool> {
        if set.is_empty() {
            return Some(false);
        }
        for s in &self.seen {
            if s.fails && is_subset(&s.set, set) {
                return Some(true);
            }
            if !s.fails && is_subset(set, &s.set) {
                return Some(false);
            }
        }
        None
    }

    /// An earlier result that contradicts `set` failing (or passing).
    fn contradiction(&self, set: &[usize], fails: bool) -> Option<String> {
        self.seen.iter().find_map(|s| {
            if fails && !s.fails && is_subset(set, &s.set) {
                Some(format!(
                    "{} failed but {}, which contains it, passed",
                    self.show(set),
                    self.show(&s.set)
                ))
            } else if !fails && s.fails && is_subset(&s.set, set) {
                Some(format!(
                    "{} failed but {}, which contains it, passed",
                    self.show(&s.set),
                    self.show(set)
                ))
            } else {
                None
            }
        })
    }

    // ---- words ----

    fn note(&mut self, line: String) {
        self.log.push(line);
    }

    fn ids(&self, set: &[usize]) -> Vec<String> {
        set.iter().map(|&i| self.units[i].id.clone()).collect()
    }

    /// `[a b c]`, or `[a b … z] (12 units)` for long sets.
    fn show(&self, set: &[usize]) -> String {
        let id = |i: usize| self.units[i].id.as_str();
        if set.len() <= 4 {
            let ids: Vec<&str> = set.iter().map(|&i| id(i)).collect();
            format!("[{}]", ids.join(" "))
        } else {
            format!(
                "[{} {} … {}] ({} units)",
                id(set[0]),
                id(set[1]),
                id(set[set.len() - 1]),
                set.len()
            )
        }
    }

    fn describe_split(&self, n: usize, parts: &[Set], tested: usize, slots: Option<usize>) -> String {
        if tested == parts.len() && parts.iter().all(|p| p.len() == 1) {
            return format!("test each of the {n} suspects alone on the base");
        }
        let on = slots.map_or(String::new(), |s| format!(" on {s} slot{}", plural(s)));
        let shown: Vec<String> = parts[..tested].iter().map(|p| self.show(p)).collect();
        let mut out = format!(
            "split {n} suspects into {} parts{on}: test {} alone",
            parts.len(),
            shown.join(", ")
        );
        if tested < parts.len() {
            out.push_str(&format!(
                " ({} is next if {})",
                self.show(&parts[tested..].concat()),
                if tested == 1 { "it passes" } else { "they all pass" }
            ));
        }
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Cuts `cand` into parts for one round with `probes` runs: `(parts, tested)`,
/// `parts[..tested]` to test alone, the rest (at most one part) inferred.
fn partition(cand: &[usize], probes: usize) -> (Vec<Set>, usize) {
    if probes == 0 {
        return (Vec::new(), 0);
    }
    if cand.len() <= probes {
        let parts: Vec<Set> = cand.iter().map(|&u| vec![u]).collect();
        let n = parts.len();
        return (parts, n);
    }
    let k = probes + 1;
    let (size, extra) = (cand.len() / k, cand.len() % k);
    let mut parts = Vec::with_capacity(k);
    let mut at = 0;
    for i in 0..k {
        let len = size + usize::from(i < extra);
        parts.push(cand[at..at + len].to_vec());
        at += len;
    }
    (parts, probes)
}

/// Prefix lengths to test in `(lo, hi)` with `slots` runs; `lo = None` means
/// even length 0 (the needed units alone) is unknown, and is tried first.
fn prefix_probes(lo: Option<usize>, hi: usize, slots: usize) -> Vec<usize> {
    let start = lo.map_or(0, |l| l + 1);
    let open: Vec<usize> = (start..hi).collect();
    if open.len() <= slots {
        return open;
    }
    let mut out = Vec::with_capacity(slots);
    let (from, k) = match lo {
        None => {
            out.push(0);
            (0, slots - 1)
        }
        Some(l) => (l, slots),
    };
    let span = hi - from;
    for j in 1..=k {
        let p = from + j * span / (k + 1);
        if p > from && p < hi && !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        out.push(start);
    }
    out
}

/// `a ⊆ b`, both ascending.
fn is_subset(a: &[usize], b: &[usize]) -> bool {
    let mut it = b.iter();
    a.iter().all(|x| it.any(|y| y == x))
}

/// `a \ b`, both ascending.
fn minus(a: &[usize], b: &[usize]) -> Set {
    a.iter().copied().filter(|x| b.binary_search(x).is_err()).collect()
}

/// `a ∪ b`, both ascending.
fn union(a: &[usize], b: &[usize]) -> Set {
    let mut out: Set = a.iter().chain(b).copied().collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A model of which subsets fail, and [`simulate`](sim::simulate), which drives a
/// [`Search`] against it to the end: the simulator behind the tests and the
/// benchmark.
pub mod sim {
    use super::{Outcome, Run, Search, SearchConfig, SearchError, Unit, Verdict};
    use serde::{Deserialize, Serialize};

    /// Which subsets fail, and what goes wrong besides.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Model {
        /// Units that fail alone: any subset containing one fails.
        pub culprits: Vec<String>,
        /// Groups that fail only together: a subset containing all of one fails.
        pub interactions: Vec<Vec<String>>,
        /// Runs that fail although their units pass (a flaky gate).
        pub flakes: Noise,
        /// Runs that end in an infrastructure error.
        pub infra: Noise,
    }

    /// Which runs something happens to, deterministically.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Noise {
        /// None.
        #[default]
        Never,
        /// These run ids.
        Runs(Vec<u32>),
        /// Each run with this chance in a thousand, decided by a hash of the
        /// seed and the run id (no random number generator involved).
        Rate {
            /// Chance per run, in thousandths.
            per_mille: u32,
            /// Different seeds hit different runs.
            seed: u64,
        },
    }

    impl Noise {
        /// Whether run `id` is hit.
        pub fn hits(&self, id: u32) -> bool {
            match self {
                Noise::Never => false,
                Noise::Runs(ids) => ids.contains(&id),
                Noise::Rate { per_mille, seed } => {
                    splitmix(seed ^ u64::from(id).wrapping_mul(0x9e37_79b9)) % 1000 < u64::from(*per_mille)
                }
            }
        }
    }

    /// SplitMix64's finaliser: a well-mixed hash of one word.
    pub fn splitmix(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    impl Model {
        /// Whether the base plus `units` fails the gate, noise aside.
        pub fn fails(&self, units: &[String]) -> bool {
            let has = |u: &String| units.contains(u);
            self.culprits.iter().any(has) || self.interactions.iter().any(|g| !g.is_empty() && g.iter().all(has))
        }

        /// How `run` ends.
        pub fn outcome(&self, run: &Run) -> Outcome {
            if self.infra.hits(run.id) {
                Outcome::Infra
            } else if self.fails(&run.units) || self.flakes.hits(run.id) {
                Outcome::Fail
            } else {
                Outcome::Pass
            }
        }
    }

    /// What one simulated search did.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SimReport {
        /// Its verdict.
        pub verdict: Verdict,
        /// Runs it asked for.
        pub runs: u32,
        /// Rounds it planned.
        pub rounds: u32,
        /// The most runs in flight at once.
        pub max_in_flight: usize,
        /// Its human log.
        pub log: Vec<String>,
        /// Every run and how it ended, in order.
        pub trace: Vec<(Run, Outcome)>,
    }

    /// A simulation that could not finish.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum SimError {
        /// The search refused its input or a result.
        #[error(transparent)]
        Search(#[from] SearchError),
        /// More runs than [`run_limit`] allows.
        #[error("the search asked for {runs} runs, more than the limit of {limit}")]
        Runaway {
            /// Runs asked for.
            runs: u32,
            /// The limit.
            limit: u32,
        },
        /// No verdict, yet nothing to run.
        #[error("the search has no verdict and nothing to run")]
        Stalled,
    }

    /// The most runs a search over `n` units may take in a simulation before it
    /// counts as a runaway: `(10 n + 10)` per try of each run.
    pub fn run_limit(n: usize, cfg: &SearchConfig) -> u32 {
        let per_try = u32::try_from(10 * n + 10).unwrap_or(u32::MAX);
        per_try.saturating_mul(cfg.infra_retries.saturating_add(1))
    }

    /// Units `u1` … `un`, each a pull request `acme/app#i`.
    pub fn numbered(n: usize) -> Vec<Unit> {
        (1..=n)
            .map(|i| Unit {
                id: format!("u{i}"),
                members: vec![format!("acme/app#{i}")],
            })
            .collect()
    }

    /// Drives a search over `units` (whose cycle failed) against `model` to its verdict.
    pub fn simulate(units: Vec<Unit>, model: &Model, cfg: SearchConfig) -> Result<SimReport, SimError> {
        let limit = run_limit(units.len(), &cfg);
        let mut search = Search::new(units, cfg)?;
        let mut trace = Vec::new();
        let mut max_in_flight = 0;
        loop {
            if let Some(verdict) = search.verdict() {
                return Ok(SimReport {
                    verdict: verdict.clone(),
                    runs: search.runs(),
                    rounds: search.rounds(),
                    max_in_flight,
                    log: search.log().to_vec(),
                    trace,
                });
            }
            let batch = search.next_runs();
            if batch.is_empty() {
                return Err(SimError::Stalled);
            }
            max_in_flight = max_in_flight.max(search.in_flight().count());
            for run in batch {
                let outcome = model.outcome(&run);
                search.record(run.id, outcome)?;
                trace.push((run, outcome));
            }
            if search.runs() > limit {
                return Err(SimError::Runaway {
                    runs: search.runs(),
                    limit,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
