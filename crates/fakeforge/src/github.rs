//! The fake GitHub: the REST v3 endpoints greenroom's GitHub adapter uses
//! (pull requests and their files, commit statuses, issue comments,
//! collaborator permissions, deployments and their statuses), with GitHub's
//! field names, status codes, error bodies and `Link` pagination.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::{Incoming, Recorded, Reply, Server, link_header, lock, match_template, now_secs, paginate, rfc3339};

const DOCS: &str = "https://docs.github.com/rest";

/// Every `(method, path template)` the fake GitHub serves, in GitHub's
/// documented spelling. The router matches requests against this table.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/repos/{owner}/{repo}/pulls"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files"),
    ("POST", "/repos/{owner}/{repo}/statuses/{sha}"),
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission"),
    ("POST", "/repos/{owner}/{repo}/deployments"),
    ("POST", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"),
];

/// A pull request to add to the fake ([`FakeGithub::add_pr`]).
#[derive(Debug, Clone)]
pub struct NewPr {
    /// Title.
    pub title: String,
    /// Author's login.
    pub author: String,
    /// Draft.
    pub draft: bool,
    /// Label names.
    pub labels: Vec<String>,
    /// The branch it targets (`base.ref`).
    pub base: String,
    /// Its branch (`head.ref`).
    pub head_ref: String,
    /// Its head commit; empty: a SHA derived from the number.
    pub head_sha: String,
    /// Description (`null` on GitHub when empty).
    pub body: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Files it changes.
    pub files: Vec<FileChange>,
}

impl Default for NewPr {
    fn default() -> Self {
        NewPr {
            title: "A change".into(),
            author: "octocat".into(),
            draft: false,
            labels: Vec::new(),
            base: "main".into(),
            head_ref: String::new(),
            head_sha: String::new(),
            body: None,
            created_at: "2024-01-01T00:00:00Z".into(),
            updated_at: "2024-01-01T00:00:00Z".into(),
            files: Vec::new(),
        }
    }
}

/// A file a pull request changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Its path after the change.
    pub filename: String,
    /// Its path before, for renames.
    pub previous_filename: Option<String>,
    /// `added`, `removed`, `modified`, `renamed`.
    pub status: String,
}

impl FileChange {
    /// A modified file.
    pub fn modified(path: &str) -> FileChange {
        FileChange {
            filename: path.into(),
            previous_filename: None,
            status: "modified".into(),
        }
    }

    /// An added file.
    pub fn added(path: &str) -> FileChange {
        FileChange {
            status: "added".into(),
            ..FileChange::modified(path)
        }
    }

    /// A removed file.
    pub fn removed(path: &str) -> FileChange {
        FileChange {
            status: "removed".into(),
            ..FileChange::modified(path)
        }
    }

    /// A renamed file.
    pub fn renamed(from: &str, to: &str) -> FileChange {
        FileChange {
            filename: to.into(),
            previous_filename: Some(from.into()),
            status: "renamed".into(),
        }
    }
}

/// A commit status the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhStatus {
    /// Its id.
    pub id: u64,
    /// The commit.
    pub sha: String,
    /// `error`, `failure`, `pending`, `success`.
    pub state: String,
    /// Link.
    pub target_url: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Context (`default` when not given).
    pub context: String,
}

/// An issue comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhComment {
    /// Its id.
    pub id: u64,
    /// The issue or pull request it is on.
    pub issue_number: u64,
    /// Author's login.
    pub author: String,
    /// Current body.
    pub body: String,
    /// Bodies it had before each edit, oldest first.
    pub edits: Vec<String>,
}

/// A deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhDeployment {
    /// Its id.
    pub id: u64,
    /// The `ref` asked for.
    pub git_ref: String,
    /// The commit it resolved to.
    pub sha: String,
    /// Environment.
    pub environment: String,
    /// Description.
    pub description: Option<String>,
    /// Task (`deploy`).
    pub task: String,
    /// `auto_merge` (GitHub's default: true).
    pub auto_merge: bool,
    /// `required_contexts` as sent (`None`: GitHub checks every context).
    pub required_contexts: Option<Vec<String>>,
    /// `transient_environment`.
    pub transient_environment: bool,
    /// `production_environment`.
    pub production_environment: bool,
    /// Its statuses, oldest first.
    pub statuses: Vec<GhDeploymentStatus>,
}

/// A deployment status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhDeploymentStatus {
    /// Its id.
    pub id: u64,
    /// `error`, `failure`, `inactive`, `in_progress`, `queued`, `pending`, `success`.
    pub state: String,
    /// `environment_url`.
    pub environment_url: Option<String>,
    /// `log_url`.
    pub log_url: Option<String>,
    /// `description`.
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
struct Pr {
    number: u64,
    open: bool,
    spec: NewPr,
}

#[derive(Debug, Default)]
struct Repo {
    full_name: String,
    id: u64,
    next_number: u64,
    prs: BTreeMap<u64, Pr>,
    commits: BTreeSet<String>,
    comments: Vec<GhComment>,
    statuses: Vec<GhStatus>,
    perms: BTreeMap<String, String>,
    deployments: Vec<GhDeployment>,
}

#[derive(Debug)]
struct St {
    token: String,
    login: String,
    base: String,
    repos: BTreeMap<String, Repo>,
    next_id: u64,
    fail_next: VecDeque<u16>,
}

impl St {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn repo_mut(&mut self, full_name: &str) -> &mut Repo {
        let key = full_name.to_ascii_lowercase();
        if !self.repos.contains_key(&key) {
            let id = self.id();
            self.repos.insert(
                key.clone(),
                Repo {
                    full_name: full_name.to_string(),
                    id,
                    next_number: 1,
                    ..Repo::default()
                },
            );
        }
        self.repos.entry(key).or_default()
    }
}

/// A fake GitHub API on `127.0.0.1` (see the crate docs). Stops when dropped.
#[derive(Debug)]
pub struct FakeGithub {
    server: Server,
    state: Arc<Mutex<St>>,
}

impl FakeGithub {
    /// Every `(method, path template)` served ([`ROUTES`]).
    pub const ROUTES: &'static [(&'static str, &'static str)] = ROUTES;

    /// Starts a fake GitHub that accepts `Authorization: Bearer <token>`
    /// (or `token <token>`); its requests are made as the user
    /// `greenroom-bot` ([`FakeGithub::set_token_login`]).
    pub fn start(token: &str) -> std::io::Result<FakeGithub> {
        let state = Arc::new(Mutex::new(St {
            token: token.to_string(),
            login: "greenroom-bot".into(),
            base: String::new(),
            repos: BTreeMap::new(),
            next_id: 1000,
            fail_next: VecDeque::new(),
        }));
        let st = state.clone();
        let server = Server::start("github", Arc::new(move |inc: &Incoming| handle(&mut lock(&st), inc)))?;
        lock(&state).base = server.base();
        Ok(FakeGithub { server, state })
    }

    /// The API's base URL (`http://127.0.0.1:PORT`), as `api_url`.
    pub fn url(&self) -> String {
        self.server.base()
    }

    /// The login requests made with the token act as.
    pub fn set_token_login(&self, login: &str) {
        lock(&self.state).login = login.to_string();
    }

    /// Adds a repository (`owner/name`); adding PRs adds it too.
    pub fn add_repo(&self, full_name: &str) {
        lock(&self.state).repo_mut(full_name);
    }

    /// Adds an open pull request; returns its number.
    pub fn add_pr(&self, repo: &str, mut pr: NewPr) -> u64 {
        let mut st = lock(&self.state);
        let r = st.repo_mut(repo);
        let number = r.next_number;
        r.next_number += 1;
        if pr.head_sha.is_empty() {
            pr.head_sha = format!("{:040x}", 0xabc0_0000_u64 + number);
        }
        if pr.head_ref.is_empty() {
            pr.head_ref = format!("change-{number}");
        }
        r.prs.insert(
            number,
            Pr {
                number,
                open: true,
                spec: pr,
            },
        );
        number
    }

    /// Closes a pull request.
    pub fn close_pr(&self, repo: &str, number: u64) {
        if let Some(pr) = lock(&self.state).repo_mut(repo).prs.get_mut(&number) {
            pr.open = false;
        }
    }

    /// Makes a commit known (statuses and deployments need known commits;
    /// pull request heads are known).
    pub fn add_commit(&self, repo: &str, sha: &str) {
        lock(&self.state).repo_mut(repo).commits.insert(sha.to_string());
    }

    /// Adds a comment by someone on an issue or pull request; returns its id.
    pub fn add_comment(&self, repo: &str, number: u64, author: &str, body: &str) -> u64 {
        let mut st = lock(&self.state);
        let id = st.id();
        st.repo_mut(repo).comments.push(GhComment {
            id,
            issue_number: number,
            author: author.to_string(),
            body: body.to_string(),
            edits: Vec::new(),
        });
        id
    }

    /// Gives `login` a role on `repo`: `admin`, `maintain`, `write`,
    /// `triage`, `read` or `none`. Logins without one are unknown (404).
    pub fn set_permission(&self, repo: &str, login: &str, role: &str) {
        lock(&self.state)
            .repo_mut(repo)
            .perms
            .insert(login.to_ascii_lowercase(), role.to_string());
    }

    /// The commit statuses received for `repo`, oldest first.
    pub fn statuses(&self, repo: &str) -> Vec<GhStatus> {
        lock(&self.state).repo_mut(repo).statuses.clone()
    }

    /// The comments on issue or pull request `number`, oldest first.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<GhComment> {
        lock(&self.state)
            .repo_mut(repo)
            .comments
            .iter()
            .filter(|c| c.issue_number == number)
            .cloned()
            .collect()
    }

    /// The deployments created on `repo`, oldest first.
    pub fn deployments(&self, repo: &str) -> Vec<GhDeployment> {
        lock(&self.state).repo_mut(repo).deployments.clone()
    }

    /// Answers the next `times` requests with `status` (e.g. 500, 502),
    /// whatever they are.
    pub fn fail_next(&self, status: u16, times: usize) {
        let mut st = lock(&self.state);
        for _ in 0..times {
            st.fail_next.push_back(status);
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.server.clear_requests();
    }
}

fn err(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"message": message, "documentation_url": DOCS, "status": status.to_string()}),
    )
}

fn invalid(resource: &str, field: &str, code: &str, message: &str) -> Reply {
    Reply::json(
        422,
        json!({
            "message": "Validation Failed",
            "errors": [{"resource": resource, "field": field, "code": code, "message": message}],
            "documentation_url": DOCS,
            "status": "422"
        }),
    )
}

fn not_found() -> Reply {
    err(404, "Not Found")
}

fn handle(st: &mut St, inc: &Incoming) -> Reply {
    if let Some(code) = st.fail_next.pop_front() {
        return err(code, "Server Error");
    }
    let presented = inc.header("authorization").map(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("token "))
            .unwrap_or("")
    });
    match presented {
        None => return err(401, "Requires authentication"),
        Some(t) if t != st.token => return err(401, "Bad credentials"),
        Some(_) => {}
    }
    let mut route = None;
    for (i, (method, template)) in ROUTES.iter().enumerate() {
        if let Some(params) = match_template(template, &inc.segments)
            && *method == inc.method
        {
            route = Some((i, params));
            break;
        }
    }
    let Some((i, p)) = route else {
        return not_found();
    };
    let body: Value = if inc.body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&inc.body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return err(400, "Problems parsing JSON"),
        }
    };
    let full = format!("{}/{}", p[0], p[1]);
    let key = full.to_ascii_lowercase();
    if !st.repos.contains_key(&key) {
        return not_found();
    }
    let number = |s: &str| s.parse::<u64>().ok();
    match i {
        0 => list_pulls(st, &key, inc),
        1 => match number(&p[2]) {
            Some(n) => list_files(st, &key, n, inc),
            None => not_found(),
        },
        2 => create_status(st, &key, &p[2], &body),
        3 => match number(&p[2]) {
            Some(n) => list_comments(st, &key, n, inc),
            None => not_found(),
        },
        4 => match number(&p[2]) {
            Some(n) => create_comment(st, &key, n, &body),
            None => not_found(),
        },
        5 => match number(&p[2]) {
            Some(id) => edit_comment(st, &key, id, &body),
            None => not_found(),
        },
        6 => permission(st, &key, &p[2]),
        7 => create_deployment(st, &key, &body),
        8 => match number(&p[2]) {
            Some(id) => create_deployment_status(st, &key, id, &body),
            None => not_found(),
        },
        _ => not_found(),
    }
}

fn user(login: &str) -> Value {
    let id = login
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 100_000_000;
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}"),
        "html_url": format!("https://github.com/{login}"),
        "type": if login.ends_with("[bot]") { "Bot" } else { "User" },
        "site_admin": false
    })
}

fn repo_json(r: &Repo) -> Value {
    let (owner, name) = r.full_name.split_once('/').unwrap_or((&r.full_name, ""));
    json!({
        "id": r.id,
        "node_id": format!("R_{}", r.id),
        "name": name,
        "full_name": r.full_name,
        "owner": user(owner),
        "private": false,
        "html_url": format!("https://github.com/{}", r.full_name),
        "default_branch": "main"
    })
}

fn paged(st: &St, inc: &Incoming, items: Vec<Value>) -> Reply {
    let (page, n, _, last) = paginate(&items, inc, 30);
    let mut reply = Reply::json(200, Value::Array(page));
    if let Some(link) = link_header(&st.base, inc, n, last, &["prev", "next", "last", "first"], false) {
        reply = reply.with_header("link", link);
    }
    reply
}

fn pr_json(r: &Repo, pr: &Pr) -> Value {
    let s = &pr.spec;
    let url = format!("https://api.github.com/repos/{}/pulls/{}", r.full_name, pr.number);
    json!({
        "url": url,
        "id": r.id * 100_000 + pr.number,
        "node_id": format!("PR_{}_{}", r.id, pr.number),
        "html_url": format!("https://github.com/{}/pull/{}", r.full_name, pr.number),
        "diff_url": format!("https://github.com/{}/pull/{}.diff", r.full_name, pr.number),
        "number": pr.number,
        "state": if pr.open { "open" } else { "closed" },
        "locked": false,
        "title": s.title,
        "user": user(&s.author),
        "body": s.body,
        "labels": s.labels.iter().enumerate().map(|(i, l)| json!({
            "id": i + 1, "node_id": format!("L_{i}"), "url": format!("https://api.github.com/repos/{}/labels/{l}", r.full_name),
            "name": l, "color": "ededed", "default": false, "description": null
        })).collect::<Vec<_>>(),
        "draft": s.draft,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "closed_at": if pr.open { Value::Null } else { json!(s.updated_at) },
        "merged_at": null,
        "merge_commit_sha": null,
        "assignees": [],
        "requested_reviewers": [],
        "head": {
            "label": format!("{}:{}", s.author, s.head_ref),
            "ref": s.head_ref,
            "sha": s.head_sha,
            "user": user(&s.author),
            "repo": repo_json(r)
        },
        "base": {
            "label": format!("{}:{}", r.full_name.split('/').next().unwrap_or_default(), s.base),
            "ref": s.base,
            "sha": format!("{:040x}", r.id),
            "user": user(r.full_name.split('/').next().unwrap_or_default()),
            "repo": repo_json(r)
        },
        "author_association": "CONTRIBUTOR",
        "auto_merge": null
    })
}

fn list_pulls(st: &St, key: &str, inc: &Incoming) -> Reply {
    let Some(r) = st.repos.get(key) else {
        return not_found();
    };
    let state = inc.param("state").unwrap_or("open");
    if !matches!(state, "open" | "closed" | "all") {
        return invalid(
            "PullRequest",
            "state",
            "invalid",
            "state must be one of open, closed, all",
        );
    }
    let sort = inc.param("sort").unwrap_or("created");
    let desc = match inc.param("direction") {
        Some("asc") => false,
        Some("desc") => true,
        Some(_) => return invalid("PullRequest", "direction", "invalid", "direction must be asc or desc"),
        None => sort == "created",
    };
    let mut prs: Vec<&Pr> = r
        .prs
        .values()
        .filter(|p| match state {
            "open" => p.open,
            "closed" => !p.open,
            _ => true,
        })
        .filter(|p| inc.param("base").is_none_or(|b| p.spec.base == b))
        .collect();
    prs.sort_by(|a, b| {
        let (ka, kb) = if sort == "updated" {
            (&a.spec.updated_at, &b.spec.updated_at)
        } else {
            (&a.spec.created_at, &b.spec.created_at)
        };
        ka.cmp(kb).then(a.number.cmp(&b.number))
    });
    if desc {
        prs.reverse();
    }
    let items = prs.iter().map(|p| pr_json(r, p)).collect();
    paged(st, inc, items)
}

fn list_files(st: &St, key: &str, number: u64, inc: &Incoming) -> Reply {
    let Some(r) = st.repos.get(key) else {
        return not_found();
    };
    let Some(pr) = r.prs.get(&number) else {
        return not_found();
    };
    let items = pr
        .spec
        .files
        .iter()
        .take(3000)
        .enumerate()
        .map(|(i, f)| {
            let mut v = json!({
                "sha": format!("{:040x}", i + 1),
                "filename": f.filename,
                "status": f.status,
                "additions": 1,
                "deletions": 1,
                "changes": 2,
                "blob_url": format!("https://github.com/{}/blob/{}/{}", r.full_name, pr.spec.head_sha, f.filename),
                "raw_url": format!("https://github.com/{}/raw/{}/{}", r.full_name, pr.spec.head_sha, f.filename),
                "contents_url": format!("https://api.github.com/repos/{}/contents/{}?ref={}", r.full_name, f.filename, pr.spec.head_sha),
                "patch": "@@ -1 +1 @@\n-a\n+b"
            });
            if let (Some(prev), Some(obj)) = (&f.previous_filename, v.as_object_mut()) {
                obj.insert("previous_filename".into(), json!(prev));
            }
            v
        })
        .collect();
    paged(st, inc, items)
}

fn known_commit(r: &Repo, sha: &str) -> bool {
    r.commits.contains(sha) || r.prs.values().any(|p| p.spec.head_sha == sha)
}

fn opt_str(body: &Value, field: &str) -> Result<Option<String>, Reply> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(
            "Resource",
            field,
            "invalid",
            &format!("{field} is not a string"),
        )),
    }
}

fn opt_bool(body: &Value, field: &str, default: bool) -> Result<bool, Reply> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(
            "Resource",
            field,
            "invalid",
            &format!("{field} is not a boolean"),
        )),
    }
}

fn create_status(st: &mut St, key: &str, sha: &str, body: &Value) -> Reply {
    let fields = (|| -> Result<_, Reply> {
        Ok((
            opt_str(body, "state")?,
            opt_str(body, "target_url")?,
            opt_str(body, "description")?,
            opt_str(body, "context")?,
        ))
    })();
    let (state, target_url, description, context) = match fields {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(state) = state.filter(|s| matches!(s.as_str(), "error" | "failure" | "pending" | "success")) else {
        return invalid("Status", "state", "custom", "state is not included in the list");
    };
    if description.as_ref().is_some_and(|d| d.chars().count() > 140) {
        return invalid(
            "Status",
            "description",
            "custom",
            "description is too long (maximum is 140 characters)",
        );
    }
    let id = st.id();
    let login = st.login.clone();
    let Some(r) = st.repos.get_mut(key) else {
        return not_found();
    };
    if !known_commit(r, sha) {
        return err(422, &format!("No commit found for SHA: {sha}"));
    }
    let status = GhStatus {
        id,
        sha: sha.to_string(),
        state,
        target_url,
        description,
        context: context.unwrap_or_else(|| "default".into()),
    };
    r.statuses.push(status.clone());
    let now = rfc3339(now_secs(), false);
    let url = format!("https://api.github.com/repos/{}/statuses/{sha}", r.full_name);
    Reply::json(
        201,
        json!({
            "url": url,
            "avatar_url": null,
            "id": id,
            "node_id": format!("SC_{id}"),
            "state": status.state,
            "description": status.description,
            "target_url": status.target_url,
            "context": status.context,
            "created_at": now,
            "updated_at": now,
            "creator": user(&login)
        }),
    )
    .with_header("location", url)
}

fn comment_json(r: &Repo, c: &GhComment) -> Value {
    let now = rfc3339(now_secs(), false);
    json!({
        "id": c.id,
        "node_id": format!("IC_{}", c.id),
        "url": format!("https://api.github.com/repos/{}/issues/comments/{}", r.full_name, c.id),
        "html_url": format!("https://github.com/{}/pull/{}#issuecomment-{}", r.full_name, c.issue_number, c.id),
        "issue_url": format!("https://api.github.com/repos/{}/issues/{}", r.full_name, c.issue_number),
        "body": c.body,
        "user": user(&c.author),
        "created_at": now,
        "updated_at": now,
        "author_association": "NONE"
    })
}

fn list_comments(st: &St, key: &str, number: u64, inc: &Incoming) -> Reply {
    let Some(r) = st.repos.get(key) else {
        return not_found();
    };
    if !r.prs.contains_key(&number) {
        return not_found();
    }
    let items = r
        .comments
        .iter()
        .filter(|c| c.issue_number == number)
        .map(|c| comment_json(r, c))
        .collect();
    paged(st, inc, items)
}

fn required_body(body: &Value) -> Result<String, Reply> {
    match opt_str(body, "body")? {
        Some(b) if !b.is_empty() => Ok(b),
        _ => Err(invalid("IssueComment", "body", "missing_field", "body is missing")),
    }
}

fn create_comment(st: &mut St, key: &str, number: u64, body: &Value) -> Reply {
    let text = match required_body(body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let id = st.id();
    let login = st.login.clone();
    let Some(r) = st.repos.get_mut(key) else {
        return not_found();
    };
    if !r.prs.contains_key(&number) {
        return not_found();
    }
    let c = GhComment {
        id,
        issue_number: number,
        author: login,
        body: text,
        edits: Vec::new(),
    };
    r.comments.push(c.clone());
    let v = comment_json(r, &c);
    let location = v["url"].as_str().unwrap_or_default().to_string();
    Reply::json(201, v).with_header("location", location)
}

fn edit_comment(st: &mut St, key: &str, id: u64, body: &Value) -> Reply {
    let text = match required_body(body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(r) = st.repos.get_mut(key) else {
        return not_found();
    };
    let Some(c) = r.comments.iter_mut().find(|c| c.id == id) else {
        return not_found();
    };
    let old = std::mem::replace(&mut c.body, text);
    c.edits.push(old);
    let c = c.clone();
    Reply::json(200, comment_json(r, &c))
}

fn permission(st: &St, key: &str, login: &str) -> Reply {
    let Some(r) = st.repos.get(key) else {
        return not_found();
    };
    let Some(role) = r.perms.get(&login.to_ascii_lowercase()) else {
        return not_found();
    };
    let legacy = match role.as_str() {
        "admin" => "admin",
        "maintain" | "write" => "write",
        "triage" | "read" => "read",
        _ => "none",
    };
    let mut u = user(login);
    if let Some(o) = u.as_object_mut() {
        o.insert(
            "permissions".into(),
            json!({
                "admin": role == "admin",
                "maintain": matches!(role.as_str(), "admin" | "maintain"),
                "push": matches!(role.as_str(), "admin" | "maintain" | "write"),
                "triage": matches!(role.as_str(), "admin" | "maintain" | "write" | "triage"),
                "pull": role != "none"
            }),
        );
        o.insert("role_name".into(), json!(role));
    }
    Reply::json(200, json!({"permission": legacy, "role_name": role, "user": u}))
}

fn deployment_json(r: &Repo, d: &GhDeployment, creator: &str) -> Value {
    let now = rfc3339(now_secs(), false);
    let url = format!("https://api.github.com/repos/{}/deployments/{}", r.full_name, d.id);
    json!({
        "url": url,
        "id": d.id,
        "node_id": format!("DE_{}", d.id),
        "sha": d.sha,
        "ref": d.git_ref,
        "task": d.task,
        "payload": {},
        "original_environment": d.environment,
        "environment": d.environment,
        "description": d.description,
        "creator": user(creator),
        "created_at": now,
        "updated_at": now,
        "statuses_url": format!("{url}/statuses"),
        "repository_url": format!("https://api.github.com/repos/{}", r.full_name),
        "transient_environment": d.transient_environment,
        "production_environment": d.production_environment
    })
}

fn create_deployment(st: &mut St, key: &str, body: &Value) -> Reply {
    let parsed = (|| -> Result<_, Reply> {
        let git_ref = opt_str(body, "ref")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("Deployment", "ref", "missing_field", "ref is missing"))?;
        let environment = opt_str(body, "environment")?.unwrap_or_else(|| "production".into());
        let required_contexts = match body.get("required_contexts") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| v.as_str().map(String::from))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid("Deployment", "required_contexts", "invalid", "not strings"))?,
            ),
            Some(_) => return Err(invalid("Deployment", "required_contexts", "invalid", "not an array")),
        };
        Ok(GhDeployment {
            id: 0,
            sha: String::new(),
            description: opt_str(body, "description")?,
            task: opt_str(body, "task")?.unwrap_or_else(|| "deploy".into()),
            auto_merge: opt_bool(body, "auto_merge", true)?,
            transient_environment: opt_bool(body, "transient_environment", false)?,
            production_environment: opt_bool(body, "production_environment", environment == "production")?,
            required_contexts,
            environment,
            git_ref,
            statuses: Vec::new(),
        })
    })();
    let mut d = match parsed {
        Ok(d) => d,
        Err(r) => return r,
    };
    d.id = st.id();
    let login = st.login.clone();
    let Some(r) = st.repos.get_mut(key) else {
        return not_found();
    };
    let sha = if known_commit(r, &d.git_ref) {
        Some(d.git_ref.clone())
    } else {
        r.prs
            .values()
            .find(|p| p.spec.head_ref == d.git_ref)
            .map(|p| p.spec.head_sha.clone())
    };
    let Some(sha) = sha else {
        return err(422, &format!("No ref found for: {}", d.git_ref));
    };
    d.sha = sha;
    // Without `required_contexts`, GitHub wants every context's latest
    // status on the commit to be a success.
    if d.required_contexts.is_none() {
        let mut latest: BTreeMap<&str, &str> = BTreeMap::new();
        for s in r.statuses.iter().filter(|s| s.sha == d.sha) {
            latest.insert(&s.context, &s.state);
        }
        if latest.values().any(|s| *s != "success") {
            return err(
                409,
                &format!("Conflict: Commit status checks failed for {}.", d.git_ref),
            );
        }
    }
    r.deployments.push(d.clone());
    let v = deployment_json(r, &d, &login);
    Reply::json(201, v)
}

fn create_deployment_status(st: &mut St, key: &str, id: u64, body: &Value) -> Reply {
    let parsed = (|| -> Result<_, Reply> {
        let state = opt_str(body, "state")?
            .filter(|s| {
                matches!(
                    s.as_str(),
                    "error" | "failure" | "inactive" | "in_progress" | "queued" | "pending" | "success"
                )
            })
            .ok_or_else(|| {
                invalid(
                    "DeploymentStatus",
                    "state",
                    "custom",
                    "state is not included in the list",
                )
            })?;
        Ok(GhDeploymentStatus {
            id: 0,
            state,
            environment_url: opt_str(body, "environment_url")?,
            log_url: opt_str(body, "log_url")?.or(opt_str(body, "target_url")?),
            description: opt_str(body, "description")?,
        })
    })();
    let mut s = match parsed {
        Ok(s) => s,
        Err(r) => return r,
    };
    s.id = st.id();
    let login = st.login.clone();
    let Some(r) = st.repos.get_mut(key) else {
        return not_found();
    };
    let full_name = r.full_name.clone();
    let Some(d) = r.deployments.iter_mut().find(|d| d.id == id) else {
        return not_found();
    };
    d.statuses.push(s.clone());
    let now = rfc3339(now_secs(), false);
    let durl = format!("https://api.github.com/repos/{full_name}/deployments/{id}");
    Reply::json(
        201,
        json!({
            "url": format!("{durl}/statuses/{}", s.id),
            "id": s.id,
            "node_id": format!("DES_{}", s.id),
            "state": s.state,
            "creator": user(&login),
            "description": s.description.clone().unwrap_or_default(),
            "environment": d.environment,
            "target_url": s.log_url.clone().unwrap_or_default(),
            "log_url": s.log_url,
            "environment_url": s.environment_url.clone().unwrap_or_default(),
            "created_at": now,
            "updated_at": now,
            "deployment_url": durl,
            "repository_url": format!("https://api.github.com/repos/{full_name}")
        }),
    )
}
