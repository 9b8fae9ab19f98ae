//! Several tasks (each with its own handle, so they coordinate only through
//! the lock file, like separate processes) hammer one mirror while upstream
//! moves; the mirror stays consistent and every answer is right.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Upstream, assert_fsck_clean, commit, git};
use greenroom_git::{Forge, Mirrors, Want};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_resolves_fetches_and_checkouts() {
    let up = Upstream::new();
    let root = up.tmp.path().join("mirrors");
    let url = up.file_url();

    // Upstream keeps moving a branch while the mirror is used.
    let up_path = up.path.clone();
    let mover = std::thread::spawn(move || {
        git(&up_path, &["checkout", "--quiet", "-b", "moving"]);
        let mut shas = vec![git(&up_path, &["rev-parse", "HEAD"])];
        for i in 0..10 {
            shas.push(commit(
                &up_path,
                &[(&format!("moving-{i}.txt"), "x\n")],
                &format!("moving {i}"),
            ));
            std::thread::sleep(Duration::from_millis(20));
        }
        shas
    });
    // Let the branch exist before anyone asks for it.
    while git(&up.path, &["branch", "--list", "moving"]).is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }

    let mut tasks = Vec::new();
    for t in 0..8 {
        let (root, url) = (root.clone(), url.clone());
        let (c1, c2, c3, c4, c5) = (
            up.c1.clone(),
            up.c2.clone(),
            up.c3.clone(),
            up.c4.clone(),
            up.c5.clone(),
        );
        let work = up.tmp.path().join(format!("work-{t}"));
        tasks.push(tokio::spawn(async move {
            // Every task opens (and so races to create) the mirror itself.
            let mirror = Mirrors::new(&root).open("shared", &url).await.unwrap();
            let mut moving = Vec::new();
            for round in 0..4 {
                let wants = [
                    Want::Branch("main".into()),
                    Want::Branch("moving".into()),
                    Want::TagPattern("v1.*".into()),
                    Want::PullRequest {
                        number: 7,
                        forge: Forge::Github,
                    },
                    Want::PullRequest {
                        number: 3,
                        forge: Forge::Gitlab,
                    },
                    Want::Commit(if (t + round) % 2 == 0 {
                        c3[..9].to_owned()
                    } else {
                        c1.clone()
                    }),
                ];
                let got = mirror.resolve_all(&wants).await.unwrap();
                assert_eq!(got[0].commit, c2);
                assert_eq!(got[2].reference, "refs/tags/v1.10.0");
                assert_eq!(got[2].commit, c2);
                assert_eq!(got[3].commit, c4);
                assert_eq!(got[4].commit, c5);
                assert!(got[5].commit == c3 || got[5].commit == c1);
                moving.push(got[1].commit.clone());
                if round == 1 {
                    let dest = work.join(format!("round-{round}"));
                    mirror.checkout(&got[1].commit, &dest).await.unwrap();
                    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), got[1].commit);
                }
            }
            moving
        }));
    }
    let mut seen_moving = Vec::new();
    for task in tasks {
        seen_moving.extend(task.await.unwrap());
    }
    let history: HashSet<String> = mover.join().unwrap().into_iter().collect();
    for sha in &seen_moving {
        assert!(history.contains(sha), "{sha} is a commit the branch pointed at");
    }

    let mirror = Mirrors::new(&root).open("shared", &url).await.unwrap();
    assert_fsck_clean(mirror.path());
    // After the mover stopped, the mirror catches up.
    let last = git(&up.path, &["rev-parse", "moving"]);
    assert_eq!(
        mirror.resolve(&Want::Branch("moving".into())).await.unwrap().commit,
        last
    );
    assert_fsck_clean(mirror.path());
}

/// Operations wait for the lock file: while another "process" holds
/// `ROOT/<name>.lock`, a resolve does not proceed; it does once released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_waits_for_the_lock_file() {
    let up = Upstream::new();
    let root = up.tmp.path().join("mirrors");
    let mirror = Mirrors::new(&root).open("repo", &up.path_url()).await.unwrap();
    let held = std::fs::File::create(root.join("repo.lock")).unwrap();
    held.lock().unwrap();

    let m = mirror.clone();
    let task = tokio::spawn(async move { m.resolve(&Want::Branch("main".into())).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "resolve must wait for the lock");
    drop(held);
    let got = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.commit, up.c2);
}
