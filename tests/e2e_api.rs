//! The REST API end to end: `greenroom serve` with three `[[user]]`s
//! (alice admin everywhere, bob deployer on staging only, vic viewer
//! everywhere), driven over loopback with bearer tokens. Checks the 401/403
//! rules, a real deploy through the API, the read views (environments,
//! cycles with stages, manifests by prefix, deliveries, decisions), leases,
//! the OpenAPI document, and that no token ever comes back in a body.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const ALICE: &str = "alice-token-9f2c1e0b7d";
const BOB: &str = "bob-token-41aa7c3e55";
const VIC: &str = "vic-token-c0ffee1234";

/// One HTTP/1.1 request on loopback: `(status, body)`.
fn request(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write request");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

struct Client {
    port: u16,
    bodies: Vec<String>,
}

impl Client {
    #[track_caller]
    fn call(&mut self, method: &str, path: &str, token: Option<&str>, body: Option<&str>, want: u16) -> Value {
        let (code, text) = request(self.port, method, path, token, body);
        assert_eq!(code, want, "{method} {path}: {text}");
        self.bodies.push(text.clone());
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
    }

    #[track_caller]
    fn get(&mut self, path: &str, token: Option<&str>, want: u16) -> Value {
        self.call("GET", path, token, None, want)
    }

    #[track_caller]
    fn post(&mut self, path: &str, token: &str, body: &str, want: u16) -> Value {
        self.call("POST", path, Some(token), Some(body), want)
    }
}

#[test]
fn api_authenticates_authorizes_deploys_and_documents_itself() {
    let index = 31;
    let port = 21000 + 100 * index + 90;
    let extra = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"

[[user]]
name = "alice"
token = "env:GREENROOM_E2E_ALICE"
github = "alice-gh"
role = "admin"

[[user]]
name = "bob"
token = "env:GREENROOM_E2E_BOB"
environments = {{ staging = "deployer" }}

[[user]]
name = "vic"
token = "env:GREENROOM_E2E_VIC"
role = "viewer"
"#
    );
    let mut sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    for (k, v) in [
        ("GREENROOM_E2E_ALICE", ALICE),
        ("GREENROOM_E2E_BOB", BOB),
        ("GREENROOM_E2E_VIC", VIC),
    ] {
        sb.env.push((k.into(), v.into()));
    }
    let _server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    let mut c = Client {
        port,
        bodies: Vec::new(),
    };

    // The OpenAPI document needs no token and lists every route.
    let doc = c.get("/api/v1/openapi.json", None, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{doc}");
    let paths = doc["paths"].as_object().expect("paths");
    for (p, method) in [
        ("/api/v1/environments", "get"),
        ("/api/v1/environments/{name}", "get"),
        ("/api/v1/environments/{name}/deploy", "post"),
        ("/api/v1/environments/{name}/lease", "post"),
        ("/api/v1/environments/{name}/release", "post"),
        ("/api/v1/cycles", "get"),
        ("/api/v1/cycles/{id}", "get"),
        ("/api/v1/manifests/{id}", "get"),
        ("/api/v1/deliveries", "get"),
        ("/api/v1/decisions", "get"),
        ("/api/v1/audit", "get"),
        ("/api/v1/environments/{name}/rollback", "post"),
        ("/api/v1/openapi.json", "get"),
    ] {
        assert!(
            paths.get(p).and_then(|v| v.get(method)).is_some(),
            "{method} {p} missing"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object(), "{doc}");

    // No token, a malformed header, an unknown token: 401 with a reason.
    let e = c.get("/api/v1/environments", None, 401);
    assert!(e["error"].as_str().is_some_and(|m| m.contains("Bearer")), "{e}");
    c.get("/api/v1/environments", Some("not-a-token"), 401);
    c.get("/api/v1/cycles", Some(&format!("{ALICE}x")), 401);
    let (code, _) = request(port, "POST", "/api/v1/environments/staging/deploy", None, Some("{}"));
    assert_eq!(code, 401);

    // Lists are filtered to what the user may view.
    let envs = c.get("/api/v1/environments", Some(VIC), 200);
    let names: Vec<&str> = envs
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["environment"].as_str())
        .collect();
    assert_eq!(names, ["staging", "dev-1", "dev-2", "solo"], "{envs}");
    for e in envs.as_array().expect("list") {
        assert_eq!(e["paused"], false, "{e}");
        assert!(e["decisions"].is_array() && e["components"].is_array(), "{e}");
    }
    let envs = c.get("/api/v1/environments", Some(BOB), 200);
    let names: Vec<&str> = envs
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["environment"].as_str())
        .collect();
    assert_eq!(names, ["staging"], "{envs}");
    c.get("/api/v1/environments/solo", Some(BOB), 403);
    c.get("/api/v1/environments/nowhere", Some(VIC), 404);

    // Roles: a viewer cannot deploy; bob cannot deploy where he has no grant.
    let body = r#"{"overrides": ["ogr=1"], "reason": "api e2e"}"#;
    let e = c.post("/api/v1/environments/staging/deploy", VIC, body, 403);
    assert!(e["error"].as_str().is_some_and(|m| m.contains("viewer")), "{e}");
    let e = c.post("/api/v1/environments/solo/deploy", BOB, body, 403);
    assert!(e["error"].as_str().is_some_and(|m| m.contains("solo")), "{e}");

    // Bad compositions are 400 with the CLI's message; nothing is touched.
    let e = c.post(
        "/api/v1/environments/staging/deploy",
        BOB,
        r#"{"overrides": ["ogr"]}"#,
        400,
    );
    assert!(e["error"].as_str().is_some_and(|m| m.contains("COMPONENT=REF")), "{e}");
    let e = c.post(
        "/api/v1/environments/staging/deploy",
        BOB,
        r#"{"overrides": ["nope=1"]}"#,
        400,
    );
    assert!(e["error"].as_str().is_some_and(|m| m.contains("nope")), "{e}");
    c.post("/api/v1/environments/staging/deploy", BOB, r#"{"bogus": 1}"#, 400);

    // A dry run answers the plan.
    let plan = c.post(
        "/api/v1/environments/staging/deploy",
        BOB,
        r#"{"overrides": ["ogr=1"], "dry_run": true}"#,
        200,
    );
    assert_eq!(plan["result"], "planned", "{plan}");

    // A real deploy as bob: the cycle report, the lease released after.
    // The server's own first scheduled cycle may hold staging for a moment:
    // that is a 409 with the holder named, and bob tries again.
    let report = wait_until("bob's deploy to get staging", || {
        let (code, text) = request(
            port,
            "POST",
            "/api/v1/environments/staging/deploy",
            Some(BOB),
            Some(body),
        );
        if code == 409 {
            assert!(text.contains("greenroom-serve"), "{text}");
            return None;
        }
        assert_eq!(code, 200, "{text}");
        c.bodies.push(text.clone());
        Some(serde_json::from_str::<Value>(&text).expect("JSON report"))
    });
    assert_eq!(report["result"], "succeeded", "{report}");
    assert!(report["lease"].is_null(), "{report}");
    let cycle = report["cycle"].as_i64().expect("cycle number");
    let manifest = report["manifest"].as_str().expect("manifest").to_string();
    let ogr = report["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == "ogr")
        .expect("ogr")
        .clone();
    assert_eq!(ogr["pr"], 1, "{report}");

    // The cycle with its stages and components.
    let detail = c.get(&format!("/api/v1/cycles/{cycle}"), Some(VIC), 200);
    assert_eq!(detail["cycle"]["requested_by"], "bob", "{detail}");
    assert_eq!(detail["cycle"]["result"], "succeeded", "{detail}");
    assert!(detail["stages"].as_array().is_some_and(|s| !s.is_empty()), "{detail}");
    assert!(
        detail["components"].as_array().is_some_and(|s| s.len() == 3),
        "{detail}"
    );
    c.get("/api/v1/cycles/999999", Some(VIC), 404);
    let listed = c.get("/api/v1/cycles?environment=staging&limit=5", Some(VIC), 200);
    assert!(
        listed.as_array().is_some_and(|l| l.iter().any(|x| x["id"] == cycle)),
        "{listed}"
    );

    // The manifest by a prefix.
    let m = c.get(&format!("/api/v1/manifests/{}", &manifest[..10]), Some(VIC), 200);
    assert_eq!(m["id"], manifest.as_str(), "{m}");
    assert!(m["components"]["ogr"].is_object(), "{m}");
    c.get("/api/v1/manifests/0000000000", Some(VIC), 404);
    c.get("/api/v1/manifests/xyz", Some(VIC), 400);

    // What runs now, seen through the API.
    let staging = c.get("/api/v1/environments/staging", Some(VIC), 200);
    assert_eq!(staging["manifest"], manifest.as_str(), "{staging}");
    assert!(staging["lease"].is_null(), "{staging}");
    // Once the scheduler decided something for staging, it says what comes next.
    if staging["decisions"].as_array().is_some_and(|d| !d.is_empty()) {
        assert!(staging["next"]["what"].is_string(), "{staging}");
    }

    // Deliveries are for admins; decisions for viewers.
    c.get("/api/v1/deliveries", Some(VIC), 403);
    assert!(c.get("/api/v1/deliveries?limit=5", Some(ALICE), 200).is_array());
    assert!(
        c.get("/api/v1/decisions?environment=staging", Some(VIC), 200)
            .is_array()
    );
    c.get("/api/v1/decisions?environment=solo", Some(BOB), 403);

    // Leases: bob takes staging; alice cannot release it without force;
    // bob cannot force; bob releases his own.
    let l = c.post(
        "/api/v1/environments/staging/lease",
        BOB,
        r#"{"reason": "trying the API", "for": "1h"}"#,
        200,
    );
    assert_eq!(l["lease"]["holder"], "bob", "{l}");
    let e = c.post(
        "/api/v1/environments/staging/lease",
        ALICE,
        r#"{"reason": "mine"}"#,
        409,
    );
    assert!(e["error"].as_str().is_some_and(|m| m.contains("bob")), "{e}");
    c.post("/api/v1/environments/staging/release", ALICE, "{}", 409);
    c.post("/api/v1/environments/staging/release", BOB, r#"{"force": true}"#, 403);
    c.post(
        "/api/v1/environments/staging/lease",
        BOB,
        r#"{"reason": "x", "for": "soon"}"#,
        400,
    );
    let r = c.post("/api/v1/environments/staging/release", BOB, "", 200);
    assert_eq!(r["released"][0]["lease"]["holder"], "bob", "{r}");
    let r = c.post("/api/v1/environments/staging/release", BOB, "", 200);
    assert_eq!(r["released"], serde_json::json!([]), "{r}");

    // A rollback through the API: the viewer may not; bob rolls back to what
    // ran before his deploy, which pauses staging. The audit trail shows it
    // all, through the API, as bob.
    // Something to roll back from: the base, deployed after bob's PR (the
    // server's own first cycle may or may not have run yet).
    wait_until("bob's base deploy", || {
        let (code, text) = request(
            port,
            "POST",
            "/api/v1/environments/staging/deploy",
            Some(BOB),
            Some("{}"),
        );
        (code != 409).then(|| assert_eq!(code, 200, "{text}"))
    });
    c.post("/api/v1/environments/staging/rollback", VIC, "{}", 403);
    c.post("/api/v1/environments/staging/rollback", BOB, r#"{"to": 12}"#, 400);
    let rolled = wait_until("bob's rollback to get staging", || {
        let (code, text) = request(
            port,
            "POST",
            "/api/v1/environments/staging/rollback",
            Some(BOB),
            Some(r#"{"reason": "ogr#1 breaks the API"}"#),
        );
        if code == 409 {
            return None;
        }
        c.bodies.push(text.clone());
        Some((code, text))
    });
    assert_eq!(rolled.0, 200, "{}", rolled.1);
    let rolled: Value = serde_json::from_str(&rolled.1).expect("JSON report");
    assert_eq!(rolled["manifest"], manifest.as_str(), "back to bob's PR: {rolled}");
    let staging = c.get("/api/v1/environments/staging", Some(VIC), 200);
    assert_eq!(staging["paused"], true, "{staging}");
    let audit = c.get("/api/v1/audit?environment=staging", Some(VIC), 200);
    let rows = audit.as_array().expect("rows");
    assert_eq!(rows[0]["action"], "rollback", "{audit}");
    assert_eq!(rows[0]["actor"], "bob", "{audit}");
    assert_eq!(rows[0]["surface"], "api", "{audit}");
    assert_eq!(rows[0]["reason"], "ogr#1 breaks the API", "{audit}");
    for action in ["pause", "release", "lease", "deploy"] {
        assert!(rows.iter().any(|r| r["action"] == action), "{action} missing: {audit}");
    }
    c.get("/api/v1/audit?environment=solo", Some(BOB), 403);

    // No token ever comes back.
    for b in &c.bodies {
        for t in [ALICE, BOB, VIC] {
            assert!(!b.contains(t), "a token leaked into a response: {b}");
        }
    }

    sb.ok(&["stop", "--env", "staging"]);
}
