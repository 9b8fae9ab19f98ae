//! Forges: what greenroom asks of GitHub, GitLab, or a plain git repository
//! for the pending PR set (issue #4) and what it tells them back.
//!
//! One enum, [`Forge`], over three adapters — `github` (REST v3), `gitlab`
//! (REST v4) and `git` (pending changes are refs matching a pattern in the
//! repository itself, so the quick start and self-hosted git need no hosted
//! service). Callers never see which one they talk to. Every request is
//! bounded in time; tokens come from `env:`/`file:` references and never
//! appear in errors, logs or `Debug` output.
//!
//! Reading: open pull requests as `core::pending::Candidate`s, the files a
//! pull request changes, a login's permission on a repository. Writing: a
//! commit status (`greenroom/staging`), one sticky comment per pull request
//! (found again by a hidden marker and edited, never reposted), plain
//! replies to comment commands, deployments.
//!
//! [`Forge::build`] (and [`for_repo`], its form for an `App`) builds the
//! forge of one repository; [`Forge::for_component`] also says which
//! repository id to pass (`owner/name`, `group/project`, or for a git forge
//! the repository's URL or path). The shared HTTP plumbing of the two
//! hosted forges (`Http`: timeouts, the user agent, same-origin redirects,
//! page walking, errors that name method, path and status but never the
//! token) lives here too.

pub mod git;
pub mod github;
pub mod gitlab;

use greenroom_core::config::{ChannelSource, Component, Forge as ConfigForge, ForgeApis};
use greenroom_core::pending::Candidate;
use greenroom_core::time::Millis;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The hidden marker that identifies greenroom's sticky comment on a PR.
pub const STICKY_MARKER: &str = "<!-- greenroom:sticky -->";

/// A forge error: what was asked, and what went wrong (never a token).
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The forge answered with an error status.
    #[error("{forge}: {method} {path} answered {status}: {message}")]
    Status {
        /// `github`, `gitlab`, `git`.
        forge: &'static str,
        /// HTTP method.
        method: String,
        /// Path asked for (no host, no token).
        path: String,
        /// HTTP status.
        status: u16,
        /// The forge's message (trimmed).
        message: String,
    },
    /// The request could not be made or answered.
    #[error("{forge}: {method} {path}: {message}")]
    Transport {
        /// `github`, `gitlab`, `git`.
        forge: &'static str,
        /// HTTP method.
        method: String,
        /// Path asked for.
        path: String,
        /// What happened.
        message: String,
    },
    /// The answer was not what the forge documents.
    #[error("{forge}: unexpected answer to {path}: {message}")]
    Decode {
        /// `github`, `gitlab`, `git`.
        forge: &'static str,
        /// Path asked for.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// A git command failed (the `git` forge).
    #[error("git forge: {0}")]
    Git(String),
    /// The forge cannot do this (e.g. deployments on a plain git repository).
    #[error("{0}")]
    Unsupported(String),
    /// The forge is not set up right: API URL, token reference, repository id.
    #[error("forge configuration: {0}")]
    Config(String),
}

/// State of a commit status (`greenroom/staging`, `greenroom/<suite>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    /// Being staged or tested.
    Pending,
    /// Passed.
    Success,
    /// The code failed.
    Failure,
    /// Something outside the code failed (infrastructure).
    Error,
}

/// A commit status to set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitStatus {
    /// Context name, e.g. `greenroom/staging`.
    pub context: String,
    /// State.
    pub state: StatusState,
    /// Link (the cycle's page), if any.
    pub target_url: Option<String>,
    /// One line for people (forges cut it at 140 characters).
    pub description: String,
}

/// A login's permission on a repository, as forges grade it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// No access.
    None,
    /// Read.
    Read,
    /// Triage (GitHub) / reporter (GitLab).
    Triage,
    /// Write (GitHub) / developer (GitLab).
    Write,
    /// Maintain (GitHub) / maintainer (GitLab).
    Maintain,
    /// Admin (GitHub) / owner (GitLab).
    Admin,
}

/// State of a deployment (GitHub Deployments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Being deployed.
    InProgress,
    /// Deployed and verified.
    Success,
    /// The deployment failed.
    Failure,
    /// Something outside the code failed.
    Error,
    /// Replaced by a newer deployment.
    Inactive,
}

/// A forge greenroom talks to.
#[derive(Debug, Clone)]
pub enum Forge {
    /// GitHub (REST v3).
    Github(github::Github),
    /// GitLab (REST v4).
    Gitlab(gitlab::Gitlab),
    /// A plain git repository (pending changes are refs).
    Git(git::GitForge),
}

impl Forge {
    /// A forge of kind `kind` for the repository cloned from `url`:
    /// GitHub and GitLab through `apis` (tokens read here from their
    /// `env:`/`file:` references), a git forge over `url` itself (pending
    /// refs `pending_refs`, default `refs/pending/*`; mirror and feedback
    /// under `STATE/forge-git/`, see [`git`]). For a git forge the
    /// repository id passed to the methods is only a name.
    pub fn build(
        apis: &ForgeApis,
        kind: ConfigForge,
        url: &str,
        pending_refs: Option<&str>,
        base: Option<String>,
        state_dir: &Path,
    ) -> Result<Forge, ForgeError> {
        let token = |api: &greenroom_core::config::ForgeApi| -> Result<Option<String>, ForgeError> {
            api.token
                .as_ref()
                .map(|t| crate::resolve::read_secret(t).map_err(ForgeError::Config))
                .transpose()
        };
        Ok(match kind {
            ConfigForge::Github => Forge::Github(github::Github::new(&apis.github.api_url, token(&apis.github)?)?),
            ConfigForge::Gitlab => Forge::Gitlab(gitlab::Gitlab::new(&apis.gitlab.api_url, token(&apis.gitlab)?)?),
            ConfigForge::Git => Forge::Git(git::GitForge::new(state_dir.join("forge-git")).with_default_repo(
                url,
                pending_refs.unwrap_or(git::DEFAULT_PENDING_REFS),
                base,
            )?),
        })
    }

    /// The forge of a configured component and the repository id to pass
    /// to its methods: GitHub's `owner/name` (`component.github`), GitLab's
    /// `group/project` (`component.gitlab`), or for `forge = "git"` the
    /// component's `repo` (URL or path), with its `pending_refs` and the
    /// branch its `stg` channel follows as the base.
    pub fn for_component(
        apis: &ForgeApis,
        component: &Component,
        state_dir: &Path,
    ) -> Result<(Forge, String), ForgeError> {
        let url = component.repo.clone().unwrap_or_default();
        let missing = |what: &str| ForgeError::Config(format!("component `{}` has no {what}", component.name));
        let id = match component.forge {
            ConfigForge::Github => component
                .github
                .clone()
                .ok_or_else(|| missing("GitHub repository: set `github = \"owner/name\"`"))?,
            ConfigForge::Gitlab => component
                .gitlab
                .clone()
                .ok_or_else(|| missing("GitLab project: set `gitlab = \"group/project\"`"))?,
            ConfigForge::Git if url.is_empty() => return Err(missing("`repo` to read pending refs from")),
            ConfigForge::Git => url.clone(),
        };
        let base = match component.channels.get("stg") {
            Some(ChannelSource::Branch(b)) => Some(b.clone()),
            _ => None,
        };
        let forge = Forge::build(
            apis,
            component.forge,
            &url,
            component.pending_refs.as_deref(),
            base,
            state_dir,
        )?;
        Ok((forge, id))
    }

    /// `github`, `gitlab` or `git`.
    pub fn kind(&self) -> &'static str {
        match self {
            Forge::Github(_) => "github",
            Forge::Gitlab(_) => "gitlab",
            Forge::Git(_) => "git",
        }
    }

    /// Open pull requests of `repo` targeting `base_branch`, as candidates
    /// for the pending set (`approved_by` and `excluded` are greenroom's own
    /// records: left empty here).
    pub async fn open_prs(&self, repo: &str, base_branch: &str) -> Result<Vec<Candidate>, ForgeError> {
        match self {
            Forge::Github(f) => f.open_prs(repo, base_branch).await,
            Forge::Gitlab(f) => f.open_prs(repo, base_branch).await,
            Forge::Git(f) => f.open_prs(repo, base_branch).await,
        }
    }

    /// Paths a pull request changes (both sides of a rename).
    pub async fn changed_files(&self, repo: &str, number: u64) -> Result<Vec<String>, ForgeError> {
        match self {
            Forge::Github(f) => f.changed_files(repo, number).await,
            Forge::Gitlab(f) => f.changed_files(repo, number).await,
            Forge::Git(f) => f.changed_files(repo, number).await,
        }
    }

    /// Sets a commit status on `sha`.
    pub async fn set_status(&self, repo: &str, sha: &str, status: &CommitStatus) -> Result<(), ForgeError> {
        match self {
            Forge::Github(f) => f.set_status(repo, sha, status).await,
            Forge::Gitlab(f) => f.set_status(repo, sha, status).await,
            Forge::Git(f) => f.set_status(repo, sha, status).await,
        }
    }

    /// Creates or edits greenroom's one sticky comment on a pull request
    /// (found by [`STICKY_MARKER`], which `body` must not contain: it is
    /// added). Returns the comment's id.
    pub async fn upsert_sticky(&self, repo: &str, number: u64, body: &str) -> Result<u64, ForgeError> {
        match self {
            Forge::Github(f) => f.upsert_sticky(repo, number, body).await,
            Forge::Gitlab(f) => f.upsert_sticky(repo, number, body).await,
            Forge::Git(f) => f.upsert_sticky(repo, number, body).await,
        }
    }

    /// Posts a new comment (answers to comment commands). Returns its id.
    pub async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<u64, ForgeError> {
        match self {
            Forge::Github(f) => f.comment(repo, number, body).await,
            Forge::Gitlab(f) => f.comment(repo, number, body).await,
            Forge::Git(f) => f.comment(repo, number, body).await,
        }
    }

    /// A login's permission on `repo`, if the forge can tell.
    pub async fn permission(&self, repo: &str, login: &str) -> Result<Option<Permission>, ForgeError> {
        match self {
            Forge::Github(f) => f.permission(repo, login).await,
            Forge::Gitlab(f) => f.permission(repo, login).await,
            Forge::Git(f) => f.permission(repo, login).await,
        }
    }

    /// Creates a deployment of `sha` to `environment`; `None` where the
    /// forge has no deployments.
    pub async fn create_deployment(
        &self,
        repo: &str,
        sha: &str,
        environment: &str,
        description: &str,
    ) -> Result<Option<u64>, ForgeError> {
        match self {
            Forge::Github(f) => f.create_deployment(repo, sha, environment, description).await,
            Forge::Gitlab(_) | Forge::Git(_) => Ok(None),
        }
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
        match self {
            Forge::Github(f) => f.deployment_status(repo, id, state, environment_url, log_url).await,
            Forge::Gitlab(_) | Forge::Git(_) => Ok(()),
        }
    }
}

/// The forge client for one repository of the configuration (see
/// [`Forge::build`]): `kind` from the component, `url` its `repo`,
/// `pending_refs` for `forge = "git"`.
pub fn for_repo(
    app: &crate::app::App,
    kind: ConfigForge,
    url: &str,
    pending_refs: Option<&str>,
) -> anyhow::Result<Forge> {
    Ok(Forge::build(
        &app.config.forges,
        kind,
        url,
        pending_refs,
        None,
        &app.paths.root,
    )?)
}

/// How long one request to a forge may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Items per page asked for (the most both forges give).
pub const PER_PAGE: usize = 100;
/// Pages followed at most (3000 items: GitHub lists no more files of a PR).
pub const MAX_PAGES: usize = 30;
/// Forges cut commit status descriptions at this many characters.
pub const MAX_DESCRIPTION: usize = 140;

/// The user agent greenroom's requests carry.
pub fn user_agent() -> String {
    format!("greenroom/{}", env!("CARGO_PKG_VERSION"))
}

/// `s` cut to at most `max` characters (an ellipsis marks a cut).
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Parses an RFC 3339 timestamp (`2024-01-02T03:04:05Z`,
/// `2024-01-02T03:04:05.123+02:00`) to milliseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            return None;
        }
        let frac = &s[start..end];
        let ms: String = frac.chars().chain("000".chars()).take(3).collect();
        millis = ms.parse().ok()?;
        i = end;
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// A token, kept out of `Debug` output.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// An answer from a forge.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// HTTP access to one hosted forge's REST API: base URL, client (timeouts,
/// user agent), authentication and fixed headers. `Debug` shows the forge
/// and the base URL only.
#[derive(Clone)]
pub(crate) struct Http {
    forge: &'static str,
    base: Url,
    client: reqwest::Client,
    headers: HeaderMap,
    token: Option<Secret>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("forge", &self.forge)
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Http {
    /// `api_url` must be `http(s)://host[:port][/prefix]`, without
    /// credentials. `auth` is the header carrying `token`, written by `value`.
    pub fn new(
        forge: &'static str,
        api_url: &str,
        mut headers: HeaderMap,
        auth: Option<(&'static str, String)>,
        token: Option<String>,
    ) -> Result<Http, ForgeError> {
        let base = Url::parse(api_url.trim())
            .map_err(|e| ForgeError::Config(format!("{forge}: api_url `{api_url}` is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() || base.host_str().is_none() {
            return Err(ForgeError::Config(format!(
                "{forge}: api_url `{api_url}` is not an http(s) URL"
            )));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(ForgeError::Config(format!(
                "{forge}: api_url must not carry credentials (use the token setting)"
            )));
        }
        if let Some((name, value)) = auth {
            let mut v = HeaderValue::from_str(&value).map_err(|_| {
                ForgeError::Config(format!("{forge}: the token has characters an HTTP header cannot carry"))
            })?;
            v.set_sensitive(true);
            headers.insert(name, v);
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(user_agent())
            // Renamed repositories answer with redirects; the token only
            // ever goes back to the API's own origin.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same_origin = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if attempt.previous().len() > 5 {
                    attempt.error("too many redirects")
                } else if same_origin {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .build()
            .map_err(|e| ForgeError::Config(format!("{forge}: cannot build an HTTP client: {e}")))?;
        Ok(Http {
            forge,
            base,
            client,
            headers,
            token: token.filter(|t| !t.is_empty()).map(Secret),
        })
    }

    /// The base URL plus `segments` (each escaped as one path segment: a
    /// `/` inside one becomes `%2F`) and `query`.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// What error messages show of a URL: path and query.
    pub fn shown(url: &Url) -> String {
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Removes the token from a text (forges may echo what they were sent).
    fn redact(&self, text: &str) -> String {
        match &self.token {
            Some(Secret(t)) if t.len() >= 4 => text.replace(t.as_str(), "[redacted]"),
            _ => text.to_string(),
        }
    }

    /// Sends one request; any answer (even 4xx/5xx) is `Ok`.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ForgeError> {
        let shown = Self::shown(url);
        let transport = |message: String| ForgeError::Transport {
            forge: self.forge,
            method: method.to_string(),
            path: shown.clone(),
            message,
        };
        let mut req = self
            .client
            .request(method.clone(), url.clone())
            .headers(self.headers.clone());
        if let Some(b) = body {
            let bytes = serde_json::to_vec(b).map_err(|e| transport(format!("cannot encode the request: {e}")))?;
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        let describe = |e: reqwest::Error| {
            let kind = if e.is_timeout() {
                format!("timed out after {}s", REQUEST_TIMEOUT.as_secs())
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else {
                "request failed".to_string()
            };
            let e = e.without_url();
            let mut msg = format!("{kind}: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(cause) = src {
                msg.push_str(&format!(": {cause}"));
                src = cause.source();
            }
            transport(self.redact(&msg))
        };
        let resp = req.send().await.map_err(describe)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(describe)?.to_vec();
        Ok(Answer { status, headers, body })
    }

    /// The error for a non-2xx answer: method, path, status and the forge's
    /// message (its `message`/`error` field when JSON), never the token.
    pub fn status_error(&self, method: &Method, url: &Url, answer: &Answer) -> ForgeError {
        let text = String::from_utf8_lossy(&answer.body);
        let message = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => {
                let main = v
                    .get("message")
                    .or_else(|| v.get("error"))
                    .map(|m| match m {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_else(|| v.to_string());
                match v.get("errors") {
                    Some(errors) => format!("{main} {errors}"),
                    None => main,
                }
            }
            Err(_) => text.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        ForgeError::Status {
            forge: self.forge,
            method: method.to_string(),
            path: Self::shown(url),
            status: answer.status,
            message: truncate_chars(&self.redact(&message), 300),
        }
    }

    /// Decodes a JSON answer.
    pub fn decode<T: DeserializeOwned>(&self, url: &Url, answer: &Answer) -> Result<T, ForgeError> {
        serde_json::from_slice(&answer.body).map_err(|e| ForgeError::Decode {
            forge: self.forge,
            path: Self::shown(url),
            message: e.to_string(),
        })
    }

    /// One request whose answer must be 2xx and JSON.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ForgeError> {
        let answer = self.send(method.clone(), url, body).await?;
        if !(200..300).contains(&answer.status) {
            return Err(self.status_error(&method, url, &answer));
        }
        self.decode(url, &answer)
    }

    /// Walks a list page by page (`per_page=100&page=N`) while `has_next`
    /// says there is more, at most [`MAX_PAGES`] pages. Returns the items
    /// and whether the list was read to its end.
    pub async fn pages<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        has_next: fn(&Answer, usize) -> bool,
    ) -> Result<(Vec<T>, bool), ForgeError> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut q = query.to_vec();
            q.push(("per_page", PER_PAGE.to_string()));
            q.push(("page", page.to_string()));
            let url = self.url(segments, &q);
            let answer = self.send(Method::GET, &url, None).await?;
            if !(200..300).contains(&answer.status) {
                return Err(self.status_error(&Method::GET, &url, &answer));
            }
            let items: Vec<T> = self.decode(&url, &answer)?;
            let n = items.len();
            all.extend(items);
            if n == 0 || !has_next(&answer, n) {
                return Ok((all, true));
            }
        }
        Ok((all, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_as_forges_write_it() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123Z"), Some(1_700_000_000_123));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.1234567Z"), Some(1_700_000_000_123));
        assert_eq!(parse_rfc3339("2023-11-15T00:13:20.000+02:00"), Some(1_700_000_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T20:13:20-02:00"), Some(1_700_000_000_000));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        for bad in [
            "",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13:20.Z",
            "x023-11-14T22:13:20Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn truncates_by_characters() {
        assert_eq!(truncate_chars("short", 140), "short");
        let cut = truncate_chars(&"é".repeat(200), 140);
        assert_eq!(cut.chars().count(), 140);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn urls_escape_each_segment() {
        let http = Http::new("gitlab", "http://127.0.0.1:1/api/v4/", HeaderMap::new(), None, None).unwrap();
        let url = http.url(&["projects", "g/s/p", "statuses", "a b"], &[("q", "x&y".into())]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/api/v4/projects/g%2Fs%2Fp/statuses/a%20b?q=x%26y"
        );
        assert_eq!(Http::shown(&url), "/api/v4/projects/g%2Fs%2Fp/statuses/a%20b?q=x%26y");
        assert!(!format!("{http:?}").is_empty());
    }
}
