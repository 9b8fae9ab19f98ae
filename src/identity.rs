//! Who is asking, and which process this is.
//!
//! A lease holder is a person or process identity (`--as NAME`, by default
//! `user@host`). Leases and cycles held by a running process also record
//! its pid and start time, so that a holder that died (kill -9) is noticed
//! before its lease expires, without ever mistaking a reused pid for it.

use greenroom_core::lease::HolderProcess;

/// This machine's host name.
pub fn host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The default holder name: `user@host`.
pub fn default_holder() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| format!("uid{}", nix::unistd::getuid()));
    format!("{user}@{}", host())
}

/// This process, as recorded in leases, queue tickets and cycles.
pub fn this_process() -> HolderProcess {
    let pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    HolderProcess {
        host: host(),
        pid,
        start_time: greenroom_driver::process_start_time(pid).unwrap_or(0),
    }
}

/// Whether a recorded process is alive: `Some` when it ran on this host
/// (so /proc can tell), `None` when it cannot be known from here.
pub fn alive(p: &HolderProcess) -> Option<bool> {
    if p.host != host() {
        return None;
    }
    Some(greenroom_driver::pid_alive(p.pid, p.start_time))
}
