//! A fake Slack incoming webhook ([`FakeSlack`]) and a plain webhook
//! receiver ([`FakeHook`]) for greenroom's notifications.
//!
//! The fake Slack accepts `POST` on its one webhook URL
//! (`/services/T00000000/B00000000/<token>`) and checks the body the way
//! Slack documents it (docs.slack.dev, "Sending messages using incoming
//! webhooks" and the Block Kit reference): a JSON object with `text` or
//! `blocks`; at most 50 blocks, each of a known `type`; a `header`'s text
//! is `plain_text` of at most 150 characters; a `section` has `text`
//! (`mrkdwn` or `plain_text`, at most 3000) or `fields` (at most 10, each
//! at most 2000); a `context` has 1 to 10 elements. It answers `200 ok`,
//! or like Slack `400 invalid_payload` / `no_text` / `invalid_blocks`, and
//! `404 no_service` on another path. It can be told to fail the next
//! requests with 500, to test retries.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::{Incoming, Recorded, Reply, Server, lock};

/// Block types Slack knows (layout blocks).
const BLOCK_TYPES: &[&str] = &[
    "actions",
    "context",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "video",
];

/// A message the fake Slack accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    /// The JSON body.
    pub body: Value,
    /// The raw body, as sent.
    pub raw: String,
}

impl SlackMessage {
    /// Every text of the message (fallback, blocks, fields, context), joined by newlines.
    pub fn all_text(&self) -> String {
        let mut out = Vec::new();
        collect_text(&self.body, &mut out);
        out.join("\n")
    }
}

fn collect_text(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("text", Value::String(s)) => out.push(s.clone()),
                    _ => collect_text(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_text(v, out)),
        _ => {}
    }
}

#[derive(Default)]
struct St {
    path: String,
    fail_next: usize,
    accepted: Vec<SlackMessage>,
    rejected: Vec<(String, String)>,
    attempts: usize,
}

/// A fake Slack incoming webhook on `127.0.0.1:0`.
#[derive(Debug)]
pub struct FakeSlack {
    server: Server,
    state: Arc<Mutex<St>>,
}

impl std::fmt::Debug for St {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("St")
            .field("accepted", &self.accepted.len())
            .finish_non_exhaustive()
    }
}

impl FakeSlack {
    /// Starts a fake whose webhook URL ends in `token`.
    pub fn start(token: &str) -> std::io::Result<FakeSlack> {
        let state = Arc::new(Mutex::new(St {
            path: format!("/services/T00000000/B00000000/{token}"),
            ..St::default()
        }));
        let st = state.clone();
        let server = Server::start("slack", Arc::new(move |inc: &Incoming| handle(&mut lock(&st), inc)))?;
        Ok(FakeSlack { server, state })
    }

    /// The incoming webhook URL (it holds the token: a secret).
    pub fn webhook_url(&self) -> String {
        format!("{}{}", self.server.base(), lock(&self.state).path)
    }

    /// Answers the next `n` requests with `500`.
    pub fn fail_next(&self, n: usize) {
        lock(&self.state).fail_next = n;
    }

    /// Messages accepted, in order.
    pub fn messages(&self) -> Vec<SlackMessage> {
        lock(&self.state).accepted.clone()
    }

    /// Requests refused as invalid: (Slack's error code, body), in order.
    pub fn rejected(&self) -> Vec<(String, String)> {
        lock(&self.state).rejected.clone()
    }

    /// Requests received on the webhook path (injected failures included).
    pub fn attempts(&self) -> usize {
        lock(&self.state).attempts
    }

    /// Every request received.
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }
}

fn handle(st: &mut St, inc: &Incoming) -> Reply {
    if inc.path != st.path {
        return Reply::text(404, "no_service");
    }
    if inc.method != "POST" {
        return Reply::text(405, "invalid_method");
    }
    st.attempts += 1;
    if st.fail_next > 0 {
        st.fail_next -= 1;
        return Reply::text(500, "internal_error");
    }
    let raw = String::from_utf8_lossy(&inc.body).into_owned();
    match validate(&inc.body) {
        Ok(body) => {
            st.accepted.push(SlackMessage { body, raw });
            Reply::text(200, "ok")
        }
        Err(code) => {
            st.rejected.push((code.to_string(), raw));
            Reply::text(400, code)
        }
    }
}

/// Slack's checks of an incoming-webhook body; the error code it answers.
pub(crate) fn validate(body: &[u8]) -> Result<Value, &'static str> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "invalid_payload")?;
    let obj = v.as_object().ok_or("invalid_payload")?;
    let text = obj.get("text");
    let blocks = obj.get("blocks");
    match text {
        None => {}
        Some(Value::String(_)) => {}
        Some(_) => return Err("invalid_payload"),
    }
    let has_text = text.and_then(Value::as_str).is_some_and(|t| !t.trim().is_empty());
    match blocks {
        None if has_text => {}
        None => return Err("no_text"),
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= 50 => {
            for b in list {
                block(b).ok_or("invalid_blocks")?;
            }
        }
        Some(_) => return Err("invalid_blocks"),
    }
    Ok(v)
}

/// A text object of one of `kinds`, 1 to `max` characters.
fn text_object(v: &Value, kinds: &[&str], max: usize) -> Option<()> {
    let kind = v.get("type")?.as_str()?;
    let text = v.get("text")?.as_str()?;
    let n = text.chars().count();
    (kinds.contains(&kind) && n >= 1 && n <= max).then_some(())
}

fn block(b: &Value) -> Option<()> {
    let kind = b.get("type")?.as_str()?;
    if !BLOCK_TYPES.contains(&kind) {
        return None;
    }
    if let Some(id) = b.get("block_id") {
        (id.as_str()?.chars().count() <= 255).then_some(())?;
    }
    match kind {
        "header" => text_object(b.get("text")?, &["plain_text"], 150),
        "section" => {
            let text = b.get("text");
            let fields = b.get("fields");
            if text.is_none() && fields.is_none() {
                return None;
            }
            if let Some(t) = text {
                text_object(t, &["mrkdwn", "plain_text"], 3000)?;
            }
            if let Some(f) = fields {
                let f = f.as_array()?;
                if f.is_empty() || f.len() > 10 {
                    return None;
                }
                for x in f {
                    text_object(x, &["mrkdwn", "plain_text"], 2000)?;
                }
            }
            Some(())
        }
        "context" => {
            let e = b.get("elements")?.as_array()?;
            if e.is_empty() || e.len() > 10 {
                return None;
            }
            for x in e {
                match x.get("type")?.as_str()? {
                    "image" => {
                        x.get("image_url")?.as_str()?;
                        x.get("alt_text")?.as_str()?;
                    }
                    _ => text_object(x, &["mrkdwn", "plain_text"], 3000)?,
                }
            }
            Some(())
        }
        "divider" => Some(()),
        // Not used by greenroom: accepted as Slack would, unchecked.
        _ => Some(()),
    }
}

/// A request a [`FakeHook`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookDelivery {
    /// Headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The raw body (what a signature covers).
    pub body: Vec<u8>,
}

#[derive(Debug, Default)]
struct HookSt {
    fail_next: usize,
    received: Vec<HookDelivery>,
}

/// A plain webhook receiver on `127.0.0.1:0`: records every `POST` with
/// its raw body and answers `204`, or `500` when told to fail.
#[derive(Debug)]
pub struct FakeHook {
    server: Server,
    state: Arc<Mutex<HookSt>>,
}

impl FakeHook {
    /// Starts it.
    pub fn start() -> std::io::Result<FakeHook> {
        let state = Arc::new(Mutex::new(HookSt::default()));
        let st = state.clone();
        let server = Server::start(
            "hook",
            Arc::new(move |inc: &Incoming| {
                let mut st = lock(&st);
                if st.fail_next > 0 {
                    st.fail_next -= 1;
                    return Reply::text(500, "failing as told");
                }
                st.received.push(HookDelivery {
                    headers: inc.headers.clone(),
                    body: inc.body.clone(),
                });
                Reply::text(204, "")
            }),
        )?;
        Ok(FakeHook { server, state })
    }

    /// Its URL (`http://127.0.0.1:PORT/hook`).
    pub fn url(&self) -> String {
        format!("{}/hook", self.server.base())
    }

    /// Answers the next `n` requests with `500`.
    pub fn fail_next(&self, n: usize) {
        lock(&self.state).fail_next = n;
    }

    /// Requests answered 204, in order.
    pub fn received(&self) -> Vec<HookDelivery> {
        lock(&self.state).received.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<Value, &'static str> {
        validate(&serde_json::to_vec(&v).unwrap_or_default())
    }

    #[test]
    fn accepts_what_slack_accepts() {
        assert!(check(json!({"text": "hello"})).is_ok());
        assert!(
            check(json!({"text": "x", "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Title"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*bold*"}},
                {"type": "section", "fields": [{"type": "mrkdwn", "text": "a"}]},
                {"type": "divider"},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}]}
            ]}))
            .is_ok()
        );
    }

    #[test]
    fn refuses_what_slack_refuses() {
        assert_eq!(validate(b"not json"), Err("invalid_payload"));
        assert_eq!(check(json!(["text"])), Err("invalid_payload"));
        assert_eq!(check(json!({"username": "x"})), Err("no_text"));
        assert_eq!(check(json!({"blocks": [{"type": "banner"}]})), Err("invalid_blocks"));
        assert_eq!(
            check(json!({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]})),
            Err("invalid_blocks")
        );
        let long = "x".repeat(151);
        assert_eq!(
            check(json!({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": long}}]})),
            Err("invalid_blocks")
        );
        let long = "x".repeat(3001);
        assert_eq!(
            check(json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": long}}]})),
            Err("invalid_blocks")
        );
        assert_eq!(check(json!({"blocks": [{"type": "section"}]})), Err("invalid_blocks"));
        let many: Vec<Value> = (0..51).map(|_| json!({"type": "divider"})).collect();
        assert_eq!(check(json!({"text": "x", "blocks": many})), Err("invalid_blocks"));
    }
}
