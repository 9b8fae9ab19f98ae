//! How secrets are named in config and how they are identified without
//! being revealed.
//!
//! A config file never holds a secret: it names an environment variable
//! (`env:NAME`) or a file (`file:PATH`). Reading them is I/O and happens at
//! the edge; this module only parses the reference and computes the
//! fingerprint under which a secret's value enters a manifest's content id.
//! Nothing here may format a secret's value.

use sha2::{Digest, Sha256};
use std::fmt;
use std::path::PathBuf;

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// The value of an environment variable of the greenroom process.
    Env(String),
    /// The contents of a file (trailing newline removed).
    File(PathBuf),
}

impl SecretRef {
    /// Parses `env:NAME` or `file:PATH`; anything else is not a secret reference.
    pub fn parse(value: &str) -> Option<Result<SecretRef, String>> {
        if let Some(name) = value.strip_prefix("env:") {
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            return Some(if valid {
                Ok(SecretRef::Env(name.to_string()))
            } else {
                Err(format!(
                    "`{value}` does not name an environment variable (letters, digits and `_`)"
                ))
            });
        }
        if let Some(path) = value.strip_prefix("file:") {
            return Some(if path.is_empty() {
                Err("`file:` needs a path".to_string())
            } else {
                Ok(SecretRef::File(PathBuf::from(path)))
            });
        }
        None
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// A short, stable identifier of a secret value: `secret:sha256:<12 hex>`.
/// Changing the secret changes the manifest id; the value itself is never
/// recorded.
pub fn fingerprint(value: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"greenroom-secret-v1\0");
    h.update(value.as_bytes());
    let digest = h.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("secret:sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(SecretRef::parse("env:TOKEN"), Some(Ok(SecretRef::Env("TOKEN".into()))));
        assert_eq!(
            SecretRef::parse("file:/run/s"),
            Some(Ok(SecretRef::File("/run/s".into())))
        );
        assert!(matches!(SecretRef::parse("env:"), Some(Err(_))));
        assert!(matches!(SecretRef::parse("env:A-B"), Some(Err(_))));
        assert_eq!(SecretRef::parse("plain"), None);
    }

    #[test]
    fn fingerprint_is_stable_and_hides_the_value() {
        let f = fingerprint("hunter22");
        assert_eq!(f, fingerprint("hunter22"));
        assert_ne!(f, fingerprint("hunter23"));
        assert!(!f.contains("hunter"));
        assert_eq!(f.len(), "secret:sha256:".len() + 12);
    }
}
