//! The normalized event model every forge's delivery is parsed into.
//!
//! Owns: [`Forge`], [`Delivery`] and [`EventKind`], the shapes the server
//! stores and the scheduling policy consumes.
//! Must never: carry forge-specific payload types or secrets; anything a
//! consumer needs from a payload gets a named, documented field here.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a delivery came from; each has its own endpoint, headers and verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    /// `POST /webhooks/github`: `X-Hub-Signature-256` HMAC.
    Github,
    /// `POST /webhooks/gitlab`: `X-Gitlab-Token` shared secret.
    Gitlab,
    /// `POST /webhooks/package`: greenroom's generic, HMAC-signed "new version published".
    Package,
}

impl Forge {
    /// Lower-case name (`github`, `gitlab`, `package`), as used in metrics labels and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Forge::Github => "github",
            Forge::Gitlab => "gitlab",
            Forge::Package => "package",
        }
    }
}

impl fmt::Display for Forge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Which endpoint it came to.
    pub forge: Forge,
    /// Delivery id used to recognise a redelivery: `X-GitHub-Delivery`;
    /// GitLab `Idempotency-Key`, else `X-Gitlab-Event-UUID`; `X-Greenroom-Delivery`.
    pub id: String,
    /// Event name from the header, verbatim (`pull_request`, `Merge Request Hook`);
    /// `package` for the generic package endpoint.
    pub event: String,
    /// The payload's own action word, verbatim, when it has one (GitHub `action`,
    /// GitLab `object_attributes.action`, e.g. `open`). The normalized word is in [`EventKind`].
    pub action: Option<String>,
    /// Forge identity of the repository: GitHub `owner/name` (`repository.full_name`),
    /// GitLab `group/project` (`project.path_with_namespace`). `None` when the payload
    /// has none (an organization ping, the package endpoint).
    pub repo: Option<String>,
    /// What happened, normalized across forges.
    pub kind: EventKind,
}

/// What a delivery says happened, normalized across forges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// GitHub `ping` (sent when a hook is created).
    Ping,
    /// A push to a branch (or any ref outside `refs/tags/`).
    Push {
        /// Full ref name, e.g. `refs/heads/main`.
        git_ref: String,
        /// Commit the ref pointed to before; 40 zeros when the ref was created.
        before: String,
        /// Commit the ref points to now; 40 zeros when the ref was deleted.
        after: String,
        /// The ref was deleted (GitHub `deleted`; GitLab: `after` is all zeros).
        deleted: bool,
        /// Ids of the commits listed in the payload, in payload order.
        commits: Vec<String>,
        /// Sorted, de-duplicated union of `added`, `modified` and `removed` over the
        /// listed commits. A hint only: it is incomplete when `truncated`, and for a
        /// new branch or a force-push the payload lists only new commits. The
        /// authoritative list is `git diff before..after`.
        changed_files: Vec<String>,
        /// The payload lists fewer commits than were pushed (GitLab
        /// `total_commits_count` > listed commits; GitHub's 2048-commit cap reached).
        truncated: bool,
    },
    /// A tag was pushed or deleted (GitLab `Tag Push Hook`, or a GitHub `push` to `refs/tags/...`).
    TagPush {
        /// Tag name without `refs/tags/`.
        tag: String,
        /// Commit (or tag object) the tag points to; 40 zeros when deleted.
        sha: String,
        /// The tag was deleted.
        deleted: bool,
    },
    /// A pull request (GitHub) or merge request (GitLab) changed.
    PullRequest {
        /// PR number (GitHub `number`) or MR `iid` (GitLab) — the one in URLs.
        number: u64,
        /// GitHub's action word verbatim (`opened`, `synchronize`, `reopened`, `closed`,
        /// `labeled`, `unlabeled`, `edited`, ...). GitLab's are mapped to GitHub's:
        /// `open`→`opened`, `reopen`→`reopened`, `close`/`merge`→`closed`, `update`→
        /// `synchronize` when `oldrev` is present (new commits), else `ready_for_review` /
        /// `converted_to_draft` when the draft flag flipped, else `labeled` / `unlabeled`
        /// when labels changed, else `edited`; other GitLab actions (`approved`, ...) verbatim.
        action: String,
        /// Head commit of the PR/MR.
        head_sha: String,
        /// Source branch name (not a full ref), e.g. `feature-x`.
        head_ref: String,
        /// Target branch name, e.g. `main`.
        base_ref: String,
        /// GitHub: the PR's author. GitLab: the user who caused the event (`user.username`),
        /// which is the author for `open` but may be someone else for later actions.
        author: String,
        /// Draft / work in progress.
        draft: bool,
        /// Current label names.
        labels: Vec<String>,
        /// Labels this event added (GitHub `labeled`: the one label; GitLab: from `changes.labels`).
        labels_added: Vec<String>,
        /// Labels this event removed.
        labels_removed: Vec<String>,
        /// The PR/MR was merged (GitHub `merged`; GitLab action `merge` or state `merged`).
        merged: bool,
        /// Title.
        title: String,
        /// Last update time as the forge wrote it (not parsed).
        updated_at: Option<String>,
    },
    /// A comment on an issue or PR (GitHub `issue_comment`) or a GitLab note.
    Comment {
        /// PR/MR number when the comment is on one; `None` for plain issues, commits, snippets.
        number: Option<u64>,
        /// The comment is on a PR/MR.
        is_pull_request: bool,
        /// Comment id (GitHub `comment.id`, GitLab note `object_attributes.id`).
        comment_id: u64,
        /// Login of the commenter.
        author: String,
        /// Comment text (Markdown), verbatim.
        body: String,
        /// `created`, `edited` or `deleted` (GitLab `create`→`created`, `update`→`edited`;
        /// a GitLab note without an action is `created`).
        action: String,
        /// GitHub's `author_association` (`OWNER`, `MEMBER`, `CONTRIBUTOR`, ...); `None` on GitLab.
        author_association: Option<String>,
    },
    /// A release (GitHub `release`; GitLab `Release Hook`).
    Release {
        /// Tag name of the release.
        tag: String,
        /// GitHub's action verbatim (`published`, `created`, ...); GitLab `create`→`created`,
        /// `update`→`edited`, `delete`→`deleted`.
        action: String,
    },
    /// A package version was published (GitHub `package` / `registry_package`, or the
    /// generic package endpoint).
    Package {
        /// GitHub: the package name. Package endpoint: the greenroom component name.
        name: String,
        /// The published version (for GitHub container packages this is the digest GitHub reports).
        version: String,
        /// GitHub's `ecosystem` (else `package_type`); `None` for the package endpoint.
        ecosystem: Option<String>,
        /// GitHub's action verbatim (`published`, `updated`); `published` for the package endpoint.
        action: String,
        /// Image reference to deploy, when the sender gave one (package endpoint only).
        image: Option<String>,
        /// Content digest: package endpoint `digest`; GitHub container tag digest when non-empty.
        digest: Option<String>,
        /// Publication time as the sender wrote it (package endpoint only; not parsed).
        published_at: Option<String>,
    },
    /// An event of a known forge that greenroom records but does not act on
    /// (`check_run`, `status`, `Pipeline Hook`, `Deployment Hook`, ...).
    Other,
}

impl EventKind {
    /// Short snake_case name of the variant (`push`, `pull_request`, ...), for metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Ping => "ping",
            EventKind::Push { .. } => "push",
            EventKind::TagPush { .. } => "tag_push",
            EventKind::PullRequest { .. } => "pull_request",
            EventKind::Comment { .. } => "comment",
            EventKind::Release { .. } => "release",
            EventKind::Package { .. } => "package",
            EventKind::Other => "other",
        }
    }
}
