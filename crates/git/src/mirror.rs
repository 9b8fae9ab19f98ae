//! Bare mirrors: creation, incremental fetches, resolution, checkouts.
//!
//! Owns the directory `ROOT/<name>.git` (a bare repository whose remote
//! `origin` is the configured URL) and its lock file `ROOT/<name>.lock`.
//! Fetches are incremental and narrow: only the refs a request needs, into the
//! same ref names in the mirror (`refs/heads/*`, `refs/tags/*`, `refs/pull/*`,
//! `refs/merge-requests/*`). Every operation that writes the mirror (init,
//! fetch, clone) runs under the mirror's exclusive lock.
//!
//! It must never run a shell, never pass unvalidated user text where git could
//! read it as an option, never let git prompt, and never leave a partial
//! checkout behind.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use crate::cmd::GitCmd;
use crate::error::GitError;
use crate::lock::lock;
use crate::want::{Forge, Resolved, Want, check_ref_name, is_full_sha, is_sha_like};

/// File inside the bare mirror recording the URL `origin` was last set to, so
/// that [`Mirrors::open`] of an up-to-date mirror starts no git process.
const URL_MARKER: &str = "greenroom-url";

/// Refspecs fetching every branch, tag and pull/merge request head, used
/// when a commit is not in the mirror yet (so `sha:<head of PR 123>` works
/// even before PR 123 was ever asked for). A pattern that matches nothing
/// on a forge (`refs/merge-requests/*` on GitHub) fetches nothing.
const ALL_HEADS_AND_TAGS: [&str; 4] = [
    "+refs/heads/*:refs/heads/*",
    "+refs/tags/*:refs/tags/*",
    "+refs/pull/*/head:refs/pull/*/head",
    "+refs/merge-requests/*/head:refs/merge-requests/*/head",
];

/// The directory holding all mirrors (e.g. `STATE/mirrors`).
#[derive(Debug, Clone)]
pub struct Mirrors {
    root: PathBuf,
}

impl Mirrors {
    /// Mirrors under `root`; nothing is created until [`Mirrors::open`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Mirrors { root: root.into() }
    }

    /// The directory holding the mirrors.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Ensure a bare mirror of `url` exists at `ROOT/<name>.git` and return it.
    ///
    /// Creates it (`git init --bare`, remote `origin` = `url`) if missing, and
    /// updates `origin`'s URL if it was opened with another URL before. Fetches
    /// nothing. `name` must be a safe file name component
    /// (`[A-Za-z0-9._-]`, not starting with `.` or `-`). When the mirror is
    /// already set up for `url`, no git process is started.
    pub async fn open(&self, name: &str, url: &str) -> Result<Mirror, GitError> {
        check_mirror_name(name)?;
        check_url(url)?;
        let mirror = Mirror {
            path: self.root.join(format!("{name}.git")),
            lock_path: self.root.join(format!("{name}.lock")),
            url: url.to_owned(),
        };
        if mirror.is_set_up().await {
            return Ok(mirror);
        }
        tokio::fs::create_dir_all(&self.root)
            .await
            .map_err(|e| GitError::io(format!("creating {}", self.root.display()), e))?;
        let _guard = lock(&mirror.lock_path).await?;
        // Another task or process may have set it up while we waited.
        if !mirror.is_set_up().await {
            mirror.set_up().await?;
        }
        Ok(mirror)
    }
}

/// A bare mirror of one repository. Cheap to clone; clones share the lock
/// file, not an in-memory lock, so they coordinate like separate processes.
#[derive(Debug, Clone)]
pub struct Mirror {
    path: PathBuf,
    lock_path: PathBuf,
    url: String,
}

/// Outcome of looking one name up in the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    Found(String),
    Missing,
    Ambiguous,
}

/// One want, prepared for resolution.
#[derive(Debug)]
enum Item {
    /// A ref to fetch and read: branch, tag, pull request, or a tag pattern
    /// once the matching tag is known (`refname` is empty until then).
    Ref {
        refname: String,
        /// What was asked, for "does not exist" messages.
        missing: String,
        /// For tag patterns: the compiled glob.
        pattern: Option<GlobMatcher>,
    },
    /// A commit SHA (lowercased).
    Commit { hex: String },
}

impl Item {
    /// The names given to `git cat-file --batch-check` for this item.
    ///
    /// A commit is looked up twice: `HEX^{commit}` considers only commits
    /// (so a prefix shared with a blob is not ambiguous) but reports an
    /// ambiguous prefix as missing; plain `HEX` tells the two apart.
    fn lookup_inputs(&self) -> Vec<String> {
        match self {
            Item::Ref { refname, .. } => vec![format!("{refname}^{{commit}}")],
            Item::Commit { hex } => vec![format!("{hex}^{{commit}}"), hex.clone()],
        }
    }
}

impl Mirror {
    /// The mirror's directory (a bare repository).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The repository URL (or path) as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn git(&self) -> GitCmd {
        GitCmd::new(&self.url).git_dir(&self.path)
    }

    async fn is_set_up(&self) -> bool {
        if tokio::fs::metadata(self.path.join("HEAD")).await.is_err() {
            return false;
        }
        match tokio::fs::read_to_string(self.path.join(URL_MARKER)).await {
            Ok(recorded) => recorded == self.url,
            Err(_) => false,
        }
    }

    /// Create the bare repository if needed and point `origin` at the URL.
    /// Caller holds the lock.
    async fn set_up(&self) -> Result<(), GitError> {
        if tokio::fs::metadata(self.path.join("HEAD")).await.is_err() {
            GitCmd::new(&self.url)
                .args(["init", "--quiet", "--bare", "--"])
                .arg(&self.path)
                .run()
                .await?;
            // Automatic gc/maintenance runs in the foreground, inside our lock,
            // instead of detaching and racing the next writer.
            for (key, value) in [("gc.autoDetach", "false"), ("maintenance.autoDetach", "false")] {
                self.git()
                    .args(["config", "--end-of-options", key, value])
                    .run()
                    .await?;
            }
        } else {
            tracing::info!(mirror = %self.path.display(), url = %self.url, "updating the mirror's origin URL");
        }
        self.git()
            .args(["config", "--end-of-options", "remote.origin.url"])
            .arg(&self.url)
            .run()
            .await?;
        tokio::fs::write(self.path.join(URL_MARKER), &self.url)
            .await
            .map_err(|e| GitError::io(format!("writing {}", self.path.join(URL_MARKER).display()), e))
    }

    /// Resolve one want; see [`Mirror::resolve_all`].
    ///
    /// Branches, tags, tag patterns and pull requests always consult the
    /// remote (they move) and fetch just that ref into the mirror. A commit
    /// already in the mirror needs no network at all; otherwise every branch
    /// and tag is fetched (incrementally) and the commit looked up again.
    pub async fn resolve(&self, want: &Want) -> Result<Resolved, GitError> {
        let mut all = self.resolve_all(std::slice::from_ref(want)).await?;
        all.pop()
            .ok_or_else(|| GitError::io("resolving", io::Error::other("no result for one want (bug)")))
    }

    /// Resolve several wants under one lock acquisition, with as few git
    /// processes as possible; results are in the order of `wants`.
    ///
    /// With a warm mirror: one `git fetch` with one refspec per ref wanted,
    /// plus one `git cat-file --batch-check` reading every answer. Tag
    /// patterns add one `git ls-remote --tags`. Commits missing from the
    /// mirror add one fetch of all branches and tags and a second lookup.
    pub async fn resolve_all(&self, wants: &[Want]) -> Result<Vec<Resolved>, GitError> {
        if wants.is_empty() {
            return Ok(Vec::new());
        }
        let mut items = wants.iter().map(|w| self.prepare(w)).collect::<Result<Vec<_>, _>>()?;
        let _guard = lock(&self.lock_path).await?;

        // 1. Tag patterns: pick the newest matching tag on the remote.
        if items.iter().any(|i| matches!(i, Item::Ref { pattern: Some(_), .. })) {
            let tags = self.remote_tags().await?;
            for item in &mut items {
                if let Item::Ref {
                    refname,
                    missing,
                    pattern: Some(matcher),
                } = item
                {
                    let newest = tags
                        .iter()
                        .filter(|t| matcher.is_match(t.as_str()))
                        .max_by(|a, b| crate::compare_versions(a, b));
                    match newest {
                        Some(tag) => *refname = format!("refs/tags/{tag}"),
                        None => return Err(GitError::not_found(&self.url, missing.clone())),
                    }
                }
            }
        }

        // 2. One fetch for every ref wanted.
        let mut seen = HashSet::new();
        let refnames: Vec<&str> = items
            .iter()
            .filter_map(|i| match i {
                Item::Ref { refname, .. } => Some(refname.as_str()),
                Item::Commit { .. } => None,
            })
            .filter(|r| seen.insert(*r))
            .collect();
        if !refnames.is_empty() {
            self.fetch_refs(&items, &refnames).await?;
        }

        // 3. One lookup for everything.
        let mut found = self.lookup_items(items.iter()).await?;

        // 4. Commits not in the mirror: fetch all branches and tags, look again.
        let missing: Vec<usize> = (0..items.len())
            .filter(|&i| matches!(items[i], Item::Commit { .. }) && found[i] == Lookup::Missing)
            .collect();
        if !missing.is_empty() {
            self.fetch(&ALL_HEADS_AND_TAGS).await?;
            let again = self.lookup_items(missing.iter().map(|&i| &items[i])).await?;
            for (&i, answer) in missing.iter().zip(again) {
                found[i] = answer;
            }
        }

        // 5. Answers, or the first problem in the order asked.
        items
            .iter()
            .zip(found)
            .map(|(item, answer)| self.answer(item, answer))
            .collect()
    }

    fn answer(&self, item: &Item, answer: Lookup) -> Result<Resolved, GitError> {
        match (item, answer) {
            (Item::Ref { refname, .. }, Lookup::Found(commit)) => Ok(Resolved {
                commit,
                reference: refname.clone(),
            }),
            (Item::Ref { refname, .. }, _) => Err(GitError::not_found(
                &self.url,
                format!("ref `{refname}` does not point to a commit"),
            )),
            (Item::Commit { hex }, Lookup::Found(commit)) if commit.starts_with(hex.as_str()) => Ok(Resolved {
                reference: commit.clone(),
                commit,
            }),
            (Item::Commit { hex }, Lookup::Found(_)) => Err(GitError::Ambiguous {
                repo: self.url.clone(),
                what: format!("commit `{hex}` is ambiguous: a branch or tag of the mirror has that name"),
            }),
            (Item::Commit { hex }, Lookup::Ambiguous) => Err(GitError::Ambiguous {
                repo: self.url.clone(),
                what: format!("commit prefix `{hex}` matches several commits"),
            }),
            (Item::Commit { hex }, Lookup::Missing) => {
                Err(GitError::not_found(&self.url, format!("commit `{hex}` not found")))
            }
        }
    }

    /// Validate a want and turn it into an [`Item`].
    fn prepare(&self, want: &Want) -> Result<Item, GitError> {
        let invalid = |what: String| GitError::not_found(&self.url, what);
        Ok(match want {
            Want::Branch(name) => {
                check_ref_name(name).map_err(|why| invalid(format!("branch name `{name}` is not valid ({why})")))?;
                Item::Ref {
                    refname: format!("refs/heads/{name}"),
                    missing: format!("branch `{name}` does not exist"),
                    pattern: None,
                }
            }
            Want::Ref(name) => {
                if !name.starts_with("refs/") {
                    return Err(invalid(format!("`{name}` is not a full ref name (refs/...)")));
                }
                check_ref_name(name).map_err(|why| invalid(format!("ref name `{name}` is not valid ({why})")))?;
                Item::Ref {
                    refname: name.clone(),
                    missing: format!("`{name}` does not exist"),
                    pattern: None,
                }
            }
            Want::Tag(name) => {
                check_ref_name(name).map_err(|why| invalid(format!("tag name `{name}` is not valid ({why})")))?;
                Item::Ref {
                    refname: format!("refs/tags/{name}"),
                    missing: format!("tag `{name}` does not exist"),
                    pattern: None,
                }
            }
            Want::TagPattern(pattern) => {
                let matcher = GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| invalid(format!("tag pattern `{pattern}` is not a valid glob ({e})")))?
                    .compile_matcher();
                Item::Ref {
                    refname: String::new(),
                    missing: format!("no tag matches `{pattern}`"),
                    pattern: Some(matcher),
                }
            }
            Want::PullRequest { number, forge } => {
                let refname = forge.pull_request_ref(*number);
                let missing = match forge {
                    Forge::Github => {
                        format!("pull request #{number} does not exist (looked for {refname})")
                    }
                    Forge::Gitlab => {
                        format!("merge request !{number} does not exist (looked for {refname})")
                    }
                };
                Item::Ref {
                    refname,
                    missing,
                    pattern: None,
                }
            }
            Want::Commit(hex) => {
                if !is_sha_like(hex) {
                    return Err(invalid(format!(
                        "commit `{hex}` is not a SHA (7 to 40 hexadecimal digits)"
                    )));
                }
                Item::Commit {
                    hex: hex.to_ascii_lowercase(),
                }
            }
        })
    }

    /// Tag names on the remote (`git ls-remote --tags --refs origin`).
    async fn remote_tags(&self) -> Result<Vec<String>, GitError> {
        let out = self
            .git()
            .args(["ls-remote", "--tags", "--refs", "--end-of-options", "origin"])
            .run()
            .await?;
        Ok(ls_remote_refs(&out.stdout)
            .into_iter()
            .filter_map(|r| r.strip_prefix("refs/tags/").map(str::to_owned))
            .collect())
    }

    /// Fetch `refnames` into the same names in the mirror. When the remote
    /// lacks one, report the first such want (in the order asked) as
    /// [`GitError::NotFound`].
    async fn fetch_refs(&self, items: &[Item], refnames: &[&str]) -> Result<(), GitError> {
        let refspecs: Vec<String> = refnames.iter().map(|r| format!("+{r}:{r}")).collect();
        let Err(err) = self.fetch(&refspecs).await else {
            return Ok(());
        };
        let GitError::Command { stderr, .. } = &err else {
            return Err(err);
        };
        if !stderr.contains("couldn't find remote ref") {
            return Err(err);
        }
        // Which ones are missing? Ask the remote.
        let out = self
            .git()
            .args(["ls-remote", "--end-of-options", "origin"])
            .args(refnames)
            .run()
            .await?;
        let present: HashSet<String> = ls_remote_refs(&out.stdout).into_iter().collect();
        for item in items {
            if let Item::Ref { refname, missing, .. } = item
                && !present.contains(refname)
            {
                return Err(GitError::not_found(&self.url, missing.clone()));
            }
        }
        Err(err)
    }

    /// `git fetch` from origin with explicit refspecs, no tag following.
    async fn fetch<S: AsRef<str>>(&self, refspecs: &[S]) -> Result<(), GitError> {
        self.git()
            .args([
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--no-show-forced-updates",
                "--recurse-submodules=no",
                "--end-of-options",
                "origin",
            ])
            .args(refspecs.iter().map(AsRef::as_ref))
            .run()
            .await?;
        Ok(())
    }

    /// Look items up in the mirror with one `git cat-file --batch-check`.
    async fn lookup_items<'a>(&self, items: impl Iterator<Item = &'a Item>) -> Result<Vec<Lookup>, GitError> {
        let per_item: Vec<Vec<String>> = items.map(Item::lookup_inputs).collect();
        let inputs: Vec<String> = per_item.iter().flatten().cloned().collect();
        let mut answers = self.lookup(&inputs).await?.into_iter();
        let mut out = Vec::with_capacity(per_item.len());
        for names in &per_item {
            let mine: Vec<Lookup> = answers.by_ref().take(names.len()).collect();
            out.push(match mine.as_slice() {
                [Lookup::Found(sha), ..] => Lookup::Found(sha.clone()),
                [_, Lookup::Ambiguous] => Lookup::Ambiguous,
                _ => Lookup::Missing,
            });
        }
        Ok(out)
    }

    /// Look names up in the mirror with one `git cat-file --batch-check`.
    async fn lookup(&self, inputs: &[String]) -> Result<Vec<Lookup>, GitError> {
        let mut stdin = inputs.join("\n").into_bytes();
        stdin.push(b'\n');
        let out = self
            .git()
            .args(["cat-file", "--batch-check=%(objectname) %(objecttype)"])
            .stdin(stdin)
            .run()
            .await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let answers: Vec<Lookup> = text
            .lines()
            .map(|line| match line.rsplit_once(' ') {
                Some((sha, "commit")) if is_full_sha(sha) => Lookup::Found(sha.to_owned()),
                Some((_, "ambiguous")) => Lookup::Ambiguous,
                _ => Lookup::Missing,
            })
            .collect();
        if answers.len() != inputs.len() {
            return Err(GitError::Command {
                repo: self.url.clone(),
                args: "cat-file --batch-check".into(),
                status: "unexpected output".into(),
                stderr: format!(
                    "expected {} lines, got {}: {}",
                    inputs.len(),
                    answers.len(),
                    crate::error::stderr_tail(&text)
                ),
            });
        }
        Ok(answers)
    }

    /// Make `dest` (which must not exist) a clean checkout of `commit` with a
    /// detached HEAD: a real git work tree cloned from the mirror (its
    /// `origin` is the mirror). Works for any commit in the mirror, including
    /// commits reachable only from pull request refs. On failure `dest` is
    /// removed.
    pub async fn checkout(&self, commit: &str, dest: &Path) -> Result<(), GitError> {
        if !is_sha_like(commit) {
            return Err(GitError::not_found(
                &self.url,
                format!("commit `{commit}` is not a SHA (7 to 40 hexadecimal digits)"),
            ));
        }
        if tokio::fs::symlink_metadata(dest).await.is_ok() {
            return Err(GitError::io(
                format!("checking out {commit} into {}", dest.display()),
                io::Error::new(io::ErrorKind::AlreadyExists, "the destination already exists"),
            ));
        }
        let result = self.clone_and_checkout(commit, dest).await;
        if result.is_err()
            && tokio::fs::symlink_metadata(dest).await.is_ok()
            && let Err(e) = tokio::fs::remove_dir_all(dest).await
        {
            tracing::warn!(dest = %dest.display(), error = %e, "cannot remove a failed checkout");
        }
        result
    }

    async fn clone_and_checkout(&self, commit: &str, dest: &Path) -> Result<(), GitError> {
        {
            let _guard = lock(&self.lock_path).await?;
            // A plain path as the source makes a local clone: objects are
            // hard-linked (copied across file systems) wholesale, so commits
            // reachable only from refs/pull/* are there too. `--local` is not
            // passed because it turns the cross-device fallback into an error.
            GitCmd::new(&self.url)
                .args(["clone", "--quiet", "--no-checkout", "--"])
                .arg(&self.path)
                .arg(dest)
                .run()
                .await?;
        }
        GitCmd::new(&self.url)
            .work_tree(dest)
            .args(["checkout", "--quiet", "--detach", "--end-of-options"])
            .arg(format!("{commit}^{{commit}}"))
            .arg("--")
            .run()
            .await
            .map_err(|e| match e {
                GitError::Command { stderr, .. }
                    if stderr.contains("reference is not a tree")
                        || stderr.contains("invalid reference")
                        || stderr.contains("unknown revision") =>
                {
                    GitError::not_found(&self.url, format!("commit `{commit}` not found"))
                }
                other => other,
            })?;
        Ok(())
    }

    /// Paths changed between commits `from` and `to` (`git diff --name-only`,
    /// renames reported as a deletion and an addition so both paths appear).
    /// Both commits must be in the mirror.
    pub async fn changed_files(&self, from: &str, to: &str) -> Result<Vec<String>, GitError> {
        for sha in [from, to] {
            if !is_sha_like(sha) {
                return Err(GitError::not_found(
                    &self.url,
                    format!("commit `{sha}` is not a SHA (7 to 40 hexadecimal digits)"),
                ));
            }
        }
        let out = self
            .git()
            .args([
                "diff",
                "--name-only",
                "-z",
                "--no-renames",
                "--no-ext-diff",
                "--no-textconv",
                "--end-of-options",
                from,
                to,
                "--",
            ])
            .run()
            .await?;
        Ok(out
            .stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }
}

/// The ref names of `git ls-remote` output (`SHA<TAB>REF` lines).
fn ls_remote_refs(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, r)| r.to_owned()))
        .collect()
}

fn invalid_input(context: String, why: &str) -> GitError {
    GitError::io(context, io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()))
}

/// Mirror names become file names: `[A-Za-z0-9._-]`, no leading `.` or `-`.
fn check_mirror_name(name: &str) -> Result<(), GitError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(invalid_input(
            format!("opening mirror `{name}`"),
            "a mirror name may contain only letters, digits, `-`, `_` and `.`, and must not start with `.` or `-`",
        ))
    }
}

/// URLs go to git as data; refuse ones git could take for an option (a
/// leading `-`, e.g. `-oProxyCommand=...` for ssh) or that break config lines.
fn check_url(url: &str) -> Result<(), GitError> {
    if url.is_empty() || url.starts_with('-') || url.chars().any(|c| c.is_control()) {
        Err(invalid_input(
            format!("opening mirror of `{}`", url.escape_debug()),
            "a repository URL must be non-empty, must not start with `-` and must not contain control characters",
        ))
    } else {
        Ok(())
    }
}
