//! Helpers shared by the integration tests: deadlines, free ports, and a guard
//! that kills a started component's process group even when a test fails.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use greenroom_driver::{ProcessDriver, ProcessHandle, StartSpec, live_group_members};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

pub fn driver() -> ProcessDriver {
    ProcessDriver::new(vec![OsString::from(env!("CARGO_BIN_EXE_greenroom-supervisor"))])
}

pub fn spec(dir: &Path, command: &str, env: &[(&str, &str)]) -> StartSpec {
    StartSpec {
        environment: "test".into(),
        component: "web".into(),
        command: command.into(),
        cwd: dir.to_path_buf(),
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        secret_values: Vec::new(),
        log_path: dir.join("logs/web.log"),
        pid_file: None,
    }
}

/// Kills the component's group on drop (test failure or success alike).
pub struct Guard(pub ProcessHandle);

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = self.0.pid;
        match greenroom_driver::process_start_time(pid) {
            Some(start) if start != self.0.start_time => {} // reused: not ours
            _ => {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// Polls `cond` until true or `within` passes; returns whether it became true.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Nothing listens on `port`. A connection to itself does not count: with
/// no listener, Linux may pick the destination port as the source port of
/// a loopback connect, which then "succeeds" (TCP simultaneous open).
pub fn port_closed(port: u16) -> bool {
    match std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    ) {
        Err(_) => true,
        Ok(s) => s.local_addr().ok() == s.peer_addr().ok(),
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub fn no_live_members(pgid: i32) -> bool {
    live_group_members(pgid).is_empty()
}
