//! End to end: leases — a busy environment, the `--wait` queue, a deploy
//! killed with SIGKILL, `lease -- CMD`, `extend`, `release`, and slots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Sandbox, get_json, git, procs_under, wait_until};
use serde_json::Value;

fn queue(sb: &Sandbox, env: &str) -> Vec<String> {
    sb.status(env)["queue"]
        .as_array()
        .expect("queue")
        .iter()
        .filter_map(|q| q.as_str().map(String::from))
        .collect()
}

#[test]
fn busy_environment_names_holder_reason_and_expiry() {
    let sb = Sandbox::new(10);
    sb.json(&["--as", "alice", "deploy", "--env", "staging", "--release"]);
    let leased = sb.json(&[
        "--as",
        "alice",
        "lease",
        "--env",
        "staging",
        "--reason",
        "debugging #614",
        "--for",
        "1h",
    ]);
    let expires = leased["lease"]["expires"].as_str().expect("expires").to_string();
    assert_eq!(leased["lease"]["holder"], "alice");
    let status_before = sb.assert_serving("staging");
    let history_before = sb.history();

    let t = std::time::Instant::now();
    let out = sb
        .run(&["--as", "bob", "deploy", "--env", "staging", "ogr=1"])
        .expect(3);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "a busy environment is answered at once"
    );
    for needle in ["alice", "debugging #614", &expires, "--wait"] {
        assert!(out.stderr.contains(needle), "stderr lacks {needle:?}: {}", out.stderr);
    }

    // Nothing changed.
    let status_after = sb.assert_serving("staging");
    assert_eq!(status_after, status_before);
    assert_eq!(sb.history(), history_before, "no new cycle");
    assert_eq!(status_after["lease"]["holder"], "alice");
    assert_eq!(status_after["lease"]["reason"], "debugging #614");

    // The holder may deploy under its own lease; it stays hers.
    let mine = sb.json(&["--as", "alice", "deploy", "--env", "staging", "ogr=1"]);
    assert_eq!(mine["result"], "succeeded");
    assert_eq!(mine["lease"]["holder"], "alice");
    assert_eq!(mine["lease"]["reason"], "debugging #614");
    assert_eq!(mine["lease"]["expires"], expires.as_str());
}

#[test]
fn waiting_deploys_are_served_in_order() {
    let sb = Sandbox::new(11);
    sb.ok(&[
        "--as", "alice", "lease", "--env", "staging", "--reason", "hold", "--for", "1h",
    ]);

    let bob = sb.spawn(&[
        "--as",
        "bob",
        "--json",
        "deploy",
        "--env",
        "staging",
        "--wait",
        "--release",
        "ogr=1",
    ]);
    wait_until("bob to be queued", || (queue(&sb, "staging") == ["bob"]).then_some(()));
    let carol = sb.spawn(&[
        "--as",
        "carol",
        "--json",
        "deploy",
        "--env",
        "staging",
        "--wait",
        "--release",
        "ogr=1",
        "packit-service=2",
    ]);
    wait_until("carol to be queued behind bob", || {
        (queue(&sb, "staging") == ["bob", "carol"]).then_some(())
    });
    // Both wait while alice holds.
    assert!(sb.history().is_empty(), "nobody deployed under alice's lease");

    sb.ok(&["--as", "alice", "release", "--env", "staging"]);
    let (b, c) = (bob.wait().expect(0).json(), carol.wait().expect(0).json());
    assert_eq!(b["result"], "succeeded", "{b:#}");
    assert_eq!(c["result"], "succeeded", "{c:#}");
    let (bc, cc) = (b["cycle"].as_i64().expect("cycle"), c["cycle"].as_i64().expect("cycle"));
    assert!(
        bc < cc,
        "bob queued first, so his cycle ({bc}) comes before carol's ({cc})"
    );

    let h = sb.history();
    let who: Vec<(i64, &str)> = h
        .iter()
        .rev()
        .map(|c| (c["id"].as_i64().unwrap_or(0), c["requested_by"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(who, [(bc, "bob"), (cc, "carol")]);
    let st = sb.assert_serving("staging");
    assert!(st["lease"].is_null(), "--release freed it: {st:#}");
    assert!(st["queue"].as_array().expect("queue").is_empty());
    assert_eq!(
        Sandbox::component(&st, "packit-service")["commit"],
        sb.rev("packit-service", "refs/pull/2/head")
    );
}

#[test]
fn a_deploy_killed_mid_way_does_not_lock_the_environment() {
    let sb = Sandbox::new(12);
    // A branch whose build sleeps (the build command sleeps when it sees SLOW).
    let ogr = sb.repo("ogr");
    git(&ogr, &["checkout", "-q", "-b", "slow"]);
    std::fs::write(ogr.join("SLOW"), "the build sleeps\n").expect("write");
    git(&ogr, &["add", "SLOW"]);
    git(&ogr, &["commit", "-q", "-m", "slow build"]);
    git(&ogr, &["checkout", "-q", "main"]);

    sb.json(&["--as", "bob", "deploy", "--env", "staging", "--release"]);
    let deploy = sb.spawn(&["--as", "alice", "deploy", "--env", "staging", "ogr=branch:slow"]);
    let pid = deploy.pid() as i32;
    let running = wait_until("alice's cycle to be running", || {
        sb.history()
            .into_iter()
            .find(|c| c["result"] == "running" && c["requested_by"] == "alice")
    });
    // Wait until the build really runs, so the kill lands mid-way.
    wait_until("the slow build to start", || {
        procs_under(&sb.root)
            .into_iter()
            .find(|p| p.cmdline == "sleep 30" && p.cwd.starts_with(sb.state.join("builds")))
    });
    let lease = sb.status("staging")["lease"].clone();
    assert_eq!(lease["holder"], "alice");
    assert_eq!(lease["pid"], pid, "the lease is bound to the deploying process");

    let killed = deploy.kill9();
    assert_eq!(killed.code, -1, "killed by a signal");
    assert!(!common::alive(pid));

    // Another holder gets the environment at once: the holder's process is gone.
    let t = std::time::Instant::now();
    let out = sb
        .run(&[
            "--as",
            "bob",
            "--json",
            "deploy",
            "--env",
            "staging",
            "packit-service=2",
        ])
        .expect(0);
    assert!(t.elapsed() < std::time::Duration::from_secs(15));
    assert!(
        out.stderr.contains("took over the lease") && out.stderr.contains("alice"),
        "{}",
        out.stderr
    );
    assert_eq!(out.json()["result"], "succeeded");
    let st = sb.assert_serving("staging");
    assert_eq!(st["lease"]["holder"], "bob");
    // ogr still runs what ran before the killed cycle.
    assert_eq!(Sandbox::component(&st, "ogr")["commit"], sb.rev("ogr", "main"));
    assert_eq!(
        Sandbox::component(&st, "packit-service")["commit"],
        sb.rev("packit-service", "refs/pull/2/head")
    );

    let h = sb.history();
    let dead = h.iter().find(|c| c["id"] == running["id"]).expect("the killed cycle");
    assert_eq!(dead["result"], "interrupted", "{dead:#}");
    assert!(dead["finished_at"].is_string());

    // The build's process group outlived the CLI; the test cleans it up.
    let orphans: Vec<_> = procs_under(&sb.state)
        .into_iter()
        .filter(|p| p.cwd.starts_with(sb.state.join("builds")))
        .collect();
    assert!(!orphans.is_empty(), "expected the orphaned build (sleep 30)");
    for p in &orphans {
        assert_ne!(
            p.pgid,
            nix::unistd::getpgrp().as_raw(),
            "the build runs in its own process group"
        );
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p.pgid), nix::sys::signal::Signal::SIGKILL);
    }
    wait_until("the orphaned build to be gone", || {
        procs_under(&sb.state)
            .iter()
            .all(|p| !p.cwd.starts_with(sb.state.join("builds")))
            .then_some(())
    });
}

#[test]
fn lease_command_extend_and_release() {
    let sb = Sandbox::new(13);
    // `lease -- CMD`: held while the command runs, released after, its exit status is ours.
    let seen = sb.root.join("out").join("inside.json");
    let script = format!(
        "{exe} --config {cfg} --json status --env \"$GREENROOM_ENV\" > {seen}; exit 7",
        exe = common::sh_quote(common::EXE),
        cfg = common::sh_quote(&sb.config.display().to_string()),
        seen = common::sh_quote(&seen.display().to_string()),
    );
    let out = sb.run(&["--as", "ci", "lease", "--env", "dev", "--", "sh", "-c", &script]);
    assert_eq!(out.code, 7, "{}", out.all());
    let inside: Value = serde_json::from_str(&std::fs::read_to_string(&seen).expect("the command ran")).expect("json");
    let slot = inside["environment"].as_str().expect("environment").to_string();
    assert!(slot == "dev-1" || slot == "dev-2", "{slot}");
    assert_eq!(
        inside["lease"]["holder"], "ci",
        "held while the command ran: {inside:#}"
    );
    assert!(sb.status(&slot)["lease"].is_null(), "released after the command");

    // By hand: lease, extend, release.
    let l = sb.json(&[
        "--as", "alice", "lease", "--env", "staging", "--reason", "by hand", "--for", "1h",
    ]);
    let e1 = l["lease"]["expires"].as_str().expect("expires").to_string();
    let x = sb.json(&["--as", "alice", "lease", "extend", "--env", "staging", "--for", "3h"]);
    let e2 = x["lease"]["expires"].as_str().expect("expires").to_string();
    assert!(e2 > e1, "extended: {e1} -> {e2}");
    assert_eq!(sb.status("staging")["lease"]["expires"], e2.as_str());
    assert_eq!(
        x["lease"]["token"], l["lease"]["token"],
        "extending keeps the fencing token"
    );

    // Someone else can neither extend nor release it…
    let o = sb
        .run(&["--as", "bob", "lease", "extend", "--env", "staging", "--for", "5h"])
        .expect(3);
    assert!(o.stderr.contains("alice"), "{}", o.stderr);
    let o = sb.run(&["--as", "bob", "release", "--env", "staging"]).expect(3);
    assert!(
        o.stderr.contains("alice") && o.stderr.contains("--force"),
        "{}",
        o.stderr
    );
    let st = sb.status("staging");
    assert_eq!(st["lease"]["holder"], "alice");
    assert_eq!(st["lease"]["expires"], e2.as_str());
    // …unless forced.
    let r = sb.json(&["--as", "bob", "release", "--env", "staging", "--force"]);
    assert_eq!(r["released"]["holder"], "alice");
    assert!(sb.status("staging")["lease"].is_null());
    // Releasing a free environment is not an error.
    let r = sb.json(&["--as", "alice", "release", "--env", "staging"]);
    assert!(r["released"].is_null());
}

#[test]
fn slots_take_any_free_instance_then_report_busy() {
    let sb = Sandbox::new(14);
    let a = sb.json(&["--as", "alice", "deploy", "--env", "dev"]);
    let b = sb.json(&["--as", "bob", "deploy", "--env", "dev", "ogr=1"]);
    let mut got = [
        a["environment"].as_str().expect("env").to_string(),
        b["environment"].as_str().expect("env").to_string(),
    ];
    got.sort();
    assert_eq!(got, ["dev-1", "dev-2"]);
    assert_eq!(a["result"], "succeeded");
    assert_eq!(b["result"], "succeeded");

    // Each slot runs its own processes on its own ports.
    let (sa, sbb) = (
        sb.assert_serving(a["environment"].as_str().unwrap_or("")),
        sb.assert_serving(b["environment"].as_str().unwrap_or("")),
    );
    let url_a = Sandbox::component(&sa, "ogr")["url"].as_str().expect("url").to_string();
    let url_b = Sandbox::component(&sbb, "ogr")["url"]
        .as_str()
        .expect("url")
        .to_string();
    assert_ne!(url_a, url_b);
    assert_eq!(get_json(&url_a)["commit"], sb.rev("ogr", "main"));
    assert_eq!(get_json(&url_b)["commit"], sb.rev("ogr", "refs/pull/1/head"));
    assert_eq!(sa["lease"]["holder"], "alice");
    assert_eq!(sbb["lease"]["holder"], "bob");

    let history = sb.history();
    let out = sb.run(&["--as", "carol", "deploy", "--env", "dev"]).expect(3);
    for needle in ["dev-1", "dev-2", "alice", "bob"] {
        assert!(out.stderr.contains(needle), "stderr lacks {needle}: {}", out.stderr);
    }
    assert_eq!(sb.history(), history);
    // The holder of a slot deploys again into the slot it holds.
    let again = sb.json(&["--as", "bob", "deploy", "--env", "dev", "packit-service=2"]);
    assert_eq!(again["environment"], b["environment"]);
}

#[test]
fn a_cancel_from_another_process_stops_a_slow_build_at_once() {
    let sb = Sandbox::new(37);
    let ogr = sb.repo("ogr");
    git(&ogr, &["checkout", "-q", "-b", "slow"]);
    std::fs::write(ogr.join("SLOW"), "the build sleeps\n").expect("write");
    git(&ogr, &["add", "SLOW"]);
    git(&ogr, &["commit", "-q", "-m", "slow build"]);
    git(&ogr, &["checkout", "-q", "main"]);
    sb.json(&["--as", "bob", "deploy", "--env", "staging", "--release"]);
    let before = sb.assert_serving("staging");

    // Nothing runs yet: a cancel says so and changes nothing.
    let none = sb.run(&["--as", "bob", "cancel", "--env", "staging"]).expect(2);
    assert!(
        none.stderr.contains("no cycle is running on staging"),
        "{}",
        none.stderr
    );

    let deploy = sb.spawn(&[
        "--as",
        "alice",
        "--json",
        "deploy",
        "--env",
        "staging",
        "ogr=branch:slow",
    ]);
    let running = wait_until("alice's cycle to be running", || {
        sb.history()
            .into_iter()
            .find(|c| c["result"] == "running" && c["requested_by"] == "alice")
    });
    wait_until("the slow build to start", || {
        procs_under(&sb.root)
            .into_iter()
            .find(|p| p.cmdline == "sleep 30" && p.cwd.starts_with(sb.state.join("builds")))
    });
    let t = std::time::Instant::now();
    let asked = sb.json(&["--as", "bob", "cancel", "--env", "staging", "--reason", "wrong branch"]);
    assert_eq!(asked[0]["cycle"], running["id"]);
    assert_eq!(asked[0]["by"], "bob");

    let out = deploy.wait();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(15),
        "the cancel did not wait for the 30 s build"
    );
    assert_eq!(out.code, 1, "a cancelled cycle is not a success: {}", out.stderr);
    let report = out.json();
    assert_eq!(report["result"], "cancelled", "{report:#}");
    let err = report["error"].as_str().expect("error");
    assert!(
        err.contains("cancelled by bob") && err.contains("wrong branch"),
        "{err}"
    );
    // The build's process group went with it, and nothing was replaced.
    // (The services running from earlier builds also live under builds/: look for the build command.)
    wait_until("the cancelled build to be gone", || {
        procs_under(&sb.root)
            .iter()
            .all(|p| p.cmdline != "sleep 30" && !p.cmdline.contains("SLOW"))
            .then_some(())
    });
    let after = sb.assert_serving("staging");
    assert_eq!(
        Sandbox::component(&after, "ogr")["commit"],
        Sandbox::component(&before, "ogr")["commit"]
    );
    let h = sb.history();
    let c = h.iter().find(|c| c["id"] == running["id"]).expect("the cycle");
    assert_eq!(c["result"], "cancelled");
    // Cancelling a finished cycle is refused with what happened to it.
    let late = sb.run(&["--as", "bob", "cancel", &running["id"].to_string()]).expect(2);
    assert!(late.stderr.contains("is not running (it cancelled)"), "{}", late.stderr);
}
