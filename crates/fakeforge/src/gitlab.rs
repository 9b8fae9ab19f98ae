//! The fake GitLab: the REST v4 endpoints greenroom's GitLab adapter uses
//! (merge requests and their diffs, commit statuses, merge request notes,
//! project members), with GitLab's field names, status codes, error bodies
//! (`{"message": "404 Project Not Found"}`, `{"error": "state is missing"}`)
//! and pagination headers (`x-total`, `x-next-page`, `link`, ...).
//! Projects are addressed by numeric id or URL-encoded full path.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use crate::{
    Incoming, Recorded, Reply, Server, link_header, lock, match_template, now_secs, paginate, parse_query, rfc3339,
};

/// Every `(method, path template)` the fake GitLab serves, in GitLab's
/// documented spelling. The router matches requests against this table.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v4/projects/:id/merge_requests"),
    ("GET", "/api/v4/projects/:id/merge_requests/:merge_request_iid/diffs"),
    ("POST", "/api/v4/projects/:id/statuses/:sha"),
    ("GET", "/api/v4/projects/:id/merge_requests/:merge_request_iid/notes"),
    ("POST", "/api/v4/projects/:id/merge_requests/:merge_request_iid/notes"),
    (
        "PUT",
        "/api/v4/projects/:id/merge_requests/:merge_request_iid/notes/:note_id",
    ),
    ("GET", "/api/v4/projects/:id/members/all"),
];

/// A merge request to add to the fake ([`FakeGitlab::add_mr`]).
#[derive(Debug, Clone)]
pub struct NewMr {
    /// Title.
    pub title: String,
    /// Author's username.
    pub author: String,
    /// Draft.
    pub draft: bool,
    /// Labels.
    pub labels: Vec<String>,
    /// Target branch.
    pub target_branch: String,
    /// Source branch; empty: derived from the iid.
    pub source_branch: String,
    /// Head commit; empty: derived from the iid.
    pub sha: String,
    /// Description.
    pub description: Option<String>,
    /// RFC 3339 (GitLab writes milliseconds: `2024-01-01T00:00:00.000Z`).
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// What it changes.
    pub diffs: Vec<MrDiff>,
}

impl Default for NewMr {
    fn default() -> Self {
        NewMr {
            title: "A change".into(),
            author: "alice".into(),
            draft: false,
            labels: Vec::new(),
            target_branch: "main".into(),
            source_branch: String::new(),
            sha: String::new(),
            description: None,
            created_at: "2024-01-01T00:00:00.000Z".into(),
            updated_at: "2024-01-01T00:00:00.000Z".into(),
            diffs: Vec::new(),
        }
    }
}

/// One file of a merge request's diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrDiff {
    /// Path before.
    pub old_path: String,
    /// Path after.
    pub new_path: String,
    /// Added.
    pub new_file: bool,
    /// Renamed.
    pub renamed_file: bool,
    /// Deleted.
    pub deleted_file: bool,
}

impl MrDiff {
    /// A modified file.
    pub fn modified(path: &str) -> MrDiff {
        MrDiff {
            old_path: path.into(),
            new_path: path.into(),
            new_file: false,
            renamed_file: false,
            deleted_file: false,
        }
    }

    /// An added file.
    pub fn added(path: &str) -> MrDiff {
        MrDiff {
            new_file: true,
            ..MrDiff::modified(path)
        }
    }

    /// A deleted file.
    pub fn deleted(path: &str) -> MrDiff {
        MrDiff {
            deleted_file: true,
            ..MrDiff::modified(path)
        }
    }

    /// A renamed file.
    pub fn renamed(from: &str, to: &str) -> MrDiff {
        MrDiff {
            old_path: from.into(),
            new_path: to.into(),
            renamed_file: true,
            ..MrDiff::modified(to)
        }
    }
}

/// A commit status the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlStatus {
    /// Its id.
    pub id: u64,
    /// The commit.
    pub sha: String,
    /// `pending`, `running`, `success`, `failed`, `canceled`, `skipped`.
    pub state: String,
    /// `name` (or `context`); `default` when not given.
    pub name: String,
    /// `ref`.
    pub git_ref: Option<String>,
    /// Link.
    pub target_url: Option<String>,
    /// Description.
    pub description: Option<String>,
}

/// A merge request note (comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlNote {
    /// Its id.
    pub id: u64,
    /// The merge request's iid.
    pub mr_iid: u64,
    /// Author's username.
    pub author: String,
    /// Current body.
    pub body: String,
    /// A system note (GitLab's own "added 1 commit" lines).
    pub system: bool,
    /// Bodies it had before each edit, oldest first.
    pub edits: Vec<String>,
}

/// A project member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlMember {
    /// User id.
    pub id: u64,
    /// Username.
    pub username: String,
    /// Display name.
    pub name: String,
    /// 10 guest, 20 reporter, 30 developer, 40 maintainer, 50 owner.
    pub access_level: u64,
}

#[derive(Debug, Clone)]
struct Mr {
    id: u64,
    iid: u64,
    state: &'static str,
    spec: NewMr,
}

#[derive(Debug, Default)]
struct Project {
    id: u64,
    path: String,
    next_iid: u64,
    mrs: BTreeMap<u64, Mr>,
    commits: BTreeSet<String>,
    statuses: Vec<GlStatus>,
    notes: Vec<GlNote>,
    members: Vec<GlMember>,
}

#[derive(Debug)]
struct St {
    token: String,
    username: String,
    base: String,
    projects: BTreeMap<String, Project>,
    next_id: u64,
    legacy_wip: bool,
    fail_next: VecDeque<u16>,
}

impl St {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn project_mut(&mut self, path: &str) -> &mut Project {
        let key = path.to_ascii_lowercase();
        if !self.projects.contains_key(&key) {
            let id = self.id();
            self.projects.insert(
                key.clone(),
                Project {
                    id,
                    path: path.to_string(),
                    next_iid: 1,
                    ..Project::default()
                },
            );
        }
        self.projects.entry(key).or_default()
    }

    /// The project named by `:id`: its numeric id or its full path.
    fn find(&self, id: &str) -> Option<String> {
        let key = id.to_ascii_lowercase();
        if self.projects.contains_key(&key) {
            return Some(key);
        }
        let n: u64 = id.parse().ok()?;
        self.projects.iter().find(|(_, p)| p.id == n).map(|(k, _)| k.clone())
    }
}

/// A fake GitLab API on `127.0.0.1` (see the crate docs). Stops when dropped.
#[derive(Debug)]
pub struct FakeGitlab {
    server: Server,
    state: Arc<Mutex<St>>,
}

impl FakeGitlab {
    /// Every `(method, path template)` served ([`ROUTES`]).
    pub const ROUTES: &'static [(&'static str, &'static str)] = ROUTES;

    /// Starts a fake GitLab that accepts `PRIVATE-TOKEN: <token>` (or
    /// `Authorization: Bearer <token>`); its requests are made as the user
    /// `greenroom-bot` ([`FakeGitlab::set_token_username`]).
    pub fn start(token: &str) -> std::io::Result<FakeGitlab> {
        let state = Arc::new(Mutex::new(St {
            token: token.to_string(),
            username: "greenroom-bot".into(),
            base: String::new(),
            projects: BTreeMap::new(),
            next_id: 100,
            legacy_wip: false,
            fail_next: VecDeque::new(),
        }));
        let st = state.clone();
        let server = Server::start("gitlab", Arc::new(move |inc: &Incoming| handle(&mut lock(&st), inc)))?;
        lock(&state).base = server.base();
        Ok(FakeGitlab { server, state })
    }

    /// The API's base URL (`http://127.0.0.1:PORT/api/v4`), as `api_url`.
    pub fn url(&self) -> String {
        format!("{}/api/v4", self.server.base())
    }

    /// The username requests made with the token act as.
    pub fn set_token_username(&self, username: &str) {
        lock(&self.state).username = username.to_string();
    }

    /// Answer like GitLab before 14.0: merge requests carry only
    /// `work_in_progress`, no `draft`.
    pub fn set_legacy_wip(&self, on: bool) {
        lock(&self.state).legacy_wip = on;
    }

    /// Adds a project (`group/sub/project`); returns its numeric id.
    pub fn add_project(&self, path: &str) -> u64 {
        lock(&self.state).project_mut(path).id
    }

    /// Adds an open merge request; returns its iid.
    pub fn add_mr(&self, project: &str, mut mr: NewMr) -> u64 {
        let mut st = lock(&self.state);
        let id = st.id();
        let p = st.project_mut(project);
        let iid = p.next_iid;
        p.next_iid += 1;
        if mr.sha.is_empty() {
            mr.sha = format!("{:040x}", 0xdef0_0000_u64 + iid);
        }
        if mr.source_branch.is_empty() {
            mr.source_branch = format!("change-{iid}");
        }
        p.mrs.insert(
            iid,
            Mr {
                id,
                iid,
                state: "opened",
                spec: mr,
            },
        );
        iid
    }

    /// Closes a merge request.
    pub fn close_mr(&self, project: &str, iid: u64) {
        if let Some(mr) = lock(&self.state).project_mut(project).mrs.get_mut(&iid) {
            mr.state = "closed";
        }
    }

    /// Makes a commit known (merge request heads are known).
    pub fn add_commit(&self, project: &str, sha: &str) {
        lock(&self.state).project_mut(project).commits.insert(sha.to_string());
    }

    /// Adds a note by someone; returns its id.
    pub fn add_note(&self, project: &str, iid: u64, author: &str, body: &str, system: bool) -> u64 {
        let mut st = lock(&self.state);
        let id = st.id();
        st.project_mut(project).notes.push(GlNote {
            id,
            mr_iid: iid,
            author: author.to_string(),
            body: body.to_string(),
            system,
            edits: Vec::new(),
        });
        id
    }

    /// Adds a member with an access level (10, 20, 30, 40, 50).
    pub fn add_member(&self, project: &str, username: &str, access_level: u64) {
        let mut st = lock(&self.state);
        let id = st.id();
        st.project_mut(project).members.push(GlMember {
            id,
            username: username.to_string(),
            name: format!("{username} (display)"),
            access_level,
        });
    }

    /// The commit statuses received for `project`, oldest first.
    pub fn statuses(&self, project: &str) -> Vec<GlStatus> {
        lock(&self.state).project_mut(project).statuses.clone()
    }

    /// The notes on merge request `iid`, oldest first.
    pub fn notes(&self, project: &str, iid: u64) -> Vec<GlNote> {
        lock(&self.state)
            .project_mut(project)
            .notes
            .iter()
            .filter(|n| n.mr_iid == iid)
            .cloned()
            .collect()
    }

    /// Answers the next `times` requests with `status`, whatever they are.
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

fn message(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({ "message": message }))
}

fn bad_param(error: &str) -> Reply {
    Reply::json(400, json!({ "error": error }))
}

fn handle(st: &mut St, inc: &Incoming) -> Reply {
    if let Some(code) = st.fail_next.pop_front() {
        return message(code, &format!("{code} Internal Server Error"));
    }
    let presented = inc
        .header("private-token")
        .or_else(|| inc.header("authorization").and_then(|v| v.strip_prefix("Bearer ")));
    if presented != Some(st.token.as_str()) {
        return message(401, "401 Unauthorized");
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
        return Reply::json(404, json!({"error": "404 Not Found"}));
    };
    // Grape merges query parameters and the body (JSON or form).
    let mut params: Map<String, Value> = inc.query.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    if !inc.body.is_empty() {
        let form = inc
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if form {
            for (k, v) in parse_query(&String::from_utf8_lossy(&inc.body)) {
                params.insert(k, json!(v));
            }
        } else {
            match serde_json::from_slice(&inc.body) {
                Ok(Value::Object(o)) => params.extend(o),
                _ => return message(400, "400 Bad request - JSON body could not be parsed"),
            }
        }
    }
    let Some(key) = st.find(&p[0]) else {
        return message(404, "404 Project Not Found");
    };
    let iid = p.get(1).and_then(|s| s.parse::<u64>().ok());
    match (i, iid) {
        (0, _) => list_mrs(st, &key, inc, &params),
        (1, Some(iid)) => list_diffs(st, &key, iid, inc),
        (2, _) => create_status(st, &key, &p[1], &params),
        (3, Some(iid)) => list_notes(st, &key, iid, inc, &params),
        (4, Some(iid)) => create_note(st, &key, iid, &params),
        (5, Some(iid)) => match p[2].parse::<u64>() {
            Ok(id) => edit_note(st, &key, iid, id, &params),
            Err(_) => message(404, "404 Note Not Found"),
        },
        (6, _) => list_members(st, &key, inc, &params),
        _ => message(404, "404 Not found"),
    }
}

fn param<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params.get(name).and_then(Value::as_str)
}

fn paged(st: &St, inc: &Incoming, items: Vec<Value>) -> Reply {
    let total = items.len();
    let (page, n, per_page, last) = paginate(&items, inc, 20);
    let mut reply = Reply::json(200, Value::Array(page))
        .with_header("x-page", n.to_string())
        .with_header("x-per-page", per_page.to_string())
        .with_header("x-total", total.to_string())
        .with_header("x-total-pages", last.to_string())
        .with_header(
            "x-next-page",
            if n < last { (n + 1).to_string() } else { String::new() },
        )
        .with_header("x-prev-page", if n > 1 { (n - 1).to_string() } else { String::new() });
    if let Some(link) = link_header(&st.base, inc, n, last, &["prev", "next", "first", "last"], true) {
        reply = reply.with_header("link", link);
    }
    reply
}

fn user(id: u64, username: &str) -> Value {
    json!({
        "id": id,
        "username": username,
        "name": format!("{username} (display)"),
        "state": "active",
        "avatar_url": null,
        "web_url": format!("https://gitlab.example.com/{username}")
    })
}

fn user_id(username: &str) -> u64 {
    username
        .bytes()
        .fold(3u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 1_000_000
}

fn mr_json(p: &Project, mr: &Mr, legacy_wip: bool) -> Value {
    let s = &mr.spec;
    let mut v = json!({
        "id": mr.id,
        "iid": mr.iid,
        "project_id": p.id,
        "title": s.title,
        "description": s.description,
        "state": mr.state,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "merged_by": null,
        "merged_at": null,
        "closed_at": if mr.state == "closed" { json!(s.updated_at) } else { Value::Null },
        "target_branch": s.target_branch,
        "source_branch": s.source_branch,
        "user_notes_count": 0,
        "upvotes": 0,
        "downvotes": 0,
        "author": user(user_id(&s.author), &s.author),
        "assignees": [],
        "reviewers": [],
        "source_project_id": p.id,
        "target_project_id": p.id,
        "labels": s.labels,
        "work_in_progress": s.draft,
        "milestone": null,
        "merge_when_pipeline_succeeds": false,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "mergeable",
        "sha": s.sha,
        "merge_commit_sha": null,
        "squash_commit_sha": null,
        "squash": false,
        "web_url": format!("https://gitlab.example.com/{}/-/merge_requests/{}", p.path, mr.iid),
        "references": {
            "short": format!("!{}", mr.iid),
            "relative": format!("!{}", mr.iid),
            "full": format!("{}!{}", p.path, mr.iid)
        },
        "has_conflicts": false,
        "blocking_discussions_resolved": true
    });
    if !legacy_wip && let Some(o) = v.as_object_mut() {
        o.insert("draft".into(), json!(s.draft));
    }
    v
}

fn list_mrs(st: &St, key: &str, inc: &Incoming, params: &Map<String, Value>) -> Reply {
    let Some(p) = st.projects.get(key) else {
        return message(404, "404 Project Not Found");
    };
    let state = param(params, "state").unwrap_or("all");
    if !matches!(state, "opened" | "closed" | "locked" | "merged" | "all") {
        return bad_param("state does not have a valid value");
    }
    let order_by = param(params, "order_by").unwrap_or("created_at");
    let asc = param(params, "sort") == Some("asc");
    let mut mrs: Vec<&Mr> = p
        .mrs
        .values()
        .filter(|m| state == "all" || m.state == state)
        .filter(|m| param(params, "target_branch").is_none_or(|b| m.spec.target_branch == b))
        .collect();
    mrs.sort_by(|a, b| {
        let (ka, kb) = if order_by == "updated_at" {
            (&a.spec.updated_at, &b.spec.updated_at)
        } else {
            (&a.spec.created_at, &b.spec.created_at)
        };
        ka.cmp(kb).then(a.iid.cmp(&b.iid))
    });
    if !asc {
        mrs.reverse();
    }
    let items = mrs.iter().map(|m| mr_json(p, m, st.legacy_wip)).collect();
    paged(st, inc, items)
}

fn list_diffs(st: &St, key: &str, iid: u64, inc: &Incoming) -> Reply {
    let Some(p) = st.projects.get(key) else {
        return message(404, "404 Project Not Found");
    };
    let Some(mr) = p.mrs.get(&iid) else {
        return message(404, "404 Not found");
    };
    let items = mr
        .spec
        .diffs
        .iter()
        .map(|d| {
            json!({
                "old_path": d.old_path,
                "new_path": d.new_path,
                "a_mode": if d.new_file { "0" } else { "100644" },
                "b_mode": if d.deleted_file { "0" } else { "100644" },
                "diff": "@@ -1 +1 @@\n-a\n+b\n",
                "new_file": d.new_file,
                "renamed_file": d.renamed_file,
                "deleted_file": d.deleted_file,
                "generated_file": false
            })
        })
        .collect();
    paged(st, inc, items)
}

fn create_status(st: &mut St, key: &str, sha: &str, params: &Map<String, Value>) -> Reply {
    let Some(state) = param(params, "state") else {
        return bad_param("state is missing");
    };
    if !matches!(
        state,
        "pending" | "running" | "success" | "failed" | "canceled" | "skipped"
    ) {
        return bad_param("state does not have a valid value");
    }
    let id = st.id();
    let username = st.username.clone();
    let Some(p) = st.projects.get_mut(key) else {
        return message(404, "404 Project Not Found");
    };
    if !p.commits.contains(sha) && !p.mrs.values().any(|m| m.spec.sha == sha) {
        return message(404, "404 References for commit Not Found");
    }
    let name = param(params, "name")
        .or_else(|| param(params, "context"))
        .unwrap_or("default")
        .to_string();
    // GitLab cannot move a job from pending to pending or running to running.
    let current = p.statuses.iter().rev().find(|s| s.sha == sha && s.name == name);
    if let Some(cur) = current
        && cur.state == state
        && matches!(state, "pending" | "running")
    {
        let event = if state == "pending" { "enqueue" } else { "run" };
        return message(
            400,
            &format!(
                "Cannot transition status via :{event} from :{state} (Reason(s): Status cannot transition via \"{event}\")"
            ),
        );
    }
    let status = GlStatus {
        id,
        sha: sha.to_string(),
        state: state.to_string(),
        name,
        git_ref: param(params, "ref").map(String::from),
        target_url: param(params, "target_url").map(String::from),
        description: param(params, "description").map(String::from),
    };
    p.statuses.push(status.clone());
    let now = rfc3339(now_secs(), true);
    Reply::json(
        201,
        json!({
            "id": id,
            "sha": status.sha,
            "ref": status.git_ref,
            "status": status.state,
            "name": status.name,
            "target_url": status.target_url,
            "description": status.description,
            "created_at": now,
            "started_at": null,
            "finished_at": null,
            "allow_failure": false,
            "coverage": null,
            "pipeline_id": id + 1,
            "author": user(user_id(&username), &username)
        }),
    )
}

fn note_json(p: &Project, mr: &Mr, n: &GlNote) -> Value {
    let now = rfc3339(now_secs(), true);
    json!({
        "id": n.id,
        "type": null,
        "body": n.body,
        "attachment": null,
        "author": user(user_id(&n.author), &n.author),
        "created_at": now,
        "updated_at": now,
        "system": n.system,
        "noteable_id": mr.id,
        "noteable_type": "MergeRequest",
        "project_id": p.id,
        "noteable_iid": mr.iid,
        "resolvable": false,
        "confidential": false,
        "internal": false
    })
}

fn list_notes(st: &St, key: &str, iid: u64, inc: &Incoming, params: &Map<String, Value>) -> Reply {
    let Some(p) = st.projects.get(key) else {
        return message(404, "404 Project Not Found");
    };
    let Some(mr) = p.mrs.get(&iid) else {
        return message(404, "404 Not found");
    };
    let mut notes: Vec<&GlNote> = p.notes.iter().filter(|n| n.mr_iid == iid).collect();
    // GitLab's default: newest first.
    if param(params, "sort") != Some("asc") {
        notes.reverse();
    }
    let items = notes.iter().map(|n| note_json(p, mr, n)).collect();
    paged(st, inc, items)
}

fn create_note(st: &mut St, key: &str, iid: u64, params: &Map<String, Value>) -> Reply {
    let Some(body) = param(params, "body").filter(|b| !b.is_empty()) else {
        return bad_param("body is missing");
    };
    let body = body.to_string();
    let id = st.id();
    let username = st.username.clone();
    let Some(p) = st.projects.get_mut(key) else {
        return message(404, "404 Project Not Found");
    };
    if !p.mrs.contains_key(&iid) {
        return message(404, "404 Not found");
    }
    let note = GlNote {
        id,
        mr_iid: iid,
        author: username,
        body,
        system: false,
        edits: Vec::new(),
    };
    p.notes.push(note.clone());
    match p.mrs.get(&iid) {
        Some(mr) => Reply::json(201, note_json(p, mr, &note)),
        None => message(404, "404 Not found"),
    }
}

fn edit_note(st: &mut St, key: &str, iid: u64, id: u64, params: &Map<String, Value>) -> Reply {
    let Some(body) = param(params, "body").filter(|b| !b.is_empty()) else {
        return bad_param("body is missing");
    };
    let body = body.to_string();
    let username = st.username.clone();
    let Some(p) = st.projects.get_mut(key) else {
        return message(404, "404 Project Not Found");
    };
    let Some(n) = p.notes.iter_mut().find(|n| n.id == id && n.mr_iid == iid) else {
        return message(404, "404 Note Not Found");
    };
    if n.author != username || n.system {
        return message(403, "403 Forbidden");
    }
    let old = std::mem::replace(&mut n.body, body);
    n.edits.push(old);
    let note = n.clone();
    match p.mrs.get(&iid) {
        Some(mr) => Reply::json(200, note_json(p, mr, &note)),
        None => message(404, "404 Not found"),
    }
}

fn list_members(st: &St, key: &str, inc: &Incoming, params: &Map<String, Value>) -> Reply {
    let Some(p) = st.projects.get(key) else {
        return message(404, "404 Project Not Found");
    };
    let query = param(params, "query").map(str::to_ascii_lowercase);
    let items = p
        .members
        .iter()
        .filter(|m| {
            query.as_ref().is_none_or(|q| {
                m.username.to_ascii_lowercase().contains(q.as_str()) || m.name.to_ascii_lowercase().contains(q.as_str())
            })
        })
        .map(|m| {
            json!({
                "id": m.id,
                "username": m.username,
                "name": m.name,
                "state": "active",
                "avatar_url": null,
                "web_url": format!("https://gitlab.example.com/{}", m.username),
                "access_level": m.access_level,
                "created_at": "2024-01-01T00:00:00.000Z",
                "expires_at": null
            })
        })
        .collect();
    paged(st, inc, items)
}
