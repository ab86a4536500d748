//! Tasks "on deck": an unconfined run hands the launcher a slot's next
//! ready task while the slot's command still runs, and the launcher starts
//! it the moment that command is reaped. Seen from outside, nothing may
//! change but the speed: never more commands at once than `concurrency`,
//! a task's `timeout` counted from its own start, `on_failure = "stop"`
//! starting nothing after a failure, a cancelled run starting nothing more,
//! and the journal saying a task started only when it did.

use crate::support::{TestRepo, signal, task, wait_until};

/// The journal's events of run `run`.
fn events(repo: &TestRepo, run: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(repo.path().join(format!(".swarm/runs/{run}/events.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Whether the journal says task `id` started.
fn started(events: &[serde_json::Value], id: &str) -> bool {
    events
        .iter()
        .any(|e| e["event"] == "task_started" && e["task"] == id)
}

#[test]
fn never_more_commands_at_once_than_concurrency_and_each_task_runs_once() {
    let repo = TestRepo::new();
    let log = repo.outside().join("spans");
    // 60 short tasks, 3 at a time; each notes when its command began and
    // ended (nanoseconds), so the overlap can be counted afterwards.
    let plan = repo.plan(
        "many.toml",
        &format!(
            "[swarm]\nsandbox = \"none\"\nconcurrency = 3\n\n\
             [[task]]\nid = \"t-{{n}}\"\nisolation = \"readonly\"\n\
             run = \"echo $(date +%s%N) 1 {{n}} >> {log}; sleep 0.0$(({{n}} % 5)); echo $(date +%s%N) -1 {{n}} >> {log}\"\n\
             matrix = {{ n = [{}] }}\n",
            (0..60).map(|n| n.to_string()).collect::<Vec<_>>().join(", "),
            log = log.display(),
        ),
    );
    repo.run_plan(&plan, &["--name", "many"]).assert_code(0);
    let mut spans: Vec<(u128, i32, u32)> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(spans.len(), 120, "each task runs exactly once");
    // Ends before starts at the same instant.
    spans.sort_by_key(|&(at, delta, _)| (at, delta));
    let (mut now, mut most) = (0, 0);
    for (_, delta, _) in &spans {
        now += delta;
        most = most.max(now);
    }
    assert!(most <= 3, "{most} commands ran at once with concurrency 3");
    let events = events(&repo, "many");
    for n in 0..60 {
        let id = format!("t-{n}");
        let count = events
            .iter()
            .filter(|e| e["event"] == "task_started" && e["task"] == id.as_str())
            .count();
        assert_eq!(count, 1, "{id} started {count} times");
    }
}

#[test]
fn a_task_on_deck_has_its_whole_timeout_from_its_own_start() {
    let repo = TestRepo::new();
    // One slot: `second` waits behind `first` (1.5 s) and has a 1 s
    // timeout, which would have passed while it waited if it counted from
    // its hand-over rather than from its start.
    let plan = repo.plan(
        "timeout.toml",
        "[swarm]\nsandbox = \"none\"\nconcurrency = 1\n\n\
         [[task]]\nid = \"first\"\nisolation = \"readonly\"\nrun = \"sleep 1.5\"\n\n\
         [[task]]\nid = \"second\"\nisolation = \"readonly\"\ntimeout = \"1s\"\nrun = \"sleep 0.3\"\n",
    );
    repo.run_plan(&plan, &["--name", "timeout"]).assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "second")["status"], "succeeded", "{report}");
    // It started once the first one's command ended (1.5 s after that
    // one's start, not when it was handed over), and its duration is its
    // own.
    let events = events(&repo, "timeout");
    let started_at = |id: &str| {
        let e = events
            .iter()
            .find(|e| e["event"] == "task_started" && e["task"] == id)
            .unwrap();
        humantime::parse_rfc3339(e["ts"].as_str().unwrap()).unwrap()
    };
    let gap = started_at("second")
        .duration_since(started_at("first"))
        .unwrap();
    assert!(gap >= std::time::Duration::from_millis(1_450), "{gap:?}");
    let took = task(&report, "second")["duration_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("{report}"));
    assert!((250..1_200).contains(&took), "{took} ms");
}

#[test]
fn after_a_failure_the_task_on_deck_does_not_start_under_on_failure_stop() {
    let repo = TestRepo::new();
    let marker = repo.outside().join("ran");
    let plan = repo.plan(
        "stop.toml",
        &format!(
            "[swarm]\nsandbox = \"none\"\nconcurrency = 1\n\n\
             [[task]]\nid = \"fails\"\nisolation = \"readonly\"\nrun = \"sleep 0.3; exit 1\"\n\n\
             [[task]]\nid = \"next\"\nisolation = \"readonly\"\nrun = \"touch {0}\"\n\n\
             [[task]]\nid = \"third\"\nisolation = \"readonly\"\nrun = \"touch {0}\"\n",
            marker.display()
        ),
    );
    repo.run_plan(&plan, &["--name", "stop"]).assert_code(1);
    assert!(!marker.exists(), "a task after the failure ran");
    let report = repo.report();
    let events = events(&repo, "stop");
    // Both were on deck, one behind the other.
    for id in ["next", "third"] {
        let t = task(&report, id);
        assert_eq!(t["status"], "skipped", "{report}");
        assert_eq!(
            t["reason"],
            "the run stopped after a failure before it started"
        );
        assert!(!started(&events, id));
    }
}

#[test]
fn after_a_failure_the_task_on_deck_still_runs_under_on_failure_continue() {
    let repo = TestRepo::new();
    let marker = repo.outside().join("runs");
    let plan = repo.plan(
        "continue.toml",
        &format!(
            "[swarm]\nsandbox = \"none\"\nconcurrency = 1\non_failure = \"continue\"\n\n\
             [[task]]\nid = \"fails\"\nisolation = \"readonly\"\nrun = \"sleep 0.3; exit 1\"\n\n\
             [[task]]\nid = \"next\"\nisolation = \"readonly\"\nrun = \"echo once >> {}\"\n",
            marker.display()
        ),
    );
    repo.run_plan(&plan, &["--name", "continue"]).assert_code(1);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "once\n");
    let report = repo.report();
    assert_eq!(task(&report, "next")["status"], "succeeded", "{report}");
}

#[test]
fn a_cancelled_run_starts_nothing_that_waited_on_deck() {
    let repo = TestRepo::new();
    let (ready, marker) = (repo.outside().join("ready"), repo.outside().join("ran"));
    let plan = repo.plan(
        "cancel.toml",
        &format!(
            "[swarm]\nsandbox = \"none\"\nconcurrency = 1\non_failure = \"continue\"\n\n\
             [[task]]\nid = \"long\"\nisolation = \"readonly\"\nrun = \"touch {}; sleep 30\"\n\n\
             [[task]]\nid = \"next\"\nisolation = \"readonly\"\nrun = \"touch {1}\"\n\n\
             [[task]]\nid = \"third\"\nisolation = \"readonly\"\nrun = \"touch {1}\"\n",
            ready.display(),
            marker.display()
        ),
    );
    let mut child = repo
        .swarm_cmd(&[
            "run",
            plan.to_str().unwrap(),
            "--name",
            "cancel",
            "--grace",
            "1s",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the first task to start", || ready.exists());
    signal(&child, nix::sys::signal::Signal::SIGINT);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(!marker.exists(), "a task on deck ran after the cancel");
    let report = repo.report();
    let events = events(&repo, "cancel");
    for id in ["next", "third"] {
        let t = task(&report, id);
        assert_eq!(t["status"], "cancelled", "{report}");
        assert_eq!(t["reason"], "the run was cancelled before it started");
        assert!(!started(&events, id));
    }
}

#[test]
fn what_waits_on_deck_stays_bounded_when_the_coordinator_falls_behind() {
    let repo = TestRepo::new();
    // Commands far shorter than the coordinator's step (a debug build's),
    // so that it falls behind them: what it has set up at once (each
    // attempt's private tmp exists from its set-up to its end) must stay
    // within the places and the deck's bound, not grow with how far behind
    // it is.
    let plan = repo.plan(
        "behind.toml",
        &format!(
            "[swarm]\nsandbox = \"none\"\nconcurrency = 2\n\n\
             [[task]]\nid = \"t-{{n}}\"\nisolation = \"readonly\"\nrun = \"true\"\n\
             matrix = {{ n = [{}] }}\n",
            (0..3000)
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    );
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--name", "behind", "-q"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tmp = repo.path().join(".swarm/runs/behind/tmp");
    let mut most = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            most = most.max(entries.count());
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    // Two places, each with a task whose command ended but whose end is
    // not yet handled, and two on deck per place: 8, with room for the
    // moments between a directory's removal and the next one's making
    // (without the bound in all it was over 50 in 1,500 tasks, and grows).
    assert!(most <= 30, "{most} attempts were set up at once");
}
