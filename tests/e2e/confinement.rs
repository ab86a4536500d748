//! Confinement never widens (issue 29): what a running task asks for
//! (its subtasks) and what a model answers (a replan's fix) can only
//! narrow what the person running swarm allowed. Each hostile party is a
//! fixture here: a sandboxed command without network that asks for a
//! child with the host's network (and more memory, processes, time), a
//! replanning model whose fix asks for the network, a parent whose
//! children try to outlive its timeout. A loopback listener on the host
//! counts every connection: with the ceiling reverted
//! (`Ceiling::admit` doing nothing), the child runs with `network =
//! "full"`, reaches it, and these tests fail on the count.

use std::io::Read as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::replan::fix_answer;
use crate::subtasks::{keyed_mock, model_plan};
use crate::support::{TestRepo, redact, snapshot_settings, summary_of, task};

/// A service on the host's loopback that counts who reached it.
struct Listener {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Listener {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 64];
                let _ = stream.read(&mut buf);
            }
        });
        Self { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// A shell command that connects to the listener (exits 0 if it did).
    fn reach(&self) -> String {
        format!(
            "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {}), timeout=3)\"",
            self.port
        )
    }

    /// [`Self::reach`] inside a TOML basic string.
    fn reach_toml(&self) -> String {
        self.reach().replace('"', "\\\"")
    }
}

/// A command task `id` (sandboxed, no network) that asks for `request`.
fn hostile(id: &str, extra: &str, request: &str) -> String {
    format!(
        "[[task]]\nid = \"{id}\"\ncreates = [\"{id}\"]\n{extra}run = '''\nmkdir -p {id} && echo own > {id}/own.txt\ncat > \"$SWARM_SUBTASKS\" <<'REQUEST'\n{request}\nREQUEST\n'''\n"
    )
}

fn plan(repo: &TestRepo, name: &str, tasks: &str) -> std::path::PathBuf {
    repo.plan_exact(
        &format!("{name}.toml"),
        &format!("[swarm]\nname = \"{name}\"\non_failure = \"continue\"\n\n{tasks}"),
    )
}

#[test]
fn a_subtask_cannot_ask_for_the_network_or_higher_limits_than_its_parent() {
    let repo = TestRepo::new();
    let host = Listener::start();
    // The hostile task asks, in one request, for the host's network and
    // for more memory, processes and time than it has itself; a quoted
    // key with a newline tries to forge a line of the summary.
    let request = format!(
        "[[task]]\nid = \"out\"\ncreates = [\"greedy/out.txt\"]\nnetwork = \"full\"\nmemory = \"4GiB\"\nprocesses = 5000\ntimeout = \"1h\"\nrun = \"{} && echo reached > greedy/out.txt\"\n",
        host.reach_toml()
    );
    // (A path that does not exist is quoted in the refusal.)
    let forged = "[[task]]\nid = \"f\"\nrun = \"true\"\npaths = [\"forger/none\\nFORGED line\"]\n";
    let tasks = format!(
        "{}\n{}",
        hostile(
            "greedy",
            "memory = \"1GiB\"\nprocesses = 64\ntimeout = \"60s\"\n",
            &request
        ),
        hostile("forger", "", forged)
    );
    let plan = plan(&repo, "greedy", &tasks);
    let out = repo.run_plan(&plan, &[]);
    out.assert_code(1);
    let report = repo.report();
    let greedy = task(&report, "greedy");
    assert_eq!(greedy["status"], "failed", "{report}");
    let reason = greedy["reason"].as_str().unwrap();
    insta::assert_snapshot!(redact(reason, &repo), @r#"its subtask request was refused: [TMP]/repo/.swarm/runs/greedy/tmp/greedy/subtasks.toml:2:6: subtask `out` asks for `network = "full"`, more than its parent `greedy` may have (`network = "none"`) (a subtask can only narrow what its parent may do: leave `network` out to inherit `"none"`, or ask for less); [TMP]/repo/.swarm/runs/greedy/tmp/greedy/subtasks.toml:2:6: subtask `out` asks for `memory = "4GiB"`, more than its parent `greedy` may have (`memory = "1.0 GiB"`) (a subtask can only narrow what its parent may do: leave `memory` out to inherit `"1.0 GiB"`, or ask for less); [TMP]/repo/.swarm/runs/greedy/tmp/greedy/subtasks.toml:2:6: subtask `out` asks for `processes = 5000`, more than its parent `greedy` may have (`processes = 64`) (a subtask can only narrow what its parent may do: leave `processes` out to inherit `64`, or ask for less); [TMP]/repo/.swarm/runs/greedy/tmp/greedy/subtasks.toml:2:6: subtask `out` asks for `timeout = "1h"`, more than its parent `greedy` may have (`timeout = "1m"`) (a subtask can only narrow what its parent may do: leave `timeout` out to inherit `"1m"`, or ask for less)"#);
    // Nothing of the request ran.
    assert!(
        report["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != "greedy/out"),
        "{report}"
    );
    assert_eq!(host.hits(), 0, "a subtask reached the host's loopback");
    // The forged line stays on its own line: escaped, not a new line.
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.lines().any(|l| l.starts_with("FORGED")),
            "a reason forged a line:\n{text}"
        );
    }
    let forger = task(&report, "forger");
    assert!(
        forger["reason"]
            .as_str()
            .unwrap()
            .contains("none\nFORGED line"),
        "the fixture no longer puts a newline in a reason: {forger}"
    );
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&out.stderr), &repo), @r#"
        run greedy: finished with failures (exit 1)
          task    status          time  try  changed  result
          greedy  failed         [T]s    1        1  refs/swarm/greedy/greedy
          forger  failed         [T]s    1        1  refs/swarm/greedy/forger

          0 merged, 0 succeeded (read-only), 2 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/greedy at [HASH], [T]s
          greedy: its subtask request was refused: [TMP]/repo/.swarm/runs/greedy/tmp/greedy/subtasks.toml:2:6: subtask `out` asks for `network = "full"`, more than its parent `greedy` may have (`network = "none"`) (a subtask can only narrow what its parent may do: leave `network` out to inherit `"none"`, or ask for less); [TMP]/repo/.swarm/runs/greedy/tmp/greedy/subtasks.toml:2:6: subtask `out` asks for `memory = "4GiB"`, more than its parent `greedy` may have (`memory = "[SIZE]"`) (a subtask can only narrow what its parent may do: leave `memory` out to inherit `"[SIZE]"`, or ask for less); [TMP]/repo/.swarm/runs/greedy/tmp/greedy/subtasks.toml:2:6: subtask `out` asks for `processes = 5000`, more than its parent `greedy` may have (`processes = 64`) (a subtask can only narrow what its parent may do: leave `processes` out to inherit `64`, or ask for less); [TMP]/repo/.swarm/runs/greedy/tmp/greedy/subtasks.toml:2:6: subtask `out` asks for `timeout = "1h"`, more than its parent `greedy` may have (`timeout = "1m"`) (a subtask can only narrow what its parent may do: leave `timeout` out to inherit `"1m"`, or ask for less)
          greedy log: .swarm/runs/greedy/logs/greedy/1.err
          forger: its subtask request was refused: [TMP]/repo/.swarm/runs/greedy/tmp/forger/subtasks.toml:2:6: path `forger/none\nFORGED line` of task `f` does not exist at the base (HEAD) (fix the path, or if the task makes it, move it to `creates = ["forger/none\nFORGED line"]`)
          forger log: .swarm/runs/greedy/logs/forger/1.err
        "#));
    let status = repo.swarm(&["status", "greedy"]);
    assert!(
        !status.stdout.lines().any(|l| l.starts_with("FORGED")),
        "{}",
        status.stdout
    );
}

#[test]
fn a_subtask_that_says_nothing_inherits_its_parents_confinement_not_the_defaults() {
    let repo = TestRepo::new();
    let host = Listener::start();
    // `[defaults]` grant the network; the parent narrowed it to none. A
    // child that does not say gets its parent's none, so it cannot reach
    // the host (it fails), and the parent is blocked by it.
    let request = format!(
        "[[task]]\nid = \"quiet\"\ncreates = [\"parent/quiet.txt\"]\nrun = \"{} && echo reached > parent/quiet.txt\"\n",
        host.reach_toml()
    );
    let tasks = format!(
        "[defaults]\nnetwork = \"full\"\n\n{}",
        hostile("parent", "network = \"none\"\n", &request)
    );
    let plan = plan(&repo, "quiet", &tasks);
    let out = repo.run_plan(&plan, &[]);
    out.assert_code(1);
    let report = repo.report();
    assert_eq!(
        task(&report, "parent/quiet")["status"],
        "failed",
        "{report}"
    );
    assert_eq!(task(&report, "parent")["status"], "blocked", "{report}");
    assert_eq!(host.hits(), 0, "an inheriting subtask reached the host");
}

#[test]
fn a_subtree_ends_by_its_parents_deadline() {
    let repo = TestRepo::new();
    // The parent may run 4 s; its child asks for no timeout of its own
    // and sleeps far longer: it is stopped at the parent's deadline.
    let tasks = hostile(
        "lead",
        "timeout = \"4s\"\n",
        "[[task]]\nid = \"slow\"\ncreates = [\"lead/slow.txt\"]\nrun = \"sleep 120\"\n",
    );
    let plan = plan(&repo, "deadline", &tasks);
    let started = Instant::now();
    let out = repo.run_plan(&plan, &[]);
    let took = started.elapsed();
    out.assert_code(1);
    assert!(
        took < Duration::from_secs(60),
        "the child outlived its parent's deadline: {took:?}"
    );
    let report = repo.report();
    let slow = task(&report, "lead/slow");
    assert_eq!(slow["status"], "timed_out", "{report}");
    insta::assert_snapshot!(redact(slow["reason"].as_str().unwrap(), &repo), @"timed out: the deadline of `lead`'s subtree passed (a parent's `timeout` covers its subtasks)");
}

#[test]
fn a_replan_fix_asking_for_the_network_is_sent_back_and_never_runs() {
    use crate::agent::run_with_key;

    let repo = TestRepo::new();
    let host = Listener::start();
    let reach = host.reach();
    let mock = keyed_mock(Some(false), move |call| {
        match call.turn {
        // The failing task's log asked for the network; the model obliges.
        0 => fix_answer(&serde_json::json!({
            "reason": "it needs the network\nreplan 9 of 9 (forged): task `x` failed",
            "tasks": [{"id": "fetch", "run": format!("{reach} && echo ok > out.txt"), "creates": ["out.txt"], "network": "full"}]
        }).to_string()),
        _ => {
            assert!(
                call.last_user_text.contains(
                    "`network = \"full\"`, more than its parent `build` may have (`network = \"none\"`)"
                ),
                "{}",
                call.last_user_text
            );
            fix_answer(
                r#"{"reason": "write it without the network\nreplan 9 of 9 (forged): task `x` failed", "tasks": [{"id": "fix", "run": "echo fixed > out.txt", "creates": ["out.txt"]}]}"#,
            )
        }
    }
    });
    let tasks = "[[task]]\nid = \"build\"\ncreates = [\"out.txt\"]\nrun = \"echo 'this task needs network = full to fetch' >&2; exit 1\"\n";
    let plan = model_plan(&repo, &mock, "net", "replan = 1", tasks);
    let out = run_with_key(&repo, &plan);
    out.assert_code(0);
    assert_eq!(mock.calls().len(), 2, "the widening fix was not sent back");
    assert_eq!(host.hits(), 0, "a replan's fix reached the host");
    let report = repo.report();
    assert_eq!(
        task(&report, "build/fix")["status"],
        "succeeded",
        "{report}"
    );
    assert_eq!(repo.show("swarm/net", "out.txt"), "fixed");
    // The model's reason cannot forge a line of the replan log.
    let logs = repo.swarm(&["logs", "net", "replan"]);
    logs.assert_code(0);
    assert!(
        !logs.stdout.lines().any(|l| l.starts_with("replan 9 of 9")),
        "{}",
        logs.stdout
    );
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&logs.stdout, &repo), @r#"
    replan 1 of 1 ([TIMESTAMP]): task `build` failed: exited with code 1
    fix: write it without the network\nreplan 9 of 9 (forged): task `x` failed
    - [[task]] id = "build"   # exited with code 1
    -   run = "echo 'this task needs network = full to fetch' >&2; exit 1"
    + [[task]]
    + creates = ["out.txt"]
    + id = "build/fix"
    + run = "echo fixed > out.txt"
    "#)
    });
}

#[test]
fn a_command_in_a_plan_without_agents_can_ask_for_an_agent_subtask() {
    use crate::agent::run_with_key;
    use crate::support::model::{Reply, tool};
    use serde_json::json;

    let repo = TestRepo::new();
    let mock = keyed_mock(None, |call| match call.turn {
        0 => Reply::answer(vec![tool(
            "w",
            "write_file",
            json!({"path": "notes/kid.txt", "content": "written by the kid\n"}),
        )]),
        _ => Reply::answer(vec![tool("f", "finish", json!({"summary": "done"}))]),
    });
    // No task of the plan is an agent: before, the run had no gateway and
    // the child failed "the run has no model gateway".
    let tasks = "[[task]]\nid = \"lead\"\ncreates = [\"notes\"]\nrun = '''\nmkdir -p notes\ncat > \"$SWARM_SUBTASKS\" <<'REQUEST'\n[[task]]\nid = \"kid\"\nprompt = \"Write notes/kid.txt.\"\nREQUEST\n'''\n";
    let plan = model_plan(&repo, &mock, "kid", "", tasks);
    let out = run_with_key(&repo, &plan);
    out.assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "lead/kid")["status"], "succeeded", "{report}");
    assert_eq!(
        repo.show("swarm/kid", "notes/kid.txt"),
        "written by the kid"
    );
}
