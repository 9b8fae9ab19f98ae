//! Chat commands: `POST /chat/slack`, a Slack slash-command endpoint
//! (`/greenroom deploy staging ogr=123`).
//!
//! Each request is verified first (`greenroom_webhook::slack`: Slack's v0
//! signature with the `[slack] signing_secret`, and the five-minute
//! timestamp window against the server's clock): a bad one is answered 401
//! with the reason, nothing else. Then the Slack user id is mapped to a
//! `[[user]]` (`slack = "U…"`), the text parsed (`greenroom_core::chat`),
//! the role checked as the REST API does (viewer to read, deployer to
//! deploy, lease, release, pause and resume), and the command run through
//! the same code the API and CLI use: `engine::deploy` (in the background:
//! the answer says which cycle runs), `leasing`, `pausing`, `status`.
//!
//! Answers are Slack messages (`{"response_type", "text", "blocks"}`) with
//! HTTP 200, also for refusals and mistakes (Slack shows only 200 answers);
//! what others in the channel should see (a deploy starting, a pause) is
//! `in_channel`, the rest `ephemeral`. Every command that changes or tries
//! to change an environment is recorded in the decision log (kind `chat`:
//! who, through Slack, what, and what came of it).
//!
//! Must never: put the signing secret, an API token or a `response_url`
//! into an answer or a log; act before the signature and the role check
//! passed; block longer than Slack's three seconds on a deploy.

use super::Shared;
use crate::app::App;
use crate::engine::{self, CycleReport, DeployRequest};
use crate::error::UserError;
use crate::leasing::{self, Ask};
use crate::progress::Silent;
use crate::status;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use greenroom_core::chat::{self, ChatCommand};
use greenroom_core::compose::{self, Request};
use greenroom_core::config::{Role, User};
use greenroom_webhook::slack::{self, SlashCommand};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest body read, in bytes (also the route's body limit).
pub const MAX_BODY: usize = slack::MAX_BODY;
/// How long a deploy answer waits to name its cycle: Slack gives up on an
/// answer after three seconds.
const ANSWER_WITHIN: Duration = Duration::from_millis(2_300);
/// Slack's limit on a section block's text.
const MAX_BLOCK_CHARS: usize = 3_000;

/// Who sees an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// Only the person who typed the command.
    Ephemeral,
    /// Everyone in the channel.
    InChannel,
}

/// A Slack message, answered 200.
fn say(audience: Audience, text: impl Into<String>) -> Response {
    let text: String = text.into();
    let block: String = if text.chars().count() > MAX_BLOCK_CHARS {
        let mut t: String = text.chars().take(MAX_BLOCK_CHARS - 1).collect();
        t.push('…');
        t
    } else {
        text.clone()
    };
    let kind = match audience {
        Audience::Ephemeral => "ephemeral",
        Audience::InChannel => "in_channel",
    };
    Json(json!({
        "response_type": kind,
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": block}}],
    }))
    .into_response()
}

/// A request that is not Slack's (or not configured): an HTTP error with a reason.
fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    (status, Json(json!({ "error": why.into() }))).into_response()
}

/// `POST /chat/slack`.
pub async fn slack(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let app = &s.app;
    let Some(secret_ref) = &app.config.slack.signing_secret else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "chat commands are not configured: set [slack] signing_secret",
        );
    };
    // Read at each request: a rotated secret needs no restart. The error
    // names where the secret is, never its value.
    let secret = match crate::resolve::read_secret(secret_ref) {
        Ok(v) if !v.is_empty() => v,
        Ok(_) => {
            tracing::error!("chat: [slack] signing_secret ({secret_ref}) is empty");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the Slack signing secret is not readable",
            );
        }
        Err(e) => {
            tracing::error!("chat: [slack] signing_secret: {e}");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the Slack signing secret is not readable",
            );
        }
    };
    let now_secs = app.now().div_euclid(1000);
    if let Err(e) = slack::verify(secret.as_bytes(), &headers, &body, now_secs) {
        tracing::warn!("chat: refused a Slack request: {e}");
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
        return refuse(status, e.to_string());
    }
    let cmd = match slack::parse_slash_command(&body) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("chat: unreadable Slack request: {e}");
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            return refuse(status, e.to_string());
        }
    };
    let text = slack::unescape_text(&cmd.text);
    let Some(who) = app
        .config
        .users
        .iter()
        .find(|u| u.slack.as_deref() == Some(cmd.user_id.as_str()))
    else {
        tracing::info!(slack_user = %cmd.user_id, "chat: command from an unmapped Slack user refused");
        return say(
            Audience::Ephemeral,
            format!(
                "Sorry, your Slack user (`{}`) is not known to greenroom: an admin can add `slack = \"{}\"` to your `[[user]]`.",
                cmd.user_id, cmd.user_id
            ),
        );
    };
    let parsed = match chat::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(user = %who.name, "chat: not a command: {e}");
            return say(Audience::Ephemeral, e.render(&cmd.command));
        }
    };
    tracing::info!(user = %who.name, slack_user = %cmd.user_id, "chat: {parsed}");
    let (audience, answer, outcome, cycle) = run(app, who, &cmd, &parsed).await;
    if parsed.changes_state()
        && let Some(env) = parsed.env()
        && app.config.lookup_instances(env).is_ok()
    {
        let reason = format!("{} via Slack ({}): `{parsed}`: {outcome}", who.name, cmd.user_id);
        if let Err(e) = app
            .store
            .record_decision(env, app.now(), "chat", &reason, &[], cycle)
            .await
        {
            tracing::error!("chat: cannot record the command: {e}");
        }
    }
    say(audience, answer)
}

/// What a command did: audience, answer, a short outcome for the record,
/// and the cycle it started.
type Done = (Audience, String, String, Option<i64>);

fn refused(message: String) -> Done {
    (
        Audience::Ephemeral,
        message.clone(),
        format!("refused: {message}"),
        None,
    )
}

fn failed(e: &anyhow::Error) -> Done {
    let message = match e.downcast_ref::<UserError>() {
        Some(u) => u.to_string(),
        None => {
            tracing::error!("chat: {e:#}");
            format!("{e:#}")
        }
    };
    (Audience::Ephemeral, message.clone(), format!("failed: {message}"), None)
}

/// The `[[environment]]` of an environment, slot or pool name.
fn environment_of(app: &App, name: &str) -> Result<String, String> {
    let inst = app.config.lookup_instances(name)?;
    inst.first()
        .map(|i| i.environment.clone())
        .ok_or_else(|| format!("environment `{name}` has no instances"))
}

/// The API's role check, worded for chat.
fn allowed(app: &App, who: &User, name: &str, need: Role) -> Result<(), String> {
    let env = environment_of(app, name)?;
    match who.role_on(&env) {
        Some(r) if r >= need => Ok(()),
        Some(r) => Err(format!("Sorry {}, you are {r} on {env}; this needs {need}.", who.name)),
        None => Err(format!(
            "Sorry {}, you have no role on {env}; this needs {need}.",
            who.name
        )),
    }
}

/// The app acting as `who` through chat: leases, cycles and the audit
/// trail carry the user's name (and surface `chat`).
fn as_user(app: &App, who: &User) -> App {
    App {
        config: app.config.clone(),
        store: app.store.clone(),
        paths: app.paths.clone(),
        clock: app.clock.clone(),
        holder: who.name.clone(),
        process: app.process.clone(),
        supervisor: app.supervisor.clone(),
        surface: "chat".into(),
    }
}

async fn run(app: &Arc<App>, who: &User, cmd: &SlashCommand, parsed: &ChatCommand) -> Done {
    if let (Some(need), Some(env)) = (parsed.needs(), parsed.env())
        && let Err(m) = allowed(app, who, env, need)
    {
        return refused(m);
    }
    match parsed {
        ChatCommand::Help => (Audience::Ephemeral, chat::help_text(&cmd.command), "help".into(), None),
        ChatCommand::Status { env } => status_of(app, who, env.as_deref()).await,
        ChatCommand::Rollback { env, to } => rollback(app, who, &cmd.command, env, to.as_deref()).await,
        ChatCommand::Pause { env, reason } => {
            let reason = reason.clone().unwrap_or_else(|| "paused from Slack".to_string());
            match crate::pausing::pause(&as_user(app, who), env, &who.name, &reason).await {
                Ok(_) => (
                    Audience::InChannel,
                    format!(
                        ":double_vertical_bar: {} paused the scheduled cycles of *{env}*: {reason}",
                        who.name
                    ),
                    "paused".into(),
                    None,
                ),
                Err(e) => failed(&e),
            }
        }
        ChatCommand::Resume { env } => match crate::pausing::resume(&as_user(app, who), env, &who.name).await {
            Ok(_) => (
                Audience::InChannel,
                format!(":arrow_forward: {} resumed the scheduled cycles of *{env}*.", who.name),
                "resumed".into(),
                None,
            ),
            Err(e) => failed(&e),
        },
        ChatCommand::Lease { env, ttl, reason } => lease(app, who, env, *ttl, reason.as_deref()).await,
        ChatCommand::Release { env } => release(app, who, env).await,
        ChatCommand::Deploy { env, base, overrides } => {
            deploy(app, who, &cmd.command, env, base.as_deref(), overrides).await
        }
    }
}

async fn status_of(app: &App, who: &User, env: Option<&str>) -> Done {
    let all = match status::status(app, env).await {
        Ok(v) => v,
        Err(e) => return failed(&e),
    };
    let visible: Vec<status::EnvironmentStatus> = all
        .into_iter()
        .filter(|st| environment_of(app, &st.environment).is_ok_and(|e| who.role_on(&e) >= Some(Role::Viewer)))
        .collect();
    if visible.is_empty() {
        return (
            Audience::Ephemeral,
            format!("{}, there is no environment you may view.", who.name),
            "nothing visible".into(),
            None,
        );
    }
    let text = format!("```\n{}```", status::render_status(&visible).replace("```", "'''"));
    (Audience::Ephemeral, text, "status".into(), None)
}

async fn lease(app: &App, who: &User, name: &str, ttl: Option<Duration>, reason: Option<&str>) -> Done {
    let candidates = match app.config.lookup_instances(name) {
        Ok(c) => c,
        Err(m) => return refused(m),
    };
    let default_ttl = candidates
        .first()
        .and_then(|i| app.config.environment(&i.environment))
        .map(|e| e.lease_ttl)
        .unwrap_or(greenroom_core::config::DEFAULT_LEASE_TTL);
    let ttl = ttl.unwrap_or(default_ttl);
    let reason = reason
        .map(str::to_string)
        .unwrap_or_else(|| format!("leased from Slack by {}", who.name));
    let app = as_user(app, who);
    let held = match leasing::acquire(
        &app,
        &Ask {
            candidates: &candidates,
            queue_key: name,
            reason: &reason,
            ttl,
            bind_process: false,
            wait: false,
        },
    )
    .await
    {
        Ok(h) => h,
        Err(e) => return failed(&e),
    };
    // A lease the user already had is extended to the asked time.
    let lease = if held.taken {
        Ok(held.lease)
    } else {
        leasing::extend(&app, &held.instance.name, ttl).await
    };
    match lease {
        Ok(l) => (
            Audience::InChannel,
            format!(
                ":lock: {} holds *{}* until {}: {}",
                who.name,
                held.instance.name,
                greenroom_core::time::format(l.expires),
                l.reason
            ),
            format!(
                "leased {} until {}",
                held.instance.name,
                greenroom_core::time::format(l.expires)
            ),
            None,
        ),
        Err(e) => failed(&e),
    }
}

async fn release(app: &App, who: &User, name: &str) -> Done {
    let instances = match app.config.lookup_instances(name) {
        Ok(c) => c,
        Err(m) => return refused(m),
    };
    let app = as_user(app, who);
    let mut released = Vec::new();
    let mut others = Vec::new();
    for inst in &instances {
        let current = match app.store.lease(&inst.name).await {
            Ok((c, _)) => c,
            Err(e) => return failed(&e.into()),
        };
        let Some(l) = current else { continue };
        if l.holder != who.name {
            others.push(format!("{} (held by {})", inst.name, l.holder));
            continue;
        }
        match leasing::release(&app, &inst.name, false).await {
            Ok(Some(_)) => released.push(inst.name.clone()),
            Ok(None) => {}
            Err(e) => return failed(&e),
        }
    }
    if !released.is_empty() {
        let text = format!(":unlock: {} released *{}*.", who.name, released.join(", "));
        return (
            Audience::InChannel,
            text,
            format!("released {}", released.join(", ")),
            None,
        );
    }
    let text = if others.is_empty() {
        format!("You hold no lease on {name}: nothing to release.")
    } else {
        format!(
            "You hold no lease on {name}: {}. Only its holder (or an admin, with the API or CLI and `--force`) can release it.",
            others.join(", ")
        )
    };
    (Audience::Ephemeral, text.clone(), format!("refused: {text}"), None)
}

async fn deploy(app: &Arc<App>, who: &User, slash: &str, name: &str, base: Option<&str>, raw: &[String]) -> Done {
    let mut overrides = Vec::new();
    for o in raw {
        match compose::parse_override(o) {
            Ok(o) => overrides.push(o),
            Err(e) => return refused(e.to_string()),
        }
    }
    let base = base.unwrap_or("stg").to_string();
    let mut text = vec![format!("--base {base}")];
    text.extend(raw.iter().cloned());
    let asked = if raw.is_empty() {
        format!("{name} (base {base})")
    } else {
        format!("{} to {name}", raw.join(" "))
    };
    let req = DeployRequest {
        env: name.to_string(),
        request: Request {
            base,
            overrides,
            only: Vec::new(),
            skip: Vec::new(),
        },
        text: text.join(" "),
        reason: Some(format!("Slack deploy by {}", who.name)),
        release_after: true,
        ..Default::default()
    };
    let worker = as_user(app, who);
    detached(app, who, slash, name, "deploying", &asked, async move {
        engine::deploy(&worker, &req, &Silent).await
    })
    .await
}

/// `rollback ENV [--to X]`: through the same code as the CLI and the API.
async fn rollback(app: &Arc<App>, who: &User, slash: &str, name: &str, to: Option<&str>) -> Done {
    let to = to.unwrap_or("previous").to_string();
    let asked = format!("{name} back to {to}");
    let req = crate::rollback::RollbackRequest {
        env: name.to_string(),
        to,
        reason: Some(format!("Slack rollback by {}", who.name)),
        dry_run: false,
        force: false,
    };
    let worker = as_user(app, who);
    detached(app, who, slash, name, "rolling back", &asked, async move {
        crate::rollback::rollback(&worker, &req, &Silent).await
    })
    .await
}

/// Runs a cycle detached (it finishes and records itself whatever happens
/// to this request; its end is logged, and `status`/`history` show it) and
/// answers within `ANSWER_WITHIN` with its number, or its result if it was
/// that quick.
async fn detached(
    app: &Arc<App>,
    who: &User,
    slash: &str,
    name: &str,
    doing: &str,
    asked: &str,
    work: impl std::future::Future<Output = anyhow::Result<CycleReport>> + Send + 'static,
) -> Done {
    let instances = match app.config.lookup_instances(name) {
        Ok(c) => c,
        Err(m) => return refused(m),
    };
    let names: Vec<String> = instances.iter().map(|i| i.name.clone()).collect();
    let before = match app.store.cycles(Some(&names), 1).await {
        Ok(c) => c.first().map(|c| c.id).unwrap_or(0),
        Err(e) => return failed(&e.into()),
    };
    let user = who.name.clone();
    let what = doing.to_string();
    let task = tokio::spawn(async move {
        let r = work.await;
        match &r {
            Ok(rep) => tracing::info!(user = %user, cycle = ?rep.cycle, result = %rep.result, "chat: {what} finished"),
            Err(e) => tracing::info!(user = %user, "chat: {what} not run: {e:#}"),
        }
        r
    });
    let t0 = Instant::now();
    loop {
        if task.is_finished() {
            return match task.await {
                Ok(Ok(report)) => finished(who, asked, &report),
                Ok(Err(e)) => failed(&e),
                Err(e) => failed(&anyhow::anyhow!("the {doing} task failed: {e}")),
            };
        }
        match app.store.cycles(Some(&names), 10).await {
            Ok(cycles) => {
                if let Some(c) = cycles.iter().find(|c| c.id > before && c.requested_by == who.name) {
                    return (
                        Audience::InChannel,
                        format!(
                            ":rocket: {} is {doing} {asked}: cycle {} on *{}*. Follow it with `{slash} status {}`.",
                            who.name, c.id, c.environment, c.environment
                        ),
                        format!("{doing}: cycle {}", c.id),
                        Some(c.id),
                    );
                }
            }
            Err(e) => tracing::warn!("chat: cannot look for the deploy's cycle: {e}"),
        }
        if t0.elapsed() >= ANSWER_WITHIN {
            return (
                Audience::InChannel,
                format!(
                    ":rocket: {} is {doing} {asked} (still resolving refs). Follow it with `{slash} status {name}`.",
                    who.name
                ),
                format!("{doing} (cycle not started yet)"),
                None,
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A deploy that ended before the answer went out.
fn finished(who: &User, asked: &str, r: &CycleReport) -> Done {
    let cycle = r
        .cycle
        .map(|c| format!("cycle {c}"))
        .unwrap_or_else(|| "no cycle".into());
    if r.ok() {
        (
            Audience::InChannel,
            format!(
                ":white_check_mark: {} deployed {asked}: {cycle} {} on *{}*.",
                who.name, r.result, r.environment
            ),
            format!("{cycle} {}", r.result),
            r.cycle,
        )
    } else {
        let why = r.error.clone().unwrap_or_default();
        (
            Audience::InChannel,
            format!(
                ":x: {}'s deploy of {asked}: {cycle} {} on *{}*: {why}",
                who.name, r.result, r.environment
            ),
            format!("{cycle} {}: {why}", r.result),
            r.cycle,
        )
    }
}
