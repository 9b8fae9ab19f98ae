//! greenroom's drivers: how components are actually run on this machine.
//!
//! This crate owns:
//! - the `process` driver ([`ProcessDriver`]): components run as detached,
//!   supervised local processes that outlive the CLI, identified by pid *and*
//!   start time, stopped with their whole process group;
//! - the supervisor itself ([`supervise_main`]), which the greenroom binary
//!   runs for its hidden `__supervise` subcommand;
//! - the `command` driver's primitive ([`run_command`]): a config author's
//!   deploy/stop/health shell command run in the foreground with a timeout;
//! - health checks ([`wait_healthy`]), log redaction ([`Redactor`]) and log
//!   reading helpers ([`log_tail`], [`follow_log`]).
//!
//! It must never splice outside values (refs, PR data) into a shell command:
//! those travel only as environment variables. It must never signal a process
//! it cannot prove is its own (pid + start time), and never write a known
//! secret value to a log file.

mod command;
mod health;
mod logs;
mod process;
mod procfs;
mod redact;
mod supervisor;

pub use command::{CommandOutcome, CommandSpec, run_command};
pub use health::{HealthCheck, HealthError, wait_healthy};
pub use logs::{follow_log, follow_log_until, log_tail};
pub use process::{ProcState, ProcessDriver, ProcessHandle, StartSpec};
pub use procfs::{live_group_members, pid_alive, process_start_time};
pub use redact::Redactor;
pub use supervisor::supervise_main;

/// Errors of the drivers. Each says what failed, on what, and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A program could not be started at all.
    #[error("could not start {what}: {source}")]
    Spawn {
        /// What we tried to start (program, component, cwd).
        what: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The supervisor ran but reported a failure or produced unusable output.
    #[error("supervisor failed: {message}")]
    Supervisor {
        /// What went wrong, including the supervisor's own stderr when available.
        message: String,
    },
    /// A filesystem or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing, on which path or pid.
        context: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}
