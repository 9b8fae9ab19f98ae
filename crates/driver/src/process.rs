//! The `process` driver: components as detached, supervised local processes.
//!
//! `start` runs `SUPERVISOR --foreground --report ... -- <command>` through
//! a double fork (the supervisor is re-parented to init and is a session
//! and process-group leader from before its exec, so it outlives the CLI)
//! and reads the pid and start time it reports on a pipe. A [`ProcessHandle`] is that (pid, start time) pair plus the log and
//! status file paths; it can be stored and used by a later CLI invocation.
//!
//! This module must never signal a pid whose start time differs from the
//! handle's (a reused pid belongs to someone else), never reap processes (they
//! are not our children), and never pass secret values on a command line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::DriverError;
use crate::logs::open_append;
use crate::procfs::{live_group_members, read_stat};
use crate::supervisor::{DetachReport, REDACT_ENV, StatusFile, default_status_path};

/// How long `start` waits for the supervisor to report its identity.
const DETACH_TIMEOUT: Duration = Duration::from_secs(15);

/// How long `stop` waits for the group to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// What to run for one component. Its `Debug` shows variable names only,
/// never values (they include secrets).
#[derive(Clone)]
pub struct StartSpec {
    /// Environment name (for messages).
    pub environment: String,
    /// Component name (for messages).
    pub component: String,
    /// Shell command, run as `sh -c <command>`.
    pub command: String,
    /// Directory the command runs in (the built artifact dir).
    pub cwd: PathBuf,
    /// The component's variables, added to (and overriding) the inherited environment.
    pub env: Vec<(String, String)>,
    /// Values to redact from the log; passed to the supervisor through the
    /// environment, never argv.
    pub secret_values: Vec<String>,
    /// Log file (appended to; parent directories are created).
    pub log_path: PathBuf,
    /// Where the supervisor's identity is written as soon as it runs, before
    /// `start` returns: a caller killed in between (nothing recorded) still
    /// finds and stops it with [`ProcessDriver::stop_leftover`]. A stable
    /// path per place and component (not per run) is what makes that work.
    pub pid_file: Option<PathBuf>,
}

impl std::fmt::Debug for StartSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartSpec")
            .field("environment", &self.environment)
            .field("component", &self.component)
            .field("command", &self.command)
            .field("cwd", &self.cwd)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("secret_values", &self.secret_values.len())
            .field("log_path", &self.log_path)
            .field("pid_file", &self.pid_file)
            .finish()
    }
}

/// Identity of a started component: the supervisor's pid and start time
/// (together they name one process, even across pid reuse), plus its files.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessHandle {
    /// Pid of the foreground supervisor; also its session and process group id.
    pub pid: i32,
    /// Start time of that pid (field 22 of `/proc/PID/stat`).
    pub start_time: u64,
    /// Absolute path of the log file.
    pub log_path: PathBuf,
    /// Absolute path of the status file written when the command exits.
    pub status_path: PathBuf,
}

/// What a handle's process is doing now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcState {
    /// The supervisor (hence the component) is running.
    Running,
    /// The command exited; from the status file. Both `None` when the command
    /// could not even be started (the reason is in the log).
    Exited {
        /// Exit code, when it exited normally.
        code: Option<i32>,
        /// Signal number, when it was killed by a signal.
        signal: Option<i32>,
    },
    /// Not running and no status recorded (stopped by signal, or unknown).
    Gone,
}

/// Runs components as detached supervised processes.
#[derive(Clone, Debug)]
pub struct ProcessDriver {
    supervisor: Vec<OsString>,
}

/// Whether a handle's pid still names our supervisor.
enum Identity {
    /// Same pid and start time (possibly a zombie).
    Ours,
    /// No process with that pid.
    Gone,
    /// Another process now has that pid.
    Reused,
}

fn identity(handle: &ProcessHandle) -> Identity {
    match read_stat(handle.pid) {
        Some(stat) if stat.start_time == handle.start_time => Identity::Ours,
        Some(_) => Identity::Reused,
        None => Identity::Gone,
    }
}

/// Sends `signal` to process group `pgid`; a missing group is not an error.
fn signal_group(pgid: i32, signal: Signal) -> Result<(), DriverError> {
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(err) => Err(DriverError::Io {
            context: format!("cannot send {signal} to process group {pgid}"),
            source: std::io::Error::from(err),
        }),
    }
}

/// Polls (with a short backoff) until group `pgid` has no live member or the
/// deadline passes; returns whether it is empty. A poll is `kill(-pgid, 0)`
/// (no process at all left in the group, zombies included, ends the wait),
/// then, while the group lingers, a scan for live members: zombies that
/// their reaper has not collected yet count as gone.
async fn wait_group_empty(pgid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(2);
    loop {
        if matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH)) || live_group_members(pgid).is_empty() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// `pre_exec` hook of [`ProcessDriver::start`]: forks once more and lets
/// the intermediate exit, so the process that goes on to exec the
/// supervisor is re-parented to init (which reaps it) and is never the
/// caller's child; it becomes a session and process-group leader first.
fn detach_from_caller() -> std::io::Result<()> {
    // SAFETY: called in the freshly forked, single-threaded child before
    // exec. fork, setsid and _exit are async-signal-safe, and nothing here
    // allocates or takes a lock.
    match unsafe { nix::libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            // SAFETY: as above.
            if unsafe { nix::libc::setsid() } == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        }
        // SAFETY: as above; `_exit` skips atexit handlers and buffers,
        // which belong to the parent.
        _ => unsafe { nix::libc::_exit(0) },
    }
}

/// Removes `path`; one that is already missing is fine.
fn remove_if_present(path: &Path, what: &str) -> Result<(), DriverError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DriverError::Io {
            context: format!("cannot remove the {what} {}", path.display()),
            source,
        }),
    }
}

fn absolute(path: &Path, what: &str) -> Result<PathBuf, DriverError> {
    std::path::absolute(path).map_err(|source| DriverError::Io {
        context: format!("cannot make the {what} path {} absolute", path.display()),
        source,
    })
}

impl ProcessDriver {
    /// `supervisor` is the program and leading arguments that run
    /// [`crate::supervise_main`], e.g. `[current_exe, "__supervise"]`.
    pub fn new(supervisor: Vec<OsString>) -> Self {
        ProcessDriver { supervisor }
    }

    /// Starts the component detached and returns its handle once the
    /// supervisor is running as a session leader (the command itself may
    /// still be starting: use a health check).
    pub async fn start(&self, spec: &StartSpec) -> Result<ProcessHandle, DriverError> {
        let who = format!("component {} of environment {}", spec.component, spec.environment);
        let Some((program, leading)) = self.supervisor.split_first() else {
            return Err(DriverError::Supervisor {
                message: format!("no supervisor program configured to start {who}"),
            });
        };
        let log_path = absolute(&spec.log_path, "log")?;
        let status_path = default_status_path(&log_path);
        let cwd = absolute(&spec.cwd, "working directory")?;
        if !cwd.is_dir() {
            return Err(DriverError::Spawn {
                what: format!("{who}: working directory {} (was it built?)", cwd.display()),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
            });
        }
        // Create the log now: errors surface here, and followers find it at once.
        open_append(&log_path).map_err(|source| DriverError::Io {
            context: format!(
                "cannot create log file {} for {who}; check the state directory's permissions",
                log_path.display()
            ),
            source,
        })?;
        // A status left by a previous run would make the new one look exited.
        remove_if_present(&status_path, "old status file")?;

        let mut cmd = Command::new(program);
        cmd.args(leading)
            .arg("--foreground")
            .arg("--report")
            .arg("--log")
            .arg(&log_path)
            .arg("--status")
            .arg(&status_path)
            .arg("--cwd")
            .arg(&cwd);
        if let Some(p) = &spec.pid_file {
            let p = absolute(p, "pid file")?;
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(|source| DriverError::Io {
                    context: format!("cannot create {} for the pid file of {who}", dir.display()),
                    source,
                })?;
            }
            cmd.arg("--pidfile").arg(p);
        }
        cmd.arg("--").arg(&spec.command);
        cmd.envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut names = Vec::new();
        for (i, value) in spec.secret_values.iter().enumerate() {
            let name = format!("{REDACT_ENV}_{i}");
            cmd.env(&name, value);
            names.push(name);
        }
        cmd.env(REDACT_ENV, names.join(","));
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            // Do not pin the caller's directory for the component's lifetime.
            .current_dir("/");
        // SAFETY: `detach_from_caller` runs between fork and exec and calls
        // only async-signal-safe functions (fork, setsid, _exit).
        unsafe {
            cmd.pre_exec(detach_from_caller);
        }

        // `spawn` returns once the supervisor has been executed (or could
        // not be): the intermediate process exits at once, and the
        // supervisor, a session leader from before its exec, is not ours.
        let mut intermediate = cmd.spawn().map_err(|source| DriverError::Spawn {
            what: format!("supervisor {:?} for {who}", program),
            source,
        })?;
        let (Some(stdout), Some(mut stderr)) = (intermediate.stdout.take(), intermediate.stderr.take()) else {
            return Err(DriverError::Supervisor {
                message: format!("no pipe to the supervisor of {who}"),
            });
        };
        let told = async {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).await;
            // It exited right after forking: reap it, not leave a zombie.
            let _ = intermediate.wait().await;
            (read, line)
        };
        let (read, line) = match tokio::time::timeout(DETACH_TIMEOUT, told).await {
            Ok(r) => r,
            Err(_) => {
                return Err(DriverError::Supervisor {
                    message: format!(
                        "the supervisor of {who} did not report within {DETACH_TIMEOUT:?}; the component may be running: check `ps` and {}",
                        log_path.display()
                    ),
                });
            }
        };
        if let Err(source) = read {
            return Err(DriverError::Io {
                context: format!("reading the report of the supervisor of {who}"),
                source,
            });
        }
        if line.is_empty() {
            // It ended before reporting: what it said is on its stderr,
            // which its exit has closed.
            let mut said = Vec::new();
            let _ = tokio::time::timeout(DETACH_TIMEOUT, stderr.read_to_end(&mut said)).await;
            return Err(DriverError::Supervisor {
                message: format!("starting {who} failed: {}", String::from_utf8_lossy(&said).trim()),
            });
        }
        let report: DetachReport = serde_json::from_str(line.trim()).map_err(|err| DriverError::Supervisor {
            message: format!(
                "the supervisor of {who} printed {:?} instead of {{\"pid\":N,\"start_time\":T}} ({err}); is {:?} a greenroom supervisor?",
                line.trim(),
                program
            ),
        })?;
        tracing::debug!(
            component = %spec.component,
            environment = %spec.environment,
            pid = report.pid,
            "started detached component"
        );
        Ok(ProcessHandle {
            pid: report.pid,
            start_time: report.start_time,
            log_path,
            status_path,
        })
    }

    /// Stops what a [`StartSpec::pid_file`] names, if it still runs, and
    /// removes the file. For a caller that was killed after starting a
    /// component but before recording it: the orphan would otherwise keep
    /// the component's port and answer for its successor. Returns the pid
    /// stopped, if any. A missing or unreadable file means nothing to stop
    /// (an unreadable one is removed, with a warning).
    pub async fn stop_leftover(&self, pid_file: &Path, grace: Duration) -> Result<Option<i32>, DriverError> {
        let text = match std::fs::read_to_string(pid_file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(DriverError::Io {
                    context: format!("cannot read the pid file {}", pid_file.display()),
                    source,
                });
            }
        };
        let stopped = match serde_json::from_str::<DetachReport>(text.trim()) {
            Ok(r) => {
                let handle = ProcessHandle {
                    pid: r.pid,
                    start_time: r.start_time,
                    log_path: PathBuf::new(),
                    status_path: PathBuf::new(),
                };
                let alive = r.pid > 1
                    && (crate::procfs::pid_alive(r.pid, r.start_time)
                        || (matches!(identity(&handle), Identity::Gone) && !live_group_members(r.pid).is_empty()));
                if alive {
                    // `stop` re-checks the identity: a reused pid is left alone.
                    self.stop(&handle, grace).await?;
                    Some(r.pid)
                } else {
                    None
                }
            }
            Err(e) => {
                tracing::warn!("ignoring the unreadable pid file {}: {e}", pid_file.display());
                None
            }
        };
        remove_if_present(pid_file, "pid file")?;
        Ok(stopped)
    }

    /// Stops the component and everything in its process group: SIGTERM, up
    /// to `grace` for it to exit, then SIGKILL. A handle whose pid now
    /// belongs to another process is left alone (`Ok`: nothing of ours runs).
    /// Safe to call again on a stopped handle.
    pub async fn stop(&self, handle: &ProcessHandle, grace: Duration) -> Result<(), DriverError> {
        let pgid = handle.pid;
        if pgid <= 1 {
            return Err(DriverError::Supervisor {
                message: format!("refusing to signal invalid pid {pgid} from a process handle"),
            });
        }
        match identity(handle) {
            Identity::Reused => {
                tracing::debug!(pid = pgid, "pid reused by another process; nothing to stop");
                return Ok(());
            }
            // Gone: members may outlive the leader; while the group exists its
            // id cannot be reused as a pid, so -pgid is still ours.
            Identity::Ours | Identity::Gone => {}
        }
        signal_group(pgid, Signal::SIGTERM)?;
        if wait_group_empty(pgid, grace).await {
            return Ok(());
        }
        tracing::debug!(pid = pgid, ?grace, "group still alive after SIGTERM; sending SIGKILL");
        signal_group(pgid, Signal::SIGKILL)?;
        if wait_group_empty(pgid, KILL_WAIT).await {
            return Ok(());
        }
        Err(DriverError::Supervisor {
            message: format!(
                "processes {:?} of group {pgid} still alive {KILL_WAIT:?} after SIGKILL (stuck in the kernel?); check with `ps -g {pgid}`",
                live_group_members(pgid)
            ),
        })
    }

    /// Current state from `/proc` and the status file; cheap, never blocks.
    pub fn state(&self, handle: &ProcessHandle) -> ProcState {
        if crate::procfs::pid_alive(handle.pid, handle.start_time) {
            return ProcState::Running;
        }
        match std::fs::read(&handle.status_path)
            .ok()
            .and_then(|data| serde_json::from_slice::<StatusFile>(&data).ok())
        {
            Some(status) => ProcState::Exited {
                code: status.code,
                signal: status.signal,
            },
            None => ProcState::Gone,
        }
    }
}
