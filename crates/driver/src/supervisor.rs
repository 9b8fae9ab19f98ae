//! The supervisor: the greenroom binary re-executed (hidden `__supervise`
//! subcommand) to run one component as a detached process.
//!
//! Two modes:
//! - `--foreground`: long-lived. Calls `setsid()` unless it is a session
//!   leader already (the process driver's `start` makes it one before its
//!   exec; a new session and process group survive the CLI and its
//!   terminal). With `--report` it writes `{"pid":N,"start_time":T}` to
//!   `--pidfile` and then on its stdout (the caller's pipe), and points
//!   stdout and stderr at /dev/null; with `--notify` it writes an empty
//!   line there instead (for `--detach`). Then it runs `sh -c <command>` in
//!   that group, copies its stdout+stderr line by line into the log file with
//!   secrets redacted, and when the command exits writes its status file
//!   (`{"code":N}` or `{"signal":N}`) and exits.
//! - `--detach`: short-lived, for scripts (the process driver no longer
//!   uses it). Spawns `--foreground` with the same options and stdio on
//!   /dev/null, waits until it has become a session leader, prints
//!   `{"pid":N,"start_time":T}` and exits 0. The foreground process is thus
//!   orphaned (re-parented to init), so no zombie is left in the caller.
//!
//! Options: `--log PATH` (required), `--status PATH` (default `<log>.status`),
//! `--pidfile PATH` (with `--detach` or `--report`: the foreground
//! supervisor's `{"pid":N,"start_time":T}`, written atomically before it is
//! printed, so a caller killed before reading the report can still find and
//! stop it),
//! `--cwd PATH` (default: inherited), `--reexec ARG` (repeatable: program and
//! leading arguments to start the foreground supervisor; default: this
//! executable and the arguments that preceded ours), then `--` and the command.
//!
//! Secrets arrive through the environment only: `GREENROOM_REDACT` lists the
//! names of variables holding values to redact; those variables and
//! `GREENROOM_REDACT` itself are removed from the command's environment.
//!
//! The supervisor must never crash on a broken log file (it reports to its
//! stderr, /dev/null in production, and keeps draining the output), never
//! needs a tokio runtime, and never signals anything itself.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::logs::{LogSink, copy_lines};
use crate::procfs::read_stat;
use crate::redact::Redactor;

/// Environment variable listing the names of the variables that hold secret values.
pub(crate) const REDACT_ENV: &str = "GREENROOM_REDACT";

/// How long `--detach` waits for the foreground supervisor to call `setsid()`.
const SETSID_DEADLINE: Duration = Duration::from_secs(10);

/// How long the foreground supervisor keeps copying output after the command
/// exited (background children may still hold the pipe).
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// What `--detach` prints on stdout: the identity of the foreground supervisor.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DetachReport {
    pub pid: i32,
    pub start_time: u64,
}

/// Content of the status file written when the command exits.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StatusFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Detach,
    Foreground,
}

#[derive(Debug)]
struct Options {
    mode: Mode,
    log: PathBuf,
    status: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    notify: bool,
    report: bool,
    cwd: Option<PathBuf>,
    reexec: Vec<OsString>,
    command: OsString,
}

impl Options {
    fn status_path(&self) -> PathBuf {
        match &self.status {
            Some(path) => path.clone(),
            None => default_status_path(&self.log),
        }
    }
}

/// `<log>.status`.
pub(crate) fn default_status_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_os_string();
    name.push(".status");
    PathBuf::from(name)
}

fn parse_args(args: Vec<OsString>) -> Result<Options, String> {
    let mut mode = None;
    let mut log = None;
    let mut status = None;
    let mut pidfile = None;
    let mut notify = false;
    let mut report = false;
    let mut cwd = None;
    let mut reexec = Vec::new();
    let mut command = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("option {name} needs a value"));
        match arg.to_str() {
            Some("--detach") => mode = Some(Mode::Detach),
            Some("--foreground") => mode = Some(Mode::Foreground),
            Some("--log") => log = Some(PathBuf::from(value("--log")?)),
            Some("--status") => status = Some(PathBuf::from(value("--status")?)),
            Some("--pidfile") => pidfile = Some(PathBuf::from(value("--pidfile")?)),
            Some("--notify") => notify = true,
            Some("--report") => report = true,
            Some("--cwd") => cwd = Some(PathBuf::from(value("--cwd")?)),
            Some("--reexec") => reexec.push(value("--reexec")?),
            Some("--") => {
                let rest: Vec<OsString> = it.by_ref().collect();
                if rest.len() != 1 {
                    return Err(format!("expected exactly one command after --, got {}", rest.len()));
                }
                command = rest.into_iter().next();
            }
            _ => return Err(format!("unknown argument {:?}", arg)),
        }
    }
    Ok(Options {
        mode: mode.ok_or("missing --detach or --foreground")?,
        log: log.ok_or("missing --log PATH")?,
        status,
        pidfile,
        notify,
        report,
        cwd,
        reexec,
        command: command.ok_or("missing -- COMMAND")?,
    })
}

/// Entry point of the supervisor (the greenroom binary's hidden `__supervise`
/// subcommand; `args` are the arguments after it). Synchronous; returns the
/// process exit code. Usage errors are reported on stderr with code 2.
pub fn supervise_main(args: Vec<OsString>) -> i32 {
    let options = match parse_args(args.clone()) {
        Ok(options) => options,
        Err(err) => {
            eprintln!("greenroom supervisor: {err}");
            eprintln!(
                "usage: --detach|--foreground [--report] --log PATH [--status PATH] [--pidfile PATH] [--cwd PATH] [--reexec ARG]... -- COMMAND"
            );
            return 2;
        }
    };
    match options.mode {
        Mode::Detach => detach(&options, &args),
        Mode::Foreground => foreground(&options),
    }
}

/// The program and leading arguments that start a supervisor.
fn reexec_prefix(options: &Options, own_args: &[OsString]) -> Result<Vec<OsString>, String> {
    if !options.reexec.is_empty() {
        return Ok(options.reexec.clone());
    }
    let exe = std::env::current_exe().map_err(|err| format!("cannot find the supervisor executable: {err}"))?;
    // Keep the arguments that preceded ours (e.g. `__supervise`).
    let argv: Vec<OsString> = std::env::args_os().collect();
    let mut prefix = vec![exe.into_os_string()];
    if argv.len() > own_args.len() && argv.ends_with(own_args) {
        prefix.extend(argv[1..argv.len() - own_args.len()].iter().cloned());
    }
    Ok(prefix)
}

fn detach(options: &Options, own_args: &[OsString]) -> i32 {
    let prefix = match reexec_prefix(options, own_args) {
        Ok(prefix) => prefix,
        Err(err) => {
            eprintln!("greenroom supervisor: {err}");
            return 1;
        }
    };
    let Some((program, leading)) = prefix.split_first() else {
        eprintln!("greenroom supervisor: empty --reexec");
        return 1;
    };
    let mut cmd = Command::new(program);
    cmd.args(leading)
        .arg("--foreground")
        .arg("--log")
        .arg(&options.log)
        .arg("--status")
        .arg(options.status_path());
    if let Some(cwd) = &options.cwd {
        cmd.arg("--cwd").arg(cwd);
    }
    // `--notify`: the foreground writes a line on its stdout (a pipe to us)
    // once it is a session leader, so we need not poll for it.
    cmd.arg("--notify")
        .arg("--")
        .arg(&options.command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Do not pin the caller's directory for the component's lifetime.
        .current_dir("/");
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => {
            eprintln!(
                "greenroom supervisor: cannot start the foreground supervisor {:?}: {err}",
                program
            );
            return 1;
        }
    };
    let Ok(pid) = i32::try_from(child.id()) else {
        eprintln!("greenroom supervisor: pid {} out of range", child.id());
        return 1;
    };
    // Its readiness line, read on a thread so that the wait stays bounded.
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    if let Some(mut out) = child.stdout.take() {
        let spawned = std::thread::Builder::new().name("ready".into()).spawn(move || {
            let mut byte = [0u8; 1];
            let _ = std::io::Read::read(&mut out, &mut byte);
            let _ = ready_tx.send(());
        });
        if let Err(err) = spawned {
            // Polling /proc alone still works, only later.
            eprintln!("greenroom supervisor: cannot wait for the readiness line: {err}");
        }
    }
    let mut notified = false;
    // Wait (bounded) until it is a session leader, so that the handle we
    // report always names a process group that stop() can signal.
    let deadline = Instant::now() + SETSID_DEADLINE;
    let mut pause = Duration::from_millis(1);
    // The start time is fixed at fork, so any read of the stat gives it; the
    // process exists (at worst as our unreaped zombie) until try_wait below.
    let mut start_time = None;
    let start_time = loop {
        if let Some(stat) = read_stat(pid) {
            start_time = Some(stat.start_time);
            if stat.session == pid && stat.pgrp == pid && !stat.is_dead() {
                break stat.start_time;
            }
        }
        match child.try_wait() {
            // A quick command can run to completion before we look: the
            // supervisor exits 0 after writing the status file.
            Ok(Some(status)) if status.success() => {
                if let Some(start_time) = start_time {
                    break start_time;
                }
                eprintln!("greenroom supervisor: pid {pid} exited before its start time could be read");
                return 1;
            }
            Ok(Some(status)) => {
                eprintln!(
                    "greenroom supervisor: the foreground supervisor exited at once ({status}); see {}",
                    options.log.display()
                );
                return 1;
            }
            Ok(None) => {}
            Err(err) => {
                eprintln!("greenroom supervisor: cannot check the foreground supervisor: {err}");
                return 1;
            }
        }
        if Instant::now() >= deadline {
            eprintln!(
                "greenroom supervisor: pid {pid} did not become a session leader within {:?}; it is left running",
                SETSID_DEADLINE
            );
            return 1;
        }
        if notified {
            std::thread::sleep(pause);
        } else {
            // Woken by the readiness line (or its pipe closing) at once.
            notified = !matches!(ready_rx.recv_timeout(pause), Err(mpsc::RecvTimeoutError::Timeout));
        }
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    // Not waited for: when we exit it is re-parented to init, which reaps it.
    drop(child);
    if let Err(err) = publish(&DetachReport { pid, start_time }, options.pidfile.as_deref()) {
        eprintln!("greenroom supervisor: {err}");
        return 1;
    }
    0
}

/// Writes a supervisor's identity to the pid file (if any; a failure there
/// is reported, not fatal: the caller still gets the line), then as a line
/// on stdout. Errs when the caller could not be told.
fn publish(report: &DetachReport, pidfile: Option<&Path>) -> Result<(), String> {
    let line = serde_json::to_string(report).map_err(|err| format!("cannot encode report: {err}"))?;
    if let Some(path) = pidfile
        && let Err(err) = write_atomic(path, line.as_bytes())
    {
        eprintln!("greenroom supervisor: cannot write pid file {}: {err}", path.display());
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|err| format!("cannot report pid {}: {err}", report.pid))
}

/// `--report`: writes our identity to the `--pidfile` (if any), then as a
/// line on stdout (a pipe to the caller), then points stdout and stderr at
/// /dev/null: the caller stops reading once it has the line, and nothing
/// may fail later for want of a reader. False when the caller cannot be
/// told (it then never learns of us: better not to run at all).
fn report_self(options: &Options, pid: i32) -> bool {
    let Some(stat) = read_stat(pid) else {
        eprintln!("greenroom supervisor: cannot read /proc/{pid}/stat for its start time");
        return false;
    };
    let report = DetachReport {
        pid,
        start_time: stat.start_time,
    };
    if let Err(err) = publish(&report, options.pidfile.as_deref()) {
        eprintln!("greenroom supervisor: {err}");
        if let Some(path) = &options.pidfile {
            let _ = std::fs::remove_file(path);
        }
        return false;
    }
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        Ok(null) => {
            let _ = nix::unistd::dup2_stdout(&null);
            let _ = nix::unistd::dup2_stderr(&null);
        }
        Err(err) => eprintln!("greenroom supervisor: cannot open /dev/null: {err}"),
    }
    true
}

/// Secret values named by `GREENROOM_REDACT`, and the names to strip from the
/// command's environment.
fn secrets_from_env() -> (Vec<String>, Vec<String>) {
    let mut names = vec![REDACT_ENV.to_string()];
    let mut values = Vec::new();
    if let Ok(list) = std::env::var(REDACT_ENV) {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if let Ok(value) = std::env::var(name) {
                values.push(value);
            }
            names.push(name.to_string());
        }
    }
    (values, names)
}

/// Writes then renames: readers never see a half-written file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn write_status(path: &Path, status: &StatusFile) {
    let result = serde_json::to_vec(status)
        .map_err(std::io::Error::other)
        .and_then(|json| write_atomic(path, &json));
    if let Err(err) = result {
        eprintln!(
            "greenroom supervisor: cannot write status file {}: {err}",
            path.display()
        );
    }
}

fn foreground(options: &Options) -> i32 {
    let me = nix::unistd::getpid();
    // The process driver's start() makes us a session leader before exec.
    if nix::unistd::getsid(None) != Ok(me)
        && let Err(err) = nix::unistd::setsid()
    {
        // Keep going: stop() still signals the pid's group.
        eprintln!("greenroom supervisor: setsid failed: {err}");
    }
    if options.report && !report_self(options, me.as_raw()) {
        return 1;
    }
    if options.notify {
        // The `--detach` process waits for this line; nothing else is ever
        // written to stdout (it is closed once the detach process exits).
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\n").and_then(|()| out.flush());
    }
    let status_path = options.status_path();
    let (secret_values, strip) = secrets_from_env();
    let redactor = Redactor::new(&secret_values);
    let mut sink = LogSink::open(&options.log);

    let spawn = || -> std::io::Result<(std::process::Child, std::io::PipeReader)> {
        let (reader, writer) = std::io::pipe()?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&options.command)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer);
        for name in &strip {
            cmd.env_remove(OsStr::new(name));
        }
        if let Some(cwd) = &options.cwd {
            cmd.current_dir(cwd);
        }
        let child = cmd.spawn()?;
        // `cmd` (and its copies of the write end) is dropped here, so the
        // reader sees end of file once the command's group closes the pipe.
        Ok((child, reader))
    };
    let (mut child, reader) = match spawn() {
        Ok(pair) => pair,
        Err(err) => {
            let message = format!(
                "greenroom: cannot start `sh -c` in {}: {err}",
                options.cwd.as_deref().unwrap_or(Path::new(".")).display()
            );
            sink.write_line(&message);
            write_status(
                &status_path,
                &StatusFile {
                    code: Some(127),
                    signal: None,
                    error: Some(message),
                },
            );
            return 1;
        }
    };

    let (done_tx, done_rx) = mpsc::channel::<()>();
    let copier = std::thread::Builder::new().name("log-copy".into()).spawn(move || {
        copy_lines(reader, &mut sink, &redactor);
        let _ = done_tx.send(());
    });
    if let Err(err) = copier {
        // The reader moved into the failed closure and is closed: the command
        // gets SIGPIPE on output. Nothing better to do without a thread.
        eprintln!("greenroom supervisor: cannot start the log copier: {err}");
    }

    let status = match child.wait() {
        Ok(status) => StatusFile {
            code: status.code(),
            signal: status.signal(),
            error: None,
        },
        Err(err) => StatusFile {
            code: None,
            signal: None,
            error: Some(format!("cannot wait for the command: {err}")),
        },
    };
    // Copy what is left in the pipe (bounded: background children may keep it open).
    let _ = done_rx.recv_timeout(DRAIN_DEADLINE);
    write_status(&status_path, &status);
    0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_options() {
        let o = parse_args(os(&[
            "--detach", "--log", "/l", "--cwd", "/c", "--reexec", "/bin/x", "--reexec", "sub", "--", "echo hi",
        ]))
        .unwrap();
        assert_eq!(o.mode, Mode::Detach);
        assert_eq!(o.status_path(), PathBuf::from("/l.status"));
        assert_eq!(o.reexec, os(&["/bin/x", "sub"]));
        assert_eq!(o.command, OsString::from("echo hi"));
        assert_eq!(o.pidfile, None);
        let o = parse_args(os(&["--detach", "--log", "/l", "--pidfile", "/p", "--", "x"])).unwrap();
        assert_eq!(o.pidfile, Some(PathBuf::from("/p")));
    }

    #[test]
    fn rejects_bad_usage() {
        assert!(parse_args(os(&["--log", "/l", "--", "x"])).is_err());
        assert!(parse_args(os(&["--foreground", "--", "x"])).is_err());
        assert!(parse_args(os(&["--foreground", "--log", "/l", "--", "x", "y"])).is_err());
        assert!(parse_args(os(&["--foreground", "--log"])).is_err());
        assert_eq!(supervise_main(os(&["--bogus"])), 2);
    }
}
