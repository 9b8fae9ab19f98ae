//! HTML building blocks: escaping, the page frame, times, result badges.
//!
//! Pages are plain strings built with [`Html`]: literal markup goes in with
//! [`Html::raw`] (only ever `'static` text written here), every value from
//! outside (names, reasons, refs, errors, anything stored) with
//! [`Html::text`] or [`esc`], which escape `& < > " '`. Attribute values
//! are always double-quoted, so the same escaping is enough there; URLs are
//! built with [`url_part`] (percent-encoding) before they are escaped.

use greenroom_core::time::{self, Millis};
use std::fmt::Write;

/// Escapes text for HTML content and double-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value (everything but
/// unreserved characters).
pub fn url_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A page or fragment being written.
#[derive(Default)]
pub struct Html(String);

impl Html {
    /// An empty buffer.
    pub fn new() -> Html {
        Html(String::with_capacity(16 * 1024))
    }

    /// Literal markup written in this module tree (never outside data).
    pub fn raw(&mut self, s: &'static str) -> &mut Html {
        self.0.push_str(s);
        self
    }

    /// Markup that was built by this module from escaped parts.
    pub fn built(&mut self, s: &Html) -> &mut Html {
        self.0.push_str(&s.0);
        self
    }

    /// Outside text, escaped.
    pub fn text(&mut self, s: &str) -> &mut Html {
        self.0.push_str(&esc(s));
        self
    }

    /// A number.
    pub fn num(&mut self, n: i64) -> &mut Html {
        let _ = write!(self.0, "{n}");
        self
    }

    /// `<a href="HREF">TEXT</a>`; `href` is escaped (build it with [`url_part`]).
    pub fn link(&mut self, href: &str, text: &str) -> &mut Html {
        let _ = write!(self.0, "<a href=\"{}\">{}</a>", esc(href), esc(text));
        self
    }

    /// A time: absolute in UTC (with the zone) and relative to `now`, with a
    /// machine-readable `datetime`.
    pub fn time(&mut self, at: Millis, now: Millis) -> &mut Html {
        let abs = time::format(at);
        let _ = write!(
            self.0,
            "<time datetime=\"{a}\" title=\"{a}\">{r}</time> <span class=\"abs\">({h} UTC)</span>",
            a = esc(&abs),
            r = esc(&time::relative(at, now)),
            h = esc(abs.replace('T', " ").trim_end_matches('Z')),
        );
        self
    }

    /// A result shown by word, symbol and colour (never colour alone).
    pub fn badge(&mut self, result: &str) -> &mut Html {
        let (class, sym) = match result {
            "succeeded" | "ok" | "running" | "done" | "passed" | "built" | "cached" => ("ok", "✓"),
            "failed" | "fenced" | "error" | "refused" | "dead" => ("bad", "✗"),
            "interrupted" | "cancelled" | "skipped" | "not-reached" | "carried" | "keep" | "carry" => ("meh", "–"),
            _ => ("info", "•"),
        };
        let _ = write!(
            self.0,
            "<span class=\"badge {class}\"><span aria-hidden=\"true\">{sym}</span> {}</span>",
            esc(result)
        );
        self
    }

    /// The text so far.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// RFC 3339 text (as the views carry it) back to milliseconds.
pub fn parse_time(s: &str) -> Option<Millis> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// Short commit (12 hex digits).
pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The navigation and who is signed in, around `body`.
pub struct Frame<'a> {
    /// `<title>` and `<h1>`.
    pub title: &'a str,
    /// Signed-in user's name and highest role.
    pub user: Option<(&'a str, &'a str)>,
    /// The CSRF token for the sign-out form.
    pub csrf: Option<&'a str>,
    /// A one-time notice (after an action).
    pub notice: Option<&'a str>,
    /// Live updates for this page (`data-live`).
    pub live: bool,
}

/// The whole page.
pub fn page(f: &Frame<'_>, body: &Html) -> String {
    let mut h = Html::new();
    h.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<title>")
        .text(f.title)
        .raw(" · greenroom</title>")
        .raw("<link rel=\"stylesheet\" href=\"/assets/dashboard.css\">")
        .raw("<script src=\"/assets/dashboard.js\" defer></script></head><body>")
        .raw("<a class=\"skip\" href=\"#main\">Skip to content</a>")
        .raw("<header><nav aria-label=\"Main\"><a class=\"brand\" href=\"/\">greenroom</a><ul>")
        .raw("<li><a href=\"/\">Environments</a></li><li><a href=\"/cycles\">History</a></li>")
        .raw("<li><a href=\"/audit\">Audit</a></li><li><a href=\"/diff\">Diff</a></li>")
        .raw("<li><a href=\"/pr\">Pull requests</a></li></ul>");
    match (f.user, f.csrf) {
        (Some((name, role)), Some(csrf)) => {
            h.raw("<form class=\"who\" method=\"post\" action=\"/logout\"><span>Signed in as <strong>")
                .text(name)
                .raw("</strong> (")
                .text(role)
                .raw(")</span> <input type=\"hidden\" name=\"csrf\" value=\"")
                .text(csrf)
                .raw("\"><button type=\"submit\">Sign out</button></form>");
        }
        _ => {
            h.raw("<a class=\"who\" href=\"/login\">Sign in</a>");
        }
    }
    h.raw("</nav></header><main id=\"main\" tabindex=\"-1\"><h1>")
        .text(f.title)
        .raw("</h1>");
    if let Some(n) = f.notice {
        h.raw("<p class=\"notice\" role=\"status\">").text(n).raw("</p>");
    }
    if f.live {
        h.raw("<p class=\"live-state\"><span id=\"live-status\" role=\"status\" aria-live=\"polite\">")
            .raw("Live updates need JavaScript; reload to refresh.</span></p>")
            .raw("<div id=\"live\" data-live=\"1\">");
    } else {
        h.raw("<div>");
    }
    h.built(body).raw("</div></main></body></html>\n");
    h.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        let mut h = Html::new();
        h.link("/cycles?environment=a&b", "<b>");
        assert_eq!(h.into_string(), "<a href=\"/cycles?environment=a&amp;b\">&lt;b&gt;</a>");
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(url_part("a b/c?d=\"e\""), "a%20b%2Fc%3Fd%3D%22e%22");
        assert_eq!(url_part("dev-1_x.y~"), "dev-1_x.y~");
    }

    #[test]
    fn times_are_relative_and_absolute_with_the_zone() {
        let mut h = Html::new();
        h.time(60_000, 180_000);
        let s = h.into_string();
        assert!(s.contains("2m ago"), "{s}");
        assert!(s.contains("1970-01-01 00:01:00 UTC"), "{s}");
        assert!(s.contains("datetime=\"1970-01-01T00:01:00Z\""), "{s}");
        assert_eq!(parse_time("1970-01-01T00:01:00Z"), Some(60_000));
    }

    #[test]
    fn badges_carry_words_not_only_colour() {
        let mut h = Html::new();
        h.badge("failed");
        let s = h.into_string();
        assert!(s.contains("failed") && s.contains("class=\"badge bad\""), "{s}");
    }
}
