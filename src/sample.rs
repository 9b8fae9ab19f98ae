//! The sample service of the quick start and the tests: a tiny HTTP server
//! that reports which commit it was built from.
//!
//! It is a stand-in for a team's real component, run by the process driver
//! as `greenroom sample-service`. It reads `.greenroom-built` (written by
//! the sample build command from `GREENROOM_COMMIT`) in its working
//! directory. `GET /` answers JSON with the component, commit and
//! environment; `GET /healthz` answers 200, or 503 when the checkout has a
//! file named `BROKEN` (how the quick start plants a PR that breaks its
//! health check), or a file `BROKEN_TARGET` naming the fleet target it runs
//! as (`GREENROOM_TARGET`). Not part of greenroom's own logic.
//!
//! It also speaks a small GitLab-runner-like API (seed 004), with state in
//! memory shared by all connections, for the quick start's API scenario
//! matrix: `POST /api/v4/runners` (`{"runner_type", "age"}` -> 201 `{"id",
//! "token"}`), `POST /api/v4/runners/verify` (`{"token"}` -> 200),
//! `POST /api/v4/jobs/request` (`{"token"}` -> 204: no job) and `DELETE
//! /api/v4/runners` (`{"token"}` or `?token=` -> 204); an unknown token is
//! 403. Its planted defect, seed 004's incident: verifying a *stale*
//! `group_type` runner answers 500 with a foreign-key violation, unless the
//! checkout has a file `RUNNER_FK_FIX`. Request bodies are read up to
//! [`MAX_BODY`] bytes (413 beyond).

use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Largest request body the sample service reads.
pub const MAX_BODY: usize = 64 * 1024;

/// A registered runner.
#[derive(Debug, Clone)]
struct Runner {
    id: u64,
    runner_type: String,
    age: String,
}

/// The runner API's state, shared by every connection.
#[derive(Debug, Default)]
struct Runners {
    next_id: u64,
    by_token: HashMap<String, Runner>,
}

type Shared = Arc<Mutex<Runners>>;

/// Serves until killed.
pub async fn serve(port: u16, dir: PathBuf) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    println!("sample service listening on 127.0.0.1:{port}");
    let state: Shared = Arc::default();
    loop {
        let (mut sock, _) = listener.accept().await.context("accept")?;
        let dir = dir.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Some((head, body)) = read_request(&mut sock).await else {
                return;
            };
            let req = String::from_utf8_lossy(&head);
            let mut words = req.split_whitespace();
            let method = words.next().unwrap_or("GET").to_string();
            let path = words.next().unwrap_or("/").to_string();
            let (status, body) = match body {
                Some(body) => respond(&method, &path, &body, &dir, &state),
                None => ("413 Payload Too Large", "{\"error\":\"body too large\"}".to_string()),
            };
            let resp = if status.starts_with("204") {
                format!("HTTP/1.1 {status}\r\nconnection: close\r\n\r\n")
            } else {
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

/// Reads a request: its head (up to the blank line) and its body as
/// `Content-Length` says (`None` when larger than [`MAX_BODY`]). `None`
/// overall when the peer went away.
async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    // Read up to the end of the headers: a request may arrive in
    // several segments, and closing with unread data resets the connection.
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    let end = loop {
        if let Some(i) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if n == buf.len() {
            break n;
        }
        match sock.read(&mut buf[n..]).await {
            Ok(0) => break n,
            Ok(m) => n += m,
            Err(_) => return None,
        }
    };
    let head = buf[..end.min(n)].to_vec();
    let text = String::from_utf8_lossy(&head);
    let length: usize = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Some((head, None));
    }
    let mut body = buf[end.min(n)..n].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(8192)];
        match sock.read(&mut chunk).await {
            Ok(0) => break,
            Ok(m) => body.extend_from_slice(&chunk[..m]),
            Err(_) => return None,
        }
    }
    body.truncate(length);
    Some((head, Some(body)))
}

fn respond(method: &str, path: &str, body: &[u8], dir: &Path, state: &Shared) -> (&'static str, String) {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    if route.starts_with("/api/v4/") {
        return runner_api(method, route, query, body, dir, state);
    }
    respond_get(path, dir)
}

fn json_error(status: &'static str, message: &str) -> (&'static str, String) {
    (status, serde_json::json!({ "error": message }).to_string())
}

/// The GitLab-runner-like API (see the module documentation).
fn runner_api(
    method: &str,
    route: &str,
    query: &str,
    body: &[u8],
    dir: &Path,
    state: &Shared,
) -> (&'static str, String) {
    let json: serde_json::Value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return json_error("400 Bad Request", &format!("body is not JSON: {e}")),
        }
    };
    let field = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let query_token = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.to_string());
    let token = field("token").or(query_token);
    // A poisoned lock only means another connection panicked: the map is still usable.
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    match (method, route) {
        ("POST", "/api/v4/runners") => {
            let (Some(runner_type), Some(age)) = (field("runner_type"), field("age")) else {
                return json_error("400 Bad Request", "runner_type and age are required");
            };
            if !["instance_type", "group_type", "project_type"].contains(&runner_type.as_str()) {
                return json_error("400 Bad Request", "runner_type does not have a valid value");
            }
            if !["fresh", "stale"].contains(&age.as_str()) {
                return json_error("400 Bad Request", "age must be fresh or stale");
            }
            st.next_id += 1;
            let id = st.next_id;
            let token = format!("glrt-{id:04}{}", &runner_type[..1]);
            st.by_token.insert(
                token.clone(),
                Runner {
                    id,
                    runner_type: runner_type.clone(),
                    age: age.clone(),
                },
            );
            (
                "201 Created",
                serde_json::json!({ "id": id, "token": token, "runner_type": runner_type, "age": age }).to_string(),
            )
        }
        ("POST", "/api/v4/runners/verify") => {
            let Some(r) = token.as_ref().and_then(|t| st.by_token.get(t)) else {
                return json_error("403 Forbidden", "403 Forbidden - invalid token");
            };
            // Seed 004's incident: a stale group runner is in ci_runners but
            // not in the new partitioned table, so its manager's upsert fails.
            if r.runner_type == "group_type" && r.age == "stale" && !dir.join("RUNNER_FK_FIX").exists() {
                return json_error(
                    "500 Internal Server Error",
                    &format!(
                        "ForeignKeyViolation: insert or update on table \"group_type_ci_runner_machines_687967fa8a\" \
                         violates foreign key constraint \"fk_rails_3f92913d27\": Key (runner_id, runner_type)=({}, 2) \
                         is not present in table \"group_type_ci_runners_e59bb2812d\" (ci_runner_namespaces)",
                        r.id
                    ),
                );
            }
            (
                "200 OK",
                serde_json::json!({ "id": r.id, "runner_type": r.runner_type, "status": "online" }).to_string(),
            )
        }
        ("POST", "/api/v4/jobs/request") => {
            if token.as_ref().is_none_or(|t| !st.by_token.contains_key(t)) {
                return json_error("403 Forbidden", "403 Forbidden - invalid token");
            }
            // No job is ever queued: "no content", as GitLab answers then.
            ("204 No Content", String::new())
        }
        ("DELETE", "/api/v4/runners") => match token.and_then(|t| st.by_token.remove(&t)) {
            Some(_) => ("204 No Content", String::new()),
            None => json_error("403 Forbidden", "403 Forbidden - invalid token"),
        },
        _ => json_error("404 Not Found", "not found"),
    }
}

/// Whether this copy is a fleet target the checkout marks broken: a file
/// `BROKEN_TARGET` lists target names, one per line, and this copy runs as
/// one of them (`GREENROOM_TARGET`; how the fleet tests fail one target).
fn broken_target(dir: &Path) -> bool {
    let Ok(me) = std::env::var("GREENROOM_TARGET") else {
        return false;
    };
    std::fs::read_to_string(dir.join("BROKEN_TARGET"))
        .is_ok_and(|s| !me.is_empty() && s.lines().any(|l| l.trim() == me))
}

fn respond_get(path: &str, dir: &Path) -> (&'static str, String) {
    let commit = std::fs::read_to_string(dir.join(".greenroom-built"))
        .unwrap_or_default()
        .trim()
        .to_string();
    match path {
        "/healthz" => {
            if dir.join("BROKEN").exists() || broken_target(dir) {
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
        // The error watch's tests: `GET /api/log?line=TEXT` prints TEXT
        // (percent-decoded) as a line of the service's output, its log.
        p if p.starts_with("/api/log?") => log_line(p),
        _ => ("404 Not Found", "{\"error\":\"not found\"}".to_string()),
    }
}

/// Prints the `line` query parameter of `/api/log?line=…` to stdout.
fn log_line(path: &str) -> (&'static str, String) {
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    let Some(raw) = query.split('&').find_map(|kv| kv.strip_prefix("line=")) else {
        return ("400 Bad Request", "{\"error\":\"line= is missing\"}".to_string());
    };
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    let line = String::from_utf8_lossy(&out).replace(['\n', '\r'], " ");
    println!("{line}");
    ("200 OK", "{\"logged\":true}".to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn the_runner_api_keeps_state_reads_bodies_and_plants_one_defect() {
        let dir = tempfile::tempdir().expect("tmp");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let server = tokio::spawn(serve(port, dir.path().to_path_buf()));
        let base = format!("http://127.0.0.1:{port}");
        let c = reqwest::Client::builder().no_proxy().build().expect("client");
        let post = |path: &str, body: serde_json::Value| {
            c.post(format!("{base}{path}"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
        };
        // The listener may take a moment.
        let mut registered = None;
        for _ in 0..100 {
            if let Ok(r) = post(
                "/api/v4/runners",
                serde_json::json!({"runner_type": "group_type", "age": "stale"}),
            )
            .await
            {
                registered = Some(r);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let r = registered.expect("the service answers");
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = serde_json::from_str(&r.text().await.expect("body")).expect("json");
        let stale = v["token"].as_str().expect("token").to_string();
        let r = post(
            "/api/v4/runners",
            serde_json::json!({"runner_type": "group_type", "age": "fresh"}),
        )
        .await
        .expect("register");
        let fresh = serde_json::from_str::<serde_json::Value>(&r.text().await.expect("body")).expect("json")["token"]
            .as_str()
            .expect("token")
            .to_string();
        // The planted defect: only the stale group runner.
        let r = post("/api/v4/runners/verify", serde_json::json!({ "token": stale }))
            .await
            .expect("verify");
        assert_eq!(r.status(), 500);
        assert!(r.text().await.expect("body").contains("ForeignKeyViolation"));
        let r = post("/api/v4/runners/verify", serde_json::json!({ "token": fresh }))
            .await
            .expect("verify");
        assert_eq!(r.status(), 200);
        // Fixed by a file in the checkout.
        std::fs::write(dir.path().join("RUNNER_FK_FIX"), "").expect("fix");
        let r = post("/api/v4/runners/verify", serde_json::json!({ "token": stale }))
            .await
            .expect("verify");
        assert_eq!(r.status(), 200);
        let r = post("/api/v4/jobs/request", serde_json::json!({ "token": stale }))
            .await
            .expect("jobs");
        assert_eq!(r.status(), 204);
        // Deleted by query; then the token is unknown.
        let r = c
            .delete(format!("{base}/api/v4/runners?token={stale}"))
            .send()
            .await
            .expect("delete");
        assert_eq!(r.status(), 204);
        let r = post("/api/v4/runners/verify", serde_json::json!({ "token": stale }))
            .await
            .expect("verify");
        assert_eq!(r.status(), 403);
        let r = post(
            "/api/v4/runners",
            serde_json::json!({"runner_type": "nope", "age": "fresh"}),
        )
        .await
        .expect("register");
        assert_eq!(r.status(), 400);
        // Bodies are bounded (announced larger: refused before reading them).
        {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            let head = format!(
                "POST /api/v4/runners HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
                MAX_BODY + 1
            );
            s.write_all(head.as_bytes()).await.expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("read");
            assert!(out.starts_with("HTTP/1.1 413"), "{out}");
        }
        // The old endpoints are unchanged.
        let r = c.get(format!("{base}/api/check")).send().await.expect("check");
        assert_eq!(r.status(), 200);
        server.abort();
    }
}
