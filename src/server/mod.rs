//! `greenroom serve`: one process that receives webhooks, schedules cycles
//! with the pure policy (`greenroom_core::policy`) and runs them with the
//! engine.
//!
//! Shape (bors-like): axum handlers verify and store each delivery, answer,
//! and hand the row id to one serial consumer ([`scheduler`]) that owns the
//! per-environment policy states. A delivery is written to the database
//! before it is answered 2xx; a redelivery is recognised by its id and not
//! acted on twice. Only one `serve` runs per state directory
//! (`STATE/serve.lock`).

pub mod api;
pub mod chat;
pub mod commands;
pub mod dashboard;
pub mod intake;
pub mod metrics;
pub mod scheduler;
pub mod search;

use crate::app::App;
use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use greenroom_webhook::{Forge, Secret, Verifier};
use std::io::{Read, Seek, Write};
use std::sync::Arc;
use tokio::sync::mpsc;

/// What handlers share.
pub struct Shared {
    /// The application.
    pub app: Arc<App>,
    /// Webhook verification.
    pub verifier: Verifier,
    /// Work for the scheduler.
    pub work: mpsc::UnboundedSender<scheduler::Work>,
    /// API users and their token digests (`[[user]]`).
    pub users: api::Users,
}

/// The HTTP routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics::metrics))
        .route("/webhooks/github", post(intake::github))
        .route("/webhooks/gitlab", post(intake::gitlab))
        .route("/webhooks/package", post(intake::package))
        .route(
            "/chat/slack",
            post(chat::slack).layer(axum::extract::DefaultBodyLimit::max(chat::MAX_BODY)),
        )
        .nest("/api/v1", api::router())
        .merge(dashboard::router())
        // Bodies over the limit are refused with 413 before they are buffered.
        .layer(axum::extract::DefaultBodyLimit::max(greenroom_webhook::MAX_BODY))
        .with_state(shared)
}

/// Reads the webhook secrets named in the config into a verifier.
pub fn verifier(app: &App) -> anyhow::Result<Verifier> {
    let mut v = Verifier::new().allow_unsigned(app.config.server.allow_unsigned_webhooks);
    let hooks = &app.config.webhooks;
    for (forge, secret, key) in [
        (Forge::Github, &hooks.github, "github.webhook_secret"),
        (Forge::Gitlab, &hooks.gitlab, "gitlab.webhook_token"),
        (Forge::Package, &hooks.package, "package.webhook_secret"),
    ] {
        if let Some(r) = secret {
            let value = crate::resolve::read_secret(r).map_err(|e| crate::error::input(format!("{key}: {e}")))?;
            let s = Secret::new(value.into_bytes())
                .map_err(|_| crate::error::input(format!("{key}: the secret is empty")))?;
            v = v.with_secret(forge, s);
        }
    }
    Ok(v)
}

/// Holds `STATE/serve.lock` for the life of the server; a second server on
/// the same state directory is refused, naming the process that holds it.
pub struct InstanceLock {
    _file: std::fs::File,
}

impl InstanceLock {
    /// Takes the lock.
    pub fn take(app: &App) -> anyhow::Result<InstanceLock> {
        let path = app.paths.root.join("serve.lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(crate::error::UserError::Busy(format!(
                "another `greenroom serve` runs on {} ({}); stop it first",
                app.paths.root.display(),
                if holder.trim().is_empty() {
                    "unknown process".to_string()
                } else {
                    holder.trim().to_string()
                }
            ))
            .into());
        }
        file.set_len(0).context("truncate serve.lock")?;
        file.rewind().context("rewind serve.lock")?;
        writeln!(file, "pid {} on {}", std::process::id(), crate::identity::host()).context("write serve.lock")?;
        Ok(InstanceLock { _file: file })
    }
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn serve(app: App, listen: Option<std::net::SocketAddr>) -> anyhow::Result<i32> {
    let _lock = InstanceLock::take(&app)?;
    let verifier = verifier(&app)?;
    let users = api::Users::load(&app.config)?;
    let addr = listen.unwrap_or(app.config.server.listen);
    // What the server does on its own (scheduled cycles, searches) is the schedule's.
    let mut app = app;
    app.surface = "schedule".into();
    let app = Arc::new(app);
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        app: app.clone(),
        verifier,
        work: tx.clone(),
        users,
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("local address")?;
    eprintln!(
        "greenroom serve: listening on http://{local} (state {})",
        app.paths.root.display()
    );
    // Started before the scheduler, so that its first events are heard.
    let _notify = crate::notify::start(&app)?;
    let feeds = tokio::spawn(crate::feeds::run(app.clone(), tx.clone()));
    let sched = tokio::spawn(scheduler::run(app.clone(), rx, tx));
    let gc = tokio::spawn(retention_loop(app.clone()));
    let expiry = tokio::spawn(ephemeral_loop(app.clone()));
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")?;
    sched.abort();
    feeds.abort();
    gc.abort();
    expiry.abort();
    Ok(0)
}

/// Tears down ephemeral environments whose time ended, every few seconds.
async fn ephemeral_loop(app: Arc<App>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        for line in crate::ephemeral::expire(&app).await {
            tracing::info!("{line}");
        }
    }
}

/// Runs a retention pass now and every `[retention] interval`.
async fn retention_loop(app: Arc<App>) {
    let mut every = tokio::time::interval(app.config.retention.interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match crate::retention::collect(&app).await {
            Ok(r) => {
                metrics::remember_disk(&app.paths.root, r.disk.clone());
                let d = &r.database;
                if d.cycles + d.deliveries + d.decisions > 0 || !r.builds.is_empty() || r.logs > 0 {
                    tracing::info!(
                        cycles = d.cycles,
                        builds = r.builds.len(),
                        logs = r.logs,
                        freed = r.bytes_freed,
                        "retention pass"
                    );
                }
            }
            Err(e) => tracing::warn!("retention pass failed: {e:#}"),
        }
    }
}

/// Resolves when the process is asked to stop (SIGINT or SIGTERM); the
/// server and the dashboard's long-lived streams end on it.
pub(crate) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
