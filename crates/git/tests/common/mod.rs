//! Test fixtures: real git repositories in temporary directories, built with
//! the git CLI and an isolated configuration. Never touches the network.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run git in `dir` with an isolated config; panic on failure; trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Run git in `dir` with an isolated config, returning the raw output.
pub fn git_output(dir: &Path, args: &[&str]) -> std::process::Output {
    git_command(dir, args).output().expect("run git")
}

pub fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE");
    cmd
}

/// Write `files` (path, content), commit everything with `msg`; returns the sha.
pub fn commit(dir: &Path, files: &[(&str, &str)], msg: &str) -> String {
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "--quiet", "--allow-empty", "-m", msg]);
    git(dir, &["rev-parse", "HEAD"])
}

/// The upstream repository used by most tests.
///
/// History:
/// ```text
/// c1 (v1.2.0 light, v1.9.0 annotated) -- c2 (main, v1.10.0 annotated)
///   \-- c3 (fix-login, v2.0.0-rc1 light)
///   \-- c4 (only refs/pull/7/head)
///   \-- c5 (only refs/merge-requests/3/head)
/// ```
pub struct Upstream {
    pub tmp: tempfile::TempDir,
    pub path: PathBuf,
    pub c1: String,
    pub c2: String,
    pub c3: String,
    pub c4: String,
    pub c5: String,
}

impl Upstream {
    pub fn new() -> Upstream {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("upstream");
        std::fs::create_dir(&path).unwrap();
        git(&path, &["init", "--quiet"]);
        let c1 = commit(&path, &[("README", "one\n")], "first");
        git(&path, &["tag", "v1.2.0"]);
        git(&path, &["tag", "-a", "-m", "release 1.9.0", "v1.9.0"]);
        let c2 = commit(&path, &[("README", "two\n"), ("src/lib.txt", "library\n")], "second");
        git(&path, &["tag", "-a", "-m", "release 1.10.0", "v1.10.0"]);

        git(&path, &["checkout", "--quiet", "-b", "fix-login", &c1]);
        let c3 = commit(&path, &[("login.txt", "fixed\n")], "fix login");
        git(&path, &["tag", "v2.0.0-rc1"]);

        git(&path, &["checkout", "--quiet", "--detach", &c1]);
        let c4 = commit(&path, &[("pr.txt", "pull request 7\n")], "pr 7");
        git(&path, &["update-ref", "refs/pull/7/head", &c4]);
        git(&path, &["checkout", "--quiet", "--detach", &c1]);
        let c5 = commit(&path, &[("mr.txt", "merge request 3\n")], "mr 3");
        git(&path, &["update-ref", "refs/merge-requests/3/head", &c5]);
        git(&path, &["checkout", "--quiet", "main"]);
        Upstream {
            tmp,
            path,
            c1,
            c2,
            c3,
            c4,
            c5,
        }
    }

    /// The upstream as a plain path string.
    pub fn path_url(&self) -> String {
        self.path.display().to_string()
    }

    /// The upstream as a `file://` URL.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// A fresh mirrors root inside this fixture's temp dir.
    pub fn mirrors(&self, sub: &str) -> greenroom_git::Mirrors {
        greenroom_git::Mirrors::new(self.tmp.path().join(sub))
    }
}

/// `git fsck` of a (bare) repository is clean.
pub fn assert_fsck_clean(repo: &Path) {
    let out = git_output(repo, &["fsck", "--full", "--strict", "--no-dangling"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fsck failed: {stdout}{stderr}");
    assert!(
        !stdout.contains("error") && !stderr.contains("error"),
        "fsck: {stdout}{stderr}"
    );
    assert!(
        !stdout.contains("missing") && !stderr.contains("missing"),
        "fsck: {stdout}{stderr}"
    );
}
