//! Deploy blockers (issue #5 point 6), pure: freeze windows and what
//! Alertmanager says, decided against a given time.
//!
//! A cycle may start when no firing alert matches the environment's
//! `block_on_alerts` matchers (the server asks Alertmanager's API v2 with
//! them as its `filter`), no `deny` freeze window covering the environment
//! is active, and — when `allow` windows are declared for it — one of them
//! is active. Deny wins over allow. A window is a date range (`from`,
//! `until`) or a cron-like expression of the minutes it covers (`minute
//! hour day-of-month month day-of-week`, UTC, with `*`, lists, ranges and
//! steps: `* 0-5 * * 6,0` is the small hours of weekends).

use crate::time::Millis;
use std::fmt;

/// One field of a cron expression: which values it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    allowed: Vec<bool>,
}

impl Field {
    fn parse(text: &str, lo: u32, hi: u32, what: &str) -> Result<Field, String> {
        let mut allowed = vec![false; (hi + 1) as usize];
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (
                    r,
                    s.parse::<u32>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| format!("{what}: `{s}` is not a step (a positive number)"))?,
                ),
                None => (part, 1),
            };
            let num = |s: &str| -> Result<u32, String> {
                let n: u32 = s.parse().map_err(|_| format!("{what}: `{s}` is not a number"))?;
                // Day of week: 7 is Sunday too.
                let n = if what == "day of week" && n == 7 { 0 } else { n };
                if n < lo || n > hi {
                    return Err(format!("{what}: {n} is outside {lo}-{hi}"));
                }
                Ok(n)
            };
            let (a, b) = match range {
                "*" => (lo, hi),
                r => match r.split_once('-') {
                    Some((a, b)) => (num(a)?, num(b)?),
                    None => {
                        let n = num(r)?;
                        (n, if step > 1 { hi } else { n })
                    }
                },
            };
            if a > b {
                return Err(format!("{what}: the range {a}-{b} is backwards"));
            }
            let mut v = a;
            while v <= b {
                allowed[v as usize] = true;
                v += step;
            }
        }
        Ok(Field { allowed })
    }

    fn has(&self, v: u32) -> bool {
        self.allowed.get(v as usize).copied().unwrap_or(false)
    }
}

/// A cron-like expression of minutes (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minute: Field,
    hour: Field,
    day: Field,
    month: Field,
    weekday: Field,
}

impl Cron {
    /// Parses `minute hour day-of-month month day-of-week`.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let f: Vec<&str> = text.split_whitespace().collect();
        let [mi, h, d, mo, w] = f.as_slice() else {
            return Err(format!(
                "`{text}` has {} fields; a cron expression has 5: minute hour day-of-month month day-of-week",
                f.len()
            ));
        };
        Ok(Cron {
            text: text.to_string(),
            minute: Field::parse(mi, 0, 59, "minute")?,
            hour: Field::parse(h, 0, 23, "hour")?,
            day: Field::parse(d, 1, 31, "day of month")?,
            month: Field::parse(mo, 1, 12, "month")?,
            weekday: Field::parse(w, 0, 6, "day of week")?,
        })
    }

    /// Whether the minute holding `at` is one of the expression's.
    pub fn covers(&self, at: Millis) -> bool {
        let c = Civil::of(at);
        self.minute.has(c.minute)
            && self.hour.has(c.hour)
            && self.day.has(c.day)
            && self.month.has(c.month)
            && self.weekday.has(c.weekday)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A UTC calendar time, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    /// 0 = Sunday.
    weekday: u32,
}

impl Civil {
    fn of(at: Millis) -> Civil {
        let secs = at.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let _year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            month: month as u32,
            day: day as u32,
            hour: (rem / 3600) as u32,
            minute: ((rem % 3600) / 60) as u32,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }
}

/// Whether a window blocks deploys or allows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    /// No deploys while it is active (a freeze).
    Deny,
    /// Deploys only while one such window is active (deploy hours).
    Allow,
}

/// When a window is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    /// From `from` (inclusive) until `until` (exclusive).
    Dates {
        /// Start.
        from: Millis,
        /// End.
        until: Millis,
    },
    /// The minutes a cron expression covers.
    Cron(Cron),
}

/// A `[[freeze]]` window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Its name, quoted in reasons.
    pub name: String,
    /// Deny or allow.
    pub kind: WindowKind,
    /// The environments it covers (empty: all).
    pub environments: Vec<String>,
    /// When.
    pub span: Span,
}

impl Window {
    fn covers_env(&self, env: &str, group: &str) -> bool {
        self.environments.is_empty() || self.environments.iter().any(|e| e == env || e == group)
    }

    fn active(&self, at: Millis) -> bool {
        match &self.span {
            Span::Dates { from, until } => *from <= at && at < *until,
            Span::Cron(c) => c.covers(at),
        }
    }

    fn describe(&self) -> String {
        match &self.span {
            Span::Dates { until, .. } => format!("freeze window `{}` until {}", self.name, crate::time::format(*until)),
            Span::Cron(c) => format!("freeze window `{}` ({c}, UTC)", self.name),
        }
    }
}

/// Why the windows block a deploy of `env` (an instance of `group`) at
/// `at`, if they do.
pub fn frozen(windows: &[Window], env: &str, group: &str, at: Millis) -> Option<String> {
    let mine: Vec<&Window> = windows.iter().filter(|w| w.covers_env(env, group)).collect();
    if let Some(w) = mine.iter().find(|w| w.kind == WindowKind::Deny && w.active(at)) {
        return Some(format!("{} is active", w.describe()));
    }
    let allows: Vec<&&Window> = mine.iter().filter(|w| w.kind == WindowKind::Allow).collect();
    if !allows.is_empty() && !allows.iter().any(|w| w.active(at)) {
        let names: Vec<String> = allows.iter().map(|w| format!("`{}`", w.name)).collect();
        return Some(format!("outside every deploy window ({})", names.join(", ")));
    }
    None
}

/// An Alertmanager matcher: `label="value"`, `!=`, `=~`, `!~`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// The label.
    pub label: String,
    /// `=`, `!=`, `=~` or `!~`.
    pub op: String,
    /// The value (unquoted).
    pub value: String,
}

impl Matcher {
    /// Parses `label="value"` (the value quoted, `\"` and `\\` escaped).
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let t = text.trim();
        let end = t
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(t.len());
        let label = &t[..end];
        if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("`{text}` does not start with a label name"));
        }
        let rest = t[end..].trim_start();
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| format!("`{text}`: expected =, !=, =~ or !~ after `{label}`"))?;
        let quoted = rest[op.len()..].trim();
        let inner = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .ok_or_else(|| format!("`{text}`: the value must be in double quotes"))?;
        let mut value = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('"' | '\\')) => value.push(e),
                    Some('n') => value.push('\n'),
                    _ => return Err(format!("`{text}`: a bad escape in the value")),
                },
                '"' => return Err(format!("`{text}`: an unescaped quote in the value")),
                c => value.push(c),
            }
        }
        Ok(Matcher {
            label: label.to_string(),
            op: op.to_string(),
            value,
        })
    }

    /// As Alertmanager's `filter` parameter wants it.
    pub fn filter(&self) -> String {
        let v = self
            .value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        format!("{}{}\"{v}\"", self.label, self.op)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.filter())
    }
}

/// Why firing alerts block a deploy, from Alertmanager's answer to
/// `GET /api/v2/alerts` with the environment's matchers as filters: `None`
/// when none fires. Alerts that are silenced or inhibited do not block.
pub fn alerts_block(answer: &serde_json::Value) -> Result<Option<String>, String> {
    let alerts = answer
        .as_array()
        .ok_or_else(|| "Alertmanager did not answer a list of alerts".to_string())?;
    let firing: Vec<String> = alerts
        .iter()
        .filter(|a| a["status"]["state"].as_str().unwrap_or("active") == "active")
        .map(|a| {
            let name = a["labels"]["alertname"].as_str().unwrap_or("unnamed alert");
            match a["labels"]["severity"].as_str() {
                Some(s) => format!("{name} ({s})"),
                None => name.to_string(),
            }
        })
        .collect();
    Ok(match firing.as_slice() {
        [] => None,
        some => Some(format!(
            "{} firing alert(s) in Alertmanager: {}",
            some.len(),
            some.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> Millis {
        let t = humantime::parse_rfc3339(text).expect("a time");
        i64::try_from(t.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis()).expect("fits")
    }

    #[test]
    fn calendar_fields_are_right() {
        let c = Civil::of(at("2026-11-23T17:31:05Z"));
        assert_eq!(
            (c.month, c.day, c.hour, c.minute, c.weekday),
            (11, 23, 17, 31, 1),
            "a Monday"
        );
        let c = Civil::of(at("2024-02-29T00:00:00Z"));
        assert_eq!((c.month, c.day, c.weekday), (2, 29, 4), "a leap day, Thursday");
        let c = Civil::of(-60_000); // 1969-12-31T23:59:00Z
        assert_eq!((c.month, c.day, c.hour, c.weekday), (12, 31, 23, 3));
    }

    #[test]
    fn cron_expressions() {
        let weekend_nights = Cron::parse("* 0-5 * * 6,0").expect("valid");
        assert!(weekend_nights.covers(at("2026-11-22T03:10:00Z")), "Sunday 03:10");
        assert!(!weekend_nights.covers(at("2026-11-22T06:00:00Z")));
        assert!(!weekend_nights.covers(at("2026-11-23T03:10:00Z")), "Monday");
        let sunday7 = Cron::parse("* * * * 7").expect("7 is Sunday");
        assert!(sunday7.covers(at("2026-11-22T12:00:00Z")));
        let quarter = Cron::parse("*/15 9 1 1,12 *").expect("valid");
        assert!(quarter.covers(at("2026-12-01T09:45:00Z")));
        assert!(!quarter.covers(at("2026-12-01T09:46:00Z")));
        for (bad, why) in [
            ("* * * *", "has 4 fields"),
            ("60 * * * *", "minute: 60 is outside 0-59"),
            ("* 5-2 * * *", "backwards"),
            ("* * * * mon", "not a number"),
            ("*/0 * * * *", "not a step"),
        ] {
            let e = Cron::parse(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn deny_wins_over_allow_and_allow_windows_are_deploy_hours() {
        let christmas = Window {
            name: "christmas".into(),
            kind: WindowKind::Deny,
            environments: vec![],
            span: Span::Dates {
                from: at("2026-12-20T00:00:00Z"),
                until: at("2027-01-03T00:00:00Z"),
            },
        };
        let office = Window {
            name: "office-hours".into(),
            kind: WindowKind::Allow,
            environments: vec!["staging".into()],
            span: Span::Cron(Cron::parse("* 8-17 * * 1-5").expect("valid")),
        };
        let w = [christmas, office];
        assert_eq!(frozen(&w, "staging", "staging", at("2026-11-23T10:00:00Z")), None);
        let night = frozen(&w, "staging", "staging", at("2026-11-23T22:00:00Z")).expect("blocked");
        assert!(
            night.contains("outside every deploy window (`office-hours`)"),
            "{night}"
        );
        assert_eq!(
            frozen(&w, "dev-1", "dev", at("2026-11-23T22:00:00Z")),
            None,
            "office hours are staging's only"
        );
        let xmas = frozen(&w, "staging", "staging", at("2026-12-22T10:00:00Z")).expect("blocked");
        assert!(xmas.contains("`christmas` until 2027-01-03"), "deny wins: {xmas}");
        assert!(
            frozen(&w, "dev-1", "dev", at("2026-12-22T10:00:00Z")).is_some(),
            "a freeze for all"
        );
    }

    #[test]
    fn matchers_parse_and_quote_back() {
        let m = Matcher::parse(r#"severity=~"critical|page""#).expect("valid");
        assert_eq!(
            (m.label.as_str(), m.op.as_str(), m.value.as_str()),
            ("severity", "=~", "critical|page")
        );
        assert_eq!(m.filter(), r#"severity=~"critical|page""#);
        let q = Matcher::parse(r#"env != "a \"b\"""#).expect("valid");
        assert_eq!(q.value, "a \"b\"");
        assert_eq!(Matcher::parse(&q.filter()).expect("round trip"), q);
        for bad in ["=\"x\"", "env", "env=x", "env=\"x", "9env=\"x\"", r#"env="a"b""#] {
            assert!(Matcher::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn firing_alerts_block() {
        let answer = serde_json::json!([
            {"labels": {"alertname": "HighErrorRate", "severity": "critical"}, "status": {"state": "active"}},
            {"labels": {"alertname": "Quiet"}, "status": {"state": "suppressed"}}
        ]);
        let why = alerts_block(&answer).expect("a list").expect("blocked");
        assert_eq!(why, "1 firing alert(s) in Alertmanager: HighErrorRate (critical)");
        assert_eq!(alerts_block(&serde_json::json!([])).expect("a list"), None);
        assert!(alerts_block(&serde_json::json!({"error": "x"})).is_err());
    }

    proptest! {
        #[test]
        fn cron_parsing_never_panics(s in "[0-9*,/ -]{0,40}") {
            let _ = Cron::parse(&s);
        }

        #[test]
        fn the_weekday_advances_by_one_each_day(day in -100_000i64..100_000) {
            let a = Civil::of(day * 86_400_000);
            let b = Civil::of((day + 1) * 86_400_000);
            prop_assert_eq!((a.weekday + 1) % 7, b.weekday);
        }

        #[test]
        fn star_covers_every_minute(t in -4_000_000_000_000i64..4_000_000_000_000) {
            prop_assert!(Cron::parse("* * * * *").expect("valid").covers(t));
        }

        #[test]
        fn matchers_round_trip(label in "[a-z_][a-z0-9_]{0,10}", op in prop::sample::select(vec!["=", "!=", "=~", "!~"]), value in "\\PC{0,20}") {
            let m = Matcher { label, op: op.to_string(), value };
            prop_assert_eq!(Matcher::parse(&m.filter()).expect("parses"), m);
        }
    }
}
