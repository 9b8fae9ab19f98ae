//! Health check tests on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use greenroom_driver::{HealthCheck, HealthError, wait_healthy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `status` to every request until the task is aborted.
async fn serve(status: &'static str) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn closed_port_times_out_with_connection_refused() {
    let port = free_port();
    let started = Instant::now();
    let err = wait_healthy(
        &HealthCheck::Http {
            url: format!("http://127.0.0.1:{port}/health"),
        },
        Duration::from_millis(500),
        &|| true,
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    match err {
        HealthError::TimedOut { after, last } => {
            assert!(after >= Duration::from_millis(500));
            assert_eq!(last, "connection refused");
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn http_status_decides() {
    let (ok_port, ok_task) = serve("200 OK").await;
    let (bad_port, bad_task) = serve("503 Service Unavailable").await;
    let waited = wait_healthy(
        &HealthCheck::Http {
            url: format!("http://127.0.0.1:{ok_port}/"),
        },
        Duration::from_secs(5),
        &|| true,
    )
    .await
    .unwrap();
    assert!(waited < Duration::from_secs(2));
    let err = wait_healthy(
        &HealthCheck::Http {
            url: format!("http://127.0.0.1:{bad_port}/"),
        },
        Duration::from_millis(300),
        &|| true,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, HealthError::TimedOut { last, .. } if last == "HTTP 503"),
        "{err}"
    );
    ok_task.abort();
    bad_task.abort();
}

#[tokio::test]
async fn dead_process_fails_fast() {
    let port = free_port();
    let started = Instant::now();
    let err = wait_healthy(
        &HealthCheck::Http {
            url: format!("http://127.0.0.1:{port}/"),
        },
        Duration::from_secs(30),
        &|| false,
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(&err, HealthError::ProcessExited { last } if last == "connection refused"),
        "{err}"
    );
}

#[tokio::test]
async fn rejects_https() {
    let err = wait_healthy(
        &HealthCheck::Http {
            url: "https://127.0.0.1:1/".into(),
        },
        Duration::from_secs(1),
        &|| true,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HealthError::InvalidCheck { .. }), "{err}");
}

#[tokio::test]
async fn command_check_polls_until_success() {
    let dir = tempfile::tempdir().unwrap();
    // Succeeds on the third attempt; the counter file lives in cwd.
    let check = HealthCheck::Command {
        command: "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge \"$NEED\" ]".into(),
        cwd: dir.path().to_path_buf(),
        env: vec![("NEED".into(), "3".into())],
    };
    wait_healthy(&check, Duration::from_secs(10), &|| true).await.unwrap();
    assert_eq!(read(&dir.path().join("count")).trim(), "3");

    let failing = HealthCheck::Command {
        command: "exit 1".into(),
        cwd: dir.path().to_path_buf(),
        env: vec![],
    };
    let err = wait_healthy(&failing, Duration::from_millis(300), &|| true)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HealthError::TimedOut { last, .. } if last == "exit status 1"),
        "{err}"
    );
}

#[tokio::test]
async fn slow_command_check_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let check = HealthCheck::Command {
        command: "sleep 30".into(),
        cwd: dir.path().to_path_buf(),
        env: vec![],
    };
    let started = Instant::now();
    let err = wait_healthy(&check, Duration::from_millis(300), &|| true)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert!(
        matches!(&err, HealthError::TimedOut { last, .. } if last.starts_with("timed out")),
        "{err}"
    );
}
