//! Deploy blockers (issue #5 point 6) with a real Alertmanager (Debian's
//! `prometheus-alertmanager`, on loopback, clustering off): a firing alert
//! matching the environment's matchers holds the scheduled cycle, which
//! says why; once the alert resolves, only the newest version deploys (no
//! backlog replay). A freeze window refuses a person's deploy until an
//! admin's override, which is recorded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pending::*;
use common::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

struct Alertmanager {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "alertmanager log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

impl Alertmanager {
    fn start(dir: &std::path::Path, port: u16) -> Alertmanager {
        std::fs::create_dir_all(dir.join("data")).expect("mkdir");
        let cfg = dir.join("alertmanager.yml");
        std::fs::write(&cfg, "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n").expect("write");
        let log = dir.join("alertmanager.log");
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).expect("log"),
            ))
            .spawn()
            .expect("start prometheus-alertmanager");
        let am = Alertmanager { child, log, port };
        wait_until("Alertmanager to answer", || {
            http_get(&format!("http://127.0.0.1:{port}/api/v2/status")).filter(|(c, _)| *c == 200)
        });
        am
    }

    /// Posts one alert (`ends` in the past resolves it).
    fn alert(&self, name: &str, labels: &[(&str, &str)], firing: bool) {
        let now = std::time::SystemTime::now();
        let ends = if firing {
            now + Duration::from_secs(3600)
        } else {
            now - Duration::from_secs(1)
        };
        let mut l = serde_json::Map::new();
        l.insert("alertname".into(), name.into());
        for (k, v) in labels {
            l.insert((*k).into(), (*v).into());
        }
        let body = serde_json::json!([{
            "labels": l,
            "startsAt": humantime::format_rfc3339_seconds(now - Duration::from_secs(60)).to_string(),
            "endsAt": humantime::format_rfc3339_seconds(ends).to_string(),
        }])
        .to_string();
        let out = Command::new("curl")
            .args([
                "-fsS",
                "-XPOST",
                "-H",
                "Content-Type: application/json",
                "--data",
                &body,
            ])
            .arg(format!("http://127.0.0.1:{}/api/v2/alerts", self.port))
            .output()
            .expect("curl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_firing_alert_holds_the_cycle_and_only_the_newest_deploys_after() {
    let index = 66;
    let am_port = 21000 + 100 * index + 80;
    let sb = pending_sandbox(index, &["ogr"], "");
    let am = Alertmanager::start(&sb.root.join("am"), am_port);
    // staging follows its channel; solo is frozen; alerts for staging block it.
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replacen("follows = \"pending\"\n", "block_on_alerts = ['environment=\"staging\"', 'severity=~\"critical|page\"']\n", 1)
        .replace("[[user]]\nname = \"watcher\"", &format!(
            "[alertmanager]\nurl = \"http://127.0.0.1:{am_port}\"\n\n[[freeze]]\nname = \"release-freeze\"\nenvironments = [\"solo\"]\ncron = \"* * * * *\"\n\n[[user]]\nname = \"watcher\""
        ));
    sb.write_config(&text);
    // A warning elsewhere does not block; a critical one for staging does.
    am.alert(
        "DiskSpaceLow",
        &[("environment", "dev"), ("severity", "critical")],
        true,
    );
    am.alert(
        "SlowQueries",
        &[("environment", "staging"), ("severity", "warning")],
        true,
    );
    am.alert(
        "HighErrorRate",
        &[("environment", "staging"), ("severity", "critical")],
        true,
    );

    let server = serve(&sb, index);
    let blocked = wait_until("the cycle to wait for the alert", || {
        decisions(index).into_iter().find(|d| d.starts_with("blocked:"))
    });
    assert!(
        blocked.contains("1 firing alert(s) in Alertmanager: HighErrorRate (critical)"),
        "{blocked}"
    );
    // A person's deploy is refused meanwhile, with the reason.
    let refused = sb.run(&["deploy", "--env", "staging"]).expect(2);
    assert!(refused.all().contains("HighErrorRate"), "{}", refused.all());
    // Two new versions arrive while it waits.
    let ogr = sb.repo("ogr");
    for n in 1..=2 {
        std::fs::write(ogr.join(format!("RELEASE_{n}")), "x\n").expect("write");
        git(&ogr, &["add", "-A"]);
        git(&ogr, &["commit", "-q", "-m", &format!("release {n}")]);
    }
    let newest = sb.rev("ogr", "main");
    assert!(scheduled(&sb).is_empty(), "nothing deployed while blocked");

    am.alert(
        "HighErrorRate",
        &[("environment", "staging"), ("severity", "critical")],
        false,
    );
    let cycle = wait_until_for(Duration::from_secs(60), "the held cycle to deploy", &mut || {
        scheduled(&sb).into_iter().find(|c| c["result"] == "succeeded")
    });
    let ran = scheduled(&sb);
    assert_eq!(ran.len(), 1, "one cycle, no backlog replay: {ran:#?}");
    let st = sb.status("staging");
    assert_eq!(
        Sandbox::component(&st, "ogr")["commit"],
        newest.as_str(),
        "the newest version"
    );
    assert_eq!(st["manifest"], cycle["manifest"]);
    let said = decisions(index).join("\n");
    assert!(said.contains("unblocked: the blocker lifted"), "{said}");

    // The freeze refuses a person's deploy to solo until an admin overrides it.
    let frozen = sb.run(&["deploy", "--env", "solo", "--release"]).expect(2);
    assert!(
        frozen.all().contains("freeze window `release-freeze`"),
        "{}",
        frozen.all()
    );
    let no_reason = sb.run(&["override", "--env", "solo"]).expect(2);
    assert!(no_reason.all().contains("--reason"), "{}", no_reason.all());
    sb.ok(&[
        "--as",
        "alice",
        "override",
        "--env",
        "solo",
        "--for",
        "10m",
        "--reason",
        "hotfix for INC-42",
    ]);
    let r = sb.json(&["deploy", "--env", "solo", "--release"]);
    assert_eq!(r["result"], "succeeded", "{r:#}");
    let audit = sb.json(&["audit", "--env", "solo"]);
    assert!(
        audit
            .as_array()
            .expect("rows")
            .iter()
            .any(|a| a["action"] == "override" && a["actor"] == "alice" && a["reason"] == "hotfix for INC-42"),
        "{audit:#}"
    );
    server.kill9();
    sb.ok(&["stop", "--env", "staging"]);
    sb.ok(&["stop", "--env", "solo"]);
}
