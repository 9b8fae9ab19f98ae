//! An environment's fleet (issue #5 point 2; `crate::fleet`): `targets =
//! ["web-1", { name = "web-2", address = "10.0.0.2" }]` for the `command`
//! driver, or `instances = N` for the `process` driver (N copies on
//! loopback ports, targets `t1`..`tN`); `blessed` (default: the first
//! target), `canary` (target names), `batch` (a count, or `"25%"` of the
//! fleet). Without `targets` and `instances` an environment is one place,
//! as before, and the other keys are refused.

use super::{Ctx, DriverKind, RawEnvironment};
use crate::fleet::{Batch, Fleet, Target};
use serde::Deserialize;

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

fn valid_target_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.len() <= 253
}

/// Validates the fleet keys of an environment; `None` when it has no fleet
/// or when there were errors (they are in `cx`).
pub(super) fn validate(cx: &mut Ctx<'_>, env: &str, driver: DriverKind, re: &RawEnvironment) -> Option<Fleet> {
    let before = cx.errors.len();
    let key = |k: &str| format!("environment[{env}].{k}");
    let targets: Vec<Target> = match (&re.targets, &re.instances) {
        (Some(t), Some(_)) => {
            cx.err(
                t.span(),
                key("targets"),
                "give either `targets` (command driver) or `instances` (process driver), not both",
            );
            return None;
        }
        (None, None) => {
            let stray = [
                re.blessed.as_ref().map(|b| (b.span(), "blessed")),
                re.canary.as_ref().map(|c| (c.span(), "canary")),
                re.batch.as_ref().map(|b| (b.span(), "batch")),
            ];
            for (span, k) in stray.into_iter().flatten() {
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
    (cx.errors.len() == before && !targets.is_empty()).then_some(Fleet {
        targets,
        blessed,
        canary,
        batch,
    })
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
}
