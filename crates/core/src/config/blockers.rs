//! `[[freeze]]` windows, `[alertmanager]` and an environment's
//! `block_on_alerts` (issue #5 point 6; the decisions are
//! `core::blockers`'s).

use super::Ctx;
use crate::blockers::{Cron, Matcher, Span, Window, WindowKind};
use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFreeze {
    name: Spanned<String>,
    kind: Option<Spanned<String>>,
    #[serde(default)]
    environments: Vec<Spanned<String>>,
    from: Option<Spanned<String>>,
    until: Option<Spanned<String>>,
    cron: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlertmanager {
    url: Spanned<String>,
}

fn time(cx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<crate::time::Millis> {
    match humantime::parse_rfc3339_weak(v.get_ref()) {
        Ok(t) => t
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_millis()).ok()),
        Err(e) => {
            cx.err(
                v.span(),
                key.to_string(),
                format!("`{}` is not a UTC time like 2026-12-20T00:00:00Z ({e})", v.get_ref()),
            );
            None
        }
    }
}

/// Validates `[[freeze]]` against the environment names.
pub(super) fn validate_freezes(cx: &mut Ctx<'_>, raw: &[Spanned<RawFreeze>], environments: &[String]) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    for rf in raw {
        let r = rf.get_ref();
        let name = r.name.get_ref().clone();
        let key = |k: &str| format!("freeze[{name}].{k}");
        if out.iter().any(|w| w.name == name) {
            cx.err(
                r.name.span(),
                key("name"),
                format!("two freeze windows are named `{name}`"),
            );
        }
        let kind = match r.kind.as_ref().map(|k| k.get_ref().as_str()) {
            None | Some("deny") => WindowKind::Deny,
            Some("allow") => WindowKind::Allow,
            Some(other) => {
                cx.err(
                    r.kind.as_ref().map(|k| k.span()).unwrap_or(rf.span()),
                    key("kind"),
                    format!("unknown kind `{other}` (expected `deny`, a freeze, or `allow`, deploy hours)"),
                );
                WindowKind::Deny
            }
        };
        for e in &r.environments {
            if !environments.contains(e.get_ref()) {
                cx.err(
                    e.span(),
                    key("environments"),
                    format!("unknown environment `{}`", e.get_ref()),
                );
            }
        }
        let span = match (&r.from, &r.until, &r.cron) {
            (Some(f), Some(u), None) => match (time(cx, f, &key("from")), time(cx, u, &key("until"))) {
                (Some(from), Some(until)) if from < until => Some(Span::Dates { from, until }),
                (Some(_), Some(_)) => {
                    cx.err(u.span(), key("until"), "must be after `from`");
                    None
                }
                _ => None,
            },
            (None, None, Some(c)) => match Cron::parse(c.get_ref()) {
                Ok(c) => Some(Span::Cron(c)),
                Err(e) => {
                    cx.err(c.span(), key("cron"), e);
                    None
                }
            },
            _ => {
                cx.err(
                    rf.span(),
                    key("from"),
                    "give either `from` and `until` (UTC times) or `cron` (minute hour day month weekday, UTC)",
                );
                None
            }
        };
        if let Some(span) = span {
            out.push(Window {
                name,
                kind,
                environments: r.environments.iter().map(|e| e.get_ref().clone()).collect(),
                span,
            });
        }
    }
    out
}

/// Validates `[alertmanager]`: its URL.
pub(super) fn validate_alertmanager(cx: &mut Ctx<'_>, raw: Option<&RawAlertmanager>) -> Option<String> {
    let r = raw?;
    let url = r.url.get_ref().trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        cx.err(
            r.url.span(),
            "alertmanager.url",
            format!("`{url}` is not an http(s) URL"),
        );
        return None;
    }
    Some(url)
}

/// Validates an environment's `block_on_alerts` matchers.
pub(super) fn validate_matchers(cx: &mut Ctx<'_>, env: &str, raw: &[Spanned<String>]) -> Vec<Matcher> {
    let mut out = Vec::new();
    for m in raw {
        match Matcher::parse(m.get_ref()) {
            Ok(x) => out.push(x),
            Err(e) => cx.err(m.span(), format!("environment[{env}].block_on_alerts"), e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    const BASE: &str = "[[component]]\nname = \"api\"\nrepo = \"r\"\nrun = \"x\"\n\n[[environment]]\nname = \"staging\"\nblock_on_alerts = ['environment=\"staging\"', 'severity=~\"critical|page\"']\n\n";

    fn with(extra: &str) -> Result<crate::config::Config, String> {
        parse(&format!("{BASE}{extra}"), Path::new("greenroom.toml"), Path::new("/")).map_err(|e| e.to_string())
    }

    #[test]
    fn freezes_and_alerts_are_read() {
        let c = with(
            "[alertmanager]\nurl = \"http://127.0.0.1:9093/\"\n\n\
             [[freeze]]\nname = \"christmas\"\nfrom = \"2026-12-20T00:00:00Z\"\nuntil = \"2027-01-03T00:00:00Z\"\n\n\
             [[freeze]]\nname = \"office\"\nkind = \"allow\"\nenvironments = [\"staging\"]\ncron = \"* 8-17 * * 1-5\"\n",
        )
        .expect("valid");
        assert_eq!(c.alertmanager.as_deref(), Some("http://127.0.0.1:9093"));
        assert_eq!(c.freezes.len(), 2);
        assert_eq!(c.environments[0].block_on_alerts.len(), 2);
        assert_eq!(
            c.environments[0].block_on_alerts[1].filter(),
            "severity=~\"critical|page\""
        );
    }

    #[test]
    fn mistakes_are_located() {
        for (extra, want) in [
            ("[[freeze]]\nname = \"x\"\n", "give either `from` and `until`"),
            ("[[freeze]]\nname = \"x\"\ncron = \"* * *\"\n", "freeze[x].cron"),
            (
                "[[freeze]]\nname = \"x\"\nfrom = \"tomorrow\"\nuntil = \"2027-01-03T00:00:00Z\"\n",
                "not a UTC time",
            ),
            (
                "[[freeze]]\nname = \"x\"\nfrom = \"2027-01-03T00:00:00Z\"\nuntil = \"2026-01-03T00:00:00Z\"\n",
                "after `from`",
            ),
            (
                "[[freeze]]\nname = \"x\"\nkind = \"maybe\"\ncron = \"* * * * *\"\n",
                "unknown kind `maybe`",
            ),
            (
                "[[freeze]]\nname = \"x\"\nenvironments = [\"prod\"]\ncron = \"* * * * *\"\n",
                "unknown environment `prod`",
            ),
            ("[alertmanager]\nurl = \"localhost:9093\"\n", "not an http(s) URL"),
        ] {
            let e = with(extra).expect_err(extra);
            assert!(e.contains(want) && e.contains("greenroom.toml:"), "{extra}\n-> {e}");
        }
        let bad = parse(
            "[[component]]\nname = \"api\"\nrepo = \"r\"\nrun = \"x\"\n[[environment]]\nname = \"s\"\nblock_on_alerts = ['severity=critical']\n",
            Path::new("greenroom.toml"),
            Path::new("/"),
        )
        .expect_err("unquoted");
        assert!(bad.to_string().contains("environment[s].block_on_alerts"), "{bad}");
    }
}
