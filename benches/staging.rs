//! Benchmark (not a test): staging branches (issue #4 point 2).
//!
//! A bare "upstream" repository with a long history (5,000 commits over 300
//! files, written with `git fast-import`) and 50 pull requests under
//! `refs/pull/N/head`, each branched off a recent commit of `main` (older
//! pull requests off older commits), with one to three commits touching a
//! few lines and adding a file. Five of them (9, 17, 26, 34, 45) also edit a
//! line that pull request N-4 edits, so they conflict once it is merged.
//!
//! Measured in the same run, alternating, median of `--reps` (default 3):
//!
//! - `ours: full`: `Mirror::resolve_all` (one fetch of `main` and the 50
//!   pull request refs into the warm mirror) + `build_staging` with a cold
//!   (empty) step cache; the build alone is shown too;
//! - `loop: full`: a plain `sh` script in a clone of upstream (made before
//!   timing): `git checkout -B staging BASE`, then per pull request
//!   `git fetch origin refs/pull/N/head` and `git merge --no-ff --no-edit
//!   FETCH_HEAD`, `git merge --abort` on a conflict;
//! - `loop: merges only`: the same with every pull request ref fetched
//!   before timing (the loop's merge cost alone, a stricter baseline);
//! - the same three after pull request 25 gets a new head commit (ours with
//!   the step cache of the previous build: steps 1-24 reused);
//! - `ours: nothing changed`: a rebuild with no change (same commit id).
//!
//! Checked every time: identical trees (tree ids) and identical conflict
//! decisions between ours and the loop; the incremental build reuses exactly
//! 24 steps; the no-change rebuild gives the same commit and runs no merge.
//! Goals from issue #4: a full build no slower than the loop; a rebuild after
//! one pull request in the middle changed at most half the loop's time.
//!
//! Run: `cargo bench --bench staging` (`-- --reps N --commits N --files N`).
//! Everything is in a temporary directory on local disk, no network; it
//! takes well under a minute on a 2-core machine.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use greenroom_git::{Forge, Mirror, Mirrors, PrHead, StagingBuild, StagingOptions, Want, build_staging};

const PRS: u64 = 50;
/// Pull requests that also edit a line of pull request N-4.
const CONFLICTING: [u64; 5] = [9, 17, 26, 34, 45];
/// The pull request that gets a new head for the incremental rebuild.
const CHANGED: u64 = 25;
/// Lines per file: history edits lines 0..40, pull requests the odd lines
/// 41..59 (one unchanged line between any two edits, so edits of different
/// slots never conflict).
const LINES: usize = 60;
const HISTORY_LINES: u64 = 40;
const SLOTS_PER_FILE: usize = 10;

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run git: {e}"));
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn git_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir);
    for (k, v) in identity() {
        cmd.env(k, v);
    }
    cmd
}

fn identity() -> [(&'static str, &'static str); 4] {
    [
        ("GIT_AUTHOR_NAME", "Loop Script"),
        ("GIT_AUTHOR_EMAIL", "loop@example.com"),
        ("GIT_COMMITTER_NAME", "Loop Script"),
        ("GIT_COMMITTER_EMAIL", "loop@example.com"),
    ]
}

fn fast_import(repo: &Path, stream: &[u8]) {
    let mut child = git_cmd(repo)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run git fast-import: {e}"));
    child
        .stdin
        .take()
        .unwrap_or_else(|| panic!("no stdin"))
        .write_all(stream)
        .unwrap_or_else(|e| panic!("writing to fast-import: {e}"));
    let status = child.wait().unwrap_or_else(|e| panic!("fast-import: {e}"));
    assert!(status.success(), "git fast-import failed");
}

fn path_of(file: usize) -> String {
    format!("src/dir{:02}/file{file:03}.txt", file / 20)
}

fn data(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("data {}\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.push(b'\n');
}

fn file_content(lines: &[String]) -> Vec<u8> {
    let mut s = lines.join("\n");
    s.push('\n');
    s.into_bytes()
}

/// One commit of a fast-import stream.
fn commit(
    out: &mut Vec<u8>,
    refname: &str,
    mark: u64,
    time: u64,
    msg: &str,
    from: Option<&str>,
    files: &[(String, Vec<u8>)],
) {
    out.extend_from_slice(
        format!("commit {refname}\nmark :{mark}\ncommitter Dev <dev@example.com> {time} +0000\n").as_bytes(),
    );
    data(out, msg.as_bytes());
    if let Some(from) = from {
        out.extend_from_slice(format!("from {from}\n").as_bytes());
    }
    for (path, content) in files {
        out.extend_from_slice(format!("M 100644 inline {path}\n").as_bytes());
        data(out, content);
    }
    out.push(b'\n');
}

/// The upstream repository; returns the time of its newest commit.
fn make_upstream(repo: &Path, commits: usize, nfiles: usize) -> u64 {
    git(
        repo.parent().unwrap_or(repo),
        &["init", "--quiet", "--bare", &repo.display().to_string()],
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut files: Vec<Vec<String>> = (0..nfiles)
        .map(|f| (0..LINES).map(|l| format!("file {f} line {l}")).collect())
        .collect();
    let mut out = Vec::with_capacity(16 << 20);
    let mut time = 1_600_000_000u64;
    let all: Vec<(String, Vec<u8>)> = files
        .iter()
        .enumerate()
        .map(|(f, l)| (path_of(f), file_content(l)))
        .collect();
    commit(&mut out, "refs/heads/main", 1, time, "initial import", None, &all);
    // (commit, file, line, previous text): to rebuild a file at a fork point.
    let mut undo: Vec<(u64, usize, usize, String)> = Vec::new();
    for c in 2..=commits as u64 {
        time += 600;
        let mut touched = Vec::new();
        for _ in 0..1 + rng.below(2) {
            let f = rng.below(nfiles as u64) as usize;
            let l = rng.below(HISTORY_LINES) as usize;
            let text = format!("file {f} line {l} changed by commit {c}");
            undo.push((c, f, l, std::mem::replace(&mut files[f][l], text)));
            touched.push((path_of(f), file_content(&files[f])));
        }
        commit(
            &mut out,
            "refs/heads/main",
            c,
            time,
            &format!("commit {c}"),
            None,
            &touched,
        );
    }

    // Pull requests: unique (file, slot) pairs, three per pull request.
    let mut slots: Vec<(usize, usize)> = (0..nfiles)
        .flat_map(|f| (0..SLOTS_PER_FILE).map(move |s| (f, s)))
        .collect();
    for i in (1..slots.len()).rev() {
        slots.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let slot_line = |s: usize| 41 + 2 * s;
    let history_tip = commits as u64;
    let mut mark = commits as u64;
    for n in 1..=PRS {
        let fork = history_tip - (PRS - n) * 3;
        let own = &slots[(n as usize - 1) * 3..(n as usize) * 3];
        let mut edits: Vec<(usize, usize, String)> = own
            .iter()
            .map(|&(f, s)| {
                (
                    f,
                    slot_line(s),
                    format!("file {f} slot {s} changed by pull request {n}"),
                )
            })
            .collect();
        if CONFLICTING.contains(&n) {
            let (f, s) = slots[(n as usize - 5) * 3];
            edits.push((
                f,
                slot_line(s),
                format!("file {f} slot {s} changed differently by pull request {n}"),
            ));
        }
        let ncommits = 1 + (n % 3) as usize;
        let mut from = format!(":{fork}");
        let mut pr_files: Vec<Vec<String>> = Vec::new();
        let mut pr_paths: Vec<usize> = Vec::new();
        for (k, chunk) in edits.chunks(edits.len().div_ceil(ncommits)).enumerate() {
            let mut touched = Vec::new();
            for (f, l, text) in chunk {
                let idx = match pr_paths.iter().position(|p| p == f) {
                    Some(i) => i,
                    None => {
                        pr_paths.push(*f);
                        pr_files.push(at_commit(&files[*f], *f, fork, &undo));
                        pr_paths.len() - 1
                    }
                };
                pr_files[idx][*l] = text.clone();
                touched.push((path_of(*f), file_content(&pr_files[idx])));
            }
            if k == 0 {
                touched.push((format!("pr/{n}.txt"), format!("pull request {n}\n").into_bytes()));
            }
            mark += 1;
            time += 60;
            commit(
                &mut out,
                &format!("refs/pull/{n}/head"),
                mark,
                time,
                &format!("pull request {n}, part {}", k + 1),
                Some(&from),
                &touched,
            );
            from = format!(":{mark}");
        }
    }
    fast_import(repo, &out);
    time
}

/// File `file` as it was at history commit `at`, from its tip version and
/// the log of edits (undone newest first).
fn at_commit(tip: &[String], file: usize, at: u64, undo: &[(u64, usize, usize, String)]) -> Vec<String> {
    let mut lines = tip.to_vec();
    for (c, f, l, old) in undo.iter().rev() {
        if *c <= at {
            break;
        }
        if *f == file {
            lines[*l] = old.clone();
        }
    }
    lines
}

/// Give pull request `n` a new head commit on top of its current one.
fn new_head(repo: &Path, n: u64, round: usize, time: u64) -> String {
    let old = git(repo, &["rev-parse", &format!("refs/pull/{n}/head")]);
    let mut out = Vec::new();
    commit(
        &mut out,
        &format!("refs/pull/{n}/head"),
        1,
        time,
        &format!("pull request {n}, update {round}"),
        Some(&old),
        &[(
            format!("pr/{n}.txt"),
            format!("pull request {n}, update {round}\n").into_bytes(),
        )],
    );
    fast_import(repo, &out);
    git(repo, &["rev-parse", &format!("refs/pull/{n}/head")])
}

const LOOP_SCRIPT: &str = r#"
set -u
git reset -q --hard || exit 2
git checkout -q -B staging "$BASE" || exit 2
for n in $PRS; do
  if [ "$PREFETCHED" = 1 ]; then
    rev="refs/pull/$n/head"
  else
    git fetch -q --no-tags origin "refs/pull/$n/head" || exit 3
    rev=FETCH_HEAD
  fi
  if git merge -q --no-ff --no-edit "$rev" >/dev/null 2>&1; then
    echo "merged $n"
  else
    echo "conflict $n"
    git merge --abort || exit 4
  fi
done
echo "tree $(git rev-parse 'HEAD^{tree}')"
"#;

/// What a run decided: the tree and the conflicting pull request numbers.
#[derive(Debug, PartialEq, Eq)]
struct Decision {
    tree: String,
    conflicts: Vec<u64>,
}

fn run_loop(work: &Path, script: &Path, base: &str, prefetched: bool) -> (f64, Decision) {
    let prs: Vec<String> = (1..=PRS).map(|n| n.to_string()).collect();
    let started = Instant::now();
    let out = Command::new("sh")
        .arg(script)
        .current_dir(work)
        .envs(identity())
        .env("BASE", base)
        .env("PRS", prs.join(" "))
        .env("PREFETCHED", if prefetched { "1" } else { "0" })
        .output()
        .unwrap_or_else(|e| panic!("cannot run sh: {e}"));
    let secs = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loop script failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut decision = Decision {
        tree: String::new(),
        conflicts: Vec::new(),
    };
    for line in stdout.lines() {
        if let Some(n) = line.strip_prefix("conflict ") {
            decision.conflicts.push(n.parse().unwrap_or(0));
        } else if let Some(t) = line.strip_prefix("tree ") {
            decision.tree = t.to_owned();
        }
    }
    (secs, decision)
}

fn wants() -> Vec<Want> {
    let mut wants = vec![Want::Branch("main".into())];
    wants.extend((1..=PRS).map(|number| Want::PullRequest {
        number,
        forge: Forge::Github,
    }));
    wants
}

/// Ours: fetch (resolve) + build; (fetch secs, build secs, build, decision).
fn run_ours(
    rt: &tokio::runtime::Runtime,
    mirror: &Mirror,
    opts: &StagingOptions,
) -> (f64, f64, StagingBuild, Decision) {
    rt.block_on(async {
        let started = Instant::now();
        let resolved = mirror
            .resolve_all(&wants())
            .await
            .unwrap_or_else(|e| panic!("resolve: {e}"));
        let fetched = started.elapsed().as_secs_f64();
        let base = resolved[0].commit.clone();
        let prs: Vec<PrHead> = resolved[1..]
            .iter()
            .zip(1..)
            .map(|(r, n)| PrHead {
                id: format!("bench/repo#{n}"),
                number: n,
                head: r.commit.clone(),
                title: format!("Pull request {n}"),
            })
            .collect();
        let started = Instant::now();
        let build = build_staging(mirror, &base, &prs, opts)
            .await
            .unwrap_or_else(|e| panic!("build_staging: {e}"));
        let built = started.elapsed().as_secs_f64();
        let decision = Decision {
            tree: build.tree.clone(),
            conflicts: build
                .conflicts
                .iter()
                .map(|c| c.id.rsplit('#').next().and_then(|n| n.parse().ok()).unwrap_or(0))
                .collect(),
        };
        (fetched, built, build, decision)
    })
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn row(name: &str, xs: &[f64], note: &str) -> String {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    format!(
        "{name:<40} {:>8.3} {:>8.3} {:>8.3}  {note}",
        median(xs),
        v[0],
        v[v.len() - 1]
    )
}

fn main() {
    let reps = arg("--reps", 3).max(1);
    let commits = arg("--commits", 5000).max(200);
    let nfiles = arg("--files", 300).max(40);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = tmp.path();
    let upstream: PathBuf = dir.join("upstream.git");

    let t = Instant::now();
    let mut time = make_upstream(&upstream, commits, nfiles);
    let generated = t.elapsed().as_secs_f64();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let t = Instant::now();
    let mirror = rt
        .block_on(async {
            let m = Mirrors::new(dir.join("mirrors"))
                .open("repo", &upstream.display().to_string())
                .await?;
            m.resolve_all(&wants()).await.map(|_| m)
        })
        .unwrap_or_else(|e| panic!("mirror: {e}"));
    let mirrored = t.elapsed().as_secs_f64();

    // The loop's clone, made before timing; one with every PR ref prefetched.
    let work = dir.join("work");
    git(
        dir,
        &[
            "clone",
            "--quiet",
            "--no-tags",
            &upstream.display().to_string(),
            &work.display().to_string(),
        ],
    );
    let work_pre = dir.join("work-prefetched");
    git(
        dir,
        &[
            "clone",
            "--quiet",
            "--no-tags",
            &upstream.display().to_string(),
            &work_pre.display().to_string(),
        ],
    );
    let script = dir.join("loop.sh");
    std::fs::write(&script, LOOP_SCRIPT).unwrap_or_else(|e| panic!("write script: {e}"));
    let prefetch = |work: &Path| {
        git(
            work,
            &["fetch", "--quiet", "origin", "+refs/pull/*/head:refs/pull/*/head"],
        )
    };
    prefetch(&work_pre);
    let base = git(&upstream, &["rev-parse", "main"]);
    let count = git(&upstream, &["rev-list", "--count", "main"]);
    println!(
        "staging branch of {PRS} pull requests on a {count}-commit, {nfiles}-file repository \
         (setup: generated in {generated:.1}s, mirrored in {mirrored:.1}s); {reps} reps"
    );

    let (mut o_fetch, mut o_build, mut o_total, mut l_full, mut l_pre) = (vec![], vec![], vec![], vec![], vec![]);
    let mut checks = Vec::new();
    let mut reference = None;
    for rep in 0..reps {
        let opts = StagingOptions::with_cache(dir.join(format!("cache-cold-{rep}")));
        let (f, b, build, ours) = run_ours(&rt, &mirror, &opts);
        assert_eq!((build.reused_steps, build.merged_steps), (0, PRS as usize));
        let (secs, theirs) = run_loop(&work, &script, &base, false);
        let (secs_pre, theirs_pre) = run_loop(&work_pre, &script, &base, true);
        checks.push(ours == theirs && ours == theirs_pre);
        if rep == 0 {
            println!(
                "full build: {} merged, {} conflicts ({:?}), tree {}",
                build.merged.len(),
                ours.conflicts.len(),
                ours.conflicts,
                &ours.tree[..12]
            );
            assert_eq!(ours.conflicts, CONFLICTING.to_vec(), "the planted conflicts, exactly");
        }
        if let Some(r) = &reference {
            assert_eq!(*r, build.commit, "a cold rebuild gives the same commit");
        }
        reference = Some(build.commit.clone());
        o_fetch.push(f);
        o_build.push(b);
        o_total.push(f + b);
        l_full.push(secs);
        l_pre.push(secs_pre);
    }
    let full_same = checks.iter().all(|c| *c);

    // Warm the step cache for the current state; a rebuild with no change.
    let warm = StagingOptions::with_cache(dir.join("cache-warm"));
    let (_, _, first, _) = run_ours(&rt, &mirror, &warm);
    let mut nochange = Vec::new();
    let mut same_id = true;
    for _ in 0..reps {
        let (f, b, again, _) = run_ours(&rt, &mirror, &warm);
        same_id &= again.commit == first.commit && again.merged_steps == 0;
        nochange.push(f + b);
    }

    let (mut i_fetch, mut i_build, mut i_total, mut li_full, mut li_pre) = (vec![], vec![], vec![], vec![], vec![]);
    let mut incr_checks = Vec::new();
    let mut reused = Vec::new();
    for rep in 0..reps {
        time += 3600;
        new_head(&upstream, CHANGED, rep, time);
        prefetch(&work_pre);
        let (f, b, build, ours) = run_ours(&rt, &mirror, &warm);
        reused.push((build.reused_steps, build.merged_steps));
        let (secs, theirs) = run_loop(&work, &script, &base, false);
        let (secs_pre, theirs_pre) = run_loop(&work_pre, &script, &base, true);
        incr_checks.push(ours == theirs && ours == theirs_pre);
        i_fetch.push(f);
        i_build.push(b);
        i_total.push(f + b);
        li_full.push(secs);
        li_pre.push(secs_pre);
    }
    let incr_same = incr_checks.iter().all(|c| *c);
    let reuse_ok = reused
        .iter()
        .all(|&r| r == (CHANGED as usize - 1, (PRS - CHANGED + 1) as usize));

    println!();
    println!("{:<40} {:>8} {:>8} {:>8}", "seconds", "median", "min", "max");
    println!("{}", row("ours: full (fetch + build, cold cache)", &o_total, ""));
    println!("{}", row("  of which build_staging", &o_build, "50 merge steps"));
    println!("{}", row("  of which fetch (resolve_all, 51 refs)", &o_fetch, ""));
    println!("{}", row("loop: full (fetch + merge --no-ff) x50", &l_full, ""));
    println!("{}", row("loop: merges only (refs prefetched)", &l_pre, ""));
    println!(
        "{}",
        row(
            &format!("ours: PR #{CHANGED} new head (fetch + build)"),
            &i_total,
            &format!("reused/merged steps: {:?}", reused[0])
        )
    );
    println!("{}", row("  of which build_staging", &i_build, ""));
    println!("{}", row("  of which fetch", &i_fetch, ""));
    println!("{}", row(&format!("loop: PR #{CHANGED} new head, full"), &li_full, ""));
    println!(
        "{}",
        row(&format!("loop: PR #{CHANGED} new head, merges only"), &li_pre, "")
    );
    println!(
        "{}",
        row(
            "ours: nothing changed (fetch + build)",
            &nochange,
            "same commit id, no merge"
        )
    );
    println!();
    let yes = |b: bool| if b { "yes" } else { "NO" };
    println!(
        "identical trees and conflict decisions, full builds:        {}",
        yes(full_same)
    );
    println!(
        "identical trees and conflict decisions, after PR #{CHANGED} moved: {}",
        yes(incr_same)
    );
    println!(
        "incremental rebuild reuses steps 1-{}:                       {}",
        CHANGED - 1,
        yes(reuse_ok)
    );
    println!(
        "rebuild with nothing changed gives the same commit id:       {}",
        yes(same_id)
    );
    let full_ratio = median(&o_total) / median(&l_full);
    let incr_ratio = median(&i_total) / median(&li_full);
    let met = |b: bool| if b { "met" } else { "NOT met" };
    println!(
        "goal full build <= loop:               {full_ratio:.3} x loop ({}; {:.3} x the merges-only loop)",
        met(full_ratio <= 1.0),
        median(&o_total) / median(&l_pre)
    );
    println!(
        "goal PR #{CHANGED} rebuild <= 0.5 x loop:     {incr_ratio:.3} x loop ({}; {:.3} x the merges-only loop)",
        met(incr_ratio <= 0.5),
        median(&i_total) / median(&li_pre)
    );
    assert!(
        full_same && incr_same && reuse_ok && same_id,
        "a correctness check failed (see above)"
    );
}
