//! Cancelling a running cycle, from the CLI, the API (and, with #4, a PR
//! comment).
//!
//! A cancel is a request written to the store (who, why, when); the process
//! that runs the cycle — this one, another CLI, or `greenroom serve` — sees
//! it before its next step (each stage and each component checks, see
//! `engine::Cycle::halt`), records the cycle as `cancelled` with who asked,
//! and releases the lease as a finished cycle would. Work already done stays
//! done and recorded per component; nothing is rolled back.

use crate::app::App;
use crate::error::input;
use serde::{Deserialize, Serialize};

/// What to cancel.
#[derive(Debug, Clone)]
pub enum Target {
    /// The cycle running on this environment, slot, or on any slot of this pool.
    Environment(String),
    /// This cycle.
    Cycle(i64),
}

/// One cancel request.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cancelled {
    /// The cycle asked to stop.
    pub cycle: i64,
    /// Where it runs.
    pub environment: String,
    /// Who asked (the first request wins when several people ask).
    pub by: String,
    /// Why.
    pub reason: String,
}

/// Asks the running cycle(s) of `target` to stop before their next step.
/// Fails (as bad input) when nothing matching runs.
pub async fn cancel(app: &App, target: &Target, by: &str, reason: &str) -> anyhow::Result<Vec<Cancelled>> {
    let running = app.store.running_cycles().await?;
    let chosen: Vec<_> = match target {
        Target::Cycle(id) => match running.iter().find(|c| c.id == *id) {
            Some(c) => vec![c.clone()],
            None => {
                return Err(match app.store.cycle(*id).await? {
                    Some(c) => input(format!("cycle {id} is not running (it {})", c.result)),
                    None => input(format!("there is no cycle {id}")),
                });
            }
        },
        Target::Environment(name) => {
            let instances = app.config.lookup_instances(name).map_err(input)?;
            let names: Vec<&str> = instances.iter().map(|i| i.name.as_str()).collect();
            let chosen: Vec<_> = running
                .iter()
                .filter(|c| names.contains(&c.environment.as_str()))
                .cloned()
                .collect();
            if chosen.is_empty() {
                return Err(input(format!("no cycle is running on {name}")));
            }
            chosen
        }
    };
    let mut out = Vec::new();
    for c in chosen {
        if app.store.request_cancel(c.id, by, reason, app.now()).await? {
            crate::audit::record(
                app,
                "cancel",
                &c.environment,
                &format!("cancel cycle {}", c.id),
                reason,
                Some(c.id),
            )
            .await;
            // The first request wins: report who it is.
            let first = app.store.cancel_requested(c.id).await?;
            out.push(Cancelled {
                cycle: c.id,
                environment: c.environment.clone(),
                by: first.as_ref().map_or_else(|| by.to_string(), |f| f.by.clone()),
                reason: first.map_or_else(|| reason.to_string(), |f| f.reason),
            });
        }
    }
    if out.is_empty() {
        return Err(input("the cycle finished before it could be cancelled"));
    }
    Ok(out)
}
