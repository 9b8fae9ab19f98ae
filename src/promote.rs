//! Promotion (issue #5 point 8; seed 003's canary, then main stage):
//! `greenroom promote --from staging-canary --to staging [CYCLE]` deploys
//! exactly the manifest that passed verification in one environment onto
//! the next — the same commits and artifact references, recorded entries
//! deployed as they are through `engine::deploy_entries` (nothing resolved;
//! builds are keyed by commit and command, so nothing is rebuilt).
//!
//! Only verified manifests are promoted: a deploy cycle of `from` that
//! succeeded, whose `verify:*` stage rows include at least one suite that
//! ran and passed and none that failed ([`judge`]), and whose manifest was
//! not rolled back there as faulty. Without CYCLE the newest such cycle is
//! taken. The target must deploy the same components as the manifest
//! holds. Every promotion is a `promote` decision on both environments and
//! a `promote` action in the audit trail (the deploy it starts is audited
//! as any deploy).
//!
//! Automatic: `promote_to = "staging"` (with an optional `promote_after`
//! soak) on an `[[environment]]`: when a scheduled cycle there succeeds
//! verified, [`after_cycle`] waits the soak, checks the manifest still runs
//! there and the target is not paused, then promotes that cycle.

use crate::app::App;
use crate::engine::{self, CycleReport, DeployRequest};
use crate::error::input;
use crate::progress::{Reporter, Silent};
use greenroom_core::compose::Request;
use greenroom_core::config::Environment;
use greenroom_core::manifest::{Manifest, short_id};
use greenroom_store::{CycleRecord, StageRecord};
use std::sync::Arc;
use std::time::Duration;

/// How far back the newest verified cycle is looked for.
const LOOK_BACK: i64 = 200;

/// What to promote, as asked.
#[derive(Debug, Clone)]
pub struct PromoteRequest {
    /// The environment the manifest was verified in.
    pub from: String,
    /// The environment it goes to.
    pub to: String,
    /// The cycle of `from` whose manifest goes (default: the newest verified).
    pub cycle: Option<i64>,
    /// Why (recorded).
    pub reason: Option<String>,
    /// Plan only.
    pub dry_run: bool,
    /// Wait for the target's lease instead of failing when it is held.
    pub wait: bool,
}

/// Whether a cycle's verification passed: the suites that passed, or why
/// it is not verified. Pure: the cycle's result, its stage rows and the
/// quarantined suites (which never fail anything, so not this either).
pub fn judge(cycle: i64, result: &str, stages: &[StageRecord], quarantined: &[&str]) -> Result<Vec<String>, String> {
    if result != "succeeded" {
        return Err(format!(
            "cycle {cycle} {result}: only a succeeded cycle's manifest is promoted"
        ));
    }
    let suites: Vec<(&str, &str)> = stages
        .iter()
        .filter_map(|s| s.name.strip_prefix("verify:").map(|n| (n, s.result.as_str())))
        .filter(|(n, _)| !quarantined.contains(n))
        .collect();
    if let Some((name, r)) = suites
        .iter()
        .find(|(_, r)| !matches!(*r, "passed" | "flaky" | "skipped"))
    {
        return Err(format!(
            "cycle {cycle}: suite `{name}` {r}: only a manifest whose suites all passed is promoted"
        ));
    }
    let passed: Vec<String> = suites
        .iter()
        .filter(|(_, r)| matches!(*r, "passed" | "flaky"))
        .map(|(n, _)| n.to_string())
        .collect();
    if passed.is_empty() {
        return Err(format!(
            "cycle {cycle} ran no suite that passed{}: nothing verified its manifest",
            if suites.is_empty() { "" } else { " (all were skipped)" }
        ));
    }
    Ok(passed)
}

fn quarantined(app: &App) -> Vec<&str> {
    app.config
        .suites
        .iter()
        .filter(|s| s.tier == greenroom_core::config::Tier::Quarantine)
        .map(|s| s.name.as_str())
        .collect()
}

/// A verified cycle: the cycle, its manifest, the suites that passed.
struct Verified {
    cycle: CycleRecord,
    manifest: Manifest,
    suites: Vec<String>,
}

async fn check(app: &App, from: &str, c: &CycleRecord) -> anyhow::Result<Result<Verified, String>> {
    if c.kind != "deploy" {
        return Ok(Err(format!("cycle {} is a {} cycle", c.id, c.kind)));
    }
    let stages = app.store.stages(c.id).await?;
    let suites = match judge(c.id, &c.result, &stages, &quarantined(app)) {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    let Some(id) = c.manifest.as_deref() else {
        return Ok(Err(format!("cycle {} recorded no manifest", c.id)));
    };
    if let Some(f) = app.store.faulty(id, from).await? {
        return Ok(Err(format!(
            "cycle {}: manifest {} was rolled back as faulty on {from} by {} ({})",
            c.id,
            short_id(id),
            f.marked_by,
            f.reason
        )));
    }
    let Some(manifest) = app.store.manifest(id).await? else {
        return Ok(Err(format!(
            "cycle {}: manifest {} is no longer recorded",
            c.id,
            short_id(id)
        )));
    };
    Ok(Ok(Verified {
        cycle: c.clone(),
        manifest,
        suites,
    }))
}

/// The cycle of `from` to promote: the one asked for, or the newest verified.
async fn find(app: &App, from: &str, cycle: Option<i64>) -> anyhow::Result<Verified> {
    if let Some(id) = cycle {
        let Some(c) = app.store.cycle(id).await? else {
            return Err(input(format!("there is no cycle {id}")));
        };
        if c.environment != from {
            return Err(input(format!("cycle {id} ran on {}, not on {from}", c.environment)));
        }
        return check(app, from, &c)
            .await?
            .map_err(|why| input(format!("refusing to promote from {from}: {why}")));
    }
    let names = [from.to_string()];
    let mut why_not = Vec::new();
    for c in app.store.cycles(Some(&names), LOOK_BACK).await? {
        if c.kind != "deploy" || c.result == "running" {
            continue;
        }
        match check(app, from, &c).await? {
            Ok(v) => return Ok(v),
            Err(why) if why_not.len() < 3 => why_not.push(why),
            Err(_) => {}
        }
    }
    Err(input(format!(
        "refusing to promote from {from}: no verified manifest there (only a succeeded cycle whose suites passed is promoted){}",
        if why_not.is_empty() {
            String::new()
        } else {
            format!("; newest cycles: {}", why_not.join("; "))
        }
    )))
}

fn single(app: &App, name: &str) -> anyhow::Result<greenroom_core::config::Instance> {
    let instances = app.config.lookup_instances(name).map_err(input)?;
    match instances.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(input(format!(
            "`{name}` is a pool of {} slots: promote from or to one of them",
            instances.len()
        ))),
    }
}

/// Promotes (see the module documentation).
pub async fn promote(app: &App, req: &PromoteRequest, reporter: &dyn Reporter) -> anyhow::Result<CycleReport> {
    let from = single(app, &req.from)?;
    let to = single(app, &req.to)?;
    if from.name == to.name {
        return Err(input(format!("{} cannot be promoted onto itself", from.name)));
    }
    let v = find(app, &from.name, req.cycle).await?;
    let target = app
        .config
        .environment(&to.environment)
        .ok_or_else(|| input(format!("unknown environment `{}`", to.environment)))?;
    let missing: Vec<&str> = target
        .components
        .iter()
        .filter(|c| !v.manifest.components.contains_key(*c))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = v
        .manifest
        .components
        .keys()
        .filter(|c| !target.components.contains(c))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(input(format!(
            "refusing to promote manifest {} from {} to {}: they deploy other components ({}{}{}): only the same manifest is promoted",
            v.manifest.short_id(),
            from.name,
            to.name,
            if missing.is_empty() {
                String::new()
            } else {
                format!("{} has {} the manifest lacks", to.name, missing.join(", "))
            },
            if missing.is_empty() || extra.is_empty() {
                ""
            } else {
                "; "
            },
            if extra.is_empty() {
                String::new()
            } else {
                format!("the manifest has {} that {} does not deploy", extra.join(", "), to.name)
            },
        )));
    }
    // What ran in `from`, carried or not, is what was verified: deploy it all.
    let mut entries = v.manifest.components.clone();
    for e in entries.values_mut() {
        if e.carried && (e.commit.is_some() || e.image.is_some()) {
            e.carried = false;
        }
    }
    let text = format!(
        "promote from {} cycle {} (manifest {})",
        from.name,
        v.cycle.id,
        v.manifest.short_id()
    );
    let reason = req.reason.clone().unwrap_or_else(|| {
        format!(
            "verified on {} by {} in cycle {}",
            from.name,
            v.suites.join(", "),
            v.cycle.id
        )
    });
    let deploy = DeployRequest {
        env: to.name.clone(),
        request: Request {
            base: "stg".into(),
            ..Request::default()
        },
        text: text.clone(),
        dry_run: req.dry_run,
        wait: req.wait,
        reason: Some(reason.clone()),
        release_after: true,
        ..Default::default()
    };
    if !req.dry_run {
        let detail = format!(
            "{} promotes manifest {} from {} (cycle {}) to {}: {reason}",
            app.holder,
            v.manifest.short_id(),
            from.name,
            v.cycle.id,
            to.name
        );
        for env in [&from.name, &to.name] {
            app.store
                .record_decision(env, app.now(), "promote", &detail, &[], Some(v.cycle.id))
                .await?;
        }
        crate::audit::record(app, "promote", &to.name, &text, &reason, Some(v.cycle.id)).await;
        reporter.note(&detail);
    }
    engine::deploy_entries(app, &deploy, &entries, reporter).await
}

/// The decision that says a verified manifest soaks before promotion: a
/// restart finds it (and no later word on that cycle) and resumes the soak.
const SOAKS: &str = " soaks ";

/// After a scheduled cycle: when its environment has `promote_to` and the
/// cycle succeeded verified, promote it after `promote_after` (a detached
/// task: nothing here blocks the scheduler). Skipped, with a decision, when
/// the manifest no longer runs there after the soak or the target is paused.
pub fn after_cycle(app: &Arc<App>, env: &Environment, report: &CycleReport) {
    let (Some(to), Some(cycle), Some(manifest)) = (env.promote_to.clone(), report.cycle, report.manifest.clone())
    else {
        return;
    };
    if report.result != "succeeded" {
        return;
    }
    spawn_soak(app, env.name.clone(), to, cycle, manifest, env.promote_after, None);
}

/// After a restart: a soak the server was waiting out when it stopped (a
/// "soaks" decision on a cycle with no later promotion decision) goes on
/// for what is left of it, counted from that decision; one whose time
/// passed promotes at once. The same checks apply at its end.
pub async fn resume_soaks(app: &Arc<App>) {
    for env in app.config.environments.iter().filter(|e| e.promote_to.is_some()) {
        let Some(to) = env.promote_to.clone() else { continue };
        let decisions = match app.store.decisions(Some(&env.name), LOOK_BACK).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(environment = %env.name, "cannot read decisions to resume soaks: {e}");
                continue;
            }
        };
        // Newest first: the newest promote decision of each cycle is its last word.
        let mut seen = std::collections::BTreeSet::new();
        for d in decisions.iter().filter(|d| d.kind == "promote") {
            let Some(cycle) = d.cycle_id else { continue };
            if !seen.insert(cycle) || !d.reason.contains(SOAKS) {
                continue;
            }
            let manifest = match app.store.cycle(cycle).await {
                Ok(Some(c)) => c.manifest,
                _ => None,
            };
            let Some(manifest) = manifest else { continue };
            let ends = greenroom_core::time::add(d.at, env.promote_after);
            let left = Duration::from_millis(u64::try_from(ends - app.now()).unwrap_or(0));
            tracing::info!(
                environment = %env.name,
                "resuming the soak of cycle {cycle} before promotion to {to}: {} left",
                humantime::format_duration(left)
            );
            spawn_soak(
                app,
                env.name.clone(),
                to.clone(),
                cycle,
                manifest,
                env.promote_after,
                Some(left),
            );
        }
    }
}

/// Verifies, soaks (`promote_after`, or what is `left` of it after a
/// restart), checks and promotes, recording each step as a decision.
fn spawn_soak(
    app: &Arc<App>,
    from: String,
    to: String,
    cycle: i64,
    manifest: String,
    soak: Duration,
    left: Option<Duration>,
) {
    let app = app.clone();
    tokio::spawn(async move {
        let say = |kind: &'static str, reason: String| {
            let (app, from) = (app.clone(), from.clone());
            async move {
                tracing::info!(environment = %from, "{kind}: {reason}");
                if let Err(e) = app
                    .store
                    .record_decision(&from, app.now(), kind, &reason, &[], Some(cycle))
                    .await
                {
                    tracing::error!("cannot record a decision: {e}");
                }
            }
        };
        // Verified? (A cycle without suites is not promoted, and says so.)
        let verified = match app.store.stages(cycle).await {
            Ok(stages) => judge(cycle, &report_result(&app, cycle).await, &stages, &quarantined(&app)),
            Err(e) => Err(format!("cannot read its stages: {e}")),
        };
        if let Err(why) = verified {
            say("promote", format!("not promoted to {to}: {why}")).await;
            return;
        }
        match left {
            // Resumed: its soak was announced before the restart.
            Some(left) => tokio::time::sleep(left).await,
            None if !soak.is_zero() => {
                say(
                    "promote",
                    format!(
                        "cycle {cycle} verified: manifest {}{SOAKS}{} before it is promoted to {to}",
                        short_id(&manifest),
                        humantime::format_duration(soak)
                    ),
                )
                .await;
                tokio::time::sleep(soak).await;
            }
            None => {}
        }
        let runs = app
            .store
            .environment_manifest(&from)
            .await
            .ok()
            .flatten()
            .and_then(|(m, _)| m);
        if runs.as_deref() != Some(manifest.as_str()) {
            say(
                "promote",
                format!(
                    "not promoted to {to}: manifest {} no longer runs on {from} after its soak ({} does)",
                    short_id(&manifest),
                    runs.as_deref().map(short_id).unwrap_or("nothing")
                ),
            )
            .await;
            return;
        }
        if let Ok(Some(p)) = app.store.pause(&to).await
            && p.paused
        {
            say(
                "promote",
                format!(
                    "not promoted to {to}: it is paused by {} ({}); promote by hand after `greenroom resume --env {to}`",
                    p.by, p.reason
                ),
            )
            .await;
            return;
        }
        let req = PromoteRequest {
            from: from.clone(),
            to: to.clone(),
            cycle: Some(cycle),
            reason: Some(format!(
                "promote_to = \"{to}\": cycle {cycle} of {from} verified{}",
                if soak.is_zero() {
                    String::new()
                } else {
                    format!(" and soaked {}", humantime::format_duration(soak))
                }
            )),
            dry_run: false,
            wait: true,
        };
        match promote(&app, &req, &Silent).await {
            Ok(r) => {
                say(
                    "promote",
                    format!(
                        "promoted manifest {} to {to}: cycle {} {}",
                        short_id(&manifest),
                        r.cycle.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                        r.result
                    ),
                )
                .await
            }
            Err(e) => say("promote", format!("not promoted to {to}: {e:#}")).await,
        }
    });
}

/// A cycle's stored result (the report's may predate its recording).
async fn report_result(app: &App, cycle: i64) -> String {
    match app.store.cycle(cycle).await {
        Ok(Some(c)) => c.result,
        Ok(None) => "vanished".into(),
        Err(e) => format!("unreadable ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn only_verified_cycles_are_promoted() {
        let ok = [
            row("deploy", "ok"),
            row("verify:smoke", "passed"),
            row("verify:slow", "skipped"),
        ];
        assert_eq!(judge(3, "succeeded", &ok, &[]), Ok(vec!["smoke".to_string()]));
        let flaky = [row("verify:smoke", "flaky")];
        assert_eq!(judge(3, "succeeded", &flaky, &[]), Ok(vec!["smoke".to_string()]));
        let failed = judge(4, "failed", &ok, &[]).unwrap_err();
        assert!(failed.contains("cycle 4 failed"), "{failed}");
        let red = [row("verify:smoke", "passed"), row("verify:gate", "failed")];
        let why = judge(5, "succeeded", &red, &[]).unwrap_err();
        assert!(why.contains("suite `gate` failed"), "{why}");
        assert_eq!(
            judge(5, "succeeded", &red, &["gate"]),
            Ok(vec!["smoke".to_string()]),
            "quarantined"
        );
        let none = judge(6, "succeeded", &[row("deploy", "ok")], &[]).unwrap_err();
        assert!(none.contains("ran no suite"), "{none}");
        let skipped = judge(7, "succeeded", &[row("verify:smoke", "skipped")], &[]).unwrap_err();
        assert!(skipped.contains("all were skipped"), "{skipped}");
    }
}
