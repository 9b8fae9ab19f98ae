//! The CLI as a client of `greenroom serve` (`--server URL` + an API token):
//! from a directory with no config at all, status/deploy/history/lease/
//! release/pause/resume/cancel go through the REST API, print what the local
//! commands print, and keep the exit statuses (2 bad input or refused, 3
//! held by someone else). `[client] server` in a config does the same;
//! `--local` opts out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

const ALICE: &str = "alice-token-client-5e1d";
const VIC: &str = "vic-token-client-77ab";

/// Runs `greenroom ARGS` in `dir` with `GREENROOM_TOKEN=token` and no config.
fn client(dir: &Path, server: &str, token: &str, args: &[&str]) -> Out {
    let out = Command::new(EXE)
        .arg("--server")
        .arg(server)
        .args(args)
        .current_dir(dir)
        .env_remove("GREENROOM_CONFIG")
        .env_remove("GREENROOM_SERVER")
        .env("GREENROOM_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .expect("run greenroom");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(out: &Out) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr))
}

#[test]
fn the_cli_talks_to_a_server_with_a_token() {
    let index = 39;
    let port = 21000 + 100 * index + 90;
    let extra = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"

[[user]]
name = "alice"
token = "env:GREENROOM_E2E_ALICE"
role = "admin"

[[user]]
name = "vic"
token = "env:GREENROOM_E2E_VIC"
role = "viewer"
"#
    );
    let mut sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    // Deployed by hand only: no scheduled cycle races the test's own.
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replace("name = \"staging\"\n", "name = \"staging\"\nfollows = \"manual\"\n")
        .replace("name = \"solo\"\n", "name = \"solo\"\nfollows = \"manual\"\n");
    sb.write_config(&text);
    sb.env.push(("GREENROOM_E2E_ALICE".into(), ALICE.into()));
    sb.env.push(("GREENROOM_E2E_VIC".into(), VIC.into()));
    let _server = sb.spawn(&["serve"]);
    let url = format!("http://127.0.0.1:{port}");
    wait_until("the server to answer /healthz", || {
        http_get(&format!("{url}/healthz")).filter(|(c, _)| *c == 200)
    });
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let dir = elsewhere.path();

    // A deploy through the server, as alice: the same report as a local deploy.
    let d = client(dir, &url, ALICE, &["--json", "deploy", "--env", "solo", "ogr=1"]);
    assert_eq!(d.code, 0, "{}", d.stderr);
    let report = json(&d);
    assert_eq!(report["result"], "succeeded");
    assert_eq!(report["components"][0]["commit"], sb.rev("ogr", "refs/pull/1/head"));
    // The cycle was recorded as alice's, on the server's state.
    // (The server may run scheduled cycles of its own meanwhile: look for this one.)
    let local = sb.history();
    let mine = local.iter().find(|c| c["id"] == report["cycle"]).expect("the cycle");
    assert_eq!(mine["requested_by"], "alice");

    // status and history read the server's state (same JSON shape as locally).
    let st = client(dir, &url, VIC, &["--json", "status", "--env", "solo"]);
    assert_eq!(st.code, 0, "{}", st.stderr);
    let st = json(&st);
    assert_eq!(st["environment"], "solo");
    assert_eq!(
        Sandbox::component(&st, "ogr")["commit"],
        sb.rev("ogr", "refs/pull/1/head")
    );
    assert_eq!(st, sb.status("solo"), "remote and local status agree");
    let human = client(dir, &url, VIC, &["status"]);
    assert!(
        human.stdout.contains("solo") && human.stdout.contains("staging"),
        "{}",
        human.stdout
    );
    let h = json(&client(dir, &url, VIC, &["--json", "history", "--env", "solo"]));
    assert!(
        h.as_array().expect("list").iter().any(|c| c["id"] == report["cycle"]),
        "{h:#}"
    );

    // A viewer may not deploy: refused as bad input, nothing changed.
    let refused = client(dir, &url, VIC, &["deploy", "--env", "solo"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("vic is viewer"), "{}", refused.stderr);
    assert!(!sb.history().iter().any(|c| c["requested_by"] == "vic"));
    // A wrong token says how to fix it.
    let bad = client(dir, &url, "nope", &["status"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("GREENROOM_TOKEN"), "{}", bad.stderr);

    // Leases: alice takes staging, a local holder is then refused with 3.
    let l = client(
        dir,
        &url,
        ALICE,
        &["--json", "lease", "--env", "staging", "--reason", "demo", "--for", "1h"],
    );
    assert_eq!(l.code, 0, "{}", l.stderr);
    assert_eq!(json(&l)["lease"]["holder"], "alice");
    let busy = sb.run(&["--as", "bob", "deploy", "--env", "staging"]).expect(3);
    assert!(
        busy.stderr.contains("alice") && busy.stderr.contains("demo"),
        "{}",
        busy.stderr
    );
    let r = client(dir, &url, ALICE, &["release", "--env", "staging"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("released staging"), "{}", r.stdout);
    assert!(sb.status("staging")["lease"].is_null());

    // Pause and resume are recorded with alice's name and reason.
    let p = client(
        dir,
        &url,
        ALICE,
        &["pause", "--env", "staging", "--reason", "release day"],
    );
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(sb.status("staging")["paused"]["by"], "alice");
    let p = json(&client(dir, &url, VIC, &["--json", "status", "--env", "staging"]));
    assert_eq!(p["paused"]["reason"], "release day");
    assert_eq!(client(dir, &url, ALICE, &["resume", "--env", "staging"]).code, 0);
    assert!(sb.status("staging").get("paused").is_none());

    // Cancel with nothing running: the server's message, exit 2.
    let c = client(dir, &url, ALICE, &["cancel", "--env", "staging"]);
    assert_eq!(c.code, 2);
    assert!(c.stderr.contains("no cycle is running on staging"), "{}", c.stderr);

    // Commands without an API say so instead of acting on this machine's empty state.
    let logs = client(dir, &url, ALICE, &["logs", "--env", "solo", "ogr"]);
    assert_eq!(logs.code, 2);
    assert!(logs.stderr.contains("--local"), "{}", logs.stderr);
    // `--as` has no meaning with a server.
    let as_ = client(dir, &url, ALICE, &["--as", "mallory", "status"]);
    assert_eq!(as_.code, 2);
    assert!(as_.stderr.contains("--as does not apply"), "{}", as_.stderr);
    // No token ever shows in what the client printed.
    for o in [&d, &refused, &bad] {
        assert!(!o.stdout.contains(ALICE) && !o.stderr.contains(ALICE));
    }

    // `[client] server` in a config does the same; `--local` opts out.
    let cfg = dir.join("greenroom.toml");
    std::fs::write(
        &cfg,
        format!("[client]\nserver = \"{url}\"\ntoken = \"env:MY_GREENROOM_TOKEN\"\n"),
    )
    .expect("write client config");
    let out = Command::new(EXE)
        .args(["--json", "status", "--env", "solo"])
        .current_dir(dir)
        .env_remove("GREENROOM_CONFIG")
        .env_remove("GREENROOM_SERVER")
        .env_remove("GREENROOM_TOKEN")
        .env("MY_GREENROOM_TOKEN", VIC)
        .output()
        .expect("run greenroom");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["environment"], "solo");
    let local = Command::new(EXE)
        .args(["--local", "status"])
        .current_dir(dir)
        .env_remove("GREENROOM_CONFIG")
        .env_remove("GREENROOM_SERVER")
        .output()
        .expect("run greenroom");
    // The client config defines no environment: the local state has nothing to show.
    assert_eq!(
        local.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    assert!(!String::from_utf8_lossy(&local.stdout).contains("solo"));
}
