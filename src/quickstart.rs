//! `greenroom quickstart`: a sandbox that shows the core deploy path end to
//! end on the embedded default, with nothing to set up.
//!
//! It creates three sample components (named after seed 001's repositories)
//! in local git repositories, each with open "pull request" refs — one of
//! which breaks its health check — writes a `greenroom.toml`, deploys the
//! `stg` base, deploys a composition of two PRs from two repositories, and
//! prints what runs and what to try next. A sandbox left from an earlier
//! run is stopped and replaced.

use crate::app::App;
use crate::engine::{self, DeployRequest};
use crate::progress::Human;
use crate::status;
use anyhow::Context;
use greenroom_core::compose::{self, Request};
use greenroom_core::config;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Port of the sandbox's `greenroom serve`.
pub const SERVER_PORT: u16 = 28080;

/// The sample components: name, depends_on, and the PR each repository has.
pub const SAMPLES: &[(&str, &[&str])] = &[
    ("ogr", &[]),
    ("packit-service", &["ogr"]),
    ("dashboard", &["packit-service"]),
];

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=greenroom quickstart",
            "-c",
            "user.email=quickstart@greenroom.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .with_context(|| format!("cannot run git {}", args.join(" ")))?;
    if !out.status.success() {
        anyhow::bail!(
            "git {} failed in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Creates a sample repository with a `main` branch, a `stable` branch and
/// a PR ref `refs/pull/N/head`; `broken` makes that PR fail its health check.
pub fn make_repo(dir: &Path, name: &str, pr: u64, broken: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    git(dir, &["init", "-q"])?;
    write(
        &dir.join("README.md"),
        &format!("# {name}\n\nA sample component of the greenroom quick start.\n"),
    )?;
    write(&dir.join("VERSION"), "1.0.0\n")?;
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", &format!("{name}: first version")])?;
    git(dir, &["tag", "v1.0.0"])?;
    git(dir, &["branch", "stable"])?;
    write(&dir.join("VERSION"), "1.1.0\n")?;
    git(dir, &["commit", "-q", "-am", &format!("{name}: 1.1.0")])?;
    // The pull request: a branch that is then exposed as refs/pull/N/head.
    git(dir, &["checkout", "-q", "-b", &format!("pr-{pr}")])?;
    if broken {
        write(&dir.join("BROKEN"), "this change breaks the health check\n")?;
        git(dir, &["add", "BROKEN"])?;
        git(
            dir,
            &["commit", "-q", "-m", &format!("{name}: a change that breaks /healthz")],
        )?;
    } else {
        write(&dir.join("VERSION"), "1.2.0-pr\n")?;
        git(
            dir,
            &[
                "commit",
                "-q",
                "-am",
                &format!("{name}: the change under review in PR #{pr}"),
            ],
        )?;
    }
    let head = git(dir, &["rev-parse", "HEAD"])?;
    git(dir, &["update-ref", &format!("refs/pull/{pr}/head"), &head])?;
    git(dir, &["checkout", "-q", "main"])?;
    git(dir, &["branch", "-q", "-D", &format!("pr-{pr}")])?;
    Ok(())
}

/// A single-quoted shell word (for the binary path written into the config).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The quick start's API scenario matrix (seed 004): register, verify,
/// request a job and delete a runner of every type, fresh and stale, on the
/// sample `ogr` (3 x 2 combinations x 4 steps). `ogr` has a planted defect
/// for one combination (`sample.rs`) that the matrix catches; a file
/// `RUNNER_FK_FIX` in its repository fixes it.
pub const RUNNER_MATRIX: &str = r#"
# An API scenario matrix (seed 004): every runner type, fresh and stale, through
# register, verify, request-job and delete: 6 combinations x 4 steps. ogr has a
# planted defect for one combination; commit a file RUNNER_FK_FIX to its main to fix it.
[[suite]]
name = "runner-matrix"
kind = "http-matrix"
tier = "non-blocking"
component = "ogr"

[suite.axes]
runner_type = ["instance_type", "group_type", "project_type"]
age = ["fresh", "stale"]

[[suite.step]]
name = "register"
method = "POST"
path = "/api/v4/runners"
body = '{"runner_type": "{runner_type}", "age": "{age}"}'
capture = { runner_token = "/token" }
expect = { status = 201, matches = { "/token" = "^glrt-", "/id" = "^[0-9]+$" }, latency_ms = 2000 }

[[suite.step]]
name = "verify"
method = "POST"
path = "/api/v4/runners/verify"
body = '{"token": "{runner_token}"}'
expect = { status = 200, json = { "/status" = "online", "/runner_type" = "{runner_type}" } }

[[suite.step]]
name = "request-job"
method = "POST"
path = "/api/v4/jobs/request"
body = '{"token": "{runner_token}"}'
expect = { status = [201, 204] }

[[suite.step]]
name = "delete"
method = "DELETE"
path = "/api/v4/runners?token={runner_token}"
expect = { status = 204 }
"#;

/// The sandbox config: the sample components on the process driver.
pub fn sample_config(exe: &Path, port_base: u16) -> String {
    let run = shell_quote(&exe.display().to_string());
    let mut s = format!(
        "# greenroom quick start: three sample components from local git repositories.\n\
         # Try: greenroom --config greenroom.toml status\n\n\
         port_base = {port_base}\n\n\
         [server]\n\
         listen = \"127.0.0.1:{SERVER_PORT}\"\n\n\
         [github]\n\
         webhook_secret = \"file:.webhook-secret\"\n\n\
         # You, for the dashboard and the API: sign in at the server's / with the token in .dashboard-token.\n\
         [[user]]\n\
         name = \"you\"\n\
         token = \"file:.dashboard-token\"\n\
         role = \"admin\"\n\n\
         # Short waits so the demo shows a whole cycle in seconds (defaults: settle 5m, cooldown 30m).\n\
         [policy]\n\
         settle = \"3s\"\n\
         cooldown = \"5s\"\n"
    );
    for (name, deps) in SAMPLES {
        let deps: Vec<String> = deps.iter().map(|d| format!("\"{d}\"")).collect();
        s.push_str(&format!(
            "\n[[component]]\n\
             name = \"{name}\"\n\
             repo = \"repos/{name}\"\n\
             channels = {{ stg = \"main\", prod = \"tag:v*\" }}\n\
             build = \"printf '%s\\\\n' \\\"$GREENROOM_COMMIT\\\" > .greenroom-built\"\n\
             run = \"{run} sample-service\"\n\
             health = \"http://127.0.0.1:{{port}}/healthz\"\n\
             health_timeout = \"10s\"\n\
             url = \"http://127.0.0.1:{{port}}/\"\n\
             depends_on = [{}]\n\
             paths = [\"**\"]\n\
             github = \"greenroom-sandbox/{name}\"\n",
            deps.join(", "),
            run = run.replace('\\', "\\\\").replace('"', "\\\"")
        ));
    }
    s.push_str(
        "\n[[environment]]\n\
         name = \"staging\"\n\
         lease_ttl = \"2h\"\n\
         [environment.vars]\n\
         BOT_ACCOUNT = \"greenroom-bot-{environment}\"\n\
         \n[[environment]]\n\
         name = \"dev\"\n\
         slots = 2\n\
         lease_ttl = \"1h\"\n\
         [environment.vars]\n\
         BOT_ACCOUNT = \"greenroom-bot-dev-{slot}\"\n",
    );
    s.push_str(RUNNER_MATRIX);
    s
}

/// Runs the quick start in `dir`; returns the exit status.
pub async fn run(dir: &Path) -> anyhow::Result<i32> {
    let started = std::time::Instant::now();
    let dir = absolute(dir)?;
    let cfg_path = dir.join("greenroom.toml");
    if cfg_path.exists() {
        eprintln!("stopping the previous sandbox in {}", dir.display());
        stop_sandbox(&dir).await?;
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    eprintln!("creating sample repositories in {}", dir.join("repos").display());
    for (i, (name, _)) in crate::quickstart::SAMPLES.iter().enumerate() {
        let pr = i as u64 + 1;
        make_repo(&dir.join("repos").join(name), name, pr, *name == "dashboard")?;
    }
    let exe = std::env::current_exe().context("cannot find greenroom's own executable")?;
    write(&cfg_path, &sample_config(&exe, 20_000))?;
    write(&dir.join(".webhook-secret"), &new_secret())?;
    write(&dir.join(".dashboard-token"), &new_secret())?;
    eprintln!("wrote {}", cfg_path.display());

    let cfg = config::load(&cfg_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = App::open(cfg, Some("quickstart".into())).await?;
    let reporter = Human::new();

    eprintln!("\n== 1. deploy the stg base to staging: greenroom deploy --env staging");
    let base = deploy(&app, &reporter, &[]).await?;
    print!("{}", crate::cli::render_cycle(&base, app.now()));

    eprintln!(
        "\n== 2. deploy two pull requests from two repositories: greenroom deploy --env staging ogr=1 packit-service=2"
    );
    let prs = deploy(&app, &reporter, &["ogr=1", "packit-service=2"]).await?;
    print!("{}", crate::cli::render_cycle(&prs, app.now()));

    eprintln!("\n== 3. what runs now: greenroom status --env staging");
    print!(
        "{}",
        status::render_status(&status::status(&app, Some("staging")).await?)
    );
    eprintln!("\n== 4. start the server in the background: greenroom --config greenroom.toml serve");
    let server = start_server(&app, &dir, &exe, &cfg_path).await;
    match &server {
        Ok(url) => println!(
            "greenroom serve runs at {url} (log: {}). It follows staging's `stg` refs: its first full cycle puts \
             `main` back on staging. `greenroom quickstart --push` pushes to a sample repository and sends the \
             signed GitHub webhook.\nThe dashboard: {url}/ (sign in with the token in {}).",
            dir.join("serve.log").display(),
            dir.join(".dashboard-token").display()
        ),
        Err(e) => eprintln!("warning: the server did not start: {e:#}"),
    }
    if let Some(m) = base.suites.iter().find(|r| r.name == "runner-matrix") {
        let first = m.reason.lines().next().unwrap_or("");
        // Why it ran is in the cycle's report above; here, what it caught.
        let first = first.split(" (it ran because").next().unwrap_or(first);
        let report = m.junit.as_deref().unwrap_or("(no report)");
        if m.result == "failed" {
            println!(
                "\nthe API scenario matrix `runner-matrix` (non-blocking, so the cycle still succeeded) caught a \
                 defect planted in ogr: {first}\n  its JUnit report, with the full request and response: {report}\n  \
                 to see the fix pass: touch {repos}/ogr/RUNNER_FK_FIX && git -C {repos}/ogr add RUNNER_FK_FIX && git -C {repos}/ogr commit -q -m 'fix the runner FK' \
                 && greenroom --config {c} deploy --env staging",
                repos = dir.join("repos").display(),
                c = cfg_path.display(),
            );
        } else {
            println!("\nthe API scenario matrix `runner-matrix`: {} ({first})", m.result);
        }
    }
    let ok = base.ok() && prs.ok() && server.is_ok();
    let c = cfg_path.display();
    println!(
        "\nquick start {} in {:.1}s. Try next (each with --config {c}):\n\
         \x20 greenroom --config {c} deploy --env staging --dry-run dashboard=3   # the plan for a PR that breaks /healthz\n\
         \x20 greenroom --config {c} deploy --env staging dashboard=3             # fails: health check, with the log tail\n\
         \x20 greenroom --config {c} deploy --env staging --only ogr ogr=sha:$(git -C {repos}/ogr rev-parse --short main)\n\
         \x20 greenroom --config {c} deploy --env dev --base prod                 # any free slot of the dev pool\n\
         \x20 greenroom --config {c} history\n\
         \x20 greenroom --config {c} diff {a} {b}\n\
         \x20 greenroom --config {c} logs --env staging ogr\n\
         \x20 greenroom --config {c} lease --env staging --as alice --reason 'debugging #2' --for 1h\n\
         \x20 greenroom --config {c} stop --env staging",
        if ok { "done" } else { "FAILED" },
        started.elapsed().as_secs_f64(),
        repos = dir.join("repos").display(),
        a = base.cycle.unwrap_or(1),
        b = prs.cycle.unwrap_or(2),
    );
    app.store.close().await;
    Ok(if ok { 0 } else { 1 })
}

async fn deploy(app: &App, reporter: &Human, args: &[&str]) -> anyhow::Result<engine::CycleReport> {
    let overrides = args
        .iter()
        .map(|a| compose::parse_override(a))
        .collect::<Result<Vec<_>, _>>()?;
    let text = if args.is_empty() {
        "--base stg".to_string()
    } else {
        format!("--base stg {}", args.join(" "))
    };
    engine::deploy(
        app,
        &DeployRequest {
            env: "staging".into(),
            request: Request {
                base: "stg".into(),
                overrides,
                only: vec![],
                skip: vec![],
            },
            text,
            reason: Some("quick start".into()),
            // Leave staging free for the commands the user tries next.
            release_after: true,
            ..Default::default()
        },
        reporter,
    )
    .await
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir().context("no working directory")?.join(p))
    }
}

/// Stops a sandbox: its server, then everything its environments run.
pub async fn stop_sandbox(dir: &Path) -> anyhow::Result<()> {
    stop_server(dir).await;
    let cfg_path = dir.join("greenroom.toml");
    if let Ok(cfg) = config::load(&cfg_path)
        && let Ok(app) = App::open(cfg, Some("quickstart".into())).await
    {
        for inst in app.config.instances() {
            if !app.store.deployed(&inst.name).await?.is_empty() {
                // Take over whatever holds it: this is our own sandbox.
                let _ = crate::leasing::release(&app, &inst.name, true).await;
                let _ = engine::stop(&app, &inst.name, false, &crate::progress::Silent).await;
            }
        }
        app.store.close().await;
    }
    Ok(())
}

/// `greenroom quickstart --stop`.
pub async fn stop(dir: &Path) -> anyhow::Result<i32> {
    let dir = absolute(dir)?;
    if !dir.join("greenroom.toml").exists() {
        return Err(crate::error::input(format!("no sandbox in {}", dir.display())));
    }
    stop_sandbox(&dir).await?;
    println!(
        "stopped the sandbox's server and everything it ran ({} is kept)",
        dir.display()
    );
    Ok(0)
}

/// A fresh webhook secret for the sandbox (not for production use: it only
/// has to differ between sandboxes).
fn new_secret() -> String {
    let mut b = [0u8; 32];
    if getrandom::fill(&mut b).is_ok() {
        return b.iter().map(|b| format!("{b:02x}")).collect();
    }
    // No randomness from the system: a digest of what differs per run.
    let seed = format!(
        "{:?}{}{:?}",
        std::time::SystemTime::now(),
        std::process::id(),
        std::thread::current().id()
    );
    let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn server_handle_path(dir: &Path) -> PathBuf {
    dir.join(".greenroom").join("serve.json")
}

/// Starts `greenroom serve` for the sandbox as a detached supervised process
/// (the process driver's own mechanism) and waits until it answers.
async fn start_server(app: &App, dir: &Path, exe: &Path, cfg: &Path) -> anyhow::Result<String> {
    let url = format!("http://127.0.0.1:{SERVER_PORT}");
    let driver = greenroom_driver::ProcessDriver::new(app.supervisor.clone());
    let handle = driver
        .start(&greenroom_driver::StartSpec {
            environment: "quickstart".into(),
            component: "serve".into(),
            command: format!(
                "exec {} --config {} serve",
                shell_quote(&exe.display().to_string()),
                shell_quote(&cfg.display().to_string())
            ),
            cwd: dir.to_path_buf(),
            env: vec![],
            secret_values: vec![],
            log_path: dir.join("serve.log"),
            pid_file: None,
        })
        .await
        .context("cannot start greenroom serve")?;
    crate::build::write_atomically(
        &server_handle_path(dir),
        &serde_json::to_vec(&handle).context("encode handle")?,
    )?;
    let (d2, h2) = (driver.clone(), handle.clone());
    let alive = move || d2.state(&h2) == greenroom_driver::ProcState::Running;
    greenroom_driver::wait_healthy(
        &greenroom_driver::HealthCheck::Http {
            url: format!("{url}/healthz"),
        },
        std::time::Duration::from_secs(10),
        &alive,
    )
    .await
    .with_context(|| {
        format!(
            "greenroom serve did not answer; see {}",
            dir.join("serve.log").display()
        )
    })?;
    Ok(url)
}

/// Stops a sandbox's server, if one was started.
async fn stop_server(dir: &Path) {
    let Ok(text) = std::fs::read(server_handle_path(dir)) else {
        return;
    };
    let Ok(handle) = serde_json::from_slice::<greenroom_driver::ProcessHandle>(&text) else {
        return;
    };
    let driver = greenroom_driver::ProcessDriver::new(vec![]);
    let _ = driver.stop(&handle, engine::STOP_GRACE).await;
}

/// `greenroom quickstart --push`: commits to the sample `ogr` repository's
/// `main`, sends the server the signed GitHub push webhook, and shows the
/// decisions and the cycle that follow.
pub async fn push(dir: &Path) -> anyhow::Result<i32> {
    let dir = absolute(dir)?;
    let cfg_path = dir.join("greenroom.toml");
    let cfg =
        config::load(&cfg_path).map_err(|e| crate::error::input(format!("{e}\n(run `greenroom quickstart` first)")))?;
    let app = App::open(cfg, Some("quickstart".into())).await?;
    let secret =
        std::fs::read_to_string(dir.join(".webhook-secret")).context("cannot read the sandbox's webhook secret")?;
    let repo = dir.join("repos").join("ogr");
    let before = git(&repo, &["rev-parse", "HEAD"])?;
    let version = format!("1.1.{}\n", app.now() % 100_000);
    write(&repo.join("VERSION"), &version)?;
    git(
        &repo,
        &["commit", "-q", "-am", "ogr: a change pushed by the quick start"],
    )?;
    let after = git(&repo, &["rev-parse", "HEAD"])?;
    let last_cycle = app.store.cycles(None, 1).await?.first().map(|c| c.id).unwrap_or(0);
    let pushed_at = app.now();
    let body = serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "deleted": false,
        "commits": [{ "id": after, "added": [], "modified": ["VERSION"], "removed": [] }],
        "repository": { "name": "ogr", "full_name": "greenroom-sandbox/ogr" },
        "pusher": { "name": "quickstart" },
    }))
    .context("encode payload")?;
    let delivery = format!("quickstart-{pushed_at}");
    println!(
        "pushed {} to ogr main; sending the signed `push` webhook (delivery {delivery})",
        &after[..12]
    );
    let url = format!("http://127.0.0.1:{SERVER_PORT}/webhooks/github");
    let resp = reqwest::Client::new()
        .post(&url)
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", &delivery)
        .header(
            "X-Hub-Signature-256",
            greenroom_webhook::sign_github(secret.trim().as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .with_context(|| {
            format!("cannot reach the sandbox's server at {url}: is it running? (`greenroom quickstart` starts it)")
        })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    println!("server answered {status}: {text}");
    if !status.is_success() {
        return Ok(1);
    }
    let trigger = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["stored"].as_i64())
        .unwrap_or(-1);
    let serves = |request: &str| {
        request
            .split_once("trigger(s) ")
            .is_some_and(|(_, ids)| ids.split(", ").any(|id| id.trim().parse::<i64>().ok() == Some(trigger)))
    };
    // Wait for the scheduled cycle that serves this trigger (settle 3 s, cooldown 5 s in the sandbox).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let cycle = loop {
        let done = app
            .store
            .cycles(Some(&["staging".to_string()]), 5)
            .await?
            .into_iter()
            .find(|c| c.id > last_cycle && serves(&c.request) && c.result != "running");
        if let Some(c) = done {
            break c;
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "no scheduled cycle finished within 90 s; see {}",
                dir.join("serve.log").display()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    println!("\ndecisions on staging since the push:");
    let mut decisions = app.store.decisions(Some("staging"), 50).await?;
    decisions.retain(|d| d.at >= pushed_at);
    decisions.reverse();
    for d in decisions {
        println!("  {}  {:9} {}", greenroom_core::time::format(d.at), d.kind, d.reason);
    }
    println!("\ncycle {} ({}): {}", cycle.id, cycle.request, cycle.result);
    print!(
        "{}",
        status::render_status(&status::status(&app, Some("staging")).await?)
    );
    let runs = app
        .store
        .deployed("staging")
        .await?
        .into_iter()
        .any(|d| d.entry.commit.as_deref() == Some(after.as_str()));
    println!(
        "{}",
        if runs {
            "ogr now runs the pushed commit."
        } else {
            "ogr does not run the pushed commit (see the decisions)."
        }
    );
    app.store.close().await;
    Ok(if cycle.result == "succeeded" && runs { 0 } else { 1 })
}
