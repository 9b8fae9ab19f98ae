//! API scenario matrices (issue #6 point 3, seed 004): the pure half of the
//! `kind = "http-matrix"` suite.
//!
//! A matrix is a list of requests (`[[suite.step]]`, with optional
//! `[[suite.setup]]` before them) crossed with variant axes (`[suite.axes]`,
//! e.g. `runner_type = ["instance_type", "group_type", "project_type"]`,
//! `age = ["fresh", "stale"]`). Every combination runs the setup, then the
//! steps in order; values captured from a response (`capture = { token =
//! "/token" }`, JSON pointers) flow into later steps of the same
//! combination as `{token}` placeholders, like the axis values.
//!
//! This module holds the model (built by `config` from the file), the
//! combinations (a cartesian product in a fixed order, bounded by
//! [`MAX_COMBINATIONS`]), template rendering (placeholders are `{name}`
//! with `name` an identifier; anything else in braces, like a JSON
//! object, is literal text; values are escaped for where they land: a JSON
//! string in a body, a percent-encoded segment in a path), the checks of a
//! response against its expectations (any 5xx fails whatever was
//! expected), captures, and the one-line summary of a run. No I/O: the
//! runner is `src/matrix.rs`.

use std::fmt::Write as _;

/// Most combinations one matrix may have (the product of its axes' sizes).
pub const MAX_COMBINATIONS: usize = 1000;

/// Most requests (combinations × steps, setup included) one matrix may make.
pub const MAX_REQUESTS: usize = 20_000;

/// Default number of combinations run at the same time.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// The built-in placeholder naming the combination (`group_type/stale`).
pub const COMBINATION: &str = "combination";

/// Where a matrix sends its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The URL of this component in the environment under test.
    Component(String),
    /// A fixed base URL.
    BaseUrl(String),
}

/// An HTTP request of a matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ... (upper case).
    pub method: String,
    /// Path and query after the base URL, a template (`/api/v4/runners?token={token}`).
    pub path: String,
    /// Header name -> value template.
    pub headers: Vec<(String, String)>,
    /// JSON body template, if any (sent with `content-type: application/json`).
    pub body: Option<String>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A fixture command (setup): axis values and captures reach it as
    /// environment variables `MATRIX_<NAME>` only, never in its text.
    Run(String),
    /// A request.
    Request(Request),
}

/// One setup step or step of a matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Its name (`register`, `verify`), unique within the matrix.
    pub name: String,
    /// What it does.
    pub action: Action,
    /// Placeholder name -> JSON pointer into the response body.
    pub capture: Vec<(String, String)>,
    /// What the response must be.
    pub expect: Expect,
}

/// A step's assertions. Whatever they say, a 5xx answer fails.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expect {
    /// Acceptable statuses (empty: any 2xx).
    pub status: Vec<u16>,
    /// JSON pointer -> expected value (strings are templates).
    pub json: Vec<(String, serde_json::Value)>,
    /// JSON pointer -> regular expression the value (a string as it is,
    /// anything else as JSON text) must match.
    pub matches: Vec<(String, String)>,
    /// Longest acceptable response time.
    pub latency_ms: Option<u64>,
}

/// A `kind = "http-matrix"` suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    /// Where requests go.
    pub target: Target,
    /// Axis name -> values, in the file's order.
    pub axes: Vec<(String, Vec<String>)>,
    /// Run first in every combination; a failure stops the combination.
    pub setup: Vec<Step>,
    /// The steps under test, one test case each per combination.
    pub steps: Vec<Step>,
    /// Combinations run at the same time.
    pub concurrency: usize,
}

/// Errors of the pure matrix logic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    /// Too many combinations.
    #[error("the axes make {count} combinations; at most {MAX_COMBINATIONS} are allowed (split the matrix)")]
    TooManyCombinations {
        /// How many (saturated at `usize::MAX`).
        count: usize,
    },
    /// An axis has no values.
    #[error("axis `{0}` has no values")]
    EmptyAxis(String),
}

/// One combination of axis values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combination {
    /// Its position in [`combinations`]' order.
    pub index: usize,
    /// Axis name -> value, in the axes' order.
    pub values: Vec<(String, String)>,
}

impl Combination {
    /// `group_type/stale` (`default` when there are no axes).
    pub fn label(&self) -> String {
        if self.values.is_empty() {
            return "default".into();
        }
        self.values
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// How many combinations `axes` make (saturating).
pub fn count(axes: &[(String, Vec<String>)]) -> usize {
    axes.iter().fold(1usize, |n, (_, v)| n.saturating_mul(v.len()))
}

/// Every combination of the axes' values: the first axis varies slowest
/// (like nested loops in the order written). No axes: one combination.
pub fn combinations(axes: &[(String, Vec<String>)]) -> Result<Vec<Combination>, MatrixError> {
    if let Some((name, _)) = axes.iter().find(|(_, v)| v.is_empty()) {
        return Err(MatrixError::EmptyAxis(name.clone()));
    }
    let n = count(axes);
    if n > MAX_COMBINATIONS {
        return Err(MatrixError::TooManyCombinations { count: n });
    }
    let mut out = Vec::with_capacity(n);
    for index in 0..n {
        // Mixed-radix digits of `index`, the last axis the fastest.
        let mut rest = index;
        let mut values = vec![(String::new(), String::new()); axes.len()];
        for (slot, (name, vals)) in values.iter_mut().zip(axes).rev() {
            *slot = (name.clone(), vals[rest % vals.len()].clone());
            rest /= vals.len();
        }
        out.push(Combination { index, values });
    }
    Ok(out)
}

/// How a value is written where a placeholder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As it is (headers, expected values, fixture variables).
    None,
    /// Inside a JSON string: quotes, backslashes and control characters escaped.
    Json,
    /// In a URL path or query: everything but unreserved characters percent-encoded.
    Url,
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits a template into literal text and placeholders.
fn pieces(template: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_ident(&after[..close]) => {
                out.push((false, &rest[..open]));
                out.push((true, &after[..close]));
                rest = &after[close + 1..];
            }
            _ => {
                // A literal brace (a JSON object, `{}`): keep it and go on after it.
                out.push((false, &rest[..=open]));
                rest = after;
            }
        }
    }
    out.push((false, rest));
    out
}

/// The placeholders of a template, in order (repeats included).
pub fn placeholders(template: &str) -> Vec<&str> {
    pieces(template)
        .into_iter()
        .filter_map(|(p, s)| p.then_some(s))
        .collect()
}

/// Replaces every `{name}` with its value, escaped for its place. Unknown
/// placeholders stay as they are (config validation rejects them).
pub fn render(template: &str, values: &[(String, String)], escape: Escape) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    for (is_placeholder, s) in pieces(template) {
        if !is_placeholder {
            out.push_str(s);
            continue;
        }
        match values.iter().rev().find(|(k, _)| k == s) {
            Some((_, v)) => match escape {
                Escape::None => out.push_str(v),
                Escape::Json => json_escape_into(&mut out, v),
                Escape::Url => url_escape_into(&mut out, v),
            },
            None => {
                out.push('{');
                out.push_str(s);
                out.push('}');
            }
        }
    }
    out
}

fn json_escape_into(out: &mut String, v: &str) {
    // serde_json writes a quoted string; keep what is inside the quotes.
    let quoted = serde_json::Value::String(v.to_string()).to_string();
    out.push_str(&quoted[1..quoted.len() - 1]);
}

fn url_escape_into(out: &mut String, v: &str) {
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// A value as a placeholder gets it: a string as it is, anything else as JSON text.
pub fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether a JSON pointer is well formed (`""`, or `/`-separated tokens
/// whose `~` is followed by `0` or `1`).
pub fn valid_pointer(p: &str) -> bool {
    if p.is_empty() {
        return true;
    }
    if !p.starts_with('/') {
        return false;
    }
    let b = p.as_bytes();
    b.iter()
        .enumerate()
        .all(|(i, c)| *c != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')))
}

/// A response as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body (as text).
    pub body: String,
    /// Time from sending the request to the end of the body.
    pub latency_ms: u64,
}

/// Every way `response` misses `expect` (empty: it passed). `values` are
/// the placeholders' values for expected strings.
pub fn check(expect: &Expect, response: &Response, values: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    let first_line = response.body.lines().next().unwrap_or("");
    if response.status >= 500 {
        out.push(format!(
            "{} (a server error fails whatever was expected): {}",
            response.status,
            truncate(first_line, 400)
        ));
    } else if expect.status.is_empty() {
        if !(200..300).contains(&response.status) {
            out.push(format!(
                "{} (expected a 2xx): {}",
                response.status,
                truncate(first_line, 200)
            ));
        }
    } else if !expect.status.contains(&response.status) {
        let want: Vec<String> = expect.status.iter().map(u16::to_string).collect();
        out.push(format!(
            "{} (expected {}): {}",
            response.status,
            want.join(" or "),
            truncate(first_line, 200)
        ));
    }
    if let Some(limit) = expect.latency_ms
        && response.latency_ms > limit
    {
        out.push(format!("took {} ms (at most {limit} ms expected)", response.latency_ms));
    }
    if expect.json.is_empty() && expect.matches.is_empty() {
        return out;
    }
    let body: Option<serde_json::Value> = serde_json::from_str(&response.body).ok();
    let Some(body) = body else {
        out.push("the body is not JSON, so no JSON expectation can hold".into());
        return out;
    };
    for (pointer, want) in &expect.json {
        let want = render_value(want, values);
        match body.pointer(pointer) {
            Some(got) if *got == want => {}
            Some(got) => out.push(format!("{pointer} is {got}, expected {want}")),
            None => out.push(format!("{pointer} is missing, expected {want}")),
        }
    }
    for (pointer, pattern) in &expect.matches {
        match body.pointer(pointer) {
            Some(got) => match regex::Regex::new(pattern).map(|r| r.is_match(&value_text(got))) {
                Ok(true) => {}
                Ok(false) => out.push(format!("{pointer} is {got}, which does not match /{pattern}/")),
                Err(e) => out.push(format!("/{pattern}/ is not a valid pattern: {e}")),
            },
            None => out.push(format!("{pointer} is missing, expected to match /{pattern}/")),
        }
    }
    out
}

/// An expected value with its strings rendered (objects and arrays deeply).
pub fn render_value(v: &serde_json::Value, values: &[(String, String)]) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(render(s, values, Escape::None)),
        Value::Array(a) => Value::Array(a.iter().map(|x| render_value(x, values)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), render_value(x, values))).collect()),
        other => other.clone(),
    }
}

/// The values `captures` take from a response body, or why one cannot be taken.
pub fn capture(captures: &[(String, String)], body: &str) -> Result<Vec<(String, String)>, String> {
    if captures.is_empty() {
        return Ok(Vec::new());
    }
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("cannot capture from a body that is not JSON ({e})"))?;
    captures
        .iter()
        .map(|(name, pointer)| match json.pointer(pointer) {
            Some(v) => Ok((name.clone(), value_text(v))),
            None => Err(format!("cannot capture `{name}`: {pointer} is not in the response")),
        })
        .collect()
}

/// At most `max` bytes of `s` (on a character boundary), with a note of what was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &s[..end], s.len() - end)
}

/// One failed test case, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `group_type/stale`.
    pub combination: String,
    /// `verify`.
    pub step: String,
    /// `500 ForeignKeyViolation ...`: its first problem.
    pub detail: String,
}

/// `1 of 24 failed: group_type/stale verify -> 500 ...; ...` (at most three
/// failures named, then how many more), or `24 passed`.
pub fn summary(cases: usize, failures: &[Failure]) -> String {
    if failures.is_empty() {
        return format!("{cases} of {cases} passed");
    }
    let mut s = format!("{} of {cases} failed: ", failures.len());
    let named: Vec<String> = failures
        .iter()
        .take(3)
        .map(|f| {
            format!(
                "{} {} -> {}",
                f.combination,
                f.step,
                truncate(f.detail.lines().next().unwrap_or(""), 160)
            )
        })
        .collect();
    s.push_str(&named.join("; "));
    if failures.len() > 3 {
        let _ = write!(s, "; and {} more", failures.len() - 3);
    }
    s
}

/// Header names whose values are never kept in a report.
pub fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || n.contains("token")
        || n.contains("secret")
        || n.contains("api-key")
        || n.contains("apikey")
        || n.contains("password")
}

/// The environment variable a fixture command gets a value in: `MATRIX_<NAME>`.
pub fn env_var(name: &str) -> String {
    let mut s = String::from("MATRIX_");
    for c in name.chars() {
        s.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    s
}

#[cfg(test)]
mod tests;
