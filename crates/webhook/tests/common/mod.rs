//! Shared helpers for the integration tests: fixture loading and header sets.
//! Owns nothing the crate uses; must never reach outside tests/fixtures/.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// Directory holding the copied example payloads (see fixtures/SOURCES.md).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

/// Bytes of `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = fixtures_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Sorted relative paths (`github/push/payload.json`) of every fixture in `dir`.
pub fn fixtures_in(dir: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(fixtures_dir().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    out.sort();
    out
}

/// GitHub headers for `event` with a fixed delivery id.
pub fn github_headers(event: &str) -> Vec<(String, String)> {
    vec![
        ("X-GitHub-Event".into(), event.into()),
        (
            "X-GitHub-Delivery".into(),
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
        ),
    ]
}

/// GitLab headers for `event` with a fixed event UUID.
pub fn gitlab_headers(event: &str) -> Vec<(String, String)> {
    vec![
        ("X-Gitlab-Event".into(), event.into()),
        (
            "X-Gitlab-Event-UUID".into(),
            "13792a34-cac6-4fda-95a8-c58e00a3954e".into(),
        ),
    ]
}

/// Re-serialized fixture after `edit` changed its JSON value.
pub fn edited(rel: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture(rel)).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}
