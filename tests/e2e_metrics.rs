//! `/metrics` scraped by a real Prometheus (Debian's package, installed by
//! `.ci/run`): what runs now is visible as `greenroom_deployed_info` with the
//! exact commit.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(name: &str) -> String {
    let path = format!("/usr/bin/{name}");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: install Debian's `prometheus` package (.ci/run does)"
    );
    path
}

#[test]
fn prometheus_scrapes_what_runs() {
    let index = 33;
    let port = 21000 + 100 * index + 90;
    let prom_port = port + 1;
    let extra = format!("\n[server]\nlisten = \"127.0.0.1:{port}\"\n");
    let sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    sb.ok(&["deploy", "--env", "solo", "--release"]);
    let commit = sb.rev("ogr", "main");
    let server = sb.spawn(&["serve"]);
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let text = wait_until("/metrics to answer", || {
        http_get(&metrics_url).filter(|(c, _)| *c == 200)
    })
    .1;
    assert!(text.contains("greenroom_deployed_info{"), "{text}");
    assert!(text.contains(&commit), "{text}");
    assert!(text.contains("greenroom_cycles_total{"), "{text}");
    assert!(text.contains("greenroom_paused{environment=\"solo\"} 0"), "{text}");
    // Disk used per area: the build cache holds ogr's build, so it is not empty.
    let builds = text
        .lines()
        .find_map(|l| l.strip_prefix("greenroom_disk_bytes{area=\"builds\"} "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("greenroom_disk_bytes for builds");
    assert!(builds > 0, "{text}");

    // OpenMetrics text (what prometheus-client writes) ends with `# EOF`.
    assert!(text.trim_end().ends_with("# EOF"), "{text}");

    // A real Prometheus scrapes the server.
    let dir = sb.root.join("prometheus");
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: greenroom\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .expect("prometheus config");
    let _prom = Killed(
        Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let query = format!(
        "http://127.0.0.1:{prom_port}/api/v1/query?query=greenroom_deployed_info%7Benvironment%3D%22solo%22%7D"
    );
    let result = wait_until("Prometheus to have scraped greenroom_deployed_info", || {
        let v = http_get(&query).filter(|(c, _)| *c == 200)?.1;
        let v: serde_json::Value = serde_json::from_str(&v).ok()?;
        v["data"]["result"].as_array().filter(|r| !r.is_empty()).cloned()
    });
    assert_eq!(result.len(), 1, "{result:?}");
    assert_eq!(result[0]["metric"]["component"], "ogr");
    assert_eq!(result[0]["metric"]["commit"], commit.as_str());
    assert_eq!(result[0]["value"][1], "1");
    server.kill9();
    sb.ok(&["stop", "--env", "solo"]);
}
