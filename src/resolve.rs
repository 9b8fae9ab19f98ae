//! Resolution: from a checked composition to manifest entries.
//!
//! Git selections are resolved through one bare mirror per repository
//! (all repositories concurrently, one batched fetch each); image
//! selections through the component's optional `resolve` command. Then,
//! for a concrete environment instance, [`manifest_for`] adds environment
//! variables (secrets by fingerprint) and carried-over components and
//! computes the manifest id. Secret values are read here, at the edge, and
//! only ever leave as variables of the component's own processes.

use crate::app::App;
use crate::error::input;
use anyhow::Context;
use greenroom_core::compose::{GitWant, Selection};
use greenroom_core::config::{Component, Config, Environment, Forge, Health, Instance, VarValue};
use greenroom_core::manifest::{Manifest, ManifestComponent};
use greenroom_core::secret::{self, SecretRef};
use greenroom_core::template;
use greenroom_git::{GitError, Mirrors, Want};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A component with what it resolved to (`None` for carried components).
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Component name.
    pub name: String,
    /// The selection it came from.
    pub selection: Selection,
    /// The entry without environment variables (added per instance).
    pub entry: Option<ManifestComponent>,
}

/// Resolution result and timing.
pub struct Resolution {
    /// Components in environment order.
    pub components: Vec<Resolved>,
    /// Time spent in user `resolve` commands.
    pub user_time: Duration,
}

/// The mirror name for a repository URL: readable and unique.
pub fn mirror_name(url: &str) -> String {
    let base: String = url
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let base = base.trim_matches('-');
    let hash = Sha256::digest(url.as_bytes());
    let short: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{}-{short}", if base.is_empty() { "repo" } else { base })
}

fn want_of(w: &GitWant, forge: Forge, pending_refs: Option<&str>) -> Want {
    match w {
        GitWant::Branch(b) => Want::Branch(b.clone()),
        GitWant::Tag(t) => Want::Tag(t.clone()),
        GitWant::TagPattern(p) => Want::TagPattern(p.clone()),
        GitWant::PullRequest(n) => match forge {
            Forge::Github => Want::PullRequest {
                number: *n,
                forge: greenroom_git::Forge::Github,
            },
            Forge::Gitlab => Want::PullRequest {
                number: *n,
                forge: greenroom_git::Forge::Gitlab,
            },
            // A plain git repository: the change is the ref whose `*` is its number.
            Forge::Git => Want::Ref(
                pending_refs
                    .unwrap_or("refs/pending/*")
                    .replacen('*', &n.to_string(), 1),
            ),
        },
        GitWant::Commit(c) => Want::Commit(c.clone()),
    }
}

fn health_text(h: &Option<Health>) -> Option<String> {
    match h {
        Some(Health::Http(u)) => Some(u.clone()),
        Some(Health::Command(c)) => Some(c.clone()),
        None => None,
    }
}

/// The entry fields that come from the config.
pub fn base_entry(c: &Component, origin: &str) -> ManifestComponent {
    ManifestComponent {
        origin: origin.to_string(),
        build: c.build.clone(),
        run: c.run.clone(),
        deploy: c.deploy.clone(),
        stop: c.stop.clone(),
        health: health_text(&c.health),
        ..Default::default()
    }
}

/// Resolves every selection. Errors (a PR or branch that does not exist)
/// are input errors naming the component and the repository.
pub async fn resolve(app: &App, env: &Environment, selections: &[(String, Selection)]) -> anyhow::Result<Resolution> {
    let config = &app.config;
    let mirrors = Mirrors::new(app.paths.mirrors());
    // Group git wants by repository so each mirror is fetched once.
    let mut by_repo: BTreeMap<String, Vec<(usize, Want)>> = BTreeMap::new();
    for (i, (name, sel)) in selections.iter().enumerate() {
        if let Selection::Git { want, .. } = sel {
            let c = component(config, name)?;
            let Some(repo) = &c.repo else {
                return Err(input(format!("component `{name}` has no `repo`")));
            };
            by_repo
                .entry(repo.clone())
                .or_default()
                .push((i, want_of(want, c.forge, c.pending_refs.as_deref())));
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (repo, wants) in by_repo {
        let mirrors = mirrors.clone();
        tasks.spawn(async move {
            let mirror = mirrors.open(&mirror_name(&repo), &repo).await;
            let result = match mirror {
                Ok(m) => {
                    let ws: Vec<Want> = wants.iter().map(|(_, w)| w.clone()).collect();
                    m.resolve_all(&ws).await
                }
                Err(e) => Err(e),
            };
            (repo, wants, result)
        });
    }
    let mut resolved_git: BTreeMap<usize, greenroom_git::Resolved> = BTreeMap::new();
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (repo, wants, result) = joined.context("a resolution task failed")?;
        match result {
            Ok(rs) => {
                for ((i, _), r) in wants.into_iter().zip(rs) {
                    resolved_git.insert(i, r);
                }
            }
            Err(e @ (GitError::NotFound { .. } | GitError::Ambiguous { .. })) => {
                let names: Vec<&str> = wants.iter().map(|(i, _)| selections[*i].0.as_str()).collect();
                errors.push(format!("component {}: {e}", names.join(", ")));
            }
            Err(e) => errors.push(format!("repository {repo}: {e}")),
        }
    }
    if !errors.is_empty() {
        errors.sort();
        return Err(input(errors.join("\n")));
    }

    let mut user_time = Duration::ZERO;
    let mut out = Vec::new();
    for (i, (name, sel)) in selections.iter().enumerate() {
        let c = component(config, name)?;
        let entry = match sel {
            Selection::Carry => None,
            Selection::Git { origin, want } => {
                let r = resolved_git
                    .get(&i)
                    .with_context(|| format!("component {name}: resolution returned no result"))?;
                let mut e = base_entry(c, origin);
                e.commit = Some(r.commit.clone());
                e.reference = Some(r.reference.clone());
                if let GitWant::PullRequest(n) = want {
                    e.pr = Some(*n);
                }
                Some(e)
            }
            Selection::Image { tag, origin } => {
                let image = c.image.clone().unwrap_or_default();
                // A feed component without an image deploys `PACKAGE=VERSION`
                // (what apt and most package tools take).
                let reference = match (&c.feed, c.image.is_some()) {
                    (Some(f), false) => format!("{}={tag}", f.package),
                    _ => format!("{image}:{tag}"),
                };
                let t = Instant::now();
                let resolved = match &c.resolve {
                    Some(cmd) => resolve_image(cmd, &reference, &image, tag, env, c.timeout)
                        .await
                        .with_context(|| format!("component {name}: the `resolve` command for {reference} failed"))?,
                    None => reference.clone(),
                };
                user_time += t.elapsed();
                let mut e = base_entry(c, origin);
                // A feed's version is the reference (`GREENROOM_REF`): what
                // rollbacks by version and reports name.
                e.reference = Some(if c.feed.is_some() { tag.clone() } else { reference });
                e.image = Some(resolved);
                Some(e)
            }
        };
        out.push(Resolved {
            name: name.clone(),
            selection: sel.clone(),
            entry,
        });
    }
    Ok(Resolution {
        components: out,
        user_time,
    })
}

fn component<'a>(config: &'a Config, name: &str) -> anyhow::Result<&'a Component> {
    config
        .component(name)
        .ok_or_else(|| input(format!("unknown component `{name}`")))
}

/// Runs a component's `resolve` command; its first stdout line is the
/// immutable image reference. The tag travels as variables, not in the
/// command text.
async fn resolve_image(
    cmd: &str,
    reference: &str,
    image: &str,
    tag: &str,
    env: &Environment,
    timeout: Duration,
) -> anyhow::Result<String> {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .env("GREENROOM_IMAGE", reference)
        .env("GREENROOM_IMAGE_REPOSITORY", image)
        .env("GREENROOM_IMAGE_TAG", tag)
        .env("GREENROOM_ENV", &env.name)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {}", humantime::format_duration(timeout)))?
        .context("cannot start sh")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!("{}: {}", out.status, stderr.trim());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if line.is_empty() {
        anyhow::bail!("it printed nothing; it must print the image reference (e.g. {image}@sha256:...)");
    }
    Ok(line.to_string())
}

/// Secret values and rendered variables of an instance.
pub struct Vars {
    /// Name -> value, for the component's processes.
    pub values: Vec<(String, String)>,
    /// Name -> literal or fingerprint, for the manifest.
    pub recorded: BTreeMap<String, String>,
    /// Secret values, for log redaction.
    pub secrets: Vec<String>,
}

/// Renders `[environment.vars]` for an instance, reading secrets.
pub fn vars_for(env: &Environment, inst: &Instance) -> anyhow::Result<Vars> {
    let slot = inst.slot.map(|s| s.to_string()).unwrap_or_default();
    let values_tpl = [("slot", slot.as_str()), ("environment", inst.name.as_str())];
    let mut out = Vars {
        values: Vec::new(),
        recorded: BTreeMap::new(),
        secrets: Vec::new(),
    };
    for (k, v) in &env.vars {
        match v {
            VarValue::Literal(t) => {
                let value = template::render(t, &values_tpl);
                out.recorded.insert(k.clone(), value.clone());
                out.values.push((k.clone(), value));
            }
            VarValue::Secret(s) => {
                let value = read_secret(s).map_err(|e| input(format!("environment {}: vars.{k}: {e}", env.name)))?;
                out.recorded.insert(k.clone(), secret::fingerprint(&value));
                out.secrets.push(value.clone());
                out.values.push((k.clone(), value));
            }
        }
    }
    Ok(out)
}

/// Reads a secret's value (env var or file); the error says which and why.
pub fn read_secret(s: &SecretRef) -> Result<String, String> {
    match s {
        SecretRef::Env(name) => match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(v),
            _ => Err(format!(
                "environment variable {name} is not set (it holds a secret: export it before running greenroom)"
            )),
        },
        SecretRef::File(path) => std::fs::read_to_string(path)
            .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| format!("cannot read secret file {}: {e}", path.display())),
    }
}

/// The manifest for one instance: resolved entries with the instance's
/// variables, plus carried components as they run now.
pub fn manifest_for(resolution: &Resolution, vars: &Vars, running: &[greenroom_store::Deployed]) -> Manifest {
    let mut components = BTreeMap::new();
    for r in &resolution.components {
        let entry = match &r.entry {
            Some(e) => {
                let mut e = e.clone();
                e.vars = vars.recorded.clone();
                e
            }
            None => match running.iter().find(|d| d.component == r.name && d.state != "stopped") {
                Some(d) => ManifestComponent {
                    carried: true,
                    origin: "carried".into(),
                    ..d.entry.clone()
                },
                None => ManifestComponent {
                    carried: true,
                    origin: "carried (not running)".into(),
                    ..Default::default()
                },
            },
        };
        components.insert(r.name.clone(), entry);
    }
    Manifest::new(components)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_names_are_readable_and_distinct() {
        let a = mirror_name("https://github.com/packit/ogr.git");
        assert!(a.starts_with("ogr-"), "{a}");
        let b = mirror_name("git@gitlab.com:packit/ogr.git");
        assert!(b.starts_with("ogr-"), "{b}");
        assert_ne!(a, b);
        assert!(mirror_name("/tmp/x y/Repo").starts_with("repo-"));
        assert!(mirror_name("/").starts_with("repo-"));
    }
}
