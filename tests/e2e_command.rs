//! End to end: the `command` driver — the user's own deploy and stop
//! commands get the manifest as variables and as a JSON file, a replaced
//! component is stopped first, and secrets reach the commands but never the
//! logs, the state directory or the CLI's output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Sandbox, sh_quote, toml_str};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const SECRET: &str = "s3cr3t-e2e-7f1c9a";

fn env_file(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn events(sb: &Sandbox) -> Vec<String> {
    std::fs::read_to_string(sb.root.join("out").join("events"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return hits };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if let Ok(bytes) = std::fs::read(&p)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

fn setup() -> Sandbox {
    let mut sb = Sandbox::empty(30);
    greenroom::quickstart::make_repo(&sb.repo("api"), "api", 1, false).expect("repo");
    greenroom::quickstart::make_repo(&sb.repo("worker"), "worker", 2, false).expect("repo");
    let out = sb.root.join("out");
    let scripts = sb.root.join("scripts");
    std::fs::create_dir_all(&scripts).expect("mkdir");
    let o = sh_quote(&out.display().to_string());
    std::fs::write(
        scripts.join("deploy.sh"),
        format!(
            "set -eu\n\
             f={o}/deploy-$GREENROOM_COMPONENT-$GREENROOM_CYCLE\n\
             env | grep '^GREENROOM_' | sort > \"$f.env\"\n\
             cat \"$GREENROOM_MANIFEST\" > \"$f.manifest.json\"\n\
             printf '%s' \"$TOKEN\" > \"$f.token\"\n\
             echo \"deploy $GREENROOM_COMPONENT $GREENROOM_CYCLE $GREENROOM_COMMIT\" >> {o}/events\n\
             echo \"deploying $GREENROOM_COMPONENT in $REGION with token $TOKEN\"\n"
        ),
    )
    .expect("write deploy.sh");
    std::fs::write(
        scripts.join("stop.sh"),
        format!(
            "set -eu\n\
             echo \"stop $GREENROOM_COMPONENT $GREENROOM_CYCLE $GREENROOM_COMMIT\" >> {o}/events\n\
             echo \"stopping $GREENROOM_COMPONENT with token $TOKEN\"\n"
        ),
    )
    .expect("write stop.sh");
    let deploy = format!("sh {}", sh_quote(&scripts.join("deploy.sh").display().to_string()));
    let stop = format!("sh {}", sh_quote(&scripts.join("stop.sh").display().to_string()));
    let mut cfg = format!(
        "state_dir = {}\nport_base = {}\n",
        toml_str(&sb.state.display().to_string()),
        sb.port_base
    );
    for (name, deps) in [("api", ""), ("worker", "\"api\"")] {
        cfg.push_str(&format!(
            "\n[[component]]\nname = \"{name}\"\nrepo = \"repos/{name}\"\nchannels = {{ stg = \"main\" }}\n\
             build = {build}\ndeploy = {deploy}\nstop = {stop}\ntimeout = \"20s\"\ndepends_on = [{deps}]\n",
            build = toml_str(&sb.build_command(name)),
            deploy = toml_str(&deploy),
            stop = toml_str(&stop),
        ));
    }
    cfg.push_str(
        "\n[[environment]]\nname = \"cmd\"\ndriver = \"command\"\ncomponents = [\"api\", \"worker\"]\n\
         [environment.vars]\nTOKEN = \"env:TEST_SECRET\"\nREGION = \"region-{environment}\"\n",
    );
    sb.write_config(&cfg);
    sb.env.push(("TEST_SECRET".into(), SECRET.into()));
    sb
}

#[test]
fn command_driver_gets_the_manifest_and_keeps_secrets() {
    let sb = setup();
    let out = sb.root.join("out");
    let (api_main, worker_main, api_pr) = (
        sb.rev("api", "main"),
        sb.rev("worker", "main"),
        sb.rev("api", "refs/pull/1/head"),
    );

    let first = sb.ok(&["--as", "alice", "--json", "deploy", "--env", "cmd"]);
    assert!(!first.all().contains(SECRET));
    let first = first.json();
    assert_eq!(first["result"], "succeeded", "{first:#}");
    let c1 = first["cycle"].as_i64().expect("cycle");
    assert_eq!(
        events(&sb),
        [
            format!("deploy api {c1} {api_main}"),
            format!("deploy worker {c1} {worker_main}")
        ]
    );

    let env = env_file(&out.join(format!("deploy-api-{c1}.env")));
    assert_eq!(env["GREENROOM_COMMIT"], api_main);
    assert_eq!(env["GREENROOM_REF"], "refs/heads/main");
    assert_eq!(env["GREENROOM_ENV"], "cmd");
    assert_eq!(env["GREENROOM_SLOT"], "");
    assert_eq!(env["GREENROOM_COMPONENT"], "api");
    assert_eq!(env["GREENROOM_CYCLE"], c1.to_string());
    assert_eq!(
        env["GREENROOM_MANIFEST_ID"],
        first["manifest"].as_str().expect("manifest")
    );
    // The artifact is the checkout the build ran in.
    let artifact = Path::new(&env["GREENROOM_ARTIFACT"]);
    assert!(artifact.starts_with(&sb.state), "{}", artifact.display());
    assert_eq!(
        std::fs::read_to_string(artifact.join(".greenroom-built"))
            .expect("built")
            .trim(),
        api_main
    );
    assert_eq!(
        env_file(&out.join(format!("deploy-worker-{c1}.env")))["GREENROOM_COMPONENT"],
        "worker"
    );

    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("deploy-api-{c1}.manifest.json"))).expect("manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(m["schema"], "greenroom.manifest/v1");
    assert_eq!(m["id"], first["manifest"]);
    assert_eq!(m["environment"], "cmd");
    assert_eq!(m["cycle"], c1);
    assert_eq!(m["components"]["api"]["commit"], api_main.as_str());
    assert_eq!(m["components"]["worker"]["commit"], worker_main.as_str());
    assert_eq!(m["components"]["api"]["artifact"], env["GREENROOM_ARTIFACT"].as_str());
    // The secret reached the command.
    assert_eq!(
        std::fs::read_to_string(out.join(format!("deploy-api-{c1}.token"))).expect("token"),
        SECRET
    );

    // A PR of api: its previous version is stopped first, worker is left alone.
    let second = sb.ok(&["--as", "alice", "--json", "deploy", "--env", "cmd", "api=1"]);
    assert!(!second.all().contains(SECRET));
    let second = second.json();
    assert_eq!(second["result"], "succeeded", "{second:#}");
    let c2 = second["cycle"].as_i64().expect("cycle");
    assert_eq!(
        events(&sb),
        [
            format!("deploy api {c1} {api_main}"),
            format!("deploy worker {c1} {worker_main}"),
            format!("stop api {c1} {api_main}"),
            format!("deploy api {c2} {api_pr}"),
        ]
    );
    let env = env_file(&out.join(format!("deploy-api-{c2}.env")));
    assert_eq!(env["GREENROOM_COMMIT"], api_pr);
    assert_eq!(env["GREENROOM_REF"], "refs/pull/1/head");
    assert_eq!(env["GREENROOM_PR"], "1");
    assert_eq!(env["GREENROOM_CYCLE"], c2.to_string());
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("deploy-api-{c2}.manifest.json"))).expect("manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(m["components"]["api"]["commit"], api_pr.as_str());
    assert_eq!(m["components"]["api"]["pr"], 1);
    assert_eq!(m["components"]["worker"]["commit"], worker_main.as_str());
    assert_eq!(m["components"]["worker"]["action"], "keep");

    let st = sb.status("cmd");
    assert_eq!(Sandbox::component(&st, "api")["commit"], api_pr.as_str());
    assert_eq!(Sandbox::component(&st, "api")["state"], "running");
    assert_eq!(Sandbox::component(&st, "worker")["cycle"], c1);

    // The secret is in no output, no log and no file of the state directory;
    // the logs say where it was.
    for args in [
        &["--json", "status"][..],
        &["--json", "history"],
        &["status"],
        &["history"],
        &["--json", "diff", "1", "2"],
    ] {
        let o = sb.ok(args);
        assert!(!o.all().contains(SECRET), "`{args:?}` shows the secret");
    }
    let logs = sb.ok(&["logs", "--env", "cmd", "api"]);
    assert!(logs.stdout.contains("with token [redacted]"), "{}", logs.stdout);
    assert!(logs.stdout.contains("deploying api in region-cmd"), "{}", logs.stdout);
    assert!(!logs.stdout.contains(SECRET));
    let stop_log =
        std::fs::read_to_string(sb.state.join("logs/cmd/api").join(format!("cycle-{c1}.log"))).expect("log of cycle 1");
    assert!(stop_log.contains("stopping api with token [redacted]"), "{stop_log}");
    assert_eq!(files_containing(&sb.state, SECRET.as_bytes()), Vec::<String>::new());

    // stop runs the stop commands, in reverse dependency order.
    let stopped = sb.json(&["--as", "alice", "stop", "--env", "cmd"]);
    assert_eq!(stopped["result"], "succeeded", "{stopped:#}");
    let ev = events(&sb);
    assert_eq!(
        ev[4..],
        [
            format!("stop worker {c1} {worker_main}"),
            format!("stop api {c2} {api_pr}")
        ]
    );
    assert!(files_containing(&sb.state, SECRET.as_bytes()).is_empty());
}

#[test]
fn rollback_redeploys_the_previous_manifest_in_rollback_order_and_locks_deployment() {
    let sb = setup();
    // Roll the storage layer (api) back first, whatever the dependencies say.
    let text = std::fs::read_to_string(&sb.config).expect("config").replace(
        "components = [\"api\", \"worker\"]\n",
        "components = [\"api\", \"worker\"]\nrollback_order = [\"api\"]\n",
    );
    sb.write_config(&text);
    let out = sb.root.join("out");
    let (api_main, worker_main) = (sb.rev("api", "main"), sb.rev("worker", "main"));
    let good = sb.json(&[
        "--as",
        "alice",
        "deploy",
        "--env",
        "cmd",
        "--reason",
        "good",
        "--release",
    ]);
    assert_eq!(good["result"], "succeeded", "{good:#}");
    let bad = sb.json(&[
        "--as",
        "alice",
        "deploy",
        "--env",
        "cmd",
        "--release",
        "api=1",
        "worker=2",
    ]);
    assert_eq!(bad["result"], "succeeded", "{bad:#}");
    let bad_manifest = bad["manifest"].as_str().expect("manifest").to_string();

    let plan = sb.json(&["--as", "bob", "rollback", "--env", "cmd", "--dry-run"]);
    assert_eq!(plan["manifest"], good["manifest"], "{plan:#}");
    let before = events(&sb).len();
    let r = sb.json(&["--as", "bob", "rollback", "--env", "cmd", "--reason", "api answers 500"]);
    assert_eq!(r["result"], "succeeded", "{r:#}");
    assert_eq!(r["manifest"], good["manifest"], "the recorded manifest, exactly");
    let c = r["cycle"].as_i64().expect("cycle");
    let deploys: Vec<String> = events(&sb)[before..]
        .iter()
        .filter(|e| e.starts_with("deploy "))
        .cloned()
        .collect();
    assert_eq!(
        deploys,
        [
            format!("deploy api {c} {api_main}"),
            format!("deploy worker {c} {worker_main}")
        ],
        "rollback_order: api first"
    );
    // The deploy commands are told it is a rollback, and of what.
    let env = env_file(&out.join(format!("deploy-worker-{c}.env")));
    assert_eq!(env["GREENROOM_ROLLBACK"], "1");
    assert_eq!(env["GREENROOM_PREVIOUS_MANIFEST"], bad_manifest);

    // Continuous deployment is locked until someone resumes it.
    let st = sb.status("cmd");
    assert_eq!(st["paused"]["paused"], true, "{st:#}");
    let why = st["paused"]["reason"].as_str().expect("reason");
    assert!(why.contains("rolled back") && why.contains("resume"), "{why}");

    // The bad manifest is no target any more; nothing else is either.
    let again = sb.run(&["--as", "bob", "rollback", "--env", "cmd"]).expect(2);
    assert!(again.all().contains("nothing to roll cmd back to"), "{}", again.all());
    let missing = sb
        .run(&["--as", "bob", "rollback", "--env", "cmd", "--to", "v9.9.9"])
        .expect(2);
    assert!(missing.all().contains("v9.9.9"), "{}", missing.all());

    // Every action is in the audit trail, with who, how and why.
    let audit = sb.json(&["audit", "--env", "cmd"]);
    let rows = audit.as_array().expect("rows");
    let actions: Vec<(&str, &str)> = rows
        .iter()
        .map(|a| (a["action"].as_str().unwrap_or(""), a["actor"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        actions,
        [
            ("rollback", "bob"),
            ("pause", "bob"),
            ("deploy", "alice"),
            ("deploy", "alice")
        ],
        "{audit:#}"
    );
    assert!(rows.iter().all(|a| a["surface"] == "cli"), "{audit:#}");
    assert_eq!(rows[0]["reason"], "api answers 500");
    assert_eq!(rows[0]["cycle"], c);
    sb.ok(&["--as", "bob", "resume", "--env", "cmd"]);
    assert_eq!(
        sb.json(&["audit", "--env", "cmd", "--limit", "1"])[0]["action"],
        "resume"
    );
}

#[test]
fn a_fleet_of_targets_gets_one_deploy_each_in_waves() {
    let sb = setup();
    // Every deploy says where it went.
    let o = sh_quote(&sb.root.join("out").display().to_string());
    std::fs::write(
        sb.root.join("scripts").join("deploy.sh"),
        format!(
            "set -eu\necho \"deploy $GREENROOM_COMPONENT $GREENROOM_TARGET $GREENROOM_TARGET_ADDRESS $GREENROOM_TARGET_WAVE\" >> {o}/events\n"
        ),
    )
    .expect("write deploy.sh");
    let text = std::fs::read_to_string(&sb.config).expect("config").replace(
        "components = [\"api\", \"worker\"]\n",
        "components = [\"api\", \"worker\"]\ntargets = [\"web-1\", { name = \"web-2\", address = \"10.0.0.2\" }, \"web-3\"]\ncanary = [\"web-2\"]\n",
    );
    sb.write_config(&text);
    let r = sb.json(&["--as", "alice", "deploy", "--env", "cmd", "--release"]);
    assert_eq!(r["result"], "succeeded", "{r:#}");
    let deploys: Vec<String> = events(&sb).into_iter().filter(|e| e.starts_with("deploy ")).collect();
    // api everywhere, then worker everywhere (dependency order), each blessed
    // web-1 first, then the canary web-2, then the batch web-3.
    for component in ["api", "worker"] {
        let order: Vec<&str> = deploys
            .iter()
            .filter(|d| d.split_whitespace().nth(1) == Some(component))
            .filter_map(|d| d.split_whitespace().nth(2))
            .collect();
        assert_eq!(order, ["web-1", "web-2", "web-3"], "{component}: {deploys:#?}");
    }
    assert!(
        deploys.iter().any(|d| d.contains("web-2 10.0.0.2")),
        "the address: {deploys:#?}"
    );
    assert!(
        deploys.iter().any(|d| d.starts_with("deploy api web-1 web-1 ")),
        "a bare name is its address: {deploys:#?}"
    );
    // The report says, per target, what it runs.
    let api = r["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == "api")
        .expect("api")
        .clone();
    let targets = api["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 3, "{api:#}");
    assert!(targets.iter().all(|t| t["outcome"] == "running"), "{api:#}");
}
