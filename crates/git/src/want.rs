//! What can be asked of a repository, and what an answer looks like.
//!
//! Owns [`Forge`], [`Want`] and [`Resolved`], plus the validation of the
//! user-provided names inside a want (branch and tag names, commit SHAs). It
//! must never run git or touch the filesystem: validation is pure, so that a
//! malformed name is rejected before any process is started.

/// The forge hosting a repository; decides where pull requests live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forge {
    /// GitHub (and Gitea/Forgejo): pull requests under `refs/pull/N/head`.
    Github,
    /// GitLab: merge requests under `refs/merge-requests/N/head`.
    Gitlab,
}

impl Forge {
    /// The full ref name of pull (merge) request `number` on this forge.
    pub fn pull_request_ref(self, number: u64) -> String {
        match self {
            Forge::Github => format!("refs/pull/{number}/head"),
            Forge::Gitlab => format!("refs/merge-requests/{number}/head"),
        }
    }
}

/// Something to resolve to a commit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Want {
    /// A branch name such as `main` or `fix-login` (`refs/heads/NAME`).
    Branch(String),
    /// An exact tag name (`refs/tags/NAME`).
    Tag(String),
    /// A glob such as `v*` or `release-2.*`: the newest matching tag by
    /// [`compare_versions`](crate::compare_versions). `*` and `?` do not
    /// match `/`.
    TagPattern(String),
    /// A pull request (GitHub) or merge request (GitLab) by number.
    PullRequest {
        /// The pull/merge request number.
        number: u64,
        /// Which forge's ref layout to use.
        forge: Forge,
    },
    /// A commit SHA, full or abbreviated (7 to 40 hex digits; 64 for
    /// SHA-256 repositories).
    Commit(String),
    /// An exact full ref name (`refs/pending/12`): a change of a plain git
    /// repository used as a forge.
    Ref(String),
}

/// The answer to a [`Want`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resolved {
    /// The full SHA of the commit (annotated tags are peeled to their commit).
    pub commit: String,
    /// Where it came from: the full ref name (`refs/heads/main`,
    /// `refs/tags/v1.2.0`, `refs/pull/12/head`,
    /// `refs/merge-requests/3/head`), or the full SHA for [`Want::Commit`].
    pub reference: String,
}

/// Check that `name` is usable as the part after `refs/heads/` or
/// `refs/tags/`, following `git check-ref-format` (and also refusing a
/// leading `-`, so a name can never look like an option).
pub(crate) fn check_ref_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.starts_with('-') {
        return Err("it starts with `-`");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err("it has an empty path component");
    }
    if name.ends_with('.') {
        return Err("it ends with `.`");
    }
    if name.contains("..") {
        return Err("it contains `..`");
    }
    if name.contains("@{") || name == "@" {
        return Err("it contains `@{` or is `@`");
    }
    if name
        .chars()
        .any(|c| c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
    {
        return Err("it contains a space, a control character or one of ~ ^ : ? * [ \\");
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return Err("a path component starts with `.` or ends with `.lock`");
    }
    Ok(())
}

/// Whether `s` is a plausible commit SHA: 7 to 64 hex digits.
pub(crate) fn is_sha_like(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `s` is a full object name (40 or 64 lowercase hex digits).
pub(crate) fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        for ok in ["main", "fix-login", "feature/x", "v1.2.0", "release-2.1", "a_b", "ünï"] {
            assert!(check_ref_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "/a",
            "a/",
            "a//b",
            "a.",
            "a..b",
            "a@{1}",
            "@",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
            ".a",
            "a/.b",
            "a.lock",
            "a/b.lock/c",
            "a\nb",
        ] {
            assert!(check_ref_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shas() {
        assert!(is_sha_like("1a2b3c4"));
        assert!(is_sha_like("1A2B3C4"));
        assert!(!is_sha_like("1a2b3c"));
        assert!(!is_sha_like("1a2b3cg"));
        assert!(is_full_sha(&"a".repeat(40)));
        assert!(!is_full_sha(&"A".repeat(40)));
    }

    #[test]
    fn pull_request_refs() {
        assert_eq!(Forge::Github.pull_request_ref(7), "refs/pull/7/head");
        assert_eq!(Forge::Gitlab.pull_request_ref(3), "refs/merge-requests/3/head");
    }
}
