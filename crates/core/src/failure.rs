//! Classifying a failed cycle (issue #4 point 6): an infrastructure error
//! is retried and never blamed on a PR; a code failure is what the deployed
//! software did, and only a code failure starts a culprit search.
//!
//! The rules, from what the driver and the gates observed:
//!
//! - Any user command (build, deploy, suite) that exits with status 75
//!   (`EX_TEMPFAIL` from sysexits.h, "temporary failure, try again") says
//!   it failed for reasons outside the code: infrastructure. This is how a
//!   build machine, a registry or a deploy tool reports its own trouble.
//! - A build or deploy command that cannot be run at all, or that times
//!   out, is infrastructure (the machine, not the commit); any other build
//!   or deploy failure is code.
//! - A health check that timed out without ever getting an answer
//!   (connection refused, no response) is infrastructure; one that got
//!   answers saying unhealthy (an HTTP error status, a failing check
//!   command), or a process that exited while being checked, is code.
//! - A suite (gate) that fails is code, unless it said infrastructure
//!   (status 75).
//! - Anything greenroom itself could not do (its store, its disk, a lease)
//!   is infrastructure.
//!
//! Pure: no I/O.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The exit status that marks a temporary, infrastructure failure.
pub const EX_TEMPFAIL: i32 = 75;

/// Whose fault a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Outside the code: retried with backoff, never blamed on a PR.
    Infra,
    /// The deployed software: may start a culprit search.
    Code,
}

impl Class {
    /// `infra` or `code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Infra => "infra",
            Class::Code => "code",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a user command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Exit status, when it exited normally.
    pub code: Option<i32>,
    /// It hit its timeout.
    pub timed_out: bool,
}

/// What was observed to fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed<'a> {
    /// A build command ended unsuccessfully.
    Build(Exit),
    /// A deploy command (command driver) ended unsuccessfully.
    DeployCommand(Exit),
    /// A build or deploy could not be started (fetch, checkout, spawn).
    CouldNotRun,
    /// The health check's deadline passed; `last` is its last attempt as
    /// the driver reports it (`HTTP 503`, `connection refused`, ...).
    HealthTimedOut {
        /// The last attempt.
        last: &'a str,
    },
    /// The process exited while its health was being checked.
    ProcessExited,
    /// A suite failed.
    Suite(Exit),
    /// greenroom itself failed (store, disk, lease).
    Internal,
}

/// The class of a failure and a sentence saying why.
pub fn classify(o: &Observed<'_>) -> (Class, String) {
    let tempfail = |e: &Exit| e.code == Some(EX_TEMPFAIL);
    match o {
        Observed::Build(e) | Observed::DeployCommand(e) | Observed::Suite(e) if tempfail(e) => (
            Class::Infra,
            format!("the command reported a temporary failure (exit status {EX_TEMPFAIL}, EX_TEMPFAIL)"),
        ),
        Observed::Build(e) if e.timed_out => (Class::Infra, "the build timed out".into()),
        Observed::Build(_) => (Class::Code, "the build failed".into()),
        Observed::DeployCommand(e) if e.timed_out => (Class::Infra, "the deploy command timed out".into()),
        Observed::DeployCommand(_) => (Class::Code, "the deploy command failed".into()),
        Observed::CouldNotRun => (Class::Infra, "the command could not be run".into()),
        Observed::HealthTimedOut { last } if answered(last) => (
            Class::Code,
            format!("the component answered its health check but never healthy (last: {last})"),
        ),
        Observed::HealthTimedOut { last } => (
            Class::Infra,
            format!("the health check timed out without an answer (last: {last})"),
        ),
        Observed::ProcessExited => (Class::Code, "the component exited before it became healthy".into()),
        Observed::Suite(e) if e.timed_out => (Class::Code, "the suite timed out".into()),
        Observed::Suite(_) => (Class::Code, "the suite failed".into()),
        Observed::Internal => (Class::Infra, "greenroom could not carry out the cycle".into()),
    }
}

/// Whether a health attempt got an answer from the component: an HTTP
/// status, or a check command's own exit status.
fn answered(last: &str) -> bool {
    let l = last.trim_start();
    l.starts_with("HTTP ") || l.starts_with("exit status")
}

/// The wait before retrying after `attempt` infrastructure failures in a
/// row (1 = the first): `base` doubled each time, at most `max`.
pub fn retry_delay(base_ms: i64, max_ms: i64, attempt: u32) -> i64 {
    let shift = attempt.saturating_sub(1).min(30);
    base_ms.max(0).saturating_mul(1i64 << shift).min(max_ms.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exit(code: i32) -> Exit {
        Exit {
            code: Some(code),
            timed_out: false,
        }
    }

    #[test]
    fn the_rules() {
        let timeout = Exit {
            code: None,
            timed_out: true,
        };
        let cases: &[(Observed<'_>, Class)] = &[
            (Observed::Build(exit(1)), Class::Code),
            (Observed::Build(exit(75)), Class::Infra),
            (Observed::Build(timeout), Class::Infra),
            (Observed::DeployCommand(exit(2)), Class::Code),
            (Observed::DeployCommand(exit(75)), Class::Infra),
            (Observed::DeployCommand(timeout), Class::Infra),
            (Observed::CouldNotRun, Class::Infra),
            (Observed::HealthTimedOut { last: "HTTP 503" }, Class::Code),
            (Observed::HealthTimedOut { last: "exit status 1" }, Class::Code),
            (
                Observed::HealthTimedOut {
                    last: "connection refused",
                },
                Class::Infra,
            ),
            (
                Observed::HealthTimedOut {
                    last: "no answer within 2s",
                },
                Class::Infra,
            ),
            (Observed::ProcessExited, Class::Code),
            (Observed::Suite(exit(1)), Class::Code),
            (Observed::Suite(exit(75)), Class::Infra),
            (Observed::Suite(timeout), Class::Code),
            (Observed::Internal, Class::Infra),
        ];
        for (o, want) in cases {
            let (got, why) = classify(o);
            assert_eq!(got, *want, "{o:?}: {why}");
            assert!(!why.is_empty());
        }
        assert_eq!(Class::Infra.to_string(), "infra");
        assert_eq!(serde_json::to_string(&Class::Code).expect("serializes"), "\"code\"");
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let d: Vec<i64> = (1..=6).map(|a| retry_delay(1_000, 10_000, a)).collect();
        assert_eq!(d, vec![1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(retry_delay(1_000, 10_000, 0), 1_000);
    }

    proptest! {
        #[test]
        fn retry_delay_is_monotonic_and_bounded(base in 0i64..10_000_000, max in 0i64..100_000_000, a in 0u32..100) {
            let d = retry_delay(base, max, a);
            prop_assert!(d >= 0 && d <= max.max(0));
            prop_assert!(retry_delay(base, max, a + 1) >= d);
        }

        #[test]
        fn tempfail_is_always_infrastructure(timed_out in any::<bool>()) {
            let e = Exit { code: Some(EX_TEMPFAIL), timed_out };
            for o in [Observed::Build(e), Observed::DeployCommand(e), Observed::Suite(e)] {
                prop_assert_eq!(classify(&o).0, Class::Infra);
            }
        }
    }
}
