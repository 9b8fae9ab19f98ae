//! Slack slash commands (`POST /chat/slack`): verification of Slack's
//! signing-secret scheme (v0) and parsing of the form-encoded body.
//!
//! Owns: the v0 basestring (`v0:{X-Slack-Request-Timestamp}:{raw body}`),
//! HMAC-SHA256 keyed by the app's signing secret, compared in constant time
//! against `X-Slack-Signature: v0=<hex>`; the replay window
//! ([`MAX_SKEW_SECS`], five minutes either way, against a `now` the caller
//! passes in); and [`SlashCommand`], the fields greenroom reads from the body.
//! Must never: read a clock, log, or put the secret, a computed MAC or the
//! presented signature into an error; panic on any input. The legacy
//! verification `token` in the body is never read (signatures replace it),
//! and `response_url` (a capability URL) is redacted from `Debug`.
//!
//! ```
//! use greenroom_webhook::slack::{parse_slash_command, sign, verify};
//!
//! let body = b"user_id=U1&user_name=ann&command=%2Fgreenroom&text=status";
//! let now = 1_700_000_000;
//! let headers = [
//!     ("X-Slack-Request-Timestamp", now.to_string()),
//!     ("X-Slack-Signature", sign(b"s3cret", now, body)),
//! ];
//! verify(b"s3cret", &headers, body, now)?; // 401 on Err
//! let cmd = parse_slash_command(body)?; // 400 on Err
//! assert_eq!(cmd.text, "status");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::headers::{HeaderLookup, value};
use crate::verify::{decode_hex, new_mac};
use hmac::Mac;
use serde::Deserialize;
use std::fmt;

/// Slack: `v0=<64 hex digits>`, HMAC-SHA256 of the v0 basestring.
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";
/// Slack: the request's time, in seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";
/// Requests whose timestamp is further than this from `now` (either way)
/// are refused as possible replays: Slack's documented five minutes.
pub const MAX_SKEW_SECS: i64 = 5 * 60;
/// Largest slash-command body accepted, in bytes. Slack's are a few hundred
/// bytes (the command text is at most 4,000 characters).
pub const MAX_BODY: usize = 64 * 1024;

/// Why a slash-command request was refused. Verification failures are
/// answered 401 (413 for an oversized body), parse failures 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// The body exceeds [`MAX_BODY`]; checked before hashing.
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// Body size received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A header Slack always sends is absent or blank.
    #[error("missing header {header}")]
    MissingHeader {
        /// Header name.
        header: &'static str,
    },
    /// `X-Slack-Request-Timestamp` is not whole seconds since the epoch.
    #[error("malformed header {TIMESTAMP_HEADER}: expected whole seconds since the Unix epoch")]
    MalformedTimestamp,
    /// The timestamp is more than [`MAX_SKEW_SECS`] from `now`.
    #[error(
        "request timestamp {timestamp} is {skew} seconds {direction} the server's clock; at most {MAX_SKEW_SECS} \
         seconds are accepted (a replayed request, or a clock that is wrong)",
        direction = if *.skew_is_past { "behind" } else { "ahead of" }
    )]
    StaleTimestamp {
        /// The timestamp presented.
        timestamp: i64,
        /// How far from `now`, in seconds.
        skew: i64,
        /// Whether the timestamp is in the past (else in the future).
        skew_is_past: bool,
    },
    /// `X-Slack-Signature` is not `v0=` followed by 64 hex digits.
    #[error("malformed header {SIGNATURE_HEADER}: {reason}")]
    MalformedSignature {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A well-formed signature that does not match.
    #[error(
        "signature in {SIGNATURE_HEADER} does not match (wrong signing secret, or the body or timestamp was altered)"
    )]
    SignatureMismatch,
    /// The body is not `application/x-www-form-urlencoded` as expected.
    #[error("malformed slash-command body: {reason}")]
    MalformedBody {
        /// The decoder's description.
        reason: String,
    },
    /// A field greenroom needs is absent or empty.
    #[error("slash-command body has no `{field}`")]
    MissingField {
        /// Form field name.
        field: &'static str,
    },
}

impl SlackError {
    /// HTTP status to answer with: 413 oversized, 400 for a body that
    /// verified but does not parse, 401 for every verification failure.
    pub fn http_status(&self) -> u16 {
        match self {
            SlackError::BodyTooLarge { .. } => 413,
            SlackError::MalformedBody { .. } | SlackError::MissingField { .. } => 400,
            _ => 401,
        }
    }
}

/// The `X-Slack-Signature` value Slack would send for `body` at `timestamp`
/// (seconds) under `secret`: `v0=<64 lower-case hex digits>`. For tests and tools.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let bytes: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = String::with_capacity(3 + 64);
    out.push_str("v0=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Verifies one Slack request: body size, both headers present and well
/// formed, the timestamp within [`MAX_SKEW_SECS`] of `now` (seconds since
/// the epoch, from the caller's clock), then the HMAC over
/// `v0:{timestamp}:{body}` in constant time.
pub fn verify<H: HeaderLookup + ?Sized>(secret: &[u8], headers: &H, body: &[u8], now: i64) -> Result<(), SlackError> {
    if body.len() > MAX_BODY {
        return Err(SlackError::BodyTooLarge {
            size: body.len(),
            limit: MAX_BODY,
        });
    }
    let ts_text = value(headers, TIMESTAMP_HEADER).ok_or(SlackError::MissingHeader {
        header: TIMESTAMP_HEADER,
    })?;
    let signature = value(headers, SIGNATURE_HEADER).ok_or(SlackError::MissingHeader {
        header: SIGNATURE_HEADER,
    })?;
    // Digits only (no sign, no fraction), and few enough to fit: the
    // basestring must use the header exactly as sent.
    if ts_text.is_empty() || ts_text.len() > 15 || !ts_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SlackError::MalformedTimestamp);
    }
    let timestamp: i64 = ts_text.parse().map_err(|_| SlackError::MalformedTimestamp)?;
    let Some(hex) = signature.strip_prefix("v0=") else {
        return Err(SlackError::MalformedSignature {
            reason: "expected `v0=` followed by 64 hex digits",
        });
    };
    let Some(presented) = decode_hex(hex) else {
        return Err(SlackError::MalformedSignature {
            reason: "the signature is not hexadecimal",
        });
    };
    if hex.len() != 64 || presented.len() != 32 {
        return Err(SlackError::MalformedSignature {
            reason: "expected 64 hex digits (HMAC-SHA256)",
        });
    }
    let skew = now.saturating_sub(timestamp);
    if skew.saturating_abs() > MAX_SKEW_SECS {
        return Err(SlackError::StaleTimestamp {
            timestamp,
            skew: skew.saturating_abs(),
            skew_is_past: skew > 0,
        });
    }
    let mut mac = new_mac(secret);
    mac.update(b"v0:");
    mac.update(ts_text.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&presented).map_err(|_| SlackError::SignatureMismatch)
}

/// The fields of a slash-command request greenroom reads.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct SlashCommand {
    /// Workspace id (`T…`).
    #[serde(default)]
    pub team_id: String,
    /// Channel id where the command was typed.
    #[serde(default)]
    pub channel_id: String,
    /// The Slack user id (`U…`/`W…`): who is asking. Never empty.
    #[serde(default)]
    pub user_id: String,
    /// The user's display handle (informational; never used to authorize).
    #[serde(default)]
    pub user_name: String,
    /// The command as invoked (`/greenroom`). Never empty.
    #[serde(default)]
    pub command: String,
    /// What follows the command (may be empty).
    #[serde(default)]
    pub text: String,
    /// Where delayed answers may be posted (a capability URL: redacted in `Debug`).
    #[serde(default)]
    pub response_url: Option<String>,
}

impl fmt::Debug for SlashCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlashCommand")
            .field("team_id", &self.team_id)
            .field("channel_id", &self.channel_id)
            .field("user_id", &self.user_id)
            .field("user_name", &self.user_name)
            .field("command", &self.command)
            .field("text", &self.text)
            .field("response_url", &self.response_url.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Parses a slash-command body (`application/x-www-form-urlencoded`). Call
/// [`verify`] first, on the same bytes. Unknown fields are ignored.
pub fn parse_slash_command(body: &[u8]) -> Result<SlashCommand, SlackError> {
    if body.len() > MAX_BODY {
        return Err(SlackError::BodyTooLarge {
            size: body.len(),
            limit: MAX_BODY,
        });
    }
    let cmd: SlashCommand = serde_urlencoded::from_bytes(body).map_err(|e| SlackError::MalformedBody {
        reason: e.to_string().chars().take(200).collect(),
    })?;
    if cmd.user_id.trim().is_empty() {
        return Err(SlackError::MissingField { field: "user_id" });
    }
    if cmd.command.trim().is_empty() {
        return Err(SlackError::MissingField { field: "command" });
    }
    Ok(cmd)
}

/// Undoes the three escapes Slack applies to message text (`&amp;`,
/// `&lt;`, `&gt;`), so that what people typed is what is parsed.
pub fn unescape_text(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Slack's worked example ("Verifying requests from Slack"); see
    // tests/data/SOURCES.md at the repository root.
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: i64 = 1_531_420_618;
    const BODY: &[u8] = include_bytes!("../../../tests/data/slack/slash_command.body");
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn headers(ts: &str, sig: &str) -> Vec<(String, String)> {
        vec![
            (TIMESTAMP_HEADER.to_string(), ts.to_string()),
            (SIGNATURE_HEADER.to_string(), sig.to_string()),
        ]
    }

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(sign(SECRET, TS, BODY), SIGNATURE);
        let h = headers("1531420618", SIGNATURE);
        assert_eq!(verify(SECRET, &h, BODY, TS), Ok(()));
        // Anywhere within five minutes, either way; header names in any case.
        assert_eq!(verify(SECRET, &h, BODY, TS + 300), Ok(()));
        assert_eq!(verify(SECRET, &h, BODY, TS - 300), Ok(()));
        let lower = [
            ("x-slack-request-timestamp", "1531420618"),
            ("x-slack-signature", SIGNATURE),
        ];
        assert_eq!(verify(SECRET, &lower, BODY, TS), Ok(()));
        // Upper-case hex digits are the same signature.
        let upper = format!("v0={}", SIGNATURE[3..].to_ascii_uppercase());
        assert_eq!(verify(SECRET, &headers("1531420618", &upper), BODY, TS), Ok(()));
    }

    #[test]
    fn the_example_parses() {
        let c = parse_slash_command(BODY).unwrap();
        assert_eq!(c.user_id, "U2CERLKJA");
        assert_eq!(c.user_name, "roadrunner");
        assert_eq!(c.command, "/webhook-collect");
        assert_eq!(c.text, "");
        assert_eq!(c.channel_id, "G8PSS9T3V");
        assert_eq!(c.team_id, "T1DC2JH3J");
        assert_eq!(
            c.response_url.as_deref(),
            Some("https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN")
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("hooks.slack.com"), "{debug}");
        assert!(!debug.contains("xyzz0"), "{debug}");
    }

    #[test]
    fn expired_and_future_timestamps_are_refused() {
        let h = headers("1531420618", SIGNATURE);
        let e = verify(SECRET, &h, BODY, TS + 301).unwrap_err();
        assert_eq!(
            e,
            SlackError::StaleTimestamp {
                timestamp: TS,
                skew: 301,
                skew_is_past: true
            }
        );
        assert_eq!(e.http_status(), 401);
        assert!(e.to_string().contains("301 seconds behind"), "{e}");
        let e = verify(SECRET, &h, BODY, TS - 3600).unwrap_err();
        assert!(e.to_string().contains("3600 seconds ahead of"), "{e}");
        // Far-off values never overflow.
        assert!(verify(SECRET, &h, BODY, i64::MIN).is_err());
        assert!(verify(SECRET, &h, BODY, i64::MAX).is_err());
    }

    #[test]
    fn bad_timestamps_are_refused() {
        for ts in [
            "-1531420618",
            "1531420618.5",
            "soon",
            "+1531420618",
            "1e9",
            "9999999999999999",
        ] {
            let e = verify(SECRET, &headers(ts, SIGNATURE), BODY, TS).unwrap_err();
            assert_eq!(e, SlackError::MalformedTimestamp, "{ts}");
        }
        // A timestamp changed by one second breaks the signature (when still fresh).
        let e = verify(SECRET, &headers("1531420619", SIGNATURE), BODY, TS).unwrap_err();
        assert_eq!(e, SlackError::SignatureMismatch);
    }

    #[test]
    fn tampered_body_and_wrong_secret_are_refused() {
        let h = headers("1531420618", SIGNATURE);
        let mut tampered = BODY.to_vec();
        let at = tampered.len() - 1;
        tampered[at] ^= 1;
        assert_eq!(verify(SECRET, &h, &tampered, TS), Err(SlackError::SignatureMismatch));
        let tampered = String::from_utf8_lossy(BODY).replace("text=", "text=deploy");
        assert_eq!(
            verify(SECRET, &h, tampered.as_bytes(), TS),
            Err(SlackError::SignatureMismatch)
        );
        let e = verify(b"8f742231b10e8888abcd99yyyzzz85a6", &h, BODY, TS).unwrap_err();
        assert_eq!(e, SlackError::SignatureMismatch);
        assert_eq!(e.http_status(), 401);
        assert!(!e.to_string().contains("a2114d57"), "{e}");
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        let only_sig = [(SIGNATURE_HEADER, SIGNATURE)];
        assert_eq!(
            verify(SECRET, &only_sig, BODY, TS),
            Err(SlackError::MissingHeader {
                header: TIMESTAMP_HEADER
            })
        );
        let only_ts = [(TIMESTAMP_HEADER, "1531420618")];
        assert_eq!(
            verify(SECRET, &only_ts, BODY, TS),
            Err(SlackError::MissingHeader {
                header: SIGNATURE_HEADER
            })
        );
        for (sig, reason) in [
            (
                "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
                "expected `v0=`",
            ),
            (
                "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
                "expected `v0=`",
            ),
            (
                "v0=zz114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
                "not hexadecimal",
            ),
            ("v0=a2114d57", "64 hex digits"),
            (
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b50",
                "64 hex digits",
            ),
        ] {
            let e = verify(SECRET, &headers("1531420618", sig), BODY, TS).unwrap_err();
            assert!(matches!(e, SlackError::MalformedSignature { .. }), "{sig}: {e:?}");
            assert!(e.to_string().contains(reason), "{sig}: {e}");
            assert!(!e.to_string().contains("a2114d57"), "{e}");
        }
        let big = vec![b'a'; MAX_BODY + 1];
        let e = verify(SECRET, &headers("1531420618", SIGNATURE), &big, TS).unwrap_err();
        assert_eq!(e.http_status(), 413);
    }

    #[test]
    fn bodies_without_the_needed_fields_are_refused() {
        assert_eq!(
            parse_slash_command(b"command=%2Fgreenroom&text=help"),
            Err(SlackError::MissingField { field: "user_id" })
        );
        assert_eq!(
            parse_slash_command(b"user_id=U1&text=help"),
            Err(SlackError::MissingField { field: "command" })
        );
        let e = parse_slash_command(b"user_id=U1&user_id=U2&command=x").unwrap_err();
        assert_eq!(e.http_status(), 400, "{e}");
        let c = parse_slash_command(b"user_id=U1&command=%2Fg&text=deploy+staging+ogr%3D1").unwrap();
        assert_eq!(c.text, "deploy staging ogr=1");
        assert_eq!(c.response_url, None);
    }

    #[test]
    fn slack_escapes_are_undone() {
        assert_eq!(unescape_text("a &lt;b&gt; &amp;lt; c"), "a <b> &lt; c");
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            ts in "[0-9+\\-. a-z]{0,20}",
            sig in "(v0=)?[0-9a-fA-Fxz]{0,70}",
            now in any::<i64>(),
        ) {
            let h = headers(&ts, &sig);
            let verdict = verify(SECRET, &h, &body, now);
            prop_assert!(verdict.is_err());
            let _ = parse_slash_command(&body);
        }

        #[test]
        fn what_is_signed_verifies(body in proptest::collection::vec(any::<u8>(), 0..300), ts in 0i64..4_000_000_000, drift in -300i64..=300) {
            let sig = sign(SECRET, ts, &body);
            prop_assert_eq!(verify(SECRET, &headers(&ts.to_string(), &sig), &body, ts + drift), Ok(()));
        }
    }
}
