//! `[[gate]]`, `[prometheus]` and the error watch's keys (issue #6 points
//! 4 and 5).
//!
//! ```toml
//! [prometheus]
//! url = "http://127.0.0.1:9090"   # where gates query (GET /api/v1/query)
//! timeout = "10s"                 # per query
//!
//! [[gate]]
//! name = "error-rate"
//! query = 'sum(rate(http_requests_total{env="{environment}",code=~"5.."}[5m])) / sum(rate(http_requests_total{env="{environment}"}[5m]))'
//! pass = "< 0.01"                 # <, <=, >, >=, ==, != and a number; every series must pass
//! on_empty = "wait"               # fail (default) | pass | wait: no series, or NaN
//! soak = "2m"                     # wait this long before the first evaluation (default 0s)
//! timeout = "5m"                  # how long `wait` keeps asking after the soak (default 2m)
//! when = ["deploy", "tests"]      # after the deploy, after the suites (default ["tests"])
//! tier = "blocking"               # like suites: blocking | gate | non-blocking | quarantine
//! environments = ["staging"]      # default: all
//! ```
//!
//! Components: `error_patterns = ["ERROR", "panicked at"]` (regular
//! expressions; replaces the defaults of `core::errorwatch`; `[]` turns the
//! watch off for the component), `logs = "kubectl logs deploy/api --since-time=$GREENROOM_LOGS_SINCE"`
//! (the command driver's way to read a component's log). Environments and
//! suites: `new_errors = "report" | "blocking"`.

use super::{Ctx, Environment, Tier, api_url, valid_name};
use crate::errorwatch::{self, NewErrors};
use crate::gate::{Comparison, OnEmpty, QUERY_PLACEHOLDERS, When, unknown_placeholders};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// Default time a gate with `on_empty = "wait"` keeps asking.
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default time one Prometheus query may take.
pub const DEFAULT_PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(10);

/// `[[gate]]`: a Prometheus query that must hold after a deploy or the tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// Unique name.
    pub name: String,
    /// PromQL with placeholders (`core::gate::QUERY_PLACEHOLDERS`); with
    /// `{component}`, the gate is evaluated once per component of the environment.
    pub query: String,
    /// What every series must satisfy.
    pub pass: Comparison,
    /// What no series (or NaN) means.
    pub on_empty: OnEmpty,
    /// Wait before the first evaluation.
    pub soak: Duration,
    /// How long `on_empty = "wait"` keeps asking after the soak.
    pub timeout: Duration,
    /// When it is evaluated (sorted, no duplicates).
    pub when: Vec<When>,
    /// What its failure means.
    pub tier: Tier,
    /// Environments it is evaluated on (empty: all).
    pub environments: Vec<String>,
}

/// `[prometheus]`: where gates query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prometheus {
    /// Base URL (`http://127.0.0.1:9090`), without a trailing `/`.
    pub url: String,
    /// Limit of one query.
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGate {
    name: Spanned<String>,
    query: Option<Spanned<String>>,
    pass: Option<Spanned<String>>,
    on_empty: Option<Spanned<String>>,
    soak: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    when: Option<Spanned<Vec<Spanned<String>>>>,
    tier: Option<Spanned<String>>,
    #[serde(default)]
    environments: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrometheus {
    url: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
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

/// Validates `[prometheus]`.
pub(super) fn validate_prometheus(cx: &mut Ctx<'_>, raw: Option<&Spanned<RawPrometheus>>) -> Option<Prometheus> {
    let raw = raw?;
    let r = raw.get_ref();
    let url = match &r.url {
        Some(u) => api_url(cx, u, "prometheus.url"),
        None => {
            cx.err(
                raw.span(),
                "prometheus.url",
                "`[prometheus]` needs `url` (e.g. \"http://127.0.0.1:9090\")",
            );
            String::new()
        }
    };
    let timeout = cx.duration(&r.timeout, "prometheus.timeout".into(), DEFAULT_PROMETHEUS_TIMEOUT);
    Some(Prometheus { url, timeout })
}

/// Validates the `[[gate]]` entries; `prometheus` is whether `[prometheus]` is set.
pub(super) fn validate_gates(
    cx: &mut Ctx<'_>,
    raw: &[Spanned<RawGate>],
    environments: &[Environment],
    prometheus: bool,
) -> Vec<Gate> {
    let mut out: Vec<Gate> = Vec::new();
    for (i, rg) in raw.iter().enumerate() {
        let rg = rg.get_ref();
        let name = rg.name.get_ref().clone();
        let key = |k: &str| format!("gate[{name}].{k}");
        let before = cx.errors.len();
        if !valid_name(&name) {
            cx.err(
                rg.name.span(),
                "gate.name",
                format!("`{name}` is not a valid name: use lowercase letters, digits, `-` and `_`"),
            );
        } else if out.iter().any(|g| g.name == name) || raw[..i].iter().any(|g| g.get_ref().name.get_ref() == &name) {
            cx.err(rg.name.span(), "gate.name", format!("gate `{name}` is defined twice"));
        }
        if i == 0 && !prometheus {
            cx.err(
                rg.name.span(),
                key("query"),
                "gates query Prometheus: add `[prometheus]` with `url = \"http://HOST:9090\"`",
            );
        }
        let query = match &rg.query {
            Some(q) if q.get_ref().trim().is_empty() => {
                cx.err(q.span(), key("query"), "must not be empty");
                String::new()
            }
            Some(q) => {
                for p in unknown_placeholders(q.get_ref(), QUERY_PLACEHOLDERS) {
                    cx.err(
                        q.span(),
                        key("query"),
                        format!(
                            "unknown placeholder `{{{p}}}` (known: {}); PromQL's own braces need a `=` or `~` inside, e.g. {{job=\"x\"}}",
                            QUERY_PLACEHOLDERS.join(", ")
                        ),
                    );
                }
                q.get_ref().clone()
            }
            None => {
                cx.err(rg.name.span(), key("query"), "a gate needs `query` (PromQL)");
                String::new()
            }
        };
        let pass = match &rg.pass {
            Some(p) => match Comparison::parse(p.get_ref()) {
                Ok(c) => Some(c),
                Err(e) => {
                    cx.err(p.span(), key("pass"), e.to_string());
                    None
                }
            },
            None => {
                cx.err(
                    rg.name.span(),
                    key("pass"),
                    "a gate needs `pass`, the comparison every series must satisfy (e.g. \"< 0.01\")",
                );
                None
            }
        };
        let on_empty = match &rg.on_empty {
            None => OnEmpty::Fail,
            Some(v) => OnEmpty::parse(v.get_ref()).unwrap_or_else(|| {
                cx.err(
                    v.span(),
                    key("on_empty"),
                    format!("unknown value `{}` (expected `fail`, `pass` or `wait`)", v.get_ref()),
                );
                OnEmpty::Fail
            }),
        };
        let soak = cx.duration_or_zero(&rg.soak, key("soak"), Duration::ZERO);
        let timeout = cx.duration(&rg.timeout, key("timeout"), DEFAULT_GATE_TIMEOUT);
        let mut when = Vec::new();
        match &rg.when {
            None => when.push(When::Tests),
            Some(list) if list.get_ref().is_empty() => cx.err(
                list.span(),
                key("when"),
                "must name `deploy`, `tests` or both (remove the gate to turn it off)",
            ),
            Some(list) => {
                for w in list.get_ref() {
                    match When::parse(w.get_ref()) {
                        Some(x) if !when.contains(&x) => when.push(x),
                        Some(_) => {}
                        None => cx.err(
                            w.span(),
                            key("when"),
                            format!("unknown value `{}` (expected `deploy` or `tests`)", w.get_ref()),
                        ),
                    }
                }
            }
        }
        when.sort();
        let tier = match &rg.tier {
            None => Tier::Blocking,
            Some(t) => tier(t.get_ref()).unwrap_or_else(|| {
                cx.err(
                    t.span(),
                    key("tier"),
                    format!(
                        "unknown tier `{}` (expected `blocking`, `gate`, `non-blocking` or `quarantine`)",
                        t.get_ref()
                    ),
                );
                Tier::Blocking
            }),
        };
        for e in &rg.environments {
            if !environments.iter().any(|x| &x.name == e.get_ref()) {
                cx.err(
                    e.span(),
                    key("environments"),
                    format!("unknown environment `{}`", e.get_ref()),
                );
            }
        }
        if cx.errors.len() > before {
            continue;
        }
        let Some(pass) = pass else { continue };
        out.push(Gate {
            name,
            query,
            pass,
            on_empty,
            soak,
            timeout,
            when,
            tier,
            environments: rg.environments.iter().map(|e| e.get_ref().clone()).collect(),
        });
    }
    out
}

/// A component's `error_patterns`: the defaults when absent.
pub(super) fn error_patterns(cx: &mut Ctx<'_>, raw: &Option<Vec<Spanned<String>>>, key: String) -> Vec<String> {
    let Some(list) = raw else {
        return errorwatch::DEFAULT_PATTERNS.iter().map(|s| s.to_string()).collect();
    };
    for p in list {
        if let Err(e) = errorwatch::check(p.get_ref()) {
            cx.err(p.span(), key.clone(), e.to_string());
        }
    }
    list.iter().map(|p| p.get_ref().clone()).collect()
}

/// A component's `logs` command.
pub(super) fn logs_command(cx: &mut Ctx<'_>, raw: &Option<Spanned<String>>, key: String) -> Option<String> {
    let l = raw.as_ref()?;
    if l.get_ref().trim().is_empty() {
        cx.err(l.span(), key, "must not be empty (remove the key instead)");
        return None;
    }
    Some(l.get_ref().clone())
}

/// `new_errors` of an environment or a suite.
pub(super) fn new_errors(cx: &mut Ctx<'_>, raw: &Option<Spanned<String>>, key: String) -> NewErrors {
    let Some(v) = raw else { return NewErrors::Report };
    NewErrors::parse(v.get_ref()).unwrap_or_else(|| {
        cx.err(
            v.span(),
            key,
            format!("unknown value `{}` (expected `report` or `blocking`)", v.get_ref()),
        );
        NewErrors::Report
    })
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::{DEFAULT_GATE_TIMEOUT, DEFAULT_PROMETHEUS_TIMEOUT};
    use crate::errorwatch;
    use crate::gate::{OnEmpty, Op, When};

    fn parse_text(text: &str) -> Result<Config, ConfigErrors> {
        parse(text, Path::new("greenroom.toml"), Path::new("/cfg"))
    }

    const BASE: &str = "[[component]]\nname = \"api\"\nrepo = \"repos/api\"\nrun = \"serve\"\n\n[[component]]\nname = \"db\"\nrepo = \"repos/db\"\nrun = \"serve\"\nerror_patterns = [\"^E \", \"deadlock\"]\nlogs = \"journalctl -u db --since @$GREENROOM_LOGS_SINCE_UNIX\"\n\n[[environment]]\nname = \"staging\"\nnew_errors = \"blocking\"\n\n[[environment]]\nname = \"dev\"\n";

    #[test]
    fn gates_prometheus_and_error_watch_load_with_defaults() {
        let text = format!(
            "{BASE}\n[prometheus]\nurl = \"http://127.0.0.1:9090/\"\n\n[[gate]]\nname = \"errors\"\nquery = 'sum(rate(x{{env=\"{{environment}}\"}}[5m]))'\npass = \"< 0.01\"\n\n[[gate]]\nname = \"up\"\nquery = \"up{{job=\\\"{{component}}\\\"}}\"\npass = \"== 1\"\non_empty = \"wait\"\nsoak = \"30s\"\ntimeout = \"1m\"\nwhen = [\"tests\", \"deploy\", \"tests\"]\ntier = \"non-blocking\"\nenvironments = [\"dev\"]\n\n[[suite]]\nname = \"smoke\"\nrun = \"true\"\nnew_errors = \"blocking\"\n"
        );
        let c = parse_text(&text).unwrap_or_else(|e| panic!("{e}"));
        let p = c.prometheus.as_ref().expect("prometheus");
        assert_eq!(p.url, "http://127.0.0.1:9090");
        assert_eq!(p.timeout, DEFAULT_PROMETHEUS_TIMEOUT);
        let g = &c.gates[0];
        assert_eq!(g.query, "sum(rate(x{env=\"{environment}\"}[5m]))");
        assert_eq!(g.pass.op, Op::Lt);
        assert_eq!(
            (g.on_empty, g.soak, g.timeout),
            (OnEmpty::Fail, Duration::ZERO, DEFAULT_GATE_TIMEOUT)
        );
        assert_eq!((g.when.clone(), g.tier), (vec![When::Tests], Tier::Blocking));
        let g = &c.gates[1];
        assert_eq!(
            (g.on_empty, g.soak, g.timeout),
            (OnEmpty::Wait, Duration::from_secs(30), Duration::from_secs(60))
        );
        assert_eq!(g.when, vec![When::Deploy, When::Tests]);
        assert_eq!(
            (g.tier, g.environments.clone()),
            (Tier::NonBlocking, vec!["dev".to_string()])
        );
        let api = c.component("api").expect("api");
        assert_eq!(api.error_patterns, errorwatch::DEFAULT_PATTERNS);
        assert_eq!(api.logs, None);
        let db = c.component("db").expect("db");
        assert_eq!(db.error_patterns, vec!["^E ", "deadlock"]);
        assert!(db.logs.as_deref().is_some_and(|l| l.starts_with("journalctl")));
        assert_eq!(
            c.environment("staging").map(|e| e.new_errors),
            Some(NewErrors::Blocking)
        );
        assert_eq!(c.environment("dev").map(|e| e.new_errors), Some(NewErrors::Report));
        assert_eq!(c.suites[0].new_errors, NewErrors::Blocking);
    }

    #[test]
    fn gate_problems_are_located() {
        let text = format!(
            "{BASE}\n[[gate]]\nname = \"Bad Name\"\nquery = \"up{{x}}\"\npass = \"about 1\"\non_empty = \"maybe\"\nsoak = \"soon\"\nwhen = [\"later\"]\ntier = \"urgent\"\nenvironments = [\"prod\"]\n\n[[gate]]\nname = \"no-pass\"\nquery = \"\"\n"
        );
        insta::assert_snapshot!(parse_text(&text).expect_err("bad gates").to_string());
    }

    #[test]
    fn error_watch_problems_are_located() {
        let text = "[[component]]\nname = \"api\"\nrepo = \"r\"\nrun = \"serve\"\nerror_patterns = [\"ok\", \"(unclosed\", \"\"]\nlogs = \" \"\n\n[[environment]]\nname = \"staging\"\nnew_errors = \"loud\"\n\n[[suite]]\nname = \"smoke\"\nrun = \"true\"\nnew_errors = \"yes\"\n\n[prometheus]\ntimeout = \"0s\"\n";
        insta::assert_snapshot!(parse_text(text).expect_err("bad keys").to_string());
    }
}
