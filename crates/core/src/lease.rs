//! Lease decisions: may this holder take, keep or reclaim an environment?
//!
//! A lease is an exclusive hold of one environment instance with a holder,
//! a reason, an expiry and a fencing token that grows with every
//! acquisition. Leases held by a running process (a deploy in progress,
//! `greenroom lease -- CMD`) record that process; when it is known to be
//! dead the lease can be reclaimed before it expires. Pure: whether a pid
//! is alive is found out by the caller and passed in.

use crate::time::{self, Millis};
use serde::{Deserialize, Serialize};

/// The process a lease is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderProcess {
    /// Host name it runs on.
    pub host: String,
    /// Process id.
    pub pid: i32,
    /// Start time (clock ticks since boot), so a reused pid is not mistaken for it.
    pub start_time: u64,
}

/// A lease as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Environment instance (`staging`, `dev-2`).
    pub environment: String,
    /// Who holds it (`alice@laptop`, a user name).
    pub holder: String,
    /// Why.
    pub reason: String,
    /// When it was taken.
    pub since: Millis,
    /// When it ends unless extended.
    pub expires: Millis,
    /// Fencing token: strictly increasing per environment.
    pub token: i64,
    /// The process holding it, when it is bound to one.
    pub process: Option<HolderProcess>,
}

/// Why a held lease may be taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclaim {
    /// Past its expiry.
    Expired,
    /// Its holding process is gone.
    HolderDied,
}

/// Where a would-be holder stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Nobody holds it.
    Free,
    /// The asker holds it (and it has not expired).
    Mine,
    /// Someone else holds it.
    Held,
    /// Someone holds it but it may be taken over.
    Reclaimable(Reclaim),
}

/// Decides where `me` stands. `holder_alive` is whether the lease's
/// process is alive, when the caller could tell (same host); `None` when
/// unknown or not process-bound.
pub fn assess(lease: Option<&Lease>, me: &str, now: Millis, holder_alive: Option<bool>) -> Standing {
    let Some(l) = lease else { return Standing::Free };
    if now >= l.expires {
        return Standing::Reclaimable(Reclaim::Expired);
    }
    if l.process.is_some() && holder_alive == Some(false) {
        return Standing::Reclaimable(Reclaim::HolderDied);
    }
    if l.holder == me { Standing::Mine } else { Standing::Held }
}

/// Whether `me` may act under or take the lease.
pub fn may_take(standing: &Standing) -> bool {
    !matches!(standing, Standing::Held)
}

/// One line for people: who, why, since and until when.
pub fn describe(l: &Lease, now: Millis) -> String {
    let process = match &l.process {
        Some(p) => format!(", process {} on {}", p.pid, p.host),
        None => String::new(),
    };
    format!(
        "held by {} since {} ({}) until {} ({}){}: {}",
        l.holder,
        time::format(l.since),
        time::relative(l.since, now),
        time::format(l.expires),
        time::relative(l.expires, now),
        process,
        if l.reason.is_empty() {
            "no reason given"
        } else {
            &l.reason
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lease(holder: &str, expires: Millis, process: bool) -> Lease {
        Lease {
            environment: "staging".into(),
            holder: holder.into(),
            reason: "debugging #614".into(),
            since: 0,
            expires,
            token: 1,
            process: process.then(|| HolderProcess {
                host: "h".into(),
                pid: 42,
                start_time: 7,
            }),
        }
    }

    #[test]
    fn standings() {
        assert_eq!(assess(None, "me", 0, None), Standing::Free);
        let l = lease("alice", 1000, false);
        assert_eq!(assess(Some(&l), "bob", 10, None), Standing::Held);
        assert_eq!(assess(Some(&l), "alice", 10, None), Standing::Mine);
        assert_eq!(
            assess(Some(&l), "bob", 1000, None),
            Standing::Reclaimable(Reclaim::Expired)
        );
        let p = lease("alice", 1000, true);
        assert_eq!(assess(Some(&p), "bob", 10, Some(true)), Standing::Held);
        assert_eq!(
            assess(Some(&p), "bob", 10, Some(false)),
            Standing::Reclaimable(Reclaim::HolderDied)
        );
        assert_eq!(assess(Some(&p), "bob", 10, None), Standing::Held);
        assert!(!may_take(&Standing::Held));
        assert!(may_take(&Standing::Mine));
    }

    #[test]
    fn description_names_holder_reason_and_expiry() {
        let l = lease("alice@laptop", 7_200_000, false);
        assert_eq!(
            describe(&l, 60_000),
            "held by alice@laptop since 1970-01-01T00:00:00Z (1m ago) until 1970-01-01T02:00:00Z (in 1h 59m): debugging #614"
        );
    }

    proptest! {
        #[test]
        fn another_holder_never_gets_a_live_unexpired_lease(
            expires in 1i64..1_000_000, now in 0i64..1_000_000, process: bool, alive: bool,
        ) {
            let l = lease("alice", expires, process);
            let s = assess(Some(&l), "bob", now, Some(alive));
            if now < expires && (!process || alive) {
                prop_assert_eq!(s, Standing::Held);
            } else {
                prop_assert!(may_take(&s));
            }
        }
    }
}
