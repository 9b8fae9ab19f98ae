//! An environment's fleet (issue #5 point 2; `crate::fleet`): `targets =
//! ["web-1", { name = "web-2", address = "10.0.0.2" }]` for the `command`
//! driver, or `instances = N` for the `process` driver (N copies on
//! loopback ports, targets `t1`..`tN`); `blessed` (default: the first
//! target), `canary` (target names), `batch` (a count, or `"25%"` of the
//! fleet). Without `targets` and `instances` an environment is one place,
//! as before, and the other keys are refused.
//!
//! A profile's per-component counts (`[environment.profile] instances =
//! { api = 3, db = 1 }`, issue #5 point 3) are validated here too, since
//! they land on the fleet (`Fleet::counts`): each key a component of the
//! environment, each count 1..=[`MAX_TARGETS`] and at most the fleet's
//! number of targets; components not listed run on every target. Without
//! `targets`/`instances`, the process driver derives the fleet: `instances
//! = ` the largest count (blessed `t1`, no canaries, batches of 1).
use super::{Ctx, DriverKind, RawEnvironment};
use crate::fleet::{Batch, Fleet, Target};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A target as written: a name (which is also its address) or a table.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawTarget {
    Name(String),
    Full { name: String, address: Option<String> },
}

/// `batch = 2` or `batch = "25%"`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawBatch {
    Count(i64),
    Text(String),
}

/// Most targets an environment may have.
pub const MAX_TARGETS: usize = 1000;

/// The fleet keys given (`blessed`, `canary`, `batch`), with where.
fn stray(re: &RawEnvironment) -> impl Iterator<Item = (std::ops::Range<usize>, &'static str)> {
    [
        re.blessed.as_ref().map(|b| (b.span(), "blessed")),
        re.canary.as_ref().map(|c| (c.span(), "canary")),
        re.batch.as_ref().map(|b| (b.span(), "batch")),
    ]
    .into_iter()
    .flatten()
}

fn valid_target_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.len() <= 253
}

/// Validates the fleet keys of an environment, and its profile's
/// `instances` counts (`members`: the environment's components); `None`
/// when it has no fleet or when there were errors (they are in `cx`).
pub(super) fn validate(
    cx: &mut Ctx<'_>,
    env: &str,
    driver: DriverKind,
    re: &RawEnvironment,
    members: &[String],
) -> Option<Fleet> {
    let before = cx.errors.len();
    let key = |k: &str| format!("environment[{env}].{k}");
    let counts = match &re.profile {
        Some(p) => valid_counts(cx, env, &p.get_ref().instances, members),
        None => BTreeMap::new(),
    };
    let targets: Vec<Target> = match (&re.targets, &re.instances) {
        (Some(t), Some(_)) => {
            cx.err(
                t.span(),
                key("targets"),
                "give either `targets` (command driver) or `instances` (process driver), not both",
            );
            return None;
        }
        (None, None) if !counts.is_empty() && driver == DriverKind::Process => {
            for (span, k) in stray(re) {
                cx.err(
                    span,
                    key(k),
                    "the fleet derived from the profile's `instances` is blessed `t1`, no canaries, batches of 1: to choose, give the environment `instances = N`",
                );
            }
            let most = counts.values().map(|(n, _)| *n).max().unwrap_or(1);
            Fleet::instances(u32::try_from(most).unwrap_or(1))
        }
        (None, None) => {
            if let Some((_, span)) = counts.values().next() {
                cx.err(
                    span.clone(),
                    key("profile.instances"),
                    "per-component instances need a fleet: the command driver deploys to `targets = [...]`; give the environment its targets",
                );
            }
            for (span, k) in stray(re) {
                cx.err(
                    span,
                    key(k),
                    "applies to a fleet: give the environment `targets = [...]` or `instances = N`",
                );
            }
            return None;
        }
        (Some(t), None) => {
            if driver != DriverKind::Command {
                cx.err(
                    t.span(),
                    key("targets"),
                    "targets are for the `command` driver (its deploy commands get `GREENROOM_TARGET`); the process driver runs `instances = N` copies",
                );
            }
            let mut out: Vec<Target> = Vec::new();
            for rt in t.get_ref() {
                let (name, address) = match rt.get_ref() {
                    RawTarget::Name(n) => (n.clone(), n.clone()),
                    RawTarget::Full { name, address } => {
                        (name.clone(), address.clone().unwrap_or_else(|| name.clone()))
                    }
                };
                if !valid_target_name(&name) {
                    cx.err(
                        rt.span(),
                        key("targets"),
                        format!("`{name}` is not a target name (letters, digits, `-`, `_` and `.`, starting with a letter or digit)"),
                    );
                } else if address.trim().is_empty() {
                    cx.err(
                        rt.span(),
                        key("targets"),
                        format!("target `{name}` has an empty address"),
                    );
                } else if out.iter().any(|o| o.name == name) {
                    cx.err(rt.span(), key("targets"), format!("target `{name}` is listed twice"));
                } else {
                    out.push(Target { name, address });
                }
            }
            if t.get_ref().is_empty() {
                cx.err(t.span(), key("targets"), "is empty: list at least one target");
            } else if t.get_ref().len() > MAX_TARGETS {
                cx.err(t.span(), key("targets"), format!("at most {MAX_TARGETS} targets"));
            }
            out
        }
        (None, Some(n)) => {
            if driver != DriverKind::Process {
                cx.err(
                    n.span(),
                    key("instances"),
                    "instances are copies run by the `process` driver; the command driver deploys to `targets = [...]`",
                );
            }
            match u32::try_from(*n.get_ref()) {
                Ok(v) if (1..=MAX_TARGETS as u32).contains(&v) => Fleet::instances(v),
                _ => {
                    cx.err(
                        n.span(),
                        key("instances"),
                        format!("must be between 1 and {MAX_TARGETS}, not {}", n.get_ref()),
                    );
                    Vec::new()
                }
            }
        }
    };
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    let known = || {
        let shown: Vec<&str> = names.iter().take(8).copied().collect();
        format!(
            "{}{}",
            shown.join(", "),
            if names.len() > shown.len() { ", …" } else { "" }
        )
    };
    let blessed = match &re.blessed {
        Some(b) if !names.is_empty() && !names.contains(&b.get_ref().as_str()) => {
            cx.err(
                b.span(),
                key("blessed"),
                format!("`{}` is not a target of this environment ({})", b.get_ref(), known()),
            );
            String::new()
        }
        Some(b) => b.get_ref().clone(),
        None => names.first().map(|n| n.to_string()).unwrap_or_default(),
    };
    let mut canary: Vec<String> = Vec::new();
    if let Some(list) = &re.canary {
        for c in list.get_ref() {
            let n = c.get_ref();
            if !names.is_empty() && !names.contains(&n.as_str()) {
                cx.err(
                    c.span(),
                    key("canary"),
                    format!("`{n}` is not a target of this environment ({})", known()),
                );
            } else if *n == blessed {
                cx.err(
                    c.span(),
                    key("canary"),
                    format!("`{n}` is the blessed target, which is deployed first anyway"),
                );
            } else if canary.contains(n) {
                cx.err(c.span(), key("canary"), format!("`{n}` is listed twice"));
            } else {
                canary.push(n.clone());
            }
        }
    }
    let batch = match &re.batch {
        None => Batch::Count(1),
        Some(b) => {
            let parsed = match b.get_ref() {
                RawBatch::Count(n) => u32::try_from(*n).ok().filter(|n| *n >= 1).map(Batch::Count),
                RawBatch::Text(s) => s
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<u32>().ok())
                    .filter(|p| (1..=100).contains(p))
                    .map(Batch::Percent),
            };
            match parsed {
                Some(b) => b,
                None => {
                    cx.err(
                        b.span(),
                        key("batch"),
                        "must be a number of targets (at least 1) or a percentage of the fleet between 1% and 100% (`\"25%\"`)",
                    );
                    Batch::Count(1)
                }
            }
        }
    };
    if !targets.is_empty() {
        let fleet_keys = if re.targets.is_some() {
            "`targets`"
        } else {
            "`instances`"
        };
        for (c, (n, span)) in &counts {
            if *n > targets.len() {
                cx.err(
                    span.clone(),
                    key("profile.instances"),
                    format!(
                        "`{c}` runs on {n} targets, but the fleet has {} ({fleet_keys})",
                        targets.len()
                    ),
                );
            }
        }
    }
    (cx.errors.len() == before && !targets.is_empty()).then_some(Fleet {
        targets,
        blessed,
        canary,
        batch,
        counts: counts.into_iter().map(|(c, (n, _))| (c, n)).collect(),
    })
}

/// A profile's `instances` table, checked on its own: each key a component
/// of the environment, each count 1..=[`MAX_TARGETS`]. The valid ones,
/// with their spans (for the check against the fleet's size).
fn valid_counts(
    cx: &mut Ctx<'_>,
    env: &str,
    raw: &BTreeMap<String, toml::Spanned<i64>>,
    members: &[String],
) -> BTreeMap<String, (usize, std::ops::Range<usize>)> {
    let key = format!("environment[{env}].profile.instances");
    let mut out = BTreeMap::new();
    for (c, n) in raw {
        if !members.contains(c) {
            cx.err(n.span(), key.clone(), format!("`{c}` is not a component of {env}"));
            continue;
        }
        match usize::try_from(*n.get_ref()) {
            Ok(v) if (1..=MAX_TARGETS).contains(&v) => {
                out.insert(c.clone(), (v, n.span()));
            }
            _ => cx.err(
                n.span(),
                key.clone(),
                format!("`{c}`: a count between 1 and {MAX_TARGETS}, not {}", n.get_ref()),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, parse};
    use crate::fleet::{Batch, Target, plan};
    use std::path::Path;

    const BASE: &str = "[[component]]\nname = \"api\"\nrepo = \"r\"\nrun = \"x\"\ndeploy = \"d\"\nstop = \"s\"\n\n[[environment]]\nname = \"staging\"\n";

    fn with(keys: &str) -> Result<Config, String> {
        parse(&format!("{BASE}{keys}"), Path::new("greenroom.toml"), Path::new("/")).map_err(|e| e.to_string())
    }

    #[test]
    fn no_fleet_by_default() {
        assert_eq!(with("").expect("valid").environments[0].fleet, None);
    }

    #[test]
    fn instances_for_the_process_driver() {
        let c = with("instances = 4\ncanary = [\"t2\"]\nbatch = 2\n").expect("valid");
        let f = c.environments[0].fleet.clone().expect("a fleet");
        assert_eq!(f.targets.len(), 4);
        assert_eq!(f.targets[3].address, "127.0.0.1");
        assert_eq!((f.blessed.as_str(), f.batch), ("t1", Batch::Count(2)));
        assert_eq!(plan(&f).len(), 3);
    }

    #[test]
    fn targets_for_the_command_driver_with_addresses_and_percent_batches() {
        let c = with(
            "driver = \"command\"\ntargets = [\"web-1\", { name = \"web-2\", address = \"10.0.0.2\" }, \"web-3.example.com\"]\nblessed = \"web-2\"\ncanary = [\"web-1\"]\nbatch = \"25%\"\n",
        )
        .expect("valid");
        let f = c.environments[0].fleet.clone().expect("a fleet");
        assert_eq!(
            f.targets[1],
            Target {
                name: "web-2".into(),
                address: "10.0.0.2".into()
            }
        );
        assert_eq!(f.targets[0].address, "web-1");
        assert_eq!(f.blessed, "web-2");
        assert_eq!(f.canary, ["web-1"]);
        assert_eq!(f.batch, Batch::Percent(25));
    }

    #[test]
    fn mistakes_are_located_and_explained() {
        for (keys, want) in [
            ("instances = 2\ntargets = [\"a\"]\n", "not both"),
            ("targets = [\"a\"]\n", "targets are for the `command` driver"),
            (
                "driver = \"command\"\ninstances = 2\n",
                "the command driver deploys to `targets",
            ),
            ("instances = 0\n", "between 1 and 1000, not 0"),
            ("driver = \"command\"\ntargets = []\n", "is empty"),
            (
                "driver = \"command\"\ntargets = [\"a\", \"a\"]\n",
                "`a` is listed twice",
            ),
            ("driver = \"command\"\ntargets = [\"a b\"]\n", "not a target name"),
            ("driver = \"command\"\ntargets = [\"a#b\"]\n", "not a target name"),
            (
                "instances = 3\nblessed = \"t9\"\n",
                "`t9` is not a target of this environment (t1, t2, t3)",
            ),
            ("instances = 3\ncanary = [\"t1\"]\n", "is the blessed target"),
            ("instances = 3\ncanary = [\"t2\", \"t2\"]\n", "`t2` is listed twice"),
            ("instances = 3\nbatch = 0\n", "at least 1"),
            ("instances = 3\nbatch = \"150%\"\n", "between 1% and 100%"),
            ("instances = 3\nbatch = \"half\"\n", "environment[staging].batch"),
            ("canary = [\"x\"]\n", "applies to a fleet"),
            ("batch = 2\n", "applies to a fleet"),
        ] {
            let e = with(keys).expect_err(keys);
            assert!(e.contains(want), "{keys}\n-> {e}");
            assert!(e.contains("greenroom.toml:"), "located: {e}");
        }
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let e = with("instances = 3\nbatch = \"150%\"\n").expect_err("bad batch");
        let line = BASE.lines().count() + 2;
        assert!(e.contains(&format!("greenroom.toml:{line}:")), "{e}");
        assert!(e.contains("environment[staging].batch"), "{e}");
    }

    const TWO: &str = "[[component]]\nname = \"api\"\nrepo = \"r\"\nrun = \"x\"\ndeploy = \"d\"\nstop = \"s\"\n\n\
                       [[component]]\nname = \"db\"\nrepo = \"r2\"\nrun = \"x\"\ndeploy = \"d\"\nstop = \"s\"\n\n\
                       [[component]]\nname = \"web\"\nrepo = \"r3\"\nrun = \"x\"\ndeploy = \"d\"\nstop = \"s\"\n\n\
                       [[environment]]\nname = \"1k\"\nslots = 2\n";

    fn profile(env_keys: &str, instances: &str) -> Result<Config, String> {
        let text = format!("{TWO}{env_keys}[environment.profile]\ninstances = {instances}\n");
        parse(&text, Path::new("greenroom.toml"), Path::new("/")).map_err(|e| e.to_string())
    }

    #[test]
    fn profile_instances_derive_a_process_fleet() {
        let c = profile("", "{ api = 3, db = 1 }").expect("valid");
        let f = c.environments[0].fleet.clone().expect("a derived fleet");
        let names: Vec<&str> = f.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["t1", "t2", "t3"], "instances = the largest count");
        assert_eq!(
            (f.blessed.as_str(), f.batch, f.canary.len()),
            ("t1", Batch::Count(1), 0)
        );
        assert_eq!(f.counts.get("api"), Some(&3));
        assert_eq!(f.targets_of("db"), ["t1"]);
        assert_eq!(f.targets_of("web"), ["t1", "t2", "t3"], "not listed: every target");
        // The same as writing `instances = 3` (plus the counts).
        let written = profile("instances = 3\n", "{ api = 3, db = 1 }").expect("valid");
        assert_eq!(written.environments[0].fleet, Some(f));
        // No counts, no fleet.
        let none = profile("", "{}").expect("valid");
        assert_eq!(none.environments[0].fleet, None);
    }

    #[test]
    fn profile_instances_within_an_explicit_fleet() {
        let c = profile(
            "driver = \"command\"\ntargets = [\"a\", \"b\", \"c\"]\nblessed = \"b\"\n",
            "{ db = 1, api = 2 }",
        )
        .expect("valid");
        let f = c.environments[0].fleet.clone().expect("a fleet");
        assert_eq!(f.targets_of("db"), ["b"], "the blessed target runs every component");
        assert_eq!(f.targets_of("api"), ["b", "a"]);
        assert!(!f.runs_on("api", "c") && f.runs_on("web", "c"));
    }

    #[test]
    fn profile_instances_mistakes_are_located() {
        for (env_keys, instances, want) in [
            ("", "{ nope = 1 }", "`nope` is not a component of 1k"),
            ("", "{ api = 0 }", "`api`: a count between 1 and 1000, not 0"),
            ("", "{ api = 1001 }", "not 1001"),
            (
                "instances = 2\n",
                "{ api = 3 }",
                "`api` runs on 3 targets, but the fleet has 2 (`instances`)",
            ),
            (
                "driver = \"command\"\ntargets = [\"a\"]\n",
                "{ api = 2 }",
                "but the fleet has 1 (`targets`)",
            ),
            (
                "driver = \"command\"\n",
                "{ api = 2 }",
                "per-component instances need a fleet",
            ),
            ("canary = [\"t2\"]\n", "{ api = 2 }", "derived from the profile"),
        ] {
            let e = profile(env_keys, instances).expect_err(instances);
            assert!(e.contains(want), "{env_keys}{instances}\n-> {e}");
            assert!(e.contains("greenroom.toml:"), "located: {e}");
            if !want.contains("derived") {
                assert!(e.contains("environment[1k].profile.instances"), "keyed: {e}");
            }
        }
        let e = profile("instances = 2\n", "{ api = 3 }").expect_err("too many");
        let line = TWO.lines().count() + 3;
        assert!(e.contains(&format!("greenroom.toml:{line}:")), "{e}");
    }
}
