//! The pending set: one test per reason, `Depends-On` parsing and units, a
//! snapshot of a realistic mix, and property tests of order and units.

use super::*;
use proptest::prelude::*;

const HOUR: i64 = 3600 * 1000;
const DAY: i64 = 24 * HOUR;
/// 2026-11-23T00:00:00Z.
const NOW: Millis = 1_795_392_000_000;

fn pr(repo: &str, number: u64) -> Candidate {
    Candidate {
        repo: repo.into(),
        number,
        author: "alice".into(),
        title: format!("change {number}"),
        draft: false,
        labels: Vec::new(),
        base_branch: "main".into(),
        head_sha: format!("{number:040x}"),
        created_at: NOW - 3 * DAY + i64::try_from(number).unwrap_or(0) * HOUR,
        updated_at: NOW - DAY,
        body: String::new(),
        approved_by: None,
        excluded: None,
        web_url: Some(format!("https://github.com/{repo}/pull/{number}")),
    }
}

fn cfg() -> PendingConfig {
    PendingConfig {
        trusted: vec!["alice".into(), "Bob".into()],
        ..PendingConfig::default()
    }
}

fn main_everywhere(_repo: &str) -> Option<String> {
    Some("main".into())
}

fn run(cands: &[Candidate]) -> PendingSet {
    decide(cands, &cfg(), main_everywhere, NOW)
}

fn included(set: &PendingSet) -> Vec<String> {
    set.included.iter().map(|e| e.pr.to_string()).collect()
}

/// The reasons of the one PR left out.
fn reasons_of_one(c: Candidate) -> Vec<String> {
    let set = run(&[c]);
    assert!(set.included.is_empty(), "{set:?}");
    assert_eq!(set.left_out.len(), 1);
    set.left_out[0].reasons.clone()
}

#[test]
fn defaults_are_the_documented_ones() {
    let d = PendingConfig::default();
    assert_eq!(d.skip_label, "staging-skip");
    assert_eq!(d.max_age, Duration::from_secs(14 * 86400));
    assert_eq!(d.order, Order::OldestFirst);
    assert!(d.trusted.is_empty());
    for o in [Order::OldestFirst, Order::NewestFirst, Order::ByNumber] {
        assert_eq!(o.to_string().parse::<Order>(), Ok(o));
    }
    assert_eq!(
        "fifo".parse::<Order>(),
        Err("unknown order `fifo` (expected `oldest-first`, `newest-first` or `by-number`)".into())
    );
    assert_eq!(PrRef::new("owner/name", 12).to_string(), "owner/name#12");
}

#[test]
fn a_trusted_authors_pr_is_included_and_says_why() {
    let mut c = pr("acme/api", 1);
    c.author = "BOB".into();
    let set = run(&[c]);
    assert_eq!(included(&set), ["acme/api#1"]);
    assert_eq!(set.included[0].reasons, ["author BOB is trusted"]);
    assert_eq!(set.included[0].unit, "acme/api#1");
    assert_eq!(
        set.units,
        [Unit {
            id: "acme/api#1".into(),
            members: vec![PrRef::new("acme/api", 1)]
        }]
    );
}

#[test]
fn an_untrusted_author_needs_a_maintainers_approval() {
    let mut c = pr("acme/api", 1);
    c.author = "mallory".into();
    assert_eq!(
        reasons_of_one(c.clone()),
        ["author mallory is not trusted and no maintainer approved it"]
    );
    c.approved_by = Some(" ".into());
    assert_eq!(
        reasons_of_one(c.clone()),
        ["author mallory is not trusted and no maintainer approved it"]
    );
    c.approved_by = Some("alice".into());
    let set = run(&[c]);
    assert_eq!(
        set.included[0].reasons,
        ["approved for staging by alice (author mallory is not trusted)"]
    );
}

#[test]
fn drafts_are_left_out() {
    let mut c = pr("acme/api", 1);
    c.draft = true;
    assert_eq!(reasons_of_one(c), ["draft"]);
}

#[test]
fn the_skip_label_leaves_out_in_any_case() {
    let mut c = pr("acme/api", 1);
    c.labels = vec!["bug".into(), "Staging-Skip".into()];
    assert_eq!(reasons_of_one(c.clone()), ["labelled staging-skip"]);
    let no_label = PendingConfig {
        skip_label: String::new(),
        ..cfg()
    };
    assert_eq!(decide(&[c], &no_label, main_everywhere, NOW).included.len(), 1);
}

#[test]
fn a_pr_must_target_the_branch_staging_follows() {
    let mut c = pr("acme/api", 1);
    c.base_branch = "release-1".into();
    assert_eq!(reasons_of_one(c), ["targets release-1 but staging follows main"]);
    let set = decide(&[pr("acme/other", 2)], &cfg(), |_| None, NOW);
    assert_eq!(set.left_out[0].reasons, ["staging follows no branch of acme/other"]);
}

#[test]
fn stale_prs_are_left_out_after_max_age() {
    let mut c = pr("acme/api", 1);
    c.updated_at = NOW - 20 * DAY;
    assert_eq!(reasons_of_one(c.clone()), ["last updated 20d ago (max_age 14d)"]);
    c.updated_at = NOW - 15 * DAY - 6 * HOUR;
    assert_eq!(reasons_of_one(c.clone()), ["last updated 15d 6h ago (max_age 14d)"]);
    c.updated_at = NOW - 14 * DAY;
    assert_eq!(run(&[c]).included.len(), 1, "exactly max_age old is still within it");
}

#[test]
fn a_pr_excluded_as_faulty_is_left_out() {
    let mut c = pr("acme/api", 1);
    c.excluded = Some("cycle 41 failed smoke with it, passed without it".into());
    assert_eq!(
        reasons_of_one(c.clone()),
        ["excluded as faulty: cycle 41 failed smoke with it, passed without it"]
    );
    c.excluded = Some(String::new());
    assert_eq!(reasons_of_one(c), ["excluded as faulty"]);
}

#[test]
fn every_reason_is_listed_not_only_the_first() {
    let mut c = pr("acme/api", 1);
    c.draft = true;
    c.author = "eve".into();
    c.labels = vec!["staging-skip".into()];
    c.base_branch = "old".into();
    c.updated_at = NOW - 30 * DAY;
    c.excluded = Some("broke the api".into());
    assert_eq!(
        reasons_of_one(c),
        [
            "draft",
            "labelled staging-skip",
            "author eve is not trusted and no maintainer approved it",
            "targets old but staging follows main",
            "last updated 30d ago (max_age 14d)",
            "excluded as faulty: broke the api",
        ]
    );
}

#[test]
fn depends_on_lines_are_parsed_from_github_and_gitlab_urls() {
    let body = "Fixes the login.\n\
                Depends-On: https://github.com/acme/web/pull/7\n\
                depends-on : https://gitlab.example.com/infra/team/deploy/-/merge_requests/42  \n\
                  DEPENDS-ON:https://GitHub.com/Acme/Lib/pull/3/files?w=1#diff\n\
                Depends-On: <https://github.com/acme/web/pull/7>\n\
                Depends-On: https://gitlab.com/g/p/merge_requests/9.\n";
    assert_eq!(
        depends_on(body),
        [
            PrRef::new("acme/web", 7),
            PrRef::new("infra/team/deploy", 42),
            PrRef::new("Acme/Lib", 3),
            PrRef::new("g/p", 9),
        ]
    );
}

#[test]
fn depends_on_ignores_code_fences_quotes_and_other_text() {
    let body = "```\nDepends-On: https://github.com/a/b/pull/1\n```\n\
                ~~~~md\nDepends-On: https://github.com/a/b/pull/2\n```\nstill inside\n~~~~\n\
                > Depends-On: https://github.com/a/b/pull/3\n\
                This depends-on: https://github.com/a/b/pull/4\n\
                Depends-On: https://github.com/a/b/issues/5\n\
                Depends-On: https://github.com/a/b/pull/0\n\
                Depends-On: github.com/a/b/pull/6\n\
                Depends-On: https://gitlab.example.com/solo/-/merge_requests/8\n\
                Depends-On:\n\
                Depends-On: https://github.com/a/b/pull/9 (needs the new schema)\n";
    assert_eq!(depends_on(body), [PrRef::new("a/b", 9)]);
}

#[test]
fn a_depends_on_pair_is_one_unit_in_dependency_order() {
    let mut api = pr("acme/api", 12);
    api.body = "Depends-On: https://github.com/acme/web/pull/30".into();
    let web = pr("acme/web", 30);
    let set = run(&[api, web]);
    assert_eq!(included(&set), ["acme/web#30", "acme/api#12"]);
    assert_eq!(
        set.units,
        [Unit {
            id: "acme/api#12+acme/web#30".into(),
            members: vec![PrRef::new("acme/web", 30), PrRef::new("acme/api", 12)]
        }]
    );
    assert_eq!(
        set.included[1].reasons,
        ["author alice is trusted", "depends on acme/web#30: staged together"]
    );
    assert_eq!(
        set.included[0].reasons,
        ["author alice is trusted", "acme/api#12 depends on it: staged together"]
    );
}

#[test]
fn a_unit_with_a_member_that_does_not_qualify_is_left_out_whole() {
    let mut api = pr("acme/api", 12);
    api.body = "Depends-On: https://github.com/acme/web/pull/30".into();
    let mut web = pr("acme/web", 30);
    web.draft = true;
    let set = run(&[api, web, pr("acme/api", 13)]);
    assert_eq!(included(&set), ["acme/api#13"]);
    let reasons: Vec<(String, Vec<String>)> = set
        .left_out
        .iter()
        .map(|l| (l.pr.to_string(), l.reasons.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "acme/api#12".to_string(),
                vec!["depends on acme/web#30, which is a draft".to_string()]
            ),
            ("acme/web#30".to_string(), vec!["draft".to_string()]),
        ]
    );
    assert!(set.left_out.iter().all(|l| l.unit == "acme/api#12+acme/web#30"));
}

#[test]
fn the_dependent_of_a_faulty_pr_is_excluded_with_it() {
    let mut api = pr("acme/api", 12);
    api.body = "Depends-On: https://github.com/acme/web/pull/30".into();
    api.excluded = Some("cycle 7 failed with it".into());
    let set = run(&[api, pr("acme/web", 30)]);
    assert!(set.included.is_empty());
    assert_eq!(
        set.left_out[1].reasons,
        ["acme/api#12 depends on it, and was excluded as faulty: cycle 7 failed with it"]
    );
}

#[test]
fn a_dependency_that_is_not_a_candidate_blocks_the_unit() {
    let mut api = pr("acme/api", 12);
    api.body = "Depends-On: https://github.com/acme/gone/pull/5".into();
    let mut web = pr("acme/web", 30);
    web.body = "Depends-On: https://github.com/acme/api/pull/12".into();
    let set = run(&[api, web]);
    assert!(set.included.is_empty());
    assert_eq!(set.left_out[0].reasons, [format!("depends on acme/gone#5, {MISSING}")]);
    assert_eq!(
        set.left_out[1].reasons,
        [
            "depends on acme/api#12, which depends on acme/gone#5, which is not an open pull request of a staged \
             repository (merged, closed or unknown)"
        ]
    );
}

#[test]
fn transitive_members_are_named_as_staged_together() {
    let mut a = pr("acme/a", 1);
    a.body = "Depends-On: https://github.com/acme/b/pull/2".into();
    let mut b = pr("acme/b", 2);
    b.body = "Depends-On: https://github.com/acme/c/pull/3".into();
    let mut c = pr("acme/c", 3);
    c.labels = vec!["staging-skip".into()];
    let set = run(&[a, b, c]);
    assert_eq!(
        set.left_out[0].reasons,
        ["staged together with acme/c#3 (Depends-On), which is labelled staging-skip"]
    );
}

#[test]
fn dependency_cycles_are_one_unit() {
    let mut a = pr("acme/a", 5);
    a.body = "Depends-On: https://github.com/acme/b/pull/2".into();
    let mut b = pr("acme/b", 2);
    b.body = "Depends-On: https://github.com/acme/a/pull/5".into();
    let mut c = pr("acme/c", 9);
    c.body = "Depends-On: https://github.com/acme/a/pull/5".into();
    let set = run(&[c, a, b]);
    assert_eq!(included(&set), ["acme/b#2", "acme/a#5", "acme/c#9"]);
    assert_eq!(set.units.len(), 1);
    assert_eq!(set.units[0].id, "acme/a#5+acme/b#2+acme/c#9");
}

#[test]
fn a_self_dependency_is_ignored() {
    let mut a = pr("acme/a", 5);
    a.body = "Depends-On: https://github.com/ACME/a/pull/5".into();
    assert_eq!(included(&run(&[a])), ["acme/a#5"]);
}

#[test]
fn merge_order_follows_the_configured_order_with_ties_by_repo_then_number() {
    let mut a = pr("acme/web", 3);
    a.created_at = NOW - 5 * DAY;
    let mut b = pr("acme/api", 9);
    b.created_at = NOW - 2 * DAY;
    let mut c = pr("acme/api", 4);
    c.created_at = NOW - 2 * DAY;
    let mut d = pr("acme/web", 1);
    d.created_at = NOW - DAY;
    let all = [a, b, c, d];
    let with = |order| {
        let cfg = PendingConfig { order, ..cfg() };
        included(&decide(&all, &cfg, main_everywhere, NOW))
    };
    assert_eq!(
        with(Order::OldestFirst),
        ["acme/web#3", "acme/api#4", "acme/api#9", "acme/web#1"]
    );
    assert_eq!(
        with(Order::NewestFirst),
        ["acme/web#1", "acme/api#4", "acme/api#9", "acme/web#3"]
    );
    assert_eq!(
        with(Order::ByNumber),
        ["acme/web#1", "acme/web#3", "acme/api#4", "acme/api#9"]
    );
}

#[test]
fn a_unit_is_as_old_as_its_oldest_member() {
    let mut late = pr("acme/api", 50);
    late.created_at = NOW - DAY;
    late.body = "Depends-On: https://github.com/acme/web/pull/2".into();
    let mut early = pr("acme/web", 2);
    early.created_at = NOW - 9 * DAY;
    let mut middle = pr("acme/api", 20);
    middle.created_at = NOW - 5 * DAY;
    assert_eq!(
        included(&run(&[late, middle, early])),
        ["acme/web#2", "acme/api#50", "acme/api#20"]
    );
}

#[test]
fn a_pr_listed_twice_counts_once_as_last_updated() {
    let old = pr("acme/api", 1);
    let mut new = pr("Acme/API", 1);
    new.updated_at = NOW - HOUR;
    new.head_sha = "f".repeat(40);
    for cands in [[old.clone(), new.clone()], [new.clone(), old.clone()]] {
        let set = run(&cands);
        assert_eq!(set.included.len(), 1);
        assert_eq!(set.included[0].head_sha, "f".repeat(40));
    }
}

#[test]
fn reasons_of_a_realistic_mix() {
    let day = |d: i64| NOW - d * DAY;
    let mut cands = Vec::new();

    // packit/packit-service#614 needs packit/ogr#123 (cross-repo pair).
    let mut svc = pr("packit/packit-service", 614);
    svc.title = "Use the new ogr pagination".into();
    svc.created_at = day(6);
    svc.body = "Switches to paginated listing.\n\nDepends-On: https://github.com/packit/ogr/pull/123\n".into();
    cands.push(svc);
    let mut ogr = pr("packit/ogr", 123);
    ogr.title = "Paginate PR listing".into();
    ogr.author = "bob".into();
    ogr.created_at = day(4);
    cands.push(ogr);

    // A trusted, plain PR.
    let mut plain = pr("packit/packit-service", 620);
    plain.title = "Fix the retry loop".into();
    plain.created_at = day(3);
    cands.push(plain);

    // A draft.
    let mut draft = pr("packit/ogr", 125);
    draft.title = "WIP: GitLab groups".into();
    draft.draft = true;
    draft.created_at = day(2);
    cands.push(draft);

    // Skip-labelled.
    let mut skip = pr("packit/dashboard", 88);
    skip.title = "Docs only".into();
    skip.labels = vec!["documentation".into(), "staging-skip".into()];
    skip.created_at = day(1);
    cands.push(skip);

    // An outside contributor, approved by a maintainer.
    let mut approved = pr("packit/dashboard", 90);
    approved.title = "Dark mode".into();
    approved.author = "newcomer".into();
    approved.approved_by = Some("alice".into());
    approved.created_at = day(5);
    cands.push(approved);

    // An outside contributor nobody approved.
    let mut stranger = pr("packit/ogr", 126);
    stranger.title = "Typo".into();
    stranger.author = "drive-by".into();
    stranger.created_at = day(1);
    cands.push(stranger);

    // Stale, and also targeting an old branch.
    let mut stale = pr("packit/packit-service", 580);
    stale.title = "Old refactor".into();
    stale.created_at = day(40);
    stale.updated_at = day(21) - 5 * HOUR;
    stale.base_branch = "stable".into();
    cands.push(stale);

    let set = decide(&cands, &cfg(), main_everywhere, NOW);
    let mut out = String::from("merge order:\n");
    for u in &set.units {
        out.push_str(&format!("  unit {}\n", u.id));
        for m in &u.members {
            let e = set
                .included
                .iter()
                .find(|e| &e.pr == m)
                .unwrap_or_else(|| panic!("{m} missing"));
            out.push_str(&format!("    {} {:?} by {}\n", e.pr, e.title, e.author));
            for r in &e.reasons {
                out.push_str(&format!("      - {r}\n"));
            }
        }
    }
    out.push_str("left out:\n");
    for l in &set.left_out {
        out.push_str(&format!("  {}\n", l.pr));
        for r in &l.reasons {
            out.push_str(&format!("    - {r}\n"));
        }
    }
    insta::assert_snapshot!(out);
}

// --- properties --------------------------------------------------------

const REPOS: [&str; 3] = ["acme/api", "acme/web", "infra/deploy"];

fn arb_candidate() -> impl Strategy<Value = Candidate> {
    (
        (0..REPOS.len(), 1u64..6, any::<bool>(), 0u8..10),
        (
            0i64..20,
            0i64..20,
            prop::collection::vec((0..REPOS.len(), 1u64..7), 0..3),
        ),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |((r, n, draft, trust), (created, updated, deps), (skip, approved, wrong, excl))| {
                let mut c = pr(REPOS[r], n);
                c.draft = draft && trust % 3 == 0;
                c.author = if trust < 7 { "alice".into() } else { "eve".into() };
                c.created_at = NOW - created * DAY;
                c.updated_at = NOW - updated * DAY;
                c.labels = if skip && trust % 4 == 0 {
                    vec!["staging-skip".into()]
                } else {
                    Vec::new()
                };
                c.approved_by = approved.then(|| "bob".into());
                c.base_branch = if wrong && trust == 1 {
                    "old".into()
                } else {
                    "main".into()
                };
                c.excluded = (excl && trust == 2).then(|| "faulty".into());
                c.body = deps
                    .iter()
                    .map(|(r, n)| format!("Depends-On: https://github.com/{}/pull/{n}\n", REPOS[*r]))
                    .collect();
                c
            },
        )
}

fn arb_set() -> impl Strategy<Value = (Vec<Candidate>, Vec<Candidate>, Order)> {
    prop::collection::vec(arb_candidate(), 0..12).prop_flat_map(|v| {
        (
            Just(v.clone()),
            Just(v).prop_shuffle(),
            prop_oneof![
                Just(Order::OldestFirst),
                Just(Order::NewestFirst),
                Just(Order::ByNumber)
            ],
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_set_does_not_depend_on_the_order_of_candidates((cands, shuffled, order) in arb_set()) {
        let cfg = PendingConfig { order, ..cfg() };
        let a = decide(&cands, &cfg, main_everywhere, NOW);
        let b = decide(&shuffled, &cfg, main_everywhere, NOW);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn units_are_wholly_in_or_out_and_no_pr_appears_twice((cands, _s, order) in arb_set()) {
        let cfg = PendingConfig { order, ..cfg() };
        let set = decide(&cands, &cfg, main_everywhere, NOW);

        let mut seen = BTreeSet::new();
        for p in set.included.iter().map(|e| &e.pr).chain(set.left_out.iter().map(|l| &l.pr)) {
            prop_assert!(seen.insert(p.key()), "{p} twice");
        }
        let distinct: BTreeSet<(String, u64)> = cands.iter().map(|c| c.pr().key()).collect();
        prop_assert_eq!(seen, distinct, "every candidate is decided");

        let in_units: BTreeSet<&str> = set.included.iter().map(|e| e.unit.as_str()).collect();
        let out_units: BTreeSet<&str> = set.left_out.iter().map(|l| l.unit.as_str()).collect();
        prop_assert!(in_units.is_disjoint(&out_units), "split units: {:?}", in_units.intersection(&out_units));

        // `included` is the units' members in turn, and every left-out PR says why.
        let flat: Vec<&PrRef> = set.units.iter().flat_map(|u| &u.members).collect();
        let inc: Vec<&PrRef> = set.included.iter().map(|e| &e.pr).collect();
        prop_assert_eq!(flat, inc);
        prop_assert!(set.left_out.iter().all(|l| !l.reasons.is_empty()));

        // Within a unit, a dependency comes before its dependents (cycles aside).
        for u in &set.units {
            for (i, m) in u.members.iter().enumerate() {
                for d in depends_on(&body_of(&cands, m)) {
                    if let Some(j) = u.members.iter().position(|x| x.key() == d.key()) {
                        let back = u.members.iter().position(|x| x.key() == m.key()).unwrap_or(i);
                        let cyclic = depends_on_chain(&cands, &d, m);
                        prop_assert!(j < back || cyclic, "{d} after {m} in {:?}", u.members);
                    }
                }
            }
        }
    }
}

/// Whether `from` reaches `to` over Depends-On edges among `cands`.
fn depends_on_chain(cands: &[Candidate], from: &PrRef, to: &PrRef) -> bool {
    let mut todo = vec![from.key()];
    let mut seen = BTreeSet::new();
    while let Some(k) = todo.pop() {
        if k == to.key() {
            return true;
        }
        if !seen.insert(k.clone()) {
            continue;
        }
        let pr = PrRef::new(k.0, k.1);
        todo.extend(depends_on(&body_of(cands, &pr)).into_iter().map(|d| d.key()));
    }
    false
}

/// The body of the candidate `decide` keeps for `pr`: the last updated of its duplicates.
fn body_of(cands: &[Candidate], pr: &PrRef) -> String {
    cands
        .iter()
        .filter(|c| c.pr().key() == pr.key())
        .max_by(|a, b| (a.updated_at, a).cmp(&(b.updated_at, b)))
        .map(|c| c.body.clone())
        .unwrap_or_default()
}
