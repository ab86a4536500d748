//! Replays one event of every kind the committed schema names through the
//! fold, checking the state each one leaves.

use std::collections::BTreeSet;

use swarm_protocol::agent::Usage;
use swarm_protocol::{
    AttemptOutcome, Event, EventBody, Isolation, SCHEMA_VERSION, TaskInfo, TaskKind, TaskStatus,
};

use super::RunFold;
use crate::ids::TaskIndex;

const BASE: &str = "1111111111111111111111111111111111111111";
const A1: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MERGE: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C1: &str = "cccccccccccccccccccccccccccccccccccccccc";
const FIX: &str = "dddddddddddddddddddddddddddddddddddddddd";

fn event(body: EventBody) -> Event {
    Event {
        v: SCHEMA_VERSION,
        ts: "2026-01-01T00:00:00.000Z".into(),
        body,
    }
}

fn info(id: &str, isolation: Isolation, deps: &[&str]) -> TaskInfo {
    TaskInfo {
        id: id.into(),
        kind: TaskKind::Command,
        isolation,
        deps: deps.iter().map(|d| d.to_string()).collect(),
        variant_of: None,
    }
}

fn run_started(tasks: Vec<TaskInfo>) -> EventBody {
    EventBody::RunStarted {
        run: "r".into(),
        plan: "plan.toml".into(),
        repo: "/repo".into(),
        base: "HEAD".into(),
        base_commit: BASE.into(),
        integration_branch: Some("swarm/r".into()),
        concurrency: 2,
        tasks,
        worktrees: None,
        origin: None,
        base_branch: None,
    }
}

fn started(task: &str, attempt: u32, base: &str) -> EventBody {
    EventBody::TaskStarted {
        task: task.into(),
        attempt,
        base_commit: base.into(),
        workdir: format!("/w/{task}"),
        job: None,
        setup_ms: None,
        setup_run: Some(swarm_protocol::SetupRun {
            ms: 5,
            reused: true,
            layered: false,
            waited_ms: 3,
        }),
        max_file_size: None,
    }
}

fn attempt_finished(task: &str, attempt: u32, code: i32, commit: Option<&str>) -> EventBody {
    EventBody::AttemptFinished {
        task: task.into(),
        attempt,
        outcome: AttemptOutcome::Exited { code },
        verify_passed: None,
        duration_ms: 5,
        commit: commit.map(str::to_string),
        git_ref: commit.map(|_| format!("refs/swarm/r/{task}")),
        changed_files: vec![format!("{task}.txt")],
        skipped_files: Vec::new(),
        outside_paths: Vec::new(),
        snapshot_ms: Some(1),
        verify_ms: None,
        agent: None,
        score: None,
        diff: None,
    }
}

fn finished(task: &str, status: TaskStatus) -> EventBody {
    EventBody::TaskFinished {
        task: task.into(),
        status,
        reason: (!status.is_success()).then(|| "why".into()),
    }
}

fn oid(text: &str) -> Option<git2::Oid> {
    git2::Oid::from_str(text).ok()
}

/// The names of the events in the committed `events.schema.json`.
fn schema_event_names() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events.schema.json");
    let text = std::fs::read_to_string(path).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    schema["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            o["properties"]["event"]["const"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn every_committed_event_replays_through_the_fold() {
    let mut fold = RunFold::default();
    let mut seen = BTreeSet::new();
    let mut apply = |fold: &mut RunFold, body: EventBody| {
        let event = event(body);
        let json = serde_json::to_value(&event).unwrap();
        seen.insert(json["event"].as_str().unwrap().to_string());
        fold.apply(&event);
    };

    // `a` writes, `b` only reads, `c` depends on both.
    apply(
        &mut fold,
        run_started(vec![
            info("a", Isolation::Worktree, &[]),
            info("b", Isolation::Readonly, &[]),
            info("c", Isolation::Worktree, &["a", "b"]),
        ]),
    );
    let (a, b, c) = (
        fold.index("a").unwrap(),
        fold.index("b").unwrap(),
        fold.index("c").unwrap(),
    );
    assert_eq!(fold.index("nope"), None);
    assert!(TaskIndex::all(3).all(|i| fold.status(i) == TaskStatus::Pending));
    assert_eq!(fold.report().unwrap().integration_commit, BASE);

    apply(&mut fold, EventBody::TaskQueued { task: "a".into() });
    assert_eq!(fold.status(a), TaskStatus::Pending);

    apply(&mut fold, started("a", 1, BASE));
    assert_eq!(fold.status(a), TaskStatus::Running);
    assert_eq!(fold.state(a).unwrap().attempt, 1);
    assert_eq!(fold.state(a).unwrap().base, oid(BASE));
    assert_eq!(
        fold.task(a).unwrap().stdout_log,
        "/repo/.swarm/runs/r/logs/a/1.out"
    );

    // Progress of an agent changes no state.
    apply(
        &mut fold,
        EventBody::AgentTool {
            task: "a".into(),
            name: "bash".into(),
            detail: "ls".into(),
        },
    );
    apply(
        &mut fold,
        EventBody::AgentUsage {
            task: "a".into(),
            turn: 1,
            usage: Usage::default(),
            total: Usage::default(),
            cost_usd: 0.0,
        },
    );
    apply(
        &mut fold,
        EventBody::BudgetSpent {
            task: "a".into(),
            message: "spent".into(),
        },
    );
    assert_eq!(fold.status(a), TaskStatus::Running);
    // A split is the journal's record for `resume`: the fold's tasks are
    // `run_started`'s already.
    apply(
        &mut fold,
        EventBody::TaskSharded {
            task: "s".into(),
            shards: vec![vec!["a.py".into()], vec!["b.py".into()]],
            moved: vec![],
        },
    );
    assert_eq!(fold.status(a), TaskStatus::Running);
    // Its own test report: counted on the task, a bad one a warning.
    let counts = swarm_protocol::TestCounts {
        passed: 3,
        failed: 1,
        skipped: 0,
        time_ms: 40,
        failing: vec!["t::bad".into()],
        cases: "cases.json".into(),
        flaky: 0,
        flaky_tests: vec![],
        quarantined: 0,
        expired: vec![],
        reran: 0,
        selected_out: vec![],
    };
    apply(
        &mut fold,
        EventBody::TestsReported {
            task: "a".into(),
            attempt: 1,
            tests: Some(counts.clone()),
            warning: None,
        },
    );
    assert_eq!(fold.task(a).unwrap().tests.as_deref(), Some(&counts));
    apply(
        &mut fold,
        EventBody::TestsReported {
            task: "a".into(),
            attempt: 2,
            tests: None,
            warning: Some("its test report `r.xml` is not JUnit XML".into()),
        },
    );
    let t = fold.task(a).unwrap();
    assert_eq!(t.tests, None, "the last attempt's report is the task's");
    assert!(
        t.warnings
            .iter()
            .any(|w| w == "attempt 2: its test report `r.xml` is not JUnit XML")
    );

    // A failed attempt (it wrote outside its paths), then a retry that
    // succeeds.
    let mut outside = attempt_finished("a", 1, 0, Some(C1));
    if let EventBody::AttemptFinished { outside_paths, .. } = &mut outside {
        *outside_paths = vec!["README.md".into()];
    }
    apply(&mut fold, outside);
    assert_eq!(fold.state(a).unwrap().commit, oid(C1));
    assert_eq!(fold.task(a).unwrap().outside_paths, ["README.md"]);
    apply(&mut fold, started("a", 2, BASE));
    apply(&mut fold, attempt_finished("a", 2, 0, Some(A1)));
    apply(&mut fold, finished("a", TaskStatus::Succeeded));
    let t = fold.task(a).unwrap();
    assert!(t.outside_paths.is_empty());
    assert_eq!(
        (t.status, t.attempts, t.duration_ms),
        (TaskStatus::Succeeded, 2, 10)
    );
    assert_eq!(t.commit.as_deref(), Some(A1));
    assert_eq!(fold.result(a), oid(A1));

    apply(
        &mut fold,
        EventBody::TaskMerged {
            task: "a".into(),
            commit: A1.into(),
            integration_commit: MERGE.into(),
            resolved: false,
        },
    );
    assert_eq!(fold.status(a), TaskStatus::Merged);
    assert_eq!(fold.result(a), oid(A1));
    assert_eq!(fold.report().unwrap().integration_commit, MERGE);

    // A read-only task's result is the commit it ran on.
    apply(&mut fold, started("b", 1, BASE));
    apply(&mut fold, attempt_finished("b", 1, 0, None));
    apply(&mut fold, finished("b", TaskStatus::Succeeded));
    assert_eq!(fold.result(b), oid(BASE));

    apply(&mut fold, started("c", 1, MERGE));
    apply(&mut fold, attempt_finished("c", 1, 0, Some(C1)));
    apply(&mut fold, finished("c", TaskStatus::Succeeded));
    apply(
        &mut fold,
        EventBody::TaskConflicted {
            task: "c".into(),
            commit: C1.into(),
            files: vec!["x".into()],
            hunks: Vec::new(),
            touched_by: vec!["a".into()],
        },
    );
    apply(&mut fold, finished("c", TaskStatus::Conflicted));
    assert_eq!(fold.status(c), TaskStatus::Conflicted);
    assert_eq!(fold.task(c).unwrap().conflict_with, ["a"]);
    assert_eq!(fold.result(c), oid(C1));

    apply(
        &mut fold,
        EventBody::RunFinished {
            integration_commit: MERGE.into(),
            exit_code: 1,
            duration_ms: 100,
        },
    );
    assert_eq!(fold.report().unwrap().exit_code, Some(1));

    // Resumed: `c` runs again, with its attempts counted on.
    apply(
        &mut fold,
        EventBody::RunResumed {
            restarted: Vec::new(),
            pending: vec!["c".into()],
            integration_commit: MERGE.into(),
            retried: vec!["c".into()],
            merged: Vec::new(),
            rebuilt: None,
        },
    );
    assert_eq!(fold.status(c), TaskStatus::Pending);
    assert_eq!(fold.task(c).unwrap().reason, None);
    assert_eq!(fold.report().unwrap().exit_code, None);
    assert_eq!(fold.state(c).unwrap().attempt, 1);
    assert_eq!(fold.status(a), TaskStatus::Merged);

    // A conflict resolved by hand: dependents start from the user's merge.
    apply(
        &mut fold,
        EventBody::TaskMerged {
            task: "c".into(),
            commit: C1.into(),
            integration_commit: FIX.into(),
            resolved: true,
        },
    );
    assert_eq!(fold.result(c), oid(FIX));

    // A merge git shows but the journal lost: `b2` succeeded, and the
    // resumed run finds its merge on the branch.
    let mut lost = RunFold::default();
    lost.apply(&event(run_started(vec![info(
        "b2",
        Isolation::Worktree,
        &[],
    )])));
    lost.apply(&event(started("b2", 1, BASE)));
    lost.apply(&event(attempt_finished("b2", 1, 0, Some(A1))));
    lost.apply(&event(finished("b2", TaskStatus::Succeeded)));
    lost.apply(&event(EventBody::RunResumed {
        restarted: Vec::new(),
        pending: Vec::new(),
        integration_commit: MERGE.into(),
        retried: Vec::new(),
        merged: vec!["b2".into()],
        rebuilt: None,
    }));
    assert_eq!(lost.status(TaskIndex::new(0)), TaskStatus::Merged);
    assert_eq!(lost.result(TaskIndex::new(0)), oid(A1));

    // An experiment: its winner's result is its own.
    let mut exp = RunFold::default();
    let variant = |id: &str| TaskInfo {
        variant_of: Some("e".into()),
        ..info(id, Isolation::Worktree, &[])
    };
    let tasks = vec![
        variant("e@1"),
        variant("e@2"),
        info("e", Isolation::Worktree, &["e@1", "e@2"]),
    ];
    apply(&mut exp, run_started(tasks));
    for (id, commit) in [("e@1", A1), ("e@2", C1)] {
        apply(&mut exp, started(id, 1, BASE));
        apply(&mut exp, attempt_finished(id, 1, 0, Some(commit)));
        apply(&mut exp, finished(id, TaskStatus::Succeeded));
    }
    let ranked = |task: &str, variant: u32, rank: u32| swarm_protocol::experiment::Ranked {
        task: task.into(),
        variant,
        values: Default::default(),
        rank: Some(rank),
        ineligible: None,
        status: TaskStatus::Succeeded,
        score: Some(f64::from(rank)),
        verify_passed: None,
        tokens: 0,
        cost_usd: 0.0,
        duration_ms: 5,
        diff: None,
        commit: None,
        git_ref: None,
    };
    apply(
        &mut exp,
        EventBody::ExperimentDecided {
            task: "e".into(),
            decision: swarm_protocol::experiment::Decision {
                pick: swarm_protocol::experiment::Pick::Min,
                winner: Some("e@2".into()),
                ranking: vec![ranked("e@2", 2, 1), ranked("e@1", 1, 2)],
                saved: None,
            },
        },
    );
    apply(&mut exp, finished("e", TaskStatus::Succeeded));
    assert_eq!(exp.result(TaskIndex::new(2)), oid(C1));
    assert_eq!(exp.state(TaskIndex::new(2)).unwrap().base, oid(BASE));
    let e = &exp.report().unwrap().tasks[2];
    assert_eq!(e.git_ref.as_deref(), Some("refs/swarm/r/e@2"));
    assert_eq!(
        e.experiment.as_ref().unwrap().winner.as_deref(),
        Some("e@2")
    );
    assert_eq!(
        exp.report().unwrap().tasks[0].variant_of.as_deref(),
        Some("e")
    );

    // The run-wide verify: its runs are listed; the merge that broke it
    // is taken out, with its merged dependent's.
    let mut verify = RunFold::default();
    apply(
        &mut verify,
        run_started(vec![
            info("v", Isolation::Worktree, &[]),
            info("w", Isolation::Worktree, &["v"]),
        ]),
    );
    for (task, commit) in [("v", A1), ("w", C1)] {
        apply(&mut verify, started(task, 1, BASE));
        apply(&mut verify, attempt_finished(task, 1, 0, Some(commit)));
        apply(&mut verify, finished(task, TaskStatus::Succeeded));
        apply(
            &mut verify,
            EventBody::TaskMerged {
                task: task.into(),
                commit: commit.into(),
                integration_commit: MERGE.into(),
                resolved: false,
            },
        );
    }
    apply(
        &mut verify,
        EventBody::RunVerified {
            run: swarm_protocol::verify::VerifyRun {
                commit: MERGE.into(),
                tree: None,
                attempt: 0,
                round: None,
                purpose: swarm_protocol::verify::VerifyPurpose::Tip,
                after: Some("w".into()),
                passed: false,
                outcome: AttemptOutcome::Exited { code: 1 },
                duration_ms: 7,
                stdout_log: "/l/1.out".into(),
                stderr_log: "/l/1.err".into(),
                tail: Some("BAD".into()),
            },
        },
    );
    assert_eq!(verify.report().unwrap().verify_runs.len(), 1);
    apply(
        &mut verify,
        EventBody::VerifyBroken {
            task: "v".into(),
            commit: MERGE.into(),
            passed_commit: BASE.into(),
            integration_commit: BASE.into(),
            unmerged: vec!["w".into()],
            conflicted: Vec::new(),
            reason: "its merge broke the run-wide verify".into(),
        },
    );
    assert_eq!(verify.status(TaskIndex::new(0)), TaskStatus::BrokeVerify);
    assert_eq!(verify.status(TaskIndex::new(1)), TaskStatus::Blocked);
    // Their refs are what they give, no longer their merges.
    assert_eq!(verify.result(TaskIndex::new(0)), oid(A1));
    assert_eq!(verify.state(TaskIndex::new(1)).unwrap().merged, None);
    assert!(
        verify.report().unwrap().tasks[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("`v`")
    );
    assert_eq!(verify.report().unwrap().integration_commit, BASE);
    // The merge queue's numbers follow the runs and the culprits.
    let stats = verify.report().unwrap().merge_queue.clone().unwrap();
    assert_eq!((stats.runs, stats.culprits), (1, 1));
    // A failure no removal explains names tasks, as evidence.
    apply(
        &mut verify,
        EventBody::VerifyNamed {
            named: swarm_protocol::verify::VerifyNamed {
                commit: MERGE.into(),
                tasks: vec![swarm_protocol::verify::NamedTask {
                    task: "w".into(),
                    places: vec!["src/w.rs:3".into()],
                    by: "paths".into(),
                }],
                reason: "its failure names `w`".into(),
            },
        },
    );
    let named = verify.report().unwrap().verify_named.clone().unwrap();
    assert_eq!(named.tasks[0].task, "w");

    // A cluster job: its id from the start, its node once placed; a
    // retry is another job.
    let mut job = RunFold::default();
    apply(
        &mut job,
        run_started(vec![info("j", Isolation::Worktree, &[])]),
    );
    for (attempt, id, node) in [(1, "41", "n2"), (2, "57", "n3")] {
        apply(
            &mut job,
            EventBody::TaskStarted {
                task: "j".into(),
                attempt,
                base_commit: BASE.into(),
                workdir: String::new(),
                job: Some(id.into()),
                setup_ms: None,
                setup_run: None,
                max_file_size: None,
            },
        );
        assert_eq!(
            job.state(TaskIndex::new(0)).unwrap().job.as_deref(),
            Some(id)
        );
        apply(
            &mut job,
            EventBody::AttemptPlaced {
                task: "j".into(),
                attempt,
                job: id.into(),
                node: node.into(),
            },
        );
    }
    // A job's `[setup]` on its node comes with its record.
    apply(
        &mut job,
        EventBody::AttemptSetUp {
            task: "j".into(),
            attempt: 2,
            setup: swarm_protocol::SetupRun {
                ms: 30,
                reused: true,
                waited_ms: 0,
                layered: false,
            },
        },
    );
    let j = &job.report().unwrap().tasks[0];
    assert_eq!((j.setup_ms, j.setup_reused), (30, true));
    let jobs = &job.report().unwrap().tasks[0].jobs;
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        (jobs[1].job.as_str(), jobs[1].node.as_deref()),
        ("57", Some("n3"))
    );

    // Subtasks: spawned children join the report; the merge of the
    // subtree is the parent's result; a resumed parent waits again.
    let mut tree = RunFold::default();
    apply(
        &mut tree,
        run_started(vec![info("p", Isolation::Worktree, &[])]),
    );
    apply(&mut tree, started("p", 1, BASE));
    apply(&mut tree, attempt_finished("p", 1, 0, Some(A1)));
    apply(
        &mut tree,
        EventBody::SubtasksSpawned {
            task: "p".into(),
            attempt: 1,
            tasks: vec![info("p/c", Isolation::Worktree, &[])],
            request: "[[task]]\nid = \"c\"\nrun = \"true\"\n".into(),
            deadline: None,
        },
    );
    assert_eq!(tree.index("p/c"), Some(TaskIndex::new(1)));
    assert_eq!(tree.status(TaskIndex::new(0)), TaskStatus::Running);
    let report = tree.report().unwrap();
    assert_eq!(report.tasks[0].subtasks, ["p/c"]);
    assert_eq!(report.tasks[1].parent.as_deref(), Some("p"));
    assert!(tree.state(TaskIndex::new(0)).unwrap().spawned.is_some());
    apply(&mut tree, started("p/c", 1, A1));
    apply(&mut tree, attempt_finished("p/c", 1, 0, Some(C1)));
    apply(&mut tree, finished("p/c", TaskStatus::Succeeded));
    apply(
        &mut tree,
        EventBody::SubtasksMerged {
            task: "p".into(),
            commit: FIX.into(),
        },
    );
    assert_eq!(tree.result(TaskIndex::new(0)), oid(FIX));
    apply(&mut tree, finished("p", TaskStatus::Cancelled));
    tree.apply(&event(EventBody::RunResumed {
        restarted: Vec::new(),
        pending: vec!["p".into()],
        integration_commit: BASE.into(),
        retried: Vec::new(),
        merged: Vec::new(),
        rebuilt: None,
    }));
    assert_eq!(tree.status(TaskIndex::new(0)), TaskStatus::Running);

    // A replanned task: its line starts at its base, not its failed result.
    let mut re = RunFold::default();
    apply(
        &mut re,
        run_started(vec![info("f", Isolation::Worktree, &[])]),
    );
    apply(&mut re, started("f", 1, BASE));
    apply(&mut re, attempt_finished("f", 1, 1, Some(A1)));
    apply(
        &mut re,
        EventBody::ReplanStarted {
            task: "f".into(),
            round: 1,
            rounds: 2,
            reason: "exited with code 1".into(),
        },
    );
    assert_eq!(re.status(TaskIndex::new(0)), TaskStatus::Running);
    assert_eq!(re.state(TaskIndex::new(0)).unwrap().line_start(), oid(A1));
    apply(
        &mut re,
        EventBody::Replanned {
            task: "f".into(),
            round: 1,
            reason: "why".into(),
            diff: "- a\n+ b\n".into(),
            error: None,
        },
    );
    assert_eq!(re.state(TaskIndex::new(0)).unwrap().line_start(), oid(BASE));
    assert_eq!(
        re.report().unwrap().tasks[0].replanned.as_deref(),
        Some("why")
    );

    // A task whose result conflicted runs again: pending, with no result
    // to merge, its re-runs counted; a held task changes nothing.
    let mut again = RunFold::default();
    apply(
        &mut again,
        run_started(vec![info("r", Isolation::Worktree, &[])]),
    );
    apply(
        &mut again,
        EventBody::TaskHeld {
            task: "r".into(),
            behind: "q".into(),
            files: vec!["x".into()],
        },
    );
    assert_eq!(again.status(TaskIndex::new(0)), TaskStatus::Pending);
    apply(&mut again, started("r", 1, BASE));
    apply(&mut again, attempt_finished("r", 1, 0, Some(A1)));
    apply(&mut again, finished("r", TaskStatus::Succeeded));
    apply(
        &mut again,
        EventBody::TaskConflicted {
            task: "r".into(),
            commit: A1.into(),
            files: vec!["x".into()],
            hunks: Vec::new(),
            touched_by: Vec::new(),
        },
    );
    apply(
        &mut again,
        EventBody::TaskRequeued {
            task: "r".into(),
            base_commit: MERGE.into(),
            rerun: 1,
            reruns: 2,
            repair: false,
            note: Some("the other side".into()),
        },
    );
    assert_eq!(again.status(TaskIndex::new(0)), TaskStatus::Pending);
    assert_eq!(again.result(TaskIndex::new(0)), None);
    let r = &again.report().unwrap().tasks[0];
    assert_eq!(r.conflict_reruns, 1);
    assert!(r.conflict_files.is_empty());

    assert_eq!(
        seen,
        schema_event_names(),
        "every event of the committed schema replays through the fold"
    );
}

#[test]
fn events_before_the_run_started_change_nothing() {
    let mut fold = RunFold::default();
    fold.apply(&event(started("a", 1, BASE)));
    assert!(fold.report().is_none());
    assert_eq!(fold.status(TaskIndex::new(0)), TaskStatus::Pending);
    assert_eq!(fold.result(TaskIndex::new(0)), None);
}

#[test]
fn tasks_are_found_by_id_and_a_repeated_id_is_the_first_one() {
    let mut fold = RunFold::default();
    assert_eq!(fold.index("a"), None);
    fold.apply(&event(run_started(vec![
        info("a", Isolation::Worktree, &[]),
        info("b", Isolation::Worktree, &["a"]),
        // Plans refuse a repeated id; a journal written by hand may not.
        info("a", Isolation::Readonly, &[]),
    ])));
    assert_eq!(fold.index("a"), Some(TaskIndex::new(0)));
    assert_eq!(fold.index("b"), Some(TaskIndex::new(1)));
    assert_eq!(fold.index("c"), None);
    fold.apply(&event(finished("a", TaskStatus::Failed)));
    assert_eq!(fold.status(TaskIndex::new(0)), TaskStatus::Failed);
    assert_eq!(fold.status(TaskIndex::new(2)), TaskStatus::Pending);
}

/// A run's dispatcher numbers the tasks as its task table does, whatever
/// order `run_started` lists them in (merge order), and a subtask joins
/// the numbering when it is numbered again.
#[test]
fn tasks_are_reached_by_the_runs_numbering_once_numbered() {
    let mut fold = RunFold::default();
    fold.apply(&event(run_started(vec![
        info("b", Isolation::Worktree, &[]),
        info("a", Isolation::Worktree, &["b"]),
    ])));
    // Unnumbered (a reader of the journal): in `run_started`'s order.
    assert_eq!(fold.index("a"), Some(TaskIndex::new(1)));
    assert_eq!(fold.number(["x"]), Err("x"));
    fold.number(["a", "b"]).unwrap();
    assert_eq!(fold.index("a"), Some(TaskIndex::new(0)));
    assert_eq!(fold.index("b"), Some(TaskIndex::new(1)));
    fold.apply(&event(finished("a", TaskStatus::Failed)));
    assert_eq!(fold.status(TaskIndex::new(0)), TaskStatus::Failed);
    assert_eq!(fold.status(TaskIndex::new(1)), TaskStatus::Pending);
    assert_eq!(fold.task(TaskIndex::new(1)).unwrap().id, "b");
    // Past the numbering: nothing known yet.
    assert_eq!(fold.status(TaskIndex::new(2)), TaskStatus::Pending);
    assert!(fold.state(TaskIndex::new(2)).is_none());
}
