//! The GitHub adapter: REST v3 (`https://api.github.com`, or a GitHub
//! Enterprise Server's `https://HOST/api/v3`).
//!
//! Every request carries `Authorization: Bearer <token>` (when a token is
//! configured), `Accept: application/vnd.github+json`,
//! `X-GitHub-Api-Version: 2022-11-28` and `User-Agent: greenroom/<version>`,
//! and is bounded by [`super::REQUEST_TIMEOUT`]. Lists are read 100 per page,
//! following the `Link: rel="next"` header, at most [`super::MAX_PAGES`]
//! pages. Path segments are escaped one by one, so a repository id or login
//! can never change which endpoint is asked.
//!
//! The requests it makes are checked against GitHub's published OpenAPI
//! description by `tests/contract_github.rs`.

use greenroom_core::pending::Candidate;
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Answer, CommitStatus, DeploymentState, ForgeError, Http, MAX_DESCRIPTION, Permission, STICKY_MARKER, parse_rfc3339,
    truncate_chars,
};

/// The REST API version greenroom is written against.
pub const API_VERSION: &str = "2022-11-28";

/// A GitHub REST API client.
#[derive(Debug, Clone)]
pub struct Github {
    http: Http,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

#[derive(Deserialize)]
struct BranchRef {
    #[serde(rename = "ref")]
    git_ref: String,
}

#[derive(Deserialize)]
struct Head {
    sha: String,
}

#[derive(Deserialize)]
struct Pull {
    number: u64,
    title: String,
    user: Option<User>,
    #[serde(default)]
    draft: Option<bool>,
    #[serde(default)]
    labels: Vec<Label>,
    base: BranchRef,
    head: Head,
    created_at: String,
    updated_at: String,
    body: Option<String>,
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct File {
    filename: String,
    previous_filename: Option<String>,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    body: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    id: u64,
}

#[derive(Deserialize)]
struct CollaboratorPermission {
    permission: String,
    role_name: Option<String>,
}

#[derive(Deserialize)]
struct MaybeCreated {
    id: Option<u64>,
}

/// `Link: <...>; rel="next"` present.
fn has_next_link(answer: &Answer, _items: usize) -> bool {
    answer
        .headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            part.split(';')
                .skip(1)
                .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"))
        })
}

/// `owner/name` -> (`owner`, `name`).
fn split_repo(repo: &str) -> Result<(&str, &str), ForgeError> {
    match repo.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok((o, n)),
        _ => Err(ForgeError::Config(format!(
            "`{repo}` is not a GitHub repository id (expected `owner/name`)"
        ))),
    }
}

/// A role or legacy permission name -> [`Permission`].
fn permission_from(name: &str) -> Option<Permission> {
    Some(match name {
        "admin" => Permission::Admin,
        "maintain" => Permission::Maintain,
        "write" | "push" => Permission::Write,
        "triage" => Permission::Triage,
        "read" | "pull" => Permission::Read,
        "none" => Permission::None,
        _ => return None,
    })
}

impl Github {
    /// A client for the API at `api_url` (`https://api.github.com`),
    /// authenticated with `token` if given.
    pub fn new(api_url: &str, token: Option<String>) -> Result<Github, ForgeError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/vnd.github+json"));
        headers.insert("x-github-api-version", HeaderValue::from_static(API_VERSION));
        let auth = token
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|t| ("authorization", format!("Bearer {t}")));
        Ok(Github {
            http: Http::new("github", api_url, headers, auth, token)?,
        })
    }

    fn segments<'a>(repo: &'a str, rest: &[&'a str]) -> Result<Vec<&'a str>, ForgeError> {
        let (owner, name) = split_repo(repo)?;
        let mut s = vec!["repos", owner, name];
        s.extend_from_slice(rest);
        Ok(s)
    }

    /// Open pull requests of `repo` (`owner/name`) targeting `base_branch`.
    pub async fn open_prs(&self, repo: &str, base_branch: &str) -> Result<Vec<Candidate>, ForgeError> {
        let segs = Self::segments(repo, &["pulls"])?;
        let query = [("state", "open".to_string()), ("base", base_branch.to_string())];
        let (pulls, complete) = self.http.pages::<Pull>(&segs, &query, has_next_link).await?;
        if !complete {
            tracing::warn!(
                repo,
                count = pulls.len(),
                "more open pull requests than greenroom reads; the rest are left out"
            );
        }
        let path = format!("/repos/{repo}/pulls");
        pulls
            .into_iter()
            .map(|p| {
                let time = |s: &str, field: &str| {
                    parse_rfc3339(s).ok_or_else(|| ForgeError::Decode {
                        forge: "github",
                        path: path.clone(),
                        message: format!("#{}: {field} `{s}` is not an RFC 3339 time", p.number),
                    })
                };
                Ok(Candidate {
                    repo: repo.to_string(),
                    number: p.number,
                    author: p.user.map(|u| u.login).unwrap_or_else(|| "ghost".into()),
                    title: p.title.clone(),
                    draft: p.draft.unwrap_or(false),
                    labels: p.labels.into_iter().map(|l| l.name).collect(),
                    base_branch: p.base.git_ref,
                    head_sha: p.head.sha,
                    created_at: time(&p.created_at, "created_at")?,
                    updated_at: time(&p.updated_at, "updated_at")?,
                    body: p.body.unwrap_or_default(),
                    approved_by: None,
                    excluded: None,
                    web_url: p.html_url,
                })
            })
            .collect()
    }

    /// Paths pull request `number` changes; both sides of a rename. More
    /// than GitHub lists (3000) is an error: a partial list would skip work.
    pub async fn changed_files(&self, repo: &str, number: u64) -> Result<Vec<String>, ForgeError> {
        let n = number.to_string();
        let segs = Self::segments(repo, &["pulls", &n, "files"])?;
        let (files, complete) = self.http.pages::<File>(&segs, &[], has_next_link).await?;
        if !complete {
            return Err(ForgeError::Unsupported(format!(
                "{repo}#{number} changes more files than GitHub lists; treat it as changing everything"
            )));
        }
        let mut out: Vec<String> = Vec::new();
        for f in files {
            for p in f.previous_filename.into_iter().chain(std::iter::once(f.filename)) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    /// Sets a commit status (description cut at 140 characters).
    pub async fn set_status(&self, repo: &str, sha: &str, status: &CommitStatus) -> Result<(), ForgeError> {
        let url = self.http.url(&Self::segments(repo, &["statuses", sha])?, &[]);
        let mut body = json!({
            "state": status.state,
            "description": truncate_chars(&status.description, MAX_DESCRIPTION),
            "context": status.context,
        });
        if let (Some(t), Some(o)) = (&status.target_url, body.as_object_mut()) {
            o.insert("target_url".into(), json!(t));
        }
        let _: Value = self.http.json(Method::POST, &url, Some(&body)).await?;
        Ok(())
    }

    /// Creates or edits the sticky comment (the first comment containing
    /// [`STICKY_MARKER`]); an unchanged body is not sent again.
    pub async fn upsert_sticky(&self, repo: &str, number: u64, body: &str) -> Result<u64, ForgeError> {
        let n = number.to_string();
        let segs = Self::segments(repo, &["issues", &n, "comments"])?;
        let text = if body.contains(STICKY_MARKER) {
            body.to_string()
        } else {
            format!("{STICKY_MARKER}\n{body}")
        };
        let (comments, complete) = self.http.pages::<Comment>(&segs, &[], has_next_link).await?;
        let existing = comments
            .into_iter()
            .find(|c| c.body.as_deref().is_some_and(|b| b.contains(STICKY_MARKER)));
        match existing {
            Some(c) if c.body.as_deref() == Some(text.as_str()) => Ok(c.id),
            Some(c) => {
                let id = c.id.to_string();
                let url = self.http.url(&Self::segments(repo, &["issues", "comments", &id])?, &[]);
                let edited: Created = self
                    .http
                    .json(Method::PATCH, &url, Some(&json!({ "body": text })))
                    .await?;
                Ok(edited.id)
            }
            None if !complete => Err(ForgeError::Unsupported(format!(
                "{repo}#{number} has more comments than greenroom reads; not adding a second sticky comment"
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

    /// Posts a comment; returns its id.
    pub async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<u64, ForgeError> {
        let n = number.to_string();
        let url = self.http.url(&Self::segments(repo, &["issues", &n, "comments"])?, &[]);
        let created: Created = self
            .http
            .json(Method::POST, &url, Some(&json!({ "body": body })))
            .await?;
        Ok(created.id)
    }

    /// `login`'s permission on `repo` (`role_name`, else the legacy
    /// `permission`); `None` when GitHub does not know the login (404).
    pub async fn permission(&self, repo: &str, login: &str) -> Result<Option<Permission>, ForgeError> {
        let url = self
            .http
            .url(&Self::segments(repo, &["collaborators", login, "permission"])?, &[]);
        let answer = self.http.send(Method::GET, &url, None).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&answer.status) {
            return Err(self.http.status_error(&Method::GET, &url, &answer));
        }
        let p: CollaboratorPermission = self.http.decode(&url, &answer)?;
        Ok(p.role_name
            .as_deref()
            .and_then(permission_from)
            .or_else(|| permission_from(&p.permission)))
    }

    /// Creates a deployment of `sha` (no auto-merge, no required contexts:
    /// greenroom deploys exactly that commit, whatever its checks say).
    /// `None` if GitHub answered without creating one (202).
    pub async fn create_deployment(
        &self,
        repo: &str,
        sha: &str,
        environment: &str,
        description: &str,
    ) -> Result<Option<u64>, ForgeError> {
        let url = self.http.url(&Self::segments(repo, &["deployments"])?, &[]);
        let body = json!({
            "ref": sha,
            "environment": environment,
            "description": truncate_chars(description, MAX_DESCRIPTION),
            "auto_merge": false,
            "required_contexts": [],
            "transient_environment": false,
            "production_environment": false,
        });
        let created: MaybeCreated = self.http.json(Method::POST, &url, Some(&body)).await?;
        Ok(created.id)
    }

    /// Reports a deployment's state.
    pub async fn deployment_status(
        &self,
        repo: &str,
        id: u64,
        state: DeploymentState,
        environment_url: Option<&str>,
        log_url: Option<&str>,
    ) -> Result<(), ForgeError> {
        let id = id.to_string();
        let url = self
            .http
            .url(&Self::segments(repo, &["deployments", &id, "statuses"])?, &[]);
        let mut body = serde_json::Map::new();
        body.insert("state".into(), json!(state));
        if let Some(u) = environment_url {
            body.insert("environment_url".into(), json!(u));
        }
        if let Some(u) = log_url {
            body.insert("log_url".into(), json!(u));
        }
        let _: Value = self.http.json(Method::POST, &url, Some(&Value::Object(body))).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_owner_slash_name() {
        assert!(split_repo("acme/api").is_ok());
        for bad in ["acme", "/api", "acme/", "a/b/c", ""] {
            assert!(split_repo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let gh = Github::new("https://api.github.com", Some("ghp_supersecret".into()));
        let shown = format!("{gh:?}");
        assert!(!shown.contains("supersecret"), "{shown}");
    }
}
