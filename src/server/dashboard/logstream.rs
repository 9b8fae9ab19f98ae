//! `GET /cycles/{id}/logs/{component}/{build|run}/stream`: a component's
//! log streamed line by line as server-sent events while its cycle runs.
//!
//! The log page renders the log's tail up to its last complete line
//! ([`page_tail`]) and passes that byte offset (`?from=N`); the stream
//! sends what follows, so nothing is lost or doubled. Every `log` event
//! carries the exact text to append (whole lines with their newlines, or a
//! piece of a line longer than [`MAX_EVENT`] bytes) and, as its `id`, the
//! byte offset just after it: a browser that reconnects sends it back as
//! `Last-Event-ID`, which wins over `from`. A partial last line waits for
//! its newline unless the cycle ended. The file is polled every 250 ms
//! (the store, for whether the cycle ended, at most once a second, always
//! before the read that may end the stream); when the cycle has finished
//! and the file is read to its end, an `end` event closes the stream.
//!
//! Bounded: at most [`MAX_EVENT`] bytes of log per event, [`READ_MAX`] per
//! read, at most [`MAX_STREAMS`] open streams per server (503 beyond), an
//! offset more than [`MAX_CATCHUP`] behind starts at the tail instead (a
//! `skipped` event says how much was left out), 10 minutes per stream (the
//! browser reconnects from its last id), and every stream ends when the
//! server is asked to stop. Same permission and state-directory check as
//! the log page (`pages::log_target`).

use super::Dash;
use super::pages::log_target;
use crate::server::Shared;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Bytes of a log's end shown on the log page (and streamed when no
/// offset is given).
pub const LOG_TAIL: u64 = 64 * 1024;
/// Most bytes of log text in one event.
pub const MAX_EVENT: usize = 16 * 1024;
/// Most bytes read from the file at once.
pub const READ_MAX: usize = 64 * 1024;
/// Most log streams open at once on a server.
pub const MAX_STREAMS: usize = 32;
/// An offset further behind the end than this starts at the tail.
pub const MAX_CATCHUP: u64 = 4 * 1024 * 1024;
/// How often the file is looked at.
const POLL: Duration = Duration::from_millis(250);
/// How often the store is asked whether the cycle ended.
const CHECK: Duration = Duration::from_secs(1);
/// Longest life of one stream (the browser reconnects from its last id).
const STREAM_LIFETIME: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------------------
// The open streams of a server.

/// Counts the open log streams.
#[derive(Default)]
pub struct Slots(Arc<AtomicUsize>);

/// One open stream; gives its place back when dropped.
pub struct Slot(Arc<AtomicUsize>);

impl Slots {
    /// A place for one more stream, if fewer than `max` are open.
    pub fn take(&self, max: usize) -> Option<Slot> {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Slot(self.0.clone()))
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------
// Framing (pure).

/// Text to append, and the byte offset just after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The text, with its newlines (`\r\n` and a lone `\r` made `\n`).
    pub text: String,
    /// The file offset after it (the event's id).
    pub end: u64,
}

/// Log text as sent: invalid UTF-8 replaced, `\r\n` and a lone `\r` made
/// `\n` (SSE takes both as line ends).
pub fn clean(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if !text.contains('\r') {
        return text.into_owned();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The longest prefix of `b` of at most `max` bytes that does not end
/// inside a UTF-8 character (`max` itself when `b` is not UTF-8 there).
fn char_cut(b: &[u8], max: usize) -> usize {
    if b.len() <= max {
        return b.len();
    }
    let mut n = max;
    while n > 0 && max - n < 4 && (b[n] & 0xC0) == 0x80 {
        n -= 1;
    }
    if n == 0 || max - n >= 4 { max } else { n }
}

/// The events for `buf`, the file's bytes from offset `start`: whole lines,
/// at most `cap` bytes per event (several lines in one when they fit; a
/// line longer than `cap` in pieces). A partial last line shorter than
/// `cap` is left for later unless `last` (the cycle ended and `buf` runs to
/// the file's end). The bytes covered end at the last chunk's `end`.
pub fn frame(buf: &[u8], start: u64, last: bool, cap: usize) -> Vec<Chunk> {
    let cap = cap.max(4);
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let window = &rest[..rest.len().min(cap)];
        let take = match window.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if rest.len() > cap => char_cut(rest, cap),
            None if last => rest.len(),
            None => break,
        };
        pos += take;
        out.push(Chunk {
            text: clean(&rest[..take]),
            end: start + u64::try_from(pos).unwrap_or(u64::MAX),
        });
    }
    out
}

/// Where text starts in `buf` read from the middle of a file: after its
/// first newline (the first line is cut), or 0 when it has none.
fn line_start(buf: &[u8]) -> usize {
    buf.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1)
}

// ---------------------------------------------------------------------------
// Reading the file.

/// A log's end as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageTail {
    /// The text (from a line's start).
    pub text: String,
    /// Whether earlier lines were left out.
    pub cut: bool,
    /// The offset after the text (where the stream goes on).
    pub end: u64,
}

/// At most the last [`LOG_TAIL`] bytes of a log, from a line's start; with
/// `whole_lines` (the cycle runs: the stream goes on), up to the last
/// newline only.
pub fn page_tail(path: &std::path::Path, whole_lines: bool) -> std::io::Result<PageTail> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let from = len.saturating_sub(LOG_TAIL);
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    f.take(LOG_TAIL).read_to_end(&mut buf)?;
    let skip = if from > 0 { line_start(&buf) } else { 0 };
    let stop = if whole_lines {
        buf.iter()
            .rposition(|&b| b == b'\n')
            .map_or(skip, |i| (i + 1).max(skip))
    } else {
        buf.len()
    };
    Ok(PageTail {
        text: String::from_utf8_lossy(&buf[skip..stop]).into_owned(),
        cut: from > 0,
        end: from + u64::try_from(stop).unwrap_or(0),
    })
}

/// Where a stream starts: `from` when the file has it and it is not too
/// far behind; else the start of the tail's first whole line. Returns the
/// offset and how many bytes after `from` are skipped.
pub fn start_offset(path: &std::path::Path, from: Option<u64>) -> std::io::Result<(u64, u64)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    match from {
        // The file was replaced by a shorter one: all of it is new.
        Some(n) if n > len => return Ok((0, 0)),
        Some(n) if len - n <= MAX_CATCHUP => return Ok((n, 0)),
        _ => {}
    }
    let tail = len.saturating_sub(LOG_TAIL);
    let mut at = tail;
    if tail > 0 {
        f.seek(SeekFrom::Start(tail))?;
        let mut buf = Vec::new();
        f.take(LOG_TAIL).read_to_end(&mut buf)?;
        at = tail + u64::try_from(line_start(&buf)).unwrap_or(0);
    }
    Ok((at, from.map_or(0, |n| at.saturating_sub(n))))
}

/// At most `max` bytes from `offset`, and the file's length.
fn read_at(path: &std::path::Path, offset: u64, max: usize) -> std::io::Result<(Vec<u8>, u64)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if offset >= len {
        return Ok((Vec::new(), len));
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(max.min(usize::try_from(len - offset).unwrap_or(max)));
    f.take(u64::try_from(max).unwrap_or(u64::MAX)).read_to_end(&mut buf)?;
    Ok((buf, len))
}

// ---------------------------------------------------------------------------
// The endpoint.

/// `?from=N`: the byte offset the page rendered up to.
#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    from: Option<u64>,
}

/// `Last-Event-ID`, when it is an offset.
fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn plain(code: StatusCode, msg: String) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg + "\n").into_response()
}

/// A stream's state between two events.
struct Tail {
    s: Arc<Shared>,
    cycle: i64,
    path: PathBuf,
    offset: u64,
    queue: VecDeque<Event>,
    finished: bool,
    checked: Option<Instant>,
    done: bool,
    _slot: Slot,
}

async fn cycle_finished(s: &Shared, id: i64) -> bool {
    match s.app.store.cycle(id).await {
        Ok(Some(c)) => c.result != "running",
        Ok(None) => true,
        Err(e) => {
            tracing::warn!("dashboard: log stream cannot read cycle {id}: {e}");
            false
        }
    }
}

impl Tail {
    /// Reads what is new and queues its events (and `end` once done);
    /// false when there was nothing to send.
    async fn step(&mut self) -> bool {
        if !self.finished && self.checked.is_none_or(|t| t.elapsed() >= CHECK) {
            // Before the read: lines written before the cycle ended are
            // then read by this very step or a later one.
            self.finished = cycle_finished(&self.s, self.cycle).await;
            self.checked = Some(Instant::now());
        }
        let (path, offset) = (self.path.clone(), self.offset);
        let read = tokio::task::spawn_blocking(move || read_at(&path, offset, READ_MAX)).await;
        let (buf, len) = match read {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.queue.push_back(
                    Event::default()
                        .event("gone")
                        .data(format!("the log cannot be read any more: {}", e.kind())),
                );
                self.done = true;
                return true;
            }
            Err(_) => return false,
        };
        if len < self.offset {
            // Replaced by a shorter file: start it again.
            self.offset = 0;
            return false;
        }
        let at_end = self.offset + u64::try_from(buf.len()).unwrap_or(u64::MAX) >= len;
        let last = self.finished && at_end;
        for c in frame(&buf, self.offset, last, MAX_EVENT) {
            self.offset = c.end;
            self.queue
                .push_back(Event::default().event("log").id(c.end.to_string()).data(c.text));
        }
        if last {
            self.queue.push_back(
                Event::default()
                    .event("end")
                    .id(self.offset.to_string())
                    .data("the cycle finished; the log is complete"),
            );
            self.done = true;
        }
        !self.queue.is_empty()
    }
}

/// `GET /cycles/{id}/logs/{component}/{which}/stream`.
pub async fn stream(
    State(s): State<Arc<Shared>>,
    Extension(d): Extension<Arc<Dash>>,
    headers: HeaderMap,
    Path((id, component, which)): Path<(i64, String, String)>,
    Query(q): Query<StreamQuery>,
) -> Response {
    let Some(v) = d.sessions.viewer(&s, &headers).await else {
        return plain(StatusCode::UNAUTHORIZED, "sign in first".into());
    };
    let (_, path) = match log_target(&s, &v, id, &component, &which).await {
        Ok(x) => x,
        Err(e) => return plain(e.0, e.1),
    };
    let Some(path) = path else {
        return plain(
            StatusCode::NOT_FOUND,
            "the log is gone: removed by retention, or never written".into(),
        );
    };
    let Some(slot) = d.log_streams.take(MAX_STREAMS) else {
        let mut r = plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many live logs are open on this server (at most {MAX_STREAMS}); reload the page later"),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("10"));
        return r;
    };
    let from = last_event_id(&headers).or(q.from);
    let p = path.clone();
    let (offset, skipped) = match tokio::task::spawn_blocking(move || start_offset(&p, from)).await {
        Ok(Ok(x)) => x,
        _ => {
            return plain(StatusCode::NOT_FOUND, "the log cannot be read".into());
        }
    };
    let mut queue = VecDeque::new();
    // Tell the page at once that it is connected (and to reconnect after 2 s).
    queue.push_back(
        Event::default()
            .event("hello")
            .data("connected")
            .retry(Duration::from_secs(2)),
    );
    if skipped > 0 {
        queue.push_back(
            Event::default()
                .event("skipped")
                .id(offset.to_string())
                .data(skipped.to_string()),
        );
    }
    let tail = Tail {
        s: s.clone(),
        cycle: id,
        path,
        offset,
        queue,
        finished: false,
        checked: None,
        done: false,
        _slot: slot,
    };
    let events = futures_util::stream::unfold(tail, |mut t| async move {
        loop {
            if let Some(e) = t.queue.pop_front() {
                return Some((Ok::<Event, std::convert::Infallible>(e), t));
            }
            if t.done {
                return None;
            }
            if !t.step().await {
                tokio::time::sleep(POLL).await;
            }
        }
    });
    let deadline = Instant::now() + STREAM_LIFETIME;
    let stop = async move {
        tokio::select! {
            _ = crate::server::shutdown_signal() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    };
    let mut r = Sse::new(events.take_until(Box::pin(stop)))
        .keep_alive(KeepAlive::default())
        .into_response();
    r.headers_mut()
        .insert("x-accel-buffering", axum::http::HeaderValue::from_static("no"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(c: &[Chunk]) -> Vec<(&str, u64)> {
        c.iter().map(|c| (c.text.as_str(), c.end)).collect()
    }

    #[test]
    fn whole_lines_from_an_offset_with_their_end_offsets() {
        let buf = b"two\nthree\nfour";
        // The file's bytes from offset 4 ("one\n" was sent already).
        let c = frame(buf, 4, false, 6);
        assert_eq!(texts(&c), vec![("two\n", 8), ("three\n", 14)], "the partial line waits");
        // Several lines fit in one event.
        let c = frame(buf, 4, false, 1024);
        assert_eq!(texts(&c), vec![("two\nthree\n", 14)]);
        // The cycle ended: the partial last line goes too.
        let c = frame(buf, 4, true, 1024);
        assert_eq!(texts(&c), vec![("two\nthree\n", 14), ("four", 18)]);
        assert!(frame(b"", 9, true, 10).is_empty());
        assert!(frame(b"no newline yet", 0, false, 1024).is_empty());
    }

    #[test]
    fn partial_lines_resume_where_they_stopped() {
        // Written in three goes: "ab", then "c\nd", then "e\n".
        let mut file = Vec::new();
        let mut offset = 0u64;
        let mut got = String::new();
        for piece in [&b"ab"[..], b"c\nd", b"e\n"] {
            file.extend_from_slice(piece);
            let from = usize::try_from(offset).expect("small");
            for c in frame(&file[from..], offset, false, 1024) {
                got.push_str(&c.text);
                offset = c.end;
            }
        }
        assert_eq!(got, "abc\nde\n");
        assert_eq!(offset, 7);
    }

    #[test]
    fn long_lines_are_cut_on_character_boundaries_and_nothing_is_lost() {
        let line = format!("{}\n", "é".repeat(10)); // 21 bytes
        let c = frame(line.as_bytes(), 100, false, 5);
        assert!(c.iter().all(|c| c.text.len() <= 5), "{c:?}");
        assert!(c.iter().all(|c| !c.text.contains('\u{FFFD}')), "{c:?}");
        let joined: String = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(joined, line);
        assert_eq!(c.last().map(|c| c.end), Some(121));
        // Ids increase strictly.
        assert!(c.windows(2).all(|w| w[0].end < w[1].end));
    }

    #[test]
    fn carriage_returns_become_newlines() {
        let c = frame(b"a\r\nprogress 1\rprogress 2\n", 0, false, 1024);
        assert_eq!(texts(&c), vec![("a\nprogress 1\nprogress 2\n", 25)]);
        assert_eq!(clean(b"x\xffy"), "x\u{FFFD}y");
    }

    #[test]
    fn the_page_tail_ends_at_a_line_and_the_stream_goes_on_from_there() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("x.log");
        std::fs::write(&p, "one\ntwo\npart").expect("write");
        let t = page_tail(&p, true).expect("tail");
        assert_eq!((t.text.as_str(), t.cut, t.end), ("one\ntwo\n", false, 8));
        let t = page_tail(&p, false).expect("tail");
        assert_eq!((t.text.as_str(), t.end), ("one\ntwo\npart", 12));
        assert_eq!(start_offset(&p, Some(8)).expect("start"), (8, 0));
        assert_eq!(start_offset(&p, None).expect("start"), (0, 0));
        assert_eq!(
            start_offset(&p, Some(99)).expect("start"),
            (0, 0),
            "a shorter file starts again"
        );
        let (buf, len) = read_at(&p, 8, READ_MAX).expect("read");
        assert_eq!((buf.as_slice(), len), (&b"part"[..], 12));
        // A long log: the tail starts at a whole line, far offsets skip to it.
        let long: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &long).expect("write");
        let t = page_tail(&p, true).expect("tail");
        assert!(t.cut && t.text.starts_with("line ") && t.text.ends_with("line 19999\n"));
        assert_eq!(t.end, u64::try_from(long.len()).expect("len"));
        let (at, skipped) = start_offset(&p, None).expect("start");
        assert_eq!(at, t.end - u64::try_from(t.text.len()).expect("len"));
        assert_eq!(skipped, 0);
        assert_eq!(
            start_offset(&p, Some(0)).expect("start"),
            (0, 0),
            "within the catch-up limit"
        );
    }

    #[test]
    fn slots_are_bounded_and_given_back() {
        let slots = Slots::default();
        let a = slots.take(2).expect("first");
        let b = slots.take(2).expect("second");
        assert!(slots.take(2).is_none(), "a third is refused");
        drop(a);
        assert_eq!(slots.open(), 1);
        let _c = slots.take(2).expect("a place again");
        drop(b);
        assert_eq!(slots.open(), 1);
    }
}
