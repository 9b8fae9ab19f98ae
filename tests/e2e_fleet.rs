//! Fleets (issue #5 point 2): an environment of 4 process instances rolls
//! out blessed (t1), then the canary (t2), then batches of 2 (t3, t4). A
//! target made unhealthy (the sample service answers 503 on /healthz when
//! the checkout's `BROKEN_TARGET` names its `GREENROOM_TARGET`) halts the
//! rollout: earlier waves run the new commit, the failing target is
//! stopped, later waves are never started and still run (and serve) the
//! old commit — in the cycle report, `status --json` and over HTTP. A
//! failure inside a batch lets the batch finish; a fix rolls out
//! everywhere, and `stop` stops every target.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;

const FLEET: &str =
    "\n[[environment]]\nname = \"fleet\"\ncomponents = [\"ogr\"]\ninstances = 4\ncanary = [\"t2\"]\nbatch = 2\n";

fn commit(sb: &Sandbox, broken_target: Option<&str>, msg: &str) -> String {
    let ogr = sb.repo("ogr");
    let path = ogr.join("BROKEN_TARGET");
    match broken_target {
        Some(t) => std::fs::write(&path, format!("{t}\n")).expect("write"),
        None => {
            let _ = std::fs::remove_file(&path);
        }
    }
    git(&ogr, &["add", "-A"]);
    git(&ogr, &["commit", "-q", "--allow-empty", "-m", msg]);
    sb.rev("ogr", "main")
}

/// Per target of `ogr` in a report or a status: (outcome or state, commit).
fn targets(component: &Value, what: &str) -> Vec<(String, String, Option<String>)> {
    component["targets"]
        .as_array()
        .unwrap_or_else(|| panic!("no targets: {component:#}"))
        .iter()
        .map(|t| {
            (
                t["target"].as_str().unwrap().to_string(),
                t[what].as_str().unwrap().to_string(),
                t["commit"].as_str().map(String::from),
            )
        })
        .collect()
}

fn ogr(report: &Value) -> &Value {
    report["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "ogr"))
        .unwrap_or_else(|| panic!("no ogr: {report:#}"))
}

/// What each target serves on `GET /` (its commit), by the status' URLs.
fn served(sb: &Sandbox) -> Vec<Option<String>> {
    let st = sb.status("fleet");
    Sandbox::component(&st, "ogr")["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            let url = t["url"].as_str()?;
            let (code, body) = http_get(url)?;
            (code == 200).then(|| serde_json::from_str::<Value>(&body).ok())??["commit"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn a_failing_canary_halts_the_rollout_and_every_target_says_what_it_runs() {
    let sb = Sandbox::with(
        67,
        Options {
            health_timeout: "3s",
            extra: FLEET.to_string(),
        },
    );
    let c1 = sb.rev("ogr", "main");
    let first = sb.json(&["deploy", "--env", "fleet"]);
    assert_eq!(first["result"], "succeeded", "{first:#}");
    let all_c1: Vec<_> = ["t1", "t2", "t3", "t4"]
        .iter()
        .zip(["blessed", "canary", "batch 1", "batch 1"])
        .map(|(t, _)| (s(t), s("running"), Some(c1.clone())))
        .collect();
    assert_eq!(targets(ogr(&first), "outcome"), all_c1, "{first:#}");
    let waves: Vec<&str> = ogr(&first)["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["wave"].as_str().unwrap())
        .collect();
    assert_eq!(waves, ["blessed", "canary", "batch 1", "batch 1"]);
    // Four copies, each on its own port, each serving.
    let st = sb.status("fleet");
    let ports: std::collections::BTreeSet<u64> = Sandbox::component(&st, "ogr")["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["port"].as_u64().expect("port"))
        .collect();
    assert_eq!(ports.len(), 4, "{st:#}");
    assert_eq!(served(&sb), vec![Some(c1.clone()); 4]);
    assert_eq!(
        Sandbox::component(&st, "ogr")["commit"],
        c1.as_str(),
        "the blessed target is the component's line"
    );

    // The canary (second wave) fails: the blessed target runs the new
    // commit, the canary is stopped, the batch never starts.
    let c2 = commit(&sb, Some("t2"), "break the canary");
    let out = sb.run(&["--json", "deploy", "--env", "fleet"]);
    let failed = out.expect(1).json();
    assert_eq!(failed["result"], "failed", "{failed:#}");
    let err = failed["error"].as_str().unwrap();
    assert!(err.contains("halted at canary"), "{err}");
    assert!(err.contains("target t2"), "{err}");
    assert!(err.contains("not reached (still run what they ran): t3, t4"), "{err}");
    assert_eq!(ogr(&failed)["outcome"], "failed");
    assert_eq!(
        targets(ogr(&failed), "outcome"),
        [
            (s("t1"), s("running"), Some(c2.clone())),
            (s("t2"), s("failed"), None),
            (s("t3"), s("not-reached"), Some(c1.clone())),
            (s("t4"), s("not-reached"), Some(c1.clone())),
        ],
        "{failed:#}"
    );
    assert_eq!(failed["failure"]["stage"], "health", "{failed:#}");
    let st = sb.status("fleet");
    assert!(
        st["manifest"].is_null(),
        "a mixed fleet runs no single manifest: {st:#}"
    );
    assert_eq!(
        targets(Sandbox::component(&st, "ogr"), "state"),
        [
            (s("t1"), s("running"), Some(c2.clone())),
            (s("t2"), s("failed"), Some(c2.clone())),
            (s("t3"), s("running"), Some(c1.clone())),
            (s("t4"), s("running"), Some(c1.clone())),
        ],
        "{st:#}"
    );
    assert_eq!(
        served(&sb),
        [Some(c2.clone()), None, Some(c1.clone()), Some(c1.clone())]
    );

    // A failure inside a batch: the batch finishes (t3 gets it), t4 fails.
    let c3 = commit(&sb, Some("t4"), "break t4 instead");
    let failed = sb.run(&["--json", "deploy", "--env", "fleet"]).expect(1).json();
    assert!(
        failed["error"].as_str().unwrap().contains("halted at batch 1"),
        "{failed:#}"
    );
    assert_eq!(
        targets(ogr(&failed), "outcome"),
        [
            (s("t1"), s("running"), Some(c3.clone())),
            (s("t2"), s("running"), Some(c3.clone())),
            (s("t3"), s("running"), Some(c3.clone())),
            (s("t4"), s("failed"), None),
        ],
        "{failed:#}"
    );

    // Fixed: every target runs it; the ones already running it are kept.
    let c4 = commit(&sb, None, "fixed");
    let ok = sb.json(&["deploy", "--env", "fleet"]);
    assert_eq!(ok["result"], "succeeded", "{ok:#}");
    assert_eq!(
        targets(ogr(&ok), "outcome"),
        ["t1", "t2", "t3", "t4"].map(|t| (s(t), s("running"), Some(c4.clone()))),
    );
    assert_eq!(served(&sb), vec![Some(c4.clone()); 4]);
    let st = sb.status("fleet");
    assert_eq!(st["manifest"], ok["manifest"], "{st:#}");

    // The same manifest again: nothing to do anywhere.
    let again = sb.json(&["deploy", "--env", "fleet", "--release"]);
    assert_eq!(ogr(&again)["action"], "keep", "{again:#}");
    assert!(
        targets(ogr(&again), "outcome").iter().all(|(_, o, _)| o == "kept"),
        "{again:#}"
    );

    // A smaller fleet: the targets that left it stop what they ran.
    let st = sb.status("fleet");
    let dropped: Vec<String> = Sandbox::component(&st, "ogr")["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| t["target"] == "t3" || t["target"] == "t4")
        .map(|t| t["url"].as_str().expect("url").to_string())
        .collect();
    assert_eq!(dropped.len(), 2, "{st:#}");
    let text = std::fs::read_to_string(&sb.config).expect("config");
    sb.write_config(&text.replace("instances = 4\n", "instances = 2\n"));
    let smaller = sb.json(&["deploy", "--env", "fleet", "--release"]);
    assert_eq!(smaller["result"], "succeeded", "{smaller:#}");
    for url in &dropped {
        assert!(
            http_get(url).is_none(),
            "{url} still answers after its target left the fleet"
        );
    }
    assert_eq!(served(&sb), vec![Some(c4.clone()); 2]);

    sb.ok(&["stop", "--env", "fleet"]);
    let st = sb.status("fleet");
    assert!(
        targets(Sandbox::component(&st, "ogr"), "state")
            .iter()
            .all(|(_, state, _)| state == "stopped"),
        "{st:#}"
    );
    assert_eq!(served(&sb), vec![None; 2]);
    assert!(
        common::procs_under(&sb.state).is_empty(),
        "processes left: {:?}",
        common::procs_under(&sb.state)
    );
}
