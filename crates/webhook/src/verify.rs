//! Verification of webhook deliveries: HMAC-SHA256 signatures (GitHub,
//! package endpoint) and GitLab's shared token.
//!
//! Owns: [`Secret`], [`Verifier`] and the signing helpers used by tests and
//! the quick start. Every comparison of a signature or token is constant-time.
//! Must never: print, log or return a secret, a token or a computed MAC in an
//! error; accept an unsigned delivery unless `allow_unsigned` was set
//! explicitly; read secrets itself (the caller resolves `env:`/`file:`).

use crate::error::VerifyError;
use crate::event::Forge;
use crate::headers::{self, HeaderLookup};
use crate::{MAX_BODY, headers::value};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// A webhook secret as bytes. Its `Debug` output is redacted.
///
/// When the caller reads a secret from a file, it should strip one trailing
/// newline first; nothing here trims.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

/// A secret was empty; an empty HMAC key or token would authenticate nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webhook secret is empty")]
pub struct EmptySecretError;

impl Secret {
    /// Wraps the secret bytes; refuses an empty secret.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, EmptySecretError> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Err(EmptySecretError)
        } else {
            Ok(Secret(bytes))
        }
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How a delivery that passed [`Verifier::verify`] was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The signature (or GitLab token) matched the configured secret.
    Authenticated,
    /// Nothing was checked: no secret or no signature, and `allow_unsigned` is on.
    /// The server should record this next to the delivery.
    UnsignedAllowed,
}

/// Per-endpoint secrets and the unsigned-delivery policy.
///
/// Rules, per forge:
/// - secret configured, signature/token present: it must match (even with `allow_unsigned`);
/// - secret configured, signature/token absent: refused, unless `allow_unsigned`;
/// - no secret configured: refused ([`VerifyError::UnsignedRefused`]), unless `allow_unsigned`.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    github: Option<Secret>,
    gitlab: Option<Secret>,
    package: Option<Secret>,
    allow_unsigned: bool,
}

impl Verifier {
    /// No secrets, unsigned deliveries refused: refuses everything until configured.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the secret for `forge`: GitHub/package HMAC key, or the GitLab token.
    pub fn with_secret(mut self, forge: Forge, secret: Secret) -> Self {
        *self.slot(forge) = Some(secret);
        self
    }

    /// Accept deliveries that carry no signature, or that come to an endpoint
    /// without a secret. For local testing only; off by default.
    pub fn allow_unsigned(mut self, allow: bool) -> Self {
        self.allow_unsigned = allow;
        self
    }

    /// Whether unsigned deliveries are accepted.
    pub fn allows_unsigned(&self) -> bool {
        self.allow_unsigned
    }

    /// Whether a secret is configured for `forge`.
    pub fn has_secret(&self, forge: Forge) -> bool {
        self.secret(forge).is_some()
    }

    fn slot(&mut self, forge: Forge) -> &mut Option<Secret> {
        match forge {
            Forge::Github => &mut self.github,
            Forge::Gitlab => &mut self.gitlab,
            Forge::Package => &mut self.package,
        }
    }

    fn secret(&self, forge: Forge) -> Option<&Secret> {
        match forge {
            Forge::Github => self.github.as_ref(),
            Forge::Gitlab => self.gitlab.as_ref(),
            Forge::Package => self.package.as_ref(),
        }
    }

    /// Verifies one delivery to `forge`'s endpoint over the exact raw `body`.
    ///
    /// GitHub: `X-Hub-Signature-256`; GitLab: `X-Gitlab-Token`; package endpoint:
    /// `X-Greenroom-Signature-256`. Bodies over [`MAX_BODY`] are refused before hashing.
    pub fn verify<H: HeaderLookup + ?Sized>(
        &self,
        forge: Forge,
        headers: &H,
        body: &[u8],
    ) -> Result<Verdict, VerifyError> {
        if body.len() > MAX_BODY {
            return Err(VerifyError::BodyTooLarge {
                size: body.len(),
                limit: MAX_BODY,
            });
        }
        let (header, is_token) = match forge {
            Forge::Github => (headers::GITHUB_SIGNATURE_256, false),
            Forge::Gitlab => (headers::GITLAB_TOKEN, true),
            Forge::Package => (headers::GREENROOM_SIGNATURE_256, false),
        };
        let Some(secret) = self.secret(forge) else {
            return if self.allow_unsigned {
                Ok(Verdict::UnsignedAllowed)
            } else {
                Err(VerifyError::UnsignedRefused { forge })
            };
        };
        let presented = value(headers, header);
        if presented.is_none() && self.allow_unsigned {
            return Ok(Verdict::UnsignedAllowed);
        }
        if is_token {
            verify_gitlab_token(secret.expose(), presented)?;
        } else {
            verify_hmac_sha256_header(header, secret.expose(), presented, body)?;
        }
        Ok(Verdict::Authenticated)
    }
}

/// `sha256=<64 lower-case hex digits>`: the `X-Hub-Signature-256` value GitHub
/// would send for `body` under `secret`.
pub fn sign_github(secret: &[u8], body: &[u8]) -> String {
    let mac = hmac_sha256(secret, body);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in mac {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// The `X-Greenroom-Signature-256` value for the package endpoint; same scheme as GitHub's.
pub fn sign_package(secret: &[u8], body: &[u8]) -> String {
    sign_github(secret, body)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hmac_sha256(secret: &[u8], body: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(secret);
    mac.update(body);
    mac.finalize().into_bytes().into()
}

pub(crate) fn new_mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (long keys are hashed), so this never fails;
    // the fallback keeps the function total without a panic path.
    <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| {
        // Unreachable in practice; still keyed by the secret (as HMAC does for long keys).
        let mut block = hmac::digest::Key::<HmacSha256>::default();
        for (dst, src) in block.iter_mut().zip(Sha256::digest(secret)) {
            *dst = src;
        }
        <HmacSha256 as hmac::digest::KeyInit>::new(&block)
    })
}

/// Checks a `sha256=<hex>` header value (`presented`, as read from `header`)
/// against HMAC-SHA256(`secret`, `body`), in constant time. Hex digits may be
/// upper or lower case.
pub fn verify_hmac_sha256_header(
    header: &'static str,
    secret: &[u8],
    presented: Option<&str>,
    body: &[u8],
) -> Result<(), VerifyError> {
    let presented = presented.map(str::trim).filter(|v| !v.is_empty());
    let Some(presented) = presented else {
        return Err(VerifyError::MissingSignature { header });
    };
    let Some(hex) = presented.strip_prefix("sha256=") else {
        return Err(VerifyError::MalformedSignature {
            header,
            reason: "expected `sha256=` followed by hex digits",
        });
    };
    let Some(bytes) = decode_hex(hex) else {
        return Err(VerifyError::MalformedSignature {
            header,
            reason: "signature is not hexadecimal",
        });
    };
    if bytes.len() != 32 || hex.len() != 64 {
        return Err(VerifyError::WrongSignatureLength {
            header,
            hex_digits: hex.len(),
        });
    }
    let mut mac = new_mac(secret);
    mac.update(body);
    mac.verify_slice(&bytes)
        .map_err(|_| VerifyError::SignatureMismatch { header })
}

/// Checks GitLab's `X-Gitlab-Token` value (`presented`) against the secret, in
/// constant time (both sides are hashed first, so not even the length leaks).
pub fn verify_gitlab_token(secret: &[u8], presented: Option<&str>) -> Result<(), VerifyError> {
    let header = headers::GITLAB_TOKEN;
    let Some(presented) = presented.filter(|v| !v.is_empty()) else {
        return Err(VerifyError::MissingToken { header });
    };
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(secret);
    if bool::from(a[..].ct_eq(&b[..])) {
        Ok(())
    } else {
        Err(VerifyError::TokenMismatch { header })
    }
}

/// Hex digits to bytes; `None` on a non-hex character. An odd count of hex
/// digits decodes to nothing, so the caller reports it as a length problem.
pub(crate) fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return if digits.iter().all(u8::is_ascii_hexdigit) {
            Some(Vec::new())
        } else {
            None
        };
    }
    digits
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex("00ff10Ab"), Some(vec![0, 255, 16, 171]));
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("abc"), Some(vec![]));
        assert_eq!(decode_hex("ab\u{e9}"), None);
        assert_eq!(decode_hex(""), Some(vec![]));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new(b"hunter2".to_vec()).unwrap();
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let v = Verifier::new().with_secret(Forge::Github, s);
        assert!(!format!("{v:?}").contains("hunter2"));
        assert_eq!(Secret::new(Vec::new()), Err(EmptySecretError));
    }

    #[test]
    fn long_keys_work() {
        let key = vec![7u8; 1000];
        let sig = sign_github(&key, b"x");
        assert!(verify_hmac_sha256_header("h", &key, Some(&sig), b"x").is_ok());
    }
}
