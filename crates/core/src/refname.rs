//! Git's ref-name rules (`git check-ref-format`), as a pure function.
//!
//! Every branch and tag name that comes from a user, a webhook or a comment
//! is checked here before it is used; names are then passed to git as
//! argument vectors, never through a shell. This module must stay free of
//! I/O so that it can be property-tested and fuzzed.

/// Why a name is not a valid ref name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefNameError {
    /// The name is empty.
    #[error("is empty")]
    Empty,
    /// The name starts with `-` and would read as an option.
    #[error("starts with `-`")]
    LeadingDash,
    /// The name contains a forbidden character.
    #[error("contains {0}")]
    BadChar(String),
    /// The name contains a forbidden sequence (`..`, `@{`, `//`).
    #[error("contains `{0}`")]
    BadSequence(&'static str),
    /// A `/`-separated part starts with `.` or ends with `.lock`.
    #[error("has a part `{0}` that starts with `.` or ends with `.lock`")]
    BadComponent(String),
    /// The name starts or ends with `/`, or ends with `.`.
    #[error("starts or ends with `/`, or ends with `.`")]
    BadEdge,
    /// The name is the single character `@`.
    #[error("is `@`")]
    At,
    /// The name is longer than greenroom accepts.
    #[error("is longer than 255 bytes")]
    TooLong,
}

/// Checks a short ref name (a branch or tag name such as `fix/login`)
/// against git's rules, plus two of greenroom's: no leading `-`, at most
/// 255 bytes.
pub fn check(name: &str) -> Result<(), RefNameError> {
    if name.is_empty() {
        return Err(RefNameError::Empty);
    }
    if name.len() > 255 {
        return Err(RefNameError::TooLong);
    }
    if name == "@" {
        return Err(RefNameError::At);
    }
    if name.starts_with('-') {
        return Err(RefNameError::LeadingDash);
    }
    for c in name.chars() {
        let bad = match c {
            c if (c as u32) < 0x20 || c as u32 == 0x7f => Some(format!("a control character (U+{:04X})", c as u32)),
            ' ' => Some("a space".to_string()),
            '~' | '^' | ':' | '?' | '*' | '[' | '\\' => Some(format!("`{c}`")),
            _ => None,
        };
        if let Some(what) = bad {
            return Err(RefNameError::BadChar(what));
        }
    }
    for seq in ["..", "@{", "//"] {
        if name.contains(seq) {
            return Err(RefNameError::BadSequence(seq));
        }
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return Err(RefNameError::BadEdge);
    }
    if let Some(part) = name.split('/').find(|p| p.starts_with('.') || p.ends_with(".lock")) {
        return Err(RefNameError::BadComponent(part.to_string()));
    }
    Ok(())
}

/// Checks a glob pattern over tag names (`v*`, `release-2.*`): the same
/// rules as [`check`] except that `*`, `?` and `[` are allowed.
pub fn check_pattern(pattern: &str) -> Result<(), RefNameError> {
    let stand_in: String = pattern
        .chars()
        .map(|c| if matches!(c, '*' | '?' | '[' | ']') { 'x' } else { c })
        .collect();
    check(&stand_in)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "main",
            "fix-login",
            "feature/x.y",
            "v2.3.0",
            "release/2026-11",
            "a@b",
            "ü-branch",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_what_git_rejects() {
        let cases = [
            ("", "is empty"),
            ("-rf", "starts with `-`"),
            ("a..b", "contains `..`"),
            ("a b", "contains a space"),
            ("a~1", "contains `~`"),
            ("a^", "contains `^`"),
            ("a:b", "contains `:`"),
            ("a*", "contains `*`"),
            ("a\\b", "contains `\\`"),
            ("x@{1}", "contains `@{`"),
            ("a//b", "contains `//`"),
            ("/a", "starts or ends with `/`, or ends with `.`"),
            ("a.", "starts or ends with `/`, or ends with `.`"),
            (
                "a/.hidden",
                "has a part `.hidden` that starts with `.` or ends with `.lock`",
            ),
            (
                "x.lock",
                "has a part `x.lock` that starts with `.` or ends with `.lock`",
            ),
            ("@", "is `@`"),
            ("a\u{7f}", "contains a control character (U+007F)"),
        ];
        for (name, why) in cases {
            assert_eq!(check(name).map_err(|e| e.to_string()), Err(why.to_string()), "{name:?}");
        }
    }

    #[test]
    fn shell_syntax_is_a_valid_name_and_safe_only_because_no_shell_sees_it() {
        // git accepts these; greenroom passes names as argument vectors.
        assert_eq!(check("$(reboot)"), Ok(()));
        assert_eq!(check("a;b&&c|d"), Ok(()));
    }

    #[test]
    fn patterns_allow_globs() {
        assert_eq!(check_pattern("v*"), Ok(()));
        assert_eq!(check_pattern("release-[0-9]*"), Ok(()));
        assert!(check_pattern("v*..").is_err());
    }

    proptest! {
        #[test]
        fn never_panics_and_valid_names_have_no_forbidden_bytes(s in "\\PC{0,40}") {
            if check(&s).is_ok() {
                prop_assert!(!s.contains(".."));
                prop_assert!(!s.starts_with('-'));
                prop_assert!(!s.chars().any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c)));
            }
        }

        #[test]
        fn simple_names_are_valid(s in "[a-z0-9][a-z0-9_-]{0,20}(/[a-z0-9][a-z0-9_-]{0,10}){0,3}") {
            prop_assert_eq!(check(&s), Ok(()));
        }
    }
}
