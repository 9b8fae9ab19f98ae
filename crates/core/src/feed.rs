//! Package feeds (issue #5 point 5; seed 003): what a feed says was
//! published, and which version is newest. Pure: the server fetches
//! (`src/feeds.rs`), this module reads the answer and orders versions.
//!
//! Four kinds of answer:
//! - `http-json` — greenroom's own simple format: a JSON array whose items
//!   are version strings or objects `{"version": "1.4.2", "url": "...",
//!   "prerelease": false}` (only `version` is required; other fields are
//!   ignored), or an object `{"versions": [...]}` holding such an array.
//! - `github-releases` — GitHub's `GET /repos/{owner}/{repo}/releases`:
//!   objects with `tag_name`, `draft`, `prerelease`, `html_url`; drafts are
//!   never versions.
//! - `debian-packages` — a Debian archive `Packages` index: stanzas of
//!   `Field: value` lines separated by blank lines; the stanzas whose
//!   `Package` is the feed's package give `Version` (and `Filename`).
//! - `oci-tags` — the OCI distribution API's `GET /v2/<name>/tags/list`:
//!   `{"name": "...", "tags": [...]}`.
//!
//! Versions are ordered semantically, never as text: Semantic Versioning
//! 2.0.0 precedence (an optional leading `v`; pre-releases before their
//! release, identifiers compared as the specification says; build metadata
//! does not rank) for every kind but `debian-packages`, whose versions are
//! compared as dpkg does (`epoch:upstream-revision`, `~` before
//! everything, even the end). Two versions of equal precedence (`1.0.0+a`
//! and `1.0.0+b`, or Debian's `1.0` and `1.00`) are ordered by their text,
//! so the order is total. An entry that is not a version of the feed's
//! scheme (`latest`, `main`, a tag with characters no command should see)
//! is ignored, with the reason kept.

use serde::Deserialize;
use std::cmp::Ordering;
use std::fmt;

/// The longest version text accepted (a tag or a package version).
pub const MAX_VERSION_LEN: usize = 128;

/// What a feed's URL answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedKind {
    /// A JSON list of versions (see the module documentation).
    HttpJson,
    /// GitHub's releases API.
    GithubReleases,
    /// A Debian `Packages` index.
    DebianPackages,
    /// An OCI registry's tag list.
    OciTags,
}

impl FeedKind {
    /// Every kind, in documentation order.
    pub const ALL: [FeedKind; 4] = [
        FeedKind::HttpJson,
        FeedKind::GithubReleases,
        FeedKind::DebianPackages,
        FeedKind::OciTags,
    ];

    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::HttpJson => "http-json",
            FeedKind::GithubReleases => "github-releases",
            FeedKind::DebianPackages => "debian-packages",
            FeedKind::OciTags => "oci-tags",
        }
    }

    /// The kind written `s`.
    pub fn parse(s: &str) -> Option<FeedKind> {
        FeedKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// How this kind's versions are ordered.
    pub fn scheme(self) -> Scheme {
        match self {
            FeedKind::DebianPackages => Scheme::Debian,
            _ => Scheme::Semver,
        }
    }
}

impl fmt::Display for FeedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A version ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Debian's (dpkg) version comparison.
    Debian,
    /// Semantic Versioning 2.0.0 precedence.
    Semver,
}

/// A version of a scheme: its text as published, and how it ranks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    scheme: Scheme,
    text: String,
}

impl Version {
    /// Parses `text` as a version of `scheme`; the error says why not.
    pub fn parse(scheme: Scheme, text: &str) -> Result<Version, String> {
        check_text(text)?;
        match scheme {
            Scheme::Semver => semver_parts(text).map(|_| ()),
            Scheme::Debian => debian_parts(text).map(|_| ()),
        }?;
        Ok(Version {
            scheme,
            text: text.to_string(),
        })
    }

    /// The text as published (what deploys: an image tag, a package version).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it is a pre-release: a semantic version with a `-` part.
    pub fn is_prerelease(&self) -> bool {
        self.scheme == Scheme::Semver && semver_parts(&self.text).is_ok_and(|p| !p.pre.is_empty())
    }

    /// Precedence only (equal for `1.0.0+a` and `1.0.0+b`).
    pub fn precedence(&self, other: &Version) -> Ordering {
        match (self.scheme, other.scheme) {
            (Scheme::Semver, Scheme::Semver) => match (semver_parts(&self.text), semver_parts(&other.text)) {
                (Ok(a), Ok(b)) => semver_cmp(&a, &b),
                _ => Ordering::Equal,
            },
            (Scheme::Debian, Scheme::Debian) => debian_cmp(&self.text, &other.text),
            (a, b) => a.cmp(&b),
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.scheme
            .cmp(&other.scheme)
            .then_with(|| self.precedence(other))
            .then_with(|| self.text.cmp(&other.text))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether `text` may be a version at all: 1 to [`MAX_VERSION_LEN`]
/// characters among ASCII letters, digits and `. _ + ~ : -`, not starting
/// with `-` (it reaches commands as a variable and image tags as text).
pub fn check_text(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("is empty".into());
    }
    if text.len() > MAX_VERSION_LEN {
        return Err(format!("is longer than {MAX_VERSION_LEN} characters"));
    }
    if text.starts_with('-') {
        return Err("starts with `-`".into());
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '~' | ':' | '-')))
    {
        return Err(format!(
            "contains {c:?} (versions are ASCII letters, digits and `. _ + ~ : -`)"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Semantic Versioning 2.0.0.

struct Semver<'a> {
    core: [&'a str; 3],
    pre: Vec<&'a str>,
}

fn numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Numbers of any length, without leading zeros, compared as numbers.
fn cmp_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn semver_parts(text: &str) -> Result<Semver<'_>, String> {
    let bad = |why: &str| Err(format!("`{text}` is not a semantic version (MAJOR.MINOR.PATCH): {why}"));
    let t = text.strip_prefix('v').unwrap_or(text);
    let (t, build) = match t.split_once('+') {
        Some((t, b)) => (t, Some(b)),
        None => (t, None),
    };
    let (core, pre) = match t.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (t, None),
    };
    let nums: Vec<&str> = core.split('.').collect();
    let [major, minor, patch] = nums.as_slice() else {
        return bad("not three numbers");
    };
    for n in [major, minor, patch] {
        if !numeric(n) {
            return bad("not three numbers");
        }
        if n.len() > 1 && n.starts_with('0') {
            return bad("a number with a leading zero");
        }
    }
    let ident_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let mut pre_ids = Vec::new();
    if let Some(p) = pre {
        for id in p.split('.') {
            if !ident_ok(id) {
                return bad("an empty or invalid pre-release identifier");
            }
            if numeric(id) && id.len() > 1 && id.starts_with('0') {
                return bad("a numeric pre-release identifier with a leading zero");
            }
            pre_ids.push(id);
        }
    }
    if let Some(b) = build
        && !b.split('.').all(ident_ok)
    {
        return bad("invalid build metadata");
    }
    Ok(Semver {
        core: [major, minor, patch],
        pre: pre_ids,
    })
}

fn semver_cmp(a: &Semver<'_>, b: &Semver<'_>) -> Ordering {
    for (x, y) in a.core.iter().zip(b.core.iter()) {
        match cmp_numbers(x, y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    match (a.pre.is_empty(), b.pre.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    for (x, y) in a.pre.iter().zip(b.pre.iter()) {
        let o = match (numeric(x), numeric(y)) {
            (true, true) => cmp_numbers(x, y),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.pre.len().cmp(&b.pre.len())
}

// ---------------------------------------------------------------------------
// Debian versions (deb-version(7)).

fn debian_parts(text: &str) -> Result<(&str, &str, &str), String> {
    let bad = |why: &str| {
        Err(format!(
            "`{text}` is not a Debian version ([EPOCH:]UPSTREAM[-REVISION]): {why}"
        ))
    };
    let (epoch, rest) = match text.split_once(':') {
        Some((e, r)) => (e, r),
        None => ("0", text),
    };
    if !numeric(epoch) {
        return bad("the epoch is not a number");
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, r),
        None => (rest, ""),
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return bad("the upstream version does not start with a digit");
    }
    if upstream.contains('_') || revision.contains(['_', ':']) {
        return bad("a character not allowed there");
    }
    if rest.ends_with('-') {
        return bad("an empty revision");
    }
    Ok((epoch, upstream, revision))
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(|c| c.is_ascii_digit());
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

fn debian_cmp(a: &str, b: &str) -> Ordering {
    match (debian_parts(a), debian_parts(b)) {
        (Ok((ea, ua, ra)), Ok((eb, ub, rb))) => {
            let ea = ea.trim_start_matches('0');
            let eb = eb.trim_start_matches('0');
            cmp_numbers(ea, eb)
                .then_with(|| verrevcmp(ua, ub))
                .then_with(|| verrevcmp(ra, rb))
        }
        _ => Ordering::Equal,
    }
}

// ---------------------------------------------------------------------------
// Feed answers.

/// One published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The version.
    pub version: Version,
    /// Where the artifact is, when the feed says (`url`, `html_url`, `Filename`).
    pub url: Option<String>,
    /// Marked a pre-release by the feed (GitHub's flag, `"prerelease": true`)
    /// or by the version itself (`1.0.0-rc.1`).
    pub prerelease: bool,
}

/// An entry of the answer that is not a version, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The entry as found (shortened).
    pub entry: String,
    /// Why it is no version.
    pub reason: String,
}

/// What a feed answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The versions, in the answer's order.
    pub versions: Vec<Published>,
    /// What was not a version, with reasons.
    pub ignored: Vec<Ignored>,
}

impl Listing {
    /// The newest version, pre-releases only when `prereleases`.
    pub fn newest(&self, prereleases: bool) -> Option<&Published> {
        self.versions
            .iter()
            .filter(|p| prereleases || !p.prerelease)
            .max_by(|a, b| a.version.cmp(&b.version))
    }

    /// The entry for `version` (by text).
    pub fn find(&self, version: &str) -> Option<&Published> {
        self.versions.iter().find(|p| p.version.as_str() == version)
    }
}

/// Why a feed's answer could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// Not JSON, where JSON was expected.
    #[error("the {kind} feed did not answer JSON: {why}")]
    NotJson {
        /// The feed kind.
        kind: FeedKind,
        /// The parser's message.
        why: String,
    },
    /// JSON of another shape.
    #[error("the {kind} feed's answer has an unexpected shape: {why}")]
    Shape {
        /// The feed kind.
        kind: FeedKind,
        /// What was expected.
        why: String,
    },
    /// Not text.
    #[error("the {kind} feed's answer is not UTF-8 text")]
    NotText {
        /// The feed kind.
        kind: FeedKind,
    },
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

struct Collect {
    scheme: Scheme,
    out: Listing,
}

impl Collect {
    fn push(&mut self, text: &str, url: Option<String>, flagged: bool) {
        match Version::parse(self.scheme, text) {
            Ok(v) => {
                let prerelease = flagged || v.is_prerelease();
                self.out.versions.push(Published {
                    version: v,
                    url,
                    prerelease,
                });
            }
            Err(reason) => self.ignore(text, reason),
        }
    }

    fn ignore(&mut self, entry: &str, reason: String) {
        self.out.ignored.push(Ignored {
            entry: shorten(entry),
            reason,
        });
    }
}

/// Reads a feed's answer. `package` is the package a `debian-packages`
/// index is searched for (other kinds ignore it). Never panics, whatever
/// the bytes.
pub fn parse(kind: FeedKind, body: &[u8], package: &str) -> Result<Listing, FeedError> {
    let mut c = Collect {
        scheme: kind.scheme(),
        out: Listing::default(),
    };
    let json = || -> Result<serde_json::Value, FeedError> {
        serde_json::from_slice(body).map_err(|e| FeedError::NotJson {
            kind,
            why: e.to_string(),
        })
    };
    let shape = |why: &str| FeedError::Shape {
        kind,
        why: why.to_string(),
    };
    match kind {
        FeedKind::HttpJson => {
            let v = json()?;
            let items = match &v {
                serde_json::Value::Array(a) => a,
                serde_json::Value::Object(o) => match o.get("versions") {
                    Some(serde_json::Value::Array(a)) => a,
                    _ => return Err(shape("expected an array, or an object with a `versions` array")),
                },
                _ => return Err(shape("expected an array, or an object with a `versions` array")),
            };
            for item in items {
                match item {
                    serde_json::Value::String(s) => c.push(s, None, false),
                    serde_json::Value::Object(o) => match o.get("version").and_then(|v| v.as_str()) {
                        Some(s) => {
                            let url = o.get("url").and_then(|u| u.as_str()).map(String::from);
                            let pre = o.get("prerelease").and_then(|p| p.as_bool()).unwrap_or(false);
                            c.push(s, url, pre);
                        }
                        None => c.ignore(&item.to_string(), "an object without a `version` string".into()),
                    },
                    other => c.ignore(&other.to_string(), "neither a string nor an object".into()),
                }
            }
        }
        FeedKind::GithubReleases => {
            #[derive(Deserialize)]
            struct Release {
                tag_name: Option<String>,
                #[serde(default)]
                draft: bool,
                #[serde(default)]
                prerelease: bool,
                html_url: Option<String>,
            }
            let v = json()?;
            let serde_json::Value::Array(items) = v else {
                return Err(shape("expected an array of releases"));
            };
            for item in items {
                let text = item.to_string();
                match serde_json::from_value::<Release>(item) {
                    Ok(r) => match r.tag_name {
                        Some(_) if r.draft => c.ignore(&text, "a draft release".into()),
                        Some(t) => c.push(&t, r.html_url, r.prerelease),
                        None => c.ignore(&text, "a release without `tag_name`".into()),
                    },
                    Err(e) => c.ignore(&text, format!("not a release: {e}")),
                }
            }
        }
        FeedKind::OciTags => {
            let v = json()?;
            let tags = match v.get("tags") {
                Some(serde_json::Value::Array(a)) => a.clone(),
                Some(serde_json::Value::Null) => Vec::new(),
                _ => return Err(shape("expected {\"name\": ..., \"tags\": [...]}")),
            };
            for t in tags {
                match t.as_str() {
                    Some(s) => c.push(s, None, false),
                    None => c.ignore(&t.to_string(), "a tag that is not a string".into()),
                }
            }
        }
        FeedKind::DebianPackages => {
            let text = std::str::from_utf8(body).map_err(|_| FeedError::NotText { kind })?;
            for stanza in text.split("\n\n") {
                let mut name = None;
                let mut version = None;
                let mut filename = None;
                for line in stanza.lines() {
                    if line.starts_with([' ', '\t']) {
                        continue;
                    }
                    let Some((k, v)) = line.split_once(':') else { continue };
                    let v = v.trim();
                    if k.eq_ignore_ascii_case("Package") {
                        name = Some(v);
                    } else if k.eq_ignore_ascii_case("Version") {
                        version = Some(v);
                    } else if k.eq_ignore_ascii_case("Filename") {
                        filename = Some(v.to_string());
                    }
                }
                if name != Some(package) {
                    continue;
                }
                match version {
                    Some(v) => c.push(v, filename, false),
                    None => c.ignore(&format!("Package: {package}"), "a stanza without `Version`".into()),
                }
            }
        }
    }
    Ok(c.out)
}

/// What a new answer means against the versions seen before and the one
/// that runs: the newest deployable version, and the new entries that are
/// not deployed because something newer is known (never backwards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct News {
    /// A version newer than `known` and than what runs: deploy it.
    pub deploy: Option<Published>,
    /// Versions that appeared but are not newer, each with why not.
    pub behind: Vec<(String, String)>,
}

/// Compares a feed's answer with what was known: `seen` (texts of versions
/// seen before), `known` (the newest version known: polled or pushed) and
/// `running` (the version that runs, if a feed version runs).
pub fn news(
    listing: &Listing,
    seen: &[String],
    known: Option<&Version>,
    running: Option<&Version>,
    prereleases: bool,
) -> News {
    let floor = match (known, running) {
        (Some(k), Some(r)) => Some(if k >= r { k } else { r }),
        (k, r) => k.or(r),
    };
    let deploy = listing
        .newest(prereleases)
        .filter(|p| floor.is_none_or(|f| p.version > *f))
        .cloned();
    let mut behind = Vec::new();
    for p in &listing.versions {
        if seen.iter().any(|s| s == p.version.as_str()) || deploy.as_ref().is_some_and(|d| d.version == p.version) {
            continue;
        }
        if p.prerelease && !prereleases {
            behind.push((
                p.version.to_string(),
                "a pre-release (the feed does not follow pre-releases: `prereleases = true`)".to_string(),
            ));
            continue;
        }
        let newer = deploy.as_ref().map(|d| &d.version).or(floor);
        if let Some(n) = newer
            && p.version <= *n
        {
            let what = if running == Some(n) { "runs" } else { "is known" };
            behind.push((
                p.version.to_string(),
                format!("{n} {what} and is newer: versions are never deployed backwards"),
            ));
        }
    }
    News { deploy, behind }
}

#[cfg(test)]
mod tests;
