//! `greenroom simulate`: the real binary replays a generated nine-repository
//! trace against the default policy and the baselines.

use std::process::Command;

fn greenroom(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_greenroom"))
        .args(["--config", "/nonexistent/greenroom.toml"])
        .args(args)
        .output()
        .expect("run greenroom");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn policy_gives_feedback_sooner_than_the_eight_hour_cycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, trace, err) = greenroom(&["simulate", "--generate", "9,14"]);
    assert_eq!(code, 0, "{err}");
    let path = dir.path().join("trace.jsonl");
    std::fs::write(&path, &trace).expect("write trace");
    let (code, out, err) = greenroom(&[
        "--json",
        "simulate",
        "--trace",
        path.to_str().expect("utf-8"),
        "--baseline",
        "every:8h",
    ]);
    assert_eq!(code, 0, "{err}");
    let reports: serde_json::Value = serde_json::from_str(&out).expect("json");
    let reports = reports.as_array().expect("a list of reports");
    assert_eq!(reports.len(), 2);
    let median = |r: &serde_json::Value| r["any_feedback"]["median"].as_i64();
    let (policy, baseline) = (median(&reports[0]), median(&reports[1]));
    assert!(policy.is_some() && baseline.is_some(), "{out}");
    assert!(policy < baseline, "policy {policy:?} vs every 8h {baseline:?}");
}

#[test]
fn a_bad_trace_line_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"at\": \"2026-11-23T10:00:00Z\", \"repo\": \"ogr\", \"kind\": \"push\"}\nnot json\n",
    )
    .expect("write");
    let (code, _, err) = greenroom(&["simulate", "--trace", path.to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(err.contains("line 2"), "{err}");
    let (code, _, err) = greenroom(&[
        "simulate",
        "--trace",
        path.to_str().expect("utf-8"),
        "--baseline",
        "sometimes",
    ]);
    assert_eq!(code, 2, "{err}");
}
