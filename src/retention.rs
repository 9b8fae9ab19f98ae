//! Retention (`[retention]`): `greenroom gc` and `serve`'s periodic pass.
//!
//! What goes: finished cycles beyond the configured age and count (with
//! their stages, components, per-cycle files and logs), manifests nothing
//! refers to, old processed deliveries and decisions (all in the store, one
//! transaction); build cache entries unused for `builds` or beyond
//! `build_cache_size` (chosen by the pure `greenroom_core::retention`); log
//! files not written for `logs`. What never goes: anything what runs now
//! needs — the cycles, builds and logs of deployed components and of running
//! cycles — and a build another process is writing (its lock is held).
//! Mirrors are kept (they are the fetch cache; git compacts them itself).
//!
//! Also measures the disk used per area for the `greenroom_disk_bytes` metric.

use crate::app::{App, Paths};
use anyhow::Context;
use greenroom_core::retention::{CacheEntry, select_builds};
use greenroom_core::time::Millis;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Bytes used under the state directory, per area.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// The SQLite database (with its WAL), when it is in the state directory.
    pub database: u64,
    /// Bare git mirrors.
    pub mirrors: u64,
    /// The build cache.
    pub builds: u64,
    /// Build and component logs.
    pub logs: u64,
    /// Components' working directories.
    pub run: u64,
    /// Per-cycle files.
    pub cycles: u64,
}

impl DiskUsage {
    /// `(area, bytes)` pairs, for metrics and output.
    pub fn areas(&self) -> [(&'static str, u64); 6] {
        [
            ("database", self.database),
            ("mirrors", self.mirrors),
            ("builds", self.builds),
            ("logs", self.logs),
            ("run", self.run),
            ("cycles", self.cycles),
        ]
    }

    /// Sum of every area.
    pub fn total(&self) -> u64 {
        self.areas().iter().map(|(_, b)| b).sum()
    }
}

/// A removed build cache entry.
#[derive(Debug, Clone, Serialize)]
pub struct RemovedBuild {
    /// `component/key`.
    pub name: String,
    /// Bytes freed.
    pub bytes: u64,
    /// Why.
    pub reason: String,
}

/// What a pass removed.
#[derive(Debug, Clone, Serialize)]
pub struct GcReport {
    /// From the database.
    pub database: greenroom_store::Pruned,
    /// Build cache entries.
    pub builds: Vec<RemovedBuild>,
    /// Log files removed.
    pub logs: u64,
    /// Per-cycle directories removed.
    pub cycle_dirs: u64,
    /// Bytes freed on disk (builds, logs, cycle files).
    pub bytes_freed: u64,
    /// Disk used afterwards.
    pub disk: DiskUsage,
}

/// Size of a file or a directory tree (symlinks are not followed).
pub fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(dir) = std::fs::read_dir(path) else {
        return 0;
    };
    dir.flatten().map(|e| size_of(&e.path())).sum()
}

/// Measures the disk used under the state directory (blocking: walks trees).
pub fn disk_usage(paths: &Paths) -> DiskUsage {
    let db = paths.database();
    let with_suffix = |s: &str| {
        let mut p = db.clone().into_os_string();
        p.push(s);
        PathBuf::from(p)
    };
    DiskUsage {
        database: size_of(&db) + size_of(&with_suffix("-wal")) + size_of(&with_suffix("-shm")),
        mirrors: size_of(&paths.mirrors()),
        builds: size_of(&paths.builds()),
        logs: size_of(&paths.logs()),
        run: size_of(&paths.root.join("run")),
        cycles: size_of(&paths.root.join("cycles")),
    }
}

fn millis(t: SystemTime) -> Millis {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One build cache entry on disk.
struct Found {
    component: String,
    key: String,
    base: PathBuf,
}

impl Found {
    fn dir(&self) -> PathBuf {
        self.base.join(&self.key)
    }
    fn sibling(&self, ext: &str) -> PathBuf {
        self.base.join(format!("{}.{ext}", self.key))
    }
}

/// Lists the cache: every `<component>/<key>` directory or record.
fn list_builds(root: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    let Ok(components) = std::fs::read_dir(root) else {
        return out;
    };
    for c in components.flatten() {
        if !c.path().is_dir() {
            continue;
        }
        let component = c.file_name().to_string_lossy().into_owned();
        let mut keys = BTreeSet::new();
        if let Ok(entries) = std::fs::read_dir(c.path()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let key = match name.rsplit_once('.') {
                    Some((k, "json" | "lock" | "artifact")) => k.to_string(),
                    _ if e.path().is_dir() => name,
                    _ => continue,
                };
                keys.insert(key);
            }
        }
        for key in keys {
            out.push(Found {
                component: component.clone(),
                key,
                base: c.path(),
            });
        }
    }
    out
}

/// What runs now, or is being deployed, and must stay: (component, commit
/// prefix) pairs, artifact paths and log files.
struct InUse {
    commits: BTreeSet<(String, String)>,
    paths: BTreeSet<String>,
}

async fn in_use(app: &App) -> anyhow::Result<InUse> {
    let mut u = InUse {
        commits: BTreeSet::new(),
        paths: BTreeSet::new(),
    };
    let mut add = |component: &str, commit: Option<&str>, artifact: Option<&str>, log: Option<&str>| {
        if let Some(c) = commit {
            u.commits.insert((component.to_string(), c.chars().take(16).collect()));
        }
        for p in [artifact, log].into_iter().flatten() {
            u.paths.insert(p.to_string());
        }
    };
    // Every place something runs: each instance, and each target of a fleet
    // (recorded under `INSTANCE#TARGET`; a halted rollout leaves targets on
    // an older build, which must stay).
    let mut places: Vec<String> = Vec::new();
    for inst in app.config.instances() {
        if let Some(fleet) = app.config.environment(&inst.environment).and_then(|e| e.fleet.as_ref()) {
            for t in &fleet.targets {
                places.push(fleet.key(&inst.name, &t.name));
            }
        }
        places.push(inst.name.clone());
    }
    places.sort();
    places.dedup();
    for place in &places {
        for d in app.store.deployed(place).await? {
            add(
                &d.component,
                d.entry.commit.as_deref(),
                d.artifact.as_deref(),
                d.log_path.as_deref(),
            );
        }
    }
    for c in app.store.running_cycles().await? {
        for cc in app.store.cycle_components(c.id).await? {
            add(
                &cc.component,
                cc.entry.commit.as_deref(),
                cc.artifact.as_deref(),
                cc.run_log.as_deref(),
            );
            add(&cc.component, None, None, cc.build_log.as_deref());
        }
    }
    Ok(u)
}

/// Removes a build entry unless another process holds its lock (building it
/// now). Returns the bytes freed, or `None` when it was skipped.
fn remove_build(f: &Found) -> Option<u64> {
    let lock_path = f.sibling("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .ok()?;
    lock.try_lock().ok()?;
    let bytes = size_of(&f.dir()) + size_of(&f.sibling("json")) + size_of(&f.sibling("artifact"));
    // The record goes first: without it the entry counts as unfinished.
    let _ = std::fs::remove_file(f.sibling("json"));
    let _ = std::fs::remove_file(f.sibling("artifact"));
    let _ = std::fs::remove_dir_all(f.dir());
    let _ = std::fs::remove_file(&lock_path);
    drop(lock);
    Some(bytes)
}

/// Files under `root` (recursively).
fn files_under(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(dir) = std::fs::read_dir(root) else { return };
    for e in dir.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files_under(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// Removes empty directories below `root` (not `root` itself).
fn remove_empty_dirs(root: &Path) {
    let Ok(dir) = std::fs::read_dir(root) else { return };
    for e in dir.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_dirs(&e.path());
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// Runs one retention pass.
pub async fn collect(app: &App) -> anyhow::Result<GcReport> {
    let r = &app.config.retention;
    let now = app.now();
    let ago = move |d: std::time::Duration| now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let pruned = app
        .store
        .prune(&greenroom_store::Keep {
            cycles_before: ago(r.cycles),
            cycles_per_environment: i64::from(r.keep_cycles),
            deliveries_before: ago(r.events),
            decisions_before: ago(r.events),
            batch: 10_000,
        })
        .await
        .context("retention: the database pass failed")?;
    let used = in_use(app).await?;
    let paths = app.paths.clone();
    let (retention, removed_ids, removed_logs) = (*r, pruned.cycle_ids.clone(), pruned.log_paths.clone());
    let files = tokio::task::spawn_blocking(move || {
        let mut freed = 0u64;
        // Per-cycle files of removed cycles.
        let mut cycle_dirs = 0;
        for id in &removed_ids {
            let d = paths.cycle_dir(*id);
            if d.exists() {
                freed += size_of(&d);
                if std::fs::remove_dir_all(&d).is_ok() {
                    cycle_dirs += 1;
                }
            }
        }
        // Logs: those of removed cycles, and any not written for `logs`, unless in use.
        let logs_root = paths.logs();
        let mut logs = 0u64;
        let log_cutoff = ago(retention.logs);
        let mut candidates: Vec<PathBuf> = removed_logs.iter().map(PathBuf::from).collect();
        let mut all = Vec::new();
        files_under(&logs_root, &mut all);
        for f in all {
            let old = std::fs::metadata(&f)
                .and_then(|m| m.modified())
                .is_ok_and(|t| millis(t) < log_cutoff);
            if old {
                candidates.push(f);
            }
        }
        candidates.sort();
        candidates.dedup();
        for f in candidates {
            // Only ever below the logs directory, and never what runs now writes.
            if !f.starts_with(&logs_root) || used.paths.contains(&f.display().to_string()) {
                continue;
            }
            let n = size_of(&f);
            if std::fs::remove_file(&f).is_ok() {
                freed += n;
                logs += 1;
            }
        }
        remove_empty_dirs(&logs_root);
        // The build cache.
        let found = list_builds(&paths.builds());
        let entries: Vec<CacheEntry> = found
            .iter()
            .map(|f| {
                let stamp = [f.sibling("json"), f.dir()]
                    .iter()
                    .find_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
                    .map(millis)
                    .unwrap_or(0);
                let commit_prefix = f.key.split('-').next().unwrap_or("").to_string();
                let dir = f.dir().display().to_string();
                let protected = used.commits.contains(&(f.component.clone(), commit_prefix))
                    || used.paths.iter().any(|p| p.starts_with(&dir));
                CacheEntry {
                    name: format!("{}/{}", f.component, f.key),
                    size: size_of(&f.dir()),
                    last_used: stamp,
                    protected,
                }
            })
            .collect();
        let mut builds = Vec::new();
        for pick in select_builds(&entries, now, retention.builds, retention.build_cache_size) {
            let (f, e) = (&found[pick.index], &entries[pick.index]);
            if let Some(bytes) = remove_build(f) {
                freed += bytes;
                builds.push(RemovedBuild {
                    name: e.name.clone(),
                    bytes,
                    reason: pick.reason,
                });
            }
        }
        let disk = disk_usage(&paths);
        (builds, logs, cycle_dirs, freed, disk)
    })
    .await
    .context("retention: the file pass failed")?;
    let (builds, logs, cycle_dirs, bytes_freed, disk) = files;
    Ok(GcReport {
        database: pruned,
        builds,
        logs,
        cycle_dirs,
        bytes_freed,
        disk,
    })
}

/// Human summary of a pass.
pub fn render(r: &GcReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let d = &r.database;
    let _ = writeln!(
        s,
        "removed {} cycle(s), {} manifest(s), {} deliveries, {} decision(s); {} build(s), {} log file(s), {} cycle dir(s)",
        d.cycles,
        d.manifests,
        d.deliveries,
        d.decisions,
        r.builds.len(),
        r.logs,
        r.cycle_dirs
    );
    for b in &r.builds {
        let _ = writeln!(s, "  build {} ({} bytes): {}", b.name, b.bytes, b.reason);
    }
    let _ = writeln!(s, "freed {} bytes", r.bytes_freed);
    let areas: Vec<String> = r.disk.areas().iter().map(|(a, b)| format!("{a} {b}")).collect();
    let _ = writeln!(s, "disk used: {} bytes ({})", r.disk.total(), areas.join(", "));
    s
}
