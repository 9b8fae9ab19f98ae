//! GitLab deliveries (`POST /webhooks/gitlab`): serde models of exactly the
//! payload fields greenroom reads, and their mapping onto [`EventKind`],
//! including the mapping of GitLab's merge request and note actions onto
//! GitHub's words so that consumers see one vocabulary.
//!
//! Owns: the list of GitLab `X-Gitlab-Event` names greenroom knows, and
//! which it acts on (`Push Hook`, `Tag Push Hook`, `Merge Request Hook`,
//! `Note Hook`, `Confidential Note Hook`, `Release Hook`).
//! Must never: reject a payload for fields greenroom does not read, or check
//! the token (see `verify`).

use crate::error::WebhookError;
use crate::event::{Delivery, EventKind, Forge};
use crate::headers::{self, HeaderLookup, value};
use crate::json::{LenientString, from_body, is_zero_sha, required, required_num, union_sorted};
use serde::Deserialize;

/// GitLab's documented webhook event names (project, group and system hooks).
/// Names not listed are answered as unknown (202, ignored).
const KNOWN_EVENTS: &[&str] = &[
    "Push Hook",
    "Tag Push Hook",
    "Merge Request Hook",
    "Note Hook",
    "Confidential Note Hook",
    "Release Hook",
    "Issue Hook",
    "Confidential Issue Hook",
    "Wiki Page Hook",
    "Pipeline Hook",
    "Job Hook",
    "Build Hook",
    "Deployment Hook",
    "Feature Flag Hook",
    "Emoji Hook",
    "Milestone Hook",
    "Member Hook",
    "Subgroup Hook",
    "Project Hook",
    "Resource Access Token Hook",
    "Vulnerability Hook",
    "System Hook",
];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Project {
    path_with_namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct User {
    username: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Label {
    title: Option<String>,
}

/// Fields read from events greenroom ignores; tolerant of any shape.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Envelope {
    project: Option<LenientProject>,
    object_attributes: Option<LenientAttributes>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LenientProject {
    path_with_namespace: LenientString,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LenientAttributes {
    action: LenientString,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    before: Option<String>,
    after: Option<String>,
    checkout_sha: Option<String>,
    total_commits_count: Option<u64>,
    commits: Option<Vec<Commit>>,
    project: Option<Project>,
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
struct MergeRequestEvent {
    user: Option<User>,
    project: Option<Project>,
    object_attributes: Option<MergeRequest>,
    labels: Option<Vec<Label>>,
    changes: Option<Changes>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MergeRequest {
    iid: Option<u64>,
    title: Option<String>,
    source_branch: Option<String>,
    target_branch: Option<String>,
    state: Option<String>,
    action: Option<String>,
    oldrev: Option<String>,
    draft: Option<bool>,
    work_in_progress: Option<bool>,
    updated_at: Option<String>,
    last_commit: Option<LastCommit>,
    labels: Option<Vec<Label>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LastCommit {
    id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Changes {
    draft: Option<Change<Option<bool>>>,
    labels: Option<Change<Option<Vec<Label>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Change<T> {
    previous: T,
    current: T,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NoteEvent {
    user: Option<User>,
    project: Option<Project>,
    object_attributes: Option<Note>,
    merge_request: Option<NotedMergeRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Note {
    id: Option<u64>,
    note: Option<String>,
    noteable_type: Option<String>,
    action: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NotedMergeRequest {
    iid: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReleaseEvent {
    tag: Option<String>,
    action: Option<String>,
    project: Option<Project>,
}

fn project_path(p: Option<Project>) -> Option<String> {
    p.and_then(|p| p.path_with_namespace).filter(|n| !n.is_empty())
}

pub(crate) fn parse<H: HeaderLookup + ?Sized>(headers: &H, body: &[u8]) -> Result<Delivery, WebhookError> {
    let event = value(headers, headers::GITLAB_EVENT).ok_or(WebhookError::MissingEventHeader {
        header: headers::GITLAB_EVENT,
    })?;
    // Idempotency-Key is the one GitLab keeps across retries of a delivery;
    // X-Gitlab-Event-UUID (older GitLab) identifies the event.
    let id = crate::package::delivery_id(
        headers,
        &[headers::IDEMPOTENCY_KEY, headers::GITLAB_EVENT_UUID],
        "Idempotency-Key or X-Gitlab-Event-UUID",
    )?;
    if !KNOWN_EVENTS.contains(&event) {
        return Err(WebhookError::unknown(Forge::Gitlab, event));
    }
    let (action, repo, kind) = match event {
        "Push Hook" | "Tag Push Hook" => push(event, from_body(body)?)?,
        "Merge Request Hook" => merge_request(event, from_body(body)?)?,
        "Note Hook" | "Confidential Note Hook" => note(event, from_body(body)?)?,
        "Release Hook" => {
            let e: ReleaseEvent = from_body(body)?;
            let raw = required(e.action, event, "action")?;
            let tag = required(e.tag, event, "tag")?;
            let action = match raw.as_str() {
                "create" => "created".to_string(),
                "update" => "edited".to_string(),
                "delete" => "deleted".to_string(),
                _ => raw.clone(),
            };
            (Some(raw), project_path(e.project), EventKind::Release { tag, action })
        }
        _ => {
            let e: Envelope = from_body(body)?;
            let action = e.object_attributes.and_then(|a| a.action.0);
            (
                action,
                e.project.and_then(|p| p.path_with_namespace.0),
                EventKind::Other,
            )
        }
    };
    Ok(Delivery {
        forge: Forge::Gitlab,
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
    let deleted = is_zero_sha(&after);
    let repo = project_path(p.project);
    let kind = if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        let sha = p.checkout_sha.filter(|s| !s.is_empty() && !deleted).unwrap_or(after);
        EventKind::TagPush {
            tag: tag.to_string(),
            sha,
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
        let listed = u64::try_from(ids.len()).unwrap_or(u64::MAX);
        let truncated = p.total_commits_count.is_some_and(|total| total > listed);
        EventKind::Push {
            git_ref,
            before,
            after,
            deleted,
            commits: ids,
            changed_files,
            truncated,
        }
    };
    Ok((None, repo, kind))
}

fn label_titles(labels: Option<Vec<Label>>) -> Vec<String> {
    labels.unwrap_or_default().into_iter().filter_map(|l| l.title).collect()
}

fn merge_request(event: &str, e: MergeRequestEvent) -> Result<Parsed, WebhookError> {
    let Some(mr) = e.object_attributes else {
        return Err(WebhookError::missing(event, "object_attributes"));
    };
    let number = required_num(mr.iid, event, "object_attributes.iid")?;
    let raw_action = required(mr.action, event, "object_attributes.action")?;
    let head_sha = required(
        mr.last_commit.and_then(|c| c.id),
        event,
        "object_attributes.last_commit.id",
    )?;
    let head_ref = required(mr.source_branch, event, "object_attributes.source_branch")?;
    let base_ref = required(mr.target_branch, event, "object_attributes.target_branch")?;
    let author = required(e.user.and_then(|u| u.username), event, "user.username")?;

    let changes = e.changes.unwrap_or_default();
    let (labels_added, labels_removed) = match changes.labels {
        Some(change) => {
            let previous = label_titles(change.previous);
            let current = label_titles(change.current);
            let added = current.iter().filter(|l| !previous.contains(l)).cloned().collect();
            let removed = previous.iter().filter(|l| !current.contains(l)).cloned().collect();
            (added, removed)
        }
        None => (Vec::new(), Vec::new()),
    };
    let draft_flip = changes.draft.and_then(|d| match (d.previous, d.current) {
        (Some(true), Some(false)) => Some("ready_for_review"),
        (Some(false), Some(true)) => Some("converted_to_draft"),
        _ => None,
    });
    let has_new_commits = mr.oldrev.as_deref().is_some_and(|s| !s.is_empty());
    let action = match raw_action.as_str() {
        "open" => "opened",
        "reopen" => "reopened",
        "close" | "merge" => "closed",
        "update" if has_new_commits => "synchronize",
        "update" => match draft_flip {
            Some(flip) => flip,
            None if !labels_added.is_empty() => "labeled",
            None if !labels_removed.is_empty() => "unlabeled",
            None => "edited",
        },
        other => other,
    }
    .to_string();
    let merged = raw_action == "merge" || mr.state.as_deref() == Some("merged");
    let labels = match mr.labels {
        Some(labels) => label_titles(Some(labels)),
        None => label_titles(e.labels),
    };
    let kind = EventKind::PullRequest {
        number,
        action,
        head_sha,
        head_ref,
        base_ref,
        author,
        draft: mr.draft.unwrap_or(false) || mr.work_in_progress.unwrap_or(false),
        labels,
        labels_added,
        labels_removed,
        merged,
        title: mr.title.unwrap_or_default(),
        updated_at: mr.updated_at,
    };
    Ok((Some(raw_action), project_path(e.project), kind))
}

fn note(event: &str, e: NoteEvent) -> Result<Parsed, WebhookError> {
    let Some(note) = e.object_attributes else {
        return Err(WebhookError::missing(event, "object_attributes"));
    };
    let comment_id = required_num(note.id, event, "object_attributes.id")?;
    let author = required(e.user.and_then(|u| u.username), event, "user.username")?;
    let is_pull_request = note.noteable_type.as_deref() == Some("MergeRequest");
    let number = if is_pull_request {
        Some(required_num(
            e.merge_request.and_then(|m| m.iid),
            event,
            "merge_request.iid",
        )?)
    } else {
        None
    };
    let action = match note.action.as_deref() {
        None | Some("create") => "created".to_string(),
        Some("update") => "edited".to_string(),
        Some(other) => other.to_string(),
    };
    let kind = EventKind::Comment {
        number,
        is_pull_request,
        comment_id,
        author,
        body: note.note.unwrap_or_default(),
        action,
        author_association: None,
    };
    Ok((note.action, project_path(e.project), kind))
}
