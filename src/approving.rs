//! `greenroom approve` and `greenroom retry` (issue #5 point 1): a stage
//! with `approval = true` waits for a person, whichever process runs the
//! cycle (the approval is written to the store, the engine polls it); a
//! failed cycle can run again from its failed stage (or `--from` another):
//! a new cycle with exactly the same manifest, the stages before skipped
//! except the deploy (which changes nothing then).

use crate::app::App;
use crate::engine::{self, CycleReport, DeployRequest};
use crate::error::input;
use crate::progress::Reporter;
use greenroom_core::compose::Request;
use greenroom_core::config::{Stage, StageKind};
use greenroom_store::{ApprovalRecord, StageRecord};

/// What an approval did.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Approved {
    /// The cycle.
    pub cycle: i64,
    /// Its environment instance.
    pub environment: String,
    /// The stage approved.
    pub stage: String,
    /// Who approved it (the first approval stands).
    pub by: String,
}

/// The stage a running cycle waits on for an approval, if any.
fn waiting_stage(stages: &[StageRecord]) -> Option<String> {
    let mut waiting: Option<String> = None;
    for s in stages {
        if let Some(name) = s.name.strip_prefix("approval:") {
            match s.result.as_str() {
                "waiting" => waiting = Some(name.to_string()),
                _ if waiting.as_deref() == Some(name) => waiting = None,
                _ => {}
            }
        }
    }
    waiting
}

/// Approves `stage` (default: the one the cycle waits on) of a running cycle.
pub async fn approve(app: &App, cycle: i64, stage: Option<&str>, reason: &str) -> anyhow::Result<Approved> {
    let Some(c) = app.store.cycle(cycle).await? else {
        return Err(input(format!("there is no cycle {cycle}")));
    };
    if c.result != "running" {
        return Err(input(format!("cycle {cycle} is not running (it {})", c.result)));
    }
    let pipeline = pipeline_of(app, &c.environment);
    let stage = match stage {
        Some(s) => s.to_string(),
        None => match waiting_stage(&app.store.stages(cycle).await?) {
            Some(s) => s,
            None => {
                return Err(input(format!(
                    "cycle {cycle} waits for no approval yet; name the stage with --stage ({})",
                    approvable(&pipeline)
                )));
            }
        },
    };
    match pipeline.iter().find(|s| s.name == stage) {
        Some(s) if s.approval => {}
        Some(_) => {
            return Err(input(format!(
                "stage `{stage}` of {} needs no approval ({})",
                c.environment,
                approvable(&pipeline)
            )));
        }
        None => {
            return Err(input(format!(
                "{} has no stage `{stage}` (its stages: {})",
                c.environment,
                pipeline.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let fresh = app
        .store
        .approve(&ApprovalRecord {
            cycle_id: cycle,
            stage: stage.clone(),
            approved_by: app.holder.clone(),
            reason: reason.to_string(),
            approved_at: app.now(),
        })
        .await?;
    let first = app.store.approval(cycle, &stage).await?;
    if fresh {
        crate::audit::record(
            app,
            "approve",
            &c.environment,
            &format!("approved stage `{stage}` of cycle {cycle}"),
            reason,
            Some(cycle),
        )
        .await;
    }
    Ok(Approved {
        cycle,
        environment: c.environment,
        stage,
        by: first.map(|a| a.approved_by).unwrap_or_else(|| app.holder.clone()),
    })
}

fn pipeline_of(app: &App, instance: &str) -> Vec<Stage> {
    app.config
        .lookup_instances(instance)
        .ok()
        .and_then(|i| i.first().and_then(|i| app.config.environment(&i.environment).cloned()))
        .map(|e| e.pipeline())
        .unwrap_or_default()
}

fn approvable(pipeline: &[Stage]) -> String {
    let names: Vec<&str> = pipeline
        .iter()
        .filter(|s| s.approval)
        .map(|s| s.name.as_str())
        .collect();
    if names.is_empty() {
        "no stage of it needs one".into()
    } else {
        format!("stages needing one: {}", names.join(", "))
    }
}

/// The pipeline stage a recorded failure belongs to.
pub fn failed_stage(pipeline: &[Stage], stages: &[StageRecord]) -> Option<String> {
    let failed = stages.iter().find(|s| s.result == "failed")?;
    let by_kind = |k: StageKind| pipeline.iter().find(|s| s.kind == k).map(|s| s.name.clone());
    if let Some(s) = pipeline.iter().find(|s| s.name == failed.name) {
        return Some(s.name.clone());
    }
    match failed.name.as_str() {
        "build" | "deploy" | "health" => by_kind(StageKind::Deploy),
        n if n.starts_with("verify:") => by_kind(StageKind::Verify),
        _ => None,
    }
}

/// Runs a finished cycle's manifest again from `from` (default: the stage
/// it failed in).
pub async fn retry(app: &App, cycle: i64, from: Option<&str>, reporter: &dyn Reporter) -> anyhow::Result<CycleReport> {
    let Some(c) = app.store.cycle(cycle).await? else {
        return Err(input(format!("there is no cycle {cycle}")));
    };
    if c.result == "running" {
        return Err(input(format!("cycle {cycle} is still running")));
    }
    if c.kind != "deploy" {
        return Err(input(format!(
            "cycle {cycle} is a {} cycle: only deploys can be retried",
            c.kind
        )));
    }
    let Some(manifest_id) = &c.manifest else {
        return Err(input(format!("cycle {cycle} recorded no manifest")));
    };
    let Some(manifest) = app.store.manifest(manifest_id).await? else {
        return Err(input(format!(
            "the manifest of cycle {cycle} is no longer recorded (removed by retention)"
        )));
    };
    let pipeline = pipeline_of(app, &c.environment);
    let names = || pipeline.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
    let from = match from {
        Some(f) if pipeline.iter().any(|s| s.name == f) => f.to_string(),
        Some(f) => {
            return Err(input(format!(
                "{} has no stage `{f}` (its stages: {})",
                c.environment,
                names()
            )));
        }
        None => match failed_stage(&pipeline, &app.store.stages(cycle).await?) {
            Some(s) => s,
            None => {
                return Err(input(format!(
                    "cycle {cycle} {} without a failed stage to retry from: give --from (stages: {})",
                    c.result,
                    names()
                )));
            }
        },
    };
    let text = format!("retry of cycle {cycle} from stage {from}");
    let req = DeployRequest {
        env: c.environment.clone(),
        request: Request {
            base: "stg".into(),
            overrides: Vec::new(),
            only: Vec::new(),
            skip: Vec::new(),
        },
        text: text.clone(),
        reason: Some(text),
        release_after: true,
        retry_from: Some(from),
        ..Default::default()
    };
    engine::deploy_entries(app, &req, &manifest.components, reporter).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use greenroom_core::config::default_pipeline;

    fn row(name: &str, result: &str) -> StageRecord {
        StageRecord {
            seq: 0,
            name: name.into(),
            component: None,
            started_at: 0,
            finished_at: 0,
            result: result.into(),
            detail: None,
        }
    }

    #[test]
    fn the_failed_stage_is_found_from_the_records() {
        let p = default_pipeline();
        assert_eq!(
            failed_stage(&p, &[row("resolve", "ok"), row("health", "failed")]),
            Some("deploy".into())
        );
        assert_eq!(
            failed_stage(&p, &[row("deploy", "ok"), row("verify:api", "failed")]),
            Some("verify".into())
        );
        assert_eq!(failed_stage(&p, &[row("deploy", "ok")]), None);
    }

    #[test]
    fn the_waiting_stage_is_the_last_unanswered_one() {
        assert_eq!(
            waiting_stage(&[row("approval:migrate", "waiting")]),
            Some("migrate".into())
        );
        assert_eq!(
            waiting_stage(&[row("approval:migrate", "waiting"), row("approval:migrate", "approved")]),
            None
        );
        assert_eq!(waiting_stage(&[row("deploy", "ok")]), None);
    }
}
