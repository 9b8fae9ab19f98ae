//! The sample service of the quick start and the tests: a tiny HTTP server
//! that reports which commit it was built from.
//!
//! It is a stand-in for a team's real component, run by the process driver
//! as `greenroom sample-service`. It reads `.greenroom-built` (written by
//! the sample build command from `GREENROOM_COMMIT`) in its working
//! directory. `GET /` answers JSON with the component, commit and
//! environment; `GET /healthz` answers 200, or 503 when the checkout has a
//! file named `BROKEN` (how the quick start plants a PR that breaks its
//! health check). Not part of greenroom's own logic.

use anyhow::Context;
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves until killed.
pub async fn serve(port: u16, dir: PathBuf) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    println!("sample service listening on 127.0.0.1:{port}");
    loop {
        let (mut sock, _) = listener.accept().await.context("accept")?;
        let dir = dir.clone();
        tokio::spawn(async move {
            // Read up to the end of the headers: a request may arrive in
            // several segments, and closing with unread data resets the connection.
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf[n..]).await {
                    Ok(0) => break,
                    Ok(m) => n += m,
                    Err(_) => return,
                }
            }
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, body) = respond(&path, &dir);
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

fn respond(path: &str, dir: &std::path::Path) -> (&'static str, String) {
    let commit = std::fs::read_to_string(dir.join(".greenroom-built"))
        .unwrap_or_default()
        .trim()
        .to_string();
    match path {
        "/healthz" => {
            if dir.join("BROKEN").exists() {
                ("503 Service Unavailable", "{\"healthy\":false}".to_string())
            } else {
                ("200 OK", "{\"healthy\":true}".to_string())
            }
        }
        "/" | "/version" => {
            let body = serde_json::json!({
                "component": std::env::var("GREENROOM_COMPONENT").unwrap_or_default(),
                "commit": commit,
                "environment": std::env::var("GREENROOM_ENV").unwrap_or_default(),
                "cycle": std::env::var("GREENROOM_CYCLE").unwrap_or_default(),
            });
            ("200 OK", body.to_string())
        }
        // An API that a change can break without breaking /healthz: a code
        // failure for the suites to find (an `API_BUG` file plants it).
        // Two changes that are harmless alone break it together: a cache
        // turned on (`CACHE_ENABLED`) with a zero time to live
        // (`CACHE_TTL_ZERO`).
        "/api/check" => {
            if dir.join("API_BUG").exists() {
                (
                    "500 Internal Server Error",
                    "{\"error\":\"ForeignKeyViolation: runner not found\"}".to_string(),
                )
            } else if dir.join("CACHE_ENABLED").exists() && dir.join("CACHE_TTL_ZERO").exists() {
                (
                    "500 Internal Server Error",
                    "{\"error\":\"division by zero: cache ttl\"}".to_string(),
                )
            } else {
                ("200 OK", "{\"ok\":true}".to_string())
            }
        }
        _ => ("404 Not Found", "{\"error\":\"not found\"}".to_string()),
    }
}
