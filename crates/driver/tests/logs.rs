//! `follow_log` tests: existing content, appended lines, rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use greenroom_driver::{follow_log, follow_log_until, log_tail};
use tokio::io::AsyncReadExt;

/// Reads from `rx` until the accumulated text contains `needle` (bounded).
async fn read_until(rx: &mut tokio::io::DuplexStream, seen: &mut String, needle: &str) {
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        while !seen.contains(needle) {
            let n = rx.read(&mut buf).await.unwrap();
            assert!(n > 0, "follower closed its output");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
    assert!(found.is_ok(), "did not see {needle:?}; saw {seen:?}");
}

fn append(path: &std::path::Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[tokio::test]
async fn without_follow_prints_content_and_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    append(&path, "one\ntwo\n");
    let mut out: Vec<u8> = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), follow_log(&path, false, &mut out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, b"one\ntwo\n");
    let missing = follow_log(&dir.path().join("missing"), false, &mut out).await;
    assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
    assert_eq!(log_tail(&path, 1).unwrap(), "two\n");
}

#[tokio::test]
async fn follow_picks_up_appends_and_rotation_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.log");
    append(&path, "first\n");
    let (mut tx, mut rx) = tokio::io::duplex(64 * 1024);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let follow_path = path.clone();
    let task = tokio::spawn(async move {
        follow_log_until(&follow_path, true, &mut tx, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let mut seen = String::new();
    read_until(&mut rx, &mut seen, "first\n").await;
    append(&path, "second\n");
    read_until(&mut rx, &mut seen, "second\n").await;
    // Rotation: the old file moves away, a new one appears at the path.
    std::fs::rename(&path, dir.path().join("b.log.1")).unwrap();
    append(&path, "third\n");
    read_until(&mut rx, &mut seen, "third\n").await;
    assert_eq!(seen, "first\nsecond\nthird\n");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
