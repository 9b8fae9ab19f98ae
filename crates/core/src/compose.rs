//! The composition grammar: what someone asked to run.
//!
//! `greenroom deploy --base prod packit-service=614 ogr=branch:fix` is a
//! [`Request`]: a base channel, per-component overrides, and an optional
//! subset (`--only` / `--skip`). [`select`] checks it against the config and
//! an instance, and says for every component of the environment what to
//! resolve or whether to carry it over. Everything is checked here, before
//! anything is touched; ref names obey git's rules ([`crate::refname`]).
//! No I/O.

use crate::config::{ChannelSource, Config, Environment};
use crate::refname;
use std::fmt;

/// What one component should run, as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefSpec {
    /// `N` or `pr:N`: a pull/merge request's head.
    PullRequest(u64),
    /// `branch:NAME`.
    Branch(String),
    /// `sha:HEX` (7 to 40 hex digits).
    Commit(String),
    /// `tag:NAME` (a glob picks the newest matching tag by version).
    Tag(String),
    /// `channel:stg|prod`: follow that base channel.
    Channel(String),
    /// `version:V`: a published version (an image tag, a feed's version:
    /// `crate::feed`), for components with an `image` or a `feed`.
    Version(String),
}

impl fmt::Display for RefSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefSpec::PullRequest(n) => write!(f, "pr:{n}"),
            RefSpec::Branch(b) => write!(f, "branch:{b}"),
            RefSpec::Commit(c) => write!(f, "sha:{c}"),
            RefSpec::Tag(t) => write!(f, "tag:{t}"),
            RefSpec::Channel(c) => write!(f, "channel:{c}"),
            RefSpec::Version(v) => write!(f, "version:{v}"),
        }
    }
}

/// `COMPONENT=REF` as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Component name.
    pub component: String,
    /// What to run.
    pub spec: RefSpec,
}

/// A deploy request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Base channel for components not overridden (`stg` by default).
    pub base: String,
    /// Overrides, in the order given.
    pub overrides: Vec<Override>,
    /// `--only`: deploy just these (others are carried over).
    pub only: Vec<String>,
    /// `--skip`: do not deploy these (they are carried over).
    pub skip: Vec<String>,
}

/// A problem with a request; nothing has been touched when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    /// Not `COMPONENT=REF`.
    #[error(
        "`{arg}`: expected COMPONENT=REF, e.g. `ogr=123`, `api=branch:fix-login`, `worker=sha:1a2b3c4`, `db=tag:v2.3.0`"
    )]
    NotAnOverride {
        /// The argument.
        arg: String,
    },
    /// The ref part is malformed.
    #[error("`{arg}`: {reason}")]
    BadRef {
        /// The argument.
        arg: String,
        /// Why.
        reason: String,
    },
    /// No such component in the config.
    #[error("unknown component `{name}` (components: {known})")]
    UnknownComponent {
        /// Name asked for.
        name: String,
        /// Known names.
        known: String,
    },
    /// The component exists but the environment does not deploy it.
    #[error("component `{name}` is not part of environment `{environment}` (it has: {members})")]
    NotInEnvironment {
        /// Component.
        name: String,
        /// Environment.
        environment: String,
        /// Its components.
        members: String,
    },
    /// The same component overridden twice.
    #[error("component `{name}` is given twice")]
    Duplicate {
        /// Component.
        name: String,
    },
    /// A channel the component does not have.
    #[error(
        "component `{name}` has no `{channel}` channel (it has: {channels}); add it under `channels` or override the component"
    )]
    NoSuchChannel {
        /// Component.
        name: String,
        /// Channel asked for.
        channel: String,
        /// Its channels.
        channels: String,
    },
    /// A git ref asked of a component that has no repository.
    #[error("component `{name}` has no `repo`, so `{spec}` cannot be resolved")]
    NoRepo {
        /// Component.
        name: String,
        /// What was asked.
        spec: String,
    },
    /// `version:V` for a component with neither `image` nor `feed`.
    #[error("component `{name}` has no `image` and no `feed`, so `{spec}` names nothing to deploy")]
    NotVersioned {
        /// Component.
        name: String,
        /// What was asked.
        spec: String,
    },
    /// A channel asked of a component that follows a feed and lacks it.
    #[error(
        "component `{name}` follows a package feed and has no `{channel}` channel: name a version (`{name}=version:V`) or leave it out (--skip {name})"
    )]
    FeedWithoutChannel {
        /// Component.
        name: String,
        /// Channel asked for.
        channel: String,
    },
    /// An override of a component excluded by `--only`/`--skip`.
    #[error("component `{name}` is overridden but excluded by {flag}")]
    OverriddenButExcluded {
        /// Component.
        name: String,
        /// `--only` or `--skip`.
        flag: &'static str,
    },
    /// `--only` and `--skip` together.
    #[error("--only and --skip cannot be combined")]
    OnlyAndSkip,
    /// `--only`/`--skip` leave nothing to deploy.
    #[error("nothing to deploy: --only/--skip exclude every component of `{environment}`")]
    NothingToDeploy {
        /// Environment.
        environment: String,
    },
}

/// Parses the REF part of `COMPONENT=REF`.
pub fn parse_ref(text: &str) -> Result<RefSpec, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return parse_pr(text);
    }
    let Some((kind, value)) = text.split_once(':') else {
        return Err(format!(
            "`{text}` is not a ref: use N or pr:N, branch:NAME, sha:HEX, tag:NAME or channel:NAME"
        ));
    };
    match kind {
        "pr" | "mr" => parse_pr(value),
        "branch" => refname::check(value)
            .map(|()| RefSpec::Branch(value.to_string()))
            .map_err(|e| format!("`{value}` is not a valid branch name: it {e}")),
        "tag" => {
            let check = if value.contains(['*', '?', '[']) {
                refname::check_pattern(value)
            } else {
                refname::check(value)
            };
            check
                .map(|()| RefSpec::Tag(value.to_string()))
                .map_err(|e| format!("`{value}` is not a valid tag name: it {e}"))
        }
        "sha" => {
            if (7..=40).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(RefSpec::Commit(value.to_ascii_lowercase()))
            } else {
                Err(format!("`{value}` is not a commit: use 7 to 40 hexadecimal digits"))
            }
        }
        "channel" => {
            if !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                Ok(RefSpec::Channel(value.to_string()))
            } else {
                Err(format!("`{value}` is not a channel name (e.g. stg, prod)"))
            }
        }
        "version" => crate::feed::check_text(value)
            .map(|()| RefSpec::Version(value.to_string()))
            .map_err(|e| format!("`{value}` is not a version: it {e}")),
        other => Err(format!(
            "unknown ref kind `{other}:`: use N or pr:N, branch:NAME, sha:HEX, tag:NAME, channel:NAME or version:V"
        )),
    }
}

fn parse_pr(value: &str) -> Result<RefSpec, String> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(RefSpec::PullRequest(n)),
        _ => Err(format!("`{value}` is not a pull request number")),
    }
}

/// Parses `COMPONENT=REF`.
pub fn parse_override(arg: &str) -> Result<Override, ComposeError> {
    let Some((component, r)) = arg.split_once('=') else {
        return Err(ComposeError::NotAnOverride { arg: arg.to_string() });
    };
    if component.is_empty() || r.is_empty() {
        return Err(ComposeError::NotAnOverride { arg: arg.to_string() });
    }
    let spec = parse_ref(r).map_err(|reason| ComposeError::BadRef {
        arg: arg.to_string(),
        reason,
    })?;
    Ok(Override {
        component: component.to_string(),
        spec,
    })
}

/// What to do with one component of the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Resolve this git ref and deploy it.
    Git {
        /// What to resolve.
        want: GitWant,
        /// How it was asked (`pr:614`, `channel:stg`), for reports.
        origin: String,
    },
    /// Deploy this published image tag of the component's `image`.
    Image {
        /// The tag (`stg`).
        tag: String,
        /// How it was asked.
        origin: String,
    },
    /// Not deployed by this cycle: whatever runs now keeps running.
    Carry,
}

/// A git ref to resolve (mirrors `greenroom_git::Want`, kept here so that the
/// pure core does not depend on the adapter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitWant {
    /// A branch.
    Branch(String),
    /// An exact tag.
    Tag(String),
    /// Newest tag matching a glob, by version order.
    TagPattern(String),
    /// A pull/merge request head.
    PullRequest(u64),
    /// A commit (7..40 hex).
    Commit(String),
}

/// Checks a request against the config and says, for every component of
/// `env` (in config order), what to do. Collects all problems.
pub fn select(
    config: &Config,
    env: &Environment,
    req: &Request,
) -> Result<Vec<(String, Selection)>, Vec<ComposeError>> {
    let mut errors = Vec::new();
    let known = config
        .components
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let members = env.components.join(", ");
    let check_member = |name: &str, errors: &mut Vec<ComposeError>| -> bool {
        if config.component(name).is_none() {
            errors.push(ComposeError::UnknownComponent {
                name: name.to_string(),
                known: known.clone(),
            });
            false
        } else if !env.components.iter().any(|c| c == name) {
            errors.push(ComposeError::NotInEnvironment {
                name: name.to_string(),
                environment: env.name.clone(),
                members: members.clone(),
            });
            false
        } else {
            true
        }
    };
    if !req.only.is_empty() && !req.skip.is_empty() {
        errors.push(ComposeError::OnlyAndSkip);
    }
    for n in req.only.iter().chain(&req.skip) {
        check_member(n, &mut errors);
    }
    let mut seen: Vec<&str> = Vec::new();
    for o in &req.overrides {
        if seen.contains(&o.component.as_str()) {
            errors.push(ComposeError::Duplicate {
                name: o.component.clone(),
            });
            continue;
        }
        seen.push(&o.component);
        if !check_member(&o.component, &mut errors) {
            continue;
        }
        if !req.only.is_empty() && !req.only.contains(&o.component) {
            errors.push(ComposeError::OverriddenButExcluded {
                name: o.component.clone(),
                flag: "--only",
            });
        }
        if req.skip.contains(&o.component) {
            errors.push(ComposeError::OverriddenButExcluded {
                name: o.component.clone(),
                flag: "--skip",
            });
        }
    }

    let mut out = Vec::new();
    for name in &env.components {
        let Some(component) = config.component(name) else {
            continue;
        };
        let excluded = (!req.only.is_empty() && !req.only.contains(name)) || req.skip.contains(name);
        if excluded {
            out.push((name.clone(), Selection::Carry));
            continue;
        }
        let spec = req
            .overrides
            .iter()
            .find(|o| &o.component == name)
            .map(|o| o.spec.clone())
            .unwrap_or_else(|| RefSpec::Channel(req.base.clone()));
        let origin = spec.to_string();
        let needs_repo = |errors: &mut Vec<ComposeError>| {
            if component.repo.is_none() {
                errors.push(ComposeError::NoRepo {
                    name: name.clone(),
                    spec: origin.clone(),
                });
            }
        };
        let sel = match &spec {
            RefSpec::Channel(ch) => match component.channels.get(ch) {
                None if component.feed.is_some() => {
                    errors.push(ComposeError::FeedWithoutChannel {
                        name: name.clone(),
                        channel: ch.clone(),
                    });
                    continue;
                }
                None => {
                    errors.push(ComposeError::NoSuchChannel {
                        name: name.clone(),
                        channel: ch.clone(),
                        channels: component.channels.keys().cloned().collect::<Vec<_>>().join(", "),
                    });
                    continue;
                }
                Some(ChannelSource::Branch(b)) => Selection::Git {
                    want: GitWant::Branch(b.clone()),
                    origin,
                },
                Some(ChannelSource::TagPattern(p)) => Selection::Git {
                    want: GitWant::TagPattern(p.clone()),
                    origin,
                },
                Some(ChannelSource::Image(t)) => Selection::Image { tag: t.clone(), origin },
            },
            RefSpec::PullRequest(n) => {
                needs_repo(&mut errors);
                Selection::Git {
                    want: GitWant::PullRequest(*n),
                    origin,
                }
            }
            RefSpec::Branch(b) => {
                needs_repo(&mut errors);
                Selection::Git {
                    want: GitWant::Branch(b.clone()),
                    origin,
                }
            }
            RefSpec::Commit(c) => {
                needs_repo(&mut errors);
                Selection::Git {
                    want: GitWant::Commit(c.clone()),
                    origin,
                }
            }
            RefSpec::Tag(t) if t.contains(['*', '?', '[']) => {
                needs_repo(&mut errors);
                Selection::Git {
                    want: GitWant::TagPattern(t.clone()),
                    origin,
                }
            }
            RefSpec::Tag(t) => {
                needs_repo(&mut errors);
                Selection::Git {
                    want: GitWant::Tag(t.clone()),
                    origin,
                }
            }
            RefSpec::Version(v) => {
                if component.image.is_none() && component.feed.is_none() {
                    errors.push(ComposeError::NotVersioned {
                        name: name.clone(),
                        spec: origin.clone(),
                    });
                }
                // A feed's version says so in reports (`feed:1.4.2`).
                let origin = if component.feed.is_some() {
                    format!("feed:{v}")
                } else {
                    origin
                };
                Selection::Image { tag: v.clone(), origin }
            }
        };
        out.push((name.clone(), sel));
    }
    if errors.is_empty() && out.iter().all(|(_, s)| *s == Selection::Carry) {
        errors.push(ComposeError::NothingToDeploy {
            environment: env.name.clone(),
        });
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use proptest::prelude::*;
    use std::path::Path;

    fn config() -> Config {
        let text = r#"
[[component]]
name = "packit-service"
repo = "r1"
run = "x"
channels = { stg = "main", prod = "stable" }
[[component]]
name = "ogr"
repo = "r2"
run = "x"
channels = { stg = "main", prod = "tag:v*" }
[[component]]
name = "worker"
image = "quay.io/packit/worker"
run = "x"
channels = { stg = "image:stg", prod = "image:prod" }
[[component]]
name = "dashboard"
repo = "r3"
run = "x"
[[environment]]
name = "staging"
components = ["packit-service", "ogr", "worker"]
"#;
        match parse(text, Path::new("t.toml"), Path::new("/")) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn req(base: &str, args: &[&str]) -> Request {
        Request {
            base: base.into(),
            overrides: args
                .iter()
                .map(|a| parse_override(a).unwrap_or_else(|e| panic!("{e}")))
                .collect(),
            ..Request::default()
        }
    }

    fn errs(r: &Request) -> Vec<String> {
        let c = config();
        let env = c.environment("staging").expect("staging").clone();
        match select(&c, &env, r) {
            Ok(s) => panic!("accepted: {s:?}"),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn grammar() {
        assert_eq!(parse_ref("614"), Ok(RefSpec::PullRequest(614)));
        assert_eq!(parse_ref("pr:7"), Ok(RefSpec::PullRequest(7)));
        assert_eq!(parse_ref("branch:fix-login"), Ok(RefSpec::Branch("fix-login".into())));
        assert_eq!(parse_ref("sha:1A2B3C4"), Ok(RefSpec::Commit("1a2b3c4".into())));
        assert_eq!(parse_ref("tag:v2.3.0"), Ok(RefSpec::Tag("v2.3.0".into())));
        assert_eq!(parse_ref("channel:prod"), Ok(RefSpec::Channel("prod".into())));
        insta::assert_snapshot!(
            [
                "0",
                "pr:x",
                "branch:a..b",
                "branch:-rf",
                "sha:123",
                "sha:xyz1234",
                "tag:v1 0",
                "channel:",
                "main",
                "what:ever",
                "branch:"
            ]
            .iter()
            .map(|r| format!("{r:>14} -> {}", parse_ref(r).err().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n")
        );
        assert!(matches!(parse_override("ogr"), Err(ComposeError::NotAnOverride { .. })));
        assert!(matches!(parse_override("=5"), Err(ComposeError::NotAnOverride { .. })));
    }

    #[test]
    fn base_and_overrides() {
        let c = config();
        let env = c.environment("staging").expect("staging").clone();
        let sel = select(&c, &env, &req("prod", &["packit-service=614"])).expect("valid");
        assert_eq!(
            sel,
            vec![
                (
                    "packit-service".into(),
                    Selection::Git {
                        want: GitWant::PullRequest(614),
                        origin: "pr:614".into()
                    }
                ),
                (
                    "ogr".into(),
                    Selection::Git {
                        want: GitWant::TagPattern("v*".into()),
                        origin: "channel:prod".into()
                    }
                ),
                (
                    "worker".into(),
                    Selection::Image {
                        tag: "prod".into(),
                        origin: "channel:prod".into()
                    }
                ),
            ]
        );
        let mut r = req("stg", &["ogr=sha:abcdef1"]);
        r.only = vec!["ogr".into()];
        let sel = select(&c, &env, &r).expect("valid");
        assert_eq!(sel[0].1, Selection::Carry);
        assert_eq!(
            sel[1].1,
            Selection::Git {
                want: GitWant::Commit("abcdef1".into()),
                origin: "sha:abcdef1".into()
            }
        );
        assert_eq!(sel[2].1, Selection::Carry);
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        assert_eq!(
            errs(&req("stg", &["nope=1"])),
            vec!["unknown component `nope` (components: packit-service, ogr, worker, dashboard)"]
        );
        assert_eq!(
            errs(&req("stg", &["dashboard=1"])),
            vec!["component `dashboard` is not part of environment `staging` (it has: packit-service, ogr, worker)"]
        );
        assert_eq!(
            errs(&req("stg", &["ogr=1", "ogr=2"])),
            vec!["component `ogr` is given twice"]
        );
        assert_eq!(errs(&req("qa", &[])).len(), 3);
        assert_eq!(
            errs(&req("stg", &["worker=5"])),
            vec!["component `worker` has no `repo`, so `pr:5` cannot be resolved"]
        );
        let mut r = req("stg", &["ogr=5"]);
        r.skip = vec!["ogr".into()];
        assert_eq!(errs(&r), vec!["component `ogr` is overridden but excluded by --skip"]);
        let mut r = req("stg", &[]);
        r.skip = vec!["ogr".into(), "worker".into(), "packit-service".into()];
        assert_eq!(
            errs(&r),
            vec!["nothing to deploy: --only/--skip exclude every component of `staging`"]
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,60}") {
            let _ = parse_override(&s);
        }

        #[test]
        fn display_round_trips(n in 1u64..100000, b in "[a-z][a-z0-9-]{0,8}(/[a-z0-9][a-z0-9-]{0,5})?") {
            for spec in [RefSpec::PullRequest(n), RefSpec::Branch(b.clone()), RefSpec::Tag(b.clone())] {
                prop_assert_eq!(parse_ref(&spec.to_string()), Ok(spec.clone()));
            }
        }
    }
}
