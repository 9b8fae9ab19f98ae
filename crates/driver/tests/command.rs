//! `run_command` tests: real shell commands in their own process groups.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use greenroom_driver::{CommandSpec, DriverError, run_command};

fn cmd(dir: &Path, command: &str, timeout: Duration) -> CommandSpec {
    CommandSpec {
        command: command.into(),
        cwd: dir.to_path_buf(),
        env: vec![("FOO".into(), "bar".into()), ("PW".into(), "hunter2-secret".into())],
        secret_values: vec!["hunter2-secret".into()],
        log_path: dir.join("logs/deploy.log"),
        timeout,
    }
}

#[tokio::test]
async fn success_env_cwd_and_redacted_log() {
    let dir = tempfile::tempdir().unwrap();
    let spec = cmd(
        dir.path(),
        "echo hello; echo \"v=$FOO\"; echo \"pw=$PW\" >&2; pwd",
        Duration::from_secs(10),
    );
    let out = run_command(&spec).await.unwrap();
    assert!(out.success && !out.timed_out, "{out:?}");
    assert_eq!(out.code, Some(0));
    let log = read(&spec.log_path);
    assert!(log.contains("hello\nv=bar\n"), "log: {log}");
    assert!(log.contains("pw=[redacted]"), "log: {log}");
    assert!(!log.contains("hunter2-secret"), "log: {log}");
    assert!(log.contains(dir.path().to_str().unwrap()), "log: {log}");
    // Appends.
    run_command(&cmd(dir.path(), "echo again", Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(read(&spec.log_path).contains("hello\n") && read(&spec.log_path).ends_with("again\n"));
}

#[tokio::test]
async fn failure_code_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(&cmd(dir.path(), "echo failing; exit 7", Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(!out.success && !out.timed_out);
    assert_eq!(out.code, Some(7));
    assert_eq!(out.signal, None);
}

#[tokio::test]
async fn timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pgid");
    let spec = cmd(
        dir.path(),
        &format!("echo $$ > {}; sleep 30 & sleep 30", pidfile.display()),
        Duration::from_millis(300),
    );
    let out = run_command(&spec).await.unwrap();
    assert!(out.timed_out && !out.success, "{out:?}");
    assert!(out.duration < Duration::from_secs(4), "{out:?}");
    let pgid: i32 = read(&pidfile).trim().parse().unwrap();
    assert!(
        eventually(Duration::from_secs(3), || no_live_members(pgid)).await,
        "{:?}",
        greenroom_driver::live_group_members(pgid)
    );
}

#[tokio::test]
async fn timeout_escalates_to_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pgid");
    let spec = cmd(
        dir.path(),
        &format!(
            "trap '' TERM; echo $$ > {}; sleep 30 & sleep 30; echo survived",
            pidfile.display()
        ),
        Duration::from_millis(200),
    );
    let out = run_command(&spec).await.unwrap();
    assert!(out.timed_out, "{out:?}");
    assert!(out.duration < Duration::from_secs(5), "{out:?}");
    assert_eq!(out.signal, Some(9), "{out:?}");
    let pgid: i32 = read(&pidfile).trim().parse().unwrap();
    assert!(eventually(Duration::from_secs(3), || no_live_members(pgid)).await);
    assert!(!read(&spec.log_path).contains("survived"));
}

#[tokio::test]
async fn missing_cwd_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = cmd(dir.path(), "true", Duration::from_secs(5));
    spec.cwd = dir.path().join("nope");
    let err = run_command(&spec).await.unwrap_err();
    assert!(matches!(err, DriverError::Spawn { .. }), "{err}");
}
