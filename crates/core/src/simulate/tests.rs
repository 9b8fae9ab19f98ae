//! The simulator on small hand-made traces whose figures are computed by
//! hand in the comments (defaults: settle 5m, cooldown 30m, full every 6h;
//! drain 1m, partial cycle 4+3+5 = 12m, full cycle 4+3+90 = 97m).

use super::*;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY0: Millis = GENERATED_TRACE_START;

fn at(h: i64, m: i64) -> Millis {
    DAY0 + h * HOUR + m * MIN
}

fn push(at: Millis) -> TraceEvent {
    TraceEvent {
        at,
        repo: "ogr".into(),
        pr: None,
        kind: TriggerKind::Push,
    }
}

fn stats(min: i64, median: i64, p90: i64, max: i64, count: usize) -> Option<Stats> {
    Some(Stats {
        count,
        min: min * MIN,
        median: median * MIN,
        p90: p90 * MIN,
        max: max * MIN,
    })
}

fn run(trace: &[TraceEvent]) -> SimReport {
    simulate(trace, &PolicyConfig::default(), &SimModel::default())
}

#[test]
fn parses_times_as_rfc3339_or_milliseconds_skipping_blank_and_comment_lines() {
    let text = format!(
        "# a trace\n{{\"at\": \"2026-11-23T10:00:00Z\", \"repo\": \"ogr\", \"pr\": 123, \"kind\": \"pull_request\"}}\n\n{{\"at\": {}, \"repo\": \"packit\", \"kind\": \"push\"}}\n",
        at(9, 0)
    );
    let trace = parse_trace(&text).expect("valid trace");
    assert_eq!(
        trace,
        vec![
            push(at(9, 0)).with_repo("packit"),
            TraceEvent {
                at: at(10, 0),
                repo: "ogr".into(),
                pr: Some(123),
                kind: TriggerKind::PullRequest,
            },
        ],
        "sorted by time"
    );
}

impl TraceEvent {
    fn with_repo(mut self, repo: &str) -> TraceEvent {
        self.repo = repo.into();
        self
    }
}

#[test]
fn trace_errors_say_which_line_and_what_is_wrong() {
    let good = r#"{"at": "2026-11-23T10:00:00Z", "repo": "ogr", "kind": "push"}"#;
    let cases = [
        (
            "{\"at\": ",
            "line 2: not valid JSON: EOF while parsing a value at line 1 column 6",
        ),
        (
            "[1]",
            "line 2: expected a JSON object like {\"at\": \"2026-11-23T10:00:00Z\", \"repo\": \"ogr\", \"pr\": 123, \"kind\": \"pull_request\"}",
        ),
        (
            r#"{"at": "yesterday", "repo": "ogr", "kind": "push"}"#,
            "line 2: `at`: `yesterday` is not an RFC 3339 UTC time (timestamp format is invalid); write e.g. \"2026-11-23T10:00:00Z\"",
        ),
        (
            r#"{"at": 1.5, "repo": "ogr", "kind": "push"}"#,
            "line 2: `at`: 1.5 is not a whole number of milliseconds since the epoch",
        ),
        (
            r#"{"repo": "ogr", "kind": "push"}"#,
            "line 2: missing `at` (RFC 3339 UTC time or milliseconds since the epoch)",
        ),
        (
            r#"{"at": 0, "repo": "", "kind": "push"}"#,
            "line 2: `repo` must not be empty",
        ),
        (
            r#"{"at": 0, "repo": "ogr", "kind": "merge"}"#,
            "line 2: `kind`: unknown kind `merge` (expected one of push, pull_request, comment_deploy, comment_trigger)",
        ),
        (
            r#"{"at": 0, "repo": "ogr", "kind": "pull_request"}"#,
            "line 2: missing `pr`: pull_request and comment events belong to a pull request",
        ),
        (
            r#"{"at": 0, "repo": "ogr", "pr": 4, "kind": "push"}"#,
            "line 2: `pr` given for a push (a push is to a branch)",
        ),
        (
            r#"{"at": 0, "repo": "ogr", "pr": -4, "kind": "comment_deploy"}"#,
            "line 2: `pr`: -4 is not a pull request number",
        ),
        (
            r#"{"at": 0, "repo": "ogr", "kind": "push", "sha": "1a2b"}"#,
            "line 2: unknown field `sha` (expected at, repo, pr, kind)",
        ),
    ];
    for (line, expected) in cases {
        let err = parse_trace(&format!("{good}\n{line}\n")).expect_err(line);
        assert_eq!(err.to_string(), expected);
        assert_eq!(err.line, 2);
    }
}

#[test]
fn generated_lines_parse_back() {
    let trace = generate_trace(&["ogr", "packit-service"], 3, 7);
    let text: Vec<String> = trace.iter().map(|e| e.to_json_line()).collect();
    assert_eq!(parse_trace(&text.join("\n")).expect("parses"), trace);
}

#[test]
fn stats_use_the_nearest_rank() {
    assert_eq!(Stats::of(&[]), None);
    let ten: Vec<i64> = (1..=10).collect();
    assert_eq!(
        Stats::of(&ten),
        Some(Stats {
            count: 10,
            min: 1,
            median: 5,
            p90: 9,
            max: 10
        })
    );
    assert_eq!(Stats::of(&[7]).map(|s| (s.median, s.p90)), Some((7, 7)));
}

#[test]
fn a_single_push_on_a_fresh_environment_gets_a_full_cycle() {
    // 10:00 push; settle to 10:05; drain to 10:06; full (none ran yet) to 11:43.
    let r = run(&[push(at(10, 0))]);
    assert_eq!(r.any_feedback, stats(103, 103, 103, 103, 1));
    assert_eq!(r.full_feedback, r.any_feedback);
    assert_eq!((r.full_cycles, r.partial_cycles, r.restarts, r.deferred), (1, 0, 0, 0));
    assert_eq!(r.busy_ms, 97 * MIN);
}

/// 10:00, 10:02 and 12:00 pushes.
fn three_pushes() -> Vec<TraceEvent> {
    vec![push(at(10, 0)), push(at(10, 2)), push(at(12, 0))]
}

#[test]
fn settle_cooldown_partial_and_the_later_full_cycle() {
    // 10:00 and 10:02 share the full cycle 10:06-11:43 (103m, 101m).
    // 12:00 is inside the cooldown after 11:43: deferred to 12:13, drain,
    // partial 12:14-12:26 (26m). Its full feedback: the poll once the full
    // interval has passed (10:06 + 6h = 16:06) sees the change, drain,
    // full 16:07-17:44 (5h 44m = 344m).
    let r = run(&three_pushes());
    assert_eq!(r.any_feedback, stats(26, 101, 103, 103, 3));
    assert_eq!(r.full_feedback, stats(101, 103, 344, 344, 3));
    assert_eq!(r.without_full_feedback, 0);
    assert_eq!((r.full_cycles, r.partial_cycles, r.restarts, r.deferred), (2, 1, 0, 1));
    assert_eq!(r.busy_ms, (97 + 12 + 97) * MIN);
}

#[test]
fn a_push_during_a_partial_cycle_restarts_it_once() {
    // 10:00: full 10:06-11:43. 12:20 (after the cooldown): settle to 12:25,
    // drain, partial 12:26. 12:30: restart (drain to 12:31, ends 12:43).
    // 12:35: restarts used up, waits; 12:43 finish, cooldown to 13:13,
    // drain, partial 13:14-13:26. Feedback: 103m, 23m, 13m, 51m.
    let trace = [push(at(10, 0)), push(at(12, 20)), push(at(12, 30)), push(at(12, 35))];
    let r = run(&trace);
    assert_eq!(r.any_feedback, stats(13, 23, 103, 103, 4));
    assert_eq!((r.partial_cycles, r.restarts, r.deferred), (2, 1, 1));
}

#[test]
fn a_maintainer_trigger_comment_runs_a_full_cycle_early_as_an_override() {
    // 10:00: full 10:06-11:43. 12:00 `@bot trigger` (admin, full): skips the
    // cooldown, drain to 12:01, full override 12:01-13:38 (98m).
    let trace = [
        push(at(10, 0)),
        TraceEvent {
            at: at(12, 0),
            repo: "ogr".into(),
            pr: Some(5),
            kind: TriggerKind::CommentTrigger,
        },
    ];
    let r = run(&trace);
    assert_eq!(r.any_feedback, stats(98, 98, 103, 103, 2));
    assert_eq!((r.full_cycles, r.overrides, r.deferred), (2, 1, 0));
}

#[test]
fn the_fixed_interval_baseline_waits_for_the_next_slot() {
    // Slots at 00:00, 08:00, 16:00; the 16:00 cycle (drain + 97m) ends 17:38.
    let r = baseline_every(&three_pushes(), Duration::from_secs(8 * 3600), &SimModel::default());
    assert_eq!(r.label, "every 8h");
    assert_eq!(r.any_feedback, stats(338, 456, 458, 458, 3));
    assert_eq!(r.full_feedback, r.any_feedback);
    assert_eq!(r.full_cycles, 1);
    // A trace over two days also counts the cycles that served nothing.
    let r = baseline_every(
        &[push(at(1, 0)), push(at(25, 0))],
        Duration::from_secs(8 * 3600),
        &SimModel::default(),
    );
    assert_eq!(r.full_cycles, 4, "08:00, 16:00, 00:00, 08:00");
}

#[test]
fn the_every_event_baseline_queues_full_cycles_back_to_back() {
    // 10:00-11:38; 10:02 waits for it: 11:38-13:16; 12:00 waits: 13:16-14:54.
    let r = baseline_every_event(&three_pushes(), &SimModel::default());
    assert_eq!(r.any_feedback, stats(98, 174, 194, 194, 3));
    assert_eq!(r.full_cycles, 3);
    // Triggers waiting together share the next cycle.
    let r = baseline_every_event(
        &[push(at(10, 0)), push(at(10, 1)), push(at(10, 2))],
        &SimModel::default(),
    );
    assert_eq!(r.full_cycles, 2);
}

#[test]
fn empty_traces_give_empty_reports() {
    let model = SimModel::default();
    for r in [
        run(&[]),
        baseline_every(&[], Duration::from_secs(3600), &model),
        baseline_every_event(&[], &model),
    ] {
        assert_eq!((r.triggers, r.any_feedback, r.full_cycles), (0, None, 0));
    }
}

#[test]
fn the_report_reads_as_a_table() {
    let trace = three_pushes();
    let model = SimModel::default();
    let reports = [
        run(&trace),
        baseline_every(&trace, Duration::from_secs(8 * 3600), &model),
        baseline_every_event(&trace, &model),
    ];
    insta::assert_snapshot!(comparison_table(&reports));
    assert_eq!(reports[1].to_string(), comparison_table(&reports[1..2]));
}

#[test]
fn generated_traces_are_deterministic_workday_activity() {
    let repos = ["a", "b", "c"];
    let one = generate_trace(&repos, 7, 2);
    assert_eq!(one, generate_trace(&repos, 7, 2));
    assert_ne!(one, generate_trace(&repos, 7, 3));
    assert!(!one.is_empty());
    assert!(one.windows(2).all(|w| w[0].at <= w[1].at));
    for e in &one {
        let day = (e.at - DAY0) / (24 * HOUR);
        assert!(day < 5, "weekends are quiet: {e:?}");
        let hour = (e.at - DAY0) % (24 * HOUR) / HOUR;
        assert!(hour >= 8, "nothing before 08:00: {e:?}");
    }
}

/// The benchmark figure of issue 3: median time-to-feedback for a 9-repo
/// trace under seed 002's defaults versus the 8-hour baseline. Run with
/// `--nocapture` to see the table.
#[test]
fn nine_repo_trace_policy_beats_the_eight_hour_baseline() {
    let repos = [
        "packit-service",
        "ogr",
        "packit",
        "specfile",
        "dashboard",
        "deployment",
        "tokman",
        "sandcastle",
        "requre",
    ];
    let trace = generate_trace(&repos, 14, 2);
    let model = SimModel::default();
    let policy = simulate(&trace, &PolicyConfig::default(), &model);
    let every = baseline_every(&trace, Duration::from_secs(8 * 3600), &model);
    let event = baseline_every_event(&trace, &model);
    println!(
        "{} triggers over 14 days\n{}",
        trace.len(),
        comparison_table(&[policy.clone(), every.clone(), event])
    );
    let median = |r: &SimReport| r.any_feedback.map(|s| s.median).unwrap_or(i64::MAX);
    assert_eq!(policy.triggers, trace.len());
    assert!(median(&policy) < median(&every) / 4, "{policy:?} vs {every:?}");
}
