//! Comment commands on pull requests (`@greenroom deploy`, GitHub issue
//! comments and GitLab notes) and the deploy label, as the server carries
//! them out (issue #4 point 4).
//!
//! The parsing and the permission rules are pure (`core::command`); this
//! module finds who is asking (admin, maintainer, trusted, the PR's author,
//! or someone else — from `[[user]]`, `[pending]` and optionally the forge's
//! permission API), acts, records every command with its outcome in the
//! store (the PR page's history), and answers in one reply comment per
//! comment: done, a polite refusal, or the help text for what it did not
//! understand. An edited comment runs only what is new in it (the previous
//! body is kept in the store). Acting means: approvals and exclusions in the
//! store, a cancel, or an event for the scheduling policy — `deploy` and
//! `trigger` are explicit deploys (`Event::Deploy`), approve/exclude/include
//! are triggers — sent back to the scheduler, which stays the only one to
//! step the policy.

use super::scheduler::Work;
use crate::app::App;
use crate::pending::Repo;
use greenroom_core::command::{self, Command, Parsed, Standing};
use greenroom_core::config::{Follows, Role};
use greenroom_core::policy::Event;
use greenroom_store::CommandRecord;
use std::fmt::Write;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// A comment on a pull request, as the webhook told it.
#[derive(Debug, Clone)]
pub struct Comment {
    /// `github` or `gitlab`.
    pub source: String,
    /// Forge id of the repository.
    pub repo: String,
    /// PR number.
    pub number: u64,
    /// Comment id.
    pub comment_id: u64,
    /// Who wrote it.
    pub author: String,
    /// Its text.
    pub body: String,
    /// `created` or `edited`.
    pub action: String,
    /// The delivery's row id: the id of the policy events it leads to.
    pub delivery: u64,
}

/// The environments staging pending PRs of `repo`, with that repository.
fn staging_envs(app: &App, repo: &str) -> Vec<(String, Repo)> {
    let mut out = Vec::new();
    for env in app
        .config
        .environments
        .iter()
        .filter(|e| e.follows == Follows::Pending && e.slots.is_none())
    {
        if let Some(r) = crate::pending::repos(app, env)
            .into_iter()
            .find(|r| r.id.eq_ignore_ascii_case(repo))
        {
            out.push((env.name.clone(), r));
        }
    }
    out
}

/// Who `login` is for commands on `repo` (see the module documentation).
async fn standing(
    app: &App,
    forge: &crate::forge::Forge,
    repo: &str,
    login: &str,
    pr_author: Option<&str>,
) -> Standing {
    let same = |a: &str| a.eq_ignore_ascii_case(login);
    let user = app
        .config
        .users
        .iter()
        .find(|u| u.github.as_deref().is_some_and(same) || u.gitlab.as_deref().is_some_and(same));
    if user.is_some_and(|u| u.highest_role() == Some(Role::Admin)) {
        return Standing::Admin;
    }
    let p = &app.config.pending;
    if p.maintainers.iter().any(|m| same(m)) {
        return Standing::Maintainer;
    }
    if p.check_permissions {
        match forge.permission(repo, login).await {
            Ok(Some(perm)) if perm >= crate::forge::Permission::Maintain => return Standing::Maintainer,
            Ok(Some(perm)) if perm >= crate::forge::Permission::Write => return Standing::Trusted,
            Ok(_) => {}
            Err(e) => tracing::warn!(%repo, %login, "cannot ask the forge for permissions: {e}"),
        }
    }
    if crate::pending::rules(app).trusted.iter().any(|t| same(t)) {
        return Standing::Trusted;
    }
    if pr_author.is_some_and(same) {
        return Standing::Author;
    }
    Standing::Other
}

/// Carries out the commands of one comment (see the module documentation).
pub async fn handle(app: Arc<App>, tx: UnboundedSender<Work>, c: Comment) {
    let bot = app.config.pending.bot.clone();
    let by_label = c.action == "label";
    let items = if by_label {
        command::parse(&c.body, &bot)
    } else if c.action == "edited" {
        let old = app
            .store
            .swap_comment_body(&c.source, c.comment_id, &c.body, app.now())
            .await
            .ok()
            .flatten();
        match old {
            Some(old) => command::new_since_edit(&old, &c.body, &bot),
            None => command::parse(&c.body, &bot),
        }
    } else {
        if let Err(e) = app
            .store
            .swap_comment_body(&c.source, c.comment_id, &c.body, app.now())
            .await
        {
            tracing::warn!("cannot keep the comment's body: {e}");
        }
        command::parse(&c.body, &bot)
    };
    if items.is_empty() {
        return;
    }
    let envs = staging_envs(&app, &c.repo);
    let Some((_, repo)) = envs.first().cloned() else {
        tracing::info!(repo = %c.repo, "comment commands on a repository no environment stages: ignored");
        return;
    };
    let forge = match crate::pending::forge_for(&app, &repo) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(repo = %c.repo, "no forge client to answer commands: {e:#}");
            return;
        }
    };
    // The PR as the forge sees it: its author, and whether it is open.
    let pr = forge
        .open_prs(&repo.id, &repo.branch)
        .await
        .ok()
        .and_then(|prs| prs.into_iter().find(|p| p.number == c.number));
    // Whoever may add the deploy label (triage and up on the forge) counts
    // as a maintainer for it.
    let who = if by_label {
        Standing::Maintainer
    } else {
        standing(
            &app,
            &forge,
            &repo.id,
            &c.author,
            pr.as_ref().map(|p| p.author.as_str()),
        )
        .await
    };
    let state = app.store.pr_state(&repo.id, c.number).await.ok().flatten();
    let approved = state.as_ref().is_some_and(|s| s.approved_by.is_some());
    let mut reply = String::new();
    let mut need_help = false;
    for item in items {
        let (command_text, outcome, detail) = match item {
            Parsed::Unknown { word, .. } => {
                need_help = true;
                let _ = writeln!(reply, "I do not know the command {}.", command::code_span(&word));
                (word, "unknown", "answered with the help text".to_string())
            }
            Parsed::Invalid { message, .. } => {
                need_help = true;
                let _ = writeln!(reply, "{message}");
                ("(invalid)".to_string(), "invalid", message)
            }
            Parsed::Command { command: cmd, .. } => {
                let text = cmd.to_string();
                match command::authorize(&cmd, who, &c.author, approved) {
                    Err(refusal) => {
                        let _ = writeln!(reply, "{}", refusal.message);
                        (text, "refused", refusal.message)
                    }
                    Ok(()) => match act(&app, &tx, &c, &envs, &cmd, who, pr.is_some()).await {
                        Ok(said) => {
                            let _ = writeln!(reply, "{said}");
                            (text, "done", said)
                        }
                        Err(e) => {
                            let msg = format!("{e:#}");
                            let _ = writeln!(reply, "Could not {}: {msg}", cmd.name());
                            (text, "failed", msg)
                        }
                    },
                }
            }
        };
        let rec = CommandRecord {
            id: 0,
            repo: repo.id.clone(),
            number: c.number,
            comment_id: c.comment_id,
            author: c.author.clone(),
            command: command_text,
            outcome: outcome.to_string(),
            detail,
            at: app.now(),
        };
        if let Err(e) = app.store.record_command(&rec).await {
            tracing::warn!("cannot record a command: {e}");
        }
    }
    if need_help {
        let _ = writeln!(reply, "\n{}", command::help_text(&bot));
    }
    let body = if by_label {
        format!(
            "The `{}` label was added: {}",
            app.config.pending.deploy_label,
            reply.trim_end()
        )
    } else {
        format!("@{} {}", c.author, reply.trim_end())
    };
    if let Err(e) = forge.comment(&repo.id, c.number, &body).await {
        tracing::warn!(repo = %c.repo, number = c.number, "cannot answer the command: {e}");
    }
}

/// Does what an allowed command says; returns what to tell the commenter.
async fn act(
    app: &Arc<App>,
    tx: &UnboundedSender<Work>,
    c: &Comment,
    envs: &[(String, Repo)],
    cmd: &Command,
    who: Standing,
    open: bool,
) -> anyhow::Result<String> {
    let pr = format!("{}#{}", c.repo, c.number);
    let names: Vec<String> = envs.iter().map(|(e, _)| e.clone()).collect();
    let pick = |env: &Option<String>| -> anyhow::Result<Vec<String>> {
        match env {
            None => Ok(names.clone()),
            Some(e) if names.contains(e) => Ok(vec![e.clone()]),
            Some(e) => anyhow::bail!(
                "`{e}` does not stage this repository's pull requests (these do: {})",
                names.join(", ")
            ),
        }
    };
    let trigger = |source: String| {
        for env in &names {
            let _ = tx.send(Work::Policy {
                env: env.clone(),
                event: Event::Trigger {
                    id: c.delivery,
                    source: source.clone(),
                    at: app.now(),
                },
            });
        }
    };
    let admin = who == Standing::Admin;
    Ok(match cmd {
        // `deploy env=PROFILE` with a preview profile: the PR's own
        // environment (issue #5 point 3), made or renewed in the background;
        // the result is told here when it runs.
        Command::Deploy { env: Some(e) }
            if app
                .config
                .environment(e)
                .and_then(|x| x.profile.as_ref())
                .is_some_and(|p| p.preview) =>
        {
            if !open {
                anyhow::bail!("{pr} is not an open pull request");
            }
            let repo = envs
                .iter()
                .find(|(_, r)| r.id.eq_ignore_ascii_case(&c.repo))
                .map(|(_, r)| r.clone());
            let (app, pr_ref, number) = (app.clone(), pr.clone(), c.number);
            let name = crate::ephemeral::preview_name(&c.repo, c.number);
            tokio::spawn(async move {
                let said = match crate::ephemeral::preview(&app, &pr_ref, &crate::progress::Silent).await {
                    Ok((e, r)) => {
                        let urls: Vec<String> = r
                            .components
                            .iter()
                            .filter_map(|c| c.url.as_ref().map(|u| format!("{}: {u}", c.name)))
                            .collect();
                        format!(
                            "Preview **{}** of {pr_ref}: cycle {} {} (slot {}, until {}).\n\n{}",
                            e.name,
                            r.cycle.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                            r.result,
                            e.slot,
                            greenroom_core::time::format(e.expires_at),
                            urls.join("\n")
                        )
                    }
                    Err(err) => format!("The preview of {pr_ref} could not be made: {err:#}"),
                };
                if let Some(repo) = repo
                    && let Ok(forge) = crate::pending::forge_for(&app, &repo)
                    && let Err(e) = forge.comment(&repo.id, number, &said).await
                {
                    tracing::warn!("cannot tell {pr_ref} about its preview: {e}");
                }
            });
            format!("Making {pr}'s preview environment `{name}` from profile {e}; I will say here when it runs.")
        }
        Command::Deploy { .. } | Command::Trigger { .. } | Command::Retry | Command::Recheck => {
            let targets = match cmd {
                Command::Deploy { env } | Command::Trigger { env } => pick(env)?,
                _ => names.clone(),
            };
            if !open {
                anyhow::bail!("{pr} is not an open pull request targeting the staged branch");
            }
            // A maintainer's deploy lets an untrusted author's PR in.
            if matches!(who, Standing::Admin | Standing::Maintainer) {
                app.store.approve_pr(&c.repo, c.number, &c.author, app.now()).await?;
            }
            let full = matches!(cmd, Command::Trigger { .. });
            for env in &targets {
                let _ = tx.send(Work::Policy {
                    env: env.clone(),
                    event: Event::Deploy {
                        id: c.delivery,
                        by: c.author.clone(),
                        admin,
                        full,
                    },
                });
            }
            let what = if full {
                "a full cycle (deploy and every suite)"
            } else {
                "a partial cycle (deploy and smoke checks)"
            };
            format!(
                "Staging {pr} on {} with {what}; the sticky comment on this pull request follows it.",
                targets.join(", ")
            )
        }
        Command::Cancel => {
            let mut done = Vec::new();
            for env in &names {
                if let Ok(cs) = crate::cancelling::cancel(
                    app,
                    &crate::cancelling::Target::Environment(env.clone()),
                    &c.author,
                    &format!("`cancel` on {pr}"),
                )
                .await
                {
                    done.extend(
                        cs.into_iter()
                            .map(|x| format!("cycle {} on {}", x.cycle, x.environment)),
                    );
                }
            }
            if done.is_empty() {
                "No cycle is running: nothing to cancel.".to_string()
            } else {
                format!("Cancel requested: {} stops before its next step.", done.join(", "))
            }
        }
        Command::Status => status_text(app, envs, c).await,
        Command::Approve => {
            app.store.approve_pr(&c.repo, c.number, &c.author, app.now()).await?;
            trigger(format!("{pr} approved by {}", c.author));
            format!(
                "Approved {pr} for staging: it joins the pending set of {}.",
                names.join(", ")
            )
        }
        Command::Exclude { reason } => {
            let why = reason.clone().unwrap_or_else(|| format!("excluded by {}", c.author));
            app.store
                .exclude_pr(&c.repo, c.number, Some((&c.author, &why)), app.now())
                .await?;
            trigger(format!("{pr} excluded by {}", c.author));
            format!("Excluded {pr} from staging ({why}); `include` lets it back in.")
        }
        Command::Include { .. } => {
            app.store.exclude_pr(&c.repo, c.number, None, app.now()).await?;
            trigger(format!("{pr} included by {}", c.author));
            format!("Included {pr} again: it is staged at the next cycle if it qualifies.")
        }
        Command::Help => command::help_text(&app.config.pending.bot),
    })
}

/// `@greenroom status`: where the PR runs, or why it does not.
async fn status_text(app: &App, envs: &[(String, Repo)], c: &Comment) -> String {
    let pr = format!("{}#{}", c.repo, c.number);
    let mut s = String::new();
    for (env, _) in envs {
        let deployed = app.store.deployed(env).await.unwrap_or_default();
        let running: Vec<String> = deployed
            .iter()
            .filter(|d| d.entry.merged.iter().any(|m| m.eq_ignore_ascii_case(&pr)))
            .map(|d| format!("{} `{}` (cycle {})", d.component, d.entry.short(), d.cycle_id))
            .collect();
        if running.is_empty() {
            let _ = writeln!(s, "- {env}: {pr} is not deployed there now.");
        } else {
            let _ = writeln!(s, "- {env}: {pr} runs in {}.", running.join(", "));
        }
    }
    if let Ok(Some(st)) = app.store.pr_state(&c.repo, c.number).await {
        if let Some(by) = st.approved_by {
            let _ = writeln!(s, "- approved for staging by {by}");
        }
        if let (Some(by), Some(why)) = (st.excluded_by, st.excluded_reason) {
            let _ = writeln!(s, "- excluded by {by}: {why}");
        }
    }
    s.trim_end().to_string()
}
