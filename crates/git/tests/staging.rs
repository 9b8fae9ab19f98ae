//! Staging branches against real repositories: merges in the bare mirror,
//! determinism, conflicts, the step cache, equality with a `git merge` loop
//! in a work tree, and publication to a bare "origin".
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{commit, git, git_output};
use greenroom_git::{
    Forge, GitError, Mirror, Mirrors, PrHead, StagingBuild, StagingOptions, Want, build_staging, publish,
};

/// An upstream repository with a base on `main` and pull requests under
/// `refs/pull/N/head`, each branched off the base.
struct Repo {
    tmp: tempfile::TempDir,
    path: PathBuf,
    base: String,
}

const README: &str =
    "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\nline 8\nline 9\nline 10\nline 11\nline 12\n";

impl Repo {
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("upstream");
        std::fs::create_dir(&path).unwrap();
        git(&path, &["init", "--quiet"]);
        commit(&path, &[("README", "first\n")], "first");
        let base = commit(&path, &[("README", README), ("src/lib.txt", "library\n")], "base");
        Repo { tmp, path, base }
    }

    /// Pull request `n`: one commit on top of `from` writing `files`.
    fn pr_from(&self, n: u64, from: &str, files: &[(&str, &str)]) -> String {
        git(&self.path, &["checkout", "--quiet", "--detach", from]);
        let sha = commit(&self.path, files, &format!("pr {n}"));
        git(&self.path, &["update-ref", &format!("refs/pull/{n}/head"), &sha]);
        git(&self.path, &["checkout", "--quiet", "main"]);
        sha
    }

    /// Pull request `n` branched off the base.
    fn pr(&self, n: u64, files: &[(&str, &str)]) -> String {
        let base = self.base.clone();
        self.pr_from(n, &base, files)
    }

    fn mirrors(&self) -> Mirrors {
        Mirrors::new(self.tmp.path().join("mirrors"))
    }

    /// The mirror, with `main` and the pull requests fetched.
    async fn mirror(&self, numbers: &[u64]) -> Mirror {
        let mirror = self
            .mirrors()
            .open("repo", &self.path.display().to_string())
            .await
            .unwrap();
        fetch(&mirror, numbers).await;
        mirror
    }

    fn cache(&self, name: &str) -> StagingOptions {
        StagingOptions::with_cache(self.tmp.path().join(name))
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

async fn fetch(mirror: &Mirror, numbers: &[u64]) {
    let mut wants = vec![Want::Branch("main".into())];
    wants.extend(numbers.iter().map(|&number| Want::PullRequest {
        number,
        forge: Forge::Github,
    }));
    mirror.resolve_all(&wants).await.unwrap();
}

fn head(n: u64, sha: &str) -> PrHead {
    PrHead {
        id: format!("o/r#{n}"),
        number: n,
        head: sha.to_owned(),
        title: format!("Change number {n}"),
    }
}

fn ids(ns: &[u64]) -> Vec<String> {
    ns.iter().map(|n| format!("o/r#{n}")).collect()
}

/// Five PRs that merge cleanly: PR n edits README line 2n (edits of
/// adjacent lines would conflict) and adds `prN.txt`.
fn five_clean(repo: &Repo) -> Vec<PrHead> {
    (1..=5)
        .map(|n| {
            let readme = README.replace(&format!("line {}\n", 2 * n), &format!("line {} by pr {n}\n", 2 * n));
            let sha = repo.pr(
                n,
                &[
                    ("README", readme.as_str()),
                    (format!("pr{n}.txt").as_str(), format!("pull request {n}\n").as_str()),
                ],
            );
            head(n, &sha)
        })
        .collect()
}

/// Merge every PR with `git merge --no-ff` in a clone of the mirror, like a
/// staging script would; the tree, and which merged and which conflicted.
fn merge_loop(mirror: &Path, work: &Path, base: &str, prs: &[PrHead]) -> (String, Vec<String>, Vec<String>) {
    git(
        mirror.parent().unwrap(),
        &[
            "clone",
            "--quiet",
            "--no-checkout",
            &mirror.display().to_string(),
            &work.display().to_string(),
        ],
    );
    git(work, &["checkout", "--quiet", "-B", "staging", base]);
    let (mut merged, mut conflicts) = (Vec::new(), Vec::new());
    for pr in prs {
        let out = git_output(work, &["merge", "--quiet", "--no-ff", "--no-edit", &pr.head]);
        if out.status.success() {
            merged.push(pr.id.clone());
        } else {
            conflicts.push(pr.id.clone());
            git(work, &["merge", "--abort"]);
        }
    }
    (git(work, &["rev-parse", "HEAD^{tree}"]), merged, conflicts)
}

fn show(repo: &Path, rev_path: &str) -> String {
    git(repo, &["show", rev_path])
}

#[tokio::test]
async fn three_clean_merges_chain_and_carry_every_change() {
    let repo = Repo::new();
    let prs: Vec<PrHead> = five_clean(&repo).into_iter().take(3).collect();
    let mirror = repo.mirror(&[1, 2, 3]).await;
    let build = build_staging(&mirror, &repo.base, &prs, &repo.cache("cache"))
        .await
        .unwrap();

    assert_eq!(build.base, repo.base);
    assert_eq!(build.merged, ids(&[1, 2, 3]));
    assert!(build.conflicts.is_empty() && build.up_to_date.is_empty());
    assert_eq!((build.reused_steps, build.merged_steps), (0, 3));
    let m = mirror.path();
    // First parents chain back to the base; second parents are the heads.
    assert_eq!(git(m, &["rev-parse", &format!("{}^2", build.commit)]), prs[2].head);
    assert_eq!(git(m, &["rev-parse", &format!("{}^1^2", build.commit)]), prs[1].head);
    assert_eq!(git(m, &["rev-parse", &format!("{}^1^1^2", build.commit)]), prs[0].head);
    assert_eq!(git(m, &["rev-parse", &format!("{}^1^1^1", build.commit)]), repo.base);
    assert_eq!(
        git(m, &["rev-parse", &format!("{}^{{tree}}", build.commit)]),
        build.tree
    );
    // Every change is in the tree.
    let readme = show(m, &format!("{}:README", build.commit));
    for n in 1..=3 {
        assert!(readme.contains(&format!("line {} by pr {n}", 2 * n)), "{readme}");
        assert_eq!(
            show(m, &format!("{}:pr{n}.txt", build.commit)),
            format!("pull request {n}")
        );
    }
    assert!(readme.contains("line 8\n") && !readme.contains("by pr 4"));
    // Messages and the fixed identity.
    assert_eq!(
        git(m, &["log", "--first-parent", "--format=%s", "-3", &build.commit]),
        "Merge o/r#3: Change number 3\nMerge o/r#2: Change number 2\nMerge o/r#1: Change number 1"
    );
    let who = git(
        m,
        &[
            "log",
            "-1",
            "--format=%an <%ae> %cn <%ce> %cd",
            "--date=raw",
            &build.commit,
        ],
    );
    let newest = (0..3)
        .map(|i| {
            git(m, &["log", "-1", "--format=%ct", &prs[i].head])
                .parse::<i64>()
                .unwrap()
        })
        .chain([git(m, &["log", "-1", "--format=%ct", &repo.base])
            .parse::<i64>()
            .unwrap()])
        .max()
        .unwrap();
    assert_eq!(
        who,
        format!("greenroom <greenroom@localhost> greenroom <greenroom@localhost> {newest} +0000")
    );
    common::assert_fsck_clean(m);
}

#[tokio::test]
async fn building_twice_gives_the_same_commit_with_or_without_cache() {
    let repo = Repo::new();
    let prs = five_clean(&repo);
    let mirror = repo.mirror(&[1, 2, 3, 4, 5]).await;
    let opts = repo.cache("cache");
    let first = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap();
    let again = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap();
    assert_eq!(again.commit, first.commit);
    assert_eq!((again.reused_steps, again.merged_steps), (5, 0));
    let cold = build_staging(&mirror, &repo.base, &prs, &StagingOptions::default())
        .await
        .unwrap();
    assert_eq!((cold.reused_steps, cold.merged_steps), (0, 5));
    assert_eq!(
        StagingBuild {
            reused_steps: 5,
            merged_steps: 0,
            ..cold
        },
        again
    );
    // Another mirror of the same repository agrees.
    let other = Mirrors::new(repo.dir("other-mirrors"))
        .open("repo", &repo.path.display().to_string())
        .await
        .unwrap();
    fetch(&other, &[1, 2, 3, 4, 5]).await;
    let elsewhere = build_staging(&other, &repo.base, &prs, &repo.cache("other-cache"))
        .await
        .unwrap();
    assert_eq!(elsewhere.commit, first.commit);
    // The identity email is part of the commit.
    let mut opts = repo.cache("cache");
    opts.email = "staging@example.com".into();
    let mailed = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap();
    assert_ne!(mailed.commit, first.commit);
    assert_eq!(mailed.tree, first.tree);
    // The first step keeps its cached tree (a new commit, no merge-tree);
    // the next ones start from another commit, so they are merged again.
    assert_eq!((mailed.reused_steps, mailed.merged_steps), (1, 4));
}

#[tokio::test]
async fn a_conflicting_pr_is_left_out_and_later_ones_merge() {
    let repo = Repo::new();
    let p1 = repo.pr(1, &[("README", &README.replace("line 3", "line three"))]);
    let p2 = repo.pr(2, &[("README", &README.replace("line 3", "LINE 3")), ("x.txt", "x\n")]);
    let p3 = repo.pr(3, &[("three.txt", "3\n")]);
    let p4 = repo.pr(4, &[("README", &README.replace("line 8", "line eight"))]);
    let prs = vec![head(1, &p1), head(2, &p2), head(3, &p3), head(4, &p4)];
    let mirror = repo.mirror(&[1, 2, 3, 4]).await;
    let build = build_staging(&mirror, &repo.base, &prs, &repo.cache("cache"))
        .await
        .unwrap();

    assert_eq!(build.merged, ids(&[1, 3, 4]));
    assert_eq!(build.conflicts.len(), 1);
    let c = &build.conflicts[0];
    assert_eq!(c.id, "o/r#2");
    assert_eq!(c.files, ["README"]);
    assert!(
        c.message.contains("CONFLICT (content): Merge conflict in README"),
        "{}",
        c.message
    );
    let m = mirror.path();
    let readme = show(m, &format!("{}:README", build.commit));
    assert!(readme.contains("line three") && readme.contains("line eight") && !readme.contains("LINE 3"));
    assert!(
        git_output(m, &["cat-file", "-e", &format!("{}:x.txt", build.commit)])
            .status
            .code()
            != Some(0)
    );
    // The chain skips PR 2 entirely.
    assert_eq!(git(m, &["rev-parse", &format!("{}^1^2", build.commit)]), p3);
    assert_eq!(git(m, &["rev-parse", &format!("{}^1^1^2", build.commit)]), p1);

    // The conflict is remembered: a rebuild runs no merge at all.
    let again = build_staging(&mirror, &repo.base, &prs, &repo.cache("cache"))
        .await
        .unwrap();
    assert_eq!((again.reused_steps, again.merged_steps), (4, 0));
    assert_eq!(again.conflicts, build.conflicts);
    assert_eq!(again.commit, build.commit);
}

#[tokio::test]
async fn a_new_head_in_the_middle_replays_from_there() {
    let repo = Repo::new();
    let mut prs = five_clean(&repo);
    let mirror = repo.mirror(&[1, 2, 3, 4, 5]).await;
    let opts = repo.cache("cache");
    let first = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap();

    // PR 2 gets a new commit on top.
    let new2 = repo.pr_from(2, &prs[1].head, &[("pr2.txt", "pull request 2, v2\n")]);
    fetch(&mirror, &[2]).await;
    prs[1].head = new2;
    let rebuilt = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap();
    assert_eq!((rebuilt.reused_steps, rebuilt.merged_steps), (1, 4));
    assert_ne!(rebuilt.commit, first.commit);
    let m = mirror.path();
    assert_eq!(
        git(m, &["rev-parse", &format!("{}^1^1^1^1", rebuilt.commit)]),
        git(m, &["rev-parse", &format!("{}^1^1^1^1", first.commit)]),
        "the merge of PR 1 is shared"
    );
    assert_eq!(show(m, &format!("{}:pr2.txt", rebuilt.commit)), "pull request 2, v2");
    let cold = build_staging(&mirror, &repo.base, &prs, &StagingOptions::default())
        .await
        .unwrap();
    assert_eq!(cold.commit, rebuilt.commit);

    // A title change rewrites that merge commit (its tree reused) and
    // replays the ones after it.
    prs[3].title = "Renamed".into();
    let retitled = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap();
    assert_eq!((retitled.reused_steps, retitled.merged_steps), (4, 1));
    assert_eq!(retitled.tree, rebuilt.tree);
    assert_eq!(
        git(m, &["log", "-1", "--format=%s", &format!("{}^1", retitled.commit)]),
        "Merge o/r#4: Renamed"
    );
    let cold = build_staging(&mirror, &repo.base, &prs, &StagingOptions::default())
        .await
        .unwrap();
    assert_eq!(cold.commit, retitled.commit);
}

#[tokio::test]
async fn the_tree_matches_a_git_merge_loop_in_a_work_tree() {
    let repo = Repo::new();
    // Clean edits, a conflict, an overlapping-but-clean edit, a PR off an
    // older commit, a PR already contained in the base.
    let first = git(&repo.path, &["rev-parse", "main~1"]);
    git(&repo.path, &["update-ref", "refs/pull/5/head", &first]);
    let prs = vec![
        head(1, &repo.pr(1, &[("README", &README.replace("line 2", "line two"))])),
        head(2, &repo.pr(2, &[("README", &README.replace("line 2", "line 2!"))])),
        head(
            3,
            &repo.pr(
                3,
                &[
                    ("README", &README.replace("line 7", "line seven")),
                    ("src/lib.txt", "library v2\n"),
                ],
            ),
        ),
        head(4, &repo.pr_from(4, &first, &[("old.txt", "from an older base\n")])),
        head(5, &first),
        head(6, &repo.pr(6, &[("src/lib.txt", "library v3\n")])),
        head(
            7,
            &repo.pr(
                7,
                &[
                    ("dir/new.txt", "new\n"),
                    ("README", &README.replace("line 5", "line five")),
                ],
            ),
        ),
    ];
    let mirror = repo.mirror(&[1, 2, 3, 4, 5, 6, 7]).await;
    let build = build_staging(&mirror, &repo.base, &prs, &repo.cache("cache"))
        .await
        .unwrap();
    let (tree, merged, conflicts) = merge_loop(mirror.path(), &repo.dir("work"), &repo.base, &prs);

    assert_eq!(build.tree, tree);
    let conflicted: Vec<String> = build.conflicts.iter().map(|c| c.id.clone()).collect();
    assert_eq!(conflicted, conflicts);
    assert_eq!(conflicted, ids(&[2, 6]));
    assert_eq!(build.up_to_date, ids(&[5]));
    let mut ours = build.merged.clone();
    ours.extend(build.up_to_date.clone());
    ours.sort();
    assert_eq!(ours, merged, "git merge reports an up-to-date head as a success");
}

#[tokio::test]
async fn unrelated_history_is_left_out_like_a_conflict() {
    let repo = Repo::new();
    git(&repo.path, &["checkout", "--quiet", "--orphan", "other"]);
    git(&repo.path, &["rm", "--quiet", "-rf", "."]);
    let lonely = commit(&repo.path, &[("lonely.txt", "alone\n")], "unrelated");
    git(&repo.path, &["update-ref", "refs/pull/9/head", &lonely]);
    git(&repo.path, &["checkout", "--quiet", "-f", "main"]);
    let p1 = repo.pr(1, &[("a.txt", "a\n")]);
    let mirror = repo.mirror(&[1, 9]).await;
    let build = build_staging(
        &mirror,
        &repo.base,
        &[head(9, &lonely), head(1, &p1)],
        &StagingOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(build.merged, ids(&[1]));
    assert_eq!(build.conflicts.len(), 1);
    assert!(build.conflicts[0].files.is_empty());
    assert!(build.conflicts[0].message.contains("unrelated histories"));
}

#[tokio::test]
async fn no_prs_gives_the_base() {
    let repo = Repo::new();
    let mirror = repo.mirror(&[]).await;
    let build = build_staging(&mirror, &repo.base, &[], &repo.cache("cache"))
        .await
        .unwrap();
    assert_eq!(build.commit, repo.base);
    assert_eq!(build.tree, git(&repo.path, &["rev-parse", "main^{tree}"]));
    assert!(build.merged.is_empty());
}

fn origin_refs(origin: &Path) -> Vec<String> {
    git(origin, &["for-each-ref", "--format=%(refname) %(objectname)"])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn publish_moves_the_ref_tags_and_prunes_old_tags() {
    let repo = Repo::new();
    let prs = five_clean(&repo);
    let mirror = repo.mirror(&[1, 2, 3, 4, 5]).await;
    let origin = repo.dir("origin.git");
    git(
        repo.tmp.path(),
        &["init", "--quiet", "--bare", &origin.display().to_string()],
    );
    // Tags that are not dated staging tags are never touched.
    git(
        &repo.path,
        &[
            "push",
            "--quiet",
            &origin.display().to_string(),
            "main",
            "main:refs/tags/staging-keep-me",
            "main:refs/tags/v1.0",
        ],
    );
    let url = origin.display().to_string();
    let staging = "refs/heads/greenroom/staging";

    let mut builds = Vec::new();
    for (i, n) in [2usize, 3, 4, 5].into_iter().enumerate() {
        let build = build_staging(&mirror, &repo.base, &prs[..n], &repo.cache("cache"))
            .await
            .unwrap();
        let now = format!("20261123-14{:02}", i);
        let published = publish(&mirror, &build, staging, Some("staging-"), 2, &now, Some(&url))
            .await
            .unwrap();
        assert_eq!(published.commit, build.commit);
        assert_eq!(published.tag.as_deref(), Some(format!("staging-{now}").as_str()));
        assert!(published.pushed);
        if i >= 2 {
            assert_eq!(published.pruned_tags, [format!("staging-20261123-14{:02}", i - 2)]);
        } else {
            assert!(published.pruned_tags.is_empty());
        }
        builds.push(build);
    }
    let last = &builds[3].commit;
    let refs = origin_refs(&origin);
    let main = git(&repo.path, &["rev-parse", "main"]);
    assert_eq!(
        refs,
        [
            format!("refs/heads/greenroom/staging {last}"),
            format!("refs/heads/main {main}"),
            format!("refs/tags/staging-20261123-1402 {}", builds[2].commit),
            format!("refs/tags/staging-20261123-1403 {last}"),
            format!("refs/tags/staging-keep-me {main}"),
            format!("refs/tags/v1.0 {main}"),
        ]
    );
    // The mirror has the same staging ref and dated tags.
    assert_eq!(git(mirror.path(), &["rev-parse", staging]), *last);
    assert_eq!(
        git(mirror.path(), &["for-each-ref", "--format=%(refname)", "refs/tags/"]),
        "refs/tags/staging-20261123-1402\nrefs/tags/staging-20261123-1403"
    );
    common::assert_fsck_clean(&origin);

    // A smaller staging branch is force-pushed; without tags, none change.
    let published = publish(&mirror, &builds[0], staging, None, 2, "20261123-1500", Some(&url))
        .await
        .unwrap();
    assert_eq!(published.tag, None);
    assert_eq!(git(&origin, &["rev-parse", staging]), builds[0].commit);
    assert_eq!(origin_refs(&origin).len(), 6);

    // Locally only.
    let published = publish(&mirror, &builds[1], staging, Some("staging-"), 1, "20261123-1600", None)
        .await
        .unwrap();
    assert!(!published.pushed);
    assert_eq!(
        published.pruned_tags,
        ["staging-20261123-1402", "staging-20261123-1403"]
    );
    assert_eq!(git(mirror.path(), &["rev-parse", staging]), builds[1].commit);
    assert_eq!(git(&origin, &["rev-parse", staging]), builds[0].commit);

    // Bad names are refused before anything moves.
    for bad in ["refs/tags/x", "heads/x", "refs/heads/a..b", "-x"] {
        assert!(
            publish(&mirror, &builds[2], bad, None, 0, "x", None).await.is_err(),
            "{bad}"
        );
    }
    assert!(
        publish(&mirror, &builds[2], staging, Some("bad prefix "), 2, "1", None)
            .await
            .is_err()
    );
    assert!(
        publish(&mirror, &builds[2], staging, None, 0, "1", Some("-oProxyCommand=x"))
            .await
            .is_err()
    );
    assert_eq!(git(mirror.path(), &["rev-parse", staging]), builds[1].commit);
}

#[tokio::test]
async fn an_unknown_head_is_named_and_nothing_moves() {
    let repo = Repo::new();
    let mut prs = five_clean(&repo);
    let original = prs.clone();
    let mirror = repo.mirror(&[1, 2, 3, 4, 5]).await;
    let opts = repo.cache("cache");
    let good = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap();
    let staging = "refs/heads/greenroom/staging";
    publish(&mirror, &good, staging, None, 0, "20261123-1405", None)
        .await
        .unwrap();

    let unknown = "0123456789abcdef0123456789abcdef01234567";
    prs[2].head = unknown.into();
    let err = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap_err();
    assert!(matches!(err, GitError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(unknown) && msg.contains("o/r#3"), "{msg}");
    assert_eq!(git(mirror.path(), &["rev-parse", staging]), good.commit);

    prs[2].head = "abc123".into();
    let msg = build_staging(&mirror, &repo.base, &prs, &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("abc123") && msg.contains("not a full SHA"), "{msg}");

    let msg = build_staging(&mirror, unknown, &[], &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains(unknown) && msg.contains("base"), "{msg}");

    // Duplicate ids are refused.
    let twice = vec![head(1, &good.base), head(1, &good.base)];
    assert!(build_staging(&mirror, &repo.base, &twice, &opts).await.is_err());

    // The cache was not damaged: the good build is still fully reused.
    let again = build_staging(&mirror, &repo.base, &original, &opts).await.unwrap();
    assert_eq!((again.commit, again.reused_steps), (good.commit, 5));
}

#[tokio::test]
async fn a_lost_cache_or_lost_objects_only_cost_time() {
    let repo = Repo::new();
    let prs = five_clean(&repo);
    let mirror = repo.mirror(&[1, 2, 3, 4, 5]).await;
    let opts = repo.cache("cache");
    let first = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap();

    // A garbled cache file is ignored.
    std::fs::write(repo.dir("cache").join("repo.staging-cache"), "garbage\n").unwrap();
    let again = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap();
    assert_eq!((again.commit.as_str(), again.merged_steps), (first.commit.as_str(), 5));

    // The cache points at commits a fresh mirror does not have: merged again.
    std::fs::remove_dir_all(mirror.path()).unwrap();
    let mirror = repo.mirror(&[1, 2, 3, 4, 5]).await;
    let fresh = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap();
    assert_eq!(fresh.commit, first.commit);
    assert_eq!(fresh.merged_steps, 5);
    common::assert_fsck_clean(mirror.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_builds_agree() {
    let repo = Repo::new();
    let prs = five_clean(&repo);
    let mirror = repo.mirror(&[1, 2, 3, 4, 5]).await;
    let opts = repo.cache("cache");
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (mirror, opts, base) = (mirror.clone(), opts.clone(), repo.base.clone());
        let prs = prs[..3 + i % 3].to_vec();
        tasks.push(tokio::spawn(
            async move { build_staging(&mirror, &base, &prs, &opts).await },
        ));
    }
    let mut commits = [None, None, None];
    for (i, t) in tasks.into_iter().enumerate() {
        let build = t.await.unwrap().unwrap();
        let slot = &mut commits[i % 3];
        assert!(slot.is_none() || slot.as_ref() == Some(&build.commit));
        *slot = Some(build.commit);
    }
    let all = build_staging(&mirror, &repo.base, &prs, &opts).await.unwrap();
    assert_eq!(all.merged_steps, 0);
    assert_eq!(Some(all.commit), commits[2]);
}
