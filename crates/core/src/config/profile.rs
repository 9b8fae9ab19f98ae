//! `[environment.profile]`: a pool of slots as a profile (issue #5 point 3;
//! seed 000's reference architectures): `greenroom env create NAME
//! --profile P` makes an ephemeral environment of one of its slots, with
//! the profile's component versions, torn down when its time ends; with
//! `preview = true` a PR gets one of its own (`greenroom deploy --preview
//! REPO#N`), torn down when the PR closes.
//!
//! `instances = { api = 3, db = 1 }` says how many copies of a component
//! run (the reference architecture's shape): it is validated with the
//! fleet (`config/fleet.rs`) and kept there (`Fleet::counts`), since the
//! copies are the fleet's targets. Components not listed run on every
//! target; without `instances = N`/`targets` on the environment the
//! process driver gets `instances = ` the largest count.

use super::Ctx;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

/// Default life of an ephemeral environment.
pub const DEFAULT_PROFILE_TTL: Duration = Duration::from_secs(8 * 3600);

/// A profile: what its environments run, and for how long. Its
/// per-component `instances` are on the environment's fleet
/// (`Environment::fleet`, `Fleet::counts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Component -> the ref it deploys (`COMPONENT=REF` grammar), overriding
    /// the base channel (`versions = { ogr = "tag:v1.2.0" }`).
    pub versions: Vec<String>,
    /// How long an environment of it lives (renewed by activity).
    pub ttl: Duration,
    /// PRs may get an environment of it (`deploy --preview REPO#N`).
    pub preview: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    #[serde(default)]
    versions: BTreeMap<String, Spanned<String>>,
    ttl: Option<Spanned<String>>,
    #[serde(default)]
    preview: bool,
    /// Component -> how many targets run it (checked in `config/fleet.rs`).
    #[serde(default)]
    pub(super) instances: BTreeMap<String, Spanned<i64>>,
}

/// Validates a profile of environment `env` (a pool: `slots` must be set).
pub(super) fn validate(
    cx: &mut Ctx<'_>,
    env: &str,
    raw: &Spanned<RawProfile>,
    is_pool: bool,
    members: &[String],
) -> Option<Profile> {
    let key = |k: &str| format!("environment[{env}].profile.{k}");
    let before = cx.errors.len();
    if !is_pool {
        cx.err(
            raw.span(),
            key("slots"),
            "a profile is a pool: give the environment `slots = N` (at most N of its environments at once)",
        );
    }
    let r = raw.get_ref();
    let mut versions = Vec::new();
    for (c, v) in &r.versions {
        if !members.contains(c) {
            cx.err(v.span(), key("versions"), format!("`{c}` is not a component of {env}"));
            continue;
        }
        let o = format!("{c}={}", v.get_ref());
        match crate::compose::parse_override(&o) {
            Ok(_) => versions.push(o),
            Err(e) => cx.err(v.span(), key("versions"), e.to_string()),
        }
    }
    let ttl = cx.duration(&r.ttl, key("ttl"), DEFAULT_PROFILE_TTL);
    (cx.errors.len() == before).then_some(Profile {
        versions,
        ttl,
        preview: r.preview,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;
    use std::time::Duration;

    const BASE: &str = "[[component]]\nname = \"api\"\nrepo = \"r\"\nrun = \"x\"\n[[component]]\nname = \"db\"\nrepo = \"r2\"\nrun = \"x\"\n\n";

    fn with(env: &str) -> Result<crate::config::Config, String> {
        parse(&format!("{BASE}{env}"), Path::new("greenroom.toml"), Path::new("/")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_profile_is_a_pool_with_versions() {
        let c = with(
            "[[environment]]\nname = \"1k\"\nslots = 3\n[environment.profile]\nttl = \"2h\"\npreview = true\nversions = { db = \"tag:v1.*\" }\n",
        )
        .expect("valid");
        let p = c.environments[0].profile.clone().expect("a profile");
        assert_eq!(p.versions, ["db=tag:v1.*"]);
        assert_eq!(p.ttl, Duration::from_secs(7200));
        assert!(p.preview);
        let plain = with("[[environment]]\nname = \"1k\"\nslots = 3\n[environment.profile]\n").expect("valid");
        assert_eq!(
            plain.environments[0].profile.as_ref().map(|p| p.ttl),
            Some(Duration::from_secs(8 * 3600))
        );
    }

    #[test]
    fn mistakes_are_located() {
        for (env, want) in [
            (
                "[[environment]]\nname = \"1k\"\n[environment.profile]\n",
                "a profile is a pool",
            ),
            (
                "[[environment]]\nname = \"1k\"\nslots = 2\n[environment.profile]\nversions = { web = \"1\" }\n",
                "`web` is not a component",
            ),
            (
                "[[environment]]\nname = \"1k\"\nslots = 2\n[environment.profile]\nversions = { db = \"tag:\" }\n",
                "environment[1k].profile.versions",
            ),
            (
                "[[environment]]\nname = \"1k\"\nslots = 2\n[environment.profile]\nttl = \"forever\"\n",
                "environment[1k].profile.ttl",
            ),
            (
                "[[environment]]\nname = \"1k\"\nslots = 2\n[environment.profile]\ncolour = 1\n",
                "unknown field `colour`",
            ),
        ] {
            let e = with(env).expect_err(env);
            assert!(e.contains(want) && e.contains("greenroom.toml:"), "{env}\n-> {e}");
        }
    }
}
