//! Fake forges for tests: a small GitHub (REST v3, [`FakeGithub`]) and a
//! small GitLab (REST v4, [`FakeGitlab`]) that answer the endpoints greenroom
//! uses the way the documented APIs do — same JSON field names, status codes,
//! pagination headers, authentication failures — from in-memory state a test
//! drives and reads back.
//!
//! Each fake runs an axum server on `127.0.0.1:0` in a thread of its own
//! with its own tokio runtime, so synchronous and asynchronous tests alike
//! can use it; dropping the handle stops the server. Every request received
//! is logged ([`Recorded`]: method, raw path, query, headers without
//! credentials, JSON body). The routes each fake serves are listed in its
//! `ROUTES` table, which is also what its router matches against, so the
//! contract test can check them against the forge's published description.
//!
//! [`FakeSlack`] stands in for a Slack incoming webhook (it checks Block Kit
//! as Slack documents it) and [`FakeHook`] for any JSON webhook receiver;
//! both can be told to fail, for retries.
//!
//! It must stay small and faithful: when the real forge answers 401, 404 or
//! 422, so does the fake, with the real forge's error shape.

#![warn(missing_docs)]

mod github;
mod gitlab;
mod slack;

pub use github::{FakeGithub, FileChange, GhComment, GhDeployment, GhDeploymentStatus, GhStatus, NewPr};
pub use gitlab::{FakeGitlab, GlMember, GlNote, GlStatus, MrDiff, NewMr};
pub use slack::{FakeHook, FakeSlack, HookDelivery, SlackMessage};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;

/// One request a fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// HTTP method (`GET`, `POST`, ...).
    pub method: String,
    /// The path as sent (still percent-encoded).
    pub path: String,
    /// The raw query string (without `?`; empty if none).
    pub query: String,
    /// Headers (lower-case names) except `authorization` and `private-token`.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON, if it was JSON.
    pub body: Option<Value>,
}

impl Recorded {
    /// The decoded value of query parameter `name`, if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        parse_query(&self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// A request as a fake's router sees it.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub method: String,
    /// Percent-decoded path segments (an encoded `/` stays inside its segment).
    pub segments: Vec<String>,
    /// The raw path.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Incoming {
    /// First value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A fake's answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    /// A plain-text body instead (Slack answers `ok` or an error code).
    pub text: Option<String>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
            text: None,
        }
    }

    pub fn text(status: u16, text: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: None,
            text: Some(text.to_string()),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What a fake's router does with a request.
pub(crate) type Handler = Arc<dyn Fn(&Incoming) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Ctx {
    handler: Handler,
    log: Arc<Mutex<Vec<Recorded>>>,
}

/// A running server thread; stops when dropped.
pub(crate) struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `127.0.0.1:0` and serves `handler` from a new thread.
    pub fn start(name: &str, handler: Handler) -> std::io::Result<Server> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let ctx = Ctx {
            handler,
            log: log.clone(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name(format!("fake-{name}"))
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            l
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let app = axum::Router::new().fallback(serve).with_state(ctx);
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = rx => {}
                    }
                });
                // Dropping the runtime here aborts the connections still open.
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the fake forge's thread ended before listening"))??;
        Ok(Server {
            addr,
            log,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.log).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.log).clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Locks a mutex, taking the data of a poisoned one (a panicking test must
/// not make every later request fail).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn serve(State(ctx): State<Ctx>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let mut headers = BTreeMap::new();
    for (k, v) in &parts.headers {
        headers.insert(
            k.as_str().to_ascii_lowercase(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        );
    }
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let incoming = Incoming {
        method: parts.method.as_str().to_string(),
        segments: path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect(),
        path: path.clone(),
        query: parse_query(&query),
        headers: headers.clone(),
        body: bytes,
    };
    let mut logged_headers = headers;
    logged_headers.remove("authorization");
    logged_headers.remove("private-token");
    lock(&ctx.log).push(Recorded {
        method: incoming.method.clone(),
        path,
        query,
        headers: logged_headers,
        body: serde_json::from_slice(&incoming.body).ok(),
    });
    let reply = (ctx.handler)(&incoming);
    let mut builder = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let body = match (&reply.body, &reply.text) {
        (Some(v), _) => {
            builder = builder.header("content-type", "application/json; charset=utf-8");
            Body::from(serde_json::to_vec(v).unwrap_or_default())
        }
        (None, Some(t)) => {
            builder = builder.header("content-type", "text/plain; charset=utf-8");
            Body::from(t.clone())
        }
        (None, None) => Body::empty(),
    };
    builder.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// `a=1&b=x%20y` -> `[("a","1"),("b","x y")]` (`+` is a space).
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    let dec = |s: &str| {
        let s = s.replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned()
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

/// Percent-encodes a query value.
pub(crate) fn encode_query_value(v: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(v, SET).to_string()
}

/// Matches `segments` against a route template (`{name}` or `:name` is a
/// parameter): the parameters in order.
pub(crate) fn match_template(template: &str, segments: &[String]) -> Option<Vec<String>> {
    let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (p, s) in parts.iter().zip(segments) {
        if p.starts_with('{') || p.starts_with(':') {
            if s.is_empty() {
                return None;
            }
            params.push(s.clone());
        } else if p != s {
            return None;
        }
    }
    Some(params)
}

/// One page of `items`: `(page items, page, per_page, total_pages)`.
pub(crate) fn paginate<T: Clone>(
    items: &[T],
    inc: &Incoming,
    default_per_page: usize,
) -> (Vec<T>, usize, usize, usize) {
    let per_page = inc
        .param("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default_per_page)
        .min(100);
    let page = inc
        .param("page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let total_pages = items.len().div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page).min(items.len());
    let end = start.saturating_add(per_page).min(items.len());
    (items[start..end].to_vec(), page, per_page, total_pages)
}

/// The URL of `page` of the same list (the other query parameters kept).
pub(crate) fn page_url(base: &str, inc: &Incoming, page: usize) -> String {
    let mut q: Vec<String> = inc
        .query
        .iter()
        .filter(|(k, _)| k != "page")
        .map(|(k, v)| format!("{}={}", encode_query_value(k), encode_query_value(v)))
        .collect();
    q.push(format!("page={page}"));
    format!("{base}{}?{}", inc.path, q.join("&"))
}

/// An RFC 5988 `Link` header for `page` of `last` pages; `order` lists the
/// relations in the order the forge writes them. GitHub writes `first` and
/// `prev` only after page 1 and `next` and `last` only before the last page;
/// GitLab always writes `first` and `last` (`always_ends`).
pub(crate) fn link_header(
    base: &str,
    inc: &Incoming,
    page: usize,
    last: usize,
    order: &[&str],
    always_ends: bool,
) -> Option<String> {
    let mut links = Vec::new();
    for rel in order {
        let target = match *rel {
            "prev" if page > 1 => Some(page - 1),
            "next" if page < last => Some(page + 1),
            "first" if page > 1 || always_ends => Some(1),
            "last" if page < last || always_ends => Some(last),
            _ => None,
        };
        if let Some(p) = target {
            links.push(format!("<{}>; rel=\"{rel}\"", page_url(base, inc, p)));
        }
    }
    (!links.is_empty()).then(|| links.join(", "))
}

/// Seconds since the epoch as RFC 3339 (`2024-01-02T03:04:05Z`), or with
/// milliseconds (`...05.000Z`) as GitLab writes it.
pub(crate) fn rfc3339(secs: i64, millis: bool) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if millis {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

/// Now, in seconds since the epoch.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        assert_eq!(rfc3339(0, false), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000, false), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(1_700_000_000, true), "2023-11-14T22:13:20.000Z");
        assert_eq!(rfc3339(951_782_400, false), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn matches_templates() {
        let segs = |p: &str| {
            p.split('/')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            match_template("/repos/{owner}/{repo}/pulls", &segs("/repos/a/b/pulls")),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            match_template("/repos/{owner}/{repo}/pulls", &segs("/repos/a/b/issues")),
            None
        );
        assert_eq!(
            match_template("/projects/:id/statuses/:sha", &segs("/projects/g%2Fp/statuses/ab")),
            Some(vec!["g%2Fp".into(), "ab".into()])
        );
    }

    #[test]
    fn link_headers_like_each_forge() {
        let inc = |page: &str| Incoming {
            method: "GET".into(),
            segments: vec![],
            path: "/x".into(),
            query: parse_query(&format!("per_page=2&page={page}")),
            headers: BTreeMap::new(),
            body: vec![],
        };
        let gh = ["prev", "next", "last", "first"];
        assert_eq!(
            link_header("http://h", &inc("1"), 1, 3, &gh, false).as_deref(),
            Some("<http://h/x?per_page=2&page=2>; rel=\"next\", <http://h/x?per_page=2&page=3>; rel=\"last\"")
        );
        assert_eq!(
            link_header("http://h", &inc("3"), 3, 3, &gh, false).as_deref(),
            Some("<http://h/x?per_page=2&page=2>; rel=\"prev\", <http://h/x?per_page=2&page=1>; rel=\"first\"")
        );
        assert_eq!(link_header("http://h", &inc("1"), 1, 1, &gh, false), None);
        let gl = ["prev", "next", "first", "last"];
        assert_eq!(
            link_header("http://h", &inc("1"), 1, 1, &gl, true).as_deref(),
            Some("<http://h/x?per_page=2&page=1>; rel=\"first\", <http://h/x?per_page=2&page=1>; rel=\"last\"")
        );
    }

    #[test]
    fn parses_queries() {
        assert_eq!(
            parse_query("a=1&b=x%20y+z&c"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("c".into(), String::new())
            ]
        );
    }
}
