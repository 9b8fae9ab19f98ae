//! Slack slash commands end to end: `greenroom serve` with a `[slack]`
//! signing secret and two `[[user]]`s mapped to Slack user ids (dana a
//! deployer, vic a viewer), driven over loopback with requests signed here
//! exactly as Slack signs them (v0, HMAC-SHA256, current time). Checks
//! status, a viewer's deploy refused politely, a deployer's deploy running
//! a real cycle, pause/resume seen in status, a rollback,
//! 401 for a bad signature and an expired timestamp, and that no secret
//! ever comes back in an answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SIGNING_SECRET: &str = "e2e-slack-signing-secret-7c1d9a";
const DANA_TOKEN: &str = "dana-api-token-51f0e2";
const VIC_TOKEN: &str = "vic-api-token-0a9b8c";
const DANA: &str = "U0DANA01";
const VIC: &str = "U0VIC002";

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

fn sign(secret: &str, ts: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

/// A slash-command body as Slack sends it.
fn form(user: &str, text: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "token=legacy-verification-token&team_id=T0E2E&team_domain=e2e&channel_id=C0E2E&channel_name=staging\
         &user_id={user}&user_name={}&command=%2Fgreenroom&text={}\
         &response_url={}&trigger_id=1.2.3",
        enc(&user.to_lowercase()),
        enc(text),
        enc("https://hooks.slack.com/commands/T0E2E/1/secret-capability")
    )
}

/// One POST on loopback with the given Slack headers: `(status, body)`.
fn post(port: u16, body: &str, ts: Option<&str>, sig: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut req = format!(
        "POST /chat/slack HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(t) = ts {
        req.push_str(&format!("X-Slack-Request-Timestamp: {t}\r\n"));
    }
    if let Some(sg) = sig {
        req.push_str(&format!("X-Slack-Signature: {sg}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
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

/// A GET with an API token: `(status, body)`.
fn get_with_token(port: u16, path: &str, token: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
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

struct Chat {
    port: u16,
    answers: Vec<String>,
}

impl Chat {
    /// A correctly signed command; the answer must be 200 and a Slack message.
    #[track_caller]
    fn say(&mut self, user: &str, text: &str) -> (String, String) {
        let body = form(user, text);
        let ts = now();
        let (code, answer) = post(
            self.port,
            &body,
            Some(&ts.to_string()),
            Some(&sign(SIGNING_SECRET, ts, &body)),
        );
        self.answers.push(answer.clone());
        assert_eq!(code, 200, "{text}: {answer}");
        let v: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{text}: not JSON ({e}): {answer}"));
        let kind = v["response_type"].as_str().expect("response_type").to_string();
        let said = v["text"].as_str().expect("text").to_string();
        assert!(
            v["blocks"][0]["text"]["type"] == "mrkdwn" && v["blocks"][0]["text"]["text"].is_string(),
            "{answer}"
        );
        (kind, said)
    }
}

#[test]
fn slack_commands_verify_authorize_and_act() {
    let index = 58;
    let port = 21000 + 100 * index + 90;
    let extra = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"

[slack]
signing_secret = "env:GREENROOM_E2E_SLACK"

[[user]]
name = "dana"
token = "env:GREENROOM_E2E_DANA"
slack = "{DANA}"
role = "deployer"

[[user]]
name = "vic"
token = "env:GREENROOM_E2E_VIC"
slack = "{VIC}"
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
        ("GREENROOM_E2E_SLACK", SIGNING_SECRET),
        ("GREENROOM_E2E_DANA", DANA_TOKEN),
        ("GREENROOM_E2E_VIC", VIC_TOKEN),
    ] {
        sb.env.push((k.into(), v.into()));
    }
    let _server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    let mut chat = Chat {
        port,
        answers: Vec::new(),
    };

    // Help, and status for a viewer.
    let (kind, help) = chat.say(VIC, "");
    assert_eq!(kind, "ephemeral");
    assert!(help.contains("/greenroom deploy ENV"), "{help}");
    let (kind, st) = chat.say(VIC, "status solo");
    assert_eq!(kind, "ephemeral");
    assert!(st.contains("solo") && st.contains("lease: free"), "{st}");
    let (_, all) = chat.say(VIC, "status");
    assert!(all.contains("staging") && all.contains("dev-1"), "{all}");

    // A viewer's deploy is refused politely (200, ephemeral, nothing runs).
    let (kind, no) = chat.say(VIC, "deploy solo ogr=1");
    assert_eq!(kind, "ephemeral");
    assert!(
        no.contains("Sorry vic") && no.contains("viewer") && no.contains("deployer"),
        "{no}"
    );
    // Mistakes are explained with the usage.
    let (kind, bad) = chat.say(DANA, "deploy ogr=1");
    assert_eq!(kind, "ephemeral");
    assert!(bad.contains("Usage: `/greenroom deploy ENV"), "{bad}");
    let (_, unknown) = chat.say(DANA, "deploy nowhere ogr=1");
    assert!(unknown.contains("nowhere"), "{unknown}");
    let (_, who) = chat.say("U0NOBODY9", "status");
    assert!(who.contains("not known to greenroom"), "{who}");

    // A deployer's deploy: answered at once, in the channel, naming the cycle;
    // the cycle really runs (the server's own scheduled cycles may hold solo
    // for a moment: then the answer says so and dana tries again).
    let deadline = Instant::now() + Duration::from_secs(60);
    let cycle = loop {
        let t0 = Instant::now();
        let (kind, said) = chat.say(DANA, "deploy solo ogr=1");
        assert!(t0.elapsed() < Duration::from_secs(3), "Slack waits 3 s at most: {said}");
        if kind == "in_channel" {
            // A quick cycle may already be over when the answer goes out.
            assert!(
                said.contains("dana is deploying ogr=1 to solo") || said.contains("dana deployed ogr=1 to solo"),
                "{said}"
            );
            let named: Option<i64> = said
                .split("cycle ")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok());
            break named.unwrap_or_else(|| {
                // Waiting behind a scheduled cycle: the cycle starts later.
                wait_until_for(Duration::from_secs(60), "dana's cycle to start", &mut || {
                    sb.history()
                        .into_iter()
                        .find(|c| c["requested_by"] == "dana")
                        .and_then(|c| c["id"].as_i64())
                })
            });
        }
        assert!(said.contains("solo"), "{said}");
        assert!(Instant::now() < deadline, "solo stayed busy: {said}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let done = wait_until_for(
        Duration::from_secs(90),
        "the chat deploy's cycle to finish",
        &mut || {
            sb.history()
                .into_iter()
                .find(|c| c["id"] == cycle && c["result"] != "running")
        },
    );
    assert_eq!(done["result"], "succeeded", "{done}");
    assert_eq!(done["requested_by"], "dana", "{done}");
    assert_eq!(done["environment"], "solo", "{done}");
    let st = sb.status("solo");
    assert_eq!(Sandbox::component(&st, "ogr")["pr"], 1, "{st}");

    // Pause and resume, seen in status.
    let (kind, p) = chat.say(DANA, "pause solo release freeze");
    assert_eq!(kind, "in_channel");
    assert!(p.contains("dana paused") && p.contains("release freeze"), "{p}");
    let (_, st) = chat.say(VIC, "status solo");
    assert!(st.contains("PAUSED by dana") && st.contains("release freeze"), "{st}");
    let (_, again) = chat.say(VIC, "resume solo");
    assert!(again.contains("Sorry vic"), "{again}");
    let (kind, r) = chat.say(DANA, "resume solo");
    assert_eq!(kind, "in_channel", "{r}");
    let (_, st) = chat.say(VIC, "status solo");
    assert!(!st.contains("PAUSED"), "{st}");
    let (_, twice) = chat.say(DANA, "resume solo");
    assert!(twice.contains("not paused"), "{twice}");

    // Lease and release.
    let (kind, l) = chat.say(DANA, "lease solo 30m trying a fix");
    assert_eq!(kind, "in_channel", "{l}");
    assert!(l.contains("dana holds *solo*") && l.contains("trying a fix"), "{l}");
    assert_eq!(sb.status("solo")["lease"]["holder"], "dana");
    let (_, st) = chat.say(VIC, "status solo");
    assert!(st.contains("lease: dana"), "{st}");
    let (kind, rel) = chat.say(DANA, "release solo");
    assert_eq!(kind, "in_channel", "{rel}");
    assert!(sb.status("solo")["lease"].is_null());
    let (_, none) = chat.say(DANA, "release solo");
    assert!(none.contains("no lease"), "{none}");

    // A rollback goes through the same code as the CLI: solo goes back to
    // what ran before dana's deploy, and continuous deployment is locked.
    let base = sb.json(&["--as", "erin", "deploy", "--env", "solo", "--release"]);
    assert_eq!(base["result"], "succeeded", "{base:#}");
    let before_rollback = sb.status("solo")["manifest"].clone();
    let (kind, rb) = chat.say(DANA, "rollback solo --to previous");
    assert_eq!(kind, "in_channel", "{rb}");
    assert!(rb.contains("solo back to previous"), "{rb}");
    wait_until("the rollback to finish", || {
        let st = sb.status("solo");
        (st["manifest"] != before_rollback && !st["manifest"].is_null()).then_some(())
    });
    assert_eq!(sb.status("solo")["paused"]["paused"], true);

    // What changed is in the decision log, with who and through what.
    let (code, decisions) = get_with_token(port, "/api/v1/decisions?environment=solo&limit=200", VIC_TOKEN);
    assert_eq!(code, 200, "{decisions}");
    let decisions: Vec<Value> = serde_json::from_str(&decisions).expect("decisions");
    let chat_reasons: Vec<&str> = decisions
        .iter()
        .filter(|d| d["kind"] == "chat")
        .filter_map(|d| d["reason"].as_str())
        .collect();
    for want in [
        "`deploy solo ogr=1`: deploying",
        "`deploy solo ogr=1`: refused",
        "`pause solo release freeze`: paused",
        "`resume solo`: resumed",
        "`lease solo 30m trying a fix`: leased",
        "`release solo`: released",
        "`rollback solo --to previous`: ",
    ] {
        assert!(
            chat_reasons.iter().any(|r| r.contains(want) && r.contains("via Slack")),
            "{want} not in {chat_reasons:#?}"
        );
    }
    assert!(
        chat_reasons.iter().any(|r| r.starts_with("vic via Slack (U0VIC002)")),
        "{chat_reasons:#?}"
    );
    // The record of the deploy names its cycle (unless it had to wait behind a scheduled one).
    for d in decisions.iter().filter(|d| {
        d["kind"] == "chat" && !d["cycle"].is_null() && d["reason"].as_str().is_some_and(|r| r.contains("`deploy solo"))
    }) {
        assert_eq!(d["cycle"], cycle, "{d}");
    }

    // Bad signatures, expired timestamps, missing headers: 401 with the reason.
    let body = form(DANA, "deploy solo ogr=1");
    let ts = now();
    let (code, text) = post(
        port,
        &body,
        Some(&ts.to_string()),
        Some(&sign("not-the-secret", ts, &body)),
    );
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("does not match"), "{text}");
    let tampered = body.replace("ogr%3D1", "ogr%3D2");
    let (code, _) = post(
        port,
        &tampered,
        Some(&ts.to_string()),
        Some(&sign(SIGNING_SECRET, ts, &body)),
    );
    assert_eq!(code, 401);
    let old = ts - 6 * 60;
    let (code, text) = post(
        port,
        &body,
        Some(&old.to_string()),
        Some(&sign(SIGNING_SECRET, old, &body)),
    );
    assert_eq!(code, 401, "{text}");
    assert!(
        text.contains("seconds behind") && text.contains("at most 300 seconds"),
        "{text}"
    );
    let (code, text) = post(port, &body, None, Some(&sign(SIGNING_SECRET, ts, &body)));
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("X-Slack-Request-Timestamp"), "{text}");
    let (code, text) = post(port, &body, Some(&ts.to_string()), Some("sha256=00"));
    assert_eq!(code, 401, "{text}");
    chat.answers.push(text);
    // Nothing was deployed by the refused requests.
    let mine = sb
        .history()
        .into_iter()
        .filter(|c| c["requested_by"] == "dana" && c["request"].as_str().is_some_and(|r| !r.starts_with("rollback")))
        .count();
    assert_eq!(mine, 1, "only the one signed deploy ran (besides the rollback)");

    // No secret in any answer.
    for a in &chat.answers {
        for secret in [
            SIGNING_SECRET,
            DANA_TOKEN,
            VIC_TOKEN,
            "secret-capability",
            "legacy-verification-token",
        ] {
            assert!(!a.contains(secret), "{secret} in {a}");
        }
    }
}
