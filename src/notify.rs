//! Notifications (issue #6 points 6-7): Slack incoming webhooks and signed
//! JSON webhooks (`[[notify]]`), fed by `greenroom serve`.
//!
//! The scheduler, the culprit search and the lease watch hand events to
//! [`emit`], which never blocks: a bounded queue, and a full queue drops
//! the event with a warning. One background task ([`start`]) takes them
//! in order, drops repeats (`core::notify::Dedup`: one message per event
//! key), picks the targets that want each one (`core::notify::wants`),
//! applies each target's rate limit (`RateLimiter`: the excess is dropped
//! with a log line and counted in the next message) and delivers each
//! message in a task of its own, retrying connection errors, 429 and 5xx
//! with exponential backoff a bounded number of times.
//!
//! Secrets: target URLs and keys are read once, at start, and live only in
//! [`Target`] (whose `Debug` shows the name). Logs name a target by its
//! name; reqwest errors are logged without their URL; every text of an
//! event is passed through a redactor holding the URLs, their path
//! segments and the keys before it is rendered.
//!
//! Only `serve` starts a notifier (registered under its state directory);
//! elsewhere [`emit`] does nothing.

use crate::app::App;
use crate::engine::CycleReport;
use anyhow::Context;
use greenroom_core::config::{Notify, NotifyKind, NotifyUrl, Tier};
use greenroom_core::notify::{self as pure, Admit, Dedup, Event, EventKind, RateLimiter};
use greenroom_core::time::{self, Millis};
use greenroom_driver::Redactor;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Events waiting to be sent at most; more are dropped with a warning.
pub const QUEUE: usize = 256;
/// Each attempt's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry's wait (doubled each time, `core::notify::retry_delay`).
const RETRY_BASE: Millis = 1000;
/// How long an event key is remembered (one message per event).
const DEDUP_TTL: Millis = 7 * 86_400_000;
/// How often leases are looked at for expiry warnings.
const LEASE_CHECK: Duration = Duration::from_secs(5);

/// The notifiers of the servers in this process, by state directory.
static QUEUES: Mutex<BTreeMap<PathBuf, mpsc::Sender<Event>>> = Mutex::new(BTreeMap::new());

fn queues() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, mpsc::Sender<Event>>> {
    QUEUES.lock().unwrap_or_else(|e| e.into_inner())
}

/// One target with its secrets read.
struct Target {
    cfg: Notify,
    url: String,
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.cfg.name)
            .finish_non_exhaustive()
    }
}

/// What stops the notifier of a server when dropped.
pub struct Running {
    root: PathBuf,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        queues().remove(&self.root);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Reads the targets' secrets and starts the delivery task and the lease
/// watch; `None` without `[[notify]]`. A secret that cannot be read is an
/// error naming the target and the key, never the value.
pub fn start(app: &Arc<App>) -> anyhow::Result<Option<Running>> {
    if app.config.notify.is_empty() {
        return Ok(None);
    }
    let mut targets = Vec::new();
    for n in &app.config.notify {
        let url = match &n.url {
            NotifyUrl::Secret(r) => crate::resolve::read_secret(r)
                .map_err(|e| crate::error::input(format!("notify[{}].url: {e}", n.name)))?,
            NotifyUrl::Literal(u) => u.expose().to_string(),
        };
        let url = url.trim().to_string();
        if reqwest::Url::parse(&url)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            return Err(crate::error::input(format!(
                "notify[{}].url: {} does not hold an http(s) URL",
                n.name, n.url
            )));
        }
        let key = match &n.secret {
            Some(r) => Some(
                crate::resolve::read_secret(r)
                    .map_err(|e| crate::error::input(format!("notify[{}].secret: {e}", n.name)))?
                    .into_bytes(),
            ),
            None => None,
        };
        targets.push(Target {
            cfg: n.clone(),
            url,
            key,
        });
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("greenroom/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build the notifications' HTTP client")?;
    let redactor = redactor_for(&targets);
    let (tx, rx) = mpsc::channel(QUEUE);
    queues().insert(app.paths.root.clone(), tx);
    let dispatch = tokio::spawn(dispatch(app.clone(), rx, Arc::new(targets), client, redactor));
    let watch = tokio::spawn(lease_watch(app.clone()));
    Ok(Some(Running {
        root: app.paths.root.clone(),
        tasks: vec![dispatch, watch],
    }))
}

/// Every secret a message must not carry: the URLs, their path segments
/// and query values (a token hides in either), the keys.
fn redactor_for(targets: &[Target]) -> Redactor {
    let mut secrets = Vec::new();
    for t in targets {
        secrets.push(t.url.clone());
        if let Ok(u) = reqwest::Url::parse(&t.url) {
            secrets.extend(
                u.path_segments()
                    .into_iter()
                    .flatten()
                    .filter(|s| s.len() >= 8)
                    .map(String::from),
            );
            secrets.extend(u.query_pairs().map(|(_, v)| v.into_owned()).filter(|v| v.len() >= 8));
            if let Some(p) = u.password() {
                secrets.push(p.to_string());
            }
        }
        if let Some(k) = &t.key {
            secrets.push(String::from_utf8_lossy(k).into_owned());
        }
    }
    Redactor::new(&secrets)
}

/// Hands an event to the server's notifier without waiting; a full queue
/// drops it with a warning. Does nothing where no notifier runs.
pub fn emit(app: &App, event: Event) {
    let Some(tx) = queues().get(&app.paths.root).cloned() else {
        return;
    };
    match tx.try_send(event) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(e)) => tracing::warn!(
            event = e.kind.as_str(),
            environment = %e.environment,
            "notification queue full ({QUEUE}): dropped"
        ),
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

async fn dispatch(
    app: Arc<App>,
    mut rx: mpsc::Receiver<Event>,
    targets: Arc<Vec<Target>>,
    client: reqwest::Client,
    redactor: Redactor,
) {
    let mut dedup = Dedup::new(DEDUP_TTL, 10_000);
    let mut limiter = RateLimiter::new(60_000);
    let counter = Arc::new(AtomicU64::new(0));
    while let Some(event) = rx.recv().await {
        let now = app.now();
        if !dedup.first(&event.key, now) {
            tracing::debug!(key = %event.key, "notification already sent: not repeated");
            continue;
        }
        let event = redact(event, &redactor);
        for (i, t) in targets.iter().enumerate() {
            if !pure::wants(&t.cfg, &event, now) {
                continue;
            }
            match limiter.admit(&t.cfg.name, t.cfg.rate_limit, now) {
                Admit::Drop => tracing::warn!(
                    target_name = %t.cfg.name,
                    event = event.kind.as_str(),
                    environment = %event.environment,
                    "rate limit ({} per minute): notification dropped; the next one says how many were",
                    t.cfg.rate_limit
                ),
                Admit::Send { suppressed } => {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(deliver(
                        targets.clone(),
                        i,
                        client.clone(),
                        event.clone(),
                        suppressed,
                        delivery_id(&event.key, &t.cfg.name, now, n),
                    ));
                }
            }
        }
    }
}

fn redact(mut e: Event, r: &Redactor) -> Event {
    let clean = |s: &str| r.redact(s).into_owned();
    e.title = clean(&e.title);
    e.summary = clean(&e.summary);
    for (k, v) in &mut e.fields {
        *k = clean(k);
        *v = clean(v);
    }
    e
}

/// A unique delivery id (32 hex digits), the same for every attempt.
fn delivery_id(key: &str, target: &str, now: Millis, n: u64) -> String {
    let mut h = Sha256::new();
    for part in [key.as_bytes(), target.as_bytes(), &now.to_be_bytes(), &n.to_be_bytes()] {
        h.update(part);
        h.update([0]);
    }
    h.update(std::process::id().to_be_bytes());
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// `sha256=<hex HMAC-SHA256 of body>`, as `X-Greenroom-Signature`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

async fn deliver(
    targets: Arc<Vec<Target>>,
    i: usize,
    client: reqwest::Client,
    event: Event,
    suppressed: u32,
    delivery: String,
) {
    let Some(t) = targets.get(i) else { return };
    let name = &t.cfg.name;
    let kind = event.kind.as_str();
    let body = match t.cfg.kind {
        NotifyKind::Slack => pure::slack_message(&event, suppressed),
        NotifyKind::Webhook => pure::webhook_body(&event, &delivery, suppressed),
    }
    .to_string();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(wait) = pure::retry_delay(RETRY_BASE, attempt) else {
            tracing::warn!(target_name = %name, event = kind, %delivery, "notification given up after {} attempts", attempt - 1);
            return;
        };
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
        }
        let mut req = client
            .post(&t.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        if t.cfg.kind == NotifyKind::Webhook {
            req = req
                .header("X-Greenroom-Event", kind)
                .header("X-Greenroom-Delivery", &delivery);
            if let Some(k) = &t.key {
                req = req.header("X-Greenroom-Signature", signature(k, body.as_bytes()));
            }
        }
        let status = match req.send().await {
            Ok(r) if r.status().is_success() => {
                tracing::info!(target_name = %name, event = kind, %delivery, attempt, "notification sent");
                return;
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let text: String = r.text().await.unwrap_or_default().chars().take(200).collect();
                tracing::warn!(target_name = %name, event = kind, %delivery, attempt, status, "notification refused: {text}");
                Some(status)
            }
            Err(e) => {
                tracing::warn!(target_name = %name, event = kind, %delivery, attempt, "notification not delivered: {}", e.without_url());
                None
            }
        };
        if !pure::retryable(status) {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// Events.

/// The `[[environment]]` an instance belongs to (a pool's name for a slot).
fn group_of(app: &App, instance: &str) -> String {
    app.config
        .environments
        .iter()
        .find(|e| e.name == instance || e.instances().iter().any(|i| i.name == instance))
        .map(|e| e.name.clone())
        .unwrap_or_else(|| instance.to_string())
}

/// What a cycle changed: the components it deployed, with commit and PR.
fn changed(r: &CycleReport) -> String {
    let list: Vec<String> = r
        .components
        .iter()
        .filter(|c| c.action == "deploy")
        .map(|c| {
            let mut s = c.name.clone();
            if let Some(commit) = &c.commit {
                s.push_str(&format!(" {}", commit.chars().take(10).collect::<String>()));
            }
            if let Some(pr) = c.pr {
                s.push_str(&format!(" (PR {pr})"));
            }
            s
        })
        .collect();
    if list.is_empty() {
        "nothing (every component kept running)".into()
    } else {
        list.join(", ")
    }
}

/// A scheduled cycle ended: `cycle-finished` when it succeeded,
/// `cycle-failed` when it failed for the code (an infrastructure failure is
/// `infra-error`, told by [`infra_error`] with its retry), and
/// `test-errors` when its tests produced server errors or a non-blocking
/// suite failed, whatever the result.
pub fn cycle_ended(app: &App, kind: &str, r: &CycleReport) {
    let env = &r.environment;
    let group = group_of(app, env);
    let now = app.now();
    let id = r
        .cycle
        .map(|c| format!("cycle {c}"))
        .unwrap_or_else(|| "a cycle".into());
    let duration = time::format_span(i64::try_from(r.timings.total_ms).unwrap_or(i64::MAX));
    let suites = {
        let ran: Vec<_> = r.suites.iter().filter(|s| s.result != "skipped").collect();
        let failed = ran.iter().filter(|s| s.result == "failed").count();
        format!("{} ran, {failed} failed", ran.len())
    };
    let manifest = r.manifest.as_deref().map(|m| m.chars().take(12).collect::<String>());
    let code = r.failure_class() == Some(greenroom_core::failure::Class::Code);
    if r.result == "succeeded" || (r.result == "failed" && code) {
        let ok = r.result == "succeeded";
        let mut e = Event::new(
            if ok {
                EventKind::CycleFinished
            } else {
                EventKind::CycleFailed
            },
            env,
            &group,
            r.cycle,
            format!("{env}: {kind} {id} {}", if ok { "succeeded" } else { "failed" }),
            now,
        );
        e.summary = if ok {
            format!(
                "{env} runs manifest {} after a {kind} cycle of {duration}.",
                manifest.as_deref().unwrap_or("?")
            )
        } else {
            // The error says what failed and ends with the log's last lines.
            let why = r.failure.as_ref().map(|f| f.why.clone()).unwrap_or_default();
            pure::truncate(r.error.as_deref().unwrap_or(&why), 1500)
        };
        if r.failure.as_ref().is_some_and(|f| f.stage == "verify") {
            e.tier = Some(Tier::Blocking);
        }
        if let Some(f) = &r.failure {
            let at = match &f.subject {
                Some(x) => format!("{} of {x} ({})", f.stage, f.class.as_str()),
                None => format!("{} ({})", f.stage, f.class.as_str()),
            };
            e.fields.push(("failed at".into(), at));
        }
        e.fields.extend([
            ("duration".into(), duration.clone()),
            ("changed".into(), changed(r)),
            ("suites".into(), suites.clone()),
        ]);
        if let Some(m) = &manifest {
            e.fields.push(("manifest".into(), m.clone()));
        }
        emit(app, e);
    }
    if r.result == "succeeded" || r.result == "failed" {
        let runs: Vec<pure::SuiteRun> = r
            .suites
            .iter()
            .filter_map(|s| {
                Some(pure::SuiteRun {
                    name: s.name.clone(),
                    tier: tier_of(&s.tier)?,
                    result: s.result.clone(),
                    output: s.log.as_deref().map(log_tail).unwrap_or_else(|| s.reason.clone()),
                })
            })
            .collect();
        let base = Event::new(
            EventKind::TestErrors,
            env,
            &group,
            r.cycle,
            format!("{env}: errors in the tests of {id}"),
            now,
        );
        // Point 7: new error lines in the components' logs (the error
        // watch) are told too, even when every suite passed.
        let mut fresh: Vec<String> = Vec::new();
        let mut fresh_count = 0u64;
        for w in r.errors.iter().filter(|w| !w.new.is_empty()) {
            let n: u64 = w.new.iter().map(|g| g.count).sum();
            fresh_count += n;
            fresh.push(format!("{}: {n} new error line(s)", w.component));
            for g in w.new.iter().take(3) {
                fresh.push(format!("    {}x {}", g.count, g.first_line));
            }
        }
        let event = match pure::test_errors(base.clone(), &runs) {
            Some(e) => Some(e),
            None if !fresh.is_empty() => Some(Event {
                tier: Some(Tier::NonBlocking),
                ..base
            }),
            None => None,
        };
        if let Some(mut e) = event {
            if !fresh.is_empty() {
                if !e.summary.is_empty() {
                    e.summary.push('\n');
                }
                e.summary.push_str("New error lines in the components' logs:\n");
                e.summary.push_str(&fresh.join("\n"));
                e.fields.push(("new errors".into(), fresh_count.to_string()));
            }
            emit(app, e);
        }
    }
}

fn tier_of(s: &str) -> Option<Tier> {
    Some(match s {
        "blocking" => Tier::Blocking,
        "gate" => Tier::Gate,
        "non-blocking" => Tier::NonBlocking,
        "quarantine" => Tier::Quarantine,
        _ => return None,
    })
}

/// The last 64 KiB of a suite's log.
fn log_tail(path: &str) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
    let mut buf = Vec::new();
    let _ = f.take(TAIL).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A cycle failed for infrastructure: nobody is blamed; `decision` says
/// whether and when it is retried.
pub fn infra_error(app: &App, env: &str, cycle: Option<i64>, why: &str, decision: &str) {
    let id = cycle.map(|c| format!(" in cycle {c}")).unwrap_or_default();
    let mut e = Event::new(
        EventKind::InfraError,
        env,
        &group_of(app, env),
        cycle,
        format!("{env}: infrastructure error{id}"),
        app.now(),
    );
    if cycle.is_none() {
        e.key.push_str(why);
    }
    e.summary = decision.to_string();
    e.fields = vec![("why".into(), why.to_string())];
    emit(app, e);
}

/// An environment was rolled back: by whom, to what, why; its continuous
/// deployment is locked until resumed.
pub fn rolled_back(app: &App, env: &str, r: &CycleReport, replaced: Option<&str>, reason: &str) {
    let to = r
        .manifest
        .as_deref()
        .map(greenroom_core::manifest::short_id)
        .unwrap_or("-");
    let mut e = Event::new(
        EventKind::Rollback,
        env,
        &group_of(app, env),
        r.cycle,
        format!("{env}: rolled back to {to} by {}", app.holder),
        app.now(),
    );
    e.summary = format!(
        "{}; continuous deployment of {env} is locked until someone resumes it",
        if r.ok() {
            "the rollback succeeded".to_string()
        } else {
            format!("the rollback {}: {}", r.result, r.error.as_deref().unwrap_or(""))
        }
    );
    e.fields = vec![
        (
            "from".into(),
            replaced
                .map(greenroom_core::manifest::short_id)
                .unwrap_or("-")
                .to_string(),
        ),
        ("to".into(), to.to_string()),
        ("why".into(), reason.to_string()),
    ];
    emit(app, e);
}

/// A culprit search excluded PRs: who, which, why.
pub fn culprits(app: &App, env: &str, cycle: i64, blamed: &[(Vec<String>, String)], staged: &crate::pending::Staged) {
    let mut lines = Vec::new();
    let mut who = Vec::new();
    let mut prs = Vec::new();
    for (members, reason) in blamed {
        for m in members {
            let entry = staged.set.included.iter().find(|e| e.pr.to_string() == *m);
            let author = entry.map(|e| e.author.clone()).unwrap_or_else(|| "?".into());
            let title = entry
                .map(|e| format!(" \u{201c}{}\u{201d}", e.title))
                .unwrap_or_default();
            lines.push(format!("{m}{title} by {author}: {reason}"));
            if !who.contains(&author) {
                who.push(author);
            }
            prs.push(m.clone());
        }
    }
    let mut e = Event::new(
        EventKind::CulpritFound,
        env,
        &group_of(app, env),
        Some(cycle),
        format!("{env}: culprit found for cycle {cycle}: {}", prs.join(", ")),
        app.now(),
    );
    e.summary = format!(
        "{}\nExcluded from staging; the other changes are deployed again.",
        lines.join("\n")
    );
    e.fields = vec![("culprit".into(), prs.join(", ")), ("author".into(), who.join(", "))];
    emit(app, e);
}

/// Warns lease holders shortly before their lease ends (each target's
/// `lease_warning`); the leases of the server's own cycles are not warned about.
async fn lease_watch(app: Arc<App>) {
    let horizon = app
        .config
        .notify
        .iter()
        .filter(|n| n.events.contains(&EventKind::LeaseExpiring))
        .map(|n| i64::try_from(n.lease_warning.as_millis()).unwrap_or(i64::MAX))
        .max();
    let Some(horizon) = horizon else { return };
    let mut every = tokio::time::interval(LEASE_CHECK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let leases = match app.store.leases().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("lease watch: cannot read leases: {e}");
                continue;
            }
        };
        let now = app.now();
        for l in leases {
            // The server's own cycles hold leases bound to this process.
            let ours = l
                .process
                .as_ref()
                .is_some_and(|p| p.pid == app.process.pid && p.host == app.process.host);
            if ours || l.expires <= now || l.expires - now > horizon {
                continue;
            }
            let mut e = Event::new(
                EventKind::LeaseExpiring,
                &l.environment,
                &group_of(&app, &l.environment),
                None,
                format!(
                    "{}: the lease of {} ends {}",
                    l.environment,
                    l.holder,
                    time::relative(l.expires, now)
                ),
                now,
            );
            e.key = format!("lease-expiring:{}:{}:{}", l.environment, l.token, l.expires);
            e.expires = Some(l.expires);
            e.mention = app
                .config
                .users
                .iter()
                .find(|u| u.name == l.holder)
                .and_then(|u| u.chat.clone());
            e.summary = format!(
                "{} holds {} ({}) until {}. Extend it with `greenroom lease extend --env {} --for DURATION`, or release it when done.",
                l.holder,
                l.environment,
                l.reason,
                time::format(l.expires),
                l.environment
            );
            e.fields = vec![
                ("holder".into(), l.holder.clone()),
                ("expires".into(), time::format(l.expires)),
            ];
            emit(&app, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_github_style_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn delivery_ids_are_unique_and_hex() {
        let a = delivery_id("k", "t", 1, 0);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, delivery_id("k", "t", 1, 1));
    }

    #[test]
    fn redactor_hides_url_tokens_and_keys() {
        let t = Target {
            cfg: greenroom_core::config::Notify {
                name: "team".into(),
                kind: NotifyKind::Webhook,
                url: NotifyUrl::Secret(greenroom_core::secret::SecretRef::Env("X".into())),
                secret: None,
                environments: vec![],
                events: vec![],
                tiers: vec![],
                lease_warning: Duration::from_secs(1),
                rate_limit: 1,
            },
            url: "https://hooks.example.com/services/T0/B0/abcdefgh12345678?sig=zzzzzzzzzz".into(),
            key: Some(b"hmac-key-value".to_vec()),
        };
        assert!(!format!("{t:?}").contains("abcdefgh"));
        let r = redactor_for(&[t]);
        let e = Event::new(
            EventKind::TestErrors,
            "s",
            "s",
            None,
            "posted to abcdefgh12345678".into(),
            0,
        );
        let mut e = redact(e, &r);
        e.summary = r.redact("key hmac-key-value sig zzzzzzzzzz").into_owned();
        assert!(!e.title.contains("abcdefgh12345678"), "{}", e.title);
        assert!(!e.summary.contains("hmac-key-value") && !e.summary.contains("zzzzzzzzzz"));
    }
}
