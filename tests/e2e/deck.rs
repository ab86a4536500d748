//! Tasks "on deck": a run hands its launcher (the sandbox's, or that of
//! unconfined commands) a slot's next ready task while the slot's command
//! still runs, and the launcher starts it the moment that command ends. Seen from outside, nothing may
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

/// What task `id` printed (its first attempt's stdout), `None` if it has
/// no log: it never ran.
fn printed(repo: &TestRepo, run: &str, id: &str) -> Option<String> {
    std::fs::read_to_string(
        repo.path()
            .join(format!(".swarm/runs/{run}/logs/{id}/1.out")),
    )
    .ok()
}

/// Whether a sandboxed variant can run here (see `sandbox_available`).
fn can_run(repo: &TestRepo, sandbox: &str) -> bool {
    sandbox == "none" || crate::sandbox::sandbox_available(repo)
}

/// Every test runs unconfined and sandboxed: each launcher has a deck.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod unconfined {
            $( #[test] fn $name() { super::$name("none") } )*
        }
        mod sandboxed {
            $( #[test] fn $name() { super::$name("landlock") } )*
        }
    };
}

both!(
    never_more_commands_at_once_than_concurrency_and_each_task_runs_once,
    a_task_on_deck_has_its_whole_timeout_from_its_own_start,
    after_a_failure_the_task_on_deck_does_not_start_under_on_failure_stop,
    after_a_failure_the_task_on_deck_still_runs_under_on_failure_continue,
    a_cancelled_run_starts_nothing_that_waited_on_deck,
);

fn never_more_commands_at_once_than_concurrency_and_each_task_runs_once(sandbox: &str) {
    let repo = TestRepo::new();
    if !can_run(&repo, sandbox) {
        return;
    }
    // 60 short tasks, 3 at a time; each prints when its command began and
    // ended (nanoseconds), so the overlap can be counted afterwards.
    let plan = repo.plan(
        "many.toml",
        &format!(
            "[swarm]\nsandbox = \"{sandbox}\"\nconcurrency = 3\n\n\
             [[task]]\nid = \"t-{{n}}\"\nisolation = \"readonly\"\n\
             run = \"echo $(date +%s%N) 1; sleep 0.0$(({{n}} % 5)); echo $(date +%s%N) -1\"\n\
             matrix = {{ n = [{}] }}\n",
            (0..60)
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    );
    repo.run_plan(&plan, &["--name", "many"]).assert_code(0);
    let mut spans: Vec<(u128, i32)> = (0..60)
        .flat_map(|n| {
            let out = printed(&repo, "many", &format!("t-{n}")).unwrap_or_default();
            let lines: Vec<(u128, i32)> = out
                .lines()
                .map(|l| {
                    let mut f = l.split_whitespace();
                    (
                        f.next().unwrap().parse().unwrap(),
                        f.next().unwrap().parse().unwrap(),
                    )
                })
                .collect();
            assert_eq!(lines.len(), 2, "t-{n} runs exactly once: {out}");
            lines
        })
        .collect();
    // Ends before starts at the same instant.
    spans.sort();
    let (mut now, mut most) = (0, 0);
    for (_, delta) in &spans {
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

fn a_task_on_deck_has_its_whole_timeout_from_its_own_start(sandbox: &str) {
    let repo = TestRepo::new();
    if !can_run(&repo, sandbox) {
        return;
    }
    // One slot: `second` waits behind `first` (1.5 s) and has a 1 s
    // timeout, which would have passed while it waited if it counted from
    // its hand-over rather than from its start.
    let plan = repo.plan(
        "timeout.toml",
        &format!(
            "[swarm]\nsandbox = \"{sandbox}\"\nconcurrency = 1\n\n\
             [[task]]\nid = \"first\"\nisolation = \"readonly\"\nrun = \"sleep 1.5\"\n\n\
             [[task]]\nid = \"second\"\nisolation = \"readonly\"\ntimeout = \"1s\"\nrun = \"sleep 0.3\"\n"
        ),
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

fn after_a_failure_the_task_on_deck_does_not_start_under_on_failure_stop(sandbox: &str) {
    let repo = TestRepo::new();
    if !can_run(&repo, sandbox) {
        return;
    }
    let plan = repo.plan(
        "stop.toml",
        &format!(
            "[swarm]\nsandbox = \"{sandbox}\"\nconcurrency = 1\n\n\
             [[task]]\nid = \"fails\"\nisolation = \"readonly\"\nrun = \"sleep 0.3; exit 1\"\n\n\
             [[task]]\nid = \"next\"\nisolation = \"readonly\"\nrun = \"echo ran\"\n\n\
             [[task]]\nid = \"third\"\nisolation = \"readonly\"\nrun = \"echo ran\"\n"
        ),
    );
    repo.run_plan(&plan, &["--name", "stop"]).assert_code(1);
    let report = repo.report();
    let events = events(&repo, "stop");
    // Both were on deck, one behind the other.
    for id in ["next", "third"] {
        assert_eq!(
            printed(&repo, "stop", id),
            None,
            "{id} ran after the failure"
        );
        let t = task(&report, id);
        assert_eq!(t["status"], "skipped", "{report}");
        assert_eq!(
            t["reason"],
            "the run stopped after a failure before it started"
        );
        assert!(!started(&events, id));
    }
}

fn after_a_failure_the_task_on_deck_still_runs_under_on_failure_continue(sandbox: &str) {
    let repo = TestRepo::new();
    if !can_run(&repo, sandbox) {
        return;
    }
    let plan = repo.plan(
        "continue.toml",
        &format!(
            "[swarm]\nsandbox = \"{sandbox}\"\nconcurrency = 1\non_failure = \"continue\"\n\n\
             [[task]]\nid = \"fails\"\nisolation = \"readonly\"\nrun = \"sleep 0.3; exit 1\"\n\n\
             [[task]]\nid = \"next\"\nisolation = \"readonly\"\nrun = \"echo once\"\n"
        ),
    );
    repo.run_plan(&plan, &["--name", "continue"]).assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "next")["status"], "succeeded", "{report}");
    assert_eq!(task(&report, "next")["attempts"], 1, "{report}");
    assert_eq!(
        printed(&repo, "continue", "next").as_deref(),
        Some("once\n")
    );
}

fn a_cancelled_run_starts_nothing_that_waited_on_deck(sandbox: &str) {
    let repo = TestRepo::new();
    if !can_run(&repo, sandbox) {
        return;
    }
    let plan = repo.plan(
        "cancel.toml",
        &format!(
            "[swarm]\nsandbox = \"{sandbox}\"\nconcurrency = 1\non_failure = \"continue\"\n\n\
             [[task]]\nid = \"long\"\nisolation = \"readonly\"\nrun = \"echo go; sleep 30\"\n\n\
             [[task]]\nid = \"next\"\nisolation = \"readonly\"\nrun = \"echo ran\"\n\n\
             [[task]]\nid = \"third\"\nisolation = \"readonly\"\nrun = \"echo ran\"\n"
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
    wait_until("the first task to start", || {
        printed(&repo, "cancel", "long").is_some_and(|out| out == "go\n")
    });
    signal(&child, nix::sys::signal::Signal::SIGINT);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let report = repo.report();
    let events = events(&repo, "cancel");
    for id in ["next", "third"] {
        assert_eq!(
            printed(&repo, "cancel", id),
            None,
            "{id} ran after the cancel"
        );
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
