//! Time as plain data: milliseconds since the Unix epoch.
//!
//! Decision logic takes `now` as an argument of this type; only the edges
//! (the CLI, the engine's clock) ever read the system clock.

use std::time::Duration;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// Adds a duration to a timestamp, saturating instead of overflowing.
pub fn add(at: Millis, d: Duration) -> Millis {
    at.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Formats a timestamp as RFC 3339 in UTC with second precision.
pub fn format(at: Millis) -> String {
    let secs = u64::try_from(at.max(0) / 1000).unwrap_or(0);
    let t = std::time::UNIX_EPOCH + Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Formats a span of milliseconds in a short human form: `2h 5m`, `40s`, `850ms`.
pub fn format_span(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 10_000 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// Formats a timestamp relative to `now`: "in 1h 59m" or "3m ago".
pub fn relative(at: Millis, now: Millis) -> String {
    if at >= now {
        format!("in {}", format_span(at - now))
    } else {
        format!("{} ago", format_span(now - at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_people_write_them() {
        assert_eq!(format_span(850), "850ms");
        assert_eq!(format_span(2_500), "2.5s");
        assert_eq!(format_span(40_000), "40s");
        assert_eq!(format_span(120_000), "2m");
        assert_eq!(format_span(125_000), "2m 5s");
        assert_eq!(format_span(7_500_000), "2h 5m");
        assert_eq!(format_span(7_200_000), "2h");
        assert_eq!(relative(10_000, 0), "in 10s");
        assert_eq!(relative(0, 180_000), "3m ago");
    }

    #[test]
    fn formats_utc() {
        assert_eq!(format(0), "1970-01-01T00:00:00Z");
        assert_eq!(format(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }
}
