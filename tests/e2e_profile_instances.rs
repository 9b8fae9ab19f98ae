//! Per-component instance counts (issue #5 point 3: a named profile says
//! which components run and how many copies of each). A profile `1k` with
//! `instances = { api = 3, db = 1 }` on the process driver derives a fleet
//! of three targets; `greenroom env create r1 --profile 1k` runs api on
//! t1, t2 and t3 and db on t1 only: four real processes, each answering
//! on its own port, and every api copy was given db's single port and URL
//! (read from the processes' own environment in /proc). The cycle report,
//! `status --json` and `status` list db on t1 only. With fewer api copies
//! in the same fleet (`instances = 3` written out, `api = 2`), the next
//! deploy stops api on t3. When db comes to t2 (and goes again), api on t2
//! restarts to reach the db it should (t2's, then the blessed one's)
//! while t1 keeps running. `env destroy` stops every copy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

const INDEX: u16 = 93;

/// The config appended to the default sandbox: components `db` and `api`
/// (api depends on db) and the profile.
fn extra(sb: &Sandbox) -> String {
    let run = toml_str(&format!("{} sample-service", sh_quote(EXE)));
    let mut s = String::new();
    for (name, deps) in [("db", ""), ("api", "\"db\"")] {
        s.push_str(&format!(
            "\n[[component]]\nname = \"{name}\"\nrepo = \"repos/{name}\"\nchannels = {{ stg = \"main\" }}\n\
             build = {build}\nrun = {run}\nhealth = \"http://127.0.0.1:{{port}}/healthz\"\nhealth_timeout = \"10s\"\n\
             url = \"http://127.0.0.1:{{port}}/\"\ndepends_on = [{deps}]\n",
            build = toml_str(&sb.build_command(name)),
        ));
    }
    s.push_str(
        "\n[[environment]]\nname = \"1k\"\nslots = 1\ncomponents = [\"api\", \"db\"]\n\
         [environment.profile]\nttl = \"1h\"\ninstances = { api = 3, db = 1 }\n",
    );
    s
}

/// A component of a cycle report or a status.
fn component<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {doc:#}"))
}

/// (target, the value of `what`) per target of a component.
fn per_target(c: &Value, what: &str) -> Vec<(String, String)> {
    c["targets"]
        .as_array()
        .unwrap_or_else(|| panic!("no targets: {c:#}"))
        .iter()
        .map(|t| {
            (
                t["target"].as_str().unwrap().to_string(),
                t[what].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// The sample services running under the sandbox, each with the
/// environment it was started with (`/proc/PID/environ`).
fn services(sb: &Sandbox) -> Vec<BTreeMap<String, String>> {
    procs_under(&sb.root)
        .into_iter()
        // The service itself (not its supervisor or shell, whose command
        // lines also mention it).
        .filter(|p| p.cmdline == format!("{EXE} sample-service"))
        .filter_map(|p| {
            let raw = std::fs::read(format!("/proc/{}/environ", p.pid)).ok()?;
            Some(
                raw.split(|b| *b == 0)
                    .filter_map(|kv| {
                        let kv = String::from_utf8_lossy(kv);
                        let (k, v) = kv.split_once('=')?;
                        Some((k.to_string(), v.to_string()))
                    })
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn a_profile_runs_three_api_copies_against_one_db() {
    let sb = Sandbox::empty(INDEX);
    for (name, pr, broken) in [("ogr", 1, false), ("packit-service", 2, false), ("dashboard", 3, true)] {
        greenroom::quickstart::make_repo(&sb.repo(name), name, pr, broken).expect("sample repo");
    }
    for (i, name) in ["db", "api"].into_iter().enumerate() {
        greenroom::quickstart::make_repo(&sb.repo(name), name, 10 + i as u64, false).expect("sample repo");
    }
    let text = sb.default_config(&Options {
        extra: extra(&sb),
        ..Options::default()
    });
    sb.write_config(&text);

    let made = sb.json(&["--as", "alice", "env", "create", "r1", "--profile", "1k"]);
    let cycle = &made["cycle"];
    assert_eq!(cycle["result"], "succeeded", "{made:#}");
    assert_eq!(made["environment"]["slot"], "1k-1");
    // The cycle report: api on three targets, db on the blessed one only.
    assert_eq!(
        per_target(component(cycle, "api"), "outcome"),
        pairs(&[("t1", "running"), ("t2", "running"), ("t3", "running")]),
        "{cycle:#}"
    );
    assert_eq!(
        per_target(component(cycle, "db"), "outcome"),
        pairs(&[("t1", "running")]),
        "{cycle:#}"
    );
    assert_eq!(component(cycle, "db")["outcome"], "running");

    // status --json says the same, with each copy's own port.
    let st = sb.status("r1");
    let db = Sandbox::component(&st, "db");
    assert_eq!(per_target(db, "state"), pairs(&[("t1", "running")]), "{st:#}");
    let db_port = db["port"].as_u64().expect("db port");
    assert_eq!(db["targets"][0]["port"].as_u64(), Some(db_port), "t1 is the instance");
    let api = Sandbox::component(&st, "api");
    assert_eq!(
        per_target(api, "state"),
        pairs(&[("t1", "running"), ("t2", "running"), ("t3", "running")]),
        "{st:#}"
    );
    let api_ports: BTreeMap<String, u64> = api["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["target"].as_str().unwrap().to_string(),
                t["port"].as_u64().expect("port"),
            )
        })
        .collect();
    let mut distinct: Vec<u64> = api_ports.values().copied().chain([db_port]).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "every copy has its own port: {st:#}");

    // Each copy answers on its port, as itself.
    for (what, port) in api_ports
        .iter()
        .map(|(t, p)| (format!("api on {t}"), *p))
        .chain([("db".to_string(), db_port)])
    {
        let (code, body) = http_get(&format!("http://127.0.0.1:{port}/")).unwrap_or_else(|| panic!("{what} answers"));
        assert_eq!(code, 200, "{what}: {body}");
        let v: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["component"], what.split(' ').next().unwrap(), "{what}: {v}");
        assert_eq!(v["environment"], "1k-1");
    }

    // Four processes: three api copies, one db; every api copy was given
    // db's one port and URL, its own port, and its target.
    let procs = services(&sb);
    let of = |c: &str| -> Vec<&BTreeMap<String, String>> {
        procs
            .iter()
            .filter(|e| e.get("GREENROOM_COMPONENT").map(String::as_str) == Some(c))
            .collect()
    };
    assert_eq!(of("db").len(), 1, "one db process: {procs:#?}");
    assert_eq!(of("api").len(), 3, "three api processes: {procs:#?}");
    assert_eq!(procs.len(), 4, "{procs:#?}");
    let db_env = of("db")[0];
    assert_eq!(db_env["PORT"], db_port.to_string());
    assert_eq!(db_env["GREENROOM_TARGET"], "t1");
    let mut seen_targets = Vec::new();
    for e in of("api") {
        let t = e["GREENROOM_TARGET"].clone();
        assert_eq!(e["GREENROOM_PORT_DB"], db_port.to_string(), "api on {t}: {e:#?}");
        assert_eq!(
            e["GREENROOM_URL_DB"],
            format!("http://127.0.0.1:{db_port}/"),
            "api on {t}"
        );
        assert_eq!(e["PORT"], api_ports[&t].to_string(), "api on {t}: its own port");
        assert_eq!(e["GREENROOM_PORT_API"], api_ports[&t].to_string(), "api on {t}");
        seen_targets.push(t);
    }
    seen_targets.sort();
    assert_eq!(seen_targets, ["t1", "t2", "t3"]);

    // The human status lists db on t1 only.
    let human = sb.ok(&["status", "--env", "r1"]).stdout;
    let db_lines: Vec<&str> = human
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("db "))
        .skip(1)
        .take_while(|l| l.starts_with("      "))
        .collect();
    assert_eq!(db_lines.len(), 1, "{human}");
    assert!(db_lines[0].contains("t1"), "{human}");

    // Fewer api copies within the same fleet (`instances = 3` written
    // out): the next deploy stops api on t3, which no longer runs it.
    let fewer = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replace("instances = { api = 3, db = 1 }", "instances = { api = 2, db = 1 }")
        .replace(
            "name = \"1k\"\nslots = 1\n",
            "name = \"1k\"\nslots = 1\ninstances = 3\n",
        );
    sb.write_config(&fewer);
    let again = sb.json(&["--as", "alice", "deploy", "--env", "r1"]);
    assert_eq!(again["result"], "succeeded", "{again:#}");
    assert_eq!(
        per_target(component(&again, "api"), "outcome"),
        pairs(&[("t1", "kept"), ("t2", "kept")]),
        "{again:#}"
    );
    assert_eq!(per_target(component(&again, "db"), "outcome"), pairs(&[("t1", "kept")]));
    let st = sb.status("r1");
    assert_eq!(
        per_target(Sandbox::component(&st, "api"), "state"),
        pairs(&[("t1", "running"), ("t2", "running")]),
        "{st:#}"
    );
    assert!(
        http_get(&format!("http://127.0.0.1:{}/", api_ports["t3"])).is_none(),
        "api on t3 stopped"
    );
    let procs = services(&sb);
    assert_eq!(procs.len(), 3, "two api copies and db: {procs:#?}");

    // db on t2 too: api on t2 restarts to reach its own db there; t1 keeps.
    let api_on = |procs: &[BTreeMap<String, String>], t: &str| -> BTreeMap<String, String> {
        procs
            .iter()
            .find(|e| {
                e.get("GREENROOM_COMPONENT").map(String::as_str) == Some("api")
                    && e.get("GREENROOM_TARGET").map(String::as_str) == Some(t)
            })
            .cloned()
            .unwrap_or_else(|| panic!("api on {t}: {procs:#?}"))
    };
    let text = std::fs::read_to_string(&sb.config).expect("config");
    sb.write_config(&text.replace("{ api = 2, db = 1 }", "{ api = 2, db = 2 }"));
    let more = sb.json(&["--as", "alice", "deploy", "--env", "r1"]);
    assert_eq!(more["result"], "succeeded", "{more:#}");
    assert_eq!(
        per_target(component(&more, "api"), "outcome"),
        pairs(&[("t1", "kept"), ("t2", "running")]),
        "{more:#}"
    );
    let st = sb.status("r1");
    let db_t2 = Sandbox::component(&st, "db")["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["target"] == "t2"))
        .and_then(|t| t["port"].as_u64())
        .unwrap_or_else(|| panic!("db on t2: {st:#}"));
    assert_ne!(db_t2, db_port);
    let procs = services(&sb);
    assert_eq!(
        api_on(&procs, "t2")["GREENROOM_PORT_DB"],
        db_t2.to_string(),
        "{procs:#?}"
    );
    assert_eq!(api_on(&procs, "t1")["GREENROOM_PORT_DB"], db_port.to_string());

    // And back to one db: api on t2 must not keep talking to the db that
    // stops there; it restarts against the blessed target's.
    let text = std::fs::read_to_string(&sb.config).expect("config");
    sb.write_config(&text.replace("{ api = 2, db = 2 }", "{ api = 2, db = 1 }"));
    let fewer = sb.json(&["--as", "alice", "deploy", "--env", "r1"]);
    assert_eq!(fewer["result"], "succeeded", "{fewer:#}");
    assert!(
        http_get(&format!("http://127.0.0.1:{db_t2}/")).is_none(),
        "db on t2 stopped"
    );
    let procs = services(&sb);
    assert_eq!(procs.len(), 3, "{procs:#?}");
    assert_eq!(
        api_on(&procs, "t2")["GREENROOM_PORT_DB"],
        db_port.to_string(),
        "{procs:#?}"
    );

    // Destroyed: every copy stops.
    sb.ok(&["env", "destroy", "r1", "--reason", "done"]);
    wait_until("every copy to stop", || services(&sb).is_empty().then_some(()));
    let st = sb.status("1k-1");
    for c in ["api", "db"] {
        assert!(
            per_target(Sandbox::component(&st, c), "state")
                .iter()
                .all(|(_, s)| s == "stopped"),
            "{st:#}"
        );
    }
}
