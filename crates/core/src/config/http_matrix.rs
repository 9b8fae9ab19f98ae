//! `[[suite]] kind = "http-matrix"`: API scenario matrices (issue #6 point
//! 3, seed 004), validated into [`crate::matrix::Matrix`].
//!
//! ```toml
//! [[suite]]
//! name = "runner-matrix"
//! kind = "http-matrix"
//! component = "ogr"              # or base_url = "http://127.0.0.1:8080"
//! [suite.axes]
//! runner_type = ["instance_type", "group_type", "project_type"]
//! age = ["fresh", "stale"]
//! [[suite.setup]]
//! name = "seed"
//! run = "./seed-db \"$MATRIX_RUNNER_TYPE\""   # values only as MATRIX_<NAME>
//! [[suite.step]]
//! name = "register"
//! method = "POST"
//! path = "/api/v4/runners"
//! body = '{"runner_type": "{runner_type}", "age": "{age}"}'
//! capture = { token = "/token" }
//! expect = { status = 201, matches = { "/token" = "^glrt-" } }
//! ```
//!
//! Everything is checked here, with the file's line and column: one of
//! `component` (an existing component) or `base_url`; axis names are
//! identifiers with distinct, non-empty values and at most
//! [`crate::matrix::MAX_COMBINATIONS`] combinations; every step is either a
//! fixture command (`run`) or a request (`method` + `path`); every
//! `{placeholder}` names an axis, `combination`, or a value captured by an
//! earlier step; a body is JSON once its placeholders are filled; JSON
//! pointers are well formed; patterns compile; statuses are HTTP statuses.

use super::{Ctx, RawSuite, valid_name};
use crate::matrix::{self, Action, Expect, Matrix, Request, Step, Target};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// What a suite runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SuiteKind {
    /// `kind = "command"` (the default): the shell command in `run`.
    #[default]
    Command,
    /// `kind = "http-matrix"`: requests crossed with variant axes.
    HttpMatrix(Box<Matrix>),
}

/// `[[suite.setup]]` and `[[suite.step]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    name: Option<Spanned<String>>,
    run: Option<Spanned<String>>,
    method: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    body: Option<Spanned<String>>,
    #[serde(default)]
    capture: BTreeMap<String, Spanned<String>>,
    expect: Option<Spanned<RawExpect>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    status: Option<Spanned<toml::Value>>,
    #[serde(default)]
    json: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    matches: BTreeMap<String, Spanned<String>>,
    latency_ms: Option<Spanned<i64>>,
}

/// Axis name -> values, as written (ordered by position in the file).
pub(super) type RawAxes = BTreeMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>;

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The kind of a suite, its matrix validated; `components` are the
/// config's component names.
pub(super) fn validate(cx: &mut Ctx<'_>, rs: &RawSuite, name: &str, components: &[String]) -> SuiteKind {
    let key = |k: &str| format!("suite[{name}].{k}");
    let is_matrix = match rs.kind.as_ref().map(|k| k.get_ref().as_str()) {
        None | Some("command") => false,
        Some("http-matrix") => true,
        Some(other) => {
            if let Some(k) = &rs.kind {
                cx.err(
                    k.span(),
                    key("kind"),
                    format!("unknown suite kind `{other}` (expected `command` or `http-matrix`)"),
                );
            }
            return SuiteKind::Command;
        }
    };
    if !is_matrix {
        // Matrix keys on a command suite are a mistake worth naming.
        let stray = [
            rs.component.as_ref().map(|c| ("component", c.span())),
            rs.base_url.as_ref().map(|c| ("base_url", c.span())),
            rs.axes.as_ref().map(|c| ("axes", c.span())),
            rs.setup.first().map(|c| ("setup", c.span())),
            rs.step.first().map(|c| ("step", c.span())),
            rs.concurrency.as_ref().map(|c| ("concurrency", c.span())),
        ];
        for (k, span) in stray.into_iter().flatten() {
            cx.err(span, key(k), "only for `kind = \"http-matrix\"` suites");
        }
        return SuiteKind::Command;
    }
    if let Some(r) = &rs.run {
        cx.err(
            r.span(),
            key("run"),
            "a matrix suite has no `run`: its fixture commands are `[[suite.setup]]` steps with `run`",
        );
    }
    let target = match (&rs.component, &rs.base_url) {
        (Some(c), None) => {
            if !components.contains(c.get_ref()) {
                cx.err(
                    c.span(),
                    key("component"),
                    format!(
                        "unknown component `{}` (components: {})",
                        c.get_ref(),
                        components.join(", ")
                    ),
                );
            }
            Target::Component(c.get_ref().clone())
        }
        (None, Some(u)) => {
            let v = u.get_ref().trim().trim_end_matches('/');
            if !(v.starts_with("http://") || v.starts_with("https://")) || v.contains(char::is_whitespace) {
                cx.err(u.span(), key("base_url"), "must be an http:// or https:// URL");
            }
            Target::BaseUrl(v.to_string())
        }
        (Some(_), Some(u)) => {
            cx.err(
                u.span(),
                key("base_url"),
                "give `component` (its URL in the environment) or `base_url`, not both",
            );
            Target::BaseUrl(u.get_ref().clone())
        }
        (None, None) => {
            cx.err(
                rs.name.span(),
                key("component"),
                "a matrix suite needs `component` (requests go to its URL in the environment) or `base_url`",
            );
            Target::BaseUrl(String::new())
        }
    };
    let axes = validate_axes(cx, rs.axes.as_ref(), &key);
    let concurrency = match &rs.concurrency {
        None => matrix::DEFAULT_CONCURRENCY,
        Some(c) => match usize::try_from(*c.get_ref()) {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => {
                cx.err(c.span(), key("concurrency"), "must be between 1 and 64");
                1
            }
        },
    };
    if rs.step.is_empty() {
        cx.err(
            rs.name.span(),
            key("step"),
            "a matrix suite needs at least one `[[suite.step]]`",
        );
    }
    // Placeholders known so far: the axes, the combination, then captures as they come.
    let mut known: Vec<String> = axes
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| n != matrix::COMBINATION)
        .collect();
    known.push(matrix::COMBINATION.to_string());
    let mut names: Vec<String> = Vec::new();
    let setup: Vec<Step> = rs
        .setup
        .iter()
        .map(|s| validate_step(cx, s, &key("setup"), &mut known, &mut names, &axes))
        .collect();
    let steps: Vec<Step> = rs
        .step
        .iter()
        .map(|s| validate_step(cx, s, &key("step"), &mut known, &mut names, &axes))
        .collect();
    let combos = matrix::count(&axes);
    let requests = combos.saturating_mul(setup.len() + steps.len());
    if combos <= matrix::MAX_COMBINATIONS
        && requests > matrix::MAX_REQUESTS
        && let Some(a) = &rs.axes
    {
        cx.err(
            a.span(),
            key("axes"),
            format!(
                "{combos} combinations of {} steps make {requests} requests; at most {} are allowed",
                setup.len() + steps.len(),
                matrix::MAX_REQUESTS
            ),
        );
    }
    SuiteKind::HttpMatrix(Box::new(Matrix {
        target,
        axes,
        setup,
        steps,
        concurrency,
    }))
}

fn validate_axes(
    cx: &mut Ctx<'_>,
    raw: Option<&Spanned<RawAxes>>,
    key: &dyn Fn(&str) -> String,
) -> Vec<(String, Vec<String>)> {
    let Some(raw) = raw else { return Vec::new() };
    let mut entries: Vec<_> = raw.get_ref().iter().collect();
    // The file's order, whatever the map's.
    entries.sort_by_key(|(k, _)| k.span().start);
    let mut out = Vec::new();
    for (k, vals) in entries {
        let n = k.get_ref();
        if !is_identifier(n) {
            cx.err(
                k.span(),
                key("axes"),
                format!("`{n}` is not a valid axis name: use letters, digits and `_`, not starting with a digit"),
            );
        } else if n == matrix::COMBINATION {
            cx.err(
                k.span(),
                key("axes"),
                "`combination` is the built-in placeholder naming the combination; name the axis otherwise",
            );
        }
        if vals.get_ref().is_empty() {
            cx.err(
                vals.span(),
                key(&format!("axes.{n}")),
                "an axis needs at least one value",
            );
        }
        let mut seen: Vec<String> = Vec::new();
        for v in vals.get_ref() {
            if seen.contains(v.get_ref()) {
                cx.err(
                    v.span(),
                    key(&format!("axes.{n}")),
                    format!("`{}` is listed twice", v.get_ref()),
                );
            } else if v.get_ref().is_empty() || v.get_ref().contains(['/', '\n']) {
                cx.err(
                    v.span(),
                    key(&format!("axes.{n}")),
                    "a value must be non-empty, without `/` or line breaks (it names test cases)",
                );
            }
            seen.push(v.get_ref().clone());
        }
        out.push((n.clone(), seen));
    }
    if let Err(e @ matrix::MatrixError::TooManyCombinations { .. }) = matrix::combinations(&out) {
        cx.err(raw.span(), key("axes"), e.to_string());
    }
    out
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

fn unknown(cx: &mut Ctx<'_>, t: &Spanned<String>, k: &str, known: &[String]) {
    let mut reported: Vec<&str> = Vec::new();
    for p in matrix::placeholders(t.get_ref()) {
        if !known.iter().any(|x| x == p) && !reported.contains(&p) {
            reported.push(p);
            cx.err(
                t.span(),
                k,
                format!(
                    "unknown placeholder `{{{p}}}` (known here: {})",
                    known.iter().map(|x| format!("{{{x}}}")).collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
}

fn validate_step(
    cx: &mut Ctx<'_>,
    raw: &Spanned<RawStep>,
    list: &str,
    known: &mut Vec<String>,
    names: &mut Vec<String>,
    axes: &[(String, Vec<String>)],
) -> Step {
    let rs = raw.get_ref();
    let name = match &rs.name {
        Some(n) => {
            let v = n.get_ref().clone();
            if !valid_name(&v) {
                cx.err(
                    n.span(),
                    format!("{list}.name"),
                    format!("`{v}` is not a valid step name: use lowercase letters, digits, `-` and `_`"),
                );
            } else if names.contains(&v) {
                cx.err(
                    n.span(),
                    format!("{list}.name"),
                    format!("step `{v}` is defined twice in this suite"),
                );
            }
            names.push(v.clone());
            v
        }
        None => {
            cx.err(raw.span(), format!("{list}.name"), "a step needs a `name`");
            String::new()
        }
    };
    let key = |k: &str| format!("{list}[{name}].{k}");
    let action = match (&rs.run, &rs.method, &rs.path) {
        (Some(r), None, None) => {
            if r.get_ref().trim().is_empty() {
                cx.err(r.span(), key("run"), "must not be empty");
            }
            let extra = [
                (!rs.headers.is_empty()).then_some("headers"),
                rs.body.as_ref().map(|_| "body"),
                (!rs.capture.is_empty()).then_some("capture"),
                rs.expect.as_ref().map(|_| "expect"),
            ];
            for k in extra.into_iter().flatten() {
                cx.err(
                    r.span(),
                    key(k),
                    format!("a fixture command (`run`) has no `{k}`: it passes when it exits with status 0"),
                );
            }
            Action::Run(r.get_ref().clone())
        }
        (None, Some(m), Some(p)) => {
            let method = m.get_ref().to_ascii_uppercase();
            if !METHODS.contains(&method.as_str()) {
                cx.err(
                    m.span(),
                    key("method"),
                    format!(
                        "unknown method `{}` (expected one of {})",
                        m.get_ref(),
                        METHODS.join(", ")
                    ),
                );
            }
            if !p.get_ref().starts_with('/') {
                cx.err(
                    p.span(),
                    key("path"),
                    "must start with `/` (it follows the component's URL or `base_url`)",
                );
            }
            unknown(cx, p, &key("path"), known);
            let mut headers = Vec::new();
            for (h, v) in &rs.headers {
                if h.is_empty()
                    || !h
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
                {
                    cx.err(v.span(), key("headers"), format!("`{h}` is not a valid header name"));
                }
                if v.get_ref().contains(['\r', '\n']) {
                    cx.err(v.span(), key("headers"), "a header value cannot contain a line break");
                }
                unknown(cx, v, &key(&format!("headers.{h}")), known);
                headers.push((h.clone(), v.get_ref().clone()));
            }
            let body = rs.body.as_ref().map(|b| {
                unknown(cx, b, &key("body"), known);
                // Filled with `0`, the body must be JSON (a value can sit in a string or stand for a number).
                let zeros: Vec<(String, String)> = matrix::placeholders(b.get_ref())
                    .into_iter()
                    .map(|p| (p.to_string(), "0".to_string()))
                    .collect();
                if let Err(e) = serde_json::from_str::<serde_json::Value>(&matrix::render(
                    b.get_ref(),
                    &zeros,
                    matrix::Escape::Json,
                )) {
                    cx.err(
                        b.span(),
                        key("body"),
                        format!("is not JSON once its placeholders are filled: {e}"),
                    );
                }
                b.get_ref().clone()
            });
            Action::Request(Request {
                method,
                path: p.get_ref().clone(),
                headers,
                body,
            })
        }
        (Some(r), _, _) => {
            cx.err(
                r.span(),
                key("run"),
                "a step is either a fixture command (`run`) or a request (`method` and `path`), not both",
            );
            Action::Run(r.get_ref().clone())
        }
        (None, m, p) => {
            let span = m
                .as_ref()
                .map(|m| m.span())
                .or(p.as_ref().map(|p| p.span()))
                .unwrap_or(raw.span());
            cx.err(
                span,
                key(if m.is_none() { "method" } else { "path" }),
                "a request needs `method` and `path` (or write `run` for a fixture command)",
            );
            Action::Run(String::new())
        }
    };
    let expect = rs
        .expect
        .as_ref()
        .map(|e| validate_expect(cx, e, &key("expect"), known))
        .unwrap_or_default();
    let mut capture = Vec::new();
    for (c, pointer) in &rs.capture {
        if !is_identifier(c) {
            cx.err(
                pointer.span(),
                key("capture"),
                format!("`{c}` is not a valid capture name: use letters, digits and `_`"),
            );
        } else if axes.iter().any(|(a, _)| a == c) || c == matrix::COMBINATION {
            cx.err(
                pointer.span(),
                key("capture"),
                format!("`{c}` is already an axis or a built-in placeholder"),
            );
        }
        if !matrix::valid_pointer(pointer.get_ref()) {
            cx.err(
                pointer.span(),
                key(&format!("capture.{c}")),
                format!(
                    "`{}` is not a JSON pointer (write e.g. \"/token\" or \"/runner/id\")",
                    pointer.get_ref()
                ),
            );
        }
        capture.push((c.clone(), pointer.get_ref().clone()));
    }
    // Captures are known to the steps after this one.
    for (c, _) in &capture {
        if !known.contains(c) {
            known.push(c.clone());
        }
    }
    Step {
        name,
        action,
        capture,
        expect,
    }
}

fn validate_expect(cx: &mut Ctx<'_>, raw: &Spanned<RawExpect>, key: &str, known: &[String]) -> Expect {
    let re = raw.get_ref();
    let mut out = Expect::default();
    if let Some(s) = &re.status {
        let list: Vec<&toml::Value> = match s.get_ref() {
            toml::Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        for v in list {
            match v.as_integer().and_then(|n| u16::try_from(n).ok()) {
                Some(n) if (100..=599).contains(&n) => out.status.push(n),
                _ => cx.err(
                    s.span(),
                    format!("{key}.status"),
                    format!("`{v}` is not an HTTP status: write e.g. 201 or [201, 204]"),
                ),
            }
        }
        if matches!(s.get_ref(), toml::Value::Array(a) if a.is_empty()) {
            cx.err(s.span(), format!("{key}.status"), "must list at least one status");
        }
    }
    for (pointer, v) in &re.json {
        if !matrix::valid_pointer(pointer) {
            cx.err(
                v.span(),
                format!("{key}.json"),
                format!("`{pointer}` is not a JSON pointer (write e.g. \"/status\")"),
            );
        }
        match to_json(v.get_ref()) {
            Some(j) => {
                strings_known(cx, &j, v.span(), &format!("{key}.json"), known);
                out.json.push((pointer.clone(), j));
            }
            None => cx.err(
                v.span(),
                format!("{key}.json"),
                "a date or time cannot be compared with JSON: write it as a string",
            ),
        }
    }
    for (pointer, pattern) in &re.matches {
        if !matrix::valid_pointer(pointer) {
            cx.err(
                pattern.span(),
                format!("{key}.matches"),
                format!("`{pointer}` is not a JSON pointer (write e.g. \"/id\")"),
            );
        }
        if let Err(e) = regex::Regex::new(pattern.get_ref()) {
            let first = e.to_string().lines().last().unwrap_or("").trim().to_string();
            cx.err(
                pattern.span(),
                format!("{key}.matches"),
                format!("`{}` is not a valid regular expression: {first}", pattern.get_ref()),
            );
        }
        out.matches.push((pointer.clone(), pattern.get_ref().clone()));
    }
    if let Some(l) = &re.latency_ms {
        match u64::try_from(*l.get_ref()) {
            Ok(n) if n > 0 => out.latency_ms = Some(n),
            _ => cx.err(
                l.span(),
                format!("{key}.latency_ms"),
                "must be a number of milliseconds above zero",
            ),
        }
    }
    out
}

fn strings_known(cx: &mut Ctx<'_>, v: &serde_json::Value, span: std::ops::Range<usize>, key: &str, known: &[String]) {
    match v {
        serde_json::Value::String(s) => {
            let t = Spanned::new(span, s.clone());
            unknown(cx, &t, key, known);
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings_known(cx, x, span.clone(), key, known)),
        serde_json::Value::Object(o) => o.values().for_each(|x| strings_known(cx, x, span.clone(), key, known)),
        _ => {}
    }
}

/// A TOML value as JSON; `None` for dates and times.
fn to_json(v: &toml::Value) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Array(a) => J::Array(a.iter().map(to_json).collect::<Option<Vec<_>>>()?),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, x)| to_json(x).map(|j| (k.clone(), j)))
                .collect::<Option<serde_json::Map<_, _>>>()?,
        ),
        toml::Value::Datetime(_) => return None,
    })
}

#[cfg(test)]
mod tests;
