//! `greenroom serve` end to end: signed GitHub webhooks through the real
//! server, stored once, answered by the documented status codes, turned into
//! a scheduled cycle by the policy; one server per state directory; a
//! server killed with -9 starts again on the same state.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const SECRET: &str = "e2e webhook secret";

fn post(port: u16, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write headers");
    // The server may refuse an oversized body before reading all of it.
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn push_payload() -> Vec<u8> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/github/push.with-new-branch.payload.json"
    ))
    .expect("fixture");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
    v["ref"] = "refs/heads/main".into();
    serde_json::to_vec(&v).expect("encode")
}

fn github_headers(event: &str, delivery: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("X-GitHub-Event", event.to_string()),
        ("X-GitHub-Delivery", delivery.to_string()),
        (
            "X-Hub-Signature-256",
            greenroom_webhook::sign_github(SECRET.as_bytes(), body),
        ),
    ]
}

/// A sandbox whose server listens on its own port, verifies GitHub
/// signatures with [`SECRET`], schedules without settle or cooldown, and
/// has `ogr` stand for the fixture's repository.
fn webhook_sandbox(index: u16) -> (Sandbox, u16) {
    let port = 21000 + 100 * index + 90;
    let extra = format!(
        "\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n[github]\nwebhook_secret = \"env:GREENROOM_E2E_HOOK_SECRET\"\n\n[policy]\nsettle = \"0s\"\ncooldown = \"0s\"\n"
    );
    let mut sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    let text = std::fs::read_to_string(&sb.config).expect("config").replacen(
        "name = \"ogr\"\n",
        "name = \"ogr\"\ngithub = \"Codertocat/Hello-World\"\n",
        1,
    );
    sb.write_config(&text);
    sb.env.push(("GREENROOM_E2E_HOOK_SECRET".into(), SECRET.into()));
    (sb, port)
}

#[test]
fn signed_push_is_stored_once_and_leads_to_a_scheduled_cycle() {
    let (sb, port) = webhook_sandbox(35);

    let server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });

    // One server per state directory.
    let second = sb.run(&["serve", "--listen", &format!("127.0.0.1:{}", port + 1)]);
    assert_eq!(second.code, 3, "{}", second.all());
    assert!(
        second.stderr.contains("another `greenroom serve`") && second.stderr.contains("pid"),
        "{}",
        second.stderr
    );

    let body = push_payload();
    let (code, resp) = post(port, "/webhooks/github", &github_headers("push", "d-1", &body), &body);
    assert_eq!(code, 200, "{resp}");
    assert!(resp.contains("\"stored\""), "{resp}");
    // A redelivery is recognised and not acted on again.
    let (code, resp) = post(port, "/webhooks/github", &github_headers("push", "d-1", &body), &body);
    assert_eq!(code, 200, "{resp}");
    assert!(resp.contains("\"duplicate\":true"), "{resp}");

    // Bad signature, malformed body, unknown event, oversized body.
    let mut bad = github_headers("push", "d-2", &body);
    bad[2].1 = greenroom_webhook::sign_github(b"not the secret", &body);
    assert_eq!(post(port, "/webhooks/github", &bad, &body).0, 401);
    let unsigned: Vec<(&str, String)> = github_headers("push", "d-3", &body).into_iter().take(2).collect();
    assert_eq!(post(port, "/webhooks/github", &unsigned, &body).0, 401);
    let broken = b"{\"ref\": \"refs/heads/main\", ";
    let (code, resp) = post(port, "/webhooks/github", &github_headers("push", "d-4", broken), broken);
    assert_eq!(code, 400, "{resp}");
    assert!(resp.contains("error"), "{resp}");
    let (code, _) = post(
        port,
        "/webhooks/github",
        &github_headers("made_up_event", "d-5", &body),
        &body,
    );
    assert_eq!(code, 202);
    let huge = vec![b' '; greenroom_webhook::MAX_BODY + 1];
    assert_eq!(
        post(port, "/webhooks/github", &github_headers("push", "d-6", &huge), &huge).0,
        413
    );

    // The push to ogr's followed branch triggers the environments that deploy ogr.
    let cycle = wait_until("a scheduled cycle on staging to succeed", || {
        sb.history().into_iter().find(|c| {
            c["environment"] == "staging"
                && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled"))
                && c["result"] == "succeeded"
        })
    });
    assert!(
        cycle["request"].as_str().is_some_and(|r| r.contains("trigger(s) 1")),
        "{cycle}"
    );
    // staging and solo (both deploy ogr) for the one push; the duplicate
    // delivery added no trigger. (Under load a cycle may hit an
    // infrastructure error and be retried for the same trigger.)
    wait_until("solo's scheduled cycle", || {
        sb.history()
            .into_iter()
            .find(|c| c["environment"] == "solo" && c["result"] == "succeeded")
    });
    let history = sb.history();
    let scheduled: Vec<&serde_json::Value> = history
        .iter()
        .filter(|c| c["request"].as_str().is_some_and(|r| r.starts_with("scheduled")))
        .collect();
    assert!(
        scheduled
            .iter()
            .all(|c| c["request"].as_str().is_some_and(|r| r.ends_with("trigger(s) 1"))),
        "{history:#?}"
    );
    for env in ["staging", "solo"] {
        let done = scheduled
            .iter()
            .filter(|c| c["environment"] == env && c["result"] == "succeeded")
            .count();
        assert_eq!(done, 1, "{env}: {history:#?}");
    }
    let st = sb.status("staging");
    assert_eq!(Sandbox::component(&st, "ogr")["commit"], sb.rev("ogr", "main"));

    // kill -9 and start again on the same state: the lock is gone with the process.
    server.kill9();
    let again = sb.spawn(&["serve"]);
    wait_until("the restarted server to answer", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    let (code, resp) = post(port, "/webhooks/github", &github_headers("push", "d-1", &body), &body);
    assert_eq!((code, resp.contains("\"duplicate\":true")), (200, true), "{resp}");
    again.kill9();
    sb.ok(&["stop", "--env", "staging"]);
    sb.ok(&["stop", "--env", "solo"]);
}

/// Pids of the processes whose working directory is `dir`.
fn pids_in(dir: &std::path::Path) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c == dir) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn serve_restarts_a_component_that_died() {
    let index = 32;
    let port = 21000 + 100 * index + 90;
    let extra = format!("\n[server]\nlisten = \"127.0.0.1:{port}\"\n");
    let sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    sb.ok(&["deploy", "--env", "solo", "--release"]);
    let before = sb.status("solo");
    let ogr = Sandbox::component(&before, "ogr").clone();
    let url = ogr["url"].as_str().expect("url").to_string();
    let artifact = std::path::PathBuf::from(ogr["artifact"].as_str().expect("artifact"));
    assert!(http_get(&url).is_some_and(|(c, _)| c == 200));

    let server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    // Kill the component (supervisor and service), as a crash would.
    let killed = pids_in(&artifact);
    assert!(!killed.is_empty(), "the component runs in {}", artifact.display());
    for pid in &killed {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    wait_until("the component to run again, started anew, and answer", || {
        let st = sb.status("solo");
        let fresh = pids_in(&artifact).iter().any(|p| !killed.contains(p));
        (Sandbox::component(&st, "ogr")["state"] == "running" && fresh && http_get(&url).is_some_and(|(c, _)| c == 200))
            .then_some(())
    });
    let after = sb.status("solo");
    assert_eq!(
        Sandbox::component(&after, "ogr")["commit"],
        ogr["commit"],
        "the same commit runs again"
    );
    server.kill9();
    sb.ok(&["stop", "--env", "solo"]);
}

#[test]
fn a_paused_environment_keeps_its_triggers_until_resumed() {
    let (sb, port) = webhook_sandbox(36);
    sb.ok(&[
        "pause",
        "--env",
        "staging",
        "--as",
        "alice",
        "--reason",
        "release freeze",
    ]);
    let st = sb.status("staging");
    assert_eq!(st["paused"]["by"], "alice", "{st}");
    // A pool cannot be paused; an unknown environment is named.
    assert_eq!(sb.run(&["pause", "--env", "dev"]).code, 2);

    let server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    let body = push_payload();
    let (code, resp) = post(port, "/webhooks/github", &github_headers("push", "p-1", &body), &body);
    assert_eq!(code, 200, "{resp}");
    // The trigger is held, said so, and nothing is scheduled while paused.
    wait_until("the held trigger to be recorded", || {
        let st = sb.status("staging");
        st["last_decision"]
            .as_str()
            .filter(|d| d.contains("paused") || d.contains("held"))
            .map(str::to_string)
    });
    let scheduled = |sb: &Sandbox| {
        sb.history()
            .into_iter()
            .filter(|c| {
                c["environment"] == "staging" && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled"))
            })
            .count()
    };
    assert_eq!(scheduled(&sb), 0);

    sb.ok(&["resume", "--env", "staging", "--as", "bob"]);
    assert_eq!(sb.run(&["resume", "--env", "staging"]).code, 2, "not paused any more");
    wait_until("a scheduled cycle after the resume", || {
        sb.history().into_iter().find(|c| {
            c["environment"] == "staging"
                && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled"))
                && c["result"] == "succeeded"
        })
    });
    assert!(sb.status("staging").get("paused").is_none());
    server.kill9();
    sb.ok(&["stop", "--env", "staging"]);
}

#[test]
fn an_explicit_deploy_restarts_a_running_partial_cycle() {
    let (sb, port) = webhook_sandbox(40);
    let server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    let scheduled = |sb: &Sandbox, result: &str| {
        sb.history().into_iter().find(|c| {
            c["environment"] == "staging"
                && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled"))
                && c["result"] == result
        })
    };
    // The first trigger gets the full cycle.
    let body = push_payload();
    assert_eq!(
        post(port, "/webhooks/github", &github_headers("push", "x-1", &body), &body).0,
        200
    );
    let full = wait_until("the full cycle", || scheduled(&sb, "succeeded"));
    assert!(
        full["request"]
            .as_str()
            .is_some_and(|r| r.starts_with("scheduled full")),
        "{full}"
    );

    // The next one, inside full_interval, is partial; its build is slow.
    let ogr = sb.repo("ogr");
    std::fs::write(ogr.join("SLOW"), "the build sleeps\n").expect("write");
    git(&ogr, &["add", "SLOW"]);
    git(&ogr, &["commit", "-q", "-m", "slow build"]);
    assert_eq!(
        post(port, "/webhooks/github", &github_headers("push", "x-2", &body), &body).0,
        200
    );
    let partial = wait_until("the partial cycle to run", || scheduled(&sb, "running"));
    assert!(
        partial["request"]
            .as_str()
            .is_some_and(|r| r.starts_with("scheduled partial")),
        "{partial}"
    );
    wait_until("its slow build", || {
        procs_under(&sb.root).into_iter().find(|p| p.cmdline == "sleep 30")
    });

    // An explicit deploy counts as a trigger: the partial cycle is cancelled, the deploy runs.
    let t = std::time::Instant::now();
    let out = sb
        .run(&[
            "--as",
            "alice",
            "--json",
            "deploy",
            "--env",
            "staging",
            "--release",
            "ogr=1",
        ])
        .expect(0);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(25),
        "it did not wait for the slow build"
    );
    assert!(out.stderr.contains("waiting for staging"), "{}", out.stderr);
    assert_eq!(out.json()["result"], "succeeded");
    let h = sb.history();
    let cancelled = h.iter().find(|c| c["id"] == partial["id"]).expect("the partial cycle");
    assert_eq!(cancelled["result"], "cancelled", "{cancelled}");
    assert!(
        cancelled["error"]
            .as_str()
            .is_some_and(|e| e.contains("explicit deploy by alice restarts partial cycle")),
        "{cancelled}"
    );
    server.kill9();
    sb.ok(&["stop", "--env", "staging"]);
    sb.ok(&["stop", "--env", "solo"]);
}

#[test]
fn a_killed_server_keeps_deferred_triggers_and_reruns_an_interrupted_cycle() {
    let (sb, port) = webhook_sandbox(41);
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replace("settle = \"0s\"", "settle = \"3s\"");
    sb.write_config(&text);
    let healthy = || {
        wait_until("the server to answer /healthz", || {
            http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
        })
    };
    let scheduled = |sb: &Sandbox| -> Vec<serde_json::Value> {
        sb.history()
            .into_iter()
            .filter(|c| {
                c["environment"] == "staging" && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled"))
            })
            .collect()
    };

    // A trigger deferred by the settle window, then kill -9 before it is due.
    let server = sb.spawn(&["serve"]);
    healthy();
    let body = push_payload();
    assert_eq!(
        post(port, "/webhooks/github", &github_headers("push", "k-1", &body), &body).0,
        200
    );
    wait_until("the trigger to be scheduled", || {
        sb.status("staging")["next"]
            .as_str()
            .filter(|n| n.contains("at "))
            .map(str::to_string)
    });
    server.kill9();
    assert!(scheduled(&sb).is_empty(), "killed before the settle window ended");

    // Restarted, the deferred trigger still runs; make that cycle slow and kill the server mid-way.
    let ogr = sb.repo("ogr");
    std::fs::write(ogr.join("SLOW"), "the build sleeps\n").expect("write");
    git(&ogr, &["add", "SLOW"]);
    git(&ogr, &["commit", "-q", "-m", "slow build"]);
    let server = sb.spawn(&["serve"]);
    healthy();
    let running = wait_until("the deferred trigger's cycle to run", || {
        scheduled(&sb).into_iter().find(|c| c["result"] == "running")
    });
    wait_until("its slow build", || {
        procs_under(&sb.root).into_iter().find(|p| p.cmdline == "sleep 30")
    });
    server.kill9();
    // The build outlived the server (own process group): clean it up as an operator would.
    for p in procs_under(&sb.state).into_iter().filter(|p| p.cmdline == "sleep 30") {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p.pgid), nix::sys::signal::Signal::SIGKILL);
    }
    git(&ogr, &["rm", "-q", "SLOW"]);
    git(&ogr, &["commit", "-q", "-m", "fast again"]);

    // Started again: the dead cycle is reported interrupted, its lease is not
    // left held, and its trigger gets a new cycle that deploys main.
    let server = sb.spawn(&["serve"]);
    healthy();
    let rerun = wait_until("the interrupted trigger's new cycle", || {
        scheduled(&sb)
            .into_iter()
            .find(|c| c["id"] != running["id"] && c["result"] == "succeeded")
    });
    let dead = sb
        .history()
        .into_iter()
        .find(|c| c["id"] == running["id"])
        .expect("the killed cycle");
    assert_eq!(dead["result"], "interrupted", "{dead}");
    assert!(rerun["id"].as_i64() > running["id"].as_i64());
    let st = sb.status("staging");
    assert_eq!(Sandbox::component(&st, "ogr")["commit"], sb.rev("ogr", "main"));
    assert!(st["lease"].is_null(), "{st}");
    server.kill9();
    sb.ok(&["stop", "--env", "staging"]);
    sb.ok(&["stop", "--env", "solo"]);
}

const GITLAB_TOKEN: &str = "e2e gitlab token";

fn gitlab_fixture(name: &str) -> Vec<u8> {
    let text =
        std::fs::read_to_string(format!("{}/tests/data/gitlab/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
    if v.get("ref").is_some() {
        v["ref"] = "refs/heads/main".into();
    }
    serde_json::to_vec(&v).expect("encode")
}

fn gitlab_headers(event: &str, uuid: &str, token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Gitlab-Event", event.to_string()),
        ("X-Gitlab-Event-UUID", uuid.to_string()),
        ("X-Gitlab-Token", token.to_string()),
    ]
}

#[test]
fn a_gitlab_push_is_stored_once_and_schedules_the_environments_that_follow_it() {
    let (mut sb, port) = webhook_sandbox(42);
    // packit-service stands for the fixture's GitLab project.
    let text = std::fs::read_to_string(&sb.config).expect("config").replacen(
        "name = \"packit-service\"\n",
        "name = \"packit-service\"\ngitlab = \"mike/diaspora\"\n",
        1,
    ) + "\n[gitlab]\nwebhook_token = \"env:GREENROOM_E2E_GITLAB_TOKEN\"\n";
    sb.write_config(&text);
    sb.env.push(("GREENROOM_E2E_GITLAB_TOKEN".into(), GITLAB_TOKEN.into()));
    let server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });

    let body = gitlab_fixture("push.json");
    let (code, resp) = post(
        port,
        "/webhooks/gitlab",
        &gitlab_headers("Push Hook", "g-1", GITLAB_TOKEN),
        &body,
    );
    assert_eq!(code, 200, "{resp}");
    assert!(resp.contains("\"stored\""), "{resp}");
    let (code, resp) = post(
        port,
        "/webhooks/gitlab",
        &gitlab_headers("Push Hook", "g-1", GITLAB_TOKEN),
        &body,
    );
    assert_eq!((code, resp.contains("\"duplicate\":true")), (200, true), "{resp}");
    // A wrong or missing token is refused; a body that is not JSON says why.
    assert_eq!(
        post(
            port,
            "/webhooks/gitlab",
            &gitlab_headers("Push Hook", "g-2", "wrong"),
            &body
        )
        .0,
        401
    );
    let no_token: Vec<_> = gitlab_headers("Push Hook", "g-3", GITLAB_TOKEN)
        .into_iter()
        .take(2)
        .collect();
    assert_eq!(post(port, "/webhooks/gitlab", &no_token, &body).0, 401);
    let (code, resp) = post(
        port,
        "/webhooks/gitlab",
        &gitlab_headers("Push Hook", "g-4", GITLAB_TOKEN),
        b"<html>",
    );
    assert_eq!(code, 400, "{resp}");
    // A merge request event on a `follows = "channel"` environment is recorded only.
    let mr = gitlab_fixture("merge_request.json");
    let (code, resp) = post(
        port,
        "/webhooks/gitlab",
        &gitlab_headers("Merge Request Hook", "g-5", GITLAB_TOKEN),
        &mr,
    );
    assert_eq!(code, 200, "{resp}");

    // staging deploys packit-service: the push is a trigger for it.
    let cycle = wait_until("a scheduled cycle on staging", || {
        sb.history().into_iter().find(|c| {
            c["environment"] == "staging"
                && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled"))
                && c["result"] == "succeeded"
        })
    });
    assert!(
        cycle["request"].as_str().is_some_and(|r| r.contains("trigger(s)")),
        "{cycle}"
    );
    let st = sb.status("staging");
    assert_eq!(
        Sandbox::component(&st, "packit-service")["commit"],
        sb.rev("packit-service", "main")
    );
    server.kill9();
    sb.ok(&["stop", "--env", "staging"]);
}
