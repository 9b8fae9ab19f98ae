//! Log files: writing redacted process output line by line, reading the tail
//! of a log, and following a log as it grows.
//!
//! Writers here must never panic or give up on a broken log file (a full disk
//! must not kill a component): they report the problem to stderr and keep
//! draining the process output. Readers never modify the file.

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use crate::redact::Redactor;

/// Longest line copied in one piece; longer lines are split (a secret that
/// straddles the split is not redacted, an accepted limit of line-based redaction).
const MAX_LINE: u64 = 64 * 1024;

/// How long a broken log file is left alone before reopening it is tried again.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// Opens `path` for appending, creating its parent directories and the file.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// An append-only log file that survives write errors: a failed write is
/// reported to stderr, the line dropped, and the file reopened later.
pub(crate) struct LogSink {
    path: PathBuf,
    file: Option<File>,
    last_attempt: Option<Instant>,
}

impl LogSink {
    /// Opens (or tries to open) the log; never fails.
    pub(crate) fn open(path: &Path) -> Self {
        let mut sink = LogSink {
            path: path.to_path_buf(),
            file: None,
            last_attempt: None,
        };
        sink.ensure_open();
        sink
    }

    fn ensure_open(&mut self) -> bool {
        if self.file.is_some() {
            return true;
        }
        if let Some(at) = self.last_attempt
            && at.elapsed() < REOPEN_EVERY
        {
            return false;
        }
        self.last_attempt = Some(Instant::now());
        match open_append(&self.path) {
            Ok(file) => {
                self.file = Some(file);
                true
            }
            Err(err) => {
                eprintln!(
                    "greenroom: cannot open log file {}: {err}; output is dropped until it can be opened",
                    self.path.display()
                );
                false
            }
        }
    }

    /// Appends one line (a newline is added) and flushes it.
    pub(crate) fn write_line(&mut self, line: &str) {
        if !self.ensure_open() {
            return;
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut data = Vec::with_capacity(line.len() + 1);
        data.extend_from_slice(line.as_bytes());
        data.push(b'\n');
        if let Err(err) = file.write_all(&data).and_then(|()| file.flush()) {
            eprintln!(
                "greenroom: cannot write log file {}: {err}; will reopen it",
                self.path.display()
            );
            self.file = None;
        }
    }
}

/// Copies `reader` into `sink` line by line, redacting each line, until end of
/// file or a read error. Never fails: a broken log drops lines, the pipe is
/// still drained so the process never blocks on a full pipe.
pub(crate) fn copy_lines(reader: impl Read, sink: &mut LogSink, redactor: &Redactor) {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        match reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                sink.write_line(&redactor.redact_bytes(&buf));
            }
            Err(err) => {
                eprintln!("greenroom: reading process output failed: {err}");
                return;
            }
        }
    }
}

/// Returns the last `lines` lines of the file at `path` (with their newlines).
/// Reads backwards from the end in blocks, so it is cheap on large logs.
/// Invalid UTF-8 is replaced.
pub fn log_tail(path: &Path, lines: usize) -> io::Result<String> {
    const BLOCK: u64 = 64 * 1024;
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if lines == 0 || len == 0 {
        return Ok(String::new());
    }
    // Bytes from `start` to the end of the file, read block by block backwards.
    let mut data: Vec<u8> = Vec::new();
    let mut start = len;
    loop {
        // A trailing newline ends the last line; it does not start a new one.
        let body = if data.last() == Some(&b'\n') {
            &data[..data.len() - 1]
        } else {
            &data[..]
        };
        let newlines = body.iter().filter(|&&b| b == b'\n').count();
        if newlines >= lines || start == 0 {
            let cut = if newlines >= lines {
                // Keep what follows the `lines`-th newline counted from the end.
                let mut seen = 0;
                let mut cut = 0;
                for (i, b) in body.iter().enumerate().rev() {
                    if *b == b'\n' {
                        seen += 1;
                        if seen == lines {
                            cut = i + 1;
                            break;
                        }
                    }
                }
                cut
            } else {
                0
            };
            return Ok(String::from_utf8_lossy(&data[cut..]).into_owned());
        }
        let read_from = start.saturating_sub(BLOCK);
        let size = usize::try_from(start - read_from).unwrap_or(usize::MAX);
        let mut block = vec![0u8; size];
        file.seek(SeekFrom::Start(read_from))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&data);
        data = block;
        start = read_from;
    }
}

/// Streams the log at `path` to `out`: its current content, then, if
/// `follow`, whatever is appended, forever (drop the future, or use
/// [`follow_log_until`], to stop). Truncation and rotation (a new file at the
/// same path) are followed. With `follow`, a missing file is waited for.
pub async fn follow_log(path: &Path, follow: bool, out: &mut (dyn AsyncWrite + Unpin + Send)) -> io::Result<()> {
    follow_log_until(path, follow, out, std::future::pending::<()>()).await
}

/// Like [`follow_log`], but returns `Ok(())` as soon as `stop` resolves.
pub async fn follow_log_until<F>(
    path: &Path,
    follow: bool,
    out: &mut (dyn AsyncWrite + Unpin + Send),
    stop: F,
) -> io::Result<()>
where
    F: Future<Output = ()>,
{
    const POLL: Duration = Duration::from_millis(50);
    tokio::pin!(stop);
    let mut buf = vec![0u8; 64 * 1024];
    'reopen: loop {
        let mut file = loop {
            match tokio::fs::File::open(path).await {
                Ok(file) => break file,
                Err(err) if err.kind() == io::ErrorKind::NotFound && follow => {
                    tokio::select! {
                        () = &mut stop => return Ok(()),
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
                Err(err) => return Err(err),
            }
        };
        let inode = file.metadata().await?.ino();
        let mut pos: u64 = 0;
        loop {
            let n = file.read(&mut buf).await?;
            if n > 0 {
                out.write_all(&buf[..n]).await?;
                out.flush().await?;
                pos += n as u64;
                continue;
            }
            if !follow {
                return Ok(());
            }
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(POLL) => {}
            }
            match tokio::fs::metadata(path).await {
                // Rotated: the old file was read to its end; start the new one.
                Ok(meta) if meta.ino() != inode => continue 'reopen,
                // Truncated in place: start again from the beginning.
                Ok(meta) if meta.len() < pos => {
                    file.seek(SeekFrom::Start(0)).await?;
                    pos = 0;
                }
                Ok(_) => {}
                // Removed: wait for it to come back.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue 'reopen,
                Err(err) => return Err(err),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn write(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    #[test]
    fn tail_small_cases() {
        let f = write("a\nb\nc\n");
        assert_eq!(log_tail(f.path(), 2).unwrap(), "b\nc\n");
        assert_eq!(log_tail(f.path(), 3).unwrap(), "a\nb\nc\n");
        assert_eq!(log_tail(f.path(), 10).unwrap(), "a\nb\nc\n");
        assert_eq!(log_tail(f.path(), 0).unwrap(), "");
        let g = write("a\nb\nc");
        assert_eq!(log_tail(g.path(), 1).unwrap(), "c");
        assert_eq!(log_tail(g.path(), 2).unwrap(), "b\nc");
        let e = write("");
        assert_eq!(log_tail(e.path(), 5).unwrap(), "");
    }

    #[test]
    fn tail_large_file_reads_only_the_end() {
        let mut content = String::new();
        for i in 0..200_000 {
            content.push_str(&format!("line number {i} with some padding text\n"));
        }
        let f = write(&content);
        let tail = log_tail(f.path(), 3).unwrap();
        assert_eq!(
            tail,
            "line number 199997 with some padding text\nline number 199998 with some padding text\nline number 199999 with some padding text\n"
        );
        // Spanning several 64 KiB blocks.
        let tail = log_tail(f.path(), 5000).unwrap();
        assert_eq!(tail.lines().count(), 5000);
        assert!(tail.starts_with("line number 195000 "));
    }

    #[test]
    fn sink_survives_unwritable_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, "x").unwrap();
        // Parent is a regular file: opening fails, writes are dropped, no panic.
        let mut sink = LogSink::open(&blocker.join("log"));
        sink.write_line("dropped");
        copy_lines(&b"one\ntwo\n"[..], &mut sink, &Redactor::default());
    }

    #[test]
    fn copy_lines_redacts_and_strips_cr() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/log");
        let mut sink = LogSink::open(&path);
        copy_lines(
            &b"secret=swordfish\r\nplain\nlast no newline"[..],
            &mut sink,
            &Redactor::new(&["swordfish".into()]),
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "secret=[redacted]\nplain\nlast no newline\n"
        );
    }
}
