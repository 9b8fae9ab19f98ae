//! Checkouts and changed files, against real repositories.

mod common;

use common::{Upstream, git, git_output};
use greenroom_git::{Forge, GitError, Want};

#[tokio::test]
async fn checkout_is_a_clean_detached_work_tree() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.path_url()).await.unwrap();
    let main = mirror.resolve(&Want::Branch("main".into())).await.unwrap();
    let dest = up.tmp.path().join("work/main");
    mirror.checkout(&main.commit, &dest).await.unwrap();

    assert_eq!(std::fs::read_to_string(dest.join("README")).unwrap(), "two\n");
    assert_eq!(std::fs::read_to_string(dest.join("src/lib.txt")).unwrap(), "library\n");
    assert!(!dest.join("login.txt").exists());
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), up.c2);
    assert!(
        !git_output(&dest, &["symbolic-ref", "-q", "HEAD"]).status.success(),
        "HEAD is detached"
    );
    assert_eq!(git(&dest, &["status", "--porcelain", "--untracked-files=all"]), "");
    // Builds may run git: history is there.
    assert_eq!(git(&dest, &["rev-parse", "HEAD~1"]), up.c1);
}

#[tokio::test]
async fn checkout_of_a_pull_request_only_commit() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.file_url()).await.unwrap();
    // The mirror holds nothing but the pull request ref.
    let pr = mirror
        .resolve(&Want::PullRequest {
            number: 7,
            forge: Forge::Github,
        })
        .await
        .unwrap();
    assert_eq!(pr.commit, up.c4);
    assert_eq!(
        git(mirror.path(), &["for-each-ref", "--format=%(refname)"]),
        "refs/pull/7/head"
    );
    let dest = up.tmp.path().join("pr7");
    mirror.checkout(&pr.commit, &dest).await.unwrap();
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), up.c4);
    assert_eq!(
        std::fs::read_to_string(dest.join("pr.txt")).unwrap(),
        "pull request 7\n"
    );

    let mr = mirror
        .resolve(&Want::PullRequest {
            number: 3,
            forge: Forge::Gitlab,
        })
        .await
        .unwrap();
    let dest = up.tmp.path().join("mr3");
    mirror.checkout(&mr.commit, &dest).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dest.join("mr.txt")).unwrap(),
        "merge request 3\n"
    );
}

#[tokio::test]
async fn checkout_refuses_existing_dest_and_cleans_up_failures() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.path_url()).await.unwrap();
    mirror.resolve(&Want::Branch("main".into())).await.unwrap();

    let existing = up.tmp.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep"), "x").unwrap();
    let err = mirror.checkout(&up.c2, &existing).await.unwrap_err();
    assert!(matches!(err, GitError::Io { .. }), "{err:?}");
    assert!(existing.join("keep").exists(), "an existing dest is left alone");

    // fix-login's commit was never fetched: the checkout fails and leaves nothing.
    let dest = up.tmp.path().join("failed");
    let err = mirror.checkout(&up.c3, &dest).await.unwrap_err();
    assert!(err.to_string().contains(&up.c3), "{err}");
    assert!(!dest.exists(), "partial checkout removed");

    let err = mirror.checkout("not-a-sha", &dest).await.unwrap_err();
    assert!(matches!(err, GitError::NotFound { .. }), "{err:?}");
    assert!(!dest.exists());
}

#[tokio::test]
async fn changed_files_between_commits() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.path_url()).await.unwrap();
    mirror
        .resolve_all(&[Want::Branch("main".into()), Want::Branch("fix-login".into())])
        .await
        .unwrap();
    assert_eq!(
        mirror.changed_files(&up.c1, &up.c2).await.unwrap(),
        vec!["README", "src/lib.txt"]
    );
    assert_eq!(
        mirror.changed_files(&up.c2, &up.c3).await.unwrap(),
        vec!["README", "login.txt", "src/lib.txt"]
    );
    assert!(mirror.changed_files(&up.c2, &up.c2).await.unwrap().is_empty());

    // Renames list both paths; odd file names come through intact.
    let c6 = common::commit(&up.path, &[("we ird\tname.txt", "odd\n")], "odd");
    git(&up.path, &["mv", "src/lib.txt", "src/renamed.txt"]);
    git(&up.path, &["commit", "--quiet", "-m", "rename"]);
    let c7 = git(&up.path, &["rev-parse", "HEAD"]);
    mirror.resolve(&Want::Branch("main".into())).await.unwrap();
    assert_eq!(
        mirror.changed_files(&up.c2, &c6).await.unwrap(),
        vec!["we ird\tname.txt"]
    );
    assert_eq!(
        mirror.changed_files(&c6, &c7).await.unwrap(),
        vec!["src/lib.txt", "src/renamed.txt"]
    );

    let err = mirror.changed_files(&up.c1, &up.c4).await.unwrap_err();
    assert!(matches!(err, GitError::Command { .. }), "{err:?}");
}
