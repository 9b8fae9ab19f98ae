//! GitHub deliveries (`POST /webhooks/github`): serde models of exactly the
//! payload fields greenroom reads, and their mapping onto [`EventKind`].
//!
//! Owns: the list of GitHub event names greenroom knows, and which of them
//! it acts on (`ping`, `push`, `pull_request`, `issue_comment`, `release`,
//! `package`, `registry_package`); the rest are [`EventKind::Other`].
//! Must never: reject a payload for fields greenroom does not read (the
//! models ignore everything else), or verify signatures (see `verify`).

use crate::error::WebhookError;
use crate::event::{Delivery, EventKind, Forge};
use crate::headers::{self, HeaderLookup, value};
use crate::json::{LenientString, from_body, is_zero_sha, required, required_num, union_sorted};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Every event name GitHub documents for repository, organization and app
/// webhooks. Names not listed are answered as unknown (202, ignored).
const KNOWN_EVENTS: &[&str] = &[
    "branch_protection_configuration",
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "code_scanning_alert",
    "commit_comment",
    "create",
    "custom_property",
    "custom_property_values",
    "delete",
    "dependabot_alert",
    "deploy_key",
    "deployment",
    "deployment_protection_rule",
    "deployment_review",
    "deployment_status",
    "discussion",
    "discussion_comment",
    "fork",
    "github_app_authorization",
    "gollum",
    "installation",
    "installation_repositories",
    "installation_target",
    "issue_comment",
    "issue_dependencies",
    "issues",
    "label",
    "marketplace_purchase",
    "member",
    "membership",
    "merge_group",
    "meta",
    "milestone",
    "org_block",
    "organization",
    "package",
    "page_build",
    "personal_access_token_request",
    "ping",
    "project",
    "project_card",
    "project_column",
    "projects_v2",
    "projects_v2_item",
    "projects_v2_status_update",
    "public",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "push",
    "registry_package",
    "release",
    "repository",
    "repository_advisory",
    "repository_dispatch",
    "repository_import",
    "repository_ruleset",
    "repository_vulnerability_alert",
    "secret_scanning_alert",
    "secret_scanning_alert_location",
    "secret_scanning_scan",
    "security_advisory",
    "security_and_analysis",
    "sponsorship",
    "star",
    "status",
    "sub_issues",
    "team",
    "team_add",
    "watch",
    "workflow_dispatch",
    "workflow_job",
    "workflow_run",
];

/// GitHub caps the `commits` array of a push payload at this many entries.
const PUSH_COMMITS_CAP: usize = 2048;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Repository {
    full_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct User {
    login: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Label {
    name: Option<String>,
}

/// Fields read from every event: the action word and the repository.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Envelope {
    action: LenientString,
    repository: Option<LenientRepository>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LenientRepository {
    full_name: LenientString,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    before: Option<String>,
    after: Option<String>,
    deleted: Option<bool>,
    commits: Option<Vec<Commit>>,
    repository: Option<Repository>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Commit {
    id: Option<String>,
    added: Option<Vec<String>>,
    modified: Option<Vec<String>>,
    removed: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PullRequestEvent {
    action: Option<String>,
    number: Option<u64>,
    pull_request: Option<PullRequest>,
    label: Option<Label>,
    repository: Option<Repository>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PullRequest {
    number: Option<u64>,
    title: Option<String>,
    user: Option<User>,
    draft: Option<bool>,
    merged: Option<bool>,
    labels: Option<Vec<Label>>,
    updated_at: Option<String>,
    head: Option<Branch>,
    base: Option<Branch>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Branch {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    sha: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IssueCommentEvent {
    action: Option<String>,
    issue: Option<Issue>,
    comment: Option<Comment>,
    repository: Option<Repository>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Issue {
    number: Option<u64>,
    /// Present (an object) when the issue is a pull request.
    pull_request: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Comment {
    id: Option<u64>,
    body: Option<String>,
    user: Option<User>,
    author_association: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReleaseEvent {
    action: Option<String>,
    release: Option<Release>,
    repository: Option<Repository>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Release {
    tag_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PackageEvent {
    action: Option<String>,
    package: Option<Package>,
    registry_package: Option<Package>,
    repository: Option<Repository>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Package {
    name: Option<String>,
    ecosystem: Option<String>,
    package_type: Option<String>,
    package_version: Option<PackageVersion>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PackageVersion {
    version: Option<String>,
    container_metadata: Option<ContainerMetadata>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ContainerMetadata {
    tag: Option<ContainerTag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ContainerTag {
    digest: Option<String>,
}

fn repo_name(repo: Option<Repository>) -> Option<String> {
    repo.and_then(|r| r.full_name).filter(|n| !n.is_empty())
}

pub(crate) fn parse<H: HeaderLookup + ?Sized>(headers: &H, body: &[u8]) -> Result<Delivery, WebhookError> {
    let event = value(headers, headers::GITHUB_EVENT).ok_or(WebhookError::MissingEventHeader {
        header: headers::GITHUB_EVENT,
    })?;
    let id = crate::package::delivery_id(headers, &[headers::GITHUB_DELIVERY], headers::GITHUB_DELIVERY)?;
    if !KNOWN_EVENTS.contains(&event) {
        return Err(WebhookError::unknown(Forge::Github, event));
    }
    let (action, repo, kind) = match event {
        "ping" => {
            let e: Envelope = from_body(body)?;
            (e.action.0, e.repository.and_then(|r| r.full_name.0), EventKind::Ping)
        }
        "push" => push(event, from_body(body)?)?,
        "pull_request" => pull_request(event, from_body(body)?)?,
        "issue_comment" => issue_comment(event, from_body(body)?)?,
        "release" => {
            let e: ReleaseEvent = from_body(body)?;
            let action = required(e.action, event, "action")?;
            let tag = required(e.release.and_then(|r| r.tag_name), event, "release.tag_name")?;
            (
                Some(action.clone()),
                repo_name(e.repository),
                EventKind::Release { tag, action },
            )
        }
        "package" | "registry_package" => package(event, from_body(body)?)?,
        _ => {
            let e: Envelope = from_body(body)?;
            (e.action.0, e.repository.and_then(|r| r.full_name.0), EventKind::Other)
        }
    };
    Ok(Delivery {
        forge: Forge::Github,
        id,
        event: event.to_string(),
        action,
        repo,
        kind,
    })
}

type Parsed = (Option<String>, Option<String>, EventKind);

fn push(event: &str, p: Push) -> Result<Parsed, WebhookError> {
    let git_ref = required(p.git_ref, event, "ref")?;
    let before = required(p.before, event, "before")?;
    let after = required(p.after, event, "after")?;
    let deleted = p.deleted.unwrap_or(false) || is_zero_sha(&after);
    let repo = repo_name(p.repository);
    let kind = if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        EventKind::TagPush {
            tag: tag.to_string(),
            sha: after,
            deleted,
        }
    } else {
        let commits = p.commits.unwrap_or_default();
        let mut ids = Vec::with_capacity(commits.len());
        for (i, c) in commits.iter().enumerate() {
            ids.push(required(c.id.clone(), event, &format!("commits[{i}].id"))?);
        }
        let changed_files = union_sorted(
            commits
                .iter()
                .flat_map(|c| [&c.added, &c.modified, &c.removed])
                .flatten(),
        );
        EventKind::Push {
            git_ref,
            before,
            after,
            deleted,
            truncated: ids.len() >= PUSH_COMMITS_CAP,
            commits: ids,
            changed_files,
        }
    };
    Ok((None, repo, kind))
}

fn pull_request(event: &str, e: PullRequestEvent) -> Result<Parsed, WebhookError> {
    let action = required(e.action, event, "action")?;
    let Some(pr) = e.pull_request else {
        return Err(WebhookError::missing(event, "pull_request"));
    };
    let number = required_num(e.number.or(pr.number), event, "number")?;
    let head = pr.head.unwrap_or_default();
    let base = pr.base.unwrap_or_default();
    let head_sha = required(head.sha, event, "pull_request.head.sha")?;
    let head_ref = required(head.git_ref, event, "pull_request.head.ref")?;
    let base_ref = required(base.git_ref, event, "pull_request.base.ref")?;
    let author = required(pr.user.and_then(|u| u.login), event, "pull_request.user.login")?;
    let labels: Vec<String> = pr
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter_map(|l| l.name)
        .collect();
    let changed_label: Vec<String> = e.label.and_then(|l| l.name).into_iter().collect();
    let (labels_added, labels_removed) = match action.as_str() {
        "labeled" => (changed_label, Vec::new()),
        "unlabeled" => (Vec::new(), changed_label),
        _ => (Vec::new(), Vec::new()),
    };
    let kind = EventKind::PullRequest {
        number,
        action: action.clone(),
        head_sha,
        head_ref,
        base_ref,
        author,
        draft: pr.draft.unwrap_or(false),
        labels,
        labels_added,
        labels_removed,
        merged: pr.merged.unwrap_or(false),
        title: pr.title.unwrap_or_default(),
        updated_at: pr.updated_at,
    };
    Ok((Some(action), repo_name(e.repository), kind))
}

fn issue_comment(event: &str, e: IssueCommentEvent) -> Result<Parsed, WebhookError> {
    let action = required(e.action, event, "action")?;
    let Some(issue) = e.issue else {
        return Err(WebhookError::missing(event, "issue"));
    };
    let issue_number = required_num(issue.number, event, "issue.number")?;
    let is_pull_request = issue.pull_request.is_some();
    let Some(comment) = e.comment else {
        return Err(WebhookError::missing(event, "comment"));
    };
    let kind = EventKind::Comment {
        number: is_pull_request.then_some(issue_number),
        is_pull_request,
        comment_id: required_num(comment.id, event, "comment.id")?,
        author: required(comment.user.and_then(|u| u.login), event, "comment.user.login")?,
        body: comment.body.unwrap_or_default(),
        action: action.clone(),
        author_association: comment.author_association,
    };
    Ok((Some(action), repo_name(e.repository), kind))
}

fn package(event: &str, e: PackageEvent) -> Result<Parsed, WebhookError> {
    let action = required(e.action, event, "action")?;
    let Some(pkg) = e.package.or(e.registry_package) else {
        return Err(WebhookError::missing(event, event));
    };
    let name = required(pkg.name, event, &format!("{event}.name"))?;
    let version = pkg.package_version.unwrap_or_default();
    let digest = version
        .container_metadata
        .and_then(|m| m.tag)
        .and_then(|t| t.digest)
        .filter(|d| !d.is_empty());
    let version = required(version.version, event, &format!("{event}.package_version.version"))?;
    let ecosystem = pkg
        .ecosystem
        .filter(|s| !s.is_empty())
        .or(pkg.package_type.filter(|s| !s.is_empty()));
    let kind = EventKind::Package {
        name,
        version,
        ecosystem,
        action: action.clone(),
        image: None,
        digest,
        published_at: None,
    };
    Ok((Some(action), repo_name(e.repository), kind))
}
