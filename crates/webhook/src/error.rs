//! Errors of verification ([`VerifyError`]) and parsing ([`WebhookError`]),
//! each with the HTTP status the server answers with.
//!
//! Owns: the wording of every rejection (what was wrong, and where).
//! Must never: include a secret, a signature or a token value in a message;
//! header values echoed back (event names) are truncated and debug-escaped.

use crate::event::Forge;
use thiserror::Error;

/// Why a delivery failed verification. Every variant but [`VerifyError::BodyTooLarge`]
/// is answered 401.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// The signature header is absent or blank.
    #[error("missing signature header {header}")]
    MissingSignature {
        /// Header name.
        header: &'static str,
    },
    /// The signature header is not `sha256=` followed by hexadecimal digits.
    #[error("malformed signature header {header}: {reason}")]
    MalformedSignature {
        /// Header name.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The signature has the wrong number of hex digits (SHA-256 needs 64).
    #[error("signature in {header} has {hex_digits} hex digits, expected 64 (HMAC-SHA256)")]
    WrongSignatureLength {
        /// Header name.
        header: &'static str,
        /// Hex digits found after `sha256=`.
        hex_digits: usize,
    },
    /// Well-formed signature that does not match the body and configured secret.
    #[error("signature in {header} does not match the body (wrong secret, or body altered)")]
    SignatureMismatch {
        /// Header name.
        header: &'static str,
    },
    /// The GitLab token header is absent or blank.
    #[error("missing token header {header}")]
    MissingToken {
        /// Header name.
        header: &'static str,
    },
    /// The GitLab token does not equal the configured secret.
    #[error("token in {header} does not match the configured secret")]
    TokenMismatch {
        /// Header name.
        header: &'static str,
    },
    /// No secret is configured for this forge and unsigned deliveries are not allowed.
    #[error("no webhook secret configured for {forge} and unsigned deliveries are refused (allow_unsigned is off)")]
    UnsignedRefused {
        /// The endpoint concerned.
        forge: Forge,
    },
    /// The body exceeds [`crate::MAX_BODY`]; checked before hashing.
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// Body size received.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl VerifyError {
    /// HTTP status to answer with: 413 for an oversized body, else 401.
    pub fn http_status(&self) -> u16 {
        match self {
            VerifyError::BodyTooLarge { .. } => 413,
            _ => 401,
        }
    }
}

/// Why a delivery could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebhookError {
    /// The body exceeds [`crate::MAX_BODY`]; checked before parsing. 413.
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// Body size received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is empty (or only whitespace). 400.
    #[error("empty body: expected a JSON object")]
    EmptyBody,
    /// The event-name header is absent or blank. 400.
    #[error("missing event header {header}")]
    MissingEventHeader {
        /// Header name.
        header: &'static str,
    },
    /// No delivery id header. 400.
    #[error("missing delivery id: expected header {expected}")]
    MissingDeliveryId {
        /// Header name(s) looked for.
        expected: &'static str,
    },
    /// A header is present but unusable. 400.
    #[error("invalid header {header}: {reason}")]
    InvalidHeader {
        /// Header name.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The body is not well-formed JSON (syntax error, truncated, not UTF-8). 400.
    #[error("malformed JSON body at line {line}, column {column}: {reason}")]
    MalformedJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde_json's description.
        reason: String,
    },
    /// Well-formed JSON with a value of the wrong type where greenroom reads one. 400.
    #[error("invalid value at {path} (line {line}, column {column}): {reason}")]
    InvalidField {
        /// Dotted path into the payload, e.g. `pull_request.number`.
        path: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde_json's description.
        reason: String,
    },
    /// A field greenroom needs is absent, null or empty. 400.
    #[error("required field {path} is missing in the {event} payload")]
    MissingField {
        /// Event name from the header.
        event: String,
        /// Dotted path into the payload, e.g. `pull_request.head.sha`.
        path: String,
    },
    /// The forge sent an event greenroom does not know. The server answers 202 and ignores it.
    #[error("unknown {forge} event {event:?}: ignored")]
    UnknownEvent {
        /// The endpoint concerned.
        forge: Forge,
        /// The event header's value (truncated to 100 characters).
        event: String,
    },
}

impl WebhookError {
    /// HTTP status to answer with: 413 oversized, 202 unknown event (accepted and
    /// ignored), 400 for everything else.
    pub fn http_status(&self) -> u16 {
        match self {
            WebhookError::BodyTooLarge { .. } => 413,
            WebhookError::UnknownEvent { .. } => 202,
            _ => 400,
        }
    }

    /// True for [`WebhookError::UnknownEvent`]: not a client error, just nothing to do.
    pub fn is_ignorable(&self) -> bool {
        matches!(self, WebhookError::UnknownEvent { .. })
    }

    pub(crate) fn missing(event: &str, path: impl Into<String>) -> Self {
        WebhookError::MissingField {
            event: truncate(event),
            path: path.into(),
        }
    }

    pub(crate) fn unknown(forge: Forge, event: &str) -> Self {
        WebhookError::UnknownEvent {
            forge,
            event: truncate(event),
        }
    }
}

/// At most 100 characters of an untrusted header value.
fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}
