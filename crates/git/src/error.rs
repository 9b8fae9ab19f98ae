//! Errors of the git adapter.
//!
//! Owns [`GitError`] and the wording of its messages: every message names what
//! was asked, the repository (URL or path exactly as configured) and, where it
//! helps, what the user can do about it. It must never include credentials
//! beyond what the configured URL already shows, and never panic.

/// How many trailing lines of a failed command's stderr are kept in
/// [`GitError::Command`].
pub const STDERR_TAIL_LINES: usize = 20;

/// Everything that can go wrong in the git adapter.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The thing asked for (branch, tag, tag pattern, pull request, commit)
    /// does not exist in the repository, or the request names something that
    /// cannot exist (an invalid branch name).
    ///
    /// `what` describes what was asked and the problem, e.g. "branch
    /// `fix-login` does not exist"; the message adds the repository and advice.
    #[error("{}", located(what, repo, advice_not_found(what)))]
    NotFound {
        /// The repository as configured (URL or path).
        repo: String,
        /// What was asked and what is wrong with it, without the repository.
        what: String,
    },
    /// An abbreviated commit SHA matches several objects.
    #[error("{}", located(what, repo, "use more characters of the SHA, or the full SHA"))]
    Ambiguous {
        /// The repository as configured (URL or path).
        repo: String,
        /// What was asked, e.g. "commit prefix `1a2b3c4` matches several objects".
        what: String,
    },
    /// A git command failed.
    #[error("`git {args}` failed for {repo} ({status}): {stderr}")]
    Command {
        /// The repository as configured (URL or path).
        repo: String,
        /// The git arguments, joined with spaces (for display only).
        args: String,
        /// The exit status, e.g. "exit status: 128".
        status: String,
        /// The last [`STDERR_TAIL_LINES`] lines of the command's stderr, trimmed.
        stderr: String,
    },
    /// A local I/O operation (starting git, locking, creating directories)
    /// failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, including the path involved.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl GitError {
    /// Shorthand for [`GitError::NotFound`].
    pub(crate) fn not_found(repo: &str, what: impl Into<String>) -> Self {
        GitError::NotFound {
            repo: repo.to_owned(),
            what: what.into(),
        }
    }

    /// Shorthand for [`GitError::Io`].
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        GitError::Io {
            context: context.into(),
            source,
        }
    }
}

/// "WHAT in REPO; ADVICE" (the advice is left out when empty).
fn located(what: &str, repo: &str, advice: &str) -> String {
    let mut s = format!("{what} in {repo}");
    if !advice.is_empty() {
        s.push_str("; ");
        s.push_str(advice);
    }
    s
}

/// Advice for a [`GitError::NotFound`], chosen by what was asked.
fn advice_not_found(what: &str) -> &'static str {
    if what.starts_with("no tag matches") || what.starts_with("tag pattern") {
        "check the pattern (`*` and `?` do not match `/`) or push a matching tag"
    } else if what.starts_with("branch") {
        "check the branch name, or push the branch"
    } else if what.starts_with("tag") {
        "check the tag name, or push the tag"
    } else if what.starts_with("pull request") || what.starts_with("merge request") {
        "check the number and the forge (GitHub uses refs/pull/N/head, GitLab refs/merge-requests/N/head)"
    } else if what.starts_with("commit") {
        "check the SHA; it must be reachable from a branch, tag or pull/merge request of the repository"
    } else {
        ""
    }
}

/// Keep the last [`STDERR_TAIL_LINES`] non-empty lines of `stderr`, trimmed.
pub(crate) fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_message_names_thing_repo_and_advice() {
        let e = GitError::not_found("/srv/repo", "branch `fix-login` does not exist");
        let m = e.to_string();
        assert!(m.starts_with("branch `fix-login` does not exist in /srv/repo; "));
        assert!(m.contains("push the branch"));
    }

    #[test]
    fn stderr_tail_keeps_last_lines() {
        let s: String = (0..30).map(|i| format!("line {i}\n\n")).collect();
        let t = stderr_tail(&s);
        assert_eq!(t.lines().count(), STDERR_TAIL_LINES);
        assert!(t.starts_with("line 10"));
        assert!(t.ends_with("line 29"));
    }
}
