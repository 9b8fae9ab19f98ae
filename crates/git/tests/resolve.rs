//! Resolution against real repositories (paths and file:// URLs, no network).

mod common;

use common::{Upstream, commit, git};
use greenroom_git::{Forge, GitError, Resolved, Want};

fn branch(s: &str) -> Want {
    Want::Branch(s.into())
}

fn resolved(commit: &str, reference: &str) -> Resolved {
    Resolved {
        commit: commit.into(),
        reference: reference.into(),
    }
}

#[tokio::test]
async fn branches_via_path_and_file_url() {
    let up = Upstream::new();
    for (i, url) in [up.path_url(), up.file_url()].into_iter().enumerate() {
        let mirror = up.mirrors("m").open(&format!("repo{i}"), &url).await.unwrap();
        assert_eq!(mirror.url(), url);
        assert!(mirror.path().join("HEAD").exists());
        assert_eq!(
            mirror.resolve(&branch("main")).await.unwrap(),
            resolved(&up.c2, "refs/heads/main")
        );
        assert_eq!(
            mirror.resolve(&branch("fix-login")).await.unwrap(),
            resolved(&up.c3, "refs/heads/fix-login")
        );
        // Only what was asked is in the mirror.
        let refs = git(mirror.path(), &["for-each-ref", "--format=%(refname)"]);
        assert_eq!(refs, "refs/heads/fix-login\nrefs/heads/main");
    }
}

#[tokio::test]
async fn tags_lightweight_and_annotated_are_peeled() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.file_url()).await.unwrap();
    assert_eq!(
        mirror.resolve(&Want::Tag("v1.2.0".into())).await.unwrap(),
        resolved(&up.c1, "refs/tags/v1.2.0")
    );
    assert_eq!(
        mirror.resolve(&Want::Tag("v1.9.0".into())).await.unwrap(),
        resolved(&up.c1, "refs/tags/v1.9.0")
    );
    assert_eq!(
        mirror.resolve(&Want::Tag("v1.10.0".into())).await.unwrap(),
        resolved(&up.c2, "refs/tags/v1.10.0")
    );
}

#[tokio::test]
async fn tag_pattern_picks_newest_by_version_and_fetches_only_it() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.path_url()).await.unwrap();
    assert_eq!(
        mirror.resolve(&Want::TagPattern("v1.*".into())).await.unwrap(),
        resolved(&up.c2, "refs/tags/v1.10.0")
    );
    let refs = git(mirror.path(), &["for-each-ref", "--format=%(refname)"]);
    assert_eq!(refs, "refs/tags/v1.10.0");
    assert_eq!(
        mirror.resolve(&Want::TagPattern("v*".into())).await.unwrap(),
        resolved(&up.c3, "refs/tags/v2.0.0-rc1")
    );
    assert_eq!(
        mirror.resolve(&Want::TagPattern("v1.?.0".into())).await.unwrap(),
        resolved(&up.c1, "refs/tags/v1.9.0")
    );
    // A final release beats its release candidate.
    git(&up.path, &["tag", "v2.0.0", &up.c2]);
    assert_eq!(
        mirror.resolve(&Want::TagPattern("v2.*".into())).await.unwrap(),
        resolved(&up.c2, "refs/tags/v2.0.0")
    );

    let err = mirror.resolve(&Want::TagPattern("v9.*".into())).await.unwrap_err();
    assert!(matches!(err, GitError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("no tag matches `v9.*`") && msg.contains(&up.path_url()),
        "{msg}"
    );

    // `*` does not cross `/`.
    git(&up.path, &["tag", "release/x/1.0", &up.c1]);
    assert!(mirror.resolve(&Want::TagPattern("release/*".into())).await.is_err());
    assert_eq!(
        mirror.resolve(&Want::TagPattern("release/*/*".into())).await.unwrap(),
        resolved(&up.c1, "refs/tags/release/x/1.0")
    );
}

#[tokio::test]
async fn pull_requests_on_both_forges() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.file_url()).await.unwrap();
    let pr = |number, forge| Want::PullRequest { number, forge };
    assert_eq!(
        mirror.resolve(&pr(7, Forge::Github)).await.unwrap(),
        resolved(&up.c4, "refs/pull/7/head")
    );
    assert_eq!(
        mirror.resolve(&pr(3, Forge::Gitlab)).await.unwrap(),
        resolved(&up.c5, "refs/merge-requests/3/head")
    );
    assert!(git(mirror.path(), &["for-each-ref"]).contains("refs/pull/7/head"));

    let msg = mirror.resolve(&pr(123, Forge::Github)).await.unwrap_err().to_string();
    assert!(
        msg.contains("pull request #123") && msg.contains("refs/pull/123/head") && msg.contains(&up.file_url()),
        "{msg}"
    );
    let msg = mirror.resolve(&pr(7, Forge::Gitlab)).await.unwrap_err().to_string();
    assert!(
        msg.contains("merge request !7") && msg.contains("refs/merge-requests/7/head"),
        "{msg}"
    );
}

#[tokio::test]
async fn commits_full_and_abbreviated() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.path_url()).await.unwrap();
    // Not in the (empty) mirror yet: fetched with all heads and tags.
    assert_eq!(
        mirror.resolve(&Want::Commit(up.c2.clone())).await.unwrap(),
        resolved(&up.c2, &up.c2)
    );
    assert_eq!(
        mirror.resolve(&Want::Commit(up.c1[..7].into())).await.unwrap(),
        resolved(&up.c1, &up.c1)
    );
    assert_eq!(
        mirror.resolve(&Want::Commit(up.c3[..10].to_uppercase())).await.unwrap(),
        resolved(&up.c3, &up.c3)
    );
}

#[tokio::test]
async fn not_found_errors_name_the_thing_and_the_repo() {
    let up = Upstream::new();
    let url = up.file_url();
    let mirror = up.mirrors("m").open("repo", &url).await.unwrap();
    let cases = [
        (branch("nope"), "branch `nope` does not exist", "push the branch"),
        (
            Want::Tag("v0.0.1".into()),
            "tag `v0.0.1` does not exist",
            "push the tag",
        ),
        (
            Want::Commit("deadbeef00".into()),
            "commit `deadbeef00` not found",
            "check the SHA",
        ),
        (
            branch("a..b"),
            "branch name `a..b` is not valid",
            "check the branch name",
        ),
        (branch("-x"), "branch name `-x` is not valid", "check the branch name"),
        (Want::Commit("xyz".into()), "commit `xyz` is not a SHA", "check the SHA"),
        (
            Want::TagPattern("v[".into()),
            "tag pattern `v[` is not a valid glob",
            "check the pattern",
        ),
    ];
    for (want, what, advice) in cases {
        let err = mirror.resolve(&want).await.unwrap_err();
        assert!(matches!(err, GitError::NotFound { .. }), "{want:?}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(what), "{msg}");
        assert!(msg.contains(&format!(" in {url}")), "{msg}");
        assert!(msg.contains(advice), "{msg}");
    }
    // In a batch, the first missing one is reported, even when others exist.
    let err = mirror
        .resolve_all(&[branch("main"), branch("gone"), Want::Tag("v1.2.0".into())])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("branch `gone`"), "{err}");
}

#[tokio::test]
async fn resolve_all_mixed_in_order() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.file_url()).await.unwrap();
    assert!(mirror.resolve_all(&[]).await.unwrap().is_empty());
    let wants = [
        branch("main"),
        Want::Tag("v1.10.0".into()),
        Want::TagPattern("v1.*".into()),
        Want::PullRequest {
            number: 7,
            forge: Forge::Github,
        },
        Want::Commit(up.c1[..8].into()),
        branch("main"),
        Want::PullRequest {
            number: 3,
            forge: Forge::Gitlab,
        },
    ];
    let got = mirror.resolve_all(&wants).await.unwrap();
    assert_eq!(
        got,
        vec![
            resolved(&up.c2, "refs/heads/main"),
            resolved(&up.c2, "refs/tags/v1.10.0"),
            resolved(&up.c2, "refs/tags/v1.10.0"),
            resolved(&up.c4, "refs/pull/7/head"),
            resolved(&up.c1, &up.c1),
            resolved(&up.c2, "refs/heads/main"),
            resolved(&up.c5, "refs/merge-requests/3/head"),
        ]
    );
}

#[tokio::test]
async fn incremental_fetch_follows_a_moving_branch() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.path_url()).await.unwrap();
    assert_eq!(mirror.resolve(&branch("main")).await.unwrap().commit, up.c2);
    let c6 = commit(&up.path, &[("README", "three\n")], "third");
    assert_eq!(mirror.resolve(&branch("main")).await.unwrap().commit, c6);
    // Force-pushed backwards also follows.
    git(&up.path, &["reset", "--quiet", "--hard", &up.c1]);
    assert_eq!(mirror.resolve(&branch("main")).await.unwrap().commit, up.c1);
    // A moved tag follows too.
    git(&up.path, &["tag", "-f", "v1.2.0", &up.c3]);
    assert_eq!(mirror.resolve(&Want::Tag("v1.2.0".into())).await.unwrap().commit, up.c3);
}

#[tokio::test]
async fn known_commit_needs_no_remote() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.path_url()).await.unwrap();
    mirror.resolve(&branch("main")).await.unwrap();
    let away = up.tmp.path().join("moved-away");
    std::fs::rename(&up.path, &away).unwrap();
    assert_eq!(
        mirror.resolve(&Want::Commit(up.c2.clone())).await.unwrap().commit,
        up.c2
    );
    assert_eq!(
        mirror.resolve(&Want::Commit(up.c1[..7].into())).await.unwrap().commit,
        up.c1
    );
    // Branches always consult the remote, which is gone.
    let err = mirror.resolve(&branch("main")).await.unwrap_err();
    assert!(matches!(err, GitError::Command { .. }), "{err:?}");
    assert!(err.to_string().contains(&up.path_url()), "{err}");
    std::fs::rename(&away, &up.path).unwrap();
}

#[tokio::test]
async fn open_is_idempotent_and_follows_url_changes() {
    let up = Upstream::new();
    let mirrors = up.mirrors("m");
    let a = mirrors.open("repo", &up.path_url()).await.unwrap();
    let b = mirrors.open("repo", &up.path_url()).await.unwrap();
    assert_eq!(a.path(), b.path());
    assert_eq!(git(a.path(), &["config", "remote.origin.url"]), up.path_url());
    let c = mirrors.open("repo", &up.file_url()).await.unwrap();
    assert_eq!(git(c.path(), &["config", "remote.origin.url"]), up.file_url());
    assert_eq!(c.resolve(&branch("main")).await.unwrap().commit, up.c2);
}

#[tokio::test]
async fn open_rejects_unsafe_names_and_urls() {
    let up = Upstream::new();
    let mirrors = up.mirrors("m");
    for name in ["", "../x", "a/b", ".hidden", "-x", "a b"] {
        let err = mirrors.open(name, &up.path_url()).await.unwrap_err();
        assert!(matches!(err, GitError::Io { .. }), "{name}: {err:?}");
    }
    for url in ["", "-oProxyCommand=touch /tmp/pwned", "a\nb"] {
        assert!(mirrors.open("ok", url).await.is_err(), "{url:?}");
    }
}

#[tokio::test]
async fn unreachable_remote_is_a_command_error_with_stderr() {
    let up = Upstream::new();
    let missing = up.tmp.path().join("does-not-exist");
    let url = missing.display().to_string();
    let mirror = up.mirrors("m").open("repo", &url).await.unwrap();
    let err = mirror.resolve(&branch("main")).await.unwrap_err();
    match &err {
        GitError::Command { repo, args, stderr, .. } => {
            assert_eq!(repo, &url);
            assert!(args.starts_with("fetch"), "{args}");
            assert!(!stderr.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

/// Abbreviated SHAs matching several commits are reported as ambiguous.
/// Colliding 7-digit prefixes need many commits: fast-import makes them
/// quickly, with fixed dates so the SHAs (and the collision) are deterministic.
#[tokio::test]
async fn ambiguous_abbreviation() {
    let up = Upstream::new();
    let mirror = up.mirrors("m").open("repo", &up.path_url()).await.unwrap();
    // With these fixed inputs, commits c4449 and c15791 share a 7-digit prefix.
    const N: usize = 16_000;
    let mut stream = String::new();
    for i in 1..=N {
        let msg = format!("c{i}\n");
        stream.push_str(&format!(
            "commit refs/heads/many\nmark :{i}\ncommitter T <t@example.com> 1700000000 +0000\ndata {}\n{msg}",
            msg.len()
        ));
        if i > 1 {
            stream.push_str(&format!("from :{}\n", i - 1));
        }
        stream.push('\n');
    }
    let mut child = common::git_command(mirror.path(), &["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(stream.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let all = git(mirror.path(), &["rev-list", "refs/heads/many"]);
    let mut seen = std::collections::HashMap::new();
    let prefix = all
        .lines()
        .find_map(|sha| seen.insert(&sha[..7], sha).map(|_| &sha[..7]));
    let Some(prefix) = prefix else {
        eprintln!("no 7-digit collision among {N} commits; skipping");
        return;
    };
    let err = mirror.resolve(&Want::Commit(prefix.into())).await.unwrap_err();
    assert!(matches!(err, GitError::Ambiguous { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(prefix) && msg.contains(&up.path_url()) && msg.contains("full SHA"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_commit_only_in_a_pull_request_resolves_by_sha_before_the_pr_was_asked_for() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let remote = tmp.path().join("remote");
    std::fs::create_dir_all(&remote).expect("mkdir");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&remote)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "base"]);
    git(&["checkout", "-q", "-b", "pr"]);
    git(&["commit", "-q", "--allow-empty", "-m", "only in the PR"]);
    let head = git(&["rev-parse", "HEAD"]);
    git(&["update-ref", "refs/pull/41/head", &head]);
    git(&["checkout", "-q", "main"]);
    git(&["branch", "-q", "-D", "pr"]);
    let mirrors = greenroom_git::Mirrors::new(tmp.path().join("mirrors"));
    let m = mirrors.open("r", &remote.display().to_string()).await.expect("open");
    let r = m
        .resolve(&greenroom_git::Want::Commit(head[..10].to_string()))
        .await
        .expect("resolve by sha");
    assert_eq!(r.commit, head);
}
