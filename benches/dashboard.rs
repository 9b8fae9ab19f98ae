//! Benchmark (not a test): the dashboard's environments page with 20
//! environments and 10,000 recorded cycles (issue #7).
//!
//! Fills a store through `greenroom_store` (20 environments of three
//! components each, 10,000 finished cycles with two stages each, what runs
//! now recorded per environment), starts the real `greenroom serve` on it,
//! signs in with a `[[user]]` token and requests `/` many times over
//! loopback, measuring time to first byte and the full response (the page
//! is rendered whole before it is sent, so the two are close). Goal: under
//! 50 ms server time.
//!
//! SQLite always; PostgreSQL too when `GREENROOM_BENCH_POSTGRES` holds a
//! `postgres://` URL of an empty, throwaway database.
//! Run: `cargo bench --bench dashboard` (`-- --requests N` for more).

use greenroom_core::lease::HolderProcess;
use greenroom_core::manifest::{Manifest, ManifestComponent};
use greenroom_store::{Deployed, NewCycle, StageRecord, Store};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ENVIRONMENTS: usize = 20;
const CYCLES: usize = 10_000;
const COMPONENTS: [&str; 3] = ["ogr", "packit-service", "dashboard"];
const TOKEN: &str = "bench-token-2f9c7a1e";
const PORT: u16 = 27990;

fn env_name(i: usize) -> String {
    format!("env-{i:02}")
}

fn write_config(dir: &Path, database: Option<&str>) -> std::path::PathBuf {
    let mut s = format!(
        "state_dir = \"{}\"\nport_base = 27000\n\n[server]\nlisten = \"127.0.0.1:{PORT}\"\n",
        dir.join("state").display()
    );
    if database.is_some() {
        s.push_str("database = \"env:GREENROOM_BENCH_DATABASE\"\n");
    }
    s.push_str("\n[[user]]\nname = \"bench\"\ntoken = \"env:GREENROOM_BENCH_TOKEN\"\nrole = \"admin\"\n");
    for c in COMPONENTS {
        s.push_str(&format!(
            "\n[[component]]\nname = \"{c}\"\nrepo = \"{}\"\nrun = \"true\"\n",
            dir.join("repos").join(c).display()
        ));
    }
    for i in 0..ENVIRONMENTS {
        s.push_str(&format!(
            "\n[[environment]]\nname = \"{}\"\nfollows = \"manual\"\n",
            env_name(i)
        ));
    }
    let path = dir.join("greenroom.toml");
    std::fs::write(&path, s).unwrap_or_else(|e| panic!("write config: {e}"));
    path
}

fn commit(i: usize, c: usize) -> String {
    format!("{:040x}", (i * 7 + c + 1) as u128 * 0x9e37_79b9_7f4a_7c15)
}

async fn fill(store: &Store) {
    let hp = HolderProcess {
        host: "bench".into(),
        pid: 1,
        start_time: 1,
    };
    let t0: i64 = 1_700_000_000_000;
    let started = Instant::now();
    for i in 0..CYCLES {
        let env = env_name(i % ENVIRONMENTS);
        let mut comps = BTreeMap::new();
        // A new manifest every 50 cycles of an environment.
        for (k, c) in COMPONENTS.iter().enumerate() {
            comps.insert(
                (*c).to_string(),
                ManifestComponent {
                    origin: "channel:stg".into(),
                    reference: Some("refs/heads/main".into()),
                    commit: Some(commit(i / (ENVIRONMENTS * 50), k)),
                    pr: (k == 0).then_some(614),
                    ..ManifestComponent::default()
                },
            );
        }
        let m = Manifest::new(comps.clone());
        let at = t0 + i as i64 * 60_000;
        store.put_manifest(&m, at).await.unwrap_or_else(|e| panic!("{e}"));
        let id = store
            .create_cycle(&NewCycle {
                environment: &env,
                kind: "deploy",
                manifest: Some(&m.id),
                request: "--base stg ogr=614",
                requested_by: "bench",
                started_at: at,
                process: &hp,
                lease_token: 0,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for (seq, name) in [(1, "resolve"), (2, "deploy")] {
            store
                .add_stage(
                    id,
                    &StageRecord {
                        seq,
                        name: name.into(),
                        component: None,
                        started_at: at,
                        finished_at: at + 500,
                        result: "ok".into(),
                        detail: None,
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let result = if i % 13 == 0 { "failed" } else { "succeeded" };
        store
            .finish_cycle(id, result, None, at + 1000)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if i + ENVIRONMENTS >= CYCLES {
            for (c, entry) in &comps {
                store
                    .set_deployed(&Deployed {
                        environment: env.clone(),
                        component: c.clone(),
                        cycle_id: id,
                        entry: entry.clone(),
                        artifact: None,
                        state: "stopped".into(),
                        pid: None,
                        pid_start: None,
                        log_path: None,
                        status_path: None,
                        port: None,
                        url: None,
                        updated_at: at + 1000,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            store
                .set_environment_manifest(&env, Some(&m.id), id, at + 1000)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    eprintln!("  filled {CYCLES} cycles in {:.1?}", started.elapsed());
}

/// One request: (status, time to first byte, time to the end, bytes).
fn get(path: &str, cookie: &str) -> (u16, Duration, Duration, usize) {
    let mut s = TcpStream::connect(("127.0.0.1", PORT)).unwrap_or_else(|e| panic!("connect: {e}"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n");
    let t = Instant::now();
    s.write_all(req.as_bytes()).unwrap_or_else(|e| panic!("write: {e}"));
    let mut first = [0u8; 1];
    s.read_exact(&mut first).unwrap_or_else(|e| panic!("read: {e}"));
    let ttfb = t.elapsed();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap_or_else(|e| panic!("read: {e}"));
    let full = t.elapsed();
    let text = String::from_utf8_lossy(&rest);
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, ttfb, full, rest.len() + 1)
}

fn login() -> String {
    let mut s = TcpStream::connect(("127.0.0.1", PORT)).unwrap_or_else(|e| panic!("connect: {e}"));
    let body = format!("token={TOKEN}&next=%2F");
    let req = format!(
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap_or_else(|e| panic!("write: {e}"));
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap_or_else(|e| panic!("read: {e}"));
    out.lines()
        .find_map(|l| {
            let l = l.to_ascii_lowercase();
            l.strip_prefix("set-cookie: ")
                .and_then(|c| c.split(';').next())
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no session cookie:\n{out}"))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn run(label: &str, database: Option<&str>, requests: usize) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    for (i, c) in COMPONENTS.iter().enumerate() {
        greenroom::quickstart::make_repo(&dir.path().join("repos").join(c), c, i as u64 + 1, false)
            .unwrap_or_else(|e| panic!("repo: {e}"));
    }
    let config = write_config(dir.path(), database);
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap_or_else(|e| panic!("state dir: {e}"));
    eprintln!("{label}:");
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async {
        let store = match database {
            Some(url) => Store::connect(url).await,
            None => Store::open(&state.join("state.db")).await,
        }
        .unwrap_or_else(|e| panic!("store: {e}"));
        fill(&store).await;
        store.close().await;
    });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_greenroom"));
    cmd.arg("--config")
        .arg(&config)
        .arg("serve")
        .env("GREENROOM_BENCH_TOKEN", TOKEN)
        .env_remove("GREENROOM_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = database {
        cmd.env("GREENROOM_BENCH_DATABASE", url);
    }
    let _server = Server(cmd.spawn().unwrap_or_else(|e| panic!("serve: {e}")));
    let end = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", PORT)).is_err() {
        assert!(Instant::now() < end, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let cookie = login();
    for _ in 0..5 {
        let (status, ..) = get("/", &cookie);
        assert_eq!(status, 200);
    }
    let (mut ttfb, mut full) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..requests {
        let (status, a, b, n) = get("/", &cookie);
        assert_eq!(status, 200);
        ttfb.push(a);
        full.push(b);
        bytes = n;
    }
    let (_, _, hist, _) = get("/cycles", &cookie);
    eprintln!(
        "  GET / ({ENVIRONMENTS} environments, {CYCLES} cycles, {bytes} bytes, {requests} requests): \
         TTFB median {:.1?} p95 {:.1?}; full median {:.1?} p95 {:.1?} (goal < 50ms); /cycles (100 rows) {:.1?}",
        percentile(&mut ttfb, 0.5),
        percentile(&mut ttfb, 0.95),
        percentile(&mut full, 0.5),
        percentile(&mut full, 0.95),
        hist,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let requests = args
        .iter()
        .position(|a| a == "--requests")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    run("SQLite", None, requests);
    match std::env::var("GREENROOM_BENCH_POSTGRES") {
        Ok(url) if url.starts_with("postgres") => run("PostgreSQL", Some(&url), requests),
        _ => eprintln!("PostgreSQL: skipped (set GREENROOM_BENCH_POSTGRES=postgres://… of a throwaway database)"),
    }
}
