//! Promotion (issue #5 point 8; seed 003's canary, then main): `greenroom
//! promote --from staging-canary --to staging-main` deploys exactly the
//! manifest verified on the canary — the same manifest id, nothing rebuilt;
//! an unverified manifest is refused with the reason; `promote_to` with a
//! `promote_after` soak does it by itself under `greenroom serve`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pending::{serve, server_port};
use common::*;
use serde_json::Value;

const INDEX: u16 = 69;

fn total_builds(sb: &Sandbox) -> usize {
    sb.builds("ogr").values().sum()
}

fn config(sb: &Sandbox, auto: bool) -> String {
    config_with(sb, auto, "2s", INDEX)
}

fn config_with(sb: &Sandbox, auto: bool, soak: &str, index: u16) -> String {
    let base = std::fs::read_to_string(sb.root.join("base.toml")).expect("base config");
    let red = sb.root.join("RED");
    let mut s = base
        .replacen("name = \"staging\"\n", "name = \"staging\"\nfollows = \"manual\"\n", 1)
        .replacen("name = \"solo\"\n", "name = \"solo\"\nfollows = \"manual\"\n", 1);
    s.push_str(&format!(
        "\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n[policy]\nsettle = \"0s\"\ncooldown = \"0s\"\n\n\
         [[environment]]\nname = \"staging-canary\"\ncomponents = [\"ogr\"]\n{canary}\n\
         [[environment]]\nname = \"staging-main\"\ncomponents = [\"ogr\"]\nfollows = \"manual\"\n\n\
         [[suite]]\nname = \"smoke\"\nenvironments = [\"staging-canary\"]\nrun = {run}\n",
        port = server_port(index),
        canary = if auto {
            format!("promote_to = \"staging-main\"\npromote_after = \"{soak}\"\n")
        } else {
            "follows = \"manual\"\n".to_string()
        },
        run = toml_str(&format!(
            "test ! -e {} && curl -fsS \"$GREENROOM_URL_OGR\" >/dev/null",
            sh_quote(&red.display().to_string())
        )),
    ));
    s
}

fn audit_actions(sb: &Sandbox, env: &str) -> Vec<String> {
    let v: Value = sb.json(&["audit", "--env", env]);
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["action"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn promotion_deploys_the_identical_verified_manifest() {
    let sb = Sandbox::new(INDEX);
    std::fs::copy(&sb.config, sb.root.join("base.toml")).expect("keep the base config");
    sb.write_config(&config(&sb, false));
    sb.ok(&["check-config"]);

    // Nothing verified yet.
    let none = sb.run(&["promote", "--from", "staging-canary", "--to", "staging-main"]);
    assert_ne!(none.code, 0);
    assert!(none.all().contains("no verified manifest"), "{}", none.all());

    // A cycle whose suite fails is not verified.
    std::fs::write(sb.root.join("RED"), "").expect("write");
    let red = sb.run(&["--json", "deploy", "--env", "staging-canary", "--release"]);
    assert_ne!(red.code, 0, "{}", red.all());
    let red_cycle = red.json()["cycle"].as_i64().expect("cycle");
    let refused = sb.run(&[
        "promote",
        "--from",
        "staging-canary",
        "--to",
        "staging-main",
        &red_cycle.to_string(),
    ]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.all().contains(&format!("cycle {red_cycle} failed")),
        "{}",
        refused.all()
    );

    // Verified: promoted as it is.
    std::fs::remove_file(sb.root.join("RED")).expect("remove");
    let green = sb.json(&["deploy", "--env", "staging-canary", "--release"]);
    assert_eq!(green["result"], "succeeded", "{green:#}");
    let builds = total_builds(&sb);
    let promoted = sb.json(&[
        "--as",
        "carol",
        "promote",
        "--from",
        "staging-canary",
        "--to",
        "staging-main",
    ]);
    assert_eq!(promoted["result"], "succeeded", "{promoted:#}");
    assert_eq!(promoted["manifest"], green["manifest"], "the identical manifest");
    assert_eq!(sb.status("staging-main")["manifest"], green["manifest"]);
    assert_eq!(total_builds(&sb), builds, "nothing was rebuilt");
    assert!(audit_actions(&sb, "staging-main").contains(&"promote".to_string()));

    // Automatic: a new commit reaches the canary by the schedule, is
    // verified, soaks, and is promoted by itself.
    let ogr = sb.repo("ogr");
    std::fs::write(ogr.join("NEWS"), "a change\n").expect("write");
    git(&ogr, &["add", "NEWS"]);
    git(&ogr, &["commit", "-q", "-m", "a change"]);
    sb.write_config(&config(&sb, true));
    let server = serve(&sb, INDEX);
    let canary = long_wait("the canary to deploy the change", || {
        let st = sb.status("staging-canary");
        (st["manifest"] != green["manifest"] && !st["manifest"].is_null()).then_some(st)
    });
    let new_manifest = canary["manifest"].clone();
    let main = long_wait("the promotion after the soak", || {
        let st = sb.status("staging-main");
        (st["manifest"] == new_manifest).then_some(st)
    });
    assert_eq!(main["manifest"], new_manifest);
    let promotions: Vec<Value> = sb
        .history()
        .into_iter()
        .filter(|c| c["environment"] == "staging-main")
        .collect();
    assert!(
        promotions[0]["request"]
            .as_str()
            .is_some_and(|r| r.starts_with("promote from staging-canary")),
        "{promotions:#?}"
    );
    server.kill9();
    for env in ["staging-canary", "staging-main"] {
        sb.ok(&["stop", "--env", env]);
    }
}

/// [`wait_until`] with room for a build, a deploy and the suites.
#[track_caller]
fn long_wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    wait_until_for(std::time::Duration::from_secs(120), what, &mut f)
}

/// The decisions of `env` as `(kind, reason, cycle)`, newest first, from
/// the API (as the sandbox's viewer).
fn env_decisions(index: u16, env: &str) -> Vec<(String, String, Option<i64>)> {
    let url = format!("http://127.0.0.1:{}/api/v1/environments/{env}", server_port(index));
    let out = std::process::Command::new("curl")
        .args([
            "-fsS",
            "--max-time",
            "20",
            "-H",
            "Authorization: Bearer watcher-token-1",
            &url,
        ])
        .output()
        .expect("curl");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["decisions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    (
                        d["kind"].as_str().unwrap_or("").to_string(),
                        d["reason"].as_str().unwrap_or("").to_string(),
                        d["cycle"].as_i64(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A server killed while a verified manifest soaks: the next server
/// resumes the soak (what is left of it) and promotes that cycle.
#[test]
fn a_soak_cut_short_by_a_restart_still_promotes() {
    const AT: u16 = 74;
    let sb = Sandbox::new(AT);
    std::fs::copy(&sb.config, sb.root.join("base.toml")).expect("keep the base config");
    std::fs::write(sb.root.join("watcher.token"), "watcher-token-1").expect("token");
    let mut text = config_with(&sb, true, "12s", AT);
    text.push_str(&format!(
        "\n[[user]]\nname = \"watcher\"\ntoken = {}\nrole = \"viewer\"\n",
        toml_str(&format!("file:{}", sb.root.join("watcher.token").display()))
    ));
    sb.write_config(&text);
    sb.ok(&["check-config"]);

    // The schedule deploys the canary, its suite passes: the soak starts.
    let server = serve(&sb, AT);
    let (reason, cycle) = long_wait("the soak to start", || {
        env_decisions(AT, "staging-canary")
            .into_iter()
            .find(|(k, r, _)| k == "promote" && r.contains(" soaks "))
            .map(|(_, r, c)| (r, c))
    });
    let cycle = cycle.expect("the soaking cycle");
    server.kill9();
    assert!(
        sb.status("staging-main")["manifest"].is_null(),
        "not promoted before the soak ended: {reason}"
    );
    let canary = sb.status("staging-canary")["manifest"].clone();
    assert!(!canary.is_null());

    // The next server goes on with it and promotes that very cycle.
    let server = serve(&sb, AT);
    let main = long_wait("the promotion after the resumed soak", || {
        let st = sb.status("staging-main");
        (st["manifest"] == canary).then_some(st)
    });
    assert_eq!(main["manifest"], canary);
    let said = env_decisions(AT, "staging-canary");
    assert!(
        said.iter()
            .any(|(k, r, c)| k == "promote" && r.starts_with("promoted manifest") && *c == Some(cycle)),
        "{said:#?}"
    );
    server.kill9();
    for env in ["staging-canary", "staging-main"] {
        sb.ok(&["stop", "--env", env]);
    }
}
