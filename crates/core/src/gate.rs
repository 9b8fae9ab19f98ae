//! Metric gates (issue #6 point 5), pure: the `pass` comparison of a
//! `[[gate]]`, a Prometheus instant-query answer read into samples, and the
//! verdict.
//!
//! A gate passes when **every** series of its query's result satisfies the
//! comparison. A result with no series, and a series whose value is NaN,
//! are "no data" and handled by `on_empty`: `fail`, `pass` (that series is
//! ignored), or `wait` (ask again until the gate's `timeout`; then it
//! fails). Comparisons are total: NaN never satisfies one, `±Inf` compare
//! as numbers. The I/O (querying, soaking, polling) is `src/gates.rs`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What went wrong, for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// `pass` is not `OP NUMBER`.
    #[error("`{0}` is not a comparison: write an operator and a number, e.g. \"< 0.01\", \"<= 5\", \"== 1\", \"!= 0\"")]
    BadComparison(String),
    /// Prometheus answered something that is not an instant-query result.
    #[error("unexpected answer from Prometheus: {0}")]
    BadAnswer(String),
    /// Prometheus refused the query (`status: error`).
    #[error("Prometheus refused the query: {0}")]
    Refused(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// A gate's `pass`: `< 0.01`, `<= 5`, `> 0`, `== 1`, `!= 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// The operator.
    pub op: Op,
    /// The number on its right (finite).
    pub threshold: f64,
}

impl Comparison {
    /// Parses `OP NUMBER` (spaces optional; the number finite).
    pub fn parse(s: &str) -> Result<Comparison, GateError> {
        let t = s.trim();
        let bad = || GateError::BadComparison(s.to_string());
        let (op, rest) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("=", Op::Eq),
        ]
        .iter()
        .find_map(|(p, op)| t.strip_prefix(p).map(|r| (*op, r)))
        .ok_or_else(bad)?;
        let rest = rest.trim();
        // Only plain decimal numbers: `inf`, `nan` and friends are refused.
        if rest.is_empty()
            || !rest
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        {
            return Err(bad());
        }
        let threshold: f64 = rest.parse().map_err(|_| bad())?;
        if !threshold.is_finite() {
            return Err(bad());
        }
        Ok(Comparison { op, threshold })
    }

    /// Whether `v` satisfies the comparison; NaN never does.
    pub fn holds(&self, v: f64) -> bool {
        if v.is_nan() {
            return false;
        }
        let t = self.threshold;
        match self.op {
            Op::Lt => v < t,
            Op::Le => v <= t,
            Op::Gt => v > t,
            Op::Ge => v >= t,
            Op::Eq => v == t,
            Op::Ne => v != t,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.threshold)
    }
}

/// What an empty (or NaN) result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnEmpty {
    /// The gate fails (the default: no data is not good news).
    Fail,
    /// The gate passes (that series is ignored).
    Pass,
    /// Ask again until the gate's timeout, then fail.
    Wait,
}

impl OnEmpty {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            OnEmpty::Fail => "fail",
            OnEmpty::Pass => "pass",
            OnEmpty::Wait => "wait",
        }
    }

    /// Parses `fail`, `pass` or `wait`.
    pub fn parse(s: &str) -> Option<OnEmpty> {
        Some(match s {
            "fail" => OnEmpty::Fail,
            "pass" => OnEmpty::Pass,
            "wait" => OnEmpty::Wait,
            _ => return None,
        })
    }
}

/// When a gate is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// Once every component is deployed and healthy, before the suites.
    Deploy,
    /// After the suites (right after the deploy when none runs).
    Tests,
}

impl When {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            When::Deploy => "deploy",
            When::Tests => "tests",
        }
    }

    /// Parses `deploy` or `tests`.
    pub fn parse(s: &str) -> Option<When> {
        Some(match s {
            "deploy" => When::Deploy,
            "tests" => When::Tests,
            _ => return None,
        })
    }
}

/// One series of a result: its labels and its value as Prometheus wrote
/// it (`"0.5"`, `"NaN"`, `"+Inf"`), kept as text so a report shows exactly
/// what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Labels (none for a scalar).
    pub metric: BTreeMap<String, String>,
    /// The value.
    pub value: String,
}

impl Sample {
    /// The value as a number (`NaN` when it is not one).
    pub fn number(&self) -> f64 {
        parse_value(&self.value)
    }

    /// `{a="b"} 0.5`, for reasons.
    pub fn describe(&self) -> String {
        let labels: Vec<String> = self.metric.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{{{}}} {}", labels.join(","), self.value)
    }
}

/// A Prometheus sample value: numbers, `NaN`, `+Inf`, `-Inf`; anything else is NaN.
pub fn parse_value(s: &str) -> f64 {
    match s.trim() {
        "+Inf" | "Inf" | "inf" | "+inf" => f64::INFINITY,
        "-Inf" | "-inf" => f64::NEG_INFINITY,
        t => t.parse().unwrap_or(f64::NAN),
    }
}

/// The samples of an instant-query answer (`GET /api/v1/query`): a vector
/// (one sample per series) or a scalar (one sample without labels).
pub fn parse_answer(body: &serde_json::Value) -> Result<Vec<Sample>, GateError> {
    let short = |v: &serde_json::Value| v.to_string().chars().take(200).collect::<String>();
    match body.get("status").and_then(|s| s.as_str()) {
        Some("success") => {}
        Some("error") => {
            let kind = body.get("errorType").and_then(|s| s.as_str()).unwrap_or("error");
            let msg = body.get("error").and_then(|s| s.as_str()).unwrap_or("");
            return Err(GateError::Refused(format!("{kind}: {msg}")));
        }
        _ => return Err(GateError::BadAnswer(short(body))),
    }
    let data = body.get("data").ok_or_else(|| GateError::BadAnswer(short(body)))?;
    let value_of = |pair: &serde_json::Value| -> Result<String, GateError> {
        pair.get(1)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| GateError::BadAnswer(format!("a sample without a value: {}", short(pair))))
    };
    match data.get("resultType").and_then(|s| s.as_str()) {
        Some("vector") => {
            let list = data
                .get("result")
                .and_then(|r| r.as_array())
                .ok_or_else(|| GateError::BadAnswer(short(data)))?;
            list.iter()
                .map(|s| {
                    let metric = s
                        .get("metric")
                        .and_then(|m| m.as_object())
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let value = value_of(s.get("value").unwrap_or(&serde_json::Value::Null))?;
                    Ok(Sample { metric, value })
                })
                .collect()
        }
        Some("scalar") => Ok(vec![Sample {
            metric: BTreeMap::new(),
            value: value_of(data.get("result").unwrap_or(&serde_json::Value::Null))?,
        }]),
        Some(other) => Err(GateError::BadAnswer(format!(
            "a {other} result; a gate's query must give an instant vector or a scalar"
        ))),
        None => Err(GateError::BadAnswer(short(data))),
    }
}

/// A gate's verdict on one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every series satisfies the comparison (series without data as `on_empty` says).
    Pass(String),
    /// At least one series does not (or no data, with `on_empty = "fail"`).
    Fail(String),
    /// No data yet and `on_empty = "wait"`: ask again.
    Wait(String),
}

impl Verdict {
    /// The reason.
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Pass(r) | Verdict::Fail(r) | Verdict::Wait(r) => r,
        }
    }
}

/// Most series named in a reason.
const NAMED: usize = 5;

/// Judges one answer: every series must satisfy `pass`; no series, or a
/// NaN value, is handled by `on_empty`.
pub fn evaluate(pass: &Comparison, on_empty: OnEmpty, samples: &[Sample]) -> Verdict {
    if samples.is_empty() {
        return match on_empty {
            OnEmpty::Fail => Verdict::Fail("the query returned no series (on_empty = \"fail\")".into()),
            OnEmpty::Pass => Verdict::Pass("the query returned no series (on_empty = \"pass\")".into()),
            OnEmpty::Wait => Verdict::Wait("the query returned no series yet (on_empty = \"wait\")".into()),
        };
    }
    let mut failing = Vec::new();
    let mut empty = Vec::new();
    for s in samples {
        let v = s.number();
        if v.is_nan() {
            empty.push(s);
        } else if !pass.holds(v) {
            failing.push(s);
        }
    }
    let list = |v: &[&Sample]| {
        let mut names: Vec<String> = v.iter().take(NAMED).map(|s| s.describe()).collect();
        if v.len() > NAMED {
            names.push(format!("and {} more", v.len() - NAMED));
        }
        names.join("; ")
    };
    if !failing.is_empty() {
        return Verdict::Fail(format!(
            "{} of {} series not {pass}: {}",
            failing.len(),
            samples.len(),
            list(&failing)
        ));
    }
    if !empty.is_empty() {
        let what = format!("{} of {} series NaN: {}", empty.len(), samples.len(), list(&empty));
        match on_empty {
            OnEmpty::Fail => return Verdict::Fail(format!("{what} (on_empty = \"fail\")")),
            OnEmpty::Wait => return Verdict::Wait(format!("{what} (on_empty = \"wait\")")),
            OnEmpty::Pass if empty.len() == samples.len() => {
                return Verdict::Pass(format!("{what} (on_empty = \"pass\")"));
            }
            OnEmpty::Pass => {}
        }
    }
    Verdict::Pass(format!(
        "{} series {pass}",
        if samples.len() == 1 {
            "the".to_string()
        } else {
            format!("all {}", samples.len() - empty.len())
        }
    ))
}

/// Placeholders a gate's `query` may use.
pub const QUERY_PLACEHOLDERS: &[&str] = &["environment", "instance", "slot", "cycle", "manifest", "component"];

/// The query with its placeholders filled in: `{environment}` and
/// `{instance}` (the environment instance, `dev-2`), `{slot}`, `{cycle}`,
/// `{manifest}` and `{component}` (when the gate runs per component).
///
/// PromQL has braces of its own (`up{job="x"}`): a placeholder is only a
/// `{` directly followed by lowercase letters and `_` and then `}`, which
/// is never valid PromQL; everything else is left as it is.
pub fn resolve_query(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match placeholder(after).and_then(|k| values.iter().find(|(n, _)| *n == k)) {
            Some((k, v)) => {
                out.push_str(v);
                rest = &after[k.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The name of the placeholder `text` starts with (after its `{`), if it is one.
fn placeholder(text: &str) -> Option<&str> {
    let end = text.find('}')?;
    let name = &text[..end];
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')).then_some(name)
}

/// Placeholders (`{name}`) of a query that are not in `known`.
pub fn unknown_placeholders<'a>(template: &'a str, known: &[&str]) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(name) = placeholder(rest)
            && !known.contains(&name)
        {
            found.push(name);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(labels: &[(&str, &str)], v: &str) -> Sample {
        Sample {
            metric: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            value: v.to_string(),
        }
    }

    #[test]
    fn comparisons_parse() {
        for (text, op, t) in [
            ("< 0.01", Op::Lt, 0.01),
            ("<=5", Op::Le, 5.0),
            ("> 0", Op::Gt, 0.0),
            (" >= -1.5e3 ", Op::Ge, -1500.0),
            ("== 1", Op::Eq, 1.0),
            ("= 1", Op::Eq, 1.0),
            ("!= 0", Op::Ne, 0.0),
        ] {
            assert_eq!(Comparison::parse(text), Ok(Comparison { op, threshold: t }), "{text}");
        }
        for bad in ["", "0.01", "<", "< abc", "< NaN", "< inf", "<< 1", "~ 1", "< 1 2"] {
            assert!(Comparison::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Comparison::parse("<0.01").map(|c| c.to_string()),
            Ok("< 0.01".to_string())
        );
    }

    #[test]
    fn nan_never_holds_and_infinities_compare() {
        let lt = Comparison::parse("< 1").expect("valid");
        assert!(!lt.holds(f64::NAN));
        assert!(lt.holds(f64::NEG_INFINITY));
        assert!(!lt.holds(f64::INFINITY));
        let ne = Comparison::parse("!= 0").expect("valid");
        assert!(!ne.holds(f64::NAN), "not even !=");
    }

    #[test]
    fn every_series_must_pass() {
        let lt = Comparison::parse("< 0.01").expect("valid");
        let ok = [s(&[("job", "a")], "0"), s(&[("job", "b")], "0.005")];
        assert!(matches!(evaluate(&lt, OnEmpty::Fail, &ok), Verdict::Pass(_)));
        let mixed = [s(&[("job", "a")], "0"), s(&[("job", "b")], "0.5")];
        match evaluate(&lt, OnEmpty::Fail, &mixed) {
            Verdict::Fail(r) => assert_eq!(r, "1 of 2 series not < 0.01: {job=\"b\"} 0.5"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn empty_and_nan_follow_on_empty() {
        let eq = Comparison::parse("== 1").expect("valid");
        assert!(matches!(evaluate(&eq, OnEmpty::Fail, &[]), Verdict::Fail(_)));
        assert!(matches!(evaluate(&eq, OnEmpty::Pass, &[]), Verdict::Pass(_)));
        assert!(matches!(evaluate(&eq, OnEmpty::Wait, &[]), Verdict::Wait(_)));
        let nan = [s(&[], "NaN"), s(&[("a", "1")], "1")];
        assert!(matches!(evaluate(&eq, OnEmpty::Fail, &nan), Verdict::Fail(_)));
        assert!(matches!(evaluate(&eq, OnEmpty::Pass, &nan), Verdict::Pass(_)));
        assert!(matches!(evaluate(&eq, OnEmpty::Wait, &nan), Verdict::Wait(_)));
        // A real failure wins over waiting.
        let bad = [s(&[], "NaN"), s(&[("a", "1")], "2")];
        assert!(matches!(evaluate(&eq, OnEmpty::Wait, &bad), Verdict::Fail(_)));
    }

    #[test]
    fn answers_parse() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"__name__":"up","job":"greenroom"},"value":[1700000000.1,"1"]}]}}"#,
        )
        .expect("json");
        let got = parse_answer(&v).expect("vector");
        assert_eq!(got, vec![s(&[("__name__", "up"), ("job", "greenroom")], "1")]);
        let v: serde_json::Value =
            serde_json::from_str(r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"NaN"]}}"#)
                .expect("json");
        assert!(parse_answer(&v).expect("scalar")[0].number().is_nan());
        let v: serde_json::Value =
            serde_json::from_str(r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#)
                .expect("json");
        assert_eq!(
            parse_answer(&v),
            Err(GateError::Refused("bad_data: parse error at char 3".into()))
        );
        let v: serde_json::Value =
            serde_json::from_str(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#).expect("json");
        assert!(parse_answer(&v).is_err());
        assert!(parse_answer(&serde_json::json!([1, 2])).is_err());
    }

    #[test]
    fn placeholders_are_not_promql_braces() {
        let q = "sum(rate(x{job=\"{component}\",env=~\"{environment}|{x}\"}[5m])) by (le) {}";
        assert_eq!(
            resolve_query(q, &[("component", "ogr"), ("environment", "dev-1")]),
            "sum(rate(x{job=\"ogr\",env=~\"dev-1|{x}\"}[5m])) by (le) {}"
        );
        assert_eq!(unknown_placeholders(q, QUERY_PLACEHOLDERS), vec!["x"]);
        assert!(unknown_placeholders("up{job=\"a\"}", QUERY_PLACEHOLDERS).is_empty());
    }

    #[test]
    fn queries_resolve() {
        assert_eq!(
            resolve_query(
                "greenroom_paused{environment=\"{environment}\"} + {cycle}",
                &[("environment", "solo"), ("cycle", "7")]
            ),
            "greenroom_paused{environment=\"solo\"} + 7"
        );
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Lt),
            Just(Op::Le),
            Just(Op::Gt),
            Just(Op::Ge),
            Just(Op::Eq),
            Just(Op::Ne)
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<f64>().prop_map(|f| f.to_string()),
            Just("NaN".to_string()),
            Just("+Inf".to_string()),
            Just("-Inf".to_string()),
            "[ -~]{0,8}",
        ]
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,16}") {
            let _ = Comparison::parse(&text);
        }

        #[test]
        fn written_comparisons_read_back(op in op(), t in -1e9f64..1e9) {
            let c = Comparison { op, threshold: t };
            prop_assert_eq!(Comparison::parse(&c.to_string()), Ok(c));
        }

        /// Total: each number either satisfies a comparison or its
        /// complement, except NaN, which satisfies none.
        #[test]
        fn comparisons_are_total(t in -1e6f64..1e6, v in any::<f64>()) {
            let pairs = [(Op::Lt, Op::Ge), (Op::Le, Op::Gt), (Op::Eq, Op::Ne)];
            for (a, b) in pairs {
                let x = Comparison { op: a, threshold: t }.holds(v);
                let y = Comparison { op: b, threshold: t }.holds(v);
                if v.is_nan() {
                    prop_assert!(!x && !y);
                } else {
                    prop_assert!(x != y);
                }
            }
        }

        /// Every series must pass: the verdict is Pass iff no series fails
        /// and no series lacks data (unless on_empty says pass).
        #[test]
        fn verdicts_follow_every_series(op in op(), t in -10f64..10.0, values in proptest::collection::vec(value(), 0..6), on_empty in prop_oneof![Just(OnEmpty::Fail), Just(OnEmpty::Pass), Just(OnEmpty::Wait)]) {
            let c = Comparison { op, threshold: t };
            let samples: Vec<Sample> = values.iter().map(|v| s(&[], v)).collect();
            let verdict = evaluate(&c, on_empty, &samples);
            let any_fail = samples.iter().any(|s| !s.number().is_nan() && !c.holds(s.number()));
            let any_empty = samples.is_empty() || samples.iter().any(|s| s.number().is_nan());
            let want_pass = !any_fail && (!any_empty || on_empty == OnEmpty::Pass);
            prop_assert_eq!(matches!(verdict, Verdict::Pass(_)), want_pass, "{:?}", verdict);
            prop_assert_eq!(matches!(verdict, Verdict::Wait(_)), !any_fail && any_empty && on_empty == OnEmpty::Wait);
        }

        #[test]
        fn resolving_never_panics(text in "[{}a-z_=\"x ]{0,40}") {
            let _ = resolve_query(&text, &[("component", "c"), ("x", "")]);
            let _ = unknown_placeholders(&text, QUERY_PLACEHOLDERS);
        }

        #[test]
        fn answers_never_panic(text in "\\PC{0,64}") {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                let _ = parse_answer(&v);
            }
        }
    }
}
