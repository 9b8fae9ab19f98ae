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
