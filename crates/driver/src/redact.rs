//! Redaction of known secret values from log lines.
//!
//! Shared by the supervisor (component logs) and `run_command` (deploy/stop
//! logs). It must never log or expose the secrets it holds (its `Debug` does
//! not print them).

use std::borrow::Cow;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not redacted: they would mangle ordinary text
/// ("1", "yes") without protecting anything.
pub const MIN_SECRET_LEN: usize = 4;

/// Replaces every occurrence of each known secret value with `[redacted]`.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Distinct secrets, longest first so that a secret containing another is
    /// replaced whole.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    /// Builds a redactor; empty values and values shorter than 4 characters
    /// are ignored, duplicates are removed.
    pub fn new(secrets: &[String]) -> Self {
        let mut secrets: Vec<String> = secrets
            .iter()
            .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
            .cloned()
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Redactor { secrets }
    }

    /// True when there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Returns `line` with every secret replaced; borrows when nothing matched.
    pub fn redact<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut out: Cow<'a, str> = Cow::Borrowed(line);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }

    /// Redacts a raw line of process output (invalid UTF-8 is replaced).
    pub fn redact_bytes(&self, line: &[u8]) -> String {
        let text = String::from_utf8_lossy(line);
        self.redact(&text).into_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence_and_borrows_when_clean() {
        let r = Redactor::new(&["hunter22".into(), "abc".into(), String::new()]);
        assert_eq!(r.redact("pw=hunter22 again hunter22"), "pw=[redacted] again [redacted]");
        assert!(matches!(r.redact("abc is short"), Cow::Borrowed(_)));
    }

    #[test]
    fn longest_secret_first() {
        let r = Redactor::new(&["token".into(), "token-extended".into()]);
        assert_eq!(r.redact("x token-extended y token"), "x [redacted] y [redacted]");
        assert_eq!(format!("{r:?}"), "Redactor { secrets: 2 }");
    }
}
