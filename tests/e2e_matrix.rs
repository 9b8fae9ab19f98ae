//! API scenario matrices (issue #6 point 3, seed 004), end to end: the quick
//! start's `runner-matrix` (made blocking) against the real sample service
//! on the `solo` environment. It must catch the defect planted for exactly
//! one combination (a stale group runner's verify answers 500), keep the
//! full request and response in the JUnit report, and pass once the fix is
//! committed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Options, Sandbox, git};
use greenroom_core::junit::{self, Outcome};
use serde_json::Value;
use std::time::Instant;

fn blocking_matrix() -> String {
    let m = greenroom::quickstart::RUNNER_MATRIX.replace("tier = \"non-blocking\"", "tier = \"blocking\"");
    assert!(m.contains("tier = \"blocking\""), "the example changed: {m}");
    m
}

fn suite<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["suites"]
        .as_array()
        .expect("suites")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no suite {name}: {r:#}"))
}

fn cases(r: &Value) -> Vec<junit::TestCase> {
    let path = suite(r, "runner-matrix")["junit"]
        .as_str()
        .unwrap_or_else(|| panic!("no report: {r:#}"));
    // What CI servers read: the schema, with the full request and response inside.
    common::assert_valid_junit(std::path::Path::new(path));
    let text = std::fs::read_to_string(path).expect("report");
    let suites = junit::parse(&text).expect("valid JUnit");
    assert_eq!(suites.len(), 1);
    suites[0].cases.clone()
}

#[test]
fn the_runner_matrix_catches_the_planted_defect_and_passes_once_fixed() {
    let sb = Sandbox::with(
        62,
        Options {
            extra: blocking_matrix(),
            ..Default::default()
        },
    );
    // The example parses as shipped (and made blocking).
    sb.ok(&["check-config"]);

    let t = Instant::now();
    let out = sb.run(&["--json", "deploy", "--env", "solo", "--release"]).expect(1);
    let took = t.elapsed();
    let r = out.json();
    assert_eq!(r["result"], "failed", "{r:#}");
    let m = suite(&r, "runner-matrix");
    assert_eq!(m["result"], "failed");
    assert_eq!(m["class"], "code", "{m:#}");
    assert_eq!((m["tests"].as_u64(), m["failed_tests"].as_u64()), (Some(24), Some(1)));
    let reason = m["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("1 of 24 failed: group_type/stale verify -> 500"),
        "the reason names the combination: {reason}"
    );
    assert!(reason.contains("ForeignKeyViolation"), "{reason}");
    let error = r["error"].as_str().expect("error");
    assert!(
        error.contains("blocking suite `runner-matrix` failed: 1 of 24 failed: group_type/stale verify"),
        "{error}"
    );

    let cs = cases(&r);
    assert_eq!(cs.len(), 24, "{cs:#?}");
    let failed: Vec<&junit::TestCase> = cs
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let f = failed[0];
    assert_eq!(f.name, "group_type/stale verify");
    assert_eq!(f.classname, "runner-matrix");
    let out = f.system_out.as_deref().expect("the exchange is kept");
    // The full request ...
    assert!(out.contains("> POST http://127.0.0.1:"), "{out}");
    assert!(out.contains("/api/v4/runners/verify"), "{out}");
    assert!(out.contains("> content-type: application/json"), "{out}");
    assert!(out.contains(r#"{"token": "glrt-"#), "{out}");
    // ... and the full response.
    assert!(out.contains("< 500 ("), "{out}");
    assert!(out.contains("< content-type: application/json"), "{out}");
    assert!(
        out.contains("violates foreign key constraint \\\"fk_rails_3f92913d27\\\""),
        "{out}"
    );
    assert!(
        out.contains("runner_type = group_type") && out.contains("age = stale"),
        "{out}"
    );
    // The failed combination's later steps did not run; the other five passed every step.
    for step in ["request-job", "delete"] {
        let c = cs
            .iter()
            .find(|c| c.name == format!("group_type/stale {step}"))
            .expect("case");
        assert!(matches!(c.outcome, Outcome::Skipped { .. }), "{c:?}");
    }
    let passed: Vec<&str> = cs
        .iter()
        .filter(|c| c.outcome == Outcome::Passed)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(passed.len(), 21, "{passed:?}");
    for combo in [
        "instance_type/fresh",
        "instance_type/stale",
        "group_type/fresh",
        "project_type/fresh",
        "project_type/stale",
    ] {
        for step in ["register", "verify", "request-job", "delete"] {
            assert!(
                passed.contains(&format!("{combo} {step}").as_str()),
                "{combo} {step}: {passed:?}"
            );
        }
    }
    assert!(passed.contains(&"group_type/stale register"));
    // The cycle's summary carries the matrix with the versions tested.
    let all =
        junit::parse(&std::fs::read_to_string(r["junit"].as_str().expect("summary")).expect("read")).expect("JUnit");
    let commit = format!("commit {}", sb.rev("ogr", "main"));
    assert!(
        all.iter().any(|s| s.name == "runner-matrix"
            && s.properties
                .iter()
                .any(|(k, v)| k == "greenroom.version.ogr" && *v == commit)),
        "{all:#?}"
    );
    // The suite's log has a line per request.
    let log = std::fs::read_to_string(m["log"].as_str().expect("log")).expect("log");
    assert!(log.contains("group_type/stale verify: POST http://"), "{log}");
    assert!(log.contains("1 of 24 failed"), "{log}");

    // The fix, committed to ogr's main: the matrix passes, the cycle succeeds.
    let repo = sb.repo("ogr");
    std::fs::write(
        repo.join("RUNNER_FK_FIX"),
        "stale group runners get their partition row\n",
    )
    .expect("write");
    git(&repo, &["add", "RUNNER_FK_FIX"]);
    git(&repo, &["commit", "-q", "-m", "fix the runner FK"]);
    let r = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(r["result"], "succeeded", "{r:#}");
    let m = suite(&r, "runner-matrix");
    assert_eq!(m["result"], "passed", "{m:#}");
    assert!(
        m["reason"].as_str().expect("reason").starts_with("24 of 24 passed"),
        "{m:#}"
    );
    let cs = cases(&r);
    assert_eq!(cs.len(), 24);
    assert!(cs.iter().all(|c| c.outcome == Outcome::Passed), "{cs:#?}");
    eprintln!("the failing deploy with its matrix took {took:?}");
    sb.ok(&["stop", "--env", "solo"]);
}

#[test]
fn the_quickstart_config_and_its_matrix_parse() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = greenroom::quickstart::sample_config(std::path::Path::new("/usr/bin/greenroom"), 20_000);
    let path = dir.path().join("greenroom.toml");
    std::fs::write(&path, &cfg).expect("write");
    let c = greenroom_core::config::load(&path).unwrap_or_else(|e| panic!("{e}\n{cfg}"));
    let s = c.suites.iter().find(|s| s.name == "runner-matrix").expect("the matrix");
    assert_eq!(s.tier, greenroom_core::config::Tier::NonBlocking);
    let greenroom_core::config::SuiteKind::HttpMatrix(m) = &s.kind else {
        panic!("not a matrix: {s:?}")
    };
    assert_eq!(greenroom_core::matrix::count(&m.axes), 6);
    let steps: Vec<&str> = m.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, ["register", "verify", "request-job", "delete"]);
}
