//! The read pages: environments (`/`), cycle history (`/cycles`), one cycle
//! (`/cycles/N`, with a component's log tail under `/cycles/N/logs/…`,
//! streamed while the cycle runs by `logstream`),
//! the audit trail (`/audit`), a manifest diff (`/diff?a=&b=`) and a pull
//! request (`/pr/OWNER/REPO/N`). Every value shown is escaped (`html`).

use super::html::{Html, parse_time, short, url_part};
use super::{Dash, PageError, Viewer, respond, signed_in};
use crate::server::Shared;
use crate::server::api::{self, EnvironmentView};
use crate::status;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use greenroom_core::config::Role;
use greenroom_core::manifest::{ComponentDiff, ManifestComponent, short_id};
use greenroom_core::time::{self, Millis};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Most rows a list page shows.
const MAX_ROWS: i64 = 1000;

type Page = Result<Response, PageError>;

macro_rules! viewer {
    ($s:expr, $d:expr, $headers:expr, $here:expr) => {
        match signed_in(&$s, &$d, &$headers, $here).await {
            Ok(v) => v,
            Err(r) => return Ok(*r),
        }
    };
}

// ---------------------------------------------------------------------------
// Links to the forge.

/// The web address of a component's repository on its forge, if known.
fn forge_base(s: &Shared, component: &str) -> Option<String> {
    let c = s.app.config.component(component)?;
    let web = |api: &str, fallback: &str, strip: &str| -> String {
        let api = api.trim_end_matches('/');
        match api.strip_suffix(strip) {
            Some(b) if !b.is_empty() => b.to_string(),
            _ if api.contains("api.github.com") => fallback.to_string(),
            _ => fallback.to_string(),
        }
    };
    if let Some(g) = &c.github {
        let base = web(&s.app.config.forges.github.api_url, "https://github.com", "/api/v3");
        return Some(format!("{base}/{g}"));
    }
    if let Some(g) = &c.gitlab {
        let base = web(&s.app.config.forges.gitlab.api_url, "https://gitlab.com", "/api/v4");
        return Some(format!("{base}/{g}"));
    }
    None
}

fn commit_link(h: &mut Html, s: &Shared, component: &str, commit: Option<&str>) {
    match commit {
        None => {
            h.raw("<span class=\"muted\">—</span>");
        }
        Some(c) => {
            let gitlab = s.app.config.component(component).is_some_and(|x| x.github.is_none());
            match forge_base(s, component) {
                Some(b) => {
                    let path = if gitlab { "/-/commit/" } else { "/commit/" };
                    h.raw("<code>")
                        .link(&format!("{b}{path}{}", url_part(c)), short(c))
                        .raw("</code>");
                }
                None => {
                    h.raw("<code title=\"").text(c).raw("\">").text(short(c)).raw("</code>");
                }
            }
        }
    }
}

/// The ref / PR / image a component came from, linked where possible.
fn origin_cell(h: &mut Html, s: &Shared, component: &str, e: &ManifestComponent) {
    if let Some(pr) = e.pr {
        let gitlab = s.app.config.component(component).is_some_and(|x| x.github.is_none());
        match forge_base(s, component) {
            Some(b) => {
                let path = if gitlab { "/-/merge_requests/" } else { "/pull/" };
                h.link(&format!("{b}{path}{pr}"), &format!("PR #{pr}"));
            }
            None => {
                h.text(&format!("PR #{pr}"));
            }
        }
        h.raw(" ");
        if let Some(repo) = s.app.config.component(component).and_then(forge_repo) {
            h.raw("(")
                .link(&format!("/pr/{}/{pr}", pr_path(&repo)), "in greenroom")
                .raw(") ");
        }
    }
    if let Some(r) = &e.reference {
        h.raw("<code>").text(r).raw("</code> ");
    }
    if let Some(i) = &e.image {
        h.raw("image <code>").text(i).raw("</code> ");
    }
    if !e.merged.is_empty() {
        h.raw("<br><span class=\"muted\">merged: ")
            .text(&e.merged.join(", "))
            .raw("</span> ");
    }
    h.raw("<span class=\"muted\">(").text(&e.origin).raw(")</span>");
}

/// `owner/name` as two escaped path segments.
/// The repository a component's PRs belong to, as PR pages name it: its
/// GitHub `owner/name` or GitLab `group/project`, else (a `git` forge, or
/// none configured) the repository's own name (`ogr` for `repos/ogr`).
fn forge_repo(c: &greenroom_core::config::Component) -> Option<String> {
    c.github
        .clone()
        .or_else(|| c.gitlab.clone())
        .or_else(|| c.repo.as_deref().map(crate::pending::repo_name))
}

fn pr_path(repo: &str) -> String {
    repo.split('/').map(url_part).collect::<Vec<_>>().join("/")
}

fn time_str(h: &mut Html, rfc: &str, now: Millis) {
    match parse_time(rfc) {
        Some(t) => {
            h.time(t, now);
        }
        None => {
            h.text(rfc);
        }
    }
}

// ---------------------------------------------------------------------------
// Environments.

/// The environment views the viewer may see (as the API lists them).
pub(crate) async fn environment_views(s: &Shared, v: &Viewer) -> Result<Vec<EnvironmentView>, PageError> {
    let mut out = Vec::new();
    for st in status::status(&s.app, None).await? {
        if v.may_view(s, &st.environment) {
            out.push(api::environment_view(&s.app, st).await?);
        }
    }
    Ok(out)
}

/// Renders the environments (the body of `/`).
pub(crate) fn render_environments(s: &Shared, v: &Viewer, views: &[EnvironmentView], now: Millis) -> Html {
    let mut h = Html::new();
    if views.is_empty() {
        h.raw("<p>No environment you may view.</p>");
    }
    h.raw("<nav aria-label=\"Environments\"><ul class=\"actions\">");
    for e in views {
        let name = &e.status.environment;
        h.raw("<li>")
            .link(&format!("#env-{}", url_part(name)), name)
            .raw("</li>");
    }
    h.raw("</ul></nav>");
    for e in views {
        environment_section(&mut h, s, v, e, now);
    }
    h
}

fn environment_section(h: &mut Html, s: &Shared, v: &Viewer, e: &EnvironmentView, now: Millis) {
    let st = &e.status;
    let name = &st.environment;
    let id = format!("env-{}", url_part(name));
    h.raw("<section class=\"env\" id=\"")
        .text(&id)
        .raw("\" aria-labelledby=\"")
        .text(&id)
        .raw("-h\">");
    h.raw("<h2 id=\"").text(&id).raw("-h\">").text(name).raw(" ");
    if e.paused {
        h.badge("paused");
    }
    match &st.last_cycle {
        Some(c) if c.result == "running" => {
            h.badge("running");
        }
        _ => {}
    }
    h.raw("</h2><dl class=\"facts\">");
    // What runs as a whole.
    h.raw("<dt>Manifest</dt><dd>");
    match &st.manifest {
        Some(m) => {
            h.raw("<code title=\"")
                .text(m)
                .raw("\">")
                .text(short_id(m))
                .raw("</code>");
        }
        None => {
            h.raw("<span class=\"muted\">none (nothing deployed, or mixed after a failure)</span>");
        }
    }
    h.raw("</dd><dt>Lease</dt><dd>");
    match &st.lease {
        Some(l) => {
            h.raw("held by <strong>").text(&l.holder).raw("</strong>");
            if !l.reason.is_empty() {
                h.raw(" — ").text(&l.reason);
            }
            h.raw("; expires ");
            time_str(h, &l.expires, now);
        }
        None => {
            h.raw("free");
        }
    }
    h.raw("</dd><dt>Queue</dt><dd>");
    if st.queue.is_empty() {
        h.raw("empty");
    } else {
        h.raw("<ol>");
        for q in &st.queue {
            h.raw("<li>").text(q).raw("</li>");
        }
        h.raw("</ol>");
    }
    h.raw("</dd><dt>Scheduled cycles</dt><dd>");
    if e.paused {
        h.raw("<strong>paused</strong>");
        if let Some(p) = &e.pause {
            h.raw(" by ").text(&p.by).raw(" ");
            h.time(p.since, now);
            if !p.reason.is_empty() {
                h.raw(": ").text(&p.reason);
            }
        }
    } else {
        h.raw("running normally (not paused)");
    }
    h.raw("</dd><dt>Next action</dt><dd>");
    match &e.next {
        Some(n) => {
            h.text(&n.what);
            if let Some(at) = &n.at {
                h.raw(" — ");
                time_str(h, at, now);
            }
        }
        None => {
            h.raw("<span class=\"muted\">none scheduled (deployed by hand)</span>");
        }
    }
    h.raw("</dd><dt>Last cycle</dt><dd>");
    match &st.last_cycle {
        Some(c) => {
            h.link(&format!("/cycles/{}", c.id), &format!("#{}", c.id)).raw(" ");
            h.badge(&c.result)
                .raw(" ")
                .text(&c.kind)
                .raw(" by ")
                .text(&c.requested_by)
                .raw(", started ");
            time_str(h, &c.started_at, now);
            if let Some(err) = &c.error {
                h.raw("<br><span class=\"bad\">").text(err).raw("</span>");
            }
        }
        None => {
            h.raw("<span class=\"muted\">none yet</span>");
        }
    }
    h.raw("</dd></dl>");

    h.raw("<table><caption class=\"muted\">What runs on ").text(name).raw("</caption><thead><tr>")
        .raw("<th scope=\"col\">Component</th><th scope=\"col\">State</th><th scope=\"col\">Commit</th>")
        .raw("<th scope=\"col\">From</th><th scope=\"col\">Cycle</th><th scope=\"col\">Since</th><th scope=\"col\">URL</th>")
        .raw("</tr></thead><tbody>");
    for c in &st.components {
        h.raw("<tr><th scope=\"row\">").text(&c.name).raw("</th><td>");
        h.badge(&c.state).raw("</td><td>");
        commit_link(h, s, &c.name, c.commit.as_deref());
        h.raw("</td><td>");
        if c.origin.is_some() {
            let entry = ManifestComponent {
                origin: c.origin.clone().unwrap_or_default(),
                reference: c.reference.clone(),
                pr: c.pr,
                image: c.image.clone(),
                ..ManifestComponent::default()
            };
            origin_cell(h, s, &c.name, &entry);
        }
        h.raw("</td><td>");
        if let Some(id) = c.cycle {
            h.link(&format!("/cycles/{id}"), &format!("#{id}"));
        }
        h.raw("</td><td>");
        if let Some(since) = &c.since {
            time_str(h, since, now);
        }
        h.raw("</td><td>");
        if let Some(u) = &c.url
            && (u.starts_with("http://") || u.starts_with("https://"))
        {
            h.link(u, u);
        }
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table>");

    if !e.decisions.is_empty() {
        h.raw("<details><summary>Recent scheduling decisions</summary><ul>");
        for d in e.decisions.iter().take(5) {
            h.raw("<li>");
            time_str(h, &d.at, now);
            h.raw(" <strong>").text(&d.kind).raw("</strong>: ").text(&d.reason);
            if let Some(c) = d.cycle {
                h.raw(" → ").link(&format!("/cycles/{c}"), &format!("cycle #{c}"));
            }
            h.raw("</li>");
        }
        h.raw("</ul></details>");
    }
    h.raw("<p class=\"actions\">")
        .link(&format!("/cycles?environment={}", url_part(name)), "History")
        .raw(" ")
        .link(&format!("/audit?environment={}", url_part(name)), "Audit");
    if v.may_act(s, name) {
        let env = url_part(name);
        let action = |h: &mut Html, a: &str, label: &str, danger: bool| {
            h.raw("<a class=\"button")
                .raw(if danger { " danger" } else { "" })
                .raw("\" id=\"")
                .text(&format!("{a}-{name}"))
                .raw("\" href=\"")
                .text(&format!("/confirm/{a}?env={env}"))
                .raw("\">")
                .text(label)
                .raw("</a> ");
        };
        // Only plain environments are scheduled (and paused), not slots.
        if s.app.config.environment(name).is_some_and(|c| c.slots.is_none()) {
            if e.paused {
                action(h, "resume", "Resume…", false);
            } else {
                action(h, "pause", "Pause…", false);
            }
        }
        if st.lease.is_some() {
            action(h, "release", "Release lease…", false);
        }
        if st.last_cycle.as_ref().is_some_and(|c| c.result == "running") {
            action(h, "cancel", "Cancel running cycle…", true);
        }
        action(h, "rollback", "Roll back…", true);
    }
    h.raw("</p></section>");
}

/// `GET /`.
pub async fn environments(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
) -> Page {
    let v = viewer!(s, d, headers, "/");
    let views = environment_views(&s, &v).await?;
    let body = render_environments(&s, &v, &views, s.app.now());
    Ok(respond(&d, &v, &headers, "Environments", &body, true))
}

// ---------------------------------------------------------------------------
// History.

/// Filters of `/cycles`.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    environment: Option<String>,
    result: Option<String>,
    by: Option<String>,
    limit: Option<i64>,
}

fn nonempty(o: &Option<String>) -> Option<&str> {
    o.as_deref().map(str::trim).filter(|x| !x.is_empty())
}

/// Instance names the viewer may see, narrowed to `env` when given.
fn visible_instances(s: &Shared, v: &Viewer, env: Option<&str>) -> Result<Vec<String>, PageError> {
    let inst = match env {
        Some(e) => s
            .app
            .config
            .lookup_instances(e)
            .map_err(|m| PageError(StatusCode::NOT_FOUND, m))?,
        None => s.app.config.instances(),
    };
    Ok(inst
        .into_iter()
        .filter(|i| v.user.role_on(&i.environment) >= Some(Role::Viewer))
        .map(|i| i.name)
        .collect())
}

fn select(h: &mut Html, id: &str, label: &str, options: &[String], current: Option<&str>) {
    h.raw("<p><label for=\"")
        .text(id)
        .raw("\">")
        .text(label)
        .raw("</label><select id=\"")
        .text(id);
    h.raw("\" name=\"").text(id).raw("\"><option value=\"\">all</option>");
    for o in options {
        h.raw("<option");
        if current == Some(o.as_str()) {
            h.raw(" selected");
        }
        h.raw(">").text(o).raw("</option>");
    }
    h.raw("</select></p>");
}

fn text_input(h: &mut Html, id: &str, label: &str, current: Option<&str>) {
    h.raw("<p><label for=\"")
        .text(id)
        .raw("\">")
        .text(label)
        .raw("</label><input id=\"")
        .text(id);
    h.raw("\" name=\"")
        .text(id)
        .raw("\" value=\"")
        .text(current.unwrap_or(""))
        .raw("\" size=\"14\"></p>");
}

/// A recorded cycle the viewer may see (404 / 403 otherwise).
async fn viewable_cycle(s: &Shared, v: &Viewer, id: i64) -> Result<greenroom_store::CycleRecord, PageError> {
    let Some(c) = s.app.store.cycle(id).await? else {
        return Err(PageError(StatusCode::NOT_FOUND, format!("there is no cycle {id}")));
    };
    v.must_view(s, &c.environment)?;
    Ok(c)
}

/// `GET /cycles`.
pub async fn history(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> Page {
    let v = viewer!(s, d, headers, "/cycles");
    let env = nonempty(&q.environment);
    if let Some(e) = env {
        v.must_view(&s, e)?;
    }
    let names = visible_instances(&s, &v, env)?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_ROWS);
    let filtered = nonempty(&q.result).is_some() || nonempty(&q.by).is_some();
    let cycles = if names.is_empty() {
        Vec::new()
    } else {
        s.app
            .store
            .cycles(Some(&names), if filtered { MAX_ROWS } else { limit })
            .await?
    };
    let now = s.app.now();
    let mut h = Html::new();
    h.raw("<form class=\"filters\" method=\"get\" action=\"/cycles\" role=\"search\">");
    let envs: Vec<String> = visible_instances(&s, &v, None)?;
    select(&mut h, "environment", "Environment", &envs, env);
    let results: Vec<String> = ["running", "succeeded", "failed", "interrupted", "cancelled", "fenced"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    select(&mut h, "result", "Result", &results, nonempty(&q.result));
    text_input(&mut h, "by", "Requested by", nonempty(&q.by));
    h.raw("<p><button type=\"submit\">Filter</button></p></form>");
    h.raw("<form class=\"filters\" method=\"get\" action=\"/diff\"><p><label for=\"a\">Diff cycle</label>")
        .raw("<input id=\"a\" name=\"a\" size=\"8\" required></p><p><label for=\"b\">with cycle</label>")
        .raw("<input id=\"b\" name=\"b\" size=\"8\" required></p><p><button type=\"submit\">Compare manifests</button></p></form>");
    h.raw("<table><thead><tr><th scope=\"col\">Cycle</th><th scope=\"col\">Environment</th><th scope=\"col\">Kind</th>")
        .raw("<th scope=\"col\">Result</th><th scope=\"col\">Request</th><th scope=\"col\">By</th>")
        .raw("<th scope=\"col\">Started</th><th scope=\"col\">Duration</th><th scope=\"col\">Manifest</th></tr></thead><tbody>");
    let mut shown = 0;
    for c in &cycles {
        if nonempty(&q.result).is_some_and(|r| r != c.result) {
            continue;
        }
        if nonempty(&q.by).is_some_and(|b| !c.requested_by.contains(b)) {
            continue;
        }
        if shown >= limit {
            break;
        }
        shown += 1;
        h.raw("<tr><td>")
            .link(&format!("/cycles/{}", c.id), &format!("#{}", c.id));
        h.raw("</td><td>")
            .text(&c.environment)
            .raw("</td><td>")
            .text(&c.kind)
            .raw("</td><td>");
        h.badge(&c.result)
            .raw("</td><td><code>")
            .text(&c.request)
            .raw("</code>");
        if let Some(e) = &c.error {
            h.raw("<br><span class=\"bad\">").text(e).raw("</span>");
        }
        h.raw("</td><td>").text(&c.requested_by).raw("</td><td>");
        h.time(c.started_at, now).raw("</td><td>");
        match c.finished_at {
            Some(f) => {
                h.text(&time::format_span(f - c.started_at));
            }
            None => {
                h.raw("running");
            }
        }
        h.raw("</td><td>");
        if let Some(m) = &c.manifest {
            h.raw("<code title=\"")
                .text(m)
                .raw("\">")
                .text(short_id(m))
                .raw("</code>");
        }
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table>");
    if shown == 0 {
        h.raw("<p>No cycle matches.</p>");
    }
    Ok(respond(&d, &v, &headers, "History", &h, true))
}

// ---------------------------------------------------------------------------
// One cycle.

/// `GET /cycles/{id}`.
pub async fn cycle(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let here = format!("/cycles/{}", url_part(&id));
    let v = viewer!(s, d, headers, &here);
    let id: i64 = id
        .trim_start_matches('#')
        .parse()
        .map_err(|_| PageError(StatusCode::BAD_REQUEST, format!("`{id}` is not a cycle number")))?;
    let c = viewable_cycle(&s, &v, id).await?;
    let now = s.app.now();
    let stages = s.app.store.stages(id).await?;
    let components = s.app.store.cycle_components(id).await?;
    let mut h = Html::new();
    h.raw("<dl class=\"facts\"><dt>Result</dt><dd>").badge(&c.result);
    if let Some(e) = &c.error {
        h.raw(" <span class=\"bad\">").text(e).raw("</span>");
    }
    if let Some(x) = &c.cancel {
        h.raw("<br>cancel asked by ").text(&x.by).raw(" ");
        h.time(x.at, now);
        if !x.reason.is_empty() {
            h.raw(": ").text(&x.reason);
        }
    }
    h.raw("</dd><dt>Environment</dt><dd>")
        .link(&format!("/#env-{}", url_part(&c.environment)), &c.environment);
    h.raw("</dd><dt>Kind</dt><dd>").text(&c.kind);
    h.raw("</dd><dt>Requested by</dt><dd>").text(&c.requested_by);
    h.raw("</dd><dt>Request</dt><dd><code>").text(&c.request).raw("</code>");
    h.raw("</dd><dt>Started</dt><dd>").time(c.started_at, now);
    h.raw("</dd><dt>Finished</dt><dd>");
    match c.finished_at {
        Some(f) => {
            h.time(f, now).raw(" after ").text(&time::format_span(f - c.started_at));
        }
        None => {
            h.raw("still running (")
                .text(&time::format_span(now - c.started_at))
                .raw(" so far)");
        }
    }
    h.raw("</dd><dt>Manifest</dt><dd>");
    match &c.manifest {
        Some(m) => {
            h.raw("<a href=\"#manifest\"><code>")
                .text(short_id(m))
                .raw("</code></a>");
        }
        None => {
            h.raw("none");
        }
    }
    h.raw("</dd>");
    let running = c.result == "running";
    if running {
        // Where to follow it: each component's logs, streamed.
        h.raw("<dt>Live logs</dt><dd>");
        let with_logs: Vec<_> = components
            .iter()
            .filter(|cc| cc.build_log.is_some() || cc.run_log.is_some())
            .collect();
        if with_logs.is_empty() {
            h.raw("<span class=\"muted\">none yet: a component's logs appear here once it is built or started</span>");
        } else {
            h.raw("<ul class=\"log-links\">");
            for cc in with_logs {
                h.raw("<li>").text(&cc.component).raw(": ");
                log_links(&mut h, id, cc, true);
                h.raw("</li>");
            }
            h.raw("</ul>");
        }
        h.raw("</dd>");
    }
    h.raw("</dl>");
    if v.may_act(&s, &c.environment) {
        h.raw("<p class=\"actions\">");
        let action = |h: &mut Html, a: &str, label: &str| {
            h.raw("<a class=\"button\" id=\"")
                .text(&format!("{a}-cycle"))
                .raw("\" href=\"")
                .text(&format!("/confirm/{a}?cycle={id}"))
                .raw("\">")
                .text(label)
                .raw("</a> ");
        };
        if c.result == "running" {
            action(&mut h, "approve", "Approve the waiting stage…");
            action(&mut h, "cancel", "Cancel…");
        } else if c.result != "succeeded" {
            action(&mut h, "retry", "Retry…");
        }
        h.raw("<a class=\"button danger\" href=\"")
            .text(&format!("/confirm/rollback?env={}", url_part(&c.environment)))
            .raw("\">Roll back ")
            .text(&c.environment)
            .raw("…</a></p>");
    }

    h.raw("<h2 id=\"stages\">Stages</h2>");
    if stages.is_empty() {
        h.raw("<p>No stage recorded yet.</p>");
    } else {
        h.raw("<table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Stage</th><th scope=\"col\">Component</th>")
            .raw("<th scope=\"col\">Started</th><th scope=\"col\">Duration</th><th scope=\"col\">Result</th>")
            .raw("<th scope=\"col\">Detail</th></tr></thead><tbody>");
        for st in &stages {
            h.raw("<tr class=\"stage\"><td>")
                .num(st.seq)
                .raw("</td><td>")
                .text(&st.name)
                .raw("</td><td>");
            h.text(st.component.as_deref().unwrap_or("")).raw("</td><td>");
            h.time(st.started_at, now).raw("</td><td>");
            h.text(&time::format_span(st.finished_at - st.started_at))
                .raw("</td><td>");
            h.badge(&st.result).raw("</td><td>");
            if let Some(dt) = &st.detail {
                h.raw("<span class=\"detail\">").text(dt).raw("</span>");
            }
            h.raw("</td></tr>");
        }
        h.raw("</tbody></table>");
    }

    // Every decision that names the cycle: the culprit search's (about this
    // failed cycle) apart from those that led to it.
    let (search, decisions): (Vec<_>, Vec<_>) = s
        .app
        .store
        .decisions(Some(&c.environment), 500)
        .await?
        .into_iter()
        .filter(|x| x.cycle_id == Some(id))
        .partition(|x| x.kind == "search");
    let search: Vec<&greenroom_store::DecisionRecord> = search.iter().collect();
    let results = super::results::load(&s, &v, &c, &stages, &search, now).await?;
    h.built(&results);

    h.raw("<h2 id=\"components\">Components</h2><table><thead><tr><th scope=\"col\">Component</th>")
        .raw("<th scope=\"col\">Action</th><th scope=\"col\">Commit</th><th scope=\"col\">From</th>")
        .raw(
            "<th scope=\"col\">Build</th><th scope=\"col\">Outcome</th><th scope=\"col\">Logs</th></tr></thead><tbody>",
        );
    for cc in &components {
        h.raw("<tr><th scope=\"row\">")
            .text(&cc.component)
            .raw("</th><td>")
            .text(&cc.action)
            .raw("</td><td>");
        commit_link(&mut h, &s, &cc.component, cc.entry.commit.as_deref());
        h.raw("</td><td>");
        origin_cell(&mut h, &s, &cc.component, &cc.entry);
        h.raw("</td><td>")
            .badge(&cc.build)
            .raw("</td><td>")
            .badge(&cc.outcome)
            .raw("</td><td>");
        log_links(&mut h, id, cc, running);
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table>");

    h.raw("<h2 id=\"manifest\">Manifest</h2>");
    match &c.manifest {
        Some(mid) => match s.app.store.manifest(mid).await? {
            Some(m) => {
                h.raw("<p><code>").text(&m.id).raw("</code></p>");
                manifest_table(&mut h, &s, &m.components);
            }
            None => {
                h.raw("<p>The manifest <code>")
                    .text(mid)
                    .raw("</code> is no longer stored.</p>");
            }
        },
        None => {
            h.raw("<p>This cycle has no manifest.</p>");
        }
    }

    h.raw("<h2 id=\"decisions\">Decisions that led to it</h2>");
    let audit: Vec<_> = s
        .app
        .store
        .audit(Some(std::slice::from_ref(&c.environment)), 500)
        .await?
        .into_iter()
        .filter(|a| a.cycle_id == Some(id))
        .collect();
    if decisions.is_empty() && audit.is_empty() {
        h.raw("<p>Asked for by ")
            .text(&c.requested_by)
            .raw(" (no scheduling decision or audited action refers to it).</p>");
    }
    if !decisions.is_empty() {
        h.raw("<ul>");
        for x in &decisions {
            h.raw("<li>");
            h.time(x.at, now);
            h.raw(" <strong>")
                .text(&x.kind)
                .raw("</strong>: ")
                .text(&x.reason)
                .raw("</li>");
        }
        h.raw("</ul>");
    }
    if !audit.is_empty() {
        h.raw("<ul>");
        for a in &audit {
            h.raw("<li>");
            h.time(a.at, now);
            h.raw(" <strong>")
                .text(&a.action)
                .raw("</strong> by ")
                .text(&a.actor)
                .raw(" via ")
                .text(&a.surface);
            h.raw(": ").text(&a.detail);
            if !a.reason.is_empty() {
                h.raw(" — “").text(&a.reason).raw("”");
            }
            h.raw("</li>");
        }
        h.raw("</ul>");
    }
    let title = format!("Cycle #{id} on {}", c.environment);
    Ok(respond(&d, &v, &headers, &title, &h, true))
}

/// A component's build and run log links; "(live)" while the cycle runs.
fn log_links(h: &mut Html, id: i64, cc: &greenroom_store::CycleComponent, running: bool) {
    let comp = url_part(&cc.component);
    let live = if running { " (live)" } else { "" };
    if cc.build_log.is_some() {
        h.link(&format!("/cycles/{id}/logs/{comp}/build"), &format!("build log{live}"))
            .raw(" ");
    }
    if cc.run_log.is_some() {
        h.link(&format!("/cycles/{id}/logs/{comp}/run"), &format!("run log{live}"));
    }
}

fn manifest_table(h: &mut Html, s: &Shared, comps: &std::collections::BTreeMap<String, ManifestComponent>) {
    h.raw("<table class=\"manifest\"><thead><tr><th scope=\"col\">Component</th><th scope=\"col\">Commit</th>")
        .raw("<th scope=\"col\">From</th><th scope=\"col\">Variables</th></tr></thead><tbody>");
    for (name, e) in comps {
        h.raw("<tr><th scope=\"row\">").text(name).raw("</th><td>");
        commit_link(h, s, name, e.commit.as_deref());
        if e.carried {
            h.raw(" <span class=\"muted\">(carried over)</span>");
        }
        h.raw("</td><td>");
        origin_cell(h, s, name, e);
        // Names only: values are the component's business.
        h.raw("</td><td>")
            .text(&e.vars.keys().cloned().collect::<Vec<_>>().join(", "))
            .raw("</td></tr>");
    }
    h.raw("</tbody></table>");
}

/// The cycle and the log file behind `/cycles/{id}/logs/{component}/{which}`
/// (and its stream), checked: the viewer may view the cycle's
/// environment, the component and the log exist, and the file is under
/// the state directory (canonical path; `None`: the file is gone).
pub(super) async fn log_target(
    s: &Shared,
    v: &Viewer,
    id: i64,
    component: &str,
    which: &str,
) -> Result<(greenroom_store::CycleRecord, Option<std::path::PathBuf>), PageError> {
    let c = viewable_cycle(s, v, id).await?;
    let comps = s.app.store.cycle_components(id).await?;
    let Some(cc) = comps.iter().find(|x| x.component == component) else {
        return Err(PageError(
            StatusCode::NOT_FOUND,
            format!("cycle {id} has no component `{component}`"),
        ));
    };
    let path = match which {
        "build" => cc.build_log.clone(),
        "run" => cc.run_log.clone(),
        _ => None,
    }
    .ok_or_else(|| {
        PageError(
            StatusCode::NOT_FOUND,
            format!("no {which} log for {component} in cycle {id}"),
        )
    })?;
    // Only files under the state directory are ever read.
    let root = s.app.paths.root.canonicalize().map_err(anyhow::Error::from)?;
    match std::path::Path::new(&path).canonicalize() {
        Ok(p) if p.starts_with(&root) => Ok((c, Some(p))),
        Ok(_) => Err(PageError(
            StatusCode::FORBIDDEN,
            "the log is outside the state directory".into(),
        )),
        Err(_) => Ok((c, None)),
    }
}

/// `GET /cycles/{id}/logs/{component}/{build|run}`: the end of a log (as
/// written, secrets already redacted by the supervisor and the builder).
/// While the cycle runs, the page shows whole lines only and its script
/// appends the lines that follow from `…/stream` (`logstream`); without
/// JavaScript, a reload shows the newer ones.
pub async fn log(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Path((id, component, which)): Path<(i64, String, String)>,
) -> Page {
    let here = format!("/cycles/{id}/logs/{}/{}", url_part(&component), url_part(&which));
    let v = viewer!(s, d, headers, &here);
    let (c, path) = log_target(&s, &v, id, &component, &which).await?;
    let running = c.result == "running";
    let mut h = Html::new();
    h.raw("<p>")
        .link(&format!("/cycles/{id}"), &format!("Back to cycle #{id}"))
        .raw(" · ")
        .link(&here, "Reload")
        .raw(" for newer lines</p>");
    let tail = match &path {
        Some(p) => {
            let p = p.clone();
            match tokio::task::spawn_blocking(move || super::logstream::page_tail(&p, running)).await {
                Ok(Ok(t)) => Ok(t),
                Ok(Err(e)) => Err(format!("(cannot read the log: {e})")),
                Err(e) => Err(format!("(cannot read the log: {e})")),
            }
        }
        None => Err("(the log is gone: removed by retention, or never written)".to_string()),
    };
    match tail {
        Ok(t) => {
            if t.cut {
                h.raw("<p class=\"muted\">Earlier lines are cut: the last ")
                    .num(i64::try_from(super::logstream::LOG_TAIL / 1024).unwrap_or(0))
                    .raw(" KiB are shown.</p>");
            }
            if running {
                h.raw("<p class=\"live-state\"><span id=\"log-status\" role=\"status\" aria-live=\"polite\">")
                    .raw("The cycle is running: reload to see newer lines (JavaScript shows them as they are written).</span></p>");
                h.raw("<pre id=\"log\" class=\"log\" tabindex=\"0\" aria-label=\"Log\" data-stream=\"")
                    .text(&format!("{here}/stream"))
                    .raw("\" data-from=\"")
                    .num(i64::try_from(t.end).unwrap_or(0))
                    .raw("\">");
            } else {
                h.raw("<pre id=\"log\" class=\"log\" tabindex=\"0\" aria-label=\"Log\">");
            }
            h.text(&t.text).raw("</pre>");
        }
        Err(msg) => {
            h.raw("<pre id=\"log\" class=\"log\">").text(&msg).raw("</pre>");
        }
    }
    let title = format!("{which} log of {component}, cycle #{id}");
    // Not re-rendered on every change: the stream appends instead.
    Ok(respond(&d, &v, &headers, &title, &h, false))
}

// ---------------------------------------------------------------------------
// Audit.

/// Filters of `/audit`.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    environment: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    limit: Option<i64>,
}

/// `GET /audit`.
pub async fn audit(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Page {
    let v = viewer!(s, d, headers, "/audit");
    let env = nonempty(&q.environment);
    if let Some(e) = env {
        v.must_view(&s, e)?;
    }
    let limit = usize::try_from(q.limit.unwrap_or(100).clamp(1, MAX_ROWS)).unwrap_or(100);
    let rows = crate::audit::list(&s.app, env, MAX_ROWS).await?;
    let now = s.app.now();
    let mut h = Html::new();
    h.raw("<form class=\"filters\" method=\"get\" action=\"/audit\" role=\"search\">");
    select(
        &mut h,
        "environment",
        "Environment",
        &visible_instances(&s, &v, None)?,
        env,
    );
    let actions: Vec<String> = [
        "deploy", "rollback", "pause", "resume", "lease", "release", "cancel", "override", "approve", "note",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    select(&mut h, "action", "Action", &actions, nonempty(&q.action));
    text_input(&mut h, "actor", "Who", nonempty(&q.actor));
    h.raw("<p><button type=\"submit\">Filter</button></p></form>");
    h.raw("<table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th><th scope=\"col\">Through</th>")
        .raw("<th scope=\"col\">Action</th><th scope=\"col\">Environment</th><th scope=\"col\">What</th>")
        .raw("<th scope=\"col\">Why</th><th scope=\"col\">Cycle</th></tr></thead><tbody>");
    let mut shown = 0;
    for a in rows
        .iter()
        .filter(|a| v.may_view(&s, &a.environment))
        .filter(|a| nonempty(&q.action).is_none_or(|x| x == a.action))
        .filter(|a| nonempty(&q.actor).is_none_or(|x| a.actor.contains(x)))
        .take(limit)
    {
        shown += 1;
        h.raw("<tr><td>");
        time_str(&mut h, &a.at, now);
        h.raw("</td><td>")
            .text(&a.actor)
            .raw("</td><td>")
            .text(&a.surface)
            .raw("</td><td>")
            .text(&a.action);
        h.raw("</td><td>")
            .text(&a.environment)
            .raw("</td><td>")
            .text(&a.detail)
            .raw("</td><td>")
            .text(&a.reason);
        h.raw("</td><td>");
        if let Some(c) = a.cycle {
            h.link(&format!("/cycles/{c}"), &format!("#{c}"));
        }
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table>");
    if shown == 0 {
        h.raw("<p>No action matches.</p>");
    }
    Ok(respond(&d, &v, &headers, "Audit trail", &h, true))
}

// ---------------------------------------------------------------------------
// Diff.

/// `?a=&b=`.
#[derive(Debug, Default, Deserialize)]
pub struct DiffQuery {
    a: Option<String>,
    b: Option<String>,
}

/// May the viewer see a diff side (a cycle's environment; a bare manifest
/// id needs a role somewhere, as in the API)?
async fn may_see_side(s: &Shared, v: &Viewer, side: &str) -> Result<bool, PageError> {
    let n = side.trim_start_matches('#');
    if !n.is_empty() && n.len() < 10 && n.bytes().all(|b| b.is_ascii_digit()) {
        let id: i64 = n.parse().unwrap_or(0);
        return Ok(match s.app.store.cycle(id).await? {
            Some(c) => v.may_view(s, &c.environment),
            None => true, // `diff` says it does not exist
        });
    }
    Ok(v.user.highest_role().is_some())
}

/// `GET /diff`.
pub async fn diff(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Query(q): Query<DiffQuery>,
) -> Page {
    let v = viewer!(s, d, headers, "/diff");
    let (a, b) = (nonempty(&q.a), nonempty(&q.b));
    let mut h = Html::new();
    h.raw("<form class=\"filters\" method=\"get\" action=\"/diff\">");
    text_input(&mut h, "a", "From (cycle or manifest)", a);
    text_input(&mut h, "b", "To (cycle or manifest)", b);
    h.raw("<p><button type=\"submit\">Compare</button></p></form>");
    if let (Some(a), Some(b)) = (a, b) {
        if !may_see_side(&s, &v, a).await? || !may_see_side(&s, &v, b).await? {
            return Err(PageError(
                StatusCode::FORBIDDEN,
                format!("{} may not view both sides", v.user.name),
            ));
        }
        match status::diff(&s.app, a, b).await {
            Ok(r) => {
                h.raw("<p><code>")
                    .text(&r.a)
                    .raw("</code> (manifest <code>")
                    .text(short_id(&r.manifests.0));
                h.raw("</code>) → <code>")
                    .text(&r.b)
                    .raw("</code> (manifest <code>")
                    .text(short_id(&r.manifests.1));
                h.raw("</code>)</p>");
                if r.changes.is_empty() {
                    h.raw("<p>No differences: both run the same.</p>");
                } else {
                    h.raw("<table><thead><tr><th scope=\"col\">Change</th><th scope=\"col\">Component</th>")
                        .raw("<th scope=\"col\">Before</th><th scope=\"col\">After</th></tr></thead><tbody>");
                    for c in &r.changes {
                        let (kind, comp, from, to) = match c {
                            ComponentDiff::Added { component, to } => ("added", component, None, Some(to)),
                            ComponentDiff::Removed { component, from } => ("removed", component, Some(from), None),
                            ComponentDiff::Changed { component, from, to } => {
                                ("changed", component, Some(from), Some(to))
                            }
                        };
                        h.raw("<tr><td>")
                            .text(kind)
                            .raw("</td><th scope=\"row\">")
                            .text(comp)
                            .raw("</th><td>");
                        if let Some(f) = from {
                            h.raw("<del>");
                            commit_link(&mut h, &s, comp, f.commit.as_deref());
                            h.raw("</del> ");
                            origin_cell(&mut h, &s, comp, f);
                        }
                        h.raw("</td><td>");
                        if let Some(t) = to {
                            h.raw("<ins>");
                            commit_link(&mut h, &s, comp, t.commit.as_deref());
                            h.raw("</ins> ");
                            origin_cell(&mut h, &s, comp, t);
                        }
                        h.raw("</td></tr>");
                    }
                    h.raw("</tbody></table>");
                }
            }
            Err(e) => {
                let e = PageError::from(e);
                h.raw("<p class=\"error\" role=\"alert\">").text(&e.1).raw("</p>");
            }
        }
    } else {
        h.raw("<p>Give two cycle numbers (or manifest ids) to see which components and pull requests changed.</p>");
    }
    Ok(respond(&d, &v, &headers, "Manifest diff", &h, false))
}

// ---------------------------------------------------------------------------
// Pull requests.

/// `?repo=&number=`.
#[derive(Debug, Default, Deserialize)]
pub struct PrQuery {
    repo: Option<String>,
    number: Option<String>,
}

/// `GET /pr`: the search form (or a redirect to the PR's page).
pub async fn pr_search(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Query(q): Query<PrQuery>,
) -> Page {
    let v = viewer!(s, d, headers, "/pr");
    if let (Some(repo), Some(n)) = (nonempty(&q.repo), nonempty(&q.number)) {
        let n = n.trim_start_matches('#');
        if let Ok(n) = n.parse::<u64>()
            && !repo.trim_matches('/').is_empty()
        {
            return Ok(Redirect::to(&format!("/pr/{}/{n}", pr_path(repo))).into_response());
        }
    }
    let mut h = Html::new();
    let repos: BTreeSet<String> = s.app.config.components.iter().filter_map(forge_repo).collect();
    h.raw("<form class=\"filters\" method=\"get\" action=\"/pr\" role=\"search\"><p><label for=\"repo\">Repository</label>")
        .raw("<input id=\"repo\" name=\"repo\" list=\"repos\" placeholder=\"owner/name\" required value=\"")
        .text(nonempty(&q.repo).unwrap_or(""))
        .raw("\"><datalist id=\"repos\">");
    for r in &repos {
        h.raw("<option value=\"").text(r).raw("\">");
    }
    h.raw("</datalist></p><p><label for=\"number\">Number</label><input id=\"number\" name=\"number\" size=\"6\" required value=\"")
        .text(nonempty(&q.number).unwrap_or(""))
        .raw("\"></p><p><button type=\"submit\">Show</button></p></form>");
    Ok(respond(&d, &v, &headers, "Pull requests", &h, false))
}

/// `GET /pr/{owner}/{repo}/{number}`.
pub async fn pr(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Page {
    pr_page(s, d, headers, format!("{owner}/{name}"), number).await
}

/// `GET /pr/{repo}/{number}`: a repository known by its name alone (a
/// `git` forge's, or one with no forge configured).
pub async fn pr_by_name(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Path((name, number)): Path<(String, u64)>,
) -> Page {
    pr_page(s, d, headers, name, number).await
}

async fn pr_page(s: Arc<Shared>, d: Arc<Dash>, headers: HeaderMap, repo: String, number: u64) -> Page {
    let here = format!("/pr/{}/{number}", pr_path(&repo));
    let v = viewer!(s, d, headers, &here);
    let key = repo.to_ascii_lowercase();
    let tag = format!("{key}#{number}");
    // Components built from this repository.
    let comps: Vec<String> = s
        .app
        .config
        .components
        .iter()
        .filter(|c| forge_repo(c).map(|r| r.to_ascii_lowercase()).as_deref() == Some(key.as_str()))
        .map(|c| c.name.clone())
        .collect();
    let has = |comp: &str, e: &ManifestComponent| {
        (e.pr == Some(number) && comps.iter().any(|c| c == comp))
            || e.merged.iter().any(|m| m.to_ascii_lowercase() == tag)
    };
    let now = s.app.now();
    let mut h = Html::new();
    if comps.is_empty() {
        h.raw("<p class=\"muted\">No configured component is built from ")
            .text(&repo)
            .raw(".</p>");
    }
    // Approval and exclusion.
    h.raw("<h2>Standing</h2><dl class=\"facts\">");
    let state = s.app.store.pr_state(&key, number).await?;
    h.raw("<dt>Approved for staging</dt><dd>");
    match state
        .as_ref()
        .and_then(|p| p.approved_by.as_ref().map(|b| (b, p.approved_at)))
    {
        Some((by, at)) => {
            h.raw("yes, by ").text(by);
            if let Some(at) = at {
                h.raw(" ").time(at, now);
            }
        }
        None => {
            h.raw("no approval recorded");
        }
    }
    h.raw("</dd><dt>Excluded</dt><dd>");
    match state.as_ref().and_then(|p| p.excluded_by.as_ref().map(|b| (b, p))) {
        Some((by, p)) => {
            h.badge("excluded").raw(" by ").text(by);
            if let Some(at) = p.excluded_at {
                h.raw(" ").time(at, now);
            }
            if let Some(r) = &p.excluded_reason {
                h.raw(": ").text(r);
            }
        }
        None => {
            h.raw("no");
        }
    }
    h.raw("</dd></dl>");

    // Where it runs now.
    h.raw("<h2>Deployed now</h2>");
    let mut now_on = Vec::new();
    for inst in s.app.config.instances() {
        if !v.may_view(&s, &inst.name) {
            continue;
        }
        for dep in s.app.store.deployed(&inst.name).await? {
            if has(&dep.component, &dep.entry) {
                now_on.push((inst.name.clone(), dep));
            }
        }
    }
    if now_on.is_empty() {
        h.raw("<p>Not deployed on any environment you may view.</p>");
    } else {
        h.raw("<ul>");
        for (env, dep) in &now_on {
            h.raw("<li>")
                .link(&format!("/#env-{}", url_part(env)), env)
                .raw(": ")
                .text(&dep.component)
                .raw(" at ");
            commit_link(&mut h, &s, &dep.component, dep.entry.commit.as_deref());
            h.raw(" (cycle ")
                .link(&format!("/cycles/{}", dep.cycle_id), &format!("#{}", dep.cycle_id))
                .raw(")</li>");
        }
        h.raw("</ul>");
    }

    // Its preview environments (issue #5 point 3).
    let previews: Vec<_> = s
        .app
        .store
        .ephemerals()
        .await?
        .into_iter()
        .filter(|e| {
            e.pr.as_deref()
                .is_some_and(|p| crate::ephemeral::pr_matches(p, &repo, number))
                && v.may_view(&s, &e.slot)
        })
        .collect();
    if !previews.is_empty() {
        h.raw("<h2>Preview environment</h2><ul>");
        for e in &previews {
            h.raw("<li>")
                .link(&format!("/#env-{}", url_part(&e.slot)), &e.name)
                .raw(" (profile ")
                .text(&e.profile)
                .raw(", slot ")
                .text(&e.slot)
                .raw("), until ")
                .time(e.expires_at, now)
                .raw("</li>");
        }
        h.raw("</ul>");
    }

    // Manifests and cycles that carried it (the newest cycles).
    h.raw("<h2>Cycles with it</h2>");
    let names = visible_instances(&s, &v, None)?;
    let cycles = if names.is_empty() {
        Vec::new()
    } else {
        s.app.store.cycles(Some(&names), 300).await?
    };
    let mut cache: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    h.raw(
        "<table><thead><tr><th scope=\"col\">Cycle</th><th scope=\"col\">Environment</th><th scope=\"col\">Result</th>",
    )
    .raw("<th scope=\"col\">Started</th><th scope=\"col\">Manifest</th></tr></thead><tbody>");
    let mut found = 0;
    for c in &cycles {
        let Some(m) = &c.manifest else { continue };
        let yes = match cache.get(m) {
            Some(y) => *y,
            None => {
                let y = s
                    .app
                    .store
                    .manifest(m)
                    .await?
                    .is_some_and(|man| man.components.iter().any(|(k, e)| has(k, e)));
                cache.insert(m.clone(), y);
                y
            }
        };
        if !yes {
            continue;
        }
        found += 1;
        h.raw("<tr><td>")
            .link(&format!("/cycles/{}", c.id), &format!("#{}", c.id));
        h.raw("</td><td>")
            .text(&c.environment)
            .raw("</td><td>")
            .badge(&c.result)
            .raw("</td><td>");
        h.time(c.started_at, now)
            .raw("</td><td><code>")
            .text(short_id(m))
            .raw("</code></td></tr>");
    }
    h.raw("</tbody></table>");
    if found == 0 {
        h.raw("<p>No recent cycle deployed it.</p>");
    }

    // Its comment commands.
    h.raw("<h2>Comment commands</h2>");
    let cmds = s.app.store.pr_commands(&key, number, 200).await?;
    if cmds.is_empty() {
        h.raw("<p>None.</p>");
    } else {
        h.raw("<table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th><th scope=\"col\">Command</th>")
            .raw("<th scope=\"col\">Outcome</th><th scope=\"col\">Answer</th></tr></thead><tbody>");
        for c in &cmds {
            h.raw("<tr><td>")
                .time(c.at, now)
                .raw("</td><td>")
                .text(&c.author)
                .raw("</td><td><code>");
            h.text(&c.command)
                .raw("</code></td><td>")
                .badge(&c.outcome)
                .raw("</td><td>")
                .text(&c.detail);
            h.raw("</td></tr>");
        }
        h.raw("</tbody></table>");
    }
    let title = format!("{repo}#{number}");
    Ok(respond(&d, &v, &headers, &title, &h, true))
}
