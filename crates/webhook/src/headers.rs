//! Header names greenroom reads from webhook deliveries, and [`HeaderLookup`],
//! the one way the rest of the crate reads a header.
//!
//! Owns: the spelling of every header name and case-insensitive lookup over
//! the header containers callers have (`http::HeaderMap`, pairs, maps).
//! Must never: interpret header values beyond trimming surrounding
//! whitespace; that is the job of the verifier and the parsers.

use std::collections::{BTreeMap, HashMap};

/// GitHub: the event name (`pull_request`, `push`, ...).
pub const GITHUB_EVENT: &str = "X-GitHub-Event";
/// GitHub: the delivery GUID; the same on a redelivery of the same event.
pub const GITHUB_DELIVERY: &str = "X-GitHub-Delivery";
/// GitHub: `sha256=<hex>`, HMAC-SHA256 of the raw body keyed by the webhook secret.
pub const GITHUB_SIGNATURE_256: &str = "X-Hub-Signature-256";

/// GitLab: the event name (`Push Hook`, `Merge Request Hook`, ...).
pub const GITLAB_EVENT: &str = "X-Gitlab-Event";
/// GitLab: the secret token, sent back verbatim (GitLab signs nothing).
pub const GITLAB_TOKEN: &str = "X-Gitlab-Token";
/// GitLab: unique id of the event (shared by recursive hooks).
pub const GITLAB_EVENT_UUID: &str = "X-Gitlab-Event-UUID";
/// GitLab (17.4+) and others: id that stays the same across retries of one delivery.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// greenroom package endpoint: `sha256=<hex>`, HMAC-SHA256 of the raw body.
pub const GREENROOM_SIGNATURE_256: &str = "X-Greenroom-Signature-256";
/// greenroom package endpoint: the sender's delivery id; reuse it on a retry.
pub const GREENROOM_DELIVERY: &str = "X-Greenroom-Delivery";

/// Longest delivery id accepted, in bytes (ids are stored and shown).
pub const MAX_DELIVERY_ID: usize = 256;

/// Read access to request headers by name, ASCII case-insensitively.
///
/// Implemented for `http::HeaderMap`, for slices, arrays and `Vec`s of
/// `(name, value)` pairs, and for `HashMap`/`BTreeMap` from name to value.
/// When a header occurs more than once, the first occurrence wins.
pub trait HeaderLookup {
    /// The value of header `name` (any case), if present and valid text.
    fn get(&self, name: &str) -> Option<&str>;
}

impl<T: HeaderLookup + ?Sized> HeaderLookup for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for [(K, V)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> HeaderLookup for [(K, V); N] {
    fn get(&self, name: &str) -> Option<&str> {
        HeaderLookup::get(self.as_slice(), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&str> {
        HeaderLookup::get(self.as_slice(), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, S> HeaderLookup for HashMap<K, V, S> {
    fn get(&self, name: &str) -> Option<&str> {
        // Scan rather than hash: the map's keys may be in any case.
        // Pick the smallest matching key so the answer does not depend on hash order.
        self.iter()
            .filter(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .min_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for BTreeMap<K, V> {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// Values that are not visible ASCII (`HeaderValue::to_str` fails) read as absent.
impl HeaderLookup for http::HeaderMap {
    fn get(&self, name: &str) -> Option<&str> {
        http::HeaderMap::get(self, name).and_then(|v| v.to_str().ok())
    }
}

/// The trimmed value of `name`, or `None` when absent or blank.
pub(crate) fn value<'h, H: HeaderLookup + ?Sized>(headers: &'h H, name: &str) -> Option<&'h str> {
    headers.get(name).map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_case_insensitive_everywhere() {
        let pairs = [("x-github-event", "push")];
        assert_eq!(pairs.get(GITHUB_EVENT), Some("push"));
        let v: Vec<(String, String)> = vec![("X-GITHUB-EVENT".into(), "push".into())];
        assert_eq!(v.get(GITHUB_EVENT), Some("push"));
        let h: HashMap<String, String> = [("X-Github-Event".to_string(), "push".to_string())].into();
        assert_eq!(HeaderLookup::get(&h, GITHUB_EVENT), Some("push"));
        let b: BTreeMap<&str, &str> = [("x-GitHub-event", "push")].into();
        assert_eq!(HeaderLookup::get(&b, GITHUB_EVENT), Some("push"));
        let mut m = http::HeaderMap::new();
        m.insert("x-github-event", http::HeaderValue::from_static("push"));
        assert_eq!(HeaderLookup::get(&m, GITHUB_EVENT), Some("push"));
        assert_eq!(HeaderLookup::get(&m, GITLAB_EVENT), None);
    }

    #[test]
    fn blank_values_read_as_absent() {
        let pairs = [(GITHUB_DELIVERY, "   "), (GITHUB_EVENT, " push\t")];
        assert_eq!(value(&pairs, GITHUB_DELIVERY), None);
        assert_eq!(value(&pairs, GITHUB_EVENT), Some("push"));
    }

    #[test]
    fn non_text_header_values_read_as_absent() {
        let mut m = http::HeaderMap::new();
        m.insert(GITHUB_EVENT, http::HeaderValue::from_bytes(b"pu\xffsh").unwrap());
        assert_eq!(HeaderLookup::get(&m, GITHUB_EVENT), None);
    }
}
