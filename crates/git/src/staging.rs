//! Staging branches: a base commit plus every pending pull request merged on
//! top, in the order given, inside the bare mirror (no work tree).
//!
//! Owns [`build_staging`] (the merges), [`publish`] (the staging ref and its
//! dated tags, in the mirror and optionally pushed) and the step cache file
//! `CACHE_DIR/<mirror name>.staging-cache` (+ `.lock`).
//!
//! Each step merges one pull request head into the accumulated commit with
//! `git merge-tree --write-tree` (the `ort` merge `git merge` uses, so trees
//! and conflict decisions are those of a `git merge --no-ff` loop). A clean
//! merge becomes a commit written with `git hash-object -t commit` from bytes
//! composed here, so the same inputs always give the same SHA:
//!
//! - author and committer are `greenroom <EMAIL>` (the email from
//!   [`StagingOptions`]);
//! - both dates are the newest committer date of the two parents (the
//!   accumulated commit and the pull request head), in UTC (`+0000`), so they
//!   follow the inputs and never the clock;
//! - the message is `Merge <id>: <title>` (title on one line, at most 200
//!   characters).
//!
//! Rebuilding with nothing changed thus gives the same commit and the same
//! manifest id. A conflicting pull request (or one with unrelated history) is
//! left out and reported with its conflicting paths; the next ones go on from
//! the same accumulated commit. A head already contained in the accumulated
//! commit adds nothing (as `git merge` says "Already up to date").
//!
//! The cache maps a step's inputs (accumulated commit, head) to its outcome
//! (result commit, conflict, or up to date), so a rebuild replays only from
//! the first pull request that changed: the unchanged prefix costs no git
//! process beyond one `git cat-file --batch` that checks every input and
//! every reused commit at once. A cached commit is reused only if it is still
//! in the mirror and its bytes are exactly what this build would write; when
//! only its message or identity differ, its tree is reused (the steps after
//! it then start from another commit, and are merged again). Entries not used
//! by one of the last [`StagingOptions::keep_builds`] builds are dropped. The
//! cache is an optimization: when it cannot be read or written the build goes
//! on without it (with a warning), never with a wrong answer.
//!
//! Builds and publications hold the mirror's lock (they write objects and
//! refs); the cache file has its own lock, always taken after the mirror's.
//! This module must never run a shell, read the clock, touch a work tree,
//! or move a ref other than the staging ref and the dated tags it is given.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use crate::cmd::{GitCmd, command_error};
use crate::error::GitError;
use crate::lock::lock;
use crate::want::{check_ref_name, is_full_sha};

/// The author and committer name of staging merge commits.
pub const IDENTITY_NAME: &str = "greenroom";

/// The default author and committer email of staging merge commits.
pub const DEFAULT_EMAIL: &str = "greenroom@localhost";

/// Longest title kept in a merge message, in characters.
pub const TITLE_MAX_CHARS: usize = 200;

/// First line of the cache file; another version is ignored (rebuilt).
const CACHE_HEADER: &str = "greenroom-staging-cache 1";

/// Hard cap on cache entries, whatever `keep_builds` says.
const CACHE_MAX_ENTRIES: usize = 50_000;

/// One pending pull request to merge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrHead {
    /// How the pull request is reported, e.g. `owner/repo#12`; unique in a build.
    pub id: String,
    /// The pull (merge) request number.
    pub number: u64,
    /// Its head commit: a full SHA, already present in the mirror.
    pub head: String,
    /// Its title, used in the merge message.
    pub title: String,
}

/// A pull request left out of the staging branch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Conflict {
    /// The [`PrHead::id`].
    pub id: String,
    /// Paths with conflicts (empty when the histories are unrelated).
    pub files: Vec<String>,
    /// git's explanation, e.g. `CONFLICT (content): Merge conflict in a.txt`.
    pub message: String,
}

/// The result of [`build_staging`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StagingBuild {
    /// The base commit (full SHA).
    pub base: String,
    /// The staging commit: the last merge, or `base` when nothing was merged.
    pub commit: String,
    /// The tree of `commit`.
    pub tree: String,
    /// Pull requests merged, in merge order.
    pub merged: Vec<String>,
    /// Pull requests left out because they conflict, in merge order.
    pub conflicts: Vec<Conflict>,
    /// Pull requests whose head was already contained (nothing to merge).
    pub up_to_date: Vec<String>,
    /// Steps answered from the cache (no `git merge-tree`).
    pub reused_steps: usize,
    /// Steps computed with `git merge-tree`.
    pub merged_steps: usize,
}

/// How [`build_staging`] identifies its commits and where it caches steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingOptions {
    /// Directory of the step cache (created if needed); `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    /// Author and committer email of merge commits (name: [`IDENTITY_NAME`]).
    pub email: String,
    /// Cache entries used by one of this many last builds are kept (at least 1).
    pub keep_builds: u64,
}

impl Default for StagingOptions {
    fn default() -> Self {
        StagingOptions {
            cache_dir: None,
            email: DEFAULT_EMAIL.to_owned(),
            keep_builds: 8,
        }
    }
}

impl StagingOptions {
    /// Default options with the step cache in `cache_dir`.
    pub fn with_cache(cache_dir: impl Into<PathBuf>) -> Self {
        StagingOptions {
            cache_dir: Some(cache_dir.into()),
            ..StagingOptions::default()
        }
    }
}

/// The result of [`publish`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Published {
    /// The staging ref updated.
    pub ref_name: String,
    /// The commit it now points to.
    pub commit: String,
    /// The dated tag created (short name), if any.
    pub tag: Option<String>,
    /// Older dated tags deleted (short names, in the mirror and/or the
    /// remote), sorted.
    pub pruned_tags: Vec<String>,
    /// Whether the ref and tag were pushed.
    pub pushed: bool,
}

/// Merge `prs`, in the order given, on top of `base` in `mirror`.
///
/// `base` and every head must be full SHAs of commits already in the mirror
/// (fetch them first, e.g. with [`Mirror::resolve_all`](crate::Mirror::resolve_all));
/// a missing one is reported by name before anything is merged. The order is
/// the caller's (oldest first by default in `[pending] order`). Ids must be
/// unique. See the module documentation for determinism and the cache.
pub async fn build_staging(
    mirror: &crate::Mirror,
    base: &str,
    prs: &[PrHead],
    opts: &StagingOptions,
) -> Result<StagingBuild, GitError> {
    let repo = mirror.url();
    let base = base.to_ascii_lowercase();
    if !is_full_sha(&base) {
        return Err(GitError::not_found(
            repo,
            format!("commit `{base}` (the staging base) is not a full SHA (40 or 64 hexadecimal digits)"),
        ));
    }
    let mut seen = HashSet::new();
    let mut steps = Vec::with_capacity(prs.len());
    for pr in prs {
        let head = pr.head.to_ascii_lowercase();
        if !is_full_sha(&head) {
            return Err(GitError::not_found(
                repo,
                format!(
                    "commit `{}` (head of {}) is not a full SHA (40 or 64 hexadecimal digits)",
                    pr.head, pr.id
                ),
            ));
        }
        if !seen.insert(pr.id.as_str()) {
            return Err(invalid_input(
                format!("building a staging branch of {repo}"),
                &format!("pull request `{}` is listed twice", pr.id),
            ));
        }
        steps.push(Step {
            id: pr.id.clone(),
            head,
            message: merge_message(&pr.id, &pr.title),
        });
    }
    check_email(&opts.email)?;

    let _mirror_guard = lock(&mirror_lock_path(mirror)).await?;
    let mut cache = StepCache::open(mirror, opts).await;
    let result = Builder {
        git: Git::new(mirror),
        email: &opts.email,
        cache: &mut cache,
        known: HashMap::new(),
    }
    .run(&base, &steps)
    .await;
    if result.is_ok() {
        cache.save(opts.keep_builds).await;
    }
    result
}

/// Point `ref_name` at `build.commit` in the mirror and, with `push_url`,
/// on the remote too (force-pushed: a staging branch is rewritten).
///
/// With a `tag_prefix` and `keep_tags > 0`, also tags the commit
/// `<tag_prefix><now_utc>` (e.g. `staging-` + `20261123-1405`; the time is
/// the caller's, the adapter reads no clock) and deletes older dated tags
/// with that prefix beyond the newest `keep_tags` (the new one always kept).
/// Only tags whose suffix has the shape of `now_utc` (digits where it has
/// digits, the same other characters) count as dated tags; others are never
/// touched. The mirror's refs change in one transaction (under its lock);
/// then the remote gets one push with every update and deletion. A failed
/// push is returned as an error, the mirror keeping its new refs.
pub async fn publish(
    mirror: &crate::Mirror,
    build: &StagingBuild,
    ref_name: &str,
    tag_prefix: Option<&str>,
    keep_tags: usize,
    now_utc: &str,
    push_url: Option<&str>,
) -> Result<Published, GitError> {
    let repo = mirror.url();
    let context = || format!("publishing the staging branch of {repo} to `{ref_name}`");
    if !ref_name.starts_with("refs/") || ref_name.starts_with("refs/tags/") {
        return Err(invalid_input(
            context(),
            "the staging ref must be a full ref name outside refs/tags/ (e.g. refs/heads/greenroom/staging)",
        ));
    }
    check_ref_name(ref_name).map_err(|why| invalid_input(context(), &format!("invalid ref name ({why})")))?;
    let commit = build.commit.to_ascii_lowercase();
    if !is_full_sha(&commit) {
        return Err(GitError::not_found(
            repo,
            format!("commit `{}` (the staging commit) is not a full SHA", build.commit),
        ));
    }
    let tag = match tag_prefix {
        Some(prefix) if keep_tags > 0 => {
            if prefix.is_empty() || now_utc.is_empty() {
                return Err(invalid_input(
                    context(),
                    "the tag prefix and the date must not be empty",
                ));
            }
            let name = format!("{prefix}{now_utc}");
            check_ref_name(&name)
                .map_err(|why| invalid_input(context(), &format!("invalid tag name `{name}` ({why})")))?;
            Some(name)
        }
        _ => None,
    };
    if let Some(url) = push_url
        && (url.is_empty() || url.starts_with('-') || url.chars().any(char::is_control))
    {
        return Err(invalid_input(
            context(),
            "the push URL must be non-empty, must not start with `-` and must not contain control characters",
        ));
    }
    let git = Git::new(mirror);
    let mut pruned = Vec::new();

    {
        let _guard = lock(&mirror_lock_path(mirror)).await?;
        let mut script = format!("update {ref_name} {commit}\n");
        if let (Some(tag), Some(prefix)) = (&tag, tag_prefix) {
            script.push_str(&format!("update refs/tags/{tag} {commit}\n"));
            let out = git
                .cmd()
                .args(["for-each-ref", "--format=%(refname)", "refs/tags/"])
                .run()
                .await?;
            let local = ref_lines(&out.stdout);
            for old in tags_to_prune(&local, prefix, now_utc, tag, keep_tags) {
                script.push_str(&format!("delete refs/tags/{old}\n"));
                pruned.push(old);
            }
        }
        git.cmd()
            .args(["update-ref", "-m", "greenroom: staging branch", "--stdin"])
            .stdin(script.into_bytes())
            .run()
            .await?;
    }

    if let Some(url) = push_url {
        let mut refspecs = vec![format!("+{commit}:{ref_name}")];
        if let (Some(tag), Some(prefix)) = (&tag, tag_prefix) {
            refspecs.push(format!("+{commit}:refs/tags/{tag}"));
            let out = git
                .cmd()
                .args(["ls-remote", "--tags", "--refs", "--end-of-options", url])
                .run()
                .await?;
            let remote: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once('\t').map(|(_, r)| r.to_owned()))
                .collect();
            for old in tags_to_prune(&remote, prefix, now_utc, tag, keep_tags) {
                refspecs.push(format!(":refs/tags/{old}"));
                pruned.push(old);
            }
        }
        git.cmd()
            .args(["push", "--quiet", "--no-verify", "--end-of-options", url])
            .args(&refspecs)
            .run()
            .await?;
    }
    pruned.sort();
    pruned.dedup();
    Ok(Published {
        ref_name: ref_name.to_owned(),
        commit,
        tag,
        pruned_tags: pruned,
        pushed: push_url.is_some(),
    })
}

/// One pull request, validated.
#[derive(Debug)]
struct Step {
    id: String,
    head: String,
    message: String,
}

/// What merging one head into one accumulated commit gave.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Merged { commit: String },
    Conflict { files: Vec<String>, message: String },
    UpToDate,
}

/// A commit as read from the mirror: its tree, committer time and bytes.
#[derive(Debug, Clone)]
struct CommitObj {
    tree: String,
    parents: Vec<String>,
    time: i64,
    raw: Vec<u8>,
}

/// git commands on one mirror.
struct Git<'a> {
    repo: &'a str,
    dir: &'a Path,
}

impl<'a> Git<'a> {
    fn new(mirror: &'a crate::Mirror) -> Self {
        Git {
            repo: mirror.url(),
            dir: mirror.path(),
        }
    }

    fn cmd(&self) -> GitCmd {
        GitCmd::new(self.repo).git_dir(self.dir)
    }

    /// Read commits with one `git cat-file --batch`; `None` for a name that
    /// is missing or not a commit.
    async fn read_commits(&self, shas: &[String]) -> Result<Vec<Option<CommitObj>>, GitError> {
        if shas.is_empty() {
            return Ok(Vec::new());
        }
        let mut stdin = shas.join("\n").into_bytes();
        stdin.push(b'\n');
        let out = self.cmd().args(["cat-file", "--batch"]).stdin(stdin).run().await?;
        let mut rest: &[u8] = &out.stdout;
        let mut objs = Vec::with_capacity(shas.len());
        for _ in shas {
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                return Err(self.unexpected("cat-file --batch", "output ended early"));
            };
            let header = String::from_utf8_lossy(&rest[..nl]).into_owned();
            rest = &rest[nl + 1..];
            let fields: Vec<&str> = header.split(' ').collect();
            match fields.as_slice() {
                [_, kind, size] => {
                    let size: usize = size
                        .parse()
                        .map_err(|_| self.unexpected("cat-file --batch", &format!("bad header `{header}`")))?;
                    if rest.len() < size + 1 {
                        return Err(self.unexpected("cat-file --batch", "output ended early"));
                    }
                    let raw = rest[..size].to_vec();
                    rest = &rest[size + 1..];
                    objs.push(if *kind == "commit" { parse_commit(raw) } else { None });
                }
                _ => objs.push(None),
            }
        }
        Ok(objs)
    }

    /// `git merge-tree --write-tree` of `ours` and `theirs`.
    async fn merge_tree(&self, ours: &str, theirs: &str) -> Result<MergeTree, GitError> {
        let args = [
            "merge-tree",
            "--write-tree",
            "--name-only",
            "-z",
            "--end-of-options",
            ours,
            theirs,
        ];
        let out = self.cmd().args(args).output().await?;
        match out.status.code() {
            Some(0 | 1) => {}
            _ if out.stderr.contains("refusing to merge unrelated histories") => {
                return Ok(MergeTree::Conflict {
                    files: Vec::new(),
                    message: "refusing to merge unrelated histories".to_owned(),
                });
            }
            _ => return Err(command_error(self.repo, &args.join(" "), &out)),
        }
        let fields: Vec<String> = out
            .stdout
            .split(|&b| b == 0)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        let tree = fields.first().cloned().unwrap_or_default();
        if !is_full_sha(&tree) {
            return Err(self.unexpected("merge-tree", &format!("no tree id in `{tree}`")));
        }
        if out.status.code() == Some(0) {
            return Ok(MergeTree::Clean { tree });
        }
        let files: Vec<String> = fields[1..].iter().take_while(|f| !f.is_empty()).cloned().collect();
        Ok(MergeTree::Conflict {
            message: conflict_messages(&fields[(1 + files.len()).min(fields.len())..]),
            files,
        })
    }

    /// Write a commit object from its bytes; its SHA.
    async fn write_commit(&self, raw: Vec<u8>) -> Result<String, GitError> {
        let out = self
            .cmd()
            .args(["hash-object", "-t", "commit", "-w", "--stdin"])
            .stdin(raw)
            .run()
            .await?;
        let sha = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if is_full_sha(&sha) {
            Ok(sha)
        } else {
            Err(self.unexpected("hash-object", &format!("not an object id: `{sha}`")))
        }
    }

    /// Whether `ancestor` is an ancestor of (or equal to) `descendant`.
    async fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
        let args = ["merge-base", "--is-ancestor", "--end-of-options", ancestor, descendant];
        let out = self.cmd().args(args).output().await?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(command_error(self.repo, &args.join(" "), &out)),
        }
    }

    fn unexpected(&self, args: &str, what: &str) -> GitError {
        GitError::Command {
            repo: self.repo.to_owned(),
            args: args.to_owned(),
            status: "unexpected output".to_owned(),
            stderr: what.to_owned(),
        }
    }
}

/// What `git merge-tree` said.
enum MergeTree {
    Clean { tree: String },
    Conflict { files: Vec<String>, message: String },
}

/// The merging loop, with what it knows about commits so far.
struct Builder<'a> {
    git: Git<'a>,
    email: &'a str,
    cache: &'a mut StepCache,
    /// Commits read from the mirror or written by this build.
    known: HashMap<String, CommitObj>,
}

impl Builder<'_> {
    async fn run(mut self, base: &str, steps: &[Step]) -> Result<StagingBuild, GitError> {
        // One read of the base, every head, and every commit the cache would
        // reuse along the way.
        let mut wanted = vec![base.to_owned()];
        wanted.extend(steps.iter().map(|s| s.head.clone()));
        let inputs = wanted.len();
        wanted.extend(self.cache.chain(base, steps));
        let objs = self.git.read_commits(&wanted).await?;
        for (i, (sha, obj)) in wanted.iter().zip(objs).enumerate() {
            match obj {
                Some(obj) => {
                    self.known.insert(sha.clone(), obj);
                }
                None if i == 0 => {
                    return Err(GitError::not_found(
                        self.git.repo,
                        format!("commit `{sha}` (the staging base) not found"),
                    ));
                }
                None if i < inputs => {
                    let id = &steps[i - 1].id;
                    return Err(GitError::not_found(
                        self.git.repo,
                        format!("commit `{sha}` (head of {id}) not found"),
                    ));
                }
                None => {}
            }
        }

        let mut build = StagingBuild {
            base: base.to_owned(),
            commit: base.to_owned(),
            tree: String::new(),
            merged: Vec::new(),
            conflicts: Vec::new(),
            up_to_date: Vec::new(),
            reused_steps: 0,
            merged_steps: 0,
        };
        for (i, step) in steps.iter().enumerate() {
            let acc = build.commit.clone();
            let outcome = match self.reuse(&acc, step, &steps[i..]).await? {
                Some(outcome) => {
                    build.reused_steps += 1;
                    outcome
                }
                None => {
                    build.merged_steps += 1;
                    self.merge(&acc, step).await?
                }
            };
            self.cache.record(&acc, &step.head, outcome.clone());
            match outcome {
                Outcome::Merged { commit } => {
                    build.commit = commit;
                    build.merged.push(step.id.clone());
                }
                Outcome::Conflict { files, message } => build.conflicts.push(Conflict {
                    id: step.id.clone(),
                    files,
                    message,
                }),
                Outcome::UpToDate => build.up_to_date.push(step.id.clone()),
            }
        }
        build.tree = self.obj(&build.commit)?.tree.clone();
        Ok(build)
    }

    /// A commit known to this build.
    fn obj(&self, sha: &str) -> Result<&CommitObj, GitError> {
        self.known.get(sha).ok_or_else(|| {
            self.git
                .unexpected("cat-file --batch", &format!("commit {sha} was not read (bug)"))
        })
    }

    /// The bytes of the merge commit of `head` into `acc` with `tree`.
    fn merge_commit_bytes(&self, tree: &str, acc: &str, step: &Step) -> Result<Vec<u8>, GitError> {
        let time = self.obj(acc)?.time.max(self.obj(&step.head)?.time);
        let who = format!("{IDENTITY_NAME} <{}> {time} +0000", self.email);
        Ok(format!(
            "tree {tree}\nparent {acc}\nparent {}\nauthor {who}\ncommitter {who}\n\n{}\n",
            step.head, step.message
        )
        .into_bytes())
    }

    /// The cached outcome of this step, if still valid. `rest` is this step
    /// and the following ones, to read the commits they would reuse at once.
    async fn reuse(&mut self, acc: &str, step: &Step, rest: &[Step]) -> Result<Option<Outcome>, GitError> {
        let Some(outcome) = self.cache.get(acc, &step.head).cloned() else {
            return Ok(None);
        };
        let Outcome::Merged { commit } = &outcome else {
            return Ok(Some(outcome));
        };
        if !self.known.contains_key(commit) {
            // A hit after a miss (e.g. a head changed back): read what the
            // rest of the chain would reuse, in one go.
            let shas: Vec<String> = self
                .cache
                .chain(acc, rest)
                .into_iter()
                .filter(|s| !self.known.contains_key(s))
                .collect();
            for (sha, obj) in shas.iter().zip(self.git.read_commits(&shas).await?) {
                if let Some(obj) = obj {
                    self.known.insert(sha.clone(), obj);
                }
            }
        }
        let Some(cached) = self.known.get(commit) else {
            tracing::debug!(commit, "cached staging merge is gone from the mirror; merging again");
            return Ok(None);
        };
        if cached.parents != [acc, step.head.as_str()] {
            return Ok(None);
        }
        let tree = cached.tree.clone();
        let raw = self.merge_commit_bytes(&tree, acc, step)?;
        if cached.raw == raw {
            return Ok(Some(outcome));
        }
        // Same merge, another message or identity: keep the tree.
        let commit = self.write(raw).await?;
        Ok(Some(Outcome::Merged { commit }))
    }

    /// Merge `step` into `acc` with git.
    async fn merge(&mut self, acc: &str, step: &Step) -> Result<Outcome, GitError> {
        match self.git.merge_tree(acc, &step.head).await? {
            MergeTree::Conflict { files, message } => Ok(Outcome::Conflict { files, message }),
            MergeTree::Clean { tree } => {
                if tree == self.obj(acc)?.tree && self.git.is_ancestor(&step.head, acc).await? {
                    return Ok(Outcome::UpToDate);
                }
                let raw = self.merge_commit_bytes(&tree, acc, step)?;
                let commit = self.write(raw).await?;
                Ok(Outcome::Merged { commit })
            }
        }
    }

    /// Write a merge commit and remember it.
    async fn write(&mut self, raw: Vec<u8>) -> Result<String, GitError> {
        let commit = self.git.write_commit(raw.clone()).await?;
        let obj = parse_commit(raw).ok_or_else(|| {
            self.git
                .unexpected("hash-object", "the commit written does not parse (bug)")
        })?;
        self.known.insert(commit.clone(), obj);
        Ok(commit)
    }
}

/// Parse a commit object's header: tree, parents, committer time.
fn parse_commit(raw: Vec<u8>) -> Option<CommitObj> {
    let text = String::from_utf8_lossy(&raw);
    let header = text.split("\n\n").next().unwrap_or_default();
    let mut tree = None;
    let mut parents = Vec::new();
    let mut time = 0;
    for line in header.lines() {
        if let Some(t) = line.strip_prefix("tree ") {
            tree = Some(t.to_owned());
        } else if let Some(p) = line.strip_prefix("parent ") {
            parents.push(p.to_owned());
        } else if let Some(c) = line.strip_prefix("committer ") {
            let mut words = c.rsplit(' ');
            let _zone = words.next();
            time = words.next().and_then(|t| t.parse().ok()).unwrap_or(0);
        }
    }
    let tree = tree?;
    Some(CommitObj {
        tree,
        parents,
        time,
        raw,
    })
}

/// The conflict lines of `git merge-tree -z`'s informational messages
/// (`<count> NUL <paths> NUL... <type> NUL <message> NUL`), or all of them.
fn conflict_messages(fields: &[String]) -> String {
    let mut all = Vec::new();
    let mut i = 0;
    // Skip the empty field that ends the list of conflicted paths.
    while i < fields.len() && fields[i].is_empty() {
        i += 1;
    }
    while i < fields.len() {
        let Ok(count) = fields[i].parse::<usize>() else {
            break;
        };
        let (kind, text) = match (fields.get(i + 1 + count), fields.get(i + 2 + count)) {
            (Some(k), Some(t)) => (k, t.trim()),
            _ => break,
        };
        all.push((kind.starts_with("CONFLICT"), text.to_owned()));
        i += count + 3;
    }
    let conflicts: Vec<&str> = all.iter().filter(|(c, _)| *c).map(|(_, t)| t.as_str()).collect();
    if conflicts.is_empty() {
        all.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join("\n")
    } else {
        conflicts.join("\n")
    }
}

/// `Merge <id>: <title>`, on one line, the title at most
/// [`TITLE_MAX_CHARS`] characters.
pub fn merge_message(id: &str, title: &str) -> String {
    let id = one_line(id);
    let title: String = one_line(title).chars().take(TITLE_MAX_CHARS).collect();
    let title = title.trim_end();
    if title.is_empty() {
        format!("Merge {id}")
    } else {
        format!("Merge {id}: {title}")
    }
}

/// Control characters and runs of whitespace become one space; trimmed.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_email(email: &str) -> Result<(), GitError> {
    if email.is_empty() || email.chars().any(|c| c.is_control() || matches!(c, '<' | '>')) {
        Err(invalid_input(
            "building a staging branch".to_owned(),
            "the identity email must be non-empty, without `<`, `>` or control characters",
        ))
    } else {
        Ok(())
    }
}

fn invalid_input(context: String, why: &str) -> GitError {
    GitError::io(context, io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()))
}

/// The mirror's lock file: `ROOT/<name>.lock` next to `ROOT/<name>.git`
/// (the layout of [`Mirrors::open`](crate::Mirrors::open)).
fn mirror_lock_path(mirror: &crate::Mirror) -> PathBuf {
    mirror.path().with_extension("lock")
}

/// `<name>` of the mirror `ROOT/<name>.git`.
fn mirror_name(mirror: &crate::Mirror) -> String {
    mirror
        .path()
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mirror".to_owned())
}

/// Ref names, one a line.
fn ref_lines(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Dated tags (full ref names in `refs`) with `prefix` beyond the newest
/// `keep` counting `new_tag`; short names. A dated tag's suffix has the
/// shape of `now`: same length, digits where `now` has digits, the same
/// other characters.
fn tags_to_prune(refs: &[String], prefix: &str, now: &str, new_tag: &str, keep: usize) -> Vec<String> {
    let shaped = |suffix: &str| {
        suffix.len() == now.len()
            && suffix.bytes().zip(now.bytes()).all(
                |(a, b)| {
                    if b.is_ascii_digit() { a.is_ascii_digit() } else { a == b }
                },
            )
    };
    let mut dated: Vec<&str> = refs
        .iter()
        .filter_map(|r| r.strip_prefix("refs/tags/"))
        .filter(|t| *t != new_tag)
        .filter(|t| t.strip_prefix(prefix).is_some_and(shaped))
        .collect();
    dated.sort_unstable_by(|a, b| b.cmp(a));
    dated.dedup();
    dated
        .into_iter()
        .skip(keep.saturating_sub(1))
        .map(str::to_owned)
        .collect()
}

/// The step cache of one mirror, loaded under its lock.
struct StepCache {
    /// The cache file, `None` when there is no cache (or it cannot be used).
    file: Option<PathBuf>,
    /// Held while the cache is open.
    _guard: Option<crate::lock::MirrorLock>,
    /// This build's generation.
    generation: u64,
    /// (accumulated commit, head) -> (generation last used, outcome).
    entries: CacheEntries,
}

impl StepCache {
    /// Lock and read the cache of `mirror`; problems disable the cache.
    async fn open(mirror: &crate::Mirror, opts: &StagingOptions) -> StepCache {
        let mut cache = StepCache {
            file: None,
            _guard: None,
            generation: 1,
            entries: HashMap::new(),
        };
        let Some(dir) = &opts.cache_dir else {
            return cache;
        };
        let name = mirror_name(mirror);
        let file = dir.join(format!("{name}.staging-cache"));
        if let Err(e) = tokio::fs::create_dir_all(dir).await {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create the staging cache directory; building without it");
            return cache;
        }
        match lock(&dir.join(format!("{name}.staging-cache.lock"))).await {
            Ok(guard) => cache._guard = Some(guard),
            Err(e) => {
                tracing::warn!(error = %e, "cannot lock the staging cache; building without it");
                return cache;
            }
        }
        match tokio::fs::read_to_string(&file).await {
            Ok(text) => match parse_cache(&text) {
                Some((generation, entries)) => {
                    cache.generation = generation.saturating_add(1);
                    cache.entries = entries;
                }
                None => tracing::warn!(file = %file.display(), "ignoring an unreadable staging cache"),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %file.display(), error = %e, "ignoring an unreadable staging cache"),
        }
        cache.file = Some(file);
        cache
    }

    fn get(&self, acc: &str, head: &str) -> Option<&Outcome> {
        self.entries
            .get(&(acc.to_owned(), head.to_owned()))
            .map(|(_, outcome)| outcome)
    }

    fn record(&mut self, acc: &str, head: &str, outcome: Outcome) {
        if self.file.is_some() {
            self.entries
                .insert((acc.to_owned(), head.to_owned()), (self.generation, outcome));
        }
    }

    /// The commits the cache would reuse merging `steps` from `acc` on,
    /// until its first miss.
    fn chain(&self, acc: &str, steps: &[Step]) -> Vec<String> {
        let mut acc = acc.to_owned();
        let mut out = Vec::new();
        for step in steps {
            match self.get(&acc, &step.head) {
                None => break,
                Some(Outcome::Merged { commit }) => {
                    out.push(commit.clone());
                    acc = commit.clone();
                }
                Some(_) => {}
            }
        }
        out
    }

    /// Drop entries not used by the last `keep_builds` builds and write the
    /// file (atomically: a temporary file renamed over it).
    async fn save(&mut self, keep_builds: u64) {
        let Some(file) = &self.file else {
            return;
        };
        let oldest = self.generation.saturating_sub(keep_builds.max(1)) + 1;
        self.entries.retain(|_, (generation, _)| *generation >= oldest);
        let mut entries: Vec<_> = self.entries.iter().collect();
        // Newest first, then a stable order, so the file is deterministic.
        entries.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(b.0)));
        entries.truncate(CACHE_MAX_ENTRIES);
        let mut text = format!("{CACHE_HEADER}\ngeneration\t{}\n", self.generation);
        for ((acc, head), (generation, outcome)) in entries {
            match outcome {
                Outcome::Merged { commit } => {
                    text.push_str(&format!("M\t{generation}\t{acc}\t{head}\t{commit}\n"));
                }
                Outcome::UpToDate => text.push_str(&format!("U\t{generation}\t{acc}\t{head}\n")),
                Outcome::Conflict { files, message } => {
                    text.push_str(&format!("C\t{generation}\t{acc}\t{head}\t{}", escape(message)));
                    for f in files {
                        text.push('\t');
                        text.push_str(&escape(f));
                    }
                    text.push('\n');
                }
            }
        }
        let tmp = file.with_extension("staging-cache.tmp");
        let written = match tokio::fs::write(&tmp, text).await {
            Ok(()) => tokio::fs::rename(&tmp, file).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::warn!(file = %file.display(), error = %e, "cannot write the staging cache");
        }
    }
}

type CacheEntries = HashMap<(String, String), (u64, Outcome)>;

/// Parse a cache file: its generation and entries; `None` if it is not one.
fn parse_cache(text: &str) -> Option<(u64, CacheEntries)> {
    let mut lines = text.lines();
    if lines.next()? != CACHE_HEADER {
        return None;
    }
    let generation = lines.next()?.strip_prefix("generation\t")?.parse().ok()?;
    let mut entries = HashMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        let (kind, used, acc, head) = match fields.as_slice() {
            [kind, used, acc, head, ..] => (*kind, used.parse::<u64>().ok()?, *acc, *head),
            _ => return None,
        };
        if !is_full_sha(acc) || !is_full_sha(head) {
            return None;
        }
        let outcome = match (kind, &fields[4..]) {
            ("M", [commit]) if is_full_sha(commit) => Outcome::Merged {
                commit: (*commit).to_owned(),
            },
            ("U", []) => Outcome::UpToDate,
            ("C", [message, files @ ..]) => Outcome::Conflict {
                message: unescape(message),
                files: files.iter().map(|f| unescape(f)).collect(),
            },
            _ => return None,
        };
        entries.insert((acc.to_owned(), head.to_owned()), (used, outcome));
    }
    Some((generation, entries))
}

/// Backslash-escape `\`, tab, newline and carriage return.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape`].
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_messages_are_one_line_and_bounded() {
        assert_eq!(merge_message("o/r#12", "Fix login"), "Merge o/r#12: Fix login");
        assert_eq!(
            merge_message("o/r#12", "  Fix\n\tlogin \r\n"),
            "Merge o/r#12: Fix login"
        );
        assert_eq!(merge_message("o/r#12", " \n "), "Merge o/r#12");
        let long = "é".repeat(500);
        let m = merge_message("o/r#1", &long);
        assert_eq!(m.chars().count(), "Merge o/r#1: ".len() + TITLE_MAX_CHARS);
    }

    #[tokio::test]
    async fn cache_round_trips_and_prunes() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        let mut entries = HashMap::new();
        entries.insert((a.clone(), b.clone()), (3, Outcome::Merged { commit: c.clone() }));
        entries.insert((c.clone(), b.clone()), (2, Outcome::UpToDate));
        entries.insert(
            (b.clone(), a.clone()),
            (
                3,
                Outcome::Conflict {
                    files: vec!["a b\tc.txt".into(), "x\\y\nz".into()],
                    message: "CONFLICT (content): one\nCONFLICT two".into(),
                },
            ),
        );
        let dir = std::env::temp_dir().join(format!("greenroom-staging-cache-test-{}", std::process::id()));
        let file = dir.join("x.staging-cache");
        assert!(std::fs::create_dir_all(&dir).is_ok());
        let mut cache = StepCache {
            file: Some(file.clone()),
            _guard: None,
            generation: 3,
            entries: entries.clone(),
        };
        cache.save(8).await;
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert_eq!(parse_cache(&text), Some((3, entries)));
        // Only what generation 3 used survives keep_builds = 1.
        cache.save(1).await;
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert_eq!(parse_cache(&text).map(|(_, e)| e.len()), Some(2));
        assert!(std::fs::remove_dir_all(&dir).is_ok());
        assert_eq!(parse_cache("something else\n"), None);
    }

    #[test]
    fn dated_tags_pruned_newest_kept() {
        let refs: Vec<String> = [
            "refs/tags/staging-20261120-0900",
            "refs/tags/staging-20261121-0900",
            "refs/tags/staging-20261122-0900",
            "refs/tags/staging-keep-me",
            "refs/tags/v1.0",
            "refs/tags/staging-20261123-1405",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let pruned = tags_to_prune(&refs, "staging-", "20261123-1405", "staging-20261123-1405", 2);
        assert_eq!(pruned, ["staging-20261121-0900", "staging-20261120-0900"]);
        let pruned = tags_to_prune(&refs, "staging-", "20261123-1405", "staging-20261123-1405", 1);
        assert_eq!(pruned.len(), 3);
        let none = tags_to_prune(&refs, "staging-", "20261123-1405", "staging-20261123-1405", 10);
        assert!(none.is_empty());
    }

    #[test]
    fn conflict_messages_pick_conflicts() {
        let fields: Vec<String> = [
            "",
            "1",
            "f",
            "Auto-merging",
            "Auto-merging f\n",
            "1",
            "f",
            "CONFLICT (contents)",
            "CONFLICT (content): Merge conflict in f\n",
            "",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(conflict_messages(&fields), "CONFLICT (content): Merge conflict in f");
    }
}
