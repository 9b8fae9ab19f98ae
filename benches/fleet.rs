//! Benchmark (not a test): rolling a new manifest across a fleet of 50
//! process instances (issue #5 point 2) in batches of 10.
//!
//! One repository, a trivial build (writes the commit to a file) and the
//! sample HTTP service as the run command, health-checked over HTTP;
//! `instances = 50`, `batch = 10` (waves: the blessed target, then five
//! batches). After a warm-up that fills the mirror and the build cache for
//! both bases, it alternates `--base stg` and `--base prod` so every
//! measured cycle replaces all 50 copies, and reads what the real
//! `greenroom deploy --json` reports per target:
//!
//! - rollout wall time (the deploy stage),
//! - the sum of per-instance restart times (each copy's shutdown, start-up
//!   and health wait: what a one-by-one restart would wait for),
//! - the critical path (per wave, its slowest copy's restart), and
//! - orchestrator overhead per target: (rollout wall − critical path) / 50.
//!
//! Goal from issue #5: overhead under 5 ms per target. Run:
//! `cargo bench --bench fleet` (`-- --cycles N`); with
//! `GREENROOM_SUPERVISOR_SELF=1` the supervisor is the whole greenroom
//! binary (`__supervise`) instead of the small `greenroom-supervise`.
//! Everything runs on 127.0.0.1 and the benchmark stops what it started.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod common;
use common::{StopOnDrop, greenroom, run};

const INSTANCES: usize = 50;

fn write_config(dir: &Path) -> PathBuf {
    let exe = greenroom::quickstart::shell_quote(greenroom());
    let s = format!(
        "port_base = 25000\n\n[[component]]\nname = \"svc\"\nrepo = \"repos/svc\"\n\
         channels = {{ stg = \"main\", prod = \"stable\" }}\n\
         build = \"printf '%s\\\\n' \\\"$GREENROOM_COMMIT\\\" > .greenroom-built\"\n\
         run = \"{} sample-service\"\n\
         health = \"http://127.0.0.1:{{port}}/healthz\"\n\
         url = \"http://127.0.0.1:{{port}}/\"\n\
         \n[[environment]]\nname = \"fleet\"\ninstances = {INSTANCES}\nbatch = 10\n",
        exe.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let path = dir.join("greenroom.toml");
    std::fs::write(&path, s).unwrap_or_else(|e| panic!("cannot write config: {e}"));
    path
}

fn stats(name: &str, unit: &str, mut xs: Vec<f64>) -> String {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    let median = xs[n / 2];
    format!(
        "{name:<34} min {:>8.1}  median {median:>8.1}  max {:>8.1} {unit}",
        xs[0],
        xs[n - 1]
    )
}

fn main() {
    let cycles: usize = std::env::args()
        .skip_while(|a| a != "--cycles")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = tmp.path();
    // The stable branch is one commit behind main, so stg and prod differ.
    greenroom::quickstart::make_repo(&dir.join("repos").join("svc"), "svc", 1, false)
        .unwrap_or_else(|e| panic!("cannot create repo: {e:#}"));
    let config = write_config(dir);
    // Whatever happens (a failed deploy panics), what it started stops
    // before the temporary directory goes.
    let _stop = StopOnDrop(&config, "fleet");
    let deploy = |base: &str| -> serde_json::Value {
        let (ok, out, err) = run(
            &config,
            &["deploy", "--json", "--env", "fleet", "--release", "--base", base],
        );
        assert!(ok, "deploy --base {base} failed:\n{out}\n{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
    };
    deploy("stg");
    deploy("prod");

    let (mut wall, mut sum, mut critical, mut per_target, mut speedup) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Per copy: its time on the target outside the waits (start-up of the
    // supervisor, records), the part of the overhead spent on the target.
    let mut own = Vec::new();
    let started = Instant::now();
    for i in 0..cycles {
        let r = deploy(if i % 2 == 0 { "stg" } else { "prod" });
        let targets = r["components"][0]["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("no targets: {r}"))
            .clone();
        assert_eq!(targets.len(), INSTANCES, "{r}");
        assert!(
            targets.iter().all(|t| t["outcome"] == "running"),
            "every copy must be replaced: {r}"
        );
        let rollout = r["timings"]["deploy_ms"].as_f64().unwrap_or(f64::NAN);
        let mut slowest: BTreeMap<String, f64> = BTreeMap::new();
        let mut total = 0.0;
        for t in &targets {
            let w = t["wait_ms"].as_f64().unwrap_or(f64::NAN);
            total += w;
            own.push(t["ms"].as_f64().unwrap_or(f64::NAN) - w);
            let e = slowest.entry(t["wave"].as_str().unwrap_or("").to_string()).or_default();
            *e = e.max(w);
        }
        let path: f64 = slowest.values().sum();
        wall.push(rollout);
        sum.push(total);
        critical.push(path);
        per_target.push((rollout - path).max(0.0) / INSTANCES as f64);
        speedup.push(total / rollout);
    }
    let (ok, _, err) = run(&config, &["stop", "--env", "fleet"]);
    assert!(ok, "stop failed: {err}");
    println!(
        "greenroom fleet rollout: {INSTANCES} process instances, batches of 10 (6 waves), warm cache, {cycles} cycles ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    println!("{}", stats("rollout wall time", "ms", wall));
    println!("{}", stats("sum of per-instance restarts", "ms", sum));
    println!("{}", stats("critical path (slowest per wave)", "ms", critical));
    println!("{}", stats("sum / wall", "x", speedup));
    println!(
        "{}",
        stats("orchestrator overhead per target", "ms", per_target.clone())
    );
    println!("{}", stats("a copy's time outside its waits", "ms", own));
    let worst = per_target.iter().cloned().fold(0.0, f64::max);
    println!(
        "goal: overhead < 5 ms per target: {} (worst cycle {worst:.2} ms)",
        if worst < 5.0 { "met" } else { "NOT met" }
    );
}
