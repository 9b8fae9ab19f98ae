//! Impact analysis: one test per rule, a snapshot of the reasons of a
//! realistic multi-repository case, and property tests of the fail-safe.

use super::*;
use proptest::prelude::*;

const PARTIAL: CycleKind = CycleKind::Partial;
const FULL: CycleKind = CycleKind::Full;

fn comp(name: &str, repo: Option<&str>, paths: &[&str]) -> ComponentSpec {
    ComponentSpec {
        name: name.into(),
        repo: repo.map(str::to_string),
        paths: paths.iter().map(|s| s.to_string()).collect(),
    }
}

fn suite(name: &str, tier: &str, cycles: &[CycleKind], paths: &[&str], components: &[&str]) -> SuiteSpec {
    SuiteSpec {
        name: name.into(),
        tier: tier.into(),
        cycles: cycles.to_vec(),
        repo: None,
        paths: paths.iter().map(|s| s.to_string()).collect(),
        components: components.iter().map(|s| s.to_string()).collect(),
    }
}

fn changes(files: &[(&str, &str, &[&str])]) -> Changes {
    let mut c = Changes::default();
    for (repo, path, by) in files {
        c.files
            .entry(repo.to_string())
            .or_default()
            .push(ChangedFile::new(*path, by));
    }
    c
}

fn run(components: &[ComponentSpec], suites: &[SuiteSpec], ch: &Changes, cycle: CycleKind) -> Impact {
    analyze(components, suites, ch, cycle).unwrap_or_else(|e| panic!("{e}"))
}

/// The shop monorepo (three components sharing `lib/`), its gateway in a
/// second repository, and an image-only database.
fn shop() -> Vec<ComponentSpec> {
    vec![
        comp(
            "api",
            Some("acme/shop"),
            &["services/api/**", "lib/**", "proto/*.proto"],
        ),
        comp("worker", Some("acme/shop"), &["services/worker/**", "lib/**"]),
        comp("web", Some("acme/shop"), &["web/"]),
        comp("gateway", Some("acme/gateway"), &[]),
        comp("db", None, &[]),
    ]
}

fn shop_suites() -> Vec<SuiteSpec> {
    let mut ui = suite("web-ui", "merge-gate", &[PARTIAL, FULL], &["web/**", "e2e/ui/**"], &[]);
    ui.repo = Some("acme/shop".into());
    vec![
        suite("smoke", "smoke", &[PARTIAL, FULL], &[], &[]),
        suite(
            "api-e2e",
            "merge-gate",
            &[PARTIAL, FULL],
            &["e2e/api/**"],
            &["api", "gateway"],
        ),
        ui,
        suite(
            "worker-jobs",
            "merge-gate",
            &[PARTIAL, FULL],
            &["e2e/jobs/**"],
            &["worker"],
        ),
        suite("regression", "non-blocking", &[FULL], &[], &[]),
        suite("docs-lint", "non-blocking", &[PARTIAL], &["docs/**"], &[]),
    ]
}

fn render(title: &str, i: &Impact) -> String {
    let mut out = format!("== {title}\n");
    for s in &i.rebuild {
        out.push_str(&format!("rebuild {}:\n", s.name));
        for r in &s.reasons {
            out.push_str(&format!("    {r}\n"));
        }
    }
    for s in &i.skip_rebuild {
        out.push_str(&format!("keep    {}: {}\n", s.name, s.reason));
    }
    for s in &i.suites {
        out.push_str(&format!("run     {}:\n", s.name));
        for r in &s.reasons {
            out.push_str(&format!("    {r}\n"));
        }
    }
    for s in &i.skipped_suites {
        out.push_str(&format!("skip    {}: {}\n", s.name, s.reason));
    }
    out
}

#[test]
fn reasons_of_a_monorepo_with_shared_lib() {
    let (cs, ss) = (shop(), shop_suites());
    let mut out = String::new();

    // A PR to the shared library and one to the worker.
    let ch = changes(&[
        ("acme/shop", "lib/money/round.rs", &["acme/shop#12"]),
        ("acme/shop", "services/worker/jobs/invoice.rs", &["acme/shop#15"]),
        ("acme/shop", "lib/money/mod.rs", &["acme/shop#12", "acme/shop#15"]),
    ]);
    out.push_str(&render("partial: shared lib and worker", &run(&cs, &ss, &ch, PARTIAL)));

    // A file nobody owns, a web change, a gateway PR and a moved image tag.
    let mut ch = changes(&[
        ("acme/shop", "web/src/cart.tsx", &["acme/shop#21"]),
        ("acme/shop", "Makefile", &["acme/shop#22"]),
        ("acme/gateway", "conf/routes.yaml", &["acme/gateway#3"]),
        ("acme/gateway", "src/main.go", &["acme/gateway#3"]),
    ]);
    ch.versions
        .insert("db".into(), "image tag stg moved to sha256:9f2c01".into());
    out.push_str(&render(
        "partial: unowned Makefile, gateway, db image",
        &run(&cs, &ss, &ch, PARTIAL),
    ));

    // Only docs: nothing rebuilt, but the full cycle still runs every full-cycle suite.
    let ch = changes(&[("acme/shop", "docs/deploy.md", &["acme/shop#30"])]);
    let mut cs_docs = cs.clone();
    cs_docs.push(comp("docs", Some("acme/shop"), &["docs/**", "*.md"]));
    out.push_str(&render("partial: docs only", &run(&cs_docs, &ss, &ch, PARTIAL)));
    out.push_str(&render("full: docs only", &run(&cs_docs, &ss, &ch, FULL)));

    insta::assert_snapshot!(out);
}

#[test]
fn a_matching_path_rebuilds_and_names_the_file_and_pr() {
    let i = run(
        &shop(),
        &[],
        &changes(&[("acme/shop", "web/a.css", &["acme/shop#4"])]),
        PARTIAL,
    );
    assert_eq!(i.rebuilt_names(), ["web"]);
    assert_eq!(i.rebuild[0].reasons, ["paths match: web/a.css (acme/shop#4)"]);
    let skipped: Vec<(&str, &str)> = i
        .skip_rebuild
        .iter()
        .map(|s| (s.name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "api",
                "the one changed file in acme/shop does not match its paths (services/api/**, lib/**, proto/*.proto)"
            ),
            (
                "worker",
                "the one changed file in acme/shop does not match its paths (services/worker/**, lib/**)"
            ),
            ("gateway", "no changed files in acme/gateway"),
            ("db", "image-only component and its version did not change"),
        ]
    );
}

#[test]
fn many_matching_files_are_counted_and_the_first_named() {
    let ch = changes(&[
        ("acme/shop", "web/b.css", &["acme/shop#12"]),
        ("acme/shop", "web/a.css", &["acme/shop#12", "acme/shop#9"]),
        ("acme/shop", "web/c.css", &[]),
    ]);
    let i = run(&shop(), &[], &ch, PARTIAL);
    assert_eq!(
        i.rebuild[0].reasons,
        ["paths match: 3 files, first: web/a.css (acme/shop#9, acme/shop#12)"]
    );
}

#[test]
fn duplicate_files_are_merged() {
    let ch = changes(&[
        ("acme/shop", "web/a.css", &["acme/shop#12"]),
        ("acme/shop", "web/a.css", &["acme/shop#13"]),
    ]);
    let i = run(&shop(), &[], &ch, PARTIAL);
    assert_eq!(
        i.rebuild[0].reasons,
        ["paths match: web/a.css (acme/shop#12, acme/shop#13)"]
    );
}

#[test]
fn a_component_without_paths_owns_its_whole_repository() {
    let i = run(
        &shop(),
        &[],
        &changes(&[("acme/gateway", "x/y/z", &["acme/gateway#1"])]),
        PARTIAL,
    );
    assert_eq!(i.rebuilt_names(), ["gateway"]);
    assert_eq!(
        i.rebuild[0].reasons,
        ["owns the whole repository (no paths): x/y/z (acme/gateway#1)"]
    );
}

#[test]
fn an_unclaimed_file_rebuilds_every_component_of_its_repository() {
    let i = run(
        &shop(),
        &[],
        &changes(&[("acme/shop", "src/unowned.txt", &[])]),
        PARTIAL,
    );
    assert_eq!(i.rebuilt_names(), ["api", "worker", "web"]);
    for s in &i.rebuild {
        assert_eq!(
            s.reasons,
            ["src/unowned.txt is claimed by no component: rebuilding every component of acme/shop"]
        );
    }
    let two = changes(&[
        ("acme/shop", "b.txt", &["acme/shop#2"]),
        ("acme/shop", "a.txt", &["acme/shop#1"]),
    ]);
    let i = run(&shop(), &[], &two, PARTIAL);
    assert_eq!(
        i.rebuild[0].reasons,
        ["2 files, first: a.txt (acme/shop#1), are claimed by no component: rebuilding every component of acme/shop"]
    );
}

#[test]
fn a_version_change_without_files_redeploys() {
    let mut ch = Changes::default();
    ch.versions.insert("db".into(), "image tag stg moved".into());
    ch.versions.insert("api".into(), "base moved to 1a2b3c4".into());
    let i = run(&shop(), &[], &ch, PARTIAL);
    assert_eq!(i.rebuilt_names(), ["api", "db"]);
    assert_eq!(i.rebuild[0].reasons, ["version changed: base moved to 1a2b3c4"]);
    assert_eq!(i.rebuild[1].reasons, ["version changed: image tag stg moved"]);
}

#[test]
fn globs_are_anchored_star_stays_in_one_directory_and_directories_own_their_contents() {
    let c = |paths: &[&str]| vec![comp("c", Some("r"), paths), comp("rest", Some("r"), &[])];
    let hit = |paths: &[&str], file: &str| -> bool {
        let i = run(&c(paths), &[], &changes(&[("r", file, &[])]), PARTIAL);
        i.rebuilt_names().contains(&"c")
    };
    assert!(hit(&["*.md"], "README.md"));
    assert!(!hit(&["*.md"], "docs/a.md"), "`*` must not cross `/`");
    assert!(hit(&["**/*.md"], "docs/a.md"));
    assert!(hit(&["lib"], "lib/a/b.rs"));
    assert!(hit(&["lib/"], "lib/a/b.rs"));
    assert!(hit(&["/lib/**"], "lib/a/b.rs"));
    assert!(
        !hit(&["lib"], "src/lib/a.rs"),
        "globs are anchored at the repository root"
    );
    assert!(!hit(&["lib"], "library.rs"));
    assert!(hit(&["services/*/Dockerfile"], "services/api/Dockerfile"));
    assert!(hit(&["proto/{a,b}.proto"], "proto/b.proto"));
}

#[test]
fn suites_outside_the_cycle_kind_are_skipped_with_the_kind_they_run_in() {
    let ss = vec![
        suite("nightly", "full", &[FULL], &[], &[]),
        suite("quick", "smoke", &[PARTIAL], &[], &[]),
        suite("off", "smoke", &[], &[], &[]),
    ];
    let i = run(&shop(), &ss, &Changes::default(), PARTIAL);
    assert_eq!(i.suite_names(), ["quick"]);
    assert_eq!(
        i.skipped_suites,
        [
            Skipped {
                name: "nightly".into(),
                reason: "runs in full cycles only".into()
            },
            Skipped {
                name: "off".into(),
                reason: "runs in no cycle (its `cycles` is empty)".into()
            },
        ]
    );
    let i = run(&shop(), &ss, &Changes::default(), FULL);
    assert_eq!(i.suite_names(), ["nightly"]);
    assert_eq!(
        i.suites[0].reasons,
        ["full cycle runs every full suite regardless of paths"]
    );
    assert_eq!(i.skipped_suites[0].reason, "runs in partial cycles only");
}

#[test]
fn a_full_cycle_runs_its_suites_even_when_nothing_matches() {
    let ss = vec![suite("ui", "merge-gate", &[PARTIAL, FULL], &["web/**"], &["web"])];
    let i = run(&shop(), &ss, &Changes::default(), FULL);
    assert_eq!(
        i.suites[0].reasons,
        ["full cycle runs every merge-gate suite regardless of paths"]
    );
}

#[test]
fn a_suite_without_paths_is_relevant_to_every_change() {
    let ss = vec![suite("smoke", "smoke", &[PARTIAL], &[], &[])];
    let i = run(&shop(), &ss, &Changes::default(), PARTIAL);
    assert_eq!(i.suites[0].reasons, ["declares no paths: relevant to every change"]);
}

#[test]
fn a_suite_runs_when_its_paths_match_or_a_component_it_exercises_is_redeployed() {
    let ss = vec![
        suite("api-e2e", "merge-gate", &[PARTIAL], &["e2e/api/**"], &["api", "worker"]),
        suite("ui", "merge-gate", &[PARTIAL], &["e2e/ui/**"], &["web", "gateway"]),
        suite(
            "jobs",
            "merge-gate",
            &[PARTIAL],
            &["e2e/jobs/**"],
            &["worker", "web", "gateway"],
        ),
    ];
    let ch = changes(&[
        ("acme/shop", "lib/x.rs", &["acme/shop#1"]),
        ("acme/shop", "e2e/api/orders.py", &["acme/shop#1"]),
    ]);
    let mut cs = shop();
    cs.push(comp("e2e", Some("acme/shop"), &["e2e/"]));
    let i = run(&cs, &ss, &ch, PARTIAL);
    assert_eq!(i.suite_names(), ["api-e2e", "jobs"]);
    assert_eq!(
        i.suites[0].reasons,
        [
            "paths match: e2e/api/orders.py (acme/shop#1)",
            "exercises api and worker, which are redeployed"
        ]
    );
    assert_eq!(i.suites[1].reasons, ["exercises worker, which is redeployed"]);
    assert_eq!(
        i.skipped_suites[0].reason,
        "partial cycle: none of its paths (e2e/ui/**) match a changed file and neither web nor gateway is redeployed"
    );
}

#[test]
fn a_suite_scoped_to_a_repository_ignores_other_repositories() {
    let mut s = suite("ui", "merge-gate", &[PARTIAL], &["web/**"], &[]);
    s.repo = Some("acme/shop".into());
    let mut t = suite("api", "merge-gate", &[PARTIAL], &["src/**"], &["api"]);
    t.repo = Some("acme/tests".into());
    let ch = changes(&[("acme/gateway", "web/x.js", &["acme/gateway#2"])]);
    let i = run(&shop(), &[s.clone(), t], &ch, PARTIAL);
    assert!(i.suites.is_empty());
    assert_eq!(
        i.skipped_suites[0].reason,
        "partial cycle: none of its paths (web/**) match a changed file in acme/shop"
    );
    assert_eq!(
        i.skipped_suites[1].reason,
        "partial cycle: none of its paths (src/**) match a changed file in acme/tests and api is not redeployed"
    );
    s.repo = None;
    let i = run(&shop(), &[s], &ch, PARTIAL);
    assert_eq!(i.suites[0].reasons, ["paths match: web/x.js (acme/gateway#2)"]);
}

#[test]
fn long_path_lists_are_abbreviated_in_reasons() {
    let cs = vec![
        comp("a", Some("r"), &["a/**", "b/**", "c/**", "d/**", "e/**"]),
        comp("z", Some("r"), &["z/**"]),
    ];
    let i = run(&cs, &[], &changes(&[("r", "z/1", &[])]), PARTIAL);
    assert_eq!(
        i.skip_rebuild[0].reason,
        "the one changed file in r does not match its paths (a/**, b/**, c/** and 2 more)"
    );
}

#[test]
fn invalid_globs_and_unknown_components_are_typed_errors() {
    let bad = analyze(
        &[comp("api", Some("r"), &["src/**", "src/[a"])],
        &[],
        &Changes::default(),
        PARTIAL,
    );
    let Err(e) = bad else { panic!("accepted") };
    let ImpactError::BadGlob { owner, glob, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!((owner, glob.as_str()), (&GlobOwner::Component("api".into()), "src/[a"));
    assert_eq!(
        e.to_string(),
        "component `api`: `src/[a` in `paths` is not a valid glob (unclosed character class; missing ']'); \
         fix or remove it"
    );

    let bad = analyze(
        &shop(),
        &[suite("ui", "t", &[PARTIAL], &["{a"], &[])],
        &Changes::default(),
        PARTIAL,
    );
    let Err(e) = bad else { panic!("accepted") };
    assert!(
        e.to_string()
            .starts_with("suite `ui`: `{a` in `paths` is not a valid glob"),
        "{e}"
    );

    let bad = analyze(
        &shop(),
        &[suite("ui", "t", &[PARTIAL], &[], &["frontend"])],
        &Changes::default(),
        PARTIAL,
    );
    assert_eq!(
        bad,
        Err(ImpactError::UnknownComponent {
            suite: "ui".into(),
            component: "frontend".into()
        })
    );
    assert_eq!(
        bad.err().map(|e| e.to_string()).unwrap_or_default(),
        "suite `ui` exercises component `frontend`, which is not configured; fix its `components`"
    );
}

#[test]
fn changed_components_is_the_rebuild_list() {
    let ch = changes(&[("acme/shop", "lib/a.rs", &[]), ("acme/gateway", "main.go", &[])]);
    assert_eq!(
        changed_components(&shop(), &ch),
        Ok(vec!["api".to_string(), "worker".to_string(), "gateway".to_string()])
    );
}

// --- properties --------------------------------------------------------

const REPOS: [&str; 2] = ["r1", "r2"];
const GLOBS: [&str; 8] = [
    "src/**",
    "lib",
    "docs/*.md",
    "*.toml",
    "web/",
    "/api/**",
    "**/*.py",
    "src/*/mod.rs",
];
const FILES: [&str; 10] = [
    "src/a.rs",
    "src/b/mod.rs",
    "lib/x.rs",
    "docs/a.md",
    "docs/sub/b.md",
    "Cargo.toml",
    "web/index.html",
    "api/v1/x.go",
    "README.md",
    "tools/gen.py",
];

fn components() -> impl Strategy<Value = Vec<ComponentSpec>> {
    prop::collection::vec(
        (
            prop::option::weighted(0.9, 0..REPOS.len()),
            prop::collection::vec(0..GLOBS.len(), 0..3),
        ),
        1..6,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (repo, globs))| ComponentSpec {
                name: format!("c{i}"),
                repo: repo.map(|r| REPOS[r].to_string()),
                paths: globs.into_iter().map(|g| GLOBS[g].to_string()).collect(),
            })
            .collect()
    })
}

fn suites(n_components: usize) -> impl Strategy<Value = Vec<SuiteSpec>> {
    prop::collection::vec(
        (
            prop::sample::subsequence(vec![PARTIAL, FULL], 0..=2),
            prop::option::of(0..REPOS.len()),
            prop::collection::vec(0..GLOBS.len(), 0..3),
            prop::collection::vec(0..n_components, 0..3),
        ),
        0..6,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (cycles, repo, globs, comps))| SuiteSpec {
                name: format!("s{i}"),
                tier: "t".into(),
                cycles,
                repo: repo.map(|r| REPOS[r].to_string()),
                paths: globs.into_iter().map(|g| GLOBS[g].to_string()).collect(),
                components: comps.into_iter().map(|c| format!("c{c}")).collect(),
            })
            .collect()
    })
}

fn arb_changes(n_components: usize) -> impl Strategy<Value = Changes> {
    (
        prop::collection::vec((0..REPOS.len(), 0..FILES.len(), 0u64..4), 0..8),
        prop::collection::btree_map(0..n_components, "[a-z ]{1,8}", 0..2),
    )
        .prop_map(|(files, versions)| {
            let mut c = Changes::default();
            for (r, f, pr) in files {
                c.files
                    .entry(REPOS[r].to_string())
                    .or_default()
                    .push(ChangedFile::new(FILES[f], &[&format!("{}#{pr}", REPOS[r])]));
            }
            c.versions = versions.into_iter().map(|(i, why)| (format!("c{i}"), why)).collect();
            c
        })
}

fn scenario() -> impl Strategy<Value = (Vec<ComponentSpec>, Vec<SuiteSpec>, Changes, CycleKind)> {
    components().prop_flat_map(|cs| {
        let n = cs.len();
        (
            Just(cs),
            suites(n),
            arb_changes(n),
            prop_oneof![Just(PARTIAL), Just(FULL)],
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_changed_file_is_covered_by_a_rebuilt_component_of_its_repository(
        (cs, ss, ch, cycle) in scenario()
    ) {
        let rules = Rules::new(&cs, &ss).unwrap_or_else(|e| panic!("{e}"));
        let i = rules.analyze(&ch, cycle);
        let rebuilt: BTreeSet<&str> = i.rebuild.iter().map(|s| s.name.as_str()).collect();
        for (repo, files) in &ch.files {
            let own: Vec<&(ComponentSpec, Matcher)> =
                rules.components.iter().filter(|(c, _)| c.repo.as_deref() == Some(repo.as_str())).collect();
            if own.is_empty() {
                continue;
            }
            for f in files {
                let covered = own.iter().any(|(c, m)| rebuilt.contains(c.name.as_str()) && m.matches(&f.path));
                let all = own.iter().all(|(c, _)| rebuilt.contains(c.name.as_str()));
                prop_assert!(covered || all, "{repo}:{} not covered by {:?}", f.path, i.rebuild);
            }
        }
        // Each component and suite is decided exactly once, with a reason.
        prop_assert_eq!(i.rebuild.len() + i.skip_rebuild.len(), cs.len());
        prop_assert_eq!(i.suites.len() + i.skipped_suites.len(), ss.len());
        prop_assert!(i.rebuild.iter().chain(&i.suites).all(|s| !s.reasons.is_empty()));
        prop_assert!(i.skip_rebuild.iter().chain(&i.skipped_suites).all(|s| !s.reason.is_empty()));
    }

    #[test]
    fn a_full_cycle_runs_exactly_the_suites_that_run_in_full_cycles((cs, ss, ch, _c) in scenario()) {
        let i = run(&cs, &ss, &ch, FULL);
        let want: Vec<&str> = ss.iter().filter(|s| s.cycles.contains(&FULL)).map(|s| s.name.as_str()).collect();
        prop_assert_eq!(i.suite_names(), want);
    }

    #[test]
    fn partial_cycles_run_every_partial_suite_without_paths((cs, ss, ch, _c) in scenario()) {
        let i = run(&cs, &ss, &ch, PARTIAL);
        for s in ss.iter().filter(|s| s.cycles.contains(&PARTIAL) && s.paths.is_empty()) {
            prop_assert!(i.suite_names().contains(&s.name.as_str()));
        }
    }

    #[test]
    fn the_result_is_deterministic_and_ignores_the_order_of_changed_files((cs, ss, ch, cycle) in scenario()) {
        let a = run(&cs, &ss, &ch, cycle);
        prop_assert_eq!(&a, &run(&cs, &ss, &ch, cycle));
        let mut reversed = ch.clone();
        for files in reversed.files.values_mut() {
            files.reverse();
        }
        prop_assert_eq!(&a, &run(&cs, &ss, &reversed, cycle));
        // Configuration order is kept.
        let order: Vec<&str> = cs.iter().map(|c| c.name.as_str()).collect();
        let mut seen: Vec<&str> = a.rebuilt_names();
        seen.retain(|n| order.contains(n));
        let mut sorted = seen.clone();
        sorted.sort_by_key(|n| order.iter().position(|o| o == n));
        prop_assert_eq!(seen, sorted);
    }
}
