//! The build cache: every (component, commit, build command) is built once,
//! in a clean checkout, and reused after that.
//!
//! Layout under `STATE/builds/<component>/`: `<key>/` is the checkout the
//! build ran in (and, by default, the artifact), `<key>.json` the record
//! written last, after a successful build — a directory without its record
//! is an unfinished build and is rebuilt. `<key>.lock` keeps two greenroom
//! processes from building the same key at once. Build output goes to
//! `STATE/logs/builds/<component>/<key>.log`, with secret values redacted.

use anyhow::Context;
use greenroom_driver::{CommandSpec, run_command};
use greenroom_git::Mirror;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a build needs.
pub struct BuildJob {
    /// Component.
    pub component: String,
    /// Commit to build.
    pub commit: String,
    /// Ref it came from (for the build's variables).
    pub reference: String,
    /// Build command, if any (none: the checkout itself is the artifact).
    pub command: Option<String>,
    /// Variables for the build (environment vars included).
    pub env: Vec<(String, String)>,
    /// Values to redact from the log.
    pub secrets: Vec<String>,
    /// Timeout.
    pub timeout: Duration,
}

/// The record of a finished build.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildRecord {
    /// Artifact reference: what the build wrote to `GREENROOM_ARTIFACT_FILE`, or the checkout directory.
    pub artifact: String,
    /// The checkout directory.
    pub dir: PathBuf,
    /// Build log.
    pub log: Option<PathBuf>,
    /// How long the build command took.
    pub duration_ms: u64,
}

/// How a build went.
#[derive(Debug, Clone)]
pub enum BuildOutcome {
    /// Found in the cache: nothing ran.
    Cached(BuildRecord),
    /// Built now.
    Built(BuildRecord),
    /// The build command failed; nothing is cached.
    Failed {
        /// Why.
        message: String,
        /// Log file.
        log: PathBuf,
        /// How the command ended (for `core::failure`).
        exit: greenroom_core::failure::Exit,
    },
}

/// Cache key of a build.
pub fn key(commit: &str, command: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(command.unwrap_or("").as_bytes());
    let hash: String = h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
    let short: String = commit.chars().take(16).collect();
    format!("{short}-{hash}")
}

/// Paths of a cache entry.
pub struct Entry {
    /// Checkout directory.
    pub dir: PathBuf,
    /// Record file.
    pub record: PathBuf,
    /// Lock file.
    pub lock: PathBuf,
    /// Log file.
    pub log: PathBuf,
}

/// Where a build of `job` lives.
pub fn entry(builds: &Path, logs: &Path, component: &str, commit: &str, command: Option<&str>) -> Entry {
    let k = key(commit, command);
    let base = builds.join(component);
    Entry {
        dir: base.join(&k),
        record: base.join(format!("{k}.json")),
        lock: base.join(format!("{k}.lock")),
        log: logs.join("builds").join(component).join(format!("{k}.log")),
    }
}

/// The cached record, if the build is complete.
pub fn cached(e: &Entry) -> Option<BuildRecord> {
    let text = std::fs::read_to_string(&e.record).ok()?;
    let rec: BuildRecord = serde_json::from_str(&text).ok()?;
    rec.dir.is_dir().then_some(rec)
}

/// Marks a cached entry as used now: the record's modification time is the
/// entry's last use (retention keeps recently used builds). Failing to
/// touch it only ages the entry.
fn mark_used(e: &Entry) {
    if let Ok(f) = std::fs::File::options().write(true).open(&e.record) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Builds `job` unless it is cached.
pub async fn build(mirror: &Mirror, builds: &Path, logs: &Path, job: &BuildJob) -> anyhow::Result<BuildOutcome> {
    let e = entry(builds, logs, &job.component, &job.commit, job.command.as_deref());
    if let Some(rec) = cached(&e) {
        mark_used(&e);
        return Ok(BuildOutcome::Cached(rec));
    }
    let parent = e
        .dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| builds.to_path_buf());
    tokio::fs::create_dir_all(&parent)
        .await
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let lock = lock_file(&e.lock).await?;
    // Another process may have finished it while we waited for the lock.
    if let Some(rec) = cached(&e) {
        drop(lock);
        mark_used(&e);
        return Ok(BuildOutcome::Cached(rec));
    }
    if e.dir.exists() {
        tokio::fs::remove_dir_all(&e.dir)
            .await
            .with_context(|| format!("cannot remove the unfinished build {}", e.dir.display()))?;
    }
    mirror
        .checkout(&job.commit, &e.dir)
        .await
        .with_context(|| format!("cannot check out {} of {}", job.commit, job.component))?;
    let artifact_file = parent.join(format!("{}.artifact", key(&job.commit, job.command.as_deref())));
    let _ = tokio::fs::remove_file(&artifact_file).await;
    let mut duration_ms = 0;
    let mut log = None;
    if let Some(cmd) = &job.command {
        if let Some(p) = e.log.parent() {
            tokio::fs::create_dir_all(p)
                .await
                .with_context(|| format!("cannot create {}", p.display()))?;
        }
        let _ = tokio::fs::remove_file(&e.log).await;
        let mut env = job.env.clone();
        env.extend([
            ("GREENROOM_COMPONENT".to_string(), job.component.clone()),
            ("GREENROOM_COMMIT".to_string(), job.commit.clone()),
            ("GREENROOM_REF".to_string(), job.reference.clone()),
            ("GREENROOM_BUILD_DIR".to_string(), e.dir.display().to_string()),
            (
                "GREENROOM_ARTIFACT_FILE".to_string(),
                artifact_file.display().to_string(),
            ),
        ]);
        let started = Instant::now();
        let outcome = run_command(&CommandSpec {
            command: cmd.clone(),
            cwd: e.dir.clone(),
            env,
            secret_values: job.secrets.clone(),
            log_path: e.log.clone(),
            timeout: job.timeout,
        })
        .await
        .with_context(|| format!("cannot run the build of {}", job.component))?;
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if !outcome.success {
            let why = if outcome.timed_out {
                format!("timed out after {}", humantime::format_duration(job.timeout))
            } else {
                match (outcome.code, outcome.signal) {
                    (Some(c), _) => format!("exit status {c}"),
                    (None, Some(s)) => format!("killed by signal {s}"),
                    _ => "failed".to_string(),
                }
            };
            // Leave no half-built directory that could pass for a build.
            let _ = tokio::fs::remove_dir_all(&e.dir).await;
            drop(lock);
            return Ok(BuildOutcome::Failed {
                message: why,
                log: e.log,
                exit: greenroom_core::failure::Exit {
                    code: outcome.code,
                    timed_out: outcome.timed_out,
                },
            });
        }
        log = Some(e.log.clone());
    }
    let artifact = match tokio::fs::read_to_string(&artifact_file).await {
        Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => e.dir.display().to_string(),
    };
    let _ = tokio::fs::remove_file(&artifact_file).await;
    let rec = BuildRecord {
        artifact,
        dir: e.dir.clone(),
        log,
        duration_ms,
    };
    write_atomically(
        &e.record,
        &serde_json::to_vec_pretty(&rec).context("encode build record")?,
    )?;
    drop(lock);
    Ok(BuildOutcome::Built(rec))
}

/// Writes a file so that readers see the old content or the new, never half.
pub fn write_atomically(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(data)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads a JSON file written with [`write_atomically`]: `Ok(None)` when it
/// does not exist; the error names the file.
pub fn read_json_if_present<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is unreadable: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Takes an exclusive lock on a file (blocking in a worker thread).
async fn lock_file(path: &Path) -> anyhow::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open lock {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(_) => {
            let p = path.to_path_buf();
            tokio::task::spawn_blocking(move || {
                file.lock().with_context(|| format!("cannot lock {}", p.display()))?;
                Ok(file)
            })
            .await
            .context("lock task failed")?
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_commit_and_command() {
        let c = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(key(c, Some("make")), key(c, Some("make")));
        assert_ne!(key(c, Some("make")), key(c, Some("make all")));
        assert_ne!(key(c, None), key(c, Some("make")));
        assert!(key(c, None).starts_with("0123456789abcdef-"));
    }
}
