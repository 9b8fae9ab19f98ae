//! The pending set (issue #4, seed 002): which open pull requests an
//! environment that follows `pending` stages, and in which order they are
//! merged onto the base.
//!
//! This module owns the qualification rules — author trusted or approved by
//! a maintainer, not a draft, not labelled with the skip label, targeting the
//! branch the stg channel follows, updated within `max_age`, not excluded as
//! faulty — the `Depends-On:` convention (Zuul's) that ties pull requests of
//! several repositories into one [`Unit`] staged, tested and excluded
//! together, and the deterministic merge order. Every PR left out carries
//! every reason it is, and every PR included says why it may be: the PR
//! author and the dashboard read them.
//!
//! It must never do I/O or read a clock: the caller lists the open pull
//! requests as [`Candidate`]s, says which branch staging follows per
//! repository, and passes `now`.

use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Default label that keeps a pull request out of staging.
pub const DEFAULT_SKIP_LABEL: &str = "staging-skip";
/// Default age (since the last update) after which a pull request is left out.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);

/// One pull (GitHub) or merge (GitLab) request: `owner/name#12`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PrRef {
    /// Forge id of the repository: `owner/name`, or `group/sub/project`.
    pub repo: String,
    /// Its number in that repository.
    pub number: u64,
}

impl PrRef {
    /// `PrRef` for `repo#number`.
    pub fn new(repo: impl Into<String>, number: u64) -> PrRef {
        PrRef {
            repo: repo.into(),
            number,
        }
    }

    /// Identity for comparisons: forge ids are case-insensitive.
    fn key(&self) -> (String, u64) {
        (self.repo.to_ascii_lowercase(), self.number)
    }
}

impl fmt::Display for PrRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.repo, self.number)
    }
}

/// The order pending pull requests are merged onto the base.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// Oldest (by creation) first: the default.
    #[default]
    OldestFirst,
    /// Newest (by creation) first.
    NewestFirst,
    /// Lowest number first.
    ByNumber,
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::OldestFirst => "oldest-first",
            Order::NewestFirst => "newest-first",
            Order::ByNumber => "by-number",
        })
    }
}

impl FromStr for Order {
    type Err = String;

    fn from_str(s: &str) -> Result<Order, String> {
        match s {
            "oldest-first" => Ok(Order::OldestFirst),
            "newest-first" => Ok(Order::NewestFirst),
            "by-number" => Ok(Order::ByNumber),
            other => Err(format!(
                "unknown order `{other}` (expected `oldest-first`, `newest-first` or `by-number`)"
            )),
        }
    }
}

/// The rules of the pending set (filled by the caller from the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingConfig {
    /// Logins whose pull requests qualify without approval (case-insensitive).
    pub trusted: Vec<String>,
    /// A pull request with this label (case-insensitive) is left out; empty
    /// disables the check.
    pub skip_label: String,
    /// A pull request not updated for longer than this is left out.
    pub max_age: Duration,
    /// Merge order.
    pub order: Order,
}

impl Default for PendingConfig {
    fn default() -> Self {
        PendingConfig {
            trusted: Vec::new(),
            skip_label: DEFAULT_SKIP_LABEL.to_string(),
            max_age: DEFAULT_MAX_AGE,
            order: Order::OldestFirst,
        }
    }
}

/// An open pull request, as the forge describes it.
///
/// `Ord` is only there so that two entries for the same pull request are
/// resolved the same way whatever order they come in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Candidate {
    /// Forge id of the repository (`owner/name`).
    pub repo: String,
    /// Number in that repository.
    pub number: u64,
    /// Author's login.
    pub author: String,
    /// Title.
    pub title: String,
    /// Marked as draft (work in progress).
    pub draft: bool,
    /// Labels.
    pub labels: Vec<String>,
    /// The branch it targets.
    pub base_branch: String,
    /// Commit at its head.
    pub head_sha: String,
    /// When it was opened.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
    /// Description (where `Depends-On:` lines are).
    pub body: String,
    /// Maintainer who approved it for staging (`@bot deploy`), if any; the
    /// caller decides whether an approval survives new pushes.
    pub approved_by: Option<String>,
    /// Why it was excluded as faulty (culprit search), if it was.
    pub excluded: Option<String>,
    /// Where people see it.
    pub web_url: Option<String>,
}

impl Candidate {
    /// Its reference: `owner/name#12`.
    pub fn pr(&self) -> PrRef {
        PrRef::new(self.repo.clone(), self.number)
    }
}

/// A pull request in the pending set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Which one.
    pub pr: PrRef,
    /// Id of its [`Unit`].
    pub unit: String,
    /// Commit to merge.
    pub head_sha: String,
    /// Title.
    pub title: String,
    /// Author's login.
    pub author: String,
    /// Where people see it.
    pub web_url: Option<String>,
    /// Why it qualifies.
    pub reasons: Vec<String>,
}

/// A pull request left out of the pending set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    /// Which one.
    pub pr: PrRef,
    /// Id of its unit (left out as a whole).
    pub unit: String,
    /// Every reason, its own first, then those of the pull requests it is
    /// tied to by `Depends-On`.
    pub reasons: Vec<String>,
}

/// Pull requests staged, tested and excluded together (`Depends-On`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Its members joined by `+`, sorted by repository and number:
    /// `acme/api#12+acme/web#7`.
    pub id: String,
    /// Members in merge order (dependencies first).
    pub members: Vec<PrRef>,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSet {
    /// Pull requests to merge onto the base, in merge order.
    pub included: Vec<Entry>,
    /// Pull requests left out, by repository and number.
    pub left_out: Vec<LeftOut>,
    /// The included units, in merge order; `included` is their members in turn.
    pub units: Vec<Unit>,
}

/// Why a pull request does not qualify by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Draft,
    Skip(String),
    Untrusted(String),
    NoTarget(String),
    WrongTarget { targets: String, follows: String },
    Stale { age: i64, max: i64 },
    Excluded(String),
}

impl Problem {
    /// Standalone: `draft`.
    fn text(&self) -> String {
        match self {
            Problem::Draft => "draft".to_string(),
            Problem::Skip(l) => format!("labelled {l}"),
            Problem::Untrusted(a) => format!("author {a} is not trusted and no maintainer approved it"),
            Problem::NoTarget(repo) => format!("staging follows no branch of {repo}"),
            Problem::WrongTarget { targets, follows } => format!("targets {targets} but staging follows {follows}"),
            Problem::Stale { age, max } => {
                format!("last updated {} ago (max_age {})", format_days(*age), format_days(*max))
            }
            Problem::Excluded(r) if r.is_empty() => "excluded as faulty".to_string(),
            Problem::Excluded(r) => format!("excluded as faulty: {r}"),
        }
    }

    /// After "which": `is a draft`.
    fn clause(&self) -> String {
        match self {
            Problem::Draft => "is a draft".to_string(),
            Problem::Skip(l) => format!("is labelled {l}"),
            Problem::Untrusted(a) => format!("is by {a}, who is not trusted, and no maintainer approved it"),
            Problem::NoTarget(repo) => format!("is in {repo}, of which staging follows no branch"),
            Problem::WrongTarget { targets, follows } => format!("targets {targets} but staging follows {follows}"),
            Problem::Stale { age, max } => {
                format!(
                    "was last updated {} ago (max_age {})",
                    format_days(*age),
                    format_days(*max)
                )
            }
            Problem::Excluded(r) if r.is_empty() => "was excluded as faulty".to_string(),
            Problem::Excluded(r) => format!("was excluded as faulty: {r}"),
        }
    }
}

/// One candidate after its own checks.
struct Checked<'a> {
    c: &'a Candidate,
    pr: PrRef,
    problems: Vec<Problem>,
    /// Why it may be staged, if it has no problems.
    allowed: String,
    /// Indices of the candidates it depends on.
    deps: BTreeSet<usize>,
    /// Dependencies that are not candidates.
    missing: Vec<PrRef>,
}

/// Decides the pending set: which of `cands` qualify, how `Depends-On` ties
/// them into units, and their merge order.
///
/// `target_branch_for(repo)` is the branch the stg channel of that
/// repository's components follows (`None`: staging follows none, so its
/// pull requests are left out). Two candidates for the same pull request
/// (repository compared case-insensitively) count once: the last updated.
pub fn decide(
    cands: &[Candidate],
    cfg: &PendingConfig,
    target_branch_for: impl Fn(&str) -> Option<String>,
    now: Millis,
) -> PendingSet {
    // One candidate per pull request, in (repository, number) order.
    let mut by_key: BTreeMap<(String, u64), &Candidate> = BTreeMap::new();
    for c in cands {
        let key = c.pr().key();
        match by_key.get(&key) {
            Some(old) if (old.updated_at, *old) >= (c.updated_at, c) => {}
            _ => {
                by_key.insert(key, c);
            }
        }
    }
    let index: BTreeMap<(String, u64), usize> = by_key.keys().cloned().enumerate().map(|(i, k)| (k, i)).collect();
    let mut checked: Vec<Checked> = by_key
        .values()
        .map(|c| check(c, cfg, &target_branch_for, now))
        .collect();
    for (i, ch) in checked.iter_mut().enumerate() {
        for dep in depends_on(&ch.c.body) {
            match index.get(&dep.key()) {
                Some(&j) if j == i => {}
                Some(&j) => {
                    ch.deps.insert(j);
                }
                None => ch.missing.push(dep),
            }
        }
    }

    // Units: connected components over Depends-On edges.
    let mut uf = UnionFind::new(checked.len());
    for (i, ch) in checked.iter().enumerate() {
        for &j in &ch.deps {
            uf.union(i, j);
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..checked.len() {
        groups.entry(uf.find(i)).or_default().push(i);
    }

    let mut included_units: Vec<(UnitKey, Unit, Vec<Entry>)> = Vec::new();
    let mut left_out = Vec::new();
    for members in groups.into_values() {
        let id = members
            .iter()
            .map(|&i| checked[i].pr.to_string())
            .collect::<Vec<_>>()
            .join("+");
        let blocked = members
            .iter()
            .any(|&i| !checked[i].problems.is_empty() || !checked[i].missing.is_empty());
        if blocked {
            for &i in &members {
                left_out.push(LeftOut {
                    pr: checked[i].pr.clone(),
                    unit: id.clone(),
                    reasons: left_out_reasons(i, &members, &checked),
                });
            }
            continue;
        }
        let order = merge_order(&members, &checked);
        let entries = order
            .iter()
            .map(|&i| {
                let ch = &checked[i];
                let mut reasons = vec![ch.allowed.clone()];
                for &j in order.iter().filter(|&&j| j != i) {
                    let other = &checked[j];
                    reasons.push(if ch.deps.contains(&j) {
                        format!("depends on {}: staged together", other.pr)
                    } else if other.deps.contains(&i) {
                        format!("{} depends on it: staged together", other.pr)
                    } else {
                        format!("staged together with {} (Depends-On)", other.pr)
                    });
                }
                Entry {
                    pr: ch.pr.clone(),
                    unit: id.clone(),
                    head_sha: ch.c.head_sha.clone(),
                    title: ch.c.title.clone(),
                    author: ch.c.author.clone(),
                    web_url: ch.c.web_url.clone(),
                    reasons,
                }
            })
            .collect();
        let unit = Unit {
            id,
            members: order.iter().map(|&i| checked[i].pr.clone()).collect(),
        };
        included_units.push((unit_key(&members, &checked, cfg.order), unit, entries));
    }
    included_units.sort_by(|a, b| a.0.cmp(&b.0));
    left_out.sort_by_key(|l| l.pr.key());

    let mut set = PendingSet {
        left_out,
        ..PendingSet::default()
    };
    for (_, unit, entries) in included_units {
        set.units.push(unit);
        set.included.extend(entries);
    }
    set
}

/// The candidate's own checks, all of them.
fn check<'a>(
    c: &'a Candidate,
    cfg: &PendingConfig,
    target_branch_for: &impl Fn(&str) -> Option<String>,
    now: Millis,
) -> Checked<'a> {
    let mut problems = Vec::new();
    if c.draft {
        problems.push(Problem::Draft);
    }
    if !cfg.skip_label.is_empty() && c.labels.iter().any(|l| l.eq_ignore_ascii_case(&cfg.skip_label)) {
        problems.push(Problem::Skip(cfg.skip_label.clone()));
    }
    let trusted = cfg
        .trusted
        .iter()
        .any(|t| t.trim().eq_ignore_ascii_case(c.author.trim()));
    let approver = c.approved_by.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let allowed = match (trusted, approver) {
        (true, _) => format!("author {} is trusted", c.author),
        (false, Some(by)) => format!("approved for staging by {by} (author {} is not trusted)", c.author),
        (false, None) => {
            problems.push(Problem::Untrusted(c.author.clone()));
            String::new()
        }
    };
    match target_branch_for(&c.repo) {
        None => problems.push(Problem::NoTarget(c.repo.clone())),
        Some(b) if b != c.base_branch => problems.push(Problem::WrongTarget {
            targets: c.base_branch.clone(),
            follows: b,
        }),
        Some(_) => {}
    }
    let max = i64::try_from(cfg.max_age.as_millis()).unwrap_or(i64::MAX);
    let age = now.saturating_sub(c.updated_at);
    if age > max {
        problems.push(Problem::Stale { age, max });
    }
    if let Some(r) = &c.excluded {
        problems.push(Problem::Excluded(r.trim().to_string()));
    }
    Checked {
        c,
        pr: c.pr(),
        problems,
        allowed,
        deps: BTreeSet::new(),
        missing: Vec::new(),
    }
}

/// Every reason member `i` of a blocked unit is left out.
fn left_out_reasons(i: usize, members: &[usize], checked: &[Checked]) -> Vec<String> {
    let me = &checked[i];
    let mut reasons: Vec<String> = me.problems.iter().map(Problem::text).collect();
    for m in &me.missing {
        reasons.push(format!("depends on {m}, {}", MISSING));
    }
    for &j in members.iter().filter(|&&j| j != i) {
        let other = &checked[j];
        let mut clauses: Vec<String> = other.problems.iter().map(Problem::clause).collect();
        clauses.extend(other.missing.iter().map(|m| format!("depends on {m}, {}", MISSING)));
        if clauses.is_empty() {
            continue;
        }
        let tie = if me.deps.contains(&j) {
            format!("depends on {}", other.pr)
        } else if other.deps.contains(&i) {
            format!("{} depends on it", other.pr)
        } else {
            format!("staged together with {} (Depends-On)", other.pr)
        };
        let which = if other.deps.contains(&i) && !me.deps.contains(&j) {
            "and"
        } else {
            "which"
        };
        reasons.push(format!("{tie}, {which} {}", clauses.join("; ")));
    }
    reasons
}

/// What a dependency that is not a candidate is.
const MISSING: &str = "which is not an open pull request of a staged repository (merged, closed or unknown)";

/// Members of one unit in merge order: dependencies first, then by number
/// (and repository); a dependency cycle is broken at its lowest number.
fn merge_order(members: &[usize], checked: &[Checked]) -> Vec<usize> {
    let tie = |i: &usize| (checked[*i].c.number, checked[*i].pr.key());
    let mut left: Vec<usize> = members.to_vec();
    let mut placed: BTreeSet<usize> = BTreeSet::new();
    let mut out = Vec::with_capacity(members.len());
    while !left.is_empty() {
        let ready = left
            .iter()
            .filter(|&&i| checked[i].deps.iter().all(|d| placed.contains(d)))
            .min_by_key(|i| tie(i))
            .or_else(|| left.iter().min_by_key(|i| tie(i)))
            .copied();
        let Some(next) = ready else { break };
        left.retain(|&i| i != next);
        placed.insert(next);
        out.push(next);
    }
    out
}

/// Sort key of an included unit: per [`Order`], then its first member by
/// repository and number.
type UnitKey = (i64, u64, (String, u64));

fn unit_key(members: &[usize], checked: &[Checked], order: Order) -> UnitKey {
    let first = members.iter().map(|&i| checked[i].pr.key()).min().unwrap_or_default();
    let oldest = members.iter().map(|&i| checked[i].c.created_at).min().unwrap_or(0);
    match order {
        Order::OldestFirst => (oldest, 0, first),
        Order::NewestFirst => (oldest.saturating_neg(), 0, first),
        Order::ByNumber => {
            let lowest = members.iter().map(|&i| checked[i].c.number).min().unwrap_or(0);
            (0, lowest, first)
        }
    }
}

/// `20d`, `14d 6h`, `5h 3m`: ages in days.
fn format_days(ms: i64) -> String {
    const DAY: i64 = 24 * 3600 * 1000;
    const HOUR: i64 = 3600 * 1000;
    if ms < DAY {
        return crate::time::format_span(ms);
    }
    let (d, h) = (ms / DAY, ms % DAY / HOUR);
    if h == 0 { format!("{d}d") } else { format!("{d}d {h}h") }
}

/// The pull requests a description depends on: every line
/// `Depends-On: <url>` (key case-insensitive, whitespace tolerant, outside
/// code fences), in order, each once.
///
/// URLs: `https://github.com/OWNER/REPO/pull/N` (any host) and
/// `https://gitlab.example.com/GROUP/SUB/PROJECT/-/merge_requests/N`; the
/// repository is the URL's path (`OWNER/REPO`, `GROUP/SUB/PROJECT`), the
/// host is dropped.
pub fn depends_on(body: &str) -> Vec<PrRef> {
    let mut out: Vec<PrRef> = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for line in body.lines() {
        let t = line.trim();
        if let Some((ch, n)) = fence_marker(t) {
            match fence {
                None => fence = Some((ch, n)),
                Some((open, len)) if open == ch && n >= len && t.trim_start_matches(ch).trim().is_empty() => {
                    fence = None
                }
                Some(_) => {}
            }
            continue;
        }
        if fence.is_some() {
            continue;
        }
        let Some(value) = strip_key(t) else { continue };
        for token in value.split(|c: char| c.is_whitespace() || c == ',') {
            if let Some(pr) = parse_pr_url(token)
                && !out.iter().any(|p| p.key() == pr.key())
            {
                out.push(pr);
            }
        }
    }
    out
}

/// A code fence: three or more backticks or tildes.
fn fence_marker(line: &str) -> Option<(char, usize)> {
    let ch = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = line.chars().take_while(|c| *c == ch).count();
    (n >= 3).then_some((ch, n))
}

/// The text after `Depends-On:` (any case, spaces around the colon).
fn strip_key(line: &str) -> Option<&str> {
    const KEY: &str = "depends-on";
    let head = line.get(..KEY.len())?;
    if !head.eq_ignore_ascii_case(KEY) {
        return None;
    }
    let rest = line[KEY.len()..].trim_start().strip_prefix(':')?;
    Some(rest.trim())
}

/// `https://github.com/o/r/pull/5` -> `o/r#5`;
/// `https://host/g/s/p/-/merge_requests/7` -> `g/s/p#7`.
fn parse_pr_url(token: &str) -> Option<PrRef> {
    let url = token.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | '.' | ';' | '"' | '\''));
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url["https://".len()..]
    } else if lower.starts_with("http://") {
        &url["http://".len()..]
    } else {
        return None;
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (_host, path) = rest.split_once('/')?;
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let number_at = |i: usize| -> Option<u64> { segs.get(i + 1)?.parse().ok().filter(|n| *n > 0) };
    for (i, seg) in segs.iter().enumerate() {
        if *seg == "pull" && i == 2 {
            return Some(PrRef::new(segs[..2].join("/"), number_at(i)?));
        }
        if *seg == "merge_requests" {
            let project = match &segs[..i] {
                [init @ .., "-"] => init,
                all => all,
            };
            if project.len() < 2 {
                return None;
            }
            return Some(PrRef::new(project.join("/"), number_at(i)?));
        }
    }
    None
}

/// Union-find with path halving; the root of a set is its lowest index, so
/// the grouping does not depend on the order of the unions.
struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[hi] = lo;
    }
}

#[cfg(test)]
mod tests;
