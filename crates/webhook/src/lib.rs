//! greenroom's webhook intake: verification and parsing of webhook deliveries.
//!
//! Owns: turning one delivery (request headers + raw body bytes) from GitHub,
//! GitLab or greenroom's own generic package endpoint into
//!
//! 1. a verification verdict ([`Verifier::verify`]: HMAC-SHA256 signatures for
//!    GitHub and the package endpoint, the shared token for GitLab, always
//!    compared in constant time), and
//! 2. one normalized [`Delivery`] ([`parse`]) whose [`EventKind`] the server
//!    matches against components and feeds to the scheduling policy.
//!
//! Must never: perform I/O, touch the network, read a clock or the
//! environment, log, or panic on any input. Secrets are handed in as bytes by
//! the caller (which resolves `env:`/`file:`), and never appear in `Debug`
//! output or error messages.
//!
//! Typical use by the HTTP layer:
//!
//! ```
//! use greenroom_webhook::{parse, sign_github, EventKind, Forge, Secret, Verifier};
//!
//! let body = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
//! let signature = sign_github(b"s3cret", body);
//! let headers = [
//!     ("X-GitHub-Event", "ping"),
//!     ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
//!     ("X-Hub-Signature-256", signature.as_str()),
//! ];
//! let verifier = Verifier::new().with_secret(Forge::Github, Secret::new(b"s3cret".to_vec())?);
//! verifier.verify(Forge::Github, &headers, body)?; // 401 on Err
//! let delivery = parse(Forge::Github, &headers, body)?; // status from WebhookError::http_status on Err
//! assert_eq!(delivery.kind, EventKind::Ping);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod event;
mod github;
mod gitlab;
pub mod headers;
mod json;
mod package;
pub mod slack;
mod verify;

pub use error::{VerifyError, WebhookError};
pub use event::{Delivery, EventKind, Forge};
pub use headers::HeaderLookup;
pub use package::PackageEvent;
pub use verify::{
    EmptySecretError, Secret, Verdict, Verifier, sign_github, sign_package, verify_gitlab_token,
    verify_hmac_sha256_header,
};

/// Largest body accepted, in bytes: 25 MiB, GitHub's cap on webhook payloads.
///
/// Checked before any hashing or parsing; the HTTP layer should also cap the
/// request body at this size so that an oversized request is never buffered
/// whole (answer 413).
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// Parses one delivery from `forge` into a normalized [`Delivery`].
///
/// `headers` are the request headers (looked up case-insensitively), `body`
/// the raw request body exactly as received. This does **not** verify the
/// delivery: call [`Verifier::verify`] first, on the same bytes.
///
/// Order of checks: body size ([`MAX_BODY`]), event header, delivery id,
/// whether the event is one greenroom knows (an unknown event is
/// [`WebhookError::UnknownEvent`] without looking at the body), then the JSON.
/// Events greenroom knows but ignores still have their body checked for being
/// well-formed JSON and come back as [`EventKind::Other`].
pub fn parse<H: HeaderLookup + ?Sized>(forge: Forge, headers: &H, body: &[u8]) -> Result<Delivery, WebhookError> {
    if body.len() > MAX_BODY {
        return Err(WebhookError::BodyTooLarge {
            size: body.len(),
            limit: MAX_BODY,
        });
    }
    match forge {
        Forge::Github => github::parse(headers, body),
        Forge::Gitlab => gitlab::parse(headers, body),
        Forge::Package => package::parse(headers, body),
    }
}
