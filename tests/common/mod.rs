//! Helpers shared by the end-to-end tests (`tests/e2e_*.rs`).
//!
//! Every test gets a [`Sandbox`]: a temporary directory with real git
//! repositories (made by `greenroom::quickstart::make_repo`), a
//! `greenroom.toml`, its own state directory and its own port range. The
//! tests drive the real `greenroom` binary as a subprocess and look at what
//! runs over HTTP on the loopback interface. Dropping a sandbox stops what
//! it started (`release --force` + `stop` per environment) and, as a last
//! resort, kills every process that still refers to the sandbox directory.
//!
//! Nothing here sleeps to synchronize: [`wait_until`] polls a condition
//! with a deadline.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod pending;

/// The binary under test.
pub const EXE: &str = env!("CARGO_BIN_EXE_greenroom");

/// Longest any single wait or command may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The sample components: name, depends_on, the PR number of its repo, and
/// whether that PR breaks the health check (as in the quick start).
pub const COMPONENTS: &[(&str, &[&str], u64, bool)] = &[
    ("ogr", &[], 1, false),
    ("packit-service", &["ogr"], 2, false),
    ("dashboard", &["packit-service"], 3, true),
];

/// What a CLI invocation gave.
#[derive(Debug, Clone)]
pub struct Out {
    /// Exit status (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Stdout parsed as JSON (panics with both streams on failure).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    /// Asserts the exit status, showing both streams when it differs.
    #[track_caller]
    pub fn expect(self, code: i32) -> Out {
        assert_eq!(
            self.code, code,
            "unexpected exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Polls `f` until it returns `Some`, at most [`DEADLINE`]; panics naming `what`.
#[track_caller]
pub fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    wait_until_for(DEADLINE, what, &mut f)
}

/// [`wait_until`] with an explicit deadline.
#[track_caller]
pub fn wait_until_for<T>(deadline: Duration, what: &str, f: &mut impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {deadline:?} waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Runs git in `dir` with a fixed identity; returns trimmed stdout.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@greenroom.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A single-quoted shell word.
pub fn sh_quote(s: &str) -> String {
    greenroom::quickstart::shell_quote(s)
}

/// Minimal HTTP/1.1 GET on loopback: `(status, body)`, or `None` if nothing answers.
pub fn http_get(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = hostport.parse().ok()?;
    assert!(addr.ip().is_loopback(), "the tests only talk to loopback, not {addr}");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    // One write: the sample service reads the request with a single read.
    let req = format!("GET {path} HTTP/1.1\r\nhost: {hostport}\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// GET `url` and parse the JSON body; panics if it does not answer 200.
#[track_caller]
pub fn get_json(url: &str) -> Value {
    let (code, body) = http_get(url).unwrap_or_else(|| panic!("nothing answers at {url}"));
    assert_eq!(code, 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
}

/// Whether something listens on 127.0.0.1:port.
pub fn listening(port: u16) -> bool {
    // A loopback connect to a port nobody listens on can connect to itself
    // (TCP simultaneous open): that is no listener.
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(500))
        .is_ok_and(|s| s.local_addr().ok() != s.peer_addr().ok())
}

/// A greenroom command running in the background (killed and reaped on drop).
pub struct Bg {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
    /// What it runs (for messages).
    pub what: String,
}

impl Bg {
    /// Pid of the greenroom process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Whether it has exited (reaps it if so).
    pub fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Waits (at most [`DEADLINE`]) for it to finish.
    #[track_caller]
    pub fn wait(mut self) -> Out {
        let mut child = self.child.take().expect("not waited yet");
        let what = self.what.clone();
        let status = wait_until(&format!("`{what}` to finish"), || child.try_wait().ok().flatten());
        Out {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }

    /// SIGKILLs the greenroom process (only it) and reaps it, so that its pid is really gone.
    pub fn kill9(mut self) -> Out {
        let mut child = self.child.take().expect("not waited yet");
        let _ = child.kill();
        let status = child.wait().expect("reap");
        Out {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Options of the default sandbox configuration.
#[derive(Clone, Debug)]
pub struct Options {
    /// `health_timeout` of every component.
    pub health_timeout: &'static str,
    /// Extra TOML appended to the config.
    pub extra: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            health_timeout: "10s",
            extra: String::new(),
        }
    }
}

/// A temporary world: repositories, config, state directory, port range.
pub struct Sandbox {
    tmp: Option<tempfile::TempDir>,
    /// Root directory (canonical).
    pub root: PathBuf,
    /// `greenroom.toml`.
    pub config: PathBuf,
    /// The state directory.
    pub state: PathBuf,
    /// First port of this sandbox.
    pub port_base: u16,
    /// Variables every greenroom invocation gets.
    pub env: Vec<(String, String)>,
    counter: AtomicUsize,
    started: Mutex<Vec<String>>,
}

impl Sandbox {
    /// A sandbox for test number `index` (decides the port range) with the
    /// three sample repositories and the default config.
    pub fn new(index: u16) -> Sandbox {
        Self::with(index, Options::default())
    }

    /// Like [`Sandbox::new`] with options.
    pub fn with(index: u16, opts: Options) -> Sandbox {
        let sb = Self::empty(index);
        for (name, _, pr, broken) in COMPONENTS {
            greenroom::quickstart::make_repo(&sb.repo(name), name, *pr, *broken).expect("make sample repo");
        }
        let text = sb.default_config(&opts);
        sb.write_config(&text);
        sb
    }

    /// A sandbox with no repositories and no config yet.
    pub fn empty(index: u16) -> Sandbox {
        let tmp = tempfile::Builder::new()
            .prefix("greenroom-e2e-")
            .tempdir()
            .expect("temp dir");
        let root = tmp.path().canonicalize().expect("canonical temp dir");
        for d in ["repos", "counts", "out"] {
            std::fs::create_dir_all(root.join(d)).expect("create sandbox dirs");
        }
        Sandbox {
            config: root.join("greenroom.toml"),
            state: root.join("state"),
            port_base: 21_000 + 100 * index,
            root,
            tmp: Some(tmp),
            env: Vec::new(),
            counter: AtomicUsize::new(0),
            started: Mutex::new(Vec::new()),
        }
    }

    /// Path of a sample repository.
    pub fn repo(&self, name: &str) -> PathBuf {
        self.root.join("repos").join(name)
    }

    /// `git rev-parse REV` in a sample repository.
    pub fn rev(&self, name: &str, rev: &str) -> String {
        git(&self.repo(name), &["rev-parse", rev])
    }

    /// greenroom's bare mirror of a sample repository (under the state directory).
    pub fn mirror(&self, name: &str) -> PathBuf {
        std::fs::read_dir(self.state.join("mirrors"))
            .expect("mirrors")
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.is_dir()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(name) && n.ends_with(".git"))
            })
            .unwrap_or_else(|| panic!("no mirror of {name}"))
    }

    /// The file the default build appends the commit to, one line per build run.
    pub fn count_file(&self, name: &str) -> PathBuf {
        self.root.join("counts").join(format!("{name}.count"))
    }

    /// How many times each commit of `name` was built.
    pub fn builds(&self, name: &str) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for l in std::fs::read_to_string(self.count_file(name))
            .unwrap_or_default()
            .lines()
        {
            *m.entry(l.trim().to_string()).or_default() += 1;
        }
        m
    }

    /// The default build command of a component: counts its runs in a file
    /// outside the checkout, sleeps if the checkout has a `SLOW` file, and
    /// records the commit for the sample service.
    pub fn build_command(&self, name: &str) -> String {
        format!(
            "printf '%s\\n' \"$GREENROOM_COMMIT\" >> {count} && if [ -f SLOW ]; then sleep 30; fi && printf '%s\\n' \"$GREENROOM_COMMIT\" > .greenroom-built",
            count = sh_quote(&self.count_file(name).display().to_string())
        )
    }

    /// The default config: the three sample components on the process
    /// driver; environments `staging` (all), `dev` (2 slots) and `solo` (ogr only).
    pub fn default_config(&self, opts: &Options) -> String {
        let run = format!("{} sample-service", sh_quote(EXE));
        let mut s = format!(
            "state_dir = {}\nport_base = {}\n",
            toml_str(&self.state.display().to_string()),
            self.port_base
        );
        for (name, deps, _, _) in COMPONENTS {
            let deps: Vec<String> = deps.iter().map(|d| toml_str(d)).collect();
            s.push_str(&format!(
                "\n[[component]]\nname = \"{name}\"\nrepo = \"repos/{name}\"\nchannels = {{ stg = \"main\", prod = \"tag:v*\" }}\n\
                 build = {build}\nrun = {run}\nhealth = \"http://127.0.0.1:{{port}}/healthz\"\nhealth_timeout = \"{ht}\"\n\
                 url = \"http://127.0.0.1:{{port}}/\"\ndepends_on = [{deps}]\n",
                build = toml_str(&self.build_command(name)),
                run = toml_str(&run),
                ht = opts.health_timeout,
                deps = deps.join(", "),
            ));
        }
        s.push_str(
            "\n[[environment]]\nname = \"staging\"\nlease_ttl = \"2h\"\n[environment.vars]\nBOT_ACCOUNT = \"bot-{environment}\"\n\
             \n[[environment]]\nname = \"dev\"\nslots = 2\nlease_ttl = \"1h\"\n[environment.vars]\nBOT_ACCOUNT = \"bot-dev-{slot}\"\n\
             \n[[environment]]\nname = \"solo\"\ncomponents = [\"ogr\"]\n",
        );
        s.push_str(&opts.extra);
        s
    }

    /// Writes the config file.
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("write config");
    }

    fn command(&self, args: &[&str]) -> (Command, PathBuf, PathBuf) {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let stdout = self.root.join("out").join(format!("{n}.stdout"));
        let stderr = self.root.join("out").join(format!("{n}.stderr"));
        let mut cmd = Command::new(EXE);
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(&self.root)
            .env_remove("GREENROOM_CONFIG")
            .env_remove("GREENROOM_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        (cmd, stdout, stderr)
    }

    fn note_started(&self, args: &[&str]) {
        // Remember every instance a deploy may have touched, for cleanup.
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if *a == "--env"
                && let Some(e) = it.next()
            {
                self.started
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((*e).to_string());
            }
        }
    }

    /// Runs `greenroom --config CONFIG ARGS...` to completion (at most [`DEADLINE`]).
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Out {
        self.try_run(args, DEADLINE)
            .unwrap_or_else(|| panic!("`greenroom {}` did not finish within {DEADLINE:?}", args.join(" ")))
    }

    /// [`Sandbox::run`] and expect exit status 0.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Out {
        self.run(args).expect(0)
    }

    /// [`Sandbox::ok`] with `--json` and parse stdout.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        self.ok(&a).json()
    }

    /// Runs a command; `None` if it did not finish in time (it is then killed).
    pub fn try_run(&self, args: &[&str], deadline: Duration) -> Option<Out> {
        self.note_started(args);
        let (mut cmd, stdout, stderr) = self.command(args);
        let mut child = cmd.spawn().expect("spawn greenroom");
        let end = Instant::now() + deadline;
        let mut pause = Duration::from_millis(5);
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break st;
            }
            if Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        Some(Out {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(stderr).unwrap_or_default(),
        })
    }

    /// Starts a command in the background.
    pub fn spawn(&self, args: &[&str]) -> Bg {
        self.note_started(args);
        let (mut cmd, stdout, stderr) = self.command(args);
        let child = cmd.spawn().expect("spawn greenroom");
        Bg {
            child: Some(child),
            stdout,
            stderr,
            what: args.join(" "),
        }
    }

    /// `status --json --env ENV` (one instance).
    #[track_caller]
    pub fn status(&self, env: &str) -> Value {
        self.json(&["status", "--env", env])
    }

    /// `history --json` (newest first).
    #[track_caller]
    pub fn history(&self) -> Vec<Value> {
        self.json(&["history", "--limit", "1000"])
            .as_array()
            .expect("history is a list")
            .clone()
    }

    /// The component `name` of a `status --json` document.
    #[track_caller]
    pub fn component<'a>(status: &'a Value, name: &str) -> &'a Value {
        status["components"]
            .as_array()
            .expect("components")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no component {name} in {status:#}"))
    }

    /// Checks every running component of `env` over HTTP: it must serve the
    /// commit and cycle that `status --json` records. Returns the status.
    #[track_caller]
    pub fn assert_serving(&self, env: &str) -> Value {
        let st = self.status(env);
        for c in st["components"].as_array().expect("components") {
            if c["state"] != "running" {
                continue;
            }
            let url = c["url"].as_str().unwrap_or_else(|| panic!("no url for {c}"));
            let got = get_json(url);
            assert_eq!(
                got["commit"], c["commit"],
                "{} at {url} serves another commit than status says",
                c["name"]
            );
            assert_eq!(got["component"], c["name"], "{url} is not {}", c["name"]);
            assert_eq!(got["environment"], env, "{url} runs in another environment");
            assert_eq!(
                got["cycle"].as_str().map(str::to_string),
                c["cycle"].as_i64().map(|i| i.to_string()),
                "{url}: cycle"
            );
        }
        st
    }

    /// Every file and directory under the state directory's `sub` folder (relative paths).
    pub fn tree(&self, sub: &str) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(rd) = std::fs::read_dir(dir) else { return };
            for e in rd.flatten() {
                let p = e.path();
                out.push(
                    p.strip_prefix(base)
                        .map(|r| r.display().to_string())
                        .unwrap_or_default(),
                );
                if p.is_dir() && !p.is_symlink() {
                    walk(base, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        let base = self.state.join(sub);
        walk(&base, &base, &mut out);
        out.sort();
        out
    }

    /// Stops what this sandbox runs: `release --force` and `stop` for every
    /// instance that has something deployed, then kills any process still
    /// referring to the sandbox directory. Never panics.
    pub fn cleanup(&self) {
        let mut instances: Vec<String> = Vec::new();
        if let Some(out) = self.try_run(&["--json", "status"], Duration::from_secs(15))
            && let Ok(v) = serde_json::from_str::<Value>(&out.stdout)
        {
            for e in v.as_array().cloned().unwrap_or_default() {
                let live = e["components"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| !matches!(c["state"].as_str(), Some("stopped" | "not deployed")))
                });
                if live && let Some(name) = e["environment"].as_str() {
                    instances.push(name.to_string());
                }
            }
        } else {
            instances = self.started.lock().unwrap_or_else(|e| e.into_inner()).clone();
        }
        instances.sort();
        instances.dedup();
        for inst in instances {
            let _ = self.try_run(
                &["--as", "e2e-cleanup", "release", "--force", "--env", &inst],
                Duration::from_secs(15),
            );
            let _ = self.try_run(
                &["--as", "e2e-cleanup", "stop", "--env", &inst],
                Duration::from_secs(20),
            );
        }
        kill_leftovers(&self.root);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.cleanup();
        if std::thread::panicking()
            && std::env::var_os("E2E_KEEP").is_some()
            && let Some(t) = self.tmp.take()
        {
            eprintln!("keeping {}", t.keep().display());
        }
    }
}

/// A process seen in /proc.
#[derive(Debug, Clone)]
pub struct Proc {
    /// Pid.
    pub pid: i32,
    /// Process group.
    pub pgid: i32,
    /// Command line, arguments joined by spaces.
    pub cmdline: String,
    /// Working directory.
    pub cwd: PathBuf,
}

fn stat_pgid(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let _ppid = f.next()?;
    let pgid = f.next()?.parse().ok()?;
    Some((state, pgid))
}

/// Live (non-zombie) processes whose working directory or command line
/// mentions `root`, other than this test process.
pub fn procs_under(root: &Path) -> Vec<Proc> {
    let me = std::process::id() as i32;
    let needle = root.display().to_string();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|c| *c == 0)
                    .map(|a| String::from_utf8_lossy(a).to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        if !cwd.starts_with(root) && !cmdline.contains(&needle) {
            continue;
        }
        let Some((state, pgid)) = stat_pgid(pid) else { continue };
        if state == 'Z' || state == 'X' {
            continue;
        }
        out.push(Proc {
            pid,
            pgid,
            cmdline: cmdline.trim().to_string(),
            cwd,
        });
    }
    out
}

/// SIGKILLs every process referring to `root` (their whole group when they
/// lead one that is not ours); returns how many there were.
pub fn kill_leftovers(root: &Path) -> usize {
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::{Pid, getpgrp};
    let ours = getpgrp().as_raw();
    let procs = procs_under(root);
    for p in &procs {
        if p.pgid == p.pid && p.pgid != ours && p.pgid > 1 {
            let _ = killpg(Pid::from_raw(p.pgid), Signal::SIGKILL);
        } else {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
    }
    if !procs.is_empty() {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end && !procs_under(root).is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    procs.len()
}

/// Whether `pid` is a live (non-zombie) process.
pub fn alive(pid: i32) -> bool {
    matches!(stat_pgid(pid), Some((s, _)) if s != 'Z' && s != 'X')
}

/// Checks a JUnit report against the schema CI servers read
/// (`tests/data/junit/junit.xsd`) with `xmllint` (Debian's libxml2-utils).
#[track_caller]
pub fn assert_valid_junit(path: &Path) {
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit/junit.xsd");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(path)
        .output()
        .expect("xmllint (Debian package libxml2-utils) runs");
    assert!(
        out.status.success(),
        "{} does not validate against the JUnit schema:\n{}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

/// A Prometheus killed and reaped on drop; its log is shown if the test fails.
pub struct Prometheus {
    /// The process.
    pub child: Child,
    /// Its log.
    pub log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "prometheus log (last lines):\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}
