//! Pause and resume scheduled cycles of an environment (seed 003: "pause /
//! resume the pipeline"; seed 002's policy keeps triggers while paused).
//!
//! The CLI and the API write the wish to the store; `greenroom serve`'s
//! scheduler notices it and feeds `Pause`/`Resume` to the policy, which
//! records the decision. Explicit deploys are not blocked by a pause in the
//! store; scheduled ones are.

use crate::app::App;
use crate::error::input;
use greenroom_store::PauseRecord;

fn scheduled_environment(app: &App, name: &str) -> anyhow::Result<()> {
    match app.config.environment(name) {
        Some(e) if e.slots.is_none() => Ok(()),
        Some(_) => Err(input(format!(
            "`{name}` is a pool of slots; only plain environments are scheduled and can be paused"
        ))),
        None => Err(input(format!(
            "unknown environment `{name}` (scheduled environments: {})",
            app.config
                .environments
                .iter()
                .filter(|e| e.slots.is_none())
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Pauses scheduled cycles of `env`.
pub async fn pause(app: &App, env: &str, by: &str, reason: &str) -> anyhow::Result<PauseRecord> {
    scheduled_environment(app, env)?;
    app.store.set_pause(env, true, by, reason, app.now()).await?;
    crate::audit::record(app, "pause", env, "scheduled cycles paused", reason, None).await;
    app.store
        .pause(env)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the pause of {env} was not recorded"))
}

/// Resumes scheduled cycles of `env`.
pub async fn resume(app: &App, env: &str, by: &str) -> anyhow::Result<PauseRecord> {
    scheduled_environment(app, env)?;
    match app.store.pause(env).await? {
        Some(p) if p.paused => {}
        _ => return Err(input(format!("{env} is not paused"))),
    }
    app.store.set_pause(env, false, by, "", app.now()).await?;
    crate::audit::record(app, "resume", env, "scheduled cycles resumed", "", None).await;
    app.store
        .pause(env)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the resume of {env} was not recorded"))
}
