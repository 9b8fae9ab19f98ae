//! `[[environment.stage]]`: an environment's release pipeline (issue #5
//! point 1; seed 003). Stages run in order after the build: `warmup`
//! (e.g. pre-fetch packages), `migrate` (run once, before the fleet),
//! `deploy` (the components, in `depends_on` order), `post_migrate`, `seed`
//! (test data, so testers need no manual setup), `verify` (the suites),
//! `custom`. Each may be retried (`retry = { attempts, backoff }`), bounded
//! (`timeout`), wait for an approval (`approval = true`: `greenroom approve
//! CYCLE`), and be `irreversible` (after it ran, the manifests before can no
//! longer be restored by a rollback). Without stages the pipeline is
//! `deploy`, `verify`.

use super::Ctx;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use toml::Spanned;

/// Default time a command stage may take.
pub const DEFAULT_STAGE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default wait before a stage's second attempt (doubled each time).
pub const DEFAULT_STAGE_BACKOFF: Duration = Duration::from_secs(10);

/// What a stage does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Prepare every target (pre-fetch packages, warm caches): a command.
    Warmup,
    /// Migrate the data before the new version runs: a command, run once.
    Migrate,
    /// Deploy the components.
    Deploy,
    /// Migrations that need the new version running: a command.
    PostMigrate,
    /// Load fixtures or test data: a command.
    Seed,
    /// Run the suites.
    Verify,
    /// Anything else: a command.
    Custom,
}

impl StageKind {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Warmup => "warmup",
            StageKind::Migrate => "migrate",
            StageKind::Deploy => "deploy",
            StageKind::PostMigrate => "post_migrate",
            StageKind::Seed => "seed",
            StageKind::Verify => "verify",
            StageKind::Custom => "custom",
        }
    }

    fn parse(s: &str) -> Option<StageKind> {
        [
            StageKind::Warmup,
            StageKind::Migrate,
            StageKind::Deploy,
            StageKind::PostMigrate,
            StageKind::Seed,
            StageKind::Verify,
            StageKind::Custom,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether the stage is a command of the user's (`run`).
    pub fn is_command(self) -> bool {
        !matches!(self, StageKind::Deploy | StageKind::Verify)
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stage of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Unique in the pipeline (default: the kind).
    pub name: String,
    /// What it does.
    pub kind: StageKind,
    /// The command of a command stage.
    pub run: Option<String>,
    /// Tries in all (1: no retry).
    pub attempts: u32,
    /// Wait before the second try, doubled for each further one.
    pub backoff: Duration,
    /// Time a command stage may take, per try.
    pub timeout: Duration,
    /// Waits for `greenroom approve CYCLE --stage NAME` before it runs.
    pub approval: bool,
    /// After it ran, earlier manifests cannot be restored by a rollback.
    pub irreversible: bool,
}

impl Stage {
    fn builtin(kind: StageKind) -> Stage {
        Stage {
            name: kind.as_str().to_string(),
            kind,
            run: None,
            attempts: 1,
            backoff: DEFAULT_STAGE_BACKOFF,
            timeout: DEFAULT_STAGE_TIMEOUT,
            approval: false,
            irreversible: false,
        }
    }
}

/// The pipeline when none is declared: deploy, then verify.
pub fn default_pipeline() -> Vec<Stage> {
    vec![Stage::builtin(StageKind::Deploy), Stage::builtin(StageKind::Verify)]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    attempts: Option<Spanned<i64>>,
    backoff: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStage {
    name: Option<Spanned<String>>,
    kind: Spanned<String>,
    run: Option<Spanned<String>>,
    retry: Option<Spanned<RawRetry>>,
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    approval: bool,
    #[serde(default)]
    irreversible: bool,
}

/// Validates an environment's stages; `None` when there were errors (they
/// are in `cx`), `Some(empty)` when none were declared.
pub(super) fn validate(cx: &mut Ctx<'_>, env: &str, raw: &[Spanned<RawStage>]) -> Option<Vec<Stage>> {
    let before = cx.errors.len();
    let key = |k: &str| format!("environment[{env}].stage.{k}");
    let mut out: Vec<Stage> = Vec::new();
    let mut names: BTreeMap<String, ()> = BTreeMap::new();
    for rs in raw {
        let span = rs.span();
        let r = rs.get_ref();
        let Some(kind) = StageKind::parse(r.kind.get_ref()) else {
            cx.err(
                r.kind.span(),
                key("kind"),
                format!(
                    "unknown stage kind `{}` (expected warmup, migrate, deploy, post_migrate, seed, verify or custom)",
                    r.kind.get_ref()
                ),
            );
            continue;
        };
        let name = r
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_else(|| kind.as_str().to_string());
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            cx.err(
                r.name.as_ref().map(|n| n.span()).unwrap_or(span.clone()),
                key("name"),
                format!("`{name}` is not a stage name (letters, digits, `-` and `_`)"),
            );
            continue;
        }
        if names.insert(name.clone(), ()).is_some() {
            cx.err(
                r.name.as_ref().map(|n| n.span()).unwrap_or(span.clone()),
                key("name"),
                format!("two stages are named `{name}`: give one of them another `name`"),
            );
        }
        let run = r.run.as_ref().map(|v| v.get_ref().trim().to_string());
        match (kind.is_command(), &run) {
            (true, None) => cx.err(
                span.clone(),
                key("run"),
                format!("a `{kind}` stage runs a command: give it `run = \"...\"`"),
            ),
            (true, Some(c)) if c.is_empty() => cx.err(
                r.run.as_ref().map(|v| v.span()).unwrap_or(span.clone()),
                key("run"),
                "is empty",
            ),
            (false, Some(_)) => cx.err(
                r.run.as_ref().map(|v| v.span()).unwrap_or(span.clone()),
                key("run"),
                format!("the `{kind}` stage is greenroom's own: it takes no `run`"),
            ),
            _ => {}
        }
        let mut attempts = 1;
        let mut backoff = DEFAULT_STAGE_BACKOFF;
        if let Some(rr) = &r.retry {
            if let Some(a) = &rr.get_ref().attempts {
                match u32::try_from(*a.get_ref()) {
                    Ok(n) if (1..=20).contains(&n) => attempts = n,
                    _ => cx.err(
                        a.span(),
                        key("retry.attempts"),
                        format!("must be between 1 and 20 (tries in all), not {}", a.get_ref()),
                    ),
                }
            }
            backoff = cx.duration(&rr.get_ref().backoff, key("retry.backoff"), DEFAULT_STAGE_BACKOFF);
        }
        let timeout = cx.duration(&r.timeout, key("timeout"), DEFAULT_STAGE_TIMEOUT);
        out.push(Stage {
            name,
            kind,
            run: run.filter(|_| kind.is_command()),
            attempts,
            backoff,
            timeout,
            approval: r.approval,
            irreversible: r.irreversible,
        });
    }
    if !raw.is_empty() {
        let deploys = out.iter().filter(|s| s.kind == StageKind::Deploy).count();
        let verifies = out.iter().filter(|s| s.kind == StageKind::Verify).count();
        let first = raw[0].span();
        if deploys != 1 {
            cx.err(
                first.clone(),
                key("kind"),
                format!("a pipeline has exactly one `deploy` stage, this one has {deploys}"),
            );
        }
        if verifies > 1 {
            cx.err(first.clone(), key("kind"), "a pipeline has at most one `verify` stage");
        }
        let pos = |k: StageKind| out.iter().position(|s| s.kind == k);
        if let (Some(d), Some(v)) = (pos(StageKind::Deploy), pos(StageKind::Verify))
            && v < d
        {
            cx.err(first.clone(), key("kind"), "`verify` comes after `deploy`");
        }
        if let (Some(d), Some(m)) = (pos(StageKind::Deploy), pos(StageKind::Migrate))
            && m > d
        {
            cx.err(
                first.clone(),
                key("kind"),
                "`migrate` runs before `deploy` (use `post_migrate` after it)",
            );
        }
        if let (Some(d), Some(m)) = (pos(StageKind::Deploy), pos(StageKind::PostMigrate))
            && m < d
        {
            cx.err(first, key("kind"), "`post_migrate` runs after `deploy`");
        }
    }
    (cx.errors.len() == before).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, parse};
    use std::path::Path;

    const BASE: &str =
        "[[component]]\nname = \"api\"\nrepo = \"r\"\nrun = \"x\"\n\n[[environment]]\nname = \"staging\"\n";

    fn with(stages: &str) -> Result<Config, String> {
        parse(&format!("{BASE}{stages}"), Path::new("greenroom.toml"), Path::new("/")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_default_pipeline_is_deploy_then_verify() {
        let c = with("").expect("valid");
        let p: Vec<StageKind> = c.environments[0].pipeline().iter().map(|s| s.kind).collect();
        assert_eq!(p, [StageKind::Deploy, StageKind::Verify]);
    }

    #[test]
    fn a_full_pipeline() {
        let c = with(
            "[[environment.stage]]\nkind = \"warmup\"\nrun = \"./prefetch.sh\"\nretry = { attempts = 3, backoff = \"5s\" }\n\
             [[environment.stage]]\nkind = \"migrate\"\nrun = \"./migrate.sh\"\napproval = true\ntimeout = \"1h\"\n\
             [[environment.stage]]\nkind = \"deploy\"\n\
             [[environment.stage]]\nname = \"drop-columns\"\nkind = \"post_migrate\"\nrun = \"./post.sh\"\nirreversible = true\n\
             [[environment.stage]]\nkind = \"seed\"\nrun = \"./seed.sh\"\n\
             [[environment.stage]]\nkind = \"verify\"\n",
        )
        .expect("valid");
        let p = c.environments[0].pipeline();
        let names: Vec<&str> = p.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["warmup", "migrate", "deploy", "drop-columns", "seed", "verify"]);
        assert_eq!((p[0].attempts, p[0].backoff), (3, Duration::from_secs(5)));
        assert!(p[1].approval && !p[1].irreversible);
        assert_eq!(p[1].timeout, Duration::from_secs(3600));
        assert!(p[3].irreversible);
        assert_eq!(p[4].run.as_deref(), Some("./seed.sh"));
        assert_eq!(p[2].run, None);
    }

    #[test]
    fn mistakes_are_located_and_explained() {
        for (stages, want) in [
            (
                "[[environment.stage]]\nkind = \"verify\"\n",
                "exactly one `deploy` stage, this one has 0",
            ),
            (
                "[[environment.stage]]\nkind = \"deploy\"\n[[environment.stage]]\nkind = \"deploy\"\nname = \"again\"\n",
                "exactly one `deploy`",
            ),
            (
                "[[environment.stage]]\nkind = \"deploy\"\nrun = \"x\"\n",
                "takes no `run`",
            ),
            (
                "[[environment.stage]]\nkind = \"seed\"\n[[environment.stage]]\nkind = \"deploy\"\n",
                "give it `run",
            ),
            (
                "[[environment.stage]]\nkind = \"rollout\"\n",
                "unknown stage kind `rollout`",
            ),
            (
                "[[environment.stage]]\nkind = \"deploy\"\n[[environment.stage]]\nkind = \"migrate\"\nrun = \"m\"\n",
                "`migrate` runs before `deploy`",
            ),
            (
                "[[environment.stage]]\nkind = \"verify\"\n[[environment.stage]]\nkind = \"deploy\"\n",
                "`verify` comes after `deploy`",
            ),
            (
                "[[environment.stage]]\nkind = \"deploy\"\n[[environment.stage]]\nkind = \"seed\"\nrun = \"a\"\n[[environment.stage]]\nkind = \"seed\"\nrun = \"b\"\n",
                "two stages are named `seed`",
            ),
            (
                "[[environment.stage]]\nkind = \"deploy\"\nretry = { attempts = 0 }\n",
                "between 1 and 20",
            ),
            (
                "[[environment.stage]]\nkind = \"deploy\"\ntimeout = \"soon\"\n",
                "environment[staging].stage.timeout",
            ),
            (
                "[[environment.stage]]\nkind = \"deploy\"\nname = \"de ploy\"\n",
                "not a stage name",
            ),
            (
                "[[environment.stage]]\nkind = \"deploy\"\nmystery = 1\n",
                "unknown field `mystery`",
            ),
        ] {
            let e = with(stages).expect_err(stages);
            assert!(e.contains(want), "{stages}\n-> {e}");
            assert!(e.contains("greenroom.toml:"), "located: {e}");
        }
    }
}
