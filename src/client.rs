//! The CLI as a client of a running `greenroom serve` (`--server URL`,
//! `GREENROOM_SERVER`, or `[client] server` in the config).
//!
//! The commands that have an API counterpart — `deploy`, `status`,
//! `history`, `lease` (by hand), `release`, `pause`, `resume`, `cancel` —
//! send it and print the answer exactly as the local command would (same
//! human text, same `--json` documents), so scripts do not care where they
//! run. The server knows the caller by the API token (`GREENROOM_TOKEN`, or
//! `[client] token = "env:NAME" | "file:PATH"`), never by `--as`.
//!
//! HTTP answers map onto the CLI's exit statuses: 400/401/403/404 are bad
//! input (2, nothing changed), 409 is "held by someone else" (3), 422 is a
//! cycle that ran and failed (1, with its report).

use crate::error::{UserError, input};
use anyhow::Context;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A connection to a server.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// How long one API call may take (a deploy waits for its whole cycle).
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

impl Client {
    /// A client for `base` (`http://host:port`), presenting `token`.
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Client> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(input(format!(
                "--server `{base}`: write the server's URL, e.g. http://127.0.0.1:8080"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .context("cannot create an HTTP client")?;
        Ok(Client { base, token, http })
    }

    /// The server's URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(b).context("encode the request")?);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the greenroom server at {}: {e}", self.base))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {url}"))?;
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).chars().take(500).collect()));
        Ok((status, value))
    }

    /// Maps an error answer onto the CLI's errors.
    fn fail(&self, status: StatusCode, v: &Value) -> anyhow::Error {
        let msg = v
            .get("error")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| v.to_string());
        match status {
            StatusCode::UNAUTHORIZED => input(format!(
                "the server at {} refused the token: {msg} (set GREENROOM_TOKEN or [client] token)",
                self.base
            )),
            StatusCode::CONFLICT => UserError::Busy(msg).into(),
            s if s.is_client_error() => input(msg),
            s => anyhow::anyhow!("the server answered {s}: {msg}"),
        }
    }

    /// `GET /api/v1{path}`, decoded.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let (status, v) = self.call(reqwest::Method::GET, path, None).await?;
        if !status.is_success() {
            return Err(self.fail(status, &v));
        }
        serde_json::from_value(v).with_context(|| format!("unexpected answer to GET {path}"))
    }

    /// `POST /api/v1{path}` with a JSON body, decoded; `accept` lists the
    /// non-2xx statuses whose body is still the answer (422: a failed cycle).
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        accept: &[StatusCode],
    ) -> anyhow::Result<(StatusCode, T)> {
        let (status, v) = self.call(reqwest::Method::POST, path, Some(body)).await?;
        if !status.is_success() && !accept.contains(&status) {
            return Err(self.fail(status, &v));
        }
        let t = serde_json::from_value(v).with_context(|| format!("unexpected answer to POST {path}"))?;
        Ok((status, t))
    }

    /// Environment names the server shows the caller, in its order.
    pub async fn environment_names(&self) -> anyhow::Result<Vec<String>> {
        let views: Vec<Value> = self.get("/environments").await?;
        Ok(views
            .iter()
            .filter_map(|v| v.get("environment").and_then(Value::as_str).map(String::from))
            .collect())
    }

    /// `status` as the local command reports it, from the API's views.
    pub async fn status(&self, env: Option<&str>) -> anyhow::Result<Vec<crate::status::EnvironmentStatus>> {
        let views: Vec<Value> = match env {
            None => self.get("/environments").await?,
            Some(e) => {
                let v: Value = self.get(&format!("/environments/{}", segment(e))).await?;
                match v.get("slots").and_then(Value::as_array) {
                    Some(slots) => slots.clone(),
                    None => vec![v],
                }
            }
        };
        views.into_iter().map(from_view).collect()
    }
}

/// An API environment view back into `status`'s shape: `pause` becomes
/// `paused`, the next action and the newest decision become text.
fn from_view(mut v: Value) -> anyhow::Result<crate::status::EnvironmentStatus> {
    let obj = v
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("the server sent an environment that is not an object"))?;
    let pause = obj.remove("pause");
    let next = obj.remove("next");
    let decisions = obj.remove("decisions");
    obj.remove("paused");
    let mut st: crate::status::EnvironmentStatus =
        serde_json::from_value(v).context("the server sent an environment greenroom cannot read")?;
    st.paused = pause.and_then(|p| serde_json::from_value(p).ok());
    st.next = next.and_then(|n| {
        let what = n.get("what")?.as_str()?.to_string();
        Some(match n.get("at").and_then(Value::as_str) {
            Some(at) => format!("{what} (at {at})"),
            None => what,
        })
    });
    st.last_decision = decisions.and_then(|d| {
        let first = d.as_array()?.first()?.clone();
        Some(format!(
            "{} {}: {}",
            first.get("at")?.as_str()?,
            first.get("kind")?.as_str()?,
            first.get("reason")?.as_str()?
        ))
    });
    Ok(st)
}

/// One URL path segment: names are `[a-z0-9_-]`, but nothing typed by a
/// person goes into a URL unescaped.
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_escaped() {
        assert_eq!(segment("dev-2"), "dev-2");
        assert_eq!(segment("../x?y"), "..%2Fx%3Fy");
    }

    #[test]
    fn views_read_back_as_status() {
        let v = serde_json::json!({
            "environment": "staging", "manifest": null, "lease": null, "queue": [], "last_cycle": null,
            "components": [], "paused": true,
            "pause": {"environment": "staging", "paused": true, "by": "alice", "reason": "release", "since": 5},
            "next": {"at": null, "what": "waiting for a trigger"},
            "decisions": [{"id": 1, "environment": "staging", "at": "2026-01-01T00:00:00Z", "kind": "defer",
                           "reason": "cooldown", "triggers": "[]", "cycle": null}]
        });
        let st = from_view(v).expect("reads");
        assert_eq!(st.paused.expect("paused").by, "alice");
        assert_eq!(st.next.as_deref(), Some("waiting for a trigger"));
        assert_eq!(
            st.last_decision.as_deref(),
            Some("2026-01-01T00:00:00Z defer: cooldown")
        );
    }
}
