//! Ephemeral environments and PR previews (issue #5 point 3): a profile is
//! a pool whose slots become named environments on demand, with the
//! profile's versions; the slots are the cap; a preview per PR is made,
//! renewed, and destroyed when the PR closes (GitHub's example
//! `pull_request` `closed` payload, signed, through a real server); an
//! environment whose time ended is torn down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pending::*;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const SECRET: &str = "profile-hook-secret-77";

fn closed_payload(repo: &str, number: u64) -> Vec<u8> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/github/pull_request.closed.payload.json"
    ))
    .expect("fixture");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    v["repository"]["full_name"] = repo.into();
    v["number"] = number.into();
    v["pull_request"]["number"] = number.into();
    serde_json::to_vec(&v).expect("encode")
}

fn send(port: u16, body: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         X-GitHub-Event: pull_request\r\nX-GitHub-Delivery: closed-1\r\nX-Hub-Signature-256: {}\r\nConnection: close\r\n\r\n",
        body.len(),
        greenroom_webhook::sign_github(SECRET.as_bytes(), body)
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

/// A dashboard page of a PR, signed in as the viewer (curl keeps the cookie).
fn pr_page(sb: &Sandbox, port: u16, pr: &str) -> String {
    let jar = sb.root.join("cookies.txt");
    let base = format!("http://127.0.0.1:{port}");
    let login = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", "-c"])
        .arg(&jar)
        .args(["--data-urlencode", "token=watcher-token-71", &format!("{base}/login")])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&login.stdout), "303", "{login:?}");
    let page = std::process::Command::new("curl")
        .args(["-fsS", "--max-time", "20", "-b"])
        .arg(&jar)
        .arg(format!("{base}/pr/{pr}"))
        .output()
        .expect("curl");
    assert!(page.status.success(), "{page:?}");
    String::from_utf8_lossy(&page.stdout).into_owned()
}

fn listed(sb: &Sandbox) -> Vec<String> {
    sb.json(&["env", "list"])
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["name"].as_str().unwrap_or(""),
                e["slot"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn profiles_make_environments_and_previews_that_go_away() {
    let index = 71;
    let profile = "\n[[environment]]\nname = \"1k\"\nslots = 2\ncomponents = [\"ogr\", \"packit-service\"]\n\
                   [environment.profile]\nttl = \"1h\"\npreview = true\nversions = { ogr = \"tag:v1.0.0\" }\n\n\
                   [github]\nwebhook_secret = \"file:@ROOT@/hook.secret\"\n\n\
                   [[user]]\nname = \"watcher\"\ntoken = \"file:@ROOT@/watcher.token\"\nrole = \"viewer\"\n";
    let sb = Sandbox::with(
        index,
        Options {
            extra: format!("{profile}\n[server]\nlisten = \"127.0.0.1:{}\"\n", server_port(index)),
            ..Options::default()
        },
    );
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replace("@ROOT@", &sb.root.display().to_string())
        .replacen("name = \"staging\"\n", "name = \"staging\"\nfollows = \"manual\"\n", 1)
        .replacen("name = \"solo\"\n", "name = \"solo\"\nfollows = \"manual\"\n", 1)
        // ogr's changes live in its git repository: the `git` forge keeps
        // what greenroom tells them (statuses, sticky comments) in files.
        .replacen(
            "name = \"ogr\"\n",
            "name = \"ogr\"\nforge = \"git\"\npending_refs = \"refs/pull/*/head\"\n",
            1,
        );
    sb.write_config(&text);
    std::fs::write(sb.root.join("hook.secret"), SECRET).expect("secret");
    std::fs::write(sb.root.join("watcher.token"), "watcher-token-71").expect("token");

    // An environment from the profile: its versions, under its name.
    let made = sb.json(&[
        "--as",
        "alice",
        "env",
        "create",
        "review-1",
        "--profile",
        "1k",
        "--reason",
        "try v1",
    ]);
    assert_eq!(made["cycle"]["result"], "succeeded", "{made:#}");
    assert_eq!(made["environment"]["slot"], "1k-1");
    let st = sb.status("review-1");
    assert_eq!(st["environment"], "1k-1", "the name means the slot");
    assert_eq!(
        Sandbox::component(&st, "ogr")["commit"],
        sb.rev("ogr", "v1.0.0").as_str(),
        "the profile's version"
    );
    assert_eq!(st["lease"]["holder"], "alice", "the creator keeps it");
    let taken = sb.run(&["env", "create", "review-1", "--profile", "1k"]).expect(2);
    assert!(taken.all().contains("review-1 exists"), "{}", taken.all());
    let bad = sb.run(&["env", "create", "Review 1", "--profile", "1k"]).expect(2);
    assert!(bad.all().contains("not an environment name"), "{}", bad.all());
    let not_profile = sb.run(&["env", "create", "x", "--profile", "dev"]).expect(2);
    assert!(not_profile.all().contains("profiles: 1k"), "{}", not_profile.all());

    // A preview of PR #1 of ogr takes the second slot; the slots are the cap.
    let p = sb.json(&["--as", "bob", "deploy", "--preview", "ogr#1"]);
    assert_eq!(p["environment"]["name"], "pr-ogr-1", "{p:#}");
    assert_eq!(p["environment"]["slot"], "1k-2");
    let pst = sb.status("pr-ogr-1");
    assert_eq!(
        Sandbox::component(&pst, "ogr")["commit"],
        sb.rev("ogr", "refs/pull/1/head").as_str()
    );
    let full = sb.run(&["env", "create", "review-3", "--profile", "1k"]).expect(3);
    assert!(
        full.all().contains("every slot of profile 1k is in use"),
        "{}",
        full.all()
    );
    // The PR's sticky comment links its preview: name, time, the URLs.
    let sticky = std::fs::read_dir(sb.state.join("forge-git"))
        .expect("the git forge's directory")
        .flatten()
        .map(|e| e.path().join("comments/1.md"))
        .find(|p| p.is_file())
        .expect("a sticky comment for ogr#1");
    let said = std::fs::read_to_string(&sticky).expect("the sticky comment of ogr#1");
    assert!(
        said.contains("Preview environment") && said.contains("**pr-ogr-1**"),
        "{said}"
    );
    let url = Sandbox::component(&pst, "ogr")["url"]
        .as_str()
        .expect("url")
        .to_string();
    assert!(said.contains(&format!("ogr: {url}")), "{said}");
    // Activity renews the preview.
    let again = sb.json(&["--as", "bob", "deploy", "--preview", "ogr#1"]);
    assert_eq!(again["environment"]["slot"], "1k-2");
    assert!(again["environment"]["expires_at"].as_i64() >= p["environment"]["expires_at"].as_i64());

    // The PR closes: the server destroys its preview.
    let server = serve(&sb, index);
    // The PR's dashboard page shows its preview.
    let page = pr_page(&sb, server_port(index), "greenroom-sandbox/ogr/1");
    assert!(
        page.contains("Preview environment") && page.contains("pr-ogr-1") && page.contains("1k-2"),
        "{page}"
    );
    // A `git` forge repository is known by its name alone: its PR page
    // says where the PR runs (the preview's slot) too.
    let page = pr_page(&sb, server_port(index), "ogr/1");
    assert!(page.contains("pr-ogr-1") && page.contains("1k-2</a>: ogr"), "{page}");
    send(server_port(index), &closed_payload("greenroom-sandbox/ogr", 1));
    wait_until("the preview to go", || {
        (!listed(&sb).iter().any(|l| l.starts_with("pr-ogr-1"))).then_some(())
    });
    // ... and its sticky comment no longer links it.
    wait_until("the sticky comment to drop the preview", || {
        let said = std::fs::read_to_string(&sticky).expect("sticky");
        (!said.contains("pr-ogr-1")).then_some(())
    });
    // Its time ends: torn down too.
    sb.ok(&[
        "--as",
        "carol",
        "env",
        "create",
        "short",
        "--profile",
        "1k",
        "--ttl",
        "1s",
    ]);
    wait_until_for(Duration::from_secs(30), "the short one to expire", &mut || {
        (!listed(&sb).iter().any(|l| l.starts_with("short "))).then_some(())
    });
    assert_eq!(listed(&sb), ["review-1 1k-1"]);
    sb.ok(&["env", "destroy", "review-1", "--reason", "done"]);
    assert!(listed(&sb).is_empty());
    let audit = sb.json(&["audit", "--env", "1k"]);
    let actions: Vec<&str> = audit
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    for a in ["env-create", "env-destroy"] {
        assert!(actions.contains(&a), "{a} missing: {actions:?}");
    }
    server.kill9();
    for slot in ["1k-1", "1k-2"] {
        sb.ok(&["release", "--env", slot, "--force"]);
        sb.ok(&["stop", "--env", slot]);
    }
}
