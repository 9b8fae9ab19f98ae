//! End to end: every bad input of a composition is answered with its
//! message and exit status 2, and changes nothing — not the database (cycles,
//! what is deployed, leases), not the run, cycle, build or log directories,
//! not what runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Sandbox;
use serde_json::Value;

type Snapshot = (Value, Vec<Value>, Vec<String>, Vec<String>, Vec<String>, Vec<String>);

/// What a bad request must not change: status (leases, what runs), history,
/// and the run, cycle, build and log directories.
fn snapshot(sb: &Sandbox) -> Snapshot {
    (
        sb.json(&["status"]),
        sb.history(),
        sb.tree("run"),
        sb.tree("cycles"),
        sb.tree("builds"),
        sb.tree("logs"),
    )
}

/// Runs each bad request as bob and checks its message, exit status 2, and that nothing changed.
fn check_cases(sb: &Sandbox, cases: &[(Vec<&str>, Vec<String>)], before: &Snapshot) {
    for (args, needles) in cases {
        let mut full = vec!["--as", "bob", "deploy"];
        if !args.contains(&"--env") {
            full.extend(["--env", "staging"]);
        }
        full.extend(args.iter().copied());
        let out = sb.run(&full);
        assert_eq!(out.code, 2, "{args:?}: exit status\n{}", out.all());
        for n in needles {
            assert!(
                out.stderr.contains(n.as_str()),
                "{args:?}: stderr lacks {n:?}:\n{}",
                out.stderr
            );
        }
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        let after = snapshot(sb);
        assert_eq!(after.0, before.0, "{args:?} changed the status");
        assert_eq!(after.1, before.1, "{args:?} changed the history");
        assert_eq!(after.2, before.2, "{args:?} created run directories");
        assert_eq!(after.3, before.3, "{args:?} created cycle directories");
        assert_eq!(after.4, before.4, "{args:?} built something");
        assert_eq!(after.5, before.5, "{args:?} wrote logs");
    }
}

#[test]
fn bad_inputs_are_refused_and_change_nothing() {
    let sb = Sandbox::new(20);
    let repo = |name: &str| sb.repo(name).display().to_string();
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (vec!["nope=1"], vec!["unknown component `nope`".into()]),
        (vec!["--only", "nope"], vec!["unknown component `nope`".into()]),
        (
            vec!["--env", "solo", "dashboard=1"],
            vec!["component `dashboard` is not part of environment `solo`".into()],
        ),
        (vec!["--env", "nowhere"], vec!["unknown environment `nowhere`".into()]),
        (
            vec!["ogr=branch:a..b"],
            vec!["`a..b` is not a valid branch name".into()],
        ),
        (vec!["ogr=sha:12"], vec!["`12` is not a commit".into()]),
        (vec!["x="], vec!["`x=`: expected COMPONENT=REF".into()]),
        (
            vec!["ogr=99"],
            vec!["pull request #99 does not exist".into(), repo("ogr")],
        ),
        (
            vec!["packit-service=branch:nope"],
            vec!["branch `nope` does not exist".into(), repo("packit-service")],
        ),
        (
            vec!["dashboard=tag:v9.9.9"],
            vec!["tag `v9.9.9` does not exist".into(), repo("dashboard")],
        ),
        (
            vec!["ogr=sha:1234567"],
            vec!["commit `1234567` not found".into(), repo("ogr")],
        ),
    ];

    // Twice: with staging free (a bad request must not take the lease), then
    // held by alice (a bad request is refused as bad, not as busy).
    for phase in ["free", "held"] {
        let keep = if phase == "free" { "--release" } else { "--reason=held" };
        sb.json(&["--as", "alice", "deploy", "--env", "staging", keep, "ogr=1"]);
        let before = snapshot(&sb);
        let staging = before
            .0
            .as_array()
            .expect("status list")
            .iter()
            .find(|e| e["environment"] == "staging")
            .expect("staging");
        assert_eq!(staging["lease"].is_null(), phase == "free", "{staging:#}");
        check_cases(&sb, &cases, &before);
    }

    // Several errors at once are all reported.
    let out = sb
        .run(&["--as", "bob", "deploy", "--env", "staging", "ogr=sha:12", "x="])
        .expect(2);
    assert!(
        out.stderr.contains("`12` is not a commit") && out.stderr.contains("`x=`"),
        "{}",
        out.stderr
    );
    // bob never took the lease: alice still holds it, and what runs is what she deployed.
    let st = sb.assert_serving("staging");
    assert_eq!(st["lease"]["holder"], "alice");
    assert_eq!(
        Sandbox::component(&st, "ogr")["commit"],
        sb.rev("ogr", "refs/pull/1/head")
    );
}

#[test]
fn an_invalid_config_is_refused_with_file_line_and_key() {
    let sb = Sandbox::empty(21);
    let state = common::toml_str(&sb.state.display().to_string());
    sb.write_config(&format!(
        "state_dir = {state}\nport_base = {}\n\n[[component]]\nname = \"ogr\"\nbulid = \"make\"\n\n\
         [[environment]]\nname = \"staging\"\n",
        sb.port_base
    ));
    let file = sb.config.display().to_string();
    for args in [
        &["check-config"][..],
        &["--as", "alice", "deploy", "--env", "staging"],
        &["status"],
    ] {
        let out = sb.run(args).expect(2);
        assert!(
            out.stderr
                .contains(&format!("{file}:6:1: bulid: unknown field `bulid`")),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("6 | bulid = \"make\""),
            "the line is quoted: {}",
            out.stderr
        );
    }
    assert!(!sb.state.exists(), "nothing was created for an invalid config");
}
