//! The pending PR set of an environment that `follows = "pending"`, staged:
//! which open pull requests qualify (`core::pending`), merged per repository
//! onto the base in order (`greenroom_git::staging`), and turned into the
//! overrides of an ordinary deploy — so the result is a manifest like any
//! other, each component recording the PRs merged into it.
//!
//! Asks the forges (`forge`) for open pull requests and overlays greenroom's
//! own records (approvals by maintainers, exclusions as faulty). A pull
//! request that conflicts is left out alone and reported; when it belongs to
//! a `Depends-On` unit, the whole unit is left out and the other repositories
//! are staged again without it. Rebuilding when nothing changed gives the
//! same commits (the builder is deterministic) and so the same manifest.

use crate::app::App;
use crate::forge::{Forge, ForgeError};
use crate::resolve::mirror_name;
use anyhow::Context;
use greenroom_core::config::{self, ChannelSource, Environment};
use greenroom_core::pending::{self, Candidate, LeftOut, PendingSet, PrRef};
use greenroom_git::{Mirrors, Want};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One repository of a pending environment.
#[derive(Debug, Clone, Serialize)]
pub struct Repo {
    /// Where it is cloned from.
    pub url: String,
    /// Forge kind.
    pub forge: config::Forge,
    /// Forge id: `owner/name` (GitHub), `group/project` (GitLab), or the
    /// repository's name (git).
    pub id: String,
    /// The branch its stg channel follows: PRs must target it.
    pub branch: String,
    /// Components built from it, in config order.
    pub components: Vec<String>,
    /// Refs that are changes (`forge = "git"`).
    pub pending_refs: Option<String>,
}

/// The repositories of an environment's components that follow a branch
/// (components on a `tag:` channel or images have no pending PRs).
pub fn repos(app: &App, env: &Environment) -> Vec<Repo> {
    let mut out: Vec<Repo> = Vec::new();
    for name in &env.components {
        let Some(c) = app.config.component(name) else { continue };
        let (Some(url), Some(ChannelSource::Branch(branch))) = (&c.repo, c.channels.get("stg")) else {
            continue;
        };
        if let Some(r) = out.iter_mut().find(|r| &r.url == url) {
            r.components.push(c.name.clone());
            continue;
        }
        let id = match c.forge {
            config::Forge::Github => c.github.clone(),
            config::Forge::Gitlab => c.gitlab.clone(),
            config::Forge::Git => None,
        }
        .unwrap_or_else(|| repo_name(url));
        out.push(Repo {
            url: url.clone(),
            forge: c.forge,
            id,
            branch: branch.clone(),
            components: vec![c.name.clone()],
            pending_refs: c.pending_refs.clone(),
        });
    }
    out
}

/// `ogr` for `/srv/git/ogr.git` or `https://host/x/ogr`.
pub(crate) fn repo_name(url: &str) -> String {
    url.trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or(url)
        .trim_end_matches(".git")
        .to_string()
}

/// What greenroom itself records about pull requests: approvals and exclusions.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// Approved for staging by a maintainer: PR (repository in lowercase) -> who.
    pub approved: BTreeMap<PrRef, String>,
    /// Excluded as faulty: PR (repository in lowercase) -> why.
    pub excluded: BTreeMap<PrRef, String>,
}

/// One repository staged.
#[derive(Debug, Clone, Serialize)]
pub struct RepoStaged {
    /// The repository.
    pub repo: Repo,
    /// The base commit.
    pub base: String,
    /// The staging commit (the base when nothing was merged).
    pub commit: String,
    /// PRs merged, in order.
    pub merged: Vec<String>,
    /// PRs whose head was already in the base.
    pub up_to_date: Vec<String>,
}

/// An environment's pending set, staged.
#[derive(Debug, Clone, Serialize)]
pub struct Staged {
    /// Who qualified and who did not, with reasons (conflicts included).
    pub set: PendingSet,
    /// Per repository, what was merged.
    pub repos: Vec<RepoStaged>,
}

impl Staged {
    /// The deploy's overrides: each component of a repository with merged
    /// PRs runs the staging commit (`ogr=sha:…`); the others follow the base.
    pub fn overrides(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.repos.iter().filter(|r| r.commit != r.base) {
            for c in &r.repo.components {
                out.push(format!("{c}=sha:{}", r.commit));
            }
        }
        out
    }

    /// The PRs merged into what `component` runs.
    pub fn merged_for(&self, component: &str) -> Vec<String> {
        self.repos
            .iter()
            .find(|r| r.repo.components.iter().any(|c| c == component))
            .map(|r| r.merged.clone())
            .unwrap_or_default()
    }

    /// Every PR in the staged manifest.
    pub fn prs(&self) -> Vec<String> {
        self.repos.iter().flat_map(|r| r.merged.iter().cloned()).collect()
    }
}

/// Builds the forge client for a repository.
pub fn forge_for(app: &App, repo: &Repo) -> anyhow::Result<Forge> {
    crate::forge::for_repo(app, repo.forge, &repo.url, repo.pending_refs.as_deref())
}

/// Asks the forges for the open pull requests of every repository.
async fn candidates(app: &App, repos: &[Repo], records: &Records) -> anyhow::Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for r in repos {
        let forge = forge_for(app, r)?;
        let mut cands = forge
            .open_prs(&r.id, &r.branch)
            .await
            .map_err(|e: ForgeError| anyhow::anyhow!(e))
            .with_context(|| format!("cannot list the open pull requests of {}", r.id))?;
        for c in &mut cands {
            // greenroom's records key repositories in lowercase (forge ids are case-insensitive).
            let pr = PrRef::new(c.repo.to_ascii_lowercase(), c.number);
            c.approved_by = records.approved.get(&pr).cloned();
            c.excluded = records.excluded.get(&pr).cloned();
        }
        out.extend(cands);
    }
    Ok(out)
}

/// The core's rules from the config: `[pending]` plus trusted `[[user]]`s.
pub fn rules(app: &App) -> pending::PendingConfig {
    let p = &app.config.pending;
    let mut trusted: Vec<String> = p.trusted.clone();
    for u in &app.config.users {
        if u.highest_role() >= Some(config::Role::Deployer) {
            trusted.extend(u.github.iter().cloned());
            trusted.extend(u.gitlab.iter().cloned());
        }
    }
    trusted.extend(p.maintainers.iter().cloned());
    pending::PendingConfig {
        trusted,
        skip_label: p.skip_label.clone(),
        max_age: p.max_age,
        order: p.order.parse().unwrap_or_default(),
    }
}

/// Stages the environment's pending set: see the module documentation.
pub async fn stage(app: &App, env: &Environment, records: &Records) -> anyhow::Result<Staged> {
    let repos = repos(app, env);
    let cands = candidates(app, &repos, records).await?;
    let branch_of: BTreeMap<String, String> = repos
        .iter()
        .map(|r| (r.id.to_ascii_lowercase(), r.branch.clone()))
        .collect();
    let mut set = pending::decide(
        &cands,
        &rules(app),
        |r| branch_of.get(&r.to_ascii_lowercase()).cloned(),
        app.now(),
    );
    let mirrors = Mirrors::new(app.paths.mirrors());
    let opts = greenroom_git::StagingOptions::with_cache(app.paths.root.join("staging-cache"));
    // Conflicts may drop a whole Depends-On unit, which changes other
    // repositories' merges: stage again until nothing more is dropped.
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    for _round in 0..=set.units.len() {
        let mut staged = Vec::new();
        let mut conflicts: Vec<(PrRef, String, String)> = Vec::new();
        for r in &repos {
            let mirror = mirrors
                .open(&mirror_name(&r.url), &r.url)
                .await
                .with_context(|| format!("cannot open the mirror of {}", r.url))?;
            let entries: Vec<&pending::Entry> = set
                .included
                .iter()
                .filter(|e| e.pr.repo.eq_ignore_ascii_case(&r.id) && !dropped.contains(&e.unit))
                .collect();
            // Fetch the base and every head in one go.
            let mut wants = vec![Want::Branch(r.branch.clone())];
            for e in &entries {
                wants.push(change_want(r, e.pr.number));
            }
            let resolved = mirror
                .resolve_all(&wants)
                .await
                .with_context(|| format!("cannot fetch the pending changes of {}", r.id))?;
            let base = resolved[0].commit.clone();
            let heads: Vec<greenroom_git::PrHead> = entries
                .iter()
                .zip(&resolved[1..])
                .map(|(e, got)| greenroom_git::PrHead {
                    id: e.pr.to_string(),
                    number: e.pr.number,
                    // The forge's head, when the mirror has it; what the ref says otherwise.
                    head: if e.head_sha.len() >= 40 {
                        e.head_sha.clone()
                    } else {
                        got.commit.clone()
                    },
                    // Not the title: editing a title must not change the staging commit.
                    title: String::new(),
                })
                .collect();
            let build = match greenroom_git::build_staging(&mirror, &base, &heads, &opts).await {
                Ok(b) => b,
                Err(greenroom_git::GitError::NotFound { .. }) => {
                    // The forge knows a newer head than the mirror fetched: use the refs' commits.
                    let heads: Vec<greenroom_git::PrHead> = heads
                        .into_iter()
                        .zip(&resolved[1..])
                        .map(|(mut h, got)| {
                            h.head = got.commit.clone();
                            h
                        })
                        .collect();
                    greenroom_git::build_staging(&mirror, &base, &heads, &opts)
                        .await
                        .with_context(|| format!("cannot build the staging branch of {}", r.id))?
                }
                Err(e) => {
                    return Err(anyhow::anyhow!(e).context(format!("cannot build the staging branch of {}", r.id)));
                }
            };
            for c in &build.conflicts {
                if let Some(e) = entries.iter().find(|e| e.pr.to_string() == c.id) {
                    let files = if c.files.is_empty() {
                        "unrelated histories".to_string()
                    } else {
                        c.files.join(", ")
                    };
                    conflicts.push((e.pr.clone(), e.unit.clone(), files));
                }
            }
            staged.push(RepoStaged {
                repo: r.clone(),
                base,
                commit: build.commit.clone(),
                merged: build.merged.clone(),
                up_to_date: build.up_to_date.clone(),
            });
        }
        // A conflict in a unit of one PR only affects its repository (the
        // builder already left it out); a unit spanning repositories goes whole.
        let mut again = false;
        for (pr, unit, files) in &conflicts {
            let members: Vec<PrRef> = set
                .units
                .iter()
                .find(|u| &u.id == unit)
                .map(|u| u.members.clone())
                .unwrap_or_else(|| vec![pr.clone()]);
            if members.len() > 1 && dropped.insert(unit.clone()) {
                again = true;
            }
            for m in &members {
                let reason = if m == pr {
                    format!("conflicts with the pull requests merged before it ({files})")
                } else {
                    format!("staged together with {pr} (Depends-On), which conflicts ({files})")
                };
                if let Some(lo) = set.left_out.iter_mut().find(|l| &l.pr == m) {
                    if !lo.reasons.contains(&reason) {
                        lo.reasons.push(reason);
                    }
                } else {
                    set.left_out.push(LeftOut {
                        pr: m.clone(),
                        unit: unit.clone(),
                        reasons: vec![reason],
                    });
                }
            }
        }
        if !again {
            let out_prs: BTreeSet<PrRef> = set.left_out.iter().map(|l| l.pr.clone()).collect();
            set.included.retain(|e| !out_prs.contains(&e.pr));
            set.units.retain(|u| u.members.iter().all(|m| !out_prs.contains(m)));
            set.left_out.sort_by(|a, b| a.pr.cmp(&b.pr));
            return Ok(Staged { set, repos: staged });
        }
    }
    anyhow::bail!("staging did not settle: conflicts kept dropping Depends-On units")
}

/// What to fetch for change `number` of a repository.
fn change_want(r: &Repo, number: u64) -> Want {
    match r.forge {
        config::Forge::Github => Want::PullRequest {
            number,
            forge: greenroom_git::Forge::Github,
        },
        config::Forge::Gitlab => Want::PullRequest {
            number,
            forge: greenroom_git::Forge::Gitlab,
        },
        config::Forge::Git => Want::Ref(r.pending_refs.as_deref().unwrap_or("refs/pending/*").replacen(
            '*',
            &number.to_string(),
            1,
        )),
    }
}

/// The overrides (and PRs per component) of the base plus only `units` of a
/// staged set: what a culprit search run deploys. The heads are those the
/// failing cycle staged, so every run tests the same code.
pub async fn stage_units(
    app: &App,
    staged: &Staged,
    units: &[String],
) -> anyhow::Result<(Vec<String>, BTreeMap<String, Vec<String>>)> {
    let mirrors = Mirrors::new(app.paths.mirrors());
    let opts = greenroom_git::StagingOptions::with_cache(app.paths.root.join("staging-cache"));
    let mut overrides = Vec::new();
    let mut merged = BTreeMap::new();
    for r in &staged.repos {
        let heads: Vec<greenroom_git::PrHead> = staged
            .set
            .included
            .iter()
            .filter(|e| e.pr.repo.eq_ignore_ascii_case(&r.repo.id) && units.contains(&e.unit))
            .map(|e| greenroom_git::PrHead {
                id: e.pr.to_string(),
                number: e.pr.number,
                head: e.head_sha.clone(),
                title: String::new(),
            })
            .collect();
        let mirror = mirrors
            .open(&mirror_name(&r.repo.url), &r.repo.url)
            .await
            .with_context(|| format!("cannot open the mirror of {}", r.repo.url))?;
        let build = greenroom_git::build_staging(&mirror, &r.base, &heads, &opts)
            .await
            .with_context(|| format!("cannot stage {} for a search run", r.repo.id))?;
        for c in &r.repo.components {
            // Always the base commit at least: a search run must not follow a moved branch.
            overrides.push(format!("{c}=sha:{}", build.commit));
            merged.insert(c.clone(), build.merged.clone());
        }
    }
    Ok((overrides, merged))
}

/// Publishes each repository's staging commit to `[pending] staging_ref`
/// (and a dated tag, keeping `staging_tags` of them) in the repository
/// itself, when configured. `now_utc` names the tag (`20261123-1405`).
/// Failures are reported per repository and do not stop the cycle.
pub async fn publish(app: &App, staged: &Staged, now_utc: &str) -> Vec<String> {
    let Some(ref_name) = app.config.pending.staging_ref.clone() else {
        return Vec::new();
    };
    let keep = usize::try_from(app.config.pending.staging_tags).unwrap_or(0);
    let prefix = format!("{}-", ref_name.rsplit('/').next().unwrap_or("staging"));
    let mirrors = Mirrors::new(app.paths.mirrors());
    let mut problems = Vec::new();
    for r in &staged.repos {
        let build = greenroom_git::StagingBuild {
            base: r.base.clone(),
            commit: r.commit.clone(),
            tree: String::new(),
            merged: r.merged.clone(),
            conflicts: Vec::new(),
            up_to_date: r.up_to_date.clone(),
            reused_steps: 0,
            merged_steps: 0,
        };
        let result = match mirrors.open(&mirror_name(&r.repo.url), &r.repo.url).await {
            Ok(m) => greenroom_git::publish(&m, &build, &ref_name, Some(&prefix), keep, now_utc, Some(&r.repo.url))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(repo = %r.repo.id, "cannot publish the staging branch: {e}");
            problems.push(format!("{}: {e}", r.repo.id));
        }
    }
    problems
}

/// `20261123-1405` for a timestamp (UTC), the dated tags' suffix.
pub fn tag_stamp(at: greenroom_core::time::Millis) -> String {
    let t = greenroom_core::time::format(at); // 2026-11-23T14:05:09Z
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    // YYYYMMDDHHMMSS -> YYYYMMDD-HHMMSS
    let (d, rest) = digits.split_at(digits.len().min(8));
    format!("{d}-{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_stamps_sort_like_time() {
        assert_eq!(tag_stamp(0), "19700101-000000");
        assert!(tag_stamp(1_795_392_000_000) < tag_stamp(1_795_392_060_000));
    }

    #[test]
    fn repository_names_from_urls() {
        assert_eq!(repo_name("/srv/git/ogr.git"), "ogr");
        assert_eq!(
            repo_name("https://example.com/packit/packit-service/"),
            "packit-service"
        );
        assert_eq!(repo_name("git@host:team/api.git"), "api");
    }
}
