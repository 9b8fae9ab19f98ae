//! Package feeds (issue #5 point 5): a component follows the versions an
//! `http-json` feed publishes, served here by a tiny local HTTP server.
//! `greenroom serve` polls it: a new version deploys, an older one that
//! appears later does not (a decision says why), nothing deploys while the
//! environment is paused and the newest deploys once it is resumed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pending::{decisions, serve, server_port};
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

const INDEX: u16 = 68;

/// Serves `file`'s current content as JSON at any path, until the test ends.
fn feed_server(port: u16, file: PathBuf) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the feed server");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let body = std::fs::read_to_string(&file).unwrap_or_else(|_| "[]".into());
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

fn deployed(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("deployed.txt"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn new_feed_versions_deploy_and_older_ones_never_do() {
    let sb = Sandbox::empty(INDEX);
    let feed_port = sb.port_base + 80;
    let versions = sb.root.join("versions.json");
    std::fs::write(&versions, r#"["0.9.0", "1.0.0", "latest"]"#).expect("write");
    feed_server(feed_port, versions.clone());
    let log = sb.root.join("deployed.txt");
    let deploy = format!(
        "printf '%s %s\\n' \"$GREENROOM_REF\" \"$GREENROOM_IMAGE\" >> {}",
        sh_quote(&log.display().to_string())
    );
    let cfg = format!(
        "state_dir = {state}\nport_base = {base}\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [policy]\nsettle = \"0s\"\ncooldown = \"0s\"\n\n[package]\nwebhook_secret = \"file:{root}/package.secret\"\n\n\
         [[user]]\nname = \"watcher\"\ntoken = \"file:{root}/watcher.token\"\nrole = \"viewer\"\n\n\
         [[component]]\nname = \"api\"\n\
         feed = {{ kind = \"http-json\", url = \"http://127.0.0.1:{feed_port}/api/versions.json\", poll = \"1s\" }}\n\
         deploy = {deploy}\nstop = \"true\"\n\n\
         [[environment]]\nname = \"staging\"\ndriver = \"command\"\n",
        state = toml_str(&sb.state.display().to_string()),
        base = sb.port_base,
        port = server_port(INDEX),
        root = sb.root.display(),
        deploy = toml_str(&deploy),
    );
    sb.write_config(&cfg);
    std::fs::write(sb.root.join("watcher.token"), "watcher-token-5be1d2a9").expect("token");
    std::fs::write(sb.root.join("package.secret"), PACKAGE_SECRET).expect("secret");
    sb.ok(&["check-config"]);
    // By hand, a feed component takes a version (`api=version:V`).
    let err = sb.run(&["deploy", "--env", "staging"]);
    assert_ne!(err.code, 0);
    assert!(err.all().contains("follows a package feed"), "{}", err.all());

    let server = serve(&sb, INDEX);
    // The first poll: the newest version deploys ("latest" is no version).
    long_wait("1.0.0 to deploy", || {
        deployed(&sb.root).iter().any(|l| l == "1.0.0 api=1.0.0").then_some(())
    });
    let st = sb.status("staging");
    let api = Sandbox::component(&st, "api");
    assert_eq!(api["origin"], "feed:1.0.0", "{st:#}");

    // A new version appears: it deploys.
    std::fs::write(&versions, r#"["0.9.0", "1.0.0", "2.0.0"]"#).expect("write");
    long_wait("2.0.0 to deploy", || {
        deployed(&sb.root).iter().any(|l| l.starts_with("2.0.0 ")).then_some(())
    });

    // An older version appears later: never deployed backwards, and said why.
    std::fs::write(&versions, r#"["0.9.0", "1.0.0", "2.0.0", "1.5.0"]"#).expect("write");
    let why = long_wait("the decision about 1.5.0", || {
        decisions(INDEX).into_iter().find(|d| d.contains("1.5.0"))
    });
    assert!(
        why.starts_with("feed:") && why.contains("not deployed") && why.contains("2.0.0 runs"),
        "{why}"
    );

    // Paused: a new version waits; resumed: it deploys.
    sb.ok(&["pause", "--env", "staging", "--reason", "release freeze"]);
    long_wait("the server to take the pause", || {
        decisions(INDEX)
            .into_iter()
            .find(|d| d.starts_with("paused:") || d.contains("release freeze"))
    });
    std::fs::write(&versions, r#"["0.9.0", "1.0.0", "2.0.0", "1.5.0", "2.1.0"]"#).expect("write");
    // The poll sees 2.1.0 and its trigger is held, not run.
    let held = long_wait("the 2.1.0 trigger to be held", || {
        decisions(INDEX).into_iter().find(|d| d.starts_with("held:"))
    });
    assert!(held.contains("kept until resumed"), "{held}");
    assert!(
        !deployed(&sb.root).iter().any(|l| l.starts_with("2.1.0 ")),
        "nothing deploys while paused: {:?}",
        deployed(&sb.root)
    );
    sb.ok(&["resume", "--env", "staging"]);
    long_wait("2.1.0 to deploy once resumed", || {
        deployed(&sb.root).iter().any(|l| l.starts_with("2.1.0 ")).then_some(())
    });
    let lines = deployed(&sb.root);
    assert!(
        !lines.iter().any(|l| l.starts_with("1.5.0") || l.starts_with("0.9.0")),
        "{lines:?}"
    );

    // Pushed to POST /webhooks/package: an older version is refused, a newer one deploys.
    push(
        server_port(INDEX),
        "push-1",
        r#"{"component": "api", "version": "2.0.5"}"#,
    );
    let why = long_wait("the decision about the pushed 2.0.5", || {
        decisions(INDEX).into_iter().find(|d| d.contains("2.0.5"))
    });
    assert!(why.contains("never deployed backwards"), "{why}");
    push(
        server_port(INDEX),
        "push-2",
        r#"{"component": "api", "version": "3.0.0"}"#,
    );
    long_wait("the pushed 3.0.0 to deploy", || {
        deployed(&sb.root).iter().any(|l| l.starts_with("3.0.0 ")).then_some(())
    });
    assert!(!deployed(&sb.root).iter().any(|l| l.starts_with("2.0.5")));
    server.kill9();
}

const PACKAGE_SECRET: &str = "package-hook-secret-31";

/// `POST /webhooks/package`, signed.
fn push(port: u16, delivery: &str, body: &str) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let head = format!(
        "POST /webhooks/package HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         X-Greenroom-Delivery: {delivery}\r\nX-Greenroom-Signature-256: {}\r\nConnection: close\r\n\r\n{body}",
        body.len(),
        greenroom_webhook::sign_package(PACKAGE_SECRET.as_bytes(), body.as_bytes())
    );
    s.write_all(head.as_bytes()).expect("write");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

/// [`wait_until`] with room for a build, a deploy and the suites.
#[track_caller]
fn long_wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    wait_until_for(std::time::Duration::from_secs(120), what, &mut f)
}
