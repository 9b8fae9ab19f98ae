//! Feedback on pull requests (issue #4 point 5): what a pending
//! environment's cycle means for each PR, told where its author looks.
//!
//! For every PR of a staged manifest: a commit status `greenroom/staging`
//! (pending when the cycle starts, success or failure when it ends, linking
//! to the cycle), a GitHub Deployment of its head to the environment, and one
//! sticky comment that is edited, never reposted: which environment and
//! manifest it is in, whether it was tested fully or partially, the result,
//! the exact version of every component, and the commands available. PRs
//! left out because they conflict or were excluded as faulty get the sticky
//! comment too, saying why; PRs left out for quieter reasons (drafts, the
//! skip label, untrusted authors) are not commented on.
//!
//! Feedback never fails a cycle: a forge that does not answer is logged and
//! the cycle's own result stands.

use crate::app::App;
use crate::engine::CycleReport;
use crate::forge::{CommitStatus, DeploymentState, Forge, StatusState};
use crate::pending::{Repo, Staged};
use greenroom_core::pending::PrRef;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The status context greenroom sets on staged PRs.
pub const STAGING_CONTEXT: &str = "greenroom/staging";

/// Where people see a cycle: the server's public URL, else its API.
pub fn cycle_url(app: &App, cycle: Option<i64>) -> Option<String> {
    let base = app.config.server.public_url.clone()?;
    Some(match cycle {
        Some(c) => format!("{base}/api/v1/cycles/{c}"),
        None => format!("{base}/api/v1/environments"),
    })
}

/// The PRs of a staged set, with their repository and head.
fn staged_prs(staged: &Staged) -> Vec<(&Repo, PrRef, String)> {
    let mut out = Vec::new();
    for r in &staged.repos {
        for e in staged
            .set
            .included
            .iter()
            .filter(|e| e.pr.repo.eq_ignore_ascii_case(&r.repo.id))
        {
            out.push((&r.repo, e.pr.clone(), e.head_sha.clone()));
        }
    }
    out
}

fn forges(app: &App, staged: &Staged) -> BTreeMap<String, Forge> {
    let mut out = BTreeMap::new();
    for r in &staged.repos {
        match crate::pending::forge_for(app, &r.repo) {
            Ok(f) => {
                out.insert(r.repo.id.clone(), f);
            }
            Err(e) => tracing::warn!(repo = %r.repo.id, "no forge client for feedback: {e:#}"),
        }
    }
    out
}

/// Tells the staged PRs their cycle started: status pending, deployment in progress.
/// Returns the deployment ids by PR, for [`finished`].
pub async fn started(app: &App, env: &str, staged: &Staged, kind: &str) -> BTreeMap<PrRef, u64> {
    let forges = forges(app, staged);
    let mut deployments = BTreeMap::new();
    for (repo, pr, head) in staged_prs(staged) {
        let Some(forge) = forges.get(&repo.id) else { continue };
        let status = CommitStatus {
            context: STAGING_CONTEXT.into(),
            state: StatusState::Pending,
            target_url: cycle_url(app, None),
            description: format!("staging on {env}: {kind} cycle running"),
        };
        if let Err(e) = forge.set_status(&repo.id, &head, &status).await {
            tracing::warn!(%pr, "cannot set the pending status: {e}");
        }
        match forge
            .create_deployment(&repo.id, &head, env, &format!("greenroom {kind} cycle"))
            .await
        {
            Ok(Some(id)) => {
                deployments.insert(pr.clone(), id);
                let _ = forge
                    .deployment_status(&repo.id, id, DeploymentState::InProgress, None, None)
                    .await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(%pr, "cannot create the deployment: {e}"),
        }
    }
    deployments
}

/// Tells every PR concerned how the cycle went (see the module documentation).
pub async fn finished(
    app: &App,
    env: &str,
    staged: &Staged,
    kind: &str,
    report: Result<&CycleReport, &str>,
    deployments: &BTreeMap<PrRef, u64>,
) {
    let forges = forges(app, staged);
    let (state, summary) = match report {
        Ok(r) if r.ok() => (
            StatusState::Success,
            format!("{kind} cycle {} passed on {env}", cycle_no(r)),
        ),
        Ok(r) if r.failure_class() == Some(greenroom_core::failure::Class::Infra) => (
            StatusState::Error,
            format!(
                "{kind} cycle {} on {env} hit an infrastructure error, not caused by these changes: retrying",
                cycle_no(r)
            ),
        ),
        Ok(r) if r.result == "cancelled" => (
            StatusState::Error,
            format!("cycle {} on {env} was cancelled", cycle_no(r)),
        ),
        Ok(r) => (
            StatusState::Failure,
            format!("{kind} cycle {} failed on {env}", cycle_no(r)),
        ),
        Err(_) => (StatusState::Error, format!("the cycle on {env} could not run")),
    };
    let url = cycle_url(app, report.ok().and_then(|r| r.cycle));
    let env_url = report
        .ok()
        .and_then(|r| r.components.iter().find_map(|c| c.url.clone()));
    for (repo, pr, head) in staged_prs(staged) {
        let Some(forge) = forges.get(&repo.id) else { continue };
        let status = CommitStatus {
            context: STAGING_CONTEXT.into(),
            state,
            target_url: url.clone(),
            description: summary.clone(),
        };
        if let Err(e) = forge.set_status(&repo.id, &head, &status).await {
            tracing::warn!(%pr, "cannot set the status: {e}");
        }
        if let Some(id) = deployments.get(&pr) {
            let d = match state {
                StatusState::Success => DeploymentState::Success,
                StatusState::Failure => DeploymentState::Failure,
                _ => DeploymentState::Error,
            };
            let _ = forge
                .deployment_status(&repo.id, *id, d, env_url.as_deref(), url.as_deref())
                .await;
        }
        // Gate suites are required statuses of their own (issue #6 point 1):
        // one PR alone gets the result; with several, the culprit search
        // decides who gets the red one (`gate_verdict`).
        if let Ok(r) = report {
            let several = staged.set.units.len() > 1;
            for g in r.suites.iter().filter(|x| x.tier == "gate") {
                let (state, description) = match g.result.as_str() {
                    "passed" | "flaky" => (StatusState::Success, format!("{} passed on {env}", g.name)),
                    "failed" if several => (
                        StatusState::Pending,
                        format!("{} failed on {env} with several changes: finding which one", g.name),
                    ),
                    "failed" => (StatusState::Failure, format!("{} failed on {env}", g.name)),
                    _ => continue,
                };
                let status = CommitStatus {
                    context: gate_context(&g.name),
                    state,
                    target_url: url.clone(),
                    description,
                };
                if let Err(e) = forge.set_status(&repo.id, &head, &status).await {
                    tracing::warn!(%pr, "cannot set the gate status: {e}");
                }
            }
            // Metric gates of the gate tier are statuses too; they measure the
            // whole environment, so a failure is the staged set's, not
            // attributed to one PR (the description says so).
            let mut metric: BTreeMap<&str, (bool, String)> = BTreeMap::new();
            for g in r.gates.iter().filter(|g| g.tier == "gate") {
                let e = metric.entry(g.name.as_str()).or_insert((true, String::new()));
                if g.result == "failed" {
                    e.0 = false;
                    e.1 = g.reason.lines().next().unwrap_or("").to_string();
                }
            }
            for (name, (ok, why)) in metric {
                let (state, description) = if ok {
                    (StatusState::Success, format!("{name} passed on {env}"))
                } else if several {
                    (
                        StatusState::Failure,
                        format!("{name} failed on {env} with several changes staged (not attributed): {why}"),
                    )
                } else {
                    (StatusState::Failure, format!("{name} failed on {env}: {why}"))
                };
                let status = CommitStatus {
                    context: gate_context(name),
                    state,
                    target_url: url.clone(),
                    description: description.chars().take(140).collect(),
                };
                if let Err(e) = forge.set_status(&repo.id, &head, &status).await {
                    tracing::warn!(%pr, "cannot set the metric gate status: {e}");
                }
            }
        }
        let body = sticky_included(app, env, staged, &pr, kind, report, &summary);
        write_sticky(app, forge, &repo.id, pr.number, &body).await;
    }
    // Conflicts and exclusions are explained where the author looks.
    for lo in &staged.set.left_out {
        let telling = lo
            .reasons
            .iter()
            .any(|r| r.contains("conflicts") || r.starts_with("excluded as faulty"));
        if !telling {
            continue;
        }
        let Some(forge) = forges
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(&lo.pr.repo))
            .map(|(_, f)| f)
        else {
            continue;
        };
        let body = sticky_left_out(app, env, &lo.pr, &lo.reasons);
        write_sticky(app, forge, &lo.pr.repo, lo.pr.number, &body).await;
    }
}

/// Writes a PR's sticky comment: `staging` (what the last cycle said,
/// kept in the store) followed by its preview environments, if any.
async fn write_sticky(app: &App, forge: &Forge, repo: &str, number: u64, staging: &str) {
    if let Err(e) = app.store.set_sticky(repo, number, staging, app.now()).await {
        tracing::warn!("cannot record the sticky comment of {repo}#{number}: {e}");
    }
    let body = format!("{staging}{}", preview_section(app, repo, number).await);
    if let Err(e) = forge.upsert_sticky(repo, number, &body).await {
        tracing::warn!("cannot write the sticky comment of {repo}#{number}: {e}");
    }
}

/// The sticky comment's part about a PR's preview environments (issue #5
/// point 3): name, until when, where its components answer and its page
/// on the dashboard. Empty when it has none.
async fn preview_section(app: &App, repo: &str, number: u64) -> String {
    let Ok(all) = app.store.ephemerals().await else {
        return String::new();
    };
    let mine: Vec<_> = all
        .into_iter()
        .filter(|e| {
            e.pr.as_deref()
                .is_some_and(|p| crate::ephemeral::pr_matches(p, repo, number))
        })
        .collect();
    if mine.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n#### Preview environment\n\n");
    for e in mine {
        let _ = write!(
            s,
            "- **{}** (profile `{}`, slot `{}`), until {}",
            e.name,
            e.profile,
            e.slot,
            greenroom_core::time::format(e.expires_at)
        );
        if let Some(base) = &app.config.server.public_url {
            let _ = write!(s, ": [dashboard]({}/#env-{})", base.trim_end_matches('/'), e.slot);
        }
        s.push('\n');
        for d in app.store.deployed(&e.slot).await.unwrap_or_default() {
            if d.state == "stopped" {
                continue;
            }
            if let Some(u) = &d.url {
                let _ = writeln!(s, "  - {}: {u}", d.component);
            }
        }
    }
    let bot = &app.config.pending.bot;
    let _ = writeln!(
        s,
        "\nRenewed by `@{bot} deploy env=PROFILE` or a push; destroyed when this pull request closes or its time ends."
    );
    s
}

/// A PR's preview was made, renewed or destroyed: its sticky comment is
/// rewritten (the last cycle's part as it was, the preview part as it is
/// now). `pr` is `REPO#N` as the preview records it (a forge id or a
/// component's name). Never fails: problems are logged.
pub async fn preview_changed(app: &App, pr: &str) {
    let Some((name, number)) = pr
        .rsplit_once('#')
        .and_then(|(r, n)| n.parse::<u64>().ok().map(|n| (r.to_string(), n)))
    else {
        return;
    };
    let mut repos: Vec<Repo> = Vec::new();
    for env in &app.config.environments {
        for r in crate::pending::repos(app, env) {
            if !repos.iter().any(|x| x.id.eq_ignore_ascii_case(&r.id)) {
                repos.push(r);
            }
        }
    }
    let Some(repo) = repos
        .into_iter()
        .find(|r| crate::ephemeral::same_repo(&name, &r.id) || r.components.contains(&name))
    else {
        tracing::debug!("no forge repository for the preview of {pr}: its sticky comment is left alone");
        return;
    };
    let forge = match crate::pending::forge_for(app, &repo) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("no forge client for {}: {e:#}", repo.id);
            return;
        }
    };
    let staging = match app.store.sticky(&repo.id, number).await {
        Ok(Some(b)) => b,
        Ok(None) => format!("### greenroom: {}#{number}\n\nNot staged yet.\n", repo.id),
        Err(e) => {
            tracing::warn!("cannot read the sticky comment of {}#{number}: {e}", repo.id);
            return;
        }
    };
    let body = format!("{staging}{}", preview_section(app, &repo.id, number).await);
    if let Err(e) = forge.upsert_sticky(&repo.id, number, &body).await {
        tracing::warn!("cannot write the sticky comment of {}#{number}: {e}", repo.id);
    }
}

/// The status context of a gate suite.
pub fn gate_context(suite: &str) -> String {
    format!("greenroom/{suite}")
}

/// A gate's verdict from the culprit search: the PRs in `failing` get the
/// red status, every other staged PR the green one (`None`: nobody could
/// be blamed — a flaky gate is green for all, an inconclusive search an
/// error for all).
pub async fn gate_verdict(
    app: &App,
    env: &str,
    staged: &Staged,
    suite: &str,
    failing: Option<&[String]>,
    flaky: bool,
    cycle: i64,
) {
    let forges = forges(app, staged);
    let url = cycle_url(app, Some(cycle));
    for (repo, pr, head) in staged_prs(staged) {
        let Some(forge) = forges.get(&repo.id) else { continue };
        let me = pr.to_string();
        let (state, description) = match failing {
            Some(f) if f.iter().any(|m| m.eq_ignore_ascii_case(&me)) => (
                StatusState::Failure,
                format!("{suite} fails with this change (culprit search for cycle {cycle})"),
            ),
            Some(_) => (
                StatusState::Success,
                format!("{suite} passes without the culprit (culprit search for cycle {cycle})"),
            ),
            None if flaky => (StatusState::Success, format!("{suite} passed on a re-run: flaky")),
            None => (
                StatusState::Error,
                format!("{suite} failed on {env}; the search could not tell which change"),
            ),
        };
        let status = CommitStatus {
            context: gate_context(suite),
            state,
            target_url: url.clone(),
            description,
        };
        if let Err(e) = forge.set_status(&repo.id, &head, &status).await {
            tracing::warn!(%pr, "cannot set the gate status: {e}");
        }
    }
}

fn cycle_no(r: &CycleReport) -> String {
    r.cycle.map(|c| c.to_string()).unwrap_or_else(|| "-".into())
}

fn commands(app: &App) -> String {
    let bot = &app.config.pending.bot;
    format!(
        "Commands: `@{bot} deploy` (stage now, smoke tests), `@{bot} trigger` (stage now, full suites), \
         `@{bot} retry`, `@{bot} cancel`, `@{bot} status`, `@{bot} help`."
    )
}

/// The sticky comment of a PR in the staged manifest.
fn sticky_included(
    app: &App,
    env: &str,
    staged: &Staged,
    pr: &PrRef,
    kind: &str,
    report: Result<&CycleReport, &str>,
    summary: &str,
) -> String {
    let mut s = String::new();
    let mark = match report {
        Ok(r) if r.ok() => "✅",
        Ok(r) if r.failure_class() == Some(greenroom_core::failure::Class::Infra) => "⚠️",
        Ok(_) => "❌",
        Err(_) => "⚠️",
    };
    let _ = writeln!(s, "### {mark} greenroom: {summary}\n");
    let _ = writeln!(
        s,
        "**{pr}** is in the staging of **{env}** together with {} other pull request(s).",
        staged.prs().len().saturating_sub(1)
    );
    match report {
        Ok(r) => {
            let manifest = r
                .manifest
                .as_deref()
                .map(greenroom_core::manifest::short_id)
                .unwrap_or("-");
            let tested = if kind == "full" {
                "fully (full cycle: every suite)"
            } else {
                "partially (partial cycle: deploy and smoke checks)"
            };
            let _ = writeln!(s, "- manifest `{manifest}`, cycle {}, tested {tested}", cycle_no(r));
            if let Some(e) = &r.error {
                let first = e.lines().next().unwrap_or("");
                let _ = writeln!(s, "- failure: {}", first.chars().take(300).collect::<String>());
            }
            let (quarantined, counted): (Vec<_>, Vec<_>) = r.suites.iter().partition(|x| x.tier == "quarantine");
            if !counted.is_empty() {
                let _ = writeln!(s, "\n| suite | tier | result | why |\n|---|---|---|---|");
                for x in &counted {
                    let why = x.reason.lines().next().unwrap_or("").replace('|', "\\|");
                    let _ = writeln!(s, "| {} | {} | {} | {why} |", x.name, x.tier, x.result);
                }
            }
            // Quarantined suites run and never fail anything: listed apart.
            if !quarantined.is_empty() {
                let list: Vec<String> = quarantined
                    .iter()
                    .map(|x| format!("`{}` {}", x.name, x.result))
                    .collect();
                let _ = writeln!(s, "\nQuarantined (never counted): {}.", list.join(", "));
            }
            let _ = writeln!(s, "\n| component | version | from |\n|---|---|---|");
            for c in &r.components {
                let version = c
                    .commit
                    .as_deref()
                    .map(|v| v.chars().take(12).collect::<String>())
                    .or_else(|| c.image.clone())
                    .unwrap_or_else(|| "-".into());
                let merged = staged.merged_for(&c.name);
                let mut from = if merged.is_empty() {
                    c.origin.clone()
                } else {
                    format!("staging: {}", merged.join(", "))
                };
                // A skipped rebuild says why (impact analysis).
                if let Some(why) = c.why.as_deref().filter(|w| w.starts_with("not rebuilt")) {
                    from = format!("{from}; {}", why.replace('|', "\\|"));
                }
                let _ = writeln!(s, "| {} | `{version}` | {from} |", c.name);
            }
        }
        Err(e) => {
            let _ = writeln!(s, "- the cycle could not run: {}", e.lines().next().unwrap_or(""));
        }
    }
    let left: Vec<String> = staged
        .set
        .left_out
        .iter()
        .filter(|l| l.reasons.iter().any(|r| r.contains("conflicts")))
        .map(|l| l.pr.to_string())
        .collect();
    if !left.is_empty() {
        let _ = writeln!(s, "\nLeft out for conflicts: {}.", left.join(", "));
    }
    let _ = writeln!(s, "\n{}", commands(app));
    s
}

/// The sticky comment of a PR left out for a reason its author should know.
fn sticky_left_out(app: &App, env: &str, pr: &PrRef, reasons: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### ⏸️ greenroom: {pr} is not in the staging of {env}\n");
    for r in reasons {
        let _ = writeln!(s, "- {r}");
    }
    let bot = &app.config.pending.bot;
    let _ = writeln!(
        s,
        "\nOnce fixed (rebase on the target branch, or push a fix), it is staged again on its own. \
         A maintainer can `@{bot} include` an excluded pull request.\n\n{}",
        commands(app)
    );
    s
}
