//! `feed = { kind, url, poll }` on `[[component]]` (issue #5 point 5: the
//! component follows published versions, `crate::feed`) and `promote_to` /
//! `promote_after` on `[[environment]]` (point 8: a verified manifest moves
//! on to the next environment by itself, after a soak).

use super::{Ctx, Environment};
use crate::feed::FeedKind;
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// Default time between two polls of a feed (seed 003: hourly).
pub const DEFAULT_FEED_POLL: Duration = Duration::from_secs(3600);

/// Where a component's published versions are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// What the URL answers.
    pub kind: FeedKind,
    /// `http://` or `https://` URL polled.
    pub url: String,
    /// Time between polls.
    pub poll: Duration,
    /// The package a `debian-packages` index is searched for (default: the
    /// component's name).
    pub package: String,
    /// Whether pre-releases (`1.0.0-rc.1`, GitHub's flag) are deployed.
    pub prereleases: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeed {
    kind: Spanned<String>,
    url: Spanned<String>,
    poll: Option<Spanned<String>>,
    package: Option<Spanned<String>>,
    #[serde(default)]
    prereleases: bool,
}

/// Validates a component's `feed`.
pub(super) fn validate(cx: &mut Ctx<'_>, component: &str, raw: &Spanned<RawFeed>) -> Option<Feed> {
    let before = cx.errors.len();
    let key = |k: &str| format!("component[{component}].feed.{k}");
    let r = raw.get_ref();
    let kind = FeedKind::parse(r.kind.get_ref());
    if kind.is_none() {
        cx.err(
            r.kind.span(),
            key("kind"),
            format!(
                "unknown feed kind `{}` (expected {})",
                r.kind.get_ref(),
                FeedKind::ALL.map(|k| format!("`{k}`")).join(", ")
            ),
        );
    }
    let url = r.url.get_ref().trim().to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains(char::is_whitespace) {
        cx.err(
            r.url.span(),
            key("url"),
            format!("`{url}` is not an http:// or https:// URL"),
        );
    }
    let poll = cx.duration(&r.poll, key("poll"), DEFAULT_FEED_POLL);
    let package = match &r.package {
        Some(p) => {
            let v = p.get_ref().trim();
            if v.is_empty() || v.contains(char::is_whitespace) {
                cx.err(p.span(), key("package"), format!("`{v}` is not a package name"));
            } else if kind != Some(FeedKind::DebianPackages) {
                cx.err(
                    p.span(),
                    key("package"),
                    "only for `kind = \"debian-packages\"` (the other kinds list one artifact's versions)",
                );
            }
            v.to_string()
        }
        None => component.to_string(),
    };
    if cx.errors.len() > before {
        return None;
    }
    Some(Feed {
        kind: kind?,
        url,
        poll,
        package,
        prereleases: r.prereleases,
    })
}

/// `promote_to` and `promote_after` of one `[[environment]]`, as written.
pub(super) struct RawPromotion<'a> {
    pub(super) environment: &'a str,
    pub(super) to: Option<&'a Spanned<String>>,
    pub(super) after: &'a Option<Spanned<String>>,
}

/// Checks every environment's `promote_to` (an other, plain environment)
/// and `promote_after` (a soak: zero by default), and sets them.
pub(super) fn validate_promotions(cx: &mut Ctx<'_>, raw: &[RawPromotion<'_>], environments: &mut [Environment]) {
    for r in raw {
        let key = |k: &str| format!("environment[{}].{k}", r.environment);
        let after = match r.after {
            Some(s) if humantime::parse_duration(s.get_ref()).is_ok_and(|d| d.is_zero()) => Duration::ZERO,
            other => cx.duration(other, key("promote_after"), Duration::ZERO),
        };
        if r.to.is_none()
            && let Some(a) = r.after
        {
            cx.err(
                a.span(),
                key("promote_after"),
                "a soak before promoting needs `promote_to`",
            );
        }
        let Some(to) = r.to else { continue };
        let target = to.get_ref();
        let problem = if target == r.environment {
            Some("an environment cannot promote to itself".to_string())
        } else {
            match environments.iter().find(|e| &e.name == target) {
                None => Some(format!(
                    "unknown environment `{target}` (known: {})",
                    environments
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Some(e) if e.slots.is_some() => {
                    Some(format!("`{target}` is a pool of slots: promote to a plain environment"))
                }
                Some(_) => None,
            }
        };
        if let Some(p) = problem {
            cx.err(to.span(), key("promote_to"), p);
            continue;
        }
        if let Some(e) = environments.iter_mut().find(|e| e.name == r.environment) {
            e.promote_to = Some(target.clone());
            e.promote_after = after;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, parse};
    use std::path::Path;
    use std::time::Duration;

    fn parsed(text: &str) -> Result<Config, String> {
        parse(text, Path::new("greenroom.toml"), Path::new("/cfg")).map_err(|e| e.to_string())
    }

    const ENVS: &str = "\n[[environment]]\nname = \"canary\"\ndriver = \"command\"\npromote_to = \"main\"\npromote_after = \"10m\"\n\
                        \n[[environment]]\nname = \"main\"\ndriver = \"command\"\nfollows = \"manual\"\n";

    #[test]
    fn feeds_and_promotions_are_read() {
        let text = format!(
            "state_dir = \"s\"\n\n[[component]]\nname = \"gitlab-ee\"\n\
             feed = {{ kind = \"debian-packages\", url = \"https://packages.example/dists/stable/main/binary-amd64/Packages\", poll = \"1h\" }}\n\
             deploy = \"apt-get install -y \\\"$GREENROOM_IMAGE\\\"\"\nstop = \"true\"\n\n[[component]]\nname = \"api\"\nimage = \"registry.example/api\"\n\
             feed = {{ kind = \"oci-tags\", url = \"https://registry.example/v2/api/tags/list\", prereleases = true }}\ndeploy = \"run-it\"\nstop = \"true\"\n{ENVS}"
        );
        let c = parsed(&text).unwrap_or_else(|e| panic!("{e}"));
        let f = c
            .component("gitlab-ee")
            .and_then(|c| c.feed.clone())
            .unwrap_or_else(|| panic!("a feed"));
        assert_eq!(f.kind, crate::feed::FeedKind::DebianPackages);
        assert_eq!(f.package, "gitlab-ee", "the component's name by default");
        assert_eq!(f.poll, Duration::from_secs(3600));
        let api = c
            .component("api")
            .and_then(|c| c.feed.clone())
            .unwrap_or_else(|| panic!("a feed"));
        assert!(api.prereleases);
        assert_eq!(api.poll, super::DEFAULT_FEED_POLL);
        let canary = c.environment("canary").unwrap_or_else(|| panic!("canary"));
        assert_eq!(canary.promote_to.as_deref(), Some("main"));
        assert_eq!(canary.promote_after, Duration::from_secs(600));
        assert_eq!(c.environment("main").and_then(|e| e.promote_to.clone()), None);
    }

    #[test]
    fn bad_feeds_and_promotions_are_explained() {
        let text = "state_dir = \"s\"\n\n[[component]]\nname = \"api\"\n\
                    feed = { kind = \"rss\", url = \"ftp://x\", poll = \"often\", package = \"x\" }\nrun = \"serve\"\n\
                    \n[[environment]]\nname = \"canary\"\npromote_to = \"canary\"\n\
                    \n[[environment]]\nname = \"main\"\npromote_to = \"nowhere\"\n\
                    \n[[environment]]\nname = \"other\"\npromote_after = \"5m\"\n\
                    \n[[environment]]\nname = \"dev\"\nslots = 2\n\
                    \n[[environment]]\nname = \"x\"\npromote_to = \"dev\"\n";
        let e = parsed(text).err().unwrap_or_else(|| panic!("accepted"));
        for want in [
            "component[api].feed.kind: unknown feed kind `rss`",
            "component[api].feed.url: `ftp://x` is not an http:// or https:// URL",
            "component[api].feed.poll: `often` is not a duration",
            "component[api].feed.package: only for `kind = \"debian-packages\"`",
            "environment[canary].promote_to: an environment cannot promote to itself",
            "environment[main].promote_to: unknown environment `nowhere`",
            "environment[other].promote_after: a soak before promoting needs `promote_to`",
            "environment[x].promote_to: `dev` is a pool of slots",
        ] {
            assert!(e.contains(want), "missing `{want}` in:\n{e}");
        }
    }
}
