//! Process driver tests with real detached processes on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::*;
use greenroom_driver::{
    DriverError, HealthCheck, HealthError, ProcState, ProcessHandle, live_group_members, pid_alive, process_start_time,
    wait_healthy,
};
use nix::unistd::{Pid, getsid};

fn ppid_of(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn http_component_runs_detached_and_stops_with_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_s = port.to_string();
    let drv = driver();
    let spec = spec(
        dir.path(),
        "echo starting on $PORT; python3 -m http.server \"$PORT\" --bind 127.0.0.1; echo after",
        &[("PORT", &port_s)],
    );
    let handle = drv.start(&spec).await.unwrap();
    let _guard = Guard(handle.clone());

    assert_eq!(drv.state(&handle), ProcState::Running);
    assert_eq!(process_start_time(handle.pid), Some(handle.start_time));
    // Session leader, hence its own process group, and not our child.
    let pid = Pid::from_raw(handle.pid);
    assert_eq!(getsid(Some(pid)).unwrap(), pid);
    assert_ne!(ppid_of(handle.pid), Some(std::process::id() as i32));
    assert!(handle.log_path.is_absolute());

    let url = format!("http://127.0.0.1:{port}/");
    let h = handle.clone();
    let waited = wait_healthy(&HealthCheck::Http { url }, Duration::from_secs(10), &move || {
        pid_alive(h.pid, h.start_time)
    })
    .await
    .unwrap();
    assert!(waited < Duration::from_secs(10));
    // Supervisor, sh and python share the group.
    assert!(
        live_group_members(handle.pid).len() >= 3,
        "{:?}",
        live_group_members(handle.pid)
    );
    assert!(
        eventually(Duration::from_secs(5), || read(&handle.log_path)
            .contains(&format!("starting on {port}")))
        .await,
        "log: {}",
        read(&handle.log_path)
    );

    let started = Instant::now();
    drv.stop(&handle, Duration::from_secs(5)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(drv.state(&handle), ProcState::Gone | ProcState::Exited { .. }));
    assert!(no_live_members(handle.pid), "{:?}", live_group_members(handle.pid));
    assert!(port_closed(port));
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();

    // Stopping again is fine.
    drv.stop(&handle, Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn secrets_are_redacted_and_env_is_passed() {
    let dir = tempfile::tempdir().unwrap();
    let drv = driver();
    let mut spec = spec(
        dir.path(),
        "echo \"token is $MY_SECRET\"; echo \"plain=$PLAIN\" >&2; echo \"redact=${GREENROOM_REDACT:-unset}\"; pwd",
        &[("MY_SECRET", "s3cr3t-value"), ("PLAIN", "visible")],
    );
    spec.secret_values = vec!["s3cr3t-value".into(), "ab".into()];
    let handle = drv.start(&spec).await.unwrap();
    let _guard = Guard(handle.clone());
    assert!(eventually(Duration::from_secs(10), || drv.state(&handle) != ProcState::Running).await);
    assert_eq!(
        drv.state(&handle),
        ProcState::Exited {
            code: Some(0),
            signal: None
        }
    );
    let log = read(&handle.log_path);
    assert!(log.contains("token is [redacted]"), "log: {log}");
    assert!(!log.contains("s3cr3t-value"), "log: {log}");
    assert!(log.contains("plain=visible"), "log: {log}");
    assert!(log.contains("redact=unset"), "log: {log}");
    assert!(log.contains(dir.path().to_str().unwrap()), "log: {log}");

    // A second start appends to the same log and resets the status.
    spec.command = "echo second run; exit 4".into();
    let handle2 = drv.start(&spec).await.unwrap();
    let _guard2 = Guard(handle2.clone());
    assert!(
        eventually(Duration::from_secs(10), || matches!(
            drv.state(&handle2),
            ProcState::Exited { code: Some(4), .. }
        ))
        .await,
        "{:?}",
        drv.state(&handle2)
    );
    let log = read(&handle.log_path);
    assert!(
        log.contains("token is [redacted]") && log.contains("second run"),
        "log: {log}"
    );
}

#[tokio::test]
async fn exiting_component_reports_code_and_fails_health_fast() {
    let dir = tempfile::tempdir().unwrap();
    let drv = driver();
    let port = free_port();
    let handle = drv.start(&spec(dir.path(), "sleep 0.2; exit 3", &[])).await.unwrap();
    let _guard = Guard(handle.clone());
    let started = Instant::now();
    let d = drv.clone();
    let h = handle.clone();
    let err = wait_healthy(
        &HealthCheck::Http {
            url: format!("http://127.0.0.1:{port}/"),
        },
        Duration::from_secs(30),
        &move || d.state(&h) == ProcState::Running,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HealthError::ProcessExited { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        drv.state(&handle),
        ProcState::Exited {
            code: Some(3),
            signal: None
        }
    );
    // Stopping an exited component is fine.
    drv.stop(&handle, Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn stale_handle_is_never_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let drv = driver();
    // Our own pid with the wrong start time.
    let me = std::process::id() as i32;
    let stale = ProcessHandle {
        pid: me,
        start_time: process_start_time(me).unwrap() + 1,
        log_path: dir.path().join("x.log"),
        status_path: dir.path().join("x.log.status"),
    };
    drv.stop(&stale, Duration::from_millis(100)).await.unwrap();
    assert_ne!(drv.state(&stale), ProcState::Running);

    // A live group leader of ours with the wrong start time survives stop().
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .process_group(0)
        .spawn()
        .unwrap();
    let vpid = victim.id() as i32;
    let stale = ProcessHandle {
        pid: vpid,
        start_time: process_start_time(vpid).unwrap() + 1,
        ..stale
    };
    let result = drv.stop(&stale, Duration::from_millis(100)).await;
    let survived = victim.try_wait().unwrap().is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    result.unwrap();
    assert!(survived, "stop() signalled a process that was not ours");
    assert_eq!(drv.state(&stale), ProcState::Gone);
}

#[tokio::test]
async fn term_ignoring_component_is_killed_after_grace() {
    let dir = tempfile::tempdir().unwrap();
    let drv = driver();
    let handle = drv
        .start(&spec(
            dir.path(),
            "trap '' TERM; sleep 30 & sleep 30 & echo ready; wait",
            &[],
        ))
        .await
        .unwrap();
    let _guard = Guard(handle.clone());
    assert!(eventually(Duration::from_secs(5), || read(&handle.log_path).contains("ready")).await);
    // The supervisor dies on TERM; sh and the sleeps ignore it.
    let started = Instant::now();
    drv.stop(&handle, Duration::from_millis(300)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(no_live_members(handle.pid), "{:?}", live_group_members(handle.pid));
    assert_ne!(drv.state(&handle), ProcState::Running);
}

#[tokio::test]
async fn start_errors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let drv = driver();
    let mut bad = spec(dir.path(), "true", &[]);
    bad.cwd = dir.path().join("missing");
    let err = drv.start(&bad).await.unwrap_err();
    assert!(matches!(err, DriverError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");

    let nodrv = greenroom_driver::ProcessDriver::new(vec![dir.path().join("no-such-binary").into()]);
    let err = nodrv.start(&spec(dir.path(), "true", &[])).await.unwrap_err();
    assert!(matches!(err, DriverError::Spawn { .. }), "{err}");

    // A program that is not a supervisor.
    let notsup = greenroom_driver::ProcessDriver::new(vec!["true".into()]);
    let err = notsup.start(&spec(dir.path(), "true", &[])).await.unwrap_err();
    assert!(matches!(err, DriverError::Supervisor { .. }), "{err}");
}

#[tokio::test]
async fn instant_commands_start_reliably() {
    // The command may finish before the detach process looks at it.
    let dir = tempfile::tempdir().unwrap();
    let drv = driver();
    for i in 0..10 {
        let mut s = spec(dir.path(), &format!("exit {}", i % 3), &[]);
        s.log_path = dir.path().join(format!("quick-{i}.log"));
        let handle = drv.start(&s).await.unwrap();
        let _guard = Guard(handle.clone());
        let want = ProcState::Exited {
            code: Some(i % 3),
            signal: None,
        };
        assert!(
            eventually(Duration::from_secs(5), || drv.state(&handle) == want).await,
            "{:?}",
            drv.state(&handle)
        );
    }
}

/// A caller killed after starting a component but before recording it: the
/// pid file names the orphan, `stop_leftover` stops its whole group once
/// and frees its port; a second call finds nothing.
#[tokio::test]
async fn leftover_from_an_unrecorded_start_is_found_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_s = port.to_string();
    let drv = driver();
    let mut spec = spec(
        dir.path(),
        "python3 -m http.server \"$PORT\" --bind 127.0.0.1",
        &[("PORT", &port_s)],
    );
    let pid_file = dir.path().join("run/web.pid");
    spec.pid_file = Some(pid_file.clone());
    let handle = drv.start(&spec).await.unwrap();
    let _guard = Guard(handle.clone());
    // The pid file names the same supervisor as the handle (written before it was reported).
    let recorded: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&pid_file).unwrap()).unwrap();
    assert_eq!(recorded["pid"], handle.pid);
    assert_eq!(recorded["start_time"], handle.start_time);
    let h = handle.clone();
    wait_healthy(
        &HealthCheck::Http {
            url: format!("http://127.0.0.1:{port}/"),
        },
        Duration::from_secs(10),
        &move || pid_alive(h.pid, h.start_time),
    )
    .await
    .unwrap();

    // The handle is "lost": only the pid file is left to find it by.
    let stopped = drv.stop_leftover(&pid_file, Duration::from_secs(5)).await.unwrap();
    assert_eq!(stopped, Some(handle.pid));
    assert!(!pid_alive(handle.pid, handle.start_time));
    assert!(live_group_members(handle.pid).is_empty());
    assert!(!pid_file.exists());
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "the orphan's port is free again"
    );
    assert_eq!(
        drv.stop_leftover(&pid_file, Duration::from_secs(5)).await.unwrap(),
        None
    );

    // A stale file (its process long gone) or garbage stops nothing and is removed.
    std::fs::write(
        &pid_file,
        format!("{{\"pid\":{},\"start_time\":1}}", std::process::id()),
    )
    .unwrap();
    assert_eq!(
        drv.stop_leftover(&pid_file, Duration::from_secs(5)).await.unwrap(),
        None
    );
    assert!(!pid_file.exists());
    std::fs::write(&pid_file, "not json").unwrap();
    assert_eq!(
        drv.stop_leftover(&pid_file, Duration::from_secs(5)).await.unwrap(),
        None
    );
    assert!(!pid_file.exists());
}

/// A process whose main thread ended while another still runs shows `Z` in
/// `/proc/PID/stat`, yet its files (here a listening socket) are open: it
/// must count as live, or `stop` would return while the port is still
/// taken (a multi-threaded service killed by SIGTERM passes through the
/// same state while its last threads exit).
#[tokio::test]
async fn a_zombie_leader_with_a_running_thread_is_still_a_live_member() {
    let dir = tempfile::tempdir().unwrap();
    let drv = driver();
    let port = free_port();
    let script = format!(
        "import ctypes, socket, threading\n\
         s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {port})); s.listen()\n\
         def serve():\n    while True:\n        s.accept()[0].close()\n\
         threading.Thread(target=serve).start()\n\
         print('main thread leaves', flush=True)\n\
         ctypes.CDLL(None).pthread_exit(None)\n"
    );
    std::fs::write(dir.path().join("leader.py"), script).unwrap();
    let handle = drv
        .start(&spec(dir.path(), "exec python3 leader.py", &[]))
        .await
        .unwrap();
    let _guard = Guard(handle.clone());
    // The supervisor's only child is python (sh exec'd it); find it once
    // its main thread is gone.
    let mut python = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            python = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let rest = &stat[stat.rfind(')')? + 1..];
                let f: Vec<&str> = rest.split_whitespace().collect();
                // State (field 3), parent (field 4).
                (f[1] == handle.pid.to_string() && f[0] == "Z").then_some(pid)
            });
            python.is_some()
        })
        .await,
        "log: {}",
        read(&handle.log_path)
    );
    let python = python.unwrap();
    assert!(
        !port_closed(port),
        "the remaining thread of {python} ({:?}) still serves: {}",
        std::fs::read(format!("/proc/{python}/cmdline")),
        read(&handle.log_path)
    );
    let members = live_group_members(handle.pid);
    assert!(members.contains(&python), "{python} not in {members:?}");
    assert!(pid_alive(python, process_start_time(python).unwrap()));

    drv.stop(&handle, Duration::from_secs(5)).await.unwrap();
    assert!(port_closed(port), "stop returns once the port is free");
    assert!(no_live_members(handle.pid), "{:?}", live_group_members(handle.pid));
}
