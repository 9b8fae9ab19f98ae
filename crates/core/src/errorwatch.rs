//! The error watch (issue #6 point 4), pure: which lines of a component's
//! log window are errors, their *signatures*, and which signatures are new
//! compared with the previous healthy cycle's window.
//!
//! A line is an error when one of the component's `error_patterns` (Rust
//! regular expressions, matched anywhere in the line, case-sensitive; a
//! plain word such as `ERROR` is a regex matching itself) matches it. Its
//! signature is the line with what changes from one occurrence to the next
//! taken out: a leading timestamp is removed, UUIDs become `<uuid>`, hex ids
//! (`0x…`, or 8+ hex digits with a digit) `<hex>`, and digit runs `<n>`;
//! whitespace is collapsed. Errors are grouped by signature with their count
//! and first line; a signature is **new** iff the previous healthy cycle's
//! window did not have it. The I/O (reading log windows, running `logs`
//! commands, keeping each cycle's signatures) is `src/errorwatch.rs`.

use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// The patterns a component without `error_patterns` is watched for.
pub const DEFAULT_PATTERNS: &[&str] = &["ERROR", "FATAL", "panicked at", "Traceback", "ForeignKeyViolation"];

/// Longest signature kept (characters).
const MAX_SIGNATURE: usize = 300;
/// Longest first line kept in a report (characters).
const MAX_LINE: usize = 1000;

/// A pattern that is not a regular expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{pattern}` is not a regular expression: {reason}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// What the regex parser said (first line).
    pub reason: String,
}

/// Compiled error patterns.
#[derive(Debug, Clone)]
pub struct Patterns(RegexSet);

impl Patterns {
    /// Compiles `patterns` (regular expressions).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Patterns, PatternError> {
        for p in patterns {
            check(p.as_ref())?;
        }
        RegexSet::new(patterns.iter().map(|p| p.as_ref()))
            .map(Patterns)
            .map_err(|e| PatternError {
                pattern: patterns.iter().map(|p| p.as_ref()).collect::<Vec<_>>().join(", "),
                reason: first_line(&e.to_string()),
            })
    }

    /// Whether `line` is an error line.
    pub fn matches(&self, line: &str) -> bool {
        self.0.is_match(line)
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .or_else(|| s.lines().next())
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

/// Checks one pattern (for config validation).
pub fn check(pattern: &str) -> Result<(), PatternError> {
    if pattern.is_empty() {
        return Err(PatternError {
            pattern: String::new(),
            reason: "an empty pattern matches every line".into(),
        });
    }
    Regex::new(pattern).map(|_| ()).map_err(|e| PatternError {
        pattern: pattern.to_string(),
        reason: first_line(&e.to_string()),
    })
}

fn re(pattern: &str) -> Regex {
    // The patterns below are constants, checked by the tests; an invalid one
    // would panic on first use in every test run.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("constant regex")
}

static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?|[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}|\d{2}:\d{2}:\d{2}(\.\d+)?)\]?\s*",
    )
});
static UUID: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"));
static DIGITS: LazyLock<Regex> = LazyLock::new(|| re(r"\d+"));
static SPACE: LazyLock<Regex> = LazyLock::new(|| re(r"\s+"));

/// The signature of an error line (see the module doc).
pub fn signature(line: &str) -> String {
    let s = TIMESTAMP.replace(line, "");
    let s = UUID.replace_all(&s, "<uuid>");
    let s = hex_ids(&s);
    let s = DIGITS.replace_all(&s, "<n>");
    let s = SPACE.replace_all(s.trim(), " ");
    truncate(&s, MAX_SIGNATURE)
}

/// Replaces hex ids in runs of ASCII letters and digits: `0x…`, and runs
/// of 8+ hex digits with at least one digit and one letter (`3f92913d27`,
/// a commit); `_` separates runs, so `fk_rails_3f92913d27` keeps its words.
fn hex_ids(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let r = run.as_str();
        let hex = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_hexdigit());
        let is_id = r.strip_prefix("0x").is_some_and(hex)
            || (r.len() >= 8
                && hex(r)
                && r.chars().any(|c| c.is_ascii_digit())
                && r.chars().any(|c| c.is_ascii_alphabetic()));
        out.push_str(if is_id { "<hex>" } else { r });
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The errors of one signature in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorGroup {
    /// What the lines have in common.
    pub signature: String,
    /// How many lines.
    pub count: u64,
    /// The first of them, as logged (already redacted by the driver).
    pub first_line: String,
}

/// The error lines of a window, grouped by signature, in order of first appearance.
pub fn scan(text: &str, patterns: &Patterns) -> Vec<ErrorGroup> {
    let mut groups: Vec<ErrorGroup> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if !patterns.matches(line) {
            continue;
        }
        let sig = signature(line);
        match index.get(&sig) {
            Some(&i) => groups[i].count += 1,
            None => {
                index.insert(sig.clone(), groups.len());
                groups.push(ErrorGroup {
                    signature: sig,
                    count: 1,
                    first_line: truncate(line, MAX_LINE),
                });
            }
        }
    }
    groups
}

/// A window's errors split against the previous healthy cycle's signatures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// Signatures the previous healthy cycle did not have.
    pub new: Vec<ErrorGroup>,
    /// Lines whose signature it had.
    pub known: u64,
}

/// Splits `now` into new groups and a count of known lines. With no
/// previous healthy cycle (`before` is `None`), every error is new.
pub fn compare(now: &[ErrorGroup], before: Option<&BTreeSet<String>>) -> Comparison {
    let mut out = Comparison::default();
    for g in now {
        if before.is_some_and(|b| b.contains(&g.signature)) {
            out.known += g.count;
        } else {
            out.new.push(g.clone());
        }
    }
    out
}

/// What a new error means for the cycle (`new_errors` of an environment or suite).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NewErrors {
    /// Reported only (the default).
    #[default]
    Report,
    /// Fails the cycle.
    Blocking,
}

impl NewErrors {
    /// Parses `report` or `blocking`.
    pub fn parse(s: &str) -> Option<NewErrors> {
        Some(match s {
            "report" => NewErrors::Report,
            "blocking" => NewErrors::Blocking,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn defaults() -> Patterns {
        Patterns::new(DEFAULT_PATTERNS).expect("default patterns")
    }

    #[test]
    fn constant_regexes_compile() {
        for r in [&*TIMESTAMP, &*UUID, &*DIGITS, &*SPACE] {
            assert!(!r.as_str().is_empty());
        }
    }

    #[test]
    fn signatures_drop_what_varies() {
        assert_eq!(
            signature("2024-05-01T10:00:00.123Z ERROR insert on runner 41684082 failed (id 3f92913d27ab)"),
            "ERROR insert on runner <n> failed (id <hex>)"
        );
        assert_eq!(
            signature("[12:00:01] ERROR request 0xdeadbeef for 123e4567-e89b-12d3-a456-426614174000"),
            "ERROR request <hex> for <uuid>"
        );
        assert_eq!(
            signature("May  1 10:00:00 host ERROR   x"),
            signature("May 12 11:22:33 host ERROR x")
        );
        // Words are kept, even hex-looking ones without digits.
        assert_eq!(signature("ERROR deadbeef cafe"), "ERROR deadbeef cafe");
        assert_eq!(
            signature(
                "PG::ForeignKeyViolation: ERROR: insert or update on table \"group_type_ci_runner_machines_687967fa8a\" violates foreign key constraint \"fk_rails_3f92913d27\""
            ),
            "PG::ForeignKeyViolation: ERROR: insert or update on table \"group_type_ci_runner_machines_<hex>\" violates foreign key constraint \"fk_rails_<hex>\""
        );
    }

    #[test]
    fn scan_groups_counts_and_keeps_the_first_line() {
        let text = "ok\n10:00:01 ERROR ForeignKeyViolation runner 1\nfine\n10:00:02 ERROR ForeignKeyViolation runner 2\nthread 'main' panicked at src/x.rs:3:5\r\n";
        let got = scan(text, &defaults());
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].signature, "ERROR ForeignKeyViolation runner <n>");
        assert_eq!(got[0].count, 2);
        assert_eq!(got[0].first_line, "10:00:01 ERROR ForeignKeyViolation runner 1");
        assert_eq!(got[1].first_line, "thread 'main' panicked at src/x.rs:3:5");
    }

    #[test]
    fn compare_splits_new_and_known() {
        let now = scan("ERROR a 1\nERROR a 2\nERROR b\n", &defaults());
        let before: BTreeSet<String> = ["ERROR a <n>".to_string()].into();
        let c = compare(&now, Some(&before));
        assert_eq!(c.known, 2);
        assert_eq!(c.new.len(), 1);
        assert_eq!(c.new[0].signature, "ERROR b");
        // No previous healthy cycle: everything is new.
        assert_eq!(compare(&now, None).new.len(), 2);
    }

    #[test]
    fn patterns_are_checked() {
        assert!(check("ERROR").is_ok());
        assert!(check("").is_err());
        let e = check("(unclosed").expect_err("bad regex");
        assert!(e.to_string().contains("(unclosed"), "{e}");
        assert!(Patterns::new(&["a(", "b"]).is_err());
        let custom = Patterns::new(&["^WARN ", "timeout"]).expect("valid");
        assert!(custom.matches("WARN disk"));
        assert!(!custom.matches("ERROR disk"));
    }

    proptest! {
        #[test]
        fn scanning_never_panics(text in "\\PC{0,300}") {
            let groups = scan(&text, &defaults());
            let lines = text.lines().filter(|l| defaults().matches(l.trim_end_matches('\r'))).count() as u64;
            prop_assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), lines);
        }

        #[test]
        fn signatures_ignore_numbers(words in proptest::collection::vec("[a-zA-Z:]{1,8}", 1..6), a in any::<u32>(), b in any::<u32>()) {
            let base = words.join(" ");
            prop_assert_eq!(signature(&format!("ERROR {base} {a}")), signature(&format!("ERROR {base} {b}")));
        }

        /// A line is new iff its signature was absent from the previous window.
        #[test]
        fn new_iff_absent_before(now in proptest::collection::vec("(ERROR|ok) [a-c]{1,2} [0-9]{0,3}", 0..12), before in proptest::collection::vec("(ERROR|ok) [a-c]{1,2} [0-9]{0,3}", 0..12)) {
            let p = defaults();
            let old: BTreeSet<String> = scan(&before.join("\n"), &p).into_iter().map(|g| g.signature).collect();
            let groups = scan(&now.join("\n"), &p);
            let c = compare(&groups, Some(&old));
            for line in now.iter().filter(|l| p.matches(l)) {
                let sig = signature(line);
                let is_new = c.new.iter().any(|g| g.signature == sig);
                prop_assert_eq!(is_new, !old.contains(&sig), "{}", line);
            }
            let total: u64 = groups.iter().map(|g| g.count).sum();
            prop_assert_eq!(c.known + c.new.iter().map(|g| g.count).sum::<u64>(), total);
        }
    }
}
