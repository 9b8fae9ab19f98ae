//! Benchmark (not a test): webhook intake under load (issue #3).
//!
//! Signed GitHub `pull_request` deliveries (the published `opened` example
//! payload, a unique `X-GitHub-Delivery` each) are sent over loopback by a
//! load generator in this binary: N keep-alive HTTP/1.1 connections, one
//! request in flight on each, every latency measured from the request's
//! write to the end of its response. Every answer must be 200 with
//! `"stored"`; anything else is counted as an error. Measured in one run:
//!
//! - `baseline`: an axum handler that reads the body and answers 200
//!   without verifying or storing (the HTTP stack's own cost);
//! - `verify+parse`: verification and parsing as the intake does them, not
//!   stored (what the database adds is the difference to the next line);
//! - `intake only`: `greenroom::server::router` over an `App` in a
//!   temporary state directory, the scheduler's channel drained by a trivial
//!   task (the intake's own cost: verify, parse, commit, answer);
//! - `greenroom (in-process)`: the same with the real scheduler processing
//!   what is stored, as `greenroom serve` runs it;
//! - `greenroom (child process)`: the real binary, `greenroom serve`, so its
//!   resident memory is its own (the load generator is in this process).
//!
//! The config has `[github] webhook_secret = "file:…"` and one component
//! with `github = "Codertocat/Hello-World"` and no environment, so
//! deliveries are stored and recorded but start no cycle. After each
//! storing run the rows in `deliveries` are counted: they must equal the
//! successes (each answer came after its own commit).
//!
//! Also prints the simulator's median time to feedback for a 9-repository
//! trace under seed 002's default policy against the 8-hour baseline.
//!
//! Goals from issue #3: at least 2,000 stored deliveries/s with p99 under
//! 20 ms on a 2-core machine, idle resident memory under 30 MiB.
//! Run: `cargo bench --bench webhooks` (`-- --connections 32 --seconds 5
//! --warmup 1`). Everything runs on 127.0.0.1 and is bounded in time; the
//! child server is stopped even if the benchmark panics.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use greenroom::app::App;
use greenroom::server::{Shared, router, scheduler};
use greenroom_core::policy::PolicyConfig;
use greenroom_core::simulate::{SimModel, SimReport, baseline_every, comparison_table, generate_trace, simulate};
use greenroom_webhook::Forge;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const SECRET: &str = "bench-webhook-secret-7d1c2a";
const PAYLOAD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/webhook/tests/fixtures/github/pull_request/opened.payload.json"
);
/// No single request may take longer than this; the run is bounded.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the scheduler to process what was stored.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
const MIB: f64 = 1024.0 * 1024.0;

struct Options {
    connections: usize,
    warmup: Duration,
    measure: Duration,
}

fn options() -> Options {
    let arg = |name: &str| -> Option<u64> {
        std::env::args()
            .skip_while(|a| a != name)
            .nth(1)
            .and_then(|v| v.parse().ok())
    };
    Options {
        connections: arg("--connections").unwrap_or(32).clamp(1, 1024) as usize,
        warmup: Duration::from_secs(arg("--warmup").unwrap_or(1).min(60)),
        measure: Duration::from_secs(arg("--seconds").unwrap_or(5).clamp(1, 120)),
    }
}

// -- the load generator --------------------------------------------------

/// What every connection sends: the same body and signature (GitHub signs
/// the body only), a delivery id of its own per request.
struct Load {
    path: &'static str,
    body: Vec<u8>,
    signature: String,
}

#[derive(Default)]
struct Outcome {
    /// Successful answers (200 + "stored"), warm-up included.
    ok: u64,
    /// Everything else: other statuses, bodies, I/O errors, timeouts.
    errors: u64,
    first_error: Option<String>,
    /// Latencies (µs) of the successes that ended inside the measured window.
    latencies: Vec<u64>,
}

fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Reads one HTTP/1.1 response with a Content-Length (what axum sends for
/// these handlers) from `s`; leftover bytes stay in `buf`.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(u16, String), String> {
    let mut chunk = [0u8; 16 * 1024];
    let head = loop {
        if let Some(e) = header_end(buf) {
            break e;
        }
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before the response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let (status, length) = {
        let text = String::from_utf8_lossy(&buf[..head]);
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad status line: {text}"))?;
        let mut length = None;
        for line in text.split("\r\n").skip(1) {
            if let Some((k, v)) = line.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                } else if k.trim().eq_ignore_ascii_case("transfer-encoding") {
                    return Err(format!("unsupported transfer-encoding: {}", v.trim()));
                }
            }
        }
        (status, length.ok_or_else(|| format!("no content-length: {text}"))?)
    };
    while buf.len() < head + length {
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed inside the response body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head..head + length]).into_owned();
    buf.drain(..head + length);
    Ok((status, body))
}

/// One connection: requests back to back until `end`.
async fn connection(addr: SocketAddr, load: Arc<Load>, tag: String, warm_end: Instant, end: Instant) -> Outcome {
    let mut out = Outcome::default();
    let mut stream: Option<TcpStream> = None;
    let mut request = Vec::with_capacity(load.body.len() + 512);
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut seq = 0u64;
    while Instant::now() < end {
        let mut s = match stream.take() {
            Some(s) => s,
            None => match tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    buf.clear();
                    s
                }
                other => {
                    out.errors += 1;
                    out.first_error.get_or_insert_with(|| format!("connect: {other:?}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        seq += 1;
        request.clear();
        let _ = write!(
            request,
            "POST {} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: GitHub-Hookshot/bench\r\n\
             Content-Type: application/json\r\nX-GitHub-Event: pull_request\r\n\
             X-GitHub-Delivery: {tag}-{seq:09}\r\nX-Hub-Signature-256: {}\r\n\
             Content-Length: {}\r\n\r\n",
            load.path,
            load.signature,
            load.body.len()
        );
        request.extend_from_slice(&load.body);
        let started = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            s.write_all(&request).await.map_err(|e| format!("write: {e}"))?;
            read_response(&mut s, &mut buf).await
        })
        .await;
        let done = Instant::now();
        match answer {
            Ok(Ok((200, body))) if body.contains("\"stored\"") => {
                out.ok += 1;
                if done >= warm_end && done <= end {
                    out.latencies
                        .push(u64::try_from(done.duration_since(started).as_micros()).unwrap_or(u64::MAX));
                }
                stream = Some(s);
            }
            Ok(Ok((status, body))) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| format!("HTTP {status}: {body}"));
                stream = Some(s);
            }
            Ok(Err(e)) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
            Err(_) => {
                out.errors += 1;
                out.first_error
                    .get_or_insert_with(|| format!("no answer within {REQUEST_TIMEOUT:?}"));
            }
        }
    }
    out
}

/// Runs `connections` connections against `addr` for warm-up + measure.
async fn run_load(addr: SocketAddr, load: &Arc<Load>, tag: &str, o: &Options) -> Outcome {
    let start = Instant::now();
    let warm_end = start + o.warmup;
    let end = warm_end + o.measure;
    let tasks: Vec<_> = (0..o.connections)
        .map(|i| tokio::spawn(connection(addr, load.clone(), format!("{tag}-{i:03}"), warm_end, end)))
        .collect();
    let mut all = Outcome::default();
    for t in tasks {
        match t.await {
            Ok(o) => {
                all.ok += o.ok;
                all.errors += o.errors;
                if all.first_error.is_none() {
                    all.first_error = o.first_error;
                }
                all.latencies.extend(o.latencies);
            }
            Err(e) => {
                all.errors += 1;
                all.first_error.get_or_insert_with(|| format!("load task failed: {e}"));
            }
        }
    }
    all.latencies.sort_unstable();
    all
}

struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

fn figures(o: &Outcome, measure: Duration) -> Figures {
    let v = &o.latencies;
    let ms = |us: u64| us as f64 / 1000.0;
    let rank = |p: usize| -> f64 {
        if v.is_empty() {
            f64::NAN
        } else {
            ms(v[(p * v.len()).div_ceil(100).clamp(1, v.len()) - 1])
        }
    };
    Figures {
        rate: v.len() as f64 / measure.as_secs_f64(),
        p50: rank(50),
        p99: rank(99),
        max: v.last().map(|&u| ms(u)).unwrap_or(f64::NAN),
    }
}

fn print_row(label: &str, o: &Outcome, f: &Figures) {
    println!(
        "{label:<26} {:>7.0} /s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  ok {:>6}  errors {}",
        f.rate, f.p50, f.p99, f.max, o.ok, o.errors
    );
    if let Some(e) = &o.first_error {
        println!("{:<26} first error: {}", "", e.chars().take(300).collect::<String>());
    }
}

// -- memory -------------------------------------------------------------

/// (VmRSS, VmHWM) in bytes of a process, from /proc/PID/status.
fn memory(pid: &str) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kib| kib * 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets this process's VmHWM to its current RSS (Linux >= 4.0); false
/// if the kernel refused.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

// -- servers ------------------------------------------------------------

fn write_config(dir: &Path, state: &str, secret_file: &Path) -> PathBuf {
    let text = format!(
        "state_dir = \"{state}\"\n\n[github]\nwebhook_secret = \"file:{}\"\n\n\
         [[component]]\nname = \"hello-world\"\nrepo = \"https://github.com/Codertocat/Hello-World.git\"\n\
         github = \"Codertocat/Hello-World\"\nrun = \"true\"\n",
        secret_file.display()
    );
    let path = dir.join(format!("{state}.toml"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

async fn listen() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1: {e}"));
    let a = l.local_addr().unwrap_or_else(|e| panic!("local address: {e}"));
    (l, a)
}

fn spawn_server(listener: TcpListener, app: Router) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("server failed: {e}");
        }
    })
}

/// Answers 200 without verifying or storing (it reads the whole body, as the
/// intake does).
async fn baseline(headers: HeaderMap, body: Bytes) -> (StatusCode, Json<serde_json::Value>) {
    let id = headers
        .get("x-github-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        StatusCode::OK,
        Json(serde_json::json!({ "delivery": id, "stored": 0, "bytes": body.len() })),
    )
}

/// Verifies and parses like the intake, then answers without storing.
async fn verify_parse(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<serde_json::Value>) {
    if let Err(e) = s.verifier.verify(Forge::Github, &headers, &body) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": e.to_string() })),
        );
    }
    match greenroom_webhook::parse(Forge::Github, &headers, &body) {
        Ok(d) => (
            StatusCode::OK,
            Json(serde_json::json!({ "delivery": d.id, "stored": 0 })),
        ),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e.to_string() })),
        ),
    }
}

/// The child `greenroom serve`; stopped (SIGTERM, then SIGKILL) when dropped,
/// panics included.
struct ChildServer {
    child: Child,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn healthy(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        read_response(&mut s, &mut buf).await
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok((200, _)))
    )
}

// -- the database -------------------------------------------------------

/// Rows in `deliveries` by outcome, read with the sqlite3 CLI when it is
/// installed (cheap), else through the store (reads every row).
async fn count_rows(db: &Path) -> Vec<(String, u64)> {
    let out = tokio::process::Command::new("sqlite3")
        .arg("-readonly")
        .arg(db)
        .arg("SELECT outcome, count(*) FROM deliveries GROUP BY outcome ORDER BY outcome")
        .output()
        .await;
    if let Ok(out) = out
        && out.status.success()
    {
        return String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('|'))
            .filter_map(|(o, n)| Some((o.to_string(), n.trim().parse().ok()?)))
            .collect();
    }
    let store = greenroom_store::Store::open(db)
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", db.display()));
    let rows = store
        .deliveries(i64::MAX)
        .await
        .unwrap_or_else(|e| panic!("cannot read deliveries: {e}"));
    store.close().await;
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    for r in rows {
        *by.entry(r.outcome).or_default() += 1;
    }
    by.into_iter().collect()
}

fn total(rows: &[(String, u64)]) -> u64 {
    rows.iter().map(|(_, n)| n).sum()
}

fn unprocessed(rows: &[(String, u64)]) -> u64 {
    rows.iter().filter(|(o, _)| o == "accepted").map(|(_, n)| n).sum()
}

/// Waits (bounded) until the scheduler has processed every stored delivery;
/// how long that took, or None if it did not finish within `limit`.
async fn drain_time(db: &Path, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if unprocessed(&count_rows(db).await) == 0 {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn report_rows(label: &str, o: &Outcome, rows: &[(String, u64)]) {
    let n = total(rows);
    let by: Vec<String> = rows.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "{label:<26} rows in deliveries {n} = successes {}: {}  ({})",
        o.ok,
        if n == o.ok { "yes" } else { "NO" },
        by.join(", ")
    );
}

fn goal(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// An `App` in `dir/state` and the handlers' `Shared`, built as
/// `greenroom::server::serve` builds them; the scheduler's channel is the
/// caller's to run or drain.
async fn open_app(
    dir: &Path,
    state: &str,
    secret_file: &Path,
) -> (
    Arc<App>,
    Arc<Shared>,
    mpsc::UnboundedReceiver<scheduler::Work>,
    mpsc::UnboundedSender<scheduler::Work>,
) {
    let config_path = write_config(dir, state, secret_file);
    let config = greenroom_core::config::load(&config_path).unwrap_or_else(|e| panic!("config: {e}"));
    let app = Arc::new(
        App::open(config, Some("bench".into()))
            .await
            .unwrap_or_else(|e| panic!("cannot open the app: {e:#}")),
    );
    let verifier = greenroom::server::verifier(&app).unwrap_or_else(|e| panic!("verifier: {e:#}"));
    let users = greenroom::server::api::Users::load(&app.config).unwrap_or_else(|e| panic!("users: {e:#}"));
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        app: app.clone(),
        verifier,
        work: tx.clone(),
        users,
    });
    (app, shared, rx, tx)
}

// -- main ---------------------------------------------------------------

fn main() {
    let o = options();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    rt.block_on(bench(&o));
    rt.shutdown_timeout(Duration::from_secs(5));
    print_simulation();
}

async fn bench(o: &Options) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = tmp.path();
    let secret_file = dir.join("github-secret");
    std::fs::write(&secret_file, SECRET).unwrap_or_else(|e| panic!("cannot write the secret: {e}"));
    let body = std::fs::read(PAYLOAD).unwrap_or_else(|e| panic!("cannot read {PAYLOAD}: {e}"));
    let load = Arc::new(Load {
        path: "/webhooks/github",
        signature: greenroom_webhook::sign_github(SECRET.as_bytes(), &body),
        body,
    });
    println!(
        "webhook intake: signed pull_request deliveries of {} bytes, {} keep-alive connections, \
         {}s warm-up + {}s measured per server, {} CPUs",
        load.body.len(),
        o.connections,
        o.warmup.as_secs(),
        o.measure.as_secs(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );

    // In process: the real router and scheduler over an App, and the baselines.
    let (app, shared, rx, tx) = open_app(dir, "state-inprocess", &secret_file).await;
    let db = app.paths.database();
    let sched = tokio::spawn(scheduler::run(app.clone(), rx, tx));
    let (l, store_addr) = listen().await;
    let store_server = spawn_server(l, router(shared.clone()));
    // The intake alone: same router, the scheduler's channel drained by a trivial task.
    let (intake_app, intake_shared, mut intake_rx, _intake_tx) = open_app(dir, "state-intake", &secret_file).await;
    let intake_db = intake_app.paths.database();
    let drain = tokio::spawn(async move { while intake_rx.recv().await.is_some() {} });
    let (l, intake_addr) = listen().await;
    let intake_server = spawn_server(l, router(intake_shared));
    let (l, base_addr) = listen().await;
    let base_server = spawn_server(l, Router::new().route("/webhooks/github", post(baseline)));
    let (l, vp_addr) = listen().await;
    let vp_server = spawn_server(
        l,
        Router::new()
            .route("/webhooks/github", post(verify_parse))
            .with_state(shared.clone()),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle_in, _) = memory("self");

    let peak_ok = reset_peak();
    let base = run_load(base_addr, &load, "base", o).await;
    let (_, base_hwm) = memory("self");
    reset_peak();
    let vp = run_load(vp_addr, &load, "vp", o).await;
    reset_peak();
    let intake = run_load(intake_addr, &load, "intake", o).await;
    let (_, intake_hwm) = memory("self");
    intake_server.abort();
    drain.abort();
    intake_app.store.close().await;
    let rows_intake = count_rows(&intake_db).await;
    reset_peak();
    let stored = run_load(store_addr, &load, "store", o).await;
    let (_, store_hwm) = memory("self");
    let rows_in = count_rows(&db).await;
    let drained_in = drain_time(&db, DRAIN_LIMIT).await;
    store_server.abort();
    base_server.abort();
    vp_server.abort();
    sched.abort();
    app.store.close().await;

    println!("\nsustained rate and latency (write of the request to the end of the response):");
    let fb = figures(&base, o.measure);
    let fv = figures(&vp, o.measure);
    let fs = figures(&stored, o.measure);
    print_row("baseline (no store)", &base, &fb);
    print_row("verify+parse (no store)", &vp, &fv);
    let fi = figures(&intake, o.measure);
    print_row("intake only (in-process)", &intake, &fi);
    report_rows("intake only (in-process)", &intake, &rows_intake);
    print_row("greenroom (in-process)", &stored, &fs);
    report_rows("greenroom (in-process)", &stored, &rows_in);

    // A separate process: the real binary, its own memory.
    let child_config = write_config(dir, "state-child", &secret_file);
    let port = {
        let (l, a) = listen().await;
        drop(l);
        a.port()
    };
    let child_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap_or_else(|e| panic!("cannot create the log: {e}"));
    let log2 = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
    let child = Command::new(env!("CARGO_BIN_EXE_greenroom"))
        .arg("--config")
        .arg(&child_config)
        .args(["serve", "--listen", &child_addr.to_string()])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start greenroom serve: {e}"));
    let mut server = ChildServer { child };
    let pid = server.child.id().to_string();
    let up = Instant::now();
    while !healthy(child_addr).await {
        let exited = server.child.try_wait().ok().flatten();
        if exited.is_some() || up.elapsed() > Duration::from_secs(30) {
            panic!(
                "greenroom serve did not become healthy ({exited:?}):\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let startup = up.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle_child, idle_child_hwm) = memory(&pid);
    let remote = run_load(child_addr, &load, "child", o).await;
    let (after_child, peak_child) = memory(&pid);
    let child_db = dir.join("state-child").join("state.db");
    let rows_child = count_rows(&child_db).await;
    let drained_child = drain_time(&child_db, DRAIN_LIMIT).await;
    let (settled_child, _) = memory(&pid);
    drop(server);
    let fc = figures(&remote, o.measure);
    print_row("greenroom (child process)", &remote, &fc);
    report_rows("greenroom (child process)", &remote, &rows_child);
    let drained = |d: Option<Duration>| match d {
        Some(d) => format!("{:.1} s", d.as_secs_f64()),
        None => format!("more than {} s (not drained)", DRAIN_LIMIT.as_secs()),
    };
    println!(
        "scheduler backlog after the load: in-process {} deliveries, drained in {}; child {}, drained in {}",
        unprocessed(&rows_in),
        drained(drained_in),
        unprocessed(&rows_child),
        drained(drained_child)
    );

    // What the scheduler reads per step through a backlog: one page of
    // unprocessed rows. Timed once over the intake-only database's backlog.
    let probe = greenroom_store::Store::open(&intake_db)
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", intake_db.display()));
    let t = Instant::now();
    let backlog = probe
        .unprocessed_deliveries(0, 64)
        .await
        .unwrap_or_else(|e| panic!("unprocessed deliveries: {e}"));
    let took = t.elapsed();
    let bytes: usize = backlog.iter().map(|d| d.body.len()).sum();
    let n = backlog.len();
    drop(backlog);
    probe.close().await;
    println!(
        "one page of Store::unprocessed_deliveries (what the scheduler reads per 64 deliveries), {n} rows: \
         {:.0} ms, {:.0} MiB of bodies",
        took.as_secs_f64() * 1000.0,
        bytes as f64 / MIB
    );

    println!("\nresident memory:");
    println!(
        "child `greenroom serve` (pid {pid}): ready in {} ms; idle {:.1} MiB (peak so far {:.1}); \
         peak under load (VmHWM) {:.1} MiB; {:.1} MiB right after the load, {:.1} MiB after the drain wait",
        startup.as_millis(),
        idle_child / MIB,
        idle_child_hwm / MIB,
        peak_child / MIB,
        after_child / MIB,
        settled_child / MIB
    );
    println!(
        "bench process (servers + load generator): idle {:.1} MiB; peak (VmHWM{}) baseline run {:.1} MiB, \
         intake-only run {:.1} MiB, greenroom run {:.1} MiB",
        idle_in / MIB,
        if peak_ok { ", reset per run" } else { ", since start" },
        base_hwm / MIB,
        intake_hwm / MIB,
        store_hwm / MIB
    );

    let worst = |a: &Figures, b: &Figures| (a.rate.min(b.rate), a.p99.max(b.p99));
    let (rate, p99) = worst(&fs, &fc);
    println!(
        "\ngoals: >= 2,000 stored deliveries/s: {} (in-process {:.0}, child {:.0}; intake only {:.0}); \
         p99 < 20 ms: {} (in-process {:.2}, child {:.2}; intake only {:.2}); idle < 30 MiB: {} (child {:.1} MiB); \
         all answers stored: {}",
        goal(rate >= 2000.0),
        fs.rate,
        fc.rate,
        fi.rate,
        goal(p99 < 20.0),
        fs.p99,
        fc.p99,
        fi.p99,
        goal(idle_child < 30.0 * MIB),
        idle_child / MIB,
        goal(
            stored.errors == 0 && remote.errors == 0 && total(&rows_in) == stored.ok && total(&rows_child) == remote.ok
        )
    );
}

fn print_simulation() {
    let repos = [
        "packit-service",
        "ogr",
        "packit",
        "specfile",
        "dashboard",
        "deployment",
        "tokman",
        "sandcastle",
        "requre",
    ];
    let days = 14;
    let trace = generate_trace(&repos, days, 2);
    let model = SimModel::default();
    let policy = simulate(&trace, &PolicyConfig::default(), &model);
    let every = baseline_every(&trace, Duration::from_secs(8 * 3600), &model);
    let median = |r: &SimReport| r.any_feedback.map(|s| s.median);
    let span = |v: Option<i64>| v.map(greenroom_core::time::format_span).unwrap_or_else(|| "-".into());
    println!(
        "\nsimulator: {} triggers on 9 repositories over {days} days (generated trace, seed 2), default policy",
        trace.len()
    );
    print!("{}", comparison_table(&[policy.clone(), every.clone()]));
    let (p, e) = (median(&policy), median(&every));
    println!(
        "median time to feedback: policy {} vs every 8h {}{}",
        span(p),
        span(e),
        match (p, e) {
            (Some(p), Some(e)) if p > 0 => format!(" ({:.1}x sooner)", e as f64 / p as f64),
            _ => String::new(),
        }
    );
}
