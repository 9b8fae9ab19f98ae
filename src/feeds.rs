//! Package feeds at the edge (issue #5 point 5; seed 003: "deploy staging
//! automatically when a new package is published — push trigger, or hourly
//! poll"). `serve` polls every `[[component]] feed` at its `poll` interval
//! (reqwest, no proxy, bounded timeouts, bounded answers); what the answer
//! means is `core::feed`'s. A version newer than every version known and
//! than what runs becomes the component's newest known version and a
//! trigger for every scheduled environment that deploys it (the policy
//! defers it while an environment is paused). A version that appears
//! behind the newest is never deployed: a decision says why. `POST
//! /webhooks/package` pushes a version through [`pushed`], under the same
//! rule.
//!
//! What is known per component (the newest version, the versions seen, the
//! last error) is kept in the store's policy-state table under
//! `feed:<component>` (no environment can have that name), so it survives
//! restarts and is shared by PostgreSQL replicas. A scheduled cycle deploys
//! `COMPONENT=version:NEWEST` ([`overrides`]), or pins what runs when that is
//! newer: versions never go backwards by accident (a person may still deploy
//! any `version:` by hand, and roll back).

use crate::app::App;
use greenroom_core::config::{Component, Environment, Follows};
use greenroom_core::feed::{self, Listing, Scheme, Version};
use greenroom_core::policy::Event;
use greenroom_core::time::Millis;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The largest feed answer read.
pub const MAX_ANSWER: usize = 16 << 20;
/// How long one feed request may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Versions remembered as seen per feed (the newest by order are kept).
const MAX_SEEN: usize = 5000;

/// What is known of a component's feed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeedState {
    /// The newest version known (polled or pushed).
    #[serde(default)]
    pub newest: Option<String>,
    /// Where it came from (`poll URL`, `webhook delivery ID`).
    #[serde(default)]
    pub source: String,
    /// When it became known.
    #[serde(default)]
    pub at: Millis,
    /// Every version the last polls listed.
    #[serde(default)]
    pub seen: Vec<String>,
    /// The last poll's error, if it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Entries of the last answer that were no versions, with why (at most 20).
    #[serde(default)]
    pub ignored: Vec<(String, String)>,
    /// When it was last polled.
    #[serde(default)]
    pub polled_at: Option<Millis>,
}

fn key(component: &str) -> String {
    format!("feed:{component}")
}

/// What is known of `component`'s feed.
pub async fn state(app: &App, component: &str) -> anyhow::Result<FeedState> {
    Ok(match app.store.policy_state(&key(component)).await? {
        Some(json) => serde_json::from_str(&json).unwrap_or_default(),
        None => FeedState::default(),
    })
}

async fn save(app: &App, component: &str, st: &FeedState) -> anyhow::Result<()> {
    let json = serde_json::to_string(st)?;
    app.store.save_policy_state(&key(component), &json, app.now()).await?;
    Ok(())
}

/// The scheduled environments that deploy `component` (what a new version triggers).
pub fn followers(app: &App, component: &str) -> Vec<Environment> {
    app.config
        .environments
        .iter()
        .filter(|e| e.slots.is_none() && e.follows != Follows::Manual)
        .filter(|e| e.components.iter().any(|c| c == component))
        .cloned()
        .collect()
}

/// The feed version of `component` running on `instance`, if a feed's
/// version runs there (`origin = "feed:V"`).
pub async fn running(app: &App, instance: &str, component: &str, scheme: Scheme) -> Option<Version> {
    let rows = app.store.deployed(instance).await.ok()?;
    let d = rows.iter().find(|d| d.component == component && d.state != "stopped")?;
    let v = d.entry.origin.strip_prefix("feed:")?;
    Version::parse(scheme, v).ok()
}

/// The newest of what runs of `component` across its followers.
async fn running_anywhere(app: &App, c: &Component, scheme: Scheme) -> Option<Version> {
    let mut best: Option<Version> = None;
    for e in followers(app, &c.name) {
        if let Some(v) = running(app, &e.name, &c.name, scheme).await
            && best.as_ref().is_none_or(|b| v > *b)
        {
            best = Some(v);
        }
    }
    best
}

/// Asks a feed (GET, no proxy, bounded time and size).
pub async fn fetch(c: &Component) -> anyhow::Result<Listing> {
    let Some(f) = &c.feed else {
        anyhow::bail!("component {} has no feed", c.name);
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("greenroom/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let accept = match f.kind {
        feed::FeedKind::GithubReleases => "application/vnd.github+json",
        feed::FeedKind::DebianPackages => "text/plain, */*",
        _ => "application/json",
    };
    // Errors never carry the URL: it may hold a token.
    let mut resp = client
        .get(&f.url)
        .header("Accept", accept)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot ask the {} feed: {}", f.kind, e.without_url()))?;
    let status = resp.status();
    if !status.is_success() {
        anyhow::bail!("the {} feed answered HTTP {status}", f.kind);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the {} feed: {}", f.kind, e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            anyhow::bail!("the {} feed's answer is larger than {MAX_ANSWER} bytes", f.kind);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(feed::parse(f.kind, &body, &f.package)?)
}

async fn decide(app: &App, envs: &[Environment], kind: &str, reason: &str) {
    tracing::info!("{kind}: {reason}");
    for e in envs {
        if let Err(err) = app
            .store
            .record_decision(&e.name, app.now(), kind, reason, &[], None)
            .await
        {
            tracing::error!("cannot record a decision: {err}");
        }
    }
}

/// A trigger id of the feeds' own: above webhook row ids, below the
/// scheduler's retries (`u64::MAX / 4`) and the culprit search's.
fn trigger_id(now: Millis, n: u64) -> u64 {
    u64::MAX / 8 + u64::try_from(now).unwrap_or(0).saturating_mul(16) + n % 16
}

/// Polls `c`'s feed once; the environments to trigger and why.
pub async fn poll_once(app: &App, c: &Component) -> anyhow::Result<Option<(Vec<String>, String)>> {
    let Some(f) = &c.feed else { return Ok(None) };
    let scheme = f.kind.scheme();
    let mut st = state(app, &c.name).await?;
    let envs = followers(app, &c.name);
    st.polled_at = Some(app.now());
    let listing = match fetch(c).await {
        Ok(l) => l,
        Err(e) => {
            let why = format!("{e:#}");
            if st.error.as_deref() != Some(why.as_str()) {
                decide(
                    app,
                    &envs,
                    "feed",
                    &format!("cannot poll the feed of {}: {why}", c.name),
                )
                .await;
            }
            st.error = Some(why);
            save(app, &c.name, &st).await?;
            return Ok(None);
        }
    };
    // A first poll's history is a baseline, not news.
    let first = st.seen.is_empty();
    if st.error.take().is_some() {
        decide(app, &envs, "feed", &format!("the feed of {} answers again", c.name)).await;
    }
    let known = st.newest.as_deref().and_then(|v| Version::parse(scheme, v).ok());
    let runs = running_anywhere(app, c, scheme).await;
    let news = feed::news(&listing, &st.seen, known.as_ref(), runs.as_ref(), f.prereleases);
    if !first {
        for (v, why) in &news.behind {
            decide(
                app,
                &envs,
                "feed",
                &format!("{} {v} appeared in its {} feed: not deployed: {why}", c.name, f.kind),
            )
            .await;
        }
    }
    let mut seen: Vec<Version> = listing.versions.iter().map(|p| p.version.clone()).collect();
    seen.sort();
    seen.dedup();
    st.seen = seen.iter().rev().take(MAX_SEEN).map(|v| v.to_string()).collect();
    st.ignored = listing
        .ignored
        .iter()
        .take(20)
        .map(|i| (i.entry.clone(), i.reason.clone()))
        .collect();
    let out = match &news.deploy {
        Some(p) => {
            st.newest = Some(p.version.to_string());
            st.source = format!("{} feed", f.kind);
            st.at = app.now();
            let why = format!("{} {} published (its {} feed)", c.name, p.version, f.kind);
            Some((envs.iter().map(|e| e.name.clone()).collect::<Vec<_>>(), why))
        }
        None => None,
    };
    save(app, &c.name, &st).await?;
    Ok(out.filter(|(e, _)| !e.is_empty()))
}

/// Polls every feed at its interval, sending triggers to the scheduler,
/// until the channel closes.
pub async fn run(app: Arc<App>, tx: mpsc::UnboundedSender<crate::server::scheduler::Work>) {
    let components: Vec<Component> = app
        .config
        .components
        .iter()
        .filter(|c| c.feed.is_some())
        .cloned()
        .collect();
    if components.is_empty() {
        return;
    }
    let mut due: BTreeMap<String, tokio::time::Instant> = components
        .iter()
        .map(|c| (c.name.clone(), tokio::time::Instant::now()))
        .collect();
    let mut n: u64 = 0;
    loop {
        let now = tokio::time::Instant::now();
        for c in &components {
            let Some(f) = &c.feed else { continue };
            if due.get(&c.name).is_some_and(|t| *t > now) {
                continue;
            }
            due.insert(c.name.clone(), now + f.poll);
            match poll_once(&app, c).await {
                Ok(Some((envs, why))) => {
                    for env in envs {
                        n += 1;
                        let event = Event::Trigger {
                            id: trigger_id(app.now(), n),
                            source: why.clone(),
                            at: app.now(),
                        };
                        if tx.send(crate::server::scheduler::Work::Policy { env, event }).is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(component = %c.name, "cannot poll its feed: {e:#}"),
            }
        }
        let next = due.values().min().copied().unwrap_or(now + Duration::from_secs(60));
        tokio::time::sleep_until(next).await;
        if tx.is_closed() {
            return;
        }
    }
}

/// A pushed version (`POST /webhooks/package`) of a feed component: `None`
/// when the push triggers as usual (it is newer; now the newest known, or
/// the component has no feed), or what was done instead (it is behind:
/// never deployed backwards; or it is no version of the feed's scheme).
pub async fn pushed(app: &App, component: &str, version: &str, delivery: &str) -> Option<(&'static str, String)> {
    let c = app.config.component(component)?;
    let f = c.feed.as_ref()?;
    let scheme = f.kind.scheme();
    let envs = followers(app, component);
    let v = match Version::parse(scheme, version) {
        Ok(v) => v,
        Err(why) => {
            let reason = format!("package {component} {version}: not deployed: {why}");
            decide(app, &envs, "feed", &reason).await;
            return Some(("ignored", reason));
        }
    };
    if v.is_prerelease() && !f.prereleases {
        let reason = format!(
            "package {component} {version}: not deployed: a pre-release (the feed does not follow pre-releases: `prereleases = true`)"
        );
        decide(app, &envs, "feed", &reason).await;
        return Some(("recorded", reason));
    }
    let mut st = match state(app, component).await {
        Ok(s) => s,
        Err(e) => {
            return Some((
                "failed",
                format!("cannot read what is known of {component}'s feed: {e:#}"),
            ));
        }
    };
    let known = st.newest.as_deref().and_then(|k| Version::parse(scheme, k).ok());
    let runs = running_anywhere(app, c, scheme).await;
    for (what, other) in [("runs", runs.as_ref()), ("is known", known.as_ref())] {
        if let Some(o) = other
            && v <= *o
        {
            let reason = format!(
                "package {component} {version}: not deployed: {o} {what} and is {}: versions are never deployed backwards",
                if v == *o { "the same" } else { "newer" }
            );
            decide(app, &envs, "feed", &reason).await;
            return Some(("recorded", reason));
        }
    }
    st.newest = Some(v.to_string());
    st.source = format!("webhook delivery {delivery}");
    st.at = app.now();
    if let Err(e) = save(app, component, &st).await {
        return Some(("failed", format!("cannot record {component} {version}: {e:#}")));
    }
    None
}

/// The overrides a scheduled cycle of `env` makes for its feed components:
/// `NAME=version:NEWEST`, or what runs when that is newer (never
/// backwards), and the components to leave out (no version known yet and
/// none runs).
pub async fn overrides(app: &App, env: &Environment) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut pins = Vec::new();
    let mut skip = Vec::new();
    for name in &env.components {
        let Some(c) = app.config.component(name) else { continue };
        let Some(f) = &c.feed else { continue };
        let scheme = f.kind.scheme();
        let st = state(app, name).await?;
        let known = st.newest.as_deref().and_then(|v| Version::parse(scheme, v).ok());
        let runs = running(app, &env.name, name, scheme).await;
        let pick = match (known, runs) {
            (Some(k), Some(r)) if r > k => {
                let reason =
                    format!("{name}: {r} runs, newer than the feed's newest {k}: it keeps running (never backwards)");
                decide(app, std::slice::from_ref(env), "feed", &reason).await;
                Some(r)
            }
            (Some(k), _) => Some(k),
            (None, r) => r,
        };
        match pick {
            Some(v) => pins.push(format!("{name}=version:{v}")),
            None => skip.push(name.clone()),
        }
    }
    Ok((pins, skip))
}
