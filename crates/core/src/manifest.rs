//! Manifests: a composition resolved to exact commits (or image
//! references), per component. Immutable and content-addressed.
//!
//! The id is a SHA-256 over everything that decides what runs — commits or
//! image references, build/run/deploy/stop/health commands, environment
//! variables (secrets by fingerprint only) and which components were carried
//! over — and over nothing else. So `ogr=123` and `ogr=sha:<head of #123>`
//! give the same manifest. How a commit was asked for (`origin`, `reference`,
//! `pr`, the PRs `merged` into a staging commit) is kept for reports but is
//! not part of the id. No I/O here.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One component's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ManifestComponent {
    /// How it was asked for: `pr:614`, `channel:stg`, `branch:fix`, `carried`.
    pub origin: String,
    /// The ref it was resolved from (`refs/pull/614/head`), or the image tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Pull request number, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<u64>,
    /// The pull requests merged into a staging commit (`owner/name#12`), in
    /// merge order. For reports: the commit already says what runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<String>,
    /// Full commit SHA (git components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Image reference (image components): the digest when a `resolve` command gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Not deployed by the cycle that made this manifest: what ran before keeps running.
    #[serde(default)]
    pub carried: bool,
    /// Build command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Run command (process driver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Deploy command (command driver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<String>,
    /// Stop command (command driver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// Health check as configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Environment variables: literal values, or a secret's fingerprint.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

impl ManifestComponent {
    /// Short form of what runs: 12 hex digits of the commit, or the image.
    pub fn short(&self) -> String {
        match (&self.commit, &self.image) {
            (Some(c), _) => c.chars().take(12).collect(),
            (None, Some(i)) => i.clone(),
            (None, None) => "-".to_string(),
        }
    }

    /// Whether two entries run the same thing (same id-relevant content,
    /// ignoring `carried`).
    pub fn same_content(&self, other: &ManifestComponent) -> bool {
        let mut a = IdContent::of(self);
        let mut b = IdContent::of(other);
        a.carried = false;
        b.carried = false;
        a == b
    }
}

/// A manifest: per component what runs, and the content id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// 64 hex digits of SHA-256 over the id-relevant content.
    pub id: String,
    /// Components by name.
    pub components: BTreeMap<String, ManifestComponent>,
}

#[derive(Serialize, PartialEq, Eq)]
struct IdContent<'a> {
    commit: &'a Option<String>,
    image: &'a Option<String>,
    carried: bool,
    build: &'a Option<String>,
    run: &'a Option<String>,
    deploy: &'a Option<String>,
    stop: &'a Option<String>,
    health: &'a Option<String>,
    vars: &'a BTreeMap<String, String>,
}

impl<'a> IdContent<'a> {
    fn of(c: &'a ManifestComponent) -> Self {
        IdContent {
            commit: &c.commit,
            image: &c.image,
            carried: c.carried,
            build: &c.build,
            run: &c.run,
            deploy: &c.deploy,
            stop: &c.stop,
            health: &c.health,
            vars: &c.vars,
        }
    }
}

impl Manifest {
    /// Builds a manifest and computes its id.
    pub fn new(components: BTreeMap<String, ManifestComponent>) -> Manifest {
        let content: BTreeMap<&str, IdContent<'_>> =
            components.iter().map(|(k, v)| (k.as_str(), IdContent::of(v))).collect();
        let mut h = Sha256::new();
        h.update(b"greenroom-manifest-v1\0");
        // Serializing maps of strings and options cannot fail.
        let json = serde_json::to_vec(&content).unwrap_or_default();
        h.update(&json);
        let id = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Manifest { id, components }
    }

    /// The first 12 hex digits of the id, as shown to people.
    pub fn short_id(&self) -> &str {
        short_id(&self.id)
    }
}

/// The first 12 characters of a manifest id.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// How one component differs between two manifests.
#[allow(clippy::large_enum_variant)] // a handful per diff; boxing would only obscure the JSON shape
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ComponentDiff {
    /// Only in the second.
    Added {
        /// Component.
        component: String,
        /// Its entry.
        to: ManifestComponent,
    },
    /// Only in the first.
    Removed {
        /// Component.
        component: String,
        /// Its entry.
        from: ManifestComponent,
    },
    /// In both, with different content.
    Changed {
        /// Component.
        component: String,
        /// Before.
        from: ManifestComponent,
        /// After.
        to: ManifestComponent,
    },
}

/// Components that differ between two manifests, by name.
pub fn diff(a: &BTreeMap<String, ManifestComponent>, b: &BTreeMap<String, ManifestComponent>) -> Vec<ComponentDiff> {
    let mut out = Vec::new();
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for n in names {
        match (a.get(n), b.get(n)) {
            (Some(x), Some(y)) if !x.same_content(y) || x.pr != y.pr => out.push(ComponentDiff::Changed {
                component: n.clone(),
                from: x.clone(),
                to: y.clone(),
            }),
            (Some(_), Some(_)) => {}
            (Some(x), None) => out.push(ComponentDiff::Removed {
                component: n.clone(),
                from: x.clone(),
            }),
            (None, Some(y)) => out.push(ComponentDiff::Added {
                component: n.clone(),
                to: y.clone(),
            }),
            (None, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn comp(commit: &str, origin: &str) -> ManifestComponent {
        ManifestComponent {
            origin: origin.into(),
            commit: Some(commit.into()),
            run: Some("serve".into()),
            ..Default::default()
        }
    }

    #[test]
    fn same_content_same_id_however_asked() {
        let a = Manifest::new([("ogr".to_string(), comp("abc", "pr:123"))].into());
        let mut by_sha = comp("abc", "sha:abc");
        by_sha.reference = Some("abc".into());
        let b = Manifest::new([("ogr".to_string(), by_sha)].into());
        assert_eq!(a.id, b.id);
        // The PRs a staging commit merges are for reports: the commit says what runs.
        let mut staged = comp("abc", "staging");
        staged.merged = vec!["packit/ogr#1".into(), "packit/ogr#4".into()];
        assert_eq!(Manifest::new([("ogr".to_string(), staged)].into()).id, a.id);
        assert_eq!(a.id.len(), 64);
        assert_eq!(a.short_id().len(), 12);
    }

    #[test]
    fn everything_that_decides_what_runs_changes_the_id() {
        let base = comp("abc", "x");
        let id = |c: ManifestComponent| Manifest::new([("ogr".to_string(), c)].into()).id;
        let base_id = id(base.clone());
        let variants: Vec<ManifestComponent> = vec![
            ManifestComponent {
                commit: Some("abd".into()),
                ..base.clone()
            },
            ManifestComponent {
                carried: true,
                ..base.clone()
            },
            ManifestComponent {
                build: Some("make".into()),
                ..base.clone()
            },
            ManifestComponent {
                run: Some("serve2".into()),
                ..base.clone()
            },
            ManifestComponent {
                health: Some("true".into()),
                ..base.clone()
            },
            ManifestComponent {
                vars: [("A".to_string(), "1".to_string())].into(),
                ..base.clone()
            },
            ManifestComponent {
                image: Some("q/x@sha256:1".into()),
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(id(v.clone()), base_id, "{v:?}");
        }
        let renamed = Manifest::new([("ogr2".to_string(), base)].into()).id;
        assert_ne!(renamed, base_id);
    }

    #[test]
    fn diff_lists_changed_added_removed() {
        let a: BTreeMap<_, _> = [("a".to_string(), comp("1", "x")), ("b".to_string(), comp("2", "x"))].into();
        let b: BTreeMap<_, _> = [("a".to_string(), comp("1", "y")), ("c".to_string(), comp("3", "x"))].into();
        let d = diff(&a, &b);
        assert_eq!(d.len(), 2);
        assert!(matches!(&d[0], ComponentDiff::Removed { component, .. } if component == "b"));
        assert!(matches!(&d[1], ComponentDiff::Added { component, .. } if component == "c"));
    }

    proptest! {
        #[test]
        fn id_ignores_insertion_order(commits in proptest::collection::vec("[0-9a-f]{40}", 1..8)) {
            let entries: Vec<(String, ManifestComponent)> =
                commits.iter().enumerate().map(|(i, c)| (format!("c{i}"), comp(c, "x"))).collect();
            let fwd = Manifest::new(entries.iter().cloned().collect());
            let rev = Manifest::new(entries.iter().rev().cloned().collect());
            prop_assert_eq!(fwd.id, rev.id);
        }
    }
}
