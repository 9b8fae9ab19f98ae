//! `[[notify]]`: where greenroom posts what happened (issue #6 points 6-7).
//!
//! A target is a Slack incoming webhook (`kind = "slack"`) or a generic
//! JSON webhook signed with HMAC-SHA256 (`kind = "webhook"`), filtered by
//! environment, event and tier. Its `url` is a secret: an incoming-webhook
//! URL carries its token in the path, so it is best named by reference
//! (`env:NAME`, `file:PATH`); a literal URL is accepted but held as
//! [`LiteralUrl`], whose `Debug` hides it, and never echoed in an error.

use super::{Ctx, Environment, Tier, secret_ref, valid_name};
use crate::notify::EventKind;
use crate::secret::SecretRef;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use toml::Spanned;

/// Default time before a lease's expiry its holder is warned.
pub const DEFAULT_LEASE_WARNING: Duration = Duration::from_secs(15 * 60);
/// Default number of messages per minute a target gets at most.
pub const DEFAULT_RATE_LIMIT: u32 = 20;

/// What a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    /// A Slack incoming webhook: Block Kit messages.
    Slack,
    /// A generic JSON webhook with an `X-Greenroom-Signature`.
    Webhook,
}

impl NotifyKind {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Slack => "slack",
            NotifyKind::Webhook => "webhook",
        }
    }
}

/// A URL written in the file. It usually carries a token (Slack's
/// `/services/T…/B…/XXXX`): `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct LiteralUrl(String);

impl LiteralUrl {
    /// The URL itself, for the one place that sends to it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LiteralUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LiteralUrl(<redacted>)")
    }
}

/// Where a target's URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyUrl {
    /// `env:NAME` or `file:PATH` (recommended).
    Secret(SecretRef),
    /// Written in the file; treated as a secret all the same.
    Literal(LiteralUrl),
}

impl fmt::Display for NotifyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyUrl::Secret(r) => write!(f, "{r}"),
            NotifyUrl::Literal(_) => f.write_str("<url written in the config>"),
        }
    }
}

/// `[[notify]]`: one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// Unique name; logs name the target by it, never by its URL.
    pub name: String,
    /// Slack or generic webhook.
    pub kind: NotifyKind,
    /// Where to post.
    pub url: NotifyUrl,
    /// The HMAC-SHA256 key of a `webhook` target.
    pub secret: Option<SecretRef>,
    /// `[[environment]]` names it hears about (empty: all).
    pub environments: Vec<String>,
    /// Events it hears about.
    pub events: Vec<EventKind>,
    /// Suite tiers it hears about, for events about a suite (empty: all).
    pub tiers: Vec<Tier>,
    /// How long before a lease expires its holder is warned.
    pub lease_warning: Duration,
    /// Messages per minute at most; the excess is dropped and counted in the next one.
    pub rate_limit: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    name: Spanned<String>,
    kind: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    secret: Option<Spanned<String>>,
    #[serde(default)]
    environments: Vec<Spanned<String>>,
    events: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    tiers: Vec<Spanned<String>>,
    lease_warning: Option<Spanned<String>>,
    rate_limit: Option<Spanned<i64>>,
}

fn tier(s: &str) -> Option<Tier> {
    Some(match s {
        "blocking" => Tier::Blocking,
        "gate" => Tier::Gate,
        "non-blocking" => Tier::NonBlocking,
        "quarantine" => Tier::Quarantine,
        _ => return None,
    })
}

/// Validates the `[[notify]]` entries.
pub(super) fn validate(cx: &mut Ctx<'_>, raw: &[Spanned<RawNotify>], environments: &[Environment]) -> Vec<Notify> {
    let mut out: Vec<Notify> = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for rn in raw {
        let rn = rn.get_ref();
        let name = rn.name.get_ref().clone();
        let key = |k: &str| format!("notify[{name}].{k}");
        if !valid_name(&name) {
            cx.err(
                rn.name.span(),
                "notify.name",
                format!("`{name}` is not a valid name: use lowercase letters, digits, `-` and `_`"),
            );
        } else if !names.insert(name.clone()) {
            cx.err(
                rn.name.span(),
                "notify.name",
                format!("notify target `{name}` is defined twice"),
            );
        }
        let kind = match rn.kind.as_ref().map(|k| (k, k.get_ref().as_str())) {
            Some((_, "slack")) => NotifyKind::Slack,
            Some((_, "webhook")) => NotifyKind::Webhook,
            Some((k, other)) => {
                cx.err(
                    k.span(),
                    key("kind"),
                    format!("unknown kind `{other}` (expected `slack` or `webhook`)"),
                );
                NotifyKind::Slack
            }
            None => {
                cx.err(
                    rn.name.span(),
                    key("kind"),
                    "a notify target needs `kind` (`slack` or `webhook`)",
                );
                NotifyKind::Slack
            }
        };
        let url = match &rn.url {
            None => {
                cx.err(
                    rn.name.span(),
                    key("url"),
                    "a notify target needs `url` (best as \"env:NAME\" or \"file:PATH\": it is a secret)",
                );
                None
            }
            Some(u) => url(cx, u, &key("url")),
        };
        let secret = match (&rn.secret, kind) {
            (Some(s), NotifyKind::Webhook) => secret_ref(cx, s, &key("secret")),
            (Some(s), NotifyKind::Slack) => {
                cx.err(
                    s.span(),
                    key("secret"),
                    "only `webhook` targets are signed; a Slack URL is its own secret",
                );
                None
            }
            (None, _) => None,
        };
        for e in &rn.environments {
            if !environments.iter().any(|x| &x.name == e.get_ref()) {
                cx.err(
                    e.span(),
                    key("environments"),
                    format!("unknown environment `{}`", e.get_ref()),
                );
            }
        }
        let events = match &rn.events {
            None => EventKind::DEFAULT.to_vec(),
            Some(list) => {
                let mut events = Vec::new();
                for e in list {
                    match EventKind::parse(e.get_ref()) {
                        Some(k) if !events.contains(&k) => events.push(k),
                        Some(_) => {}
                        None => cx.err(
                            e.span(),
                            key("events"),
                            format!(
                                "unknown event `{}` (expected one of: {})",
                                e.get_ref(),
                                EventKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        ),
                    }
                }
                events
            }
        };
        let mut tiers = Vec::new();
        for t in &rn.tiers {
            match tier(t.get_ref()) {
                Some(x) => tiers.push(x),
                None => cx.err(
                    t.span(),
                    key("tiers"),
                    format!(
                        "unknown tier `{}` (expected `blocking`, `gate`, `non-blocking` or `quarantine`)",
                        t.get_ref()
                    ),
                ),
            }
        }
        let lease_warning = cx.duration(&rn.lease_warning, key("lease_warning"), DEFAULT_LEASE_WARNING);
        let rate_limit = match &rn.rate_limit {
            None => DEFAULT_RATE_LIMIT,
            Some(r) => match u32::try_from(*r.get_ref()) {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    cx.err(
                        r.span(),
                        key("rate_limit"),
                        format!("must be between 1 and 1000 (messages per minute), not {}", r.get_ref()),
                    );
                    DEFAULT_RATE_LIMIT
                }
            },
        };
        if let Some(url) = url {
            out.push(Notify {
                name: name.clone(),
                kind,
                url,
                secret,
                environments: rn.environments.iter().map(|e| e.get_ref().clone()).collect(),
                events,
                tiers,
                lease_warning,
                rate_limit,
            });
        }
    }
    out
}

/// A secret reference, or a literal `http(s)://` URL kept as a secret. No
/// message quotes the value.
fn url(cx: &mut Ctx<'_>, u: &Spanned<String>, key: &str) -> Option<NotifyUrl> {
    let v = u.get_ref();
    if SecretRef::parse(v).is_some() {
        return secret_ref(cx, u, key).map(NotifyUrl::Secret);
    }
    if (v.starts_with("https://") || v.starts_with("http://")) && !v.contains(char::is_whitespace) {
        return Some(NotifyUrl::Literal(LiteralUrl(v.clone())));
    }
    cx.err(
        u.span(),
        key,
        "must be \"env:NAME\", \"file:PATH\" or an http(s):// URL (the URL is a secret: prefer a reference)",
    );
    if let Some(e) = cx.errors.last_mut()
        && !v.is_empty()
    {
        e.source_line = e.source_line.replace(v.as_str(), "<redacted>");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigErrors, parse};
    use super::*;
    use std::path::Path;

    const BASE: &str = r#"
[[component]]
name = "a"
repo = "r"
run = "x"

[[environment]]
name = "staging"
"#;

    fn try_parse(extra: &str) -> Result<Config, ConfigErrors> {
        parse(
            &format!("{BASE}{extra}"),
            Path::new("greenroom.toml"),
            Path::new("/cfg"),
        )
    }

    #[test]
    fn targets_load_with_defaults() {
        let c = try_parse(
            r#"
[[notify]]
name = "team"
kind = "slack"
url = "env:SLACK_URL"

[[notify]]
name = "audit"
kind = "webhook"
url = "https://hooks.example.com/T000/B000/s3cr3t-token"
secret = "file:hook.key"
environments = ["staging"]
events = ["cycle-finished", "cycle-failed"]
tiers = ["blocking", "gate"]
lease_warning = "5m"
rate_limit = 3
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.notify.len(), 2);
        let team = &c.notify[0];
        assert_eq!(team.kind, NotifyKind::Slack);
        assert_eq!(team.url, NotifyUrl::Secret(SecretRef::Env("SLACK_URL".into())));
        assert_eq!(team.events, EventKind::DEFAULT.to_vec());
        assert_eq!(
            (team.lease_warning, team.rate_limit),
            (DEFAULT_LEASE_WARNING, DEFAULT_RATE_LIMIT)
        );
        let audit = &c.notify[1];
        assert_eq!(audit.secret, Some(SecretRef::File("/cfg/hook.key".into())));
        assert_eq!(audit.events, vec![EventKind::CycleFinished, EventKind::CycleFailed]);
        assert_eq!(audit.tiers, vec![Tier::Blocking, Tier::Gate]);
        assert_eq!((audit.lease_warning, audit.rate_limit), (Duration::from_secs(300), 3));
        // The literal URL is held, but never shown.
        let shown = format!("{c:?} {}", audit.url);
        assert!(!shown.contains("s3cr3t-token"), "{shown}");
        match &audit.url {
            NotifyUrl::Literal(u) => assert!(u.expose().ends_with("s3cr3t-token")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn problems_are_located_and_urls_never_echoed() {
        let e = try_parse(
            r#"
[[notify]]
name = "team"
kind = "teams"
url = "hooks.slack.com/services/T000/B000/s3cr3t-token"

[[notify]]
name = "team"
kind = "slack"
url = "env:"
secret = "env:KEY"
environments = ["prod"]
events = ["cycle-failed", "deploy-started"]
tiers = ["must-pass"]
lease_warning = "soon"
rate_limit = 0

[[notify]]
name = "hook"
kind = "webhook"
secret = "hunter2-literal"
"#,
        )
        .map(|_| ())
        .expect_err("invalid");
        let text = e.to_string();
        assert!(
            !text.contains("s3cr3t-token") && !text.contains("hunter2-literal"),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }
}
