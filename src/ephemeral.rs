//! Ephemeral environments and PR previews (issue #5 point 3). A profile is
//! a pool with `[environment.profile]`; `greenroom env create NAME
//! --profile P` gives one of its free slots a name for a while (`ttl`),
//! deploys the profile's versions there and keeps the slot's lease for the
//! creator; `env destroy` (or the end of its time, checked by `greenroom
//! serve` and `greenroom gc`) stops it, frees the lease and the slot. With
//! `preview = true`, `greenroom deploy --preview REPO#N` makes (or renews)
//! the PR's own environment, `pr-REPO-N`, which goes when the PR closes.
//! The slots are the cap: when every slot is taken, `--wait` queues.
//! Names reach the CLI's commands through [`resolve`]: `--env review-42`
//! means the slot it occupies.

use crate::app::App;
use crate::engine::{self, CycleReport, DeployRequest};
use crate::error::input;
use crate::progress::{Reporter, Silent};
use greenroom_core::compose::{self, Request};
use greenroom_core::config::Environment;
use greenroom_store::EphemeralRecord;
use std::time::Duration;

/// How often a queued `env create --wait` looks for a free slot.
const QUEUE_POLL: Duration = Duration::from_secs(1);

/// What to make.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// Its name.
    pub name: String,
    /// The profile.
    pub profile: String,
    /// Its life (default: the profile's `ttl`).
    pub ttl: Option<Duration>,
    /// Why.
    pub reason: String,
    /// `COMPONENT=REF` overrides on top of the profile's versions.
    pub overrides: Vec<String>,
    /// The PR it previews.
    pub pr: Option<String>,
    /// Queue for a free slot instead of failing.
    pub wait: bool,
}

fn profile<'a>(app: &'a App, name: &str) -> anyhow::Result<(&'a Environment, &'a greenroom_core::config::Profile)> {
    match app
        .config
        .environment(name)
        .and_then(|e| e.profile.as_ref().map(|p| (e, p)))
    {
        Some(found) => Ok(found),
        None => {
            let profiles: Vec<&str> = app
                .config
                .environments
                .iter()
                .filter(|e| e.profile.is_some())
                .map(|e| e.name.as_str())
                .collect();
            Err(input(format!(
                "`{name}` is not a profile ({}: a pool with `[environment.profile]`)",
                if profiles.is_empty() {
                    "none is configured".to_string()
                } else {
                    format!("profiles: {}", profiles.join(", "))
                }
            )))
        }
    }
}

fn check_name(app: &App, name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(input(format!(
            "`{name}` is not an environment name (lower-case letters, digits and `-`, at most 63)"
        )));
    }
    if app.config.lookup_instances(name).is_ok() {
        return Err(input(format!(
            "`{name}` is a configured environment; choose another name"
        )));
    }
    Ok(())
}

/// The slot an ephemeral environment occupies, or `name` itself.
pub async fn resolve(app: &App, name: &str) -> anyhow::Result<String> {
    if app.config.lookup_instances(name).is_ok() {
        return Ok(name.to_string());
    }
    Ok(app
        .store
        .ephemerals()
        .await?
        .into_iter()
        .find(|e| e.name == name)
        .map(|e| e.slot)
        .unwrap_or_else(|| name.to_string()))
}

/// Overrides: the profile's versions, then the asked ones (which win).
fn overrides(profile: &[String], asked: &[String]) -> anyhow::Result<Vec<compose::Override>> {
    let mut out: Vec<compose::Override> = Vec::new();
    for o in profile.iter().chain(asked) {
        let o = compose::parse_override(o).map_err(|e| input(e.to_string()))?;
        out.retain(|x| x.component != o.component);
        out.push(o);
    }
    Ok(out)
}

/// Makes an ephemeral environment and deploys it (see the module documentation).
pub async fn create(
    app: &App,
    req: &CreateRequest,
    reporter: &dyn Reporter,
) -> anyhow::Result<(EphemeralRecord, CycleReport)> {
    check_name(app, &req.name)?;
    let (env, prof) = profile(app, &req.profile)?;
    let overrides = overrides(&prof.versions, &req.overrides)?;
    let ttl = req.ttl.unwrap_or(prof.ttl);
    let record = loop {
        let taken = app.store.ephemerals().await?;
        if let Some(e) = taken.iter().find(|e| e.name == req.name) {
            return Err(input(format!(
                "{} exists (slot {}, until {}): deploy to it, or `greenroom env destroy {}` first",
                e.name,
                e.slot,
                greenroom_core::time::format(e.expires_at),
                e.name
            )));
        }
        let mut made = None;
        for inst in env.instances() {
            if taken.iter().any(|e| e.slot == inst.name) {
                continue;
            }
            let (lease, _) = app.store.lease(&inst.name).await?;
            if lease.is_some_and(|l| l.holder != app.holder && l.expires > app.now()) {
                continue;
            }
            let now = app.now();
            let rec = EphemeralRecord {
                name: req.name.clone(),
                profile: req.profile.clone(),
                slot: inst.name.clone(),
                created_by: app.holder.clone(),
                reason: req.reason.clone(),
                pr: req.pr.clone(),
                created_at: now,
                expires_at: greenroom_core::time::add(now, ttl),
            };
            if app.store.create_ephemeral(&rec).await? {
                made = Some(rec);
                break;
            }
        }
        match made {
            Some(r) => break r,
            None if req.wait => {
                reporter.note(&format!("every slot of {} is in use: waiting for one", req.profile));
                tokio::time::sleep(QUEUE_POLL).await;
            }
            None => {
                let names: Vec<String> = taken
                    .iter()
                    .filter(|e| e.profile == req.profile)
                    .map(|e| format!("{} ({})", e.name, e.slot))
                    .collect();
                return Err(crate::error::UserError::Busy(format!(
                    "every slot of profile {} is in use ({}): destroy one, or pass --wait to queue",
                    req.profile,
                    if names.is_empty() {
                        "leased by people".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
                .into());
            }
        }
    };
    crate::audit::record(
        app,
        "env-create",
        &record.slot,
        &format!(
            "{} from profile {} until {}",
            record.name,
            record.profile,
            greenroom_core::time::format(record.expires_at)
        ),
        &req.reason,
        None,
    )
    .await;
    match deploy(app, &record, overrides, reporter).await {
        Ok(report) => Ok((record, report)),
        Err(e) => {
            // Nothing was deployed: the name and the slot are free again.
            let _ = app.store.delete_ephemeral(&record.name).await;
            Err(e)
        }
    }
}

async fn deploy(
    app: &App,
    record: &EphemeralRecord,
    overrides: Vec<compose::Override>,
    reporter: &dyn Reporter,
) -> anyhow::Result<CycleReport> {
    let text: Vec<String> = overrides
        .iter()
        .map(|o| format!("{}={}", o.component, o.spec))
        .collect();
    let req = DeployRequest {
        env: record.slot.clone(),
        request: Request {
            base: "stg".into(),
            overrides,
            only: Vec::new(),
            skip: Vec::new(),
        },
        text: format!("{} ({}) {}", record.name, record.profile, text.join(" ")),
        reason: Some(format!("{}: {}", record.name, record.reason)),
        ..Default::default()
    };
    let report = engine::deploy(app, &req, reporter).await?;
    // The creator keeps the slot for the environment's life.
    let left = Duration::from_millis(u64::try_from(record.expires_at - app.now()).unwrap_or(0));
    if let Err(e) = crate::leasing::extend(app, &record.slot, left).await {
        tracing::warn!(slot = %record.slot, "cannot extend the lease of {}: {e:#}", record.name);
    }
    Ok(report)
}

/// Tears an ephemeral environment down: stop, free the lease and the slot.
pub async fn destroy(app: &App, name: &str, why: &str) -> anyhow::Result<EphemeralRecord> {
    let Some(e) = app.store.ephemerals().await?.into_iter().find(|e| e.name == name) else {
        return Err(input(format!("there is no ephemeral environment `{name}`")));
    };
    let _ = crate::leasing::release(app, &e.slot, true).await?;
    engine::stop(app, &e.slot, true, &Silent).await?;
    crate::leasing::release(app, &e.slot, true).await?;
    app.store.delete_ephemeral(&e.name).await?;
    crate::audit::record(app, "env-destroy", &e.slot, &format!("{} destroyed", e.name), why, None).await;
    if let Some(pr) = &e.pr {
        crate::feedback::preview_changed(app, pr).await;
    }
    Ok(e)
}

/// Tears down every ephemeral environment whose time ended; returns what it did.
pub async fn expire(app: &App) -> Vec<String> {
    let now = app.now();
    let mut done = Vec::new();
    let Ok(all) = app.store.ephemerals().await else {
        return done;
    };
    for e in all.into_iter().filter(|e| e.expires_at <= now) {
        match destroy(app, &e.name, "its time ended").await {
            Ok(_) => done.push(format!("{} (slot {}) destroyed: its time ended", e.name, e.slot)),
            Err(err) => done.push(format!("{} could not be destroyed: {err:#}", e.name)),
        }
    }
    done
}

/// The environment name of a PR's preview.
pub fn preview_name(repo: &str, number: u64) -> String {
    let last = repo.rsplit('/').next().unwrap_or(repo);
    let clean: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('-');
    let mut name = format!("pr-{clean}-{number}");
    name.truncate(63);
    name
}

/// `deploy --preview REPO#N`: the PR's own environment, made or renewed.
pub async fn preview(app: &App, pr: &str, reporter: &dyn Reporter) -> anyhow::Result<(EphemeralRecord, CycleReport)> {
    let (repo, number) = pr
        .rsplit_once('#')
        .and_then(|(r, n)| n.parse::<u64>().ok().map(|n| (r, n)))
        .ok_or_else(|| {
            input(format!(
                "`{pr}` is not REPO#N (a component or repository, and a PR number)"
            ))
        })?;
    let components: Vec<&str> = app
        .config
        .components
        .iter()
        .filter(|c| {
            c.name == repo
                || c.github.as_deref() == Some(repo)
                || c.gitlab.as_deref() == Some(repo)
                || c.repo
                    .as_deref()
                    .is_some_and(|r| r.trim_end_matches(".git").ends_with(repo))
        })
        .map(|c| c.name.as_str())
        .collect();
    if components.is_empty() {
        return Err(input(format!("no component comes from `{repo}`")));
    }
    let Some(env) = app
        .config
        .environments
        .iter()
        .find(|e| e.profile.as_ref().is_some_and(|p| p.preview))
    else {
        return Err(input("no profile has `preview = true`"));
    };
    let asked: Vec<String> = components.iter().map(|c| format!("{c}={number}")).collect();
    let name = preview_name(repo, number);
    let existing = app.store.ephemerals().await?.into_iter().find(|e| e.name == name);
    match existing {
        Some(e) => {
            // Activity renews it.
            let ttl = env.profile.as_ref().map(|p| p.ttl).unwrap_or_default();
            let until = greenroom_core::time::add(app.now(), ttl);
            app.store.renew_ephemeral(&e.name, until).await?;
            let prof = env.profile.as_ref().map(|p| p.versions.clone()).unwrap_or_default();
            let report = deploy(
                app,
                &EphemeralRecord {
                    expires_at: until,
                    ..e.clone()
                },
                overrides(&prof, &asked)?,
                reporter,
            )
            .await?;
            crate::feedback::preview_changed(app, pr).await;
            Ok((EphemeralRecord { expires_at: until, ..e }, report))
        }
        None => {
            let made = create(
                app,
                &CreateRequest {
                    name,
                    profile: env.name.clone(),
                    ttl: None,
                    reason: format!("preview of {pr}"),
                    overrides: asked,
                    pr: Some(pr.to_string()),
                    wait: true,
                },
                reporter,
            )
            .await?;
            crate::feedback::preview_changed(app, pr).await;
            Ok(made)
        }
    }
}

/// Whether a preview's recorded PR (`REPO#N`, REPO a forge id like
/// `packit/ogr`, or its last part) is PR `number` of forge repository `repo`.
pub fn pr_matches(recorded: &str, repo: &str, number: u64) -> bool {
    recorded
        .rsplit_once('#')
        .is_some_and(|(r, n)| n == number.to_string() && same_repo(r, repo))
}

/// Whether two names of a repository are the same one: equal but for case,
/// or one is the last part of the other (`ogr` and `packit/ogr`).
pub fn same_repo(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a == b || a.ends_with(&format!("/{b}")) || b.ends_with(&format!("/{a}"))
}

/// A PR was pushed to: its previews are renewed and get the new head.
/// Returns the names renewed.
pub async fn refresh_previews(app: &App, repo: &str, number: u64) -> Vec<String> {
    let mut done = Vec::new();
    let Ok(all) = app.store.ephemerals().await else {
        return done;
    };
    for e in all {
        let Some(pr) = e.pr.as_deref().filter(|p| pr_matches(p, repo, number)) else {
            continue;
        };
        match preview(app, pr, &Silent).await {
            Ok((e, _)) => done.push(e.name),
            Err(err) => tracing::warn!("cannot renew the preview {}: {err:#}", e.name),
        }
    }
    done
}

/// A PR closed (or merged): its previews go.
pub async fn close_previews(app: &App, repo: &str, number: u64) -> Vec<String> {
    let mut done = Vec::new();
    let Ok(all) = app.store.ephemerals().await else {
        return done;
    };
    for e in all {
        let matches = e.pr.as_deref().is_some_and(|p| pr_matches(p, repo, number));
        if matches {
            match destroy(app, &e.name, &format!("{repo}#{number} closed")).await {
                Ok(_) => done.push(e.name),
                Err(err) => tracing::warn!("cannot destroy the preview {}: {err:#}", e.name),
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_names_are_environment_names() {
        assert_eq!(preview_name("packit/ogr", 12), "pr-ogr-12");
        assert_eq!(preview_name("Packit/Packit_Service", 7), "pr-packit-service-7");
        assert!(preview_name(&"x".repeat(100), 1).len() <= 63);
    }

    #[test]
    fn asked_overrides_win_over_the_profile() {
        let o = overrides(&["db=tag:v1".into(), "api=branch:main".into()], &["db=12".into()]).expect("valid");
        let shown: Vec<String> = o.iter().map(|o| format!("{}={}", o.component, o.spec)).collect();
        assert_eq!(shown, ["api=branch:main", "db=pr:12"]);
    }
}
