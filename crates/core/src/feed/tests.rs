use super::*;
use proptest::prelude::*;

fn sv(s: &str) -> Version {
    Version::parse(Scheme::Semver, s).unwrap_or_else(|e| panic!("{e}"))
}

fn deb(s: &str) -> Version {
    Version::parse(Scheme::Debian, s).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn semver_precedence_follows_the_specification() {
    // The example chain of semver.org, section 11.
    let chain = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "1.10.0",
        "2.0.0",
        "10.0.0",
        "v11.0.0",
    ];
    for w in chain.windows(2) {
        assert!(sv(w[0]) < sv(w[1]), "{} < {}", w[0], w[1]);
        assert_eq!(sv(w[0]).precedence(&sv(w[1])), Ordering::Less, "{} < {}", w[0], w[1]);
    }
    assert_eq!(
        sv("1.0.0+a").precedence(&sv("1.0.0+b")),
        Ordering::Equal,
        "build metadata does not rank"
    );
    assert!(sv("1.0.0+a") < sv("1.0.0+b"), "but the order is total");
    assert!(sv("99999999999999999999999.0.0") > sv("9.0.0"), "numbers of any size");
    assert!(sv("1.0.0-rc.1").is_prerelease());
    assert!(!sv("v1.0.0").is_prerelease());
    for bad in [
        "latest",
        "1.0",
        "1",
        "01.0.0",
        "1.0.0-",
        "1.0.0-01",
        "1.0.0+",
        "1.0.0-a..b",
        "main",
    ] {
        assert!(Version::parse(Scheme::Semver, bad).is_err(), "{bad}");
    }
}

#[test]
fn debian_versions_compare_as_dpkg_does() {
    // From deb-version(7) and dpkg's own test suite.
    let chain = [
        "1.0~rc1", "1.0", "1.0-1", "1.0-1+b1", "1.0a", "1.0+dfsg", "1.1", "1.10", "2.0", "1:0.1", "2:0.1",
    ];
    for w in chain.windows(2) {
        assert_eq!(deb(w[0]).precedence(&deb(w[1])), Ordering::Less, "{} < {}", w[0], w[1]);
    }
    assert_eq!(deb("1.0~~").precedence(&deb("1.0~")), Ordering::Less, "~~ before ~");
    assert_eq!(
        deb("1.0").precedence(&deb("0:1.0")),
        Ordering::Equal,
        "epoch 0 is the default"
    );
    assert_eq!(deb("1.0").precedence(&deb("1.00")), Ordering::Equal);
    assert_eq!(deb("17.6.1-ee.0").precedence(&deb("17.6.0-ee.0")), Ordering::Greater);
    assert_eq!(deb("17.10.0-ee.0").precedence(&deb("17.9.2-ee.0")), Ordering::Greater);
    for bad in ["a1.0", "x:1.0", "1.0-", "", "1.0 beta", "$(reboot)"] {
        assert!(Version::parse(Scheme::Debian, bad).is_err(), "{bad}");
    }
}

#[test]
fn http_json_takes_strings_and_objects() {
    let body = br#"{"versions": ["1.0.0", {"version": "1.2.0", "url": "https://dl.example/1.2.0.tgz"},
        {"version": "2.0.0-rc.1"}, {"version": "1.3.0", "prerelease": true}, "latest", {"name": "x"}, 7]}"#;
    let l = parse(FeedKind::HttpJson, body, "api").unwrap_or_else(|e| panic!("{e}"));
    let texts: Vec<&str> = l.versions.iter().map(|p| p.version.as_str()).collect();
    assert_eq!(texts, ["1.0.0", "1.2.0", "2.0.0-rc.1", "1.3.0"]);
    assert_eq!(l.ignored.len(), 3, "{:?}", l.ignored);
    assert!(
        l.ignored[0].reason.contains("not a semantic version"),
        "{:?}",
        l.ignored
    );
    let newest = l.newest(false).map(|p| p.version.as_str());
    assert_eq!(
        newest,
        Some("1.2.0"),
        "pre-releases (by text or flag) only when followed"
    );
    assert_eq!(l.newest(true).map(|p| p.version.as_str()), Some("2.0.0-rc.1"));
    assert_eq!(
        l.find("1.2.0").and_then(|p| p.url.as_deref()),
        Some("https://dl.example/1.2.0.tgz")
    );
    let bare = parse(FeedKind::HttpJson, br#"["0.9.0", "0.10.0"]"#, "").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        bare.newest(false).map(|p| p.version.as_str()),
        Some("0.10.0"),
        "not text order"
    );
    assert!(matches!(
        parse(FeedKind::HttpJson, b"<html>", ""),
        Err(FeedError::NotJson { .. })
    ));
    assert!(matches!(
        parse(FeedKind::HttpJson, br#"{"tags": []}"#, ""),
        Err(FeedError::Shape { .. })
    ));
}

#[test]
fn github_releases_skip_drafts_and_flag_prereleases() {
    // The `release` object of GitHub's documented `release.published`
    // webhook example (the REST list's items have the same fields), plus
    // a draft, a pre-release and a tag that is no version.
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../../../webhook/tests/fixtures/github/release/published.payload.json"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let published = fixture["release"].clone();
    assert_eq!(published["tag_name"], "0.0.1");
    let body = serde_json::json!([
        published,
        {"tag_name": "v0.2.0", "draft": true, "prerelease": false},
        {"tag_name": "v0.1.0", "draft": false, "prerelease": true, "html_url": "https://github.com/o/r/releases/tag/v0.1.0"},
        {"tag_name": "nightly", "draft": false, "prerelease": false},
        {"name": "no tag"}
    ]);
    let l = parse(FeedKind::GithubReleases, body.to_string().as_bytes(), "").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.versions.len(), 2);
    assert_eq!(l.newest(false).map(|p| p.version.as_str()), Some("0.0.1"));
    assert_eq!(l.newest(true).map(|p| p.version.as_str()), Some("v0.1.0"));
    let reasons: Vec<&str> = l.ignored.iter().map(|i| i.reason.as_str()).collect();
    assert!(reasons[0].contains("draft"), "{reasons:?}");
    assert!(reasons[1].contains("not a semantic version"), "{reasons:?}");
    assert!(reasons[2].contains("tag_name"), "{reasons:?}");
}

#[test]
fn debian_packages_index_finds_the_package() {
    let index = "Package: gitlab-ce\nVersion: 18.0.0-ce.0\nFilename: pool/g/gitlab-ce_18.0.0-ce.0_amd64.deb\n\n\
                 Package: gitlab-ee\nVersion: 17.9.2-ee.0\nArchitecture: amd64\nDescription: GitLab\n more text: here\n\
                 Filename: pool/g/gitlab-ee_17.9.2-ee.0_amd64.deb\n\n\
                 Package: gitlab-ee\nVersion: 17.10.0-ee.0\nFilename: pool/g/gitlab-ee_17.10.0-ee.0_amd64.deb\n\n\
                 Package: gitlab-ee\nVersion: 17.10.0~rc1-ee.0\n\n\
                 Package: gitlab-ee\nDescription: broken stanza\n";
    let l = parse(FeedKind::DebianPackages, index.as_bytes(), "gitlab-ee").unwrap_or_else(|e| panic!("{e}"));
    let texts: Vec<&str> = l.versions.iter().map(|p| p.version.as_str()).collect();
    assert_eq!(texts, ["17.9.2-ee.0", "17.10.0-ee.0", "17.10.0~rc1-ee.0"]);
    let newest = l.newest(false).unwrap_or_else(|| panic!("a version"));
    assert_eq!(newest.version.as_str(), "17.10.0-ee.0");
    assert_eq!(newest.url.as_deref(), Some("pool/g/gitlab-ee_17.10.0-ee.0_amd64.deb"));
    assert_eq!(l.ignored.len(), 1);
    assert!(matches!(
        parse(FeedKind::DebianPackages, &[0xff, 0xfe], "x"),
        Err(FeedError::NotText { .. })
    ));
}

#[test]
fn oci_tag_lists_ignore_tags_that_are_no_versions() {
    let body = br#"{"name": "org/api", "tags": ["latest", "1.4.2", "1.10.0", "sha-1a2b3c", "1.4.2-alpine"]}"#;
    let l = parse(FeedKind::OciTags, body, "").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.newest(false).map(|p| p.version.as_str()), Some("1.10.0"));
    assert_eq!(l.ignored.len(), 2);
    let empty = parse(FeedKind::OciTags, br#"{"name": "org/api", "tags": null}"#, "").unwrap_or_else(|e| panic!("{e}"));
    assert!(empty.versions.is_empty());
}

#[test]
fn news_never_goes_backwards() {
    let l = parse(FeedKind::HttpJson, br#"["1.0.0", "2.0.0", "1.5.0"]"#, "").unwrap_or_else(|e| panic!("{e}"));
    let seen = vec!["1.0.0".to_string(), "2.0.0".to_string()];
    let n = news(&l, &seen, Some(&sv("2.0.0")), Some(&sv("2.0.0")), false);
    assert_eq!(n.deploy, None);
    assert_eq!(n.behind.len(), 1);
    assert_eq!(n.behind[0].0, "1.5.0");
    assert!(n.behind[0].1.contains("2.0.0 runs") && n.behind[0].1.contains("never deployed backwards"));

    let l2 = parse(FeedKind::HttpJson, br#"["1.0.0", "2.0.0", "2.1.0"]"#, "").unwrap_or_else(|e| panic!("{e}"));
    let n = news(&l2, &seen, Some(&sv("2.0.0")), Some(&sv("1.0.0")), false);
    assert_eq!(n.deploy.map(|p| p.version.to_string()).as_deref(), Some("2.1.0"));
    assert!(n.behind.is_empty());

    // What runs counts even when nothing was seen (a first poll after a push).
    let n = news(&l2, &[], None, Some(&sv("3.0.0")), false);
    assert_eq!(n.deploy, None);
    assert_eq!(n.behind.len(), 3);
    // A first poll with nothing running deploys the newest; the others are
    // behind it (the server records no decision for a first poll's history).
    let n = news(&l2, &[], None, None, false);
    assert_eq!(n.deploy.map(|p| p.version.to_string()).as_deref(), Some("2.1.0"));
    assert_eq!(n.behind.len(), 2);
    assert!(n.behind[0].1.contains("2.1.0 is known"), "{:?}", n.behind);
}

#[test]
fn kinds_round_trip() {
    for k in FeedKind::ALL {
        assert_eq!(FeedKind::parse(k.as_str()), Some(k));
    }
    assert_eq!(FeedKind::parse("rss"), None);
}

fn semver_text() -> impl Strategy<Value = String> {
    let num = prop_oneof![Just("0".to_string()), "[1-9][0-9]{0,3}"];
    let ident = prop_oneof![Just("0".to_string()), "[1-9][0-9]{0,2}", "[a-z][a-z0-9-]{0,4}"];
    (
        prop::bool::ANY,
        num.clone(),
        num.clone(),
        num,
        prop::collection::vec(ident, 0..3),
        prop::option::of("[a-z0-9]{1,3}"),
    )
        .prop_map(|(v, a, b, c, pre, build)| {
            let mut s = format!("{}{a}.{b}.{c}", if v { "v" } else { "" });
            if !pre.is_empty() {
                s.push('-');
                s.push_str(&pre.join("."));
            }
            if let Some(b) = build {
                s.push('+');
                s.push_str(&b);
            }
            s
        })
}

fn debian_text() -> impl Strategy<Value = String> {
    (
        prop::option::of(0u8..3),
        "[0-9][0-9a-z.+~]{0,6}",
        prop::option::of("[0-9a-z.+~]{1,4}"),
    )
        .prop_map(|(e, u, r)| {
            let mut s = String::new();
            if let Some(e) = e {
                s.push_str(&format!("{e}:"));
            }
            s.push_str(&u);
            if let Some(r) = r {
                s.push('-');
                s.push_str(&r);
            }
            s
        })
}

fn total_order(a: &Version, b: &Version, c: &Version) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.cmp(b), b.cmp(a).reverse(), "antisymmetric");
    prop_assert_eq!(a.cmp(b) == Ordering::Equal, a == b, "equal only when the same");
    if a <= b && b <= c {
        prop_assert!(a <= c, "transitive: {} <= {} <= {}", a, b, c);
    }
    if a.precedence(b) == Ordering::Less {
        prop_assert!(a < b, "consistent with precedence");
    }
    Ok(())
}

proptest! {
    #[test]
    fn semver_order_is_total(a in semver_text(), b in semver_text(), c in semver_text()) {
        let (a, b, c) = (sv(&a), sv(&b), sv(&c));
        total_order(&a, &b, &c)?;
        // A release ranks above its pre-releases.
        if a.as_str().contains('-') {
            let release = a.as_str().split(['-', '+']).next().unwrap_or_default().to_string();
            prop_assert!(sv(&release) > a);
        }
    }

    #[test]
    fn debian_order_is_total(a in debian_text(), b in debian_text(), c in debian_text()) {
        let (a, b, c) = (deb(&a), deb(&b), deb(&c));
        total_order(&a, &b, &c)?;
        // `~` sorts before everything, even the end.
        let tilde = deb(&format!("{}~", a.as_str().trim_end_matches('-')));
        if !a.as_str().contains('-') {
            prop_assert!(tilde < a, "{} < {}", tilde, a);
        }
    }

    #[test]
    fn parsing_never_panics(body in prop::collection::vec(any::<u8>(), 0..300), kind in 0usize..4) {
        let _ = parse(FeedKind::ALL[kind], &body, "p");
    }

    #[test]
    fn json_feeds_never_panic(items in prop::collection::vec(prop_oneof![
        "[ -~]{0,12}".prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        "[ -~]{0,12}".prop_map(|s| serde_json::json!({"version": s, "tag_name": s, "draft": false})),
    ], 0..8)) {
        let body = serde_json::Value::Array(items.clone()).to_string();
        for kind in [FeedKind::HttpJson, FeedKind::GithubReleases] {
            if let Ok(l) = parse(kind, body.as_bytes(), "") {
                for p in &l.versions {
                    prop_assert!(check_text(p.version.as_str()).is_ok());
                }
                let _ = l.newest(true);
            }
        }
        let tags = serde_json::json!({"name": "x", "tags": items}).to_string();
        let _ = parse(FeedKind::OciTags, tags.as_bytes(), "");
    }

    #[test]
    fn the_newest_is_never_below_another(texts in prop::collection::vec(semver_text(), 1..8)) {
        let body = serde_json::to_string(&texts).unwrap_or_default();
        let l = parse(FeedKind::HttpJson, body.as_bytes(), "").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let newest = l.newest(true).map(|p| p.version.clone());
        prop_assert!(newest.is_some());
        for p in &l.versions {
            prop_assert!(newest.as_ref().is_some_and(|n| *n >= p.version));
        }
    }
}
