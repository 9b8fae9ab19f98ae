//! The web dashboard, served by `greenroom serve` at `/`: server-rendered
//! HTML (no build step, no front-end toolchain), readable without
//! JavaScript, live with it (server-sent events on `/events`, a few lines
//! of plain JavaScript in `assets/dashboard.js` that re-fetch the page's
//! content when something changed; a log page appends its lines as they
//! are written, from `…/stream`).
//!
//! Pages read the same store and views as the API (`api::environment_view`,
//! `status::{status, diff}`, `audit::list`) and show only the environments
//! the signed-in user may view. People sign in with their API token
//! (`[[user]]`); the server keeps the session in memory (a random id in an
//! `HttpOnly; SameSite=Strict` cookie) and the token never reaches a page,
//! a log or the cookie. Actions (pause, resume, release, rollback, approve,
//! retry, cancel) ask for confirmation and a reason on a page of their own,
//! carry a per-session CSRF token, and are sent to the JSON API under
//! `/api/v1` with the user's bearer token, in process: the API's role checks
//! decide, exactly as for the CLI.
//!
//! Module map: `html` (escaping, the page frame), `session` (sign-in,
//! cookies, CSRF), `pages` (environments, cycle, history, audit, diff, PR),
//! `results` (a cycle's suites, metric gates, new errors and culprit
//! searches), `actions` (confirmation and posting to the API), `events`
//! (SSE), `logstream` (a log's lines as SSE while its cycle runs).

mod actions;
mod events;
pub mod html;
mod logstream;
mod pages;
mod results;
mod session;

use super::Shared;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use greenroom_core::config::{Role, User};
use html::{Frame, Html};
use std::sync::Arc;

pub use session::Sessions;

/// What the dashboard keeps between requests.
pub struct Dash {
    /// Signed-in sessions.
    pub sessions: Sessions,
    /// Change notifications for `/events`.
    pub changes: events::Changes,
    /// Open log streams (`logstream`), bounded.
    pub log_streams: logstream::Slots,
}

impl Dash {
    fn new() -> Dash {
        Dash {
            sessions: Sessions::default(),
            changes: events::Changes::new(),
            log_streams: logstream::Slots::default(),
        }
    }
}

/// The dashboard's routes (merged into the server's router at `/`).
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(pages::environments))
        .route("/cycles", get(pages::history))
        .route("/cycles/{id}", get(pages::cycle))
        .route("/cycles/{id}/logs/{component}/{which}", get(pages::log))
        .route("/cycles/{id}/logs/{component}/{which}/stream", get(logstream::stream))
        .route("/audit", get(pages::audit))
        .route("/diff", get(pages::diff))
        .route("/pr", get(pages::pr_search))
        .route("/pr/{repo}/{number}", get(pages::pr_by_name))
        .route("/pr/{owner}/{repo}/{number}", get(pages::pr))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/confirm/{action}", get(actions::confirm))
        .route("/actions/{action}", post(actions::act))
        .route("/events", get(events::events))
        .route("/assets/dashboard.css", get(css))
        .route("/assets/dashboard.js", get(js))
        .layer(axum::middleware::map_response(security_headers))
        .layer(Extension(Arc::new(Dash::new())))
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("assets/dashboard.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("assets/dashboard.js"),
    )
        .into_response()
}

/// The signed-in person behind a request.
pub(crate) struct Viewer {
    /// Their `[[user]]` entry.
    pub user: User,
    /// The session's CSRF token (for forms).
    pub csrf: String,
    /// The session id.
    pub session: String,
}

impl Viewer {
    /// The role on the environment an instance (or environment) belongs to.
    pub fn role_on(&self, s: &Shared, name: &str) -> Option<Role> {
        environment_of(s, name).and_then(|e| self.user.role_on(&e))
    }

    /// May they view it?
    pub fn may_view(&self, s: &Shared, name: &str) -> bool {
        self.role_on(s, name) >= Some(Role::Viewer)
    }

    /// [`Viewer::may_view`], as the page's answer when they may not.
    pub fn must_view(&self, s: &Shared, name: &str) -> Result<(), PageError> {
        if self.may_view(s, name) {
            return Ok(());
        }
        Err(PageError(
            StatusCode::FORBIDDEN,
            format!("{} may not view {name}", self.user.name),
        ))
    }

    /// May they act on it (deployer)?
    pub fn may_act(&self, s: &Shared, name: &str) -> bool {
        self.role_on(s, name) >= Some(Role::Deployer)
    }
}

/// The `[[environment]]` an instance or environment name belongs to.
pub(crate) fn environment_of(s: &Shared, name: &str) -> Option<String> {
    s.app
        .config
        .lookup_instances(name)
        .ok()
        .and_then(|i| i.first().map(|i| i.environment.clone()))
}

/// A failed page: status and a message for people (escaped when shown).
pub(crate) struct PageError(pub StatusCode, pub String);

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> PageError {
        match e.downcast_ref::<crate::error::UserError>() {
            Some(crate::error::UserError::Input(m)) => PageError(StatusCode::BAD_REQUEST, m.clone()),
            Some(crate::error::UserError::Busy(m)) => PageError(StatusCode::CONFLICT, m.clone()),
            None => {
                tracing::error!("dashboard: {e:#}");
                PageError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the server's log)".into(),
                )
            }
        }
    }
}

impl From<greenroom_store::StoreError> for PageError {
    fn from(e: greenroom_store::StoreError) -> PageError {
        PageError::from(anyhow::Error::from(e))
    }
}

impl From<super::api::Fail> for PageError {
    fn from(f: super::api::Fail) -> PageError {
        PageError(f.0, f.1)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut body = Html::new();
        body.raw("<p class=\"error\" role=\"alert\">").text(&self.1).raw("</p>");
        body.raw("<p><a href=\"/\">Back to the environments</a></p>");
        let title = self.0.canonical_reason().unwrap_or("Error");
        let page = html::page(
            &Frame {
                title,
                user: None,
                csrf: None,
                notice: None,
                live: false,
            },
            &body,
        );
        (self.0, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
    }
}

/// The signed-in viewer, or a redirect to the sign-in page.
pub(crate) async fn signed_in(s: &Shared, d: &Dash, headers: &HeaderMap, here: &str) -> Result<Viewer, Box<Response>> {
    match d.sessions.viewer(s, headers).await {
        Some(v) => Ok(v),
        None => {
            if headers.contains_key("x-greenroom-fragment") {
                return Err(Box::new(StatusCode::UNAUTHORIZED.into_response()));
            }
            Err(Box::new(
                Redirect::to(&format!("/login?next={}", html::url_part(here))).into_response(),
            ))
        }
    }
}

/// Answers a page: the whole page, or only its content when the live
/// script asks (`X-Greenroom-Fragment`).
pub(crate) fn respond(d: &Dash, v: &Viewer, headers: &HeaderMap, title: &str, body: &Html, live: bool) -> Response {
    if live && headers.contains_key("x-greenroom-fragment") {
        let text = body_string(body);
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response();
    }
    let notice = d.sessions.take_notice(&v.session);
    let role = v
        .user
        .highest_role()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "no role".into());
    let page = html::page(
        &Frame {
            title,
            user: Some((&v.user.name, &role)),
            csrf: Some(&v.csrf),
            notice: notice.as_deref(),
            live,
        },
        body,
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

fn body_string(h: &Html) -> String {
    let mut out = Html::new();
    out.built(h);
    out.into_string()
}
