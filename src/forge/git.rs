//! The git forge: a plain git repository (local path or any URL git can
//! fetch) used as a forge, so the quick start and self-hosted git need no
//! hosted service.
//!
//! **Pending changes are refs.** Every ref matching the repository's
//! `pending_refs` pattern (`refs/pending/*` by default; one `*`) is an open
//! change. Its number is the leading digits of the part the `*` matched
//! (`refs/pending/12` → 12, `refs/heads/pr/12-fix` with `refs/heads/pr/*` →
//! 12); refs without a number are ignored, and of two refs with the same
//! number the first by name wins. A change is described by its head commit:
//!
//! | candidate field | from |
//! |---|---|
//! | `title` | the commit's subject |
//! | `author` | the local part of the author's email (`alice@example.com` → `alice`), else the author's name |
//! | `body` | the commit message's body (so `Depends-On:` lines work) |
//! | `labels` | a `Labels: a, b` line in the body (trailer) |
//! | `draft` | the subject starts with `WIP`, `[WIP]`, `Draft:` or `[Draft]` (any case) |
//! | `created_at` / `updated_at` | author date / committer date |
//! | `base_branch` | the branch asked for: a ref names no target, every change targets it |
//! | `web_url` | none |
//!
//! The refs are fetched into a bare mirror of the forge's own
//! (`DIR/mirrors/<url-slug>.git`, `DIR` being `STATE/forge-git` when built by
//! [`super::for_repo`] or [`super::Forge::for_component`]). `changed_files`
//! diffs a change's head against its merge base with the base branch — the
//! one registered with the repository, else the one last passed to
//! `open_prs` for it, else the remote's `HEAD` — both sides of renames
//! included.
//!
//! **Feedback goes to files**, since there is no forge to show it:
//! `DIR/<repo-slug>/statuses.jsonl` gets one JSON line per commit status
//! (`at`, `sha`, `context`, `state`, `target_url`, `description`),
//! `DIR/<repo-slug>/comments/<N>.md` holds change N's sticky comment
//! (rewritten in place; its id is N), and `DIR/<repo-slug>/comments.jsonl`
//! gets one JSON line per plain comment (`at`, `number`, `id`, `body`).
//! Permissions are unknown (`None`).
//!
//! git runs with argument vectors (never a shell), non-interactively, with a
//! timeout; credentials in a repository URL are blanked out of errors.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use greenroom_core::pending::Candidate;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{CommitStatus, ForgeError, Permission, STICKY_MARKER};

/// The pending refs pattern when none is configured.
pub const DEFAULT_PENDING_REFS: &str = "refs/pending/*";

/// Longest a git command (a fetch, mostly) may take.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the base branch is fetched to in the forge's mirror.
const BASE_REF: &str = "refs/greenroom-forge/base";

/// Environment variables that would point git at another repository.
const REDIRECTING_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Repo {
    url: String,
    pattern: String,
    base: Option<String>,
}

/// A plain git repository (or several) used as a forge. See the module docs.
#[derive(Debug, Clone)]
pub struct GitForge {
    dir: PathBuf,
    repos: BTreeMap<String, Repo>,
    /// The repository of ids not registered, if any.
    default: Option<Repo>,
    /// The base branch last passed to `open_prs`, per id.
    bases: Arc<std::sync::Mutex<BTreeMap<String, String>>>,
    /// Serializes fetches and feedback writes of this process.
    lock: Arc<tokio::sync::Mutex<()>>,
}

/// One pending ref.
#[derive(Debug, Clone)]
struct Pending {
    number: u64,
    sha: String,
    author_name: String,
    author_email: String,
    author_date: i64,
    commit_date: i64,
    subject: String,
    body: String,
}

impl GitForge {
    /// A git forge keeping its mirrors and feedback under `dir`
    /// (`STATE/forge-git`). Repository ids not registered with
    /// [`GitForge::with_repo`] go to the default repository
    /// ([`GitForge::with_default_repo`]) or, without one, are fetched from
    /// the id itself (a URL or path) with [`DEFAULT_PENDING_REFS`].
    pub fn new(dir: impl Into<PathBuf>) -> GitForge {
        GitForge {
            dir: dir.into(),
            repos: BTreeMap::new(),
            default: None,
            bases: Arc::new(std::sync::Mutex::new(BTreeMap::new())),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The repository every id not registered stands for (a forge built
    /// for one repository: the id is then only a name, used in candidates
    /// and for the feedback directory).
    pub fn with_default_repo(
        mut self,
        url: &str,
        pending_refs: &str,
        base: Option<String>,
    ) -> Result<GitForge, ForgeError> {
        self.default = Some(Self::checked(url, pending_refs, base)?);
        Ok(self)
    }

    fn checked(url: &str, pending_refs: &str, base: Option<String>) -> Result<Repo, ForgeError> {
        check_url(url)?;
        check_pattern(pending_refs)?;
        if let Some(b) = &base {
            greenroom_core::refname::check(b).map_err(|e| ForgeError::Config(format!("base branch `{b}` {e}")))?;
        }
        Ok(Repo {
            url: url.to_string(),
            pattern: pending_refs.to_string(),
            base,
        })
    }

    /// Registers repository `id` (what callers pass as `repo`): fetched
    /// from `url`, pending changes are refs matching `pending_refs`, and
    /// changed files are computed against `base` (else the remote's `HEAD`).
    pub fn with_repo(
        mut self,
        id: &str,
        url: &str,
        pending_refs: &str,
        base: Option<String>,
    ) -> Result<GitForge, ForgeError> {
        self.repos
            .insert(id.to_string(), Self::checked(url, pending_refs, base)?);
        Ok(self)
    }

    /// The directory holding `repo`'s feedback.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.dir.join(slug(repo))
    }

    /// The JSON-lines file commit statuses of `repo` are appended to.
    pub fn statuses_file(&self, repo: &str) -> PathBuf {
        self.repo_dir(repo).join("statuses.jsonl")
    }

    /// The file holding change `number`'s sticky comment.
    pub fn sticky_file(&self, repo: &str, number: u64) -> PathBuf {
        self.repo_dir(repo).join("comments").join(format!("{number}.md"))
    }

    /// The JSON-lines file plain comments on `repo`'s changes are appended to.
    pub fn comments_file(&self, repo: &str) -> PathBuf {
        self.repo_dir(repo).join("comments.jsonl")
    }

    fn repo(&self, id: &str) -> Result<Repo, ForgeError> {
        let mut repo = match self.repos.get(id).or(self.default.as_ref()) {
            Some(r) => r.clone(),
            None => {
                check_url(id)?;
                Repo {
                    url: id.to_string(),
                    pattern: DEFAULT_PENDING_REFS.to_string(),
                    base: None,
                }
            }
        };
        if repo.base.is_none() {
            repo.base = self.bases.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned();
        }
        Ok(repo)
    }

    /// Fetches the pending refs (and the base, if `with_base`) into the
    /// mirror; returns the mirror's path.
    async fn fetch(&self, repo: &Repo, with_base: bool) -> Result<PathBuf, ForgeError> {
        let mirror = self.dir.join("mirrors").join(format!("{}.git", slug(&repo.url)));
        if !mirror.join("HEAD").exists() {
            tokio::fs::create_dir_all(&mirror)
                .await
                .map_err(|e| ForgeError::Git(format!("cannot create {}: {e}", mirror.display())))?;
            git(
                None,
                &[
                    "init".into(),
                    "--bare".into(),
                    "--quiet".into(),
                    mirror.clone().into_os_string(),
                ],
            )
            .await?;
        }
        let mut args: Vec<OsString> = vec![
            "fetch".into(),
            "--prune".into(),
            "--no-tags".into(),
            "--quiet".into(),
            repo.url.clone().into(),
            format!("+{0}:{0}", repo.pattern).into(),
        ];
        if with_base {
            let src = match &repo.base {
                Some(b) => format!("refs/heads/{b}"),
                None => "HEAD".to_string(),
            };
            args.push(format!("+{src}:{BASE_REF}").into());
        }
        git(Some(&mirror), &args).await?;
        Ok(mirror)
    }

    /// The pending refs in the mirror, by number.
    async fn pending(&self, mirror: &Path, pattern: &str) -> Result<Vec<Pending>, ForgeError> {
        let (before, after) = pattern.split_once('*').unwrap_or((pattern, ""));
        let dir = match before.rfind('/') {
            Some(i) => &before[..=i],
            None => before,
        };
        let format = [
            "%(refname)",
            "%(objecttype)",
            "%(objectname)",
            "%(authorname)",
            "%(authoremail)",
            "%(authordate:unix)",
            "%(committerdate:unix)",
            "%(contents:subject)",
            "%(contents:body)",
        ]
        .join("%00")
            + "%00";
        let out = git(
            Some(mirror),
            &[
                "for-each-ref".into(),
                format!("--format={format}").into(),
                "--sort=refname".into(),
                dir.into(),
            ],
        )
        .await?;
        let text = String::from_utf8_lossy(&out);
        let fields: Vec<&str> = text.split('\0').collect();
        let mut by_number: BTreeMap<u64, Pending> = BTreeMap::new();
        for rec in fields.chunks_exact(9) {
            let refname = rec[0].trim_start_matches('\n');
            let Some(star) = refname
                .strip_prefix(before)
                .and_then(|r| r.strip_suffix(after))
                .filter(|s| !s.is_empty() && !s.contains('/'))
            else {
                continue;
            };
            let digits: String = star.chars().take_while(|c| c.is_ascii_digit()).collect();
            let Some(number) = digits.parse::<u64>().ok().filter(|n| *n > 0) else {
                tracing::debug!(refname, "pending ref without a number: ignored");
                continue;
            };
            if rec[1] != "commit" {
                tracing::debug!(refname, kind = rec[1], "pending ref not pointing at a commit: ignored");
                continue;
            }
            if by_number.contains_key(&number) {
                tracing::warn!(refname, number, "another pending ref has the same number: ignored");
                continue;
            }
            by_number.insert(
                number,
                Pending {
                    number,
                    sha: rec[2].to_string(),
                    author_name: rec[3].to_string(),
                    author_email: rec[4].trim_start_matches('<').trim_end_matches('>').to_string(),
                    author_date: rec[5].trim().parse().unwrap_or(0),
                    commit_date: rec[6].trim().parse().unwrap_or(0),
                    subject: rec[7].replace('\n', " ").trim().to_string(),
                    body: rec[8].trim_end().to_string(),
                },
            );
        }
        Ok(by_number.into_values().collect())
    }

    /// Pending changes of `repo`, all targeting `base_branch`.
    pub async fn open_prs(&self, repo: &str, base_branch: &str) -> Result<Vec<Candidate>, ForgeError> {
        let r = self.repo(repo)?;
        if greenroom_core::refname::check(base_branch).is_ok() {
            self.bases
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(repo.to_string(), base_branch.to_string());
        }
        let _guard = self.lock.lock().await;
        let mirror = self.fetch(&r, false).await?;
        let pending = self.pending(&mirror, &r.pattern).await?;
        Ok(pending
            .into_iter()
            .map(|p| Candidate {
                repo: repo.to_string(),
                number: p.number,
                author: author_login(&p.author_email, &p.author_name),
                draft: is_draft(&p.subject),
                labels: labels(&p.body),
                title: p.subject,
                base_branch: base_branch.to_string(),
                head_sha: p.sha,
                created_at: p.author_date.saturating_mul(1000),
                updated_at: p.commit_date.saturating_mul(1000),
                body: p.body,
                approved_by: None,
                excluded: None,
                web_url: None,
            })
            .collect())
    }

    /// Paths change `number` changes since its merge base with the base
    /// branch; both sides of renames.
    pub async fn changed_files(&self, repo: &str, number: u64) -> Result<Vec<String>, ForgeError> {
        let r = self.repo(repo)?;
        let _guard = self.lock.lock().await;
        let mirror = self.fetch(&r, true).await?;
        let pending = self.pending(&mirror, &r.pattern).await?;
        let Some(p) = pending.into_iter().find(|p| p.number == number) else {
            return Err(ForgeError::Git(format!(
                "no ref matching `{}` for change {number} in {}",
                r.pattern,
                redact_credentials(&r.url)
            )));
        };
        let out = git(
            Some(&mirror),
            &[
                "diff".into(),
                "--name-status".into(),
                "-z".into(),
                "-M".into(),
                "--no-ext-diff".into(),
                format!("{BASE_REF}...{}", p.sha).into(),
                "--".into(),
            ],
        )
        .await?;
        Ok(parse_name_status(&out))
    }

    /// Appends the status to `statuses.jsonl` (see the module docs).
    pub async fn set_status(&self, repo: &str, sha: &str, status: &CommitStatus) -> Result<(), ForgeError> {
        let line = json!({
            "at": now(),
            "sha": sha,
            "context": status.context,
            "state": status.state,
            "target_url": status.target_url,
            "description": status.description,
        });
        let _guard = self.lock.lock().await;
        append_line(&self.statuses_file(repo), &line.to_string()).await
    }

    /// Writes change `number`'s sticky comment to `comments/<number>.md`;
    /// its id is `number`.
    pub async fn upsert_sticky(&self, repo: &str, number: u64, body: &str) -> Result<u64, ForgeError> {
        let text = if body.contains(STICKY_MARKER) {
            body.to_string()
        } else {
            format!("{STICKY_MARKER}\n{body}")
        };
        let path = self.sticky_file(repo, number);
        let _guard = self.lock.lock().await;
        write_atomic(&path, text.as_bytes()).await?;
        Ok(number)
    }

    /// Appends a comment to `comments.jsonl`; its id is its line number.
    pub async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<u64, ForgeError> {
        let path = self.comments_file(repo);
        let _guard = self.lock.lock().await;
        let id = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(ForgeError::Git(format!("cannot read {}: {e}", path.display()))),
        };
        let line = json!({ "at": now(), "number": number, "id": id, "body": body });
        append_line(&path, &line.to_string()).await?;
        Ok(id)
    }

    /// A plain git repository has no permissions to tell.
    pub async fn permission(&self, _repo: &str, _login: &str) -> Result<Option<Permission>, ForgeError> {
        Ok(None)
    }
}

fn check_url(url: &str) -> Result<(), ForgeError> {
    if url.is_empty() || url.starts_with('-') || url.contains('\0') {
        return Err(ForgeError::Config(format!(
            "`{}` is not a git repository URL or path",
            redact_credentials(url)
        )));
    }
    Ok(())
}

fn check_pattern(pattern: &str) -> Result<(), ForgeError> {
    let ok = pattern.starts_with("refs/")
        && pattern.matches('*').count() == 1
        && greenroom_core::refname::check_pattern(pattern).is_ok()
        && !pattern.contains(['?', '[', ']']);
    if ok {
        Ok(())
    } else {
        Err(ForgeError::Config(format!(
            "`{pattern}` is not a ref pattern with one `*` standing for the change's number (e.g. \"refs/pending/*\")"
        )))
    }
}

/// `alice@example.com` -> `alice`; no email: the name.
fn author_login(email: &str, name: &str) -> String {
    let local = email.split('@').next().unwrap_or_default().trim();
    if !local.is_empty() {
        local.to_string()
    } else if !name.trim().is_empty() {
        name.trim().to_string()
    } else {
        "unknown".to_string()
    }
}

/// `WIP`, `[WIP]`, `Draft:`, `[Draft]` at the start of a subject.
fn is_draft(subject: &str) -> bool {
    let s = subject.trim_start().to_ascii_lowercase();
    let wip_word = s
        .strip_prefix("wip")
        .is_some_and(|rest| rest.chars().next().is_none_or(|c| !c.is_ascii_alphanumeric()));
    wip_word || s.starts_with("[wip]") || s.starts_with("draft:") || s.starts_with("[draft]")
}

/// Labels from `Labels: a, b` lines of a commit body.
fn labels(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in body.lines() {
        let t = line.trim();
        let Some(key) = t.get(..7) else { continue };
        if !key.eq_ignore_ascii_case("labels:") {
            continue;
        }
        for l in t[7..].split(',').map(str::trim).filter(|l| !l.is_empty()) {
            if !out.iter().any(|o| o == l) {
                out.push(l.to_string());
            }
        }
    }
    out
}

/// `git diff --name-status -z` output -> paths (both sides of renames and
/// copies), each once, in order.
fn parse_name_status(out: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(out);
    let mut parts = text.split('\0').filter(|s| !s.is_empty());
    let mut paths: Vec<String> = Vec::new();
    let mut push = |p: &str| {
        if !paths.iter().any(|x| x == p) {
            paths.push(p.to_string());
        }
    };
    while let Some(status) = parts.next() {
        let two = status.starts_with('R') || status.starts_with('C');
        if let Some(p) = parts.next() {
            push(p);
        }
        if two && let Some(p) = parts.next() {
            push(p);
        }
    }
    paths
}

/// A directory name for a repository id: readable, and unique (hash).
fn slug(repo: &str) -> String {
    let shown = redact_credentials(repo);
    let stripped = shown.split_once("://").map(|(_, r)| r).unwrap_or(&shown);
    let mut s = String::new();
    for c in stripped.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            s.push(c);
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_matches(|c| c == '-' || c == '.');
    let tail: String = s.chars().rev().take(48).collect::<Vec<_>>().into_iter().rev().collect();
    let hash = Sha256::digest(repo.as_bytes());
    let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    if tail.is_empty() {
        hex
    } else {
        format!("{}-{hex}", tail.trim_start_matches(['-', '.']))
    }
}

/// Blanks `user:password@` out of URLs in a text.
fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c == '/' || c.is_whitespace()).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    greenroom_core::time::format(ms)
}

async fn append_line(path: &Path, line: &str) -> Result<(), ForgeError> {
    let io = |e: std::io::Error| ForgeError::Git(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
    }
    let mut f = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .map_err(io)?;
    f.write_all(format!("{line}\n").as_bytes()).await.map_err(io)?;
    f.flush().await.map_err(io)
}

async fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ForgeError> {
    let io = |e: std::io::Error| ForgeError::Git(format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    tokio::fs::write(&tmp, data).await.map_err(io)?;
    tokio::fs::rename(&tmp, path).await.map_err(io)
}

/// Runs git (in the bare repository `git_dir`, if given) and returns its
/// stdout; a failure, a timeout or a non-zero exit is [`ForgeError::Git`].
async fn git(git_dir: Option<&Path>, args: &[OsString]) -> Result<Vec<u8>, ForgeError> {
    let mut cmd = Command::new("git");
    if let Some(dir) = git_dir {
        let mut flag = OsString::from("--git-dir=");
        flag.push(dir.as_os_str());
        cmd.arg(flag);
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env("LANGUAGE", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in REDIRECTING_ENV {
        cmd.env_remove(var);
    }
    let shown = redact_credentials(&args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
    tracing::debug!(args = %shown, "git forge");
    let child = cmd
        .spawn()
        .map_err(|e| ForgeError::Git(format!("cannot run `git` (is git installed and on PATH?): {e}")))?;
    let out = match tokio::time::timeout(GIT_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(ForgeError::Git(format!("`git {shown}`: {e}"))),
        Err(_) => {
            return Err(ForgeError::Git(format!(
                "`git {shown}` took longer than {}s",
                GIT_TIMEOUT.as_secs()
            )));
        }
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(ForgeError::Git(format!(
            "`git {shown}` failed ({}): {}",
            out.status,
            redact_credentials(&tail.join(" / "))
        )));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_by_subject() {
        for d in ["WIP: x", "wip", "WIP x", "[WIP] x", "Draft: x", "[draft] x"] {
            assert!(is_draft(d), "{d}");
        }
        for n in ["Wipe caches", "Drafting notes", "fix: WIP later"] {
            assert!(!is_draft(n), "{n}");
        }
    }

    #[test]
    fn labels_from_trailers() {
        assert_eq!(labels("text\n\nLabels: a, b ,a\nlabels: c"), vec!["a", "b", "c"]);
        assert!(labels("no labels here").is_empty());
    }

    #[test]
    fn authors_are_email_local_parts() {
        assert_eq!(author_login("alice@example.com", "Alice A"), "alice");
        assert_eq!(author_login("", "Alice A"), "Alice A");
        assert_eq!(author_login("", ""), "unknown");
    }

    #[test]
    fn name_status_keeps_both_sides_of_renames() {
        let out = b"M\0a.txt\0R100\0old/b.txt\0new/b.txt\0A\0c.txt\0D\0a.txt\0";
        assert_eq!(parse_name_status(out), vec!["a.txt", "old/b.txt", "new/b.txt", "c.txt"]);
    }

    #[test]
    fn credentials_never_shown() {
        assert_eq!(
            redact_credentials("fetch https://user:tok@host/x.git and ssh://git@h/y"),
            "fetch https://***@host/x.git and ssh://***@h/y"
        );
        let s = slug("https://user:tok@git.example.com/acme/api.git");
        assert!(!s.contains("tok"), "{s}");
        assert!(s.starts_with("git.example.com-acme-api.git-"), "{s}");
    }

    #[test]
    fn patterns_have_one_star() {
        assert!(check_pattern("refs/pending/*").is_ok());
        assert!(check_pattern("refs/heads/pr/*").is_ok());
        for bad in ["refs/pending", "pending/*", "refs/*/*", "refs/p/[0-9]*"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }
}
