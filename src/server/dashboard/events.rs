//! `GET /events`: server-sent events saying "something changed".
//!
//! One poller per server (started by the first listener, ended when the
//! last one left) reads a cheap fingerprint of the store every 500 ms: the
//! newest cycle and its result, the stages and component outcomes of
//! running cycles, the leases, the newest audit row and the newest
//! decision. When it differs, every listener gets a `change` event and its
//! page re-fetches itself. Nothing about the change is sent (the page asks
//! with the user's session, so it shows only what they may see). A stream
//! ends after 10 minutes (the browser reconnects) and when the server
//! shuts down, so a connected browser never holds a graceful shutdown up.

use super::Dash;
use crate::server::Shared;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often the store is looked at.
const POLL: Duration = Duration::from_millis(500);
/// Longest life of one event stream.
const STREAM_LIFETIME: Duration = Duration::from_secs(600);

/// The change counter and its poller.
pub struct Changes {
    tx: watch::Sender<u64>,
    poller: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Changes {
    /// No poller yet.
    pub fn new() -> Changes {
        Changes {
            tx: watch::channel(0).0,
            poller: Mutex::new(None),
        }
    }

    /// A receiver; starts the poller when none runs.
    fn subscribe(&self, s: &Arc<Shared>) -> watch::Receiver<u64> {
        let rx = self.tx.subscribe();
        let mut p = self.poller.lock().unwrap_or_else(|e| e.into_inner());
        if p.as_ref().is_none_or(|h| h.is_finished()) {
            *p = Some(tokio::spawn(poll(s.clone(), self.tx.clone())));
        }
        rx
    }
}

/// A fingerprint of what the pages show that changes often.
pub async fn fingerprint(s: &Shared) -> anyhow::Result<u64> {
    let store = &s.app.store;
    let mut h = DefaultHasher::new();
    for c in store.cycles(None, 1).await? {
        (c.id, c.result, c.finished_at).hash(&mut h);
    }
    for c in store.running_cycles().await? {
        c.id.hash(&mut h);
        store.stages(c.id).await?.len().hash(&mut h);
        for cc in store.cycle_components(c.id).await? {
            (cc.component, cc.build, cc.outcome).hash(&mut h);
        }
        c.cancel.map(|x| x.at).hash(&mut h);
    }
    for l in store.leases().await? {
        (l.environment, l.holder, l.token, l.expires).hash(&mut h);
    }
    for a in store.audit(None, 1).await? {
        a.id.hash(&mut h);
    }
    for d in store.decisions(None, 1).await? {
        d.id.hash(&mut h);
    }
    Ok(h.finish())
}

async fn poll(s: Arc<Shared>, tx: watch::Sender<u64>) {
    let mut last = None;
    let mut every = tokio::time::interval(POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if tx.receiver_count() == 0 {
            return;
        }
        match fingerprint(&s).await {
            Ok(f) => {
                if last.is_some_and(|l| l != f) {
                    tx.send_modify(|n| *n = n.wrapping_add(1));
                }
                last = Some(f);
            }
            Err(e) => tracing::warn!("dashboard: change poll failed: {e:#}"),
        }
    }
}

/// `GET /events`.
pub async fn events(State(s): State<Arc<Shared>>, Extension(d): Extension<Arc<Dash>>, headers: HeaderMap) -> Response {
    if d.sessions.viewer(&s, &headers).await.is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let rx = d.changes.subscribe(&s);
    let deadline = tokio::time::Instant::now() + STREAM_LIFETIME;
    let stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        Box::pin(crate::server::shutdown_signal());
    let stream = futures_util::stream::unfold((rx, stop, true), move |(mut rx, mut stop, first)| async move {
        if first {
            // Tell the page at once that it is connected (and whether to
            // reconnect after 2 s when the stream ends).
            let e = Event::default()
                .event("hello")
                .data("connected")
                .retry(Duration::from_secs(2));
            return Some((Ok::<Event, std::convert::Infallible>(e), (rx, stop, false)));
        }
        tokio::select! {
            r = rx.changed() => match r {
                Ok(()) => {
                    let n = *rx.borrow_and_update();
                    Some((Ok(Event::default().event("change").data(n.to_string())), (rx, stop, false)))
                }
                Err(_) => None,
            },
            _ = tokio::time::sleep_until(deadline) => None,
            _ = &mut stop => None,
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}
