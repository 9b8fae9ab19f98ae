//! The store against a real SQLite file.

use super::*;
use greenroom_core::manifest::ManifestComponent;
use std::collections::BTreeMap;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(&dir.path().join("state.db")).await.expect("open");
    (dir, s)
}

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

#[tokio::test]
async fn lease_compare_and_swap() {
    let (_d, s) = store().await;
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

#[tokio::test]
async fn concurrent_acquisitions_from_separate_connections_have_one_winner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let first = Store::open(&path).await.expect("open");
    let mut handles = Vec::new();
    for i in 0..8 {
        let path = path.clone();
        handles.push(tokio::spawn(async move {
            let s = Store::open(&path).await.expect("open");
            let holder = format!("h{i}");
            let r = s
                .try_acquire("staging", None, &req(&holder, None))
                .await
                .expect("acquire");
            r.is_some()
        }));
    }
    let mut winners = 0;
    for h in handles {
        if h.await.expect("join") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert!(first.lease("staging").await.expect("read").0.is_some());
}

#[tokio::test]
async fn manifests_are_immutable_and_found_by_prefix() {
    let (_d, s) = store().await;
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

#[tokio::test]
async fn cycles_stages_components_and_deployed() {
    let (_d, s) = store().await;
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
    assert_eq!(s.deployed("staging").await.expect("read"), vec![d]);
    s.set_environment_manifest("staging", Some("abc"), id, 9)
        .await
        .expect("env");
    assert_eq!(
        s.environment_manifest("staging").await.expect("env"),
        Some((Some("abc".into()), id))
    );
}

#[tokio::test]
async fn queue_is_fifo_and_ports_are_unique() {
    let (_d, s) = store().await;
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
}

#[tokio::test]
async fn deliveries_are_stored_once_and_decisions_and_policy_state_round_trip() {
    let (_d, s) = store().await;
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

#[tokio::test]
async fn pauses_record_the_last_pause_or_resume() {
    let (_d, s) = store().await;
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

#[tokio::test]
async fn a_cancel_is_recorded_once_and_only_on_running_cycles() {
    let (_d, s) = store().await;
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

#[tokio::test]
async fn retention_removes_old_cycles_but_keeps_the_newest_and_what_runs() {
    let (_d, s) = store().await;
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
