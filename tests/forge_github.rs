//! The GitHub adapter against the fake GitHub (`greenroom-fakeforge`) over
//! real HTTP on loopback: pagination, the mapping to candidates, changed
//! files with renames, statuses, the sticky comment (edited, never
//! reposted), permissions, deployments, and errors that name what failed
//! but never the token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use greenroom::forge::github::Github;
use greenroom::forge::{CommitStatus, DeploymentState, Forge, ForgeError, Permission, STICKY_MARKER, StatusState};
use greenroom_fakeforge::{FakeGithub, FileChange, NewPr};

const TOKEN: &str = "ghp_test_token_do_not_leak_0123456789";
const REPO: &str = "acme/api";

fn forge(fake: &FakeGithub) -> Forge {
    Forge::Github(Github::new(&fake.url(), Some(TOKEN.into())).unwrap())
}

fn status(state: StatusState, description: &str) -> CommitStatus {
    CommitStatus {
        context: "greenroom/staging".into(),
        state,
        target_url: Some("https://greenroom.example/cycles/7".into()),
        description: description.into(),
    }
}

#[tokio::test]
async fn open_prs_follows_pages_and_maps_every_field() {
    let fake = FakeGithub::start(TOKEN).unwrap();
    for i in 0..130u64 {
        fake.add_pr(
            REPO,
            NewPr {
                title: format!("Change {i}"),
                author: format!("dev{}", i % 7),
                draft: i % 10 == 3,
                labels: if i % 5 == 0 {
                    vec!["staging-skip".into(), "bug".into()]
                } else {
                    vec![]
                },
                body: (i % 2 == 0)
                    .then(|| format!("Fixes things.\n\nDepends-On: https://github.com/acme/web/pull/{i}")),
                created_at: format!("2024-03-01T10:{:02}:{:02}Z", i / 60, i % 60),
                updated_at: "2024-03-02T00:00:00Z".into(),
                ..NewPr::default()
            },
        );
    }
    // Not listed: another base, and a closed one.
    fake.add_pr(
        REPO,
        NewPr {
            base: "release".into(),
            ..NewPr::default()
        },
    );
    let closed = fake.add_pr(REPO, NewPr::default());
    fake.close_pr(REPO, closed);

    let prs = forge(&fake).open_prs(REPO, "main").await.unwrap();
    assert_eq!(prs.len(), 130);
    let mut numbers: Vec<u64> = prs.iter().map(|p| p.number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=130).collect::<Vec<_>>());

    let p = prs.iter().find(|p| p.number == 4).unwrap(); // i = 3
    assert_eq!(p.repo, REPO);
    assert_eq!(p.title, "Change 3");
    assert_eq!(p.author, "dev3");
    assert!(p.draft);
    assert!(p.labels.is_empty());
    assert_eq!(p.base_branch, "main");
    assert_eq!(p.head_sha, format!("{:040x}", 0xabc0_0000_u64 + 4));
    assert_eq!(p.body, "");
    assert_eq!(p.web_url.as_deref(), Some("https://github.com/acme/api/pull/4"));
    // 2024-03-01T10:00:03Z
    assert_eq!(p.created_at, 1_709_287_203_000);
    assert_eq!(p.updated_at, 1_709_337_600_000);
    assert_eq!(p.approved_by, None);
    assert_eq!(p.excluded, None);

    let p = prs.iter().find(|p| p.number == 1).unwrap(); // i = 0
    assert!(!p.draft);
    assert_eq!(p.labels, vec!["staging-skip", "bug"]);
    assert!(p.body.starts_with("Fixes things."), "{}", p.body);
    assert!(
        greenroom_core::pending::depends_on(&p.body).is_empty(),
        "pull/0 is no PR"
    );
    let p = prs.iter().find(|p| p.number == 3).unwrap(); // i = 2
    assert_eq!(
        greenroom_core::pending::depends_on(&p.body),
        vec![greenroom_core::pending::PrRef::new("acme/web", 2)]
    );

    // Two pages of 100, each with the documented headers.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/repos/acme/api/pulls");
        assert_eq!(r.query_param("state").as_deref(), Some("open"));
        assert_eq!(r.query_param("base").as_deref(), Some("main"));
        assert_eq!(r.query_param("per_page").as_deref(), Some("100"));
        assert_eq!(r.query_param("page"), Some((i + 1).to_string()));
        assert_eq!(r.headers["accept"], "application/vnd.github+json");
        assert_eq!(r.headers["x-github-api-version"], "2022-11-28");
        assert!(r.headers["user-agent"].starts_with("greenroom/"), "{:?}", r.headers);
        assert!(!r.headers.contains_key("authorization"));
    }
}

#[tokio::test]
async fn changed_files_lists_both_sides_of_renames_across_pages() {
    let fake = FakeGithub::start(TOKEN).unwrap();
    let mut files = vec![
        FileChange::modified("src/lib.rs"),
        FileChange::renamed("docs/old.md", "docs/new.md"),
        FileChange::added("src/new.rs"),
        FileChange::removed("src/gone.rs"),
    ];
    for i in 0..246 {
        files.push(FileChange::modified(&format!("gen/{i:03}.txt")));
    }
    let n = fake.add_pr(
        REPO,
        NewPr {
            files,
            ..NewPr::default()
        },
    );
    let got = forge(&fake).changed_files(REPO, n).await.unwrap();
    assert_eq!(
        &got[..5],
        ["src/lib.rs", "docs/old.md", "docs/new.md", "src/new.rs", "src/gone.rs"]
    );
    assert_eq!(got.len(), 251);
    let pages: Vec<String> = fake.requests().iter().map(|r| r.query_param("page").unwrap()).collect();
    assert_eq!(pages, ["1", "2", "3"]);
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.path == format!("/repos/acme/api/pulls/{n}/files"))
    );
}

#[tokio::test]
async fn statuses_are_set_with_a_short_description() {
    let fake = FakeGithub::start(TOKEN).unwrap();
    let n = fake.add_pr(REPO, NewPr::default());
    let sha = forge(&fake).open_prs(REPO, "main").await.unwrap()[0].head_sha.clone();
    assert_eq!(n, 1);
    let f = forge(&fake);
    f.set_status(REPO, &sha, &status(StatusState::Pending, "staging"))
        .await
        .unwrap();
    let long = "x".repeat(300);
    f.set_status(REPO, &sha, &status(StatusState::Failure, &long))
        .await
        .unwrap();
    let mut no_url = status(StatusState::Error, "infra");
    no_url.target_url = None;
    f.set_status(REPO, &sha, &no_url).await.unwrap();

    let got = fake.statuses(REPO);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].state, "pending");
    assert_eq!(got[0].context, "greenroom/staging");
    assert_eq!(got[0].target_url.as_deref(), Some("https://greenroom.example/cycles/7"));
    assert_eq!(got[1].state, "failure");
    assert_eq!(got[1].description.as_ref().unwrap().chars().count(), 140);
    assert_eq!(got[2].state, "error");
    assert_eq!(got[2].target_url, None);
    let last = fake.requests().last().cloned().unwrap();
    assert_eq!(last.path, format!("/repos/acme/api/statuses/{sha}"));
    assert!(
        last.body.unwrap().get("target_url").is_none(),
        "no null target_url is sent"
    );

    // An unknown commit: GitHub's 422, as an error naming the path.
    let err = f
        .set_status(REPO, "0000000", &status(StatusState::Success, "ok"))
        .await
        .unwrap_err();
    match &err {
        ForgeError::Status {
            status, method, path, ..
        } => {
            assert_eq!((*status, method.as_str()), (422, "POST"));
            assert_eq!(path, "/repos/acme/api/statuses/0000000");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_sticky_comment_is_edited_not_reposted() {
    let fake = FakeGithub::start(TOKEN).unwrap();
    let n = fake.add_pr(REPO, NewPr::default());
    // Enough comments by people that the sticky one is on page 2.
    for i in 0..120 {
        fake.add_comment(REPO, n, "someone", &format!("comment {i}"));
    }
    let f = forge(&fake);
    let id1 = f.upsert_sticky(REPO, n, "Staging: **building**").await.unwrap();
    let id2 = f.upsert_sticky(REPO, n, "Staging: **deployed**").await.unwrap();
    assert_eq!(id1, id2);
    let mine: Vec<_> = fake
        .comments(REPO, n)
        .into_iter()
        .filter(|c| c.body.contains(STICKY_MARKER))
        .collect();
    assert_eq!(mine.len(), 1, "{mine:#?}");
    assert_eq!(mine[0].id, id1);
    assert_eq!(mine[0].author, "greenroom-bot");
    assert_eq!(mine[0].body, format!("{STICKY_MARKER}\nStaging: **deployed**"));
    assert_eq!(mine[0].edits, vec![format!("{STICKY_MARKER}\nStaging: **building**")]);
    let patches: Vec<_> = fake.requests().into_iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].path, format!("/repos/acme/api/issues/comments/{id1}"));

    // The same body again: nothing is sent.
    fake.clear_requests();
    assert_eq!(f.upsert_sticky(REPO, n, "Staging: **deployed**").await.unwrap(), id1);
    assert!(fake.requests().iter().all(|r| r.method == "GET"));

    // Plain comments are always new.
    let c1 = f.comment(REPO, n, "@alice deployed to staging").await.unwrap();
    let c2 = f.comment(REPO, n, "@alice deployed to staging").await.unwrap();
    assert_ne!(c1, c2);
    assert_eq!(fake.comments(REPO, n).len(), 123);
}

#[tokio::test]
async fn permissions_map_role_names() {
    let fake = FakeGithub::start(TOKEN).unwrap();
    fake.add_repo(REPO);
    let cases = [
        ("ann", "admin", Permission::Admin),
        ("max", "maintain", Permission::Maintain),
        ("wes", "write", Permission::Write),
        ("tia", "triage", Permission::Triage),
        ("rob", "read", Permission::Read),
        ("nil", "none", Permission::None),
    ];
    for (login, role, _) in cases {
        fake.set_permission(REPO, login, role);
    }
    let f = forge(&fake);
    for (login, _, want) in cases {
        assert_eq!(f.permission(REPO, login).await.unwrap(), Some(want), "{login}");
    }
    assert_eq!(f.permission(REPO, "stranger").await.unwrap(), None);
    // A login is one path segment, whatever it contains.
    assert_eq!(f.permission(REPO, "../../pulls").await.unwrap(), None);
    let last = fake.requests().last().cloned().unwrap();
    assert_eq!(last.path, "/repos/acme/api/collaborators/..%2F..%2Fpulls/permission");
}

#[tokio::test]
async fn deployments_are_created_and_reported() {
    let fake = FakeGithub::start(TOKEN).unwrap();
    fake.add_pr(REPO, NewPr::default());
    let f = forge(&fake);
    let sha = f.open_prs(REPO, "main").await.unwrap()[0].head_sha.clone();
    // A failing check: GitHub refuses a deployment that requires contexts
    // by default; greenroom asks for none.
    f.set_status(REPO, &sha, &status(StatusState::Failure, "lint"))
        .await
        .unwrap();
    let id = f
        .create_deployment(REPO, &sha, "staging", "greenroom cycle 7")
        .await
        .unwrap()
        .expect("an id");
    f.deployment_status(
        REPO,
        id,
        DeploymentState::InProgress,
        None,
        Some("https://g.example/cycles/7"),
    )
    .await
    .unwrap();
    f.deployment_status(
        REPO,
        id,
        DeploymentState::Success,
        Some("https://staging.example"),
        Some("https://g.example/cycles/7"),
    )
    .await
    .unwrap();
    let ds = fake.deployments(REPO);
    assert_eq!(ds.len(), 1);
    let d = &ds[0];
    assert_eq!(
        (d.id, d.git_ref.as_str(), d.sha.as_str()),
        (id, sha.as_str(), sha.as_str())
    );
    assert_eq!(d.environment, "staging");
    assert_eq!(d.description.as_deref(), Some("greenroom cycle 7"));
    assert!(!d.auto_merge);
    assert_eq!(d.required_contexts, Some(vec![]));
    assert!(!d.production_environment);
    let states: Vec<&str> = d.statuses.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["in_progress", "success"]);
    assert_eq!(
        d.statuses[1].environment_url.as_deref(),
        Some("https://staging.example")
    );
    assert_eq!(d.statuses[0].environment_url, None);
    assert_eq!(d.statuses[1].log_url.as_deref(), Some("https://g.example/cycles/7"));

    // An unknown deployment: 404, named.
    let err = f
        .deployment_status(REPO, 999_999, DeploymentState::Error, None, None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("/repos/acme/api/deployments/999999/statuses"),
        "{err}"
    );
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn errors_name_method_path_status_and_never_the_token() {
    let fake = FakeGithub::start(TOKEN).unwrap();
    fake.add_pr(REPO, NewPr::default());

    // Wrong token: 401.
    let bad = Forge::Github(Github::new(&fake.url(), Some("ghp_wrong_secret_value".into())).unwrap());
    let err = bad.open_prs(REPO, "main").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ForgeError::Status { status: 401, .. }), "{err:?}");
    assert!(text.contains("github: GET /repos/acme/api/pulls"), "{text}");
    assert!(text.contains("401") && text.contains("Bad credentials"), "{text}");
    assert!(!text.contains("ghp_wrong_secret_value") && !format!("{err:?}").contains("ghp_wrong"));
    assert!(!format!("{bad:?}").contains("ghp_wrong"), "{bad:?}");

    // No token at all: 401 too.
    let anon = Forge::Github(Github::new(&fake.url(), None).unwrap());
    assert!(matches!(
        anon.open_prs(REPO, "main").await,
        Err(ForgeError::Status { status: 401, .. })
    ));

    // A server error.
    fake.fail_next(500, 1);
    let err = forge(&fake).comment(REPO, 1, "hello").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ForgeError::Status { status: 500, .. }), "{err:?}");
    assert!(text.contains("POST /repos/acme/api/issues/1/comments"), "{text}");
    assert!(!text.contains(TOKEN) && !format!("{err:?}").contains(TOKEN));

    // Nobody listening: a transport error, still without the token.
    let url = fake.url();
    drop(fake);
    let gone = Forge::Github(Github::new(&url, Some(TOKEN.into())).unwrap());
    let err = gone.permission(REPO, "alice").await.unwrap_err();
    assert!(matches!(err, ForgeError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("/repos/acme/api/collaborators/alice/permission"),
        "{err}"
    );
    assert!(!err.to_string().contains(TOKEN) && !format!("{err:?}").contains(TOKEN));

    // Bad repository ids and URLs are configuration errors.
    assert!(matches!(
        forge_for_url("http://127.0.0.1:1").open_prs("not-a-repo", "main").await,
        Err(ForgeError::Config(_))
    ));
    assert!(matches!(Github::new("ftp://x", None), Err(ForgeError::Config(_))));
    assert!(matches!(
        Github::new("https://user:pw@api.github.com", None),
        Err(ForgeError::Config(_))
    ));
}

fn forge_for_url(url: &str) -> Forge {
    Forge::Github(Github::new(url, Some(TOKEN.into())).unwrap())
}

#[tokio::test]
async fn a_configured_component_reads_its_token_reference() {
    let fake = FakeGithub::start(TOKEN).unwrap();
    fake.add_pr(REPO, NewPr::default());
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("gh-token"), format!("{TOKEN}\n")).unwrap();
    let text = format!(
        "state_dir = \"{state}\"\n\n[github]\ntoken = \"file:gh-token\"\napi_url = \"{url}\"\n\n[[component]]\nname = \"api\"\nrepo = \"https://github.com/acme/api\"\nrun = \"true\"\n\n[[environment]]\nname = \"staging\"\n",
        state = tmp.path().join("state").display(),
        url = fake.url(),
    );
    let config = greenroom_core::config::parse(&text, &tmp.path().join("greenroom.toml"), tmp.path()).unwrap();
    let (forge, id) = Forge::for_component(&config.forges, &config.components[0], &tmp.path().join("state")).unwrap();
    assert_eq!((forge.kind(), id.as_str()), ("github", REPO));
    assert_eq!(forge.open_prs(&id, "main").await.unwrap().len(), 1);
    assert!(!format!("{forge:?}").contains(TOKEN));

    // A token reference that cannot be read: the error names it, no value.
    std::fs::remove_file(tmp.path().join("gh-token")).unwrap();
    let err = Forge::for_component(&config.forges, &config.components[0], tmp.path()).unwrap_err();
    assert!(matches!(err, ForgeError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("gh-token"), "{err}");
}
