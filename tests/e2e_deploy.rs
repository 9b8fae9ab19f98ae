//! End to end: deploying compositions with the process driver, checked over
//! HTTP — PR overrides across repositories, the build cache, a failing
//! health check, partial deploys (`--only`/`--skip`) and `stop`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{COMPONENTS, Options, Sandbox, get_json, http_get, listening};
use serde_json::Value;

fn by_name<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"))
}

#[test]
fn pr_overrides_across_two_repos_serve_their_commits() {
    let sb = Sandbox::new(0);

    // The stg base: every component at its repository's main.
    let base = sb.json(&["--as", "alice", "deploy", "--env", "staging"]);
    assert_eq!(base["result"], "succeeded", "{base:#}");
    let st = sb.assert_serving("staging");
    assert_eq!(st["manifest"], base["manifest"]);
    for (name, _, _, _) in COMPONENTS {
        let c = Sandbox::component(&st, name);
        assert_eq!(c["state"], "running");
        assert_eq!(c["commit"], sb.rev(name, "main"), "{name}");
        assert_eq!(c["ref"], "refs/heads/main");
        assert_eq!(by_name(&base, name)["commit"], c["commit"]);
        let served = get_json(c["url"].as_str().expect("url"));
        assert_eq!(served["commit"], sb.rev(name, "main"), "{name} serves the wrong commit");
    }

    // Two PRs from two repositories; the third component follows the base.
    let prs = sb.json(&[
        "--as",
        "alice",
        "deploy",
        "--env",
        "staging",
        "ogr=1",
        "packit-service=2",
    ]);
    assert_eq!(prs["result"], "succeeded", "{prs:#}");
    assert_ne!(prs["manifest"], base["manifest"]);
    let st = sb.assert_serving("staging");
    assert_eq!(
        st["manifest"], prs["manifest"],
        "status runs the manifest the deploy reported"
    );
    let expect = [
        ("ogr", sb.rev("ogr", "refs/pull/1/head"), "refs/pull/1/head"),
        (
            "packit-service",
            sb.rev("packit-service", "refs/pull/2/head"),
            "refs/pull/2/head",
        ),
        ("dashboard", sb.rev("dashboard", "main"), "refs/heads/main"),
    ];
    for (name, commit, reference) in &expect {
        let c = Sandbox::component(&st, name);
        assert_eq!(c["state"], "running", "{name}");
        assert_eq!(c["commit"], commit.as_str(), "{name}: status commit");
        assert_eq!(c["ref"], *reference, "{name}: ref");
        assert_eq!(
            by_name(&prs, name)["commit"],
            commit.as_str(),
            "{name}: manifest commit"
        );
        let served = get_json(c["url"].as_str().expect("url"));
        assert_eq!(served["commit"], commit.as_str(), "{name}: served commit");
    }
    assert_eq!(Sandbox::component(&st, "ogr")["pr"], 1);
    assert_eq!(Sandbox::component(&st, "packit-service")["pr"], 2);
    assert_ne!(sb.rev("ogr", "refs/pull/1/head"), sb.rev("ogr", "main"));
    // The unchanged component was kept, not restarted.
    assert_eq!(by_name(&prs, "dashboard")["action"], "keep");
    assert_eq!(Sandbox::component(&st, "dashboard")["cycle"], base["cycle"]);
}

#[test]
fn cached_components_are_never_rebuilt() {
    let sb = Sandbox::new(1);
    let main: Vec<(&str, String)> = COMPONENTS.iter().map(|(n, ..)| (*n, sb.rev(n, "main"))).collect();
    let pr1 = sb.rev("ogr", "refs/pull/1/head");

    let first = sb.json(&["--as", "alice", "deploy", "--env", "staging"]);
    assert_eq!(first["result"], "succeeded");
    for (name, commit) in &main {
        assert_eq!(by_name(&first, name)["build"], "built", "{name}");
        assert_eq!(sb.builds(name), [(commit.clone(), 1)].into(), "{name} built once");
    }

    // The same composition again: everything already runs it.
    let again = sb.json(&["--as", "alice", "deploy", "--env", "staging"]);
    assert_eq!(again["result"], "succeeded");
    assert_eq!(again["manifest"], first["manifest"], "same composition, same manifest");
    for (name, _) in &main {
        assert_eq!(by_name(&again, name)["action"], "keep", "{name}: {again:#}");
        assert_eq!(by_name(&again, name)["build"], "none", "{name}");
    }

    // A PR: only ogr is built, once.
    let pr = sb.json(&["--as", "alice", "deploy", "--env", "staging", "ogr=1"]);
    assert_eq!(pr["result"], "succeeded");
    assert_eq!(by_name(&pr, "ogr")["build"], "built");
    assert_eq!(by_name(&pr, "ogr")["action"], "deploy");
    assert_eq!(by_name(&pr, "packit-service")["action"], "keep");
    assert_eq!(by_name(&pr, "dashboard")["action"], "keep");

    // The same PR asked by its head commit: the same manifest, nothing to do.
    let by_sha = sb.json(&["--as", "alice", "deploy", "--env", "staging", &format!("ogr=sha:{pr1}")]);
    assert_eq!(by_sha["result"], "succeeded");
    assert_eq!(
        by_sha["manifest"], pr["manifest"],
        "ogr=1 and ogr=sha:<its head> are one manifest"
    );
    for (name, _) in &main {
        assert_eq!(by_name(&by_sha, name)["action"], "keep", "{name}: {by_sha:#}");
    }

    // Back to the base: ogr's main build comes from the cache.
    let back = sb.json(&["--as", "alice", "deploy", "--env", "staging"]);
    assert_eq!(back["result"], "succeeded");
    assert_eq!(back["manifest"], first["manifest"]);
    assert_eq!(by_name(&back, "ogr")["action"], "deploy");
    assert_eq!(by_name(&back, "ogr")["build"], "cached");
    sb.assert_serving("staging");

    // Each (component, commit) was built exactly once, over five deploys.
    assert_eq!(sb.builds("ogr"), [(main[0].1.clone(), 1), (pr1.clone(), 1)].into());
    assert_eq!(sb.builds("packit-service"), [(main[1].1.clone(), 1)].into());
    assert_eq!(sb.builds("dashboard"), [(main[2].1.clone(), 1)].into());
    let h = sb.history();
    assert_eq!(h.len(), 5);
    assert!(h.iter().all(|c| c["result"] == "succeeded"), "{h:#?}");
}

#[test]
fn failing_health_check_names_the_component_and_its_log() {
    let sb = Sandbox::with(
        2,
        Options {
            health_timeout: "3s",
            ..Options::default()
        },
    );
    sb.json(&["--as", "alice", "deploy", "--env", "staging"]);
    let before = sb.assert_serving("staging");
    let dash_url = Sandbox::component(&before, "dashboard")["url"]
        .as_str()
        .expect("url")
        .to_string();
    let dash_port = Sandbox::component(&before, "dashboard")["port"].as_u64().expect("port") as u16;
    let cycles_before = sb.history().len();

    // dashboard's PR #3 adds a file that makes /healthz answer 503.
    let out = sb
        .run(&["--as", "alice", "deploy", "--env", "staging", "dashboard=3"])
        .expect(1);
    let text = out.all();
    assert!(text.contains("dashboard"), "{text}");
    assert!(text.contains("health check"), "{text}");
    assert!(text.contains("last lines of"), "the log tail is shown: {text}");
    assert!(
        text.contains("sample service listening"),
        "the tail has the component's own output: {text}"
    );

    let after = sb.status("staging");
    let dash = Sandbox::component(&after, "dashboard");
    assert_eq!(dash["state"], "failed", "{after:#}");
    assert_eq!(dash["commit"], sb.rev("dashboard", "refs/pull/3/head"));
    for name in ["ogr", "packit-service"] {
        let (b, a) = (Sandbox::component(&before, name), Sandbox::component(&after, name));
        for field in ["commit", "state", "cycle", "since", "port"] {
            assert_eq!(a[field], b[field], "{name}.{field} changed");
        }
        let served = get_json(a["url"].as_str().expect("url"));
        assert_eq!(served["commit"], a["commit"]);
        assert_eq!(served["cycle"], b["cycle"].to_string(), "{name} was restarted");
    }
    // The replaced version was stopped, and the failed one is not left up.
    assert!(http_get(&dash_url).is_none(), "something still answers on {dash_url}");
    assert!(!listening(dash_port));

    let h = sb.history();
    assert_eq!(h.len(), cycles_before + 1);
    assert_eq!(h[0]["result"], "failed");
    assert!(
        h[0]["error"].as_str().is_some_and(|e| e.contains("dashboard")),
        "{:#}",
        h[0]
    );
    assert!(
        after["manifest"].is_null(),
        "a failed cycle leaves no single manifest running: {after:#}"
    );
    // The component answered 503 until the deadline: the code's failure, not the infrastructure's.
    let again = sb.run(&["--json", "--as", "alice", "deploy", "--env", "staging", "dashboard=3"]);
    let r = again.expect(1).json();
    assert_eq!(r["failure"]["class"], "code", "{r:#}");
    assert_eq!(r["failure"]["stage"], "health", "{r:#}");
    assert_eq!(r["failure"]["subject"], "dashboard", "{r:#}");
}

#[test]
fn only_and_skip_leave_the_other_components_running() {
    let sb = Sandbox::new(3);
    let base = sb.json(&["--as", "alice", "deploy", "--env", "staging"]);
    let c1 = base["cycle"].as_i64().expect("cycle");
    let s1 = sb.assert_serving("staging");

    let only = sb.json(&["--as", "alice", "deploy", "--env", "staging", "--only", "ogr", "ogr=1"]);
    assert_eq!(only["result"], "succeeded");
    let c2 = only["cycle"].as_i64().expect("cycle");
    assert_eq!(by_name(&only, "ogr")["action"], "deploy");
    assert_eq!(by_name(&only, "packit-service")["action"], "carry");
    assert_eq!(by_name(&only, "dashboard")["action"], "carry");
    let s2 = sb.assert_serving("staging");
    assert_eq!(
        Sandbox::component(&s2, "ogr")["commit"],
        sb.rev("ogr", "refs/pull/1/head")
    );
    assert_eq!(Sandbox::component(&s2, "ogr")["cycle"], c2);
    for name in ["packit-service", "dashboard"] {
        let (a, b) = (Sandbox::component(&s1, name), Sandbox::component(&s2, name));
        for field in ["commit", "cycle", "since", "state", "port"] {
            assert_eq!(a[field], b[field], "{name}.{field}");
        }
        assert_eq!(b["cycle"], c1);
        // The process that answers was started by the first cycle.
        assert_eq!(
            get_json(b["url"].as_str().expect("url"))["cycle"],
            c1.to_string(),
            "{name} was restarted"
        );
    }

    let diff = sb.json(&["diff", &c1.to_string(), &c2.to_string()]);
    let changed: Vec<&str> = diff["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["component"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(changed, ["ogr"], "{diff:#}");

    // --skip: ogr keeps its PR, dashboard keeps the base; packit-service moves.
    let skip = sb.json(&[
        "--as",
        "alice",
        "deploy",
        "--env",
        "staging",
        "--skip",
        "ogr,dashboard",
        "packit-service=2",
    ]);
    assert_eq!(skip["result"], "succeeded");
    let c3 = skip["cycle"].as_i64().expect("cycle");
    let s3 = sb.assert_serving("staging");
    assert_eq!(Sandbox::component(&s3, "ogr")["cycle"], c2);
    assert_eq!(
        Sandbox::component(&s3, "ogr")["commit"],
        sb.rev("ogr", "refs/pull/1/head")
    );
    assert_eq!(Sandbox::component(&s3, "dashboard")["cycle"], c1);
    assert_eq!(Sandbox::component(&s3, "packit-service")["cycle"], c3);
    assert_eq!(
        Sandbox::component(&s3, "packit-service")["commit"],
        sb.rev("packit-service", "refs/pull/2/head")
    );
    let diff = sb.json(&["diff", &c2.to_string(), &c3.to_string()]);
    let changed: Vec<&str> = diff["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["component"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(changed, ["packit-service"], "{diff:#}");
}

#[test]
fn stop_stops_everything_and_is_recorded() {
    let sb = Sandbox::new(4);
    sb.json(&["--as", "alice", "deploy", "--env", "staging"]);
    let st = sb.assert_serving("staging");
    let ports: Vec<u16> = st["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["port"].as_u64().expect("port") as u16)
        .collect();
    assert_eq!(ports.len(), 3);
    assert!(ports.iter().all(|p| listening(*p)));

    let stop = sb.json(&["--as", "alice", "stop", "--env", "staging"]);
    assert_eq!(stop["kind"], "stop");
    assert_eq!(stop["result"], "succeeded", "{stop:#}");
    // Stopping waits for the process groups to end: the ports are free at once.
    for p in &ports {
        assert!(!listening(*p), "port {p} still answers after stop");
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok(),
            "port {p} is not free"
        );
    }
    let after = sb.status("staging");
    for c in after["components"].as_array().expect("components") {
        assert_eq!(c["state"], "stopped", "{after:#}");
    }
    assert!(after["manifest"].is_null());
    let h = sb.history();
    assert_eq!(h[0]["kind"], "stop");
    assert_eq!(h[0]["result"], "succeeded");
    assert_eq!(h[0]["id"], stop["cycle"]);
    assert_eq!(h[0]["requested_by"], "alice");
    assert!(
        common::procs_under(&sb.state).is_empty(),
        "processes left: {:?}",
        common::procs_under(&sb.state)
    );
}

#[test]
fn failing_build_stops_the_cycle_before_anything_is_deployed() {
    let sb = Sandbox::new(34);
    // dashboard's build fails on the PR that adds BROKEN.
    let failing = "echo building; if [ -f BROKEN ]; then echo 'compile error: BROKEN is not allowed' >&2; exit 2; fi; \
                   printf '%s\\n' \"$GREENROOM_COMMIT\" > .greenroom-built";
    let text = std::fs::read_to_string(&sb.config).expect("config").replace(
        &common::toml_str(&sb.build_command("dashboard")),
        &common::toml_str(failing),
    );
    sb.write_config(&text);
    sb.ok(&["deploy", "--env", "staging"]);
    let before = sb.status("staging");
    let cycles = sb.history().len();

    let out = sb.run(&["deploy", "--env", "staging", "ogr=1", "dashboard=3"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let all = out.all();
    assert!(all.contains("build of dashboard failed (exit status 2)"), "{all}");
    assert!(all.contains("compile error: BROKEN is not allowed"), "{all}");
    assert!(all.contains("nothing was deployed"), "{all}");

    // Nothing changed: same commits, same cycles that put them there; the failed cycle is recorded.
    let after = sb.status("staging");
    for name in ["ogr", "packit-service", "dashboard"] {
        let (b, a) = (Sandbox::component(&before, name), Sandbox::component(&after, name));
        assert_eq!(
            (&a["commit"], &a["cycle"], &a["state"]),
            (&b["commit"], &b["cycle"], &b["state"]),
            "{name}"
        );
    }
    let history = sb.history();
    assert_eq!(history.len(), cycles + 1);
    assert_eq!(history[0]["result"], "failed");
    sb.ok(&["stop", "--env", "staging"]);
}

#[test]
fn gc_removes_old_cycles_and_builds_but_never_what_runs() {
    let sb = Sandbox::with(
        38,
        common::Options {
            extra:
                "\n[retention]\ncycles = \"1ms\"\nkeep_cycles = 0\nbuilds = \"1ms\"\nlogs = \"1ms\"\nevents = \"1ms\"\n"
                    .into(),
            ..Default::default()
        },
    );
    sb.json(&["deploy", "--env", "staging", "--release"]);
    let main = sb.rev("ogr", "main");
    assert_eq!(sb.builds("ogr").get(&main), Some(&1));
    // ogr moves to PR 1: its main build is no longer used by anything.
    sb.json(&["deploy", "--env", "staging", "--release", "ogr=1"]);
    let first_cycle = sb.history().last().expect("a cycle")["id"].clone();

    let r = sb.json(&["gc"]);
    let removed: Vec<&str> = r["builds"]
        .as_array()
        .expect("builds")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    let prefix: String = main.chars().take(16).collect();
    assert_eq!(removed.len(), 1, "only ogr's main build goes: {r:#}");
    assert!(removed[0].starts_with(&format!("ogr/{prefix}-")), "{r:#}");
    assert!(r["bytes_freed"].as_u64().expect("freed") > 0);
    assert!(r["disk"]["builds"].as_u64().expect("disk") > 0);
    // Everything still runs and answers; what runs is still described.
    let st = sb.assert_serving("staging");
    assert_eq!(
        Sandbox::component(&st, "ogr")["commit"],
        sb.rev("ogr", "refs/pull/1/head")
    );
    // The first cycle deployed packit-service and dashboard, which still run
    // from it: it stays. Nothing else is left to remove.
    assert!(sb.history().iter().any(|c| c["id"] == first_cycle));
    let again = sb.json(&["gc"]);
    assert_eq!(again["builds"].as_array().map(Vec::len), Some(0), "{again:#}");
    assert_eq!(again["database"]["cycles"], 0, "{again:#}");

    // Going back to main builds it again: the cache entry is really gone.
    sb.json(&["deploy", "--env", "staging", "--release", "ogr=branch:main"]);
    assert_eq!(sb.builds("ogr").get(&main), Some(&2));
    sb.assert_serving("staging");
}

#[test]
fn suites_run_by_impact_and_a_blocking_failure_fails_the_cycle() {
    let suites = r#"
[[suite]]
name = "smoke"
run = 'test -n "$GREENROOM_URL_OGR" && test -f "$GREENROOM_MANIFEST" && echo "smoke on $GREENROOM_ENV cycle $GREENROOM_CYCLE"'

[[suite]]
name = "docs"
tier = "non-blocking"
paths = ["docs/**"]
run = "true"

[[suite]]
name = "nightly"
tier = "gate"
cycles = ["full"]
run = "true"

[[suite]]
name = "breaker"
cycles = ["partial"]
paths = ["FAIL_ME"]
run = "echo 'the API answered 500 for a stale runner'; exit 3"
"#;
    let sb = Sandbox::with(
        45,
        common::Options {
            extra: suites.into(),
            ..Default::default()
        },
    );
    let by_name = |r: &serde_json::Value, name: &str| -> serde_json::Value {
        r["suites"]
            .as_array()
            .expect("suites")
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no suite {name}: {r:#}"))
    };
    // A partial cycle: suites without paths run; path-selected and full-only ones are skipped, with reasons.
    let r = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(r["result"], "succeeded", "{r:#}");
    assert_eq!(by_name(&r, "smoke")["result"], "passed");
    let docs = by_name(&r, "docs");
    assert_eq!(docs["result"], "skipped");
    assert!(!docs["reason"].as_str().expect("reason").is_empty());
    let nightly = by_name(&r, "nightly");
    assert_eq!(nightly["result"], "skipped");
    assert!(
        nightly["reason"].as_str().expect("reason").contains("full"),
        "{nightly}"
    );
    assert_eq!(by_name(&r, "breaker")["result"], "skipped");
    let log = std::fs::read_to_string(by_name(&r, "smoke")["log"].as_str().expect("log")).expect("smoke log");
    assert!(log.contains("smoke on solo cycle"), "{log}");

    // A change to FAIL_ME selects the breaker, whose failure fails the cycle.
    let ogr = sb.repo("ogr");
    common::git(&ogr, &["checkout", "-q", "-b", "failme"]);
    std::fs::write(ogr.join("FAIL_ME"), "x\n").expect("write");
    common::git(&ogr, &["add", "FAIL_ME"]);
    common::git(&ogr, &["commit", "-q", "-m", "touch FAIL_ME"]);
    common::git(&ogr, &["checkout", "-q", "main"]);
    let out = sb
        .run(&["--json", "deploy", "--env", "solo", "--release", "ogr=branch:failme"])
        .expect(1);
    let r = out.json();
    assert_eq!(r["result"], "failed", "{r:#}");
    let breaker = by_name(&r, "breaker");
    assert_eq!(breaker["result"], "failed");
    assert!(
        breaker["reason"].as_str().expect("reason").contains("FAIL_ME"),
        "{breaker}"
    );
    let err = r["error"].as_str().expect("error");
    assert!(
        err.contains("blocking suite `breaker` failed") && err.contains("answered 500"),
        "{err}"
    );
    assert_eq!(by_name(&r, "docs")["result"], "skipped");

    // A full cycle runs every suite of the full cycles, whatever changed.
    let r = sb.json(&["deploy", "--env", "solo", "--release", "--full"]);
    assert_eq!(r["result"], "succeeded", "{r:#}");
    for name in ["smoke", "docs", "nightly"] {
        let s = by_name(&r, name);
        assert_eq!(s["result"], "passed", "{s}");
    }
    assert!(
        by_name(&r, "docs")["reason"]
            .as_str()
            .expect("reason")
            .contains("full cycle")
    );
    assert_eq!(by_name(&r, "breaker")["result"], "skipped", "partial-only");
    // Each suite is a recorded stage of the cycle.
    let human = sb.ok(&["history", "--env", "solo"]).stdout;
    assert!(human.contains("failed"), "{human}");
}

#[test]
fn the_database_can_live_elsewhere_and_a_bad_one_is_named() {
    let sb = Sandbox::with(
        46,
        common::Options {
            extra: "\n[server]\ndatabase = \"sqlite:elsewhere/greenroom.db\"\n".into(),
            ..Default::default()
        },
    );
    let r = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(r["result"], "succeeded", "{r:#}");
    assert!(
        sb.root.join("elsewhere/greenroom.db").exists(),
        "the configured file holds the state"
    );
    assert!(!sb.state.join("state.db").exists(), "not the default one");
    assert_eq!(sb.history().len(), 1);
    sb.ok(&["stop", "--env", "solo"]);

    // A PostgreSQL URL from the environment that nothing answers: a clear
    // error naming the database, never its password.
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replace("sqlite:elsewhere/greenroom.db", "env:GREENROOM_E2E_DB");
    sb.write_config(&text);
    let mut sb = sb;
    sb.env.push((
        "GREENROOM_E2E_DB".into(),
        "postgres://greenroom:s3cret-pw@127.0.0.1:1/greenroom?connect_timeout=2".into(),
    ));
    let out = sb.run(&["status"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("127.0.0.1"), "{}", out.stderr);
    assert!(!out.stderr.contains("s3cret-pw"), "{}", out.stderr);
}

#[test]
fn a_monorepo_component_whose_paths_did_not_change_is_not_rebuilt() {
    // Two components from one repository: ogr owns the top-level files,
    // ogr-worker owns worker/**. A file neither claims rebuilds both.
    let sb = Sandbox::new(50);
    let worker = format!(
        "\n[[component]]\nname = \"ogr-worker\"\nrepo = \"repos/ogr\"\nchannels = {{ stg = \"main\" }}\n\
         build = {build}\nrun = {run}\nhealth = \"http://127.0.0.1:{{port}}/healthz\"\n\
         paths = [\"worker/**\"]\n",
        build = common::toml_str(&sb.build_command("ogr-worker")),
        run = common::toml_str(&format!("{} sample-service", common::sh_quote(common::EXE))),
    );
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replace(
            "name = \"solo\"\ncomponents = [\"ogr\"]\n",
            "name = \"solo\"\ncomponents = [\"ogr\", \"ogr-worker\"]\n",
        )
        .replacen(
            "depends_on = []\n",
            "depends_on = []\npaths = [\"README.md\", \"VERSION\", \"src/**\"]\n",
            1,
        );
    sb.write_config(&format!("{text}{worker}"));
    let first = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(first["result"], "succeeded", "{first:#}");
    let v1 = sb.rev("ogr", "main");

    // A change under worker/ only: the worker is rebuilt, ogr keeps running v1.
    let ogr = sb.repo("ogr");
    std::fs::create_dir_all(ogr.join("worker")).expect("mkdir");
    std::fs::write(ogr.join("worker/job.txt"), "poll every minute\n").expect("write");
    common::git(&ogr, &["add", "-A"]);
    common::git(&ogr, &["commit", "-q", "-m", "worker: poll every minute"]);
    let v2 = sb.rev("ogr", "main");
    let plan = sb.json(&["deploy", "--env", "solo", "--dry-run"]);
    assert_eq!(by_name(&plan, "ogr")["action"], "keep", "{plan:#}");
    let r = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(r["result"], "succeeded", "{r:#}");
    let kept = by_name(&r, "ogr");
    assert_eq!(kept["action"], "keep", "{r:#}");
    assert_eq!(
        kept["commit"].as_str(),
        Some(v1.as_str()),
        "ogr records what really runs"
    );
    let why = kept["why"].as_str().expect("a reason for the skipped rebuild");
    assert!(why.contains("not rebuilt") && why.contains("README.md"), "{why}");
    assert_eq!(by_name(&r, "ogr-worker")["action"], "deploy");
    assert_eq!(by_name(&r, "ogr-worker")["commit"].as_str(), Some(v2.as_str()));
    assert_eq!(sb.builds("ogr").get(&v2), None, "ogr was rebuilt at {v2}");
    assert_eq!(sb.builds("ogr-worker").get(&v2), Some(&1));

    // Nothing changed since: the same manifest, nothing redeployed.
    let again = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(again["manifest"], r["manifest"], "{again:#}");

    // A file no component claims: fail safe, both are rebuilt.
    std::fs::write(ogr.join("NOTES"), "unclaimed\n").expect("write");
    common::git(&ogr, &["add", "-A"]);
    common::git(&ogr, &["commit", "-q", "-m", "notes"]);
    let v3 = sb.rev("ogr", "main");
    let r = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(r["result"], "succeeded", "{r:#}");
    for c in ["ogr", "ogr-worker"] {
        assert_eq!(by_name(&r, c)["action"], "deploy", "{c}: {r:#}");
        assert_eq!(by_name(&r, c)["commit"].as_str(), Some(v3.as_str()));
    }
    sb.ok(&["stop", "--env", "solo"]);
}

#[test]
fn every_suite_leaves_a_versioned_junit_report() {
    let suites = r#"
[[suite]]
name = "smoke"
run = "true"

[[suite]]
name = "pytest"
tier = "non-blocking"
run = '''
cat > "$GREENROOM_JUNIT_DIR/report.xml" <<'XML'
<testsuites><testsuite name="api" tests="2">
<testcase classname="runners" name="register[instance_type-fresh]" time="0.1"/>
<testcase classname="runners" name="register[group_type-stale]" time="0.2"><failure message="500 != 201">ForeignKeyViolation</failure></testcase>
</testsuite></testsuites>
XML
exit 1
'''

[[suite]]
name = "docs"
paths = ["docs/**"]
run = "true"
"#;
    let sb = Sandbox::with(
        60,
        common::Options {
            extra: suites.into(),
            ..Default::default()
        },
    );
    let r = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(r["result"], "succeeded", "a non-blocking failure fails nothing: {r:#}");
    let manifest = r["manifest"].as_str().expect("manifest");
    let suite = |r: &serde_json::Value, name: &str| -> serde_json::Value {
        r["suites"]
            .as_array()
            .expect("suites")
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no suite {name}: {r:#}"))
    };
    let commit = format!("commit {}", sb.rev("ogr", "main"));
    let read = |p: &serde_json::Value| {
        let path = p.as_str().unwrap_or_else(|| panic!("no report path: {r:#}"));
        greenroom_core::junit::parse(&std::fs::read_to_string(path).expect("report")).expect("valid JUnit")
    };
    let prop = |s: &greenroom_core::junit::TestSuite, k: &str| {
        s.properties
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no property {k}: {s:?}"))
    };
    // The suite's own cases, merged, with the versions tested.
    let pytest = suite(&r, "pytest");
    assert_eq!(pytest["result"], "failed");
    assert_eq!(
        (pytest["tests"].as_u64(), pytest["failed_tests"].as_u64()),
        (Some(2), Some(1))
    );
    let own = read(&pytest["junit"]);
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].cases.len(), 2);
    assert_eq!(prop(&own[0], "greenroom.manifest"), manifest);
    assert_eq!(prop(&own[0], "greenroom.version.ogr"), commit);
    assert_eq!(prop(&own[0], "greenroom.environment"), "solo");
    // A suite without a report of its own is one case.
    let smoke = read(&suite(&r, "smoke")["junit"]);
    assert_eq!(smoke[0].cases.len(), 1);
    assert_eq!(smoke[0].cases[0].outcome, greenroom_core::junit::Outcome::Passed);
    // The cycle's summary: every suite, the skipped one as skipped.
    let all = read(&r["junit"]);
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["smoke", "pytest", "docs"]);
    assert_eq!(all[2].skipped(), 1);
    assert!(all.iter().all(|s| prop(s, "greenroom.manifest") == manifest));
    // Every report is what CI servers read.
    for p in [&r["junit"], &suite(&r, "pytest")["junit"], &suite(&r, "smoke")["junit"]] {
        common::assert_valid_junit(std::path::Path::new(p.as_str().expect("path")));
    }
    sb.ok(&["stop", "--env", "solo"]);
}

/// A greenroom killed after starting a component and before recording it
/// leaves the process running on the component's port, known only by the
/// supervisor's pid file. The next deploy stops that leftover first, so the
/// new component (not the old code) answers. A port held by a process
/// greenroom knows nothing of fails the deploy with the port named.
#[test]
fn a_leftover_of_an_interrupted_start_is_stopped_and_a_foreign_port_holder_is_named() {
    let sb = Sandbox::new(73);
    let base = sb.json(&["--as", "alice", "deploy", "--env", "staging"]);
    assert_eq!(base["result"], "succeeded", "{base:#}");
    let st = sb.status("staging");
    let ogr = Sandbox::component(&st, "ogr");
    let port = ogr["port"].as_u64().expect("port") as u16;
    let pid_file = sb.state.join("run/staging/ogr.pid");
    assert!(pid_file.is_file(), "the supervisor wrote {}", pid_file.display());
    sb.ok(&["--as", "alice", "stop", "--env", "staging"]);
    assert!(!listening(port));

    // What an interrupted start leaves: a supervised process on ogr's port,
    // named by the pid file, recorded nowhere.
    let log = sb.root.join("out/orphan.log");
    let started = std::process::Command::new(env!("CARGO_BIN_EXE_greenroom"))
        .args(["__supervise", "--detach", "--log"])
        .arg(&log)
        .arg("--pidfile")
        .arg(&pid_file)
        .arg("--")
        .arg(format!("exec python3 -m http.server {port} --bind 127.0.0.1"))
        .output()
        .expect("start the orphan");
    assert!(started.status.success(), "{started:?}");
    let orphan: Value = serde_json::from_slice(&started.stdout).expect("the supervisor's report");
    let orphan_pid = orphan["pid"].as_i64().expect("pid") as i32;
    common::wait_until("the orphan listens", || listening(port).then_some(()));

    let again = sb.json(&["--as", "alice", "deploy", "--env", "staging"]);
    assert_eq!(again["result"], "succeeded", "{again:#}");
    assert!(!common::alive(orphan_pid), "the leftover was stopped");
    let st = sb.assert_serving("staging");
    let ogr = Sandbox::component(&st, "ogr");
    assert_eq!(ogr["port"].as_u64(), Some(u64::from(port)));
    let served = get_json(ogr["url"].as_str().expect("url"));
    assert_eq!(
        served["commit"],
        sb.rev("ogr", "main"),
        "ogr itself answers, not the leftover"
    );

    // A process greenroom never started, on the same port.
    sb.ok(&["--as", "alice", "stop", "--env", "staging"]);
    let mut foreign = std::process::Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3");
    common::wait_until("the foreign server listens", || listening(port).then_some(()));
    let refused = sb.run(&["--as", "alice", "deploy", "--env", "staging"]);
    let _ = foreign.kill();
    let _ = foreign.wait();
    assert_ne!(refused.code, 0, "{}", refused.all());
    let text = refused.all();
    assert!(
        text.contains(&format!("port {port} of ogr")) && text.contains("did not record"),
        "{text}"
    );
}
