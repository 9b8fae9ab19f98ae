//! `greenroom rollback` (issue #5 point 4; seed 003): redeploy a recorded
//! manifest, exactly its commits and images (nothing resolved again),
//! components in rollback order (`[[environment]] rollback_order`, default:
//! dependents first), deploy commands told (`GREENROOM_ROLLBACK=1`,
//! `GREENROOM_PREVIOUS_MANIFEST`).
//!
//! Before anything is deployed, a rollback locks continuous deployment of
//! the environment (a pause, lifted by `greenroom resume`: the bad version
//! must not come straight back) and marks the manifest it replaces as
//! faulty there (the schedule never deploys it again; a person may). The
//! target is `previous` (the last manifest that succeeded there before the
//! one running), a manifest id (prefix), or a version: a tag, ref, image
//! tag or commit prefix recorded in a manifest that succeeded there.

use crate::app::App;
use crate::engine::{self, CycleReport, DeployRequest, RollbackOf};
use crate::error::input;
use crate::progress::Reporter;
use greenroom_core::compose::Request;
use greenroom_core::manifest::{Manifest, ManifestComponent, short_id};
use greenroom_store::FaultyRecord;

/// How far back `previous` and versions are looked for.
const LOOK_BACK: i64 = 500;

/// What to roll back to, as asked.
#[derive(Debug, Clone)]
pub struct RollbackRequest {
    /// Environment (one instance: a plain environment or a slot).
    pub env: String,
    /// `previous`, a manifest id prefix, or a version.
    pub to: String,
    /// Why (recorded, shown in the pause).
    pub reason: Option<String>,
    /// Plan only: which manifest, which order.
    pub dry_run: bool,
    /// Roll back past an irreversible stage (an admin's decision, recorded).
    pub force: bool,
}

/// The newest irreversible stage that ran on `instance` after the last
/// cycle that deployed `manifest` there (all recorded cycles when it never
/// ran there): `(cycle, what ran)`.
async fn irreversible_since(app: &App, instance: &str, manifest: &str) -> anyhow::Result<Option<(i64, String)>> {
    let names = [instance.to_string()];
    let cycles = app.store.cycles(Some(&names), LOOK_BACK).await?;
    let since = cycles
        .iter()
        .find(|c| c.manifest.as_deref() == Some(manifest) && c.result == "succeeded")
        .map(|c| c.id)
        .unwrap_or(0);
    for c in cycles.iter().filter(|c| c.id > since) {
        for s in app.store.stages(c.id).await? {
            if s.name == engine::IRREVERSIBLE && s.result == "ok" {
                return Ok(Some((c.id, s.detail.unwrap_or_default())));
            }
        }
    }
    Ok(None)
}

/// Whether a manifest entry carries `version`: its tag or ref, its image
/// tag, how it was asked, or its commit (a prefix of 7+ hex digits).
pub fn carries_version(e: &ManifestComponent, version: &str) -> bool {
    let tail = |s: &str| s.rsplit(['/', ':']).next().map(|t| t == version).unwrap_or(false);
    e.reference.as_deref().is_some_and(|r| r == version || tail(r))
        || e.image.as_deref().is_some_and(|i| i.ends_with(&format!(":{version}")))
        || e.origin == version
        || tail(&e.origin)
        || (version.len() >= 7
            && version.bytes().all(|b| b.is_ascii_hexdigit())
            && e.commit
                .as_deref()
                .is_some_and(|c| c.starts_with(&version.to_ascii_lowercase())))
}

/// Finds the manifest to roll back to, and the one it replaces.
async fn target(app: &App, instance: &str, to: &str) -> anyhow::Result<(Manifest, Option<String>)> {
    let current = app.store.environment_manifest(instance).await?.and_then(|(m, _)| m);
    let names = [instance.to_string()];
    let cycles = app.store.cycles(Some(&names), LOOK_BACK).await?;
    let good: Vec<&greenroom_store::CycleRecord> = cycles
        .iter()
        .filter(|c| c.kind == "deploy" && c.result == "succeeded" && c.manifest.is_some())
        .collect();
    // Manifests rolled back as faulty here are no target for `previous` or
    // a version (an explicit id still is).
    let mut good_ids: Vec<&str> = Vec::new();
    for c in &good {
        let Some(id) = c.manifest.as_deref() else { continue };
        if Some(id) != current.as_deref() && !good_ids.contains(&id) && app.store.faulty(id, instance).await?.is_none()
        {
            good_ids.push(id);
        }
    }
    let found: Option<Manifest> = if to == "previous" {
        match good_ids.first() {
            Some(id) => app.store.manifest(id).await?,
            None => None,
        }
    } else {
        // A manifest id first (any recorded manifest), then a version.
        let by_id = match app.store.manifest(to).await {
            Ok(m) => m,
            Err(greenroom_store::StoreError::Ambiguous(p)) => {
                return Err(input(format!("`{p}` matches several manifests: give more of the id")));
            }
            Err(e) => return Err(e.into()),
        };
        match by_id {
            Some(m) => Some(m),
            None => {
                let mut hit = None;
                for id in &good_ids {
                    if let Some(m) = app.store.manifest(id).await?
                        && m.components.values().any(|e| carries_version(e, to))
                    {
                        hit = Some(m);
                        break;
                    }
                }
                hit
            }
        }
    };
    let Some(m) = found else {
        let recent: Vec<String> = good_ids.iter().take(5).map(|m| short_id(m).to_string()).collect();
        return Err(input(format!(
            "nothing to roll {instance} back to for `{to}`: {} (manifests that succeeded there, newest first: {})",
            if to == "previous" {
                "no earlier manifest succeeded there (manifests rolled back as faulty do not count)".to_string()
            } else {
                "no recorded manifest has that id, and none that succeeded there carries that version".to_string()
            },
            if recent.is_empty() {
                "none".to_string()
            } else {
                recent.join(", ")
            }
        )));
    };
    if Some(&m.id) == current.as_ref() {
        return Err(input(format!("{instance} already runs manifest {}", m.short_id())));
    }
    Ok((m, current))
}

/// Rolls `req.env` back (see the module documentation).
pub async fn rollback(app: &App, req: &RollbackRequest, reporter: &dyn Reporter) -> anyhow::Result<CycleReport> {
    let instances = app.config.lookup_instances(&req.env).map_err(input)?;
    let [inst] = instances.as_slice() else {
        return Err(input(format!(
            "`{}` is a pool of {} slots: roll back one of them (--env {})",
            req.env,
            instances.len(),
            instances.first().map(|i| i.name.as_str()).unwrap_or("SLOT")
        )));
    };
    let (to, replaced) = target(app, &inst.name, &req.to).await?;
    // Past a point of no return (seed 003's post-deploy migrations) the old
    // version cannot come back: refuse, offering to roll forward.
    let forced = match irreversible_since(app, &inst.name, &to.id).await? {
        Some((cycle, what)) if !req.force => {
            return Err(input(format!(
                "refusing to roll {} back to {}: an irreversible stage ran in cycle {cycle} since ({what}). \
                 Roll forward instead: deploy a fix (`greenroom deploy --env {} COMPONENT=REF`); \
                 an admin who knows the old version still works can force it with `greenroom rollback --force`",
                inst.name,
                to.short_id(),
                inst.name
            )));
        }
        Some((cycle, what)) => Some(format!("forced past the irreversible stage of cycle {cycle} ({what})")),
        None => None,
    };
    let text = format!("rollback to {} (--to {})", to.short_id(), req.to);
    let reason = req
        .reason
        .clone()
        .unwrap_or_else(|| format!("rollback to {}", to.short_id()));
    let reason = match &forced {
        Some(f) => format!("{reason} [{f}]"),
        None => reason,
    };
    let deploy = DeployRequest {
        env: inst.name.clone(),
        request: Request {
            base: "stg".into(),
            overrides: Vec::new(),
            only: Vec::new(),
            skip: Vec::new(),
        },
        text: text.clone(),
        dry_run: req.dry_run,
        reason: Some(reason.clone()),
        release_after: true,
        rollback: Some(RollbackOf {
            previous_manifest: replaced.clone(),
        }),
        ..Default::default()
    };
    if req.dry_run {
        return engine::deploy_entries(app, &deploy, &to.components, reporter).await;
    }
    // Lock continuous deployment first: the schedule must not bring the
    // bad version back while (or after) the rollback runs.
    let env = app.config.environment(&inst.environment);
    if env.is_some_and(|e| e.slots.is_none()) {
        let why = format!(
            "rolled back to {} by {}: continuous deployment is locked until `greenroom resume --env {}` ({reason})",
            to.short_id(),
            app.holder,
            inst.name
        );
        crate::pausing::pause(app, &inst.name, &app.holder, &why).await?;
        reporter.note(&format!("{}: continuous deployment locked until resumed", inst.name));
    }
    if let Some(bad) = &replaced {
        app.store
            .mark_faulty(&FaultyRecord {
                manifest: bad.clone(),
                environment: inst.name.clone(),
                marked_by: app.holder.clone(),
                reason: reason.clone(),
                marked_at: app.now(),
            })
            .await?;
        reporter.note(&format!("manifest {} marked faulty on {}", short_id(bad), inst.name));
    }
    app.store
        .record_decision(
            &inst.name,
            app.now(),
            "rollback",
            &format!(
                "{} rolls {} back from {} to {}: {reason}",
                app.holder,
                inst.name,
                replaced.as_deref().map(short_id).unwrap_or("a failed cycle"),
                to.short_id()
            ),
            &[],
            None,
        )
        .await?;
    let report = engine::deploy_entries(app, &deploy, &to.components, reporter).await?;
    crate::notify::rolled_back(app, &inst.name, &report, replaced.as_deref(), &reason);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(reference: Option<&str>, image: Option<&str>, origin: &str, commit: Option<&str>) -> ManifestComponent {
        ManifestComponent {
            origin: origin.into(),
            reference: reference.map(String::from),
            image: image.map(String::from),
            commit: commit.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn versions_are_found_by_tag_image_origin_or_commit() {
        let tag = entry(Some("refs/tags/v1.0.0"), None, "channel:prod", Some("0123456789abcdef"));
        assert!(carries_version(&tag, "v1.0.0"));
        assert!(carries_version(&tag, "refs/tags/v1.0.0"));
        assert!(carries_version(&tag, "0123456"));
        assert!(carries_version(&tag, "0123456789ABCDEF"), "commits in any case");
        assert!(!carries_version(&tag, "012345"), "too short for a commit");
        assert!(!carries_version(&tag, "v1.0"));
        assert!(!carries_version(&tag, "1.0.0"));
        let image = entry(None, Some("registry.example/api:2.3.1"), "channel:stg", None);
        assert!(carries_version(&image, "2.3.1"));
        assert!(!carries_version(&image, "2.3"));
        let pr = entry(Some("refs/pull/12/head"), None, "pr:12", Some("fedcba9876543210"));
        assert!(carries_version(&pr, "pr:12"));
        assert!(!carries_version(&pr, "v1.0.0"));
    }
}
