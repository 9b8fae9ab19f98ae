//! Running the git CLI.
//!
//! Owns the one place where a `git` process is started: always
//! `Command::new("git")` with an argument vector, never a shell; a fixed,
//! non-interactive environment (`GIT_TERMINAL_PROMPT=0`, `LC_ALL=C`, no
//! inherited `GIT_DIR`-style variables that would redirect git to another
//! repository); stderr captured for error messages. It must never interpolate
//! user text into a shell command line, and never let git prompt on a terminal.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::error::{GitError, stderr_tail};

/// Environment variables that would make git operate on another repository
/// than the one we name explicitly (e.g. when greenroom runs inside a hook).
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

/// The result of a finished git process.
#[derive(Debug)]
pub(crate) struct GitOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// A git invocation being built.
#[derive(Debug)]
pub(crate) struct GitCmd {
    /// The repository as configured, for error messages.
    repo: String,
    /// `--git-dir=...` (for the bare mirror).
    git_dir: Option<PathBuf>,
    /// `-C ...` (for a work tree).
    cwd: Option<PathBuf>,
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
}

impl GitCmd {
    /// A git command about `repo` (used in error messages only).
    pub fn new(repo: &str) -> Self {
        GitCmd {
            repo: repo.to_owned(),
            git_dir: None,
            cwd: None,
            args: Vec::new(),
            stdin: None,
        }
    }

    /// Operate on the (bare) repository at `dir` via `--git-dir`.
    pub fn git_dir(mut self, dir: &Path) -> Self {
        self.git_dir = Some(dir.to_owned());
        self
    }

    /// Operate in the work tree at `dir` via `-C`.
    pub fn work_tree(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_owned());
        self
    }

    /// Append one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Append several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Feed `data` to the process's stdin.
    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }

    /// The arguments joined for display.
    fn display_args(&self) -> String {
        self.args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Run git; only failing to start it is an error (the exit status is the
    /// caller's to interpret).
    pub async fn output(self) -> Result<GitOutput, GitError> {
        let mut cmd = Command::new("git");
        if let Some(dir) = &self.git_dir {
            let mut flag = OsString::from("--git-dir=");
            flag.push(dir.as_os_str());
            cmd.arg(flag);
        }
        if let Some(dir) = &self.cwd {
            cmd.arg("-C").arg(dir);
        }
        cmd.args(&self.args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env("LANGUAGE", "C")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for var in REDIRECTING_ENV {
            cmd.env_remove(var);
        }
        let shown = self.display_args();
        tracing::debug!(repo = %self.repo, args = %shown, "git");
        let mut child = cmd
            .spawn()
            .map_err(|e| GitError::io("cannot run `git` (is git installed and on PATH?)", e))?;
        let writer = match (self.stdin, child.stdin.take()) {
            (Some(data), Some(mut pipe)) => Some(tokio::spawn(async move {
                // A write error means git exited early; its status and stderr
                // tell the real story, so it is ignored here.
                let _ = pipe.write_all(&data).await;
                let _ = pipe.shutdown().await;
            })),
            _ => None,
        };
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| GitError::io(format!("waiting for `git {shown}`"), e))?;
        if let Some(w) = writer {
            let _ = w.await;
        }
        Ok(GitOutput {
            status: out.status,
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Run git and turn a non-zero exit into [`GitError::Command`].
    pub async fn run(self) -> Result<GitOutput, GitError> {
        let repo = self.repo.clone();
        let args = self.display_args();
        let out = self.output().await?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(command_error(&repo, &args, &out))
        }
    }
}

/// Build the [`GitError::Command`] for a failed invocation.
pub(crate) fn command_error(repo: &str, args: &str, out: &GitOutput) -> GitError {
    GitError::Command {
        repo: repo.to_owned(),
        args: args.to_owned(),
        status: out.status.to_string(),
        stderr: stderr_tail(&out.stderr),
    }
}
