//! The verify stage: `[[suite]]`s run after a successful deploy, chosen by
//! impact analysis (issue #4 point 3; the suites' tiers are seed 000/004's).
//!
//! Which suites run: a full cycle runs every suite of the full cycles; a
//! partial cycle runs the suites whose `paths` match a changed file, that
//! have no `paths`, or that exercise a redeployed component
//! (`core::impact`). Changed files come from the mirrors: what each
//! component ran before versus what it runs now (`git diff`), and a
//! component that did not run before counts as changed. Every skipped suite
//! is recorded with its reason.
//!
//! A suite is a shell command run in the cycle's directory with the
//! environment's variables (secrets redacted from its log), the manifest
//! (`GREENROOM_MANIFEST`, `GREENROOM_MANIFEST_ID`), the cycle
//! (`GREENROOM_CYCLE`, `GREENROOM_CYCLE_KIND`) and every component's URL
//! (`GREENROOM_URL_<COMPONENT>`). It fails on a non-zero exit or its
//! timeout; `retries` runs it again, and a pass after a failure is reported
//! as flaky. A failed `blocking` suite fails the cycle; other tiers are
//! reported only.
//!
//! A `kind = "http-matrix"` suite (an API scenario matrix, seed 004) runs
//! its requests through `crate::matrix` instead of a command, with the same
//! retries, timeout and tiers; its cases (one per combination × step, the
//! full request and response of each failure) are merged like a suite's own
//! JUnit files, and its reason starts with the matrix's summary.

use crate::app::App;
use greenroom_core::config::{Environment, Suite, SuiteKind, Tier};
use greenroom_core::failure;
use greenroom_core::impact::{self, ChangedFile, Changes, ComponentSpec, SuiteSpec};
use greenroom_core::manifest::{Manifest, ManifestComponent};
use greenroom_core::policy::CycleKind;
use greenroom_driver::{CommandSpec, run_command};
use greenroom_store::Deployed;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How one suite went.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SuiteReport {
    /// Name.
    pub name: String,
    /// `blocking`, `gate`, `non-blocking`, `quarantine`.
    pub tier: String,
    /// `passed`, `failed`, `flaky` (passed after failing), `skipped`.
    pub result: String,
    /// Why it ran or was skipped; for a failure, the end of its log.
    pub reason: String,
    /// Wall time, all attempts.
    pub duration_ms: u64,
    /// Its log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// For a failure: `infra` (the suite said it could not test: exit
    /// status 75) or `code` (`core::failure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<failure::Class>,
    /// Its JUnit report (`core::junit`), with the versions tested as properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit: Option<String>,
    /// Test cases in that report, and how many failed or errored.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tests: u32,
    /// See `tests`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_tests: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the environment's suites make of a cycle.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Every suite of the environment, run or skipped, in config order.
    pub suites: Vec<SuiteReport>,
    /// The blocking failures, if any (they fail the cycle).
    pub blocking_failure: Option<String>,
}

/// The suites configured for an environment.
pub fn suites_of<'a>(app: &'a App, env: &Environment) -> Vec<&'a Suite> {
    app.config
        .suites
        .iter()
        .filter(|s| s.environments.is_empty() || s.environments.contains(&env.name))
        .collect()
}

/// Files changed per repository between what ran and what runs now, and the
/// components that changed otherwise (first deploy, image, commands).
pub async fn changes(
    app: &App,
    env: &Environment,
    before: &[Deployed],
    now: &BTreeMap<String, greenroom_core::manifest::ManifestComponent>,
) -> Changes {
    let mut out = Changes::default();
    let mirrors = greenroom_git::Mirrors::new(app.paths.mirrors());
    for name in &env.components {
        let Some(entry) = now.get(name) else { continue };
        if entry.carried {
            continue;
        }
        let prev = before.iter().find(|d| &d.component == name && d.state != "stopped");
        let Some(c) = app.config.component(name) else { continue };
        match (prev.and_then(|p| p.entry.commit.clone()), &entry.commit, &c.repo) {
            (Some(from), Some(to), Some(repo)) if &from != to => {
                let files = match mirrors.open(&crate::resolve::mirror_name(repo), repo).await {
                    Ok(m) => m.changed_files(&from, to).await.ok(),
                    Err(_) => None,
                };
                match files {
                    Some(files) => {
                        let by = entry.merged.iter().map(String::as_str).collect::<Vec<_>>();
                        let list = out.files.entry(repo.clone()).or_default();
                        for f in files {
                            if !list.iter().any(|x: &ChangedFile| x.path == f) {
                                list.push(ChangedFile::new(f, &by));
                            }
                        }
                    }
                    // Unknown what changed: fail safe, the component counts as changed.
                    None => {
                        out.versions
                            .insert(name.clone(), format!("{} -> {}", short(&from), short(to)));
                    }
                }
            }
            (Some(_), Some(_), _) if prev.is_some_and(|p| p.entry.same_content(entry)) => {}
            (None, _, _) | (_, None, _) => {
                out.versions.insert(
                    name.clone(),
                    match prev {
                        None => format!("first deploy of {}", entry.short()),
                        Some(p) => format!("{} -> {}", p.entry.short(), entry.short()),
                    },
                );
            }
            _ => {
                // Same commit, other commands or variables.
                out.versions.insert(name.clone(), "same code, other settings".into());
            }
        }
    }
    out
}

fn short(s: &str) -> String {
    s.chars().take(12).collect()
}

/// Rebuild skipping (issue #4 point 3, for components): a component that
/// declares `paths` and runs a commit of its repository keeps running it,
/// unrebuilt, when no file the new commit changes is one impact analysis
/// gives it (`core::impact`: a file no component of the repository claims
/// rebuilds them all). Its manifest entry then records the commit that
/// really runs, with the new one's origin and PRs for reports. Returns the
/// manifest to deploy and, per kept component, the reason.
pub async fn keep_unaffected(
    app: &App,
    env: &Environment,
    manifest: Manifest,
    running: &[Deployed],
) -> (Manifest, BTreeMap<String, String>) {
    let mut kept = BTreeMap::new();
    let mut components = manifest.components.clone();
    let specs: Vec<ComponentSpec> = env
        .components
        .iter()
        .filter_map(|n| app.config.component(n))
        .map(|c| ComponentSpec {
            name: c.name.clone(),
            repo: c.repo.clone(),
            paths: c.paths.clone(),
        })
        .collect();
    let mirrors = greenroom_git::Mirrors::new(app.paths.mirrors());
    // (repo, from, to) -> changed files; components of one repository share them.
    let mut diffs: BTreeMap<(String, String, String), Option<Vec<String>>> = BTreeMap::new();
    for name in &env.components {
        let (Some(c), Some(entry)) = (app.config.component(name), manifest.components.get(name)) else {
            continue;
        };
        let (Some(repo), Some(to)) = (&c.repo, &entry.commit) else {
            continue;
        };
        if c.paths.is_empty() || entry.carried {
            continue;
        }
        let Some(prev) = running.iter().find(|d| &d.component == name && d.state == "running") else {
            continue;
        };
        let Some(from) = prev.entry.commit.clone().filter(|f| f != to) else {
            continue;
        };
        // Only the commit may differ: other commands or variables redeploy.
        let mut same = prev.entry.clone();
        same.commit = Some(to.clone());
        if !same.same_content(entry) {
            continue;
        }
        let key = (repo.clone(), from.clone(), to.clone());
        if !diffs.contains_key(&key) {
            let files = match mirrors.open(&crate::resolve::mirror_name(repo), repo).await {
                Ok(m) => m.changed_files(&from, to).await.ok(),
                Err(_) => None,
            };
            diffs.insert(key.clone(), files);
        }
        // Unknown what changed: fail safe, it is rebuilt.
        let Some(Some(files)) = diffs.get(&key) else { continue };
        let by: Vec<&str> = entry.merged.iter().map(String::as_str).collect();
        let changes = Changes {
            files: [(
                repo.clone(),
                files.iter().map(|f| ChangedFile::new(f.clone(), &by)).collect(),
            )]
            .into(),
            versions: BTreeMap::new(),
        };
        let same_repo: Vec<ComponentSpec> = specs
            .iter()
            .filter(|s| s.repo.as_ref() == Some(repo))
            .cloned()
            .collect();
        match impact::changed_components(&same_repo, &changes) {
            Ok(changed) if !changed.contains(name) => {
                let reason = format!(
                    "not rebuilt: none of the {} file(s) changed between {} and {} is under its paths ({}); keeps running {}",
                    files.len(),
                    short(&from),
                    short(to),
                    c.paths.join(", "),
                    short(&from)
                );
                components.insert(
                    name.clone(),
                    ManifestComponent {
                        origin: entry.origin.clone(),
                        pr: entry.pr,
                        merged: entry.merged.clone(),
                        ..prev.entry.clone()
                    },
                );
                kept.insert(name.clone(), reason);
            }
            _ => {}
        }
    }
    if kept.is_empty() {
        return (manifest, kept);
    }
    (Manifest::new(components), kept)
}

/// Which suites a cycle of `kind` runs (and why), and which it skips (and why).
pub fn select(app: &App, env: &Environment, changes: &Changes, kind: CycleKind) -> anyhow::Result<impact::Impact> {
    let components: Vec<ComponentSpec> = env
        .components
        .iter()
        .filter_map(|n| app.config.component(n))
        .map(|c| ComponentSpec {
            name: c.name.clone(),
            repo: c.repo.clone(),
            paths: c.paths.clone(),
        })
        .collect();
    let suites: Vec<SuiteSpec> = suites_of(app, env)
        .into_iter()
        .map(|s| SuiteSpec {
            name: s.name.clone(),
            tier: s.tier.as_str().to_string(),
            cycles: s.cycles.clone(),
            repo: None,
            paths: s.paths.clone(),
            components: s
                .components
                .iter()
                .filter(|c| env.components.contains(c))
                .cloned()
                .collect(),
        })
        .collect();
    Ok(impact::analyze(&components, &suites, changes, kind)?)
}

/// What a suite's command gets.
pub struct SuiteContext<'a> {
    /// The environment instance.
    pub instance: &'a str,
    /// The cycle.
    pub cycle: i64,
    /// Its kind.
    pub kind: CycleKind,
    /// The manifest id.
    pub manifest_id: &'a str,
    /// The manifest file handed to commands.
    pub manifest_file: &'a Path,
    /// Where suites run.
    pub dir: PathBuf,
    /// Where their logs go.
    pub logs: PathBuf,
    /// The environment's variables.
    pub vars: &'a [(String, String)],
    /// Values to redact.
    pub secrets: &'a [String],
    /// Component name -> URL.
    pub urls: BTreeMap<String, String>,
    /// Component name -> what runs (`commit <sha>`, `image <ref>`): the
    /// versions every report carries.
    pub versions: Vec<(String, String)>,
}

impl SuiteContext<'_> {
    /// The properties every JUnit suite of this cycle carries (seed 000:
    /// "clear versioning reported in tests").
    pub fn junit_properties(&self) -> Vec<(String, String)> {
        let mut p = vec![
            ("greenroom.manifest".to_string(), self.manifest_id.to_string()),
            ("greenroom.cycle".to_string(), self.cycle.to_string()),
            ("greenroom.cycle_kind".to_string(), self.kind.to_string()),
            ("greenroom.environment".to_string(), self.instance.to_string()),
        ];
        for (c, v) in &self.versions {
            p.push((format!("greenroom.version.{c}"), v.clone()));
        }
        p
    }
}

/// Where a suite may write JUnit files of its own (`GREENROOM_JUNIT_DIR`).
fn own_junit_dir(cx: &SuiteContext<'_>, suite: &Suite) -> PathBuf {
    cx.dir.join("junit-in").join(&suite.name)
}

/// Where the report of a suite goes.
pub fn junit_path(dir: &Path, suite: &str) -> PathBuf {
    dir.join("junit").join(format!("{suite}.xml"))
}

/// Writes a suite's JUnit report: the test cases the suite wrote itself
/// (every `*.xml` under its `GREENROOM_JUNIT_DIR`, merged), or one case for
/// the suite as a whole; a suite that failed without a failing case of its
/// own gets one saying why. Every suite carries the versions tested.
fn write_junit(suite: &Suite, cx: &SuiteContext<'_>, r: &mut SuiteReport, exit_detail: &str) {
    use greenroom_core::junit::{self, Outcome, TestCase, TestSuite};
    let mut cases: Vec<TestCase> = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(own_junit_dir(cx, suite)) {
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
            .collect();
        files.sort();
        for f in files {
            match std::fs::read_to_string(&f)
                .map_err(|e| e.to_string())
                .and_then(|t| junit::parse(&t).map_err(|e| e.to_string()))
            {
                Ok(suites) => cases.extend(suites.into_iter().flat_map(|s| s.cases)),
                Err(e) => unreadable.push(format!("{}: {e}", f.display())),
            }
        }
    }
    let secs = r.duration_ms as f64 / 1000.0;
    let failed = r.result == "failed";
    let own_failure = cases
        .iter()
        .any(|c| matches!(c.outcome, Outcome::Failed { .. } | Outcome::Errored { .. }));
    let first_line = r.reason.lines().next().unwrap_or("").to_string();
    if cases.is_empty() || (failed && !own_failure) {
        cases.push(TestCase {
            name: suite.name.clone(),
            classname: format!("greenroom.{}", suite.tier.as_str()),
            time: if cases.is_empty() { secs } else { 0.0 },
            outcome: match r.result.as_str() {
                "failed" => Outcome::Failed {
                    message: junit::xml_safe(&first_line),
                    text: junit::xml_safe(&format!("{exit_detail}\n{}", r.reason)),
                },
                "skipped" => Outcome::Skipped {
                    message: junit::xml_safe(&r.reason),
                },
                _ => Outcome::Passed,
            },
            system_out: None,
        });
    }
    let mut properties = cx.junit_properties();
    properties.push(("greenroom.suite.tier".into(), suite.tier.as_str().into()));
    properties.push(("greenroom.suite.result".into(), r.result.clone()));
    properties.push(("greenroom.suite.reason".into(), junit::xml_safe(&first_line)));
    for u in &unreadable {
        properties.push(("greenroom.unreadable_report".into(), junit::xml_safe(u)));
    }
    let ts = TestSuite {
        name: suite.name.clone(),
        timestamp: None,
        time: secs,
        properties,
        cases,
    };
    let path = junit_path(&cx.dir, &suite.name);
    let text = junit::render(
        &format!("{} cycle {}", cx.instance, cx.cycle),
        std::slice::from_ref(&ts),
    );
    let written = path
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| std::fs::write(&path, text));
    match written {
        Ok(_) => {
            r.junit = Some(path.display().to_string());
            r.tests = u32::try_from(ts.cases.len()).unwrap_or(u32::MAX);
            r.failed_tests = u32::try_from(ts.failures() + ts.errors()).unwrap_or(u32::MAX);
        }
        Err(e) => tracing::warn!(suite = %suite.name, "cannot write the JUnit report {}: {e}", path.display()),
    }
}

/// Writes the cycle's JUnit summary (`CYCLE_DIR/junit.xml`): every suite's
/// report, a skipped suite as one skipped case. Returns its path.
pub fn write_cycle_junit(cx: &SuiteContext<'_>, reports: &[SuiteReport]) -> Option<String> {
    use greenroom_core::junit::{self, Outcome, TestCase, TestSuite};
    let mut suites = Vec::new();
    for r in reports {
        let own = r
            .junit
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| junit::parse(&t).ok());
        match own {
            Some(s) => suites.extend(s),
            None => {
                let mut properties = cx.junit_properties();
                properties.push(("greenroom.suite.tier".into(), r.tier.clone()));
                properties.push(("greenroom.suite.result".into(), r.result.clone()));
                suites.push(TestSuite {
                    name: r.name.clone(),
                    timestamp: None,
                    time: 0.0,
                    properties,
                    cases: vec![TestCase {
                        name: r.name.clone(),
                        classname: format!("greenroom.{}", r.tier),
                        time: 0.0,
                        outcome: Outcome::Skipped {
                            message: junit::xml_safe(&r.reason),
                        },
                        system_out: None,
                    }],
                });
            }
        }
    }
    let path = cx.dir.join("junit.xml");
    let text = junit::render(&format!("{} cycle {}", cx.instance, cx.cycle), &suites);
    match std::fs::create_dir_all(&cx.dir).and_then(|_| std::fs::write(&path, text)) {
        Ok(()) => Some(path.display().to_string()),
        Err(e) => {
            tracing::warn!("cannot write {}: {e}", path.display());
            None
        }
    }
}

fn url_var(component: &str) -> String {
    let mut s = String::from("GREENROOM_URL_");
    for c in component.chars() {
        s.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    s
}

/// Runs one suite (with its retries).
pub async fn run_suite(suite: &Suite, cx: &SuiteContext<'_>, reason: &str) -> SuiteReport {
    let t = Instant::now();
    let log = cx.logs.join(&suite.name).join(format!("cycle-{}.log", cx.cycle));
    let mut env: Vec<(String, String)> = cx.vars.to_vec();
    env.extend([
        ("GREENROOM_ENV".to_string(), cx.instance.to_string()),
        ("GREENROOM_CYCLE".to_string(), cx.cycle.to_string()),
        ("GREENROOM_CYCLE_KIND".to_string(), cx.kind.to_string()),
        ("GREENROOM_SUITE".to_string(), suite.name.clone()),
        ("GREENROOM_MANIFEST".to_string(), cx.manifest_file.display().to_string()),
        ("GREENROOM_MANIFEST_ID".to_string(), cx.manifest_id.to_string()),
    ]);
    for (c, u) in &cx.urls {
        env.push((url_var(c), u.clone()));
    }
    let own = own_junit_dir(cx, suite);
    env.push(("GREENROOM_JUNIT_DIR".to_string(), own.display().to_string()));
    if let SuiteKind::HttpMatrix(matrix) = &suite.kind {
        return run_matrix(suite, matrix, cx, reason, env, &own, &log, t).await;
    }
    let spec = CommandSpec {
        command: suite.run.clone(),
        cwd: cx.dir.clone(),
        env,
        secret_values: cx.secrets.to_vec(),
        log_path: log.clone(),
        timeout: suite.timeout,
    };
    let mut failures = 0u32;
    let mut last_error = String::new();
    let mut observed = failure::Observed::CouldNotRun;
    for _attempt in 0..=suite.retries {
        // Each attempt starts with an empty report directory: the last one's reports count.
        let _ = std::fs::remove_dir_all(&own);
        if let Err(e) = std::fs::create_dir_all(&own) {
            tracing::warn!(suite = %suite.name, "cannot create {}: {e}", own.display());
        }
        match run_command(&spec).await {
            Ok(o) if o.success => {
                let result = if failures == 0 { "passed" } else { "flaky" };
                let reason = if failures == 0 {
                    reason.to_string()
                } else {
                    format!("{reason}; passed after failing {failures} time(s): flaky")
                };
                let mut r = report(suite, result, reason, t, &log);
                write_junit(suite, cx, &mut r, "");
                return r;
            }
            Ok(o) => {
                failures += 1;
                observed = failure::Observed::Suite(failure::Exit {
                    code: o.code,
                    timed_out: o.timed_out,
                });
                last_error = if o.timed_out {
                    format!("timed out after {}", humantime::format_duration(suite.timeout))
                } else {
                    format!(
                        "exited with status {}",
                        o.code.map(|c| c.to_string()).unwrap_or_else(|| "?".into())
                    )
                };
            }
            Err(e) => {
                failures += 1;
                observed = failure::Observed::CouldNotRun;
                last_error = format!("could not run: {e}");
            }
        }
    }
    let tail = greenroom_driver::log_tail(&log, 5).unwrap_or_default();
    // Why it failed first (people read the first line), then why it ran.
    let detail = if tail.trim().is_empty() {
        format!("{last_error} (it ran because {reason})")
    } else {
        format!("{last_error} (it ran because {reason}); last lines:\n{tail}")
    };
    let (class, why) = failure::classify(&observed);
    let detail = match class {
        failure::Class::Infra => format!("{detail}\n(an infrastructure error: {why})"),
        failure::Class::Code => detail,
    };
    let mut r = SuiteReport {
        class: Some(class),
        ..report(suite, "failed", detail, t, &log)
    };
    write_junit(suite, cx, &mut r, &last_error);
    r
}

/// Runs an API scenario matrix (`kind = "http-matrix"`, `crate::matrix`)
/// with the same retries, timeout and tiers as a command suite. Its cases
/// (one per combination × step) go to the suite's `GREENROOM_JUNIT_DIR`,
/// which [`write_junit`] merges; the reason starts with the run's summary.
#[allow(clippy::too_many_arguments)]
async fn run_matrix(
    suite: &Suite,
    matrix: &greenroom_core::matrix::Matrix,
    cx: &SuiteContext<'_>,
    reason: &str,
    env: Vec<(String, String)>,
    own: &Path,
    log: &Path,
    t: Instant,
) -> SuiteReport {
    use std::io::Write as _;
    let note = |line: &str| {
        let _ = log.parent().map(std::fs::create_dir_all);
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{line}");
        }
    };
    let mut failures = 0u32;
    let mut last_error;
    let mut observed;
    match crate::matrix::base_url(matrix, &cx.urls) {
        Err(e) => {
            note(&e);
            last_error = format!("could not run: {e}");
            observed = failure::Observed::CouldNotRun;
        }
        Ok(base) => {
            let fixtures = crate::matrix::Fixtures {
                cwd: cx.dir.clone(),
                env,
                secrets: cx.secrets.to_vec(),
                log: log.to_path_buf(),
                timeout: suite.timeout,
            };
            last_error = String::new();
            observed = failure::Observed::CouldNotRun;
            for attempt in 0..=suite.retries {
                // Each attempt starts with an empty report directory: the last one's reports count.
                let _ = std::fs::remove_dir_all(own);
                let started = Instant::now();
                note(&format!(
                    "== attempt {}: {} combination(s) x {} step(s) against {base}",
                    attempt + 1,
                    greenroom_core::matrix::count(&matrix.axes),
                    matrix.setup.len() + matrix.steps.len()
                ));
                let run =
                    tokio::time::timeout(suite.timeout, crate::matrix::run(suite, matrix, &base, &fixtures)).await;
                match run {
                    Ok(Ok(run)) => {
                        let secs = started.elapsed().as_secs_f64();
                        note(&format!("{} ({} requests in {secs:.2}s)", run.summary, run.requests));
                        if let Err(e) = crate::matrix::write_junit(own, &suite.name, &run, secs) {
                            tracing::warn!(suite = %suite.name, "cannot write the matrix report into {}: {e}", own.display());
                        }
                        if run.passed() {
                            let result = if failures == 0 { "passed" } else { "flaky" };
                            let reason = if failures == 0 {
                                format!("{}; {reason}", run.summary)
                            } else {
                                format!(
                                    "{}; {reason}; passed after failing {failures} time(s): flaky",
                                    run.summary
                                )
                            };
                            let mut r = report(suite, result, reason, t, log);
                            write_junit(suite, cx, &mut r, "");
                            return r;
                        }
                        failures += 1;
                        last_error = run.summary;
                        observed = failure::Observed::Suite(failure::Exit {
                            code: Some(1),
                            timed_out: false,
                        });
                    }
                    Ok(Err(e)) => {
                        failures += 1;
                        last_error = format!("could not run: {e:#}");
                        note(&last_error);
                        observed = failure::Observed::CouldNotRun;
                    }
                    Err(_) => {
                        failures += 1;
                        last_error = format!("timed out after {}", humantime::format_duration(suite.timeout));
                        note(&last_error);
                        observed = failure::Observed::Suite(failure::Exit {
                            code: None,
                            timed_out: true,
                        });
                    }
                }
            }
        }
    }
    let detail = format!("{last_error} (it ran because {reason})");
    let (class, why) = failure::classify(&observed);
    let detail = match class {
        failure::Class::Infra => format!("{detail}\n(an infrastructure error: {why})"),
        failure::Class::Code => detail,
    };
    let mut r = SuiteReport {
        class: Some(class),
        ..report(suite, "failed", detail, t, log)
    };
    write_junit(suite, cx, &mut r, &last_error);
    r
}

fn report(suite: &Suite, result: &str, reason: String, t: Instant, log: &Path) -> SuiteReport {
    SuiteReport {
        name: suite.name.clone(),
        tier: suite.tier.as_str().to_string(),
        result: result.to_string(),
        reason,
        duration_ms: u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX),
        log: Some(log.display().to_string()),
        class: None,
        junit: None,
        tests: 0,
        failed_tests: 0,
    }
}

/// The message a blocking failure gives the cycle.
pub fn blocking_failure(reports: &[SuiteReport], suites: &[&Suite]) -> Option<String> {
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| r.result == "failed")
        .filter(|r| suites.iter().any(|s| s.name == r.name && s.tier == Tier::Blocking))
        .map(|r| format!("blocking suite `{}` failed: {}", r.name, r.reason))
        .collect();
    (!failed.is_empty()).then(|| failed.join("\n"))
}
