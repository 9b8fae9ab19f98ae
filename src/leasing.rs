//! Taking, waiting for, extending and releasing leases.
//!
//! Decisions come from `greenroom_core::lease`; this module feeds them what
//! the store and /proc say and makes them stick with the store's
//! compare-and-swap on the fencing token, so two processes can never both
//! believe they hold one environment. `--wait` joins a FIFO queue in the
//! database: only the oldest live waiter may take a freed environment.

use crate::app::App;
use crate::error::UserError;
use crate::identity;
use anyhow::Context;
use greenroom_core::config::Instance;
use greenroom_core::lease::{self, Lease, Reclaim, Standing};
use greenroom_core::time;
use greenroom_store::LeaseRequest;
use std::time::Duration;

/// A lease this process can act under.
#[derive(Debug, Clone)]
pub struct Held {
    /// The environment instance.
    pub instance: Instance,
    /// The lease (its token is the fence).
    pub lease: Lease,
    /// True if this call took it; false if the holder already had it.
    pub taken: bool,
}

/// What to ask for.
pub struct Ask<'a> {
    /// Candidate instances (one, or every slot of a pool).
    pub candidates: &'a [Instance],
    /// Queue key: what the user named (`dev` or `dev-2`).
    pub queue_key: &'a str,
    /// Why.
    pub reason: &'a str,
    /// How long.
    pub ttl: Duration,
    /// Bind the lease to this process (a deploy in progress, `lease -- CMD`).
    pub bind_process: bool,
    /// Wait in the FIFO queue instead of failing.
    pub wait: bool,
}

fn standing_of(app: &App, l: Option<&Lease>) -> Standing {
    let alive = l.and_then(|l| l.process.as_ref()).and_then(identity::alive);
    lease::assess(l, &app.holder, app.now(), alive)
}

/// Removes queue tickets whose waiting process is gone.
async fn prune_queue(app: &App, key: &str) -> anyhow::Result<Vec<greenroom_store::QueueEntry>> {
    let mut live = Vec::new();
    for e in app.store.queue(Some(key)).await? {
        if identity::alive(&e.process) == Some(false) {
            app.store.dequeue(e.ticket).await?;
        } else {
            live.push(e);
        }
    }
    Ok(live)
}

/// Tries each candidate once. `Ok(Some)` when one is ours.
async fn try_once(app: &App, ask: &Ask<'_>) -> anyhow::Result<Option<Held>> {
    // An instance the holder already has wins over a free one.
    let mut free = Vec::new();
    for inst in ask.candidates {
        let (current, token) = app.store.lease(&inst.name).await?;
        match standing_of(app, current.as_ref()) {
            Standing::Mine => {
                if let Some(l) = current {
                    return Ok(Some(Held {
                        instance: inst.clone(),
                        lease: l,
                        taken: false,
                    }));
                }
            }
            Standing::Held => {}
            s @ (Standing::Free | Standing::Reclaimable(_)) => free.push((inst, current, token, s)),
        }
    }
    for (inst, current, token, s) in free {
        let now = app.now();
        let req = LeaseRequest {
            holder: &app.holder,
            reason: ask.reason,
            since: now,
            expires: time::add(now, ask.ttl),
            process: ask.bind_process.then_some(&app.process),
        };
        if let Some(l) = app.store.try_acquire(&inst.name, token, &req).await? {
            if let (Standing::Reclaimable(why), Some(old)) = (s, current) {
                let why = match why {
                    Reclaim::Expired => "it expired",
                    Reclaim::HolderDied => "its process is gone",
                };
                eprintln!("note: took over the lease on {} from {} ({why})", inst.name, old.holder);
            }
            return Ok(Some(Held {
                instance: inst.clone(),
                lease: l,
                taken: true,
            }));
        }
    }
    Ok(None)
}

/// Why nothing could be taken, for people.
async fn busy_message(app: &App, ask: &Ask<'_>, waiting: usize) -> anyhow::Result<String> {
    let now = app.now();
    let mut lines = Vec::new();
    for inst in ask.candidates {
        if let (Some(l), _) = app.store.lease(&inst.name).await? {
            lines.push(format!("{} is {}", inst.name, lease::describe(&l, now)));
        }
    }
    if waiting > 0 {
        lines.push(format!("{waiting} request(s) already waiting for {}", ask.queue_key));
    }
    lines.push("use --wait to queue for it, or ask the holder to `greenroom release`".to_string());
    Ok(lines.join("\n"))
}

/// Takes a lease (or confirms the holder has it), waiting in the queue when asked.
pub async fn acquire(app: &App, ask: &Ask<'_>) -> anyhow::Result<Held> {
    let waiting = prune_queue(app, ask.queue_key).await?;
    if waiting.is_empty() {
        if let Some(h) = try_once(app, ask).await? {
            return Ok(h);
        }
    } else {
        // Someone is queued: only an instance the holder already has may be used now.
        for inst in ask.candidates {
            let (current, _) = app.store.lease(&inst.name).await?;
            if let (Standing::Mine, Some(l)) = (standing_of(app, current.as_ref()), current) {
                return Ok(Held {
                    instance: inst.clone(),
                    lease: l,
                    taken: false,
                });
            }
        }
    }
    if !ask.wait {
        return Err(UserError::Busy(busy_message(app, ask, waiting.len()).await?).into());
    }
    let ticket = app
        .store
        .enqueue(ask.queue_key, &app.holder, ask.reason, &app.process, app.now())
        .await?;
    let result = wait_turn(app, ask, ticket).await;
    // Leave the queue whatever happened.
    app.store.dequeue(ticket).await.context("leaving the lease queue")?;
    result
}

async fn wait_turn(app: &App, ask: &Ask<'_>, ticket: i64) -> anyhow::Result<Held> {
    let mut delay = Duration::from_millis(50);
    let mut last_note = String::new();
    loop {
        let queue = prune_queue(app, ask.queue_key).await?;
        let position = queue
            .iter()
            .position(|e| e.ticket == ticket)
            .map(|p| p + 1)
            .unwrap_or(1);
        if position == 1
            && let Some(h) = try_once(app, ask).await?
        {
            return Ok(h);
        }
        let note = format!("waiting for {} (position {position} in queue)", ask.queue_key);
        if note != last_note {
            eprintln!("{note}");
            last_note = note;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// Frees the holder's lease (any holder's with `force`).
pub async fn release(app: &App, instance: &str, force: bool) -> anyhow::Result<Option<Lease>> {
    let (current, _) = app.store.lease(instance).await?;
    let Some(l) = current else { return Ok(None) };
    if l.holder != app.holder && !force {
        return Err(UserError::Busy(format!(
            "{instance} is {}; only the holder can release it (or use --force)",
            lease::describe(&l, app.now())
        ))
        .into());
    }
    if !app.store.release(instance, l.token).await? {
        anyhow::bail!("the lease on {instance} changed while releasing it; run the command again");
    }
    let detail = if l.holder == app.holder {
        "released".to_string()
    } else {
        format!("released {}'s lease (forced)", l.holder)
    };
    crate::audit::record(app, "release", instance, &detail, &l.reason, None).await;
    Ok(Some(l))
}

/// Sets the holder's lease to end `ttl` from now.
pub async fn extend(app: &App, instance: &str, ttl: Duration) -> anyhow::Result<Lease> {
    let (current, _) = app.store.lease(instance).await?;
    let Some(l) = current else {
        return Err(UserError::Input(format!(
            "{instance} is not leased; take it with `greenroom lease --env {instance}`"
        ))
        .into());
    };
    match standing_of(app, Some(&l)) {
        Standing::Mine => {}
        Standing::Reclaimable(Reclaim::Expired) if l.holder == app.holder => {}
        _ => {
            return Err(UserError::Busy(format!(
                "{instance} is {}; only the holder can extend it",
                lease::describe(&l, app.now())
            ))
            .into());
        }
    }
    let expires = time::add(app.now(), ttl);
    if !app
        .store
        .update_lease(instance, l.token, expires, l.process.as_ref())
        .await?
    {
        anyhow::bail!("the lease on {instance} changed while extending it; run the command again");
    }
    Ok(Lease { expires, ..l })
}

/// After a cycle under a lease this process took: keep the environment
/// for the holder until `ttl` from now (not bound to this process any
/// more), or release it.
pub async fn after_cycle(app: &App, held: &Held, ttl: Duration, release_now: bool) -> anyhow::Result<Option<Lease>> {
    if !held.taken {
        return Ok(app.store.lease(&held.instance.name).await?.0);
    }
    if release_now {
        app.store.release(&held.instance.name, held.lease.token).await?;
        return Ok(None);
    }
    let expires = time::add(app.now(), ttl);
    app.store
        .update_lease(&held.instance.name, held.lease.token, expires, None)
        .await?;
    Ok(app.store.lease(&held.instance.name).await?.0)
}
