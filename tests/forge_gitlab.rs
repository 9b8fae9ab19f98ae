//! The GitLab adapter against the fake GitLab (`greenroom-fakeforge`) over
//! real HTTP on loopback: projects by URL-encoded path, pagination by
//! `x-next-page`, drafts (and the old `work_in_progress`), diffs with
//! renames, statuses (state mapping, repeated states), the sticky note,
//! member access levels, and errors without the token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use greenroom::forge::gitlab::Gitlab;
use greenroom::forge::{CommitStatus, DeploymentState, Forge, ForgeError, Permission, STICKY_MARKER, StatusState};
use greenroom_fakeforge::{FakeGitlab, MrDiff, NewMr};

const TOKEN: &str = "glpat-test-token-do-not-leak-42";
const PROJECT: &str = "acme/backend/api";

fn forge(fake: &FakeGitlab) -> Forge {
    Forge::Gitlab(Gitlab::new(&fake.url(), Some(TOKEN.into())).unwrap())
}

fn status(state: StatusState) -> CommitStatus {
    CommitStatus {
        context: "greenroom/staging".into(),
        state,
        target_url: Some("https://greenroom.example/cycles/3".into()),
        description: "staging".into(),
    }
}

#[tokio::test]
async fn open_mrs_follow_pages_and_map_every_field() {
    let fake = FakeGitlab::start(TOKEN).unwrap();
    for i in 0..130u64 {
        fake.add_mr(
            PROJECT,
            NewMr {
                title: format!("Change {i}"),
                author: format!("dev{}", i % 4),
                draft: i % 10 == 1,
                labels: if i % 3 == 0 {
                    vec!["staging-skip".into()]
                } else {
                    vec![]
                },
                description: (i == 5).then(|| {
                    "Needs the client.\n\nDepends-On: https://gitlab.example.com/acme/client/-/merge_requests/9".into()
                }),
                created_at: format!("2024-05-01T08:00:{:02}.250Z", i % 60),
                updated_at: "2024-05-02T08:00:00.000+02:00".into(),
                ..NewMr::default()
            },
        );
    }
    fake.add_mr(
        PROJECT,
        NewMr {
            target_branch: "stable".into(),
            ..NewMr::default()
        },
    );
    let closed = fake.add_mr(PROJECT, NewMr::default());
    fake.close_mr(PROJECT, closed);

    let mrs = forge(&fake).open_prs(PROJECT, "main").await.unwrap();
    assert_eq!(mrs.len(), 130);
    let m = mrs.iter().find(|m| m.number == 2).unwrap(); // i = 1
    assert_eq!(m.repo, PROJECT);
    assert_eq!(m.title, "Change 1");
    assert_eq!(m.author, "dev1");
    assert!(m.draft);
    assert!(m.labels.is_empty());
    assert_eq!(m.base_branch, "main");
    assert_eq!(m.head_sha, format!("{:040x}", 0xdef0_0000_u64 + 2));
    assert_eq!(
        m.web_url.as_deref(),
        Some("https://gitlab.example.com/acme/backend/api/-/merge_requests/2")
    );
    // 2024-05-01T08:00:01.250Z and 2024-05-02T06:00:00Z.
    assert_eq!(m.created_at, 1_714_550_401_250);
    assert_eq!(m.updated_at, 1_714_629_600_000);
    let m = mrs.iter().find(|m| m.number == 1).unwrap(); // i = 0
    assert!(!m.draft);
    assert_eq!(m.labels, vec!["staging-skip"]);
    let m = mrs.iter().find(|m| m.number == 6).unwrap(); // i = 5
    assert_eq!(
        greenroom_core::pending::depends_on(&m.body),
        vec![greenroom_core::pending::PrRef::new("acme/client", 9)]
    );

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/api/v4/projects/acme%2Fbackend%2Fapi/merge_requests");
        assert_eq!(r.query_param("state").as_deref(), Some("opened"));
        assert_eq!(r.query_param("target_branch").as_deref(), Some("main"));
        assert_eq!(r.query_param("per_page").as_deref(), Some("100"));
        assert_eq!(r.query_param("page"), Some((i + 1).to_string()));
        assert!(r.headers["user-agent"].starts_with("greenroom/"));
        assert!(!r.headers.contains_key("private-token"));
    }
}

#[tokio::test]
async fn drafts_fall_back_to_work_in_progress() {
    let fake = FakeGitlab::start(TOKEN).unwrap();
    fake.set_legacy_wip(true);
    fake.add_mr(
        PROJECT,
        NewMr {
            draft: true,
            ..NewMr::default()
        },
    );
    fake.add_mr(PROJECT, NewMr::default());
    let mut mrs = forge(&fake).open_prs(PROJECT, "main").await.unwrap();
    mrs.sort_by_key(|m| m.number);
    assert_eq!(mrs.iter().map(|m| m.draft).collect::<Vec<_>>(), [true, false]);
}

#[tokio::test]
async fn changed_files_include_both_sides_of_renames() {
    let fake = FakeGitlab::start(TOKEN).unwrap();
    let mut diffs = vec![
        MrDiff::modified("app/main.py"),
        MrDiff::renamed("app/old_name.py", "app/new_name.py"),
        MrDiff::added("docs/new.md"),
        MrDiff::deleted("legacy.cfg"),
    ];
    for i in 0..150 {
        diffs.push(MrDiff::modified(&format!("data/{i:03}.json")));
    }
    let iid = fake.add_mr(
        PROJECT,
        NewMr {
            diffs,
            ..NewMr::default()
        },
    );
    let files = forge(&fake).changed_files(PROJECT, iid).await.unwrap();
    assert_eq!(
        &files[..5],
        [
            "app/main.py",
            "app/old_name.py",
            "app/new_name.py",
            "docs/new.md",
            "legacy.cfg"
        ]
    );
    assert_eq!(files.len(), 155);
    let paths: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths.len(), 2);
    assert!(
        paths
            .iter()
            .all(|p| p == &format!("/api/v4/projects/acme%2Fbackend%2Fapi/merge_requests/{iid}/diffs"))
    );
}

#[tokio::test]
async fn statuses_map_states_and_tolerate_repeats() {
    let fake = FakeGitlab::start(TOKEN).unwrap();
    fake.add_mr(PROJECT, NewMr::default());
    let f = forge(&fake);
    let sha = f.open_prs(PROJECT, "main").await.unwrap()[0].head_sha.clone();
    f.set_status(PROJECT, &sha, &status(StatusState::Pending))
        .await
        .unwrap();
    // GitLab answers 400 "Cannot transition status via :enqueue from :pending".
    f.set_status(PROJECT, &sha, &status(StatusState::Pending))
        .await
        .unwrap();
    f.set_status(PROJECT, &sha, &status(StatusState::Success))
        .await
        .unwrap();
    f.set_status(PROJECT, &sha, &status(StatusState::Failure))
        .await
        .unwrap();
    f.set_status(PROJECT, &sha, &status(StatusState::Error)).await.unwrap();
    let got = fake.statuses(PROJECT);
    let states: Vec<&str> = got.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["pending", "success", "failed", "failed"]);
    assert!(got.iter().all(|s| s.name == "greenroom/staging"));
    assert_eq!(got[0].target_url.as_deref(), Some("https://greenroom.example/cycles/3"));
    assert_eq!(got[0].description.as_deref(), Some("staging"));
    let repeated = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .nth(1)
        .unwrap();
    assert_eq!(
        repeated.path,
        format!("/api/v4/projects/acme%2Fbackend%2Fapi/statuses/{sha}")
    );

    // An unknown commit is GitLab's 404.
    let err = f
        .set_status(PROJECT, "deadbeef", &status(StatusState::Success))
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::Status { status: 404, .. }), "{err:?}");
    assert!(err.to_string().contains("References for commit Not Found"), "{err}");
}

#[tokio::test]
async fn the_sticky_note_is_edited_not_reposted() {
    let fake = FakeGitlab::start(TOKEN).unwrap();
    let iid = fake.add_mr(PROJECT, NewMr::default());
    for i in 0..110 {
        fake.add_note(PROJECT, iid, "someone", &format!("note {i}"), false);
    }
    // A system note quoting the marker is not ours to edit (GitLab: 403).
    fake.add_note(PROJECT, iid, "someone", &format!("mentioned {STICKY_MARKER}"), true);
    let f = forge(&fake);
    let a = f.upsert_sticky(PROJECT, iid, "building").await.unwrap();
    let b = f.upsert_sticky(PROJECT, iid, "deployed").await.unwrap();
    assert_eq!(a, b);
    let ours: Vec<_> = fake
        .notes(PROJECT, iid)
        .into_iter()
        .filter(|n| !n.system && n.body.contains(STICKY_MARKER))
        .collect();
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0].body, format!("{STICKY_MARKER}\ndeployed"));
    assert_eq!(ours[0].edits, vec![format!("{STICKY_MARKER}\nbuilding")]);
    let puts: Vec<_> = fake.requests().into_iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 1);
    assert_eq!(
        puts[0].path,
        format!("/api/v4/projects/acme%2Fbackend%2Fapi/merge_requests/{iid}/notes/{a}")
    );
    assert_eq!(
        puts[0].body.as_ref().unwrap()["body"],
        format!("{STICKY_MARKER}\ndeployed")
    );

    let c = f.comment(PROJECT, iid, "@bob deployed").await.unwrap();
    assert_ne!(c, a);
    assert_eq!(fake.notes(PROJECT, iid).len(), 113);
}

#[tokio::test]
async fn permissions_come_from_member_access_levels() {
    let fake = FakeGitlab::start(TOKEN).unwrap();
    fake.add_project(PROJECT);
    for (user, level) in [
        ("olga", 50),
        ("mia", 40),
        ("dev", 30),
        ("rita", 20),
        ("gus", 10),
        ("min", 5),
    ] {
        fake.add_member(PROJECT, user, level);
    }
    // `query` matches substrings: `devops` must not stand in for `dev`.
    fake.add_member(PROJECT, "devops", 50);
    let f = forge(&fake);
    let want = [
        ("olga", Some(Permission::Admin)),
        ("mia", Some(Permission::Maintain)),
        ("dev", Some(Permission::Write)),
        ("rita", Some(Permission::Triage)),
        ("gus", Some(Permission::Read)),
        ("min", Some(Permission::None)),
        ("stranger", None),
    ];
    for (user, p) in want {
        assert_eq!(f.permission(PROJECT, user).await.unwrap(), p, "{user}");
    }
    let r = fake
        .requests()
        .into_iter()
        .find(|r| r.query_param("query").as_deref() == Some("dev"))
        .unwrap();
    assert_eq!(r.path, "/api/v4/projects/acme%2Fbackend%2Fapi/members/all");
}

#[tokio::test]
async fn deployments_are_not_a_gitlab_feature_here() {
    let fake = FakeGitlab::start(TOKEN).unwrap();
    let f = forge(&fake);
    assert_eq!(f.create_deployment(PROJECT, "abc", "staging", "x").await.unwrap(), None);
    f.deployment_status(PROJECT, 1, DeploymentState::Success, None, None)
        .await
        .unwrap();
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn errors_name_method_path_status_and_never_the_token() {
    let fake = FakeGitlab::start(TOKEN).unwrap();
    fake.add_mr(PROJECT, NewMr::default());

    let bad = Forge::Gitlab(Gitlab::new(&fake.url(), Some("glpat-wrong-secret".into())).unwrap());
    let err = bad.open_prs(PROJECT, "main").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ForgeError::Status { status: 401, .. }), "{err:?}");
    assert!(
        text.contains("gitlab: GET /api/v4/projects/acme%2Fbackend%2Fapi/merge_requests"),
        "{text}"
    );
    assert!(text.contains("401 Unauthorized"), "{text}");
    assert!(!text.contains("glpat-wrong-secret") && !format!("{err:?}").contains("glpat-wrong"));
    assert!(!format!("{bad:?}").contains("glpat-wrong"));

    fake.fail_next(500, 1);
    let err = forge(&fake).upsert_sticky(PROJECT, 1, "x").await.unwrap_err();
    assert!(matches!(err, ForgeError::Status { status: 500, .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("GET /api/v4/projects/acme%2Fbackend%2Fapi/merge_requests/1/notes")
    );
    assert!(!err.to_string().contains(TOKEN) && !format!("{err:?}").contains(TOKEN));

    let err = forge(&fake).open_prs("acme/nope", "main").await.unwrap_err();
    assert!(err.to_string().contains("404 Project Not Found"), "{err}");
    assert!(matches!(
        forge(&fake).open_prs("nope", "main").await,
        Err(ForgeError::Config(_))
    ));
}
