//! Dashboard sign-ins outlive a server restart (issue #7): a session
//! started before the restart still shows pages and still acts through the
//! API as its user afterwards; a signed-out session stays signed out; a
//! session ends when its user's token changes. HTTP only (curl keeps the
//! cookies), against a real `greenroom serve`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pending::{serve, server_port};
use common::*;
use std::path::Path;
use std::process::Command;

const INDEX: u16 = 75;

/// `curl` with the cookie jar; returns (HTTP status, body).
fn curl(jar: &Path, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-b"])
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("a status line");
    (code.trim().parse().expect("status"), body.to_string())
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().expect("its value").to_string()
}

#[test]
fn a_sign_in_outlives_a_restart_and_still_acts_as_its_user() {
    let sb = Sandbox::new(INDEX);
    let token = sb.root.join("alice.token");
    std::fs::write(&token, "alice-token-75").expect("token");
    let mut text = std::fs::read_to_string(&sb.config).expect("config");
    text.push_str(&format!(
        "\n[server]\nlisten = \"127.0.0.1:{}\"\n\n[[user]]\nname = \"alice\"\ntoken = {}\nrole = \"admin\"\n",
        server_port(INDEX),
        toml_str(&format!("file:{}", token.display()))
    ));
    sb.write_config(&text);
    let base = format!("http://127.0.0.1:{}", server_port(INDEX));
    let jar = sb.root.join("cookies.txt");

    let server = serve(&sb, INDEX);
    let (code, _) = curl(
        &jar,
        &["--data-urlencode", "token=alice-token-75", &format!("{base}/login")],
    );
    assert_eq!(code, 303, "signed in");
    let (code, page) = curl(&jar, &[&format!("{base}/")]);
    assert_eq!(code, 200);
    assert!(page.contains("alice"), "{page}");
    // Nothing usable is stored: no cookie value and no token in the database.
    let cookie = std::fs::read_to_string(&jar).expect("jar");
    let id = cookie
        .lines()
        .find(|l| l.contains("greenroom_session"))
        .and_then(|l| l.split('\t').next_back())
        .expect("the session cookie")
        .to_string();
    let db = std::fs::read(sb.state.join("state.db")).expect("the state database");
    let wal = std::fs::read(sb.state.join("state.db-wal")).unwrap_or_default();
    let digest = greenroom::server::api::hex(&greenroom::server::api::token_digest(&id));
    assert!(
        String::from_utf8_lossy(&db).contains(&digest) || String::from_utf8_lossy(&wal).contains(&digest),
        "the session is stored by its digest"
    );
    for bytes in [&db, &wal] {
        let hay = String::from_utf8_lossy(bytes);
        assert!(!hay.contains(&id), "the session id is stored as it is");
        assert!(!hay.contains("alice-token-75"), "the token is stored");
    }
    server.kill9();

    // A new server: the same cookie is still signed in, and acts.
    let server = serve(&sb, INDEX);
    let (code, page) = curl(&jar, &[&format!("{base}/confirm/pause?env=staging")]);
    assert_eq!(code, 200, "{page}");
    let csrf = csrf_of(&page);
    let (code, answer) = curl(
        &jar,
        &[
            "-H",
            &format!("Origin: {base}"),
            "--data-urlencode",
            &format!("csrf={csrf}"),
            "--data-urlencode",
            "env=staging",
            "--data-urlencode",
            "reason=maintenance window",
            &format!("{base}/actions/pause"),
        ],
    );
    assert!(code == 303 || code == 200, "{code}: {answer}");
    let st = sb.status("staging");
    assert_eq!(st["paused"]["by"], "alice", "{st:#}");
    let audit = sb.json(&["audit", "--env", "staging"]);
    assert!(
        audit.as_array().expect("audit").iter().any(|a| a["action"] == "pause"
            && a["actor"] == "alice"
            && a["surface"] == "dashboard"
            && a["reason"] == "maintenance window"),
        "{audit:#}"
    );

    // Signed out: stays out, across a restart too.
    let (_, page) = curl(&jar, &[&format!("{base}/")]);
    let csrf = csrf_of(&page);
    let (code, _) = curl(
        &jar,
        &[
            "-H",
            &format!("Origin: {base}"),
            "--data-urlencode",
            &format!("csrf={csrf}"),
            &format!("{base}/logout"),
        ],
    );
    assert_eq!(code, 303);
    let cookie_again = format!("greenroom_session={id}");
    server.kill9();
    let server = serve(&sb, INDEX);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Cookie: {cookie_again}"))
        .arg(format!("{base}/"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "303", "sent to sign in");

    // A new token ends the sessions of the old one.
    let (code, _) = curl(
        &jar,
        &["--data-urlencode", "token=alice-token-75", &format!("{base}/login")],
    );
    assert_eq!(code, 303);
    server.kill9();
    std::fs::write(&token, "alice-token-75-rotated").expect("token");
    let server = serve(&sb, INDEX);
    let (code, _) = curl(&jar, &[&format!("{base}/")]);
    assert_eq!(code, 303, "the old token's session is over");
    server.kill9();
    sb.ok(&["resume", "--env", "staging"]);
}
