//! Unit tests of what users see: progress lines and conflicting hunks.

use swarm_protocol::agent::Usage;
use swarm_protocol::{Event, EventBody, Isolation, TaskInfo, TaskKind, TaskStatus};

use super::Progress;

fn event(body: EventBody) -> Event {
    Event {
        v: 1,
        ts: String::new(),
        body,
    }
}

fn started(ids: &[&str]) -> EventBody {
    EventBody::RunStarted {
        run: "r".into(),
        plan: String::new(),
        repo: String::new(),
        base: "HEAD".into(),
        base_commit: "0".repeat(40),
        integration_branch: Some("swarm/r".into()),
        concurrency: 1,
        worktrees: None,
        origin: None,
        base_branch: None,
        tasks: ids
            .iter()
            .map(|id| TaskInfo {
                id: (*id).into(),
                kind: TaskKind::Command,
                isolation: Isolation::Worktree,
                deps: vec![],
                variant_of: None,
            })
            .collect(),
    }
}

fn finished(task: &str, status: TaskStatus) -> EventBody {
    EventBody::TaskFinished {
        task: task.into(),
        status,
        reason: None,
    }
}

#[test]
fn a_conflicted_task_is_counted_once() {
    let mut p = Progress::new();
    let mut lines = Vec::new();
    for body in [
        started(&["a", "b", "c", "d"]),
        finished("a", TaskStatus::Succeeded),
        finished("b", TaskStatus::Succeeded),
        finished("c", TaskStatus::Succeeded),
        finished("c", TaskStatus::Conflicted),
        finished("d", TaskStatus::Succeeded),
    ] {
        lines.extend(p.lines(&event(body)));
    }
    let counters: Vec<_> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('[')))
        .collect();
    assert_eq!(counters, ["[1/4]", "[2/4]", "[3/4]", "[3/4]", "[4/4]"]);
    assert_eq!(
        p.block()[0],
        "  -- 0 running, 0 queued, 4/4 done (1 failed), critical path left 0 --"
    );
}

#[test]
fn the_block_shows_an_agents_tool_and_spending() {
    let mut p = Progress::new();
    let info = |id: &str, kind| TaskInfo {
        id: id.into(),
        kind,
        isolation: Isolation::Worktree,
        deps: vec![],
        variant_of: None,
    };
    for body in [
        EventBody::RunStarted {
            run: "r".into(),
            plan: String::new(),
            repo: String::new(),
            base: "HEAD".into(),
            base_commit: "0".repeat(40),
            integration_branch: Some("swarm/r".into()),
            concurrency: 2,
            worktrees: None,
            origin: None,
            base_branch: None,
            tasks: vec![
                info("core", TaskKind::Agent),
                info("docs", TaskKind::Command),
            ],
        },
        EventBody::TaskStarted {
            task: "core".into(),
            attempt: 1,
            base_commit: "0".repeat(40),
            workdir: String::new(),
            job: None,
            setup_ms: None,
            setup_run: None,
            max_file_size: None,
        },
        EventBody::AgentTool {
            task: "core".into(),
            name: "bash".into(),
            detail: "bash cargo check -p core".into(),
        },
        EventBody::AgentUsage {
            task: "core".into(),
            turn: 3,
            usage: Usage::default(),
            total: Usage {
                input_tokens: 12000,
                output_tokens: 345,
                ..Usage::default()
            },
            cost_usd: 0.0412,
        },
    ] {
        let _ = p.lines(&event(body));
    }
    let block = p.block();
    assert_eq!(
        block[0],
        "  -- 1 running, 1 queued, 0/2 done (0 failed), critical path left 1, 12345 tokens, $0.0412 --"
    );
    assert!(
        block[1].starts_with("  > core     agent "),
        "{:?}",
        block[1]
    );
    assert!(
        block[1].ends_with("s  12345 tok $0.0412  bash cargo check -p core"),
        "{:?}",
        block[1]
    );
}

#[test]
fn with_a_duration_history_the_critical_path_left_is_in_time() {
    let mut p = Progress::new();
    p.expected = Some((
        [("a".to_string(), 3_000), ("b".to_string(), 65_000)]
            .into_iter()
            .collect(),
        2_000,
    ));
    let mut body = started(&["a", "b", "c", "d"]);
    // a -> b -> c; d alone. c is unknown: the fallback's 2 s.
    if let EventBody::RunStarted { tasks, .. } = &mut body {
        tasks[1].deps = vec!["a".into()];
        tasks[2].deps = vec!["b".into()];
    }
    let _ = p.lines(&event(body));
    assert_eq!(
        p.block()[0],
        "  -- 0 running, 4 queued, 0/4 done (0 failed), critical path left ~1m10s --"
    );
    let _ = p.lines(&event(finished("a", TaskStatus::Succeeded)));
    let _ = p.lines(&event(finished("b", TaskStatus::Succeeded)));
    // What is left: c (2 s) or d (2 s).
    assert_eq!(
        p.block()[0],
        "  -- 0 running, 2 queued, 2/4 done (0 failed), critical path left ~2s --"
    );
}

#[test]
fn conflicting_hunks_name_each_file_once() {
    let hunk = |path: &str, start, end| swarm_protocol::ConflictHunk {
        path: path.into(),
        start,
        end,
    };
    let hunks = [
        hunk("src/lib.rs", 3, 5),
        hunk("CHANGELOG.md", 7, 7),
        hunk("src/lib.rs", 10, 10),
    ];
    assert_eq!(
        crate::view::summary::hunks_by_file(&hunks),
        "src/lib.rs lines 3-5, 10; CHANGELOG.md line 7"
    );
}
