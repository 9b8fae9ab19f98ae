//! The pending PR set end to end, on a plain git repository used as a forge
//! (no hosted service): `greenroom serve` finds the changes under
//! `refs/pending/*`, stages the qualifying ones onto the base in order
//! (a conflicting one left out and told why, an untrusted author's left out
//! quietly), deploys the staging commit as an ordinary manifest, and tells
//! each PR through the git forge's feedback files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pending::{change, forge_dir};
use common::*;

#[test]
fn pending_changes_are_staged_deployed_and_told() {
    let index = 43;
    let port = 21000 + 100 * index + 90;
    let extra = format!(
        "\n[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\n\
         [policy]\nsettle = \"0s\"\ncooldown = \"0s\"\n\n[pending]\ntrusted = [\"alice\"]\n\
         staging_ref = \"refs/heads/greenroom/staging\"\nstaging_tags = 2\n"
    );
    let sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    // Every sample repository is its own forge; staging stages pending changes.
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replace("channels = {", "forge = \"git\"\nchannels = {")
        .replacen(
            "name = \"staging\"\n",
            "name = \"staging\"\nfollows = \"pending\"\ncomponents = [\"ogr\", \"packit-service\"]\n",
            1,
        );
    sb.write_config(&text);
    let ogr = sb.repo("ogr");
    let c1 = change(&ogr, 1, "alice", "2026-11-20T10:00:00", "VERSION", "1.2.0-alice\n");
    let c2 = change(
        &ogr,
        2,
        "alice",
        "2026-11-20T11:00:00",
        "VERSION",
        "1.2.0-conflicting\n",
    );
    let c3 = change(&ogr, 3, "mallory", "2026-11-20T12:00:00", "EVIL", "untrusted\n");
    let c4 = change(&ogr, 4, "alice", "2026-11-20T13:00:00", "FEATURE", "a new feature\n");

    let server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    // No full cycle ran yet: the server checks the followed refs and the pending set at once.
    let cycle = wait_until("a scheduled cycle on staging", || {
        sb.history().into_iter().find(|c| {
            c["environment"] == "staging"
                && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled"))
                && c["result"] != "running"
        })
    });
    assert_eq!(cycle["result"], "succeeded", "{cycle:#}");
    let request = cycle["request"].as_str().expect("request");
    assert!(request.contains("staging ogr#1 ogr#4"), "{request}");

    // ogr runs the staging commit: main + #1 + #4 (not the conflicting #2, not mallory's #3).
    let st = sb.assert_serving("staging");
    let ogr_st = Sandbox::component(&st, "ogr");
    let staging = ogr_st["commit"].as_str().expect("commit").to_string();
    assert_ne!(staging, sb.rev("ogr", "main"));
    let mirror = sb.mirror("ogr");
    let log = git(&mirror, &["log", "--format=%s", &staging]);
    assert!(log.contains("Merge ogr#1") && log.contains("Merge ogr#4"), "{log}");
    assert!(!log.contains("#2") && !log.contains("#3"), "{log}");
    for (c, want) in [(&c1, true), (&c4, true), (&c2, false), (&c3, false)] {
        let is = std::process::Command::new("git")
            .args(["merge-base", "--is-ancestor", c, &staging])
            .current_dir(&mirror)
            .status()
            .expect("git")
            .success();
        assert_eq!(is, want, "{c} in the staging commit");
    }
    // The staging branch is published in the repository, with a dated tag.
    assert_eq!(sb.rev("ogr", "refs/heads/greenroom/staging"), staging);
    let tags = git(&ogr, &["tag", "-l", "staging-*"]);
    assert_eq!(tags.lines().count(), 1, "{tags}");
    assert_eq!(sb.rev("ogr", &format!("refs/tags/{}", tags.trim())), staging);
    // packit-service has no pending change: it runs its base.
    assert_eq!(
        Sandbox::component(&st, "packit-service")["commit"],
        sb.rev("packit-service", "main")
    );

    // Feedback: statuses on #1 and #4 (pending, then success), sticky comments,
    // the conflict explained on #2, nothing said on mallory's #3.
    let dir = forge_dir(&sb.state, "ogr");
    let statuses = std::fs::read_to_string(dir.join("statuses.jsonl")).expect("statuses");
    for head in [&c1, &c4] {
        let states: Vec<String> = statuses
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["sha"] == head.as_str() && v["context"] == "greenroom/staging")
            .map(|v| v["state"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(states, vec!["pending", "success"], "{statuses}");
    }
    assert!(!statuses.contains(&c2) && !statuses.contains(&c3), "{statuses}");
    let sticky1 = std::fs::read_to_string(dir.join("comments/1.md")).expect("sticky comment of #1");
    assert!(sticky1.contains("ogr#1") && sticky1.contains("staging"), "{sticky1}");
    assert!(sticky1.contains(&staging[..12]), "exact versions listed: {sticky1}");
    let sticky2 = std::fs::read_to_string(dir.join("comments/2.md")).expect("sticky comment of #2");
    assert!(
        sticky2.contains("conflicts") && sticky2.contains("VERSION"),
        "{sticky2}"
    );
    assert!(
        !dir.join("comments/3.md").exists(),
        "mallory's change is left out quietly"
    );

    // Nothing changed: polling again stages the same commit, so no new deploy.
    server.kill9();
    let again = sb.json(&["deploy", "--env", "staging", "--dry-run", &format!("ogr=sha:{staging}")]);
    let ogr_plan = again["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == "ogr")
        .expect("ogr")
        .clone();
    assert_eq!(ogr_plan["action"], "keep", "{again:#}");
    sb.ok(&["stop", "--env", "staging"]);
}

#[test]
fn the_faulty_change_is_found_excluded_and_the_rest_redeployed() {
    let index = 47;
    let port = 21000 + 100 * index + 90;
    let extra = format!(
        "\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n[policy]\nsettle = \"0s\"\ncooldown = \"0s\"\n\n\
         [pending]\ntrusted = [\"alice\", \"bob\"]\nsearch_pool = \"dev\"\n\n\
         [[suite]]\nname = \"api\"\nrun = 'curl -fsS \"${{GREENROOM_URL_OGR%/}}/api/check\"'\n"
    );
    let sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replace("channels = {", "forge = \"git\"\nchannels = {")
        .replacen(
            "name = \"staging\"\n",
            "name = \"staging\"\nfollows = \"pending\"\ncomponents = [\"ogr\"]\n",
            1,
        )
        .replacen("name = \"solo\"\n", "name = \"solo\"\nfollows = \"manual\"\n", 1);
    sb.write_config(&text);
    let ogr = sb.repo("ogr");
    change(&ogr, 1, "alice", "2026-11-20T10:00:00", "FEATURE_A", "a\n");
    let bad = change(&ogr, 2, "bob", "2026-11-20T11:00:00", "API_BUG", "breaks /api/check\n");
    change(&ogr, 3, "alice", "2026-11-20T12:00:00", "FEATURE_C", "c\n");
    change(&ogr, 4, "alice", "2026-11-20T13:00:00", "FEATURE_D", "d\n");

    let server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    let scheduled = |sb: &Sandbox| -> Vec<serde_json::Value> {
        sb.history()
            .into_iter()
            .filter(|c| {
                c["environment"] == "staging" && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled"))
            })
            .collect()
    };
    // The first cycle stages all four and fails the api suite.
    let first = wait_until("the first cycle to fail", || {
        scheduled(&sb).into_iter().find(|c| c["result"] == "failed")
    });
    assert!(
        first["error"]
            .as_str()
            .expect("error")
            .contains("blocking suite `api` failed"),
        "{first}"
    );
    // The search runs on the dev slots, then the rest is redeployed without #2.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let fixed = loop {
        if let Some(c) = scheduled(&sb)
            .into_iter()
            .find(|c| c["result"] == "succeeded" && c["id"].as_i64() > first["id"].as_i64())
        {
            break c;
        }
        if std::time::Instant::now() > deadline {
            for c in sb.history() {
                eprintln!(
                    "{} {} {} {} {}",
                    c["id"], c["environment"], c["result"], c["request"], c["error"]
                );
            }
            for e in std::fs::read_dir(sb.root.join("out")).expect("out").flatten() {
                let t = std::fs::read_to_string(e.path()).unwrap_or_default();
                if t.contains("WARN") || t.contains("search") {
                    eprintln!("== {}\n{t}", e.path().display());
                }
            }
            panic!("timed out waiting for the redeploy without the culprit");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let request = fixed["request"].as_str().expect("request");
    assert!(
        request.contains("ogr#1") && request.contains("ogr#3") && request.contains("ogr#4"),
        "{request}"
    );
    assert!(!request.contains("ogr#2"), "{request}");
    let runs: Vec<serde_json::Value> = sb
        .history()
        .into_iter()
        .filter(|c| c["request"].as_str().is_some_and(|r| r.starts_with("culprit search")))
        .collect();
    assert!(!runs.is_empty(), "search runs are recorded cycles");
    assert!(
        runs.iter()
            .all(|c| c["environment"].as_str().is_some_and(|e| e.starts_with("dev-"))),
        "{runs:?}"
    );
    assert!(runs.len() <= 8, "{} runs for 4 units", runs.len());
    // bob is told why, on his change; the staged commit does not contain it.
    let dir = forge_dir(&sb.state, "ogr");
    let told = std::fs::read_to_string(dir.join("comments.jsonl")).expect("comments");
    assert!(told.contains("excluded ogr#2") && told.contains("`api`"), "{told}");
    let st = sb.assert_serving("staging");
    let commit = Sandbox::component(&st, "ogr")["commit"]
        .as_str()
        .expect("commit")
        .to_string();
    let mirror = sb.mirror("ogr");
    let has_bad = std::process::Command::new("git")
        .args(["merge-base", "--is-ancestor", &bad, &commit])
        .current_dir(&mirror)
        .status()
        .expect("git")
        .success();
    assert!(!has_bad, "the culprit is not in what runs");
    server.kill9();
    sb.ok(&["stop", "--env", "staging"]);
    for slot in ["dev-1", "dev-2"] {
        sb.ok(&["release", "--env", slot, "--force"]);
        sb.ok(&["stop", "--env", slot]);
    }
}

#[test]
fn two_culprits_in_two_repositories_are_both_found() {
    let index = 49;
    let port = 21000 + 100 * index + 90;
    let extra = format!(
        "\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n[policy]\nsettle = \"0s\"\ncooldown = \"0s\"\n\n\
         [pending]\ntrusted = [\"alice\", \"bob\", \"erin\"]\nsearch_pool = \"dev\"\n\n\
         [[suite]]\nname = \"api\"\n\
         run = 'curl -fsS \"${{GREENROOM_URL_OGR%/}}/api/check\" && curl -fsS \"${{GREENROOM_URL_PACKIT_SERVICE%/}}/api/check\"'\n"
    );
    let sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replace("channels = {", "forge = \"git\"\nchannels = {")
        .replacen(
            "name = \"staging\"\n",
            "name = \"staging\"\nfollows = \"pending\"\ncomponents = [\"ogr\", \"packit-service\"]\n",
            1,
        )
        .replacen("name = \"solo\"\n", "name = \"solo\"\nfollows = \"manual\"\n", 1);
    sb.write_config(&text);
    let (ogr, ps) = (sb.repo("ogr"), sb.repo("packit-service"));
    change(&ogr, 1, "alice", "2026-11-20T10:00:00", "FEATURE_A", "a\n");
    change(&ogr, 2, "bob", "2026-11-20T11:00:00", "API_BUG", "breaks ogr's API\n");
    change(&ps, 1, "alice", "2026-11-20T12:00:00", "FEATURE_B", "b\n");
    change(
        &ps,
        2,
        "erin",
        "2026-11-20T13:00:00",
        "API_BUG",
        "breaks packit-service's API\n",
    );
    change(&ps, 3, "alice", "2026-11-20T14:00:00", "FEATURE_C", "c\n");

    let server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    let scheduled = |sb: &Sandbox| -> Vec<serde_json::Value> {
        sb.history()
            .into_iter()
            .filter(|c| {
                c["environment"] == "staging" && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled"))
            })
            .collect()
    };
    let first = wait_until("the first cycle to fail", || {
        scheduled(&sb).into_iter().find(|c| c["result"] == "failed")
    });
    let fixed = wait_until_for(
        std::time::Duration::from_secs(120),
        "the redeploy without both culprits",
        &mut || {
            scheduled(&sb)
                .into_iter()
                .find(|c| c["result"] == "succeeded" && c["id"].as_i64() > first["id"].as_i64())
        },
    );
    let request = fixed["request"].as_str().expect("request");
    for kept in ["ogr#1", "packit-service#1", "packit-service#3"] {
        assert!(request.contains(kept), "{kept} missing: {request}");
    }
    for culprit in ["ogr#2", "packit-service#2"] {
        assert!(!request.contains(culprit), "{culprit} staged: {request}");
    }
    // Each author is told on their own change.
    for (repo, n) in [("ogr", 2), ("packit-service", 2)] {
        let told = std::fs::read_to_string(forge_dir(&sb.state, repo).join("comments.jsonl")).expect("comments");
        assert!(told.contains(&format!("excluded {repo}#{n}")), "{told}");
    }
    let runs = sb
        .history()
        .into_iter()
        .filter(|c| c["request"].as_str().is_some_and(|r| r.starts_with("culprit search")))
        .count();
    assert!(runs <= 14, "{runs} runs for 5 units and 2 culprits");
    server.kill9();
    sb.ok(&["stop", "--env", "staging"]);
    for slot in ["dev-1", "dev-2"] {
        sb.ok(&["release", "--env", slot, "--force"]);
        sb.ok(&["stop", "--env", slot]);
    }
}
