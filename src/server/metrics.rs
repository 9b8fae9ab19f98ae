//! `GET /metrics`: Prometheus metrics (prometheus-client), computed at scrape
//! time from what the store holds, so they survive restarts and agree
//! between replicas.
//!
//! - `greenroom_cycles_total{environment,kind,result}`
//! - `greenroom_stage_duration_seconds{environment,stage}` (recent stages)
//! - `greenroom_webhook_deliveries_total{source,event,outcome}`
//! - `greenroom_queue_depth{environment}`, `greenroom_lease_held{environment}`
//! - `greenroom_deployed_info{environment,component,commit,ref}` = 1 for what runs now
//! - `greenroom_paused{environment}`: scheduled cycles paused (1) or not (0)
//! - `greenroom_disk_bytes{area}`: disk used under the state directory
//!   (database, mirrors, builds, logs, run, cycles), measured at most once a
//!   minute and after every retention pass
//! - `greenroom_cycle_started_timestamp_seconds{environment}`: when the
//!   cycle running on an instance started (absent when none runs)
//! - `greenroom_lease_expires_timestamp_seconds{environment}`: when the
//!   lease on an instance expires (absent when it is free)
//! - `greenroom_webhook_rejections_total{source,status}`: webhook requests
//!   refused and not stored (401, 400, 413, 503), counted in this process
//!   since it started (not in the store: a refused request leaves no row);
//!   every source's 400, 401 and 413 start at 0
//!
//! Never exports a secret: labels come from names, commits and refs only.

use super::Shared;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The last disk measurement: (state directory, when, usage).
static DISK: Mutex<Option<(std::path::PathBuf, Instant, crate::retention::DiskUsage)>> = Mutex::new(None);

/// How long a disk measurement is reused (walking the build cache is not free).
const DISK_FRESH: Duration = Duration::from_secs(60);

/// Webhook requests refused and not stored, by source and status, since
/// this process started.
static REJECTIONS: Mutex<BTreeMap<(String, u16), u64>> = Mutex::new(BTreeMap::new());

/// Counts a webhook request refused with `status` (`server::intake`).
pub fn count_rejection(source: &str, status: u16) {
    if let Ok(mut r) = REJECTIONS.lock() {
        *r.entry((source.to_string(), status)).or_default() += 1;
    }
}

/// Keeps a measurement (the retention pass has just made one).
pub fn remember_disk(root: &std::path::Path, usage: crate::retention::DiskUsage) {
    if let Ok(mut d) = DISK.lock() {
        *d = Some((root.to_path_buf(), Instant::now(), usage));
    }
}

async fn disk(paths: &crate::app::Paths) -> crate::retention::DiskUsage {
    if let Ok(d) = DISK.lock()
        && let Some((root, at, usage)) = d.as_ref()
        && *root == paths.root
        && at.elapsed() < DISK_FRESH
    {
        return usage.clone();
    }
    let p = paths.clone();
    let usage = tokio::task::spawn_blocking(move || crate::retention::disk_usage(&p))
        .await
        .unwrap_or_default();
    remember_disk(&paths.root, usage.clone());
    usage
}

type Labels = Vec<(String, String)>;

fn stage_histogram() -> Histogram {
    // 10 ms .. ~5.8 h
    Histogram::new(exponential_buckets(0.01, 2.0, 22))
}

/// Stages looked at for the duration histogram.
const RECENT_STAGES: i64 = 5000;

/// Renders the metrics text for `app`.
pub async fn render(app: &crate::app::App) -> anyhow::Result<String> {
    let mut registry = Registry::default();
    let cycles = Family::<Labels, Counter>::default();
    for (env, kind, result, n) in app.store.cycle_counts().await? {
        cycles
            .get_or_create(&vec![
                ("environment".into(), env),
                ("kind".into(), kind),
                ("result".into(), result),
            ])
            .inc_by(u64::try_from(n).unwrap_or(0));
    }
    registry.register(
        "greenroom_cycles",
        "Cycles run, by environment, kind and result",
        cycles,
    );

    let stages = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(stage_histogram);
    for (env, stage, ms) in app.store.stage_durations(RECENT_STAGES).await? {
        stages
            .get_or_create(&vec![("environment".into(), env), ("stage".into(), stage)])
            .observe(ms as f64 / 1000.0);
    }
    registry.register(
        "greenroom_stage_duration_seconds",
        "Durations of recent cycle stages",
        stages,
    );

    let deliveries = Family::<Labels, Counter>::default();
    for (source, event, outcome, n) in app.store.delivery_counts().await? {
        deliveries
            .get_or_create(&vec![
                ("source".into(), source),
                ("event".into(), event),
                ("outcome".into(), outcome),
            ])
            .inc_by(u64::try_from(n).unwrap_or(0));
    }
    registry.register(
        "greenroom_webhook_deliveries",
        "Webhook deliveries, by source, event and outcome",
        deliveries,
    );

    let queue = Family::<Labels, Gauge>::default();
    let lease = Family::<Labels, Gauge>::default();
    let lease_expires = Family::<Labels, Gauge>::default();
    let deployed = Family::<Labels, Gauge>::default();
    let waiting = app.store.queue(None).await?;
    let now = app.now();
    for inst in app.config.instances() {
        let env = vec![("environment".to_string(), inst.name.clone())];
        let depth = waiting
            .iter()
            .filter(|q| q.queue_key == inst.name || q.queue_key == inst.environment)
            .count();
        queue.get_or_create(&env).set(i64::try_from(depth).unwrap_or(0));
        let current = app.store.lease(&inst.name).await?.0.filter(|l| l.expires > now);
        lease.get_or_create(&env).set(i64::from(current.is_some()));
        if let Some(l) = current {
            lease_expires.get_or_create(&env).set(l.expires / 1000);
        }
        for d in app.store.deployed(&inst.name).await? {
            if !matches!(d.state.as_str(), "running" | "starting") {
                continue;
            }
            deployed
                .get_or_create(&vec![
                    ("environment".into(), inst.name.clone()),
                    ("component".into(), d.component.clone()),
                    (
                        "commit".into(),
                        d.entry.commit.clone().or(d.entry.image.clone()).unwrap_or_default(),
                    ),
                    ("ref".into(), d.entry.reference.clone().unwrap_or_default()),
                ])
                .set(1);
        }
    }
    registry.register(
        "greenroom_queue_depth",
        "Requests waiting for an environment's lease",
        queue,
    );
    registry.register(
        "greenroom_lease_held",
        "Whether an environment is leased (1) or free (0)",
        lease,
    );
    registry.register(
        "greenroom_lease_expires_timestamp_seconds",
        "When the lease on an environment instance expires (Unix seconds); absent when it is free",
        lease_expires,
    );
    let started = Family::<Labels, Gauge>::default();
    for c in app.store.running_cycles().await? {
        started
            .get_or_create(&vec![("environment".to_string(), c.environment.clone())])
            .set(c.started_at / 1000);
    }
    registry.register(
        "greenroom_cycle_started_timestamp_seconds",
        "When the cycle running on an environment instance started (Unix seconds); absent when none runs",
        started,
    );
    let rejections = Family::<Labels, Counter>::default();
    for source in ["github", "gitlab", "package"] {
        for status in [400, 401, 413] {
            // Every source's usual refusals start at 0, so `increase()` sees the first one.
            rejections
                .get_or_create(&vec![
                    ("source".to_string(), source.to_string()),
                    ("status".to_string(), status.to_string()),
                ])
                .inc_by(0);
        }
    }
    let counted: Vec<((String, u16), u64)> = REJECTIONS
        .lock()
        .map(|r| r.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    for ((source, status), n) in counted {
        rejections
            .get_or_create(&vec![
                ("source".to_string(), source),
                ("status".to_string(), status.to_string()),
            ])
            .inc_by(n);
    }
    registry.register(
        "greenroom_webhook_rejections",
        "Webhook requests refused and not stored, by source and HTTP status, since the process started",
        rejections,
    );
    registry.register(
        "greenroom_deployed_info",
        "What runs now: 1 per environment, component, commit and ref",
        deployed,
    );

    let paused = Family::<Labels, Gauge>::default();
    for env in app.config.environments.iter().filter(|e| e.slots.is_none()) {
        let p = app.store.pause(&env.name).await?.is_some_and(|p| p.paused);
        paused
            .get_or_create(&vec![("environment".to_string(), env.name.clone())])
            .set(i64::from(p));
    }
    registry.register(
        "greenroom_paused",
        "Whether an environment's scheduled cycles are paused (1) or not (0)",
        paused,
    );

    let disk_bytes = Family::<Labels, Gauge>::default();
    for (area, bytes) in disk(&app.paths).await.areas() {
        disk_bytes
            .get_or_create(&vec![("area".to_string(), area.to_string())])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    registry.register(
        "greenroom_disk_bytes",
        "Disk used under the state directory, by area",
        disk_bytes,
    );

    let mut out = String::new();
    encode(&mut out, &registry).map_err(|e| anyhow::anyhow!("cannot encode metrics: {e}"))?;
    Ok(out)
}

/// `GET /metrics`.
pub async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    match render(&s.app).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")).into_response(),
    }
}
