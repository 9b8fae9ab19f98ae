//! Signing in with an API token, sessions and CSRF tokens.
//!
//! A session is a random 256-bit id in the `greenroom_session` cookie
//! (`HttpOnly; SameSite=Strict; Path=/`, `Secure` when `public_url` is
//! https). The server keeps, in memory and in the store
//! (`dashboard_sessions`, so sign-ins outlive a restart), only digests:
//! SHA-256 of the id, the user's name, SHA-256 of the API token they signed
//! in with, and a CSRF token. A session ends after 12 hours, on sign-out,
//! or when its user's token changes (its digest no longer matches). Actions
//! call the API in process as that user (`Users::internal_authorization`).
//! Every form post carries the session's CSRF token, compared in constant
//! time, and must come from this origin (`Origin` / `Sec-Fetch-Site`, when
//! the browser sends them).

use super::html::{self, Frame, Html};
use super::{Dash, Viewer};
use crate::server::{Shared, api};
use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The session cookie's name.
pub const COOKIE: &str = "greenroom_session";

/// How long a session lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// At most this many sessions are kept (the oldest go first).
const MAX_SESSIONS: usize = 10_000;

struct Session {
    user: String,
    token_digest: [u8; 32],
    csrf: String,
    /// When it ends (the app's clock).
    expires_at: greenroom_core::time::Millis,
    notice: Option<String>,
}

/// The signed-in sessions: the store's, cached in memory by id digest.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions(..)")
    }
}

/// 32 random bytes as hex.
pub fn random_id() -> anyhow::Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness for a session id: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Equality without an early exit.
fn same(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.bytes().zip(b.bytes()) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// The session id in the request's cookies.
fn cookie_id(headers: &HeaderMap) -> Option<String> {
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(';') {
            if let Some((k, val)) = part.trim().split_once('=')
                && k == COOKIE
                && !val.is_empty()
            {
                return Some(val.to_string());
            }
        }
    }
    None
}

/// What a session is known by on the server: the digest of its id.
fn key_of(id: &str) -> String {
    api::hex(&api::token_digest(id))
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a usable map behind.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session for `user`, who signed in with `token`; returns the
    /// cookie's id. Recorded in the store before the cookie is given out.
    async fn create(&self, s: &Shared, user: &str, token: &str) -> anyhow::Result<String> {
        let id = random_id()?;
        let csrf = random_id()?;
        let now = s.app.now();
        let expires_at = now.saturating_add(i64::try_from(LIFETIME.as_millis()).unwrap_or(i64::MAX));
        let token_digest = api::token_digest(token);
        let key = key_of(&id);
        s.app
            .store
            .put_session(
                &greenroom_store::SessionRecord {
                    id: key.clone(),
                    user: user.to_string(),
                    token_digest: api::hex(&token_digest),
                    csrf: csrf.clone(),
                    created_at: now,
                    expires_at,
                },
                now,
                i64::try_from(MAX_SESSIONS).unwrap_or(i64::MAX),
            )
            .await?;
        let mut m = self.lock();
        m.retain(|_, x| x.expires_at > now);
        if m.len() >= MAX_SESSIONS
            && let Some(oldest) = m.iter().min_by_key(|(_, x)| x.expires_at).map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(
            key,
            Session {
                user: user.to_string(),
                token_digest,
                csrf,
                expires_at,
                notice: None,
            },
        );
        Ok(id)
    }

    /// The signed-in user of a request: a session (in memory, else in the
    /// store, from before a restart) that has not ended, whose user still
    /// exists with the same token.
    pub(crate) async fn viewer(&self, s: &Shared, headers: &HeaderMap) -> Option<Viewer> {
        let key = key_of(&cookie_id(headers)?);
        let now = s.app.now();
        let known = self
            .lock()
            .get(&key)
            .filter(|x| x.expires_at > now)
            .map(|x| (x.user.clone(), x.token_digest, x.csrf.clone()));
        let (user, token_digest, csrf) = match known {
            Some(k) => k,
            None => {
                let r = match s.app.store.session(&key, now).await {
                    Ok(r) => r?,
                    Err(e) => {
                        tracing::warn!("cannot read a dashboard session: {e}");
                        return None;
                    }
                };
                let token_digest = api::unhex(&r.token_digest)?;
                self.lock().insert(
                    key.clone(),
                    Session {
                        user: r.user.clone(),
                        token_digest,
                        csrf: r.csrf.clone(),
                        expires_at: r.expires_at,
                        notice: None,
                    },
                );
                (r.user, token_digest, r.csrf)
            }
        };
        let found = s.users.find_digest(&token_digest)?;
        if found.name != user {
            return None;
        }
        Some(Viewer {
            user: found.clone(),
            csrf,
            session: key,
        })
    }

    /// The `Authorization` value to call the API as a session's user.
    pub(crate) fn authorization(&self, s: &Shared, session: &str) -> Option<String> {
        let d = self.lock().get(session).map(|x| x.token_digest)?;
        Some(s.users.internal_authorization(&d))
    }

    /// Shows `text` once on the next page.
    pub(crate) fn notice(&self, session: &str, text: String) {
        if let Some(s) = self.lock().get_mut(session) {
            s.notice = Some(text);
        }
    }

    /// Takes the pending notice.
    pub(crate) fn take_notice(&self, session: &str) -> Option<String> {
        self.lock().get_mut(session).and_then(|s| s.notice.take())
    }

    async fn remove(&self, s: &Shared, session: &str) {
        self.lock().remove(session);
        if let Err(e) = s.app.store.delete_session(session).await {
            tracing::warn!("cannot end a dashboard session in the store: {e}");
        }
    }
}

/// Does a form post come from a page of this server? The browser's
/// `Sec-Fetch-Site` and `Origin` headers are checked when present.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        return false;
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            let bare = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .unwrap_or("");
            !host.is_empty() && bare == host
        }
    }
}

/// Checks a posted CSRF token against the session's (and the origin).
pub(crate) fn check_csrf(v: &Viewer, headers: &HeaderMap, posted: &str) -> Result<(), super::PageError> {
    if !same_origin(headers) || !same(&v.csrf, posted) {
        return Err(super::PageError(
            StatusCode::FORBIDDEN,
            String::from(
                "This form is out of date or did not come from this dashboard; reload the page and try again.",
            ),
        ));
    }
    Ok(())
}

fn forbidden(msg: &str) -> Response {
    super::PageError(StatusCode::FORBIDDEN, msg.to_string()).into_response()
}

/// `?next=` (a local path only).
#[derive(Debug, Default, Deserialize)]
pub struct Next {
    next: Option<String>,
}

fn local(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

fn login_page(s: &Shared, next: &str, error: Option<&str>) -> String {
    let mut b = Html::new();
    if let Some(e) = error {
        b.raw("<p class=\"error\" role=\"alert\">").text(e).raw("</p>");
    }
    if s.app.config.users.is_empty() {
        b.raw("<p class=\"error\">No <code>[[user]]</code> is configured, so nobody can sign in. ")
            .raw("Add one to <code>greenroom.toml</code> (see the README's REST API section) and restart the server.</p>");
    }
    b.raw("<form method=\"post\" action=\"/login\"><p><label for=\"token\">API token</label>")
        .raw("<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus size=\"40\"></p>")
        .raw("<input type=\"hidden\" name=\"next\" value=\"")
        .text(next)
        .raw("\"><p><button type=\"submit\">Sign in</button></p></form>")
        .raw("<p class=\"muted\">Your token is the one your <code>[[user]]</code> entry names; ")
        .raw("it stays on the server for this session and is never shown.</p>");
    html::page(
        &Frame {
            title: "Sign in",
            user: None,
            csrf: None,
            notice: None,
            live: false,
        },
        &b,
    )
}

fn html_response(status: StatusCode, text: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response()
}

/// `GET /login`.
pub async fn login_form(State(s): State<Arc<Shared>>, Query(q): Query<Next>) -> Response {
    html_response(StatusCode::OK, login_page(&s, &local(q.next.as_deref()), None))
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// `POST /login`: a known token starts a session.
pub async fn login(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = local(f.next.as_deref());
    if !same_origin(&headers) {
        return forbidden("Sign in from this dashboard's own page.");
    }
    let token = f.token.trim();
    let Some(user) = s.users.find(token).filter(|_| !token.is_empty()) else {
        return html_response(
            StatusCode::UNAUTHORIZED,
            login_page(&s, &next, Some("Unknown token. Tokens are configured per [[user]].")),
        );
    };
    if user.highest_role().is_none() {
        return html_response(
            StatusCode::FORBIDDEN,
            login_page(&s, &next, Some("This user has no role on any environment.")),
        );
    }
    let id = match d.sessions.create(&s, &user.name, token).await {
        Ok(x) => x,
        Err(e) => return super::PageError::from(e).into_response(),
    };
    let secure = s
        .app
        .config
        .server
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    if let Some(v) = d.sessions.viewer(&s, &headers).await {
        if let Err(e) = check_csrf(&v, &headers, &f.csrf) {
            return e.into_response();
        }
        d.sessions.remove(&s, &v.session).await;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("greenroom_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local(Some("/cycles/3")), "/cycles/3");
        assert_eq!(local(Some("//evil.example/")), "/");
        assert_eq!(local(Some("https://evil.example/")), "/");
        assert_eq!(local(Some("/\\evil")), "/");
        assert_eq!(local(None), "/");
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn ids_are_random_and_long() {
        let a = random_id().unwrap_or_default();
        let b = random_id().unwrap_or_default();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()) && !same(&a, &b));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; greenroom_session=abc; b=2"),
        );
        assert_eq!(cookie_id(&h).as_deref(), Some("abc"));
    }
}
