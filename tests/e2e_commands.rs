//! Comment commands end to end: `greenroom serve` receives signed
//! `issue_comment` webhooks (GitHub's published example, adapted), talks to
//! a fake GitHub (`crates/fakeforge`) that speaks the REST API, and answers
//! on the pull request: a polite refusal to an untrusted author, the help
//! text for an unknown command, a maintainer's approval that lets the PR
//! into the staging cycle (statuses, sticky comment), and an edited comment
//! that runs only its new command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use greenroom_fakeforge::{FakeGithub, NewPr};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const SECRET: &str = "e2e commands secret";
const TOKEN: &str = "ghp_fake_token_for_e2e";

fn post(port: u16, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut req = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

/// GitHub's example `issue_comment` payload, on pull request `number` of `repo`.
fn comment_payload(repo: &str, number: u64, comment_id: u64, author: &str, body: &str, action: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/github/issue_comment.created.payload.json"
    ))
    .expect("fixture");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
    v["action"] = action.into();
    v["repository"]["full_name"] = repo.into();
    v["issue"]["number"] = number.into();
    v["issue"]["pull_request"] =
        serde_json::json!({"url": format!("https://api.github.com/repos/{repo}/pulls/{number}")});
    v["comment"]["id"] = comment_id.into();
    v["comment"]["user"]["login"] = author.into();
    v["comment"]["body"] = body.into();
    serde_json::to_vec(&v).expect("encode")
}

fn send(port: u16, delivery: &str, body: &[u8]) {
    let headers = vec![
        ("X-GitHub-Event", "issue_comment".to_string()),
        ("X-GitHub-Delivery", delivery.to_string()),
        (
            "X-Hub-Signature-256",
            greenroom_webhook::sign_github(SECRET.as_bytes(), body),
        ),
    ];
    let (code, resp) = post(port, &headers, body);
    assert_eq!(code, 200, "{resp}");
}

#[test]
fn comment_commands_refuse_help_approve_and_stage() {
    let index = 44;
    let port = 21000 + 100 * index + 90;
    let fake = FakeGithub::start(TOKEN).expect("fake GitHub");
    fake.set_token_login("greenroom-bot");
    fake.add_repo("octo/ogr");
    let extra = format!(
        "\n[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\n\
         [github]\nwebhook_secret = \"env:GREENROOM_E2E_HOOK_SECRET\"\ntoken = \"env:GREENROOM_E2E_GH_TOKEN\"\napi_url = \"{}\"\n\n\
         [policy]\nsettle = \"0s\"\ncooldown = \"0s\"\n\n[pending]\ntrusted = [\"alice\"]\nmaintainers = [\"carol\"]\n\n\
         [[environment]]\nname = \"preview\"\nslots = 1\ncomponents = [\"ogr\"]\nfollows = \"manual\"\n[environment.profile]\npreview = true\n",
        fake.url()
    );
    let mut sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replacen("name = \"ogr\"\n", "name = \"ogr\"\ngithub = \"octo/ogr\"\n", 1)
        .replacen(
            "name = \"staging\"\n",
            "name = \"staging\"\nfollows = \"pending\"\ncomponents = [\"ogr\"]\n",
            1,
        );
    sb.write_config(&text);
    sb.env.push(("GREENROOM_E2E_HOOK_SECRET".into(), SECRET.into()));
    sb.env.push(("GREENROOM_E2E_GH_TOKEN".into(), TOKEN.into()));
    // PR #1 of the sample repository, by an author nobody trusts yet.
    let head = sb.rev("ogr", "refs/pull/1/head");
    let number = fake.add_pr(
        "octo/ogr",
        NewPr {
            title: "Make it faster".into(),
            author: "mallory".into(),
            head_sha: head.clone(),
            head_ref: "faster".into(),
            created_at: "2026-11-23T09:00:00Z".into(),
            updated_at: "2099-01-01T00:00:00Z".into(),
            ..NewPr::default()
        },
    );
    assert_eq!(number, 1);

    let server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    let scheduled_ok = |sb: &Sandbox| -> Vec<serde_json::Value> {
        sb.history()
            .into_iter()
            .filter(|c| {
                c["environment"] == "staging"
                    && c["request"].as_str().is_some_and(|r| r.starts_with("scheduled"))
                    && c["result"] == "succeeded"
            })
            .collect()
    };
    // The first cycle stages nothing: mallory is not trusted.
    wait_until("the first scheduled cycle", || scheduled_ok(&sb).first().cloned());
    let st = sb.status("staging");
    assert_eq!(Sandbox::component(&st, "ogr")["commit"], sb.rev("ogr", "main"));

    let bot_replies = |fake: &FakeGithub| -> Vec<String> {
        fake.comments("octo/ogr", 1)
            .into_iter()
            .filter(|c| c.author == "greenroom-bot" && !c.body.contains("greenroom:sticky"))
            .map(|c| c.body)
            .collect()
    };
    // mallory asks to deploy her own PR: politely refused.
    send(
        port,
        "c-1",
        &comment_payload("octo/ogr", 1, 101, "mallory", "@greenroom deploy", "created"),
    );
    let r = wait_until("the refusal", || bot_replies(&fake).first().cloned());
    assert!(r.starts_with("@mallory") && r.contains("Sorry"), "{r}");
    // Someone types a command greenroom does not know: the help text.
    send(
        port,
        "c-2",
        &comment_payload("octo/ogr", 1, 102, "bob", "Hmm.\n@greenroom frobnicate", "created"),
    );
    let r = wait_until("the help", || bot_replies(&fake).get(1).cloned());
    assert!(r.contains("frobnicate") && r.contains("@greenroom deploy"), "{r}");
    // A quoted command is not a command.
    send(
        port,
        "c-3",
        &comment_payload(
            "octo/ogr",
            1,
            103,
            "carol",
            "> @greenroom deploy\nlooks fine",
            "created",
        ),
    );

    // carol, a maintainer, approves: the PR joins the pending set and is staged.
    send(
        port,
        "c-4",
        &comment_payload("octo/ogr", 1, 104, "carol", "@greenroom approve", "created"),
    );
    let r = wait_until("the approval", || bot_replies(&fake).get(2).cloned());
    assert!(r.starts_with("@carol") && r.contains("Approved octo/ogr#1"), "{r}");
    let staged = wait_until("a cycle that stages #1", || {
        scheduled_ok(&sb)
            .into_iter()
            .find(|c| c["request"].as_str().is_some_and(|r| r.contains("octo/ogr#1")))
    });
    let st = sb.assert_serving("staging");
    let commit = Sandbox::component(&st, "ogr")["commit"]
        .as_str()
        .expect("commit")
        .to_string();
    assert_ne!(commit, sb.rev("ogr", "main"), "{staged}");
    // The PR's head got greenroom/staging pending then success, and a sticky comment.
    let states = wait_until("the success status", || {
        let s: Vec<String> = fake
            .statuses("octo/ogr")
            .into_iter()
            .filter(|s| s.sha == head && s.context == "greenroom/staging")
            .map(|s| s.state)
            .collect();
        s.contains(&"success".to_string()).then_some(s)
    });
    assert_eq!(states.first().map(String::as_str), Some("pending"), "{states:?}");
    let sticky: Vec<_> = fake
        .comments("octo/ogr", 1)
        .into_iter()
        .filter(|c| c.body.contains("greenroom:sticky"))
        .collect();
    assert_eq!(sticky.len(), 1, "one sticky comment");
    assert!(sticky[0].body.contains(&commit[..12]), "{}", sticky[0].body);
    assert!(
        !fake.deployments("octo/ogr").is_empty(),
        "a GitHub Deployment was created"
    );

    // carol edits her comment and adds `status`: only the new command runs.
    send(
        port,
        "c-5",
        &comment_payload(
            "octo/ogr",
            1,
            104,
            "carol",
            "@greenroom approve\n@greenroom status",
            "edited",
        ),
    );
    let r = wait_until("the status answer", || bot_replies(&fake).get(3).cloned());
    assert!(r.contains("runs in ogr"), "{r}");
    assert!(!r.contains("Approved"), "the approval did not run twice: {r}");
    assert_eq!(bot_replies(&fake).len(), 4, "no reply to the quoted command");
    // `deploy env=preview` (a preview profile): the PR's own environment.
    send(
        port,
        "c-6",
        &comment_payload("octo/ogr", 1, 106, "carol", "@greenroom deploy env=preview", "created"),
    );
    let r = wait_until("the preview's answer", || bot_replies(&fake).get(4).cloned());
    assert!(r.contains("preview environment `pr-ogr-1`"), "{r}");
    let r = wait_until("the preview to run", || bot_replies(&fake).get(5).cloned());
    assert!(
        r.contains("Preview **pr-ogr-1** of octo/ogr#1") && r.contains("succeeded"),
        "{r}"
    );
    let pst = sb.status("preview-1");
    assert_eq!(
        Sandbox::component(&pst, "ogr")["commit"],
        head.as_str(),
        "the PR's head"
    );
    // No token in anything greenroom wrote.
    for c in fake.comments("octo/ogr", 1) {
        assert!(!c.body.contains(TOKEN));
    }
    server.kill9();
    sb.ok(&["stop", "--env", "staging"]);
    sb.ok(&["stop", "--env", "solo"]);
    sb.ok(&["release", "--env", "preview-1", "--force"]);
    sb.ok(&["stop", "--env", "preview-1"]);
}

#[test]
fn gitlab_notes_are_commands_too() {
    use greenroom_fakeforge::{FakeGitlab, NewMr};
    const GL_TOKEN: &str = "glpat-fake-e2e-token";
    const HOOK: &str = "e2e gitlab hook token";
    let index = 48;
    let port = 21000 + 100 * index + 90;
    let fake = FakeGitlab::start(GL_TOKEN).expect("fake GitLab");
    fake.set_token_username("greenroom-bot");
    fake.add_project("group/ogr");
    let extra = format!(
        "\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [gitlab]\nwebhook_token = \"env:GREENROOM_E2E_GL_HOOK\"\ntoken = \"env:GREENROOM_E2E_GL_TOKEN\"\napi_url = \"{}\"\n\n\
         [policy]\nsettle = \"0s\"\ncooldown = \"0s\"\n\n[pending]\nmaintainers = [\"carol\"]\n",
        fake.url()
    );
    let mut sb = Sandbox::with(
        index,
        Options {
            extra,
            ..Options::default()
        },
    );
    let text = std::fs::read_to_string(&sb.config)
        .expect("config")
        .replacen(
            "name = \"ogr\"\n",
            "name = \"ogr\"\nforge = \"gitlab\"\ngitlab = \"group/ogr\"\n",
            1,
        )
        .replacen(
            "name = \"staging\"\n",
            "name = \"staging\"\nfollows = \"pending\"\ncomponents = [\"ogr\"]\n",
            1,
        )
        .replacen("name = \"solo\"\n", "name = \"solo\"\nfollows = \"manual\"\n", 1);
    sb.write_config(&text);
    sb.env.push(("GREENROOM_E2E_GL_HOOK".into(), HOOK.into()));
    sb.env.push(("GREENROOM_E2E_GL_TOKEN".into(), GL_TOKEN.into()));
    // The sample's PR 1, exposed as GitLab's merge request 1 of an untrusted author.
    let head = sb.rev("ogr", "refs/pull/1/head");
    git(&sb.repo("ogr"), &["update-ref", "refs/merge-requests/1/head", &head]);
    let iid = fake.add_mr(
        "group/ogr",
        NewMr {
            title: "Speed up".into(),
            author: "dave".into(),
            sha: head.clone(),
            target_branch: "main".into(),
            created_at: "2026-11-23T09:00:00.000Z".into(),
            updated_at: "2099-01-01T00:00:00.000Z".into(),
            ..NewMr::default()
        },
    );
    assert_eq!(iid, 1);
    let server = sb.spawn(&["serve"]);
    wait_until("the server to answer /healthz", || {
        http_get(&format!("http://127.0.0.1:{port}/healthz")).filter(|(c, _)| *c == 200)
    });
    let note = |id: u64, author: &str, body: &str| -> Vec<u8> {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/gitlab/note_merge_request.json"
        ))
        .expect("fixture");
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
        v["project"]["path_with_namespace"] = "group/ogr".into();
        v["merge_request"]["iid"] = 1.into();
        v["object_attributes"]["id"] = id.into();
        v["object_attributes"]["note"] = body.into();
        v["user"]["username"] = author.into();
        serde_json::to_vec(&v).expect("encode")
    };
    let send = |uuid: &str, body: &[u8]| {
        let headers = vec![
            ("X-Gitlab-Event", "Note Hook".to_string()),
            ("X-Gitlab-Event-UUID", uuid.to_string()),
            ("X-Gitlab-Token", HOOK.to_string()),
        ];
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let mut req = format!(
            "POST /webhooks/gitlab HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in &headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).expect("write");
        s.write_all(body).expect("write body");
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    };
    let replies = |fake: &FakeGitlab| -> Vec<String> {
        fake.notes("group/ogr", 1)
            .into_iter()
            .filter(|n| n.author == "greenroom-bot" && !n.body.contains("greenroom:sticky"))
            .map(|n| n.body)
            .collect()
    };
    send("n-1", &note(501, "dave", "@greenroom trigger"));
    let r = wait_until("the refusal", || replies(&fake).first().cloned());
    assert!(r.starts_with("@dave") && r.contains("Sorry"), "{r}");
    send("n-2", &note(502, "carol", "@greenroom deploy"));
    let r = wait_until("the deploy answer", || replies(&fake).get(1).cloned());
    assert!(r.starts_with("@carol") && r.contains("Staging group/ogr#1"), "{r}");
    // A maintainer's deploy lets the untrusted MR in: staged, with a status on its head.
    wait_until("a success status on the MR's head", || {
        fake.statuses("group/ogr")
            .into_iter()
            .find(|s| s.sha == head && s.state == "success")
    });
    let st = sb.assert_serving("staging");
    assert_ne!(Sandbox::component(&st, "ogr")["commit"], sb.rev("ogr", "main"));
    server.kill9();
    sb.ok(&["stop", "--env", "staging"]);
}
