//! The GitLab adapter: REST v4 (`https://gitlab.com/api/v4`, or a
//! self-managed instance's `https://HOST/api/v4`).
//!
//! Requests carry `PRIVATE-TOKEN: <token>` (when a token is configured) and
//! `User-Agent: greenroom/<version>`, are bounded by
//! [`super::REQUEST_TIMEOUT`], and address projects by their URL-encoded
//! full path (`group%2Fsub%2Fproject`). Lists are read 100 per page
//! following `x-next-page` (or `Link: rel="next"`), at most
//! [`super::MAX_PAGES`] pages.
//!
//! Mapping: `Error` and `Failure` statuses are both GitLab's `failed`; a
//! login's permission is its access level among the project's members
//! (inherited ones included): owner 50 → admin, maintainer 40 → maintain,
//! developer 30 → write, reporter 20 → triage, guest 10 → read, anything
//! lower → none, not a member → `None`.

use greenroom_core::pending::Candidate;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::json;

use super::{
    Answer, CommitStatus, ForgeError, Http, MAX_DESCRIPTION, Permission, STICKY_MARKER, StatusState, parse_rfc3339,
    truncate_chars,
};

/// A GitLab REST API client.
#[derive(Debug, Clone)]
pub struct Gitlab {
    http: Http,
}

#[derive(Deserialize)]
struct Author {
    username: String,
}

/// Labels are strings, or objects with `with_labels_details=true`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Label {
    Name(String),
    Detailed { name: String },
}

#[derive(Deserialize)]
struct MergeRequest {
    iid: u64,
    title: String,
    author: Option<Author>,
    draft: Option<bool>,
    work_in_progress: Option<bool>,
    #[serde(default)]
    labels: Vec<Label>,
    target_branch: String,
    sha: Option<String>,
    created_at: String,
    updated_at: String,
    description: Option<String>,
    web_url: Option<String>,
}

#[derive(Deserialize)]
struct Diff {
    old_path: String,
    new_path: String,
}

#[derive(Deserialize)]
struct Note {
    id: u64,
    body: Option<String>,
    #[serde(default)]
    system: bool,
}

#[derive(Deserialize)]
struct Created {
    id: u64,
}

#[derive(Deserialize)]
struct Member {
    username: String,
    access_level: u64,
}

/// `x-next-page` says there is a next page (or, without it, `Link`).
fn has_next_page(answer: &Answer, _items: usize) -> bool {
    if let Some(v) = answer.headers.get("x-next-page") {
        return v.to_str().is_ok_and(|s| !s.trim().is_empty());
    }
    answer
        .headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| part.split(';').skip(1).any(|p| p.trim() == "rel=\"next\""))
}

fn check_project(project: &str) -> Result<(), ForgeError> {
    let ok = !project.is_empty()
        && (project.bytes().all(|b| b.is_ascii_digit())
            || (project.contains('/') && project.split('/').all(|s| !s.is_empty())));
    if ok {
        Ok(())
    } else {
        Err(ForgeError::Config(format!(
            "`{project}` is not a GitLab project id (expected `group/project` or a numeric id)"
        )))
    }
}

/// A GitLab access level -> [`Permission`].
pub fn permission_from_access_level(level: u64) -> Permission {
    match level {
        50.. => Permission::Admin,
        40..=49 => Permission::Maintain,
        30..=39 => Permission::Write,
        20..=29 => Permission::Triage,
        10..=19 => Permission::Read,
        _ => Permission::None,
    }
}

/// Our status state -> GitLab's.
fn gitlab_state(state: StatusState) -> &'static str {
    match state {
        StatusState::Pending => "pending",
        StatusState::Success => "success",
        StatusState::Failure | StatusState::Error => "failed",
    }
}

impl Gitlab {
    /// A client for the API at `api_url` (`https://gitlab.com/api/v4`),
    /// authenticated with `token` if given.
    pub fn new(api_url: &str, token: Option<String>) -> Result<Gitlab, ForgeError> {
        let auth = token
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|t| ("private-token", t.clone()));
        Ok(Gitlab {
            http: Http::new("gitlab", api_url, HeaderMap::new(), auth, token)?,
        })
    }

    fn segments<'a>(project: &'a str, rest: &[&'a str]) -> Result<Vec<&'a str>, ForgeError> {
        check_project(project)?;
        let mut s = vec!["projects", project];
        s.extend_from_slice(rest);
        Ok(s)
    }

    /// Open merge requests of `project` targeting `base_branch`.
    pub async fn open_prs(&self, project: &str, base_branch: &str) -> Result<Vec<Candidate>, ForgeError> {
        let segs = Self::segments(project, &["merge_requests"])?;
        let query = [
            ("state", "opened".to_string()),
            ("target_branch", base_branch.to_string()),
        ];
        let (mrs, complete) = self.http.pages::<MergeRequest>(&segs, &query, has_next_page).await?;
        if !complete {
            tracing::warn!(
                project,
                count = mrs.len(),
                "more open merge requests than greenroom reads; the rest are left out"
            );
        }
        let path = format!("/projects/{project}/merge_requests");
        mrs.into_iter()
            .map(|m| {
                let time = |s: &str, field: &str| {
                    parse_rfc3339(s).ok_or_else(|| ForgeError::Decode {
                        forge: "gitlab",
                        path: path.clone(),
                        message: format!("!{}: {field} `{s}` is not an RFC 3339 time", m.iid),
                    })
                };
                let sha = m.sha.clone().ok_or_else(|| ForgeError::Decode {
                    forge: "gitlab",
                    path: path.clone(),
                    message: format!("!{} has no `sha`", m.iid),
                })?;
                Ok(Candidate {
                    repo: project.to_string(),
                    number: m.iid,
                    author: m.author.as_ref().map(|a| a.username.clone()).unwrap_or_default(),
                    title: m.title.clone(),
                    draft: m.draft.or(m.work_in_progress).unwrap_or(false),
                    labels: m
                        .labels
                        .iter()
                        .map(|l| match l {
                            Label::Name(n) | Label::Detailed { name: n } => n.clone(),
                        })
                        .collect(),
                    base_branch: m.target_branch.clone(),
                    head_sha: sha,
                    created_at: time(&m.created_at, "created_at")?,
                    updated_at: time(&m.updated_at, "updated_at")?,
                    body: m.description.clone().unwrap_or_default(),
                    approved_by: None,
                    excluded: None,
                    web_url: m.web_url.clone(),
                })
            })
            .collect()
    }

    /// Paths merge request `iid` changes; both sides of a rename
    /// (`/merge_requests/:iid/diffs`, GitLab 15.7 and later).
    pub async fn changed_files(&self, project: &str, iid: u64) -> Result<Vec<String>, ForgeError> {
        let n = iid.to_string();
        let segs = Self::segments(project, &["merge_requests", &n, "diffs"])?;
        let (diffs, complete) = self.http.pages::<Diff>(&segs, &[], has_next_page).await?;
        if !complete {
            return Err(ForgeError::Unsupported(format!(
                "{project}!{iid} changes more files than greenroom reads; treat it as changing everything"
            )));
        }
        let mut out: Vec<String> = Vec::new();
        for d in diffs {
            for p in [d.old_path, d.new_path] {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    /// Sets a commit status. GitLab refuses to set a status to the state it
    /// already has ("Cannot transition status"); that counts as done.
    pub async fn set_status(&self, project: &str, sha: &str, status: &CommitStatus) -> Result<(), ForgeError> {
        let url = self.http.url(&Self::segments(project, &["statuses", sha])?, &[]);
        let mut body = json!({
            "state": gitlab_state(status.state),
            "name": status.context,
            "description": truncate_chars(&status.description, MAX_DESCRIPTION),
        });
        if let (Some(t), Some(o)) = (&status.target_url, body.as_object_mut()) {
            o.insert("target_url".into(), json!(t));
        }
        let answer = self.http.send(Method::POST, &url, Some(&body)).await?;
        if (200..300).contains(&answer.status) {
            return Ok(());
        }
        if answer.status == 400 && String::from_utf8_lossy(&answer.body).contains("Cannot transition status") {
            return Ok(());
        }
        Err(self.http.status_error(&Method::POST, &url, &answer))
    }

    /// Creates or edits the sticky note (the oldest non-system note
    /// containing [`STICKY_MARKER`]); an unchanged body is not sent again.
    pub async fn upsert_sticky(&self, project: &str, iid: u64, body: &str) -> Result<u64, ForgeError> {
        let n = iid.to_string();
        let segs = Self::segments(project, &["merge_requests", &n, "notes"])?;
        let text = if body.contains(STICKY_MARKER) {
            body.to_string()
        } else {
            format!("{STICKY_MARKER}\n{body}")
        };
        let query = [("sort", "asc".to_string()), ("order_by", "created_at".to_string())];
        let (notes, complete) = self.http.pages::<Note>(&segs, &query, has_next_page).await?;
        let existing = notes
            .into_iter()
            .find(|c| !c.system && c.body.as_deref().is_some_and(|b| b.contains(STICKY_MARKER)));
        match existing {
            Some(c) if c.body.as_deref() == Some(text.as_str()) => Ok(c.id),
            Some(c) => {
                let id = c.id.to_string();
                let url = self
                    .http
                    .url(&Self::segments(project, &["merge_requests", &n, "notes", &id])?, &[]);
                let edited: Created = self
                    .http
                    .json(Method::PUT, &url, Some(&json!({ "body": text })))
                    .await?;
                Ok(edited.id)
            }
            None if !complete => Err(ForgeError::Unsupported(format!(
                "{project}!{iid} has more notes than greenroom reads; not adding a second sticky note"
            ))),
            None => {
                let url = self.http.url(&segs, &[]);
                let created: Created = self
                    .http
                    .json(Method::POST, &url, Some(&json!({ "body": text })))
                    .await?;
                Ok(created.id)
            }
        }
    }

    /// Posts a note; returns its id.
    pub async fn comment(&self, project: &str, iid: u64, body: &str) -> Result<u64, ForgeError> {
        let n = iid.to_string();
        let url = self
            .http
            .url(&Self::segments(project, &["merge_requests", &n, "notes"])?, &[]);
        let created: Created = self
            .http
            .json(Method::POST, &url, Some(&json!({ "body": body })))
            .await?;
        Ok(created.id)
    }

    /// `login`'s permission: its highest access level among the project's
    /// members, inherited included; `None` if it is not a member.
    pub async fn permission(&self, project: &str, login: &str) -> Result<Option<Permission>, ForgeError> {
        let segs = Self::segments(project, &["members", "all"])?;
        let (members, _) = self
            .http
            .pages::<Member>(&segs, &[("query", login.to_string())], has_next_page)
            .await?;
        Ok(members
            .iter()
            .filter(|m| m.username.eq_ignore_ascii_case(login))
            .map(|m| permission_from_access_level(m.access_level))
            .max())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_levels_map_to_permissions() {
        assert_eq!(permission_from_access_level(50), Permission::Admin);
        assert_eq!(permission_from_access_level(40), Permission::Maintain);
        assert_eq!(permission_from_access_level(30), Permission::Write);
        assert_eq!(permission_from_access_level(20), Permission::Triage);
        assert_eq!(permission_from_access_level(10), Permission::Read);
        assert_eq!(permission_from_access_level(5), Permission::None);
    }

    #[test]
    fn project_ids() {
        for ok in ["group/project", "g/s/p", "42"] {
            assert!(check_project(ok).is_ok(), "{ok}");
        }
        for bad in ["", "project", "g//p", "/p"] {
            assert!(check_project(bad).is_err(), "{bad}");
        }
    }
}
