//! Process identity from `/proc`: start times, liveness, process groups.
//!
//! A pid alone is not an identity (pids are reused); this module pairs it with
//! the start time (field 22 of `/proc/PID/stat`, clock ticks since boot). It
//! only reads `/proc` (and asks `getpgid`); it must never signal anything.

use std::fs;

/// The fields of `/proc/PID/stat` this crate uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// One-letter state: R, S, D, Z, T, X...
    pub state: char,
    /// Process group id.
    pub pgrp: i32,
    /// Session id.
    pub session: i32,
    /// Start time in clock ticks since boot (field 22).
    pub start_time: u64,
    /// Threads of the process not yet gone (field 20), its leader included.
    pub threads: u32,
}

impl ProcStat {
    /// True for a process that has exited (zombie or dead) but may still be
    /// listed. A zombie *leader* with other threads still running (they
    /// may be exiting, the leader thread may just have ended first) is not
    /// dead: its files, a listening socket among them, are still open.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x') && self.threads <= 1
    }
}

/// Parses the content of `/proc/PID/stat`. The command name (field 2) may
/// contain spaces and parentheses, so fields are counted after the LAST `)`.
pub(crate) fn parse_stat(content: &str) -> Option<ProcStat> {
    let close = content.rfind(')')?;
    let rest = content.get(close + 1..)?;
    // After ')': field 3 (state) is index 0, so field N is index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(5 - 3)?.parse().ok()?;
    let session = fields.get(6 - 3)?.parse().ok()?;
    let threads = fields.get(20 - 3)?.parse().ok()?;
    let start_time = fields.get(22 - 3)?.parse().ok()?;
    Some(ProcStat {
        state,
        pgrp,
        session,
        start_time,
        threads,
    })
}

/// Reads and parses `/proc/PID/stat`; `None` when the process does not exist.
pub(crate) fn read_stat(pid: i32) -> Option<ProcStat> {
    if pid <= 0 {
        return None;
    }
    let content = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&content)
}

/// Start time of `pid` (field 22 of `/proc/PID/stat`, clock ticks since boot),
/// or `None` when there is no such process.
pub fn process_start_time(pid: i32) -> Option<u64> {
    read_stat(pid).map(|s| s.start_time)
}

/// True when the process `pid` exists, is the one that started at
/// `start_time`, and has not exited (a zombie counts as dead).
pub fn pid_alive(pid: i32, start_time: u64) -> bool {
    match read_stat(pid) {
        Some(stat) => stat.start_time == start_time && !stat.is_dead(),
        None => false,
    }
}

/// Pids of the processes of group `pgid` that have not exited (zombies are
/// ignored: they can no longer hold a port or write a file). Lists `/proc`
/// and asks each process's group with `getpgid`, a system call; only the
/// group's members have their stat read (for the zombie check). Reading
/// every process's stat instead costs milliseconds of kernel time per scan
/// with a few hundred processes.
pub fn live_group_members(pgid: i32) -> Vec<i32> {
    let mut members = Vec::new();
    if pgid <= 0 {
        return members;
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return members;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).is_ok_and(|g| g.as_raw() == pgid)
            && let Some(stat) = read_stat(pid)
            && stat.pgrp == pgid
            && !stat.is_dead()
        {
            members.push(pid);
        }
    }
    members
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_comm_with_spaces_and_parens() {
        let line = "1234 (we(ird) )name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 12345 67 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.pgrp, 1234);
        assert_eq!(stat.session, 1234);
        assert_eq!(stat.start_time, 987654);
        assert_eq!(stat.threads, 1);
        assert!(!stat.is_dead());
    }

    #[test]
    fn a_zombie_is_dead_only_once_its_other_threads_are_gone() {
        let zombie = |threads: u32| {
            parse_stat(&format!(
                "77 (svc) Z 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 {threads} 0 987654 0 0 18446744073709551615"
            ))
            .unwrap()
        };
        assert!(zombie(1).is_dead());
        assert!(!zombie(3).is_dead(), "its threads still hold its files");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_stat("no paren here"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
    }

    #[test]
    fn own_process_is_alive_and_wrong_start_time_is_not() {
        let pid = std::process::id() as i32;
        let start = process_start_time(pid).unwrap();
        assert!(pid_alive(pid, start));
        assert!(!pid_alive(pid, start + 1));
        assert!(!pid_alive(-1, start));
    }
}
