//! Finding the faulty change, end to end (issue #4's scenarios): a real
//! `greenroom serve` stages pending changes from plain git forges, a
//! blocking suite fails, and the culprit search runs on the `dev` slots.
//! Eight changes across three repositories with one culprit; a pair that
//! fails only together; a flaky gate; an infrastructure error that must
//! blame nobody. (Two culprits, a conflict, an approval and a refusal are
//! in `e2e_pending` and `e2e_commands`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pending::*;
use common::*;
use std::time::Duration;

/// A suite that calls every staged component's `/api/check`.
fn api_suite(components: &[&str]) -> String {
    let checks: Vec<String> = components
        .iter()
        .map(|c| {
            let var = c.to_uppercase().replace('-', "_");
            format!("curl -fsS \"${{GREENROOM_URL_{var}%/}}/api/check\"")
        })
        .collect();
    format!("\n[[suite]]\nname = \"api\"\nrun = '{}'\n", checks.join(" && "))
}

/// The first scheduled cycle that succeeded after cycle `after`.
fn passed_after(sb: &Sandbox, after: &serde_json::Value) -> serde_json::Value {
    wait_until_for(Duration::from_secs(150), "a passing cycle on staging", &mut || {
        scheduled(sb)
            .into_iter()
            .find(|c| c["result"] == "succeeded" && c["id"].as_i64() > after["id"].as_i64())
    })
}

#[test]
fn eight_changes_across_three_repositories_one_culprit() {
    let index = 51;
    let all = ["ogr", "packit-service", "dashboard"];
    let extra = format!(
        "\n[pending]\ntrusted = [\"alice\", \"bob\", \"carol\"]\nsearch_pool = \"dev\"\n{}",
        api_suite(&all)
    );
    let sb = pending_sandbox(index, &all, &extra);
    let (ogr, ps, dash) = (sb.repo("ogr"), sb.repo("packit-service"), sb.repo("dashboard"));
    change(&ogr, 1, "alice", "2026-11-20T10:00:00", "FEATURE_1", "1\n");
    change(&ps, 1, "bob", "2026-11-20T10:10:00", "FEATURE_2", "2\n");
    change(&dash, 1, "carol", "2026-11-20T10:20:00", "FEATURE_3", "3\n");
    change(&ogr, 2, "bob", "2026-11-20T10:30:00", "FEATURE_4", "4\n");
    let bad = change(
        &ps,
        2,
        "carol",
        "2026-11-20T10:40:00",
        "API_BUG",
        "a foreign key goes missing\n",
    );
    change(&dash, 2, "alice", "2026-11-20T10:50:00", "FEATURE_6", "6\n");
    change(&ogr, 3, "carol", "2026-11-20T11:00:00", "FEATURE_7", "7\n");
    change(&ps, 3, "alice", "2026-11-20T11:10:00", "FEATURE_8", "8\n");

    let server = serve(&sb, index);
    let first = wait_until_for(Duration::from_secs(90), "the first cycle to fail", &mut || {
        scheduled(&sb).into_iter().find(|c| c["result"] == "failed")
    });
    let staged = first["request"].as_str().expect("request");
    assert_eq!(staged.matches('#').count(), 8, "all eight staged: {staged}");
    let fixed = passed_after(&sb, &first);
    let request = fixed["request"].as_str().expect("request");
    for kept in [
        "ogr#1",
        "ogr#2",
        "ogr#3",
        "packit-service#1",
        "packit-service#3",
        "dashboard#1",
        "dashboard#2",
    ] {
        assert!(request.contains(kept), "{kept} missing: {request}");
    }
    assert!(
        !request.contains("packit-service#2"),
        "the culprit is staged: {request}"
    );
    // Only its author is told; the culprit's commit got a red status.
    let told = comments(&sb, "packit-service");
    assert!(told.contains("excluded packit-service#2"), "{told}");
    assert!(!comments(&sb, "ogr").contains("excluded"), "nobody else is blamed");
    assert!(status_states(&sb, "packit-service", &bad).contains(&"failure".to_string()));
    // One culprit among 8 units on two slots: a handful of runs, far fewer than 8.
    let runs = search_runs(&sb);
    assert!(runs <= 7, "{runs} search runs for 8 units and 1 culprit");
    let said = decisions(index).join("\n");
    assert!(said.contains("excluded packit-service#2"), "{said}");
    server.kill9();
    clean_up(&sb);
}

#[test]
fn a_pair_that_fails_only_together_is_excluded_as_a_group() {
    let index = 53;
    let both = ["ogr", "packit-service"];
    let extra = format!(
        "\n[pending]\ntrusted = [\"alice\", \"bob\", \"carol\"]\nsearch_pool = \"dev\"\n{}",
        api_suite(&both)
    );
    let sb = pending_sandbox(index, &both, &extra);
    let (ogr, ps) = (sb.repo("ogr"), sb.repo("packit-service"));
    change(&ogr, 1, "alice", "2026-11-20T10:00:00", "FEATURE_A", "a\n");
    change(&ogr, 2, "bob", "2026-11-20T10:10:00", "CACHE_ENABLED", "cache: on\n");
    change(&ps, 1, "alice", "2026-11-20T10:20:00", "FEATURE_B", "b\n");
    change(&ogr, 3, "carol", "2026-11-20T10:30:00", "CACHE_TTL_ZERO", "ttl: 0\n");
    change(&ogr, 4, "alice", "2026-11-20T10:40:00", "FEATURE_C", "c\n");

    let server = serve(&sb, index);
    let first = wait_until_for(Duration::from_secs(90), "the first cycle to fail", &mut || {
        scheduled(&sb).into_iter().find(|c| c["result"] == "failed")
    });
    let fixed = passed_after(&sb, &first);
    let request = fixed["request"].as_str().expect("request");
    for kept in ["ogr#1", "ogr#4", "packit-service#1"] {
        assert!(request.contains(kept), "{kept} missing: {request}");
    }
    for pair in ["ogr#2", "ogr#3"] {
        assert!(!request.contains(pair), "{pair} staged: {request}");
    }
    // Both authors hear that it is an interaction, each naming the other.
    let told = comments(&sb, "ogr");
    assert!(
        told.contains("excluded ogr#2") && told.contains("excluded ogr#3"),
        "{told}"
    );
    assert!(told.contains("only together"), "{told}");
    let said = decisions(index).join("\n");
    assert!(
        said.contains("excluded") && said.contains("ogr#2") && said.contains("ogr#3"),
        "{said}"
    );
    assert!(search_runs(&sb) <= 16, "{} search runs", search_runs(&sb));
    server.kill9();
    clean_up(&sb);
}

#[test]
fn a_flaky_gate_blames_nobody() {
    let index = 54;
    // The suite fails the first time it runs anywhere, then passes.
    let extra = "\n[pending]\ntrusted = [\"alice\", \"bob\"]\nsearch_pool = \"dev\"\n\n[[suite]]\nname = \"api\"\n\
         run = 'if [ ! -e @ROOT@/flaked-once ]; then touch @ROOT@/flaked-once; echo \"connection reset\"; exit 1; fi'\n";
    let sb = pending_sandbox(index, &["ogr"], extra);
    let flag = sb.root.join("flaked-once");
    let ogr = sb.repo("ogr");
    let a = change(&ogr, 1, "alice", "2026-11-20T10:00:00", "FEATURE_A", "a\n");
    change(&ogr, 2, "bob", "2026-11-20T10:10:00", "FEATURE_B", "b\n");
    change(&ogr, 3, "alice", "2026-11-20T10:20:00", "FEATURE_C", "c\n");

    let server = serve(&sb, index);
    let first = wait_until_for(Duration::from_secs(90), "the first cycle to fail", &mut || {
        scheduled(&sb).into_iter().find(|c| c["result"] == "failed")
    });
    assert!(flag.exists(), "the suite ran");
    // The re-run passes: flaky, nobody blamed, and the same three are deployed again.
    let again = passed_after(&sb, &first);
    let request = again["request"].as_str().expect("request");
    for kept in ["ogr#1", "ogr#2", "ogr#3"] {
        assert!(request.contains(kept), "{kept} missing: {request}");
    }
    let said = decisions(index).join("\n");
    assert!(said.contains("flaky, nobody is blamed"), "{said}");
    assert!(!said.contains("excluded"), "{said}");
    assert!(!comments(&sb, "ogr").contains("excluded"), "nobody is told off");
    // The re-run that rules out the flake, and at most one more started
    // alongside it on the second slot.
    assert!(search_runs(&sb) <= 2, "{} search runs", search_runs(&sb));
    assert_eq!(
        status_states(&sb, "ogr", &a).last().map(String::as_str),
        Some("success")
    );
    server.kill9();
    clean_up(&sb);
}

#[test]
fn an_infrastructure_error_blames_nobody_and_is_retried() {
    let index = 55;
    let both = ["ogr", "packit-service"];
    let extra = format!(
        "\n[pending]\ntrusted = [\"alice\", \"bob\"]\nsearch_pool = \"dev\"\n{}",
        api_suite(&both)
    );
    let sb = pending_sandbox(index, &both, &extra);
    // packit-service's build reports the registry unreachable (exit 75,
    // EX_TEMPFAIL) while the file REGISTRY_DOWN exists outside the repositories.
    let down = sb.root.join("REGISTRY_DOWN");
    std::fs::write(&down, "the registry is unreachable\n").expect("write");
    let build = sb.build_command("packit-service");
    let flaky_build = format!(
        "if [ -e {} ]; then echo 'registry.example: connection timed out' >&2; exit 75; fi; {build}",
        sh_quote(&down.display().to_string())
    );
    let text =
        std::fs::read_to_string(&sb.config)
            .expect("config")
            .replacen(&toml_str(&build), &toml_str(&flaky_build), 1);
    assert!(text.contains("exit 75"), "the build was replaced");
    let text = text.replacen("cooldown = \"0s\"\n", "cooldown = \"0s\"\nretry_backoff = \"1s\"\n", 1);
    sb.write_config(&text);
    let (ogr, ps) = (sb.repo("ogr"), sb.repo("packit-service"));
    let a = change(&ogr, 1, "alice", "2026-11-20T10:00:00", "FEATURE_A", "a\n");
    change(&ps, 1, "bob", "2026-11-20T10:10:00", "FEATURE_B", "b\n");
    change(&ogr, 2, "bob", "2026-11-20T10:20:00", "FEATURE_C", "c\n");

    let server = serve(&sb, index);
    let first = wait_until_for(Duration::from_secs(90), "the first cycle to fail", &mut || {
        scheduled(&sb).into_iter().find(|c| c["result"] == "failed")
    });
    // Retried with backoff, recorded, nobody blamed, no culprit search.
    wait_until("a retry decision", || {
        decisions(index)
            .into_iter()
            .find(|d| d.starts_with("retry:") && d.contains("nobody is blamed"))
    });
    assert_eq!(status_states(&sb, "ogr", &a).get(1).map(String::as_str), Some("error"));
    std::fs::remove_file(&down).expect("the registry is back");
    let fixed = passed_after(&sb, &first);
    let request = fixed["request"].as_str().expect("request");
    for kept in ["ogr#1", "ogr#2", "packit-service#1"] {
        assert!(request.contains(kept), "{kept} missing: {request}");
    }
    assert_eq!(search_runs(&sb), 0, "an infrastructure error starts no search");
    let told = comments(&sb, "ogr") + &comments(&sb, "packit-service");
    assert!(!told.contains("excluded"), "{told}");
    let said = decisions(index).join("\n");
    assert!(said.contains("failed for infrastructure"), "{said}");
    assert!(said.contains("EX_TEMPFAIL"), "{said}");
    assert_eq!(
        status_states(&sb, "ogr", &a).last().map(String::as_str),
        Some("success")
    );
    server.kill9();
    clean_up(&sb);
}

#[test]
fn a_restart_during_the_search_searches_again() {
    let index = 56;
    // Search runs (on the dev slots) hold in their suite until the file
    // `go` exists, so the server can be killed mid-search.
    let extra = "\n[pending]\ntrusted = [\"alice\", \"bob\"]\nsearch_pool = \"dev\"\n\n[[suite]]\nname = \"api\"\n\
         run = 'if [ \"$GREENROOM_ENV\" != staging ]; then touch @ROOT@/waiting-$GREENROOM_ENV; while [ ! -e @ROOT@/go ]; do sleep 0.05; done; fi; \
         curl -fsS \"${GREENROOM_URL_OGR%/}/api/check\"'\n";
    let sb = pending_sandbox(index, &["ogr"], extra);
    let ogr = sb.repo("ogr");
    change(&ogr, 1, "alice", "2026-11-20T10:00:00", "FEATURE_A", "a\n");
    change(&ogr, 2, "bob", "2026-11-20T10:10:00", "API_BUG", "breaks /api/check\n");
    change(&ogr, 3, "alice", "2026-11-20T10:20:00", "FEATURE_C", "c\n");

    let server = serve(&sb, index);
    let first = wait_until_for(Duration::from_secs(90), "the first cycle to fail", &mut || {
        scheduled(&sb).into_iter().find(|c| c["result"] == "failed")
    });
    // Both runs of the first round are deployed and in their suite: the
    // kill comes between recorded steps. (Killed between starting a
    // component and recording it, a server leaves an orphan holding the
    // slot's port; see the closing note of session 3.)
    wait_until("both search runs to wait in their suite", || {
        (sb.root.join("waiting-dev-1").exists() && sb.root.join("waiting-dev-2").exists()).then_some(())
    });
    server.kill9();
    std::fs::write(sb.root.join("go"), "").expect("write");

    // The restarted server finds the failed cycle without a verdict and runs it again.
    let server = serve(&sb, index);
    let fixed = passed_after(&sb, &first);
    let request = fixed["request"].as_str().expect("request");
    let said = decisions(index).join("\n");
    assert!(
        request.contains("ogr#1") && request.contains("ogr#3"),
        "{request}\n{said}"
    );
    assert!(!request.contains("ogr#2"), "{request}");
    assert!(said.contains("cut short by a restart"), "{said}");
    assert!(said.contains("excluded ogr#2"), "{said}");
    server.kill9();
    clean_up(&sb);
}

/// The states of a status context on a commit, in order.
fn states(sb: &Sandbox, repo: &str, head: &str, context: &str) -> Vec<String> {
    let statuses = std::fs::read_to_string(forge_dir(&sb.state, repo).join("statuses.jsonl")).unwrap_or_default();
    statuses
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["sha"] == head && v["context"] == context)
        .map(|v| v["state"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_failing_gate_turns_red_only_on_the_culprit() {
    let index = 61;
    // A quarantined suite that always fails rides along: it changes nothing.
    let extra = "\n[pending]\ntrusted = [\"alice\", \"bob\"]\nsearch_pool = \"dev\"\n\n[[suite]]\nname = \"api-gate\"\n\
         tier = \"gate\"\nrun = 'curl -fsS \"${GREENROOM_URL_OGR%/}/api/check\"'\n\n\
         [[suite]]\nname = \"old-ui\"\ntier = \"quarantine\"\nrun = 'echo \"the old UI test is broken\"; exit 1'\n";
    let sb = pending_sandbox(index, &["ogr"], extra);
    let ogr = sb.repo("ogr");
    let a = change(&ogr, 1, "alice", "2026-11-20T10:00:00", "FEATURE_A", "a\n");
    let bad = change(&ogr, 2, "bob", "2026-11-20T10:10:00", "API_BUG", "breaks /api/check\n");
    let c = change(&ogr, 3, "alice", "2026-11-20T10:20:00", "FEATURE_C", "c\n");

    let server = serve(&sb, index);
    // A gate does not fail the deploy: the cycle passes with all three staged.
    let cycle = wait_until("the first cycle to pass", || {
        scheduled(&sb).into_iter().find(|c| c["result"] == "succeeded")
    });
    let request = cycle["request"].as_str().expect("request");
    assert!(
        request.contains("ogr#1") && request.contains("ogr#2") && request.contains("ogr#3"),
        "{request}"
    );
    // The search decides: red on the culprit, green on the others; nobody excluded.
    wait_until("the gate's verdict on the culprit", || {
        (states(&sb, "ogr", &bad, "greenroom/api-gate")
            .last()
            .map(String::as_str)
            == Some("failure"))
        .then_some(())
    });
    for head in [&a, &c] {
        let s = states(&sb, "ogr", head, "greenroom/api-gate");
        assert_eq!(s.first().map(String::as_str), Some("pending"), "{s:?}");
        assert_eq!(s.last().map(String::as_str), Some("success"), "{s:?}");
    }
    assert_eq!(
        status_states(&sb, "ogr", &bad).last().map(String::as_str),
        Some("success"),
        "staging itself passed"
    );
    assert!(!comments(&sb, "ogr").contains("excluded"), "a gate excludes nobody");
    let said = decisions(index).join("\n");
    assert!(said.contains("gate suite `api-gate` fails with ogr#2"), "{said}");
    // The quarantined failure changed nothing: no status, no search, listed apart.
    assert!(states(&sb, "ogr", &a, "greenroom/old-ui").is_empty());
    assert!(!said.contains("old-ui"), "{said}");
    let sticky = std::fs::read_to_string(forge_dir(&sb.state, "ogr").join("comments/1.md")).expect("sticky");
    assert!(
        sticky.contains("Quarantined (never counted): `old-ui` failed"),
        "{sticky}"
    );
    server.kill9();
    clean_up(&sb);
}
