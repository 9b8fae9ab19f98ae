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
        port = server_port(INDEX),
        canary = if auto {
            "promote_to = \"staging-main\"\npromote_after = \"2s\"\n"
        } else {
            "follows = \"manual\"\n"
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
