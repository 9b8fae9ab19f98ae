//! Benchmark (not a test), issue #6: an API scenario matrix of 3 runner
//! types x 2 ages x 4 requests, 100 times (an axis `rep` of 100 values:
//! 2,400 requests), driven by greenroom's matrix runner with its bounded
//! concurrency against the local sample service; next to `wrk` on the same
//! service in the same run (the ceiling of the machine and the service,
//! with as many connections); and the cost of writing the JUnit report of
//! all 2,400 cases.
//!
//! The matrix is the quick start's `runner-matrix` (register, verify,
//! request a job, delete), with the planted defect fixed (`RUNNER_FK_FIX`)
//! so every combination makes its four requests. Run: `cargo bench --bench
//! matrix` (`-- --reps N`). Everything runs on 127.0.0.1; the benchmark
//! stops what it started. Without `wrk` installed (Debian package `wrk`)
//! its column says so.

use greenroom_core::config::{SuiteKind, parse};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(38_000)
}

fn wait_for(port: u16) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the sample service did not listen on {port}");
}

fn main() {
    let reps: usize = std::env::args()
        .skip_while(|a| a != "--reps")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("RUNNER_FK_FIX"), "fixed\n").expect("write");
    let port = free_port();
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_greenroom"))
            .args(["sample-service", "--port", &port.to_string()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sample service"),
    );
    wait_for(port);

    // The quick start's matrix with an extra axis of repetitions.
    let reps_axis: Vec<String> = (1..=reps).map(|r| format!("\"{r}\"")).collect();
    let text = format!(
        "[[component]]\nname = \"ogr\"\nrepo = \"r\"\nrun = \"x\"\nurl = \"http://127.0.0.1:{port}/\"\n\
         [[environment]]\nname = \"bench\"\n{}",
        greenroom::quickstart::RUNNER_MATRIX.replace(
            "[suite.axes]\n",
            &format!("[suite.axes]\nrep = [{}]\n", reps_axis.join(", "))
        )
    );
    let cfg = parse(&text, Path::new("bench.toml"), dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let suite = cfg.suites[0].clone();
    let SuiteKind::HttpMatrix(matrix) = &suite.kind else {
        panic!("not a matrix suite")
    };
    let fixtures = greenroom::matrix::Fixtures {
        cwd: dir.path().to_path_buf(),
        env: Vec::new(),
        secrets: Vec::new(),
        log: dir.path().join("matrix.log"),
        timeout: Duration::from_secs(300),
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let base = format!("http://127.0.0.1:{port}");
    // Warm-up: one small run.
    let t = Instant::now();
    let run = rt
        .block_on(greenroom::matrix::run(&suite, matrix, &base, &fixtures))
        .expect("the matrix runs");
    let secs = t.elapsed().as_secs_f64();
    let failed = run.failures.len();
    let t = Instant::now();
    let report = greenroom::matrix::write_junit(&dir.path().join("junit"), &suite.name, &run, secs).expect("report");
    let report_ms = t.elapsed().as_secs_f64() * 1000.0;
    let report_kib = std::fs::metadata(&report).map(|m| m.len() / 1024).unwrap_or(0);

    let wrk = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", matrix.concurrency),
            "-d3s",
            &format!("http://127.0.0.1:{port}/healthz"),
        ])
        .output();
    let wrk_rps = match wrk {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|l| l.starts_with("Requests/sec:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(|v| format!("{v} req/s"))
            .unwrap_or_else(|| "no figure in wrk's output".into()),
        Ok(o) => format!("wrk failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(_) => "wrk is not installed (Debian package wrk)".into(),
    };

    println!(
        "matrix: 3 runner types x 2 ages x 4 requests x {reps} repetitions, concurrency {}",
        matrix.concurrency
    );
    println!("  requests made          {}", run.requests);
    println!("  cases                  {} ({failed} failed)", run.cases.len());
    println!("  wall time              {:.0} ms", secs * 1000.0);
    println!(
        "  greenroom's runner     {:.0} req/s (each request checked, captured, kept for the report)",
        run.requests as f64 / secs
    );
    println!(
        "  wrk, GET /healthz      {wrk_rps} ({} connections, 3 s)",
        matrix.concurrency
    );
    println!("  JUnit report           {report_ms:.1} ms to write, {report_kib} KiB");
    assert_eq!(failed, 0, "the fixed service passes every case: {}", run.summary);
}
