//! A throwaway PostgreSQL server for the tests: one per test process, one
//! database per test.
//!
//! nextest runs every test in its own process, so what a process pays to
//! get a server is paid per PostgreSQL test. `initdb` costs about a second
//! on two cores, so it runs once: into a template data directory cached
//! under `<scratch>/greenroom-store-pg-<uid>/template-<version>/`, where
//! scratch is `/dev/shm` when it has room (else `$TMPDIR`), created under
//! a file lock and renamed into place only when complete. Each process
//! then copies the template (~30 MB, ~1000 files, with 1 MB WAL segments),
//! starts `postgres` on the copy, listening on 127.0.0.1 at a free port and
//! on a Unix socket in its run directory, and waits (with a deadline) until
//! the server reports `ready` in `postmaster.pid`. Every test creates its
//! own database (`CREATE DATABASE t_<n>`), so tests sharing a process under
//! `cargo test` stay independent. Measured on 2 cores: copy ~50 ms, start
//! ~30 ms, database ~30 ms, connect and migrate ~20 ms; a PostgreSQL test
//! takes 0.15 s alone, 0.3 s with another test running beside it.
//!
//! Stopping: statics are never dropped, so an `atexit` handler does it
//! (libtest ends the process with `exit`, whether tests passed or not): it
//! has the watchdog stop the server and waits for both, so when a test
//! process has exited its server is gone, with no zombie left for init to
//! reap. The watchdog, a shell started with the server, reads its stdin, a
//! pipe whose only writer is the test process; however that process ends
//! (`exit`, an abort, SIGKILL) the pipe closes, `read` returns, and the
//! watchdog stops the server (`pg_ctl stop -m fast -w`) and deletes the run
//! directory. It ignores SIGINT/SIGTERM/SIGHUP (Ctrl-C, nextest's timeout)
//! to finish that job. Should it be killed all the same (SIGKILL), the next
//! harness start removes run directories whose process is gone, stopping a
//! server still running in one.
//!
//! PostgreSQL refuses to run as root, so as root every server process
//! (initdb, postgres, the watchdog) runs as the `postgres` system user that
//! the Debian package creates; otherwise as the current user. Local
//! connections are trusted (the socket directory is private); TCP
//! connections need the template's random password.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to start before the test fails.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Overrides where the server binaries are looked for (the newest
/// `/usr/lib/postgresql/<major>/bin`).
const BINDIR_VAR: &str = "GREENROOM_TEST_PG_BINDIR";

const INSTALL_HINT: &str = "install them with `apt-get install postgresql` (CI's .ci/run does), \
     or point GREENROOM_TEST_PG_BINDIR at a directory holding initdb, postgres and pg_ctl";

/// The running server of this process.
pub struct Server {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// The superuser's password (TCP).
    pub password: String,
    /// Directory of the Unix socket.
    pub socket_dir: PathBuf,
    /// Taken and stopped when the process exits.
    running: Mutex<Option<Running>>,
}

/// The server's processes, both children of the test process.
struct Running {
    postgres: Child,
    watchdog: Child,
    /// Closing it (or this process ending) makes the watchdog stop the
    /// server and delete the run directory.
    watchdog_stdin: ChildStdin,
}

impl Running {
    /// Has the watchdog stop the server, and waits for both, so that
    /// neither outlives this call (nor is left for init to reap).
    fn stop(mut self) {
        drop(self.watchdog_stdin);
        let _ = self.watchdog.wait();
        // Gone already, unless pg_ctl gave up: then make sure.
        if let Ok(None) = self.postgres.try_wait() {
            let _ = self.postgres.kill();
        }
        let _ = self.postgres.wait();
    }
}

/// Registered with `atexit` once a server runs: libtest ends the process
/// with `exit` (tests passed or not), which runs it, so the server is gone
/// before the process is. A process that dies otherwise (a signal, an
/// abort) leaves the job to the watchdog.
extern "C" fn stop_at_exit() {
    if let Some(Ok(server)) = SERVER.get() {
        let running = server.running.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(r) = running {
            r.stop();
        }
    }
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(1);

/// This process's server, started on first use. Panics (failing the
/// test) when PostgreSQL is not installed or does not start.
pub fn server() -> &'static Server {
    match SERVER.get_or_init(|| {
        let server = start()?;
        // SAFETY: registers a plain `extern "C" fn` taking no arguments.
        if unsafe { libc::atexit(stop_at_exit) } != 0 {
            return Err("atexit failed".into());
        }
        Ok(server)
    }) {
        Ok(s) => s,
        Err(e) => panic!("PostgreSQL test server: {e}"),
    }
}

impl Server {
    /// URL of database `name` over TCP.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres:{}@127.0.0.1:{}/{name}", self.password, self.port)
    }

    /// URL of database `name` over the Unix socket.
    pub fn socket_url(&self, name: &str) -> String {
        format!(
            "postgresql://postgres@localhost/{name}?host={}&port={}",
            self.socket_dir.display(),
            self.port
        )
    }
}

/// A new, empty database on this process's server; returns its URL.
pub async fn database() -> String {
    use sqlx::Connection;
    let server = server();
    let name = format!("t_{}", NEXT_DATABASE.fetch_add(1, Ordering::Relaxed));
    let mut admin = sqlx::PgConnection::connect(&server.url("postgres"))
        .await
        .expect("connect to the test server's `postgres` database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE");
    admin.close().await.expect("close admin connection");
    server.url(&name)
}

/// Who runs the server processes: `None` for the current user.
#[derive(Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn command(program: impl AsRef<std::ffi::OsStr>, run_as: Option<RunAs>) -> Command {
    let mut c = Command::new(program);
    // No PG* variables or locale from the caller's environment.
    c.env_clear().env("PATH", "/usr/bin:/bin").env("LC_ALL", "C");
    if let Some(r) = run_as {
        // std drops supplementary groups when it changes the uid.
        c.uid(r.uid).gid(r.gid);
    }
    c
}

fn run(c: &mut Command, what: &str) -> Result<(), String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", c.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The directory holding initdb, postgres and pg_ctl: the newest Debian
/// `/usr/lib/postgresql/<major>/bin`, or `$GREENROOM_TEST_PG_BINDIR`.
fn bindir() -> Result<PathBuf, String> {
    let complete = |d: &Path| ["initdb", "postgres", "pg_ctl"].iter().all(|b| d.join(b).is_file());
    if let Some(d) = std::env::var_os(BINDIR_VAR) {
        let d = PathBuf::from(d);
        return if complete(&d) {
            Ok(d)
        } else {
            Err(format!(
                "{BINDIR_VAR}={} lacks initdb, postgres or pg_ctl: {INSTALL_HINT}",
                d.display()
            ))
        };
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            complete(&bin).then_some((major, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, d)| d)
        .ok_or_else(|| format!("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: {INSTALL_HINT}"))
}

fn run_as() -> Result<Option<RunAs>, String> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(u)) => Ok(Some(RunAs {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        })),
        Ok(None) => Err(format!(
            "running as root, and PostgreSQL refuses to: no `postgres` user to run it as ({INSTALL_HINT})"
        )),
        Err(e) => Err(format!("cannot look up the `postgres` user: {e}")),
    }
}

/// Creates `dir` (mode 0700) owned by the server's user.
fn private_dir(dir: &Path, run_as: Option<RunAs>) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    if let Some(r) = run_as {
        chown(dir, Some(r.uid), Some(r.gid)).map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| format!("chmod {}: {e}", dir.display()))
}

fn random_hex() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("read /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn alive(pid: i32) -> bool {
    // EPERM: alive, someone else's.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// Copies the template data directory for this PostgreSQL version to
/// `data`, creating the template first if it is missing (`rebuild`:
/// replacing it). Returns the superuser's password. The template's lock is
/// held throughout, so nobody copies a template being built or replaced.
fn copy_template(bin: &Path, base: &Path, run_as: Option<RunAs>, rebuild: bool, data: &Path) -> Result<String, String> {
    let out = command(bin.join("postgres"), run_as)
        .arg("--version")
        .output()
        .map_err(|e| format!("run postgres --version: {e}"))?;
    let version: String = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap_or("unknown")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    let dir = base.join(format!("template-{version}"));
    let password_file = dir.join("greenroom-password");
    let lock_path = base.join("template.lock");
    let lock = fs::File::create(&lock_path).map_err(|e| format!("create {}: {e}", lock_path.display()))?;
    lock.lock().map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
    if rebuild {
        let _ = fs::remove_dir_all(&dir);
    }
    let password = match fs::read_to_string(&password_file) {
        Ok(password) => password.trim().to_string(),
        Err(_) => build_template(bin, base, run_as, &version, &dir)?,
    };
    // As root, `cp -a` keeps the template's owner (the server's user).
    run(Command::new("cp").arg("-a").arg(&dir).arg(data), "copy the template")?;
    Ok(password)
}

fn build_template(bin: &Path, base: &Path, run_as: Option<RunAs>, version: &str, dir: &Path) -> Result<String, String> {
    let partial = base.join(format!("template-{version}.partial"));
    let _ = fs::remove_dir_all(dir);
    let _ = fs::remove_dir_all(&partial);
    let password = random_hex()?;
    let pwfile = base.join("template.pwfile");
    fs::write(&pwfile, &password).map_err(|e| format!("write {}: {e}", pwfile.display()))?;
    if let Some(r) = run_as {
        chown(&pwfile, Some(r.uid), Some(r.gid)).map_err(|e| format!("chown {}: {e}", pwfile.display()))?;
    }
    let initdb = run(
        command(bin.join("initdb"), run_as)
            .arg("-D")
            .arg(&partial)
            .args([
                "--username=postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
                "--wal-segsize=1",
            ])
            .arg(format!("--pwfile={}", pwfile.display())),
        "initdb",
    );
    let _ = fs::remove_file(&pwfile);
    initdb?;
    let inner = partial.join("greenroom-password");
    fs::write(&inner, &password).map_err(|e| format!("write {}: {e}", inner.display()))?;
    // Complete: only now does it appear under its name.
    fs::rename(&partial, dir).map_err(|e| format!("rename {}: {e}", partial.display()))?;
    Ok(password)
}

/// Removes run directories whose test process is gone, stopping a server
/// left running in one.
fn sweep(bin: &Path, base: &Path, run_as: Option<RunAs>) {
    for entry in fs::read_dir(base).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("run-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        let data = entry.path().join("data");
        let server_pid = fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        if server_pid.is_some_and(alive) {
            let _ = command(bin.join("pg_ctl"), run_as)
                .args(["stop", "-m", "immediate", "-w", "-t", "30", "-D"])
                .arg(&data)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}

/// Where servers live: in memory (`/dev/shm`) when it has room to spare,
/// as creating files there is an order of magnitude cheaper than on disk
/// (copying the template's ~1000 files: ~50 ms instead of ~700 ms on this
/// project's CI machine); else the temp directory.
fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let roomy = nix::sys::statvfs::statvfs(shm)
        .is_ok_and(|s| u128::from(s.blocks_available()) * u128::from(s.fragment_size()) >= 1 << 30);
    let writable = nix::unistd::access(shm, nix::unistd::AccessFlags::W_OK).is_ok();
    if roomy && writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

enum Failure {
    /// Another process took the port between our probe and the bind.
    PortTaken,
    Other(String),
}

fn start() -> Result<Server, String> {
    let bin = bindir()?;
    let run_as = run_as()?;
    let base = scratch().join(format!("greenroom-store-pg-{}", nix::unistd::geteuid()));
    private_dir(&base, run_as)?;
    sweep(&bin, &base, run_as);
    let mut rebuilt = false;
    let mut rebuild_next = false;
    let mut port_attempts = 0;
    loop {
        match start_once(&bin, &base, run_as, std::mem::take(&mut rebuild_next)) {
            Ok(server) => return Ok(server),
            Err(Failure::PortTaken) if port_attempts < 5 => port_attempts += 1,
            Err(Failure::PortTaken) => return Err("no free port after 5 attempts".into()),
            // A template damaged after the fact (e.g. by a temp cleaner):
            // build it again, once.
            Err(Failure::Other(_)) if !rebuilt => {
                rebuilt = true;
                rebuild_next = true;
            }
            Err(Failure::Other(e)) => return Err(e),
        }
    }
}

fn start_once(bin: &Path, base: &Path, run_as: Option<RunAs>, rebuild: bool) -> Result<Server, Failure> {
    let other = Failure::Other;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let run_dir = base.join(format!("run-{}-{nanos}", std::process::id()));
    let data = run_dir.join("data");
    let socket_dir = run_dir.join("socket");
    private_dir(&run_dir, run_as).map_err(other)?;
    private_dir(&socket_dir, run_as).map_err(other)?;
    let password = copy_template(bin, base, run_as, rebuild, &data).map_err(other)?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Failure::Other(format!("find a free port: {e}")))?
        .port();
    let log_path = run_dir.join("postgres.log");
    let log = fs::File::create(&log_path).map_err(|e| Failure::Other(format!("create {}: {e}", log_path.display())))?;
    let log_err = log.try_clone().map_err(|e| Failure::Other(format!("log: {e}")))?;
    let mut postgres = command(bin.join("postgres"), run_as)
        .arg("-D")
        .arg(&data)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(&socket_dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            // Throwaway data: durability buys nothing here.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| Failure::Other(format!("start postgres: {e}")))?;
    // Started right away, so that the server stops with this process even
    // if waiting for it fails.
    let mut watchdog = command("/bin/sh", run_as)
        .arg("-c")
        .arg(
            r#"trap '' INT TERM HUP
read -r _ || :
"$1" stop -D "$2" -m fast -w -t 60 || "$1" stop -D "$2" -m immediate -w -t 30
rm -rf "$3""#,
        )
        .arg("greenroom-pg-watchdog")
        .arg(bin.join("pg_ctl"))
        .arg(&data)
        .arg(&run_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Failure::Other(format!("start the watchdog: {e}")))?;
    let Some(watchdog_stdin) = watchdog.stdin.take() else {
        let _ = postgres.kill();
        return Err(Failure::Other("the watchdog has no stdin".into()));
    };
    let mut running = Running {
        postgres,
        watchdog,
        watchdog_stdin,
    };
    let deadline = Instant::now() + START_DEADLINE;
    let failed = |running: Running, failure: Failure| {
        running.stop();
        Err(failure)
    };
    loop {
        if let Ok(Some(status)) = running.postgres.try_wait() {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            let bind = log.contains("could not bind") || log.contains("could not create any TCP/IP sockets");
            return failed(
                running,
                if bind {
                    Failure::PortTaken
                } else {
                    Failure::Other(format!("postgres exited ({status}) while starting:\n{log}"))
                },
            );
        }
        // Line 8 of postmaster.pid is the server's status.
        let ready = fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .is_some_and(|s| s.lines().nth(7).is_some_and(|l| l.trim() == "ready"));
        if ready {
            return Ok(Server {
                port,
                password,
                socket_dir,
                running: Mutex::new(Some(running)),
            });
        }
        if Instant::now() > deadline {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            return failed(
                running,
                Failure::Other(format!("postgres not ready after {START_DEADLINE:?}:\n{log}")),
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
