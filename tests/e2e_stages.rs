//! The release pipeline (issue #5 point 1): `[[environment.stage]]`s run in
//! order around the deploy — warmup, migrate (with a retry), deploy,
//! an irreversible post-deploy migration, seed, verify — a failed cycle is
//! retried from its failed stage, a stage can wait for an approval, and a
//! rollback past the irreversible stage is refused unless forced.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

const STAGES: &str = r#"
[[environment.stage]]
kind = "warmup"
run = 'echo "warmup $GREENROOM_STAGE_KIND $GREENROOM_TARGET" >> @ROOT@/events'

[[environment.stage]]
kind = "migrate"
run = 'n=$(cat @ROOT@/migrations 2>/dev/null || echo 0); echo $((n+1)) > @ROOT@/migrations; echo "migrate try $((n+1)) ogr:$(curl -fsS "${GREENROOM_URL_OGR%/}/healthz" >/dev/null 2>&1 && echo up || echo down)" >> @ROOT@/events; [ $((n % 2)) -eq 1 ]'
retry = { attempts = 2, backoff = "1s" }

[[environment.stage]]
kind = "deploy"

[[environment.stage]]
name = "drop-old-columns"
kind = "post_migrate"
run = 'echo "post_migrate ogr:$(curl -fsS "${GREENROOM_URL_OGR%/}/healthz" >/dev/null 2>&1 && echo up || echo down)" >> @ROOT@/events'
irreversible = true

[[environment.stage]]
kind = "seed"
run = 'echo seed >> @ROOT@/events; test -e @ROOT@/SEED_OK'

[[environment.stage]]
kind = "verify"
"#;

fn events(sb: &Sandbox) -> Vec<String> {
    std::fs::read_to_string(sb.root.join("events"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn sandbox(index: u16, stages: &str) -> Sandbox {
    let sb = Sandbox::new(index);
    let text = std::fs::read_to_string(&sb.config).expect("config").replace(
        "name = \"solo\"\ncomponents = [\"ogr\"]\n",
        &format!("name = \"solo\"\ncomponents = [\"ogr\"]\n{stages}"),
    );
    sb.write_config(&text.replace("@ROOT@", &sb.root.display().to_string()));
    sb
}

#[test]
fn stages_run_in_order_retry_and_stop_a_rollback_past_the_point_of_no_return() {
    let sb = sandbox(64, STAGES);
    std::fs::write(sb.root.join("SEED_OK"), "").expect("write");
    let first = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(first["result"], "succeeded", "{first:#}");
    assert_eq!(
        events(&sb),
        [
            "warmup warmup solo",
            "migrate try 1 ogr:down",
            "migrate try 2 ogr:down",
            "post_migrate ogr:up",
            "seed"
        ],
        "in order; migrate retried; it runs before the deploy, post_migrate after"
    );

    // A failing seed fails the cycle at that stage; retry runs from it.
    std::fs::remove_file(sb.root.join("SEED_OK")).expect("rm");
    let out = sb.run(&["--json", "deploy", "--env", "solo", "--release", "ogr=1"]);
    let failed = out.expect(1).json();
    assert_eq!(failed["result"], "failed", "{failed:#}");
    let err = failed["error"].as_str().expect("error");
    assert!(err.contains("stage `seed` (seed) failed"), "{err}");
    let cycle = failed["cycle"].as_i64().expect("cycle").to_string();
    std::fs::write(sb.root.join("SEED_OK"), "").expect("write");
    let before = events(&sb).len();
    let retried = sb.json(&["retry", &cycle]);
    assert_eq!(retried["result"], "succeeded", "{retried:#}");
    assert_eq!(retried["manifest"], failed["manifest"], "the same manifest");
    assert_eq!(events(&sb)[before..], ["seed"], "only the failed stage ran again");
    let bad_from = sb.run(&["retry", &cycle, "--from", "nope"]).expect(2);
    assert!(
        bad_from
            .all()
            .contains("warmup, migrate, deploy, drop-old-columns, seed, verify"),
        "{}",
        bad_from.all()
    );

    // drop-old-columns ran since the first manifest: no way back, unless forced.
    let refused = sb.run(&["--as", "bob", "rollback", "--env", "solo"]).expect(2);
    let text = refused.all();
    assert!(
        text.contains("irreversible") && text.contains("drop-old-columns") && text.contains("Roll forward"),
        "{text}"
    );
    let forced = sb.json(&[
        "--as",
        "bob",
        "rollback",
        "--env",
        "solo",
        "--force",
        "--reason",
        "old schema still works",
    ]);
    assert_eq!(forced["result"], "succeeded", "{forced:#}");
    assert_eq!(forced["manifest"], first["manifest"]);
    let audit = sb.json(&["audit", "--env", "solo", "--limit", "1"]);
    let reason = audit[0]["reason"].as_str().expect("reason");
    assert!(reason.contains("forced past the irreversible stage"), "{audit:#}");
    sb.ok(&["stop", "--env", "solo"]);
}

#[test]
fn a_stage_waits_for_an_approval() {
    let stages = r#"
[[environment.stage]]
kind = "migrate"
run = 'echo "migrate by approval" >> @ROOT@/events'
approval = true

[[environment.stage]]
kind = "deploy"
"#;
    let sb = sandbox(65, stages);
    let mut deploy = sb.spawn(&["--json", "deploy", "--env", "solo", "--release"]);
    let cycle = wait_until("the cycle to start", || {
        assert!(
            !deploy.exited(),
            "the deploy ended: {}",
            std::fs::read_to_string(sb.root.join("greenroom.toml")).unwrap_or_default()
        );
        sb.history()
            .into_iter()
            .find(|c| c["result"] == "running")
            .and_then(|c| c["id"].as_i64())
    });
    // Not approved yet: nothing ran. Approving a stage that needs none is refused.
    let wrong = sb.run(&["approve", &cycle.to_string(), "--stage", "deploy"]).expect(2);
    assert!(wrong.all().contains("needs no approval"), "{}", wrong.all());
    let ok = wait_until("the cycle to wait for its approval", || {
        let out = sb.run(&[
            "--as",
            "carol",
            "--json",
            "approve",
            &cycle.to_string(),
            "--reason",
            "backup taken",
        ]);
        (out.code == 0).then(|| out.json())
    });
    assert_eq!(ok["stage"], "migrate", "{ok}");
    assert_eq!(ok["by"], "carol");
    let out = deploy.wait();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(events(&sb), ["migrate by approval"]);
    let audit = sb.json(&["audit", "--env", "solo"]);
    assert!(
        audit
            .as_array()
            .expect("rows")
            .iter()
            .any(|a| a["action"] == "approve" && a["actor"] == "carol" && a["reason"] == "backup taken"),
        "{audit:#}"
    );
    sb.ok(&["stop", "--env", "solo"]);
}
