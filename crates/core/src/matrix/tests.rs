use super::*;
use proptest::prelude::*;

fn axes(spec: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    spec.iter()
        .map(|(n, v)| (n.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

fn vals(spec: &[(&str, &str)]) -> Vec<(String, String)> {
    spec.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn resp(status: u16, body: &str) -> Response {
    Response {
        status,
        body: body.into(),
        latency_ms: 3,
    }
}

#[test]
fn combinations_vary_the_last_axis_fastest() {
    let a = axes(&[
        ("runner_type", &["instance_type", "group_type", "project_type"]),
        ("age", &["fresh", "stale"]),
    ]);
    let labels: Vec<String> = combinations(&a).unwrap().iter().map(Combination::label).collect();
    assert_eq!(
        labels,
        [
            "instance_type/fresh",
            "instance_type/stale",
            "group_type/fresh",
            "group_type/stale",
            "project_type/fresh",
            "project_type/stale"
        ]
    );
    let c = &combinations(&a).unwrap()[3];
    assert_eq!(c.index, 3);
    assert_eq!(c.values, vals(&[("runner_type", "group_type"), ("age", "stale")]));
    // No axes: one combination, the default.
    assert_eq!(combinations(&[]).unwrap()[0].label(), "default");
}

#[test]
fn combinations_are_bounded() {
    let ten: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let a: Vec<(String, Vec<String>)> = (0..4).map(|i| (format!("a{i}"), ten.clone())).collect();
    assert_eq!(
        combinations(&a).unwrap_err(),
        MatrixError::TooManyCombinations { count: 10_000 }
    );
    assert_eq!(
        combinations(&a).unwrap_err().to_string(),
        "the axes make 10000 combinations; at most 1000 are allowed (split the matrix)"
    );
    assert_eq!(
        combinations(&axes(&[("x", &[])])).unwrap_err(),
        MatrixError::EmptyAxis("x".into())
    );
    // A product that overflows saturates instead of wrapping.
    let huge: Vec<(String, Vec<String>)> = (0..70)
        .map(|i| (format!("a{i}"), vec!["1".into(), "2".into()]))
        .collect();
    assert_eq!(count(&huge), usize::MAX);
}

#[test]
fn json_braces_are_literal_and_values_are_escaped() {
    let v = vals(&[("runner_type", "group\"type"), ("token", "a b/c")]);
    let body = r#"{"runner_type": "{runner_type}", "nested": {"x": {}}}"#;
    assert_eq!(placeholders(body), ["runner_type"]);
    assert_eq!(
        render(body, &v, Escape::Json),
        r#"{"runner_type": "group\"type", "nested": {"x": {}}}"#
    );
    assert_eq!(
        render("/api/v4/runners?token={token}", &v, Escape::Url),
        "/api/v4/runners?token=a%20b%2Fc"
    );
    assert_eq!(render("Bearer {token}", &v, Escape::None), "Bearer a b/c");
    // Unknown placeholders stay (validation reports them).
    assert_eq!(render("{nope}{", &v, Escape::None), "{nope}{");
    // A later value (a capture) wins over an earlier one of the same name.
    let v2 = vals(&[("x", "1"), ("x", "2")]);
    assert_eq!(render("{x}", &v2, Escape::None), "2");
}

#[test]
fn pointers() {
    for ok in ["", "/", "/a", "/a/0", "/a~0b/c~1d"] {
        assert!(valid_pointer(ok), "{ok}");
    }
    for bad in ["a", "/a~", "/a~2"] {
        assert!(!valid_pointer(bad), "{bad}");
    }
}

#[test]
fn a_5xx_fails_whatever_was_expected() {
    let e = Expect {
        status: vec![500],
        ..Default::default()
    };
    let f = check(&e, &resp(500, r#"{"error":"ForeignKeyViolation"}"#), &[]);
    assert_eq!(f.len(), 1);
    assert!(f[0].starts_with("500 (a server error"), "{f:?}");
    assert!(f[0].contains("ForeignKeyViolation"));
    // Without a status: any 2xx.
    assert!(check(&Expect::default(), &resp(204, ""), &[]).is_empty());
    assert_eq!(
        check(&Expect::default(), &resp(404, "nope"), &[]),
        ["404 (expected a 2xx): nope"]
    );
    let e = Expect {
        status: vec![201, 204],
        ..Default::default()
    };
    assert!(check(&e, &resp(204, ""), &[]).is_empty());
    assert_eq!(check(&e, &resp(200, "{}"), &[]), ["200 (expected 201 or 204): {}"]);
}

#[test]
fn json_expectations_and_latency() {
    let e = Expect {
        status: vec![200],
        json: vec![
            ("/status".into(), serde_json::json!("online")),
            ("/runner_type".into(), serde_json::json!("{runner_type}")),
            ("/id".into(), serde_json::json!(7)),
        ],
        matches: vec![
            ("/token".into(), "^glrt-[a-z0-9]+$".into()),
            ("/id".into(), "^[0-9]+$".into()),
        ],
        latency_ms: Some(2),
    };
    let v = vals(&[("runner_type", "group_type")]);
    let ok = r#"{"status":"online","runner_type":"group_type","id":7,"token":"glrt-abc1"}"#;
    assert_eq!(check(&e, &resp(200, ok), &v), ["took 3 ms (at most 2 ms expected)"]);
    let bad = r#"{"status":"offline","id":8,"token":"nope"}"#;
    assert_eq!(
        check(&e, &resp(200, bad), &v),
        [
            "took 3 ms (at most 2 ms expected)",
            "/status is \"offline\", expected \"online\"",
            "/runner_type is missing, expected \"group_type\"",
            "/id is 8, expected 7",
            "/token is \"nope\", which does not match /^glrt-[a-z0-9]+$/",
        ]
    );
    assert_eq!(
        check(&e, &resp(200, "<html>"), &v)[1],
        "the body is not JSON, so no JSON expectation can hold"
    );
}

#[test]
fn captures() {
    let caps = vec![
        ("token".to_string(), "/token".to_string()),
        ("id".to_string(), "/id".to_string()),
    ];
    assert_eq!(
        capture(&caps, r#"{"token":"t1","id":42}"#).unwrap(),
        vals(&[("token", "t1"), ("id", "42")])
    );
    assert_eq!(
        capture(&caps, r#"{"id":42}"#).unwrap_err(),
        "cannot capture `token`: /token is not in the response"
    );
    assert!(
        capture(&caps, "")
            .unwrap_err()
            .starts_with("cannot capture from a body that is not JSON")
    );
    assert_eq!(capture(&[], "not json").unwrap(), vec![]);
}

#[test]
fn summaries() {
    let f = |c: &str, s: &str, d: &str| Failure {
        combination: c.into(),
        step: s.into(),
        detail: d.into(),
    };
    assert_eq!(summary(24, &[]), "24 of 24 passed");
    assert_eq!(
        summary(24, &[f("group_type/stale", "verify", "500 ForeignKeyViolation\nmore")]),
        "1 of 24 failed: group_type/stale verify -> 500 ForeignKeyViolation"
    );
    let many: Vec<Failure> = (0..5).map(|i| f(&format!("c{i}"), "s", "x")).collect();
    assert_eq!(
        summary(24, &many),
        "5 of 24 failed: c0 s -> x; c1 s -> x; c2 s -> x; and 2 more"
    );
}

#[test]
fn secrets_and_variables() {
    for h in [
        "Authorization",
        "PRIVATE-TOKEN",
        "X-Runner-Token",
        "Cookie",
        "X-Api-Key",
    ] {
        assert!(secret_header(h), "{h}");
    }
    assert!(!secret_header("Content-Type"));
    assert_eq!(env_var("runner_type"), "MATRIX_RUNNER_TYPE");
    assert_eq!(truncate("héllo", 2), "h… (5 more bytes)");
}

proptest! {
    #[test]
    fn rendering_never_panics_and_keeps_literals(t in ".{0,80}", v in "[ -~é\"\\\\{}]{0,20}") {
        let values = vals(&[("a", &v), ("b_1", "x")]);
        for e in [Escape::None, Escape::Json, Escape::Url] {
            let out = render(&t, &values, e);
            // Without placeholders, rendering is the identity.
            if placeholders(&t).is_empty() {
                prop_assert_eq!(&out, &t);
            }
        }
    }

    #[test]
    fn a_json_escaped_value_round_trips(v in ".{0,40}") {
        let out = render(r#"{"v": "{a}"}"#, &vals(&[("a", &v)]), Escape::Json);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        prop_assert_eq!(parsed["v"].as_str(), Some(v.as_str()));
    }

    #[test]
    fn url_escaped_values_are_plain_ascii(v in ".{0,40}") {
        let out = render("{a}", &vals(&[("a", &v)]), Escape::Url);
        prop_assert!(out.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
    }

    #[test]
    fn combinations_count_is_the_product(sizes in proptest::collection::vec(1usize..5, 0..5)) {
        let a: Vec<(String, Vec<String>)> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("a{i}"), (0..*n).map(|j| format!("v{j}")).collect()))
            .collect();
        let cs = combinations(&a).unwrap();
        prop_assert_eq!(cs.len(), sizes.iter().product::<usize>());
        // All distinct, every value from its axis, indexes in order.
        let mut labels: Vec<String> = cs.iter().map(|c| c.values.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>().join(",")).collect();
        labels.sort();
        labels.dedup();
        prop_assert_eq!(labels.len(), cs.len());
        for (i, c) in cs.iter().enumerate() {
            prop_assert_eq!(c.index, i);
            for ((n, v), (an, av)) in c.values.iter().zip(&a) {
                prop_assert_eq!(n, an);
                prop_assert!(av.contains(v));
            }
        }
    }

    #[test]
    fn check_never_panics_and_5xx_always_fails(status in 100u16..600, body in ".{0,60}", lat in 0u64..1000) {
        let e = Expect {
            status: vec![status],
            json: vec![("/a".into(), serde_json::json!("x"))],
            matches: vec![("/b".into(), "[".into())],
            latency_ms: Some(500),
        };
        let r = Response { status, body, latency_ms: lat };
        let f = check(&e, &r, &[]);
        if status >= 500 {
            prop_assert!(!f.is_empty());
        }
    }

    #[test]
    fn truncation_respects_char_boundaries(s in ".{0,40}", max in 0usize..50) {
        let t = truncate(&s, max);
        prop_assert!(t.len() <= s.len().max(max) + 40);
    }
}
