//! Deploy blockers (issue #5 point 6): before a scheduled cycle starts,
//! before an irreversible stage, and before a person's deploy, greenroom
//! asks whether a freeze window or a firing alert forbids it
//! (`core::blockers` decides; Alertmanager is asked through its API v2,
//! `GET /api/v2/alerts` with the environment's `block_on_alerts` matchers
//! as filters). A scheduled cycle waits, saying why, and deploys what is
//! newest once the blocker lifts (it resolves only then: no backlog
//! replay); a person's deploy is refused with the reason. An admin's
//! override (`greenroom override`) lifts the blockers of an environment
//! for a while, recorded in the audit trail. An Alertmanager that cannot
//! be asked blocks too: greenroom does not deploy blind.

use crate::app::App;
use crate::error::input;
use greenroom_core::blockers;
use greenroom_core::config::{Environment, Instance};
use greenroom_store::OverrideRecord;
use std::time::Duration;

/// How long one question to Alertmanager may take.
const ALERTMANAGER_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a waiting cycle asks again.
pub const POLL: Duration = Duration::from_secs(2);

/// Why a cycle of `inst` may not start now, if it may not.
pub async fn check(app: &App, inst: &Instance, env: &Environment) -> anyhow::Result<Option<String>> {
    if let Some(o) = app.store.active_override(&inst.name, app.now()).await? {
        tracing::debug!(environment = %inst.name, "blockers overridden by {}", o.granted_by);
        return Ok(None);
    }
    if let Some(why) = blockers::frozen(&app.config.freezes, &inst.name, &env.name, app.now()) {
        return Ok(Some(why));
    }
    if env.block_on_alerts.is_empty() {
        return Ok(None);
    }
    let Some(base) = &app.config.alertmanager else {
        return Ok(Some(
            "block_on_alerts is set but no [alertmanager] url is configured".to_string(),
        ));
    };
    Ok(match firing(base, &env.block_on_alerts).await {
        Ok(why) => why,
        Err(e) => Some(format!("cannot ask Alertmanager at {base} ({e}): not deploying blind")),
    })
}

async fn firing(base: &str, matchers: &[blockers::Matcher]) -> anyhow::Result<Option<String>> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(ALERTMANAGER_TIMEOUT)
        .build()?;
    let mut query: Vec<(&str, String)> = vec![
        ("active", "true".into()),
        ("silenced", "false".into()),
        ("inhibited", "false".into()),
    ];
    for m in matchers {
        query.push(("filter", m.filter()));
    }
    let resp = client
        .get(format!("{base}/api/v2/alerts"))
        .query(&query)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.without_url()))?;
    let status = resp.status();
    if !status.is_success() {
        anyhow::bail!("it answered {status}");
    }
    let body = resp.text().await.map_err(|e| anyhow::anyhow!("{}", e.without_url()))?;
    let answer: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| anyhow::anyhow!("its answer is not JSON ({e})"))?;
    blockers::alerts_block(&answer).map_err(|e| anyhow::anyhow!(e))
}

/// The same check for a person's deploy: refused with the reason and the
/// way around it.
pub async fn refuse_if_blocked(app: &App, inst: &Instance, env: &Environment) -> anyhow::Result<()> {
    match check(app, inst, env).await? {
        None => Ok(()),
        Some(why) => Err(input(format!(
            "{} is blocked: {why}. Wait for it to lift, or an admin may `greenroom override --env {} --reason …` (recorded)",
            inst.name, inst.name
        ))),
    }
}

/// Grants an override of `env`'s blockers for `ttl`.
pub async fn grant_override(app: &App, env: &str, reason: &str, ttl: Duration) -> anyhow::Result<OverrideRecord> {
    let instances = app.config.lookup_instances(env).map_err(input)?;
    if reason.trim().is_empty() {
        return Err(input("an override needs a --reason (it is recorded)"));
    }
    let now = app.now();
    let mut last = None;
    for inst in instances {
        let o = OverrideRecord {
            environment: inst.name.clone(),
            granted_by: app.holder.clone(),
            reason: reason.to_string(),
            granted_at: now,
            until: greenroom_core::time::add(now, ttl),
        };
        app.store.set_override(&o).await?;
        crate::audit::record(
            app,
            "override",
            &inst.name,
            &format!("deploy blockers lifted until {}", greenroom_core::time::format(o.until)),
            reason,
            None,
        )
        .await;
        app.store
            .record_decision(
                &inst.name,
                now,
                "override",
                &format!(
                    "{} overrides the deploy blockers of {} until {}: {reason}",
                    app.holder,
                    inst.name,
                    greenroom_core::time::format(o.until)
                ),
                &[],
                None,
            )
            .await?;
        last = Some(o);
    }
    last.ok_or_else(|| input(format!("`{env}` has no instances")))
}
