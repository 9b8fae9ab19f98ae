//! Notifications, pure (issue #6 points 6-7): which events exist, which
//! target wants which event, the messages (a Slack Block Kit message, a
//! generic webhook's JSON body), and the decisions around sending them —
//! one message per event ([`Dedup`]), at most N per minute per target
//! ([`RateLimiter`]), retries with exponential backoff ([`retry_delay`]).
//! Time is always an argument; the sending is `src/notify.rs`'s.
//!
//! Nothing here ever holds a target's URL or key: messages are rendered
//! from the event alone.

use crate::config::{Notify, Tier};
use crate::time::{self, Millis};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// A scheduled cycle failed for the code (a blocking suite, a build, a health check).
    CycleFailed,
    /// A scheduled cycle succeeded: its duration and what changed.
    CycleFinished,
    /// A culprit search excluded the PRs that broke a cycle.
    CulpritFound,
    /// A cycle failed for infrastructure: retried, nobody blamed.
    InfraError,
    /// A lease ends soon: its holder is warned.
    LeaseExpiring,
    /// A cycle's tests produced server errors (5xx) or a non-blocking suite failed.
    TestErrors,
    /// An environment was rolled back (and its continuous deployment locked).
    Rollback,
}

impl EventKind {
    /// Every event.
    pub const ALL: [EventKind; 7] = [
        EventKind::CycleFailed,
        EventKind::CycleFinished,
        EventKind::CulpritFound,
        EventKind::InfraError,
        EventKind::LeaseExpiring,
        EventKind::TestErrors,
        EventKind::Rollback,
    ];

    /// What a target without `events` hears: failures, culprits, rollbacks, lease warnings.
    pub const DEFAULT: [EventKind; 6] = [
        EventKind::CycleFailed,
        EventKind::CulpritFound,
        EventKind::InfraError,
        EventKind::LeaseExpiring,
        EventKind::TestErrors,
        EventKind::Rollback,
    ];

    /// As written in the config and sent in `X-Greenroom-Event`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CycleFailed => "cycle-failed",
            EventKind::CycleFinished => "cycle-finished",
            EventKind::CulpritFound => "culprit-found",
            EventKind::InfraError => "infra-error",
            EventKind::LeaseExpiring => "lease-expiring",
            EventKind::TestErrors => "test-errors",
            EventKind::Rollback => "rollback",
        }
    }

    /// The inverse of [`EventKind::as_str`].
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn icon(self) -> &'static str {
        match self {
            EventKind::CycleFailed => "\u{274c}",
            EventKind::CycleFinished => "\u{2705}",
            EventKind::CulpritFound => "\u{1f50e}",
            EventKind::InfraError => "\u{26a0}\u{fe0f}",
            EventKind::LeaseExpiring => "\u{23f3}",
            EventKind::TestErrors => "\u{1f6a8}",
            EventKind::Rollback => "\u{23ea}",
        }
    }
}

/// One thing to tell people about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The environment instance (`staging`, `dev-2`).
    pub environment: String,
    /// The `[[environment]]` it belongs to (a pool's name for its slots).
    pub group: String,
    /// The stored cycle it is about, if any.
    pub cycle: Option<i64>,
    /// One line: `staging: cycle 12 failed`.
    pub title: String,
    /// What happened, in plain text (it is escaped for Slack).
    pub summary: String,
    /// Label and value pairs (`duration`, `changed`, `culprit` ...).
    pub fields: Vec<(String, String)>,
    /// The tier of the suite it is about, if it is about one.
    pub tier: Option<Tier>,
    /// The chat identity to mention (a lease's holder), if known.
    pub mention: Option<String>,
    /// For a lease warning: when the lease ends.
    pub expires: Option<Millis>,
    /// When it happened.
    pub at: Millis,
    /// What makes it the same event as another (one message per key).
    pub key: String,
}

impl Event {
    /// An event with no details yet; the key is `kind:environment:cycle`.
    pub fn new(
        kind: EventKind,
        environment: &str,
        group: &str,
        cycle: Option<i64>,
        title: String,
        at: Millis,
    ) -> Event {
        let key = format!(
            "{}:{environment}:{}",
            kind.as_str(),
            cycle.map(|c| c.to_string()).unwrap_or_default()
        );
        Event {
            kind,
            environment: environment.to_string(),
            group: group.to_string(),
            cycle,
            title,
            summary: String::new(),
            fields: Vec::new(),
            tier: None,
            mention: None,
            expires: None,
            at,
            key,
        }
    }
}

/// Whether `target` wants `event` at `now`: its events, its environments
/// (by `[[environment]]` name or instance), its tiers (for events about a
/// suite), and for a lease warning, whether the lease ends within the
/// target's `lease_warning`.
pub fn wants(target: &Notify, event: &Event, now: Millis) -> bool {
    if !target.events.contains(&event.kind) {
        return false;
    }
    if !target.environments.is_empty()
        && !target
            .environments
            .iter()
            .any(|e| *e == event.group || *e == event.environment)
    {
        return false;
    }
    if let (false, Some(t)) = (target.tiers.is_empty(), event.tier)
        && !target.tiers.contains(&t)
    {
        return false;
    }
    if event.kind == EventKind::LeaseExpiring {
        let warn = i64::try_from(target.lease_warning.as_millis()).unwrap_or(i64::MAX);
        return event.expires.is_some_and(|e| e > now && e - now <= warn);
    }
    true
}

// ---------------------------------------------------------------------------
// Messages.

/// Slack's limits on Block Kit (docs.slack.dev, "Blocks"): a header's
/// text, a section's text, a section field, the fields per section, the
/// elements of a context block, the blocks per message.
pub mod slack_limits {
    /// `header` text (plain_text).
    pub const HEADER_TEXT: usize = 150;
    /// `section` text.
    pub const SECTION_TEXT: usize = 3000;
    /// One `section` field.
    pub const FIELD_TEXT: usize = 2000;
    /// Fields per `section`.
    pub const FIELDS: usize = 10;
    /// Elements per `context` block.
    pub const CONTEXT_ELEMENTS: usize = 10;
    /// Blocks per message.
    pub const BLOCKS: usize = 50;
}

/// `s` cut to at most `max` characters, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
}

/// Escapes the three characters Slack's mrkdwn gives meaning to (`&`, `<`, `>`).
pub fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `s` escaped for mrkdwn and cut to `max` characters *after* escaping
/// (escaping lengthens the text; the limit is on what Slack receives),
/// never inside an entity.
fn mrkdwn(s: &str, max: usize) -> String {
    let escaped = escape_mrkdwn(s);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut out = String::new();
    let mut n = 0;
    for c in s.chars() {
        let piece = escape_mrkdwn(c.encode_utf8(&mut [0; 4]));
        let len = piece.chars().count();
        if n + len > max.saturating_sub(1) {
            break;
        }
        out.push_str(&piece);
        n += len;
    }
    out.push('\u{2026}');
    out
}

/// The Slack incoming-webhook message for `event`: a `header`, a
/// `section` with the summary, a `section` of fields, a `context` line,
/// and `text` as the notification fallback. `suppressed` is how many
/// earlier messages the rate limit dropped (said in the context line).
pub fn slack_message(event: &Event, suppressed: u32) -> Value {
    use slack_limits::*;
    let header = truncate(&format!("{} {}", event.kind.icon(), event.title), HEADER_TEXT);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": header, "emoji": true}
    })];
    let mention = event
        .mention
        .as_deref()
        .filter(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|m| format!("<@{m}> "))
        .unwrap_or_default();
    if !event.summary.is_empty() || !mention.is_empty() {
        let room = SECTION_TEXT - mention.len();
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("{mention}{}", mrkdwn(&event.summary, room))}
        }));
    }
    for chunk in event.fields.chunks(FIELDS).take(BLOCKS - 3) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|(k, v)| {
                let label = format!("*{}*\n", escape_mrkdwn(&truncate(k, 100)));
                json!({"type": "mrkdwn", "text": format!("{label}{}", mrkdwn(v, FIELD_TEXT - label.chars().count()))})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let mut context = vec![format!(
        "greenroom \u{b7} `{}` \u{b7} environment *{}*{}",
        event.kind.as_str(),
        escape_mrkdwn(&event.environment),
        event.cycle.map(|c| format!(" \u{b7} cycle {c}")).unwrap_or_default()
    )];
    context.push(time::format(event.at));
    if suppressed > 0 {
        context.push(format!(
            "{suppressed} earlier notification(s) to this channel were dropped by the rate limit"
        ));
    }
    let elements: Vec<Value> = context
        .into_iter()
        .take(CONTEXT_ELEMENTS)
        .map(|t| json!({"type": "mrkdwn", "text": truncate(&t, SECTION_TEXT)}))
        .collect();
    blocks.push(json!({"type": "context", "elements": elements}));
    let text = truncate(
        &format!("{} {}: {}", event.kind.icon(), event.title, event.summary),
        SECTION_TEXT,
    );
    json!({"text": escape_mrkdwn(&text), "blocks": blocks})
}

/// The generic webhook's JSON body.
pub fn webhook_body(event: &Event, delivery: &str, suppressed: u32) -> Value {
    let fields: serde_json::Map<String, Value> = event
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "event": event.kind.as_str(),
        "environment": event.environment,
        "cycle": event.cycle,
        "title": event.title,
        "summary": event.summary,
        "tier": event.tier.map(|t| t.as_str()),
        "fields": fields,
        "at": time::format(event.at),
        "delivery": delivery,
        "suppressed": suppressed,
    })
}

// ---------------------------------------------------------------------------
// Decisions.

/// One message per event: remembers event keys for `ttl`, at most `cap` of them.
#[derive(Debug, Clone)]
pub struct Dedup {
    ttl: Millis,
    cap: usize,
    seen: BTreeMap<String, Millis>,
    order: VecDeque<(Millis, String)>,
}

impl Dedup {
    /// Forgets keys after `ttl`; keeps at most `cap` (the oldest go first).
    pub fn new(ttl: Millis, cap: usize) -> Dedup {
        Dedup {
            ttl,
            cap: cap.max(1),
            seen: BTreeMap::new(),
            order: VecDeque::new(),
        }
    }

    /// True the first time `key` is offered (within `ttl`), false after.
    pub fn first(&mut self, key: &str, now: Millis) -> bool {
        while let Some((t, k)) = self.order.front() {
            if now - *t < self.ttl && self.order.len() < self.cap {
                break;
            }
            if self.seen.get(k) == Some(t) {
                self.seen.remove(k);
            }
            self.order.pop_front();
        }
        if self.seen.contains_key(key) {
            return false;
        }
        self.seen.insert(key.to_string(), now);
        self.order.push_back((now, key.to_string()));
        true
    }
}

/// What the rate limiter says about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Send it; `suppressed` messages were dropped since the last one sent.
    Send {
        /// Dropped since the last message sent to this target.
        suppressed: u32,
    },
    /// Drop it (counted, and said in the next message).
    Drop,
}

/// At most `limit` messages per `window` per target (a sliding window).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    window: Millis,
    sent: BTreeMap<String, VecDeque<Millis>>,
    dropped: BTreeMap<String, u32>,
}

impl RateLimiter {
    /// A limiter over windows of `window` milliseconds.
    pub fn new(window: Millis) -> RateLimiter {
        RateLimiter {
            window: window.max(1),
            sent: BTreeMap::new(),
            dropped: BTreeMap::new(),
        }
    }

    /// Whether `target` (allowed `limit` per window) may get a message at `now`.
    pub fn admit(&mut self, target: &str, limit: u32, now: Millis) -> Admit {
        let sent = self.sent.entry(target.to_string()).or_default();
        while sent.front().is_some_and(|t| now - *t >= self.window) {
            sent.pop_front();
        }
        if sent.len() >= limit as usize {
            *self.dropped.entry(target.to_string()).or_default() += 1;
            return Admit::Drop;
        }
        sent.push_back(now);
        Admit::Send {
            suppressed: self.dropped.remove(target).unwrap_or(0),
        }
    }
}

/// Attempts per message at most (the first and the retries).
pub const MAX_ATTEMPTS: u32 = 5;

/// Whether an answer is worth another attempt: no answer (connection
/// error, timeout: `None`), 429, or a 5xx.
pub fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 429 || (500..600).contains(&s),
    }
}

/// The wait before attempt `attempt` (1-based; the first has none):
/// `base`, doubled each time, at most 60 s; `None` once [`MAX_ATTEMPTS`]
/// are used up.
pub fn retry_delay(base: Millis, attempt: u32) -> Option<Millis> {
    match attempt {
        0 | 1 => Some(0),
        a if a > MAX_ATTEMPTS => None,
        a => Some(base.max(1).saturating_mul(1 << (a - 2).min(20)).min(60_000)),
    }
}

// ---------------------------------------------------------------------------
// Test-run errors (issue #6 point 7).

/// Lines of a test run's output that report an HTTP server error: a
/// status 500-599 as a word of its own on a line that speaks of HTTP, a
/// status, a response or an error (`HTTP/1.1 502 Bad Gateway`,
/// `curl: (22) The requested URL returned error: 500`, `status=503`).
/// A heuristic, said as such: returns the count and the first `keep` lines.
pub fn server_error_lines(text: &str, keep: usize) -> (usize, Vec<String>) {
    const CONTEXT: &[&str] = &["http", "status", "response", "error", "returned", "code"];
    let mut count = 0;
    let mut first = Vec::new();
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        if !CONTEXT.iter().any(|w| lower.contains(w)) {
            continue;
        }
        let has_5xx = lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w.len() == 3 && w.starts_with('5') && w.chars().all(|c| c.is_ascii_digit()));
        if has_5xx {
            count += 1;
            if first.len() < keep {
                first.push(truncate(line.trim(), 300));
            }
        }
    }
    (count, first)
}

/// One suite of a cycle, as the test-errors alert sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteRun {
    /// Name.
    pub name: String,
    /// Its tier.
    pub tier: Tier,
    /// `passed`, `failed`, `flaky`, `skipped`.
    pub result: String,
    /// Its output (the end of it).
    pub output: String,
}

/// The test-errors alert for a cycle, if it deserves one: suites whose
/// output reports server errors (whatever their result), and failed
/// `gate` and `non-blocking` suites (a blocking failure fails the cycle
/// and is told as such; quarantined suites never alert).
pub fn test_errors(mut event: Event, suites: &[SuiteRun]) -> Option<Event> {
    let mut lines = Vec::new();
    let mut worst: Option<Tier> = None;
    for s in suites
        .iter()
        .filter(|s| s.result != "skipped" && s.tier != Tier::Quarantine)
    {
        let (n, first) = server_error_lines(&s.output, 3);
        let failed = s.result == "failed" && matches!(s.tier, Tier::Gate | Tier::NonBlocking);
        if n == 0 && !failed {
            continue;
        }
        let mut what = format!("{} ({}, {})", s.name, s.tier.as_str(), s.result);
        if n > 0 {
            what.push_str(&format!(": {n} server error line(s)"));
        }
        lines.push(what);
        for l in first {
            lines.push(format!("    {l}"));
        }
        event.fields.push((format!("suite {}", s.name), s.result.clone()));
        worst = Some(match worst {
            Some(w) if rank(w) <= rank(s.tier) => w,
            _ => s.tier,
        });
    }
    if lines.is_empty() {
        return None;
    }
    event.tier = worst;
    event.summary = lines.join("\n");
    Some(event)
}

fn rank(t: Tier) -> u8 {
    match t {
        Tier::Blocking => 0,
        Tier::Gate => 1,
        Tier::NonBlocking => 2,
        Tier::Quarantine => 3,
    }
}

#[cfg(test)]
mod tests;
