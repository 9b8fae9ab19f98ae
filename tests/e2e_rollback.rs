//! Rollback through the schedule (issue #5 point 4): a manifest rolled back
//! as faulty is never brought back by `greenroom serve`, even after the
//! environment is resumed and the channel still points at it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pending::*;
use common::*;

#[test]
fn the_schedule_never_redeploys_a_manifest_rolled_back_as_faulty() {
    let index = 59;
    let sb = pending_sandbox(index, &["ogr", "packit-service", "dashboard"], "");
    // staging follows its channel here, not the pending set.
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replacen("follows = \"pending\"\n", "", 1);
    sb.write_config(&text);
    let good = sb.json(&["--as", "alice", "deploy", "--env", "staging", "--release"]);
    assert_eq!(good["result"], "succeeded", "{good:#}");
    let ogr = sb.repo("ogr");
    std::fs::write(ogr.join("API_BUG"), "a bad release\n").expect("write");
    git(&ogr, &["add", "API_BUG"]);
    git(&ogr, &["commit", "-q", "-m", "a bad release"]);
    let bad = sb.json(&["--as", "alice", "deploy", "--env", "staging", "--release"]);
    assert_eq!(bad["result"], "succeeded", "{bad:#}");
    let r = sb.json(&[
        "--as",
        "bob",
        "rollback",
        "--env",
        "staging",
        "--reason",
        "500s on /api/check",
    ]);
    assert_eq!(r["manifest"], good["manifest"], "{r:#}");
    sb.ok(&["--as", "bob", "resume", "--env", "staging"]);

    // The server's first cycle resolves the channel: the faulty manifest. Refused.
    let server = serve(&sb, index);
    let refused = wait_until("the refusal", || {
        decisions(index).into_iter().find(|d| d.starts_with("faulty:"))
    });
    assert!(
        refused.contains("rolled back") && refused.contains("bob") && refused.contains("500s on /api/check"),
        "{refused}"
    );
    assert_eq!(
        sb.status("staging")["manifest"],
        good["manifest"],
        "still the good manifest"
    );
    assert!(
        !sb.history()
            .iter()
            .any(|c| c["manifest"] == bad["manifest"]
                && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled"))),
        "no scheduled cycle deployed the faulty manifest"
    );
    server.kill9();
    sb.ok(&["stop", "--env", "staging"]);
}

#[test]
fn a_blocking_verify_failure_rolls_back_by_itself_when_asked() {
    let sb = Sandbox::with(
        72,
        Options {
            extra: "\n[[suite]]\nname = \"api\"\nrun = 'curl -fsS \"${GREENROOM_URL_OGR%/}/api/check\"'\n".into(),
            ..Options::default()
        },
    );
    let text = std::fs::read_to_string(&sb.config).expect("config").replacen(
        "name = \"solo\"\ncomponents = [\"ogr\"]\n",
        "name = \"solo\"\ncomponents = [\"ogr\"]\nauto_rollback = true\n",
        1,
    );
    sb.write_config(&text);
    let good = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(good["result"], "succeeded", "{good:#}");
    let ogr = sb.repo("ogr");
    std::fs::write(ogr.join("API_BUG"), "a foreign key goes missing\n").expect("write");
    git(&ogr, &["add", "API_BUG"]);
    git(&ogr, &["commit", "-q", "-m", "a bad change"]);
    let bad = sb
        .run(&["--json", "deploy", "--env", "solo", "--release"])
        .expect(1)
        .json();
    assert_eq!(bad["result"], "failed", "{bad:#}");
    let auto = &bad["auto_rollback"];
    assert_eq!(auto["result"], "succeeded", "{bad:#}");
    assert!(auto["detail"].as_str().is_some_and(|d| d.contains("locked")), "{auto}");
    let st = sb.status("solo");
    assert_eq!(st["manifest"], good["manifest"], "the good manifest runs again");
    assert_eq!(st["paused"]["paused"], true, "continuous deployment locked");
    let audit = sb.json(&["audit", "--env", "solo", "--limit", "3"]);
    let rb = audit
        .as_array()
        .expect("rows")
        .iter()
        .find(|a| a["action"] == "rollback")
        .cloned()
        .unwrap_or_else(|| panic!("no rollback in {audit:#}"));
    assert!(
        rb["reason"]
            .as_str()
            .is_some_and(|r| r.contains("automatic: blocking suite `api` failed")),
        "{rb}"
    );
    sb.ok(&["stop", "--env", "solo"]);
}
