//! The git forge against a real repository in a temporary directory:
//! `refs/pending/N` refs become candidates (title, author, body with
//! `Depends-On:`, `Labels:` trailer, WIP drafts, commit dates), changed
//! files are diffed from the merge base (renames on both sides), refs that
//! go away go away, and feedback lands in files under the state directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use greenroom::forge::git::GitForge;
use greenroom::forge::{CommitStatus, DeploymentState, Forge, STICKY_MARKER, StatusState};
use greenroom_core::pending::{PrRef, depends_on};

/// Runs git in `dir` with a fixed identity and date, isolated from the
/// user's configuration; returns stdout.
fn git(dir: &Path, args: &[&str], who: (&str, &str), date: &str) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", who.0)
        .env("GIT_AUTHOR_EMAIL", who.1)
        .env("GIT_COMMITTER_NAME", "CI")
        .env("GIT_COMMITTER_EMAIL", "ci@example.com")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const ME: (&str, &str) = ("Maintainer", "maint@example.com");

fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A repository with `main` and three pending changes:
/// 1 renames docs/guide.md and edits a.txt (alice), 2 adds c.txt with a
/// `Depends-On:` and `Labels:` (bob), 3 is a WIP (carol). `main` moves on
/// (b.txt) after they branched off. Returns the heads of 1, 2, 3.
fn make_repo(dir: &Path) -> [String; 3] {
    git(dir, &["init", "-q", "-b", "main"], ME, "2024-01-01T00:00:00Z");
    write(dir, "a.txt", "a\n");
    write(dir, "b.txt", "b\n");
    write(
        dir,
        "docs/guide.md",
        "# Guide\n\nLong enough to be recognised as a rename.\n",
    );
    git(dir, &["add", "-A"], ME, "2024-01-01T00:00:00Z");
    git(dir, &["commit", "-q", "-m", "Initial"], ME, "2024-01-01T00:00:00Z");

    let alice = ("Alice A", "alice@example.com");
    git(dir, &["checkout", "-q", "-b", "c1", "main"], ME, "2024-01-01T00:00:00Z");
    git(
        dir,
        &["mv", "docs/guide.md", "docs/manual.md"],
        alice,
        "2024-02-01T10:00:00Z",
    );
    write(dir, "a.txt", "a changed\n");
    git(
        dir,
        &["commit", "-q", "-am", "Rename the guide"],
        alice,
        "2024-02-01T10:00:00Z",
    );
    let h1 = git(dir, &["rev-parse", "HEAD"], ME, "2024-01-01T00:00:00Z");

    let bob = ("Bob Builder", "bob@example.org");
    git(dir, &["checkout", "-q", "-b", "c2", "main"], ME, "2024-01-01T00:00:00Z");
    write(dir, "c.txt", "c\n");
    git(dir, &["add", "c.txt"], bob, "2024-02-02T10:00:00Z");
    git(
        dir,
        &[
            "commit",
            "-q",
            "-m",
            "Add c",
            "-m",
            "Needs the API change first.",
            "-m",
            "Depends-On: https://github.com/acme/api/pull/7\nLabels: staging-skip, docs",
        ],
        bob,
        "2024-02-02T10:00:00Z",
    );
    let h2 = git(dir, &["rev-parse", "HEAD"], ME, "2024-01-01T00:00:00Z");

    let carol = ("Carol", "carol@example.net");
    git(dir, &["checkout", "-q", "-b", "c3", "main"], ME, "2024-01-01T00:00:00Z");
    write(dir, "d.txt", "d\n");
    git(dir, &["add", "d.txt"], carol, "2024-02-03T10:00:00Z");
    git(
        dir,
        &["commit", "-q", "-m", "WIP: half done"],
        carol,
        "2024-02-03T10:00:00Z",
    );
    let h3 = git(dir, &["rev-parse", "HEAD"], ME, "2024-01-01T00:00:00Z");

    git(dir, &["checkout", "-q", "main"], ME, "2024-01-01T00:00:00Z");
    write(dir, "b.txt", "b moved on\n");
    git(
        dir,
        &["commit", "-q", "-am", "Main moves on"],
        ME,
        "2024-03-01T00:00:00Z",
    );

    for (n, h) in [(1, &h1), (2, &h2), (3, &h3)] {
        git(
            dir,
            &["update-ref", &format!("refs/pending/{n}"), h],
            ME,
            "2024-01-01T00:00:00Z",
        );
    }
    // Not a change: no number.
    git(
        dir,
        &["update-ref", "refs/pending/notanumber", &h1],
        ME,
        "2024-01-01T00:00:00Z",
    );
    [h1, h2, h3]
}

fn millis(rfc3339: &str) -> i64 {
    greenroom::forge::parse_rfc3339(rfc3339).unwrap()
}

#[tokio::test]
async fn pending_refs_are_pull_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("api");
    std::fs::create_dir(&repo).unwrap();
    let [h1, h2, h3] = make_repo(&repo);
    let url = repo.to_str().unwrap().to_string();
    let forge = Forge::Git(
        GitForge::new(tmp.path().join("state/forge-git"))
            .with_default_repo(&url, "refs/pending/*", None)
            .unwrap(),
    );

    let prs = forge.open_prs("api", "main").await.unwrap();
    assert_eq!(prs.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2, 3]);
    let [p1, p2, p3] = [&prs[0], &prs[1], &prs[2]];

    assert_eq!(p1.repo, "api");
    assert_eq!(p1.title, "Rename the guide");
    assert_eq!(p1.author, "alice");
    assert_eq!(p1.head_sha, h1);
    assert_eq!(p1.base_branch, "main");
    assert!(!p1.draft);
    assert!(p1.labels.is_empty());
    assert_eq!(p1.body, "");
    assert_eq!(p1.created_at, millis("2024-02-01T10:00:00Z"));
    assert_eq!(p1.updated_at, millis("2024-02-01T10:00:00Z"));
    assert_eq!(p1.web_url, None);

    assert_eq!(p2.title, "Add c");
    assert_eq!(p2.author, "bob");
    assert_eq!(p2.head_sha, h2);
    assert!(p2.body.starts_with("Needs the API change first."), "{}", p2.body);
    assert_eq!(depends_on(&p2.body), vec![PrRef::new("acme/api", 7)]);
    assert_eq!(p2.labels, vec!["staging-skip", "docs"]);
    assert!(!p2.draft);

    assert_eq!(p3.title, "WIP: half done");
    assert_eq!(p3.author, "carol");
    assert_eq!(p3.head_sha, h3);
    assert!(p3.draft);

    // Changed files: from the merge base with main (b.txt changed on main
    // only), both sides of the rename.
    let mut files = forge.changed_files("api", 1).await.unwrap();
    files.sort();
    assert_eq!(files, ["a.txt", "docs/guide.md", "docs/manual.md"]);
    assert_eq!(forge.changed_files("api", 2).await.unwrap(), ["c.txt"]);
    let err = forge.changed_files("api", 99).await.unwrap_err();
    assert!(err.to_string().contains("change 99"), "{err}");

    // A change closed (ref deleted) and one updated.
    git(
        &repo,
        &["update-ref", "-d", "refs/pending/3"],
        ME,
        "2024-01-01T00:00:00Z",
    );
    git(&repo, &["checkout", "-q", "c2"], ME, "2024-01-01T00:00:00Z");
    write(&repo, "c.txt", "c, reviewed\n");
    git(
        &repo,
        &["commit", "-q", "-am", "Add c (v2)"],
        ("Bob", "bob@example.org"),
        "2024-04-01T00:00:00Z",
    );
    let h2b = git(&repo, &["rev-parse", "HEAD"], ME, "2024-01-01T00:00:00Z");
    git(
        &repo,
        &["update-ref", "refs/pending/2", &h2b],
        ME,
        "2024-01-01T00:00:00Z",
    );
    let prs = forge.open_prs("api", "main").await.unwrap();
    assert_eq!(prs.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(prs[1].head_sha, h2b);
    assert_eq!(prs[1].title, "Add c (v2)");
    assert_eq!(prs[1].updated_at, millis("2024-04-01T00:00:00Z"));
}

#[tokio::test]
async fn feedback_goes_to_files_in_the_state_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("api");
    std::fs::create_dir(&repo).unwrap();
    let [h1, ..] = make_repo(&repo);
    let gf = GitForge::new(tmp.path().join("state/forge-git"))
        .with_default_repo(repo.to_str().unwrap(), "refs/pending/*", Some("main".into()))
        .unwrap();
    let forge = Forge::Git(gf.clone());

    let st = |state, description: &str| CommitStatus {
        context: "greenroom/staging".into(),
        state,
        target_url: None,
        description: description.into(),
    };
    forge
        .set_status("api", &h1, &st(StatusState::Pending, "building"))
        .await
        .unwrap();
    forge
        .set_status("api", &h1, &st(StatusState::Success, "deployed"))
        .await
        .unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(gf.statuses_file("api"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["sha"], h1.as_str());
    assert_eq!(lines[0]["state"], "pending");
    assert_eq!(lines[1]["state"], "success");
    assert_eq!(lines[1]["context"], "greenroom/staging");
    assert_eq!(lines[1]["description"], "deployed");
    assert!(lines[1]["at"].as_str().unwrap().ends_with('Z'));

    let a = forge.upsert_sticky("api", 1, "Staging: building").await.unwrap();
    let b = forge.upsert_sticky("api", 1, "Staging: deployed").await.unwrap();
    assert_eq!((a, b), (1, 1));
    let sticky = gf.sticky_file("api", 1);
    assert!(
        sticky.starts_with(tmp.path().join("state/forge-git")),
        "{}",
        sticky.display()
    );
    assert_eq!(
        std::fs::read_to_string(&sticky).unwrap(),
        format!("{STICKY_MARKER}\nStaging: deployed")
    );

    let c1 = forge.comment("api", 2, "first").await.unwrap();
    let c2 = forge.comment("api", 2, "second").await.unwrap();
    assert_eq!((c1, c2), (1, 2));
    let comments = std::fs::read_to_string(gf.comments_file("api")).unwrap();
    let last: serde_json::Value = serde_json::from_str(comments.lines().last().unwrap()).unwrap();
    assert_eq!((last["number"].as_u64(), last["id"].as_u64()), (Some(2), Some(2)));
    assert_eq!(last["body"], "second");

    assert_eq!(forge.permission("api", "alice").await.unwrap(), None);
    assert_eq!(forge.create_deployment("api", &h1, "staging", "x").await.unwrap(), None);
    forge
        .deployment_status("api", 1, DeploymentState::Success, None, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_configured_component_with_another_pattern() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("web");
    std::fs::create_dir(&repo).unwrap();
    let [h1, h2, _] = make_repo(&repo);
    git(
        &repo,
        &["update-ref", "refs/heads/pr/5-fix-login", &h1],
        ME,
        "2024-01-01T00:00:00Z",
    );
    git(
        &repo,
        &["update-ref", "refs/heads/pr/6", &h2],
        ME,
        "2024-01-01T00:00:00Z",
    );
    git(
        &repo,
        &["update-ref", "refs/heads/pr/nested/7", &h2],
        ME,
        "2024-01-01T00:00:00Z",
    );
    let text = format!(
        "state_dir = \"{state}\"\n\n[[component]]\nname = \"web\"\nrepo = \"{repo}\"\nrun = \"true\"\nforge = \"git\"\npending_refs = \"refs/heads/pr/*\"\n\n[[environment]]\nname = \"staging\"\n",
        state = tmp.path().join("state").display(),
        repo = repo.display(),
    );
    let config = greenroom_core::config::parse(&text, &tmp.path().join("greenroom.toml"), tmp.path()).unwrap();
    let component = &config.components[0];
    let (forge, id) = Forge::for_component(&config.forges, component, &tmp.path().join("state")).unwrap();
    assert_eq!(forge.kind(), "git");
    assert_eq!(id, repo.to_str().unwrap());
    let prs = forge.open_prs(&id, "main").await.unwrap();
    assert_eq!(
        prs.iter().map(|p| (p.number, p.head_sha.as_str())).collect::<Vec<_>>(),
        [(5, h1.as_str()), (6, h2.as_str())]
    );
    let mut files = forge.changed_files(&id, 5).await.unwrap();
    files.sort();
    assert_eq!(files, ["a.txt", "docs/guide.md", "docs/manual.md"]);
    // The forge's own mirror and nothing else under the state directory.
    assert!(tmp.path().join("state/forge-git/mirrors").is_dir());

    // A bad repository or pattern is a configuration error, not a git run.
    assert!(
        GitForge::new(tmp.path())
            .with_default_repo("--upload-pack=x", "refs/pending/*", None)
            .is_err()
    );
    assert!(
        GitForge::new(tmp.path())
            .with_default_repo(repo.to_str().unwrap(), "refs/pending", None)
            .is_err()
    );
    let missing = Forge::Git(
        GitForge::new(tmp.path().join("s2"))
            .with_default_repo(&tmp.path().join("nope").display().to_string(), "refs/pending/*", None)
            .unwrap(),
    );
    let err = missing.open_prs("nope", "main").await.unwrap_err();
    assert!(err.to_string().starts_with("git forge: `git fetch"), "{err}");
}

#[tokio::test]
async fn no_pending_refs_no_pull_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("lib");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"], ME, "2024-01-01T00:00:00Z");
    git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "Initial"],
        ME,
        "2024-01-01T00:00:00Z",
    );
    // Not registered: the id is the repository's path, `refs/pending/*`.
    let forge = Forge::Git(GitForge::new(tmp.path().join("state")));
    assert!(forge.open_prs(repo.to_str().unwrap(), "main").await.unwrap().is_empty());
}
