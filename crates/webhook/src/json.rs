//! Shared JSON plumbing for the forge parsers: body-to-model deserialization
//! with error paths, lenient field readers, and required-field checks.
//!
//! Owns: the mapping of serde errors onto [`WebhookError`] variants.
//! Must never: panic on any byte string (serde_json's recursion limit bounds
//! nesting; nothing here indexes or slices).

use crate::error::WebhookError;
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};

/// Deserializes `body` into `T`, naming the path of a wrongly typed value.
pub(crate) fn from_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, WebhookError> {
    let Some(start) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(WebhookError::EmptyBody);
    };
    if body.get(start) != Some(&b'{') {
        // Payloads are objects; serde would otherwise read an array positionally.
        let before = body.get(..start).unwrap_or_default();
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
        return Err(WebhookError::MalformedJson {
            line,
            column,
            reason: "expected a JSON object".to_string(),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        from_serde(e.into_inner(), Some(path))
    })?;
    de.end().map_err(|e| from_serde(e, None))?;
    Ok(value)
}

fn from_serde(e: serde_json::Error, path: Option<String>) -> WebhookError {
    let (line, column) = (e.line(), e.column());
    let reason = strip_position(&e.to_string());
    match (e.classify(), path) {
        (serde_json::error::Category::Data, Some(path)) => WebhookError::InvalidField {
            path,
            line,
            column,
            reason,
        },
        _ => WebhookError::MalformedJson { line, column, reason },
    }
}

/// serde_json appends " at line L column C"; the error variants carry those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message.get(..at).unwrap_or(message).to_string(),
        None => message.to_string(),
    }
}

/// A value that is kept only when it is a JSON string; any other JSON value
/// (number, object, null) reads as `None`. For fields greenroom only records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LenientString(pub Option<String>);

impl<'de> Deserialize<'de> for LenientString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => LenientString(Some(s)),
            _ => LenientString(None),
        })
    }
}

/// `Some(non-empty string)` or a [`WebhookError::MissingField`] naming `path`.
pub(crate) fn required(value: Option<String>, event: &str, path: &str) -> Result<String, WebhookError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(WebhookError::missing(event, path)),
    }
}

/// `Some(n)` or a [`WebhookError::MissingField`] naming `path`.
pub(crate) fn required_num(value: Option<u64>, event: &str, path: &str) -> Result<u64, WebhookError> {
    value.ok_or_else(|| WebhookError::missing(event, path))
}

/// True for a sha of all zeros (the "no commit" of a created or deleted ref).
pub(crate) fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// Sorted, de-duplicated union of the given file lists.
pub(crate) fn union_sorted<'a>(lists: impl IntoIterator<Item = &'a Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = lists.into_iter().flatten().cloned().collect();
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct T {
        a: Option<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: Option<u64>,
    }

    #[test]
    fn errors_are_classified_with_paths() {
        assert_eq!(from_body::<T>(b"  \n").unwrap_err(), WebhookError::EmptyBody);
        match from_body::<T>(br#"{"a": {"n": "x"}}"#).unwrap_err() {
            WebhookError::InvalidField { path, line: 1, .. } => assert_eq!(path, "a.n"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            from_body::<T>(br#"{"a": "#).unwrap_err(),
            WebhookError::MalformedJson { .. }
        ));
        assert!(matches!(
            from_body::<T>(br#"{} x"#).unwrap_err(),
            WebhookError::MalformedJson { .. }
        ));
    }

    #[test]
    fn position_suffix_is_stripped() {
        assert_eq!(
            strip_position("EOF while parsing at line 1 column 3"),
            "EOF while parsing"
        );
        assert_eq!(strip_position("plain"), "plain");
    }

    #[test]
    fn zero_shas() {
        assert!(is_zero_sha("0000000000000000000000000000000000000000"));
        assert!(!is_zero_sha(""));
        assert!(!is_zero_sha("00a0"));
    }
}
