//! The `command` driver's primitive: a config author's shell command (deploy,
//! stop, health) run in the foreground.
//!
//! The command runs as `sh -c <command>` in its own process group, with the
//! given variables added to the inherited environment; its stdout and stderr
//! are appended, redacted, to a log. On timeout the whole group gets SIGTERM,
//! then SIGKILL 2 s later. Outside values (refs, PR data) must only ever reach
//! the command through `env`, never by being spliced into `command`.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;

use crate::DriverError;
use crate::logs::{LogSink, copy_lines};
use crate::procfs::read_stat;
use crate::redact::Redactor;

/// Time between SIGTERM and SIGKILL when a command times out.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// How long output is still copied after the command exited (background
/// processes it started may keep the pipe open).
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// A foreground shell command. Its `Debug` shows variable names only, never
/// values (they include secrets).
#[derive(Clone)]
pub struct CommandSpec {
    /// Shell command, run as `sh -c <command>`.
    pub command: String,
    /// Directory it runs in.
    pub cwd: PathBuf,
    /// Variables added to (and overriding) the inherited environment.
    pub env: Vec<(String, String)>,
    /// Values to redact from the log.
    pub secret_values: Vec<String>,
    /// Log file stdout and stderr are appended to (parent dirs are created).
    pub log_path: PathBuf,
    /// Limit after which the command's group is terminated.
    pub timeout: Duration,
}

impl std::fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSpec")
            .field("command", &self.command)
            .field("cwd", &self.cwd)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("secret_values", &self.secret_values.len())
            .field("log_path", &self.log_path)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How a foreground command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutcome {
    /// Exited with code 0 before the timeout.
    pub success: bool,
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Signal number, when it was killed by a signal (e.g. after a timeout).
    pub signal: Option<i32>,
    /// It hit the timeout and was killed.
    pub timed_out: bool,
    /// Wall time from start to end (including the kill on timeout).
    pub duration: Duration,
}

/// Kills a process group with SIGKILL when dropped while armed: a cancelled
/// future must not leave the command running.
struct GroupGuard {
    pgid: i32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed && self.pgid > 1 {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        }
    }
}

/// Result of [`run_shell`].
pub(crate) struct ShellRun {
    pub status: ExitStatus,
    pub timed_out: bool,
    pub duration: Duration,
}

/// Where a shell command's output goes.
pub(crate) enum Output<'a> {
    /// Appended to a log, redacted.
    Log { path: &'a Path, redactor: Redactor },
    /// Thrown away.
    Discard,
}

/// Runs `sh -c command` in its own process group with a timeout (see module doc).
pub(crate) async fn run_shell(
    command: &str,
    cwd: &Path,
    env: &[(String, String)],
    timeout: Duration,
    output: Output<'_>,
) -> Result<ShellRun, DriverError> {
    let started = Instant::now();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .process_group(0);
    let mut copier_done = None;
    let reader = match &output {
        Output::Log { path, .. } => {
            // Fail early and clearly if the log cannot be created.
            crate::logs::open_append(path).map_err(|source| DriverError::Io {
                context: format!("cannot open log file {}", path.display()),
                source,
            })?;
            let (reader, writer) = std::io::pipe().map_err(|source| DriverError::Io {
                context: "cannot create a pipe for the command's output".into(),
                source,
            })?;
            let writer2 = writer.try_clone().map_err(|source| DriverError::Io {
                context: "cannot duplicate the command's output pipe".into(),
                source,
            })?;
            cmd.stdout(writer).stderr(writer2);
            Some(reader)
        }
        Output::Discard => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            None
        }
    };
    let spawned = cmd.spawn();
    // Drop our copies of the pipe's write end so the reader sees end of file.
    drop(cmd);
    let mut child = spawned.map_err(|source| DriverError::Spawn {
        what: format!("`sh -c` in {} (does the directory exist?)", cwd.display()),
        source,
    })?;
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| DriverError::Supervisor {
            message: "the command's pid is unavailable right after spawning it".into(),
        })?;
    let mut guard = GroupGuard { pgid, armed: true };

    if let (Some(reader), Output::Log { path, redactor }) = (reader, output) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let path = path.to_path_buf();
        // A plain thread, not spawn_blocking: it may outlive this call (a
        // background child holding the pipe) and must not delay runtime shutdown.
        std::thread::Builder::new()
            .name("command-log".into())
            .spawn(move || {
                let mut sink = LogSink::open(&path);
                copy_lines(reader, &mut sink, &redactor);
                let _ = tx.send(());
            })
            .map_err(|source| DriverError::Io {
                context: "cannot start a thread to copy the command's output".into(),
                source,
            })?;
        copier_done = Some(rx);
    }

    let wait_err = |source| DriverError::Io {
        context: format!("waiting for command (pid {pgid})"),
        source,
    };
    let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => (status.map_err(wait_err)?, false),
        Err(_) => {
            tracing::debug!(pid = pgid, ?timeout, "command timed out; terminating its group");
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
            // The leader is not reaped until child.wait() below, so the group
            // id stays ours while we wait for it to exit.
            let deadline = Instant::now() + TERM_GRACE;
            let mut pause = Duration::from_millis(5);
            while Instant::now() < deadline {
                match read_stat(pgid) {
                    Some(stat) if !stat.is_dead() => {}
                    _ => break,
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            // Whatever is left of the group (the leader, or its children).
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            (child.wait().await.map_err(wait_err)?, true)
        }
    };
    // Reaped: the group id is no longer ours to signal. (After a normal exit,
    // background processes the command started on purpose live on.)
    guard.armed = false;
    drop(guard);
    if let Some(rx) = copier_done {
        let _ = tokio::time::timeout(DRAIN_DEADLINE, rx).await;
    }
    Ok(ShellRun {
        status,
        timed_out,
        duration: started.elapsed(),
    })
}

/// Runs a config author's command in the foreground: own process group,
/// stdout+stderr appended (redacted) to `log_path`, killed with its group on
/// timeout (SIGTERM, then SIGKILL after 2 s). A non-zero exit or a timeout is
/// an `Ok` outcome; `Err` means it could not be run at all.
pub async fn run_command(spec: &CommandSpec) -> Result<CommandOutcome, DriverError> {
    let run = run_shell(
        &spec.command,
        &spec.cwd,
        &spec.env,
        spec.timeout,
        Output::Log {
            path: &spec.log_path,
            redactor: Redactor::new(&spec.secret_values),
        },
    )
    .await?;
    let code = run.status.code();
    Ok(CommandOutcome {
        success: code == Some(0) && !run.timed_out,
        code,
        signal: run.status.signal(),
        timed_out: run.timed_out,
        duration: run.duration,
    })
}
