//! Impact analysis (issue #4, seed 002 "rebuild only what a PR's files touch"):
//! from the files a cycle's changes touch, which components to rebuild and
//! redeploy and which test suites must run.
//!
//! This module owns the matching of changed files against component and suite
//! `paths`, and the fail-safe rules that keep a partial cycle from skipping
//! something it should have tested (seed 004: "the tests weren't selected to
//! run for some reason"):
//!
//! - a changed file that no component of its repository claims rebuilds every
//!   component of that repository;
//! - a component without `paths` owns its whole repository;
//! - a suite without `paths` is relevant to every change, and a suite whose
//!   `paths` match a changed file always runs;
//! - a full cycle runs every suite that runs in full cycles, whatever changed.
//!
//! Every rebuild, skipped rebuild, selected suite and skipped suite carries a
//! human reason: PR authors and the dashboard read them.
//!
//! Globs are anchored at the repository root and compiled with globset's
//! `literal_separator(true)`: `*` never crosses a `/`, `**` does. Like a
//! `.gitignore` line, a pattern that matches a directory owns everything
//! under it (`lib`, `lib/` and `lib/**` are the same); a leading `/` is
//! allowed and ignored.
//!
//! It must never do I/O: the caller fills [`ComponentSpec`]s and
//! [`SuiteSpec`]s from the configuration and [`Changes`] from git and the forge.

use crate::policy::CycleKind;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How many globs a reason quotes before it says "and N more".
const QUOTED_GLOBS: usize = 3;

/// A component as impact analysis sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentSpec {
    /// The component's name.
    pub name: String,
    /// Forge id of its repository (`owner/name`); `None` for image-only
    /// components, which only a version change redeploys.
    pub repo: Option<String>,
    /// Globs of the files it owns; empty means the whole repository.
    pub paths: Vec<String>,
}

/// A test suite as impact analysis sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteSpec {
    /// The suite's name.
    pub name: String,
    /// Its tier (`smoke`, `merge-gate`, ...), quoted in reasons.
    pub tier: String,
    /// The cycle kinds it runs in; empty means it never runs.
    pub cycles: Vec<CycleKind>,
    /// Forge id of the repository its `paths` refer to; `None` matches them
    /// against the changed files of every repository.
    pub repo: Option<String>,
    /// Globs of files whose change makes it run; empty means every change.
    pub paths: Vec<String>,
    /// Components it exercises: a redeploy of one of them selects it.
    pub components: Vec<String>,
}

/// One changed file of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedFile {
    /// Path relative to the repository root (`src/api/x.rs`).
    pub path: String,
    /// What changed it, quoted in reasons: `owner/repo#12`, `branch:fix`.
    pub by: Vec<String>,
}

impl ChangedFile {
    /// A file changed by the given PRs (or other labels).
    pub fn new(path: impl Into<String>, by: &[&str]) -> ChangedFile {
        ChangedFile {
            path: path.into(),
            by: by.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// What changed in a cycle compared to what is running.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Repository forge id -> the files changed in it (any order; duplicates
    /// are merged).
    pub files: BTreeMap<String, Vec<ChangedFile>>,
    /// Component name -> why its version changed for a reason other than
    /// files (`image tag stg moved to sha256:ab12…`, `base moved`).
    pub versions: BTreeMap<String, String>,
}

/// A component or suite that is selected, with every reason it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selected {
    /// Component or suite name.
    pub name: String,
    /// Why, most specific first; never empty.
    pub reasons: Vec<String>,
}

/// A component or suite that is not selected, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Component or suite name.
    pub name: String,
    /// Why not.
    pub reason: String,
}

/// The result of impact analysis; every list is in configuration order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    /// Components to rebuild (when built from source) and redeploy.
    pub rebuild: Vec<Selected>,
    /// Components left as they are.
    pub skip_rebuild: Vec<Skipped>,
    /// Suites to run.
    pub suites: Vec<Selected>,
    /// Suites not run in this cycle.
    pub skipped_suites: Vec<Skipped>,
}

impl Impact {
    /// Names of the components to rebuild and redeploy.
    pub fn rebuilt_names(&self) -> Vec<&str> {
        self.rebuild.iter().map(|s| s.name.as_str()).collect()
    }

    /// Names of the suites to run.
    pub fn suite_names(&self) -> Vec<&str> {
        self.suites.iter().map(|s| s.name.as_str()).collect()
    }
}

/// What declared a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobOwner {
    /// A component, by name.
    Component(String),
    /// A suite, by name.
    Suite(String),
}

impl fmt::Display for GlobOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobOwner::Component(n) => write!(f, "component `{n}`"),
            GlobOwner::Suite(n) => write!(f, "suite `{n}`"),
        }
    }
}

/// Why the rules could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImpactError {
    /// A `paths` entry is not a valid glob.
    #[error("{owner}: `{glob}` in `paths` is not a valid glob ({message}); fix or remove it")]
    BadGlob {
        /// Who declared it.
        owner: GlobOwner,
        /// The glob as written.
        glob: String,
        /// What globset said.
        message: String,
    },
    /// A suite's `components` names a component that does not exist.
    #[error("suite `{suite}` exercises component `{component}`, which is not configured; fix its `components`")]
    UnknownComponent {
        /// The suite.
        suite: String,
        /// The unknown name.
        component: String,
    },
}

/// Compiled `paths` of one component or suite.
#[derive(Debug, Clone)]
struct Matcher {
    /// `None` when no paths were declared (matches everything).
    set: Option<GlobSet>,
    /// The globs as written, for reasons.
    globs: Vec<String>,
}

impl Matcher {
    fn new(globs: &[String], owner: impl Fn() -> GlobOwner) -> Result<Matcher, ImpactError> {
        if globs.is_empty() {
            return Ok(Matcher {
                set: None,
                globs: Vec::new(),
            });
        }
        let mut b = GlobSetBuilder::new();
        for g in globs {
            let normal = g.trim_start_matches('/').trim_end_matches('/');
            let normal = if normal.is_empty() { "**" } else { normal };
            let glob = GlobBuilder::new(normal)
                .literal_separator(true)
                .build()
                .map_err(|e| ImpactError::BadGlob {
                    owner: owner(),
                    glob: g.clone(),
                    message: e.kind().to_string(),
                })?;
            b.add(glob);
        }
        let set = b.build().map_err(|e| ImpactError::BadGlob {
            owner: owner(),
            glob: globs.join(", "),
            message: e.to_string(),
        })?;
        Ok(Matcher {
            set: Some(set),
            globs: globs.to_vec(),
        })
    }

    /// Whether the file, or a directory above it, matches.
    fn matches(&self, path: &str) -> bool {
        let Some(set) = &self.set else { return true };
        let path = path.trim_start_matches('/');
        if set.is_match(path) {
            return true;
        }
        path.match_indices('/').any(|(i, _)| set.is_match(&path[..i]))
    }

    /// `src/api/**, proto/**` (at most a few, then "and N more").
    fn quoted(&self) -> String {
        let mut s = self
            .globs
            .iter()
            .take(QUOTED_GLOBS)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if self.globs.len() > QUOTED_GLOBS {
            s.push_str(&format!(" and {} more", self.globs.len() - QUOTED_GLOBS));
        }
        s
    }
}

/// Component and suite `paths`, compiled once (at config load) and reused
/// for every cycle.
#[derive(Debug, Clone)]
pub struct Rules {
    components: Vec<(ComponentSpec, Matcher)>,
    suites: Vec<(SuiteSpec, Matcher)>,
}

/// Changed files of one repository, sorted by path, duplicates merged.
type FileList = Vec<(String, Vec<String>)>;

impl Rules {
    /// Compiles every glob; the first invalid glob or unknown component
    /// named by a suite is an error.
    pub fn new(components: &[ComponentSpec], suites: &[SuiteSpec]) -> Result<Rules, ImpactError> {
        let mut cs = Vec::with_capacity(components.len());
        for c in components {
            let m = Matcher::new(&c.paths, || GlobOwner::Component(c.name.clone()))?;
            cs.push((c.clone(), m));
        }
        let mut ss = Vec::with_capacity(suites.len());
        for s in suites {
            if let Some(unknown) = s.components.iter().find(|n| !components.iter().any(|c| &c.name == *n)) {
                return Err(ImpactError::UnknownComponent {
                    suite: s.name.clone(),
                    component: unknown.clone(),
                });
            }
            let m = Matcher::new(&s.paths, || GlobOwner::Suite(s.name.clone()))?;
            ss.push((s.clone(), m));
        }
        Ok(Rules {
            components: cs,
            suites: ss,
        })
    }

    /// Decides what `changes` rebuild and which suites a cycle of kind
    /// `cycle` runs.
    pub fn analyze(&self, changes: &Changes, cycle: CycleKind) -> Impact {
        let files = normalize(changes);
        let (rebuild, skip_rebuild) = self.components_impact(&files, changes);
        let rebuilt: BTreeSet<&str> = rebuild.iter().map(|s| s.name.as_str()).collect();
        let mut suites = Vec::new();
        let mut skipped_suites = Vec::new();
        for (s, m) in &self.suites {
            match suite_decision(s, m, &files, &rebuilt, cycle) {
                Ok(reasons) => suites.push(Selected {
                    name: s.name.clone(),
                    reasons,
                }),
                Err(reason) => skipped_suites.push(Skipped {
                    name: s.name.clone(),
                    reason,
                }),
            }
        }
        Impact {
            rebuild,
            skip_rebuild,
            suites,
            skipped_suites,
        }
    }

    /// Names of the components `changes` rebuild and redeploy, in
    /// configuration order.
    pub fn changed_components(&self, changes: &Changes) -> Vec<String> {
        let files = normalize(changes);
        self.components_impact(&files, changes)
            .0
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    fn components_impact(&self, files: &BTreeMap<&str, FileList>, changes: &Changes) -> (Vec<Selected>, Vec<Skipped>) {
        // Fail-safe: per repository, the files no component of it claims.
        let mut unclaimed: BTreeMap<&str, Vec<&(String, Vec<String>)>> = BTreeMap::new();
        for (repo, list) in files {
            let owners: Vec<&Matcher> = self
                .components
                .iter()
                .filter(|(c, _)| c.repo.as_deref() == Some(*repo))
                .map(|(_, m)| m)
                .collect();
            for f in list {
                if !owners.iter().any(|m| m.matches(&f.0)) {
                    unclaimed.entry(repo).or_default().push(f);
                }
            }
        }

        let mut rebuild = Vec::new();
        let mut skip = Vec::new();
        for (c, m) in &self.components {
            let mut reasons = Vec::new();
            let repo_files = c.repo.as_deref().and_then(|r| files.get(r));
            if let Some(list) = repo_files {
                let hits: Vec<&(String, Vec<String>)> = list.iter().filter(|f| m.matches(&f.0)).collect();
                if !hits.is_empty() {
                    let what = if m.set.is_none() {
                        "owns the whole repository (no paths)"
                    } else {
                        "paths match"
                    };
                    reasons.push(format!("{what}: {}", files_phrase(&hits)));
                }
            }
            if let Some(repo) = c.repo.as_deref()
                && let Some(orphans) = unclaimed.get(repo)
                && let Some(first) = orphans.first()
            {
                let subject = if orphans.len() == 1 {
                    file_with_by(first)
                } else {
                    format!("{} files, first: {},", orphans.len(), file_with_by(first))
                };
                let verb = if orphans.len() == 1 { "is" } else { "are" };
                reasons.push(format!(
                    "{subject} {verb} claimed by no component: rebuilding every component of {repo}"
                ));
            }
            if let Some(why) = changes.versions.get(&c.name) {
                reasons.push(format!("version changed: {why}"));
            }
            if reasons.is_empty() {
                let reason = match (c.repo.as_deref(), repo_files) {
                    (None, _) => "image-only component and its version did not change".to_string(),
                    (Some(repo), None) => format!("no changed files in {repo}"),
                    (Some(repo), Some(list)) if list.len() == 1 => format!(
                        "the one changed file in {repo} does not match its paths ({})",
                        m.quoted()
                    ),
                    (Some(repo), Some(list)) => format!(
                        "none of the {} changed files in {repo} match its paths ({})",
                        list.len(),
                        m.quoted()
                    ),
                };
                skip.push(Skipped {
                    name: c.name.clone(),
                    reason,
                });
            } else {
                rebuild.push(Selected {
                    name: c.name.clone(),
                    reasons,
                });
            }
        }
        (rebuild, skip)
    }
}

/// Compiles `components` and `suites` and analyzes `changes` for a cycle of
/// kind `cycle`: [`Rules::new`] then [`Rules::analyze`].
pub fn analyze(
    components: &[ComponentSpec],
    suites: &[SuiteSpec],
    changes: &Changes,
    cycle: CycleKind,
) -> Result<Impact, ImpactError> {
    Ok(Rules::new(components, suites)?.analyze(changes, cycle))
}

/// Names of the components `changes` rebuild and redeploy, in configuration
/// order (the fail-safe included).
pub fn changed_components(components: &[ComponentSpec], changes: &Changes) -> Result<Vec<String>, ImpactError> {
    Ok(Rules::new(components, &[])?.changed_components(changes))
}

/// Whether suite `s` runs: `Ok(reasons)` or `Err(why not)`.
fn suite_decision(
    s: &SuiteSpec,
    m: &Matcher,
    files: &BTreeMap<&str, FileList>,
    rebuilt: &BTreeSet<&str>,
    cycle: CycleKind,
) -> Result<Vec<String>, String> {
    if !s.cycles.contains(&cycle) {
        let full = s.cycles.contains(&CycleKind::Full);
        let partial = s.cycles.contains(&CycleKind::Partial);
        return Err(match (full, partial) {
            (true, _) => "runs in full cycles only".to_string(),
            (_, true) => "runs in partial cycles only".to_string(),
            _ => "runs in no cycle (its `cycles` is empty)".to_string(),
        });
    }
    if cycle == CycleKind::Full {
        let tier = if s.tier.is_empty() {
            String::new()
        } else {
            format!("{} ", s.tier)
        };
        return Ok(vec![format!("full cycle runs every {tier}suite regardless of paths")]);
    }
    let mut reasons = Vec::new();
    if m.set.is_none() {
        reasons.push("declares no paths: relevant to every change".to_string());
    } else {
        let hits: Vec<&(String, Vec<String>)> = files
            .iter()
            .filter(|(repo, _)| s.repo.as_deref().is_none_or(|r| r == **repo))
            .flat_map(|(_, list)| list.iter())
            .filter(|f| m.matches(&f.0))
            .collect();
        if !hits.is_empty() {
            reasons.push(format!("paths match: {}", files_phrase(&hits)));
        }
    }
    let exercised: Vec<&str> = s
        .components
        .iter()
        .map(String::as_str)
        .filter(|c| rebuilt.contains(c))
        .collect();
    if !exercised.is_empty() {
        reasons.push(format!(
            "exercises {}, which {} redeployed",
            and_list(&exercised),
            if exercised.len() == 1 { "is" } else { "are" }
        ));
    }
    if !reasons.is_empty() {
        return Ok(reasons);
    }
    let scope = s.repo.as_deref().map(|r| format!(" in {r}")).unwrap_or_default();
    let mut why = format!(
        "partial cycle: none of its paths ({}) match a changed file{scope}",
        m.quoted()
    );
    if !s.components.is_empty() {
        let names: Vec<&str> = s.components.iter().map(String::as_str).collect();
        why.push_str(&format!(" and {}", neither_list(&names)));
    }
    Err(why)
}

/// Changed files per repository: sorted by path, one entry per path, their
/// `by` labels merged and sorted.
fn normalize(changes: &Changes) -> BTreeMap<&str, FileList> {
    let mut out = BTreeMap::new();
    for (repo, list) in &changes.files {
        let mut merged: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for f in list {
            merged
                .entry(f.path.trim_start_matches('/'))
                .or_default()
                .extend(f.by.iter().map(String::as_str));
        }
        if merged.is_empty() {
            continue;
        }
        let files: FileList = merged
            .into_iter()
            .map(|(path, by)| {
                let mut by: Vec<String> = by.into_iter().map(str::to_string).collect();
                by.sort_by(|a, b| label_order(a, b));
                (path.to_string(), by)
            })
            .collect();
        out.insert(repo.as_str(), files);
    }
    out
}

/// `owner/repo#9` before `owner/repo#12`; anything else by text.
fn label_order(a: &str, b: &str) -> Ordering {
    fn split(s: &str) -> (&str, Option<u64>) {
        match s.rsplit_once('#') {
            Some((head, n)) => (head, n.parse().ok()),
            None => (s, None),
        }
    }
    split(a).cmp(&split(b)).then_with(|| a.cmp(b))
}

/// `src/x.rs (owner/repo#12)`.
fn file_with_by(f: &(String, Vec<String>)) -> String {
    if f.1.is_empty() {
        f.0.clone()
    } else {
        format!("{} ({})", f.0, f.1.join(", "))
    }
}

/// `src/x.rs (owner/repo#12)` or `3 files, first: src/x.rs (owner/repo#12)`.
fn files_phrase(hits: &[&(String, Vec<String>)]) -> String {
    match hits {
        [] => "no files".to_string(),
        [one] => file_with_by(one),
        [first, ..] => format!("{} files, first: {}", hits.len(), file_with_by(first)),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `a is not redeployed`, `neither a nor b is redeployed`, `none of a, b, c is redeployed`.
fn neither_list(items: &[&str]) -> String {
    match items {
        [one] => format!("{one} is not redeployed"),
        [a, b] => format!("neither {a} nor {b} is redeployed"),
        _ => format!("none of {} is redeployed", items.join(", ")),
    }
}

#[cfg(test)]
mod tests;
