//! The Slurm executor (issue 19) against a real cluster: a controller and
//! three nodes started by each test in a temporary directory
//! (`support::slurm`), jobs submitted by the real `swarm` binary, run by
//! `swarm __node` on the nodes, their results pushed to a shared bare
//! repository and merged by the coordinator.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agent::{KEY, files_under};
use crate::resume::{journal, kill9};
use crate::support::model::{MockModel, Options, Reply, Wire, tool};
use crate::support::slurm::Cluster;
use crate::support::{TestRepo, by_task, redact, snapshot_settings, summary_of, task, wait_until};

/// A plan run on the cluster (`[executor]` settings added), with short
/// polls so that the tests are quick.
fn plan(repo: &TestRepo, name: &str, executor: &str, tasks: &str) -> std::path::PathBuf {
    repo.plan_exact(
        &format!("{name}.toml"),
        &format!(
            "[swarm]\nname = \"{name}\"\n\n[executor]\nkind = \"slurm\"\npoll_interval = \"200ms\"\n{executor}\n\n[defaults]\ntimeout = \"120s\"\n\n{tasks}"
        ),
    )
}

fn run(repo: &TestRepo, cluster: &Cluster, plan: &Path, extra: &[&str]) -> crate::support::Run {
    let mut args = vec!["run", plan.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut cmd = repo.swarm_cmd(&args);
    cmd.env("SLURM_CONF", cluster.conf());
    cmd.output().unwrap().into()
}

fn spawn(repo: &TestRepo, cluster: &Cluster, args: &[&str]) -> Child {
    repo.swarm_cmd(args)
        .env("SLURM_CONF", cluster.conf())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The `attempt_placed` events of `task`: (attempt, job, node).
fn placed(events: &[Value], task: &str) -> Vec<(u64, String, String)> {
    events
        .iter()
        .filter(|e| e["event"] == "attempt_placed" && e["task"] == task)
        .map(|e| {
            (
                e["attempt"].as_u64().unwrap(),
                e["job"].as_str().unwrap().to_string(),
                e["node"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn wait_placed(repo: &TestRepo, run: &str, task: &str) -> (String, String) {
    let mut found = None;
    wait_until(&format!("{task} placed on a node"), || {
        found = placed(&journal(repo, run), task).pop();
        found.is_some()
    });
    let (_, job, node) = found.unwrap();
    (job, node)
}

/// [`snapshot_settings`], and the node a job ran on: which of the three
/// it is differs from run to run.
fn cluster_settings() -> insta::Settings {
    let mut settings = snapshot_settings();
    settings.add_filter(r"\b(on|node) n[1-3]\b", "$1 [NODE]");
    settings
}

/// Processes whose command line holds `needle` (not this test's own).
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) && !text.contains("cargo") {
            found.push(text);
        }
    }
    found
}

#[test]
fn a_graph_runs_across_the_nodes_and_is_merged_in_order() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    // Four roots at once (they overlap, so they spread over the nodes), a
    // join of them all, then a task on top of the join.
    let mut tasks = String::new();
    for k in 1..=4 {
        tasks.push_str(&format!(
            "[[task]]\nid = \"part{k}\"\ncreates = [\"parts/{k}.txt\"]\nrun = \"sleep 2; mkdir -p parts; echo {k} > parts/{k}.txt; echo wrote {k}\"\n\n"
        ));
    }
    tasks.push_str(
        "[[task]]\nid = \"join\"\ndeps = [\"part*\"]\nrun = \"cat parts/*.txt > all.txt\"\n\n\
         [[task]]\nid = \"top\"\ndeps = [\"join\"]\nrun = \"wc -l < all.txt > count.txt\"\n",
    );
    let plan = plan(&repo, "spread", "", &tasks);
    let out = run(&repo, &cluster, &plan, &[]);
    out.assert_code(0);
    assert_eq!(repo.show("swarm/spread", "all.txt"), "1\n2\n3\n4");
    assert_eq!(repo.show("swarm/spread", "count.txt").trim(), "4");
    let report = repo.report();
    let mut nodes = BTreeSet::new();
    for id in ["part1", "part2", "part3", "part4", "join", "top"] {
        let t = task(&report, id);
        assert_eq!(t["status"], "merged", "{id}: {report}");
        let jobs = t["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 1, "{id}: {t}");
        let node = jobs[0]["node"].as_str().unwrap().to_string();
        assert!(["n1", "n2", "n3"].contains(&node.as_str()), "{node}");
        nodes.insert(node);
        // The attempt's logs came back with its result (a command's log is
        // made when it first prints: the parts print, the others do not).
        let log = Path::new(t["stdout_log"].as_str().unwrap());
        match id.strip_prefix("part") {
            Some(k) => assert_eq!(
                std::fs::read_to_string(log).unwrap_or_default(),
                format!("wrote {k}\n"),
                "{id}: {t}"
            ),
            None => assert!(!log.exists(), "{id}: {t}"),
        }
    }
    assert!(nodes.len() >= 2, "all on {nodes:?}");
    // Live view and summary name jobs and nodes: each task's lines (the
    // tasks run at once: their lines come in any order, and so does the
    // count of those done), then the summary.
    let summary = summary_of(&out.stderr);
    let live = &out.stderr[..out.stderr.len() - summary.len()];
    let at = live.find("  start ").expect("a task started");
    let (header, tasks) = live.split_at(at);
    let lines = by_task(tasks.trim_end(), |l| {
        l.split_whitespace().nth(1).unwrap_or("").to_string()
    });
    let mut settings = cluster_settings();
    settings.add_filter(r"\[\d/6\]", "[k/6]");
    settings.bind(|| {
        insta::assert_snapshot!(redact(&format!("{header}{lines}\n{summary}"), &repo), @r#"
        warning: the plan grants more than swarm's defaults:
          [TMP]/plans/spread.toml:5: [executor] kind = "slurm": sends tasks and the repository to a cluster, outside this machine's sandbox
        swarm: run spread: 6 tasks, up to 1000 at once, from HEAD ([HASH]) into branch swarm/spread
          start      part1    job 1_0
          placed     part1    job 1_0 on [NODE]
          succeeded  part1    [k/6]
          merged     part1
          start      part2    job 1_1
          placed     part2    job 1_1 on [NODE]
          succeeded  part2    [k/6]
          merged     part2
          start      part3    job 1_2
          placed     part3    job 1_2 on [NODE]
          succeeded  part3    [k/6]
          merged     part3
          start      part4    job 1_3
          placed     part4    job 1_3 on [NODE]
          succeeded  part4    [k/6]
          merged     part4
          start      join     job 5_0
          placed     join     job 5_0 on [NODE]
          succeeded  join     [k/6]
          merged     join
          start      top      job 6_0
          placed     top      job 6_0 on [NODE]
          succeeded  top      [k/6]
          merged     top

        run spread: succeeded
          task   status          time  try  changed  where             result
          part1  merged         [T]s    1        1  job 1_0 on [NODE]     refs/swarm/spread/part1
          part2  merged         [T]s    1        1  job 1_1 on [NODE]     refs/swarm/spread/part2
          part3  merged         [T]s    1        1  job 1_2 on [NODE]     refs/swarm/spread/part3
          part4  merged         [T]s    1        1  job 1_3 on [NODE]     refs/swarm/spread/part4
          join   merged         [T]s    1        1  job 5_0 on [NODE]     refs/swarm/spread/join
          top    merged         [T]s    1        1  job 6_0 on [NODE]     refs/swarm/spread/top

          6 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/spread at [HASH], [T]s
        "#);
    });
    let status = repo.swarm(&["status"]);
    cluster_settings().bind(|| {
        insta::assert_snapshot!(redact(&status.stdout, &repo), @"

        run spread: succeeded
          task   status          time  try  changed  where             result
          part1  merged         [T]s    1        1  job 1_0 on [NODE]     refs/swarm/spread/part1
          part2  merged         [T]s    1        1  job 1_1 on [NODE]     refs/swarm/spread/part2
          part3  merged         [T]s    1        1  job 1_2 on [NODE]     refs/swarm/spread/part3
          part4  merged         [T]s    1        1  job 1_3 on [NODE]     refs/swarm/spread/part4
          join   merged         [T]s    1        1  job 5_0 on [NODE]     refs/swarm/spread/join
          top    merged         [T]s    1        1  job 6_0 on [NODE]     refs/swarm/spread/top

          6 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/spread at [HASH], [T]s
        ");
    });
    // JUnit names the job and node of each attempt.
    let junit = repo.root().join("junit.xml");
    let again = run(
        &repo,
        &cluster,
        &plan,
        &[
            "--name",
            "spread2",
            "--junit",
            junit.to_str().unwrap(),
            "--only",
            "part1",
        ],
    );
    again.assert_code(0);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("name=\"part1.job.1\""), "{xml}");
    assert!(xml.contains("name=\"part1.node.1\""), "{xml}");
}

/// Issue 32: the tasks ready together go out as one job array (one
/// `sbatch`, one script), each its own element, and the jobs' environment
/// is swarm's own (`--export=ALL` from a clean one): no login shell on the
/// node, nothing of the coordinator's.
#[test]
fn ready_tasks_go_out_as_one_job_array_in_an_environment_of_swarms() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    let mut tasks = String::new();
    for k in 0..10 {
        tasks.push_str(&format!(
            "[[task]]\nid = \"t{k}\"\ncreates = [\"out/{k}.txt\"]\nrun = \"mkdir -p out; echo {k} > out/{k}.txt\"\n\n"
        ));
    }
    let plan = plan(&repo, "array", "", &tasks);
    let mut cmd = repo.swarm_cmd(&["run", plan.to_str().unwrap()]);
    cmd.env("SLURM_CONF", cluster.conf()).env(
        "SWARM_TEST_COORDINATOR_ONLY",
        "only-the-coordinator-has-this",
    );
    let out = crate::support::Run::from(cmd.output().unwrap());
    out.assert_code(0);
    for k in 0..10 {
        assert_eq!(
            repo.show("swarm/array", &format!("out/{k}.txt")).trim(),
            k.to_string()
        );
    }
    let events = journal(&repo, "array");
    let mut arrays = BTreeSet::new();
    let mut indices = BTreeSet::new();
    for e in events.iter().filter(|e| e["event"] == "task_started") {
        let job = e["job"].as_str().unwrap();
        let (array, index) = job
            .split_once('_')
            .unwrap_or_else(|| panic!("{job} is no array element"));
        arrays.insert(array.to_string());
        indices.insert(index.parse::<u32>().unwrap());
    }
    assert_eq!(arrays.len(), 1, "one sbatch: {arrays:?}");
    assert_eq!(indices, (0..10).collect(), "one element per task");
    // One job record for the ten (the controller keeps one script per
    // submission), and no login environment asked for.
    let mut scripts = 0;
    for file in files_under(cluster.dir()) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("only-the-coordinator-has-this"),
            "the coordinator's environment is in {}",
            file.display()
        );
        if file.file_name().is_some_and(|n| n == "environment") {
            assert!(!text.contains("SLURM_GET_USER_ENV=1"), "{}", file.display());
        }
        if file.file_name().is_some_and(|n| n == "script") && text.contains("__node") {
            scripts += 1;
        }
    }
    assert_eq!(scripts, 1, "scripts under {}", cluster.dir().display());
}

#[test]
fn a_failing_job_is_retried_as_a_new_job_and_every_attempt_kept() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    let plan = plan(
        &repo,
        "retry",
        "",
        r#"[[task]]
id = "flaky"
creates = ["f.txt"]
retries = 1
run = "echo attempt $SWARM_ATTEMPT > f.txt; [ $SWARM_ATTEMPT = 2 ] || { echo boom >&2; exit 3; }"

[[task]]
id = "broken"
creates = ["b.txt"]
run = "echo tried > b.txt; echo no such thing >&2; exit 4"
"#,
    );
    let out = run(&repo, &cluster, &plan, &["--sandbox", "none"]);
    out.assert_code(1);
    let report = repo.report();
    let flaky = task(&report, "flaky");
    assert_eq!(flaky["status"], "merged", "{report}");
    assert_eq!(flaky["attempts"], 2);
    let jobs = flaky["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{flaky}");
    assert_ne!(jobs[0]["job"], jobs[1]["job"]);
    assert_eq!(repo.show("swarm/retry", "f.txt").trim(), "attempt 2");
    // The failed attempt is on its own ref, with its log.
    assert_eq!(
        repo.show("refs/swarm/retry/flaky.1", "f.txt").trim(),
        "attempt 1"
    );
    let log = repo.path().join(".swarm/runs/retry/logs/flaky/1.err");
    assert_eq!(std::fs::read_to_string(log).unwrap().trim(), "boom");
    let broken = task(&report, "broken");
    assert_eq!(broken["status"], "failed");
    assert_eq!(broken["reason"], "exited with code 4", "{broken}");
    assert_eq!(
        repo.show("refs/swarm/retry/broken", "b.txt").trim(),
        "tried"
    );
    // The job's script carries no environment of the coordinator's.
    assert_eq!(task(&report, "broken")["exit_code"], 4);
}

#[test]
fn cancelling_stops_the_job_on_its_node_and_keeps_its_work() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    let plan = plan(
        &repo,
        "stop",
        "",
        r#"[[task]]
id = "slow"
run = "echo partial > partial.txt; exec sleep 87"

[[task]]
id = "slow2"
run = "echo partial2 > partial2.txt; exec sleep 87"
"#,
    );
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap()])
        .env("SLURM_CONF", cluster.conf())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (job, _) = wait_placed(&repo, "stop", "slow");
    let (job2, _) = wait_placed(&repo, "stop", "slow2");
    // Both went out as elements of one array.
    let array = |id: &str| id.split_once('_').map(|(a, _)| a.to_string());
    assert!(
        array(&job).is_some() && array(&job) == array(&job2),
        "{job} {job2}"
    );
    wait_until("the tasks' processes run", || {
        processes_with("sleep 87").len() == 2
    });
    let started = Instant::now();
    crate::support::signal(&child, nix::sys::signal::Signal::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted run");
    assert!(started.elapsed() < Duration::from_secs(30));
    let report = repo.report();
    let slow = task(&report, "slow");
    assert_eq!(slow["status"], "cancelled", "{report}");
    assert_eq!(task(&report, "slow2")["status"], "cancelled", "{report}");
    // Their work was committed on the node and came back.
    assert_eq!(
        repo.show("refs/swarm/stop/slow", "partial.txt").trim(),
        "partial"
    );
    assert_eq!(
        repo.show("refs/swarm/stop/slow2", "partial2.txt").trim(),
        "partial2"
    );
    // Nothing of it is left on the node, and the job has ended.
    wait_until("the job's processes are gone", || {
        processes_with("sleep 87").is_empty()
    });
    for job in [&job, &job2] {
        wait_until("the job ended", || {
            cluster
                .job_state(job)
                .is_none_or(|s| s != "RUNNING" && s != "PENDING")
        });
    }
}

#[test]
fn a_node_that_dies_mid_job_costs_an_attempt_that_runs_again_elsewhere() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    let plan = plan(
        &repo,
        "nodefail",
        "",
        r#"[[task]]
id = "long"
creates = ["long.txt"]
run = "sleep 6; echo done > long.txt"
"#,
    );
    // Its live view is read below.
    let child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap()])
        .env("SLURM_CONF", cluster.conf())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (_, node) = wait_placed(&repo, "nodefail", "long");
    cluster.kill_node(&node);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let events = journal(&repo, "nodefail");
    let places = placed(&events, "long");
    assert_eq!(places.len(), 2, "{places:?}");
    assert_eq!(places[0].2, node);
    assert_ne!(places[1].2, node, "the retry ran on another node");
    let first = events
        .iter()
        .find(|e| e["event"] == "attempt_finished" && e["attempt"] == 1)
        .unwrap();
    assert_eq!(first["outcome"], "lost", "{first}");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains(&format!("its node {node} failed")),
        "{first}"
    );
    assert_eq!(repo.show("swarm/nodefail", "long.txt").trim(), "done");
    // Not only in the journal: the live view, the report and the summary
    // say it.
    // The node killed, named; the one the retry ran on is any other.
    let dead = |text: &str| {
        text.replace(&format!("on {node}"), "on [KILLED]")
            .replace(&format!("node {node}"), "node [KILLED]")
    };
    let stderr = dead(&String::from_utf8_lossy(&out.stderr));
    cluster_settings().bind(|| {
        insta::assert_snapshot!(redact(&stderr, &repo), @r#"
        warning: the plan grants more than swarm's defaults:
          [TMP]/plans/nodefail.toml:5: [executor] kind = "slurm": sends tasks and the repository to a cluster, outside this machine's sandbox
        swarm: run nodefail: 1 task, up to 1000 at once, from HEAD ([HASH]) into branch swarm/nodefail
          start      long     job 1_0
          placed     long     job 1_0 on [KILLED]
          lost       long      attempt 1: its node [KILLED] failed while job 1_0 ran (NODE_FAIL)
          start      long     (attempt 2) job 2_0
          placed     long     job 2_0 on [NODE]
          succeeded  long     [1/1]
          merged     long

        run nodefail: succeeded
          task  status          time  try  changed  where             result
          long  merged         [T]s    2        1  job 2_0 on [NODE]     refs/swarm/nodefail/long

          1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/nodefail at [HASH], [T]s
          warning: `long` attempt 1 was lost: its node [KILLED] failed while job 1_0 ran (NODE_FAIL)
        "#);
    });
    let report = repo.report();
    let warnings = crate::support::task(&report, "long")["warnings"].to_string();
    assert!(
        warnings.contains(&format!("attempt 1 was lost: its node {node} failed")),
        "{report}"
    );
    let status = repo.swarm(&["status", "nodefail"]);
    cluster_settings().bind(|| {
        insta::assert_snapshot!(redact(&dead(&status.stdout), &repo), @"

        run nodefail: succeeded
          task  status          time  try  changed  where             result
          long  merged         [T]s    2        1  job 2_0 on [NODE]     refs/swarm/nodefail/long

          1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/nodefail at [HASH], [T]s
          warning: `long` attempt 1 was lost: its node [KILLED] failed while job 1_0 ran (NODE_FAIL)
        ");
    });
}

#[test]
fn a_resumed_coordinator_adopts_running_jobs_and_collects_finished_ones() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    let plan = plan(
        &repo,
        "again",
        "",
        r#"[[task]]
id = "quick"
creates = ["quick.txt"]
run = "echo quick > quick.txt"

[[task]]
id = "slow"
creates = ["slow.txt"]
run = "sleep 8; echo slow > slow.txt"

[[task]]
id = "after"
deps = ["quick", "slow"]
run = "cat quick.txt slow.txt > both.txt"
"#,
    );
    let mut child = spawn(&repo, &cluster, &["run", plan.to_str().unwrap()]);
    let (slow_job, _) = wait_placed(&repo, "again", "slow");
    // An array's element (`quick` and `slow` went out together), which
    // resume must find again by that id.
    assert!(slow_job.contains('_'), "{slow_job}");
    kill9(&mut child);
    // While no coordinator runs, `slow` goes on on its node.
    let resumed = {
        let mut cmd = repo.swarm_cmd(&["resume", "again"]);
        cmd.env("SLURM_CONF", cluster.conf());
        crate::support::Run::from(cmd.output().unwrap())
    };
    resumed.assert_code(0);
    assert_eq!(repo.show("swarm/again", "both.txt"), "quick\nslow");
    let events = journal(&repo, "again");
    let submitted = |id: &str| {
        events
            .iter()
            .filter(|e| e["event"] == "task_started" && e["task"] == id)
            .count()
    };
    assert_eq!(
        submitted("slow"),
        1,
        "slow ran once: adopted, not started again"
    );
    assert_eq!(
        placed(&events, "slow").last().map(|p| p.1.clone()),
        Some(slow_job)
    );
    assert!(submitted("quick") <= 1);
    assert_eq!(submitted("after"), 1);
}

#[test]
fn an_agent_on_a_node_reaches_the_model_through_the_gateway_without_the_key() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        |call| match call.turn {
            0 => Reply::answer(vec![tool(
                "w",
                "write_file",
                json!({"path": "hello.txt", "content": "from a node\n"}),
            )]),
            _ => Reply::answer(vec![tool("f", "finish", json!({"summary": "done"}))]),
        },
    );
    let plan = repo.plan_exact(
        "agent.toml",
        &format!(
            r#"[swarm]
name = "agent"

[executor]
kind = "slurm"
poll_interval = "200ms"

[models.default]
provider = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{url}"
api_key_env = "TEST_MODEL_KEY"

[[task]]
id = "write"
prompt = "Write hello.txt."
timeout = "120s"
"#,
            url = mock.base_url(Wire::Anthropic)
        ),
    );
    let mut cmd = repo.swarm_cmd(&[
        "run",
        plan.to_str().unwrap(),
        "--gateway-listen",
        "127.0.0.1:0",
    ]);
    cmd.env("SLURM_CONF", cluster.conf())
        .env("TEST_MODEL_KEY", KEY);
    let out = crate::support::Run::from(cmd.output().unwrap());
    out.assert_code(0);
    mock.assert_clean();
    assert_eq!(mock.calls().len(), 2);
    assert_eq!(repo.show("swarm/agent", "hello.txt"), "from a node");
    let report = repo.report();
    let write = task(&report, "write");
    assert_eq!(
        write["jobs"][0]["node"]
            .as_str()
            .map(|n| n.starts_with('n')),
        Some(true)
    );
    // Its notes (the tool it ran, the tokens of each turn) came from its
    // node as it went: journaled before its attempt's end.
    let events = journal(&repo, "agent");
    let at = |name: &str| {
        events
            .iter()
            .position(|e| e["event"] == name && e["task"] == "write")
            .unwrap_or_else(|| panic!("no {name} of `write`: {events:#?}"))
    };
    assert!(at("agent_usage") < at("attempt_finished"));
    assert!(at("agent_tool") < at("attempt_finished"));
    // The key is in none of the cluster's files (the controller keeps
    // every job's script and environment; slurmd spools them on nodes):
    // jobs saw only the run's token.
    let (mut scripts, mut environments) = (0, 0);
    for file in files_under(cluster.dir()) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(KEY), "the key is in {}", file.display());
        // (The plan in the script names the variable; the job's
        // environment does not have it.)
        if file.file_name().is_some_and(|n| n == "environment") {
            assert!(!text.contains("TEST_MODEL_KEY"), "{}", file.display());
            environments += 1;
        }
        if text.contains("__node") {
            scripts += 1;
        }
    }
    assert!(
        scripts > 0,
        "no job script found under {}",
        cluster.dir().display()
    );
    assert!(
        environments > 0,
        "no job environment under {}",
        cluster.dir().display()
    );
}

#[test]
fn the_example_cluster_plan_runs_on_the_test_cluster() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plans/cluster-shards.toml");
    run(&repo, &cluster, &plan, &[]).assert_code(0);
    let index = repo.show("swarm/cluster-shards", ".swarm-manifest/INDEX.txt");
    // Every tracked file of the repository, indexed by six jobs.
    assert_eq!(index.lines().count(), 3, "{index}");
    assert!(index.contains("src/lib.txt"), "{index}");
    let report = repo.report();
    assert_eq!(task(&report, "index")["status"], "merged");
}

#[test]
fn a_wasm_task_runs_on_a_node_too() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    let tools = repo.root().join("plans/tools");
    std::fs::create_dir_all(&tools).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plans/tools/stamp.wasm"),
        tools.join("stamp.wasm"),
    )
    .unwrap();
    let plan = plan(
        &repo,
        "guest",
        "",
        r#"[[task]]
id = "stamp"
wasm = "tools/stamp.wasm"
args = ["src/STAMP.txt", "stamped on a node"]
creates = ["src/STAMP.txt"]
"#,
    );
    run(&repo, &cluster, &plan, &[]).assert_code(0);
    assert_eq!(
        repo.show("swarm/guest", "src/STAMP.txt").trim(),
        "stamped on a node"
    );
    let report = repo.report();
    assert!(
        task(&report, "stamp")["jobs"][0]["node"].is_string(),
        "{report}"
    );
}

/// A Slurm plan where no cluster answers (issue 30): the run stops before
/// any job with one clear line, not once per task with sbatch's raw
/// multi-line error. (No cluster is started: `SLURM_CONF` names a file
/// that does not exist.)
#[test]
fn a_slurm_plan_without_a_reachable_cluster_stops_before_any_job() {
    let repo = TestRepo::new();
    let p = plan(
        &repo,
        "nocluster",
        "",
        "[[task]]\nid = \"a\"\ncreates = [\"a.txt\"]\nrun = \"echo a > a.txt\"\n\n[[task]]\nid = \"b\"\ncreates = [\"b.txt\"]\nrun = \"echo b > b.txt\"\n",
    );
    let missing = repo.root().join("no-such-slurm.conf");
    let mut cmd = repo.swarm_cmd(&["run", p.to_str().unwrap()]);
    cmd.env("SLURM_CONF", &missing);
    let out: crate::support::Run = cmd.output().unwrap().into();
    assert_ne!(out.code, 0, "{}", out.stderr);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&out.stderr, &repo), @r#"
        warning: the plan grants more than swarm's defaults:
          [TMP]/plans/nocluster.toml:5: [executor] kind = "slurm": sends tasks and the repository to a cluster, outside this machine's sandbox
        error: failed to reach the Slurm cluster before submitting any job: `squeue` did not answer within 10s (check that its controller runs and that `squeue` works here)
        "#);
    });
    assert!(!out.stderr.contains("start      a"), "{}", out.stderr);
    let said: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("reach the Slurm cluster"))
        .collect();
    assert_eq!(said.len(), 1, "said once: {}", out.stderr);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

/// The `task_started` job ids of `run`, by task.
fn started_jobs(repo: &TestRepo, run: &str) -> Vec<(String, String)> {
    journal(repo, run)
        .iter()
        .filter(|e| e["event"] == "task_started")
        .map(|e| {
            (
                e["task"].as_str().unwrap().to_string(),
                e["job"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Issue 32: with `tasks_per_job`, the tasks that go out together share
/// array elements, run one after another on their node, and each keeps
/// its own worktree, snapshot and record; a task the duration history
/// knows to be long gets a job of its own.
#[test]
fn short_tasks_share_jobs_and_each_keeps_its_own_result() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    let mut tasks = String::new();
    for k in 1..=7 {
        tasks.push_str(&format!(
            "[[task]]\nid = \"t{k}\"\ncreates = [\"out/{k}.txt\"]\nrun = \"mkdir -p out; echo {k} > out/{k}.txt; echo did {k}\"\n\n"
        ));
    }
    let packed = plan(&repo, "packed", "tasks_per_job = 3", &tasks);
    let out = run(&repo, &cluster, &packed, &[]);
    out.assert_code(0);
    let report = repo.report();
    for k in 1..=7 {
        let id = format!("t{k}");
        let t = task(&report, &id);
        assert_eq!(t["status"], "merged", "{id}: {report}");
        assert_eq!(
            repo.show(&format!("refs/swarm/packed/{id}"), &format!("out/{k}.txt")),
            k.to_string()
        );
        assert_eq!(
            repo.show("swarm/packed", &format!("out/{k}.txt")),
            k.to_string()
        );
        // Its own logs came back with its own record.
        let log = Path::new(t["stdout_log"].as_str().unwrap());
        assert_eq!(
            std::fs::read_to_string(log).unwrap(),
            format!("did {k}\n"),
            "{id}"
        );
    }
    // Seven tasks in one array: elements of three, three and one.
    let jobs = started_jobs(&repo, "packed");
    assert_eq!(jobs.len(), 7, "{jobs:?}");
    let mut sizes: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, job) in &jobs {
        *sizes.entry(job.as_str()).or_default() += 1;
    }
    let mut counts: Vec<usize> = sizes.values().copied().collect();
    counts.sort_unstable();
    assert_eq!(counts, [1, 3, 3], "{jobs:?}");
    let arrays: BTreeSet<&str> = sizes
        .keys()
        .map(|j| j.split_once('_').map_or(*j, |(a, _)| a))
        .collect();
    assert_eq!(arrays.len(), 1, "one sbatch: {jobs:?}");

    // A second run: every task took a millisecond or more, which is
    // `pack_under` now, so each gets a job of its own.
    let alone = plan(
        &repo,
        "alone",
        "tasks_per_job = 3\npack_under = \"1ms\"",
        &tasks,
    );
    run(&repo, &cluster, &alone, &[]).assert_code(0);
    let jobs = started_jobs(&repo, "alone");
    let distinct: BTreeSet<&str> = jobs.iter().map(|(_, j)| j.as_str()).collect();
    assert_eq!((jobs.len(), distinct.len()), (7, 7), "{jobs:?}");
}

/// Cancelling one task of a shared job stops the job: the others of it
/// that had not finished run again, in jobs of their own, without using
/// up their retries.
#[test]
fn a_cancel_in_a_shared_job_runs_the_others_of_it_again() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    // The variants go first (a task waits for their experiment), then
    // `keep`: one element of three. The first variant passes at once,
    // which cancels the second while it sleeps; `keep` has not started.
    let plan = plan(
        &repo,
        "mates",
        "tasks_per_job = 3",
        r#"[[task]]
id = "exp"
creates = ["f.txt"]
variants = 2
pick = "first"
run = "if [ {variant} = 1 ]; then echo one > f.txt; else echo started > f.txt; exec sleep 89; fi"

[[task]]
id = "after"
deps = ["exp"]
run = "cat f.txt > seen.txt"

[[task]]
id = "keep"
creates = ["keep.txt"]
run = "echo kept > keep.txt"
"#,
    );
    let started = Instant::now();
    let out = run(&repo, &cluster, &plan, &[]);
    out.assert_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(80),
        "{:?}",
        started.elapsed()
    );
    let jobs = started_jobs(&repo, "mates");
    let job_of = |id: &str| -> Vec<String> {
        jobs.iter()
            .filter(|(t, _)| t == id)
            .map(|(_, j)| j.clone())
            .collect()
    };
    let (v1, v2, keep) = (job_of("exp@1"), job_of("exp@2"), job_of("keep"));
    assert!(v1.len() == 1 && v1 == v2, "{jobs:?}");
    assert_eq!(keep.len(), 2, "keep ran twice: {jobs:?}");
    assert_eq!(keep[0], v1[0], "keep shared the variants' job: {jobs:?}");
    assert_ne!(keep[1], v1[0], "{jobs:?}");
    let report = repo.report();
    assert_eq!(
        task(&report, "exp")["experiment"]["winner"],
        "exp@1",
        "{report}"
    );
    assert_eq!(task(&report, "exp@2")["status"], "cancelled", "{report}");
    let k = task(&report, "keep");
    assert_eq!(k["status"], "merged", "{report}");
    assert_eq!(k["attempts"], 2, "{k}");
    assert_eq!(repo.show("swarm/mates", "keep.txt"), "kept");
    assert_eq!(repo.show("swarm/mates", "seen.txt"), "one");
    // The second variant's work is kept, and nothing of it runs on.
    assert_eq!(repo.show("refs/swarm/mates/exp@2", "f.txt"), "started");
    wait_until("the variant's process is gone", || {
        processes_with("sleep 89").is_empty()
    });
    let lost = journal(&repo, "mates")
        .into_iter()
        .find(|e| e["event"] == "attempt_finished" && e["task"] == "keep")
        .unwrap();
    assert!(
        lost.to_string().contains("stopped for another task"),
        "{lost}"
    );
}

/// An HTTP server on 127.0.0.2 (a port it chose) answering `from two` to
/// every request, for the network-list tests; its port.
fn serve_from_two() -> u16 {
    let two = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = two.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in two.incoming().flatten() {
            use std::io::{Read, Write};
            let mut stream = stream;
            let mut head = [0u8; 1024];
            let _ = stream.read(&mut head);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nfrom two\n",
            );
        }
    });
    port
}

/// A network list on a cluster: `swarm __node` serves the task's egress
/// proxy on its node (the node resolves and connects), and the proxy's
/// log comes back with the attempt's others.
#[test]
fn a_network_list_is_enforced_on_the_node_by_its_proxy() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    let two_port = serve_from_two();
    let plan = plan(
        &repo,
        "listed",
        "",
        &format!(
            "[[task]]\nid = \"fetch\"\nnetwork = [\"127.0.0.2:{two_port}\"]\nrun = '''\ncurl -sS -f -m 10 http://127.0.0.2:{two_port}/ > two.txt\ncurl -sS -m 10 http://127.0.0.3:9/ > refused.txt\n'''\n"
        ),
    );
    run(&repo, &cluster, &plan, &[]).assert_code(0);
    assert_eq!(repo.show("swarm/listed", "two.txt"), "from two");
    assert!(
        repo.show("swarm/listed", "refused.txt")
            .starts_with("swarm: task `fetch` may not reach 127.0.0.3:9"),
    );
    let logs = repo.swarm(&["logs", "listed", "fetch"]);
    logs.assert_code(0);
    let said = logs
        .stdout
        .replace(&format!("127.0.0.2:{two_port}"), "127.0.0.2:[PORT]");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&said, &repo), @r#"
        --- network (swarm's egress proxy)
        allowed GET 127.0.0.2:[PORT]
        refused GET 127.0.0.3:9: not in the network list ["127.0.0.2:[PORT]"]
        "#);
    });
}

/// Shards and test reports on the cluster (issue 78): a sharded pytest
/// suite runs as jobs on the nodes, split as the coordinator split it;
/// each shard's JUnit comes back with its record, a test that failed on
/// one node and passed on the next attempt's is flaky, and the run's
/// JUnit holds every test.
#[test]
fn shards_run_on_the_nodes_and_their_test_reports_come_back() {
    let pytest = crate::support::python_tool("pytest");
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("seen");
    let repo = TestRepo::new();
    repo.write(".gitignore", "__pycache__/\n.pytest_cache/\n");
    repo.write("tests/test_a.py", "def test_one():\n    pass\n");
    repo.write(
        "tests/test_b.py",
        &format!(
            "import os\n\ndef test_two():\n    mark = {:?}\n    seen = os.path.exists(mark)\n    \
             open(mark, 'a').close()\n    assert seen, 'first run'\n",
            mark.display().to_string()
        ),
    );
    repo.commit_all("a suite");
    // Unsandboxed: the flaky test leaves its mark outside the repository.
    // The plan outside the repository: the nodes read its `glob` in their
    // own clones.
    let plan = repo.plan_exact(
        "cs.toml",
        &format!(
            "[swarm]\nname = \"cs\"\nsandbox = \"none\"\non_failure = \"continue\"\n\n\
             [executor]\nkind = \"slurm\"\npoll_interval = \"200ms\"\n\n\
             [[task]]\nid = \"pytest\"\nisolation = \"readonly\"\nshards = 2\nretries = 1\n\
             matrix = {{ file = {{ glob = \"tests/test_*.py\" }} }}\n\
             run = \"PYTHONDONTWRITEBYTECODE=1 {} -q -p no:cacheprovider {{entries}} --junitxml=$TMPDIR/report.xml\"\n\
             junit = \"$TMPDIR/report.xml\"\n",
            pytest.display()
        ),
    );
    let junit = repo.root().join("run.xml");
    let out = run(
        &repo,
        &cluster,
        &plan,
        &["--junit", junit.to_str().unwrap()],
    );
    out.assert_code(0);
    let report = repo.report();
    for shard in ["pytest-1", "pytest-2"] {
        assert!(
            task(&report, shard)["jobs"][0]["node"].is_string(),
            "{report}"
        );
    }
    cluster_settings().bind(|| {
        insta::assert_snapshot!(redact(summary_of(&out.stderr), &repo), @"
        run cs: succeeded
          task      status          time  try  changed  where             result
          pytest-1  succeeded      [T]s    1        0  job 1_0 on [NODE]     
          pytest-2  succeeded      [T]s    2        0  job 3_0 on [NODE]     

          0 merged, 2 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          tests: 1 passed, 1 flaky in 2 tasks
            flaky: tests.test_b::test_two (in pytest-2)
          no branch (read-only run), [T]s
        ");
    });
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<flakyFailure").count(), 1, "{xml}");
    assert!(xml.contains(r#"<testcase name="test_one""#), "{xml}");
    crate::support::assert_valid_junit(&junit);

    // `swarm clean` removes the run's refs from the shared repository,
    // every one of which names a commit this repository holds.
    let shared = repo.path().join(".swarm/cluster.git");
    let refs = || -> Vec<String> {
        let listed = repo.git_in(
            &shared,
            &["for-each-ref", "--format=%(refname)", "refs/swarm/cs/"],
        );
        listed.lines().map(str::to_string).collect()
    };
    let before = refs();
    assert!(!before.is_empty());
    // A commit only the shared repository holds (a job's record not yet
    // fetched): its ref stays.
    let git = |args: &[&str]| repo.git_in(&shared, args);
    let tree = git(&["mktree"]);
    let only_there = git(&[
        "-c",
        "user.name=n",
        "-c",
        "user.email=n@x",
        "commit-tree",
        &tree,
        "-m",
        "not fetched",
    ]);
    git(&["update-ref", "refs/swarm/cs/exit.d/later.1", &only_there]);
    let cleaned = repo.swarm(&["clean", "cs"]);
    cleaned.assert_code(0);
    // Every ref listed before but the one only the shared repository has.
    let said = cleaned.stdout.replace(
        &format!("removed {} refs", before.len()),
        "removed [ALL THE RUN'S] refs",
    );
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&said, &repo), @"
        run cs: removed 0 worktrees ([SIZE]) and 0 tmp directories ([SIZE])
          removed [ALL THE RUN'S] refs of the run from the shared repository [TMP]/repo/.swarm/cluster.git (this repository holds their commits)
        freed [SIZE]
        ");
    });
    assert_eq!(refs(), ["refs/swarm/cs/exit.d/later.1"]);

    // `--only` one shard: the node makes it as the coordinator did, with
    // its own entries, whichever shards run.
    let only = run(
        &repo,
        &cluster,
        &plan,
        &["--name", "one", "--only", "pytest-2"],
    );
    only.assert_code(0);
    let sharded = crate::resume::journal(&repo, "one")
        .into_iter()
        .find(|e| e["event"] == "task_sharded")
        .unwrap();
    // (The journal holds the shards the run ran: `pytest-2`'s alone.)
    let second = sharded["shards"][0][0].as_str().unwrap().to_string();
    let report = repo.report();
    let cases = std::fs::read_to_string(
        task(&report, "pytest-2")["tests"]["cases"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let module = second.trim_end_matches(".py").replace('/', ".");
    assert!(cases.contains(&module), "{second}: {cases}");

    // `flaky = "fail"` holds on the cluster too: the test fails on one
    // node, passes on the next, and its task fails.
    std::fs::remove_file(&mark).unwrap();
    let strict = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("retries = 1\n", "retries = 1\nflaky = \"fail\"\n");
    let strict = repo.plan_exact("strict.toml", &strict);
    let out = run(&repo, &cluster, &strict, &["--name", "strict"]);
    out.assert_code(1);
    let report = repo.report();
    let flaky_shard = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "failed")
        .unwrap_or_else(|| panic!("{report:#}"));
    insta::assert_snapshot!(flaky_shard["reason"].as_str().unwrap(), @r#"1 flaky test (failed, then passed when run again) and `flaky = "fail"`: tests.test_b::test_two"#);

    // `affected = true`: the coordinator decides what each shard's job
    // runs (a node's shallow clone lacks the run's base): only the file a
    // dependency changed runs, the other is skipped by selection.
    let affected = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("retries = 1\n", "affected = true\ndeps = [\"edit\"]\n")
        .replace(
            "[[task]]\nid = \"pytest\"",
            "[[task]]\nid = \"edit\"\nrun = \"printf 'def test_more():\\\\n    pass\\\\n' >> tests/test_a.py\"\n\n[[task]]\nid = \"pytest\"",
        );
    let affected = repo.plan_exact("affected.toml", &affected);
    run(&repo, &cluster, &affected, &["--name", "affected"]).assert_code(0);
    let report = repo.report();
    let mut said: Vec<String> = ["pytest-1", "pytest-2"]
        .map(|id| crate::ci_batches::said_of(&report, id).split_off(10))
        .to_vec();
    said.sort();
    assert_eq!(
        said,
        [
            r#"ran ["test_one", "test_more"], skipped by selection null"#,
            r#"ran [], skipped by selection ["tests/test_b.py"]"#,
        ],
        "{report:#}"
    );
}

/// Issue 78: ready tasks beyond the cluster's `MaxArraySize` go out as
/// several arrays of at most that many elements, each task once.
#[test]
fn an_array_larger_than_the_clusters_limit_goes_out_in_chunks() {
    let cluster = Cluster::start_with_max_array_size(3);
    let repo = TestRepo::new();
    let plan = plan(
        &repo,
        "chunks",
        "",
        "[[task]]\nid = \"t-{n}\"\nisolation = \"readonly\"\nrun = \"true\"\nmatrix = { n = [1, 2, 3, 4, 5, 6, 7] }\n",
    );
    run(&repo, &cluster, &plan, &[]).assert_code(0);
    let jobs = started_jobs(&repo, "chunks");
    assert_eq!(jobs.len(), 7, "{jobs:?}");
    let mut arrays: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, job) in &jobs {
        let array = job.split('_').next().unwrap_or(job).to_string();
        *arrays.entry(array).or_default() += 1;
    }
    assert!(arrays.values().all(|&n| n <= 3), "{arrays:?}");
    // At least ceil(7 / 3) arrays (more if the tasks went out in turns).
    assert!(arrays.len() >= 3, "{arrays:?}");
}

/// Issue 78: the run's budget holds across the cluster as it does on one
/// machine. Nine agents whose calls together would cost more than the
/// budget run on the nodes, each node's gateway knowing only its own
/// job's calls; the coordinator's relay counts every call against the
/// run's budget, so the fleet stops where the same plan run here stops:
/// the same tasks' worth merged, the same spend, the rest stopped for the
/// budget.
#[test]
fn a_run_budget_stops_agents_across_the_nodes_at_the_same_spend_as_here() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    // The provider counts about four bytes a token of the prompt.
    let mock = MockModel::start(Options::new("claude-sonnet-4-5"), |call| Reply::Answer {
        parts: vec![tool("f", "finish", json!({"summary": "done"}))],
        input_tokens: call.body.to_string().len() as u64 / 4,
        output_tokens: 20,
    });
    let plan = |name: &str, executor: &str, budget: u64, n: usize| {
        let tasks: String = (0..n)
            .map(|i| format!("[[task]]\nid = \"t{i:02}\"\nprompt = \"Task {i:02}.\"\n"))
            .collect();
        repo.plan_exact(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\nconcurrency = 9\nbudget = {{ tokens = {budget} }}\non_failure = \"continue\"\n\n\
                 {executor}\n[defaults]\ntimeout = \"120s\"\n\n\
                 [models.default]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\nbase_url = \"{}\"\n\
                 api_key_env = \"\"\nmax_tokens = 200\n\n{tasks}",
                mock.base_url(Wire::Anthropic),
            ),
        )
    };
    let spent = |report: &Value| -> (u64, usize, usize) {
        let tasks = report["tasks"].as_array().unwrap();
        let spent = tasks
            .iter()
            .filter_map(|t| t["agent"]["usage"].as_object())
            .map(|u| u["input_tokens"].as_u64().unwrap() + u["output_tokens"].as_u64().unwrap())
            .sum();
        let merged = tasks.iter().filter(|t| t["status"] == "merged").count();
        let stopped = tasks
            .iter()
            .filter(|t| t["agent"]["outcome"] == "budget")
            .count();
        (spent, merged, stopped)
    };
    // One call's worth, measured; the budget has room for five.
    repo.run_plan(&plan("one", "", 1_000_000, 1), &[])
        .assert_code(0);
    let (call, _, _) = spent(&repo.report());
    let budget = 5 * call;
    let here = repo.run_plan(&plan("here", "", budget, 9), &[]);
    assert_ne!(here.code, 0, "not all nine fit");
    let (spent_here, merged_here, stopped_here) = spent(&repo.report());

    let mut cmd = repo.swarm_cmd(&[
        "run",
        plan(
            "nodes",
            "[executor]\nkind = \"slurm\"\npoll_interval = \"200ms\"\n",
            budget,
            9,
        )
        .to_str()
        .unwrap(),
        "--gateway-listen",
        "127.0.0.1:0",
    ]);
    cmd.env("SLURM_CONF", cluster.conf());
    let nodes = crate::support::Run::from(cmd.output().unwrap());
    assert_ne!(nodes.code, 0, "not all nine fit on the cluster either");
    let report = repo.report();
    let (spent_nodes, merged_nodes, stopped_nodes) = spent(&report);
    assert!(spent_nodes <= budget, "spent {spent_nodes} of {budget}");
    assert_eq!(
        (spent_nodes, merged_nodes, stopped_nodes),
        (spent_here, merged_here, stopped_here),
        "the cluster's (spent, merged, stopped for the budget) against this machine's: {report:#}"
    );
    assert!(merged_nodes >= 2, "{merged_nodes} merged");
    // The fleet was spread over the cluster, not one node's job.
    let on: BTreeSet<String> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["jobs"][0]["node"].as_str().map(str::to_string))
        .collect();
    assert!(on.len() >= 2, "all on {on:?}");
    // Every call the model answered was one the budgets counted.
    assert_eq!(mock.calls().len(), 1 + merged_here + merged_nodes);
}

/// Issue 78: `[setup]` and `[cleanup]` run on the nodes as they do here.
/// A lockfile's dependencies (a tarball in the repository, `npm ci`
/// offline) are installed once per node into the node's cache
/// (`cache_dir`, one per node by `%N` since the test's nodes share a
/// disk): the node's first job runs setup, the others (those at once
/// waiting for it) copy it, and every task sees its outputs; cleanup runs
/// after each attempt, its log back with the record. A second run finds
/// every node's setup kept.
#[test]
fn setup_runs_once_per_node_and_cleanup_after_each_attempt() {
    let cluster = Cluster::start();
    let repo = crate::worktree_setup::node_project();
    let cache = repo.home().join("node-cache");
    let plan = plan(
        &repo,
        "setup",
        &format!("cache_dir = \"{}/%N\"", cache.display()),
        "[setup]\nrun = \"npm ci --offline --no-audit --no-fund\"\nkey = [\"package-lock.json\"]\n\n\
         [cleanup]\nrun = \"echo cleaned $SWARM_TASK\"\n\n\
         [[task]]\nid = \"{n}\"\nmatrix = { n = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"] }\n\
         run = \"node -e \\\"console.log(require('leftish')('{n}', 4))\\\" > {n}.txt\"\n",
    );
    let tasks = ["a", "b", "c", "d", "e", "f"];
    let first = run(&repo, &cluster, &plan, &["--name", "one"]);
    first.assert_code(0);
    for n in tasks {
        assert_eq!(
            repo.show("swarm/one", &format!("{n}.txt")),
            format!("   {n}")
        );
    }
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "swarm/one"]);
    assert!(!tree.contains("node_modules"), "{tree}");
    let report = repo.report();
    let nodes: BTreeSet<String> = tasks
        .iter()
        .map(|t| {
            task(&report, t)["jobs"][0]["node"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let ran: Vec<&str> = tasks
        .iter()
        .copied()
        .filter(|t| task(&report, t)["setup_reused"] != true)
        .collect();
    // Once on each node a job ran on, whatever ran at once there.
    assert_eq!(
        ran.len(),
        nodes.len(),
        "ran on {ran:?}, nodes {nodes:?}: {report:#}"
    );
    assert!(tasks.iter().all(|t| task(&report, t)["setup_ms"].is_u64()));
    for node in &nodes {
        assert!(cache.join(node).is_dir(), "no cache for {node}");
    }
    // Each task's cleanup log says the same of its own task.
    let cleanups: Vec<String> = tasks
        .iter()
        .map(|t| {
            let logs = repo.swarm(&["logs", "one", t, "--cleanup"]);
            logs.assert_code(0);
            redact(&logs.stdout, &repo).replace(&format!("cleaned {t}"), "cleaned [TASK]")
        })
        .collect();
    for (t, cleanup) in tasks.iter().zip(&cleanups) {
        assert_eq!(cleanup, &cleanups[0], "{t}");
    }
    snapshot_settings().bind(|| insta::assert_snapshot!(cleanups[0], @"cleaned [TASK]"));

    // The nodes keep their setups: a later run (on nodes that ran one)
    // copies them.
    let second = run(&repo, &cluster, &plan, &["--name", "two"]);
    second.assert_code(0);
    let report = repo.report();
    for t in tasks {
        let node = task(&report, t)["jobs"][0]["node"]
            .as_str()
            .unwrap()
            .to_string();
        if nodes.contains(&node) {
            assert_eq!(
                task(&report, t)["setup_reused"],
                true,
                "{t} on {node}: {report:#}"
            );
        }
    }
}

/// Issue 78: with `egress = "coordinator"` (nodes with no way out but to
/// the coordinator), a job's network lists reach their hosts through the
/// coordinator's relay: the node's proxy checks the task's list, then
/// tunnels the connection; `[setup]`'s own network goes the same way.
/// What no list allows is refused on the node, as always.
#[test]
fn with_egress_through_the_coordinator_the_nodes_reach_listed_hosts_through_it() {
    let cluster = Cluster::start();
    let repo = TestRepo::new();
    let two_port = serve_from_two();
    let plan = plan(
        &repo,
        "via",
        "egress = \"coordinator\"",
        &format!(
            "[setup]\nrun = \"curl -sS -f -m 10 http://127.0.0.2:{two_port}/ > deps.txt\"\nnetwork = [\"127.0.0.2:{two_port}\"]\n\n\
             [[task]]\nid = \"fetch\"\nnetwork = [\"127.0.0.2:{two_port}\"]\nrun = '''\ncurl -sS -f -m 10 http://127.0.0.2:{two_port}/ > two.txt\ncp deps.txt seen.txt\ncurl -sS -m 10 http://127.0.0.3:9/ > refused.txt\n'''\n"
        ),
    );
    run(&repo, &cluster, &plan, &["--gateway-listen", "127.0.0.1:0"]).assert_code(0);
    assert_eq!(repo.show("swarm/via", "two.txt"), "from two");
    assert_eq!(repo.show("swarm/via", "seen.txt"), "from two");
    assert!(
        repo.show("swarm/via", "refused.txt")
            .starts_with("swarm: task `fetch` may not reach 127.0.0.3:9"),
    );
    let port = format!("127.0.0.2:{two_port}");
    let logs = repo.swarm(&["logs", "via", "fetch"]);
    logs.assert_code(0);
    let said = logs.stdout.replace(&port, "127.0.0.2:[PORT]");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&said, &repo), @r#"
        --- network (swarm's egress proxy)
        allowed GET 127.0.0.2:[PORT] (through the coordinator)
        refused GET 127.0.0.3:9: not in the network list ["127.0.0.2:[PORT]"]
        "#);
    });
    let setup = repo.swarm(&["logs", "via", "fetch", "--setup"]);
    setup.assert_code(0);
    let said = setup.stdout.replace(&port, "127.0.0.2:[PORT]");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&said, &repo), @"
        --- network (swarm's egress proxy)
        allowed GET 127.0.0.2:[PORT] (through the coordinator)
        ");
    });
}
