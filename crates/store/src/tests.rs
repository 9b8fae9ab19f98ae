//! The store against real databases: every test runs twice, on a SQLite
//! file (`…::sqlite`) and on a PostgreSQL server (`…::postgres`, started by
//! [`pg`]; PostgreSQL must be installed, or those tests fail).

use super::*;
use greenroom_core::manifest::ManifestComponent;
use std::collections::BTreeMap;

mod pg;

/// The backend a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Db {
    Sqlite,
    Postgres,
}

/// A fresh, empty database: its URL, and what keeps it.
struct Fresh {
    url: String,
    /// The SQLite file's directory (removed on drop).
    dir: Option<tempfile::TempDir>,
}

async fn fresh(db: Db) -> Fresh {
    match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("state.db").display());
            Fresh { url, dir: Some(dir) }
        }
        Db::Postgres => Fresh {
            url: pg::database().await,
            dir: None,
        },
    }
}

/// A store on a fresh database: SQLite through [`Store::open`] (what the
/// binary calls), PostgreSQL through [`Store::connect`].
async fn store(db: Db) -> (Fresh, Store) {
    let f = fresh(db).await;
    let s = match &f.dir {
        Some(dir) => Store::open(&dir.path().join("state.db")).await.expect("open"),
        None => Store::connect(&f.url).await.expect("connect"),
    };
    let want = match db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
    };
    assert_eq!(s.backend(), want);
    (f, s)
}

/// For each test function `name(db: Db)`, a module `name` with two tests,
/// `name::sqlite` and `name::postgres`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::Db::Sqlite).await
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name(super::Db::Postgres).await
                }
            }
        )*
    };
}

on_both!(
    ephemeral_environments_take_a_slot_each,
    overrides_hold_until_their_time,
    stage_approvals_are_recorded_once,
    faulty_manifests_and_the_audit_trail,
    lease_compare_and_swap,
    concurrent_acquisitions_from_separate_connections_have_one_winner,
    manifests_are_immutable_and_found_by_prefix,
    cycles_stages_components_and_deployed,
    queue_is_fifo_and_ports_are_unique,
    deliveries_are_stored_once_and_decisions_and_policy_state_round_trip,
    pauses_record_the_last_pause_or_resume,
    a_cancel_is_recorded_once_and_only_on_running_cycles,
    retention_removes_old_cycles_but_keeps_the_newest_and_what_runs,
    pull_request_states_commands_and_comment_bodies,
    dashboard_sessions_end_and_are_bounded,
);

fn me() -> HolderProcess {
    HolderProcess {
        host: "h".into(),
        pid: 1,
        start_time: 2,
    }
}

fn req<'a>(holder: &'a str, p: Option<&'a HolderProcess>) -> LeaseRequest<'a> {
    LeaseRequest {
        holder,
        reason: "testing",
        since: 10,
        expires: 1000,
        process: p,
    }
}

async fn lease_compare_and_swap(db: Db) {
    let (_d, s) = store(db).await;
    assert_eq!(s.lease("staging").await.expect("read"), (None, None));
    let p = me();
    let l = s
        .try_acquire("staging", None, &req("alice", Some(&p)))
        .await
        .expect("acquire")
        .expect("won");
    assert_eq!(l.token, 1);
    assert_eq!(l.process, Some(p.clone()));
    // A second acquisition that saw "no row" loses.
    assert!(
        s.try_acquire("staging", None, &req("bob", None))
            .await
            .expect("acquire")
            .is_none()
    );
    // Taking over with the current token works and bumps the token.
    let l2 = s
        .try_acquire("staging", Some(1), &req("bob", None))
        .await
        .expect("acquire")
        .expect("won");
    assert_eq!((l2.holder.as_str(), l2.token), ("bob", 2));
    // The old token is fenced off.
    assert!(!s.holds("staging", 1).await.expect("holds"));
    assert!(s.holds("staging", 2).await.expect("holds"));
    assert!(!s.release("staging", 1).await.expect("release"));
    assert!(s.update_lease("staging", 2, 5000, None).await.expect("update"));
    assert_eq!(s.lease("staging").await.expect("read").0.expect("held").expires, 5000);
    assert!(s.release("staging", 2).await.expect("release"));
    let (lease, token) = s.lease("staging").await.expect("read");
    assert_eq!((lease, token), (None, Some(2)));
    // Tokens keep growing after a release.
    let l3 = s
        .try_acquire("staging", Some(2), &req("carol", None))
        .await
        .expect("acquire")
        .expect("won");
    assert_eq!(l3.token, 3);
    assert_eq!(s.leases().await.expect("list").len(), 1);
}

async fn concurrent_acquisitions_from_separate_connections_have_one_winner(db: Db) {
    let f = fresh(db).await;
    // PostgreSQL serializes concurrent migrations (the contenders migrate
    // the fresh database at once); a new SQLite file is migrated first.
    let first = match db {
        Db::Sqlite => Some(Store::connect(&f.url).await.expect("connect")),
        Db::Postgres => None,
    };
    // Each contender has its own store (pool, connections); all connect
    // before any tries, so that the attempts race.
    let contenders = 8;
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(contenders));
    let race = |seen: Option<i64>| {
        let mut handles = Vec::new();
        for i in 0..contenders {
            let url = f.url.clone();
            let ready = ready.clone();
            handles.push(tokio::spawn(async move {
                let s = Store::connect(&url).await.expect("connect");
                let holder = format!("h{i}");
                ready.wait().await;
                let r = s
                    .try_acquire("staging", seen, &req(&holder, None))
                    .await
                    .expect("acquire");
                s.close().await;
                r
            }));
        }
        handles
    };
    let mut winners = Vec::new();
    for h in race(None) {
        winners.extend(h.await.expect("join"));
    }
    assert_eq!(winners.len(), 1, "first acquisitions: {winners:?}");
    let first = match first {
        Some(s) => s,
        None => Store::connect(&f.url).await.expect("connect"),
    };
    let (lease, token) = first.lease("staging").await.expect("read");
    assert_eq!(lease.as_ref(), winners.first());
    assert_eq!(token, Some(1));
    // Takeovers that all saw token 1: one wins, with token 2.
    let mut takers = Vec::new();
    for h in race(Some(1)) {
        takers.extend(h.await.expect("join"));
    }
    assert_eq!(takers.len(), 1, "takeovers: {takers:?}");
    assert_eq!(takers[0].token, 2);
    assert_eq!(first.lease("staging").await.expect("read").0.as_ref(), takers.first());
}

async fn manifests_are_immutable_and_found_by_prefix(db: Db) {
    let (_d, s) = store(db).await;
    let c = ManifestComponent {
        origin: "pr:1".into(),
        commit: Some("a".repeat(40)),
        ..Default::default()
    };
    let m = Manifest::new(BTreeMap::from([("ogr".to_string(), c.clone())]));
    s.put_manifest(&m, 1).await.expect("put");
    s.put_manifest(&m, 2).await.expect("put again is a no-op");
    assert_eq!(s.manifest(&m.id[..8]).await.expect("get"), Some(m.clone()));
    assert_eq!(s.manifest("zzzz").await.expect("get"), None);
    assert_eq!(s.manifest("abc").await.expect("get"), None, "too short");
}

async fn cycles_stages_components_and_deployed(db: Db) {
    let (_d, s) = store(db).await;
    let p = me();
    let id = s
        .create_cycle(&NewCycle {
            environment: "staging",
            kind: "deploy",
            manifest: None,
            request: "ogr=1",
            requested_by: "alice",
            started_at: 5,
            process: &p,
            lease_token: 1,
        })
        .await
        .expect("create");
    assert_eq!(s.running_cycles().await.expect("running").len(), 1);
    let second = NewCycle {
        environment: "staging",
        kind: "deploy",
        manifest: None,
        request: "x",
        requested_by: "bob",
        started_at: 6,
        process: &p,
        lease_token: 1,
    };
    assert!(matches!(s.create_cycle(&second).await, Err(StoreError::CycleRunning(e)) if e == "staging"));
    s.add_stage(
        id,
        &StageRecord {
            seq: 0,
            name: "build".into(),
            component: Some("ogr".into()),
            started_at: 5,
            finished_at: 6,
            result: "ok".into(),
            detail: None,
        },
    )
    .await
    .expect("stage");
    s.add_stage(
        id,
        &StageRecord {
            seq: 0,
            name: "deploy".into(),
            component: None,
            started_at: 6,
            finished_at: 7,
            result: "ok".into(),
            detail: None,
        },
    )
    .await
    .expect("stage");
    let stages = s.stages(id).await.expect("stages");
    assert_eq!(stages.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![1, 2]);
    let cc = CycleComponent {
        component: "ogr".into(),
        action: "deploy".into(),
        entry: ManifestComponent::default(),
        artifact: None,
        build: "pending".into(),
        build_log: None,
        run_log: None,
        outcome: "pending".into(),
    };
    s.set_cycle_component(id, &cc).await.expect("cc");
    s.set_cycle_component(
        id,
        &CycleComponent {
            outcome: "running".into(),
            ..cc
        },
    )
    .await
    .expect("cc update");
    assert_eq!(s.cycle_components(id).await.expect("cc")[0].outcome, "running");
    assert!(s.finish_cycle(id, "succeeded", None, 9).await.expect("finish"));
    // Once it ended, the next cycle may start.
    let next = s.create_cycle(&second).await.expect("next cycle");
    assert!(s.finish_cycle(next, "succeeded", None, 9).await.expect("finish"));
    assert!(
        !s.finish_cycle(id, "failed", None, 10)
            .await
            .expect("finish twice is refused")
    );
    let c = s.cycle(id).await.expect("cycle").expect("exists");
    assert_eq!((c.result.as_str(), c.finished_at), ("succeeded", Some(9)));
    assert_eq!(s.cycles(Some(&["other".to_string()]), 10).await.expect("list").len(), 0);
    assert_eq!(s.cycles(None, 10).await.expect("list").len(), 2);
    assert_eq!(
        s.cycle_counts().await.expect("counts"),
        vec![("staging".to_string(), "deploy".to_string(), "succeeded".to_string(), 2)]
    );
    let durations = s.stage_durations(10).await.expect("durations");
    assert_eq!(durations.len(), 2);
    assert!(durations.iter().all(|(e, _, ms)| e == "staging" && *ms == 1));

    let d = Deployed {
        environment: "staging".into(),
        component: "ogr".into(),
        cycle_id: id,
        entry: ManifestComponent::default(),
        artifact: Some("/x".into()),
        state: "running".into(),
        pid: Some(10),
        pid_start: Some(u64::MAX / 4),
        log_path: None,
        status_path: None,
        port: Some(20001),
        url: None,
        updated_at: 9,
    };
    s.set_deployed(&d).await.expect("deployed");
    assert_eq!(s.deployed("staging").await.expect("read"), vec![d.clone()]);
    // A fleet's targets are found by the instance's prefix (`_` is no wildcard).
    for place in ["staging#t3", "staging#t2", "stagingx#t1", "st_ging#t1"] {
        s.set_deployed(&Deployed {
            environment: place.into(),
            ..d.clone()
        })
        .await
        .expect("deployed");
    }
    assert_eq!(
        s.deployed_places("staging#").await.expect("places"),
        ["staging#t2", "staging#t3"]
    );
    assert_eq!(s.deployed_places("st_ging#").await.expect("places"), ["st_ging#t1"]);
    assert!(s.deployed_places("stag#").await.expect("places").is_empty());
    s.set_environment_manifest("staging", Some("abc"), id, 9)
        .await
        .expect("env");
    assert_eq!(
        s.environment_manifest("staging").await.expect("env"),
        Some((Some("abc".into()), id))
    );
}

async fn queue_is_fifo_and_ports_are_unique(db: Db) {
    let (_d, s) = store(db).await;
    let p = me();
    let a = s.enqueue("dev", "a", "r", &p, 1).await.expect("enqueue");
    let b = s.enqueue("dev", "b", "r", &p, 2).await.expect("enqueue");
    s.enqueue("other", "c", "r", &p, 3).await.expect("enqueue");
    let q = s.queue(Some("dev")).await.expect("queue");
    assert_eq!(q.iter().map(|e| e.ticket).collect::<Vec<_>>(), vec![a, b]);
    s.dequeue(a).await.expect("dequeue");
    assert_eq!(s.queue(Some("dev")).await.expect("queue")[0].holder, "b");

    assert!(s.set_port("staging", "ogr", 20000).await.expect("port"));
    assert!(!s.set_port("staging", "api", 20000).await.expect("port clash"));
    assert!(s.set_port("staging", "api", 20001).await.expect("port"));
    assert_eq!(s.port("staging", "api").await.expect("port"), Some(20001));
    assert_eq!(s.ports_in_use().await.expect("ports"), vec![20000, 20001]);
    assert!(s.set_port("staging#t2", "api", 20002).await.expect("port"));
    s.forget_place("staging#t2").await.expect("forget");
    assert_eq!(s.ports_in_use().await.expect("ports"), vec![20000, 20001]);
    assert_eq!(s.port("staging#t2", "api").await.expect("port"), None);
}

async fn deliveries_are_stored_once_and_decisions_and_policy_state_round_trip(db: Db) {
    let (_d, s) = store(db).await;
    let d = NewDelivery {
        source: "github",
        delivery_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        event: "pull_request",
        action: Some("opened"),
        repo: Some("Codertocat/Hello-World"),
        body: "{}",
        received_at: 1,
    };
    let first = s.insert_delivery(&d).await.expect("store");
    let Stored::New(id) = first else {
        panic!("first delivery must be new: {first:?}")
    };
    assert_eq!(s.insert_delivery(&d).await.expect("store again"), Stored::Duplicate(id));
    // The same id from another source is another delivery.
    assert!(matches!(
        s.insert_delivery(&NewDelivery {
            source: "gitlab",
            ..d.clone()
        })
        .await
        .expect("store"),
        Stored::New(_)
    ));
    assert_eq!(s.unprocessed_deliveries(0, 10).await.expect("list").len(), 2);
    assert_eq!(s.unprocessed_deliveries(0, 1).await.expect("page").len(), 1);
    assert_eq!(s.unprocessed_deliveries(id, 10).await.expect("after").len(), 1);
    s.finish_delivery(id, "trigger", Some("push to main"), 5)
        .await
        .expect("finish");
    assert_eq!(s.unprocessed_deliveries(0, 10).await.expect("list").len(), 1);
    let all = s.deliveries(10).await.expect("list");
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].outcome, "trigger");
    let counts = s.delivery_counts().await.expect("counts");
    assert_eq!(counts.len(), 2);
    assert!(counts.contains(&("github".into(), "pull_request".into(), "trigger".into(), 1)));

    let did = s
        .record_decision(
            "staging",
            7,
            "partial",
            "partial: last full cycle 2h ago",
            &[1, 2],
            None,
        )
        .await
        .expect("decide");
    let ds = s.decisions(Some("staging"), 10).await.expect("decisions");
    assert_eq!(ds.len(), 1);
    assert_eq!((ds[0].id, ds[0].triggers.as_str()), (did, "[1,2]"));
    assert!(s.decisions(Some("other"), 10).await.expect("decisions").is_empty());

    assert_eq!(s.policy_state("staging").await.expect("state"), None);
    s.save_policy_state("staging", "{\"a\":1}", 1).await.expect("save");
    s.save_policy_state("staging", "{\"a\":2}", 2).await.expect("save");
    assert_eq!(
        s.policy_state("staging").await.expect("state").as_deref(),
        Some("{\"a\":2}")
    );
}

async fn pauses_record_the_last_pause_or_resume(db: Db) {
    let (_d, s) = store(db).await;
    assert_eq!(s.pause("staging").await.expect("read"), None);
    s.set_pause("staging", true, "alice", "release freeze", 5)
        .await
        .expect("pause");
    let p = s.pause("staging").await.expect("read").expect("paused");
    assert!(p.paused);
    assert_eq!(
        (p.by.as_str(), p.reason.as_str(), p.since),
        ("alice", "release freeze", 5)
    );
    s.set_pause("staging", false, "bob", "", 9).await.expect("resume");
    let p = s.pause("staging").await.expect("read").expect("row");
    assert!(!p.paused);
    assert_eq!(p.by, "bob");
}

async fn pull_request_states_commands_and_comment_bodies(db: Db) {
    let (_d, s) = store(db).await;
    assert_eq!(s.pr_state("Packit/OGR", 1).await.expect("read"), None);
    s.approve_pr("Packit/OGR", 1, "carol", 5).await.expect("approve");
    s.exclude_pr("packit/ogr", 2, Some(("culprit search", "breaks /healthz")), 6)
        .await
        .expect("exclude");
    let st = s.pr_state("packit/ogr", 1).await.expect("read").expect("state");
    assert_eq!((st.approved_by.as_deref(), st.approved_at), (Some("carol"), Some(5)));
    assert_eq!(st.excluded_by, None);
    let all = s.pr_states().await.expect("list");
    assert_eq!(all.iter().map(|p| p.number).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(all[1].excluded_reason.as_deref(), Some("breaks /healthz"));
    // Included again: the exclusion is cleared, and a PR with nothing left drops out of the list.
    s.exclude_pr("packit/ogr", 2, None, 7).await.expect("include");
    assert_eq!(s.pr_states().await.expect("list").len(), 1);
    // An approval survives an exclusion and its lifting.
    s.exclude_pr("packit/ogr", 1, Some(("alice", "flaky")), 8)
        .await
        .expect("exclude");
    s.exclude_pr("packit/ogr", 1, None, 9).await.expect("include");
    assert_eq!(
        s.pr_state("packit/ogr", 1)
            .await
            .expect("read")
            .expect("state")
            .approved_by
            .as_deref(),
        Some("carol")
    );

    for (i, cmd) in ["deploy", "frobnicate"].iter().enumerate() {
        s.record_command(&CommandRecord {
            id: 0,
            repo: "packit/ogr".into(),
            number: 1,
            comment_id: 77,
            author: "mallory".into(),
            command: (*cmd).into(),
            outcome: if i == 0 { "refused" } else { "unknown" }.into(),
            detail: "answered".into(),
            at: 10 + i as i64,
        })
        .await
        .expect("record");
    }
    let cmds = s.pr_commands("PACKIT/ogr", 1, 10).await.expect("list");
    assert_eq!(
        cmds.iter().map(|c| c.command.as_str()).collect::<Vec<_>>(),
        vec!["deploy", "frobnicate"]
    );
    assert_eq!((cmds[0].outcome.as_str(), cmds[0].comment_id), ("refused", 77));
    assert!(s.pr_commands("packit/ogr", 2, 10).await.expect("list").is_empty());

    assert_eq!(
        s.swap_comment_body("github", 77, "@greenroom deploy", 1)
            .await
            .expect("swap"),
        None
    );
    assert_eq!(
        s.swap_comment_body("github", 77, "@greenroom deploy\n@greenroom status", 2)
            .await
            .expect("swap")
            .as_deref(),
        Some("@greenroom deploy")
    );
    assert_eq!(
        s.swap_comment_body("gitlab", 77, "x", 3).await.expect("swap"),
        None,
        "per source"
    );

    // The staging part of a sticky comment: per PR, replaced, repo case-insensitive.
    assert_eq!(s.sticky("packit/ogr", 1).await.expect("sticky"), None);
    s.set_sticky("Packit/OGR", 1, "first", 4).await.expect("set");
    s.set_sticky("packit/ogr", 1, "second", 5).await.expect("set");
    assert_eq!(
        s.sticky("packit/ogr", 1).await.expect("sticky").as_deref(),
        Some("second")
    );
    assert_eq!(s.sticky("packit/ogr", 2).await.expect("sticky"), None);
}

async fn finished_cycle(s: &Store, env: &str, manifest: Option<&str>, at: Millis, log: &str) -> i64 {
    let p = me();
    let id = s
        .create_cycle(&NewCycle {
            environment: env,
            kind: "deploy",
            manifest,
            request: "r",
            requested_by: "alice",
            started_at: at,
            process: &p,
            lease_token: 1,
        })
        .await
        .expect("create");
    s.add_stage(
        id,
        &StageRecord {
            seq: 0,
            name: "deploy".into(),
            component: None,
            started_at: at,
            finished_at: at,
            result: "ok".into(),
            detail: None,
        },
    )
    .await
    .expect("stage");
    s.set_cycle_component(
        id,
        &CycleComponent {
            component: "api".into(),
            action: "deploy".into(),
            entry: ManifestComponent::default(),
            artifact: None,
            build: "built".into(),
            build_log: Some(format!("{log}.build")),
            run_log: Some(log.to_string()),
            outcome: "running".into(),
        },
    )
    .await
    .expect("component");
    assert!(s.finish_cycle(id, "succeeded", None, at + 1).await.expect("finish"));
    id
}

async fn a_cancel_is_recorded_once_and_only_on_running_cycles(db: Db) {
    let (_d, s) = store(db).await;
    let p = me();
    let id = s
        .create_cycle(&NewCycle {
            environment: "staging",
            kind: "deploy",
            manifest: None,
            request: "r",
            requested_by: "alice",
            started_at: 1,
            process: &p,
            lease_token: 1,
        })
        .await
        .expect("create");
    assert_eq!(s.cancel_requested(id).await.expect("read"), None);
    assert!(s.request_cancel(id, "bob", "wrong branch", 5).await.expect("cancel"));
    assert!(s.request_cancel(id, "carol", "again", 6).await.expect("cancel twice"));
    let want = CancelRequest {
        by: "bob".into(),
        reason: "wrong branch".into(),
        at: 5,
    };
    assert_eq!(s.cancel_requested(id).await.expect("read"), Some(want.clone()));
    assert_eq!(s.cycle(id).await.expect("cycle").expect("exists").cancel, Some(want));
    assert!(s.finish_cycle(id, "cancelled", None, 7).await.expect("finish"));
    assert!(!s.request_cancel(id, "dave", "late", 8).await.expect("finished"));
    assert!(!s.request_cancel(999, "dave", "unknown", 8).await.expect("unknown"));
}

async fn retention_removes_old_cycles_but_keeps_the_newest_and_what_runs(db: Db) {
    let (_d, s) = store(db).await;
    for m in ["aaaa01", "aaaa02", "aaaa03"] {
        let mf = greenroom_core::manifest::Manifest {
            id: m.into(),
            components: BTreeMap::new(),
        };
        s.put_manifest(&mf, 1).await.expect("manifest");
    }
    let a1 = finished_cycle(&s, "staging", Some("aaaa01"), 10, "/l/a1").await;
    let a2 = finished_cycle(&s, "staging", Some("aaaa02"), 20, "/l/a2").await;
    let a3 = finished_cycle(&s, "staging", Some("aaaa02"), 30, "/l/a3").await;
    let a4 = finished_cycle(&s, "staging", Some("aaaa03"), 40, "/l/a4").await;
    let b1 = finished_cycle(&s, "dev", None, 15, "/l/b1").await;
    // What runs on dev came from b1: it stays whatever its age.
    s.set_environment_manifest("dev", None, b1, 16).await.expect("state");
    // a2's log is what runs on staging now.
    s.set_deployed(&Deployed {
        environment: "staging".into(),
        component: "api".into(),
        cycle_id: a4,
        entry: ManifestComponent::default(),
        artifact: None,
        state: "running".into(),
        pid: None,
        pid_start: None,
        log_path: Some("/l/a2".into()),
        status_path: None,
        port: None,
        url: None,
        updated_at: 41,
    })
    .await
    .expect("deployed");
    s.record_decision("staging", 5, "defer", "old", &[], None)
        .await
        .expect("decision");
    s.record_decision("staging", 50, "defer", "new", &[], None)
        .await
        .expect("decision");
    let keep = Keep {
        cycles_before: 35,
        cycles_per_environment: 1,
        deliveries_before: 0,
        decisions_before: 10,
        batch: 100,
    };
    let p = s.prune(&keep).await.expect("prune");
    // a4 is newest and in use; a1..a3 finished before 35; b1 is what runs on dev.
    assert_eq!(p.cycle_ids, vec![a1, a2, a3]);
    assert_eq!(p.cycles, 3);
    // m1 and m2 are no longer referred to; m3 is (a4).
    assert_eq!(p.manifests, 2);
    assert_eq!(p.decisions, 1);
    assert!(p.log_paths.contains(&"/l/a1".to_string()) && p.log_paths.contains(&"/l/a3.build".to_string()));
    assert!(
        !p.log_paths.contains(&"/l/a2".to_string()),
        "a running component's log stays"
    );
    assert!(s.cycle(a1).await.expect("read").is_none());
    assert!(s.stages(a2).await.expect("stages").is_empty());
    assert!(s.cycle(a4).await.expect("read").is_some() && s.cycle(b1).await.expect("read").is_some());
    assert!(s.manifest("aaaa03").await.expect("read").is_some() && s.manifest("aaaa01").await.expect("read").is_none());
    // A second pass finds nothing more.
    assert_eq!(s.prune(&keep).await.expect("again").cycles, 0);
}

// -- both backends at once ---------------------------------------------------

/// First-seen order of ids: raw ids may differ between the backends after
/// a failed insert (a PostgreSQL sequence value is consumed, an SQLite
/// AUTOINCREMENT one is not), their order may not.
#[derive(Default)]
struct Ranks(Vec<i64>);

impl Ranks {
    fn of(&mut self, id: i64) -> i64 {
        let at = self.0.iter().position(|i| *i == id).unwrap_or_else(|| {
            self.0.push(id);
            self.0.len() - 1
        });
        i64::try_from(at).expect("small") + 1
    }
}

/// A short, realistic run through the API: what each step returned.
async fn realistic_sequence(s: &Store) -> Vec<(&'static str, serde_json::Value)> {
    let mut out = Vec::new();
    let mut note = |step: &'static str, v: serde_json::Value| out.push((step, v));
    let mut cycles = Ranks::default();
    let mut deliveries = Ranks::default();
    let p = me();

    let m = Manifest::new(BTreeMap::from([
        (
            "api".to_string(),
            ManifestComponent {
                origin: "pr:7".into(),
                commit: Some("b".repeat(40)),
                ..Default::default()
            },
        ),
        ("Web".to_string(), ManifestComponent::default()),
    ]));
    s.put_manifest(&m, 1).await.expect("manifest");
    note(
        "manifest",
        serde_json::to_value(s.manifest(&m.id[..6]).await.expect("read")).expect("json"),
    );

    // A webhook arrives twice; the second is recognised.
    let d = NewDelivery {
        source: "github",
        delivery_id: "d-1",
        event: "pull_request",
        action: Some("synchronize"),
        repo: Some("o/api"),
        body: "{\"number\":7}",
        received_at: 2,
    };
    let first = match s.insert_delivery(&d).await.expect("delivery") {
        Stored::New(id) => id,
        other => panic!("first delivery: {other:?}"),
    };
    let again = match s.insert_delivery(&d).await.expect("delivery again") {
        Stored::Duplicate(id) => id,
        other => panic!("redelivery: {other:?}"),
    };
    note(
        "delivery ids",
        serde_json::json!([deliveries.of(first), deliveries.of(again)]),
    );
    let push = NewDelivery {
        delivery_id: "d-2",
        event: "push",
        action: None,
        ..d.clone()
    };
    let Stored::New(second) = s.insert_delivery(&push).await.expect("delivery") else {
        panic!("second delivery is new")
    };
    deliveries.of(second);

    // Lease, cycle, stages, components, what runs.
    let lease = s
        .try_acquire("staging", None, &req("scheduler", Some(&p)))
        .await
        .expect("acquire")
        .expect("won");
    note("lease", serde_json::to_value(&lease).expect("json"));
    let cycle = NewCycle {
        environment: "staging",
        kind: "deploy",
        manifest: Some(&m.id),
        request: "api=7",
        requested_by: "scheduler",
        started_at: 3,
        process: &p,
        lease_token: lease.token,
    };
    let c1 = s.create_cycle(&cycle).await.expect("cycle");
    cycles.of(c1);
    note(
        "second cycle while running",
        serde_json::json!(format!("{:?}", s.create_cycle(&cycle).await.map(|id| cycles.of(id)))),
    );
    for (name, component) in [("resolve", None), ("build", Some("api")), ("deploy", Some("api"))] {
        s.add_stage(
            c1,
            &StageRecord {
                seq: 0,
                name: name.into(),
                component: component.map(str::to_string),
                started_at: 3,
                finished_at: 5,
                result: "ok".into(),
                detail: Some(format!("{name} done")),
            },
        )
        .await
        .expect("stage");
    }
    for (component, action) in [("api", "deploy"), ("Web", "carry")] {
        s.set_cycle_component(
            c1,
            &CycleComponent {
                component: component.into(),
                action: action.into(),
                entry: m.components[component].clone(),
                artifact: Some(format!("/artifacts/{component}")),
                build: "built".into(),
                build_log: Some(format!("/logs/{component}.build")),
                run_log: Some(format!("/logs/{component}.run")),
                outcome: "running".into(),
            },
        )
        .await
        .expect("component");
    }
    s.set_deployed(&Deployed {
        environment: "staging".into(),
        component: "api".into(),
        cycle_id: c1,
        entry: m.components["api"].clone(),
        artifact: Some("/artifacts/api".into()),
        state: "running".into(),
        pid: Some(4242),
        pid_start: Some(1_700_000_000_000),
        log_path: Some("/logs/api.run".into()),
        status_path: None,
        port: Some(20_001),
        url: Some("http://127.0.0.1:20001".into()),
        updated_at: 5,
    })
    .await
    .expect("deployed");
    assert!(s.set_port("staging", "api", 20_001).await.expect("port"));
    assert!(!s.set_port("staging", "Web", 20_001).await.expect("port clash"));
    s.set_environment_manifest("staging", Some(&m.id), c1, 6)
        .await
        .expect("env");
    assert!(s.finish_cycle(c1, "succeeded", None, 6).await.expect("finish"));
    s.finish_delivery(first, "trigger", Some("cycle 1"), 6)
        .await
        .expect("finish delivery");
    s.record_decision("staging", 6, "partial", "api changed", &[1], Some(c1))
        .await
        .expect("decision");
    s.save_policy_state("staging", "{\"due\":[]}", 6).await.expect("policy");
    s.set_pause("staging", true, "alice", "freeze", 7).await.expect("pause");
    let ticket = s.enqueue("staging", "bob", "demo", &p, 7).await.expect("enqueue");
    assert!(
        s.update_lease("staging", lease.token, 9000, None)
            .await
            .expect("extend")
    );
    assert!(s.release("staging", lease.token).await.expect("release"));
    s.dequeue(ticket).await.expect("dequeue");

    // A failed cycle later, and a cancelled one.
    let c2 = s
        .create_cycle(&NewCycle {
            started_at: 10,
            request: "Web=main",
            ..cycle.clone()
        })
        .await
        .expect("cycle 2");
    cycles.of(c2);
    assert!(
        s.finish_cycle(c2, "failed", Some("health check"), 11)
            .await
            .expect("finish")
    );
    let c3 = s
        .create_cycle(&NewCycle {
            started_at: 12,
            ..cycle.clone()
        })
        .await
        .expect("cycle 3");
    cycles.of(c3);
    assert!(s.request_cancel(c3, "alice", "wrong branch", 12).await.expect("cancel"));
    assert!(s.finish_cycle(c3, "cancelled", None, 13).await.expect("finish"));

    // What every reader sees now, ids replaced by their order.
    let mut all = s.cycles(None, 10).await.expect("cycles");
    for c in &mut all {
        c.id = cycles.of(c.id);
    }
    note("cycles", serde_json::to_value(&all).expect("json"));
    note(
        "filtered cycles",
        serde_json::json!(
            s.cycles(Some(&["staging".to_string(), "dev".to_string()]), 2)
                .await
                .expect("cycles")
                .len()
        ),
    );
    note(
        "running",
        serde_json::to_value(s.running_cycles().await.expect("running")).expect("json"),
    );
    note(
        "stages",
        serde_json::to_value(s.stages(c1).await.expect("stages")).expect("json"),
    );
    note(
        "components",
        serde_json::to_value(s.cycle_components(c1).await.expect("components")).expect("json"),
    );
    let mut deployed = s.deployed("staging").await.expect("deployed");
    for d in &mut deployed {
        d.cycle_id = cycles.of(d.cycle_id);
    }
    note("deployed", serde_json::to_value(&deployed).expect("json"));
    note(
        "environment manifest",
        serde_json::to_value(
            s.environment_manifest("staging")
                .await
                .expect("env")
                .map(|(m, c)| (m, cycles.of(c))),
        )
        .expect("json"),
    );
    note(
        "lease after release",
        serde_json::to_value(s.lease("staging").await.expect("lease")).expect("json"),
    );
    note(
        "leases",
        serde_json::to_value(s.leases().await.expect("leases")).expect("json"),
    );
    note(
        "queue",
        serde_json::to_value(s.queue(None).await.expect("queue")).expect("json"),
    );
    note(
        "ports",
        serde_json::to_value(s.ports_in_use().await.expect("ports")).expect("json"),
    );
    note(
        "pause",
        serde_json::to_value(s.pause("staging").await.expect("pause")).expect("json"),
    );
    note(
        "policy",
        serde_json::to_value(s.policy_state("staging").await.expect("policy")).expect("json"),
    );
    let mut ds = s.deliveries(10).await.expect("deliveries");
    for d in &mut ds {
        d.id = deliveries.of(d.id);
    }
    note(
        "deliveries",
        serde_json::to_value(ds.iter().map(|d| (d, &d.body)).collect::<Vec<_>>()).expect("json"),
    );
    note(
        "unprocessed",
        serde_json::json!(s.unprocessed_deliveries(0, 10).await.expect("unprocessed").len()),
    );
    let decisions: Vec<_> = s
        .decisions(None, 10)
        .await
        .expect("decisions")
        .into_iter()
        .map(|d| {
            (
                d.environment,
                d.at,
                d.kind,
                d.reason,
                d.triggers,
                d.cycle_id.map(|c| cycles.of(c)),
            )
        })
        .collect();
    note("decisions", serde_json::to_value(decisions).expect("json"));
    note(
        "cycle counts",
        serde_json::to_value(s.cycle_counts().await.expect("counts")).expect("json"),
    );
    note(
        "delivery counts",
        serde_json::to_value(s.delivery_counts().await.expect("counts")).expect("json"),
    );
    note(
        "stage durations",
        serde_json::to_value(s.stage_durations(10).await.expect("durations")).expect("json"),
    );

    // Retention: keep the newest cycle and what runs (c1); c2 goes.
    let mut pruned = s
        .prune(&Keep {
            cycles_before: 100,
            cycles_per_environment: 1,
            deliveries_before: 100,
            decisions_before: 0,
            batch: 10,
        })
        .await
        .expect("prune");
    pruned.cycle_ids = pruned.cycle_ids.iter().map(|c| cycles.of(*c)).collect();
    note("pruned", serde_json::to_value(&pruned).expect("json"));
    note(
        "cycles after prune",
        serde_json::to_value(
            s.cycles(None, 10)
                .await
                .expect("cycles")
                .iter()
                .map(|c| cycles.of(c.id))
                .collect::<Vec<_>>(),
        )
        .expect("json"),
    );
    out
}

#[tokio::test]
async fn the_same_calls_give_the_same_results_on_both_backends() {
    let (_a, sqlite) = store(Db::Sqlite).await;
    let (_b, postgres) = store(Db::Postgres).await;
    let on_sqlite = realistic_sequence(&sqlite).await;
    let on_postgres = realistic_sequence(&postgres).await;
    for (a, b) in on_sqlite.iter().zip(&on_postgres) {
        assert_eq!(a, b, "step `{}` differs (left: SQLite, right: PostgreSQL)", a.0);
    }
    assert_eq!(on_sqlite.len(), on_postgres.len());
    // The sequence did what it says: spot checks on one side.
    let step = |name: &str| &on_sqlite.iter().find(|(s, _)| *s == name).expect("step").1;
    assert_eq!(
        step("second cycle while running"),
        &serde_json::json!("Err(CycleRunning(\"staging\"))")
    );
    assert_eq!(step("pruned")["cycle_ids"], serde_json::json!([2]));
    assert_eq!(step("cycles after prune"), &serde_json::json!([3, 1]));
    // Byte order, as SQLite's BINARY collation: "Web" before "api".
    assert_eq!(step("components")[0]["component"], "Web");
}

// -- connecting ----------------------------------------------------------------

#[test]
fn database_urls_are_parsed() {
    let t = |url: &str| target(url).expect(url);
    let sqlite = |url: &str, path: &str| {
        let got = t(url);
        assert_eq!((got.backend, got.shown.as_str()), (Backend::Sqlite, path), "{url}");
        got.url
    };
    assert_eq!(sqlite("sqlite:state.db", "state.db"), "sqlite:state.db?mode=rwc");
    assert_eq!(sqlite("sqlite://state.db", "state.db"), "sqlite:state.db?mode=rwc");
    assert_eq!(
        sqlite("SQLite:../x/state.db", "../x/state.db"),
        "sqlite:..%2Fx%2Fstate.db?mode=rwc"
    );
    assert_eq!(
        sqlite("sqlite:///var/lib/g.db", "/var/lib/g.db"),
        "sqlite:%2Fvar%2Flib%2Fg.db?mode=rwc"
    );
    assert_eq!(
        sqlite("sqlite:/var/lib/g.db", "/var/lib/g.db"),
        "sqlite:%2Fvar%2Flib%2Fg.db?mode=rwc"
    );
    assert_eq!(
        sqlite("sqlite:/a%20b/g.db", "/a b/g.db"),
        "sqlite:%2Fa%20b%2Fg.db?mode=rwc"
    );
    assert_eq!(sqlite("sqlite:/g.db?mode=ro", "/g.db"), "sqlite:%2Fg.db?mode=ro");
    assert_eq!(sqlite("sqlite::memory:", ":memory:"), "sqlite::memory:?mode=rwc");
    assert_eq!(
        sqlite("sqlite:/g.db?cache=shared", "/g.db"),
        "sqlite:%2Fg.db?mode=rwc&cache=shared"
    );
    for url in [
        "postgres://u:secret@db.example:5433/greenroom",
        "postgresql://u@db/greenroom?password=secret&sslmode=prefer",
    ] {
        let got = t(url);
        assert_eq!((got.backend, got.url.as_str()), (Backend::Postgres, url));
        assert!(
            !got.shown.contains("secret") && got.shown.contains("redacted"),
            "{}",
            got.shown
        );
    }
    for bad in ["mysql://u@h/db", "state.db", "sqlite:", "sqlite://", "sqlite:/a%zz.db"] {
        assert!(matches!(target(bad), Err(StoreError::Open { .. })), "{bad}");
    }
    // An unparseable URL is not echoed: it may hold a password.
    let got = t("postgres://u:secret@[bad/db");
    assert_eq!(got.shown, "postgres://(unparseable URL)");
}

#[tokio::test]
async fn sqlite_files_are_found_by_url_and_by_path_whatever_their_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a b?c#d%e.db");
    let s = Store::open(&path).await.expect("open");
    s.set_pause("e", true, "me", "", 1).await.expect("write");
    s.close().await;
    assert!(path.is_file(), "created at the exact path");
    // The same file through URLs, after its migrations already ran.
    let encoded = percent_encode(path.to_str().expect("utf-8"));
    for url in [format!("sqlite:{encoded}"), format!("sqlite://{encoded}")] {
        let s = Store::connect(&url).await.expect(&url);
        assert_eq!(s.backend(), "sqlite");
        assert!(s.pause("e").await.expect("read").is_some(), "{url}");
        s.close().await;
    }
    let plain = dir.path().join("plain.db");
    Store::connect(&format!("sqlite://{}", plain.display()))
        .await
        .expect("connect")
        .close()
        .await;
    assert!(plain.is_file());
    let memory = Store::connect("sqlite::memory:").await.expect("in memory");
    memory.set_pause("e", true, "me", "", 1).await.expect("write");
    assert!(memory.pause("e").await.expect("read").is_some());
}

#[tokio::test]
async fn postgres_over_the_unix_socket() {
    let url = pg::database().await;
    let name = url.rsplit('/').next().expect("database name");
    let s = Store::connect(&pg::server().socket_url(name)).await.expect("connect");
    assert_eq!(s.backend(), "postgres");
    s.set_pause("e", true, "me", "", 1).await.expect("write");
    // The same database over TCP sees it.
    let tcp = Store::connect(&url).await.expect("connect");
    assert!(tcp.pause("e").await.expect("read").is_some());
}

#[tokio::test]
async fn open_errors_name_the_database_but_not_its_password() {
    let server = pg::server();
    let url = format!(
        "postgres://postgres:not-the-password@127.0.0.1:{}/postgres",
        server.port
    );
    let Err(e) = Store::connect(&url).await else {
        panic!("connected with a wrong password")
    };
    let text = e.to_string();
    assert!(matches!(e, StoreError::Open { .. }), "{text}");
    assert!(
        text.contains("127.0.0.1") && !text.contains("not-the-password"),
        "{text}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no/such/dir/state.db");
    let Err(e) = Store::open(&missing).await else {
        panic!("opened a file in a missing directory")
    };
    assert!(e.to_string().contains(&missing.display().to_string()), "{e}");
}

#[test]
fn migrations_keep_their_bytes_and_match_between_backends() {
    // sqlx refuses to run against a database whose applied migrations'
    // checksums changed: the SQLite files must stay byte for byte.
    let pinned = [
        "49120304fa123f5d8a160f1e1b1c3d69bb28110c6b680b3129008e1c37c96b6cc254eef619a8d11bd465204b894b056b",
        "9586fbb44f6183f9ee0876af34be6cb07c645958cbcceac4c4ffddf5202e059627475fd1d5f717b6a6922e2d74a7d371",
        "b9d258bed54777e76efc4eed2d9f2436850715c6e559fa2db9a532de2e17e731803c8b1916f87598a25e0cc26ca61cdc",
        "2c8633bffd93449e4d31d223feaa36f53bd1dce03c35b8e8dabbdccab6fb26a2033cd94e870a4b87475bc0cd96a5313e",
    ];
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let sqlite: Vec<_> = SQLITE_MIGRATIONS.iter().collect();
    for (m, want) in sqlite.iter().zip(pinned) {
        assert_eq!(hex(&m.checksum), want, "SQLite migration {} changed", m.version);
    }
    let versions = |m: &Migrator| {
        m.iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(versions(&SQLITE_MIGRATIONS), versions(&POSTGRES_MIGRATIONS));
    assert!(sqlite.len() >= pinned.len());
}

async fn faulty_manifests_and_the_audit_trail(db: Db) {
    let (_f, s) = store(db).await;
    assert_eq!(s.faulty("m1", "staging").await.expect("read"), None);
    let mark = FaultyRecord {
        manifest: "m1".into(),
        environment: "staging".into(),
        marked_by: "alice".into(),
        reason: "rolled back: 500s".into(),
        marked_at: 10,
    };
    s.mark_faulty(&mark).await.expect("mark");
    // Marked again: the last mark wins, still one row.
    let again = FaultyRecord {
        marked_by: "bob".into(),
        marked_at: 20,
        ..mark.clone()
    };
    s.mark_faulty(&again).await.expect("mark again");
    assert_eq!(s.faulty("m1", "staging").await.expect("read"), Some(again));
    assert_eq!(s.faulty("m1", "dev-1").await.expect("read"), None, "per environment");

    for (i, (env, action)) in [("staging", "deploy"), ("dev-1", "lease"), ("staging", "rollback")]
        .into_iter()
        .enumerate()
    {
        let id = s
            .record_audit(&AuditRecord {
                id: 0,
                at: 100 + i64::try_from(i).expect("small"),
                actor: "alice".into(),
                surface: "cli".into(),
                action: action.into(),
                environment: env.into(),
                detail: format!("{action} on {env}"),
                reason: "because".into(),
                cycle_id: (action != "lease").then_some(7),
            })
            .await
            .expect("audit");
        assert!(id > 0);
    }
    let all = s.audit(None, 10).await.expect("audit");
    assert_eq!(
        all.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
        vec!["rollback", "lease", "deploy"],
        "newest first"
    );
    let staging = s.audit(Some(&["staging".to_string()]), 10).await.expect("audit");
    assert_eq!(staging.len(), 2);
    assert!(staging.iter().all(|a| a.environment == "staging"));
    assert_eq!(staging[0].cycle_id, Some(7));
    assert_eq!(s.audit(None, 1).await.expect("audit").len(), 1, "limited");
}

async fn stage_approvals_are_recorded_once(db: Db) {
    let (_f, s) = store(db).await;
    assert_eq!(s.approval(7, "migrate").await.expect("read"), None);
    let a = ApprovalRecord {
        cycle_id: 7,
        stage: "migrate".into(),
        approved_by: "alice".into(),
        reason: "backup taken".into(),
        approved_at: 100,
    };
    assert!(s.approve(&a).await.expect("approve"));
    let later = ApprovalRecord {
        approved_by: "bob".into(),
        ..a.clone()
    };
    assert!(
        !s.approve(&later).await.expect("approve again"),
        "the first approval stands"
    );
    assert_eq!(s.approval(7, "migrate").await.expect("read"), Some(a));
    assert_eq!(s.approval(7, "seed").await.expect("read"), None);
    assert_eq!(s.approval(8, "migrate").await.expect("read"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_opening_a_new_sqlite_file_at_once_all_succeed() {
    // Several openers race to create and migrate one new file: the lock
    // file serializes the migrations, none fails with "table exists".
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let p = path.clone();
                tokio::spawn(async move { Store::open(&p).await.map(|_| ()) })
            })
            .collect();
        for o in opens {
            o.await.expect("join").expect("every opener succeeds");
        }
    }
}

async fn overrides_hold_until_their_time(db: Db) {
    let (_f, s) = store(db).await;
    assert_eq!(s.active_override("staging", 0).await.expect("read"), None);
    let o = OverrideRecord {
        environment: "staging".into(),
        granted_by: "alice".into(),
        reason: "hotfix during the freeze".into(),
        granted_at: 100,
        until: 1_000,
    };
    s.set_override(&o).await.expect("grant");
    assert_eq!(s.active_override("staging", 999).await.expect("read"), Some(o.clone()));
    assert_eq!(
        s.active_override("staging", 1_000).await.expect("read"),
        None,
        "expired"
    );
    assert_eq!(s.active_override("dev-1", 500).await.expect("read"), None);
    let renewed = OverrideRecord { until: 5_000, ..o };
    s.set_override(&renewed).await.expect("renew");
    assert_eq!(s.active_override("staging", 4_000).await.expect("read"), Some(renewed));
}

async fn ephemeral_environments_take_a_slot_each(db: Db) {
    let (_f, s) = store(db).await;
    let e = EphemeralRecord {
        name: "review-42".into(),
        profile: "1k".into(),
        slot: "1k-1".into(),
        created_by: "alice".into(),
        reason: "try the new storage layer".into(),
        pr: None,
        created_at: 10,
        expires_at: 100,
    };
    assert!(s.create_ephemeral(&e).await.expect("create"));
    let same_name = EphemeralRecord {
        slot: "1k-2".into(),
        ..e.clone()
    };
    assert!(
        !s.create_ephemeral(&same_name).await.expect("create"),
        "the name is taken"
    );
    let same_slot = EphemeralRecord {
        name: "other".into(),
        ..e.clone()
    };
    assert!(
        !s.create_ephemeral(&same_slot).await.expect("create"),
        "the slot is taken"
    );
    let preview = EphemeralRecord {
        name: "pr-ogr-12".into(),
        slot: "1k-2".into(),
        pr: Some("acme/ogr#12".into()),
        ..e.clone()
    };
    assert!(s.create_ephemeral(&preview).await.expect("create"));
    assert_eq!(s.ephemerals().await.expect("list"), vec![preview.clone(), e.clone()]);
    assert!(s.renew_ephemeral("review-42", 500).await.expect("renew"));
    assert_eq!(s.ephemerals().await.expect("list")[1].expires_at, 500);
    assert!(s.delete_ephemeral("review-42").await.expect("delete"));
    assert!(!s.delete_ephemeral("review-42").await.expect("delete again"));
    assert_eq!(s.ephemerals().await.expect("list"), vec![preview]);
}

async fn dashboard_sessions_end_and_are_bounded(db: Db) {
    let (_d, s) = store(db).await;
    let rec = |id: &str, at: Millis| SessionRecord {
        id: id.into(),
        user: "alice".into(),
        token_digest: "ab".repeat(32),
        csrf: "c".into(),
        created_at: at,
        expires_at: at + 100,
    };
    s.put_session(&rec("a", 10), 10, 3).await.expect("put");
    assert_eq!(s.session("a", 50).await.expect("read"), Some(rec("a", 10)));
    assert_eq!(s.session("a", 110).await.expect("read"), None, "ended");
    assert_eq!(s.session("zz", 50).await.expect("read"), None);
    // At most `keep`: the oldest go first.
    for (i, id) in ["b", "c", "d"].iter().enumerate() {
        s.put_session(&rec(id, 20 + i as i64), 20 + i as i64, 3)
            .await
            .expect("put");
    }
    assert_eq!(s.session("a", 50).await.expect("read"), None, "the oldest went");
    for id in ["b", "c", "d"] {
        assert!(s.session(id, 50).await.expect("read").is_some(), "{id}");
    }
    // Expired ones go on the next sign-in.
    s.put_session(&rec("e", 500), 500, 3).await.expect("put");
    assert_eq!(s.session("b", 0).await.expect("read"), None, "removed, not only hidden");
    s.delete_session("e").await.expect("delete");
    assert_eq!(s.session("e", 501).await.expect("read"), None);
}
