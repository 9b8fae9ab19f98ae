//! GitHub example payloads (octokit/webhooks, see fixtures/SOURCES.md) parse
//! into the expected normalized events. Every fixture file of every event
//! folder is covered; expected values are read off the fixtures by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{edited, fixture, fixtures_in, github_headers};
use greenroom_webhook::{Delivery, EventKind, Forge, WebhookError, parse};

const PR_SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const ZERO: &str = "0000000000000000000000000000000000000000";

fn parse_fixture(event: &str, rel: &str) -> Delivery {
    parse(Forge::Github, &github_headers(event), &fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_pull_request_fixture() {
    // (file, action, updated_at)
    let expected = [
        ("closed.payload.json", "closed", "2019-05-15T15:21:18Z"),
        (
            "closed.with-organization.payload.json",
            "closed",
            "2019-05-15T15:21:18Z",
        ),
        ("labeled.payload.json", "labeled", "2019-05-15T15:20:35Z"),
        (
            "labeled.with-organization.payload.json",
            "labeled",
            "2019-05-15T15:20:35Z",
        ),
        ("opened.payload.json", "opened", "2019-05-15T15:20:33Z"),
        ("opened.with-null-body.json", "opened", "2019-05-15T15:20:33Z"),
        (
            "opened.with-organization.payload.json",
            "opened",
            "2019-05-15T15:20:33Z",
        ),
        ("reopened.payload.json", "reopened", "2019-05-15T15:20:33Z"),
        (
            "reopened.with-organization.payload.json",
            "reopened",
            "2019-05-15T15:20:33Z",
        ),
        ("synchronize.payload.json", "synchronize", "2019-05-15T15:20:33Z"),
    ];
    let files = fixtures_in("github/pull_request");
    assert_eq!(
        files.len(),
        expected.len(),
        "a pull_request fixture is not covered: {files:?}"
    );
    for (file, action, updated_at) in expected {
        let rel = format!("github/pull_request/{file}");
        assert!(files.contains(&rel), "{rel}");
        let d = parse_fixture("pull_request", &rel);
        assert_eq!(d.forge, Forge::Github);
        assert_eq!(d.id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(d.event, "pull_request");
        assert_eq!(d.action.as_deref(), Some(action), "{rel}");
        assert_eq!(d.repo.as_deref(), Some("Codertocat/Hello-World"), "{rel}");
        let added = if action == "labeled" {
            vec!["bug".to_string()]
        } else {
            vec![]
        };
        assert_eq!(
            d.kind,
            EventKind::PullRequest {
                number: 2,
                action: action.into(),
                head_sha: PR_SHA.into(),
                head_ref: "changes".into(),
                base_ref: "master".into(),
                author: "Codertocat".into(),
                draft: false,
                labels: vec!["bug".into()],
                labels_added: added,
                labels_removed: vec![],
                merged: false,
                title: "Update the README with new information.".into(),
                updated_at: Some(updated_at.into()),
            },
            "{rel}"
        );
    }
}

#[test]
fn pull_request_unlabeled_merged_and_draft_variants() {
    let body = edited("github/pull_request/labeled.payload.json", |v| {
        v["action"] = "unlabeled".into();
        v["pull_request"]["labels"] = serde_json::json!([]);
        v["pull_request"]["merged"] = true.into();
        v["pull_request"]["draft"] = true.into();
    });
    let d = parse(Forge::Github, &github_headers("pull_request"), &body).unwrap();
    let EventKind::PullRequest {
        action,
        labels,
        labels_added,
        labels_removed,
        merged,
        draft,
        ..
    } = d.kind
    else {
        panic!("{:?}", d.kind)
    };
    assert_eq!(action, "unlabeled");
    assert!(labels.is_empty() && labels_added.is_empty());
    assert_eq!(labels_removed, vec!["bug".to_string()]);
    assert!(merged && draft);
}

#[test]
fn every_push_fixture() {
    let files = fixtures_in("github/push");
    assert_eq!(files.len(), 6);
    let tag_deletions = [
        "1.payload.json",
        "payload.json",
        "with-installation.payload.json",
        "with-organization.payload.json",
    ];
    for file in tag_deletions {
        let d = parse_fixture("push", &format!("github/push/{file}"));
        assert_eq!(d.repo.as_deref(), Some("Codertocat/Hello-World"));
        assert_eq!(d.action, None);
        assert_eq!(
            d.kind,
            EventKind::TagPush {
                tag: "simple-tag".into(),
                sha: ZERO.into(),
                deleted: true
            },
            "{file}"
        );
    }
    for file in [
        "with-new-branch.payload.json",
        "with-no-username-committer.payload.json",
    ] {
        let d = parse_fixture("push", &format!("github/push/{file}"));
        assert_eq!(d.repo.as_deref(), Some("Codertocat/Hello-World"));
        assert_eq!(
            d.kind,
            EventKind::Push {
                git_ref: "refs/heads/master".into(),
                before: ZERO.into(),
                after: "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into(),
                deleted: false,
                commits: vec!["6113728f27ae82c7b1a177c8d03f9e96e0adf246".into()],
                changed_files: vec!["README.md".into()],
                truncated: false,
            },
            "{file}"
        );
    }
}

#[test]
fn push_changed_files_are_a_sorted_union_across_commits() {
    let body = edited("github/push/with-new-branch.payload.json", |v| {
        let first = v["commits"][0].clone();
        let mut second = first.clone();
        second["id"] = "1111111111111111111111111111111111111111".into();
        second["added"] = serde_json::json!(["src/b.rs"]);
        second["modified"] = serde_json::json!(["README.md", "src/a.rs"]);
        second["removed"] = serde_json::json!(["old.txt"]);
        v["commits"] = serde_json::json!([first, second]);
    });
    let d = parse(Forge::Github, &github_headers("push"), &body).unwrap();
    let EventKind::Push {
        commits, changed_files, ..
    } = d.kind
    else {
        panic!()
    };
    assert_eq!(commits.len(), 2);
    assert_eq!(changed_files, ["README.md", "old.txt", "src/a.rs", "src/b.rs"]);
}

#[test]
fn every_issue_comment_fixture_is_a_plain_issue_comment() {
    let files = fixtures_in("github/issue_comment");
    assert_eq!(files.len(), 4);
    for rel in files {
        let d = parse_fixture("issue_comment", &rel);
        assert_eq!(d.repo.as_deref(), Some("Codertocat/Hello-World"));
        assert_eq!(d.action.as_deref(), Some("created"));
        assert_eq!(
            d.kind,
            EventKind::Comment {
                number: None,
                is_pull_request: false,
                comment_id: 492700400,
                author: "Codertocat".into(),
                body: "You are totally right! I'll get this fixed right away.".into(),
                action: "created".into(),
                author_association: Some("OWNER".into()),
            },
            "{rel}"
        );
    }
}

#[test]
fn issue_comment_on_a_pull_request_has_its_number() {
    let body = edited("github/issue_comment/created.payload.json", |v| {
        v["issue"]["pull_request"] =
            serde_json::json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"});
        v["action"] = "edited".into();
        v["comment"]["body"] = "@greenroom deploy".into();
    });
    let d = parse(Forge::Github, &github_headers("issue_comment"), &body).unwrap();
    let EventKind::Comment {
        number,
        is_pull_request,
        action,
        body,
        ..
    } = d.kind
    else {
        panic!()
    };
    assert_eq!(
        (number, is_pull_request, action.as_str(), body.as_str()),
        (Some(1), true, "edited", "@greenroom deploy")
    );
}

#[test]
fn every_ping_fixture() {
    let expected = [
        ("payload.json", Some("Octocoders/Hello-World")),
        ("with-app_id.payload.json", Some("Octocoders/Hello-World")),
        ("with-organization.payload.json", None),
    ];
    assert_eq!(fixtures_in("github/ping").len(), expected.len());
    for (file, repo) in expected {
        let d = parse_fixture("ping", &format!("github/ping/{file}"));
        assert_eq!(d.kind, EventKind::Ping);
        assert_eq!(d.repo.as_deref(), repo, "{file}");
        assert_eq!(d.event, "ping");
    }
}

#[test]
fn every_release_fixture() {
    let files = fixtures_in("github/release");
    assert_eq!(files.len(), 2);
    for rel in files {
        let d = parse_fixture("release", &rel);
        assert_eq!(d.repo.as_deref(), Some("Codertocat/Hello-World"));
        assert_eq!(
            d.kind,
            EventKind::Release {
                tag: "0.0.1".into(),
                action: "published".into()
            },
            "{rel}"
        );
    }
}

#[test]
fn every_package_and_registry_package_fixture() {
    assert_eq!(fixtures_in("github/package").len(), 2);
    assert_eq!(fixtures_in("github/registry_package").len(), 1);
    let digest_version = "sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498";
    let tag_digest = "sha256:6c62fb45fe66bfb1ea9a66abc38f6a0cc974292b";
    let cases = [
        (
            "package",
            "github/package/published.docker.payload.json",
            digest_version,
            Some(tag_digest),
        ),
        ("package", "github/package/published.npm.payload.json", "1.0.0", None),
        (
            "registry_package",
            "github/registry_package/published.docker.payload.json",
            digest_version,
            Some(tag_digest),
        ),
    ];
    for (event, rel, version, digest) in cases {
        let d = parse_fixture(event, rel);
        assert_eq!(d.repo.as_deref(), Some("Codertocat/hello-world-npm"), "{rel}");
        assert_eq!(d.action.as_deref(), Some("published"));
        assert_eq!(
            d.kind,
            EventKind::Package {
                name: "hello-world-npm".into(),
                version: version.into(),
                // Both examples say `"ecosystem": "docker"` (the npm one included).
                ecosystem: Some("docker".into()),
                action: "published".into(),
                image: None,
                digest: digest.map(String::from),
                published_at: None,
            },
            "{rel}"
        );
    }
}

#[test]
fn check_run_check_suite_and_status_are_other() {
    let mut seen = 0;
    for event in ["check_run", "check_suite", "status"] {
        for rel in fixtures_in(&format!("github/{event}")) {
            let d = parse_fixture(event, &rel);
            assert_eq!(d.kind, EventKind::Other, "{rel}");
            assert!(d.repo.is_some(), "{rel}");
            assert_eq!(d.action.is_some(), event != "status", "{rel}");
            seen += 1;
        }
    }
    assert_eq!(seen, 8 + 8 + 3);
    let d = parse_fixture("check_run", "github/check_run/requested_action.payload.json");
    assert_eq!(
        (d.action.as_deref(), d.repo.as_deref()),
        (Some("requested_action"), Some("electron/electron"))
    );
}

#[test]
fn known_but_unhandled_events_are_other_and_unknown_events_are_refused_distinctly() {
    let body = fixture("github/ping/payload.json");
    let d = parse(Forge::Github, &github_headers("workflow_run"), &body).unwrap();
    assert_eq!(d.kind, EventKind::Other);
    let err = parse(Forge::Github, &github_headers("frobnicate"), b"not even json").unwrap_err();
    assert_eq!(
        err,
        WebhookError::UnknownEvent {
            forge: Forge::Github,
            event: "frobnicate".into()
        }
    );
    assert_eq!(err.http_status(), 202);
    assert!(err.is_ignorable());
}

#[test]
fn every_github_fixture_has_a_test_above() {
    let covered = [
        "pull_request",
        "push",
        "issue_comment",
        "ping",
        "release",
        "package",
        "registry_package",
        "check_run",
        "check_suite",
        "status",
    ];
    let mut dirs: Vec<String> = std::fs::read_dir(common::fixtures_dir().join("github"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    let mut want: Vec<String> = covered.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(dirs, want);
}
