//! The generic package endpoint contract as documented in the README:
//! headers, body fields, defaults, and the errors for what is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use greenroom_webhook::{
    Delivery, EventKind, Forge, PackageEvent, Secret, Verdict, Verifier, WebhookError, parse, sign_package,
};

fn headers(id: &str) -> Vec<(&'static str, String)> {
    vec![("X-Greenroom-Delivery", id.to_string())]
}

#[test]
fn full_body_round_trips_through_sign_verify_parse() {
    let event = PackageEvent {
        component: "api".into(),
        version: "1.4.2".into(),
        image: Some("registry.example.com/api:1.4.2".into()),
        digest: Some("sha256:0123".into()),
        published_at: Some("2026-11-23T10:00:00Z".into()),
    };
    let body = serde_json::to_vec(&event).unwrap();
    let mut h = headers("build-8812");
    h.push(("X-Greenroom-Signature-256", sign_package(b"s", &body)));
    let verifier = Verifier::new().with_secret(Forge::Package, Secret::new(b"s".to_vec()).unwrap());
    assert_eq!(verifier.verify(Forge::Package, &h, &body), Ok(Verdict::Authenticated));
    assert_eq!(
        parse(Forge::Package, &h, &body).unwrap(),
        Delivery {
            forge: Forge::Package,
            id: "build-8812".into(),
            event: "package".into(),
            action: Some("published".into()),
            repo: None,
            kind: EventKind::Package {
                name: "api".into(),
                version: "1.4.2".into(),
                ecosystem: None,
                action: "published".into(),
                image: Some("registry.example.com/api:1.4.2".into()),
                digest: Some("sha256:0123".into()),
                published_at: Some("2026-11-23T10:00:00Z".into()),
            },
        }
    );
}

#[test]
fn minimal_body_and_unknown_fields_are_fine() {
    let body = br#"{"component":"worker","version":"2026.11.23-1","channel":"nightly","image":""}"#;
    let d = parse(Forge::Package, &headers("d1"), body).unwrap();
    let EventKind::Package {
        name,
        version,
        image,
        digest,
        published_at,
        ..
    } = d.kind
    else {
        panic!()
    };
    assert_eq!((name.as_str(), version.as_str()), ("worker", "2026.11.23-1"));
    assert_eq!((image, digest, published_at), (None, None, None));
}

#[test]
fn missing_or_empty_required_fields_are_named() {
    let cases: [(&[u8], &str); 4] = [
        (br#"{"version":"1"}"#, "component"),
        (br#"{"component":"","version":"1"}"#, "component"),
        (br#"{"component":"api"}"#, "version"),
        (br#"{"component":"api","version":null}"#, "version"),
    ];
    for (body, path) in cases {
        assert_eq!(
            parse(Forge::Package, &headers("d1"), body),
            Err(WebhookError::MissingField {
                event: "package".into(),
                path: path.into()
            })
        );
    }
    match parse(Forge::Package, &headers("d1"), br#"{"component":"api","version":1.2}"#) {
        Err(WebhookError::InvalidField { path, .. }) => assert_eq!(path, "version"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn delivery_id_is_required_and_bounded() {
    let body = br#"{"component":"api","version":"1"}"#;
    let none: [(&str, &str); 0] = [];
    assert_eq!(
        parse(Forge::Package, &none, body),
        Err(WebhookError::MissingDeliveryId {
            expected: "X-Greenroom-Delivery"
        })
    );
    let long = "x".repeat(257);
    assert!(matches!(
        parse(Forge::Package, &headers(&long), body),
        Err(WebhookError::InvalidHeader { .. })
    ));
    assert!(matches!(
        parse(Forge::Package, &headers("a\u{7}b"), body),
        Err(WebhookError::InvalidHeader { .. })
    ));
    assert!(parse(Forge::Package, &headers(&"x".repeat(256)), body).is_ok());
}
