//! Notifications end to end (issue #6 points 6-7): a real `greenroom
//! serve` stages two pending changes, one of which breaks `/api/check`
//! (a 500); the blocking suite fails, the culprit search finds the change,
//! the rest is redeployed and passes. Meanwhile someone's lease on `solo`
//! nears its end. A fake Slack (which checks Block Kit as Slack does) and a
//! plain webhook receiver must each get exactly one message per event,
//! naming the environment, the cycle and the culprit, after one injected
//! 500 each; the webhook's body must be HMAC-signed; the Slack URL's token
//! and the HMAC key must appear nowhere: not in a message, not in
//! greenroom's output, not in its state directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pending::*;
use common::*;
use greenroom_fakeforge::{FakeHook, FakeSlack, SlackMessage};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::path::Path;
use std::time::Duration;

const SLACK_TOKEN: &str = "slacktoken7f3e9a1c5d2b";
const HOOK_KEY: &str = "hook-key-4a8c0e2f6b1d";

/// The event a Slack message is about (from its context line).
fn event_of(m: &SlackMessage) -> String {
    let blocks = m.body["blocks"].as_array().expect("blocks");
    let context = blocks.last().expect("a context block").to_string();
    [
        "cycle-failed",
        "cycle-finished",
        "culprit-found",
        "infra-error",
        "lease-expiring",
        "test-errors",
    ]
    .into_iter()
    .find(|e| context.contains(&format!("`{e}`")))
    .unwrap_or("?")
    .to_string()
}

fn count(events: &[String], e: &str) -> usize {
    events.iter().filter(|x| *x == e).count()
}

/// Every file under `dir` (recursively) that contains `needle`, except `skip`.
fn files_containing(dir: &Path, needle: &str, skip: &Path) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else if p != skip
                && let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn slack_and_webhook_hear_each_event_once_signed_and_without_secrets() {
    let index = 57;
    let slack = FakeSlack::start(SLACK_TOKEN).expect("fake slack");
    let hook = FakeHook::start().expect("fake hook");
    // One failure each: the first message to each target is retried.
    slack.fail_next(1);
    hook.fail_next(1);
    let both = ["ogr", "packit-service"];
    let extra = format!(
        "\n[pending]\ntrusted = [\"alice\", \"carol\"]\nsearch_pool = \"dev\"\n\n\
         [[suite]]\nname = \"api\"\nrun = 'curl -fsS \"${{GREENROOM_URL_OGR%/}}/api/check\" && curl -fsS \"${{GREENROOM_URL_PACKIT_SERVICE%/}}/api/check\"'\n\n\
         [[notify]]\nname = \"team\"\nkind = \"slack\"\nurl = \"env:GREENROOM_TEST_SLACK_URL\"\n\
         events = [\"cycle-failed\", \"cycle-finished\", \"culprit-found\", \"infra-error\", \"lease-expiring\", \"test-errors\"]\n\n\
         [[notify]]\nname = \"audit\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"file:@ROOT@/hook.key\"\n\
         environments = [\"staging\"]\nevents = [\"cycle-failed\", \"culprit-found\"]\n",
        hook.url()
    );
    let mut sb = pending_sandbox(index, &both, &extra);
    let key_file = sb.root.join("hook.key");
    std::fs::write(&key_file, format!("{HOOK_KEY}\n")).expect("key file");
    sb.env.push(("GREENROOM_TEST_SLACK_URL".into(), slack.webhook_url()));
    sb.env
        .push(("GREENROOM_LOG".into(), "info,greenroom::notify=debug".into()));
    let (ogr, ps) = (sb.repo("ogr"), sb.repo("packit-service"));
    change(&ogr, 1, "alice", "2026-11-20T10:00:00", "FEATURE_1", "1\n");
    change(
        &ps,
        1,
        "carol",
        "2026-11-20T10:10:00",
        "API_BUG",
        "a foreign key goes missing\n",
    );
    // Someone holds `solo`, and not for long (the default warning is 15 min ahead).
    sb.ok(&["lease", "--env", "solo", "--for", "3m", "--reason", "manual testing"]);

    let server = serve(&sb, index);
    let first = wait_until_for(Duration::from_secs(90), "the first cycle to fail", &mut || {
        scheduled(&sb).into_iter().find(|c| c["result"] == "failed")
    });
    let failed = first["id"].as_i64().expect("id");
    let fixed = wait_until_for(Duration::from_secs(150), "a passing cycle on staging", &mut || {
        scheduled(&sb)
            .into_iter()
            .find(|c| c["result"] == "succeeded" && c["id"].as_i64() > Some(failed))
    });
    let passed = fixed["id"].as_i64().expect("id");
    let wanted = [
        "cycle-failed",
        "test-errors",
        "culprit-found",
        "cycle-finished",
        "lease-expiring",
    ];
    wait_until_for(Duration::from_secs(30), "a Slack message for every event", &mut || {
        let events: Vec<String> = slack.messages().iter().map(event_of).collect();
        wanted.iter().all(|w| events.contains(&w.to_string())).then_some(())
    });
    wait_until("both webhook deliveries", || (hook.received().len() >= 2).then_some(()));
    // The lease watch (every 5 s) sees the lease again and holds the warning back.
    let logs = sb.root.join("out");
    wait_until("the lease warning held back as a repeat", || {
        (!files_containing(&logs, "not repeated key=lease-expiring:solo", &key_file).is_empty()).then_some(())
    });
    let out = server.kill9();

    // Exactly one message per event, all valid Block Kit (the fake refuses
    // anything else), after one retry.
    let all = slack.messages();
    let events: Vec<String> = all.iter().map(event_of).collect();
    for w in wanted {
        assert_eq!(count(&events, w), 1, "{w}: {events:?}");
    }
    assert_eq!(count(&events, "infra-error"), 0, "{events:?}");
    assert!(slack.rejected().is_empty(), "invalid Block Kit: {:?}", slack.rejected());
    assert_eq!(slack.attempts(), all.len() + 1, "one injected 500, retried once");
    let text = |e: &str| {
        all.iter()
            .find(|m| event_of(m) == e)
            .map(SlackMessage::all_text)
            .expect("message")
    };
    let failed_text = text("cycle-failed");
    assert!(
        failed_text.contains("staging") && failed_text.contains(&format!("cycle {failed}")),
        "{failed_text}"
    );
    assert!(
        failed_text.contains("blocking suite `api` failed") && failed_text.contains("verify of api (code)"),
        "{failed_text}"
    );
    let culprit = text("culprit-found");
    assert!(
        culprit.contains("packit-service#1")
            && culprit.contains("carol")
            && culprit.contains(&format!("cycle {failed}")),
        "{culprit}"
    );
    assert!(
        !culprit.contains("ogr#1"),
        "the innocent change is not blamed: {culprit}"
    );
    let finished = text("cycle-finished");
    assert!(
        finished.contains(&format!("cycle {passed}")) && finished.contains("changed"),
        "{finished}"
    );
    let errors = text("test-errors");
    assert!(errors.contains("returned error: 500"), "the 5xx is quoted: {errors}");
    let lease = text("lease-expiring");
    assert!(lease.contains("solo") && lease.contains("manual testing"), "{lease}");

    // The webhook: the two events it asked for, once each, signed.
    let hooks_now = hook.received();
    assert_eq!(hooks_now.len(), 2, "no repeats");
    let mut seen = Vec::new();
    for h in &hooks_now {
        let body: Value = serde_json::from_slice(&h.body).expect("JSON body");
        let event = body["event"].as_str().expect("event").to_string();
        assert_eq!(h.headers.get("x-greenroom-event"), Some(&event));
        assert_eq!(body["environment"], "staging");
        assert_eq!(body["cycle"], failed);
        let delivery = h.headers.get("x-greenroom-delivery").expect("delivery id");
        assert_eq!(delivery.len(), 32);
        assert_eq!(body["delivery"], delivery.as_str());
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(HOOK_KEY.as_bytes()).expect("key");
        mac.update(&h.body);
        let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            h.headers.get("x-greenroom-signature"),
            Some(&format!("sha256={expected}")),
            "signature of {event}"
        );
        seen.push(event);
    }
    seen.sort();
    assert_eq!(seen, vec!["culprit-found", "cycle-failed"]);

    // No secret anywhere: messages, webhook bodies, greenroom's output, its state.
    for m in &all {
        assert!(!m.raw.contains(SLACK_TOKEN) && !m.raw.contains(HOOK_KEY), "{}", m.raw);
    }
    for h in &hooks_now {
        let b = String::from_utf8_lossy(&h.body);
        assert!(!b.contains(SLACK_TOKEN) && !b.contains(HOOK_KEY), "{b}");
    }
    assert!(out.stderr.contains("notification sent"), "{}", out.stderr);
    assert!(
        out.stderr.contains("status=500"),
        "the injected failure is logged: {}",
        out.stderr
    );
    let hits = files_containing(&sb.root, SLACK_TOKEN, &key_file);
    assert!(hits.is_empty(), "the Slack token leaked into {hits:?}");
    let hits = files_containing(&sb.root, HOOK_KEY, &key_file);
    assert!(hits.is_empty(), "the HMAC key leaked into {hits:?}");

    sb.ok(&["release", "--env", "solo", "--force"]);
    clean_up(&sb);
}
