//! Verification: GitHub's documented HMAC test vector, signed fixtures,
//! tampering, wrong secrets, garbled headers, the unsigned policy, GitLab
//! tokens and the package endpoint signature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixture;
use greenroom_webhook::{
    Forge, MAX_BODY, Secret, Verdict, Verifier, VerifyError, sign_github, sign_package, verify_hmac_sha256_header,
};

const SIG: &str = "X-Hub-Signature-256";
const GITHUB_SECRET: &[u8] = b"It's a Secret to Everybody";

fn secret(s: &[u8]) -> Secret {
    Secret::new(s.to_vec()).unwrap()
}

fn github() -> Verifier {
    Verifier::new().with_secret(Forge::Github, secret(GITHUB_SECRET))
}

#[test]
fn github_documented_test_vector() {
    let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(sign_github(GITHUB_SECRET, b"Hello, World!"), expected);
    let headers = [(SIG, expected)];
    assert_eq!(
        github().verify(Forge::Github, &headers, b"Hello, World!"),
        Ok(Verdict::Authenticated)
    );
    // Upper-case hex is accepted too.
    let upper = format!("sha256={}", expected.trim_start_matches("sha256=").to_uppercase());
    assert_eq!(
        github().verify(Forge::Github, &[(SIG, upper.as_str())], b"Hello, World!"),
        Ok(Verdict::Authenticated)
    );
}

#[test]
fn signed_fixture_verifies_and_tampering_does_not() {
    let body = fixture("github/pull_request/opened.payload.json");
    let signature = sign_github(GITHUB_SECRET, &body);
    let headers = [("x-hub-signature-256", signature.as_str())];
    assert_eq!(
        github().verify(Forge::Github, &headers, &body),
        Ok(Verdict::Authenticated)
    );

    let mut tampered = body.clone();
    let at = tampered.iter().position(|&b| b == b'2').unwrap();
    tampered[at] = b'3';
    assert_eq!(
        github().verify(Forge::Github, &headers, &tampered),
        Err(VerifyError::SignatureMismatch { header: SIG })
    );
    let mut extended = body.clone();
    extended.push(b'\n');
    assert_eq!(
        github().verify(Forge::Github, &headers, &extended),
        Err(VerifyError::SignatureMismatch { header: SIG })
    );
}

#[test]
fn wrong_secret_is_a_mismatch() {
    let body = fixture("github/push/payload.json");
    let signature = sign_github(b"not the secret", &body);
    assert_eq!(
        github().verify(Forge::Github, &[(SIG, signature.as_str())], &body),
        Err(VerifyError::SignatureMismatch { header: SIG })
    );
}

#[test]
fn missing_and_garbled_signature_headers_are_distinct_errors() {
    let body = b"Hello, World!";
    let v = github();
    let none: [(&str, &str); 0] = [];
    assert_eq!(
        v.verify(Forge::Github, &none, body),
        Err(VerifyError::MissingSignature { header: SIG })
    );
    assert_eq!(
        v.verify(Forge::Github, &[(SIG, "  ")], body),
        Err(VerifyError::MissingSignature { header: SIG })
    );
    let good = sign_github(GITHUB_SECRET, body);
    let hex = good.trim_start_matches("sha256=");
    let cases: Vec<(String, VerifyError)> = vec![
        (
            hex.to_string(),
            VerifyError::MalformedSignature {
                header: SIG,
                reason: "expected `sha256=` followed by hex digits",
            },
        ),
        (
            format!("sha1={hex}"),
            VerifyError::MalformedSignature {
                header: SIG,
                reason: "expected `sha256=` followed by hex digits",
            },
        ),
        (
            format!("sha256={}zz", &hex[2..]),
            VerifyError::MalformedSignature {
                header: SIG,
                reason: "signature is not hexadecimal",
            },
        ),
        (
            "sha256=é".to_string(),
            VerifyError::MalformedSignature {
                header: SIG,
                reason: "signature is not hexadecimal",
            },
        ),
        (
            format!("sha256={}", &hex[..62]),
            VerifyError::WrongSignatureLength {
                header: SIG,
                hex_digits: 62,
            },
        ),
        (
            format!("sha256={}", &hex[..63]),
            VerifyError::WrongSignatureLength {
                header: SIG,
                hex_digits: 63,
            },
        ),
        (
            format!("sha256={hex}00"),
            VerifyError::WrongSignatureLength {
                header: SIG,
                hex_digits: 66,
            },
        ),
        (
            "sha256=".to_string(),
            VerifyError::WrongSignatureLength {
                header: SIG,
                hex_digits: 0,
            },
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(
            v.verify(Forge::Github, &[(SIG, value.as_str())], body),
            Err(expected.clone()),
            "{value}"
        );
        assert_eq!(expected.http_status(), 401);
    }
}

#[test]
fn unsigned_deliveries_are_refused_unless_allowed() {
    let body = fixture("github/ping/payload.json");
    let none: [(&str, &str); 0] = [];
    // No secret configured at all.
    let refused = Verifier::new().verify(Forge::Github, &none, &body);
    assert_eq!(refused, Err(VerifyError::UnsignedRefused { forge: Forge::Github }));
    assert_eq!(refused.unwrap_err().http_status(), 401);
    let open = Verifier::new().allow_unsigned(true);
    assert!(open.allows_unsigned());
    assert_eq!(open.verify(Forge::Github, &none, &body), Ok(Verdict::UnsignedAllowed));
    assert_eq!(open.verify(Forge::Gitlab, &none, &body), Ok(Verdict::UnsignedAllowed));
    assert_eq!(open.verify(Forge::Package, &none, &body), Ok(Verdict::UnsignedAllowed));

    // Secret configured, no signature: refused unless allowed...
    assert_eq!(
        github().verify(Forge::Github, &none, &body),
        Err(VerifyError::MissingSignature { header: SIG })
    );
    let lenient = github().allow_unsigned(true);
    assert_eq!(
        lenient.verify(Forge::Github, &none, &body),
        Ok(Verdict::UnsignedAllowed)
    );
    // ...but a signature that is present is still checked.
    let wrong = sign_github(b"other", &body);
    assert_eq!(
        lenient.verify(Forge::Github, &[(SIG, wrong.as_str())], &body),
        Err(VerifyError::SignatureMismatch { header: SIG })
    );
    // A secret for one forge does not open another.
    assert_eq!(
        github().verify(Forge::Gitlab, &none, &body),
        Err(VerifyError::UnsignedRefused { forge: Forge::Gitlab })
    );
    assert!(github().has_secret(Forge::Github) && !github().has_secret(Forge::Package));
}

#[test]
fn gitlab_token_right_wrong_missing() {
    let body = fixture("gitlab/push.json");
    let v = Verifier::new().with_secret(Forge::Gitlab, secret(b"glpat-webhook-token"));
    let tok = "X-Gitlab-Token";
    assert_eq!(
        v.verify(Forge::Gitlab, &[(tok, "glpat-webhook-token")], &body),
        Ok(Verdict::Authenticated)
    );
    assert_eq!(
        v.verify(Forge::Gitlab, &[("x-gitlab-token", "glpat-webhook-token")], &body),
        Ok(Verdict::Authenticated)
    );
    assert_eq!(
        v.verify(Forge::Gitlab, &[(tok, "glpat-webhook-tokeN")], &body),
        Err(VerifyError::TokenMismatch { header: tok })
    );
    assert_eq!(
        v.verify(Forge::Gitlab, &[(tok, "glpat")], &body),
        Err(VerifyError::TokenMismatch { header: tok })
    );
    let none: [(&str, &str); 0] = [];
    assert_eq!(
        v.verify(Forge::Gitlab, &none, &body),
        Err(VerifyError::MissingToken { header: tok })
    );
    // The GitHub signature header does not authenticate a GitLab delivery.
    let sig = sign_github(b"glpat-webhook-token", &body);
    assert_eq!(
        v.verify(Forge::Gitlab, &[(SIG, sig.as_str())], &body),
        Err(VerifyError::MissingToken { header: tok })
    );
}

#[test]
fn package_endpoint_signature() {
    let body = br#"{"component":"api","version":"1.4.2"}"#;
    let v = Verifier::new().with_secret(Forge::Package, secret(b"pkg-secret"));
    let sig = sign_package(b"pkg-secret", body);
    let header = "X-Greenroom-Signature-256";
    assert_eq!(
        v.verify(Forge::Package, &[(header, sig.as_str())], body),
        Ok(Verdict::Authenticated)
    );
    assert_eq!(
        v.verify(Forge::Package, &[(SIG, sig.as_str())], body),
        Err(VerifyError::MissingSignature { header }),
        "the GitHub header name is not accepted on the package endpoint"
    );
    assert_eq!(
        v.verify(
            Forge::Package,
            &[(header, sig.as_str())],
            br#"{"component":"api","version":"1.4.3"}"#
        ),
        Err(VerifyError::SignatureMismatch { header })
    );
}

#[test]
fn oversized_bodies_are_refused_before_hashing() {
    let body = vec![b' '; MAX_BODY + 1];
    let err = github()
        .verify(Forge::Github, &[(SIG, "sha256=00")], &body)
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::BodyTooLarge {
            size: MAX_BODY + 1,
            limit: MAX_BODY
        }
    );
    assert_eq!(err.http_status(), 413);
}

#[test]
fn http_header_map_works_as_headers() {
    let body = b"Hello, World!";
    let mut map = http::HeaderMap::new();
    map.insert(
        SIG,
        http::HeaderValue::from_str(&sign_github(GITHUB_SECRET, body)).unwrap(),
    );
    assert_eq!(github().verify(Forge::Github, &map, body), Ok(Verdict::Authenticated));
    assert!(verify_hmac_sha256_header(SIG, GITHUB_SECRET, None, body).is_err());
}
