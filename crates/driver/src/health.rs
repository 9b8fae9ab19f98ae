//! Health checks: an HTTP GET answering 2xx, or a shell command exiting 0,
//! polled with backoff until healthy, timed out, or the process died.
//!
//! Only plain `http://` URLs are supported (no TLS in this crate), proxies
//! from the environment are never used (checks target local services), and
//! every attempt is bounded in time.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::command::{Output, run_shell};

/// First pause between attempts (fast first success matters).
const FIRST_INTERVAL: Duration = Duration::from_millis(10);
/// Longest pause between attempts.
const MAX_INTERVAL: Duration = Duration::from_millis(250);
/// Limit of one HTTP attempt.
const HTTP_ATTEMPT: Duration = Duration::from_secs(2);
/// Limit of one command attempt.
const COMMAND_ATTEMPT: Duration = Duration::from_secs(30);
/// Shortest limit given to an attempt, even when the deadline is closer.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// How to tell that a component is ready. Its `Debug` shows variable names
/// only, never values.
#[derive(Clone, PartialEq, Eq)]
pub enum HealthCheck {
    /// GET this `http://` URL; healthy on a 2xx answer.
    Http {
        /// The URL, e.g. `http://127.0.0.1:8080/healthz`.
        url: String,
    },
    /// Run `sh -c <command>`; healthy when it exits 0. Output is discarded.
    Command {
        /// Shell command.
        command: String,
        /// Directory it runs in.
        cwd: PathBuf,
        /// Variables added to the inherited environment.
        env: Vec<(String, String)>,
    },
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealthCheck::Http { url } => f.debug_struct("Http").field("url", url).finish(),
            HealthCheck::Command { command, cwd, env } => f
                .debug_struct("Command")
                .field("command", command)
                .field("cwd", cwd)
                .field("env", &env.iter().map(|(k, _)| k).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Why a component never became healthy.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The deadline passed; `last` is the last failure.
    #[error("not healthy after {after:?} (last attempt: {last})")]
    TimedOut {
        /// Time waited.
        after: Duration,
        /// Last failure: "connection refused", "HTTP 503", "exit status 1"...
        last: String,
    },
    /// The component's process exited while we were waiting.
    #[error("the process exited before becoming healthy (last attempt: {last})")]
    ProcessExited {
        /// Last failure before it was found dead.
        last: String,
    },
    /// The check itself cannot work (bad URL, cannot build a client).
    #[error("invalid health check: {reason}")]
    InvalidCheck {
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// Polls `check` until it succeeds (returns the time waited), `timeout`
/// passes, or `alive()` — called after each failed attempt — returns false.
/// Pauses start at ~10 ms and back off to ~250 ms; each attempt is bounded
/// (HTTP 2 s, command min(remaining, 30 s)).
pub async fn wait_healthy(
    check: &HealthCheck,
    timeout: Duration,
    alive: &(dyn Fn() -> bool + Send + Sync),
) -> Result<Duration, HealthError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let client = match check {
        HealthCheck::Http { url } => {
            let scheme_ok = url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://"));
            if !scheme_ok {
                return Err(HealthError::InvalidCheck {
                    reason: format!("{url:?} is not an http:// URL (https is not supported for health checks)"),
                });
            }
            let client = reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(HTTP_ATTEMPT)
                .build()
                .map_err(|err| HealthError::InvalidCheck {
                    reason: format!("cannot build an HTTP client: {err}"),
                })?;
            Some(client)
        }
        HealthCheck::Command { .. } => None,
    };
    let mut interval = FIRST_INTERVAL;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let result = match (check, &client) {
            (HealthCheck::Http { url }, Some(client)) => {
                http_attempt(client, url, remaining.clamp(MIN_ATTEMPT, HTTP_ATTEMPT)).await
            }
            (HealthCheck::Command { command, cwd, env }, _) => {
                command_attempt(command, cwd, env, remaining.clamp(MIN_ATTEMPT, COMMAND_ATTEMPT)).await
            }
            (HealthCheck::Http { .. }, None) => Err("no HTTP client".to_string()),
        };
        let last = match result {
            Ok(()) => return Ok(started.elapsed()),
            Err(last) => last,
        };
        if !alive() {
            return Err(HealthError::ProcessExited { last });
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(HealthError::TimedOut {
                after: started.elapsed(),
                last,
            });
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 3 / 2).min(MAX_INTERVAL);
    }
}

async fn http_attempt(client: &reqwest::Client, url: &str, limit: Duration) -> Result<(), String> {
    match client.get(url).timeout(limit).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("HTTP {}", response.status().as_u16())),
        Err(err) => Err(describe_http_error(&err, limit)),
    }
}

/// A short, stable description: "connection refused", "timed out after 2s"...
fn describe_http_error(err: &reqwest::Error, limit: Duration) -> String {
    if err.is_timeout() {
        return format!("timed out after {limit:?}");
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
                std::io::ErrorKind::TimedOut => format!("timed out after {limit:?}"),
                _ => io.to_string(),
            };
        }
        source = current.source();
    }
    // No I/O cause: give the whole chain.
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(current) = source {
        text.push_str(": ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    text
}

async fn command_attempt(
    command: &str,
    cwd: &std::path::Path,
    env: &[(String, String)],
    limit: Duration,
) -> Result<(), String> {
    match run_shell(command, cwd, env, limit, Output::Discard).await {
        Ok(run) if run.timed_out => Err(format!("timed out after {limit:?}")),
        Ok(run) if run.status.success() => Ok(()),
        Ok(run) => Err(match (run.status.code(), run.status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => run.status.to_string(),
        }),
        Err(err) => Err(err.to_string()),
    }
}
