//! Notifications, pure: filtering, Block Kit within Slack's limits,
//! dedup, the rate limiter (proptested), backoff, 5xx detection.

use super::*;
use crate::config::{NotifyKind, NotifyUrl};
use crate::secret::SecretRef;
use proptest::prelude::*;
use std::time::Duration;

fn target(events: &[EventKind], environments: &[&str], tiers: &[Tier]) -> Notify {
    Notify {
        name: "team".into(),
        kind: NotifyKind::Slack,
        url: NotifyUrl::Secret(SecretRef::Env("SLACK_URL".into())),
        secret: None,
        environments: environments.iter().map(|e| e.to_string()).collect(),
        events: events.to_vec(),
        tiers: tiers.to_vec(),
        lease_warning: Duration::from_secs(600),
        rate_limit: 20,
    }
}

fn event(kind: EventKind) -> Event {
    let mut e = Event::new(
        kind,
        "dev-2",
        "dev",
        Some(12),
        "dev-2: cycle 12 failed".into(),
        1_700_000_000_000,
    );
    e.summary = "blocking suite `api` failed: <500> & more".into();
    e.fields = vec![("duration".into(), "1m 3s".into())];
    e
}

#[test]
fn targets_filter_by_event_environment_tier_and_lease_warning() {
    let all = target(&EventKind::ALL, &[], &[]);
    assert!(wants(&all, &event(EventKind::CycleFailed), 0));
    assert!(!wants(
        &target(&[EventKind::CulpritFound], &[], &[]),
        &event(EventKind::CycleFailed),
        0
    ));
    // By pool name or instance name.
    assert!(wants(
        &target(&EventKind::ALL, &["dev"], &[]),
        &event(EventKind::CycleFailed),
        0
    ));
    assert!(wants(
        &target(&EventKind::ALL, &["dev-2"], &[]),
        &event(EventKind::CycleFailed),
        0
    ));
    assert!(!wants(
        &target(&EventKind::ALL, &["staging"], &[]),
        &event(EventKind::CycleFailed),
        0
    ));
    // Tiers only filter events about a suite.
    let gates = target(&EventKind::ALL, &[], &[Tier::Gate]);
    let mut e = event(EventKind::TestErrors);
    e.tier = Some(Tier::NonBlocking);
    assert!(!wants(&gates, &e, 0));
    e.tier = Some(Tier::Gate);
    assert!(wants(&gates, &e, 0));
    assert!(wants(&gates, &event(EventKind::CulpritFound), 0));
    // A lease warning only within the target's lease_warning, never after expiry.
    let mut l = event(EventKind::LeaseExpiring);
    l.expires = Some(1_000_000);
    assert!(!wants(&all, &l, 1_000_000 - 601_000));
    assert!(wants(&all, &l, 1_000_000 - 600_000));
    assert!(!wants(&all, &l, 1_000_000));
}

#[test]
fn slack_message_is_valid_block_kit() {
    let mut e = event(EventKind::CycleFailed);
    e.mention = Some("U024BE7LH".into());
    let m = slack_message(&e, 2);
    let blocks = m["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(blocks[1]["type"], "section");
    let summary = blocks[1]["text"]["text"].as_str().expect("text");
    assert!(summary.starts_with("<@U024BE7LH> "), "{summary}");
    assert!(summary.contains("&lt;500&gt; &amp; more"), "{summary}");
    assert_eq!(blocks[2]["fields"][0]["text"], "*duration*\n1m 3s");
    let context = blocks.last().expect("context");
    assert_eq!(context["type"], "context");
    let ctx = context.to_string();
    assert!(
        ctx.contains("cycle-failed") && ctx.contains("dev-2") && ctx.contains("cycle 12"),
        "{ctx}"
    );
    assert!(ctx.contains("2 earlier notification(s)"), "{ctx}");
    assert!(m["text"].as_str().expect("text").contains("cycle 12 failed"));
    // A mention that is not a plain id is not sent as one.
    e.mention = Some("<!channel>".into());
    assert!(!slack_message(&e, 0).to_string().contains("<!channel>"));
}

#[test]
fn slack_message_stays_within_limits_whatever_the_text() {
    let mut e = event(EventKind::TestErrors);
    e.title = "t".repeat(400);
    e.summary = "<&>".repeat(5000);
    e.fields = (0..25).map(|i| (format!("k{i}"), "&".repeat(3000))).collect();
    let m = slack_message(&e, 0);
    let blocks = m["blocks"].as_array().expect("blocks");
    assert!(blocks.len() <= slack_limits::BLOCKS);
    let len = |v: &Value| v.as_str().map(|s| s.chars().count()).unwrap_or(0);
    assert!(len(&blocks[0]["text"]["text"]) <= slack_limits::HEADER_TEXT);
    for b in blocks {
        assert!(len(&b["text"]["text"]) <= slack_limits::SECTION_TEXT);
        for f in b["fields"].as_array().into_iter().flatten() {
            assert!(len(&f["text"]) <= slack_limits::FIELD_TEXT);
        }
        if let Some(f) = b["fields"].as_array() {
            assert!(f.len() <= slack_limits::FIELDS);
        }
    }
    // Escaping never leaves a broken entity at the cut.
    let s = blocks[1]["text"]["text"].as_str().expect("text");
    let tail = s.trim_end_matches('\u{2026}');
    assert!(tail.len() > 2900, "{}", tail.len());
    assert!(
        tail.ends_with("&gt;") || tail.ends_with("&lt;") || tail.ends_with("&amp;"),
        "{tail}"
    );
}

#[test]
fn webhook_body_names_event_environment_and_cycle() {
    let b = webhook_body(&event(EventKind::CycleFailed), "d-1", 0);
    assert_eq!(b["event"], "cycle-failed");
    assert_eq!(b["environment"], "dev-2");
    assert_eq!(b["cycle"], 12);
    assert_eq!(b["fields"]["duration"], "1m 3s");
    assert_eq!(b["delivery"], "d-1");
}

#[test]
fn dedup_says_once_per_key_and_forgets_after_ttl() {
    let mut d = Dedup::new(1000, 100);
    assert!(d.first("a", 0));
    assert!(!d.first("a", 10));
    assert!(d.first("b", 10));
    assert!(!d.first("a", 999));
    assert!(d.first("a", 1000));
    let mut small = Dedup::new(1_000_000, 2);
    assert!(small.first("x", 0) && small.first("y", 1) && small.first("z", 2));
    assert!(small.first("x", 3), "the oldest key is forgotten beyond the cap");
}

#[test]
fn rate_limiter_drops_the_excess_and_counts_it() {
    let mut r = RateLimiter::new(60_000);
    assert_eq!(r.admit("t", 2, 0), Admit::Send { suppressed: 0 });
    assert_eq!(r.admit("t", 2, 1), Admit::Send { suppressed: 0 });
    assert_eq!(r.admit("t", 2, 2), Admit::Drop);
    assert_eq!(r.admit("t", 2, 3), Admit::Drop);
    assert_eq!(r.admit("other", 2, 3), Admit::Send { suppressed: 0 });
    assert_eq!(r.admit("t", 2, 60_000), Admit::Send { suppressed: 2 });
    assert_eq!(r.admit("t", 2, 60_001), Admit::Send { suppressed: 0 });
}

#[test]
fn backoff_doubles_and_is_bounded() {
    let d: Vec<Option<Millis>> = (1..=6).map(|a| retry_delay(1000, a)).collect();
    assert_eq!(d, vec![Some(0), Some(1000), Some(2000), Some(4000), Some(8000), None]);
    assert_eq!(retry_delay(50_000, 4), Some(60_000));
    assert!(retryable(None) && retryable(Some(500)) && retryable(Some(503)) && retryable(Some(429)));
    assert!(!retryable(Some(400)) && !retryable(Some(404)) && !retryable(Some(200)));
}

#[test]
fn server_errors_are_found_in_test_output() {
    let out = "GET /api/runners 200\n\
               curl: (22) The requested URL returned error: 500\n\
               < HTTP/1.1 502 Bad Gateway\n\
               processed 500 records\n\
               status=503 path=/api/jobs\n\
               error code 5000\n";
    let (n, first) = server_error_lines(out, 2);
    assert_eq!(n, 3);
    assert_eq!(
        first,
        vec![
            "curl: (22) The requested URL returned error: 500",
            "< HTTP/1.1 502 Bad Gateway"
        ]
    );
}

#[test]
fn test_errors_alert_on_5xx_even_when_the_suite_passed() {
    let run = |name: &str, tier, result: &str, output: &str| SuiteRun {
        name: name.into(),
        tier,
        result: result.into(),
        output: output.into(),
    };
    let base = Event::new(
        EventKind::TestErrors,
        "staging",
        "staging",
        Some(3),
        "staging: errors".into(),
        0,
    );
    assert_eq!(
        test_errors(base.clone(), &[run("smoke", Tier::Blocking, "passed", "ok")]),
        None
    );
    // Quarantined suites never alert; a failed blocking suite is the cycle's failure.
    assert_eq!(
        test_errors(
            base.clone(),
            &[
                run("q", Tier::Quarantine, "failed", "HTTP/1.1 500"),
                run("b", Tier::Blocking, "failed", "assertion")
            ]
        ),
        None
    );
    let e = test_errors(
        base,
        &[
            run(
                "api",
                Tier::Blocking,
                "passed",
                "retrying after HTTP/1.1 500 Internal Server Error\nok",
            ),
            run("ui", Tier::NonBlocking, "failed", "button missing"),
        ],
    )
    .expect("an alert");
    assert!(
        e.summary.contains("api (blocking, passed): 1 server error line(s)"),
        "{}",
        e.summary
    );
    assert!(e.summary.contains("HTTP/1.1 500 Internal Server Error"));
    assert!(e.summary.contains("ui (non-blocking, failed)"));
    assert_eq!(e.tier, Some(Tier::Blocking));
}

proptest! {
    /// Whatever the arrival times: no window holds more than `limit` sent
    /// messages; a message is dropped only when the window is full; every
    /// dropped message is reported by the next one sent, exactly once.
    #[test]
    fn rate_limiter_bounds_every_window(
        gaps in proptest::collection::vec(0i64..30_000, 1..200),
        limit in 1u32..8,
    ) {
        let window = 60_000;
        let mut r = RateLimiter::new(window);
        let mut now = 0;
        let mut sent: Vec<Millis> = Vec::new();
        let (mut dropped, mut reported) = (0u32, 0u32);
        for g in gaps {
            now += g;
            let in_window = sent.iter().filter(|t| now - **t < window).count();
            match r.admit("t", limit, now) {
                Admit::Send { suppressed } => {
                    prop_assert!(in_window < limit as usize);
                    reported += suppressed;
                    prop_assert_eq!(reported, dropped, "every drop is reported by the next send");
                    sent.push(now);
                }
                Admit::Drop => {
                    prop_assert_eq!(in_window, limit as usize);
                    dropped += 1;
                }
            }
        }
        for (i, t) in sent.iter().enumerate() {
            let n = sent[i..].iter().filter(|u| **u - *t < window).count();
            prop_assert!(n <= limit as usize, "{} sent within a window from {}", n, t);
        }
    }

    /// Dedup admits each key exactly once while it is remembered.
    #[test]
    fn dedup_admits_each_key_once(keys in proptest::collection::vec(0u8..20, 1..100)) {
        let mut d = Dedup::new(1_000_000, 1000);
        let mut seen = std::collections::BTreeSet::new();
        for (i, k) in keys.iter().enumerate() {
            let first = d.first(&k.to_string(), i as i64);
            prop_assert_eq!(first, seen.insert(*k));
        }
    }
}
