//! GitLab example payloads (GitLab docs, see fixtures/SOURCES.md) parse into
//! the expected normalized events, including the merge request action mapping
//! (exercised on edited copies of the documented example).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{edited, fixture, fixtures_in, gitlab_headers};
use greenroom_webhook::{Delivery, EventKind, Forge, WebhookError, parse};
use serde_json::json;

fn parse_fixture(event: &str, rel: &str) -> Delivery {
    parse(Forge::Gitlab, &gitlab_headers(event), &fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn all_seven_fixtures_are_covered() {
    assert_eq!(
        fixtures_in("gitlab"),
        [
            "gitlab/deployment.json",
            "gitlab/merge_request.json",
            "gitlab/note_issue.json",
            "gitlab/note_merge_request.json",
            "gitlab/pipeline.json",
            "gitlab/push.json",
            "gitlab/tag_push.json",
        ]
    );
}

#[test]
fn push_hook() {
    let d = parse_fixture("Push Hook", "gitlab/push.json");
    assert_eq!(d.forge, Forge::Gitlab);
    assert_eq!(d.id, "13792a34-cac6-4fda-95a8-c58e00a3954e");
    assert_eq!(d.event, "Push Hook");
    assert_eq!(d.repo.as_deref(), Some("mike/diaspora"));
    assert_eq!(
        d.kind,
        EventKind::Push {
            git_ref: "refs/heads/master".into(),
            before: "95790bf891e76fee5e1747ab589903a6a1f80f22".into(),
            after: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7".into(),
            deleted: false,
            commits: vec![
                "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327".into(),
                "da1560886d4f094c3e6c9ef40349f7d38b5d27d7".into()
            ],
            changed_files: vec!["CHANGELOG".into(), "app/controller/application.rb".into()],
            // total_commits_count is 4, two commits are listed.
            truncated: true,
        }
    );
}

#[test]
fn branch_deletion_is_a_deleted_push() {
    let body = edited("gitlab/push.json", |v| {
        v["after"] = "0000000000000000000000000000000000000000".into();
        v["checkout_sha"] = serde_json::Value::Null;
        v["commits"] = json!([]);
        v["total_commits_count"] = 0.into();
    });
    let d = parse(Forge::Gitlab, &gitlab_headers("Push Hook"), &body).unwrap();
    let EventKind::Push {
        deleted,
        truncated,
        commits,
        ..
    } = d.kind
    else {
        panic!()
    };
    assert!(deleted && !truncated && commits.is_empty());
}

#[test]
fn tag_push_hook() {
    let d = parse_fixture("Tag Push Hook", "gitlab/tag_push.json");
    assert_eq!(d.repo.as_deref(), Some("jsmith/example"));
    assert_eq!(
        d.kind,
        EventKind::TagPush {
            tag: "v1.0.0".into(),
            sha: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7".into(),
            deleted: false
        }
    );
    let body = edited("gitlab/tag_push.json", |v| {
        v["before"] = v["after"].clone();
        v["after"] = "0000000000000000000000000000000000000000".into();
        v["checkout_sha"] = serde_json::Value::Null;
    });
    let d = parse(Forge::Gitlab, &gitlab_headers("Tag Push Hook"), &body).unwrap();
    assert_eq!(
        d.kind,
        EventKind::TagPush {
            tag: "v1.0.0".into(),
            sha: "0000000000000000000000000000000000000000".into(),
            deleted: true
        }
    );
}

#[test]
fn merge_request_hook_open() {
    let d = parse_fixture("Merge Request Hook", "gitlab/merge_request.json");
    assert_eq!(d.repo.as_deref(), Some("gitlabhq/gitlab-test"));
    assert_eq!(
        d.action.as_deref(),
        Some("open"),
        "Delivery.action keeps GitLab's own word"
    );
    assert_eq!(
        d.kind,
        EventKind::PullRequest {
            number: 1,
            action: "opened".into(),
            head_sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7".into(),
            head_ref: "ms-viewport".into(),
            base_ref: "master".into(),
            author: "root".into(),
            draft: false,
            labels: vec!["API".into()],
            // The documented example's `changes.labels` goes from API to Platform.
            labels_added: vec!["Platform".into()],
            labels_removed: vec!["API".into()],
            merged: false,
            title: "MS-Viewport".into(),
            updated_at: Some("2013-12-03T17:23:34Z".into()),
        }
    );
}

/// The normalized action and `merged` of the example after `edit`.
fn mr_action(edit: impl FnOnce(&mut serde_json::Value)) -> (String, bool) {
    let body = edited("gitlab/merge_request.json", edit);
    let d = parse(Forge::Gitlab, &gitlab_headers("Merge Request Hook"), &body).unwrap();
    match d.kind {
        EventKind::PullRequest { action, merged, .. } => (action, merged),
        other => panic!("{other:?}"),
    }
}

#[test]
fn merge_request_action_mapping() {
    let set = |action: &'static str| move |v: &mut serde_json::Value| v["object_attributes"]["action"] = action.into();
    assert_eq!(mr_action(set("open")), ("opened".into(), false));
    assert_eq!(mr_action(set("reopen")), ("reopened".into(), false));
    assert_eq!(mr_action(set("close")), ("closed".into(), false));
    assert_eq!(mr_action(set("merge")), ("closed".into(), true));
    assert_eq!(mr_action(set("approved")), ("approved".into(), false));
    // update with new commits (oldrev present) -> synchronize
    assert_eq!(
        mr_action(|v| {
            v["object_attributes"]["action"] = "update".into();
            v["object_attributes"]["oldrev"] = "95790bf891e76fee5e1747ab589903a6a1f80f22".into();
        }),
        ("synchronize".into(), false)
    );
    // update without commits, draft flag flipped true -> false (as in the example's `changes`)
    assert_eq!(
        mr_action(|v| v["object_attributes"]["action"] = "update".into()),
        ("ready_for_review".into(), false)
    );
    assert_eq!(
        mr_action(|v| {
            v["object_attributes"]["action"] = "update".into();
            v["changes"]["draft"] = json!({"previous": false, "current": true});
        }),
        ("converted_to_draft".into(), false)
    );
    // update, labels changed only
    assert_eq!(
        mr_action(|v| {
            v["object_attributes"]["action"] = "update".into();
            v["changes"].as_object_mut().unwrap().remove("draft");
        }),
        ("labeled".into(), false)
    );
    assert_eq!(
        mr_action(|v| {
            v["object_attributes"]["action"] = "update".into();
            v["changes"] = json!({"labels": {"previous": [{"title": "API"}], "current": []}});
        }),
        ("unlabeled".into(), false)
    );
    // update, nothing greenroom cares about changed
    assert_eq!(
        mr_action(|v| {
            v["object_attributes"]["action"] = "update".into();
            v["object_attributes"]["oldrev"] = serde_json::Value::Null;
            v["changes"] = json!({"title": {"previous": "a", "current": "b"}});
        }),
        ("edited".into(), false)
    );
    // a merged state also sets merged
    assert_eq!(
        mr_action(|v| {
            v["object_attributes"]["action"] = "update".into();
            v["object_attributes"]["state"] = "merged".into();
            v.as_object_mut().unwrap().remove("changes");
        }),
        ("edited".into(), true)
    );
}

#[test]
fn merge_request_work_in_progress_is_draft_and_top_level_labels_are_a_fallback() {
    let body = edited("gitlab/merge_request.json", |v| {
        v["object_attributes"]["work_in_progress"] = true.into();
        v["object_attributes"].as_object_mut().unwrap().remove("labels");
        v["labels"] = json!([{"title": "staging-deploy"}]);
    });
    let d = parse(Forge::Gitlab, &gitlab_headers("Merge Request Hook"), &body).unwrap();
    let EventKind::PullRequest { draft, labels, .. } = d.kind else {
        panic!()
    };
    assert!(draft);
    assert_eq!(labels, ["staging-deploy"]);
}

#[test]
fn note_on_merge_request() {
    let d = parse_fixture("Note Hook", "gitlab/note_merge_request.json");
    assert_eq!(d.repo.as_deref(), Some("gitlab-org/gitlab-test"));
    assert_eq!(d.action.as_deref(), Some("create"));
    assert_eq!(
        d.kind,
        EventKind::Comment {
            number: Some(1),
            is_pull_request: true,
            comment_id: 1244,
            author: "root".into(),
            body: "This MR needs work.".into(),
            action: "created".into(),
            author_association: None,
        }
    );
}

#[test]
fn note_on_issue() {
    let d = parse_fixture("Note Hook", "gitlab/note_issue.json");
    assert_eq!(d.repo.as_deref(), Some("gitlab-org/gitlab-test"));
    assert_eq!(
        d.kind,
        EventKind::Comment {
            number: None,
            is_pull_request: false,
            comment_id: 1241,
            author: "root".into(),
            body: "Hello world".into(),
            action: "created".into(),
            author_association: None,
        }
    );
}

#[test]
fn edited_and_confidential_notes() {
    let body = edited("gitlab/note_merge_request.json", |v| {
        v["object_attributes"]["action"] = "update".into()
    });
    let d = parse(Forge::Gitlab, &gitlab_headers("Confidential Note Hook"), &body).unwrap();
    let EventKind::Comment { action, number, .. } = d.kind else {
        panic!()
    };
    assert_eq!((action.as_str(), number), ("edited", Some(1)));
    let body = edited("gitlab/note_issue.json", |v| {
        v["object_attributes"].as_object_mut().unwrap().remove("action");
    });
    let d = parse(Forge::Gitlab, &gitlab_headers("Note Hook"), &body).unwrap();
    let EventKind::Comment { action, .. } = d.kind else {
        panic!()
    };
    assert_eq!(action, "created");
}

#[test]
fn pipeline_and_deployment_are_other() {
    let d = parse_fixture("Pipeline Hook", "gitlab/pipeline.json");
    assert_eq!(
        (d.kind, d.repo.as_deref()),
        (EventKind::Other, Some("gitlab-org/gitlab-test"))
    );
    let d = parse_fixture("Deployment Hook", "gitlab/deployment.json");
    assert_eq!(
        (d.kind, d.repo.as_deref()),
        (EventKind::Other, Some("root/test-deployment-webhooks"))
    );
}

#[test]
fn release_hook_actions_are_mapped() {
    // Shape of GitLab's documented Release Hook (only the fields greenroom reads).
    let body =
        br#"{"object_kind":"release","action":"create","tag":"v1.1","project":{"path_with_namespace":"group/app"}}"#;
    let d = parse(Forge::Gitlab, &gitlab_headers("Release Hook"), body).unwrap();
    assert_eq!(d.repo.as_deref(), Some("group/app"));
    assert_eq!(
        d.kind,
        EventKind::Release {
            tag: "v1.1".into(),
            action: "created".into()
        }
    );
}

#[test]
fn idempotency_key_is_preferred_over_event_uuid() {
    let body = fixture("gitlab/push.json");
    let mut headers = gitlab_headers("Push Hook");
    headers.push(("Idempotency-Key".into(), "f5e5f430-f57b-4e6e-9fac-d9128cd7232f".into()));
    assert_eq!(
        parse(Forge::Gitlab, &headers, &body).unwrap().id,
        "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"
    );
    let only_key = [("X-Gitlab-Event", "Push Hook"), ("idempotency-key", "k-1")];
    assert_eq!(parse(Forge::Gitlab, &only_key, &body).unwrap().id, "k-1");
    let none = [("X-Gitlab-Event", "Push Hook")];
    assert!(matches!(
        parse(Forge::Gitlab, &none, &body),
        Err(WebhookError::MissingDeliveryId { .. })
    ));
}

#[test]
fn unknown_gitlab_event() {
    let err = parse(Forge::Gitlab, &gitlab_headers("Frobnicate Hook"), b"{}").unwrap_err();
    assert_eq!(
        err,
        WebhookError::UnknownEvent {
            forge: Forge::Gitlab,
            event: "Frobnicate Hook".into()
        }
    );
}
