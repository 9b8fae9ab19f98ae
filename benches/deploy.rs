//! Benchmark (not a test): one deploy cycle of nine components.
//!
//! Nine local repositories named after seed 001's (packit-service, packit,
//! ogr, dashboard, tokman, sandcastle, deployment,
//! packit-service-centosmsg, packit-service-fedmsg), each a trivial build
//! (writes the commit to a file) and a trivial run command (the sample HTTP
//! service, health-checked over HTTP). After a warm-up that fills the
//! mirrors and the build cache, it alternates `--base stg` and
//! `--base prod` so every measured cycle really replaces all nine
//! components, and reads the figures the real `greenroom deploy --json`
//! reports about itself:
//!
//! - resolution time (nine mirrors fetched concurrently),
//! - orchestrator overhead: wall time minus time in user commands, health
//!   waits and the components' own shutdown,
//! - peak resident memory of the greenroom process (VmHWM).
//!
//! Goals from issue #2: overhead under 150 ms per cycle, under 30 MiB
//! resident. Run: `cargo bench --bench deploy` (`-- --cycles N` for more).
//! Everything runs on 127.0.0.1 and the benchmark stops what it started.

use std::path::{Path, PathBuf};
use std::time::Instant;

mod common;
use common::{StopOnDrop, greenroom, run};

const REPOS: [&str; 9] = [
    "packit-service",
    "packit",
    "ogr",
    "dashboard",
    "tokman",
    "sandcastle",
    "deployment",
    "packit-service-centosmsg",
    "packit-service-fedmsg",
];

fn write_config(dir: &Path) -> PathBuf {
    let exe = greenroom::quickstart::shell_quote(greenroom());
    let mut s = String::from("port_base = 24000\n");
    for name in REPOS {
        s.push_str(&format!(
            "\n[[component]]\nname = \"{name}\"\nrepo = \"repos/{name}\"\n\
             channels = {{ stg = \"main\", prod = \"stable\" }}\n\
             build = \"printf '%s\\\\n' \\\"$GREENROOM_COMMIT\\\" > .greenroom-built\"\n\
             run = \"{} sample-service\"\n\
             health = \"http://127.0.0.1:{{port}}/healthz\"\n\
             url = \"http://127.0.0.1:{{port}}/\"\n",
            exe.replace('\\', "\\\\").replace('"', "\\\"")
        ));
    }
    s.push_str("\n[[environment]]\nname = \"staging\"\n");
    let path = dir.join("greenroom.toml");
    std::fs::write(&path, s).unwrap_or_else(|e| panic!("cannot write config: {e}"));
    path
}

fn field(v: &serde_json::Value, k: &str) -> f64 {
    v["timings"][k].as_f64().unwrap_or(f64::NAN)
}

fn stats(name: &str, unit: &str, mut xs: Vec<f64>) -> String {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    let median = xs[n / 2];
    let p90 = xs[((n * 9) / 10).min(n - 1)];
    format!(
        "{name:<22} min {:>7.1}  median {median:>7.1}  p90 {p90:>7.1}  max {:>7.1} {unit}",
        xs[0],
        xs[n - 1]
    )
}

fn main() {
    let cycles: usize = std::env::args()
        .skip_while(|a| a != "--cycles")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = tmp.path();
    for (i, name) in REPOS.iter().enumerate() {
        // The stable branch is one commit behind main, so stg and prod differ.
        greenroom::quickstart::make_repo(&dir.join("repos").join(name), name, i as u64 + 1, false)
            .unwrap_or_else(|e| panic!("cannot create repo {name}: {e:#}"));
    }
    let config = write_config(dir);
    // Whatever happens (a failed deploy panics), what it started stops
    // before the temporary directory goes.
    let _stop = StopOnDrop(&config, "staging");
    let deploy = |base: &str| -> serde_json::Value {
        let (ok, out, err) = run(
            &config,
            &["deploy", "--json", "--env", "staging", "--release", "--base", base],
        );
        assert!(ok, "deploy --base {base} failed:\n{out}\n{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
    };
    // Warm-up: mirrors and build cache for both bases.
    deploy("stg");
    deploy("prod");

    let mut overhead = Vec::new();
    let mut resolve = Vec::new();
    let mut total = Vec::new();
    let mut health = Vec::new();
    let mut stop = Vec::new();
    let mut rss = Vec::new();
    let started = Instant::now();
    for i in 0..cycles {
        let base = if i % 2 == 0 { "stg" } else { "prod" };
        let r = deploy(base);
        let deployed = r["components"]
            .as_array()
            .map(|c| c.iter().filter(|c| c["action"] == "deploy").count())
            .unwrap_or(0);
        assert_eq!(deployed, 9, "every cycle must replace all nine components: {r}");
        assert!(
            r["components"]
                .as_array()
                .is_some_and(|c| c.iter().all(|c| c["build"] == "cached")),
            "warm cache expected: {r}"
        );
        overhead.push(field(&r, "overhead_ms"));
        resolve.push(field(&r, "resolve_ms"));
        total.push(field(&r, "total_ms"));
        health.push(field(&r, "health_ms"));
        stop.push(field(&r, "stop_ms"));
        rss.push(field(&r, "peak_rss_kib") / 1024.0);
    }
    let (ok, _, err) = run(&config, &["stop", "--env", "staging"]);
    assert!(ok, "stop failed: {err}");
    println!(
        "greenroom deploy: 9 components, warm mirrors and build cache, {cycles} cycles ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    println!("{}", stats("cycle wall time", "ms", total));
    println!("{}", stats("resolution", "ms", resolve));
    println!("{}", stats("health waits", "ms", health));
    println!("{}", stats("previous stopping", "ms", stop));
    println!("{}", stats("orchestrator overhead", "ms", overhead.clone()));
    println!("{}", stats("peak resident memory", "MiB", rss.clone()));
    let worst_overhead = overhead.iter().cloned().fold(0.0, f64::max);
    let worst_rss = rss.iter().cloned().fold(0.0, f64::max);
    println!(
        "goals: overhead < 150 ms: {}; resident < 30 MiB: {}",
        if worst_overhead < 150.0 {
            "met (worst cycle)"
        } else {
            "NOT met (worst cycle)"
        },
        if worst_rss < 30.0 { "met" } else { "NOT met" }
    );
}
