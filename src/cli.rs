//! The command-line surface: argument parsing (clap), dispatch, output.
//!
//! Human output by default, one JSON document with `--json`; exit status 0
//! on success, 1 when a cycle or command failed, 2 for bad input (nothing
//! was changed), 3 when the environment is held by someone else. This
//! module only translates: decisions live in the core, work in the engine.

use crate::app::{self, App, Clock};
use crate::client::Client;
use crate::engine::{self, CycleReport, DeployRequest, LeaseReport};
use crate::error::{UserError, input};
use crate::leasing::{self, Ask};
use crate::progress::{Human, Reporter, Silent};
use crate::{quickstart, sample, status};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use greenroom_core::compose::{self, Request};
use greenroom_core::config;
use greenroom_core::lease;
use greenroom_core::time;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// greenroom: compose pull requests from several repositories, build them,
/// deploy them onto a staging environment, and tell people what runs.
#[derive(Parser, Debug)]
#[command(name = "greenroom", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Config file [default: $GREENROOM_CONFIG, else ./greenroom.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Act as this holder (person or process identity) [default: user@host]
    #[arg(long = "as", global = true, value_name = "NAME")]
    pub holder: Option<String>,
    /// Print one machine-readable JSON document instead of human output
    #[arg(long, global = true)]
    pub json: bool,
    /// Send the command to this greenroom server's API instead of working locally
    /// [default: $GREENROOM_SERVER, else `[client] server`]; the token is $GREENROOM_TOKEN or `[client] token`
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "GREENROOM_SERVER",
        conflicts_with = "local"
    )]
    pub server: Option<String>,
    /// Work on the local state directory even when `[client] server` is configured
    #[arg(long, global = true)]
    pub local: bool,
    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Resolve, build and deploy a composition: COMPONENT=REF... over a base channel
    Deploy(DeployArgs),
    /// What runs in each environment: commits, states, leases
    Status(EnvArg),
    /// Past cycles, newest first
    History(HistoryArgs),
    /// Hold an environment: by hand, or while a command runs (`lease --env dev -- ./tests.sh`)
    Lease(LeaseArgs),
    /// Free an environment's lease
    Release(ReleaseArgs),
    /// Pause the scheduled cycles of an environment (triggers are kept, not lost)
    Pause(PauseArgs),
    /// Resume the scheduled cycles of a paused environment
    Resume(EnvArg),
    /// Stop a running cycle before its next step (recorded as cancelled, with who and why)
    Cancel(CancelArgs),
    /// Redeploy a recorded manifest (`previous`, an id, or a version); locks continuous deployment until resumed
    Rollback(RollbackArgs),
    /// Deploy the manifest verified in one environment onto the next, as it is (nothing rebuilt)
    Promote(PromoteArgs),
    /// Every action that changed an environment: who, when, through what, why
    Audit(AuditArgs),
    /// Let a running cycle's stage that waits for an approval (`approval = true`) go on
    Approve(ApproveArgs),
    /// Run a failed cycle's manifest again from its failed stage (or --from another)
    Retry(RetryArgs),
    /// Lift an environment's deploy blockers (freeze windows, firing alerts) for a while (recorded)
    Override(OverrideArgs),
    /// Ephemeral environments from profiles: create, list, destroy
    #[command(subcommand)]
    Env(EnvCommand),
    /// Which components, commits and PRs differ between two cycles or manifests
    Diff(DiffArgs),
    /// Show a component's captured output
    Logs(LogsArgs),
    /// Stop everything an environment runs (recorded as a cycle)
    Stop(StopArgs),
    /// Validate the configuration and say what it defines
    CheckConfig,
    /// Remove old cycles, builds, logs and deliveries per `[retention]` (never what runs now)
    Gc,
    /// Run the server: webhooks in, the scheduling policy, cycles out
    Serve(ServeArgs),
    /// Create a sandbox with three sample repositories, deploy them, and show what to try next
    Quickstart(QuickstartArgs),
    /// Replay a trace of triggers against the configured scheduling policy in virtual time
    Simulate(SimulateArgs),
    /// (internal) the sample HTTP service used by the quick start and tests
    #[command(hide = true)]
    SampleService(SampleArgs),
}

/// `--env`.
#[derive(Args, Debug)]
pub struct EnvArg {
    /// Environment, slot (`dev-2`) or pool (`dev`) [default: every environment]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
}

/// `deploy` arguments.
#[derive(Args, Debug)]
pub struct DeployArgs {
    /// Environment, slot, or pool (any free slot) [default: the first environment in the config]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Base channel for components not named
    #[arg(long, default_value = "stg", value_name = "CHANNEL")]
    pub base: String,
    /// Run a full cycle: every suite of the full cycles, whatever changed
    #[arg(long)]
    pub full: bool,
    /// Deploy only these components; the others keep running what they run
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub only: Vec<String>,
    /// Do not deploy these components; they keep running what they run
    #[arg(long, value_delimiter = ',', value_name = "C")]
    pub skip: Vec<String>,
    /// Print the plan (commits, rebuilds, lease, difference from what runs) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// If the environment is held, wait in line instead of failing
    #[arg(long)]
    pub wait: bool,
    /// Why (recorded with the lease) [default: the request]
    #[arg(long)]
    pub reason: Option<String>,
    /// Free the environment when the cycle ends instead of keeping it for lease_ttl
    #[arg(long)]
    pub release: bool,
    /// COMPONENT=REF: REF is N or pr:N, branch:NAME, sha:HEX, tag:NAME, channel:NAME
    #[arg(value_name = "COMPONENT=REF")]
    pub overrides: Vec<String>,
    /// Deploy the PR to its own preview environment (`pr-REPO-N`, from the
    /// profile with `preview = true`), made or renewed
    #[arg(long, value_name = "REPO#N", conflicts_with_all = ["env", "only", "skip", "dry_run"])]
    pub preview: Option<String>,
}

/// `env` subcommands: ephemeral environments from profiles.
#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// Make an environment from a profile's free slot and deploy it
    Create(EnvCreateArgs),
    /// The ephemeral environments: slot, profile, PR, until when
    List,
    /// Stop an ephemeral environment and free its slot
    Destroy(EnvDestroyArgs),
}

/// `env create` arguments.
#[derive(Args, Debug)]
pub struct EnvCreateArgs {
    /// Its name (lower-case letters, digits, `-`)
    pub name: String,
    /// The profile (a pool with `[environment.profile]`)
    #[arg(long)]
    pub profile: String,
    /// Its life [default: the profile's ttl]
    #[arg(long, value_parser = parse_duration)]
    pub ttl: Option<Duration>,
    /// Why (recorded)
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Queue for a free slot when every slot is in use
    #[arg(long)]
    pub wait: bool,
    /// Versions on top of the profile's
    #[arg(value_name = "COMPONENT=REF")]
    pub overrides: Vec<String>,
}

/// `env destroy` arguments.
#[derive(Args, Debug)]
pub struct EnvDestroyArgs {
    /// Its name
    pub name: String,
    /// Why (recorded)
    #[arg(long, default_value = "destroyed by hand")]
    pub reason: String,
}

/// `history` arguments.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Environment, slot or pool [default: all]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// How many cycles
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
}

/// `lease` arguments.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LeaseArgs {
    /// `extend`
    #[command(subcommand)]
    pub action: Option<LeaseAction>,
    /// Environment, slot, or pool (any free slot) [default: the first environment]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Why
    #[arg(long, default_value = "")]
    pub reason: String,
    /// How long [default: the environment's lease_ttl]
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// If the environment is held, wait in line
    #[arg(long)]
    pub wait: bool,
    /// Command to run while holding the lease; the lease is released after it, and its exit status is ours
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `lease` subcommands.
#[derive(Subcommand, Debug)]
pub enum LeaseAction {
    /// Renew the lease: it ends DURATION from now
    Extend {
        /// Environment instance
        #[arg(long, value_name = "NAME")]
        env: Option<String>,
        /// New time left
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Duration,
    },
}

/// `release` arguments.
#[derive(Args, Debug)]
pub struct ReleaseArgs {
    /// Environment instance [default: the first environment]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Release even if someone else holds it
    #[arg(long)]
    pub force: bool,
}

/// `pause` arguments.
#[derive(Args, Debug)]
pub struct PauseArgs {
    /// Environment [default: the first environment]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Why (shown in status and recorded with the decision)
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// `rollback` arguments.
#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// Environment or slot [default: the first environment]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// `previous` (the last manifest that succeeded there before this one),
    /// a manifest id (prefix), or a version (tag, image tag, commit prefix)
    #[arg(long, value_name = "MANIFEST|previous|VERSION", default_value = "previous")]
    pub to: String,
    /// Why (recorded with the rollback, the pause and the faulty mark)
    #[arg(long)]
    pub reason: Option<String>,
    /// Show what would be deployed, in which order; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Roll back even past an irreversible stage (recorded in the audit trail)
    #[arg(long)]
    pub force: bool,
}

/// `promote` arguments.
#[derive(Args, Debug)]
pub struct PromoteArgs {
    /// The environment the manifest passed verification in
    #[arg(long, value_name = "ENV")]
    pub from: String,
    /// The environment it is deployed to
    #[arg(long, value_name = "ENV")]
    pub to: String,
    /// The cycle of --from whose manifest goes [default: the newest verified one]
    pub cycle: Option<i64>,
    /// Why (recorded with the promotion)
    #[arg(long)]
    pub reason: Option<String>,
    /// Show what would be deployed; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `approve` arguments.
#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The cycle
    pub cycle: i64,
    /// The stage [default: the one the cycle waits on]
    #[arg(long)]
    pub stage: Option<String>,
    /// Why (recorded)
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// `retry` arguments.
#[derive(Args, Debug)]
pub struct RetryArgs {
    /// The failed cycle
    pub cycle: i64,
    /// The stage to start from [default: the stage it failed in]
    #[arg(long, value_name = "STAGE")]
    pub from: Option<String>,
}

/// `override` arguments.
#[derive(Args, Debug)]
pub struct OverrideArgs {
    /// Environment, slot or pool [default: the first environment]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Why (required; recorded)
    #[arg(long, default_value = "")]
    pub reason: String,
    /// For how long
    #[arg(long = "for", value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub duration: Duration,
}

/// `audit` arguments.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Environment, slot or pool [default: all]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// How many actions
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

/// `cancel` arguments.
#[derive(Args, Debug)]
pub struct CancelArgs {
    /// The cycle running on this environment, slot or pool [default: the first environment]
    #[arg(long, value_name = "NAME", conflicts_with = "cycle")]
    pub env: Option<String>,
    /// Why (recorded on the cycle)
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Cycle number
    pub cycle: Option<i64>,
}

/// `diff` arguments.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Cycle number or manifest id
    pub a: String,
    /// Cycle number or manifest id
    pub b: String,
}

/// `logs` arguments.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Environment instance [default: the first environment]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Component
    pub component: String,
    /// Keep printing what it writes
    #[arg(long, short)]
    pub follow: bool,
}

/// `stop` arguments.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Environment instance [default: the first environment]
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// If the environment is held, wait in line
    #[arg(long)]
    pub wait: bool,
}

/// `quickstart` arguments.
#[derive(Args, Debug)]
pub struct QuickstartArgs {
    /// Where to create the sandbox
    #[arg(long, default_value = "greenroom-sandbox")]
    pub dir: PathBuf,
    /// Push a commit to a sample repository of an existing sandbox and send its server the signed webhook
    #[arg(long, conflicts_with = "stop")]
    pub push: bool,
    /// Stop the sandbox's server and everything it runs
    #[arg(long)]
    pub stop: bool,
}

/// `serve` arguments.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on [default: `[server] listen`, else 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

/// `simulate` arguments.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// JSONL trace: one `{"at", "repo", "pr", "kind"}` per line
    #[arg(long, value_name = "FILE", required_unless_present = "generate")]
    pub trace: Option<PathBuf>,
    /// Instead of replaying, print a generated workday trace: REPOS,DAYS (e.g. 9,14)
    #[arg(long, value_name = "REPOS,DAYS")]
    pub generate: Option<String>,
    /// Baselines to compare with: `every:8h`, `every-event` [default: both, every:8h]
    #[arg(long = "baseline", value_name = "BASELINE")]
    pub baselines: Vec<String>,
    /// Modelled build time
    #[arg(long, default_value = "4m", value_parser = parse_duration)]
    pub build: Duration,
    /// Modelled deploy time
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    pub deploy: Duration,
    /// Modelled smoke tests of a partial cycle
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub smoke: Duration,
    /// Modelled full test suites
    #[arg(long, default_value = "90m", value_parser = parse_duration)]
    pub full_tests: Duration,
    /// Modelled drain before a (re)deploy
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub drain: Duration,
}

/// `sample-service` arguments.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Port [default: $PORT]
    #[arg(long, env = "PORT")]
    pub port: u16,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. 30m, 2h"))
}

fn load_config(cli: &Cli) -> anyhow::Result<config::Config> {
    let path = app::config_path(cli.config.as_deref());
    config::load(&path).map_err(|e| input(e.to_string()))
}

async fn open(cli: &Cli) -> anyhow::Result<App> {
    let cfg = load_config(cli)?;
    App::open(cfg, cli.holder.clone()).await
}

async fn default_env(app: &App, env: Option<&str>) -> anyhow::Result<String> {
    match env {
        // An ephemeral environment's name means the slot it occupies.
        Some(e) => crate::ephemeral::resolve(app, e).await,
        None => app
            .config
            .environments
            .first()
            .map(|e| e.name.clone())
            .ok_or_else(|| input("the configuration defines no [[environment]]")),
    }
}

/// Output of `pause` and `resume` (local or through a server).
fn print_pause(cli: &Cli, env: &str, p: &status::PauseView) -> anyhow::Result<()> {
    if cli.json {
        return print_json(p);
    }
    if p.paused {
        println!(
            "{env}: scheduled cycles paused by {} (triggers are kept until `greenroom resume --env {env}`)",
            p.by
        );
    } else {
        println!("{env}: scheduled cycles resumed by {}", p.by);
    }
    Ok(())
}

/// Output of `cancel` (local or through a server).
fn print_cancelled(cli: &Cli, done: &[crate::cancelling::Cancelled]) -> anyhow::Result<()> {
    if cli.json {
        return print_json(&done);
    }
    for c in done {
        println!(
            "cycle {} on {}: cancel requested by {}; it stops before its next step",
            c.cycle, c.environment, c.by
        );
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v).context("encode JSON")?);
    Ok(())
}

/// The server to talk to, if the command should go to one: `--server`,
/// `GREENROOM_SERVER`, or `[client] server` (unless `--local`).
fn remote(cli: &Cli) -> anyhow::Result<Option<Client>> {
    if cli.local {
        return Ok(None);
    }
    let path = app::config_path(cli.config.as_deref());
    // The config is optional for a client: `--server URL` alone is enough.
    let cfg = if path.exists() || cli.config.is_some() {
        Some(config::load(&path).map_err(|e| input(e.to_string()))?)
    } else {
        None
    };
    let Some(server) = cli
        .server
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| cfg.as_ref().and_then(|c| c.client.server.clone()))
    else {
        return Ok(None);
    };
    if cli.holder.is_some() {
        return Err(input(
            "--as does not apply with a server: it knows you by your API token (GREENROOM_TOKEN or [client] token)",
        ));
    }
    let token = match std::env::var("GREENROOM_TOKEN") {
        Ok(t) if !t.is_empty() => Some(t),
        _ => match cfg.as_ref().and_then(|c| c.client.token.as_ref()) {
            Some(r) => Some(crate::resolve::read_secret(r).map_err(|e| input(format!("client.token: {e}")))?),
            None => None,
        },
    };
    Ok(Some(Client::new(&server, token)?))
}

/// Posts a request that runs a cycle on the server and prints its report
/// as the local command would; the exit status says how it went.
async fn remote_cycle(cli: &Cli, c: &Client, path: &str, body: &Value) -> anyhow::Result<i32> {
    let (_, report): (_, CycleReport) = c.post(path, body, &[reqwest::StatusCode::UNPROCESSABLE_ENTITY]).await?;
    if cli.json {
        print_json(&report)?;
    } else {
        print!("{}", render_cycle(&report, crate::app::SystemClock.now()));
    }
    Ok(if report.ok() { 0 } else { 1 })
}

/// The environment a remote command acts on: `--env`, else the first one
/// the server shows.
async fn remote_env(c: &Client, env: Option<&str>) -> anyhow::Result<String> {
    if let Some(e) = env {
        return Ok(e.to_string());
    }
    c.environment_names()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| input(format!("the server at {} shows you no environment", c.base())))
}

/// Runs a command through a server's API; `None` when it has no API counterpart.
async fn run_remote(cli: &Cli, c: &Client) -> anyhow::Result<Option<i32>> {
    use crate::client::segment;
    use serde_json::json;
    let code = match &cli.command {
        Command::Deploy(a) => {
            if a.wait {
                return Err(input(
                    "--wait is not available through a server yet: the API answers 409 when the environment is held",
                ));
            }
            let env = remote_env(c, a.env.as_deref()).await?;
            let body = json!({
                "base": a.base, "overrides": a.overrides, "only": a.only, "skip": a.skip,
                "dry_run": a.dry_run, "reason": a.reason,
            });
            remote_cycle(cli, c, &format!("/environments/{}/deploy", segment(&env)), &body).await?
        }
        Command::Rollback(a) => {
            let env = remote_env(c, a.env.as_deref()).await?;
            let body = json!({"to": a.to, "reason": a.reason, "dry_run": a.dry_run, "force": a.force});
            remote_cycle(cli, c, &format!("/environments/{}/rollback", segment(&env)), &body).await?
        }
        Command::Promote(a) => {
            let body = json!({"from": a.from, "cycle": a.cycle, "reason": a.reason, "dry_run": a.dry_run});
            remote_cycle(cli, c, &format!("/environments/{}/promote", segment(&a.to)), &body).await?
        }
        Command::Approve(a) => {
            let (_, done): (_, crate::approving::Approved) = c
                .post(
                    &format!("/cycles/{}/approve", a.cycle),
                    &json!({"stage": a.stage, "reason": a.reason}),
                    &[],
                )
                .await?;
            print_approved(cli, &done)?;
            0
        }
        Command::Retry(a) => {
            remote_cycle(cli, c, &format!("/cycles/{}/retry", a.cycle), &json!({"from": a.from})).await?
        }
        Command::Override(a) => {
            let env = remote_env(c, a.env.as_deref()).await?;
            let (_, o): (_, greenroom_store::OverrideRecord) = c
                .post(
                    &format!("/environments/{}/override", segment(&env)),
                    &json!({"reason": a.reason, "for": humantime::format_duration(a.duration).to_string()}),
                    &[],
                )
                .await?;
            print_override(cli, &o)?;
            0
        }
        Command::Audit(a) => {
            let mut path = format!("/audit?limit={}", a.limit.clamp(1, 1000));
            if let Some(e) = &a.env {
                path.push_str(&format!("&environment={}", segment(e)));
            }
            let rows: Vec<crate::audit::AuditView> = c.get(&path).await?;
            if cli.json {
                print_json(&rows)?;
            } else {
                print!("{}", crate::audit::render(&rows));
            }
            0
        }
        Command::Status(a) => {
            let st = c.status(a.env.as_deref()).await?;
            if cli.json {
                if a.env.is_some() && st.len() == 1 {
                    print_json(&st[0])?;
                } else {
                    print_json(&st)?;
                }
            } else {
                print!("{}", status::render_status(&st));
            }
            0
        }
        Command::History(a) => {
            let mut path = format!("/cycles?limit={}", a.limit.clamp(1, 1000));
            if let Some(e) = &a.env {
                path.push_str(&format!("&environment={}", segment(e)));
            }
            let h: Vec<status::CycleSummary> = c.get(&path).await?;
            if cli.json {
                print_json(&h)?;
            } else {
                print!("{}", status::render_history(&h));
            }
            0
        }
        Command::Cancel(a) => {
            let path = match a.cycle {
                Some(id) => format!("/cycles/{id}/cancel"),
                None => format!(
                    "/environments/{}/cancel",
                    segment(&remote_env(c, a.env.as_deref()).await?)
                ),
            };
            let (_, done): (_, Vec<crate::cancelling::Cancelled>) =
                c.post(&path, &json!({"reason": a.reason}), &[]).await?;
            print_cancelled(cli, &done)?;
            0
        }
        Command::Release(a) => {
            let env = remote_env(c, a.env.as_deref()).await?;
            let (_, r): (_, Value) = c
                .post(
                    &format!("/environments/{}/release", segment(&env)),
                    &json!({"force": a.force}),
                    &[],
                )
                .await?;
            if cli.json {
                print_json(&r)?;
            } else {
                let released = r["released"].as_array().cloned().unwrap_or_default();
                if released.is_empty() {
                    println!("{env} was not leased by you");
                }
                for l in released {
                    println!(
                        "released {} (was held by {}: {})",
                        l["environment"].as_str().unwrap_or(&env),
                        l["lease"]["holder"].as_str().unwrap_or("?"),
                        l["lease"]["reason"].as_str().unwrap_or("")
                    );
                }
            }
            0
        }
        Command::Pause(a) => {
            let env = remote_env(c, a.env.as_deref()).await?;
            let (_, p): (_, status::PauseView) = c
                .post(
                    &format!("/environments/{}/pause", segment(&env)),
                    &json!({"reason": a.reason}),
                    &[],
                )
                .await?;
            print_pause(cli, &env, &p)?;
            0
        }
        Command::Resume(a) => {
            let env = remote_env(c, a.env.as_deref()).await?;
            let (_, p): (_, status::PauseView) = c
                .post(&format!("/environments/{}/resume", segment(&env)), &json!({}), &[])
                .await?;
            print_pause(cli, &env, &p)?;
            0
        }
        Command::Lease(a) if a.action.is_none() && a.command.is_empty() => {
            if a.wait {
                return Err(input("--wait is not available through a server yet"));
            }
            let env = remote_env(c, a.env.as_deref()).await?;
            let reason = if a.reason.is_empty() {
                "leased through the API".to_string()
            } else {
                a.reason.clone()
            };
            let mut body = json!({ "reason": reason });
            if let Some(d) = a.duration {
                body["for"] = json!(humantime::format_duration(d).to_string());
            }
            let (_, r): (_, Value) = c
                .post(&format!("/environments/{}/lease", segment(&env)), &body, &[])
                .await?;
            if cli.json {
                print_json(&r)?;
            } else {
                println!(
                    "{}: leased to {} until {} — {}",
                    r["environment"].as_str().unwrap_or(&env),
                    r["lease"]["holder"].as_str().unwrap_or("?"),
                    r["lease"]["expires"].as_str().unwrap_or("?"),
                    r["lease"]["reason"].as_str().unwrap_or("")
                );
            }
            0
        }
        _ => return Ok(None),
    };
    Ok(Some(code))
}

/// Commands that always work on this machine, server or not.
fn always_local(c: &Command) -> bool {
    matches!(
        c,
        Command::Serve(_)
            | Command::Quickstart(_)
            | Command::Simulate(_)
            | Command::CheckConfig
            | Command::Gc
            | Command::SampleService(_)
    )
}

/// Runs the CLI; returns the exit status.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    if !always_local(&cli.command)
        && let Some(c) = remote(&cli)?
    {
        return match run_remote(&cli, &c).await? {
            Some(code) => Ok(code),
            None => Err(input(format!(
                "this command works on the server's own state only and has no API yet: run it on the server's machine, or pass --local to act on this machine's state (server: {})",
                c.base()
            ))),
        };
    }
    match &cli.command {
        Command::Deploy(a) if a.preview.is_some() => {
            let app = open(&cli).await?;
            let reporter: Box<dyn Reporter> = if cli.json {
                Box::new(Silent)
            } else {
                Box::new(Human::new())
            };
            let pr = a.preview.as_deref().unwrap_or_default();
            let (rec, report) = crate::ephemeral::preview(&app, pr, reporter.as_ref()).await?;
            print_ephemeral(&cli, &rec, &report, &app)
        }
        Command::Deploy(a) => {
            let app = open(&cli).await?;
            let env = default_env(&app, a.env.as_deref()).await?;
            let mut overrides = Vec::new();
            let mut errors = Vec::new();
            for o in &a.overrides {
                match compose::parse_override(o) {
                    Ok(o) => overrides.push(o),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            if !errors.is_empty() {
                return Err(input(errors.join("\n")));
            }
            let mut text = vec![format!("--base {}", a.base)];
            if !a.only.is_empty() {
                text.push(format!("--only {}", a.only.join(",")));
            }
            if !a.skip.is_empty() {
                text.push(format!("--skip {}", a.skip.join(",")));
            }
            if a.full {
                text.push("--full".into());
            }
            text.extend(a.overrides.iter().cloned());
            let req = DeployRequest {
                env,
                request: Request {
                    base: a.base.clone(),
                    overrides,
                    only: a.only.clone(),
                    skip: a.skip.clone(),
                },
                text: text.join(" "),
                dry_run: a.dry_run,
                wait: a.wait,
                reason: a.reason.clone(),
                release_after: a.release,
                full: a.full,
                ..Default::default()
            };
            let reporter: Box<dyn Reporter> = if cli.json {
                Box::new(Silent)
            } else {
                Box::new(Human::new())
            };
            let report = engine::deploy(&app, &req, reporter.as_ref()).await?;
            finish_cycle_output(&cli, &report, &app)
        }
        Command::Stop(a) => {
            let app = open(&cli).await?;
            let env = default_env(&app, a.env.as_deref()).await?;
            let reporter: Box<dyn Reporter> = if cli.json {
                Box::new(Silent)
            } else {
                Box::new(Human::new())
            };
            let report = engine::stop(&app, &env, a.wait, reporter.as_ref()).await?;
            finish_cycle_output(&cli, &report, &app)
        }
        Command::Status(a) => {
            let app = open(&cli).await?;
            let env = match &a.env {
                Some(e) => Some(crate::ephemeral::resolve(&app, e).await?),
                None => None,
            };
            let st = status::status(&app, env.as_deref()).await?;
            if cli.json {
                if a.env.is_some() && st.len() == 1 {
                    print_json(&st[0])?;
                } else {
                    print_json(&st)?;
                }
            } else {
                print!("{}", status::render_status(&st));
            }
            Ok(0)
        }
        Command::History(a) => {
            let app = open(&cli).await?;
            let h = status::history(&app, a.env.as_deref(), a.limit).await?;
            if cli.json {
                print_json(&h)?;
            } else {
                print!("{}", status::render_history(&h));
            }
            Ok(0)
        }
        Command::Cancel(a) => {
            let app = open(&cli).await?;
            let target = match a.cycle {
                Some(id) => crate::cancelling::Target::Cycle(id),
                None => crate::cancelling::Target::Environment(default_env(&app, a.env.as_deref()).await?),
            };
            let done = crate::cancelling::cancel(&app, &target, &app.holder, &a.reason).await?;
            print_cancelled(&cli, &done)?;
            Ok(0)
        }
        Command::Rollback(a) => {
            let app = open(&cli).await?;
            let env = default_env(&app, a.env.as_deref()).await?;
            let req = crate::rollback::RollbackRequest {
                env,
                to: a.to.clone(),
                reason: a.reason.clone(),
                dry_run: a.dry_run,
                force: a.force,
            };
            let reporter: Box<dyn Reporter> = if cli.json {
                Box::new(Silent)
            } else {
                Box::new(Human::new())
            };
            let report = crate::rollback::rollback(&app, &req, reporter.as_ref()).await?;
            finish_cycle_output(&cli, &report, &app)
        }
        Command::Promote(a) => {
            let app = open(&cli).await?;
            let req = crate::promote::PromoteRequest {
                from: a.from.clone(),
                to: a.to.clone(),
                cycle: a.cycle,
                reason: a.reason.clone(),
                dry_run: a.dry_run,
                wait: false,
            };
            let reporter: Box<dyn Reporter> = if cli.json {
                Box::new(Silent)
            } else {
                Box::new(Human::new())
            };
            let report = crate::promote::promote(&app, &req, reporter.as_ref()).await?;
            finish_cycle_output(&cli, &report, &app)
        }
        Command::Approve(a) => {
            let app = open(&cli).await?;
            let done = crate::approving::approve(&app, a.cycle, a.stage.as_deref(), &a.reason).await?;
            print_approved(&cli, &done)?;
            Ok(0)
        }
        Command::Retry(a) => {
            let app = open(&cli).await?;
            let reporter: Box<dyn Reporter> = if cli.json {
                Box::new(Silent)
            } else {
                Box::new(Human::new())
            };
            let report = crate::approving::retry(&app, a.cycle, a.from.as_deref(), reporter.as_ref()).await?;
            finish_cycle_output(&cli, &report, &app)
        }
        Command::Env(EnvCommand::Create(a)) => {
            let app = open(&cli).await?;
            let reporter: Box<dyn Reporter> = if cli.json {
                Box::new(Silent)
            } else {
                Box::new(Human::new())
            };
            let req = crate::ephemeral::CreateRequest {
                name: a.name.clone(),
                profile: a.profile.clone(),
                ttl: a.ttl,
                reason: a.reason.clone(),
                overrides: a.overrides.clone(),
                pr: None,
                wait: a.wait,
            };
            let (rec, report) = crate::ephemeral::create(&app, &req, reporter.as_ref()).await?;
            print_ephemeral(&cli, &rec, &report, &app)
        }
        Command::Env(EnvCommand::List) => {
            let app = open(&cli).await?;
            let all = app.store.ephemerals().await?;
            if cli.json {
                print_json(&all)?;
            } else if all.is_empty() {
                println!("no ephemeral environments");
            } else {
                for e in &all {
                    println!(
                        "{}  slot {} of {}  until {}  by {}{}",
                        e.name,
                        e.slot,
                        e.profile,
                        greenroom_core::time::format(e.expires_at),
                        e.created_by,
                        e.pr.as_deref().map(|p| format!("  preview of {p}")).unwrap_or_default()
                    );
                }
            }
            Ok(0)
        }
        Command::Env(EnvCommand::Destroy(a)) => {
            let app = open(&cli).await?;
            let e = crate::ephemeral::destroy(&app, &a.name, &a.reason).await?;
            if cli.json {
                print_json(&e)?;
            } else {
                println!("{} destroyed (slot {} of {} is free)", e.name, e.slot, e.profile);
            }
            Ok(0)
        }
        Command::Override(a) => {
            let app = open(&cli).await?;
            let env = default_env(&app, a.env.as_deref()).await?;
            let o = crate::blockers::grant_override(&app, &env, &a.reason, a.duration).await?;
            print_override(&cli, &o)?;
            Ok(0)
        }
        Command::Audit(a) => {
            let app = open(&cli).await?;
            let rows = crate::audit::list(&app, a.env.as_deref(), a.limit.clamp(1, 10_000)).await?;
            if cli.json {
                print_json(&rows)?;
            } else {
                print!("{}", crate::audit::render(&rows));
            }
            Ok(0)
        }
        Command::Diff(a) => {
            let app = open(&cli).await?;
            let d = status::diff(&app, &a.a, &a.b).await?;
            if cli.json {
                print_json(&d)?;
            } else {
                print!("{}", status::render_diff(&d));
            }
            Ok(0)
        }
        Command::Lease(a) => lease_command(&cli, a).await,
        Command::Release(a) => {
            let app = open(&cli).await?;
            let env = default_env(&app, a.env.as_deref()).await?;
            let released = leasing::release(&app, &env, a.force).await?;
            if cli.json {
                print_json(
                    &serde_json::json!({"environment": env, "released": released.as_ref().map(LeaseReport::of)}),
                )?;
            } else {
                match released {
                    Some(l) => println!("released {env} (was held by {}: {})", l.holder, l.reason),
                    None => println!("{env} was not leased"),
                }
            }
            Ok(0)
        }
        Command::Pause(a) => {
            let app = open(&cli).await?;
            let env = default_env(&app, a.env.as_deref()).await?;
            let p = crate::pausing::pause(&app, &env, &app.holder, &a.reason).await?;
            print_pause(&cli, &env, &p.into())?;
            Ok(0)
        }
        Command::Resume(a) => {
            let app = open(&cli).await?;
            let env = default_env(&app, a.env.as_deref()).await?;
            let p = crate::pausing::resume(&app, &env, &app.holder).await?;
            print_pause(&cli, &env, &p.into())?;
            Ok(0)
        }
        Command::Logs(a) => {
            let app = open(&cli).await?;
            let env = default_env(&app, a.env.as_deref()).await?;
            let deployed = app.store.deployed(&env).await?;
            let Some(d) = deployed.iter().find(|d| d.component == a.component) else {
                return Err(input(format!("{} has never been deployed to {env}", a.component)));
            };
            let Some(path) = &d.log_path else {
                return Err(input(format!("{} on {env} has no log", a.component)));
            };
            let mut out = tokio::io::stdout();
            greenroom_driver::follow_log(std::path::Path::new(path), a.follow, &mut out)
                .await
                .with_context(|| format!("cannot read {path}"))?;
            Ok(0)
        }
        Command::Gc => {
            let app = open(&cli).await?;
            // Ephemeral environments whose time ended go first.
            for line in crate::ephemeral::expire(&app).await {
                if !cli.json {
                    println!("{line}");
                }
            }
            let r = crate::retention::collect(&app).await?;
            if cli.json {
                print_json(&r)?;
            } else {
                print!("{}", crate::retention::render(&r));
            }
            Ok(0)
        }
        Command::CheckConfig => {
            let path = app::config_path(cli.config.as_deref());
            let cfg = config::load(&path).map_err(|e| input(e.to_string()))?;
            if cli.json {
                print_json(&serde_json::json!({
                    "config": cfg.path,
                    "state_dir": cfg.state_dir,
                    "components": cfg.components.iter().map(|c| &c.name).collect::<Vec<_>>(),
                    "environments": cfg.instances().iter().map(|i| &i.name).collect::<Vec<_>>(),
                    "valid": true,
                }))?;
            } else {
                println!(
                    "{}: ok — {} component(s): {}; environment(s): {}",
                    path.display(),
                    cfg.components.len(),
                    cfg.components
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    cfg.instances()
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(0)
        }
        Command::Quickstart(a) if a.push => quickstart::push(&a.dir).await,
        Command::Quickstart(a) if a.stop => quickstart::stop(&a.dir).await,
        Command::Quickstart(a) => quickstart::run(&a.dir).await,
        Command::Simulate(a) => simulate_command(&cli, a),
        Command::Serve(a) => {
            let cfg = load_config(&cli)?;
            let holder = cli
                .holder
                .clone()
                .unwrap_or_else(|| format!("greenroom-serve@{}", crate::identity::host()));
            let app = App::open(cfg, Some(holder)).await?;
            crate::server::serve(app, a.listen).await
        }
        Command::SampleService(a) => {
            let dir = std::env::current_dir().context("no working directory")?;
            sample::serve(a.port, dir).await?;
            Ok(0)
        }
    }
}

fn print_ephemeral(
    cli: &Cli,
    e: &greenroom_store::EphemeralRecord,
    report: &CycleReport,
    app: &App,
) -> anyhow::Result<i32> {
    if cli.json {
        print_json(&serde_json::json!({"environment": e, "cycle": report}))?;
    } else {
        print!("{}", render_cycle(report, app.now()));
        println!(
            "{} runs in slot {} of {} until {} (`greenroom env destroy {}` to free it sooner)",
            e.name,
            e.slot,
            e.profile,
            greenroom_core::time::format(e.expires_at),
            e.name
        );
    }
    Ok(if report.ok() { 0 } else { 1 })
}

fn print_override(cli: &Cli, o: &greenroom_store::OverrideRecord) -> anyhow::Result<()> {
    if cli.json {
        print_json(o)?;
    } else {
        println!(
            "the deploy blockers of {} are lifted until {} ({}: {})",
            o.environment,
            greenroom_core::time::format(o.until),
            o.granted_by,
            o.reason
        );
    }
    Ok(())
}

fn print_approved(cli: &Cli, a: &crate::approving::Approved) -> anyhow::Result<()> {
    if cli.json {
        print_json(a)?;
    } else {
        println!(
            "stage {} of cycle {} on {} approved by {}",
            a.stage, a.cycle, a.environment, a.by
        );
    }
    Ok(())
}

fn finish_cycle_output(cli: &Cli, report: &CycleReport, app: &App) -> anyhow::Result<i32> {
    if cli.json {
        print_json(report)?;
    } else {
        print!("{}", render_cycle(report, app.now()));
    }
    Ok(if report.ok() { 0 } else { 1 })
}

/// Human summary of a deploy or stop.
pub fn render_cycle(r: &CycleReport, now: i64) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let manifest = r
        .manifest
        .as_deref()
        .map(greenroom_core::manifest::short_id)
        .unwrap_or("-");
    match r.cycle {
        Some(c) => {
            let _ = writeln!(
                s,
                "\ncycle {c} ({}) on {}: {} — manifest {manifest}",
                r.kind, r.environment, r.result
            );
        }
        None => {
            let _ = writeln!(
                s,
                "\nplan for {} (dry run: nothing changed) — manifest {manifest}",
                r.environment
            );
        }
    }
    let width = r.components.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &r.components {
        let what = match (&c.commit, &c.image) {
            (Some(commit), _) => commit.chars().take(12).collect::<String>(),
            (None, Some(img)) => img.clone(),
            _ => "-".into(),
        };
        let prev = c.previous.as_ref().map(|p| format!(" (was {p})")).unwrap_or_default();
        let url = c.url.as_ref().map(|u| format!("  {u}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:width$}  {:7} {:12} {:16} build:{:11} {}{prev}{url}",
            c.name, c.action, what, c.origin, c.build, c.outcome
        );
        if let Some(why) = &c.why {
            let _ = writeln!(s, "  {:width$}    {why}", "");
        }
    }
    if !r.suites.is_empty() {
        let _ = writeln!(s, "\nsuites:");
        let w = r.suites.iter().map(|x| x.name.len()).max().unwrap_or(0);
        for x in &r.suites {
            let first = x.reason.lines().next().unwrap_or("");
            let _ = writeln!(s, "  {:w$}  {:12} {:8} {first}", x.name, x.tier, x.result);
        }
    }
    if let Some(e) = &r.error {
        let _ = writeln!(s, "\nerror: {e}");
    }
    match &r.lease {
        Some(l) => {
            let until = time::relative(parse_rfc3339(&l.expires).unwrap_or(now), now);
            let _ = writeln!(
                s,
                "lease: {} holds {} until {} ({until}); `greenroom release --env {}` frees it",
                l.holder, r.environment, l.expires, r.environment
            );
        }
        None => {
            let _ = writeln!(s, "lease: {} is free", r.environment);
        }
    }
    let t = &r.timings;
    let _ = writeln!(
        s,
        "took {} (resolve {}, build {}, deploy {}; greenroom's own overhead {})",
        time::format_span(t.total_ms as i64),
        time::format_span(t.resolve_ms as i64),
        time::format_span(t.build_ms as i64),
        time::format_span(t.deploy_ms as i64),
        time::format_span(t.overhead_ms as i64)
    );
    s
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

async fn lease_command(cli: &Cli, a: &LeaseArgs) -> anyhow::Result<i32> {
    let app = open(cli).await?;
    if let Some(LeaseAction::Extend { env, duration }) = &a.action {
        let env = default_env(&app, env.as_deref()).await?;
        let l = leasing::extend(&app, &env, *duration).await?;
        if cli.json {
            print_json(&serde_json::json!({"environment": env, "lease": LeaseReport::of(&l)}))?;
        } else {
            println!("{env}: {}", lease::describe(&l, app.now()));
        }
        return Ok(0);
    }
    let env_name = default_env(&app, a.env.as_deref()).await?;
    let instances = app.config.lookup_instances(&env_name).map_err(input)?;
    let ttl = a.duration.unwrap_or_else(|| {
        app.config
            .environment(&instances[0].environment)
            .map(|e| e.lease_ttl)
            .unwrap_or(config::DEFAULT_LEASE_TTL)
    });
    let reason = if a.reason.is_empty() && !a.command.is_empty() {
        format!("running {}", a.command.join(" "))
    } else {
        a.reason.clone()
    };
    let held = leasing::acquire(
        &app,
        &Ask {
            candidates: &instances,
            queue_key: &env_name,
            reason: &reason,
            ttl,
            bind_process: !a.command.is_empty(),
            wait: a.wait,
        },
    )
    .await?;
    let name = held.instance.name.clone();
    crate::audit::record(
        &app,
        "lease",
        &name,
        &if a.command.is_empty() {
            format!("leased for {}", humantime::format_duration(ttl))
        } else {
            format!("leased while running {}", a.command.join(" "))
        },
        &reason,
        None,
    )
    .await;
    if a.command.is_empty() {
        // A lease the holder already had gets the new duration.
        let l = if held.taken {
            held.lease.clone()
        } else {
            leasing::extend(&app, &name, ttl).await?
        };
        if cli.json {
            print_json(&serde_json::json!({"environment": name, "lease": LeaseReport::of(&l)}))?;
        } else {
            println!("{name}: {}", lease::describe(&l, app.now()));
        }
        return Ok(0);
    }
    if !cli.json {
        eprintln!("{name}: leased to {} while running {}", app.holder, a.command.join(" "));
    }
    let status = tokio::process::Command::new(&a.command[0])
        .args(&a.command[1..])
        .env("GREENROOM_ENV", &name)
        .env("GREENROOM_LEASE_TOKEN", held.lease.token.to_string())
        .status()
        .await;
    // Release whatever happened to the command.
    if held.taken {
        app.store.release(&name, held.lease.token).await?;
    }
    let status = status.map_err(|e| UserError::Input(format!("cannot run `{}`: {e}", a.command[0])))?;
    let code = status.code().unwrap_or(1);
    if cli.json {
        print_json(
            &serde_json::json!({"environment": name, "command": a.command, "exit_status": code, "released": held.taken}),
        )?;
    } else if held.taken {
        eprintln!("{name}: released (command exited with status {code})");
    }
    Ok(code)
}

fn simulate_command(cli: &Cli, a: &SimulateArgs) -> anyhow::Result<i32> {
    use greenroom_core::simulate;
    if let Some(g) = &a.generate {
        let (repos, days) = g
            .split_once(',')
            .and_then(|(r, d)| Some((r.trim().parse::<usize>().ok()?, d.trim().parse::<u32>().ok()?)))
            .filter(|(r, d)| (1..=50).contains(r) && (1..=365).contains(d))
            .ok_or_else(|| {
                input(format!(
                    "--generate `{g}`: expected REPOS,DAYS, e.g. 9,14 (1-50 repos, 1-365 days)"
                ))
            })?;
        let names: Vec<String> = (1..=repos).map(|i| format!("repo-{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        for e in simulate::generate_trace(&refs, days, 2) {
            println!("{}", e.to_json_line());
        }
        return Ok(0);
    }
    let Some(path) = &a.trace else {
        return Err(input("--trace FILE is required"));
    };
    let text = std::fs::read_to_string(path).map_err(|e| input(format!("cannot read {}: {e}", path.display())))?;
    let trace = simulate::parse_trace(&text).map_err(|e| input(format!("{}: {e}", path.display())))?;
    // The configured policy when there is a config; the defaults otherwise.
    let config_path = app::config_path(cli.config.as_deref());
    let policy = if config_path.exists() {
        config::load(&config_path).map_err(|e| input(e.to_string()))?.policy
    } else {
        eprintln!("note: no {} — simulating the default policy", config_path.display());
        Default::default()
    };
    let model = simulate::SimModel {
        build: a.build,
        deploy: a.deploy,
        partial_tests: a.smoke,
        full_tests: a.full_tests,
        drain: a.drain,
    };
    let mut reports = vec![simulate::simulate(&trace, &policy, &model)];
    let baselines = if a.baselines.is_empty() {
        vec!["every:8h".to_string(), "every-event".to_string()]
    } else {
        a.baselines.clone()
    };
    for b in &baselines {
        if b == "every-event" {
            reports.push(simulate::baseline_every_event(&trace, &model));
        } else if let Some(iv) = b.strip_prefix("every:") {
            let iv = parse_duration(iv).map_err(input)?;
            reports.push(simulate::baseline_every(&trace, iv, &model));
        } else {
            return Err(input(format!(
                "unknown baseline `{b}`: use every:DURATION (e.g. every:8h) or every-event"
            )));
        }
    }
    if cli.json {
        print_json(&reports)?;
    } else {
        println!("{} triggers from {}", trace.len(), path.display());
        print!("{}", simulate::comparison_table(&reports));
    }
    Ok(0)
}
