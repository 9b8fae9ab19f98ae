//! The per-mirror exclusive file lock.
//!
//! Owns `ROOT/<name>.lock`: an advisory, exclusive lock (`flock` via std's
//! `File::lock`) held by whoever writes a mirror (init, fetch, clone from it),
//! so several greenroom processes, and several tasks of one process, never
//! write one mirror at the same time. The lock is released when the guard is
//! dropped, and by the OS if the process dies. This module must never block
//! an async worker thread: blocking waits run in `spawn_blocking`.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::GitError;

/// Holds the exclusive lock until dropped.
#[derive(Debug)]
pub(crate) struct MirrorLock {
    // Closing the file releases the lock.
    _file: File,
}

/// Acquire the exclusive lock at `path`, creating the lock file if needed.
pub(crate) async fn lock(path: &Path) -> Result<MirrorLock, GitError> {
    let path: PathBuf = path.to_owned();
    let shown = path.display().to_string();
    let joined = tokio::task::spawn_blocking(move || -> Result<File, GitError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| GitError::io(format!("opening lock file {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {
                tracing::info!(lock = %path.display(), "waiting for the mirror lock held by another task or process");
            }
            Err(TryLockError::Error(e)) => {
                return Err(GitError::io(format!("locking {}", path.display()), e));
            }
        }
        file.lock()
            .map_err(|e| GitError::io(format!("locking {}", path.display()), e))?;
        Ok(file)
    })
    .await;
    match joined {
        Ok(Ok(file)) => Ok(MirrorLock { _file: file }),
        Ok(Err(e)) => Err(e),
        Err(join) => Err(GitError::io(
            format!("locking {shown}"),
            std::io::Error::other(join.to_string()),
        )),
    }
}
